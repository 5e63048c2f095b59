//! Backing Oxen's own virtual windows (heap, frame table) with fresh frames.
//!
//! L1 tables are created here only during bring-up (the idle-L2 invariant in
//! `arch::x86::paging`); the PTEs are written through the map cache.

use core::sync::atomic::Ordering;

use hv_core::addr::{Maddr, PAGE_SIZE};

use super::{frames, mapcache};
use crate::arch::x86::paging::{self, PAGE_PRESENT, PAGE_RW};

/// Maps `pages` fresh zeroed frames at `va` (page aligned, inside Oxen's area).
/// Returns the number of frames used, page tables included.
pub fn populate(va: u32, pages: u32) -> u32 {
    assert_eq!(va % PAGE_SIZE as u32, 0);
    let mut used = 0;
    for i in 0..pages {
        let page_va = va + i * PAGE_SIZE as u32;
        let slot = paging::high_l2_slot(page_va);
        let l1 = match paging::high_l1_maddr(slot) {
            Some(l1) => l1,
            None => {
                assert!(
                    !paging::high_l2_present(slot),
                    "superpage in the way at {page_va:#x}"
                );
                let mfn = frames::alloc().expect("out of memory for Oxen's page tables");
                mapcache::clear_frame(mfn);
                paging::install_high_l1(slot, mfn.maddr().0);
                used += 1;
                mfn.maddr().0
            }
        };
        let frame = frames::alloc().expect("out of memory for Oxen's own mappings");
        mapcache::clear_frame(frame);
        used += 1;
        let l1_map = mapcache::map_frame(Maddr(l1).mfn());
        let index = ((page_va >> 12) & 511) as usize;
        // SAFETY: the mapping is the whole L1 page; `index` < 512; the entry is
        // written with one atomic 64-bit store so the walker never sees half of it.
        let entry =
            unsafe { &*(l1_map.as_mut_ptr() as *const core::sync::atomic::AtomicU64).add(index) };
        let old = entry.swap(frame.maddr().0 | PAGE_PRESENT | PAGE_RW, Ordering::SeqCst);
        assert_eq!(old, 0, "{page_va:#x} mapped twice");
    }
    used
}
