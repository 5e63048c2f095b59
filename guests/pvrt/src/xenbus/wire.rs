//! The xenstore wire format on the guest side (XEN-PV-ABI.md §13.1): request
//! encoding, the 16-byte header, incremental reassembly of replies and watch
//! events, payload parsing, the `XS_ERROR` names, and the queue that holds
//! watch events which arrive while a reply is awaited.
//!
//! Everything here is pure (no hypercalls, no `unsafe`). The header layout is
//! `xen_abi::xenstore::XsdSockmsg`'s (offsets taken from it, little-endian).
#![forbid(unsafe_code)]

use core::fmt;
use core::mem::{offset_of, size_of};

use xen_abi::errno::Errno;
use xen_abi::xenstore::{XENSTORE_PAYLOAD_MAX, XS_ERROR, XsdSockmsg, xsd_error_from_name};

/// Bytes of the message header.
pub const HEADER_LEN: usize = size_of::<XsdSockmsg>();
/// Largest payload either side may send.
pub const PAYLOAD_MAX: usize = XENSTORE_PAYLOAD_MAX as usize;

/// Why a xenstore operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// The daemon refused: `XS_ERROR` with this errno name (e.g. `ENOENT`).
    Daemon(Errno),
    /// `XS_ERROR` with a name §13.1 does not define.
    UnknownError,
    /// The request is malformed before sending: a NUL inside a path, token
    /// or transaction-free argument, or a payload over `XENSTORE_PAYLOAD_MAX`.
    Invalid,
    /// The daemon broke the protocol (a reply of another type, a payload over
    /// the maximum, a malformed watch event): the connection is unusable.
    Protocol,
    /// A shared ring's indices are inconsistent: the connection is unusable.
    RingCorrupt,
    /// The daemon made no progress within the transport's timeout.
    TimedOut,
    /// A caller's buffer is too small for what arrived (the item is dropped).
    BufferTooSmall,
    /// An earlier failure left the byte stream out of step; nothing more can
    /// be sent on this connection.
    Broken,
}

impl XsError {
    /// Whether this is the daemon's `EAGAIN` (retry the whole transaction).
    pub fn is_again(self) -> bool {
        self == XsError::Daemon(Errno::EAGAIN)
    }

    /// Whether this is the daemon's `ENOENT` (no such node).
    pub fn is_enoent(self) -> bool {
        self == XsError::Daemon(Errno::ENOENT)
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Daemon(e) => match e.name() {
                Some(n) => write!(f, "xenstore error {n}"),
                None => write!(f, "xenstore error {}", e.0),
            },
            XsError::UnknownError => f.write_str("xenstore error of unknown name"),
            XsError::Invalid => f.write_str("invalid xenstore request"),
            XsError::Protocol => f.write_str("xenstore protocol violation"),
            XsError::RingCorrupt => f.write_str("xenstore ring indices corrupt"),
            XsError::TimedOut => f.write_str("no answer from xenstore"),
            XsError::BufferTooSmall => f.write_str("buffer too small for xenstore data"),
            XsError::Broken => f.write_str("xenstore connection broken"),
        }
    }
}

/// The error an `XS_ERROR` payload names (with or without its NUL).
pub fn parse_error(payload: &[u8]) -> XsError {
    xsd_error_from_name(payload).map_or(XsError::UnknownError, XsError::Daemon)
}

/// A message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `XS_*`.
    pub type_: u32,
    /// Request id (echoed in the reply; 0 in watch events).
    pub req_id: u32,
    /// Transaction id (0 = none).
    pub tx_id: u32,
    /// Payload bytes that follow.
    pub len: u32,
}

impl Header {
    /// Serialises the header (`XsdSockmsg`'s layout, little-endian).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        for (off, v) in [
            (offset_of!(XsdSockmsg, type_), self.type_),
            (offset_of!(XsdSockmsg, req_id), self.req_id),
            (offset_of!(XsdSockmsg, tx_id), self.tx_id),
            (offset_of!(XsdSockmsg, len), self.len),
        ] {
            b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Parses a header.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Header {
        let at = |off: usize| u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
        Header {
            type_: at(offset_of!(XsdSockmsg, type_)),
            req_id: at(offset_of!(XsdSockmsg, req_id)),
            tx_id: at(offset_of!(XsdSockmsg, tx_id)),
            len: at(offset_of!(XsdSockmsg, len)),
        }
    }
}

/// The header of a request whose payload is the concatenation of `parts`;
/// [`XsError::Invalid`] if that exceeds the payload maximum.
pub fn request_header(
    type_: u32,
    req_id: u32,
    tx_id: u32,
    parts: &[&[u8]],
) -> Result<Header, XsError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > PAYLOAD_MAX {
        return Err(XsError::Invalid);
    }
    Ok(Header {
        type_,
        req_id,
        tx_id,
        len: len as u32,
    })
}

/// Checks a string argument (path, token) that will be NUL-terminated on the
/// wire: it must not contain a NUL itself.
pub fn check_arg(s: &str) -> Result<&[u8], XsError> {
    if s.as_bytes().contains(&0) {
        Err(XsError::Invalid)
    } else {
        Ok(s.as_bytes())
    }
}

/// Reassembles one message at a time from a byte stream. It asks for exactly
/// the bytes the current message still needs ([`Receiver::space`]), so it
/// never consumes bytes of the next one.
pub struct Receiver {
    buf: [u8; HEADER_LEN + PAYLOAD_MAX],
    have: usize,
    /// The complete message was handed out: the next read starts a new one.
    consumed: bool,
}

impl Receiver {
    /// An empty receiver.
    pub const fn new() -> Self {
        Self {
            buf: [0; HEADER_LEN + PAYLOAD_MAX],
            have: 0,
            consumed: false,
        }
    }

    fn header(&self) -> Option<Header> {
        (self.have >= HEADER_LEN).then(|| {
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&self.buf[..HEADER_LEN]);
            Header::decode(&h)
        })
    }

    fn wanted(&self) -> usize {
        match self.header() {
            None => HEADER_LEN,
            Some(h) => HEADER_LEN + h.len as usize,
        }
    }

    /// Where the next bytes go: exactly what the current message still lacks
    /// (empty once it is complete).
    pub fn space(&mut self) -> &mut [u8] {
        if self.consumed {
            self.clear();
        }
        let want = self.wanted();
        &mut self.buf[self.have..want]
    }

    /// Records that `n` bytes were written into [`Receiver::space`]. Fails
    /// with [`XsError::Protocol`] when a header announces a payload over the
    /// maximum (the stream cannot be resynchronised after that).
    pub fn advance(&mut self, n: usize) -> Result<(), XsError> {
        let had_header = self.have >= HEADER_LEN;
        self.have = (self.have + n).min(self.wanted());
        if !had_header
            && let Some(h) = self.header()
            && h.len as usize > PAYLOAD_MAX
        {
            self.have = 0;
            return Err(XsError::Protocol);
        }
        Ok(())
    }

    /// The complete message, if there is one.
    pub fn message(&self) -> Option<(Header, &[u8])> {
        if self.consumed {
            return None;
        }
        self.consumed_message()
    }

    /// The complete message even after [`Receiver::mark_consumed`] (until the
    /// next [`Receiver::space`] starts a new one).
    pub fn consumed_message(&self) -> Option<(Header, &[u8])> {
        let h = self.header()?;
        (self.have == HEADER_LEN + h.len as usize).then(|| (h, &self.buf[HEADER_LEN..self.have]))
    }

    /// Hands the complete message out: [`Receiver::message`] no longer returns
    /// it, its bytes stay readable through [`Receiver::consumed_message`]
    /// until the next [`Receiver::space`].
    pub fn mark_consumed(&mut self) {
        self.consumed = self.message().is_some();
    }

    /// Drops the message (complete or not) so the next one can be received.
    pub fn clear(&mut self) {
        self.have = 0;
        self.consumed = false;
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the header of a reply to a request of type `type_`: `Ok` if the
/// reply has that type, the daemon's error for `XS_ERROR`, and
/// [`XsError::Protocol`] for any other type.
pub fn check_reply(type_: u32, h: &Header, payload: &[u8]) -> Result<(), XsError> {
    if h.type_ == XS_ERROR {
        Err(parse_error(payload))
    } else if h.type_ != type_ {
        Err(XsError::Protocol)
    } else {
        Ok(())
    }
}

/// The NUL-terminated strings of a payload (a directory listing): each item is
/// one string without its NUL; a final unterminated string is yielded too.
pub fn strings(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = payload.strip_suffix(b"\0").unwrap_or(payload);
    body.split(|&b| b == 0).filter(move |_| !payload.is_empty())
}

/// A watch event's `path\0token\0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchEvent<'a> {
    /// The node that changed (absolute, or relative if the watch was).
    pub path: &'a str,
    /// The token given to `watch`.
    pub token: &'a str,
}

/// Parses an `XS_WATCH_EVENT` payload; `None` unless it is two UTF-8 strings,
/// each NUL-terminated (a missing final NUL is tolerated).
pub fn parse_watch_event(payload: &[u8]) -> Option<WatchEvent<'_>> {
    let mut it = payload.splitn(3, |&b| b == 0);
    let path = core::str::from_utf8(it.next()?).ok()?;
    let token = core::str::from_utf8(it.next()?).ok()?;
    match it.next() {
        None | Some([]) => Some(WatchEvent { path, token }),
        Some(_) => None,
    }
}

/// Parses the reply to `XS_TRANSACTION_START`: a decimal id, NUL-terminated;
/// the id must not be 0 (which means "no transaction").
pub fn parse_tx_id(payload: &[u8]) -> Option<u32> {
    let s = payload.strip_suffix(b"\0").unwrap_or(payload);
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(s)
        .ok()?
        .parse()
        .ok()
        .filter(|&id| id != 0)
}

/// Watch events kept while a reply is awaited: whole `XS_WATCH_EVENT`
/// payloads, first in first out, in a fixed byte budget. An event that does
/// not fit is dropped and recorded ([`EventQueue::take_lost`]) so the owner
/// can re-read what it watches.
pub struct EventQueue {
    /// Records `[len: u16 LE][payload]`, packed from index 0.
    buf: [u8; EVENT_QUEUE_BYTES],
    len: usize,
    lost: bool,
}

/// Byte budget of an [`EventQueue`].
pub const EVENT_QUEUE_BYTES: usize = 2048;

impl EventQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            buf: [0; EVENT_QUEUE_BYTES],
            len: 0,
            lost: false,
        }
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an event payload; `false` (and the loss recorded) if it does
    /// not fit.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        let need = 2 + payload.len();
        if need > EVENT_QUEUE_BYTES - self.len {
            self.lost = true;
            return false;
        }
        self.buf[self.len..self.len + 2].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        self.buf[self.len + 2..self.len + need].copy_from_slice(payload);
        self.len += need;
        true
    }

    /// Moves the oldest event into `out` and returns its length. An event
    /// longer than `out` is dropped with [`XsError::BufferTooSmall`].
    pub fn pop(&mut self, out: &mut [u8]) -> Option<Result<usize, XsError>> {
        if self.len == 0 {
            return None;
        }
        let n = usize::from(u16::from_le_bytes([self.buf[0], self.buf[1]]));
        let fits = n <= out.len();
        if fits {
            out[..n].copy_from_slice(&self.buf[2..2 + n]);
        }
        self.buf.copy_within(2 + n..self.len, 0);
        self.len -= 2 + n;
        Some(if fits {
            Ok(n)
        } else {
            Err(XsError::BufferTooSmall)
        })
    }

    /// Whether an event was dropped since the last call (and clears that).
    pub fn take_lost(&mut self) -> bool {
        core::mem::take(&mut self.lost)
    }
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::xenstore::{XS_READ, XS_WATCH_EVENT};

    #[test]
    fn header_round_trip_is_little_endian_at_the_abi_offsets() {
        let h = Header {
            type_: XS_READ,
            req_id: 0x0102_0304,
            tx_id: 7,
            len: 5,
        };
        let b = h.encode();
        assert_eq!(&b[..4], &[2, 0, 0, 0]);
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(&b[8..12], &[7, 0, 0, 0]);
        assert_eq!(&b[12..], &[5, 0, 0, 0]);
        assert_eq!(Header::decode(&b), h);
    }

    #[test]
    fn request_size_limit() {
        let big = [b'a'; PAYLOAD_MAX];
        assert_eq!(
            request_header(XS_READ, 1, 0, &[&big]).map(|h| h.len),
            Ok(PAYLOAD_MAX as u32)
        );
        assert_eq!(
            request_header(XS_READ, 1, 0, &[&big, b"\0"]),
            Err(XsError::Invalid)
        );
    }

    #[test]
    fn args_may_not_contain_nul() {
        assert_eq!(check_arg("data/hello"), Ok(&b"data/hello"[..]));
        assert_eq!(check_arg("data\0x"), Err(XsError::Invalid));
    }

    #[test]
    fn errors_are_parsed_by_name() {
        assert_eq!(parse_error(b"ENOENT\0"), XsError::Daemon(Errno::ENOENT));
        assert!(parse_error(b"EAGAIN\0").is_again());
        assert!(parse_error(b"ENOENT").is_enoent());
        assert!(!parse_error(b"EACCES\0").is_again());
        assert_eq!(parse_error(b"EBOGUS\0"), XsError::UnknownError);
        assert_eq!(parse_error(b""), XsError::UnknownError);
    }

    #[test]
    fn reply_type_is_checked() {
        let h = |t| Header {
            type_: t,
            req_id: 1,
            tx_id: 0,
            len: 0,
        };
        assert_eq!(check_reply(XS_READ, &h(XS_READ), b"v"), Ok(()));
        assert_eq!(
            check_reply(XS_READ, &h(XS_ERROR), b"EACCES\0"),
            Err(XsError::Daemon(Errno::EACCES))
        );
        assert_eq!(
            check_reply(XS_READ, &h(XS_WATCH_EVENT), b""),
            Err(XsError::Protocol)
        );
    }

    fn feed(rx: &mut Receiver, mut bytes: &[u8], chunk: usize) -> Result<(), XsError> {
        while !bytes.is_empty() {
            let space = rx.space();
            let n = space.len().min(chunk).min(bytes.len());
            if n == 0 {
                break;
            }
            space[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            rx.advance(n)?;
        }
        Ok(())
    }

    #[test]
    fn receiver_reassembles_a_split_message_and_stops_at_its_end() {
        let h = Header {
            type_: XS_READ,
            req_id: 9,
            tx_id: 0,
            len: 5,
        };
        let mut stream = h.encode().to_vec();
        stream.extend_from_slice(b"world");
        stream.extend_from_slice(b"NEXT");
        let mut rx = Receiver::new();
        assert!(rx.message().is_none());
        feed(&mut rx, &stream, 3).unwrap();
        let (got, payload) = rx.message().expect("complete");
        assert_eq!(got, h);
        assert_eq!(payload, b"world");
        // It asked for no byte of the next message.
        assert!(rx.space().is_empty());
        rx.clear();
        assert_eq!(rx.space().len(), HEADER_LEN);
    }

    #[test]
    fn a_consumed_message_stays_readable_until_the_next_one_starts() {
        let h = Header {
            type_: XS_READ,
            req_id: 4,
            tx_id: 0,
            len: 2,
        };
        let mut stream = h.encode().to_vec();
        stream.extend_from_slice(b"ok");
        let mut rx = Receiver::new();
        feed(&mut rx, &stream, 64).unwrap();
        rx.mark_consumed();
        assert!(rx.message().is_none());
        assert_eq!(rx.consumed_message(), Some((h, &b"ok"[..])));
        // The next read starts a new message.
        assert_eq!(rx.space().len(), HEADER_LEN);
        assert!(rx.consumed_message().is_none());
        // Nothing to consume: marking does not hide a later message.
        rx.mark_consumed();
        feed(&mut rx, &stream, 64).unwrap();
        assert_eq!(rx.message(), Some((h, &b"ok"[..])));
    }

    #[test]
    fn receiver_accepts_an_empty_payload() {
        let h = Header {
            type_: XS_READ,
            req_id: 1,
            tx_id: 0,
            len: 0,
        };
        let mut rx = Receiver::new();
        feed(&mut rx, &h.encode(), 16).unwrap();
        assert_eq!(rx.message(), Some((h, &b""[..])));
    }

    #[test]
    fn receiver_refuses_an_oversized_payload() {
        let ok = Header {
            type_: XS_READ,
            req_id: 1,
            tx_id: 0,
            len: PAYLOAD_MAX as u32,
        };
        let mut rx = Receiver::new();
        assert_eq!(feed(&mut rx, &ok.encode(), 16), Ok(()));
        let bad = Header {
            len: PAYLOAD_MAX as u32 + 1,
            ..ok
        };
        let mut rx = Receiver::new();
        assert_eq!(feed(&mut rx, &bad.encode(), 5), Err(XsError::Protocol));
    }

    #[test]
    fn directory_strings() {
        let v: Vec<&[u8]> = strings(b"a\0bc\0").collect();
        assert_eq!(v, [&b"a"[..], b"bc"]);
        assert_eq!(strings(b"").count(), 0);
        let v: Vec<&[u8]> = strings(b"only").collect();
        assert_eq!(v, [&b"only"[..]]);
    }

    #[test]
    fn watch_events() {
        assert_eq!(
            parse_watch_event(b"control/shutdown\0tok\0"),
            Some(WatchEvent {
                path: "control/shutdown",
                token: "tok"
            })
        );
        assert_eq!(parse_watch_event(b"p\0t").map(|e| e.token), Some("t"));
        assert_eq!(parse_watch_event(b"no-token"), None);
        assert_eq!(parse_watch_event(b"p\0t\0extra"), None);
        assert_eq!(parse_watch_event(b"p\xff\0t\0"), None);
    }

    #[test]
    fn transaction_ids() {
        assert_eq!(parse_tx_id(b"42\0"), Some(42));
        assert_eq!(parse_tx_id(b"7"), Some(7));
        assert_eq!(parse_tx_id(b"0\0"), None);
        assert_eq!(parse_tx_id(b"\0"), None);
        assert_eq!(parse_tx_id(b"-1\0"), None);
        assert_eq!(parse_tx_id(b"99999999999\0"), None);
    }

    #[test]
    fn event_queue_is_fifo_and_records_losses() {
        let mut q = EventQueue::new();
        let mut out = [0u8; 64];
        assert!(q.pop(&mut out).is_none());
        assert!(q.push(b"a\0t\0"));
        assert!(q.push(b"bb\0t\0"));
        assert_eq!(q.pop(&mut out), Some(Ok(4)));
        assert_eq!(&out[..4], b"a\0t\0");
        assert_eq!(q.pop(&mut out), Some(Ok(5)));
        assert_eq!(&out[..5], b"bb\0t\0");
        assert!(q.is_empty());
        assert!(!q.take_lost());

        let big = [b'x'; EVENT_QUEUE_BYTES - 2];
        assert!(q.push(&big));
        assert!(!q.push(b"p\0t\0"));
        assert!(q.take_lost());
        assert!(!q.take_lost());
        // Too long for the caller's buffer: dropped, reported.
        assert_eq!(q.pop(&mut out), Some(Err(XsError::BufferTooSmall)));
        assert!(q.is_empty());
    }
}
