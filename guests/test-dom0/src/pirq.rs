//! Physical IRQs as event channels, as a Xen dom0 gets them: the
//! `PHYSDEVOP_*` pirq calls (map/unmap, irq_status_query, eoi, setup_gsi, the
//! compat #19 form), `EVTCHNOP_bind_pirq`/`status`/`close` on a pirq, the
//! `XEN_DOMCTL_irq_permission` right, every bad value refused, and a real
//! interrupt end to end: the CMOS RTC's periodic interrupt (IRQ 8, ports
//! 0x70/0x71, which Oxen only reads at boot) bound as pirq 8 — an event
//! arrives, the line stays masked until `PHYSDEVOP_eoi`, the next comes after
//! it, and none after the port is closed.

use core::sync::atomic::Ordering as AtOrd;

use pvrt::println;
use xen_abi::domid::DOMID_SELF;
use xen_abi::errno::Errno;
use xen_abi::evtchn::*;
use xen_abi::hypercall::{PHYSDEV_OP, PHYSDEV_OP_COMPAT};
use xen_abi::physdev::*;

use crate::domains::domctl;
use crate::events::{PENDING, SEEN, SHARED_VA, count_event, evtchn, shared_u8, shared_u32};
use crate::helpers::{Checks, Mem};

/// The RTC's line.
const RTC_IRQ: u32 = 8;

fn physdev<T>(cmd: u32, arg: &mut T) -> Result<u32, Errno> {
    // SAFETY: `arg` is a live ABI struct of the size the command reads/writes.
    pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(PHYSDEV_OP, [cmd, arg as *mut T as u32, 0, 0, 0])
    })
}

fn status_query(irq: u32) -> Result<u32, Errno> {
    let mut q = PhysdevIrqStatusQuery { irq, flags: 0 };
    physdev(PHYSDEVOP_IRQ_STATUS_QUERY, &mut q).map(|_| q.flags)
}

fn eoi(irq: u32) -> Result<u32, Errno> {
    physdev(PHYSDEVOP_EOI, &mut PhysdevEoi { irq })
}

fn map(domid: u16, ty: i32, index: i32, pirq: i32) -> Result<i32, Errno> {
    let mut m = PhysdevMapPirq {
        domid,
        ty,
        index,
        pirq,
        ..Default::default()
    };
    physdev(PHYSDEVOP_MAP_PIRQ, &mut m).map(|_| m.pirq)
}

fn unmap(pirq: i32) -> Result<u32, Errno> {
    let mut u = PhysdevUnmapPirq {
        domid: DOMID_SELF,
        _pad: 0,
        pirq,
    };
    physdev(PHYSDEVOP_UNMAP_PIRQ, &mut u)
}

fn bind(pirq: u32, flags: u32) -> Result<u32, Errno> {
    let mut b = EvtchnBindPirq {
        pirq,
        flags,
        port: 0,
    };
    evtchn(EVTCHNOP_BIND_PIRQ, &mut b).map(|_| b.port)
}

fn close(port: u32) -> Result<u32, Errno> {
    evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

fn irq_permission(domid: u16, pirq: u8, allow: bool) -> Result<u32, Errno> {
    use xen_abi::domctl::*;
    let mut d = XenDomctl::new(
        XEN_DOMCTL_IRQ_PERMISSION,
        domid,
        &XenDomctlIrqPermission {
            pirq,
            allow_access: u8::from(allow),
        },
    );
    domctl(&mut d)
}

fn outb(port: u16, v: u8) {
    // SAFETY: dom0 with virtual IOPL 1: Oxen emulates the access to a port
    // it does not keep (the RTC's).
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v, options(nostack)) };
}

fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: as for `outb`.
    unsafe { core::arch::asm!("in al, dx", in("dx") port, out("al") v, options(nostack)) };
    v
}

fn cmos_read(reg: u8) -> u8 {
    outb(0x70, reg);
    inb(0x71)
}

fn cmos_write(reg: u8, v: u8) {
    outb(0x70, reg);
    outb(0x71, v);
}

/// Acknowledges the RTC (reading register C lowers its interrupt, so that
/// the next period raises a new edge).
fn rtc_ack() {
    let _ = cmos_read(0x0C);
}

fn now() -> u64 {
    pvrt::time::now(SHARED_VA.load(AtOrd::SeqCst))
}

/// Yields (events are delivered on each return) until `cond` or `ms` pass.
fn wait_for(ms: u64, cond: impl Fn() -> bool) -> bool {
    let end = now() + ms * 1_000_000;
    while now() < end {
        if cond() {
            return true;
        }
        let _ = pvrt::time::yield_now();
    }
    cond()
}

pub(crate) fn pirqs(c: &mut Checks, mem: &Mem<'_>) {
    let va = mem.scratch_va(61);
    let _ = mem.map(va, mem.si.shared_info >> 12, true);
    SHARED_VA.store(va, AtOrd::SeqCst);
    c.ok("pirq_event_callback", pvrt::events::init(va));
    for port in 0..SEEN.len() as u32 {
        pvrt::events::on(port, count_event);
    }
    shared_u8(1).store(0, AtOrd::SeqCst);

    bad_values(c);
    map_unmap_and_permission(c);
    rtc_end_to_end(c);

    shared_u8(1).store(1, AtOrd::SeqCst);
    let _ = mem.unmap(va);
}

/// Every refusal: out-of-range pirqs, the lines Oxen keeps, MSI, unknown
/// types, the compat form.
fn bad_values(c: &mut Checks) {
    c.err("pirq_status_query_16", status_query(16), Errno::EINVAL);
    c.err(
        "pirq_status_query_huge",
        status_query(u32::MAX),
        Errno::EINVAL,
    );
    let flags = status_query(RTC_IRQ);
    c.check(
        "pirq_status_query_needs_eoi",
        flags == Ok(XENIRQSTAT_NEEDS_EOI),
        format_args!("{flags:?}"),
    );
    c.err(
        "pirq_map_gsi_16",
        map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, 16, -1),
        Errno::EINVAL,
    );
    c.err(
        "pirq_map_gsi_negative",
        map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, -1, -1),
        Errno::EINVAL,
    );
    c.err(
        "pirq_map_msi",
        map(DOMID_SELF, MAP_PIRQ_TYPE_MSI, 0, -1),
        Errno::ENOSYS,
    );
    c.err(
        "pirq_map_bad_type",
        map(DOMID_SELF, 7, 8, -1),
        Errno::EINVAL,
    );
    c.err(
        "pirq_map_timer_line",
        map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, 0, -1),
        Errno::EBUSY,
    );
    c.err(
        "pirq_map_no_such_domain",
        map(77, MAP_PIRQ_TYPE_GSI, 8, -1),
        Errno::ESRCH,
    );
    c.err(
        "pirq_map_other_pirq",
        map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, 8, 9),
        Errno::EEXIST,
    );
    c.err("pirq_unmap_16", unmap(16), Errno::EINVAL);
    c.err("pirq_unmap_negative", unmap(-1), Errno::EINVAL);
    c.err("pirq_unmap_unmapped_0", unmap(0), Errno::EINVAL);
    c.err("pirq_bind_16", bind(16, 0), Errno::EINVAL);
    c.err("pirq_bind_huge", bind(u32::MAX, 0), Errno::EINVAL);
    c.err("pirq_bind_timer", bind(0, 0), Errno::EPERM);
    c.err("pirq_bind_cascade", bind(2, 0), Errno::EBUSY);
    c.err(
        "pirq_bind_oxen_console",
        bind(4, BIND_PIRQ__WILL_SHARE),
        Errno::EBUSY,
    );
    c.err("pirq_eoi_16", eoi(16), Errno::EINVAL);
    c.err("pirq_eoi_unmapped_0", eoi(0), Errno::EINVAL);
    c.ok("pirq_eoi_unbound", eoi(RTC_IRQ));
    let mut gsi = PhysdevSetupGsi {
        gsi: 16,
        triggering: 0,
        polarity: 0,
        _pad: 0,
    };
    c.err(
        "pirq_setup_gsi_16",
        physdev(PHYSDEVOP_SETUP_GSI, &mut gsi),
        Errno::EINVAL,
    );
    gsi.gsi = RTC_IRQ as i32;
    c.ok("pirq_setup_gsi", physdev(PHYSDEVOP_SETUP_GSI, &mut gsi));
    let mut free = PhysdevGetFreePirq {
        ty: MAP_PIRQ_TYPE_GSI,
        pirq: 0,
    };
    c.err(
        "pirq_get_free_pirq_none",
        physdev(PHYSDEVOP_GET_FREE_PIRQ, &mut free),
        Errno::ENOSYS,
    );
    // The compat #19 form: {cmd, union} with the union in place.
    let mut op = [PHYSDEVOP_IRQ_STATUS_QUERY, RTC_IRQ, 0, 0];
    // SAFETY: `op` is a 16-byte physdev_op read and written by the call.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(PHYSDEV_OP_COMPAT, [op.as_mut_ptr() as u32, 0, 0, 0, 0])
    });
    c.check(
        "pirq_compat_status_query",
        r.is_ok() && op[2] == XENIRQSTAT_NEEDS_EOI,
        format_args!("{r:?} flags {:#x}", op[2]),
    );
    let mut op = [PHYSDEVOP_EOI, 16, 0, 0];
    // SAFETY: as above.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(PHYSDEV_OP_COMPAT, [op.as_mut_ptr() as u32, 0, 0, 0, 0])
    });
    c.err("pirq_compat_eoi_16", r, Errno::EINVAL);
}

/// Unmapping takes the pirq and the right to bind it away; mapping gives
/// them back; the domctl grants and revokes the right.
fn map_unmap_and_permission(c: &mut Checks) {
    c.ok("pirq_unmap", unmap(RTC_IRQ as i32));
    c.err("pirq_unmap_twice", unmap(RTC_IRQ as i32), Errno::EINVAL);
    c.err("pirq_bind_unmapped", bind(RTC_IRQ, 0), Errno::EPERM);
    c.err("pirq_eoi_unmapped", eoi(RTC_IRQ), Errno::EINVAL);
    c.err(
        "pirq_map_unmapped_other_pirq",
        map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, RTC_IRQ as i32, 9),
        Errno::EINVAL,
    );
    let r = map(DOMID_SELF, MAP_PIRQ_TYPE_GSI, RTC_IRQ as i32, -1);
    c.check(
        "pirq_map_gsi",
        r == Ok(RTC_IRQ as i32),
        format_args!("{r:?}"),
    );
    let r = map(0, MAP_PIRQ_TYPE_GSI, RTC_IRQ as i32, RTC_IRQ as i32);
    c.check(
        "pirq_map_gsi_again",
        r == Ok(RTC_IRQ as i32),
        format_args!("{r:?}"),
    );

    c.err(
        "pirq_permission_16",
        irq_permission(0, 16, true),
        Errno::EINVAL,
    );
    c.err(
        "pirq_permission_no_domain",
        irq_permission(77, 9, true),
        Errno::ESRCH,
    );
    c.ok("pirq_permission_revoke", irq_permission(0, 9, false));
    c.err("pirq_bind_revoked", bind(9, 0), Errno::EPERM);
    c.ok("pirq_permission_grant", irq_permission(0, 9, true));
    let p = bind(9, 0);
    c.ok("pirq_bind_granted", p);
    if let Ok(p) = p {
        c.ok("pirq_close_granted", close(p));
    }
}

/// The RTC's periodic interrupt (64 Hz) as pirq 8.
fn rtc_end_to_end(c: &mut Checks) {
    let port = bind(RTC_IRQ, BIND_PIRQ__WILL_SHARE);
    c.ok("pirq_bind_rtc", port);
    let Ok(port) = port else { return };
    // Events on this port since the bind (an earlier user of the port
    // number left its count behind).
    let base = SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst));
    let seen = |port: u32| SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst)) - base;
    c.err(
        "pirq_bind_twice",
        bind(RTC_IRQ, BIND_PIRQ__WILL_SHARE),
        Errno::EEXIST,
    );
    let mut st = EvtchnStatus {
        dom: DOMID_SELF,
        port,
        ..Default::default()
    };
    let r = evtchn(EVTCHNOP_STATUS, &mut st);
    c.check(
        "pirq_evtchn_status",
        r.is_ok() && st.status == EVTCHNSTAT_PIRQ && st.pirq() == RTC_IRQ,
        format_args!("{r:?} status {} pirq {}", st.status, st.pirq()),
    );

    // Virtual IOPL 1: the RTC's ports are emulated for dom0.
    let _ = physdev(PHYSDEVOP_SET_IOPL, &mut PhysdevSetIopl { iopl: 1 });
    // Rate 10 (64 Hz), periodic interrupt on; acknowledge anything old.
    let (a, b) = (cmos_read(0x0A), cmos_read(0x0B));
    cmos_write(0x0A, (a & 0xF0) | 10);
    cmos_write(0x0B, b | 0x40);
    rtc_ack();

    let first = wait_for(2000, || seen(port) >= 1);
    c.check(
        "pirq_rtc_event",
        first,
        format_args!("{} events", seen(port)),
    );
    // Acknowledged at the RTC but not EOI'd: the line stays masked, the
    // next periods bring nothing.
    rtc_ack();
    wait_for(150, || false);
    let held = seen(port);
    c.check(
        "pirq_masked_until_eoi",
        first && held == 1,
        format_args!("{held} events without an EOI"),
    );
    for n in 2..=3 {
        let _ = eoi(RTC_IRQ);
        let got = wait_for(2000, || seen(port) >= n);
        rtc_ack();
        if n == 2 {
            c.check(
                "pirq_event_after_eoi",
                got,
                format_args!("{} events", seen(port)),
            );
        } else {
            c.check(
                "pirq_event_after_second_eoi",
                got,
                format_args!("{} events", seen(port)),
            );
        }
    }
    c.ok("pirq_eoi", eoi(RTC_IRQ));
    // Closed: the line goes masked; nothing more arrives on the port.
    c.ok("pirq_close", close(port));
    let after = seen(port);
    for _ in 0..3 {
        wait_for(50, || false);
        rtc_ack();
    }
    let pending = shared_u32(PENDING).load(AtOrd::SeqCst) & (1 << port) != 0;
    c.check(
        "pirq_no_event_after_close",
        seen(port) == after && !pending,
        format_args!("{after} -> {} events, pending {pending}", seen(port)),
    );
    c.err("pirq_close_twice", close(port), Errno::EINVAL);
    c.ok("pirq_eoi_after_close", eoi(RTC_IRQ));
    // Rebinding works again (the line starts clean), then the RTC is quiet.
    let again = bind(RTC_IRQ, 0);
    c.ok("pirq_rebind", again);
    if let Ok(p) = again {
        let _ = close(p);
    }
    cmos_write(0x0B, b & !0x40);
    cmos_write(0x0A, a);
    rtc_ack();
    let _ = physdev(PHYSDEVOP_SET_IOPL, &mut PhysdevSetIopl { iopl: 0 });
    println!(
        "test-dom0: RTC pirq {RTC_IRQ}: {} events on port {port}",
        seen(port)
    );
}
