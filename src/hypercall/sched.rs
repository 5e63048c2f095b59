//! `sched_op` (XEN-PV-ABI.md §15.1). Until the scheduler exists (one domain,
//! one vcpu), `yield` returns at once and `shutdown` ends the domain; the other
//! sub-ops answer `-ENOSYS`.

use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::sched::{SCHEDOP_SHUTDOWN, SCHEDOP_YIELD, SchedShutdown, shutdown_reason_name};

use super::Ctx;
use crate::arch::x86::uaccess::read_guest;

pub fn do_sched_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    match cmd {
        SCHEDOP_YIELD => Ok(0).into(),
        SCHEDOP_SHUTDOWN => match read_guest::<SchedShutdown>(arg) {
            Ok(s) if shutdown_reason_name(s.reason).is_some() => {
                crate::domain::shutdown(ctx.dom(), s.reason);
                Ok(0).into()
            }
            Ok(_) => Err(Errno::EINVAL).into(),
            Err(e) => Err(e).into(),
        },
        _ => Err(Errno::ENOSYS).into(),
    }
}
