//! Issue 12's "Bad input": each hostile front end gets BLKIF_RSP_ERROR (or a
//! dead ring), nothing reaches the disk that should not, and the back end
//! always returns.

use proptest::prelude::*;
use xen_abi::blkif::{
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ,
    BLKIF_OP_RESERVED_1, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP,
    BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest,
};
use xen_abi::grant::{GNTST_BAD_GNTREF, GNTST_PERMISSION_DENIED};
use xen_ring::{REQ_PROD, RingError};
use zerocopy::FromBytes;

use super::fakes::*;
use crate::io::CopyError;
use crate::request::{Op, Refusal};

fn set_req_prod(p: &Page, v: u32) {
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn ring_index_beyond_the_ring_kills_the_ring_not_the_back_end() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x77, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    f.queue_request(&request(BLKIF_OP_WRITE, 1, 0, &[seg(1, 0, 0)]))
        .unwrap();
    f.push_requests();
    // An honest request is served; then the front end claims 40 more.
    assert_eq!(b.service(32).unwrap().handled, 1);
    set_req_prod(&p, 1 + 33);
    let e = b.service(32).unwrap_err();
    assert!(matches!(e, RingError::Broken { prod: 34, .. }));
    // Dead for good, even if the index is put back; nothing else was done.
    set_req_prod(&p, 2);
    assert_eq!(b.service(32), Err(e));
    assert_eq!(b.disk().writes(), 1);
    assert_eq!(b.stats().requests, 1);
}

#[test]
fn broken_ring_still_publishes_the_responses_already_made() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    for id in 0..3 {
        f.queue_request(&read(id, 0, &[seg(1, 0, 0)])).unwrap();
    }
    f.push_requests();
    // Budget 2: two answered, one left; then the index goes wild. The third
    // request was published under the index read before, which was valid:
    // it is served, and the next read of the index breaks the ring.
    let s = b.service(2).unwrap();
    assert_eq!((s.handled, s.more), (2, true));
    set_req_prod(&p, u32::MAX);
    assert!(b.service(32).is_err());
    assert_eq!(b.stats().requests, 3);
    let mut got = 0;
    while f.take_response().unwrap().is_some() {
        got += 1;
    }
    assert_eq!(got, 3);
}

#[test]
fn reused_ids_each_get_their_own_response() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x10, false);
    g.grant(2, 0x20, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            request(BLKIF_OP_WRITE, 5, 1, &[seg(1, 0, 0)]),
            request(BLKIF_OP_WRITE, 5, 2, &[seg(2, 0, 0)]),
            read(5, 99, &[seg(1, 0, 0)]),
        ],
    );
    assert_eq!(
        out,
        [
            (5, BLKIF_OP_WRITE, BLKIF_RSP_OKAY),
            (5, BLKIF_OP_WRITE, BLKIF_RSP_OKAY),
            (5, BLKIF_OP_READ, BLKIF_RSP_ERROR),
        ]
    );
    assert!(b.disk().cache[512..1024].iter().all(|&x| x == 0x10));
    assert!(b.disk().cache[1024..1536].iter().all(|&x| x == 0x20));
}

#[test]
fn segment_counts_out_of_range() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    let mut reqs = Vec::new();
    for (op, n) in [
        (BLKIF_OP_READ, 0u8),
        (BLKIF_OP_WRITE, 0),
        (BLKIF_OP_READ, 12),
        (BLKIF_OP_WRITE, 12),
        (BLKIF_OP_WRITE, 255),
        (BLKIF_OP_FLUSH_DISKCACHE, 12),
        (BLKIF_OP_WRITE_BARRIER, 200),
    ] {
        let mut r = request(op, u64::from(n), 0, &[seg(1, 0, 0)]);
        r.nr_segments = n;
        reqs.push(r);
    }
    let out = exchange(&mut f, &mut b, &reqs);
    assert!(out.iter().all(|&(_, _, s)| s == BLKIF_RSP_ERROR), "{out:?}");
    assert_eq!(b.stats().last_refusal, Some(Refusal::BadSegmentCount(200)));
    assert!(b.disk().log.is_empty() && b.grants().log.is_empty());
}

#[test]
fn first_and_last_sect_out_of_order_or_out_of_the_page() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            read(1, 0, &[seg(1, 0, 7), seg(1, 5, 4)]),
            request(BLKIF_OP_WRITE, 2, 0, &[seg(1, 0, 8)]),
            request(BLKIF_OP_WRITE, 3, 0, &[seg(1, 8, 8)]),
            request(BLKIF_OP_WRITE, 4, 0, &[seg(1, 255, 255)]),
        ],
    );
    assert!(out.iter().all(|&(_, _, s)| s == BLKIF_RSP_ERROR), "{out:?}");
    assert_eq!(
        b.stats().last_refusal,
        Some(Refusal::BadSegment {
            index: 0,
            first_sect: 255,
            last_sect: 255
        })
    );
    assert!(b.disk().log.is_empty() && b.grants().log.is_empty());
}

#[test]
fn sector_ranges_past_the_end() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x33, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            // The last sector exactly: fine.
            request(BLKIF_OP_WRITE, 1, 15, &[seg(1, 0, 0)]),
            // One past it.
            request(BLKIF_OP_WRITE, 2, 15, &[seg(1, 0, 1)]),
            read(3, 16, &[seg(1, 0, 0)]),
            // Wrapping the u64 sector count.
            read(4, u64::MAX, &[seg(1, 0, 1)]),
            request(BLKIF_OP_WRITE, 5, u64::MAX - 1, &[seg(1, 0, 7)]),
            // A barrier carrying data is range-checked too.
            request(BLKIF_OP_WRITE_BARRIER, 6, 16, &[seg(1, 0, 0)]),
        ],
    );
    let statuses: Vec<_> = out.iter().map(|o| o.2).collect();
    assert_eq!(
        statuses,
        [
            BLKIF_RSP_OKAY,
            BLKIF_RSP_ERROR,
            BLKIF_RSP_ERROR,
            BLKIF_RSP_ERROR,
            BLKIF_RSP_ERROR,
            BLKIF_RSP_ERROR
        ]
    );
    assert_eq!(b.disk().log, [DiskOp::Write(15, 512)]);
}

#[test]
fn grefs_not_granted() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x44, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(64), false);
    // A write whose third segment is not granted: nothing reaches the disk.
    let w = request(
        BLKIF_OP_WRITE,
        1,
        0,
        &[seg(1, 0, 7), seg(1, 0, 7), seg(999, 0, 7)],
    );
    let out = exchange(&mut f, &mut b, &[w, read(2, 0, &[seg(12345, 0, 0)])]);
    assert_eq!(out[0].2, BLKIF_RSP_ERROR);
    assert_eq!(out[1].2, BLKIF_RSP_ERROR);
    assert_eq!(b.disk().writes(), 0);
    assert_eq!(b.disk().cache, FakeDisk::new(64).cache);
    assert_eq!(
        b.stats().last_copy_error,
        Some(CopyError {
            index: 0,
            status: GNTST_BAD_GNTREF
        })
    );
    assert_eq!(b.stats().copy_failures, 2);
}

#[test]
fn read_into_a_read_only_grant_is_refused() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x55, true);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    let out = exchange(&mut f, &mut b, &[read(1, 3, &[seg(1, 0, 0)])]);
    assert_eq!(out[0].2, BLKIF_RSP_ERROR);
    assert!(
        b.grants().page(1).iter().all(|&x| x == 0x55),
        "frame unchanged"
    );
    assert_eq!(
        b.stats().last_copy_error.map(|e| e.status),
        Some(GNTST_PERMISSION_DENIED)
    );
}

#[test]
fn read_only_vbd_refuses_writes() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x66, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), true);
    assert!(!b.vbd().flush && !b.vbd().barrier);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            request(BLKIF_OP_WRITE, 1, 0, &[seg(1, 0, 0)]),
            request(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, &[]),
            request(BLKIF_OP_WRITE_BARRIER, 3, 0, &[seg(1, 0, 0)]),
            read(4, 0, &[seg(1, 0, 0)]),
        ],
    );
    let statuses: Vec<_> = out.iter().map(|o| o.2).collect();
    assert_eq!(
        statuses,
        [
            BLKIF_RSP_ERROR,
            BLKIF_RSP_EOPNOTSUPP,
            BLKIF_RSP_EOPNOTSUPP,
            BLKIF_RSP_OKAY
        ]
    );
    assert_eq!(b.disk().log, [DiskOp::Read(0, 512)]);
    assert_eq!(b.stats().refused, 3);
    assert!(matches!(
        b.stats().last_refusal,
        Some(Refusal::NotNegotiated(Op::Barrier))
    ));
}

#[test]
fn unknown_and_unoffered_operations() {
    let p = page();
    let (mut f, mut b) = connect(&p, FakeGrants::new(), FakeDisk::new(16), false);
    let reqs: Vec<_> = [
        BLKIF_OP_RESERVED_1,
        BLKIF_OP_DISCARD,
        BLKIF_OP_INDIRECT,
        7,
        200,
        255,
    ]
    .iter()
    .map(|&op| request(op, u64::from(op), 0, &[]))
    .collect();
    let out = exchange(&mut f, &mut b, &reqs);
    for (o, r) in out.iter().zip(&reqs) {
        assert_eq!(*o, (r.id, r.operation, BLKIF_RSP_EOPNOTSUPP));
    }
    assert!(b.disk().log.is_empty());
}

#[test]
fn front_end_that_never_consumes_responses() {
    // It fills the ring, never takes a response, and keeps publishing: the
    // slots it "publishes" now hold our responses. Each call does at most its
    // budget; the back end never holds more than a ring of unanswered
    // requests, and a claim beyond that kills the ring.
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    for id in 0..32 {
        f.queue_request(&read(id, 0, &[seg(1, 0, 0)])).unwrap();
    }
    assert_eq!(
        f.queue_request(&read(99, 0, &[seg(1, 0, 0)])),
        Err(xen_ring::RingError::Full)
    );
    f.push_requests();
    let mut calls = 0;
    loop {
        let s = b.service(5).unwrap();
        assert!(s.handled <= 5);
        calls += 1;
        if !s.more {
            break;
        }
    }
    assert_eq!((calls, b.ring().req_cons()), (7, 32));
    // Re-publish the same slots (responses now) as 32 new requests.
    for round in 1..=100u32 {
        set_req_prod(&p, 32 * (round + 1));
        let mut handled = 0;
        for _ in 0..8 {
            let s = b.service(5).unwrap();
            assert!(s.handled <= 5);
            handled += s.handled;
        }
        assert_eq!(handled, 32);
    }
    // Every slot published was answered, garbage or not.
    assert_eq!(b.stats().requests, 32 * 101);
    assert!(b.stats().refused > 0);
    set_req_prod(&p, 32 * 101 + 33);
    assert!(b.service(5).is_err());
}

#[test]
fn flooding_is_bounded_per_call() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(16), false);
    for id in 0..32 {
        f.queue_request(&read(id, 0, &[seg(1, 0, 0)])).unwrap();
    }
    f.push_requests();
    let s = b.service(1).unwrap();
    assert_eq!((s.handled, s.more), (1, true));
    let s = b.service(100).unwrap();
    assert_eq!((s.handled, s.more), (31, false));
}

fn arb_request() -> impl Strategy<Value = BlkifRequest> {
    // Raw bytes, with the operation, count and grants biased towards the
    // interesting values so that many requests are nearly valid.
    (
        proptest::collection::vec(any::<u8>(), 108),
        prop_oneof![0u8..4, any::<u8>()],
        prop_oneof![0u8..12, any::<u8>()],
        prop_oneof![0u64..40, any::<u64>()],
        proptest::collection::vec((0u32..6, 0u8..9, 0u8..9), 11),
    )
        .prop_map(|(bytes, op, n, sector, segs)| {
            let mut r = BlkifRequest::read_from_bytes(&bytes).unwrap();
            r.operation = op;
            r.nr_segments = n;
            r.sector_number = sector;
            let mut s = r.seg;
            for (i, (g, a, z)) in segs.into_iter().enumerate() {
                s[i] = seg(g, a, z);
            }
            r.seg = s;
            r
        })
}

proptest! {
    /// Any request: one response with its id and operation; a write that is
    /// not OKAY changed nothing on the disk; an OKAY write put exactly the
    /// front end's bytes there.
    #[test]
    fn any_request_gets_one_answer_and_failed_writes_change_nothing(
        reqs in proptest::collection::vec(arb_request(), 1..20),
        readonly in any::<bool>(),
    ) {
        let p = page();
        let mut g = FakeGrants::new();
        // Grants 0..3 writable, 3 read-only, 4.. absent.
        for gref in 0..3 { g.grant(gref, 0x80 + gref as u8, false); }
        g.grant(3, 0x83, true);
        let (mut f, mut b) = connect(&p, g, FakeDisk::new(40), readonly);
        for r in &reqs {
            let before = b.disk().cache.clone();
            let out = exchange(&mut f, &mut b, std::slice::from_ref(r));
            prop_assert_eq!(out.len(), 1);
            let (id, op, status) = out[0];
            prop_assert_eq!((id, op), ({ r.id }, r.operation));
            let writes = matches!(r.operation, BLKIF_OP_WRITE | BLKIF_OP_WRITE_BARRIER | BLKIF_OP_FLUSH_DISKCACHE);
            if status != BLKIF_RSP_OKAY || !writes {
                prop_assert!(b.disk().cache == before, "disk changed by a failed or non-write request");
            } else {
                prop_assert!(!readonly);
                let mut at = if r.nr_segments == 0 { 0 } else { r.sector_number as usize * 512 };
                let segs = r.seg;
                for s in &segs[..usize::from(r.nr_segments)] {
                    let fill = 0x80 + s.gref as u8;
                    let len = (usize::from(s.last_sect - s.first_sect) + 1) * 512;
                    prop_assert!(b.disk().cache[at..at + len].iter().all(|&x| x == fill));
                    at += len;
                }
                if r.operation != BLKIF_OP_WRITE {
                    prop_assert!(b.disk().durable == b.disk().cache);
                }
            }
        }
    }
}
