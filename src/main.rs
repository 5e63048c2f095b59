//! Oxen: a type-1 paravirtualizing hypervisor for 32-bit x86 with PAE paging,
//! speaking the Xen PV ABI (`xen-3.0-x86_32p`).
//!
//! This file is bring-up, in order: descriptor tables, console, paging, boot
//! information, command line, memory (frames, heap, frame table), time, the
//! boot report, and then dom0 (or a plain statement that there is none).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod arch;
mod console;
mod domain;
mod hypercall;
mod mm;
mod panic;
mod report;
mod selftest;
mod time;

use hv_core::addr::PAGE_SIZE;
use hv_core::bootinfo::BootInfo;
use hv_core::cmdline;

use crate::arch::x86::{cpu, gdt, idt, paging, pic, traps};
use crate::mm::layout::DIRECT_MAP_VIRT;

core::arch::global_asm!(include_str!("../boot/header.S"), options(att_syntax));
core::arch::global_asm!(include_str!("../boot/entry.S"), options(att_syntax));
core::arch::global_asm!(include_str!("arch/x86/traps.S"), options(att_syntax));
core::arch::global_asm!(include_str!("arch/x86/uaccess.S"), options(att_syntax));
core::arch::global_asm!(include_str!("arch/x86/fpu.S"), options(att_syntax));

unsafe extern "C" {
    static __oxen_image_start: u8;
    static __oxen_image_end: u8;
    static oxen_boot_stack_top: u8;
}

/// Oxen's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Heap size at bring-up.
const HEAP_BYTES: u32 = 4 << 20;

/// Machine memory below 1 MiB stays out of the allocator (BIOS data, real-mode
/// IVT, EBDA, option ROMs).
const LOW_MEMORY_END: u64 = 1 << 20;

fn image_range() -> (u64, u64) {
    let start = core::ptr::addr_of!(__oxen_image_start) as u32;
    let end = core::ptr::addr_of!(__oxen_image_end) as u32;
    (
        u64::from(start - DIRECT_MAP_VIRT),
        u64::from(end - DIRECT_MAP_VIRT),
    )
}

/// Entered from boot/entry.S on the boot stack, paging on, interrupts off.
#[unsafe(no_mangle)]
pub extern "C" fn oxen_start(magic: u32, info: u32) -> ! {
    time::boot_started();
    let stack_top = core::ptr::addr_of!(oxen_boot_stack_top) as u32;
    let idle_cr3 = paging::image_maddr(&paging::IDLE_PG_L3) as u32;
    gdt::init(
        traps::double_fault_task as *const () as u32,
        idle_cr3,
        stack_top,
    );
    idt::init();
    pic::init();
    console::early_init();
    domain::pirq::init();
    paging::drop_identity_map();
    mm::mapcache::init();

    let boot = match BootInfo::from_multiboot(magic, info, &mm::mapcache::MachineMemory) {
        Ok(b) => b,
        Err(e) => panic!("cannot read the boot information (magic {magic:#x} at {info:#x}): {e}"),
    };
    let (opts, warnings) = cmdline::parse(&boot.cmdline);
    hypercall::version::set_command_line(&boot.cmdline);
    hypercall::memory::set_machine_memory_map(
        boot.memory_map
            .iter()
            .map(|r| (r.base, r.len, r.kind.e820_type())),
    );
    console::configure(opts.com1.as_ref(), opts.console.com1, opts.console.vga);
    console::set_log_level(opts.loglvl);
    console::configure_guest_log(opts.guest_loglvl, opts.guest_loglvl_rate_limited);
    panic::configure(opts.noreboot, opts.debug_exit);
    report::banner(&boot);
    for w in &warnings {
        log::warn!("{w}");
    }

    // Machine memory: everything usable minus low memory, Oxen's image, the
    // modules and the boot information.
    let image = image_range();
    let ram = boot.available_ranges();
    let mut max_mfn = ram.last().map_or(0, |&(_, end)| end.div_ceil(PAGE_SIZE));
    if max_mfn > mm::frames::MAX_MFN {
        log::warn!(
            "ignoring memory above {} GiB: the M2P describes machine frames below {:#x}",
            (mm::frames::MAX_MFN * PAGE_SIZE) >> 30,
            mm::frames::MAX_MFN
        );
        max_mfn = mm::frames::MAX_MFN;
    }
    let phys_bits = match cpu::phys_addr_width() {
        hv_core::sanitise::PhysAddrWidth::Known(bits) => bits,
        hv_core::sanitise::PhysAddrWidth::Probe => {
            let bits =
                hv_core::sanitise::probed_phys_addr_bits(mm::mapcache::machine_address_bit_usable);
            log::info!("PAE without PSE-36 or CPUID 0x80000008: probed {bits} address bits");
            bits
        }
    };
    let reachable = hv_core::sanitise::mfn_limit(phys_bits);
    crate::printk!(
        "Physical address width: {phys_bits} bits (machine frames below {reachable:#x})\n"
    );
    if max_mfn > reachable {
        log::warn!(
            "ignoring memory above {} MiB: the CPU addresses {phys_bits} bits",
            (reachable * PAGE_SIZE) >> 20
        );
        max_mfn = reachable;
    }
    mm::frames::init(
        max_mfn,
        ram.iter().copied(),
        [(0, LOW_MEMORY_END), image]
            .into_iter()
            .chain(boot.reserved_ranges()),
    );
    time::milestone("frame allocator");
    let heap = mm::heap::init(HEAP_BYTES);
    time::milestone("heap");
    mm::m2p::init(max_mfn);
    time::milestone("M2P");
    mm::frame_table::init(max_mfn, &ram);
    time::milestone("frame table");
    let tsc_hz = time::init();
    time::milestone("TSC calibrated");
    cpu::enable_interrupts();

    arch::x86::guest::init_stack();
    mm::enable_audit(opts.mm_audit, opts.mm_audit_every.unwrap_or(1));
    let dom0_bytes = report::memory(&boot, &opts, image, heap);
    let tick_check = report::cpu(tsc_hz);
    let hypercalls = hypercall::init();
    log::info!("Hypercall table: {hypercalls} hypercalls declared");
    arch::x86::fpu::init();
    selftest::run(&opts);
    report::modules(&boot);
    time::milestone("boot report");

    let Some(kernel) = boot.modules.first() else {
        report::timer(tick_check);
        crate::printk!("No dom0 kernel was given (no multiboot module): nothing to run.\n");
        panic::machine_halt()
    };
    let nr_pages = dom0_bytes / PAGE_SIZE;
    let dom0 = match domain::dom0::build(kernel, boot.modules.get(1), nr_pages) {
        Ok(d) => d,
        Err(e) => panic!("Could not set up DOM0 guest OS: {e}"),
    };
    time::milestone("dom0 built");
    crate::printk!("{}\n", dom0.summary);
    report::timer(tick_check);
    console::enable_input();
    crate::printk!(
        "Starting dom0 (ring 1): {} pages, shared_info {}.\n",
        mm::frame_table::tot_pages(0),
        dom0.domain.shared_info
    );
    domain::start_dom0(dom0.domain);
    time::milestone("entering dom0");
    arch::x86::guest::enter(&dom0.frame)
}
