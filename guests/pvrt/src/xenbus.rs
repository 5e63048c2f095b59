//! The guest's xenstore connection (XEN-PV-ABI.md §13): the store ring page
//! (`start_info.store_mfn`, mapped by the guest) and its event channel
//! (`start_info.store_evtchn`), driven by the pure [`client`] logic.
//!
//! - [`ring`]: the byte-stream rings (shared with [`crate::xencons`]);
//! - [`wire`]: message encoding/decoding, `XS_ERROR` names ([`XsError`]), the
//!   watch-event queue;
//! - [`client`]: requests, reply matching, watches, transactions;
//! - here: [`StoreRing`], the [`Transport`] over the shared page, which
//!   notifies `store_evtchn` after moving bytes and sleeps with
//!   `SCHEDOP_block` until the daemon moves some; [`connect`]; and
//!   [`wait_until`], the lost-wake-up-free way to sleep on any ring.
//!
//! Preconditions: events are set up (`pvrt::events::init` done, so the upcall
//! clears pending ports) and, for timeouts, VIRQ_TIMER is bound (the timeout
//! is a `set_timer_op` deadline whose event ends the block).

pub mod client;
pub mod ring;
pub mod wire;

use core::mem::offset_of;
use core::sync::atomic::{AtomicU8, AtomicU32};

use xen_abi::errno::Errno;
use xen_abi::evtchn::{EVTCHNOP_UNMASK, EvtchnUnmask};
use xen_abi::mm::{PAGE_ACCESSED, PAGE_DIRTY, PAGE_PRESENT, PAGE_RW, UVMF_INVLPG, pte_from_mfn};
use xen_abi::xenstore::{XENSTORE_RING_SIZE, XenstoreDomainInterface};

pub use client::{Client, Transport, Tx};
pub use ring::ByteRing;
pub use wire::{WatchEvent, XsError};

use crate::StartInfo;

/// PTE bits of a present, writable, accessed, dirty kernel mapping.
pub const PTE_RW: u64 = PAGE_PRESENT | PAGE_RW | PAGE_ACCESSED | PAGE_DIRTY;

/// Maps machine frame `mfn` read-write at `va` (a page whose L1 exists, e.g.
/// the bootstrap region's padding, §4.3).
pub fn map_frame(va: u32, mfn: u32) -> Result<u32, Errno> {
    crate::mm::update_va_mapping(va, pte_from_mfn(u64::from(mfn), PTE_RW), UVMF_INVLPG)
}

/// Unmasks `port` (`EVTCHNOP_unmask`), so its events wake `SCHEDOP_block`.
pub fn unmask(port: u32) -> Result<u32, Errno> {
    crate::events::op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port })
}

/// Sleeps until `ready` returns `Some`, without losing a wake-up: events are
/// masked while `ready` is checked a last time, and `SCHEDOP_block` unmasks
/// and sleeps in one step (returning at once if an event is already pending).
/// Events are enabled again when it returns.
pub fn wait_until<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = ready() {
            return v;
        }
        crate::events::disable();
        if let Some(v) = ready() {
            crate::events::enable();
            return v;
        }
        // Unmasks events; returns when one is pending.
        let _ = crate::time::block();
    }
}

/// Views `len` bytes at `va` as shared bytes.
///
/// # Safety
/// `va..va + len` must stay mapped read-write for the guest's life.
pub(crate) unsafe fn shared_bytes(va: u32, len: usize) -> &'static [AtomicU8] {
    // SAFETY: the caller vouches for the mapping; AtomicU8 has u8's layout
    // and atomics are what bytes written by another domain must be read as.
    unsafe { core::slice::from_raw_parts(va as *const AtomicU8, len) }
}

/// Views the u32 at `va` as a shared index.
///
/// # Safety
/// As for [`shared_bytes`]; `va` is 4-aligned.
pub(crate) unsafe fn shared_u32(va: u32) -> &'static AtomicU32 {
    // SAFETY: as above; AtomicU32 has u32's layout and alignment.
    unsafe { &*(va as *const AtomicU32) }
}

/// The store ring page and its event channel: the guest's [`Transport`].
pub struct StoreRing {
    /// Guest → daemon (`req`, `req_prod` ours, `req_cons` the daemon's).
    req: ByteRing<'static>,
    /// Daemon → guest (`rsp`, `rsp_cons` ours, `rsp_prod` the daemon's).
    rsp: ByteRing<'static>,
    port: u32,
    /// Where shared_info is mapped (for the clock), if timeouts are used.
    shared_info_va: u32,
    /// How long `wait` may go without the daemon moving (ns); `None` = ever.
    timeout_ns: Option<u64>,
}

impl StoreRing {
    /// The ring of a `xenstore_domain_interface` page mapped at `va`, whose
    /// daemon is notified on `port`.
    ///
    /// # Safety
    /// `va` must be the page-aligned address of the store page, mapped
    /// read-write for the rest of the guest's life and used by nothing else.
    pub unsafe fn new(va: u32, port: u32) -> StoreRing {
        let at = |off: usize| va + off as u32;
        type I = XenstoreDomainInterface;
        // SAFETY: the caller maps the whole page at `va`; the offsets are the
        // ABI's (xen_abi), inside the page and 4-aligned for the indices.
        let (req, rsp) = unsafe {
            (
                ByteRing::new(
                    shared_bytes(at(offset_of!(I, req)), XENSTORE_RING_SIZE),
                    shared_u32(at(offset_of!(I, req_prod))),
                    shared_u32(at(offset_of!(I, req_cons))),
                ),
                ByteRing::new(
                    shared_bytes(at(offset_of!(I, rsp)), XENSTORE_RING_SIZE),
                    shared_u32(at(offset_of!(I, rsp_prod))),
                    shared_u32(at(offset_of!(I, rsp_cons))),
                ),
            )
        };
        StoreRing {
            req: req.expect("XENSTORE_RING_SIZE is a power of two"),
            rsp: rsp.expect("XENSTORE_RING_SIZE is a power of two"),
            port,
            shared_info_va: 0,
            timeout_ns: None,
        }
    }

    /// The event channel of the connection.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Makes `wait` give up with [`XsError::TimedOut`] after `ns` without
    /// progress (`None`: wait forever). Needs shared_info mapped at
    /// `shared_info_va` (the clock) and VIRQ_TIMER bound (the wake-up).
    pub fn set_timeout(&mut self, shared_info_va: u32, ns: Option<u64>) {
        self.shared_info_va = shared_info_va;
        self.timeout_ns = ns;
    }

    /// Whether the daemon has sent bytes not yet read.
    pub fn has_input(&self) -> bool {
        self.rsp.used().is_ok_and(|n| n > 0)
    }

    fn notify(&self) {
        // A failed send (port closed) shows up as a timeout or no answer.
        let _ = crate::events::send(self.port);
    }
}

fn ring_err(_: ring::RingCorrupt) -> XsError {
    XsError::RingCorrupt
}

impl Transport for StoreRing {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError> {
        let n = self.req.produce(bytes).map_err(ring_err)?;
        if n > 0 {
            self.notify();
        }
        Ok(n)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, XsError> {
        let n = self.rsp.consume(buf).map_err(ring_err)?;
        if n > 0 {
            // The daemon may be waiting for room to answer.
            self.notify();
        }
        Ok(n)
    }

    fn wait(&mut self, want_write: bool) -> Result<(), XsError> {
        let deadline = match self.timeout_ns {
            Some(ns) => {
                let d = crate::time::now(self.shared_info_va).saturating_add(ns);
                let _ = crate::time::set_timer(d);
                Some(d)
            }
            None => None,
        };
        let (req, rsp, clock) = (self.req, self.rsp, self.shared_info_va);
        let woke = wait_until(|| {
            let readable = rsp.used().map(|n| n > 0);
            let writable = req.space().map(|n| want_write && n > 0);
            match (readable, writable) {
                (Err(_), _) | (_, Err(_)) => Some(Err(XsError::RingCorrupt)),
                (Ok(true), _) | (_, Ok(true)) => Some(Ok(())),
                _ => match deadline {
                    Some(d) if crate::time::now(clock) >= d => Some(Err(XsError::TimedOut)),
                    _ => None,
                },
            }
        });
        if deadline.is_some() {
            let _ = crate::time::set_timer(0);
        }
        woke
    }
}

/// The guest's xenstore client.
pub type XenBus = Client<StoreRing>;

/// Maps the store page (`start_info.store_mfn`) at `va`, unmasks
/// `store_evtchn` and returns a client on them. `va` must be a page whose L1
/// exists and that nothing else uses (e.g. in the bootstrap padding).
pub fn connect(si: &StartInfo, va: u32) -> Result<XenBus, Errno> {
    if si.store_mfn == 0 {
        return Err(Errno::ENODEV);
    }
    map_frame(va, si.store_mfn)?;
    unmask(si.store_evtchn)?;
    // SAFETY: the store page was just mapped read-write at `va`, which the
    // caller gives to this connection for the guest's life.
    Ok(Client::new(unsafe { StoreRing::new(va, si.store_evtchn) }))
}
