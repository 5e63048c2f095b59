//! `grant_table_op(cmd, uops, count)` (#20, XEN-PV-ABI.md §9.2), grant
//! tables v1, bound to the rules of `hv_core::gnttab`: setup_table (the
//! table's frames are the domain's own, shared writable), query_size,
//! map_grant_ref / unmap_grant_ref (host mappings at a virtual address of
//! the caller's current address space, written by the PV MMU engine as an
//! ordinary L1 entry with its own references), copy (bounds-checked, both
//! directions, with a page reference on each frame for the copy), dump_table
//! (privileged callers only, -EPERM otherwise: it prints on Oxen's console;
//! one operation per invocation, at most `DUMP_LINES` entries each, the rest
//! summed up in one line), set_version / get_version (v1 only). Each operation reports its own
//! `GNTST_*` status; the hypercall returns 0 when the array was processed
//! (an array longer than 512 operations is continued, as Xen preempts).
//! Not provided: transfer, unmap_and_replace, `GNTMAP_contains_pte`, v2.
//!
//! Frame lifetime (issue 10 finding 2): every live part of a mapping holds
//! the references its `hv_core::gnttab::Refs` name, taken at the map with the
//! granter as the owner (Xen's `get_page(page, granter)`) and dropped only at
//! its unmap or release, never with the PTE. So a pinned frame stays
//! allocated even if the guest clears the PTE and gives the frame back with
//! `decrease_reservation`: the frame is then owned but not allocated, and
//! returns to the allocator when the mapping goes. A copy takes a page
//! reference on both frames (owners: the sides' domains) for its duration.

use hv_core::addr::Mfn;
use hv_core::gnttab::{
    FrameOwnership, GntError, GrantDomains, Granter, MapRequest, Refs, UnmapRequest, copy_complete,
    gnttab_copy, map_grant_ref, release_mapping, unmap_grant_ref,
};
use hv_core::hypercall::Outcome;
use pv_mm::PageType;
use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::grant::*;

use super::Ctx;
use crate::arch::x86::uaccess::{read_guest, write_guest};
use crate::domain::gnttab::{GNTTAB_FRAMES, SharedFrames};
use crate::domain::{Domain, DomainTable};
use crate::mm::frame_table::{MM, alloc_extra_frame_below};
use crate::mm::mapcache;

/// Frame ownership from the frame table.
struct Owners;

impl FrameOwnership for Owners {
    fn owns(&self, dom: DomId, mfn: Mfn) -> bool {
        MM.lock()
            .as_ref()
            .and_then(|mm| mm.page_info(mfn))
            .is_some_and(|pi| pi.owner() == dom)
    }
}

/// Every live domain as a possible granter (and dying ones too when
/// `dying` is set: their existing mappings can still be undone).
struct Env<'t> {
    table: &'t mut DomainTable,
    shared: SharedFrames,
    dying: bool,
}

impl GrantDomains<GNTTAB_FRAMES> for Env<'_> {
    type Shared = SharedFrames;

    fn granter(&mut self, dom: DomId) -> Option<Granter<'_, SharedFrames, GNTTAB_FRAMES>> {
        let Env {
            table,
            shared,
            dying,
        } = self;
        let d = table.get_mut(dom).filter(|d| *dying || !d.dying)?;
        *shared = SharedFrames(d.grants.frames.clone());
        Some(Granter {
            table: &mut d.grants.table,
            shared,
        })
    }
}

fn status(e: GntError) -> i16 {
    e.status()
}

/// The domain a `dom` field names: the caller, or any live domain for a
/// privileged caller.
fn target_domid(caller: &Domain, dom: DomId) -> Result<DomId, i16> {
    match dom {
        DOMID_SELF => Ok(caller.domid),
        d if d == caller.domid => Ok(d),
        _ if caller.privileged => Ok(dom),
        _ => Err(GNTST_PERMISSION_DENIED),
    }
}

/// The live domain a `dom` field names, for the caller (see
/// [`target_domid`]); `GNTST_bad_domain` if there is none.
fn live_target(table: &DomainTable, caller: DomId, dom: DomId) -> Result<&Domain, i16> {
    let me = table.get(caller).expect("the caller exists");
    let id = target_domid(me, dom)?;
    table.get(id).filter(|d| !d.dying).ok_or(GNTST_BAD_DOMAIN)
}

fn setup_table(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabSetupTable = read_guest(uop)?;
    let me = table.get(caller).expect("the caller exists");
    let id = match target_domid(me, op.dom) {
        Ok(id) => id,
        Err(st) => {
            op.status = st;
            return write_guest(uop, &op);
        }
    };
    let Some(dom) = table.get_mut(id).filter(|d| !d.dying) else {
        op.status = GNTST_BAD_DOMAIN;
        return write_guest(uop, &op);
    };
    let grants = &mut dom.grants;
    // The table's frames exist from the first setup_table on (the first is
    // part of every table).
    let have = grants.table.nr_frames() as usize;
    let r = if add_frames(&mut grants.frames, id, have) {
        grants.table.setup_table(op.nr_frames, |new| {
            add_frames(&mut grants.frames, id, new.end as usize)
        })
    } else {
        Err(GntError::NoMemory)
    };
    match r {
        Ok(n) => {
            for (i, f) in grants.frames.iter().take(n as usize).enumerate() {
                write_guest(op.frame_list.wrapping_add(4 * i as u32), &(f.0 as u32))?;
            }
            op.status = GNTST_OKAY;
        }
        Err(e) => op.status = status(e),
    }
    write_guest(uop, &op)
}

/// Gives domain `id` grant-table frames until it has `want`: each owned by
/// it but not counted in its tot_pages (Oxen's frames for the domain, as
/// shared_info), cleared, with a permanent writable type reference. False
/// (nothing half-done) when memory runs out.
fn add_frames(frames: &mut heapless::Vec<Mfn, GNTTAB_FRAMES>, id: DomId, want: usize) -> bool {
    while frames.len() < want {
        let Some(f) = alloc_extra_frame_below(id, None) else {
            return false;
        };
        mapcache::clear_frame(f);
        let mut guard = MM.lock();
        let mm = guard.as_mut().expect("frame table initialised");
        if mm.get_page_and_type(f, id, PageType::Writable).is_err() {
            let _ = mm.relinquish(f, id);
            return false;
        }
        if frames.push(f).is_err() {
            mm.put_page_and_type(f);
            let _ = mm.relinquish(f, id);
            return false;
        }
    }
    true
}

fn query_size(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabQuerySize = read_guest(uop)?;
    op.status = match live_target(table, caller, op.dom) {
        Err(st) => st,
        Ok(d) => {
            (op.nr_frames, op.max_nr_frames) = d.grants.table.query_size();
            GNTST_OKAY
        }
    };
    write_guest(uop, &op)
}

/// The L1 slot that maps `va` in `dom`'s current address space.
fn l1_slot(dom: &Domain, va: u64) -> Option<(Mfn, usize)> {
    let va = u32::try_from(va).ok()?;
    MM.lock().as_ref()?.l1_slot_for_va(dom.vcpu.cr3, va).ok()
}

/// The host mapping part of a granted `frame`: the PTE at `host_addr`.
fn install_host(
    dom: &Domain,
    host_addr: u64,
    frame: Mfn,
    readonly: bool,
    flags: u32,
    granter: DomId,
) -> Result<(), i16> {
    if flags & GNTMAP_CONTAINS_PTE != 0 {
        return Err(GNTST_GENERAL_ERROR);
    }
    let (l1, index) = l1_slot(dom, host_addr).ok_or(GNTST_BAD_VIRT_ADDR)?;
    let user = flags & GNTMAP_APPLICATION_MAP != 0;
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    let grant = pv_mm::GrantPte {
        frame,
        readonly,
        user,
    };
    mm.install_grant_l1e(l1, index, grant, &dom.caller(), granter)
        .map_err(|_| GNTST_GENERAL_ERROR)?;
    crate::arch::x86::cpu::invlpg(host_addr as u32);
    Ok(())
}

/// Takes the references a mapping holds on `frame` (`refs`, owner
/// `granter`): all of them, or none and false (the frame is no longer the
/// granter's, or cannot be writable).
fn take_refs(frame: Mfn, granter: DomId, refs: Refs) -> bool {
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    for i in 0..refs.page {
        if mm.get_page(frame, granter).is_err() {
            for _ in 0..i {
                mm.put_page(frame);
            }
            return false;
        }
    }
    for i in 0..refs.writable_type {
        if mm.get_page_type(frame, PageType::Writable).is_err() {
            for _ in 0..i {
                mm.put_page_type(frame);
            }
            for _ in 0..refs.page {
                mm.put_page(frame);
            }
            return false;
        }
    }
    true
}

/// Drops what [`take_refs`] took; the last reference frees the frame.
fn drop_refs(frame: Mfn, refs: Refs) {
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    for _ in 0..refs.writable_type {
        mm.put_page_type(frame);
    }
    for _ in 0..refs.page {
        mm.put_page(frame);
    }
}

fn map_one(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabMapGrantRef = read_guest(uop)?;
    let me = table.get_mut(caller).expect("the caller exists");
    let mut mt = me.grants.maptrack.take().expect("maptrack present");
    let gdom = if op.dom == DOMID_SELF { caller } else { op.dom };
    let mut env = Env {
        table,
        shared: SharedFrames::default(),
        dying: false,
    };
    let r = map_grant_ref(
        &mut mt,
        caller,
        env.granter(gdom),
        &Owners,
        &MapRequest::from(&op),
    );
    let table = env.table;
    match r {
        Ok(g) => {
            let me = table.get(caller).expect("the caller exists");
            // The mapping's own references first: the check that the frame
            // is (still) the granter's, and what keeps it alive while pinned.
            let mut done = if take_refs(g.frame, gdom, g.refs) {
                Ok(())
            } else {
                Err(GNTST_GENERAL_ERROR)
            };
            if done.is_ok() && g.host_map {
                done = install_host(me, op.host_addr, g.frame, g.readonly, op.flags, gdom);
                if done.is_err() {
                    drop_refs(g.frame, g.refs);
                }
            }
            match done {
                Ok(()) => g.write_out(&mut op),
                Err(st) => {
                    let mut env = Env {
                        table,
                        shared: SharedFrames::default(),
                        dying: false,
                    };
                    let _ = release_mapping(&mut mt, env.granter(gdom), g.handle);
                    op.status = st;
                    return finish(env.table, caller, mt, uop, &op);
                }
            }
        }
        Err(e) => op.status = status(e),
    }
    finish(table, caller, mt, uop, &op)
}

fn finish<T: zerocopy::IntoBytes + zerocopy::Immutable>(
    table: &mut DomainTable,
    caller: DomId,
    mt: alloc::boxed::Box<hv_core::gnttab::Maptrack<{ crate::domain::gnttab::MAPTRACK_HANDLES }>>,
    uop: u32,
    op: &T,
) -> Result<(), Errno> {
    table
        .get_mut(caller)
        .expect("the caller exists")
        .grants
        .maptrack = Some(mt);
    write_guest(uop, op)
}

fn unmap_one(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabUnmapGrantRef = read_guest(uop)?;
    let me = table.get_mut(caller).expect("the caller exists");
    let mut mt = me.grants.maptrack.take().expect("maptrack present");
    let slot = if op.host_addr != 0 {
        l1_slot(me, op.host_addr)
    } else {
        None
    };
    let pte_frame = slot.and_then(|(l1, index)| {
        use pv_mm::Machine;
        let guard = MM.lock();
        let pte = guard.as_ref()?.machine.read_pte(l1, index);
        (pte & xen_abi::mm::PAGE_PRESENT != 0).then(|| Mfn(xen_abi::mm::pte_mfn(pte)))
    });
    let gdom = match mt.granter_of(op.handle) {
        Ok(d) => d,
        Err(e) => {
            op.status = status(e);
            return finish(table, caller, mt, uop, &op);
        }
    };
    let mut env = Env {
        table,
        shared: SharedFrames::default(),
        dying: true,
    };
    let r = match env.granter(gdom) {
        Some(g) => unmap_grant_ref(&mut mt, g, &UnmapRequest::from_abi(&op, pte_frame)),
        None => Err(GntError::BadDomain),
    };
    let table = env.table;
    match r {
        Ok(u) => {
            let me = table.get(caller).expect("the caller exists");
            if let (Some(addr), Some((l1, index))) = (u.host, slot) {
                let mut guard = MM.lock();
                let mm = guard.as_mut().expect("frame table initialised");
                let _ = mm.remove_grant_l1e(l1, index, u.frame, &me.caller());
                crate::arch::x86::cpu::invlpg(addr as u32);
            }
            drop_refs(u.frame, u.refs);
            op.status = GNTST_OKAY;
        }
        Err(e) => op.status = status(e),
    }
    finish(table, caller, mt, uop, &op)
}

fn copy_one(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabCopy = read_guest(uop)?;
    let privileged = table.get(caller).is_some_and(|d| d.privileged);
    let mut env = Env {
        table,
        shared: SharedFrames::default(),
        dying: false,
    };
    op.status = match gnttab_copy(&mut env, &Owners, caller, privileged, &op) {
        Ok(c) => {
            // A page reference on each frame for its side's domain, for the
            // copy (Xen's get_page on every copy): a grant's frame was checked
            // at the entry's first pin only. The destination must also be
            // writable memory (not a page table).
            let ok = {
                let mut guard = MM.lock();
                let mm = guard.as_mut().expect("frame table initialised");
                let got = mm.get_page(c.src.mfn, c.src.dom).and_then(|()| {
                    mm.get_page_and_type(c.dst.mfn, c.dst.dom, PageType::Writable)
                        .inspect_err(|_| mm.put_page(c.src.mfn))
                });
                if got.is_ok() {
                    let src = mapcache::map_frame(c.src.mfn);
                    let dst = mapcache::map_frame(c.dst.mfn);
                    // SAFETY: both frames are mapped for the copy; the ranges
                    // were checked to lie inside their pages (offset + len ≤
                    // 4096); the destination is writable memory (its type
                    // reference is held), so no page table is written.
                    unsafe {
                        core::ptr::copy(
                            src.as_mut_ptr().add(usize::from(c.src.offset)),
                            dst.as_mut_ptr().add(usize::from(c.dst.offset)),
                            usize::from(c.len),
                        );
                    }
                    drop((src, dst));
                    mm.put_page_and_type(c.dst.mfn);
                    mm.put_page(c.src.mfn);
                }
                got.is_ok()
            };
            copy_complete(&mut env, &c);
            if ok { GNTST_OKAY } else { GNTST_GENERAL_ERROR }
        }
        Err(e) => status(e),
    };
    write_guest(uop, &op)
}

fn dump_table(table: &mut DomainTable, caller: DomId, uop: u32) -> Result<(), Errno> {
    let mut op: GnttabDumpTable = read_guest(uop)?;
    op.status = match live_target(table, caller, op.dom) {
        Err(st) => st,
        Ok(d) => {
            let id = d.domid;
            let shared = SharedFrames(d.grants.frames.clone());
            let (nr, max) = d.grants.table.query_size();
            crate::printk!(
                "grant table for d{id}: {nr} of at most {max} frames, {} entries pinned\n",
                d.grants.table.nr_pinned()
            );
            let mut entries = d.grants.table.dump(&shared);
            for e in entries.by_ref().take(DUMP_LINES) {
                crate::printk!("  {e}\n");
            }
            let more = entries.count();
            if more > 0 {
                crate::printk!("  ... and {more} more entries\n");
            }
            GNTST_OKAY
        }
    };
    write_guest(uop, &op)
}

/// Operations served per entry before the hypercall continues itself.
const OPS_PER_CALL: u32 = 512;

/// Entries one `dump_table` operation prints (the rest are counted): with
/// one dump per invocation, no call prints more than `DUMP_LINES + 2` lines.
const DUMP_LINES: usize = 32;

pub fn do_grant_table_op(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, uops, count, ..] = args;
    let caller = ctx.dom().domid;
    let size = match cmd {
        GNTTABOP_MAP_GRANT_REF => size_of::<GnttabMapGrantRef>(),
        GNTTABOP_UNMAP_GRANT_REF => size_of::<GnttabUnmapGrantRef>(),
        GNTTABOP_SETUP_TABLE => size_of::<GnttabSetupTable>(),
        // It prints on Oxen's console: only the toolstack's domain may (a
        // debug Xen prints it only at guest debug level; Oxen keeps the
        // console for domains it trusts).
        GNTTABOP_DUMP_TABLE if !ctx.dom().privileged => return Err(Errno::EPERM).into(),
        GNTTABOP_DUMP_TABLE => size_of::<GnttabDumpTable>(),
        GNTTABOP_COPY => size_of::<GnttabCopy>(),
        GNTTABOP_QUERY_SIZE => size_of::<GnttabQuerySize>(),
        GNTTABOP_SET_VERSION => {
            let r = read_guest::<GnttabSetVersion>(uops)
                .and_then(|v| ctx.dom().grants.table.set_version(v.version))
                .map(|()| 0);
            return r.into();
        }
        GNTTABOP_GET_VERSION => {
            // struct gnttab_get_version: dom u16 @0, version u32 @4.
            let r = write_guest(uops.wrapping_add(4), &ctx.dom().grants.table.get_version());
            return r.map(|()| 0).into();
        }
        _ => return Err(Errno::ENOSYS).into(),
    } as u32;
    let per_call = if cmd == GNTTABOP_DUMP_TABLE {
        1
    } else {
        OPS_PER_CALL
    };
    let mut outcome = Ok(0).into();
    for i in 0..count {
        if i == per_call || ctx.preempt_due(i) {
            // A long array is served in parts: the guest re-enters with the
            // rest (Xen's continuation).
            outcome = Outcome::Continue([cmd, uops.wrapping_add(i * size), count - i, 0, 0]);
            break;
        }
        let uop = uops.wrapping_add(i * size);
        let table = ctx.table();
        let r = match cmd {
            GNTTABOP_MAP_GRANT_REF => map_one(table, caller, uop),
            GNTTABOP_UNMAP_GRANT_REF => unmap_one(table, caller, uop),
            GNTTABOP_SETUP_TABLE => setup_table(table, caller, uop),
            GNTTABOP_DUMP_TABLE => dump_table(table, caller, uop),
            GNTTABOP_COPY => copy_one(table, caller, uop),
            _ => query_size(table, caller, uop),
        };
        if let Err(e) = r {
            outcome = Err(e).into();
            break;
        }
    }
    // Maps, unmaps, copies and new table frames change frame counts.
    super::audit_if_asked(ctx.table());
    outcome
}

/// A dying domain's grant mappings go: each granter's pins are released (so
/// it can revoke its grants) and each mapping's own references are dropped;
/// the host parts' PTEs, with their references, go with the dying domain's
/// page tables.
pub fn release_domain_mappings(table: &mut DomainTable, domid: DomId) {
    let Some(mut mt) = table.get_mut(domid).and_then(|d| d.grants.maptrack.take()) else {
        return;
    };
    let mut env = Env {
        table,
        shared: SharedFrames::default(),
        dying: true,
    };
    let mut held = alloc::vec::Vec::new();
    hv_core::gnttab::release_all(&mut mt, &mut env, |r| held.push((r.entry.frame, r.refs)));
    for (frame, refs) in held {
        drop_refs(frame, refs);
    }
    if let Some(d) = env.table.get_mut(domid) {
        d.grants.maptrack = Some(mt);
    }
}
