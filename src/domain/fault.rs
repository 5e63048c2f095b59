//! Traps taken while a guest ran. Until guests can register trap handlers
//! (`set_trap_table`), a fault Oxen does not resolve itself crashes the domain
//! with a report; the only fault Oxen resolves is a store to a read-only L1
//! under `writable_pagetables`.

use xen_abi::sched::SHUTDOWN_CRASH;
use xen_abi::traps::VMASST_TYPE_WRITABLE_PAGETABLES;

use super::CURRENT;
use crate::arch::x86::traps::{RegisterDump, TrapFrame, vector_name};

/// #PF error code bits.
const PF_PRESENT: u16 = 1 << 0;
const PF_WRITE: u16 = 1 << 1;
const PF_USER: u16 = 1 << 2;

/// Handles exception `frame.entry_vector` from a guest ring; `cr2` was read
/// on entry.
pub fn guest_trap(frame: &mut TrapFrame, cr2: u32) {
    let mut guard = CURRENT.lock();
    let dom = guard
        .as_mut()
        .expect("a guest trap always has a current domain");
    let vector = frame.entry_vector;
    let ptwr_candidate = vector == 14
        && dom.has_assist(VMASST_TYPE_WRITABLE_PAGETABLES)
        && frame.error_code & (PF_PRESENT | PF_WRITE | PF_USER) == (PF_PRESENT | PF_WRITE);
    if ptwr_candidate {
        match crate::mm::ptwr::emulate(frame, dom, cr2) {
            Ok(()) => {
                crate::hypercall::audit_if_asked(dom);
                return;
            }
            Err(e) => log::warn!(
                "d{}: page-table write at {:#010x} not emulated: {e}",
                dom.domid,
                cr2
            ),
        }
    }
    crate::printk!(
        "d{}: unhandled trap {} ({}) error code {:#06x}, cr2 {:#010x}, no trap handler: crashing the domain\n{}\n",
        dom.domid,
        vector,
        vector_name(vector),
        frame.error_code,
        cr2,
        RegisterDump {
            frame,
            esp: frame.esp
        }
    );
    super::shutdown(dom, SHUTDOWN_CRASH);
}
