//! The IDT: interrupt gates for the 32 exceptions and the 16 legacy PIC IRQs
//! (vectors 0x20..0x30), a task gate for #DF, the hypercall gate (0x82,
//! DPL 1), and the running vcpu's direct `int $0x80` gate when its trap table
//! allows one. The other gates are DPL 0, so a guest `int $n` of them raises
//! #GP.

use core::sync::atomic::{AtomicU64, Ordering};

use xen_abi::selectors::FLAT_RING0_CS;

use super::DescriptorTablePointer;
use super::gdt::DF_TSS_SELECTOR;

/// Vectors with a stub in traps.S.
pub const NR_STUBS: usize = 48;
/// First vector of the remapped master PIC.
pub const IRQ_BASE: u8 = 0x20;
/// The double-fault vector.
pub const VECTOR_DF: usize = 8;

static IDT: [AtomicU64; 256] = [const { AtomicU64::new(0) }; 256];

/// The hypercall vector (XEN-PV-ABI.md §1.1).
pub const HYPERCALL_VECTOR: usize = xen_abi::hypercall::HYPERCALL_VECTOR as usize;

unsafe extern "C" {
    static oxen_trap_stubs: [u32; NR_STUBS];
    fn oxen_hypercall_entry();
}

/// A 32-bit interrupt gate (IF cleared on entry) to `handler` with privilege `dpl`.
const fn interrupt_gate(handler: u32, dpl: u64) -> u64 {
    let h = handler as u64;
    (h & 0xFFFF) | ((FLAT_RING0_CS as u64) << 16) | ((0x8E | (dpl << 5)) << 40) | ((h >> 16) << 48)
}

/// A task gate to the TSS `selector`.
const fn task_gate(selector: u16) -> u64 {
    ((selector as u64) << 16) | (0x85u64 << 40)
}

/// Installs a gate for `vector` with privilege `dpl` to `handler`.
pub fn set_gate(vector: usize, handler: u32, dpl: u64) {
    IDT[vector].store(interrupt_gate(handler, dpl), Ordering::Relaxed);
}

/// The vector of the system-call gate of 32-bit guests (§6.1).
pub const INT80_VECTOR: usize = 0x80;

/// Installs the running vcpu's direct `int $0x80` gate (a trap gate straight
/// into its ring-1 handler, built by `VirtualIdt::direct_int80_gate`), or
/// removes it (`None`): an empty DPL-0 slot, so `int $0x80` raises #GP and
/// goes through Oxen's software-interrupt path.
pub fn set_direct_int80(gate: Option<u64>) {
    IDT[INT80_VECTOR].store(gate.unwrap_or(0), Ordering::Relaxed);
}

/// Fills the IDT from the stub table and loads IDTR.
pub fn init() {
    // SAFETY: `oxen_trap_stubs` is a read-only table of NR_STUBS addresses
    // emitted by traps.S, never written after link time.
    let stubs = unsafe { &oxen_trap_stubs };
    for (vector, &stub) in stubs.iter().enumerate() {
        // #BP and #OF may be raised by `int3`/`into` from any ring (their
        // handlers are the guest's); every other gate is DPL 0, so a guest's
        // `int n` arrives as #GP and is re-delivered if its trap table allows.
        let dpl = if vector == 3 || vector == 4 { 3 } else { 0 };
        set_gate(vector, stub, dpl);
    }
    IDT[VECTOR_DF].store(task_gate(DF_TSS_SELECTOR), Ordering::Relaxed);
    // DPL 1: the guest kernel may `int $0x82`; from ring 3 it raises #GP.
    set_gate(
        HYPERCALL_VECTOR,
        oxen_hypercall_entry as *const () as u32,
        1,
    );
    let ptr = DescriptorTablePointer {
        limit: (256 * 8 - 1) as u16,
        base: IDT.as_ptr() as u32,
    };
    // SAFETY: the IDT is a static that lives forever; every gate present in it
    // points at a stub in traps.S or at the #DF task.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack)) };
}
