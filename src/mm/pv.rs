//! The PV MMU engine's view of this machine (`pv_mm::Machine`): frame contents
//! through the map cache, the M2P, Oxen's own L2 slots, TLB flushes, and the
//! allocator for frames the engine frees.

use core::sync::atomic::{AtomicU64, Ordering};

use hv_core::addr::{Mfn, PAGE_SIZE};
use pv_mm::Machine;

use super::{frames, m2p, mapcache};
use crate::arch::x86::{cpu, paging};

/// The machine as the engine sees it.
pub struct OxenMachine;

fn entry(map: &mapcache::Mapping, index: usize) -> &AtomicU64 {
    assert!(index < 512);
    // SAFETY: the mapping covers the whole frame; entry `index` < 512 is an
    // aligned 8-byte slot inside it, only ever accessed atomically here.
    unsafe { &*(map.as_mut_ptr() as *const AtomicU64).add(index) }
}

impl Machine for OxenMachine {
    fn read_pte(&self, mfn: Mfn, index: usize) -> u64 {
        let m = mapcache::map_frame(mfn);
        entry(&m, index).load(Ordering::SeqCst)
    }

    fn write_pte(&mut self, mfn: Mfn, index: usize, val: u64) {
        let m = mapcache::map_frame(mfn);
        entry(&m, index).store(val, Ordering::SeqCst);
    }

    fn clear_frame(&mut self, mfn: Mfn) {
        mapcache::clear_frame(mfn);
    }

    fn copy_frame(&mut self, dst: Mfn, src: Mfn) {
        let d = mapcache::map_frame(dst);
        let s = mapcache::map_frame(src);
        // SAFETY: both mappings cover a whole frame; distinct slots (or the same
        // frame, in which case copy semantics of `copy` still hold).
        unsafe { core::ptr::copy(s.as_mut_ptr(), d.as_mut_ptr(), PAGE_SIZE as usize) };
    }

    fn set_m2p(&mut self, mfn: Mfn, pfn: u32) {
        m2p::set(mfn, pfn);
    }

    fn xen_l2_entry(&self, index: usize) -> u64 {
        paging::xen_l2_entry(index)
    }

    fn check_seg_desc_page(&self, mfn: Mfn) -> bool {
        // Every descriptor must pass Xen's checks; the fixed-up ones (DPL 0
        // raised, limits truncated) are written back.
        let m = mapcache::map_frame(mfn);
        let mut descs = [0u64; 512];
        for (i, d) in descs.iter_mut().enumerate() {
            *d = entry(&m, i).load(Ordering::SeqCst);
        }
        if hv_core::descriptor::check_descriptor_page(&mut descs).is_err() {
            return false;
        }
        for (i, d) in descs.iter().enumerate() {
            entry(&m, i).store(*d, Ordering::SeqCst);
        }
        true
    }

    fn flush_tlb_for_retype(&mut self, _mfn: Mfn) {
        cpu::flush_tlb_local();
    }

    fn page_freed(&mut self, mfn: Mfn) {
        frames::free_guest(mfn);
    }
}
