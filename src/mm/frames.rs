//! The machine frame allocator of the running hypervisor: `hv_core::frame_alloc`
//! over a bitmap in Oxen's image, behind one lock.
//!
//! Invariant: no frame is handed out while a TLB entry of a guest that owned
//! a freed frame may still reach it: frames the PV MMU engine frees go back
//! with [`free_guest`], and the next allocation flushes the TLB first
//! (`hv_core::frame_alloc`'s stale translations, Xen's `tlbflush_timestamp`).

use hv_core::addr::{Maddr, Mfn};
use hv_core::frame_alloc::FrameAllocator;
use spin::Mutex;

use crate::arch::x86::cpu;

/// Largest machine memory Oxen manages: the M2P describes MFNs below 2^22 (16 GiB).
pub const MAX_MFN: u64 = xen_abi::layout::MACH2PHYS_NR_ENTRIES as u64;

struct Bitmap(core::cell::UnsafeCell<[u64; (MAX_MFN / 64) as usize]>);
// SAFETY: the bitmap is handed out exactly once, to the allocator inside
// `ALLOCATOR`, which serialises every access with its lock.
unsafe impl Sync for Bitmap {}
static BITMAP: Bitmap = Bitmap(core::cell::UnsafeCell::new([0; (MAX_MFN / 64) as usize]));

static ALLOCATOR: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

/// Builds the allocator: `usable` ranges become free, then `reserved` ranges
/// are taken out (reservation always wins).
pub fn init(
    max_mfn: u64,
    usable: impl Iterator<Item = (u64, u64)>,
    reserved: impl Iterator<Item = (u64, u64)>,
) {
    let mut guard = ALLOCATOR.lock();
    assert!(guard.is_none(), "frame allocator initialised twice");
    // SAFETY: `init` runs once (checked above under the lock), so this is the
    // only reference ever made to the bitmap.
    let bits = unsafe { &mut *BITMAP.0.get() };
    let mut alloc =
        FrameAllocator::new(bits, max_mfn.min(MAX_MFN)).expect("frame bitmap too small");
    for (start, end) in usable {
        if let Err(e) = alloc.add_free_range(Maddr(start), Maddr(end)) {
            panic!("usable RAM {start:#x}-{end:#x}: {e}");
        }
    }
    for (start, end) in reserved {
        if let Err(e) = alloc.reserve_range(Maddr(start), Maddr(end)) {
            panic!("reserving {start:#x}-{end:#x}: {e}");
        }
    }
    *guard = Some(alloc);
}

fn with<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    let was = cpu::disable_interrupts();
    let r = f(ALLOCATOR
        .lock()
        .as_mut()
        .expect("frame allocator not initialised"));
    cpu::restore_interrupts(was);
    r
}

/// Allocates with `f`, flushing the TLB first if a guest's frame was freed
/// since the last such flush (the frame handed out may be that one).
fn alloc_with(f: impl FnOnce(&mut FrameAllocator<'static>) -> Option<Mfn>) -> Option<Mfn> {
    with(|a| {
        let mfn = f(a)?;
        if a.take_flush_due() {
            cpu::flush_tlb_local();
        }
        Some(mfn)
    })
}

/// One free frame anywhere.
pub fn alloc() -> Option<Mfn> {
    alloc_with(|a| a.alloc())
}

/// `count` free contiguous frames starting at a multiple of `align`.
pub fn alloc_contiguous(count: u64, align: u64) -> Option<Mfn> {
    alloc_with(|a| a.alloc_contiguous(count, align))
}

/// One free frame below `limit`.
pub fn alloc_below(limit: Mfn) -> Option<Mfn> {
    alloc_with(|a| a.alloc_below(limit))
}

/// Returns a frame no guest could have mapped (Oxen's own, or one never
/// given out).
pub fn free(mfn: Mfn) {
    with(|a| a.free(mfn)).unwrap_or_else(|e| panic!("freeing {mfn}: {e}"));
}

/// Returns a frame a guest owned: its translations may linger in the TLB,
/// so the next allocation flushes first.
pub fn free_guest(mfn: Mfn) {
    with(|a| a.free_guest(mfn)).unwrap_or_else(|e| panic!("freeing {mfn}: {e}"));
}

/// Calls `f` for every frame in `[first, last)` that is not free (allocated,
/// reserved, or not RAM), all under one lock: bring-up only (`f` must not use
/// the allocator).
pub fn for_each_not_free(first: u64, last: u64, mut f: impl FnMut(Mfn)) {
    with(|a| {
        for mfn in (first..last.min(a.max_mfn().0)).map(Mfn) {
            if !a.is_free(mfn) {
                f(mfn);
            }
        }
    });
}

/// (free frames, usable frames).
pub fn counts() -> (u64, u64) {
    with(|a| (a.free_count(), a.total_count()))
}
