//! The hypercall table, declared once, and the entry from `int $0x82`.
//!
//! Each declaration names the ABI number, who may call it and the handler; the
//! name and argument count come from `xen_abi` (see `hv_core::hypercall`).
//! Handlers run with interrupts enabled on the guest stack, with the calling
//! domain locked, and return `Outcome::Done(eax)` or a continuation.

mod console;
pub mod descriptors;
mod domctl;
mod evtchn;
pub mod gnttab;
pub mod memory;
mod mm;

pub use mm::{audit_if_asked, finish_old_guest_table, write_cr3};
pub use sched::block_domain;
mod physdev;
mod sched;
mod traps;
mod vcpu;
pub mod version;

use core::sync::atomic::{AtomicU32, Ordering};
use hv_core::hypercall::{Access, Hypercall, Outcome, Table};

use spin::{MutexGuard, Once};
use xen_abi::domid::DomId;
use xen_abi::hypercall as nr;

use crate::arch::x86::cpu;
use crate::arch::x86::traps::TrapFrame;
use crate::arch::x86::uaccess::{read_guest, write_guest};
use crate::domain::{DOMAINS, Domain, DomainTable};
use xen_abi::errno::Errno;

/// What a handler works on: a copy of the caller's saved registers (written
/// back when the handler returns) and its locked domain.
pub struct Ctx {
    pub frame: TrapFrame,
    guard: MutexGuard<'static, DomainTable>,
    /// System time when this invocation started (for `preempt_due`).
    started_ns: u64,
}

impl Ctx {
    /// Xen's `hypercall_preempt_check()` between the entries of a batch:
    /// whether this invocation, having served `done` entries, has run long
    /// enough (`hv_core::hypercall::PREEMPT_AFTER_NS`) to yield with a
    /// continuation. A nested call (in a multicall) counts from the
    /// multicall's start.
    pub fn preempt_due(&self, done: u32) -> bool {
        preempt_since(self.started_ns, done)
    }

    /// System time when this invocation started.
    pub fn started_ns(&self) -> u64 {
        self.started_ns
    }

    /// The calling domain.
    pub fn dom(&mut self) -> &mut Domain {
        self.guard
            .current_mut()
            .expect("a hypercall always has a current domain")
    }

    /// The domain a `domid_t` argument names: `DOMID_SELF` or the caller's
    /// own id is the caller; another domain needs a privileged caller
    /// (`-EPERM`) and must exist and not be dying (`-ESRCH`).
    pub fn target(&mut self, id: DomId) -> Result<&mut Domain, Errno> {
        let me = self.dom();
        let (caller, privileged) = (me.domid, me.privileged);
        let id = if id == xen_abi::domid::DOMID_SELF {
            caller
        } else {
            id
        };
        if id != caller && !privileged {
            return Err(Errno::EPERM);
        }
        self.guard
            .get_mut(id)
            .filter(|d| !d.dying)
            .ok_or(Errno::ESRCH)
    }

    /// Every domain (for the calls that act on others: domctl, sysctl,
    /// inter-domain event channels).
    pub fn table(&mut self) -> &mut DomainTable {
        &mut self.guard
    }
}

static DECLS: [Hypercall<Ctx>; 29] = [
    Hypercall {
        nr: nr::GRANT_TABLE_OP,
        // Its GNTTABOP_dump_table is privileged (-EPERM in the handler).
        access: Access::Any,
        handler: gnttab::do_grant_table_op,
    },
    Hypercall {
        nr: nr::DOMCTL,
        access: Access::Privileged,
        handler: domctl::do_domctl,
    },
    Hypercall {
        nr: nr::SYSCTL,
        access: Access::Privileged,
        handler: domctl::do_sysctl,
    },
    Hypercall {
        nr: nr::NMI_OP,
        access: Access::Any,
        handler: traps::do_nmi_op,
    },
    Hypercall {
        nr: nr::SET_GDT,
        access: Access::Any,
        handler: descriptors::do_set_gdt,
    },
    Hypercall {
        nr: nr::UPDATE_DESCRIPTOR,
        access: Access::Any,
        handler: descriptors::do_update_descriptor,
    },
    Hypercall {
        nr: nr::PHYSDEV_OP,
        access: Access::Any,
        handler: physdev::do_physdev_op,
    },
    Hypercall {
        nr: nr::PHYSDEV_OP_COMPAT,
        access: Access::Any,
        handler: physdev::do_physdev_op_compat,
    },
    Hypercall {
        nr: nr::MEMORY_OP,
        access: Access::Any,
        handler: memory::do_memory_op,
    },
    Hypercall {
        nr: nr::SET_TIMER_OP,
        access: Access::Any,
        handler: sched::do_set_timer_op,
    },
    Hypercall {
        nr: nr::SCHED_OP_COMPAT,
        access: Access::Any,
        handler: sched::do_sched_op_compat,
    },
    Hypercall {
        nr: nr::VCPU_OP,
        access: Access::Any,
        handler: vcpu::do_vcpu_op,
    },
    Hypercall {
        nr: nr::EVENT_CHANNEL_OP,
        access: Access::Any,
        handler: evtchn::do_event_channel_op,
    },
    Hypercall {
        nr: nr::EVENT_CHANNEL_OP_COMPAT,
        access: Access::Any,
        handler: evtchn::do_event_channel_op_compat,
    },
    Hypercall {
        nr: nr::SET_TRAP_TABLE,
        access: Access::Any,
        handler: traps::do_set_trap_table,
    },
    Hypercall {
        nr: nr::STACK_SWITCH,
        access: Access::Any,
        handler: traps::do_stack_switch,
    },
    Hypercall {
        nr: nr::SET_CALLBACKS,
        access: Access::Any,
        handler: traps::do_set_callbacks,
    },
    Hypercall {
        nr: nr::FPU_TASKSWITCH,
        access: Access::Any,
        handler: traps::do_fpu_taskswitch,
    },
    Hypercall {
        nr: nr::IRET,
        access: Access::Any,
        handler: traps::do_iret,
    },
    Hypercall {
        nr: nr::CALLBACK_OP,
        access: Access::Any,
        handler: traps::do_callback_op,
    },
    Hypercall {
        nr: nr::MULTICALL,
        access: Access::Any,
        handler: do_multicall,
    },
    Hypercall {
        nr: nr::XEN_VERSION,
        access: Access::Any,
        handler: version::do_xen_version,
    },
    Hypercall {
        nr: nr::MMU_UPDATE,
        access: Access::Any,
        handler: mm::do_mmu_update,
    },
    Hypercall {
        nr: nr::UPDATE_VA_MAPPING,
        access: Access::Any,
        handler: mm::do_update_va_mapping,
    },
    Hypercall {
        nr: nr::CONSOLE_IO,
        // A domU may write (rate-limited); only dom0 reads (the handler).
        access: Access::Any,
        handler: console::do_console_io,
    },
    Hypercall {
        nr: nr::VM_ASSIST,
        access: Access::Any,
        handler: mm::do_vm_assist,
    },
    Hypercall {
        nr: nr::UPDATE_VA_MAPPING_OTHERDOMAIN,
        access: Access::Privileged,
        handler: mm::do_update_va_mapping_otherdomain,
    },
    Hypercall {
        nr: nr::MMUEXT_OP,
        access: Access::Any,
        handler: mm::do_mmuext_op,
    },
    Hypercall {
        nr: nr::SCHED_OP,
        access: Access::Any,
        handler: sched::do_sched_op,
    },
];

static TABLE: Once<Table<Ctx>> = Once::new();

fn table() -> &'static Table<Ctx> {
    TABLE.call_once(|| match Table::new(&DECLS) {
        Ok(t) => t,
        Err(e) => panic!("hypercall table is malformed: {e:?}"),
    })
}

/// Checks the table at boot and reports its size.
pub fn init() -> usize {
    let t = table();
    for e in t.iter() {
        log::debug!(
            "hypercall {:2} {} ({} args)",
            e.decl.nr,
            e.name(),
            e.nargs()
        );
    }
    t.iter().count()
}

/// [`Ctx::preempt_due`] for a handler that holds its domain borrowed.
pub fn preempt_since(started_ns: u64, done: u32) -> bool {
    done > 0 && hv_core::hypercall::preempt_due(started_ns, crate::time::now_ns(), done)
}

/// Entries a multicall runs before it yields.
const MULTICALL_PREEMPT: u32 = 64;

static CONTINUATIONS: AtomicU32 = AtomicU32::new(0);

/// Hypercalls preempted and re-executed so far.
pub fn continuations() -> u32 {
    CONTINUATIONS.load(Ordering::Relaxed)
}

/// `multicall(list, nr)` (XEN-PV-ABI.md §2.1): runs each entry as a hypercall
/// with its arguments and stores the result in the entry; a nested multicall
/// gets `-EINVAL`. Returns 0 unless the list cannot be read or written, or
/// an `iret` entry ends it (returning what the iret returns, as Xen). Long
/// lists yield every `MULTICALL_PREEMPT` entries or once the call has run
/// `PREEMPT_AFTER_NS`, and an entry whose own call
/// yields keeps its progress in its `args` while the multicall resumes at it.
fn do_multicall(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    use xen_abi::hypercall::MulticallEntry;
    let [list, count, ..] = args;
    let privileged = ctx.dom().privileged;
    let entry_size = core::mem::size_of::<MulticallEntry>() as u32;
    for i in 0..count {
        let va = list.wrapping_add(i.wrapping_mul(entry_size));
        if i == MULTICALL_PREEMPT || ctx.preempt_due(i) {
            return Outcome::Continue([va, count - i, 0, 0, 0]);
        }
        let mut entry: MulticallEntry = match read_guest(va) {
            Ok(e) => e,
            Err(e) => return Err(e).into(),
        };
        let result = if entry.op == nr::MULTICALL {
            Errno::EINVAL.to_ret()
        } else {
            let a = &entry.args;
            match table().dispatch(ctx, privileged, entry.op, [a[0], a[1], a[2], a[3], a[4]]) {
                Outcome::Done(v) => v,
                Outcome::Continue(next) => {
                    entry.args[..5].copy_from_slice(&next);
                    if let Err(e) = write_guest(va, &entry) {
                        return Err(e).into();
                    }
                    return Outcome::Continue([va, count - i, 0, 0, 0]);
                }
            }
        };
        entry.result = result as u32;
        if let Err(e) = write_guest(va, &entry) {
            return Err(e).into();
        }
        if entry.op == nr::IRET {
            // The guest is elsewhere now (Xen's `mc_exit`): what follows
            // the iret in the list is not run, and no continuation may
            // rewind an EIP the iret set.
            return Ok(result).into();
        }
    }
    Ok(0).into()
}

/// The length of `int $0x82`, which a continuation re-executes.
const INT82_LEN: u32 = 2;

/// Serves the hypercall whose registers are in `frame` (from the trap entry).
pub fn do_hypercall(frame: &mut TrapFrame) {
    let nr = frame.eax;
    let args = [frame.ebx, frame.ecx, frame.edx, frame.esi, frame.edi];
    let guard = DOMAINS.lock();
    let Some(privileged) = guard.current().map(|d| d.privileged) else {
        panic!("hypercall {nr} with no current domain");
    };
    let mut ctx = Ctx {
        frame: *frame,
        guard,
        started_ns: crate::time::now_ns(),
    };
    cpu::enable_interrupts();
    let outcome = table().dispatch(&mut ctx, privileged, nr, args);
    cpu::disable_interrupts();
    *frame = ctx.frame;
    drop(ctx);
    match outcome {
        Outcome::Done(v) => frame.eax = v as u32,
        Outcome::Continue(a) => {
            CONTINUATIONS.fetch_add(1, Ordering::Relaxed);
            [frame.ebx, frame.ecx, frame.edx, frame.esi, frame.edi] = a;
            frame.eip = frame.eip.wrapping_sub(INT82_LEN);
        }
    }
}
