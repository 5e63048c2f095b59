//! Page accounting (`tot_pages`, `max_pages`) and Oxen's own frames: a frame
//! is counted from its assignment to the moment it is really freed; frames
//! Oxen gives a domain for itself are never counted; no guest references an
//! unshared frame of Oxen's, and a shared one only read-only.

use super::fake::*;
use crate::page_info::PGC_XEN_SHARED;
use crate::pte::pte;
use crate::{AuditProblem, Machine, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_SELF, DOMID_XEN};
use xen_abi::errno::Errno;

const DOMU_STD: u32 = DOMU_FRAMES.end as u32 - DOMU_FRAMES.start as u32;

/// Free frames the tests hand out (all in the free part of the table).
fn free(i: u64) -> Mfn {
    Mfn(FREE.0 + i)
}

fn give(w: &mut World, mfn: Mfn, dom: u16) -> Result<(), Errno> {
    let r = w.mm.assign(mfn, dom);
    if r.is_ok() {
        w.mm.machine.live.insert(mfn);
    }
    r
}

#[test]
fn the_standard_world_is_counted() {
    let w = World::new();
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD);
    assert_eq!(w.mm.max_pages(DOMU), DOMU_STD + HEADROOM);
    assert_eq!(
        w.mm.tot_pages(DOMID_XEN),
        0,
        "Oxen's frames have no account"
    );
    assert_eq!(w.mm.tot_pages(ACCOUNTS as u16), 0);
}

#[test]
fn assign_counts_and_stops_at_max_pages() {
    let mut w = World::new();
    for i in 0..u64::from(HEADROOM) {
        give(&mut w, free(i), DOMU).unwrap();
    }
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD + HEADROOM);
    let at = u64::from(HEADROOM);
    assert_fails!(w, w.mm.assign(free(at), DOMU), Errno::E2BIG);
    assert!(w.mm.is_free(free(at)));
    // A domain without an account gets nothing.
    assert_fails!(w, w.mm.assign(free(at), ACCOUNTS as u16), Errno::EINVAL);
    // Giving one back makes room for one.
    assert_eq!(w.mm.release(free(0), DOMU), Ok(true));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD + HEADROOM - 1);
    give(&mut w, free(at), DOMU).unwrap();
    w.audit();
}

#[test]
fn max_pages_cannot_go_below_what_the_domain_holds() {
    let w = World::new();
    assert_fails!(w, w.mm.set_max_pages(DOMU, DOMU_STD - 1), Errno::EINVAL);
    w.mm.set_max_pages(DOMU, DOMU_STD).unwrap();
    assert_eq!(w.mm.max_pages(DOMU), DOMU_STD);
    assert_fails!(w, w.mm.assign(FREE, DOMU), Errno::E2BIG);
    assert_eq!(w.mm.set_max_pages(DOMID_XEN, 5), Err(Errno::EINVAL));
    assert_eq!(w.mm.set_max_pages(ACCOUNTS as u16, 5), Err(Errno::EINVAL));
}

/// The attack of issue 10 finding 5: a frame kept alive by a pin is given
/// back, then the domain tries to refill its reservation past the limit.
#[test]
fn a_pinned_frame_given_back_stays_counted_until_it_is_freed() {
    let mut w = World::new();
    w.mm.set_max_pages(DOMU, DOMU_STD).unwrap();
    let l1 = w.table(DOMU, &[]);
    w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMID_SELF).unwrap();
    assert_eq!(w.mm.release(l1, DOMU), Ok(false), "the pin keeps it");
    assert_eq!(w.mm.owner(l1), Some(DOMU));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD, "still counted");
    // At the limit: nothing more, however often it is tried.
    for i in 0..8 {
        assert_fails!(w, w.mm.assign(free(i), DOMU), Errno::E2BIG);
    }
    // An ordinary frame given back makes room for exactly one.
    let data = w.fresh(DOMU);
    assert_eq!(w.mm.release(data, DOMU), Ok(true));
    give(&mut w, free(0), DOMU).unwrap();
    assert_fails!(w, w.mm.assign(free(1), DOMU), Errno::E2BIG);
    assert!(w.mm.tot_pages(DOMU) <= w.mm.max_pages(DOMU));
    // The unpin frees the frame: only now does the count drop.
    w.mm.unpin(l1, &DOMU_CALLER, DOMID_SELF).unwrap();
    assert!(w.mm.is_free(l1));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD - 1);
    give(&mut w, free(1), DOMU).unwrap();
    w.audit();
}

#[test]
fn a_frame_mapped_by_another_domain_stays_counted_for_its_owner() {
    let mut w = World::new();
    let s = w.pinned_space(DOM0);
    let theirs = w.fresh(DOMU);
    w.mm.mod_l1_entry(s.l1_0, 1, pte(theirs, RO), &DOM0_CALLER, DOMU, false)
        .unwrap();
    assert_eq!(w.mm.release(theirs, DOMU), Ok(false));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD);
    w.audit();
    // dom0's tot_pages never counts domU's frame.
    let dom0 = w.mm.tot_pages(DOM0);
    w.mm.mod_l1_entry(s.l1_0, 1, 0, &DOM0_CALLER, DOMU, false)
        .unwrap();
    assert!(w.mm.is_free(theirs));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD - 1);
    assert_eq!(w.mm.tot_pages(DOM0), dom0);
    w.audit();
}

#[test]
fn extra_frames_are_never_counted_nor_given_back_by_the_guest() {
    let mut w = World::new();
    w.mm.set_max_pages(DOMU, DOMU_STD).unwrap();
    // At the limit, Oxen can still give the domain its shared frames.
    w.mm.assign_extra(FREE, DOMU).unwrap();
    w.mm.machine.live.insert(FREE);
    assert_eq!(w.mm.owner(FREE), Some(DOMU));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD);
    // The guest cannot give it back (it would underflow tot_pages).
    assert_fails!(w, w.mm.release(FREE, DOMU), Errno::EINVAL);
    // With a permanent writable reference, as shared_info holds.
    w.mm.get_page_and_type(FREE, DOMU, crate::PageType::Writable)
        .unwrap();
    // Teardown takes it back; the count does not move.
    assert_eq!(w.mm.relinquish(FREE, DOMU), Ok(false));
    w.mm.put_page_and_type(FREE);
    assert!(w.mm.is_free(FREE));
    assert_eq!(w.mm.tot_pages(DOMU), DOMU_STD);
    assert_fails!(w, w.mm.assign_extra(free(1), DOMID_XEN), Errno::EINVAL);
    assert_fails!(
        w,
        w.mm.assign_extra(free(1), ACCOUNTS as u16),
        Errno::EINVAL
    );
    w.audit();
}

#[test]
fn teardown_brings_the_count_to_zero_and_close_account_checks_it() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    w.mm.new_baseptr(s.l3, None, &DOMU_CALLER, false).unwrap();
    w.bases.push(s.l3);
    w.mm.assign_extra(FREE, DOMU).unwrap();
    w.mm.machine.live.insert(FREE);
    // A dom0 foreign mapping outlives the domain's teardown.
    let d0 = w.pinned_space(DOM0);
    let kept = Mfn(DOMU_FRAMES.end - 1);
    w.mm.mod_l1_entry(d0.l1_0, 1, pte(kept, RO), &DOM0_CALLER, DOMU, false)
        .unwrap();
    w.mm.put_page_and_type(s.l3);
    w.bases.clear();
    for m in DOMU_FRAMES.chain(FREE.0..FREE.0 + 1) {
        w.mm.relinquish(Mfn(m), DOMU).unwrap();
    }
    w.audit();
    assert_eq!(w.mm.tot_pages(DOMU), 1, "the frame dom0 maps");
    w.mm.mod_l1_entry(d0.l1_0, 1, 0, &DOM0_CALLER, DOMU, false)
        .unwrap();
    assert_eq!(w.mm.tot_pages(DOMU), 0);
    assert_eq!(w.mm.close_account(DOMU), 0);
    assert_eq!(w.mm.max_pages(DOMU), 0);
    w.audit();
}

#[test]
fn close_account_reports_what_is_left_and_the_audit_sees_it() {
    let w = World::new();
    assert_eq!(w.mm.close_account(DOMU), DOMU_STD);
    assert_eq!(w.mm.tot_pages(DOMU), 0);
    let e = w.mm.audit(&[]).unwrap_err();
    assert_eq!(
        e.problem,
        AuditProblem::Account {
            domid: DOMU,
            recorded: 0,
            counted: u64::from(DOMU_STD),
            max: 0
        }
    );
    assert!(DOMU_FRAMES.contains(&e.mfn.0));
    assert!(e.to_string().contains("tot_pages is 0"), "{e}");
}

// ---- Oxen's frames ----

const XEN_FRAME: Mfn = Mfn(XEN_FRAMES.start + 1);
const SHARED: Mfn = Mfn(XEN_FRAMES.start + 2);

#[test]
fn privileged_domains_map_only_shared_xen_frames_and_only_read_only() {
    let mut w = World::new();
    w.mm.share_xen_frame(SHARED).unwrap();
    let s = w.pinned_space(DOM0);
    let map = |w: &mut World, mfn, flags| {
        w.mm.mod_l1_entry(s.l1_0, 2, pte(mfn, flags), &DOM0_CALLER, DOMID_XEN, false)
    };
    assert_fails!(w, map(&mut w, XEN_FRAME, RW), Errno::EINVAL);
    assert_fails!(w, map(&mut w, XEN_FRAME, RO), Errno::EINVAL);
    assert_fails!(w, map(&mut w, SHARED, RW), Errno::EINVAL);
    map(&mut w, SHARED, RO).unwrap();
    assert_eq!(w.count(SHARED), 2);
    w.audit();
    // Nor by naming dom0 itself, nor as any kind of typed frame.
    assert_fails!(
        w,
        w.mm.mod_l1_entry(
            s.l1_0,
            3,
            pte(XEN_FRAME, RO),
            &DOM0_CALLER,
            DOMID_SELF,
            false
        ),
        Errno::EINVAL
    );
    for f in [XEN_FRAME, SHARED] {
        for level in [PtLevel::L1, PtLevel::L2, PtLevel::L3] {
            assert_fails!(
                w,
                w.mm.pin(f, level, &DOM0_CALLER, DOMID_XEN),
                Errno::EINVAL
            );
        }
    }
    // Unprivileged domains cannot name DOMID_XEN at all.
    let u = w.pinned_space(DOMU);
    assert_fails!(
        w,
        w.mm.mod_l1_entry(u.l1_0, 2, pte(SHARED, RO), &DOMU_CALLER, DOMID_XEN, false),
        Errno::ESRCH
    );
    // The M2P of an unshared frame of Oxen's cannot be written either.
    let m2p = |mfn: Mfn| (mfn.0 << 12) | crate::ops::MMU_MACHPHYS_UPDATE;
    assert_fails!(
        w,
        w.mm.mmu_update_one(m2p(XEN_FRAME), 7, &DOM0_CALLER, DOMID_SELF, DOMID_XEN),
        Errno::EINVAL
    );
    w.mm.mmu_update_one(m2p(SHARED), 7, &DOM0_CALLER, DOMID_SELF, DOMID_XEN)
        .unwrap();
    // Unmapping drops the reference.
    map(&mut w, Mfn(0), 0).unwrap();
    assert_eq!(w.count(SHARED), 1);
    w.audit();
}

#[test]
fn only_unreferenced_frames_of_oxen_can_be_shared() {
    let mut w = World::new();
    let mine = w.fresh(DOM0);
    assert_fails!(w, w.mm.share_xen_frame(mine), Errno::EINVAL);
    assert_fails!(w, w.mm.share_xen_frame(FREE), Errno::EINVAL);
    assert_fails!(w, w.mm.share_xen_frame(Mfn(IO_FRAMES.start)), Errno::EINVAL);
    assert_fails!(w, w.mm.share_xen_frame(NON_RAM), Errno::EINVAL);
    w.mm.share_xen_frame(SHARED).unwrap();
    assert!(w.mm.page_info(SHARED).unwrap().count_info().xen_shared());
    w.audit();
}

#[test]
fn the_audit_refuses_mappings_of_unshared_xen_frames_and_misplaced_flags() {
    let mut w = World::new();
    let s = w.pinned_space(DOM0);
    // Planted behind the engine's back: an RO entry for Oxen's frame, with
    // the reference it would hold.
    let pi = w.mm.page_info(XEN_FRAME).unwrap();
    pi.set_count_info(pi.count_info().with_count(2));
    w.mm.machine.write_pte(s.l1_0, 5, pte(XEN_FRAME, RO));
    let e = w.mm.audit(&[]).unwrap_err();
    assert_eq!(e.mfn, s.l1_0);
    assert!(
        matches!(e.problem, AuditProblem::BadEntry { index: 5, .. }),
        "{e}"
    );
    w.mm.machine.write_pte(s.l1_0, 5, 0);
    pi.set_count_info(pi.count_info().with_count(1));
    w.audit();
    // xen_shared on a domain's frame.
    let d = w.fresh(DOMU);
    let dpi = w.mm.page_info(d).unwrap();
    dpi.set_count_info(dpi.count_info().with_flag(PGC_XEN_SHARED, true));
    assert!(matches!(
        w.mm.audit(&[]).unwrap_err().problem,
        AuditProblem::BadFlags { .. }
    ));
}
