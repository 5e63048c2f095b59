//! Xen's CPUID leaves and the forced-emulation prefix (XEN-PV-ABI.md §17).
//!
//! A PV guest's plain `CPUID` runs natively; preceded by [`XEN_EMULATE_PREFIX`] it
//! traps (#UD) and Xen emulates it with its PV view, including these leaves.

/// Base of Xen's leaves: EAX = max leaf, EBX/ECX/EDX = signature.
pub const XEN_CPUID_LEAF_BASE: u32 = 0x4000_0000;
/// Leaf 1: EAX = `(major << 16) | minor`.
pub const XEN_CPUID_LEAF_VERSION: u32 = 0x4000_0001;
/// Leaf 2: EAX = hypercall pages, EBX = MSR, ECX = feature bits.
pub const XEN_CPUID_LEAF_HYPERCALL: u32 = 0x4000_0002;
/// Leaf 3: time information (later Xen).
pub const XEN_CPUID_LEAF_TIME: u32 = 0x4000_0003;
/// Leaf 0's EAX: the highest leaf.
pub const XEN_CPUID_MAX_LEAF: u32 = 0x4000_0003;

/// Signature in EBX: `"XenV"`.
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
/// Signature in ECX: `"MMXe"`.
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
/// Signature in EDX: `"nVMM"`.
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;
/// The signature as bytes in EBX, ECX, EDX order.
pub const XEN_CPUID_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

/// Leaf 2 EAX: number of hypercall pages.
pub const XEN_CPUID_HYPERCALL_PAGES: u32 = 1;
/// Leaf 2 EBX: MSR to write `(gmfn << 12) | page_index` to.
pub const XEN_CPUID_HYPERCALL_MSR: u32 = crate::hypercall::HYPERCALL_PAGE_MSR;
/// Leaf 2 ECX bit 0 (PV): `MMU_PT_UPDATE_PRESERVE_AD` is available.
pub const XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD: u32 = 1 << 0;

/// `XEN_EMULATE_PREFIX`: `ud2a` followed by ASCII "xen".
pub const XEN_EMULATE_PREFIX: [u8; 5] = [0x0F, 0x0B, 0x78, 0x65, 0x6E];
/// The `CPUID` opcode that follows the prefix.
pub const CPUID_OPCODE: [u8; 2] = [0x0F, 0xA2];

/// Leaf 1's EAX for Xen `major.minor`.
pub const fn version_eax(major: u16, minor: u16) -> u32 {
    crate::version::xen_version(major, minor)
}

/// Value to write to [`XEN_CPUID_HYPERCALL_MSR`] to place hypercall page `index`
/// at guest frame `gmfn`.
pub const fn hypercall_msr_value(gmfn: u64, index: u32) -> u64 {
    (gmfn << 12) | index as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_registers_spell_xenvmm() {
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&XEN_CPUID_SIGNATURE_EBX.to_le_bytes());
        sig[4..8].copy_from_slice(&XEN_CPUID_SIGNATURE_ECX.to_le_bytes());
        sig[8..12].copy_from_slice(&XEN_CPUID_SIGNATURE_EDX.to_le_bytes());
        assert_eq!(&sig, XEN_CPUID_SIGNATURE);
        assert_eq!(&XEN_EMULATE_PREFIX[2..], b"xen");
        assert_eq!(hypercall_msr_value(0x1234, 0), 0x123_4000);
    }
}
