//! Validation and devalidation of whole tables (Xen's `alloc_l*_table` /
//! `free_l*_table`), and the references one entry takes and drops
//! (`get_page_from_l*e` / `put_page_from_l*e`).
//!
//! Entries of a table are checked against the table's *owner*: L1 entries map
//! frames of the table's owner (or I/O frames, with I/O-memory privilege), L2
//! and L3 entries point at tables of the same owner. Only direct updates of an
//! L1 entry (`mod_l1_entry`) name another owner for the data frame (FD).

use hv_core::addr::Mfn;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::layout::{FIRST_XEN_L2_SLOT, XEN_L3_SLOT};

use crate::engine::Mm;
use crate::machine::Machine;
use crate::pte::{
    check_l1_flags, check_l2_flags, check_l3_flags, is_present, is_writable, pte_mfn,
};
use crate::types::PageType;

/// Entries per table.
pub const ENTRIES: usize = 512;
/// L3 entries a 32-bit PAE guest uses; the rest of an L3 page is ignored.
pub const L3_GUEST_ENTRIES: usize = 4;

/// How many leading entries of an L2 belong to the guest.
pub(crate) const fn l2_guest_entries(pae_xen_l2: bool) -> usize {
    if pae_xen_l2 {
        FIRST_XEN_L2_SLOT
    } else {
        ENTRIES
    }
}

impl<M: Machine> Mm<'_, M> {
    /// Validates `mfn` as `ty`; on failure every reference taken is dropped again.
    pub(crate) fn validate(
        &mut self,
        mfn: Mfn,
        ty: PageType,
        pae_xen_l2: bool,
        iomem: bool,
    ) -> Result<(), Errno> {
        let owner = self.info(mfn)?.owner();
        match ty {
            PageType::L1 => self.validate_entries(
                mfn,
                ENTRIES,
                |mm, e| mm.get_page_from_l1e(e, owner, iomem),
                Self::put_page_from_l1e,
            ),
            PageType::L2 => {
                let n = l2_guest_entries(pae_xen_l2);
                self.validate_entries(
                    mfn,
                    n,
                    |mm, e| mm.get_page_from_l2e(e, owner, iomem),
                    Self::put_page_from_l2e,
                )?;
                if pae_xen_l2 {
                    for i in FIRST_XEN_L2_SLOT..ENTRIES {
                        let e = self.machine.xen_l2_entry(i);
                        self.machine.write_pte(mfn, i, e);
                    }
                }
                Ok(())
            }
            PageType::L3 => self.validate_l3(mfn, owner, iomem),
            PageType::SegDesc => {
                if self.machine.check_seg_desc_page(mfn) {
                    Ok(())
                } else {
                    Err(Errno::EINVAL)
                }
            }
            PageType::None | PageType::Writable => Ok(()),
        }
    }

    /// Takes the references of entries `0..n` of `mfn` with `get`; if an entry
    /// fails, drops the ones already taken with `put`.
    fn validate_entries(
        &mut self,
        mfn: Mfn,
        n: usize,
        mut get: impl FnMut(&mut Self, u64) -> Result<(), Errno>,
        put: fn(&mut Self, u64),
    ) -> Result<(), Errno> {
        for i in 0..n {
            let e = self.machine.read_pte(mfn, i);
            if let Err(err) = get(self, e) {
                self.devalidate_entries(mfn, i, put);
                return Err(err);
            }
        }
        Ok(())
    }

    fn validate_l3(&mut self, mfn: Mfn, owner: DomId, iomem: bool) -> Result<(), Errno> {
        if !is_present(self.machine.read_pte(mfn, XEN_L3_SLOT)) {
            return Err(Errno::EINVAL);
        }
        for i in 0..L3_GUEST_ENTRIES {
            let e = self.machine.read_pte(mfn, i);
            let slot3 = i == XEN_L3_SLOT;
            let mut r = self.get_page_from_l3e(e, owner, slot3, iomem);
            if r.is_ok() && slot3 {
                // The L2 under slot 3 belongs to exactly one L3.
                let l2 = pte_mfn(e);
                if self.page_info(l2).map_or(0, |pi| pi.type_count()) != 1 {
                    self.put_page_and_type(l2);
                    r = Err(Errno::EINVAL);
                }
            }
            if let Err(err) = r {
                self.devalidate_entries(mfn, i, Self::put_page_from_l3e);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Drops every reference a validated `mfn` of type `ty` holds.
    pub(crate) fn devalidate(&mut self, mfn: Mfn, ty: PageType, pae_xen_l2: bool) {
        match ty {
            PageType::L1 => self.devalidate_entries(mfn, ENTRIES, Self::put_page_from_l1e),
            PageType::L2 => {
                self.devalidate_entries(mfn, l2_guest_entries(pae_xen_l2), Self::put_page_from_l2e)
            }
            PageType::L3 => self.devalidate_entries(mfn, L3_GUEST_ENTRIES, Self::put_page_from_l3e),
            PageType::None | PageType::SegDesc | PageType::Writable => {}
        }
    }

    fn devalidate_entries(&mut self, mfn: Mfn, n: usize, put: fn(&mut Self, u64)) {
        for i in (0..n).rev() {
            let e = self.machine.read_pte(mfn, i);
            put(self, e);
        }
    }

    // ---- one entry ----

    /// References for a new L1 entry mapping a frame that `pg_owner` must own.
    pub(crate) fn get_page_from_l1e(
        &mut self,
        e: u64,
        pg_owner: DomId,
        iomem: bool,
    ) -> Result<(), Errno> {
        if !is_present(e) {
            return Ok(());
        }
        check_l1_flags(e, self.config.nx_supported, iomem)?;
        let mfn = pte_mfn(e);
        if self.is_io_frame(mfn) {
            return if iomem { Ok(()) } else { Err(Errno::EINVAL) };
        }
        self.get_page(mfn, pg_owner)?;
        if is_writable(e)
            && let Err(err) = self.get_type(mfn, PageType::Writable, false, iomem)
        {
            self.put_page(mfn);
            return Err(err);
        }
        Ok(())
    }

    /// Drops what [`get_page_from_l1e`](Self::get_page_from_l1e) took for `e`.
    pub(crate) fn put_page_from_l1e(&mut self, e: u64) {
        let mfn = pte_mfn(e);
        if !is_present(e) || self.is_io_frame(mfn) {
            return;
        }
        if is_writable(e) {
            self.put_page_and_type(mfn);
        } else {
            self.put_page(mfn);
        }
    }

    /// References for a new L2 entry: its frame must be (or validate as) an L1
    /// of `owner`. An L2 entry pointing at an L2 (Xen's "linear" mapping) fails
    /// on the type: Oxen does not support linear page tables.
    pub(crate) fn get_page_from_l2e(
        &mut self,
        e: u64,
        owner: DomId,
        iomem: bool,
    ) -> Result<(), Errno> {
        if !is_present(e) {
            return Ok(());
        }
        check_l2_flags(e, self.config.nx_supported)?;
        self.get_page_and_type_as(pte_mfn(e), owner, PageType::L1, false, iomem)
    }

    /// Drops what [`get_page_from_l2e`](Self::get_page_from_l2e) took for `e`.
    pub(crate) fn put_page_from_l2e(&mut self, e: u64) {
        if is_present(e) {
            self.put_page_and_type(pte_mfn(e));
        }
    }

    /// References for a new L3 entry: its frame must be (or validate as) an L2 of
    /// `owner`, qualified `pae_xen_l2` for slot 3.
    pub(crate) fn get_page_from_l3e(
        &mut self,
        e: u64,
        owner: DomId,
        slot3: bool,
        iomem: bool,
    ) -> Result<(), Errno> {
        if !is_present(e) {
            return Ok(());
        }
        check_l3_flags(e)?;
        self.get_page_and_type_as(pte_mfn(e), owner, PageType::L2, slot3, iomem)
    }

    /// Drops what [`get_page_from_l3e`](Self::get_page_from_l3e) took for `e`.
    pub(crate) fn put_page_from_l3e(&mut self, e: u64) {
        if is_present(e) {
            self.put_page_and_type(pte_mfn(e));
        }
    }
}
