//! The physical frame allocator: which machine frames are free RAM.
//!
//! It exists before any heap, so it owns no memory: the caller lends it a bitmap
//! (the kernel uses a static array in `.bss`) with one bit per machine frame in
//! `[0, max_mfn)`. A set bit means *free*; a clear bit means allocated, reserved
//! or not RAM at all.
//!
//! # Life cycle
//!
//! One bit per frame cannot remember *why* a frame is not free, so the set-up
//! calls must come in a fixed order, which the allocator enforces:
//!
//! 1. [`FrameAllocator::add_free_range`] for every usable RAM range of the
//!    firmware memory map;
//! 2. [`FrameAllocator::reserve_range`] for everything already in use (Oxen's
//!    image, boot modules, the multiboot information, ...). A reservation
//!    therefore always wins over the RAM ranges added before it;
//! 3. [`FrameAllocator::alloc`] and friends, [`FrameAllocator::free`].
//!
//! The first call to any `alloc*` or `free*` method (even one that fails) ends
//! set-up. Adding after a reservation, or adding/reserving after set-up, is
//! refused with [`FrameError::AddAfterReserve`] / [`FrameError::SetupAfterUse`]
//! and changes nothing.
//!
//! # Stale translations
//!
//! A guest that clears a PTE without flushing (`update_va_mapping(va, 0, 0)`)
//! keeps the translation in the TLB until the next flush; if the frame is then
//! freed and handed to someone else, the old owner could still write to it.
//! As Xen's allocator (a freed page's `tlbflush_timestamp`, checked in
//! `alloc_heap_pages`), frames a guest owned are returned with
//! [`FrameAllocator::free_guest`], and [`FrameAllocator::take_flush_due`] says
//! (once) that the TLB must be flushed before the next frame handed out is
//! used. One CPU: one mark, not a timestamp per frame.
//!
//! `free` detects frames that are already free (double free) and frames outside
//! the bitmap. It cannot tell an allocated frame from a reserved or non-RAM one
//! (they are all a clear bit), so only frames obtained from this allocator may be
//! passed to it; the frame table above it is where ownership is checked.

use core::fmt;

use crate::addr::{Maddr, Mfn};

const BITS: u64 = u64::BITS as u64;

/// Why a frame-allocator call was refused. A refused call changes no frame or count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameError {
    /// The bitmap lent to [`FrameAllocator::new`] has fewer words than needed.
    BitmapTooSmall {
        /// Words needed to cover `max_mfn` frames.
        needed_words: u64,
        /// Words supplied.
        got_words: usize,
    },
    /// The frame is at or above `max_mfn`.
    OutOfRange(Mfn),
    /// The frame is already free.
    DoubleFree(Mfn),
    /// A range ends before it starts.
    BadRange {
        /// Start of the range.
        start: Maddr,
        /// (Exclusive) end of the range.
        end: Maddr,
    },
    /// `add_free_range` after a `reserve_range`: the reservation would be lost.
    AddAfterReserve,
    /// `add_free_range`/`reserve_range` after the first allocation or free.
    SetupAfterUse,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BitmapTooSmall {
                needed_words,
                got_words,
            } => write!(
                f,
                "frame bitmap too small: {got_words} words supplied, {needed_words} needed"
            ),
            Self::OutOfRange(mfn) => write!(f, "{mfn} is beyond the frame allocator's range"),
            Self::DoubleFree(mfn) => write!(f, "{mfn} freed but already free"),
            Self::BadRange { start, end } => {
                write!(f, "bad range: end {end} is below start {start}")
            }
            Self::AddAfterReserve => {
                f.write_str("free RAM added after a reservation (add all RAM first)")
            }
            Self::SetupAfterUse => {
                f.write_str("frame allocator set up after the first allocation or free")
            }
        }
    }
}

impl core::error::Error for FrameError {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    AddFree,
    Reserve,
    Running,
}

/// A bitmap allocator of machine frames `[0, max_mfn)`.
pub struct FrameAllocator<'a> {
    /// Exactly `max_mfn.div_ceil(64)` words; bits at or above `max_mfn` stay 0.
    bitmap: &'a mut [u64],
    max_mfn: u64,
    free: u64,
    total: u64,
    /// Next-fit hint: where `alloc` starts looking.
    next: u64,
    phase: Phase,
    /// A guest's frame was freed since [`Self::take_flush_due`] last said so.
    flush_due: bool,
}

impl fmt::Debug for FrameAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("max_mfn", &self.max_mfn)
            .field("free", &self.free)
            .field("total", &self.total)
            .field("next", &self.next)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Bits `[lo, hi)` of a word, `lo <= hi <= 64`.
const fn mask(lo: u64, hi: u64) -> u64 {
    if lo >= hi {
        0
    } else {
        (u64::MAX >> (BITS - (hi - lo))) << lo
    }
}

/// Index of the bitmap word holding frame `f`. Callers only pass frames below
/// `max_mfn`, whose word index is below the bitmap length, so it fits `usize`.
const fn word(f: u64) -> usize {
    (f / BITS) as usize
}

impl<'a> FrameAllocator<'a> {
    /// Number of `u64` words a bitmap needs to cover `max_mfn` frames.
    pub const fn bitmap_words(max_mfn: u64) -> u64 {
        max_mfn.div_ceil(BITS)
    }

    /// An allocator for frames `[0, max_mfn)` over `bitmap`, with no frame free.
    ///
    /// Only the first [`Self::bitmap_words`] words are used (and cleared); the
    /// bitmap's previous contents do not matter.
    pub fn new(bitmap: &'a mut [u64], max_mfn: u64) -> Result<Self, FrameError> {
        let needed_words = Self::bitmap_words(max_mfn);
        let too_small = FrameError::BitmapTooSmall {
            needed_words,
            got_words: bitmap.len(),
        };
        let words = usize::try_from(needed_words).map_err(|_| too_small)?;
        let bitmap = bitmap.get_mut(..words).ok_or(too_small)?;
        bitmap.fill(0);
        Ok(Self {
            bitmap,
            max_mfn,
            free: 0,
            total: 0,
            next: 0,
            phase: Phase::AddFree,
            flush_due: false,
        })
    }

    /// Marks the whole frames inside `[start, end)` as free RAM: `start` is
    /// rounded up and `end` down to a frame boundary, and frames at or above
    /// `max_mfn` are ignored. Returns how many frames became free (frames already
    /// added are not counted twice).
    ///
    /// Must be called before any [`Self::reserve_range`] and before the first
    /// allocation.
    pub fn add_free_range(&mut self, start: Maddr, end: Maddr) -> Result<u64, FrameError> {
        match self.phase {
            Phase::AddFree => {}
            Phase::Reserve => return Err(FrameError::AddAfterReserve),
            Phase::Running => return Err(FrameError::SetupAfterUse),
        }
        if end < start {
            return Err(FrameError::BadRange { start, end });
        }
        let lo = start.mfn_up().0.min(self.max_mfn);
        let hi = end.mfn().0.min(self.max_mfn);
        let added = self.update(lo, hi, true);
        self.free += added;
        self.total += added;
        Ok(added)
    }

    /// Marks every frame that `[start, end)` touches as used: `start` is rounded
    /// down and `end` up, so a partly used frame is reserved. An empty range
    /// reserves nothing. Returns how many free frames were taken away.
    ///
    /// Call it after all [`Self::add_free_range`] calls and before the first
    /// allocation; a reserved frame is then never handed out.
    pub fn reserve_range(&mut self, start: Maddr, end: Maddr) -> Result<u64, FrameError> {
        if self.phase == Phase::Running {
            return Err(FrameError::SetupAfterUse);
        }
        if end < start {
            return Err(FrameError::BadRange { start, end });
        }
        self.phase = Phase::Reserve;
        if start == end {
            return Ok(0);
        }
        let lo = start.mfn().0.min(self.max_mfn);
        let hi = end.mfn_up().0.min(self.max_mfn);
        let removed = self.update(lo, hi, false);
        self.free -= removed;
        self.total -= removed;
        Ok(removed)
    }

    /// Allocates one frame, anywhere. Next-fit: the search starts after the
    /// previously allocated frame and wraps around.
    pub fn alloc(&mut self) -> Option<Mfn> {
        self.alloc_below(Mfn(self.max_mfn))
    }

    /// Allocates one frame whose number is below `limit` (e.g. `Mfn(1 << 20)` for
    /// a frame below 4 GiB).
    pub fn alloc_below(&mut self, limit: Mfn) -> Option<Mfn> {
        self.phase = Phase::Running;
        if self.free == 0 {
            return None;
        }
        let hi = limit.0.min(self.max_mfn);
        let found = if self.next < hi {
            self.find(self.next, hi, true)
                .or_else(|| self.find(0, self.next, true))
        } else {
            self.find(0, hi, true)
        }?;
        self.take(found, 1);
        self.next = found + 1;
        Some(Mfn(found))
    }

    /// Allocates `count` consecutive frames whose first frame number is a
    /// multiple of `align_frames` (0 and 1 mean no alignment). Returns the first
    /// frame; `None` if `count` is 0 or no such run is free.
    pub fn alloc_contiguous(&mut self, count: u64, align_frames: u64) -> Option<Mfn> {
        self.alloc_contiguous_below(count, align_frames, Mfn(self.max_mfn))
    }

    /// Like [`Self::alloc_contiguous`], with the whole run below `limit`.
    /// First-fit from frame 0.
    pub fn alloc_contiguous_below(
        &mut self,
        count: u64,
        align_frames: u64,
        limit: Mfn,
    ) -> Option<Mfn> {
        self.phase = Phase::Running;
        if count == 0 || count > self.free {
            return None;
        }
        let align = align_frames.max(1);
        let hi = limit.0.min(self.max_mfn);
        let mut from = 0;
        loop {
            let first_free = self.find(from, hi, true)?;
            let start = first_free.div_ceil(align).checked_mul(align)?;
            let end = start.checked_add(count)?;
            if end > hi {
                return None;
            }
            match self.find(start, end, false) {
                None => {
                    self.take(start, count);
                    return Some(Mfn(start));
                }
                Some(used) => from = used + 1,
            }
        }
    }

    /// Returns a frame obtained from this allocator.
    pub fn free(&mut self, mfn: Mfn) -> Result<(), FrameError> {
        self.free_contiguous(mfn, 1)
    }

    /// Returns a frame a guest owned (and may still reach through a stale TLB
    /// entry): as [`Self::free`], and the next [`Self::take_flush_due`] says
    /// a flush is due.
    pub fn free_guest(&mut self, mfn: Mfn) -> Result<(), FrameError> {
        self.free(mfn)?;
        self.flush_due = true;
        Ok(())
    }

    /// Whether the TLB must be flushed before a frame allocated now is used:
    /// true once after any [`Self::free_guest`] (the caller flushes; the
    /// mark is then cleared). The frame may be the one that was freed.
    pub fn take_flush_due(&mut self) -> bool {
        core::mem::take(&mut self.flush_due)
    }

    /// Returns `count` consecutive frames starting at `first`. Either all of them
    /// are freed or, on error, none.
    pub fn free_contiguous(&mut self, first: Mfn, count: u64) -> Result<(), FrameError> {
        self.phase = Phase::Running;
        let end = first
            .0
            .checked_add(count)
            .filter(|&end| end <= self.max_mfn)
            .ok_or(FrameError::OutOfRange(Mfn(first.0.max(self.max_mfn))))?;
        if let Some(already) = self.find(first.0, end, true) {
            return Err(FrameError::DoubleFree(Mfn(already)));
        }
        let freed = self.update(first.0, end, true);
        self.free += freed;
        Ok(())
    }

    /// Whether `mfn` is free (false for frames beyond the bitmap).
    pub fn is_free(&self, mfn: Mfn) -> bool {
        mfn.0 < self.max_mfn && self.bitmap[word(mfn.0)] & (1 << (mfn.0 % BITS)) != 0
    }

    /// Frames currently free.
    pub fn free_count(&self) -> u64 {
        self.free
    }

    /// Usable frames: every frame added as free RAM, minus the reserved ones.
    pub fn total_count(&self) -> u64 {
        self.total
    }

    /// Frames currently allocated (`total_count() - free_count()`).
    pub fn allocated_count(&self) -> u64 {
        self.total - self.free
    }

    /// One past the highest frame this allocator covers.
    pub fn max_mfn(&self) -> Mfn {
        Mfn(self.max_mfn)
    }

    /// Marks `[start, start + count)`, all free, as allocated.
    fn take(&mut self, start: u64, count: u64) {
        let taken = self.update(start, start + count, false);
        debug_assert_eq!(taken, count);
        self.free -= taken;
    }

    /// Sets (`free`) or clears the bits of frames `[lo, hi)`, `hi <= max_mfn`.
    /// Returns how many bits changed.
    fn update(&mut self, lo: u64, hi: u64, free: bool) -> u64 {
        let mut changed = 0;
        let mut f = lo;
        while f < hi {
            let base = f - f % BITS;
            let end = hi.min(base + BITS);
            let m = mask(f - base, end - base);
            let w = &mut self.bitmap[word(f)];
            let old = *w;
            *w = if free { old | m } else { old & !m };
            changed += u64::from((old ^ *w).count_ones());
            f = end;
        }
        changed
    }

    /// The first frame in `[lo, hi)` (`hi <= max_mfn`) that is free (`free`) or
    /// not free (`!free`).
    fn find(&self, lo: u64, hi: u64, free: bool) -> Option<u64> {
        let mut f = lo;
        while f < hi {
            let base = f - f % BITS;
            let end = hi.min(base + BITS);
            let bits = self.bitmap[word(f)];
            let bits = if free { bits } else { !bits } & mask(f - base, end - base);
            if bits != 0 {
                return Some(base + u64::from(bits.trailing_zeros()));
            }
            f = end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashSet};

    const KB4: u64 = 4096;

    fn ma(x: u64) -> Maddr {
        Maddr(x)
    }

    /// Allocates until exhaustion and returns everything handed out.
    fn drain(a: &mut FrameAllocator<'_>) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(m) = a.alloc() {
            out.push(m.0);
            assert!(out.len() as u64 <= a.max_mfn().0, "allocator never ran dry");
        }
        out
    }

    #[test]
    fn guest_frame_freed_means_one_flush_before_reuse() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 64).unwrap();
        a.add_free_range(ma(0), ma(4 * KB4)).unwrap();
        let (x, y) = (a.alloc().unwrap(), a.alloc().unwrap());
        // Oxen's own frames (never mapped by a guest) need no flush.
        a.free(y).unwrap();
        assert!(!a.take_flush_due());
        // A guest's frame: the next allocation (here below the freed frame's
        // limit, so it is that very frame) needs one flush, once.
        a.free_guest(x).unwrap();
        assert_eq!(a.alloc_below(Mfn(x.0 + 1)), Some(x));
        assert!(a.take_flush_due());
        assert!(!a.take_flush_due());
        // A refused free (double free) marks nothing.
        let z = a.alloc().unwrap();
        a.free_guest(z).unwrap();
        assert!(a.take_flush_due());
        assert_eq!(a.free_guest(z), Err(FrameError::DoubleFree(z)));
        assert!(!a.take_flush_due());
    }

    #[test]
    fn bitmap_size_checked() {
        let mut bm = [0u64; 2];
        assert_eq!(
            FrameAllocator::new(&mut bm[..1], 65).unwrap_err(),
            FrameError::BitmapTooSmall {
                needed_words: 2,
                got_words: 1
            }
        );
        assert!(FrameAllocator::new(&mut bm[..1], 64).is_ok());
        assert!(FrameAllocator::new(&mut bm, 128).is_ok());
        assert!(FrameAllocator::new(&mut bm, 129).is_err());
        assert!(FrameAllocator::new(&mut [], 0).is_ok());
        assert!(FrameAllocator::new(&mut [], u64::MAX).is_err());
        assert_eq!(FrameAllocator::bitmap_words(0), 0);
        assert_eq!(FrameAllocator::bitmap_words(1), 1);
        assert_eq!(FrameAllocator::bitmap_words(64), 1);
        assert_eq!(FrameAllocator::bitmap_words(65), 2);
    }

    #[test]
    fn starts_with_nothing_free_even_over_garbage() {
        let mut bm = [u64::MAX; 4];
        let mut a = FrameAllocator::new(&mut bm, 200).unwrap();
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.total_count(), 0);
        assert!((0..256).all(|f| !a.is_free(Mfn(f))));
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_contiguous(1, 1), None);
    }

    #[test]
    fn add_rounds_inward_and_clips() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 10).unwrap();
        // [0x1001, 0x5fff): whole frames 2, 3, 4.
        assert_eq!(a.add_free_range(ma(0x1001), ma(0x5fff)), Ok(3));
        let free: Vec<u64> = (0..10).filter(|&f| a.is_free(Mfn(f))).collect();
        assert_eq!(free, [2, 3, 4]);
        // Exactly aligned bounds keep both edges; overlap is not counted twice.
        assert_eq!(a.add_free_range(ma(0x4000), ma(0x7000)), Ok(2));
        // Beyond max_mfn (10 frames) is clipped.
        assert_eq!(a.add_free_range(ma(0x9000), ma(0x100_0000)), Ok(1));
        assert!(!a.is_free(Mfn(10)));
        // Less than a frame: nothing.
        assert_eq!(a.add_free_range(ma(0x7001), ma(0x7fff)), Ok(0));
        assert_eq!(a.add_free_range(ma(0x8000), ma(0x8000)), Ok(0));
        // Entirely beyond.
        assert_eq!(a.add_free_range(ma(0x10_0000), ma(0x20_0000)), Ok(0));
        assert_eq!(a.free_count(), 6);
        assert_eq!(a.total_count(), 6);
        assert_eq!(
            a.add_free_range(ma(0x5000), ma(0x4000)),
            Err(FrameError::BadRange {
                start: ma(0x5000),
                end: ma(0x4000)
            })
        );
    }

    #[test]
    fn reserve_rounds_outward() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 16).unwrap();
        a.add_free_range(ma(0), ma(16 * KB4)).unwrap();
        // [0x3800, 0x5001) touches frames 3, 4, 5.
        assert_eq!(a.reserve_range(ma(0x3800), ma(0x5001)), Ok(3));
        // A one-byte reservation takes its whole frame.
        assert_eq!(a.reserve_range(ma(0x9fff), ma(0xa000)), Ok(1));
        // Empty reservations take nothing, even unaligned.
        assert_eq!(a.reserve_range(ma(0xc123), ma(0xc123)), Ok(0));
        // Overlapping reservations are not counted twice.
        assert_eq!(a.reserve_range(ma(0x4000), ma(0x7000)), Ok(1));
        // Running past max_mfn: clipped to the last frame.
        assert_eq!(a.reserve_range(ma(0xffff), ma(0x20_0000)), Ok(1));
        let reserved: Vec<u64> = (0..16).filter(|&f| !a.is_free(Mfn(f))).collect();
        assert_eq!(reserved, [3, 4, 5, 6, 9, 15]);
        assert_eq!(a.total_count(), 10);
        assert_eq!(a.free_count(), 10);
        let mut got = drain(&mut a);
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2, 7, 8, 10, 11, 12, 13, 14]);
    }

    #[test]
    fn exhaustion_hands_out_each_usable_frame_once() {
        let mut bm = [0u64; 16];
        let max = 1000;
        let mut a = FrameAllocator::new(&mut bm, max).unwrap();
        // RAM with holes, unaligned edges, and a range running past max_mfn.
        a.add_free_range(ma(0x1234), ma(0x4_0000)).unwrap(); // frames 2..64
        a.add_free_range(ma(0x8_0000), ma(0x10_0fff)).unwrap(); // 128..256
        a.add_free_range(ma(0x20_0000), ma(0x1000_0000)).unwrap(); // 512..1000
        // Oxen's image, a module and the boot info.
        a.reserve_range(ma(0x1_0800), ma(0x2_0010)).unwrap(); // 16..=32
        a.reserve_range(ma(0xa_0000), ma(0xa_0001)).unwrap(); // 160
        a.reserve_range(ma(0x30_0000), ma(0x38_0000)).unwrap(); // 768..896
        let in_ram = |f: u64| (2..64).contains(&f) || (128..256).contains(&f) || f >= 512;
        let reserved = |f: u64| (16..=32).contains(&f) || f == 160 || (768..896).contains(&f);
        let expected: BTreeSet<u64> = (0..max).filter(|&f| in_ram(f) && !reserved(f)).collect();
        assert_eq!(a.total_count(), expected.len() as u64);
        assert_eq!(a.free_count(), expected.len() as u64);

        let got = drain(&mut a);
        let got_set: BTreeSet<u64> = got.iter().copied().collect();
        assert_eq!(got.len(), got_set.len(), "a frame was handed out twice");
        assert_eq!(got_set, expected);
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.allocated_count(), a.total_count());
        assert_eq!(a.alloc(), None);
        assert_eq!(a.alloc_below(Mfn(max)), None);
    }

    #[test]
    fn reservation_wins_and_order_is_enforced() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 64).unwrap();
        a.add_free_range(ma(0), ma(32 * KB4)).unwrap();
        a.reserve_range(ma(0), ma(8 * KB4)).unwrap();
        // Adding again would resurrect reserved frames: refused, state unchanged.
        assert_eq!(
            a.add_free_range(ma(0), ma(64 * KB4)),
            Err(FrameError::AddAfterReserve)
        );
        assert_eq!(a.total_count(), 24);
        assert!(!a.is_free(Mfn(0)) && !a.is_free(Mfn(40)));
        // More reservations are fine until the first allocation.
        a.reserve_range(ma(8 * KB4), ma(9 * KB4)).unwrap();
        let m = a.alloc().unwrap();
        assert!(m.0 >= 9);
        assert_eq!(
            a.reserve_range(ma(10 * KB4), ma(11 * KB4)),
            Err(FrameError::SetupAfterUse)
        );
        assert_eq!(
            a.add_free_range(ma(40 * KB4), ma(41 * KB4)),
            Err(FrameError::SetupAfterUse)
        );
        assert_eq!(a.total_count(), 23);
        assert_eq!(a.free_count(), 22);
        // No reserved frame ever comes out.
        assert!(drain(&mut a).iter().all(|&f| (9..32).contains(&f)));
    }

    #[test]
    fn free_then_reallocate() {
        let mut bm = [0u64; 2];
        let mut a = FrameAllocator::new(&mut bm, 100).unwrap();
        a.add_free_range(ma(0), ma(100 * KB4)).unwrap();
        let got = drain(&mut a);
        assert_eq!(got.len(), 100);
        a.free(Mfn(42)).unwrap();
        assert!(a.is_free(Mfn(42)));
        assert_eq!(a.free_count(), 1);
        assert_eq!(a.alloc(), Some(Mfn(42)));
        assert_eq!(a.alloc(), None);
        for f in [3, 99, 64, 63] {
            a.free(Mfn(f)).unwrap();
        }
        let mut again = drain(&mut a);
        again.sort_unstable();
        assert_eq!(again, [3, 63, 64, 99]);
    }

    #[test]
    fn next_fit_moves_forward_then_wraps() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 8).unwrap();
        a.add_free_range(ma(0), ma(8 * KB4)).unwrap();
        assert_eq!(a.alloc(), Some(Mfn(0)));
        assert_eq!(a.alloc(), Some(Mfn(1)));
        a.free(Mfn(0)).unwrap();
        // The just-freed frame is not reused until the search wraps.
        let rest: Vec<u64> = (0..7).map(|_| a.alloc().unwrap().0).collect();
        assert_eq!(rest, [2, 3, 4, 5, 6, 7, 0]);
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn double_free_and_out_of_range_are_errors_without_effect() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, 10).unwrap();
        a.add_free_range(ma(0), ma(10 * KB4)).unwrap();
        let m = a.alloc().unwrap();
        a.free(m).unwrap();
        assert_eq!(a.free(m), Err(FrameError::DoubleFree(m)));
        // Never allocated (free from the start) is a double free too.
        assert_eq!(a.free(Mfn(7)), Err(FrameError::DoubleFree(Mfn(7))));
        assert_eq!(a.free(Mfn(10)), Err(FrameError::OutOfRange(Mfn(10))));
        assert_eq!(
            a.free(Mfn(u64::MAX)),
            Err(FrameError::OutOfRange(Mfn(u64::MAX)))
        );
        assert!(!a.is_free(Mfn(10)));
        assert_eq!(a.free_count(), 10);
        assert_eq!(a.total_count(), 10);
        assert_eq!(drain(&mut a).len(), 10);
    }

    #[test]
    fn free_contiguous_is_all_or_nothing() {
        let mut bm = [0u64; 2];
        let mut a = FrameAllocator::new(&mut bm, 128).unwrap();
        a.add_free_range(ma(0), ma(128 * KB4)).unwrap();
        let run = a.alloc_contiguous(70, 1).unwrap();
        assert_eq!(run, Mfn(0));
        a.free(Mfn(30)).unwrap();
        // One frame of the run is already free: nothing is freed.
        assert_eq!(
            a.free_contiguous(run, 70),
            Err(FrameError::DoubleFree(Mfn(30)))
        );
        assert_eq!(a.free_count(), 59);
        assert_eq!(
            a.free_contiguous(Mfn(120), 9),
            Err(FrameError::OutOfRange(Mfn(128)))
        );
        assert_eq!(
            a.free_contiguous(Mfn(5), u64::MAX),
            Err(FrameError::OutOfRange(Mfn(128)))
        );
        a.free_contiguous(Mfn(0), 30).unwrap();
        a.free_contiguous(Mfn(31), 39).unwrap();
        assert_eq!(a.free_contiguous(Mfn(0), 0), Ok(()));
        assert_eq!(a.free_count(), 128);
    }

    #[test]
    fn alloc_below_respects_limit() {
        let mut bm = [0u64; 4];
        let mut a = FrameAllocator::new(&mut bm, 256).unwrap();
        a.add_free_range(ma(0x1_0000), ma(256 * KB4)).unwrap(); // 16..256
        // Push the next-fit hint high first.
        for _ in 0..200 {
            a.alloc().unwrap();
        }
        for f in [20, 30, 40, 200] {
            a.free(Mfn(f)).unwrap();
        }
        assert_eq!(a.alloc_below(Mfn(16)), None);
        assert_eq!(a.alloc_below(Mfn(0)), None);
        let below: Vec<u64> = (0..3).map(|_| a.alloc_below(Mfn(41)).unwrap().0).collect();
        assert_eq!(
            below.iter().copied().collect::<BTreeSet<_>>(),
            [20, 30, 40].into()
        );
        assert_eq!(a.alloc_below(Mfn(41)), None);
        // A limit beyond max_mfn is just max_mfn.
        assert!(a.alloc_below(Mfn(u64::MAX)).is_some());
    }

    #[test]
    fn contiguous_and_aligned() {
        let mut bm = [0u64; 16];
        let mut a = FrameAllocator::new(&mut bm, 1024).unwrap();
        a.add_free_range(ma(3 * KB4), ma(1024 * KB4)).unwrap();
        a.reserve_range(ma(100 * KB4), ma(101 * KB4)).unwrap();
        let r = a.alloc_contiguous(10, 1).unwrap();
        assert_eq!(r, Mfn(3));
        // 512-aligned run of 512 frames: only [512, 1024) qualifies.
        let big = a.alloc_contiguous(512, 512).unwrap();
        assert_eq!(big, Mfn(512));
        assert_eq!(a.alloc_contiguous(2, 512), None);
        // 64-aligned, 64 long: [13,100) and [101,512) are free; 128 is the first fit.
        assert_eq!(a.alloc_contiguous(64, 64), Some(Mfn(128)));
        // 87 frames fit exactly in [13, 100).
        assert_eq!(a.alloc_contiguous(87, 1), Some(Mfn(13)));
        assert!(
            (3..100)
                .chain(128..192)
                .chain(512..1024)
                .all(|f| !a.is_free(Mfn(f)))
        );
        assert_eq!(a.alloc_contiguous(0, 1), None);
        assert_eq!(a.alloc_contiguous(2000, 1), None);
        // Alignment 0 means 1.
        assert_eq!(a.alloc_contiguous(1, 0), Some(Mfn(101)));
        // Within a limit.
        assert_eq!(a.alloc_contiguous_below(4, 4, Mfn(110)), Some(Mfn(104)));
        assert_eq!(a.alloc_contiguous_below(8, 1, Mfn(110)), None);
        assert_eq!(a.free_count() + a.allocated_count(), a.total_count());
    }

    #[test]
    fn fragmented_memory_has_no_long_run() {
        let mut bm = [0u64; 2];
        let mut a = FrameAllocator::new(&mut bm, 128).unwrap();
        a.add_free_range(ma(0), ma(128 * KB4)).unwrap();
        for f in (0..128).step_by(4) {
            a.reserve_range(ma(f * KB4), ma(f * KB4 + 1)).unwrap();
        }
        assert_eq!(a.free_count(), 96);
        assert_eq!(a.alloc_contiguous(4, 1), None);
        assert_eq!(a.alloc_contiguous(3, 1), Some(Mfn(1)));
        assert_eq!(a.alloc_contiguous(2, 2), Some(Mfn(6)));
        assert_eq!(a.alloc_contiguous(3, 1), Some(Mfn(9)));
    }

    #[test]
    fn runs_cross_word_boundaries() {
        let mut bm = [0u64; 4];
        let mut a = FrameAllocator::new(&mut bm, 250).unwrap();
        a.add_free_range(ma(60 * KB4), ma(250 * KB4)).unwrap();
        assert_eq!(a.alloc_contiguous(130, 1), Some(Mfn(60)));
        assert!((60..190).all(|f| !a.is_free(Mfn(f))));
        assert!((190..250).all(|f| a.is_free(Mfn(f))));
        assert_eq!(a.alloc_contiguous(61, 1), None);
        assert_eq!(a.alloc_contiguous(60, 1), Some(Mfn(190)));
        a.free_contiguous(Mfn(60), 130).unwrap();
        assert_eq!(a.free_count(), 130);
    }

    #[test]
    fn errors_display() {
        let cases = [
            (
                FrameError::BitmapTooSmall {
                    needed_words: 2,
                    got_words: 1,
                },
                "frame bitmap too small: 1 words supplied, 2 needed",
            ),
            (
                FrameError::OutOfRange(Mfn(0x10)),
                "mfn 0x10 is beyond the frame allocator's range",
            ),
            (
                FrameError::DoubleFree(Mfn(0xab)),
                "mfn 0xab freed but already free",
            ),
            (
                FrameError::BadRange {
                    start: Maddr(0x2000),
                    end: Maddr(0x1000),
                },
                "bad range: end maddr 0x1000 is below start maddr 0x2000",
            ),
        ];
        for (e, s) in cases {
            assert_eq!(e.to_string(), s);
        }
        assert!(
            FrameError::AddAfterReserve
                .to_string()
                .contains("add all RAM first")
        );
        assert!(!FrameError::SetupAfterUse.to_string().is_empty());
        let mut bm = [0u64; 1];
        let a = FrameAllocator::new(&mut bm, 3).unwrap();
        assert!(format!("{a:?}").contains("max_mfn: 3"));
    }

    // ---- Property test against a model ------------------------------------

    /// Up to this many frames; small enough to exhaust and to check brute force.
    const MODEL_MAX: u64 = 300;

    #[derive(Clone, Debug)]
    enum Op {
        Alloc,
        AllocBelow(u64),
        AllocContig {
            count: u64,
            align: u64,
        },
        /// Free the `i % len`-th currently allocated frame.
        FreeAllocated(usize),
        /// Free an arbitrary frame number (may be free, reserved or out of range).
        FreeAny(u64),
        FreeContig {
            first: u64,
            count: u64,
        },
        /// Setup after use: must be refused.
        LateAdd(u64, u64),
        LateReserve(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Alloc),
            2 => (0..MODEL_MAX + 20).prop_map(Op::AllocBelow),
            2 => (0u64..20, 0u64..9).prop_map(|(count, align)| Op::AllocContig { count, align }),
            5 => any::<usize>().prop_map(Op::FreeAllocated),
            1 => (0..MODEL_MAX + 20).prop_map(Op::FreeAny),
            1 => (0..MODEL_MAX + 5, 0u64..8).prop_map(|(first, count)| Op::FreeContig { first, count }),
            1 => (0..MODEL_MAX * KB4, 0..MODEL_MAX * KB4).prop_map(|(a, b)| Op::LateAdd(a, b)),
            1 => (0..MODEL_MAX * KB4, 0..MODEL_MAX * KB4).prop_map(|(a, b)| Op::LateReserve(a, b)),
        ]
    }

    /// A byte range `[start, end)` somewhere around the frames of the model.
    fn range() -> impl Strategy<Value = (u64, u64)> {
        (0..(MODEL_MAX + 10) * KB4, 0..64 * KB4 + 100).prop_map(|(s, len)| (s, s + len))
    }

    struct Model {
        usable: HashSet<u64>,
        free: HashSet<u64>,
    }

    impl Model {
        fn check(&self, a: &FrameAllocator<'_>, max: u64) {
            assert_eq!(a.free_count(), self.free.len() as u64);
            assert_eq!(a.total_count(), self.usable.len() as u64);
            for f in 0..max + 70 {
                assert_eq!(a.is_free(Mfn(f)), self.free.contains(&f), "frame {f}");
            }
        }

        /// Whether a run of `count` free frames aligned to `align` lies below `hi`.
        fn has_run(&self, count: u64, align: u64, hi: u64) -> bool {
            (0..hi)
                .step_by(align.max(1) as usize)
                .any(|s| s + count <= hi && (s..s + count).all(|f| self.free.contains(&f)))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn allocator_matches_model(
            max in 0..MODEL_MAX,
            adds in prop::collection::vec(range(), 0..6),
            reserves in prop::collection::vec(range(), 0..6),
            ops in prop::collection::vec(op(), 0..300),
        ) {
            let mut bm = vec![0xdead_beef_u64; FrameAllocator::bitmap_words(max) as usize + 1];
            let mut a = FrameAllocator::new(&mut bm, max).unwrap();
            let mut m = Model { usable: HashSet::new(), free: HashSet::new() };
            for &(s, e) in &adds {
                a.add_free_range(Maddr(s), Maddr(e)).unwrap();
                // Whole frames inside [s, e), below max.
                m.usable.extend((0..max).filter(|&f| f * KB4 >= s && (f + 1) * KB4 <= e));
            }
            for &(s, e) in &reserves {
                a.reserve_range(Maddr(s), Maddr(e)).unwrap();
                // Every frame overlapping a non-empty [s, e).
                m.usable.retain(|&f| !(s < e && f * KB4 < e && (f + 1) * KB4 > s));
            }
            m.free = m.usable.clone();
            m.check(&a, max);
            // Any allocation call, even one that cannot succeed, ends set-up.
            prop_assert_eq!(a.alloc_contiguous(0, 1), None);

            let mut allocated: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc => match a.alloc() {
                        Some(Mfn(f)) => {
                            prop_assert!(m.free.remove(&f), "alloc gave non-free {}", f);
                            allocated.push(f);
                        }
                        None => prop_assert!(m.free.is_empty()),
                    },
                    Op::AllocBelow(limit) => match a.alloc_below(Mfn(limit)) {
                        Some(Mfn(f)) => {
                            prop_assert!(f < limit);
                            prop_assert!(m.free.remove(&f));
                            allocated.push(f);
                        }
                        None => prop_assert!(m.free.iter().all(|&f| f >= limit)),
                    },
                    Op::AllocContig { count, align } => {
                        match a.alloc_contiguous(count, align) {
                            Some(Mfn(s)) => {
                                prop_assert!(count > 0);
                                prop_assert_eq!(s % align.max(1), 0);
                                for f in s..s + count {
                                    prop_assert!(m.free.remove(&f));
                                    allocated.push(f);
                                }
                            }
                            None => prop_assert!(count == 0 || !m.has_run(count, align, max)),
                        }
                    }
                    Op::FreeAllocated(i) => {
                        if !allocated.is_empty() {
                            let f = allocated.swap_remove(i % allocated.len());
                            prop_assert_eq!(a.free(Mfn(f)), Ok(()));
                            m.free.insert(f);
                        }
                    }
                    Op::FreeAny(f) => {
                        let contract_ok = f >= max || m.usable.contains(&f);
                        let r = if contract_ok { a.free(Mfn(f)) } else { Ok(()) };
                        if f >= max {
                            prop_assert_eq!(r, Err(FrameError::OutOfRange(Mfn(f))));
                        } else if m.free.contains(&f) {
                            prop_assert_eq!(r, Err(FrameError::DoubleFree(Mfn(f))));
                        } else if let Some(i) = allocated.iter().position(|&x| x == f) {
                            prop_assert!(contract_ok);
                            prop_assert_eq!(r, Ok(()));
                            allocated.swap_remove(i);
                            m.free.insert(f);
                        } else {
                            // Reserved or not RAM: freeing it breaks the
                            // documented contract, so the model does not do it.
                            prop_assert!(!m.usable.contains(&f));
                        }
                    }
                    Op::FreeContig { first, count } => {
                        let run = first..first + count;
                        let out_of_range = first + count > max;
                        let some_free = run.clone().find(|f| m.free.contains(f));
                        let all_allocated = run.clone().all(|f| allocated.contains(&f));
                        if out_of_range || some_free.is_some() || all_allocated {
                            let r = a.free_contiguous(Mfn(first), count);
                            if out_of_range {
                                prop_assert_eq!(r, Err(FrameError::OutOfRange(Mfn(first.max(max)))));
                            } else if let Some(f) = some_free {
                                prop_assert_eq!(r, Err(FrameError::DoubleFree(Mfn(f))));
                            } else {
                                prop_assert_eq!(r, Ok(()));
                                allocated.retain(|f| !run.contains(f));
                                m.free.extend(run);
                            }
                        }
                        // Otherwise the run holds reserved frames: a contract
                        // violation the allocator cannot detect; not modelled.
                    }
                    Op::LateAdd(s, e) => {
                        prop_assert_eq!(a.add_free_range(Maddr(s), Maddr(e)), Err(FrameError::SetupAfterUse));
                    }
                    Op::LateReserve(s, e) => {
                        prop_assert_eq!(a.reserve_range(Maddr(s), Maddr(e)), Err(FrameError::SetupAfterUse));
                    }
                }
                let distinct: HashSet<u64> = allocated.iter().copied().collect();
                prop_assert_eq!(distinct.len(), allocated.len(), "a frame handed out twice");
                prop_assert!(distinct.iter().all(|f| m.usable.contains(f)));
                prop_assert_eq!(a.free_count(), m.free.len() as u64);
            }
            m.check(&a, max);
        }

        #[test]
        fn reserve_wins_for_any_layout(
            max in 1..MODEL_MAX,
            adds in prop::collection::vec(range(), 1..6),
            reserves in prop::collection::vec(range(), 1..6),
        ) {
            let mut bm = vec![0u64; FrameAllocator::bitmap_words(max) as usize];
            let mut a = FrameAllocator::new(&mut bm, max).unwrap();
            for &(s, e) in &adds {
                a.add_free_range(Maddr(s), Maddr(e)).unwrap();
            }
            for &(s, e) in &reserves {
                a.reserve_range(Maddr(s), Maddr(e)).unwrap();
            }
            for &(s, e) in &adds {
                prop_assert_eq!(a.add_free_range(Maddr(s), Maddr(e)), Err(FrameError::AddAfterReserve));
            }
            let total = a.total_count();
            let got = drain(&mut a);
            prop_assert_eq!(got.len() as u64, total);
            for f in got {
                let (lo, hi) = (f * KB4, (f + 1) * KB4);
                prop_assert!(adds.iter().any(|&(s, e)| s <= lo && hi <= e), "frame {} not RAM", f);
                prop_assert!(reserves.iter().all(|&(s, e)| s == e || hi <= s || e <= lo), "frame {} reserved", f);
            }
        }
    }
}
