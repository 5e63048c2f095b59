//! `xen_version` sub-commands, their structs and the `XENFEAT_*` feature bits
//! (XEN-PV-ABI.md §15.4).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `__XEN_INTERFACE_VERSION__` of Xen 4.0/4.1 (headers only; never changes
/// hypervisor behaviour).
pub const XEN_INTERFACE_VERSION_4_1: u32 = 0x0003_020a;
/// Interface version from which the hypercall page is mandatory in the headers.
pub const XEN_INTERFACE_VERSION_HYPERCALL_PAGE: u32 = 0x0003_0203;

/// NULL → `(major << 16) | minor`.
pub const XENVER_VERSION: u32 = 0;
/// `char[16]` extra version string.
pub const XENVER_EXTRAVERSION: u32 = 1;
/// [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u32 = 2;
/// `char[1024]` capabilities, e.g. `"xen-3.0-x86_32p"`.
pub const XENVER_CAPABILITIES: u32 = 3;
/// `char[64]` changeset.
pub const XENVER_CHANGESET: u32 = 4;
/// [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u32 = 5;
/// [`XenFeatureInfo`].
pub const XENVER_GET_FEATURES: u32 = 6;
/// NULL → page size (4096).
pub const XENVER_PAGESIZE: u32 = 7;
/// `uint8_t[16]` domain UUID.
pub const XENVER_GUEST_HANDLE: u32 = 8;
/// `char[1024]` Xen command line.
pub const XENVER_COMMANDLINE: u32 = 9;

/// Length of `XENVER_extraversion`'s buffer.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// Length of `XENVER_capabilities`'s buffer.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// Length of `XENVER_changeset`'s buffer.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// Length of `XENVER_guest_handle`'s buffer.
pub const XEN_DOMAIN_HANDLE_LEN: usize = 16;
/// Length of `XENVER_commandline`'s buffer.
pub const XEN_COMMANDLINE_LEN: usize = 1024;

/// `xen_extraversion_t`.
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];
/// `xen_capabilities_info_t`.
pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN];
/// `xen_changeset_info_t`.
pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN];
/// `xen_domain_handle_t`: a domain's UUID.
pub type XenDomainHandle = [u8; XEN_DOMAIN_HANDLE_LEN];
/// `xen_commandline_t`.
pub type XenCommandline = [u8; XEN_COMMANDLINE_LEN];

/// The capability this ABI is listed under in `XENVER_capabilities`.
pub const XEN_CAPABILITY_X86_32P: &str = "xen-3.0-x86_32p";

/// `XENVER_version`'s result for `major.minor`.
pub const fn xen_version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// Splits a `XENVER_version` result into `(major, minor)`.
pub const fn xen_version_split(v: u32) -> (u16, u16) {
    ((v >> 16) as u16, v as u16)
}

/// `struct xen_compile_info` (144 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenCompileInfo {
    /// Compiler.
    pub compiler: [u8; 64],
    /// Who compiled.
    pub compile_by: [u8; 16],
    /// Domain of the compiler.
    pub compile_domain: [u8; 32],
    /// Date.
    pub compile_date: [u8; 32],
}
assert_layout!(
    XenCompileInfo,
    size = 144,
    align = 1,
    compiler = 0,
    compile_by = 64,
    compile_domain = 80,
    compile_date = 112,
);
zeroed_default!(XenCompileInfo);

/// `struct xen_platform_parameters` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenPlatformParameters {
    /// `HYPERVISOR_VIRT_START` as seen by this guest.
    pub virt_start: u32,
}
assert_layout!(XenPlatformParameters, size = 4, align = 4, virt_start = 0);

/// `struct xen_feature_info` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenFeatureInfo {
    /// IN: sub-map index (only 0 defined).
    pub submap_idx: u32,
    /// OUT: 32 feature bits.
    pub submap: u32,
}
assert_layout!(
    XenFeatureInfo,
    size = 8,
    align = 4,
    submap_idx = 0,
    submap = 4
);

/// Number of 32-bit feature sub-maps.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

/// Guest may write its page tables directly.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// Guest may write its descriptor tables directly.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// Physmap is translated by Xen (not for PV guests here).
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// Guest kernel runs in ring 0.
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// The PAE L3 may live above 4 GiB (extended-cr3 on).
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// `MMU_PT_UPDATE_PRESERVE_AD` is available.
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// `MMUEXT_CLEAR_PAGE`/`COPY_PAGE` are available.
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// Grant maps copy `GNTMAP_guest_avail_mask` bits into PTEs.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// (HVM) callback vector.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// (HVM) safe PV clock.
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// (HVM) PIRQs.
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// Number of defined feature bits.
pub const XENFEAT_NR: u32 = 11;

/// Feature names (without the `XENFEAT_` prefix), indexed by bit.
pub const XENFEAT_NAMES: [&str; XENFEAT_NR as usize] = [
    "writable_page_tables",
    "writable_descriptor_tables",
    "auto_translated_physmap",
    "supervisor_mode_kernel",
    "pae_pgdir_above_4gb",
    "mmu_pt_update_preserve_ad",
    "highmem_assist",
    "gnttab_map_avail_bits",
    "hvm_callback_vector",
    "hvm_safe_pvclock",
    "hvm_pirqs",
];

/// The feature bit named `name` (without prefix).
pub fn xenfeat_by_name(name: &[u8]) -> Option<u32> {
    XENFEAT_NAMES
        .iter()
        .position(|n| n.as_bytes() == name)
        .map(|i| i as u32)
}

/// Sub-map 0 as Xen 4.1 reports it to a PV guest: `mmu_pt_update_preserve_ad`,
/// `highmem_assist`, `gnttab_map_avail_bits`, plus `pae_pgdir_above_4gb` when
/// extended-cr3 is on.
pub const fn pv_features_submap0(extended_cr3: bool) -> u32 {
    let base = 1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD
        | 1 << XENFEAT_HIGHMEM_ASSIST
        | 1 << XENFEAT_GNTTAB_MAP_AVAIL_BITS;
    if extended_cr3 {
        base | 1 << XENFEAT_PAE_PGDIR_ABOVE_4GB
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_features() {
        assert_eq!(xen_version(4, 1), 0x0004_0001);
        assert_eq!(xen_version_split(0x0003_0002), (3, 2));
        assert_eq!(xenfeat_by_name(b"pae_pgdir_above_4gb"), Some(4));
        assert_eq!(xenfeat_by_name(b"hvm_pirqs"), Some(10));
        assert_eq!(xenfeat_by_name(b"nope"), None);
        assert_eq!(pv_features_submap0(false), 0xE0);
        assert_eq!(pv_features_submap0(true), 0xF0);
    }
}
