//! The xenstore wire format (XEN-PV-ABI.md §13.1): messages, an incremental
//! decoder for the request byte stream, and payload argument parsing.
//!
//! A message is a 16-byte little-endian `xsd_sockmsg` header followed by `len`
//! payload bytes. The decoder accepts the stream in arbitrary pieces; a header
//! announcing more than `XENSTORE_PAYLOAD_MAX` bytes is a fatal protocol error,
//! after which the decoder refuses all further input.

use alloc::vec::Vec;
use xen_abi::xenstore::{XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_WATCH_EVENT, XsdSockmsg};

use crate::error::XsError;

/// Size of the `xsd_sockmsg` header.
pub const HEADER_LEN: usize = core::mem::size_of::<XsdSockmsg>();

/// One message: header and payload. `header.len` always equals `payload.len()`
/// for messages built by this crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: XsdSockmsg,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// A message with the given fields; `len` is taken from `payload`.
    pub fn new(type_: u32, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Message {
        Message {
            header: XsdSockmsg {
                type_,
                req_id,
                tx_id,
                len: payload.len() as u32,
            },
            payload,
        }
    }

    /// A reply to `req`: same type, req_id and tx_id.
    pub fn reply(req: &XsdSockmsg, payload: Vec<u8>) -> Message {
        Message::new(req.type_, req.req_id, req.tx_id, payload)
    }

    /// An `XS_ERROR` reply to `req` carrying the errno name and a NUL.
    pub fn error(req: &XsdSockmsg, e: XsError) -> Message {
        let mut p = Vec::from(e.as_str().as_bytes());
        p.push(0);
        Message::new(XS_ERROR, req.req_id, req.tx_id, p)
    }

    /// An unsolicited `XS_WATCH_EVENT` (`req_id` = `tx_id` = 0): `path\0token\0`.
    pub fn watch_event(path: &[u8], token: &[u8]) -> Message {
        let mut p = Vec::with_capacity(path.len() + token.len() + 2);
        p.extend_from_slice(path);
        p.push(0);
        p.extend_from_slice(token);
        p.push(0);
        Message::new(XS_WATCH_EVENT, 0, 0, p)
    }

    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Appends the wire form.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let h = &self.header;
        for f in [h.type_, h.req_id, h.tx_id, h.len] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut v);
        v
    }
}

/// Parses a header from its 16 wire bytes.
pub fn decode_header(b: &[u8; HEADER_LEN]) -> XsdSockmsg {
    let f = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    XsdSockmsg {
        type_: f(0),
        req_id: f(4),
        tx_id: f(8),
        len: f(12),
    }
}

/// A fatal error on a connection: the daemon stops serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header announced a payload larger than `XENSTORE_PAYLOAD_MAX`.
    PayloadTooLarge(u32),
    /// Ring indices that cannot be right (more than a ring outstanding).
    BadRingIndex {
        /// The producer index read.
        prod: u32,
        /// The consumer index read.
        cons: u32,
    },
    /// The connection already failed or was never introduced.
    NotConnected,
}

/// Incremental decoder of a request stream.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    header: [u8; HEADER_LEN],
    header_have: usize,
    current: Option<XsdSockmsg>,
    payload: Vec<u8>,
    failed: bool,
}

impl Decoder {
    /// A decoder at a message boundary.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Whether a message has been partly received.
    pub fn is_mid_message(&self) -> bool {
        self.header_have > 0 || self.current.is_some()
    }

    /// Bytes the current message still needs (its header's, or its payload's
    /// once the header is in): reading no more than this never takes bytes of
    /// the next message.
    pub fn wanted(&self) -> usize {
        match self.current {
            None => HEADER_LEN - self.header_have,
            Some(h) => (h.len as usize - self.payload.len()).max(1),
        }
    }

    /// Consumes `data`, appending every completed message to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<Message>) -> Result<(), ProtocolError> {
        if self.failed {
            return Err(ProtocolError::NotConnected);
        }
        while !data.is_empty() || self.current.is_some_and(|h| h.len == 0) {
            match self.current {
                None => {
                    let n = (HEADER_LEN - self.header_have).min(data.len());
                    self.header[self.header_have..self.header_have + n].copy_from_slice(&data[..n]);
                    self.header_have += n;
                    data = &data[n..];
                    if self.header_have == HEADER_LEN {
                        let h = decode_header(&self.header);
                        self.header_have = 0;
                        if h.len > XENSTORE_PAYLOAD_MAX {
                            self.failed = true;
                            return Err(ProtocolError::PayloadTooLarge(h.len));
                        }
                        self.payload = Vec::with_capacity(h.len as usize);
                        self.current = Some(h);
                    }
                }
                Some(h) => {
                    let want = h.len as usize - self.payload.len();
                    let n = want.min(data.len());
                    self.payload.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.payload.len() == h.len as usize {
                        self.current = None;
                        out.push(Message {
                            header: h,
                            payload: core::mem::take(&mut self.payload),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Splits a payload made of exactly `n` NUL-terminated strings.
pub fn args(payload: &[u8], n: usize) -> Result<Vec<&[u8]>, XsError> {
    let v = strings(payload)?;
    if v.len() == n {
        Ok(v)
    } else {
        Err(XsError::EINVAL)
    }
}

/// Splits a payload made of NUL-terminated strings (at least one).
pub fn strings(payload: &[u8]) -> Result<Vec<&[u8]>, XsError> {
    let body = payload.strip_suffix(b"\0").ok_or(XsError::EINVAL)?;
    Ok(body.split(|&c| c == 0).collect())
}

/// `path\0value`: splits at the first NUL (the value is not terminated).
pub fn path_and_value(payload: &[u8]) -> Result<(&[u8], &[u8]), XsError> {
    let i = payload
        .iter()
        .position(|&c| c == 0)
        .ok_or(XsError::EINVAL)?;
    Ok((&payload[..i], &payload[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use xen_abi::xenstore::{XS_READ, XS_WRITE};

    fn sample() -> Vec<Message> {
        vec![
            Message::new(XS_READ, 1, 0, b"/a\0".to_vec()),
            Message::new(XS_WRITE, 2, 7, b"/b\0value".to_vec()),
            Message::new(XS_READ, 3, 0, Vec::new()),
            Message::new(XS_WRITE, 4, 0, vec![0x5a; XENSTORE_PAYLOAD_MAX as usize]),
        ]
    }

    fn stream(msgs: &[Message]) -> Vec<u8> {
        let mut s = Vec::new();
        for m in msgs {
            m.encode_into(&mut s);
        }
        s
    }

    #[test]
    fn encode_layout_is_little_endian_header_then_payload() {
        let m = Message::new(XS_READ, 0x0102_0304, 5, b"xy".to_vec());
        assert_eq!(
            m.encode(),
            [2, 0, 0, 0, 4, 3, 2, 1, 5, 0, 0, 0, 2, 0, 0, 0, b'x', b'y']
        );
        assert_eq!(m.encoded_len(), 18);
    }

    #[test]
    fn several_messages_in_one_chunk() {
        let msgs = sample();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(&stream(&msgs), &mut out).unwrap();
        assert_eq!(out, msgs);
        assert!(!d.is_mid_message());
    }

    #[test]
    fn split_at_every_byte_boundary() {
        let msgs = sample();
        let s = stream(&msgs);
        for cut in 0..=s.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.feed(&s[..cut], &mut out).unwrap();
            d.feed(&s[cut..], &mut out).unwrap();
            assert_eq!(out, msgs, "cut at {cut}");
        }
        // And one byte at a time.
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for b in &s {
            d.feed(core::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out, msgs);
    }

    #[test]
    fn oversized_payload_is_fatal() {
        let mut h = Message::new(XS_WRITE, 1, 0, Vec::new()).encode();
        h[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX + 1).to_le_bytes());
        let mut d = Decoder::new();
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&h, &mut out),
            Err(ProtocolError::PayloadTooLarge(XENSTORE_PAYLOAD_MAX + 1))
        );
        assert!(out.is_empty());
        // A good message afterwards is refused: the connection is dead.
        let good = Message::new(XS_READ, 1, 0, b"/\0".to_vec()).encode();
        assert_eq!(d.feed(&good, &mut out), Err(ProtocolError::NotConnected));
        assert!(out.is_empty());
    }

    #[test]
    fn argument_parsing() {
        assert_eq!(args(b"/a\0", 1).unwrap(), [b"/a"]);
        assert_eq!(args(b"/a\0tok\0", 2).unwrap(), [&b"/a"[..], b"tok"]);
        assert_eq!(args(b"/a", 1), Err(XsError::EINVAL));
        assert_eq!(args(b"/a\0b\0", 1), Err(XsError::EINVAL));
        assert_eq!(args(b"", 1), Err(XsError::EINVAL));
        assert_eq!(
            path_and_value(b"/a\0v\0x").unwrap(),
            (&b"/a"[..], &b"v\0x"[..])
        );
        assert_eq!(path_and_value(b"/a\0").unwrap(), (&b"/a"[..], &b""[..]));
        assert_eq!(path_and_value(b"/a"), Err(XsError::EINVAL));
    }

    #[test]
    fn error_and_event_messages() {
        let req = XsdSockmsg {
            type_: XS_READ,
            req_id: 9,
            tx_id: 3,
            len: 0,
        };
        let e = Message::error(&req, XsError::ENOENT);
        assert_eq!(e.header.type_, XS_ERROR);
        assert_eq!((e.header.req_id, e.header.tx_id), (9, 3));
        assert_eq!(e.payload, b"ENOENT\0");
        let w = Message::watch_event(b"/a", b"t");
        assert_eq!((w.header.req_id, w.header.tx_id, w.header.len), (0, 0, 5));
        assert_eq!(w.payload, b"/a\0t\0");
    }
}
