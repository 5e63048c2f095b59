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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::rc::Rc;
    use alloc::vec;
    use core::cell::RefCell;
    use std::collections::HashMap;

    use blkback::{BOUNCE_BYTES, CopyDir, CopyError, CopyOp, IoError};
    use xen_abi::blkif::{
        BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest,
        BlkifRequestSegment, BlkifResponse,
    };
    use xen_abi::grant::GNTST_BAD_GNTREF;
    use xen_abi::types::PAGE_SIZE;
    use xen_ring::{FrontRing, REQ_PROD};

    /// The ring page, shared by the test (front end) and the back end.
    #[derive(Clone)]
    struct Page(Rc<RefCell<Vec<u8>>>);

    impl SharedMemory for Page {
        fn len(&self) -> usize {
            PAGE_SIZE
        }
        fn read(&self, offset: usize, out: &mut [u8]) {
            out.copy_from_slice(&self.0.borrow()[offset..offset + out.len()]);
        }
        fn write(&self, offset: usize, data: &[u8]) {
            self.0.borrow_mut()[offset..offset + data.len()].copy_from_slice(data);
        }
    }

    type Frames = Rc<RefCell<HashMap<GrantRef, Vec<u8>>>>;

    struct Copier {
        frames: Frames,
        buffer: Vec<u8>,
    }

    impl GrantCopy for Copier {
        fn buffer(&mut self) -> &mut [u8] {
            &mut self.buffer
        }
        fn copy(&mut self, ops: &[CopyOp]) -> Result<(), CopyError> {
            let mut frames = self.frames.borrow_mut();
            for (index, o) in ops.iter().enumerate() {
                let Some(f) = frames.get_mut(&o.gref) else {
                    return Err(CopyError {
                        index,
                        status: GNTST_BAD_GNTREF,
                    });
                };
                let (g, l, n) = (
                    usize::from(o.gref_offset),
                    o.local_offset as usize,
                    usize::from(o.len),
                );
                match o.dir {
                    CopyDir::ToFrontend => f[g..g + n].copy_from_slice(&self.buffer[l..l + n]),
                    CopyDir::FromFrontend => self.buffer[l..l + n].copy_from_slice(&f[g..g + n]),
                }
            }
            Ok(())
        }
    }

    struct Disk(Rc<RefCell<Vec<u8>>>);

    impl BlockDevice for Disk {
        fn sectors(&self) -> u64 {
            (self.0.borrow().len() / 512) as u64
        }
        fn supports_flush(&self) -> bool {
            true
        }
        fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
            let at = sector as usize * 512;
            buf.copy_from_slice(&self.0.borrow()[at..at + buf.len()]);
            Ok(())
        }
        fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
            let at = sector as usize * 512;
            self.0.borrow_mut()[at..at + data.len()].copy_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), IoError> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Host {
        disk: Rc<RefCell<Vec<u8>>>,
        /// The front end's granted frames (ring at gref 8).
        frames: Frames,
        ring: Option<Page>,
        mapped: u32,
        bound: Vec<EvtchnPort>,
        notified: u32,
        kicked: Vec<EvtchnPort>,
    }

    impl VbdHost for Host {
        type Ring = Page;
        type Grants = Copier;
        type Disk = Disk;
        fn open(&mut self, t: &VbdTarget<'_>) -> Result<Disk, String> {
            if t.path == "/dev/vda" {
                Ok(Disk(self.disk.clone()))
            } else {
                Err("no such device".into())
            }
        }
        fn map_ring(&mut self, _domid: DomId, gref: GrantRef) -> Result<Page, String> {
            if gref != 8 {
                return Err("GNTST -3".into());
            }
            self.mapped += 1;
            Ok(self.ring.clone().expect("a ring page"))
        }
        fn unmap_ring(&mut self, _ring: Page) {
            self.mapped -= 1;
        }
        fn grants(&mut self, _domid: DomId) -> Copier {
            Copier {
                frames: self.frames.clone(),
                buffer: vec![0; BOUNCE_BYTES],
            }
        }
        fn bind(&mut self, _domid: DomId, port: EvtchnPort) -> Result<EvtchnPort, String> {
            self.bound.push(port + 100);
            Ok(port + 100)
        }
        fn notify(&mut self, _port: EvtchnPort) {
            self.notified += 1;
        }
        fn close(&mut self, port: EvtchnPort) {
            self.bound.retain(|&p| p != port);
        }
        fn kick(&mut self, port: EvtchnPort) {
            self.kicked.push(port);
        }
    }

    const BE: &str = "/local/domain/0/backend/vbd/3/2049";
    const FE: &str = "/local/domain/3/device/vbd/2049";

    fn setup(mode: &str, params: &str) -> (Xenstored, Host, Vbds<Host>) {
        let mut xs = Xenstored::new();
        for (k, v) in [
            ("frontend", FE),
            ("params", params),
            ("type", "phy"),
            ("mode", mode),
            ("online", "1"),
            ("frontend-id", "3"),
            ("state", "1"),
        ] {
            xs.write(&format!("{BE}/{k}"), v.as_bytes()).unwrap();
        }
        xs.write(&format!("{FE}/state"), b"1").unwrap();
        let host = Host {
            disk: Rc::new(RefCell::new(vec![0; 64 * 512])),
            ring: Some(Page(Rc::new(RefCell::new(vec![0; PAGE_SIZE])))),
            ..Default::default()
        };
        (xs, host, Vbds::new())
    }

    fn node(xs: &mut Xenstored, p: &str) -> String {
        String::from_utf8(xs.read(p).unwrap_or_default()).unwrap()
    }

    fn front_publish(xs: &mut Xenstored, protocol: &str) {
        for (k, v) in [
            ("ring-ref", "8"),
            ("event-channel", "5"),
            ("protocol", protocol),
            ("state", "3"),
        ] {
            xs.write(&format!("{FE}/{k}"), v.as_bytes()).unwrap();
        }
    }

    #[test]
    fn handshake_io_and_release() {
        let (mut xs, mut host, mut vbds) = setup("w", "/dev/vda");
        let mut log = String::new();
        assert!(vbds.poll(&mut host, &mut xs, &mut log));
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "2");
        assert_eq!(node(&mut xs, &format!("{BE}/feature-flush-cache")), "1");
        // Nothing more until the front end publishes its ring.
        assert!(!vbds.poll(&mut host, &mut xs, &mut log));
        let mut front: FrontRing<Page, BlkifRequest, BlkifResponse> =
            FrontRing::init(host.ring.clone().unwrap()).unwrap();
        front_publish(&mut xs, "x86_32-abi");
        vbds.poll(&mut host, &mut xs, &mut log);
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "4");
        assert_eq!(node(&mut xs, &format!("{BE}/sectors")), "64");
        assert_eq!(node(&mut xs, &format!("{BE}/info")), "0");
        assert_eq!((host.mapped, host.bound.clone()), (1, vec![105]));
        // Requests queued before the bind are served: the port is kicked.
        assert_eq!(host.kicked, [105]);
        assert!(vbds.owns(105) && !vbds.owns(5));

        // A write of one page, then a read of it into another.
        host.frames.borrow_mut().insert(20, vec![0x5A; PAGE_SIZE]);
        host.frames.borrow_mut().insert(21, vec![0; PAGE_SIZE]);
        let seg = |gref| {
            let mut s = [BlkifRequestSegment::default(); 11];
            s[0] = BlkifRequestSegment {
                gref,
                first_sect: 0,
                last_sect: 7,
                _pad: 0,
            };
            s
        };
        for (op, gref, id) in [(BLKIF_OP_WRITE, 20, 1), (BLKIF_OP_READ, 21, 2)] {
            front
                .queue_request(&BlkifRequest {
                    operation: op,
                    nr_segments: 1,
                    handle: 2049,
                    id,
                    sector_number: 16,
                    seg: seg(gref),
                })
                .unwrap();
        }
        front.push_requests();
        assert_eq!(
            vbds.on_event(&mut host, &mut xs, 105, &mut log),
            Some(false)
        );
        assert_eq!(vbds.on_event(&mut host, &mut xs, 7, &mut log), None);
        for id in [1, 2] {
            let r = front.take_response().unwrap().unwrap();
            assert_eq!((r.id, r.status), (id, BLKIF_RSP_OKAY));
        }
        assert!(
            host.disk.borrow()[16 * 512..24 * 512]
                .iter()
                .all(|&b| b == 0x5A)
        );
        assert!(host.frames.borrow()[&21].iter().all(|&b| b == 0x5A));
        assert_eq!(vbds.list()[0].requests, 2);

        // The domain goes: ring unmapped, port closed, vbd forgotten.
        vbds.release_domain(&mut host, &mut xs, 3);
        assert_eq!((host.mapped, host.bound.len()), (0, 0));
        assert!(vbds.list().is_empty());
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "6");
        assert!(log.is_empty(), "{log}");
    }

    #[test]
    fn read_only_vbd_refuses_writes() {
        let (mut xs, mut host, mut vbds) = setup("r", "/dev/vda");
        let mut log = String::new();
        vbds.poll(&mut host, &mut xs, &mut log);
        let mut front: FrontRing<Page, BlkifRequest, BlkifResponse> =
            FrontRing::init(host.ring.clone().unwrap()).unwrap();
        front_publish(&mut xs, "x86_32-abi");
        vbds.poll(&mut host, &mut xs, &mut log);
        assert_eq!(node(&mut xs, &format!("{BE}/info")), "4");
        assert_eq!(node(&mut xs, &format!("{BE}/feature-flush-cache")), "0");
        host.frames.borrow_mut().insert(20, vec![0x5A; PAGE_SIZE]);
        let mut seg = [BlkifRequestSegment::default(); 11];
        seg[0].gref = 20;
        front
            .queue_request(&BlkifRequest {
                operation: BLKIF_OP_WRITE,
                nr_segments: 1,
                handle: 2049,
                id: 9,
                sector_number: 0,
                seg,
            })
            .unwrap();
        front.push_requests();
        vbds.on_event(&mut host, &mut xs, 105, &mut log);
        let r = front.take_response().unwrap().unwrap();
        assert_eq!((r.id, r.status), (9, BLKIF_RSP_ERROR));
        assert!(host.disk.borrow().iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_frontend_and_missing_device_end_in_closing() {
        // A protocol this back end does not translate.
        let (mut xs, mut host, mut vbds) = setup("w", "/dev/vda");
        let mut log = String::new();
        vbds.poll(&mut host, &mut xs, &mut log);
        front_publish(&mut xs, "x86_64-abi");
        vbds.poll(&mut host, &mut xs, &mut log);
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "5");
        assert_eq!(
            node(&mut xs, "/local/domain/0/error/backend/vbd/3/2049/error"),
            "unknown fe protocol"
        );
        assert_eq!(host.mapped, 0);
        assert!(log.contains("unknown fe protocol"), "{log}");

        // A device dom0 does not have.
        let (mut xs, mut host, mut vbds) = setup("w", "/dev/vdz");
        let mut log = String::new();
        vbds.poll(&mut host, &mut xs, &mut log);
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "5");
        assert!(log.contains("/dev/vdz: no such device"), "{log}");
    }

    #[test]
    fn broken_ring_closes_the_device_once() {
        let (mut xs, mut host, mut vbds) = setup("w", "/dev/vda");
        let mut log = String::new();
        vbds.poll(&mut host, &mut xs, &mut log);
        let ring = host.ring.clone().unwrap();
        let _front: FrontRing<Page, BlkifRequest, BlkifResponse> =
            FrontRing::init(ring.clone()).unwrap();
        front_publish(&mut xs, "x86_32-abi");
        vbds.poll(&mut host, &mut xs, &mut log);
        // A producer index far beyond the ring.
        ring.write_u32(REQ_PROD, 1000);
        assert_eq!(
            vbds.on_event(&mut host, &mut xs, 105, &mut log),
            Some(false)
        );
        assert_eq!(node(&mut xs, &format!("{BE}/state")), "5");
        assert_eq!((host.mapped, host.bound.len()), (0, 0));
        assert_eq!(log.matches("ring broken").count(), 1, "{log}");
        // The port is no longer the vbd's.
        assert_eq!(vbds.on_event(&mut host, &mut xs, 105, &mut log), None);
        // Its directory removed by the toolstack: forgotten.
        xs.rm("/local/domain/0/backend/vbd/3").unwrap();
        vbds.poll(&mut host, &mut xs, &mut log);
        assert!(vbds.list().is_empty());
    }
}
