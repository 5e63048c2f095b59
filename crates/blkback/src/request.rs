//! Validation of one request copy (XEN-PV-ABI.md §11.1).
//!
//! Owns the rules a request must meet before any data moves: a known and
//! negotiated operation, a segment count in range, every segment inside its
//! page with `first_sect <= last_sect <= 7`, the sector range inside the device,
//! no write-class operation on a read-only vbd. The input is the back end's own
//! copy of the ring slot (taken once by `xen-ring`); [`validate`] returns a
//! [`Validated`] request whose fields are the only ones the data path uses.
//!
//! Status of a refused request, following Linux's xen-blkback: operations that
//! are unknown or not negotiated (`feature-*` = 0) get `BLKIF_RSP_EOPNOTSUPP`;
//! everything else `BLKIF_RSP_ERROR`. The `handle` field is not checked: a
//! ring serves one vbd and Xen's back ends ignore it too.

use core::fmt;

use xen_abi::blkif::{
    BLKIF_MAX_SECT_IN_PAGE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_FLUSH_DISKCACHE,
    BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR,
    BlkifRequest, BlkifRequestSegment,
};

/// What the back end offers on this vbd: fixed when the ring connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VbdParams {
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// `mode = r`: writes, flushes and barriers are refused.
    pub readonly: bool,
    /// `feature-flush-cache` advertised.
    pub flush: bool,
    /// `feature-barrier` advertised.
    pub barrier: bool,
    /// `device-type = cdrom` (only reported in `info`).
    pub cdrom: bool,
}

impl VbdParams {
    /// The parameters of a vbd on a device of `sectors` sectors: flush and
    /// barrier are offered when the device can flush and the vbd is writable.
    pub const fn new(sectors: u64, readonly: bool, device_flushes: bool) -> Self {
        let flush = device_flushes && !readonly;
        VbdParams {
            sectors,
            readonly,
            flush,
            barrier: flush,
            cdrom: false,
        }
    }
}

/// A request operation the back end implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `BLKIF_OP_READ`.
    Read,
    /// `BLKIF_OP_WRITE`.
    Write,
    /// `BLKIF_OP_FLUSH_DISKCACHE` (with or without data).
    Flush,
    /// `BLKIF_OP_WRITE_BARRIER` (with or without data).
    Barrier,
}

impl Op {
    /// Whether the operation changes the disk or its cache.
    pub const fn writes(self) -> bool {
        !matches!(self, Op::Read)
    }
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown operation, or one this back end never offers (discard,
    /// indirect, reserved).
    UnknownOp(u8),
    /// Flush or barrier without the feature negotiated.
    NotNegotiated(Op),
    /// `nr_segments` 0 for a read/write, or above 11.
    BadSegmentCount(u8),
    /// A segment with `first_sect > last_sect` or `last_sect > 7`.
    BadSegment {
        /// Index in `seg[]`.
        index: u8,
        /// Its `first_sect`.
        first_sect: u8,
        /// Its `last_sect`.
        last_sect: u8,
    },
    /// The sector range does not fit in the device.
    BeyondDevice {
        /// `sector_number`.
        sector: u64,
        /// Sectors the segments cover.
        nr_sectors: u32,
        /// Device size.
        sectors: u64,
    },
    /// A write-class operation on a read-only vbd.
    ReadOnly(Op),
}

impl Refusal {
    /// The `BLKIF_RSP_*` status answered for it.
    pub const fn status(&self) -> i16 {
        match self {
            Refusal::UnknownOp(_) | Refusal::NotNegotiated(_) => BLKIF_RSP_EOPNOTSUPP,
            _ => BLKIF_RSP_ERROR,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownOp(op) => write!(f, "unknown operation {op}"),
            Refusal::NotNegotiated(op) => write!(f, "{op:?} not offered"),
            Refusal::BadSegmentCount(n) => write!(f, "bad number of segments {n}"),
            Refusal::BadSegment {
                index,
                first_sect,
                last_sect,
            } => write!(
                f,
                "segment {index}: sectors {first_sect}..={last_sect} not in a page"
            ),
            Refusal::BeyondDevice {
                sector,
                nr_sectors,
                sectors,
            } => write!(
                f,
                "sectors {sector}+{nr_sectors} beyond the device ({sectors})"
            ),
            Refusal::ReadOnly(op) => write!(f, "{op:?} on a read-only device"),
        }
    }
}

/// A request that passed [`validate`]: the only values the data path uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The operation.
    pub op: Op,
    /// First sector (0 for a flush or barrier without data).
    pub sector: u64,
    /// Sectors covered by the segments (0 for a flush or barrier without data).
    pub nr_sectors: u32,
    /// Number of valid entries in `segs`.
    pub nr_segs: usize,
    /// The segments, each checked.
    pub segs: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

impl Validated {
    /// The checked segments.
    pub fn segments(&self) -> &[BlkifRequestSegment] {
        &self.segs[..self.nr_segs]
    }

    /// Bytes of data the request moves.
    pub const fn bytes(&self) -> usize {
        self.nr_sectors as usize * 512
    }
}

/// Checks a request copy against the vbd.
pub fn validate(req: &BlkifRequest, vbd: &VbdParams) -> Result<Validated, Refusal> {
    let op = match req.operation {
        BLKIF_OP_READ => Op::Read,
        BLKIF_OP_WRITE => Op::Write,
        BLKIF_OP_FLUSH_DISKCACHE => Op::Flush,
        BLKIF_OP_WRITE_BARRIER => Op::Barrier,
        other => return Err(Refusal::UnknownOp(other)),
    };
    match op {
        Op::Flush if !vbd.flush => return Err(Refusal::NotNegotiated(op)),
        Op::Barrier if !vbd.barrier => return Err(Refusal::NotNegotiated(op)),
        _ => {}
    }
    let n = req.nr_segments;
    let min = if matches!(op, Op::Read | Op::Write) {
        1
    } else {
        0
    };
    if n < min || usize::from(n) > BLKIF_MAX_SEGMENTS_PER_REQUEST {
        return Err(Refusal::BadSegmentCount(n));
    }
    let nr_segs = usize::from(n);
    let segs = req.seg;
    let mut nr_sectors = 0u32;
    for (i, s) in segs[..nr_segs].iter().enumerate() {
        if s.first_sect > s.last_sect || s.last_sect > BLKIF_MAX_SECT_IN_PAGE {
            return Err(Refusal::BadSegment {
                index: i as u8,
                first_sect: s.first_sect,
                last_sect: s.last_sect,
            });
        }
        nr_sectors += u32::from(s.last_sect - s.first_sect) + 1;
    }
    if vbd.readonly && op.writes() {
        return Err(Refusal::ReadOnly(op));
    }
    let sector = if nr_segs == 0 { 0 } else { req.sector_number };
    let end = sector.checked_add(u64::from(nr_sectors));
    if end.is_none_or(|end| end > vbd.sectors) {
        return Err(Refusal::BeyondDevice {
            sector,
            nr_sectors,
            sectors: vbd.sectors,
        });
    }
    let mut out = [BlkifRequestSegment::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST];
    out[..nr_segs].copy_from_slice(&segs[..nr_segs]);
    Ok(Validated {
        op,
        sector,
        nr_sectors,
        nr_segs,
        segs: out,
    })
}
