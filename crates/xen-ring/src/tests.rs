//! Host tests: both ends on one page, hostile indexes, and property tests of
//! the index math and the notification hold-off against a brute-force model.

use super::*;
use proptest::prelude::*;
use xen_abi::blkif::{BLKIF_RING_SIZE, BlkifRequest, BlkifResponse};
use xen_abi::types::PAGE_SIZE;

type Page = RefCell<Vec<u8>>;

fn page() -> Page {
    RefCell::new(vec![0xA5; PAGE_SIZE])
}

fn req(id: u64) -> BlkifRequest {
    BlkifRequest {
        id,
        nr_segments: 1,
        ..Default::default()
    }
}

fn rsp(id: u64) -> BlkifResponse {
    BlkifResponse {
        id,
        ..Default::default()
    }
}

type Front<'a> = FrontRing<&'a Page, BlkifRequest, BlkifResponse>;
type Back<'a> = BackRing<&'a Page, BlkifRequest, BlkifResponse>;

#[test]
fn blkif_geometry_is_32_slots_of_108_bytes() {
    assert_eq!(
        ring_geometry::<BlkifRequest, BlkifResponse>(PAGE_SIZE),
        Ok((32, 108))
    );
    assert_eq!(BLKIF_RING_SIZE, 32);
    assert_eq!(
        ring_geometry::<BlkifRequest, BlkifResponse>(64 + 107),
        Err(RingError::TooSmall)
    );
    assert_eq!(ring_geometry::<u64, u32>(64 + 8), Ok((1, 8)));
    // Two pages (max-ring-page-order 1): 8128 / 108 = 75 → 64.
    assert_eq!(
        ring_geometry::<BlkifRequest, BlkifResponse>(2 * PAGE_SIZE),
        Ok((64, 108))
    );
}

#[test]
fn init_writes_a_fresh_header() {
    let p = page();
    let f = Front::init(&p).unwrap();
    let b = p.borrow();
    assert_eq!(&b[0..16], &[0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert!(b[16..64].iter().all(|&x| x == 0));
    // The slots are left as they were.
    assert!(b[64..].iter().all(|&x| x == 0xA5));
    assert_eq!(f.free_requests(), 32);
}

#[test]
fn round_trip_in_order_with_slots_in_place() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    for id in 0..3 {
        f.queue_request(&req(100 + id)).unwrap();
    }
    // Not published yet: the back end sees nothing.
    assert_eq!(b.take_request(), Ok(None));
    // The back end asked (req_event = 1 from SHARED_RING_INIT) to be told.
    assert!(f.push_requests());
    // Request 1 sits in slot 1: 64 + 108.
    assert_eq!(p.borrow()[64 + 108 + 4], 101);
    for id in 0..3 {
        let r = b.take_request().unwrap().unwrap();
        assert_eq!({ r.id }, 100 + id);
        b.push_response(&rsp(r.id)).unwrap();
    }
    assert_eq!(b.take_request(), Ok(None));
    assert_eq!(b.push_response(&rsp(9)), Err(RingError::NoRequestToAnswer));
    // rsp_event = 1 from SHARED_RING_INIT: the front end wants to know.
    assert!(b.publish_responses());
    // Nothing new: no second notification.
    assert!(!b.publish_responses());
    for id in 0..3 {
        assert_eq!(f.take_response().unwrap().map(|r| r.id), Some(100 + id));
    }
    assert_eq!(f.take_response(), Ok(None));
    assert_eq!(f.free_requests(), 32);
}

#[test]
fn front_end_cannot_overfill() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    for id in 0..32 {
        f.queue_request(&req(id)).unwrap();
    }
    assert_eq!(f.queue_request(&req(32)), Err(RingError::Full));
    assert_eq!(f.free_requests(), 0);
}

#[test]
fn hold_off_only_notifies_when_asked() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    f.queue_request(&req(1)).unwrap();
    assert!(f.push_requests());
    // The back end has not re-armed req_event: a second push does not notify.
    f.queue_request(&req(2)).unwrap();
    assert!(!f.push_requests());
    assert_eq!(b.take_request().unwrap().map(|r| r.id), Some(1));
    // Work is still waiting: the final check says so without re-arming.
    assert_eq!(b.final_check_for_requests(), Ok(true));
    assert_eq!(p.borrow()[REQ_EVENT], 1);
    assert_eq!(b.take_request().unwrap().map(|r| r.id), Some(2));
    // Empty: re-arm at req_cons + 1 = 3.
    assert_eq!(b.final_check_for_requests(), Ok(false));
    assert_eq!(
        p.borrow().as_slice()[REQ_EVENT..REQ_EVENT + 4],
        [3, 0, 0, 0]
    );
    f.queue_request(&req(3)).unwrap();
    assert!(f.push_requests());
}

#[test]
fn final_check_sees_a_request_published_after_rearming() {
    // The race the final check exists for: the front end publishes between
    // the back end's first look and its re-arming of req_event.
    let p = page();
    let mut f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    f.queue_request(&req(1)).unwrap();
    f.push_requests();
    b.take_request().unwrap().unwrap();
    b.push_response(&rsp(1)).unwrap();
    b.publish_responses();
    // Front publishes request 2 while req_event is still 1 (stale): no notify.
    f.queue_request(&req(2)).unwrap();
    assert!(!f.push_requests());
    // The back end about to sleep finds it anyway.
    assert_eq!(b.final_check_for_requests(), Ok(true));
}

#[test]
fn req_prod_beyond_the_ring_breaks_it_for_good() {
    let p = page();
    let _f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    // 33 requests published on a 32-slot ring with nothing answered.
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&33u32.to_le_bytes());
    let e = RingError::Broken {
        prod: 33,
        cons: 0,
        base: 0,
    };
    assert_eq!(b.take_request(), Err(e));
    assert_eq!(b.broken(), Some(e));
    // Even after the front end "repairs" it, the ring stays dead.
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(b.take_request(), Err(e));
    assert_eq!(b.unconsumed_requests(), Err(e));
    assert_eq!(b.final_check_for_requests(), Err(e));
    assert_eq!(b.req_cons(), 0);
}

#[test]
fn req_prod_exactly_a_ring_ahead_is_allowed_but_not_more_is_taken() {
    let p = page();
    let _f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&32u32.to_le_bytes());
    let mut n = 0;
    while b.take_request().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 32);
    // 32 unanswered: nothing more can be taken.
    assert_eq!(b.take_request(), Ok(None));
    assert_eq!(b.unconsumed_requests(), Ok(0));
    // One response makes room for exactly one more request.
    b.push_response(&rsp(0)).unwrap();
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&33u32.to_le_bytes());
    assert!(b.take_request().unwrap().is_some());
    assert_eq!(b.take_request(), Ok(None));
    // Claiming a second one without a response for it breaks the ring
    // (RING_REQUEST_PROD_OVERFLOW: 34 - 1 > 32).
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&34u32.to_le_bytes());
    assert!(matches!(
        b.take_request(),
        Err(RingError::Broken {
            prod: 34,
            cons: 33,
            base: 1
        })
    ));
}

#[test]
fn req_prod_moving_backwards_breaks_the_ring() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    for id in 0..4 {
        f.queue_request(&req(id)).unwrap();
    }
    f.push_requests();
    for _ in 0..4 {
        b.take_request().unwrap().unwrap();
    }
    p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        b.take_request(),
        Err(RingError::Broken {
            prod: 2,
            cons: 4,
            ..
        })
    ));
}

#[test]
fn huge_and_wrapped_req_prod_values() {
    for bad in [u32::MAX, 0x8000_0000, 0x7FFF_FFFF, 33, 1000] {
        let p = page();
        let _f = Front::init(&p).unwrap();
        let mut b = Back::new(&p).unwrap();
        p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&bad.to_le_bytes());
        assert!(
            matches!(b.take_request(), Err(RingError::Broken { .. })),
            "{bad:#x}"
        );
    }
}

#[test]
fn rsp_prod_beyond_what_was_posted_breaks_the_front_end() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    f.queue_request(&req(1)).unwrap();
    f.push_requests();
    p.borrow_mut()[RSP_PROD..RSP_PROD + 4].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        f.take_response(),
        Err(RingError::Broken { prod: 2, .. })
    ));
    assert!(f.final_check_for_responses().is_err());
}

#[test]
fn shared_rsp_prod_scribbles_do_not_change_the_notify_decision() {
    let p = page();
    let mut f = Front::init(&p).unwrap();
    let mut b = Back::new(&p).unwrap();
    f.queue_request(&req(1)).unwrap();
    f.push_requests();
    b.take_request().unwrap().unwrap();
    b.push_response(&rsp(1)).unwrap();
    // The front end writes rsp_prod itself, as if the response were already
    // published: the back end still notifies (rsp_event = 1 is in (0, 1]).
    p.borrow_mut()[RSP_PROD..RSP_PROD + 4].copy_from_slice(&1u32.to_le_bytes());
    assert!(b.publish_responses());
}

#[test]
fn wraps_around_u32() {
    let p = page();
    let start = u32::MAX - 5;
    let mut f = Front::init_at(&p, start).unwrap();
    let mut b = Back::attach(&p, start).unwrap();
    let mut next = 0u64;
    let mut got = 0u64;
    for _ in 0..20 {
        for _ in 0..7 {
            f.queue_request(&req(next)).unwrap();
            next += 1;
        }
        f.push_requests();
        while let Some(r) = b.take_request().unwrap() {
            b.push_response(&rsp(r.id)).unwrap();
        }
        b.publish_responses();
        while let Some(r) = f.take_response().unwrap() {
            assert_eq!({ r.id }, got);
            got += 1;
        }
    }
    assert_eq!(got, 140);
    assert_eq!(b.req_cons(), start.wrapping_add(140));
}

// ---- property tests ----

/// Brute force: is `event` one of `old+1 ..= new`?
fn model_notify(old: u32, new: u32, event: u32) -> bool {
    let d = new.wrapping_sub(old);
    (1..=d).any(|k| old.wrapping_add(k) == event)
}

#[derive(Clone, Debug)]
enum Op {
    Queue(u8),
    Push,
    Take(u8),
    Respond(u8),
    Publish,
    FrontTake(u8),
    BackFinal,
    FrontFinal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..40).prop_map(Op::Queue),
        Just(Op::Push),
        (0u8..40).prop_map(Op::Take),
        (0u8..40).prop_map(Op::Respond),
        Just(Op::Publish),
        (0u8..40).prop_map(Op::FrontTake),
        Just(Op::BackFinal),
        Just(Op::FrontFinal),
    ]
}

fn read_u32(p: &Page, off: usize) -> u32 {
    u32::from_le_bytes(p.borrow()[off..off + 4].try_into().unwrap())
}

proptest! {
    /// Honest ends, any interleaving, any starting index: FIFO delivery,
    /// never more than `size` outstanding, never an error, notifications
    /// exactly as the brute-force model says, and no lost wake-up: after a
    /// final check found nothing, the next publication notifies.
    #[test]
    fn honest_ends_agree_with_the_model(
        start in prop_oneof![Just(0u32), Just(u32::MAX - 40), any::<u32>()],
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let p = page();
        let mut f = Front::init_at(&p, start).unwrap();
        let mut b = Back::attach(&p, start).unwrap();
        let (mut queued, mut taken, mut answered, mut received) = (0u64, 0u64, 0u64, 0u64);
        let mut published_req = 0u64;
        let mut published_rsp = 0u64;
        let mut back_asleep = false;
        let mut front_asleep = false;
        for o in ops {
            match o {
                Op::Queue(n) => for _ in 0..n {
                    match f.queue_request(&req(queued)) {
                        Ok(()) => queued += 1,
                        Err(e) => {
                            prop_assert_eq!(e, RingError::Full);
                            prop_assert_eq!(queued - received, 32);
                        }
                    }
                },
                Op::Push => {
                    let old = read_u32(&p, REQ_PROD);
                    let event = read_u32(&p, REQ_EVENT);
                    let notify = f.push_requests();
                    let new = read_u32(&p, REQ_PROD);
                    prop_assert_eq!(new, start.wrapping_add(queued as u32));
                    prop_assert_eq!(notify, model_notify(old, new, event));
                    if back_asleep && new != old {
                        prop_assert!(notify, "lost wake-up of the back end");
                        back_asleep = false;
                    }
                    published_req = queued;
                }
                Op::Take(n) => for _ in 0..n {
                    match b.take_request().unwrap() {
                        Some(r) => {
                            prop_assert_eq!({ r.id }, taken);
                            taken += 1;
                            prop_assert!(taken <= published_req);
                            prop_assert!(taken - answered <= 32);
                        }
                        None => prop_assert!(taken == published_req || taken - answered == 32),
                    }
                },
                Op::Respond(n) => for _ in 0..n {
                    match b.push_response(&rsp(answered)) {
                        Ok(()) => answered += 1,
                        Err(e) => {
                            prop_assert_eq!(e, RingError::NoRequestToAnswer);
                            prop_assert_eq!(answered, taken);
                        }
                    }
                },
                Op::Publish => {
                    let old = read_u32(&p, RSP_PROD);
                    let event = read_u32(&p, RSP_EVENT);
                    let notify = b.publish_responses();
                    let new = read_u32(&p, RSP_PROD);
                    prop_assert_eq!(new, start.wrapping_add(answered as u32));
                    prop_assert_eq!(notify, model_notify(old, new, event));
                    if front_asleep && new != old {
                        prop_assert!(notify, "lost wake-up of the front end");
                        front_asleep = false;
                    }
                    published_rsp = answered;
                }
                Op::FrontTake(n) => for _ in 0..n {
                    match f.take_response().unwrap() {
                        Some(r) => {
                            prop_assert_eq!({ r.id }, received);
                            received += 1;
                            prop_assert!(received <= published_rsp);
                        }
                        None => prop_assert_eq!(received, published_rsp),
                    }
                },
                Op::BackFinal => {
                    let work = b.final_check_for_requests().unwrap();
                    let room = 32 - (taken - answered);
                    prop_assert_eq!(work, (published_req - taken).min(room) > 0);
                    back_asleep = !work && taken == published_req;
                }
                Op::FrontFinal => {
                    let work = f.final_check_for_responses().unwrap();
                    prop_assert_eq!(work, published_rsp > received);
                    front_asleep = !work;
                }
            }
            prop_assert_eq!(f.free_requests() as u64, 32 - (queued - received));
        }
    }

    /// A hostile front end writing any value to `req_prod` at any time: the
    /// back end never takes a request that was not within a ring of its
    /// responses, never holds more than `size` unanswered, never panics, and
    /// once broken stays broken.
    #[test]
    fn hostile_req_prod_is_contained(
        start in any::<u32>(),
        writes in proptest::collection::vec((any::<u32>(), 0u8..40, 0u8..40), 1..60),
    ) {
        let p = page();
        let _f = Front::init_at(&p, start).unwrap();
        let mut b = Back::attach(&p, start).unwrap();
        let mut was_broken = false;
        for (delta, takes, answers) in writes {
            // Mostly plausible values, sometimes anything.
            let prod = if delta % 3 == 0 { delta } else {
                b.rsp_prod_pvt().wrapping_add(delta % 40)
            };
            p.borrow_mut()[REQ_PROD..REQ_PROD + 4].copy_from_slice(&prod.to_le_bytes());
            for _ in 0..takes {
                match b.take_request() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(RingError::Broken { .. }) => { was_broken = true; break }
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                }
                prop_assert!(!was_broken);
            }
            for _ in 0..answers {
                if b.push_response(&rsp(0)).is_err() { break }
            }
            b.publish_responses();
            let unanswered = b.req_cons().wrapping_sub(b.rsp_prod_pvt());
            prop_assert!(unanswered <= 32);
            if was_broken {
                prop_assert!(b.broken().is_some());
                prop_assert!(b.take_request().is_err());
            }
        }
    }
}
