//! Why a domU could not be built: [`BuildError`].
//!
//! Owns the builder's one error type. Each variant names one rule of the request,
//! the kernel (XEN-PV-ABI.md §16, through `xen-loader`'s [`LoadError`]), the
//! bootstrap layout (§4.3, [`LayoutError`]), the machine-address limits (§4.1,
//! §7.5), or a failure of the [`GuestMemory`](crate::GuestMemory) the builder
//! writes through, which is passed on unchanged with the frame it concerned. The
//! `Display` text says which, with the offending values, so the toolstack can print
//! it to the user as is.

use core::fmt;

use xen_loader::{LayoutError, LoadError};

/// A domU build was refused or failed. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError<E> {
    /// The P2M handed in does not have one MFN per page of the domain.
    P2mLengthMismatch { nr_pages: u32, mfns: usize },
    /// The kernel image was refused (not a valid Xen PAE kernel, or it requires a
    /// feature the hypervisor does not offer).
    Image(LoadError),
    /// The ramdisk is 4 GiB or larger.
    RamdiskTooLarge { len: usize },
    /// The bootstrap region does not fit in the domain or below the hypervisor hole.
    Layout(LayoutError),
    /// `start_info.shared_info` holds a 32-bit machine address (§4.1): the
    /// shared-info frame must lie below 4 GiB.
    SharedInfoAbove4G { mfn: u32 },
    /// The kernel does not declare extended-cr3 support, so its L3 must lie below
    /// 4 GiB (§7.5), but the P2M puts the L3's pfn at a higher MFN. The caller
    /// must give that pfn a frame below 4 GiB (libxc exchanges it) and retry.
    L3Above4G { pfn: u32, mfn: u32 },
    /// A write fell outside the domain's frames (a builder bug; never expected).
    OutsideDomain { va: u64 },
    /// The guest memory refused a write to frame `pfn`.
    Memory { pfn: u32, error: E },
}

impl<E> From<LoadError> for BuildError<E> {
    fn from(e: LoadError) -> Self {
        BuildError::Image(e)
    }
}

impl<E> From<LayoutError> for BuildError<E> {
    fn from(e: LayoutError) -> Self {
        BuildError::Layout(e)
    }
}

impl<E: fmt::Display> fmt::Display for BuildError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::P2mLengthMismatch { nr_pages, mfns } => write!(
                f,
                "the P2M has {mfns} MFNs but the domain has {nr_pages} pages"
            ),
            BuildError::Image(e) => write!(f, "kernel refused: {e}"),
            BuildError::RamdiskTooLarge { len } => {
                write!(f, "ramdisk of {len} bytes is 4 GiB or larger")
            }
            BuildError::Layout(e) => write!(f, "{e}"),
            BuildError::SharedInfoAbove4G { mfn } => write!(
                f,
                "shared_info frame {mfn:#x} is above 4 GiB; start_info.shared_info holds a \
                 32-bit machine address"
            ),
            BuildError::L3Above4G { pfn, mfn } => write!(
                f,
                "bootstrap L3 (pfn {pfn:#x}) is at mfn {mfn:#x}, above 4 GiB, and the kernel \
                 does not declare extended-cr3 support"
            ),
            BuildError::OutsideDomain { va } => write!(
                f,
                "builder bug: write at {va:#x} falls outside the domain's frames"
            ),
            BuildError::Memory { pfn, error } => {
                write!(f, "writing the new domain's pfn {pfn:#x} failed: {error}")
            }
        }
    }
}
