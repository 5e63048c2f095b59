//! The hypercall fuzzer's pure logic, host-tested with `cargo test -p fuzz --lib`:
//! the seeded PRNG every call is drawn from ([`Rng`], splitmix64), the
//! boundary values arguments are drawn from ([`BOUNDARY`]), and the kernel's
//! command line ([`Options`]).
//!
//! Invariant: the sequence of calls is a function of the seed alone (the
//! kernel draws every choice from one [`Rng`] in a fixed order and never from
//! a hypercall's result), so `seed=S calls=N` replays a run up to call N.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

/// splitmix64 (Steele, Lea, Flood): a 64-bit state advanced by a constant,
/// each output a mix of it. Small, fast, and every seed (0 too) is good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value in `0..n` (`n` > 0), by multiply-shift (no division).
    pub fn below(&mut self, n: u32) -> u32 {
        assert!(n > 0, "below(0)");
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }

    /// One element of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    /// A boundary value ([`BOUNDARY`]) or, one time in four, a random word.
    pub fn boundary_u32(&mut self) -> u32 {
        if self.one_in(4) {
            self.next_u32()
        } else {
            self.pick(&BOUNDARY)
        }
    }

    /// A count: small, a boundary value, or one near a power of two.
    pub fn count(&mut self) -> u32 {
        match self.below(4) {
            0 => self.below(4),
            1 => self.below(64),
            2 => self.boundary_u32(),
            _ => {
                let p = 1u32 << self.below(32);
                p.wrapping_add(self.below(3)).wrapping_sub(1)
            }
        }
    }
}

/// Values at the edges of what an argument may be: zero and one, the sign
/// boundaries, page and large-page boundaries, the hypervisor hole's start,
/// the 16-bit domid boundaries.
pub const BOUNDARY: [u32; 24] = [
    0,
    1,
    2,
    0xFFFF_FFFF,
    0xFFFF_FFFE,
    0x7FFF_FFFF,
    0x8000_0000,
    0x8000_0001,
    0xFFF,
    0x1000,
    0x1001,
    0x1FF,
    0x200,
    0x3FF,
    0x400,
    0x7FF0,
    0x7FFF,
    0xFFFF,
    0x1_0000,
    0xF580_0000,
    0xF57F_FFFF,
    0xFFFF_F000,
    0x3FFF_FFFF,
    0x4000_0000,
];

/// Which domain the fuzzer runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// An unprivileged domain dom0 created (`xm create fuzz.cfg`).
    DomU,
    /// The initial domain: the privileged calls too (domctl, sysctl,
    /// foreign mappings) on a domain it creates and on ids that do not exist.
    Dom0,
}

/// The kernel's command line: `fuzz=dom0|domu seed=S calls=N progress=K
/// trace=I skip=A-B verify=1` (any order; other words, such as `ip=`/`root=` xm adds, are
/// ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub mode: Mode,
    pub seed: u64,
    pub calls: u64,
    /// A progress line every this many calls (0: none).
    pub progress: u64,
    /// From this call index on, each call is printed before it is made.
    pub trace_from: Option<u64>,
    /// Calls in this index range (inclusive) are drawn but not made: to
    /// narrow down which earlier calls a failure needs (`skip=A-B`).
    pub skip: Option<(u64, u64)>,
    /// Checksum the kernel's image after every call and stop at the first
    /// call that changed it (`verify=1`: slow; finds writes into protected
    /// frames).
    pub verify: bool,
}

/// What in a command line could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    /// `key=value` with a value that is not a number (or mode).
    BadValue(&'a str),
}

impl core::fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OptionError::BadValue(w) => write!(f, "bad value in '{w}'"),
        }
    }
}

/// A decimal or `0x` hexadecimal number.
pub fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Options {
    /// The defaults: a domU, seed 1, 10 000 calls, progress every 1000.
    pub const DEFAULT: Options = Options {
        mode: Mode::DomU,
        seed: 1,
        calls: 10_000,
        progress: 1000,
        trace_from: None,
        skip: None,
        verify: false,
    };

    /// Whether call `i` is drawn but not made.
    pub fn skipped(&self, i: u64) -> bool {
        self.skip.is_some_and(|(a, b)| (a..=b).contains(&i))
    }

    pub fn parse(cmdline: &str) -> Result<Options, OptionError<'_>> {
        let mut o = Options::DEFAULT;
        for word in cmdline.split_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            let number = || parse_number(value).ok_or(OptionError::BadValue(word));
            match key {
                "fuzz" => {
                    o.mode = match value {
                        "dom0" => Mode::Dom0,
                        "domu" => Mode::DomU,
                        _ => return Err(OptionError::BadValue(word)),
                    }
                }
                "seed" => o.seed = number()?,
                "calls" => o.calls = number()?,
                "progress" => o.progress = number()?,
                "trace" => o.trace_from = Some(number()?),
                "verify" => o.verify = number()? != 0,
                "skip" => {
                    let (a, b) = value.split_once('-').unwrap_or((value, value));
                    let a = parse_number(a).ok_or(OptionError::BadValue(word))?;
                    let b = parse_number(b).ok_or(OptionError::BadValue(word))?;
                    o.skip = Some((a, b));
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let run = |seed| {
            let mut r = Rng::new(seed);
            (0..64).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        // Seed 0 is not degenerate.
        assert!(run(0).iter().all(|&v| v != 0));
    }

    #[test]
    fn splitmix64_reference_values() {
        // The published first outputs for seed 1234567.
        let mut r = Rng::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = r.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(Rng::new(1).below(1), 0);
    }

    #[test]
    fn counts_reach_the_edges() {
        let mut r = Rng::new(99);
        let counts: Vec<u32> = (0..10_000).map(|_| r.count()).collect();
        assert!(counts.contains(&0));
        assert!(counts.contains(&0xFFFF_FFFF));
        assert!(counts.contains(&0x8000_0000));
        assert!(counts.iter().any(|&c| c > 1 << 20));
    }

    #[test]
    fn options_parse_what_xm_passes() {
        let o = Options::parse("ip=10.0.0.2 root=/dev/sda1 seed=0x2a calls=1000000 progress=500")
            .unwrap();
        assert_eq!(o.mode, Mode::DomU);
        assert_eq!(o.seed, 42);
        assert_eq!(o.calls, 1_000_000);
        assert_eq!(o.progress, 500);
        assert_eq!(o.trace_from, None);
        let o = Options::parse("console=hvc0 fuzz=dom0 trace=17").unwrap();
        assert_eq!(o.mode, Mode::Dom0);
        assert_eq!(o.seed, Options::DEFAULT.seed);
        assert_eq!(o.trace_from, Some(17));
        assert_eq!(Options::parse("").unwrap(), Options::DEFAULT);
        let o = Options::parse("skip=10-20").unwrap();
        assert!(!o.skipped(9) && o.skipped(10) && o.skipped(20) && !o.skipped(21));
        assert_eq!(Options::parse("skip=7").unwrap().skip, Some((7, 7)));
        assert!(Options::parse("skip=7-x").is_err());
    }

    #[test]
    fn options_refuse_bad_values() {
        assert_eq!(
            Options::parse("seed=x1"),
            Err(OptionError::BadValue("seed=x1"))
        );
        assert_eq!(
            Options::parse("fuzz=hvm"),
            Err(OptionError::BadValue("fuzz=hvm"))
        );
        assert_eq!(
            Options::parse("calls=-1"),
            Err(OptionError::BadValue("calls=-1"))
        );
    }
}
