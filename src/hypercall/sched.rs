//! `sched_op` (#29) and its compat form (#6), and `set_timer_op` (#15)
//! (XEN-PV-ABI.md §15.1–15.2). `yield` ends the vcpu's slice, `block`
//! enables events and takes the vcpu off the CPU until an upcall is due,
//! `poll` until one of some ports is pending or a timeout passes (the
//! scheduler, `domain::sched`, wakes them on the way back), and `shutdown`
//! ends the domain.

use hv_core::evtchn::{EventWords, upcall_needed};
use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::sched::{
    SCHED_POLL_MAX_PORTS, SCHEDOP_BLOCK, SCHEDOP_POLL, SCHEDOP_REMOTE_SHUTDOWN, SCHEDOP_SHUTDOWN,
    SCHEDOP_YIELD, SchedPoll, SchedRemoteShutdown, SchedShutdown, shutdown_reason_name,
};
use xen_abi::types::EvtchnPort;

use super::Ctx;
use crate::arch::x86::uaccess::read_guest;
use crate::domain::Domain;
use crate::domain::events::SharedWords;
use crate::domain::sched::Poll;

fn shutdown(dom: &mut Domain, reason: u32) -> Result<i32, Errno> {
    if shutdown_reason_name(reason).is_none() {
        return Err(Errno::EINVAL);
    }
    crate::domain::shutdown(dom, reason);
    Ok(0)
}

/// `SCHEDOP_block` (and an emulated `hlt`): enable events; unless an upcall
/// is already due, the vcpu leaves the CPU until one is.
pub fn block_domain(dom: &mut Domain) {
    let mut words = SharedWords::new(dom.shared_va);
    words.set_upcall_mask(0, false);
    dom.vcpu.blocked = !upcall_needed(&words, 0);
}

fn block(dom: &mut Domain) -> Result<i32, Errno> {
    block_domain(dom);
    Ok(0)
}

/// `SCHEDOP_poll`: wait until one of the ports is pending, or the timeout
/// (absolute system time; 0 = none) passes.
fn poll(dom: &mut Domain, arg: u32) -> Result<i32, Errno> {
    let p: SchedPoll = read_guest(arg)?;
    let (ports, nr, timeout) = ({ p.ports }, { p.nr_ports }, { p.timeout });
    if nr > SCHED_POLL_MAX_PORTS {
        return Err(Errno::EINVAL);
    }
    let mut list = heapless::Vec::new();
    for i in 0..nr {
        let port: EvtchnPort = read_guest(ports.wrapping_add(4 * i))?;
        if port >= xen_abi::shared_info::NR_EVENT_CHANNELS as u32 {
            return Err(Errno::EINVAL);
        }
        let _ = list.push(port);
    }
    let words = SharedWords::new(dom.shared_va);
    let now = crate::time::now_ns();
    let due = list.iter().any(|&p| words.is_pending(p)) || (timeout != 0 && now >= timeout);
    if !due {
        dom.vcpu.poll = Some(Poll {
            ports: list,
            deadline: (timeout != 0).then_some(timeout),
        });
    }
    Ok(0)
}

/// `SCHEDOP_remote_shutdown` (privileged): shuts another domain down for
/// `reason`, as if it had asked itself (the toolstack then applies its
/// `on_*` action when VIRQ_DOM_EXC arrives).
fn remote_shutdown(ctx: &mut Ctx, arg: u32) -> Result<i32, Errno> {
    let r: SchedRemoteShutdown = read_guest(arg)?;
    if !ctx.dom().privileged {
        return Err(Errno::EPERM);
    }
    let dom = ctx.target(r.domain_id)?;
    if dom.shutdown_reason.is_some() {
        return Ok(0);
    }
    shutdown(dom, r.reason)
}

/// `SCHEDOP_yield`: the slice ends; others run first if any are runnable.
fn yield_now(ctx: &mut Ctx) -> Result<i32, Errno> {
    ctx.table().slice_end = 0;
    Ok(0)
}

pub fn do_sched_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    if cmd == SCHEDOP_YIELD {
        return yield_now(ctx).into();
    }
    if cmd == SCHEDOP_REMOTE_SHUTDOWN {
        return remote_shutdown(ctx, arg).into();
    }
    let dom = ctx.dom();
    match cmd {
        SCHEDOP_BLOCK => block(dom),
        SCHEDOP_SHUTDOWN => read_guest::<SchedShutdown>(arg).and_then(|s| shutdown(dom, s.reason)),
        SCHEDOP_POLL => poll(dom, arg),
        _ => Err(Errno::ENOSYS),
    }
    .into()
}

/// The old `sched_op` (#6): the same commands, with `shutdown`'s reason passed
/// by value.
pub fn do_sched_op_compat(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    if cmd == SCHEDOP_YIELD {
        return yield_now(ctx).into();
    }
    let dom = ctx.dom();
    match cmd {
        SCHEDOP_BLOCK => block(dom),
        SCHEDOP_SHUTDOWN => shutdown(dom, arg),
        _ => Err(Errno::ENOSYS),
    }
    .into()
}

/// `set_timer_op(timeout)`: arms the single-shot timer at absolute system time
/// `timeout` (ns; 0 cancels). A deadline already past fires on the way back;
/// as Xen, one more than 2^50 ns ahead (a wrapped jiffies count) fires in
/// 100 ms (`hv_core::sanitise::set_timer_op_deadline`).
pub fn do_set_timer_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let timeout = (u64::from(args[1]) << 32) | u64::from(args[0]);
    let now = crate::time::now_ns();
    ctx.dom().vcpu.singleshot = hv_core::sanitise::set_timer_op_deadline(now, timeout);
    Ok(0).into()
}
