//! Cutting a transfer into blkif requests.
//!
//! The caller's memory is a list of whole pages (each will be granted to the
//! back end); the transfer starts `first_sect` sectors into the first page and
//! covers `nr_sectors` 512-byte sectors of the disk from `sector` on. Each
//! request takes up to [`BLKIF_MAX_SEGMENTS_PER_REQUEST`] pages, one segment
//! per page, and the next request continues where it stopped on the disk and
//! in memory. Every segment satisfies `first_sect <= last_sect <= 7`.

use xen_abi::blkif::{
    BLKIF_MAX_SECT_IN_PAGE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BlkifRequest, BlkifRequestSegment,
    BlkifVdev,
};
use xen_abi::types::GrantRef;

/// Sectors per page.
const SECTS_PER_PAGE: u64 = BLKIF_MAX_SECT_IN_PAGE as u64 + 1;

/// One segment: sectors `first_sect..=last_sect` of page `page` of the
/// caller's list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Index in the caller's page list.
    pub page: usize,
    /// First sector in the page.
    pub first_sect: u8,
    /// Last sector in the page (inclusive).
    pub last_sect: u8,
}

/// One request's worth of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestPlan {
    /// First disk sector.
    pub sector: u64,
    /// Number of valid `chunks`.
    pub nr_segs: usize,
    /// The segments.
    pub chunks: [Chunk; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

impl RequestPlan {
    /// The valid segments.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks[..self.nr_segs]
    }

    /// Sectors covered.
    pub fn nr_sectors(&self) -> u64 {
        self.chunks()
            .iter()
            .map(|c| u64::from(c.last_sect - c.first_sect) + 1)
            .sum()
    }

    /// The blkif request for it: `gref(page)` is the grant of each page.
    pub fn request(
        &self,
        operation: u8,
        id: u64,
        handle: BlkifVdev,
        gref: impl Fn(usize) -> GrantRef,
    ) -> BlkifRequest {
        let mut seg = [BlkifRequestSegment::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST];
        for (s, c) in seg.iter_mut().zip(self.chunks()) {
            *s = BlkifRequestSegment {
                gref: gref(c.page),
                first_sect: c.first_sect,
                last_sect: c.last_sect,
                _pad: 0,
            };
        }
        BlkifRequest {
            operation,
            nr_segments: self.nr_segs as u8,
            handle,
            id,
            sector_number: self.sector,
            seg,
        }
    }
}

/// Iterator over the requests of a transfer.
#[derive(Clone, Debug)]
pub struct Plan {
    sector: u64,
    /// Position in the caller's memory, in sectors from the start of page 0.
    pos: u64,
    left: u64,
}

/// Plans a transfer of `nr_sectors` sectors from disk sector `sector`, whose
/// memory starts `first_sect` (0…7) sectors into page 0.
pub fn plan(sector: u64, first_sect: u8, nr_sectors: u64) -> Plan {
    Plan {
        sector,
        pos: u64::from(first_sect) % SECTS_PER_PAGE,
        left: nr_sectors,
    }
}

impl Plan {
    /// Pages of memory the whole transfer touches.
    pub fn pages(&self) -> usize {
        if self.left == 0 {
            0
        } else {
            ((self.pos + self.left).div_ceil(SECTS_PER_PAGE) - self.pos / SECTS_PER_PAGE) as usize
        }
    }
}

impl Iterator for Plan {
    type Item = RequestPlan;

    fn next(&mut self) -> Option<RequestPlan> {
        if self.left == 0 {
            return None;
        }
        let mut r = RequestPlan {
            sector: self.sector,
            nr_segs: 0,
            chunks: [Chunk::default(); BLKIF_MAX_SEGMENTS_PER_REQUEST],
        };
        while self.left > 0 && r.nr_segs < BLKIF_MAX_SEGMENTS_PER_REQUEST {
            let page = self.pos / SECTS_PER_PAGE;
            let first = self.pos % SECTS_PER_PAGE;
            let n = (SECTS_PER_PAGE - first).min(self.left);
            r.chunks[r.nr_segs] = Chunk {
                page: page as usize,
                first_sect: first as u8,
                last_sect: (first + n - 1) as u8,
            };
            r.nr_segs += 1;
            self.pos += n;
            self.sector += n;
            self.left -= n;
        }
        Some(r)
    }
}
