//! ELF notes of a Xen PV guest image and the legacy `__xen_guest` string
//! (XEN-PV-ABI.md §16, from `elfnote.h`).
//!
//! A guest kernel describes itself to the domain builder with ELF notes named
//! [`XEN_ELFNOTE_NAME`] whose type is one of the `XEN_ELFNOTE_*` numbers below. Kernels
//! older than the notes carry the same facts as a `KEY=VALUE,...` string in a section
//! named [`LEGACY_GUEST_INFO_SECTION`]. Parsing lives in the `xen-loader` crate; this
//! module only declares the numbers and names.

/// Owner name of every Xen note (`namesz` = 4 including the terminating NUL).
pub const XEN_ELFNOTE_NAME: &[u8] = b"Xen";

/// String `NAME=VALUE` (free-form information).
pub const XEN_ELFNOTE_INFO: u32 = 0;
/// Number: virtual entry point (legacy `VIRT_ENTRY`); default is ELF `e_entry`.
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// Number: virtual address of the hypercall page (legacy `HYPERCALL_PAGE`, which is a
/// page *number* relative to `VIRT_BASE` instead).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// Number: virtual address where the image and bootstrap region start (default 0).
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// Number: subtracted from `p_paddr` to get the pseudo-physical offset (legacy
/// `ELF_PADDR_OFFSET`). Load VA = `p_paddr + VIRT_BASE - PADDR_OFFSET`.
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// String: ABI version the kernel was built for; must start with
/// [`XEN_VERSION_PREFIX`] (legacy `XEN_VER`).
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// String: guest OS name, e.g. `"linux"`, `"Mini-OS"` (legacy `GUEST_OS`).
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// String: guest OS version (legacy `GUEST_VER`).
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
/// String: loader the image expects, `"generic"` (legacy `LOADER`).
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// String: `"yes"`, `"bimodal"` / `"yes,bimodal"` or `"no"` (legacy `PAE`).
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
/// String: `|`-separated feature names, `!` prefix = required (legacy `FEATURES`).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
/// String: `"yes"` asks the loader to append the symbol table (legacy `BSD_SYMTAB`).
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
/// Number: lowest acceptable start of the hypervisor hole.
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
/// Number pairs: mask/value pairs identifying non-present PTEs that hold MFNs.
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
/// Number: 1 = the guest supports cooperative suspend cancellation.
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
/// Number: alternative virtual address of the initial P2M (x86-64 only).
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
/// Number: the guest accepts `start_info.mod_start` as a PFN (`SIF_MOD_START_PFN`).
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// (Later Xen) bitmap of supported features.
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
/// (Later Xen) PVH 32-bit physical entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// (Later Xen) PVH relocation information.
pub const XEN_ELFNOTE_PHYS32_RELOC: u32 = 19;
/// kexec crash note: crash information.
pub const XEN_ELFNOTE_CRASH_INFO: u32 = 0x0100_0001;
/// kexec crash note: registers.
pub const XEN_ELFNOTE_CRASH_REGS: u32 = 0x0100_0002;
/// dump-core note: no information.
pub const XEN_ELFNOTE_DUMPCORE_NONE: u32 = 0x0200_0000;
/// dump-core note: header.
pub const XEN_ELFNOTE_DUMPCORE_HEADER: u32 = 0x0200_0001;
/// dump-core note: Xen version.
pub const XEN_ELFNOTE_DUMPCORE_XEN_VERSION: u32 = 0x0200_0002;
/// dump-core note: format version.
pub const XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION: u32 = 0x0200_0003;

/// Prefix every accepted `XEN_VERSION` / `XEN_VER` value starts with.
pub const XEN_VERSION_PREFIX: &[u8] = b"xen-3.0";

/// Name of the section holding the legacy `KEY=VALUE,...` guest-info string.
pub const LEGACY_GUEST_INFO_SECTION: &[u8] = b"__xen_guest";

/// Separator between names in a `FEATURES` string (ASCII 0x7C).
pub const FEATURES_SEPARATOR: u8 = b'|';
/// Prefix marking a feature as required rather than merely supported.
pub const FEATURE_REQUIRED_PREFIX: u8 = b'!';

/// The feature names a `FEATURES` string may use (XENFEAT names without the
/// `XENFEAT_` prefix). **The index of a name is its `XENFEAT_*` bit number**
/// (§15.4: `writable_page_tables` 0 … `pae_pgdir_above_4gb` 4). Any other name makes
/// the load fail (§16).
pub const FEATURE_NAMES: [&str; 5] = [
    "writable_page_tables",
    "writable_descriptor_tables",
    "auto_translated_physmap",
    "supervisor_mode_kernel",
    "pae_pgdir_above_4gb",
];

/// The `XENFEAT_*` bit number of a feature name from a `FEATURES` string, if the
/// name is one the loader accepts.
pub fn feature_bit(name: &[u8]) -> Option<u32> {
    FEATURE_NAMES
        .iter()
        .position(|known| known.as_bytes() == name)
        .map(|index| index as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_map_to_their_xenfeat_bits() {
        assert_eq!(feature_bit(b"writable_page_tables"), Some(0));
        assert_eq!(feature_bit(b"writable_descriptor_tables"), Some(1));
        assert_eq!(feature_bit(b"auto_translated_physmap"), Some(2));
        assert_eq!(feature_bit(b"supervisor_mode_kernel"), Some(3));
        assert_eq!(feature_bit(b"pae_pgdir_above_4gb"), Some(4));
        assert_eq!(feature_bit(b"hvm_callback_vector"), None);
        use crate::version::*;
        assert_eq!(
            feature_bit(b"writable_page_tables"),
            Some(XENFEAT_WRITABLE_PAGE_TABLES)
        );
        assert_eq!(
            feature_bit(b"writable_descriptor_tables"),
            Some(XENFEAT_WRITABLE_DESCRIPTOR_TABLES)
        );
        assert_eq!(
            feature_bit(b"auto_translated_physmap"),
            Some(XENFEAT_AUTO_TRANSLATED_PHYSMAP)
        );
        assert_eq!(
            feature_bit(b"supervisor_mode_kernel"),
            Some(XENFEAT_SUPERVISOR_MODE_KERNEL)
        );
        assert_eq!(
            feature_bit(b"pae_pgdir_above_4gb"),
            Some(XENFEAT_PAE_PGDIR_ABOVE_4GB)
        );
        assert_eq!(feature_bit(b""), None);
    }

    #[test]
    fn note_numbers_match_the_digest() {
        assert_eq!(XEN_ELFNOTE_ENTRY, 1);
        assert_eq!(XEN_ELFNOTE_PAE_MODE, 9);
        assert_eq!(XEN_ELFNOTE_MOD_START_PFN, 16);
        assert_eq!(XEN_ELFNOTE_PHYS32_RELOC, 19);
        assert_eq!(XEN_ELFNOTE_CRASH_REGS, 0x100_0002);
        assert_eq!(XEN_ELFNOTE_DUMPCORE_FORMAT_VERSION, 0x200_0003);
    }
}
