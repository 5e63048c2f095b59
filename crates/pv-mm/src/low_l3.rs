//! The per-vcpu low L3 (DESIGN.md §3 "CR3", as Xen 3's PAE builds did): CR3
//! never holds a guest's L3 but a copy of its four entries that Oxen keeps
//! below 4 GiB, carrying only what a PAE PDPTE may architecturally hold.
//!
//! Why: a PAE CR3 holds a 32-bit address, so a guest L3 above 4 GiB
//! (`VMASST_TYPE_pae_extended_cr3`, `XENFEAT_pae_pgdir_above_4gb`) cannot be
//! loaded as it is; and a present PDPTE with a reserved bit set (bits 1–2 and
//! 5–8, and 63 — NX is reserved in PAE PDPTEs even with EFER.NXE; Intel SDM
//! vol. 3, "PAE paging", PDPTE format) makes the CR3 load raise #GP in ring 0,
//! while guest L3 entries may carry RW, US, A and D
//! ([`crate::pte::L3_DISALLOW_MASK`]).
//!
//! The pieces here are pure: [`pdpte`] filters one entry, and [`LowL3`] is the
//! bookkeeping of a vcpu's two copies (double-buffered, as Xen 3's
//! `pae_l3_cache`: a changed copy is written into the table CR3 does not hold,
//! which then becomes the live one). The hypervisor owns the tables' memory
//! (below 4 GiB, 32-byte aligned) and calls [`LowL3::refresh`] with the guest
//! L3's four entries at every load of the vcpu's CR3 — base-pointer changes,
//! `setvcpucontext`, after an `mmu_update` batch on the running vcpu (an L3
//! entry it changed reaches the CPU before the guest runs again), and each
//! context switch (so an L3 changed by another domain's foreign update is
//! picked up) — then loads CR3 with the table it names.

use crate::pte::{PAGE_PCD, PAGE_PRESENT, PAGE_PWT, PTE_FRAME_MASK, is_present};

/// The bits of a PAE PDPTE the CPU does not reserve: P, PWT, PCD and the
/// frame (bits 9–11 are ignored by the CPU; Oxen leaves them 0 too).
pub const PDPTE_ALLOWED: u64 = PAGE_PRESENT | PAGE_PWT | PAGE_PCD | PTE_FRAME_MASK;

/// The PDPTE Oxen loads for the guest L3 entry `l3e`: 0 for a non-present
/// entry, else only the bits of [`PDPTE_ALLOWED`].
pub const fn pdpte(l3e: u64) -> u64 {
    if is_present(l3e) {
        l3e & PDPTE_ALLOWED
    } else {
        0
    }
}

/// The four PDPTEs for a guest L3's four entries.
pub fn pdptes(l3: [u64; 4]) -> [u64; 4] {
    l3.map(pdpte)
}

/// What [`LowL3::refresh`] asks of the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    /// The table (0 or 1) to load into CR3.
    pub table: usize,
    /// Entries to write into that table first (`None`: it already holds
    /// them).
    pub write: Option<[u64; 4]>,
}

/// A vcpu's two low-L3 tables: which one is live (the one last loaded into
/// CR3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LowL3 {
    live: usize,
}

impl LowL3 {
    /// Both tables empty (all zero), table 0 live.
    pub const fn new() -> Self {
        Self { live: 0 }
    }

    /// The table last handed out by [`refresh`](Self::refresh).
    pub const fn live(&self) -> usize {
        self.live
    }

    /// The vcpu's CR3 is about to be loaded for a guest L3 holding `guest`;
    /// `live_now` is what the live table holds (a CPU may have set the
    /// accessed bit in it, which is ignored). If the filtered entries are
    /// already there, that table is loaded again; otherwise they go into the
    /// other table, which becomes live — the table the CPU may still be
    /// using is never written.
    pub fn refresh(&mut self, live_now: [u64; 4], guest: [u64; 4]) -> Refresh {
        let want = pdptes(guest);
        let have = live_now.map(|e| if is_present(e) { e & PDPTE_ALLOWED } else { 0 });
        if have == want {
            return Refresh {
                table: self.live,
                write: None,
            };
        }
        self.live ^= 1;
        Refresh {
            table: self.live,
            write: Some(want),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pte::{
        PAGE_ACCESSED, PAGE_AVAIL, PAGE_DIRTY, PAGE_GLOBAL, PAGE_NX, PAGE_PSE, PAGE_RW, PAGE_USER,
        check_l3_flags,
    };

    #[test]
    fn pdpte_keeps_only_architectural_bits() {
        let frame = 0x0000_0FFF_FFFF_F000;
        let guest = frame | PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
        assert_eq!(check_l3_flags(guest), Ok(()));
        assert_eq!(pdpte(guest), frame | PAGE_PRESENT);
        assert_eq!(pdpte(guest | PAGE_AVAIL), frame | PAGE_PRESENT);
        // PWT/PCD are the PDPTE's own; they pass through.
        assert_eq!(
            pdpte(frame | PAGE_PRESENT | PAGE_PWT | PAGE_PCD),
            frame | PAGE_PRESENT | PAGE_PWT | PAGE_PCD
        );
        // Reserved in a PDPTE: bits 1-2, 5-8 and 63 (and 44-62, beyond the
        // frames a guest may name) never come through.
        for bit in [1, 2, 5, 6, 7, 8, 44, 52, 62, 63] {
            let e = pdpte(frame | PAGE_PRESENT | 1 << bit);
            assert_eq!(e, frame | PAGE_PRESENT, "bit {bit}");
        }
        assert_eq!(
            pdpte(PAGE_PRESENT | PAGE_PSE | PAGE_GLOBAL | PAGE_NX),
            PAGE_PRESENT
        );
    }

    #[test]
    fn a_non_present_entry_becomes_zero() {
        assert_eq!(pdpte(0x1234_5000 | PAGE_RW | PAGE_ACCESSED), 0);
        assert_eq!(pdpte(!PAGE_PRESENT), 0);
        assert_eq!(pdpte(0), 0);
    }

    #[test]
    fn every_pdpte_is_free_of_reserved_bits() {
        // Bits 1-2, 5-8 and 63 are reserved in a present PAE PDPTE.
        const RESERVED: u64 = 0b1_1110_0110 | 1 << 63;
        for seed in 0..4096u64 {
            let e = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (seed << 3);
            assert_eq!(pdpte(e) & RESERVED, 0, "{e:#x}");
            assert_eq!(pdpte(e) & !PDPTE_ALLOWED, 0, "{e:#x}");
        }
    }

    #[test]
    fn a_changed_l3_goes_into_the_other_table() {
        let mut l = LowL3::new();
        let a = [0x1000 | PAGE_PRESENT | PAGE_RW, 0, 0, 0x5000 | PAGE_PRESENT];
        let r = l.refresh([0; 4], a);
        assert_eq!(
            r,
            Refresh {
                table: 1,
                write: Some([0x1001, 0, 0, 0x5001])
            }
        );
        assert_eq!(l.live(), 1);
        // Unchanged (even with the CPU's accessed bit in the live table):
        // the live table is loaded again, nothing written.
        let r = l.refresh([0x1021, 0, 0, 0x5001], a);
        assert_eq!(
            r,
            Refresh {
                table: 1,
                write: None
            }
        );
        // A guest-only bit changing (A, D, RW) needs no rewrite either.
        let r = l.refresh([0x1001, 0, 0, 0x5001], a.map(|e| e | PAGE_DIRTY));
        assert_eq!(r.write, None);
        // A new entry: written into table 0, never into the live table 1.
        let b = [a[0], 0x2000 | PAGE_PRESENT, 0, a[3]];
        let r = l.refresh([0x1001, 0, 0, 0x5001], b);
        assert_eq!(
            r,
            Refresh {
                table: 0,
                write: Some([0x1001, 0x2001, 0, 0x5001])
            }
        );
        assert_eq!(l.live(), 0);
        // An entry going away is a change too.
        let r = l.refresh([0x1001, 0x2001, 0, 0x5001], a);
        assert_eq!(r.table, 1);
        assert_eq!(r.write, Some([0x1001, 0, 0, 0x5001]));
    }

    #[test]
    fn a_stale_live_table_is_rewritten() {
        // The live table's memory says something else than the guest's L3
        // (e.g. the domid was reused): it is rewritten via the other table.
        let mut l = LowL3::new();
        let g = [0, 0, 0, 0x7000 | PAGE_PRESENT];
        let r = l.refresh([0x9001, 0, 0, 0x8001], g);
        assert_eq!(r.table, 1);
        assert_eq!(r.write, Some([0, 0, 0, 0x7001]));
    }
}
