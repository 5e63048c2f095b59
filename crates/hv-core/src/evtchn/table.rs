//! One domain's event-channel ports (XEN-PV-ABI.md §8.1, §8.2).
//!
//! A [`PortTable`] holds, per port, its state and the VCPU it notifies, and per
//! VCPU the VIRQ→port map (global VIRQs live in VCPU 0's map, as in Xen). The
//! rules and errno values are Xen's (`common/event_channel.c`):
//!
//! * Port 0 is reserved when the table is made and never allocated; its status
//!   reads as closed. A new port is the lowest free one.
//! * Xen allocates port structures [`PORT_BUCKET`] at a time, and a port beyond
//!   the allocated buckets is *invalid* (`-EINVAL` from close, send, status,
//!   bind_vcpu, unmask), while a free port inside them is merely *closed*
//!   (status "closed", unmask succeeds). The table keeps the same boundary
//!   ([`PortTable::valid_ports`]), so guests see Xen's answers.
//! * A VCPU that does not exist is `-ENOENT` (bind_virq, bind_ipi, bind_vcpu),
//!   checked after the VIRQ number and the "global VIRQs bind on VCPU 0" rule
//!   (both `-EINVAL`) and before `-EEXIST`.
//! * Closing a closed, reserved or invalid port is `-EINVAL`. Closing clears the
//!   port's pending bit (so a re-bound port starts quiet) and resets its VCPU to
//!   0; the interdomain peer reverts to unbound, accepting a new binding from us.
//! * `send` on an unbound port is silently dropped (success), as in Xen; on a
//!   VIRQ, PIRQ, closed or reserved port it is `-EINVAL`.

use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::evtchn::{
    EVTCHNSTAT_CLOSED, EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_IPI, EVTCHNSTAT_PIRQ, EVTCHNSTAT_UNBOUND,
    EVTCHNSTAT_VIRQ, EvtchnStatus, NR_VIRQS, virq_is_per_vcpu,
};
use xen_abi::layout::XEN_LEGACY_MAX_VCPUS;
use xen_abi::shared_info::NR_EVENT_CHANNELS;

use super::delivery::{self, EventWords, Port, Raised, VcpuId};

/// Ports Xen allocates at a time (4.1's `EVTCHNS_PER_BUCKET`); ports at or above
/// the allocated buckets are invalid rather than closed.
pub const PORT_BUCKET: usize = 128;

const NR_VIRQS_USIZE: usize = NR_VIRQS as usize;

/// The state of one port (Xen's `ECS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Free (`ECS_FREE`).
    Closed,
    /// Never allocated: port 0 (`ECS_RESERVED`); reads as closed.
    Reserved,
    /// Allocated; `remote_dom` may bind to it.
    Unbound {
        /// The domain allowed to bind.
        remote_dom: DomId,
    },
    /// Connected to `remote_port` of `remote_dom` (which may be this domain:
    /// loopback).
    Interdomain {
        /// The peer domain.
        remote_dom: DomId,
        /// The peer's port.
        remote_port: Port,
    },
    /// Bound to a VIRQ.
    Virq {
        /// `VIRQ_*`.
        virq: u32,
    },
    /// An intra-domain IPI port.
    Ipi,
    /// Bound to a physical IRQ.
    Pirq {
        /// The physical IRQ.
        pirq: u32,
    },
}

impl PortState {
    /// The ABI `EVTCHNSTAT_*` value of this state.
    pub const fn status(&self) -> u32 {
        match self {
            PortState::Closed | PortState::Reserved => EVTCHNSTAT_CLOSED,
            PortState::Unbound { .. } => EVTCHNSTAT_UNBOUND,
            PortState::Interdomain { .. } => EVTCHNSTAT_INTERDOMAIN,
            PortState::Virq { .. } => EVTCHNSTAT_VIRQ,
            PortState::Ipi => EVTCHNSTAT_IPI,
            PortState::Pirq { .. } => EVTCHNSTAT_PIRQ,
        }
    }

    /// Whether the port is allocated (neither closed nor reserved).
    pub const fn is_bound(&self) -> bool {
        !matches!(self, PortState::Closed | PortState::Reserved)
    }
}

/// Where `EVTCHNOP_send` delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendTarget {
    /// Raise `port` of this domain on `vcpu` (an IPI port, or the far end of a
    /// loopback interdomain channel).
    Local {
        /// Port to raise.
        port: Port,
        /// Its notified VCPU.
        vcpu: VcpuId,
    },
    /// Raise `port` of domain `dom` on that port's notified VCPU.
    Remote {
        /// The peer domain.
        dom: DomId,
        /// The peer's port.
        port: Port,
    },
    /// The port is unbound: Xen drops the notification and reports success.
    Dropped,
}

/// What closing a port leaves for the hypervisor to undo elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    /// Nothing (unbound, IPI, VIRQ, loopback interdomain).
    Nothing,
    /// The peer `port` of domain `dom` must revert to unbound:
    /// `peer_table.peer_closed(port, this_dom, this_port)` while both tables are
    /// held.
    Peer {
        /// The peer domain.
        dom: DomId,
        /// The peer's port.
        port: Port,
        /// The port that was closed here.
        closed: Port,
    },
    /// The physical IRQ must be unbound from this domain.
    Pirq {
        /// The physical IRQ.
        pirq: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    state: PortState,
    vcpu: u8,
}

impl Slot {
    const FREE: Slot = Slot {
        state: PortState::Closed,
        vcpu: 0,
    };
}

/// The event-channel ports of one domain; `N` ports (at most
/// [`NR_EVENT_CHANNELS`], 1024 for 32-bit guests).
///
/// About 14 KiB for `N = 1024`: keep it in the domain structure, not on a small
/// stack.
#[derive(Clone, Debug)]
pub struct PortTable<const N: usize> {
    dom: DomId,
    nr_vcpus: u32,
    /// Ports `[0, valid)` exist (a multiple of [`PORT_BUCKET`], or `N`).
    valid: usize,
    slots: [Slot; N],
    /// Per VCPU, VIRQ → port (0 = unbound). Global VIRQs use VCPU 0's row.
    virqs: [[u16; NR_VIRQS_USIZE]; XEN_LEGACY_MAX_VCPUS],
}

/// The port table of a 32-bit guest.
pub type DomainPorts = PortTable<NR_EVENT_CHANNELS>;

const fn min(a: usize, b: usize) -> usize {
    if a < b { a } else { b }
}

impl<const N: usize> PortTable<N> {
    /// A table for domain `dom` with VCPUs `0..nr_vcpus` (at most 32: the VCPUs
    /// that have a `vcpu_info` in the shared page). Only port 0 is taken.
    pub const fn new(dom: DomId, nr_vcpus: u32) -> Self {
        const { assert!(N >= 2 && N <= NR_EVENT_CHANNELS) };
        let mut slots = [Slot::FREE; N];
        slots[0].state = PortState::Reserved;
        Self {
            dom,
            nr_vcpus: Self::clamp_vcpus(nr_vcpus),
            valid: min(PORT_BUCKET, N),
            slots,
            virqs: [[0; NR_VIRQS_USIZE]; XEN_LEGACY_MAX_VCPUS],
        }
    }

    const fn clamp_vcpus(n: u32) -> u32 {
        if n > XEN_LEGACY_MAX_VCPUS as u32 {
            XEN_LEGACY_MAX_VCPUS as u32
        } else {
            n
        }
    }

    /// The domain this table belongs to.
    pub const fn dom(&self) -> DomId {
        self.dom
    }

    /// VCPUs that exist (`0..nr_vcpus`).
    pub const fn nr_vcpus(&self) -> u32 {
        self.nr_vcpus
    }

    /// Records that VCPUs `0..n` exist (domctl `max_vcpus`, VCPU creation).
    pub fn set_nr_vcpus(&mut self, n: u32) {
        self.nr_vcpus = Self::clamp_vcpus(n);
    }

    /// Ports `0..valid_ports()` are valid (allocated buckets); the rest are
    /// `-EINVAL` to every operation.
    pub const fn valid_ports(&self) -> usize {
        self.valid
    }

    /// The state of `port`, or `None` if it is not valid.
    pub fn state(&self, port: Port) -> Option<PortState> {
        self.slot(port).ok().map(|s| s.state)
    }

    /// The VCPU `port` notifies, or `None` if it is not valid.
    pub fn notify_vcpu(&self, port: Port) -> Option<VcpuId> {
        self.slot(port).ok().map(|s| VcpuId::from(s.vcpu))
    }

    fn slot(&self, port: Port) -> Result<&Slot, Errno> {
        match usize::try_from(port) {
            Ok(p) if p < self.valid => Ok(&self.slots[p]),
            _ => Err(Errno::EINVAL),
        }
    }

    fn slot_mut(&mut self, port: Port) -> Result<&mut Slot, Errno> {
        match usize::try_from(port) {
            Ok(p) if p < self.valid => Ok(&mut self.slots[p]),
            _ => Err(Errno::EINVAL),
        }
    }

    fn check_vcpu(&self, vcpu: VcpuId) -> Result<(), Errno> {
        if vcpu < self.nr_vcpus {
            Ok(())
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// The lowest free port, growing the valid range by a bucket if needed.
    /// Does not take it.
    fn free_port(&mut self) -> Result<Port, Errno> {
        if let Some(p) = self.slots[..self.valid]
            .iter()
            .position(|s| s.state == PortState::Closed)
        {
            return Ok(p as Port);
        }
        if self.valid >= N {
            return Err(Errno::ENOSPC);
        }
        let p = self.valid;
        self.valid = min(p + PORT_BUCKET, N);
        Ok(p as Port)
    }

    fn take(&mut self, port: Port, state: PortState, vcpu: VcpuId) {
        self.slots[port as usize] = Slot {
            state,
            vcpu: vcpu as u8,
        };
    }

    fn alloc(&mut self, state: PortState, vcpu: VcpuId) -> Result<Port, Errno> {
        let port = self.free_port()?;
        self.take(port, state, vcpu);
        Ok(port)
    }

    /// `EVTCHNOP_alloc_unbound`: a new port that `remote_dom` may bind (the
    /// caller resolves `DOMID_SELF` to the *calling* domain first). Notifies
    /// VCPU 0. `-ENOSPC` when every port is taken.
    pub fn alloc_unbound(&mut self, remote_dom: DomId) -> Result<Port, Errno> {
        self.alloc(PortState::Unbound { remote_dom }, 0)
    }

    /// `EVTCHNOP_bind_virq`: `-EINVAL` for `virq >= NR_VIRQS` or a global VIRQ on
    /// a VCPU other than 0, `-ENOENT` for a VCPU that does not exist, `-EEXIST`
    /// if that VCPU (VCPU 0 for a global VIRQ) already has it bound, `-ENOSPC`.
    pub fn bind_virq(&mut self, virq: u32, vcpu: VcpuId) -> Result<Port, Errno> {
        if virq >= NR_VIRQS || (!virq_is_per_vcpu(virq) && vcpu != 0) {
            return Err(Errno::EINVAL);
        }
        self.check_vcpu(vcpu)?;
        if self.virqs[vcpu as usize][virq as usize] != 0 {
            return Err(Errno::EEXIST);
        }
        let port = self.alloc(PortState::Virq { virq }, vcpu)?;
        self.virqs[vcpu as usize][virq as usize] = port as u16;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: `-ENOENT` for a VCPU that does not exist, `-ENOSPC`.
    pub fn bind_ipi(&mut self, vcpu: VcpuId) -> Result<Port, Errno> {
        self.check_vcpu(vcpu)?;
        self.alloc(PortState::Ipi, vcpu)
    }

    /// The table's part of `EVTCHNOP_bind_pirq`: `-EEXIST` if `pirq` already has
    /// a port here, `-ENOSPC`. Range and permission checks and the physical
    /// binding are the hypervisor's; if the latter fails, undo with
    /// [`unbind_pirq_port`](Self::unbind_pirq_port).
    pub fn bind_pirq(&mut self, pirq: u32) -> Result<Port, Errno> {
        if self.pirq_port(pirq).is_some() {
            return Err(Errno::EEXIST);
        }
        self.alloc(PortState::Pirq { pirq }, 0)
    }

    /// Frees a port just taken by [`bind_pirq`](Self::bind_pirq) whose physical
    /// binding failed (it never was visible to the guest, so no pending bit).
    pub fn unbind_pirq_port(&mut self, port: Port) {
        if let Ok(s) = self.slot_mut(port)
            && matches!(s.state, PortState::Pirq { .. })
        {
            *s = Slot::FREE;
        }
    }

    /// The port bound to physical IRQ `pirq`, if any.
    pub fn pirq_port(&self, pirq: u32) -> Option<Port> {
        self.slots[..self.valid]
            .iter()
            .position(|s| s.state == PortState::Pirq { pirq })
            .map(|p| p as Port)
    }

    /// `EVTCHNOP_close`. `-EINVAL` for an invalid, closed or reserved port.
    /// Clears the port's pending bit in `words`; a loopback peer reverts to
    /// unbound here, another domain's peer is returned as [`Released::Peer`].
    pub fn close<W: EventWords + ?Sized>(
        &mut self,
        words: &mut W,
        port: Port,
    ) -> Result<Released, Errno> {
        let state = self.slot(port)?.state;
        let released = match state {
            PortState::Closed | PortState::Reserved => return Err(Errno::EINVAL),
            PortState::Unbound { .. } | PortState::Ipi => Released::Nothing,
            PortState::Pirq { pirq } => Released::Pirq { pirq },
            PortState::Virq { virq } => {
                for row in self.virqs.iter_mut() {
                    if Port::from(row[virq as usize]) == port {
                        row[virq as usize] = 0;
                    }
                }
                Released::Nothing
            }
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => {
                if remote_dom == self.dom {
                    // Loopback: the far end is ours. A mismatch would be a bug;
                    // leave the far end alone rather than corrupt it.
                    let me = self.dom;
                    let _ = self.peer_closed(remote_port, me, port);
                    Released::Nothing
                } else {
                    Released::Peer {
                        dom: remote_dom,
                        port: remote_port,
                        closed: port,
                    }
                }
            }
        };
        words.test_and_clear_pending(port);
        self.slots[port as usize] = Slot::FREE;
        Ok(released)
    }

    /// The far end of an interdomain channel was closed: `port` (connected to
    /// `peer_port` of `peer_dom`) reverts to unbound, accepting `peer_dom` again.
    /// `-EINVAL` if `port` is not connected to exactly that peer (a hypervisor
    /// bug: Xen would BUG()).
    pub fn peer_closed(
        &mut self,
        port: Port,
        peer_dom: DomId,
        peer_port: Port,
    ) -> Result<(), Errno> {
        let s = self.slot_mut(port)?;
        if s.state
            != (PortState::Interdomain {
                remote_dom: peer_dom,
                remote_port: peer_port,
            })
        {
            return Err(Errno::EINVAL);
        }
        s.state = PortState::Unbound {
            remote_dom: peer_dom,
        };
        Ok(())
    }

    /// `EVTCHNOP_status`: the OUT fields (`status`, `vcpu`, union) of `port`;
    /// `dom` is set to this table's domain and `port` to `port`. `-EINVAL` for
    /// an invalid port; a free or reserved port is `EVTCHNSTAT_closed`.
    pub fn status(&self, port: Port) -> Result<EvtchnStatus, Errno> {
        let s = self.slot(port)?;
        let mut st = EvtchnStatus {
            dom: self.dom,
            port,
            status: s.state.status(),
            vcpu: VcpuId::from(s.vcpu),
            ..EvtchnStatus::default()
        };
        match s.state {
            PortState::Unbound { remote_dom } => st.set_unbound(remote_dom),
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => st.set_interdomain(remote_dom, remote_port),
            PortState::Virq { virq } => st.set_irq(virq),
            PortState::Pirq { pirq } => st.set_irq(pirq),
            PortState::Closed | PortState::Reserved | PortState::Ipi => {}
        }
        Ok(st)
    }

    /// `EVTCHNOP_bind_vcpu`: notify `vcpu` from now on. `-ENOENT` for a VCPU that
    /// does not exist (checked first), `-EINVAL` for an invalid port and for IPI,
    /// per-VCPU VIRQ, closed and reserved ports. Pending state does not move:
    /// the guest masks around the change and unmasks through the hypercall.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: VcpuId) -> Result<(), Errno> {
        self.check_vcpu(vcpu)?;
        let s = self.slot_mut(port)?;
        match s.state {
            PortState::Virq { virq } if virq_is_per_vcpu(virq) => Err(Errno::EINVAL),
            PortState::Virq { .. }
            | PortState::Unbound { .. }
            | PortState::Interdomain { .. }
            | PortState::Pirq { .. } => {
                s.vcpu = vcpu as u8;
                Ok(())
            }
            PortState::Closed | PortState::Reserved | PortState::Ipi => Err(Errno::EINVAL),
        }
    }

    /// `EVTCHNOP_send`: where the notification goes. `-EINVAL` for an invalid
    /// port and for VIRQ, PIRQ, closed and reserved ports.
    pub fn send(&self, port: Port) -> Result<SendTarget, Errno> {
        let s = self.slot(port)?;
        match s.state {
            PortState::Ipi => Ok(SendTarget::Local {
                port,
                vcpu: VcpuId::from(s.vcpu),
            }),
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } if remote_dom == self.dom => Ok(SendTarget::Local {
                port: remote_port,
                vcpu: self.notify_vcpu(remote_port).unwrap_or(0),
            }),
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => Ok(SendTarget::Remote {
                dom: remote_dom,
                port: remote_port,
            }),
            PortState::Unbound { .. } => Ok(SendTarget::Dropped),
            PortState::Virq { .. }
            | PortState::Pirq { .. }
            | PortState::Closed
            | PortState::Reserved => Err(Errno::EINVAL),
        }
    }

    /// `EVTCHNOP_unmask`: clears the mask of any valid port (whatever its state)
    /// and re-raises it on its notified VCPU if pending. `-EINVAL` for an invalid
    /// port.
    pub fn unmask<W: EventWords + ?Sized>(
        &self,
        words: &mut W,
        port: Port,
    ) -> Result<Raised, Errno> {
        let vcpu = VcpuId::from(self.slot(port)?.vcpu);
        Ok(Raised {
            port,
            vcpu,
            notify: delivery::unmask(words, vcpu, port),
        })
    }

    /// Raises bound `port` on its notified VCPU (for sends, PIRQs, the local end
    /// of a new interdomain binding). `None` if the port is invalid or not bound.
    pub fn raise<W: EventWords + ?Sized>(&self, words: &mut W, port: Port) -> Option<Raised> {
        let s = self.slot(port).ok()?;
        if !s.state.is_bound() {
            return None;
        }
        let vcpu = VcpuId::from(s.vcpu);
        Some(Raised {
            port,
            vcpu,
            notify: delivery::set_pending(words, vcpu, port),
        })
    }

    /// The port bound to `virq`: for a per-VCPU VIRQ, `vcpu`'s binding; for a
    /// global VIRQ, the domain's one binding (`vcpu` is ignored).
    pub fn virq_port(&self, virq: u32, vcpu: VcpuId) -> Option<Port> {
        if virq >= NR_VIRQS {
            return None;
        }
        let row = if virq_is_per_vcpu(virq) { vcpu } else { 0 };
        let port = *self.virqs.get(row as usize)?.get(virq as usize)?;
        (port != 0).then_some(Port::from(port))
    }

    /// Raises `virq` as Xen's `send_guest_vcpu_virq` / `send_guest_global_virq`:
    /// a per-VCPU VIRQ on `vcpu`'s port and VCPU, a global one on its port's
    /// notified VCPU (`vcpu` ignored). `None` if the guest has not bound it.
    pub fn raise_virq<W: EventWords + ?Sized>(
        &self,
        words: &mut W,
        virq: u32,
        vcpu: VcpuId,
    ) -> Option<Raised> {
        let port = self.virq_port(virq, vcpu)?;
        let vcpu = if virq_is_per_vcpu(virq) {
            vcpu
        } else {
            self.notify_vcpu(port)?
        };
        Some(Raised {
            port,
            vcpu,
            notify: delivery::set_pending(words, vcpu, port),
        })
    }

    /// `EVTCHNOP_reset`: closes every valid port, handing each non-trivial
    /// [`Released`] to `released`. Valid ports stay valid (Xen keeps its
    /// buckets).
    pub fn reset<W: EventWords + ?Sized>(
        &mut self,
        words: &mut W,
        mut released: impl FnMut(Released),
    ) {
        for port in 0..self.valid as Port {
            match self.close(words, port) {
                Ok(Released::Nothing) | Err(_) => {}
                Ok(r) => released(r),
            }
        }
    }

    /// Loopback `EVTCHNOP_bind_interdomain` (remote domain = this one): connects
    /// a new port to `remote_port`, which must be unbound and accept this domain.
    /// `-ENOSPC` first, then `-EINVAL`. The caller then raises the new port
    /// ([`raise`](Self::raise)): Xen always does, as notifications sent to the
    /// unbound end were dropped.
    pub fn bind_interdomain_loopback(&mut self, remote_port: Port) -> Result<Port, Errno> {
        let lport = self.free_port()?;
        let me = self.dom;
        self.accept(remote_port, me, lport)?;
        self.take(
            lport,
            PortState::Interdomain {
                remote_dom: me,
                remote_port,
            },
            0,
        );
        Ok(lport)
    }

    /// The remote half of a binding: `port` must be unbound for `from_dom`; it
    /// becomes connected to `from_port` of `from_dom`.
    fn accept(&mut self, port: Port, from_dom: DomId, from_port: Port) -> Result<(), Errno> {
        let s = self.slot_mut(port)?;
        if s.state
            != (PortState::Unbound {
                remote_dom: from_dom,
            })
        {
            return Err(Errno::EINVAL);
        }
        s.state = PortState::Interdomain {
            remote_dom: from_dom,
            remote_port: from_port,
        };
        Ok(())
    }
}

/// `EVTCHNOP_bind_interdomain` between two domains: connects a new port of
/// `local` to `remote_port` of `remote`, which must be unbound for `local`'s
/// domain. `-ENOSPC` (no local port) first, then `-EINVAL` (remote port invalid
/// or not unbound for us). Both tables must be held (lower domain id locked
/// first). The caller then raises the new local port. For `remote` = `local`
/// use [`PortTable::bind_interdomain_loopback`].
pub fn bind_interdomain<const N: usize>(
    local: &mut PortTable<N>,
    remote: &mut PortTable<N>,
    remote_port: Port,
) -> Result<Port, Errno> {
    let lport = local.free_port()?;
    remote.accept(remote_port, local.dom, lport)?;
    local.take(
        lport,
        PortState::Interdomain {
            remote_dom: remote.dom,
            remote_port,
        },
        0,
    );
    Ok(lport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evtchn::delivery::{Notify, scan, scan_with};
    use std::vec::Vec;
    use xen_abi::evtchn::{
        VIRQ_CON_RING, VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_DOM_EXC, VIRQ_TIMER, VIRQ_XENOPROF,
    };
    use xen_abi::shared_info::SharedInfo;

    type Small = PortTable<8>;

    fn full() -> DomainPorts {
        DomainPorts::new(0, 2)
    }

    #[test]
    fn new_table_reserves_port_zero() {
        let t = full();
        assert_eq!(t.state(0), Some(PortState::Reserved));
        assert_eq!(t.state(1), Some(PortState::Closed));
        assert_eq!(t.valid_ports(), PORT_BUCKET);
        assert_eq!(t.state(PORT_BUCKET as Port), None);
        assert_eq!(t.dom(), 0);
        assert_eq!(t.nr_vcpus(), 2);
        let st = t.status(0).unwrap();
        assert_eq!((st.status, st.vcpu), (EVTCHNSTAT_CLOSED, 0));
    }

    #[test]
    fn alloc_unbound_takes_lowest_free_port_never_zero() {
        let mut t = full();
        assert_eq!(t.alloc_unbound(1), Ok(1));
        assert_eq!(t.alloc_unbound(2), Ok(2));
        assert_eq!(t.alloc_unbound(3), Ok(3));
        assert_eq!(t.state(2), Some(PortState::Unbound { remote_dom: 2 }));
        let mut w = SharedInfo::default();
        assert_eq!(t.close(&mut w, 2), Ok(Released::Nothing));
        assert_eq!(t.alloc_unbound(5), Ok(2), "lowest free port is reused");
        assert_eq!(t.alloc_unbound(5), Ok(4));
        let st = t.status(2).unwrap();
        assert_eq!(st.status, EVTCHNSTAT_UNBOUND);
        assert_eq!(st.unbound_dom(), 5);
        assert_eq!(st.vcpu, 0);
    }

    #[test]
    fn alloc_fails_with_enospc_when_full() {
        let mut t = Small::new(3, 1);
        for p in 1..8 {
            assert_eq!(t.alloc_unbound(0), Ok(p));
        }
        assert_eq!(t.alloc_unbound(0), Err(Errno::ENOSPC));
        assert_eq!(t.bind_ipi(0), Err(Errno::ENOSPC));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 0), Err(Errno::ENOSPC));
        assert_eq!(
            t.virq_port(VIRQ_TIMER, 0),
            None,
            "failed bind leaves no map"
        );
        assert_eq!(t.bind_pirq(4), Err(Errno::ENOSPC));
    }

    #[test]
    fn valid_range_grows_a_bucket_at_a_time_up_to_1024() {
        let mut t = full();
        assert_eq!(t.status(200), Err(Errno::EINVAL));
        for p in 1..PORT_BUCKET as Port {
            assert_eq!(t.bind_ipi(0), Ok(p));
        }
        assert_eq!(t.valid_ports(), PORT_BUCKET);
        assert_eq!(t.bind_ipi(1), Ok(PORT_BUCKET as Port));
        assert_eq!(t.valid_ports(), 2 * PORT_BUCKET);
        assert_eq!(t.status(200).unwrap().status, EVTCHNSTAT_CLOSED);
        for _ in 129..NR_EVENT_CHANNELS {
            t.alloc_unbound(0).unwrap();
        }
        assert_eq!(t.valid_ports(), NR_EVENT_CHANNELS);
        assert_eq!(t.alloc_unbound(0), Err(Errno::ENOSPC));
        assert_eq!(t.status(1023).unwrap().status, EVTCHNSTAT_UNBOUND);
        assert_eq!(t.status(1024), Err(Errno::EINVAL));
    }

    #[test]
    fn bind_virq_per_vcpu_once_per_vcpu() {
        let mut t = full();
        assert_eq!(t.bind_virq(VIRQ_TIMER, 0), Ok(1));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 1), Ok(2));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 1), Err(Errno::EEXIST));
        assert_eq!(t.bind_virq(VIRQ_DEBUG, 1), Ok(3));
        assert_eq!(t.bind_virq(VIRQ_XENOPROF, 1), Ok(4));
        assert_eq!(t.virq_port(VIRQ_TIMER, 0), Some(1));
        assert_eq!(t.virq_port(VIRQ_TIMER, 1), Some(2));
        assert_eq!(t.notify_vcpu(2), Some(1));
        let st = t.status(2).unwrap();
        assert_eq!(
            (st.status, st.vcpu, st.virq()),
            (EVTCHNSTAT_VIRQ, 1, VIRQ_TIMER)
        );
    }

    #[test]
    fn bind_virq_global_only_on_vcpu0_and_once() {
        let mut t = full();
        assert_eq!(t.bind_virq(VIRQ_DOM_EXC, 1), Err(Errno::EINVAL));
        assert_eq!(t.bind_virq(VIRQ_DOM_EXC, 0), Ok(1));
        assert_eq!(t.bind_virq(VIRQ_DOM_EXC, 0), Err(Errno::EEXIST));
        assert_eq!(t.virq_port(VIRQ_DOM_EXC, 0), Some(1));
        assert_eq!(t.virq_port(VIRQ_DOM_EXC, 1), Some(1), "global: any vcpu");
        // Rebinding it to vcpu 1 keeps the single binding.
        assert_eq!(t.bind_vcpu(1, 1), Ok(()));
        assert_eq!(t.bind_virq(VIRQ_DOM_EXC, 0), Err(Errno::EEXIST));
        assert_eq!(t.status(1).unwrap().vcpu, 1);
    }

    #[test]
    fn bind_virq_rejects_bad_numbers_and_vcpus() {
        let mut t = full();
        assert_eq!(t.bind_virq(NR_VIRQS, 0), Err(Errno::EINVAL));
        assert_eq!(t.bind_virq(u32::MAX, 0), Err(Errno::EINVAL));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 2), Err(Errno::ENOENT));
        assert_eq!(t.bind_virq(VIRQ_TIMER, 99), Err(Errno::ENOENT));
        // Global VIRQ on a bad vcpu: the "vcpu 0 only" rule comes first.
        assert_eq!(t.bind_virq(VIRQ_CONSOLE, 99), Err(Errno::EINVAL));
        assert_eq!(t.bind_virq(VIRQ_CONSOLE, 0), Ok(1));
    }

    #[test]
    fn closing_a_virq_port_frees_the_virq() {
        let mut t = full();
        let mut w = SharedInfo::default();
        let p = t.bind_virq(VIRQ_TIMER, 1).unwrap();
        let g = t.bind_virq(VIRQ_CON_RING, 0).unwrap();
        assert_eq!(t.close(&mut w, p), Ok(Released::Nothing));
        assert_eq!(t.virq_port(VIRQ_TIMER, 1), None);
        assert_eq!(t.bind_virq(VIRQ_TIMER, 1), Ok(p));
        t.bind_vcpu(g, 1).unwrap();
        assert_eq!(t.close(&mut w, g), Ok(Released::Nothing));
        assert_eq!(t.virq_port(VIRQ_CON_RING, 0), None);
        assert_eq!(t.bind_virq(VIRQ_CON_RING, 0), Ok(g));
    }

    #[test]
    fn bind_ipi_and_its_status() {
        let mut t = full();
        assert_eq!(t.bind_ipi(1), Ok(1));
        assert_eq!(t.bind_ipi(2), Err(Errno::ENOENT));
        let st = t.status(1).unwrap();
        assert_eq!((st.status, st.vcpu, st.u), (EVTCHNSTAT_IPI, 1, [0, 0]));
        t.set_nr_vcpus(3);
        assert_eq!(t.bind_ipi(2), Ok(2));
        t.set_nr_vcpus(1000);
        assert_eq!(t.nr_vcpus(), 32);
    }

    #[test]
    fn close_rules() {
        let mut t = full();
        let mut w = SharedInfo::default();
        assert_eq!(t.close(&mut w, 0), Err(Errno::EINVAL), "reserved");
        assert_eq!(t.close(&mut w, 1), Err(Errno::EINVAL), "closed");
        assert_eq!(t.close(&mut w, 5000), Err(Errno::EINVAL), "out of range");
        assert_eq!(t.close(&mut w, 200), Err(Errno::EINVAL), "beyond buckets");
        let p = t.alloc_unbound(1).unwrap();
        t.bind_vcpu(p, 1).unwrap();
        let _ = t.raise(&mut w, p).unwrap();
        assert!(w.is_pending(p));
        assert_eq!(t.close(&mut w, p), Ok(Released::Nothing));
        assert!(!w.is_pending(p), "close clears the pending bit");
        assert_eq!(t.state(p), Some(PortState::Closed));
        assert_eq!(t.notify_vcpu(p), Some(0), "vcpu resets to 0");
        assert_eq!(t.close(&mut w, p), Err(Errno::EINVAL), "twice");
        let q = t.bind_pirq(9).unwrap();
        assert_eq!(t.close(&mut w, q), Ok(Released::Pirq { pirq: 9 }));
        assert_eq!(t.pirq_port(9), None);
    }

    #[test]
    fn status_of_every_state() {
        let mut t = DomainPorts::new(4, 1);
        let mut w = SharedInfo::default();
        let u = t.alloc_unbound(4).unwrap();
        let l = t.bind_interdomain_loopback(u).unwrap();
        let v = t.bind_virq(VIRQ_DOM_EXC, 0).unwrap();
        let i = t.bind_ipi(0).unwrap();
        let p = t.bind_pirq(11).unwrap();
        let mut remote = DomainPorts::new(7, 1);
        let r = remote.alloc_unbound(4).unwrap();
        let x = bind_interdomain(&mut t, &mut remote, r).unwrap();
        let s = |port| t.status(port).unwrap();
        assert_eq!(
            (s(u).status, s(u).interdomain()),
            (EVTCHNSTAT_INTERDOMAIN, (4, l))
        );
        assert_eq!(
            (s(l).status, s(l).interdomain()),
            (EVTCHNSTAT_INTERDOMAIN, (4, u))
        );
        assert_eq!(
            (s(x).status, s(x).interdomain()),
            (EVTCHNSTAT_INTERDOMAIN, (7, r))
        );
        assert_eq!((s(v).status, s(v).virq()), (EVTCHNSTAT_VIRQ, VIRQ_DOM_EXC));
        assert_eq!(s(i).status, EVTCHNSTAT_IPI);
        assert_eq!((s(p).status, s(p).pirq()), (EVTCHNSTAT_PIRQ, 11));
        assert_eq!((s(100).status, s(100).u), (EVTCHNSTAT_CLOSED, [0, 0]));
        assert_eq!((s(100).dom, s(100).port), (4, 100));
        assert_eq!(t.status(128), Err(Errno::EINVAL));
        assert_eq!(
            t.close(&mut w, x),
            Ok(Released::Peer {
                dom: 7,
                port: r,
                closed: x
            })
        );
        assert_eq!(t.status(x).unwrap().status, EVTCHNSTAT_CLOSED);
    }

    #[test]
    fn bind_vcpu_rules() {
        let mut t = full();
        let u = t.alloc_unbound(1).unwrap();
        let ipi = t.bind_ipi(0).unwrap();
        let timer = t.bind_virq(VIRQ_TIMER, 0).unwrap();
        let global = t.bind_virq(VIRQ_CONSOLE, 0).unwrap();
        let pirq = t.bind_pirq(3).unwrap();
        assert_eq!(t.bind_vcpu(u, 1), Ok(()));
        assert_eq!(t.notify_vcpu(u), Some(1));
        assert_eq!(t.bind_vcpu(global, 1), Ok(()));
        assert_eq!(t.bind_vcpu(pirq, 1), Ok(()));
        assert_eq!(t.bind_vcpu(ipi, 1), Err(Errno::EINVAL));
        assert_eq!(t.bind_vcpu(timer, 1), Err(Errno::EINVAL));
        assert_eq!(t.bind_vcpu(0, 1), Err(Errno::EINVAL), "reserved");
        assert_eq!(t.bind_vcpu(50, 1), Err(Errno::EINVAL), "closed");
        assert_eq!(t.bind_vcpu(500, 1), Err(Errno::EINVAL), "invalid");
        assert_eq!(t.bind_vcpu(u, 2), Err(Errno::ENOENT));
        assert_eq!(
            t.bind_vcpu(500, 2),
            Err(Errno::ENOENT),
            "vcpu checked first"
        );
        assert_eq!(t.notify_vcpu(ipi), Some(0));
    }

    #[test]
    fn send_targets() {
        let mut t = DomainPorts::new(3, 2);
        let ipi = t.bind_ipi(1).unwrap();
        assert_eq!(t.send(ipi), Ok(SendTarget::Local { port: ipi, vcpu: 1 }));
        let u = t.alloc_unbound(9).unwrap();
        assert_eq!(t.send(u), Ok(SendTarget::Dropped));
        let a = t.alloc_unbound(3).unwrap();
        let b = t.bind_interdomain_loopback(a).unwrap();
        t.bind_vcpu(a, 1).unwrap();
        assert_eq!(t.send(b), Ok(SendTarget::Local { port: a, vcpu: 1 }));
        assert_eq!(t.send(a), Ok(SendTarget::Local { port: b, vcpu: 0 }));
        let mut r = DomainPorts::new(5, 1);
        let rp = r.alloc_unbound(3).unwrap();
        let x = bind_interdomain(&mut t, &mut r, rp).unwrap();
        assert_eq!(t.send(x), Ok(SendTarget::Remote { dom: 5, port: rp }));
        assert_eq!(r.send(rp), Ok(SendTarget::Remote { dom: 3, port: x }));
        let v = t.bind_virq(VIRQ_TIMER, 0).unwrap();
        assert_eq!(t.send(v), Err(Errno::EINVAL));
        let p = t.bind_pirq(1).unwrap();
        assert_eq!(t.send(p), Err(Errno::EINVAL));
        assert_eq!(t.send(0), Err(Errno::EINVAL));
        assert_eq!(t.send(100), Err(Errno::EINVAL), "closed");
        assert_eq!(t.send(1000), Err(Errno::EINVAL), "invalid");
    }

    #[test]
    fn unmask_through_the_table_uses_the_notified_vcpu() {
        let mut t = full();
        let mut w = SharedInfo::default();
        let p = t.alloc_unbound(0).unwrap();
        t.bind_vcpu(p, 1).unwrap();
        w.test_and_set_mask(p);
        let r = t.raise(&mut w, p).unwrap();
        assert_eq!((r.vcpu, r.notify), (1, Notify::Pending));
        let r = t.unmask(&mut w, p).unwrap();
        assert_eq!((r.port, r.vcpu, r.notify), (p, 1, Notify::Kick));
        assert!(!w.upcall_pending(0));
        assert!(w.upcall_pending(1));
        // Valid but closed ports may be unmasked; invalid ones may not.
        w.test_and_set_mask(77);
        assert_eq!(t.unmask(&mut w, 77).unwrap().notify, Notify::None);
        assert!(!w.is_masked(77));
        assert_eq!(t.unmask(&mut w, 500), Err(Errno::EINVAL));
    }

    #[test]
    fn raise_ignores_unbound_ports() {
        let t = full();
        let mut w = SharedInfo::default();
        assert_eq!(t.raise(&mut w, 0), None);
        assert_eq!(t.raise(&mut w, 5), None);
        assert_eq!(t.raise(&mut w, 5000), None);
        assert!(!w.is_pending(5));
    }

    #[test]
    fn raise_virq_per_vcpu_and_global() {
        let mut t = full();
        let mut w = SharedInfo::default();
        assert_eq!(t.raise_virq(&mut w, VIRQ_TIMER, 0), None, "not bound");
        let t0 = t.bind_virq(VIRQ_TIMER, 0).unwrap();
        let t1 = t.bind_virq(VIRQ_TIMER, 1).unwrap();
        let g = t.bind_virq(VIRQ_DOM_EXC, 0).unwrap();
        let r = t.raise_virq(&mut w, VIRQ_TIMER, 1).unwrap();
        assert_eq!((r.port, r.vcpu, r.notify), (t1, 1, Notify::Kick));
        let r = t.raise_virq(&mut w, VIRQ_TIMER, 0).unwrap();
        assert_eq!((r.port, r.vcpu, r.notify), (t0, 0, Notify::Kick));
        t.bind_vcpu(g, 1).unwrap();
        let r = t.raise_virq(&mut w, VIRQ_DOM_EXC, 0).unwrap();
        assert_eq!((r.port, r.vcpu, r.notify), (g, 1, Notify::Pending));
        assert_eq!(t.raise_virq(&mut w, NR_VIRQS, 0), None);
        assert_eq!(t.virq_port(VIRQ_TIMER, 40), None);
        // Vcpu 1 takes only its own ports from the shared word.
        let mine = (1 << t1) | (1 << g);
        let mut got = Vec::new();
        scan_with(
            &mut w,
            1,
            |word| if word == 0 { mine } else { 0 },
            |p| got.push(p),
        );
        assert_eq!(got, [t1, g]);
        got.clear();
        scan(&mut w, 0, |p| got.push(p));
        assert_eq!(got, [t0]);
    }

    #[test]
    fn reset_closes_everything() {
        let mut t = DomainPorts::new(1, 2);
        let mut w = SharedInfo::default();
        let a = t.alloc_unbound(1).unwrap();
        let _ = t.bind_interdomain_loopback(a).unwrap();
        t.bind_virq(VIRQ_TIMER, 1).unwrap();
        t.bind_ipi(0).unwrap();
        t.bind_pirq(6).unwrap();
        let mut r = DomainPorts::new(2, 1);
        let rp = r.alloc_unbound(1).unwrap();
        let x = bind_interdomain(&mut t, &mut r, rp).unwrap();
        for p in 1..=x {
            let _ = t.raise(&mut w, p);
        }
        let mut released = Vec::new();
        t.reset(&mut w, |rel| released.push(rel));
        assert_eq!(
            released,
            [
                Released::Pirq { pirq: 6 },
                Released::Peer {
                    dom: 2,
                    port: rp,
                    closed: x
                }
            ]
        );
        for p in 0..t.valid_ports() as Port {
            assert!(!t.state(p).unwrap().is_bound());
            assert!(!w.is_pending(p));
        }
        assert_eq!(t.state(0), Some(PortState::Reserved));
        assert_eq!(t.virq_port(VIRQ_TIMER, 1), None);
        assert_eq!(t.alloc_unbound(0), Ok(1));
        // The peer side, as the hypervisor would apply it.
        assert_eq!(r.peer_closed(rp, 1, x), Ok(()));
        assert_eq!(r.state(rp), Some(PortState::Unbound { remote_dom: 1 }));
    }

    #[test]
    fn interdomain_binding_rules() {
        let mut a = DomainPorts::new(1, 1);
        let mut b = DomainPorts::new(2, 1);
        let mut c = DomainPorts::new(3, 1);
        let open = b.alloc_unbound(1).unwrap();
        let for_c = b.alloc_unbound(3).unwrap();
        assert_eq!(bind_interdomain(&mut a, &mut b, for_c), Err(Errno::EINVAL));
        assert_eq!(bind_interdomain(&mut a, &mut b, 0), Err(Errno::EINVAL));
        assert_eq!(bind_interdomain(&mut a, &mut b, 50), Err(Errno::EINVAL));
        assert_eq!(bind_interdomain(&mut a, &mut b, 5000), Err(Errno::EINVAL));
        let lp = bind_interdomain(&mut a, &mut b, open).unwrap();
        assert_eq!(lp, 1, "failed attempts took no port");
        assert_eq!(
            b.state(open),
            Some(PortState::Interdomain {
                remote_dom: 1,
                remote_port: lp
            })
        );
        assert_eq!(
            bind_interdomain(&mut a, &mut b, open),
            Err(Errno::EINVAL),
            "taken"
        );
        assert_eq!(bind_interdomain(&mut c, &mut b, for_c), Ok(1));
        // Closing one end reverts the other to unbound for us, and we can rebind.
        let mut w = SharedInfo::default();
        let rel = a.close(&mut w, lp).unwrap();
        assert_eq!(
            rel,
            Released::Peer {
                dom: 2,
                port: open,
                closed: lp
            }
        );
        assert_eq!(b.peer_closed(open, 1, lp), Ok(()));
        assert_eq!(b.state(open), Some(PortState::Unbound { remote_dom: 1 }));
        assert_eq!(
            b.peer_closed(open, 1, lp),
            Err(Errno::EINVAL),
            "not connected"
        );
        assert_eq!(bind_interdomain(&mut a, &mut b, open), Ok(lp));
        // ENOSPC comes before the remote check.
        let mut tiny = PortTable::<2>::new(4, 1);
        tiny.alloc_unbound(0).unwrap();
        let mut big = PortTable::<2>::new(5, 1);
        assert_eq!(bind_interdomain(&mut tiny, &mut big, 1), Err(Errno::ENOSPC));
    }

    #[test]
    fn loopback_binding_and_close() {
        let mut t = DomainPorts::new(6, 1);
        let mut w = SharedInfo::default();
        let other = t.alloc_unbound(9).unwrap();
        assert_eq!(t.bind_interdomain_loopback(other), Err(Errno::EINVAL));
        let a = t.alloc_unbound(6).unwrap();
        let b = t.bind_interdomain_loopback(a).unwrap();
        assert_eq!(
            t.state(a),
            Some(PortState::Interdomain {
                remote_dom: 6,
                remote_port: b
            })
        );
        assert_eq!(t.close(&mut w, a), Ok(Released::Nothing));
        assert_eq!(t.state(b), Some(PortState::Unbound { remote_dom: 6 }));
        assert_eq!(t.bind_interdomain_loopback(b), Ok(a));
        let mut full = PortTable::<3>::new(6, 1);
        let u = full.alloc_unbound(6).unwrap();
        full.alloc_unbound(6).unwrap();
        assert_eq!(full.bind_interdomain_loopback(u), Err(Errno::ENOSPC));
    }

    #[test]
    fn pirq_binding() {
        let mut t = full();
        let p = t.bind_pirq(5).unwrap();
        assert_eq!(t.bind_pirq(5), Err(Errno::EEXIST));
        assert_eq!(t.pirq_port(5), Some(p));
        t.unbind_pirq_port(p);
        assert_eq!(t.pirq_port(5), None);
        assert_eq!(t.state(p), Some(PortState::Closed));
        let u = t.alloc_unbound(0).unwrap();
        t.unbind_pirq_port(u);
        assert_eq!(t.state(u), Some(PortState::Unbound { remote_dom: 0 }));
    }
}
