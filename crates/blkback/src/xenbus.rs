//! The vbd back end's XenBus side (XEN-PV-ABI.md §11.2–§11.3), as pure
//! functions: what the toolstack's nodes mean, what the back end writes, what
//! it reads from the front end, and which step to take for a pair of states.
//!
//! The back-end directory is `/local/domain/<be>/backend/vbd/<fe>/<devid>/`.
//! The toolstack writes `params`, `type`, `mode`, `online`, `frontend`,
//! `frontend-id` and `state = 1`; the back end opens the device and writes
//! [`feature_nodes`] then `state = 2` (InitWait); once the front end is
//! Initialised (or Connected) it reads [`FrontendRing`] (`ring-ref`,
//! `event-channel`, `protocol`), maps the ring, binds the event channel,
//! writes [`connect_nodes`] and `state = 4` (Connected). Teardown follows Linux's
//! xen-blkback: the front end's Closing is mirrored, its Closed disconnects the
//! ring and closes the back end, and a Closed device that is no longer
//! `online` (detached by the toolstack) or whose front end disappeared is
//! removed.
//!
//! A front end's bad values never panic and never leave the back end half
//! connected: they yield [`Step::Fatal`], which the caller carries out as Xen's
//! `xenbus_dev_fatal` does (an `error` node, then Closing).

use core::fmt;

use xen_abi::blkif::{BLKIF_SECTOR_SIZE, VDISK_CDROM, VDISK_READONLY, XEN_IO_PROTO_ABI_X86_32};
use xen_abi::types::{EvtchnPort, GrantRef};
use xen_abi::xenbus::XenbusState;

use crate::request::VbdParams;

/// The back-end directory of a vbd, relative to the back-end domain's home
/// (`/local/domain/<be>/`): `backend/vbd/<fe>/<devid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendDir {
    /// The front end's domid.
    pub frontend: u16,
    /// The virtual-device number.
    pub devid: u32,
}

impl fmt::Display for BackendDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend/vbd/{}/{}", self.frontend, self.devid)
    }
}

/// Where `xenbus_dev_fatal` leaves its message for a vbd, relative to the
/// back-end domain's home: `error/backend/vbd/<fe>/<devid>/error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorNode(pub BackendDir);

impl fmt::Display for ErrorNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error/{}/error", self.0)
    }
}

/// Backing store kind (`type` node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// `phy`: a disk or partition of dom0.
    Phy,
    /// `file`: an image file on dom0's filesystem.
    File,
}

/// The backing store the toolstack asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VbdTarget<'a> {
    /// `type`.
    pub kind: TargetKind,
    /// `params`: device or file path.
    pub path: &'a str,
    /// `mode = r`.
    pub readonly: bool,
}

/// Why the toolstack's nodes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetError {
    /// A node is missing.
    Missing(&'static str),
    /// `type` is not `phy` or `file` (e.g. `tap`).
    UnsupportedType,
    /// `mode` is not `r` or `w`.
    BadMode,
    /// `params` is empty.
    EmptyParams,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Missing(n) => write!(f, "missing backend node {n}"),
            TargetError::UnsupportedType => f.write_str("unsupported backend type"),
            TargetError::BadMode => f.write_str("mode is neither r nor w"),
            TargetError::EmptyParams => f.write_str("empty params"),
        }
    }
}

/// Strips one trailing NUL (xenstore values read with a terminator).
fn value(v: &[u8]) -> &[u8] {
    v.strip_suffix(b"\0").unwrap_or(v)
}

impl<'a> VbdTarget<'a> {
    /// Reads the toolstack's `type`, `params` and `mode` nodes.
    pub fn parse(
        type_: Option<&'a str>,
        params: Option<&'a str>,
        mode: Option<&'a str>,
    ) -> Result<Self, TargetError> {
        let kind = match type_.ok_or(TargetError::Missing("type"))? {
            "phy" => TargetKind::Phy,
            "file" => TargetKind::File,
            _ => return Err(TargetError::UnsupportedType),
        };
        let path = params.ok_or(TargetError::Missing("params"))?;
        if path.is_empty() {
            return Err(TargetError::EmptyParams);
        }
        let readonly = match mode.ok_or(TargetError::Missing("mode"))? {
            "r" => true,
            "w" | "w!" => false,
            _ => return Err(TargetError::BadMode),
        };
        Ok(VbdTarget {
            kind,
            path,
            readonly,
        })
    }
}

/// A node the back end writes in its directory, with a decimal value.
pub type Node = (&'static str, u64);

/// Written before InitWait: what the back end offers.
pub fn feature_nodes(vbd: &VbdParams) -> [Node; 4] {
    [
        ("feature-flush-cache", u64::from(vbd.flush)),
        ("feature-barrier", u64::from(vbd.barrier)),
        ("feature-persistent", 0),
        ("max-ring-page-order", 0),
    ]
}

/// The `info` bits of a vbd.
pub const fn info(vbd: &VbdParams) -> u32 {
    let mut i = 0;
    if vbd.readonly {
        i |= VDISK_READONLY;
    }
    if vbd.cdrom {
        i |= VDISK_CDROM;
    }
    i
}

/// Written when connecting, before Connected: the device's properties.
pub fn connect_nodes(vbd: &VbdParams) -> [Node; 3] {
    [
        ("sectors", vbd.sectors),
        ("info", u64::from(info(vbd))),
        ("sector-size", BLKIF_SECTOR_SIZE as u64),
    ]
}

/// The transport the front end published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendRing {
    /// `ring-ref`: grant of the ring page.
    pub ring_ref: GrantRef,
    /// `event-channel`: the front end's unbound port for us.
    pub event_channel: EvtchnPort,
}

/// Why the front end's transport nodes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendError {
    /// A required node is missing.
    Missing(&'static str),
    /// A node is not a decimal `u32`.
    NotANumber(&'static str),
    /// `protocol` names an ABI other than `x86_32-abi` (no translation is
    /// implemented; an absent node means ours, x86_32).
    UnsupportedProtocol,
    /// `ring-page-order` above the advertised `max-ring-page-order` (0).
    RingTooLarge,
    /// `multi-queue-num-queues` above 1 (no `multi-queue-max-queues` offered).
    TooManyQueues,
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrontendError::Missing(n) => write!(f, "reading {n}: missing"),
            FrontendError::NotANumber(n) => write!(f, "reading {n}: not a number"),
            FrontendError::UnsupportedProtocol => f.write_str("unknown fe protocol"),
            FrontendError::RingTooLarge => f.write_str("ring-page-order too big"),
            FrontendError::TooManyQueues => f.write_str("too many queues requested"),
        }
    }
}

/// A strict decimal `u32` (digits only, no sign, no spaces).
fn decimal(v: &[u8]) -> Option<u32> {
    let v = value(v);
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok()
}

/// The front end's nodes read when connecting, as raw values (`None` =
/// absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct FrontendNodes<'a> {
    /// `ring-ref`.
    pub ring_ref: Option<&'a [u8]>,
    /// `event-channel`.
    pub event_channel: Option<&'a [u8]>,
    /// `protocol`.
    pub protocol: Option<&'a [u8]>,
    /// `ring-page-order`.
    pub ring_page_order: Option<&'a [u8]>,
    /// `multi-queue-num-queues`.
    pub num_queues: Option<&'a [u8]>,
}

impl FrontendNodes<'_> {
    /// Validates the transport nodes (Linux's `connect_ring` checks).
    pub fn parse(&self) -> Result<FrontendRing, FrontendError> {
        let num = |v: Option<&[u8]>, name| {
            decimal(v.ok_or(FrontendError::Missing(name))?).ok_or(FrontendError::NotANumber(name))
        };
        if let Some(p) = self.protocol
            && value(p) != XEN_IO_PROTO_ABI_X86_32.as_bytes()
        {
            return Err(FrontendError::UnsupportedProtocol);
        }
        if self.ring_page_order.is_some() && num(self.ring_page_order, "ring-page-order")? > 0 {
            return Err(FrontendError::RingTooLarge);
        }
        if self.num_queues.is_some() && num(self.num_queues, "multi-queue-num-queues")? > 1 {
            return Err(FrontendError::TooManyQueues);
        }
        Ok(FrontendRing {
            ring_ref: num(self.ring_ref, "ring-ref")?,
            event_channel: num(self.event_channel, "event-channel")?,
        })
    }
}

/// The front end's `state` node as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendState {
    /// The node (or the front directory) does not exist.
    Absent,
    /// Not a state number.
    Invalid,
    /// A state.
    State(XenbusState),
}

impl FrontendState {
    /// Parses a `state` node (`None` = absent).
    pub fn parse(v: Option<&[u8]>) -> Self {
        match v {
            None => FrontendState::Absent,
            Some(v) => XenbusState::parse(v).map_or(FrontendState::Invalid, FrontendState::State),
        }
    }
}

/// Where opening the backing store stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Not tried yet (e.g. the toolstack's nodes are still being written).
    Pending,
    /// Open: [`feature_nodes`] can be written.
    Open,
    /// Could not be opened (missing image, bad nodes).
    Failed,
}

/// What the back end knows when a watch fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Situation {
    /// Our `state` as last written.
    pub backend: XenbusState,
    /// The front end's `state`.
    pub frontend: FrontendState,
    /// The backing store.
    pub device: DeviceStatus,
    /// The ring is mapped and the event channel bound.
    pub ring_connected: bool,
    /// The toolstack's `online` node is `1`.
    pub online: bool,
}

/// The step to take; the caller does it, writes the nodes, and asks again
/// when a watch fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do now.
    Wait,
    /// Write [`feature_nodes`], then `state = InitWait`.
    PublishFeatures,
    /// Read [`FrontendNodes`]; on success map the ring, bind the event channel,
    /// write [`connect_nodes`], then `state = Connected`; on a
    /// [`FrontendError`], do [`Step::Fatal`] with it instead.
    Connect,
    /// Write `state = <it>` and nothing else.
    Switch(XenbusState),
    /// Unmap the ring and unbind the event channel (if connected), then
    /// `state = Closed`.
    Disconnect,
    /// The device is gone: release it; the toolstack removes the nodes.
    Remove,
    /// `xenbus_dev_fatal`: write the message to the `error` node, disconnect
    /// if connected, `state = Closing`.
    Fatal(FatalReason),
}

/// Why [`Step::Fatal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatalReason {
    /// The front end wrote a state the protocol does not use here.
    BadFrontendState,
    /// The backing store could not be opened.
    DeviceUnavailable,
}

impl fmt::Display for FatalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FatalReason::BadFrontendState => f.write_str("saw an invalid state at frontend"),
            FatalReason::DeviceUnavailable => f.write_str("backing store could not be opened"),
        }
    }
}

/// The next step for `s` (Linux xen-blkback's `frontend_changed`, plus its
/// probe: features then InitWait once the device is open).
pub fn next_step(s: &Situation) -> Step {
    use XenbusState as X;
    if s.backend == X::Initialising {
        return match s.device {
            DeviceStatus::Pending => Step::Wait,
            DeviceStatus::Open => Step::PublishFeatures,
            DeviceStatus::Failed => Step::Fatal(FatalReason::DeviceUnavailable),
        };
    }
    let fe = match s.frontend {
        // The front directory may come after ours, or be gone.
        FrontendState::Absent | FrontendState::State(X::Unknown) => {
            return if s.ring_connected {
                Step::Disconnect
            } else if s.backend == X::InitWait && s.frontend == FrontendState::Absent {
                Step::Wait
            } else {
                Step::Remove
            };
        }
        FrontendState::Invalid => return fatal_once(s.backend),
        FrontendState::State(fe) => fe,
    };
    match fe {
        X::Initialising | X::InitWait => {
            if s.backend == X::Closed && s.online {
                // The front end starts over (kexec, reboot of its driver).
                Step::Switch(X::InitWait)
            } else {
                Step::Wait
            }
        }
        X::Initialised | X::Connected => match s.backend {
            X::Connected if s.ring_connected => Step::Wait,
            X::InitWait | X::Initialised | X::Connected => Step::Connect,
            _ => Step::Wait,
        },
        X::Closing => match s.backend {
            X::Closing | X::Closed => Step::Wait,
            _ => Step::Switch(X::Closing),
        },
        X::Closed => {
            if s.ring_connected || s.backend != X::Closed {
                Step::Disconnect
            } else if !s.online {
                Step::Remove
            } else {
                Step::Wait
            }
        }
        X::Unknown | X::Reconfiguring | X::Reconfigured => fatal_once(s.backend),
    }
}

/// A bad front-end state is reported once: a back end already closing waits
/// for the front end (or the toolstack) instead.
fn fatal_once(backend: XenbusState) -> Step {
    match backend {
        XenbusState::Closing | XenbusState::Closed => Step::Wait,
        _ => Step::Fatal(FatalReason::BadFrontendState),
    }
}
