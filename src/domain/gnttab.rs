//! A domain's grant-table state (XEN-PV-ABI.md §9), as Oxen keeps it: the
//! hv-core state machine (active entries as a granter, maptrack handles as a
//! grantee) and the frames holding the guest-visible `grant_entry_v1`
//! array. Those frames belong to the domain with a permanent writable type
//! reference (as shared_info), so the guest maps them writable and they can
//! never become page tables; Oxen reaches them through the map cache.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use hv_core::addr::Mfn;
use hv_core::gnttab::{EntryHeader, GrantTable, Maptrack, SharedEntries};
use xen_abi::domid::DomId;
use xen_abi::grant::{GRANT_ENTRIES_V1_PER_PAGE, GrantEntryV1};
use xen_abi::types::GrantRef;

use crate::mm::mapcache;

/// Grant-table frames a domain may have (Xen's default is 32; Oxen keeps
/// the table in its small heap, so 4 frames — 2048 grants — for now).
pub const GNTTAB_FRAMES: usize = 4;
/// Grant mappings a domain may hold at once.
pub const MAPTRACK_HANDLES: usize = 256;

pub type Table = GrantTable<GNTTAB_FRAMES>;

/// `DomainGrants::new` relies on an all-zero `Table` being valid.
const _: fn() = || {
    fn from_zeros<T: zerocopy::FromZeros>() {}
    from_zeros::<Table>();
};

/// Everything grant-related of one domain.
pub struct DomainGrants {
    pub table: Box<Table>,
    /// The frames of the shared entry array, in order.
    pub frames: heapless::Vec<Mfn, GNTTAB_FRAMES>,
    /// Taken out (`None`) while one of the domain's own grant operations
    /// runs, so that its table can be reached at the same time.
    pub maptrack: Option<Box<Maptrack<MAPTRACK_HANDLES>>>,
}

impl DomainGrants {
    /// The state of a new domain `domid`: one table frame to be allocated
    /// at the first `setup_table`, nothing granted or mapped.
    pub fn new(domid: DomId) -> Self {
        let layout = core::alloc::Layout::new::<Table>();
        // SAFETY: `Table` is `FromZeros` (checked at compile time below), so
        // all-zero bytes are a valid value; `reset` then makes it the table
        // of `domid`. The allocation has `Table`'s layout and is handed to a
        // `Box` of it. (Built in place: the table is far larger than a
        // hypercall's stack should carry.)
        let mut table: Box<Table> = unsafe {
            let p = alloc::alloc::alloc_zeroed(layout) as *mut Table;
            if p.is_null() {
                alloc::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(p)
        };
        table.reset(domid);
        Self {
            table,
            frames: heapless::Vec::new(),
            maptrack: Some(Box::new(Maptrack::new())),
        }
    }
}

/// The shared entries of a domain, in its table frames (a copy of the list).
#[derive(Default)]
pub struct SharedFrames(pub heapless::Vec<Mfn, GNTTAB_FRAMES>);

impl SharedFrames {
    /// Runs `f` on the 8 bytes of entry `gref` (`None` beyond the frames).
    fn with_entry<R>(&self, gref: GrantRef, f: impl FnOnce(*mut u8) -> R) -> Option<R> {
        let per_page = GRANT_ENTRIES_V1_PER_PAGE as u32;
        let frame = *self.0.get((gref / per_page) as usize)?;
        let m = mapcache::map_frame(frame);
        let offset = (gref % per_page) as usize * size_of::<GrantEntryV1>();
        // SAFETY: `offset` + 8 ≤ 4096 inside the mapped frame.
        Some(f(unsafe { m.as_mut_ptr().add(offset) }))
    }
}

impl SharedEntries for SharedFrames {
    fn read(&self, gref: GrantRef) -> GrantEntryV1 {
        self.with_entry(gref, |p| {
            // SAFETY: `p` is an 8-byte aligned entry in a mapped frame that
            // the guest may write concurrently: the header is one atomic
            // 32-bit load (a consistent flags/domid pair), the frame another.
            let (head, frame) = unsafe {
                (
                    (*(p as *const AtomicU32)).load(Ordering::SeqCst),
                    (*(p.add(4) as *const AtomicU32)).load(Ordering::SeqCst),
                )
            };
            GrantEntryV1 {
                flags: head as u16,
                domid: (head >> 16) as u16,
                frame,
            }
        })
        .unwrap_or_default()
    }

    fn cmpxchg_flags(
        &mut self,
        gref: GrantRef,
        old: EntryHeader,
        new_flags: u16,
    ) -> Result<(), EntryHeader> {
        let old_word = u32::from(old.flags) | u32::from(old.domid) << 16;
        let new_word = u32::from(new_flags) | u32::from(old.domid) << 16;
        self.with_entry(gref, |p| {
            // SAFETY: as in `read`; the compare-and-swap covers the header.
            let head = unsafe { &*(p as *const AtomicU32) };
            head.compare_exchange(old_word, new_word, Ordering::SeqCst, Ordering::SeqCst)
                .map(|_| ())
                .map_err(|found| EntryHeader {
                    flags: found as u16,
                    domid: (found >> 16) as u16,
                })
        })
        .unwrap_or(Err(EntryHeader::default()))
    }

    fn clear_flags(&mut self, gref: GrantRef, bits: u16) {
        self.with_entry(gref, |p| {
            // SAFETY: as in `read`: the flags are the entry's first u16.
            unsafe { (*(p as *const AtomicU16)).fetch_and(!bits, Ordering::SeqCst) };
        });
    }
}
