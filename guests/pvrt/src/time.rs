//! Time on the guest side (XEN-PV-ABI.md §5.3, §15.1–15.3): the PV clock read
//! from `vcpu_time_info` with its version protocol, the wall clock, timers,
//! and blocking until an event arrives.

use xen_abi::errno::Errno;
use xen_abi::hypercall::{SCHED_OP, SET_TIMER_OP};
use xen_abi::sched::{SCHEDOP_BLOCK, SCHEDOP_YIELD};
use xen_abi::shared_info::scale_delta;

use crate::hypercall::{raw, result};

/// The TSC.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// System time (ns since Oxen booted) from vcpu 0's `vcpu_time_info` in the
/// shared_info page mapped at `shared_info_va`.
pub fn now(shared_info_va: u32) -> u64 {
    let t = shared_info_va + 32;
    loop {
        // SAFETY: the caller maps shared_info at `shared_info_va`; these are
        // fields of vcpu_info[0].time, read volatile (Oxen updates them).
        let (v, ts, st, mul, shift, tsc, v2) = unsafe {
            let v = (t as *const u32).read_volatile();
            let ts = ((t + 8) as *const u64).read_volatile();
            let st = ((t + 16) as *const u64).read_volatile();
            let mul = ((t + 24) as *const u32).read_volatile();
            let shift = ((t + 28) as *const i8).read_volatile();
            let tsc = rdtsc();
            (
                v,
                ts,
                st,
                mul,
                shift,
                tsc,
                (t as *const u32).read_volatile(),
            )
        };
        if v & 1 == 0 && v == v2 {
            return st + scale_delta(tsc.wrapping_sub(ts), mul, shift);
        }
    }
}

/// Seconds since 1970 at system time 0 (`wc_sec`).
pub fn wallclock(shared_info_va: u32) -> u32 {
    // SAFETY: as for `now`; wc_sec is at byte 2308 of shared_info.
    unsafe { ((shared_info_va + 2308) as *const u32).read_volatile() }
}

/// Arms the single-shot timer at absolute system time `deadline` (0 cancels).
pub fn set_timer(deadline: u64) -> Result<u32, Errno> {
    // SAFETY: no pointers.
    result(unsafe {
        raw(
            SET_TIMER_OP,
            [deadline as u32, (deadline >> 32) as u32, 0, 0, 0],
        )
    })
}

/// Enables events and sleeps until one is delivered (the idle loop's body).
pub fn block() -> Result<u32, Errno> {
    // SAFETY: no pointers.
    result(unsafe { raw(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]) })
}

/// Gives the CPU away for a moment.
pub fn yield_now() -> Result<u32, Errno> {
    // SAFETY: no pointers.
    result(unsafe { raw(SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]) })
}
