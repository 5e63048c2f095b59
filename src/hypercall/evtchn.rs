//! `event_channel_op` (#32) and its compat form (#16) (XEN-PV-ABI.md §8.1):
//! copy the argument struct in, run `hv_core::evtchn::dispatch` with the
//! caller's table and every other domain's (inter-domain binding, send and
//! close reach the peer), copy the OUT fields back.

use hv_core::evtchn::{COMPAT_OP_SIZE, EvtchnCall, dispatch};
use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_from_guest, copy_to_guest};
use crate::domain::events::{OtherDomains, SharedWords};

fn run(ctx: &mut Ctx, mut call: EvtchnCall, arg: u32) -> Result<i32, Errno> {
    let table = ctx.table();
    let mut dom = table.lend_current().expect("a hypercall has a caller");
    let mut words = SharedWords::new(dom.shared_va);
    let pirqs = dom.pirqs;
    let r = dispatch(
        dom.privileged,
        &mut dom.ports,
        &mut words,
        &mut OtherDomains { table, pirqs },
        &mut call,
    );
    table.put_back(dom);
    r?;
    if call.writes_back() {
        copy_to_guest(arg.wrapping_add(call.out_offset() as u32), call.arg())?;
    }
    Ok(0)
}

pub fn do_event_channel_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    let r = EvtchnCall::new(cmd).and_then(|mut call| {
        copy_from_guest(call.arg_mut(), arg)?;
        run(ctx, call, arg)
    });
    r.into()
}

pub fn do_event_channel_op_compat(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let arg = args[0];
    let mut op = [0u8; COMPAT_OP_SIZE];
    let r = copy_from_guest(&mut op, arg)
        .and_then(|()| EvtchnCall::from_compat(&op))
        .and_then(|call| run(ctx, call, arg));
    r.into()
}
