//! What the engine needs from the machine: reading and writing the contents of
//! frames, the M2P table, and a few hooks. The hypervisor implements it over its
//! map cache; the tests implement it over an emulated physical memory.

use hv_core::addr::Mfn;

/// Access to machine memory and the hypervisor services the engine calls back.
///
/// The engine only calls these for frames described by the frame table.
pub trait Machine {
    /// Entry `index` (0..512) of frame `mfn`, read as one 64-bit load.
    fn read_pte(&self, mfn: Mfn, index: usize) -> u64;

    /// Stores `val` into entry `index` of frame `mfn` as one atomic 64-bit store
    /// (`cmpxchg8b` or a `movq` on i686: the CPU may walk the table meanwhile).
    fn write_pte(&mut self, mfn: Mfn, index: usize, val: u64);

    /// Zeroes frame `mfn`.
    fn clear_frame(&mut self, mfn: Mfn);

    /// Copies frame `src` over frame `dst`.
    fn copy_frame(&mut self, dst: Mfn, src: Mfn);

    /// M2P[`mfn`] = `pfn`.
    fn set_m2p(&mut self, mfn: Mfn, pfn: u32);

    /// Entry `index` (428..512) that the hypervisor places in the L2 under L3
    /// slot 3 of every address space. These entries hold no references.
    fn xen_l2_entry(&self, index: usize) -> u64;

    /// Whether frame `mfn` holds only safe segment descriptors (the check behind
    /// the `seg_desc` type, done on its 0 → 1 transition).
    fn check_seg_desc_page(&self, mfn: Mfn) -> bool;

    /// Frame `mfn` is about to take a page-table or descriptor type different
    /// from the last type it had. Stale writable TLB entries for it may exist
    /// (a writable mapping was removed without a flush), so every TLB that can
    /// hold them must be flushed before this returns. The hypervisor may filter
    /// with a per-frame timestamp (Xen's `tlbflush_timestamp`).
    fn flush_tlb_for_retype(&mut self, mfn: Mfn);

    /// The last reference of frame `mfn` is gone: it is free in the frame table
    /// (owner `DOMID_INVALID`, counts 0) and may return to the allocator.
    fn page_freed(&mut self, mfn: Mfn);
}
