//! The page-type and reference-count engine: ownership, references and types.
//!
//! # Invariants
//!
//! Every machine frame described by the frame table has an owner, a *total*
//! reference count (`count_info`) and a *type* with its own *type* count
//! (`type_info`); see `page_info.rs` for the encoding.
//!
//! 1. **Ownership.** A free frame has owner `DOMID_INVALID` and every count and
//!    flag at zero. [`Mm::assign`] gives a free frame to a domain together with
//!    the *allocation reference* (`PGC_allocated`, one total reference). The
//!    owner never changes while the total count is non-zero; when the last
//!    total reference goes the frame is free again (and
//!    [`Machine::page_freed`] is told). Frames owned by `DOMID_IO`, and machine
//!    frames beyond the frame table, are I/O memory: they are never counted.
//! 2. **Total vs type count.** A total reference keeps the frame allocated to
//!    its owner; a type reference additionally keeps it of one type. Every type
//!    reference is taken together with a total reference (Xen's
//!    `get_page_and_type`), so `total >= type count (+ 1 if allocated)`.
//! 3. **One type at a time.** While the type count is non-zero the type is
//!    fixed; a request for another type fails with `-EINVAL`. The type changes
//!    only on a 0 → 1 transition. Types are none, L1, L2, L3, seg_desc and
//!    writable; an L2 under L3 slot 3 carries the `pae_xen_l2` qualifier, which
//!    is part of its type (such an L2 cannot be used elsewhere at the same time).
//! 4. **Validation on the first type reference.** When a page-table (or
//!    descriptor) type goes 0 → 1 the frame's contents are validated; each
//!    present entry takes the references described in 6. On success the frame
//!    is marked *validated*; on failure every reference taken so far is dropped
//!    and the frame's type word is restored. A validated table with type count
//!    > 0 holds exactly the references of its present entries, no more, no less.
//! 5. **Devalidation on the last type reference.** When the type count of a
//!    validated table goes 1 → 0 it drops exactly the references its entries
//!    held, and loses the validated bit. Only the engine writes the entries of a
//!    validated table (through `mod_l*_entry`), keeping 4 and 5 in step; nothing
//!    can write it raw, because a raw write needs the `writable` type.
//! 6. **What each entry holds.**
//!    * a present L1 entry: a total reference on its RAM frame, plus a
//!      `writable` type reference if it is RW (so a page table or descriptor
//!      page can only be mapped read-only); nothing for I/O frames;
//!    * a present L2 entry: a total + `L1` type reference on its frame;
//!    * a present L3 entry (slots 0–3): a total + `L2` type reference; slot 3
//!      with the `pae_xen_l2` qualifier, and that L2's type count must be
//!      exactly 1 (one L3 only);
//!    * L2 slots 428–511 of a `pae_xen_l2` L2 are the hypervisor's and hold
//!      nothing; L3 entries 4–511 are ignored.
//!
//!    Type references only go from a higher level to a lower one, so they form
//!    no cycle and tearing down the roots frees everything.
//! 7. **Pinning.** A pin holds one total + type reference, recorded by the
//!    `pinned` flag (set only while the type count is non-zero). A base pointer
//!    (a VCPU's CR3) likewise holds one total + `L3` type reference, recorded
//!    by the hypervisor.
//! 8. **Failure changes nothing.** Every operation either succeeds or leaves the
//!    counts of every frame as they were (the type of a frame whose type count
//!    is zero is only a hint for TLB flushing and may change).
//! 9. **Accounting.** A frame assigned to an ordinary domain with
//!    [`Mm::assign`] is counted in that domain's `tot_pages` until it is free
//!    again; frames given with [`Mm::assign_extra`] (`PGC_extra`) never are.
//!    See [`crate::account`].
//! 10. **Oxen's frames.** A `DOMID_XEN` frame takes no reference from anyone
//!     but Oxen, unless Oxen shared it ([`Mm::share_xen_frame`],
//!     `PGC_xen_shared`); a shared one takes total references (read-only
//!     mappings) but never a type, so no guest maps it writable, pins it or
//!     uses it as a descriptor page.
//! 11. **Counts never wrap.** A reference that would overflow a count is
//!     refused with `-EINVAL`; dropping a reference that does not exist is an
//!     engine bug (a debug assertion; ignored in release builds).
//! 12. **Partial tables** (`PGT_partial`, see [`crate::partial`]). A
//!     preemptible validation (or devalidation, by a preemptible unpin) of
//!     an L2 or L3 that runs out of budget leaves the table *partial*: type count exactly 1, not validated, not pinned,
//!     and a progress word (`nr_validated`, `partial_pte`, `held`). Entries
//!     `0..nr_validated` hold the references of 6, as in a validated table;
//!     if `partial_pte`, entry `nr_validated` points at a partial L2 that is
//!     `held` by it; no other entry holds anything. The partial table holds
//!     one total and the one type reference on itself (its requester's: a
//!     pending pin, base pointer or L3 entry, or a vcpu's pending put of an
//!     old table (`put_pending`), for a root; its parent's partial entry
//!     for a held one). Nothing else takes a type reference on a partial
//!     table: every request fails with `-EINVAL` (as for a table being
//!     validated), except the preemptible pin (or base pointer, or for an L2
//!     the L3 entry update) of its owner for the same type on a root, which
//!     resumes its validation, and the
//!     preemptible unpin of its owner, which resumes taking it down (a
//!     `put_pending` root only by its put,
//!     [`Mm::put_old_table_preemptible`]); a domain's preemptible teardown
//!     ([`Mm::relinquish_domain_preemptible`]) takes any of its roots down.
//!     Completed validation turns it into a validated table whose references
//!     are the requester's; completed devalidation drops its own references
//!     too; failure, in whichever call, restores 8 for the whole request; relinquishing a root aborts it
//!     (and its held L2), dropping everything. A frame that is not partial
//!     has a zero progress word.
//!
//! [`Mm::audit`] recomputes every count from 1–7 and 12 and compares, and
//! checks 9, 10 and the shape of 12.
//!
//! Error values follow Xen 4.1: ownership and type failures are `-EINVAL`
//! (Xen's `get_page`/`get_page_type` failures), an unknown `mmu_update`
//! command is `-ENOSYS`, and acting for another domain without privilege is
//! `-ESRCH` (Xen's `get_pg_owner` failure).

use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_FIRST_RESERVED, DOMID_INVALID, DOMID_IO, DOMID_XEN, DomId};
use xen_abi::errno::Errno;

use crate::account::DomainPages;
use crate::machine::Machine;
use crate::page_info::{
    CountInfo, PGC_COUNT_MASK, PGC_EXTRA, PGC_XEN_SHARED, PGT_COUNT_MASK, PGT_PAE_XEN_L2,
    PGT_PINNED, PGT_VALIDATED, PageInfo, TypeInfo,
};
use crate::types::{MmConfig, PageType};

/// The engine: the frame table, the machine behind it, and the settings.
///
/// The caller serialises every call (one CPU, or one lock around the engine).
pub struct Mm<'f, M: Machine> {
    pub(crate) frames: &'f [PageInfo],
    /// The page accounts, by domid (see [`crate::account`]).
    pub(crate) accounts: &'f [DomainPages],
    /// The machine the engine reads and writes frames through.
    pub machine: M,
    pub(crate) config: MmConfig,
}

impl<'f, M: Machine> Mm<'f, M> {
    /// An engine over `frames` (indexed by MFN), with the page accounts of
    /// domids `0..accounts.len()`.
    pub fn new(
        frames: &'f [PageInfo],
        accounts: &'f [DomainPages],
        machine: M,
        config: MmConfig,
    ) -> Self {
        Self {
            frames,
            accounts,
            machine,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> MmConfig {
        self.config
    }

    /// The frame table.
    pub fn frames(&self) -> &'f [PageInfo] {
        self.frames
    }

    /// The frame-table entry of `mfn`, if the table describes it (i.e. it is RAM).
    pub fn page_info(&self, mfn: Mfn) -> Option<&'f PageInfo> {
        usize::try_from(mfn.0).ok().and_then(|i| self.frames.get(i))
    }

    /// The owner of `mfn`: `None` if the frame is not in the frame table or is free.
    pub fn owner(&self, mfn: Mfn) -> Option<DomId> {
        self.page_info(mfn)
            .map(PageInfo::owner)
            .filter(|&o| o != DOMID_INVALID)
    }

    /// Whether `mfn` is a free RAM frame.
    pub fn is_free(&self, mfn: Mfn) -> bool {
        self.page_info(mfn).is_some_and(PageInfo::is_free)
    }

    /// Whether `mfn` is I/O memory: beyond the frame table or owned by `DOMID_IO`.
    /// Such frames are mapped without references.
    pub fn is_io_frame(&self, mfn: Mfn) -> bool {
        self.page_info(mfn).is_none_or(|pi| pi.owner() == DOMID_IO)
    }

    pub(crate) fn info(&self, mfn: Mfn) -> Result<&'f PageInfo, Errno> {
        self.page_info(mfn).ok_or(Errno::EINVAL)
    }

    // ---- ownership and allocation ----

    /// Gives the free frame `mfn` to `owner` with its allocation reference
    /// (`PGC_allocated`, total count 1), counted in `owner`'s `tot_pages`
    /// (Xen's `assign_pages`) unless `owner` is `DOMID_XEN`.
    ///
    /// `owner` must be an ordinary domain with an account, or `DOMID_XEN`
    /// (`-EINVAL`); the frame must be RAM (`-EINVAL`) and free (`-EBUSY`); the
    /// domain must be below its `max_pages` (`-E2BIG`).
    pub fn assign(&self, mfn: Mfn, owner: DomId) -> Result<(), Errno> {
        self.assign_with(mfn, owner, false)
    }

    /// Gives the free frame `mfn` to the ordinary domain `owner` for Oxen's
    /// own use with it (shared_info, grant-table frames): as
    /// [`assign`](Self::assign), but `PGC_extra`: never counted in
    /// `tot_pages` (nor limited by `max_pages`), and the domain cannot give
    /// it back with [`release`](Self::release); [`relinquish`](Self::relinquish)
    /// drops it. `-EINVAL` for `DOMID_XEN` or a domain without an account.
    pub fn assign_extra(&self, mfn: Mfn, owner: DomId) -> Result<(), Errno> {
        if owner == DOMID_XEN {
            return Err(Errno::EINVAL);
        }
        self.assign_with(mfn, owner, true)
    }

    fn assign_with(&self, mfn: Mfn, owner: DomId, extra: bool) -> Result<(), Errno> {
        let account = match owner {
            DOMID_XEN => None,
            o if o >= DOMID_FIRST_RESERVED => return Err(Errno::EINVAL),
            o => Some(self.account(o).ok_or(Errno::EINVAL)?),
        };
        let pi = self.info(mfn)?;
        if !pi.is_free() || pi.type_count() != 0 {
            return Err(Errno::EBUSY);
        }
        if !extra && let Some(a) = account {
            a.charge()?;
        }
        pi.set_owner(owner);
        pi.set_type_info(TypeInfo::new(PageType::None, 0));
        pi.set_count_info(
            CountInfo(0)
                .with_allocated(true)
                .with_flag(PGC_EXTRA, extra)
                .with_count(1),
        );
        Ok(())
    }

    /// Shares Oxen's frame `mfn` read-only with privileged domains (Xen's
    /// `share_xen_page_with_privileged_guests(XENSHARE_readonly)`): they may
    /// then map it read-only with `DOMID_XEN` as the owner (FD). `-EINVAL` if
    /// the frame is not `DOMID_XEN`'s or is referenced beyond its allocation.
    pub fn share_xen_frame(&self, mfn: Mfn) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let c = pi.count_info();
        if pi.owner() != DOMID_XEN || !c.allocated() || c.count() != 1 || pi.type_count() != 0 {
            return Err(Errno::EINVAL);
        }
        pi.set_count_info(c.with_flag(PGC_XEN_SHARED, true));
        Ok(())
    }

    /// Drops `owner`'s allocation reference on `mfn` (the domain gives memory
    /// back: `decrease_reservation`). Returns whether the frame is now free; if
    /// other references remain it stays owned, and counted in `tot_pages`,
    /// until the last one goes.
    ///
    /// `-EINVAL` if `mfn` is not RAM, not `owner`'s, not allocated, or a
    /// `PGC_extra` frame (Oxen's to take back, at teardown).
    pub fn release(&mut self, mfn: Mfn, owner: DomId) -> Result<bool, Errno> {
        if self.info(mfn)?.count_info().extra() {
            return Err(Errno::EINVAL);
        }
        self.drop_allocation(mfn, owner)
    }

    fn drop_allocation(&mut self, mfn: Mfn, owner: DomId) -> Result<bool, Errno> {
        let pi = self.info(mfn)?;
        let c = pi.count_info();
        if pi.owner() != owner || owner == DOMID_IO || !c.allocated() {
            return Err(Errno::EINVAL);
        }
        pi.set_count_info(c.with_allocated(false));
        self.put_page(mfn);
        Ok(pi.is_free())
    }

    /// Domain teardown of one frame (or taking back a frame Oxen gave): drops
    /// its pin (if any) or abandons its partial validation (if a root, see
    /// [`crate::partial`]), and then the allocation reference (if held), `PGC_extra`
    /// frames included. Returns whether the frame is now free.
    ///
    /// `-EINVAL` if `mfn` is not RAM or not `owner`'s.
    pub fn relinquish(&mut self, mfn: Mfn, owner: DomId) -> Result<bool, Errno> {
        let pi = self.info(mfn)?;
        if pi.owner() != owner || owner == DOMID_INVALID || owner == DOMID_IO {
            return Err(Errno::EINVAL);
        }
        // A partial root is abandoned (with the L2 it holds); a held partial
        // L2 goes with its root.
        if pi.type_info().partial() && !pi.progress().held {
            self.abort_partial(mfn);
        }
        if pi.type_info().pinned() {
            pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, false));
            self.put_page_and_type(mfn);
        }
        if pi.count_info().allocated() {
            return self.drop_allocation(mfn, owner);
        }
        Ok(pi.is_free())
    }

    // ---- Xen's primitives ----

    /// Takes a total reference on `mfn`, which must be RAM, owned by `owner` and
    /// in use (`-EINVAL` otherwise, or if the count would overflow). Oxen's
    /// own frames (`DOMID_XEN`) take references only if shared
    /// ([`share_xen_frame`](Self::share_xen_frame)): as in Xen, where Xen's
    /// unshared pages have no owner a guest could name.
    pub fn get_page(&self, mfn: Mfn, owner: DomId) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let c = pi.count_info();
        if owner == DOMID_INVALID || pi.owner() != owner {
            return Err(Errno::EINVAL);
        }
        if owner == DOMID_XEN && !c.xen_shared() {
            return Err(Errno::EINVAL);
        }
        if c.count() == 0 || c.count() == PGC_COUNT_MASK {
            return Err(Errno::EINVAL);
        }
        pi.set_count_info(c.with_count(c.count() + 1));
        Ok(())
    }

    /// Drops a total reference on `mfn`. The last one frees the frame and
    /// takes it out of its owner's `tot_pages` (unless `PGC_extra`).
    pub fn put_page(&mut self, mfn: Mfn) {
        let Some(pi) = self.page_info(mfn) else {
            debug_assert!(false, "put_page on {mfn}, which is not RAM");
            return;
        };
        let c = pi.count_info();
        debug_assert!(c.count() > 0, "put_page on {mfn} with no references");
        match c.count() {
            0 => {}
            1 => {
                debug_assert!(!c.allocated(), "{mfn}: allocation reference not counted");
                debug_assert_eq!(
                    pi.type_count(),
                    0,
                    "{mfn}: type references outlive the frame"
                );
                let owner = pi.owner();
                pi.set_type_info(TypeInfo::new(PageType::None, 0));
                pi.set_owner(DOMID_INVALID);
                pi.set_count_info(CountInfo(0));
                if !c.extra()
                    && let Some(a) = self.account(owner)
                {
                    a.uncharge();
                }
                self.machine.page_freed(mfn);
            }
            n => pi.set_count_info(c.with_count(n - 1)),
        }
    }

    /// Takes a type reference of type `ty` on `mfn`; the caller must already
    /// hold a total reference for it (see [`get_page_and_type`](Self::get_page_and_type)).
    ///
    /// The 0 → 1 transition of a page-table or descriptor type validates the
    /// contents, with no I/O-memory privilege (use the `mmuext`-level calls for
    /// guest-requested references). `-EINVAL` on a type conflict, a failed
    /// validation, `PageType::None`, or a count overflow.
    pub fn get_page_type(&mut self, mfn: Mfn, ty: PageType) -> Result<(), Errno> {
        self.get_type(mfn, ty, false, false)
    }

    /// Drops a type reference on `mfn`; the last one devalidates a page table
    /// (drops every reference its entries held). The total reference that came
    /// with it is not dropped.
    pub fn put_page_type(&mut self, mfn: Mfn) {
        let Some(pi) = self.page_info(mfn) else {
            debug_assert!(false, "put_page_type on {mfn}, which is not RAM");
            return;
        };
        let t = pi.type_info();
        debug_assert!(
            t.count() > 0,
            "put_page_type on {mfn} with no type references"
        );
        debug_assert!(!t.partial(), "put_page_type on the partial {mfn}");
        match t.count() {
            0 => {}
            1 => {
                debug_assert!(
                    !t.pinned(),
                    "{mfn}: pinned with its last type reference gone"
                );
                // Keep the type as a TLB-flush hint; drop the count and all flags.
                let ty = t.page_type().unwrap_or(PageType::None);
                pi.set_type_info(TypeInfo::new(ty, 0));
                if t.validated() {
                    self.devalidate(mfn, ty, t.pae_xen_l2());
                }
            }
            n => pi.set_type_info(t.with_count(n - 1)),
        }
    }

    /// A total reference and a type reference (the unit in which page-table
    /// entries, pins and base pointers hold frames).
    pub fn get_page_and_type(&mut self, mfn: Mfn, owner: DomId, ty: PageType) -> Result<(), Errno> {
        self.get_page_and_type_as(mfn, owner, ty, false, false)
    }

    /// Drops what [`get_page_and_type`](Self::get_page_and_type) took.
    pub fn put_page_and_type(&mut self, mfn: Mfn) {
        self.put_page_type(mfn);
        self.put_page(mfn);
    }

    pub(crate) fn get_page_and_type_as(
        &mut self,
        mfn: Mfn,
        owner: DomId,
        ty: PageType,
        pae_xen_l2: bool,
        iomem: bool,
    ) -> Result<(), Errno> {
        self.get_page(mfn, owner)?;
        if let Err(e) = self.get_type(mfn, ty, pae_xen_l2, iomem) {
            self.put_page(mfn);
            return Err(e);
        }
        Ok(())
    }

    /// The type machinery behind [`get_page_type`](Self::get_page_type).
    /// `pae_xen_l2` qualifies an L2 request; `iomem` is the I/O-memory privilege
    /// under which a validation runs.
    pub(crate) fn get_type(
        &mut self,
        mfn: Mfn,
        ty: PageType,
        pae_xen_l2: bool,
        iomem: bool,
    ) -> Result<(), Errno> {
        if ty == PageType::None || (pae_xen_l2 && ty != PageType::L2) {
            return Err(Errno::EINVAL);
        }
        let pi = self.info(mfn)?;
        if pi.owner() == DOMID_XEN {
            // Oxen's frames are never typed for a guest: a shared one is read-only.
            return Err(Errno::EINVAL);
        }
        let old = pi.type_info();
        let count = old.count();
        if count > 0 {
            if old.page_type() != Some(ty) || old.pae_xen_l2() != pae_xen_l2 {
                return Err(Errno::EINVAL);
            }
            // A table being validated is not usable yet (cannot happen with the
            // level structure, but never hand out an unchecked table).
            if ty.needs_validation() && !old.validated() {
                return Err(Errno::EINVAL);
            }
            if count == PGT_COUNT_MASK {
                return Err(Errno::EINVAL);
            }
            pi.set_type_info(old.with_count(count + 1));
            return Ok(());
        }
        debug_assert!(!old.pinned() && !old.validated());
        let new = TypeInfo::new(ty, 1).with_flag(PGT_PAE_XEN_L2, pae_xen_l2);
        if !ty.needs_validation() {
            pi.set_type_info(new);
            return Ok(());
        }
        if old.page_type() != Some(ty) {
            self.machine.flush_tlb_for_retype(mfn);
        }
        // Count 1, not yet validated: visible as such to any nested request.
        pi.set_type_info(new);
        match self.validate(mfn, ty, pae_xen_l2, iomem) {
            Ok(()) => {
                pi.set_type_info(new.with_flag(PGT_VALIDATED, true));
                Ok(())
            }
            Err(e) => {
                pi.set_type_info(old);
                Err(e)
            }
        }
    }
}
