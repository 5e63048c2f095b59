//! A regular file of a mounted filesystem as a [`BlockDevice`]: the backing of a `file:`
//! vbd (`/vm/domains/<name>/disk.img`) and what `xen-create-image` formats a domU's root
//! filesystem into. The device's size is the file's size when it is opened (a multiple of
//! 512); holes read as zeros, writes fill them, a flush syncs the outer filesystem.

use crate::dev::{BlockDevice, IoError, SECTOR_SIZE};
use crate::error::Error;
use crate::fs::{FileKind, Fs};

/// `errno` values carried in [`IoError::Device`] by [`FileImage`].
pub mod errno {
    /// I/O error (corruption, device failure).
    pub const EIO: u32 = 5;
    /// No space left on the outer filesystem.
    pub const ENOSPC: u32 = 28;
}

/// A regular file of `fs` seen as a disk of 512-byte sectors.
pub struct FileImage<'a, D: BlockDevice> {
    fs: &'a mut Fs<D>,
    ino: u32,
    sectors: u64,
}

impl<'a, D: BlockDevice> FileImage<'a, D> {
    /// Opens regular file `ino` of `fs`; its size must be a whole number of sectors.
    pub fn open(fs: &'a mut Fs<D>, ino: u32) -> Result<Self, Error> {
        let st = fs.stat(ino)?;
        if st.kind != FileKind::File {
            return Err(Error::IsDir);
        }
        if !st.size.is_multiple_of(SECTOR_SIZE as u64) {
            return Err(Error::Unsupported(
                "image size is not a whole number of sectors",
            ));
        }
        Ok(Self {
            fs,
            ino,
            sectors: st.size / SECTOR_SIZE as u64,
        })
    }

    fn range(&self, lba: u64, len: usize) -> Result<u64, IoError> {
        crate::dev::byte_offset(lba, len, self.sectors)
    }
}

fn io(e: Error) -> IoError {
    match e {
        Error::Io(e) => e,
        Error::NoSpace => IoError::Device(errno::ENOSPC),
        _ => IoError::Device(errno::EIO),
    }
}

impl<D: BlockDevice> BlockDevice for FileImage<'_, D> {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let off = self.range(lba, buf.len())?;
        let n = self.fs.read_at(self.ino, off, buf).map_err(io)?;
        // The file may have been truncated behind our back: what is missing reads as zeros.
        buf[n..].fill(0);
        Ok(())
    }
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        let off = self.range(lba, buf.len())?;
        self.fs.write_at(self.ino, off, buf).map_err(io)?;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.fs.sync().map_err(io)
    }
}
