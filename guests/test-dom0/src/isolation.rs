//! Isolation: what a domU is refused. The domU that `domains::run_domu`
//! builds runs a small program (in domains.rs) that, besides its FPU check,
//! sends on the event channel dom0 bound for it (allowed), binds a port of
//! dom0's that was never offered, calls `domctl`, and maps a grant of
//! dom0's that names another domain, leaving each call's result on its
//! data page. Here dom0 offers that grant (to domain 5) before the domU is
//! built, and reads the results back after the domU has powered off.
//!
//! Also the memory accounting of a domain (issue 10, finding 5): frames it
//! gives back while something else still holds them stay counted, so no
//! populate/decrease loop passes its `max_pages`.

use pvrt::mm::update_va_mapping_otherdomain;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::UVMF_INVLPG;

use crate::grants::gnttab;
use crate::helpers::{A, Checks, Mem, P, hcall, normal, pte};

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
    // SAFETY: as above.
    let (pirq_bound, pirq_mapped) = unsafe {
        (
            ((va + 0x38) as *const i32).read_volatile(),
            ((va + 0x3c) as *const i32).read_volatile(),
        )
    };
    c.check(
        "domu_bind_pirq_refused",
        pirq_bound == -Errno::EPERM.0,
        format_args!("{pirq_bound}"),
    );
    c.check(
        "domu_map_pirq_refused",
        pirq_mapped == -Errno::EPERM.0,
        format_args!("{pirq_mapped}"),
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

/// Issue 10, finding 5, on domain `id` (a fresh domain holding exactly its
/// `max_pages` = 16 frames, `pfns`, the first of which is its hypercall
/// page): dom0 pins one of its frames as an L1 and maps another, the domain
/// gives both back, then populate/decrease loops try to get past the limit.
/// Xen's answer: the frames stay the domain's and counted until their last
/// reference goes, and populate at the limit does nothing (returns 0 extents
/// done). Its shared_info frame cannot be given back (it was never counted).
pub(crate) fn reservation_accounting(
    c: &mut Checks,
    mem: &Mem<'_>,
    id: DomId,
    pfns: &[u32],
    shared_info: u32,
) {
    use pvrt::mm::{mmu_update, mmuext_op};
    use xen_abi::hypercall::MEMORY_OP;
    use xen_abi::memory::*;
    use xen_abi::mm::{MMUEXT_PIN_L1_TABLE, MMUEXT_UNPIN_TABLE, MmuextOp};
    let reservation = |cmd: u32| hcall(MEMORY_OP, [cmd, &id as *const DomId as u32, 0, 0, 0]);
    let current = || reservation(XENMEM_CURRENT_RESERVATION);
    let memory_op = |cmd: u32, frames: &mut [u32]| {
        let res = XenMemoryReservation {
            extent_start: frames.as_mut_ptr() as u32,
            nr_extents: frames.len() as u32,
            extent_order: 0,
            mem_flags: 0,
            domid: id,
            _pad: 0,
        };
        hcall(MEMORY_OP, [cmd, &res as *const _ as u32, 0, 0, 0])
    };
    let decrease = |mfn: u32| memory_op(XENMEM_DECREASE_RESERVATION, &mut [mfn]);
    let populate = |n: usize| {
        let mut f = [0u32, 1, 2, 3];
        memory_op(XENMEM_POPULATE_PHYSMAP, &mut f[..n])
    };
    let foreign = u32::from(id);
    let (l1, mapped) = (pfns[1], pfns[2]);
    let pin = mmuext_op(&[MmuextOp::new(MMUEXT_PIN_L1_TABLE, l1, 0)], foreign).0;
    let va = mem.scratch_va(43);
    let map = mmu_update(&[normal(mem.l1e_maddr(va), pte(mapped, P | A))], foreign).0;
    let (cur, max) = (current(), reservation(XENMEM_MAXIMUM_RESERVATION));
    c.check(
        "memory_accounting_setup",
        pin.is_ok() && map.is_ok() && cur == Ok(16) && max == Ok(16),
        format_args!("pin {pin:?} map {map:?} current {cur:?} max {max:?}"),
    );
    let (d1, d2) = (decrease(l1), decrease(mapped));
    let cur = current();
    c.check(
        "memory_accounting_kept_frames_stay_counted",
        d1 == Ok(1) && d2 == Ok(1) && cur == Ok(16),
        format_args!("decrease {d1:?} {d2:?}, current {cur:?} (want 16)"),
    );
    let more = populate(1);
    let cur = current();
    c.check(
        "memory_accounting_populate_refused_at_max",
        more == Ok(0) && cur == Ok(16),
        format_args!("populate {more:?} (want 0 done), current {cur:?}"),
    );
    // Each round gives one ordinary frame back and asks for two.
    let mut rounds = [(Ok(0), Ok(0), Ok(0), Ok(0)); 8];
    for (i, r) in rounds.iter_mut().enumerate() {
        *r = (decrease(pfns[3 + i]), populate(1), populate(1), current());
    }
    c.check(
        "memory_accounting_populate_decrease_loop_stays_at_max",
        rounds.iter().all(|r| *r == (Ok(1), Ok(1), Ok(0), Ok(16))),
        format_args!("{rounds:?}"),
    );
    let si = decrease(shared_info);
    let cur = current();
    c.check(
        "memory_accounting_shared_info_not_given_back",
        si == Ok(0) && cur == Ok(16),
        format_args!("decrease(shared_info) {si:?}, current {cur:?}"),
    );
    let unpin = mmuext_op(&[MmuextOp::new(MMUEXT_UNPIN_TABLE, l1, 0)], foreign).0;
    let cur = current();
    c.check(
        "memory_accounting_unpin_frees_and_uncounts",
        unpin.is_ok() && cur == Ok(15),
        format_args!("unpin {unpin:?}, current {cur:?} (want 15)"),
    );
    let unmap = mem.unmap(va);
    let cur = current();
    c.check(
        "memory_accounting_unmap_frees_and_uncounts",
        unmap.is_ok() && cur == Ok(14),
        format_args!("unmap {unmap:?}, current {cur:?} (want 14)"),
    );
    let refill = populate(3);
    let cur = current();
    c.check(
        "memory_accounting_refill_to_max",
        refill == Ok(2) && cur == Ok(16),
        format_args!("populate 3: {refill:?} (want 2), current {cur:?}"),
    );
}
