//! Domains: the toolstack's `domctl` and `sysctl` (a domain created, given
//! memory, listed, paused and unpaused, shut down remotely, destroyed with
//! all its memory back and VIRQ_DOM_EXC raised; the console ring; the errors
//! on the way), and a domU built by hand that really runs: pinned foreign
//! page tables, a vcpu context set and read back, an inter-domain event
//! channel, the FPU state kept apart across switches, the grant checks
//! while it is stopped, and its memory back once it is destroyed.

use core::sync::atomic::Ordering as AtOrd;

use pvrt::mm::update_va_mapping_otherdomain;
use pvrt::println;
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::mm::{MMUEXT_PIN_L3_TABLE, MmuextOp, UVMF_INVLPG};

use crate::events::{PENDING, SEEN, evtchn, shared_u8, shared_u32_at};
use crate::grants::grants;
use crate::helpers::{A, Checks, D, Mem, OXEN_IMAGE_MFN, P, PAGE, RW, US, hcall, pte};
use crate::isolation;

pub(crate) fn domctl(d: &mut xen_abi::domctl::XenDomctl) -> Result<u32, Errno> {
    hcall(xen_abi::hypercall::DOMCTL, [d as *mut _ as u32, 0, 0, 0, 0])
}

fn sysctl(s: &mut xen_abi::sysctl::XenSysctl) -> Result<u32, Errno> {
    hcall(xen_abi::hypercall::SYSCTL, [s as *mut _ as u32, 0, 0, 0, 0])
}

/// Reads the console ring incrementally from `index` until nothing is left
/// (into `rc`'s buffer, overwritten); returns the index after the last byte.
fn drain_console_ring(rc: &mut xen_abi::sysctl::XenSysctlReadconsole, mut index: u32) -> u32 {
    use xen_abi::sysctl::{XEN_SYSCTL_READCONSOLE, XenSysctl, XenSysctlReadconsole};
    loop {
        rc.index = index;
        let mut s = XenSysctl::new(XEN_SYSCTL_READCONSOLE, rc);
        let _ = sysctl(&mut s);
        let p = s.payload::<XenSysctlReadconsole>();
        index = p.index;
        if p.count == 0 {
            return index;
        }
    }
}

/// The console ring's text from `index` on, as far as `buf` holds, and the
/// index after it (`index` `None`: the current end, with no text).
fn console_since(index: Option<u32>, buf: &mut [u8]) -> (&[u8], u32) {
    use xen_abi::sysctl::{XEN_SYSCTL_READCONSOLE, XenSysctl, XenSysctlReadconsole};
    let mut rc = XenSysctlReadconsole {
        incremental: 1,
        index: index.unwrap_or(0),
        ..Default::default()
    };
    let Some(mut at) = index else {
        let mut scratch = [0u8; 256];
        rc.buffer = scratch.as_mut_ptr() as u64;
        rc.count = scratch.len() as u32;
        let mut s = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
        let _ = sysctl(&mut s);
        let end = drain_console_ring(&mut rc, s.payload::<XenSysctlReadconsole>().index);
        return (&buf[..0], end);
    };
    let mut n = 0;
    while n < buf.len() {
        rc.index = at;
        rc.buffer = buf[n..].as_mut_ptr() as u64;
        rc.count = (buf.len() - n) as u32;
        let mut s = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
        let r = sysctl(&mut s);
        let p = s.payload::<XenSysctlReadconsole>();
        if r.is_err() || p.count == 0 {
            break;
        }
        n += p.count as usize;
        at = p.index;
    }
    (&buf[..n], at)
}

/// What domain `id`'s console flood left in `text`: the lines printed for
/// it and the sum of Oxen's `dN: K messages suppressed` notes.
fn flood_lines(text: &[u8], id: DomId) -> (u64, u64) {
    let mut prefix = [0u8; 12];
    let mut note = [0u8; 12];
    let p = fmt_into(&mut prefix, format_args!("(d{id}) "));
    let nl = fmt_into(&mut note, format_args!("d{id}: "));
    let (mut printed, mut suppressed) = (0u64, 0u64);
    for line in text.split(|&b| b == b'\n') {
        if line.starts_with(&prefix[..p]) {
            printed += 1;
        } else if let Some(at) = line.windows(nl).position(|w| w == &note[..nl])
            && line.ends_with(b" messages suppressed")
        {
            let digits = &line[at + nl..line.len() - b" messages suppressed".len()];
            let k = digits.iter().try_fold(0u64, |k, &d| {
                d.is_ascii_digit().then(|| k * 10 + u64::from(d - b'0'))
            });
            suppressed += k.unwrap_or(u64::MAX / 2);
        }
    }
    (printed, suppressed)
}

/// Formats into `buf`; returns the length (cut at the buffer's end).
fn fmt_into(buf: &mut [u8], args: core::fmt::Arguments<'_>) -> usize {
    struct W<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.0.len() - self.1);
            self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
            self.1 += n;
            Ok(())
        }
    }
    let mut w = W(buf, 0);
    let _ = core::fmt::write(&mut w, args);
    w.1
}

/// `memory_op(kind)` (increase_reservation or populate_physmap) of
/// `frames.len()` single pages for domain `id`; `frames` goes in holding
/// pfns 0.. and comes back holding the machine frames.
fn reserve_for(id: DomId, kind: u32, frames: &mut [u32]) -> Result<u32, Errno> {
    reserve_flags(id, kind, frames, frames.len() as u32, 0)
}

/// [`reserve_for`] with `mem_flags` and a claimed extent count `nr_extents`
/// (which may exceed `frames`: Oxen must not read that far).
fn reserve_flags(
    id: DomId,
    kind: u32,
    frames: &mut [u32],
    nr_extents: u32,
    mem_flags: u32,
) -> Result<u32, Errno> {
    for (i, f) in frames.iter_mut().enumerate() {
        *f = i as u32;
    }
    let res = xen_abi::memory::XenMemoryReservation {
        extent_start: frames.as_mut_ptr() as u32,
        nr_extents,
        extent_order: 0,
        mem_flags,
        domid: id,
        _pad: 0,
    };
    hcall(
        xen_abi::hypercall::MEMORY_OP,
        [kind, &res as *const _ as u32, 0, 0, 0],
    )
}

pub(crate) fn free_pages() -> u64 {
    use xen_abi::sysctl::*;
    let mut s = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    let _ = sysctl(&mut s);
    s.payload::<XenSysctlPhysinfo>().free_pages
}

/// The toolstack's calls (domctl, sysctl): a domain created, given memory,
/// listed, paused and unpaused, destroyed with all its memory back and
/// VIRQ_DOM_EXC raised; and the errors on the way.
pub(crate) fn domains(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::domctl::*;
    use xen_abi::evtchn::{EVTCHNOP_BIND_VIRQ, EvtchnBindVirq, VIRQ_DOM_EXC};
    use xen_abi::memory::{XENMEM_INCREASE_RESERVATION, XENMEM_POPULATE_PHYSMAP};
    use xen_abi::sysctl::*;
    let mut exc = EvtchnBindVirq {
        virq: VIRQ_DOM_EXC,
        vcpu: 0,
        port: 0,
    };
    c.ok("bind_virq_dom_exc", evtchn(EVTCHNOP_BIND_VIRQ, &mut exc));
    let seen = |port: u32| SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst));
    let exc_before = seen(exc.port);
    let free_before = free_pages();
    let mut phys = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    let r = sysctl(&mut phys);
    let p: XenSysctlPhysinfo = phys.payload();
    c.check(
        "sysctl_physinfo",
        r.is_ok()
            && p.nr_cpus == 1
            && p.total_pages > p.free_pages
            && p.free_pages > 0
            && p.cpu_khz > 0,
        format_args!("{r:?} {p:?}"),
    );
    let mut sid = XenSysctl::new(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default());
    let r = sysctl(&mut sid);
    c.check(
        "sysctl_sched_id",
        r.is_ok() && sid.payload::<XenSysctlSchedId>().sched_id == XEN_SCHEDULER_CREDIT,
        format_args!("{r:?}"),
    );
    let mut old = XenSysctl::new(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default());
    old.interface_version = 7;
    c.err("sysctl_wrong_version", sysctl(&mut old), Errno::EACCES);

    let create = XenDomctlCreatedomain {
        handle: [0xAB; 16],
        ..Default::default()
    };
    let mut d = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &create);
    let r = domctl(&mut d);
    let id = d.domain;
    c.check(
        "domctl_createdomain",
        r.is_ok() && id >= 1,
        format_args!("{r:?} id={id}"),
    );
    let mut again = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, id, &create);
    c.err(
        "domctl_createdomain_taken",
        domctl(&mut again),
        Errno::EEXIST,
    );
    let hvm = XenDomctlCreatedomain {
        flags: XEN_DOMCTL_CDF_HVM_GUEST,
        ..Default::default()
    };
    let mut h = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &hvm);
    c.err("domctl_createdomain_hvm", domctl(&mut h), Errno::EINVAL);
    let mut v = XenDomctl::new(XEN_DOMCTL_PAUSEDOMAIN, id, &0u32);
    v.interface_version = 6;
    c.err("domctl_wrong_version", domctl(&mut v), Errno::EACCES);

    let info = |id: DomId| {
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            id,
            &XenDomctlGetdomaininfo::default(),
        );
        domctl(&mut d).map(|_| (d.domain, d.payload::<XenDomctlGetdomaininfo>()))
    };
    let i = info(id);
    c.check(
        "domctl_getdomaininfo_new",
        matches!(i, Ok((got, r)) if got == id && r.flags & XEN_DOMINF_PAUSED != 0
            && r.tot_pages == 0 && r.shared_info_frame != 0 && r.handle == [0xAB; 16]),
        format_args!("{i:?}"),
    );
    let mut mv = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, id, &XenDomctlMaxVcpus { max: 2 });
    c.err("domctl_max_vcpus_two", domctl(&mut mv), Errno::EINVAL);
    let mut mv = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, id, &XenDomctlMaxVcpus { max: 1 });
    c.ok("domctl_max_vcpus", domctl(&mut mv));
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    c.ok("domctl_max_mem", domctl(&mut mm));

    // address_bits 1..=12 asks for frames below one page: as Xen, nothing
    // is done and 0 comes back (a shift by bits - 12 wrapped before).
    let mut one = [0u32; 1];
    let narrow: [Result<u32, Errno>; 12] = core::array::from_fn(|b| {
        reserve_flags(id, XENMEM_POPULATE_PHYSMAP, &mut one, 1, b as u32 + 1)
    });
    c.check(
        "memory_op_address_bits_below_a_page",
        narrow.iter().all(|r| *r == Ok(0)),
        format_args!("{narrow:?}"),
    );
    // More extents than a continuation can encode: Xen returns at once.
    let r = reserve_flags(
        id,
        XENMEM_POPULATE_PHYSMAP,
        &mut one,
        (u32::MAX >> 6) + 1,
        0,
    );
    c.check(
        "memory_op_extents_beyond_continuation",
        r == Ok(0),
        format_args!("{r:?}"),
    );

    let mut pfns = [0u32; 20];
    let r = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut pfns);
    c.check(
        "populate_other_domain_to_max_mem",
        r == Ok(16) && pfns[..16].iter().all(|&m| m != 0),
        format_args!("{r:?}"),
    );
    let i = info(id);
    c.check(
        "domctl_getdomaininfo_pages",
        matches!(i, Ok((_, r)) if r.tot_pages == 16 && r.max_pages == 16),
        format_args!("{i:?}"),
    );
    let mut smaller = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 32 });
    c.err(
        "domctl_max_mem_below_pages",
        domctl(&mut smaller),
        Errno::EINVAL,
    );
    let mut hi = XenDomctl::new(
        XEN_DOMCTL_HYPERCALL_INIT,
        id,
        &XenDomctlHypercallInit {
            gmfn: u64::from(pfns[0]),
        },
    );
    c.ok("domctl_hypercall_init", domctl(&mut hi));
    let mut hi = XenDomctl::new(
        XEN_DOMCTL_HYPERCALL_INIT,
        id,
        &XenDomctlHypercallInit {
            gmfn: u64::from(OXEN_IMAGE_MFN),
        },
    );
    c.err(
        "domctl_hypercall_init_foreign",
        domctl(&mut hi),
        Errno::EINVAL,
    );
    let shared_info = info(id).map_or(0, |(_, r)| r.shared_info_frame as u32);
    isolation::reservation_accounting(c, mem, id, &pfns[..16], shared_info);

    let mut list = [XenDomctlGetdomaininfo::default(); 8];
    let l = XenSysctlGetdomaininfolist {
        first_domain: 0,
        max_domains: 8,
        buffer: list.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut s = XenSysctl::new(XEN_SYSCTL_GETDOMAININFOLIST, &l);
    let r = sysctl(&mut s);
    let n = s.payload::<XenSysctlGetdomaininfolist>().num_domains;
    c.check(
        "sysctl_getdomaininfolist",
        r.is_ok()
            && n == 2
            && list[0].domain == 0
            && list[0].flags & XEN_DOMINF_RUNNING != 0
            && list[1].domain == id
            && list[1].tot_pages == 16,
        format_args!("{r:?} n={n} {:?} {:?}", list[0].domain, list[1].domain),
    );

    let op = |cmd: u32, dom: DomId| {
        let mut d = XenDomctl::new(cmd, dom, &0u32);
        domctl(&mut d)
    };
    c.ok("domctl_pause", op(XEN_DOMCTL_PAUSEDOMAIN, id));
    c.ok("domctl_unpause", op(XEN_DOMCTL_UNPAUSEDOMAIN, id));
    c.ok(
        "domctl_unpause_creation_pause",
        op(XEN_DOMCTL_UNPAUSEDOMAIN, id),
    );
    c.err(
        "domctl_unpause_unpaused",
        op(XEN_DOMCTL_UNPAUSEDOMAIN, id),
        Errno::EINVAL,
    );
    c.err(
        "domctl_pause_self",
        op(XEN_DOMCTL_PAUSEDOMAIN, 0),
        Errno::EINVAL,
    );
    c.err(
        "domctl_pause_missing",
        op(XEN_DOMCTL_PAUSEDOMAIN, 60),
        Errno::ESRCH,
    );
    let i = info(id);
    c.check(
        "domctl_unpaused_without_context_not_running",
        matches!(i, Ok((_, r)) if r.flags & (XEN_DOMINF_PAUSED | XEN_DOMINF_RUNNING) == 0
            && r.nr_online_vcpus == 0),
        format_args!("{i:?}"),
    );
    let rs = xen_abi::sched::SchedRemoteShutdown {
        domain_id: id,
        _pad: 0,
        reason: xen_abi::sched::SHUTDOWN_CRASH,
    };
    c.ok(
        "sched_remote_shutdown",
        hcall(
            xen_abi::hypercall::SCHED_OP,
            [
                xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                &rs as *const _ as u32,
                0,
                0,
                0,
            ],
        ),
    );
    let i = info(id);
    c.check(
        "remote_shutdown_reason_in_domaininfo",
        matches!(i, Ok((_, r)) if r.flags & XEN_DOMINF_SHUTDOWN != 0
            && dominf_shutdown_reason(r.flags) == xen_abi::sched::SHUTDOWN_CRASH),
        format_args!("{i:?}"),
    );
    let nobody = xen_abi::sched::SchedRemoteShutdown {
        domain_id: 60,
        _pad: 0,
        reason: 0,
    };
    c.err(
        "sched_remote_shutdown_missing",
        hcall(
            xen_abi::hypercall::SCHED_OP,
            [
                xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                &nobody as *const _ as u32,
                0,
                0,
                0,
            ],
        ),
        Errno::ESRCH,
    );
    // The console ring (`xm dmesg`): an incremental read returns what was
    // printed since the last one.
    let mut buf = [0u8; 512];
    let mut rc = XenSysctlReadconsole {
        incremental: 1,
        index: 0,
        buffer: buf.as_mut_ptr() as u64,
        count: buf.len() as u32,
        ..Default::default()
    };
    let mut s1 = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
    let r1 = sysctl(&mut s1);
    let first = s1.payload::<XenSysctlReadconsole>();
    // Drain to the end, then print a marker and read it back.
    let next = drain_console_ring(&mut rc, first.index);
    println!("test-dom0: readconsole marker");
    rc.index = next;
    let mut s2 = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
    let r2 = sysctl(&mut s2);
    let got = s2.payload::<XenSysctlReadconsole>();
    let text = &buf[..got.count as usize];
    c.check(
        "sysctl_readconsole_incremental",
        r1.is_ok() && first.count > 0 && r2.is_ok() && text == b"test-dom0: readconsole marker\n",
        format_args!("{r1:?} {r2:?} {:?}", core::str::from_utf8(text)),
    );
    // A write longer than Oxen prints per call (1 KiB) is continued and
    // still comes out whole, in order.
    let mut long = [0u8; 20 * 64];
    for (i, line) in long.chunks_mut(64).enumerate() {
        let head = b"test-dom0: one console_io write, line ";
        let (h, end) = (head.len(), line.len() - 1);
        line[..h].copy_from_slice(head);
        line[h..h + 2].copy_from_slice(&[b'0' + (i / 10) as u8, b'0' + (i % 10) as u8]);
        line[h + 2..end].fill(b'.');
        line[end] = b'\n';
    }
    // Drain what was printed since (this check's own `ok` line).
    let next = drain_console_ring(&mut rc, got.index);
    let mut back = [0u8; 20 * 64];
    rc.index = next;
    let written = hcall(
        xen_abi::hypercall::CONSOLE_IO,
        [
            xen_abi::console::CONSOLEIO_WRITE,
            long.len() as u32,
            long.as_ptr() as u32,
            0,
            0,
        ],
    );
    let mut n = 0;
    while n < back.len() {
        rc.buffer = back[n..].as_mut_ptr() as u64;
        rc.count = (back.len() - n) as u32;
        let mut s = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
        let r = sysctl(&mut s);
        let p = s.payload::<XenSysctlReadconsole>();
        if r.is_err() || p.count == 0 {
            break;
        }
        n += p.count as usize;
        rc.index = p.index;
    }
    c.check(
        "console_io_long_write_continued",
        written == Ok(0) && back == long,
        format_args!("{written:?}, {n} bytes read back"),
    );
    c.err(
        "domctl_destroy_dom0",
        op(XEN_DOMCTL_DESTROYDOMAIN, 0),
        Errno::EINVAL,
    );
    c.err("domctl_unknown", op(99, id), Errno::ENOSYS);
    c.ok("domctl_destroydomain", op(XEN_DOMCTL_DESTROYDOMAIN, id));
    c.err(
        "domctl_destroyed_is_gone",
        op(XEN_DOMCTL_PAUSEDOMAIN, id),
        Errno::ESRCH,
    );
    // Eight domains at once, each with 256 pages (1 MiB), then all gone:
    // the free figure is back where it started.
    let mut ids = [0 as DomId; 8];
    let mut made = 0;
    for slot in ids.iter_mut() {
        let mut d = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &create);
        if domctl(&mut d).is_err() {
            break;
        }
        *slot = d.domain;
        let mut mm = XenDomctl::new(
            XEN_DOMCTL_MAX_MEM,
            d.domain,
            &XenDomctlMaxMem { max_memkb: 1024 },
        );
        let _ = domctl(&mut mm);
        let mut frames = [0u32; 256];
        if reserve_for(d.domain, XENMEM_INCREASE_RESERVATION, &mut frames) == Ok(256) {
            made += 1;
        }
    }
    let distinct = (0..made).all(|i| (0..i).all(|j| ids[i] != ids[j]));
    let during = free_pages();
    let destroyed = ids[..made]
        .iter()
        .filter(|&&d| op(XEN_DOMCTL_DESTROYDOMAIN, d).is_ok())
        .count();
    c.check(
        "eight_domains_created_filled_destroyed",
        made == 8 && distinct && destroyed == 8 && during + 8 * 257 <= free_before,
        format_args!("made {made} destroyed {destroyed}, free {free_before} -> {during}"),
    );
    let free_after = free_pages();
    c.check(
        "destroy_gives_back_all_memory",
        free_after == free_before,
        format_args!("free before {free_before}, after {free_after}"),
    );
    // Events are masked (and shared_info unmapped) outside `events()`: let
    // the pending VIRQ_DOM_EXC in for a moment.
    let va = mem.scratch_va(61);
    let _ = mem.map(va, mem.si.shared_info >> 12, true);
    shared_u8(1).store(0, AtOrd::SeqCst);
    let _ = hcall(xen_abi::hypercall::XEN_VERSION, [0, 0, 0, 0, 0]);
    shared_u8(1).store(1, AtOrd::SeqCst);
    let _ = mem.unmap(va);
    c.check(
        "virq_dom_exc_on_destroy",
        seen(exc.port) > exc_before,
        format_args!("{} -> {}", exc_before, seen(exc.port)),
    );
}

// A tiny second domain, run by `run_domu`: at 0x1000 in its own address
// space, it puts 2.0 on the FPU stack, yields 50 times (dom0 runs between,
// with 3.0 on its own FPU stack), checks the value, says so on the console,
// tries what a domU may not, pirqs among them (results in its data page at
// 0x2000), floods the console with 64512 lines and powers off.
core::arch::global_asm!(
    r#"
    .section .rodata
    .global td_domu_code_start, td_domu_code_end
td_domu_code_start:
    fld1
    fld1
    faddp
    movl    $50, %esi
1:  movl    $29, %eax           /* sched_op */
    movl    $0, %ebx            /* SCHEDOP_yield */
    int     $0x82
    decl    %esi
    jnz     1b
    fistpl  0x2000
    cmpl    $2, 0x2000
    jne     2f
    movl    $18, %eax           /* console_io */
    movl    $0, %ebx            /* CONSOLEIO_write */
    movl    $(td_domu_msg_end - td_domu_msg), %ecx
    movl    $(0x1000 + td_domu_msg - td_domu_code_start), %edx
    int     $0x82
2:  movl    %edi, 0x2008        /* evtchn_send.port: dom0 gave it in EDI */
    movl    $32, %eax           /* event_channel_op */
    movl    $4, %ebx            /* EVTCHNOP_send */
    movl    $0x2008, %ecx
    int     $0x82
    movl    %eax, 0x2010
    movl    $0, 0x2014          /* bind_interdomain: remote_dom 0 ... */
    movl    $1, 0x2018          /* ... port 1, which dom0 never offered */
    movl    $32, %eax
    movl    $0, %ebx            /* EVTCHNOP_bind_interdomain */
    movl    $0x2014, %ecx
    int     $0x82
    movl    %eax, 0x2020
    movl    $36, %eax           /* domctl: not for a domU */
    movl    $0x2100, %ebx
    int     $0x82
    movl    %eax, 0x2024
    /* map_grant_ref of dom0's grant 8, which grants to another domain */
    movl    $0x4000, 0x2200     /* host_addr (low, high) */
    movl    $0, 0x2204
    movl    $2, 0x2208          /* GNTMAP_host_map */
    movl    $8, 0x220c          /* ref */
    movl    $0, 0x2210          /* dom 0; status */
    movl    $20, %eax           /* grant_table_op */
    movl    $0, %ebx            /* GNTTABOP_map_grant_ref */
    movl    $0x2200, %ecx
    movl    $1, %edx
    int     $0x82
    movswl  0x2212, %eax
    movl    %eax, 0x2028
    /* GNTTABOP_dump_table of itself: only the toolstack's domain may */
    movl    $0x7ff0, 0x2230     /* dom DOMID_SELF, status 0 */
    movl    $20, %eax           /* grant_table_op */
    movl    $3, %ebx            /* GNTTABOP_dump_table */
    movl    $0x2230, %ecx
    movl    $1, %edx
    int     $0x82
    movl    %eax, 0x202c
    /* EVTCHNOP_bind_pirq of pirq 10: not for a domU */
    movl    $10, 0x2240         /* pirq */
    movl    $0, 0x2244          /* flags */
    movl    $32, %eax           /* event_channel_op */
    movl    $2, %ebx            /* EVTCHNOP_bind_pirq */
    movl    $0x2240, %ecx
    int     $0x82
    movl    %eax, 0x2038
    /* PHYSDEVOP_map_pirq of GSI 10 into itself: not for a domU either */
    movl    $0x7ff0, 0x2250     /* domid DOMID_SELF */
    movl    $1, 0x2254          /* MAP_PIRQ_TYPE_GSI */
    movl    $10, 0x2258         /* index */
    movl    $-1, 0x225c         /* pirq: any */
    movl    $33, %eax           /* physdev_op */
    movl    $13, %ebx           /* PHYSDEVOP_map_pirq */
    movl    $0x2250, %ecx
    int     $0x82
    movl    %eax, 0x203c
    /* A console flood: 3 KiB of newlines (the first ends the message
       above), written 20 times, then once with a count of 2^31 - 1 that
       runs into the unmapped page at 0x3000 */
    movl    $0x2400, %edi
    movl    $0x0a0a0a0a, %eax
    movl    $768, %ecx
    cld
    rep stosl
    movl    $20, %esi
4:  movl    $18, %eax           /* console_io */
    movl    $0, %ebx            /* CONSOLEIO_write */
    movl    $3072, %ecx
    movl    $0x2400, %edx
    int     $0x82
    orl     %eax, 0x2030
    decl    %esi
    jnz     4b
    movl    $18, %eax
    movl    $0, %ebx
    movl    $0x7fffffff, %ecx
    movl    $0x2400, %edx
    int     $0x82
    movl    %eax, 0x2034
    movl    $0, 0x2004          /* sched_shutdown.reason = poweroff */
    movl    $29, %eax
    movl    $2, %ebx            /* SCHEDOP_shutdown */
    movl    $0x2004, %ecx
    int     $0x82
3:  jmp     3b
td_domu_msg:
    /* No newline: the flood's first newline ends it; the ESC and CR are
       dropped (a domU's console text is printable only). */
    .ascii "domU: a second domain ran;\033 its FPU value\r survived 50 switches"
td_domu_msg_end:
td_domu_code_end:
    .text
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    static td_domu_code_start: u8;
    static td_domu_code_end: u8;
}

/// The domain the toolstack would build, by hand: six of its frames become
/// an L3, two L2s, an L1, a code and a data page; pinned, given a vcpu
/// context, unpaused. It runs between dom0's yields (the scheduler switches
/// registers, page tables and, lazily, the FPU), powers off, and goes away.
pub(crate) fn run_domu(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::context::{VGCF_IN_KERNEL, VGCF_ONLINE, VcpuGuestContext};
    use xen_abi::domctl::*;
    use xen_abi::memory::XENMEM_POPULATE_PHYSMAP;
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS, FLAT_KERNEL_SS};
    isolation::offer_grant_elsewhere(c, mem);
    let free_before = free_pages();
    let mut d = XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::default(),
    );
    let r = domctl(&mut d);
    let id = d.domain;
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    let _ = domctl(&mut mm);
    let mut m = [0u32; 6];
    let pop = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut m);
    c.check(
        "domu_created_and_populated",
        r.is_ok() && pop == Ok(6),
        format_args!("{r:?} {pop:?}"),
    );
    let [l3, l2_0, l2_3, l1, code, data] = m;
    // Fill the frames through foreign mappings.
    let va = mem.scratch_va(51);
    let fill = |mfn: u32, entries: &[(usize, u64)], bytes: &[u8]| {
        fill_foreign(mem, va, id, mfn, entries, bytes)
    };
    // SAFETY: the two symbols delimit the domU code in .rodata.
    let code_bytes = unsafe {
        let start = core::ptr::addr_of!(td_domu_code_start);
        let len = core::ptr::addr_of!(td_domu_code_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    };
    let filled = fill(
        l1,
        &[(1, pte(code, P | A)), (2, pte(data, P | RW | A | D))],
        &[],
    ) && fill(l2_0, &[(0, pte(l1, P | RW | A))], &[])
        && fill(l2_3, &[], &[])
        && fill(l3, &[(0, pte(l2_0, P)), (3, pte(l2_3, P))], &[])
        && fill(code, &[], code_bytes)
        && fill(data, &[], &[]);
    c.check(
        "domu_frames_filled",
        filled,
        format_args!("foreign mappings"),
    );
    let pin = [MmuextOp::new(MMUEXT_PIN_L3_TABLE, l3, 0)];
    c.ok(
        "domu_pin_l3_foreign",
        pvrt::mm::mmuext_op(&pin, u32::from(id)).0,
    );

    static mut CTX: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses CTX, once.
    let ctx = unsafe { &mut *core::ptr::addr_of_mut!(CTX) };
    ctx.flags = VGCF_ONLINE | VGCF_IN_KERNEL;
    ctx.user_regs.eip = 0x1000;
    ctx.user_regs.esp = 0x3000;
    ctx.user_regs.cs = FLAT_KERNEL_CS;
    ctx.user_regs.ss = FLAT_KERNEL_SS;
    ctx.user_regs.ds = FLAT_KERNEL_DS;
    ctx.user_regs.es = FLAT_KERNEL_DS;
    ctx.user_regs.eflags = 0x202;
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(l3);
    ctx.kernel_ss = u32::from(FLAT_KERNEL_SS);
    ctx.kernel_sp = 0x3000;
    // An event channel between the two: a port of the domU for dom0,
    // bound by dom0; the domU learns its port from EDI.
    use xen_abi::evtchn::*;
    let mut un = EvtchnAllocUnbound {
        dom: id,
        remote_dom: 0,
        port: 0,
    };
    let r1 = evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut un);
    let mut bi = EvtchnBindInterdomain {
        remote_dom: id,
        _pad: 0,
        remote_port: un.port,
        local_port: 0,
    };
    let r2 = evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut bi);
    c.check(
        "evtchn_interdomain_bound",
        r1.is_ok() && r2.is_ok() && bi.local_port != 0,
        format_args!(
            "{r1:?} {r2:?} domU port {} dom0 port {}",
            un.port, bi.local_port
        ),
    );
    let status = |port: u32| {
        let mut st = EvtchnStatus {
            dom: xen_abi::domid::DOMID_SELF,
            port,
            ..Default::default()
        };
        evtchn(EVTCHNOP_STATUS, &mut st).map(|_| st)
    };
    let st = status(bi.local_port);
    c.check(
        "evtchn_status_interdomain",
        st.is_ok_and(|s| {
            s.status == EVTCHNSTAT_INTERDOMAIN && s.u[0] == u32::from(id) && s.u[1] == un.port
        }),
        format_args!("{st:?}"),
    );
    ctx.user_regs.edi = un.port;
    let vc = |cmd: u32, p: u64| {
        let mut d = XenDomctl::new(
            cmd,
            id,
            &XenDomctlVcpucontext {
                vcpu: 0,
                _pad: 0,
                ctxt: p,
            },
        );
        domctl(&mut d)
    };
    ctx.user_regs.cs = 0xE008; // Oxen's own ring-0 code selector
    c.err(
        "setvcpucontext_ring0_cs",
        vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64),
        Errno::EINVAL,
    );
    ctx.user_regs.cs = FLAT_KERNEL_CS;
    // An L3 at 4 GiB (extended-cr3 form, the assist on) that is not the
    // domU's frame is refused. (Where it lies is no reason any more: CR3
    // holds Oxen's low copy of an L3; on a machine with memory above 4 GiB
    // `high_l3_domu` runs a domU on an L3 up there.)
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(0x10_0000);
    ctx.vm_assist = 1 << xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
    c.err(
        "setvcpucontext_l3_above_4gib",
        vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64),
        Errno::EINVAL,
    );
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(l3);
    ctx.vm_assist = 0;
    // What a careless or hostile toolstack gives: EFLAGS with VM, IOPL and
    // NT, and an FPU image whose MXCSR has every bit set (FXRSTOR of it
    // would #GP in ring 0). Oxen sanitises both as Xen does; the domU runs.
    const EFLAGS_VM_IOPL_NT: u32 = (1 << 17) | (3 << 12) | (1 << 14);
    ctx.user_regs.eflags = 0x202 | EFLAGS_VM_IOPL_NT;
    ctx.flags |= xen_abi::context::VGCF_I387_VALID;
    ctx.fpu_ctxt[0..2].copy_from_slice(&0x037Fu16.to_le_bytes()); // FCW
    ctx.fpu_ctxt[24..28].copy_from_slice(&u32::MAX.to_le_bytes()); // MXCSR
    c.ok(
        "setvcpucontext",
        vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64),
    );
    static mut BACK: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses BACK, once.
    let back = unsafe { &mut *core::ptr::addr_of_mut!(BACK) };
    let r = vc(XEN_DOMCTL_GETVCPUCONTEXT, back as *mut _ as u64);
    c.check(
        "getvcpucontext",
        r.is_ok()
            && back.user_regs.eip == 0x1000
            && back.ctrlreg[3] == ctx.ctrlreg[3]
            && back.flags & VGCF_ONLINE != 0,
        format_args!("{r:?} eip={:#x}", back.user_regs.eip),
    );
    let mxcsr = u32::from_le_bytes([
        back.fpu_ctxt[24],
        back.fpu_ctxt[25],
        back.fpu_ctxt[26],
        back.fpu_ctxt[27],
    ]);
    let eflags = back.user_regs.eflags;
    c.check(
        "getvcpucontext_sanitised",
        r.is_ok()
            && eflags & EFLAGS_VM_IOPL_NT == 0
            && eflags & 0x202 == 0x202
            && back.flags & xen_abi::context::VGCF_I387_VALID != 0
            && mxcsr & 0xFFFF_0000 == 0
            && mxcsr & 0x1F80 == 0x1F80,
        format_args!("eflags={eflags:#x} mxcsr={mxcsr:#x}"),
    );

    // dom0 holds 3.0 on its FPU stack while the domU runs with 2.0.
    // SAFETY: x87 only; Oxen and this soft-float kernel use no x87 state.
    unsafe { core::arch::asm!("fld1", "fld1", "fld1", "faddp", "faddp") };
    let (_, ring_before_run) = console_since(None, &mut []);
    let mut up = XenDomctl::new(XEN_DOMCTL_UNPAUSEDOMAIN, id, &0u32);
    c.ok("domu_unpause", domctl(&mut up));
    let info = |id: DomId| {
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            id,
            &XenDomctlGetdomaininfo::default(),
        );
        domctl(&mut d).map(|_| d.payload::<XenDomctlGetdomaininfo>())
    };
    let mut yields = 0;
    while yields < 10_000 {
        if info(id).is_ok_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        let _ = hcall(
            xen_abi::hypercall::SCHED_OP,
            [xen_abi::sched::SCHEDOP_YIELD, 0, 0, 0, 0],
        );
        yields += 1;
    }
    let mut mine = 0u32;
    // SAFETY: pops dom0's 3.0 into `mine`.
    unsafe { core::arch::asm!("fistp dword ptr [{}]", in(reg) &mut mine) };
    let i = info(id);
    c.check(
        "domu_ran_and_powered_off",
        i.is_ok_and(|i| {
            i.flags & XEN_DOMINF_SHUTDOWN != 0
                && dominf_shutdown_reason(i.flags) == 0
                && i.cpu_time > 0
        }),
        format_args!("{i:?} after {yields} yields"),
    );
    c.check(
        "dom0_fpu_survived_domu",
        mine == 3,
        format_args!("dom0's x87 value came back as {mine}"),
    );
    isolation::domu_refusals(c, mem, id, data, va);
    let si = mem.scratch_va(61);
    let _ = mem.map(si, mem.si.shared_info >> 12, true);
    let pending =
        shared_u32_at(si, PENDING + 4 * (bi.local_port / 32)) & (1 << (bi.local_port % 32)) != 0;
    let _ = mem.unmap(si);
    c.check(
        "evtchn_interdomain_delivered",
        pending,
        format_args!("dom0 port {} pending", bi.local_port),
    );
    grants(c, mem, id, data);
    crate::grants::pinned_frame_outlives_its_reservation(c, mem);
    let mut k = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    c.ok("domu_destroy", domctl(&mut k));
    // Its 64512 console lines (the message and 21 * 3072 newlines): a
    // burst of 10 printed (one more per 5 s), every other one counted in
    // Oxen's `dN: K messages suppressed` (the last note at its destruction).
    static mut RING: [u8; 16 * 1024] = [0; 16 * 1024];
    // SAFETY: only this function uses RING, once.
    let ring = unsafe { &mut *core::ptr::addr_of_mut!(RING) };
    let (text, _) = console_since(Some(ring_before_run), ring);
    let (printed, suppressed) = flood_lines(text, id);
    c.check(
        "domu_console_flood_throttled",
        (10..=12).contains(&printed) && printed + suppressed == 21 * 3072,
        format_args!("{printed} lines printed, {suppressed} suppressed"),
    );
    let st = status(bi.local_port);
    c.check(
        "evtchn_peer_destroyed_unbound",
        st.is_ok_and(|s| s.status == EVTCHNSTAT_UNBOUND),
        format_args!("{st:?}"),
    );
    let mut cl = EvtchnClose {
        port: bi.local_port,
    };
    c.ok(
        "evtchn_close_after_peer_gone",
        evtchn(EVTCHNOP_CLOSE, &mut cl),
    );
    c.check(
        "domu_memory_back",
        free_pages() == free_before,
        format_args!("free before {free_before}, after {}", free_pages()),
    );
}

core::arch::global_asm!(
    r#"
    .section .rodata
    .global td_high_domu_start, td_high_domu_end
td_high_domu_start:
    movl    $29, %eax           /* sched_op */
    movl    $2, %ebx            /* SCHEDOP_shutdown */
    movl    $(0x1000 + td_high_domu_reason - td_high_domu_start), %ecx
    int     $0x82
1:  jmp     1b
td_high_domu_reason:
    .long   0                   /* SHUTDOWN_poweroff */
td_high_domu_end:
    .text
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    static td_high_domu_start: u8;
    static td_high_domu_end: u8;
}

/// A domU whose frames — its L3 among them — lie above 4 GiB (called once
/// dom0 has taken the memory below, `mm::l3_above_4gib`): built through
/// foreign mappings, its L3 pinned, `setvcpucontext` with the extended-cr3
/// `ctrlreg[3]` (and the assist in `vm_assist`, as libxc for an extended-cr3
/// kernel) accepted and read back, and it runs (its code is fetched through
/// Oxen's low copy of that L3) and powers off.
pub(crate) fn high_l3_domu(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::context::{VGCF_IN_KERNEL, VGCF_ONLINE, VcpuGuestContext};
    use xen_abi::domctl::*;
    use xen_abi::memory::XENMEM_POPULATE_PHYSMAP;
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS, FLAT_KERNEL_SS};
    let mut d = XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::default(),
    );
    let r = domctl(&mut d);
    let id = d.domain;
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    let _ = domctl(&mut mm);
    let mut m = [0u32; 5];
    let pop = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut m);
    let [l3, l2_0, l2_3, l1, code] = m;
    c.check(
        "high_domu_frames_above_4gib",
        r.is_ok() && pop == Ok(5) && m.iter().all(|&f| f >= 0x10_0000),
        format_args!("{r:?} {pop:?} {m:x?}"),
    );
    let va = mem.scratch_va(9);
    let fill = |mfn: u32, entries: &[(usize, u64)], bytes: &[u8]| {
        fill_foreign(mem, va, id, mfn, entries, bytes)
    };
    // SAFETY: the two symbols delimit the domU code in .rodata.
    let code_bytes = unsafe {
        let start = core::ptr::addr_of!(td_high_domu_start);
        let len = core::ptr::addr_of!(td_high_domu_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    };
    // The L3 entries as a 32-bit PAE Linux writes them under 64-bit Xen.
    let compat = P | RW | US | A | D;
    let filled = fill(l1, &[(1, pte(code, P | A))], &[])
        && fill(l2_0, &[(0, pte(l1, P | RW | A))], &[])
        && fill(l2_3, &[], &[])
        && fill(l3, &[(0, pte(l2_0, compat)), (3, pte(l2_3, compat))], &[])
        && fill(code, &[], code_bytes);
    let pin = [MmuextOp::new(MMUEXT_PIN_L3_TABLE, l3, 0)];
    let pinned = pvrt::mm::mmuext_op(&pin, u32::from(id)).0;
    c.check(
        "high_domu_built_and_pinned",
        filled && pinned.is_ok(),
        format_args!("{filled} {pinned:?}"),
    );
    // SAFETY: VcpuGuestContext is plain integers (FromZeros): all-zero is a valid value.
    static mut HCTX: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses HCTX, once.
    let ctx = unsafe { &mut *core::ptr::addr_of_mut!(HCTX) };
    ctx.flags = VGCF_ONLINE | VGCF_IN_KERNEL;
    ctx.user_regs.eip = 0x1000;
    ctx.user_regs.cs = FLAT_KERNEL_CS;
    ctx.user_regs.ss = FLAT_KERNEL_SS;
    ctx.user_regs.ds = FLAT_KERNEL_DS;
    ctx.user_regs.es = FLAT_KERNEL_DS;
    ctx.user_regs.eflags = 0x202;
    ctx.kernel_ss = u32::from(FLAT_KERNEL_SS);
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(l3);
    let vc = |cmd: u32, p: u64| {
        let mut d = XenDomctl::new(
            cmd,
            id,
            &XenDomctlVcpucontext {
                vcpu: 0,
                _pad: 0,
                ctxt: p,
            },
        );
        domctl(&mut d)
    };
    // Without the assist an L3 above 4 GiB is refused, as in Xen; with it,
    // taken.
    ctx.vm_assist = 0;
    let without = vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64);
    ctx.vm_assist = 1 << xen_abi::traps::VMASST_TYPE_PAE_EXTENDED_CR3;
    let with = vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64);
    c.check(
        "high_domu_setvcpucontext_extended_cr3",
        without == Err(Errno::EINVAL) && with.is_ok(),
        format_args!("{without:?} {with:?} cr3 {:#x}", ctx.ctrlreg[3]),
    );
    // SAFETY: VcpuGuestContext is plain integers (FromZeros): all-zero is a valid value.
    static mut HBACK: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses HBACK, once.
    let back = unsafe { &mut *core::ptr::addr_of_mut!(HBACK) };
    let r = vc(XEN_DOMCTL_GETVCPUCONTEXT, back as *mut _ as u64);
    c.check(
        "high_domu_getvcpucontext_cr3",
        r.is_ok() && back.ctrlreg[3] == ctx.ctrlreg[3],
        format_args!("{r:?} {:#x}", back.ctrlreg[3]),
    );
    let mut up = XenDomctl::new(XEN_DOMCTL_UNPAUSEDOMAIN, id, &0u32);
    let _ = domctl(&mut up);
    let info = || {
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            id,
            &XenDomctlGetdomaininfo::default(),
        );
        domctl(&mut d).map(|_| d.payload::<XenDomctlGetdomaininfo>())
    };
    let mut yields = 0;
    while yields < 10_000 && !info().is_ok_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
        let _ = hcall(
            xen_abi::hypercall::SCHED_OP,
            [xen_abi::sched::SCHEDOP_YIELD, 0, 0, 0, 0],
        );
        yields += 1;
    }
    let i = info();
    c.check(
        "high_domu_ran_and_powered_off",
        i.is_ok_and(|i| {
            i.flags & XEN_DOMINF_SHUTDOWN != 0
                && dominf_shutdown_reason(i.flags) == 0
                && i.cpu_time > 0
        }),
        format_args!("{i:?} after {yields} yields"),
    );
    let mut dd = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    c.ok("high_domu_destroyed", domctl(&mut dd));
}

/// Maps domain `id`'s frame `mfn` writable at `va` (a foreign mapping),
/// zeroes it, writes `entries` (index, 64-bit value) and then `bytes` from
/// offset 0, and unmaps it; whether the mapping was made.
fn fill_foreign(
    mem: &Mem<'_>,
    va: u32,
    id: u16,
    mfn: u32,
    entries: &[(usize, u64)],
    bytes: &[u8],
) -> bool {
    let ok = update_va_mapping_otherdomain(va, pte(mfn, P | RW | A | D), UVMF_INVLPG, id).is_ok();
    if ok {
        // SAFETY: the frame is mapped writable at `va`.
        unsafe {
            core::ptr::write_bytes(va as *mut u8, 0, PAGE as usize);
            for &(i, e) in entries {
                (va as *mut u64).add(i).write_volatile(e);
            }
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), va as *mut u8, bytes.len());
        }
    }
    let _ = mem.unmap(va);
    ok
}

/// `destroydomain` of a domU with a pinned tree of ~5000 entries (an L3,
/// its slot-0 L2 over eight L1s) is split (Xen's preemptible
/// `domain_relinquish_resources`): with an event pending, the first return
/// to dom0 comes before the call completes, the domain there and dying
/// (`getdomaininfo`); dom0 sees one call that succeeds, and then the domain
/// is gone and all its memory back.
pub(crate) fn destroy_in_steps(c: &mut Checks, mem: &Mem<'_>) {
    use core::sync::atomic::Ordering::SeqCst;
    use xen_abi::domctl::*;
    use xen_abi::memory::XENMEM_POPULATE_PHYSMAP;
    const L1S: usize = 8;
    let free_before = free_pages();
    let mut d = XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::default(),
    );
    let r = domctl(&mut d);
    let id = d.domain;
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    let max = domctl(&mut mm);
    let mut m = [0u32; 3 + L1S];
    let pop = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut m);
    let (l3, l2_0, l2_3, l1s) = (m[0], m[1], m[2], &m[3..]);
    let va = mem.scratch_va(9);
    let l2_entries: [(usize, u64); L1S] = core::array::from_fn(|i| (i, pte(l1s[i], P | RW | A)));
    let compat = P | RW | US | A | D;
    let filled = l1s
        .iter()
        .all(|&l1| fill_foreign(mem, va, id, l1, &[], &[]))
        && fill_foreign(mem, va, id, l2_0, &l2_entries, &[])
        && fill_foreign(mem, va, id, l2_3, &[], &[])
        && fill_foreign(
            mem,
            va,
            id,
            l3,
            &[(0, pte(l2_0, compat)), (3, pte(l2_3, compat))],
            &[],
        );
    let pin = [MmuextOp::new(MMUEXT_PIN_L3_TABLE, l3, 0)];
    let pinned = pvrt::mm::mmuext_op(&pin, u32::from(id)).0;
    c.check(
        "destroy_in_steps_domu_built",
        r.is_ok() && max.is_ok() && pop == Ok(m.len() as u32) && filled && pinned.is_ok(),
        format_args!("{r:?} {max:?} {pop:?} {filled} {pinned:?}"),
    );
    crate::mm::PROBE_DOMFLAGS.store(u32::MAX, SeqCst);
    crate::mm::PROBE_DOMID.store(u32::from(id), SeqCst);
    let mut dd = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    let destroyed = crate::mm::with_event_pending(mem, || domctl(&mut dd));
    crate::mm::PROBE_DOMID.store(u32::MAX, SeqCst);
    let flags = crate::mm::PROBE_DOMFLAGS.load(SeqCst);
    let mut gi = XenDomctl::new(
        XEN_DOMCTL_GETDOMAININFO,
        id,
        &XenDomctlGetdomaininfo::default(),
    );
    let gone = domctl(&mut gi).map_or(true, |_| gi.domain != id);
    c.check(
        "destroydomain_in_steps",
        destroyed.is_ok_and(|(r, at)| r.is_ok() && at != u32::MAX)
            && flags != u32::MAX
            && flags & XEN_DOMINF_DYING != 0
            && gone,
        format_args!("{destroyed:?}, flags at the first return {flags:#x}, gone after {gone}"),
    );
    c.check(
        "destroydomain_in_steps_memory_back",
        free_pages() == free_before,
        format_args!("free before {free_before}, after {}", free_pages()),
    );
}
