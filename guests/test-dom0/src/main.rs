//! test-dom0: an initial domain that checks what Oxen gives a PV kernel at boot
//! and the validated PV MMU, printing one line per check (`check NAME: ok` or
//! `check NAME: FAILED ...`), then a summary, then powers off.
//!
//! It runs on the bootstrap page tables the dom0 builder made (XEN-PV-ABI.md
//! §4.3): the region at VIRT_BASE maps pfns one-to-one, page-table frames are
//! read-only, and the padding after the boot stack (mapped one-to-one to pfns
//! nothing uses) serves as scratch mappings. Frames past the region are free
//! for building new tables.
//!
//! The command line picks the mode: `bench` runs the micro-benchmarks
//! (bench.rs) instead of the checks; `test=fault`, `test=bad-handler`,
//! `test=ptwr-refused` and `test=bad-stack-selector` misbehave on purpose so
//! that Oxen crashes the domain;
//! `test=console-input` waits for a line typed on the console (events.rs).
//! Otherwise the checks run family by family in the order `main` calls
//! them: boot.rs (start_info, xen_version), mm.rs (the PV MMU, memory_op),
//! traps.rs and descriptors.rs, events.rs (with time.rs), domains.rs (with
//! grants.rs and isolation.rs for the domU it runs). helpers.rs holds what
//! they share: the check counter and what the test knows about its memory.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

mod bench;
mod boot;
mod descriptors;
mod domains;
mod events;
mod grants;
mod helpers;
mod idle;
mod isolation;
mod mm;
mod pirq;
mod time;
mod traps;

use helpers::{Checks, Mem, PAGE};
use pvrt::mm::vm_assist;
use pvrt::{StartInfo, println};
use xen_abi::traps::{VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES};

pvrt::guest_main!(main);

fn main(si: &'static StartInfo) -> ! {
    println!("test-dom0: started");
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };
    let stack_end = si.pt_base + si.nr_pt_frames * PAGE + PAGE;
    let region_end = (stack_end + 512 * 1024).next_multiple_of(4 << 20);
    let mem = Mem {
        si,
        scratch: stack_end,
        first_free_pfn: (region_end - pvrt::VIRT_BASE) / PAGE,
    };

    let cmdline = core::str::from_utf8(si.cmd_line()).unwrap_or("");
    if cmdline.split_whitespace().any(|w| w == "test=hello") {
        // The boot-time bench's guest: one line, then power off.
        println!("test-dom0: hello");
        pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    }
    if cmdline.split_whitespace().any(|w| w == "test=fault") {
        // Asked to misbehave: a page fault with no trap handler. Oxen must
        // report it and crash this domain, not itself.
        println!("test-dom0: reading unmapped address 0x1000");
        // SAFETY: deliberately faulting.
        let v = unsafe { (0x1000 as *const u32).read_volatile() };
        println!("test-dom0: read returned {v:#x}");
    }
    if cmdline.split_whitespace().any(|w| w == "bench") {
        bench::bench(&mem);
        pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    }
    if cmdline.split_whitespace().any(|w| w == "test=bad-handler") {
        // Asked to misbehave: a #BP handler inside the hypervisor hole, then
        // an int3. Oxen must crash this domain, not fault on its own iret.
        let table = [
            pvrt::traps::entry(3, 3, 0xF700_0000),
            xen_abi::traps::TrapInfo::default(),
        ];
        let _ = pvrt::traps::set_trap_table(&table);
        println!("test-dom0: int3 with a handler in the hypervisor hole");
        // SAFETY: traps to Oxen, which must refuse to run the handler.
        unsafe { core::arch::asm!("int3") };
        println!("test-dom0: int3 returned");
    }
    if cmdline.split_whitespace().any(|w| w == "test=ptwr-refused") {
        // Asked to misbehave: a direct store that would map one of our own L1
        // tables writable. Oxen must refuse to emulate it; with no trap
        // handler the fault then crashes this domain.
        let _ = vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES);
        let va = mem.scratch_va(62);
        let maddr = mem.l1e_maddr(va);
        let l1 = (maddr >> 12) as u32;
        let entry_va = mem.va_of_mfn(l1) + (maddr & 0xFFF) as u32;
        println!("test-dom0: storing a writable mapping of L1 {l1:#x} into itself");
        // SAFETY: a store to a read-only L1 entry, which Oxen must refuse.
        unsafe { (entry_va as *mut u32).write_volatile((l1 << 12) | 0x63) };
        println!("test-dom0: the store was accepted");
    }
    if cmdline
        .split_whitespace()
        .any(|w| w == "test=bad-stack-selector")
    {
        // Asked to misbehave: the stack selector goes away under the
        // hypercall that removes it. Oxen must crash this domain, not
        // fault on its own iret.
        descriptors::stack_selector_goes_bad(&mem);
    }
    if cmdline
        .split_whitespace()
        .any(|w| w == "test=console-input")
    {
        events::console_input(&mem);
    }
    boot::boot_state(&mut c, &mem);
    boot::version(&mut c);
    mm::memory(&mut c, &mem);
    mm::oxen_frames(&mut c, &mem);
    traps::traps(&mut c, &mem);
    descriptors::descriptors(&mut c, &mem);
    events::events(&mut c, &mem);
    pirq::pirqs(&mut c, &mem);
    idle::idle_is_nobodys_time(&mut c, &mem);
    mm::mappings(&mut c, &mem);
    mm::more_mmu_ops(&mut c, &mem);
    domains::domains(&mut c, &mem);
    domains::run_domu(&mut c, &mem);
    mm::multicall(&mut c, &mem);
    mm::new_page_tables(&mut c, &mem);
    mm::writable_pagetables(&mut c, &mem);
    mm::bad_input(&mut c, &mem);
    mm::l3_entries(&mut c, &mem);
    mm::long_batch(&mut c, &mem);
    mm::pin_unpin_batch(&mut c, &mem);
    mm::pin_big_l3_preempted(&mut c, &mem);
    domains::destroy_in_steps(&mut c, &mem);
    mm::l3_above_4gib(&mut c, &mem);

    println!("test-dom0: {} passed, {} failed", c.passed, c.failed);
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    panic!("shutdown returned");
}
