//! Host tests: the plan's segments, ids in flight, the state machine, and a
//! front end built from these pieces exchanging data with blkback.

use std::cell::RefCell;
use std::rc::Rc;

use blkback::{
    BOUNCE_BYTES, Blkback, BlockDevice, CopyDir, CopyError, CopyOp, GrantCopy, IoError, VbdParams,
};
use proptest::prelude::*;
use xen_abi::blkif::{
    BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_RSP_OKAY, BlkifRequest,
    BlkifResponse,
};
use xen_abi::grant::GNTST_BAD_GNTREF;
use xen_abi::types::PAGE_SIZE;
use xen_abi::xenbus::XenbusState as X;
use xen_ring::{BackRing, FrontRing};

use crate::inflight::{InFlight, UnknownId};
use crate::plan::plan;
use crate::xenbus::*;

proptest! {
    /// The requests cover exactly the transfer, in order on disk and in
    /// memory, with valid segments, at most 11 per request, one per page.
    #[test]
    fn plan_covers_the_transfer(sector in 0u64..1 << 40, first in 0u8..8, n in 0u64..400) {
        let p = plan(sector, first, n);
        let pages = p.pages();
        let mut disk = sector;
        let mut mem = u64::from(first);
        let mut last_page = None;
        for r in p {
            prop_assert!(r.nr_segs >= 1 && r.nr_segs <= 11);
            prop_assert_eq!(r.sector, disk);
            for c in r.chunks() {
                prop_assert!(c.first_sect <= c.last_sect && c.last_sect <= 7);
                prop_assert_eq!(c.page as u64 * 8 + u64::from(c.first_sect), mem);
                prop_assert!(last_page.is_none_or(|l| c.page == l + 1));
                last_page = Some(c.page);
                let k = u64::from(c.last_sect - c.first_sect) + 1;
                mem += k;
                disk += k;
            }
            prop_assert_eq!(r.nr_sectors(), r.chunks().iter().map(|c| u64::from(c.last_sect - c.first_sect) + 1).sum::<u64>());
        }
        prop_assert_eq!(disk - sector, n);
        prop_assert_eq!(pages, last_page.map_or(0, |l| l + 1));
    }
}

#[test]
fn plan_examples() {
    // 8 sectors from the middle of a page: two segments.
    let r: Vec<_> = plan(100, 4, 8).collect();
    assert_eq!(r.len(), 1);
    let c = r[0].chunks();
    assert_eq!((c[0].page, c[0].first_sect, c[0].last_sect), (0, 4, 7));
    assert_eq!((c[1].page, c[1].first_sect, c[1].last_sect), (1, 0, 3));
    // 12 whole pages: 11 then 1.
    let r: Vec<_> = plan(0, 0, 96).collect();
    assert_eq!(
        (r.len(), r[0].nr_segs, r[1].nr_segs, r[1].sector),
        (2, 11, 1, 88)
    );
    assert_eq!(plan(0, 0, 0).count(), 0);
    let req = r[1].request(BLKIF_OP_WRITE, 7, 2049, |page| 1000 + page as u32);
    assert_eq!(
        (
            req.nr_segments,
            { req.sector_number },
            { req.id },
            req.handle
        ),
        (1, 88, 7, 2049)
    );
    let seg = req.seg;
    assert_eq!(
        (seg[0].gref, seg[0].first_sect, seg[0].last_sect),
        (1011, 0, 7)
    );
}

#[test]
fn ids_in_flight() {
    let mut t: InFlight<&str, 2> = InFlight::new();
    let a = t.insert("a").unwrap();
    let b = t.insert("b").unwrap();
    assert_eq!(t.insert("c"), Err("c"));
    assert_eq!(t.complete(b), Ok("b"));
    // Answered twice, or never issued, or out of range: refused.
    assert_eq!(t.complete(b), Err(UnknownId(b)));
    assert_eq!(t.complete(99), Err(UnknownId(99)));
    assert_eq!(t.complete(u64::MAX), Err(UnknownId(u64::MAX)));
    // The slot is reused with a new generation: the old id stays refused.
    let c = t.insert("c").unwrap();
    assert_ne!(c, b);
    assert_eq!(c & 0xFFFF_FFFF, b & 0xFFFF_FFFF);
    assert_eq!(t.complete(b), Err(UnknownId(b)));
    assert_eq!(t.len(), 2);
    let mut drained = Vec::new();
    t.drain(|v| drained.push(v));
    drained.sort();
    assert_eq!(drained, ["a", "c"]);
    assert!(t.is_empty());
    assert_eq!(t.complete(a), Err(UnknownId(a)));
}

fn sit(frontend: X, backend: X) -> Situation {
    Situation {
        frontend,
        backend: BackendState::State(backend),
        detach: false,
    }
}

#[test]
fn front_end_handshake_and_detach() {
    assert_eq!(
        next_step(&sit(X::Initialising, X::Initialising)),
        Step::Wait
    );
    assert_eq!(next_step(&sit(X::Initialising, X::InitWait)), Step::Publish);
    assert_eq!(next_step(&sit(X::Initialised, X::InitWait)), Step::Wait);
    assert_eq!(next_step(&sit(X::Initialised, X::Connected)), Step::Connect);
    assert_eq!(next_step(&sit(X::Connected, X::Connected)), Step::Wait);
    // A back end that went straight to Connected: publish first.
    assert_eq!(
        next_step(&sit(X::Initialising, X::Connected)),
        Step::Publish
    );
    // The back end closes (xm block-detach, or a fatal error).
    assert_eq!(next_step(&sit(X::Connected, X::Closing)), Step::Close);
    assert_eq!(next_step(&sit(X::Initialised, X::Closed)), Step::Close);
    assert_eq!(next_step(&sit(X::Closed, X::Closing)), Step::Wait);
    // The guest detaches: Closing, then Closed once the back end follows.
    let mut s = sit(X::Connected, X::Connected);
    s.detach = true;
    assert_eq!(next_step(&s), Step::Closing);
    s.frontend = X::Closing;
    assert_eq!(next_step(&s), Step::Wait);
    s.backend = BackendState::State(X::Closing);
    assert_eq!(next_step(&s), Step::Close);
    // The back end vanished or is garbage.
    assert_eq!(
        next_step(&Situation {
            frontend: X::Connected,
            backend: BackendState::Absent,
            detach: false
        }),
        Step::Close
    );
    assert_eq!(
        next_step(&Situation {
            frontend: X::Initialising,
            backend: BackendState::Absent,
            detach: false
        }),
        Step::Wait
    );
    assert_eq!(BackendState::parse(Some(b"x")), BackendState::Invalid);
    assert_eq!(
        next_step(&Situation {
            frontend: X::Connected,
            backend: BackendState::Invalid,
            detach: false
        }),
        Step::Close
    );
}

#[test]
fn backend_nodes() {
    let n = BackendNodes {
        sectors: Some(b"131072"),
        info: Some(b"4\0"),
        sector_size: Some(b"512"),
        feature_flush_cache: Some(b"1"),
        feature_barrier: None,
    };
    let i = n.parse().unwrap();
    assert_eq!(
        (i.sectors, i.readonly(), i.cdrom(), i.flush, i.barrier),
        (131072, true, false, true, false)
    );
    assert_eq!(i.bytes(), 64 << 20);
    assert_eq!(
        BackendNodes { sectors: None, ..n }.parse(),
        Err(BackendError::Missing("sectors"))
    );
    assert_eq!(
        BackendNodes {
            sectors: Some(b"1e6"),
            ..n
        }
        .parse(),
        Err(BackendError::NotANumber("sectors"))
    );
    assert_eq!(
        BackendNodes {
            sectors: Some(b"18446744073709551616"),
            ..n
        }
        .parse(),
        Err(BackendError::NotANumber("sectors"))
    );
    assert_eq!(
        BackendNodes {
            sector_size: Some(b"4096"),
            ..n
        }
        .parse(),
        Err(BackendError::SectorSize(4096))
    );
    assert_eq!(
        BackendNodes {
            info: Some(b"4294967296"),
            ..n
        }
        .parse(),
        Err(BackendError::NotANumber("info"))
    );
    let minimal = BackendNodes {
        sectors: Some(b"8"),
        ..Default::default()
    }
    .parse()
    .unwrap();
    assert_eq!(
        (minimal.info, minimal.flush, minimal.barrier),
        (0, false, false)
    );
}

// ---- end to end: this front end's pieces against blkback ----

/// The guest's pages, granted by index (gref = page index + 100).
type Memory = Rc<RefCell<Vec<Vec<u8>>>>;

struct Grants {
    mem: Memory,
    buffer: Vec<u8>,
}

impl GrantCopy for Grants {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
    fn copy(&mut self, ops: &[CopyOp]) -> Result<(), CopyError> {
        let mut mem = self.mem.borrow_mut();
        for (index, op) in ops.iter().enumerate() {
            let Some(page) = (op.gref as usize)
                .checked_sub(100)
                .and_then(|i| mem.get_mut(i))
            else {
                return Err(CopyError {
                    index,
                    status: GNTST_BAD_GNTREF,
                });
            };
            let (g, l, n) = (
                usize::from(op.gref_offset),
                op.local_offset as usize,
                usize::from(op.len),
            );
            match op.dir {
                CopyDir::ToFrontend => page[g..g + n].copy_from_slice(&self.buffer[l..l + n]),
                CopyDir::FromFrontend => self.buffer[l..l + n].copy_from_slice(&page[g..g + n]),
            }
        }
        Ok(())
    }
}

struct Disk(Vec<u8>);

impl BlockDevice for Disk {
    fn sectors(&self) -> u64 {
        (self.0.len() / 512) as u64
    }
    fn supports_flush(&self) -> bool {
        true
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        let at = sector as usize * 512;
        self.0[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// Runs a transfer through the ring: every request planned, posted when
/// there is room, served, completed through the table of ids.
fn transfer(
    front: &mut FrontRing<&RefCell<Vec<u8>>, BlkifRequest, BlkifResponse>,
    back: &mut Blkback<&RefCell<Vec<u8>>, Grants, Disk>,
    op: u8,
    sector: u64,
    first: u8,
    n: u64,
    first_page: usize,
) {
    let mut inflight: InFlight<usize, 32> = InFlight::new();
    let mut reqs = plan(sector, first, n).peekable();
    let mut done = 0;
    while reqs.peek().is_some() || !inflight.is_empty() {
        while front.free_requests() > 0
            && let Some(r) = reqs.next()
        {
            let id = inflight.insert(r.nr_segs).unwrap();
            front
                .queue_request(&r.request(op, id, 2049, |p| (100 + first_page + p) as u32))
                .unwrap();
        }
        front.push_requests();
        back.service(7).unwrap();
        while let Some(rsp) = front.take_response().unwrap() {
            assert_eq!(rsp.status, BLKIF_RSP_OKAY);
            assert_eq!(rsp.operation, op);
            done += inflight.complete(rsp.id).unwrap();
        }
    }
    assert_eq!(
        done,
        plan(sector, first, n).map(|r| r.nr_segs).sum::<usize>()
    );
}

#[test]
fn end_to_end_write_then_read_back() {
    let ring_page = RefCell::new(vec![0u8; PAGE_SIZE]);
    let mem: Memory = Rc::new(RefCell::new(vec![vec![0u8; PAGE_SIZE]; 200]));
    // Pages 0..100 hold the data to write, pages 100..200 receive it back.
    for (i, page) in mem.borrow_mut()[..100].iter_mut().enumerate() {
        for (j, b) in page.iter_mut().enumerate() {
            *b = (i * 7 + j / 512) as u8;
        }
    }
    let disk = Disk(vec![0; 4096 * 512]);
    let vbd = VbdParams::new(disk.sectors(), false, true);
    let mut front = FrontRing::init(&ring_page).unwrap();
    let ring = BackRing::new(&ring_page).unwrap();
    let grants = Grants {
        mem: mem.clone(),
        buffer: vec![0; BOUNCE_BYTES],
    };
    let mut back = Blkback::new(ring, grants, disk, vbd);
    // 700 sectors from 3 sectors into page 0, to disk sector 1000.
    transfer(&mut front, &mut back, BLKIF_OP_WRITE, 1000, 3, 700, 0);
    transfer(&mut front, &mut back, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0);
    // Read it back 5 sectors into page 100.
    transfer(&mut front, &mut back, BLKIF_OP_READ, 1000, 5, 700, 100);
    let m = mem.borrow();
    let flat = |pages: &[Vec<u8>], skip: usize| -> Vec<u8> {
        pages
            .iter()
            .flatten()
            .copied()
            .skip(skip * 512)
            .take(700 * 512)
            .collect()
    };
    assert_eq!(flat(&m[..100], 3), flat(&m[100..], 5));
    assert_eq!(
        back.disk().0[1000 * 512..1001 * 512],
        m[0][3 * 512..4 * 512]
    );
    assert_eq!(back.stats().okay, back.stats().requests);
}
