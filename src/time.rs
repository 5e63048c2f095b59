//! Time: the TSC frequency, system time (ns since boot, Xen's `NOW()`), the
//! wall clock read from the CMOS RTC at boot, and the periodic tick (PIT
//! channel 0 on IRQ 0), which wakes a blocked vcpu and lets timers fire.
//!
//! Bring-up milestones (`milestone`) print, at debug level, the time since
//! `boot_started`; those reached before the TSC is calibrated are kept (TSC
//! values) and printed by `init`.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86::{cpu, pic, pit};

/// Periodic tick rate.
pub const TICK_HZ: u32 = 100;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static SCALE: AtomicU64 = AtomicU64::new(0);
static WALLCLOCK_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
static BOOT_STARTED_TSC: AtomicU64 = AtomicU64::new(0);
/// Milestones reached before calibration: (what, TSC).
static EARLY_MILESTONES: spin::Mutex<heapless::Vec<(&'static str, u64), 8>> =
    spin::Mutex::new(heapless::Vec::new());

/// Notes the TSC at the start of bring-up, the origin of the milestones.
pub fn boot_started() {
    BOOT_STARTED_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// A bring-up milestone: at debug level, `boot: <what> at <ms> ms` (since
/// `boot_started`), now or, before calibration, from `init`.
pub fn milestone(what: &'static str) {
    let tsc = cpu::rdtsc();
    if tsc_hz() == 0 {
        let _ = EARLY_MILESTONES.lock().push((what, tsc));
    } else {
        print_milestone(what, tsc);
    }
}

fn print_milestone(what: &str, tsc: u64) {
    let us = hv_core::tsc::ticks_to_us(
        tsc.saturating_sub(BOOT_STARTED_TSC.load(Ordering::Relaxed)),
        tsc_hz(),
    );
    log::debug!("boot: {what} at {}.{:03} ms", us / 1000, us % 1000);
}

/// Length of one calibration window: 2 ms of PIT ticks.
const WINDOW_PIT_TICKS: u16 = (hv_core::tsc::PIT_HZ / 500) as u16;
/// Length of the warm-up window: 0.1 ms.
const WARM_UP_PIT_TICKS: u16 = (hv_core::tsc::PIT_HZ / 10_000) as u16;

/// Calibrates the TSC and starts the tick. Interrupts stay off until the caller
/// enables them.
pub fn init() -> u64 {
    let hz = calibrate();
    TSC_HZ.store(hz, Ordering::Relaxed);
    for &(what, tsc) in EARLY_MILESTONES.lock().iter() {
        print_milestone(what, tsc);
    }
    let (mul, shift) = xen_abi::shared_info::VcpuTimeInfo::scale_for_tsc_hz(hz);
    SCALE.store(
        u64::from(mul) | (u64::from(shift as u8) << 32),
        Ordering::Relaxed,
    );
    TSC_AT_BOOT.store(cpu::rdtsc(), Ordering::Relaxed);
    WALLCLOCK_AT_BOOT.store(read_rtc().unwrap_or(0), Ordering::Relaxed);
    pit::start_periodic(TICK_HZ);
    pic::unmask(0);
    hz
}

/// The TSC rate: the median of short PIT windows (`hv_core::tsc`), or CPUID
/// leaf 0x15/0x16's rate where it agrees with them.
fn calibrate() -> u64 {
    use hv_core::tsc::{Calibrator, Source, Verdict};
    // A first, short window that is not counted: under QEMU the first one's
    // edges are always tens of microseconds wide (code translated on first use).
    let _ = pit::tsc_window(WARM_UP_PIT_TICKS);
    let mut calibrator = Calibrator::new();
    while !calibrator.done() {
        let window = pit::tsc_window(WINDOW_PIT_TICKS);
        match calibrator.add(window) {
            Verdict::Accepted(hz) => log::trace!(
                "TSC: PIT window {hz} Hz, edges {} ticks",
                window.map_or(0, |w| w.edges())
            ),
            v => log::debug!("TSC: PIT window rejected: {v:?}"),
        }
    }
    let pit = calibrator.result();
    match pit {
        Some(c) if c.precise => log::debug!(
            "TSC: PIT median {} Hz over {} of {} windows",
            c.hz,
            c.used,
            c.tried
        ),
        Some(c) => log::warn!(
            "TSC: every PIT window was disturbed; {} Hz is the median of {} imprecise ones",
            c.hz,
            c.used
        ),
        None => log::warn!("TSC: no usable PIT window"),
    }
    let cpuid = cpuid_tsc_hz();
    match hv_core::tsc::choose(pit, cpuid) {
        Some((hz, Source::Cpuid { pit: Some(p) })) if pit.is_some_and(|c| c.precise) => {
            log::info!("TSC: {hz} Hz from CPUID, the PIT agrees ({p} Hz)");
            hz
        }
        Some((hz, Source::Cpuid { pit: Some(p) })) => {
            log::warn!("TSC: {hz} Hz from CPUID rather than the disturbed PIT's {p} Hz");
            hz
        }
        Some((hz, Source::Cpuid { pit: None })) => {
            log::warn!("TSC: {hz} Hz from CPUID, unchecked (no usable PIT window)");
            hz
        }
        // A nominal CPUID rate (leaf 0x16) near the PIT's is the usual case.
        Some((hz, Source::Pit { cpuid: Some(c) }))
            if c.abs_diff(hz) <= hz / hv_core::tsc::CPUID_AGREEMENT =>
        {
            log::debug!("TSC: CPUID's nominal {c} Hz, the PIT measures {hz} Hz: using the PIT");
            hz
        }
        Some((hz, Source::Pit { cpuid: Some(c) })) => {
            log::warn!("TSC: CPUID says {c} Hz, the PIT measures {hz} Hz: using the PIT");
            hz
        }
        Some((hz, Source::Pit { cpuid: None })) => hz,
        None => panic!("cannot calibrate the TSC: no usable PIT window and no rate from CPUID"),
    }
}

/// The TSC rate CPUID leaves 0x15/0x16 state, if the CPU has them.
fn cpuid_tsc_hz() -> Option<hv_core::tsc::CpuidRate> {
    let max_leaf = cpu::cpuid(0, 0).0;
    let leaf = |l: u32| (max_leaf >= l).then(|| cpu::cpuid(l, 0));
    let leaf15 = leaf(0x15).map(|(a, b, c, _)| (a, b, c));
    let leaf16 = leaf(0x16).map(|(a, ..)| a);
    log::debug!("TSC: CPUID max basic leaf {max_leaf:#x}, 0x15 {leaf15:x?}, 0x16 {leaf16:x?}");
    hv_core::tsc::cpuid_tsc_hz(leaf15, leaf16)
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// The TSC-to-ns scale as Xen publishes it: (`tsc_to_system_mul`, `tsc_shift`).
pub fn scale() -> (u32, i8) {
    let s = SCALE.load(Ordering::Relaxed);
    (s as u32, (s >> 32) as u8 as i8)
}

/// The TSC value at system time 0.
pub fn tsc_at_boot() -> u64 {
    TSC_AT_BOOT.load(Ordering::Relaxed)
}

/// System time: nanoseconds since `init`.
pub fn now_ns() -> u64 {
    let (mul, shift) = scale();
    xen_abi::shared_info::scale_delta(cpu::rdtsc().wrapping_sub(tsc_at_boot()), mul, shift)
}

/// Seconds since 1970 (UTC) at system time 0, from the RTC (0 if unreadable).
pub fn wallclock_at_boot() -> u64 {
    WALLCLOCK_AT_BOOT.load(Ordering::Relaxed)
}

/// Reads the CMOS real-time clock (assumed UTC, as Xen assumes).
fn read_rtc() -> Option<u64> {
    use crate::arch::x86::cpu::{inb, outb};
    let reg = |r: u8| {
        outb(0x70, r);
        inb(0x71)
    };
    // Wait for the end of an update cycle, then read twice until stable.
    for _ in 0..1_000_000 {
        if reg(0x0A) & 0x80 == 0 {
            break;
        }
    }
    let read = || {
        [
            reg(0x00),
            reg(0x02),
            reg(0x04),
            reg(0x07),
            reg(0x08),
            reg(0x09),
            reg(0x32),
        ]
    };
    let mut t = read();
    loop {
        let again = read();
        if again == t {
            break;
        }
        t = again;
    }
    let status_b = reg(0x0B);
    let dec = |v: u8| {
        if status_b & 0x04 == 0 {
            hv_core::rtc::bcd(v)
        } else {
            v
        }
    };
    let [sec, min, hour, day, month, year, century] = t;
    let hour24 = if status_b & 0x02 == 0 && hour & 0x80 != 0 {
        (dec(hour & 0x7F) % 12) + 12
    } else {
        dec(hour & 0x7F)
    };
    let century = match dec(century) {
        c @ 19..=21 => u32::from(c),
        _ => 20,
    };
    hv_core::rtc::unix_time(
        century * 100 + u32::from(dec(year)),
        u32::from(dec(month)),
        u32::from(dec(day)),
        u32::from(hour24),
        u32::from(dec(min)),
        u32::from(dec(sec)),
    )
}

/// Periodic ticks since the timer started.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Busy-waits `ms` milliseconds on the TSC (works with interrupts off).
pub fn delay_ms(ms: u64) {
    let hz = tsc_hz().max(1_000_000);
    let end = cpu::rdtsc() + hz / 1000 * ms;
    while cpu::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// IRQ dispatch from the trap handler.
pub fn handle_irq(irq: u8) {
    if irq == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    } else if irq == crate::console::COM1_IRQ {
        crate::console::handle_rx_irq();
    } else if crate::domain::pirq::handle_irq(irq) {
        // A guest's line: masked, delivered on the way back to a guest.
    } else {
        log::debug!("spurious IRQ {irq}");
    }
}
