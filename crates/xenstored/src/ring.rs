//! Index math of the xenstore byte rings (XEN-PV-ABI.md §13.2).
//!
//! The page holds two 1024-byte rings with free-running `u32` indices; a byte's
//! position is `index & 1023`. The guest produces requests (`req_prod`) and
//! consumes responses (`rsp_cons`); the daemon does the opposite. The page is
//! shared with an untrusted guest, so every index is read once, and a pair whose
//! distance exceeds the ring size is a protocol error: nothing is copied and
//! nothing panics.
//!
//! [`RingPage`] abstracts the page so host tests use an in-memory
//! `XenstoreDomainInterface` and dom0 can supply volatile accessors and barriers.

use xen_abi::xenstore::{XENSTORE_RING_SIZE, XenstoreDomainInterface, mask_xenstore_idx};

use crate::wire::ProtocolError;

/// Access to a shared xenstore ring page.
///
/// `read_req`/`write_rsp` are only called with `offset + len <= XENSTORE_RING_SIZE`.
pub trait RingPage {
    /// Copies `out.len()` bytes of the request ring starting at `offset`.
    fn read_req(&self, offset: usize, out: &mut [u8]);
    /// Stores `data` into the response ring starting at `offset`.
    fn write_rsp(&mut self, offset: usize, data: &[u8]);
    /// `req_cons` (daemon's).
    fn req_cons(&self) -> u32;
    /// `req_prod` (guest's).
    fn req_prod(&self) -> u32;
    /// `rsp_cons` (guest's).
    fn rsp_cons(&self) -> u32;
    /// `rsp_prod` (daemon's).
    fn rsp_prod(&self) -> u32;
    /// Publishes `req_cons`.
    fn set_req_cons(&mut self, v: u32);
    /// Publishes `rsp_prod`.
    fn set_rsp_prod(&mut self, v: u32);
    /// Read barrier: between reading a producer index and the data it covers.
    fn read_barrier(&self) {}
    /// Write barrier: between writing data and publishing the producer index.
    fn write_barrier(&self) {}
    /// Full barrier: between reading data and releasing its space (consumer index).
    fn full_barrier(&self) {}
}

impl RingPage for XenstoreDomainInterface {
    fn read_req(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.req[offset..offset + out.len()]);
    }
    fn write_rsp(&mut self, offset: usize, data: &[u8]) {
        self.rsp[offset..offset + data.len()].copy_from_slice(data);
    }
    fn req_cons(&self) -> u32 {
        self.req_cons
    }
    fn req_prod(&self) -> u32 {
        self.req_prod
    }
    fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }
    fn rsp_prod(&self) -> u32 {
        self.rsp_prod
    }
    fn set_req_cons(&mut self, v: u32) {
        self.req_cons = v;
    }
    fn set_rsp_prod(&mut self, v: u32) {
        self.rsp_prod = v;
    }
}

fn outstanding(prod: u32, cons: u32) -> Result<usize, ProtocolError> {
    let n = prod.wrapping_sub(cons) as usize;
    if n > XENSTORE_RING_SIZE {
        Err(ProtocolError::BadRingIndex { prod, cons })
    } else {
        Ok(n)
    }
}

/// Request bytes waiting to be read.
pub fn req_available<P: RingPage + ?Sized>(page: &P) -> Result<usize, ProtocolError> {
    outstanding(page.req_prod(), page.req_cons())
}

/// Room left in the response ring.
pub fn rsp_free<P: RingPage + ?Sized>(page: &P) -> Result<usize, ProtocolError> {
    Ok(XENSTORE_RING_SIZE - outstanding(page.rsp_prod(), page.rsp_cons())?)
}

/// Copies up to `out.len()` waiting request bytes into `out`, advances
/// `req_cons` past them and returns how many were copied.
pub fn read_requests<P: RingPage + ?Sized>(
    page: &mut P,
    out: &mut [u8],
) -> Result<usize, ProtocolError> {
    let cons = page.req_cons();
    let prod = page.req_prod();
    let n = outstanding(prod, cons)?.min(out.len());
    page.read_barrier();
    let start = mask_xenstore_idx(cons);
    let first = n.min(XENSTORE_RING_SIZE - start);
    page.read_req(start, &mut out[..first]);
    page.read_req(0, &mut out[first..n]);
    page.full_barrier();
    page.set_req_cons(cons.wrapping_add(n as u32));
    Ok(n)
}

/// Writes as much of `data` as fits into the response ring, publishes
/// `rsp_prod` and returns how many bytes were written.
pub fn write_responses<P: RingPage + ?Sized>(
    page: &mut P,
    data: &[u8],
) -> Result<usize, ProtocolError> {
    let cons = page.rsp_cons();
    let prod = page.rsp_prod();
    let used = outstanding(prod, cons)?;
    let n = (XENSTORE_RING_SIZE - used).min(data.len());
    page.full_barrier();
    let start = mask_xenstore_idx(prod);
    let first = n.min(XENSTORE_RING_SIZE - start);
    page.write_rsp(start, &data[..first]);
    page.write_rsp(0, &data[first..n]);
    page.write_barrier();
    page.set_rsp_prod(prod.wrapping_add(n as u32));
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Guest side: append request bytes (what a frontend does).
    fn guest_send(p: &mut XenstoreDomainInterface, data: &[u8]) -> usize {
        let used = p.req_prod.wrapping_sub(p.req_cons) as usize;
        let n = (XENSTORE_RING_SIZE - used).min(data.len());
        for (i, &b) in data[..n].iter().enumerate() {
            p.req[mask_xenstore_idx(p.req_prod.wrapping_add(i as u32))] = b;
        }
        p.req_prod = p.req_prod.wrapping_add(n as u32);
        n
    }

    /// Guest side: take all response bytes.
    fn guest_recv(p: &mut XenstoreDomainInterface) -> Vec<u8> {
        let mut v = Vec::new();
        while p.rsp_cons != p.rsp_prod {
            v.push(p.rsp[mask_xenstore_idx(p.rsp_cons)]);
            p.rsp_cons = p.rsp_cons.wrapping_add(1);
        }
        v
    }

    fn page_at(idx: u32) -> XenstoreDomainInterface {
        XenstoreDomainInterface {
            req_cons: idx,
            req_prod: idx,
            rsp_cons: idx,
            rsp_prod: idx,
            ..Default::default()
        }
    }

    #[test]
    fn requests_across_the_wrap() {
        // Start 10 bytes before the end of the ring and 10 before u32 overflow.
        for start in [1014u32, u32::MAX - 9] {
            let mut p = page_at(start);
            let data: Vec<u8> = (0..100u8).collect();
            assert_eq!(guest_send(&mut p, &data), 100);
            assert_eq!(req_available(&p), Ok(100));
            let mut out = [0u8; 2048];
            assert_eq!(read_requests(&mut p, &mut out), Ok(100));
            assert_eq!(&out[..100], &data[..]);
            assert_eq!(p.req_cons, start.wrapping_add(100));
            assert_eq!(read_requests(&mut p, &mut out), Ok(0));
        }
    }

    #[test]
    fn partial_read_respects_the_buffer() {
        let mut p = page_at(1000);
        guest_send(&mut p, &[7; 50]);
        let mut out = [0u8; 20];
        assert_eq!(read_requests(&mut p, &mut out), Ok(20));
        assert_eq!(req_available(&p), Ok(30));
    }

    #[test]
    fn full_request_ring_is_read_whole() {
        let mut p = page_at(500);
        let data: Vec<u8> = (0..XENSTORE_RING_SIZE).map(|i| i as u8).collect();
        assert_eq!(guest_send(&mut p, &data), XENSTORE_RING_SIZE);
        assert_eq!(guest_send(&mut p, b"x"), 0, "ring full");
        let mut out = vec![0u8; 4096];
        assert_eq!(read_requests(&mut p, &mut out), Ok(XENSTORE_RING_SIZE));
        assert_eq!(&out[..XENSTORE_RING_SIZE], &data[..]);
    }

    #[test]
    fn malicious_producer_index_is_an_error_not_an_overread() {
        let mut p = page_at(0);
        p.req_prod = XENSTORE_RING_SIZE as u32 + 1;
        let mut out = vec![0u8; 8192];
        assert_eq!(
            read_requests(&mut p, &mut out),
            Err(ProtocolError::BadRingIndex {
                prod: 1025,
                cons: 0
            })
        );
        assert_eq!(p.req_cons, 0, "nothing consumed");
        // A producer "behind" the consumer is a huge distance too.
        p.req_prod = u32::MAX;
        assert!(read_requests(&mut p, &mut out).is_err());
        // Exactly one ring outstanding is legal.
        p.req_prod = XENSTORE_RING_SIZE as u32;
        assert_eq!(read_requests(&mut p, &mut out), Ok(XENSTORE_RING_SIZE));
    }

    #[test]
    fn responses_across_the_wrap_and_up_to_free_space() {
        let mut p = page_at(1020);
        let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
        assert_eq!(rsp_free(&p), Ok(XENSTORE_RING_SIZE));
        assert_eq!(write_responses(&mut p, &data), Ok(XENSTORE_RING_SIZE));
        assert_eq!(rsp_free(&p), Ok(0));
        assert_eq!(write_responses(&mut p, &data[1024..]), Ok(0), "ring full");
        let got = guest_recv(&mut p);
        assert_eq!(&got[..], &data[..1024]);
        assert_eq!(write_responses(&mut p, &data[1024..]), Ok(476));
        assert_eq!(guest_recv(&mut p), &data[1024..]);
    }

    #[test]
    fn malicious_response_consumer_is_an_error() {
        let mut p = page_at(0);
        p.rsp_cons = 5; // consumer ahead of the producer
        assert!(rsp_free(&p).is_err());
        assert!(write_responses(&mut p, b"abc").is_err());
        assert_eq!(p.rsp_prod, 0);
    }
}
