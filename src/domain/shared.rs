//! Oxen's side of a domain's shared_info page (XEN-PV-ABI.md §5): the fields
//! of vcpu 0's `vcpu_info` that trap delivery reads and writes. The page is
//! reached through the map cache; the guest may change any of it at any time,
//! so every access is a single volatile byte or word.

use core::mem::offset_of;

use hv_core::addr::Mfn;
use xen_abi::shared_info::{ArchVcpuInfo, VcpuInfo};

use crate::mm::mapcache;

/// vcpu `vcpu`'s `vcpu_info` in the shared page `page`, at byte `field`.
fn with_field<R>(page: Mfn, vcpu: usize, field: usize, f: impl FnOnce(*mut u8) -> R) -> R {
    assert!(vcpu < xen_abi::layout::XEN_LEGACY_MAX_VCPUS);
    let m = mapcache::map_frame(page);
    // SAFETY: vcpu_info[vcpu] (64 bytes, vcpu < 32) lies within the mapped page.
    f(unsafe {
        m.as_mut_ptr()
            .add(vcpu * core::mem::size_of::<VcpuInfo>() + field)
    })
}

/// `evtchn_upcall_mask` of vcpu 0.
pub fn upcall_mask(page: Mfn) -> u8 {
    // SAFETY: a byte inside the mapped vcpu_info.
    with_field(
        page,
        0,
        offset_of!(VcpuInfo, evtchn_upcall_mask),
        |p| unsafe { p.read_volatile() },
    )
}

/// Sets `evtchn_upcall_mask` of vcpu 0.
pub fn set_upcall_mask(page: Mfn, mask: u8) {
    // SAFETY: a byte inside the mapped vcpu_info.
    with_field(
        page,
        0,
        offset_of!(VcpuInfo, evtchn_upcall_mask),
        |p| unsafe { p.write_volatile(mask) },
    );
}

/// vcpu 0's `arch.cr2`.
pub fn cr2(page: Mfn) -> u32 {
    let field = offset_of!(VcpuInfo, arch) + offset_of!(ArchVcpuInfo, cr2);
    // SAFETY: an aligned u32 inside the mapped vcpu_info.
    with_field(page, 0, field, |p| unsafe {
        (p as *const u32).read_volatile()
    })
}

/// Records a page fault's address in vcpu 0's `arch.cr2`.
pub fn set_cr2(page: Mfn, cr2: u32) {
    let field = offset_of!(VcpuInfo, arch) + offset_of!(ArchVcpuInfo, cr2);
    // SAFETY: an aligned u32 inside the mapped vcpu_info.
    with_field(page, 0, field, |p| unsafe {
        (p as *mut u32).write_volatile(cr2)
    });
}
