//! The machine-to-phys table (M2P): one `u32` pfn per machine frame, written by
//! Oxen through a writable window and mapped read-only at `MACH2PHYS_VIRT_START`
//! (0xF5800000) in every address space, where guests read it (XEN-PV-ABI.md §3.2).
//! Both windows map the table with 2 MiB superpages.
//! Frames that belong to no guest hold `INVALID_M2P_ENTRY`.

use core::sync::atomic::{AtomicU32, Ordering};

use hv_core::addr::{Mfn, PAGE_SIZE};

use super::layout::{MACH2PHYS_VIRT_START, RW_MPT_VIRT_END, RW_MPT_VIRT_START};
use crate::arch::x86::paging::{self, PAGE_PRESENT, PAGE_RW};

/// The entry of a frame no guest has a pfn for.
pub const INVALID_M2P_ENTRY: u32 = u32::MAX;

static NR_ENTRIES: AtomicU32 = AtomicU32::new(0);

/// Frames in one M2P chunk (2 MiB).
pub const CHUNK_FRAMES: u64 = 512;
/// Chunks the M2P window holds (16 MiB).
const MAX_CHUNKS: usize = 8;

/// The first machine frame of each 2 MiB chunk backing the M2P, for
/// `XENMEM_machphys_mfn_list`.
static CHUNKS: spin::Once<heapless::Vec<Mfn, MAX_CHUNKS>> = spin::Once::new();

/// Backs the M2P for `nr_frames` machine frames with 2 MiB-contiguous,
/// 2 MiB-aligned chunks (as Xen, so that `machphys_mfn_list` can describe
/// them), each mapped by one superpage writable for Oxen and one read-only in
/// the guest-visible window, and filled with `INVALID_M2P_ENTRY` in one pass
/// (the whole chunk: guests may read past the last frame's entry). Returns the
/// frames used.
pub fn init(nr_frames: u64) -> u32 {
    let bytes = nr_frames * 4;
    assert!(bytes <= u64::from(RW_MPT_VIRT_END - RW_MPT_VIRT_START));
    let chunk_bytes = CHUNK_FRAMES * PAGE_SIZE;
    let chunks = bytes.div_ceil(chunk_bytes);
    let mut list = heapless::Vec::new();
    for c in 0..chunks {
        let first = super::frames::alloc_contiguous(CHUNK_FRAMES, CHUNK_FRAMES)
            .expect("no 2 MiB of contiguous memory for the M2P");
        let _ = list.push(first);
        let offset = (c * chunk_bytes) as u32;
        let rw = RW_MPT_VIRT_START + offset;
        paging::install_high_superpage(
            paging::high_l2_slot(rw),
            first.maddr().0,
            PAGE_PRESENT | PAGE_RW,
        );
        paging::install_high_superpage(
            paging::high_l2_slot(MACH2PHYS_VIRT_START + offset),
            first.maddr().0,
            PAGE_PRESENT,
        );
        // SAFETY: the chunk was just mapped writable at `rw` (a slot that was
        // empty, so no stale TLB entry); it is Oxen's and holds no Rust object.
        unsafe {
            super::mapcache::fill_dwords(
                rw as *mut u8,
                (chunk_bytes / 4) as usize,
                INVALID_M2P_ENTRY,
            )
        };
    }
    CHUNKS.call_once(|| list);
    NR_ENTRIES.store(nr_frames as u32, Ordering::Relaxed);
    (chunks * CHUNK_FRAMES) as u32
}

/// The first frame of each 2 MiB chunk backing the M2P.
pub fn chunk_mfns() -> &'static [Mfn] {
    CHUNKS.get().map_or(&[], |v| v.as_slice())
}

fn entry(mfn: Mfn) -> Option<&'static AtomicU32> {
    if mfn.0 >= u64::from(NR_ENTRIES.load(Ordering::Relaxed)) {
        return None;
    }
    let va = RW_MPT_VIRT_START as usize + mfn.0 as usize * 4;
    // SAFETY: entries below NR_ENTRIES are mapped writable for Oxen's lifetime
    // (init populated them); the entry is an aligned u32 used only atomically.
    Some(unsafe { &*(va as *const AtomicU32) })
}

/// Records that machine frame `mfn` is the guest's pfn `pfn`.
pub fn set(mfn: Mfn, pfn: u32) {
    if let Some(e) = entry(mfn) {
        e.store(pfn, Ordering::Relaxed);
    }
}
