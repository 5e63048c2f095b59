//! PV MMU interface: `mmu_update`, `mmuext_op`, `update_va_mapping`, PAE entry
//! bits, the per-level disallow masks and the CR3 encoding (XEN-PV-ABI.md §7).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::XenPfn;

// ---- PAE page-table entries (§7.1) ----

/// Present.
pub const PAGE_PRESENT: u64 = 1 << 0;
/// Writable.
pub const PAGE_RW: u64 = 1 << 1;
/// User-accessible.
pub const PAGE_USER: u64 = 1 << 2;
/// Page write-through.
pub const PAGE_PWT: u64 = 1 << 3;
/// Page cache disable.
pub const PAGE_PCD: u64 = 1 << 4;
/// Accessed.
pub const PAGE_ACCESSED: u64 = 1 << 5;
/// Dirty.
pub const PAGE_DIRTY: u64 = 1 << 6;
/// Page size (2 MiB) in an L2 entry.
pub const PAGE_PSE: u64 = 1 << 7;
/// PAT bit in an L1 entry (same bit as PSE).
pub const PAGE_PAT: u64 = 1 << 7;
/// Global.
pub const PAGE_GLOBAL: u64 = 1 << 8;
/// First bit available to the guest.
pub const PAGE_AVAIL0: u64 = 1 << 9;
/// Second bit available to the guest.
pub const PAGE_AVAIL1: u64 = 1 << 10;
/// Third bit available to the guest.
pub const PAGE_AVAIL2: u64 = 1 << 11;
/// The three guest-available bits (9–11).
pub const PAGE_AVAIL: u64 = PAGE_AVAIL0 | PAGE_AVAIL1 | PAGE_AVAIL2;
/// No-execute (allowed only if the CPU supports NX).
pub const PAGE_NX: u64 = 1 << 63;

/// Physical address width Xen on 32-bit supports.
pub const PADDR_BITS: u32 = 44;
/// Frame-number bits of an entry (12–43).
pub const PTE_FRAME_MASK: u64 = ((1 << PADDR_BITS) - 1) & !0xFFF;
/// Bits 44–62, which must be 0 in every present entry.
pub const PTE_HIGH_RESERVED_MASK: u64 = !PTE_FRAME_MASK & !0xFFF & !PAGE_NX;
/// The 12 low flag bits.
pub const PTE_FLAGS_LOW_MASK: u64 = 0xFFF;

/// L1: bits that must be 0 when P=1 (PWT, PCD, PAT, G, bits 44–62). NX is checked
/// separately (allowed when the CPU supports it). Domains with I/O privileges may
/// set the bits in [`L1_IO_PRIV_ALLOWED`].
pub const L1_DISALLOW_MASK: u64 =
    PAGE_PWT | PAGE_PCD | PAGE_PAT | PAGE_GLOBAL | PTE_HIGH_RESERVED_MASK;
/// L1 cache-attribute bits a domain with I/O memory/port/PCI privileges may set.
pub const L1_IO_PRIV_ALLOWED: u64 = PAGE_PWT | PAGE_PCD | PAGE_PAT;
/// L2: as L1, but PSE (bit 7) is permitted — subject to the superpage rule (Xen
/// booted with `allowsuperpage` and a 512-aligned MFN).
pub const L2_DISALLOW_MASK: u64 = PAGE_PWT | PAGE_PCD | PAGE_GLOBAL | PTE_HIGH_RESERVED_MASK;
/// L3: everything except P, the available bits and the frame: RW, US, PWT, PCD, A,
/// D, PS, G, NX and bits 44–63.
pub const L3_DISALLOW_MASK: u64 = !(PAGE_PRESENT | PAGE_AVAIL | PTE_FRAME_MASK);
/// The L3 mask as the digest states it, on Xen's 32-bit "flag word"
/// (see [`pte_flag_word`]).
pub const L3_DISALLOW_FLAG_WORD: u32 = 0xFFFF_F1FE;
/// MFN alignment of a 2 MiB superpage L2 entry.
pub const SUPERPAGE_MFN_ALIGN: u32 = 512;

/// Xen's 32-bit flag word of a PAE entry: the low 12 bits in bits 0–11 and entry
/// bits 52–63 in bits 12–23.
pub const fn pte_flag_word(pte: u64) -> u32 {
    (((pte >> 40) as u32) & !0xFFF) | (pte as u32 & 0xFFF)
}

/// The MFN an entry points at.
pub const fn pte_mfn(pte: u64) -> u64 {
    (pte & PTE_FRAME_MASK) >> 12
}

/// An entry for `mfn` with `flags`.
pub const fn pte_from_mfn(mfn: u64, flags: u64) -> u64 {
    ((mfn << 12) & PTE_FRAME_MASK) | flags
}

/// Whether an entry is present.
pub const fn pte_present(pte: u64) -> bool {
    pte & PAGE_PRESENT != 0
}

// ---- PAE geometry (§7.1) ----

/// Entries in an L1 table.
pub const L1_PAGETABLE_ENTRIES: usize = 512;
/// Entries in an L2 table.
pub const L2_PAGETABLE_ENTRIES: usize = 512;
/// Entries of an L3 that a 32-bit PAE guest uses.
pub const L3_PAGETABLE_ENTRIES: usize = 4;
/// Virtual-address shift of an L1 entry (4 KiB).
pub const L1_PAGETABLE_SHIFT: u32 = 12;
/// Virtual-address shift of an L2 entry (2 MiB).
pub const L2_PAGETABLE_SHIFT: u32 = 21;
/// Virtual-address shift of an L3 entry (1 GiB).
pub const L3_PAGETABLE_SHIFT: u32 = 30;
/// Size in bytes of a page-table entry.
pub const PTE_SIZE: usize = 8;

/// L1 index of `va`.
pub const fn l1_table_offset(va: u32) -> usize {
    ((va >> L1_PAGETABLE_SHIFT) & 0x1FF) as usize
}

/// L2 index of `va`.
pub const fn l2_table_offset(va: u32) -> usize {
    ((va >> L2_PAGETABLE_SHIFT) & 0x1FF) as usize
}

/// L3 index of `va`.
pub const fn l3_table_offset(va: u32) -> usize {
    (va >> L3_PAGETABLE_SHIFT) as usize
}

/// Whether L2 index `l2` under L3 slot `l3` belongs to the hypervisor (slots
/// 428–511 of the L2 under L3 slot 3).
pub const fn is_xen_l2_slot(l3: usize, l2: usize) -> bool {
    l3 == crate::layout::XEN_L3_SLOT && l2 >= crate::layout::FIRST_XEN_L2_SLOT
}

// ---- CR3 encoding (§7.5) ----

/// Rotates an MFN into the "CR3" form exchanged with Xen (`xen_pfn_to_cr3`), so
/// MFNs ≥ 2^20 fit in 32 bits.
pub const fn xen_pfn_to_cr3(pfn: XenPfn) -> u32 {
    pfn.rotate_left(12)
}

/// Inverse of [`xen_pfn_to_cr3`] (`xen_cr3_to_pfn`).
pub const fn xen_cr3_to_pfn(cr3: u32) -> XenPfn {
    cr3.rotate_right(12)
}

// ---- mmu_update (§7.2) ----

/// `ptr & 3`: validated write of a page-table entry (or plain store).
pub const MMU_NORMAL_PT_UPDATE: u32 = 0;
/// `ptr & 3`: set M2P entry `ptr >> 12` to `val` (a PFN).
pub const MMU_MACHPHYS_UPDATE: u32 = 1;
/// `ptr & 3`: as normal, preserving the current A/D bits.
pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 2;
/// `ptr & 3`: (later Xen) no-translate update.
pub const MMU_PT_UPDATE_NO_TRANSLATE: u32 = 3;
/// The command bits of `mmu_update.ptr`.
pub const MMU_CMD_MASK: u64 = 3;

/// `struct mmu_update` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct MmuUpdate {
    /// Machine address of the target, with the command in bits 0–1.
    pub ptr: u64,
    /// New value.
    pub val: u64,
}
assert_layout!(MmuUpdate, size = 16, align = 4, ptr = 0, val = 8);

impl MmuUpdate {
    /// A request `cmd` on machine address `addr` (whose low 2 bits are dropped).
    pub const fn new(cmd: u32, addr: u64, val: u64) -> Self {
        Self {
            ptr: (addr & !MMU_CMD_MASK) | (cmd as u64 & MMU_CMD_MASK),
            val,
        }
    }

    /// The command (`ptr & 3`).
    pub const fn cmd(&self) -> u32 {
        (self.ptr & MMU_CMD_MASK) as u32
    }

    /// The machine address (`ptr & ~3`).
    pub const fn addr(&self) -> u64 {
        self.ptr & !MMU_CMD_MASK
    }
}

/// `foreigndom` bits 0–15: FD, owner of data frames mapped by new L1 entries.
pub const fn foreigndom_fd(foreigndom: u32) -> DomId {
    foreigndom as DomId
}

/// `foreigndom` bits 16–31: PFD + 1, owner of the page tables modified; `None`
/// (encoded 0) means the caller.
pub const fn foreigndom_pfd(foreigndom: u32) -> Option<DomId> {
    match foreigndom >> 16 {
        0 => None,
        p => Some((p - 1) as DomId),
    }
}

/// Encodes a `foreigndom` argument.
pub const fn foreigndom(fd: DomId, pfd: Option<DomId>) -> u32 {
    let hi = match pfd {
        Some(p) => p as u32 + 1,
        None => 0,
    };
    (hi << 16) | fd as u32
}

// ---- mmuext_op (§7.3) ----

/// Pin an L1 table.
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
/// Pin an L2 table.
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
/// Pin an L3 table (the top-level pin for PAE guests).
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
/// Pin an L4 table (rejected for 32-bit guests).
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// Drop a pin.
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// Switch CR3 to an L3.
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// Flush the local TLB.
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// Invalidate one page locally.
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
/// Flush the TLBs of the VCPUs in a mask.
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
/// Invalidate one page on the VCPUs in a mask.
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
/// Flush the TLBs of all VCPUs of the domain.
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
/// Invalidate one page on all VCPUs.
pub const MMUEXT_INVLPG_ALL: u32 = 11;
/// WBINVD (I/O privilege).
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
/// Set the LDT.
pub const MMUEXT_SET_LDT: u32 = 13;
/// Set the user base pointer (x86-64 only).
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// Zero a page.
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
/// Copy a page.
pub const MMUEXT_COPY_PAGE: u32 = 17;
/// WBINVD on all CPUs (I/O privilege).
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
/// Mark a superpage.
pub const MMUEXT_MARK_SUPER: u32 = 19;
/// Unmark a superpage.
pub const MMUEXT_UNMARK_SUPER: u32 = 20;

/// `struct mmuext_op` (12 bytes on i386). `arg1` is the union `{mfn,
/// linear_addr}`, `arg2` the union `{nr_ents, vcpumask, src_mfn}`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct MmuextOp {
    /// `MMUEXT_*`.
    pub cmd: u32,
    /// `mfn` or `linear_addr`.
    pub arg1: u32,
    /// `nr_ents`, `vcpumask` (guest pointer to a VCPU bitmap) or `src_mfn`.
    pub arg2: u32,
}
assert_layout!(MmuextOp, size = 12, align = 4, cmd = 0, arg1 = 4, arg2 = 8);

impl MmuextOp {
    /// An operation with both arguments.
    pub const fn new(cmd: u32, arg1: u32, arg2: u32) -> Self {
        Self { cmd, arg1, arg2 }
    }

    /// `arg1.mfn`.
    pub const fn mfn(&self) -> XenPfn {
        self.arg1
    }

    /// `arg1.linear_addr`.
    pub const fn linear_addr(&self) -> u32 {
        self.arg1
    }

    /// `arg2.nr_ents`.
    pub const fn nr_ents(&self) -> u32 {
        self.arg2
    }

    /// `arg2.vcpumask`: guest virtual address of a VCPU bitmap.
    pub const fn vcpumask(&self) -> u32 {
        self.arg2
    }

    /// `arg2.src_mfn`.
    pub const fn src_mfn(&self) -> XenPfn {
        self.arg2
    }
}

// ---- update_va_mapping (§7.4) ----

/// No flush.
pub const UVMF_NONE: u32 = 0;
/// Flush the whole TLB(s).
pub const UVMF_TLB_FLUSH: u32 = 1;
/// Flush only the updated address.
pub const UVMF_INVLPG: u32 = 2;
/// The flush-type bits.
pub const UVMF_FLUSHTYPE_MASK: u32 = 3;
/// Flush on the VCPUs of a bitmap whose address is `flags & !3` (when non-zero).
pub const UVMF_MULTI: u32 = 0;
/// Flush on the local VCPU only.
pub const UVMF_LOCAL: u32 = 0;
/// Flush on all VCPUs of the domain.
pub const UVMF_ALL: u32 = 4;

/// The flush type (`UVMF_NONE`, `UVMF_TLB_FLUSH` or `UVMF_INVLPG`).
pub const fn uvmf_flush_type(flags: u32) -> u32 {
    flags & UVMF_FLUSHTYPE_MASK
}

/// Which VCPUs a `update_va_mapping` flush reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UvmfScope {
    /// The calling VCPU (`UVMF_LOCAL`).
    Local,
    /// All VCPUs of the domain (`UVMF_ALL`).
    All,
    /// The VCPUs in the bitmap at this guest virtual address (`UVMF_MULTI`).
    Multi(u32),
}

/// Decodes the scope part of `update_va_mapping` flags.
pub const fn uvmf_scope(flags: u32) -> UvmfScope {
    let rest = flags & !UVMF_FLUSHTYPE_MASK;
    if rest == 0 {
        UvmfScope::Local
    } else if rest == UVMF_ALL {
        UvmfScope::All
    } else {
        UvmfScope::Multi(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::manual_rotate)]
    fn cr3_rotation() {
        assert_eq!(xen_pfn_to_cr3(0x1234), 0x0123_4000);
        assert_eq!(xen_cr3_to_pfn(0x0123_4000), 0x1234);
        // An MFN above 4 GiB keeps its high bits in the low bits of "CR3".
        assert_eq!(xen_pfn_to_cr3(0x0012_3456), 0x2345_6001);
        assert_eq!(xen_cr3_to_pfn(0x2345_6001), 0x0012_3456);
        for mfn in [0, 1, 0xFFFFF, 0x100000, 0x3FFFFF, 0xFFFF_FFFF, 0xABCD_EF01] {
            assert_eq!(xen_cr3_to_pfn(xen_pfn_to_cr3(mfn)), mfn);
        }
        // The digest's formulas, spelled out as shifts on purpose.
        let mfn: u32 = 0x0045_6789;
        assert_eq!(xen_pfn_to_cr3(mfn), (mfn << 12) | (mfn >> 20));
        let cr3 = xen_pfn_to_cr3(mfn);
        assert_eq!(xen_cr3_to_pfn(cr3), (cr3 >> 12) | (cr3 << 20));
    }

    #[test]
    fn disallow_masks() {
        assert_eq!(PTE_FRAME_MASK, 0x0000_0FFF_FFFF_F000);
        assert_eq!(PTE_HIGH_RESERVED_MASK, 0x7FFF_F000_0000_0000);
        assert_eq!(L1_DISALLOW_MASK & 0xFFF, 0x198);
        assert_eq!(L2_DISALLOW_MASK & 0xFFF, 0x118);
        assert_eq!(L3_DISALLOW_MASK & 0xFFF, 0x1FE);
        assert_eq!(L3_DISALLOW_MASK >> 44, 0xF_FFFF);
        // The 64-bit mask and the digest's flag-word mask agree (the flag word
        // only carries entry bits 0–11 and 52–63, i.e. its bits 0–23).
        assert_eq!(
            pte_flag_word(L3_DISALLOW_MASK),
            L3_DISALLOW_FLAG_WORD & 0x00FF_FFFF
        );
        assert_eq!(L1_DISALLOW_MASK & PAGE_NX, 0);
        assert_ne!(L3_DISALLOW_MASK & PAGE_NX, 0);
        // A P-only L3 entry (and one using the available bits) passes.
        let l3e = pte_from_mfn(0x12345, PAGE_PRESENT | PAGE_AVAIL1);
        assert_eq!(l3e & L3_DISALLOW_MASK, 0);
        assert_ne!((l3e | PAGE_RW) & L3_DISALLOW_MASK, 0);
        // A normal L1 entry passes; G or a 45-bit address does not.
        let l1e = pte_from_mfn(0x12345, PAGE_PRESENT | PAGE_RW | PAGE_ACCESSED | PAGE_DIRTY);
        assert_eq!(l1e & L1_DISALLOW_MASK, 0);
        assert_ne!((l1e | PAGE_GLOBAL) & L1_DISALLOW_MASK, 0);
        assert_ne!((l1e | 1 << 44) & L1_DISALLOW_MASK, 0);
        assert_eq!((l1e | PAGE_PSE) & L2_DISALLOW_MASK, 0);
        assert_eq!(pte_mfn(l1e), 0x12345);
        assert!(pte_present(l1e));
    }

    #[test]
    fn geometry() {
        let va = 0xF580_0000u32;
        assert_eq!(l3_table_offset(va), 3);
        assert_eq!(l2_table_offset(va), 428);
        assert!(is_xen_l2_slot(3, 428));
        assert!(!is_xen_l2_slot(3, 427));
        assert!(!is_xen_l2_slot(2, 511));
        assert_eq!(l1_table_offset(0xC000_5123), 5);
    }

    #[test]
    fn mmu_update_and_foreigndom() {
        let u = MmuUpdate::new(MMU_MACHPHYS_UPDATE, 0x1234_5000, 77);
        assert_eq!(u.cmd(), MMU_MACHPHYS_UPDATE);
        assert_eq!(u.addr(), 0x1234_5000);
        let fd = foreigndom(5, Some(0));
        assert_eq!(fd, 0x0001_0005);
        assert_eq!(foreigndom_fd(fd), 5);
        assert_eq!(foreigndom_pfd(fd), Some(0));
        assert_eq!(foreigndom_pfd(crate::domid::DOMID_SELF as u32), None);
    }

    #[test]
    fn uvmf_flags() {
        assert_eq!(uvmf_scope(UVMF_INVLPG | UVMF_LOCAL), UvmfScope::Local);
        assert_eq!(uvmf_scope(UVMF_TLB_FLUSH | UVMF_ALL), UvmfScope::All);
        assert_eq!(
            uvmf_scope(0xC000_1000 | UVMF_INVLPG),
            UvmfScope::Multi(0xC000_1000)
        );
        assert_eq!(uvmf_flush_type(0xC000_1000 | UVMF_INVLPG), UVMF_INVLPG);
    }
}
