//! test-dom0: an initial domain that checks what Oxen gives a PV kernel at boot
//! and the validated PV MMU, printing one line per check (`check NAME: ok` or
//! `check NAME: FAILED ...`), then a summary, then powers off.
//!
//! It runs on the bootstrap page tables the dom0 builder made (XEN-PV-ABI.md
//! §4.3): the region at VIRT_BASE maps pfns one-to-one, page-table frames are
//! read-only, and the padding after the boot stack (mapped one-to-one to pfns
//! nothing uses) serves as scratch mappings. Frames past the region are free
//! for building new tables.
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

use core::fmt;

use pvrt::mm::{
    mfn_to_pfn, mmu_update, mmuext, mmuext_op, pfn_to_mfn, pfn_to_va, update_va_mapping,
    update_va_mapping_otherdomain, vm_assist,
};
use pvrt::{StartInfo, println};
use xen_abi::domid::{DOMID_IO, DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::mm::{
    MMU_MACHPHYS_UPDATE, MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD, MMUEXT_CLEAR_PAGE,
    MMUEXT_COPY_PAGE, MMUEXT_INVLPG_LOCAL, MMUEXT_NEW_BASEPTR, MMUEXT_NEW_USER_BASEPTR,
    MMUEXT_PIN_L1_TABLE, MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE,
    MMUEXT_SET_LDT, MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_UNPIN_TABLE, MmuUpdate, MmuextOp, UVMF_ALL,
    UVMF_INVLPG, UVMF_TLB_FLUSH,
};
use xen_abi::start_info::{SIF_INITDOMAIN, SIF_PRIVILEGED};
use xen_abi::traps::{VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES};

const P: u64 = 1;
const RW: u64 = 2;
const US: u64 = 4;
const A: u64 = 0x20;
const D: u64 = 0x40;
const FRAME: u64 = 0x000F_FFFF_FFFF_F000;
const PAGE: u32 = 4096;
/// A frame of Oxen's own image (machine address 1 MiB): never dom0's.
const OXEN_IMAGE_MFN: u32 = 0x100;

pvrt::guest_main!(main);

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
            println!("check {name}: ok");
        } else {
            self.failed += 1;
            println!("check {name}: FAILED ({detail})");
        }
    }

    fn ok<T: fmt::Debug>(&mut self, name: &str, r: Result<T, Errno>) {
        self.check(name, r.is_ok(), format_args!("{r:?}"));
    }

    fn err<T: fmt::Debug>(&mut self, name: &str, r: Result<T, Errno>, want: Errno) {
        self.check(
            name,
            matches!(r, Err(e) if e == want),
            format_args!("got {r:?}, want {want}"),
        );
    }
}

/// What the test knows about its own memory.
struct Mem<'a> {
    si: &'a StartInfo,
    /// First scratch VA (the padding after the boot stack).
    scratch: u32,
    /// First pfn not in the bootstrap region.
    first_free_pfn: u32,
}

impl Mem<'_> {
    fn mfn(&self, pfn: u32) -> u32 {
        pfn_to_mfn(self.si, pfn).expect("pfn in range")
    }

    fn scratch_va(&self, i: u32) -> u32 {
        assert!(i < 64, "scratch slots are the first 256 KiB of the padding");
        self.scratch + i * PAGE
    }

    /// The virtual address of a frame of the bootstrap region.
    fn va_of_mfn(&self, mfn: u32) -> u32 {
        pfn_to_va(mfn_to_pfn(mfn))
    }

    /// The machine address of the bootstrap L1 entry that maps `va`.
    fn l1e_maddr(&self, va: u32) -> u64 {
        let l3 = self.si.pt_base as *const u64;
        // SAFETY: pt_base and the L2s are mapped read-only in the bootstrap region.
        let l3e = unsafe { l3.add((va >> 30) as usize).read_volatile() };
        let l2 = self.va_of_mfn(((l3e & FRAME) >> 12) as u32) as *const u64;
        // SAFETY: as above.
        let l2e = unsafe { l2.add(((va >> 21) & 511) as usize).read_volatile() };
        (l2e & FRAME) + u64::from((va >> 12) & 511) * 8
    }

    /// Reads the current bootstrap L1 entry for `va`.
    fn l1e(&self, va: u32) -> u64 {
        let maddr = self.l1e_maddr(va);
        let l1 = self.va_of_mfn((maddr >> 12) as u32) as *const u64;
        // SAFETY: bootstrap L1s are mapped read-only in the region.
        unsafe { l1.add(((maddr & 0xFFF) / 8) as usize).read_volatile() }
    }

    fn map(&self, va: u32, mfn: u32, rw: bool) -> Result<u32, Errno> {
        let pte = (u64::from(mfn) << 12) | P | A | if rw { RW | D } else { 0 };
        update_va_mapping(va, pte, UVMF_INVLPG)
    }

    fn unmap(&self, va: u32) -> Result<u32, Errno> {
        update_va_mapping(va, 0, UVMF_INVLPG)
    }
}

fn pte(mfn: u32, flags: u64) -> u64 {
    (u64::from(mfn) << 12) | flags
}

fn normal(maddr: u64, val: u64) -> MmuUpdate {
    MmuUpdate::new(MMU_NORMAL_PT_UPDATE, maddr, val)
}

fn self_dom() -> u32 {
    u32::from(DOMID_SELF)
}

fn read_u32(va: u32) -> u32 {
    // SAFETY: callers pass a VA they just mapped.
    unsafe { (va as *const u32).read_volatile() }
}

fn write_u32(va: u32, v: u32) {
    // SAFETY: callers pass a VA they just mapped writable.
    unsafe { (va as *mut u32).write_volatile(v) }
}

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
        bench(&mem);
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
        .any(|w| w == "test=console-input")
    {
        console_input(&mem);
    }
    boot_state(&mut c, &mem);
    version(&mut c);
    memory(&mut c, &mem);
    traps(&mut c, &mem);
    descriptors(&mut c, &mem);
    events(&mut c, &mem);
    mappings(&mut c, &mem);
    more_mmu_ops(&mut c, &mem);
    domains(&mut c, &mem);
    run_domu(&mut c, &mem);
    multicall(&mut c, &mem);
    new_page_tables(&mut c, &mem);
    writable_pagetables(&mut c, &mem);
    bad_input(&mut c, &mem);
    long_batch(&mut c, &mem);

    println!("test-dom0: {} passed, {} failed", c.passed, c.failed);
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    panic!("shutdown returned");
}

/// start_info, the P2M/M2P, the initrd and shared_info as the builder left them.
fn boot_state(c: &mut Checks, mem: &Mem<'_>) {
    let si = mem.si;
    c.check(
        "start_info.magic",
        si.magic_is_valid(),
        format_args!("{:?}", si.magic()),
    );
    let want = SIF_PRIVILEGED | SIF_INITDOMAIN;
    c.check(
        "start_info.flags",
        si.flags & want == want,
        format_args!("{:#x}", si.flags),
    );
    println!(
        "test-dom0: nr_pages={} nr_pt_frames={} pt_base={:#x}",
        si.nr_pages, si.nr_pt_frames, si.pt_base
    );
    c.check(
        "start_info.nr_pages",
        si.nr_pages > mem.first_free_pfn,
        format_args!("{}", si.nr_pages),
    );
    c.check(
        "start_info.pt_base",
        si.pt_base > pvrt::VIRT_BASE && si.pt_base.is_multiple_of(PAGE),
        format_args!("{:#x}", si.pt_base),
    );
    c.check(
        "start_info.nr_pt_frames",
        si.nr_pt_frames >= 6,
        format_args!("{}", si.nr_pt_frames),
    );
    let cmdline = si.cmd_line();
    let cmdline = core::str::from_utf8(cmdline).unwrap_or("<not utf-8>");
    println!("test-dom0: cmd_line='{cmdline}'");
    c.check(
        "start_info.cmd_line",
        cmdline.contains("console=hvc0"),
        format_args!("{cmdline:?}"),
    );

    let mut bad = 0;
    for pfn in 0..si.nr_pages {
        if mfn_to_pfn(mem.mfn(pfn)) != pfn {
            bad += 1;
        }
    }
    c.check(
        "p2m_m2p_consistent",
        bad == 0,
        format_args!("{bad} pfns disagree"),
    );

    // The initrd: the test fixture holds byte i = i % 251.
    let ok = si.mod_len > 0
        && (0..si.mod_len)
            .step_by(509)
            .chain([si.mod_len - 1])
            .all(|i| {
                // SAFETY: the initrd is mapped in the bootstrap region at mod_start.
                let b = unsafe { ((si.mod_start + i) as *const u8).read_volatile() };
                b == (i % 251) as u8
            });
    c.check(
        "initrd_contents",
        ok,
        format_args!("mod_start={:#x} mod_len={}", si.mod_start, si.mod_len),
    );

    // shared_info: not mapped at boot; map it from its machine address.
    let va = mem.scratch_va(0);
    c.ok("map_shared_info", mem.map(va, si.shared_info >> 12, true));
    // SAFETY: just mapped; vcpu_info[0].evtchn_upcall_mask is byte 1.
    let mask = unsafe { ((va + 1) as *const u8).read_volatile() };
    c.check("shared_info.upcall_mask", mask == 1, format_args!("{mask}"));
    c.ok("unmap_shared_info", mem.unmap(va));
}

/// `xen_version`: every sub-op, and the errors.
fn version(c: &mut Checks) {
    use pvrt::hypercall::xen_version;
    use xen_abi::version::*;
    // Each call below passes a buffer as large as its sub-op writes.
    let v = unsafe { xen_version(XENVER_VERSION, core::ptr::null_mut()) };
    c.check(
        "xen_version_version",
        v == Ok(0x0004_0001),
        format_args!("{v:x?}"),
    );
    let mut buf = [0u8; 1024];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_CAPABILITIES, buf.as_mut_ptr()) };
    let caps = cstr(&buf);
    c.check(
        "xen_version_capabilities",
        r.is_ok() && caps == "xen-3.0-x86_32p",
        format_args!("{r:?} {:?}", caps),
    );
    let mut extra = [0u8; 16];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_EXTRAVERSION, extra.as_mut_ptr()) };
    c.check(
        "xen_version_extraversion",
        r.is_ok() && cstr(&extra).starts_with(".0-oxen"),
        format_args!("{:?}", cstr(&extra)),
    );
    let mut info = [0u8; 144];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_COMPILE_INFO, info.as_mut_ptr()) };
    c.check(
        "xen_version_compile_info",
        r.is_ok() && cstr(&info[..64]).starts_with("rustc"),
        format_args!("{r:?}"),
    );
    let mut cs = [0u8; 64];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_CHANGESET, cs.as_mut_ptr()) };
    c.check(
        "xen_version_changeset",
        r.is_ok() && cstr(&cs).starts_with("oxen"),
        format_args!("{r:?}"),
    );
    let mut vs = 0u32;
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_PLATFORM_PARAMETERS, &mut vs as *mut u32 as *mut u8) };
    c.check(
        "xen_version_platform_parameters",
        r.is_ok() && vs == 0xF580_0000,
        format_args!("{r:?} {vs:#x}"),
    );
    let mut fi = [0u32, 0];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GET_FEATURES, fi.as_mut_ptr() as *mut u8) };
    // Oxen keeps L3s below 4 GiB and has no grant tables yet: exactly these two.
    let want = (1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD) | (1 << XENFEAT_HIGHMEM_ASSIST);
    c.check(
        "xen_version_get_features",
        r.is_ok() && fi[1] == want,
        format_args!("{r:?} {:#x}", fi[1]),
    );
    let mut fi = [1u32, 0xFFFF];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GET_FEATURES, fi.as_mut_ptr() as *mut u8) };
    c.check(
        "xen_version_get_features_submap1",
        r.is_ok() && fi[1] == 0,
        format_args!("{r:?} {:#x}", fi[1]),
    );
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_PAGESIZE, core::ptr::null_mut()) };
    c.check("xen_version_pagesize", r == Ok(4096), format_args!("{r:?}"));
    let mut h = [0xAAu8; 16];
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_GUEST_HANDLE, h.as_mut_ptr()) };
    c.check(
        "xen_version_guest_handle",
        r.is_ok() && h == [0; 16],
        format_args!("{r:?}"),
    );
    // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
    let r = unsafe { xen_version(XENVER_COMMANDLINE, buf.as_mut_ptr()) };
    let cl = cstr(&buf);
    c.check(
        "xen_version_commandline",
        r.is_ok() && cl.contains("dom0_mem="),
        format_args!("{r:?} {:?}", cl),
    );
    c.err(
        "xen_version_unknown_cmd",
        // SAFETY: the buffer passed is as large as the sub-op writes (or null where it takes none).
        unsafe { xen_version(99, core::ptr::null_mut()) },
        Errno::ENOSYS,
    );
    c.err(
        "xen_version_buffer_in_hole",
        // SAFETY: a pointer into the hypervisor hole on purpose: Oxen must refuse it.
        unsafe { xen_version(XENVER_CAPABILITIES, 0xF580_0000 as *mut u8) },
        Errno::EFAULT,
    );
}

/// A NUL-terminated byte string from the hypervisor, as `&str`.
fn cstr(b: &[u8]) -> &str {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    core::str::from_utf8(&b[..n]).unwrap_or("<not utf-8>")
}

/// update_va_mapping, mmu_update and MACHPHYS_UPDATE on ordinary frames.
fn mappings(c: &mut Checks, mem: &Mem<'_>) {
    let frame = mem.mfn(mem.first_free_pfn);
    let (va_rw, va_ro) = (mem.scratch_va(1), mem.scratch_va(2));
    c.ok("update_va_mapping_rw", mem.map(va_rw, frame, true));
    write_u32(va_rw, 0x0DE0_0DE0);
    c.ok("update_va_mapping_ro_alias", mem.map(va_ro, frame, false));
    c.check(
        "alias_sees_write",
        read_u32(va_ro) == 0x0DE0_0DE0,
        format_args!("{:#x}", read_u32(va_ro)),
    );
    c.ok("unmap_alias", mem.unmap(va_ro));
    c.check(
        "unmapped_entry_is_clear",
        mem.l1e(va_ro) == 0,
        format_args!("{:#x}", mem.l1e(va_ro)),
    );

    // The same through mmu_update, as a batch of two.
    let reqs = [
        normal(mem.l1e_maddr(va_ro), pte(frame, P | A)),
        normal(mem.l1e_maddr(mem.scratch_va(3)), pte(frame, P | RW | A | D)),
    ];
    let (r, done) = mmu_update(&reqs, self_dom());
    c.check(
        "mmu_update_batch",
        r.is_ok() && done == 2,
        format_args!("{r:?} done={done}"),
    );
    c.check(
        "mmu_update_mapped",
        read_u32(va_ro) == 0x0DE0_0DE0,
        format_args!("{:#x}", read_u32(va_ro)),
    );

    // PRESERVE_AD keeps the accessed/dirty bits the CPU set.
    write_u32(mem.scratch_va(3), 7);
    let (r, _) = mmu_update(
        &[MmuUpdate::new(
            MMU_PT_UPDATE_PRESERVE_AD,
            mem.l1e_maddr(mem.scratch_va(3)),
            pte(frame, P | RW),
        )],
        self_dom(),
    );
    let e = mem.l1e(mem.scratch_va(3));
    c.check(
        "mmu_update_preserve_ad",
        r.is_ok() && e & (A | D) == (A | D),
        format_args!("{r:?} entry={e:#x}"),
    );

    // MACHPHYS_UPDATE: point the M2P entry elsewhere and back.
    let pfn = mem.first_free_pfn;
    let m2p = |v: u32| MmuUpdate::new(MMU_MACHPHYS_UPDATE, u64::from(frame) << 12, u64::from(v));
    let r1 = mmu_update(&[m2p(0x1234)], self_dom()).0;
    let seen = mfn_to_pfn(frame);
    let r2 = mmu_update(&[m2p(pfn)], self_dom()).0;
    c.check(
        "machphys_update",
        r1.is_ok() && r2.is_ok() && seen == 0x1234 && mfn_to_pfn(frame) == pfn,
        format_args!("{r1:?} {r2:?} seen={seen:#x}"),
    );

    c.ok("tlb_flush_local", mmuext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0));
    c.ok("invlpg_local", mmuext(MMUEXT_INVLPG_LOCAL, va_rw, 0));
    for i in 1..4 {
        let _ = mem.unmap(mem.scratch_va(i));
    }
}

/// The remaining MMU operations and flags: other-domain mappings, flush
/// scopes, page clearing and copying, I/O frames, LDT registration.
fn more_mmu_ops(c: &mut Checks, mem: &Mem<'_>) {
    let (va, va2) = (mem.scratch_va(50), mem.scratch_va(51));
    let (f1, f2) = (
        mem.mfn(mem.first_free_pfn + 30),
        mem.mfn(mem.first_free_pfn + 31),
    );
    let rw = |f: u32| pte(f, P | RW | A | D);
    c.ok(
        "uvmf_tlb_flush",
        update_va_mapping(va, rw(f1), UVMF_TLB_FLUSH),
    );
    c.ok(
        "uvmf_invlpg_all",
        update_va_mapping(va, rw(f1), UVMF_INVLPG | UVMF_ALL),
    );
    let mask: u32 = 1;
    c.ok(
        "uvmf_multi_mask",
        update_va_mapping(va, rw(f1), UVMF_INVLPG | (&mask as *const u32 as u32)),
    );
    c.err(
        "uvmf_multi_mask_in_hole",
        update_va_mapping(va, rw(f1), UVMF_INVLPG | 0xFF00_0000),
        Errno::EFAULT,
    );
    c.ok(
        "update_va_mapping_otherdomain_self",
        update_va_mapping_otherdomain(va2, rw(f2), UVMF_INVLPG, DOMID_SELF),
    );
    c.ok(
        "update_va_mapping_otherdomain_dom0",
        update_va_mapping_otherdomain(va2, rw(f2), UVMF_INVLPG, 0),
    );
    c.err(
        "update_va_mapping_otherdomain_no_such_domain",
        update_va_mapping_otherdomain(va2, rw(f2), UVMF_INVLPG, 7),
        Errno::ESRCH,
    );
    let (r, _) = mmu_update(&[normal(mem.l1e_maddr(va2), rw(f2))], 9);
    c.err("mmu_update_foreign_no_such_domain", r, Errno::ESRCH);

    // CLEAR_PAGE and COPY_PAGE work on frames by number.
    write_u32(va, 0x1234_5678);
    write_u32(va2, 0);
    c.ok("copy_page", mmuext(MMUEXT_COPY_PAGE, f2, f1));
    c.check(
        "copy_page_copied",
        read_u32(va2) == 0x1234_5678,
        format_args!("{:#x}", read_u32(va2)),
    );
    c.ok("clear_page", mmuext(MMUEXT_CLEAR_PAGE, f1, 0));
    c.check(
        "clear_page_cleared",
        read_u32(va) == 0,
        format_args!("{:#x}", read_u32(va)),
    );
    c.err(
        "clear_page_foreign",
        mmuext(MMUEXT_CLEAR_PAGE, OXEN_IMAGE_MFN, 0),
        Errno::EINVAL,
    );
    c.err(
        "new_user_baseptr",
        mmuext(MMUEXT_NEW_USER_BASEPTR, f1, 0),
        Errno::EINVAL,
    );

    // dom0 has I/O privilege: it may map a frame that is not RAM (VGA text at
    // 0xB8000) with FD = DOMID_IO.
    let (r, _) = mmu_update(
        &[normal(mem.l1e_maddr(va2), pte(0xB8, P | RW | A | D))],
        u32::from(DOMID_IO),
    );
    c.ok("map_io_frame", r);
    c.ok("unmap_io_frame", mem.unmap(va2));

    // The kernel image is mapped writable: it cannot become a descriptor page.
    c.err(
        "set_ldt_on_writable_memory",
        mmuext(MMUEXT_SET_LDT, 0xC000_0000, 16),
        Errno::EINVAL,
    );
    c.ok("set_ldt_none", mmuext(MMUEXT_SET_LDT, 0, 0));
    c.err(
        "set_ldt_misaligned",
        mmuext(MMUEXT_SET_LDT, 0xC000_0008, 16),
        Errno::EINVAL,
    );
    c.err(
        "set_ldt_too_many",
        mmuext(MMUEXT_SET_LDT, 0xC000_0000, 8193),
        Errno::EINVAL,
    );
    c.err(
        "set_ldt_into_hole",
        mmuext(MMUEXT_SET_LDT, 0xF57F_F000, 1024),
        Errno::EINVAL,
    );
    let _ = mem.unmap(va);
}

/// `multicall`: each entry runs as its own hypercall and gets its result.
fn multicall(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{MULTICALL, MulticallEntry, UPDATE_VA_MAPPING, XEN_VERSION};
    let va = mem.scratch_va(52);
    let frame = mem.mfn(mem.first_free_pfn + 32);
    let map = pte(frame, P | RW | A | D);
    let ops = [MmuextOp::new(MMUEXT_TLB_FLUSH_LOCAL, 0, 0)];
    let e = |op: u32, args: [u32; 6]| MulticallEntry {
        op,
        result: 0xDEAD,
        args,
    };
    let mut list = [
        e(
            UPDATE_VA_MAPPING,
            [va, map as u32, (map >> 32) as u32, UVMF_INVLPG, 0, 0],
        ),
        e(
            xen_abi::hypercall::MMUEXT_OP,
            [ops.as_ptr() as u32, 1, 0, self_dom(), 0, 0],
        ),
        e(XEN_VERSION, [0; 6]),
        e(11, [0; 6]),
        e(MULTICALL, [0; 6]),
        e(UPDATE_VA_MAPPING, [va, 0, 0, UVMF_INVLPG, 0, 0]),
    ];
    // SAFETY: the list is read and written for its length.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            MULTICALL,
            [list.as_mut_ptr() as u32, list.len() as u32, 0, 0, 0],
        )
    });
    let results: [i32; 6] = core::array::from_fn(|i| list[i].result as i32);
    c.check(
        "multicall",
        r == Ok(0) && results == [0, 0, 0x0004_0001, -38, -22, 0],
        format_args!("{r:?} {results:?}"),
    );
    // SAFETY: a bad pointer on purpose.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(MULTICALL, [0xF580_0000, 1, 0, 0, 0])
    });
    c.err("multicall_list_in_hole", r, Errno::EFAULT);

    // A list longer than Oxen runs in one go, and an entry whose own call is
    // preempted (a 3000-entry mmu_update): both resume transparently.
    static mut LONG: [MulticallEntry; 100] = [MulticallEntry {
        op: XEN_VERSION,
        result: 0,
        args: [0; 6],
    }; 100];
    static mut BATCH: [MmuUpdate; 3000] = [MmuUpdate::new(0, 0, 0); 3000];
    // SAFETY: one vcpu; only this function touches LONG and BATCH.
    let (long, batch) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(LONG),
            &mut *core::ptr::addr_of_mut!(BATCH),
        )
    };
    let slot = mem.l1e_maddr(va);
    for (i, r) in batch.iter_mut().enumerate() {
        *r = normal(slot, if i % 2 == 0 { map } else { 0 });
    }
    let mut done = 0u32;
    long[50] = e(
        xen_abi::hypercall::MMU_UPDATE,
        [
            batch.as_ptr() as u32,
            batch.len() as u32,
            &mut done as *mut u32 as u32,
            self_dom(),
            0,
            0,
        ],
    );
    // SAFETY: both lists are valid for their lengths.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            MULTICALL,
            [long.as_mut_ptr() as u32, long.len() as u32, 0, 0, 0],
        )
    });
    let all_ok = long
        .iter()
        .enumerate()
        .all(|(i, e)| e.result == if i == 50 { 0 } else { 0x0004_0001 });
    c.check(
        "multicall_long_and_preempted",
        r == Ok(0) && all_ok && done == 3000,
        format_args!("{r:?} done={done} ok={all_ok}"),
    );
}

/// Builds a new address space (new L3 and a new slot-3 L2 sharing the
/// bootstrap L1s), pins it, switches to it and back, and unpins it.
fn new_page_tables(c: &mut Checks, mem: &Mem<'_>) {
    let si = mem.si;
    let (l3_pfn, l2_pfn) = (mem.first_free_pfn + 1, mem.first_free_pfn + 2);
    let (l3_mfn, l2_mfn) = (mem.mfn(l3_pfn), mem.mfn(l2_pfn));
    let (l3_va, l2_va) = (mem.scratch_va(10), mem.scratch_va(11));
    let boot_l3 = si.pt_base as *const u64;
    // SAFETY: the bootstrap L3 is mapped read-only at pt_base.
    let boot_l3e = |i: usize| unsafe { boot_l3.add(i).read_volatile() };
    let boot_l2 = mem.va_of_mfn(((boot_l3e(3) & FRAME) >> 12) as u32) as *const u64;

    c.ok(
        "map_new_tables_rw",
        mem.map(l3_va, l3_mfn, true)
            .and(mem.map(l2_va, l2_mfn, true)),
    );
    // SAFETY: both frames are mapped writable at l3_va/l2_va; boot_l2 is readable.
    unsafe {
        core::ptr::write_bytes(l3_va as *mut u8, 0, PAGE as usize);
        core::ptr::write_bytes(l2_va as *mut u8, 0, PAGE as usize);
        for i in 0..428 {
            (l2_va as *mut u64)
                .add(i)
                .write_volatile(boot_l2.add(i).read_volatile());
        }
        for i in 0..3 {
            (l3_va as *mut u64).add(i).write_volatile(boot_l3e(i));
        }
        (l3_va as *mut u64).add(3).write_volatile(pte(l2_mfn, P));
    }
    // Pinning while a writable mapping exists must fail.
    c.err(
        "pin_while_writable",
        mmuext(MMUEXT_PIN_L3_TABLE, l3_mfn, 0),
        Errno::EINVAL,
    );
    c.ok("unmap_new_tables", mem.unmap(l3_va).and(mem.unmap(l2_va)));
    c.ok("pin_l3", mmuext(MMUEXT_PIN_L3_TABLE, l3_mfn, 0));
    c.err(
        "pin_l3_twice",
        mmuext(MMUEXT_PIN_L3_TABLE, l3_mfn, 0),
        Errno::EINVAL,
    );
    c.err(
        "map_pinned_l2_writable",
        mem.map(l2_va, l2_mfn, true),
        Errno::EINVAL,
    );
    c.ok("map_pinned_l2_readonly", mem.map(l2_va, l2_mfn, false));
    c.ok("new_baseptr", mmuext(MMUEXT_NEW_BASEPTR, l3_mfn, 0));
    // Still alive on the new tables: the kernel and stack are reachable.
    let probe = mem.first_free_pfn + 3;
    c.ok(
        "map_on_new_tables",
        mem.map(mem.scratch_va(12), mem.mfn(probe), true),
    );
    write_u32(mem.scratch_va(12), 42);
    c.check(
        "write_on_new_tables",
        read_u32(mem.scratch_va(12)) == 42,
        format_args!("{}", read_u32(mem.scratch_va(12))),
    );
    c.ok("unmap_on_new_tables", mem.unmap(mem.scratch_va(12)));
    let boot_l3_mfn = pfn_to_mfn(si, (si.pt_base - pvrt::VIRT_BASE) / PAGE).unwrap_or(0);
    c.ok(
        "new_baseptr_back",
        mmuext(MMUEXT_NEW_BASEPTR, boot_l3_mfn, 0),
    );
    c.ok("unmap_l2_view", mem.unmap(l2_va));
    c.ok("unpin_l3", mmuext(MMUEXT_UNPIN_TABLE, l3_mfn, 0));
    // Unpinned and unused: the frames are ordinary memory again.
    c.ok("remap_old_l3_writable", mem.map(l3_va, l3_mfn, true));
    c.ok("unmap_old_l3", mem.unmap(l3_va));

    // Pin an L1 and an L2 directly as well.
    let l1_mfn = mem.mfn(mem.first_free_pfn + 4);
    c.ok("pin_l1", mmuext(MMUEXT_PIN_L1_TABLE, l1_mfn, 0));
    c.ok("unpin_l1", mmuext(MMUEXT_UNPIN_TABLE, l1_mfn, 0));
    c.ok("pin_l2", mmuext(MMUEXT_PIN_L2_TABLE, l1_mfn, 0));
    c.ok("unpin_l2", mmuext(MMUEXT_UNPIN_TABLE, l1_mfn, 0));
}

/// `writable_pagetables`: plain stores to a (read-only) L1 are emulated.
fn writable_pagetables(c: &mut Checks, mem: &Mem<'_>) {
    c.ok(
        "vm_assist_writable_pagetables",
        vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_WRITABLE_PAGETABLES),
    );
    let va = mem.scratch_va(20);
    let frame = mem.mfn(mem.first_free_pfn + 5);
    let maddr = mem.l1e_maddr(va);
    let entry_va = mem.va_of_mfn((maddr >> 12) as u32) + (maddr & 0xFFF) as u32;
    let new = pte(frame, P | RW | A | D);
    // Two 32-bit stores, high half first (as a PAE kernel's set_pte does).
    // SAFETY: entry_va is the L1 entry's read-only mapping; the store faults and
    // Oxen emulates it.
    unsafe {
        core::arch::asm!("mov [{p} + 4], {hi}", "mov [{p}], {lo}", p = in(reg) entry_va,
                         hi = in(reg) (new >> 32) as u32, lo = in(reg) new as u32)
    };
    c.check(
        "ptwr_mov_entry",
        mem.l1e(va) == new,
        format_args!("{:#x}", mem.l1e(va)),
    );
    write_u32(va, 0xFEED);
    c.check(
        "ptwr_mapping_works",
        read_u32(va) == 0xFEED,
        format_args!("{:#x}", read_u32(va)),
    );
    // cmpxchg8b: swap the entry for a read-only one.
    let ro = pte(frame, P | A);
    let (lo, hi): (u32, u32);
    // SAFETY: as above, with LOCK CMPXCHG8B; ESI is saved and restored by hand
    // because Rust reserves it on x86.
    unsafe {
        core::arch::asm!(
            "push esi", "mov esi, {p}", "lock cmpxchg8b [esi]", "pop esi",
            p = in(reg) entry_va, inout("eax") new as u32 => lo, inout("edx") (new >> 32) as u32 => hi,
            in("ebx") ro as u32, in("ecx") (ro >> 32) as u32,
        )
    };
    let _ = (lo, hi);
    c.check(
        "ptwr_cmpxchg8b",
        mem.l1e(va) & !(A | D) == ro & !(A | D),
        format_args!("{:#x}", mem.l1e(va)),
    );
    // A store that would map one of our page tables writable is refused: the
    // entry stays as it was (the guest would get the fault; we check the entry).
    c.ok("ptwr_cleanup", mem.unmap(va));
}

/// Every bad input gets Xen's errno and changes nothing.
fn bad_input(c: &mut Checks, mem: &Mem<'_>) {
    let si = mem.si;
    let va = mem.scratch_va(30);
    let slot = mem.l1e_maddr(va);
    c.err(
        "map_foreign_frame",
        mem.map(va, OXEN_IMAGE_MFN, false),
        Errno::EINVAL,
    );
    let (r, done) = mmu_update(&[normal(slot, pte(OXEN_IMAGE_MFN, P))], self_dom());
    c.check(
        "mmu_update_foreign_frame",
        r == Err(Errno::EINVAL) && done == 0,
        format_args!("{r:?} done={done}"),
    );
    let own_l1 = (mem.l1e_maddr(va) >> 12) as u32;
    c.err(
        "map_own_l1_writable",
        mem.map(va, own_l1, true),
        Errno::EINVAL,
    );
    c.ok("map_own_l1_readonly", mem.map(va, own_l1, false));
    c.ok("unmap_own_l1", mem.unmap(va));
    c.check(
        "entry_clean_after_errors",
        mem.l1e(va) == 0,
        format_args!("{:#x}", mem.l1e(va)),
    );

    // The Xen slots of the slot-3 L2 and slot 3 of the L3 are off limits.
    let boot_l3_mfn = pfn_to_mfn(si, (si.pt_base - pvrt::VIRT_BASE) / PAGE).unwrap_or(0);
    // SAFETY: the bootstrap L3 is mapped read-only at pt_base.
    let l3e3 = unsafe { (si.pt_base as *const u64).add(3).read_volatile() };
    let l2_slot3 = l3e3 & FRAME;
    let (r, _) = mmu_update(
        &[normal(
            l2_slot3 + 428 * 8,
            pte(mem.mfn(mem.first_free_pfn + 6), P | RW | US | A | D),
        )],
        self_dom(),
    );
    c.err("l2_write_into_xen_slot", r, Errno::EINVAL);
    let (r, _) = mmu_update(
        &[normal((u64::from(boot_l3_mfn) << 12) + 24, l3e3)],
        self_dom(),
    );
    c.err("l3_slot3_rewrite", r, Errno::EINVAL);

    // An L3 entry must point at an L2: a frame that is mapped writable can't be one.
    let data = mem.mfn(mem.first_free_pfn + 7);
    c.ok("map_data_rw", mem.map(va, data, true));
    let (r, _) = mmu_update(
        &[normal(u64::from(boot_l3_mfn) << 12, pte(data, P))],
        self_dom(),
    );
    c.err("l3_to_non_l2", r, Errno::EINVAL);
    c.err(
        "new_baseptr_non_l3",
        mmuext(MMUEXT_NEW_BASEPTR, data, 0),
        Errno::EINVAL,
    );
    c.err(
        "pin_l1_while_writable",
        mmuext(MMUEXT_PIN_L1_TABLE, data, 0),
        Errno::EINVAL,
    );
    c.ok("unmap_data", mem.unmap(va));
    c.err(
        "unpin_not_pinned",
        mmuext(MMUEXT_UNPIN_TABLE, data, 0),
        Errno::EINVAL,
    );
    c.err(
        "pin_l4",
        mmuext(MMUEXT_PIN_L4_TABLE, data, 0),
        Errno::EINVAL,
    );
    c.err(
        "pin_foreign_frame",
        mmuext(MMUEXT_PIN_L1_TABLE, OXEN_IMAGE_MFN, 0),
        Errno::EINVAL,
    );

    // Malformed machine addresses.
    let (r, _) = mmu_update(&[normal(slot + 4, 0)], self_dom());
    c.err("mmu_update_misaligned_ptr", r, Errno::EINVAL);
    let (r, _) = mmu_update(&[normal(0xF_FFFF_F000, 0)], self_dom());
    c.err("mmu_update_ptr_out_of_range", r, Errno::EINVAL);
    // Bits 44-62 are reserved in every entry (PAT and the cache bits are
    // allowed for dom0, which has I/O privilege).
    let (r, _) = mmu_update(
        &[normal(
            slot,
            pte(mem.mfn(mem.first_free_pfn + 8), P) | (1 << 52),
        )],
        self_dom(),
    );
    c.err("l1_reserved_bit", r, Errno::EINVAL);
    let (r, _) = mmu_update(
        &[normal(
            slot,
            pte(mem.mfn(mem.first_free_pfn + 8), P | (1 << 8)),
        )],
        self_dom(),
    );
    c.err("l1_global_bit", r, Errno::EINVAL);
    c.err(
        "update_va_mapping_in_hole",
        update_va_mapping(0xF580_0000, 0, 0),
        Errno::EINVAL,
    );

    // A batch with a bad entry in the middle: the good ones before it apply,
    // `done` says how many, the rest are untouched.
    let f = |i: u32| mem.mfn(mem.first_free_pfn + 10 + i);
    let vas = [
        mem.scratch_va(31),
        mem.scratch_va(32),
        mem.scratch_va(33),
        mem.scratch_va(34),
    ];
    // The padding is mapped at boot (one-to-one to unused pfns): clear it first.
    for v in vas {
        let _ = mem.unmap(v);
    }
    let reqs = [
        normal(mem.l1e_maddr(vas[0]), pte(f(0), P | A)),
        normal(mem.l1e_maddr(vas[1]), pte(f(1), P | A)),
        normal(mem.l1e_maddr(vas[2]), pte(OXEN_IMAGE_MFN, P | A)),
        normal(mem.l1e_maddr(vas[3]), pte(f(3), P | A)),
    ];
    let (r, done) = mmu_update(&reqs, self_dom());
    let applied = [
        mem.l1e(vas[0]) != 0,
        mem.l1e(vas[1]) != 0,
        mem.l1e(vas[2]) != 0,
        mem.l1e(vas[3]) != 0,
    ];
    c.check(
        "batch_stops_at_bad_entry",
        r == Err(Errno::EINVAL) && done == 2 && applied == [true, true, false, false],
        format_args!("{r:?} done={done} applied={applied:?}"),
    );
    for v in vas {
        let _ = mem.unmap(v);
    }

    // Pointers into the hypervisor hole.
    // SAFETY: deliberately bad pointers; Oxen must refuse them, not follow them.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::MMU_UPDATE,
            [0xF580_0000, 1, 0, self_dom(), 0],
        )
    });
    c.err("mmu_update_reqs_in_hole", r, Errno::EFAULT);
    // SAFETY: as above (the `done` pointer).
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::MMU_UPDATE,
            [reqs.as_ptr() as u32, 1, 0xFF00_0000, self_dom(), 0],
        )
    });
    c.err("mmu_update_done_in_hole", r, Errno::EFAULT);
    let _ = mem.unmap(vas[0]);
    // SAFETY: as above.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(xen_abi::hypercall::CONSOLE_IO, [0, 16, 0xFF00_0000, 0, 0])
    });
    c.err("console_io_buffer_in_hole", r, Errno::EFAULT);
    let ops = [MmuextOp::new(MMUEXT_TLB_FLUSH_LOCAL, 0, 0)];
    let (r, _) = mmuext_op(&ops, self_dom());
    c.ok("mmuext_op_after_faults", r);

    // Numbers nobody serves.
    for nr in [11u32, 50, 63, 100] {
        // SAFETY: no pointers.
        let r = pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(nr, [0; 5]) });
        c.err("unknown_hypercall", r, Errno::ENOSYS);
    }
}

/// A batch far longer than Oxen serves in one go: it is preempted and resumed
/// (continuation) transparently, and `done` counts every entry.
fn long_batch(c: &mut Checks, mem: &Mem<'_>) {
    const N: usize = 5000;
    let va = mem.scratch_va(40);
    let slot = mem.l1e_maddr(va);
    let frame = mem.mfn(mem.first_free_pfn + 20);
    static mut REQS: [MmuUpdate; N] = [MmuUpdate::new(0, 0, 0); N];
    // SAFETY: one vcpu, and only this function touches REQS.
    let reqs = unsafe { &mut *core::ptr::addr_of_mut!(REQS) };
    for (i, r) in reqs.iter_mut().enumerate() {
        *r = normal(slot, if i % 2 == 0 { pte(frame, P | A) } else { 0 });
    }
    reqs[N - 1] = normal(slot, pte(frame, P | A));
    let (r, done) = mmu_update(reqs, self_dom());
    c.check(
        "long_batch",
        r.is_ok() && done == N as u32 && mem.l1e(va) & FRAME == u64::from(frame) << 12,
        format_args!("{r:?} done={done}"),
    );
    let _ = mem.unmap(va);
}

fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Prints `bench NAME ops=N tsc_per_op=T` for `cargo xtask bench`.
fn report(name: &str, ops: u64, start: u64) {
    let per = (rdtsc() - start) / ops.max(1);
    println!("bench {name} ops={ops} tsc_per_op={per}");
}

/// Micro-benchmarks of the PV MMU path, run instead of the checks when the
/// command line says `bench`.
fn bench(mem: &Mem<'_>) {
    use xen_abi::sched::SCHEDOP_YIELD;
    let va = mem.scratch_va(60);
    let frame = mem.mfn(mem.first_free_pfn + 40);
    let slot = mem.l1e_maddr(va);

    const N: u64 = 20_000;
    let t = rdtsc();
    for _ in 0..N {
        // SAFETY: no pointers.
        unsafe { pvrt::hypercall::raw(xen_abi::hypercall::SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]) };
    }
    report("hypercall_round_trip", N, t);

    const M: u64 = 2_000;
    let t = rdtsc();
    for _ in 0..M {
        let _ = mem.map(va, frame, true);
        let _ = mem.unmap(va);
    }
    report("update_va_mapping", 2 * M, t);

    // One batch of 512 entries, alternately mapping and unmapping one slot.
    let mut reqs = [MmuUpdate::new(0, 0, 0); 512];
    for (i, r) in reqs.iter_mut().enumerate() {
        *r = normal(
            slot,
            if i % 2 == 0 {
                pte(frame, P | RW | A | D)
            } else {
                0
            },
        );
    }
    const B: u64 = 40;
    let t = rdtsc();
    for _ in 0..B {
        let _ = mmu_update(&reqs, self_dom());
    }
    report("mmu_update_batch_entry", B * reqs.len() as u64, t);

    let t = rdtsc();
    for _ in 0..M {
        let _ = mmuext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0);
    }
    report("mmuext_tlb_flush", M, t);
}

// Trap handlers for `traps()`: each counts its vector, records the error code
// where there is one, and resumes past the instruction that trapped.
core::arch::global_asm!(
    r#"
    .data
    .balign 4
    .global td_counts
td_counts:          /* #PF, #GP, #BP, int 0x81, #NM, failsafe, int 0x80, vector 15 */
    .long 0, 0, 0, 0, 0, 0, 0, 0
    .global td_gp_skip
td_gp_skip:         /* bytes the #GP handler skips */
    .long 2
    .global td_int80_frame
td_int80_frame:     /* CS word and EFLAGS of the last int $0x80 frame */
    .long 0, 0
td_user_saved_esp:
    .long 0
    .global td_errors
td_errors:          /* #PF, #GP error codes */
    .long 0, 0
    .global td_failsafe_segs
td_failsafe_segs:   /* DS, ES, FS, GS of the last failsafe frame */
    .long 0, 0, 0, 0

    .text
    .global td_pf_handler
td_pf_handler:      /* [error code][eip][cs|mask<<16][eflags] */
    incl    td_counts
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_errors
    popl    %eax
    addl    $4, %esp
    addl    $2, (%esp)          /* skip the 2-byte load that faulted */
    jmp     hypercall_page + 23 * 32   /* return with the iret hypercall */

    .global td_gp_handler
td_gp_handler:
    incl    td_counts + 4
    pushl   %eax
    movl    4(%esp), %eax
    movl    %eax, td_errors + 4
    movl    td_gp_skip, %eax
    addl    %eax, 8(%esp)       /* skip the instruction (`int $0x40`: 2) */
    popl    %eax
    addl    $4, %esp
    iret

    .global td_v15_handler
td_v15_handler:
    incl    td_counts + 28
    iret

    .global td_bp_handler
td_bp_handler:
    incl    td_counts + 8
    iret

    .global td_soft_handler
td_soft_handler:
    incl    td_counts + 12
    iret

    .global td_nm_handler
td_nm_handler:
    incl    td_counts + 16
    iret

    /* void td_run_user(u32 eip, u32 esp): runs ring-3 code at eip (with
     * events masked) until it executes `int $0x80`, whose handler below
     * comes back here. */
    .global td_run_user
td_run_user:
    pushl   %ebp
    pushl   %ebx
    pushl   %esi
    pushl   %edi
    movl    %esp, td_user_saved_esp
    movl    20(%esp), %eax
    movl    24(%esp), %ecx
    pushl   $0xE033             /* SS: FLAT_USER_SS */
    pushl   %ecx                /* ESP */
    pushl   $0x2                /* EFLAGS: IF clear, so upcall_mask = 1 */
    pushl   $0xE02B             /* CS: FLAT_USER_CS */
    pushl   %eax                /* EIP */
    jmp     hypercall_page + 23 * 32

    /* int $0x80 from ring 3, on the stack_switch stack: [EIP][CS][EFLAGS]
     * [ESP][SS]. Records the CS word and EFLAGS, then returns from
     * td_run_user. Data selectors are null after a return to ring 3. */
    .global td_int80_handler
td_int80_handler:
    movl    $0xE021, %eax       /* FLAT_KERNEL_DS */
    movl    %eax, %ds
    movl    %eax, %es
    movl    4(%esp), %eax
    movl    %eax, td_int80_frame
    movl    8(%esp), %eax
    movl    %eax, td_int80_frame + 4
    incl    td_counts + 24
    movl    td_user_saved_esp, %esp
    popl    %edi
    popl    %esi
    popl    %ebx
    popl    %ebp
    ret

    /* The failsafe callback: [DS][ES][FS][GS][EIP][CS|mask<<16][EFLAGS],
     * entered with null data selectors, so the stack (SS) is all it may use
     * until it loads a data selector of its own. */
    .global td_failsafe_handler
td_failsafe_handler:
    pushl   %eax
    movl    $0xE021, %eax       /* FLAT_KERNEL_DS */
    movl    %eax, %ds
    movl    %eax, %es
    popl    %eax
    incl    td_counts + 20
    popl    td_failsafe_segs
    popl    td_failsafe_segs + 4
    popl    td_failsafe_segs + 8
    popl    td_failsafe_segs + 12
    iret
    "#,
    options(att_syntax)
);

// A tiny second domain, run by `run_domu`: at 0x1000 in its own address
// space, it puts 2.0 on the FPU stack, yields 50 times (dom0 runs between,
// with 3.0 on its own FPU stack), checks the value, says so on the console
// and powers off.
core::arch::global_asm!(
    r#"
    .section .rodata
    .global td_domu_code_start, td_domu_code_end
td_domu_code_start:
    fld1
    fld1
    faddp
    movl    $50, %esi
1:  movl    $29, %eax           /* sched_op */
    movl    $0, %ebx            /* SCHEDOP_yield */
    int     $0x82
    decl    %esi
    jnz     1b
    fistpl  0x2000
    cmpl    $2, 0x2000
    jne     2f
    movl    $18, %eax           /* console_io */
    movl    $0, %ebx            /* CONSOLEIO_write */
    movl    $(td_domu_msg_end - td_domu_msg), %ecx
    movl    $(0x1000 + td_domu_msg - td_domu_code_start), %edx
    int     $0x82
2:  movl    %edi, 0x2008        /* evtchn_send.port: dom0 gave it in EDI */
    movl    $32, %eax           /* event_channel_op */
    movl    $4, %ebx            /* EVTCHNOP_send */
    movl    $0x2008, %ecx
    int     $0x82
    movl    %eax, 0x2010
    movl    $0, 0x2014          /* bind_interdomain: remote_dom 0 ... */
    movl    $1, 0x2018          /* ... port 1, which dom0 never offered */
    movl    $32, %eax
    movl    $0, %ebx            /* EVTCHNOP_bind_interdomain */
    movl    $0x2014, %ecx
    int     $0x82
    movl    %eax, 0x2020
    movl    $36, %eax           /* domctl: not for a domU */
    movl    $0x2100, %ebx
    int     $0x82
    movl    %eax, 0x2024
    /* map_grant_ref of dom0's grant 8, which grants to another domain */
    movl    $0x4000, 0x2200     /* host_addr (low, high) */
    movl    $0, 0x2204
    movl    $2, 0x2208          /* GNTMAP_host_map */
    movl    $8, 0x220c          /* ref */
    movl    $0, 0x2210          /* dom 0; status */
    movl    $20, %eax           /* grant_table_op */
    movl    $0, %ebx            /* GNTTABOP_map_grant_ref */
    movl    $0x2200, %ecx
    movl    $1, %edx
    int     $0x82
    movswl  0x2212, %eax
    movl    %eax, 0x2028
    movl    $0, 0x2004          /* sched_shutdown.reason = poweroff */
    movl    $29, %eax
    movl    $2, %ebx            /* SCHEDOP_shutdown */
    movl    $0x2004, %ecx
    int     $0x82
3:  jmp     3b
td_domu_msg:
    .ascii "domU: a second domain ran; its FPU value survived 50 switches\n"
td_domu_msg_end:
td_domu_code_end:
    .text
    "#,
    options(att_syntax)
);

fn gnttab<T>(cmd: u32, op: &mut T) -> Result<u32, Errno> {
    hcall(
        xen_abi::hypercall::GRANT_TABLE_OP,
        [cmd, op as *mut T as u32, 1, 0, 0],
    )
}

/// Grant tables between the (stopped) domU `id` and dom0: dom0 sets up the
/// domU's table and writes its entries as the domU would (granting its data
/// page `data` to dom0), then maps, copies and unmaps, with the errors on the
/// way; a granter cannot go while its grant is mapped.
fn grants(c: &mut Checks, mem: &Mem<'_>, id: DomId, data: u32) {
    use xen_abi::domctl::*;
    use xen_abi::grant::*;
    let mut frames = [0u32; 1];
    let mut st = GnttabSetupTable {
        dom: id,
        nr_frames: 1,
        frame_list: frames.as_mut_ptr() as u32,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_SETUP_TABLE, &mut st);
    c.check(
        "gnttab_setup_table_other_domain",
        r.is_ok() && st.status == GNTST_OKAY && frames[0] != 0,
        format_args!("{r:?} status {} frame {:#x}", st.status, frames[0]),
    );
    let mut big = GnttabSetupTable {
        dom: id,
        nr_frames: 64,
        frame_list: frames.as_mut_ptr() as u32,
        ..Default::default()
    };
    let _ = gnttab(GNTTABOP_SETUP_TABLE, &mut big);
    c.check(
        "gnttab_setup_table_too_big",
        big.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", big.status),
    );
    let mut q = GnttabQuerySize {
        dom: id,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_QUERY_SIZE, &mut q);
    c.check(
        "gnttab_query_size",
        r.is_ok() && q.status == GNTST_OKAY && q.nr_frames == 1 && q.max_nr_frames >= 4,
        format_args!("{r:?} {} of {}", q.nr_frames, q.max_nr_frames),
    );
    // The domU's entries (written by dom0 through a foreign mapping).
    let gva = mem.scratch_va(54);
    let entries = gva as *mut GrantEntryV1;
    let mapped =
        update_va_mapping_otherdomain(gva, pte(frames[0], P | RW | A | D), UVMF_INVLPG, id);
    c.ok("gnttab_frame_mapped_writable", mapped);
    let entry = |i: usize| {
        // SAFETY: the grant frame is mapped at `gva`; i < 512.
        unsafe { entries.add(i).read_volatile() }
    };
    // SAFETY: as above.
    unsafe {
        entries.add(8).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: 0,
            frame: data,
        });
        entries.add(9).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS | GTF_READONLY,
            domid: 0,
            frame: data,
        });
        entries.add(10).write_volatile(GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS,
            domid: 5,
            frame: data,
        });
    }
    let hva = mem.scratch_va(55);
    // Read-only mappings go one page up (a map replaces what the PTE held).
    let map = |gref: u32, flags: u32| {
        let mut m = GnttabMapGrantRef {
            host_addr: u64::from(if flags & GNTMAP_READONLY != 0 {
                hva + 4096
            } else {
                hva
            }),
            flags,
            gref,
            dom: id,
            ..Default::default()
        };
        let _ = gnttab(GNTTABOP_MAP_GRANT_REF, &mut m);
        m
    };
    let m = map(8, GNTMAP_HOST_MAP);
    // SAFETY: mapped by the grant at `hva` if the status is okay.
    let seen = if m.status == GNTST_OKAY {
        unsafe { (hva as *const u32).read_volatile() }
    } else {
        0
    };
    c.check(
        "gnttab_map_grant_ref",
        m.status == GNTST_OKAY && seen == 2 && m.dev_bus_addr == u64::from(data) << 12,
        format_args!("status {} word {seen}", m.status),
    );
    c.check(
        "gnttab_mapped_entry_in_use",
        entry(8).flags & (GTF_READING | GTF_WRITING) == GTF_READING | GTF_WRITING,
        format_args!("flags {:#x}", entry(8).flags),
    );
    let other = map(10, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_grant_for_another_domain",
        other.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", other.status),
    );
    let beyond = map(100_000, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_bad_gntref",
        beyond.status == GNTST_BAD_GNTREF,
        format_args!("status {}", beyond.status),
    );
    let noflags = map(8, 0);
    c.check(
        "gnttab_map_without_host_or_device",
        noflags.status == GNTST_BAD_GNTREF,
        format_args!("status {}", noflags.status),
    );
    let unmap = |host: u32, handle: u32| {
        let mut u = GnttabUnmapGrantRef {
            host_addr: u64::from(host),
            handle,
            ..Default::default()
        };
        let _ = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut u);
        u.status
    };
    let ro = map(9, GNTMAP_HOST_MAP | GNTMAP_READONLY);
    let ro_done = unmap(hva + 4096, ro.handle);
    c.check(
        "gnttab_readonly_map_and_unmap",
        ro.status == GNTST_OKAY
            && ro_done == GNTST_OKAY
            && entry(9).flags == GTF_PERMIT_ACCESS | GTF_READONLY,
        format_args!(
            "map {} unmap {} flags {:#x}",
            ro.status,
            ro_done,
            entry(9).flags
        ),
    );
    let ro_rw = map(9, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_readonly_grant_mapped_writable",
        ro_rw.status == GNTST_GENERAL_ERROR,
        format_args!("status {}", ro_rw.status),
    );
    // A copy out of the grant into a page of dom0's.
    let own = mem.mfn(mem.first_free_pfn + 59);
    let mut cp = GnttabCopy {
        source: GnttabCopyPtr {
            u: 8,
            domid: id,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: own,
            domid: xen_abi::domid::DOMID_SELF,
            offset: 100,
        },
        len: 4,
        flags: GNTCOPY_SOURCE_GREF,
        ..Default::default()
    };
    let r = gnttab(GNTTABOP_COPY, &mut cp);
    let ova = mem.scratch_va(53);
    let _ = mem.map(ova, own, false);
    // SAFETY: dom0's own frame, mapped read-only at `ova`.
    let copied = unsafe { ((ova + 100) as *const u32).read_volatile() };
    let _ = mem.unmap(ova);
    c.check(
        "gnttab_copy_from_grant",
        r.is_ok() && cp.status == GNTST_OKAY && copied == 2,
        format_args!("{r:?} status {} copied {copied}", cp.status),
    );
    // A long array is continued by Oxen and every operation is served.
    static mut MANY: [GnttabCopy; 600] = [GnttabCopy {
        source: GnttabCopyPtr {
            u: 0,
            domid: 0,
            offset: 0,
        },
        dest: GnttabCopyPtr {
            u: 0,
            domid: 0,
            offset: 0,
        },
        len: 0,
        flags: 0,
        status: 0,
        _pad: 0,
    }; 600];
    // SAFETY: only this function uses MANY.
    let many = unsafe { &mut *core::ptr::addr_of_mut!(MANY) };
    for (i, op) in many.iter_mut().enumerate() {
        *op = cp;
        op.dest.offset = ((i * 4) % 4000) as u16;
        op.status = -99;
    }
    let r = hcall(
        xen_abi::hypercall::GRANT_TABLE_OP,
        [GNTTABOP_COPY, many.as_mut_ptr() as u32, 600, 0, 0],
    );
    c.check(
        "gnttab_copy_600_continued",
        r.is_ok() && many.iter().all(|op| op.status == GNTST_OKAY),
        format_args!(
            "{r:?} {} not okay",
            many.iter().filter(|op| op.status != GNTST_OKAY).count()
        ),
    );
    cp.dest.offset = 4094;
    let _ = gnttab(GNTTABOP_COPY, &mut cp);
    c.check(
        "gnttab_copy_past_page_end",
        cp.status == GNTST_BAD_COPY_ARG,
        format_args!("status {}", cp.status),
    );
    // While dom0 maps the domU's page, the domU cannot be reaped (it stays
    // dying; its grants can still be unmapped, no longer mapped).
    let mut k = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    c.err(
        "destroy_while_granted_page_mapped",
        domctl(&mut k),
        Errno::EAGAIN,
    );
    let dying = map(8, GNTMAP_HOST_MAP);
    c.check(
        "gnttab_map_from_dying_domain",
        dying.status == GNTST_BAD_DOMAIN,
        format_args!("status {}", dying.status),
    );
    let wrong = unmap(hva + 4096, m.handle);
    c.check(
        "gnttab_unmap_wrong_address",
        wrong == GNTST_GENERAL_ERROR,
        format_args!("status {wrong}"),
    );
    let ok = unmap(hva, m.handle);
    c.check(
        "gnttab_unmap",
        ok == GNTST_OKAY && entry(8).flags == GTF_PERMIT_ACCESS,
        format_args!("status {ok} flags {:#x}", entry(8).flags),
    );
    let stale = unmap(hva, m.handle);
    c.check(
        "gnttab_unmap_stale_handle",
        stale == GNTST_BAD_HANDLE,
        format_args!("status {stale}"),
    );
    let _ = mem.unmap(gva);
}

unsafe extern "C" {
    static td_domu_code_start: u8;
    static td_domu_code_end: u8;
}

/// The domain the toolstack would build, by hand: six of its frames become
/// an L3, two L2s, an L1, a code and a data page; pinned, given a vcpu
/// context, unpaused. It runs between dom0's yields (the scheduler switches
/// registers, page tables and, lazily, the FPU), powers off, and goes away.
fn run_domu(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::context::{VGCF_IN_KERNEL, VGCF_ONLINE, VcpuGuestContext};
    use xen_abi::domctl::*;
    use xen_abi::memory::XENMEM_POPULATE_PHYSMAP;
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_DS, FLAT_KERNEL_SS};
    // dom0's own grant table, whose entry 8 grants a page to domain 5 (not
    // to the domU, which will try to map it).
    let own_gnt = {
        use xen_abi::grant::*;
        let mut frames = [0u32; 1];
        let mut st = GnttabSetupTable {
            dom: xen_abi::domid::DOMID_SELF,
            nr_frames: 1,
            frame_list: frames.as_mut_ptr() as u32,
            ..Default::default()
        };
        let r = gnttab(GNTTABOP_SETUP_TABLE, &mut st);
        let gva = mem.scratch_va(57);
        let mapped = mem.map(gva, frames[0], true);
        // SAFETY: dom0's grant frame, mapped writable at `gva`.
        unsafe {
            (gva as *mut GrantEntryV1)
                .add(8)
                .write_volatile(GrantEntryV1 {
                    flags: GTF_PERMIT_ACCESS,
                    domid: 5,
                    frame: mem.mfn(mem.first_free_pfn + 59),
                })
        };
        let _ = mem.unmap(gva);
        r.is_ok() && st.status == GNTST_OKAY && mapped.is_ok()
    };
    c.check(
        "gnttab_dom0_own_table",
        own_gnt,
        format_args!("setup_table(DOMID_SELF) and the entry"),
    );
    let free_before = free_pages();
    let mut d = XenDomctl::new(
        XEN_DOMCTL_CREATEDOMAIN,
        0,
        &XenDomctlCreatedomain::default(),
    );
    let r = domctl(&mut d);
    let id = d.domain;
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    let _ = domctl(&mut mm);
    let mut m = [0u32; 6];
    let pop = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut m);
    c.check(
        "domu_created_and_populated",
        r.is_ok() && pop == Ok(6),
        format_args!("{r:?} {pop:?}"),
    );
    let [l3, l2_0, l2_3, l1, code, data] = m;
    // Fill the frames through foreign mappings.
    let va = mem.scratch_va(51);
    let fill = |mfn: u32, entries: &[(usize, u64)], bytes: &[u8]| -> bool {
        let ok =
            update_va_mapping_otherdomain(va, pte(mfn, P | RW | A | D), UVMF_INVLPG, id).is_ok();
        if ok {
            // SAFETY: the frame is mapped writable at `va`.
            unsafe {
                core::ptr::write_bytes(va as *mut u8, 0, PAGE as usize);
                for &(i, e) in entries {
                    (va as *mut u64).add(i).write_volatile(e);
                }
                core::ptr::copy_nonoverlapping(bytes.as_ptr(), va as *mut u8, bytes.len());
            }
        }
        let _ = mem.unmap(va);
        ok
    };
    // SAFETY: the two symbols delimit the domU code in .rodata.
    let code_bytes = unsafe {
        let start = core::ptr::addr_of!(td_domu_code_start);
        let len = core::ptr::addr_of!(td_domu_code_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    };
    let filled = fill(
        l1,
        &[(1, pte(code, P | A)), (2, pte(data, P | RW | A | D))],
        &[],
    ) && fill(l2_0, &[(0, pte(l1, P | RW | A))], &[])
        && fill(l2_3, &[], &[])
        && fill(l3, &[(0, pte(l2_0, P)), (3, pte(l2_3, P))], &[])
        && fill(code, &[], code_bytes)
        && fill(data, &[], &[]);
    c.check(
        "domu_frames_filled",
        filled,
        format_args!("foreign mappings"),
    );
    let pin = [MmuextOp::new(MMUEXT_PIN_L3_TABLE, l3, 0)];
    c.ok(
        "domu_pin_l3_foreign",
        pvrt::mm::mmuext_op(&pin, u32::from(id)).0,
    );

    static mut CTX: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses CTX, once.
    let ctx = unsafe { &mut *core::ptr::addr_of_mut!(CTX) };
    ctx.flags = VGCF_ONLINE | VGCF_IN_KERNEL;
    ctx.user_regs.eip = 0x1000;
    ctx.user_regs.esp = 0x3000;
    ctx.user_regs.cs = FLAT_KERNEL_CS;
    ctx.user_regs.ss = FLAT_KERNEL_SS;
    ctx.user_regs.ds = FLAT_KERNEL_DS;
    ctx.user_regs.es = FLAT_KERNEL_DS;
    ctx.user_regs.eflags = 0x202;
    ctx.ctrlreg[3] = xen_abi::mm::xen_pfn_to_cr3(l3);
    ctx.kernel_ss = u32::from(FLAT_KERNEL_SS);
    ctx.kernel_sp = 0x3000;
    // An event channel between the two: a port of the domU for dom0,
    // bound by dom0; the domU learns its port from EDI.
    use xen_abi::evtchn::*;
    let mut un = EvtchnAllocUnbound {
        dom: id,
        remote_dom: 0,
        port: 0,
    };
    let r1 = evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut un);
    let mut bi = EvtchnBindInterdomain {
        remote_dom: id,
        _pad: 0,
        remote_port: un.port,
        local_port: 0,
    };
    let r2 = evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut bi);
    c.check(
        "evtchn_interdomain_bound",
        r1.is_ok() && r2.is_ok() && bi.local_port != 0,
        format_args!(
            "{r1:?} {r2:?} domU port {} dom0 port {}",
            un.port, bi.local_port
        ),
    );
    let status = |port: u32| {
        let mut st = EvtchnStatus {
            dom: xen_abi::domid::DOMID_SELF,
            port,
            ..Default::default()
        };
        evtchn(EVTCHNOP_STATUS, &mut st).map(|_| st)
    };
    let st = status(bi.local_port);
    c.check(
        "evtchn_status_interdomain",
        st.is_ok_and(|s| {
            s.status == EVTCHNSTAT_INTERDOMAIN && s.u[0] == u32::from(id) && s.u[1] == un.port
        }),
        format_args!("{st:?}"),
    );
    ctx.user_regs.edi = un.port;
    let vc = |cmd: u32, p: u64| {
        let mut d = XenDomctl::new(
            cmd,
            id,
            &XenDomctlVcpucontext {
                vcpu: 0,
                _pad: 0,
                ctxt: p,
            },
        );
        domctl(&mut d)
    };
    ctx.user_regs.cs = 0xE008; // Oxen's own ring-0 code selector
    c.err(
        "setvcpucontext_ring0_cs",
        vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64),
        Errno::EINVAL,
    );
    ctx.user_regs.cs = FLAT_KERNEL_CS;
    c.ok(
        "setvcpucontext",
        vc(XEN_DOMCTL_SETVCPUCONTEXT, ctx as *mut _ as u64),
    );
    static mut BACK: VcpuGuestContext = unsafe { core::mem::zeroed() };
    // SAFETY: only this function uses BACK, once.
    let back = unsafe { &mut *core::ptr::addr_of_mut!(BACK) };
    let r = vc(XEN_DOMCTL_GETVCPUCONTEXT, back as *mut _ as u64);
    c.check(
        "getvcpucontext",
        r.is_ok()
            && back.user_regs.eip == 0x1000
            && back.ctrlreg[3] == ctx.ctrlreg[3]
            && back.flags & VGCF_ONLINE != 0,
        format_args!("{r:?} eip={:#x}", back.user_regs.eip),
    );

    // dom0 holds 3.0 on its FPU stack while the domU runs with 2.0.
    // SAFETY: x87 only; Oxen and this soft-float kernel use no x87 state.
    unsafe { core::arch::asm!("fld1", "fld1", "fld1", "faddp", "faddp") };
    let mut up = XenDomctl::new(XEN_DOMCTL_UNPAUSEDOMAIN, id, &0u32);
    c.ok("domu_unpause", domctl(&mut up));
    let info = |id: DomId| {
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            id,
            &XenDomctlGetdomaininfo::default(),
        );
        domctl(&mut d).map(|_| d.payload::<XenDomctlGetdomaininfo>())
    };
    let mut yields = 0;
    while yields < 10_000 {
        if info(id).is_ok_and(|i| i.flags & XEN_DOMINF_SHUTDOWN != 0) {
            break;
        }
        let _ = hcall(
            xen_abi::hypercall::SCHED_OP,
            [xen_abi::sched::SCHEDOP_YIELD, 0, 0, 0, 0],
        );
        yields += 1;
    }
    let mut mine = 0u32;
    // SAFETY: pops dom0's 3.0 into `mine`.
    unsafe { core::arch::asm!("fistp dword ptr [{}]", in(reg) &mut mine) };
    let i = info(id);
    c.check(
        "domu_ran_and_powered_off",
        i.is_ok_and(|i| {
            i.flags & XEN_DOMINF_SHUTDOWN != 0
                && dominf_shutdown_reason(i.flags) == 0
                && i.cpu_time > 0
        }),
        format_args!("{i:?} after {yields} yields"),
    );
    c.check(
        "dom0_fpu_survived_domu",
        mine == 3,
        format_args!("dom0's x87 value came back as {mine}"),
    );
    // What the domU's event-channel calls returned, from its data page.
    let _ = update_va_mapping_otherdomain(va, pte(data, P | A), UVMF_INVLPG, id);
    // SAFETY: mapped read-only at `va`.
    let (sent, bound, ctl, gmap) = unsafe {
        (
            ((va + 0x10) as *const i32).read_volatile(),
            ((va + 0x20) as *const i32).read_volatile(),
            ((va + 0x24) as *const i32).read_volatile(),
            ((va + 0x28) as *const i32).read_volatile(),
        )
    };
    c.check(
        "domu_map_grant_not_offered",
        gmap == i32::from(xen_abi::grant::GNTST_GENERAL_ERROR),
        format_args!("status {gmap}"),
    );
    let _ = mem.unmap(va);
    c.check("domu_send_ok", sent == 0, format_args!("{sent}"));
    c.check(
        "domu_bind_unoffered_port_refused",
        bound == -Errno::EINVAL.0,
        format_args!("{bound}"),
    );
    c.check(
        "domu_domctl_refused",
        ctl == -Errno::EPERM.0,
        format_args!("{ctl}"),
    );
    let si = mem.scratch_va(61);
    let _ = mem.map(si, mem.si.shared_info >> 12, true);
    let pending =
        shared_u32_at(si, PENDING + 4 * (bi.local_port / 32)) & (1 << (bi.local_port % 32)) != 0;
    let _ = mem.unmap(si);
    c.check(
        "evtchn_interdomain_delivered",
        pending,
        format_args!("dom0 port {} pending", bi.local_port),
    );
    grants(c, mem, id, data);
    let mut k = XenDomctl::new(XEN_DOMCTL_DESTROYDOMAIN, id, &0u32);
    c.ok("domu_destroy", domctl(&mut k));
    let st = status(bi.local_port);
    c.check(
        "evtchn_peer_destroyed_unbound",
        st.is_ok_and(|s| s.status == EVTCHNSTAT_UNBOUND),
        format_args!("{st:?}"),
    );
    let mut cl = EvtchnClose {
        port: bi.local_port,
    };
    c.ok(
        "evtchn_close_after_peer_gone",
        evtchn(EVTCHNOP_CLOSE, &mut cl),
    );
    c.check(
        "domu_memory_back",
        free_pages() == free_before,
        format_args!("free before {free_before}, after {}", free_pages()),
    );
}

unsafe extern "C" {
    static td_counts: [u32; 8];
    static mut td_gp_skip: u32;
    fn td_v15_handler();
    static td_int80_frame: [u32; 2];
    fn td_run_user(eip: u32, esp: u32);
    fn td_int80_handler();
    static td_errors: [u32; 2];
    static td_failsafe_segs: [u32; 4];
    fn td_failsafe_handler();
    fn td_pf_handler();
    fn td_gp_handler();
    fn td_bp_handler();
    fn td_soft_handler();
    fn td_nm_handler();
}

fn trap_count(i: usize) -> u32 {
    // SAFETY: td_counts is a static the handlers update; read it volatile.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_counts).cast::<u32>().add(i)) }
}

fn trap_error(i: usize) -> u32 {
    // SAFETY: as for `trap_count`.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_errors).cast::<u32>().add(i)) }
}

/// set_trap_table, stack_switch, callbacks, fpu_taskswitch and iret, with
/// faults the domain catches and recovers from.
fn traps(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{
        CALLBACK_OP, FPU_TASKSWITCH, SET_CALLBACKS, SET_TRAP_TABLE, STACK_SWITCH,
    };
    use xen_abi::selectors::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
    use xen_abi::traps::*;
    let call = |nr: u32, args: [u32; 5]| {
        // SAFETY: every pointer passed below is valid for what the call reads.
        pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(nr, args) })
    };
    let ti = |vector: u8, dpl: u8, handler: unsafe extern "C" fn()| TrapInfo {
        vector,
        flags: dpl,
        cs: FLAT_KERNEL_CS & !3, // RPL 0: Oxen raises it to 1
        address: handler as usize as u32,
    };
    let table = [
        ti(3, 3, td_bp_handler),
        ti(7, 0, td_nm_handler),
        ti(13, 0, td_gp_handler),
        ti(14, 0, td_pf_handler),
        ti(0x81, 1, td_soft_handler),
        TrapInfo::default(),
    ];
    c.ok(
        "set_trap_table",
        call(SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]),
    );
    static mut KSTACK: [u8; 4096] = [0; 4096];
    let kstack_top = core::ptr::addr_of!(KSTACK) as u32 + 4096;
    c.ok(
        "stack_switch",
        call(
            STACK_SWITCH,
            [u32::from(FLAT_KERNEL_SS), kstack_top, 0, 0, 0],
        ),
    );

    // A page fault the domain handles: its handler skips the load and returns
    // with the iret hypercall; Oxen reports the address in vcpu_info.arch.cr2.
    let v: u32;
    // SAFETY: reads an unmapped address on purpose; the #PF handler skips the
    // 2-byte `mov (%eax),%edx` and resumes.
    unsafe { core::arch::asm!(".byte 0x8b, 0x10", in("eax") 0x2000u32, out("edx") v) };
    let _ = v;
    let si_va = mem.scratch_va(63);
    let _ = mem.map(si_va, mem.si.shared_info >> 12, true);
    // SAFETY: shared_info is mapped at si_va; vcpu_info[0].arch.cr2 is at +8.
    let cr2 = unsafe { ((si_va + 8) as *const u32).read_volatile() };
    c.check(
        "trap_page_fault_caught",
        trap_count(0) == 1 && trap_error(0) == 0 && cr2 == 0x2000,
        format_args!(
            "count={} err={:#x} cr2={cr2:#x}",
            trap_count(0),
            trap_error(0)
        ),
    );

    // `int $0x40` has no gate the guest may use: a #GP with error code
    // (0x40 << 3) | 2 reaches the domain's #GP handler.
    // SAFETY: the #GP handler skips the 2-byte instruction.
    unsafe { core::arch::asm!("int 0x40") };
    c.check(
        "trap_gp_caught",
        trap_count(1) == 1 && trap_error(1) == (0x40 << 3) | 2,
        format_args!("count={} err={:#x}", trap_count(1), trap_error(1)),
    );
    // `int3` reaches the #BP handler directly; `int $0x81` is allowed from
    // ring 1 by its trap-table DPL and is re-delivered as vector 0x81.
    // SAFETY: both handlers return with iret.
    unsafe { core::arch::asm!("int3", "int 0x81") };
    c.check(
        "trap_int3",
        trap_count(2) == 1,
        format_args!("count={}", trap_count(2)),
    );
    c.check(
        "trap_softint_permitted",
        trap_count(3) == 1,
        format_args!("count={}", trap_count(3)),
    );

    // fpu_taskswitch(1): the next FPU instruction raises #NM to the domain,
    // once; Oxen clears the virtual TS when it delivers it.
    c.ok("fpu_taskswitch_set", call(FPU_TASKSWITCH, [1, 0, 0, 0, 0]));
    // SAFETY: `fnop` changes no state; it only probes CR0.TS.
    unsafe { core::arch::asm!("fnop", "fnop") };
    c.check(
        "fpu_taskswitch_nm_once",
        trap_count(4) == 1,
        format_args!("count={}", trap_count(4)),
    );
    c.ok(
        "fpu_taskswitch_clear",
        call(FPU_TASKSWITCH, [0, 0, 0, 0, 0]),
    );
    // SAFETY: as above.
    unsafe { core::arch::asm!("fnop") };
    c.check(
        "fpu_taskswitch_clear_no_nm",
        trap_count(4) == 1,
        format_args!("count={}", trap_count(4)),
    );

    // Callbacks: both forms; syscall32/sysenter are accepted (§18); only NMI
    // may be unregistered.
    let handler = td_soft_handler as *const () as u32;
    c.ok(
        "set_callbacks",
        call(
            SET_CALLBACKS,
            [
                u32::from(FLAT_KERNEL_CS),
                handler,
                u32::from(FLAT_KERNEL_CS),
                handler,
                0,
            ],
        ),
    );
    let reg = |type_: u16| CallbackRegister {
        type_,
        flags: 0,
        address: XenCallback {
            cs: u32::from(FLAT_KERNEL_CS),
            eip: handler,
        },
    };
    for (name, ty) in [
        ("callback_register_event", CALLBACKTYPE_EVENT),
        ("callback_register_syscall32", CALLBACKTYPE_SYSCALL32),
        ("callback_register_sysenter", CALLBACKTYPE_SYSENTER),
        ("callback_register_nmi", CALLBACKTYPE_NMI),
    ] {
        let r = reg(ty);
        c.ok(
            name,
            call(
                CALLBACK_OP,
                [CALLBACKOP_REGISTER, &r as *const _ as u32, 0, 0, 0],
            ),
        );
    }
    let unreg = |type_: u16| CallbackUnregister { type_, _unused: 0 };
    let u = unreg(CALLBACKTYPE_EVENT);
    c.err(
        "callback_unregister_event",
        call(
            CALLBACK_OP,
            [CALLBACKOP_UNREGISTER, &u as *const _ as u32, 0, 0, 0],
        ),
        Errno::EINVAL,
    );
    let u = unreg(CALLBACKTYPE_NMI);
    c.ok(
        "callback_unregister_nmi",
        call(
            CALLBACK_OP,
            [CALLBACKOP_UNREGISTER, &u as *const _ as u32, 0, 0, 0],
        ),
    );
    c.err(
        "callback_op_bad_cmd",
        call(CALLBACK_OP, [9, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    let nmi = [handler, 0];
    c.ok(
        "nmi_op_register",
        call(
            xen_abi::hypercall::NMI_OP,
            [XENNMI_REGISTER_CALLBACK, nmi.as_ptr() as u32, 0, 0, 0],
        ),
    );
    c.ok(
        "nmi_op_unregister",
        call(
            xen_abi::hypercall::NMI_OP,
            [XENNMI_UNREGISTER_CALLBACK, 0, 0, 0, 0],
        ),
    );
    c.err(
        "nmi_op_unknown",
        call(xen_abi::hypercall::NMI_OP, [7, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    c.err(
        "set_trap_table_in_hole",
        call(SET_TRAP_TABLE, [0xF580_0000, 0, 0, 0, 0]),
        Errno::EFAULT,
    );
    int80(c, mem, si_va);
    privileged_instructions(c, mem);
    let _ = mem.unmap(si_va);
}

/// `int $0x80` from ring 3. A trap-table entry that leaves events unmasked
/// gets a direct gate: the CPU enters the handler itself, so the frame holds
/// the real CS word and the real IF (set) although the vcpu's events are
/// masked. With the mask flag the call goes through Oxen, whose frame carries
/// the saved upcall mask above CS and the virtual IF (clear).
fn int80(c: &mut Checks, mem: &Mem<'_>, si_va: u32) {
    use xen_abi::hypercall::SET_TRAP_TABLE;
    use xen_abi::selectors::FLAT_USER_CS;
    use xen_abi::traps::TrapInfo;
    const USER: u64 = 1 << 2;
    const EFLAGS_IF: u32 = 1 << 9;
    let code = mem.mfn(mem.first_free_pfn + 56);
    let va = mem.scratch_va(48);
    c.ok("user_page_map", mem.map(va, code, true));
    // SAFETY: the frame is mapped writable at `va`: `int $0x80; jmp .`.
    unsafe {
        core::ptr::copy_nonoverlapping([0xCDu8, 0x80, 0xEB, 0xFE].as_ptr(), va as *mut u8, 4)
    };
    c.ok(
        "user_page_user_mode",
        update_va_mapping(va, pte(code, P | A | USER), UVMF_INVLPG),
    );
    // SAFETY: shared_info is mapped at `si_va`; vcpu_info[0]'s upcall mask
    // is its byte 1.
    let mask_byte = unsafe { &*((si_va + 1) as *const core::sync::atomic::AtomicU8) };
    let saved_mask = mask_byte.load(AtOrd::SeqCst);
    for (name, flags, direct) in [
        ("int80_direct_gate", 3u8, true),
        ("int80_through_oxen", 3 | 4, false),
    ] {
        let table = [
            TrapInfo {
                vector: 0x80,
                flags,
                cs: xen_abi::selectors::FLAT_KERNEL_CS,
                address: td_int80_handler as *const () as u32,
            },
            TrapInfo::default(),
        ];
        let set = pvrt::hypercall::result(
            // SAFETY: `table` is a terminated trap table the call reads.
            unsafe { pvrt::hypercall::raw(SET_TRAP_TABLE, [table.as_ptr() as u32, 0, 0, 0, 0]) },
        );
        let before = trap_count(6);
        // SAFETY: the page at `va` holds `int $0x80`, whose handler returns
        // here; its stack is never used.
        unsafe { td_run_user(va, va + 0x800) };
        // SAFETY: td_int80_frame is a static the handler writes.
        let [cs_word, eflags] =
            unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_int80_frame)) };
        let expected_cs = if direct {
            u32::from(FLAT_USER_CS)
        } else {
            u32::from(FLAT_USER_CS) | 1 << 16
        };
        c.check(
            name,
            set.is_ok()
                && trap_count(6) == before + 1
                && cs_word == expected_cs
                && (eflags & EFLAGS_IF != 0) == direct,
            format_args!(
                "set={set:?} count={} cs word={cs_word:#x} eflags={eflags:#x}",
                trap_count(6)
            ),
        );
    }
    mask_byte.store(saved_mask, AtOrd::SeqCst);
    let _ = mem.unmap(va);
}

use core::sync::atomic::{AtomicU32, Ordering as AtOrd};

/// Where `events()` mapped shared_info, for the upcall handler.
static SHARED_VA: AtomicU32 = AtomicU32::new(0);
use pvrt::events::UPCALLS;
/// Events seen, per port (the first 64 ports).
static SEEN: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

fn shared_u32(offset: u32) -> &'static AtomicU32 {
    // SAFETY: shared_info is mapped at SHARED_VA for as long as events are
    // enabled; every field the test touches is an aligned u32 inside it.
    unsafe { &*((SHARED_VA.load(AtOrd::SeqCst) + offset) as *const AtomicU32) }
}

fn shared_u32_at(va: u32, offset: u32) -> u32 {
    // SAFETY: the caller mapped shared_info at `va`; `offset` is an aligned
    // u32 inside it.
    unsafe { ((va + offset) as *const u32).read_volatile() }
}

fn shared_u8(offset: u32) -> &'static core::sync::atomic::AtomicU8 {
    // SAFETY: as for `shared_u32`.
    unsafe { &*((SHARED_VA.load(AtOrd::SeqCst) + offset) as *const core::sync::atomic::AtomicU8) }
}

const PENDING: u32 = 2048;
const MASKS: u32 = 2176;

/// The per-port handler test-dom0 gives pvrt: counts events per port.
fn count_event(port: u32) {
    if let Some(n) = SEEN.get(port as usize) {
        n.fetch_add(1, AtOrd::SeqCst);
    }
}

fn evtchn<T>(cmd: u32, arg: &mut T) -> Result<u32, Errno> {
    // SAFETY: `arg` is a live ABI struct of the size the command reads/writes.
    pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::EVENT_CHANNEL_OP,
            [cmd, arg as *mut T as u32, 0, 0, 0],
        )
    })
}

/// Event channels on one domain: IPI, loopback, VIRQ binding, masking by port
/// and by vcpu, unmask re-raising, status, close, the compat form.
fn events(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::EVENT_CHANNEL_OP_COMPAT;
    let va = mem.scratch_va(61);
    c.ok(
        "map_shared_info_for_events",
        mem.map(va, mem.si.shared_info >> 12, true),
    );
    SHARED_VA.store(va, AtOrd::SeqCst);
    // pvrt owns the upcall: its entry scans the event words and runs the
    // handler of each port (here: a counter per port).
    c.ok("register_event_callback", pvrt::events::init(va));
    for port in 0..SEEN.len() as u32 {
        pvrt::events::on(port, count_event);
    }

    let mut ipi = EvtchnBindIpi { vcpu: 0, port: 0 };
    c.ok("evtchn_bind_ipi", evtchn(EVTCHNOP_BIND_IPI, &mut ipi));
    let p = ipi.port;
    c.check("evtchn_first_port_is_1", p == 1, format_args!("{p}"));
    // Events on: clear the vcpu's upcall mask.
    shared_u8(1).store(0, AtOrd::SeqCst);
    let mut send = EvtchnSend { port: p };
    c.ok("evtchn_send_ipi", evtchn(EVTCHNOP_SEND, &mut send));
    c.check(
        "evtchn_ipi_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 1 && SEEN[p as usize].load(AtOrd::SeqCst) == 1,
        format_args!(
            "upcalls={} seen={}",
            UPCALLS.load(AtOrd::SeqCst),
            SEEN[p as usize].load(AtOrd::SeqCst)
        ),
    );
    c.check(
        "evtchn_upcall_mask_restored",
        shared_u8(1).load(AtOrd::SeqCst) == 0,
        format_args!("{}", shared_u8(1).load(AtOrd::SeqCst)),
    );

    // Masked port: raised but not delivered until EVTCHNOP_unmask.
    shared_u32(MASKS).fetch_or(1 << p, AtOrd::SeqCst);
    c.ok("evtchn_send_masked", evtchn(EVTCHNOP_SEND, &mut send));
    let pending = shared_u32(PENDING).load(AtOrd::SeqCst) & (1 << p) != 0;
    c.check(
        "evtchn_masked_not_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 1 && pending,
        format_args!("upcalls={} pending={pending}", UPCALLS.load(AtOrd::SeqCst)),
    );
    let mut unmask = EvtchnUnmask { port: p };
    c.ok("evtchn_unmask", evtchn(EVTCHNOP_UNMASK, &mut unmask));
    c.check(
        "evtchn_delivered_on_unmask",
        UPCALLS.load(AtOrd::SeqCst) == 2 && SEEN[p as usize].load(AtOrd::SeqCst) == 2,
        format_args!(
            "upcalls={} seen={}",
            UPCALLS.load(AtOrd::SeqCst),
            SEEN[p as usize].load(AtOrd::SeqCst)
        ),
    );

    // Vcpu-wide mask: the upcall waits until the mask clears and Oxen next
    // returns to the guest (here: the next hypercall).
    shared_u8(1).store(1, AtOrd::SeqCst);
    c.ok(
        "evtchn_send_while_vcpu_masked",
        evtchn(EVTCHNOP_SEND, &mut send),
    );
    c.check(
        "evtchn_vcpu_masked_not_delivered",
        UPCALLS.load(AtOrd::SeqCst) == 2,
        format_args!("upcalls={}", UPCALLS.load(AtOrd::SeqCst)),
    );
    shared_u8(1).store(0, AtOrd::SeqCst);
    let mut st = EvtchnStatus {
        dom: xen_abi::domid::DOMID_SELF,
        port: p,
        ..Default::default()
    };
    c.ok("evtchn_status_ipi", evtchn(EVTCHNOP_STATUS, &mut st));
    c.check(
        "evtchn_delivered_after_vcpu_unmask",
        UPCALLS.load(AtOrd::SeqCst) == 3 && SEEN[p as usize].load(AtOrd::SeqCst) == 3,
        format_args!("upcalls={}", UPCALLS.load(AtOrd::SeqCst)),
    );
    c.check(
        "evtchn_status_is_ipi",
        st.status == EVTCHNSTAT_IPI && st.vcpu == 0,
        format_args!("status={} vcpu={}", st.status, st.vcpu),
    );

    // Loopback: an unbound port bound from the same domain.
    let mut ub = EvtchnAllocUnbound {
        dom: xen_abi::domid::DOMID_SELF,
        remote_dom: xen_abi::domid::DOMID_SELF,
        port: 0,
    };
    c.ok(
        "evtchn_alloc_unbound",
        evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut ub),
    );
    let mut bi = EvtchnBindInterdomain {
        remote_dom: xen_abi::domid::DOMID_SELF,
        _pad: 0,
        remote_port: ub.port,
        local_port: 0,
    };
    c.ok(
        "evtchn_bind_interdomain_loopback",
        evtchn(EVTCHNOP_BIND_INTERDOMAIN, &mut bi),
    );
    let mut send_lb = EvtchnSend {
        port: bi.local_port,
    };
    c.ok("evtchn_send_loopback", evtchn(EVTCHNOP_SEND, &mut send_lb));
    c.check(
        "evtchn_loopback_delivered",
        SEEN.get(ub.port as usize)
            .is_some_and(|n| n.load(AtOrd::SeqCst) == 1),
        format_args!("ports {} -> {}", bi.local_port, ub.port),
    );

    // VIRQs.
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    c.ok("evtchn_bind_virq", evtchn(EVTCHNOP_BIND_VIRQ, &mut virq));
    let mut again = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    c.err(
        "evtchn_bind_virq_twice",
        evtchn(EVTCHNOP_BIND_VIRQ, &mut again),
        Errno::EEXIST,
    );
    let mut bad_vcpu = EvtchnBindVirq {
        virq: VIRQ_TIMER,
        vcpu: 5,
        port: 0,
    };
    c.err(
        "evtchn_bind_virq_no_such_vcpu",
        evtchn(EVTCHNOP_BIND_VIRQ, &mut bad_vcpu),
        Errno::ENOENT,
    );

    // Close; a closed port can be neither closed nor used again.
    let mut close = EvtchnClose { port: p };
    c.ok("evtchn_close", evtchn(EVTCHNOP_CLOSE, &mut close));
    c.err(
        "evtchn_close_twice",
        evtchn(EVTCHNOP_CLOSE, &mut close),
        Errno::EINVAL,
    );
    c.err(
        "evtchn_send_closed",
        evtchn(EVTCHNOP_SEND, &mut send),
        Errno::EINVAL,
    );
    c.err("evtchn_unknown_cmd", evtchn(99, &mut send), Errno::ENOSYS);
    let mut other = EvtchnAllocUnbound {
        dom: 3,
        remote_dom: 0,
        port: 0,
    };
    c.err(
        "evtchn_alloc_unbound_other_domain",
        evtchn(EVTCHNOP_ALLOC_UNBOUND, &mut other),
        Errno::ESRCH,
    );

    // The compat #16 form: cmd then the same struct at offset 4.
    let mut op = [0u32; 7];
    op[0] = EVTCHNOP_ALLOC_UNBOUND;
    op[1] = u32::from(xen_abi::domid::DOMID_SELF) | (u32::from(xen_abi::domid::DOMID_SELF) << 16);
    // SAFETY: `op` is a 28-byte evtchn_op read and written by the call.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            EVENT_CHANNEL_OP_COMPAT,
            [op.as_mut_ptr() as u32, 0, 0, 0, 0],
        )
    });
    c.check(
        "evtchn_compat_alloc_unbound",
        r.is_ok() && op[2] == p, // the lowest free port: the one closed above
        format_args!("{r:?} port={}", op[2]),
    );

    time(c);

    // Events off again before the rest of the test.
    shared_u8(1).store(1, AtOrd::SeqCst);
    let _ = mem.unmap(va);
}

/// System time, from pvrt's PV clock.
fn guest_now() -> u64 {
    pvrt::time::now(SHARED_VA.load(AtOrd::SeqCst))
}

fn hcall(nr: u32, args: [u32; 5]) -> Result<u32, Errno> {
    // SAFETY: callers pass pointers valid for what the call reads or writes.
    pvrt::hypercall::result(unsafe { pvrt::hypercall::raw(nr, args) })
}

/// The PV clock, wall clock, timers (set_timer_op, vcpu_op single-shot and
/// periodic) waking a blocked vcpu through VIRQ_TIMER, poll, and vcpu_op.
fn time(c: &mut Checks) {
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::{SCHED_OP, SCHED_OP_COMPAT, SET_TIMER_OP, VCPU_OP};
    use xen_abi::sched::*;
    use xen_abi::vcpu::*;
    let t0 = guest_now();
    let mul = shared_u32(32 + 24).load(AtOrd::SeqCst);
    c.check(
        "vcpu_time_info",
        t0 > 0 && mul != 0 && shared_u32(32).load(AtOrd::SeqCst) & 1 == 0,
        format_args!("now={t0} mul={mul:#x}"),
    );
    let wc = shared_u32(2308).load(AtOrd::SeqCst);
    c.check("wallclock", wc > 1_600_000_000, format_args!("wc_sec={wc}"));
    let spin_until = t0 + 2_000_000;
    while guest_now() < spin_until {}
    let t1 = guest_now();
    c.check(
        "pv_clock_advances",
        t1 >= spin_until && t1 - t0 < 1_000_000_000,
        format_args!("{t0} -> {t1}"),
    );

    c.ok(
        "vcpu_stop_periodic_timer",
        hcall(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]),
    );
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_TIMER,
        vcpu: 0,
        port: 0,
    };
    c.ok("bind_virq_timer", evtchn(EVTCHNOP_BIND_VIRQ, &mut virq));
    let tp = virq.port as usize;
    let seen = |port: usize| SEEN.get(port).map_or(0, |n| n.load(AtOrd::SeqCst));

    // set_timer_op + block: the timer's VIRQ wakes the vcpu.
    let start = guest_now();
    let deadline = start + 5_000_000;
    c.ok(
        "set_timer_op",
        hcall(
            SET_TIMER_OP,
            [deadline as u32, (deadline >> 32) as u32, 0, 0, 0],
        ),
    );
    c.ok("sched_block", hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]));
    let woke = guest_now();
    c.check(
        "timer_wakes_blocked_vcpu",
        seen(tp) == 1 && woke >= deadline,
        format_args!("seen={} woke after {} ns", seen(tp), woke - start),
    );

    // vcpu_op single-shot: a past deadline with the FUTURE flag is refused.
    let past = VcpuSetSingleshotTimer {
        timeout_abs_ns: 1,
        flags: VCPU_SSHOTTMR_FUTURE,
    };
    c.err(
        "singleshot_in_the_past",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_SINGLESHOT_TIMER,
                0,
                &past as *const _ as u32,
                0,
                0,
            ],
        ),
        Errno::ETIME,
    );
    let soon = VcpuSetSingleshotTimer {
        timeout_abs_ns: guest_now() + 3_000_000,
        flags: VCPU_SSHOTTMR_FUTURE,
    };
    c.ok(
        "singleshot_timer",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_SINGLESHOT_TIMER,
                0,
                &soon as *const _ as u32,
                0,
                0,
            ],
        ),
    );
    c.ok(
        "sched_block_singleshot",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.check(
        "singleshot_wakes",
        seen(tp) == 2,
        format_args!("seen={}", seen(tp)),
    );

    // A periodic timer; a period under 1 ms is refused.
    let short = VcpuSetPeriodicTimer { period_ns: 10_000 };
    c.err(
        "periodic_too_short",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_PERIODIC_TIMER,
                0,
                &short as *const _ as u32,
                0,
                0,
            ],
        ),
        Errno::EINVAL,
    );
    let period = VcpuSetPeriodicTimer {
        period_ns: 2_000_000,
    };
    c.ok(
        "periodic_timer",
        hcall(
            VCPU_OP,
            [
                VCPUOP_SET_PERIODIC_TIMER,
                0,
                &period as *const _ as u32,
                0,
                0,
            ],
        ),
    );
    c.ok(
        "sched_block_periodic",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.ok(
        "sched_block_periodic_again",
        hcall(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0]),
    );
    c.check(
        "periodic_wakes_twice",
        // Each block returns only after a timer event; a slow run may see one
        // more tick on the way.
        seen(tp) >= 4,
        format_args!("seen={}", seen(tp)),
    );
    c.ok(
        "stop_periodic_timer",
        hcall(VCPU_OP, [VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0]),
    );
    // `hlt` in ring 1 is emulated as block.
    let deadline = guest_now() + 2_000_000;
    c.ok(
        "set_timer_op_for_hlt",
        hcall(
            SET_TIMER_OP,
            [deadline as u32, (deadline >> 32) as u32, 0, 0, 0],
        ),
    );
    let before_hlt = seen(tp);
    // SAFETY: emulated by Oxen as SCHEDOP_block; the timer wakes it.
    unsafe { core::arch::asm!("hlt") };
    c.check(
        "hlt_blocks_until_event",
        seen(tp) == before_hlt + 1 && guest_now() >= deadline,
        format_args!("seen={}", seen(tp)),
    );

    // poll: nothing arrives on the port, the timeout ends the wait.
    let ports = [virq.port];
    let pstart = guest_now();
    let p = SchedPoll {
        ports: ports.as_ptr() as u32,
        nr_ports: 1,
        timeout: pstart + 3_000_000,
    };
    c.ok(
        "sched_poll_timeout",
        hcall(SCHED_OP, [SCHEDOP_POLL, &p as *const _ as u32, 0, 0, 0]),
    );
    c.check(
        "sched_poll_waited",
        guest_now() >= pstart + 3_000_000,
        format_args!("{} ns", guest_now() - pstart),
    );

    c.ok("sched_yield", hcall(SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0]));
    c.ok(
        "sched_op_compat_yield",
        hcall(SCHED_OP_COMPAT, [SCHEDOP_YIELD, 0, 0, 0, 0]),
    );
    c.err(
        "sched_op_unknown",
        hcall(SCHED_OP, [99, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    c.check(
        "vcpu_is_up",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 0, 0, 0, 0]) == Ok(1),
        format_args!(""),
    );
    c.err(
        "vcpu_op_no_such_vcpu",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 1, 0, 0, 0]),
        Errno::ENOENT,
    );
    c.err(
        "vcpu_op_vcpu_out_of_range",
        hcall(VCPU_OP, [VCPUOP_IS_UP, 40, 0, 0, 0]),
        Errno::EINVAL,
    );
    let mut rs = [0u32; 11];
    c.ok(
        "vcpu_runstate_info",
        hcall(
            VCPU_OP,
            [VCPUOP_GET_RUNSTATE_INFO, 0, rs.as_mut_ptr() as u32, 0, 0],
        ),
    );
    c.check(
        "vcpu_runstate_running",
        rs[0] == RUNSTATE_RUNNING as u32,
        format_args!("state={}", rs[0]),
    );
    let mut area = [0xFFFF_FFFFu32; 11];
    let reg = [area.as_mut_ptr() as u32, 0];
    c.ok(
        "vcpu_register_runstate_area",
        hcall(
            VCPU_OP,
            [
                VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
                0,
                reg.as_ptr() as u32,
                0,
                0,
            ],
        ),
    );
    c.check(
        "vcpu_runstate_area_written",
        area[0] == RUNSTATE_RUNNING as u32 && area[3] != 0xFFFF_FFFF,
        format_args!("{area:x?}"),
    );
    let mut close = EvtchnClose { port: virq.port };
    c.ok("close_virq_timer", evtchn(EVTCHNOP_CLOSE, &mut close));
}

/// `memory_op`: sizes, maps, and growing and shrinking the reservation.
fn memory(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::MEMORY_OP;
    use xen_abi::memory::*;
    let nr = mem.si.nr_pages;
    let me = DOMID_SELF;
    let r = hcall(MEMORY_OP, [XENMEM_MAXIMUM_RAM_PAGE, 0, 0, 0, 0]);
    c.check(
        "memory_maximum_ram_page",
        r.is_ok_and(|n| n > nr),
        format_args!("{r:?}"),
    );
    let cur = |c: &mut Checks, name: &str, want: u32| {
        let r = hcall(
            MEMORY_OP,
            [
                XENMEM_CURRENT_RESERVATION,
                &me as *const u16 as u32,
                0,
                0,
                0,
            ],
        );
        c.check(name, r == Ok(want), format_args!("{r:?}, want {want}"));
    };
    cur(c, "memory_current_reservation", nr);
    let r = hcall(
        MEMORY_OP,
        [
            XENMEM_MAXIMUM_RESERVATION,
            &me as *const u16 as u32,
            0,
            0,
            0,
        ],
    );
    c.check(
        "memory_maximum_reservation",
        r.is_ok_and(|n| n >= nr),
        format_args!("{r:?}"),
    );
    let other: u16 = 5;
    c.err(
        "memory_reservation_no_such_domain",
        hcall(
            MEMORY_OP,
            [
                XENMEM_CURRENT_RESERVATION,
                &other as *const u16 as u32,
                0,
                0,
                0,
            ],
        ),
        Errno::ESRCH,
    );
    let mut mp = [0u32; 3];
    let r = hcall(
        MEMORY_OP,
        [XENMEM_MACHPHYS_MAPPING, mp.as_mut_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_machphys_mapping",
        r.is_ok() && mp[0] == 0xF580_0000 && mp[1] == 0xF680_0000,
        format_args!("{r:?} {mp:x?}"),
    );
    let mut e820 = [0u32; 5 * 16];
    let mut map = [16u32, e820.as_mut_ptr() as u32];
    let r = hcall(
        MEMORY_OP,
        [XENMEM_MEMORY_MAP, map.as_mut_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_map",
        r.is_ok() && map[0] == 1 && e820[2] == nr * 4096 && e820[4] == E820_RAM,
        format_args!("{r:?} n={} size={:#x}", map[0], e820[2]),
    );
    let mut map = [16u32, e820.as_mut_ptr() as u32];
    let r = hcall(
        MEMORY_OP,
        [XENMEM_MACHINE_MEMORY_MAP, map.as_mut_ptr() as u32, 0, 0, 0],
    );
    let has_ram = (0..map[0] as usize).any(|i| e820[i * 5 + 4] == E820_RAM && e820[i * 5 + 2] > 0);
    c.check(
        "memory_machine_memory_map",
        r.is_ok() && map[0] >= 2 && has_ram,
        format_args!("{r:?} n={}", map[0]),
    );

    // Grow by four pages, then give them back.
    let mut extents = [0u32; 4];
    let res = |ptr: u32, n: u32, order: u32| [ptr, n, order, 0, u32::from(me)];
    let r1 = res(extents.as_mut_ptr() as u32, 4, 0);
    let r = hcall(
        MEMORY_OP,
        [XENMEM_INCREASE_RESERVATION, r1.as_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_increase_reservation",
        r == Ok(4) && extents.iter().all(|&m| m != 0),
        format_args!("{r:?} {extents:x?}"),
    );
    cur(c, "memory_reservation_grew", nr + 4);
    let r = hcall(
        MEMORY_OP,
        [XENMEM_DECREASE_RESERVATION, r1.as_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_decrease_reservation",
        r == Ok(4),
        format_args!("{r:?}"),
    );
    cur(c, "memory_reservation_shrank", nr);
    // populate_physmap: new pfns past the end, with their M2P entries.
    let mut gpfns = [nr, nr + 1];
    let r2 = res(gpfns.as_mut_ptr() as u32, 2, 0);
    let r = hcall(
        MEMORY_OP,
        [XENMEM_POPULATE_PHYSMAP, r2.as_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_populate_physmap",
        r == Ok(2) && mfn_to_pfn(gpfns[0]) == nr && mfn_to_pfn(gpfns[1]) == nr + 1,
        format_args!("{r:?} {gpfns:x?}"),
    );
    let r = hcall(
        MEMORY_OP,
        [XENMEM_DECREASE_RESERVATION, r2.as_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_populated_given_back",
        r == Ok(2),
        format_args!("{r:?}"),
    );
    // Someone else's frame cannot be given back; orders above 0 are refused.
    let mut foreign = [OXEN_IMAGE_MFN];
    let r3 = res(foreign.as_mut_ptr() as u32, 1, 0);
    let r = hcall(
        MEMORY_OP,
        [XENMEM_DECREASE_RESERVATION, r3.as_ptr() as u32, 0, 0, 0],
    );
    c.check(
        "memory_decrease_foreign_frame",
        r == Ok(0),
        format_args!("{r:?}"),
    );
    let r4 = res(extents.as_mut_ptr() as u32, 1, 1);
    c.err(
        "memory_extent_order",
        hcall(
            MEMORY_OP,
            [XENMEM_INCREASE_RESERVATION, r4.as_ptr() as u32, 0, 0, 0],
        ),
        Errno::EINVAL,
    );
    c.err(
        "memory_op_unknown",
        hcall(MEMORY_OP, [99, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );
    // The M2P's 2 MiB chunks: the first one's first frame holds the entries
    // of mfns 0..1023, as the read-only M2P window shows them.
    let mut chunks = [0u32; 8];
    let mut list = [8u32, chunks.as_mut_ptr() as u32, 0];
    let r = hcall(
        MEMORY_OP,
        [XENMEM_MACHPHYS_MFN_LIST, list.as_mut_ptr() as u32, 0, 0, 0],
    );
    // dom0's first frame's entry, read through the chunk list.
    let va = mem.scratch_va(47);
    let probe = mem.mfn(0);
    let _ = mem.map(va, chunks[0] + probe / 1024, false);
    // SAFETY: the M2P frame holding `probe`'s entry is mapped read-only at `va`.
    let entry = unsafe { ((va + 4 * (probe % 1024)) as *const u32).read_volatile() };
    let _ = mem.unmap(va);
    let same = entry == mfn_to_pfn(probe);
    c.check(
        "memory_machphys_mfn_list",
        r.is_ok() && list[2] >= 1 && chunks[0].is_multiple_of(512) && same,
        format_args!("{r:?} n={} first={:#x}", list[2], chunks[0]),
    );
    c.err(
        "memory_op_arg_in_hole",
        hcall(
            MEMORY_OP,
            [XENMEM_CURRENT_RESERVATION, 0xF580_0000, 0, 0, 0],
        ),
        Errno::EFAULT,
    );
}

/// Privileged instructions Oxen emulates for ring 1, and ones it does not
/// (those arrive at the domain's #GP handler, which skips 2 bytes).
fn privileged_instructions(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{FPU_TASKSWITCH, PHYSDEV_OP};
    use xen_abi::physdev::{PHYSDEVOP_SET_IOBITMAP, PHYSDEVOP_SET_IOPL};
    let gp = || trap_count(1);
    // CR0.TS follows fpu_taskswitch, and clts clears it.
    let _ = hcall(FPU_TASKSWITCH, [1, 0, 0, 0, 0]);
    let cr0_ts: u32;
    // SAFETY: emulated by Oxen (mov %cr0,%eax).
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0_ts) };
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("clts") };
    let cr0: u32;
    // SAFETY: as above.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) cr0) };
    c.check(
        "emulate_cr0_and_clts",
        cr0_ts & 8 != 0 && cr0 & 8 == 0 && cr0 & 0x8000_0001 == 0x8000_0001,
        format_args!("{cr0_ts:#x} {cr0:#x}"),
    );
    // CR3 in Xen's rotated form; writing it back switches to the same L3.
    let cr3: u32;
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3) };
    let l3 = pfn_to_mfn(mem.si, (mem.si.pt_base - pvrt::VIRT_BASE) / PAGE).unwrap_or(0);
    c.check(
        "emulate_read_cr3",
        xen_abi::mm::xen_cr3_to_pfn(cr3) == l3,
        format_args!("{cr3:#x} vs mfn {l3:#x}"),
    );
    // SAFETY: emulated: the same base pointer again.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3) };
    let cr2: u32;
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("mov {}, cr2", out(reg) cr2) };
    c.check("emulate_read_cr2", cr2 == 0x2000, format_args!("{cr2:#x}"));
    // rdmsr of the TSC works; wrmsr is dropped; other rdmsr is #GP.
    let (lo, hi): (u32, u32);
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("rdmsr", in("ecx") 0x10, out("eax") lo, out("edx") hi) };
    c.check(
        "emulate_rdmsr_tsc",
        ((u64::from(hi) << 32) | u64::from(lo)) != 0,
        format_args!("{hi:#x}:{lo:#x}"),
    );
    let before = gp();
    // SAFETY: emulated (ignored) by Oxen.
    unsafe { core::arch::asm!("wrmsr", in("ecx") 0x1A0, in("eax") 0, in("edx") 0) };
    c.check(
        "emulate_wrmsr_ignored",
        gp() == before,
        format_args!("gp={}", gp()),
    );
    // SAFETY: not emulated: the #GP handler skips the 2-byte rdmsr.
    unsafe { core::arch::asm!("rdmsr", in("ecx") 0xC000_0080u32, out("eax") _, out("edx") _) };
    c.check(
        "rdmsr_unknown_is_gp",
        gp() == before + 1 && trap_error(1) == 0,
        format_args!("gp={} err={:#x}", gp(), trap_error(1)),
    );
    // Port I/O: refused until the virtual IOPL or the I/O bitmap allows it.
    // SAFETY: `in $0x71` faults (skipped by the handler) or is emulated.
    unsafe { core::arch::asm!("in al, 0x71", out("al") _) };
    c.check(
        "in_without_iopl_is_gp",
        gp() == before + 2,
        format_args!("gp={}", gp()),
    );
    let mut bitmap = [0xFFu8; 32];
    bitmap[0x80 / 8] &= !1; // port 0x80 only
    let bm = [bitmap.as_ptr() as u32, 0x100];
    c.ok(
        "physdev_set_iobitmap",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOBITMAP, bm.as_ptr() as u32, 0, 0, 0],
        ),
    );
    // SAFETY: port 0x80 is the POST port (harmless); 0x81 is refused.
    unsafe { core::arch::asm!("out 0x80, al", "out 0x81, al", in("al") 0u8) };
    c.check(
        "iobitmap_allows_only_its_ports",
        gp() == before + 3,
        format_args!("gp={}", gp()),
    );
    let iopl = [1u32];
    c.ok(
        "physdev_set_iopl",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, iopl.as_ptr() as u32, 0, 0, 0],
        ),
    );
    let status: u8;
    // SAFETY: reads CMOS status register A through the emulated in/out.
    unsafe { core::arch::asm!("out 0x70, al", "in al, 0x71", inout("al") 0x0Au8 => status) };
    c.check(
        "port_io_with_iopl",
        gp() == before + 3 && status & 0x7F != 0,
        format_args!("gp={} status={status:#x}", gp()),
    );
    let bad = [4u32];
    c.err(
        "physdev_set_iopl_4",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, bad.as_ptr() as u32, 0, 0, 0],
        ),
        Errno::EINVAL,
    );
    let zero = [0u32];
    c.ok(
        "physdev_set_iopl_0",
        hcall(
            PHYSDEV_OP,
            [PHYSDEVOP_SET_IOPL, zero.as_ptr() as u32, 0, 0, 0],
        ),
    );
    c.err(
        "physdev_op_unknown",
        hcall(PHYSDEV_OP, [99, 0, 0, 0, 0]),
        Errno::ENOSYS,
    );

    // The forced-emulation CPUID: Xen's leaves and the hypervisor bit.
    let cpuid = |leaf: u32| -> (u32, u32, u32, u32) {
        let (a, b, c, d): (u32, u32, u32, u32);
        // SAFETY: ud2a "xen" cpuid: Oxen emulates it (EBX saved by hand, since
        // Rust reserves it).
        unsafe {
            core::arch::asm!(
                "push ebx",
                ".byte 0x0f, 0x0b, 0x78, 0x65, 0x6e",
                "cpuid",
                "mov {b}, ebx",
                "pop ebx",
                b = out(reg) b,
                inout("eax") leaf => a,
                inout("ecx") 0 => c,
                out("edx") d,
            )
        };
        (a, b, c, d)
    };
    let (a, b, cx, d) = cpuid(0x4000_0000);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&b.to_le_bytes());
    sig[4..8].copy_from_slice(&cx.to_le_bytes());
    sig[8..].copy_from_slice(&d.to_le_bytes());
    c.check(
        "cpuid_xen_signature",
        a >= 0x4000_0002 && &sig == b"XenVMMXenVMM",
        format_args!("{a:#x} {:?}", core::str::from_utf8(&sig)),
    );
    let (a, ..) = cpuid(0x4000_0001);
    c.check(
        "cpuid_xen_version",
        a == 0x0004_0001,
        format_args!("{a:#x}"),
    );
    let (a, b, ..) = cpuid(0x4000_0002);
    c.check(
        "cpuid_hypercall_page",
        a == 1 && b == 0x4000_0000,
        format_args!("{a} {b:#x}"),
    );
    let (_, _, cx, d) = cpuid(1);
    c.check(
        "cpuid_leaf1_filtered",
        cx & (1 << 31) != 0 && d & (1 << 13) == 0,
        format_args!("ecx={cx:#x} edx={d:#x}"),
    );
}

/// `test=console-input`: wait for a line typed on the hypervisor console
/// (VIRQ_CONSOLE wakes the blocked vcpu; console_io reads it), echo it, and
/// power off.
fn console_input(mem: &Mem<'_>) -> ! {
    use xen_abi::console::CONSOLEIO_READ;
    use xen_abi::evtchn::*;
    use xen_abi::hypercall::{CONSOLE_IO, SCHED_OP};
    let va = mem.scratch_va(61);
    let _ = mem.map(va, mem.si.shared_info >> 12, true);
    SHARED_VA.store(va, AtOrd::SeqCst);
    let _ = pvrt::events::init(va);
    for port in 0..SEEN.len() as u32 {
        pvrt::events::on(port, count_event);
    }
    let mut virq = EvtchnBindVirq {
        virq: VIRQ_CONSOLE,
        vcpu: 0,
        port: 0,
    };
    let _ = evtchn(EVTCHNOP_BIND_VIRQ, &mut virq);
    // VIRQ_DEBUG: Oxen's `q` debug key notifies it.
    let mut debug = EvtchnBindVirq {
        virq: VIRQ_DEBUG,
        vcpu: 0,
        port: 0,
    };
    let _ = evtchn(EVTCHNOP_BIND_VIRQ, &mut debug);
    // The default 10 ms periodic timer would only wake the vcpu needlessly.
    let _ = hcall(
        xen_abi::hypercall::VCPU_OP,
        [xen_abi::vcpu::VCPUOP_STOP_PERIODIC_TIMER, 0, 0, 0, 0],
    );
    println!("test-dom0: waiting for console input");
    let mut line = [0u8; 128];
    let mut len = 0;
    while !line[..len].contains(&b'\n') && len < line.len() {
        let _ = hcall(SCHED_OP, [xen_abi::sched::SCHEDOP_BLOCK, 0, 0, 0, 0]);
        let r = hcall(
            CONSOLE_IO,
            [
                CONSOLEIO_READ,
                (line.len() - len) as u32,
                line[len..].as_mut_ptr() as u32,
                0,
                0,
            ],
        );
        len += r.unwrap_or(0) as usize;
    }
    let seen = |port: u32| SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst));
    // Control bytes (the first two Ctrl-A of a switch to Oxen reach dom0, as
    // in Xen) are not shown.
    let mut shown = [0u8; 128];
    let mut n = 0;
    for &b in line[..len].iter().filter(|b| !b.is_ascii_control()) {
        shown[n] = b;
        n += 1;
    }
    let text = core::str::from_utf8(&shown[..n]).unwrap_or("<not utf-8>");
    println!(
        "test-dom0: console read '{text}' after {} VIRQ_CONSOLE event(s), {} VIRQ_DEBUG event(s)",
        seen(virq.port),
        seen(debug.port)
    );
    pvrt::hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
    panic!("shutdown returned");
}

fn domctl(d: &mut xen_abi::domctl::XenDomctl) -> Result<u32, Errno> {
    hcall(xen_abi::hypercall::DOMCTL, [d as *mut _ as u32, 0, 0, 0, 0])
}

fn sysctl(s: &mut xen_abi::sysctl::XenSysctl) -> Result<u32, Errno> {
    hcall(xen_abi::hypercall::SYSCTL, [s as *mut _ as u32, 0, 0, 0, 0])
}

/// `memory_op(kind)` (increase_reservation or populate_physmap) of
/// `frames.len()` single pages for domain `id`; `frames` goes in holding
/// pfns 0.. and comes back holding the machine frames.
fn reserve_for(id: DomId, kind: u32, frames: &mut [u32]) -> Result<u32, Errno> {
    for (i, f) in frames.iter_mut().enumerate() {
        *f = i as u32;
    }
    let res = xen_abi::memory::XenMemoryReservation {
        extent_start: frames.as_mut_ptr() as u32,
        nr_extents: frames.len() as u32,
        extent_order: 0,
        mem_flags: 0,
        domid: id,
        _pad: 0,
    };
    hcall(
        xen_abi::hypercall::MEMORY_OP,
        [kind, &res as *const _ as u32, 0, 0, 0],
    )
}

fn free_pages() -> u64 {
    use xen_abi::sysctl::*;
    let mut s = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    let _ = sysctl(&mut s);
    s.payload::<XenSysctlPhysinfo>().free_pages
}

/// The toolstack's calls (domctl, sysctl): a domain created, given memory,
/// listed, paused and unpaused, destroyed with all its memory back and
/// VIRQ_DOM_EXC raised; and the errors on the way.
fn domains(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::domctl::*;
    use xen_abi::evtchn::{EVTCHNOP_BIND_VIRQ, EvtchnBindVirq, VIRQ_DOM_EXC};
    use xen_abi::memory::{XENMEM_INCREASE_RESERVATION, XENMEM_POPULATE_PHYSMAP};
    use xen_abi::sysctl::*;
    let mut exc = EvtchnBindVirq {
        virq: VIRQ_DOM_EXC,
        vcpu: 0,
        port: 0,
    };
    c.ok("bind_virq_dom_exc", evtchn(EVTCHNOP_BIND_VIRQ, &mut exc));
    let seen = |port: u32| SEEN.get(port as usize).map_or(0, |n| n.load(AtOrd::SeqCst));
    let exc_before = seen(exc.port);
    let free_before = free_pages();
    let mut phys = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    let r = sysctl(&mut phys);
    let p: XenSysctlPhysinfo = phys.payload();
    c.check(
        "sysctl_physinfo",
        r.is_ok()
            && p.nr_cpus == 1
            && p.total_pages > p.free_pages
            && p.free_pages > 0
            && p.cpu_khz > 0,
        format_args!("{r:?} {p:?}"),
    );
    let mut sid = XenSysctl::new(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default());
    let r = sysctl(&mut sid);
    c.check(
        "sysctl_sched_id",
        r.is_ok() && sid.payload::<XenSysctlSchedId>().sched_id == XEN_SCHEDULER_CREDIT,
        format_args!("{r:?}"),
    );
    let mut old = XenSysctl::new(XEN_SYSCTL_SCHED_ID, &XenSysctlSchedId::default());
    old.interface_version = 7;
    c.err("sysctl_wrong_version", sysctl(&mut old), Errno::EACCES);

    let create = XenDomctlCreatedomain {
        handle: [0xAB; 16],
        ..Default::default()
    };
    let mut d = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &create);
    let r = domctl(&mut d);
    let id = d.domain;
    c.check(
        "domctl_createdomain",
        r.is_ok() && id >= 1,
        format_args!("{r:?} id={id}"),
    );
    let mut again = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, id, &create);
    c.err(
        "domctl_createdomain_taken",
        domctl(&mut again),
        Errno::EEXIST,
    );
    let hvm = XenDomctlCreatedomain {
        flags: XEN_DOMCTL_CDF_HVM_GUEST,
        ..Default::default()
    };
    let mut h = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &hvm);
    c.err("domctl_createdomain_hvm", domctl(&mut h), Errno::EINVAL);
    let mut v = XenDomctl::new(XEN_DOMCTL_PAUSEDOMAIN, id, &0u32);
    v.interface_version = 6;
    c.err("domctl_wrong_version", domctl(&mut v), Errno::EACCES);

    let info = |id: DomId| {
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            id,
            &XenDomctlGetdomaininfo::default(),
        );
        domctl(&mut d).map(|_| (d.domain, d.payload::<XenDomctlGetdomaininfo>()))
    };
    let i = info(id);
    c.check(
        "domctl_getdomaininfo_new",
        matches!(i, Ok((got, r)) if got == id && r.flags & XEN_DOMINF_PAUSED != 0
            && r.tot_pages == 0 && r.shared_info_frame != 0 && r.handle == [0xAB; 16]),
        format_args!("{i:?}"),
    );
    let mut mv = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, id, &XenDomctlMaxVcpus { max: 2 });
    c.err("domctl_max_vcpus_two", domctl(&mut mv), Errno::EINVAL);
    let mut mv = XenDomctl::new(XEN_DOMCTL_MAX_VCPUS, id, &XenDomctlMaxVcpus { max: 1 });
    c.ok("domctl_max_vcpus", domctl(&mut mv));
    let mut mm = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 64 });
    c.ok("domctl_max_mem", domctl(&mut mm));

    let mut pfns = [0u32; 20];
    let r = reserve_for(id, XENMEM_POPULATE_PHYSMAP, &mut pfns);
    c.check(
        "populate_other_domain_to_max_mem",
        r == Ok(16) && pfns[..16].iter().all(|&m| m != 0),
        format_args!("{r:?}"),
    );
    let i = info(id);
    c.check(
        "domctl_getdomaininfo_pages",
        matches!(i, Ok((_, r)) if r.tot_pages == 16 && r.max_pages == 16),
        format_args!("{i:?}"),
    );
    let mut smaller = XenDomctl::new(XEN_DOMCTL_MAX_MEM, id, &XenDomctlMaxMem { max_memkb: 32 });
    c.err(
        "domctl_max_mem_below_pages",
        domctl(&mut smaller),
        Errno::EINVAL,
    );
    let mut hi = XenDomctl::new(
        XEN_DOMCTL_HYPERCALL_INIT,
        id,
        &XenDomctlHypercallInit {
            gmfn: u64::from(pfns[0]),
        },
    );
    c.ok("domctl_hypercall_init", domctl(&mut hi));
    let mut hi = XenDomctl::new(
        XEN_DOMCTL_HYPERCALL_INIT,
        id,
        &XenDomctlHypercallInit {
            gmfn: u64::from(OXEN_IMAGE_MFN),
        },
    );
    c.err(
        "domctl_hypercall_init_foreign",
        domctl(&mut hi),
        Errno::EINVAL,
    );

    let mut list = [XenDomctlGetdomaininfo::default(); 8];
    let l = XenSysctlGetdomaininfolist {
        first_domain: 0,
        max_domains: 8,
        buffer: list.as_mut_ptr() as u64,
        ..Default::default()
    };
    let mut s = XenSysctl::new(XEN_SYSCTL_GETDOMAININFOLIST, &l);
    let r = sysctl(&mut s);
    let n = s.payload::<XenSysctlGetdomaininfolist>().num_domains;
    c.check(
        "sysctl_getdomaininfolist",
        r.is_ok()
            && n == 2
            && list[0].domain == 0
            && list[0].flags & XEN_DOMINF_RUNNING != 0
            && list[1].domain == id
            && list[1].tot_pages == 16,
        format_args!("{r:?} n={n} {:?} {:?}", list[0].domain, list[1].domain),
    );

    let op = |cmd: u32, dom: DomId| {
        let mut d = XenDomctl::new(cmd, dom, &0u32);
        domctl(&mut d)
    };
    c.ok("domctl_pause", op(XEN_DOMCTL_PAUSEDOMAIN, id));
    c.ok("domctl_unpause", op(XEN_DOMCTL_UNPAUSEDOMAIN, id));
    c.ok(
        "domctl_unpause_creation_pause",
        op(XEN_DOMCTL_UNPAUSEDOMAIN, id),
    );
    c.err(
        "domctl_unpause_unpaused",
        op(XEN_DOMCTL_UNPAUSEDOMAIN, id),
        Errno::EINVAL,
    );
    c.err(
        "domctl_pause_self",
        op(XEN_DOMCTL_PAUSEDOMAIN, 0),
        Errno::EINVAL,
    );
    c.err(
        "domctl_pause_missing",
        op(XEN_DOMCTL_PAUSEDOMAIN, 60),
        Errno::ESRCH,
    );
    let i = info(id);
    c.check(
        "domctl_unpaused_without_context_not_running",
        matches!(i, Ok((_, r)) if r.flags & (XEN_DOMINF_PAUSED | XEN_DOMINF_RUNNING) == 0
            && r.nr_online_vcpus == 0),
        format_args!("{i:?}"),
    );
    let rs = xen_abi::sched::SchedRemoteShutdown {
        domain_id: id,
        _pad: 0,
        reason: xen_abi::sched::SHUTDOWN_CRASH,
    };
    c.ok(
        "sched_remote_shutdown",
        hcall(
            xen_abi::hypercall::SCHED_OP,
            [
                xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                &rs as *const _ as u32,
                0,
                0,
                0,
            ],
        ),
    );
    let i = info(id);
    c.check(
        "remote_shutdown_reason_in_domaininfo",
        matches!(i, Ok((_, r)) if r.flags & XEN_DOMINF_SHUTDOWN != 0
            && dominf_shutdown_reason(r.flags) == xen_abi::sched::SHUTDOWN_CRASH),
        format_args!("{i:?}"),
    );
    let nobody = xen_abi::sched::SchedRemoteShutdown {
        domain_id: 60,
        _pad: 0,
        reason: 0,
    };
    c.err(
        "sched_remote_shutdown_missing",
        hcall(
            xen_abi::hypercall::SCHED_OP,
            [
                xen_abi::sched::SCHEDOP_REMOTE_SHUTDOWN,
                &nobody as *const _ as u32,
                0,
                0,
                0,
            ],
        ),
        Errno::ESRCH,
    );
    // The console ring (`xm dmesg`): an incremental read returns what was
    // printed since the last one.
    let mut buf = [0u8; 512];
    let mut rc = XenSysctlReadconsole {
        incremental: 1,
        index: 0,
        buffer: buf.as_mut_ptr() as u64,
        count: buf.len() as u32,
        ..Default::default()
    };
    let mut s1 = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
    let r1 = sysctl(&mut s1);
    let first = s1.payload::<XenSysctlReadconsole>();
    // Drain to the end, then print a marker and read it back.
    let mut next = first.index;
    loop {
        rc.index = next;
        let mut s = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
        let _ = sysctl(&mut s);
        let p = s.payload::<XenSysctlReadconsole>();
        next = p.index;
        if p.count == 0 {
            break;
        }
    }
    println!("test-dom0: readconsole marker");
    rc.index = next;
    let mut s2 = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &rc);
    let r2 = sysctl(&mut s2);
    let got = s2.payload::<XenSysctlReadconsole>();
    let text = &buf[..got.count as usize];
    c.check(
        "sysctl_readconsole_incremental",
        r1.is_ok() && first.count > 0 && r2.is_ok() && text == b"test-dom0: readconsole marker\n",
        format_args!("{r1:?} {r2:?} {:?}", core::str::from_utf8(text)),
    );
    c.err(
        "domctl_destroy_dom0",
        op(XEN_DOMCTL_DESTROYDOMAIN, 0),
        Errno::EINVAL,
    );
    c.err("domctl_unknown", op(99, id), Errno::ENOSYS);
    c.ok("domctl_destroydomain", op(XEN_DOMCTL_DESTROYDOMAIN, id));
    c.err(
        "domctl_destroyed_is_gone",
        op(XEN_DOMCTL_PAUSEDOMAIN, id),
        Errno::ESRCH,
    );
    // Eight domains at once, each with 256 pages (1 MiB), then all gone:
    // the free figure is back where it started.
    let mut ids = [0 as DomId; 8];
    let mut made = 0;
    for slot in ids.iter_mut() {
        let mut d = XenDomctl::new(XEN_DOMCTL_CREATEDOMAIN, 0, &create);
        if domctl(&mut d).is_err() {
            break;
        }
        *slot = d.domain;
        let mut mm = XenDomctl::new(
            XEN_DOMCTL_MAX_MEM,
            d.domain,
            &XenDomctlMaxMem { max_memkb: 1024 },
        );
        let _ = domctl(&mut mm);
        let mut frames = [0u32; 256];
        if reserve_for(d.domain, XENMEM_INCREASE_RESERVATION, &mut frames) == Ok(256) {
            made += 1;
        }
    }
    let distinct = (0..made).all(|i| (0..i).all(|j| ids[i] != ids[j]));
    let during = free_pages();
    let destroyed = ids[..made]
        .iter()
        .filter(|&&d| op(XEN_DOMCTL_DESTROYDOMAIN, d).is_ok())
        .count();
    c.check(
        "eight_domains_created_filled_destroyed",
        made == 8 && distinct && destroyed == 8 && during + 8 * 257 <= free_before,
        format_args!("made {made} destroyed {destroyed}, free {free_before} -> {during}"),
    );
    let free_after = free_pages();
    c.check(
        "destroy_gives_back_all_memory",
        free_after == free_before,
        format_args!("free before {free_before}, after {free_after}"),
    );
    // Events are masked (and shared_info unmapped) outside `events()`: let
    // the pending VIRQ_DOM_EXC in for a moment.
    let va = mem.scratch_va(61);
    let _ = mem.map(va, mem.si.shared_info >> 12, true);
    shared_u8(1).store(0, AtOrd::SeqCst);
    let _ = hcall(xen_abi::hypercall::XEN_VERSION, [0, 0, 0, 0, 0]);
    shared_u8(1).store(1, AtOrd::SeqCst);
    let _ = mem.unmap(va);
    c.check(
        "virq_dom_exc_on_destroy",
        seen(exc.port) > exc_before,
        format_args!("{} -> {}", exc_before, seen(exc.port)),
    );
}

fn read_fs() -> u32 {
    let v: u32;
    // SAFETY: reading a segment register has no side effects.
    unsafe { core::arch::asm!("mov {:e}, fs", out(reg) v) };
    v & 0xFFFF
}

fn write_fs(sel: u32) {
    // SAFETY: callers load selectors valid in the current GDT.
    unsafe { core::arch::asm!("mov fs, {:e}", in(reg) sel) };
}

/// `vm_assist(4gb_segments)`: a segment with a 4 GiB limit (truncated by
/// Oxen at the hole) reaches below its base with negative offsets, as TLS
/// does, only through the assist's emulation; `_notify` adds vector 15.
fn four_gb_segments(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{SET_GDT, SET_TRAP_TABLE};
    use xen_abi::traps::{
        TrapInfo, VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS, VMASST_TYPE_4GB_SEGMENTS_NOTIFY,
    };
    let data = mem.mfn(mem.first_free_pfn + 58);
    let dva = mem.scratch_va(50);
    c.ok("seg4gb_data_map", mem.map(dva, data, true));
    let base = dva + 0x100;
    // SAFETY: the data page is mapped writable at `dva`.
    unsafe { ((base - 8) as *mut u32).write_volatile(0xCAFE_F00D) };
    // GDT entry 1: DPL 1 read/write data at `base`, 4 GiB (G=1, limit 0xFFFFF).
    let desc: u64 = (u64::from(base & 0xFF00_0000) << 32)
        | 0x00CF_B200_0000_0000
        | (u64::from((base >> 16) & 0xFF) << 32)
        | (u64::from(base & 0xFFFF) << 16)
        | 0xFFFF;
    let g = descriptor_page(
        c,
        mem,
        ("seg4gb_gdt_map", "seg4gb_gdt_unmap"),
        57,
        49,
        &[(1, desc)],
    );
    let frames = [g];
    c.ok(
        "seg4gb_set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 2, 0, 0, 0]),
    );
    let v15 = [
        TrapInfo {
            vector: 15,
            flags: 0,
            cs: xen_abi::selectors::FLAT_KERNEL_CS,
            address: td_v15_handler as *const () as u32,
        },
        TrapInfo::default(),
    ];
    c.ok(
        "seg4gb_vector15_handler",
        hcall(SET_TRAP_TABLE, [v15.as_ptr() as u32, 0, 0, 0, 0]),
    );
    // SAFETY: the #GP handler reads td_gp_skip; nothing else runs.
    unsafe { core::ptr::addr_of_mut!(td_gp_skip).write_volatile(6) };
    write_fs(0x9);
    let load = || -> u32 {
        let v: u32;
        // SAFETY: `movl %fs:-8, %eax` (6 bytes): emulated, or a #GP the
        // handler skips.
        unsafe {
            core::arch::asm!(".byte 0x64, 0xA1, 0xF8, 0xFF, 0xFF, 0xFF", inout("eax") 0u32 => v)
        };
        v
    };
    // The limit the CPU holds is the truncated one (QEMU's TCG does not
    // enforce data-segment limits, so the #GP that the assist emulates on
    // hardware does not happen here: the emulation itself is host-tested in
    // hv_core::seg4gb; what is checked is the limit, the assist's
    // acceptance, and that the accesses give the 4 GiB-limit result).
    let limit: u32;
    // SAFETY: LSL only reads the descriptor.
    unsafe { core::arch::asm!("lsl {0:e}, {1:e}", out(reg) limit, in(reg) 0x9u32) };
    c.check(
        "seg4gb_limit_truncated",
        u64::from(base) + u64::from(limit) < 0xF680_0000 && limit > 0xF000_0000 - base,
        format_args!("base={base:#x} limit={limit:#x}"),
    );
    for (name, ty) in [
        ("seg4gb_enable", VMASST_TYPE_4GB_SEGMENTS),
        ("seg4gb_notify_enable", VMASST_TYPE_4GB_SEGMENTS_NOTIFY),
    ] {
        c.ok(name, vm_assist(VMASST_CMD_ENABLE, ty));
    }
    let gps = trap_count(1);
    let v = load();
    c.check(
        "seg4gb_negative_offset_load",
        v == 0xCAFE_F00D && trap_count(1) == gps,
        format_args!("eax={v:#x} #GPs={}", trap_count(1) - gps),
    );
    // SAFETY: `movl $0x600df00d, %fs:-12` (11 bytes).
    unsafe {
        core::arch::asm!(".byte 0x64, 0xC7, 0x05, 0xF4, 0xFF, 0xFF, 0xFF, 0x0D, 0xF0, 0x0D, 0x60")
    };
    // SAFETY: the data page is mapped at `dva`.
    let stored = unsafe { ((base - 12) as *const u32).read_volatile() };
    c.check(
        "seg4gb_negative_offset_store",
        stored == 0x600D_F00D && trap_count(1) == gps,
        format_args!("{stored:#x}"),
    );
    c.err(
        "seg4gb_unknown_assist",
        vm_assist(VMASST_CMD_ENABLE, 4),
        Errno::EINVAL,
    );
    let _ = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS_NOTIFY);
    let _ = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_4GB_SEGMENTS);
    // SAFETY: as above.
    unsafe { core::ptr::addr_of_mut!(td_gp_skip).write_volatile(2) };
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.ok("seg4gb_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
    let _ = mem.unmap(dva);
}

/// Fills the free frame `first_free_pfn + pfn` with descriptors (`(slot,
/// descriptor)`, the rest zero) through scratch slot `slot`, and unmaps it
/// again, checking both steps under the two names; returns the frame, ready
/// for `set_gdt`.
fn descriptor_page(
    c: &mut Checks,
    mem: &Mem<'_>,
    (map_name, unmap_name): (&str, &str),
    pfn: u32,
    slot: u32,
    entries: &[(usize, u64)],
) -> u32 {
    let g = mem.mfn(mem.first_free_pfn + pfn);
    let va = mem.scratch_va(slot);
    c.ok(map_name, mem.map(va, g, true));
    // SAFETY: the frame is mapped writable at `va`; every slot is < 512.
    unsafe {
        core::ptr::write_bytes(va as *mut u8, 0, PAGE as usize);
        for &(i, d) in entries {
            (va as *mut u64).add(i).write_volatile(d);
        }
    }
    c.ok(unmap_name, mem.unmap(va));
    g
}

/// `set_gdt` and `update_descriptor`: a GDT of the domain's own, descriptor
/// checks, and a selector that goes bad while loaded.
fn descriptors(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::{SET_GDT, UPDATE_DESCRIPTOR};
    use xen_abi::traps::{
        CALLBACKF_MASK_EVENTS, CALLBACKOP_REGISTER, CALLBACKTYPE_FAILSAFE, CallbackRegister,
        XenCallback,
    };
    const FLAT_DATA_DPL1: u64 = 0x00CF_B200_0000_67FF;
    const CODE_DPL0: u64 = 0x00CF_9A00_0000_67FF;
    const INTO_THE_HOLE: u64 = 0xF640_B290_0000_0FFF;
    let g = descriptor_page(
        c,
        mem,
        ("gdt_frame_map", "gdt_frame_unmap"),
        50,
        45,
        &[(1, FLAT_DATA_DPL1), (2, CODE_DPL0)],
    );
    let va = mem.scratch_va(45);
    let frames = [g];
    c.ok(
        "set_gdt",
        hcall(SET_GDT, [frames.as_ptr() as u32, 3, 0, 0, 0]),
    );
    write_fs(0x9);
    c.check(
        "gdt_selector_loads",
        read_fs() == 0x9,
        format_args!("fs={:#x}", read_fs()),
    );
    let ar: u32;
    // SAFETY: LAR only reads the descriptor.
    unsafe { core::arch::asm!("lar {0:e}, {1:e}", out(reg) ar, in(reg) 0x11u32) };
    c.check(
        "gdt_dpl0_raised_to_1",
        (ar >> 13) & 3 == 1,
        format_args!("ar={ar:#x}"),
    );
    c.err(
        "gdt_frame_not_writable",
        mem.map(va, g, true),
        Errno::EINVAL,
    );

    let ud = |ma: u64, d: u64| {
        hcall(
            UPDATE_DESCRIPTOR,
            [ma as u32, (ma >> 32) as u32, d as u32, (d >> 32) as u32, 0],
        )
    };
    let ma = u64::from(g) << 12;
    c.err(
        "update_descriptor_into_hole",
        ud(ma + 16, INTO_THE_HOLE),
        Errno::EINVAL,
    );
    c.ok("update_descriptor_gdt", ud(ma + 16, FLAT_DATA_DPL1));
    write_fs(0x11);
    c.check(
        "updated_selector_loads",
        read_fs() == 0x11,
        format_args!("fs={:#x}", read_fs()),
    );
    // The loaded selector goes bad: on the way back Oxen cannot reload it
    // and bounces the failsafe callback with the four data selectors, the
    // guest resuming with them null (its handler loads DS/ES again).
    let failsafe = CallbackRegister {
        type_: CALLBACKTYPE_FAILSAFE,
        flags: CALLBACKF_MASK_EVENTS,
        address: XenCallback {
            cs: u32::from(xen_abi::selectors::FLAT_KERNEL_CS),
            eip: td_failsafe_handler as *const () as u32,
        },
    };
    c.ok(
        "callback_register_failsafe",
        pvrt::hypercall::result(
            // SAFETY: `failsafe` is a live callback_register the call reads.
            unsafe {
                pvrt::hypercall::raw(
                    xen_abi::hypercall::CALLBACK_OP,
                    [CALLBACKOP_REGISTER, &failsafe as *const _ as u32, 0, 0, 0],
                )
            },
        ),
    );
    c.ok("update_descriptor_not_present", ud(ma + 16, 0));
    let segs = || -> [u32; 4] {
        // SAFETY: td_failsafe_segs is a static the failsafe handler writes;
        // read it volatile.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!(td_failsafe_segs)) }
    };
    let kds = u32::from(xen_abi::selectors::FLAT_KERNEL_DS);
    c.check(
        "bad_selector_failsafe_callback",
        trap_count(5) == 1 && segs()[0] == kds && segs()[1] == kds && segs()[2] == 0x11,
        format_args!("count={} ds/es/fs/gs={:x?}", trap_count(5), segs()),
    );
    c.check(
        "failsafe_resumes_null_fs",
        read_fs() == 0,
        format_args!("fs={:#x}", read_fs()),
    );
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.err("update_descriptor_misaligned", ud(ma + 4, 0), Errno::EINVAL);
    let plain = mem.mfn(mem.first_free_pfn + 51);
    c.ok(
        "update_descriptor_plain_page",
        ud((u64::from(plain) << 12) + 8, FLAT_DATA_DPL1),
    );
    let _ = mem.map(va, plain, false);
    // SAFETY: mapped read-only at `va`.
    let back = unsafe { ((va + 8) as *const u64).read_volatile() };
    c.check(
        "update_descriptor_plain_written",
        back == FLAT_DATA_DPL1,
        format_args!("{back:#x}"),
    );
    let _ = mem.unmap(va);
    let own_l1 = mem.l1e_maddr(va) & !0xFFF;
    c.err(
        "update_descriptor_page_table",
        ud(own_l1, FLAT_DATA_DPL1),
        Errno::EINVAL,
    );
    c.err(
        "update_descriptor_foreign",
        ud(u64::from(OXEN_IMAGE_MFN) << 12, FLAT_DATA_DPL1),
        Errno::EINVAL,
    );
    c.err(
        "set_gdt_too_many_entries",
        hcall(SET_GDT, [frames.as_ptr() as u32, 7169, 0, 0, 0]),
        Errno::EINVAL,
    );
    let h = [mem.mfn(mem.first_free_pfn + 52)];
    let _ = mem.map(va, h[0], true);
    c.err(
        "set_gdt_writable_frame",
        hcall(SET_GDT, [h.as_ptr() as u32, 1, 0, 0, 0]),
        Errno::EINVAL,
    );
    let _ = mem.unmap(va);
    c.ok("set_gdt_empty", hcall(SET_GDT, [0, 0, 0, 0, 0]));
    four_gb_segments(c, mem);

    // An LDT: its frame must be mapped (read-only) at the LDT's address.
    let l = mem.mfn(mem.first_free_pfn + 53);
    let la = mem.scratch_va(46);
    c.ok("ldt_frame_map", mem.map(la, l, true));
    // SAFETY: mapped writable at `la`.
    unsafe {
        core::ptr::write_bytes(la as *mut u8, 0, PAGE as usize);
        (la as *mut u64).add(1).write_volatile(FLAT_DATA_DPL1);
    }
    c.ok("ldt_frame_read_only", mem.map(la, l, false));
    c.ok("set_ldt_loaded", mmuext(MMUEXT_SET_LDT, la, 2));
    write_fs(0xD); // index 1, LDT, RPL 1
    c.check(
        "ldt_selector_loads",
        read_fs() == 0xD,
        format_args!("fs={:#x}", read_fs()),
    );
    c.err(
        "ldt_frame_not_writable",
        mem.map(la, l, true),
        Errno::EINVAL,
    );
    c.ok("set_ldt_none_again", mmuext(MMUEXT_SET_LDT, 0, 0));
    c.check(
        "ldt_gone_selector_failsafe",
        read_fs() == 0 && trap_count(5) == 2 && segs()[2] == 0xD,
        format_args!(
            "fs={:#x} count={} ds/es/fs/gs={:x?}",
            read_fs(),
            trap_count(5),
            segs()
        ),
    );
    write_fs(u32::from(xen_abi::selectors::FLAT_KERNEL_DS));
    c.ok("ldt_frame_writable_again", mem.map(la, l, true));
    c.ok("ldt_frame_unmap", mem.unmap(la));
    c.err(
        "set_ldt_unmapped",
        mmuext(MMUEXT_SET_LDT, la, 2),
        Errno::EINVAL,
    );
    c.ok("gdt_frame_writable_again", mem.map(va, g, true));
    let _ = mem.unmap(va);
}
