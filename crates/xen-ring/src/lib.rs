//! The shared ring of Xen's split drivers (`io/ring.h`, XEN-PV-ABI.md §10), for
//! both ends.
//!
//! A ring lives in memory shared with the other end: a 64-byte header of
//! free-running `u32` indexes ([`SringHeader`]) followed by `size` slots, each
//! the size of the larger of the request and response types, `size` being the
//! largest power of two that fits. The front end produces requests and
//! consumes responses; the back end does the opposite, writing each response
//! into the slot of a request it has consumed.
//!
//! What this crate owns:
//! * the private indexes of each end ([`FrontRing`]: `req_prod_pvt`, `rsp_cons`;
//!   [`BackRing`]: `req_cons`, `rsp_prod_pvt`), all wrapping `u32`;
//! * publication and the notification hold-off (`RING_PUSH_*_AND_CHECK_NOTIFY`,
//!   `RING_FINAL_CHECK_FOR_*`);
//! * the guard against a peer that writes nonsense into the shared indexes.
//!
//! Invariants:
//! * Shared memory is reached only through [`SharedMemory`], at offsets this
//!   crate computed from the ring's own layout: every access is inside
//!   `[0, SRING_HEADER_SIZE + size * slot)`, which [`ring_geometry`] checked
//!   against the memory's length when the ring was made.
//! * An entry is copied out of the ring exactly once (`take_request` /
//!   `take_response` return the copy); nothing here reads a slot twice, and a
//!   caller validates the copy, never the slot.
//! * A producer index is read once per refill and checked before use. For the
//!   back end, a `req_prod` more than `size` ahead of `rsp_prod_pvt` (Xen's
//!   `RING_REQUEST_PROD_OVERFLOW`) or behind `req_cons` breaks the ring: every
//!   later call returns [`RingError::Broken`] and nothing more is consumed, so
//!   a hostile front end can neither make the back end spin nor read past the
//!   ring. The back end never holds more than `size` requests without a
//!   response (`RING_REQUEST_CONS_OVERFLOW`). The front end applies the same
//!   guard to `rsp_prod` (a back end answering requests never posted).
//! * Shared indexes the peer may scribble on are never trusted for our own
//!   bookkeeping: the "old" producer of the notification check is our private
//!   copy of what we last published.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::cell::RefCell;
use core::marker::PhantomData;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{Ordering, fence};

use xen_abi::ring::{SRING_HEADER_SIZE, SringHeader, push_needs_notify, ring_size};
use xen_abi::types::RingIdx;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Byte offset of `req_prod` in the ring memory.
pub const REQ_PROD: usize = offset_of!(SringHeader, req_prod);
/// Byte offset of `req_event`.
pub const REQ_EVENT: usize = offset_of!(SringHeader, req_event);
/// Byte offset of `rsp_prod`.
pub const RSP_PROD: usize = offset_of!(SringHeader, rsp_prod);
/// Byte offset of `rsp_event`.
pub const RSP_EVENT: usize = offset_of!(SringHeader, rsp_event);

/// Memory shared with the other end: one or more pages, seen as one run of
/// bytes. The guest binds it to a mapped granted page (volatile accesses and the
/// CPU's barriers); tests bind it to a `RefCell` of bytes.
///
/// Callers (this crate) only pass `offset + len <= self.len()`. Methods take
/// `&self`: the other end writes the memory behind our back anyway.
pub trait SharedMemory {
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the memory is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `out.len()` bytes starting at `offset`.
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Stores `data` starting at `offset`.
    fn write(&self, offset: usize, data: &[u8]);
    /// Reads the little-endian `u32` at `offset` (one access).
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }
    /// Stores the little-endian `u32` at `offset` (one access).
    fn write_u32(&self, offset: usize, v: u32) {
        self.write(offset, &v.to_le_bytes());
    }
    /// Read barrier: between reading a producer index and the entries it covers.
    fn rmb(&self) {
        fence(Ordering::Acquire);
    }
    /// Write barrier: between writing entries and publishing a producer index.
    fn wmb(&self) {
        fence(Ordering::Release);
    }
    /// Full barrier: between publishing an index and reading the peer's event.
    fn mb(&self) {
        fence(Ordering::SeqCst);
    }
}

impl<M: SharedMemory + ?Sized> SharedMemory for &M {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        (**self).read(offset, out)
    }
    fn write(&self, offset: usize, data: &[u8]) {
        (**self).write(offset, data)
    }
    fn read_u32(&self, offset: usize) -> u32 {
        (**self).read_u32(offset)
    }
    fn write_u32(&self, offset: usize, v: u32) {
        (**self).write_u32(offset, v)
    }
    fn rmb(&self) {
        (**self).rmb()
    }
    fn wmb(&self) {
        (**self).wmb()
    }
    fn mb(&self) {
        (**self).mb()
    }
}

/// Plain memory (a page in a host test, or both ends in one address space).
impl<T: AsRef<[u8]> + AsMut<[u8]>> SharedMemory for RefCell<T> {
    fn len(&self) -> usize {
        self.borrow().as_ref().len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.borrow().as_ref()[offset..offset + out.len()]);
    }
    fn write(&self, offset: usize, data: &[u8]) {
        self.borrow_mut().as_mut()[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// A ring entry: a plain-old-data ABI struct copied in and out as bytes.
pub trait RingEntry: FromBytes + IntoBytes + Immutable + KnownLayout + Copy {}
impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy> RingEntry for T {}

/// Why a ring operation did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The memory is too small for even one slot.
    TooSmall,
    /// The peer published a producer index the protocol forbids: beyond the
    /// ring (`prod − base > size`) or behind what was already consumed. The ring
    /// is dead; every later call returns this again.
    Broken {
        /// The producer index read from the shared header.
        prod: RingIdx,
        /// Our consumer index at the time.
        cons: RingIdx,
        /// The base the distance was measured from (back end: `rsp_prod_pvt`;
        /// front end: `rsp_cons`).
        base: RingIdx,
    },
    /// Front end: `size` requests are already outstanding.
    Full,
    /// Back end: every consumed request has its response already.
    NoRequestToAnswer,
}

/// Slots and slot size of a ring of `Req`/`Rsp` entries in `len` bytes.
pub const fn ring_geometry<Req, Rsp>(len: usize) -> Result<(u32, usize), RingError> {
    let slot = if size_of::<Req>() > size_of::<Rsp>() {
        size_of::<Req>()
    } else {
        size_of::<Rsp>()
    };
    if slot == 0 || len < SRING_HEADER_SIZE + slot {
        return Err(RingError::TooSmall);
    }
    let size = ring_size(len, slot);
    // Indexes are u32: a ring of 2^31 slots or more would make the
    // distance checks meaningless.
    if size > (1 << 30) {
        return Err(RingError::TooSmall);
    }
    Ok((size as u32, slot))
}

fn slot_offset(idx: RingIdx, size: u32, slot: usize) -> usize {
    SRING_HEADER_SIZE + (idx & (size - 1)) as usize * slot
}

/// The back end's side of a ring: consumes requests, produces responses.
pub struct BackRing<M, Req, Rsp> {
    mem: M,
    size: u32,
    slot: usize,
    req_cons: RingIdx,
    rsp_prod_pvt: RingIdx,
    /// `rsp_prod` as we last published it.
    rsp_published: RingIdx,
    /// The last `req_prod` read and accepted.
    req_prod_seen: RingIdx,
    broken: Option<RingError>,
    _entries: PhantomData<fn() -> (Req, Rsp)>,
}

impl<M: SharedMemory, Req: RingEntry, Rsp: RingEntry> BackRing<M, Req, Rsp> {
    /// `BACK_RING_INIT`: attaches to a ring the front end initialised
    /// (`SHARED_RING_INIT`: all indexes 0).
    pub fn new(mem: M) -> Result<Self, RingError> {
        Self::attach(mem, 0)
    }

    /// `BACK_RING_ATTACH`: attaches with both private indexes at `start` (the
    /// front end initialised the ring with its producers at `start`).
    pub fn attach(mem: M, start: RingIdx) -> Result<Self, RingError> {
        let (size, slot) = ring_geometry::<Req, Rsp>(mem.len())?;
        Ok(Self {
            mem,
            size,
            slot,
            req_cons: start,
            rsp_prod_pvt: start,
            rsp_published: start,
            req_prod_seen: start,
            broken: None,
            _entries: PhantomData,
        })
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Requests consumed so far (free-running).
    pub fn req_cons(&self) -> RingIdx {
        self.req_cons
    }

    /// Responses produced so far (free-running), published or not.
    pub fn rsp_prod_pvt(&self) -> RingIdx {
        self.rsp_prod_pvt
    }

    /// The error that broke the ring, if it is broken.
    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    /// The shared memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Gives the shared memory back (the ring is being torn down).
    pub fn into_memory(self) -> M {
        self.mem
    }

    /// Reads `req_prod` once and accepts it if the protocol allows it:
    /// not more than `size` ahead of `rsp_prod_pvt` (`RING_REQUEST_PROD_OVERFLOW`)
    /// and not behind `req_cons`.
    fn refresh(&mut self) -> Result<(), RingError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let prod = self.mem.read_u32(REQ_PROD);
        self.mem.rmb();
        let ahead = prod.wrapping_sub(self.rsp_prod_pvt);
        let consumed = self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        if ahead > self.size || ahead < consumed {
            let e = RingError::Broken {
                prod,
                cons: self.req_cons,
                base: self.rsp_prod_pvt,
            };
            self.broken = Some(e);
            return Err(e);
        }
        self.req_prod_seen = prod;
        Ok(())
    }

    /// `RING_HAS_UNCONSUMED_REQUESTS`: requests published and not yet taken,
    /// bounded by the room left for their responses.
    pub fn unconsumed_requests(&mut self) -> Result<u32, RingError> {
        self.refresh()?;
        let published = self.req_prod_seen.wrapping_sub(self.req_cons);
        let room = self.size - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(published.min(room))
    }

    /// Copies the next request out of the ring and consumes it. `Ok(None)`
    /// when none is published, or when `size` requests await their responses
    /// (`RING_REQUEST_CONS_OVERFLOW`).
    pub fn take_request(&mut self) -> Result<Option<Req>, RingError> {
        if self.req_cons == self.req_prod_seen {
            self.refresh()?;
        } else if let Some(e) = self.broken {
            return Err(e);
        }
        if self.req_cons == self.req_prod_seen
            || self.req_cons.wrapping_sub(self.rsp_prod_pvt) >= self.size
        {
            return Ok(None);
        }
        let mut req = Req::new_zeroed();
        let off = slot_offset(self.req_cons, self.size, self.slot);
        self.mem.read(off, req.as_mut_bytes());
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(req))
    }

    /// Writes a response into the slot of the oldest unanswered request.
    /// It becomes visible with [`BackRing::publish_responses`].
    pub fn push_response(&mut self, rsp: &Rsp) -> Result<(), RingError> {
        if self.rsp_prod_pvt == self.req_cons {
            return Err(RingError::NoRequestToAnswer);
        }
        let off = slot_offset(self.rsp_prod_pvt, self.size, self.slot);
        self.mem.write(off, rsp.as_bytes());
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`: publishes `rsp_prod` and returns
    /// whether the front end asked to be notified (its `rsp_event` lies in the
    /// newly published range).
    pub fn publish_responses(&mut self) -> bool {
        let old = self.rsp_published;
        let new = self.rsp_prod_pvt;
        if old == new {
            return false;
        }
        self.mem.wmb();
        self.mem.write_u32(RSP_PROD, new);
        self.mem.mb();
        self.rsp_published = new;
        push_needs_notify(old, new, self.mem.read_u32(RSP_EVENT))
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: whether requests are waiting; if none,
    /// first asks the front end to notify at the next one (`req_event =
    /// req_cons + 1`), then looks again, so a request published in between is
    /// not missed. Call before going to sleep on the event channel.
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? > 0 {
            return Ok(true);
        }
        self.mem.write_u32(REQ_EVENT, self.req_cons.wrapping_add(1));
        self.mem.mb();
        Ok(self.unconsumed_requests()? > 0)
    }
}

/// The front end's side of a ring: produces requests, consumes responses.
pub struct FrontRing<M, Req, Rsp> {
    mem: M,
    size: u32,
    slot: usize,
    req_prod_pvt: RingIdx,
    /// `req_prod` as we last published it.
    req_published: RingIdx,
    rsp_cons: RingIdx,
    /// The last `rsp_prod` read and accepted.
    rsp_prod_seen: RingIdx,
    broken: Option<RingError>,
    _entries: PhantomData<fn() -> (Req, Rsp)>,
}

impl<M: SharedMemory, Req: RingEntry, Rsp: RingEntry> FrontRing<M, Req, Rsp> {
    /// `SHARED_RING_INIT` + `FRONT_RING_INIT`: writes a fresh header
    /// (producers 0, events 1, padding zero) and starts at index 0.
    pub fn init(mem: M) -> Result<Self, RingError> {
        Self::init_at(mem, 0)
    }

    /// Like [`FrontRing::init`] with every index at `start` (the header gets
    /// producers `start`, events `start + 1`): `FRONT_RING_ATTACH` on a fresh
    /// page. The back end attaches with [`BackRing::attach`] at the same index.
    pub fn init_at(mem: M, start: RingIdx) -> Result<Self, RingError> {
        let (size, slot) = ring_geometry::<Req, Rsp>(mem.len())?;
        let mut h = SringHeader::new();
        h.req_prod = start;
        h.rsp_prod = start;
        h.req_event = start.wrapping_add(1);
        h.rsp_event = start.wrapping_add(1);
        mem.write(0, h.as_bytes());
        mem.wmb();
        Ok(Self {
            mem,
            size,
            slot,
            req_prod_pvt: start,
            req_published: start,
            rsp_cons: start,
            rsp_prod_seen: start,
            broken: None,
            _entries: PhantomData,
        })
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The shared memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Gives the shared memory back (the ring is being torn down).
    pub fn into_memory(self) -> M {
        self.mem
    }

    /// Requests posted and not yet answered (consumed responses excluded).
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// `RING_FREE_REQUESTS`: requests that can still be queued.
    pub fn free_requests(&self) -> u32 {
        self.size - self.outstanding()
    }

    /// The error that broke the ring, if it is broken.
    pub fn broken(&self) -> Option<RingError> {
        self.broken
    }

    /// Writes a request into the next free slot; it becomes visible with
    /// [`FrontRing::push_requests`].
    pub fn queue_request(&mut self, req: &Req) -> Result<(), RingError> {
        if self.free_requests() == 0 {
            return Err(RingError::Full);
        }
        let off = slot_offset(self.req_prod_pvt, self.size, self.slot);
        self.mem.write(off, req.as_bytes());
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: publishes `req_prod` and returns
    /// whether the back end asked to be notified.
    pub fn push_requests(&mut self) -> bool {
        let old = self.req_published;
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        self.mem.wmb();
        self.mem.write_u32(REQ_PROD, new);
        self.mem.mb();
        self.req_published = new;
        push_needs_notify(old, new, self.mem.read_u32(REQ_EVENT))
    }

    /// Reads `rsp_prod` once and accepts it if it answers no more requests
    /// than were posted and does not go backwards.
    fn refresh(&mut self) -> Result<(), RingError> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        let prod = self.mem.read_u32(RSP_PROD);
        self.mem.rmb();
        let ahead = prod.wrapping_sub(self.rsp_cons);
        if ahead > self.outstanding() {
            let e = RingError::Broken {
                prod,
                cons: self.rsp_cons,
                base: self.rsp_cons,
            };
            self.broken = Some(e);
            return Err(e);
        }
        self.rsp_prod_seen = prod;
        Ok(())
    }

    /// `RING_HAS_UNCONSUMED_RESPONSES`.
    pub fn unconsumed_responses(&mut self) -> Result<u32, RingError> {
        self.refresh()?;
        Ok(self.rsp_prod_seen.wrapping_sub(self.rsp_cons))
    }

    /// Copies the next response out of the ring and consumes it.
    pub fn take_response(&mut self) -> Result<Option<Rsp>, RingError> {
        if self.rsp_cons == self.rsp_prod_seen {
            self.refresh()?;
        } else if let Some(e) = self.broken {
            return Err(e);
        }
        if self.rsp_cons == self.rsp_prod_seen {
            return Ok(None);
        }
        let mut rsp = Rsp::new_zeroed();
        let off = slot_offset(self.rsp_cons, self.size, self.slot);
        self.mem.read(off, rsp.as_mut_bytes());
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(rsp))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: whether responses are waiting; if
    /// none, sets `rsp_event = rsp_cons + 1` and looks again.
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        self.mem.write_u32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
        self.mem.mb();
        Ok(self.unconsumed_responses()? > 0)
    }
}

#[cfg(test)]
mod tests;
