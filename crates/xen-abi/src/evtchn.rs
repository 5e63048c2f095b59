//! Event-channel operations and VIRQ numbers (XEN-PV-ABI.md §8).
//!
//! `event_channel_op(cmd, arg)` (#32) takes one of the structs below; the old
//! `event_channel_op_compat(&evtchn_op)` (#16) wraps it in [`EvtchnOp`].

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::domid::DomId;
use crate::types::EvtchnPort;

/// Connect to a port another domain allocated unbound for us.
pub const EVTCHNOP_BIND_INTERDOMAIN: u32 = 0;
/// Bind a VIRQ.
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
/// Bind a physical IRQ.
pub const EVTCHNOP_BIND_PIRQ: u32 = 2;
/// Close a port.
pub const EVTCHNOP_CLOSE: u32 = 3;
/// Notify the remote end.
pub const EVTCHNOP_SEND: u32 = 4;
/// Query a port.
pub const EVTCHNOP_STATUS: u32 = 5;
/// Allocate a port another domain may bind.
pub const EVTCHNOP_ALLOC_UNBOUND: u32 = 6;
/// Allocate an intra-domain IPI port.
pub const EVTCHNOP_BIND_IPI: u32 = 7;
/// Re-target a port's notifications to another VCPU.
pub const EVTCHNOP_BIND_VCPU: u32 = 8;
/// Unmask a port and re-raise it if pending.
pub const EVTCHNOP_UNMASK: u32 = 9;
/// Close all ports of a domain.
pub const EVTCHNOP_RESET: u32 = 10;
/// (4.4+ FIFO ABI, unused by the 2-level ABI) `init_control`.
pub const EVTCHNOP_INIT_CONTROL: u32 = 11;
/// (4.4+ FIFO ABI) `expand_array`.
pub const EVTCHNOP_EXPAND_ARRAY: u32 = 12;
/// (4.4+ FIFO ABI) `set_priority`.
pub const EVTCHNOP_SET_PRIORITY: u32 = 13;
/// (4.4+ FIFO ABI) `reset_cont`.
pub const EVTCHNOP_RESET_CONT: u32 = 14;

/// `evtchn_status.status`: port is free.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// Allocated, waiting for the remote domain to bind.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// Connected to a remote port.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// Bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// Bound to a VIRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// Bound as an IPI port.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `evtchn_bind_pirq.flags`: the IRQ may be shared.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

/// `struct evtchn_bind_interdomain` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindInterdomain {
    /// IN: remote domain (`DOMID_SELF` = loopback).
    pub remote_dom: DomId,
    /// Padding.
    pub _pad: u16,
    /// IN: remote port.
    pub remote_port: EvtchnPort,
    /// OUT: local port.
    pub local_port: EvtchnPort,
}
assert_layout!(
    EvtchnBindInterdomain,
    size = 12,
    align = 4,
    remote_dom = 0,
    remote_port = 4,
    local_port = 8,
);

/// `struct evtchn_bind_virq` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVirq {
    /// IN: `VIRQ_*`.
    pub virq: u32,
    /// IN: VCPU to notify.
    pub vcpu: u32,
    /// OUT: port.
    pub port: EvtchnPort,
}
assert_layout!(
    EvtchnBindVirq,
    size = 12,
    align = 4,
    virq = 0,
    vcpu = 4,
    port = 8
);

/// `struct evtchn_bind_pirq` (12 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindPirq {
    /// IN: physical IRQ.
    pub pirq: u32,
    /// IN: `BIND_PIRQ__WILL_SHARE`.
    pub flags: u32,
    /// OUT: port.
    pub port: EvtchnPort,
}
assert_layout!(
    EvtchnBindPirq,
    size = 12,
    align = 4,
    pirq = 0,
    flags = 4,
    port = 8
);

/// `struct evtchn_close` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnClose {
    /// IN: port.
    pub port: EvtchnPort,
}
assert_layout!(EvtchnClose, size = 4, align = 4, port = 0);

/// `struct evtchn_send` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnSend {
    /// IN: port.
    pub port: EvtchnPort,
}
assert_layout!(EvtchnSend, size = 4, align = 4, port = 0);

/// `struct evtchn_status` (24 bytes). The union at offset 16 is read through the
/// accessors according to `status`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnStatus {
    /// IN: domain to query.
    pub dom: DomId,
    /// Padding.
    pub _pad: u16,
    /// IN: port to query.
    pub port: EvtchnPort,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: VCPU notified.
    pub vcpu: u32,
    /// OUT: union `{unbound.dom, interdomain.{dom, port}, pirq, virq}`.
    pub u: [u32; 2],
}
assert_layout!(
    EvtchnStatus,
    size = 24,
    align = 4,
    dom = 0,
    port = 4,
    status = 8,
    vcpu = 12,
    u = 16,
);

impl EvtchnStatus {
    /// `u.unbound.dom`: the domain allowed to bind.
    pub const fn unbound_dom(&self) -> DomId {
        self.u[0] as DomId
    }

    /// `u.interdomain.{dom, port}`: the connected remote end.
    pub const fn interdomain(&self) -> (DomId, EvtchnPort) {
        (self.u[0] as DomId, self.u[1])
    }

    /// `u.pirq`.
    pub const fn pirq(&self) -> u32 {
        self.u[0]
    }

    /// `u.virq`.
    pub const fn virq(&self) -> u32 {
        self.u[0]
    }

    /// Sets `u.unbound.dom`.
    pub const fn set_unbound(&mut self, dom: DomId) {
        self.u = [dom as u32, 0];
    }

    /// Sets `u.interdomain`.
    pub const fn set_interdomain(&mut self, dom: DomId, port: EvtchnPort) {
        self.u = [dom as u32, port];
    }

    /// Sets `u.pirq` or `u.virq`.
    pub const fn set_irq(&mut self, irq: u32) {
        self.u = [irq, 0];
    }
}

/// `struct evtchn_alloc_unbound` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnAllocUnbound {
    /// IN: domain to allocate in (`DOMID_SELF` unless privileged).
    pub dom: DomId,
    /// IN: domain that may bind the port.
    pub remote_dom: DomId,
    /// OUT: port.
    pub port: EvtchnPort,
}
assert_layout!(
    EvtchnAllocUnbound,
    size = 8,
    align = 4,
    dom = 0,
    remote_dom = 2,
    port = 4
);

/// `struct evtchn_bind_ipi` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindIpi {
    /// IN: VCPU to notify.
    pub vcpu: u32,
    /// OUT: port.
    pub port: EvtchnPort,
}
assert_layout!(EvtchnBindIpi, size = 8, align = 4, vcpu = 0, port = 4);

/// `struct evtchn_bind_vcpu` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnBindVcpu {
    /// IN: port.
    pub port: EvtchnPort,
    /// IN: new VCPU to notify.
    pub vcpu: u32,
}
assert_layout!(EvtchnBindVcpu, size = 8, align = 4, port = 0, vcpu = 4);

/// `struct evtchn_unmask` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnUnmask {
    /// IN: port.
    pub port: EvtchnPort,
}
assert_layout!(EvtchnUnmask, size = 4, align = 4, port = 0);

/// `struct evtchn_reset` (2 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnReset {
    /// IN: domain whose ports to close.
    pub dom: DomId,
}
assert_layout!(EvtchnReset, size = 2, align = 2, dom = 0);

/// Size of the union in `struct evtchn_op`.
pub const EVTCHN_OP_UNION_SIZE: usize = 24;

/// `struct evtchn_op` (28 bytes on i386), the argument of
/// `event_channel_op_compat` (#16): a command and the matching struct.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct EvtchnOp {
    /// `EVTCHNOP_*`.
    pub cmd: u32,
    /// The union of the per-command structs.
    pub u: [u8; EVTCHN_OP_UNION_SIZE],
}
assert_layout!(EvtchnOp, size = 28, align = 4, cmd = 0, u = 4);

impl EvtchnOp {
    /// Wraps `arg` for command `cmd`.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, arg: &T) -> Self {
        let mut op = Self {
            cmd,
            u: [0; EVTCHN_OP_UNION_SIZE],
        };
        crate::types::write_union(&mut op.u, arg);
        op
    }

    /// The union read as `T` (the struct of `cmd`).
    pub fn payload<T: FromBytes + IntoBytes>(&self) -> T {
        crate::types::read_union(&self.u)
    }

    /// Stores `arg` in the union (the rest is zeroed).
    pub fn set_payload<T: IntoBytes + Immutable>(&mut self, arg: &T) {
        crate::types::write_union(&mut self.u, arg);
    }
}

// ---- VIRQs (§8.2) ----

/// Per-VCPU: the timer fired.
pub const VIRQ_TIMER: u32 = 0;
/// Per-VCPU: request to dump debug state.
pub const VIRQ_DEBUG: u32 = 1;
/// Global: bytes arrived on Xen's emergency console (dom0).
pub const VIRQ_CONSOLE: u32 = 2;
/// Global: a domain shut down or crashed (dom0/toolstack).
pub const VIRQ_DOM_EXC: u32 = 3;
/// Global: trace buffers.
pub const VIRQ_TBUF: u32 = 4;
/// Xen 3.0.0's name of VIRQ 4.
pub const VIRQ_PARITY_ERR: u32 = 4;
/// Xen 3.0.0's VIRQ 5 (later unused).
pub const VIRQ_IO_ERR: u32 = 5;
/// Global: debugger.
pub const VIRQ_DEBUGGER: u32 = 6;
/// Per-VCPU: oprofile.
pub const VIRQ_XENOPROF: u32 = 7;
/// Global: Xen's console ring has data (dom0).
pub const VIRQ_CON_RING: u32 = 8;
/// Global: physical CPU state changed.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// Global: memory event.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// (later Xen) Argo.
pub const VIRQ_ARGO: u32 = 11;
/// (later Xen) low memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// (later Xen) PMU.
pub const VIRQ_XENPMU: u32 = 13;
/// First architecture-specific VIRQ.
pub const VIRQ_ARCH_0: u32 = 16;
/// x86: machine check (`VIRQ_ARCH_0`).
pub const VIRQ_MCA: u32 = VIRQ_ARCH_0;
/// Last architecture-specific VIRQ.
pub const VIRQ_ARCH_7: u32 = 23;
/// Number of VIRQs.
pub const NR_VIRQS: u32 = 24;

/// Whether `virq` is bound per VCPU (once per VCPU) rather than globally (once per
/// domain, initially on VCPU 0).
pub const fn virq_is_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_op_wraps_payloads() {
        let s = EvtchnStatus {
            dom: 0x7FF0,
            port: 5,
            status: EVTCHNSTAT_INTERDOMAIN,
            ..Default::default()
        };
        let mut op = EvtchnOp::new(EVTCHNOP_STATUS, &s);
        assert_eq!(op.payload::<EvtchnStatus>(), s);
        let mut s2 = op.payload::<EvtchnStatus>();
        s2.set_interdomain(3, 9);
        op.set_payload(&s2);
        assert_eq!(op.payload::<EvtchnStatus>().interdomain(), (3, 9));
        // interdomain.port lives at offset 20 of the status struct, 24 of the op.
        assert_eq!(&op.as_bytes()[24..28], &9u32.to_le_bytes());
        let a = EvtchnAllocUnbound {
            dom: 0x7FF0,
            remote_dom: 0,
            port: 0,
        };
        let op = EvtchnOp::new(EVTCHNOP_ALLOC_UNBOUND, &a);
        assert_eq!(&op.as_bytes()[4..8], &[0xF0, 0x7F, 0, 0]);
        assert!(op.u[8..].iter().all(|&b| b == 0));
    }

    #[test]
    fn virq_kinds() {
        assert!(virq_is_per_vcpu(VIRQ_TIMER));
        assert!(!virq_is_per_vcpu(VIRQ_DOM_EXC));
        assert!(!virq_is_per_vcpu(VIRQ_CONSOLE));
        assert_eq!(NR_VIRQS, VIRQ_ARCH_7 + 1);
    }
}
