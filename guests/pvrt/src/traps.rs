//! Trap setup on the guest side (XEN-PV-ABI.md §6): the virtual IDT and the
//! ring-1 stack for traps from user mode.

use xen_abi::errno::Errno;
use xen_abi::hypercall::{SET_TRAP_TABLE, STACK_SWITCH};
use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use xen_abi::traps::TrapInfo;

use crate::hypercall::{raw, result};

/// A trap-table entry for `vector`, raisable with `int n` from privilege
/// `dpl`, handled at `handler` in the kernel's code segment.
pub const fn entry(vector: u8, dpl: u8, handler: u32) -> TrapInfo {
    TrapInfo {
        vector,
        flags: dpl,
        cs: FLAT_KERNEL_CS,
        address: handler,
    }
}

/// Installs `table`, which must end with an all-zero entry.
pub fn set_trap_table(table: &[TrapInfo]) -> Result<u32, Errno> {
    if table.last().is_none_or(|t| t.address != 0) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: the table is read up to its terminator, which it has.
    result(unsafe { raw(SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]) })
}

/// Sets the ring-1 stack used for traps from ring 3.
pub fn stack_switch(esp: u32) -> Result<u32, Errno> {
    // SAFETY: no pointers.
    result(unsafe { raw(STACK_SWITCH, [u32::from(FLAT_KERNEL_SS), esp, 0, 0, 0]) })
}
