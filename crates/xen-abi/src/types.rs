//! Scalar types of the i386 ABI (XEN-PV-ABI.md §0) and helpers for C unions.
//!
//! On i386 `long`, `unsigned long`, pointers, `xen_pfn_t` and `xen_ulong_t` are all
//! 4 bytes, and a `XEN_GUEST_HANDLE(x)` is one pointer. The tools interface
//! (`domctl`/`sysctl`) uses 8-byte `XEN_GUEST_HANDLE_64` and 8-aligned `u64`.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A (pseudo-)physical or machine frame number (`xen_pfn_t`, `unsigned long`).
pub type XenPfn = u32;
/// `xen_ulong_t` on i386.
pub type XenUlong = u32;
/// A guest virtual address carried by a `XEN_GUEST_HANDLE(x)` (4 bytes on i386).
pub type GuestHandle = u32;
/// A `XEN_GUEST_HANDLE_64(x)` of the tools interface: a guest virtual address in
/// the low 32 bits for a 32-bit caller.
pub type GuestHandle64 = u64;
/// An event-channel port (`evtchn_port_t`).
pub type EvtchnPort = u32;
/// An index into the grant table (`grant_ref_t`).
pub type GrantRef = u32;
/// A handle to a grant mapping (`grant_handle_t`).
pub type GrantHandle = u32;
/// A free-running shared-ring index (`RING_IDX`).
pub type RingIdx = u32;

/// Size of a guest page and of a machine frame.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// Reads a `T` from the start of a C union's storage. `T` must fit; the check is
/// done at compile time.
pub(crate) fn read_union<T: FromBytes + IntoBytes, const N: usize>(storage: &[u8; N]) -> T {
    const { assert!(core::mem::size_of::<T>() <= N) };
    let mut v = T::new_zeroed();
    v.as_mut_bytes()
        .copy_from_slice(&storage[..core::mem::size_of::<T>()]);
    v
}

/// Stores `v` at the start of a C union's storage and zeroes the rest.
pub(crate) fn write_union<T: IntoBytes + Immutable, const N: usize>(storage: &mut [u8; N], v: &T) {
    const { assert!(core::mem::size_of::<T>() <= N) };
    let bytes = v.as_bytes();
    storage.fill(0);
    storage[..bytes.len()].copy_from_slice(bytes);
}
