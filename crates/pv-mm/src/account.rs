//! Per-domain memory accounting: Xen's `tot_pages` and `max_pages`, owned by
//! the engine so that the count moves exactly where frames change hands.
//!
//! # Invariants
//!
//! * A frame is counted in its owner's `tot_pages` from the moment
//!   [`Mm::assign`] gives it to the domain until the moment its last total
//!   reference goes (the frame is free again): the same two places where Xen's
//!   `assign_pages` and `free_domheap_pages` move `d->tot_pages`. Giving a
//!   frame back (`decrease_reservation`, [`Mm::release`]) drops only the
//!   allocation reference, so a frame that stays referenced elsewhere (pinned,
//!   mapped by another domain, held by a grant) stays counted until it is
//!   really freed.
//! * Frames Oxen gives a domain for its own use with it (shared_info, the
//!   grant-table frames: [`Mm::assign_extra`]) are `PGC_extra` and never
//!   counted, in or out (Xen counts shared_info as a xenheap page, not in
//!   `tot_pages`). `DOMID_XEN`'s frames have no account.
//! * `tot_pages <= max_pages` always: [`Mm::assign`] refuses a frame that would
//!   pass the limit (`-E2BIG`, Xen's over-allocation failure) and
//!   [`Mm::set_max_pages`] refuses a limit below what the domain holds.
//! * `tot_pages` equals the number of frames the domain owns that are not
//!   `PGC_extra`; [`Mm::audit`](crate::Mm::audit) recounts it. It is zero
//!   once the domain's last frame is free; [`Mm::close_account`] (domain
//!   destruction) reports what was left and resets the account for the next
//!   domain of that id.
//!
//! The hypervisor gives the engine one [`DomainPages`] per domid it may use
//! (`accounts[domid]`); an ordinary domain without one cannot be given frames.

use core::sync::atomic::{AtomicU32, Ordering};

use xen_abi::domid::{DOMID_FIRST_RESERVED, DomId};
use xen_abi::errno::Errno;

use crate::engine::Mm;
use crate::machine::Machine;

/// One domain's page account. The fields are atomics so that the table can be
/// shared; the engine's caller serialises every update.
#[derive(Debug, Default)]
pub struct DomainPages {
    tot: AtomicU32,
    max: AtomicU32,
}

impl DomainPages {
    /// An empty account: no pages, a limit of 0.
    pub const fn new() -> Self {
        Self {
            tot: AtomicU32::new(0),
            max: AtomicU32::new(0),
        }
    }

    /// Pages counted now.
    pub fn tot_pages(&self) -> u32 {
        self.tot.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn max_pages(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// Counts one more page if the limit allows it.
    pub(crate) fn charge(&self) -> Result<(), Errno> {
        let tot = self.tot_pages();
        if tot >= self.max_pages() {
            return Err(Errno::E2BIG);
        }
        self.tot.store(tot + 1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts one page less (a counted frame was freed). Saturates: an
    /// account closed too early must not wrap (the audit reports the
    /// mismatch; no guest can make the hypervisor panic here).
    pub(crate) fn uncharge(&self) {
        let tot = self.tot_pages();
        self.tot.store(tot.saturating_sub(1), Ordering::Relaxed);
    }
}

impl<M: Machine> Mm<'_, M> {
    /// The account of `domid`: `None` for the reserved ids (`DOMID_XEN`'s
    /// frames are not counted) and for domids the hypervisor gave no account.
    pub fn account(&self, domid: DomId) -> Option<&DomainPages> {
        if domid >= DOMID_FIRST_RESERVED {
            return None;
        }
        self.accounts.get(usize::from(domid))
    }

    /// Frames counted for `domid` (Xen's `tot_pages`); 0 without an account.
    pub fn tot_pages(&self, domid: DomId) -> u32 {
        self.account(domid).map_or(0, DomainPages::tot_pages)
    }

    /// The most frames `domid` may have counted (Xen's `max_pages`).
    pub fn max_pages(&self, domid: DomId) -> u32 {
        self.account(domid).map_or(0, DomainPages::max_pages)
    }

    /// Sets `domid`'s limit (`XEN_DOMCTL_max_mem`). As Xen, the limit cannot go
    /// below what the domain holds (`-EINVAL`), nor exist without an account
    /// (`-EINVAL`).
    pub fn set_max_pages(&self, domid: DomId, max: u32) -> Result<(), Errno> {
        let a = self.account(domid).ok_or(Errno::EINVAL)?;
        if max < a.tot_pages() {
            return Err(Errno::EINVAL);
        }
        a.max.store(max, Ordering::Relaxed);
        Ok(())
    }

    /// Ends `domid`'s account (its last frame is gone): returns the pages
    /// still counted, which must be 0 (anything else is an accounting error for
    /// the caller to report), and resets the account to empty with a limit of
    /// 0 for the next domain of that id.
    pub fn close_account(&self, domid: DomId) -> u32 {
        let Some(a) = self.account(domid) else {
            return 0;
        };
        let left = a.tot_pages();
        a.tot.store(0, Ordering::Relaxed);
        a.max.store(0, Ordering::Relaxed);
        left
    }
}
