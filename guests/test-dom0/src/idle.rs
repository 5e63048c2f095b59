//! Idle time is nobody's CPU time: dom0, the only domain, waits about two
//! seconds with nothing else to run (the CPU halts in Oxen's idle vcpu).
//! Its CPU time (`getdomaininfo`) must grow by a small fraction of the
//! sleep, and its runstate (`vcpu_op(get_runstate_info)`, and the area it
//! registered, which Oxen rewrites each time the vcpu comes back on the CPU)
//! must count the sleep as blocked time.
//!
//! The wait is `SCHEDOP_poll` with a timeout and no port, so no event is
//! delivered and events stay masked as the rest of the test expects. The
//! runstate area registered here is static and stays registered: it also
//! replaces any earlier registration of a buffer that no longer lives.

use core::sync::atomic::{AtomicU32, Ordering};

use pvrt::hypercall::{raw, result};
use xen_abi::domctl::{XEN_DOMCTL_GETDOMAININFO, XenDomctl, XenDomctlGetdomaininfo};
use xen_abi::errno::Errno;
use xen_abi::hypercall::{DOMCTL, SCHED_OP, VCPU_OP};
use xen_abi::sched::{SCHEDOP_POLL, SchedPoll};
use xen_abi::vcpu::{
    RUNSTATE_BLOCKED, RUNSTATE_RUNNING, VCPUOP_GET_RUNSTATE_INFO, VcpuRunstateInfo,
};

use crate::helpers::{Checks, Mem, register_runstate_area};

/// How long dom0 waits.
const SLEEP_NS: u64 = 2_000_000_000;

/// The runstate area Oxen writes (`struct vcpu_runstate_info`, 44 bytes).
static AREA: [AtomicU32; 11] = [const { AtomicU32::new(0) }; 11];

/// What Oxen last wrote to [`AREA`] (state @0, entry time @4, times @12).
fn area() -> VcpuRunstateInfo {
    let word = |i: usize| AREA[i].load(Ordering::SeqCst);
    let u64_at = |i: usize| u64::from(word(i)) | (u64::from(word(i + 1)) << 32);
    VcpuRunstateInfo {
        state: word(0) as i32,
        state_entry_time: u64_at(1),
        time: core::array::from_fn(|s| u64_at(3 + 2 * s)),
    }
}

fn hcall(nr: u32, args: [u32; 5]) -> Result<u32, Errno> {
    // SAFETY: callers pass pointers to live buffers of the size the call
    // reads or writes.
    result(unsafe { raw(nr, args) })
}

/// dom0's CPU time (ns) from `getdomaininfo`.
fn cpu_time() -> Result<u64, Errno> {
    let mut d = XenDomctl::new(
        XEN_DOMCTL_GETDOMAININFO,
        0,
        &XenDomctlGetdomaininfo::default(),
    );
    hcall(DOMCTL, [&mut d as *mut _ as u32, 0, 0, 0, 0])?;
    Ok(d.payload::<XenDomctlGetdomaininfo>().cpu_time)
}

/// vcpu 0's runstate as of now.
fn runstate() -> Result<VcpuRunstateInfo, Errno> {
    let mut r = VcpuRunstateInfo::default();
    hcall(
        VCPU_OP,
        [VCPUOP_GET_RUNSTATE_INFO, 0, &mut r as *mut _ as u32, 0, 0],
    )?;
    Ok(r)
}

fn blocked_ns(r: &VcpuRunstateInfo) -> u64 {
    let time = r.time;
    time[RUNSTATE_BLOCKED as usize]
}

/// Waits about [`SLEEP_NS`] in `SCHEDOP_poll`, then checks who was charged.
pub fn idle_is_nobodys_time(c: &mut Checks, mem: &Mem<'_>) {
    let va = mem.scratch_va(61);
    c.ok(
        "idle_map_shared_info",
        mem.map(va, mem.si.shared_info >> 12, true),
    );
    let now = || pvrt::time::now(va);
    c.ok(
        "idle_register_runstate_area",
        register_runstate_area(AREA.as_ptr() as u32),
    );
    let area_before = area();
    let (cpu0, rs0) = (cpu_time(), runstate());
    let start = now();
    let end = start + SLEEP_NS;
    while now() < end {
        let p = SchedPoll {
            ports: 0,
            nr_ports: 0,
            timeout: end,
        };
        if hcall(SCHED_OP, [SCHEDOP_POLL, &p as *const _ as u32, 0, 0, 0]).is_err() {
            break;
        }
    }
    let wall = now() - start;
    let (cpu1, rs1) = (cpu_time(), runstate());
    let area_after = area();
    let _ = mem.unmap(va);

    // The bug: the halted time was charged to the last vcpu that ran, so
    // dom0 gained about as much CPU time as it slept.
    let gained = match (cpu0, cpu1) {
        (Ok(a), Ok(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let blocked = match (&rs0, &rs1) {
        (Ok(a), Ok(b)) => Some(blocked_ns(b).saturating_sub(blocked_ns(a))),
        _ => None,
    };
    pvrt::println!(
        "test-dom0: asleep {wall} ns: cpu_time +{gained:?} ns, runstate blocked +{blocked:?} ns"
    );
    c.check(
        "idle_cpu_time_not_charged",
        wall >= SLEEP_NS && gained.is_some_and(|g| g * 10 < wall),
        format_args!("cpu_time {cpu0:?} -> {cpu1:?} over {wall} ns asleep"),
    );
    c.check(
        "idle_runstate_blocked",
        rs1.as_ref().is_ok_and(|r| r.state == RUNSTATE_RUNNING)
            && blocked.is_some_and(|b| b * 10 >= wall * 9),
        format_args!("blocked +{blocked:?} ns over {wall} ns asleep; now {rs1:?}"),
    );
    // Rewritten when the vcpu came back after the sleep: running since then,
    // with the sleep in its blocked time.
    let grew = blocked_ns(&area_after).saturating_sub(blocked_ns(&area_before));
    let entered = area_after.state_entry_time;
    c.check(
        "idle_runstate_area_updated",
        area_after.state == RUNSTATE_RUNNING
            && grew * 10 >= wall * 9
            && entered >= start
            && entered <= start + wall,
        format_args!("blocked +{grew} ns over {wall} ns; area {area_after:?}"),
    );
}
