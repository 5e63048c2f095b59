//! The frame table: one `pv_mm::PageInfo` per machine frame, mapped at
//! `FRAMETABLE_VIRT_START`, and the PV MMU engine that owns its meaning.
//!
//! At bring-up every frame is described: RAM that the allocator still has is
//! free, RAM Oxen already uses is assigned to `DOMID_XEN`, everything else
//! (holes, MMIO) is I/O memory owned by `DOMID_IO`. The M2P's frames are the
//! only ones of Oxen's shared (read-only, with privileged domains); no guest
//! can reference any other frame of Oxen's. From then on frames change hands
//! only through the engine (`pv_mm::Mm`), behind `MM`'s lock.
//!
//! The engine also keeps each domain's page account (`tot_pages`,
//! `max_pages`, in [`ACCOUNTS`]): a frame is counted when it is given to the
//! domain ([`alloc_domain_frame_below`]) and uncounted when it is really
//! freed, wherever its last reference goes. The frames Oxen gives a domain
//! for itself ([`alloc_extra_frame_below`]: shared_info, grant table) are
//! never counted.

use core::sync::atomic::{AtomicU32, Ordering};

use hv_core::addr::{Mfn, PAGE_SIZE};
use pv_mm::{DomainPages, Mm, MmConfig, PageInfo};
use spin::Mutex;
use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DOMID_XEN, DomId};

use super::layout::{FRAMETABLE_VIRT_END, FRAMETABLE_VIRT_START};
use super::pv::OxenMachine;

/// Frames the table can describe.
pub const MAX_FRAMES: u64 = ((FRAMETABLE_VIRT_END - FRAMETABLE_VIRT_START) as u64) / 16;

static NR_FRAMES: AtomicU32 = AtomicU32::new(0);

/// The PV MMU engine over the frame table. Lock order: `domain::DOMAINS`, then `MM`.
pub static MM: Mutex<Option<Mm<'static, OxenMachine>>> = Mutex::new(None);

/// Every domid's page account, owned by the engine.
static ACCOUNTS: [DomainPages; crate::domain::MAX_DOMAINS] =
    [const { DomainPages::new() }; crate::domain::MAX_DOMAINS];

fn table() -> &'static [PageInfo] {
    let n = NR_FRAMES.load(Ordering::Relaxed) as usize;
    // SAFETY: `init` mapped n entries at FRAMETABLE_VIRT_START for Oxen's life,
    // wrote every one, and PageInfo's fields are atomics (shared access is fine).
    unsafe { core::slice::from_raw_parts(FRAMETABLE_VIRT_START as *const PageInfo, n) }
}

/// Maps and fills the frame table for frames `[0, nr_frames)` and starts the
/// engine. `ram` is the machine RAM, as sorted, disjoint byte ranges. Returns
/// the frames used.
pub fn init(nr_frames: u64, ram: &[(u64, u64)]) -> u32 {
    assert!(
        nr_frames <= MAX_FRAMES,
        "more machine memory than the frame table covers"
    );
    let pages = (nr_frames * 16).div_ceil(4096) as u32;
    let used = super::hvmap::populate(FRAMETABLE_VIRT_START, pages);
    let base = FRAMETABLE_VIRT_START as *mut PageInfo;
    let fill = |from: u64, to: u64, info: fn() -> PageInfo| {
        for mfn in from..to {
            // SAFETY: entry `mfn` < nr_frames lies in the range just mapped;
            // nothing refers to the table yet, so writing whole entries is fine.
            unsafe { base.add(mfn as usize).write(info()) };
        }
    };
    // Frames that start in RAM are free (for now), the rest is I/O.
    let frames_of = |start: u64, end: u64| {
        (
            start.div_ceil(PAGE_SIZE).min(nr_frames),
            end.div_ceil(PAGE_SIZE).min(nr_frames),
        )
    };
    let mut next = 0;
    for &(start, end) in ram {
        let (first, last) = frames_of(start, end);
        let first = first.max(next);
        let last = last.max(first);
        fill(next, first, PageInfo::io);
        fill(first, last, PageInfo::free);
        next = last;
    }
    fill(next, nr_frames, PageInfo::io);
    NR_FRAMES.store(nr_frames as u32, Ordering::Relaxed);
    let mm = Mm::new(table(), &ACCOUNTS, OxenMachine, MmConfig::default());
    // RAM the allocator no longer has is Oxen's (image, boot data, its own
    // allocations so far).
    for &(start, end) in ram {
        let (first, last) = frames_of(start, end);
        super::frames::for_each_not_free(first, last, |mfn| {
            mm.assign(mfn, DOMID_XEN).expect("fresh frame table");
        });
    }
    // The M2P is mappable read-only by privileged domains (as Xen's
    // `share_xen_page_with_privileged_guests(XENSHARE_readonly)`), with
    // DOMID_XEN as the owner: the toolstack maps the chunks
    // `XENMEM_machphys_mfn_list` names.
    for &first in super::m2p::chunk_mfns() {
        for mfn in (first.0..first.0 + super::m2p::CHUNK_FRAMES).map(Mfn) {
            if mfn.0 < nr_frames {
                mm.share_xen_frame(mfn).expect("the M2P is Oxen's");
            }
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
/// domain, counted in its `tot_pages`; or `DOMID_XEN`). `None` when memory
/// is short or the domain is at its `max_pages`.
pub fn alloc_domain_frame_below(owner: DomId, limit: Option<Mfn>) -> Option<Mfn> {
    alloc_with(owner, limit, false)
}

/// Allocates a frame (below `limit` if given) and gives it to domain `owner`
/// for Oxen's use with it (shared_info, grant table): owned by the domain but
/// never counted in its `tot_pages`, and not the domain's to give back.
pub fn alloc_extra_frame_below(owner: DomId, limit: Option<Mfn>) -> Option<Mfn> {
    alloc_with(owner, limit, true)
}

fn alloc_with(owner: DomId, limit: Option<Mfn>, extra: bool) -> Option<Mfn> {
    let mfn = match limit {
        Some(l) => super::frames::alloc_below(l)?,
        None => super::frames::alloc()?,
    };
    let given = {
        let mm = MM.lock();
        let mm = mm.as_ref().expect("frame table initialised");
        if extra {
            mm.assign_extra(mfn, owner)
        } else {
            mm.assign(mfn, owner)
        }
    };
    match given {
        Ok(()) => Some(mfn),
        // Over the domain's limit: the frame goes back to the allocator.
        Err(xen_abi::errno::Errno::E2BIG) => {
            super::frames::free(mfn);
            None
        }
        Err(e) => panic!("allocator and frame table disagree on {mfn}: {e}"),
    }
}

/// Allocates a frame and gives it to `owner` (a domain or `DOMID_XEN`).
pub fn alloc_domain_frame(owner: DomId) -> Option<Mfn> {
    alloc_domain_frame_below(owner, None)
}

/// Frames counted for `domid` (Xen's `tot_pages`).
pub fn tot_pages(domid: DomId) -> u64 {
    MM.lock()
        .as_ref()
        .map_or(0, |mm| u64::from(mm.tot_pages(domid)))
}

/// The most frames `domid` may have counted (Xen's `max_pages`).
pub fn max_pages(domid: DomId) -> u64 {
    MM.lock()
        .as_ref()
        .map_or(0, |mm| u64::from(mm.max_pages(domid)))
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
