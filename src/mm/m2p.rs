//! The machine-to-phys table (M2P): one `u32` pfn per machine frame, written by
//! Oxen through a writable window and mapped read-only at `MACH2PHYS_VIRT_START`
//! (0xF5800000) in every address space, where guests read it (XEN-PV-ABI.md §3.2).
//! Frames that belong to no guest hold `INVALID_M2P_ENTRY`.

use core::sync::atomic::{AtomicU32, Ordering};

use hv_core::addr::{Mfn, PAGE_SIZE};

use super::layout::{MACH2PHYS_VIRT_START, RW_MPT_VIRT_END, RW_MPT_VIRT_START};
use crate::arch::x86::paging::{PAGE_PRESENT, PAGE_RW};

/// The entry of a frame no guest has a pfn for.
pub const INVALID_M2P_ENTRY: u32 = u32::MAX;

static NR_ENTRIES: AtomicU32 = AtomicU32::new(0);

/// Frames in one M2P chunk (2 MiB).
const CHUNK_FRAMES: u64 = 512;
/// Chunks the M2P window holds (16 MiB).
const MAX_CHUNKS: usize = 8;

/// The first machine frame of each 2 MiB chunk backing the M2P, for
/// `XENMEM_machphys_mfn_list`.
static CHUNKS: spin::Once<heapless::Vec<Mfn, MAX_CHUNKS>> = spin::Once::new();

/// Backs the M2P for `nr_frames` machine frames with 2 MiB-contiguous,
/// 2 MiB-aligned chunks (as Xen, so that `machphys_mfn_list` can describe
/// them), mapped writable for Oxen and read-only in the guest-visible window,
/// all entries invalid. Returns the frames used.
pub fn init(nr_frames: u64) -> u32 {
    let bytes = nr_frames * 4;
    assert!(bytes <= u64::from(RW_MPT_VIRT_END - RW_MPT_VIRT_START));
    let chunks = bytes.div_ceil(CHUNK_FRAMES * PAGE_SIZE);
    let mut used = 0;
    let mut list = heapless::Vec::new();
    for c in 0..chunks {
        let first = super::frames::alloc_contiguous(CHUNK_FRAMES, CHUNK_FRAMES)
            .expect("no 2 MiB of contiguous memory for the M2P");
        let _ = list.push(first);
        for i in 0..CHUNK_FRAMES {
            let mfn = Mfn(first.0 + i);
            super::mapcache::clear_frame(mfn);
            let offset = ((c * CHUNK_FRAMES + i) * PAGE_SIZE) as u32;
            used += 1 + u32::from(super::hvmap::map_page(
                RW_MPT_VIRT_START + offset,
                mfn,
                PAGE_PRESENT | PAGE_RW,
            ));
            used += u32::from(super::hvmap::map_page(
                MACH2PHYS_VIRT_START + offset,
                mfn,
                PAGE_PRESENT,
            ));
        }
    }
    CHUNKS.call_once(|| list);
    NR_ENTRIES.store(nr_frames as u32, Ordering::Relaxed);
    for mfn in 0..nr_frames {
        entry(Mfn(mfn))
            .expect("in range")
            .store(INVALID_M2P_ENTRY, Ordering::Relaxed);
    }
    used
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
