//! `vcpu_op(cmd, vcpuid, arg)` (#24, XEN-PV-ABI.md §15.3) for the one vcpu a
//! domain has: whether it is up, its runstate (kept by the scheduler) and
//! where the guest wants it copied, and its two timers. Bringing
//! more vcpus up (`initialise`, `up`, `down`) waits for SMP guests: -ENOSYS.

use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::layout::XEN_LEGACY_MAX_VCPUS;
use xen_abi::vcpu::*;

use super::Ctx;
use crate::arch::x86::uaccess::{read_guest, write_guest};

pub fn do_vcpu_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, vcpuid, arg, ..] = args;
    if vcpuid as usize >= XEN_LEGACY_MAX_VCPUS {
        return Err(Errno::EINVAL).into();
    }
    if vcpuid != 0 {
        return Err(Errno::ENOENT).into();
    }
    let now = crate::time::now_ns();
    let vcpu = &mut ctx.dom().vcpu;
    let r = match cmd {
        VCPUOP_IS_UP => Ok(1),
        // As of now: the current stretch (running) counted.
        VCPUOP_GET_RUNSTATE_INFO => write_guest(arg, &vcpu.runstate.info(now)).map(|()| 0),
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => read_guest::<VcpuRegisterRunstateMemoryArea>(arg)
            .and_then(|a| {
                // As Xen: the record goes there at once and again each time
                // the vcpu comes on the CPU (`sched::update_runstate_area`);
                // the guest adds the stretch since `state_entry_time`.
                let addr = a.addr;
                let va = u32::try_from(addr).map_err(|_| Errno::EFAULT)?;
                if va != 0 {
                    write_guest(va, &vcpu.runstate.record())?;
                }
                vcpu.runstate_area = va;
                Ok(0)
            }),
        VCPUOP_SET_PERIODIC_TIMER => read_guest::<VcpuSetPeriodicTimer>(arg).and_then(|t| {
            // 1 ms to Xen's STIME_DELTA_MAX (-EINVAL otherwise).
            let period = hv_core::sanitise::periodic_period(t.period_ns)?;
            vcpu.periodic_ns = period;
            vcpu.next_periodic = hv_core::sanitise::next_deadline(now, period);
            Ok(0)
        }),
        VCPUOP_STOP_PERIODIC_TIMER => {
            vcpu.periodic_ns = 0;
            Ok(0)
        }
        VCPUOP_SET_SINGLESHOT_TIMER => read_guest::<VcpuSetSingleshotTimer>(arg).and_then(|t| {
            let future = t.flags & VCPU_SSHOTTMR_FUTURE != 0;
            let deadline = hv_core::sanitise::singleshot_deadline(now, t.timeout_abs_ns, future)?;
            vcpu.singleshot = Some(deadline);
            Ok(0)
        }),
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            vcpu.singleshot = None;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}
