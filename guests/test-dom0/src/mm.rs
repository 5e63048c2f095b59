//! The validated PV MMU and memory: `update_va_mapping(_otherdomain)`,
//! `mmu_update` (with PRESERVE_AD and MACHPHYS_UPDATE), `mmuext_op` (pins,
//! base pointers, flushes, clear/copy page, LDT registration), `multicall`,
//! new page tables built, pinned and switched to, writable page tables
//! (ptwr), the bad inputs every one of them refuses, a batch long enough to
//! be continued, `memory_op`, and Oxen's own frames, which dom0 may map only
//! where Oxen shares them (the M2P) and only read-only.

use pvrt::mm::{
    mfn_to_pfn, mmu_update, mmuext, mmuext_op, pfn_to_mfn, update_va_mapping,
    update_va_mapping_otherdomain, vm_assist,
};
use pvrt::println;
use xen_abi::domid::{DOMID_IO, DOMID_SELF, DOMID_XEN};
use xen_abi::errno::Errno;
use xen_abi::mm::{
    MMU_MACHPHYS_UPDATE, MMU_PT_UPDATE_PRESERVE_AD, MMUEXT_CLEAR_PAGE, MMUEXT_COPY_PAGE,
    MMUEXT_INVLPG_LOCAL, MMUEXT_NEW_BASEPTR, MMUEXT_NEW_USER_BASEPTR, MMUEXT_PIN_L1_TABLE,
    MMUEXT_PIN_L2_TABLE, MMUEXT_PIN_L3_TABLE, MMUEXT_PIN_L4_TABLE, MMUEXT_SET_LDT,
    MMUEXT_TLB_FLUSH_LOCAL, MMUEXT_UNPIN_TABLE, MmuUpdate, MmuextOp, UVMF_ALL, UVMF_INVLPG,
    UVMF_TLB_FLUSH,
};
use xen_abi::traps::{
    VMASST_CMD_DISABLE, VMASST_CMD_ENABLE, VMASST_TYPE_PAE_EXTENDED_CR3,
    VMASST_TYPE_WRITABLE_PAGETABLES,
};

use crate::helpers::{
    A, Checks, D, FRAME, Mem, OXEN_IMAGE_MFN, P, PAGE, RW, US, hcall, normal, pte, read_u32,
    self_dom, write_u32,
};

/// update_va_mapping, mmu_update and MACHPHYS_UPDATE on ordinary frames.
pub(crate) fn mappings(c: &mut Checks, mem: &Mem<'_>) {
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
pub(crate) fn more_mmu_ops(c: &mut Checks, mem: &Mem<'_>) {
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
pub(crate) fn multicall(c: &mut Checks, mem: &Mem<'_>) {
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

/// Fills the frames mapped writable at `l3_va` and `l2_va` as a copy of the
/// bootstrap address space: the L3 shares the bootstrap L2s of slots 0-2,
/// and its slot 3 is the new L2 (`l2_mfn`), whose guest part copies the
/// bootstrap slot-3 L2's (the same L1s).
fn fill_l3_copy(mem: &Mem<'_>, l3_va: u32, l2_va: u32, l2_mfn: u32) {
    let boot_l3 = mem.si.pt_base as *const u64;
    // SAFETY: the bootstrap L3 is mapped read-only at pt_base.
    let boot_l3e = |i: usize| unsafe { boot_l3.add(i).read_volatile() };
    let boot_l2 = mem.va_of_mfn(((boot_l3e(3) & FRAME) >> 12) as u32) as *const u64;
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
}

/// Builds a new address space (new L3 and a new slot-3 L2 sharing the
/// bootstrap L1s), pins it, switches to it and back, and unpins it.
pub(crate) fn new_page_tables(c: &mut Checks, mem: &Mem<'_>) {
    let si = mem.si;
    let (l3_pfn, l2_pfn) = (mem.first_free_pfn + 1, mem.first_free_pfn + 2);
    let (l3_mfn, l2_mfn) = (mem.mfn(l3_pfn), mem.mfn(l2_pfn));
    let (l3_va, l2_va) = (mem.scratch_va(10), mem.scratch_va(11));
    c.ok(
        "map_new_tables_rw",
        mem.map(l3_va, l3_mfn, true)
            .and(mem.map(l2_va, l2_mfn, true)),
    );
    fill_l3_copy(mem, l3_va, l2_va, l2_mfn);
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
pub(crate) fn writable_pagetables(c: &mut Checks, mem: &Mem<'_>) {
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
pub(crate) fn bad_input(c: &mut Checks, mem: &Mem<'_>) {
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
    // A `done` pointer into the hole: as Xen, the update is made and the
    // result stands; only the count is not written.
    // SAFETY: as above (the `done` pointer).
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::MMU_UPDATE,
            [reqs.as_ptr() as u32, 1, 0xFF00_0000, self_dom(), 0],
        )
    });
    c.ok("mmu_update_done_in_hole_ignored", r);
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
pub(crate) fn long_batch(c: &mut Checks, mem: &Mem<'_>) {
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

/// A batch of 500 `PIN_L3`/`UNPIN` pairs on one L3 (each pin validates its
/// fresh slot-3 L2, 512 entries, and each unpin takes it down): fewer ops
/// than Oxen serves per invocation by count (1024), so only its clock can
/// split the batch. An event made pending (masked) just before is
/// delivered at Oxen's first return to this vcpu, and its handler notes
/// `pdone` there: fewer than the batch means Oxen yielded in the middle
/// (a continuation, as Xen's `hypercall_preempt_check`). The batch still
/// completes, `pdone` counts every op across the continuations, and the L3
/// ends unpinned (with `mm_audit`, every invocation is recounted).
pub(crate) fn pin_unpin_batch(c: &mut Checks, mem: &Mem<'_>) {
    use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
    use xen_abi::evtchn::{EVTCHNOP_BIND_IPI, EVTCHNOP_CLOSE, EVTCHNOP_SEND};
    use xen_abi::evtchn::{EvtchnBindIpi, EvtchnClose, EvtchnSend};
    const OPS: usize = 1000;
    static DONE: AtomicU32 = AtomicU32::new(0);
    static DONE_AT_EVENT: AtomicU32 = AtomicU32::new(u32::MAX);
    fn note_done(_port: u32) {
        if DONE_AT_EVENT
            .compare_exchange(u32::MAX, DONE.load(SeqCst), SeqCst, SeqCst)
            .is_ok()
        {
            probe_at_event();
        }
    }
    let (l3_mfn, l2_mfn) = (
        mem.mfn(mem.first_free_pfn + 1),
        mem.mfn(mem.first_free_pfn + 2),
    );
    let (l3_va, l2_va) = (mem.scratch_va(10), mem.scratch_va(11));
    let mapped = mem
        .map(l3_va, l3_mfn, true)
        .and(mem.map(l2_va, l2_mfn, true));
    if mapped.is_ok() {
        fill_l3_copy(mem, l3_va, l2_va, l2_mfn);
    }
    let unmapped = mem.unmap(l3_va).and(mem.unmap(l2_va));
    static mut BATCH: [MmuextOp; OPS] = [MmuextOp::new(0, 0, 0); OPS];
    // SAFETY: one vcpu, and only this function touches BATCH.
    let batch = unsafe { &mut *core::ptr::addr_of_mut!(BATCH) };
    for (i, op) in batch.iter_mut().enumerate() {
        let cmd = if i % 2 == 0 {
            MMUEXT_PIN_L3_TABLE
        } else {
            MMUEXT_UNPIN_TABLE
        };
        *op = MmuextOp::new(cmd, l3_mfn, 0);
    }
    // shared_info where pvrt's upcall and `events` look for it (the
    // earlier families unmapped it).
    let si_va = crate::events::SHARED_VA.load(SeqCst);
    let si_mapped = mem.map(si_va, mem.si.shared_info >> 12, true);
    let mut ipi = EvtchnBindIpi { vcpu: 0, port: 0 };
    let bound = crate::events::evtchn(EVTCHNOP_BIND_IPI, &mut ipi);
    pvrt::events::on(ipi.port, note_done);
    let upcall_mask = crate::events::shared_u8(1);
    upcall_mask.store(1, SeqCst);
    let sent = crate::events::evtchn(EVTCHNOP_SEND, &mut EvtchnSend { port: ipi.port });
    // Unmasked without a hypercall: the event waits for Oxen's next return.
    upcall_mask.store(0, SeqCst);
    // SAFETY: the batch and DONE outlive the call; Oxen reads the one and
    // writes the other.
    let r = pvrt::hypercall::result(unsafe {
        pvrt::hypercall::raw(
            xen_abi::hypercall::MMUEXT_OP,
            [
                batch.as_ptr() as u32,
                OPS as u32,
                DONE.as_ptr() as u32,
                self_dom(),
                0,
            ],
        )
    });
    let (done, at_event) = (DONE.load(SeqCst), DONE_AT_EVENT.load(SeqCst));
    pvrt::events::on(ipi.port, crate::events::count_event);
    let _ = crate::events::evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port: ipi.port });
    upcall_mask.store(1, SeqCst);
    let _ = mem.unmap(si_va);
    c.check(
        "pin_unpin_batch_completes",
        mapped.is_ok() && unmapped.is_ok() && r == Ok(0) && done == OPS as u32,
        format_args!("{mapped:?} {unmapped:?} {r:?} done={done}"),
    );
    c.check(
        "pin_unpin_batch_preempted",
        si_mapped.is_ok() && bound.is_ok() && sent.is_ok() && (1..OPS as u32).contains(&at_event),
        format_args!("{si_mapped:?} {bound:?} {sent:?} pdone at the first return: {at_event}"),
    );
    c.ok(
        "pin_unpin_batch_leaves_l3_unpinned",
        mem.map(l3_va, l3_mfn, true).and(mem.unmap(l3_va)),
    );
}

/// A frame [`with_event_pending`]'s event handler tries to map writable (at
/// the scratch address beside it; 0: none), and what that gave (0 mapped,
/// else the errno; -1 not tried).
static PROBE_MFN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static PROBE_VA: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static PROBE_SEEN: core::sync::atomic::AtomicI32 = core::sync::atomic::AtomicI32::new(-1);
/// A domain whose `getdomaininfo` flags the event handler notes
/// (`u32::MAX`: none), and the flags it saw (`u32::MAX`: no such domain).
pub(crate) static PROBE_DOMID: core::sync::atomic::AtomicU32 =
    core::sync::atomic::AtomicU32::new(u32::MAX);
pub(crate) static PROBE_DOMFLAGS: core::sync::atomic::AtomicU32 =
    core::sync::atomic::AtomicU32::new(u32::MAX);
/// The CR3 (Xen's encoding) the event handler read.
static CR3_AT_EVENT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn probe_at_event() {
    use core::sync::atomic::Ordering::SeqCst;
    let cr3: u32;
    // SAFETY: emulated by Oxen (mov %cr3,%reg).
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3) };
    CR3_AT_EVENT.store(cr3, SeqCst);
    let domid = PROBE_DOMID.load(SeqCst);
    if domid != u32::MAX {
        use xen_abi::domctl::{XEN_DOMCTL_GETDOMAININFO, XenDomctl, XenDomctlGetdomaininfo};
        let mut d = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            domid as u16,
            &XenDomctlGetdomaininfo::default(),
        );
        let info = crate::domains::domctl(&mut d).map(|_| d.payload::<XenDomctlGetdomaininfo>());
        let flags = match info {
            Ok(i) if u32::from(i.domain) == domid => i.flags,
            _ => u32::MAX,
        };
        PROBE_DOMFLAGS.store(flags, SeqCst);
    }
    let (mfn, va) = (PROBE_MFN.load(SeqCst), PROBE_VA.load(SeqCst));
    if mfn == 0 {
        return;
    }
    let r = update_va_mapping(va, pte(mfn, P | RW | A | D), UVMF_INVLPG);
    if r.is_ok() {
        let _ = update_va_mapping(va, 0, UVMF_INVLPG);
    }
    PROBE_SEEN.store(r.map_or_else(|e| e.0, |_| 0), SeqCst);
}

/// What the last [`with_event_pending`] ended with: a hypercall's `pdone`
/// (written by Oxen there) at the end and when the event came.
static DONE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
static DONE_AT_EVENT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// Runs `f` with an event pending, so that Oxen's first return to the guest
/// (a continuation, a retried instruction, or the end of the call) delivers
/// it; its handler notes [`DONE`] and runs the probes. Returns what `f`
/// returned and [`DONE`] when the event came (`u32::MAX`: it never came);
/// `Err` if the event could not be set up.
pub(crate) fn with_event_pending<R>(
    mem: &Mem<'_>,
    f: impl FnOnce() -> R,
) -> Result<(R, u32), Errno> {
    use core::sync::atomic::Ordering::SeqCst;
    use xen_abi::evtchn::{EVTCHNOP_BIND_IPI, EVTCHNOP_CLOSE, EVTCHNOP_SEND};
    use xen_abi::evtchn::{EvtchnBindIpi, EvtchnClose, EvtchnSend};
    fn note_done(_port: u32) {
        if DONE_AT_EVENT
            .compare_exchange(u32::MAX, DONE.load(SeqCst), SeqCst, SeqCst)
            .is_ok()
        {
            probe_at_event();
        }
    }
    DONE.store(0, SeqCst);
    DONE_AT_EVENT.store(u32::MAX, SeqCst);
    let si_va = crate::events::SHARED_VA.load(SeqCst);
    mem.map(si_va, mem.si.shared_info >> 12, true)?;
    let mut ipi = EvtchnBindIpi { vcpu: 0, port: 0 };
    crate::events::evtchn(EVTCHNOP_BIND_IPI, &mut ipi)?;
    pvrt::events::on(ipi.port, note_done);
    let upcall_mask = crate::events::shared_u8(1);
    upcall_mask.store(1, SeqCst);
    let sent = crate::events::evtchn(EVTCHNOP_SEND, &mut EvtchnSend { port: ipi.port });
    // Unmasked without a hypercall: the event waits for Oxen's next return.
    upcall_mask.store(0, SeqCst);
    let r = f();
    pvrt::events::on(ipi.port, crate::events::count_event);
    let _ = crate::events::evtchn(EVTCHNOP_CLOSE, &mut EvtchnClose { port: ipi.port });
    upcall_mask.store(1, SeqCst);
    mem.unmap(si_va)?;
    sent?;
    Ok((r, DONE_AT_EVENT.load(SeqCst)))
}

/// Runs hypercall `nr` (`mmuext_op` or `mmu_update`) on the one-entry list
/// at `list` [`with_event_pending`]. Returns the call's result, `pdone` at
/// the end and `pdone` when the event came; `Err` if the event could not be
/// set up.
fn one_op_with_event_pending(
    mem: &Mem<'_>,
    nr: u32,
    list: u32,
) -> Result<(Result<u32, Errno>, u32, u32), Errno> {
    use core::sync::atomic::Ordering::SeqCst;
    let (r, at_event) = with_event_pending(mem, || {
        // SAFETY: the caller's list and DONE outlive the call; Oxen reads
        // the one and writes the other.
        pvrt::hypercall::result(unsafe {
            pvrt::hypercall::raw(nr, [list, 1, DONE.as_ptr() as u32, self_dom(), 0])
        })
    })?;
    Ok((r, DONE.load(SeqCst), at_event))
}

/// An emulated `mov %reg,%cr3` of the L3 `mfn` [`with_event_pending`];
/// returns the CR3 (Xen's encoding) the event handler saw, and that after.
fn write_cr3_with_event_pending(mem: &Mem<'_>, mfn: u32) -> Result<(u32, u32), Errno> {
    use core::sync::atomic::Ordering::SeqCst;
    CR3_AT_EVENT.store(0, SeqCst);
    with_event_pending(mem, || {
        // SAFETY: emulated by Oxen: a new base pointer mapping this kernel
        // as the current one does (slot 3 a copy of the bootstrap L2).
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) xen_abi::mm::xen_pfn_to_cr3(mfn)) };
    })?;
    let cr3: u32;
    // SAFETY: emulated by Oxen.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3) };
    Ok((CR3_AT_EVENT.load(SeqCst), cr3))
}

/// A `MMUEXT_PIN_L3_TABLE` of a fresh tree (four fresh L2s, eight fresh L1s
/// under the first, the slot-3 L2 a copy of the bootstrap one: about 6000
/// entries to validate) is split: with an event pending, the first return
/// to the guest comes with the op not yet done (`pdone` 0), and the pin
/// completes in later continuations. The tree is then pinned and usable (an
/// entry of its slot-0 L2 is updated as a validated table's); an
/// `mmu_update` of its slot-1 entry naming a fresh L2 over eight fresh L1s
/// is split the same way, and so is its `UNPIN` (as many entries to take
/// down).
pub(crate) fn pin_big_l3_preempted(c: &mut Checks, mem: &Mem<'_>) {
    const L1S: u32 = 8;
    let f = |i: u32| mem.mfn(mem.first_free_pfn + 110 + i);
    let (l3, l2s, l1) = (f(0), [f(1), f(2), f(3), f(4)], |i: u32| f(5 + i));
    let (l3_va, l2_va) = (mem.scratch_va(10), mem.scratch_va(11));
    // Fresh, zeroed frames; the L3 and the slot-3 L2 as in new_page_tables,
    // with the L3's slots 0-2 on fresh L2s, the first over the L1s.
    let mut built = (0..L1S + 5).try_for_each(|i| mmuext(MMUEXT_CLEAR_PAGE, f(i), 0).map(|_| ()));
    built = built.and_then(|()| {
        mem.map(l3_va, l3, true)?;
        mem.map(l2_va, l2s[3], true)?;
        fill_l3_copy(mem, l3_va, l2_va, l2s[3]);
        for (i, &l2) in l2s[..3].iter().enumerate() {
            // SAFETY: the L3 is mapped writable at l3_va.
            unsafe { (l3_va as *mut u64).add(i).write_volatile(pte(l2, P)) };
        }
        mem.unmap(l2_va)?;
        mem.map(l2_va, l2s[0], true)?;
        for i in 0..L1S {
            // SAFETY: the slot-0 L2 is mapped writable at l2_va.
            unsafe {
                (l2_va as *mut u64)
                    .add(i as usize)
                    .write_volatile(pte(l1(i), P | RW | US | A))
            };
        }
        mem.unmap(l2_va)?;
        mem.unmap(l3_va).map(|_| ())
    });
    let with_event = |op: MmuextOp| {
        let ops = [op];
        one_op_with_event_pending(mem, xen_abi::hypercall::MMUEXT_OP, ops.as_ptr() as u32)
    };
    let pin = with_event(MmuextOp::new(MMUEXT_PIN_L3_TABLE, l3, 0));
    c.check(
        "pin_big_l3_split",
        built.is_ok() && pin == Ok((Ok(0), 1, 0)),
        format_args!("{built:?} (result, pdone, pdone at the first return) {pin:?}"),
    );
    // Pinned: a second pin is refused; usable: an entry of its slot-0 L2 is
    // updated as in a validated table (a raw write would be refused).
    let again = mmuext(MMUEXT_PIN_L3_TABLE, l3, 0);
    let slot = (u64::from(l2s[0]) << 12) + 8 * u64::from(L1S);
    let (upd, _) = mmu_update(&[normal(slot, pte(l1(0), P | RW | US | A))], self_dom());
    let (clr, _) = mmu_update(&[normal(slot, 0)], self_dom());
    let typed = mem.map(l2_va, l2s[0], true);
    c.check(
        "pin_big_l3_pinned_and_usable",
        again == Err(Errno::EINVAL) && upd.is_ok() && clr.is_ok() && typed == Err(Errno::EINVAL),
        format_args!("{again:?} {upd:?} {clr:?} {typed:?}"),
    );
    // An L3 entry naming a fresh L2 over eight fresh L1s: validated in
    // steps too, then stored (slot 1's old L2 is released).
    let (new_l2, new_l1) = (f(L1S + 5), |i: u32| f(L1S + 6 + i));
    let mut fresh =
        (L1S + 5..2 * L1S + 6).try_for_each(|i| mmuext(MMUEXT_CLEAR_PAGE, f(i), 0).map(|_| ()));
    fresh = fresh.and_then(|()| {
        mem.map(l2_va, new_l2, true)?;
        for i in 0..L1S {
            // SAFETY: the new L2 is mapped writable at l2_va.
            unsafe {
                (l2_va as *mut u64)
                    .add(2 * i as usize)
                    .write_volatile(pte(new_l1(i), P | RW | US | A))
            };
        }
        mem.unmap(l2_va).map(|_| ())
    });
    let req = [normal((u64::from(l3) << 12) + 8, pte(new_l2, P))];
    let entry = one_op_with_event_pending(mem, xen_abi::hypercall::MMU_UPDATE, req.as_ptr() as u32);
    let released = mem.map(l2_va, l2s[1], true).and(mem.unmap(l2_va));
    let in_use = mem.map(l2_va, new_l2, true);
    c.check(
        "pin_big_l3_entry_split",
        fresh.is_ok() && entry == Ok((Ok(0), 1, 0)) && released.is_ok() && in_use == Err(Errno::EINVAL),
        format_args!("{fresh:?} (result, pdone, pdone at the first return) {entry:?}, old L2 {released:?}, new L2 {in_use:?}"),
    );
    // Putting the old L2 back: the new one loses its last reference, and
    // taking it down (eight L1s and their ~4600 entries) is split too
    // (Xen's old_guest_table): at the first return the update is done
    // (pdone 1) but the new L2 is still being taken down, so it cannot be
    // mapped writable; at the end it and its L1s can.
    use core::sync::atomic::Ordering::SeqCst;
    let back = [normal((u64::from(l3) << 12) + 8, pte(l2s[1], P))];
    PROBE_SEEN.store(-1, SeqCst);
    PROBE_VA.store(l2_va, SeqCst);
    PROBE_MFN.store(new_l2, SeqCst);
    let put = one_op_with_event_pending(mem, xen_abi::hypercall::MMU_UPDATE, back.as_ptr() as u32);
    PROBE_MFN.store(0, SeqCst);
    let during = PROBE_SEEN.load(SeqCst);
    let after = mem
        .map(l2_va, new_l2, true)
        .and(mem.unmap(l2_va))
        .and(mem.map(l2_va, new_l1(L1S - 1), true))
        .and(mem.unmap(l2_va));
    c.check(
        "l3_entry_old_l2_taken_down_in_steps",
        put == Ok((Ok(0), 1, 1)) && during == Errno::EINVAL.0 && after.is_ok(),
        format_args!("(result, pdone, pdone at the first return) {put:?}; writable map of the old L2 at the first return {during}, after {after:?}"),
    );
    let unpin = with_event(MmuextOp::new(MMUEXT_UNPIN_TABLE, l3, 0));
    let writable = mem.map(l2_va, l2s[0], true).and(mem.unmap(l2_va));
    c.check(
        "pin_big_l3_unpin_split",
        unpin == Ok((Ok(0), 1, 0)) && writable.is_ok(),
        format_args!("(result, pdone, pdone at the first return) {unpin:?}, then {writable:?}"),
    );
    // Running on that (unpinned) tree, then leaving it: the old base
    // pointer's last type reference goes, and taking its ~6000 entries down
    // is split too (Xen's old_guest_table). At the first return to the
    // guest the NEW_BASEPTR is done (pdone 1) but the old L3 is still being
    // taken down, so it cannot be mapped writable; at the end it can.
    let on = with_event(MmuextOp::new(MMUEXT_NEW_BASEPTR, l3, 0));
    let boot = (boot_l3_maddr(mem) >> 12) as u32;
    PROBE_SEEN.store(-1, SeqCst);
    PROBE_VA.store(l3_va, SeqCst);
    PROBE_MFN.store(l3, SeqCst);
    let off = with_event(MmuextOp::new(MMUEXT_NEW_BASEPTR, boot, 0));
    PROBE_MFN.store(0, SeqCst);
    let during = PROBE_SEEN.load(SeqCst);
    let after = mem.map(l3_va, l3, true).and(mem.unmap(l3_va));
    c.check(
        "old_base_pointer_taken_down_in_steps",
        on.is_ok_and(|(r, done, _)| r == Ok(0) && done == 1)
            && off.is_ok_and(|(r, done, at)| r == Ok(0) && done == 1 && at == 1)
            && during == Errno::EINVAL.0
            && after.is_ok(),
        format_args!(
            "on {on:?} off {off:?} (result, pdone, pdone at the first return); writable map of the old L3 at the first return {during}, after {after:?}"
        ),
    );
    // The same by an emulated `mov %reg,%cr3` (Xen's new_guest_cr3): the
    // fresh tree is validated in steps, the instruction executed again
    // until it completes (at the first return CR3 is still the old one);
    // leaving it, its put is split, and the instruction retried until that
    // is done (at the first return CR3 is the new one and the old L3 still
    // cannot be mapped writable).
    let boot_cr3 = xen_abi::mm::xen_pfn_to_cr3(boot);
    let cr3_on = write_cr3_with_event_pending(mem, l3);
    PROBE_SEEN.store(-1, SeqCst);
    PROBE_VA.store(l3_va, SeqCst);
    PROBE_MFN.store(l3, SeqCst);
    let cr3_off = write_cr3_with_event_pending(mem, boot);
    PROBE_MFN.store(0, SeqCst);
    let during = PROBE_SEEN.load(SeqCst);
    let after = mem.map(l3_va, l3, true).and(mem.unmap(l3_va));
    let l3_cr3 = xen_abi::mm::xen_pfn_to_cr3(l3);
    c.check(
        "emulated_cr3_validates_in_steps",
        cr3_on == Ok((boot_cr3, l3_cr3)),
        format_args!(
            "(CR3 at the first return, after) {cr3_on:x?}, boot {boot_cr3:#x}, new {l3_cr3:#x}"
        ),
    );
    c.check(
        "emulated_cr3_old_base_taken_down_in_steps",
        cr3_off == Ok((boot_cr3, boot_cr3)) && during == Errno::EINVAL.0 && after.is_ok(),
        format_args!(
            "(CR3 at the first return, after) {cr3_off:x?}; writable map of the old L3 at the first return {during}, after {after:?}"
        ),
    );
}

/// `memory_op`: sizes, maps, and growing and shrinking the reservation.
pub(crate) fn memory(c: &mut Checks, mem: &Mem<'_>) {
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
    // dom0's last frame's entry (a pfn other than 0), read through the chunk
    // list: the M2P is Oxen's, shared read-only with dom0 (FD = DOMID_XEN).
    let va = mem.scratch_va(47);
    let probe = mem.mfn(mem.si.nr_pages - 1);
    let m2p_frame = chunks[0] + probe / 1024;
    let (mapped, _) = mmu_update(
        &[normal(mem.l1e_maddr(va), pte(m2p_frame, P | A))],
        u32::from(DOMID_XEN),
    );
    // SAFETY: the M2P frame holding `probe`'s entry is mapped read-only at
    // `va` (if the mapping failed, `va` still maps one of dom0's own frames).
    let entry = unsafe { ((va + 4 * (probe % 1024)) as *const u32).read_volatile() };
    let _ = mem.unmap(va);
    let same = entry == mfn_to_pfn(probe) && entry != 0;
    c.check(
        "memory_machphys_mfn_list",
        r.is_ok() && list[2] >= 1 && chunks[0].is_multiple_of(512) && mapped.is_ok() && same,
        format_args!(
            "{r:?} n={} first={:#x} map {mapped:?} entry {entry:#x}",
            list[2], chunks[0]
        ),
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

/// Maps `mfn` writable at `va`, zeroes it, writes `entries` and `word` at
/// offset 0 (if not 0), and unmaps it again.
fn fill_frame(mem: &Mem<'_>, va: u32, mfn: u32, entries: &[(usize, u64)], word: u32) -> bool {
    if mem.map(va, mfn, true).is_err() {
        return false;
    }
    // SAFETY: the frame is mapped writable at `va`.
    unsafe {
        core::ptr::write_bytes(va as *mut u8, 0, PAGE as usize);
        for &(i, e) in entries {
            (va as *mut u64).add(i).write_volatile(e);
        }
        if word != 0 {
            (va as *mut u32).write_volatile(word);
        }
    }
    mem.unmap(va).is_ok()
}

/// The bootstrap L3's machine address.
fn boot_l3_maddr(mem: &Mem<'_>) -> u64 {
    let si = mem.si;
    u64::from(pfn_to_mfn(si, (si.pt_base - pvrt::VIRT_BASE) / PAGE).unwrap_or(0)) << 12
}

/// Entry `i` of the bootstrap L3 (mapped read-only at pt_base).
fn boot_l3e(mem: &Mem<'_>, i: usize) -> u64 {
    // SAFETY: the bootstrap L3 is mapped read-only at pt_base.
    unsafe { (mem.si.pt_base as *const u64).add(i).read_volatile() }
}

/// Where [`l3_entries`] maps its two address-space pieces: L3 slot 1.
const SLOT1_VA: u32 = 0x4000_0000;
/// The flags 64-bit Xen accepts in an L3 entry of a 32-bit guest.
const L3_COMPAT: u64 = P | RW | US | A | D;
const MAGIC_A: u32 = 0x1A3_000A;
const MAGIC_B: u32 = 0x1A3_000B;

/// Two L2s for L3 slot 1, each mapping a data frame (holding `MAGIC_A` /
/// `MAGIC_B`) at `SLOT1_VA` through its own L1: (l2a, l2b, data a).
fn slot1_tables(mem: &Mem<'_>) -> Option<(u32, u32, u32)> {
    let f = |i: u32| mem.mfn(mem.first_free_pfn + 70 + i);
    let (l2a, l1a, da, l2b, l1b, db) = (f(0), f(1), f(2), f(3), f(4), f(5));
    let va = mem.scratch_va(5);
    let ok = fill_frame(mem, va, da, &[], MAGIC_A)
        && fill_frame(mem, va, db, &[], MAGIC_B)
        && fill_frame(mem, va, l1a, &[(0, pte(da, P | RW | A | D))], 0)
        && fill_frame(mem, va, l1b, &[(0, pte(db, P | RW | A | D))], 0)
        && fill_frame(mem, va, l2a, &[(0, pte(l1a, P | RW | US | A | D))], 0)
        && fill_frame(mem, va, l2b, &[(0, pte(l1b, P | RW | US | A | D))], 0);
    ok.then_some((l2a, l2b, da))
}

/// Issue 10 finding 4: CR3 holds Oxen's low copy of the L3 with only the
/// PDPTE bits, so L3 entries may carry what 64-bit Xen takes from 32-bit
/// guests (RW, US, A, D) and they work; PWT, PCD, PS, G and bits 44-63 are
/// refused; and a change to the running L3 is seen at once (the copy is
/// refreshed and CR3 reloaded before the guest runs again).
pub(crate) fn l3_entries(c: &mut Checks, mem: &Mem<'_>) {
    let slot1 = boot_l3_maddr(mem) + 8;
    let Some((l2a, l2b, da)) = slot1_tables(mem) else {
        c.check("l3_slot1_tables_built", false, format_args!("fill failed"));
        return;
    };
    let (r, done) = mmu_update(&[normal(slot1, pte(l2a, L3_COMPAT))], self_dom());
    c.check(
        "l3_entry_compat_flags_accepted",
        r.is_ok() && done == 1 && boot_l3e(mem, 1) == pte(l2a, L3_COMPAT),
        format_args!("{r:?} done={done} entry={:#x}", boot_l3e(mem, 1)),
    );
    // No flush asked for: the new entry must already be in use.
    c.check(
        "l3_entry_used_at_once",
        read_u32(SLOT1_VA) == MAGIC_A,
        format_args!("{:#x}", read_u32(SLOT1_VA)),
    );
    write_u32(SLOT1_VA + 4, 0x5107);
    let va = mem.scratch_va(6);
    let seen = mem.map(va, da, false).map(|_| read_u32(va + 4));
    let _ = mem.unmap(va);
    c.check(
        "l3_entry_maps_writable",
        seen == Ok(0x5107),
        format_args!("{seen:x?}"),
    );
    // Bits a PDPTE reserves (or 64-bit Xen refuses) are refused; nothing
    // changes.
    let mut refused = true;
    for bit in [3, 4, 7, 8, 44, 62, 63] {
        let (r, done) = mmu_update(&[normal(slot1, pte(l2b, L3_COMPAT) | 1 << bit)], self_dom());
        if r != Err(Errno::EINVAL) || done != 0 {
            println!("test-dom0: L3 entry bit {bit}: {r:?} done={done}");
            refused = false;
        }
    }
    c.check(
        "l3_entry_reserved_bits_refused",
        refused && boot_l3e(mem, 1) == pte(l2a, L3_COMPAT) && read_u32(SLOT1_VA) == MAGIC_A,
        format_args!("entry={:#x}", boot_l3e(mem, 1)),
    );
    // Switch slot 1 to the other L2: the very next read sees the new data.
    let (r, _) = mmu_update(&[normal(slot1, pte(l2b, P | A))], self_dom());
    c.check(
        "l3_entry_change_seen_at_once",
        r.is_ok() && read_u32(SLOT1_VA) == MAGIC_B,
        format_args!("{r:?} {:#x}", read_u32(SLOT1_VA)),
    );
    // A batch that edits the running L3, is preempted and has a `pdone` Oxen
    // cannot write (in the hypervisor hole): the edit still reaches the CPU
    // at once, and as Xen the unwritable `pdone` does not change the result
    // (it used to end the call with EFAULT before the CR3 reload, leaving
    // the guest on the old PDPTE).
    {
        use xen_abi::hypercall::{MMU_UPDATE, MMUEXT_OP};
        const N: usize = 1100;
        static mut REQS: [MmuUpdate; N] = [MmuUpdate { ptr: 0, val: 0 }; N];
        // SAFETY: only this block uses REQS.
        let reqs = unsafe { &mut *core::ptr::addr_of_mut!(REQS) };
        reqs.fill(normal(slot1, pte(l2a, L3_COMPAT)));
        let hole = 0xF580_0000u32;
        let r = hcall(
            MMU_UPDATE,
            [reqs.as_ptr() as u32, N as u32, hole, self_dom(), 0],
        );
        let seen = read_u32(SLOT1_VA);
        c.check(
            "l3_edit_in_preempted_batch_with_bad_pdone_seen_at_once",
            r == Ok(0) && seen == MAGIC_A && boot_l3e(mem, 1) == pte(l2a, L3_COMPAT),
            format_args!("{r:?} read {seen:#x}"),
        );
        let op = MmuextOp::new(MMUEXT_TLB_FLUSH_LOCAL, 0, 0);
        let r = hcall(MMUEXT_OP, [&op as *const _ as u32, 1, hole, self_dom(), 0]);
        c.check(
            "mmuext_op_bad_pdone_ignored",
            r == Ok(0),
            format_args!("{r:?}"),
        );
    }
    let (r, _) = mmu_update(&[normal(slot1, 0)], self_dom());
    c.check(
        "l3_entry_cleared",
        r.is_ok() && boot_l3e(mem, 1) == 0,
        format_args!("{r:?} entry={:#x}", boot_l3e(mem, 1)),
    );
    // The L2s went back to ordinary memory with the entry.
    c.ok(
        "l3_slot1_l2_free_again",
        mem.map(va, l2a, true).and(mem.unmap(va)),
    );
    // XENFEAT_pae_pgdir_above_4gb follows the pae_extended_cr3 assist (on
    // for test-dom0, PAE_MODE "yes"), as in Xen.
    let features = || {
        let mut fi = [0u32, 0];
        // SAFETY: the buffer is a xen_feature_info.
        let r = unsafe {
            pvrt::hypercall::xen_version(
                xen_abi::version::XENVER_GET_FEATURES,
                fi.as_mut_ptr() as *mut u8,
            )
        };
        r.map(|_| fi[1] & (1 << xen_abi::version::XENFEAT_PAE_PGDIR_ABOVE_4GB) != 0)
    };
    let on = features();
    let off = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_PAE_EXTENDED_CR3).and_then(|_| features());
    let again = vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_PAE_EXTENDED_CR3).and_then(|_| features());
    c.check(
        "xenfeat_pae_pgdir_above_4gb_follows_the_assist",
        on == Ok(true) && off == Ok(false) && again == Ok(true),
        format_args!("{on:?} {off:?} {again:?}"),
    );
}

/// `XENMEM_increase_reservation` or `_decrease_reservation` of `frames`
/// (order 0) for this domain.
fn reservation(cmd: u32, frames: &mut [u32]) -> Result<u32, Errno> {
    let res = [
        frames.as_mut_ptr() as u32,
        frames.len() as u32,
        0,
        0,
        self_dom(),
    ];
    hcall(
        xen_abi::hypercall::MEMORY_OP,
        [cmd, res.as_ptr() as u32, 0, 0, 0],
    )
}

/// `N` frames at or above 4 GiB, taken by growing the reservation until the
/// allocator (which hands frames out in address order, next fit) reaches
/// them. The frames below 4 GiB taken on the way stay this domain's (it
/// powers off after these checks), except the last batch's: they go back,
/// so that Oxen still has frames below 4 GiB for what needs them (a new
/// domain's shared_info), while the next allocations come from above.
fn take_frames_above_4gib<const N: usize>() -> Option<[u32; N]> {
    use xen_abi::memory::{XENMEM_DECREASE_RESERVATION, XENMEM_INCREASE_RESERVATION};
    static mut BATCH: [u32; 1024] = [0; 1024];
    // SAFETY: only this function uses BATCH.
    let batch = unsafe { &mut *core::ptr::addr_of_mut!(BATCH) };
    // At most 8 GiB in 4 MiB batches.
    for _ in 0..2048 {
        let n = reservation(XENMEM_INCREASE_RESERVATION, batch).ok()? as usize;
        let got = &mut batch[..n];
        if got.iter().filter(|&&m| m >= 0x10_0000).count() < N.max(1) && n == 1024 {
            continue;
        }
        let mut out = [0u32; N];
        let mut k = 0;
        let mut back = 0;
        for i in 0..got.len() {
            let m = got[i];
            if m >= 0x10_0000 && k < N {
                out[k] = m;
                k += 1;
            } else {
                got[back] = m;
                back += 1;
            }
        }
        let _ = reservation(XENMEM_DECREASE_RESERVATION, &mut got[..back]);
        return (k == N).then_some(out);
    }
    None
}

/// Whether the machine has RAM at or above 4 GiB (`maximum_ram_page`).
pub(crate) fn machine_has_memory_above_4gib() -> bool {
    use xen_abi::memory::XENMEM_MAXIMUM_RAM_PAGE;
    hcall(
        xen_abi::hypercall::MEMORY_OP,
        [XENMEM_MAXIMUM_RAM_PAGE, 0, 0, 0, 0],
    )
    .is_ok_and(|n| n > 0x10_0000)
}

/// Issue 10 finding 7 (on a machine with memory above 4 GiB, else nothing;
/// last, as it takes the memory below 4 GiB): an L3 and its slot-3 L2 above
/// 4 GiB are pinned, made the base pointer and run on (CR3 holds the low
/// copy); an entry change of that running L3 is seen at once; without
/// pae_extended_cr3 such an L3 is refused, as in Xen; and a domU whose L3
/// lies above 4 GiB starts from `setvcpucontext` and runs.
pub(crate) fn l3_above_4gib(c: &mut Checks, mem: &Mem<'_>) {
    if !machine_has_memory_above_4gib() {
        println!("test-dom0: no memory above 4 GiB: the high-L3 checks do not apply");
        return;
    }
    let frames = take_frames_above_4gib::<2>();
    c.check(
        "dom0_got_frames_above_4gib",
        frames.is_some(),
        format_args!("{frames:x?}"),
    );
    let Some([l3, l2]) = frames else { return };
    let boot_l2 = mem.va_of_mfn(((boot_l3e(mem, 3) & FRAME) >> 12) as u32) as *const u64;
    let va = mem.scratch_va(7);
    let mut l2_entries = [(0usize, 0u64); 428];
    for (i, e) in l2_entries.iter_mut().enumerate() {
        // SAFETY: the bootstrap slot-3 L2 is mapped read-only in the region.
        *e = (i, unsafe { boot_l2.add(i).read_volatile() });
    }
    let built = fill_frame(mem, va, l2, &l2_entries, 0)
        && fill_frame(
            mem,
            va,
            l3,
            &[
                (0, boot_l3e(mem, 0)),
                (1, boot_l3e(mem, 1)),
                (2, boot_l3e(mem, 2)),
                (3, pte(l2, L3_COMPAT)),
            ],
            0,
        );
    c.check(
        "high_l3_built",
        built,
        format_args!("l3 {l3:#x} l2 {l2:#x}"),
    );
    c.ok("pin_l3_above_4gib", mmuext(MMUEXT_PIN_L3_TABLE, l3, 0));
    c.ok(
        "new_baseptr_l3_above_4gib",
        mmuext(MMUEXT_NEW_BASEPTR, l3, 0),
    );
    // Running on it: a fresh mapping works.
    let probe = mem.mfn(mem.first_free_pfn + 3);
    let w = mem.scratch_va(8);
    let ran = mem.map(w, probe, true).map(|_| {
        write_u32(w, 0x4_61B);
        read_u32(w)
    });
    let _ = mem.unmap(w);
    c.check(
        "runs_on_l3_above_4gib",
        ran == Ok(0x4_61B),
        format_args!("{ran:x?}"),
    );
    // An entry change of the running high L3 is seen at once.
    let seen = slot1_tables(mem).map(|(l2a, ..)| {
        let (r, _) = mmu_update(
            &[normal(u64::from(l3) << 12 | 8, pte(l2a, L3_COMPAT))],
            self_dom(),
        );
        let v = read_u32(SLOT1_VA);
        let (r2, _) = mmu_update(&[normal(u64::from(l3) << 12 | 8, 0)], self_dom());
        (r, v, r2)
    });
    c.check(
        "high_l3_entry_change_seen_at_once",
        seen.is_some_and(|(r, v, r2)| r.is_ok() && v == MAGIC_A && r2.is_ok()),
        format_args!("{seen:x?}"),
    );
    let boot_l3 = (boot_l3_maddr(mem) >> 12) as u32;
    c.ok(
        "new_baseptr_back_below",
        mmuext(MMUEXT_NEW_BASEPTR, boot_l3, 0),
    );
    // Without pae_extended_cr3 an L3 above 4 GiB is refused (it stays pinned).
    let off = vm_assist(VMASST_CMD_DISABLE, VMASST_TYPE_PAE_EXTENDED_CR3);
    let r = mmuext(MMUEXT_NEW_BASEPTR, l3, 0);
    let on = vm_assist(VMASST_CMD_ENABLE, VMASST_TYPE_PAE_EXTENDED_CR3);
    c.check(
        "high_l3_needs_extended_cr3",
        off.is_ok() && r == Err(Errno::EINVAL) && on.is_ok(),
        format_args!("{off:?} {r:?} {on:?}"),
    );
    c.ok("unpin_l3_above_4gib", mmuext(MMUEXT_UNPIN_TABLE, l3, 0));
    crate::domains::high_l3_domu(c, mem);
}

/// dom0's own L2 entry `slot` of the L2 under L3 slot 3: slots 428–511 are
/// Oxen's, copied from its own page tables.
fn oxen_l2e(mem: &Mem<'_>, slot: usize) -> u64 {
    let l3 = mem.si.pt_base as *const u64;
    // SAFETY: the bootstrap L3 and L2s are mapped read-only in the region.
    let l3e = unsafe { l3.add(3).read_volatile() };
    let l2 = mem.va_of_mfn(((l3e & FRAME) >> 12) as u32) as *const u64;
    // SAFETY: as above; `slot` < 512.
    unsafe { l2.add(slot).read_volatile() }
}

/// Issue 10, finding 10: dom0 names DOMID_XEN (or itself) as the owner of
/// Oxen's frames — its code, its heap, one of its page tables — and asks
/// for mappings, writable and read-only: all refused (-EINVAL, Xen 4.1's
/// result for a refused L1 entry) while Oxen stays up. The M2P, which Oxen
/// shares read-only with privileged domains, maps read-only only; no frame
/// of Oxen's can be pinned or have its M2P entry written.
pub(crate) fn oxen_frames(c: &mut Checks, mem: &Mem<'_>) {
    use xen_abi::hypercall::MEMORY_OP;
    use xen_abi::memory::XENMEM_MACHPHYS_MFN_LIST;
    let xen = u32::from(DOMID_XEN);
    let va = mem.scratch_va(41);
    let slot = mem.l1e_maddr(va);
    // The L1 behind Oxen's heap window (0xFE000000, L2 slot 496): one of
    // Oxen's page tables; the allocator gave the heap's first frame right
    // after it.
    let heap_l2e = oxen_l2e(mem, 496);
    let heap_l1 = ((heap_l2e & FRAME) >> 12) as u32;
    let heap_frame = heap_l1 + 1;
    c.check(
        "oxen_heap_l1_found",
        heap_l2e & P != 0 && heap_l2e & 0x80 == 0 && heap_l1 != 0,
        format_args!("L2[496] = {heap_l2e:#x}"),
    );
    let frames = [
        ("code", OXEN_IMAGE_MFN),
        ("heap", heap_frame),
        ("page_table", heap_l1),
    ];
    let mut refused = [(Ok(0), Ok(0), Ok(0), Ok(0)); 3];
    for (i, &(_, mfn)) in frames.iter().enumerate() {
        let rw = mmu_update(&[normal(slot, pte(mfn, P | RW | A | D))], xen).0;
        let ro = mmu_update(&[normal(slot, pte(mfn, P | A))], xen).0;
        let own = mmu_update(&[normal(slot, pte(mfn, P | A))], self_dom()).0;
        let other =
            update_va_mapping_otherdomain(va, pte(mfn, P | RW | A | D), UVMF_INVLPG, DOMID_XEN);
        refused[i] = (rw, ro, own, other);
    }
    let _ = mem.unmap(va);
    for (&(what, mfn), &(rw, ro, own, other)) in frames.iter().zip(&refused) {
        let name_rw = match what {
            "code" => "oxen_code_frame_writable_refused",
            "heap" => "oxen_heap_frame_writable_refused",
            _ => "oxen_page_table_frame_writable_refused",
        };
        let name_ro = match what {
            "code" => "oxen_code_frame_read_only_refused",
            "heap" => "oxen_heap_frame_read_only_refused",
            _ => "oxen_page_table_frame_read_only_refused",
        };
        c.check(
            name_rw,
            rw == Err(Errno::EINVAL) && other == Err(Errno::EINVAL),
            format_args!(
                "mfn {mfn:#x}: mmu_update {rw:?}, update_va_mapping_otherdomain {other:?}"
            ),
        );
        c.check(
            name_ro,
            ro == Err(Errno::EINVAL) && own == Err(Errno::EINVAL),
            format_args!("mfn {mfn:#x}: FD=DOMID_XEN {ro:?}, FD=self {own:?}"),
        );
    }
    // The M2P: shared, read-only.
    let mut chunks = [0u32; 8];
    let mut list = [8u32, chunks.as_mut_ptr() as u32, 0];
    let _ = hcall(
        MEMORY_OP,
        [XENMEM_MACHPHYS_MFN_LIST, list.as_mut_ptr() as u32, 0, 0, 0],
    );
    let m2p = chunks[0];
    let rw = mmu_update(&[normal(slot, pte(m2p, P | RW | A | D))], xen).0;
    c.err("oxen_m2p_frame_writable_refused", rw, Errno::EINVAL);
    let ro = mmu_update(&[normal(slot, pte(m2p, P | A))], xen).0;
    // SAFETY: read only if the M2P's first frame is mapped read-only at `va`.
    let first = ro.map(|_| unsafe { (va as *const u32).read_volatile() });
    let _ = mem.unmap(va);
    c.check(
        "oxen_m2p_frame_read_only_mapped",
        matches!(first, Ok(e) if e == u32::MAX),
        format_args!("{first:?} (mfn 0 has no pfn)"),
    );
    let pin = mmuext_op(&[MmuextOp::new(MMUEXT_PIN_L1_TABLE, m2p, 0)], xen).0;
    let pin_code = mmuext_op(
        &[MmuextOp::new(MMUEXT_PIN_L1_TABLE, OXEN_IMAGE_MFN, 0)],
        xen,
    )
    .0;
    c.check(
        "oxen_frames_pin_refused",
        pin.is_err() && pin_code.is_err(),
        format_args!("M2P {pin:?}, code {pin_code:?}"),
    );
    let machphys = |mfn: u32| {
        mmu_update(
            &[MmuUpdate::new(MMU_MACHPHYS_UPDATE, u64::from(mfn) << 12, 5)],
            xen,
        )
        .0
    };
    let (code, heap) = (machphys(OXEN_IMAGE_MFN), machphys(heap_frame));
    c.check(
        "oxen_frames_machphys_update_refused",
        code == Err(Errno::EINVAL) && heap == Err(Errno::EINVAL),
        format_args!("code {code:?}, heap {heap:?}"),
    );
}
