//! Virtual IDT entries, event/failsafe/NMI callbacks, `vm_assist` and descriptor
//! table limits (XEN-PV-ABI.md §6).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

// ---- set_trap_table (§6.1) ----

/// `trap_info.flags` bits 0–1: the lowest privilege allowed to raise the vector
/// with `int n` (0 none, 1/2 kernel, 3 everyone).
pub const TI_DPL_MASK: u8 = 3;
/// `trap_info.flags` bit 2: mask events on entry (interrupt-gate semantics).
pub const TI_IF_FLAG: u8 = 1 << 2;
/// Vector given a direct IDT gate when its entry has bit 2 clear and a guest CS.
pub const TRAP_INT80_VECTOR: u8 = 0x80;
/// Entries in a virtual IDT (`vcpu_guest_context.trap_ctxt`).
pub const NR_VECTORS: usize = 256;

/// `struct trap_info` (8 bytes): one virtual IDT entry. A `set_trap_table` array
/// ends with an entry whose `address` is 0.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct TrapInfo {
    /// Exception/interrupt vector.
    pub vector: u8,
    /// `TI_DPL_MASK` bits and `TI_IF_FLAG`.
    pub flags: u8,
    /// Handler code selector (RPL forced ≥ 1).
    pub cs: u16,
    /// Handler EIP.
    pub address: u32,
}
assert_layout!(
    TrapInfo,
    size = 8,
    align = 4,
    vector = 0,
    flags = 1,
    cs = 2,
    address = 4
);

impl TrapInfo {
    /// `TI_GET_DPL`: lowest privilege that may raise this vector with `int n`.
    pub const fn dpl(&self) -> u8 {
        self.flags & TI_DPL_MASK
    }

    /// `TI_GET_IF`: whether events are masked on entry.
    pub const fn masks_events(&self) -> bool {
        self.flags & TI_IF_FLAG != 0
    }

    /// Whether this entry terminates a `set_trap_table` array.
    pub const fn is_terminator(&self) -> bool {
        self.address == 0
    }
}

// ---- exception frames (§6.2) ----

/// In the CS word of a bounce frame, the saved `evtchn_upcall_mask` sits in bits
/// 16–23.
pub const FRAME_SAVED_UPCALL_MASK_SHIFT: u32 = 16;
/// Exception vectors that push an error code (8, 10–14, 17).
pub const fn vector_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17)
}

// ---- callbacks (§6.3) ----

/// `callback_op` command: register a callback.
pub const CALLBACKOP_REGISTER: u32 = 0;
/// `callback_op` command: unregister (only NMI may be unregistered).
pub const CALLBACKOP_UNREGISTER: u32 = 1;

/// `CALLBACKTYPE_event`: the event upcall.
pub const CALLBACKTYPE_EVENT: u16 = 0;
/// `CALLBACKTYPE_failsafe`: Xen could not return to the guest context.
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
/// `CALLBACKTYPE_syscall` (x86-64 only).
pub const CALLBACKTYPE_SYSCALL: u16 = 2;
/// `CALLBACKTYPE_sysenter_deprecated` (the value `sysenter` had before 0x00030207).
pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
/// `CALLBACKTYPE_nmi`.
pub const CALLBACKTYPE_NMI: u16 = 4;
/// `CALLBACKTYPE_sysenter` (0x00030207+).
pub const CALLBACKTYPE_SYSENTER: u16 = 5;
/// `CALLBACKTYPE_syscall32` (64-bit Xen; accepted from 32-bit guests, §18).
pub const CALLBACKTYPE_SYSCALL32: u16 = 7;

/// `CALLBACKF_mask_events`: mask events on entry (honoured for failsafe).
pub const CALLBACKF_MASK_EVENTS: u16 = 1 << 0;

/// `xen_callback_t` on x86_32: a selector and an address (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XenCallback {
    /// Code selector (normally `FLAT_KERNEL_CS`).
    pub cs: u32,
    /// Entry point.
    pub eip: u32,
}
assert_layout!(XenCallback, size = 8, align = 4, cs = 0, eip = 4);

/// `struct callback_register` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CallbackRegister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    /// `CALLBACKF_*`.
    pub flags: u16,
    /// The callback.
    pub address: XenCallback,
}
assert_layout!(
    CallbackRegister,
    size = 12,
    align = 4,
    type_ = 0,
    flags = 2,
    address = 4,
    address.cs = 4,
    address.eip = 8,
);

/// `struct callback_unregister` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CallbackUnregister {
    /// `CALLBACKTYPE_*`.
    pub type_: u16,
    /// Unused.
    pub _unused: u16,
}
assert_layout!(
    CallbackUnregister,
    size = 4,
    align = 2,
    type_ = 0,
    _unused = 2
);

// ---- nmi_op (§6.3) ----

/// `nmi_op` command: register the NMI callback.
pub const XENNMI_REGISTER_CALLBACK: u32 = 0;
/// `nmi_op` command: unregister the NMI callback.
pub const XENNMI_UNREGISTER_CALLBACK: u32 = 1;

/// `struct xennmi_callback` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XennmiCallback {
    /// Handler address.
    pub handler_address: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(
    XennmiCallback,
    size = 8,
    align = 4,
    handler_address = 0,
    pad = 4
);

// ---- vm_assist (§6.10) ----

/// `vm_assist` command: enable an assist.
pub const VMASST_CMD_ENABLE: u32 = 0;
/// `vm_assist` command: disable an assist.
pub const VMASST_CMD_DISABLE: u32 = 1;

/// Emulate accesses that need a full 4 GiB segment limit.
pub const VMASST_TYPE_4GB_SEGMENTS: u32 = 0;
/// As `4gb_segments`, and raise vector 15 each time the emulation happens.
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u32 = 1;
/// Guest may write L1 entries directly; Xen emulates and validates the write.
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u32 = 2;
/// The L3 may live above 4 GiB; CR3 values use the rotated encoding.
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u32 = 3;
/// (later Xen) `architectural_iopl`.
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u32 = 4;
/// (later Xen) `runstate_update_flag`.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
/// (later Xen, 64-bit guests) `m2p_strict`.
pub const VMASST_TYPE_M2P_STRICT: u32 = 32;
/// Highest `VMASST_TYPE_*` in Xen 4.1.
pub const MAX_VMASST_TYPE: u32 = 3;

// ---- descriptor tables (§6.8, §6.9) ----

/// Descriptors per 4 KiB GDT/LDT page.
pub const DESCRIPTORS_PER_PAGE: usize = 512;
/// Largest `set_gdt` entry count (`FIRST_RESERVED_GDT_ENTRY`, 14 pages).
pub const MAX_GUEST_GDT_ENTRIES: usize = crate::selectors::FIRST_RESERVED_GDT_ENTRY;
/// Frames in a VCPU's GDT (`gdt_frames[16]`).
pub const MAX_GDT_FRAMES: usize = 16;
/// Largest `MMUEXT_SET_LDT` entry count.
pub const MAX_LDT_ENTRIES: usize = 8192;

const _: () = assert!(MAX_GUEST_GDT_ENTRIES == 7168);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_info_flags() {
        let t = TrapInfo {
            vector: 0x80,
            flags: 3,
            cs: 0xE019,
            address: 0xC010_0000,
        };
        assert_eq!(t.dpl(), 3);
        assert!(!t.masks_events());
        assert!(!t.is_terminator());
        let t = TrapInfo {
            flags: TI_IF_FLAG,
            ..Default::default()
        };
        assert!(t.masks_events());
        assert!(t.is_terminator());
        assert!(vector_has_error_code(14));
        assert!(!vector_has_error_code(9));
        assert!(vector_has_error_code(17));
    }
}
