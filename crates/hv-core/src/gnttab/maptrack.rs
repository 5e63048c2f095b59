//! A grantee's maptrack: the grant mappings it holds, by handle.
//!
//! A handle is an index into a fixed array of `N` slots; free slots form a LIFO
//! free list (as Xen's), so the handle of the last unmapping is reused first. A
//! slot is live from a successful map until both its host and device parts are
//! unmapped (or the mapping is released); its entry keeps which of the two parts
//! are still live in `flags`. No handles left is `GNTST_no_device_space`.

use xen_abi::domid::DomId;
use xen_abi::grant::{GNTMAP_CONTAINS_PTE, GNTMAP_DEVICE_MAP, GNTMAP_HOST_MAP, GNTMAP_READONLY};
use xen_abi::types::{GrantHandle, GrantRef};

use super::GntError;
use super::table::Pins;
use crate::addr::Mfn;

/// Default number of maptrack handles per domain (enough for a backend domain
/// serving several block and network devices; Xen grows its maptrack on demand
/// up to 8 × the grant entries, we fix the size).
pub const DEFAULT_MAPTRACK_ENTRIES: usize = 1024;

/// One grant mapping held by a grantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// The granting domain.
    pub dom: DomId,
    /// The grant ref in the granter's table.
    pub gref: GrantRef,
    /// The map's `GNTMAP_*` flags; `GNTMAP_host_map` / `GNTMAP_device_map` are
    /// cleared as those parts are unmapped.
    pub flags: u32,
    /// The `host_addr` of the map (virtual address, or PTE machine address with
    /// `GNTMAP_contains_pte`).
    pub host_addr: u64,
    /// The mapped frame (the granter's active frame).
    pub frame: Mfn,
}

impl MapEntry {
    /// The host (CPU) part is live.
    pub const fn host_mapped(&self) -> bool {
        self.flags & GNTMAP_HOST_MAP != 0
    }

    /// The device part is live.
    pub const fn device_mapped(&self) -> bool {
        self.flags & GNTMAP_DEVICE_MAP != 0
    }

    /// The mapping is read-only.
    pub const fn readonly(&self) -> bool {
        self.flags & GNTMAP_READONLY != 0
    }

    /// `host_addr` is a PTE's machine address rather than a virtual address.
    pub const fn contains_pte(&self) -> bool {
        self.flags & GNTMAP_CONTAINS_PTE != 0
    }

    /// The pins the live parts hold on the granter's active entry.
    pub const fn pins(&self) -> Pins {
        Pins::for_access(self.host_mapped(), self.device_mapped(), self.readonly())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free { next: u32 },
    Used(MapEntry),
}

/// A grantee's grant mappings: `N` handles (default
/// [`DEFAULT_MAPTRACK_ENTRIES`], about 32 bytes each).
#[derive(Clone, Debug)]
pub struct Maptrack<const N: usize = DEFAULT_MAPTRACK_ENTRIES> {
    slots: [Slot; N],
    /// First free slot, `N` when none.
    free_head: u32,
    live: u32,
}

impl<const N: usize> Default for Maptrack<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Maptrack<N> {
    /// An empty maptrack.
    pub const fn new() -> Self {
        const { assert!(N >= 1 && N < u32::MAX as usize) };
        let mut slots = [Slot::Free { next: 0 }; N];
        let mut i = 0;
        while i < N {
            slots[i] = Slot::Free {
                next: (i + 1) as u32,
            };
            i += 1;
        }
        Self {
            slots,
            free_head: 0,
            live: 0,
        }
    }

    /// Empties the maptrack in place (the caller has released every mapping).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Number of handles.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of live mappings.
    pub const fn live(&self) -> u32 {
        self.live
    }

    /// No handle is free.
    pub const fn is_full(&self) -> bool {
        self.free_head as usize >= N
    }

    /// The live mapping `handle`.
    pub fn get(&self, handle: GrantHandle) -> Option<&MapEntry> {
        match self.slots.get(usize::try_from(handle).ok()?)? {
            Slot::Used(e) => Some(e),
            Slot::Free { .. } => None,
        }
    }

    /// The granting domain of `handle` (for the caller to find its table), or
    /// `GNTST_bad_handle`.
    pub fn granter_of(&self, handle: GrantHandle) -> Result<DomId, GntError> {
        self.get(handle).map(|e| e.dom).ok_or(GntError::BadHandle)
    }

    /// The live mappings in handle order.
    pub fn iter(&self) -> impl Iterator<Item = (GrantHandle, &MapEntry)> + '_ {
        self.slots.iter().enumerate().filter_map(|(h, s)| match s {
            Slot::Used(e) => Some((h as GrantHandle, e)),
            Slot::Free { .. } => None,
        })
    }

    pub(super) fn get_mut(&mut self, handle: GrantHandle) -> Option<&mut MapEntry> {
        match self.slots.get_mut(usize::try_from(handle).ok()?)? {
            Slot::Used(e) => Some(e),
            Slot::Free { .. } => None,
        }
    }

    pub(super) fn alloc(&mut self, entry: MapEntry) -> Result<GrantHandle, GntError> {
        let h = self.free_head;
        let slot = self.slots.get_mut(h as usize).ok_or(GntError::NoMaptrack)?;
        let Slot::Free { next } = *slot else {
            debug_assert!(false, "free list points at a used slot");
            return Err(GntError::NoMaptrack);
        };
        *slot = Slot::Used(entry);
        self.free_head = next;
        self.live += 1;
        Ok(h)
    }

    pub(super) fn free(&mut self, handle: GrantHandle) -> Option<MapEntry> {
        let slot = self.slots.get_mut(usize::try_from(handle).ok()?)?;
        let Slot::Used(e) = *slot else {
            return None;
        };
        *slot = Slot::Free {
            next: self.free_head,
        };
        self.free_head = handle;
        self.live -= 1;
        Some(e)
    }
}
