//! Ownership, total references and type references.

use super::fake::*;
use crate::page_info::{PGC_COUNT_MASK, PGT_COUNT_MASK, TypeInfo};
use crate::pte::pte;
use crate::{Mm, MmConfig, PageInfo, PageType};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN};
use xen_abi::errno::Errno;

#[test]
fn standard_world_audits() {
    let w = World::new();
    let r = w.audit();
    assert_eq!(r.frames, NR_FRAMES as usize);
    assert_eq!(r.io, IO_FRAMES.count());
    assert_eq!(
        r.owned,
        XEN_FRAMES.count() + DOM0_FRAMES.count() + DOMU_FRAMES.count()
    );
    assert_eq!(r.free, NR_FRAMES as usize - r.io - r.owned);
    assert_eq!(r.total_refs, r.owned as u64);
}

#[test]
fn assign_gives_a_free_frame_its_allocation_reference() {
    let mut w = World::new();
    assert!(w.mm.is_free(FREE));
    assert_eq!(w.mm.owner(FREE), None);
    w.mm.assign(FREE, DOMU).unwrap();
    w.mm.machine.live.insert(FREE);
    assert_eq!(w.mm.owner(FREE), Some(DOMU));
    let pi = w.mm.page_info(FREE).unwrap();
    assert!(pi.count_info().allocated());
    assert_eq!(pi.count(), 1);
    w.audit();
}

#[test]
fn assign_refuses_owned_io_and_non_ram_frames_and_reserved_owners() {
    let w = World::new();
    assert_fails!(w, w.mm.assign(Mfn(DOM0_FRAMES.start), DOMU), Errno::EBUSY);
    assert_fails!(w, w.mm.assign(Mfn(IO_FRAMES.start), DOMU), Errno::EBUSY);
    assert_fails!(w, w.mm.assign(NON_RAM, DOMU), Errno::EINVAL);
    for bad in [DOMID_INVALID, DOMID_IO, DOMID_SELF] {
        assert_fails!(w, w.mm.assign(FREE, bad), Errno::EINVAL);
    }
    w.mm.assign(FREE, DOMID_XEN).unwrap();
}

#[test]
fn release_frees_an_unreferenced_frame() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_eq!(w.mm.release(f, DOMU), Ok(true));
    assert!(w.mm.is_free(f));
    assert_eq!(w.mm.machine.freed, vec![f]);
    w.audit();
    // It can be given out again.
    w.mm.assign(f, DOM0).unwrap();
}

#[test]
fn release_of_a_mapped_frame_frees_it_at_the_last_reference() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    assert_eq!(w.mm.release(s.data_ro, DOMU), Ok(false));
    assert_eq!(
        w.mm.owner(s.data_ro),
        Some(DOMU),
        "still mapped: still owned"
    );
    assert!(w.mm.machine.freed.is_empty());
    w.audit();
    w.mm.unpin(s.l3, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.mm.machine.freed, vec![s.data_ro]);
    assert!(w.mm.is_free(s.data_ro));
    w.audit();
}

/// Issue 10 finding 2: a domain maps its own frame through a grant, clears
/// the PTE behind the grant code's back and gives the frame back. The grant
/// mapping's own page reference (the hypervisor's, outside any table) keeps
/// the frame out of the allocator: it stays the domain's, unallocated, cannot
/// be given to anyone, still takes the owner's references (a copy's), and is
/// freed when that last reference goes.
#[test]
fn a_grant_mappings_reference_outlives_its_pte_and_the_reservation() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let g = w.fresh(DOMU);
    let held = [crate::ExternalRef { mfn: g, ty: None }];
    let audit = |w: &World| {
        w.mm.audit_with(&w.bases, &held)
            .unwrap_or_else(|e| panic!("audit failed: {e}"))
    };
    w.mm.get_page(g, DOMU).unwrap();
    let ro = crate::GrantPte {
        frame: g,
        readonly: true,
        user: true,
    };
    w.mm.install_grant_l1e(s.l1_0, 5, ro, &DOMU_CALLER, DOMU)
        .unwrap();
    w.mm.mod_l1_entry(s.l1_0, 5, 0, &DOMU_CALLER, DOMID_SELF, false)
        .unwrap();
    assert_eq!(w.count(g), 2, "allocation + the mapping's reference");
    audit(&w);
    assert_eq!(w.mm.release(g, DOMU), Ok(false));
    assert_eq!(w.mm.owner(g), Some(DOMU));
    assert!(!w.mm.is_free(g) && w.mm.machine.freed.is_empty());
    assert!(!w.mm.page_info(g).unwrap().count_info().allocated());
    // (Not `assert_fails!`: its audit does not know the mapping's reference.)
    let before = w.snapshot();
    assert_eq!(w.mm.assign(g, DOM0), Err(Errno::EBUSY));
    assert_eq!(w.mm.get_page(g, DOM0), Err(Errno::EINVAL));
    assert_eq!(w.mm.release(g, DOMU), Err(Errno::EINVAL));
    assert_eq!(w.snapshot(), before);
    // A copy's reference for the owner still works (the frame holds what it
    // held: nobody else can have written it).
    w.mm.get_page(g, DOMU).unwrap();
    w.mm.put_page(g);
    audit(&w);
    w.mm.put_page(g);
    assert_eq!(w.mm.machine.freed, vec![g]);
    assert!(w.mm.is_free(g));
    w.audit();
}

#[test]
fn release_refuses_wrong_owner_and_double_release() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_fails!(w, w.mm.release(f, DOM0), Errno::EINVAL);
    assert_fails!(w, w.mm.release(NON_RAM, DOMU), Errno::EINVAL);
    assert_fails!(
        w,
        w.mm.release(Mfn(IO_FRAMES.start), DOMID_IO),
        Errno::EINVAL
    );
    let s = w.pinned_space(DOMU);
    assert_eq!(w.mm.release(s.data_rw, DOMU), Ok(false));
    assert_fails!(w, w.mm.release(s.data_rw, DOMU), Errno::EINVAL);
}

#[test]
fn get_page_checks_owner_and_use() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    w.mm.get_page(f, DOM0).unwrap();
    assert_eq!(w.count(f), 2);
    w.mm.put_page(f);
    assert_eq!(w.count(f), 1);
    assert_fails!(w, w.mm.get_page(f, DOMU), Errno::EINVAL);
    assert_fails!(w, w.mm.get_page(FREE, DOMID_INVALID), Errno::EINVAL);
    assert_fails!(
        w,
        w.mm.get_page(Mfn(IO_FRAMES.start), DOMID_IO),
        Errno::EINVAL
    );
    assert_fails!(w, w.mm.get_page(NON_RAM, DOM0), Errno::EINVAL);
}

#[test]
fn total_count_never_overflows() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    let pi = w.mm.page_info(f).unwrap();
    pi.set_count_info(pi.count_info().with_count(PGC_COUNT_MASK - 1));
    w.mm.get_page(f, DOM0).unwrap();
    let before = w.snapshot();
    assert_eq!(w.mm.get_page(f, DOM0), Err(Errno::EINVAL));
    assert_eq!(
        w.mm.get_page_and_type(f, DOM0, PageType::Writable),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before);
}

#[test]
fn type_count_never_overflows() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    w.mm.get_page_and_type(f, DOM0, PageType::Writable).unwrap();
    let pi = w.mm.page_info(f).unwrap();
    pi.set_type_info(pi.type_info().with_count(PGT_COUNT_MASK));
    let before = w.snapshot();
    assert_eq!(
        w.mm.get_page_and_type(f, DOM0, PageType::Writable),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before, "the total reference was given back");
}

#[test]
fn one_type_at_a_time() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    // The test holds the references itself: check the table, not the audit.
    let refuse = |w: &mut World, ty| {
        let before = w.snapshot();
        assert_eq!(w.mm.get_page_and_type(f, DOM0, ty), Err(Errno::EINVAL));
        assert!(w.snapshot() == before);
    };
    w.mm.get_page_and_type(f, DOM0, PageType::Writable).unwrap();
    w.mm.get_page_and_type(f, DOM0, PageType::Writable).unwrap();
    assert_eq!(w.state(f), (3, 2, Some(PageType::Writable), false, false));
    refuse(&mut w, PageType::L1);
    w.mm.put_page_and_type(f);
    refuse(&mut w, PageType::L2);
    w.mm.put_page_and_type(f);
    // At type count 0 the type may change; a zeroed frame validates as anything.
    w.mm.get_page_and_type(f, DOM0, PageType::L1).unwrap();
    assert_eq!(w.state(f), (2, 1, Some(PageType::L1), false, true));
    refuse(&mut w, PageType::Writable);
    refuse(&mut w, PageType::L2);
    w.mm.put_page_and_type(f);
    assert_eq!(w.state(f), (1, 0, Some(PageType::L1), false, false));
    w.audit();
}

#[test]
fn type_none_cannot_be_requested() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    assert_fails!(
        w,
        w.mm.get_page_and_type(f, DOM0, PageType::None),
        Errno::EINVAL
    );
}

#[test]
fn retyping_to_a_page_table_asks_for_a_tlb_flush() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    w.mm.get_page_and_type(f, DOM0, PageType::Writable).unwrap();
    w.mm.put_page_and_type(f);
    assert!(
        w.mm.machine.retype_flushes.is_empty(),
        "becoming writable needs no flush"
    );
    w.mm.get_page_and_type(f, DOM0, PageType::L1).unwrap();
    assert_eq!(w.mm.machine.retype_flushes, vec![f]);
    w.mm.put_page_and_type(f);
    // Same type again: no writable mapping can have appeared in between.
    w.mm.get_page_and_type(f, DOM0, PageType::L1).unwrap();
    assert_eq!(w.mm.machine.retype_flushes, vec![f]);
    w.mm.put_page_and_type(f);
    w.mm.get_page_and_type(f, DOM0, PageType::L2).unwrap();
    assert_eq!(w.mm.machine.retype_flushes, vec![f, f]);
}

#[test]
fn seg_desc_type_is_validated_by_the_machine() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    w.mm.machine.seg_desc_ok = false;
    assert_fails!(
        w,
        w.mm.get_page_and_type(f, DOM0, PageType::SegDesc),
        Errno::EINVAL
    );
    w.mm.machine.seg_desc_ok = true;
    w.mm.get_page_and_type(f, DOM0, PageType::SegDesc).unwrap();
    assert_eq!(w.state(f), (2, 1, Some(PageType::SegDesc), false, true));
    // Neither mappable writable nor writable through mmu_update.
    let ext = [crate::ExternalRef {
        mfn: f,
        ty: Some(PageType::SegDesc),
    }];
    let l1 = w.table(DOM0, &[(0, pte(f, RW))]);
    let before = w.snapshot();
    assert_eq!(
        w.mm.get_page_and_type(l1, DOM0, PageType::L1),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        w.mm.mmu_update_one(ptr(f, 0), 0, &DOM0_CALLER, DOM0, DOM0),
        Err(Errno::EINVAL)
    );
    assert!(w.snapshot() == before);
    w.mm.audit_with(&[], &ext).unwrap();
    // The plain audit sees a type reference it cannot explain.
    assert!(w.mm.audit(&[]).is_err());
    w.mm.put_page_and_type(f);
    assert_eq!(w.state(f), (1, 0, Some(PageType::SegDesc), false, false));
    w.audit();
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "no references")]
fn put_page_on_zero_is_a_bug() {
    let frames: &'static [PageInfo] = Box::leak(vec![PageInfo::free()].into_boxed_slice());
    let mut mm = Mm::new(frames, &[], FakeMachine::default(), MmConfig::default());
    mm.put_page(Mfn(0));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "no type references")]
fn put_page_type_on_zero_is_a_bug() {
    let mut w = World::new();
    let f = w.fresh(DOM0);
    w.mm.put_page_type(f);
}

#[test]
fn type_info_of_a_fresh_frame_is_untyped() {
    let mut w = World::new();
    let f = w.fresh(DOMU);
    assert_eq!(
        w.mm.page_info(f).unwrap().type_info(),
        TypeInfo::new(PageType::None, 0)
    );
}
