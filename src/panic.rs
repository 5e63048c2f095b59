//! The fatal path: Rust panics and fatal traps end here.
//!
//! It prints the reason, the registers and the domain that was running, then
//! stops. Without `noreboot` the machine reboots after five seconds (as Xen
//! does); with it, Oxen halts. Under test, `debug_exit=<port>` makes QEMU exit
//! with status 3 (`(1 << 1) | 1`) instead.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use crate::arch::x86::cpu;

static NOREBOOT: AtomicBool = AtomicBool::new(false);
static DEBUG_EXIT_PORT: AtomicU16 = AtomicU16::new(0);
static IN_FATAL: AtomicBool = AtomicBool::new(false);

/// Value written to isa-debug-exit by a clean halt (QEMU exits with 1).
pub const DEBUG_EXIT_HALT: u32 = 0;
/// Value written to isa-debug-exit by the fatal path (QEMU exits with 3).
pub const DEBUG_EXIT_FATAL: u32 = 1;

/// Records `noreboot` and the test-only `debug_exit=` port.
pub fn configure(noreboot: bool, debug_exit_port: Option<u16>) {
    NOREBOOT.store(noreboot, Ordering::Relaxed);
    DEBUG_EXIT_PORT.store(debug_exit_port.unwrap_or(0), Ordering::Relaxed);
}

/// Stops the machine after a clean shutdown ("halted").
pub fn machine_halt() -> ! {
    crate::printk!("Oxen halted.\n");
    debug_exit(DEBUG_EXIT_HALT);
    cpu::halt_forever()
}

fn debug_exit(code: u32) {
    let port = DEBUG_EXIT_PORT.load(Ordering::Relaxed);
    if port != 0 {
        cpu::outl(port, code);
    }
}

/// Reports a fatal condition and stops or reboots. Never returns.
pub fn fatal(reason: fmt::Arguments<'_>) -> ! {
    cpu::disable_interrupts();
    if IN_FATAL.swap(true, Ordering::SeqCst) {
        // A fault while reporting a fault: say so briefly and stop.
        crate::console::print_fatal(format_args!(
            "\n*** fault on the fatal path; stopping ***\n"
        ));
        debug_exit(DEBUG_EXIT_FATAL);
        cpu::halt_forever();
    }
    crate::console::print_fatal(format_args!(
        "\n****************************************\nPanic on CPU 0:\n{}\nCurrent domain: {}\n****************************************\n",
        reason,
        crate::domain::CurrentDomain
    ));
    if NOREBOOT.load(Ordering::Relaxed) {
        crate::console::print_fatal(format_args!(
            "Manual reset required ('noreboot' specified)\n"
        ));
        debug_exit(DEBUG_EXIT_FATAL);
        cpu::halt_forever();
    }
    crate::console::print_fatal(format_args!("Reboot in five seconds...\n"));
    debug_exit(DEBUG_EXIT_FATAL);
    crate::time::delay_ms(5000);
    machine_restart()
}

/// Resets the machine: the 0xCF9 reset register, then the keyboard controller,
/// then a triple fault.
pub fn machine_restart() -> ! {
    cpu::outb(0xCF9, 0x02);
    cpu::outb(0xCF9, 0x06);
    for _ in 0..1000 {
        if cpu::inb(0x64) & 0x02 == 0 {
            break;
        }
    }
    cpu::outb(0x64, 0xFE);
    crate::time::delay_ms(100);
    // Triple fault: an empty IDT and a trap.
    let empty = crate::arch::x86::DescriptorTablePointer { limit: 0, base: 0 };
    // SAFETY: deliberately making the CPU reset; nothing runs after this.
    unsafe { core::arch::asm!("lidt [{}]", "int3", in(reg) &empty, options(noreturn)) }
}

/// Registers of the panicking context, read as close to the panic as we can.
struct PanicRegs {
    esp: u32,
    ebp: u32,
}

impl PanicRegs {
    #[inline(always)]
    fn capture() -> Self {
        let (esp, ebp): (u32, u32);
        // SAFETY: reading ESP and EBP has no side effect.
        unsafe {
            core::arch::asm!("mov {}, esp", "mov {}, ebp", out(reg) esp, out(reg) ebp, options(nomem, nostack))
        };
        Self { esp, ebp }
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let regs = PanicRegs::capture();
    fatal(format_args!(
        "Oxen panic: {}\nesp: {:08x}   ebp: {:08x}   cr0: {:08x}   cr2: {:08x}   cr3: {:08x}   cr4: {:08x}",
        info,
        regs.esp,
        regs.ebp,
        cpu::read_cr0(),
        cpu::read_cr2(),
        cpu::read_cr3(),
        cpu::read_cr4()
    ))
}
