//! The block device the filesystem sits on: 512-byte sectors, read, write, flush.
//!
//! dom0's virtio-blk driver implements [`BlockDevice`] for its disk; host tests use
//! [`MemDevice`] (a `Vec<u8>`) or a file-backed device of their own.
//!
//! Contract the filesystem relies on for crash consistency: a `write_sectors` that returned
//! `Ok` is kept by a later crash whenever every earlier write that returned `Ok` is kept too
//! (writes reach the medium in the order they were issued, as a synchronous virtio-blk
//! request on a QEMU image file does), and `flush` returns only when everything written
//! before it is on the medium. A device with a volatile reordering cache must turn each
//! write into a write-through one (or flush after it) to keep the ordering the filesystem
//! builds its crash recovery on.

use alloc::vec;
use alloc::vec::Vec;

/// Bytes in one sector.
pub const SECTOR_SIZE: usize = 512;

/// An I/O failure reported by the device (the filesystem passes it up unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    /// The request reached past the last sector.
    OutOfRange,
    /// The buffer length is not a multiple of [`SECTOR_SIZE`].
    BadLength,
    /// The device failed the request (driver-specific status).
    Device(u32),
}

/// A disk of 512-byte sectors.
///
/// The filesystem passes buffers of one or more whole blocks, up to the whole of one
/// `write_at`/`read_at` call when its blocks are contiguous on the disk: a driver with a
/// request size limit (virtio-blk `seg_max`/`size_max`) splits them itself.
pub trait BlockDevice {
    /// Number of sectors on the device.
    fn sector_count(&self) -> u64;
    /// Reads `buf.len() / 512` sectors starting at `lba`; `buf.len()` is a multiple of 512.
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf.len() / 512` sectors starting at `lba`; `buf.len()` is a multiple of 512.
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Returns once every completed write is on stable storage.
    fn flush(&mut self) -> Result<(), IoError>;
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn sector_count(&self) -> u64 {
        (**self).sector_count()
    }
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        (**self).read_sectors(lba, buf)
    }
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        (**self).write_sectors(lba, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        (**self).flush()
    }
}

/// A RAM disk: the device is a `Vec<u8>` whose length is a multiple of 512.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemDevice {
    /// The disk's bytes.
    pub data: Vec<u8>,
}

impl MemDevice {
    /// A zero-filled disk of `sectors` sectors.
    pub fn zeroed(sectors: usize) -> Self {
        Self {
            data: vec![0; sectors * SECTOR_SIZE],
        }
    }

    /// Wraps `data`, dropping a trailing partial sector.
    pub fn from_bytes(mut data: Vec<u8>) -> Self {
        let whole = data.len() - data.len() % SECTOR_SIZE;
        data.truncate(whole);
        Self { data }
    }

    fn range(&self, lba: u64, len: usize) -> Result<core::ops::Range<usize>, IoError> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return Err(IoError::BadLength);
        }
        let start = usize::try_from(lba)
            .ok()
            .and_then(|l| l.checked_mul(SECTOR_SIZE))
            .ok_or(IoError::OutOfRange)?;
        let end = start.checked_add(len).ok_or(IoError::OutOfRange)?;
        if end > self.data.len() {
            return Err(IoError::OutOfRange);
        }
        Ok(start..end)
    }
}

/// The byte offset of a transfer of `len` bytes at sector `lba` on a
/// device of `sectors` sectors: `len` a whole number of sectors, the range
/// inside the device.
pub(crate) fn byte_offset(lba: u64, len: usize, sectors: u64) -> Result<u64, IoError> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(IoError::BadLength);
    }
    let end = lba
        .checked_add((len / SECTOR_SIZE) as u64)
        .ok_or(IoError::OutOfRange)?;
    if end > sectors {
        return Err(IoError::OutOfRange);
    }
    Ok(lba * SECTOR_SIZE as u64)
}

impl BlockDevice for MemDevice {
    fn sector_count(&self) -> u64 {
        (self.data.len() / SECTOR_SIZE) as u64
    }
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let r = self.range(lba, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        let r = self.range(lba, buf.len())?;
        self.data[r].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// A host file as the device (feature `std`): for xtask and host tests on image files.
#[cfg(any(test, feature = "std"))]
pub struct FileDevice {
    file: std::fs::File,
    sectors: u64,
}

#[cfg(any(test, feature = "std"))]
impl FileDevice {
    /// Opens an image file read-write; its length is rounded down to whole sectors.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let sectors = file.metadata()?.len() / SECTOR_SIZE as u64;
        Ok(Self { file, sectors })
    }

    fn check(&self, lba: u64, len: usize) -> Result<u64, IoError> {
        byte_offset(lba, len, self.sectors)
    }
}

#[cfg(any(test, feature = "std"))]
impl BlockDevice for FileDevice {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        use std::os::unix::fs::FileExt;
        let off = self.check(lba, buf.len())?;
        self.file
            .read_exact_at(buf, off)
            .map_err(|e| IoError::Device(e.raw_os_error().unwrap_or(0) as u32))
    }
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        use std::os::unix::fs::FileExt;
        let off = self.check(lba, buf.len())?;
        self.file
            .write_all_at(buf, off)
            .map_err(|e| IoError::Device(e.raw_os_error().unwrap_or(0) as u32))
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.file
            .sync_data()
            .map_err(|e| IoError::Device(e.raw_os_error().unwrap_or(0) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_device_bounds() {
        let mut d = MemDevice::zeroed(4);
        assert_eq!(d.sector_count(), 4);
        let mut b = [0u8; 512];
        assert_eq!(d.read_sectors(4, &mut b), Err(IoError::OutOfRange));
        assert_eq!(d.read_sectors(0, &mut b[..100]), Err(IoError::BadLength));
        assert_eq!(d.write_sectors(u64::MAX, &b), Err(IoError::OutOfRange));
        b[0] = 7;
        d.write_sectors(3, &b).unwrap();
        let mut c = [0u8; 1024];
        d.read_sectors(2, &mut c).unwrap();
        assert_eq!((c[0], c[512]), (0, 7));
    }
}
