//! The boot report: what Oxen found and decided, printed once at bring-up.
//! Tests read these lines; keep their wording stable.

use hv_core::bootinfo::{BootInfo, Loader};
use hv_core::cmdline::Options;
use xen_abi::selectors::{FLAT_RING1_CS, FLAT_RING1_DS, FLAT_RING3_CS, FLAT_RING3_DS};

use crate::arch::x86::cpu;
use crate::mm;
use crate::printk;

const MIB: u64 = 1 << 20;

/// Version, loader and command line, before anything else.
pub fn banner(boot: &BootInfo) {
    printk!(
        "Oxen {} (Xen PV ABI xen-3.0-x86_32p, 32-bit PAE)\n",
        crate::VERSION
    );
    let loader = match boot.loader {
        Loader::Multiboot1 => "multiboot1",
        Loader::Multiboot2 => "multiboot2",
    };
    if boot.loader_name.is_empty() {
        printk!("Loader: {loader}\n");
    } else {
        printk!("Loader: {loader} ({})\n", boot.loader_name);
    }
    printk!("Command line: {}\n", boot.cmdline);
}

/// The memory map, totals, and dom0's share (returned, in bytes).
pub fn memory(boot: &BootInfo, opts: &Options<'_>, image: (u64, u64), heap_bytes: u32) -> u64 {
    printk!("Parsed options: {}\n", opts);
    printk!("Physical memory map:\n");
    for r in &boot.memory_map {
        printk!(" {:016x} - {:016x} ({})\n", r.base, r.base + r.len, r.kind);
    }
    let total = boot.total_available();
    printk!(
        "Memory map total: {} MiB usable RAM ({} pages)\n",
        total / MIB,
        total / 4096
    );
    let (free, usable) = mm::frames::counts();
    let (xen, unowned, io) = mm::frame_table::census();
    printk!(
        "Oxen image: {:#x} - {:#x}; heap {} KiB ({} KiB in use); frame table for {} frames ({} Oxen's, {} free, {} I/O)\n",
        image.0,
        image.1,
        heap_bytes / 1024,
        mm::heap::usage().0.div_ceil(1024),
        mm::frame_table::nr_frames(),
        xen,
        unowned,
        io
    );
    printk!(
        "Free memory: {} MiB ({} of {} usable pages)\n",
        free * 4096 / MIB,
        free,
        usable
    );
    let dom0 = opts.dom0_mem.resolve(free * 4096);
    printk!(
        "dom0_mem: {} resolved to {} MiB ({} pages)\n",
        opts.dom0_mem,
        dom0 / MIB,
        dom0 / 4096
    );
    dom0
}

/// Clock and segmentation facts. The tick is checked later, by [`timer`],
/// so that the wait for it overlaps the dom0 build.
pub fn cpu(tsc_hz: u64) -> TickCheck {
    printk!(
        "TSC: {}.{:03} MHz\n",
        tsc_hz / 1_000_000,
        (tsc_hz / 1000) % 1000
    );
    let check = TickCheck {
        ticks: crate::time::ticks(),
        tsc: cpu::rdtsc(),
        tsc_hz,
    };
    // Read the guest flat segments back from the CPU: their limits are what
    // keeps ring 1 out of Oxen (QEMU's TCG does not enforce them on data).
    for (name, sel) in [
        ("FLAT_RING1_CS", FLAT_RING1_CS),
        ("FLAT_RING1_DS", FLAT_RING1_DS),
        ("FLAT_RING3_CS", FLAT_RING3_CS),
        ("FLAT_RING3_DS", FLAT_RING3_DS),
    ] {
        match (cpu::segment_limit(sel), cpu::segment_access_rights(sel)) {
            (Some(limit), Some(ar)) => log::info!(
                "GDT: {name} {sel:#06x} limit {limit:#010x} dpl {}",
                (ar >> 13) & 3
            ),
            _ => log::error!("GDT: {name} {sel:#06x} is not a valid selector"),
        }
    }
    check
}

/// The tick count and TSC when [`cpu`] reported, for [`timer`].
pub struct TickCheck {
    ticks: u64,
    tsc: u64,
    tsc_hz: u64,
}

/// Whether the periodic tick arrives: interrupts are on, so the tick count
/// must have advanced since [`cpu`]; waits (on the TSC) until two ticks came,
/// or 50 ms passed since then, and reports.
pub fn timer(check: TickCheck) {
    let limit = check.tsc_hz / 1000 * 50;
    while crate::time::ticks() - check.ticks < 2 && cpu::rdtsc() - check.tsc < limit {
        core::hint::spin_loop();
    }
    let ticks = crate::time::ticks() - check.ticks;
    let ms = hv_core::tsc::ticks_to_us(cpu::rdtsc() - check.tsc, check.tsc_hz).div_ceil(1000);
    if ticks == 0 {
        log::error!("Timer: no tick in {ms} ms (IRQ 0 not arriving)");
    } else {
        printk!(
            "Timer: {} Hz tick running ({ticks} ticks in {ms} ms)\n",
            crate::time::TICK_HZ
        );
    }
}

/// The modules the loader gave us.
pub fn modules(boot: &BootInfo) {
    printk!("Modules: {}\n", boot.modules.len());
    for (i, m) in boot.modules.iter().enumerate() {
        printk!(
            "Module {i}: {:#010x} - {:#010x} ({} KiB) '{}'\n",
            m.start,
            m.end,
            (m.end - m.start).div_ceil(1024),
            m.string
        );
    }
}
