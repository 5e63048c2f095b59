//! The recount: every frame's total and type counts recomputed from first
//! principles and compared with the frame table, plus the structural rules the
//! counts cannot show (flags, qualifiers, hypervisor slots, entry targets).
//!
//! Expected references of a frame:
//! * 1 total for the allocation reference (`PGC_allocated`);
//! * 1 total + 1 type for a pin, for each base pointer naming it, and for each
//!   typed [`ExternalRef`];
//! * for each present entry of a validated table pointing at it: 1 total (+ 1
//!   type for an RW L1 entry, and for every L2 and L3 entry); L1 entries of
//!   I/O frames count nothing, nor do the hypervisor slots of a `pae_xen_l2` L2;
//! * for a partial table (engine invariant 12): 1 total + 1 type on itself,
//!   and the references of its entries `0..nr_validated` as above (its
//!   partial entry counts nothing: the partial L2 it holds counts itself).
//!
//! The audit needs no heap: it counts the frames in chunks of [`CHUNK`] on the
//! stack and rescans the validated tables once per chunk, so its cost is
//! `frames / CHUNK × tables × 512` entry reads. It is a debugging and test tool.

use core::fmt;

use hv_core::addr::Mfn;
use xen_abi::domid::{DOMID_FIRST_RESERVED, DOMID_INVALID, DOMID_IO, DOMID_XEN, DomId};
use xen_abi::layout::{FIRST_XEN_L2_SLOT, XEN_L3_SLOT};

use crate::engine::Mm;
use crate::machine::Machine;
use crate::page_info::{PGT_PAE_XEN_L2, PGT_PARTIAL, PGT_PINNED, PGT_VALIDATED, TypeInfo};

/// Domain accounts recounted per pass over the frame table.
const ACCOUNT_SPAN: usize = 64;
use crate::pte::{
    PAGE_ACCESSED, PAGE_DIRTY, check_l2_flags, check_l3_flags, is_present, is_writable, pte_mfn,
};
use crate::types::PageType;
use crate::validate::{ENTRIES, L3_GUEST_ENTRIES, l2_guest_entries};

/// Frames counted per pass.
pub const CHUNK: usize = 128;

/// A reference the hypervisor holds outside page tables, pins and base
/// pointers (e.g. a `seg_desc` reference for a GDT frame): one total
/// reference, plus one type reference of `ty` if given.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExternalRef {
    /// The frame.
    pub mfn: Mfn,
    /// The type reference held with it, if any.
    pub ty: Option<PageType>,
}

/// What a passing audit saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AuditReport {
    /// Frames in the frame table.
    pub frames: usize,
    /// Free frames.
    pub free: usize,
    /// I/O frames (owned by `DOMID_IO`).
    pub io: usize,
    /// Frames owned by a domain or the hypervisor.
    pub owned: usize,
    /// Validated L1 tables.
    pub l1: usize,
    /// Validated L2 tables.
    pub l2: usize,
    /// Validated L3 tables.
    pub l3: usize,
    /// Frames of type `seg_desc` (type count > 0).
    pub seg_desc: usize,
    /// Frames of type `writable` (type count > 0).
    pub writable: usize,
    /// Pinned tables.
    pub pinned: usize,
    /// Partial tables (engine invariant 12).
    pub partial: usize,
    /// Sum of all total reference counts.
    pub total_refs: u64,
}

/// The first inconsistency the audit found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AuditError {
    /// The frame concerned.
    pub mfn: Mfn,
    /// What is wrong with it.
    pub problem: AuditProblem,
}

/// The kinds of inconsistency.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditProblem {
    /// A free frame (owner `DOMID_INVALID`) has counts or flags.
    FreeFrameInUse { count_info: u32, type_info: u32 },
    /// An I/O frame has counts or a type.
    IoFrameCounted { count_info: u32, type_info: u32 },
    /// The owner is a reserved id other than `DOMID_XEN`/`DOMID_IO`/`DOMID_INVALID`.
    BadOwner { owner: DomId },
    /// The type field holds no defined type.
    BadType { type_info: u32 },
    /// Pinned, but not a page table with a type reference.
    BadPin { type_info: u32 },
    /// The validated bit disagrees with the type and type count.
    BadValidation { type_info: u32 },
    /// A partial table breaks the shape of engine invariant 12 (`progress`
    /// is the raw progress word), or a frame that is not partial has a
    /// progress word.
    BadPartial {
        type_info: u32,
        progress: u32,
        why: &'static str,
    },
    /// `pae_xen_l2` on something other than an L2 in use.
    BadQualifier { type_info: u32 },
    /// A hypervisor slot of a `pae_xen_l2` L2 differs from what Oxen placed there.
    XenSlot {
        index: usize,
        found: u64,
        expected: u64,
    },
    /// A validated L3 without slot 3.
    L3Slot3Missing,
    /// An entry of a validated table breaks a rule (its flags, or what it maps).
    BadEntry {
        index: usize,
        entry: u64,
        why: &'static str,
    },
    /// A base pointer or external reference names a frame outside the table,
    /// or of the wrong type.
    BadRoot { why: &'static str },
    /// The total reference count differs from the recount.
    TotalCount { expected: u64, found: u32 },
    /// The type reference count differs from the recount.
    TypeCount { expected: u64, found: u32 },
    /// `PGC_extra` on a frame that is not an ordinary domain's, or
    /// `PGC_xen_shared` on one that is not Oxen's.
    BadFlags { count_info: u32 },
    /// One of Oxen's frames has a type (no guest may type it).
    XenFrameTyped { type_info: u32 },
    /// A domain owns frames but has no account.
    NoAccount { owner: DomId },
    /// A domain's `tot_pages` differs from the frames it owns that are not
    /// `PGC_extra`, or exceeds its `max_pages` (`mfn` is one of its frames,
    /// or 0).
    Account {
        domid: DomId,
        recorded: u32,
        counted: u64,
        max: u32,
    },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.mfn)?;
        match self.problem {
            AuditProblem::FreeFrameInUse {
                count_info,
                type_info,
            } => write!(
                f,
                "free frame has count_info {count_info:#x}, type_info {type_info:#x}"
            ),
            AuditProblem::IoFrameCounted {
                count_info,
                type_info,
            } => write!(
                f,
                "I/O frame is counted: count_info {count_info:#x}, type_info {type_info:#x}"
            ),
            AuditProblem::BadOwner { owner } => write!(f, "owned by reserved domid {owner:#x}"),
            AuditProblem::BadType { type_info } => {
                write!(f, "undefined type in type_info {type_info:#x}")
            }
            AuditProblem::BadPin { type_info } => {
                write!(
                    f,
                    "pinned but not a page table in use (type_info {type_info:#x})"
                )
            }
            AuditProblem::BadValidation { type_info } => write!(
                f,
                "validated bit disagrees with type and count (type_info {type_info:#x})"
            ),
            AuditProblem::BadPartial {
                type_info,
                progress,
                why,
            } => write!(
                f,
                "partial table: {why} (type_info {type_info:#x}, progress {progress:#x})"
            ),
            AuditProblem::BadQualifier { type_info } => {
                write!(
                    f,
                    "pae_xen_l2 on a frame that is not an L2 in use (type_info {type_info:#x})"
                )
            }
            AuditProblem::XenSlot {
                index,
                found,
                expected,
            } => write!(
                f,
                "hypervisor slot {index} holds {found:#x}, expected {expected:#x}"
            ),
            AuditProblem::L3Slot3Missing => write!(f, "validated L3 without slot 3"),
            AuditProblem::BadEntry { index, entry, why } => {
                write!(f, "entry {index} ({entry:#x}): {why}")
            }
            AuditProblem::BadRoot { why } => write!(f, "{why}"),
            AuditProblem::TotalCount { expected, found } => {
                write!(f, "total count is {found}, the recount gives {expected}")
            }
            AuditProblem::TypeCount { expected, found } => {
                write!(f, "type count is {found}, the recount gives {expected}")
            }
            AuditProblem::BadFlags { count_info } => write!(
                f,
                "extra/xen_shared flag on a frame of the wrong owner (count_info {count_info:#x})"
            ),
            AuditProblem::XenFrameTyped { type_info } => {
                write!(f, "Oxen's frame has a type (type_info {type_info:#x})")
            }
            AuditProblem::NoAccount { owner } => {
                write!(f, "owned by d{owner}, which has no page account")
            }
            AuditProblem::Account {
                domid,
                recorded,
                counted,
                max,
            } => write!(
                f,
                "d{domid}: tot_pages is {recorded}, it owns {counted} counted frames, max_pages {max}"
            ),
        }
    }
}

/// The recount of one chunk of frames `[start, start + total.len())`.
struct Tally<'s> {
    start: u64,
    total: &'s mut [u32],
    typed: &'s mut [u32],
}

impl Tally<'_> {
    fn add(&mut self, mfn: Mfn, typed: bool) {
        if let Some(i) = mfn
            .0
            .checked_sub(self.start)
            .filter(|&i| i < self.total.len() as u64)
        {
            let i = i as usize;
            self.total[i] = self.total[i].saturating_add(1);
            if typed {
                self.typed[i] = self.typed[i].saturating_add(1);
            }
        }
    }
}

fn fail(mfn: Mfn, problem: AuditProblem) -> Result<(), AuditError> {
    Err(AuditError { mfn, problem })
}

fn is_validated_table(t: TypeInfo) -> bool {
    t.count() > 0 && t.validated() && t.page_type().is_some_and(PageType::is_page_table)
}

impl<M: Machine> Mm<'_, M> {
    /// Audits the frame table, given the base pointers the VCPUs hold (one entry
    /// per VCPU, duplicates allowed).
    pub fn audit(&self, base_pointers: &[Mfn]) -> Result<AuditReport, AuditError> {
        self.audit_with(base_pointers, &[])
    }

    /// [`audit`](Self::audit), also counting references the hypervisor holds
    /// elsewhere.
    pub fn audit_with(
        &self,
        base_pointers: &[Mfn],
        external: &[ExternalRef],
    ) -> Result<AuditReport, AuditError> {
        self.audit_with_scratch(base_pointers, external, &mut [])
    }

    /// [`audit_with`](Self::audit_with) using `scratch` for the recount. With at
    /// least two words per frame the whole table is recounted in one pass over
    /// the page tables; with less, it is recounted in chunks of `CHUNK` frames
    /// on the stack, which rereads every table once per chunk (slow on a big
    /// machine, but needs no memory).
    pub fn audit_with_scratch(
        &self,
        base_pointers: &[Mfn],
        external: &[ExternalRef],
        scratch: &mut [u32],
    ) -> Result<AuditReport, AuditError> {
        let mut report = AuditReport {
            frames: self.frames.len(),
            ..AuditReport::default()
        };
        let (mut held, mut partial_ptes) = (0usize, 0usize);
        for mfn in (0..self.frames.len() as u64).map(Mfn) {
            self.audit_frame(mfn, &mut report)?;
            if let Some(pi) = self.page_info(mfn)
                && pi.type_info().partial()
            {
                held += usize::from(pi.progress().held);
                partial_ptes += usize::from(pi.progress().partial_pte);
            }
        }
        if held != partial_ptes {
            // Each held partial L2 has exactly one partial entry holding it
            // (the entries were checked to point at held ones).
            return Err(AuditError {
                mfn: Mfn(0),
                problem: AuditProblem::BadPartial {
                    type_info: 0,
                    progress: 0,
                    why: "held partial tables and partial entries differ in number",
                },
            });
        }
        self.audit_roots(base_pointers, external)?;
        self.audit_accounts()?;
        let n = self.frames.len();
        if scratch.len() >= 2 * n {
            let (total, rest) = scratch.split_at_mut(n);
            let tally = Tally {
                start: 0,
                total,
                typed: &mut rest[..n],
            };
            self.recount(tally, base_pointers, external)?;
            return Ok(report);
        }
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            let (mut total, mut typed) = ([0u32; CHUNK], [0u32; CHUNK]);
            let tally = Tally {
                start: start as u64,
                total: &mut total[..len],
                typed: &mut typed[..len],
            };
            self.recount(tally, base_pointers, external)?;
            start += CHUNK;
        }
        Ok(report)
    }

    /// The rules of one frame on its own, and of the entries of a validated table.
    fn audit_frame(&self, mfn: Mfn, report: &mut AuditReport) -> Result<(), AuditError> {
        let Some(pi) = self.page_info(mfn) else {
            return Ok(());
        };
        let (c, t, owner) = (pi.count_info(), pi.type_info(), pi.owner());
        report.total_refs += u64::from(c.count());
        let Some(ty) = t.page_type() else {
            return fail(mfn, AuditProblem::BadType { type_info: t.0 });
        };
        match owner {
            DOMID_INVALID => {
                report.free += 1;
                if c.0 != 0
                    || t.count() != 0
                    || t.0 & (PGT_PINNED | PGT_VALIDATED | PGT_PAE_XEN_L2 | PGT_PARTIAL) != 0
                {
                    return fail(
                        mfn,
                        AuditProblem::FreeFrameInUse {
                            count_info: c.0,
                            type_info: t.0,
                        },
                    );
                }
            }
            DOMID_IO => {
                report.io += 1;
                if c.0 != 0 || t.count() != 0 {
                    return fail(
                        mfn,
                        AuditProblem::IoFrameCounted {
                            count_info: c.0,
                            type_info: t.0,
                        },
                    );
                }
            }
            DOMID_XEN => {
                report.owned += 1;
                if c.extra() {
                    return fail(mfn, AuditProblem::BadFlags { count_info: c.0 });
                }
                if t.count() != 0 {
                    return fail(mfn, AuditProblem::XenFrameTyped { type_info: t.0 });
                }
            }
            o if o >= DOMID_FIRST_RESERVED => {
                return fail(mfn, AuditProblem::BadOwner { owner: o });
            }
            o => {
                report.owned += 1;
                if c.xen_shared() {
                    return fail(mfn, AuditProblem::BadFlags { count_info: c.0 });
                }
                if self.account(o).is_none() {
                    return fail(mfn, AuditProblem::NoAccount { owner: o });
                }
            }
        }
        let in_use = t.count() > 0;
        if t.pinned() {
            report.pinned += 1;
            if !in_use || !ty.is_page_table() {
                return fail(mfn, AuditProblem::BadPin { type_info: t.0 });
            }
        }
        let progress = pi.extra.load(core::sync::atomic::Ordering::Relaxed);
        let bad_partial = |why| {
            fail(
                mfn,
                AuditProblem::BadPartial {
                    type_info: t.0,
                    progress,
                    why,
                },
            )
        };
        if t.partial() {
            report.partial += 1;
            let p = pi.progress();
            let entries = match ty {
                PageType::L2 => l2_guest_entries(t.pae_xen_l2()),
                _ => L3_GUEST_ENTRIES,
            };
            if !matches!(ty, PageType::L2 | PageType::L3) || owner >= DOMID_FIRST_RESERVED {
                return bad_partial("not a guest's L2 or L3");
            }
            if t.count() != 1 || t.validated() || t.pinned() {
                return bad_partial("type count not 1, or validated, or pinned");
            }
            if p.nr_validated > entries
                || (p.partial_pte && (ty != PageType::L3 || p.nr_validated >= entries))
                || (p.put_pending && p.held)
                || progress & !crate::page_info::Progress::decode(progress).encode() != 0
            {
                return bad_partial("progress out of range");
            }
            if ty == PageType::L3 && !is_present(self.machine.read_pte(mfn, XEN_L3_SLOT)) {
                return fail(mfn, AuditProblem::L3Slot3Missing);
            }
            if p.partial_pte {
                let e = self.machine.read_pte(mfn, p.nr_validated);
                let ok = is_present(e)
                    && self.page_info(pte_mfn(e)).is_some_and(|c| {
                        let ct = c.type_info();
                        ct.partial()
                            && c.progress().held
                            && c.owner() == owner
                            && ct.page_type() == Some(PageType::L2)
                            && ct.pae_xen_l2() == (p.nr_validated == XEN_L3_SLOT)
                    });
                if !ok {
                    return bad_partial("the partial entry does not point at a held partial L2");
                }
            }
        } else if progress != 0 {
            return bad_partial("progress word on a frame that is not partial");
        }
        if t.validated() != (in_use && ty.needs_validation() && !t.partial()) {
            return fail(mfn, AuditProblem::BadValidation { type_info: t.0 });
        }
        if t.pae_xen_l2() && !(in_use && ty == PageType::L2) {
            return fail(mfn, AuditProblem::BadQualifier { type_info: t.0 });
        }
        if in_use {
            match ty {
                PageType::L1 => report.l1 += 1,
                PageType::L2 => report.l2 += 1,
                PageType::L3 => report.l3 += 1,
                PageType::SegDesc => report.seg_desc += 1,
                PageType::Writable => report.writable += 1,
                PageType::None => {}
            }
        }
        if is_validated_table(t) {
            self.audit_entries(mfn, ty, t.pae_xen_l2(), owner, None)?;
        } else if t.partial() {
            self.audit_entries(
                mfn,
                ty,
                t.pae_xen_l2(),
                owner,
                Some(pi.progress().nr_validated),
            )?;
        }
        Ok(())
    }

    /// What the entries of the validated table `mfn` point at; of a partial
    /// one (`partial`: its `nr_validated`), only the leading entries that hold
    /// references.
    fn audit_entries(
        &self,
        mfn: Mfn,
        ty: PageType,
        pae_xen_l2: bool,
        owner: DomId,
        partial: Option<usize>,
    ) -> Result<(), AuditError> {
        let bad = |index, entry, why| fail(mfn, AuditProblem::BadEntry { index, entry, why });
        match ty {
            PageType::L1 => {
                for i in 0..ENTRIES {
                    let e = self.machine.read_pte(mfn, i);
                    let target = pte_mfn(e);
                    if !is_present(e) || self.is_io_frame(target) {
                        continue;
                    }
                    let tpi = self.page_info(target).expect("RAM");
                    if tpi.owner() == DOMID_INVALID {
                        return bad(i, e, "maps a free frame");
                    }
                    if tpi.owner() == DOMID_XEN
                        && (is_writable(e) || !tpi.count_info().xen_shared())
                    {
                        return bad(i, e, "maps Oxen's frame writable or unshared");
                    }
                    let tt = tpi.type_info();
                    if is_writable(e)
                        && (tt.count() == 0 || tt.page_type() != Some(PageType::Writable))
                    {
                        return bad(i, e, "RW mapping of a frame that is not of type writable");
                    }
                }
            }
            PageType::L2 => {
                let n = partial.unwrap_or(ENTRIES).min(l2_guest_entries(pae_xen_l2));
                for i in 0..n {
                    let e = self.machine.read_pte(mfn, i);
                    if is_present(e) {
                        if check_l2_flags(e, self.config.nx_supported).is_err() {
                            return bad(i, e, "forbidden flags");
                        }
                        self.audit_table_target(mfn, i, e, owner, PageType::L1, false)?;
                    }
                }
                if pae_xen_l2 && partial.is_none() {
                    for index in FIRST_XEN_L2_SLOT..ENTRIES {
                        let (found, expected) = (
                            self.machine.read_pte(mfn, index),
                            self.machine.xen_l2_entry(index),
                        );
                        // The CPU sets accessed (and, on superpages, dirty)
                        // bits as it walks; only the rest must match.
                        let hw = PAGE_ACCESSED | PAGE_DIRTY;
                        if found & !hw != expected & !hw {
                            return fail(
                                mfn,
                                AuditProblem::XenSlot {
                                    index,
                                    found,
                                    expected,
                                },
                            );
                        }
                    }
                }
            }
            PageType::L3 => {
                if !is_present(self.machine.read_pte(mfn, XEN_L3_SLOT)) {
                    return fail(mfn, AuditProblem::L3Slot3Missing);
                }
                for i in 0..partial.unwrap_or(L3_GUEST_ENTRIES).min(L3_GUEST_ENTRIES) {
                    let e = self.machine.read_pte(mfn, i);
                    if is_present(e) {
                        if check_l3_flags(e).is_err() {
                            return bad(i, e, "forbidden flags");
                        }
                        let slot3 = i == XEN_L3_SLOT;
                        self.audit_table_target(mfn, i, e, owner, PageType::L2, slot3)?;
                        if slot3 && self.page_info(pte_mfn(e)).map(|p| p.type_count()) != Some(1) {
                            return bad(i, e, "the L2 under slot 3 is referenced more than once");
                        }
                    }
                }
            }
            PageType::None | PageType::SegDesc | PageType::Writable => {}
        }
        Ok(())
    }

    /// An L2 or L3 entry must point at a validated table of the next level down,
    /// owned by the same domain, with the right qualifier.
    fn audit_table_target(
        &self,
        table: Mfn,
        index: usize,
        e: u64,
        owner: DomId,
        ty: PageType,
        pae_xen_l2: bool,
    ) -> Result<(), AuditError> {
        let why = match self.page_info(pte_mfn(e)) {
            None => Some("points outside RAM"),
            Some(p) if p.owner() != owner => Some("points at another domain's frame"),
            Some(p) if !is_validated_table(p.type_info()) || p.page_type() != Some(ty) => {
                Some("points at a frame that is not a validated table of the next level")
            }
            Some(p) if p.type_info().pae_xen_l2() != pae_xen_l2 => {
                Some("pae_xen_l2 qualifier does not match the slot")
            }
            Some(_) => None,
        };
        match why {
            Some(why) => fail(
                table,
                AuditProblem::BadEntry {
                    index,
                    entry: e,
                    why,
                },
            ),
            None => Ok(()),
        }
    }

    /// Each account's `tot_pages` against the frames its domain owns that are
    /// not `PGC_extra`, and against its `max_pages`; the accounts are
    /// recounted [`ACCOUNT_SPAN`] at a time on the stack.
    fn audit_accounts(&self) -> Result<(), AuditError> {
        let n = self.accounts.len();
        let mut base = 0;
        while base < n {
            let span = ACCOUNT_SPAN.min(n - base);
            let mut counted = [0u64; ACCOUNT_SPAN];
            let mut some_frame = [Mfn(0); ACCOUNT_SPAN];
            for (m, pi) in self.frames.iter().enumerate() {
                let o = usize::from(pi.owner());
                if pi.owner() < DOMID_FIRST_RESERVED
                    && (base..base + span).contains(&o)
                    && !pi.count_info().extra()
                {
                    counted[o - base] += 1;
                    some_frame[o - base] = Mfn(m as u64);
                }
            }
            for i in 0..span {
                let a = &self.accounts[base + i];
                let (recorded, max) = (a.tot_pages(), a.max_pages());
                if u64::from(recorded) != counted[i] || recorded > max {
                    return fail(
                        some_frame[i],
                        AuditProblem::Account {
                            domid: (base + i) as DomId,
                            recorded,
                            counted: counted[i],
                            max,
                        },
                    );
                }
            }
            base += span;
        }
        Ok(())
    }

    fn audit_roots(
        &self,
        base_pointers: &[Mfn],
        external: &[ExternalRef],
    ) -> Result<(), AuditError> {
        for &b in base_pointers {
            match self.page_info(b) {
                Some(p)
                    if is_validated_table(p.type_info()) && p.page_type() == Some(PageType::L3) => {
                }
                _ => {
                    return fail(
                        b,
                        AuditProblem::BadRoot {
                            why: "base pointer is not a validated L3",
                        },
                    );
                }
            }
        }
        for x in external {
            let ok = self.page_info(x.mfn).is_some_and(|p| match x.ty {
                None => p.count() > 0,
                Some(ty) => p.type_count() > 0 && p.page_type() == Some(ty),
            });
            if !ok {
                return fail(
                    x.mfn,
                    AuditProblem::BadRoot {
                        why: "external reference of the wrong type",
                    },
                );
            }
        }
        Ok(())
    }

    /// Recounts the frames of `tally`'s range and compares.
    fn recount(
        &self,
        mut tally: Tally<'_>,
        base_pointers: &[Mfn],
        external: &[ExternalRef],
    ) -> Result<(), AuditError> {
        tally.total.fill(0);
        tally.typed.fill(0);
        let start = tally.start;
        let end = start + tally.total.len() as u64;
        for mfn in (start..end).map(Mfn) {
            let pi = self.page_info(mfn).expect("in table");
            if pi.count_info().allocated() {
                tally.add(mfn, false);
            }
            if pi.type_info().pinned() {
                tally.add(mfn, true);
            }
        }
        for &b in base_pointers {
            tally.add(b, true);
        }
        for x in external {
            tally.add(x.mfn, x.ty.is_some());
        }
        for (i, pi) in self.frames.iter().enumerate() {
            let t = pi.type_info();
            let table = Mfn(i as u64);
            let limit = if is_validated_table(t) {
                ENTRIES
            } else if t.partial() {
                tally.add(table, true);
                pi.progress().nr_validated
            } else {
                continue;
            };
            match t.page_type() {
                Some(PageType::L1) => {
                    for j in 0..ENTRIES {
                        let e = self.machine.read_pte(table, j);
                        if is_present(e) && !self.is_io_frame(pte_mfn(e)) {
                            tally.add(pte_mfn(e), is_writable(e));
                        }
                    }
                }
                Some(PageType::L2) => {
                    for j in 0..limit.min(l2_guest_entries(t.pae_xen_l2())) {
                        let e = self.machine.read_pte(table, j);
                        if is_present(e) {
                            tally.add(pte_mfn(e), true);
                        }
                    }
                }
                Some(PageType::L3) => {
                    for j in 0..limit.min(L3_GUEST_ENTRIES) {
                        let e = self.machine.read_pte(table, j);
                        if is_present(e) {
                            tally.add(pte_mfn(e), true);
                        }
                    }
                }
                _ => {}
            }
        }
        for mfn in (start..end).map(Mfn) {
            let pi = self.page_info(mfn).expect("in table");
            let i = (mfn.0 - start) as usize;
            let (total, typed) = (u64::from(tally.total[i]), u64::from(tally.typed[i]));
            if u64::from(pi.count()) != total {
                return fail(
                    mfn,
                    AuditProblem::TotalCount {
                        expected: total,
                        found: pi.count(),
                    },
                );
            }
            if u64::from(pi.type_count()) != typed {
                return fail(
                    mfn,
                    AuditProblem::TypeCount {
                        expected: typed,
                        found: pi.type_count(),
                    },
                );
            }
        }
        Ok(())
    }
}
