//! Access to the shared `grant_entry_v1` records (XEN-PV-ABI.md §9.1).
//!
//! The records live in frames the granting guest writes concurrently, so every
//! access goes through [`SharedEntries`]: one snapshot read, a compare-and-swap
//! of the flags guarded by the whole (flags, domid) word, and an atomic clear of
//! flag bits. The hypervisor implements it on the real frames with `lock
//! cmpxchg` on the first 32-bit word of the entry and `lock and` for clears.

use xen_abi::domid::DomId;
use xen_abi::grant::{GTF_READING, GTF_WRITING, GrantEntryV1};
use xen_abi::types::GrantRef;

/// How many times a compare-and-swap on a shared entry is attempted before the
/// guest is deemed to be racing on purpose (Xen: the first try plus 4 retries).
pub const CMPXCHG_ATTEMPTS: usize = 5;

/// The first 32-bit word of a `grant_entry_v1`: the part Xen compares and swaps
/// as one unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryHeader {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain granted access.
    pub domid: DomId,
}

impl EntryHeader {
    /// The header of `e`.
    pub const fn of(e: &GrantEntryV1) -> Self {
        Self {
            flags: e.flags,
            domid: e.domid,
        }
    }
}

/// A granting domain's shared grant entries, as the guest currently has them.
///
/// The operations only pass grant refs below the table's entry count
/// (`nr_frames * 512`); an implementation must cover at least that many.
pub trait SharedEntries {
    /// A snapshot of entry `gref`. The header (flags, domid) must be read as one
    /// 32-bit load so that the pair is consistent.
    fn read(&self, gref: GrantRef) -> GrantEntryV1;

    /// Atomically: if the header of `gref` still equals `old`, set its flags to
    /// `new_flags` (domid unchanged) and return `Ok`; otherwise change nothing
    /// and return the header actually found.
    fn cmpxchg_flags(
        &mut self,
        gref: GrantRef,
        old: EntryHeader,
        new_flags: u16,
    ) -> Result<(), EntryHeader>;

    /// Atomically clears `bits` in the flags of `gref` (Xen's `clear_bit`).
    fn clear_flags(&mut self, gref: GrantRef, bits: u16);
}

/// Plain memory (no concurrency): tests, and any view the caller already holds
/// exclusively. Refs beyond the slice read as an invalid entry and are never
/// written.
impl SharedEntries for [GrantEntryV1] {
    fn read(&self, gref: GrantRef) -> GrantEntryV1 {
        usize::try_from(gref)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .unwrap_or_default()
    }

    fn cmpxchg_flags(
        &mut self,
        gref: GrantRef,
        old: EntryHeader,
        new_flags: u16,
    ) -> Result<(), EntryHeader> {
        let Some(e) = usize::try_from(gref).ok().and_then(|i| self.get_mut(i)) else {
            return Err(EntryHeader::default());
        };
        let cur = EntryHeader::of(e);
        if cur == old {
            e.flags = new_flags;
            Ok(())
        } else {
            Err(cur)
        }
    }

    fn clear_flags(&mut self, gref: GrantRef, bits: u16) {
        if let Some(e) = usize::try_from(gref).ok().and_then(|i| self.get_mut(i)) {
            e.flags &= !bits;
        }
    }
}

/// The granting guest's side of revoking an access grant (§9.1): read the
/// flags; if `GTF_reading` or `GTF_writing` is set the grant is in use and stays
/// (returns `Err(flags)`); otherwise `cmpxchg(flags, old, 0)`, retried while the
/// guest's own entry changes under it (bounded by [`CMPXCHG_ATTEMPTS`]; a
/// persistent change is reported as `Err` with the last flags seen).
///
/// This is what a PV guest's `gnttab_end_foreign_access_ref` does; the tests use
/// it to show that a mapped grant cannot be revoked until it is unmapped.
pub fn guest_end_access<S: SharedEntries + ?Sized>(
    shared: &mut S,
    gref: GrantRef,
) -> Result<(), u16> {
    let mut cur = EntryHeader::of(&shared.read(gref));
    for _ in 0..CMPXCHG_ATTEMPTS {
        if cur.flags & (GTF_READING | GTF_WRITING) != 0 {
            return Err(cur.flags);
        }
        match shared.cmpxchg_flags(gref, cur, 0) {
            Ok(()) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
    Err(cur.flags)
}
