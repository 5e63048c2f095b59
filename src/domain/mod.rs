//! Domains and their vcpus.
//!
//! Until domUs exist there is at most one guest, dom0, built at boot; `CURRENT`
//! says whether it runs. A domain here is what Oxen must remember about a
//! guest between traps: its identity and privilege, its memory bookkeeping, the
//! shared-info frame, the VM assists it enabled and its vcpu's base page table.

pub mod dom0;
pub mod emulate;
pub mod events;
pub mod fault;
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
    /// Where the guest asked for its runstate (`register_runstate_memory_area`).
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
    /// The machine frame of the PAE L3 this vcpu runs on (its "CR3").
    pub cr3: Mfn,
    /// The LDT the guest asked for with `MMUEXT_SET_LDT` (linear address and
    /// entries; 0 entries = none), and its frames (each holding a `seg_desc`
    /// type reference).
    pub ldt_base: u32,
    pub ldt_ents: u32,
    pub ldt_frames: heapless::Vec<Mfn, 16>,
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
    /// Pages the domain owns.
    pub tot_pages: u64,
    /// Pages the domain may own (its reservation limit).
    pub max_pages: u64,
    /// The frame shared between Oxen and the guest (`shared_info`), and where
    /// Oxen keeps it mapped.
    pub shared_info: Mfn,
    pub shared_va: u32,
    /// Event channels.
    pub ports: alloc::boxed::Box<hv_core::evtchn::DomainPorts>,
    /// Bitmap of enabled `VMASST_TYPE_*` assists.
    pub vm_assist: u32,
    pub vcpu: Vcpu,
    /// Set when the domain has shut down, with the reason.
    pub shutdown_reason: Option<u32>,
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
            ldt_base: 0,
            ldt_ents: 0,
            ldt_frames: heapless::Vec::new(),
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
    dom.shutdown_reason = Some(reason);
    let name = xen_abi::sched::shutdown_reason_name(reason).unwrap_or("unknown");
    crate::printk!(
        "Domain {} ({}) shutdown: reason {name} ({reason})\n",
        dom.domid,
        dom.name
    );
    crate::printk!(
        "Hypercall continuations (preempted batches) so far: {}\n",
        crate::hypercall::continuations()
    );
    if crate::mm::audit_enabled() {
        crate::printk!(
            "mm audit: {} recounts of the frame table, all consistent\n",
            crate::mm::audits_passed()
        );
    }
    if dom.domid == 0 {
        hardware_domain_shutdown(reason);
    }
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

/// Makes `dom` the running domain.
pub fn set_current(dom: Domain) {
    RUNNING_DOMID.store(u32::from(dom.domid), core::sync::atomic::Ordering::Relaxed);
    dom.vcpu.load_direct_entry();
    *CURRENT.lock() = Some(dom);
}

/// The running guest, if any.
pub static CURRENT: Mutex<Option<Domain>> = Mutex::new(None);

/// Names the domain whose context Oxen is in, for reports (no allocation, so
/// it is safe on the fatal path).
pub struct CurrentDomain;

impl core::fmt::Display for CurrentDomain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match CURRENT.try_lock() {
            Some(guard) => match guard.as_ref() {
                Some(d) => write!(f, "d{} ({})", d.domid, d.name),
                None => f.write_str("idle (no guest has run yet)"),
            },
            // The fatal path may run while a hypercall holds the lock.
            None => match RUNNING_DOMID.load(core::sync::atomic::Ordering::Relaxed) {
                NO_DOMAIN => f.write_str("idle"),
                id => write!(f, "d{id} (in a hypercall or trap)"),
            },
        }
    }
}
