//! L2 entries: flags, L1 targets, the hypervisor slots (§7.7).

use super::fake::*;
use crate::pte::{PAGE_GLOBAL, PAGE_NX, PAGE_PCD, PAGE_PSE, PAGE_PWT, PAGE_RW, pte};
use crate::{Machine, MmConfig, PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::errno::Errno;

/// An empty L2 of domU, pinned.
fn pinned_l2(w: &mut World) -> Mfn {
    let l2 = w.fresh(DOMU);
    w.mm.pin(l2, PtLevel::L2, &DOMU_CALLER, DOMU).unwrap();
    l2
}

#[test]
fn l2_entry_validates_its_l1() {
    let mut w = World::new();
    let l2 = pinned_l2(&mut w);
    let d = w.fresh(DOMU);
    let l1 = w.table(DOMU, &[(7, pte(d, RW))]);
    w.mm.mod_l2_entry(l2, 0, pte(l1, L2F), &DOMU_CALLER, false)
        .unwrap();
    assert_eq!(w.state(l1), (2, 1, Some(PageType::L1), false, true));
    assert_eq!(w.state(d), (2, 1, Some(PageType::Writable), false, false));
    w.audit();
    // Two entries may share an L1.
    w.mm.mod_l2_entry(l2, 1, pte(l1, L2F), &DOMU_CALLER, false)
        .unwrap();
    assert_eq!(w.type_count(l1), 2);
    w.audit();
    // Removing both devalidates it and drops what its entries held.
    w.mm.mod_l2_entry(l2, 0, 0, &DOMU_CALLER, false).unwrap();
    w.mm.mod_l2_entry(l2, 1, 0, &DOMU_CALLER, false).unwrap();
    assert_eq!(w.state(l1), (1, 0, Some(PageType::L1), false, false));
    assert_eq!((w.count(d), w.type_count(d)), (1, 0));
    w.audit();
}

#[test]
fn l2_entry_to_a_frame_that_is_not_an_l1_fails() {
    let mut w = World::new();
    let l2 = pinned_l2(&mut w);
    // A frame currently mapped writable.
    let lx = w.fresh(DOMU);
    w.mm.pin(lx, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    let busy = w.fresh(DOMU);
    w.mm.mod_l1_entry(lx, 0, pte(busy, RW), &DOMU_CALLER, DOMU, false)
        .unwrap();
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(busy, L2F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    // An L1 that does not validate leaves no trace.
    let theirs = w.fresh(DOM0);
    let ok = w.fresh(DOMU);
    let bad_l1 = w.table(DOMU, &[(0, pte(ok, RW)), (1, pte(theirs, RO))]);
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(bad_l1, L2F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    // Another domain's L1, even from a privileged caller.
    let foreign_l1 = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(foreign_l1, L2F), &DOM0_CALLER, false),
        Errno::EINVAL
    );
    // Not RAM.
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(NON_RAM, L2F), &DOM0_CALLER, false),
        Errno::EINVAL
    );
}

#[test]
fn linear_l2_mappings_are_refused() {
    let mut w = World::new();
    let l2 = pinned_l2(&mut w);
    let other = pinned_l2(&mut w);
    let ro = L2F & !PAGE_RW;
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(l2, ro), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l2_entry(l2, 0, pte(other, ro), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    // An L2 pointing at itself does not validate either.
    let selfish = w.fresh(DOMU);
    w.poke(selfish, 0, pte(selfish, ro));
    assert_fails!(
        w,
        w.mm.pin(selfish, PtLevel::L2, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn forbidden_l2_flags_are_refused() {
    let mut w = World::new();
    let l2 = pinned_l2(&mut w);
    let l1 = w.fresh(DOMU);
    for bad in [
        PAGE_PSE,
        PAGE_PWT,
        PAGE_PCD,
        PAGE_GLOBAL,
        1 << 44,
        1 << 62,
        PAGE_NX,
    ] {
        assert_fails!(
            w,
            w.mm.mod_l2_entry(l2, 0, pte(l1, L2F) | bad, &DOMU_CALLER, false),
            Errno::EINVAL
        );
        // Even for an I/O-privileged caller on its own L2.
        let l10 = w.fresh(DOM0);
        let l20 = w.table(DOM0, &[(0, pte(l10, L2F) | bad)]);
        assert_fails!(
            w,
            w.mm.pin(l20, PtLevel::L2, &DOM0_CALLER, DOM0),
            Errno::EINVAL
        );
    }
    w.mm.mod_l2_entry(l2, 0, pte(l1, L2F), &DOMU_CALLER, false)
        .unwrap();
    w.audit();
}

#[test]
fn nx_in_l2_only_when_supported() {
    let mut w = World::with_config(MmConfig { nx_supported: true });
    let l2 = pinned_l2(&mut w);
    let l1 = w.fresh(DOMU);
    w.mm.mod_l2_entry(l2, 0, pte(l1, L2F) | PAGE_NX, &DOMU_CALLER, false)
        .unwrap();
    w.audit();
}

#[test]
fn hypervisor_slots_of_the_slot3_l2_are_off_limits() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let l1 = w.fresh(DOMU);
    w.mm.mod_l2_entry(s.l2_3, 427, pte(l1, L2F), &DOMU_CALLER, false)
        .unwrap();
    let l1b = w.fresh(DOMU);
    for i in [428, 500, 511] {
        assert_fails!(
            w,
            w.mm.mod_l2_entry(s.l2_3, i, pte(l1b, L2F), &DOMU_CALLER, false),
            Errno::EINVAL
        );
        assert_fails!(
            w,
            w.mm.mod_l2_entry(s.l2_3, i, 0, &DOM0_CALLER, false),
            Errno::EINVAL
        );
        assert_fails!(
            w,
            w.mm.mmu_update_one(ptr(s.l2_3, i), 0, &DOMU_CALLER, DOMU, DOMU),
            Errno::EINVAL
        );
    }
    // In an L2 that is not under slot 3 those indices are ordinary.
    w.mm.mod_l2_entry(s.l2_0, 428, pte(l1b, L2F), &DOMU_CALLER, false)
        .unwrap();
    w.audit();
}

#[test]
fn validation_installs_the_hypervisor_slots_over_guest_junk() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    // Junk in the hypervisor slots would not validate as guest entries.
    let theirs = w.fresh(DOM0);
    w.poke(s.l2_3, 428, pte(theirs, L2F));
    w.poke(s.l2_3, 511, pte(s.l2_3, L2F | PAGE_PSE));
    w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU).unwrap();
    for i in 428..512 {
        assert_eq!(w.peek(s.l2_3, i), xen_l2(i));
    }
    assert!(w.mm.page_info(s.l2_3).unwrap().type_info().pae_xen_l2());
    assert_eq!(w.count(theirs), 1, "junk took no reference");
    w.audit();
    // The audit notices if someone tampers with them behind the engine's back.
    w.mm.machine.write_pte(s.l2_3, 430, 0);
    assert!(matches!(
        w.mm.audit(&[]).unwrap_err().problem,
        crate::AuditProblem::XenSlot { index: 430, .. }
    ));
    w.mm.machine.write_pte(s.l2_3, 430, xen_l2(430));
    // Unpinning devalidates without touching the hypervisor slots' (absent) references.
    w.mm.unpin(s.l3, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(s.l2_3), (1, 0, Some(PageType::L2), false, false));
    w.audit();
}

#[test]
fn slot3_l2_cannot_be_pinned_or_linked_as_a_plain_l2() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    assert_fails!(
        w,
        w.mm.pin(s.l2_3, PtLevel::L2, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(s.l2_3, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
}
