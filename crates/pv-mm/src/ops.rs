//! The guest-visible operations: one `mmu_update` request, the page-table
//! `mmuext_op` commands (pin, unpin, new base pointer, clear and copy page),
//! and the page walk behind `update_va_mapping`.
//!
//! TLB flushes, CR3 loads, batching, preemption and copying requests from the
//! guest are the hypervisor's; see the crate documentation.

use hv_core::addr::{Maddr, Mfn};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::layout::HYPERVISOR_VIRT_START;

use crate::access::{check_pg_owner, check_pt_owner};
use crate::engine::Mm;
use crate::machine::Machine;
use crate::page_info::PGT_PINNED;
use crate::partial::Budget;
use crate::pte::{PAGE_PRESENT, PAGE_PSE, PAGE_RW, PAGE_USER, is_present, pte_mfn};
use crate::types::{Caller, PageType, PtLevel};

// TODO(lead): take from xen_abi::mm once it is exported.
/// `mmu_update` command (`ptr & 3`): validated write of a page-table entry.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `mmu_update` command: M2P[`ptr >> 12`] = `val`.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
/// `mmu_update` command: as normal, keeping the entry's current A/D bits.
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
/// The command bits of `mmu_update.ptr`.
pub const MMU_CMD_MASK: u64 = 3;

/// An L3 at or above this MFN (4 GiB) needs `VMASST_TYPE_pae_extended_cr3`.
pub const EXTENDED_CR3_MFN: u64 = 1 << 20;

impl<M: Machine> Mm<'_, M> {
    /// One `mmu_update` request, with `foreigndom` already split into
    /// `pt_owner` (PFD, owner of the frame holding the entry) and `pg_owner`
    /// (FD, owner of data frames new L1 entries map); either may be `DOMID_SELF`.
    ///
    /// * `MMU_NORMAL_PT_UPDATE` / `MMU_PT_UPDATE_PRESERVE_AD`: `ptr & !3` is the
    ///   machine address of an 8-byte entry (`-EINVAL` if misaligned) in a frame
    ///   owned by `pt_owner`. In a validated L1/L2/L3 the entry is updated with
    ///   [`mod_l1_entry`](Self::mod_l1_entry) & co. Any other frame is ordinary
    ///   memory: it takes a `writable` type reference for the store (so a frame
    ///   that is a page table or descriptor page cannot be written raw:
    ///   `-EINVAL`) and `val` is stored as is.
    /// * `MMU_MACHPHYS_UPDATE`: M2P[`ptr >> 12`] = `val` (a PFN, truncated to 32
    ///   bits); the frame must be owned by `pg_owner` and take a reference
    ///   (`-EINVAL`: not an unshared frame of Oxen's).
    /// * `3` (`MMU_PT_UPDATE_NO_TRANSLATE`, later Xen): `-ENOSYS`.
    pub fn mmu_update_one(
        &mut self,
        req_ptr: u64,
        req_val: u64,
        caller: &Caller,
        pt_owner: DomId,
        pg_owner: DomId,
    ) -> Result<(), Errno> {
        self.mmu_update_with(req_ptr, req_val, caller, pt_owner, pg_owner, None)
            .map(|_| ())
    }

    /// [`mmu_update_one`](Self::mmu_update_one), with an L3 entry naming a
    /// fresh L2 validated under `budget`
    /// ([`mod_l3_entry_preemptible`](Self::mod_l3_entry_preemptible)):
    /// `-ERESTART` when it ran out first, nothing stored; call again with the
    /// same request to go on. `Ok(Some(l2))`: done, but the old L2 the entry
    /// held is still being taken down, a put the caller must finish with
    /// [`put_old_table_preemptible`](Self::put_old_table_preemptible) (see
    /// [`mod_l3_entry_preemptible`](Self::mod_l3_entry_preemptible)).
    pub fn mmu_update_one_preemptible(
        &mut self,
        req_ptr: u64,
        req_val: u64,
        caller: &Caller,
        pt_owner: DomId,
        pg_owner: DomId,
        budget: &mut Budget,
    ) -> Result<Option<Mfn>, Errno> {
        self.mmu_update_with(req_ptr, req_val, caller, pt_owner, pg_owner, Some(budget))
    }

    fn mmu_update_with(
        &mut self,
        req_ptr: u64,
        req_val: u64,
        caller: &Caller,
        pt_owner: DomId,
        pg_owner: DomId,
        budget: Option<&mut Budget>,
    ) -> Result<Option<Mfn>, Errno> {
        match req_ptr & MMU_CMD_MASK {
            cmd @ (MMU_NORMAL_PT_UPDATE | MMU_PT_UPDATE_PRESERVE_AD) => {
                let pt_owner = check_pt_owner(caller, pt_owner)?;
                let pg_owner = check_pg_owner(caller, pg_owner)?;
                let addr = Maddr(req_ptr & !MMU_CMD_MASK);
                if !addr.0.is_multiple_of(8) {
                    return Err(Errno::EINVAL);
                }
                let (mfn, index) = (addr.mfn(), (addr.page_offset() / 8) as usize);
                let pi = self.info(mfn)?;
                if pi.owner() != pt_owner || pi.count() == 0 {
                    return Err(Errno::EINVAL);
                }
                let preserve_ad = cmd == MMU_PT_UPDATE_PRESERVE_AD;
                let t = pi.type_info();
                if t.count() > 0 && t.validated() {
                    match t.page_type() {
                        Some(PageType::L1) => {
                            return self
                                .mod_l1_entry(mfn, index, req_val, caller, pg_owner, preserve_ad)
                                .map(|()| None);
                        }
                        Some(PageType::L2) => {
                            return self
                                .mod_l2_entry(mfn, index, req_val, caller, preserve_ad)
                                .map(|()| None);
                        }
                        Some(PageType::L3) => {
                            return match budget {
                                Some(b) => self.mod_l3_entry_preemptible(
                                    mfn,
                                    index,
                                    req_val,
                                    caller,
                                    preserve_ad,
                                    b,
                                ),
                                None => self
                                    .mod_l3_entry(mfn, index, req_val, caller, preserve_ad)
                                    .map(|()| None),
                            };
                        }
                        _ => {}
                    }
                }
                self.get_page_and_type(mfn, pt_owner, PageType::Writable)?;
                self.machine.write_pte(mfn, index, req_val);
                self.put_page_and_type(mfn);
                Ok(None)
            }
            MMU_MACHPHYS_UPDATE => {
                let pg_owner = check_pg_owner(caller, pg_owner)?;
                let mfn = Maddr(req_ptr).mfn();
                // As Xen's get_page_from_pagenr: the frame must be one FD may
                // reference (not Oxen's unless shared).
                self.get_page(mfn, pg_owner)?;
                self.machine.set_m2p(mfn, req_val as u32);
                self.put_page(mfn);
                Ok(None)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// `MMUEXT_PIN_L{1,2,3}_TABLE`: validates `mfn` (owned by `pg_owner`, i.e.
    /// FD, `DOMID_SELF` for the caller) as a table of `level` and holds a type
    /// reference until [`unpin`](Self::unpin).
    ///
    /// `-EINVAL`: `PtLevel::L4`, already pinned, not owned by `pg_owner`, a type
    /// conflict or a failed validation. `-ESRCH`: a foreign `pg_owner` from an
    /// unprivileged caller.
    pub fn pin(
        &mut self,
        mfn: Mfn,
        level: PtLevel,
        caller: &Caller,
        pg_owner: DomId,
    ) -> Result<(), Errno> {
        let ty = level.page_type().ok_or(Errno::EINVAL)?;
        let owner = check_pt_owner(caller, pg_owner)?;
        let pi = self.info(mfn)?;
        if pi.type_info().pinned() {
            return Err(Errno::EINVAL);
        }
        self.get_page_and_type_as(mfn, owner, ty, false, caller.iomem_access)?;
        pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, true));
        Ok(())
    }

    /// `MMUEXT_UNPIN_TABLE`: drops the pin of `mfn` (owned by `pg_owner`); if that
    /// was the last type reference the table is devalidated.
    ///
    /// `-EINVAL`: not pinned or not owned by `pg_owner`. `-ESRCH`: a foreign
    /// `pg_owner` from an unprivileged caller.
    pub fn unpin(&mut self, mfn: Mfn, caller: &Caller, pg_owner: DomId) -> Result<(), Errno> {
        let owner = check_pt_owner(caller, pg_owner)?;
        let pi = self.info(mfn)?;
        if pi.owner() != owner || !pi.type_info().pinned() {
            return Err(Errno::EINVAL);
        }
        pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, false));
        self.put_page_and_type(mfn);
        Ok(())
    }

    /// `MMUEXT_NEW_BASEPTR` (and a VCPU context's CR3): takes an `L3` type
    /// reference on `new_l3`, which must be the caller's and validate as an L3,
    /// then drops the one the previous base pointer `old_l3` held.
    ///
    /// `-EINVAL`: `new_l3` at or above 4 GiB (MFN ≥ 0x100000) without
    /// `extended_cr3` (`VMASST_TYPE_pae_extended_cr3`), not the caller's, or not
    /// a valid L3. On failure `old_l3` keeps its reference.
    pub fn new_baseptr(
        &mut self,
        new_l3: Mfn,
        old_l3: Option<Mfn>,
        caller: &Caller,
        extended_cr3: bool,
    ) -> Result<(), Errno> {
        if new_l3.0 >= EXTENDED_CR3_MFN && !extended_cr3 {
            return Err(Errno::EINVAL);
        }
        self.get_page_and_type_as(
            new_l3,
            caller.domid,
            PageType::L3,
            false,
            caller.iomem_access,
        )?;
        if let Some(old) = old_l3 {
            self.put_page_and_type(old);
        }
        Ok(())
    }

    /// `MMUEXT_CLEAR_PAGE`: zeroes `mfn`, which must be the caller's and able to
    /// take the `writable` type (`-EINVAL` otherwise).
    pub fn clear_page(&mut self, mfn: Mfn, caller: &Caller) -> Result<(), Errno> {
        self.get_page_and_type(mfn, caller.domid, PageType::Writable)?;
        self.machine.clear_frame(mfn);
        self.put_page_and_type(mfn);
        Ok(())
    }

    /// `MMUEXT_COPY_PAGE`: copies `src` (the caller's, any type) over `dst` (the
    /// caller's, able to take the `writable` type). `-EINVAL` otherwise.
    pub fn copy_page(&mut self, dst: Mfn, src: Mfn, caller: &Caller) -> Result<(), Errno> {
        self.get_page(src, caller.domid)?;
        if let Err(e) = self.get_page_and_type(dst, caller.domid, PageType::Writable) {
            self.put_page(src);
            return Err(e);
        }
        self.machine.copy_frame(dst, src);
        self.put_page_and_type(dst);
        self.put_page(src);
        Ok(())
    }

    /// The L1 entry that maps `va` in the address space of the L3 `l3` (the
    /// caller's current base pointer), for `update_va_mapping`: the L1 frame and
    /// the index in it. Pass the result to [`mod_l1_entry`](Self::mod_l1_entry).
    ///
    /// `-EINVAL`: `va` in the hypervisor hole (≥ `HYPERVISOR_VIRT_START`), `l3`
    /// not a validated L3, or the walk meeting a non-present entry or a table
    /// that is not validated.
    pub fn l1_slot_for_va(&self, l3: Mfn, va: u32) -> Result<(Mfn, usize), Errno> {
        if va >= HYPERVISOR_VIRT_START {
            return Err(Errno::EINVAL);
        }
        self.require_validated(l3, PageType::L3)?;
        let l3e = self.machine.read_pte(l3, (va >> 30) as usize);
        if !is_present(l3e) {
            return Err(Errno::EINVAL);
        }
        let l2 = pte_mfn(l3e);
        self.require_validated(l2, PageType::L2)?;
        let l2e = self.machine.read_pte(l2, ((va >> 21) & 0x1FF) as usize);
        if !is_present(l2e) || l2e & PAGE_PSE != 0 {
            return Err(Errno::EINVAL);
        }
        let l1 = pte_mfn(l2e);
        self.require_validated(l1, PageType::L1)?;
        Ok((l1, ((va >> 12) & 0x1FF) as usize))
    }

    /// Whether user-mode (ring 3) code may access `va` — write to it if
    /// `write` — in the address space of the validated L3 `l3`: the L2 and
    /// L1 entries present with `_PAGE_USER` (and `_PAGE_RW` for a write), as
    /// the MMU checks them. For accesses Oxen performs on behalf of ring 3
    /// (4 GiB-segment emulation), which its own supervisor-mode copy would
    /// not check.
    pub fn user_access_ok(&self, l3: Mfn, va: u32, write: bool) -> bool {
        let Ok((l1, index)) = self.l1_slot_for_va(l3, va) else {
            return false;
        };
        let l2 = pte_mfn(self.machine.read_pte(l3, (va >> 30) as usize));
        let l2e = self.machine.read_pte(l2, ((va >> 21) & 0x1FF) as usize);
        let l1e = self.machine.read_pte(l1, index);
        let need = PAGE_PRESENT | PAGE_USER | if write { PAGE_RW } else { 0 };
        l2e & need == need && l1e & need == need
    }

    fn require_validated(&self, mfn: Mfn, ty: PageType) -> Result<(), Errno> {
        let t = self.info(mfn)?.type_info();
        if t.count() > 0 && t.validated() && t.page_type() == Some(ty) {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }
}
