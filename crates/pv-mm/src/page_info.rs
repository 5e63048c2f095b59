//! `PageInfo`, the frame-table entry of one machine frame, and the encoding of
//! its two counter words.
//!
//! The encoding is Oxen's own (not ABI):
//!
//! ```text
//! count_info   31        30     29          28        27 ................ 0
//!              allocated extra  xen_shared  reserved  total reference count
//!
//! allocated:  the owner's allocation reference is held (Xen's PGC_allocated)
//! extra:      a domain's frame that Oxen gave it for its own use with the
//!             domain (shared_info, grant-table frames): not counted in the
//!             domain's tot_pages, and the domain cannot give it back (Xen's
//!             PGC_extra / xenheap pages shared with a guest)
//! xen_shared: a DOMID_XEN frame that privileged domains may map read-only
//!             (Xen's share_xen_page_with_privileged_guests(XENSHARE_readonly));
//!             every other DOMID_XEN frame cannot be referenced by a guest
//!
//! type_info    31..29    28      27         26          25       24 ...... 0
//!              type      pinned  validated  pae_xen_l2  partial  type count (PGT_count_mask)
//!
//! type: 0 none, 1 L1, 2 L2, 3 L3, 4 seg_desc, 5 writable (6, 7 unused)
//! partial:    an L2 or L3 whose preemptible validation stopped part way
//!             (Xen's PGT_partial); see the engine's invariant 12
//!
//! owner:  the owning domid (DOMID_INVALID when free, DOMID_IO for I/O frames)
//! extra:  the progress of a partial frame, zero otherwise:
//!
//!              31 ... 26  25 ..... 18  17    16           15 ............. 0
//!              reserved   error        held  partial_pte  nr_validated
//!
//!         nr_validated: entries 0..nr_validated hold their references;
//!         partial_pte:  entry nr_validated points at a partial frame whose
//!                       partial state belongs to this one (Xen's partial_pte);
//!         held:         this frame's partial state belongs to its parent's
//!                       partial entry (not to a pending pin or base pointer)
//!         error:        non-zero: the validation failed with this errno and
//!                       the frame is being taken down
//! ```
//!
//! The fields are atomics so that the frame table can be shared (`&[PageInfo]`)
//! and read without locks; every update is a plain load and store because the
//! caller serialises all engine calls.

use core::sync::atomic::{AtomicU32, Ordering};

use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DomId};

use crate::types::PageType;

/// `count_info`: the domain's allocation reference is held (Xen's `PGC_allocated`).
pub const PGC_ALLOCATED: u32 = 1 << 31;
/// `count_info`: a domain's frame not counted in its `tot_pages` (Xen's `PGC_extra`).
pub const PGC_EXTRA: u32 = 1 << 30;
/// `count_info`: a `DOMID_XEN` frame privileged domains may map read-only.
pub const PGC_XEN_SHARED: u32 = 1 << 29;
/// `count_info`: the total reference count.
pub const PGC_COUNT_MASK: u32 = (1 << 28) - 1;

/// `type_info`: shift of the type field.
pub const PGT_TYPE_SHIFT: u32 = 29;
/// `type_info`: the type field.
pub const PGT_TYPE_MASK: u32 = 0x7 << PGT_TYPE_SHIFT;
/// `type_info`: a pin holds one type reference.
pub const PGT_PINNED: u32 = 1 << 28;
/// `type_info`: the contents have been validated for the current type.
pub const PGT_VALIDATED: u32 = 1 << 27;
/// `type_info`: an L2 that sits under L3 slot 3 and carries the hypervisor slots.
pub const PGT_PAE_XEN_L2: u32 = 1 << 26;
/// `type_info`: a table whose preemptible validation stopped part way (Xen's `PGT_partial`).
pub const PGT_PARTIAL: u32 = 1 << 25;
/// `type_info`: the type reference count.
pub const PGT_COUNT_MASK: u32 = (1 << 25) - 1;

/// A decoded `count_info` word.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CountInfo(pub u32);

impl CountInfo {
    /// The total reference count.
    pub const fn count(self) -> u32 {
        self.0 & PGC_COUNT_MASK
    }

    /// Whether the allocation reference is held.
    pub const fn allocated(self) -> bool {
        self.0 & PGC_ALLOCATED != 0
    }

    /// Whether this is a domain's frame not counted in its `tot_pages`.
    pub const fn extra(self) -> bool {
        self.0 & PGC_EXTRA != 0
    }

    /// Whether this `DOMID_XEN` frame is shared read-only with privileged domains.
    pub const fn xen_shared(self) -> bool {
        self.0 & PGC_XEN_SHARED != 0
    }

    /// The same word with `flag` (one of the `PGC_*` flag bits) set or clear.
    pub const fn with_flag(self, flag: u32, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }

    /// The same flags with another count.
    pub const fn with_count(self, count: u32) -> Self {
        Self((self.0 & !PGC_COUNT_MASK) | (count & PGC_COUNT_MASK))
    }

    /// The same word with `PGC_allocated` set or clear.
    pub const fn with_allocated(self, on: bool) -> Self {
        if on {
            Self(self.0 | PGC_ALLOCATED)
        } else {
            Self(self.0 & !PGC_ALLOCATED)
        }
    }
}

/// A decoded `type_info` word.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TypeInfo(pub u32);

impl TypeInfo {
    /// A word of type `ty` with `count` type references and no flags.
    pub const fn new(ty: PageType, count: u32) -> Self {
        Self(((ty as u32) << PGT_TYPE_SHIFT) | (count & PGT_COUNT_MASK))
    }

    /// The type (`None` for an undefined encoding, which the audit reports).
    pub const fn page_type(self) -> Option<PageType> {
        PageType::from_bits((self.0 & PGT_TYPE_MASK) >> PGT_TYPE_SHIFT)
    }

    /// The type reference count.
    pub const fn count(self) -> u32 {
        self.0 & PGT_COUNT_MASK
    }

    /// Whether a pin holds a type reference.
    pub const fn pinned(self) -> bool {
        self.0 & PGT_PINNED != 0
    }

    /// Whether the contents were validated for this type.
    pub const fn validated(self) -> bool {
        self.0 & PGT_VALIDATED != 0
    }

    /// Whether this is an L2 under L3 slot 3 (hypervisor slots 428–511).
    pub const fn pae_xen_l2(self) -> bool {
        self.0 & PGT_PAE_XEN_L2 != 0
    }

    /// Whether this is a partially validated table (see [`Progress`]).
    pub const fn partial(self) -> bool {
        self.0 & PGT_PARTIAL != 0
    }

    /// The same word with another type count.
    pub const fn with_count(self, count: u32) -> Self {
        Self((self.0 & !PGT_COUNT_MASK) | (count & PGT_COUNT_MASK))
    }

    /// The same word with `flag` (one of the `PGT_*` flag bits) set or clear.
    pub const fn with_flag(self, flag: u32, on: bool) -> Self {
        if on {
            Self(self.0 | flag)
        } else {
            Self(self.0 & !flag)
        }
    }
}

/// The progress of a partially validated table (the `extra` word; see the
/// module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Progress {
    /// Entries `0..nr_validated` hold their references.
    pub nr_validated: usize,
    /// Entry `nr_validated` points at a partial table whose partial state
    /// belongs to this one.
    pub partial_pte: bool,
    /// This table's partial state belongs to its parent's partial entry.
    pub held: bool,
    /// Non-zero: the validation failed with this errno; the table is being
    /// taken down before the error is returned.
    pub error: u8,
    /// This root is a vcpu's old table (a base pointer's L3, or an L3
    /// entry's L2) being taken down
    /// ([`Mm::put_old_table_preemptible`](crate::engine::Mm::put_old_table_preemptible),
    /// Xen's `old_guest_table`): only that put resumes it.
    pub put_pending: bool,
}

impl Progress {
    const PARTIAL_PTE: u32 = 1 << 16;
    const HELD: u32 = 1 << 17;
    const PUT_PENDING: u32 = 1 << 26;

    /// The encoded word.
    pub const fn encode(self) -> u32 {
        (self.nr_validated as u32 & 0xFFFF)
            | if self.partial_pte {
                Self::PARTIAL_PTE
            } else {
                0
            }
            | if self.held { Self::HELD } else { 0 }
            | (self.error as u32) << 18
            | if self.put_pending {
                Self::PUT_PENDING
            } else {
                0
            }
    }

    /// The decoded word.
    pub const fn decode(w: u32) -> Self {
        Self {
            nr_validated: (w & 0xFFFF) as usize,
            partial_pte: w & Self::PARTIAL_PTE != 0,
            held: w & Self::HELD != 0,
            error: (w >> 18) as u8,
            put_pending: w & Self::PUT_PENDING != 0,
        }
    }
}

/// What Oxen knows about one machine frame (16 bytes; the hypervisor's frame
/// table is an array of these indexed by MFN).
#[repr(C)]
#[derive(Debug)]
pub struct PageInfo {
    /// Total references and `PGC_*` flags (see the module documentation).
    pub count_info: AtomicU32,
    /// Type, `PGT_*` flags and type references.
    pub type_info: AtomicU32,
    /// The owning domain, as a `u32`.
    pub owner: AtomicU32,
    /// The [`Progress`] of a partial table; zero otherwise.
    pub extra: AtomicU32,
}

const _: () = assert!(core::mem::size_of::<PageInfo>() == 16);

impl PageInfo {
    /// A free RAM frame: no owner, no references.
    pub const fn free() -> Self {
        Self::with_owner(DOMID_INVALID)
    }

    /// A frame of I/O memory (owned by `DOMID_IO`): mappable by domains with
    /// I/O-memory access, never reference-counted.
    pub const fn io() -> Self {
        Self::with_owner(DOMID_IO)
    }

    const fn with_owner(owner: DomId) -> Self {
        Self {
            count_info: AtomicU32::new(0),
            type_info: AtomicU32::new(0),
            owner: AtomicU32::new(owner as u32),
            extra: AtomicU32::new(0),
        }
    }

    /// The decoded `count_info`.
    pub fn count_info(&self) -> CountInfo {
        CountInfo(self.count_info.load(Ordering::Relaxed))
    }

    /// The decoded `type_info`.
    pub fn type_info(&self) -> TypeInfo {
        TypeInfo(self.type_info.load(Ordering::Relaxed))
    }

    /// The owner.
    pub fn owner(&self) -> DomId {
        self.owner.load(Ordering::Relaxed) as DomId
    }

    /// The total reference count.
    pub fn count(&self) -> u32 {
        self.count_info().count()
    }

    /// The type reference count.
    pub fn type_count(&self) -> u32 {
        self.type_info().count()
    }

    /// The current type; meaningful while [`type_count`](Self::type_count) is
    /// non-zero (at zero it only remembers the last type, for TLB-flush decisions).
    pub fn page_type(&self) -> Option<PageType> {
        self.type_info().page_type()
    }

    /// Whether the frame is free: no owner and no references.
    pub fn is_free(&self) -> bool {
        self.owner() == DOMID_INVALID && self.count_info.load(Ordering::Relaxed) == 0
    }

    /// The progress of a partial table (meaningless unless [`TypeInfo::partial`]).
    pub fn progress(&self) -> Progress {
        Progress::decode(self.extra.load(Ordering::Relaxed))
    }

    pub(crate) fn set_progress(&self, p: Progress) {
        self.extra.store(p.encode(), Ordering::Relaxed);
    }

    pub(crate) fn set_count_info(&self, c: CountInfo) {
        self.count_info.store(c.0, Ordering::Relaxed);
    }

    pub(crate) fn set_type_info(&self, t: TypeInfo) {
        self.type_info.store(t.0, Ordering::Relaxed);
    }

    pub(crate) fn set_owner(&self, owner: DomId) {
        self.owner.store(u32::from(owner), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_info_encoding() {
        let c = CountInfo(0).with_count(3).with_allocated(true);
        assert_eq!(c.0, 0x8000_0003);
        assert_eq!(c.count(), 3);
        assert!(c.allocated());
        assert_eq!(c.with_allocated(false).0, 3);
        assert_eq!(CountInfo(PGC_COUNT_MASK).count(), (1 << 28) - 1);
        let e = c.with_flag(PGC_EXTRA, true).with_flag(PGC_XEN_SHARED, true);
        assert_eq!(e.0, 0xE000_0003);
        assert!(e.extra() && e.xen_shared() && e.allocated());
        assert_eq!(e.with_count(7).count(), 7);
        assert!(e.with_count(7).extra());
        assert!(!e.with_flag(PGC_EXTRA, false).extra());
        assert!(!c.extra() && !c.xen_shared());
    }

    #[test]
    fn type_info_encoding() {
        let t = TypeInfo::new(PageType::L2, 5)
            .with_flag(PGT_VALIDATED, true)
            .with_flag(PGT_PAE_XEN_L2, true);
        assert_eq!(t.0, (2 << 29) | (1 << 27) | (1 << 26) | 5);
        assert_eq!(t.page_type(), Some(PageType::L2));
        assert_eq!(t.count(), 5);
        assert!(t.validated() && t.pae_xen_l2() && !t.pinned());
        assert_eq!(t.with_count(0).count(), 0);
        assert_eq!(TypeInfo(7 << 29).page_type(), None);
        for ty in [
            PageType::None,
            PageType::L1,
            PageType::L2,
            PageType::L3,
            PageType::SegDesc,
            PageType::Writable,
        ] {
            assert_eq!(TypeInfo::new(ty, 0).page_type(), Some(ty));
        }
    }

    #[test]
    fn progress_encoding() {
        let p = Progress {
            nr_validated: 512,
            partial_pte: true,
            held: true,
            error: 255,
            put_pending: true,
        };
        assert_eq!(
            p.encode(),
            512 | (1 << 16) | (1 << 17) | (255 << 18) | (1 << 26)
        );
        assert_eq!(Progress::decode(p.encode()), p);
        assert_eq!(Progress::decode(0), Progress::default());
        assert_eq!(Progress::default().encode(), 0);
        let t = TypeInfo::new(PageType::L3, 1).with_flag(PGT_PARTIAL, true);
        assert!(t.partial() && !t.validated());
        assert_eq!(t.count(), 1);
    }

    #[test]
    fn constructors() {
        let f = PageInfo::free();
        assert!(f.is_free());
        assert_eq!(f.owner(), DOMID_INVALID);
        let io = PageInfo::io();
        assert!(!io.is_free());
        assert_eq!(io.owner(), DOMID_IO);
        assert_eq!(io.count(), 0);
    }
}
