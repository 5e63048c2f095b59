//! The byte-stream rings a domain shares with a daemon in another domain: the
//! xenstore page's `req`/`rsp` (XEN-PV-ABI.md §13.2) and the console page's
//! `out`/`in` (§14.1) follow the same protocol, so both use [`ByteRing`].
//!
//! A ring is a power-of-two byte array with two free-running u32 indices: the
//! producer writes bytes at `prod & (size - 1)`, issues a write barrier, then
//! advances `prod`; the consumer reads bytes up to `prod`, issues a barrier,
//! then advances `cons`. Invariant (checked on every access, since the other
//! end is another domain): `prod - cons` (wrapping) never exceeds the size; a
//! ring that breaks it is reported as [`RingCorrupt`] and nothing is copied.
//! This module is pure (no hypercalls, no `unsafe`): the caller notifies the
//! other end after a transfer that moved bytes.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering, fence};

/// The ring's indices are inconsistent (`prod - cons` exceeds its size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingCorrupt;

/// Bytes queued between `cons` and `prod`, or [`RingCorrupt`] if that exceeds
/// `size` (free-running indices: the difference is taken wrapping).
pub const fn used(prod: u32, cons: u32, size: usize) -> Result<usize, RingCorrupt> {
    let n = prod.wrapping_sub(cons) as usize;
    if n > size { Err(RingCorrupt) } else { Ok(n) }
}

/// One direction of a shared ring, seen from one end (producer or consumer:
/// the same view serves both, each side uses only its half of the methods).
#[derive(Clone, Copy)]
pub struct ByteRing<'a> {
    buf: &'a [AtomicU8],
    prod: &'a AtomicU32,
    cons: &'a AtomicU32,
}

impl<'a> ByteRing<'a> {
    /// A ring over `buf` with indices `prod` and `cons`; `None` unless the
    /// length of `buf` is a power of two (every ring of the ABI is).
    pub fn new(buf: &'a [AtomicU8], prod: &'a AtomicU32, cons: &'a AtomicU32) -> Option<Self> {
        buf.len()
            .is_power_of_two()
            .then_some(Self { buf, prod, cons })
    }

    /// The ring's size in bytes.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the consumer may read now.
    pub fn used(&self) -> Result<usize, RingCorrupt> {
        used(
            self.prod.load(Ordering::Acquire),
            self.cons.load(Ordering::Acquire),
            self.size(),
        )
    }

    /// Bytes the producer may write now.
    pub fn space(&self) -> Result<usize, RingCorrupt> {
        self.used().map(|n| self.size() - n)
    }

    /// Producer: copies as much of `bytes` as fits, then (after a write
    /// barrier) advances `prod`. Returns how many bytes were queued.
    pub fn produce(&self, bytes: &[u8]) -> Result<usize, RingCorrupt> {
        let prod = self.prod.load(Ordering::Relaxed);
        let cons = self.cons.load(Ordering::Acquire);
        let n = bytes
            .len()
            .min(self.size() - used(prod, cons, self.size())?);
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.slot(prod.wrapping_add(i as u32))
                .store(b, Ordering::Relaxed);
        }
        // The bytes must be visible before the index that publishes them.
        fence(Ordering::Release);
        self.prod
            .store(prod.wrapping_add(n as u32), Ordering::Release);
        Ok(n)
    }

    /// Consumer: copies up to `out.len()` queued bytes into `out`, then (after
    /// a barrier) advances `cons`. Returns how many bytes were taken.
    pub fn consume(&self, out: &mut [u8]) -> Result<usize, RingCorrupt> {
        let cons = self.cons.load(Ordering::Relaxed);
        let prod = self.prod.load(Ordering::Acquire);
        // Read the bytes only after the index that published them.
        fence(Ordering::Acquire);
        let n = out.len().min(used(prod, cons, self.size())?);
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self
                .slot(cons.wrapping_add(i as u32))
                .load(Ordering::Relaxed);
        }
        // Finish reading before the producer may overwrite the slots.
        fence(Ordering::Release);
        self.cons
            .store(cons.wrapping_add(n as u32), Ordering::Release);
        Ok(n)
    }

    /// The slot of free-running index `idx` (`idx & (size - 1)`).
    fn slot(&self, idx: u32) -> &AtomicU8 {
        &self.buf[idx as usize & (self.size() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem<const N: usize> {
        buf: [AtomicU8; N],
        prod: AtomicU32,
        cons: AtomicU32,
    }

    impl<const N: usize> Mem<N> {
        fn new(prod: u32, cons: u32) -> Self {
            Self {
                buf: [const { AtomicU8::new(0) }; N],
                prod: AtomicU32::new(prod),
                cons: AtomicU32::new(cons),
            }
        }

        fn ring(&self) -> ByteRing<'_> {
            ByteRing::new(&self.buf, &self.prod, &self.cons).unwrap()
        }
    }

    #[test]
    fn size_must_be_a_power_of_two() {
        let buf = [const { AtomicU8::new(0) }; 12];
        let (p, c) = (AtomicU32::new(0), AtomicU32::new(0));
        assert!(ByteRing::new(&buf, &p, &c).is_none());
        assert!(ByteRing::new(&buf[..8], &p, &c).is_some());
    }

    #[test]
    fn used_wraps_and_detects_corruption() {
        assert_eq!(used(5, 2, 8), Ok(3));
        assert_eq!(used(2, u32::MAX - 1, 8), Ok(4));
        assert_eq!(used(8, 0, 8), Ok(8));
        assert_eq!(used(9, 0, 8), Err(RingCorrupt));
        // cons ahead of prod is a huge wrapping difference: corrupt.
        assert_eq!(used(0, 1, 8), Err(RingCorrupt));
    }

    #[test]
    fn produce_stops_when_full_and_masks_the_index() {
        let m = Mem::<8>::new(6, 6);
        let r = m.ring();
        assert_eq!(r.produce(b"abcdefghij"), Ok(8));
        assert_eq!(m.prod.load(Ordering::SeqCst), 14);
        // Positions 6, 7 then 0..6: the index wrapped inside the array.
        assert_eq!(m.buf[6].load(Ordering::SeqCst), b'a');
        assert_eq!(m.buf[0].load(Ordering::SeqCst), b'c');
        assert_eq!(r.space(), Ok(0));
        assert_eq!(r.produce(b"x"), Ok(0));
    }

    #[test]
    fn consume_reads_across_the_wrap_and_frees_space() {
        let m = Mem::<8>::new(u32::MAX - 2, u32::MAX - 2);
        let r = m.ring();
        assert_eq!(r.produce(b"hello"), Ok(5));
        let mut out = [0u8; 3];
        assert_eq!(r.consume(&mut out), Ok(3));
        assert_eq!(&out, b"hel");
        assert_eq!(r.space(), Ok(6));
        let mut out = [0u8; 8];
        assert_eq!(r.consume(&mut out), Ok(2));
        assert_eq!(&out[..2], b"lo");
        assert_eq!(r.consume(&mut out), Ok(0));
        assert_eq!(m.cons.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn corrupt_indices_copy_nothing() {
        let m = Mem::<8>::new(20, 0);
        let r = m.ring();
        assert_eq!(r.produce(b"abc"), Err(RingCorrupt));
        assert_eq!(r.consume(&mut [0u8; 4]), Err(RingCorrupt));
        assert_eq!(m.prod.load(Ordering::SeqCst), 20);
        assert_eq!(m.cons.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn byte_stream_is_preserved_over_many_wraps() {
        let m = Mem::<16>::new(u32::MAX - 40, u32::MAX - 40);
        let r = m.ring();
        let data: [u8; 251] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let (mut sent, mut got) = (0, [0u8; 251]);
        let mut recvd = 0;
        let mut step = 1;
        while recvd < data.len() {
            let end = (sent + step).min(data.len());
            sent += r.produce(&data[sent..end]).unwrap();
            let take = (step * 3 % 11 + 1).min(got.len() - recvd);
            recvd += r.consume(&mut got[recvd..recvd + take]).unwrap();
            step = step % 13 + 1;
        }
        assert_eq!(got, data);
    }
}
