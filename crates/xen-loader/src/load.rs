//! Copying a [`GuestImage`] into guest memory through a [`LoadTarget`].
//!
//! Owns the one rule of loading: after [`GuestImage::load`] returns `Ok`, every byte
//! of `[virt_kstart, virt_kend)` has been written exactly once, in ascending address
//! order: segment file bytes are copied, and the rest (each segment's tail beyond
//! `p_filesz`, and gaps between segments) is zeroed, so no stale frame contents show
//! through the image. Nothing outside that range is touched. The hypercall page, which
//! lies inside the image, is the caller's to write afterwards.
//!
//! The target decides how a guest virtual address reaches memory: Oxen writes
//! through its map cache (va → pfn = (va − virt_base) / 4096 → mfn), dom0 through
//! foreign mappings, tests into a `Vec`.

use arrayvec::ArrayVec;

use crate::elf::MAX_LOAD_SEGMENTS;
use crate::image::{GuestImage, LoadSegment};

/// Guest memory addressed by guest virtual address within the bootstrap region.
pub trait LoadTarget {
    /// Why a write failed (e.g. the address is not backed by the domain's memory).
    type Error;

    /// Copies `bytes` to `[va, va + bytes.len())`.
    fn write(&mut self, va: u32, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Zeroes `[va, va + len)`.
    fn zero(&mut self, va: u32, len: u32) -> Result<(), Self::Error>;
}

impl GuestImage<'_> {
    /// Writes the image into `target`. See the module documentation.
    pub fn load<T: LoadTarget + ?Sized>(&self, target: &mut T) -> Result<(), T::Error> {
        let mut order: ArrayVec<LoadSegment, MAX_LOAD_SEGMENTS> =
            self.segments().iter().copied().collect();
        order.sort_unstable_by_key(|s| s.load_va);

        let mut cursor = self.virt_kstart();
        for segment in &order {
            if segment.load_va > cursor {
                target.zero(cursor, segment.load_va - cursor)?;
            }
            let bytes = self.segment_bytes(segment);
            if !bytes.is_empty() {
                target.write(segment.load_va, bytes)?;
            }
            let tail = segment.elf.memsz - segment.elf.filesz;
            if tail > 0 {
                target.zero(segment.load_va + segment.elf.filesz, tail)?;
            }
            // Segments are disjoint and end at or below the hole, so this fits.
            cursor = segment.end() as u32;
        }
        Ok(())
    }
}
