//! Physical IRQs given to guests (XEN-PV-ABI.md §8.1 `EVTCHNOP_bind_pirq`,
//! §15.6 `PHYSDEVOP_*`): the pure part.
//!
//! Oxen drives the legacy 8259 pair only, so there are 16 lines and pirqs are
//! identity-mapped as Xen does for a PV domain's legacy IRQs: pirq N is
//! GSI/IRQ N ([`NR_PIRQS`] = 16). Two pieces of state:
//!
//! * [`DomainPirqs`], per domain: which pirqs are *mapped* (Xen maps every
//!   legacy IRQ of a PV domain at creation; `PHYSDEVOP_unmap_pirq` removes a
//!   mapping, `PHYSDEVOP_map_pirq` restores it) and which the domain is
//!   *permitted* to bind (Xen's `irq_access_permitted`: dom0 gets 1..15 at
//!   build, as Xen's `irqs_permit_access(dom0, 1, nr_irqs_gsi - 1)`; a domU
//!   none unless a privileged domain maps one into it).
//! * [`IrqLines`], machine-wide: the lines Oxen keeps for itself (timer,
//!   cascade, its console UART: `-EBUSY` to guests, as Xen's "in use by"
//!   answer), and per line the bound guests (up to [`MAX_BINDERS`], sharing
//!   only if every binder said `BIND_PIRQ__WILL_SHARE`), and whether the line
//!   is *in flight*: it fired, is masked at the PIC, and waits for every
//!   binder's `PHYSDEVOP_eoi`.
//!
//! The interrupt rule is Xen's for an 8259 ("XT-PIC") line (`ACKTYPE_UNMASK`),
//! edge or level alike: on a hardware IRQ the line is masked and the PIC
//! EOI'd, every binder's port is raised, and the line is unmasked only when
//! the last binder EOIs (or unbinds). So a storm or a guest that never EOIs
//! costs one interrupt and then silence on that line; nothing loops. Hence
//! `XENIRQSTAT_needs_eoi` is always reported (as Xen does for XT-PIC lines).
//!
//! The hypervisor applies the returned [`LineAction`]s to the PIC; invariant
//! kept here: a line is unmasked (for guests) iff it has a binder and is not
//! in flight.
#![forbid(unsafe_code)]

use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::physdev::{
    MAP_PIRQ_TYPE_GSI, MAP_PIRQ_TYPE_MSI, MAP_PIRQ_TYPE_MSI_SEG, MAP_PIRQ_TYPE_MULTI_MSI,
    XENIRQSTAT_NEEDS_EOI, XENIRQSTAT_SHARED,
};

use crate::evtchn::Port;

/// Pirqs (and lines) there are: the 16 lines of the 8259 pair.
pub const NR_PIRQS: u32 = 16;

/// Guests one line may be shared between (Xen's `IRQ_MAX_GUESTS` is 7).
pub const MAX_BINDERS: usize = 7;

/// The cascade line of the 8259 pair (never a device's).
pub const CASCADE_IRQ: u8 = 2;

/// A set of lines, bit N for line N.
pub type LineMask = u16;

/// The legacy lines a PV domain has mapped at creation: 1..15 (Xen maps IRQ 0,
/// the timer, for nobody).
const LEGACY_MAPPED: LineMask = 0xFFFE;

/// What the hypervisor must do to a line at the PIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineAction {
    /// Leave it as it is.
    None,
    /// Unmask line `.0` (its binders may get it again).
    Unmask(u8),
    /// Mask line `.0` (nobody wants it, or it is in flight).
    Mask(u8),
}

/// Checks a guest's pirq value: `-EINVAL` if negative (as a signed int) or
/// `>= NR_PIRQS`.
pub fn check_pirq(pirq: i64) -> Result<u8, Errno> {
    if (0..i64::from(NR_PIRQS)).contains(&pirq) {
        Ok(pirq as u8)
    } else {
        Err(Errno::EINVAL)
    }
}

/// One domain's pirq mappings and permissions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainPirqs {
    mapped: LineMask,
    permitted: LineMask,
}

impl DomainPirqs {
    /// A domain as Xen builds a PV domain: legacy pirqs 1..15 mapped to their
    /// lines; the privileged domain (dom0) may bind them all, another none.
    pub const fn new(privileged: bool) -> Self {
        Self {
            mapped: LEGACY_MAPPED,
            permitted: if privileged { LEGACY_MAPPED } else { 0 },
        }
    }

    /// Whether `pirq` is mapped (to line `pirq`).
    pub fn mapped(&self, pirq: u8) -> bool {
        pirq < NR_PIRQS as u8 && self.mapped & (1 << pirq) != 0
    }

    /// Whether the domain may bind `pirq`.
    pub fn permitted(&self, pirq: u8) -> bool {
        pirq < NR_PIRQS as u8 && self.permitted & (1 << pirq) != 0
    }

    /// Grants or revokes the right to bind `pirq` (`XEN_DOMCTL_irq_permission`);
    /// `-EINVAL` out of range.
    pub fn set_permitted(&mut self, pirq: u8, allow: bool) -> Result<(), Errno> {
        let pirq = check_pirq(i64::from(pirq))?;
        if allow {
            self.permitted |= 1 << pirq;
        } else {
            self.permitted &= !(1 << pirq);
        }
        Ok(())
    }

    /// `PHYSDEVOP_map_pirq` into this domain, by a caller that is `privileged`
    /// (Xen: only a privileged domain maps; `-EPERM` otherwise, checked
    /// first). `MAP_PIRQ_TYPE_MSI*`: `-ENOSYS` (Oxen has no MSI); another
    /// type `-EINVAL`. For a GSI, `index` is the line (`-EINVAL` outside
    /// `0..16`), `-EBUSY` for a line Oxen keeps; `pirq` negative asks for
    /// any pirq (the answer is the line: pirqs are identity-mapped), a
    /// non-negative one must be the line itself (`-EEXIST` if the line is
    /// mapped, Xen's "pirq conflicts with irq"; `-EINVAL` otherwise, since
    /// Oxen keeps pirq = line). Mapping an already mapped line again is
    /// success, as in Xen. The domain becomes permitted to bind it (Xen's
    /// `irq_permit_access` in `map_domain_pirq`). Returns the pirq.
    pub fn map(
        &mut self,
        privileged: bool,
        lines: &IrqLines,
        ty: i32,
        index: i32,
        pirq: i32,
    ) -> Result<u8, Errno> {
        if !privileged {
            return Err(Errno::EPERM);
        }
        match ty {
            MAP_PIRQ_TYPE_GSI => {}
            MAP_PIRQ_TYPE_MSI | MAP_PIRQ_TYPE_MSI_SEG | MAP_PIRQ_TYPE_MULTI_MSI => {
                return Err(Errno::ENOSYS);
            }
            _ => return Err(Errno::EINVAL),
        }
        let line = check_pirq(i64::from(index))?;
        if lines.reserved(line) {
            return Err(Errno::EBUSY);
        }
        if pirq >= 0 && pirq != i32::from(line) {
            return Err(if self.mapped(line) {
                Errno::EEXIST
            } else {
                Errno::EINVAL
            });
        }
        self.mapped |= 1 << line;
        self.permitted |= 1 << line;
        Ok(line)
    }

    /// `PHYSDEVOP_unmap_pirq` of this domain `dom` by a caller that is
    /// `privileged`: `-EPERM` for others, `-EINVAL` for a pirq out of range or
    /// not mapped. A bound pirq is unbound first (Xen's forced unbind; the
    /// port stays a pirq port that no longer fires); the mapping and the
    /// permission go (Xen's `irq_deny_access`).
    pub fn unmap(
        &mut self,
        privileged: bool,
        lines: &mut IrqLines,
        dom: DomId,
        pirq: i32,
    ) -> Result<LineAction, Errno> {
        if !privileged {
            return Err(Errno::EPERM);
        }
        let pirq = check_pirq(i64::from(pirq))?;
        if !self.mapped(pirq) {
            return Err(Errno::EINVAL);
        }
        self.mapped &= !(1 << pirq);
        self.permitted &= !(1 << pirq);
        Ok(lines.unbind(dom, u32::from(pirq)))
    }
}

/// `PHYSDEVOP_setup_gsi`: `-EPERM` for an unprivileged caller, `-EINVAL` for
/// a GSI outside `0..16`, else nothing to do (the 8259's trigger modes are
/// the firmware's, in the ELCR, as Xen without an IO-APIC).
pub fn setup_gsi(privileged: bool, gsi: i32) -> Result<(), Errno> {
    if !privileged {
        return Err(Errno::EPERM);
    }
    check_pirq(i64::from(gsi)).map(|_| ())
}

/// A guest bound to a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binder {
    /// The domain.
    pub dom: DomId,
    /// Its port for the pirq.
    pub port: Port,
    /// It got the last interrupt and has not EOI'd it yet.
    pub owes_eoi: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    binders: [Option<Binder>; MAX_BINDERS],
    /// Every binder said `BIND_PIRQ__WILL_SHARE`.
    shareable: bool,
    /// Fired and masked, waiting for EOIs.
    in_flight: bool,
}

impl Line {
    const FREE: Line = Line {
        binders: [None; MAX_BINDERS],
        shareable: false,
        in_flight: false,
    };

    fn count(&self) -> usize {
        self.binders.iter().flatten().count()
    }

    fn owed(&self) -> bool {
        self.binders.iter().flatten().any(|b| b.owes_eoi)
    }

    /// After a binder left or EOI'd: mask when nobody is left, unmask when the
    /// last owed EOI came.
    fn settle(&mut self, line: u8) -> LineAction {
        if self.count() == 0 {
            *self = Line::FREE;
            LineAction::Mask(line)
        } else if self.in_flight && !self.owed() {
            self.in_flight = false;
            LineAction::Unmask(line)
        } else {
            LineAction::None
        }
    }
}

/// The guests' 8259 lines, machine-wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqLines {
    reserved: LineMask,
    lines: [Line; NR_PIRQS as usize],
}

impl Default for IrqLines {
    fn default() -> Self {
        Self::new()
    }
}

/// The ports to raise for one hardware interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    targets: [Option<(DomId, Port)>; MAX_BINDERS],
}

impl Fired {
    /// `(domain, port)` of each binder.
    pub fn targets(&self) -> impl Iterator<Item = (DomId, Port)> + '_ {
        self.targets.iter().flatten().copied()
    }
}

impl IrqLines {
    /// No binders; only the cascade line is Oxen's.
    pub const fn new() -> Self {
        Self {
            reserved: 1 << CASCADE_IRQ,
            lines: [Line::FREE; NR_PIRQS as usize],
        }
    }

    /// Keeps `line` for Oxen (its timer, its console): guests get `-EBUSY`.
    /// Call before any guest runs.
    pub fn reserve(&mut self, line: u8) {
        if u32::from(line) < NR_PIRQS {
            self.reserved |= 1 << line;
        }
    }

    /// Whether Oxen keeps `line`.
    pub fn reserved(&self, line: u8) -> bool {
        u32::from(line) < NR_PIRQS && self.reserved & (1 << line) != 0
    }

    /// The lines that have at least one binder (the interrupt handler routes
    /// these to guests).
    pub fn bound(&self) -> LineMask {
        (0..NR_PIRQS as u8)
            .filter(|&l| self.lines[usize::from(l)].count() != 0)
            .fold(0, |m, l| m | (1 << l))
    }

    /// Whether `line` fired and waits for EOIs.
    pub fn in_flight(&self, line: u8) -> bool {
        self.lines
            .get(usize::from(line))
            .is_some_and(|l| l.in_flight)
    }

    /// The binders of `line`.
    pub fn binders(&self, line: u8) -> impl Iterator<Item = Binder> + '_ {
        self.lines
            .get(usize::from(line))
            .into_iter()
            .flat_map(|l| l.binders.iter().flatten().copied())
    }

    /// The hypervisor's part of `EVTCHNOP_bind_pirq` for `dom` (whose pirq
    /// state is `pirqs`) on `port`, in Xen's order: `-EINVAL` for a pirq out of
    /// range, `-EPERM` if the domain may not bind it, `-EINVAL` if it is not
    /// mapped, `-EBUSY` for a line Oxen keeps, for a line already bound where
    /// this binder or the others will not share, or when [`MAX_BINDERS`]
    /// share it already; `-EEXIST` if `dom` has it bound already (the port
    /// table catches that first). The first binder unmasks the line.
    pub fn bind(
        &mut self,
        pirqs: &DomainPirqs,
        dom: DomId,
        pirq: u32,
        port: Port,
        will_share: bool,
    ) -> Result<LineAction, Errno> {
        let line = check_pirq(i64::from(pirq))?;
        if !pirqs.permitted(line) {
            return Err(Errno::EPERM);
        }
        if !pirqs.mapped(line) {
            return Err(Errno::EINVAL);
        }
        if self.reserved(line) {
            return Err(Errno::EBUSY);
        }
        let l = &mut self.lines[usize::from(line)];
        if l.binders.iter().flatten().any(|b| b.dom == dom) {
            return Err(Errno::EEXIST);
        }
        let first = l.count() == 0;
        if !first && !(will_share && l.shareable) {
            return Err(Errno::EBUSY);
        }
        let slot = l
            .binders
            .iter_mut()
            .find(|b| b.is_none())
            .ok_or(Errno::EBUSY)?;
        *slot = Some(Binder {
            dom,
            port,
            owes_eoi: false,
        });
        if first {
            l.shareable = will_share;
            l.in_flight = false;
            Ok(LineAction::Unmask(line))
        } else {
            Ok(LineAction::None)
        }
    }

    /// `dom` no longer has `pirq` bound (its port closed, the domain died, or
    /// the pirq was unmapped): the last binder's leaving masks the line, and
    /// an EOI it owed is forgiven. Nothing if it was not bound.
    pub fn unbind(&mut self, dom: DomId, pirq: u32) -> LineAction {
        let Ok(line) = check_pirq(i64::from(pirq)) else {
            return LineAction::None;
        };
        let l = &mut self.lines[usize::from(line)];
        let Some(slot) = l
            .binders
            .iter_mut()
            .find(|b| b.is_some_and(|b| b.dom == dom))
        else {
            return LineAction::None;
        };
        *slot = None;
        l.settle(line)
    }

    /// A hardware interrupt on `line` (the hypervisor has masked the line at
    /// the PIC and EOI'd it): every binder now owes an EOI and gets its port
    /// raised; the line stays masked until they EOI. A line nobody binds (or
    /// Oxen's) gets nothing and stays masked.
    pub fn fire(&mut self, line: u8) -> Fired {
        let mut fired = Fired::default();
        if self.reserved(line) {
            return fired;
        }
        let Some(l) = self.lines.get_mut(usize::from(line)) else {
            return fired;
        };
        for (b, t) in l.binders.iter_mut().flatten().zip(&mut fired.targets) {
            b.owes_eoi = true;
            *t = Some((b.dom, b.port));
        }
        l.in_flight = l.count() != 0;
        fired
    }

    /// `PHYSDEVOP_eoi` from `dom` (whose pirq state is `pirqs`): `-EINVAL` for
    /// a pirq out of range or not mapped in `dom`; otherwise success, and when
    /// this was the last EOI the line is owed, it is unmasked. An EOI nobody
    /// owed does nothing (as Xen).
    pub fn eoi(&mut self, pirqs: &DomainPirqs, dom: DomId, pirq: u32) -> Result<LineAction, Errno> {
        let line = check_pirq(i64::from(pirq))?;
        if !pirqs.mapped(line) {
            return Err(Errno::EINVAL);
        }
        let l = &mut self.lines[usize::from(line)];
        let Some(b) = l.binders.iter_mut().flatten().find(|b| b.dom == dom) else {
            return Ok(LineAction::None);
        };
        if !b.owes_eoi {
            return Ok(LineAction::None);
        }
        b.owes_eoi = false;
        Ok(l.settle(line))
    }

    /// `PHYSDEVOP_irq_status_query` for `irq`: `-EINVAL` out of range;
    /// `XENIRQSTAT_needs_eoi` always (an 8259 line is masked until EOI),
    /// `XENIRQSTAT_shared` when more than one guest has it bound.
    pub fn status(&self, irq: u32) -> Result<u32, Errno> {
        let line = check_pirq(i64::from(irq))?;
        let mut flags = XENIRQSTAT_NEEDS_EOI;
        if self.lines[usize::from(line)].count() > 1 {
            flags |= XENIRQSTAT_SHARED;
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::physdev::MAP_PIRQ_TYPE_UNKNOWN;

    const DOM0: DomId = 0;

    fn machine() -> IrqLines {
        let mut m = IrqLines::new();
        m.reserve(0);
        m.reserve(4);
        m
    }

    #[test]
    fn check_pirq_bounds() {
        assert_eq!(check_pirq(0), Ok(0));
        assert_eq!(check_pirq(15), Ok(15));
        assert_eq!(check_pirq(16), Err(Errno::EINVAL));
        assert_eq!(check_pirq(-1), Err(Errno::EINVAL));
        assert_eq!(check_pirq(i64::from(u32::MAX)), Err(Errno::EINVAL));
    }

    #[test]
    fn who_has_what_at_creation() {
        let d0 = DomainPirqs::new(true);
        let du = DomainPirqs::new(false);
        for p in 1..16 {
            assert!(d0.mapped(p) && d0.permitted(p) && du.mapped(p));
            assert!(!du.permitted(p));
        }
        assert!(!d0.mapped(0) && !d0.permitted(0));
        assert!(!d0.mapped(16) && !d0.permitted(200));
    }

    #[test]
    fn map_rules() {
        let m = machine();
        let mut d = DomainPirqs::new(true);
        let gsi = MAP_PIRQ_TYPE_GSI;
        assert_eq!(d.map(false, &m, gsi, 10, -1), Err(Errno::EPERM));
        assert_eq!(d.map(false, &m, 99, 99, 99), Err(Errno::EPERM), "first");
        assert_eq!(
            d.map(true, &m, MAP_PIRQ_TYPE_MSI, 0, -1),
            Err(Errno::ENOSYS)
        );
        assert_eq!(
            d.map(true, &m, MAP_PIRQ_TYPE_MSI_SEG, 0, -1),
            Err(Errno::ENOSYS)
        );
        assert_eq!(
            d.map(true, &m, MAP_PIRQ_TYPE_MULTI_MSI, 0, -1),
            Err(Errno::ENOSYS)
        );
        assert_eq!(
            d.map(true, &m, MAP_PIRQ_TYPE_UNKNOWN, 10, -1),
            Err(Errno::EINVAL)
        );
        assert_eq!(d.map(true, &m, -5, 10, -1), Err(Errno::EINVAL));
        assert_eq!(d.map(true, &m, gsi, 16, -1), Err(Errno::EINVAL));
        assert_eq!(d.map(true, &m, gsi, -1, -1), Err(Errno::EINVAL));
        assert_eq!(d.map(true, &m, gsi, i32::MIN, -1), Err(Errno::EINVAL));
        assert_eq!(d.map(true, &m, gsi, 0, -1), Err(Errno::EBUSY), "timer");
        assert_eq!(d.map(true, &m, gsi, 2, -1), Err(Errno::EBUSY), "cascade");
        assert_eq!(d.map(true, &m, gsi, 4, -1), Err(Errno::EBUSY), "console");
        assert_eq!(d.map(true, &m, gsi, 10, -1), Ok(10));
        assert_eq!(d.map(true, &m, gsi, 10, 10), Ok(10), "again");
        assert_eq!(d.map(true, &m, gsi, 10, 11), Err(Errno::EEXIST));
        assert_eq!(d.map(true, &m, gsi, 10, 99), Err(Errno::EEXIST));
        // Unmapped: only the identity pirq.
        let mut lines = machine();
        assert!(d.unmap(true, &mut lines, DOM0, 10).is_ok());
        assert_eq!(d.map(true, &m, gsi, 10, 11), Err(Errno::EINVAL));
        assert!(!d.mapped(10));
        assert_eq!(d.map(true, &m, gsi, 10, 10), Ok(10));
        assert!(d.mapped(10) && d.permitted(10));
    }

    #[test]
    fn map_into_a_domu_permits_it() {
        let m = machine();
        let mut du = DomainPirqs::new(false);
        assert!(!du.permitted(11));
        assert_eq!(du.map(true, &m, MAP_PIRQ_TYPE_GSI, 11, -1), Ok(11));
        assert!(du.permitted(11));
        assert!(!du.permitted(10));
    }

    #[test]
    fn unmap_rules() {
        let mut m = machine();
        let mut d = DomainPirqs::new(true);
        assert_eq!(d.unmap(false, &mut m, DOM0, 10), Err(Errno::EPERM));
        assert_eq!(d.unmap(true, &mut m, DOM0, -1), Err(Errno::EINVAL));
        assert_eq!(d.unmap(true, &mut m, DOM0, 16), Err(Errno::EINVAL));
        assert_eq!(
            d.unmap(true, &mut m, DOM0, 0),
            Err(Errno::EINVAL),
            "never mapped"
        );
        assert_eq!(d.unmap(true, &mut m, DOM0, 10), Ok(LineAction::None));
        assert_eq!(d.unmap(true, &mut m, DOM0, 10), Err(Errno::EINVAL), "twice");
        assert!(!d.permitted(10));
        assert_eq!(m.bind(&d, DOM0, 10, 5, false), Err(Errno::EPERM));
    }

    #[test]
    fn unmap_of_a_bound_pirq_unbinds_it() {
        let mut m = machine();
        let mut d = DomainPirqs::new(true);
        assert_eq!(m.bind(&d, DOM0, 11, 3, false), Ok(LineAction::Unmask(11)));
        m.fire(11);
        assert_eq!(d.unmap(true, &mut m, DOM0, 11), Ok(LineAction::Mask(11)));
        assert_eq!(m.bound(), 0);
        assert!(!m.in_flight(11));
        assert_eq!(m.fire(11).targets().count(), 0);
    }

    #[test]
    fn bind_rules_in_order() {
        let mut m = machine();
        let d0 = DomainPirqs::new(true);
        let du = DomainPirqs::new(false);
        assert_eq!(m.bind(&d0, DOM0, 16, 1, false), Err(Errno::EINVAL));
        assert_eq!(m.bind(&d0, DOM0, u32::MAX, 1, false), Err(Errno::EINVAL));
        assert_eq!(
            m.bind(&du, 1, 16, 1, false),
            Err(Errno::EINVAL),
            "range first"
        );
        assert_eq!(m.bind(&du, 1, 10, 1, false), Err(Errno::EPERM));
        assert_eq!(
            m.bind(&d0, DOM0, 0, 1, false),
            Err(Errno::EPERM),
            "timer: never permitted"
        );
        assert_eq!(m.bind(&d0, DOM0, 2, 1, false), Err(Errno::EBUSY), "cascade");
        assert_eq!(m.bind(&d0, DOM0, 4, 1, false), Err(Errno::EBUSY), "console");
        let mut unmapped = d0;
        unmapped.mapped &= !(1 << 9);
        assert_eq!(m.bind(&unmapped, DOM0, 9, 1, false), Err(Errno::EINVAL));
        assert_eq!(m.bind(&d0, DOM0, 9, 1, false), Ok(LineAction::Unmask(9)));
        assert_eq!(m.bind(&d0, DOM0, 9, 2, true), Err(Errno::EEXIST));
        assert_eq!(m.bound(), 1 << 9);
        assert_eq!(
            m.binders(9).collect::<Vec<_>>(),
            [Binder {
                dom: 0,
                port: 1,
                owes_eoi: false
            }]
        );
        // A line Oxen keeps even when the reservation comes late.
        m.reserve(9);
        assert!(m.fire(9).targets().next().is_none());
        m.reserve(200);
    }

    #[test]
    fn sharing_needs_everyone_to_agree() {
        let mut m = machine();
        let mut a = DomainPirqs::new(false);
        a.set_permitted(10, true).unwrap();
        let d0 = DomainPirqs::new(true);
        assert_eq!(m.bind(&d0, DOM0, 10, 1, false), Ok(LineAction::Unmask(10)));
        assert_eq!(
            m.bind(&a, 1, 10, 1, true),
            Err(Errno::EBUSY),
            "first will not share"
        );
        assert_eq!(m.unbind(DOM0, 10), LineAction::Mask(10));
        assert_eq!(m.bind(&d0, DOM0, 10, 1, true), Ok(LineAction::Unmask(10)));
        assert_eq!(
            m.bind(&a, 1, 10, 7, false),
            Err(Errno::EBUSY),
            "second will not share"
        );
        assert_eq!(m.bind(&a, 1, 10, 7, true), Ok(LineAction::None));
        assert_eq!(m.status(10), Ok(XENIRQSTAT_NEEDS_EOI | XENIRQSTAT_SHARED));
        // Up to MAX_BINDERS.
        for dom in 2..MAX_BINDERS as DomId {
            let mut p = DomainPirqs::new(false);
            p.set_permitted(10, true).unwrap();
            assert_eq!(m.bind(&p, dom, 10, 3, true), Ok(LineAction::None));
        }
        let mut p = DomainPirqs::new(false);
        p.set_permitted(10, true).unwrap();
        assert_eq!(m.bind(&p, 99, 10, 3, true), Err(Errno::EBUSY), "full");
        assert_eq!(m.binders(10).count(), MAX_BINDERS);
    }

    #[test]
    fn set_permitted_bounds() {
        let mut p = DomainPirqs::new(false);
        assert_eq!(p.set_permitted(16, true), Err(Errno::EINVAL));
        assert_eq!(p.set_permitted(255, true), Err(Errno::EINVAL));
        p.set_permitted(3, true).unwrap();
        assert!(p.permitted(3));
        p.set_permitted(3, false).unwrap();
        assert!(!p.permitted(3));
    }

    #[test]
    fn interrupt_masks_until_eoi() {
        let mut m = machine();
        let d0 = DomainPirqs::new(true);
        m.bind(&d0, DOM0, 8, 5, false).unwrap();
        let f = m.fire(8);
        assert_eq!(f.targets().collect::<Vec<_>>(), [(0, 5)]);
        assert!(m.in_flight(8));
        // A storm while in flight: the line is masked at the PIC, but a
        // spurious repeat only re-raises the port; still one EOI unmasks.
        let again = m.fire(8);
        assert_eq!(again.targets().count(), 1);
        assert_eq!(m.eoi(&d0, DOM0, 8), Ok(LineAction::Unmask(8)));
        assert!(!m.in_flight(8));
        assert_eq!(m.eoi(&d0, DOM0, 8), Ok(LineAction::None), "nothing owed");
        // A guest that never EOIs: the line stays masked, nothing else.
        m.fire(8);
        assert!(m.in_flight(8));
        assert_eq!(m.eoi(&d0, 3, 8), Ok(LineAction::None), "not a binder");
        assert!(m.in_flight(8));
    }

    #[test]
    fn shared_line_unmasks_after_the_last_eoi_or_unbind() {
        let mut m = machine();
        let d0 = DomainPirqs::new(true);
        let mut a = DomainPirqs::new(false);
        a.set_permitted(11, true).unwrap();
        m.bind(&d0, DOM0, 11, 4, true).unwrap();
        m.bind(&a, 1, 11, 9, true).unwrap();
        let f = m.fire(11);
        assert_eq!(f.targets().collect::<Vec<_>>(), [(0, 4), (1, 9)]);
        assert_eq!(m.eoi(&d0, DOM0, 11), Ok(LineAction::None));
        assert!(m.in_flight(11));
        assert_eq!(m.eoi(&a, 1, 11), Ok(LineAction::Unmask(11)));
        m.fire(11);
        assert_eq!(m.eoi(&a, 1, 11), Ok(LineAction::None));
        // The one that owes goes away: its EOI is forgiven.
        assert_eq!(m.unbind(DOM0, 11), LineAction::Unmask(11));
        assert_eq!(m.status(11), Ok(XENIRQSTAT_NEEDS_EOI));
        assert_eq!(m.unbind(1, 11), LineAction::Mask(11));
        assert_eq!(m.unbind(1, 11), LineAction::None, "twice");
        assert_eq!(m.bound(), 0);
    }

    #[test]
    fn eoi_and_status_bad_input() {
        let mut m = machine();
        let mut d0 = DomainPirqs::new(true);
        assert_eq!(m.eoi(&d0, DOM0, 16), Err(Errno::EINVAL));
        assert_eq!(m.eoi(&d0, DOM0, u32::MAX), Err(Errno::EINVAL));
        assert_eq!(m.eoi(&d0, DOM0, 0), Err(Errno::EINVAL), "pirq 0 not mapped");
        d0.unmap(true, &mut m, DOM0, 5).unwrap();
        assert_eq!(m.eoi(&d0, DOM0, 5), Err(Errno::EINVAL), "unmapped");
        assert_eq!(m.eoi(&d0, DOM0, 6), Ok(LineAction::None), "mapped, unbound");
        assert_eq!(m.status(16), Err(Errno::EINVAL));
        assert_eq!(m.status(u32::MAX), Err(Errno::EINVAL));
        assert_eq!(m.status(3), Ok(XENIRQSTAT_NEEDS_EOI));
        assert_eq!(m.unbind(DOM0, 99), LineAction::None);
        assert_eq!(m.fire(99).targets().count(), 0);
    }

    #[test]
    fn unbound_line_fires_nothing_and_rebinding_starts_clean() {
        let mut m = machine();
        let d0 = DomainPirqs::new(true);
        assert_eq!(m.fire(7).targets().count(), 0);
        assert!(!m.in_flight(7));
        m.bind(&d0, DOM0, 7, 2, false).unwrap();
        m.fire(7);
        assert_eq!(m.unbind(DOM0, 7), LineAction::Mask(7));
        assert_eq!(m.bind(&d0, DOM0, 7, 3, false), Ok(LineAction::Unmask(7)));
        assert!(!m.in_flight(7));
        assert_eq!(m.eoi(&d0, DOM0, 7), Ok(LineAction::None));
    }

    #[test]
    fn setup_gsi_rules() {
        assert_eq!(setup_gsi(false, 10), Err(Errno::EPERM));
        assert_eq!(setup_gsi(true, 16), Err(Errno::EINVAL));
        assert_eq!(setup_gsi(true, -1), Err(Errno::EINVAL));
        assert_eq!(setup_gsi(true, 10), Ok(()));
    }
}
