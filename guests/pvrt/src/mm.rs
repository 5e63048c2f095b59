//! The PV MMU hypercalls (XEN-PV-ABI.md §7) and the guest's view of its memory:
//! the P2M list from start_info and the hypervisor's read-only M2P.

use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::hypercall as nr;
use xen_abi::layout::MACH2PHYS_VIRT_START;
use xen_abi::mm::{MmuUpdate, MmuextOp};

use crate::hypercall::{raw, result};

/// `mmu_update(reqs, count, &done, foreigndom)`: returns (result, done).
pub fn mmu_update(reqs: &[MmuUpdate], foreigndom: u32) -> (Result<u32, Errno>, u32) {
    let mut done = 0u32;
    // SAFETY: `reqs` is read for `len` entries and `done` written; both live
    // across the call.
    let ret = unsafe {
        raw(
            nr::MMU_UPDATE,
            [
                reqs.as_ptr() as u32,
                reqs.len() as u32,
                &mut done as *mut u32 as u32,
                foreigndom,
                0,
            ],
        )
    };
    (result(ret), done)
}

/// `mmuext_op(ops, count, &done, foreigndom)`: returns (result, done).
pub fn mmuext_op(ops: &[MmuextOp], foreigndom: u32) -> (Result<u32, Errno>, u32) {
    let mut done = 0u32;
    // SAFETY: as for `mmu_update`.
    let ret = unsafe {
        raw(
            nr::MMUEXT_OP,
            [
                ops.as_ptr() as u32,
                ops.len() as u32,
                &mut done as *mut u32 as u32,
                foreigndom,
                0,
            ],
        )
    };
    (result(ret), done)
}

/// One mmuext op for the caller's own frames.
pub fn mmuext(cmd: u32, arg1: u32, arg2: u32) -> Result<u32, Errno> {
    mmuext_op(&[MmuextOp::new(cmd, arg1, arg2)], u32::from(DOMID_SELF)).0
}

/// `update_va_mapping(va, pte, flags)`.
pub fn update_va_mapping(va: u32, pte: u64, flags: u32) -> Result<u32, Errno> {
    // SAFETY: no pointers (unless `flags` carries a vcpu-mask pointer, which
    // the caller then owns).
    result(unsafe {
        raw(
            nr::UPDATE_VA_MAPPING,
            [va, pte as u32, (pte >> 32) as u32, flags, 0],
        )
    })
}

/// `update_va_mapping_otherdomain(va, pte, flags, domid)`.
pub fn update_va_mapping_otherdomain(
    va: u32,
    pte: u64,
    flags: u32,
    domid: DomId,
) -> Result<u32, Errno> {
    // SAFETY: as for `update_va_mapping`.
    result(unsafe {
        raw(
            nr::UPDATE_VA_MAPPING_OTHERDOMAIN,
            [va, pte as u32, (pte >> 32) as u32, flags, u32::from(domid)],
        )
    })
}

/// `vm_assist(cmd, type)`.
pub fn vm_assist(cmd: u32, ty: u32) -> Result<u32, Errno> {
    // SAFETY: no pointers.
    result(unsafe { raw(nr::VM_ASSIST, [cmd, ty, 0, 0, 0]) })
}

/// The machine frame behind pseudo-physical frame `pfn` (start_info's P2M list).
pub fn pfn_to_mfn(si: &crate::StartInfo, pfn: u32) -> Option<u32> {
    if pfn >= si.nr_pages {
        return None;
    }
    // SAFETY: the builder maps the P2M list (nr_pages entries) at `mfn_list`
    // in the bootstrap region, read-write, for the guest's life.
    Some(unsafe { *(si.mfn_list as *const u32).add(pfn as usize) })
}

/// The pseudo-physical frame the hypervisor's M2P records for `mfn`.
pub fn mfn_to_pfn(mfn: u32) -> u32 {
    // SAFETY: the read-only M2P is mapped at MACH2PHYS_VIRT_START in every
    // address space; reading an entry of a frame beyond it would fault, so
    // callers pass frames they own.
    unsafe { core::ptr::read_volatile((MACH2PHYS_VIRT_START as *const u32).add(mfn as usize)) }
}

/// The virtual address of pseudo-physical frame `pfn` in the bootstrap region.
pub const fn pfn_to_va(pfn: u32) -> u32 {
    crate::VIRT_BASE + pfn * 4096
}
