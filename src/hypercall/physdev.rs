//! `physdev_op(cmd, arg)` (#33, XEN-PV-ABI.md §15.6) and its compat form
//! `physdev_op_compat(op)` (#19: `{cmd, union}`, the union handled as the
//! native argument): the virtual IOPL and the I/O bitmap that decide which
//! emulated `in`/`out` a domain may do (only a domain with I/O privilege
//! reaches real ports), and the physical IRQs a domain gets as pirq event
//! channels: `map_pirq`/`unmap_pirq` (GSIs only; pirq N = line N),
//! `irq_status_query`, `eoi`, `setup_gsi`. The rules are `hv_core::pirq`;
//! the lines are `crate::domain::pirq`. `get_free_pirq`, `pirq_eoi_gmfn`,
//! the IO-APIC and MSI calls are `-ENOSYS` (no IO-APIC, no MSI; with
//! identity-mapped GSIs there is no free pirq to hand out).

use hv_core::hypercall::Outcome;
use xen_abi::errno::Errno;
use xen_abi::physdev::{
    PHYSDEVOP_EOI, PHYSDEVOP_IRQ_STATUS_QUERY, PHYSDEVOP_MAP_PIRQ, PHYSDEVOP_SET_IOBITMAP,
    PHYSDEVOP_SET_IOPL, PHYSDEVOP_SETUP_GSI, PHYSDEVOP_UNMAP_PIRQ, PhysdevEoi,
    PhysdevIrqStatusQuery, PhysdevMapPirq, PhysdevSetIobitmap, PhysdevSetIopl, PhysdevSetupGsi,
    PhysdevUnmapPirq,
};

use super::Ctx;
use crate::arch::x86::uaccess::{read_guest, write_guest};
use crate::domain::pirq;

/// Ports an I/O bitmap can describe.
const MAX_PORTS: u32 = 65536;

fn op(ctx: &mut Ctx, cmd: u32, arg: u32) -> Result<i32, Errno> {
    match cmd {
        PHYSDEVOP_SET_IOPL => {
            let s = read_guest::<PhysdevSetIopl>(arg)?;
            if s.iopl > 3 {
                return Err(Errno::EINVAL);
            }
            ctx.dom().vcpu.iopl = s.iopl;
            Ok(0)
        }
        PHYSDEVOP_SET_IOBITMAP => {
            let s = read_guest::<PhysdevSetIobitmap>(arg)?;
            if s.nr_ports > MAX_PORTS {
                return Err(Errno::EINVAL);
            }
            ctx.dom().vcpu.iobitmap = (s.bitmap, s.nr_ports);
            Ok(0)
        }
        PHYSDEVOP_IRQ_STATUS_QUERY => {
            let mut q = read_guest::<PhysdevIrqStatusQuery>(arg)?;
            q.flags = pirq::lines().status(q.irq)?;
            write_guest(arg, &q)?;
            Ok(0)
        }
        PHYSDEVOP_EOI => {
            let e = read_guest::<PhysdevEoi>(arg)?;
            let dom = ctx.dom();
            let mut l = pirq::lines();
            let action = l.eoi(&dom.pirqs, dom.domid, e.irq)?;
            pirq::apply(&l, action);
            Ok(0)
        }
        PHYSDEVOP_MAP_PIRQ => {
            let mut m = read_guest::<PhysdevMapPirq>(arg)?;
            let privileged = ctx.dom().privileged;
            let target = ctx.target(m.domid)?;
            let l = pirq::lines();
            m.pirq = target
                .pirqs
                .map(privileged, &l, m.ty, m.index, m.pirq)?
                .into();
            write_guest(arg, &m)?;
            Ok(0)
        }
        PHYSDEVOP_UNMAP_PIRQ => {
            let u = read_guest::<PhysdevUnmapPirq>(arg)?;
            let privileged = ctx.dom().privileged;
            let target = ctx.target(u.domid)?;
            let mut l = pirq::lines();
            let action = target
                .pirqs
                .unmap(privileged, &mut l, target.domid, u.pirq)?;
            pirq::apply(&l, action);
            Ok(0)
        }
        PHYSDEVOP_SETUP_GSI => {
            let g = read_guest::<PhysdevSetupGsi>(arg)?;
            hv_core::pirq::setup_gsi(ctx.dom().privileged, g.gsi)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn do_physdev_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, arg, ..] = args;
    op(ctx, cmd, arg).into()
}

/// `physdev_op_compat(op)`: `op` is `struct physdev_op {u32 cmd; union}`;
/// the union is the native call's argument, in place.
pub fn do_physdev_op_compat(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let arg = args[0];
    read_guest::<u32>(arg)
        .and_then(|cmd| op(ctx, cmd, arg.wrapping_add(4)))
        .into()
}
