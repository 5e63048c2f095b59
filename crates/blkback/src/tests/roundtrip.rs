//! Normal read, write, flush and barrier exchanges.

use xen_abi::blkif::{
    BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER,
    BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
};
use xen_ring::REQ_EVENT;

use super::fakes::*;
use crate::io::IoError;

#[test]
fn read_lands_in_the_granted_frames_at_their_sectors() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(10, 0x11, false);
    g.grant(11, 0x22, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(100), false);
    // 4 sectors into frame 10 at sectors 2..=5, then 8 into frame 11.
    let r = read(7, 20, &[seg(10, 2, 5), seg(11, 0, 7)]);
    assert_eq!(
        exchange(&mut f, &mut b, &[r]),
        [(7, BLKIF_OP_READ, BLKIF_RSP_OKAY)]
    );
    let p10 = b.grants().page(10);
    assert!(
        p10[..2 * 512].iter().all(|&x| x == 0x11),
        "before first_sect untouched"
    );
    for s in 0..4 {
        assert!(
            p10[(2 + s) * 512..(3 + s) * 512]
                .iter()
                .all(|&x| x == 20 + s as u8)
        );
    }
    assert!(
        p10[6 * 512..].iter().all(|&x| x == 0x11),
        "after last_sect untouched"
    );
    let p11 = b.grants().page(11);
    for s in 0..8 {
        assert!(
            p11[s * 512..(s + 1) * 512]
                .iter()
                .all(|&x| x == 24 + s as u8)
        );
    }
    assert_eq!(b.disk().log, [DiskOp::Read(20, 12 * 512)]);
    assert_eq!(b.stats().okay, 1);
}

#[test]
fn write_is_acknowledged_in_the_cache_and_flush_makes_it_durable() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(3, 0xAB, true); // a read-only grant is enough for a write
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(64), false);
    let w = request(BLKIF_OP_WRITE, 1, 8, &[seg(3, 1, 2)]);
    assert_eq!(
        exchange(&mut f, &mut b, &[w]),
        [(1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY)]
    );
    assert!(b.disk().cache[8 * 512..10 * 512].iter().all(|&x| x == 0xAB));
    assert!(b.disk().cache[10 * 512..11 * 512].iter().all(|&x| x == 10));
    // Not durable yet: no flush was asked for.
    assert!(
        b.disk().durable[8 * 512..10 * 512]
            .iter()
            .all(|&x| x != 0xAB)
    );
    let fl = request(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, &[]);
    assert_eq!(
        exchange(&mut f, &mut b, &[fl]),
        [(2, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_RSP_OKAY)]
    );
    assert_eq!(b.disk().durable, b.disk().cache);
    assert_eq!(b.disk().log, [DiskOp::Write(8, 1024), DiskOp::Flush]);
}

#[test]
fn write_then_read_back_across_bounce_pages() {
    // Eleven segments of 7 sectors each pack into 77 sectors: most straddle a
    // page of the bounce buffer (the fake refuses copies that cross one).
    let p = page();
    let mut g = FakeGrants::new();
    for i in 0..11 {
        g.grant(100 + i, 0x40 + i as u8, false);
        g.grant(200 + i, 0, false);
    }
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(200), false);
    let wsegs: Vec<_> = (0..11).map(|i| seg(100 + i, 1, 7)).collect();
    let rsegs: Vec<_> = (0..11).map(|i| seg(200 + i, 0, 6)).collect();
    let out = exchange(
        &mut f,
        &mut b,
        &[request(BLKIF_OP_WRITE, 1, 50, &wsegs), read(2, 50, &rsegs)],
    );
    assert_eq!(
        out,
        [
            (1, BLKIF_OP_WRITE, BLKIF_RSP_OKAY),
            (2, BLKIF_OP_READ, BLKIF_RSP_OKAY)
        ]
    );
    for i in 0..11u32 {
        let pg = b.grants().page(200 + i);
        assert!(
            pg[..7 * 512].iter().all(|&x| x == 0x40 + i as u8),
            "segment {i}"
        );
        assert!(pg[7 * 512..].iter().all(|&x| x == 0));
    }
    assert!(b.grants().log.len() > 22, "split copies were made");
}

#[test]
fn barrier_with_data_flushes_before_and_after() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x5A, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(32), false);
    let r = request(BLKIF_OP_WRITE_BARRIER, 9, 4, &[seg(1, 0, 0)]);
    assert_eq!(
        exchange(&mut f, &mut b, &[r]),
        [(9, BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_OKAY)]
    );
    assert_eq!(
        b.disk().log,
        [DiskOp::Flush, DiskOp::Write(4, 512), DiskOp::Flush]
    );
    assert!(
        b.disk().durable[4 * 512..5 * 512]
            .iter()
            .all(|&x| x == 0x5A)
    );
    // Same for a flush carrying data (Linux's FUA writes).
    let p2 = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0x5B, false);
    let (mut f, mut b) = connect(&p2, g, FakeDisk::new(32), false);
    let r = request(BLKIF_OP_FLUSH_DISKCACHE, 9, 4, &[seg(1, 0, 0)]);
    assert_eq!(exchange(&mut f, &mut b, &[r])[0].2, BLKIF_RSP_OKAY);
    assert_eq!(
        b.disk().log,
        [DiskOp::Flush, DiskOp::Write(4, 512), DiskOp::Flush]
    );
    assert_eq!(b.disk().durable, b.disk().cache);
}

#[test]
fn barrier_without_data_is_a_flush() {
    let p = page();
    let (mut f, mut b) = connect(&p, FakeGrants::new(), FakeDisk::new(8), false);
    let r = request(BLKIF_OP_WRITE_BARRIER, 4, 0, &[]);
    assert_eq!(exchange(&mut f, &mut b, &[r])[0].2, BLKIF_RSP_OKAY);
    assert_eq!(b.disk().log, [DiskOp::Flush]);
}

#[test]
fn failed_flush_is_not_acknowledged() {
    for (e, status) in [
        (IoError::Io, BLKIF_RSP_ERROR),
        (IoError::Unsupported, BLKIF_RSP_EOPNOTSUPP),
    ] {
        let p = page();
        let mut d = FakeDisk::new(8);
        d.flush_error = Some(e);
        let (mut f, mut b) = connect(&p, FakeGrants::new(), d, false);
        let r = request(BLKIF_OP_FLUSH_DISKCACHE, 4, 0, &[]);
        assert_eq!(exchange(&mut f, &mut b, &[r])[0].2, status);
        assert_eq!(b.stats().io_failures, 1);
    }
}

#[test]
fn failed_device_io_is_an_error() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let mut d = FakeDisk::new(8);
    d.fail_io = true;
    let (mut f, mut b) = connect(&p, g, d, false);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            read(1, 0, &[seg(1, 0, 0)]),
            request(BLKIF_OP_WRITE, 2, 0, &[seg(1, 0, 0)]),
        ],
    );
    assert_eq!(out[0].2, BLKIF_RSP_ERROR);
    assert_eq!(out[1].2, BLKIF_RSP_ERROR);
    // The failed read copied nothing into the front end's frame.
    assert!(
        b.grants()
            .log
            .iter()
            .all(|o| o.dir == crate::io::CopyDir::FromFrontend)
    );
}

#[test]
fn a_device_without_flush_offers_neither_flush_nor_barrier() {
    let p = page();
    let mut d = FakeDisk::new(8);
    d.flushes = false;
    let (mut f, mut b) = connect(&p, FakeGrants::new(), d, false);
    assert!(!b.vbd().flush && !b.vbd().barrier);
    let out = exchange(
        &mut f,
        &mut b,
        &[
            request(BLKIF_OP_FLUSH_DISKCACHE, 1, 0, &[]),
            request(BLKIF_OP_WRITE_BARRIER, 2, 0, &[]),
        ],
    );
    assert_eq!(out[0].2, BLKIF_RSP_EOPNOTSUPP);
    assert_eq!(out[1].2, BLKIF_RSP_EOPNOTSUPP);
    assert!(b.disk().log.is_empty());
}

#[test]
fn notifications_and_rearming() {
    let p = page();
    let mut g = FakeGrants::new();
    g.grant(1, 0, false);
    let (mut f, mut b) = connect(&p, g, FakeDisk::new(8), false);
    // Idle back end: nothing done, nothing to notify, req_event re-armed.
    let s = b.service(32).unwrap();
    assert_eq!((s.handled, s.notify, s.more), (0, false, false));
    assert_eq!(p.borrow()[REQ_EVENT], 1);
    f.queue_request(&read(1, 0, &[seg(1, 0, 0)])).unwrap();
    assert!(f.push_requests(), "the re-armed back end is woken");
    // The front end waits for responses: rsp_event = rsp_cons + 1.
    assert!(!f.final_check_for_responses().unwrap());
    let s = b.service(32).unwrap();
    assert_eq!((s.handled, s.notify, s.more), (1, true, false));
    assert_eq!(p.borrow()[REQ_EVENT], 2);
    // The front end did not re-arm: the next response is not notified.
    f.queue_request(&read(2, 0, &[seg(1, 0, 0)])).unwrap();
    f.push_requests();
    let s = b.service(32).unwrap();
    assert_eq!((s.handled, s.notify), (1, false));
}
