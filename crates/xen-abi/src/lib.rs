//! The Xen PV interface for 32-bit PAE guests (`xen-3.0-x86_32p`), declared once.
//!
//! Every number here is taken from `shared/XEN-PV-ABI.md` (the binding digest of
//! Xen's public headers). Oxen and the guests both use this crate; nothing else
//! re-declares these values. Struct layouts carry compile-time size and offset
//! assertions so that the i686 target and the x86_64 host agree.
//!
//! Layout conventions:
//! * Every struct is `#[repr(C)]` and derives zerocopy's `FromBytes`, `IntoBytes`,
//!   `Immutable` and `KnownLayout`, so it can be copied in and out of guest memory
//!   as bytes (`T::read_from_bytes`, `v.as_bytes()`) without `unsafe`.
//! * On i386 a `u64` inside a struct is only 4-aligned. Structs of the guest
//!   interface that contain a `u64` are `#[repr(C, packed(4))]`: read and write
//!   those `u64` fields by value (`{ s.field }`); references to them are refused.
//! * The tools interface (`domctl`, `sysctl`) has 8-aligned `u64`s on every
//!   caller: those structs are `#[repr(C, align(8))]` with explicit padding.
//! * Padding is an explicit field (`_pad…`); C unions are byte arrays with typed
//!   accessors (`payload::<T>()`, `set_payload(&v)`, or named getters).
//! * `Default` is the all-zero value.
//! * Constants keep Xen's names in upper case (`EVTCHNOP_send` →
//!   `EVTCHNOP_SEND`); hypercall numbers drop `__HYPERVISOR_`
//!   (`hypercall::MMU_UPDATE`). Fields named `type`/`ref`/`in` in C are `type_`,
//!   `gref` and `in_`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(unsafe_code)]

#[macro_use]
mod macros;

pub mod blkif;
pub mod console;
pub mod context;
pub mod cpuid;
pub mod domctl;
pub mod domid;
pub mod elfnote;
pub mod errno;
pub mod evtchn;
pub mod grant;
pub mod hypercall;
pub mod layout;
pub mod memory;
pub mod mm;
pub mod netif;
pub mod physdev;
pub mod ring;
pub mod sched;
pub mod selectors;
pub mod shared_info;
pub mod start_info;
pub mod sysctl;
pub mod traps;
pub mod types;
pub mod vcpu;
pub mod vdev;
pub mod version;
pub mod xenbus;
pub mod xenstore;
