//! Domains and their vcpus.
//!
//! [`DOMAINS`] holds every domain, indexed by domid, and which one is on the
//! CPU. A domain here is what Oxen must remember about a guest between
//! traps: its identity and privilege (its page account, `tot_pages` and
//! `max_pages`, is the PV MMU engine's: `mm::frame_table`), the shared-info
//! frame, the VM assists it enabled, and its vcpu (one per domain until SMP
//! guests): base page table, descriptor tables, callbacks, timers, and —
//! while it is off the CPU — its saved registers and FPU state.
//!
//! The table also holds the CPU's scheduling state ([`hv_core::sched::Cpu`]):
//! the current vcpu — a guest's, or the idle vcpu (`None`) while no guest
//! vcpu may run — and the guest vcpu whose context the CPU holds.
//!
//! Invariants: the loaded vcpu's context (the current vcpu's, or while the
//! idle vcpu runs the last guest vcpu's) lives in the trap frame at the top
//! of the guest stack and its `saved` is `None`; every other vcpu that has
//! run or been given a context has it in `saved`. The loaded vcpu's domain
//! stays in the table. Lock order: `DOMAINS`, then `MM`.

pub mod dom0;
pub mod emulate;
pub mod events;
pub mod fault;
pub mod gnttab;
pub mod pirq;
pub mod sched;
pub mod shared;

use alloc::string::String;

use hv_core::addr::Mfn;
use hv_core::bounce::KernelStack;
use hv_core::vidt::{Callbacks, VirtualIdt};
use spin::Mutex;
use xen_abi::domid::DomId;

/// One virtual CPU (a domain has one until SMP guests are supported).
pub struct Vcpu {
    /// The virtual IDT (`set_trap_table`).
    pub idt: alloc::boxed::Box<VirtualIdt>,
    /// Event, failsafe and other callbacks.
    pub callbacks: Callbacks,
    /// The ring-1 stack for traps from ring 3 (`stack_switch`).
    pub kernel_stack: KernelStack,
    /// The virtual CR0.TS (`fpu_taskswitch`, `clts`).
    pub fpu_ts: bool,
    /// The frames of the guest's GDT (`set_gdt`, each holding a `seg_desc`
    /// type reference) and its number of entries.
    pub gdt_frames: heapless::Vec<Mfn, 14>,
    pub gdt_ents: u32,
    /// Where the guest asked for its runstate (`register_runstate_memory_area`;
    /// 0: nowhere), rewritten each time the vcpu comes on the CPU.
    pub runstate_area: u32,
    /// The virtual IOPL (`physdev_op(set_iopl)`).
    pub iopl: u32,
    /// The I/O bitmap (`physdev_op(set_iobitmap)`): guest address and ports.
    pub iobitmap: (u32, u32),
    /// The single-shot timer's deadline (system time, ns), if armed.
    pub singleshot: Option<u64>,
    /// The periodic timer's period (ns), 0 when stopped; and its next expiry.
    pub periodic_ns: u64,
    pub next_periodic: u64,
    /// The machine frame of the PAE L3 this vcpu runs on (its "CR3"; the
    /// CPU's CR3 holds its low copy, `mm::low_l3`).
    pub cr3: Mfn,
    /// Which of the vcpu's two low-L3 tables is live (`mm::low_l3`).
    pub low_l3: pv_mm::low_l3::LowL3,
    /// An old base pointer whose put is still being taken down in steps
    /// (Xen's `old_guest_table`): CR3 has left it; the vcpu's next
    /// `mmu_update` or `mmuext_op` finishes it before anything else.
    pub old_guest_table: Option<Mfn>,
    /// The LDT the guest asked for with `MMUEXT_SET_LDT` (linear address and
    /// entries; 0 entries = none), and its frames (each holding a `seg_desc`
    /// type reference).
    pub ldt_base: u32,
    pub ldt_ents: u32,
    pub ldt_frames: heapless::Vec<Mfn, 16>,
    /// The guest context while the vcpu is off the CPU (see the module's
    /// invariants); `None` also for a vcpu never given one.
    pub saved: Option<crate::arch::x86::traps::TrapFrame>,
    /// Whether the vcpu has a context and may run (`VGCF_online`).
    pub online: bool,
    /// Blocked (`SCHEDOP_block`, `hlt`): runnable again once an upcall is due.
    pub blocked: bool,
    /// `SCHEDOP_poll`: waiting for one of these ports, or the deadline.
    pub poll: Option<sched::Poll>,
    /// The FPU/SSE state (an FXSAVE image) while another vcpu owns the FPU;
    /// `fpu_initialised` is false until the vcpu first used the FPU.
    pub fpu: alloc::boxed::Box<crate::arch::x86::fpu::FpuArea>,
    pub fpu_initialised: bool,
    /// Its runstate: the time it spent running (its CPU time), runnable,
    /// blocked and offline.
    pub runstate: hv_core::sched::Runstate,
}

/// A guest domain.
pub struct Domain {
    pub domid: DomId,
    pub name: String,
    /// dom0 and toolstack domains: may use the privileged hypercalls and map
    /// other domains' memory.
    pub privileged: bool,
    /// May map I/O memory (frames that are not RAM) and use PWT/PCD/PAT.
    pub iomem_access: bool,
    /// The frame shared between Oxen and the guest (`shared_info`), and where
    /// Oxen keeps it mapped.
    pub shared_info: Mfn,
    pub shared_va: u32,
    /// Event channels.
    pub ports: alloc::boxed::Box<hv_core::evtchn::DomainPorts>,
    /// Its pirq mappings and the pirqs it may bind (`hv_core::pirq`).
    pub pirqs: hv_core::pirq::DomainPirqs,
    /// Grant table (as a granter) and grant mappings (as a grantee).
    pub grants: gnttab::DomainGrants,
    /// Bitmap of enabled `VMASST_TYPE_*` assists.
    pub vm_assist: u32,
    pub vcpu: Vcpu,
    /// Set when the domain has shut down, with the reason.
    pub shutdown_reason: Option<u32>,
    /// Toolstack pauses (`pausedomain` increments, `unpausedomain`
    /// decrements); the domain runs only at 0. A new domain starts at 1.
    pub pause_count: u32,
    /// Being destroyed: no longer scheduled, its resources going back.
    pub dying: bool,
    /// How far `destroydomain` got taking its frames back (it is split
    /// into continuations: Xen's preemptible `domain_relinquish_resources`).
    pub teardown: pv_mm::Teardown,
    /// The toolstack's UUID for the domain (`createdomain`, `setdomainhandle`).
    pub handle: [u8; 16],
    pub ssidref: u32,
    /// Seconds added to the wall clock the domain sees (`settimeoffset`).
    pub time_offset: i32,
    /// The most vcpus the toolstack allows (`max_vcpus`).
    pub max_vcpus: u32,
    /// The tick at which this domain's PV clock was last refreshed.
    pub clock_tick: u64,
    /// Its `console_io` line not yet printed (unused for dom0, whose
    /// output goes out as it comes).
    pub console_line: hv_core::conline::GuestLine,
    /// The rate limit of what this domain makes Oxen print (its `console_io`
    /// lines, the messages its faults and hypercalls cause; see
    /// `hv_core::ratelimit`).
    pub log_limit: hv_core::ratelimit::RateLimit,
}

/// The periodic timer a vcpu starts with (Xen's 10 ms).
pub const DEFAULT_PERIOD_NS: u64 = 10_000_000;

impl Vcpu {
    /// A vcpu on base pointer `cr3` with no handlers registered yet.
    pub fn new(cr3: Mfn) -> Self {
        Self {
            idt: alloc::boxed::Box::new(VirtualIdt::new()),
            callbacks: Callbacks::default(),
            kernel_stack: KernelStack::default(),
            fpu_ts: false,
            gdt_frames: heapless::Vec::new(),
            gdt_ents: 0,
            runstate_area: 0,
            iopl: 0,
            iobitmap: (0, 0),
            singleshot: None,
            // Xen starts every vcpu with a 10 ms periodic timer.
            periodic_ns: DEFAULT_PERIOD_NS,
            next_periodic: DEFAULT_PERIOD_NS,
            cr3,
            low_l3: pv_mm::low_l3::LowL3::new(),
            old_guest_table: None,
            ldt_base: 0,
            ldt_ents: 0,
            ldt_frames: heapless::Vec::new(),
            saved: None,
            online: false,
            blocked: false,
            poll: None,
            fpu: alloc::boxed::Box::new(crate::arch::x86::fpu::FpuArea::new()),
            fpu_initialised: false,
            runstate: hv_core::sched::Runstate::new(
                hv_core::sched::State::Offline,
                crate::time::now_ns(),
            ),
        }
    }
}

impl Vcpu {
    /// Loads what the CPU itself reads of this vcpu when ring 3 enters the
    /// guest kernel without Oxen: the `stack_switch` stack (TSS ss1/esp1) and
    /// the direct `int $0x80` gate. Called whenever either changes and when
    /// the vcpu is made to run.
    pub fn load_direct_entry(&self) {
        use crate::arch::x86::{gdt, idt};
        gdt::set_ring1_stack(self.kernel_stack.ss, self.kernel_stack.esp);
        idt::set_direct_int80(self.idt.direct_int80_gate());
    }
}

impl Domain {
    /// Loads CR3 for this domain's vcpu: the low copy of its L3, refreshed
    /// first (`mm::low_l3`). Its base pointer must be a validated L3 (it
    /// holds a type reference).
    pub fn load_cr3(&mut self) {
        crate::mm::low_l3::load(self.domid, self.vcpu.cr3, &mut self.vcpu.low_l3);
    }

    /// An unprivileged domain `domid` with no memory, whose shared_info is
    /// `shared_info` (mapped by Oxen at `shared_va`), one offline vcpu with
    /// no base pointer, nothing bound or granted; the callers set what
    /// differs (dom0's privilege and memory, a new domU's pause).
    pub fn new(domid: DomId, name: String, shared_info: Mfn, shared_va: u32) -> Self {
        Self {
            domid,
            name,
            privileged: false,
            iomem_access: false,
            shared_info,
            shared_va,
            ports: alloc::boxed::Box::new(hv_core::evtchn::DomainPorts::new(domid, 1)),
            pirqs: hv_core::pirq::DomainPirqs::new(false),
            grants: gnttab::DomainGrants::new(domid),
            vm_assist: 0,
            vcpu: Vcpu::new(Mfn(0)),
            shutdown_reason: None,
            pause_count: 0,
            dying: false,
            teardown: pv_mm::Teardown::default(),
            handle: [0; 16],
            ssidref: 0,
            time_offset: 0,
            max_vcpus: 1,
            clock_tick: u64::MAX,
            console_line: hv_core::conline::GuestLine::new(),
            log_limit: hv_core::ratelimit::RateLimit::new(crate::time::now_ns()),
        }
    }

    /// The domain as the PV MMU engine sees a caller.
    pub fn caller(&self) -> pv_mm::Caller {
        pv_mm::Caller {
            domid: self.domid,
            privileged: self.privileged,
            iomem_access: self.iomem_access,
        }
    }

    /// Whether `VMASST_TYPE_*` assist `ty` is enabled.
    pub fn has_assist(&self, ty: u32) -> bool {
        ty < 32 && self.vm_assist & (1 << ty) != 0
    }
}

/// Records that `dom` shut down for `reason` (`SHUTDOWN_*`) and reports it.
/// The initial domain's shutdown is the machine's: poweroff halts, reboot
/// resets, a crash resets after five seconds unless `noreboot`.
pub fn shutdown(dom: &mut Domain, reason: u32) {
    // Its last words come first, even without a newline.
    crate::console::guest_flush(dom.domid, &mut dom.console_line, &mut dom.log_limit);
    dom.shutdown_reason = Some(reason);
    let name = xen_abi::sched::shutdown_reason_name(reason).unwrap_or("unknown");
    crate::printk!(
        "Domain {} ({}) shutdown: reason {name} ({reason})\n",
        dom.domid,
        dom.name
    );
    if dom.domid == 0 {
        crate::printk!(
            "Hypercall continuations (preempted batches) so far: {}\n",
            crate::hypercall::continuations()
        );
        let errors = crate::mm::accounting_errors();
        if errors != 0 {
            crate::printk!(
                "ACCOUNTING ERRORS: {errors} domain(s) destroyed with tot_pages not at zero\n"
            );
        }
        if crate::mm::audit_enabled() {
            crate::printk!(
                "mm audit: {} recounts of the frame table, all consistent\n",
                crate::mm::audits_passed()
            );
        }
        hardware_domain_shutdown(reason);
    }
    sched::note_dom_exc();
}

fn hardware_domain_shutdown(reason: u32) -> ! {
    use xen_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF};
    match reason {
        SHUTDOWN_POWEROFF => {
            crate::printk!("Hardware Dom0 halted: halting machine\n");
            crate::panic::machine_halt()
        }
        SHUTDOWN_CRASH => crate::panic::fatal(format_args!("Hardware Dom0 crashed")),
        _ => {
            crate::printk!("Hardware Dom0 shutdown: rebooting machine\n");
            crate::panic::machine_restart()
        }
    }
}

const NO_DOMAIN: u32 = u32::MAX;

/// The id of the domain Oxen runs for, readable without any lock.
static RUNNING_DOMID: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(NO_DOMAIN);

/// The most domains Oxen holds at once (domids 0..MAX_DOMAINS; each has a
/// shared-info window in Oxen's area).
pub const MAX_DOMAINS: usize = 64;
const _: () = assert!(
    MAX_DOMAINS == 64,
    "the live bitmap is a u64, rotated in the scheduler"
);

/// The domain slots, by domid.
struct Slots([Option<alloc::boxed::Box<Domain>>; MAX_DOMAINS]);

impl hv_core::sched::Runstates<DomId> for Slots {
    fn runstate_mut(&mut self, domid: DomId) -> Option<&mut hv_core::sched::Runstate> {
        let dom = self.0.get_mut(usize::from(domid))?.as_deref_mut()?;
        Some(&mut dom.vcpu.runstate)
    }
}

/// Every domain, by domid, and the CPU's current and loaded vcpus.
pub struct DomainTable {
    slots: Slots,
    /// Bit `d` set when slot `d` holds a domain (so that the scheduler
    /// looks at the domains there are, not at every slot).
    live: u64,
    /// The domid last given out by `free_domid`.
    last_domid: DomId,
    /// The current vcpu (`None`: the idle vcpu), the loaded one, idle time.
    cpu: hv_core::sched::Cpu<DomId>,
    /// When the running vcpu's time slice ends (system time, ns).
    pub slice_end: u64,
    /// The tick at which every vcpu's timers were last looked at.
    pub tended_tick: u64,
}

impl DomainTable {
    const fn new() -> Self {
        Self {
            slots: Slots([const { None }; MAX_DOMAINS]),
            live: 0,
            last_domid: 0,
            cpu: hv_core::sched::Cpu::new(0),
            slice_end: 0,
            tended_tick: u64::MAX,
        }
    }

    /// The domain whose vcpu is on the CPU; `None` while the idle vcpu runs.
    pub fn current_id(&self) -> Option<DomId> {
        self.cpu.current()
    }

    pub fn current(&self) -> Option<&Domain> {
        self.get(self.cpu.current()?)
    }

    pub fn current_mut(&mut self) -> Option<&mut Domain> {
        self.get_mut(self.cpu.current()?)
    }

    /// The domain whose vcpu's context the CPU holds: the current one, or
    /// the last to run while the idle vcpu is current.
    pub fn loaded_id(&self) -> Option<DomId> {
        self.cpu.loaded()
    }

    /// The idle vcpu's runstate (its running time is the CPU's idle time).
    pub fn idle_runstate(&self) -> &hv_core::sched::Runstate {
        self.cpu.idle()
    }

    /// Puts `next`'s vcpu (`None`: the idle vcpu) on the CPU in the books at
    /// `now`; the current one leaves for `prev_to`. The caller does what the
    /// answer asks of the context.
    pub fn switch_to(
        &mut self,
        next: Option<DomId>,
        prev_to: hv_core::sched::State,
        now: u64,
    ) -> hv_core::sched::Switch<DomId> {
        let sw = self.cpu.switch(&mut self.slots, next, prev_to, now);
        RUNNING_DOMID.store(
            next.map_or(NO_DOMAIN, u32::from),
            core::sync::atomic::Ordering::Relaxed,
        );
        sw
    }

    pub fn get(&self, domid: DomId) -> Option<&Domain> {
        self.slots.0.get(usize::from(domid))?.as_deref()
    }

    pub fn get_mut(&mut self, domid: DomId) -> Option<&mut Domain> {
        self.slots.0.get_mut(usize::from(domid))?.as_deref_mut()
    }

    /// Adds `dom` under its domid (which must be free).
    pub fn insert(&mut self, dom: Domain) {
        let domid = dom.domid;
        let slot = &mut self.slots.0[usize::from(domid)];
        assert!(slot.is_none(), "domid {domid} in use");
        *slot = Some(alloc::boxed::Box::new(dom));
        self.live |= 1 << domid;
    }

    /// Lends the running domain out of the table (for a call that needs it
    /// and every other domain at once); give it back with [`Self::put_back`].
    pub fn lend_current(&mut self) -> Option<alloc::boxed::Box<Domain>> {
        self.slots
            .0
            .get_mut(usize::from(self.cpu.current()?))?
            .take()
    }

    /// Returns the domain lent by [`Self::lend_current`].
    pub fn put_back(&mut self, dom: alloc::boxed::Box<Domain>) {
        let slot = &mut self.slots.0[usize::from(dom.domid)];
        assert!(slot.is_none(), "domid {} taken while lent", dom.domid);
        *slot = Some(dom);
    }

    /// Takes domain `domid` out of the table (it must not be on the CPU).
    pub fn remove(&mut self, domid: DomId) -> Option<alloc::boxed::Box<Domain>> {
        assert_ne!(self.cpu.loaded(), Some(domid), "removing the loaded domain");
        let dom = self.slots.0.get_mut(usize::from(domid))?.take();
        if dom.is_some() {
            self.live &= !(1 << domid);
        }
        dom
    }

    /// The domids in the table, as a bitmap (bit `d` for domid `d`).
    pub fn live(&self) -> u64 {
        self.live
    }

    /// A free domid for a new domain: as Xen, the ids go round (the next
    /// free one after the last given out, wrapping past `MAX_DOMAINS` to 1),
    /// so a restarted domain gets a new id. Domain 0 is never given out.
    pub fn free_domid(&mut self) -> Option<DomId> {
        let n = MAX_DOMAINS as u16 - 1;
        let found = (0..n)
            .map(|i| 1 + (self.last_domid + i) % n)
            .find(|&d| self.slots.0[usize::from(d)].is_none())?;
        self.last_domid = found;
        Some(found)
    }

    /// The domains, in domid order.
    pub fn iter(&self) -> impl Iterator<Item = &Domain> {
        self.slots.0.iter().filter_map(|s| s.as_deref())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Domain> {
        self.slots.0.iter_mut().filter_map(|s| s.as_deref_mut())
    }
}

/// Every domain. Hypercalls and traps hold it while they use domain state.
pub static DOMAINS: Mutex<DomainTable> = Mutex::new(DomainTable::new());

/// Adds dom0 and makes it the running domain (its context is entered by the
/// caller).
pub fn start_dom0(mut dom: Domain) {
    dom.vcpu.load_direct_entry();
    // The builder validated and pinned the L3: CR3 now holds its low copy,
    // for the entry into dom0 that follows.
    dom.load_cr3();
    let domid = dom.domid;
    let mut table = DOMAINS.lock();
    table.insert(dom);
    let now = crate::time::now_ns();
    let sw = table.switch_to(Some(domid), hv_core::sched::State::Runnable, now);
    assert_eq!(sw, hv_core::sched::Switch::Load { save: None });
    table.slice_end = now + sched::SLICE_NS;
}

/// Names the domain whose context Oxen is in, for reports (no allocation, so
/// it is safe on the fatal path).
pub struct CurrentDomain;

impl core::fmt::Display for CurrentDomain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match DOMAINS.try_lock() {
            Some(table) => match (table.current(), table.loaded_id()) {
                (Some(d), _) => write!(f, "d{} ({})", d.domid, d.name),
                (None, None) => f.write_str("idle (no guest has run yet)"),
                (None, Some(last)) => write!(f, "idle (d{last} ran last)"),
            },
            // The fatal path may run while a hypercall holds the lock (or
            // the scheduler, halted in the idle vcpu).
            None => match RUNNING_DOMID.load(core::sync::atomic::Ordering::Relaxed) {
                NO_DOMAIN => f.write_str("idle"),
                id => write!(f, "d{id} (in a hypercall or trap)"),
            },
        }
    }
}
