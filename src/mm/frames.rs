//! The machine frame allocator of the running hypervisor: `hv_core::frame_alloc`
//! over a bitmap in Oxen's image, behind one lock.

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

/// One free frame anywhere.
pub fn alloc() -> Option<Mfn> {
    with(|a| a.alloc())
}

/// `count` free contiguous frames starting at a multiple of `align`.
pub fn alloc_contiguous(count: u64, align: u64) -> Option<Mfn> {
    with(|a| a.alloc_contiguous(count, align))
}

/// One free frame below `limit`.
pub fn alloc_below(limit: Mfn) -> Option<Mfn> {
    with(|a| a.alloc_below(limit))
}

/// Returns a frame.
pub fn free(mfn: Mfn) {
    with(|a| a.free(mfn)).unwrap_or_else(|e| panic!("freeing {mfn}: {e}"));
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
