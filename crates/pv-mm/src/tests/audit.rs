//! The audit finds what it is meant to find.

use super::fake::*;
use crate::Machine;
use crate::page_info::{CountInfo, PGT_PINNED, PGT_VALIDATED};
use crate::pte::pte;
use crate::{AuditProblem, ExternalRef, PageType};
use hv_core::addr::Mfn;

fn problem(w: &World) -> (Mfn, AuditProblem) {
    let e = w.mm.audit(&w.bases).expect_err("audit should fail");
    (e.mfn, e.problem)
}

#[test]
fn detects_a_leaked_total_reference() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    w.mm.get_page(s.data_ro, DOMU).unwrap();
    assert_eq!(
        problem(&w),
        (
            s.data_ro,
            AuditProblem::TotalCount {
                expected: 2,
                found: 3
            }
        )
    );
    let msg = w.mm.audit(&[]).unwrap_err().to_string();
    assert!(
        msg.contains(&format!("mfn {:#x}", s.data_ro.0)) && msg.contains("total count is 3"),
        "{msg}"
    );
}

#[test]
fn detects_a_leaked_type_reference() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let pi = w.mm.page_info(s.l1_3).unwrap();
    pi.set_type_info(pi.type_info().with_count(2));
    pi.set_count_info(pi.count_info().with_count(3));
    assert_eq!(
        problem(&w),
        (
            s.l1_3,
            AuditProblem::TotalCount {
                expected: 2,
                found: 3
            }
        )
    );
    pi.set_count_info(pi.count_info().with_count(2));
    assert_eq!(
        problem(&w),
        (
            s.l1_3,
            AuditProblem::TypeCount {
                expected: 1,
                found: 2
            }
        )
    );
}

#[test]
fn detects_an_entry_written_behind_the_engines_back() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let d = w.fresh(DOMU);
    w.mm.machine.write_pte(s.l1_0, 9, pte(d, RO));
    assert_eq!(
        problem(&w),
        (
            d,
            AuditProblem::TotalCount {
                expected: 2,
                found: 1
            }
        )
    );
}

#[test]
fn detects_a_writable_mapping_of_a_page_table() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    w.mm.machine.write_pte(s.l1_0, 9, pte(s.l1_3, RW));
    let (mfn, p) = problem(&w);
    assert_eq!(mfn, s.l1_0);
    assert!(
        matches!(p, AuditProblem::BadEntry { index: 9, .. }),
        "{p:?}"
    );
}

#[test]
fn detects_a_pin_flag_without_its_reference() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let pi = w.mm.page_info(s.l1_0).unwrap();
    pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, true));
    assert_eq!(
        problem(&w),
        (
            s.l1_0,
            AuditProblem::TotalCount {
                expected: 3,
                found: 2
            }
        )
    );
    let f = w.fresh(DOMU);
    let pi = w.mm.page_info(f).unwrap();
    pi.set_type_info(pi.type_info().with_flag(PGT_PINNED, true));
    assert!(matches!(problem(&w), (m, AuditProblem::BadPin { .. }) if m == f));
}

#[test]
fn detects_a_free_frame_with_references() {
    let w = World::new();
    let pi = w.mm.page_info(FREE).unwrap();
    pi.set_count_info(CountInfo(1));
    assert!(matches!(problem(&w), (m, AuditProblem::FreeFrameInUse { .. }) if m == FREE));
}

#[test]
fn detects_a_shared_slot3_l2() {
    let mut w = World::new();
    let a = w.pinned_space(DOMU);
    // Forge a second L3 referencing the same slot-3 L2.
    let b = w.table(DOMU, &[(3, pte(a.l2_3, L3F))]);
    let pi = w.mm.page_info(b).unwrap();
    pi.set_type_info(crate::TypeInfo::new(PageType::L3, 1).with_flag(PGT_VALIDATED, true));
    pi.set_count_info(pi.count_info().with_count(2));
    let l2 = w.mm.page_info(a.l2_3).unwrap();
    l2.set_type_info(l2.type_info().with_count(2));
    l2.set_count_info(l2.count_info().with_count(3));
    w.bases.push(b);
    let (_, p) = problem(&w);
    assert!(
        matches!(p, AuditProblem::BadEntry { index: 3, .. }),
        "{p:?}"
    );
}

#[test]
fn base_pointers_and_external_references_are_counted() {
    let mut w = World::new();
    let s = w.address_space(DOMU);
    w.set_base(0, s.l3, &DOMU_CALLER).unwrap();
    w.audit();
    // Forgetting a base pointer shows up.
    assert!(w.mm.audit(&[]).is_err());
    // A bogus base pointer too.
    assert!(matches!(
        w.mm.audit(&[s.l3, s.l2_0]).unwrap_err().problem,
        AuditProblem::BadRoot { .. }
    ));
    // An external type reference is accounted for with audit_with.
    w.mm.machine.seg_desc_ok = true;
    let gdt = w.fresh(DOMU);
    w.mm.get_page_and_type(gdt, DOMU, PageType::SegDesc)
        .unwrap();
    assert!(w.mm.audit(&w.bases).is_err());
    let r =
        w.mm.audit_with(
            &w.bases,
            &[ExternalRef {
                mfn: gdt,
                ty: Some(PageType::SegDesc),
            }],
        )
        .unwrap();
    assert_eq!(r.seg_desc, 1);
    assert!(
        w.mm.audit_with(
            &w.bases,
            &[ExternalRef {
                mfn: gdt,
                ty: Some(PageType::L1)
            }]
        )
        .is_err()
    );
}

#[test]
fn checks_l3_entries_with_the_compat_rule() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let e = w.mm.machine.read_pte(s.l3, 3);
    let compat = crate::pte::PAGE_ACCESSED | crate::pte::PAGE_DIRTY | crate::pte::PAGE_RW;
    w.mm.machine.write_pte(s.l3, 3, e | compat);
    w.mm.audit(&w.bases)
        .expect("A, D and RW are allowed in an L3 entry");
    // A bit the rule forbids is caught.
    w.mm.machine.write_pte(s.l3, 3, e | crate::pte::PAGE_PCD);
    assert!(matches!(
        problem(&w),
        (_, AuditProblem::BadEntry { index: 3, .. })
    ));
}

#[test]
fn tolerates_accessed_and_dirty_bits_in_the_hypervisor_slots() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let e = w.mm.machine.read_pte(s.l2_3, 428);
    let hw = crate::pte::PAGE_ACCESSED | crate::pte::PAGE_DIRTY;
    w.mm.machine.write_pte(s.l2_3, 428, e | hw);
    w.mm.audit(&w.bases)
        .expect("bits the CPU sets while walking are not a change");
    w.mm.machine.write_pte(s.l2_3, 428, e ^ (1 << 12));
    assert!(matches!(
        problem(&w),
        (_, AuditProblem::XenSlot { index: 428, .. })
    ));
}

#[test]
fn scratch_and_chunked_recounts_agree() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let n = w.mm.frames().len();
    let mut scratch = vec![0u32; 2 * n];
    assert_eq!(
        w.mm.audit_with_scratch(&w.bases, &[], &mut scratch)
            .unwrap(),
        w.mm.audit(&w.bases).unwrap()
    );
    w.mm.get_page(s.data_ro, DOMU).unwrap();
    let chunked = w.mm.audit(&w.bases).unwrap_err();
    let one_pass =
        w.mm.audit_with_scratch(&w.bases, &[], &mut scratch)
            .unwrap_err();
    assert_eq!(
        (chunked.mfn, chunked.problem),
        (one_pass.mfn, one_pass.problem)
    );
    // Too little scratch falls back to chunks.
    assert!(
        w.mm.audit_with_scratch(&w.bases, &[], &mut scratch[..n])
            .is_err()
    );
}
