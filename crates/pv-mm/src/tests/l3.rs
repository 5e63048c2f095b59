//! L3 entries and the PAE extras: slot 3, its one-L3 L2, fixed slots (§7.7).

use super::fake::*;
use crate::pte::{
    PAGE_ACCESSED, PAGE_AVAIL, PAGE_DIRTY, PAGE_GLOBAL, PAGE_NX, PAGE_PRESENT, PAGE_PWT, PAGE_RW,
    PAGE_USER, pte,
};
use crate::{MmConfig, PageType, PtLevel};
use xen_abi::errno::Errno;

#[test]
fn a_complete_address_space_validates_bottom_up() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    assert_eq!(w.state(s.l3), (2, 1, Some(PageType::L3), true, true));
    assert_eq!(w.state(s.l2_0), (2, 1, Some(PageType::L2), false, true));
    assert_eq!(w.state(s.l2_3), (2, 1, Some(PageType::L2), false, true));
    assert_eq!(w.state(s.l1_0), (2, 1, Some(PageType::L1), false, true));
    assert_eq!(w.state(s.l1_3), (2, 1, Some(PageType::L1), false, true));
    assert_eq!(
        w.state(s.data_rw),
        (2, 1, Some(PageType::Writable), false, false)
    );
    assert_eq!(
        w.state(s.data_ro),
        (2, 0, Some(PageType::None), false, false)
    );
    let r = w.audit();
    assert_eq!((r.l1, r.l2, r.l3, r.pinned, r.writable), (2, 2, 1, 1, 1));
}

#[test]
fn l3_entries_allow_what_64_bit_xen_takes_from_compat_guests() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let l2 = w.fresh(DOMU);
    w.mm.mod_l3_entry(
        s.l3,
        1,
        pte(l2, PAGE_PRESENT | PAGE_AVAIL),
        &DOMU_CALLER,
        false,
    )
    .unwrap();
    w.audit();
    // RW, US, A and D as a 32-bit PAE Linux writes them under 64-bit Xen.
    let l2c = w.fresh(DOMU);
    let compat = PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
    w.mm.mod_l3_entry(s.l3, 0, pte(l2c, compat), &DOMU_CALLER, false)
        .unwrap();
    w.audit();
    let l2b = w.fresh(DOMU);
    for bad in [1 << 3, 1 << 4, 1 << 7, 1 << 8, 1 << 44, 1 << 62, PAGE_NX] {
        assert_fails!(
            w,
            w.mm.mod_l3_entry(s.l3, 2, pte(l2b, L3F) | bad, &DOMU_CALLER, false),
            Errno::EINVAL
        );
    }
    // NX stays forbidden in an L3 even when the CPU has it.
    let mut w = World::with_config(MmConfig { nx_supported: true });
    let s = w.pinned_space(DOMU);
    let l2 = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(l2, L3F) | PAGE_NX, &DOMU_CALLER, false),
        Errno::EINVAL
    );
}

#[test]
fn forbidden_flags_in_an_l3_fail_its_validation() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    w.poke(s.l3, 0, pte(s.l2_0, L3F | PAGE_PWT));
    assert_fails!(
        w,
        w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    w.poke(s.l3, 0, pte(s.l2_0, L3F));
    w.poke(s.l3, 3, pte(s.l2_3, L3F | PAGE_GLOBAL));
    assert_fails!(
        w,
        w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    // The compat bits validate in every slot, slot 3 included.
    let compat = PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY;
    w.poke(s.l3, 0, pte(s.l2_0, L3F | compat));
    w.poke(s.l3, 3, pte(s.l2_3, L3F | compat));
    w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU).unwrap();
    w.audit();
}

#[test]
fn l3_slot3_must_be_present() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    w.poke(s.l3, 3, 0);
    assert_fails!(
        w,
        w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(w, w.set_base(0, s.l3, &DOMU_CALLER), Errno::EINVAL);
    // Slots 0-2 may be absent.
    w.poke(s.l3, 0, 0);
    w.poke(s.l3, 3, pte(s.l2_3, L3F));
    w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU).unwrap();
    w.audit();
}

#[test]
fn l3_entry_to_a_frame_that_is_not_an_l2_fails() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    // A writable-typed frame, an L1 in use, another domain's L2.
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(s.data_rw, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(s.l1_0, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    let foreign = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(foreign, L3F), &DOM0_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 1, pte(s.l3, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    // The same at validation time.
    let t = w.address_space(DOMU);
    w.poke(t.l3, 1, pte(s.data_rw, L3F));
    assert_fails!(
        w,
        w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn the_slot3_l2_belongs_to_one_l3() {
    let mut w = World::new();
    let a = w.pinned_space(DOMU);
    // A second L3 with the same L2 under slot 3.
    let b_l3 = w.table(DOMU, &[(3, pte(a.l2_3, L3F))]);
    assert_fails!(
        w,
        w.mm.pin(b_l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(w, w.set_base(0, b_l3, &DOMU_CALLER), Errno::EINVAL);
    // Nor may one L3 use it in slot 3 and slot 0 at once.
    let c = w.address_space(DOMU);
    w.poke(c.l3, 0, pte(c.l2_3, L3F));
    assert_fails!(
        w,
        w.mm.pin(c.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    // Once the first L3 lets go, the second may take it.
    w.mm.unpin(a.l3, &DOMU_CALLER, DOMU).unwrap();
    w.mm.pin(b_l3, PtLevel::L3, &DOMU_CALLER, DOMU).unwrap();
    assert!(w.mm.page_info(a.l2_3).unwrap().type_info().pae_xen_l2());
    w.audit();
}

#[test]
fn slot3_is_fixed_once_validated_and_slots_0_to_2_are_updatable() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let fresh_l2 = w.fresh(DOMU);
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 3, pte(fresh_l2, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 3, 0, &DOMU_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 4, pte(fresh_l2, L3F), &DOMU_CALLER, false),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l3_entry(s.l3, 512, 0, &DOMU_CALLER, false),
        Errno::EINVAL
    );
    // Replacing slot 0 devalidates the old L2 (and its L1) and validates the new.
    w.mm.mod_l3_entry(s.l3, 0, pte(fresh_l2, L3F), &DOMU_CALLER, false)
        .unwrap();
    assert_eq!(w.state(fresh_l2), (2, 1, Some(PageType::L2), false, true));
    assert_eq!(w.state(s.l2_0), (1, 0, Some(PageType::L2), false, false));
    assert_eq!(w.state(s.l1_0), (1, 0, Some(PageType::L1), false, false));
    assert_eq!((w.count(s.data_rw), w.type_count(s.data_rw)), (1, 0));
    w.audit();
}

#[test]
fn l3_entries_beyond_4_are_ignored() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    let theirs = w.fresh(DOM0);
    w.poke(s.l3, 4, pte(theirs, 0xFFF));
    w.poke(s.l3, 511, u64::MAX);
    w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.count(theirs), 1);
    w.audit();
}

#[test]
fn a_failing_l3_rolls_back_the_l2s_it_validated() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    let l2_1 = w.table(DOMU, &[(0, pte(s.l1_0, L2F))]);
    w.poke(s.l3, 1, pte(l2_1, L3F));
    // Slot 2 is bad: after slots 0 and 1 have validated their L2s and L1s.
    w.poke(s.l3, 2, pte(s.data_ro, L3F | PAGE_PWT));
    let before = w.snapshot();
    assert_eq!(
        w.mm.pin(s.l3, PtLevel::L3, &DOMU_CALLER, DOMU),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before);
    for f in [s.l2_0, l2_1, s.l1_0, s.l2_3, s.l1_3] {
        assert_eq!((w.count(f), w.type_count(f)), (1, 0), "{f}");
    }
    w.audit();
}

#[test]
fn l3_entries_may_carry_the_cpus_accessed_bit() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let l2b = w.fresh(DOMU);
    w.mm.mod_l3_entry(s.l3, 2, pte(l2b, L3F) | PAGE_ACCESSED, &DOMU_CALLER, false)
        .unwrap();
    w.audit();
}

/// Found by the hypercall fuzzer (`cargo xtask fuzz --mode dom0 --seed 3
/// --calls 12000`, call 11517): a non-present L3 entry may hold any bits,
/// and `MMU_PT_UPDATE_PRESERVE_AD` merged its dirty bit into a present
/// entry, a reserved bit in a PDPTE that `check_l3_flags` refuses (the
/// audit failed: "forbidden flags").
#[test]
fn preserve_ad_does_not_carry_a_dirty_bit_into_an_l3_entry() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let l2b = w.fresh(DOMU);
    w.mm.mod_l3_entry(
        s.l3,
        1,
        PAGE_DIRTY | PAGE_ACCESSED | PAGE_RW,
        &DOMU_CALLER,
        false,
    )
    .unwrap();
    w.mm.mod_l3_entry(s.l3, 1, pte(l2b, L3F), &DOMU_CALLER, true)
        .unwrap();
    assert_eq!(w.peek(s.l3, 1), pte(l2b, L3F) | PAGE_ACCESSED);
    w.audit();
}
