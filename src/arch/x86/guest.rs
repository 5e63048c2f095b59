//! Running guest code: the per-CPU stack whose top holds the interrupted guest's
//! registers, and the jump into ring 1.
//!
//! Invariant: while a guest runs, TSS.esp0 is the top of `GUEST_STACK`, so every
//! trap or hypercall from ring 1 or 3 saves the guest's registers in the
//! `TrapFrame` at the very top of that stack (`guest_frame()`), where the
//! hypercall and trap handlers find and change them.

use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS};

use super::traps::TrapFrame;

const GUEST_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct GuestStack([u8; GUEST_STACK_SIZE]);
static mut GUEST_STACK: GuestStack = GuestStack([0; GUEST_STACK_SIZE]);

unsafe extern "C" {
    fn oxen_enter_guest(frame: *mut TrapFrame) -> !;
}

/// EFLAGS.IF.
pub const EFLAGS_IF: u32 = 1 << 9;
/// EFLAGS bit 1, always set.
const EFLAGS_MBS: u32 = 1 << 1;

/// The top of the stack Oxen runs on while serving a guest.
pub fn guest_stack_top() -> u32 {
    core::ptr::addr_of!(GUEST_STACK) as u32 + GUEST_STACK_SIZE as u32
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
    // SAFETY: `dst` is the top of GUEST_STACK, which nothing else uses while
    // Oxen runs on the boot stack (the caller); after the write we switch to
    // that stack for good and never return to the caller's frames.
    unsafe {
        dst.write(*frame);
        oxen_enter_guest(dst)
    }
}
