//! Preemptible validation of L2 and L3 tables (Xen's `get_page_type_preemptible`
//! and `PGT_partial`): a pin or base pointer of a big fresh tree validates
//! at most about a [`Budget`] of entries per call and then stops with
//! `-ERESTART`, leaving the tables it was working on *partial* (the engine's
//! invariant 12); calling again with the same arguments resumes where it
//! stopped.
//!
//! What a partial frame is, and who may touch it:
//! * its type (L2 or L3, with the `pae_xen_l2` qualifier if asked so) is
//!   fixed with type count exactly 1, `PGT_partial` set and `PGT_validated`
//!   clear; its [`Progress`] says how many leading entries hold their
//!   references (`nr_validated`) and whether the next entry points at a
//!   partial L2 whose partial state belongs to it (`partial_pte`);
//! * it holds one total and one type reference on itself: those its
//!   requester took, which become the requester's when the validation
//!   completes (or go when it is taken down): a pending pin, base pointer,
//!   L3 entry update or unpin (a *root*), or its parent's partial entry
//!   (`held`);
//! * a root is resumed by the preemptible request of its owner for the same
//!   type ([`Mm::pin_preemptible`], [`Mm::new_baseptr_preemptible`], and for
//!   an L2 [`Mm::mod_l3_entry_preemptible`]); any other
//!   request for a type reference on a partial frame (a second pin while the
//!   first is pending on another VCPU excepted, which simply resumes it) fails
//!   with `-EINVAL`, as for a table being validated: an entry of another table,
//!   a non-preemptible pin or base pointer, a writable mapping, a raw write. A
//!   held frame is only ever resumed by its parent. So no one uses a partial
//!   frame as a complete one;
//! * a validation that fails in a later call drops exactly the references
//!   taken in every call so far (the frame's entries `0..nr_validated`, then
//!   the references on the frame itself) and leaves every count as before
//!   the first call. That taking down is split under the budget as well
//!   (the error is kept in the progress word, `-ERESTART` meanwhile, the
//!   error returned by the call that finishes it);
//! * a domain's teardown ([`Mm::relinquish`]) of a root aborts it, and with
//!   it the held L2 under it: everything is released; the preemptible
//!   teardown ([`Mm::relinquish_domain_preemptible`]) takes it down in
//!   steps instead, as an unpin does.
//!
//! The same partial state serves the other way: [`Mm::unpin_preemptible`]
//! takes down a table whose last type reference was the pin from its top
//! entry down, under the same budget, leaving it partial (entries
//! `0..nr_validated` still holding) with `-ERESTART`. A partial root can be
//! resumed either way: a pin builds it up from `nr_validated`, an unpin
//! takes it down.
//!
//! An `mmu_update` of an L3 entry naming a fresh L2
//! ([`Mm::mmu_update_one_preemptible`]) validates it as a partial root of its
//! own in the same way, and stores the entry once it is complete.
//!
//! And the last type reference of an old table going is split the same way
//! (Xen's `old_guest_table`, [`Mm::put_old_table_preemptible`]): a vcpu's old
//! base pointer (an L3) once CR3 has left it, and the old L2 of an L3 entry
//! an update replaced. The table becomes a partial root marked `put_pending`
//! that only that put resumes; the hypervisor keeps it as the vcpu's pending
//! put until the put is complete.

use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_FIRST_RESERVED, DOMID_XEN, DomId};
use xen_abi::errno::Errno;
use xen_abi::layout::{FIRST_XEN_L2_SLOT, XEN_L3_SLOT};

use crate::access::check_pt_owner;
use crate::engine::Mm;
use crate::machine::Machine;
use crate::ops::EXTENDED_CR3_MFN;
use crate::page_info::{
    PGT_PAE_XEN_L2, PGT_PARTIAL, PGT_PINNED, PGT_VALIDATED, PageInfo, Progress, TypeInfo,
};
use crate::pte::{PAGE_DIRTY, PAGE_PRESENT, check_l3_flags, has_changed, is_present, pte_mfn};
use crate::types::{Caller, PageType, PtLevel};
use crate::validate::{ENTRIES, L3_GUEST_ENTRIES, l2_guest_entries};

/// The work one preemptible call may do, in entry operations: each L2 or L3
/// entry looked at costs 1, and an L2 entry whose L1 is validated on the way
/// costs the L1's [`ENTRIES`] more. The call stops before an entry once the
/// budget is spent, having done at least one entry (so every call makes
/// progress): it does at most the budget plus one L1's worth.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Budget {
    left: u32,
}

impl Budget {
    /// A budget of `entries` entry operations.
    pub const fn new(entries: u32) -> Self {
        Self { left: entries }
    }

    /// What is left.
    pub const fn left(&self) -> u32 {
        self.left
    }

    /// Whether the budget is spent.
    pub const fn exhausted(&self) -> bool {
        self.left == 0
    }

    fn spend(&mut self, n: u32) {
        self.left = self.left.saturating_sub(n);
    }
}

impl<M: Machine> Mm<'_, M> {
    /// [`pin`](Self::pin), with the validation of an L2 or L3 split under
    /// `budget`: `-ERESTART` when the budget ran out first, the table left
    /// partial; call again with the same arguments to go on. Any other error
    /// leaves every count as before the first call.
    pub fn pin_preemptible(
        &mut self,
        mfn: Mfn,
        level: PtLevel,
        caller: &Caller,
        pg_owner: DomId,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let ty = level.page_type().ok_or(Errno::EINVAL)?;
        let owner = check_pt_owner(caller, pg_owner)?;
        let pi = self.info(mfn)?;
        if pi.type_info().pinned() {
            return Err(Errno::EINVAL);
        }
        self.get_root_preemptible(mfn, owner, ty, caller.iomem_access, budget)?;
        pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, true));
        Ok(())
    }

    /// [`new_baseptr`](Self::new_baseptr), with the validation of `new_l3`
    /// split under `budget` as [`pin_preemptible`](Self::pin_preemptible);
    /// `old_l3` keeps its reference until the call that completes.
    pub fn new_baseptr_preemptible(
        &mut self,
        new_l3: Mfn,
        old_l3: Option<Mfn>,
        caller: &Caller,
        extended_cr3: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        if new_l3.0 >= EXTENDED_CR3_MFN && !extended_cr3 {
            return Err(Errno::EINVAL);
        }
        self.get_root_preemptible(
            new_l3,
            caller.domid,
            PageType::L3,
            caller.iomem_access,
            budget,
        )?;
        if let Some(old) = old_l3 {
            self.put_page_and_type(old);
        }
        Ok(())
    }

    /// [`mod_l3_entry`](Self::mod_l3_entry), with a fresh L2 that `new`
    /// names validated under `budget`: `-ERESTART` when the budget ran out
    /// first, the L2 left a partial root and nothing stored (the old entry
    /// stays); calling again with the same arguments goes on.
    ///
    /// Once the entry is stored, the old L2's reference is dropped under what
    /// is left of `budget` ([`put_old_table_preemptible`](Self::put_old_table_preemptible)):
    /// `Ok(Some(l2))` when that did not finish, the entry stored and the old
    /// L2 left a partial root marked `put_pending`, whose put the caller now
    /// owns and must finish (Xen's `old_guest_table`). Only an update of the
    /// caller's own L3 leaves a put pending: a privileged caller's update of
    /// another domain's L3 drops the old L2 at once, so that no domain's
    /// pending put ever holds another domain's frames.
    pub fn mod_l3_entry_preemptible(
        &mut self,
        l3: Mfn,
        index: usize,
        new: u64,
        caller: &Caller,
        preserve_ad: bool,
        budget: &mut Budget,
    ) -> Result<Option<Mfn>, Errno> {
        let (_, owner) = self.table_for_update(l3, index, PageType::L3, caller)?;
        if index >= XEN_L3_SLOT {
            return Err(Errno::EINVAL);
        }
        let old = self.machine.read_pte(l3, index);
        // As mod_l3_entry: PRESERVE_AD keeps only the accessed bit (dirty is
        // reserved in a PDPTE).
        let merged_from = old & !PAGE_DIRTY;
        if is_present(new) {
            check_l3_flags(new)?;
            if !has_changed(old, new, PAGE_PRESENT) {
                self.store_entry(l3, index, merged_from, new, preserve_ad);
                return Ok(None);
            }
            self.get_root_preemptible(
                pte_mfn(new),
                owner,
                PageType::L2,
                caller.iomem_access,
                budget,
            )?;
        }
        self.store_entry(l3, index, merged_from, new, preserve_ad);
        if !is_present(old) {
            return Ok(None);
        }
        let old_l2 = pte_mfn(old);
        if owner != caller.domid {
            self.put_page_from_l3e(old);
            return Ok(None);
        }
        match self.put_old_table_preemptible(old_l2, budget) {
            Ok(()) => Ok(None),
            Err(Errno::ERESTART) => Ok(Some(old_l2)),
            Err(e) => {
                debug_assert!(false, "the put of the old L2 {old_l2} failed: {e:?}");
                Ok(None)
            }
        }
    }

    /// A total and a type reference of `ty` on `mfn` for a pin, a base
    /// pointer or an L3 entry, resuming a partial root of the same type and
    /// owner.
    fn get_root_preemptible(
        &mut self,
        mfn: Mfn,
        owner: DomId,
        ty: PageType,
        iomem: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let t = pi.type_info();
        if t.partial() {
            if pi.owner() != owner
                || t.page_type() != Some(ty)
                || t.pae_xen_l2()
                || pi.progress().held
                || pi.progress().put_pending
            {
                return Err(Errno::EINVAL);
            }
            return self.continue_partial(mfn, iomem, budget);
        }
        self.get_page(mfn, owner)?;
        match self.get_type_preemptible(mfn, ty, false, iomem, false, budget) {
            Err(e) if e != Errno::ERESTART => {
                self.put_page(mfn);
                Err(e)
            }
            r => r,
        }
    }

    /// [`get_type`](Self::get_type) for a caller that holds a total
    /// reference: a fresh L2 or L3 is validated under `budget`, and left
    /// partial (`held` says for whom) with `-ERESTART` if the budget runs
    /// out; the caller then keeps its total reference for the partial state.
    fn get_type_preemptible(
        &mut self,
        mfn: Mfn,
        ty: PageType,
        pae_xen_l2: bool,
        iomem: bool,
        held: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let old = pi.type_info();
        if !matches!(ty, PageType::L2 | PageType::L3) || old.count() > 0 {
            if ty == PageType::L1 && old.count() == 0 {
                budget.spend(ENTRIES as u32);
            }
            return self.get_type(mfn, ty, pae_xen_l2, iomem);
        }
        if pi.owner() == DOMID_XEN || (pae_xen_l2 && ty != PageType::L2) {
            return Err(Errno::EINVAL);
        }
        if old.page_type() != Some(ty) {
            self.machine.flush_tlb_for_retype(mfn);
        }
        pi.set_type_info(
            TypeInfo::new(ty, 1)
                .with_flag(PGT_PAE_XEN_L2, pae_xen_l2)
                .with_flag(PGT_PARTIAL, true),
        );
        pi.set_progress(Progress {
            held,
            ..Progress::default()
        });
        self.validate_step(mfn, iomem, budget)
    }

    /// Resumes the partial `mfn`; if its validation fails, also drops the
    /// total reference its partial state held.
    fn continue_partial(
        &mut self,
        mfn: Mfn,
        iomem: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        match self.validate_step(mfn, iomem, budget) {
            Err(e) if e != Errno::ERESTART => {
                self.put_page(mfn);
                Err(e)
            }
            r => r,
        }
    }

    /// One step of the validation of the partial `mfn`: on success it is
    /// validated (the partial state's references become the requester's); on
    /// `-ERESTART` it stays partial with its progress saved; on failure every
    /// reference its entries took is dropped and its type count is zero again
    /// (the total reference of its partial state is the caller's to drop).
    ///
    /// A failure is itself taken down under the budget: the error is kept in
    /// the progress word and `-ERESTART` returned until no entry holds
    /// anything; the call that finishes returns the error.
    fn validate_step(&mut self, mfn: Mfn, iomem: bool, budget: &mut Budget) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let t = pi.type_info();
        debug_assert!(t.partial() && t.count() == 1);
        let ty = t.page_type().unwrap_or(PageType::None);
        let failed = pi.progress().error;
        let r = match ty {
            _ if failed != 0 => Err(Errno(i32::from(failed))),
            PageType::L2 => self.step_l2(mfn, t.pae_xen_l2(), iomem, budget),
            PageType::L3 => self.step_l3(mfn, iomem, budget),
            _ => Err(Errno::EINVAL),
        };
        if let Err(e) = r
            && e != Errno::ERESTART
        {
            let mut p = pi.progress();
            p.error = u8::try_from(e.0).unwrap_or(Errno::EINVAL.0 as u8);
            pi.set_progress(p);
            self.devalidate_step(mfn, budget)?;
        }
        match r {
            Ok(()) => {
                pi.set_type_info(
                    t.with_flag(PGT_PARTIAL, false)
                        .with_flag(PGT_VALIDATED, true),
                );
                pi.set_progress(Progress::default());
            }
            Err(Errno::ERESTART) => {}
            Err(_) => {
                pi.set_type_info(TypeInfo::new(ty, 0));
                pi.set_progress(Progress::default());
            }
        }
        r
    }

    fn step_l2(
        &mut self,
        mfn: Mfn,
        pae_xen_l2: bool,
        iomem: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let owner = pi.owner();
        let mut p = pi.progress();
        let start = p.nr_validated;
        for j in start..l2_guest_entries(pae_xen_l2) {
            if j > start && budget.exhausted() {
                p.nr_validated = j;
                pi.set_progress(p);
                return Err(Errno::ERESTART);
            }
            let e = self.machine.read_pte(mfn, j);
            let fresh_l1 = is_present(e)
                && self
                    .page_info(pte_mfn(e))
                    .is_some_and(|t| t.type_count() == 0);
            budget.spend(if fresh_l1 { 1 + ENTRIES as u32 } else { 1 });
            if let Err(err) = self.get_page_from_l2e(e, owner, iomem) {
                // Entries 0..j hold: taken down by the caller, under the budget.
                p.nr_validated = j;
                pi.set_progress(p);
                return Err(err);
            }
        }
        if pae_xen_l2 {
            for i in FIRST_XEN_L2_SLOT..ENTRIES {
                let e = self.machine.xen_l2_entry(i);
                self.machine.write_pte(mfn, i, e);
            }
        }
        Ok(())
    }

    fn step_l3(&mut self, mfn: Mfn, iomem: bool, budget: &mut Budget) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let owner = pi.owner();
        let mut p = pi.progress();
        let start = p.nr_validated;
        if start == 0 && !p.partial_pte && !is_present(self.machine.read_pte(mfn, XEN_L3_SLOT)) {
            return Err(Errno::EINVAL);
        }
        for i in start..L3_GUEST_ENTRIES {
            let e = self.machine.read_pte(mfn, i);
            let slot3 = i == XEN_L3_SLOT;
            let mut r = if i == start && p.partial_pte {
                p.partial_pte = false;
                pi.set_progress(p);
                self.continue_partial(pte_mfn(e), iomem, budget)
            } else {
                if i > start && budget.exhausted() {
                    p.nr_validated = i;
                    pi.set_progress(p);
                    return Err(Errno::ERESTART);
                }
                budget.spend(1);
                self.get_page_from_l3e_preemptible(e, owner, slot3, iomem, budget)
            };
            if r.is_ok() && slot3 && is_present(e) {
                // The L2 under slot 3 belongs to exactly one L3.
                let l2 = pte_mfn(e);
                if self.page_info(l2).map_or(0, |pi| pi.type_count()) != 1 {
                    self.put_page_and_type(l2);
                    r = Err(Errno::EINVAL);
                }
            }
            match r {
                Ok(()) => {}
                Err(Errno::ERESTART) => {
                    p.nr_validated = i;
                    p.partial_pte = true;
                    pi.set_progress(p);
                    return Err(Errno::ERESTART);
                }
                Err(err) => {
                    p.nr_validated = i;
                    p.partial_pte = false;
                    pi.set_progress(p);
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// [`get_page_from_l3e`](Self::get_page_from_l3e) under `budget`: on
    /// `-ERESTART` the L2 is left partial, held by this entry, with the
    /// references it took.
    fn get_page_from_l3e_preemptible(
        &mut self,
        e: u64,
        owner: DomId,
        slot3: bool,
        iomem: bool,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        if !is_present(e) {
            return Ok(());
        }
        check_l3_flags(e)?;
        let l2 = pte_mfn(e);
        self.get_page(l2, owner)?;
        match self.get_type_preemptible(l2, PageType::L2, slot3, iomem, true, budget) {
            Err(err) if err != Errno::ERESTART => {
                self.put_page(l2);
                Err(err)
            }
            r => r,
        }
    }

    /// [`unpin`](Self::unpin), with the devalidation of an L2 or L3 whose
    /// last type reference was the pin split under `budget` (Xen's
    /// `put_page_type_preemptible`): `-ERESTART` when the budget ran out
    /// first, the table left partial with its pin gone; calling again (with
    /// the same arguments) goes on taking it down. A partial root of the
    /// caller is taken down this way whatever started it (a pin resumed
    /// instead builds it up again: the partial state is the same).
    pub fn unpin_preemptible(
        &mut self,
        mfn: Mfn,
        caller: &Caller,
        pg_owner: DomId,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let owner = check_pt_owner(caller, pg_owner)?;
        let pi = self.info(mfn)?;
        let t = pi.type_info();
        if pi.owner() != owner {
            return Err(Errno::EINVAL);
        }
        if t.partial() && !pi.progress().held {
            if pi.progress().put_pending {
                // An old table's put owns it (put_old_table_preemptible).
                return Err(Errno::EINVAL);
            }
            return self.devalidate_root(mfn, budget);
        }
        if !t.pinned() {
            return Err(Errno::EINVAL);
        }
        let t = t.with_flag(PGT_PINNED, false);
        let ty = t.page_type().unwrap_or(PageType::None);
        if t.count() > 1 || !matches!(ty, PageType::L2 | PageType::L3) {
            pi.set_type_info(t);
            self.put_page_and_type(mfn);
            return Ok(());
        }
        self.start_devalidation(mfn, t, false);
        self.devalidate_root(mfn, budget)
    }

    /// Drops a total and type reference on the table `mfn` that an old base
    /// pointer (an L3, after CR3 left it) or an old L3 entry (an L2, after an
    /// update replaced it) held, taking the table down under `budget` when
    /// that was its last type reference (Xen's `put_old_guest_table`):
    /// `-ERESTART` when the budget ran out first, the table left a partial
    /// root marked `put_pending`, which no pin, base pointer, entry or unpin
    /// may take over (`-EINVAL`); calling again with the same `mfn` goes on.
    /// The hypervisor keeps `mfn` as the vcpu's pending put until this
    /// returns `Ok`. Any other reference is simply dropped.
    pub fn put_old_table_preemptible(
        &mut self,
        mfn: Mfn,
        budget: &mut Budget,
    ) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let t = pi.type_info();
        if t.partial() {
            if !pi.progress().put_pending || pi.progress().held {
                return Err(Errno::EINVAL);
            }
            return self.devalidate_root(mfn, budget);
        }
        let ty = t.page_type().unwrap_or(PageType::None);
        if t.count() > 1 || !matches!(ty, PageType::L2 | PageType::L3) || !t.validated() {
            self.put_page_and_type(mfn);
            return Ok(());
        }
        self.start_devalidation(mfn, t, false);
        let mut p = pi.progress();
        p.put_pending = true;
        pi.set_progress(p);
        self.devalidate_root(mfn, budget)
    }

    /// Turns the validated `mfn` (type word `t`, its last type reference
    /// about to go) into a partial table with every entry still holding.
    fn start_devalidation(&self, mfn: Mfn, t: TypeInfo, held: bool) {
        let Some(pi) = self.page_info(mfn) else {
            return;
        };
        let entries = match t.page_type() {
            Some(PageType::L2) => l2_guest_entries(t.pae_xen_l2()),
            _ => L3_GUEST_ENTRIES,
        };
        pi.set_type_info(
            t.with_flag(PGT_VALIDATED, false)
                .with_flag(PGT_PARTIAL, true),
        );
        pi.set_progress(Progress {
            nr_validated: entries,
            held,
            ..Progress::default()
        });
    }

    /// One step of taking the partial root `mfn` down; done, its own
    /// references go too.
    fn devalidate_root(&mut self, mfn: Mfn, budget: &mut Budget) -> Result<(), Errno> {
        self.devalidate_step(mfn, budget)?;
        self.finish_devalidation(mfn);
        Ok(())
    }

    /// The partial `mfn` holds nothing through its entries any more: drops
    /// the type and total reference its partial state held.
    fn finish_devalidation(&mut self, mfn: Mfn) {
        if let Some(pi) = self.page_info(mfn) {
            let ty = pi.page_type().unwrap_or(PageType::None);
            pi.set_type_info(TypeInfo::new(ty, 0));
            pi.set_progress(Progress::default());
            self.put_page(mfn);
        }
    }

    /// Drops the references of the partial `mfn`'s entries from the top
    /// down, the partial L2 its partial entry holds first, under `budget`:
    /// `-ERESTART` with the progress saved (at least one entry done), or
    /// `Ok` with no entry holding anything.
    fn devalidate_step(&mut self, mfn: Mfn, budget: &mut Budget) -> Result<(), Errno> {
        let pi = self.info(mfn)?;
        let ty = pi.page_type().unwrap_or(PageType::None);
        let mut p = pi.progress();
        let mut done_any = false;
        if p.partial_pte {
            let child = pte_mfn(self.machine.read_pte(mfn, p.nr_validated));
            self.devalidate_step(child, budget)?;
            self.finish_devalidation(child);
            p.partial_pte = false;
            pi.set_progress(p);
            done_any = true;
        }
        let mut i = p.nr_validated;
        while i > 0 {
            if done_any && budget.exhausted() {
                p.nr_validated = i;
                pi.set_progress(p);
                return Err(Errno::ERESTART);
            }
            done_any = true;
            let e = self.machine.read_pte(mfn, i - 1);
            let target = self
                .page_info(pte_mfn(e))
                .filter(|_| is_present(e))
                .map(PageInfo::type_info);
            let last = target.is_some_and(|tt| tt.count() == 1);
            match ty {
                PageType::L2 => {
                    budget.spend(if last { 1 + ENTRIES as u32 } else { 1 });
                    self.put_page_from_l2e(e);
                }
                PageType::L3 if last => {
                    budget.spend(1);
                    // The L2's last reference: take it down as a partial
                    // table held by this entry.
                    let l2 = pte_mfn(e);
                    self.start_devalidation(l2, target.unwrap_or_default(), true);
                    p.nr_validated = i - 1;
                    p.partial_pte = true;
                    pi.set_progress(p);
                    self.devalidate_step(l2, budget)?;
                    self.finish_devalidation(l2);
                    p.partial_pte = false;
                    pi.set_progress(p);
                }
                _ => {
                    budget.spend(1);
                    self.put_page_from_l3e(e);
                }
            }
            i -= 1;
        }
        p.nr_validated = 0;
        pi.set_progress(p);
        Ok(())
    }

    /// Drops the references entries `0..n` of the table `mfn` of type `ty` hold.
    fn drop_entries(&mut self, mfn: Mfn, ty: PageType, n: usize) {
        for i in (0..n).rev() {
            let e = self.machine.read_pte(mfn, i);
            match ty {
                PageType::L2 => self.put_page_from_l2e(e),
                PageType::L3 => self.put_page_from_l3e(e),
                _ => {}
            }
        }
    }

    /// Abandons the partial validation of `mfn` (and of the partial L2 its
    /// partial entry holds): drops every reference its entries took and the
    /// references of its partial state on itself.
    pub(crate) fn abort_partial(&mut self, mfn: Mfn) {
        let Some(pi) = self.page_info(mfn) else {
            return;
        };
        let t = pi.type_info();
        if !t.partial() {
            debug_assert!(false, "abort_partial on {mfn}, which is not partial");
            return;
        }
        let p = pi.progress();
        let ty = t.page_type().unwrap_or(PageType::None);
        if p.partial_pte {
            let child = pte_mfn(self.machine.read_pte(mfn, p.nr_validated));
            self.abort_partial(child);
        }
        self.drop_entries(mfn, ty, p.nr_validated);
        pi.set_type_info(TypeInfo::new(ty, 0));
        pi.set_progress(Progress::default());
        self.put_page(mfn);
    }
}

/// Frames of other owners the teardown scan passes over per budget unit.
pub const TEARDOWN_SCAN_STRIDE: u32 = 64;

/// Where a preemptible teardown of a domain's frames stands
/// ([`Mm::relinquish_domain_preemptible`], Xen's `domain_relinquish_resources`
/// progress): the pass over the frame table, the next frame, and (in the
/// second pass) the frames found still held so far. The zero value starts
/// a teardown.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Teardown {
    pass: u8,
    next: u64,
    left: u64,
}

impl Teardown {
    /// Whether some of the teardown is done (it was preempted at least once,
    /// or it finished and found frames still held by others).
    pub const fn started(&self) -> bool {
        self.pass != 0 || self.next != 0
    }
}

impl<M: Machine> Mm<'_, M> {
    /// Domain teardown of every frame `owner` owns among `0..nr_frames`, as
    /// [`relinquish`](Self::relinquish) of each in two passes over the frame
    /// table, split under `budget` (Xen's preemptible
    /// `domain_relinquish_resources`): the pins go, taking their tables down
    /// in steps (a pinned L2 or L3 whose last type reference it was is left
    /// a partial root when the budget runs out), partial roots are taken
    /// down in steps too (whatever started them: a pending pin, unpin, base
    /// pointer, L3 entry or put), then the allocation references go.
    ///
    /// `-ERESTART` when the budget ran out first, `progress` saved: call
    /// again with it to go on. `Ok(left)` when done: `left` frames are still
    /// `owner`'s, held by others (the caller may start a new teardown later
    /// with a zero `progress`). `freed` hears of each frame a relinquish
    /// freed (not of frames freed on the way by a table going). Each frame
    /// of `owner` costs 1, each [`TEARDOWN_SCAN_STRIDE`] others 1, and a
    /// table going its entries as for an unpin.
    pub fn relinquish_domain_preemptible(
        &mut self,
        owner: DomId,
        nr_frames: u64,
        progress: &mut Teardown,
        budget: &mut Budget,
        mut freed: impl FnMut(Mfn),
    ) -> Result<u64, Errno> {
        if owner == DOMID_XEN || owner >= DOMID_FIRST_RESERVED {
            return Err(Errno::EINVAL);
        }
        let nr_frames = nr_frames.min(self.frames.len() as u64);
        let mut done_any = false;
        let mut skipped = 0u32;
        while progress.pass < 2 {
            while progress.next < nr_frames {
                if done_any && budget.exhausted() {
                    return Err(Errno::ERESTART);
                }
                let mfn = Mfn(progress.next);
                if self.page_info(mfn).is_some_and(|pi| pi.owner() == owner) {
                    done_any = true;
                    budget.spend(1);
                    if self.relinquish_step(mfn, owner, budget)? {
                        freed(mfn);
                    } else if progress.pass == 1 {
                        progress.left += 1;
                    }
                } else {
                    skipped += 1;
                    if skipped == TEARDOWN_SCAN_STRIDE {
                        skipped = 0;
                        done_any = true;
                        budget.spend(1);
                    }
                }
                progress.next += 1;
            }
            progress.pass += 1;
            progress.next = 0;
        }
        let left = progress.left;
        *progress = Teardown::default();
        Ok(left)
    }

    /// [`relinquish`](Self::relinquish) of one frame with its tables taken
    /// down under `budget`: `-ERESTART` with the frame left a partial root
    /// (its pin or partial state gone, nothing else), to be called again.
    fn relinquish_step(
        &mut self,
        mfn: Mfn,
        owner: DomId,
        budget: &mut Budget,
    ) -> Result<bool, Errno> {
        let pi = self.info(mfn)?;
        if pi.owner() != owner {
            return Err(Errno::EINVAL);
        }
        let t = pi.type_info();
        if t.partial() && !pi.progress().held {
            self.devalidate_root(mfn, budget)?;
        } else if t.pinned() {
            let t = t.with_flag(PGT_PINNED, false);
            let ty = t.page_type().unwrap_or(PageType::None);
            if t.count() == 1 && t.validated() && matches!(ty, PageType::L2 | PageType::L3) {
                self.start_devalidation(mfn, t, false);
                self.devalidate_root(mfn, budget)?;
            } else {
                if t.count() == 1 && ty == PageType::L1 {
                    budget.spend(ENTRIES as u32);
                }
                pi.set_type_info(t);
                self.put_page_and_type(mfn);
            }
        }
        if pi.is_free() {
            // The pin or partial state held its last reference.
            return Ok(true);
        }
        // What is left is plain relinquish: the allocation reference.
        self.relinquish(mfn, owner)
    }
}
