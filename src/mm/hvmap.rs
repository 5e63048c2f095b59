//! Backing Oxen's own virtual windows (heap, frame table) with fresh frames.
//!
//! L1 tables are created here only during bring-up (the idle-L2 invariant in
//! `arch::x86::paging`); the PTEs are written through the map cache.

use core::sync::atomic::{AtomicU64, Ordering};

use hv_core::addr::{Maddr, Mfn, PAGE_SIZE};

use super::{frame_table, mapcache};
use crate::arch::x86::paging::{self, PAGE_PRESENT, PAGE_RW};

/// Makes `va` (page aligned, in Oxen's area) map machine frame `mfn` with
/// `flags`, creating the L1 if the slot has none (bring-up only, see the idle-L2
/// invariant). Returns whether an L1 had to be created.
pub fn map_page(va: u32, mfn: Mfn, flags: u64) -> bool {
    assert_eq!(va % PAGE_SIZE as u32, 0);
    let slot = paging::high_l2_slot(va);
    let (l1, created) = match paging::high_l1_maddr(slot) {
        Some(l1) => (Maddr(l1).mfn(), false),
        None => {
            assert!(
                !paging::high_l2_present(slot),
                "superpage in the way at {va:#x}"
            );
            let l1 = frame_table::alloc_xen_frame().expect("out of memory for Oxen's page tables");
            mapcache::clear_frame(l1);
            paging::install_high_l1(slot, l1.maddr().0);
            (l1, true)
        }
    };
    let l1_map = mapcache::map_frame(l1);
    let index = ((va >> 12) & 511) as usize;
    // SAFETY: the mapping is the whole L1 page and `index` < 512; the entry is
    // written with one atomic 64-bit store so the walker never sees half of it.
    let entry = unsafe { &*(l1_map.as_mut_ptr() as *const AtomicU64).add(index) };
    let old = entry.swap(mfn.maddr().0 | flags, Ordering::SeqCst);
    assert_eq!(old, 0, "{va:#x} mapped twice");
    created
}

/// Maps `pages` fresh zeroed frames at `va`, writable. Returns the number of
/// frames used, page tables included.
pub fn populate(va: u32, pages: u32) -> u32 {
    let mut used = 0;
    for i in 0..pages {
        let frame = frame_table::alloc_xen_frame().expect("out of memory for Oxen's own mappings");
        mapcache::clear_frame(frame);
        used += 1 + u32::from(map_page(
            va + i * PAGE_SIZE as u32,
            frame,
            PAGE_PRESENT | PAGE_RW,
        ));
    }
    used
}

/// Removes the mapping of `va` made by [`map_page`] (the L1 stays) and
/// flushes it from the TLB.
pub fn unmap_page(va: u32) {
    assert_eq!(va % PAGE_SIZE as u32, 0);
    let slot = paging::high_l2_slot(va);
    let l1 = paging::high_l1_maddr(slot).expect("unmapping a page Oxen never mapped");
    let l1_map = mapcache::map_frame(Maddr(l1).mfn());
    let index = ((va >> 12) & 511) as usize;
    // SAFETY: as in `map_page`: one atomic store to an entry of the L1 page.
    let entry = unsafe { &*(l1_map.as_mut_ptr() as *const AtomicU64).add(index) };
    entry.store(0, Ordering::SeqCst);
    crate::arch::x86::cpu::invlpg(va);
}
