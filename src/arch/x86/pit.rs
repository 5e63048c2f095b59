//! The 8254 PIT: TSC calibration on channel 2 and the periodic tick on channel 0.

use super::cpu::{inb, outb, rdtsc};

/// The PIT's input clock.
pub const PIT_HZ: u32 = 1_193_182;
const CH0_DATA: u16 = 0x40;
const CH2_DATA: u16 = 0x42;
const MODE_CMD: u16 = 0x43;
const PORT_B: u16 = 0x61;

/// Measures the TSC frequency (Hz) against a `ms`-millisecond one-shot on
/// channel 2 (polled, interrupts not needed).
pub fn calibrate_tsc(ms: u32) -> u64 {
    let count = PIT_HZ * ms / 1000;
    assert!(count <= 0xFFFF);
    // Gate channel 2 on, speaker off.
    outb(PORT_B, (inb(PORT_B) & !0x02) | 0x01);
    // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary.
    outb(MODE_CMD, 0b1011_0000);
    outb(CH2_DATA, (count & 0xFF) as u8);
    outb(CH2_DATA, (count >> 8) as u8);
    let start = rdtsc();
    // OUT2 (port 0x61 bit 5) goes high at terminal count.
    while inb(PORT_B) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    let end = rdtsc();
    (end - start) * 1000 / u64::from(ms)
}

/// Starts channel 0 as a rate generator at `hz` interrupts per second (IRQ 0).
pub fn start_periodic(hz: u32) {
    let divisor = (PIT_HZ + hz / 2) / hz;
    assert!((1..=0xFFFF).contains(&divisor));
    // Channel 0, lobyte/hibyte, mode 2 (rate generator), binary.
    outb(MODE_CMD, 0b0011_0100);
    outb(CH0_DATA, (divisor & 0xFF) as u8);
    outb(CH0_DATA, (divisor >> 8) as u8);
}
