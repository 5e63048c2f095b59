//! The domU's block front end (XEN-PV-ABI.md §11) on the first vbd under
//! `device/vbd`, bound to `blkfront`'s pure logic.
//!
//! Owns the grant table (frame 0, mapped at a padding page), the ring page
//! and [`DATA_PAGES`] data pages (page-aligned statics of the kernel image,
//! named to the back end by machine frame), the unbound port for the back
//! end, and the ring ([`xen_ring::FrontRing`]).
//!
//! Handshake: `blkfront::xenbus::next_step` on each change of the back end's
//! `state` (a watch) until Connected or closed. I/O: a transfer is cut into
//! requests (`blkfront::plan`), each page granted to the back end (read-only
//! for a write), ids from `blkfront::inflight::InFlight`; responses are taken
//! until every request is answered (or [`IO_TIMEOUT_NS`] passes), and each
//! request's grants are revoked as its response arrives. A response for an id
//! not in flight is counted and ignored.
//!
//! Invariants: the domU is one vcpu and the kernel is one loop, so the
//! statics are touched by this module alone, one call at a time; a grant
//! that cannot be revoked (the back end still uses it) is reported and its
//! page is not reused by this call's caller for data it trusts.

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use blkfront::inflight::InFlight;
use blkfront::plan::plan;
use blkfront::xenbus::{BackendInfo, BackendNodes, BackendState, Situation, Step, next_step};
use pvrt::StartInfo;
use pvrt::gnttab::Table;
use pvrt::shared::SharedPage;
use pvrt::xenbus::{Tx, XenBus, XsError};
use xen_abi::blkif::{
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_RING_SIZE, BLKIF_RSP_OKAY, BlkifRequest, BlkifResponse, XEN_IO_PROTO_ABI_X86_32,
};
use xen_abi::domid::{DOMID_SELF, DomId};
use xen_abi::evtchn::{EVTCHNOP_ALLOC_UNBOUND, EvtchnAllocUnbound};
use xen_abi::types::{GrantRef, PAGE_SIZE};
use xen_abi::xenbus::XenbusState;
use xen_ring::{FrontRing, SharedMemory};

/// Data pages: the most one transfer moves.
pub const DATA_PAGES: usize = 16;
/// How long a transfer may wait for its responses.
pub const IO_TIMEOUT_NS: u64 = 10_000_000_000;
/// How long the handshake may take.
const CONNECT_TIMEOUT_NS: u64 = 10_000_000_000;
const WATCH_TOKEN: &str = "blkfront";

#[repr(C, align(4096))]
struct Pages<const N: usize>([[u8; PAGE_SIZE]; N]);

static mut RING: Pages<1> = Pages([[0; PAGE_SIZE]; 1]);
static mut DATA: Pages<DATA_PAGES> = Pages([[0; PAGE_SIZE]; DATA_PAGES]);

/// Ports noted by the event handler.
static FIRED: AtomicU32 = AtomicU32::new(0);

fn note(_port: u32) {
    FIRED.fetch_add(1, Ordering::SeqCst);
}

/// What a request in flight holds: its pages' grants.
struct Pending {
    grefs: [GrantRef; BLKIF_MAX_SEGMENTS_PER_REQUEST],
    n: usize,
}

/// A connected vbd.
pub struct Blkfront {
    pub devid: u32,
    /// The back end's directory.
    backend: heapless_str::Short,
    pub info: BackendInfo,
    backend_id: DomId,
    grants: Table,
    ring: FrontRing<SharedPage, BlkifRequest, BlkifResponse>,
    port: u32,
    inflight: InFlight<Pending, BLKIF_RING_SIZE>,
    shared_va: u32,
    si: &'static StartInfo,
    /// Responses whose id named no request in flight.
    pub unknown_ids: u32,
}

fn va_of<T>(p: *const T) -> usize {
    p as usize
}

fn mfn_of(si: &StartInfo, va: usize) -> u32 {
    let pfn = ((va as u32) - pvrt::VIRT_BASE) / PAGE_SIZE as u32;
    pvrt::mm::pfn_to_mfn(si, pfn).expect("a kernel page is in the P2M")
}

fn text(v: Result<&[u8], XsError>) -> Result<heapless_str::Short, XsError> {
    v.map(heapless_str::Short::new)
}

/// Short values kept from xenstore without a heap.
mod heapless_str {
    pub struct Short {
        buf: [u8; 96],
        len: usize,
    }
    impl Short {
        pub fn new(v: &[u8]) -> Short {
            let mut s = Short {
                buf: [0; 96],
                len: v.len().min(96),
            };
            s.buf[..s.len].copy_from_slice(&v[..s.len]);
            s
        }
        pub fn as_str(&self) -> &str {
            core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
        }
        pub fn bytes(&self) -> &[u8] {
            &self.buf[..self.len]
        }
    }
}

/// A small formatting buffer for paths.
struct PathBuf {
    buf: [u8; 128],
    len: usize,
}

impl Write for PathBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        if self.len + b.len() > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        Ok(())
    }
}

fn path(args: core::fmt::Arguments<'_>) -> PathBuf {
    let mut p = PathBuf {
        buf: [0; 128],
        len: 0,
    };
    let _ = p.write_fmt(args);
    p
}

impl PathBuf {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// Why the vbd could not be used.
pub enum BlkError {
    NoVbd,
    Xs(&'static str, XsError),
    Grant(&'static str),
    Closed(&'static str),
    TimedOut,
    Status(i16),
    Ring,
    Range,
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlkError::NoVbd => f.write_str("no vbd"),
            BlkError::Xs(what, e) => write!(f, "xenstore {what}: {e}"),
            BlkError::Grant(what) => write!(f, "grant table: {what}"),
            BlkError::Closed(why) => write!(f, "the back end closed the device ({why})"),
            BlkError::TimedOut => f.write_str("no response from the back end"),
            BlkError::Status(s) => write!(f, "the back end answered status {s}"),
            BlkError::Ring => f.write_str("the ring is broken"),
            BlkError::Range => f.write_str("past the end of the vbd"),
        }
    }
}

/// Finds the first vbd and connects it. `grant_va`: a padding page for the
/// grant table.
pub fn connect(
    si: &'static StartInfo,
    xs: &mut XenBus,
    grant_va: u32,
    shared_va: u32,
) -> Result<Blkfront, BlkError> {
    let devid = {
        // No device/vbd directory: the domain has no vbd.
        let mut dir = xs.directory(Tx::NONE, "device/vbd").map_err(|e| {
            if e.is_enoent() {
                BlkError::NoVbd
            } else {
                BlkError::Xs("directory device/vbd", e)
            }
        })?;
        let first = dir.next().ok_or(BlkError::NoVbd)?;
        core::str::from_utf8(first)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(BlkError::NoVbd)?
    };
    let fe = path(format_args!("device/vbd/{devid}"));
    let backend = text(xs.read(
        Tx::NONE,
        path(format_args!("{}/backend", fe.as_str())).as_str(),
    ))
    .map_err(|e| BlkError::Xs("read backend", e))?;
    let backend_id: DomId = text(xs.read(
        Tx::NONE,
        path(format_args!("{}/backend-id", fe.as_str())).as_str(),
    ))
    .map_err(|e| BlkError::Xs("read backend-id", e))?
    .as_str()
    .parse()
    .map_err(|_| BlkError::Closed("bad backend-id"))?;

    let mut grants = Table::setup(grant_va).map_err(|_| BlkError::Grant("setup_table"))?;
    let ring_va = va_of(&raw const RING);
    let ring = FrontRing::init(
        // SAFETY: the ring page is a static of this module, used only
        // through this ring (and granted to the back end).
        unsafe { SharedPage::new(ring_va) },
    )
    .map_err(|_| BlkError::Grant("ring too small"))?;
    let ring_ref = grants
        .grant(backend_id, mfn_of(si, ring_va), false)
        .ok_or(BlkError::Grant("no free entry"))?;
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: backend_id,
        port: 0,
    };
    pvrt::events::op(EVTCHNOP_ALLOC_UNBOUND, &mut a)
        .map_err(|_| BlkError::Grant("alloc_unbound"))?;
    let port = a.port;
    pvrt::events::on(port, note);
    let _ = pvrt::xenbus::unmask(port);

    let be_state = path(format_args!("{}/state", backend.as_str()));
    xs.watch(be_state.as_str(), WATCH_TOKEN)
        .map_err(|e| BlkError::Xs("watch the back end's state", e))?;
    let mut ours = XenbusState::Initialising;
    let deadline = pvrt::time::now(shared_va) + CONNECT_TIMEOUT_NS;
    let info = loop {
        let backend_state = BackendState::parse(xs.read(Tx::NONE, be_state.as_str()).ok());
        let step = next_step(&Situation {
            frontend: ours,
            backend: backend_state,
            detach: false,
        });
        match step {
            Step::Publish => {
                let r = xs.transaction(|xs, tx| {
                    let p = |n: &str| path(format_args!("{}/{n}", fe.as_str()));
                    xs.write(
                        tx,
                        p("ring-ref").as_str(),
                        path(format_args!("{ring_ref}")).as_str().as_bytes(),
                    )?;
                    xs.write(
                        tx,
                        p("event-channel").as_str(),
                        path(format_args!("{port}")).as_str().as_bytes(),
                    )?;
                    xs.write(
                        tx,
                        p("protocol").as_str(),
                        XEN_IO_PROTO_ABI_X86_32.as_bytes(),
                    )?;
                    xs.write(
                        tx,
                        p("state").as_str(),
                        XenbusState::Initialised.as_str().as_bytes(),
                    )
                });
                r.map_err(|e| BlkError::Xs("publish ring-ref", e))?;
                ours = XenbusState::Initialised;
                continue;
            }
            Step::Connect => {
                let rd = |xs: &mut XenBus, n: &str| {
                    xs.read(
                        Tx::NONE,
                        path(format_args!("{}/{n}", backend.as_str())).as_str(),
                    )
                    .ok()
                    .map(heapless_str::Short::new)
                };
                let (sectors, info, ss, flush, barrier) = (
                    rd(xs, "sectors"),
                    rd(xs, "info"),
                    rd(xs, "sector-size"),
                    rd(xs, "feature-flush-cache"),
                    rd(xs, "feature-barrier"),
                );
                let nodes = BackendNodes {
                    sectors: sectors.as_ref().map(|s| s.bytes()),
                    info: info.as_ref().map(|s| s.bytes()),
                    sector_size: ss.as_ref().map(|s| s.bytes()),
                    feature_flush_cache: flush.as_ref().map(|s| s.bytes()),
                    feature_barrier: barrier.as_ref().map(|s| s.bytes()),
                };
                let info = nodes
                    .parse()
                    .map_err(|_| BlkError::Closed("bad sectors/info nodes"))?;
                xs.write(
                    Tx::NONE,
                    path(format_args!("{}/state", fe.as_str())).as_str(),
                    XenbusState::Connected.as_str().as_bytes(),
                )
                .map_err(|e| BlkError::Xs("write state", e))?;
                break info;
            }
            Step::Close | Step::Closing => {
                let _ = xs.unwatch(be_state.as_str(), WATCH_TOKEN);
                let _ = xs.write(
                    Tx::NONE,
                    path(format_args!("{}/state", fe.as_str())).as_str(),
                    XenbusState::Closed.as_str().as_bytes(),
                );
                let _ = grants.end(ring_ref);
                let _ = pvrt::events::close(port);
                return Err(BlkError::Closed("during the handshake"));
            }
            Step::Wait => {
                if pvrt::time::now(shared_va) > deadline {
                    let _ = xs.unwatch(be_state.as_str(), WATCH_TOKEN);
                    return Err(BlkError::TimedOut);
                }
                let mut buf = [0u8; 160];
                xs.wait_event(&mut buf)
                    .map_err(|e| BlkError::Xs("wait for the back end", e))?;
            }
        }
    };
    let _ = xs.unwatch(be_state.as_str(), WATCH_TOKEN);
    Ok(Blkfront {
        devid,
        backend,
        info,
        backend_id,
        grants,
        ring,
        port,
        inflight: InFlight::new(),
        shared_va,
        si,
        unknown_ids: 0,
    })
}

fn data_page(i: usize) -> usize {
    va_of(&raw const DATA) + i * PAGE_SIZE
}

/// The data pages as bytes (a transfer's memory).
pub fn data() -> &'static mut [u8] {
    // SAFETY: DATA is a static of this module, used one call at a time on
    // one vcpu (module invariant); the slice covers exactly its pages.
    unsafe { core::slice::from_raw_parts_mut(data_page(0) as *mut u8, DATA_PAGES * PAGE_SIZE) }
}

impl Blkfront {
    /// Reads or writes `count` sectors from `sector` on through the data
    /// pages (`data()[..count * 512]`).
    pub fn transfer(&mut self, write: bool, sector: u64, count: u32) -> Result<(), BlkError> {
        // A write to a read-only vbd is still sent: the back end refuses it
        // (BLKIF_RSP_ERROR), which is what the caller shows.
        let p = plan(sector, 0, u64::from(count));
        if p.pages() > DATA_PAGES {
            return Err(BlkError::Range);
        }
        let op = if write { BLKIF_OP_WRITE } else { BLKIF_OP_READ };
        let mut status: Result<(), BlkError> = Ok(());
        for rp in p {
            let mut pending = Pending {
                grefs: [0; BLKIF_MAX_SEGMENTS_PER_REQUEST],
                n: 0,
            };
            let mut grefs = [0; BLKIF_MAX_SEGMENTS_PER_REQUEST];
            for (i, c) in rp.chunks().iter().enumerate() {
                let mfn = mfn_of(self.si, data_page(c.page));
                // A write only lets the back end read the page.
                let Some(g) = self.grants.grant(self.backend_id, mfn, write) else {
                    self.revoke(&pending);
                    return Err(BlkError::Grant("no free entry"));
                };
                grefs[i] = g;
                pending.grefs[i] = g;
                pending.n = i + 1;
            }
            let chunks: [usize; BLKIF_MAX_SEGMENTS_PER_REQUEST] =
                core::array::from_fn(|i| rp.chunks().get(i).map_or(0, |c| c.page));
            let id = match self.inflight.insert(pending) {
                Ok(id) => id,
                Err(p) => {
                    self.revoke(&p);
                    return Err(BlkError::Ring);
                }
            };
            let req = rp.request(op, id, self.devid as u16, |page| {
                let i = chunks.iter().position(|&c| c == page).unwrap_or(0);
                grefs[i]
            });
            // Every request of the transfer is queued before waiting.
            if let Err(e) = self.send(&req) {
                if let Ok(p) = self.inflight.complete(id) {
                    self.revoke(&p);
                }
                status = Err(e);
                break;
            }
        }
        let waited = self.wait_all();
        status.and(waited)
    }

    /// `BLKIF_OP_FLUSH_DISKCACHE` with no data.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        let id = self
            .inflight
            .insert(Pending {
                grefs: [0; BLKIF_MAX_SEGMENTS_PER_REQUEST],
                n: 0,
            })
            .map_err(|_| BlkError::Ring)?;
        let req = BlkifRequest {
            operation: BLKIF_OP_FLUSH_DISKCACHE,
            nr_segments: 0,
            handle: self.devid as u16,
            id,
            sector_number: 0,
            seg: Default::default(),
        };
        self.send(&req)?;
        self.wait_all()
    }

    /// Sends `req` as it is (a test of the back end: nothing is checked),
    /// with `grants` granted to the back end for it and revoked after, and
    /// returns the status of its response.
    pub fn raw(
        &mut self,
        mut req: BlkifRequest,
        grants: &[(usize, bool)],
    ) -> Result<i16, BlkError> {
        let mut pending = Pending {
            grefs: [0; BLKIF_MAX_SEGMENTS_PER_REQUEST],
            n: 0,
        };
        for (i, &(page, readonly)) in grants
            .iter()
            .enumerate()
            .take(BLKIF_MAX_SEGMENTS_PER_REQUEST)
        {
            let mfn = mfn_of(self.si, data_page(page));
            let Some(g) = self.grants.grant(self.backend_id, mfn, readonly) else {
                self.revoke(&pending);
                return Err(BlkError::Grant("no free entry"));
            };
            pending.grefs[i] = g;
            pending.n = i + 1;
            req.seg[i].gref = g;
        }
        req.id = match self.inflight.insert(pending) {
            Ok(id) => id,
            Err(p) => {
                self.revoke(&p);
                return Err(BlkError::Ring);
            }
        };
        self.send(&req)?;
        match self.wait_all() {
            Ok(()) => Ok(BLKIF_RSP_OKAY),
            Err(BlkError::Status(s)) => Ok(s),
            Err(e) => Err(e),
        }
    }

    /// Publishes a request producer `ahead` requests beyond what was
    /// queued (a hostile front end's ring index) and notifies.
    pub fn corrupt_req_prod(&mut self, ahead: u32) {
        let mem = self.ring.memory();
        let prod = mem.read_u32(xen_ring::REQ_PROD);
        mem.write_u32(xen_ring::REQ_PROD, prod.wrapping_add(ahead));
        let _ = pvrt::events::send(self.port);
    }

    /// The back end's `state` node.
    pub fn backend_state(&self, xs: &mut XenBus) -> Option<XenbusState> {
        let p = path(format_args!("{}/state", self.backend.as_str()));
        xs.read(Tx::NONE, p.as_str())
            .ok()
            .and_then(XenbusState::parse)
    }

    fn send(&mut self, req: &BlkifRequest) -> Result<(), BlkError> {
        self.ring.queue_request(req).map_err(|_| BlkError::Ring)?;
        if self.ring.push_requests() {
            let _ = pvrt::events::send(self.port);
        }
        Ok(())
    }

    fn revoke(&mut self, p: &Pending) {
        for &g in &p.grefs[..p.n] {
            if !self.grants.end(g) {
                pvrt::println!("blkfront: grant {g} still in use by the back end");
            }
        }
    }

    /// Takes responses until nothing is in flight; the first bad status is
    /// returned.
    fn wait_all(&mut self) -> Result<(), BlkError> {
        let deadline = pvrt::time::now(self.shared_va) + IO_TIMEOUT_NS;
        let _ = pvrt::time::set_timer(deadline);
        let mut result = Ok(());
        while !self.inflight.is_empty() {
            let rsp = loop {
                match self.ring.take_response() {
                    Ok(Some(r)) => break Some(r),
                    Ok(None) => {}
                    Err(_) => return Err(BlkError::Ring),
                }
                if pvrt::time::now(self.shared_va) > deadline {
                    break None;
                }
                let ring = &mut self.ring;
                let va = self.shared_va;
                pvrt::xenbus::wait_until(|| {
                    let ready = ring.final_check_for_responses().unwrap_or(true);
                    (ready || pvrt::time::now(va) > deadline).then_some(())
                });
            };
            let Some(rsp) = rsp else {
                return Err(BlkError::TimedOut);
            };
            let id = rsp.id;
            match self.inflight.complete(id) {
                Ok(p) => {
                    self.revoke(&p);
                    let st = rsp.status;
                    if st != BLKIF_RSP_OKAY && result.is_ok() {
                        result = Err(BlkError::Status(st));
                    }
                }
                Err(_) => self.unknown_ids += 1,
            }
        }
        result
    }
}
