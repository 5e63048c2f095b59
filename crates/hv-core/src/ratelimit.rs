//! Guest-triggered console lines: which are printed, and how often.
//!
//! Anything a guest can make Oxen print (a domU's `console_io` lines, the
//! warnings and debug lines its faults and failed hypercalls cause) is a
//! *guest message* with a level, filtered by `guest_loglvl=<always>/<limited>`
//! as Xen filters its `XENLOG_G_*` messages ([`GuestLogPolicy::route`]):
//! at or below the first level it is always printed, at or below the second
//! it is printed through the domain's [`RateLimit`], above it is dropped.
//! Oxen's default is Xen's release default, `none/warning`: a guest's
//! warnings are rate-limited and nothing of it is printed unconditionally.
//!
//! [`RateLimit`] is Xen's `printk_ratelimit` kept per domain: a token bucket
//! on the hypervisor's clock that holds at most [`BURST`] lines and earns one
//! back every [`INTERVAL_NS`] (Xen's 10 lines, 5000 ms). A line refused is
//! counted; the next line let through carries the count, so the console
//! says how much was suppressed (`N messages suppressed`), and what is left
//! uncounted is reported when the domain goes away
//! ([`RateLimit::take_suppressed`]).
//!
//! Invariant: the bucket never holds more than `BURST * INTERVAL_NS` of
//! credit, and a line is let through only when it can pay `INTERVAL_NS`, so
//! over any window of `t` ns at most `BURST + t / INTERVAL_NS` lines pass.

use crate::cmdline::LogLevel;

/// Lines a domain may print at once after a quiet spell (Xen's
/// `printk_ratelimit_burst`).
pub const BURST: u64 = 10;
/// Time that earns back one line (Xen's `printk_ratelimit_ms`, 5 s).
pub const INTERVAL_NS: u64 = 5_000_000_000;

/// What [`RateLimit::check`] decided about one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Print it; `suppressed` lines were refused since the last one printed
    /// (report them first when not 0).
    Print { suppressed: u64 },
    /// Drop it (counted).
    Suppress,
}

/// One domain's token bucket (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Credit in ns of the clock, at most `BURST * INTERVAL_NS`.
    credit_ns: u64,
    /// The clock when the credit was last brought up to date.
    last_ns: u64,
    /// Lines refused since the last one let through.
    suppressed: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(0)
    }
}

impl RateLimit {
    /// The most credit the bucket holds.
    pub const CAPACITY_NS: u64 = BURST * INTERVAL_NS;

    /// A full bucket at clock `now_ns` (a new domain may print its burst).
    pub const fn new(now_ns: u64) -> Self {
        Self {
            credit_ns: Self::CAPACITY_NS,
            last_ns: now_ns,
            suppressed: 0,
        }
    }

    /// Decides about one line at clock `now_ns`. A clock that went back
    /// earns nothing.
    pub fn check(&mut self, now_ns: u64) -> Verdict {
        let earned = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        self.credit_ns = self.credit_ns.saturating_add(earned).min(Self::CAPACITY_NS);
        if self.credit_ns >= INTERVAL_NS {
            self.credit_ns -= INTERVAL_NS;
            Verdict::Print {
                suppressed: core::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            Verdict::Suppress
        }
    }

    /// The lines refused and not yet reported, now reported (the domain is
    /// going away).
    pub fn take_suppressed(&mut self) -> u64 {
        core::mem::take(&mut self.suppressed)
    }
}

/// Where a guest message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Printed, whatever the rate.
    Always,
    /// Printed if the domain's [`RateLimit`] lets it through.
    Limited,
    /// Not printed.
    Drop,
}

/// `guest_loglvl=<always>/<limited>` as applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestLogPolicy {
    /// Levels printed whatever the rate.
    pub always: LogLevel,
    /// Levels printed rate-limited (never below `always`).
    pub limited: LogLevel,
}

impl GuestLogPolicy {
    /// Xen's release default, `guest_loglvl=none/warning`.
    pub const DEFAULT: Self = Self {
        always: LogLevel::None,
        limited: LogLevel::Warning,
    };

    /// Where a guest message of `level` goes (`level` is that of the
    /// message: `Error`..`Debug`; `None` and `All` are thresholds only).
    pub fn route(&self, level: LogLevel) -> Route {
        if level <= self.always {
            Route::Always
        } else if level <= self.limited {
            Route::Limited
        } else {
            Route::Drop
        }
    }
}

/// The level of a domU's `console_io` line. A debug Xen prints those lines
/// always and a release Xen refuses the call; Oxen prints them as guest
/// warnings, so that under the default policy a domU's console is readable
/// and cannot flood: its boot messages get through, a flood is cut to one
/// line per [`INTERVAL_NS`] (`guest_loglvl=warning` or above prints them
/// all, `guest_loglvl=none/error` none).
pub const CONSOLE_LINE_LEVEL: LogLevel = LogLevel::Warning;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_new_domain_prints_its_burst_then_is_cut() {
        let mut r = RateLimit::new(7 * S);
        for _ in 0..BURST {
            assert_eq!(r.check(7 * S), Verdict::Print { suppressed: 0 });
        }
        assert_eq!(r.check(7 * S), Verdict::Suppress);
        assert_eq!(r.check(7 * S + 4 * S), Verdict::Suppress);
        // 5 s after the burst one line is earned back, carrying the count.
        assert_eq!(r.check(12 * S), Verdict::Print { suppressed: 2 });
        assert_eq!(r.check(12 * S), Verdict::Suppress);
        assert_eq!(r.take_suppressed(), 1);
        assert_eq!(r.take_suppressed(), 0);
    }

    #[test]
    fn a_quiet_spell_refills_only_the_burst() {
        let mut r = RateLimit::new(0);
        for _ in 0..BURST {
            assert!(matches!(r.check(0), Verdict::Print { .. }));
        }
        // An hour of silence earns BURST lines, not 720.
        let t = 3600 * S;
        for _ in 0..BURST {
            assert!(matches!(r.check(t), Verdict::Print { .. }));
        }
        assert_eq!(r.check(t), Verdict::Suppress);
    }

    #[test]
    fn a_clock_going_back_earns_nothing() {
        let mut r = RateLimit::new(100 * S);
        for _ in 0..BURST {
            r.check(100 * S);
        }
        assert_eq!(r.check(50 * S), Verdict::Suppress);
        // Credit resumes from the latest time seen, not from the earlier one.
        assert_eq!(r.check(104 * S), Verdict::Suppress);
        assert_eq!(r.check(105 * S), Verdict::Print { suppressed: 2 });
    }

    #[test]
    fn the_count_saturates() {
        let mut r = RateLimit::new(0);
        r.suppressed = u64::MAX;
        r.credit_ns = 0;
        assert_eq!(r.check(0), Verdict::Suppress);
        assert_eq!(r.take_suppressed(), u64::MAX);
    }

    #[test]
    fn policy_routes_by_level() {
        let p = GuestLogPolicy::DEFAULT;
        assert_eq!(p.route(LogLevel::Error), Route::Limited);
        assert_eq!(p.route(LogLevel::Warning), Route::Limited);
        assert_eq!(p.route(LogLevel::Info), Route::Drop);
        assert_eq!(p.route(LogLevel::Debug), Route::Drop);
        let all = GuestLogPolicy {
            always: LogLevel::All,
            limited: LogLevel::All,
        };
        assert_eq!(all.route(LogLevel::Debug), Route::Always);
        let mixed = GuestLogPolicy {
            always: LogLevel::Error,
            limited: LogLevel::Debug,
        };
        assert_eq!(mixed.route(LogLevel::Error), Route::Always);
        assert_eq!(mixed.route(LogLevel::Warning), Route::Limited);
        assert_eq!(mixed.route(LogLevel::Debug), Route::Limited);
        let none = GuestLogPolicy {
            always: LogLevel::None,
            limited: LogLevel::Error,
        };
        assert_eq!(none.route(CONSOLE_LINE_LEVEL), Route::Drop);
        assert_eq!(p.route(CONSOLE_LINE_LEVEL), Route::Limited);
    }

    proptest! {
        /// Over any run of calls, no more than BURST + elapsed / INTERVAL
        /// lines pass, every refused line is reported exactly once, and a
        /// line is refused only when the credit cannot pay for it.
        #[test]
        fn never_more_than_the_bucket_allows(gaps in proptest::collection::vec(0u64..3 * INTERVAL_NS, 1..300)) {
            let mut r = RateLimit::new(0);
            let (mut now, mut printed, mut refused, mut reported) = (0u64, 0u64, 0u64, 0u64);
            for g in gaps {
                let before = r.clone();
                now += g;
                match r.check(now) {
                    Verdict::Print { suppressed } => {
                        printed += 1;
                        reported += suppressed;
                    }
                    Verdict::Suppress => {
                        refused += 1;
                        prop_assert!(before.credit_ns + g < INTERVAL_NS);
                    }
                }
                prop_assert!(r.credit_ns <= RateLimit::CAPACITY_NS);
                prop_assert!(printed <= BURST + now / INTERVAL_NS);
            }
            prop_assert_eq!(reported + r.take_suppressed(), refused);
        }
    }
}
