//! Virtual-memory constants every PAE guest sees (XEN-PV-ABI.md §3.2).

/// Start of the hypervisor hole: Oxen owns `[HYPERVISOR_VIRT_START, 4 GiB)`.
pub const HYPERVISOR_VIRT_START: u32 = 0xF580_0000;
/// Start of the read-only machine-to-phys table (one `u32` per MFN).
pub const MACH2PHYS_VIRT_START: u32 = 0xF580_0000;
/// End of the read-only machine-to-phys table.
pub const MACH2PHYS_VIRT_END: u32 = 0xF680_0000;
/// Number of M2P entries: MFNs below this can be described to guests.
pub const MACH2PHYS_NR_ENTRIES: u32 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 4;
/// Guest segment limits are truncated so flat segments end here.
pub const GUEST_SEGMENT_LIMIT_END: u32 = MACH2PHYS_VIRT_END;
/// In the L2 under L3 slot 3, the entries from this index up belong to Oxen.
pub const FIRST_XEN_L2_SLOT: usize = ((HYPERVISOR_VIRT_START - 0xC000_0000) >> 21) as usize;
/// The L3 slot whose L2 holds the hypervisor slots.
pub const XEN_L3_SLOT: usize = 3;
/// Last hypervisor-owned index of that L2.
pub const LAST_XEN_L2_SLOT: usize = 511;
/// (64-bit Xen) end of the M2P window of a compat guest.
pub const MACH2PHYS_VIRT_END_COMPAT: u32 = 0xFFE0_0000;
/// Obsolete non-PAE (2-level) hole start; not used by x86_32p.
pub const HYPERVISOR_VIRT_START_NONPAE: u32 = 0xFC00_0000;
/// Obsolete non-PAE M2P end.
pub const MACH2PHYS_VIRT_END_NONPAE: u32 = 0xFC40_0000;
/// `vcpu_info` slots in `shared_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

const _: () = assert!(FIRST_XEN_L2_SLOT == 428);
const _: () = assert!(MACH2PHYS_NR_ENTRIES == 4 * 1024 * 1024);
