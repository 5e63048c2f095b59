//! Grant tables, version 1 (XEN-PV-ABI.md §9): the pure state machine.
//!
//! What this module owns, per domain:
//!
//! * as a **granter**, a [`GrantTable`]: the size of its grant table
//!   (`nr_frames`, grown by `GNTTABOP_setup_table` up to the maximum) and Xen's
//!   private *active* entry for every grant ref: pin counts (host read, host
//!   write, device read, device write), the machine frame captured at the first
//!   pin and the domain that pinned it;
//! * as a **grantee**, a [`Maptrack`]: handle → (granting domain, gref, `GNTMAP_*`
//!   flags still live, `host_addr`, frame).
//!
//! The shared `grant_entry_v1` records live in guest-writable frames that the
//! granting guest may change at any time; they are reached only through the
//! [`SharedEntries`] trait (a plain slice in tests, the real frames with atomic
//! accesses in the hypervisor). Xen sets `GTF_reading`/`GTF_writing` with a
//! compare-and-swap on the (flags, domid) word, retried a bounded number of times
//! ([`CMPXCHG_ATTEMPTS`]), so a guest racing forever gets `GNTST_general_error`,
//! never a hang.
//!
//! The operations ([`map_grant_ref`], [`unmap_grant_ref`], [`gnttab_copy`],
//! [`release_all`], …) decide *what* must happen — the validated entry, the
//! frame, read-only or not, the pins taken or dropped, and the page and
//! writable-type references the hypervisor must take or drop ([`Refs`]) — and
//! the hypervisor does the PTE and frame-table work.
//!
//! Invariants (checked by the property test in `tests.rs`), for a granting guest
//! that follows the protocol of §9.1:
//!
//! * an entry's shared `GTF_reading` is set exactly when its active entry has a
//!   pin of any kind, and `GTF_writing` exactly when it has a write pin (host or
//!   device); so the guest's revoke (`cmpxchg(flags, old, 0)` only when neither
//!   bit is set, [`guest_end_access`]) fails while the grant is in use;
//! * the pins of an active entry are exactly the live parts of the maptrack
//!   entries that refer to it, plus the copies in flight;
//! * the frame of a pinned entry is the one read at the first pin: the guest
//!   changing `frame` afterwards changes nothing for existing pins;
//! * every live handle refers to an active entry of its granter pinned by the
//!   handle's owner.
//!
//! Status values are Xen's (`common/grant_table.c`); each failure is a
//! [`GntError`] naming the reason, whose [`GntError::status`] is the `GNTST_*`
//! value the guest sees.
#![forbid(unsafe_code)]

mod maptrack;
mod ops;
mod shared;
mod table;

#[cfg(test)]
mod tests;

pub use maptrack::{DEFAULT_MAPTRACK_ENTRIES, MapEntry, Maptrack};
pub use ops::{
    CopyEnd, CopyGrant, FrameOwnership, GrantDomains, Granter, MapGrant, MapRequest, Refs,
    Released, UnmapRequest, Unmapped, copy_complete, gnttab_copy, map_grant_ref, release_all,
    release_granter, release_mapping, unmap_grant_ref,
};
pub use shared::{CMPXCHG_ATTEMPTS, EntryHeader, SharedEntries, guest_end_access};
pub use table::{DumpEntry, GrantTable, Pins};

use xen_abi::grant::{
    GNTST_BAD_COPY_ARG, GNTST_BAD_DOMAIN, GNTST_BAD_GNTREF, GNTST_BAD_HANDLE, GNTST_GENERAL_ERROR,
    GNTST_NO_DEVICE_SPACE, GNTST_PERMISSION_DENIED,
};

/// Why a grant operation failed. [`status`](Self::status) is the `GNTST_*`
/// value Xen reports for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GntError {
    /// Map flags have neither `GNTMAP_host_map` nor `GNTMAP_device_map`
    /// (`GNTST_bad_gntref`, as Xen).
    BadMapFlags,
    /// The named domain does not exist (`GNTST_bad_domain`).
    BadDomain,
    /// No maptrack handle left (`GNTST_no_device_space`).
    NoMaptrack,
    /// The grant ref is beyond the granter's table (`GNTST_bad_gntref`).
    BadGntref,
    /// The entry is already pinned by another domain, or a pin counter would
    /// overflow (`GNTST_general_error`).
    PinConflict,
    /// The entry is not `GTF_permit_access` (or is a sub-page entry for a map)
    /// or grants another domain (`GNTST_general_error`, as Xen).
    NotGranted,
    /// Write access asked of a `GTF_readonly` entry (`GNTST_general_error`, as
    /// Xen).
    ReadonlyGrant,
    /// The guest kept changing the entry under the compare-and-swap
    /// (`GNTST_general_error`).
    Unstable,
    /// The frame does not belong to the domain that offers it
    /// (`GNTST_general_error`, as Xen 4.1's failed page reference).
    FrameNotOwned,
    /// The handle is out of range or free (`GNTST_bad_handle`).
    BadHandle,
    /// `dev_bus_addr` or the frame found at `host_addr` is not the mapped frame
    /// (`GNTST_general_error`).
    FrameMismatch,
    /// `host_addr` is not the address the handle was mapped at
    /// (`GNTST_general_error`).
    HostAddrMismatch,
    /// `offset + len` goes past the end of a page (`GNTST_bad_copy_arg`).
    BadCopyArg,
    /// A GMFN copy side names a domain other than the caller's, and the caller
    /// is not privileged (`GNTST_permission_denied`).
    CopyNotPermitted,
    /// `setup_table` asked for more than the maximum number of frames
    /// (`GNTST_general_error`).
    TooManyFrames,
    /// The hypervisor could not provide the new grant-table frames
    /// (`GNTST_general_error`).
    NoMemory,
}

impl GntError {
    /// The `GNTST_*` value written to the operation's `status` field.
    pub const fn status(self) -> i16 {
        match self {
            GntError::BadMapFlags | GntError::BadGntref => GNTST_BAD_GNTREF,
            GntError::BadDomain => GNTST_BAD_DOMAIN,
            GntError::NoMaptrack => GNTST_NO_DEVICE_SPACE,
            GntError::BadHandle => GNTST_BAD_HANDLE,
            GntError::BadCopyArg => GNTST_BAD_COPY_ARG,
            GntError::CopyNotPermitted => GNTST_PERMISSION_DENIED,
            GntError::PinConflict
            | GntError::NotGranted
            | GntError::ReadonlyGrant
            | GntError::Unstable
            | GntError::FrameNotOwned
            | GntError::FrameMismatch
            | GntError::HostAddrMismatch
            | GntError::TooManyFrames
            | GntError::NoMemory => GNTST_GENERAL_ERROR,
        }
    }
}
