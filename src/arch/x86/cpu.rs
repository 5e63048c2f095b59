//! Thin wrappers over single instructions: port I/O, control registers, TLB,
//! TSC, interrupt flag, halting, and segment-limit probes.

use core::arch::asm;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, val: u8) {
    // SAFETY: Oxen runs at CPL 0 and only names ports of devices it owns
    // (serial, PIC, PIT, keyboard controller, QEMU's debug-exit); a port write
    // has no effect on Rust's memory model.
    unsafe { x86::io::outb(port, val) }
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    // SAFETY: as for `outb`; reads of these device ports have no memory effects.
    unsafe { x86::io::inb(port) }
}

/// Writes a word to an I/O port.
pub fn outw(port: u16, val: u16) {
    // SAFETY: as for `outb`; only called for ports a privileged domain may use.
    unsafe { x86::io::outw(port, val) }
}

/// Reads a word from an I/O port.
pub fn inw(port: u16) -> u16 {
    // SAFETY: as for `inb`.
    unsafe { x86::io::inw(port) }
}

/// Reads a dword from an I/O port.
pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb`.
    unsafe { x86::io::inl(port) }
}

/// CPUID `leaf`/`subleaf`: (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// What CPUID says of the CPU's physical-address width
/// (`hv_core::sanitise::phys_addr_bits`).
pub fn phys_addr_width() -> hv_core::sanitise::PhysAddrWidth {
    const CPUID1_EDX_PAE: u32 = 1 << 6;
    const CPUID1_EDX_PSE36: u32 = 1 << 17;
    let (_, _, _, edx) = cpuid(1, 0);
    let (max_ext, ..) = cpuid(0x8000_0000, 0);
    let leaf = if (0x8000_0008..0x8001_0000).contains(&max_ext) {
        cpuid(0x8000_0008, 0).0
    } else {
        0
    };
    hv_core::sanitise::phys_addr_bits(
        max_ext,
        leaf,
        edx & CPUID1_EDX_PAE != 0,
        edx & CPUID1_EDX_PSE36 != 0,
    )
}

/// Writes a dword to an I/O port.
pub fn outl(port: u16, val: u32) {
    // SAFETY: as for `outb`.
    unsafe { x86::io::outl(port, val) }
}

/// CR0.
pub fn read_cr0() -> u32 {
    let v: u32;
    // SAFETY: reading CR0 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// CR2: the linear address of the last page fault.
pub fn read_cr2() -> u32 {
    let v: u32;
    // SAFETY: reading CR2 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// CR3: the physical address of the current PAE L3 (page-directory-pointer table).
pub fn read_cr3() -> u32 {
    let v: u32;
    // SAFETY: reading CR3 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// CR4.
pub fn read_cr4() -> u32 {
    let v: u32;
    // SAFETY: reading CR4 at CPL 0 has no side effect.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Loads CR3, flushing non-global TLB entries.
///
/// # Safety
/// `l3_maddr` must be the 32-byte aligned machine address (below 4 GiB) of a
/// valid PAE L3 whose mappings keep Oxen's code, data and stacks where they are.
pub unsafe fn write_cr3(l3_maddr: u32) {
    // SAFETY: the caller guarantees the new tables map Oxen identically.
    unsafe { asm!("mov cr3, {}", in(reg) l3_maddr, options(nostack, preserves_flags)) };
}

/// Writes CR4.
///
/// # Safety
/// `v` must keep every feature Oxen relies on (PAE, and PGE if it was on).
pub unsafe fn write_cr4(v: u32) {
    // SAFETY: the caller keeps the paging-relevant bits.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Invalidates the TLB entry of one linear address.
pub fn invlpg(va: u32) {
    // SAFETY: invalidating a TLB entry is always safe; at worst it costs a walk.
    unsafe { asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Flushes all non-global TLB entries by reloading CR3.
pub fn flush_tlb_local() {
    let cr3 = read_cr3();
    // SAFETY: reloading the current CR3 keeps every mapping as it is.
    unsafe { write_cr3(cr3) };
}

/// Sets or clears CR0.TS (so the next x87/SSE instruction raises #NM).
pub fn set_task_switched(on: bool) {
    const CR0_TS: u32 = 1 << 3;
    let cr0 = read_cr0();
    let new = if on { cr0 | CR0_TS } else { cr0 & !CR0_TS };
    if new != cr0 {
        // SAFETY: only the TS bit changes; Oxen itself never uses the FPU.
        unsafe { asm!("mov cr0, {}", in(reg) new, options(nostack, preserves_flags)) };
    }
}

/// Writes back and invalidates the caches.
pub fn wbinvd() {
    // SAFETY: WBINVD at CPL 0 only flushes caches.
    unsafe { asm!("wbinvd", options(nostack, preserves_flags)) };
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is unprivileged and side-effect free.
    unsafe { x86::time::rdtsc() }
}

/// Enables maskable interrupts.
pub fn enable_interrupts() {
    // SAFETY: the IDT is loaded before anyone calls this (see `main`).
    // Not `nomem`: memory accesses must not move across the interrupt flag.
    unsafe { asm!("sti", options(nostack)) };
}

/// Disables maskable interrupts; returns whether they were enabled.
pub fn disable_interrupts() -> bool {
    let flags: u32;
    // SAFETY: reading EFLAGS and clearing IF has no memory effects.
    // Not `nomem`: memory accesses must not move across the interrupt flag.
    unsafe { asm!("pushfd", "pop {}", "cli", out(reg) flags) };
    flags & (1 << 9) != 0
}

/// Re-enables interrupts if `was_enabled`.
pub fn restore_interrupts(was_enabled: bool) {
    if was_enabled {
        enable_interrupts();
    }
}

/// Waits for the next interrupt.
pub fn halt() {
    // SAFETY: HLT at CPL 0 only waits for an interrupt.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// Enables interrupts and halts until one arrives, with no window between
/// the two (STI's one-instruction shadow covers HLT). Interrupts are on
/// afterwards.
pub fn enable_interrupts_and_halt() {
    // SAFETY: as for `enable_interrupts` and `halt`.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

/// Stops this CPU for good: interrupts off, halt forever.
pub fn halt_forever() -> ! {
    disable_interrupts();
    loop {
        halt();
    }
}

/// `LSL`: the byte-granular limit of a segment selector, if the selector is
/// valid and visible at the current privilege level.
pub fn segment_limit(selector: u16) -> Option<u32> {
    let limit: u32;
    let ok: u8;
    // SAFETY: LSL only reads the descriptor table and sets ZF.
    unsafe {
        asm!("lsl {lim}, {sel:e}", "setz {ok}",
             sel = in(reg) u32::from(selector), lim = out(reg) limit, ok = out(reg_byte) ok,
             options(nostack))
    };
    (ok != 0).then_some(limit)
}

/// `LAR`: the access-rights bytes (bits 8..24) of a segment selector, if valid.
pub fn segment_access_rights(selector: u16) -> Option<u32> {
    let ar: u32;
    let ok: u8;
    // SAFETY: LAR only reads the descriptor table and sets ZF.
    unsafe {
        asm!("lar {ar}, {sel:e}", "setz {ok}",
             sel = in(reg) u32::from(selector), ar = out(reg) ar, ok = out(reg_byte) ok,
             options(nostack))
    };
    (ok != 0).then_some(ar)
}
