//! TSC calibration: the arithmetic and the choices, kept off the CPU.
//!
//! Oxen measures the TSC against the PIT in several short one-shot windows
//! (`Window`: TSC readings bracketing the PIT's start and its terminal count).
//! A window is only as good as its edges: if the CPU (or, under QEMU, the host
//! thread running it) was held up just as the count started or ended, the
//! window is stretched or shortened by the hold-up, and the bracket around that
//! edge is as wide as the hold-up. Windows with wide edges are rejected, so are
//! inconsistent ones and ones implying an implausible rate; the rate is the
//! median of the rest (`Calibrator`). In mode 0 the PIT loads its count on
//! the first input-clock edge after the write, so the terminal count comes
//! N + U(0,1) ticks after it: a window is taken as N + ½ ticks long (under
//! QEMU, whose PIT loads at once, this reads 1/(2N) low: 210 ppm for 2 ms).
//! CPUID leaf 0x15 with an enumerated crystal gives the rate exactly and
//! `choose` takes it when it agrees with the PIT; leaf 0x16's base frequency
//! is nominal (the TSC may differ by a few hundred ppm) and is taken only
//! when the PIT gave nothing precise.
//!
//! Invariant: a `Calibration` is the median of windows that passed every check,
//! or, only if none did, of the windows that were merely imprecise
//! (`precise == false` says which).

/// The PIT's input clock, Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Slowest TSC taken as real (QEMU's `-icount shift=10` runs at ~1 MHz).
pub const MIN_PLAUSIBLE_HZ: u64 = 500_000;
/// Fastest TSC taken as real.
pub const MAX_PLAUSIBLE_HZ: u64 = 20_000_000_000;

/// A window is rejected when its two edge brackets together exceed this
/// fraction (1/N) of its length: the rate it gives could be off by more than
/// half of that.
pub const MAX_EDGE_FRACTION: u64 = 256;

/// Accepted windows after which calibration stops.
pub const WINDOWS_WANTED: usize = 5;
/// Windows tried at most.
pub const MAX_WINDOWS: usize = 15;

/// How far (1/N) a CPUID-reported rate may be from the PIT's to be believed.
pub const CPUID_AGREEMENT: u64 = 50;

/// One PIT window, in TSC readings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// TSC just before the write that started the count.
    pub start_before: u64,
    /// TSC just after it.
    pub start_after: u64,
    /// TSC at the last poll that found the count still running (or
    /// `start_after` if the first poll found it done).
    pub last_running: u64,
    /// TSC just after the first poll that found it done.
    pub first_done: u64,
    /// Whether some poll found the count running. OUT2 is low right after
    /// the count is programmed, so a first poll that finds it done says the
    /// PIT did not count (no PIT, or port 0x61 reading all ones).
    pub saw_running: bool,
    /// PIT input-clock ticks the window lasted.
    pub pit_ticks: u32,
}

/// What became of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Used; the rate it gives.
    Accepted(u64),
    /// The edges are wider than 1/`MAX_EDGE_FRACTION` of the window.
    Stretched { hz: u64, edges: u64 },
    /// The rate it gives is outside the plausible range.
    Implausible(u64),
    /// The readings are out of order (the TSC went back, or no PIT ticks).
    Inconsistent,
    /// The count never ended (the PIT did not answer).
    Unfinished,
}

impl Window {
    fn ordered(&self) -> bool {
        self.start_before <= self.start_after
            && self.start_after <= self.last_running
            && self.last_running <= self.first_done
            && self.pit_ticks > 0
            && self.saw_running
    }

    /// TSC ticks between the middles of the two edge brackets, `None` if the
    /// readings are out of order.
    pub fn tsc_ticks(&self) -> Option<u64> {
        if !self.ordered() {
            return None;
        }
        let start = u128::from(self.start_before) + u128::from(self.start_after);
        let end = u128::from(self.last_running) + u128::from(self.first_done);
        u64::try_from((end - start) / 2).ok()
    }

    /// The widths of the two edge brackets together (0 if out of order).
    pub fn edges(&self) -> u64 {
        if !self.ordered() {
            return 0;
        }
        (self.start_after - self.start_before) + (self.first_done - self.last_running)
    }

    /// The TSC rate the window gives, Hz: `pit_ticks` + ½ PIT ticks long.
    pub fn hz(&self) -> Option<u64> {
        let ticks = self.tsc_ticks()?;
        let half_ticks = 2 * u128::from(self.pit_ticks) + 1;
        u64::try_from(u128::from(ticks) * 2 * u128::from(PIT_HZ) / half_ticks).ok()
    }

    /// Whether the window is usable, and why not.
    pub fn verdict(&self) -> Verdict {
        let (Some(ticks), Some(hz)) = (self.tsc_ticks(), self.hz()) else {
            return Verdict::Inconsistent;
        };
        if !(MIN_PLAUSIBLE_HZ..=MAX_PLAUSIBLE_HZ).contains(&hz) {
            return Verdict::Implausible(hz);
        }
        let edges = self.edges();
        if u128::from(edges) * u128::from(MAX_EDGE_FRACTION) > u128::from(ticks) {
            return Verdict::Stretched { hz, edges };
        }
        Verdict::Accepted(hz)
    }
}

/// The median of `values` (the mean of the middle two for an even count),
/// `None` for none. Sorts `values`.
pub fn median(values: &mut [u64]) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some(((u128::from(values[n / 2 - 1]) + u128::from(values[n / 2])) / 2) as u64),
    }
}

/// A calibration result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// TSC rate, Hz.
    pub hz: u64,
    /// Windows the median was taken over.
    pub used: usize,
    /// Windows tried.
    pub tried: usize,
    /// False if no window passed every check and the median is over windows
    /// that were only too imprecise (stretched).
    pub precise: bool,
}

/// Collects windows until `WINDOWS_WANTED` are accepted, `MAX_WINDOWS` were
/// tried, or one never ended (a PIT that does not count will not start to).
#[derive(Debug, Default)]
pub struct Calibrator {
    accepted: heapless::Vec<u64, MAX_WINDOWS>,
    stretched: heapless::Vec<u64, MAX_WINDOWS>,
    tried: usize,
    unfinished: bool,
}

impl Calibrator {
    /// No windows yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to stop measuring.
    pub fn done(&self) -> bool {
        self.accepted.len() >= WINDOWS_WANTED || self.tried >= MAX_WINDOWS || self.unfinished
    }

    /// Records a window (`None`: the count never ended). Windows after
    /// `done` are ignored (reported `Unfinished`).
    pub fn add(&mut self, window: Option<Window>) -> Verdict {
        if self.done() {
            return Verdict::Unfinished;
        }
        self.tried += 1;
        let verdict = window.map_or(Verdict::Unfinished, |w| w.verdict());
        // Both lists hold at most one entry per try, so they cannot overflow.
        match verdict {
            Verdict::Accepted(hz) => {
                let _ = self.accepted.push(hz);
            }
            Verdict::Stretched { hz, .. } => {
                let _ = self.stretched.push(hz);
            }
            Verdict::Unfinished => self.unfinished = true,
            Verdict::Implausible(_) | Verdict::Inconsistent => {}
        }
        verdict
    }

    /// Windows tried so far.
    pub fn tried(&self) -> usize {
        self.tried
    }

    /// The median of the accepted windows, or failing any, of the stretched
    /// ones (flagged imprecise); `None` if there is neither.
    pub fn result(&self) -> Option<Calibration> {
        let (list, precise) = if self.accepted.is_empty() {
            (&self.stretched, false)
        } else {
            (&self.accepted, true)
        };
        let mut values = list.clone();
        Some(Calibration {
            hz: median(&mut values)?,
            used: list.len(),
            tried: self.tried,
            precise,
        })
    }
}

/// A TSC rate CPUID states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuidRate {
    /// Hz.
    pub hz: u64,
    /// True for leaf 0x15 with its crystal enumerated (the TSC's real
    /// rate); false for leaf 0x16's base frequency (nominal).
    pub exact: bool,
}

/// The TSC rate CPUID states: leaf 0x15 is (EAX denominator, EBX numerator,
/// ECX crystal Hz) of TSC = crystal × EBX / EAX; when the crystal is not
/// enumerated (ECX 0), or leaf 0x15 says nothing, leaf 0x16's EAX (the base
/// frequency in MHz) is a nominal figure. `None` if neither gives a rate.
pub fn cpuid_tsc_hz(leaf15: Option<(u32, u32, u32)>, leaf16_eax: Option<u32>) -> Option<CpuidRate> {
    let base = leaf16_eax
        .map(|eax| u64::from(eax & 0xFFFF) * 1_000_000)
        .filter(|&hz| hz != 0)
        .map(|hz| CpuidRate { hz, exact: false });
    match leaf15 {
        Some((den, num, crystal)) if den != 0 && num != 0 && crystal != 0 => Some(CpuidRate {
            hz: u64::from(crystal) * u64::from(num) / u64::from(den),
            exact: true,
        }),
        _ => base,
    }
}

/// Where the rate Oxen uses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// CPUID, confirmed by the PIT's measurement (if there was one).
    Cpuid { pit: Option<u64> },
    /// The PIT; CPUID's rate if it gave one that disagreed.
    Pit { cpuid: Option<u64> },
}

/// Picks the TSC rate, ignoring an implausible CPUID rate:
/// - CPUID's exact rate (leaf 0x15) if it is within 1/`CPUID_AGREEMENT` of
///   the PIT's, or there is no PIT measurement;
/// - else a precise PIT measurement;
/// - else (the PIT's windows were all disturbed, or there were none) CPUID's
///   rate, even a nominal one, over an imprecise PIT figure;
/// - else the imprecise PIT figure. `None` if there is nothing.
pub fn choose(pit: Option<Calibration>, cpuid: Option<CpuidRate>) -> Option<(u64, Source)> {
    let cpuid = cpuid.filter(|c| (MIN_PLAUSIBLE_HZ..=MAX_PLAUSIBLE_HZ).contains(&c.hz));
    let pit_hz = pit.map(|p| p.hz);
    match (pit, cpuid) {
        (Some(p), Some(c)) if c.exact && c.hz.abs_diff(p.hz) <= p.hz / CPUID_AGREEMENT => {
            Some((c.hz, Source::Cpuid { pit: pit_hz }))
        }
        (Some(p), c) if p.precise => Some((
            p.hz,
            Source::Pit {
                cpuid: c.map(|c| c.hz),
            },
        )),
        (_, Some(c)) => Some((c.hz, Source::Cpuid { pit: pit_hz })),
        (Some(p), None) => Some((p.hz, Source::Pit { cpuid: None })),
        (None, None) => None,
    }
}

/// `ticks` of a `hz` TSC in microseconds (0 if `hz` is 0).
pub fn ticks_to_us(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    (u128::from(ticks) * 1_000_000 / u128::from(hz)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 ms of PIT ticks.
    const TICKS_2MS: u32 = 2386;
    const HZ: u64 = 2_445_414_000;

    /// A clean window of `TICKS_2MS` at `HZ`, starting at `t0`, with edge
    /// brackets of `start_edge` and `end_edge` TSC ticks around the true edges.
    /// The count ends `TICKS_2MS` + ½ ticks after the write (on average, as
    /// on a real PIT).
    fn window(t0: u64, start_edge: u64, end_edge: u64) -> Window {
        let len = HZ * (2 * u64::from(TICKS_2MS) + 1) / (2 * PIT_HZ);
        Window {
            start_before: t0 - start_edge / 2,
            start_after: t0 + start_edge / 2,
            last_running: t0 + len - end_edge / 2,
            first_done: t0 + len + end_edge / 2,
            pit_ticks: TICKS_2MS,
            saw_running: true,
        }
    }

    fn close(a: u64, b: u64, ppm: u64) -> bool {
        a.abs_diff(b) * 1_000_000 <= b * ppm
    }

    #[test]
    fn window_arithmetic_uses_bracket_middles() {
        let w = Window {
            start_before: 1000,
            start_after: 1100,
            last_running: 5_000_900,
            first_done: 5_001_100,
            pit_ticks: 1193,
            saw_running: true,
        };
        // Middles at 1050 and 5_001_000; the window is 1193.5 PIT ticks.
        assert_eq!(w.tsc_ticks(), Some(4_999_950));
        assert_eq!(w.edges(), 300);
        assert_eq!(w.hz(), Some(4_999_950 * 2 * PIT_HZ / 2387));
    }

    #[test]
    fn clean_window_is_accepted_at_its_rate() {
        let v = window(1_000_000, 2_000, 2_000).verdict();
        let Verdict::Accepted(hz) = v else {
            panic!("{v:?}")
        };
        assert!(close(hz, HZ, 10), "{hz}");
    }

    #[test]
    fn wide_edge_is_rejected_as_stretched() {
        let len = HZ * u64::from(TICKS_2MS) / PIT_HZ;
        // The host thread was off the CPU for 3 ms across the terminal count:
        // the first poll that saw it done came 3 ms late.
        let mut w = window(1_000_000, 2_000, 2_000);
        w.first_done += HZ * 3 / 1000;
        assert!(matches!(w.verdict(), Verdict::Stretched { hz, .. } if hz > HZ * 3 / 2));
        // Held up between the start and the reading after it: shortened, caught too.
        let mut w = window(1_000_000, 2_000, 2_000);
        w.start_after += len / 2;
        assert!(matches!(w.verdict(), Verdict::Stretched { hz, .. } if hz < HZ));
        // Just under the limit is fine, just over is not.
        let ok = window(
            1_000_000,
            len / MAX_EDGE_FRACTION / 2,
            len / MAX_EDGE_FRACTION / 2,
        );
        assert!(
            matches!(ok.verdict(), Verdict::Accepted(_)),
            "{:?}",
            ok.verdict()
        );
        let over = window(1_000_000, len / MAX_EDGE_FRACTION, len / MAX_EDGE_FRACTION);
        assert!(matches!(over.verdict(), Verdict::Stretched { .. }));
    }

    #[test]
    fn out_of_order_or_empty_windows_are_inconsistent() {
        let mut w = window(1_000_000, 2_000, 2_000);
        w.last_running = w.start_before - 1;
        assert_eq!(w.verdict(), Verdict::Inconsistent);
        assert_eq!(w.tsc_ticks(), None);
        assert_eq!(w.edges(), 0);
        let mut w = window(1_000_000, 2_000, 2_000);
        w.first_done = w.last_running - 1;
        assert_eq!(w.verdict(), Verdict::Inconsistent);
        let mut w = window(1_000_000, 2_000, 2_000);
        w.pit_ticks = 0;
        assert_eq!(w.verdict(), Verdict::Inconsistent);
    }

    #[test]
    fn implausible_rates_are_rejected() {
        // A TSC that barely moved over 2 ms.
        let w = Window {
            start_before: 10,
            start_after: 10,
            last_running: 100,
            first_done: 100,
            pit_ticks: TICKS_2MS,
            saw_running: true,
        };
        assert!(matches!(w.verdict(), Verdict::Implausible(hz) if hz < MIN_PLAUSIBLE_HZ));
        // A count that ended at once while the TSC ran a second.
        let w = Window {
            start_before: 0,
            start_after: 0,
            last_running: 30_000_000_000,
            first_done: 30_000_000_000,
            pit_ticks: 1,
            saw_running: true,
        };
        assert!(matches!(w.verdict(), Verdict::Implausible(hz) if hz > MAX_PLAUSIBLE_HZ));
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2));
        assert_eq!(median(&mut [u64::MAX, u64::MAX]), Some(u64::MAX));
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn stops_after_enough_accepted_windows() {
        let mut c = Calibrator::new();
        for i in 0..WINDOWS_WANTED {
            assert!(!c.done());
            assert!(matches!(
                c.add(Some(window(1_000_000 * (i as u64 + 1) * 10, 500, 500))),
                Verdict::Accepted(_)
            ));
        }
        assert!(c.done());
        let r = c.result().unwrap();
        assert_eq!(
            (r.used, r.tried, r.precise),
            (WINDOWS_WANTED, WINDOWS_WANTED, true)
        );
        assert!(close(r.hz, HZ, 10), "{}", r.hz);
    }

    #[test]
    fn stretched_windows_do_not_move_the_result() {
        let mut c = Calibrator::new();
        let mut t = 1_000_000_000;
        // Every other window is held up at its end by 2 or 4 ms; one has
        // inconsistent readings.
        let mut i = 0;
        while !c.done() {
            let mut w = window(t, 3_000, 3_000);
            if i % 2 == 1 {
                w.first_done += HZ * (i % 4 + 1) / 1000;
            }
            if i == 4 {
                w.pit_ticks = 0;
            }
            c.add(Some(w));
            t += HZ / 100;
            i += 1;
        }
        let r = c.result().unwrap();
        assert!(r.precise);
        assert_eq!(r.used, WINDOWS_WANTED);
        assert!(r.tried > WINDOWS_WANTED);
        assert!(close(r.hz, HZ, 10), "{}", r.hz);
    }

    #[test]
    fn a_plain_median_survives_a_minority_of_skewed_windows() {
        // Windows whose edges look tight but whose rates are off (a host that
        // stalled the PIT's clock instead): the median ignores two of five.
        let mut rates = [HZ, HZ + 1000, HZ * 2, HZ / 3, HZ - 1000];
        assert_eq!(median(&mut rates), Some(HZ));
    }

    #[test]
    fn falls_back_to_stretched_windows_only_when_nothing_else() {
        let mut c = Calibrator::new();
        let mut w = window(1_000_000, 2_000, 2_000);
        w.first_done += HZ / 1000;
        let stretched_hz = w.hz().unwrap();
        c.add(Some(w));
        let mut bad = window(1_000_000, 0, 0);
        bad.pit_ticks = 0;
        for _ in 1..MAX_WINDOWS {
            assert!(!c.done());
            assert_eq!(c.add(Some(bad)), Verdict::Inconsistent);
        }
        assert!(c.done());
        // Further windows are not taken.
        assert_eq!(c.add(Some(window(1_000_000, 0, 0))), Verdict::Unfinished);
        let r = c.result().unwrap();
        assert_eq!(
            (r.hz, r.used, r.tried, r.precise),
            (stretched_hz, 1, MAX_WINDOWS, false)
        );
    }

    #[test]
    fn no_usable_window_gives_no_result() {
        let mut c = Calibrator::new();
        while !c.done() {
            let mut w = window(1_000_000, 0, 0);
            w.pit_ticks = 0;
            c.add(Some(w));
        }
        assert_eq!(c.tried(), MAX_WINDOWS);
        assert_eq!(c.result(), None);
    }

    #[test]
    fn a_window_that_never_ends_stops_calibration() {
        let mut c = Calibrator::new();
        assert!(matches!(
            c.add(Some(window(1_000_000, 500, 500))),
            Verdict::Accepted(_)
        ));
        assert_eq!(c.add(None), Verdict::Unfinished);
        assert!(c.done());
        assert_eq!(c.tried(), 2);
        // What was measured before still counts.
        let r = c.result().unwrap();
        assert_eq!((r.used, r.tried, r.precise), (1, 2, true));
        let mut c = Calibrator::new();
        c.add(None);
        assert!(c.done());
        assert_eq!(c.result(), None);
    }

    #[test]
    fn cpuid_leaves() {
        let exact = |hz| Some(CpuidRate { hz, exact: true });
        let nominal = |hz| Some(CpuidRate { hz, exact: false });
        // Crystal 24 MHz, ratio 200/2: 2.4 GHz, exact.
        assert_eq!(
            cpuid_tsc_hz(Some((2, 200, 24_000_000)), None),
            exact(2_400_000_000)
        );
        // Crystal not enumerated: leaf 0x16's base frequency (upper bits
        // reserved), nominal.
        assert_eq!(
            cpuid_tsc_hz(Some((2, 176, 0)), Some(0xABCD_0000 | 2100)),
            nominal(2_100_000_000)
        );
        // Leaf 0x15 all zero (not enumerated) and no 0x16: nothing.
        assert_eq!(cpuid_tsc_hz(Some((0, 0, 0)), None), None);
        assert_eq!(cpuid_tsc_hz(Some((0, 0, 0)), Some(0)), None);
        assert_eq!(cpuid_tsc_hz(None, None), None);
        // Only leaf 0x16.
        assert_eq!(cpuid_tsc_hz(None, Some(3000)), nominal(3_000_000_000));
    }

    fn pit(hz: u64, precise: bool) -> Option<Calibration> {
        Some(Calibration {
            hz,
            used: 5,
            tried: 6,
            precise,
        })
    }

    #[test]
    fn choose_prefers_exact_cpuid_only_when_the_pit_agrees() {
        let p = 2_445_414_000;
        let exact = |hz| Some(CpuidRate { hz, exact: true });
        assert_eq!(
            choose(pit(p, true), exact(2_450_000_000)),
            Some((2_450_000_000, Source::Cpuid { pit: Some(p) }))
        );
        // 3 % off: not believed.
        assert_eq!(
            choose(pit(p, true), exact(2_520_000_000)),
            Some((
                p,
                Source::Pit {
                    cpuid: Some(2_520_000_000)
                }
            ))
        );
        assert_eq!(
            choose(pit(p, true), None),
            Some((p, Source::Pit { cpuid: None }))
        );
        assert_eq!(
            choose(None, exact(2_400_000_000)),
            Some((2_400_000_000, Source::Cpuid { pit: None }))
        );
        // An absurd CPUID rate is ignored.
        assert_eq!(choose(None, exact(1)), None);
        assert_eq!(
            choose(pit(p, true), exact(1)),
            Some((p, Source::Pit { cpuid: None }))
        );
        assert_eq!(choose(None, None), None);
    }

    #[test]
    fn nominal_cpuid_never_overrides_a_precise_pit() {
        // Leaf 0x16 says 2.45 GHz; the TSC really runs 1875 ppm slower.
        let p = 2_445_414_000;
        let nominal = Some(CpuidRate {
            hz: 2_450_000_000,
            exact: false,
        });
        assert_eq!(
            choose(pit(p, true), nominal),
            Some((
                p,
                Source::Pit {
                    cpuid: Some(2_450_000_000)
                }
            ))
        );
        // With only disturbed PIT windows (or none), the nominal rate is
        // better than nothing, and than an imprecise figure.
        assert_eq!(
            choose(pit(1_000_000, false), nominal),
            Some((
                2_450_000_000,
                Source::Cpuid {
                    pit: Some(1_000_000)
                }
            ))
        );
        assert_eq!(
            choose(None, nominal),
            Some((2_450_000_000, Source::Cpuid { pit: None }))
        );
        // An imprecise PIT figure alone is still used.
        assert_eq!(
            choose(pit(p, false), None),
            Some((p, Source::Pit { cpuid: None }))
        );
    }

    #[test]
    fn a_pit_that_never_counted_gives_no_window() {
        // OUT2 read high on the first poll (port 0x61 all ones, or no PIT):
        // the readings would give ~1 MHz, a plausible but made-up rate.
        let w = Window {
            start_before: 1000,
            start_after: 1010,
            last_running: 1010,
            first_done: 1030,
            pit_ticks: TICKS_2MS,
            saw_running: false,
        };
        assert_eq!(w.verdict(), Verdict::Inconsistent);
        let mut c = Calibrator::new();
        while !c.done() {
            c.add(Some(w));
        }
        assert_eq!(c.tried(), MAX_WINDOWS);
        assert_eq!(c.result(), None);
    }

    #[test]
    fn a_window_is_half_a_tick_longer_than_its_count() {
        // A real PIT: TICKS_2MS + ½ ticks at HZ, measured back as HZ.
        let hz = window(1_000_000, 0, 0).hz().unwrap();
        assert!(close(hz, HZ, 1), "{hz}");
        // Taken as TICKS_2MS long, the same window would read 210 ppm high.
        assert!(hz * 2 * u64::from(TICKS_2MS) < HZ * (2 * u64::from(TICKS_2MS) + 1));
    }

    #[test]
    fn ticks_to_microseconds() {
        assert_eq!(ticks_to_us(2_445_414_000, 2_445_414_000), 1_000_000);
        assert_eq!(ticks_to_us(2_445_414, 2_445_414_000), 1_000);
        assert_eq!(ticks_to_us(u64::MAX, 1_000_000), u64::MAX);
        assert_eq!(ticks_to_us(5, 0), 0);
    }
}
