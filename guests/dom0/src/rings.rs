//! The two rings dom0 serves on pages of other domains: the xenstore ring
//! (XEN-PV-ABI.md §13.2, as a [`RingPage`] for `xenstored`) and the console
//! ring (§14.1: the console daemon reads `out`, writes `in`), plus the bounded
//! log the console daemon keeps per domain.
//!
//! Invariants: offsets come from `xen_abi`'s layouts, never re-declared; every
//! index the guest controls is read once per pass and a producer/consumer pair
//! further apart than the ring is a [`RingError`] (nothing is copied, nothing
//! panics); data is read after the producer index (barrier) and the consumer
//! index is released after the data (barrier); the [`ConsoleLog`] never holds
//! more than its capacity (the oldest bytes are dropped first).

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::mem::offset_of;

use xen_abi::console::{
    XENCONS_IN_SIZE, XENCONS_OUT_SIZE, XenconsInterface, mask_xencons_in_idx, mask_xencons_out_idx,
};
use xen_abi::xenstore::XenstoreDomainInterface;
use xenstored::RingPage;

use crate::hv::SharedPage;

/// A domain's xenstore page as `xenstored` reads it.
pub struct StorePage<'p>(pub &'p mut dyn SharedPage);

type Xs = XenstoreDomainInterface;

impl RingPage for StorePage<'_> {
    fn read_req(&self, offset: usize, out: &mut [u8]) {
        self.0.read(offset_of!(Xs, req) + offset, out);
    }
    fn write_rsp(&mut self, offset: usize, data: &[u8]) {
        self.0.write(offset_of!(Xs, rsp) + offset, data);
    }
    fn req_cons(&self) -> u32 {
        self.0.read_u32(offset_of!(Xs, req_cons))
    }
    fn req_prod(&self) -> u32 {
        self.0.read_u32(offset_of!(Xs, req_prod))
    }
    fn rsp_cons(&self) -> u32 {
        self.0.read_u32(offset_of!(Xs, rsp_cons))
    }
    fn rsp_prod(&self) -> u32 {
        self.0.read_u32(offset_of!(Xs, rsp_prod))
    }
    fn set_req_cons(&mut self, v: u32) {
        self.0.write_u32(offset_of!(Xs, req_cons), v);
    }
    fn set_rsp_prod(&mut self, v: u32) {
        self.0.write_u32(offset_of!(Xs, rsp_prod), v);
    }
    fn read_barrier(&self) {
        self.0.barrier();
    }
    fn write_barrier(&self) {
        self.0.barrier();
    }
    fn full_barrier(&self) {
        self.0.barrier();
    }
}

/// A console ring whose indices break the ring invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingError {
    pub prod: u32,
    pub cons: u32,
}

type Cons = XenconsInterface;

/// Takes every byte the guest produced on `out` (at most one ring), appends it
/// to `into`, and releases the space (`out_cons`). Returns how many bytes.
pub fn console_read_out(page: &mut dyn SharedPage, into: &mut Vec<u8>) -> Result<usize, RingError> {
    let cons = page.read_u32(offset_of!(Cons, out_cons));
    let prod = page.read_u32(offset_of!(Cons, out_prod));
    let n = prod.wrapping_sub(cons) as usize;
    if n > XENCONS_OUT_SIZE {
        return Err(RingError { prod, cons });
    }
    page.barrier();
    let start = mask_xencons_out_idx(cons);
    let first = n.min(XENCONS_OUT_SIZE - start);
    let at = into.len();
    into.resize(at + n, 0);
    page.read(offset_of!(Cons, out) + start, &mut into[at..at + first]);
    page.read(offset_of!(Cons, out), &mut into[at + first..at + n]);
    page.barrier();
    page.write_u32(offset_of!(Cons, out_cons), prod);
    Ok(n)
}

/// Writes as much of `data` as fits into the guest's `in` ring and publishes
/// `in_prod`. Returns how many bytes were written.
pub fn console_write_in(page: &mut dyn SharedPage, data: &[u8]) -> Result<usize, RingError> {
    let cons = page.read_u32(offset_of!(Cons, in_cons));
    let prod = page.read_u32(offset_of!(Cons, in_prod));
    let used = prod.wrapping_sub(cons) as usize;
    if used > XENCONS_IN_SIZE {
        return Err(RingError { prod, cons });
    }
    let n = (XENCONS_IN_SIZE - used).min(data.len());
    page.barrier();
    let start = mask_xencons_in_idx(prod);
    let first = n.min(XENCONS_IN_SIZE - start);
    page.write(offset_of!(Cons, in_) + start, &data[..first]);
    page.write(offset_of!(Cons, in_), &data[first..n]);
    page.barrier();
    page.write_u32(offset_of!(Cons, in_prod), prod.wrapping_add(n as u32));
    Ok(n)
}

/// Bytes a domain's console log keeps (xenconsoled keeps a bounded buffer too).
pub const CONSOLE_LOG_BYTES: usize = 16 * 1024;

/// A domain's console output kept while nobody is attached: at most
/// `capacity` bytes, the oldest dropped first.
#[derive(Clone, Debug)]
pub struct ConsoleLog {
    bytes: VecDeque<u8>,
    capacity: usize,
    dropped: u64,
}

impl Default for ConsoleLog {
    fn default() -> Self {
        Self::with_capacity(CONSOLE_LOG_BYTES)
    }
}

impl ConsoleLog {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Appends `data`, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        self.bytes.extend(data.iter().copied());
        while self.bytes.len() > self.capacity {
            self.bytes.pop_front();
            self.dropped += 1;
        }
    }

    /// What is kept, oldest first.
    pub fn contents(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Bytes dropped so far to stay within the capacity.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePage;
    use proptest::prelude::*;

    fn out_prod(p: &FakePage) -> u32 {
        p.read_u32(offset_of!(Cons, out_prod))
    }

    /// The guest side: appends to `out` like a frontend.
    fn guest_print(p: &mut FakePage, data: &[u8]) {
        let prod = out_prod(p);
        for (i, &b) in data.iter().enumerate() {
            let at = offset_of!(Cons, out) + mask_xencons_out_idx(prod.wrapping_add(i as u32));
            p.write(at, &[b]);
        }
        p.write_u32(
            offset_of!(Cons, out_prod),
            prod.wrapping_add(data.len() as u32),
        );
    }

    fn guest_read_in(p: &mut FakePage) -> Vec<u8> {
        let mut v = Vec::new();
        let mut cons = p.read_u32(offset_of!(Cons, in_cons));
        let prod = p.read_u32(offset_of!(Cons, in_prod));
        while cons != prod {
            let mut b = [0u8];
            p.read(offset_of!(Cons, in_) + mask_xencons_in_idx(cons), &mut b);
            v.push(b[0]);
            cons = cons.wrapping_add(1);
        }
        p.write_u32(offset_of!(Cons, in_cons), cons);
        v
    }

    fn page_at(idx: u32) -> FakePage {
        let mut p = FakePage::default();
        for f in [
            offset_of!(Cons, in_cons),
            offset_of!(Cons, in_prod),
            offset_of!(Cons, out_cons),
            offset_of!(Cons, out_prod),
        ] {
            p.write_u32(f, idx);
        }
        p
    }

    #[test]
    fn console_output_is_read_across_the_wrap_and_released() {
        for start in [2040u32, u32::MAX - 3] {
            let mut p = page_at(start);
            guest_print(&mut p, b"hello, dom0\n");
            let mut got = Vec::new();
            assert_eq!(console_read_out(&mut p, &mut got), Ok(12));
            assert_eq!(got, b"hello, dom0\n");
            assert_eq!(
                p.read_u32(offset_of!(Cons, out_cons)),
                start.wrapping_add(12)
            );
            assert_eq!(console_read_out(&mut p, &mut got), Ok(0));
        }
    }

    #[test]
    fn console_output_with_impossible_indices_is_refused() {
        let mut p = page_at(0);
        p.write_u32(offset_of!(Cons, out_prod), XENCONS_OUT_SIZE as u32 + 1);
        let mut got = Vec::new();
        assert_eq!(
            console_read_out(&mut p, &mut got),
            Err(RingError {
                prod: 2049,
                cons: 0
            })
        );
        assert!(got.is_empty());
        assert_eq!(p.read_u32(offset_of!(Cons, out_cons)), 0);
        // A full ring is legal.
        p.write_u32(offset_of!(Cons, out_prod), XENCONS_OUT_SIZE as u32);
        assert_eq!(console_read_out(&mut p, &mut got), Ok(XENCONS_OUT_SIZE));
    }

    #[test]
    fn console_input_fills_up_to_the_free_space() {
        let mut p = page_at(1020);
        let data: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        assert_eq!(console_write_in(&mut p, &data), Ok(XENCONS_IN_SIZE));
        assert_eq!(console_write_in(&mut p, b"x"), Ok(0), "ring full");
        assert_eq!(guest_read_in(&mut p), &data[..XENCONS_IN_SIZE]);
        assert_eq!(console_write_in(&mut p, &data[1024..]), Ok(476));
        assert_eq!(guest_read_in(&mut p), &data[1024..]);
        // A guest consumer ahead of the producer is refused.
        p.write_u32(offset_of!(Cons, in_cons), 5);
        p.write_u32(offset_of!(Cons, in_prod), 0);
        assert!(console_write_in(&mut p, b"abc").is_err());
    }

    #[test]
    fn store_page_maps_the_xenstore_layout() {
        let mut p = FakePage::default();
        let mut sp = StorePage(&mut p);
        sp.set_rsp_prod(7);
        sp.set_req_cons(9);
        sp.write_rsp(3, b"ab");
        assert_eq!(sp.rsp_prod(), 7);
        assert_eq!(sp.req_cons(), 9);
        assert_eq!(p.read_u32(2060), 7);
        assert_eq!(p.read_u32(2048), 9);
        let mut b = [0u8; 2];
        p.read(1024 + 3, &mut b);
        assert_eq!(&b, b"ab");
        p.write(5, b"zz");
        p.write_u32(2052, 11);
        let sp = StorePage(&mut p);
        let mut b = [0u8; 2];
        sp.read_req(5, &mut b);
        assert_eq!((&b, sp.req_prod(), sp.rsp_cons()), (b"zz", 11, 0));
    }

    #[test]
    fn console_log_drops_the_oldest() {
        let mut log = ConsoleLog::with_capacity(8);
        log.push(b"abcdef");
        assert_eq!(log.contents(), b"abcdef");
        log.push(b"ghij");
        assert_eq!(log.contents(), b"cdefghij");
        assert_eq!(log.dropped(), 2);
        assert_eq!(ConsoleLog::default().capacity, CONSOLE_LOG_BYTES);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn console_log_keeps_the_newest_bytes(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..40), 0..20), cap in 1usize..64) {
            let mut log = ConsoleLog::with_capacity(cap);
            let mut all = Vec::new();
            for c in &chunks {
                log.push(c);
                all.extend_from_slice(c);
                prop_assert!(log.len() <= cap);
            }
            let keep = all.len().min(cap);
            prop_assert_eq!(log.contents(), all[all.len() - keep..].to_vec());
            prop_assert_eq!(log.dropped() as usize, all.len() - keep);
        }

        #[test]
        fn console_bytes_arrive_in_order(start in any::<u32>(), chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..700), 0..8)) {
            let mut p = page_at(start);
            let mut got = Vec::new();
            let mut sent = Vec::new();
            for c in &chunks {
                guest_print(&mut p, c);
                sent.extend_from_slice(c);
                console_read_out(&mut p, &mut got).unwrap();
            }
            prop_assert_eq!(got, sent);
        }
    }
}
