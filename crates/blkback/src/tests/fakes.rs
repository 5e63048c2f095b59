//! A fake grant table (one front end's grants, with `GNTTABOP_copy`'s checks)
//! and a memory disk with a volatile cache, plus a front end driving a ring on
//! the same page.

use std::cell::RefCell;
use std::collections::HashMap;

use xen_abi::blkif::{BLKIF_OP_READ, BlkifRequest, BlkifRequestSegment, BlkifResponse};
use xen_abi::grant::{GNTST_BAD_GNTREF, GNTST_PERMISSION_DENIED};
use xen_abi::types::{GrantRef, PAGE_SIZE};
use xen_ring::FrontRing;

use crate::io::{BOUNCE_BYTES, BlockDevice, CopyDir, CopyError, CopyOp, GrantCopy, IoError};
use crate::request::VbdParams;
use crate::service::{BlkBackRing, Blkback};

/// One granted frame of the front end.
pub struct Grant {
    pub page: Vec<u8>,
    pub readonly: bool,
}

/// The front end's grants as the back end's `GNTTABOP_copy` sees them.
pub struct FakeGrants {
    pub grants: HashMap<GrantRef, Grant>,
    pub buffer: Vec<u8>,
    pub log: Vec<CopyOp>,
}

impl FakeGrants {
    pub fn new() -> Self {
        FakeGrants {
            grants: HashMap::new(),
            buffer: vec![0xEE; BOUNCE_BYTES],
            log: Vec::new(),
        }
    }

    /// Grants a frame filled with `fill`.
    pub fn grant(&mut self, gref: GrantRef, fill: u8, readonly: bool) {
        self.grants.insert(
            gref,
            Grant {
                page: vec![fill; PAGE_SIZE],
                readonly,
            },
        );
    }

    pub fn page(&self, gref: GrantRef) -> &[u8] {
        &self.grants[&gref].page
    }
}

impl GrantCopy for FakeGrants {
    fn buffer(&mut self) -> &mut [u8] {
        &mut self.buffer
    }

    fn copy(&mut self, ops: &[CopyOp]) -> Result<(), CopyError> {
        for (index, op) in ops.iter().enumerate() {
            // The service's own invariants: a violation is a test failure.
            let len = usize::from(op.len);
            let g_off = usize::from(op.gref_offset);
            let l_off = op.local_offset as usize;
            assert!(len > 0, "empty copy {op:?}");
            assert!(g_off + len <= PAGE_SIZE, "crosses the granted page {op:?}");
            assert!(
                l_off % PAGE_SIZE + len <= PAGE_SIZE,
                "crosses a local page {op:?}"
            );
            assert!(
                l_off + len <= BOUNCE_BYTES,
                "beyond the bounce buffer {op:?}"
            );
            self.log.push(*op);
            let Some(g) = self.grants.get_mut(&op.gref) else {
                return Err(CopyError {
                    index,
                    status: GNTST_BAD_GNTREF,
                });
            };
            match op.dir {
                CopyDir::ToFrontend => {
                    if g.readonly {
                        return Err(CopyError {
                            index,
                            status: GNTST_PERMISSION_DENIED,
                        });
                    }
                    g.page[g_off..g_off + len].copy_from_slice(&self.buffer[l_off..l_off + len]);
                }
                CopyDir::FromFrontend => {
                    self.buffer[l_off..l_off + len].copy_from_slice(&g.page[g_off..g_off + len]);
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskOp {
    Read(u64, usize),
    Write(u64, usize),
    Flush,
}

/// A disk whose writes land in a volatile cache until flushed.
pub struct FakeDisk {
    pub cache: Vec<u8>,
    pub durable: Vec<u8>,
    pub flushes: bool,
    pub fail_io: bool,
    pub flush_error: Option<IoError>,
    pub log: Vec<DiskOp>,
}

impl FakeDisk {
    /// A disk of `sectors` sectors; sector `s` is filled with `s as u8`.
    pub fn new(sectors: u64) -> Self {
        let mut data = vec![0u8; sectors as usize * 512];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i / 512) as u8;
        }
        FakeDisk {
            cache: data.clone(),
            durable: data,
            flushes: true,
            fail_io: false,
            flush_error: None,
            log: Vec::new(),
        }
    }

    pub fn writes(&self) -> usize {
        self.log
            .iter()
            .filter(|o| matches!(o, DiskOp::Write(..)))
            .count()
    }
}

impl BlockDevice for FakeDisk {
    fn sectors(&self) -> u64 {
        (self.cache.len() / 512) as u64
    }
    fn supports_flush(&self) -> bool {
        self.flushes
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.log.push(DiskOp::Read(sector, buf.len()));
        if self.fail_io {
            return Err(IoError::Io);
        }
        let at = sector as usize * 512;
        buf.copy_from_slice(&self.cache[at..at + buf.len()]);
        Ok(())
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), IoError> {
        self.log.push(DiskOp::Write(sector, data.len()));
        if self.fail_io {
            return Err(IoError::Io);
        }
        let at = sector as usize * 512;
        self.cache[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.log.push(DiskOp::Flush);
        if let Some(e) = self.flush_error {
            return Err(e);
        }
        self.durable.copy_from_slice(&self.cache);
        Ok(())
    }
}

pub type Page = RefCell<Vec<u8>>;
pub type Front<'a> = FrontRing<&'a Page, BlkifRequest, BlkifResponse>;
pub type Back<'a> = Blkback<&'a Page, FakeGrants, FakeDisk>;

pub fn page() -> Page {
    RefCell::new(vec![0; PAGE_SIZE])
}

/// A front end and a back end on `page`, the vbd sized from the disk.
pub fn connect<'a>(
    page: &'a Page,
    grants: FakeGrants,
    disk: FakeDisk,
    readonly: bool,
) -> (Front<'a>, Back<'a>) {
    let vbd = VbdParams::new(disk.sectors(), readonly, disk.supports_flush());
    let front = Front::init(page).unwrap();
    let ring = BlkBackRing::new(page).unwrap();
    (front, Blkback::new(ring, grants, disk, vbd))
}

pub fn seg(gref: GrantRef, first_sect: u8, last_sect: u8) -> BlkifRequestSegment {
    BlkifRequestSegment {
        gref,
        first_sect,
        last_sect,
        _pad: 0,
    }
}

pub fn request(op: u8, id: u64, sector: u64, segs: &[BlkifRequestSegment]) -> BlkifRequest {
    let mut r = BlkifRequest {
        operation: op,
        nr_segments: segs.len() as u8,
        handle: 2049,
        id,
        sector_number: sector,
        ..Default::default()
    };
    let mut s = r.seg;
    s[..segs.len()].copy_from_slice(segs);
    r.seg = s;
    r
}

pub fn read(id: u64, sector: u64, segs: &[BlkifRequestSegment]) -> BlkifRequest {
    request(BLKIF_OP_READ, id, sector, segs)
}

/// Posts `reqs`, runs the back end once with a budget of a ring, and returns
/// the responses as (id, operation, status).
pub fn exchange(
    front: &mut Front<'_>,
    back: &mut Back<'_>,
    reqs: &[BlkifRequest],
) -> Vec<(u64, u8, i16)> {
    for r in reqs {
        front.queue_request(r).unwrap();
    }
    front.push_requests();
    let s = back.service(crate::DEFAULT_BUDGET).unwrap();
    assert_eq!(s.handled as usize, reqs.len());
    let mut out = Vec::new();
    while let Some(r) = front.take_response().unwrap() {
        out.push((r.id, r.operation, r.status));
    }
    out
}
