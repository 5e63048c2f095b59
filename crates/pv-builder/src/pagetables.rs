//! The contents of the bootstrap page tables of a domU (XEN-PV-ABI.md §4.3,
//! §7.6–7.7), in machine terms.
//!
//! `xen-loader` decides which entry goes where, in pseudo-physical terms
//! ([`BootstrapLayout::for_each_bootstrap_pte`]); this module turns those entries
//! into the 64-bit PAE entries a non-translated guest holds, `(mfn << 12) | flags`
//! with the mfn taken from the P2M, and lists the frames bottom-up. Invariants:
//! - every page-table frame is produced whole: entries not emitted by the layout
//!   are 0, so writing the frames leaves no stale entry;
//! - in the L2 under L3 slot 3, indices 428–511 (the hypervisor's, §7.7) stay 0:
//!   the hypervisor fills them when it validates the L3, and the region lies below
//!   the hole so the layout never emits them;
//! - the frame list is L1s (address order), then L2s (L3 slot order), then the L3,
//!   the order in which each table's children come before it.

use alloc::vec;
use alloc::vec::Vec;

use xen_abi::layout::XEN_L3_SLOT;
use xen_abi::mm::{L2_PAGETABLE_ENTRIES, is_xen_l2_slot, pte_from_mfn};
use xen_abi::types::{PAGE_SIZE, XenPfn};
use xen_loader::BootstrapLayout;

/// Level of a bootstrap page-table frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtLevel {
    /// Maps 4 KiB pages.
    L1,
    /// Maps L1 tables.
    L2,
    /// The top level (`pt_base`, the frame pinned and loaded into CR3).
    L3,
}

/// One bootstrap page-table frame of the new domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtFrame {
    /// Its level (the type it takes when the L3 is pinned).
    pub level: PtLevel,
    /// Its pseudo-physical frame number.
    pub pfn: u32,
    /// Its machine frame number (`mfns[pfn]`).
    pub mfn: XenPfn,
}

/// The bootstrap page tables of a domU, built in memory.
pub(crate) struct BootstrapTables {
    /// pfn of the first table frame (the L3).
    first_pfn: u32,
    /// Entries of each table frame, indexed by `pfn − first_pfn`.
    tables: Vec<[u64; L2_PAGETABLE_ENTRIES]>,
}

impl BootstrapTables {
    /// Computes every entry of the tables of `layout`, translating pfns with
    /// `mfns` (one MFN per page of the domain, so every region pfn has one).
    pub(crate) fn new(layout: &BootstrapLayout, mfns: &[XenPfn]) -> Self {
        let first_pfn = layout.l3_pfn();
        let mut tables = vec![[0u64; L2_PAGETABLE_ENTRIES]; layout.nr_pt_frames() as usize];
        let l2_slot3 = layout.l2_pfn(XEN_L3_SLOT as u32);
        layout.for_each_bootstrap_pte(|pte| {
            debug_assert!(
                !(pte.level == 2
                    && Some(pte.table_pfn) == l2_slot3
                    && is_xen_l2_slot(XEN_L3_SLOT, pte.index as usize))
            );
            let mfn = u64::from(mfns[pte.target_pfn as usize]);
            tables[(pte.table_pfn - first_pfn) as usize][pte.index as usize] =
                pte_from_mfn(mfn, pte.flags);
        });
        BootstrapTables { first_pfn, tables }
    }

    /// Each table frame as `(pfn, its 4096 bytes)`, in pfn order.
    pub(crate) fn pages(&self) -> impl Iterator<Item = (u32, [u8; PAGE_SIZE])> + '_ {
        self.tables.iter().enumerate().map(|(i, table)| {
            let mut page = [0u8; PAGE_SIZE];
            for (bytes, entry) in page.chunks_exact_mut(8).zip(table) {
                bytes.copy_from_slice(&entry.to_le_bytes());
            }
            (self.first_pfn + i as u32, page)
        })
    }
}

/// The bootstrap page-table frames of `layout`: L1s, then L2s, then the L3.
pub(crate) fn frame_list(layout: &BootstrapLayout, mfns: &[XenPfn]) -> Vec<PtFrame> {
    let l3 = layout.l3_pfn();
    let nr_l2 = layout.nr_l2_frames();
    let first_l1 = l3 + 1 + nr_l2;
    let frame = |level, pfn: u32| PtFrame {
        level,
        pfn,
        mfn: mfns[pfn as usize],
    };
    let mut list = Vec::with_capacity(layout.nr_pt_frames() as usize);
    list.extend((first_l1..first_l1 + layout.nr_l1_frames).map(|pfn| frame(PtLevel::L1, pfn)));
    list.extend((l3 + 1..first_l1).map(|pfn| frame(PtLevel::L2, pfn)));
    list.push(frame(PtLevel::L3, l3));
    list
}
