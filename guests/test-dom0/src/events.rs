//! Events: 2-level event channels on one domain (IPI, loopback, VIRQ
//! binding, masking by port and by vcpu, status, close, the compat form),
//! with pvrt's upcall counting events per port; and the `test=console-input`
//! mode (VIRQ_CONSOLE and VIRQ_DEBUG wake a blocked vcpu, `console_io`
//! reads the line). The timer checks (time.rs) run in the middle, while
//! events are on. The shared_info mapping and the per-port counts here are
//! also what the domain checks read.

use core::sync::atomic::{AtomicU32, Ordering as AtOrd};

use pvrt::events::UPCALLS;
use pvrt::println;
use xen_abi::errno::Errno;

use crate::helpers::{Checks, Mem, hcall};
use crate::time::time;

/// Where `events()` mapped shared_info, for the upcall handler.
pub(crate) static SHARED_VA: AtomicU32 = AtomicU32::new(0);

/// Events seen, per port (the first 64 ports).
pub(crate) static SEEN: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

pub(crate) fn shared_u32(offset: u32) -> &'static AtomicU32 {
    // SAFETY: shared_info is mapped at SHARED_VA for as long as events are
    // enabled; every field the test touches is an aligned u32 inside it.
    unsafe { &*((SHARED_VA.load(AtOrd::SeqCst) + offset) as *const AtomicU32) }
}

pub(crate) fn shared_u32_at(va: u32, offset: u32) -> u32 {
    // SAFETY: the caller mapped shared_info at `va`; `offset` is an aligned
    // u32 inside it.
    unsafe { ((va + offset) as *const u32).read_volatile() }
}

pub(crate) fn shared_u8(offset: u32) -> &'static core::sync::atomic::AtomicU8 {
    // SAFETY: as for `shared_u32`.
    unsafe { &*((SHARED_VA.load(AtOrd::SeqCst) + offset) as *const core::sync::atomic::AtomicU8) }
}

pub(crate) const PENDING: u32 = 2048;
const MASKS: u32 = 2176;

/// The per-port handler test-dom0 gives pvrt: counts events per port.
pub(crate) fn count_event(port: u32) {
    if let Some(n) = SEEN.get(port as usize) {
        n.fetch_add(1, AtOrd::SeqCst);
    }
}

pub(crate) fn evtchn<T>(cmd: u32, arg: &mut T) -> Result<u32, Errno> {
    // SAFETY: `arg` is a live ABI struct of the size the command reads/writes.
    pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::EVENT_CHANNEL_OP,
            [cmd, arg as *mut T as u32, 0, 0, 0],
        )
    })
}

/// Event channels on one domain: IPI, loopback, VIRQ binding, masking by port
/// and by vcpu, unmask re-raising, status, close, the compat form.
pub(crate) fn events(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::EVENT_CHANNEL_OP_COMPAT;
    let va = mem.scratch_va(61);
    c.ok(
        "map_shared_info_for_events",
        mem.map(va, mem.si.shared_info >> 12, true),
    );
    SHARED_VA.store(va, AtOrd::SeqCst);
    // pvrt owns the upcall: its entry scans the event words and runs the
    // handler of each port (here: a counter per port).
    c.ok("register_event_callback", pvrt::events::init(va));
    for port in 0..SEEN.len() as u32 {
        pvrt::events::on(port, count_event);
    }

    let mut ipi = EvtchnBindIpi { vcpu: 0, port: 0 };
    c.ok("evtchn_bind_ipi", evtchn(EVTCHNOP_BIND_IPI, &mut ipi));
    let p = ipi.port;
    c.check("evtchn_first_port_is_1", p == 1, format_args!("{p}"));
    // Events on: clear the vcpu's upcall mask.
    shared_u8(1).store(0, AtOrd::SeqCst);
    let mut send = EvtchnSend { port: p };
    c.ok("evtchn_send_ipi", evtchn(EVTCHNOP_SEND, &mut send));
    c.check(
        "evtchn_ipi_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 1 && SEEN[p as usize].load(AtOrd::SeqCst) == 1,
        format_args!(
            "upcalls={} seen={}",
            UPCALLS.load(AtOrd::SeqCst),
            SEEN[p as usize].load(AtOrd::SeqCst)
        ),
    );
    c.check(
        "evtchn_upcall_mask_restored",
        shared_u8(1).load(AtOrd::SeqCst) == 0,
        format_args!("{}", shared_u8(1).load(AtOrd::SeqCst)),
    );

    // Masked port: raised but not delivered until EVTCHNOP_unmask.
    shared_u32(MASKS).fetch_or(1 << p, AtOrd::SeqCst);
    c.ok("evtchn_send_masked", evtchn(EVTCHNOP_SEND, &mut send));
    let pending = shared_u32(PENDING).load(AtOrd::SeqCst) & (1 << p) != 0;
    c.check(
        "evtchn_masked_not_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 1 && pending,
        format_args!("upcalls={} pending={pending}", UPCALLS.load(AtOrd::SeqCst)),
    );
    let mut unmask = EvtchnUnmask { port: p };
    c.ok("evtchn_unmask", evtchn(EVTCHNOP_UNMASK, &mut unmask));
    c.check(
        "evtchn_delivered_on_unmask",
        UPCALLS.load(AtOrd::SeqCst) == 2 && SEEN[p as usize].load(AtOrd::SeqCst) == 2,
        format_args!(
            "upcalls={} seen={}",
            UPCALLS.load(AtOrd::SeqCst),
            SEEN[p as usize].load(AtOrd::SeqCst)
        ),
    );

    // Vcpu-wide mask: the upcall waits until the mask clears and Oxen next
    // returns to the guest (here: the next hypercall).
    shared_u8(1).store(1, AtOrd::SeqCst);
    c.ok(
        "evtchn_send_while_vcpu_masked",
        evtchn(EVTCHNOP_SEND, &mut send),
    );
    c.check(
        "evtchn_vcpu_masked_not_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 2,
        format_args!("upcalls={}", UPCALLS.load(AtOrd::SeqCst)),
    );
    shared_u8(1).store(0, AtOrd::SeqCst);
    let mut st = EvtchnStatus {
        dom: xen_abi::domid::DOMID_SELF,
        port: p,
        ..Default::default()
    };
    c.ok("evtchn_status_ipi", evtchn(EVTCHNOP_STATUS, &mut st));
    c.check(
        "evtchn_delivered_after_vcpu_unmask",
        UPCALLS.load(AtOrd::SeqCst) == 3 && SEEN[p as usize].load(AtOrd::SeqCst) == 3,
        format_args!("upcalls={}", UPCALLS.load(AtOrd::SeqCst)),
    );
    c.check(
        "evtchn_status_is_ipi",
        st.status == EVTCHNSTAT_IPI && st.vcpu == 0,
        format_args!("status={} vcpu={}", st.status, st.vcpu),
    );

    // Loopback: an unbound port bound from the same domain.
    let mut ub = EvtchnAllocUnbound {
        dom: xen_abi::domid::DOMID_SELF,
        remote_dom: xen_abi::domid::DOMID_SELF,
        port: 0,
    };
    c.ok(
        "evtchn_alloc_unbound",
        evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut ub),
    );
    let mut bi = EvtchnBindInterdomain {
        remote_dom: xen_abi::domid::DOMID_SELF,
        _pad: 0,
        remote_port: ub.port,
        local_port: 0,
    };
    c.ok(
        "evtchn_bind_interdomain_loopback",
        evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut bi),
    );
    let mut send_lb = EvtchnSend {
        port: bi.local_port,
    };
    c.ok("evtchn_send_loopback", evtchn(EVTCHNOP_SEND, &mut send_lb));
    c.check(
        "evtchn_loopback_delivered",
        SEEN.get(ub.port as usize)
            .is_some_and(|n| n.load(AtOrd::SeqCst) == 1),
        format_args!("ports {} -> {}", bi.local_port, ub.port),
    );

    // VIRQs.
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    c.ok("evtchn_bind_virq", evtchn(EVTCHNOP_BIND_VIRQ, &mut virq));
    let mut again = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    c.err(
        "evtchn_bind_virq_twice",
        evtchn(EVTCHNOP_BIND_VIRQ, &mut again),
        Errno::EEXIST,
    );
    let mut bad_vcpu = EvtchnBindVirq {
        virq: VIRQ_TIMER,
        vcpu: 5,
        port: 0,
    };
    c.err(
        "evtchn_bind_virq_no_such_vcpu",
        evtchn(EVTCHNOP_BIND_VIRQ, &mut bad_vcpu),
        Errno::ENOENT,
    );

    // Close; a closed port can be neither closed nor used again.
    let mut close = EvtchnClose { port: p };
    c.ok("evtchn_close", evtchn(EVTCHNOP_CLOSE, &mut close));
    c.err(
        "evtchn_close_twice",
        evtchn(EVTCHNOP_CLOSE, &mut close),
        Errno::EINVAL,
    );
    c.err(
        "evtchn_send_closed",
        evtchn(EVTCHNOP_SEND, &mut send),
        Errno::EINVAL,
    );
    c.err("evtchn_unknown_cmd", evtchn(99, &mut send), Errno::ENOSYS);
    let mut other = EvtchnAllocUnbound {
        dom: 3,
        remote_dom: 0,
        port: 0,
    };
    c.err(
        "evtchn_alloc_unbound_other_domain",
        evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut other),
        Errno::ESRCH,
    );

    // The compat #16 form: cmd then the same struct at offset 4.
    let mut op = [0u32; 7];
    op[0] = EVTCHNOP_ALLOC_UNBOUND;
    op[1] = u32::from(xen_abi::domid::DOMID_SELF) | (u32::from(xen_abi::domid::DOMID_SELF) << 16);
    // SAFETY: `op` is a 28-byte evtchn_op read and written by the call.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            EVENT_CHANNEL_OP_COMPAT,
            [op.as_mut_ptr() as u32, 0, 0, 0, 0],
        )
    });
    c.check(
        "evtchn_compat_alloc_unbound",
        r.is_ok() && op[2] == p, // the lowest free port: the one closed above
        format_args!("{r:?} port={}", op[2]),
    );

    time(c);

    // Events off again before the rest of the test.
    shared_u8(1).store(1, AtOrd::SeqCst);
    let _ = mem.unmap(va);
}

/// `test=console-input`: wait for a line typed on the hypervisor console
/// (VIRQ_CONSOLE wakes the blocked vcpu; console_io reads it), echo it, and
/// power off.
pub(crate) fn console_input(mem: &Mem<'_>) -> ! {
    use xen_abi::console::CONSOLEIO_READ;
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::{CONSOLE_IO, SCHED_OP};
    let va = mem.scratch_va(61);
    let _ = mem.map(va, mem.si.shared_info >> 12, true);
    SHARED_VA.store(va, AtOrd::SeqCst);
    let _ = pvrt::events::init(va);
    for port in 0..SEEN.len() as u32 {
        pvrt::events::on(port, count_event);
    }
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_CONSOLE,
        vcpu: 0,
        port: 0,
    };
    let _ = evtchn(EVTCHNOP_BIND_VIRQ, &mut virq);
    // VIRQ_DEBUG: Oxen's `q` debug key notifies it.
    let mut debug = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    let _ = evtchn(EVTCHNOP_BIND_VIRQ, &mut debug);
    // The default 10 ms periodic timer would only wake the vcpu needlessly.
    let _ = hcall(
        xen_abi::hypercall::VCPU_OP,
        [xen_abi::vcpu::VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0],
    );
    println!("test-dom0: waiting for console input");
    let mut line = [0u8; 128];
    let mut len = 0;
    while !line[..len].contains(&b'\n') && len < line.len() {
        let _ = hcall(SCHED_OP, [xen_abi::sched::SCHEDOP_BLOCK, 0, 0, 0, 0]);
        let r = hcall(
            CONSOLE_IO,
            [
                CONSOLEIO_READ,
                (line.len() - len) as u32,
                line[len..].as_mut_ptr() as u32,
                0,
                0,
            ],
        );
        len += r.unwrap_or(0) as usize;
    }
    let seen = |port: u32| SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst));
    // Control bytes (the first two Ctrl-A of a switch to Oxen reach dom0, as
    // in Xen) are not shown.
    let mut shown = [0u8; 128];
    let mut n = 0;
    for &b in line[..len].iter().filter(|b| !b.is_ascii_control()) {
        shown[n] = b;
        n += 1;
    }
    let text = core::str::from_utf8(&shown[..n]).unwrap_or("<not utf-8>");
    println!(
        "test-dom0: console read '{text}' after {} VIRQ_CONSOLE event(s), {} VIRQ_DEBUG event(s)",
        seen(virq.port),
        seen(debug.port)
    );
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    panic!("shutdown returned");
}
