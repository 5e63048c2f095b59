//! The initial register state of a domU's vcpu 0 (XEN-PV-ABI.md §4.2, §15.8), as
//! libxc sets it for x86_32 PAE and passes it with `XEN_DOMCTL_setvcpucontext`.
//!
//! Owns [`initial_vcpu_context`]. Everything not listed below is zero: no trap
//! table, no callbacks, no LDT, no GDT frames (the guest runs on Xen's reserved
//! GDT entries), no debug registers, FPU state not valid (initial state).
//! - `CS` = `FLAT_KERNEL_CS`; `DS`, `ES`, `FS`, `GS`, `SS` = `FLAT_KERNEL_DS`/`SS`;
//! - `EIP` = the kernel entry, `ESP` = end of the boot-stack page, `ESI` = start_info
//!   virtual address, the other general registers 0;
//! - `EFLAGS` = IF (bit 9, §4.2) | bit 1 (architecturally reserved, always 1);
//! - `kernel_ss:kernel_sp` = `SS:ESP` (libxc, §4.2);
//! - `flags` = `VGCF_in_kernel | VGCF_online`;
//! - `ctrlreg[3]` = the L3's MFN in the rotated CR3 form (§7.5);
//! - `vm_assist` = `1 << VMASST_TYPE_pae_extended_cr3` for extended-cr3 kernels.

use xen_abi::context::{VGCF_IN_KERNEL, VGCF_ONLINE, VcpuGuestContext};
use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS, FLAT_KERNEL_SS};
use xen_abi::start_info::ENTRY_EFLAGS;
use xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
use xen_abi::types::XenPfn;

/// EFLAGS bit 1: reserved by the architecture, always reads as 1.
pub const EFLAGS_RESERVED_ONE: u32 = 1 << 1;

/// Where the new vcpu starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// Initial `EIP`: the kernel entry point.
    pub entry: u32,
    /// Initial `ESP`: the end of the boot-stack page.
    pub stack_top: u32,
    /// Initial `ESI`: the virtual address of start_info.
    pub start_info_va: u32,
    /// MFN of the pinned bootstrap L3.
    pub l3_mfn: XenPfn,
    /// Whether to enable `VMASST_TYPE_pae_extended_cr3`.
    pub extended_cr3: bool,
}

/// The vcpu 0 context of a freshly built domU. See the module documentation.
pub fn initial_vcpu_context(state: &EntryState) -> VcpuGuestContext {
    let mut ctx = VcpuGuestContext::default();
    let regs = &mut ctx.user_regs;
    regs.cs = FLAT_KERNEL_CS;
    regs.ds = FLAT_KERNEL_DS;
    regs.es = FLAT_KERNEL_DS;
    regs.fs = FLAT_KERNEL_DS;
    regs.gs = FLAT_KERNEL_DS;
    regs.ss = FLAT_KERNEL_SS;
    regs.eip = state.entry;
    regs.esp = state.stack_top;
    regs.esi = state.start_info_va;
    regs.eflags = ENTRY_EFLAGS | EFLAGS_RESERVED_ONE;
    ctx.kernel_ss = u32::from(ctx.user_regs.ss);
    ctx.kernel_sp = ctx.user_regs.esp;
    ctx.flags = VGCF_IN_KERNEL | VGCF_ONLINE;
    ctx.set_cr3_mfn(state.l3_mfn);
    if state.extended_cr3 {
        ctx.vm_assist |= 1 << VMASST_TYPE_PAE_EXTENDED_CR3;
    }
    ctx
}
