//! Trap dispatch: what happens after a stub in traps.S saved the registers.
//!
//! The hypercall vector goes to the hypercall table; a PIC interrupt to its
//! handler; an exception from a guest is bounced to the guest (or crashes
//! its domain); an exception in Oxen on a guest-memory copy, a segment
//! load or the `iret` back to a guest resumes at its exception-table fixup
//! (the last two end in the guest's failsafe callback), and any other is a bug in
//! Oxen that stops the machine with a report (vector, error code,
//! registers, CR2, the domain). Every path back to a guest goes through
//! `events::return_to_guest`.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use super::cpu;
use super::idt::IRQ_BASE;

/// The registers saved on a trap, in Xen's `cpu_user_regs` order from `ebx` on,
/// with the data segments saved below them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    pub gs: u32,
    pub fs: u32,
    pub es: u32,
    pub ds: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub esi: u32,
    pub edi: u32,
    pub ebp: u32,
    pub eax: u32,
    pub error_code: u16,
    pub entry_vector: u16,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    /// Only pushed by the CPU when the trap came from ring 1 or 3.
    pub esp: u32,
    /// Only pushed by the CPU when the trap came from ring 1 or 3.
    pub ss: u32,
}

const _: () = assert!(core::mem::offset_of!(TrapFrame, ebx) == 16);
const _: () = assert!(core::mem::offset_of!(TrapFrame, eip) == 16 + 32);

impl TrapFrame {
    /// Whether the trap interrupted Oxen itself (ring 0).
    pub fn interrupted_hypervisor(&self) -> bool {
        self.cs & 3 == 0
    }

    /// The saved general register with x86 encoding number `reg` (0..8:
    /// eax, ecx, edx, ebx, esp, ebp, esi, edi).
    pub fn reg_mut(&mut self, reg: usize) -> &mut u32 {
        match reg & 7 {
            0 => &mut self.eax,
            1 => &mut self.ecx,
            2 => &mut self.edx,
            3 => &mut self.ebx,
            4 => &mut self.esp,
            5 => &mut self.ebp,
            6 => &mut self.esi,
            _ => &mut self.edi,
        }
    }

    /// The interrupted guest context, as trap delivery sees it.
    pub fn interrupted(&self) -> hv_core::bounce::Interrupted {
        hv_core::bounce::Interrupted {
            eip: self.eip,
            cs: self.cs as u16,
            eflags: self.eflags,
            esp: self.esp,
            ss: self.ss as u16,
            ds: self.ds as u16,
            es: self.es as u16,
            fs: self.fs as u16,
            gs: self.gs as u16,
        }
    }

    /// Resumes at `r` (the result of a bounce or an `iret`).
    pub fn resume(&mut self, r: &hv_core::bounce::Resume) {
        (self.eip, self.cs, self.eflags, self.esp, self.ss) =
            (r.eip, u32::from(r.cs), r.eflags, r.esp, u32::from(r.ss));
    }

    /// The stack pointer at the time of the trap.
    pub fn interrupted_esp(&self) -> u32 {
        if self.interrupted_hypervisor() {
            // No privilege change: the CPU pushed no ESP/SS; the interrupted
            // stack continues right where `esp` would have been.
            core::ptr::addr_of!(self.esp) as u32
        } else {
            self.esp
        }
    }
}

/// Mnemonics of the architectural exception vectors.
pub fn vector_name(vector: u16) -> &'static str {
    const NAMES: [&str; 22] = [
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
        "#CP control protection",
    ];
    NAMES
        .get(usize::from(vector))
        .copied()
        .unwrap_or("reserved")
}

/// The register dump printed by fatal traps and panics.
pub struct RegisterDump<'a> {
    pub frame: &'a TrapFrame,
    /// The stack pointer at the time of the trap.
    pub esp: u32,
}

impl fmt::Display for RegisterDump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.frame;
        writeln!(
            f,
            "EIP:    {:04x}:[<{:08x}>]  EFLAGS: {:08x}",
            r.cs, r.eip, r.eflags
        )?;
        writeln!(
            f,
            "eax: {:08x}   ebx: {:08x}   ecx: {:08x}   edx: {:08x}",
            r.eax, r.ebx, r.ecx, r.edx
        )?;
        writeln!(
            f,
            "esi: {:08x}   edi: {:08x}   ebp: {:08x}   esp: {:08x}",
            r.esi, r.edi, r.ebp, self.esp
        )?;
        writeln!(
            f,
            "cr0: {:08x}   cr2: {:08x}   cr3: {:08x}   cr4: {:08x}",
            cpu::read_cr0(),
            cpu::read_cr2(),
            cpu::read_cr3(),
            cpu::read_cr4()
        )?;
        write!(
            f,
            "ds: {:04x}   es: {:04x}   fs: {:04x}   gs: {:04x}   cs: {:04x}",
            r.ds, r.es, r.fs, r.gs, r.cs
        )
    }
}

/// Called by traps.S with interrupts off.
#[unsafe(no_mangle)]
extern "C" fn oxen_handle_trap(frame: &mut TrapFrame) {
    let vector = frame.entry_vector;
    // CR2 first: nothing below may fault before it is read.
    let cr2 = if vector == 14 { cpu::read_cr2() } else { 0 };
    if usize::from(vector) == super::idt::HYPERCALL_VECTOR {
        crate::hypercall::do_hypercall(frame);
        crate::domain::events::return_to_guest(frame);
        return;
    }
    if vector >= u16::from(IRQ_BASE) && vector < u16::from(IRQ_BASE) + 16 {
        let irq = (vector - u16::from(IRQ_BASE)) as u8;
        crate::time::handle_irq(irq);
        super::pic::eoi(irq);
        crate::domain::events::return_to_guest(frame);
        return;
    }
    match vector {
        // An NMI is the machine's (watchdog, I/O error), not the guest's fault.
        VECTOR_NMI => {
            log::warn!(
                "NMI received at {:#06x}:{:#010x}; ignored",
                frame.cs,
                frame.eip
            );
            return;
        }
        // A machine check is fatal for the machine, whoever was running.
        VECTOR_MC => fatal_trap(frame, cr2),
        _ => {}
    }
    if frame.interrupted_hypervisor() {
        // A fault on a guest-memory copy, or on a segment load or the iret
        // back to the guest: resume at its fixup.
        if matches!(vector, 11..=14)
            && let Some(fixup) = super::uaccess::search_exception_table(frame.eip)
        {
            LAST_FIXED_FAULT.store(
                u32::from(vector) << 16 | u32::from(frame.error_code),
                Ordering::Relaxed,
            );
            frame.eip = fixup;
            return;
        }
        fatal_trap(frame, cr2);
    }
    crate::domain::fault::guest_trap(frame, cr2);
    crate::domain::events::return_to_guest(frame);
}

/// Called by traps.S when a guest data selector cannot be reloaded on the
/// way back to the guest (ESP at `frame`, Oxen's selectors loaded).
#[unsafe(no_mangle)]
extern "C" fn oxen_segment_reload_failed(frame: &mut TrapFrame) {
    if frame.interrupted_hypervisor() {
        // Selectors of a frame back into Oxen itself: Oxen's bug.
        let fault = LAST_FIXED_FAULT.load(Ordering::Relaxed);
        frame.entry_vector = (fault >> 16) as u16;
        frame.error_code = fault as u16;
        fatal_trap(frame, 0);
    }
    crate::domain::fault::segment_reload_failed(frame);
    crate::domain::events::return_to_guest(frame);
}

/// Called by traps.S when its final `iret` to a guest faulted (a code or
/// stack selector gone bad, or an EIP beyond the code segment's limit): the
/// frame was saved again from the registers (ESP at `frame`, Oxen's
/// selectors loaded).
#[unsafe(no_mangle)]
extern "C" fn oxen_iret_failed(frame: &mut TrapFrame) {
    let fault = LAST_FIXED_FAULT.load(Ordering::Relaxed);
    if frame.interrupted_hypervisor() {
        // An iret back into Oxen itself faulted: Oxen's bug, not a guest's.
        frame.entry_vector = (fault >> 16) as u16;
        frame.error_code = fault as u16;
        fatal_trap(frame, 0);
    }
    crate::domain::fault::iret_failed(frame, (fault >> 16) as u16, fault as u16);
    crate::domain::events::return_to_guest(frame);
}

/// The vector (high half) and error code (low half) of the last fault that
/// resumed at an exception-table fixup, for the fixups that report it.
static LAST_FIXED_FAULT: AtomicU32 = AtomicU32::new(0);

/// The NMI vector.
const VECTOR_NMI: u16 = 2;
/// The machine-check vector.
const VECTOR_MC: u16 = 18;

fn fatal_trap(frame: &TrapFrame, cr2: u32) -> ! {
    let vector = frame.entry_vector;
    crate::panic::fatal(format_args!(
        "FATAL TRAP: vector = {} ({}), error code = {:#06x}{}\n{}",
        vector,
        vector_name(vector),
        frame.error_code,
        PageFaultDetail {
            vector,
            cr2,
            error_code: frame.error_code
        },
        RegisterDump {
            frame,
            esp: frame.interrupted_esp()
        }
    ))
}

struct PageFaultDetail {
    vector: u16,
    cr2: u32,
    error_code: u16,
}

impl fmt::Display for PageFaultDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vector != 14 {
            return Ok(());
        }
        let e = self.error_code;
        write!(
            f,
            "\nPage fault at CR2={:#010x}: {} {} in {} mode{}",
            self.cr2,
            if e & 1 != 0 {
                "protection violation"
            } else {
                "not-present page"
            },
            if e & 2 != 0 {
                "on write"
            } else if e & 16 != 0 {
                "on instruction fetch"
            } else {
                "on read"
            },
            if e & 4 != 0 { "user" } else { "supervisor" },
            if e & 8 != 0 {
                " (reserved bit set)"
            } else {
                ""
            }
        )
    }
}

/// The double-fault task: runs on its own TSS, stack and the idle page table,
/// and reports the state the CPU saved in the main TSS.
pub extern "C" fn double_fault_task() -> ! {
    // SAFETY: the CPU wrote the faulting context into the main TSS during the
    // task switch; nothing else runs any more, so reading it is race-free.
    let t = unsafe { &*super::gdt::TSS.get() };
    let frame = TrapFrame {
        gs: t.gs,
        fs: t.fs,
        es: t.es,
        ds: t.ds,
        ebx: t.ebx,
        ecx: t.ecx,
        edx: t.edx,
        esi: t.esi,
        edi: t.edi,
        ebp: t.ebp,
        eax: t.eax,
        error_code: 0,
        entry_vector: 8,
        eip: t.eip,
        cs: t.cs,
        eflags: t.eflags,
        esp: t.esp,
        ss: t.ss,
    };
    crate::panic::fatal(format_args!(
        "FATAL TRAP: vector = 8 (#DF double fault), esp at fault = {:#010x}\n{}",
        t.esp,
        RegisterDump {
            frame: &frame,
            esp: t.esp
        }
    ))
}
