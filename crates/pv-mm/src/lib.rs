//! Oxen's PV MMU core: page types, reference counts and the validation of
//! guest page-table entries for 32-bit PAE guests (XEN-PV-ABI.md §7), in the
//! shape of Xen's `mm.c`. The invariants are at the top of [`engine`].
//!
//! The engine works on a frame table (`&[PageInfo]`, indexed by MFN) and reaches
//! frame contents through a [`Machine`]; it is tested on the host against an
//! emulated physical memory.
//!
//! # What the hypervisor does around it
//!
//! * **Serialisation.** Every call must be serialised (one CPU today; a lock
//!   around the engine with SMP). The engine keeps no per-call state.
//! * **Privilege and ids.** Decode `foreigndom` into PFD (`pt_owner`) and FD
//!   (`pg_owner`), check that the caller may act for them (dom0) and that the
//!   domains exist, and pass a [`Caller`] with the domain's real privileges.
//!   The engine re-checks ownership and refuses foreign ids from unprivileged
//!   callers (`-ESRCH`), but knows nothing of domain existence.
//! * **Base pointers.** The hypervisor records each VCPU's L3; `new_baseptr`
//!   takes the new reference and drops the old. CR3 never holds the guest's L3
//!   but the vcpu's low L3 ([`low_l3`]): a filtered copy below 4 GiB, refreshed
//!   at each load. After `mod_l3_entry` on an L3 some CPU runs on, refresh and
//!   reload CR3 there (the CPU caches the four PDPTEs).
//! * **TLB flushes.** The engine flushes nothing by itself: the guest asks
//!   (`MMUEXT_*FLUSH*`, `UVMF_*`). It calls [`Machine::flush_tlb_for_retype`]
//!   before a frame becomes a page table or descriptor page, which must flush
//!   any stale writable translation of it. When a frame is freed
//!   ([`Machine::page_freed`]) and later given to another domain, stale
//!   translations of it in the old owner's TLBs must be flushed first.
//! * **Teardown.** Drop each VCPU's base pointer (`put_page_and_type`), then
//!   [`Mm::relinquish`] every frame of the domain; frames still referenced
//!   elsewhere (e.g. dom0's foreign mappings) are freed when their last
//!   reference goes.
//! * **Frame table.** Build it from [`PageInfo::free`] / [`PageInfo::io`] and
//!   give Oxen's own frames to `DOMID_XEN` with [`Mm::assign`], so the audit can
//!   account for every reference. Share the few that privileged domains may
//!   map read-only (the M2P) with [`Mm::share_xen_frame`]; no guest can
//!   reference any other.
//! * **Accounting.** Give the engine one [`DomainPages`] per domid; domains get
//!   their frames through [`Mm::assign`] (counted, up to `max_pages`) or
//!   [`Mm::assign_extra`] (Oxen's frames for the domain: shared_info, grant
//!   table), and read `tot_pages` from the engine (`account` module). At
//!   destruction, once the last frame is free, [`Mm::close_account`] must
//!   find zero.
//! * **Hypervisor slots.** Validation of the L2 under L3 slot 3 writes
//!   [`Machine::xen_l2_entry`] into slots 428–511; entries that depend on the
//!   address space (linear page-table slots) are not supported.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

mod access;
pub mod account;
pub mod audit;
pub mod engine;
mod entry;
pub mod low_l3;
pub mod machine;
pub mod ops;
pub mod page_info;
pub mod partial;
pub mod pte;
pub mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use account::DomainPages;
pub use audit::{AuditError, AuditProblem, AuditReport, ExternalRef};
pub use engine::Mm;
pub use entry::GrantPte;
pub use machine::Machine;
pub use page_info::{CountInfo, PageInfo, Progress, TypeInfo};
pub use partial::{Budget, TEARDOWN_SCAN_STRIDE, Teardown};
pub use types::{Caller, MmConfig, PageType, PtLevel};
pub use validate::{ENTRIES, L3_GUEST_ENTRIES};
