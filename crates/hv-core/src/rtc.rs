//! Calendar arithmetic for the wall clock Oxen reads from the CMOS RTC at
//! boot (`shared_info.wc_sec`): BCD decoding and days since 1970-01-01.

/// Decodes a BCD byte (0x59 → 59).
pub const fn bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0xF)
}

/// Seconds since 1970-01-01 00:00:00 UTC of a proleptic-Gregorian date and
/// time, `None` if a field is out of range.
pub fn unix_time(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<u64> {
    if year < 1970
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    // Days from civil: shift the year to start in March so leap days come last.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y % 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::from(era) * 146_097 + u64::from(doe) - 719_468;
    Some(days * 86_400 + u64::from(hour) * 3_600 + u64::from(min) * 60 + u64::from(sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_time(2000, 3, 1, 0, 0, 0), Some(951_868_800));
        assert_eq!(unix_time(2007, 6, 15, 12, 30, 5), Some(1_181_910_605));
        assert_eq!(unix_time(2024, 2, 29, 23, 59, 59), Some(1_709_251_199));
        assert_eq!(unix_time(2026, 11, 25, 19, 0, 0), Some(1_795_633_200));
    }

    #[test]
    fn out_of_range_fields() {
        assert_eq!(unix_time(1969, 12, 31, 0, 0, 0), None);
        assert_eq!(unix_time(2020, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_time(2020, 0, 1, 0, 0, 0), None);
        assert_eq!(unix_time(2020, 1, 32, 0, 0, 0), None);
        assert_eq!(unix_time(2020, 1, 1, 24, 0, 0), None);
    }

    #[test]
    fn bcd_bytes() {
        assert_eq!(bcd(0x59), 59);
        assert_eq!(bcd(0x00), 0);
        assert_eq!(bcd(0x26), 26);
    }
}
