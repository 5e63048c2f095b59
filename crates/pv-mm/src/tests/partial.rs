//! Preemptible validation (engine invariant 12): partial tables, resuming,
//! failure in a later step, exclusion of partial tables, teardown.

use super::fake::*;
use crate::pte::pte;
use crate::{Budget, Mm, PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_INVALID, DOMID_SELF, DomId};
use xen_abi::errno::Errno;

/// An L3 of `dom` over two L2s (slots 0 and 3) over `l1s` fresh L1s each,
/// every L1 mapping `data` read-write at entry 0 and read-only at 1.
struct Tree {
    l3: Mfn,
    l2: [Mfn; 2],
    l1: Vec<Mfn>,
    data: Mfn,
}

fn tree(w: &mut World, dom: DomId, l1s: usize) -> Tree {
    let data = w.fresh(dom);
    let mut l1 = Vec::new();
    let mut l2 = [Mfn(0); 2];
    for slot in &mut l2 {
        let mut entries = Vec::new();
        for j in 0..l1s {
            let t = w.table(dom, &[(0, pte(data, RW)), (1, pte(data, RO))]);
            l1.push(t);
            entries.push((j * 3, pte(t, L2F)));
        }
        *slot = w.table(dom, &entries);
    }
    let l3 = w.table(dom, &[(0, pte(l2[0], L3F)), (3, pte(l2[1], L3F))]);
    Tree { l3, l2, l1, data }
}

/// Calls `f` with a fresh budget of `budget` until it stops returning
/// `-ERESTART`, auditing after each call; returns the calls made and the result.
fn drive(
    w: &mut World,
    budget: u32,
    mut f: impl FnMut(&mut Mm<'static, FakeMachine>, &mut Budget) -> Result<(), Errno>,
) -> (usize, Result<(), Errno>) {
    for calls in 1..10_000 {
        let mut b = Budget::new(budget);
        let r = f(&mut w.mm, &mut b);
        w.audit();
        if r != Err(Errno::ERESTART) {
            return (calls, r);
        }
    }
    panic!("no progress");
}

fn partial(w: &World, mfn: Mfn) -> bool {
    w.mm.page_info(mfn).unwrap().type_info().partial()
}

#[test]
fn a_big_pin_takes_several_steps_and_ends_as_a_plain_pin() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let mut reference = World::new();
    let rt = tree(&mut reference, DOMU, 6);
    reference
        .mm
        .pin(rt.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();

    let mut b = Budget::new(600);
    let r =
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b);
    assert_eq!(r, Err(Errno::ERESTART));
    assert!(partial(&w, t.l3) && partial(&w, t.l2[0]));
    assert_eq!(w.state(t.l3), (2, 1, Some(PageType::L3), false, false));
    assert_eq!(w.audit().partial, 2);
    let (calls, r) = drive(&mut w, 600, |mm, b| {
        mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b)
    });
    assert_eq!(r, Ok(()));
    // 12 fresh L1s at two per 600 entries of budget.
    assert!(calls >= 4, "only {calls} more calls");
    assert_eq!(w.snapshot(), reference.snapshot());
    assert_eq!(w.state(t.l3), (2, 1, Some(PageType::L3), true, true));
    let r = w.audit();
    assert_eq!((r.l3, r.l2, r.l1, r.partial, r.pinned), (1, 2, 12, 0, 1));
    // A second pin is refused as for any pinned table.
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    // And it tears down as a plain pin does.
    w.mm.unpin(t.l3, &DOMU_CALLER, DOMID_SELF).unwrap();
    assert_eq!(w.audit().l1, 0);
    assert_eq!(w.count(t.data), 1);
}

#[test]
fn a_large_budget_does_it_in_one_call() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let (calls, r) = drive(&mut w, 1 << 20, |mm, b| {
        mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b)
    });
    assert_eq!((calls, r), (1, Ok(())));
    // Pinning an L1 (never split) and a small L2 also work preemptibly.
    let l1 = w.table(DOMU, &[(0, pte(t.data, RO))]);
    let mut b = Budget::new(1);
    w.mm.pin_preemptible(l1, PtLevel::L1, &DOMU_CALLER, DOMID_SELF, &mut b)
        .unwrap();
    assert!(w.is(l1, PageType::L1));
    let mut b = Budget::new(1);
    assert_fails!(
        w,
        w.mm.pin_preemptible(l1, PtLevel::L4, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
}

#[test]
fn a_validation_failing_in_a_later_step_restores_everything() {
    for bad_slot in [0usize, 3] {
        let mut w = World::new();
        let t = tree(&mut w, DOMU, 6);
        // The last L1 of the chosen L2 maps a frame of dom0: invalid.
        let victim = if bad_slot == 0 { t.l1[5] } else { t.l1[11] };
        let foreign = w.fresh(DOM0);
        w.poke(victim, 7, pte(foreign, RO));
        let before = w.snapshot();
        let (calls, r) = drive(&mut w, 600, |mm, b| {
            mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b)
        });
        assert_eq!(r, Err(Errno::EINVAL));
        assert!(calls >= 3, "failed after {calls} calls");
        assert!(
            w.snapshot() == before,
            "a failed preemptible pin left traces"
        );
        assert_eq!(w.audit().partial, 0);
        // Fixed, the pin goes through.
        w.poke(victim, 7, 0);
        let (_, r) = drive(&mut w, 600, |mm, b| {
            mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b)
        });
        assert_eq!(r, Ok(()));
    }
}

#[test]
fn a_partial_table_is_not_usable_as_a_complete_one() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let mut b = Budget::new(600);
    let r =
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b);
    assert_eq!(r, Err(Errno::ERESTART));
    let held = t.l2[0];
    assert!(partial(&w, held) && w.mm.page_info(held).unwrap().progress().held);
    // Neither the root nor the held L2 can be pinned, used as a base
    // pointer, mapped writable, written raw or referenced by another table.
    for (mfn, level) in [(t.l3, PtLevel::L3), (held, PtLevel::L2)] {
        assert_fails!(
            w,
            w.mm.pin(mfn, level, &DOMU_CALLER, DOMID_SELF),
            Errno::EINVAL
        );
        assert_fails!(
            w,
            w.mm.get_page_and_type(mfn, DOMU, PageType::Writable),
            Errno::EINVAL
        );
        assert_fails!(
            w,
            w.mm.mmu_update_one(ptr(mfn, 5), 0, &DOMU_CALLER, DOMID_SELF, DOMID_SELF),
            Errno::EINVAL
        );
        assert_fails!(w, w.set_base(0, mfn, &DOMU_CALLER), Errno::EINVAL);
    }
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.new_baseptr_preemptible(held, None, &DOMU_CALLER, false, &mut b),
        Errno::EINVAL
    );
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.new_baseptr_preemptible(t.l3, None, &DOM0_CALLER, false, &mut b),
        Errno::EINVAL
    );
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(held, PtLevel::L2, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    // A root is resumed only by a request of its type from its owner.
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(t.l3, PtLevel::L2, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOM0_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    let other = w.table(DOMU, &[(0, pte(held, L3F)), (3, pte(t.l2[1], L3F))]);
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(other, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    // An L1 under the held L2 that is already validated stays usable, but
    // nothing can be walked through the partial tables.
    assert!(w.mm.l1_slot_for_va(t.l3, 0).is_err());
    // A base pointer may take over a partial root: it completes it, and the
    // pin that started it, retried, then takes a reference of its own.
    loop {
        let mut b = Budget::new(600);
        match w
            .mm
            .new_baseptr_preemptible(t.l3, None, &DOMU_CALLER, false, &mut b)
        {
            Err(Errno::ERESTART) => w.audit(),
            r => {
                assert_eq!(r, Ok(()));
                break;
            }
        };
    }
    w.bases.push(t.l3);
    w.audit();
    let mut b = Budget::new(600);
    w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b)
        .unwrap();
    assert_eq!(w.state(t.l3), (3, 2, Some(PageType::L3), true, true));
    w.audit();
}

#[test]
fn relinquishing_a_domain_with_partial_tables_frees_everything() {
    for order in [false, true] {
        let mut w = World::new();
        let t = tree(&mut w, DOMU, 6);
        let mut b = Budget::new(1200);
        let r =
            w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b);
        assert_eq!(r, Err(Errno::ERESTART));
        assert_eq!(w.audit().partial, 2);
        // Teardown in frame order, or the root first.
        let mut frames: Vec<u64> = DOMU_FRAMES.collect();
        if order {
            frames.retain(|&m| m != t.l3.0);
            frames.insert(0, t.l3.0);
        }
        for m in frames {
            w.mm.relinquish(Mfn(m), DOMU).unwrap();
            w.audit();
        }
        for m in DOMU_FRAMES {
            let pi = w.mm.page_info(Mfn(m)).unwrap();
            assert!(
                pi.is_free() && pi.owner() == DOMID_INVALID && pi.type_count() == 0,
                "{m:#x} not freed"
            );
        }
        assert_eq!(w.mm.tot_pages(DOMU), 0);
    }
}

#[test]
fn every_step_stays_within_the_budget() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    // Each call validates at most budget + one L1 of entries: with a budget
    // of 1 every call makes progress on exactly one entry (or one L1).
    let mut reads = Vec::new();
    let (calls, r) = drive(&mut w, 1, |mm, b| {
        let before = mm.machine.reads.get();
        let r = mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b);
        reads.push(mm.machine.reads.get() - before);
        r
    });
    assert_eq!(r, Ok(()));
    // Every guest entry of the two L2s takes a call of its own.
    assert!(calls >= 512 + 428, "{calls} calls");
    assert!(
        reads.iter().all(|&n| n <= 512 + 8),
        "a call read {:?} entries",
        reads.iter().max()
    );
    let _ = t.l1.len();
}

#[test]
fn the_audit_checks_partial_tables() {
    use crate::AuditProblem;
    use core::sync::atomic::Ordering;
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let mut b = Budget::new(600);
    let r =
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b);
    assert_eq!(r, Err(Errno::ERESTART));
    w.audit();
    let bad = |w: &World| match w.mm.audit(&w.bases) {
        Err(e) => e.problem,
        Ok(_) => panic!("the audit missed it"),
    };
    // More validated entries than the references taken: entry 6 points at
    // an L1 not validated yet.
    let l2 = w.mm.page_info(t.l2[0]).unwrap();
    let p = l2.extra.load(Ordering::Relaxed);
    l2.extra.store(p + 4, Ordering::Relaxed);
    assert!(matches!(bad(&w), AuditProblem::BadEntry { index: 6, .. }));
    // Fewer: the L1 at entry 3 has a reference no entry accounts for.
    l2.extra.store(p - 1, Ordering::Relaxed);
    assert!(matches!(bad(&w), AuditProblem::TotalCount { .. }));
    // The L3's partial entry not pointing at a held L2.
    l2.extra.store(p & !(1 << 17), Ordering::Relaxed);
    assert!(matches!(bad(&w), AuditProblem::BadPartial { .. }));
    l2.extra.store(p, Ordering::Relaxed);
    w.audit();
    // A progress word on a frame that is not partial.
    let l1 = w.mm.page_info(t.l1[0]).unwrap();
    l1.extra.store(1, Ordering::Relaxed);
    assert!(matches!(bad(&w), AuditProblem::BadPartial { .. }));
    l1.extra.store(0, Ordering::Relaxed);
    // A partial table with a second type reference.
    let l3 = w.mm.page_info(t.l3).unwrap();
    let ti = l3.type_info();
    l3.type_info.store(ti.with_count(2).0, Ordering::Relaxed);
    assert!(matches!(bad(&w), AuditProblem::BadPartial { .. }));
    l3.type_info.store(ti.0, Ordering::Relaxed);
    w.audit();
}

#[test]
fn a_big_unpin_takes_several_steps_and_frees_everything() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let before = w.snapshot();
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let (calls, r) = drive(&mut w, 600, |mm, b| {
        mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, b)
    });
    assert_eq!(r, Ok(()));
    assert!(calls >= 4, "only {calls} calls");
    assert!(w.snapshot() == before, "the unpin left references");
    // Not pinned any more.
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
}

#[test]
fn an_unpin_of_a_table_with_other_references_just_drops_the_pin() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 2);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    w.set_base(0, t.l3, &DOMU_CALLER).unwrap();
    let mut b = Budget::new(1);
    w.mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, &mut b)
        .unwrap();
    assert_eq!(w.state(t.l3), (2, 1, Some(PageType::L3), false, true));
    assert_eq!(w.audit().l1, 4);
    // Another domain cannot unpin it, nor a frame that is not pinned.
    w.mm.pin(t.l2[0], PtLevel::L2, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.unpin_preemptible(t.l2[0], &DOM0_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.unpin_preemptible(t.l2[1], &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
}

#[test]
fn a_partial_table_goes_up_or_down_whichever_is_asked() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let before = w.snapshot();
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    // Half way down, the table is pinned again: it is built up again.
    for _ in 0..3 {
        let mut b = Budget::new(600);
        let r =
            w.mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, &mut b);
        assert_eq!(r, Err(Errno::ERESTART));
        w.audit();
    }
    assert!(partial(&w, t.l3));
    let (_, r) = drive(&mut w, 600, |mm, b| {
        mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b)
    });
    assert_eq!(r, Ok(()));
    assert_eq!(w.state(t.l3), (2, 1, Some(PageType::L3), true, true));
    assert_eq!(w.audit().l1, 12);
    // Half way up (from scratch), an unpin takes it down.
    w.mm.unpin(t.l3, &DOMU_CALLER, DOMID_SELF).unwrap();
    assert!(w.snapshot() == before);
    let mut b = Budget::new(1200);
    let r =
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b);
    assert_eq!(r, Err(Errno::ERESTART));
    let (_, r) = drive(&mut w, 600, |mm, b| {
        mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, b)
    });
    assert_eq!(r, Ok(()));
    assert!(w.snapshot() == before, "references left behind");
    // And half way down, the domain goes: everything is freed.
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let mut b = Budget::new(1200);
    let r =
        w.mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, &mut b);
    assert_eq!(r, Err(Errno::ERESTART));
    for m in DOMU_FRAMES {
        w.mm.relinquish(Mfn(m), DOMU).unwrap();
        w.audit();
    }
    assert_eq!(w.mm.tot_pages(DOMU), 0);
    for m in DOMU_FRAMES {
        assert!(
            w.mm.page_info(Mfn(m)).unwrap().is_free(),
            "{m:#x} not freed"
        );
    }
}

/// A fresh L2 of `dom` over `l1s` fresh L1s, each mapping `data`.
fn subtree(w: &mut World, dom: DomId, l1s: usize, data: Mfn) -> (Mfn, Vec<Mfn>) {
    let l1: Vec<Mfn> = (0..l1s)
        .map(|_| w.table(dom, &[(0, pte(data, RW))]))
        .collect();
    let entries: Vec<(usize, u64)> = l1
        .iter()
        .enumerate()
        .map(|(j, &m)| (2 * j, pte(m, L2F)))
        .collect();
    (w.table(dom, &entries), l1)
}

#[test]
fn an_l3_entry_naming_a_fresh_subtree_is_validated_in_steps() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 1);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let (l2, l1) = subtree(&mut w, DOMU, 8, t.data);
    let req = (ptr(t.l3, 1), pte(l2, L3F));
    let mut calls = 0;
    let r = loop {
        calls += 1;
        let mut b = Budget::new(600);
        let r = w.mm.mmu_update_one_preemptible(
            req.0,
            req.1,
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
            &mut b,
        );
        w.audit();
        if r != Err(Errno::ERESTART) {
            break r;
        }
        // Nothing stored yet; the L2 is a partial root nobody else can use.
        assert_eq!(w.peek(t.l3, 1), 0);
        assert!(partial(&w, l2));
        assert_fails!(
            w,
            w.mm.mmu_update_one(ptr(t.l3, 2), req.1, &DOMU_CALLER, DOMID_SELF, DOMID_SELF),
            Errno::EINVAL
        );
        assert_fails!(
            w,
            w.mm.pin(l2, PtLevel::L2, &DOMU_CALLER, DOMID_SELF),
            Errno::EINVAL
        );
    };
    assert_eq!(r, Ok(None));
    assert!(calls >= 4, "{calls} calls");
    assert_eq!(w.peek(t.l3, 1), req.1);
    assert_eq!(w.state(l2), (2, 1, Some(PageType::L2), false, true));
    assert!(l1.iter().all(|&m| w.is(m, PageType::L1)));
    // Replacing it drops the subtree again.
    w.mm.mmu_update_one(ptr(t.l3, 1), 0, &DOMU_CALLER, DOMID_SELF, DOMID_SELF)
        .unwrap();
    assert_eq!(w.count(l2), 1);
    assert!(l1.iter().all(|&m| w.type_count(m) == 0));
    w.audit();
}

#[test]
fn an_l3_entry_whose_subtree_fails_late_changes_nothing() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 1);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let (l2, l1) = subtree(&mut w, DOMU, 8, t.data);
    let foreign = w.fresh(DOM0);
    w.poke(l1[7], 9, pte(foreign, RO));
    let before = w.snapshot();
    let (calls, r) = drive(&mut w, 600, |mm, b| {
        mm.mmu_update_one_preemptible(
            ptr(t.l3, 1),
            pte(l2, L3F),
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
            b,
        )
        .map(|pending| assert_eq!(pending, None))
    });
    assert_eq!(r, Err(Errno::EINVAL));
    assert!(calls >= 4, "failed after {calls} calls");
    assert!(w.snapshot() == before, "a failed entry update left traces");
    assert_eq!(w.peek(t.l3, 1), 0);
}

#[test]
fn a_late_failure_is_taken_down_within_the_budget_too() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let foreign = w.fresh(DOM0);
    w.poke(t.l1[11], 9, pte(foreign, RO));
    let before = w.snapshot();
    let mut reads = Vec::new();
    let (calls, r) = drive(&mut w, 1, |mm, b| {
        let before = mm.machine.reads.get();
        let r = mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, b);
        reads.push(mm.machine.reads.get() - before);
        r
    });
    assert_eq!(r, Err(Errno::EINVAL));
    // Up through the first L2 and the second up to the bad L1 (entry 15),
    // then down through them again, an entry a call.
    assert!(calls >= 2 * (512 + 15), "{calls} calls");
    assert!(
        reads.iter().all(|&n| n <= 512 + 8),
        "a call read {:?} entries",
        reads.iter().max()
    );
    assert!(w.snapshot() == before, "a failed pin left traces");
}

#[test]
fn a_base_pointer_going_is_taken_down_in_steps_and_nothing_takes_it_over() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    let before = w.snapshot();
    w.set_base(0, t.l3, &DOMU_CALLER).unwrap();
    // CR3 leaves it: the hypervisor forgets the base and keeps a pending put.
    w.bases.clear();
    let mut b = Budget::new(600);
    assert_eq!(
        w.mm.put_old_table_preemptible(t.l3, &mut b),
        Err(Errno::ERESTART)
    );
    w.audit();
    assert!(partial(&w, t.l3));
    // Nothing but that put may take the partial root over.
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.pin_preemptible(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.unpin_preemptible(t.l3, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.new_baseptr_preemptible(t.l3, None, &DOMU_CALLER, false, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF),
        Errno::EINVAL
    );
    let (calls, r) = drive(&mut w, 600, |mm, b| mm.put_old_table_preemptible(t.l3, b));
    assert_eq!(r, Ok(()));
    assert!(calls >= 3, "only {calls} calls");
    assert!(w.snapshot() == before, "the put left references");
}

#[test]
fn a_base_pointer_with_other_references_just_drops_its_own() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let pinned = w.snapshot();
    w.set_base(0, t.l3, &DOMU_CALLER).unwrap();
    w.bases.clear();
    let mut b = Budget::new(1);
    assert_eq!(w.mm.put_old_table_preemptible(t.l3, &mut b), Ok(()));
    w.audit();
    assert!(w.snapshot() == pinned);
}

#[test]
fn a_domain_destroyed_with_a_pending_base_put_frees_everything() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 6);
    w.set_base(0, t.l3, &DOMU_CALLER).unwrap();
    w.bases.clear();
    let mut b = Budget::new(600);
    assert_eq!(
        w.mm.put_old_table_preemptible(t.l3, &mut b),
        Err(Errno::ERESTART)
    );
    let mut frames: Vec<Mfn> = t.l1.clone();
    frames.extend([t.l3, t.l2[0], t.l2[1], t.data]);
    for f in frames {
        w.mm.relinquish(f, DOMU).unwrap();
    }
    w.audit();
    for f in t.l1.iter().chain([&t.l3, &t.l2[0], &t.l2[1], &t.data]) {
        assert_eq!(
            w.mm.page_info(*f).unwrap().owner(),
            DOMID_INVALID,
            "{f} not freed"
        );
    }
}

/// An L3 of `dom` (slot 3 on an empty L2) pinned, with slot 1 naming an L2
/// over `l1s` L1s (validated at once), as a world where that entry's update
/// will drop a big subtree.
fn pinned_with_subtree(w: &mut World, l1s: usize) -> (Tree, Mfn, Vec<Mfn>) {
    let t = tree(w, DOMU, 1);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let (l2, l1) = subtree(w, DOMU, l1s, t.data);
    w.mm.mmu_update_one(
        ptr(t.l3, 1),
        pte(l2, L3F),
        &DOMU_CALLER,
        DOMID_SELF,
        DOMID_SELF,
    )
    .unwrap();
    (t, l2, l1)
}

#[test]
fn an_l3_entry_dropping_a_big_subtree_takes_it_down_in_steps() {
    let mut w = World::new();
    let (t, l2, l1) = pinned_with_subtree(&mut w, 8);
    // The same update, not split, in a world built the same way.
    let mut reference = World::new();
    let (rt, _, _) = pinned_with_subtree(&mut reference, 8);
    reference
        .mm
        .mmu_update_one(ptr(rt.l3, 1), 0, &DOMU_CALLER, DOMID_SELF, DOMID_SELF)
        .unwrap();

    let mut b = Budget::new(600);
    let r = w.mm.mmu_update_one_preemptible(
        ptr(t.l3, 1),
        0,
        &DOMU_CALLER,
        DOMID_SELF,
        DOMID_SELF,
        &mut b,
    );
    // Done (the entry is stored), the old L2's put pending.
    assert_eq!(r, Ok(Some(l2)));
    assert_eq!(w.peek(t.l3, 1), 0);
    assert!(partial(&w, l2));
    assert!(w.mm.page_info(l2).unwrap().progress().put_pending);
    assert_eq!(w.audit().partial, 1);
    // Nothing but that put may take it over: an L3 entry naming it (either
    // way), a pin, an unpin, a writable mapping.
    let mut b = Budget::new(600);
    assert_fails!(
        w,
        w.mm.mmu_update_one_preemptible(
            ptr(t.l3, 2),
            pte(l2, L3F),
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
            &mut b
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mmu_update_one(
            ptr(t.l3, 2),
            pte(l2, L3F),
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.pin_preemptible(l2, PtLevel::L2, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.unpin_preemptible(l2, &DOMU_CALLER, DOMID_SELF, &mut b),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.mod_l1_entry(t.l1[0], 5, pte(l2, RW), &DOMU_CALLER, DOMID_SELF, false),
        Errno::EINVAL
    );
    let mut reads = Vec::new();
    let (calls, r) = drive(&mut w, 600, |mm, b| {
        let before = mm.machine.reads.get();
        let r = mm.put_old_table_preemptible(l2, b);
        reads.push(mm.machine.reads.get() - before);
        r
    });
    assert_eq!(r, Ok(()));
    // 8 L1s of 513 and 504 empty entries: about 4600, in steps of 600 plus
    // at most one L1, after the update's own step.
    assert!(calls >= 3, "only {calls} calls");
    assert!(
        reads.iter().all(|&n| n <= 600 + 2 * 512),
        "a call read {:?} entries",
        reads.iter().max()
    );
    assert!(!partial(&w, l2));
    assert!(l1.iter().all(|&m| w.type_count(m) == 0));
    assert!(
        w.snapshot() == reference.snapshot(),
        "the split put did not end where the plain update does"
    );
}

#[test]
fn an_l3_entry_dropping_a_small_subtree_or_a_shared_l2_puts_it_at_once() {
    let mut w = World::new();
    let (t, l2, _) = pinned_with_subtree(&mut w, 1);
    let mut b = Budget::new(2048);
    assert_eq!(
        w.mm.mmu_update_one_preemptible(
            ptr(t.l3, 1),
            0,
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
            &mut b
        ),
        Ok(None)
    );
    assert_eq!(w.type_count(l2), 0);
    w.audit();
    // An L2 that another entry still names only loses that reference.
    let (big, _) = subtree(&mut w, DOMU, 8, t.data);
    for slot in [1, 2] {
        w.mm.mmu_update_one(
            ptr(t.l3, slot),
            pte(big, L3F),
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
        )
        .unwrap();
    }
    let mut b = Budget::new(1);
    assert_eq!(
        w.mm.mmu_update_one_preemptible(
            ptr(t.l3, 1),
            0,
            &DOMU_CALLER,
            DOMID_SELF,
            DOMID_SELF,
            &mut b
        ),
        Ok(None)
    );
    assert_eq!(w.state(big), (2, 1, Some(PageType::L2), false, true));
    w.audit();
}

#[test]
fn a_privileged_update_of_another_domains_l3_leaves_no_put_pending() {
    let mut w = World::new();
    let (t, l2, l1) = pinned_with_subtree(&mut w, 8);
    let mut b = Budget::new(600);
    assert_eq!(
        w.mm.mmu_update_one_preemptible(ptr(t.l3, 1), 0, &DOM0_CALLER, DOMU, DOMID_SELF, &mut b),
        Ok(None)
    );
    assert!(!partial(&w, l2));
    assert!(l1.iter().all(|&m| w.type_count(m) == 0));
    w.audit();
}

#[test]
fn a_preserve_ad_l3_update_in_steps_keeps_no_dirty_bit() {
    let mut w = World::new();
    let t = tree(&mut w, DOMU, 1);
    // A non-present slot 1 holding the dirty bit (any bits are allowed there).
    w.poke(t.l3, 1, crate::pte::PAGE_DIRTY | crate::pte::PAGE_ACCESSED);
    w.mm.pin(t.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let (l2, _) = subtree(&mut w, DOMU, 1, t.data);
    let mut b = Budget::new(2048);
    let r = w.mm.mmu_update_one_preemptible(
        ptr(t.l3, 1) | crate::ops::MMU_PT_UPDATE_PRESERVE_AD,
        pte(l2, L3F),
        &DOMU_CALLER,
        DOMID_SELF,
        DOMID_SELF,
        &mut b,
    );
    assert_eq!(r, Ok(None));
    assert_eq!(
        w.peek(t.l3, 1),
        pte(l2, L3F) | crate::pte::PAGE_ACCESSED,
        "a reserved PDPTE bit slipped in"
    );
    w.audit();
}

/// A domU with a pinned big tree, a tree left partial by a preempted pin,
/// another partial root held by a preempted unpin, a pinned L1, plain
/// frames, and one frame that dom0 maps (so it outlives the teardown).
fn teardown_world() -> (World, Mfn, Vec<Mfn>, Mfn) {
    let mut w = World::new();
    let a = tree(&mut w, DOMU, 6);
    w.mm.pin(a.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let b = tree(&mut w, DOMU, 4);
    let mut bud = Budget::new(300);
    assert_eq!(
        w.mm.pin_preemptible(b.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF, &mut bud),
        Err(Errno::ERESTART)
    );
    let c = tree(&mut w, DOMU, 4);
    w.mm.pin(c.l3, PtLevel::L3, &DOMU_CALLER, DOMID_SELF)
        .unwrap();
    let mut bud = Budget::new(300);
    assert_eq!(
        w.mm.unpin_preemptible(c.l3, &DOMU_CALLER, DOMID_SELF, &mut bud),
        Err(Errno::ERESTART)
    );
    let l1 = w.table(DOMU, &[(0, pte(a.data, RO))]);
    w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMID_SELF).unwrap();
    let d0 = w.pinned_space(DOM0);
    w.mm.mod_l1_entry(d0.l1_0, 7, pte(a.data, RW), &DOM0_CALLER, DOMU, false)
        .unwrap();
    w.audit();
    let mut all = vec![a.l3, b.l3, c.l3, l1];
    all.extend(a.l1.iter().chain(&b.l1).chain(&c.l1));
    (w, a.data, all, d0.l1_0)
}

#[test]
fn a_domain_teardown_is_split_and_ends_as_the_plain_one() {
    let (mut reference, data, _, _) = teardown_world();
    let mut left = 0;
    for pass in 0..2 {
        for m in 0..NR_FRAMES {
            if reference.mm.owner(Mfn(m)) == Some(DOMU)
                && reference.mm.relinquish(Mfn(m), DOMU) != Ok(true)
                && pass == 1
            {
                left += 1;
            }
        }
    }
    reference.audit();
    assert_eq!(left, 1);

    let (mut w, _, tables, d0_l1) = teardown_world();
    let mut progress = crate::Teardown::default();
    let mut calls = 0;
    let mut reads = Vec::new();
    let mut freed = Vec::new();
    let r = loop {
        calls += 1;
        let mut b = Budget::new(300);
        let before = w.mm.machine.reads.get();
        let r =
            w.mm.relinquish_domain_preemptible(DOMU, NR_FRAMES, &mut progress, &mut b, |m| {
                freed.push(m)
            });
        reads.push(w.mm.machine.reads.get() - before);
        w.audit();
        if r != Err(Errno::ERESTART) {
            break r;
        }
        assert!(progress.started());
        // Every partial table between the calls is the teardown's own root
        // (or held by one): none is left half-owned by a pin.
        for m in 0..NR_FRAMES {
            let pi = w.mm.page_info(Mfn(m)).unwrap();
            assert!(!(pi.type_info().partial() && pi.type_info().pinned()));
        }
    };
    assert_eq!(r, Ok(1));
    assert!(calls >= 10, "only {calls} calls");
    assert!(
        reads.iter().all(|&n| n <= 300 + 2 * 512),
        "a call read {:?} entries",
        reads.iter().max()
    );
    assert!(!progress.started(), "a finished teardown starts afresh");
    assert!(
        w.snapshot() == reference.snapshot(),
        "the split teardown did not end where the plain one does"
    );
    assert_eq!(w.mm.owner(data), Some(DOMU));
    assert!(tables.iter().all(|&m| w.mm.is_free(m)));
    assert!(!freed.contains(&data) && freed.iter().all(|&m| w.mm.is_free(m)));
    // Once dom0 lets go, a new teardown finds nothing left.
    w.mm.mod_l1_entry(d0_l1, 7, 0, &DOM0_CALLER, DOM0, false)
        .unwrap();
    assert!(w.mm.is_free(data));
    let mut b = Budget::new(1 << 20);
    let r =
        w.mm.relinquish_domain_preemptible(DOMU, NR_FRAMES, &mut progress, &mut b, |_| {});
    assert_eq!(r, Ok(0));
    w.audit();
}

#[test]
fn a_domain_teardown_refuses_oxen_and_reserved_owners() {
    let mut w = World::new();
    let before = w.snapshot();
    for owner in [
        xen_abi::domid::DOMID_XEN,
        xen_abi::domid::DOMID_IO,
        DOMID_INVALID,
    ] {
        let mut p = crate::Teardown::default();
        let mut b = Budget::new(1 << 20);
        assert_eq!(
            w.mm.relinquish_domain_preemptible(owner, NR_FRAMES, &mut p, &mut b, |_| {}),
            Err(Errno::EINVAL)
        );
    }
    assert!(w.snapshot() == before);
}
