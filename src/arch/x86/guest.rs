//! Running guest code: the per-CPU stack whose top holds the interrupted guest's
//! registers, and the jump into ring 1.
//!
//! Invariant: while a guest runs, TSS.esp0 is the top of the guest stack, so
//! every trap or hypercall from ring 1 or 3 saves the guest's registers in the
//! `TrapFrame` at the very top of that stack (`guest_frame()`), where the
//! hypercall and trap handlers find and change them.
//!
//! The guest stack lives in its own window with an unmapped guard page below
//! it: an overflow faults, and the #DF task (own stack, own TSS) reports it
//! instead of letting it overwrite Oxen's data.

use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS};

use super::traps::TrapFrame;

use crate::arch::x86::paging::{PAGE_PRESENT, PAGE_RW};
use crate::mm::layout::{GUEST_STACK_GUARD, GUEST_STACK_PAGES};

/// The stack's first mapped page (the page below it is the guard).
const GUEST_STACK_BOTTOM: u32 = GUEST_STACK_GUARD + 4096;

unsafe extern "C" {
    fn oxen_enter_guest(frame: *mut TrapFrame) -> !;
}

/// EFLAGS.IF.
pub const EFLAGS_IF: u32 = 1 << 9;
/// EFLAGS bit 1, always set.
const EFLAGS_MBS: u32 = 1 << 1;

/// Maps the guest stack (bring-up only), leaving its guard page unmapped.
pub fn init_stack() {
    for i in 0..GUEST_STACK_PAGES {
        let mfn =
            crate::mm::frame_table::alloc_xen_frame().expect("out of memory for the guest stack");
        crate::mm::mapcache::clear_frame(mfn);
        crate::mm::hvmap::map_page(GUEST_STACK_BOTTOM + i * 4096, mfn, PAGE_PRESENT | PAGE_RW);
    }
}

/// The top of the stack Oxen runs on while serving a guest.
pub fn guest_stack_top() -> u32 {
    GUEST_STACK_BOTTOM + GUEST_STACK_PAGES * 4096
}

/// Where the CPU saves the guest's registers on a trap from ring 1 or 3.
pub fn guest_frame() -> *mut TrapFrame {
    (guest_stack_top() as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
}

/// The initial ring-1 register state of a PV kernel (XEN-PV-ABI.md §4.2):
/// flat kernel selectors, `eip` = entry, `esp` = top of the boot stack,
/// `esi` = start_info, interrupts on, everything else zero.
pub fn initial_frame(entry: u32, stack_top: u32, start_info_va: u32) -> TrapFrame {
    let ds = u32::from(FLAT_KERNEL_DS);
    TrapFrame {
        gs: ds,
        fs: ds,
        es: ds,
        ds,
        ebx: 0,
        ecx: 0,
        edx: 0,
        esi: start_info_va,
        edi: 0,
        ebp: 0,
        eax: 0,
        error_code: 0,
        entry_vector: 0,
        eip: entry,
        cs: u32::from(FLAT_KERNEL_CS),
        eflags: EFLAGS_IF | EFLAGS_MBS,
        esp: stack_top,
        ss: ds,
    }
}

/// Starts (or resumes) the guest context `frame` on this CPU: the frame is
/// copied to the top of the guest stack, TSS.esp0 points there, and Oxen
/// returns to ring 1 through the common trap exit. The caller must already
/// have loaded the guest's CR3.
pub fn enter(frame: &TrapFrame) -> ! {
    assert!(frame.cs & 3 != 0, "refusing to 'enter' a ring-0 context");
    let dst = guest_frame();
    super::gdt::set_ring0_stack(guest_stack_top());
    // SAFETY: `dst` is the top of the guest stack (mapped by `init_stack`),
    // which nothing else uses while Oxen runs on the boot stack (the caller);
    // after the write we switch to that stack for good and never return to
    // the caller's frames.
    unsafe {
        dst.write(*frame);
        oxen_enter_guest(dst)
    }
}
