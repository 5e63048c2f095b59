//! `mmuext_op` page-table commands and the `update_va_mapping` walk (§7.3–7.5).

use super::fake::*;
use crate::pte::{PAGE_USER, pte};
use crate::{MmConfig, PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_IO, DOMID_SELF};
use xen_abi::errno::Errno;

#[test]
fn pin_each_level() {
    let mut w = World::new();
    for level in [PtLevel::L1, PtLevel::L2] {
        let f = w.fresh(DOMU);
        w.mm.pin(f, level, &DOMU_CALLER, DOMID_SELF).unwrap();
        assert_eq!(w.state(f), (2, 1, level.page_type(), true, true));
    }
    w.pinned_space(DOMU);
    let r = w.audit();
    assert_eq!(r.pinned, 3);
}

#[test]
fn pin_l4_is_refused() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.pin(f, PtLevel::L4, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn pin_twice_is_refused() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    assert_fails!(
        w,
        w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    let f = w.fresh(DOMU);
    w.mm.pin(f, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    assert_fails!(
        w,
        w.mm.pin(f, PtLevel::L1, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin(f, PtLevel::L2, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn pin_of_an_l1_already_in_use_adds_a_reference() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    w.mm.pin(s.l1_0, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(s.l1_0), (3, 2, Some(PageType::L1), true, true));
    w.audit();
    // Unpinning the top keeps the pinned L1 validated.
    w.mm.unpin(s.l3, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(s.l1_0), (2, 1, Some(PageType::L1), true, true));
    assert_eq!(w.type_count(s.data_rw), 1);
    w.audit();
}

#[test]
fn pin_needs_ownership_and_privilege() {
    let mut w = World::new();
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.pin(theirs, PtLevel::L1, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin(theirs, PtLevel::L1, &DOMU_CALLER, DOM0),
        Errno::ESRCH
    );
    assert_fails!(
        w,
        w.mm.pin(Mfn(IO_FRAMES.start), PtLevel::L1, &DOM0_CALLER, DOMID_IO),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin(NON_RAM, PtLevel::L1, &DOM0_CALLER, DOM0),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin(FREE, PtLevel::L1, &DOM0_CALLER, DOM0),
        Errno::EINVAL
    );
    // dom0 pins a domU table during domain build.
    let s = w.address_space(DOMU);
    w.mm.pin(s.l3, PtLevel::L3, &DOM0_CALLER, DOMU).unwrap();
    w.audit();
    assert_fails!(w, w.mm.unpin(s.l3, &DOMU_CALLER, DOM0), Errno::ESRCH);
    w.mm.unpin(s.l3, &DOMU_CALLER, DOMU).unwrap();
    w.audit();
}

#[test]
fn unpin_of_a_table_that_is_not_pinned_fails() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    assert_fails!(w, w.mm.unpin(s.l2_0, &DOMU_CALLER, DOMU), Errno::EINVAL);
    let f = w.fresh(DOMU);
    assert_fails!(w, w.mm.unpin(f, &DOMU_CALLER, DOMU), Errno::EINVAL);
    assert_fails!(w, w.mm.unpin(s.l3, &DOM0_CALLER, DOM0), Errno::EINVAL);
    w.mm.unpin(s.l3, &DOMU_CALLER, DOMU).unwrap();
    assert_fails!(w, w.mm.unpin(s.l3, &DOMU_CALLER, DOMU), Errno::EINVAL);
    for f in [s.l3, s.l2_0, s.l2_3, s.l1_0, s.l1_3, s.data_rw, s.data_ro] {
        assert_eq!((w.count(f), w.type_count(f)), (1, 0));
    }
}

#[test]
fn new_baseptr_switches_the_l3_reference() {
    let mut w = World::new();
    let a = w.address_space(DOMU);
    let b = w.address_space(DOMU);
    w.set_base(0, a.l3, &DOMU_CALLER).unwrap();
    assert_eq!(w.state(a.l3), (2, 1, Some(PageType::L3), false, true));
    w.audit();
    w.set_base(0, b.l3, &DOMU_CALLER).unwrap();
    assert_eq!(w.state(a.l3), (1, 0, Some(PageType::L3), false, false));
    assert_eq!(w.state(a.l1_0), (1, 0, Some(PageType::L1), false, false));
    assert_eq!(w.state(b.l3), (2, 1, Some(PageType::L3), false, true));
    w.audit();
    // Switching to the same L3 keeps it.
    w.set_base(0, b.l3, &DOMU_CALLER).unwrap();
    assert_eq!(w.state(b.l3), (2, 1, Some(PageType::L3), false, true));
    // A second VCPU on the same L3.
    w.set_base(1, b.l3, &DOMU_CALLER).unwrap();
    assert_eq!(w.type_count(b.l3), 2);
    w.audit();
}

#[test]
fn new_baseptr_to_a_frame_that_does_not_validate_fails() {
    let mut w = World::new();
    let a = w.address_space(DOMU);
    w.set_base(0, a.l3, &DOMU_CALLER).unwrap();
    let not_l3 = w.table(DOMU, &[(3, pte(a.data_rw, L3F))]);
    assert_fails!(w, w.set_base(0, not_l3, &DOMU_CALLER), Errno::EINVAL);
    assert_fails!(w, w.set_base(0, a.l2_0, &DOMU_CALLER), Errno::EINVAL);
    assert_fails!(w, w.set_base(0, a.data_rw, &DOMU_CALLER), Errno::EINVAL);
    let theirs = w.address_space(DOM0);
    assert_fails!(w, w.set_base(0, theirs.l3, &DOMU_CALLER), Errno::EINVAL);
    assert_fails!(w, w.set_base(0, NON_RAM, &DOMU_CALLER), Errno::EINVAL);
    assert_eq!(w.bases, vec![a.l3], "the old base pointer is kept");
    assert_eq!(w.type_count(a.l3), 1);
}

#[test]
fn l3_above_4gib_needs_extended_cr3() {
    let high = Mfn(0x10_0000);
    let mut w = World::with(high.0 + 1, MmConfig::default());
    w.mm.assign(high, DOMU).unwrap();
    w.mm.machine.live.insert(high);
    let s = w.address_space(DOMU);
    w.poke(high, 0, pte(s.l2_0, L3F));
    w.poke(high, 3, pte(s.l2_3, L3F));
    let before = w.snapshot();
    assert_eq!(
        w.mm.new_baseptr(high, None, &DOMU_CALLER, false),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before);
    w.mm.new_baseptr(high, None, &DOMU_CALLER, true).unwrap();
    // (No full audit here: a million-frame table is too slow for it.)
    assert_eq!(w.state(high), (2, 1, Some(PageType::L3), false, true));
    assert_eq!(w.type_count(s.l2_3), 1);
    w.mm.put_page_and_type(high);
    assert_eq!(w.state(s.l2_0), (1, 0, Some(PageType::L2), false, false));
}

#[test]
fn clear_page_needs_a_writable_frame_of_the_caller() {
    let mut w = World::new();
    let f = w.table(DOMU, &[(0, 1), (511, 2)]);
    w.mm.clear_page(f, &DOMU_CALLER).unwrap();
    assert_eq!((w.peek(f, 0), w.peek(f, 511)), (0, 0));
    assert_eq!((w.count(f), w.type_count(f)), (1, 0));
    let s = w.pinned_space(DOMU);
    assert_fails!(w, w.mm.clear_page(s.l1_0, &DOMU_CALLER), Errno::EINVAL);
    let theirs = w.table(DOM0, &[(0, 9)]);
    assert_fails!(w, w.mm.clear_page(theirs, &DOMU_CALLER), Errno::EINVAL);
    assert_eq!(w.peek(theirs, 0), 9);
    assert_fails!(w, w.mm.clear_page(NON_RAM, &DOM0_CALLER), Errno::EINVAL);
    // A frame mapped writable may be cleared.
    w.mm.clear_page(s.data_rw, &DOMU_CALLER).unwrap();
    w.audit();
}

#[test]
fn copy_page_reads_any_own_frame_and_writes_a_writable_one() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let dst = w.fresh(DOMU);
    // The source may be a page table (read-only access).
    w.mm.copy_page(dst, s.l1_0, &DOMU_CALLER).unwrap();
    assert_eq!(w.peek(dst, 0), w.peek(s.l1_0, 0));
    assert_eq!((w.count(dst), w.type_count(dst)), (1, 0));
    assert_eq!(w.count(s.l1_0), 2);
    w.audit();
    assert_fails!(w, w.mm.copy_page(s.l1_3, dst, &DOMU_CALLER), Errno::EINVAL);
    let theirs = w.fresh(DOM0);
    assert_fails!(w, w.mm.copy_page(dst, theirs, &DOMU_CALLER), Errno::EINVAL);
    assert_fails!(w, w.mm.copy_page(theirs, dst, &DOMU_CALLER), Errno::EINVAL);
    w.mm.copy_page(dst, dst, &DOMU_CALLER).unwrap();
    w.audit();
}

#[test]
fn l1_slot_for_va_walks_the_current_tables() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    w.set_base(0, s.l3, &DOMU_CALLER).unwrap();
    assert_eq!(w.mm.l1_slot_for_va(s.l3, 0x0000_5123), Ok((s.l1_0, 5)));
    assert_eq!(w.mm.l1_slot_for_va(s.l3, 0xC000_0000), Ok((s.l1_3, 0)));
    assert_eq!(w.mm.l1_slot_for_va(s.l3, 0xC01F_F000), Ok((s.l1_3, 511)));
    assert_eq!(
        w.mm.l1_slot_for_va(s.l3, 0xF57F_FFFF),
        Err(Errno::EINVAL),
        "L2 entry 427 absent"
    );
    for va in [0xF580_0000, 0xF600_0000, 0xFFFF_FFFF] {
        assert_eq!(
            w.mm.l1_slot_for_va(s.l3, va),
            Err(Errno::EINVAL),
            "hypervisor hole {va:#x}"
        );
    }
    assert_eq!(
        w.mm.l1_slot_for_va(s.l3, 0x4000_0000),
        Err(Errno::EINVAL),
        "L3 slot 1 absent"
    );
    assert_eq!(
        w.mm.l1_slot_for_va(s.l3, 0x0020_0000),
        Err(Errno::EINVAL),
        "L2 entry 1 absent"
    );
    assert_eq!(
        w.mm.l1_slot_for_va(s.l2_0, 0),
        Err(Errno::EINVAL),
        "not an L3"
    );
    let unvalidated = w.address_space(DOMU);
    assert_eq!(w.mm.l1_slot_for_va(unvalidated.l3, 0), Err(Errno::EINVAL));
}

#[test]
fn update_va_mapping_flow() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    w.set_base(0, s.l3, &DOMU_CALLER).unwrap();
    let d = w.fresh(DOMU);
    let (l1, i) = w.mm.l1_slot_for_va(s.l3, 0xC000_3000).unwrap();
    w.mm.mod_l1_entry(l1, i, pte(d, RW), &DOMU_CALLER, DOMID_SELF, false)
        .unwrap();
    assert_eq!(w.peek(s.l1_3, 3), pte(d, RW));
    w.audit();
    // Mapping one's own L3 writable through it fails.
    let (l1, i) = w.mm.l1_slot_for_va(s.l3, 0xC000_4000).unwrap();
    assert_fails!(
        w,
        w.mm.mod_l1_entry(l1, i, pte(s.l3, RW), &DOMU_CALLER, DOMID_SELF, false),
        Errno::EINVAL
    );
    w.mm.mod_l1_entry(l1, i, pte(s.l3, RO), &DOMU_CALLER, DOMID_SELF, false)
        .unwrap();
    w.audit();
}

#[test]
fn user_access_follows_user_and_rw_bits() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    // Slot 1 of the first L1: the same frame, supervisor-only.
    w.poke(s.l1_0, 1, pte(s.data_rw, RW & !PAGE_USER));
    w.set_base(0, s.l3, &DOMU_CALLER).unwrap();
    assert!(w.mm.user_access_ok(s.l3, 0x0000_0123, false));
    assert!(w.mm.user_access_ok(s.l3, 0x0000_0123, true));
    assert!(w.mm.user_access_ok(s.l3, 0xC000_0FFF, false));
    assert!(
        !w.mm.user_access_ok(s.l3, 0xC000_0000, true),
        "read-only page"
    );
    assert!(
        !w.mm.user_access_ok(s.l3, 0x0000_1000, false),
        "supervisor page"
    );
    assert!(
        !w.mm.user_access_ok(s.l3, 0x0000_2000, false),
        "not present"
    );
    assert!(!w.mm.user_access_ok(s.l3, 0x4000_0000, false), "no L2");
    assert!(
        !w.mm.user_access_ok(s.l3, 0xF600_0000, false),
        "hypervisor hole"
    );
    w.audit();
}
