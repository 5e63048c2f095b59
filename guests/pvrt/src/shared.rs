//! A page shared with another domain (a split driver's ring), as the
//! `xen_ring::SharedMemory` both ends of a ring work on: every access is a
//! volatile one (the other domain changes the page at any time), the
//! indexes single aligned `u32` accesses, the fences the CPU's.
//!
//! Invariant: the page at `va` stays mapped read-write for as long as the
//! [`SharedPage`] lives (its constructor's contract).

use xen_abi::types::PAGE_SIZE;
use xen_ring::SharedMemory;

/// One shared page at a fixed virtual address.
pub struct SharedPage {
    va: usize,
}

impl SharedPage {
    /// The page at `va`.
    ///
    /// # Safety
    /// `va` is page-aligned and a whole page there stays mapped read-write,
    /// used by nothing in this domain but the returned value, until it is
    /// dropped.
    pub unsafe fn new(va: usize) -> Self {
        Self { va }
    }

    /// Its virtual address.
    pub fn va(&self) -> usize {
        self.va
    }

    fn at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= PAGE_SIZE),
            "access outside the shared page"
        );
        (self.va + offset) as *mut u8
    }
}

impl SharedMemory for SharedPage {
    fn len(&self) -> usize {
        PAGE_SIZE
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        let p = self.at(offset, out.len());
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: the page is mapped for this value's life (constructor
            // contract); the byte is inside it (checked).
            *b = unsafe { p.add(i).read_volatile() };
        }
    }
    fn write(&self, offset: usize, data: &[u8]) {
        let p = self.at(offset, data.len());
        for (i, b) in data.iter().enumerate() {
            // SAFETY: as for `read`; the mapping is writable.
            unsafe { p.add(i).write_volatile(*b) };
        }
    }
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(4));
        // SAFETY: as for `read`; aligned, one access.
        unsafe { self.at(offset, 4).cast::<u32>().read_volatile() }
    }
    fn write_u32(&self, offset: usize, v: u32) {
        assert!(offset.is_multiple_of(4));
        // SAFETY: as for `write`; aligned, one access.
        unsafe { self.at(offset, 4).cast::<u32>().write_volatile(v) }
    }
}
