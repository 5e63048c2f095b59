//! The PV MMU hypercalls (XEN-PV-ABI.md §7): `mmu_update`, `mmuext_op`,
//! `update_va_mapping(_otherdomain)` and `vm_assist`, bound to the engine in
//! `pv_mm`. Here: argument decoding, guest copies, `foreigndom`, TLB flushes,
//! CR3 loads, the `done` counts, and Xen's continuation for long batches: a
//! batch yields after `BATCH_PREEMPT` entries or once the invocation has run
//! `hv_core::hypercall::PREEMPT_AFTER_NS` (checked between entries, as Xen's
//! `hypercall_preempt_check`), with `pdone` holding the entries done so far
//! and the rest of `count` marked `MMU_UPDATE_PREEMPTED`.
//!
//! One `MMUEXT_PIN_L2_TABLE`/`PIN_L3_TABLE`, `NEW_BASEPTR` or `UNPIN_TABLE`
//! is itself split (Xen's `-ERESTART` with `PGT_partial`, `pv_mm::partial`):
//! an invocation validates or takes down at most [`VALIDATE_BUDGET`] entries
//! (plus one L1) and, if the op is not complete, continues with the op not
//! counted done, the tables left partial; the continuation resumes them.
//! So is an `mmu_update` of an L3 entry naming a fresh L2 (up to 512 fresh
//! L1s): the L2 is validated in steps and the entry stored once it is
//! complete.
//!
//! The last reference of an old table going is split too (Xen's
//! `old_guest_table`): the old base pointer of a `NEW_BASEPTR` or an
//! emulated `mov %reg,%cr3`, and the old L2 of an `mmu_update` of one of
//! the caller's L3 entries. What the budget does not cover stays the vcpu's
//! `old_guest_table`; the op counts done, the hypercall continues (for CR3:
//! the instruction is executed again, Xen's `X86EMUL_RETRY`), and the next
//! `mmu_update`, `mmuext_op` or CR3 write of the vcpu finishes the put
//! before anything else.

use hv_core::addr::Mfn;
use hv_core::hypercall::{Outcome, batch_continuation, batch_count};
use pv_mm::PtLevel;
use xen_abi::domid::{DOMID_IO, DOMID_SELF, DOMID_XEN, DomId};
use xen_abi::errno::Errno;
use xen_abi::layout::HYPERVISOR_VIRT_START;
use xen_abi::mm::*;
use xen_abi::traps::{
    MAX_LDT_ENTRIES, MAX_VMASST_TYPE, VMASST_CMD_DISABLE, VMASST_CMD_ENABLE,
    VMASST_TYPE_PAE_EXTENDED_CR3,
};

use super::Ctx;
use crate::arch::x86::cpu;
use crate::arch::x86::uaccess::{read_guest, write_guest};
use crate::domain::Domain;
use crate::mm::frame_table::MM;

/// Entries served per invocation before a long batch yields (continuation).
const BATCH_PREEMPT: u32 = 1024;

/// Page-table entries one `mmuext_op` or `mmu_update` invocation validates
/// (pins, base pointers, L3 entries) or takes down (unpins) before it
/// continues (about 3 ms under TCG, where an entry takes
/// about 1.5 µs; much less on hardware).
pub const VALIDATE_BUDGET: u32 = 2048;

/// Resolves a domain id argument: `DOMID_SELF` is the caller; a domain other
/// than the caller must exist (only the caller does, until domUs arrive) or be
/// one of the special owners a privileged caller may name.
/// The domain a `foreigndom`/`domid` argument names: the caller, or for a
/// privileged caller `DOMID_IO`, `DOMID_XEN` or any live domain (`live`: a
/// bitmap of the domids in the table).
fn resolve_domid(dom: &Domain, id: DomId, live: u64) -> Result<DomId, Errno> {
    match id {
        DOMID_SELF => Ok(dom.domid),
        id if id == dom.domid => Ok(id),
        DOMID_IO | DOMID_XEN if dom.privileged => Ok(id),
        id if dom.privileged && id < 64 && live & (1 << id) != 0 => Ok(id),
        _ => Err(Errno::ESRCH),
    }
}

/// The domids of the live (not dying) domains, as a bitmap.
fn live_domids(ctx: &mut Ctx) -> u64 {
    const _: () = assert!(crate::domain::MAX_DOMAINS <= 64);
    let table = ctx.table();
    let mut live = table.live();
    let mut bits = live;
    while bits != 0 {
        let d = bits.trailing_zeros();
        bits &= bits - 1;
        if table.get(d as DomId).is_some_and(|d| d.dying) {
            live &= !(1 << d);
        }
    }
    live
}

/// Writes the batch's done count to the guest's `pdone` (if it gave one). As
/// Xen, a `pdone` Oxen cannot write is the guest's own problem: the call's
/// result stands, and nothing about the work done (CR3 reload included)
/// depends on it.
fn record_done(pdone: u32, done: u32) {
    if pdone != 0 {
        let _ = write_guest(pdone, &done);
    }
}

/// The done count a continued batch starts from: the guest's `pdone` (0 if
/// unreadable, as Xen ignores that read's failure too).
fn done_so_far(pdone: u32, resumed: bool) -> u32 {
    if resumed && pdone != 0 {
        read_guest::<u32>(pdone).unwrap_or(0)
    } else {
        0
    }
}

pub fn do_mmu_update(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [reqs, count, pdone, foreigndom, _] = args;
    let (count, resumed) = batch_count(count);
    let live = live_domids(ctx);
    let started = ctx.started_ns();
    let dom = ctx.dom();
    let caller = dom.caller();
    let result = (|| -> Result<Outcome, Errno> {
        let base = done_so_far(pdone, resumed);
        let pg_owner = resolve_domid(dom, foreigndom_fd(foreigndom), live)?;
        let pt_owner = match foreigndom_pfd(foreigndom) {
            Some(id) => resolve_domid(dom, id, live)?,
            None => dom.domid,
        };
        // `i` requests served: the rest go on in a continuation.
        let more = |i| {
            let size = core::mem::size_of::<MmuUpdate>() as u32;
            Ok(Outcome::Continue(batch_continuation(
                reqs, size, i, count, pdone, foreigndom,
            )))
        };
        let mut budget = pv_mm::Budget::new(VALIDATE_BUDGET);
        if finish_old_guest_table(dom, &mut budget).is_err() {
            record_done(pdone, base);
            return more(0);
        }
        let mut guard = MM.lock();
        let mm = guard.as_mut().expect("frame table initialised");
        let mut i = 0;
        let outcome = loop {
            if i == count {
                break Ok(Outcome::Done(0));
            }
            if i == BATCH_PREEMPT || super::preempt_since(started, i) {
                break more(i);
            }
            let req: MmuUpdate = match read_guest(reqs.wrapping_add(i * 16)) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let (ptr, val) = ({ req.ptr }, { req.val });
            match mm.mmu_update_one_preemptible(ptr, val, &caller, pt_owner, pg_owner, &mut budget)
            {
                Ok(None) => i += 1,
                // Done, but the old L2 the entry held is still being taken
                // down: the continuation finishes that put first (Xen's
                // old_guest_table), however many requests are left.
                Ok(Some(old_l2)) => {
                    i += 1;
                    dom.vcpu.old_guest_table = Some(old_l2);
                    break more(i);
                }
                // An L3 entry's fresh L2 ran out of budget: retried, not done.
                Err(Errno::ERESTART) => break more(i),
                Err(e) => break Err(e),
            }
        };
        drop(guard);
        // An edited L3 or L2 must reach the CPU before the guest runs again
        // (PDPTEs are cached at CR3 load): the low copy is refreshed from the
        // L3 and CR3 reloaded, which also flushes stale translations of
        // edited L1s. Every way out of the loop comes here.
        if i > 0 {
            dom.load_cr3();
        }
        record_done(pdone, base.wrapping_add(i));
        outcome
    })();
    audit_if_asked(ctx.table());
    match result {
        Ok(o) => o,
        Err(e) => Outcome::Done(e.to_ret()),
    }
}

pub fn do_mmuext_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [ops, count, pdone, foreigndom, _] = args;
    let (count, resumed) = batch_count(count);
    let live = live_domids(ctx);
    let started = ctx.started_ns();
    let dom = ctx.dom();
    let result = (|| -> Result<Outcome, Errno> {
        let base = done_so_far(pdone, resumed);
        let pg_owner = resolve_domid(dom, foreigndom_fd(foreigndom), live)?;
        // `i` ops served: the rest go on in a continuation.
        let more = |i| {
            let size = core::mem::size_of::<MmuextOp>() as u32;
            Ok(Outcome::Continue(batch_continuation(
                ops, size, i, count, pdone, foreigndom,
            )))
        };
        let mut budget = pv_mm::Budget::new(VALIDATE_BUDGET);
        if finish_old_guest_table(dom, &mut budget).is_err() {
            record_done(pdone, base);
            return more(0);
        }
        let mut i = 0;
        let outcome = loop {
            if i == count {
                break Ok(Outcome::Done(0));
            }
            if i == BATCH_PREEMPT || super::preempt_since(started, i) {
                break more(i);
            }
            let op: MmuextOp = match read_guest(ops.wrapping_add(i * 12)) {
                Ok(op) => op,
                Err(e) => break Err(e),
            };
            match mmuext_one(dom, &op, pg_owner, &mut budget) {
                Ok(()) => i += 1,
                // The op's validation ran out of budget: retried, not done.
                Err(Errno::ERESTART) => break more(i),
                Err(e) => break Err(e),
            }
            // A base pointer left behind is still being taken down: the op
            // is done, and the continuation finishes that put first (Xen's
            // old_guest_table), however many ops are left (maybe none).
            if dom.vcpu.old_guest_table.is_some() {
                break more(i);
            }
        };
        record_done(pdone, base.wrapping_add(i));
        outcome
    })();
    audit_if_asked(ctx.table());
    match result {
        Ok(o) => o,
        Err(e) => Outcome::Done(e.to_ret()),
    }
}

fn mmuext_one(
    dom: &mut Domain,
    op: &MmuextOp,
    pg_owner: DomId,
    budget: &mut pv_mm::Budget,
) -> Result<(), Errno> {
    let caller = dom.caller();
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    let mfn = Mfn(u64::from(op.mfn()));
    match op.cmd {
        MMUEXT_PIN_L1_TABLE => mm.pin(mfn, PtLevel::L1, &caller, pg_owner),
        MMUEXT_PIN_L2_TABLE => mm.pin_preemptible(mfn, PtLevel::L2, &caller, pg_owner, budget),
        MMUEXT_PIN_L3_TABLE => mm.pin_preemptible(mfn, PtLevel::L3, &caller, pg_owner, budget),
        MMUEXT_PIN_L4_TABLE => Err(Errno::EINVAL),
        MMUEXT_UNPIN_TABLE => mm.unpin_preemptible(mfn, &caller, pg_owner, budget),
        MMUEXT_NEW_BASEPTR => {
            if pg_owner != dom.domid {
                return Err(Errno::EINVAL);
            }
            drop(guard);
            switch_base_pointer_preemptible(dom, mfn, budget)
        }
        MMUEXT_TLB_FLUSH_LOCAL | MMUEXT_TLB_FLUSH_MULTI | MMUEXT_TLB_FLUSH_ALL => {
            // One vcpu: every flush scope is this CPU's TLB. A MULTI mask must
            // still be readable.
            if op.cmd == MMUEXT_TLB_FLUSH_MULTI {
                read_guest::<u32>(op.vcpumask())?;
            }
            cpu::flush_tlb_local();
            Ok(())
        }
        MMUEXT_INVLPG_LOCAL | MMUEXT_INVLPG_MULTI | MMUEXT_INVLPG_ALL => {
            if op.cmd == MMUEXT_INVLPG_MULTI {
                read_guest::<u32>(op.vcpumask())?;
            }
            cpu::invlpg(op.linear_addr());
            Ok(())
        }
        MMUEXT_FLUSH_CACHE | MMUEXT_FLUSH_CACHE_GLOBAL => {
            if !dom.iomem_access {
                return Err(Errno::EPERM);
            }
            cpu::wbinvd();
            Ok(())
        }
        MMUEXT_CLEAR_PAGE => mm.clear_page(mfn, &caller),
        MMUEXT_COPY_PAGE => mm.copy_page(mfn, Mfn(u64::from(op.src_mfn())), &caller),
        MMUEXT_NEW_USER_BASEPTR => Err(Errno::EINVAL),
        MMUEXT_SET_LDT => {
            let (base, ents) = (op.linear_addr(), op.nr_ents());
            let end = u64::from(base) + u64::from(ents) * 8;
            if base % 4096 != 0
                || ents as usize > MAX_LDT_ENTRIES
                || end > u64::from(HYPERVISOR_VIRT_START)
            {
                return Err(Errno::EINVAL);
            }
            drop(guard);
            crate::hypercall::descriptors::set_ldt(dom, base, ents)
        }
        // Superpages (MARK_SUPER/UNMARK_SUPER) are not offered.
        _ => Err(Errno::ENOSYS),
    }
}

/// An emulated `mov %reg,%cr3` of the L3 `mfn` (Xen's `new_guest_cr3`):
/// as `MMUEXT_NEW_BASEPTR`, split under [`VALIDATE_BUDGET`]. A pending put
/// of an old table is finished first; then a fresh L3 is validated in steps
/// and, once it is the base pointer, the old one's put runs in steps too.
/// `-ERESTART` while any of that is left: the caller executes the
/// instruction again (Xen's `X86EMUL_RETRY`: the guest runs, takes its
/// events, and comes back here), which goes on where this stopped; a write
/// of the CR3 the vcpu already has just reloads it (so a retry after the
/// switch only finishes the put).
pub fn write_cr3(dom: &mut Domain, mfn: Mfn) -> Result<(), Errno> {
    let mut budget = pv_mm::Budget::new(VALIDATE_BUDGET);
    finish_old_guest_table(dom, &mut budget)?;
    if mfn == dom.vcpu.cr3 {
        dom.load_cr3();
        return Ok(());
    }
    switch_base_pointer_preemptible(dom, mfn, &mut budget)?;
    if dom.vcpu.old_guest_table.is_some() {
        return Err(Errno::ERESTART);
    }
    Ok(())
}

/// Makes the L3 `mfn`, whose base-pointer reference is taken, the vcpu's
/// base pointer, loads it, and only then drops the old one's reference:
/// until the CR3 load the CPU runs on the old tables (the old L3's slot-3 L2
/// maps Oxen itself), as Xen's write_ptbase before put_page_and_type. The
/// old tables are taken down in steps under `budget`: what it does not
/// cover stays the vcpu's `old_guest_table`, which the caller's
/// continuation finishes ([`finish_old_guest_table`]).
fn install_base_pointer(dom: &mut Domain, mfn: Mfn, budget: &mut pv_mm::Budget) {
    let old = core::mem::replace(&mut dom.vcpu.cr3, mfn);
    dom.load_cr3();
    if old.0 == 0 {
        return;
    }
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    // Only one put is pending at a time (every caller finishes it before
    // the next op); should one be, this one is dropped at once.
    if dom.vcpu.old_guest_table.is_some() {
        mm.put_page_and_type(old);
    } else if mm.put_old_table_preemptible(old, budget) == Err(Errno::ERESTART) {
        dom.vcpu.old_guest_table = Some(old);
    }
}

/// Goes on taking down the vcpu's `old_guest_table` under `budget`:
/// `Err(ERESTART)` while some is left (the hypercall continues and comes
/// back here first).
pub fn finish_old_guest_table(dom: &mut Domain, budget: &mut pv_mm::Budget) -> Result<(), Errno> {
    let Some(old) = dom.vcpu.old_guest_table else {
        return Ok(());
    };
    let r = MM
        .lock()
        .as_mut()
        .expect("frame table initialised")
        .put_old_table_preemptible(old, budget);
    if r == Err(Errno::ERESTART) {
        return r;
    }
    dom.vcpu.old_guest_table = None;
    Ok(())
}

/// Makes the L3 `mfn` the vcpu's base pointer (`MMUEXT_NEW_BASEPTR`, an
/// emulated `mov %reg,%cr3`) and loads it: the validation of a fresh L3 is
/// split under `budget` (`-ERESTART`: continue, the vcpu keeps its base
/// pointer meanwhile), and so is the old one's put (see
/// [`install_base_pointer`]).
///
/// The L3 may lie anywhere the engine accepts (above 4 GiB with
/// `pae_extended_cr3`): CR3 holds its low copy (`mm::low_l3`).
fn switch_base_pointer_preemptible(
    dom: &mut Domain,
    mfn: Mfn,
    budget: &mut pv_mm::Budget,
) -> Result<(), Errno> {
    let caller = dom.caller();
    let extended = dom.has_assist(VMASST_TYPE_PAE_EXTENDED_CR3);
    MM.lock()
        .as_mut()
        .expect("frame table initialised")
        .new_baseptr_preemptible(mfn, None, &caller, extended, budget)?;
    install_base_pointer(dom, mfn, budget);
    Ok(())
}

/// Applies the flush that `UVMF_*` `flags` ask for after changing `va`.
fn uvmf_flush(flags: u32, va: u32) -> Result<(), Errno> {
    // Bits above the flush type are either ALL (4) or a pointer to a vcpu mask
    // (MULTI), which must be readable; with one vcpu every scope is local.
    let scope = flags & !UVMF_FLUSHTYPE_MASK;
    if scope != 0 && scope != UVMF_ALL {
        read_guest::<u32>(scope)?;
    }
    match flags & UVMF_FLUSHTYPE_MASK {
        UVMF_TLB_FLUSH => cpu::flush_tlb_local(),
        UVMF_INVLPG => cpu::invlpg(va),
        _ => {}
    }
    Ok(())
}

fn update_va_mapping(
    dom: &mut Domain,
    va: u32,
    val: u64,
    flags: u32,
    pg_owner: DomId,
) -> Result<i32, Errno> {
    if va >= HYPERVISOR_VIRT_START {
        return Err(Errno::EINVAL);
    }
    let caller = dom.caller();
    {
        let mut guard = MM.lock();
        let mm = guard.as_mut().expect("frame table initialised");
        let (l1, index) = mm.l1_slot_for_va(dom.vcpu.cr3, va)?;
        mm.mod_l1_entry(l1, index, val, &caller, pg_owner, false)?;
    }
    uvmf_flush(flags, va)?;
    Ok(0)
}

pub fn do_update_va_mapping(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [va, lo, hi, flags, _] = args;
    let dom = ctx.dom();
    let pg_owner = dom.domid;
    let r = update_va_mapping(
        dom,
        va,
        (u64::from(hi) << 32) | u64::from(lo),
        flags,
        pg_owner,
    );
    audit_if_asked(ctx.table());
    r.into()
}

pub fn do_update_va_mapping_otherdomain(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [va, lo, hi, flags, domid] = args;
    let live = live_domids(ctx);
    let dom = ctx.dom();
    let r = resolve_domid(dom, domid as DomId, live).and_then(|owner| {
        update_va_mapping(dom, va, (u64::from(hi) << 32) | u64::from(lo), flags, owner)
    });
    audit_if_asked(ctx.table());
    r.into()
}

pub fn do_vm_assist(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, ty, ..] = args;
    let dom = ctx.dom();
    if ty > MAX_VMASST_TYPE {
        return Err(Errno::EINVAL).into();
    }
    match cmd {
        VMASST_CMD_ENABLE => dom.vm_assist |= 1 << ty,
        VMASST_CMD_DISABLE => dom.vm_assist &= !(1 << ty),
        _ => return Err(Errno::EINVAL).into(),
    }
    Ok(0).into()
}

/// With `mm_audit`, recounts every frame after an MMU hypercall (every
/// `mm_audit_every`-th one); a mismatch is an Oxen bug and stops the
/// machine. Every domain's base pointer and the references Oxen holds for
/// it are counted.
pub fn audit_if_asked(table: &crate::domain::DomainTable) {
    if !crate::mm::audit_enabled() || !crate::mm::audit_due() {
        return;
    }
    static SCRATCH: spin::Mutex<alloc::vec::Vec<u32>> = spin::Mutex::new(alloc::vec::Vec::new());
    let guard = MM.lock();
    let mm = guard.as_ref().expect("frame table initialised");
    let mut scratch = SCRATCH.lock();
    scratch.resize(2 * mm.frames().len(), 0);
    // References Oxen holds itself: each shared_info's permanent writable
    // type, the GDT and LDT frames' seg_desc types, the grant-table frames'
    // writable types and the grant mappings' references.
    let mut external = alloc::vec::Vec::new();
    let mut bases = alloc::vec::Vec::new();
    // A dying domain still counts for what it has not given back yet.
    for dom in table.iter() {
        if dom.shared_info.0 != 0 {
            external.push(pv_mm::ExternalRef {
                mfn: dom.shared_info,
                ty: Some(pv_mm::PageType::Writable),
            });
        }
        for &mfn in dom.vcpu.gdt_frames.iter().chain(&dom.vcpu.ldt_frames) {
            external.push(pv_mm::ExternalRef {
                mfn,
                ty: Some(pv_mm::PageType::SegDesc),
            });
        }
        for &mfn in &dom.grants.frames {
            external.push(pv_mm::ExternalRef {
                mfn,
                ty: Some(pv_mm::PageType::Writable),
            });
        }
        // Each grant mapping's own references (the PTE of a host part is
        // counted with the page tables).
        for (_, e) in dom.grants.maptrack.iter().flat_map(|mt| mt.iter()) {
            let refs =
                hv_core::gnttab::Refs::for_parts(e.host_mapped(), e.device_mapped(), e.readonly());
            for i in 0..refs.page {
                external.push(pv_mm::ExternalRef {
                    mfn: e.frame,
                    ty: (i < refs.writable_type).then_some(pv_mm::PageType::Writable),
                });
            }
        }
        if dom.vcpu.cr3.0 != 0 {
            bases.push(dom.vcpu.cr3);
        }
    }
    let errors = crate::mm::accounting_errors();
    if errors != 0 {
        panic!(
            "mm audit failed after a hypercall of {}: {errors} domain(s) destroyed with tot_pages not at zero",
            crate::domain::CurrentDomain
        );
    }
    match mm.audit_with_scratch(&bases, &external, &mut scratch) {
        Ok(_) => crate::mm::count_audit(),
        Err(e) => panic!(
            "mm audit failed after a hypercall of {}: {e}",
            crate::domain::CurrentDomain
        ),
    }
}
