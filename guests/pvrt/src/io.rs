//! Port I/O for a guest with I/O privilege (dom0): the virtual IOPL
//! (`PHYSDEVOP_set_iopl`, XEN-PV-ABI.md §12) and the IN/OUT instructions,
//! which Oxen emulates for ring 1 once the virtual IOPL allows them.
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
