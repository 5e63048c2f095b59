//! Tearing address spaces and domains down: nothing leaks, nothing is freed twice.

use super::fake::*;
use crate::pte::pte;
use crate::{PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::DomId;

fn relinquish_all(w: &mut World, dom: DomId, frames: core::ops::Range<u64>) {
    for m in frames.map(Mfn) {
        w.mm.relinquish(m, dom).unwrap();
        w.audit();
    }
}

#[test]
fn guest_order_teardown_makes_tables_writable_again() {
    let mut w = World::new();
    let a = w.pinned_space(DOMU);
    let b = w.pinned_space(DOMU);
    w.set_base(0, a.l3, &DOMU_CALLER).unwrap();
    // Switch away, unpin, then the old tables may be mapped writable.
    w.set_base(0, b.l3, &DOMU_CALLER).unwrap();
    w.mm.unpin(a.l3, &DOMU_CALLER, DOMU).unwrap();
    for t in [a.l3, a.l2_0, a.l2_3, a.l1_0, a.l1_3] {
        w.mm.mod_l1_entry(b.l1_0, 20, pte(t, RW), &DOMU_CALLER, DOMU, false)
            .unwrap();
        assert!(w.is(t, PageType::Writable));
        w.audit();
    }
}

#[test]
fn domain_teardown_frees_every_frame_exactly_once() {
    let mut w = World::new();
    let a = w.pinned_space(DOMU);
    let b = w.address_space(DOMU);
    w.set_base(0, a.l3, &DOMU_CALLER).unwrap();
    w.set_base(1, b.l3, &DOMU_CALLER).unwrap();
    let extra_l1 = w.fresh(DOMU);
    w.mm.pin(extra_l1, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    w.mm.mod_l1_entry(extra_l1, 0, pte(a.l3, RO), &DOMU_CALLER, DOMU, false)
        .unwrap();
    w.mm.mod_l1_entry(a.l1_0, 1, pte(extra_l1, RO), &DOMU_CALLER, DOMU, false)
        .unwrap();
    // dom0 keeps a foreign mapping of one domU frame.
    let d0 = w.pinned_space(DOM0);
    w.mm.mod_l1_entry(d0.l1_0, 7, pte(a.data_ro, RW), &DOM0_CALLER, DOMU, false)
        .unwrap();
    w.audit();

    // The hypervisor drops the VCPUs' base pointers, then every frame.
    for l3 in std::mem::take(&mut w.bases) {
        w.mm.put_page_and_type(l3);
    }
    relinquish_all(&mut w, DOMU, DOMU_FRAMES);
    for m in DOMU_FRAMES.map(Mfn) {
        assert_eq!(w.mm.is_free(m), m != a.data_ro, "{m}");
    }
    assert_eq!(w.mm.owner(a.data_ro), Some(DOMU));
    assert_eq!(
        w.state(a.data_ro),
        (1, 1, Some(PageType::Writable), false, false)
    );
    // dom0 lets go: the last domU frame is freed.
    w.mm.mod_l1_entry(d0.l1_0, 7, 0, &DOM0_CALLER, DOM0, false)
        .unwrap();
    assert!(w.mm.is_free(a.data_ro));
    assert_eq!(w.mm.machine.freed.len(), DOMU_FRAMES.count());
    w.audit();
    // Frames can be reused by another domain.
    w.mm.assign(a.l3, DOM0).unwrap();
}

#[test]
fn relinquish_in_any_order() {
    for reverse in [false, true] {
        let mut w = World::new();
        let _ = w.pinned_space(DOMU);
        let l1 = w.fresh(DOMU);
        w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
        let mut frames: Vec<Mfn> = DOMU_FRAMES.map(Mfn).collect();
        if reverse {
            frames.reverse();
        }
        for m in frames {
            w.mm.relinquish(m, DOMU).unwrap();
            w.audit();
        }
        assert!(DOMU_FRAMES.map(Mfn).all(|m| w.mm.is_free(m)));
        assert!(
            w.mm.machine
                .live
                .iter()
                .all(|m| !DOMU_FRAMES.contains(&m.0))
        );
    }
}

#[test]
fn relinquish_checks_the_owner() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_fails!(w, w.mm.relinquish(f, DOM0), xen_abi::errno::Errno::EINVAL);
    assert_fails!(
        w,
        w.mm.relinquish(FREE, xen_abi::domid::DOMID_INVALID),
        xen_abi::errno::Errno::EINVAL
    );
    assert_eq!(w.mm.relinquish(f, DOMU), Ok(true));
}
