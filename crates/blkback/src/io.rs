//! The two things the service drives: the frontend's granted pages (through
//! grant copies) and the block device behind the vbd.
//!
//! [`GrantCopy`] follows `GNTTABOP_copy` (XEN-PV-ABI.md §9.2): each
//! [`CopyOp`] moves bytes between one granted frame of the front end and the
//! back end's own bounce buffer, in one direction, without crossing a page on
//! either side. A read request copies disk data *into* the front end's frame
//! (the grant must be writable); a write copies *from* it.
//!
//! [`BlockDevice`] is the storage: `write` returning `Ok` means the data is
//! where a later `flush` will find it; `flush` returning `Ok` means everything
//! written before is on stable storage.

use xen_abi::blkif::BLKIF_MAX_SEGMENTS_PER_REQUEST;
use xen_abi::types::{GrantRef, PAGE_SIZE};

/// Size of the bounce buffer a [`GrantCopy`] provides: one page per segment.
pub const BOUNCE_BYTES: usize = BLKIF_MAX_SEGMENTS_PER_REQUEST * PAGE_SIZE;

/// Direction of a grant copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CopyDir {
    /// Bounce buffer → the front end's frame (serving a read; the grant must
    /// not be read-only).
    ToFrontend,
    /// The front end's frame → bounce buffer (serving a write).
    #[default]
    FromFrontend,
}

/// One grant copy.
///
/// Invariants (the service builds only such ops): `len > 0`,
/// `gref_offset + len <= PAGE_SIZE`, `local_offset % PAGE_SIZE + len <= PAGE_SIZE`,
/// `local_offset + len <= BOUNCE_BYTES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CopyOp {
    /// Direction.
    pub dir: CopyDir,
    /// The front end's grant.
    pub gref: GrantRef,
    /// Byte offset in the granted frame.
    pub gref_offset: u16,
    /// Byte offset in the bounce buffer.
    pub local_offset: u32,
    /// Bytes to copy.
    pub len: u16,
}

/// A failed batch: the first op that failed and its `GNTST_*` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyError {
    /// Index in the batch.
    pub index: usize,
    /// `GNTST_*` (negative).
    pub status: i16,
}

/// Grant copies against one front end, with the back end's bounce buffer.
pub trait GrantCopy {
    /// The bounce buffer: at least [`BOUNCE_BYTES`] bytes, page `i` of it at
    /// `[i * PAGE_SIZE, (i + 1) * PAGE_SIZE)` (one local frame per page).
    fn buffer(&mut self) -> &mut [u8];
    /// Runs a batch (one `GNTTABOP_copy` hypercall in dom0). `Ok` only if
    /// every op succeeded; ops after a failed one may or may not have run.
    fn copy(&mut self, ops: &[CopyOp]) -> Result<(), CopyError>;
}

/// A failed device operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// The device failed (answered with `BLKIF_RSP_ERROR`).
    Io,
    /// The device cannot do this (a flush: `BLKIF_RSP_EOPNOTSUPP`).
    Unsupported,
}

/// The storage behind a vbd, in 512-byte sectors.
pub trait BlockDevice {
    /// Size in 512-byte sectors.
    fn sectors(&self) -> u64;
    /// Whether [`BlockDevice::flush`] does anything (a volatile cache exists
    /// and can be flushed).
    fn supports_flush(&self) -> bool;
    /// Reads `buf.len()` bytes (a multiple of 512) from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `data` (a multiple of 512 bytes) from `sector` on; `Ok` once a
    /// later flush will find it.
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError>;
    /// Puts every completed write on stable storage.
    fn flush(&mut self) -> Result<(), IoError>;
}
