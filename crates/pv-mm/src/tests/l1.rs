//! L1 entries: flags, ownership, writable mappings, I/O frames (§7.7).

use super::fake::*;
use crate::pte::{
    PAGE_ACCESSED, PAGE_DIRTY, PAGE_GLOBAL, PAGE_NX, PAGE_PAT, PAGE_PCD, PAGE_PRESENT, PAGE_PWT,
    PAGE_RW, pte,
};
use crate::{Caller, GrantPte, MmConfig, PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_IO, DomId};
use xen_abi::errno::Errno;

/// An empty L1 of `dom`, pinned.
fn pinned_l1(w: &mut World, dom: DomId) -> Mfn {
    let l1 = w.fresh(dom);
    w.mm.pin(l1, PtLevel::L1, &caller_of(dom), dom).unwrap();
    l1
}

fn set(w: &mut World, l1: Mfn, i: usize, e: u64, c: &Caller, fd: DomId) -> Result<(), Errno> {
    w.mm.mod_l1_entry(l1, i, e, c, fd, false)
}

#[test]
fn rw_mapping_of_own_frame_takes_writable_type() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    set(&mut w, l1, 5, pte(d, RW), &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.peek(l1, 5), pte(d, RW));
    assert_eq!(w.state(d), (2, 1, Some(PageType::Writable), false, false));
    w.audit();
    set(&mut w, l1, 5, 0, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(d), (1, 0, Some(PageType::Writable), false, false));
    w.audit();
}

#[test]
fn ro_mapping_takes_only_a_total_reference() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    set(&mut w, l1, 0, pte(d, RO), &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(d), (2, 0, Some(PageType::None), false, false));
    w.audit();
}

#[test]
fn mapping_a_frame_the_caller_does_not_own_fails() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let theirs = w.fresh(DOM0);
    assert_fails!(
        w,
        set(&mut w, l1, 0, pte(theirs, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        set(&mut w, l1, 0, pte(theirs, RW), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        set(
            &mut w,
            l1,
            0,
            pte(Mfn(XEN_FRAMES.start), RO),
            &DOMU_CALLER,
            DOMU
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        set(&mut w, l1, 0, pte(FREE, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn own_page_table_maps_read_only_but_not_writable() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let l1 = s.l1_0;
    for table in [s.l1_0, s.l1_3, s.l2_0, s.l2_3, s.l3] {
        let before = w.count(table);
        set(&mut w, l1, 10, pte(table, RO), &DOMU_CALLER, DOMU).unwrap();
        assert_eq!(w.count(table), before + 1);
        w.audit();
        assert_fails!(
            w,
            set(&mut w, l1, 10, pte(table, RW), &DOMU_CALLER, DOMU),
            Errno::EINVAL
        );
        set(&mut w, l1, 10, 0, &DOMU_CALLER, DOMU).unwrap();
    }
    w.audit();
}

#[test]
fn a_writably_mapped_frame_cannot_become_a_page_table() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let f = w.fresh(DOMU);
    set(&mut w, l1, 0, pte(f, RW), &DOMU_CALLER, DOMU).unwrap();
    assert_fails!(
        w,
        w.mm.pin(f, PtLevel::L1, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    set(&mut w, l1, 0, pte(f, RO), &DOMU_CALLER, DOMU).unwrap();
    w.mm.pin(f, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    w.audit();
}

#[test]
fn forbidden_flags_are_refused() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    let good = pte(d, RW);
    for bad in [
        PAGE_PWT,
        PAGE_PCD,
        PAGE_PAT,
        PAGE_GLOBAL,
        1 << 44,
        1 << 50,
        1 << 62,
        PAGE_NX,
    ] {
        assert_fails!(
            w,
            set(&mut w, l1, 0, good | bad, &DOMU_CALLER, DOMU),
            Errno::EINVAL
        );
    }
    set(&mut w, l1, 0, good, &DOMU_CALLER, DOMU).unwrap();
    // Also on the fast path (same frame, same RW): the flags are still checked.
    for bad in [PAGE_GLOBAL, PAGE_PCD, 1 << 44] {
        assert_fails!(
            w,
            set(&mut w, l1, 0, good | bad, &DOMU_CALLER, DOMU),
            Errno::EINVAL
        );
    }
}

#[test]
fn io_privileged_domains_may_choose_cache_attributes() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOM0);
    let d = w.fresh(DOM0);
    for attr in [PAGE_PWT, PAGE_PCD, PAGE_PAT, PAGE_PWT | PAGE_PCD | PAGE_PAT] {
        set(&mut w, l1, 1, pte(d, RW) | attr, &DOM0_CALLER, DOM0).unwrap();
        assert_fails!(
            w,
            set(&mut w, l1, 2, pte(d, RW) | attr, &DOM0_NO_IO, DOM0),
            Errno::EINVAL
        );
    }
    // G stays forbidden even for them.
    assert_fails!(
        w,
        set(&mut w, l1, 2, pte(d, RW) | PAGE_GLOBAL, &DOM0_CALLER, DOM0),
        Errno::EINVAL
    );
    w.audit();
}

#[test]
fn nx_is_allowed_only_when_supported() {
    let mut w = World::with_config(MmConfig { nx_supported: true });
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    set(&mut w, l1, 0, pte(d, RW) | PAGE_NX, &DOMU_CALLER, DOMU).unwrap();
    assert_fails!(
        w,
        set(&mut w, l1, 1, pte(d, RW) | 1 << 62, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    w.audit();
}

#[test]
fn non_present_entries_are_not_checked() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let junk = 0xFFFF_FFFF_FFFF_FFFE; // everything but P
    set(&mut w, l1, 0, junk, &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.peek(l1, 0), junk);
    w.audit();
    // And validation ignores them too.
    let l1b = w.table(DOMU, &[(0, junk), (511, junk)]);
    w.mm.pin(l1b, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    w.audit();
}

#[test]
fn io_frames_need_iomem_access_and_take_no_references() {
    let mut w = World::new();
    let io = Mfn(IO_FRAMES.start);
    // Unprivileged: refused.
    let lu = pinned_l1(&mut w, DOMU);
    assert_fails!(
        w,
        set(&mut w, lu, 0, pte(NON_RAM, RW), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        set(&mut w, lu, 0, pte(io, RW), &DOMU_CALLER, DOMID_IO),
        Errno::EINVAL
    );
    // With I/O-memory access: allowed, nothing counted.
    let l0 = pinned_l1(&mut w, DOM0);
    let before = w.snapshot();
    set(
        &mut w,
        l0,
        0,
        pte(NON_RAM, RW | PAGE_PCD),
        &DOM0_CALLER,
        DOM0,
    )
    .unwrap();
    set(&mut w, l0, 1, pte(io, RW), &DOM0_CALLER, DOMID_IO).unwrap();
    assert!(w.snapshot() == before);
    w.audit();
    set(&mut w, l0, 0, 0, &DOM0_CALLER, DOM0).unwrap();
    set(&mut w, l0, 1, 0, &DOM0_CALLER, DOM0).unwrap();
    assert!(w.snapshot() == before);
    assert_fails!(
        w,
        set(&mut w, l0, 0, pte(io, RW), &DOM0_NO_IO, DOMID_IO),
        Errno::EINVAL
    );
}

#[test]
fn fd_domid_io_allows_io_frames_only() {
    let mut w = World::new();
    let l0 = pinned_l1(&mut w, DOM0);
    let mine = w.fresh(DOM0);
    assert_fails!(
        w,
        set(&mut w, l0, 0, pte(mine, RO), &DOM0_CALLER, DOMID_IO),
        Errno::EINVAL
    );
}

#[test]
fn foreign_mapping_by_a_privileged_caller() {
    let mut w = World::new();
    let l0 = pinned_l1(&mut w, DOM0);
    let theirs = w.fresh(DOMU);
    let mine = w.fresh(DOM0);
    set(&mut w, l0, 0, pte(theirs, RW), &DOM0_CALLER, DOMU).unwrap();
    assert_eq!(
        w.state(theirs),
        (2, 1, Some(PageType::Writable), false, false)
    );
    w.audit();
    // FD names the expected owner: dom0's own frame is refused under FD = domU.
    assert_fails!(
        w,
        set(&mut w, l0, 1, pte(mine, RO), &DOM0_CALLER, DOMU),
        Errno::EINVAL
    );
    // The mapping keeps domU's frame alive after domU gives it up.
    assert_eq!(w.mm.release(theirs, DOMU), Ok(false));
    set(&mut w, l0, 0, 0, &DOM0_CALLER, DOM0).unwrap();
    assert!(w.mm.is_free(theirs));
    w.audit();
}

#[test]
fn foreign_mapping_by_an_unprivileged_caller() {
    let mut w = World::new();
    let lu = pinned_l1(&mut w, DOMU);
    let theirs = w.fresh(DOM0);
    // Naming another FD is refused outright...
    assert_fails!(
        w,
        set(&mut w, lu, 0, pte(theirs, RO), &DOMU_CALLER, DOM0),
        Errno::ESRCH
    );
    // ...and under its own FD the frame's owner does not match.
    assert_fails!(
        w,
        set(&mut w, lu, 0, pte(theirs, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    // Nor may it write into another domain's L1.
    let l0 = pinned_l1(&mut w, DOM0);
    let mine = w.fresh(DOMU);
    assert_fails!(
        w,
        set(&mut w, l0, 0, pte(mine, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn flag_only_updates_take_no_new_references() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    set(
        &mut w,
        l1,
        0,
        pte(d, PAGE_PRESENT | PAGE_RW),
        &DOMU_CALLER,
        DOMU,
    )
    .unwrap();
    let before = w.snapshot();
    set(&mut w, l1, 0, pte(d, RW), &DOMU_CALLER, DOMU).unwrap();
    assert!(w.snapshot() == before);
    // RW -> RO drops the writable type, RO -> RW takes it back.
    set(&mut w, l1, 0, pte(d, RO), &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(d), (2, 0, Some(PageType::Writable), false, false));
    set(&mut w, l1, 0, pte(d, RW), &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(d), (2, 1, Some(PageType::Writable), false, false));
    w.audit();
}

#[test]
fn replacing_a_mapping_moves_the_references() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let (a, b) = (w.fresh(DOMU), w.fresh(DOMU));
    set(&mut w, l1, 0, pte(a, RW), &DOMU_CALLER, DOMU).unwrap();
    set(&mut w, l1, 0, pte(b, RW), &DOMU_CALLER, DOMU).unwrap();
    assert_eq!(w.state(a), (1, 0, Some(PageType::Writable), false, false));
    assert_eq!(w.state(b), (2, 1, Some(PageType::Writable), false, false));
    w.audit();
}

#[test]
fn preserve_ad_keeps_the_old_accessed_and_dirty_bits() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    set(&mut w, l1, 0, pte(d, RW), &DOMU_CALLER, DOMU).unwrap();
    let clean = pte(d, PAGE_PRESENT | PAGE_RW);
    w.mm.mod_l1_entry(l1, 0, clean, &DOMU_CALLER, DOMU, true)
        .unwrap();
    assert_eq!(w.peek(l1, 0), clean | PAGE_ACCESSED | PAGE_DIRTY);
    w.mm.mod_l1_entry(l1, 0, clean, &DOMU_CALLER, DOMU, false)
        .unwrap();
    assert_eq!(w.peek(l1, 0), clean);
    w.audit();
}

#[test]
fn mod_l1_entry_needs_a_validated_l1_and_an_index_in_range() {
    let mut w = World::new();
    let l1 = pinned_l1(&mut w, DOMU);
    let d = w.fresh(DOMU);
    assert_fails!(
        w,
        set(&mut w, l1, 512, pte(d, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    let plain = w.fresh(DOMU);
    assert_fails!(
        w,
        set(&mut w, plain, 0, pte(d, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    let s = w.pinned_space(DOMU);
    assert_fails!(
        w,
        set(&mut w, s.l2_0, 1, pte(d, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        set(&mut w, NON_RAM, 0, pte(d, RO), &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn validation_rolls_back_on_a_bad_entry() {
    let mut w = World::new();
    let data: Vec<Mfn> = (0..10).map(|_| w.fresh(DOMU)).collect();
    let theirs = w.fresh(DOM0);
    let mut entries: Vec<(usize, u64)> = data
        .iter()
        .enumerate()
        .map(|(i, &d)| (i, pte(d, if i % 2 == 0 { RW } else { RO })))
        .collect();
    entries.push((300, pte(theirs, RO)));
    let l1 = w.table(DOMU, &entries);
    assert_fails!(
        w,
        w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMU),
        Errno::EINVAL
    );
    // The same table with the bad entry removed validates.
    w.poke(l1, 300, 0);
    w.mm.pin(l1, PtLevel::L1, &DOMU_CALLER, DOMU).unwrap();
    for (i, &d) in data.iter().enumerate() {
        assert_eq!(w.count(d), 2);
        assert_eq!(w.type_count(d), u32::from(i % 2 == 0));
    }
    w.audit();
    w.mm.unpin(l1, &DOMU_CALLER, DOMU).unwrap();
    for &d in &data {
        assert_eq!(
            (w.count(d), w.type_count(d)),
            (1, 0),
            "devalidation dropped exactly what it took"
        );
    }
    w.audit();
}

#[test]
fn validation_uses_the_table_owner_not_the_caller() {
    let mut w = World::new();
    // dom0 builds a domU L1 mapping domU frames and pins it with FD = domU.
    let d = w.fresh(DOMU);
    let l1 = w.table(DOMU, &[(0, pte(d, RW))]);
    w.mm.pin(l1, PtLevel::L1, &DOM0_CALLER, DOMU).unwrap();
    w.audit();
    // A domU L1 that maps a dom0 frame does not validate, whoever pins it.
    let mine = w.fresh(DOM0);
    let bad = w.table(DOMU, &[(0, pte(mine, RO))]);
    assert_fails!(
        w,
        w.mm.pin(bad, PtLevel::L1, &DOM0_CALLER, DOMU),
        Errno::EINVAL
    );
}

#[test]
fn grant_mappings_take_and_drop_the_granters_references() {
    let mut w = World::new();
    let s = w.pinned_space(DOMU);
    let g = w.fresh(DOM0);
    let (count, types) = (w.count(g), w.type_count(g));
    w.mm.install_grant_l1e(
        s.l1_0,
        5,
        GrantPte {
            frame: g,
            readonly: false,
            user: true,
        },
        &DOMU_CALLER,
        DOM0,
    )
    .unwrap();
    assert_eq!((w.count(g), w.type_count(g)), (count + 1, types + 1));
    assert!(w.is(g, PageType::Writable));
    assert_eq!(
        w.peek(s.l1_0, 5) & (PAGE_PRESENT | PAGE_RW),
        PAGE_PRESENT | PAGE_RW
    );
    w.audit();
    // Over an existing mapping (slot 0 maps the domain's own page): it is
    // replaced and its references dropped, as in Xen.
    let (dc, dt) = (w.count(s.data_rw), w.type_count(s.data_rw));
    let ro = GrantPte {
        frame: g,
        readonly: true,
        user: true,
    };
    w.mm.install_grant_l1e(s.l1_0, 0, ro, &DOMU_CALLER, DOM0)
        .unwrap();
    assert_eq!(
        (w.count(s.data_rw), w.type_count(s.data_rw)),
        (dc - 1, dt - 1)
    );
    w.mm.remove_grant_l1e(s.l1_0, 0, g, &DOMU_CALLER).unwrap();
    w.audit();
    assert_fails!(
        w,
        w.mm.install_grant_l1e(
            s.l1_0,
            6,
            GrantPte {
                frame: g,
                readonly: true,
                user: true
            },
            &DOMU_CALLER,
            DOMU
        ),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.remove_grant_l1e(s.l1_0, 5, s.data_rw, &DOMU_CALLER),
        Errno::EINVAL
    );
    assert_fails!(
        w,
        w.mm.remove_grant_l1e(s.l1_0, 7, g, &DOMU_CALLER),
        Errno::EINVAL
    );
    w.mm.remove_grant_l1e(s.l1_0, 5, g, &DOMU_CALLER).unwrap();
    assert_eq!((w.count(g), w.type_count(g)), (count, types));
    // Read-only: a total reference only, and a page table may be granted so.
    w.mm.install_grant_l1e(
        s.l1_0,
        5,
        GrantPte {
            frame: g,
            readonly: true,
            user: false,
        },
        &DOMU_CALLER,
        DOM0,
    )
    .unwrap();
    assert_eq!((w.count(g), w.type_count(g)), (count + 1, types));
    w.audit();
    w.mm.remove_grant_l1e(s.l1_0, 5, g, &DOMU_CALLER).unwrap();
    // A writable grant of a page table is refused.
    let theirs = w.pinned_space(DOM0);
    assert_fails!(
        w,
        w.mm.install_grant_l1e(
            s.l1_0,
            5,
            GrantPte {
                frame: theirs.l1_0,
                readonly: false,
                user: false
            },
            &DOMU_CALLER,
            DOM0
        ),
        Errno::EINVAL
    );
}
