//! Serial input to Oxen itself, as in Xen: typing Ctrl-A three times switches
//! the serial console's input between dom0 and the hypervisor. While it goes
//! to the hypervisor each key runs a debug-key handler: `h` lists them, `q`
//! dumps every domain and notifies its vcpus with `VIRQ_DEBUG` (§8.2), `t`
//! prints the time.
//!
//! Keys arrive in the receive interrupt; they are queued there and their
//! handlers run on the next return to a guest, where the domain state is at
//! hand and printing cannot interleave with the interrupted output.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use spin::Mutex;

/// The byte that, typed three times in a row, switches the input.
pub const SWITCH_CODE: u8 = 0x01;

/// Whether serial input goes to Oxen (else to dom0).
static INPUT_TO_XEN: AtomicBool = AtomicBool::new(false);
/// Consecutive `SWITCH_CODE` bytes seen.
static SWITCH_COUNT: AtomicU8 = AtomicU8::new(0);
/// What the receive interrupt left for [`run_pending`], in order.
#[derive(Clone, Copy)]
enum Pending {
    /// The input was switched (to Oxen if `true`).
    Switched(bool),
    /// A debug key.
    Key(u8),
}
static PENDING: Mutex<heapless::Deque<Pending, 32>> = Mutex::new(heapless::Deque::new());
/// Set when `PENDING` may hold something (read on every return to a guest).
static ANY_PENDING: AtomicBool = AtomicBool::new(false);

/// Where a received byte goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To dom0's console input.
    Dom0,
    /// Taken by Oxen (a debug key or the switch itself).
    Oxen,
}

/// Routes one received byte (interrupts off). As in Xen the first two
/// Ctrl-A still reach the side that has the input; the third switches.
pub fn route(byte: u8) -> Route {
    if byte == SWITCH_CODE {
        if SWITCH_COUNT.fetch_add(1, Ordering::Relaxed) + 1 == 3 {
            SWITCH_COUNT.store(0, Ordering::Relaxed);
            let to_xen = !INPUT_TO_XEN.fetch_xor(true, Ordering::Relaxed);
            let _ = PENDING.lock().push_back(Pending::Switched(to_xen));
            ANY_PENDING.store(true, Ordering::Release);
            return Route::Oxen;
        }
    } else {
        SWITCH_COUNT.store(0, Ordering::Relaxed);
    }
    if !INPUT_TO_XEN.load(Ordering::Relaxed) {
        return Route::Dom0;
    }
    if byte != SWITCH_CODE {
        let _ = PENDING.lock().push_back(Pending::Key(byte));
        ANY_PENDING.store(true, Ordering::Release);
    }
    Route::Oxen
}

/// One debug key.
struct Key {
    key: u8,
    what: &'static str,
}

const KEYS: [Key; 3] = [
    Key {
        key: b'h',
        what: "show this list of keys",
    },
    Key {
        key: b'q',
        what: "dump domain (and guest debug) info",
    },
    Key {
        key: b't',
        what: "display system time and the wall clock",
    },
];

/// Runs the handlers of the keys typed since the last call.
pub fn run_pending(table: &mut crate::domain::DomainTable) {
    if !ANY_PENDING.swap(false, Ordering::Acquire) {
        return;
    }
    loop {
        let Some(event) = PENDING.lock().pop_front() else {
            break;
        };
        let key = match event {
            Pending::Switched(true) => {
                crate::printk!(
                    "*** Serial input to Oxen (type 'CTRL-a' three times to switch input to DOM0)\n"
                );
                continue;
            }
            Pending::Switched(false) => {
                crate::printk!(
                    "*** Serial input to DOM0 (type 'CTRL-a' three times to switch input to Oxen)\n"
                );
                continue;
            }
            Pending::Key(key) => key,
        };
        match key {
            b'h' => {
                crate::printk!("'h' pressed -> showing installed handlers\n");
                for k in &KEYS {
                    crate::printk!(
                        " key '{}' (ascii '{:02x}') => {}\n",
                        k.key as char,
                        k.key,
                        k.what
                    );
                }
            }
            b'q' => {
                crate::printk!(
                    "'q' pressed -> dumping domain info (now {} ns)\n",
                    crate::time::now_ns()
                );
                dump_cpu(table);
                for dom in table.iter_mut() {
                    dump_domain(dom);
                }
            }
            b't' => crate::printk!(
                "'t' pressed -> system time {} ns, wall clock {} s since the epoch at boot\n",
                crate::time::now_ns(),
                crate::time::wallclock_at_boot()
            ),
            other => crate::printk!(
                "key '{}' (ascii '{other:02x}') has no handler: 'h' lists them\n",
                other.escape_ascii()
            ),
        }
    }
}

/// `q`: the CPU's current vcpu (the idle vcpu's while the CPU waits: the
/// keys run in the scheduler), whose context it holds, and its idle time.
fn dump_cpu(table: &crate::domain::DomainTable) {
    let now = crate::time::now_ns();
    let idle_ns = table.idle_runstate().cpu_time(now);
    match (table.current_id(), table.loaded_id()) {
        (Some(d), _) => crate::printk!("CPU0: current vcpu d{d}v0, idle {idle_ns} ns so far\n"),
        (None, Some(d)) => crate::printk!(
            "CPU0: current vcpu idle (d{d}v0's context loaded), idle {idle_ns} ns so far\n"
        ),
        (None, None) => crate::printk!("CPU0: current vcpu idle, idle {idle_ns} ns so far\n"),
    }
}

/// `q`: what Oxen knows of the domain, then `VIRQ_DEBUG` to each vcpu that
/// bound it (the guest's cue to dump its own state).
fn dump_domain(dom: &mut crate::domain::Domain) {
    use hv_core::sched::State;
    use xen_abi::evtchn::VIRQ_DEBUG;
    crate::printk!(
        "General information for domain {} ({}): tot_pages={} max_pages={} privileged={} paused={} shutdown={:?}\n",
        dom.domid,
        dom.name,
        crate::mm::frame_table::tot_pages(dom.domid),
        crate::mm::frame_table::max_pages(dom.domid),
        dom.privileged,
        dom.pause_count,
        dom.shutdown_reason
    );
    if dom.dying {
        return;
    }
    crate::printk!(
        "    VCPU0: online={} blocked={} CR3 mfn={:#x} upcall_mask={} fpu_ts={} kernel_ss:sp={:#06x}:{:#010x}\n",
        dom.vcpu.online,
        dom.vcpu.blocked,
        dom.vcpu.cr3.0,
        crate::domain::shared::upcall_mask(dom.shared_va),
        dom.vcpu.fpu_ts,
        dom.vcpu.kernel_stack.ss,
        dom.vcpu.kernel_stack.esp,
    );
    let now = crate::time::now_ns();
    let rs = &dom.vcpu.runstate;
    crate::printk!(
        "    VCPU0: runstate {}: running {} ns, runnable {} ns, blocked {} ns, offline {} ns\n",
        rs.state().name(),
        rs.cpu_time(now),
        rs.time_in(State::Runnable, now),
        rs.time_in(State::Blocked, now),
        rs.time_in(State::Offline, now)
    );
    let mut words = crate::domain::events::SharedWords::new(dom.shared_va);
    match dom.ports.raise_virq(&mut words, VIRQ_DEBUG, 0) {
        Some(r) => crate::printk!(
            "    Notifying guest {}:0 (virq {VIRQ_DEBUG}, port {})\n",
            dom.domid,
            r.port
        ),
        None => crate::printk!("    Guest {}:0 has not bound VIRQ_DEBUG\n", dom.domid),
    }
}
