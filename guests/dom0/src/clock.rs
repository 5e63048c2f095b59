//! Turning the PV clock into what `uptime` and `ls -l` print: UTC calendar
//! dates from seconds since 1970 (proleptic Gregorian, no leap seconds) and
//! procps-style uptime durations.

use alloc::format;
use alloc::string::String;

/// A UTC date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// The UTC date of `secs` seconds since 1970-01-01 00:00:00.
pub fn datetime(secs: u64) -> DateTime {
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    // Days since 1970 to (year, month, day): the era-based civil calendar
    // algorithm (eras of 400 years, March-based years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    DateTime {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// `YYYY-MM-DD HH:MM` (ls's long-iso style).
pub fn long_iso(secs: u64) -> String {
    let d = datetime(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.year, d.month, d.day, d.hour, d.minute
    )
}

/// The `up ...` part of `uptime`, as procps words it: `N min`, `H:MM`, with
/// `D day(s), ` in front once a day has passed.
pub fn uptime_words(secs: u64) -> String {
    let days = secs / 86_400;
    let hours = secs / 3600 % 24;
    let mins = secs / 60 % 60;
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!("{days} day{}, ", if days == 1 { "" } else { "s" }));
    }
    if hours > 0 {
        out.push_str(&format!("{hours:2}:{mins:02}"));
    } else {
        out.push_str(&format!("{mins} min"));
    }
    out
}

/// The `uptime` line: ` HH:MM:SS up <duration>` (UTC time of day).
pub fn uptime_line(now_secs: u64, up_secs: u64) -> String {
    let d = datetime(now_secs);
    format!(
        " {:02}:{:02}:{:02} up {}",
        d.hour,
        d.minute,
        d.second,
        uptime_words(up_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(long_iso(0), "1970-01-01 00:00");
        // 2006-08-31 19:54:40 UTC, the day brun.cfg was generated.
        assert_eq!(long_iso(1_157_054_080), "2006-08-31 19:54");
        // A leap day, and the first day after a century that is not leap.
        assert_eq!(long_iso(951_782_400), "2000-02-29 00:00");
        assert_eq!(long_iso(4_107_542_400), "2100-03-01 00:00");
        assert_eq!(datetime(86_399).second, 59);
        assert_eq!(datetime(86_400).day, 2);
    }

    #[test]
    fn uptime_wording() {
        assert_eq!(uptime_words(0), "0 min");
        assert_eq!(uptime_words(59 * 60 + 59), "59 min");
        assert_eq!(uptime_words(3600), " 1:00");
        assert_eq!(uptime_words(86_400 + 61), "1 day, 1 min");
        assert_eq!(
            uptime_words(3 * 86_400 + 5 * 3600 + 7 * 60),
            "3 days,  5:07"
        );
        assert_eq!(uptime_line(3661, 5), " 01:01:01 up 0 min");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Consecutive days are consecutive calendar dates with valid fields.
        #[test]
        fn days_advance_one_at_a_time(day in 0u64..200_000) {
            let a = datetime(day * 86_400);
            let b = datetime((day + 1) * 86_400);
            prop_assert!((1..=12).contains(&a.month) && (1..=31).contains(&a.day));
            if b.day == 1 {
                prop_assert!(b.month == a.month % 12 + 1);
                prop_assert!(a.day >= 28);
                prop_assert_eq!(b.year, a.year + i64::from(a.month == 12));
            } else {
                prop_assert_eq!((b.year, b.month, b.day), (a.year, a.month, a.day + 1));
            }
        }
    }
}
