//! Property tests: random sequences of guest and hypervisor operations never
//! panic, every failing operation leaves the frame table as it was, the audit
//! passes after every step (with it: every domain's `tot_pages` equals the
//! frames it owns that are counted and never exceeds its `max_pages`), no
//! frame is freed twice (the fake machine checks), and tearing everything
//! down frees every frame and brings every `tot_pages` to zero.

use proptest::prelude::*;

use super::fake::*;
use crate::ops::{MMU_MACHPHYS_UPDATE, MMU_PT_UPDATE_PRESERVE_AD};
use crate::pte::{PAGE_AVAIL, PAGE_GLOBAL, PAGE_NX, PAGE_PCD, PAGE_PSE, pte};
use crate::{Budget, Caller, Mm, PageType, PtLevel};
use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_INVALID, DOMID_IO, DOMID_SELF, DOMID_XEN, DomId};
use xen_abi::errno::Errno;

/// Frames the operations use: 12 of dom0's, 12 of domU's, a few free ones, an
/// I/O frame, a non-RAM frame and a hypervisor frame. Few enough that random
/// entries often point at tables being built.
fn frame(sel: u8) -> Mfn {
    match sel % 32 {
        s @ 0..12 => Mfn(DOM0_FRAMES.start + u64::from(s)),
        s @ 12..24 => Mfn(DOMU_FRAMES.start + u64::from(s - 12)),
        s @ 24..28 => Mfn(FREE.0 + u64::from(s - 24)),
        28 => Mfn(IO_FRAMES.start),
        29 => NON_RAM,
        30 => Mfn(XEN_FRAMES.start),
        _ => Mfn(DOMU_FRAMES.start + 12),
    }
}

fn dom(sel: u8) -> DomId {
    if sel.is_multiple_of(2) { DOM0 } else { DOMU }
}

/// FD/PFD as the hypervisor would pass them after decoding `foreigndom`.
#[derive(Clone, Copy, Debug)]
enum Who {
    Self_,
    Other,
    Io,
    Xen,
}

impl Who {
    fn id(self, caller: &Caller) -> DomId {
        match self {
            Who::Self_ => DOMID_SELF,
            Who::Other => {
                if caller.domid == DOM0 {
                    DOMU
                } else {
                    DOM0
                }
            }
            Who::Io => DOMID_IO,
            Who::Xen => DOMID_XEN,
        }
    }
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![6 => Just(Who::Self_), 2 => Just(Who::Other), 1 => Just(Who::Io), 1 => Just(Who::Xen)]
}

/// Entry values: mostly well-formed entries of the usual kinds, some with a
/// forbidden bit, some random.
fn entry() -> impl Strategy<Value = u64> {
    let flags = prop_oneof![
        4 => Just(RO),
        4 => Just(RW),
        4 => Just(L2F),
        4 => Just(L3F),
        1 => Just(L3F | PAGE_AVAIL),
        1 => Just(RW | PAGE_PCD),
        1 => Just(L2F | PAGE_PSE),
        1 => Just(RW | PAGE_GLOBAL),
        1 => Just(RO | 1 << 50),
        1 => Just(RW | PAGE_NX),
    ];
    prop_oneof![
        12 => (any::<u8>(), flags).prop_map(|(f, fl)| pte(frame(f), fl)),
        1 => Just(pte(Mfn(XEN_FRAMES.start), RO)),
        2 => Just(0u64),
        1 => any::<u64>(),
    ]
}

fn index() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0usize..4,
        1 => Just(427usize),
        1 => Just(428usize),
        1 => Just(511usize),
        1 => 0usize..512,
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Assign {
        frame: u8,
        dom: u8,
    },
    /// Oxen gives a domain a frame for itself (shared_info, grant table).
    AssignExtra {
        frame: u8,
        dom: u8,
    },
    /// `max_mem`: a limit near what the domain holds (`delta` - 2 pages away).
    SetMax {
        dom: u8,
        delta: u8,
    },
    /// Oxen shares one of its frames read-only with privileged domains.
    ShareXen,
    Release {
        frame: u8,
        dom: u8,
    },
    Relinquish {
        frame: u8,
        dom: u8,
    },
    MmuUpdate {
        frame: u8,
        index: usize,
        val: u64,
        caller: u8,
        pt: Who,
        pg: Who,
        cmd: u8,
    },
    /// An update aimed at a validated table (picked among those that exist),
    /// with an entry of the right kind, mostly valid.
    TableUpdate {
        pick: u8,
        index: usize,
        target: u8,
        kind: u8,
        foreign: bool,
        by_dom0: bool,
    },
    Pin {
        frame: u8,
        level: u8,
        caller: u8,
        pg: Who,
    },
    Unpin {
        frame: u8,
        caller: u8,
        pg: Who,
    },
    NewBaseptr {
        vcpu: u8,
        frame: u8,
    },
    DropBaseptr {
        vcpu: u8,
    },
    UpdateVa {
        vcpu: u8,
        va: u32,
        val: u64,
        pg: Who,
    },
    ClearPage {
        frame: u8,
        caller: u8,
    },
    CopyPage {
        dst: u8,
        src: u8,
        caller: u8,
    },
    Build {
        dom: u8,
        frames: [u8; 5],
        base: Option<u8>,
    },
    DestroyDomain {
        dom: u8,
    },
    /// A domain's teardown in steps of `budget` (each step audited), its
    /// vcpus' pending puts finished first as the hypervisor does.
    DestroyDomainPreemptible {
        dom: u8,
        budget: u32,
    },
    /// One step of a preemptible pin (engine invariant 12).
    PinPreemptible {
        frame: u8,
        level: u8,
        caller: u8,
        pg: Who,
        budget: u32,
    },
    /// One step of a preemptible `mmu_update` of an L3 entry (of an L3
    /// picked among the validated ones) naming an L2 (`index` 3: clearing
    /// slot 0), which may leave the old L2's put pending.
    L3EntryPreemptible {
        pick: u8,
        index: u8,
        target: u8,
        budget: u32,
    },
    /// One step of a preemptible unpin.
    UnpinPreemptible {
        frame: u8,
        caller: u8,
        pg: Who,
        budget: u32,
    },
    /// One step of a preemptible new base pointer.
    BaseptrPreemptible {
        vcpu: u8,
        frame: u8,
        budget: u32,
    },
    /// The tables of [`Op::Build`], then one step of a preemptible pin.
    BuildPreemptible {
        dom: u8,
        frames: [u8; 5],
        budget: u32,
    },
    /// One more step of a partial root (picked among them) by its owner:
    /// up (a pin) or down (an unpin).
    Resume {
        pick: u8,
        budget: u32,
        down: bool,
    },
}

fn budget() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 1u32..40, 2 => 400u32..1200, 1 => Just(1 << 20)]
}

fn op() -> impl Strategy<Value = Op> {
    let f = any::<u8>;
    prop_oneof![
        1 => (f(), f()).prop_map(|(frame, dom)| Op::Assign { frame, dom }),
        1 => (f(), f()).prop_map(|(frame, dom)| Op::AssignExtra { frame, dom }),
        1 => (f(), 0u8..5).prop_map(|(dom, delta)| Op::SetMax { dom, delta }),
        1 => Just(Op::ShareXen),
        2 => (f(), f()).prop_map(|(frame, dom)| Op::Release { frame, dom }),
        1 => (f(), f()).prop_map(|(frame, dom)| Op::Relinquish { frame, dom }),
        12 => (f(), index(), entry(), f(), who(), who(), 0u8..8).prop_map(
            |(frame, index, val, caller, pt, pg, cmd)| Op::MmuUpdate { frame, index, val, caller, pt, pg, cmd }
        ),
        12 => (f(), index(), f(), 0u8..16, any::<bool>(), any::<bool>()).prop_map(
            |(pick, index, target, kind, foreign, by_dom0)| Op::TableUpdate { pick, index, target, kind, foreign, by_dom0 }
        ),
        4 => (f(), 0u8..4, f(), who()).prop_map(|(frame, level, caller, pg)| Op::Pin { frame, level, caller, pg }),
        3 => (f(), f(), who()).prop_map(|(frame, caller, pg)| Op::Unpin { frame, caller, pg }),
        3 => (0u8..4, f()).prop_map(|(vcpu, frame)| Op::NewBaseptr { vcpu, frame }),
        1 => (0u8..4).prop_map(|vcpu| Op::DropBaseptr { vcpu }),
        3 => (0u8..4, prop_oneof![0u32..0x40_0000, 0xC000_0000u32..0xC040_0000, any::<u32>()], entry(), who())
            .prop_map(|(vcpu, va, val, pg)| Op::UpdateVa { vcpu, va, val, pg }),
        1 => (f(), f()).prop_map(|(frame, caller)| Op::ClearPage { frame, caller }),
        1 => (f(), f(), f()).prop_map(|(dst, src, caller)| Op::CopyPage { dst, src, caller }),
        3 => (f(), any::<[u8; 5]>(), proptest::option::of(0u8..2))
            .prop_map(|(dom, frames, base)| Op::Build { dom, frames, base }),
        1 => prop_oneof![
            f().prop_map(|dom| Op::DestroyDomain { dom }),
            (f(), budget()).prop_map(|(dom, budget)| Op::DestroyDomainPreemptible { dom, budget }),
        ],
        3 => (f(), 1u8..3, f(), who(), budget())
            .prop_map(|(frame, level, caller, pg, budget)| Op::PinPreemptible { frame, level, caller, pg, budget }),
        2 => (0u8..4, f(), budget()).prop_map(|(vcpu, frame, budget)| Op::BaseptrPreemptible { vcpu, frame, budget }),
        6 => (f(), budget(), any::<bool>()).prop_map(|(pick, budget, down)| Op::Resume { pick, budget, down }),
        3 => (f(), f(), who(), budget())
            .prop_map(|(frame, caller, pg, budget)| Op::UnpinPreemptible { frame, caller, pg, budget }),
        3 => (f(), 0u8..4, f(), budget())
            .prop_map(|(pick, index, target, budget)| Op::L3EntryPreemptible { pick, index, target, budget }),
        2 => (f(), any::<[u8; 5]>(), budget())
            .prop_map(|(dom, frames, budget)| Op::BuildPreemptible { dom, frames, budget }),
    ]
}

/// The world plus the VCPUs' base pointers (VCPUs 0, 1 are dom0's, 2, 3 domU's).
struct Harness {
    w: World,
    vcpus: [Option<Mfn>; 4],
    /// Successful updates of entries of validated tables.
    table_updates: usize,
    /// Preemptible validations that failed in a later step.
    failed_resumes: usize,
    /// Old L2s whose put (`put_pending`) a vcpu still has to finish.
    pending: Vec<Mfn>,
}

impl Harness {
    fn bases(&self) -> Vec<Mfn> {
        self.vcpus.iter().flatten().copied().collect()
    }

    fn audit(&self) {
        if let Err(e) = self.w.mm.audit(&self.bases()) {
            panic!("audit failed: {e}");
        }
    }

    /// Runs one engine call: a failure must leave the frame table unchanged;
    /// the audit must pass afterwards.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Mm<'static, FakeMachine>) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let before = self.w.snapshot();
        let r = f(&mut self.w.mm);
        if r.is_err() {
            assert!(
                self.w.snapshot() == before,
                "a failing operation changed the frame table"
            );
        }
        self.audit();
        r
    }

    fn set_base(&mut self, vcpu: usize, l3: Mfn) -> Result<(), Errno> {
        let caller = caller_of(vcpu_dom(vcpu));
        let old = self.vcpus[vcpu];
        let before = self.w.snapshot();
        let r = self.w.mm.new_baseptr(l3, old, &caller, false);
        match r {
            Ok(()) => self.vcpus[vcpu] = Some(l3),
            Err(_) => assert!(
                self.w.snapshot() == before,
                "a failing new_baseptr changed the frame table"
            ),
        }
        self.audit();
        r
    }

    fn drop_base(&mut self, vcpu: usize) {
        if let Some(l3) = self.vcpus[vcpu].take() {
            self.w.mm.put_page_and_type(l3);
            self.audit();
        }
    }

    /// One preemptible step on `target`: `-ERESTART` and success may change
    /// anything; a failure changes nothing, unless `target` was partial and
    /// its validation failed in this later step: then it is no longer partial
    /// (the audit checks that nothing of it is left).
    /// `done` runs on success, before the audit.
    fn step(
        &mut self,
        target: Mfn,
        f: impl FnOnce(&mut Mm<'static, FakeMachine>) -> Result<(), Errno>,
        done: impl FnOnce(&mut Self),
    ) -> Result<(), Errno> {
        let was_partial = self
            .w
            .mm
            .page_info(target)
            .is_some_and(|pi| pi.type_info().partial());
        let before = self.w.snapshot();
        let r = f(&mut self.w.mm);
        match r {
            Ok(()) => done(self),
            Err(Errno::ERESTART) => {}
            Err(_) if was_partial && self.w.snapshot() != before => {
                // A refused request changes nothing; a resume that failed
                // undid the whole validation.
                let t = self.w.mm.page_info(target).unwrap().type_info();
                assert!(!t.partial(), "a failed resume left {target} partial");
                self.failed_resumes += 1;
            }
            Err(_) => assert!(
                self.w.snapshot() == before,
                "a failing preemptible step changed the frame table"
            ),
        }
        self.audit();
        r
    }

    fn raw(&mut self, caller: &Caller, mfn: Mfn, index: usize, val: u64) -> Result<(), Errno> {
        self.run(|mm| mm.mmu_update_one(ptr(mfn, index), val, caller, DOMID_SELF, DOMID_SELF))
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Assign { frame: f, dom: d } => {
                let mfn = frame(f);
                if self.run(|mm| mm.assign(mfn, dom(d))).is_ok() {
                    self.w.mm.machine.live.insert(mfn);
                }
            }
            Op::AssignExtra { frame: f, dom: d } => {
                let mfn = frame(f);
                if self.run(|mm| mm.assign_extra(mfn, dom(d))).is_ok() {
                    self.w.mm.machine.live.insert(mfn);
                }
            }
            Op::SetMax { dom: d, delta } => {
                let d = dom(d);
                let max = (self.w.mm.tot_pages(d) + u32::from(delta)).saturating_sub(2);
                let _ = self.run(|mm| mm.set_max_pages(d, max));
            }
            Op::ShareXen => {
                let _ = self.run(|mm| mm.share_xen_frame(Mfn(XEN_FRAMES.start)));
            }
            Op::Release { frame: f, dom: d } => {
                let _ = self.run(|mm| mm.release(frame(f), dom(d)));
            }
            Op::Relinquish { frame: f, dom: d } => {
                // Oxen takes a frame back singly only where no vcpu's
                // pending put holds it (a domain's teardown takes those too).
                if self.pending.contains(&frame(f)) {
                    return;
                }
                let _ = self.run(|mm| mm.relinquish(frame(f), dom(d)));
            }
            Op::MmuUpdate {
                frame: f,
                index,
                val,
                caller,
                pt,
                pg,
                cmd,
            } => {
                let c = caller_of(dom(caller));
                let cmd = match cmd {
                    0..5 => 0,
                    5 => MMU_PT_UPDATE_PRESERVE_AD,
                    6 => MMU_MACHPHYS_UPDATE,
                    _ => 3,
                };
                let p = ptr(frame(f), index) | cmd;
                let validated = self
                    .w
                    .mm
                    .page_info(frame(f))
                    .is_some_and(|pi| pi.type_info().validated());
                if self
                    .run(|mm| mm.mmu_update_one(p, val, &c, pt.id(&c), pg.id(&c)))
                    .is_ok()
                    && validated
                {
                    self.table_updates += 1;
                }
            }
            Op::TableUpdate {
                pick,
                index,
                target,
                kind,
                foreign,
                by_dom0,
            } => {
                self.table_update(pick, index, target, kind, foreign, by_dom0);
            }
            Op::Pin {
                frame: f,
                level,
                caller,
                pg,
            } => {
                let c = caller_of(dom(caller));
                let level =
                    [PtLevel::L1, PtLevel::L2, PtLevel::L3, PtLevel::L4][usize::from(level)];
                let _ = self.run(|mm| mm.pin(frame(f), level, &c, pg.id(&c)));
            }
            Op::Unpin {
                frame: f,
                caller,
                pg,
            } => {
                let c = caller_of(dom(caller));
                let _ = self.run(|mm| mm.unpin(frame(f), &c, pg.id(&c)));
            }
            Op::NewBaseptr { vcpu, frame: f } => {
                let _ = self.set_base(usize::from(vcpu), frame(f));
            }
            Op::DropBaseptr { vcpu } => self.drop_base(usize::from(vcpu)),
            Op::UpdateVa { vcpu, va, val, pg } => {
                let vcpu = usize::from(vcpu);
                let Some(l3) = self.vcpus[vcpu] else { return };
                let c = caller_of(vcpu_dom(vcpu));
                let Ok((l1, i)) = self.w.mm.l1_slot_for_va(l3, va) else {
                    return;
                };
                if self
                    .run(|mm| mm.mod_l1_entry(l1, i, val, &c, pg.id(&c), false))
                    .is_ok()
                {
                    self.table_updates += 1;
                }
            }
            Op::ClearPage { frame: f, caller } => {
                let c = caller_of(dom(caller));
                let _ = self.run(|mm| mm.clear_page(frame(f), &c));
            }
            Op::CopyPage { dst, src, caller } => {
                let c = caller_of(dom(caller));
                let _ = self.run(|mm| mm.copy_page(frame(dst), frame(src), &c));
            }
            Op::Build {
                dom: d,
                frames,
                base,
            } => self.build(dom(d), frames, base),
            Op::PinPreemptible {
                frame: f,
                level,
                caller,
                pg,
                budget,
            } => {
                let c = caller_of(dom(caller));
                let level = [PtLevel::L1, PtLevel::L2, PtLevel::L3][usize::from(level)];
                let mfn = frame(f);
                let _ = self.step(
                    mfn,
                    |mm| mm.pin_preemptible(mfn, level, &c, pg.id(&c), &mut Budget::new(budget)),
                    |_| {},
                );
            }
            Op::BaseptrPreemptible {
                vcpu,
                frame: f,
                budget,
            } => {
                let v = usize::from(vcpu);
                let c = caller_of(vcpu_dom(v));
                let (mfn, old) = (frame(f), self.vcpus[v]);
                let _ = self.step(
                    mfn,
                    |mm| mm.new_baseptr_preemptible(mfn, old, &c, false, &mut Budget::new(budget)),
                    |h| h.vcpus[v] = Some(mfn),
                );
            }
            Op::BuildPreemptible {
                dom: d,
                frames,
                budget,
            } => {
                let (c, l3) = self.build_tables(dom(d), frames);
                let _ = self.step(
                    l3,
                    |mm| {
                        mm.pin_preemptible(
                            l3,
                            PtLevel::L3,
                            &c,
                            DOMID_SELF,
                            &mut Budget::new(budget),
                        )
                    },
                    |_| {},
                );
            }
            Op::L3EntryPreemptible {
                pick,
                index,
                target,
                budget,
            } => {
                if self.finish_put(budget) {
                    return;
                }
                let l3s: Vec<Mfn> = (0..NR_FRAMES)
                    .map(Mfn)
                    .filter(|&m| {
                        let t = self.w.mm.page_info(m).unwrap().type_info();
                        t.count() > 0 && t.validated() && t.page_type() == Some(PageType::L3)
                    })
                    .collect();
                if l3s.is_empty() {
                    return;
                }
                let l3 = l3s[usize::from(pick) % l3s.len()];
                let c = caller_of(self.w.mm.page_info(l3).unwrap().owner());
                let l2 = frame(target);
                let mut pending = None;
                let _ = self.step(
                    l2,
                    |mm| {
                        let val = if index == 3 { 0 } else { pte(l2, L3F) };
                        pending = mm.mmu_update_one_preemptible(
                            ptr(l3, usize::from(index % 3)),
                            val,
                            &c,
                            DOMID_SELF,
                            DOMID_SELF,
                            &mut Budget::new(budget),
                        )?;
                        Ok(())
                    },
                    |_| {},
                );
                // The old L2's put is the vcpu's to finish (old_guest_table).
                self.pending.extend(pending);
            }
            Op::UnpinPreemptible {
                frame: f,
                caller,
                pg,
                budget,
            } => {
                let c = caller_of(dom(caller));
                let mfn = frame(f);
                let _ = self.step(
                    mfn,
                    |mm| mm.unpin_preemptible(mfn, &c, pg.id(&c), &mut Budget::new(budget)),
                    |_| {},
                );
            }
            Op::Resume { pick, budget, down } => {
                let roots: Vec<Mfn> = (0..NR_FRAMES)
                    .map(Mfn)
                    .filter(|&m| {
                        let pi = self.w.mm.page_info(m).unwrap();
                        pi.type_info().partial() && !pi.progress().held
                    })
                    .collect();
                if roots.is_empty() {
                    return;
                }
                let mfn = roots[usize::from(pick) % roots.len()];
                let pi = self.w.mm.page_info(mfn).unwrap();
                let c = caller_of(pi.owner());
                let level = if pi.page_type() == Some(PageType::L3) {
                    PtLevel::L3
                } else {
                    PtLevel::L2
                };
                let _ = self.step(
                    mfn,
                    |mm| {
                        let mut b = Budget::new(budget);
                        if down {
                            mm.unpin_preemptible(mfn, &c, DOMID_SELF, &mut b)
                        } else {
                            mm.pin_preemptible(mfn, level, &c, DOMID_SELF, &mut b)
                        }
                    },
                    |_| {},
                );
            }
            Op::DestroyDomainPreemptible { dom: d, budget } => {
                self.destroy_preemptible(dom(d), budget);
            }
            Op::DestroyDomain { dom: d } => {
                let d = dom(d);
                // Its vcpus' pending puts go with it (relinquish takes the
                // partial roots down).
                let frames = self.w.mm.frames();
                self.pending.retain(|m| frames[m.0 as usize].owner() != d);
                for v in 0..4 {
                    if vcpu_dom(v) == d {
                        self.drop_base(v);
                    }
                }
                for m in 0..NR_FRAMES {
                    if self.w.mm.page_info(Mfn(m)).unwrap().owner() == d {
                        self.run(|mm| mm.relinquish(Mfn(m), d)).unwrap();
                    }
                }
            }
        }
    }

    /// One step of the oldest pending put of an old L2 (as the hypervisor
    /// does first at the next `mmu_update`); whether one was pending.
    fn finish_put(&mut self, budget: u32) -> bool {
        let Some(&mfn) = self.pending.first() else {
            return false;
        };
        let r = self.step(
            mfn,
            |mm| mm.put_old_table_preemptible(mfn, &mut Budget::new(budget)),
            |_| {},
        );
        assert!(matches!(r, Ok(()) | Err(Errno::ERESTART)), "{r:?}");
        if r.is_ok() {
            self.pending.remove(0);
        }
        true
    }

    fn destroy_preemptible(&mut self, d: DomId, budget: u32) {
        for v in 0..4 {
            if vcpu_dom(v) == d {
                self.drop_base(v);
            }
        }
        let frames = self.w.mm.frames();
        let (mine, others): (Vec<Mfn>, Vec<Mfn>) = self
            .pending
            .iter()
            .partition(|m| frames[m.0 as usize].owner() == d);
        self.pending = others;
        for mfn in mine {
            let r = self.run(|mm| mm.put_old_table_preemptible(mfn, &mut Budget::new(1 << 20)));
            assert_eq!(r, Ok(()));
        }
        let mut progress = crate::Teardown::default();
        for _ in 0..100_000 {
            let r = self.w.mm.relinquish_domain_preemptible(
                d,
                NR_FRAMES,
                &mut progress,
                &mut Budget::new(budget),
                |_| {},
            );
            self.audit();
            match r {
                Err(Errno::ERESTART) => continue,
                Ok(left) => {
                    let owned = (0..NR_FRAMES)
                        .filter(|&m| self.w.mm.owner(Mfn(m)) == Some(d))
                        .count() as u64;
                    assert_eq!(left, owned, "teardown of d{d} miscounted what is left");
                    return;
                }
                Err(e) => panic!("teardown of d{d}: {e:?}"),
            }
        }
        panic!("teardown of d{d} made no progress");
    }

    fn table_update(
        &mut self,
        pick: u8,
        index: usize,
        target: u8,
        kind: u8,
        foreign: bool,
        by_dom0: bool,
    ) {
        let tables: Vec<(Mfn, PageType, DomId)> = (0..NR_FRAMES)
            .map(Mfn)
            .filter_map(|m| {
                let pi = self.w.mm.page_info(m).unwrap();
                let t = pi.type_info();
                let ty = t.page_type()?;
                (t.count() > 0 && t.validated() && ty.is_page_table()).then_some((
                    m,
                    ty,
                    pi.owner(),
                ))
            })
            .collect();
        if tables.is_empty() {
            return;
        }
        let (table, ty, owner) = tables[usize::from(pick) % tables.len()];
        let caller = if by_dom0 {
            DOM0_CALLER
        } else {
            caller_of(owner)
        };
        // Data frames come from the owner, or from the other domain for a
        // foreign mapping (FD = the other domain).
        let other = if owner == DOM0 { DOMU } else { DOM0 };
        let (pg, from) = if foreign && ty == PageType::L1 {
            (other, other)
        } else {
            (owner, owner)
        };
        let first = if from == DOM0 { 0 } else { 12 };
        let tgt = frame(first + target % 12);
        let (index, flags) = match ty {
            PageType::L1 => (
                index,
                [RW, RO, RW, RO, RW | PAGE_GLOBAL, 0][usize::from(kind) % 6],
            ),
            PageType::L2 => (
                index,
                [L2F, L2F, L2F, 0, L2F | PAGE_PSE][usize::from(kind) % 5],
            ),
            _ => (
                index % 4,
                [L3F, L3F, L3F | PAGE_AVAIL, 0, L3F | PAGE_PCD][usize::from(kind) % 5],
            ),
        };
        let val = if flags == 0 { 0 } else { pte(tgt, flags) };
        let cmd = if kind >= 14 {
            MMU_PT_UPDATE_PRESERVE_AD
        } else {
            0
        };
        let p = ptr(table, index) | cmd;
        if self
            .run(|mm| mm.mmu_update_one(p, val, &caller, owner, pg))
            .is_ok()
        {
            self.table_updates += 1;
        }
    }

    /// Builds an address space the way a guest does, with raw writes into its
    /// own frames, then pins its L3 and maybe loads it on a VCPU. Any step may
    /// fail (the frames were picked at random).
    fn build(&mut self, d: DomId, frames: [u8; 5], base: Option<u8>) {
        let (c, l3) = self.build_tables(d, frames);
        let _ = self.run(|mm| mm.pin(l3, PtLevel::L3, &c, DOMID_SELF));
        if let Some(v) = base {
            let vcpu = usize::from(v) + if d == DOM0 { 0 } else { 2 };
            let _ = self.set_base(vcpu, l3);
        }
    }

    /// Writes the tables of an address space of `d` (as [`build`](Self::build))
    /// and returns the caller and the L3.
    fn build_tables(&mut self, d: DomId, frames: [u8; 5]) -> (Caller, Mfn) {
        let c = caller_of(d);
        let first = if d == DOM0 { 0 } else { 12 };
        let [data, l1, l2, l2x, l3] = frames.map(|f| frame(first + f % 12));
        let steps = [
            (l1, 0, pte(data, RW)),
            (l1, 1, pte(data, RO)),
            (l2, 0, pte(l1, L2F)),
            (l2x, 0, pte(l1, L2F)),
            (l3, 0, pte(l2, L3F)),
            (l3, 3, pte(l2x, L3F)),
        ];
        for (mfn, i, e) in steps {
            let _ = self.raw(&c, mfn, i, e);
        }
        (c, l3)
    }

    /// Drops every base pointer and relinquishes every owned frame: then every
    /// frame must be free and the fake machine must have seen each freed once.
    fn teardown(mut self) {
        for v in 0..4 {
            self.drop_base(v);
        }
        for m in 0..NR_FRAMES {
            let owner = self.w.mm.page_info(Mfn(m)).unwrap().owner();
            if owner != DOMID_INVALID && owner != DOMID_IO {
                self.run(|mm| mm.relinquish(Mfn(m), owner)).unwrap();
            }
        }
        for m in 0..NR_FRAMES {
            let pi = self.w.mm.page_info(Mfn(m)).unwrap();
            if IO_FRAMES.contains(&m) {
                assert_eq!(
                    (pi.owner(), pi.count_info().0, pi.type_info().0),
                    (DOMID_IO, 0, 0)
                );
            } else {
                assert!(
                    pi.is_free() && pi.type_info().0 == 0,
                    "mfn {m:#x} leaked: {pi:?}"
                );
            }
        }
        assert!(
            self.w.mm.machine.live.is_empty(),
            "frames never freed: {:?}",
            self.w.mm.machine.live
        );
        for d in [DOM0, DOMU] {
            assert_eq!(self.w.mm.tot_pages(d), 0, "d{d} still counts frames");
            assert_eq!(self.w.mm.close_account(d), 0);
        }
    }
}

fn vcpu_dom(vcpu: usize) -> DomId {
    if vcpu < 2 { DOM0 } else { DOMU }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_the_books_straight(ops in proptest::collection::vec(op(), 1..96)) {
        let mut h = Harness { w: World::new(), vcpus: [None; 4], table_updates: 0, failed_resumes: 0, pending: Vec::new() };
        for op in ops {
            h.apply(op);
        }
        h.teardown();
    }

    #[test]
    fn built_address_spaces_tear_down_cleanly(
        builds in proptest::collection::vec((any::<u8>(), any::<[u8; 5]>(), proptest::option::of(0u8..2)), 1..12),
        unpin_first in any::<bool>(),
    ) {
        let mut h = Harness { w: World::new(), vcpus: [None; 4], table_updates: 0, failed_resumes: 0, pending: Vec::new() };
        for (d, frames, base) in builds {
            h.build(dom(d), frames, base);
        }
        if unpin_first {
            for m in 0..NR_FRAMES {
                let pi = h.w.mm.page_info(Mfn(m)).unwrap();
                if pi.type_info().pinned() {
                    let d = pi.owner();
                    h.run(|mm| mm.unpin(Mfn(m), &caller_of(d), d)).unwrap();
                }
            }
        }
        h.teardown();
    }
}

#[test]
fn the_generators_reach_deep_states() {
    // A fixed sequence through the harness: a full build from both domains,
    // foreign mappings, then teardown; guards the harness itself.
    let mut h = Harness {
        w: World::new(),
        vcpus: [None; 4],
        table_updates: 0,
        failed_resumes: 0,
        pending: Vec::new(),
    };
    h.build(DOM0, [0, 1, 2, 3, 4], Some(0));
    h.build(DOMU, [0, 1, 2, 3, 4], Some(1));
    let r = h.w.mm.audit(&h.bases()).unwrap();
    assert_eq!((r.l1, r.l2, r.l3, r.pinned), (2, 4, 2, 2));
    assert_eq!(h.bases().len(), 2);
    h.apply(Op::UpdateVa {
        vcpu: 0,
        va: 0x2000,
        val: pte(frame(12), RW),
        pg: Who::Other,
    });
    assert_eq!(h.w.count(frame(12)), 4, "dom0 maps domU's data frame");
    // Oxen's frame: refused until shared, then read-only only.
    let xen = Mfn(XEN_FRAMES.start);
    let map = |h: &mut Harness, flags| {
        h.apply(Op::UpdateVa {
            vcpu: 0,
            va: 0x3000,
            val: pte(xen, flags),
            pg: Who::Xen,
        })
    };
    map(&mut h, RO);
    assert_eq!(h.w.count(xen), 1, "not shared yet");
    h.apply(Op::ShareXen);
    map(&mut h, RW);
    assert_eq!(h.w.count(xen), 1, "never writable");
    map(&mut h, RO);
    assert_eq!(h.w.count(xen), 2, "dom0 maps Oxen's shared frame");
    h.teardown();
}

#[test]
fn generated_sequences_reach_deep_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(op(), 1..96);
    let (mut with_l3, mut with_base, mut with_l1, mut with_foreign, mut table_updates) =
        (0, 0, 0, 0, 0);
    // Runs that reached a domain at its max_pages, a kept-alive frame given
    // back (owned, counted, without its allocation reference), an extra frame.
    let (mut at_max, mut given_back, mut extra) = (0, 0, 0);
    // Runs with a partial L3 holding a partial L2, and failed resumes.
    let (mut nested_partial, mut failed_resumes) = (0, 0);
    // Runs where an L3 entry update left its old L2's put pending.
    let mut pending_l2 = 0;
    let runs = 200;
    for _ in 0..runs {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut h = Harness {
            w: World::new(),
            vcpus: [None; 4],
            table_updates: 0,
            failed_resumes: 0,
            pending: Vec::new(),
        };
        let (mut l3, mut l1, mut foreign) = (false, false, false);
        let (mut max, mut back, mut ext) = (false, false, false);
        let (mut nested, mut l2_put) = (false, false);
        for op in ops {
            h.apply(op);
            let r = h.w.mm.audit(&h.bases()).unwrap();
            max |= [DOM0, DOMU]
                .iter()
                .any(|&d| h.w.mm.tot_pages(d) == h.w.mm.max_pages(d));
            back |=
                h.w.mm.frames().iter().any(|pi| {
                    pi.owner() < DOMID_IO && pi.count() > 0 && !pi.count_info().allocated()
                });
            ext |= h.w.mm.frames().iter().any(|pi| pi.count_info().extra());
            l3 |= r.l3 > 0;
            nested |=
                h.w.mm
                    .frames()
                    .iter()
                    .any(|pi| pi.type_info().partial() && pi.progress().partial_pte);
            l2_put |=
                h.w.mm
                    .frames()
                    .iter()
                    .any(|pi| pi.progress().put_pending && pi.page_type() == Some(PageType::L2));
            l1 |= r.l1 > 0;
            // A domU frame mapped from a dom0 L1 (or the reverse).
            foreign |= h.w.mm.frames().iter().enumerate().any(|(i, pi)| {
                let t = pi.type_info();
                t.count() > 0 && t.validated() && t.page_type() == Some(PageType::L1) && {
                    let owner = pi.owner();
                    (0..512).any(|j| {
                        let e = h.w.peek(Mfn(i as u64), j);
                        crate::pte::is_present(e)
                            && h.w
                                .mm
                                .owner(crate::pte::pte_mfn(e))
                                .is_some_and(|o| o != owner && o < DOMID_IO)
                    })
                }
            });
        }
        at_max += usize::from(max);
        given_back += usize::from(back);
        extra += usize::from(ext);
        with_l3 += usize::from(l3);
        with_l1 += usize::from(l1);
        with_foreign += usize::from(foreign);
        with_base += usize::from(!h.bases().is_empty());
        table_updates += h.table_updates;
        nested_partial += usize::from(nested);
        pending_l2 += usize::from(l2_put);
        failed_resumes += h.failed_resumes;
        h.teardown();
    }
    eprintln!(
        "runs {runs}: L3 {with_l3}, L1 {with_l1}, base at end {with_base}, foreign {with_foreign}, table updates {table_updates}"
    );
    eprintln!("accounting: at max {at_max}, given back but alive {given_back}, extra {extra}");
    eprintln!(
        "partial: nested {nested_partial} runs, failed resumes {failed_resumes}, old L2 put pending {pending_l2} runs"
    );
    assert!(nested_partial > runs / 20 && failed_resumes > 0 && pending_l2 > 0);
    assert!(with_l3 > runs / 4 && with_l1 > runs / 2 && with_base > runs / 10);
    assert!(at_max > runs / 10 && given_back > runs / 20 && extra > runs / 10);
    assert!(with_foreign > runs / 20 && table_updates > 2 * runs);
}
