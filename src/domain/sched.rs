//! The scheduler: which vcpu runs, and the switch between them.
//!
//! Round robin over the runnable vcpus with a 30 ms slice (Xen's credit
//! scheduler's default slice), so every domain — dom0 included — gets the CPU
//! in turn and none starves. A vcpu is runnable when its domain is neither
//! dying, shut down nor paused by the toolstack, it has a context, and it is
//! not blocked (`SCHEDOP_block`) or polling (`SCHEDOP_poll`). When nothing is
//! runnable the idle vcpu becomes current and the CPU halts until an
//! interrupt: the halted time is the idle vcpu's, and the vcpus waiting
//! meanwhile count it as blocked (or runnable, offline) time in their
//! runstates (`hv_core::sched`), never as CPU time.
//!
//! [`schedule`] runs on every return to a guest: it fires the running vcpu's
//! timers (every vcpu's once per tick), wakes the vcpus whose events or
//! deadlines came, hands pending debug keys and domain exceptions
//! (`VIRQ_DOM_EXC` to dom0), and switches when the running vcpu may not go
//! on or its slice is over. A switch saves the trap frame into the vcpu
//! whose context the CPU holds, loads the new one's frame in its place and
//! its page tables, descriptor tables, direct-entry state and a set CR0.TS
//! (the FPU follows lazily, see `arch::x86::fpu`). The idle vcpu runs on the
//! context of the last guest vcpu, as Xen's does: going idle and coming back
//! to that same vcpu reloads nothing (and leaves the FPU as it was). A vcpu
//! coming on the CPU finds its runstate in the area it registered.

use core::sync::atomic::{AtomicBool, Ordering};

use hv_core::evtchn::{EventWords, upcall_needed};
use hv_core::sched::{State, Switch, off_cpu_state};
use xen_abi::domid::DomId;

use super::events::{SharedWords, fire_timers};
use super::{Domain, DomainTable, MAX_DOMAINS};
use crate::arch::x86::cpu;
use crate::arch::x86::traps::TrapFrame;

/// A vcpu's time slice.
pub const SLICE_NS: u64 = 30_000_000;

/// `SCHEDOP_poll`: the ports waited for and the deadline (system time).
pub struct Poll {
    pub ports: heapless::Vec<u32, { xen_abi::sched::SCHED_POLL_MAX_PORTS as usize }>,
    pub deadline: Option<u64>,
}

/// Set when a domain shut down or crashed since dom0 was last told.
static DOM_EXC: AtomicBool = AtomicBool::new(false);

/// Set when an event was raised for a domain that may be waiting for it.
static KICKED: AtomicBool = AtomicBool::new(false);

/// Asks the next [`schedule`] to look at every vcpu (an event was sent to
/// another domain, which may be blocked or polling).
pub fn kick() {
    KICKED.store(true, Ordering::Relaxed);
}

/// Notes that dom0 should get `VIRQ_DOM_EXC` (a domain shut down).
pub fn note_dom_exc() {
    DOM_EXC.store(true, Ordering::Relaxed);
}

/// Whether `dom`'s vcpu may be put on the CPU.
pub fn runnable(dom: &Domain) -> bool {
    !dom.dying
        && dom.shutdown_reason.is_none()
        && dom.pause_count == 0
        && dom.vcpu.online
        && !dom.vcpu.blocked
        && dom.vcpu.poll.is_none()
}

/// The runstate `dom`'s vcpu has while off the CPU.
fn off_state(dom: &Domain) -> State {
    off_cpu_state(dom.vcpu.blocked || dom.vcpu.poll.is_some(), runnable(dom))
}

/// Fires `dom`'s due timers and wakes its vcpu if what it waits for came.
fn tend(dom: &mut Domain, now: u64) {
    if dom.dying {
        return;
    }
    let mut words = SharedWords::new(dom.shared_va);
    fire_timers(dom, &mut words, now);
    if dom.vcpu.blocked && upcall_needed(&words, 0) {
        dom.vcpu.blocked = false;
    }
    let woken = dom.vcpu.poll.as_ref().is_some_and(|p| {
        p.ports.iter().any(|&port| words.is_pending(port)) || p.deadline.is_some_and(|d| now >= d)
    });
    if woken {
        dom.vcpu.poll = None;
    }
}

/// The next runnable domain after `after` in domid order (wrapping; `after`
/// itself last).
fn pick_next(table: &DomainTable, after: Option<DomId>) -> Option<DomId> {
    let start = after.map_or(0, |d| u32::from(d) + 1) % MAX_DOMAINS as u32;
    // The live domids from `start` on, then the ones below it.
    let live = table.live().rotate_right(start);
    let mut bits = live;
    while bits != 0 {
        let i = bits.trailing_zeros();
        bits &= bits - 1;
        let d = ((i + start) % MAX_DOMAINS as u32) as DomId;
        if table.get(d).is_some_and(runnable) {
            return Some(d);
        }
    }
    None
}

/// Loads what the CPU needs of `dom`'s vcpu besides its registers.
fn load_vcpu(dom: &mut Domain) {
    // The vcpu's L3 is validated (its base pointer holds a type reference);
    // its low copy is refreshed, as another domain may have changed the L3
    // (a foreign `mmu_update`) while this vcpu was off the CPU.
    dom.load_cr3();
    crate::hypercall::descriptors::load_shadow(dom);
    crate::hypercall::descriptors::load_shadow_ldt(dom);
    dom.vcpu.load_direct_entry();
    cpu::set_task_switched(true);
}

/// Copies `dom`'s runstate into the area its vcpu registered, if any (its
/// page tables must be loaded). As in Xen, a failed copy is ignored.
pub fn update_runstate_area(dom: &Domain) {
    let va = dom.vcpu.runstate_area;
    if va != 0 {
        let _ = crate::arch::x86::uaccess::write_guest(va, &dom.vcpu.runstate.record());
    }
}

/// Puts `next`'s vcpu (`None`: the idle vcpu) on the CPU in place of the
/// current one, whose context is in `frame` if it is a guest's.
fn switch(table: &mut DomainTable, frame: &mut TrapFrame, next: Option<DomId>, now: u64) {
    let prev_to = table.current().map_or(State::Runnable, off_state);
    match table.switch_to(next, prev_to, now) {
        Switch::Stay | Switch::Idle => return,
        Switch::Resume => {}
        Switch::Load { save } => {
            if let Some(prev) = save.and_then(|d| table.get_mut(d)) {
                prev.vcpu.saved = Some(*frame);
            }
            let n = table.current_mut().expect("a guest vcpu was switched to");
            *frame = n.vcpu.saved.take().expect("a runnable vcpu has a context");
            load_vcpu(n);
        }
    }
    update_runstate_area(table.current().expect("a guest vcpu was switched to"));
}

/// Tells dom0 about shut-down domains if any did (`VIRQ_DOM_EXC`).
fn deliver_dom_exc(table: &mut DomainTable) {
    if !DOM_EXC.swap(false, Ordering::Relaxed) {
        return;
    }
    if let Some(dom0) = table.get_mut(0) {
        let mut words = SharedWords::new(dom0.shared_va);
        let _ = dom0
            .ports
            .raise_virq(&mut words, xen_abi::evtchn::VIRQ_DOM_EXC, 0);
    }
}

/// Chooses the vcpu to return to (see the module documentation); `frame` is
/// the loaded vcpu's context and becomes the chosen one's. Interrupts off.
/// Returns with a guest vcpu current, once there is one to run.
pub fn schedule(table: &mut DomainTable, frame: &mut TrapFrame) {
    let mut now = crate::time::now_ns();
    let mut tend_all =
        table.tended_tick != crate::time::ticks() || KICKED.swap(false, Ordering::Relaxed);
    loop {
        if super::pirq::deliver(table) {
            tend_all = true;
        }
        crate::console::keys::run_pending(table);
        deliver_dom_exc(table);
        let current = table.current_id();
        if tend_all {
            table.tended_tick = crate::time::ticks();
            for dom in table.iter_mut() {
                tend(dom, now);
                // Off the CPU: its runstate follows what it waits for (a
                // wake-up makes it runnable, a pause offline).
                if Some(dom.domid) != current {
                    let state = off_state(dom);
                    dom.vcpu.runstate.change(state, now);
                }
            }
        } else if let Some(dom) = table.current_mut() {
            tend(dom, now);
        }
        let keep = table.current().is_some_and(runnable) && now < table.slice_end;
        if keep {
            return;
        }
        // Round robin from the vcpu that ran last (the one still loaded
        // while the idle vcpu runs).
        let next = pick_next(table, table.loaded_id());
        if next != current {
            switch(table, frame, next, now);
        }
        if next.is_some() {
            table.slice_end = now + SLICE_NS;
            return;
        }
        // Nothing to run: the idle vcpu waits for an interrupt (a tick,
        // console input).
        cpu::enable_interrupts_and_halt();
        cpu::disable_interrupts();
        now = crate::time::now_ns();
        tend_all = true;
    }
}

/// The domain whose vcpu's FPU state the registers hold (`u32::MAX`: none).
static FPU_OWNER: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// #NM from the running vcpu: gives it the FPU. The previous owner's state
/// is saved into its vcpu and the running vcpu's loaded (its first use gets
/// the initial state); CR0.TS is cleared.
pub fn fpu_take(table: &mut DomainTable) {
    use crate::arch::x86::fpu;
    cpu::set_task_switched(false);
    let Some(cur) = table.current_id() else {
        return;
    };
    let owner = FPU_OWNER.load(Ordering::Relaxed);
    if owner == u32::from(cur) {
        return;
    }
    if let Some(prev) = DomId::try_from(owner).ok().and_then(|d| table.get_mut(d)) {
        fpu::save(&mut prev.vcpu.fpu);
    }
    let dom = table.current_mut().expect("the current domain exists");
    if !dom.vcpu.fpu_initialised {
        fpu::reset_area(&mut dom.vcpu.fpu);
        dom.vcpu.fpu_initialised = true;
    }
    if !fpu::restore(&mut dom.vcpu.fpu) {
        crate::guest_log!(dom, Debug, "d{cur}: its FPU state did not load: reset");
    }
    FPU_OWNER.store(u32::from(cur), Ordering::Relaxed);
}

/// Sets the real CR0.TS for the running `dom` after its virtual TS changed
/// (`clts`, `mov cr0`, `fpu_taskswitch`): clear only if the guest's TS is
/// clear and its state is in the registers.
pub fn fpu_sync_ts(dom: &Domain) {
    let owner = FPU_OWNER.load(Ordering::Relaxed) == u32::from(dom.domid);
    cpu::set_task_switched(dom.vcpu.fpu_ts || !owner);
}

/// Forgets `domid` as the FPU's owner (it is being destroyed).
pub fn fpu_forget(domid: DomId) {
    let _ = FPU_OWNER.compare_exchange(
        u32::from(domid),
        u32::MAX,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}
