//! The xenstore client's logic (XEN-PV-ABI.md §13), over any [`Transport`]:
//! one request at a time, each with a fresh `req_id`; the reply with that id
//! is the answer, replies with another id (left over from a request that
//! timed out) are discarded, and `XS_WATCH_EVENT`s that arrive meanwhile are
//! queued for [`Client::next_event`]. Pure: the guest's transport over the
//! store ring is in `pvrt::xenbus`; tests use an in-memory daemon.
//!
//! Invariant: the request stream is never left with half a message in it. If
//! a transport failure interrupts a request after some of its bytes were
//! queued, the client is marked broken and refuses further requests
//! ([`XsError::Broken`]).
#![forbid(unsafe_code)]

use xen_abi::errno::Errno;
use xen_abi::xenstore::{
    XS_DIRECTORY, XS_GET_DOMAIN_PATH, XS_MKDIR, XS_READ, XS_RM, XS_TRANSACTION_END,
    XS_TRANSACTION_START, XS_UNWATCH, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
};

use super::wire::{
    EventQueue, Receiver, WatchEvent, XsError, check_arg, check_reply, parse_tx_id,
    parse_watch_event, request_header, strings,
};

/// The byte pipes to the daemon and a way to wait for it.
pub trait Transport {
    /// Queues as many of `bytes` as fit on the request ring (0 when it is
    /// full) and notifies the daemon if any were queued.
    fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError>;
    /// Takes up to `buf.len()` bytes from the response ring (0 when it is
    /// empty) and notifies the daemon if any were taken.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, XsError>;
    /// Sleeps until `read` would return bytes or, if `want_write`, `write`
    /// would accept some; [`XsError::TimedOut`] if that does not happen
    /// within the transport's timeout.
    fn wait(&mut self, want_write: bool) -> Result<(), XsError>;
}

/// A transaction id (`Tx::NONE` = outside any transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tx(pub u32);

impl Tx {
    /// No transaction.
    pub const NONE: Tx = Tx(0);
}

/// How often [`Client::transaction`] starts over after `EAGAIN`.
pub const TX_ATTEMPTS: u32 = 16;

/// A xenstore connection.
pub struct Client<T> {
    transport: T,
    next_req_id: u32,
    rx: Receiver,
    events: EventQueue,
    broken: bool,
    stale_replies: u32,
}

impl<T: Transport> Client<T> {
    /// A client on `transport` (nothing is sent yet).
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            next_req_id: 1,
            rx: Receiver::new(),
            events: EventQueue::new(),
            broken: false,
            stale_replies: 0,
        }
    }

    /// The transport (e.g. to change its timeout).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Whether a failure has made the connection unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Replies discarded so far because their `req_id` matched no waiting
    /// request.
    pub fn stale_replies(&self) -> u32 {
        self.stale_replies
    }

    /// `XS_READ`: the node's value.
    pub fn read(&mut self, tx: Tx, path: &str) -> Result<&[u8], XsError> {
        let path = check_arg(path)?;
        self.request(XS_READ, tx, &[path, b"\0"])
    }

    /// `XS_WRITE`: sets the node's value (creating missing parents).
    pub fn write(&mut self, tx: Tx, path: &str, value: &[u8]) -> Result<(), XsError> {
        let path = check_arg(path)?;
        self.request(XS_WRITE, tx, &[path, b"\0", value]).map(drop)
    }

    /// `XS_DIRECTORY`: the names of the node's children.
    pub fn directory(
        &mut self,
        tx: Tx,
        path: &str,
    ) -> Result<impl Iterator<Item = &[u8]>, XsError> {
        let path = check_arg(path)?;
        self.request(XS_DIRECTORY, tx, &[path, b"\0"]).map(strings)
    }

    /// `XS_MKDIR`: creates the node (empty) if it does not exist.
    pub fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        let path = check_arg(path)?;
        self.request(XS_MKDIR, tx, &[path, b"\0"]).map(drop)
    }

    /// `XS_RM`: removes the node and everything below it.
    pub fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        let path = check_arg(path)?;
        self.request(XS_RM, tx, &[path, b"\0"]).map(drop)
    }

    /// `XS_GET_DOMAIN_PATH`: `/local/domain/<domid>`.
    pub fn get_domain_path(&mut self, domid: u16) -> Result<&[u8], XsError> {
        let mut digits = [0u8; 5];
        let n = decimal(u32::from(domid), &mut digits);
        self.request(XS_GET_DOMAIN_PATH, Tx::NONE, &[&digits[..n], b"\0"])
            .map(|p| p.strip_suffix(b"\0").unwrap_or(p))
    }

    /// `XS_WATCH`: events for `path` and below will carry `token`. The daemon
    /// fires the watch once right away.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let (path, token) = (check_arg(path)?, check_arg(token)?);
        self.request(XS_WATCH, Tx::NONE, &[path, b"\0", token, b"\0"])
            .map(drop)
    }

    /// `XS_UNWATCH`.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let (path, token) = (check_arg(path)?, check_arg(token)?);
        self.request(XS_UNWATCH, Tx::NONE, &[path, b"\0", token, b"\0"])
            .map(drop)
    }

    /// `XS_TRANSACTION_START`: a new transaction.
    pub fn transaction_start(&mut self) -> Result<Tx, XsError> {
        let reply = self.request(XS_TRANSACTION_START, Tx::NONE, &[b"\0"])?;
        parse_tx_id(reply).map(Tx).ok_or(XsError::Protocol)
    }

    /// `XS_TRANSACTION_END`: commits (`commit`) or aborts `tx`. A commit may
    /// fail with `EAGAIN` ([`XsError::is_again`]): start over.
    pub fn transaction_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(XS_TRANSACTION_END, tx, &[arg]).map(drop)
    }

    /// Runs `f` in a transaction and commits it, starting over (up to
    /// [`TX_ATTEMPTS`] times) when the commit or an operation says `EAGAIN`.
    /// If `f` fails otherwise, the transaction is aborted and its error
    /// returned.
    pub fn transaction<R>(
        &mut self,
        mut f: impl FnMut(&mut Self, Tx) -> Result<R, XsError>,
    ) -> Result<R, XsError> {
        for _ in 0..TX_ATTEMPTS {
            let tx = self.transaction_start()?;
            match f(self, tx) {
                Ok(r) => match self.transaction_end(tx, true) {
                    Ok(()) => return Ok(r),
                    Err(e) if e.is_again() => continue,
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    // An abort's own failure adds nothing to `e`.
                    let _ = self.transaction_end(tx, false);
                    if !e.is_again() {
                        return Err(e);
                    }
                }
            }
        }
        Err(XsError::Daemon(Errno::EAGAIN))
    }

    /// Takes everything the daemon has sent so far, without waiting: queues
    /// watch events and discards replies nobody waits for.
    pub fn poll(&mut self) -> Result<(), XsError> {
        while self.pump()? {
            self.stale_replies += 1;
            self.rx.clear();
        }
        Ok(())
    }

    /// Whether a watch event is queued (after [`Client::poll`]).
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// The oldest watch event, copied into `buf`, without waiting (`None` if
    /// there is none). Malformed events are skipped.
    pub fn next_event<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<WatchEvent<'b>>, XsError> {
        self.poll()?;
        Ok(match self.pop_event(buf)? {
            Some(n) => parse_watch_event(&buf[..n]),
            None => None,
        })
    }

    /// Like [`Client::next_event`], but waits for an event.
    pub fn wait_event<'b>(&mut self, buf: &'b mut [u8]) -> Result<WatchEvent<'b>, XsError> {
        let n = loop {
            self.poll()?;
            if let Some(n) = self.pop_event(buf)? {
                break n;
            }
            self.transport.wait(false)?;
        };
        parse_watch_event(&buf[..n]).ok_or(XsError::Protocol)
    }

    /// Pops queued events into `buf` until a well-formed one (its length).
    fn pop_event(&mut self, buf: &mut [u8]) -> Result<Option<usize>, XsError> {
        while let Some(popped) = self.events.pop(buf) {
            let n = popped?;
            if parse_watch_event(&buf[..n]).is_some() {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// Whether watch events were dropped (queue full) since the last call:
    /// the owner should re-read every node it watches.
    pub fn take_lost_events(&mut self) -> bool {
        self.events.take_lost()
    }

    /// Reads what is available into the receiver until a message other than
    /// a watch event is complete (`true`, left in the receiver) or nothing
    /// more is available (`false`). Watch events go to the queue.
    fn pump(&mut self) -> Result<bool, XsError> {
        loop {
            if let Some((h, payload)) = self.rx.message() {
                if h.type_ != XS_WATCH_EVENT {
                    return Ok(true);
                }
                self.events.push(payload);
                self.rx.clear();
                continue;
            }
            let n = self.transport.read(self.rx.space()).inspect_err(|_| {
                self.broken = true;
            })?;
            if n == 0 {
                return Ok(false);
            }
            if let Err(e) = self.rx.advance(n) {
                self.broken = true;
                return Err(e);
            }
        }
    }

    /// Writes all of `bytes`, taking in what the daemon sends meanwhile (so a
    /// daemon blocked on a full response ring can go on).
    fn write_all(&mut self, mut bytes: &[u8], sent_any: &mut bool) -> Result<(), XsError> {
        while !bytes.is_empty() {
            let n = self.transport.write(bytes)?;
            if n > 0 {
                *sent_any = true;
                bytes = &bytes[n..];
                continue;
            }
            self.poll()?;
            self.transport.wait(true)?;
        }
        Ok(())
    }

    /// Sends one request and returns the payload of its reply.
    fn request(&mut self, type_: u32, tx: Tx, parts: &[&[u8]]) -> Result<&[u8], XsError> {
        if self.broken {
            return Err(XsError::Broken);
        }
        let req_id = self.next_req_id;
        self.next_req_id = match req_id.wrapping_add(1) {
            0 => 1,
            id => id,
        };
        let header = request_header(type_, req_id, tx.0, parts)?.encode();
        // Anything complete before this request cannot be its reply.
        self.poll()?;
        let mut sent_any = false;
        let mut sent = self.write_all(&header, &mut sent_any);
        for part in parts {
            if sent.is_err() {
                break;
            }
            sent = self.write_all(part, &mut sent_any);
        }
        if let Err(e) = sent {
            if sent_any {
                self.broken = true;
            }
            return Err(e);
        }
        loop {
            if self.pump()? {
                match self.rx.message() {
                    Some((h, _)) if h.req_id == req_id => break,
                    _ => {
                        self.stale_replies += 1;
                        self.rx.clear();
                        continue;
                    }
                }
            }
            self.transport.wait(false)?;
        }
        // The reply's bytes stay in the receiver (and are returned) until
        // the next read into it; it no longer counts as a message.
        self.rx.mark_consumed();
        let (h, payload) = self.rx.consumed_message().ok_or(XsError::Protocol)?;
        check_reply(type_, &h, payload)?;
        Ok(payload)
    }
}

/// Writes `v` in decimal into `out`; returns the number of digits.
fn decimal(mut v: u32, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = n.min(out.len());
    for (i, d) in tmp[..n].iter().rev().enumerate() {
        out[i] = *d;
    }
    n
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::vec::Vec;

    use super::super::wire::{HEADER_LEN, Header};
    use super::*;
    use xen_abi::xenstore::XS_ERROR;

    type Handler = Box<dyn FnMut(Header, &[u8]) -> Vec<Vec<u8>>>;

    /// An in-memory daemon: parses whole requests as they are written and
    /// answers with what `handler` returns.
    struct Fake {
        inbox: Vec<u8>,
        outbox: VecDeque<u8>,
        /// Messages that appear only when the client waits.
        late: VecDeque<Vec<u8>>,
        requests: Vec<(Header, Vec<u8>)>,
        handler: Handler,
        per_write: usize,
        per_read: usize,
        /// `write` calls that find the ring full before it drains.
        full_writes: u32,
        /// Bytes the request ring takes in all before it stays full.
        budget: usize,
        /// `wait` fails from this many calls on (a silent daemon).
        waits_left: u32,
    }

    fn msg(type_: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            type_,
            req_id,
            tx_id: 0,
            len: payload.len() as u32,
        };
        let mut v = h.encode().to_vec();
        v.extend_from_slice(payload);
        v
    }

    impl Fake {
        fn new(handler: impl FnMut(Header, &[u8]) -> Vec<Vec<u8>> + 'static) -> Self {
            Fake {
                inbox: Vec::new(),
                outbox: VecDeque::new(),
                late: VecDeque::new(),
                requests: Vec::new(),
                handler: Box::new(handler),
                per_write: usize::MAX,
                per_read: usize::MAX,
                full_writes: 0,
                budget: usize::MAX,
                waits_left: 100,
            }
        }

        fn serve(&mut self) {
            while self.inbox.len() >= HEADER_LEN {
                let h = Header::decode(self.inbox[..HEADER_LEN].try_into().unwrap());
                let end = HEADER_LEN + h.len as usize;
                if self.inbox.len() < end {
                    return;
                }
                let payload = self.inbox[HEADER_LEN..end].to_vec();
                self.inbox.drain(..end);
                for m in (self.handler)(h, &payload) {
                    self.outbox.extend(m);
                }
                self.requests.push((h, payload));
            }
        }
    }

    impl Transport for Fake {
        fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError> {
            if self.full_writes > 0 {
                self.full_writes -= 1;
                return Ok(0);
            }
            let n = bytes.len().min(self.per_write).min(self.budget);
            self.budget -= n;
            self.inbox.extend_from_slice(&bytes[..n]);
            self.serve();
            Ok(n)
        }

        fn read(&mut self, buf: &mut [u8]) -> Result<usize, XsError> {
            let n = buf.len().min(self.per_read).min(self.outbox.len());
            for b in &mut buf[..n] {
                *b = self.outbox.pop_front().unwrap();
            }
            Ok(n)
        }

        fn wait(&mut self, _want_write: bool) -> Result<(), XsError> {
            if self.waits_left == 0 {
                return Err(XsError::TimedOut);
            }
            self.waits_left -= 1;
            if let Some(m) = self.late.pop_front() {
                self.outbox.extend(m);
            }
            Ok(())
        }
    }

    /// Answers every request with `OK\0`, reads with `value`.
    fn ok_daemon(value: &'static [u8]) -> Fake {
        Fake::new(move |h, _| {
            let reply: &[u8] = if h.type_ == XS_READ { value } else { b"OK\0" };
            vec![msg(h.type_, h.req_id, reply)]
        })
    }

    #[test]
    fn read_sends_the_path_and_matches_the_reply() {
        let mut c = Client::new(ok_daemon(b"brun"));
        assert_eq!(c.read(Tx::NONE, "name"), Ok(&b"brun"[..]));
        assert_eq!(c.read(Tx(3), "domid"), Ok(&b"brun"[..]));
        let reqs = &c.transport_mut().requests;
        assert_eq!(reqs[0].0.type_, XS_READ);
        assert_eq!(reqs[0].1, b"name\0");
        assert_eq!((reqs[0].0.req_id, reqs[1].0.req_id), (1, 2));
        assert_eq!(reqs[1].0.tx_id, 3);
        assert_eq!(c.stale_replies(), 0);
    }

    #[test]
    fn write_watch_and_transaction_payloads() {
        let mut c = Client::new(ok_daemon(b""));
        c.write(Tx::NONE, "data/hello", b"world").unwrap();
        c.watch("control/shutdown", "shutdown").unwrap();
        c.mkdir(Tx::NONE, "data/d").unwrap();
        c.rm(Tx::NONE, "data/d").unwrap();
        c.unwatch("control/shutdown", "shutdown").unwrap();
        let reqs: Vec<(u32, Vec<u8>)> = c
            .transport_mut()
            .requests
            .iter()
            .map(|(h, p)| (h.type_, p.clone()))
            .collect();
        assert_eq!(
            reqs,
            [
                (XS_WRITE, b"data/hello\0world".to_vec()),
                (XS_WATCH, b"control/shutdown\0shutdown\0".to_vec()),
                (XS_MKDIR, b"data/d\0".to_vec()),
                (XS_RM, b"data/d\0".to_vec()),
                (XS_UNWATCH, b"control/shutdown\0shutdown\0".to_vec()),
            ]
        );
    }

    #[test]
    fn nul_in_a_path_is_refused_before_sending() {
        let mut c = Client::new(ok_daemon(b""));
        assert_eq!(c.read(Tx::NONE, "a\0b"), Err(XsError::Invalid));
        assert_eq!(c.watch("p", "t\0"), Err(XsError::Invalid));
        assert!(c.transport_mut().requests.is_empty());
        assert!(!c.is_broken());
    }

    #[test]
    fn daemon_errors_come_back_parsed() {
        let mut c = Client::new(Fake::new(|h, _| vec![msg(XS_ERROR, h.req_id, b"ENOENT\0")]));
        let e = c.read(Tx::NONE, "memory/target").unwrap_err();
        assert!(e.is_enoent());
        assert!(!c.is_broken());
    }

    #[test]
    fn a_reply_of_another_type_is_a_protocol_error() {
        let mut c = Client::new(Fake::new(|h, _| vec![msg(XS_WRITE, h.req_id, b"OK\0")]));
        assert_eq!(c.read(Tx::NONE, "name"), Err(XsError::Protocol));
    }

    #[test]
    fn watch_events_before_the_reply_are_queued() {
        let mut c = Client::new(Fake::new(|h, _| {
            vec![
                msg(XS_WATCH_EVENT, 0, b"control/shutdown\0shutdown\0"),
                msg(XS_WATCH_EVENT, 0, b"data\0other\0"),
                msg(h.type_, h.req_id, b"v"),
            ]
        }));
        assert_eq!(c.read(Tx::NONE, "x"), Ok(&b"v"[..]));
        let mut buf = [0u8; 64];
        let e = c.next_event(&mut buf).unwrap().unwrap();
        assert_eq!((e.path, e.token), ("control/shutdown", "shutdown"));
        let e = c.next_event(&mut buf).unwrap().unwrap();
        assert_eq!((e.path, e.token), ("data", "other"));
        assert_eq!(c.next_event(&mut buf), Ok(None));
        assert!(!c.take_lost_events());
    }

    #[test]
    fn malformed_events_are_skipped() {
        let mut f = ok_daemon(b"");
        f.outbox.extend(msg(XS_WATCH_EVENT, 0, b"no-token"));
        f.outbox.extend(msg(XS_WATCH_EVENT, 0, b"p\0t\0"));
        let mut c = Client::new(f);
        let mut buf = [0u8; 64];
        assert_eq!(c.next_event(&mut buf).unwrap().map(|e| e.path), Some("p"));
        assert_eq!(c.next_event(&mut buf), Ok(None));
    }

    #[test]
    fn wait_event_waits_for_a_late_event() {
        let mut f = ok_daemon(b"");
        f.late
            .push_back(msg(XS_WATCH_EVENT, 0, b"control/shutdown\0s\0"));
        let mut c = Client::new(f);
        let mut buf = [0u8; 64];
        assert_eq!(c.next_event(&mut buf), Ok(None));
        assert_eq!(c.wait_event(&mut buf).map(|e| e.token), Ok("s"));
        // Nothing more will come: the transport times out.
        c.transport_mut().waits_left = 0;
        assert_eq!(c.wait_event(&mut buf), Err(XsError::TimedOut));
    }

    #[test]
    fn replies_with_another_req_id_are_discarded() {
        let mut c = Client::new(Fake::new(|h, _| {
            vec![
                msg(h.type_, h.req_id + 100, b"stale"),
                msg(h.type_, h.req_id, b"fresh"),
            ]
        }));
        assert_eq!(c.read(Tx::NONE, "x"), Ok(&b"fresh"[..]));
        assert_eq!(c.stale_replies(), 1);
    }

    #[test]
    fn a_timed_out_request_leaves_the_connection_usable() {
        // The daemon stays silent for the first request.
        let mut first = true;
        let mut c = Client::new(Fake::new(move |h, _| {
            if std::mem::take(&mut first) {
                vec![]
            } else {
                vec![msg(h.type_, h.req_id, b"second")]
            }
        }));
        c.transport_mut().waits_left = 0;
        assert_eq!(c.read(Tx::NONE, "a"), Err(XsError::TimedOut));
        assert!(!c.is_broken());
        // The first reply arrives late, just before the second one.
        c.transport_mut().waits_left = 10;
        c.transport_mut().outbox.extend(msg(XS_READ, 1, b"first"));
        assert_eq!(c.read(Tx::NONE, "b"), Ok(&b"second"[..]));
        assert_eq!(c.stale_replies(), 1);
    }

    #[test]
    fn small_rings_split_requests_and_replies() {
        let mut f = ok_daemon(b"a value longer than a chunk");
        f.per_write = 3;
        f.per_read = 1;
        f.full_writes = 2;
        let mut c = Client::new(f);
        assert_eq!(
            c.read(Tx::NONE, "some/long/path"),
            Ok(&b"a value longer than a chunk"[..])
        );
        assert_eq!(c.transport_mut().requests[0].1, b"some/long/path\0");
    }

    #[test]
    fn a_request_cut_in_half_breaks_the_connection() {
        let mut f = ok_daemon(b"");
        f.per_write = 4;
        f.waits_left = 0;
        // The ring is full from the start and the daemon silent.
        f.budget = 0;
        let mut c = Client::new(f);
        assert_eq!(c.read(Tx::NONE, "x"), Err(XsError::TimedOut));
        assert!(!c.is_broken(), "nothing was queued yet");
        // Now 4 bytes fit, then the ring stays full.
        c.transport_mut().budget = 4;
        assert_eq!(c.read(Tx::NONE, "x"), Err(XsError::TimedOut));
        assert!(c.is_broken());
        c.transport_mut().budget = usize::MAX;
        assert_eq!(c.read(Tx::NONE, "x"), Err(XsError::Broken));
    }

    #[test]
    fn an_oversized_reply_breaks_the_connection() {
        let mut f = ok_daemon(b"");
        let h = Header {
            type_: XS_READ,
            req_id: 1,
            tx_id: 0,
            len: 4097,
        };
        f.handler = Box::new(move |_, _| vec![h.encode().to_vec()]);
        let mut c = Client::new(f);
        assert_eq!(c.read(Tx::NONE, "x"), Err(XsError::Protocol));
        assert!(c.is_broken());
    }

    #[test]
    fn directory_lists_children() {
        let mut c = Client::new(Fake::new(|h, _| {
            vec![msg(h.type_, h.req_id, b"name\0domid\0")]
        }));
        let names: Vec<Vec<u8>> = c
            .directory(Tx::NONE, "")
            .unwrap()
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(names, [b"name".to_vec(), b"domid".to_vec()]);
    }

    #[test]
    fn domain_path_request_is_decimal() {
        let mut c = Client::new(Fake::new(|h, p| {
            assert_eq!(p, b"65535\0");
            vec![msg(h.type_, h.req_id, b"/local/domain/65535\0")]
        }));
        assert_eq!(c.get_domain_path(65535), Ok(&b"/local/domain/65535"[..]));
        let mut d = [0u8; 5];
        assert_eq!(decimal(0, &mut d), 1);
        assert_eq!(d[0], b'0');
    }

    /// A daemon with transactions: start gives id 5, the first `fail_commits`
    /// commits say EAGAIN.
    fn tx_daemon(fail_commits: u32) -> Fake {
        let mut fails = fail_commits;
        Fake::new(move |h, p| {
            let reply: Vec<u8> = match h.type_ {
                XS_TRANSACTION_START => return vec![msg(h.type_, h.req_id, b"5\0")],
                XS_TRANSACTION_END if p == b"T\0" && fails > 0 => {
                    fails -= 1;
                    return vec![msg(XS_ERROR, h.req_id, b"EAGAIN\0")];
                }
                XS_READ => b"poweroff".to_vec(),
                _ => b"OK\0".to_vec(),
            };
            vec![msg(h.type_, h.req_id, &reply)]
        })
    }

    #[test]
    fn transaction_commits_and_retries_on_eagain() {
        let mut c = Client::new(tx_daemon(2));
        let mut runs = 0;
        let got = c.transaction(|c, tx| {
            runs += 1;
            assert_eq!(tx, Tx(5));
            let v = c.read(tx, "control/shutdown")?.to_vec();
            c.write(tx, "control/shutdown", b"")?;
            Ok(v)
        });
        assert_eq!(got, Ok(b"poweroff".to_vec()));
        assert_eq!(runs, 3);
        let reqs = &c.transport_mut().requests;
        assert!(
            reqs.iter()
                .filter(|(h, _)| h.type_ == XS_READ)
                .all(|(h, _)| h.tx_id == 5)
        );
        let ends = reqs
            .iter()
            .filter(|(h, _)| h.type_ == XS_TRANSACTION_END)
            .count();
        assert_eq!(ends, 3);
    }

    #[test]
    fn transaction_gives_up_after_too_many_conflicts() {
        let mut c = Client::new(tx_daemon(u32::MAX));
        let r = c.transaction(|_, _| Ok(()));
        assert!(r.unwrap_err().is_again());
    }

    #[test]
    fn a_failing_transaction_body_aborts() {
        let mut c = Client::new(tx_daemon(0));
        let r: Result<(), XsError> = c.transaction(|_, _| Err(XsError::Daemon(Errno::EACCES)));
        assert_eq!(r, Err(XsError::Daemon(Errno::EACCES)));
        let last = c.transport_mut().requests.last().unwrap().clone();
        assert_eq!(
            (last.0.type_, last.1),
            (XS_TRANSACTION_END, b"F\0".to_vec())
        );
    }

    #[test]
    fn a_bad_transaction_id_is_a_protocol_error() {
        let mut c = Client::new(Fake::new(|h, _| vec![msg(h.type_, h.req_id, b"zero\0")]));
        assert_eq!(c.transaction_start(), Err(XsError::Protocol));
    }
}
