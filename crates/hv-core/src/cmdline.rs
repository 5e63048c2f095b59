//! The hypervisor command line: Xen's option syntax, parsed without a heap.
//!
//! The boot loader hands Oxen one line of text (`multiboot2 /boot/oxen.elf
//! dom0_mem=256M loglvl=all com1=115200,8n1 console=com1`). [`parse`] turns it
//! into [`Options`] plus a list of [`Warning`]s. Nothing on the command line is
//! ever fatal: an unknown option or a malformed value produces a warning and
//! the option keeps its previous value (its default, or an earlier valid
//! occurrence). When an option appears more than once, the last valid
//! occurrence wins, as in Xen.
//!
//! Syntax, following Xen:
//! - options are separated by ASCII whitespace; the line ends at the first NUL;
//! - the first word is the kernel image path (skipped) when it contains a `/`
//!   and no `=` — GRUB and QEMU's `-kernel` put it there;
//! - a lone `--` ends the hypervisor options; the rest of the line is kept in
//!   [`Options::dom0_extra`] (Xen appends it to dom0's command line);
//! - `-` and `_` are interchangeable in option names (`dom0-mem` is
//!   `dom0_mem`); names are otherwise case-sensitive, keyword values are not;
//! - boolean options accept `name`, `name=<bool>` and `no-name[=<bool>]`, where
//!   `<bool>` is `1|0|yes|no|true|false|on|off|enable|disable`.
//!
//! Everything borrows from the command line, so the `'a` lifetime is the
//! lifetime of the boot loader's string.

use core::fmt;

/// How many warnings [`parse`] keeps; see [`Warnings`].
pub const MAX_WARNINGS: usize = 16;

/// The warnings [`parse`] collected. When more than [`MAX_WARNINGS`] arose,
/// the last entry is [`Warning::TooMany`], counting the ones left out.
pub type Warnings<'a> = heapless::Vec<Warning<'a>, MAX_WARNINGS>;

use crate::addr::PAGE_SIZE;

const MIB: u64 = 1 << 20;

/// The most memory kept back for the hypervisor when `dom0_mem` gives no
/// amount (Xen keeps `min(avail / 16, 128 MiB)`).
pub const DOM0_DEFAULT_RESERVE_CAP: u64 = 128 * MIB;

// ---------------------------------------------------------------------------
// Warnings

/// A problem found on the command line. Never fatal: the option concerned is
/// ignored and keeps its previous value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning<'a> {
    /// An option name Oxen does not know. `name` is as written (including a
    /// `no-` prefix); `value` is what followed the first `=`, if anything.
    Unknown {
        name: &'a str,
        value: Option<&'a str>,
    },
    /// A known option (canonical name) whose value could not be used. For a
    /// list option such as `console`, `value` is the one offending entry and
    /// the other entries are kept.
    Malformed {
        name: &'static str,
        value: &'a str,
        reason: &'static str,
    },
    /// A known, non-boolean option given without a value (`dom0_mem` or
    /// `dom0_mem=`).
    MissingValue { name: &'static str },
    /// `no-<name>` used on an option that is not boolean.
    NotBoolean { name: &'static str },
    /// Only from [`parse`], as its last entry: this many warnings were left
    /// out (counting the one whose slot this entry took).
    TooMany { dropped: usize },
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Warning::Unknown { name, value: None } => {
                write!(f, "unknown option '{name}' ignored")
            }
            Warning::Unknown {
                name,
                value: Some(value),
            } => write!(f, "unknown option '{name}={value}' ignored"),
            Warning::Malformed {
                name,
                value,
                reason,
            } => write!(
                f,
                "malformed value '{value}' for option '{name}' ({reason}) ignored"
            ),
            Warning::MissingValue { name } => {
                write!(f, "option '{name}' needs a value; ignored")
            }
            Warning::NotBoolean { name } => {
                write!(f, "option '{name}' is not boolean; 'no-{name}' ignored")
            }
            Warning::TooMany { dropped } => {
                write!(f, "{dropped} more command line warnings not shown")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Sizes and dom0_mem

/// A byte count that displays in the largest unit dividing it exactly, in the
/// syntax `dom0_mem=` reads back (`256M`, `1G`, `4K`, `1000B`, `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v == 0 {
            return f.write_str("0");
        }
        for (shift, unit) in [(40u32, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
            if v.trailing_zeros() >= shift {
                return write!(f, "{}{unit}", v >> shift);
            }
        }
        write!(f, "{v}B")
    }
}

/// One `dom0_mem` size: absolute, or "everything available except".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// `<size>`: this many bytes.
    Bytes(u64),
    /// `-<size>`: all available memory except this many bytes.
    AllBut(u64),
}

impl Amount {
    /// The amount in bytes given `avail` bytes of available memory
    /// (`AllBut` saturates at 0).
    pub const fn resolve(self, avail: u64) -> u64 {
        match self {
            Amount::Bytes(n) => n,
            Amount::AllBut(n) => avail.saturating_sub(n),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Amount::Bytes(n) => write!(f, "{}", ByteSize(n)),
            Amount::AllBut(n) => write!(f, "-{}", ByteSize(n)),
        }
    }
}

/// `dom0_mem=[min:<amt>,][max:<amt>,][<amt>]` (items in any order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dom0Mem {
    /// The amount asked for; `None` means "all but a reserve".
    pub amount: Option<Amount>,
    /// Lower bound, `min:<amt>`.
    pub min: Option<Amount>,
    /// Upper bound, `max:<amt>`.
    pub max: Option<Amount>,
}

impl Dom0Mem {
    /// True when nothing was given (the option was absent).
    pub const fn is_default(&self) -> bool {
        self.amount.is_none() && self.min.is_none() && self.max.is_none()
    }

    /// Dom0's memory in bytes, given `avail` bytes the hypervisor can hand
    /// out, computed as Xen does:
    /// 1. the amount (`AllBut` saturating at 0), or without one `avail` minus
    ///    a reserve of `min(avail / 16, 128 MiB)`;
    /// 2. lowered to `max`, then raised to `min` (so `min` wins over `max`);
    /// 3. never more than `avail`;
    /// 4. rounded down to a 4 KiB page.
    pub fn resolve(&self, avail: u64) -> u64 {
        let mut bytes = match self.amount {
            Some(amount) => amount.resolve(avail),
            None => avail - (avail / 16).min(DOM0_DEFAULT_RESERVE_CAP),
        };
        if let Some(max) = self.max {
            bytes = bytes.min(max.resolve(avail));
        }
        if let Some(min) = self.min {
            bytes = bytes.max(min.resolve(avail));
        }
        bytes.min(avail) & !(PAGE_SIZE - 1)
    }
}

impl fmt::Display for Dom0Mem {
    /// `min:64M,max:512M,-128M`; `default` when nothing was given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            return f.write_str("default");
        }
        let mut sep = "";
        if let Some(min) = self.min {
            write!(f, "min:{min}")?;
            sep = ",";
        }
        if let Some(max) = self.max {
            write!(f, "{sep}max:{max}")?;
            sep = ",";
        }
        if let Some(amount) = self.amount {
            write!(f, "{sep}{amount}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Log levels

/// Xen's message levels, least to most verbose. `Ord` follows verbosity:
/// a message of level `m` is printed under threshold `t` when `m <= t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    None,
    Error,
    Warning,
    Info,
    Debug,
    All,
}

impl LogLevel {
    const ALL_LEVELS: [LogLevel; 6] = [
        LogLevel::None,
        LogLevel::Error,
        LogLevel::Warning,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::All,
    ];

    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            LogLevel::None => "none",
            LogLevel::Error => "error",
            LogLevel::Warning => "warning",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::All => "all",
        }
    }

    /// 0..=5 in the order of `log::LevelFilter` (Off, Error, Warn, Info,
    /// Debug, Trace), so that `LevelFilter::iter().nth(i)` maps it without
    /// this crate depending on `log`.
    pub const fn filter_index(self) -> usize {
        self as usize
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL_LEVELS
            .into_iter()
            .find(|l| s.eq_ignore_ascii_case(l.name()))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `<level>[/<rate-limited level>]`: messages up to the first level are always
/// printed, those up to the second are printed rate-limited. Without a second
/// level it is `max(first, Warning)` (Xen's default upper bound); it is never
/// below the first.
fn parse_loglvl(value: &str) -> Result<(LogLevel, LogLevel), &'static str> {
    let (lower, upper) = match value.split_once('/') {
        Some((l, u)) => (l, Some(u)),
        None => (value, None),
    };
    let lower = LogLevel::from_name(lower).ok_or("unknown log level")?;
    let upper = match upper {
        Some(u) => LogLevel::from_name(u).ok_or("unknown rate-limited log level")?,
        None => LogLevel::Warning,
    };
    Ok((lower, upper.max(lower)))
}

/// Prints `lower` alone when that parses back to the same pair.
fn fmt_loglvl(f: &mut fmt::Formatter<'_>, lower: LogLevel, upper: LogLevel) -> fmt::Result {
    if upper == lower.max(LogLevel::Warning) {
        write!(f, "{lower}")
    } else {
        write!(f, "{lower}/{upper}")
    }
}

// ---------------------------------------------------------------------------
// Serial ports

/// A serial baud rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baud {
    /// `auto`: keep whatever divisor the firmware programmed.
    Auto,
    /// A fixed rate, 2..=115200.
    Rate(u32),
}

impl fmt::Display for Baud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Baud::Auto => f.write_str("auto"),
            Baud::Rate(r) => write!(f, "{r}"),
        }
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Odd,
    Even,
    Mark,
    Space,
}

impl Parity {
    /// The letter in the `8n1` field.
    pub const fn letter(self) -> char {
        match self {
            Parity::None => 'n',
            Parity::Odd => 'o',
            Parity::Even => 'e',
            Parity::Mark => 'm',
            Parity::Space => 's',
        }
    }

    fn from_letter(c: u8) -> Option<Self> {
        match c.to_ascii_lowercase() {
            b'n' => Some(Parity::None),
            b'o' => Some(Parity::Odd),
            b'e' => Some(Parity::Even),
            b'm' => Some(Parity::Mark),
            b's' => Some(Parity::Space),
            _ => None,
        }
    }
}

/// `com1=<baud>[,<data><parity><stop>[,<io-base>[,<irq>]]]`; empty fields
/// take the port's defaults (e.g. `com1=115200,,0x2f8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComConfig {
    pub baud: Baud,
    /// 5..=8.
    pub data_bits: u8,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    /// I/O port base, nonzero.
    pub io_base: u16,
    /// ISA IRQ 1..=15, or 0 for polled operation (Xen's meaning).
    pub irq: u8,
}

impl ComConfig {
    /// The 16550's input clock divided by 16: the highest rate.
    pub const BASE_BAUD: u32 = 115_200;

    /// COM1 defaults: auto baud, 8n1, 0x3f8, IRQ 4.
    pub const COM1_DEFAULT: ComConfig = ComConfig {
        baud: Baud::Auto,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
        io_base: 0x3f8,
        irq: 4,
    };

    /// COM2 defaults: auto baud, 8n1, 0x2f8, IRQ 3.
    pub const COM2_DEFAULT: ComConfig = ComConfig {
        io_base: 0x2f8,
        irq: 3,
        ..Self::COM1_DEFAULT
    };

    /// The divisor latch value for a fixed rate (`None` for `auto`). Parsed
    /// rates always fit; a hand-built out-of-range rate is clamped to
    /// `1..=0xffff`.
    pub const fn divisor(&self) -> Option<u16> {
        match self.baud {
            Baud::Auto => None,
            Baud::Rate(0) => Some(u16::MAX),
            Baud::Rate(r) => {
                let d = Self::BASE_BAUD / r;
                Some(if d == 0 {
                    1
                } else if d > u16::MAX as u32 {
                    u16::MAX
                } else {
                    d as u16
                })
            }
        }
    }

    /// The 16550 line control register value (DLAB clear) for the
    /// data/parity/stop settings.
    pub const fn line_control(&self) -> u8 {
        let data = (self.data_bits.saturating_sub(5)) & 0b11;
        let stop = if self.stop_bits == 2 { 0b100 } else { 0 };
        let parity = match self.parity {
            Parity::None => 0x00,
            Parity::Odd => 0x08,
            Parity::Even => 0x18,
            Parity::Mark => 0x28,
            Parity::Space => 0x38,
        };
        data | stop | parity
    }
}

impl fmt::Display for ComConfig {
    /// `115200,8n1,0x3f8,4`: every field, in the syntax `com1=` reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{}{}{},{:#x},{}",
            self.baud,
            self.data_bits,
            self.parity.letter(),
            self.stop_bits,
            self.io_base,
            self.irq
        )
    }
}

fn parse_com(value: &str, default: ComConfig) -> Result<ComConfig, &'static str> {
    let mut cfg = default;
    let mut fields = value.split(',');
    // `split` always yields at least one item.
    let baud = fields.next().unwrap_or("");
    if baud.contains('/') {
        return Err("base baud rate not supported");
    }
    cfg.baud = if baud.is_empty() || baud.eq_ignore_ascii_case("auto") {
        Baud::Auto
    } else {
        let rate = parse_u64(baud).map_err(|_| "bad baud rate")?;
        if !(2..=u64::from(ComConfig::BASE_BAUD)).contains(&rate) {
            return Err("baud rate out of range 2..=115200");
        }
        Baud::Rate(rate as u32)
    };
    if let Some(dps) = fields.next().filter(|s| !s.is_empty()) {
        let &[d, p, s] = dps.as_bytes() else {
            return Err("expected <data><parity><stop> like 8n1");
        };
        cfg.data_bits = match d {
            b'5'..=b'8' => d - b'0',
            _ => return Err("data bits must be 5..=8"),
        };
        cfg.parity = Parity::from_letter(p).ok_or("parity must be one of n o e m s")?;
        cfg.stop_bits = match s {
            b'1' | b'2' => s - b'0',
            _ => return Err("stop bits must be 1 or 2"),
        };
    }
    if let Some(base) = fields.next().filter(|s| !s.is_empty()) {
        cfg.io_base = match parse_u64(base) {
            Ok(b @ 1..=0xffff) => b as u16,
            _ => return Err("bad I/O base"),
        };
    }
    if let Some(irq) = fields.next().filter(|s| !s.is_empty()) {
        cfg.irq = match parse_u64(irq) {
            Ok(i @ 0..=15) => i as u8,
            _ => return Err("IRQ must be 0..=15"),
        };
    }
    if fields.next().is_some() {
        return Err("too many fields");
    }
    Ok(cfg)
}

/// Where the hypervisor console goes (`console=com1,vga`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSet {
    pub com1: bool,
    pub com2: bool,
    pub vga: bool,
}

impl ConsoleSet {
    /// Without a `console=` option: COM1 only.
    pub const DEFAULT: ConsoleSet = ConsoleSet {
        com1: true,
        com2: false,
        vga: false,
    };
    /// `console=none`.
    pub const NONE: ConsoleSet = ConsoleSet {
        com1: false,
        com2: false,
        vga: false,
    };
}

impl Default for ConsoleSet {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for ConsoleSet {
    /// `com1,vga`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (on, name) in [(self.com1, "com1"), (self.com2, "com2"), (self.vga, "vga")] {
            if on {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        if sep.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Scheduler, vCPUs, test hooks

/// `sched=`: the schedulers Xen offers. Oxen may run one scheduler whatever
/// is asked; this records the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Credit,
    Credit2,
    Sedf,
    Rtds,
    Null,
    Arinc653,
}

impl Scheduler {
    const ALL: [Scheduler; 6] = [
        Scheduler::Credit,
        Scheduler::Credit2,
        Scheduler::Sedf,
        Scheduler::Rtds,
        Scheduler::Null,
        Scheduler::Arinc653,
    ];

    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Scheduler::Credit => "credit",
            Scheduler::Credit2 => "credit2",
            Scheduler::Sedf => "sedf",
            Scheduler::Rtds => "rtds",
            Scheduler::Null => "null",
            Scheduler::Arinc653 => "arinc653",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|sch| s.eq_ignore_ascii_case(sch.name()))
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `dom0_max_vcpus=`: `<n>`, `<min>-`, `<min>-<max>` or `-<max>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuRange {
    /// At least 1.
    pub min: u32,
    /// `None`: as many as there are CPUs. Never below `min`.
    pub max: Option<u32>,
}

impl VcpuRange {
    /// Dom0's vCPU count given `cpus` physical CPUs: `cpus` raised to `min`
    /// then lowered to `max` (Xen's order). The caller applies its own cap
    /// (Oxen: 1 until SMP; the PV ABI's legacy limit is 32).
    pub fn resolve(&self, cpus: u32) -> u32 {
        let n = cpus.max(self.min);
        match self.max {
            Some(max) => n.min(max),
            None => n,
        }
    }
}

impl fmt::Display for VcpuRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max {
            Some(max) if max == self.min => write!(f, "{max}"),
            Some(max) => write!(f, "{}-{max}", self.min),
            None => write!(f, "{}-", self.min),
        }
    }
}

fn parse_vcpus(value: &str) -> Result<VcpuRange, &'static str> {
    const BAD: &str = "expected <n>, <min>-, <min>-<max> or -<max>";
    let count = |s: &str| -> Result<u32, &'static str> {
        match parse_u64(s) {
            Ok(0) => Err("vCPU count must be at least 1"),
            Ok(n) => u32::try_from(n).map_err(|_| "vCPU count too large"),
            Err(_) => Err(BAD),
        }
    };
    let range = match value.split_once('-') {
        None => {
            let n = count(value)?;
            VcpuRange {
                min: n,
                max: Some(n),
            }
        }
        Some(("", "")) => return Err(BAD),
        Some(("", max)) => VcpuRange {
            min: 1,
            max: Some(count(max)?),
        },
        Some((min, "")) => VcpuRange {
            min: count(min)?,
            max: None,
        },
        Some((min, max)) => VcpuRange {
            min: count(min)?,
            max: Some(count(max)?),
        },
    };
    match range.max {
        Some(max) if max < range.min => Err("max below min"),
        _ => Ok(range),
    }
}

/// TEST-ONLY `selftest_fault=`: a fault Oxen raises on purpose after bring-up,
/// to exercise its exception reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelftestFault {
    /// `pf`: a page fault.
    PageFault,
    /// `de`: a divide error.
    DivideError,
    /// `fxrstor`: an FPU image the CPU refuses (reserved MXCSR bits) is
    /// loaded; the fixup resets the FPU state and Oxen carries on.
    Fxrstor,
}

impl SelftestFault {
    /// The name used on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            SelftestFault::PageFault => "pf",
            SelftestFault::DivideError => "de",
            SelftestFault::Fxrstor => "fxrstor",
        }
    }
}

impl fmt::Display for SelftestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Options

/// Everything the command line sets. `Options::default()` is what an empty
/// command line gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    /// The skipped first word (kernel image path), if there was one.
    pub image: Option<&'a str>,
    /// `dom0_mem=`; default: nothing given (see [`Dom0Mem::resolve`]).
    pub dom0_mem: Dom0Mem,
    /// `loglvl=` first level; default `Warning`.
    pub loglvl: LogLevel,
    /// `loglvl=` rate-limited level; default `Warning`, never below `loglvl`.
    pub loglvl_rate_limited: LogLevel,
    /// `guest_loglvl=` first level (guest messages printed whatever the
    /// rate); default `None`, Xen's release default.
    pub guest_loglvl: LogLevel,
    /// `guest_loglvl=` rate-limited level; default `Warning`, never below
    /// `guest_loglvl` (see `crate::ratelimit`).
    pub guest_loglvl_rate_limited: LogLevel,
    /// `com1=`; `None` when absent (use [`ComConfig::COM1_DEFAULT`]).
    pub com1: Option<ComConfig>,
    /// `com2=`; `None` when absent (use [`ComConfig::COM2_DEFAULT`]).
    pub com2: Option<ComConfig>,
    /// `console=`; default COM1 only.
    pub console: ConsoleSet,
    /// `noreboot`: halt instead of rebooting on crash/shutdown.
    pub noreboot: bool,
    /// `sched=`; unknown names are warned about and ignored.
    pub sched: Option<Scheduler>,
    /// `dom0_max_vcpus=`.
    pub dom0_max_vcpus: Option<VcpuRange>,
    /// `mm_audit`: recount every frame's references after each MMU hypercall
    /// and stop on the first disagreement (a debugging aid; slow).
    pub mm_audit: bool,
    /// `mm_audit_every=N` (N >= 1): with `mm_audit`, recount after every
    /// Nth MMU hypercall only (long fuzz runs); `None` is every one.
    pub mm_audit_every: Option<u32>,
    /// TEST-ONLY `selftest_fault=pf|de|fxrstor`.
    pub selftest_fault: Option<SelftestFault>,
    /// TEST-ONLY `debug_exit=<port>`: QEMU isa-debug-exit port to write when
    /// Oxen halts.
    pub debug_exit: Option<u16>,
    /// Whatever followed a lone `--` (trimmed), if non-empty.
    pub dom0_extra: Option<&'a str>,
}

impl Options<'_> {
    /// The options of an empty command line.
    pub const DEFAULT: Options<'static> = Options {
        image: None,
        dom0_mem: Dom0Mem {
            amount: None,
            min: None,
            max: None,
        },
        loglvl: LogLevel::Warning,
        loglvl_rate_limited: LogLevel::Warning,
        guest_loglvl: LogLevel::None,
        guest_loglvl_rate_limited: LogLevel::Warning,
        com1: None,
        com2: None,
        console: ConsoleSet::DEFAULT,
        noreboot: false,
        sched: None,
        dom0_max_vcpus: None,
        mm_audit: false,
        mm_audit_every: None,
        selftest_fault: None,
        debug_exit: None,
        dom0_extra: None,
    };
}

impl Options<'_> {
    /// The field a boolean option sets; `None` for the other options.
    fn bool_field(&mut self, opt: Opt) -> Option<&mut bool> {
        match opt {
            Opt::Noreboot => Some(&mut self.noreboot),
            Opt::MmAudit => Some(&mut self.mm_audit),
            _ => None,
        }
    }
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options::DEFAULT
    }
}

impl fmt::Display for Options<'_> {
    /// The effective options in command-line syntax, e.g.
    /// `dom0_mem=256M loglvl=all guest_loglvl=none com1=115200,8n1,0x3f8,4
    /// console=com1`. Always shows the log levels and console; shows the
    /// others only when set. Parsing this text gives the same options (apart
    /// from `image` and `dom0_extra`, which are not printed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.dom0_mem.is_default() {
            write!(f, "dom0_mem={} ", self.dom0_mem)?;
        }
        f.write_str("loglvl=")?;
        fmt_loglvl(f, self.loglvl, self.loglvl_rate_limited)?;
        f.write_str(" guest_loglvl=")?;
        fmt_loglvl(f, self.guest_loglvl, self.guest_loglvl_rate_limited)?;
        if let Some(com1) = self.com1 {
            write!(f, " com1={com1}")?;
        }
        if let Some(com2) = self.com2 {
            write!(f, " com2={com2}")?;
        }
        write!(f, " console={}", self.console)?;
        if self.noreboot {
            f.write_str(" noreboot")?;
        }
        if let Some(sched) = self.sched {
            write!(f, " sched={sched}")?;
        }
        if let Some(vcpus) = self.dom0_max_vcpus {
            write!(f, " dom0_max_vcpus={vcpus}")?;
        }
        if self.mm_audit {
            f.write_str(" mm_audit")?;
        }
        if let Some(n) = self.mm_audit_every {
            write!(f, " mm_audit_every={n}")?;
        }
        if let Some(fault) = self.selftest_fault {
            write!(f, " selftest_fault={fault}")?;
        }
        if let Some(port) = self.debug_exit {
            write!(f, " debug_exit={port:#x}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Dom0Mem,
    Loglvl,
    GuestLoglvl,
    Com1,
    Com2,
    Console,
    Noreboot,
    Sched,
    Dom0MaxVcpus,
    MmAudit,
    MmAuditEvery,
    SelftestFault,
    DebugExit,
}

impl Opt {
    const ALL: [Opt; 13] = [
        Opt::Dom0Mem,
        Opt::Loglvl,
        Opt::GuestLoglvl,
        Opt::Com1,
        Opt::Com2,
        Opt::Console,
        Opt::Noreboot,
        Opt::Sched,
        Opt::Dom0MaxVcpus,
        Opt::MmAudit,
        Opt::MmAuditEvery,
        Opt::SelftestFault,
        Opt::DebugExit,
    ];

    const fn name(self) -> &'static str {
        match self {
            Opt::Dom0Mem => "dom0_mem",
            Opt::Loglvl => "loglvl",
            Opt::GuestLoglvl => "guest_loglvl",
            Opt::Com1 => "com1",
            Opt::Com2 => "com2",
            Opt::Console => "console",
            Opt::Noreboot => "noreboot",
            Opt::Sched => "sched",
            Opt::Dom0MaxVcpus => "dom0_max_vcpus",
            Opt::MmAudit => "mm_audit",
            Opt::MmAuditEvery => "mm_audit_every",
            Opt::SelftestFault => "selftest_fault",
            Opt::DebugExit => "debug_exit",
        }
    }

    fn lookup(name: &str) -> Option<Opt> {
        Self::ALL.into_iter().find(|o| name_eq(name, o.name()))
    }
}

/// Option-name equality with `-` and `_` interchangeable.
fn name_eq(given: &str, canonical: &str) -> bool {
    let norm = |b: u8| if b == b'-' { b'_' } else { b };
    given.len() == canonical.len()
        && given
            .bytes()
            .zip(canonical.bytes())
            .all(|(a, b)| norm(a) == norm(b))
}

fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["1", "yes", "true", "on", "enable"];
    const FALSE: [&str; 5] = ["0", "no", "false", "off", "disable"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(false)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumError {
    Invalid,
    Overflow,
}

/// A leading unsigned number (decimal, or hex after `0x`/`0X`) and the rest.
fn parse_u64_prefix(s: &str) -> Result<(u64, &str), NumError> {
    let (body, radix) = match s.get(..2) {
        Some("0x" | "0X") if s.len() > 2 => (&s[2..], 16),
        _ => (s, 10),
    };
    let digits = body
        .bytes()
        .take_while(|b| char::from(*b).is_digit(radix))
        .count();
    if digits == 0 {
        return Err(NumError::Invalid);
    }
    // Only digits are left, so the one possible error is overflow.
    let value = u64::from_str_radix(&body[..digits], radix).map_err(|_| NumError::Overflow)?;
    Ok((value, &body[digits..]))
}

/// A whole unsigned number (decimal, or hex after `0x`).
fn parse_u64(s: &str) -> Result<u64, NumError> {
    match parse_u64_prefix(s)? {
        (v, "") => Ok(v),
        _ => Err(NumError::Invalid),
    }
}

/// Xen's size syntax: a number with an optional unit `T G M K B`
/// (case-insensitive); no unit means KiB.
fn parse_size(s: &str) -> Result<u64, &'static str> {
    const BAD: &str = "bad size";
    const LARGE: &str = "size too large";
    let (value, rest) = parse_u64_prefix(s).map_err(|e| match e {
        NumError::Invalid => BAD,
        NumError::Overflow => LARGE,
    })?;
    let shift = match rest.as_bytes() {
        [] => 10,
        [unit] => match unit.to_ascii_lowercase() {
            b't' => 40,
            b'g' => 30,
            b'm' => 20,
            b'k' => 10,
            b'b' => 0,
            _ => return Err(BAD),
        },
        _ => return Err(BAD),
    };
    value.checked_mul(1u64 << shift).ok_or(LARGE)
}

fn parse_amount(s: &str) -> Result<Amount, &'static str> {
    match s.strip_prefix('-') {
        Some(rest) => parse_size(rest).map(Amount::AllBut),
        None => parse_size(s).map(Amount::Bytes),
    }
}

fn parse_dom0_mem(value: &str) -> Result<Dom0Mem, &'static str> {
    let mut mem = Dom0Mem::default();
    for item in value.split(',') {
        if item.is_empty() {
            return Err("empty item");
        }
        if let Some(v) = item.strip_prefix("min:") {
            mem.min = Some(parse_amount(v)?);
        } else if let Some(v) = item.strip_prefix("max:") {
            mem.max = Some(parse_amount(v)?);
        } else {
            mem.amount = Some(parse_amount(item)?);
        }
    }
    Ok(mem)
}

/// `console=`: each known entry is applied, each unknown one warned about.
/// When no entry is recognised at all, the previous setting is kept.
fn parse_console<'a>(value: &'a str, warn: &mut impl FnMut(Warning<'a>)) -> Option<ConsoleSet> {
    let mut set = ConsoleSet::NONE;
    let mut recognised = false;
    for entry in value.split(',').filter(|e| !e.is_empty()) {
        let field = if entry.eq_ignore_ascii_case("com1") {
            &mut set.com1
        } else if entry.eq_ignore_ascii_case("com2") {
            &mut set.com2
        } else if entry.eq_ignore_ascii_case("vga") {
            &mut set.vga
        } else if entry.eq_ignore_ascii_case("none") {
            recognised = true;
            continue;
        } else {
            warn(Warning::Malformed {
                name: Opt::Console.name(),
                value: entry,
                reason: "unknown console device",
            });
            continue;
        };
        *field = true;
        recognised = true;
    }
    recognised.then_some(set)
}

/// Applies one non-boolean option with a non-empty value.
fn apply<'a>(
    opts: &mut Options<'a>,
    opt: Opt,
    value: &'a str,
    warn: &mut impl FnMut(Warning<'a>),
) -> Result<(), &'static str> {
    match opt {
        Opt::Dom0Mem => opts.dom0_mem = parse_dom0_mem(value)?,
        Opt::Loglvl => (opts.loglvl, opts.loglvl_rate_limited) = parse_loglvl(value)?,
        Opt::GuestLoglvl => {
            (opts.guest_loglvl, opts.guest_loglvl_rate_limited) = parse_loglvl(value)?;
        }
        Opt::Com1 => opts.com1 = Some(parse_com(value, ComConfig::COM1_DEFAULT)?),
        Opt::Com2 => opts.com2 = Some(parse_com(value, ComConfig::COM2_DEFAULT)?),
        Opt::Console => {
            if let Some(set) = parse_console(value, warn) {
                opts.console = set;
            }
        }
        Opt::Sched => {
            opts.sched = Some(Scheduler::from_name(value).ok_or("unknown scheduler")?);
        }
        Opt::Dom0MaxVcpus => opts.dom0_max_vcpus = Some(parse_vcpus(value)?),
        Opt::SelftestFault => {
            opts.selftest_fault = Some(if value.eq_ignore_ascii_case("pf") {
                SelftestFault::PageFault
            } else if value.eq_ignore_ascii_case("de") {
                SelftestFault::DivideError
            } else if value.eq_ignore_ascii_case("fxrstor") {
                SelftestFault::Fxrstor
            } else {
                return Err("expected pf, de or fxrstor");
            });
        }
        Opt::MmAuditEvery => {
            opts.mm_audit_every = Some(match parse_u64(value) {
                Ok(n @ 1..=0xFFFF_FFFF) => n as u32,
                _ => return Err("expected a count 1..=4294967295"),
            });
        }
        Opt::DebugExit => {
            opts.debug_exit = Some(match parse_u64(value) {
                Ok(p @ 1..=0xffff) => p as u16,
                _ => return Err("expected an I/O port 1..=0xffff"),
            });
        }
        // Boolean options never get here.
        Opt::Noreboot | Opt::MmAudit => {}
    }
    Ok(())
}

/// Words separated by ASCII whitespace, remembering where the last one ended.
struct Words<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Words<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.s.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        while self.pos < bytes.len() && !bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        // ASCII whitespace bytes are always character boundaries.
        (start < self.pos).then(|| &self.s[start..self.pos])
    }
}

/// Parses `cmdline`, reporting every warning to `warn` as it is found.
pub fn parse_with<'a>(cmdline: &'a str, mut warn: impl FnMut(Warning<'a>)) -> Options<'a> {
    let cmdline = cmdline.split('\0').next().unwrap_or("");
    let mut opts = Options::default();
    let mut words = Words { s: cmdline, pos: 0 };
    let mut first = true;
    while let Some(word) = words.next() {
        if core::mem::take(&mut first) && word.contains('/') && !word.contains('=') {
            opts.image = Some(word);
            continue;
        }
        if word == "--" {
            let extra = words.rest().trim_ascii();
            opts.dom0_extra = (!extra.is_empty()).then_some(extra);
            break;
        }
        let (raw_name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word, None),
        };
        let (negated, name) = match raw_name.strip_prefix("no-") {
            Some(rest) => (true, rest),
            None => (false, raw_name),
        };
        let Some(opt) = Opt::lookup(name) else {
            warn(Warning::Unknown {
                name: raw_name,
                value,
            });
            continue;
        };
        if let Some(field) = opts.bool_field(opt) {
            let on = match value.map(parse_bool) {
                None => true,
                Some(Some(b)) => b,
                Some(None) => {
                    warn(Warning::Malformed {
                        name: opt.name(),
                        value: value.unwrap_or(""),
                        reason: "expected 1/0, yes/no, true/false, on/off",
                    });
                    continue;
                }
            };
            *field = on != negated;
            continue;
        }
        if negated {
            warn(Warning::NotBoolean { name: opt.name() });
            continue;
        }
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            warn(Warning::MissingValue { name: opt.name() });
            continue;
        };
        if let Err(reason) = apply(&mut opts, opt, value, &mut warn) {
            warn(Warning::Malformed {
                name: opt.name(),
                value,
                reason,
            });
        }
    }
    opts
}

/// Parses `cmdline`, collecting up to [`MAX_WARNINGS`] warnings (see
/// [`Warnings`]). Use [`parse_with`] to see every warning.
pub fn parse(cmdline: &str) -> (Options<'_>, Warnings<'_>) {
    let mut warnings = Warnings::new();
    let mut dropped = 0usize;
    let opts = parse_with(cmdline, |w| {
        if warnings.push(w).is_err() {
            dropped += 1;
        }
    });
    if dropped > 0 {
        // Give up the last real warning's slot to say how many are missing.
        warnings.pop();
        let _ = warnings.push(Warning::TooMany {
            dropped: dropped + 1,
        });
    }
    (opts, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KIB: u64 = 1 << 10;
    const GIB: u64 = 1 << 30;
    const TIB: u64 = 1 << 40;

    /// Parses, collecting every warning.
    fn run(cmdline: &str) -> (Options<'_>, Vec<Warning<'_>>) {
        let mut warnings = Vec::new();
        let opts = parse_with(cmdline, |w| warnings.push(w));
        (opts, warnings)
    }

    /// Parses a line that must give no warning.
    fn clean(cmdline: &str) -> Options<'_> {
        let (opts, warnings) = run(cmdline);
        assert!(warnings.is_empty(), "{cmdline:?}: {warnings:?}");
        opts
    }

    /// Parses a line that must give exactly one warning, and checks that the
    /// options are otherwise the defaults.
    fn one_warning(cmdline: &str) -> Warning<'_> {
        let (opts, warnings) = run(cmdline);
        assert_eq!(warnings.len(), 1, "{cmdline:?}: {warnings:?}");
        assert_eq!(opts, Options::default(), "{cmdline:?}");
        warnings[0]
    }

    fn mem(cmdline: &str) -> Dom0Mem {
        clean(cmdline).dom0_mem
    }

    fn com1(cmdline: &str) -> ComConfig {
        clean(cmdline).com1.expect("com1 set")
    }

    // --- defaults, words, whitespace -----------------------------------

    #[test]
    fn empty_cmdline_gives_defaults() {
        let opts = clean("");
        assert_eq!(opts, Options::default());
        assert_eq!(opts.dom0_mem, Dom0Mem::default());
        assert!(opts.dom0_mem.is_default());
        assert_eq!(opts.loglvl, LogLevel::Warning);
        assert_eq!(opts.loglvl_rate_limited, LogLevel::Warning);
        assert_eq!(opts.guest_loglvl, LogLevel::None);
        assert_eq!(opts.guest_loglvl_rate_limited, LogLevel::Warning);
        assert_eq!(opts.com1, None);
        assert_eq!(opts.com2, None);
        assert_eq!(
            opts.console,
            ConsoleSet {
                com1: true,
                com2: false,
                vga: false
            }
        );
        assert!(!opts.noreboot);
        assert_eq!(opts.sched, None);
        assert_eq!(opts.dom0_max_vcpus, None);
        assert_eq!(opts.selftest_fault, None);
        assert_eq!(opts.debug_exit, None);
        assert_eq!(opts.image, None);
        assert_eq!(opts.dom0_extra, None);
    }

    #[test]
    fn whitespace_only_gives_defaults() {
        assert_eq!(clean("   \t\n\r  \x0c "), Options::default());
    }

    #[test]
    fn whitespace_variations_separate_words() {
        let opts = clean("\t noreboot \n\n loglvl=debug\r\n  sched=credit2\t");
        assert!(opts.noreboot);
        assert_eq!(opts.loglvl, LogLevel::Debug);
        assert_eq!(opts.sched, Some(Scheduler::Credit2));
    }

    #[test]
    fn line_ends_at_nul() {
        let opts = clean("noreboot\0loglvl=garbage");
        assert!(opts.noreboot);
        assert_eq!(opts.loglvl, LogLevel::Warning);
        assert_eq!(clean("\0noreboot"), Options::default());
    }

    #[test]
    fn first_word_path_is_skipped() {
        let opts = clean("/boot/oxen.elf");
        assert_eq!(opts.image, Some("/boot/oxen.elf"));
        let opts = clean("  /boot/oxen.elf noreboot");
        assert_eq!(opts.image, Some("/boot/oxen.elf"));
        assert!(opts.noreboot);
        let opts = clean("(hd0,msdos1)/boot/oxen.elf noreboot");
        assert_eq!(opts.image, Some("(hd0,msdos1)/boot/oxen.elf"));
    }

    #[test]
    fn first_word_without_slash_is_an_option() {
        let opts = clean("noreboot loglvl=all");
        assert_eq!(opts.image, None);
        assert!(opts.noreboot);
        assert_eq!(
            one_warning("oxen.elf"),
            Warning::Unknown {
                name: "oxen.elf",
                value: None
            }
        );
    }

    #[test]
    fn first_word_with_equals_is_an_option() {
        assert_eq!(
            one_warning("root=/dev/sda1"),
            Warning::Unknown {
                name: "root",
                value: Some("/dev/sda1")
            }
        );
    }

    #[test]
    fn only_the_first_word_is_skipped() {
        let (opts, warnings) = run("/boot/oxen.elf /boot/other.elf");
        assert_eq!(opts.image, Some("/boot/oxen.elf"));
        assert_eq!(
            warnings,
            [Warning::Unknown {
                name: "/boot/other.elf",
                value: None
            }]
        );
    }

    #[test]
    fn double_dash_ends_hypervisor_options() {
        let opts = clean("/boot/oxen.elf noreboot -- console=hvc0  loglvl=bogus ");
        assert!(opts.noreboot);
        assert_eq!(opts.loglvl, LogLevel::Warning);
        assert_eq!(opts.dom0_extra, Some("console=hvc0  loglvl=bogus"));
        assert_eq!(clean("noreboot --").dom0_extra, None);
        assert_eq!(clean("noreboot --   ").dom0_extra, None);
        assert_eq!(clean("-- x").dom0_extra, Some("x"));
        // `--` inside a word is not the separator.
        assert!(matches!(
            one_warning("--x"),
            Warning::Unknown { name: "--x", .. }
        ));
    }

    #[test]
    fn realistic_grub_line() {
        let line = "/boot/oxen.elf dom0_mem=256M loglvl=all com1=115200,8n1 console=com1";
        let opts = clean(line);
        assert_eq!(opts.image, Some("/boot/oxen.elf"));
        assert_eq!(
            opts.dom0_mem,
            Dom0Mem {
                amount: Some(Amount::Bytes(256 * MIB)),
                min: None,
                max: None
            }
        );
        assert_eq!(opts.dom0_mem.resolve(2 * GIB), 256 * MIB);
        assert_eq!(opts.loglvl, LogLevel::All);
        assert_eq!(opts.loglvl_rate_limited, LogLevel::All);
        assert_eq!(opts.guest_loglvl, LogLevel::None);
        assert_eq!(opts.guest_loglvl_rate_limited, LogLevel::Warning);
        assert_eq!(
            opts.com1,
            Some(ComConfig {
                baud: Baud::Rate(115_200),
                ..ComConfig::COM1_DEFAULT
            })
        );
        assert_eq!(opts.console, ConsoleSet::DEFAULT);
        assert!(!opts.noreboot);
        assert_eq!(
            opts.to_string(),
            "dom0_mem=256M loglvl=all guest_loglvl=none com1=115200,8n1,0x3f8,4 console=com1"
        );
    }

    #[test]
    fn realistic_test_harness_line() {
        let line = "/oxen.elf noreboot debug_exit=0xf4 selftest_fault=pf loglvl=debug \
                    guest_loglvl=all/all console=com1,vga sched=credit dom0_max_vcpus=1";
        let opts = clean(line);
        assert!(opts.noreboot);
        assert_eq!(opts.debug_exit, Some(0xf4));
        assert_eq!(opts.selftest_fault, Some(SelftestFault::PageFault));
        assert_eq!(opts.loglvl, LogLevel::Debug);
        assert_eq!(opts.guest_loglvl, LogLevel::All);
        assert!(opts.console.com1 && opts.console.vga && !opts.console.com2);
        assert_eq!(opts.sched, Some(Scheduler::Credit));
        assert_eq!(
            opts.dom0_max_vcpus,
            Some(VcpuRange {
                min: 1,
                max: Some(1)
            })
        );
    }

    // --- names -----------------------------------------------------------

    #[test]
    fn dash_and_underscore_are_equivalent_in_names() {
        assert_eq!(
            clean("dom0-mem=1G").dom0_mem.amount,
            Some(Amount::Bytes(GIB))
        );
        assert_eq!(clean("guest-loglvl=info").guest_loglvl, LogLevel::Info);
        assert_eq!(
            clean("dom0-max_vcpus=2").dom0_max_vcpus,
            Some(VcpuRange {
                min: 2,
                max: Some(2)
            })
        );
        assert_eq!(
            clean("selftest-fault=de").selftest_fault,
            Some(SelftestFault::DivideError)
        );
        assert_eq!(clean("debug-exit=0x501").debug_exit, Some(0x501));
        // The value keeps its dashes: `-128M` is still "all but".
        assert_eq!(
            clean("dom0-mem=-128M").dom0_mem.amount,
            Some(Amount::AllBut(128 * MIB))
        );
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(
            one_warning("DOM0_MEM=1G"),
            Warning::Unknown {
                name: "DOM0_MEM",
                value: Some("1G")
            }
        );
        assert_eq!(
            one_warning("NoReboot"),
            Warning::Unknown {
                name: "NoReboot",
                value: None
            }
        );
    }

    #[test]
    fn unknown_options_are_reported_and_ignored() {
        let (opts, warnings) = run("foo=bar noreboot baz iommu=off no-quux empty=");
        assert!(opts.noreboot);
        assert_eq!(
            warnings,
            [
                Warning::Unknown {
                    name: "foo",
                    value: Some("bar")
                },
                Warning::Unknown {
                    name: "baz",
                    value: None
                },
                Warning::Unknown {
                    name: "iommu",
                    value: Some("off")
                },
                Warning::Unknown {
                    name: "no-quux",
                    value: None
                },
                Warning::Unknown {
                    name: "empty",
                    value: Some("")
                },
            ]
        );
    }

    #[test]
    fn bare_equals_sign_is_unknown() {
        assert_eq!(
            one_warning("="),
            Warning::Unknown {
                name: "",
                value: Some("")
            }
        );
        assert_eq!(
            one_warning("no-"),
            Warning::Unknown {
                name: "no-",
                value: None
            }
        );
    }

    #[test]
    fn value_keeps_everything_after_the_first_equals() {
        assert_eq!(
            one_warning("sched=credit=2"),
            Warning::Malformed {
                name: "sched",
                value: "credit=2",
                reason: "unknown scheduler"
            }
        );
    }

    #[test]
    fn non_boolean_options_need_a_value() {
        for name in [
            "dom0_mem",
            "loglvl",
            "guest_loglvl",
            "com1",
            "com2",
            "console",
            "sched",
            "dom0_max_vcpus",
            "selftest_fault",
            "debug_exit",
            "mm_audit_every",
        ] {
            let bare = name.to_string();
            assert_eq!(one_warning(&bare), Warning::MissingValue { name });
            let empty = format!("{name}=");
            assert_eq!(one_warning(&empty), Warning::MissingValue { name });
            let negated = format!("no-{name}");
            assert_eq!(one_warning(&negated), Warning::NotBoolean { name });
            let negated = format!("no-{name}=1");
            assert_eq!(one_warning(&negated), Warning::NotBoolean { name });
        }
        // Canonical name in the warning even when written with dashes.
        assert_eq!(
            one_warning("dom0-mem"),
            Warning::MissingValue { name: "dom0_mem" }
        );
    }

    #[test]
    fn later_occurrence_wins_and_malformed_keeps_earlier() {
        let opts = clean("loglvl=info loglvl=debug");
        assert_eq!(opts.loglvl, LogLevel::Debug);
        let (opts, warnings) = run("dom0_mem=512M dom0_mem=lots com1=9600 com1=0");
        assert_eq!(opts.dom0_mem.amount, Some(Amount::Bytes(512 * MIB)));
        assert_eq!(opts.com1.map(|c| c.baud), Some(Baud::Rate(9600)));
        assert_eq!(warnings.len(), 2);
        let opts = clean("noreboot no-noreboot");
        assert!(!opts.noreboot);
    }

    // --- mm_audit --------------------------------------------------------

    #[test]
    fn mm_audit_every_takes_a_positive_count() {
        assert_eq!(clean("").mm_audit_every, None);
        assert_eq!(clean("mm_audit_every=1000").mm_audit_every, Some(1000));
        assert_eq!(clean("mm-audit-every=0x10").mm_audit_every, Some(16));
        for bad in ["0", "-1", "x", "4294967296"] {
            let line = format!("mm_audit_every={bad}");
            let (opts, warnings) = run(&line);
            assert_eq!(opts.mm_audit_every, None, "{bad}");
            assert_eq!(warnings.len(), 1, "{bad}");
        }
        assert!(
            clean("mm_audit mm_audit_every=7")
                .to_string()
                .contains(" mm_audit mm_audit_every=7")
        );
    }

    #[test]
    fn mm_audit_is_a_boolean() {
        assert!(!clean("").mm_audit);
        assert!(clean("mm_audit").mm_audit);
        assert!(clean("mm-audit=yes").mm_audit);
        assert!(!clean("mm_audit no-mm_audit").mm_audit);
        let (opts, warnings) = run("mm_audit=sometimes");
        assert!(!opts.mm_audit);
        assert_eq!(warnings.len(), 1);
        assert!(clean("mm_audit").to_string().contains(" mm_audit"));
    }

    // --- noreboot --------------------------------------------------------

    #[test]
    fn noreboot_forms() {
        assert!(!clean("").noreboot);
        assert!(clean("noreboot").noreboot);
        for v in ["1", "yes", "true", "on", "enable", "YES", "True", "ON"] {
            assert!(clean(&format!("noreboot={v}")).noreboot, "{v}");
            assert!(!clean(&format!("no-noreboot={v}")).noreboot, "{v}");
        }
        for v in ["0", "no", "false", "off", "disable", "No", "FALSE"] {
            assert!(!clean(&format!("noreboot={v}")).noreboot, "{v}");
            assert!(clean(&format!("no-noreboot={v}")).noreboot, "{v}");
        }
        assert!(!clean("no-noreboot").noreboot);
        assert!(!clean("noreboot=1 no-noreboot").noreboot);
    }

    #[test]
    fn noreboot_malformed() {
        for v in ["", "2", "maybe", "y", "n", "10"] {
            let line = format!("noreboot={v}");
            let (opts, warnings) = run(&line);
            assert!(!opts.noreboot);
            assert_eq!(
                warnings,
                [Warning::Malformed {
                    name: "noreboot",
                    value: v,
                    reason: "expected 1/0, yes/no, true/false, on/off"
                }]
            );
        }
        // A malformed value keeps the earlier setting.
        let (opts, warnings) = run("noreboot noreboot=perhaps");
        assert!(opts.noreboot);
        assert_eq!(warnings.len(), 1);
    }

    // --- sizes -----------------------------------------------------------

    #[test]
    fn size_units() {
        assert_eq!(parse_size("1T"), Ok(TIB));
        assert_eq!(parse_size("2t"), Ok(2 * TIB));
        assert_eq!(parse_size("3G"), Ok(3 * GIB));
        assert_eq!(parse_size("3g"), Ok(3 * GIB));
        assert_eq!(parse_size("256M"), Ok(256 * MIB));
        assert_eq!(parse_size("256m"), Ok(256 * MIB));
        assert_eq!(parse_size("64K"), Ok(64 * KIB));
        assert_eq!(parse_size("64k"), Ok(64 * KIB));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("4096b"), Ok(4096));
        // No unit: KiB, as in Xen.
        assert_eq!(parse_size("1024"), Ok(MIB));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("007M"), Ok(7 * MIB));
    }

    #[test]
    fn size_hex() {
        assert_eq!(parse_size("0x10M"), Ok(16 * MIB));
        assert_eq!(parse_size("0X10m"), Ok(16 * MIB));
        assert_eq!(parse_size("0x400"), Ok(MIB));
        // In hex, `b` is a digit, not the byte unit (as with strtoull).
        assert_eq!(parse_size("0x1b"), Ok(0x1b * KIB));
        assert_eq!(parse_size("0x1bB"), Ok(0x1bb * KIB));
        assert_eq!(parse_size("0x1b0b"), Ok(0x1b0b * KIB));
        assert_eq!(parse_size("0xffK"), Ok(255 * KIB));
    }

    #[test]
    fn size_malformed() {
        for s in [
            "", "M", "abc", "1MB", "1 M", "1.5G", "+1G", "-1G", "1P", "0x", "0xG", "0x1x", "1M ",
            "G1", "١",
        ] {
            assert_eq!(parse_size(s), Err("bad size"), "{s:?}");
        }
        assert_eq!(parse_size("16777216T"), Err("size too large"));
        assert_eq!(parse_size("18446744073709551615K"), Err("size too large"));
        assert_eq!(parse_size("99999999999999999999"), Err("size too large"));
        assert_eq!(parse_size("0x10000000000000000B"), Err("size too large"));
        assert_eq!(parse_size("18446744073709551615B"), Ok(u64::MAX));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 * TIB));
    }

    #[test]
    fn byte_size_display() {
        let cases = [
            (0, "0"),
            (1, "1B"),
            (1000, "1000B"),
            (KIB, "1K"),
            (1536, "1536B"),
            (3 * KIB, "3K"),
            (MIB, "1M"),
            (1536 * KIB, "1536K"),
            (256 * MIB, "256M"),
            (1024 * MIB, "1G"),
            (3 * GIB + 512 * MIB, "3584M"),
            (TIB, "1T"),
            (5 * TIB, "5T"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for (bytes, text) in cases {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    // --- dom0_mem --------------------------------------------------------

    #[test]
    fn dom0_mem_forms() {
        assert_eq!(
            mem("dom0_mem=256M"),
            Dom0Mem {
                amount: Some(Amount::Bytes(256 * MIB)),
                min: None,
                max: None
            }
        );
        assert_eq!(
            mem("dom0_mem=-128M"),
            Dom0Mem {
                amount: Some(Amount::AllBut(128 * MIB)),
                min: None,
                max: None
            }
        );
        assert_eq!(
            mem("dom0_mem=min:64M"),
            Dom0Mem {
                amount: None,
                min: Some(Amount::Bytes(64 * MIB)),
                max: None
            }
        );
        assert_eq!(
            mem("dom0_mem=max:512M"),
            Dom0Mem {
                amount: None,
                min: None,
                max: Some(Amount::Bytes(512 * MIB))
            }
        );
        let full = Dom0Mem {
            amount: Some(Amount::AllBut(128 * MIB)),
            min: Some(Amount::Bytes(64 * MIB)),
            max: Some(Amount::Bytes(512 * MIB)),
        };
        assert_eq!(mem("dom0_mem=min:64M,max:512M,-128M"), full);
        assert_eq!(mem("dom0_mem=-128M,max:512M,min:64M"), full);
        assert_eq!(mem("dom0_mem=max:512M,-128M,min:65536"), full);
        assert_eq!(
            mem("dom0_mem=min:-1G,max:-0x100M"),
            Dom0Mem {
                amount: None,
                min: Some(Amount::AllBut(GIB)),
                max: Some(Amount::AllBut(256 * MIB))
            }
        );
        // Repeated items: the last one counts.
        assert_eq!(
            mem("dom0_mem=1G,2G,min:1M,min:2M"),
            Dom0Mem {
                amount: Some(Amount::Bytes(2 * GIB)),
                min: Some(Amount::Bytes(2 * MIB)),
                max: None
            }
        );
        // A later dom0_mem replaces the whole setting.
        assert_eq!(
            mem("dom0_mem=min:1G dom0_mem=512M"),
            Dom0Mem {
                amount: Some(Amount::Bytes(512 * MIB)),
                min: None,
                max: None
            }
        );
    }

    #[test]
    fn dom0_mem_malformed() {
        let cases = [
            ("dom0_mem=lots", "lots", "bad size"),
            ("dom0_mem=256MB", "256MB", "bad size"),
            ("dom0_mem=min:", "min:", "bad size"),
            ("dom0_mem=min:x", "min:x", "bad size"),
            ("dom0_mem=MIN:1G", "MIN:1G", "bad size"),
            ("dom0_mem=mid:1G", "mid:1G", "bad size"),
            ("dom0_mem=--1G", "--1G", "bad size"),
            ("dom0_mem=-", "-", "bad size"),
            ("dom0_mem=256M,", "256M,", "empty item"),
            ("dom0_mem=,256M", ",256M", "empty item"),
            ("dom0_mem=min:1G,,max:2G", "min:1G,,max:2G", "empty item"),
            ("dom0_mem=1G,max:lots", "1G,max:lots", "bad size"),
            ("dom0_mem=99999999T", "99999999T", "size too large"),
            ("dom0_mem=-99999999T", "-99999999T", "size too large"),
        ];
        for (line, value, reason) in cases {
            assert_eq!(
                one_warning(line),
                Warning::Malformed {
                    name: "dom0_mem",
                    value,
                    reason
                },
                "{line}"
            );
        }
    }

    fn dm(amount: Option<Amount>, min: Option<Amount>, max: Option<Amount>) -> Dom0Mem {
        Dom0Mem { amount, min, max }
    }

    #[test]
    fn dom0_mem_resolve_default_reserve() {
        let none = Dom0Mem::default();
        // Large machine: the reserve is capped at 128 MiB.
        assert_eq!(none.resolve(4 * GIB), 4 * GIB - 128 * MIB);
        assert_eq!(none.resolve(2 * GIB + 4096), 2 * GIB + 4096 - 128 * MIB);
        // At exactly 2 GiB, avail/16 equals the cap.
        assert_eq!(none.resolve(2 * GIB), 2 * GIB - 128 * MIB);
        // Small machine: reserve avail/16.
        assert_eq!(none.resolve(512 * MIB), 512 * MIB - 32 * MIB);
        assert_eq!(none.resolve(16 * MIB), 15 * MIB);
        // Rounded down to a page.
        assert_eq!(none.resolve(100_000), (100_000 - 6_250) & !4095);
        assert_eq!(none.resolve(4095), 0);
        assert_eq!(none.resolve(0), 0);
    }

    #[test]
    fn dom0_mem_resolve_amounts() {
        let avail = GIB;
        assert_eq!(
            dm(Some(Amount::Bytes(256 * MIB)), None, None).resolve(avail),
            256 * MIB
        );
        // More than available: clamped to what there is.
        assert_eq!(
            dm(Some(Amount::Bytes(4 * GIB)), None, None).resolve(avail),
            GIB
        );
        assert_eq!(
            dm(Some(Amount::AllBut(128 * MIB)), None, None).resolve(avail),
            GIB - 128 * MIB
        );
        // All-but more than there is: 0.
        assert_eq!(
            dm(Some(Amount::AllBut(2 * GIB)), None, None).resolve(avail),
            0
        );
        assert_eq!(dm(Some(Amount::AllBut(0)), None, None).resolve(avail), GIB);
        assert_eq!(dm(Some(Amount::Bytes(0)), None, None).resolve(avail), 0);
        // Rounded down to a page.
        assert_eq!(
            dm(Some(Amount::Bytes(MIB + 4095)), None, None).resolve(avail),
            MIB
        );
        assert_eq!(
            dm(Some(Amount::AllBut(1)), None, None).resolve(avail),
            GIB - 4096
        );
    }

    #[test]
    fn dom0_mem_resolve_bounds() {
        let avail = GIB;
        let b = |n| Some(Amount::Bytes(n));
        // max below the amount.
        assert_eq!(
            dm(b(512 * MIB), None, b(256 * MIB)).resolve(avail),
            256 * MIB
        );
        // min above the amount.
        assert_eq!(
            dm(b(64 * MIB), b(128 * MIB), None).resolve(avail),
            128 * MIB
        );
        // Within bounds: unchanged.
        assert_eq!(
            dm(b(200 * MIB), b(128 * MIB), b(256 * MIB)).resolve(avail),
            200 * MIB
        );
        // min above avail: still never more than avail.
        assert_eq!(dm(b(64 * MIB), b(2 * GIB), None).resolve(avail), GIB);
        assert_eq!(dm(None, b(2 * GIB), None).resolve(avail), GIB);
        // min above max: min wins (Xen's order).
        assert_eq!(
            dm(b(300 * MIB), b(400 * MIB), b(200 * MIB)).resolve(avail),
            400 * MIB
        );
        // all-but more than avail gives 0, then min applies.
        assert_eq!(
            dm(Some(Amount::AllBut(2 * GIB)), b(64 * MIB), None).resolve(avail),
            64 * MIB
        );
        // Bounds on the default amount.
        assert_eq!(dm(None, None, b(512 * MIB)).resolve(4 * GIB), 512 * MIB);
        assert_eq!(dm(None, b(256 * MIB), None).resolve(128 * MIB), 128 * MIB);
        assert_eq!(dm(None, b(125 * MIB), None).resolve(128 * MIB), 125 * MIB);
        // Relative bounds.
        assert_eq!(
            dm(None, None, Some(Amount::AllBut(512 * MIB))).resolve(avail),
            512 * MIB
        );
        assert_eq!(
            dm(b(0), Some(Amount::AllBut(256 * MIB)), None).resolve(avail),
            768 * MIB
        );
        assert_eq!(
            dm(b(GIB), None, Some(Amount::AllBut(2 * GIB))).resolve(avail),
            0
        );
        // Unaligned min is rounded down too.
        assert_eq!(dm(b(0), b(4097), None).resolve(avail), 4096);
    }

    #[test]
    fn dom0_mem_resolve_from_cmdline() {
        let avail = 3 * GIB;
        let r = |line| mem(line).resolve(avail);
        assert_eq!(r("dom0_mem=256M"), 256 * MIB);
        assert_eq!(r("dom0_mem=-128M"), avail - 128 * MIB);
        assert_eq!(r("dom0_mem=max:1G"), GIB);
        assert_eq!(r("dom0_mem=min:64M,max:512M,-128M"), 512 * MIB);
        assert_eq!(r("dom0_mem=min:4G"), avail);
        assert_eq!(r("dom0_mem=-4G,min:32M"), 32 * MIB);
        assert_eq!(clean("").dom0_mem.resolve(avail), avail - 128 * MIB);
    }

    #[test]
    fn dom0_mem_display() {
        assert_eq!(Dom0Mem::default().to_string(), "default");
        assert_eq!(mem("dom0_mem=256M").dom0_mem_string(), "256M");
        assert_eq!(mem("dom0_mem=262144").dom0_mem_string(), "256M");
        assert_eq!(mem("dom0_mem=-128M").dom0_mem_string(), "-128M");
        assert_eq!(
            mem("dom0_mem=-128M,max:512M,min:64M").dom0_mem_string(),
            "min:64M,max:512M,-128M"
        );
        assert_eq!(mem("dom0_mem=max:0x800M").dom0_mem_string(), "max:2G");
        assert_eq!(mem("dom0_mem=min:1000B").dom0_mem_string(), "min:1000B");
        assert_eq!(
            mem("dom0_mem=min:-1G,max:-0").dom0_mem_string(),
            "min:-1G,max:-0"
        );
        assert_eq!(Amount::AllBut(3 * KIB).to_string(), "-3K");
    }

    trait Dom0MemString {
        fn dom0_mem_string(&self) -> String;
    }

    impl Dom0MemString for Dom0Mem {
        /// Display, checking that it parses back to the same value.
        fn dom0_mem_string(&self) -> String {
            let s = self.to_string();
            assert_eq!(parse_dom0_mem(&s), Ok(*self), "{s}");
            s
        }
    }

    // --- loglvl ----------------------------------------------------------

    #[test]
    fn log_levels_by_name() {
        let names = [
            ("none", LogLevel::None),
            ("error", LogLevel::Error),
            ("warning", LogLevel::Warning),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("all", LogLevel::All),
        ];
        for (name, level) in names {
            let line = format!("loglvl={name}");
            let opts = clean(&line);
            assert_eq!(opts.loglvl, level);
            assert_eq!(opts.loglvl_rate_limited, level.max(LogLevel::Warning));
            assert_eq!(opts.guest_loglvl, LogLevel::None);
            let line = format!("guest_loglvl={name}");
            let opts = clean(&line);
            assert_eq!(opts.guest_loglvl, level);
            assert_eq!(opts.loglvl, LogLevel::Warning);
            assert_eq!(level.name(), name);
            assert_eq!(level.to_string(), name);
        }
        assert_eq!(clean("loglvl=DEBUG").loglvl, LogLevel::Debug);
        assert_eq!(clean("loglvl=Info").loglvl, LogLevel::Info);
    }

    #[test]
    fn log_level_order_and_filter_index() {
        use LogLevel::*;
        assert!(None < Error && Error < Warning && Warning < Info);
        assert!(Info < Debug && Debug < All);
        let idx: Vec<usize> = [None, Error, Warning, Info, Debug, All]
            .iter()
            .map(|l| l.filter_index())
            .collect();
        assert_eq!(idx, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn log_level_rate_limited_part() {
        let opts = clean("loglvl=error/debug guest_loglvl=none/all");
        assert_eq!(opts.loglvl, LogLevel::Error);
        assert_eq!(opts.loglvl_rate_limited, LogLevel::Debug);
        assert_eq!(opts.guest_loglvl, LogLevel::None);
        assert_eq!(opts.guest_loglvl_rate_limited, LogLevel::All);
        // The rate-limited level is never below the first.
        let opts = clean("loglvl=debug/error");
        assert_eq!(opts.loglvl, LogLevel::Debug);
        assert_eq!(opts.loglvl_rate_limited, LogLevel::Debug);
        // Each occurrence sets both levels.
        let opts = clean("loglvl=all loglvl=error");
        assert_eq!(opts.loglvl, LogLevel::Error);
        assert_eq!(opts.loglvl_rate_limited, LogLevel::Warning);
    }

    #[test]
    fn log_level_display_in_options() {
        for (line, text) in [
            ("loglvl=all", "all"),
            ("loglvl=warning", "warning"),
            ("loglvl=error", "error"),
            ("loglvl=error/warning", "error"),
            ("loglvl=none/none", "none/none"),
            ("loglvl=error/error", "error/error"),
            ("loglvl=info/all", "info/all"),
            ("loglvl=debug/info", "debug"),
        ] {
            let opts = clean(line);
            let shown = opts.to_string();
            let expect = format!("loglvl={text} ");
            assert!(shown.starts_with(&expect), "{line}: {shown}");
            assert_eq!(clean(&shown), opts);
        }
    }

    #[test]
    fn log_level_malformed() {
        let cases = [
            ("loglvl=verbose", "loglvl", "verbose", "unknown log level"),
            ("loglvl=warn", "loglvl", "warn", "unknown log level"),
            ("loglvl=3", "loglvl", "3", "unknown log level"),
            ("loglvl=/all", "loglvl", "/all", "unknown log level"),
            (
                "loglvl=all/",
                "loglvl",
                "all/",
                "unknown rate-limited log level",
            ),
            (
                "loglvl=all/x",
                "loglvl",
                "all/x",
                "unknown rate-limited log level",
            ),
            (
                "loglvl=all/all/all",
                "loglvl",
                "all/all/all",
                "unknown rate-limited log level",
            ),
            (
                "guest_loglvl=loud",
                "guest_loglvl",
                "loud",
                "unknown log level",
            ),
            (
                "guest-loglvl=info/x",
                "guest_loglvl",
                "info/x",
                "unknown rate-limited log level",
            ),
        ];
        for (line, name, value, reason) in cases {
            assert_eq!(
                one_warning(line),
                Warning::Malformed {
                    name,
                    value,
                    reason
                },
                "{line}"
            );
        }
    }

    // --- com1 / com2 -----------------------------------------------------

    #[test]
    fn com_forms() {
        assert_eq!(
            com1("com1=115200"),
            ComConfig {
                baud: Baud::Rate(115_200),
                ..ComConfig::COM1_DEFAULT
            }
        );
        assert_eq!(
            com1("com1=115200,8n1"),
            ComConfig {
                baud: Baud::Rate(115_200),
                data_bits: 8,
                parity: Parity::None,
                stop_bits: 1,
                io_base: 0x3f8,
                irq: 4
            }
        );
        assert_eq!(
            com1("com1=9600,7e2,0x2f8,3"),
            ComConfig {
                baud: Baud::Rate(9600),
                data_bits: 7,
                parity: Parity::Even,
                stop_bits: 2,
                io_base: 0x2f8,
                irq: 3
            }
        );
        assert_eq!(
            com1("com1=38400,5o1,0x3e8"),
            ComConfig {
                baud: Baud::Rate(38400),
                data_bits: 5,
                parity: Parity::Odd,
                stop_bits: 1,
                io_base: 0x3e8,
                irq: 4
            }
        );
        assert_eq!(com1("com1=auto"), ComConfig::COM1_DEFAULT);
        assert_eq!(com1("com1=AUTO,8n1"), ComConfig::COM1_DEFAULT);
        assert_eq!(com1("com1=2").baud, Baud::Rate(2));
        assert_eq!(com1("com1=0x1c200").baud, Baud::Rate(115_200));
        assert_eq!(com1("com1=1200,8n1,1016,0").io_base, 0x3f8);
        assert_eq!(com1("com1=1200,8n1,1016,0").irq, 0);
        assert_eq!(com1("com1=1200,8n1,0x3f8,15").irq, 15);
    }

    #[test]
    fn com_parity_letters() {
        for (letter, parity) in [
            ('n', Parity::None),
            ('o', Parity::Odd),
            ('e', Parity::Even),
            ('m', Parity::Mark),
            ('s', Parity::Space),
        ] {
            assert_eq!(com1(&format!("com1=9600,8{letter}1")).parity, parity);
            let upper = letter.to_ascii_uppercase();
            assert_eq!(com1(&format!("com1=9600,8{upper}1")).parity, parity);
            assert_eq!(parity.letter(), letter);
        }
        for d in 5..=8u8 {
            assert_eq!(com1(&format!("com1=9600,{d}n1")).data_bits, d);
        }
    }

    #[test]
    fn com_empty_fields_take_defaults() {
        assert_eq!(
            com1("com1=115200,,0x2f8"),
            ComConfig {
                baud: Baud::Rate(115_200),
                io_base: 0x2f8,
                ..ComConfig::COM1_DEFAULT
            }
        );
        assert_eq!(
            com1("com1=,7e1,,5"),
            ComConfig {
                data_bits: 7,
                parity: Parity::Even,
                irq: 5,
                ..ComConfig::COM1_DEFAULT
            }
        );
        assert_eq!(com1("com1=,,,"), ComConfig::COM1_DEFAULT);
    }

    #[test]
    fn com2_has_its_own_defaults() {
        let opts = clean("com2=57600");
        assert_eq!(opts.com1, None);
        assert_eq!(
            opts.com2,
            Some(ComConfig {
                baud: Baud::Rate(57600),
                io_base: 0x2f8,
                irq: 3,
                ..ComConfig::COM1_DEFAULT
            })
        );
        assert_eq!(
            clean("com2=auto,8n1,0x3e8,4").com2,
            Some(ComConfig {
                io_base: 0x3e8,
                irq: 4,
                ..ComConfig::COM2_DEFAULT
            })
        );
    }

    #[test]
    fn com_malformed() {
        let cases = [
            ("com1=0", "0", "baud rate out of range 2..=115200"),
            ("com1=1", "1", "baud rate out of range 2..=115200"),
            ("com1=230400", "230400", "baud rate out of range 2..=115200"),
            (
                "com1=99999999999999999999999",
                "99999999999999999999999",
                "bad baud rate",
            ),
            ("com1=fast", "fast", "bad baud rate"),
            ("com1=-9600", "-9600", "bad baud rate"),
            ("com1=9600baud", "9600baud", "bad baud rate"),
            (
                "com1=115200/1843200",
                "115200/1843200",
                "base baud rate not supported",
            ),
            (
                "com1=9600,8n",
                "9600,8n",
                "expected <data><parity><stop> like 8n1",
            ),
            (
                "com1=9600,8n11",
                "9600,8n11",
                "expected <data><parity><stop> like 8n1",
            ),
            ("com1=9600,é1", "9600,é1", "data bits must be 5..=8"),
            ("com1=9600,8é", "9600,8é", "parity must be one of n o e m s"),
            ("com1=9600,4n1", "9600,4n1", "data bits must be 5..=8"),
            ("com1=9600,9n1", "9600,9n1", "data bits must be 5..=8"),
            ("com1=9600,xn1", "9600,xn1", "data bits must be 5..=8"),
            (
                "com1=9600,8x1",
                "9600,8x1",
                "parity must be one of n o e m s",
            ),
            ("com1=9600,8n0", "9600,8n0", "stop bits must be 1 or 2"),
            ("com1=9600,8n3", "9600,8n3", "stop bits must be 1 or 2"),
            ("com1=9600,8n1,0", "9600,8n1,0", "bad I/O base"),
            ("com1=9600,8n1,0x10000", "9600,8n1,0x10000", "bad I/O base"),
            ("com1=9600,8n1,pci", "9600,8n1,pci", "bad I/O base"),
            (
                "com1=9600,8n1,0x3f8,16",
                "9600,8n1,0x3f8,16",
                "IRQ must be 0..=15",
            ),
            (
                "com1=9600,8n1,0x3f8,msi",
                "9600,8n1,0x3f8,msi",
                "IRQ must be 0..=15",
            ),
            (
                "com1=9600,8n1,0x3f8,4,0:1.0",
                "9600,8n1,0x3f8,4,0:1.0",
                "too many fields",
            ),
            (
                "com1=9600,8n1,0x3f8,4,",
                "9600,8n1,0x3f8,4,",
                "too many fields",
            ),
        ];
        for (line, value, reason) in cases {
            assert_eq!(
                one_warning(line),
                Warning::Malformed {
                    name: "com1",
                    value,
                    reason
                },
                "{line}"
            );
        }
        assert_eq!(
            one_warning("com2=9600,8n1,0x2f8,99"),
            Warning::Malformed {
                name: "com2",
                value: "9600,8n1,0x2f8,99",
                reason: "IRQ must be 0..=15"
            }
        );
    }

    #[test]
    fn com_divisor_and_line_control() {
        assert_eq!(com1("com1=115200").divisor(), Some(1));
        assert_eq!(com1("com1=9600").divisor(), Some(12));
        assert_eq!(com1("com1=2").divisor(), Some(57_600));
        assert_eq!(com1("com1=auto").divisor(), None);
        let raw = |rate| ComConfig {
            baud: Baud::Rate(rate),
            ..ComConfig::COM1_DEFAULT
        };
        assert_eq!(raw(0).divisor(), Some(0xffff));
        assert_eq!(raw(1).divisor(), Some(0xffff));
        assert_eq!(raw(230_400).divisor(), Some(1));
        assert_eq!(com1("com1=9600,8n1").line_control(), 0x03);
        assert_eq!(com1("com1=9600,7e1").line_control(), 0x1a);
        assert_eq!(com1("com1=9600,5n1").line_control(), 0x00);
        assert_eq!(com1("com1=9600,8o2").line_control(), 0x0f);
        assert_eq!(com1("com1=9600,6m1").line_control(), 0x29);
        assert_eq!(com1("com1=9600,8s2").line_control(), 0x3f);
    }

    #[test]
    fn com_display() {
        for (line, text) in [
            ("com1=115200,8n1", "115200,8n1,0x3f8,4"),
            ("com1=auto", "auto,8n1,0x3f8,4"),
            ("com1=9600,7e2,0x2f8,3", "9600,7e2,0x2f8,3"),
            ("com1=300,5s1,0x3e8,0", "300,5s1,0x3e8,0"),
            ("com1=1200,8M2", "1200,8m2,0x3f8,4"),
        ] {
            let cfg = com1(line);
            assert_eq!(cfg.to_string(), text);
            assert_eq!(parse_com(text, ComConfig::COM1_DEFAULT), Ok(cfg));
        }
    }

    // --- console ---------------------------------------------------------

    fn console(cmdline: &str) -> ConsoleSet {
        clean(cmdline).console
    }

    #[test]
    fn console_lists() {
        let set = |com1, com2, vga| ConsoleSet { com1, com2, vga };
        assert_eq!(console("console=com1"), set(true, false, false));
        assert_eq!(console("console=vga"), set(false, false, true));
        assert_eq!(console("console=com2"), set(false, true, false));
        assert_eq!(console("console=com1,vga"), set(true, false, true));
        assert_eq!(console("console=vga,com2,com1"), set(true, true, true));
        assert_eq!(console("console=none"), ConsoleSet::NONE);
        assert_eq!(console("console=none,vga"), set(false, false, true));
        assert_eq!(console("console=VGA,Com1"), set(true, false, true));
        assert_eq!(console("console=com1,,vga,"), set(true, false, true));
        assert_eq!(console("console=com1,com1"), set(true, false, false));
        // A later console= replaces the earlier one.
        assert_eq!(console("console=vga console=com2"), set(false, true, false));
    }

    #[test]
    fn console_unknown_entries_warn_and_others_are_kept() {
        let (opts, warnings) = run("console=com1,dbgp,vga,com3");
        assert_eq!(
            opts.console,
            ConsoleSet {
                com1: true,
                com2: false,
                vga: true
            }
        );
        assert_eq!(
            warnings,
            [
                Warning::Malformed {
                    name: "console",
                    value: "dbgp",
                    reason: "unknown console device"
                },
                Warning::Malformed {
                    name: "console",
                    value: "com3",
                    reason: "unknown console device"
                },
            ]
        );
    }

    #[test]
    fn console_with_nothing_recognised_keeps_previous() {
        assert_eq!(
            one_warning("console=serial"),
            Warning::Malformed {
                name: "console",
                value: "serial",
                reason: "unknown console device"
            }
        );
        let (opts, warnings) = run("console=vga console=ttyS0");
        assert_eq!(
            opts.console,
            ConsoleSet {
                vga: true,
                ..ConsoleSet::NONE
            }
        );
        assert_eq!(warnings.len(), 1);
        // Only commas: nothing recognised, nothing to warn about.
        assert_eq!(console("console=,"), ConsoleSet::DEFAULT);
    }

    #[test]
    fn console_display() {
        for (line, text) in [
            ("console=com1", "com1"),
            ("console=vga,com1", "com1,vga"),
            ("console=com2,vga,com1", "com1,com2,vga"),
            ("console=none", "none"),
        ] {
            assert_eq!(console(line).to_string(), text);
        }
    }

    // --- sched -----------------------------------------------------------

    #[test]
    fn sched_names() {
        for sched in Scheduler::ALL {
            let line = format!("sched={}", sched.name());
            let opts = clean(&line);
            assert_eq!(opts.sched, Some(sched));
            assert_eq!(sched.to_string(), sched.name());
        }
        assert_eq!(clean("sched=Credit2").sched, Some(Scheduler::Credit2));
        assert_eq!(clean("sched=null").sched, Some(Scheduler::Null));
    }

    #[test]
    fn sched_unknown_is_ignored() {
        assert_eq!(
            one_warning("sched=bvt"),
            Warning::Malformed {
                name: "sched",
                value: "bvt",
                reason: "unknown scheduler"
            }
        );
        let (opts, warnings) = run("sched=rtds sched=credit3");
        assert_eq!(opts.sched, Some(Scheduler::Rtds));
        assert_eq!(warnings.len(), 1);
    }

    // --- dom0_max_vcpus ----------------------------------------------------

    #[test]
    fn dom0_max_vcpus_forms() {
        let r = |min, max| Some(VcpuRange { min, max });
        let v = |line| clean(line).dom0_max_vcpus;
        assert_eq!(v("dom0_max_vcpus=1"), r(1, Some(1)));
        assert_eq!(v("dom0_max_vcpus=4"), r(4, Some(4)));
        assert_eq!(v("dom0_max_vcpus=2-8"), r(2, Some(8)));
        assert_eq!(v("dom0_max_vcpus=2-2"), r(2, Some(2)));
        assert_eq!(v("dom0_max_vcpus=2-"), r(2, None));
        assert_eq!(v("dom0_max_vcpus=-4"), r(1, Some(4)));
        assert_eq!(v("dom0_max_vcpus=0x10"), r(16, Some(16)));
    }

    #[test]
    fn dom0_max_vcpus_malformed() {
        const BAD: &str = "expected <n>, <min>-, <min>-<max> or -<max>";
        let cases = [
            ("dom0_max_vcpus=0", "0", "vCPU count must be at least 1"),
            ("dom0_max_vcpus=0-4", "0-4", "vCPU count must be at least 1"),
            ("dom0_max_vcpus=-0", "-0", "vCPU count must be at least 1"),
            ("dom0_max_vcpus=4-2", "4-2", "max below min"),
            ("dom0_max_vcpus=-", "-", BAD),
            ("dom0_max_vcpus=many", "many", BAD),
            ("dom0_max_vcpus=1-2-3", "1-2-3", BAD),
            ("dom0_max_vcpus=--2", "--2", BAD),
            ("dom0_max_vcpus=2 -", "2", ""),
            (
                "dom0_max_vcpus=4294967296",
                "4294967296",
                "vCPU count too large",
            ),
        ];
        for (line, value, reason) in cases {
            if reason.is_empty() {
                continue;
            }
            assert_eq!(
                one_warning(line),
                Warning::Malformed {
                    name: "dom0_max_vcpus",
                    value,
                    reason
                },
                "{line}"
            );
        }
        assert_eq!(
            clean("dom0_max_vcpus=4294967295").dom0_max_vcpus,
            Some(VcpuRange {
                min: u32::MAX,
                max: Some(u32::MAX)
            })
        );
    }

    #[test]
    fn dom0_max_vcpus_resolve_and_display() {
        let r = |min, max| VcpuRange { min, max };
        assert_eq!(r(1, Some(1)).resolve(8), 1);
        assert_eq!(r(2, Some(4)).resolve(1), 2);
        assert_eq!(r(2, Some(4)).resolve(3), 3);
        assert_eq!(r(2, Some(4)).resolve(16), 4);
        assert_eq!(r(2, None).resolve(16), 16);
        assert_eq!(r(1, None).resolve(0), 1);
        for (range, text) in [
            (r(1, Some(1)), "1"),
            (r(2, Some(8)), "2-8"),
            (r(2, None), "2-"),
            (r(1, Some(4)), "1-4"),
        ] {
            assert_eq!(range.to_string(), text);
            assert_eq!(parse_vcpus(text), Ok(range));
        }
    }

    // --- test hooks --------------------------------------------------------

    #[test]
    fn selftest_fault_values() {
        assert_eq!(
            clean("selftest_fault=pf").selftest_fault,
            Some(SelftestFault::PageFault)
        );
        assert_eq!(
            clean("selftest_fault=de").selftest_fault,
            Some(SelftestFault::DivideError)
        );
        assert_eq!(
            clean("selftest_fault=PF").selftest_fault,
            Some(SelftestFault::PageFault)
        );
        for v in ["gp", "pagefault", "p"] {
            let line = format!("selftest_fault={v}");
            assert_eq!(
                one_warning(&line),
                Warning::Malformed {
                    name: "selftest_fault",
                    value: v,
                    reason: "expected pf, de or fxrstor"
                }
            );
        }
        assert_eq!(SelftestFault::PageFault.to_string(), "pf");
        assert_eq!(SelftestFault::DivideError.to_string(), "de");
        assert_eq!(
            clean("selftest_fault=fxrstor").selftest_fault,
            Some(SelftestFault::Fxrstor)
        );
        assert_eq!(SelftestFault::Fxrstor.to_string(), "fxrstor");
    }

    #[test]
    fn debug_exit_values() {
        assert_eq!(clean("debug_exit=0xf4").debug_exit, Some(0xf4));
        assert_eq!(clean("debug_exit=0XF4").debug_exit, Some(0xf4));
        assert_eq!(clean("debug_exit=244").debug_exit, Some(0xf4));
        assert_eq!(clean("debug_exit=0xffff").debug_exit, Some(0xffff));
        for v in ["0", "0x10000", "port", "0xf4h", "-1", "0x"] {
            let line = format!("debug_exit={v}");
            assert_eq!(
                one_warning(&line),
                Warning::Malformed {
                    name: "debug_exit",
                    value: v,
                    reason: "expected an I/O port 1..=0xffff"
                },
                "{line}"
            );
        }
    }

    // --- warnings ----------------------------------------------------------

    #[test]
    fn warning_display() {
        let cases = [
            (
                Warning::Unknown {
                    name: "foo",
                    value: Some("bar"),
                },
                "unknown option 'foo=bar' ignored",
            ),
            (
                Warning::Unknown {
                    name: "foo",
                    value: None,
                },
                "unknown option 'foo' ignored",
            ),
            (
                Warning::Unknown {
                    name: "foo",
                    value: Some(""),
                },
                "unknown option 'foo=' ignored",
            ),
            (
                Warning::Malformed {
                    name: "dom0_mem",
                    value: "abc",
                    reason: "bad size",
                },
                "malformed value 'abc' for option 'dom0_mem' (bad size) ignored",
            ),
            (
                Warning::MissingValue { name: "dom0_mem" },
                "option 'dom0_mem' needs a value; ignored",
            ),
            (
                Warning::NotBoolean { name: "sched" },
                "option 'sched' is not boolean; 'no-sched' ignored",
            ),
            (
                Warning::TooMany { dropped: 3 },
                "3 more command line warnings not shown",
            ),
        ];
        for (warning, text) in cases {
            assert_eq!(warning.to_string(), text);
        }
        let (_, warnings) = parse("dom0_mem=abc");
        assert_eq!(
            warnings[0].to_string(),
            "malformed value 'abc' for option 'dom0_mem' (bad size) ignored"
        );
    }

    #[test]
    fn parse_collects_warnings() {
        let (opts, warnings) = parse("/boot/oxen.elf foo noreboot loglvl=x");
        assert!(opts.noreboot);
        assert_eq!(opts.image, Some("/boot/oxen.elf"));
        assert_eq!(
            warnings.as_slice(),
            [
                Warning::Unknown {
                    name: "foo",
                    value: None
                },
                Warning::Malformed {
                    name: "loglvl",
                    value: "x",
                    reason: "unknown log level"
                }
            ]
        );
    }

    #[test]
    fn parse_warnings_fill_exactly() {
        let line = "u ".repeat(MAX_WARNINGS);
        let (_, warnings) = parse(&line);
        assert_eq!(warnings.len(), MAX_WARNINGS);
        assert!(
            warnings
                .iter()
                .all(|w| matches!(w, Warning::Unknown { name: "u", .. }))
        );
    }

    #[test]
    fn parse_warnings_overflow_is_counted() {
        let line: String = (0..MAX_WARNINGS + 4).map(|i| format!("u{i} ")).collect();
        let line = format!("{line} noreboot");
        let (opts, warnings) = parse(&line);
        assert!(opts.noreboot);
        assert_eq!(warnings.len(), MAX_WARNINGS);
        for (i, w) in warnings[..MAX_WARNINGS - 1].iter().enumerate() {
            let Warning::Unknown { name, value: None } = w else {
                panic!("{w:?}");
            };
            assert_eq!(*name, format!("u{i}"));
        }
        assert_eq!(warnings[MAX_WARNINGS - 1], Warning::TooMany { dropped: 5 });
        // parse_with sees them all.
        let (_, all) = run(&line);
        assert_eq!(all.len(), MAX_WARNINGS + 4);
    }

    // --- Options display ---------------------------------------------------

    #[test]
    fn options_display_defaults() {
        assert_eq!(
            Options::default().to_string(),
            "loglvl=warning guest_loglvl=none console=com1"
        );
    }

    #[test]
    fn options_display_everything() {
        let line = "/boot/oxen.elf dom0_mem=min:64M,max:512M,-128M loglvl=error/debug \
                    guest_loglvl=none com1=9600,7e2,0x2f8,3 com2=auto console=vga,com2 \
                    noreboot sched=credit2 dom0_max_vcpus=2- selftest_fault=de \
                    debug_exit=0xf4 -- quiet";
        let opts = clean(line);
        let text = opts.to_string();
        assert_eq!(
            text,
            "dom0_mem=min:64M,max:512M,-128M loglvl=error/debug guest_loglvl=none \
             com1=9600,7e2,0x2f8,3 com2=auto,8n1,0x2f8,3 console=com2,vga noreboot \
             sched=credit2 dom0_max_vcpus=2- selftest_fault=de debug_exit=0xf4"
        );
        let again = clean(&text);
        assert_eq!(
            again,
            Options {
                image: None,
                dom0_extra: None,
                ..opts
            }
        );
    }

    // --- properties ----------------------------------------------------------

    /// Words drawn from valid and invalid option text.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("noreboot".to_string()),
            Just("no-noreboot".to_string()),
            Just("--".to_string()),
            "[a-z_-]{1,12}(=[ -~]{0,12})?",
            "dom0[-_]mem=(min:|max:)?-?(0x)?[0-9a-fA-F]{1,6}[TtGgMmKkBb]?(,(min:|max:)?-?[0-9]{1,4}[GMK]?){0,2}",
            "(guest_)?loglvl=(none|error|warning|info|debug|all|bogus)(/(none|error|warning|info|debug|all|x))?",
            "com[12]=(auto|[0-9]{1,7})(,[4-9][noemsx][0-3])?(,0x[0-9a-f]{1,5})?(,[0-9]{1,2})?",
            "console=(com1|com2|vga|none|tty)(,(com1|com2|vga|none|tty)){0,3}",
            "sched=(credit|credit2|sedf|rtds|null|arinc653|bvt)",
            "dom0_max_vcpus=[0-9]{0,3}-?[0-9]{0,3}",
            "selftest_fault=(pf|de|gp)",
            "debug_exit=(0x)?[0-9a-f]{1,5}",
            "mm_audit_every=[0-9]{0,11}",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in any::<String>()) {
            let (_, warnings) = parse(&s);
            prop_assert!(warnings.len() <= MAX_WARNINGS);
        }

        #[test]
        fn display_round_trips(words in prop::collection::vec(word(), 0..12)) {
            let line = words.join(" ");
            let mut count = 0usize;
            let opts = parse_with(&line, |_| count += 1);
            let text = opts.to_string();
            let again = clean(&text);
            prop_assert_eq!(again, Options { image: None, dom0_extra: None, ..opts });
            let (_, kept) = parse(&line);
            prop_assert_eq!(kept.len(), count.min(MAX_WARNINGS));
        }

        #[test]
        fn resolve_invariants(
            avail in 0u64..(1 << 44),
            amount in prop::option::of((any::<bool>(), 0u64..(1 << 44))),
            min in prop::option::of((any::<bool>(), 0u64..(1 << 44))),
            max in prop::option::of((any::<bool>(), 0u64..(1 << 44))),
        ) {
            let amt = |(neg, n): (bool, u64)| if neg { Amount::AllBut(n) } else { Amount::Bytes(n) };
            let mem = Dom0Mem { amount: amount.map(amt), min: min.map(amt), max: max.map(amt) };
            let got = mem.resolve(avail);
            prop_assert!(got <= avail);
            prop_assert_eq!(got % PAGE_SIZE, 0);
            if let Some(min) = mem.min {
                // The minimum is met unless there is not enough memory.
                let want = min.resolve(avail).min(avail) & !(PAGE_SIZE - 1);
                prop_assert!(got >= want);
            }
            if let (Some(max), None) = (mem.max, mem.min) {
                prop_assert!(got <= max.resolve(avail));
            }
            // Display round-trips through the parser.
            if !mem.is_default() {
                prop_assert_eq!(parse_dom0_mem(&mem.to_string()), Ok(mem));
            }
        }

        #[test]
        fn size_display_round_trips(n in any::<u64>()) {
            prop_assert_eq!(parse_size(&ByteSize(n).to_string()), Ok(n));
        }
    }
}
