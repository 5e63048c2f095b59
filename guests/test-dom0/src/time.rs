//! Time and scheduling: the PV clock and the wall clock in shared_info,
//! timers (`set_timer_op`, `vcpu_op` single-shot and periodic) waking a
//! blocked vcpu through VIRQ_TIMER, `hlt` as block, `poll`, `yield`, and
//! `vcpu_op`'s queries and runstate area. Run from the event checks, which
//! turn events on first.

use core::sync::atomic::Ordering as AtOrd;

use xen_abi::errno::Errno;

use crate::events::{SEEN, SHARED_VA, evtchn, shared_u8, shared_u32};
use crate::helpers::{Checks, hcall, register_runstate_area};

/// System time, from pvrt's PV clock.
fn guest_now() -> u64 {
    pvrt::time::now(SHARED_VA.load(AtOrd::SeqCst))
}

/// The PV clock, wall clock, timers (set_timer_op, vcpu_op single-shot and
/// periodic) waking a blocked vcpu through VIRQ_TIMER, poll, and vcpu_op.
pub(crate) fn time(c: &mut Checks) {
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::{SCHED_OP, SCHED_OP_COMPAT, SET_TIMER_OP, VCPU_OP};
    use xen_abi::sched::*;
    use xen_abi::vcpu::*;
    let t0 = guest_now();
    let mul = shared_u32(32 + 24).load(AtOrd::SeqCst);
    c.check(
        "vcpu_time_info",
        t0 > 0 && mul != 0 && shared_u32(32).load(AtOrd::SeqCst) & 1 == 0,
        format_args!("now={t0} mul={mul:#x}"),
    );
    let wc = shared_u32(2308).load(AtOrd::SeqCst);
    c.check("wallclock", wc > 1_600_000_000, format_args!("wc_sec={wc}"));
    let spin_until = t0 + 2_000_000;
    while guest_now() < spin_until {}
    let t1 = guest_now();
    c.check(
        "pv_clock_advances",
        t1 >= spin_until && t1 - t0 < 1_000_000_000,
        format_args!("{t0} -> {t1}"),
    );

    c.ok(
        "vcpu_stop_periodic_timer",
        hcall(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]),
    );
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_TIMER,
        vcpu: 0,
        port: 0,
    };
    c.ok("bind_virq_timer", evtchn(EVTCHNOP_BIND_VIRQ, &mut virq));
    let tp = virq.port as usize;
    let seen = |port: usize| SEEN.get(port).map_or(0, |n| n.load(AtOrd::SeqCst));

    // set_timer_op + block: the timer's VIRQ wakes the vcpu. Events are
    // masked from arming to blocking (block unmasks them, as in Xen): on a
    // slow host the timer may fire before the block, and then it must stay
    // pending for the block to see, not be delivered before it.
    let mask_events = || shared_u8(1).store(1, AtOrd::SeqCst);
    mask_events();
    let start = guest_now();
    let deadline = start + 5_000_000;
    c.ok(
        "set_timer_op",
        hcall(
            SET_TIMER_OP,
            [deadline as u32, (deadline >> 32) as u32, 0, 0, 0],
        ),
    );
    c.ok("sched_block", hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]));
    let woke = guest_now();
    c.check(
        "timer_wakes_blocked_vcpu",
        seen(tp) == 1 && woke >= deadline,
        format_args!("seen={} woke after {} ns", seen(tp), woke - start),
    );

    // vcpu_op single-shot: a past deadline with the FUTURE flag is refused.
    let past = VcpuSetSingleshotTimer {
        timeout_abs_ns: 1,
        flags: VCPU_SSHOTTMR_FUTURE,
    };
    c.err(
        "singleshot_in_the_past",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_SINGLESHOT_TIMER,
                0,
                &past as *const _ as u32,
                0,
                0,
            ],
        ),
        Errno::ETIME,
    );
    mask_events();
    let soon = VcpuSetSingleshotTimer {
        timeout_abs_ns: guest_now() + 3_000_000,
        flags: VCPU_SSHOTTMR_FUTURE,
    };
    c.ok(
        "singleshot_timer",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_SINGLESHOT_TIMER,
                0,
                &soon as *const _ as u32,
                0,
                0,
            ],
        ),
    );
    c.ok(
        "sched_block_singleshot",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.check(
        "singleshot_wakes",
        seen(tp) == 2,
        format_args!("seen={}", seen(tp)),
    );

    // A periodic timer; a period under 1 ms is refused.
    let short = VcpuSetPeriodicTimer { period_ns: 10_000 };
    c.err(
        "periodic_too_short",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_PERIODIC_TIMER,
                0,
                &short as *const _ as u32,
                0,
                0,
            ],
        ),
        Errno::EINVAL,
    );
    let period = VcpuSetPeriodicTimer {
        period_ns: 2_000_000,
    };
    c.ok(
        "periodic_timer",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_PERIODIC_TIMER,
                0,
                &period as *const _ as u32,
                0,
                0,
            ],
        ),
    );
    c.ok(
        "sched_block_periodic",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.ok(
        "sched_block_periodic_again",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.check(
        "periodic_wakes_twice",
        // Each block returns only after a timer event; a slow run may see one
        // more tick on the way.
        seen(tp) >= 4,
        format_args!("seen={}", seen(tp)),
    );
    c.ok(
        "stop_periodic_timer",
        hcall(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]),
    );
    huge_timers(c, tp);
    // `hlt` in ring 1 is emulated as block.
    mask_events();
    let deadline = guest_now() + 2_000_000;
    c.ok(
        "set_timer_op_for_hlt",
        hcall(
            SET_TIMER_OP,
            [deadline as u32, (deadline >> 32) as u32, 0, 0, 0],
        ),
    );
    let before_hlt = seen(tp);
    // SAFETY: emulated by Oxen as SCHEDOP_block; the timer wakes it.
    unsafe { core::arch::asm!("hlt") };
    c.check(
        "hlt_blocks_until_event",
        seen(tp) == before_hlt + 1 && guest_now() >= deadline,
        format_args!("seen={}", seen(tp)),
    );

    // poll: nothing arrives on the port, the timeout ends the wait.
    let ports = [virq.port];
    let pstart = guest_now();
    let p = SchedPoll {
        ports: ports.as_ptr() as u32,
        nr_ports: 1,
        timeout: pstart + 3_000_000,
    };
    c.ok(
        "sched_poll_timeout",
        hcall(SCHED_OP, [SCHEDOP_POLL, &p as *const _ as u32, 0, 0, 0]),
    );
    c.check(
        "sched_poll_waited",
        guest_now() >= pstart + 3_000_000,
        format_args!("{} ns", guest_now() - pstart),
    );

    c.ok("sched_yield", hcall(SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]));
    c.ok(
        "sched_op_compat_yield",
        hcall(SCHED_OP_COMPAT, [SCHEDOP_YIELD, 0, 0, 0, 0]),
    );
    c.err(
        "sched_op_unknown",
        hcall(SCHED_OP, [99, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    c.check(
        "vcpu_is_up",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 0, 0, 0, 0]) == Ok(1),
        format_args!(""),
    );
    c.err(
        "vcpu_op_no_such_vcpu",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 1, 0, 0, 0]),
        Errno::ENOENT,
    );
    c.err(
        "vcpu_op_vcpu_out_of_range",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 40, 0, 0, 0]),
        Errno::EINVAL,
    );
    let mut rs = [0u32; 11];
    c.ok(
        "vcpu_runstate_info",
        hcall(
            VCPU_OP,
            [VCPUOP_GET_RUNSTATE_INFO, 0, rs.as_mut_ptr() as u32, 0, 0],
        ),
    );
    c.check(
        "vcpu_runstate_running",
        rs[0] == RUNSTATE_RUNNING as u32,
        format_args!("state={}", rs[0]),
    );
    let mut area = [0xFFFF_FFFFu32; 11];
    c.ok(
        "vcpu_register_runstate_area",
        register_runstate_area(area.as_mut_ptr() as u32),
    );
    c.check(
        "vcpu_runstate_area_written",
        area[0] == RUNSTATE_RUNNING as u32 && area[3] != 0xFFFF_FFFF,
        format_args!("{area:x?}"),
    );
    // `area` lives on this stack frame only: take it back from Oxen, which
    // rewrites a registered area each time the vcpu comes on the CPU.
    c.ok("vcpu_unregister_runstate_area", register_runstate_area(0));
    let mut close = EvtchnClose { port: virq.port };
    c.ok("close_virq_timer", evtchn(EVTCHNOP_CLOSE, &mut close));
}

/// Timer values near the end of time (issue 10, finding 9): `now + period`
/// must not wrap (a build with overflow checks would stop the machine), and
/// each call gives Xen's result. `tp` is the bound VIRQ_TIMER port; no timer
/// is armed on entry or on return.
fn huge_timers(c: &mut Checks, tp: usize) {
    use xen_abi::hypercall::{SET_TIMER_OP, VCPU_OP};
    use xen_abi::vcpu::*;
    let seen = |port: usize| SEEN.get(port).map_or(0, |n| n.load(AtOrd::SeqCst));
    let periodic = |period_ns: u64| {
        let p = VcpuSetPeriodicTimer { period_ns };
        hcall(
            VCPU_OP,
            [VCPUOP_SET_PERIODIC_TIMER, 0, &p as *const _ as u32, 0, 0],
        )
    };
    // Beyond Xen's STIME_DELTA_MAX (2^63 - 1): refused.
    let (max, over) = (periodic(u64::MAX), periodic(1 << 63));
    c.check(
        "periodic_beyond_stime_delta_max",
        max == Err(Errno::EINVAL) && over == Err(Errno::EINVAL),
        format_args!("u64::MAX: {max:?}, 2^63: {over:?}"),
    );
    c.ok("periodic_longest", periodic(i64::MAX as u64));
    c.ok(
        "stop_periodic_longest",
        hcall(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]),
    );
    // A single-shot deadline at or past 2^63 is negative as system time, so
    // in the past: as Xen, it fires at once (it used to never fire).
    for (name, timeout_abs_ns) in [
        ("singleshot_end_of_time_fires_at_once", u64::MAX),
        ("singleshot_2_63_fires_at_once", 1 << 63),
    ] {
        let t = VcpuSetSingleshotTimer {
            timeout_abs_ns,
            flags: VCPU_SSHOTTMR_FUTURE,
        };
        let before = seen(tp);
        let start = guest_now();
        let r = hcall(
            VCPU_OP,
            [VCPUOP_SET_SINGLESHOT_TIMER, 0, &t as *const _ as u32, 0, 0],
        );
        while seen(tp) == before && guest_now() - start < 50_000_000 {}
        let stop = hcall(VCPU_OP, [VCPUOP_STOP_SINGLESHOT_TIMER, 0, 0, 0, 0]);
        c.check(
            name,
            r.is_ok() && stop.is_ok() && seen(tp) == before + 1,
            format_args!("{r:?} {stop:?} seen {before} -> {}", seen(tp)),
        );
    }
    // set_timer_op more than 2^50 ns ahead (a wrapped jiffies count): as
    // Xen, it fires in 100 ms instead.
    let before = seen(tp);
    let start = guest_now();
    let far = start + (1 << 51);
    let r = hcall(SET_TIMER_OP, [far as u32, (far >> 32) as u32, 0, 0, 0]);
    // Spinning, not blocking: a block that came after the event (a slow
    // host) would wait for good.
    while seen(tp) == before && guest_now() - start < 2_000_000_000 {}
    let waited = guest_now() - start;
    c.check(
        "set_timer_op_far_fires_in_100ms",
        r.is_ok() && seen(tp) == before + 1 && (95_000_000..1_000_000_000).contains(&waited),
        format_args!(
            "{r:?} seen {before} -> {}, fired after {waited} ns",
            seen(tp)
        ),
    );
    // A deadline negative as system time is in the past: it fires at once
    // (on the way back from the call; no blocking, nothing else would wake).
    let before = seen(tp);
    let start = guest_now();
    let r = hcall(SET_TIMER_OP, [u32::MAX, u32::MAX, 0, 0, 0]);
    while seen(tp) == before && guest_now() - start < 50_000_000 {}
    c.check(
        "set_timer_op_negative_fires_at_once",
        r.is_ok() && seen(tp) == before + 1,
        format_args!("{r:?} seen {before} -> {}", seen(tp)),
    );
}
