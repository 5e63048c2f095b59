//! Oxen's own (idle) PAE page tables.
//!
//! Invariants:
//! - `IDLE_PG_L3` slot 3 points at `IDLE_PG_L2_HIGH`, whose entries 428..511
//!   (`[HYPERVISOR_VIRT_START, 4 GiB)`) are Oxen's; slots 0..2 are empty once
//!   `drop_identity_map` has run (the low L2 only serves the 32-bit entry).
//! - The first 12 MiB of machine memory are mapped at `DIRECT_MAP_VIRT` with
//!   2 MiB pages; Oxen's image lives there. The M2P's two windows are 2 MiB
//!   pages too (`mm::m2p`); every other present high slot holds an L1.
//! - After bring-up, Oxen never changes an entry of its high L2: dynamic
//!   mappings (map cache, heap, frame table) change only L1 entries, so a copy of
//!   slots 428..511 placed in a guest's L2 stays valid forever.
//!
//! Entries are 64-bit and written with one atomic store, so the CPU never sees a
//! half-written entry.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::mm::layout::{DIRECT_MAP_SIZE, DIRECT_MAP_VIRT};

pub use xen_abi::mm::{PAGE_PRESENT, PAGE_PSE, PAGE_RW};

/// Mask of the frame address bits in a PAE entry as the CPU reads it (52-bit
/// physical addresses; guests are held to 44 bits by the PV MMU rules).
pub const PAGE_ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// One page-table page: 512 64-bit entries.
#[repr(C, align(4096))]
pub struct PageTable(pub [AtomicU64; 512]);

/// The PAE L3 (page-directory-pointer table): 4 entries, 32-byte aligned.
#[repr(C, align(32))]
pub struct PaeL3(pub [AtomicU64; 4]);

impl PaeL3 {
    /// An empty table (no entry present).
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 4])
    }
}

impl PageTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 512])
    }
}

/// The idle L3; CR3 of every CPU while no guest runs.
#[unsafe(no_mangle)]
pub static IDLE_PG_L3: PaeL3 = PaeL3([const { AtomicU64::new(0) }; 4]);
/// The L2 of `[0, 1 GiB)`, used only for the identity map during entry.
#[unsafe(no_mangle)]
pub static IDLE_PG_L2_LOW: PageTable = PageTable::new();
/// The L2 of `[3 GiB, 4 GiB)`; entries 428..511 are the hypervisor's.
#[unsafe(no_mangle)]
pub static IDLE_PG_L2_HIGH: PageTable = PageTable::new();

/// The machine address of a static of Oxen's image (which lives in the direct map).
pub fn image_maddr<T>(item: &T) -> u64 {
    directmap_maddr(item as *const T as u32)
}

/// The machine address behind a direct-map virtual address.
pub fn directmap_maddr(va: u32) -> u64 {
    debug_assert!((DIRECT_MAP_VIRT..DIRECT_MAP_VIRT + DIRECT_MAP_SIZE).contains(&va));
    u64::from(va - DIRECT_MAP_VIRT)
}

/// The L2 slot (in the high L2) that maps `va`, for `va >= 3 GiB`.
pub const fn high_l2_slot(va: u32) -> usize {
    ((va - 0xC000_0000) >> 21) as usize
}

/// Removes the entry code's identity mapping of the low 12 MiB.
pub fn drop_identity_map() {
    IDLE_PG_L3.0[0].store(0, Ordering::SeqCst);
    // PAE L3 entries are cached by the CPU at CR3 load: reload it.
    let l3 = image_maddr(&IDLE_PG_L3) as u32;
    // SAFETY: the idle L3 still maps all of Oxen through slot 3; only the
    // identity map (unused since the jump high) goes away.
    unsafe { super::cpu::write_cr3(l3) };
}

/// Points high-L2 slot `slot` at the L1 page table at `l1_maddr`. Only during
/// bring-up (see the module invariants).
pub fn install_high_l1(slot: usize, l1_maddr: u64) {
    assert!((xen_abi::layout::FIRST_XEN_L2_SLOT..512).contains(&slot));
    assert!(
        !L2_FROZEN.load(Ordering::Relaxed),
        "Oxen's L2 changed after a guest copied it"
    );
    let old = IDLE_PG_L2_HIGH.0[slot].swap(l1_maddr | PAGE_PRESENT | PAGE_RW, Ordering::SeqCst);
    assert_eq!(old, 0, "high L2 slot {slot} already in use");
}

/// Makes high-L2 slot `slot` a 2 MiB superpage of the machine memory at
/// `maddr` (2 MiB aligned) with `flags` (`PAGE_PSE` is added). Only during
/// bring-up (see the module invariants).
pub fn install_high_superpage(slot: usize, maddr: u64, flags: u64) {
    assert!((xen_abi::layout::FIRST_XEN_L2_SLOT..512).contains(&slot));
    assert_eq!(
        maddr % (2 << 20),
        0,
        "superpage at {maddr:#x} not 2 MiB aligned"
    );
    assert!(
        !L2_FROZEN.load(Ordering::Relaxed),
        "Oxen's L2 changed after a guest copied it"
    );
    let old = IDLE_PG_L2_HIGH.0[slot].swap(maddr | flags | PAGE_PSE, Ordering::SeqCst);
    assert_eq!(old, 0, "high L2 slot {slot} already in use");
}

/// Whether high-L2 slot `slot` has an L1 (or a superpage).
pub fn high_l2_present(slot: usize) -> bool {
    IDLE_PG_L2_HIGH.0[slot].load(Ordering::Relaxed) & PAGE_PRESENT != 0
}

/// The machine address of the L1 behind high-L2 slot `slot`, if any.
pub fn high_l1_maddr(slot: usize) -> Option<u64> {
    let e = IDLE_PG_L2_HIGH.0[slot].load(Ordering::Relaxed);
    (e & PAGE_PRESENT != 0 && e & PAGE_PSE == 0).then_some(e & PAGE_ADDR_MASK)
}

/// Oxen's entry `index` (428..512) of the high L2, which every guest's slot-3
/// L2 carries too. Reading one freezes Oxen's L2 (see the module invariants).
pub fn xen_l2_entry(index: usize) -> u64 {
    assert!((xen_abi::layout::FIRST_XEN_L2_SLOT..512).contains(&index));
    L2_FROZEN.store(true, Ordering::Relaxed);
    IDLE_PG_L2_HIGH.0[index].load(Ordering::Relaxed)
}

/// Set once a guest L2 has copied Oxen's slots: no L1 may be added after that.
static L2_FROZEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
