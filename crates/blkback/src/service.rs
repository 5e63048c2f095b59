//! The ring service: take requests, validate each copy, move the data, answer.
//!
//! Owns one connected vbd: its back ring, the grant-copy binding to its front
//! end, the block device and the parameters negotiated at connect time.
//!
//! Invariants:
//! * Each request is copied out of the ring once ([`BackRing::take_request`])
//!   and validated ([`validate`]); only the validated copy drives the data
//!   path, and every taken request gets exactly one response, in order.
//! * A write (or the data of a flush/barrier) reaches the device only after
//!   every grant copy of the request succeeded: a failed copy answers
//!   `BLKIF_RSP_ERROR` with nothing written. A write is acknowledged only after
//!   the device accepted it; a flush or barrier only after the device's flush
//!   returned. A flush or barrier that carries data (Linux sends its FUA and
//!   pre-flush writes that way) flushes before the write, so that everything
//!   acknowledged earlier is durable first, and after it.
//! * Work per [`Blkback::service`] call is bounded by its budget: a front end
//!   that floods the ring, re-publishes slots without consuming responses, or
//!   breaks the indexes cannot keep the caller in the loop. A broken ring is
//!   reported once as [`RingError::Broken`] and stays dead; the caller closes
//!   the device.
//! * Request ids are echoed, never interpreted: a reused id gets its own
//!   response (requests complete in ring order, as in Xen's back ends, which
//!   do not track ids either).

use xen_abi::blkif::{
    BLKIF_RING_SIZE, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest,
    BlkifResponse,
};
use xen_abi::types::PAGE_SIZE;
use xen_ring::{BackRing, RingError, SharedMemory};

use crate::io::{BOUNCE_BYTES, BlockDevice, CopyDir, CopyError, CopyOp, GrantCopy, IoError};
use crate::request::{Op, Refusal, Validated, VbdParams, validate};

/// Requests handled per [`Blkback::service`] call unless told otherwise: one
/// ring's worth.
pub const DEFAULT_BUDGET: u32 = BLKIF_RING_SIZE as u32;

/// Most grant copies one request needs: each segment may straddle a page of
/// the bounce buffer once.
pub const MAX_COPY_OPS: usize = 2 * xen_abi::blkif::BLKIF_MAX_SEGMENTS_PER_REQUEST;

/// The back end's ring type.
pub type BlkBackRing<M> = BackRing<M, BlkifRequest, BlkifResponse>;

/// What a [`Blkback::service`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Serviced {
    /// Requests taken and answered.
    pub handled: u32,
    /// The front end asked to be notified of the responses: send an event.
    pub notify: bool,
    /// Requests are still waiting (the budget ran out, or more arrived):
    /// call again before sleeping on the event channel.
    pub more: bool,
}

/// Counters for the operator (and rate-limited logging in dom0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered.
    pub requests: u64,
    /// Answered `BLKIF_RSP_OKAY`.
    pub okay: u64,
    /// Refused by validation.
    pub refused: u64,
    /// Failed grant copies.
    pub copy_failures: u64,
    /// Failed device operations.
    pub io_failures: u64,
    /// The most recent refusal.
    pub last_refusal: Option<Refusal>,
    /// The most recent failed grant copy.
    pub last_copy_error: Option<CopyError>,
}

/// Why a valid request failed.
enum Failure {
    Copy(CopyError),
    Io(IoError),
}

impl From<CopyError> for Failure {
    fn from(e: CopyError) -> Self {
        Failure::Copy(e)
    }
}

impl From<IoError> for Failure {
    fn from(e: IoError) -> Self {
        Failure::Io(e)
    }
}

/// One connected vbd.
pub struct Blkback<M, G, D> {
    ring: BlkBackRing<M>,
    grants: G,
    disk: D,
    vbd: VbdParams,
    stats: Stats,
}

impl<M: SharedMemory, G: GrantCopy, D: BlockDevice> Blkback<M, G, D> {
    /// Serves `ring` for a vbd with parameters `vbd` on `disk`.
    ///
    /// # Panics
    /// If the grant binding's bounce buffer is shorter than [`BOUNCE_BYTES`]
    /// (a wiring error, not something a front end controls).
    pub fn new(ring: BlkBackRing<M>, mut grants: G, disk: D, vbd: VbdParams) -> Self {
        assert!(
            grants.buffer().len() >= BOUNCE_BYTES,
            "bounce buffer too small"
        );
        Blkback {
            ring,
            grants,
            disk,
            vbd,
            stats: Stats::default(),
        }
    }

    /// Takes, handles and answers up to `budget` requests, publishes the
    /// responses, and says whether to notify the front end and whether work
    /// remains (if not, `req_event` is re-armed: the next request will raise
    /// an event). On a broken ring, the responses already written are
    /// published and the error is returned; every later call returns it too.
    pub fn service(&mut self, budget: u32) -> Result<Serviced, RingError> {
        let mut handled = 0;
        let mut stop = None;
        while handled < budget {
            let req = match self.ring.take_request() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            };
            let status = self.handle(&req);
            let rsp = BlkifResponse {
                id: req.id,
                operation: req.operation,
                _pad: 0,
                status,
            };
            // Cannot fail: the request was just taken.
            self.ring.push_response(&rsp)?;
            handled += 1;
        }
        let notify = self.ring.publish_responses();
        if let Some(e) = stop {
            return Err(e);
        }
        let more = if handled == budget {
            self.ring.unconsumed_requests()? > 0
        } else {
            self.ring.final_check_for_requests()?
        };
        Ok(Serviced {
            handled,
            notify,
            more,
        })
    }

    /// Handles one request copy and returns its `BLKIF_RSP_*` status.
    fn handle(&mut self, req: &BlkifRequest) -> i16 {
        self.stats.requests += 1;
        let v = match validate(req, &self.vbd) {
            Ok(v) => v,
            Err(r) => {
                self.stats.refused += 1;
                self.stats.last_refusal = Some(r);
                return r.status();
            }
        };
        match self.execute(&v) {
            Ok(()) => {
                self.stats.okay += 1;
                BLKIF_RSP_OKAY
            }
            Err(Failure::Copy(e)) => {
                self.stats.copy_failures += 1;
                self.stats.last_copy_error = Some(e);
                BLKIF_RSP_ERROR
            }
            Err(Failure::Io(e)) => {
                self.stats.io_failures += 1;
                match e {
                    IoError::Io => BLKIF_RSP_ERROR,
                    IoError::Unsupported => BLKIF_RSP_EOPNOTSUPP,
                }
            }
        }
    }

    fn execute(&mut self, v: &Validated) -> Result<(), Failure> {
        let len = v.bytes();
        match v.op {
            Op::Read => {
                let mut ops = [CopyOp::default(); MAX_COPY_OPS];
                let n = copy_ops(v, CopyDir::ToFrontend, &mut ops);
                self.disk.read(v.sector, &mut self.grants.buffer()[..len])?;
                self.grants.copy(&ops[..n])?;
            }
            Op::Write => {
                self.copy_in(v)?;
                self.disk.write(v.sector, &self.grants.buffer()[..len])?;
            }
            Op::Flush | Op::Barrier => {
                if v.nr_segs > 0 {
                    self.copy_in(v)?;
                    self.disk.flush()?;
                    self.disk.write(v.sector, &self.grants.buffer()[..len])?;
                }
                self.disk.flush()?;
            }
        }
        Ok(())
    }

    fn copy_in(&mut self, v: &Validated) -> Result<(), CopyError> {
        let mut ops = [CopyOp::default(); MAX_COPY_OPS];
        let n = copy_ops(v, CopyDir::FromFrontend, &mut ops);
        self.grants.copy(&ops[..n])
    }

    /// The negotiated parameters.
    pub fn vbd(&self) -> &VbdParams {
        &self.vbd
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The ring.
    pub fn ring(&self) -> &BlkBackRing<M> {
        &self.ring
    }

    /// The block device.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The grant binding.
    pub fn grants(&self) -> &G {
        &self.grants
    }

    /// Gives back the ring, the grant binding and the device (disconnect).
    pub fn into_parts(self) -> (BlkBackRing<M>, G, D) {
        (self.ring, self.grants, self.disk)
    }
}

/// The grant copies of a validated request: its segments packed one after the
/// other from the start of the bounce buffer (so the device sees one
/// contiguous run), each split where it crosses a page of the bounce buffer.
/// Returns how many entries of `ops` were filled.
pub fn copy_ops(v: &Validated, dir: CopyDir, ops: &mut [CopyOp; MAX_COPY_OPS]) -> usize {
    let mut n = 0;
    let mut local = 0usize;
    for s in v.segments() {
        let mut off = usize::from(s.first_sect) * 512;
        let mut left = (usize::from(s.last_sect - s.first_sect) + 1) * 512;
        while left > 0 {
            let chunk = left.min(PAGE_SIZE - local % PAGE_SIZE);
            ops[n] = CopyOp {
                dir,
                gref: s.gref,
                gref_offset: off as u16,
                local_offset: local as u32,
                len: chunk as u16,
            };
            n += 1;
            off += chunk;
            local += chunk;
            left -= chunk;
        }
    }
    n
}
