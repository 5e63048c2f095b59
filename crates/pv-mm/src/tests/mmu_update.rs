//! `mmu_update` requests (§7.2).

use super::fake::*;
use crate::ops::{MMU_MACHPHYS_UPDATE, MMU_PT_UPDATE_PRESERVE_AD};
use crate::pte::{PAGE_ACCESSED, PAGE_DIRTY, PAGE_PRESENT, PAGE_PSE, PAGE_RW, pte};
use crate::{PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_IO, DOMID_SELF, DOMID_XEN};
use xen_abi::errno::Errno;

#[test]
fn misaligned_pointer_is_refused() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(f, 0) | 4, 1, &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(f, 0) | 6, 1, &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    w.mm.mmu_update_one(ptr(f, 3), 1, &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    assert_eq!(w.peek(f, 3), 1);
}

#[test]
fn unknown_command_is_enosys() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(f, 0) | 3, 1, &DOMU_CALLER, DOMU, DOMU),
        Errno::ENOSYS
    );
}

#[test]
fn ordinary_memory_is_written_raw() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    let before = w.snapshot();
    w.mm.mmu_update_one(
        ptr(f, 511),
        0xDEAD_BEEF,
        &DOMU_CALLER,
        DOMID_SELF,
        DOMID_SELF,
    )
    .unwrap();
    assert_eq!(w.peek(f, 511), 0xDEAD_BEEF);
    assert!(
        w.snapshot()[f.0 as usize].0 == before[f.0 as usize].0,
        "writable reference given back"
    );
    assert_eq!(w.type_count(f), 0);
    w.audit();
    // A frame mapped writable elsewhere is ordinary memory too.
    let s = w.pinned_space(DOMU);
    w.mm.mmu_update_one(ptr(s.data_rw, 0), 5, &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    assert_eq!(w.peek(s.data_rw, 0), 5);
    // So is a page table nobody uses any more (type count 0).
    let l1 = w.fresh(DOMU);
    w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    w.mm.unpin(l1, &DOMU_CALLER, DOMU).unwrap();
    w.mm.mmu_update_one(ptr(l1, 0), pte(s.data_rw, 0x3), &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    w.audit();
}

#[test]
fn raw_write_needs_the_frame_to_belong_to_pt_owner() {
    let mut w = World::new();
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(theirs, 0), 1, &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(FREE, 0), 1, &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(NON_RAM, 0), 1, &DOM0_CALLER, DOM0, DOM0),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(Mfn(IO_FRAMES.start), 0), 1, &DOM0_CALLER, DOM0, DOM0),
        Errno::EINVAL
    );
    // dom0 names domU as PFD: it must own the frame then.
    let mine = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(mine, 0), 1, &DOM0_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    let u = w.fresh(DOMU);
    w.mm.mmu_update_one(ptr(u, 0), 1, &DOM0_CALLER, DOMU, DOMU)
        .unwrap();
    // Hypervisor frames are never a page-table owner's, even for dom0.
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(Mfn(0), 0), 1, &DOM0_CALLER, DOMID_XEN, DOM0),
        Errno::EINVAL
    );
}

#[test]
fn unprivileged_caller_cannot_name_other_owners() {
    let mut w = World::new();
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(theirs, 0), 1, &DOMU_CALLER, DOM0, DOMU),
        Errno::ESRCH
    );
    let mine = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(mine, 0), 1, &DOMU_CALLER, DOMU, DOM0),
        Errno::ESRCH
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(mine, 0), 1, &DOMU_CALLER, DOMU, DOMID_XEN),
        Errno::ESRCH
    );
    // DOMID_IO as FD is open to everyone (the I/O check comes later).
    w.mm.mmu_update_one(ptr(mine, 0), 1, &DOMU_CALLER, DOMU, DOMID_IO)
        .unwrap();
}

#[test]
fn page_tables_and_descriptor_pages_cannot_be_written_raw() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    // Present entries go through validation: a bad one fails...
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(s.l1_0, 1), pte(theirs, RW), &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            ptr(s.l2_0, 1),
            pte(s.data_ro, L2F | PAGE_PSE),
            &DOMU_CALLER,
            DOMU,
            DOMU
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(s.l3, 1), pte(s.data_rw, L3F), &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    // ...and L3 slot 3 is fixed.
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(s.l3, 3), 0, &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
    w.mm.machine.seg_desc_ok = true;
    let gdt = w.fresh(DOMU);
    w.mm.get_page_and_type(gdt, DOMU, PageType::SegDesc)
        .unwrap();
    let before = w.snapshot();
    assert_eq!(
        w.mm.mmu_update_one(ptr(gdt, 0), 1, &DOMU_CALLER, DOMU, DOMU),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before);
    w.mm.put_page_and_type(gdt);
    w.audit();
}

#[test]
fn updates_dispatch_on_the_table_type() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    // L1: a new mapping.
    let d = w.fresh(DOMU);
    w.mm.mmu_update_one(ptr(s.l1_0, 9), pte(d, RW), &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    assert_eq!(w.state(d), (2, 1, Some(PageType::Writable), false, false));
    // L2: a new L1.
    let l1 = w.fresh(DOMU);
    w.mm.mmu_update_one(ptr(s.l2_0, 9), pte(l1, L2F), &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    assert!(w.is(l1, PageType::L1));
    // L3: a new L2.
    let l2 = w.fresh(DOMU);
    w.mm.mmu_update_one(ptr(s.l3, 2), pte(l2, L3F), &DOMU_CALLER, DOMU, DOMU)
        .unwrap();
    assert!(w.is(l2, PageType::L2));
    w.audit();
}

#[test]
fn preserve_ad_command() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let clean = pte(s.data_rw, PAGE_PRESENT | PAGE_RW);
    w.mm.mmu_update_one(
        ptr(s.l1_0, 0) | MMU_PT_UPDATE_PRESERVE_AD,
        clean,
        &DOMU_CALLER,
        DOMU,
        DOMU,
    )
    .unwrap();
    assert_eq!(w.peek(s.l1_0, 0), clean | PAGE_ACCESSED | PAGE_DIRTY);
    w.audit();
}

#[test]
fn foreign_page_table_update_by_dom0() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let d = w.fresh(DOMU);
    // dom0 edits domU's L1 (PFD = domU) to map a domU frame (FD = domU).
    w.mm.mmu_update_one(ptr(s.l1_0, 2), pte(d, RW), &DOM0_CALLER, DOMU, DOMU)
        .unwrap();
    assert_eq!(w.count(d), 2);
    // FD = dom0 would put a dom0 frame into domU's table: allowed for the
    // privileged builder, as in Xen.
    let mine = w.fresh(DOM0);
    w.mm.mmu_update_one(ptr(s.l1_0, 3), pte(mine, RO), &DOM0_CALLER, DOMU, DOM0)
        .unwrap();
    w.audit();
    // domU cannot do that to dom0's tables.
    let t = w.pinned_space(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(t.l1_0, 2), pte(d, RO), &DOMU_CALLER, DOM0, DOMU),
        Errno::ESRCH
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(ptr(t.l1_0, 2), pte(d, RO), &DOMU_CALLER, DOMU, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn machphys_update_needs_ownership() {
    let mut w = World::new();
    let mine = w.fresh(DOMU);
    w.mm.mmu_update_one(
        mine.maddr().0 | MMU_MACHPHYS_UPDATE,
        0x1234,
        &DOMU_CALLER,
        DOMU,
        DOMU,
    )
    .unwrap();
    assert_eq!(w.mm.machine.m2p[&mine], 0x1234);
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            theirs.maddr().0 | MMU_MACHPHYS_UPDATE,
            1,
            &DOMU_CALLER,
            DOMU,
            DOMU
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            theirs.maddr().0 | MMU_MACHPHYS_UPDATE,
            1,
            &DOMU_CALLER,
            DOMU,
            DOM0
        ),
        Errno::ESRCH
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            FREE.maddr().0 | MMU_MACHPHYS_UPDATE,
            1,
            &DOM0_CALLER,
            DOM0,
            DOM0
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            NON_RAM.maddr().0 | MMU_MACHPHYS_UPDATE,
            1,
            &DOM0_CALLER,
            DOM0,
            DOM0
        ),
        Errno::EINVAL
    );
    let io = Mfn(IO_FRAMES.start);
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            io.maddr().0 | MMU_MACHPHYS_UPDATE,
            1,
            &DOM0_CALLER,
            DOM0,
            DOMID_IO
        ),
        Errno::EINVAL
    );
    // The domain builder sets a domU's M2P entries with FD = domU.
    let u = w.fresh(DOMU);
    w.mm.mmu_update_one(
        u.maddr().0 | MMU_MACHPHYS_UPDATE,
        0x1_0000_0007,
        &DOM0_CALLER,
        DOM0,
        DOMU,
    )
    .unwrap();
    assert_eq!(w.mm.machine.m2p[&u], 7, "PFN truncated to 32 bits");
    assert!(!w.mm.machine.m2p.contains_key(&theirs));
}
