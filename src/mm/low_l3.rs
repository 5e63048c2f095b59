//! The per-vcpu low L3s that CR3 holds while a guest runs (DESIGN.md §3
//! "CR3"; the rules are `pv_mm::low_l3`): never the guest's own L3, but a
//! copy of its four entries with only the bits a PAE PDPTE may hold, in
//! Oxen's image and so below 4 GiB wherever the guest's L3 lives.
//!
//! Invariants:
//! - `LOW_L3[domid]` belongs to that domain's vcpu (one per domain), whose
//!   `Vcpu::low_l3` says which of the two tables is live.
//! - Every load of a guest vcpu's CR3 goes through [`load`], which refreshes
//!   the copy from the guest's L3 first, so CR3 never holds PDPTEs older than
//!   the guest's L3 at that load (its L3 can change only through
//!   `mmu_update`, after which the running vcpu's CR3 is loaded again).
//! - The table the CPU last loaded is never written (`LowL3::refresh`).

use core::sync::atomic::Ordering;

use hv_core::addr::Mfn;
use pv_mm::low_l3::LowL3;

use super::mapcache;
use crate::arch::x86::cpu;
use crate::arch::x86::paging::{self, PaeL3};
use crate::domain::MAX_DOMAINS;

/// Two tables per vcpu (domid-indexed); 32-byte aligned by `PaeL3`.
static LOW_L3: [[PaeL3; 2]; MAX_DOMAINS] = [const { [PaeL3::new(), PaeL3::new()] }; MAX_DOMAINS];

/// The four entries of the guest L3 `l3`.
fn guest_entries(l3: Mfn) -> [u64; 4] {
    let m = mapcache::map_frame(l3);
    let p = m.as_mut_ptr() as *const u64;
    // SAFETY: the mapping covers the whole frame; entries 0..4 are aligned
    // 8-byte slots inside it. A 64-bit volatile read of a PAE entry: guests
    // change L3 entries only through `mmu_update`, never concurrently here.
    core::array::from_fn(|i| unsafe { p.add(i).read_volatile() })
}

/// Loads CR3 for the vcpu of domain `domid` running on the validated L3 `l3`
/// (`state`: its `Vcpu::low_l3`), after refreshing its low copy.
pub fn load(domid: u16, l3: Mfn, state: &mut LowL3) {
    let tables = &LOW_L3[usize::from(domid)];
    let live = &tables[state.live()];
    let live_now = core::array::from_fn(|i| live.0[i].load(Ordering::Relaxed));
    let r = state.refresh(live_now, guest_entries(l3));
    let table = &tables[r.table];
    if let Some(entries) = r.write {
        for (slot, e) in table.0.iter().zip(entries) {
            slot.store(e, Ordering::SeqCst);
        }
    }
    let maddr = paging::image_maddr(table);
    debug_assert!(maddr < 1 << 32 && maddr.is_multiple_of(32));
    // SAFETY: the table is in Oxen's image (below 4 GiB, 32-byte aligned) and
    // holds the PDPTEs of the validated L3 `l3`, whose slot 3 maps the L2
    // carrying Oxen's own mappings, so Oxen keeps running across the load.
    unsafe { cpu::write_cr3(maddr as u32) };
}
