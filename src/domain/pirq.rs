//! Physical IRQs routed to guests as pirq event channels (DESIGN.md §8): the
//! machine-wide line table (`hv_core::pirq::IrqLines`) behind a lock, the
//! interrupt handler's half and the delivery on the way back to a guest.
//!
//! The interrupt handler never takes a lock: it masks a bound line at the PIC
//! and notes it in [`PENDING`]; [`deliver`], called by the scheduler with the
//! domain table held, runs the state machine (`IrqLines::fire`) and raises
//! the binders' ports. [`GUEST_LINES`] mirrors `IrqLines::bound()` after
//! every change, so the handler knows a guest's line without the lock. Lock
//! order: the domain table, then [`LINES`].

use core::sync::atomic::{AtomicU16, Ordering};

use hv_core::evtchn::Port;
use hv_core::pirq::{DomainPirqs, IrqLines, LineAction, NR_PIRQS};
use spin::{Mutex, MutexGuard};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;

use super::DomainTable;
use super::events::SharedWords;
use crate::arch::x86::pic;

static LINES: Mutex<IrqLines> = Mutex::new(IrqLines::new());
/// Lines with a guest binder (bit N = line N).
static GUEST_LINES: AtomicU16 = AtomicU16::new(0);
/// Guest lines that fired and are not delivered yet.
static PENDING: AtomicU16 = AtomicU16::new(0);

/// The line table, with the lines Oxen took for itself reserved.
pub fn lines() -> MutexGuard<'static, IrqLines> {
    let mut l = LINES.lock();
    let oxen = pic::oxen_lines();
    for line in 0..NR_PIRQS as u8 {
        if oxen & (1 << line) != 0 {
            l.reserve(line);
        }
    }
    l
}

/// Applies `action` at the PIC and refreshes the handler's view of `lines`:
/// a line is masked before the handler forgets it and known to the handler
/// before it is unmasked, so an interrupt between the two always finds a
/// masked line or a handler that masks it.
pub fn apply(lines: &IrqLines, action: LineAction) {
    if let LineAction::Mask(l) = action {
        pic::mask(l);
    }
    GUEST_LINES.store(lines.bound(), Ordering::SeqCst);
    if let LineAction::Unmask(l) = action {
        pic::unmask_guest(l);
    }
}

/// Logs the trigger modes the firmware gave the lines (PCI INTx lines are
/// level-triggered and shared).
pub fn init() {
    log::info!(
        "pirq: 8259 lines, level-triggered: {:#06x}",
        pic::level_lines()
    );
}

/// `EVTCHNOP_bind_pirq`'s machine half for `dom` (whose pirq state is
/// `pirqs`) on `port`.
pub fn bind(
    pirqs: &DomainPirqs,
    dom: DomId,
    pirq: u32,
    port: Port,
    will_share: bool,
) -> Result<(), Errno> {
    let mut l = lines();
    let action = l.bind(pirqs, dom, pirq, port, will_share)?;
    apply(&l, action);
    Ok(())
}

/// `dom`'s port for `pirq` closed (or the domain died).
pub fn unbind(dom: DomId, pirq: u32) {
    let mut l = lines();
    let action = l.unbind(dom, pirq);
    apply(&l, action);
}

/// The interrupt handler's part for line `irq`, interrupts off: a guest's
/// line is masked (the caller EOIs the PIC next) and left for [`deliver`].
/// Returns false if no guest has the line.
pub fn handle_irq(irq: u8) -> bool {
    if irq >= NR_PIRQS as u8 || GUEST_LINES.load(Ordering::SeqCst) & (1 << irq) == 0 {
        return false;
    }
    pic::mask(irq);
    PENDING.fetch_or(1 << irq, Ordering::SeqCst);
    super::sched::kick();
    true
}

/// Raises the binders' ports for every line that fired; true if a port of
/// some domain was raised (the scheduler then looks at every vcpu).
pub fn deliver(table: &mut DomainTable) -> bool {
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pending == 0 {
        return false;
    }
    let mut l = lines();
    let mut raised = false;
    for line in (0..NR_PIRQS as u8).filter(|l| pending & (1 << l) != 0) {
        let fired = l.fire(line);
        if fired.targets().next().is_some() {
            // Masked until every binder EOIs (a rebind since the interrupt
            // may have unmasked it).
            pic::mask(line);
        }
        for (dom, port) in fired.targets() {
            if let Some(d) = table.get_mut(dom).filter(|d| !d.dying) {
                let mut words = SharedWords::new(d.shared_va);
                raised |= d.ports.raise(&mut words, port).is_some();
            }
        }
    }
    raised
}
