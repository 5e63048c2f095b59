//! Boot state: what the dom0 builder left the domain (start_info, the
//! P2M/M2P, the initrd, shared_info) and what `xen_version` says about the
//! hypervisor, sub-op by sub-op.

use pvrt::mm::mfn_to_pfn;
use pvrt::println;
use xen_abi::errno::Errno;
use xen_abi::start_info::{SIF_INITDOMAIN, SIF_PRIVILEGED};

use crate::helpers::{Checks, Mem, PAGE};

/// start_info, the P2M/M2P, the initrd and shared_info as the builder left them.
pub(crate) fn boot_state(c: &mut Checks, mem: &Mem<'_>) {
    let si = mem.si;
    c.check(
        "start_info.magic",
        si.magic_is_valid(),
        format_args!("{:?}", si.magic()),
    );
    let want = SIF_PRIVILEGED | SIF_INITDOMAIN;
    c.check(
        "start_info.flags",
        si.flags & want == want,
        format_args!("{:#x}", si.flags),
    );
    println!(
        "test-dom0: nr_pages={} nr_pt_frames={} pt_base={:#x}",
        si.nr_pages, si.nr_pt_frames, si.pt_base
    );
    c.check(
        "start_info.nr_pages",
        si.nr_pages > mem.first_free_pfn,
        format_args!("{}", si.nr_pages),
    );
    c.check(
        "start_info.pt_base",
        si.pt_base > pvrt::VIRT_BASE && si.pt_base.is_multiple_of(PAGE),
        format_args!("{:#x}", si.pt_base),
    );
    c.check(
        "start_info.nr_pt_frames",
        si.nr_pt_frames >= 6,
        format_args!("{}", si.nr_pt_frames),
    );
    let cmdline = si.cmd_line();
    let cmdline = core::str::from_utf8(cmdline).unwrap_or("<not utf-8>");
    println!("test-dom0: cmd_line='{cmdline}'");
    c.check(
        "start_info.cmd_line",
        cmdline.contains("console=hvc0"),
        format_args!("{cmdline:?}"),
    );

    let mut bad = 0;
    for pfn in 0..si.nr_pages {
        if mfn_to_pfn(mem.mfn(pfn)) != pfn {
            bad += 1;
        }
    }
    c.check(
        "p2m_m2p_consistent",
        bad == 0,
        format_args!("{bad} pfns disagree"),
    );

    // The initrd: the test fixture holds byte i = i % 251.
    let ok = si.mod_len > 0
        && (0..si.mod_len)
            .step_by(509)
            .chain([si.mod_len - 1])
            .all(|i| {
                // SAFETY: the initrd is mapped in the bootstrap region at mod_start.
                let b = unsafe { ((si.mod_start + i) as *const u8).read_volatile() };
                b == (i % 251) as u8
            });
    c.check(
        "initrd_contents",
        ok,
        format_args!("mod_start={:#x} mod_len={}", si.mod_start, si.mod_len),
    );

    // shared_info: not mapped at boot; map it from its machine address.
    let va = mem.scratch_va(0);
    c.ok("map_shared_info", mem.map(va, si.shared_info >> 12, true));
    // SAFETY: just mapped; vcpu_info[0].evtchn_upcall_mask is byte 1.
    let mask = unsafe { ((va + 1) as *const u8).read_volatile() };
    c.check("shared_info.upcall_mask", mask == 1, format_args!("{mask}"));
    c.ok("unmap_shared_info", mem.unmap(va));
}

/// `xen_version`: every sub-op, and the errors.
pub(crate) fn version(c: &mut Checks) {
    use pvrt::hypercall::xen_version;
    use xen_abi::version::*;
    // Each call below passes a buffer as large as its sub-op writes.
    let v = unsafe { xen_version(XENVER_VERSION, core::ptr::null_mut()) };
    c.check(
        "xen_version_version",
        v == Ok(0x0004_0001),
        format_args!("{v:x?}"),
    );
    let mut buf = [0u8; 1024];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_CAPABILITIES, buf.as_mut_ptr()) };
    let caps = cstr(&buf);
    c.check(
        "xen_version_capabilities",
        r.is_ok() && caps == "xen-3.0-x86_32p",
        format_args!("{r:?} {:?}", caps),
    );
    let mut extra = [0u8; 16];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_EXTRAVERSION, extra.as_mut_ptr()) };
    c.check(
        "xen_version_extraversion",
        r.is_ok() && cstr(&extra).starts_with(".0-oxen"),
        format_args!("{:?}", cstr(&extra)),
    );
    let mut info = [0u8; 144];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_COMPILE_INFO, info.as_mut_ptr()) };
    c.check(
        "xen_version_compile_info",
        r.is_ok() && cstr(&info[..64]).starts_with("rustc"),
        format_args!("{r:?}"),
    );
    let mut cs = [0u8; 64];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_CHANGESET, cs.as_mut_ptr()) };
    c.check(
        "xen_version_changeset",
        r.is_ok() && cstr(&cs).starts_with("oxen"),
        format_args!("{r:?}"),
    );
    let mut vs = 0u32;
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_PLATFORM_PARAMETERS, &mut vs as *mut u32 as *mut u8) };
    c.check(
        "xen_version_platform_parameters",
        r.is_ok() && vs == 0xF580_0000,
        format_args!("{r:?} {vs:#x}"),
    );
    let mut fi = [0u32, 0];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GET_FEATURES, fi.as_mut_ptr() as *mut u8) };
    // test-dom0 runs with pae_extended_cr3 (PAE_MODE "yes"), so its L3s may
    // lie above 4 GiB; grant maps do not offer the avail bits.
    let want = (1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD)
        | (1 << XENFEAT_HIGHMEM_ASSIST)
        | (1 << XENFEAT_PAE_PGDIR_ABOVE_4GB);
    c.check(
        "xen_version_get_features",
        r.is_ok() && fi[1] == want,
        format_args!("{r:?} {:#x}", fi[1]),
    );
    let mut fi = [1u32, 0xFFFF];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GET_FEATURES, fi.as_mut_ptr() as *mut u8) };
    c.check(
        "xen_version_get_features_submap1",
        r.is_ok() && fi[1] == 0,
        format_args!("{r:?} {:#x}", fi[1]),
    );
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_PAGESIZE, core::ptr::null_mut()) };
    c.check("xen_version_pagesize", r == Ok(4096), format_args!("{r:?}"));
    let mut h = [0xAAu8; 16];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GUEST_HANDLE, h.as_mut_ptr()) };
    c.check(
        "xen_version_guest_handle",
        r.is_ok() && h == [0; 16],
        format_args!("{r:?}"),
    );
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_COMMANDLINE, buf.as_mut_ptr()) };
    let cl = cstr(&buf);
    c.check(
        "xen_version_commandline",
        r.is_ok() && cl.contains("dom0_mem="),
        format_args!("{r:?} {:?}", cl),
    );
    c.err(
        "xen_version_unknown_cmd",
        // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
        unsafe { xen_version(99, core::ptr::null_mut()) },
        Errno::ENOSYS,
    );
    c.err(
        "xen_version_buffer_in_hole",
        // SAFETY: a pointer into the hypervisor hole on purpose: Oxen must refuse it.
        unsafe { xen_version(XENVER_CAPABILITIES, 0xF580_0000 as *mut u8) },
        Errno::EFAULT,
    );
}

/// A NUL-terminated byte string from the hypervisor, as `&str`.
fn cstr(b: &[u8]) -> &str {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..n]).unwrap_or("<not utf-8>")
}
