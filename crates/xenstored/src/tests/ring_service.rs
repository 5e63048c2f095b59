//! End to end over an in-memory ring page.

use super::*;
use crate::ring::read_requests;
use crate::wire::{Decoder, ProtocolError};
use xen_abi::xenstore::mask_xenstore_idx;

/// A guest: writes requests into the page, reads responses out.
fn send(p: &mut XenstoreDomainInterface, data: &[u8]) -> usize {
    let used = p.req_prod.wrapping_sub(p.req_cons) as usize;
    let n = (XENSTORE_RING_SIZE - used).min(data.len());
    for (i, &b) in data[..n].iter().enumerate() {
        p.req[mask_xenstore_idx(p.req_prod.wrapping_add(i as u32))] = b;
    }
    p.req_prod = p.req_prod.wrapping_add(n as u32);
    n
}

fn recv(p: &mut XenstoreDomainInterface, d: &mut Decoder) -> Vec<Message> {
    let mut bytes = Vec::new();
    while p.rsp_cons != p.rsp_prod {
        bytes.push(p.rsp[mask_xenstore_idx(p.rsp_cons)]);
        p.rsp_cons = p.rsp_cons.wrapping_add(1);
    }
    let mut out = Vec::new();
    d.feed(&bytes, &mut out).unwrap();
    out
}

fn page() -> XenstoreDomainInterface {
    let mut p = XenstoreDomainInterface::default();
    // Start near the wrap so messages straddle it.
    for i in [
        &mut p.req_cons,
        &mut p.req_prod,
        &mut p.rsp_cons,
        &mut p.rsp_prod,
    ] {
        *i = 1000;
    }
    p
}

#[test]
fn requests_and_replies_through_the_ring() {
    let mut h = H::new();
    h.add(1);
    let mut p = page();
    let mut d = Decoder::new();
    let mut reqs = Vec::new();
    Message::new(XS_WRITE, 1, 0, b"k\0value".to_vec()).encode_into(&mut reqs);
    Message::new(XS_READ, 2, 0, z("k")).encode_into(&mut reqs);
    Message::new(XS_WATCH, 3, 0, zs(&["k", "tok"])).encode_into(&mut reqs);
    assert_eq!(send(&mut p, &reqs), reqs.len());
    let act = h.x.service_ring(1, &mut p).unwrap();
    assert!(act.notify());
    assert_eq!(act.consumed, reqs.len());
    let got = recv(&mut p, &mut d);
    assert_eq!(got.len(), 4);
    assert_eq!(
        (got[0].header.req_id, &got[0].payload[..]),
        (1, &b"OK\0"[..])
    );
    assert_eq!(
        (got[1].header.req_id, &got[1].payload[..]),
        (2, &b"value"[..])
    );
    assert_eq!(
        (got[2].header.req_id, &got[2].payload[..]),
        (3, &b"OK\0"[..])
    );
    assert_eq!(
        got[3].header.type_, XS_WATCH_EVENT,
        "the event follows the reply"
    );
    assert_eq!(got[3].payload, b"k\0tok\0");
    // Nothing to do: nothing moves.
    assert!(!h.x.service_ring(1, &mut p).unwrap().notify());
}

#[test]
fn large_requests_and_replies_cross_several_ring_fills() {
    let mut h = H::new();
    h.add(1);
    let mut p = page();
    let mut d = Decoder::new();
    let value = vec![b'q'; 2000];
    let mut req = b"big\0".to_vec();
    req.extend_from_slice(&value);
    let write = Message::new(XS_WRITE, 1, 0, req).encode();
    let read = Message::new(XS_READ, 2, 0, z("big")).encode();
    let stream = [write, read].concat();
    let mut sent = 0;
    let mut got = Vec::new();
    for _ in 0..20 {
        sent += send(&mut p, &stream[sent..]);
        h.x.service_ring(1, &mut p).unwrap();
        got.extend(recv(&mut p, &mut d));
    }
    assert_eq!(sent, stream.len());
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].payload, value);
}

#[test]
fn output_larger_than_the_ring_waits_for_the_guest() {
    let mut h = H::new();
    h.add(1);
    h.x.write("/local/domain/1/big", &[b'z'; 3000]).unwrap();
    let mut p = page();
    send(&mut p, &Message::new(XS_READ, 9, 0, z("big")).encode());
    let act = h.x.service_ring(1, &mut p).unwrap();
    assert_eq!(act.produced, XENSTORE_RING_SIZE, "only a ring's worth");
    assert!(h.x.connections_with_output().contains(&1));
    let mut d = Decoder::new();
    let mut got = recv(&mut p, &mut d);
    assert!(got.is_empty());
    while h.x.service_ring(1, &mut p).unwrap().produced > 0 {
        got.extend(recv(&mut p, &mut d));
    }
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload.len(), 3000);
    assert!(!h.x.connections_with_output().contains(&1));
}

#[test]
fn back_pressure_stops_reading_requests() {
    let mut h = H::with_quota(Quota {
        max_pending_output: 100,
        ..Quota::default()
    });
    h.add(1);
    h.x.write("/local/domain/1/v", &[b'v'; 500]).unwrap();
    let mut p = page();
    let batch = |first: u32| {
        let mut reqs = Vec::new();
        for i in first..first + 4 {
            Message::new(XS_READ, i, 0, z("v")).encode_into(&mut reqs);
        }
        reqs
    };
    send(&mut p, &batch(0));
    let act = h.x.service_ring(1, &mut p).unwrap();
    assert_eq!(act.produced, XENSTORE_RING_SIZE);
    assert!(h.x.connection(1).unwrap().pending_output() >= 100);
    // The guest sends more without reading replies: they stay in the ring.
    send(&mut p, &batch(4));
    let act = h.x.service_ring(1, &mut p).unwrap();
    assert_eq!(act, crate::RingActivity::default());
    assert!(crate::ring::req_available(&p).unwrap() > 0);
    // Once it drains, everything is answered, in order.
    let mut d = Decoder::new();
    let mut got = recv(&mut p, &mut d);
    for _ in 0..20 {
        h.x.service_ring(1, &mut p).unwrap();
        got.extend(recv(&mut p, &mut d));
    }
    let ids: Vec<u32> = got.iter().map(|m| m.header.req_id).collect();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
}

#[test]
fn oversized_payload_kills_the_connection() {
    let mut h = H::new();
    h.add(1);
    let mut p = page();
    let mut bad = Message::new(XS_READ, 1, 0, Vec::new()).encode();
    bad[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX + 1).to_le_bytes());
    send(&mut p, &bad);
    assert_eq!(
        h.x.service_ring(1, &mut p),
        Err(ProtocolError::PayloadTooLarge(XENSTORE_PAYLOAD_MAX + 1))
    );
    assert!(h.x.connection(1).unwrap().failed().is_some());
    assert_eq!(
        h.x.service_ring(1, &mut p),
        Err(ProtocolError::NotConnected)
    );
    // Other domains are unaffected, and dom0 can release the dead one.
    h.add(2);
    assert_eq!(h.read(2, "x"), Err(XsError::ENOENT));
    h.x.release(1).unwrap();
}

#[test]
fn malicious_index_kills_the_connection_without_reading() {
    let mut h = H::new();
    h.add(1);
    let mut p = page();
    p.req_prod = p.req_cons.wrapping_add(5000);
    assert!(matches!(
        h.x.service_ring(1, &mut p),
        Err(ProtocolError::BadRingIndex { .. })
    ));
    assert_eq!(p.req_cons, 1000);
    let mut buf = [0u8; 16];
    assert!(read_requests(&mut p, &mut buf).is_err());
}

#[test]
fn a_payload_exactly_at_the_limit_is_accepted() {
    let mut h = H::new();
    let mut payload = b"/max\0".to_vec();
    payload.resize(XENSTORE_PAYLOAD_MAX as usize, b'm');
    let out =
        h.x.process_bytes(0, &Message::new(XS_WRITE, 1, 0, payload).encode())
            .unwrap();
    let mut d = Decoder::new();
    let mut msgs = Vec::new();
    d.feed(&out, &mut msgs).unwrap();
    assert_eq!(msgs[0].payload, b"OK\0");
    assert_eq!(
        h.x.read("/max").unwrap().len(),
        XENSTORE_PAYLOAD_MAX as usize - 5
    );
}

#[test]
fn a_full_ring_of_small_requests_queues_at_most_one_reply_past_the_quota() {
    // 64 16-byte reads of a 4000-byte value fill the request ring; their
    // replies would be 256 KB. Requests are read one message at a time, so
    // the queue stops one reply past the output quota.
    let mut h = H::with_quota(Quota {
        max_pending_output: 8 * 1024,
        ..Quota::default()
    });
    h.add(1);
    h.x.write("/local/domain/1/v", &[b'v'; 4000]).unwrap();
    let mut p = page();
    let mut reqs = Vec::new();
    for i in 0..64 {
        Message::new(XS_READ, i, 0, b"v\0".to_vec()).encode_into(&mut reqs);
    }
    reqs.truncate(XENSTORE_RING_SIZE);
    let sent = send(&mut p, &reqs);
    h.x.service_ring(1, &mut p).unwrap();
    let queued = h.x.connection(1).unwrap().pending_output();
    assert!(queued >= 8 * 1024 - 4016, "{queued}");
    assert!(queued <= 8 * 1024 + 4016, "{queued}");
    assert!(crate::ring::req_available(&p).unwrap() > sent / 2);
}
