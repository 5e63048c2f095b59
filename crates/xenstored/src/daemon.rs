//! The daemon: connections (one per introduced domain, plus dom0's own), the
//! request dispatcher for every §13 message type, watch delivery, quotas, and the
//! glue from ring bytes to replies.
//!
//! Invariants: dom0's connection always exists and cannot be released; a
//! connection that broke the protocol (oversized payload, impossible ring index)
//! is marked failed and is served no more until released; every reply echoes the
//! request's type (or is `XS_ERROR`), `req_id` and `tx_id`; watch events carry
//! `req_id` = `tx_id` = 0 and follow the reply of the request that fired them.
//! Quotas apply to unprivileged domains only (dom0 is trusted).
//!
//! Memory (as Xen's xenstored after XSA-326, in bytes): a domain is charged
//! [`Xenstored::usage`] = the nodes it owns ([`store::node_cost`]), its watch
//! registrations, its open transactions' records and copies
//! ([`Transaction::bytes`]) and the output queued for it. An unprivileged
//! domain at or above [`Quota::max_memory_per_domain`] gets `ENOSPC` for every
//! request that could allocate (write, mkdir, set_perms, watch, transaction
//! start, any request inside a transaction); removal, unwatch, plain reads and
//! ending a transaction still work, so it can free what it holds. Operations
//! check the remaining budget before they allocate; a request inside a
//! transaction that takes the domain past its quota (or the transaction past
//! [`Quota::max_transaction_records`]) fails with `ENOSPC` and dooms the
//! transaction: its records are dropped at once, later requests in it get
//! `ENOSPC` and so does its commit. Paths from unprivileged domains are
//! limited to [`Quota::max_path_len`] bytes (counted below the domain's home
//! when under it, as xenstored does) and refused with `EINVAL` before any
//! walk. Requests are read from a ring one message at a time, and not while
//! the domain's queued output is at [`Quota::max_pending_output`], so a reply
//! overshoots that bound by at most one message.
//!
//! Watch delivery: a watcher is told of a change if it is dom0 or may read the
//! changed node under any of the permission lists the change carries (the new
//! list for write/mkdir, the old and new for set_perms, the removed node's for rm,
//! also for watchers below a removed node). `@introduceDomain`/`@releaseDomain`
//! watchers are told without a permission check. Transaction changes fire at
//! commit. `XS_CONTROL`/`XS_DEBUG` is dom0-only: `check\0` runs the tree
//! consistency check (`OK` or `EIO`); other commands get `ENOSYS`.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::domid::{DOMID_FIRST_RESERVED, DomId};
use xen_abi::types::{EvtchnPort, XenPfn};
use xen_abi::xenstore::{
    XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX, XENSTORE_RING_SIZE, XS_CONTROL, XS_DIRECTORY,
    XS_GET_DOMAIN_PATH, XS_GET_PERMS, XS_INTRODUCE, XS_IS_DOMAIN_INTRODUCED, XS_MKDIR, XS_READ,
    XS_RELEASE, XS_RESUME, XS_RM, XS_SET_PERMS, XS_SET_TARGET, XS_TRANSACTION_END,
    XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WATCH_INTRODUCE_DOMAIN,
    XS_WATCH_RELEASE_DOMAIN, XS_WRITE, XsdSockmsg,
};

use crate::error::XsError;
use crate::path::{domain_path, resolve, resolve_watch};
use crate::perms::{Perms, Principal, parse_decimal, parse_domid};
use crate::ring::{RingPage, read_requests, rsp_free, write_responses};
use crate::store::{self, Change, Store, Transaction, Tree, TreeQuota, TxView};
use crate::watch::Watch;
use crate::wire::{Decoder, HEADER_LEN, Message, ProtocolError, args, path_and_value, strings};

/// Limits on unprivileged domains (xenstored's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Nodes a domain may own (`ENOSPC` beyond).
    pub max_nodes_per_domain: usize,
    /// Longest value a domain may write (`ENOSPC` beyond).
    pub max_value_size: usize,
    /// Watches per connection (`E2BIG` beyond).
    pub max_watches: usize,
    /// Open transactions per connection (`ENOSPC` beyond).
    pub max_transactions: usize,
    /// Bytes queued for a guest: beyond it, watch events are dropped and no more
    /// requests are read from its ring until it drains its responses.
    pub max_pending_output: usize,
    /// Permission entries per node (`ENOSPC` beyond; xenstored's
    /// `quota_nb_perms_per_node`).
    pub max_perms: usize,
    /// Paths one transaction may record (`ENOSPC` beyond; xenstored's
    /// `quota_trans_nodes`).
    pub max_transaction_records: usize,
    /// Longest path, counted below the domain's home when under it (`EINVAL`
    /// beyond; xenstored's `quota_max_path_len`).
    pub max_path_len: usize,
    /// Bytes a domain may make the daemon hold: nodes, watches, transactions,
    /// queued output (`ENOSPC` at and beyond).
    pub max_memory_per_domain: usize,
}

impl Default for Quota {
    /// xenstored's defaults (1000 nodes, 2048-byte values, 128 watches, 10
    /// transactions, 5 permission entries, 1024 records per transaction,
    /// `XENSTORE_REL_PATH_MAX`-byte paths), except memory: xenstored allows
    /// 2.5 MB per domain in a dom0 with memory to spare; Oxen's dom0 serves
    /// every domain from a 4 MiB heap, so a domain gets 256 KiB (its own
    /// nodes, a full output queue and a transaction's records fit).
    fn default() -> Self {
        Quota {
            max_nodes_per_domain: 1000,
            max_value_size: 2048,
            max_watches: 128,
            max_transactions: 10,
            max_pending_output: 64 * 1024,
            max_perms: 5,
            max_transaction_records: 1024,
            max_path_len: XENSTORE_REL_PATH_MAX,
            max_memory_per_domain: 256 * 1024,
        }
    }
}

/// Fixed cost of one watch registration besides its path and token.
pub const WATCH_OVERHEAD: usize = 48;

fn watch_cost(w: &Watch) -> usize {
    WATCH_OVERHEAD + w.path.len() + w.token.len()
}

/// An open transaction and whether a quota doomed it.
#[derive(Debug, Default)]
struct OpenTx {
    tx: Transaction,
    doomed: bool,
}

/// The daemon's record of one domain's connection.
#[derive(Debug)]
pub struct Connection {
    domid: DomId,
    mfn: XenPfn,
    port: EvtchnPort,
    target: Option<DomId>,
    shutdown: bool,
    watches: Vec<Watch>,
    transactions: BTreeMap<u32, OpenTx>,
    next_tx_id: u32,
    decoder: Decoder,
    out: VecDeque<Message>,
    /// Bytes of the front message already written to the ring.
    out_offset: usize,
    out_bytes: usize,
    dropped_events: u64,
    failed: Option<ProtocolError>,
}

impl Connection {
    fn new(domid: DomId, mfn: XenPfn, port: EvtchnPort) -> Connection {
        Connection {
            domid,
            mfn,
            port,
            target: None,
            shutdown: false,
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_tx_id: 1,
            decoder: Decoder::new(),
            out: VecDeque::new(),
            out_offset: 0,
            out_bytes: 0,
            dropped_events: 0,
            failed: None,
        }
    }

    /// The domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }
    /// MFN of its store page (from `XS_INTRODUCE`).
    pub fn mfn(&self) -> XenPfn {
        self.mfn
    }
    /// Its store event-channel port (from `XS_INTRODUCE`).
    pub fn port(&self) -> EvtchnPort {
        self.port
    }
    /// The domain it may act for (`XS_SET_TARGET`).
    pub fn target(&self) -> Option<DomId> {
        self.target
    }
    /// Marked shut down and not yet resumed.
    pub fn is_shutdown(&self) -> bool {
        self.shutdown
    }
    /// Registered watches.
    pub fn watches(&self) -> &[Watch] {
        &self.watches
    }
    /// Open transactions.
    pub fn transaction_count(&self) -> usize {
        self.transactions.len()
    }
    /// Bytes held by its watch registrations.
    pub fn watch_bytes(&self) -> usize {
        self.watches.iter().map(watch_cost).sum()
    }
    /// Bytes held by its open transactions.
    pub fn transaction_bytes(&self) -> usize {
        self.transactions.values().map(|t| t.tx.bytes()).sum()
    }
    /// Bytes queued for the domain.
    pub fn pending_output(&self) -> usize {
        self.out_bytes
    }
    /// Watch events dropped because the output quota was exceeded.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }
    /// The protocol error that stopped this connection, if any.
    pub fn failed(&self) -> Option<ProtocolError> {
        self.failed
    }

    fn principal(&self) -> Principal {
        Principal {
            domid: self.domid,
            target: self.target,
        }
    }

    fn push(&mut self, m: Message) {
        self.out_bytes += m.encoded_len();
        self.out.push_back(m);
    }

    /// Up to `max` queued bytes, without consuming them.
    fn peek_output(&self, max: usize) -> Vec<u8> {
        let mut v = Vec::new();
        let mut skip = self.out_offset;
        for m in &self.out {
            if v.len() >= max {
                break;
            }
            let e = m.encode();
            let take = (e.len() - skip).min(max - v.len());
            v.extend_from_slice(&e[skip..skip + take]);
            skip = 0;
        }
        v
    }

    /// Drops `n` bytes from the front of the queue.
    fn consume_output(&mut self, mut n: usize) {
        n = n.min(self.out_bytes);
        self.out_bytes -= n;
        while n > 0 {
            let Some(front) = self.out.front() else { break };
            let left = front.encoded_len() - self.out_offset;
            if n >= left {
                n -= left;
                self.out.pop_front();
                self.out_offset = 0;
            } else {
                self.out_offset += n;
                n = 0;
            }
        }
    }
}

/// What one [`Xenstored::service_ring`] call moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingActivity {
    /// Request bytes consumed (notify the guest if non-zero: space freed).
    pub consumed: usize,
    /// Response bytes produced (notify the guest if non-zero).
    pub produced: usize,
}

impl RingActivity {
    /// Whether the guest should be notified on its store event channel.
    pub fn notify(&self) -> bool {
        self.consumed > 0 || self.produced > 0
    }
}

const OK: &[u8] = b"OK\0";

/// The xenstore daemon.
#[derive(Debug)]
pub struct Xenstored {
    store: Store,
    conns: BTreeMap<DomId, Connection>,
    quota: Quota,
}

impl Default for Xenstored {
    fn default() -> Self {
        Xenstored::new()
    }
}

impl Xenstored {
    /// A daemon with the default quotas and the standard tree.
    pub fn new() -> Xenstored {
        Xenstored::with_quota(Quota::default())
    }

    /// A daemon with the given quotas and the standard tree: `/local/domain/0`
    /// (`name` = `Domain-0`, `domid` = `0`), `/vm`, `/tool/xenstored`, all owned by
    /// dom0 and private to it.
    pub fn with_quota(quota: Quota) -> Xenstored {
        let mut x = Xenstored {
            store: Store::new(),
            conns: BTreeMap::new(),
            quota,
        };
        x.conns.insert(0, Connection::new(0, 0, 0));
        for p in ["/local/domain/0", "/vm", "/tool/xenstored"] {
            x.mkdir(p).expect("standard tree");
        }
        x.write("/local/domain/0/name", b"Domain-0")
            .expect("standard tree");
        x.write("/local/domain/0/domid", b"0")
            .expect("standard tree");
        x
    }

    /// The quotas in force.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The committed tree (read-only).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The bytes `domid` makes the daemon hold (see the module documentation).
    pub fn usage(&self, domid: DomId) -> usize {
        let nodes = self.store.usage(domid).bytes;
        self.conns.get(&domid).map_or(nodes, |c| {
            nodes + c.watch_bytes() + c.transaction_bytes() + c.out_bytes
        })
    }

    /// Bytes `domid` may still add (unbounded for dom0).
    fn budget(&self, domid: DomId) -> usize {
        if domid == 0 {
            usize::MAX
        } else {
            self.quota
                .max_memory_per_domain
                .saturating_sub(self.usage(domid))
        }
    }

    /// Resolves a node path from `domid`, refusing an unprivileged domain's
    /// path longer than [`Quota::max_path_len`] (below its home) before
    /// anything walks it.
    fn node_path(&self, domid: DomId, raw: &[u8]) -> Result<String, XsError> {
        let path = resolve(domid, raw)?;
        self.check_path_len(domid, &path)?;
        Ok(path)
    }

    fn check_path_len(&self, domid: DomId, path: &str) -> Result<(), XsError> {
        if domid == 0 {
            return Ok(());
        }
        let home = domain_path(domid);
        let below = match path.strip_prefix(home.as_str()) {
            Some("") => "",
            Some(r) => r.strip_prefix('/').unwrap_or(path),
            None => path,
        };
        if below.len() > self.quota.max_path_len {
            return Err(XsError::EINVAL);
        }
        Ok(())
    }

    /// The connection of `domid`, if introduced (dom0 always is).
    pub fn connection(&self, domid: DomId) -> Option<&Connection> {
        self.conns.get(&domid)
    }

    /// Domains with queued output (their rings need servicing).
    pub fn connections_with_output(&self) -> Vec<DomId> {
        self.conns
            .values()
            .filter(|c| c.out_bytes > 0)
            .map(|c| c.domid)
            .collect()
    }

    // ----- byte and ring level -----

    fn live_conn(&mut self, domid: DomId) -> Result<&mut Connection, ProtocolError> {
        match self.conns.get_mut(&domid) {
            Some(c) if c.failed.is_none() => Ok(c),
            _ => Err(ProtocolError::NotConnected),
        }
    }

    fn fail(&mut self, domid: DomId, e: ProtocolError) -> ProtocolError {
        if let Some(c) = self.conns.get_mut(&domid) {
            c.failed = Some(e);
            c.transactions.clear();
        }
        e
    }

    /// Feeds request bytes from `domid`, handling each completed message and
    /// queueing the replies and events. A protocol error stops the connection.
    pub fn receive(&mut self, domid: DomId, bytes: &[u8]) -> Result<(), ProtocolError> {
        let conn = self.live_conn(domid)?;
        let mut msgs = Vec::new();
        let r = conn.decoder.feed(bytes, &mut msgs);
        for m in &msgs {
            let out = self.handle(domid, m)?;
            for o in out {
                self.enqueue(domid, o);
            }
        }
        r.map_err(|e| self.fail(domid, e))
    }

    /// Takes up to `max` bytes of queued output for `domid`.
    pub fn drain_output(&mut self, domid: DomId, max: usize) -> Vec<u8> {
        let Some(c) = self.conns.get_mut(&domid) else {
            return Vec::new();
        };
        let v = c.peek_output(max);
        c.consume_output(v.len());
        v
    }

    /// Takes the whole queued messages for `domid` (for dom0's in-process
    /// consumers, which have no ring).
    pub fn take_messages(&mut self, domid: DomId) -> Vec<Message> {
        let Some(c) = self.conns.get_mut(&domid) else {
            return Vec::new();
        };
        let keep = if c.out_offset > 0 {
            c.out.pop_front()
        } else {
            None
        };
        let v: Vec<Message> = c.out.drain(..).collect();
        c.out_bytes = 0;
        if let Some(k) = keep {
            c.out_bytes = k.encoded_len() - c.out_offset;
            c.out.push_back(k);
        }
        v
    }

    /// Feeds request bytes and returns all output now queued for `domid`.
    pub fn process_bytes(&mut self, domid: DomId, bytes: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        self.receive(domid, bytes)?;
        Ok(self.drain_output(domid, usize::MAX))
    }

    fn flush_to_ring<P: RingPage + ?Sized>(
        &mut self,
        domid: DomId,
        page: &mut P,
    ) -> Result<usize, ProtocolError> {
        let mut produced = 0;
        loop {
            let free = rsp_free(page).map_err(|e| self.fail(domid, e))?;
            let Some(c) = self.conns.get_mut(&domid) else {
                return Ok(produced);
            };
            let chunk = c.peek_output(free);
            if chunk.is_empty() {
                return Ok(produced);
            }
            let n = write_responses(page, &chunk).map_err(|e| self.fail(domid, e))?;
            if let Some(c) = self.conns.get_mut(&domid) {
                c.consume_output(n);
            }
            produced += n;
            if n == 0 {
                return Ok(produced);
            }
        }
    }

    /// Serves `domid`'s ring: writes queued output, reads and handles requests
    /// while the domain is under its output quota, and writes the replies.
    pub fn service_ring<P: RingPage + ?Sized>(
        &mut self,
        domid: DomId,
        page: &mut P,
    ) -> Result<RingActivity, ProtocolError> {
        self.live_conn(domid)?;
        let mut act = RingActivity {
            produced: self.flush_to_ring(domid, page)?,
            consumed: 0,
        };
        let mut buf = [0u8; XENSTORE_RING_SIZE];
        loop {
            let max_out = self.quota.max_pending_output;
            let c = self.live_conn(domid)?;
            if c.domid != 0 && c.out_bytes >= max_out {
                break;
            }
            let want = c.decoder.wanted().min(buf.len());
            let n = read_requests(page, &mut buf[..want]).map_err(|e| self.fail(domid, e))?;
            if n == 0 {
                break;
            }
            act.consumed += n;
            self.receive(domid, &buf[..n])?;
            act.produced += self.flush_to_ring(domid, page)?;
        }
        Ok(act)
    }

    fn enqueue(&mut self, domid: DomId, m: Message) {
        let limit = self.quota.max_pending_output;
        let Some(c) = self.conns.get_mut(&domid) else {
            return;
        };
        if m.header.type_ == XS_WATCH_EVENT && domid != 0 && c.out_bytes + m.encoded_len() > limit {
            c.dropped_events += 1;
            return;
        }
        c.push(m);
    }

    // ----- message level -----

    /// Handles one request from `domid`: returns the reply followed by any watch
    /// events this request fired for `domid` itself; events for other connections
    /// are queued on them.
    pub fn handle(&mut self, domid: DomId, msg: &Message) -> Result<Vec<Message>, ProtocolError> {
        self.live_conn(domid)?;
        let mut own = Vec::new();
        let hdr = msg.header;
        let reply = match self.request(domid, &hdr, &msg.payload, &mut own) {
            Ok(p) => Message::reply(&hdr, p),
            Err(e) => Message::error(&hdr, e),
        };
        let mut out = Vec::with_capacity(1 + own.len());
        out.push(reply);
        out.extend(own);
        Ok(out)
    }

    fn request(
        &mut self,
        domid: DomId,
        hdr: &XsdSockmsg,
        p: &[u8],
        own: &mut Vec<Message>,
    ) -> Result<Vec<u8>, XsError> {
        let tx = hdr.tx_id;
        if tx != 0 {
            let t = self.conns[&domid]
                .transactions
                .get(&tx)
                .ok_or(XsError::ENOENT)?;
            if t.doomed && hdr.type_ != XS_TRANSACTION_END {
                return Err(XsError::ENOSPC);
            }
        }
        let allocates = matches!(
            hdr.type_,
            XS_WRITE | XS_MKDIR | XS_SET_PERMS | XS_WATCH | XS_TRANSACTION_START
        ) || (tx != 0 && hdr.type_ != XS_TRANSACTION_END);
        if domid != 0 && allocates && self.budget(domid) == 0 {
            return Err(XsError::ENOSPC);
        }
        let ok = |_| Vec::from(OK);
        match hdr.type_ {
            XS_DIRECTORY => {
                let names = self.op_directory(domid, tx, args(p, 1)?[0])?;
                let mut v = Vec::new();
                for n in names {
                    v.extend_from_slice(n.as_bytes());
                    v.push(0);
                }
                fits(v)
            }
            XS_READ => fits(self.op_read(domid, tx, args(p, 1)?[0])?),
            XS_GET_PERMS => {
                let mut v = Vec::new();
                self.op_get_perms(domid, tx, args(p, 1)?[0])?.encode(&mut v);
                fits(v)
            }
            XS_WATCH => {
                let a = args(p, 2)?;
                self.op_watch(domid, a[0], a[1], own).map(ok)
            }
            XS_UNWATCH => {
                let a = args(p, 2)?;
                self.op_unwatch(domid, a[0], a[1]).map(ok)
            }
            XS_TRANSACTION_START => {
                if tx != 0 {
                    return Err(XsError::EBUSY);
                }
                let id = self.op_transaction_start(domid)?;
                let mut v = Vec::from(format!("{id}").as_bytes());
                v.push(0);
                Ok(v)
            }
            XS_TRANSACTION_END => {
                let commit = match args(p, 1)?[0] {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(XsError::EINVAL),
                };
                self.op_transaction_end(domid, tx, commit, own).map(ok)
            }
            XS_INTRODUCE => {
                let a = args(p, 3)?;
                let mfn = parse_decimal(a[1], u64::from(XenPfn::MAX))? as XenPfn;
                let port = parse_decimal(a[2], u64::from(EvtchnPort::MAX))? as EvtchnPort;
                self.op_introduce(domid, parse_domid(a[0])?, mfn, port, own)
                    .map(ok)
            }
            XS_RELEASE => {
                let d = parse_domid(args(p, 1)?[0])?;
                self.op_release(domid, d, own).map(ok)
            }
            XS_GET_DOMAIN_PATH => {
                let d = parse_domid(args(p, 1)?[0])?;
                let mut v = Vec::from(domain_path(d).as_bytes());
                v.push(0);
                Ok(v)
            }
            XS_WRITE => {
                let (path, value) = path_and_value(p)?;
                self.op_write(domid, tx, path, value, own).map(ok)
            }
            XS_MKDIR => self.op_mkdir(domid, tx, args(p, 1)?[0], own).map(ok),
            XS_RM => self.op_rm(domid, tx, args(p, 1)?[0], own).map(ok),
            XS_SET_PERMS => {
                let s = strings(p)?;
                let (path, perms) = s.split_first().ok_or(XsError::EINVAL)?;
                let perms = Perms::parse(perms.iter().copied())?;
                self.op_set_perms(domid, tx, path, perms, own).map(ok)
            }
            XS_IS_DOMAIN_INTRODUCED => {
                privileged(domid)?;
                let d = parse_domid(args(p, 1)?[0])?;
                Ok(Vec::from(if self.conns.contains_key(&d) {
                    &b"T\0"[..]
                } else {
                    b"F\0"
                }))
            }
            XS_RESUME => {
                let d = parse_domid(args(p, 1)?[0])?;
                self.op_resume(domid, d).map(ok)
            }
            XS_SET_TARGET => {
                let a = args(p, 2)?;
                let (d, t) = (parse_domid(a[0])?, parse_domid(a[1])?);
                self.op_set_target(domid, d, t).map(ok)
            }
            XS_CONTROL => self.op_control(domid, p),
            _ => Err(XsError::EINVAL),
        }
    }

    // ----- operations (shared by the wire and the in-process API) -----

    fn with_tree<R>(
        &mut self,
        domid: DomId,
        tx: u32,
        own: &mut Vec<Message>,
        f: impl FnOnce(&mut dyn Tree, &Principal, &TreeQuota) -> Result<(R, Vec<Change>), XsError>,
    ) -> Result<R, XsError> {
        let budget = self.budget(domid);
        let tq = TreeQuota {
            max_nodes_per_domain: self.quota.max_nodes_per_domain,
            max_value_size: self.quota.max_value_size,
            max_perms: self.quota.max_perms,
            byte_budget: budget,
        };
        let max_records = self.quota.max_transaction_records;
        let conn = self.conns.get_mut(&domid).ok_or(XsError::EACCES)?;
        let who = conn.principal();
        if tx == 0 {
            let (r, changes) = f(&mut self.store, &who, &tq)?;
            self.fire_changes(domid, &changes, own);
            Ok(r)
        } else {
            let t = conn.transactions.get_mut(&tx).ok_or(XsError::ENOENT)?;
            let before = t.tx.bytes();
            let mut view = TxView {
                base: &self.store,
                tx: &mut t.tx,
            };
            let res = f(&mut view, &who, &tq).map(|(r, changes)| {
                t.tx.add_changes(changes);
                r
            });
            let grew = t.tx.bytes().saturating_sub(before);
            if domid != 0 && (grew > budget || t.tx.records() > max_records) {
                // Past a quota: drop what the transaction holds at once.
                t.tx = Transaction::default();
                t.doomed = true;
                return Err(XsError::ENOSPC);
            }
            res
        }
    }

    fn op_read(&mut self, domid: DomId, tx: u32, path: &[u8]) -> Result<Vec<u8>, XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, &mut Vec::new(), |t, who, _| {
            Ok((store::read(t, who, &path)?, Vec::new()))
        })
    }

    fn op_directory(&mut self, domid: DomId, tx: u32, path: &[u8]) -> Result<Vec<String>, XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, &mut Vec::new(), |t, who, _| {
            Ok((store::directory(t, who, &path)?, Vec::new()))
        })
    }

    fn op_get_perms(&mut self, domid: DomId, tx: u32, path: &[u8]) -> Result<Perms, XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, &mut Vec::new(), |t, who, _| {
            Ok((store::get_perms(t, who, &path)?, Vec::new()))
        })
    }

    fn op_write(
        &mut self,
        domid: DomId,
        tx: u32,
        path: &[u8],
        value: &[u8],
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, own, |t, who, q| {
            Ok(((), alloc::vec![store::write(t, who, q, &path, value)?]))
        })
    }

    fn op_mkdir(
        &mut self,
        domid: DomId,
        tx: u32,
        path: &[u8],
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, own, |t, who, q| {
            Ok(((), store::mkdir(t, who, q, &path)?.into_iter().collect()))
        })
    }

    fn op_rm(
        &mut self,
        domid: DomId,
        tx: u32,
        path: &[u8],
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, own, |t, who, _| {
            Ok(((), store::rm(t, who, &path)?.into_iter().collect()))
        })
    }

    fn op_set_perms(
        &mut self,
        domid: DomId,
        tx: u32,
        path: &[u8],
        perms: Perms,
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let path = self.node_path(domid, path)?;
        self.with_tree(domid, tx, own, |t, who, q| {
            Ok(((), alloc::vec![store::set_perms(t, who, q, &path, perms)?]))
        })
    }

    fn op_watch(
        &mut self,
        domid: DomId,
        path: &[u8],
        token: &[u8],
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let wp = resolve_watch(domid, path)?;
        if !wp.special {
            self.check_path_len(domid, &wp.path)?;
        }
        let max = self.quota.max_watches;
        let budget = self.budget(domid);
        let conn = self.conns.get_mut(&domid).ok_or(XsError::EACCES)?;
        if conn
            .watches
            .iter()
            .any(|w| w.path == wp.path && w.token == token)
        {
            return Err(XsError::EEXIST);
        }
        if domid != 0 && conn.watches.len() >= max {
            return Err(XsError::E2BIG);
        }
        let w = Watch {
            path: wp.path,
            token: Vec::from(token),
            relative: wp.relative,
            special: wp.special,
        };
        if domid != 0 && watch_cost(&w) > budget {
            return Err(XsError::ENOSPC);
        }
        own.push(Message::watch_event(&w.render(domid, &w.path), token));
        conn.watches.push(w);
        Ok(())
    }

    fn op_unwatch(&mut self, domid: DomId, path: &[u8], token: &[u8]) -> Result<(), XsError> {
        let wp = resolve_watch(domid, path)?;
        let conn = self.conns.get_mut(&domid).ok_or(XsError::EACCES)?;
        let i = conn
            .watches
            .iter()
            .position(|w| w.path == wp.path && w.token == token)
            .ok_or(XsError::ENOENT)?;
        conn.watches.remove(i);
        Ok(())
    }

    fn op_transaction_start(&mut self, domid: DomId) -> Result<u32, XsError> {
        let max = self.quota.max_transactions;
        let conn = self.conns.get_mut(&domid).ok_or(XsError::EACCES)?;
        if domid != 0 && conn.transactions.len() >= max {
            return Err(XsError::ENOSPC);
        }
        // Ids are fresh per connection: skip 0 and ids still open.
        let mut id = conn.next_tx_id;
        while id == 0 || conn.transactions.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        conn.next_tx_id = id.wrapping_add(1);
        conn.transactions.insert(id, OpenTx::default());
        Ok(id)
    }

    fn op_transaction_end(
        &mut self,
        domid: DomId,
        tx: u32,
        commit: bool,
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        let conn = self.conns.get_mut(&domid).ok_or(XsError::EACCES)?;
        let t = conn.transactions.remove(&tx).ok_or(XsError::ENOENT)?;
        if commit {
            if t.doomed {
                return Err(XsError::ENOSPC);
            }
            // The nodes may take what the domain's other holdings leave.
            let others = self.usage(domid) - self.store.usage(domid).bytes;
            let limit = (domid != 0).then_some((
                domid,
                self.quota.max_nodes_per_domain,
                self.quota.max_memory_per_domain.saturating_sub(others),
            ));
            let changes = t.tx.commit(&mut self.store, limit)?;
            self.fire_changes(domid, &changes, own);
        }
        Ok(())
    }

    fn op_introduce(
        &mut self,
        caller: DomId,
        domid: DomId,
        mfn: XenPfn,
        port: EvtchnPort,
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        privileged(caller)?;
        if domid == 0 || domid >= DOMID_FIRST_RESERVED {
            return Err(XsError::EINVAL);
        }
        if let Some(c) = self.conns.get_mut(&domid) {
            // Re-introduction with the same page rebinds the event channel.
            if c.mfn != mfn {
                return Err(XsError::EEXIST);
            }
            c.port = port;
            return Ok(());
        }
        self.conns.insert(domid, Connection::new(domid, mfn, port));
        self.fire_special(caller, XS_WATCH_INTRODUCE_DOMAIN, own);
        Ok(())
    }

    fn op_release(
        &mut self,
        caller: DomId,
        domid: DomId,
        own: &mut Vec<Message>,
    ) -> Result<(), XsError> {
        privileged(caller)?;
        if domid == 0 {
            return Err(XsError::EINVAL);
        }
        self.conns.remove(&domid).ok_or(XsError::ENOENT)?;
        // A domain targeting the released one loses that right.
        for c in self.conns.values_mut() {
            if c.target == Some(domid) {
                c.target = None;
            }
        }
        self.fire_special(caller, XS_WATCH_RELEASE_DOMAIN, own);
        Ok(())
    }

    fn op_resume(&mut self, caller: DomId, domid: DomId) -> Result<(), XsError> {
        privileged(caller)?;
        let c = self.conns.get_mut(&domid).ok_or(XsError::ENOENT)?;
        c.shutdown = false;
        Ok(())
    }

    fn op_set_target(&mut self, caller: DomId, domid: DomId, target: DomId) -> Result<(), XsError> {
        privileged(caller)?;
        if !self.conns.contains_key(&target) {
            return Err(XsError::ENOENT);
        }
        let c = self.conns.get_mut(&domid).ok_or(XsError::ENOENT)?;
        c.target = Some(target);
        Ok(())
    }

    /// `XS_CONTROL`/`XS_DEBUG` (dom0 only): `check\0` verifies the tree's
    /// invariants (`OK` or `EIO`); anything else is `ENOSYS`.
    fn op_control(&mut self, caller: DomId, p: &[u8]) -> Result<Vec<u8>, XsError> {
        privileged(caller)?;
        match strings(p)?.first() {
            Some(&b"check") => self
                .store
                .check()
                .map(|_| Vec::from(OK))
                .map_err(|_| XsError::EIO),
            _ => Err(XsError::ENOSYS),
        }
    }

    // ----- watch delivery -----

    fn deliver(&mut self, caller: DomId, events: Vec<(DomId, Message)>, own: &mut Vec<Message>) {
        for (d, m) in events {
            if d == caller {
                own.push(m);
            } else {
                self.enqueue(d, m);
            }
        }
    }

    /// Queues the events `changes` fire. Each event is checked against its
    /// watcher's output quota before it is built, so a change seen by many
    /// watches never makes the daemon hold more than the quotas allow.
    fn fire_changes(&mut self, caller: DomId, changes: &[Change], own: &mut Vec<Message>) {
        let limit = self.quota.max_pending_output;
        let mut own_bytes = 0;
        for ch in changes {
            for c in self.conns.values_mut() {
                let who = c.principal();
                let allowed = who.is_privileged() || ch.perms.iter().any(|p| p.can_read(&who));
                if !allowed {
                    continue;
                }
                for i in 0..c.watches.len() {
                    let w = &c.watches[i];
                    let Some(path) = w.sees(ch) else { continue };
                    let rendered = w.render(c.domid, path);
                    let len = HEADER_LEN + rendered.len() + w.token.len() + 2;
                    let queued = c.out_bytes + if c.domid == caller { own_bytes } else { 0 };
                    if c.domid != 0 && queued + len > limit {
                        c.dropped_events += 1;
                        continue;
                    }
                    let m = Message::watch_event(&rendered, &w.token);
                    if c.domid == caller {
                        own_bytes += len;
                        own.push(m);
                    } else {
                        c.push(m);
                    }
                }
            }
        }
    }

    fn fire_special(&mut self, caller: DomId, name: &str, own: &mut Vec<Message>) {
        let mut events = Vec::new();
        for c in self.conns.values() {
            for w in c.watches.iter().filter(|w| w.special && w.path == name) {
                events.push((c.domid, Message::watch_event(name.as_bytes(), &w.token)));
            }
        }
        self.deliver(caller, events, own);
    }

    // ----- in-process API for dom0's toolstack (acts as domid 0, no ring) -----
    //
    // Watch events fired by these calls for dom0's own watches are queued on
    // dom0's connection (see `take_messages(0)`).

    fn as_dom0<R>(
        &mut self,
        f: impl FnOnce(&mut Self, &mut Vec<Message>) -> Result<R, XsError>,
    ) -> Result<R, XsError> {
        let mut own = Vec::new();
        let r = f(self, &mut own);
        for m in own {
            self.enqueue(0, m);
        }
        r
    }

    /// Reads a node as dom0.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.op_read(0, 0, path.as_bytes())
    }

    /// Lists a node's children as dom0.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        self.op_directory(0, 0, path.as_bytes())
    }

    /// A node's permissions, as dom0.
    pub fn get_perms(&mut self, path: &str) -> Result<Perms, XsError> {
        self.op_get_perms(0, 0, path.as_bytes())
    }

    /// Writes a node (creating parents) as dom0.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_write(0, 0, path.as_bytes(), value, own))
    }

    /// Creates a node (and parents) as dom0.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_mkdir(0, 0, path.as_bytes(), own))
    }

    /// Removes a subtree as dom0.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_rm(0, 0, path.as_bytes(), own))
    }

    /// Sets a node's permissions as dom0.
    pub fn set_perms(&mut self, path: &str, perms: Perms) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_set_perms(0, 0, path.as_bytes(), perms, own))
    }

    /// Registers a watch for dom0 (fires once at once, like `XS_WATCH`).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_watch(0, path.as_bytes(), token.as_bytes(), own))
    }

    /// Removes one of dom0's watches.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.op_unwatch(0, path.as_bytes(), token.as_bytes())
    }

    /// Introduces a domain: creates its connection, fires `@introduceDomain`.
    pub fn introduce(
        &mut self,
        domid: DomId,
        mfn: XenPfn,
        port: EvtchnPort,
    ) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_introduce(0, domid, mfn, port, own))
    }

    /// Releases a domain: drops its connection, watches, transactions and queued
    /// output, and fires `@releaseDomain`.
    pub fn release(&mut self, domid: DomId) -> Result<(), XsError> {
        self.as_dom0(|x, own| x.op_release(0, domid, own))
    }

    /// Records that a domain shut down (dom0 learned it from `VIRQ_DOM_EXC`) and
    /// fires `@releaseDomain` so watchers look; `XS_RESUME` clears the mark.
    pub fn domain_shutdown(&mut self, domid: DomId) -> Result<(), XsError> {
        self.as_dom0(|x, own| {
            let c = x.conns.get_mut(&domid).ok_or(XsError::ENOENT)?;
            c.shutdown = true;
            x.fire_special(0, XS_WATCH_RELEASE_DOMAIN, own);
            Ok(())
        })
    }

    /// Clears a domain's shutdown mark (`XS_RESUME`).
    pub fn resume(&mut self, domid: DomId) -> Result<(), XsError> {
        self.op_resume(0, domid)
    }

    /// Whether `domid` has a connection (dom0 always has).
    pub fn is_domain_introduced(&self, domid: DomId) -> bool {
        self.conns.contains_key(&domid)
    }

    /// Lets `domid` act for `target` in permission checks (`XS_SET_TARGET`).
    pub fn set_target(&mut self, domid: DomId, target: DomId) -> Result<(), XsError> {
        self.op_set_target(0, domid, target)
    }
}

fn privileged(caller: DomId) -> Result<(), XsError> {
    if caller == 0 {
        Ok(())
    } else {
        Err(XsError::EACCES)
    }
}

/// A reply payload must fit one message.
fn fits(v: Vec<u8>) -> Result<Vec<u8>, XsError> {
    if v.len() > XENSTORE_PAYLOAD_MAX as usize {
        Err(XsError::E2BIG)
    } else {
        Ok(v)
    }
}
