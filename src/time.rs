//! Time: the TSC frequency and the periodic tick (PIT channel 0 on IRQ 0).
//!
//! The tick exists to drive the scheduler once there is one; the boot report
//! checks that it runs.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86::{cpu, pic, pit};

/// Periodic tick rate.
pub const TICK_HZ: u32 = 100;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Calibrates the TSC and starts the tick. Interrupts stay off until the caller
/// enables them.
pub fn init() -> u64 {
    let hz = pit::calibrate_tsc(20);
    TSC_HZ.store(hz, Ordering::Relaxed);
    pit::start_periodic(TICK_HZ);
    pic::unmask(0);
    hz
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
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
    } else {
        log::debug!("spurious IRQ {irq}");
    }
}
