//! `vcpu_guest_context` and `cpu_user_regs` for x86_32 (XEN-PV-ABI.md §15.8),
//! used by `VCPUOP_initialise` and `XEN_DOMCTL_{set,get}vcpucontext`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::traps::{MAX_GDT_FRAMES, NR_VECTORS, TrapInfo};
use crate::types::XenPfn;

/// `VGCF_i387_valid`: `fpu_ctxt` holds a valid image.
pub const VGCF_I387_VALID: u32 = 1 << 0;
/// `VGCF_in_kernel`: the VCPU is in guest kernel mode.
pub const VGCF_IN_KERNEL: u32 = 1 << 2;
/// `VGCF_failsafe_disables_events`.
pub const VGCF_FAILSAFE_DISABLES_EVENTS: u32 = 1 << 3;
/// `VGCF_syscall_disables_events`.
pub const VGCF_SYSCALL_DISABLES_EVENTS: u32 = 1 << 4;
/// `VGCF_online`: the VCPU is online.
pub const VGCF_ONLINE: u32 = 1 << 5;

/// `struct cpu_user_regs` for x86_32 (68 bytes). Each segment selector is followed
/// by 2 padding bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct CpuUserRegs {
    /// EBX.
    pub ebx: u32,
    /// ECX.
    pub ecx: u32,
    /// EDX.
    pub edx: u32,
    /// ESI.
    pub esi: u32,
    /// EDI.
    pub edi: u32,
    /// EBP.
    pub ebp: u32,
    /// EAX.
    pub eax: u32,
    /// Error code of the last exception (Xen-private).
    pub error_code: u16,
    /// Vector of the last exception (Xen-private).
    pub entry_vector: u16,
    /// EIP.
    pub eip: u32,
    /// CS.
    pub cs: u16,
    /// Saved `evtchn_upcall_mask`.
    pub saved_upcall_mask: u8,
    /// Padding.
    pub _pad0: u8,
    /// EFLAGS.
    pub eflags: u32,
    /// ESP.
    pub esp: u32,
    /// SS.
    pub ss: u16,
    /// Padding.
    pub _pad1: u16,
    /// ES.
    pub es: u16,
    /// Padding.
    pub _pad2: u16,
    /// DS.
    pub ds: u16,
    /// Padding.
    pub _pad3: u16,
    /// FS.
    pub fs: u16,
    /// Padding.
    pub _pad4: u16,
    /// GS.
    pub gs: u16,
    /// Padding.
    pub _pad5: u16,
}
assert_layout!(
    CpuUserRegs,
    size = 68,
    align = 4,
    ebx = 0,
    ecx = 4,
    edx = 8,
    esi = 12,
    edi = 16,
    ebp = 20,
    eax = 24,
    error_code = 28,
    entry_vector = 30,
    eip = 32,
    cs = 36,
    saved_upcall_mask = 38,
    _pad0 = 39,
    eflags = 40,
    esp = 44,
    ss = 48,
    es = 52,
    ds = 56,
    fs = 60,
    gs = 64,
);

/// Size of the FXSAVE/FSAVE image in `vcpu_guest_context`.
pub const FPU_CTXT_SIZE: usize = 512;

/// `struct vcpu_guest_context` for x86_32 (2800 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct VcpuGuestContext {
    /// FXSAVE image (or FSAVE if no FXSR).
    pub fpu_ctxt: [u8; FPU_CTXT_SIZE],
    /// `VGCF_*`.
    pub flags: u32,
    /// General registers.
    pub user_regs: CpuUserRegs,
    /// Virtual IDT.
    pub trap_ctxt: [TrapInfo; NR_VECTORS],
    /// LDT linear base.
    pub ldt_base: u32,
    /// LDT entries.
    pub ldt_ents: u32,
    /// GDT frames (MFNs).
    pub gdt_frames: [XenPfn; MAX_GDT_FRAMES],
    /// GDT entries.
    pub gdt_ents: u32,
    /// Ring-1 stack segment for traps from ring 3.
    pub kernel_ss: u32,
    /// Ring-1 stack pointer for traps from ring 3.
    pub kernel_sp: u32,
    /// Control registers; `ctrlreg[3]` is in the rotated form of
    /// [`crate::mm::xen_pfn_to_cr3`].
    pub ctrlreg: [u32; 8],
    /// Debug registers.
    pub debugreg: [u32; 8],
    /// Event callback selector.
    pub event_callback_cs: u32,
    /// Event callback address.
    pub event_callback_eip: u32,
    /// Failsafe callback selector.
    pub failsafe_callback_cs: u32,
    /// Failsafe callback address.
    pub failsafe_callback_eip: u32,
    /// Bitmap of enabled `VMASST_TYPE_*`.
    pub vm_assist: u32,
}
assert_layout!(
    VcpuGuestContext,
    size = 2800,
    align = 4,
    fpu_ctxt = 0,
    flags = 512,
    user_regs = 516,
    user_regs.eip = 548,
    user_regs.gs = 580,
    trap_ctxt = 584,
    ldt_base = 2632,
    ldt_ents = 2636,
    gdt_frames = 2640,
    gdt_ents = 2704,
    kernel_ss = 2708,
    kernel_sp = 2712,
    ctrlreg = 2716,
    debugreg = 2748,
    event_callback_cs = 2780,
    event_callback_eip = 2784,
    failsafe_callback_cs = 2788,
    failsafe_callback_eip = 2792,
    vm_assist = 2796,
);
zeroed_default!(VcpuGuestContext);

impl VcpuGuestContext {
    /// The MFN of the top-level table, decoded from `ctrlreg[3]`.
    pub const fn cr3_mfn(&self) -> XenPfn {
        crate::mm::xen_cr3_to_pfn(self.ctrlreg[3])
    }

    /// Stores the MFN of the top-level table in `ctrlreg[3]` (rotated form).
    pub const fn set_cr3_mfn(&mut self, mfn: XenPfn) {
        self.ctrlreg[3] = crate::mm::xen_pfn_to_cr3(mfn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr3_field_is_rotated() {
        let mut c = VcpuGuestContext::default();
        c.set_cr3_mfn(0x0012_3456);
        assert_eq!(c.ctrlreg[3], 0x2345_6001);
        assert_eq!(c.cr3_mfn(), 0x0012_3456);
    }
}
