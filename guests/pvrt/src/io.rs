//! Port I/O and physical interrupts for a guest with I/O privilege (dom0):
//! the virtual IOPL
//! (`PHYSDEVOP_set_iopl`, XEN-PV-ABI.md §12) and the IN/OUT instructions,
//! which Oxen emulates for ring 1 once the virtual IOPL allows them, and
//! pirqs bound to event channels with their end-of-interrupt.
//!
//! Invariant: callers raise the IOPL first ([`set_iopl`]); without it, IN and
//! OUT raise #GP in the guest.

use xen_abi::errno::Errno;
use xen_abi::hypercall::PHYSDEV_OP;
use xen_abi::physdev::{PHYSDEVOP_SET_IOPL, PhysdevSetIopl};

use crate::hypercall::{raw, result};

/// `PHYSDEVOP_set_iopl`: the vcpu's virtual IOPL (1 lets the ring-1 kernel
/// use IN/OUT on ports its domain may access).
pub fn set_iopl(iopl: u32) -> Result<(), Errno> {
    let arg = PhysdevSetIopl { iopl };
    // SAFETY: `arg` is a live physdev_set_iopl the hypervisor only reads.
    result(unsafe {
        raw(
            PHYSDEV_OP,
            [
                PHYSDEVOP_SET_IOPL,
                &arg as *const PhysdevSetIopl as u32,
                0,
                0,
                0,
            ],
        )
    })
    .map(|_| ())
}

/// Reads a dword from `port`.
pub fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: port input touches no memory; Oxen refuses ports the domain
    // may not access (the guest then takes #GP, its own problem).
    unsafe { core::arch::asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack)) };
    v
}

/// Writes a dword to `port`.
pub fn outl(port: u16, v: u32) {
    // SAFETY: as for `inl`; the caller knows what the device does with it.
    unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack)) };
}

/// `EVTCHNOP_bind_pirq` (shareable): the port physical IRQ `pirq` raises.
pub fn bind_pirq(pirq: u32) -> Result<u32, Errno> {
    let mut arg = xen_abi::evtchn::EvtchnBindPirq {
        pirq,
        flags: xen_abi::evtchn::BIND_PIRQ__WILL_SHARE,
        port: 0,
    };
    crate::events::op(xen_abi::evtchn::EVTCHNOP_BIND_PIRQ, &mut arg)?;
    Ok(arg.port)
}

/// `PHYSDEVOP_eoi`: the interrupt of `pirq` is handled (Oxen unmasks the
/// line once every binder has said so).
pub fn eoi(pirq: u32) -> Result<(), Errno> {
    let arg = xen_abi::physdev::PhysdevEoi { irq: pirq };
    // SAFETY: `arg` is a live physdev_eoi the hypervisor only reads.
    result(unsafe {
        raw(
            PHYSDEV_OP,
            [
                xen_abi::physdev::PHYSDEVOP_EOI,
                &arg as *const xen_abi::physdev::PhysdevEoi as u32,
                0,
                0,
                0,
            ],
        )
    })
    .map(|_| ())
}
