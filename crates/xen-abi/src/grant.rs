//! Grant tables, version 1 (XEN-PV-ABI.md §9).
//!
//! A guest publishes `grant_entry_v1` records in its grant-table frames; other
//! domains map or copy the granted frames with `grant_table_op` (#20).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::{GrantHandle, GrantRef, GuestHandle, PAGE_SIZE, XenPfn};

/// `struct grant_entry_v1` (8 bytes). Publish by writing `domid` and `frame`, a
/// write barrier, then `flags`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GrantEntryV1 {
    /// `GTF_*`: type and permissions (guest), in-use bits (Xen).
    pub flags: u16,
    /// Domain being granted access.
    pub domid: DomId,
    /// MFN granted; for transfers, filled by Xen with the new frame.
    pub frame: u32,
}
assert_layout!(
    GrantEntryV1,
    size = 8,
    align = 4,
    flags = 0,
    domid = 2,
    frame = 4
);

/// v1 entries per grant-table frame.
pub const GRANT_ENTRIES_V1_PER_PAGE: usize = PAGE_SIZE / core::mem::size_of::<GrantEntryV1>();
const _: () = assert!(GRANT_ENTRIES_V1_PER_PAGE == 512);
/// Xen 4.1's default maximum number of grant-table frames per domain.
pub const DEFAULT_MAX_NR_GRANT_FRAMES: u32 = 32;
/// (4.2+ convention) grant ref reserved for the console ring.
pub const GNTTAB_RESERVED_CONSOLE: GrantRef = 0;
/// (4.2+ convention) grant ref reserved for the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: GrantRef = 1;
/// (4.2+ convention) refs below this are reserved for the toolstack.
pub const GNTTAB_NR_RESERVED_ENTRIES: GrantRef = 8;

/// Type: no access.
pub const GTF_INVALID: u16 = 0;
/// Type: `domid` may map/copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// Type: `domid` may transfer a page to us.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// Type (v2 only): transitive grant.
pub const GTF_TRANSITIVE: u16 = 3;
/// The type bits.
pub const GTF_TYPE_MASK: u16 = 3;
/// Grantee may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// Xen: in use for reading.
pub const GTF_READING: u16 = 1 << 3;
/// Xen: in use for writing.
pub const GTF_WRITING: u16 = 1 << 4;
/// Cache attribute: write-through.
pub const GTF_PWT: u16 = 1 << 5;
/// Cache attribute: cache disable.
pub const GTF_PCD: u16 = 1 << 6;
/// Cache attribute: PAT.
pub const GTF_PAT: u16 = 1 << 7;
/// (v2) sub-page grant.
pub const GTF_SUB_PAGE: u16 = 1 << 8;
/// (accept_transfer) Xen is committed to the transfer; do not touch the entry.
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// (accept_transfer) `frame` now holds the transferred MFN.
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

// ---- grant_table_op commands (§9.2) ----

/// Map a granted frame.
pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
/// Unmap a grant mapping.
pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
/// Get the MFNs of the caller's grant-table frames.
pub const GNTTABOP_SETUP_TABLE: u32 = 2;
/// Dump a grant table to Xen's console.
pub const GNTTABOP_DUMP_TABLE: u32 = 3;
/// Give a page to another domain.
pub const GNTTABOP_TRANSFER: u32 = 4;
/// Copy between granted/own frames.
pub const GNTTABOP_COPY: u32 = 5;
/// Query the current and maximum table size.
pub const GNTTABOP_QUERY_SIZE: u32 = 6;
/// Unmap and replace with another mapping.
pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
/// Select grant-table version 1 or 2.
pub const GNTTABOP_SET_VERSION: u32 = 8;
/// (v2) get the status frames.
pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
/// Get the grant-table version.
pub const GNTTABOP_GET_VERSION: u32 = 10;
/// (later Xen) swap two grant refs.
pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
/// (later Xen) cache flush.
pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

/// Return a bus address in `dev_bus_addr`.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// Create a CPU mapping.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// Map read-only.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// Mapping accessible from user mode.
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// `host_addr` is the machine address of the PTE to write.
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;
/// The operation may fail without side effects.
pub const GNTMAP_CAN_FAIL: u32 = 1 << 5;
/// Bits copied into the PTE's available bits (`XENFEAT_gnttab_map_avail_bits`).
pub const GNTMAP_GUEST_AVAIL_MASK: u32 = 0xFFFF_0000;

/// `GNTCOPY_source_gref`: `source.u` is a grant ref (else a GMFN).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`: `dest.u` is a grant ref (else a GMFN).
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;
/// `GNTCOPY_can_fail`.
pub const GNTCOPY_CAN_FAIL: u16 = 1 << 2;

/// Per-operation status: success.
pub const GNTST_OKAY: i16 = 0;
/// Unspecified error.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// Unrecognised domain id.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// Unrecognised or inappropriate grant ref.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// Unrecognised or inappropriate handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// Inappropriate virtual address to map.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// Inappropriate device address to unmap.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// Out of space in the I/O MMU.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// Not enough privilege for the operation.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// Specified page was invalid for the operation.
pub const GNTST_BAD_PAGE: i16 = -9;
/// Copy arguments cross a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// Page address size too large for the destination domain.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// Operation not done; try again.
pub const GNTST_EAGAIN: i16 = -12;
/// (later Xen) out of space.
pub const GNTST_NO_SPACE: i16 = -13;

/// `struct gnttab_map_grant_ref` (32 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct GnttabMapGrantRef {
    /// IN: virtual address (or PTE machine address with `GNTMAP_contains_pte`).
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: grant ref (`ref`).
    pub gref: GrantRef,
    /// IN: granting domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: handle for unmapping.
    pub handle: GrantHandle,
    /// OUT: bus address (`GNTMAP_device_map`).
    pub dev_bus_addr: u64,
}
assert_layout!(
    GnttabMapGrantRef,
    size = 32,
    align = 4,
    host_addr = 0,
    flags = 8,
    gref = 12,
    dom = 16,
    status = 18,
    handle = 20,
    dev_bus_addr = 24,
);

/// `struct gnttab_unmap_grant_ref` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct GnttabUnmapGrantRef {
    /// IN: address used when mapping.
    pub host_addr: u64,
    /// IN: bus address used when mapping.
    pub dev_bus_addr: u64,
    /// IN: handle returned by the map.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    GnttabUnmapGrantRef,
    size = 24,
    align = 4,
    host_addr = 0,
    dev_bus_addr = 8,
    handle = 16,
    status = 20,
);

/// `struct gnttab_setup_table` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetupTable {
    /// IN: domain (`DOMID_SELF` or privileged).
    pub dom: DomId,
    /// Padding.
    pub _pad0: u16,
    /// IN: number of frames wanted.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: u16,
    /// IN: guest array of `unsigned long` MFNs, filled by Xen.
    pub frame_list: GuestHandle,
}
assert_layout!(
    GnttabSetupTable,
    size = 16,
    align = 4,
    dom = 0,
    nr_frames = 4,
    status = 8,
    frame_list = 12,
);

/// `struct gnttab_dump_table` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabDumpTable {
    /// IN: domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
}
assert_layout!(GnttabDumpTable, size = 4, align = 2, dom = 0, status = 2);

/// `struct gnttab_transfer` (16 bytes): give page `mfn` to `domid`'s
/// accept-transfer entry `ref`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabTransfer {
    /// IN: our frame to give away.
    pub mfn: XenPfn,
    /// IN: receiving domain.
    pub domid: DomId,
    /// Padding.
    pub _pad0: u16,
    /// IN: the receiver's accept-transfer grant ref (`ref`).
    pub gref: GrantRef,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: u16,
}
assert_layout!(
    GnttabTransfer,
    size = 16,
    align = 4,
    mfn = 0,
    domid = 4,
    gref = 8,
    status = 12,
);

/// One end of a `gnttab_copy` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCopyPtr {
    /// Union `{ref, gmfn}`: a grant ref if the matching `GNTCOPY_*_gref` flag is
    /// set, else a GMFN of the caller.
    pub u: u32,
    /// Domain owning the frame.
    pub domid: DomId,
    /// Byte offset in the frame.
    pub offset: u16,
}
assert_layout!(
    GnttabCopyPtr,
    size = 8,
    align = 4,
    u = 0,
    domid = 4,
    offset = 6
);

/// `struct gnttab_copy` (24 bytes). A copy may not cross a page boundary.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabCopy {
    /// IN: source.
    pub source: GnttabCopyPtr,
    /// IN: destination.
    pub dest: GnttabCopyPtr,
    /// IN: bytes to copy.
    pub len: u16,
    /// IN: `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    GnttabCopy,
    size = 24,
    align = 4,
    source = 0,
    source.u = 0,
    source.domid = 4,
    source.offset = 6,
    dest = 8,
    dest.u = 8,
    dest.domid = 12,
    dest.offset = 14,
    len = 16,
    flags = 18,
    status = 20,
);

/// `struct gnttab_query_size` (16 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabQuerySize {
    /// IN: domain.
    pub dom: DomId,
    /// Padding.
    pub _pad0: u16,
    /// OUT: current number of frames.
    pub nr_frames: u32,
    /// OUT: maximum number of frames.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad1: u16,
}
assert_layout!(
    GnttabQuerySize,
    size = 16,
    align = 4,
    dom = 0,
    nr_frames = 4,
    max_nr_frames = 8,
    status = 12,
);

/// `struct gnttab_unmap_and_replace` (24 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct GnttabUnmapAndReplace {
    /// IN: address of the grant mapping.
    pub host_addr: u64,
    /// IN: address whose mapping replaces it.
    pub new_addr: u64,
    /// IN: handle of the mapping.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    GnttabUnmapAndReplace,
    size = 24,
    align = 4,
    host_addr = 0,
    new_addr = 8,
    handle = 16,
    status = 20,
);

/// `struct gnttab_set_version` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabSetVersion {
    /// IN/OUT: 1 or 2 (only before first use).
    pub version: u32,
}
assert_layout!(GnttabSetVersion, size = 4, align = 4, version = 0);

/// `struct gnttab_get_status_frames` (12 bytes, v2).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabGetStatusFrames {
    /// IN: number of frames.
    pub nr_frames: u32,
    /// IN: domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// IN: guest array of `u64` frame numbers, filled by Xen.
    pub frame_list: GuestHandle,
}
assert_layout!(
    GnttabGetStatusFrames,
    size = 12,
    align = 4,
    nr_frames = 0,
    dom = 4,
    status = 6,
    frame_list = 8,
);

/// `struct gnttab_get_version` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct GnttabGetVersion {
    /// IN: domain.
    pub dom: DomId,
    /// Padding.
    pub _pad: u16,
    /// OUT: version.
    pub version: u32,
}
assert_layout!(GnttabGetVersion, size = 8, align = 4, dom = 0, version = 4);

/// Where grant ref `r` lives: (grant-table frame index, byte offset in it).
pub const fn grant_entry_v1_location(r: GrantRef) -> (usize, usize) {
    let i = r as usize;
    (
        i / GRANT_ENTRIES_V1_PER_PAGE,
        (i % GRANT_ENTRIES_V1_PER_PAGE) * core::mem::size_of::<GrantEntryV1>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_location() {
        assert_eq!(grant_entry_v1_location(0), (0, 0));
        assert_eq!(grant_entry_v1_location(511), (0, 4088));
        assert_eq!(grant_entry_v1_location(513), (1, 8));
    }

    #[test]
    fn flag_values() {
        assert_eq!(GTF_PERMIT_ACCESS | GTF_READONLY, 5);
        assert_eq!(GTF_READING | GTF_WRITING, 0x18);
        assert_eq!(GTF_TRANSFER_COMMITTED, GTF_READONLY);
        assert_eq!(GNTMAP_HOST_MAP | GNTMAP_READONLY, 6);
    }
}
