//! `memory_op` sub-commands and structs, i386 layout (XEN-PV-ABI.md §15.5).
//!
//! The low bits of `cmd` select the sub-command; Xen uses the bits from
//! [`MEMOP_EXTENT_SHIFT`] up to restart preempted calls (guests pass them as 0).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::{GuestHandle, XenPfn};

pub use crate::hypercall::{MEMOP_CMD_MASK, MEMOP_EXTENT_SHIFT};

/// Allocate extents; OUT: their MFNs. Returns the number done.
pub const XENMEM_INCREASE_RESERVATION: u32 = 0;
/// Free the listed GMFNs. Returns the number done.
pub const XENMEM_DECREASE_RESERVATION: u32 = 1;
/// NULL → one above the highest RAM MFN; never fails.
pub const XENMEM_MAXIMUM_RAM_PAGE: u32 = 2;
/// `domid_t *` → current pages.
pub const XENMEM_CURRENT_RESERVATION: u32 = 3;
/// `domid_t *` → maximum pages.
pub const XENMEM_MAXIMUM_RESERVATION: u32 = 4;
/// [`XenMachphysMfnList`]: MFNs of the 2 MiB M2P chunks.
pub const XENMEM_MACHPHYS_MFN_LIST: u32 = 5;
/// Allocate at the listed GPFNs; for PV, Xen writes the new MFNs back.
pub const XENMEM_POPULATE_PHYSMAP: u32 = 6;
/// [`XenAddToPhysmap`] (translated guests only).
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
/// [`XenMemoryMap`]: the domain's E820 map.
pub const XENMEM_MEMORY_MAP: u32 = 9;
/// [`XenMemoryMap`]: the machine's E820 map (dom0).
pub const XENMEM_MACHINE_MEMORY_MAP: u32 = 10;
/// [`XenMemoryExchange`].
pub const XENMEM_EXCHANGE: u32 = 11;
/// [`XenMachphysMapping`]: where the M2P is in this guest.
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;
/// [`XenForeignMemoryMap`] (toolstack).
pub const XENMEM_SET_MEMORY_MAP: u32 = 13;
/// `domid_t *` → maximum GPFN.
pub const XENMEM_MAXIMUM_GPFN: u32 = 14;

/// `mem_flags` bits 0–7: maximum address bits of the allocated frames (0 = any).
pub const XENMEMF_ADDRESS_BITS_MASK: u32 = 0xFF;
/// `XENMEMF_populate_on_demand`.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `XENMEMF_exact_node_request`.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;

/// `XENMEMF_address_bits(bits)`.
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits & XENMEMF_ADDRESS_BITS_MASK
}

/// `XENMEMF_node(n)`: `(n + 1) << 8`.
pub const fn xenmemf_node(node: u32) -> u32 {
    ((node + 1) & 0xFF) << 8
}

/// The NUMA node requested by `mem_flags`, if any.
pub const fn xenmemf_get_node(flags: u32) -> Option<u32> {
    match (flags >> 8) & 0xFF {
        0 => None,
        n => Some(n - 1),
    }
}

/// `struct xen_memory_reservation` (20 bytes on i386).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryReservation {
    /// Guest array of `xen_pfn_t`.
    pub extent_start: GuestHandle,
    /// Number of extents.
    pub nr_extents: u32,
    /// Pages per extent = 2^order.
    pub extent_order: u32,
    /// `XENMEMF_*` (before 0x00030209: `address_bits`).
    pub mem_flags: u32,
    /// Target domain.
    pub domid: DomId,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    XenMemoryReservation,
    size = 20,
    align = 4,
    extent_start = 0,
    nr_extents = 4,
    extent_order = 8,
    mem_flags = 12,
    domid = 16,
);

/// `struct xen_machphys_mfn_list` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMachphysMfnList {
    /// IN: size of the array.
    pub max_extents: u32,
    /// Guest array of `xen_pfn_t`, filled by Xen.
    pub extent_start: GuestHandle,
    /// OUT: number of entries written.
    pub nr_extents: u32,
}
assert_layout!(
    XenMachphysMfnList,
    size = 12,
    align = 4,
    max_extents = 0,
    extent_start = 4,
    nr_extents = 8,
);

/// `XENMAPSPACE_shared_info`.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`.
pub const XENMAPSPACE_GMFN: u32 = 2;

/// `struct xen_add_to_physmap` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenAddToPhysmap {
    /// Domain.
    pub domid: DomId,
    /// Padding.
    pub _pad: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    /// Index in the space.
    pub idx: u32,
    /// GPFN to map it at.
    pub gpfn: XenPfn,
}
assert_layout!(
    XenAddToPhysmap,
    size = 16,
    align = 4,
    domid = 0,
    space = 4,
    idx = 8,
    gpfn = 12
);

/// `struct xen_memory_map` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryMap {
    /// IN: entries the buffer holds; OUT: entries written.
    pub nr_entries: u32,
    /// Guest array of [`E820Entry`].
    pub buffer: GuestHandle,
}
assert_layout!(
    XenMemoryMap,
    size = 8,
    align = 4,
    nr_entries = 0,
    buffer = 4
);

/// `struct xen_foreign_memory_map` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenForeignMemoryMap {
    /// Domain whose map to set.
    pub domid: DomId,
    /// Padding.
    pub _pad: u16,
    /// The map.
    pub map: XenMemoryMap,
}
assert_layout!(
    XenForeignMemoryMap,
    size = 12,
    align = 4,
    domid = 0,
    map = 4
);

/// `struct xen_memory_exchange` (44 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMemoryExchange {
    /// Extents to give up.
    pub in_: XenMemoryReservation,
    /// Extents to receive.
    pub out: XenMemoryReservation,
    /// Progress (must be 0 on entry).
    pub nr_exchanged: u32,
}
assert_layout!(
    XenMemoryExchange,
    size = 44,
    align = 4,
    in_ = 0,
    out = 20,
    nr_exchanged = 40
);

/// `struct xen_machphys_mapping` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenMachphysMapping {
    /// Start of the M2P in this guest.
    pub v_start: u32,
    /// End of the M2P in this guest.
    pub v_end: u32,
    /// Highest MFN the M2P describes.
    pub max_mfn: u32,
}
assert_layout!(
    XenMachphysMapping,
    size = 12,
    align = 4,
    v_start = 0,
    v_end = 4,
    max_mfn = 8
);

/// E820 type: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 type: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 type: ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// E820 type: ACPI NVS.
pub const E820_NVS: u32 = 4;
/// E820 type: unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One E820 entry of a `XENMEM_*memory_map` buffer (the BIOS layout, 20 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct E820Entry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// `E820_*`.
    pub type_: u32,
}
assert_layout!(
    E820Entry,
    size = 20,
    align = 4,
    addr = 0,
    size = 8,
    type_ = 16
);

/// Splits a `memory_op` `cmd` into (sub-command, restart extent).
pub const fn memop_split(cmd: u32) -> (u32, u32) {
    (cmd & MEMOP_CMD_MASK, cmd >> MEMOP_EXTENT_SHIFT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_cmd() {
        assert_eq!(xenmemf_node(0), 0x100);
        assert_eq!(xenmemf_get_node(xenmemf_node(3) | 32), Some(3));
        assert_eq!(xenmemf_get_node(32), None);
        assert_eq!(xenmemf_address_bits(0x1_20), 0x20);
        assert_eq!(
            memop_split(XENMEM_POPULATE_PHYSMAP | 5 << MEMOP_EXTENT_SHIFT),
            (6, 5)
        );
    }
}
