//! Oxen's private layout of `[HYPERVISOR_VIRT_START, 4 GiB)` (not ABI; guests
//! see only the read-only M2P at its start). As on 32-bit Xen:
//!
//! | range                   | what                                         |
//! |-------------------------|----------------------------------------------|
//! | F5800000 – F6800000     | read-only M2P (guest-visible)                |
//! | F6800000 – FC800000     | frame table (one `PageInfo` per machine frame)|
//! | FC800000 – FD800000     | writable alias of the M2P                    |
//! | FD800000 – FE000000     | boot modules, read-only (the dom0 kernel)    |
//! | FE000000 – FE800000     | Oxen's heap                                  |
//! | FE800000 – FEA00000     | map cache (512 temporary 4 KiB slots)        |
//! | FEA00000 – FEA09000     | guard page, then the guest stack (32 KiB)    |
//! | FEA0A000 – FEA4A000     | each domain's shared_info page, by domid     |
//! | FF000000 – FFC00000     | direct map of machine memory [0, 12 MiB)     |

pub use xen_abi::layout::{MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};

/// Start of the frame table.
pub const FRAMETABLE_VIRT_START: u32 = 0xF680_0000;
/// End of the frame table.
pub const FRAMETABLE_VIRT_END: u32 = 0xFC80_0000;
/// Start of Oxen's writable alias of the M2P.
pub const RW_MPT_VIRT_START: u32 = 0xFC80_0000;
/// End of the writable M2P alias.
pub const RW_MPT_VIRT_END: u32 = 0xFD80_0000;
/// Start of the window boot modules are read through (the dom0 kernel).
pub const MODULE_VIRT_START: u32 = 0xFD80_0000;
/// End of the module window.
pub const MODULE_VIRT_END: u32 = 0xFE00_0000;
/// Start of the heap window.
pub const HEAP_VIRT_START: u32 = 0xFE00_0000;
/// End of the heap window.
pub const HEAP_VIRT_END: u32 = 0xFE80_0000;
/// Start of the map-cache window.
pub const MAPCACHE_VIRT_START: u32 = 0xFE80_0000;
/// Slots in the map cache (one L1).
pub const MAPCACHE_SLOTS: usize = 512;
/// The guard page below the guest stack (never mapped).
pub const GUEST_STACK_GUARD: u32 = 0xFEA0_0000;
/// Pages of the guest stack, above its guard page.
pub const GUEST_STACK_PAGES: u32 = 8;
/// Where Oxen keeps dom0's shared_info page mapped (after the guest stack and
/// a gap page); other domains' follow (`shared_info_va`).
pub const SHARED_INFO_VIRT: u32 = GUEST_STACK_GUARD + (GUEST_STACK_PAGES + 2) * 4096;
/// Where Oxen keeps domain `domid`'s shared_info page mapped: one page per
/// domain from `SHARED_INFO_VIRT` (all inside the guest stack's L1).
pub const fn shared_info_va(domid: u16) -> u32 {
    SHARED_INFO_VIRT + domid as u32 * 4096
}

/// Start of the direct map.
pub const DIRECT_MAP_VIRT: u32 = 0xFF00_0000;
/// Bytes of machine memory the direct map covers.
pub const DIRECT_MAP_SIZE: u32 = 12 << 20;

const _: () = assert!(FRAMETABLE_VIRT_START == MACH2PHYS_VIRT_END);
const _: () = assert!(MAPCACHE_VIRT_START.is_multiple_of(2 << 20));

const _: () = assert!(
    shared_info_va(crate::domain::MAX_DOMAINS as u16) <= GUEST_STACK_GUARD + (2 << 20),
    "the shared_info windows share the guest stack's L1"
);
