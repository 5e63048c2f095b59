//! Isolation: what a domU is refused. The domU that `domains::run_domu`
//! builds runs a small program (in domains.rs) that, besides its FPU check,
//! sends on the event channel dom0 bound for it (allowed), binds a port of
//! dom0's that was never offered, calls `domctl`, and maps a grant of
//! dom0's that names another domain, leaving each call's result on its
//! data page. Here dom0 offers that grant (to domain 5) before the domU is
//! built, and reads the results back after the domU has powered off.

use pvrt::mm::update_va_mapping_otherdomain;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::UVMF_INVLPG;

use crate::grants::gnttab;
use crate::helpers::{A, Checks, Mem, P, pte};

/// dom0 sets up its own grant table and grants a page (entry 8) to domain
/// 5, not to the domU, which will try to map it.
pub(crate) fn offer_grant_elsewhere(c: &mut Checks, mem: &Mem<'_>) {
    let own_gnt = {
        use xen_abi::grant::*;
        let mut frames = [0u32; 1];
        let mut st = GnttabSetupTable {
            dom: xen_abi::domid::DOMID_SELF,
            nr_frames: 1,
            frame_list: frames.as_mut_ptr() as u32,
            ..Default::default()
        };
        let r = gnttab(GNTTABOP_SETUP_TABLE, &mut st);
        let gva = mem.scratch_va(57);
        let mapped = mem.map(gva, frames[0], true);
        // SAFETY: dom0's grant frame, mapped writable at `gva`.
        unsafe {
            (gva as *mut GrantEntryV1)
                .add(8)
                .write_volatile(GrantEntryV1 {
                    flags: GTF_PERMIT_ACCESS,
                    domid: 5,
                    frame: mem.mfn(mem.first_free_pfn + 59),
                })
        };
        let _ = mem.unmap(gva);
        r.is_ok() && st.status == GNTST_OKAY && mapped.is_ok()
    };
    c.check(
        "gnttab_dom0_own_table",
        own_gnt,
        format_args!("setup_table(DOMID_SELF) and the entry"),
    );
}

/// What the domU's calls returned, read from its data page `data` (through
/// the scratch VA `va`) once it has powered off: only the send succeeded.
pub(crate) fn domu_refusals(c: &mut Checks, mem: &Mem<'_>, id: DomId, data: u32, va: u32) {
    // What the domU's event-channel calls returned, from its data page.
    let _ = update_va_mapping_otherdomain(va, pte(data, P | A), UVMF_INVLPG, id);
    // SAFETY: mapped read-only at `va`.
    let (sent, bound, ctl, gmap) = unsafe {
        (
            ((va + 0x10) as *const i32).read_volatile(),
            ((va + 0x20) as *const i32).read_volatile(),
            ((va + 0x24) as *const i32).read_volatile(),
            ((va + 0x28) as *const i32).read_volatile(),
        )
    };
    // SAFETY: as above.
    let (dump, flood, huge) = unsafe {
        (
            ((va + 0x2c) as *const i32).read_volatile(),
            ((va + 0x30) as *const i32).read_volatile(),
            ((va + 0x34) as *const i32).read_volatile(),
        )
    };
    c.check(
        "domu_dump_table_refused",
        dump == -Errno::EPERM.0,
        format_args!("{dump}"),
    );
    // Its twenty 3 KiB writes succeed (rate-limited, not refused); the
    // write of 2^31 - 1 bytes is continued until it reaches the unmapped
    // page and fails there, without holding the machine.
    c.check(
        "domu_console_flood_written",
        flood == 0 && huge == -Errno::EFAULT.0,
        format_args!("writes {flood:#x}, the 2^31 - 1 byte write {huge}"),
    );
    c.check(
        "domu_map_grant_not_offered",
        gmap == i32::from(xen_abi::grant::GNTST_GENERAL_ERROR),
        format_args!("status {gmap}"),
    );
    let _ = mem.unmap(va);
    c.check("domu_send_ok", sent == 0, format_args!("{sent}"));
    c.check(
        "domu_bind_unoffered_port_refused",
        bound == -Errno::EINVAL.0,
        format_args!("{bound}"),
    );
    c.check(
        "domu_domctl_refused",
        ctl == -Errno::EPERM.0,
        format_args!("{ctl}"),
    );
}
