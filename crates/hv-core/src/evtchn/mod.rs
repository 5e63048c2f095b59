//! Event channels (XEN-PV-ABI.md §5, §8): the pure part.
//!
//! Three layers, each usable on its own:
//!
//! * [`delivery`]: the two-level delivery algorithm over the `evtchn_pending`,
//!   `evtchn_mask` and per-VCPU `evtchn_pending_sel` / `evtchn_upcall_pending` /
//!   `evtchn_upcall_mask` fields of the shared-info page, written against the
//!   [`EventWords`] trait so that the hypervisor applies it to the real page with
//!   atomic bit operations, the guest runtime to its own view of the same page,
//!   and tests to a plain [`SharedInfo`](xen_abi::shared_info::SharedInfo)
//!   value (non-atomic). Includes the guest's upcall scan loop ([`scan`]).
//! * [`table`]: one domain's port table ([`PortTable`]): port states, notified
//!   VCPUs, VIRQ→port maps, and every `EVTCHNOP_*` rule that concerns one domain
//!   (plus the two-table steps of interdomain binding and closing).
//! * [`dispatch`](mod@dispatch): `event_channel_op` (#32) and `event_channel_op_compat` (#16)
//!   argument decoding, execution against the tables and the OUT fields, so the
//!   hypervisor copies bytes in and out and supplies an [`EvtchnEnv`].
//!
//! What the hypervisor supplies:
//!
//! * an [`EventWords`] over each domain's real shared-info page using atomic
//!   instructions (`lock bts`/`lock btr` on the `evtchn_pending`/`evtchn_mask`
//!   words at offsets 2048/2176 and on `evtchn_pending_sel` at `64·v + 4`,
//!   `xchg` to take the selector and to set `evtchn_upcall_pending` at `64·v`,
//!   plain byte accesses for `evtchn_upcall_mask` at `64·v + 1`);
//! * one [`DomainPorts`] per domain, kept consistent under its event lock;
//! * an [`EvtchnEnv`]: other domains' tables, PIRQ binding, and
//!   [`EvtchnEnv::notify`], which kicks a VCPU on [`Notify::Kick`] (wake it if
//!   blocked, IPI its CPU if running elsewhere) and wakes pollers;
//! * on every exit to guest mode, [`upcall_needed`] → build the event-callback
//!   frame and set `evtchn_upcall_mask`; `SCHEDOP_block` sleeps only while
//!   [`upcall_needed`] is false;
//! * VIRQs raised with [`PortTable::raise_virq`] (e.g. `VIRQ_TIMER` from the
//!   timer interrupt), then the same kick.
//!
//! Errno choices follow Xen's `common/event_channel.c` (4.1, unchanged in later
//! 2-level releases); where a choice is not obvious it is documented at the
//! operation.
#![forbid(unsafe_code)]

pub mod delivery;
pub mod dispatch;
pub mod table;

pub use delivery::{
    EventWords, Notify, Port, Raised, VcpuId, guest_unmask, scan, scan_with, set_pending, unmask,
    upcall_needed,
};
pub use dispatch::{
    COMPAT_ARG_OFFSET, COMPAT_OP_SIZE, EvtchnCall, EvtchnEnv, Request, arg_size, dispatch,
};
pub use table::{
    DomainPorts, PORT_BUCKET, PortState, PortTable, Released, SendTarget, bind_interdomain,
};
