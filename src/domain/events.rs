//! Event channels bound to the machine (XEN-PV-ABI.md §8): the shared-info
//! page's event words with atomic operations (`SharedWords`), the hypercalls'
//! environment, and the upcall Oxen delivers on its way back to the guest.
//! The rules are `hv_core::evtchn`.

use core::mem::offset_of;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use hv_core::bounce::{Delivery, bounce};
use hv_core::evtchn::{EventWords, EvtchnEnv, Port, Raised, VcpuId, upcall_needed};
use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::shared_info::{SharedInfo, VcpuInfo, VcpuTimeInfo};
use zerocopy::IntoBytes;

use super::{DOMAINS, fault};
use crate::arch::x86::traps::TrapFrame;
use crate::arch::x86::uaccess::copy_to_guest;

/// A domain's shared-info event fields, through Oxen's permanent mapping of
/// the page (`Domain::shared_va`).
pub struct SharedWords {
    base: u32,
}

impl SharedWords {
    /// The shared-info page mapped at `va` in Oxen's area.
    pub fn new(va: u32) -> Self {
        Self { base: va }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= core::mem::size_of::<SharedInfo>());
        // SAFETY: an aligned u32 inside the page Oxen keeps mapped at `base` for
        // the domain's life; the guest may change it at any time, so it is only
        // ever accessed atomically.
        unsafe { &*((self.base as usize + offset) as *const AtomicU32) }
    }

    fn u8_at(&self, offset: usize) -> &AtomicU8 {
        assert!(offset < core::mem::size_of::<SharedInfo>());
        // SAFETY: a byte inside the page mapped at `base`, only accessed atomically.
        unsafe { &*((self.base as usize + offset) as *const AtomicU8) }
    }

    fn vcpu(vcpu: VcpuId, field: usize) -> usize {
        offset_of!(SharedInfo, vcpu_info) + vcpu as usize * core::mem::size_of::<VcpuInfo>() + field
    }

    fn bit(base: usize, port: Port) -> (usize, u32) {
        (base + (port as usize / 32) * 4, 1 << (port % 32))
    }
}

const PENDING: usize = offset_of!(SharedInfo, evtchn_pending);
const MASK: usize = offset_of!(SharedInfo, evtchn_mask);

impl EventWords for SharedWords {
    fn pending_word(&self, word: usize) -> u32 {
        self.u32_at(PENDING + word * 4).load(Ordering::SeqCst)
    }

    fn mask_word(&self, word: usize) -> u32 {
        self.u32_at(MASK + word * 4).load(Ordering::SeqCst)
    }

    fn test_and_set_pending(&mut self, port: Port) -> bool {
        let (at, b) = Self::bit(PENDING, port);
        self.u32_at(at).fetch_or(b, Ordering::SeqCst) & b != 0
    }

    fn test_and_clear_pending(&mut self, port: Port) -> bool {
        let (at, b) = Self::bit(PENDING, port);
        self.u32_at(at).fetch_and(!b, Ordering::SeqCst) & b != 0
    }

    fn test_and_set_mask(&mut self, port: Port) -> bool {
        let (at, b) = Self::bit(MASK, port);
        self.u32_at(at).fetch_or(b, Ordering::SeqCst) & b != 0
    }

    fn test_and_clear_mask(&mut self, port: Port) -> bool {
        let (at, b) = Self::bit(MASK, port);
        self.u32_at(at).fetch_and(!b, Ordering::SeqCst) & b != 0
    }

    fn sel(&self, vcpu: VcpuId) -> u32 {
        self.u32_at(Self::vcpu(vcpu, offset_of!(VcpuInfo, evtchn_pending_sel)))
            .load(Ordering::SeqCst)
    }

    fn test_and_set_sel(&mut self, vcpu: VcpuId, word: usize) -> bool {
        let b = 1 << word;
        self.u32_at(Self::vcpu(vcpu, offset_of!(VcpuInfo, evtchn_pending_sel)))
            .fetch_or(b, Ordering::SeqCst)
            & b
            != 0
    }

    fn take_sel(&mut self, vcpu: VcpuId) -> u32 {
        self.u32_at(Self::vcpu(vcpu, offset_of!(VcpuInfo, evtchn_pending_sel)))
            .swap(0, Ordering::SeqCst)
    }

    fn upcall_pending(&self, vcpu: VcpuId) -> bool {
        self.u8_at(Self::vcpu(
            vcpu,
            offset_of!(VcpuInfo, evtchn_upcall_pending),
        ))
        .load(Ordering::SeqCst)
            != 0
    }

    fn test_and_set_upcall_pending(&mut self, vcpu: VcpuId) -> bool {
        self.u8_at(Self::vcpu(
            vcpu,
            offset_of!(VcpuInfo, evtchn_upcall_pending),
        ))
        .swap(1, Ordering::SeqCst)
            != 0
    }

    fn clear_upcall_pending(&mut self, vcpu: VcpuId) {
        self.u8_at(Self::vcpu(
            vcpu,
            offset_of!(VcpuInfo, evtchn_upcall_pending),
        ))
        .store(0, Ordering::SeqCst);
    }

    fn upcall_mask(&self, vcpu: VcpuId) -> bool {
        self.u8_at(Self::vcpu(vcpu, offset_of!(VcpuInfo, evtchn_upcall_mask)))
            .load(Ordering::SeqCst)
            != 0
    }

    fn set_upcall_mask(&mut self, vcpu: VcpuId, masked: bool) {
        self.u8_at(Self::vcpu(vcpu, offset_of!(VcpuInfo, evtchn_upcall_mask)))
            .store(u8::from(masked), Ordering::SeqCst);
    }
}

/// The event-channel world of one hypercall: every domain but the caller,
/// whose own table `dispatch` holds (the caller is taken out of the table
/// for the call). Dying domains are gone for event channels.
pub struct OtherDomains<'t> {
    pub table: &'t mut super::DomainTable,
    /// The caller's pirq state (for `EVTCHNOP_bind_pirq`).
    pub pirqs: hv_core::pirq::DomainPirqs,
}

impl EvtchnEnv<{ xen_abi::shared_info::NR_EVENT_CHANNELS }> for OtherDomains<'_> {
    type Words = SharedWords;

    fn with_domain<R>(
        &mut self,
        dom: DomId,
        f: impl FnOnce(&mut hv_core::evtchn::DomainPorts, &mut Self::Words) -> R,
    ) -> Result<R, Errno> {
        let d = self
            .table
            .get_mut(dom)
            .filter(|d| !d.dying)
            .ok_or(Errno::ESRCH)?;
        let mut words = SharedWords::new(d.shared_va);
        Ok(f(&mut d.ports, &mut words))
    }

    fn notify(&mut self, _dom: DomId, _raised: Raised) {
        // The scheduler looks at every vcpu on the way back: a blocked or
        // polling one wakes there.
        super::sched::kick();
    }

    fn bind_pirq(
        &mut self,
        dom: DomId,
        pirq: u32,
        port: Port,
        will_share: bool,
    ) -> Result<(), Errno> {
        super::pirq::bind(&self.pirqs, dom, pirq, port, will_share)
    }

    fn unbind_pirq(&mut self, dom: DomId, pirq: u32) {
        super::pirq::unbind(dom, pirq);
    }
}

impl SharedWords {
    fn store_u32(&self, offset: usize, v: u32) {
        self.u32_at(offset).store(v, Ordering::SeqCst);
    }

    /// Publishes system time for vcpu 0 (`vcpu_time_info`, with the odd/even
    /// version protocol) and the wall clock at system time 0 (XEN-PV-ABI.md §5.3).
    pub fn update_time(&self) {
        let (mul, shift) = crate::time::scale();
        let tsc = crate::arch::x86::cpu::rdtsc();
        let now = xen_abi::shared_info::scale_delta(
            tsc.wrapping_sub(crate::time::tsc_at_boot()),
            mul,
            shift,
        );
        let t = Self::vcpu(0, offset_of!(VcpuInfo, time));
        let version = self.u32_at(t + offset_of!(VcpuTimeInfo, version));
        let v = version.load(Ordering::SeqCst);
        version.store(v.wrapping_add(1) | 1, Ordering::SeqCst);
        let ts = t + offset_of!(VcpuTimeInfo, tsc_timestamp);
        self.store_u32(ts, tsc as u32);
        self.store_u32(ts + 4, (tsc >> 32) as u32);
        let st = t + offset_of!(VcpuTimeInfo, system_time);
        self.store_u32(st, now as u32);
        self.store_u32(st + 4, (now >> 32) as u32);
        self.store_u32(t + offset_of!(VcpuTimeInfo, tsc_to_system_mul), mul);
        self.u8_at(t + offset_of!(VcpuTimeInfo, tsc_shift))
            .store(shift as u8, Ordering::SeqCst);
        version.store((v | 1).wrapping_add(1), Ordering::SeqCst);

        let wc = self.u32_at(offset_of!(SharedInfo, wc_version));
        let w = wc.load(Ordering::SeqCst);
        wc.store(w.wrapping_add(1) | 1, Ordering::SeqCst);
        self.store_u32(
            offset_of!(SharedInfo, wc_sec),
            crate::time::wallclock_at_boot() as u32,
        );
        self.store_u32(offset_of!(SharedInfo, wc_nsec), 0);
        wc.store((w | 1).wrapping_add(1), Ordering::SeqCst);
    }
}

/// Raises the VIRQs that are due at `now`: VIRQ_TIMER for each expired timer
/// of the vcpu, and VIRQ_CONSOLE for the privileged domain when console input
/// arrived (if the guest bound them).
pub fn fire_timers(dom: &mut super::Domain, words: &mut SharedWords, now: u64) {
    if dom.privileged && crate::console::take_input_notification() {
        let _ = dom
            .ports
            .raise_virq(words, xen_abi::evtchn::VIRQ_CONSOLE, 0);
    }
    let vcpu = &mut dom.vcpu;
    let mut fire = false;
    if vcpu.singleshot.is_some_and(|d| now >= d) {
        vcpu.singleshot = None;
        fire = true;
    }
    if vcpu.periodic_ns != 0 && now >= vcpu.next_periodic {
        vcpu.next_periodic = hv_core::sanitise::next_deadline(now, vcpu.periodic_ns);
        fire = true;
    }
    if fire {
        let _ = dom.ports.raise_virq(words, xen_abi::evtchn::VIRQ_TIMER, 0);
    }
}

/// On the way back to a guest context: let the scheduler pick the vcpu (and
/// fire due timers), refresh its PV clock once per tick, and if an upcall is
/// due (pending and not masked) and the guest registered an event callback,
/// bounce to it.
pub fn return_to_guest(frame: &mut TrapFrame) {
    if frame.cs & 3 == 0 {
        return;
    }
    let mut table = DOMAINS.lock();
    loop {
        super::sched::schedule(&mut table, frame);
        let Some(dom) = table.current_mut() else {
            return;
        };
        if deliver_upcall(dom, frame) {
            return;
        }
        // The domain crashed on the way: run another.
    }
}

/// Refreshes `dom`'s clock and bounces a due upcall; false when the domain
/// could not take it and was crashed.
fn deliver_upcall(dom: &mut super::Domain, frame: &mut TrapFrame) -> bool {
    let words = SharedWords::new(dom.shared_va);
    // The PV clock extrapolates from its last record, so refreshing it once
    // per tick keeps it honest without costing every hypercall.
    let tick = crate::time::ticks();
    if dom.clock_tick != tick {
        dom.clock_tick = tick;
        words.update_time();
    }
    let handler = dom.vcpu.callbacks.event;
    if !upcall_needed(&words, 0) || handler.cs & !3 == 0 {
        return true;
    }
    let ctx = frame.interrupted();
    let mask = u8::from(words.upcall_mask(0));
    let delivered = bounce(&ctx, mask, dom.vcpu.kernel_stack, Delivery::Event, handler)
        .ok()
        .filter(|b| fault::resume_ok_in(&b.resume, dom))
        .filter(|b| {
            fault::guest_stack_linear(
                dom.vcpu.ldt_ents,
                b.resume.ss,
                b.resume.esp,
                b.frame.bytes(),
            )
            .is_some_and(|linear| copy_to_guest(linear, b.frame.words().as_bytes()).is_ok())
        });
    match delivered {
        Some(b) => {
            frame.resume(&b.resume);
            let mut words = words;
            words.set_upcall_mask(0, true);
            true
        }
        None => {
            let copy = *frame;
            fault::crash_domain(dom, &copy, format_args!("cannot deliver the event upcall"));
            false
        }
    }
}
