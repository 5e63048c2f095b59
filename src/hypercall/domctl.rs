//! `domctl` (#36) and `sysctl` (#35), the toolstack's calls (XEN-PV-ABI.md
//! §15.7): privileged only (the table refuses others with `-EPERM`), and
//! the interface version must be 4.1's exactly (`-EACCES` otherwise).
//!
//! domctl: createdomain (a PV domain, paused, with its shared_info frame and
//! no memory yet), max_mem, max_vcpus (one vcpu), getdomaininfo,
//! pausedomain/unpausedomain, destroydomain (every frame, port and pin goes
//! back, in steps: a long teardown continues the domctl, Xen's preemptible
//! `domain_relinquish_resources`, the domain dying between the steps; it
//! stays "dying" after the call while other domains still hold references
//! to its frames, which stay counted in its tot_pages; once the last is free
//! its page account must be zero, or Oxen reports an accounting error), setdomainhandle, settimeoffset, hypercall_init,
//! setvcpucontext/getvcpucontext (vcpu 0; flat selectors; a context with
//! its own GDT or LDT is refused for now; EFLAGS, the FPU image and the L3
//! sanitised or refused as Xen does).
//! sysctl: getdomaininfolist, physinfo, sched_id, readconsole (the last
//! 16 KiB of console output, incremental reads and clear).
//! The rest (the permission calls, scheduler and memory-map ops, ...) is
//! `-ENOSYS`.

use hv_core::addr::Mfn;
use hv_core::hypercall::Outcome;
use pv_mm::PageType;
use xen_abi::context::VcpuGuestContext;
use xen_abi::domctl::*;
use xen_abi::domid::{DOMID_FIRST_RESERVED, DomId};
use xen_abi::errno::Errno;
use xen_abi::sysctl::*;
use zerocopy::IntoBytes;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_to_guest, read_guest, write_guest};
use crate::domain::{Domain, DomainTable, MAX_DOMAINS, sched};
use crate::mm::frame_table::{MM, alloc_extra_frame_below, max_pages, tot_pages};
use crate::mm::mapcache;

fn info(table: &DomainTable, dom: &Domain) -> XenDomctlGetdomaininfo {
    let running = table.current_id() == Some(dom.domid);
    let mut flags = 0;
    if dom.dying {
        flags |= XEN_DOMINF_DYING;
    }
    if let Some(reason) = dom.shutdown_reason {
        flags = dominf_with_shutdown_reason(flags | XEN_DOMINF_SHUTDOWN, reason);
    }
    if dom.pause_count > 0 {
        flags |= XEN_DOMINF_PAUSED;
    }
    if dom.vcpu.blocked || dom.vcpu.poll.is_some() {
        flags |= XEN_DOMINF_BLOCKED;
    }
    if running {
        flags |= XEN_DOMINF_RUNNING;
    }
    // The vcpu's running time: the time the CPU halted in the idle vcpu
    // while it waited is not in it.
    let cpu_time = dom.vcpu.runstate.cpu_time(crate::time::now_ns());
    XenDomctlGetdomaininfo {
        domain: dom.domid,
        flags,
        tot_pages: tot_pages(dom.domid),
        max_pages: max_pages(dom.domid),
        shared_info_frame: dom.shared_info.0,
        cpu_time,
        nr_online_vcpus: u32::from(dom.vcpu.online),
        max_vcpu_id: dom.max_vcpus.saturating_sub(1),
        ssidref: dom.ssidref,
        handle: dom.handle,
        ..Default::default()
    }
}

/// A new PV domain `domid`: its shared_info frame (owned by it, with the
/// permanent writable reference Xen's shared pages have, mapped in Oxen's
/// window, not counted in its tot_pages), no memory (an empty page account
/// with a limit of 0), one offline vcpu, paused once.
fn new_domain(domid: DomId, c: &XenDomctlCreatedomain) -> Result<Domain, Errno> {
    {
        let guard = MM.lock();
        let mm = guard.as_ref().expect("frame table initialised");
        let left = mm.close_account(domid);
        if left != 0 {
            // destroydomain closed it at zero: someone else counted here.
            crate::printk!(
                "ACCOUNTING ERROR: d{domid} created with {left} page(s) still counted; reset\n"
            );
            crate::mm::count_accounting_error();
        }
    }
    let shared_info = alloc_extra_frame_below(domid, None).ok_or(Errno::ENOMEM)?;
    let shared_va = match crate::domain::shared::share(shared_info, domid) {
        Ok(va) => va,
        Err(e) => {
            let _ = MM
                .lock()
                .as_mut()
                .expect("frame table initialised")
                .relinquish(shared_info, domid);
            return Err(e);
        }
    };
    Ok(Domain {
        pause_count: 1,
        handle: c.handle,
        ssidref: c.ssidref,
        ..Domain::new(
            domid,
            alloc::format!("Domain-{domid}"),
            shared_info,
            shared_va,
        )
    })
}

fn createdomain(table: &mut DomainTable, d: &mut XenDomctl) -> Result<i32, Errno> {
    let c: XenDomctlCreatedomain = d.payload();
    if c.flags & (XEN_DOMCTL_CDF_HVM_GUEST | XEN_DOMCTL_CDF_HAP) != 0 {
        // Oxen runs PV guests only.
        return Err(Errno::EINVAL);
    }
    let domid = if d.domain == 0 {
        table.free_domid().ok_or(Errno::ENOMEM)?
    } else if usize::from(d.domain) >= MAX_DOMAINS || d.domain >= DOMID_FIRST_RESERVED {
        return Err(Errno::EINVAL);
    } else if table.get(d.domain).is_some() {
        return Err(Errno::EEXIST);
    } else {
        d.domain
    };
    let dom = new_domain(domid, &c)?;
    table.insert(dom);
    d.domain = domid;
    log::info!("d{domid}: created (paused)");
    Ok(0)
}

/// Everything `dom` holds goes back, in steps under `budget` (Xen's
/// preemptible `domain_relinquish_resources`): a pending put of an old
/// table and its vcpu's base pointer (each taken down in steps), its
/// descriptor frames, the shared_info reference, then each frame it owns
/// (pins and allocation references; page tables devalidate on the way, in
/// steps, and free what they referenced). `-ERESTART` while some is left:
/// calling again goes on (the base pointer being taken down is the vcpu's
/// `old_guest_table` meanwhile, the scan's progress `dom.teardown`).
/// Returns the frames still held by others.
fn relinquish(dom: &mut Domain, budget: &mut pv_mm::Budget) -> Result<u64, Errno> {
    super::finish_old_guest_table(dom, budget)?;
    let mut guard = MM.lock();
    let mm = guard.as_mut().expect("frame table initialised");
    if dom.vcpu.cr3.0 != 0 {
        let old = core::mem::replace(&mut dom.vcpu.cr3, Mfn(0));
        if mm.put_old_table_preemptible(old, budget) == Err(Errno::ERESTART) {
            dom.vcpu.old_guest_table = Some(old);
            return Err(Errno::ERESTART);
        }
    }
    for &f in dom.vcpu.gdt_frames.iter().chain(dom.vcpu.ldt_frames.iter()) {
        mm.put_page_and_type(f);
    }
    dom.vcpu.gdt_frames.clear();
    dom.vcpu.ldt_frames.clear();
    dom.vcpu.gdt_ents = 0;
    dom.vcpu.ldt_ents = 0;
    if dom.shared_info.0 != 0 {
        crate::mm::hvmap::unmap_page(dom.shared_va);
        mm.put_page_and_type(dom.shared_info);
        dom.shared_info = Mfn(0);
    }
    // The grant entries stay readable while another domain still maps one
    // of its grants (so that the unmap can clear their in-use bits).
    if !dom.grants.table.has_active_pins() {
        for &f in &dom.grants.frames {
            mm.put_page_and_type(f);
        }
        dom.grants.frames.clear();
    }
    mm.relinquish_domain_preemptible(
        dom.domid,
        crate::mm::frame_table::nr_frames(),
        &mut dom.teardown,
        budget,
        |mfn| crate::mm::m2p::set(mfn, crate::mm::m2p::INVALID_M2P_ENTRY),
    )
}

/// The domain's last frame is free: its page account must have come back
/// to zero (every frame counted in was counted out where it was freed).
/// Anything else is an accounting bug in Oxen, reported loudly (and as an
/// audit failure with `mm_audit`), never a panic: the account is reset for
/// the next domain of this id.
fn close_account(domid: DomId) {
    let left = MM
        .lock()
        .as_ref()
        .expect("frame table initialised")
        .close_account(domid);
    if left != 0 {
        crate::printk!(
            "ACCOUNTING ERROR: d{domid} destroyed with all its frames free but tot_pages {left}\n"
        );
        crate::mm::count_accounting_error();
    }
}

fn destroydomain(table: &mut DomainTable, caller: DomId, domid: DomId) -> Result<i32, Errno> {
    if domid == caller || domid == 0 {
        return Err(Errno::EINVAL);
    }
    let dom = table.get_mut(domid).ok_or(Errno::ESRCH)?;
    if !dom.dying {
        dom.dying = true;
        // Its last words, even without a newline.
        crate::console::guest_flush(domid, &mut dom.console_line, &mut dom.log_limit);
        dom.vcpu.saved = None;
        dom.vcpu.online = false;
        sched::fpu_forget(domid);
        // Its ports close; each inter-domain peer's port goes back to
        // unbound (for this domain), as in Xen.
        let mut words = crate::domain::events::SharedWords::new(dom.shared_va);
        let mut peers = alloc::vec::Vec::new();
        dom.ports.reset(&mut words, |r| match r {
            hv_core::evtchn::Released::Peer { dom, port, closed } => {
                peers.push((dom, port, closed));
            }
            // Its interrupt lines go back to masked unless shared.
            hv_core::evtchn::Released::Pirq { pirq } => crate::domain::pirq::unbind(domid, pirq),
            hv_core::evtchn::Released::Nothing => {}
        });
        for (peer, port, closed) in peers {
            if let Some(p) = table.get_mut(peer) {
                let _ = p.ports.peer_closed(port, domid, closed);
            }
        }
        super::gnttab::release_domain_mappings(table, domid);
    }
    let dom = table.get_mut(domid).ok_or(Errno::ESRCH)?;
    // `-ERESTART`: the domctl continues (dom0 sees one call), the domain
    // dying meanwhile.
    let mut budget = pv_mm::Budget::new(super::mm::VALIDATE_BUDGET);
    let left = relinquish(dom, &mut budget)?;
    if left != 0 {
        // Another domain still maps some of its frames: it stays a zombie
        // until they go, as in Xen. Calling again retries.
        log::info!("d{domid}: dying, {left} frame(s) still referenced by other domains");
        return Err(Errno::EAGAIN);
    }
    close_account(domid);
    table.remove(domid);
    sched::note_dom_exc();
    crate::printk!("Domain {domid} destroyed: all its memory is free\n");
    Ok(0)
}

/// `setvcpucontext`: the registers, base pointer (which takes its type
/// reference, as `NEW_BASEPTR`), trap table, callbacks, kernel stack, VM
/// assists and FPU state a vcpu starts from (§15.8). Sanitised as Xen does:
/// EFLAGS keeps only what `hv_core::sanitise::context_eflags` allows (no VM,
/// IOPL or NT) and the FPU image's MXCSR is masked with the CPU's mask. The
/// L3 (`ctrlreg[3]` in the extended-cr3 form) may lie anywhere the engine
/// accepts, as for `NEW_BASEPTR`: above 4 GiB with `pae_extended_cr3` in the
/// context's `vm_assist`. CR3 will hold its low copy (`mm::low_l3`), made
/// when the vcpu is loaded.
fn set_context(dom: &mut Domain, ctx: &VcpuGuestContext) -> Result<(), Errno> {
    use hv_core::bounce::{KernelStack, Resume};
    use hv_core::descriptor::fixup_guest_selector;
    use hv_core::vidt::VirtualIdt;
    use xen_abi::context::{VGCF_FAILSAFE_DISABLES_EVENTS, VGCF_I387_VALID, VGCF_ONLINE};
    use xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
    if ctx.gdt_ents != 0 || ctx.ldt_ents != 0 {
        return Err(Errno::EINVAL);
    }
    let r = &ctx.user_regs;
    let resume = Resume {
        cs: fixup_guest_selector(r.cs),
        eip: r.eip,
        eflags: hv_core::sanitise::context_eflags(r.eflags),
        ss: fixup_guest_selector(r.ss),
        esp: r.esp,
    };
    if !crate::domain::fault::resume_ok(&resume) {
        return Err(Errno::EINVAL);
    }
    let l3 = Mfn(u64::from(xen_abi::mm::xen_cr3_to_pfn(ctx.ctrlreg[3])));
    let extended = ctx.vm_assist & (1 << VMASST_TYPE_PAE_EXTENDED_CR3) != 0;
    {
        let mut guard = MM.lock();
        let mm = guard.as_mut().expect("frame table initialised");
        mm.new_baseptr(l3, None, &dom.caller(), extended)?;
        if dom.vcpu.cr3.0 != 0 {
            mm.put_page_and_type(dom.vcpu.cr3);
        }
    }
    let v = &mut dom.vcpu;
    v.cr3 = l3;
    *v.idt = VirtualIdt::from_trap_ctxt(&ctx.trap_ctxt);
    v.callbacks.set_callbacks(
        ctx.event_callback_cs,
        ctx.event_callback_eip,
        ctx.failsafe_callback_cs,
        ctx.failsafe_callback_eip,
    );
    v.callbacks.failsafe_masks_events = ctx.flags & VGCF_FAILSAFE_DISABLES_EVENTS != 0;
    v.kernel_stack = KernelStack {
        ss: fixup_guest_selector(ctx.kernel_ss as u16),
        esp: ctx.kernel_sp,
    };
    v.fpu_initialised = ctx.flags & VGCF_I387_VALID != 0;
    if v.fpu_initialised {
        v.fpu.0.copy_from_slice(&ctx.fpu_ctxt);
        crate::arch::x86::fpu::sanitise(&mut v.fpu);
    }
    v.online = ctx.flags & VGCF_ONLINE != 0;
    v.blocked = false;
    v.poll = None;
    let mut frame = crate::arch::x86::guest::initial_frame(r.eip, r.esp, r.esi);
    frame.resume(&resume);
    (frame.eax, frame.ebx, frame.ecx, frame.edx) = (r.eax, r.ebx, r.ecx, r.edx);
    (frame.edi, frame.ebp) = (r.edi, r.ebp);
    (frame.ds, frame.es, frame.fs, frame.gs) = (
        u32::from(r.ds),
        u32::from(r.es),
        u32::from(r.fs),
        u32::from(r.gs),
    );
    v.saved = Some(frame);
    dom.vm_assist = ctx.vm_assist;
    Ok(())
}

/// `getvcpucontext`: what `set_context` takes, read back from a vcpu that
/// is not on the CPU.
fn get_context(dom: &Domain) -> Result<alloc::boxed::Box<VcpuGuestContext>, Errno> {
    use xen_abi::context::{VGCF_I387_VALID, VGCF_IN_KERNEL, VGCF_ONLINE};
    let f = dom.vcpu.saved.as_ref().ok_or(Errno::ENODATA)?;
    let mut ctx: alloc::boxed::Box<VcpuGuestContext> =
        alloc::boxed::Box::new(zerocopy::FromZeros::new_zeroed());
    let v = &dom.vcpu;
    ctx.flags = if v.online { VGCF_ONLINE } else { 0 }
        | if f.cs & 3 == 1 { VGCF_IN_KERNEL } else { 0 }
        | if v.fpu_initialised {
            VGCF_I387_VALID
        } else {
            0
        };
    if v.fpu_initialised {
        ctx.fpu_ctxt.copy_from_slice(&v.fpu.0);
    }
    let r = &mut ctx.user_regs;
    (r.eax, r.ebx, r.ecx, r.edx) = (f.eax, f.ebx, f.ecx, f.edx);
    (r.esi, r.edi, r.ebp) = (f.esi, f.edi, f.ebp);
    (r.eip, r.cs, r.eflags, r.esp, r.ss) = (f.eip, f.cs as u16, f.eflags, f.esp, f.ss as u16);
    (r.ds, r.es, r.fs, r.gs) = (f.ds as u16, f.es as u16, f.fs as u16, f.gs as u16);
    ctx.trap_ctxt = v.idt.to_trap_ctxt();
    ctx.kernel_ss = u32::from(v.kernel_stack.ss);
    ctx.kernel_sp = v.kernel_stack.esp;
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(v.cr3.0 as u32);
    ctx.event_callback_cs = u32::from(v.callbacks.event.cs);
    ctx.event_callback_eip = v.callbacks.event.eip;
    ctx.failsafe_callback_cs = u32::from(v.callbacks.failsafe.cs);
    ctx.failsafe_callback_eip = v.callbacks.failsafe.eip;
    ctx.vm_assist = dom.vm_assist;
    Ok(ctx)
}

fn target(table: &mut DomainTable, domid: DomId) -> Result<&mut Domain, Errno> {
    table.get_mut(domid).ok_or(Errno::ESRCH)
}

fn domctl(ctx: &mut Ctx, arg: u32) -> Result<i32, Errno> {
    let mut d: XenDomctl = read_guest(arg)?;
    if d.interface_version != XEN_DOMCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    let caller = ctx.dom().domid;
    let table = ctx.table();
    match d.cmd {
        XEN_DOMCTL_CREATEDOMAIN => {
            createdomain(table, &mut d)?;
            write_guest(arg, &d)?;
            Ok(0)
        }
        XEN_DOMCTL_DESTROYDOMAIN => destroydomain(table, caller, d.domain),
        XEN_DOMCTL_PAUSEDOMAIN => {
            if d.domain == caller {
                return Err(Errno::EINVAL);
            }
            let dom = target(table, d.domain)?;
            dom.pause_count = dom.pause_count.checked_add(1).ok_or(Errno::EINVAL)?;
            Ok(0)
        }
        XEN_DOMCTL_UNPAUSEDOMAIN => {
            let dom = target(table, d.domain)?;
            if dom.pause_count == 0 || dom.dying {
                return Err(Errno::EINVAL);
            }
            dom.pause_count -= 1;
            Ok(0)
        }
        XEN_DOMCTL_GETDOMAININFO => {
            let first = table
                .iter()
                .find(|x| x.domid >= d.domain)
                .map(|x| x.domid)
                .ok_or(Errno::ESRCH)?;
            let rec = info(table, table.get(first).expect("found above"));
            d.domain = first;
            d.set_payload(&rec);
            write_guest(arg, &d)?;
            Ok(0)
        }
        XEN_DOMCTL_MAX_MEM => {
            let m: XenDomctlMaxMem = d.payload();
            let dom = target(table, d.domain)?;
            // Xen does not take pages away: the limit may only stay above
            // what the domain holds.
            let pages = u32::try_from(m.max_memkb / 4).unwrap_or(u32::MAX);
            MM.lock()
                .as_ref()
                .expect("frame table initialised")
                .set_max_pages(dom.domid, pages)?;
            Ok(0)
        }
        XEN_DOMCTL_MAX_VCPUS => {
            let m: XenDomctlMaxVcpus = d.payload();
            let dom = target(table, d.domain)?;
            // One vcpu per domain until SMP guests are supported.
            if m.max != 1 {
                return Err(Errno::EINVAL);
            }
            dom.max_vcpus = m.max;
            Ok(0)
        }
        XEN_DOMCTL_SETDOMAINHANDLE => {
            let h: XenDomctlSetdomainhandle = d.payload();
            target(table, d.domain)?.handle = h.handle;
            Ok(0)
        }
        XEN_DOMCTL_IRQ_PERMISSION => {
            // The right to bind a pirq (`-EINVAL` beyond the 16 lines); a
            // binding already made stays, as in Xen.
            let p: XenDomctlIrqPermission = d.payload();
            target(table, d.domain)?
                .pirqs
                .set_permitted(p.pirq, p.allow_access != 0)?;
            Ok(0)
        }
        XEN_DOMCTL_SETTIMEOFFSET => {
            let t: XenDomctlSettimeoffset = d.payload();
            target(table, d.domain)?.time_offset = t.time_offset_seconds;
            Ok(0)
        }
        XEN_DOMCTL_HYPERCALL_INIT => {
            let h: XenDomctlHypercallInit = d.payload();
            let dom = target(table, d.domain)?;
            let mfn = Mfn(h.gmfn);
            let mut guard = MM.lock();
            let mm = guard.as_mut().expect("frame table initialised");
            // As Xen: the page must be the domain's and may be writable
            // memory (mapped or not), never a page table or descriptor page.
            mm.get_page_and_type(mfn, dom.domid, PageType::Writable)
                .map_err(|_| Errno::EINVAL)?;
            let page = xen_abi::hypercall::hypercall_page();
            let m = mapcache::map_frame(mfn);
            // SAFETY: the frame is the target's, mapped for this copy, and
            // holds a writable type reference (it is no page table).
            unsafe {
                core::ptr::copy_nonoverlapping(page.as_ptr(), m.as_mut_ptr(), page.len());
            }
            drop(m);
            mm.put_page_and_type(mfn);
            Ok(0)
        }
        XEN_DOMCTL_SETVCPUCONTEXT | XEN_DOMCTL_GETVCPUCONTEXT => {
            let v: XenDomctlVcpucontext = d.payload();
            if d.domain == caller {
                return Err(Errno::EINVAL);
            }
            let dom = target(table, d.domain)?;
            if v.vcpu != 0 || dom.dying {
                return Err(Errno::EINVAL);
            }
            if d.cmd == XEN_DOMCTL_GETVCPUCONTEXT {
                let ctx = get_context(dom)?;
                return copy_to_guest(v.ctxt as u32, ctx.as_bytes()).map(|()| 0);
            }
            if v.ctxt == 0 {
                // No context: the vcpu goes offline (Xen's vcpu reset).
                dom.vcpu.online = false;
                dom.vcpu.saved = None;
                return Ok(0);
            }
            let mut ctx: alloc::boxed::Box<VcpuGuestContext> =
                alloc::boxed::Box::new(zerocopy::FromZeros::new_zeroed());
            crate::arch::x86::uaccess::copy_from_guest(
                zerocopy::IntoBytes::as_mut_bytes(&mut *ctx),
                v.ctxt as u32,
            )?;
            set_context(dom, &ctx)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn do_domctl(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let r = domctl(ctx, args[0]);
    // Each step of a teardown (and any domctl that took references) is
    // recounted with `mm_audit`.
    super::audit_if_asked(ctx.table());
    match r {
        // A long destroydomain goes on in a continuation with the same
        // argument (Xen's hypercall_create_continuation(domctl, "h")).
        Err(Errno::ERESTART) => Outcome::Continue(args),
        r => r.into(),
    }
}

fn sysctl(ctx: &mut Ctx, arg: u32) -> Result<i32, Errno> {
    let mut s: XenSysctl = read_guest(arg)?;
    if s.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
        return Err(Errno::EACCES);
    }
    let table = ctx.table();
    match s.cmd {
        XEN_SYSCTL_GETDOMAININFOLIST => {
            let mut l: XenSysctlGetdomaininfolist = s.payload();
            let size = size_of::<XenDomctlGetdomaininfo>() as u32;
            let mut n = 0u32;
            for dom in table.iter().filter(|x| x.domid >= l.first_domain) {
                if n >= l.max_domains {
                    break;
                }
                let rec = info(table, dom);
                copy_to_guest((l.buffer as u32).wrapping_add(n * size), rec.as_bytes())?;
                n += 1;
            }
            l.num_domains = n;
            s.set_payload(&l);
            write_guest(arg, &s)?;
            Ok(0)
        }
        XEN_SYSCTL_PHYSINFO => {
            let (free, total) = crate::mm::frames::counts();
            let p = XenSysctlPhysinfo {
                threads_per_core: 1,
                cores_per_socket: 1,
                nr_cpus: 1,
                max_cpu_id: 0,
                nr_nodes: 1,
                max_node_id: 0,
                cpu_khz: (crate::time::tsc_hz() / 1000) as u32,
                total_pages: total,
                free_pages: free,
                ..Default::default()
            };
            s.set_payload(&p);
            write_guest(arg, &s)?;
            Ok(0)
        }
        XEN_SYSCTL_READCONSOLE => {
            let mut r: XenSysctlReadconsole = s.payload();
            let mut from = (r.incremental != 0).then_some(r.index);
            let mut done = 0u32;
            let mut chunk = [0u8; 256];
            while done < r.count {
                let want = ((r.count - done) as usize).min(chunk.len());
                let (n, next) = crate::console::read_ring(from, &mut chunk[..want]);
                if n == 0 {
                    from = Some(next);
                    break;
                }
                crate::arch::x86::uaccess::copy_to_guest(
                    (r.buffer as u32).wrapping_add(done),
                    &chunk[..n],
                )?;
                done += n as u32;
                from = Some(next);
            }
            if r.clear != 0 {
                crate::console::clear_ring();
            }
            r.count = done;
            r.index = from.unwrap_or(0);
            s.set_payload(&r);
            write_guest(arg, &s)?;
            Ok(0)
        }
        XEN_SYSCTL_SCHED_ID => {
            s.set_payload(&XenSysctlSchedId {
                // Oxen's round robin stands in for Xen 4.1's credit scheduler.
                sched_id: XEN_SCHEDULER_CREDIT,
            });
            write_guest(arg, &s)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn do_sysctl(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    sysctl(ctx, args[0]).into()
}
