//! The block front end's logic (XEN-PV-ABI.md §11), host-tested; pvrt binds it
//! to grants, the event channel and xenstore, and drives the ring with
//! `xen_ring::FrontRing`.
//!
//! * [`plan`]: a transfer of sectors from or to page-aligned memory, cut into
//!   requests of at most 11 segments;
//! * [`inflight`]: requests in flight by id, so each response finds its grants
//!   (to revoke) and its caller, and a response for an id not in flight is
//!   refused instead of trusted;
//! * [`xenbus`]: the vbd front end's XenBus state machine and the back end's
//!   nodes it reads.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod inflight;
pub mod plan;
pub mod xenbus;

#[cfg(test)]
mod tests;
