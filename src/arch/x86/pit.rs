//! The 8254 PIT: TSC calibration windows on channel 2 and the periodic tick on
//! channel 0.

use hv_core::tsc::Window;

use super::cpu::{inb, outb, rdtsc};

/// The PIT's input clock.
pub const PIT_HZ: u32 = hv_core::tsc::PIT_HZ as u32;
const CH0_DATA: u16 = 0x40;
const CH2_DATA: u16 = 0x42;
const MODE_CMD: u16 = 0x43;
const PORT_B: u16 = 0x61;

/// Polls of OUT2 after which a window counts as never ended (about a second
/// on hardware, where a port read takes a microsecond).
const MAX_POLLS: u32 = 1 << 20;

/// Runs channel 2 as a one-shot of `count` PIT ticks and brackets its start
/// and its terminal count with TSC readings (polled, interrupts not needed).
/// `None` if OUT2 never rose.
pub fn tsc_window(count: u16) -> Option<Window> {
    // Gate channel 2 on, speaker off.
    outb(PORT_B, (inb(PORT_B) & !0x02) | 0x01);
    // Channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count), binary:
    // OUT2 goes low, and the count starts once its high byte is written.
    outb(MODE_CMD, 0b1011_0000);
    outb(CH2_DATA, (count & 0xFF) as u8);
    let start_before = rdtsc();
    outb(CH2_DATA, (count >> 8) as u8);
    let start_after = rdtsc();
    let mut last_running = start_after;
    let mut saw_running = false;
    for _ in 0..MAX_POLLS {
        // Both readings come before the branch, so that the one after the
        // poll is not delayed by anything the exit path costs the first time
        // (under QEMU, translating it).
        let before_poll = rdtsc();
        // OUT2 (port 0x61 bit 5) goes high at terminal count.
        let done = inb(PORT_B) & 0x20 != 0;
        let after_poll = rdtsc();
        if done {
            return Some(Window {
                start_before,
                start_after,
                last_running,
                first_done: after_poll,
                pit_ticks: u32::from(count),
                saw_running,
            });
        }
        last_running = before_poll;
        saw_running = true;
    }
    None
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
