//! Memory management: Oxen's virtual layout, the map cache, the machine frame
//! allocator, the frame table and the heap.

pub mod frame_table;
pub mod frames;
pub mod heap;
pub mod hvmap;
pub mod layout;
pub mod low_l3;
pub mod m2p;
pub mod mapcache;
pub mod ptwr;
pub mod pv;

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static AUDIT: AtomicBool = AtomicBool::new(false);
static AUDITS: AtomicU32 = AtomicU32::new(0);
static ACCOUNTING_ERRORS: AtomicU32 = AtomicU32::new(0);
/// `mm_audit_every`: recount after every Nth MMU hypercall.
static AUDIT_EVERY: AtomicU32 = AtomicU32::new(1);
/// MMU hypercalls since boot (counted only with `mm_audit`).
static AUDIT_CALLS: AtomicU32 = AtomicU32::new(0);

/// Turns on the `mm_audit` recount after every `every`-th MMU hypercall
/// (`every` >= 1; 0 counts as 1).
pub fn enable_audit(on: bool, every: u32) {
    AUDIT.store(on, Ordering::Relaxed);
    AUDIT_EVERY.store(every.max(1), Ordering::Relaxed);
}

/// With `mm_audit` on: counts an MMU hypercall and says whether this one
/// is recounted (every `mm_audit_every`-th).
pub fn audit_due() -> bool {
    let n = AUDIT_CALLS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    n.is_multiple_of(AUDIT_EVERY.load(Ordering::Relaxed))
}

/// Whether `mm_audit` is on.
pub fn audit_enabled() -> bool {
    AUDIT.load(Ordering::Relaxed)
}

/// Counts a passed audit.
pub fn count_audit() {
    AUDITS.fetch_add(1, Ordering::Relaxed);
}

/// Audits passed so far.
pub fn audits_passed() -> u32 {
    AUDITS.load(Ordering::Relaxed)
}

/// Counts a domain destroyed with its page account not at zero (an Oxen
/// bug: `mm_audit` fails on it).
pub fn count_accounting_error() {
    ACCOUNTING_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Domains destroyed so far with their page account not at zero.
pub fn accounting_errors() -> u32 {
    ACCOUNTING_ERRORS.load(Ordering::Relaxed)
}
