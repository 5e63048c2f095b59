//! Oxen's side of a domain's shared_info page (XEN-PV-ABI.md §5): the fields
//! of vcpu 0's `vcpu_info` that trap delivery reads and writes. Oxen keeps the
//! page mapped at `Domain::shared_va`; the guest may change any of it at any
//! time, so every access is a single volatile byte or word.

use core::mem::offset_of;

use xen_abi::shared_info::{ArchVcpuInfo, VcpuInfo};

/// vcpu `vcpu`'s `vcpu_info` in the shared page mapped at `va`, at byte `field`.
fn with_field<R>(va: u32, vcpu: usize, field: usize, f: impl FnOnce(*mut u8) -> R) -> R {
    assert!(vcpu < xen_abi::layout::XEN_LEGACY_MAX_VCPUS);
    f((va as usize + vcpu * core::mem::size_of::<VcpuInfo>() + field) as *mut u8)
}

/// `evtchn_upcall_mask` of vcpu 0.
pub fn upcall_mask(page: u32) -> u8 {
    // SAFETY: a byte inside vcpu_info, in the page Oxen keeps mapped.
    with_field(
        page,
        0,
        offset_of!(VcpuInfo, evtchn_upcall_mask),
        |p| unsafe { p.read_volatile() },
    )
}

/// Sets `evtchn_upcall_mask` of vcpu 0.
pub fn set_upcall_mask(page: u32, mask: u8) {
    // SAFETY: a byte inside vcpu_info, in the page Oxen keeps mapped.
    with_field(
        page,
        0,
        offset_of!(VcpuInfo, evtchn_upcall_mask),
        |p| unsafe { p.write_volatile(mask) },
    );
}

/// vcpu 0's `arch.cr2`.
pub fn cr2(page: u32) -> u32 {
    let field = offset_of!(VcpuInfo, arch) + offset_of!(ArchVcpuInfo, cr2);
    // SAFETY: an aligned u32 inside vcpu_info, in the page Oxen keeps mapped.
    with_field(page, 0, field, |p| unsafe {
        (p as *const u32).read_volatile()
    })
}

/// Records a page fault's address in vcpu 0's `arch.cr2`.
pub fn set_cr2(page: u32, cr2: u32) {
    let field = offset_of!(VcpuInfo, arch) + offset_of!(ArchVcpuInfo, cr2);
    // SAFETY: an aligned u32 inside vcpu_info, in the page Oxen keeps mapped.
    with_field(page, 0, field, |p| unsafe {
        (p as *mut u32).write_volatile(cr2)
    });
}
