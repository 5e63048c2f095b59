//! Updates of one entry of a validated table (Xen's `mod_l1_entry`,
//! `mod_l2_entry`, `mod_l3_entry`).
//!
//! Each update checks the new entry, takes its references, stores it, and only
//! then drops the old entry's references; if anything fails nothing changes.
//! When the new entry maps the same frame with the same presence (and, for L1,
//! the same RW bit) as the old one, only the flags are checked: no reference
//! changes hands (Xen's fast path, used for A/D and cache-bit updates).

use hv_core::addr::Mfn;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::layout::{FIRST_XEN_L2_SLOT, XEN_L3_SLOT};

use crate::access::{check_pg_owner, may_modify};
use crate::engine::Mm;
use crate::machine::Machine;
use crate::page_info::TypeInfo;
use crate::pte::{
    PAGE_ACCESSED, PAGE_DIRTY, PAGE_PRESENT, PAGE_RW, check_l1_flags, check_l2_flags,
    check_l3_flags, has_changed, is_present,
};
use crate::types::{Caller, PageType};
use crate::validate::ENTRIES;

/// What a grant mapping's L1 entry maps (see [`Mm::install_grant_l1e`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantPte {
    /// The granted frame.
    pub frame: Mfn,
    /// Map it read-only.
    pub readonly: bool,
    /// Reachable from ring 3 (`GNTMAP_application_map`).
    pub user: bool,
}

impl<M: Machine> Mm<'_, M> {
    /// Writes entry `index` of the validated L1 `l1` (`update_va_mapping`, or
    /// `mmu_update` on an L1). `pg_owner` (FD, `DOMID_SELF` for the caller) is
    /// the domain that must own a RAM frame the new entry maps; `DOMID_IO`
    /// allows I/O frames only. With `preserve_ad` the old entry's A/D bits are
    /// kept.
    ///
    /// `-EINVAL`: `l1` not a validated L1 the caller may change, `index` out of
    /// range, forbidden flags, a frame not owned by `pg_owner`, a RW mapping of
    /// a frame that cannot be writable (a page table or descriptor page), an I/O
    /// frame without I/O-memory access, or a count overflow. `-ESRCH`: FD names
    /// another domain and the caller is not privileged.
    pub fn mod_l1_entry(
        &mut self,
        l1: Mfn,
        index: usize,
        new: u64,
        caller: &Caller,
        pg_owner: DomId,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let pg_owner = check_pg_owner(caller, pg_owner)?;
        self.table_for_update(l1, index, PageType::L1, caller)?;
        let old = self.machine.read_pte(l1, index);
        if is_present(new) {
            check_l1_flags(new, self.config.nx_supported, caller.iomem_access)?;
            if !has_changed(old, new, PAGE_PRESENT | PAGE_RW) {
                self.store_entry(l1, index, old, new, preserve_ad);
                return Ok(());
            }
            self.get_page_from_l1e(new, pg_owner, caller.iomem_access)?;
        }
        self.store_entry(l1, index, old, new, preserve_ad);
        self.put_page_from_l1e(old);
        Ok(())
    }

    /// A grant mapping (XEN-PV-ABI.md §9): makes entry `index` of the
    /// caller's validated L1 `l1` (whatever it mapped goes, as in Xen's
    /// `create_grant_va_mapping`) map `frame` of the granting domain
    /// `granter` — read-only if `readonly`, with the `_PAGE_USER` bit if
    /// `user` — once the grant code has authorised it. The references are the
    /// ones any mapping of a granter's frame takes (a total reference, and a
    /// writable type reference unless read-only), so the frame stays alive
    /// while mapped and clearing the entry drops them as for any other.
    ///
    /// `-EINVAL`: `l1` not a validated L1 of the caller, `index` out of range,
    /// or a frame that is not `granter`'s or cannot be mapped writable.
    pub fn install_grant_l1e(
        &mut self,
        l1: Mfn,
        index: usize,
        grant: GrantPte,
        caller: &Caller,
        granter: DomId,
    ) -> Result<(), Errno> {
        let GrantPte {
            frame,
            readonly,
            user,
        } = grant;
        self.table_for_update(l1, index, PageType::L1, caller)?;
        let old = self.machine.read_pte(l1, index);
        let mut new = (frame.0 << 12) | PAGE_PRESENT | PAGE_ACCESSED;
        if !readonly {
            new |= PAGE_RW | PAGE_DIRTY;
        }
        if user {
            new |= crate::pte::PAGE_USER;
        }
        check_l1_flags(new, self.config.nx_supported, false)?;
        self.get_page_from_l1e(new, granter, false)?;
        self.store_entry(l1, index, old, new, false);
        self.put_page_from_l1e(old);
        Ok(())
    }

    /// Removes the grant mapping of `frame` at entry `index` of the caller's
    /// L1 `l1`, dropping its references. `-EINVAL` if the entry does not map
    /// `frame`.
    pub fn remove_grant_l1e(
        &mut self,
        l1: Mfn,
        index: usize,
        frame: Mfn,
        caller: &Caller,
    ) -> Result<(), Errno> {
        self.table_for_update(l1, index, PageType::L1, caller)?;
        let old = self.machine.read_pte(l1, index);
        if !is_present(old) || crate::pte::pte_mfn(old) != frame {
            return Err(Errno::EINVAL);
        }
        self.store_entry(l1, index, old, 0, false);
        self.put_page_from_l1e(old);
        Ok(())
    }

    /// Writes entry `index` of the validated L2 `l2`. The new entry's frame must
    /// be (or validate as) an L1 of the table's owner.
    ///
    /// `-EINVAL`: `l2` not a validated L2 the caller may change, `index` out of
    /// range or one of the hypervisor slots 428–511 of the L2 under L3 slot 3,
    /// forbidden flags (PSE among them), or a frame that is not such an L1.
    pub fn mod_l2_entry(
        &mut self,
        l2: Mfn,
        index: usize,
        new: u64,
        caller: &Caller,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let (t, owner) = self.table_for_update(l2, index, PageType::L2, caller)?;
        if t.pae_xen_l2() && index >= FIRST_XEN_L2_SLOT {
            return Err(Errno::EINVAL);
        }
        let old = self.machine.read_pte(l2, index);
        if is_present(new) {
            check_l2_flags(new, self.config.nx_supported)?;
            if !has_changed(old, new, PAGE_PRESENT) {
                self.store_entry(l2, index, old, new, preserve_ad);
                return Ok(());
            }
            self.get_page_from_l2e(new, owner, caller.iomem_access)?;
        }
        self.store_entry(l2, index, old, new, preserve_ad);
        self.put_page_from_l2e(old);
        Ok(())
    }

    /// Writes entry `index` (0–2) of the validated L3 `l3`. The new entry's frame
    /// must be (or validate as) an L2 of the table's owner.
    ///
    /// `-EINVAL`: `l3` not a validated L3 the caller may change, `index` ≥ 3
    /// (slot 3 is fixed once validated; entries 4–511 are not used), forbidden
    /// flags, or a frame that is not such an L2.
    ///
    /// The CPU caches the four L3 entries when CR3 is loaded: the hypervisor
    /// must reload CR3 on every CPU running on `l3` after a successful update.
    pub fn mod_l3_entry(
        &mut self,
        l3: Mfn,
        index: usize,
        new: u64,
        caller: &Caller,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let (_, owner) = self.table_for_update(l3, index, PageType::L3, caller)?;
        if index >= XEN_L3_SLOT {
            return Err(Errno::EINVAL);
        }
        let old = self.machine.read_pte(l3, index);
        // PRESERVE_AD keeps only the accessed bit here: dirty is reserved in
        // a PDPTE, and a non-present old entry may hold any bits, so merging
        // it would slip a reserved bit past `check_l3_flags`.
        let merged_from = old & !PAGE_DIRTY;
        if is_present(new) {
            check_l3_flags(new)?;
            if !has_changed(old, new, PAGE_PRESENT) {
                self.store_entry(l3, index, merged_from, new, preserve_ad);
                return Ok(());
            }
            self.get_page_from_l3e(new, owner, false, caller.iomem_access)?;
        }
        self.store_entry(l3, index, merged_from, new, preserve_ad);
        self.put_page_from_l3e(old);
        Ok(())
    }

    /// Checks that `mfn` is a validated table of type `ty` that `caller` may
    /// change and that `index` is in range; returns its type word and owner.
    pub(crate) fn table_for_update(
        &self,
        mfn: Mfn,
        index: usize,
        ty: PageType,
        caller: &Caller,
    ) -> Result<(TypeInfo, DomId), Errno> {
        let pi = self.info(mfn)?;
        let t = pi.type_info();
        let owner = pi.owner();
        if index >= ENTRIES
            || t.count() == 0
            || !t.validated()
            || t.page_type() != Some(ty)
            || !may_modify(caller, owner)
        {
            return Err(Errno::EINVAL);
        }
        Ok((t, owner))
    }

    pub(crate) fn store_entry(
        &mut self,
        table: Mfn,
        index: usize,
        old: u64,
        new: u64,
        preserve_ad: bool,
    ) {
        let val = if preserve_ad {
            new | (old & (PAGE_ACCESSED | PAGE_DIRTY))
        } else {
            new
        };
        self.machine.write_pte(table, index, val);
    }
}
