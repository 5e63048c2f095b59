//! `event_channel_op(cmd, arg)` (#32) and `event_channel_op_compat(&op)` (#16)
//! (XEN-PV-ABI.md §8.1): argument bytes in, OUT fields out.
//!
//! The hypervisor's handler is:
//!
//! ```text
//! #32: let mut call = EvtchnCall::new(cmd)?;              // -ENOSYS
//!      copy_from_guest(call.arg_mut(), arg)?;             // -EFAULT
//! #16: let mut op = [0; COMPAT_OP_SIZE];
//!      copy_from_guest(&mut op, arg)?;                    // -EFAULT
//!      let mut call = EvtchnCall::from_compat(&op)?;      // -ENOSYS
//! both: dispatch(privileged, &mut table, &mut words, &mut env, &mut call)?;
//!      if call.writes_back() {
//!          copy_to_guest(arg + call.out_offset(), call.arg())?;   // -EFAULT
//!      }
//!      return 0
//! ```
//!
//! As in Xen, the whole struct is written back (IN fields unchanged) and only on
//! success for the commands with OUT fields; in the compat form it lands in the
//! union at offset 4. Commands 11–14 (the FIFO ABI) and unknown commands are
//! `-ENOSYS` in both forms, which makes guests fall back to the 2-level ABI.

use core::mem::{offset_of, size_of};

use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::errno::Errno;
use xen_abi::evtchn::{
    BIND_PIRQ__WILL_SHARE, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_BIND_IPI,
    EVTCHNOP_BIND_PIRQ, EVTCHNOP_BIND_VCPU, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE, EVTCHNOP_RESET,
    EVTCHNOP_SEND, EVTCHNOP_STATUS, EVTCHNOP_UNMASK, EVTCHNSTAT_CLOSED, EVTCHNSTAT_IPI,
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindPirq, EvtchnBindVcpu,
    EvtchnBindVirq, EvtchnClose, EvtchnOp, EvtchnReset, EvtchnSend, EvtchnStatus, EvtchnUnmask,
};

use super::delivery::{EventWords, Port, Raised, VcpuId};
use super::table::{PortTable, Released, SendTarget, bind_interdomain};

/// Size of `struct evtchn_op`, the argument of `event_channel_op_compat`.
pub const COMPAT_OP_SIZE: usize = size_of::<EvtchnOp>();
/// Offset of the per-command struct inside `struct evtchn_op`.
pub const COMPAT_ARG_OFFSET: usize = offset_of!(EvtchnOp, u);

/// Size of the argument struct of `cmd`, or `None` if Oxen does not implement
/// the command (`-ENOSYS`).
pub const fn arg_size(cmd: u32) -> Option<usize> {
    Some(match cmd {
        EVTCHNOP_BIND_INTERDOMAIN => size_of::<EvtchnBindInterdomain>(),
        EVTCHNOP_BIND_VIRQ => size_of::<EvtchnBindVirq>(),
        EVTCHNOP_BIND_PIRQ => size_of::<EvtchnBindPirq>(),
        EVTCHNOP_CLOSE => size_of::<EvtchnClose>(),
        EVTCHNOP_SEND => size_of::<EvtchnSend>(),
        EVTCHNOP_STATUS => size_of::<EvtchnStatus>(),
        EVTCHNOP_ALLOC_UNBOUND => size_of::<EvtchnAllocUnbound>(),
        EVTCHNOP_BIND_IPI => size_of::<EvtchnBindIpi>(),
        EVTCHNOP_BIND_VCPU => size_of::<EvtchnBindVcpu>(),
        EVTCHNOP_UNMASK => size_of::<EvtchnUnmask>(),
        EVTCHNOP_RESET => size_of::<EvtchnReset>(),
        _ => return None,
    })
}

/// A decoded request (the IN fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `EVTCHNOP_bind_interdomain`.
    BindInterdomain {
        /// Remote domain (`DOMID_SELF` = loopback).
        remote_dom: DomId,
        /// Its unbound port.
        remote_port: Port,
    },
    /// `EVTCHNOP_bind_virq`.
    BindVirq {
        /// `VIRQ_*`.
        virq: u32,
        /// VCPU to notify.
        vcpu: VcpuId,
    },
    /// `EVTCHNOP_bind_pirq`.
    BindPirq {
        /// Physical IRQ.
        pirq: u32,
        /// `BIND_PIRQ__WILL_SHARE`.
        flags: u32,
    },
    /// `EVTCHNOP_close`.
    Close {
        /// Port.
        port: Port,
    },
    /// `EVTCHNOP_send`.
    Send {
        /// Port.
        port: Port,
    },
    /// `EVTCHNOP_status`.
    Status {
        /// Domain queried (`DOMID_SELF` or, if privileged, another).
        dom: DomId,
        /// Port.
        port: Port,
    },
    /// `EVTCHNOP_alloc_unbound`.
    AllocUnbound {
        /// Domain to allocate in (`DOMID_SELF` or, if privileged, another).
        dom: DomId,
        /// Domain that may bind (`DOMID_SELF` = the caller).
        remote_dom: DomId,
    },
    /// `EVTCHNOP_bind_ipi`.
    BindIpi {
        /// VCPU to notify.
        vcpu: VcpuId,
    },
    /// `EVTCHNOP_bind_vcpu`.
    BindVcpu {
        /// Port.
        port: Port,
        /// New VCPU.
        vcpu: VcpuId,
    },
    /// `EVTCHNOP_unmask`.
    Unmask {
        /// Port.
        port: Port,
    },
    /// `EVTCHNOP_reset`.
    Reset {
        /// Domain (`DOMID_SELF` or, if privileged, another).
        dom: DomId,
    },
}

/// One call's argument: the command and its struct's bytes, in the compat
/// `struct evtchn_op` representation for both hypercalls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvtchnCall {
    op: EvtchnOp,
    size: usize,
    compat: bool,
}

impl EvtchnCall {
    /// A `#32` call of `cmd` with a zeroed argument; fill it through
    /// [`arg_mut`](Self::arg_mut). `-ENOSYS` for a command Oxen does not know.
    pub fn new(cmd: u32) -> Result<Self, Errno> {
        let size = arg_size(cmd).ok_or(Errno::ENOSYS)?;
        Ok(Self {
            op: EvtchnOp {
                cmd,
                u: [0; xen_abi::evtchn::EVTCHN_OP_UNION_SIZE],
            },
            size,
            compat: false,
        })
    }

    /// A `#32` call of `cmd` with argument bytes `arg` (at least the struct's
    /// size; extra bytes are ignored, fewer are `-EFAULT`).
    pub fn with_arg(cmd: u32, arg: &[u8]) -> Result<Self, Errno> {
        let mut call = Self::new(cmd)?;
        let n = call.size;
        call.arg_mut()
            .copy_from_slice(arg.get(..n).ok_or(Errno::EFAULT)?);
        Ok(call)
    }

    /// A `#16` call from the guest's whole `struct evtchn_op`. `-ENOSYS` for a
    /// command Oxen does not know.
    pub fn from_compat(op: &[u8; COMPAT_OP_SIZE]) -> Result<Self, Errno> {
        let (cmd, u) = op.split_at(COMPAT_ARG_OFFSET);
        let cmd = u32::from_le_bytes([cmd[0], cmd[1], cmd[2], cmd[3]]);
        let mut call = Self::new(cmd)?;
        call.op.u.copy_from_slice(u);
        call.compat = true;
        Ok(call)
    }

    /// `EVTCHNOP_*`.
    pub const fn cmd(&self) -> u32 {
        self.op.cmd
    }

    /// Whether this came through `event_channel_op_compat`.
    pub const fn is_compat(&self) -> bool {
        self.compat
    }

    /// The argument struct's bytes (after [`dispatch`]: with the OUT fields).
    pub fn arg(&self) -> &[u8] {
        &self.op.u[..self.size]
    }

    /// The argument struct's bytes, to copy the guest's struct into.
    pub fn arg_mut(&mut self) -> &mut [u8] {
        &mut self.op.u[..self.size]
    }

    /// Whether the command has OUT fields, so that on success [`arg`](Self::arg)
    /// is copied back to the guest.
    pub const fn writes_back(&self) -> bool {
        matches!(
            self.op.cmd,
            EVTCHNOP_BIND_INTERDOMAIN
                | EVTCHNOP_BIND_VIRQ
                | EVTCHNOP_BIND_PIRQ
                | EVTCHNOP_STATUS
                | EVTCHNOP_ALLOC_UNBOUND
                | EVTCHNOP_BIND_IPI
        )
    }

    /// Where [`arg`](Self::arg) goes back, relative to the hypercall's pointer:
    /// 0 for `#32`, [`COMPAT_ARG_OFFSET`] for `#16`.
    pub const fn out_offset(&self) -> usize {
        if self.compat { COMPAT_ARG_OFFSET } else { 0 }
    }

    /// The decoded IN fields.
    pub fn request(&self) -> Result<Request, Errno> {
        let op = &self.op;
        Ok(match op.cmd {
            EVTCHNOP_BIND_INTERDOMAIN => {
                let a: EvtchnBindInterdomain = op.payload();
                Request::BindInterdomain {
                    remote_dom: a.remote_dom,
                    remote_port: a.remote_port,
                }
            }
            EVTCHNOP_BIND_VIRQ => {
                let a: EvtchnBindVirq = op.payload();
                Request::BindVirq {
                    virq: a.virq,
                    vcpu: a.vcpu,
                }
            }
            EVTCHNOP_BIND_PIRQ => {
                let a: EvtchnBindPirq = op.payload();
                Request::BindPirq {
                    pirq: a.pirq,
                    flags: a.flags,
                }
            }
            EVTCHNOP_CLOSE => Request::Close {
                port: op.payload::<EvtchnClose>().port,
            },
            EVTCHNOP_SEND => Request::Send {
                port: op.payload::<EvtchnSend>().port,
            },
            EVTCHNOP_STATUS => {
                let a: EvtchnStatus = op.payload();
                Request::Status {
                    dom: a.dom,
                    port: a.port,
                }
            }
            EVTCHNOP_ALLOC_UNBOUND => {
                let a: EvtchnAllocUnbound = op.payload();
                Request::AllocUnbound {
                    dom: a.dom,
                    remote_dom: a.remote_dom,
                }
            }
            EVTCHNOP_BIND_IPI => Request::BindIpi {
                vcpu: op.payload::<EvtchnBindIpi>().vcpu,
            },
            EVTCHNOP_BIND_VCPU => {
                let a: EvtchnBindVcpu = op.payload();
                Request::BindVcpu {
                    port: a.port,
                    vcpu: a.vcpu,
                }
            }
            EVTCHNOP_UNMASK => Request::Unmask {
                port: op.payload::<EvtchnUnmask>().port,
            },
            EVTCHNOP_RESET => Request::Reset {
                dom: op.payload::<EvtchnReset>().dom,
            },
            _ => return Err(Errno::ENOSYS),
        })
    }

    /// Stores the OUT port of a bind or alloc command.
    fn set_port(&mut self, port: Port) {
        let op = &mut self.op;
        match op.cmd {
            EVTCHNOP_BIND_INTERDOMAIN => {
                let mut a: EvtchnBindInterdomain = op.payload();
                a.local_port = port;
                op.set_payload(&a);
            }
            EVTCHNOP_BIND_VIRQ => {
                let mut a: EvtchnBindVirq = op.payload();
                a.port = port;
                op.set_payload(&a);
            }
            EVTCHNOP_BIND_PIRQ => {
                let mut a: EvtchnBindPirq = op.payload();
                a.port = port;
                op.set_payload(&a);
            }
            EVTCHNOP_ALLOC_UNBOUND => {
                let mut a: EvtchnAllocUnbound = op.payload();
                a.port = port;
                op.set_payload(&a);
            }
            EVTCHNOP_BIND_IPI => {
                let mut a: EvtchnBindIpi = op.payload();
                a.port = port;
                op.set_payload(&a);
            }
            _ => {}
        }
    }

    /// Stores the OUT fields of `EVTCHNOP_status`. Like Xen, the union is left
    /// as the guest passed it for closed and IPI ports.
    fn set_status(&mut self, st: &EvtchnStatus) {
        let mut a: EvtchnStatus = self.op.payload();
        a.status = st.status;
        a.vcpu = st.vcpu;
        if st.status != EVTCHNSTAT_CLOSED && st.status != EVTCHNSTAT_IPI {
            a.u = st.u;
        }
        self.op.set_payload(&a);
    }
}

/// What [`dispatch`] needs from the hypervisor besides the caller's own table.
pub trait EvtchnEnv<const N: usize> {
    /// The hypervisor's (atomic) view of a domain's shared-info event fields.
    type Words: EventWords;

    /// Runs `f` on domain `dom`'s table and shared-info page; `-ESRCH` if there
    /// is no such domain. Never asked for the calling domain (its table is
    /// [`dispatch`]'s `local`).
    fn with_domain<R>(
        &mut self,
        dom: DomId,
        f: impl FnOnce(&mut PortTable<N>, &mut Self::Words) -> R,
    ) -> Result<R, Errno>;

    /// A port of `dom` was raised or re-raised: if `raised.notify` is
    /// [`Kick`](super::Notify::Kick), kick the VCPU (wake it if blocked, IPI its
    /// CPU if it is running elsewhere); on any change, wake VCPUs of `dom` polling
    /// that port (`SCHEDOP_poll`). Called after `with_domain` has returned.
    fn notify(&mut self, dom: DomId, raised: Raised);

    /// Binds physical IRQ `pirq` to the calling domain `dom` on `port` (after
    /// the table took the port): range and permission checks (`-EINVAL`,
    /// `-EPERM`, `-EBUSY`) and the physical routing. By default nobody may.
    fn bind_pirq(
        &mut self,
        dom: DomId,
        pirq: u32,
        port: Port,
        will_share: bool,
    ) -> Result<(), Errno> {
        let _ = (dom, pirq, port, will_share);
        Err(Errno::EPERM)
    }

    /// Unbinds physical IRQ `pirq` from domain `dom` (its port was closed).
    fn unbind_pirq(&mut self, dom: DomId, pirq: u32) {
        let _ = (dom, pirq);
    }
}

/// Runs `f` on the table named by `dom`: the caller's own for `DOMID_SELF` or its
/// own id, another domain's only for a privileged caller (`-ESRCH` first, then
/// `-EPERM`, as Xen's domain lookup then permission check).
fn on_domain<const N: usize, E: EvtchnEnv<N>, R>(
    privileged: bool,
    local: &mut PortTable<N>,
    words: &mut E::Words,
    env: &mut E,
    dom: DomId,
    f: impl FnOnce(&mut PortTable<N>, &mut E::Words) -> Result<R, Errno>,
) -> Result<R, Errno> {
    if dom == DOMID_SELF || dom == local.dom() {
        f(local, words)
    } else {
        env.with_domain(dom, |t, w| {
            if privileged {
                f(t, w)
            } else {
                Err(Errno::EPERM)
            }
        })?
    }
}

/// Undoes what closing a port of `closing` left elsewhere.
fn release<const N: usize, E: EvtchnEnv<N>>(
    local: &mut PortTable<N>,
    env: &mut E,
    closing: DomId,
    released: Released,
) {
    match released {
        Released::Nothing => {}
        Released::Pirq { pirq } => env.unbind_pirq(closing, pirq),
        Released::Peer { dom, port, closed } => {
            // The peer's state must match (both tables are consistent by
            // construction); a vanished peer has nothing to revert.
            if dom == local.dom() {
                let _ = local.peer_closed(port, closing, closed);
            } else {
                let _ = env.with_domain(dom, |t, _| t.peer_closed(port, closing, closed));
            }
        }
    }
}

/// Raises `port` of the caller and tells the hypervisor.
fn raise_local<const N: usize, E: EvtchnEnv<N>>(
    local: &PortTable<N>,
    words: &mut E::Words,
    env: &mut E,
    port: Port,
) {
    if let Some(r) = local.raise(words, port) {
        env.notify(local.dom(), r);
    }
}

/// Executes `call` for the domain owning `local` (whose shared-info event fields
/// are `words`), filling its OUT fields. `privileged` lets the caller name other
/// domains in `alloc_unbound`, `status` and `reset`.
///
/// Locking: `local` and every table `env.with_domain` hands out must stay
/// consistent for the whole call, because both ends of an interdomain channel
/// change together (bind, close, reset) and `send` reads the peer's notified
/// VCPU. One event-channel lock for all domains, taken with interrupts off
/// (timer and PIRQ raises come from interrupt context), gives that for free.
/// With per-domain locks the hypervisor must first take the caller's and the
/// peer's locks in domain-id order: the peer is named by the request
/// (`bind_interdomain`'s `remote_dom`; `alloc_unbound`, `status`, `reset`'s
/// `dom`) or found with `local.state(port)` (`close`, `send`), and `reset` may
/// reach every peer.
pub fn dispatch<const N: usize, E: EvtchnEnv<N>>(
    privileged: bool,
    local: &mut PortTable<N>,
    words: &mut E::Words,
    env: &mut E,
    call: &mut EvtchnCall,
) -> Result<(), Errno> {
    let me = local.dom();
    match call.request()? {
        Request::AllocUnbound { dom, remote_dom } => {
            let remote = if remote_dom == DOMID_SELF {
                me
            } else {
                remote_dom
            };
            let port = on_domain(privileged, local, words, env, dom, |t, _| {
                t.alloc_unbound(remote)
            })?;
            call.set_port(port);
        }
        Request::BindInterdomain {
            remote_dom,
            remote_port,
        } => {
            let port = if remote_dom == DOMID_SELF || remote_dom == me {
                local.bind_interdomain_loopback(remote_port)?
            } else {
                env.with_domain(remote_dom, |remote, _| {
                    bind_interdomain(local, remote, remote_port)
                })??
            };
            // Sends to the unbound end were dropped: always notify once.
            raise_local(local, words, env, port);
            call.set_port(port);
        }
        Request::BindVirq { virq, vcpu } => {
            let port = local.bind_virq(virq, vcpu)?;
            call.set_port(port);
        }
        Request::BindPirq { pirq, flags } => {
            let port = local.bind_pirq(pirq)?;
            let will_share = flags & BIND_PIRQ__WILL_SHARE != 0;
            if let Err(e) = env.bind_pirq(local.dom(), pirq, port, will_share) {
                local.unbind_pirq_port(port);
                return Err(e);
            }
            call.set_port(port);
        }
        Request::BindIpi { vcpu } => {
            let port = local.bind_ipi(vcpu)?;
            call.set_port(port);
        }
        Request::Close { port } => {
            let released = local.close(words, port)?;
            release(local, env, me, released);
        }
        Request::Send { port } => match local.send(port)? {
            SendTarget::Local { port, .. } => raise_local(local, words, env, port),
            SendTarget::Remote { dom, port } => {
                // The peer cannot vanish while connected (closing takes both
                // tables); if it somehow has, the send still succeeded.
                if let Ok(Some(r)) = env.with_domain(dom, |t, w| t.raise(w, port)) {
                    env.notify(dom, r);
                }
            }
            SendTarget::Dropped => {}
        },
        Request::Status { dom, port } => {
            let st = on_domain(privileged, local, words, env, dom, |t, _| t.status(port))?;
            call.set_status(&st);
        }
        Request::BindVcpu { port, vcpu } => local.bind_vcpu(port, vcpu)?,
        Request::Unmask { port } => {
            let r = local.unmask(words, port)?;
            if r.notify.changed() {
                env.notify(me, r);
            }
        }
        Request::Reset { dom } => {
            let valid = on_domain(privileged, local, words, env, dom, |t, _| {
                Ok((t.dom(), t.valid_ports()))
            })?;
            let (target, nports) = valid;
            for port in 0..nports as Port {
                let closed = if target == me {
                    local.close(words, port)
                } else {
                    env.with_domain(target, |t, w| t.close(w, port))
                        .and_then(|r| r)
                };
                if let Ok(released) = closed {
                    release(local, env, target, released);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evtchn::delivery::Notify;
    use crate::evtchn::table::{DomainPorts, PortState};
    use std::vec::Vec;
    use xen_abi::evtchn::{
        EVTCHNOP_EXPAND_ARRAY, EVTCHNOP_INIT_CONTROL, EVTCHNOP_RESET_CONT, EVTCHNOP_SET_PRIORITY,
        EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_UNBOUND, EVTCHNSTAT_VIRQ, VIRQ_DOM_EXC, VIRQ_TIMER,
    };
    use xen_abi::shared_info::SharedInfo;

    /// Other domains and a log of what the hypervisor was asked to do.
    struct Env {
        doms: Vec<(DomainPorts, SharedInfo)>,
        notified: Vec<(DomId, Raised)>,
        pirqs_ok: bool,
        pirqs: Vec<(DomId, u32, bool)>,
    }

    impl EvtchnEnv<1024> for Env {
        type Words = SharedInfo;

        fn with_domain<R>(
            &mut self,
            dom: DomId,
            f: impl FnOnce(&mut DomainPorts, &mut SharedInfo) -> R,
        ) -> Result<R, Errno> {
            let (t, w) = self
                .doms
                .iter_mut()
                .find(|(t, _)| t.dom() == dom)
                .ok_or(Errno::ESRCH)?;
            Ok(f(t, w))
        }

        fn notify(&mut self, dom: DomId, raised: Raised) {
            self.notified.push((dom, raised));
        }

        fn bind_pirq(
            &mut self,
            dom: DomId,
            pirq: u32,
            port: Port,
            will_share: bool,
        ) -> Result<(), Errno> {
            if self.pirqs_ok {
                assert_eq!(port, 1, "the port the table took");
                self.pirqs.push((dom, pirq, will_share));
                Ok(())
            } else {
                Err(Errno::EPERM)
            }
        }

        fn unbind_pirq(&mut self, dom: DomId, pirq: u32) {
            self.pirqs.retain(|&(d, p, _)| (d, p) != (dom, pirq));
        }
    }

    /// The caller is domain 1 with two VCPUs; domain 2 exists.
    struct World {
        local: DomainPorts,
        words: SharedInfo,
        env: Env,
    }

    impl World {
        fn new() -> Self {
            Self {
                local: DomainPorts::new(1, 2),
                words: SharedInfo::default(),
                env: Env {
                    doms: std::vec![(DomainPorts::new(2, 1), SharedInfo::default())],
                    notified: Vec::new(),
                    pirqs_ok: false,
                    pirqs: Vec::new(),
                },
            }
        }

        fn call_priv(&mut self, privileged: bool, call: &mut EvtchnCall) -> Result<(), Errno> {
            dispatch(
                privileged,
                &mut self.local,
                &mut self.words,
                &mut self.env,
                call,
            )
        }

        fn remote(&mut self) -> &mut DomainPorts {
            &mut self.env.doms[0].0
        }
    }

    /// A #32 call with `$arg` as the struct, made by a caller with privilege
    /// `$priv`; evaluates to the struct as written back. (A macro because the
    /// struct's zerocopy bounds cannot be named here.)
    macro_rules! op_as {
        ($w:expr, $priv:expr, $cmd:expr, $arg:expr $(,)?) => {{
            let mut out = $arg;
            let wrapped = EvtchnOp::new($cmd, &out);
            EvtchnCall::with_arg($cmd, &wrapped.u).and_then(|mut call| {
                $w.call_priv($priv, &mut call)?;
                assert_eq!(call.out_offset(), 0);
                let mut back = EvtchnOp::default();
                back.u[..call.arg().len()].copy_from_slice(call.arg());
                out = back.payload();
                Ok(out)
            })
        }};
    }

    macro_rules! op {
        ($w:expr, $cmd:expr, $arg:expr $(,)?) => {
            op_as!($w, false, $cmd, $arg)
        };
    }

    #[test]
    fn arg_sizes_match_the_abi() {
        assert_eq!(arg_size(EVTCHNOP_BIND_INTERDOMAIN), Some(12));
        assert_eq!(arg_size(EVTCHNOP_BIND_VIRQ), Some(12));
        assert_eq!(arg_size(EVTCHNOP_BIND_PIRQ), Some(12));
        assert_eq!(arg_size(EVTCHNOP_CLOSE), Some(4));
        assert_eq!(arg_size(EVTCHNOP_SEND), Some(4));
        assert_eq!(arg_size(EVTCHNOP_STATUS), Some(24));
        assert_eq!(arg_size(EVTCHNOP_ALLOC_UNBOUND), Some(8));
        assert_eq!(arg_size(EVTCHNOP_BIND_IPI), Some(8));
        assert_eq!(arg_size(EVTCHNOP_BIND_VCPU), Some(8));
        assert_eq!(arg_size(EVTCHNOP_UNMASK), Some(4));
        assert_eq!(arg_size(EVTCHNOP_RESET), Some(2));
        assert_eq!((COMPAT_OP_SIZE, COMPAT_ARG_OFFSET), (28, 4));
    }

    #[test]
    fn unknown_and_fifo_commands_are_enosys() {
        for cmd in [
            EVTCHNOP_INIT_CONTROL,
            EVTCHNOP_EXPAND_ARRAY,
            EVTCHNOP_SET_PRIORITY,
            EVTCHNOP_RESET_CONT,
            15,
            u32::MAX,
        ] {
            assert_eq!(EvtchnCall::new(cmd), Err(Errno::ENOSYS));
            let mut op = [0u8; COMPAT_OP_SIZE];
            op[..4].copy_from_slice(&cmd.to_le_bytes());
            assert_eq!(EvtchnCall::from_compat(&op), Err(Errno::ENOSYS));
        }
        assert_eq!(
            EvtchnCall::with_arg(EVTCHNOP_STATUS, &[0; 23]),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn writes_back_only_commands_with_out_fields() {
        let out = [
            EVTCHNOP_BIND_INTERDOMAIN,
            EVTCHNOP_BIND_VIRQ,
            EVTCHNOP_BIND_PIRQ,
            EVTCHNOP_STATUS,
            EVTCHNOP_ALLOC_UNBOUND,
            EVTCHNOP_BIND_IPI,
        ];
        for cmd in 0..=10 {
            let call = EvtchnCall::new(cmd).unwrap();
            assert_eq!(call.writes_back(), out.contains(&cmd), "cmd {cmd}");
            assert_eq!(call.arg().len(), arg_size(cmd).unwrap());
            assert!(!call.is_compat());
        }
    }

    #[test]
    fn requests_decode_every_field() {
        let mut c = EvtchnCall::new(EVTCHNOP_BIND_INTERDOMAIN).unwrap();
        c.arg_mut()
            .copy_from_slice(&[2, 0, 0xAA, 0xBB, 9, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            c.request(),
            Ok(Request::BindInterdomain {
                remote_dom: 2,
                remote_port: 9
            })
        );
        let cases: [(u32, &[u8], Request); 10] = [
            (
                EVTCHNOP_BIND_VIRQ,
                &[3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                Request::BindVirq { virq: 3, vcpu: 1 },
            ),
            (
                EVTCHNOP_BIND_PIRQ,
                &[7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                Request::BindPirq { pirq: 7, flags: 1 },
            ),
            (EVTCHNOP_CLOSE, &[5, 0, 0, 0], Request::Close { port: 5 }),
            (EVTCHNOP_SEND, &[0, 1, 0, 0], Request::Send { port: 256 }),
            (
                EVTCHNOP_STATUS,
                &[
                    0xF0, 0x7F, 0, 0, 4, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
                ],
                Request::Status {
                    dom: DOMID_SELF,
                    port: 4,
                },
            ),
            (
                EVTCHNOP_ALLOC_UNBOUND,
                &[0xF0, 0x7F, 3, 0, 0, 0, 0, 0],
                Request::AllocUnbound {
                    dom: DOMID_SELF,
                    remote_dom: 3,
                },
            ),
            (
                EVTCHNOP_BIND_IPI,
                &[1, 0, 0, 0, 0, 0, 0, 0],
                Request::BindIpi { vcpu: 1 },
            ),
            (
                EVTCHNOP_BIND_VCPU,
                &[6, 0, 0, 0, 1, 0, 0, 0],
                Request::BindVcpu { port: 6, vcpu: 1 },
            ),
            (EVTCHNOP_UNMASK, &[8, 0, 0, 0], Request::Unmask { port: 8 }),
            (EVTCHNOP_RESET, &[2, 0], Request::Reset { dom: 2 }),
        ];
        for (cmd, bytes, req) in cases {
            assert_eq!(EvtchnCall::with_arg(cmd, bytes).unwrap().request(), Ok(req));
        }
    }

    #[test]
    fn alloc_unbound_for_self_and_other_domains() {
        let mut w = World::new();
        let a = EvtchnAllocUnbound {
            dom: DOMID_SELF,
            remote_dom: DOMID_SELF,
            port: 0xDEAD,
        };
        let out = op!(w, EVTCHNOP_ALLOC_UNBOUND, a).unwrap();
        assert_eq!(
            (out.dom, out.remote_dom, out.port),
            (DOMID_SELF, DOMID_SELF, 1)
        );
        assert_eq!(w.local.state(1), Some(PortState::Unbound { remote_dom: 1 }));
        // Naming itself by id is allowed.
        let out = op!(
            w,
            EVTCHNOP_ALLOC_UNBOUND,
            EvtchnAllocUnbound {
                dom: 1,
                remote_dom: 2,
                port: 0
            }
        );
        assert_eq!(out.unwrap().port, 2);
        // Another domain: privileged only, ESRCH before EPERM.
        let other = EvtchnAllocUnbound {
            dom: 2,
            remote_dom: DOMID_SELF,
            port: 0,
        };
        assert_eq!(op!(w, EVTCHNOP_ALLOC_UNBOUND, other), Err(Errno::EPERM));
        let missing = EvtchnAllocUnbound { dom: 9, ..other };
        assert_eq!(op!(w, EVTCHNOP_ALLOC_UNBOUND, missing), Err(Errno::ESRCH));
        assert_eq!(
            op_as!(w, true, EVTCHNOP_ALLOC_UNBOUND, missing),
            Err(Errno::ESRCH)
        );
        let out = op_as!(w, true, EVTCHNOP_ALLOC_UNBOUND, other).unwrap();
        assert_eq!(out.port, 1);
        // DOMID_SELF as remote means the caller, not the target.
        assert_eq!(
            w.remote().state(1),
            Some(PortState::Unbound { remote_dom: 1 })
        );
    }

    #[test]
    fn bind_interdomain_to_another_domain_raises_the_new_port() {
        let mut w = World::new();
        let rport = w.remote().alloc_unbound(1).unwrap();
        let other = w.remote().alloc_unbound(5).unwrap();
        let b = EvtchnBindInterdomain {
            remote_dom: 2,
            remote_port: rport,
            ..Default::default()
        };
        let out = op!(w, EVTCHNOP_BIND_INTERDOMAIN, b).unwrap();
        assert_eq!(
            (out.remote_dom, out.remote_port, out.local_port),
            (2, rport, 1)
        );
        assert_eq!(
            w.env.notified,
            [(
                1,
                Raised {
                    port: 1,
                    vcpu: 0,
                    notify: Notify::Kick
                }
            )]
        );
        assert!(w.words.is_pending(1));
        let s = w.remote().status(rport).unwrap();
        assert_eq!(
            (s.status, s.interdomain()),
            (EVTCHNSTAT_INTERDOMAIN, (1, 1))
        );
        let bad = EvtchnBindInterdomain {
            remote_port: other,
            ..b
        };
        assert_eq!(op!(w, EVTCHNOP_BIND_INTERDOMAIN, bad), Err(Errno::EINVAL));
        let gone = EvtchnBindInterdomain { remote_dom: 9, ..b };
        assert_eq!(op!(w, EVTCHNOP_BIND_INTERDOMAIN, gone), Err(Errno::ESRCH));
    }

    #[test]
    fn loopback_send_and_close_through_dispatch() {
        let mut w = World::new();
        let a = op!(
            w,
            EVTCHNOP_ALLOC_UNBOUND,
            EvtchnAllocUnbound {
                dom: DOMID_SELF,
                remote_dom: DOMID_SELF,
                port: 0,
            },
        )
        .unwrap()
        .port;
        let b = op!(
            w,
            EVTCHNOP_BIND_INTERDOMAIN,
            EvtchnBindInterdomain {
                remote_dom: DOMID_SELF,
                remote_port: a,
                ..Default::default()
            },
        )
        .unwrap()
        .local_port;
        assert_eq!(b, 2);
        w.words.evtchn_pending[0] = 0;
        w.env.notified.clear();
        op!(w, EVTCHNOP_BIND_VCPU, EvtchnBindVcpu { port: a, vcpu: 1 }).unwrap();
        op!(w, EVTCHNOP_SEND, EvtchnSend { port: b }).unwrap();
        assert!(w.words.is_pending(a));
        assert_eq!(w.env.notified.len(), 1);
        assert_eq!((w.env.notified[0].1.port, w.env.notified[0].1.vcpu), (a, 1));
        op!(w, EVTCHNOP_CLOSE, EvtchnClose { port: b }).unwrap();
        assert_eq!(w.local.state(a), Some(PortState::Unbound { remote_dom: 1 }));
        // Send on the now-unbound end is dropped but succeeds.
        op!(w, EVTCHNOP_SEND, EvtchnSend { port: a }).unwrap();
        assert_eq!(w.env.notified.len(), 1);
        assert_eq!(
            op!(w, EVTCHNOP_SEND, EvtchnSend { port: b }),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            op!(w, EVTCHNOP_CLOSE, EvtchnClose { port: b }),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn send_to_another_domain_raises_there() {
        let mut w = World::new();
        let rport = w.remote().alloc_unbound(1).unwrap();
        let lport = bind_interdomain(&mut w.local, &mut w.env.doms[0].0, rport).unwrap();
        op!(w, EVTCHNOP_SEND, EvtchnSend { port: lport }).unwrap();
        assert!(w.env.doms[0].1.is_pending(rport));
        assert!(!w.words.is_pending(rport));
        assert_eq!(
            w.env.notified,
            [(
                2,
                Raised {
                    port: rport,
                    vcpu: 0,
                    notify: Notify::Kick
                }
            )]
        );
        // Closing our end reverts theirs to unbound for us.
        op!(w, EVTCHNOP_CLOSE, EvtchnClose { port: lport }).unwrap();
        assert_eq!(
            w.remote().state(rport),
            Some(PortState::Unbound { remote_dom: 1 })
        );
    }

    #[test]
    fn virq_ipi_vcpu_and_unmask_through_dispatch() {
        let mut w = World::new();
        let v = op!(
            w,
            EVTCHNOP_BIND_VIRQ,
            EvtchnBindVirq {
                virq: VIRQ_TIMER,
                vcpu: 1,
                port: 0
            }
        )
        .unwrap();
        assert_eq!((v.virq, v.vcpu, v.port), (VIRQ_TIMER, 1, 1));
        assert_eq!(
            op!(
                w,
                EVTCHNOP_BIND_VIRQ,
                EvtchnBindVirq {
                    virq: VIRQ_TIMER,
                    vcpu: 1,
                    port: 0
                }
            ),
            Err(Errno::EEXIST)
        );
        assert_eq!(
            op!(
                w,
                EVTCHNOP_BIND_VIRQ,
                EvtchnBindVirq {
                    virq: VIRQ_DOM_EXC,
                    vcpu: 1,
                    port: 0
                }
            ),
            Err(Errno::EINVAL)
        );
        let i = op!(w, EVTCHNOP_BIND_IPI, EvtchnBindIpi { vcpu: 1, port: 0 }).unwrap();
        assert_eq!(i.port, 2);
        assert_eq!(
            op!(w, EVTCHNOP_BIND_IPI, EvtchnBindIpi { vcpu: 5, port: 0 }),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            op!(w, EVTCHNOP_BIND_VCPU, EvtchnBindVcpu { port: 2, vcpu: 0 }),
            Err(Errno::EINVAL)
        );
        // Masked IPI: the send records it, the unmask delivers it.
        w.words.test_and_set_mask(2);
        op!(w, EVTCHNOP_SEND, EvtchnSend { port: 2 }).unwrap();
        assert_eq!(w.env.notified[0].1.notify, Notify::Pending);
        op!(w, EVTCHNOP_UNMASK, EvtchnUnmask { port: 2 }).unwrap();
        assert_eq!(
            w.env.notified[1],
            (
                1,
                Raised {
                    port: 2,
                    vcpu: 1,
                    notify: Notify::Kick
                }
            )
        );
        // Unmasking an unmasked port tells nobody.
        op!(w, EVTCHNOP_UNMASK, EvtchnUnmask { port: 2 }).unwrap();
        assert_eq!(w.env.notified.len(), 2);
        assert_eq!(
            op!(w, EVTCHNOP_UNMASK, EvtchnUnmask { port: 4000 }),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn status_self_and_other_domains() {
        let mut w = World::new();
        w.local.bind_virq(VIRQ_DOM_EXC, 0).unwrap();
        let q = EvtchnStatus {
            dom: DOMID_SELF,
            port: 1,
            ..Default::default()
        };
        let s = op!(w, EVTCHNOP_STATUS, q).unwrap();
        assert_eq!(
            (s.dom, s.port, s.status, s.vcpu, s.virq()),
            (DOMID_SELF, 1, EVTCHNSTAT_VIRQ, 0, VIRQ_DOM_EXC)
        );
        // A closed port keeps the union the guest passed, like Xen.
        let q2 = EvtchnStatus {
            port: 7,
            u: [0x1111, 0x2222],
            ..q
        };
        let s = op!(w, EVTCHNOP_STATUS, q2).unwrap();
        assert_eq!((s.status, s.u), (EVTCHNSTAT_CLOSED, [0x1111, 0x2222]));
        assert_eq!(
            op!(w, EVTCHNOP_STATUS, EvtchnStatus { port: 700, ..q }),
            Err(Errno::EINVAL)
        );
        w.remote().alloc_unbound(0).unwrap();
        let other = EvtchnStatus { dom: 2, ..q };
        assert_eq!(op!(w, EVTCHNOP_STATUS, other), Err(Errno::EPERM));
        let s = op_as!(w, true, EVTCHNOP_STATUS, other).unwrap();
        assert_eq!(
            (s.dom, s.status, s.unbound_dom()),
            (2, EVTCHNSTAT_UNBOUND, 0)
        );
        assert_eq!(
            op_as!(w, true, EVTCHNOP_STATUS, EvtchnStatus { dom: 3, ..q }),
            Err(Errno::ESRCH)
        );
    }

    #[test]
    fn pirq_binding_needs_the_hypervisor() {
        let mut w = World::new();
        let b = EvtchnBindPirq {
            pirq: 10,
            flags: BIND_PIRQ__WILL_SHARE,
            port: 0,
        };
        assert_eq!(op!(w, EVTCHNOP_BIND_PIRQ, b), Err(Errno::EPERM));
        assert_eq!(w.local.pirq_port(10), None, "port given back");
        w.env.pirqs_ok = true;
        assert_eq!(op!(w, EVTCHNOP_BIND_PIRQ, b).unwrap().port, 1);
        assert_eq!(w.env.pirqs, [(1, 10, true)]);
        assert_eq!(op!(w, EVTCHNOP_BIND_PIRQ, b), Err(Errno::EEXIST));
        op!(w, EVTCHNOP_CLOSE, EvtchnClose { port: 1 }).unwrap();
        assert!(w.env.pirqs.is_empty());
    }

    #[test]
    fn reset_self_and_privileged_reset_of_another_domain() {
        let mut w = World::new();
        // Domain 2 connects to us; we also hold a VIRQ and an IPI.
        let ours = w.local.alloc_unbound(2).unwrap();
        let theirs = bind_interdomain(&mut w.env.doms[0].0, &mut w.local, ours).unwrap();
        w.local.bind_virq(VIRQ_TIMER, 0).unwrap();
        w.local.bind_ipi(1).unwrap();
        op!(w, EVTCHNOP_RESET, EvtchnReset { dom: DOMID_SELF }).unwrap();
        for p in 0..128 {
            assert!(!w.local.state(p).unwrap().is_bound());
        }
        assert_eq!(
            w.remote().state(theirs),
            Some(PortState::Unbound { remote_dom: 1 })
        );
        // Reconnect, then a privileged caller resets domain 2: our end reverts.
        let ours = bind_interdomain(&mut w.local, &mut w.env.doms[0].0, theirs).unwrap();
        assert_eq!(
            op!(w, EVTCHNOP_RESET, EvtchnReset { dom: 2 }),
            Err(Errno::EPERM)
        );
        assert_eq!(
            op!(w, EVTCHNOP_RESET, EvtchnReset { dom: 8 }),
            Err(Errno::ESRCH)
        );
        op_as!(w, true, EVTCHNOP_RESET, EvtchnReset { dom: 2 }).unwrap();
        assert_eq!(w.remote().state(theirs), Some(PortState::Closed));
        assert_eq!(
            w.local.state(ours),
            Some(PortState::Unbound { remote_dom: 2 })
        );
    }

    #[test]
    fn compat_form_reads_the_union_and_writes_back_at_offset_4() {
        let mut w = World::new();
        let op = EvtchnOp::new(EVTCHNOP_BIND_IPI, &EvtchnBindIpi { vcpu: 1, port: 0 });
        let mut bytes = [0u8; COMPAT_OP_SIZE];
        bytes[..4].copy_from_slice(&op.cmd.to_le_bytes());
        bytes[4..].copy_from_slice(&op.u);
        let mut call = EvtchnCall::from_compat(&bytes).unwrap();
        assert!(call.is_compat());
        assert_eq!(call.cmd(), EVTCHNOP_BIND_IPI);
        assert_eq!(call.request(), Ok(Request::BindIpi { vcpu: 1 }));
        w.call_priv(false, &mut call).unwrap();
        assert!(call.writes_back());
        assert_eq!(call.out_offset(), 4);
        // The guest's struct after the copy-back: port 1 at union offset 4.
        let off = call.out_offset();
        bytes[off..off + call.arg().len()].copy_from_slice(call.arg());
        assert_eq!(&bytes[4..8], &1u32.to_le_bytes());
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        assert_eq!(w.local.state(1), Some(PortState::Ipi));
        // Compat close of a closed port: EINVAL, nothing to write back.
        let mut close = [0u8; COMPAT_OP_SIZE];
        close[..4].copy_from_slice(&EVTCHNOP_CLOSE.to_le_bytes());
        close[4] = 9;
        let mut call = EvtchnCall::from_compat(&close).unwrap();
        assert_eq!(w.call_priv(false, &mut call), Err(Errno::EINVAL));
        assert!(!call.writes_back());
    }
}
