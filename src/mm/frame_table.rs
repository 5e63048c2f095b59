//! The frame table: one `PageInfo` per machine frame, at `FRAMETABLE_VIRT_START`.
//!
//! Each frame has an owner (a domid, `DOMID_XEN` for Oxen's own frames,
//! `DOMID_IO` for frames that are not RAM, `DOMID_INVALID` for free RAM), a total
//! reference count (`count_info`) and a type with its own count (`type_info`).
//! At bring-up the table states who owns every frame; the PV MMU's type and
//! reference-count engine is what later moves frames between types.

use core::sync::atomic::{AtomicU32, Ordering};

use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DOMID_XEN, DomId};

use super::layout::{FRAMETABLE_VIRT_END, FRAMETABLE_VIRT_START};

/// What Oxen knows about one machine frame.
#[repr(C)]
pub struct PageInfo {
    /// Total references; flags in the top bits (later).
    pub count_info: AtomicU32,
    /// Type in the top bits, type count below (later).
    pub type_info: AtomicU32,
    /// The owning domain.
    pub owner: AtomicU32,
    /// Reserved for the TLB-flush timestamp.
    pub tlbflush_timestamp: AtomicU32,
}

const _: () = assert!(core::mem::size_of::<PageInfo>() == 16);

/// Frames the table can describe.
pub const MAX_FRAMES: u64 = ((FRAMETABLE_VIRT_END - FRAMETABLE_VIRT_START) as u64) / 16;

static NR_FRAMES: AtomicU32 = AtomicU32::new(0);

/// Maps and fills the frame table for frames `[0, nr_frames)`.
/// `is_ram(mfn)` says whether a frame is RAM; allocated RAM frames become
/// Oxen's (count 1), free RAM has no owner, the rest belongs to `DOMID_IO`.
/// Returns the frames used by the table itself.
pub fn init(nr_frames: u64, is_ram: impl Fn(Mfn) -> bool) -> u32 {
    assert!(
        nr_frames <= MAX_FRAMES,
        "more machine memory than the frame table covers"
    );
    let bytes = nr_frames * 16;
    let pages = bytes.div_ceil(4096) as u32;
    let used = super::hvmap::populate(FRAMETABLE_VIRT_START, pages);
    NR_FRAMES.store(nr_frames as u32, Ordering::Relaxed);
    for mfn in 0..nr_frames {
        let mfn = Mfn(mfn);
        let (owner, count) = if !is_ram(mfn) {
            (DOMID_IO, 0)
        } else if super::frames::is_free(mfn) {
            (DOMID_INVALID, 0)
        } else {
            (DOMID_XEN, 1)
        };
        let pi = page_info(mfn).expect("in range");
        pi.owner.store(u32::from(owner), Ordering::Relaxed);
        pi.count_info.store(count, Ordering::Relaxed);
    }
    used
}

/// The `PageInfo` of `mfn`, if the table covers it.
pub fn page_info(mfn: Mfn) -> Option<&'static PageInfo> {
    if mfn.0 >= u64::from(NR_FRAMES.load(Ordering::Relaxed)) {
        return None;
    }
    let va = FRAMETABLE_VIRT_START as usize + mfn.0 as usize * 16;
    // SAFETY: frames below NR_FRAMES have their entries mapped (init populated
    // them) for the rest of Oxen's life; all fields are atomics, so shared
    // references are fine.
    Some(unsafe { &*(va as *const PageInfo) })
}

/// The owner of `mfn` as recorded in the table.
pub fn owner(mfn: Mfn) -> Option<DomId> {
    page_info(mfn).map(|p| p.owner.load(Ordering::Relaxed) as DomId)
}

/// Frames the table describes.
pub fn nr_frames() -> u64 {
    u64::from(NR_FRAMES.load(Ordering::Relaxed))
}

/// Counts frames per owner class: (Oxen's, free, I/O).
pub fn census() -> (u64, u64, u64) {
    let (mut xen, mut free, mut io) = (0, 0, 0);
    for mfn in 0..nr_frames() {
        match owner(Mfn(mfn)) {
            Some(DOMID_XEN) => xen += 1,
            Some(DOMID_INVALID) => free += 1,
            Some(DOMID_IO) => io += 1,
            _ => {}
        }
    }
    (xen, free, io)
}
