//! The block back end's logic (XEN-PV-ABI.md §11, DESIGN.md §8): everything of
//! blkback that does not need a hypervisor, host-tested against a fake ring
//! page, a fake grant table and a memory disk.
//!
//! * [`request`]: the checks a request copy must pass, and the status of a
//!   refused one;
//! * [`io`]: the grant-copy and block-device traits the service drives;
//! * [`service`]: [`Blkback`], serving one connected vbd's ring with a bounded
//!   amount of work per call;
//! * [`xenbus`]: the vbd back end's XenBus state machine and nodes, as pure
//!   functions.
//!
//! dom0 binds it: a [`xen_ring::SharedMemory`] over the mapped ring grant, a
//! [`GrantCopy`] issuing `GNTTABOP_copy` with a bounce buffer of its own
//! frames, a [`BlockDevice`] on a disk or an image file, and an event loop that
//! calls [`Blkback::service`] on each event and notifies when told.
//!
//! Every value from the front end is hostile: nothing here panics on it,
//! reads a shared slot twice, loops without bound or touches memory outside
//! the ring and the granted frames.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod io;
pub mod request;
pub mod service;
pub mod xenbus;

pub use io::{BOUNCE_BYTES, BlockDevice, CopyDir, CopyError, CopyOp, GrantCopy, IoError};
pub use request::{Op, Refusal, Validated, VbdParams, validate};
pub use service::{BlkBackRing, Blkback, DEFAULT_BUDGET, Serviced, Stats};

#[cfg(test)]
mod tests;
