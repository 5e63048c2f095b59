//! Block front/back protocol messages, i386 layout (XEN-PV-ABI.md §11).
//!
//! **i386 layout:** `id` and `sector_number` are 4-aligned, so requests are 108
//! bytes and responses 12 (x86-64 back ends use 112/16 unless they honour
//! `protocol = "x86_32-abi"`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::types::GrantRef;

/// `blkif_vdev_t`: the virtual-device number.
pub type BlkifVdev = u16;
/// `blkif_sector_t`: a 512-byte sector number.
pub type BlkifSector = u64;

/// Sector size of every quantity on the ring and in `sectors`.
pub const BLKIF_SECTOR_SIZE: usize = 512;
/// Segments per request (≤ 44 KiB per request).
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// Highest `last_sect` in a 4 KiB page.
pub const BLKIF_MAX_SECT_IN_PAGE: u8 = 7;

/// Read.
pub const BLKIF_OP_READ: u8 = 0;
/// Write.
pub const BLKIF_OP_WRITE: u8 = 1;
/// Write barrier (back end advertises `feature-barrier`).
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// Flush the disk cache (`feature-flush-cache`).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// Reserved.
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// Trim (`feature-trim`); later named `BLKIF_OP_DISCARD`.
pub const BLKIF_OP_TRIM: u8 = 5;
/// Later name of [`BLKIF_OP_TRIM`].
pub const BLKIF_OP_DISCARD: u8 = BLKIF_OP_TRIM;
/// (later) Indirect segments (`feature-max-indirect-segments`).
pub const BLKIF_OP_INDIRECT: u8 = 6;
/// (later) Indirect pages per `BLKIF_OP_INDIRECT` request.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// `flag` of a discard request: render the discarded sectors unrecoverable.
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// Response status: success.
pub const BLKIF_RSP_OKAY: i16 = 0;
/// Response status: error.
pub const BLKIF_RSP_ERROR: i16 = -1;
/// Response status: operation not supported.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;

/// `info` bit: CD-ROM.
pub const VDISK_CDROM: u32 = 0x1;
/// `info` bit: removable medium.
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `info` bit: read-only.
pub const VDISK_READONLY: u32 = 0x4;

/// `protocol` value a 32-bit front end writes (`XEN_IO_PROTO_ABI_X86_32`).
pub const XEN_IO_PROTO_ABI_X86_32: &str = "x86_32-abi";
/// `XEN_IO_PROTO_ABI_X86_64`.
pub const XEN_IO_PROTO_ABI_X86_64: &str = "x86_64-abi";
/// `XEN_IO_PROTO_ABI_IA64`.
pub const XEN_IO_PROTO_ABI_IA64: &str = "ia64-abi";

/// `struct blkif_request_segment` (8 bytes): one granted data page.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct BlkifRequestSegment {
    /// Grant for one 4 KiB data page.
    pub gref: GrantRef,
    /// First sector in the page (0…7).
    pub first_sect: u8,
    /// Last sector in the page, inclusive (0…7).
    pub last_sect: u8,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    BlkifRequestSegment,
    size = 8,
    align = 4,
    gref = 0,
    first_sect = 4,
    last_sect = 5,
);

impl BlkifRequestSegment {
    /// Number of 512-byte sectors this segment covers (0 if malformed).
    pub const fn nr_sectors(&self) -> u32 {
        if self.first_sect > self.last_sect || self.last_sect > BLKIF_MAX_SECT_IN_PAGE {
            0
        } else {
            (self.last_sect - self.first_sect) as u32 + 1
        }
    }
}

/// `struct blkif_request` (108 bytes on i386).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// 1…11 for read/write; 0 only for barrier/flush.
    pub nr_segments: u8,
    /// Virtual-device number.
    pub handle: BlkifVdev,
    /// Opaque, echoed in the response.
    pub id: u64,
    /// Start sector (512-byte units).
    pub sector_number: BlkifSector,
    /// Data pages.
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}
assert_layout!(
    BlkifRequest,
    size = 108,
    align = 4,
    operation = 0,
    nr_segments = 1,
    handle = 2,
    id = 4,
    sector_number = 12,
    seg = 20,
);

/// `struct blkif_request_trim` (i386; shares a ring slot with requests).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct BlkifRequestTrim {
    /// `BLKIF_OP_TRIM`.
    pub operation: u8,
    /// Reserved.
    pub reserved: u8,
    /// Virtual-device number.
    pub handle: BlkifVdev,
    /// Opaque, echoed in the response.
    pub id: u64,
    /// Start sector.
    pub sector_number: BlkifSector,
    /// Number of sectors to trim.
    pub nr_sectors: u64,
}
assert_layout!(
    BlkifRequestTrim,
    size = 28,
    align = 4,
    operation = 0,
    reserved = 1,
    handle = 2,
    id = 4,
    sector_number = 12,
    nr_sectors = 20,
);

/// (later) `struct blkif_request_indirect` (64 bytes on i386: the trailing `pad`
/// makes it 64-byte aligned there). Only for back ends advertising
/// `feature-max-indirect-segments`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct BlkifRequestIndirect {
    /// `BLKIF_OP_INDIRECT`.
    pub operation: u8,
    /// `BLKIF_OP_READ` or `BLKIF_OP_WRITE`.
    pub indirect_op: u8,
    /// Number of segments, held in the indirect pages.
    pub nr_segments: u16,
    /// Opaque, echoed in the response.
    pub id: u64,
    /// Start sector.
    pub sector_number: BlkifSector,
    /// Virtual-device number.
    pub handle: BlkifVdev,
    /// Padding.
    pub _pad0: u16,
    /// Grants of the pages holding the `blkif_request_segment` array.
    pub indirect_grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    /// i386-only padding.
    pub pad: u64,
}
assert_layout!(
    BlkifRequestIndirect,
    size = 64,
    align = 4,
    operation = 0,
    indirect_op = 1,
    nr_segments = 2,
    id = 4,
    sector_number = 12,
    handle = 20,
    indirect_grefs = 24,
    pad = 56,
);

/// `struct blkif_response` (12 bytes on i386).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C, packed(4))]
pub struct BlkifResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's operation.
    pub operation: u8,
    /// Padding.
    pub _pad: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}
assert_layout!(
    BlkifResponse,
    size = 12,
    align = 4,
    id = 0,
    operation = 8,
    status = 10
);

/// Size of one ring slot (`union { request; response }`).
pub const BLKIF_RING_ENTRY_SIZE: usize = core::mem::size_of::<BlkifRequest>();
/// Entries in a one-page block ring: (4096 − 64) / 108 = 37 → 32.
pub const BLKIF_RING_SIZE: usize = crate::ring::page_ring_size(BLKIF_RING_ENTRY_SIZE);
const _: () = assert!(BLKIF_RING_SIZE == 32);

// ---- virtual-device numbers (§11.3) ----

/// Major number of `xvd*` disks.
pub const XEN_XVD_MAJOR: u32 = 202;
/// Major number of `sd*` disks.
pub const XEN_SCSI_DISK0_MAJOR: u32 = 8;
/// Major number of `hda`/`hdb`.
pub const XEN_IDE0_MAJOR: u32 = 3;
/// Flag of the extended `xvd` encoding (disks ≥ 16).
pub const XEN_VDEV_EXT_FLAG: u32 = 1 << 28;

/// `virtual-device` of xvd disk `disk` (0 = xvda), partition `part` (0 = whole):
/// `202<<8 | disk<<4 | part` below 16 disks, else `1<<28 | disk<<8 | part`.
pub const fn xvd_devid(disk: u32, part: u32) -> u32 {
    if disk < 16 && part < 16 {
        (XEN_XVD_MAJOR << 8) | (disk << 4) | part
    } else {
        XEN_VDEV_EXT_FLAG | (disk << 8) | part
    }
}

/// `virtual-device` of sd disk `disk` (0 = sda), partition `part`.
pub const fn sd_devid(disk: u32, part: u32) -> u32 {
    (XEN_SCSI_DISK0_MAJOR << 8) | (disk << 4) | part
}

/// `virtual-device` of hd disk `disk` (0 = hda), partition `part`.
pub const fn hd_devid(disk: u32, part: u32) -> u32 {
    (XEN_IDE0_MAJOR << 8) | (disk << 6) | part
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    #[test]
    fn devids() {
        assert_eq!(xvd_devid(0, 0), 51712);
        assert_eq!(xvd_devid(1, 2), 51712 + 16 + 2);
        assert_eq!(xvd_devid(16, 1), (1 << 28) | (16 << 8) | 1);
        assert_eq!(sd_devid(0, 1), 2049);
        assert_eq!(sd_devid(0, 2), 2050);
        assert_eq!(hd_devid(1, 0), 832);
    }

    #[test]
    fn request_from_ring_bytes() {
        let mut slot = [0u8; BLKIF_RING_ENTRY_SIZE];
        slot[0] = BLKIF_OP_WRITE;
        slot[1] = 2;
        slot[2..4].copy_from_slice(&2049u16.to_le_bytes());
        slot[4..12].copy_from_slice(&0xDEAD_BEEF_0000_0001u64.to_le_bytes());
        slot[12..20].copy_from_slice(&100u64.to_le_bytes());
        slot[28..32].copy_from_slice(&7u32.to_le_bytes()); // seg[1].gref
        slot[32] = 0;
        slot[33] = 7;
        let r = BlkifRequest::read_from_bytes(&slot).unwrap();
        assert_eq!({ r.id }, 0xDEAD_BEEF_0000_0001);
        assert_eq!({ r.sector_number }, 100);
        assert_eq!(r.handle, 2049);
        let seg = r.seg;
        assert_eq!(seg[1].gref, 7);
        assert_eq!(seg[1].nr_sectors(), 8);
        let bad = BlkifRequestSegment {
            gref: 0,
            first_sect: 3,
            last_sect: 2,
            _pad: 0,
        };
        assert_eq!(bad.nr_sectors(), 0);
    }
}
