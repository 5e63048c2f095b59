//! dom0's block back end: every vbd the toolstack put under
//! `/local/domain/0/backend/vbd/<fe>/<devid>` (XEN-PV-ABI.md §11.3), driven
//! through `blkback`'s state machine and served with `blkback::Blkback`.
//!
//! Owns, per vbd: our XenBus state as last written, the opened backing store
//! (until it is handed to the connection), and the connection (the mapped
//! ring, the grant-copy binding, dom0's bound port). The kernel supplies the
//! platform through [`VbdHost`]: opening a `phy:` device, mapping the ring
//! grant, grant copies with a bounce buffer, event channels.
//!
//! dom0 is xenstored itself, so "watches" are a re-evaluation: [`Vbds::poll`]
//! is called after every xenstore change (a store ring served, a domain
//! created or released) and runs `blkback::xenbus::next_step` for every vbd
//! until it says `Wait`. [`Vbds::on_event`] serves one ring batch
//! (`DEFAULT_BUDGET` requests) when the front end's event arrives and says
//! whether more is waiting, so the event loop serves consoles and the shell
//! between batches.
//!
//! Invariants: a vbd's ring is unmapped and its port closed before the vbd
//! is forgotten; a front end's bad values end in `Fatal` (an `error` node,
//! Closing), a broken ring in the same, reported once per vbd; no step loop
//! runs more than [`MAX_STEPS`] steps per poll.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use blkback::xenbus::{
    BackendDir, DeviceStatus, ErrorNode, FatalReason, FrontendNodes, FrontendState, Situation,
    Step, VbdTarget, connect_nodes, feature_nodes, next_step,
};
use blkback::{Blkback, BlockDevice, DEFAULT_BUDGET, GrantCopy, VbdParams};
use xen_abi::domid::DomId;
use xen_abi::types::{EvtchnPort, GrantRef};
use xen_abi::xenbus::XenbusState;
use xen_ring::{BackRing, SharedMemory};
use xenstored::Xenstored;

/// Steps taken for one vbd in one poll at most (a full handshake is 3).
pub const MAX_STEPS: usize = 8;

/// Where dom0's back ends live in xenstore.
pub const BACKEND_ROOT: &str = "/local/domain/0/backend/vbd";

/// What the kernel provides.
pub trait VbdHost {
    /// A mapped ring page.
    type Ring: SharedMemory;
    /// Grant copies against one front end.
    type Grants: GrantCopy;
    /// An opened backing store.
    type Disk: BlockDevice;
    /// Opens the backing store the toolstack named.
    fn open(&mut self, target: &VbdTarget<'_>) -> Result<Self::Disk, String>;
    /// Maps grant `gref` of `domid` (the ring page).
    fn map_ring(&mut self, domid: DomId, gref: GrantRef) -> Result<Self::Ring, String>;
    /// Unmaps a ring mapped by [`VbdHost::map_ring`].
    fn unmap_ring(&mut self, ring: Self::Ring);
    /// The grant-copy binding for front end `domid`.
    fn grants(&mut self, domid: DomId) -> Self::Grants;
    /// Binds dom0's end of the front end's unbound `port`.
    fn bind(&mut self, domid: DomId, port: EvtchnPort) -> Result<EvtchnPort, String>;
    /// Sends an event on dom0's `port`.
    fn notify(&mut self, port: EvtchnPort);
    /// Closes dom0's `port`.
    fn close(&mut self, port: EvtchnPort);
    /// Makes the event loop serve `port` as if its event had arrived.
    fn kick(&mut self, port: EvtchnPort);
}

struct Conn<H: VbdHost> {
    blk: Blkback<H::Ring, H::Grants, H::Disk>,
    port: EvtchnPort,
}

struct Vbd<H: VbdHost> {
    dir: BackendDir,
    state: XenbusState,
    device: DeviceStatus,
    disk: Option<H::Disk>,
    params: Option<VbdParams>,
    conn: Option<Conn<H>>,
    /// Removed (step `Remove`): nothing more is done until its nodes go.
    removed: bool,
    /// A broken ring was reported.
    reported: bool,
}

/// Every vbd dom0 serves.
pub struct Vbds<H: VbdHost> {
    vbds: Vec<Vbd<H>>,
}

impl<H: VbdHost> Default for Vbds<H> {
    fn default() -> Self {
        Self::new()
    }
}

fn read_str(xs: &mut Xenstored, path: &str) -> Option<String> {
    xs.read(path)
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
        .map(|s| String::from(s.trim_end_matches('\0')))
}

/// A summary line of one vbd, for the operator (`xm block-list`-like).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VbdInfo {
    pub frontend: DomId,
    pub devid: u32,
    pub state: XenbusState,
    pub connected: bool,
    pub requests: u64,
    pub refused: u64,
}

impl<H: VbdHost> Vbds<H> {
    pub fn new() -> Self {
        Vbds { vbds: Vec::new() }
    }

    /// The vbds and their counters.
    pub fn list(&self) -> Vec<VbdInfo> {
        self.vbds
            .iter()
            .map(|v| {
                let st = v.conn.as_ref().map(|c| *c.blk.stats()).unwrap_or_default();
                VbdInfo {
                    frontend: v.dir.frontend,
                    devid: v.dir.devid,
                    state: v.state,
                    connected: v.conn.is_some(),
                    requests: st.requests,
                    refused: st.refused,
                }
            })
            .collect()
    }

    /// Whether `port` is one of the vbds' ports.
    pub fn owns(&self, port: EvtchnPort) -> bool {
        self.vbds
            .iter()
            .any(|v| v.conn.as_ref().is_some_and(|c| c.port == port))
    }

    /// Looks at xenstore: new vbds are taken on, vbds whose directory is
    /// gone are disconnected and forgotten, and every vbd takes the steps
    /// its situation asks for. Returns whether it wrote to xenstore.
    pub fn poll(&mut self, host: &mut H, xs: &mut Xenstored, log: &mut dyn Write) -> bool {
        let mut present = Vec::new();
        if let Ok(fes) = xs.directory(BACKEND_ROOT) {
            for fe in fes {
                let Ok(frontend) = fe.parse::<DomId>() else {
                    continue;
                };
                let Ok(devs) = xs.directory(&format!("{BACKEND_ROOT}/{fe}")) else {
                    continue;
                };
                for d in devs {
                    if let Ok(devid) = d.parse::<u32>() {
                        present.push(BackendDir { frontend, devid });
                    }
                }
            }
        }
        let mut i = 0;
        while i < self.vbds.len() {
            if present.contains(&self.vbds[i].dir) {
                i += 1;
            } else {
                let mut v = self.vbds.remove(i);
                disconnect(host, &mut v);
            }
        }
        for dir in present {
            if !self.vbds.iter().any(|v| v.dir == dir) {
                self.vbds.push(Vbd {
                    dir,
                    state: XenbusState::Initialising,
                    device: DeviceStatus::Pending,
                    disk: None,
                    params: None,
                    conn: None,
                    removed: false,
                    reported: false,
                });
            }
        }
        let mut wrote = false;
        for v in &mut self.vbds {
            wrote |= drive(host, xs, v, log);
        }
        wrote
    }

    /// Disconnects and forgets every vbd of front end `domid` (it is about to
    /// be destroyed); its back-end state goes to Closed.
    pub fn release_domain(&mut self, host: &mut H, xs: &mut Xenstored, domid: DomId) {
        let mut i = 0;
        while i < self.vbds.len() {
            if self.vbds[i].dir.frontend == domid {
                let mut v = self.vbds.remove(i);
                disconnect(host, &mut v);
                set_state(xs, &mut v, XenbusState::Closed);
            } else {
                i += 1;
            }
        }
    }

    /// Serves one batch of `port`'s ring. `None` if the port is not a vbd's;
    /// else whether requests are still waiting (call again after serving
    /// the rest of the machine). A broken ring closes the vbd.
    pub fn on_event(
        &mut self,
        host: &mut H,
        xs: &mut Xenstored,
        port: EvtchnPort,
        log: &mut dyn Write,
    ) -> Option<bool> {
        let v = self
            .vbds
            .iter_mut()
            .find(|v| v.conn.as_ref().is_some_and(|c| c.port == port))?;
        let c = v.conn.as_mut()?;
        match c.blk.service(DEFAULT_BUDGET) {
            Ok(s) => {
                if s.notify {
                    host.notify(port);
                }
                Some(s.more)
            }
            Err(e) => {
                if !v.reported {
                    v.reported = true;
                    let _ = writeln!(
                        log,
                        "blkback: vbd {}/{}: ring broken ({e:?}); closing the device",
                        v.dir.frontend, v.dir.devid
                    );
                }
                fatal(host, xs, v, "ring broken");
                Some(false)
            }
        }
    }
}

fn path(dir: &BackendDir, node: &str) -> String {
    format!("/local/domain/0/{dir}/{node}")
}

fn set_state(xs: &mut Xenstored, v: &mut Vbd<impl VbdHost>, s: XenbusState) {
    let _ = xs.write(&path(&v.dir, "state"), s.as_str().as_bytes());
    v.state = s;
}

fn disconnect<H: VbdHost>(host: &mut H, v: &mut Vbd<H>) {
    if let Some(c) = v.conn.take() {
        let (ring, _grants, disk) = c.blk.into_parts();
        host.close(c.port);
        host.unmap_ring(ring.into_memory());
        v.disk = Some(disk);
    }
}

fn fatal<H: VbdHost>(host: &mut H, xs: &mut Xenstored, v: &mut Vbd<H>, msg: &str) {
    let _ = xs.write(
        &format!("/local/domain/0/{}", ErrorNode(v.dir)),
        msg.as_bytes(),
    );
    disconnect(host, v);
    set_state(xs, v, XenbusState::Closing);
}

/// Runs the state machine of `v` until it waits. Returns whether it wrote.
fn drive<H: VbdHost>(
    host: &mut H,
    xs: &mut Xenstored,
    v: &mut Vbd<H>,
    log: &mut dyn Write,
) -> bool {
    if v.removed {
        return false;
    }
    let mut wrote = false;
    for _ in 0..MAX_STEPS {
        if v.device == DeviceStatus::Pending && v.state == XenbusState::Initialising {
            open(host, xs, v, log);
        }
        let frontend_path = read_str(xs, &path(&v.dir, "frontend"));
        let frontend = FrontendState::parse(
            frontend_path
                .as_ref()
                .and_then(|p| xs.read(&format!("{p}/state")).ok())
                .as_deref(),
        );
        let online = read_str(xs, &path(&v.dir, "online")).as_deref() == Some("1");
        let s = Situation {
            backend: v.state,
            frontend,
            device: v.device,
            ring_connected: v.conn.is_some(),
            online,
        };
        let step = next_step(&s);
        match step {
            Step::Wait => break,
            Step::PublishFeatures => {
                let Some(params) = v.params else { break };
                for (k, n) in feature_nodes(&params) {
                    let _ = xs.write(&path(&v.dir, k), format!("{n}").as_bytes());
                }
                set_state(xs, v, XenbusState::InitWait);
            }
            Step::Connect => {
                let Some(fp) = frontend_path else { break };
                if let Err(e) = connect(host, xs, v, &fp) {
                    let _ = writeln!(log, "blkback: vbd {}/{}: {e}", v.dir.frontend, v.dir.devid);
                    fatal(host, xs, v, &e);
                }
            }
            Step::Switch(st) => set_state(xs, v, st),
            Step::Disconnect => {
                disconnect(host, v);
                set_state(xs, v, XenbusState::Closed);
            }
            Step::Remove => {
                disconnect(host, v);
                v.disk = None;
                v.removed = true;
                break;
            }
            Step::Fatal(reason) => {
                let msg = match reason {
                    FatalReason::DeviceUnavailable => "backing store could not be opened",
                    FatalReason::BadFrontendState => "saw an invalid state at frontend",
                };
                fatal(host, xs, v, msg);
            }
        }
        wrote = true;
    }
    wrote
}

fn open<H: VbdHost>(host: &mut H, xs: &mut Xenstored, v: &mut Vbd<H>, log: &mut dyn Write) {
    let ty = read_str(xs, &path(&v.dir, "type"));
    let params = read_str(xs, &path(&v.dir, "params"));
    let mode = read_str(xs, &path(&v.dir, "mode"));
    if ty.is_none() || params.is_none() || mode.is_none() {
        // The toolstack is still writing.
        return;
    }
    let target = match VbdTarget::parse(ty.as_deref(), params.as_deref(), mode.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(log, "blkback: vbd {}/{}: {e}", v.dir.frontend, v.dir.devid);
            v.device = DeviceStatus::Failed;
            return;
        }
    };
    match host.open(&target) {
        Ok(disk) => {
            let mut p = VbdParams::new(disk.sectors(), target.readonly, disk.supports_flush());
            p.cdrom = read_str(xs, &path(&v.dir, "device-type")).as_deref() == Some("cdrom");
            v.params = Some(p);
            v.disk = Some(disk);
            v.device = DeviceStatus::Open;
        }
        Err(e) => {
            let _ = writeln!(
                log,
                "blkback: vbd {}/{}: {}: {e}",
                v.dir.frontend, v.dir.devid, target.path
            );
            v.device = DeviceStatus::Failed;
        }
    }
}

fn connect<H: VbdHost>(
    host: &mut H,
    xs: &mut Xenstored,
    v: &mut Vbd<H>,
    fp: &str,
) -> Result<(), String> {
    let rd = |xs: &mut Xenstored, n: &str| xs.read(&format!("{fp}/{n}")).ok();
    let (ring_ref, evtchn, protocol, order, queues) = (
        rd(xs, "ring-ref"),
        rd(xs, "event-channel"),
        rd(xs, "protocol"),
        rd(xs, "ring-page-order"),
        rd(xs, "multi-queue-num-queues"),
    );
    let ring = FrontendNodes {
        ring_ref: ring_ref.as_deref(),
        event_channel: evtchn.as_deref(),
        protocol: protocol.as_deref(),
        ring_page_order: order.as_deref(),
        num_queues: queues.as_deref(),
    }
    .parse()
    .map_err(|e| format!("{e}"))?;
    let (Some(params), Some(disk)) = (v.params, v.disk.take()) else {
        return Err("no backing store".into());
    };
    let fe = v.dir.frontend;
    let mem = match host.map_ring(fe, ring.ring_ref) {
        Ok(m) => m,
        Err(e) => {
            v.disk = Some(disk);
            return Err(format!("mapping ring-ref {}: {e}", ring.ring_ref));
        }
    };
    let back = match BackRing::new(mem) {
        Ok(r) => r,
        Err(e) => {
            v.disk = Some(disk);
            return Err(format!("ring: {e:?}"));
        }
    };
    let port = match host.bind(fe, ring.event_channel) {
        Ok(p) => p,
        Err(e) => {
            host.unmap_ring(back.into_memory());
            v.disk = Some(disk);
            return Err(format!("binding event-channel {}: {e}", ring.event_channel));
        }
    };
    let grants = host.grants(fe);
    v.conn = Some(Conn {
        blk: Blkback::new(back, grants, disk, params),
        port,
    });
    for (k, n) in connect_nodes(&params) {
        let _ = xs.write(&path(&v.dir, k), format!("{n}").as_bytes());
    }
    set_state(xs, v, XenbusState::Connected);
    // Requests queued before the bind raised no event of ours.
    host.kick(port);
    Ok(())
}
