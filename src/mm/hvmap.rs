//! Backing Oxen's own virtual windows (heap, frame table) with fresh frames.
//!
//! L1 tables are created here only during bring-up (the idle-L2 invariant in
//! `arch::x86::paging`); the PTEs are written through the map cache.

use core::sync::atomic::{AtomicU64, Ordering};

use hv_core::addr::{Maddr, Mfn, PAGE_SIZE};

use super::{frame_table, mapcache};
use crate::arch::x86::paging::{self, PAGE_PRESENT, PAGE_RW};

/// The L1 behind high-L2 slot `slot`, created (zeroed) if the slot has none
/// (bring-up only, see the idle-L2 invariant). Returns it and whether it was
/// created.
fn l1_for_slot(slot: usize, va: u32) -> (Mfn, bool) {
    match paging::high_l1_maddr(slot) {
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
    }
}

/// Entry `index` of the L1 mapped at `l1_map`.
fn l1_entry(l1_map: &mapcache::Mapping, index: usize) -> &AtomicU64 {
    assert!(index < 512);
    // SAFETY: the mapping is a whole L1 page and `index` < 512; entries are
    // written with one atomic 64-bit store so the walker never sees half of one.
    unsafe { &*(l1_map.as_mut_ptr() as *const AtomicU64).add(index) }
}

/// Makes `va` (page aligned, in Oxen's area) map machine frame `mfn` with
/// `flags`, creating the L1 if the slot has none (bring-up only, see the idle-L2
/// invariant). Returns whether an L1 had to be created.
pub fn map_page(va: u32, mfn: Mfn, flags: u64) -> bool {
    assert_eq!(va % PAGE_SIZE as u32, 0);
    let (l1, created) = l1_for_slot(paging::high_l2_slot(va), va);
    let l1_map = mapcache::map_frame(l1);
    let old = l1_entry(&l1_map, ((va >> 12) & 511) as usize)
        .swap(mfn.maddr().0 | flags, Ordering::SeqCst);
    assert_eq!(old, 0, "{va:#x} mapped twice");
    created
}

/// Maps `pages` fresh frames at `va` (page aligned), writable, each L1 mapped
/// once for all its entries. The frames are not cleared: callers write what
/// they read (the frame table is filled whole; the heap hands out
/// uninitialised memory by contract). Returns the number of frames used, page
/// tables included.
pub fn populate(va: u32, pages: u32) -> u32 {
    assert_eq!(va % PAGE_SIZE as u32, 0);
    let mut used = 0;
    let mut done = 0;
    while done < pages {
        let at = va + done * PAGE_SIZE as u32;
        let (l1, created) = l1_for_slot(paging::high_l2_slot(at), at);
        used += u32::from(created);
        let first = ((at >> 12) & 511) as usize;
        let n = (pages - done).min(512 - first as u32);
        let l1_map = mapcache::map_frame(l1);
        for index in first..first + n as usize {
            let frame =
                frame_table::alloc_xen_frame().expect("out of memory for Oxen's own mappings");
            let old = l1_entry(&l1_map, index)
                .swap(frame.maddr().0 | PAGE_PRESENT | PAGE_RW, Ordering::SeqCst);
            assert_eq!(
                old,
                0,
                "{:#x} mapped twice",
                at + (index - first) as u32 * 4096
            );
        }
        used += n;
        done += n;
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
    l1_entry(&l1_map, ((va >> 12) & 511) as usize).store(0, Ordering::SeqCst);
    crate::arch::x86::cpu::invlpg(va);
}
