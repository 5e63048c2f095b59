//! `physdev_op(cmd, arg)` (#33, XEN-PV-ABI.md §15.6): the virtual IOPL and the
//! I/O bitmap that decide which emulated `in`/`out` a domain may do (only a
//! domain with I/O privilege reaches real ports). Interrupt routing (PIRQs)
//! comes with dom0's device drivers: -ENOSYS until then.

use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::physdev::{
    PHYSDEVOP_SET_IOBITMAP, PHYSDEVOP_SET_IOPL, PhysdevSetIobitmap, PhysdevSetIopl,
};

use super::Ctx;
use crate::arch::x86::uaccess::read_guest;

/// Ports an I/O bitmap can describe.
const MAX_PORTS: u32 = 65536;

pub fn do_physdev_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    let vcpu = &mut ctx.dom().vcpu;
    let r = match cmd {
        PHYSDEVOP_SET_IOPL => read_guest::<PhysdevSetIopl>(arg).and_then(|s| {
            if s.iopl > 3 {
                return Err(Errno::EINVAL);
            }
            vcpu.iopl = s.iopl;
            Ok(0)
        }),
        PHYSDEVOP_SET_IOBITMAP => read_guest::<PhysdevSetIobitmap>(arg).and_then(|s| {
            if s.nr_ports > MAX_PORTS {
                return Err(Errno::EINVAL);
            }
            vcpu.iobitmap = (s.bitmap, s.nr_ports);
            Ok(0)
        }),
        _ => Err(Errno::ENOSYS),
    };
    r.into()
}
