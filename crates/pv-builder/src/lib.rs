//! The PV domain builder: what libxc's `xc_dom_*` does for a 32-bit PAE
//! (`xen-3.0-x86_32p`) domU, as pure logic that dom0's toolstack drives.
//!
//! The caller (dom0) has created the domain, populated its `nr_pages` frames with
//! `XENMEM_populate_physmap` (the P2M), allocated the xenstore and console ports
//! and mapped the frames for writing. [`build()`] then, through a [`GuestMemory`]:
//! validates the kernel with `xen-loader` (the same §16 rules as dom0's builder),
//! lays out the domU bootstrap region with `xen-loader`'s [`BootstrapLayout`]
//! (XEN-PV-ABI.md §4.3, libxc's element order), loads the kernel and ramdisk, and
//! writes the P2M, start_info (§4.1), the zeroed xenstore and console pages and
//! the bootstrap page tables (§7.6–7.7). It returns a [`Built`]: the frames the
//! caller needs for the rest of §15.7 (the L3 to pin, the hypercall page for
//! `hypercall_init`, the store and console MFNs for xenstore) and the vcpu 0
//! context for `XEN_DOMCTL_setvcpucontext` (§4.2, §15.8).
//!
//! - [`memory`] — [`GuestMemory`], the only way the builder touches the domain.
//! - [`build`](mod@build) — [`BuildRequest`], [`Built`], [`build()`].
//! - [`pagetables`] — the bootstrap page tables in machine terms ([`PtFrame`]).
//! - [`context`] — the initial vcpu context.
//! - [`error`] — [`BuildError`].
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod build;
pub mod context;
pub mod error;
pub mod memory;
pub mod pagetables;

pub use build::{BuildRequest, Built, Frame, build};
pub use context::{EntryState, initial_vcpu_context};
pub use error::BuildError;
pub use memory::GuestMemory;
pub use pagetables::{PtFrame, PtLevel};
pub use xen_loader::BootstrapLayout;

#[cfg(test)]
mod tests;
