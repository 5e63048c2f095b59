//! The domU console ring page and `console_io` (XEN-PV-ABI.md §14).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `console_io` command: print `count` bytes on Xen's console.
pub const CONSOLEIO_WRITE: u32 = 0;
/// `console_io` command: read up to `count` bytes of pending serial input.
pub const CONSOLEIO_READ: u32 = 1;

/// Size of the back end → guest (input) ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Size of the guest → back end (output) ring.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `MASK_XENCONS_IDX(idx, in)`.
pub const fn mask_xencons_in_idx(idx: u32) -> usize {
    idx as usize & (XENCONS_IN_SIZE - 1)
}

/// `MASK_XENCONS_IDX(idx, out)`.
pub const fn mask_xencons_out_idx(idx: u32) -> usize {
    idx as usize & (XENCONS_OUT_SIZE - 1)
}

/// `struct xencons_interface` (3088 bytes), at `start_info.console.domU.mfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenconsInterface {
    /// Back end → guest (keyboard).
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Guest → back end (output).
    pub out: [u8; XENCONS_OUT_SIZE],
    /// Guest's consumer index of `in`.
    pub in_cons: u32,
    /// Back end's producer index of `in`.
    pub in_prod: u32,
    /// Back end's consumer index of `out`.
    pub out_cons: u32,
    /// Guest's producer index of `out`.
    pub out_prod: u32,
}
assert_layout!(
    XenconsInterface,
    size = 3088,
    align = 4,
    in_ = 0,
    out = 1024,
    in_cons = 3072,
    in_prod = 3076,
    out_cons = 3080,
    out_prod = 3084,
);
zeroed_default!(XenconsInterface);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_masks() {
        assert_eq!(mask_xencons_in_idx(1024 + 3), 3);
        assert_eq!(mask_xencons_out_idx(2048 + 5), 5);
        assert_eq!(mask_xencons_out_idx(1030), 1030);
    }
}
