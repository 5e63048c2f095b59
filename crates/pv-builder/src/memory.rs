//! The new domain's memory as the builder sees it: [`GuestMemory`], and the
//! bootstrap-region writer built on it.
//!
//! Owns the one way the builder reaches the new domain: every byte it stores goes
//! through [`GuestMemory::write`] or [`GuestMemory::zero`] on a pseudo-physical
//! frame of the new domain. Invariants of every call the builder makes:
//! - `pfn < nr_pages` of the request;
//! - a write never crosses a page: `offset + bytes.len() <= 4096`;
//! - a frame that is written in part is never left with stale bytes around the
//!   part: the builder zeroes the rest of every page it lays an element on.
//!
//! dom0 implements the trait over foreign mappings of the new domain's frames (the
//! pfn is translated through the P2M it passed in the request); tests implement it
//! over a vector of pages.
//!
//! `RegionWriter` addresses the bootstrap region by guest virtual address
//! (`pfn = (va − virt_base) / 4096`, XEN-PV-ABI.md §4.3), splits writes at page
//! boundaries and turns whole-page zeroing into [`GuestMemory::zero`]. It is also
//! the [`LoadTarget`] through which `xen-loader` copies the kernel image.

use xen_abi::types::{PAGE_SHIFT, PAGE_SIZE};
use xen_loader::{Element, LoadTarget};

use crate::error::BuildError;

/// Bytes of a page, as the `u32` guest addresses are computed in.
const PAGE_BYTES: u32 = PAGE_SIZE as u32;

/// A page of zeros, the source of partial-page zeroing.
static ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// The pseudo-physical frames of the domain being built.
pub trait GuestMemory {
    /// Why a frame could not be written (e.g. a foreign mapping failed).
    type Error;

    /// Copies `bytes` into frame `pfn` at byte `offset`. The builder guarantees
    /// `offset + bytes.len() <= 4096` and `pfn < nr_pages`.
    fn write(&mut self, pfn: u32, offset: u32, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Fills frame `pfn` with zeros.
    fn zero(&mut self, pfn: u32) -> Result<(), Self::Error>;
}

impl<M: GuestMemory + ?Sized> GuestMemory for &mut M {
    type Error = M::Error;

    fn write(&mut self, pfn: u32, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        (**self).write(pfn, offset, bytes)
    }

    fn zero(&mut self, pfn: u32) -> Result<(), Self::Error> {
        (**self).zero(pfn)
    }
}

/// Writes the bootstrap region by guest virtual address (see the module docs).
pub(crate) struct RegionWriter<'m, M: GuestMemory + ?Sized> {
    mem: &'m mut M,
    virt_base: u32,
    nr_pages: u32,
}

impl<'m, M: GuestMemory + ?Sized> RegionWriter<'m, M> {
    /// A writer for a region that maps pfn 0 at `virt_base`, in a domain of
    /// `nr_pages` frames.
    pub(crate) fn new(mem: &'m mut M, virt_base: u32, nr_pages: u32) -> Self {
        RegionWriter {
            mem,
            virt_base,
            nr_pages,
        }
    }

    /// The pfn mapped at `va`, if it is a frame of the domain.
    fn pfn_of(&self, va: u64) -> Result<u32, BuildError<M::Error>> {
        va.checked_sub(u64::from(self.virt_base))
            .map(|off| off >> PAGE_SHIFT)
            .filter(|&pfn| pfn < u64::from(self.nr_pages))
            .map(|pfn| pfn as u32)
            .ok_or(BuildError::OutsideDomain { va })
    }

    /// Copies `bytes` to `[va, va + bytes.len())`, page by page.
    pub(crate) fn write_bytes(
        &mut self,
        va: u32,
        mut bytes: &[u8],
    ) -> Result<(), BuildError<M::Error>> {
        let mut at = u64::from(va);
        while !bytes.is_empty() {
            let pfn = self.pfn_of(at)?;
            let offset = (at % u64::from(PAGE_BYTES)) as u32;
            let n = bytes.len().min((PAGE_BYTES - offset) as usize);
            self.mem
                .write(pfn, offset, &bytes[..n])
                .map_err(|error| BuildError::Memory { pfn, error })?;
            bytes = &bytes[n..];
            at += n as u64;
        }
        Ok(())
    }

    /// Zeroes `[va, va + len)`: whole pages with [`GuestMemory::zero`], the parts
    /// of pages at either end with writes of zeros.
    pub(crate) fn zero_bytes(&mut self, va: u32, len: u32) -> Result<(), BuildError<M::Error>> {
        let end = u64::from(va) + u64::from(len);
        let mut at = u64::from(va);
        while at < end {
            let pfn = self.pfn_of(at)?;
            let offset = (at % u64::from(PAGE_BYTES)) as u32;
            let n = (end - at).min(u64::from(PAGE_BYTES - offset)) as u32;
            let result = if n == PAGE_BYTES {
                self.mem.zero(pfn)
            } else {
                self.mem.write(pfn, offset, &ZERO_PAGE[..n as usize])
            };
            result.map_err(|error| BuildError::Memory { pfn, error })?;
            at += u64::from(n);
        }
        Ok(())
    }

    /// Lays `bytes` at the start of `element` and zeroes the rest of it.
    /// `bytes` fits the element by construction of the layout.
    pub(crate) fn fill(
        &mut self,
        element: Element,
        bytes: &[u8],
    ) -> Result<(), BuildError<M::Error>> {
        let size = element.pages << PAGE_SHIFT;
        debug_assert!(bytes.len() as u64 <= u64::from(size));
        self.write_bytes(element.va, bytes)?;
        let written = bytes.len() as u32;
        self.zero_bytes(element.va + written, size - written)
    }

    /// Zeroes `[start, end)` (page aligned, possibly empty).
    pub(crate) fn zero_range(&mut self, start: u32, end: u32) -> Result<(), BuildError<M::Error>> {
        self.zero_bytes(start, end.saturating_sub(start))
    }
}

impl<M: GuestMemory + ?Sized> LoadTarget for RegionWriter<'_, M> {
    type Error = BuildError<M::Error>;

    fn write(&mut self, va: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.write_bytes(va, bytes)
    }

    fn zero(&mut self, va: u32, len: u32) -> Result<(), Self::Error> {
        self.zero_bytes(va, len)
    }
}
