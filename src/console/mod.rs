//! Oxen's console: COM1 (16550) and optionally the VGA text screen, behind the
//! `log` crate, and the console ring (`xm dmesg`) that keeps what they showed.
//!
//! Three writers share it, and `hv_core::conline` keeps their lines apart
//! (none starts in the middle of another's):
//! - Oxen, every line prefixed `(XEN) ` as Xen's console is, so transcripts
//!   read the same to a Xen engineer: `printk!` (the boot banner and reports,
//!   printed whatever the log level, as Xen's plain `printk`) and
//!   `log::error!..trace!` (diagnostics filtered by `loglvl=`; Xen's levels
//!   map to the `log` crate's: none=off, error, warning=warn, info, debug,
//!   all=trace);
//! - dom0's `console_io` output, as it is (interactive: not held back);
//! - another domain's `console_io` output, held in that domain's line buffer
//!   and printed a whole line at a time, prefixed `(dN) `. The buffer lives
//!   in the `Domain` and is flushed when the domain is destroyed.
//!
//! What a guest can make Oxen print goes through [`guest_log`] (and a domU's
//! `console_io` lines through [`guest_write`]): filtered by `guest_loglvl=`
//! and, at the rate-limited levels (by default all of them: Xen's release
//! default `none/warning`), through the domain's own token bucket
//! (`hv_core::ratelimit`: 10 lines, one more every 5 s), so no domain can
//! fill the console; refused lines are counted and reported as
//! `dN: K messages suppressed`. Oxen's own log is not rate-limited
//! (`loglvl=`'s rate-limited level is parsed, not applied).
//!
//! The console is one spin lock (taken after `DOMAINS`). The fatal path
//! (`panic::fatal`) takes it by force, so a trap taken while the lock was
//! held still gets its report out.

pub mod keys;
mod serial;
mod vga;

use core::fmt::{self, Write};

use hv_core::cmdline::{ComConfig, LogLevel};
use hv_core::conline::{GuestLine, Terminal};
use hv_core::ratelimit::{GuestLogPolicy, RateLimit, Route, Verdict};
use spin::Mutex;

pub use serial::Serial;
pub use serial::base_port as serial_port;
pub use vga::VgaText;

/// The console sinks and the line state they share.
pub struct Console {
    serial: Option<Serial>,
    vga: Option<VgaText>,
    /// Who owns the current line (see `hv_core::conline`).
    terminal: Terminal,
    /// What was printed, for `sysctl(readconsole)` (`xm dmesg`).
    ring: hv_core::conring::ConRing<CONRING_SIZE>,
}

/// Bytes of console output kept for `xm dmesg` (Xen's default conring size).
pub const CONRING_SIZE: usize = 16 * 1024;

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    serial: None,
    vga: None,
    terminal: Terminal::new(),
    ring: hv_core::conring::ConRing::new(),
});

impl Console {
    /// Runs `f` with the line state and a sink that puts bytes on every
    /// output (the ring, COM1, the VGA screen).
    fn with_out(&mut self, f: impl FnOnce(&mut Terminal, &mut dyn FnMut(&[u8]))) {
        let Console {
            serial,
            vga,
            terminal,
            ring,
        } = self;
        let mut out = |bytes: &[u8]| {
            ring.push(bytes);
            if let Some(serial) = serial.as_mut() {
                serial.write_bytes(bytes);
            }
            if let Some(vga) = vga.as_mut() {
                vga.write_bytes(bytes);
            }
        };
        f(terminal, &mut out);
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.with_out(|t, mut out| t.xen(s.as_bytes(), &mut out));
        Ok(())
    }
}

/// Brings up COM1 at the default 115200 8n1 so that anything, even an early
/// fatal trap, can be reported.
pub fn early_init() {
    let serial = Serial::new(&ComConfig::COM1_DEFAULT);
    CONSOLE.lock().serial = serial;
    log::set_logger(&LOGGER).expect("logger set twice");
    log::set_max_level(log::LevelFilter::Warn);
}

/// Applies the parsed `com1=` and `console=` options.
pub fn configure(com1: Option<&ComConfig>, use_com1: bool, use_vga: bool) {
    let mut c = CONSOLE.lock();
    if let Some(cfg) = com1 {
        c.serial = Serial::new(cfg);
    }
    if !use_com1 {
        c.serial = None;
        serial::forget();
    }
    if use_vga {
        c.vga = Some(VgaText::new());
    }
}

/// Sets the hypervisor log level from `loglvl=`.
pub fn set_log_level(level: LogLevel) {
    log::set_max_level(level_filter(level));
}

/// Maps Xen's log levels onto the `log` crate's.
pub fn level_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::None => log::LevelFilter::Off,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warning => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::All => log::LevelFilter::Trace,
    }
}

/// Writes formatted text to the console, unfiltered (see `printk!`).
pub fn print(args: fmt::Arguments<'_>) {
    let was = crate::arch::x86::cpu::disable_interrupts();
    let _ = CONSOLE.lock().write_fmt(args);
    crate::arch::x86::cpu::restore_interrupts(was);
}

/// `guest_loglvl=` as applied, set once at boot (Xen's release default
/// until then).
static GUEST_POLICY: spin::Once<GuestLogPolicy> = spin::Once::new();

/// Applies `guest_loglvl=` (once, at boot).
pub fn configure_guest_log(always: LogLevel, limited: LogLevel) {
    GUEST_POLICY.call_once(|| GuestLogPolicy { always, limited });
}

fn guest_route(level: LogLevel) -> Route {
    GUEST_POLICY
        .get()
        .unwrap_or(&GuestLogPolicy::DEFAULT)
        .route(level)
}

/// Whether a guest message of `level` is printed now, with what `limit`
/// (the domain's) refused before it.
fn guest_gate(limit: &mut RateLimit, route: Route) -> Verdict {
    match route {
        Route::Always => Verdict::Print { suppressed: 0 },
        Route::Limited => limit.check(crate::time::now_ns()),
        Route::Drop => Verdict::Suppress,
    }
}

/// Prints a message a guest caused (domain `domid`, whose rate limit is
/// `limit`) at `level`, as `guest_loglvl=` and the rate limit allow (Xen's
/// `gdprintk`/`XENLOG_G_*`); see [`guest_log!`](crate::guest_log).
pub fn guest_log(domid: u16, limit: &mut RateLimit, level: LogLevel, args: fmt::Arguments<'_>) {
    let route = guest_route(level);
    if route == Route::Drop {
        return;
    }
    let Verdict::Print { suppressed } = guest_gate(limit, route) else {
        return;
    };
    let tag = match level {
        LogLevel::Error => "error: ",
        LogLevel::Warning => "warning: ",
        _ => "",
    };
    let was = crate::arch::x86::cpu::disable_interrupts();
    let mut c = CONSOLE.lock();
    c.with_out(|t, mut out| t.suppressed_note(domid, suppressed, &mut out));
    let _ = c.write_fmt(format_args!("{tag}{args}\n"));
    drop(c);
    crate::arch::x86::cpu::restore_interrupts(was);
}

/// `guest_log!(dom, Level, "...", args)`: a message domain `dom` (a
/// `Domain` or `&mut Domain` variable) caused, through its rate limit (see
/// [`guest_log`]). The arguments may read `dom`'s other fields.
#[macro_export]
macro_rules! guest_log {
    ($dom:ident, $level:ident, $($arg:tt)*) => {
        $crate::console::guest_log(
            $dom.domid,
            &mut $dom.log_limit,
            hv_core::cmdline::LogLevel::$level,
            format_args!($($arg)*),
        )
    };
}

/// Writes a guest's `console_io` output: dom0's goes out as it is (its
/// console is this one, and interactive), another domain's is collected in
/// `line` (that domain's) and printed a whole line at a time, prefixed
/// `(dN) ` (see `hv_core::conline`), each line a guest message at
/// `hv_core::ratelimit::CONSOLE_LINE_LEVEL` under the domain's rate `limit`.
///
/// Returns how many bytes went out (prefixes and line ends included): what
/// the write cost on the console.
pub fn guest_write(domid: u16, line: &mut GuestLine, limit: &mut RateLimit, bytes: &[u8]) -> usize {
    let route = if domid == 0 {
        Route::Always
    } else {
        guest_route(hv_core::ratelimit::CONSOLE_LINE_LEVEL)
    };
    let was = crate::arch::x86::cpu::disable_interrupts();
    let mut printed = 0;
    CONSOLE.lock().with_out(|t, out| {
        let mut out = |b: &[u8]| {
            printed += b.len();
            out(b);
        };
        if domid == 0 {
            t.dom0(bytes, &mut out);
        } else if route != Route::Drop {
            t.guest_gated(domid, line, bytes, &mut out, || guest_gate(limit, route));
        }
    });
    crate::arch::x86::cpu::restore_interrupts(was);
    printed
}

/// Prints what is left of domain `domid`'s unfinished line (it is being
/// destroyed), and how many of its messages its rate `limit` refused since
/// it last printed one.
pub fn guest_flush(domid: u16, line: &mut GuestLine, limit: &mut RateLimit) {
    let suppressed = limit.take_suppressed();
    let was = crate::arch::x86::cpu::disable_interrupts();
    CONSOLE.lock().with_out(|t, mut out| {
        t.suppressed_note(domid, suppressed, &mut out);
        t.flush_guest(domid, line, &mut out);
    });
    crate::arch::x86::cpu::restore_interrupts(was);
}

/// Bytes typed on COM1, waiting for dom0's `console_io(read)`.
static INPUT: Mutex<heapless::Deque<u8, 1024>> = Mutex::new(heapless::Deque::new());
/// Set when input arrived that dom0 has not been told about (VIRQ_CONSOLE).
static INPUT_NOTIFY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The COM1 interrupt line.
pub const COM1_IRQ: u8 = 4;

/// Turns on COM1's receive interrupt (IRQ 4).
pub fn enable_input() {
    let was = crate::arch::x86::cpu::disable_interrupts();
    if let Some(s) = CONSOLE.lock().serial.as_mut() {
        s.enable_rx_interrupt();
    }
    crate::arch::x86::pic::unmask(COM1_IRQ);
    crate::arch::x86::cpu::restore_interrupts(was);
}

/// IRQ 4: moves the received bytes into the input buffer (dropping what does
/// not fit) and notes that dom0 should hear of it. Interrupts are off.
pub fn handle_rx_irq() {
    let mut c = CONSOLE.lock();
    let mut input = INPUT.lock();
    let mut got = false;
    while let Some(b) = c.serial.as_mut().and_then(Serial::try_read_byte) {
        if keys::route(b) == keys::Route::Dom0 {
            let _ = input.push_back(b);
            got = true;
        }
    }
    if got {
        INPUT_NOTIFY.store(true, core::sync::atomic::Ordering::SeqCst);
    }
}

/// Takes up to `buf.len()` bytes of console input.
pub fn read_input(buf: &mut [u8]) -> usize {
    let was = crate::arch::x86::cpu::disable_interrupts();
    let mut input = INPUT.lock();
    let mut n = 0;
    while n < buf.len() {
        match input.pop_front() {
            Some(b) => {
                buf[n] = b;
                n += 1;
            }
            None => break,
        }
    }
    drop(input);
    crate::arch::x86::cpu::restore_interrupts(was);
    n
}

/// Whether console input arrived since the last call (for VIRQ_CONSOLE).
pub fn take_input_notification() -> bool {
    INPUT_NOTIFY.swap(false, core::sync::atomic::Ordering::SeqCst)
}

/// Copies console output from byte number `from` on into `out` (see
/// `hv_core::conring`); returns the count and the next number.
pub fn read_ring(from: Option<u32>, out: &mut [u8]) -> (usize, u32) {
    let was = crate::arch::x86::cpu::disable_interrupts();
    let r = {
        let c = CONSOLE.lock();
        c.ring.read(
            from.unwrap_or(c.ring.produced().wrapping_sub(CONRING_SIZE as u32)),
            out,
        )
    };
    crate::arch::x86::cpu::restore_interrupts(was);
    r
}

/// Empties the console ring.
pub fn clear_ring() {
    let was = crate::arch::x86::cpu::disable_interrupts();
    CONSOLE.lock().ring.clear();
    crate::arch::x86::cpu::restore_interrupts(was);
}

/// Writes on the fatal path: takes the console even if a trapped context held it.
pub fn print_fatal(args: fmt::Arguments<'_>) {
    if CONSOLE.is_locked() {
        // SAFETY: we are on the fatal path with interrupts off on the only CPU;
        // whoever held the lock will never run again, so breaking it cannot
        // let two writers interleave.
        unsafe { CONSOLE.force_unlock() };
    }
    let mut c = CONSOLE.lock();
    if c.serial.is_none() && c.vga.is_none() {
        c.serial = Serial::new(&ComConfig::COM1_DEFAULT);
    }
    c.with_out(|t, mut out| t.end_line(&mut out));
    let _ = c.write_fmt(args);
}

/// `printk!`: unfiltered console output, as Xen's plain `printk`.
#[macro_export]
macro_rules! printk {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let tag = match record.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            _ => "",
        };
        print(format_args!("{}{}\n", tag, record.args()));
    }

    fn flush(&self) {}
}
