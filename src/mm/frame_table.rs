//! The frame table: one `pv_mm::PageInfo` per machine frame, mapped at
//! `FRAMETABLE_VIRT_START`, and the PV MMU engine that owns its meaning.
//!
//! At bring-up every frame is described: RAM that the allocator still has is
//! free, RAM Oxen already uses is assigned to `DOMID_XEN`, everything else
//! (holes, MMIO) is I/O memory owned by `DOMID_IO`. From then on frames change
//! hands only through the engine (`pv_mm::Mm`), behind `MM`'s lock.

use core::sync::atomic::{AtomicU32, Ordering};

use hv_core::addr::Mfn;
use pv_mm::{Mm, MmConfig, PageInfo};
use spin::Mutex;
use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DOMID_XEN, DomId};

use super::layout::{FRAMETABLE_VIRT_END, FRAMETABLE_VIRT_START};
use super::pv::OxenMachine;

/// Frames the table can describe.
pub const MAX_FRAMES: u64 = ((FRAMETABLE_VIRT_END - FRAMETABLE_VIRT_START) as u64) / 16;

static NR_FRAMES: AtomicU32 = AtomicU32::new(0);

/// The PV MMU engine over the frame table. Lock order: `domain::DOMAINS`, then `MM`.
pub static MM: Mutex<Option<Mm<'static, OxenMachine>>> = Mutex::new(None);

fn table() -> &'static [PageInfo] {
    let n = NR_FRAMES.load(Ordering::Relaxed) as usize;
    // SAFETY: `init` mapped n entries at FRAMETABLE_VIRT_START for Oxen's life,
    // wrote every one, and PageInfo's fields are atomics (shared access is fine).
    unsafe { core::slice::from_raw_parts(FRAMETABLE_VIRT_START as *const PageInfo, n) }
}

/// Maps and fills the frame table for frames `[0, nr_frames)` and starts the
/// engine. `is_ram(mfn)` says whether a frame is RAM. Returns the frames used.
pub fn init(nr_frames: u64, is_ram: impl Fn(Mfn) -> bool) -> u32 {
    assert!(
        nr_frames <= MAX_FRAMES,
        "more machine memory than the frame table covers"
    );
    let pages = (nr_frames * 16).div_ceil(4096) as u32;
    let used = super::hvmap::populate(FRAMETABLE_VIRT_START, pages);
    let base = FRAMETABLE_VIRT_START as *mut PageInfo;
    for mfn in 0..nr_frames {
        let info = if is_ram(Mfn(mfn)) {
            PageInfo::free()
        } else {
            PageInfo::io()
        };
        // SAFETY: entry `mfn` lies in the range just mapped; nothing refers to
        // the table yet, so writing whole entries is fine.
        unsafe { base.add(mfn as usize).write(info) };
    }
    NR_FRAMES.store(nr_frames as u32, Ordering::Relaxed);
    let mm = Mm::new(table(), OxenMachine, MmConfig::default());
    for mfn in (0..nr_frames).map(Mfn) {
        if is_ram(mfn) && !super::frames::is_free(mfn) {
            mm.assign(mfn, DOMID_XEN).expect("fresh frame table");
        }
    }
    *MM.lock() = Some(mm);
    used
}

/// Frames the table describes.
pub fn nr_frames() -> u64 {
    u64::from(NR_FRAMES.load(Ordering::Relaxed))
}

/// Counts frames per owner class: (Oxen's, free, I/O).
pub fn census() -> (u64, u64, u64) {
    let (mut xen, mut free, mut io) = (0, 0, 0);
    for pi in table() {
        match pi.owner() {
            DOMID_XEN => xen += 1,
            DOMID_INVALID => free += 1,
            DOMID_IO => io += 1,
            _ => {}
        }
    }
    (xen, free, io)
}

/// Allocates a frame (below `limit` if given) and gives it to `owner` (a
/// domain or `DOMID_XEN`).
pub fn alloc_domain_frame_below(owner: DomId, limit: Option<Mfn>) -> Option<Mfn> {
    let mfn = match limit {
        Some(l) => super::frames::alloc_below(l)?,
        None => super::frames::alloc()?,
    };
    let mm = MM.lock();
    mm.as_ref()
        .expect("frame table initialised")
        .assign(mfn, owner)
        .expect("allocator and frame table agree");
    Some(mfn)
}

/// Allocates a frame and gives it to `owner` (a domain or `DOMID_XEN`).
pub fn alloc_domain_frame(owner: DomId) -> Option<Mfn> {
    alloc_domain_frame_below(owner, None)
}

/// Allocates a frame for Oxen's own use. Before the frame table exists the
/// allocator's bitmap is the only record (`init` then assigns such frames to
/// `DOMID_XEN`); afterwards the frame table records it too.
pub fn alloc_xen_frame() -> Option<Mfn> {
    if NR_FRAMES.load(Ordering::Relaxed) == 0 {
        super::frames::alloc()
    } else {
        alloc_domain_frame(DOMID_XEN)
    }
}
