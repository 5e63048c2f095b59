//! The Xen PV interface for 32-bit PAE guests (`xen-3.0-x86_32p`), declared once.
//!
//! Every number here is taken from `shared/XEN-PV-ABI.md` (the binding digest of
//! Xen's public headers). Oxen and the guests both use this crate; nothing else
//! re-declares these values. Struct layouts carry compile-time size and offset
//! assertions so that the i686 target and the x86_64 host agree.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod domid;
pub mod errno;
pub mod layout;
pub mod selectors;
