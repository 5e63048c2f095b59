//! Oxen's side of a domain's shared_info page (XEN-PV-ABI.md §5): the fields
//! of vcpu 0's `vcpu_info` that trap delivery reads and writes. Oxen keeps the
//! page mapped at `Domain::shared_va`; the guest may change any of it at any
//! time, so every access is a single volatile byte or word.

use core::mem::offset_of;

use hv_core::addr::Mfn;
use pv_mm::PageType;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::{PAGE_PRESENT, PAGE_RW};
use xen_abi::shared_info::{ArchVcpuInfo, VcpuInfo};

use crate::mm::frame_table::MM;
use crate::mm::{layout, mapcache};

/// Makes `mfn` (a frame `domid` owns) the domain's shared_info page: cleared,
/// every vcpu's events masked, holding the permanent `writable` type
/// reference of Xen's shared pages (so the guest may map it but never make
/// it a page table), mapped at Oxen's window for the domain, with the clock
/// published. Returns the window's address. On an error nothing is taken.
pub fn share(mfn: Mfn, domid: DomId) -> Result<u32, Errno> {
    mapcache::clear_frame(mfn);
    {
        let m = mapcache::map_frame(mfn);
        for vcpu in 0..xen_abi::layout::XEN_LEGACY_MAX_VCPUS {
            let at = vcpu * size_of::<VcpuInfo>() + offset_of!(VcpuInfo, evtchn_upcall_mask);
            // SAFETY: `at` is inside vcpu_info[vcpu], inside the mapped page.
            unsafe { m.as_mut_ptr().add(at).write(1) };
        }
    }
    MM.lock()
        .as_mut()
        .expect("frame table initialised")
        .get_page_and_type(mfn, domid, PageType::Writable)?;
    let va = layout::shared_info_va(domid);
    crate::mm::hvmap::map_page(va, mfn, PAGE_PRESENT | PAGE_RW);
    super::events::SharedWords::new(va).update_time();
    Ok(va)
}

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
