//! The one-page shared ring of the split-driver protocols (XEN-PV-ABI.md §10).
//!
//! A `<name>_sring` page starts with a 64-byte header of free-running indexes,
//! followed by an array of `union { request; response }` whose length is the
//! largest power of two that fits.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::types::{PAGE_SIZE, RingIdx};

/// Offset of `ring[]` in a shared-ring page.
pub const SRING_HEADER_SIZE: usize = 64;

/// The header of a shared ring page (`struct <name>_sring` without `ring[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SringHeader {
    /// Written by the front end.
    pub req_prod: RingIdx,
    /// Written by the back end: notify me when `req_prod` passes this.
    pub req_event: RingIdx,
    /// Written by the back end.
    pub rsp_prod: RingIdx,
    /// Written by the front end: notify me when `rsp_prod` passes this.
    pub rsp_event: RingIdx,
    /// Union `private` (netif `smartpoll_active`, tapif `msg`); zero.
    pub private: [u8; 4],
    /// Padding up to `ring[]`.
    pub _pad: [u8; 44],
}
assert_layout!(
    SringHeader,
    size = SRING_HEADER_SIZE,
    align = 4,
    req_prod = 0,
    req_event = 4,
    rsp_prod = 8,
    rsp_event = 12,
    private = 16,
    _pad = 20,
);
zeroed_default!(SringHeader);

impl SringHeader {
    /// `SHARED_RING_INIT` (front end only): producers 0, events 1, padding zeroed.
    pub const fn new() -> Self {
        Self {
            req_prod: 0,
            req_event: 1,
            rsp_prod: 0,
            rsp_event: 1,
            private: [0; 4],
            _pad: [0; 44],
        }
    }
}

/// Number of entries of a ring of `entry_size`-byte entries in a `ring_bytes`
/// page: `(ring_bytes − 64) / entry_size` rounded down to a power of two.
pub const fn ring_size(ring_bytes: usize, entry_size: usize) -> usize {
    let n = (ring_bytes - SRING_HEADER_SIZE) / entry_size;
    if n == 0 { 0 } else { 1 << n.ilog2() }
}

/// Number of entries in a one-page ring of `entry_size`-byte entries.
pub const fn page_ring_size(entry_size: usize) -> usize {
    ring_size(PAGE_SIZE, entry_size)
}

/// Slot of free-running index `idx` in a ring of `size` (a power of two) entries.
pub const fn ring_slot(idx: RingIdx, size: usize) -> usize {
    (idx as usize) & (size - 1)
}

/// Byte offset of slot `slot` in the ring page.
pub const fn ring_entry_offset(slot: usize, entry_size: usize) -> usize {
    SRING_HEADER_SIZE + slot * entry_size
}

/// The push-and-check rule: after publishing producer `new_prod` (previously
/// `old_prod`), notify iff the peer's `event` lies in `(old_prod, new_prod]`.
pub const fn push_needs_notify(old_prod: RingIdx, new_prod: RingIdx, event: RingIdx) -> bool {
    new_prod.wrapping_sub(event) < new_prod.wrapping_sub(old_prod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_two() {
        assert_eq!(page_ring_size(108), 32);
        assert_eq!(page_ring_size(12), 256);
        assert_eq!(page_ring_size(8), 256);
        assert_eq!(page_ring_size(4032), 1);
        assert_eq!(page_ring_size(4033), 0);
        assert_eq!(ring_slot(33, 32), 1);
        assert_eq!(ring_slot(u32::MAX, 32), 31);
        assert_eq!(ring_entry_offset(2, 108), 280);
    }

    #[test]
    fn notify_hold_off() {
        // Peer asked to be told when prod passes 5.
        assert!(push_needs_notify(4, 5, 5));
        assert!(push_needs_notify(3, 8, 5));
        assert!(!push_needs_notify(5, 8, 5));
        assert!(!push_needs_notify(1, 4, 5));
        // Across wrap-around.
        assert!(push_needs_notify(u32::MAX - 1, 2, 0));
        assert!(!push_needs_notify(u32::MAX - 1, u32::MAX, 0));
        let h = SringHeader::new();
        assert_eq!((h.req_event, h.rsp_event), (1, 1));
    }
}
