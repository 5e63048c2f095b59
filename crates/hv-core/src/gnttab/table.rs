//! One domain's grant table as a granter: its size and Xen's active entries.
//!
//! Rules (Xen 4.1 `common/grant_table.c`):
//!
//! * A table starts with 1 frame (512 entries) and grows, never shrinks, with
//!   `GNTTABOP_setup_table` up to `F` frames ([`DEFAULT_MAX_NR_GRANT_FRAMES`] by
//!   default); asking for more is `GNTST_general_error`. Refs at or above
//!   `nr_frames * 512` are `GNTST_bad_gntref`.
//! * An active entry is *pinned* while any of its four counters (host read, host
//!   write, device read, device write) is non-zero. The first pin checks the
//!   shared entry (type `GTF_permit_access`, no `GTF_sub_page` for maps, `domid`
//!   = the pinning domain, not `GTF_readonly` for a write pin), sets
//!   `GTF_reading` (and `GTF_writing` for a write pin) by compare-and-swap and
//!   captures `frame`; the first *write* pin of an entry already pinned for
//!   reading does the same check for `GTF_readonly` and sets `GTF_writing`.
//! * While pinned, only the pinning domain may add pins, and no counter may go
//!   past 0x80 (Xen refuses when any counter has bit 7 set).
//! * Dropping the last write pin clears `GTF_writing`; dropping the last pin of
//!   any kind clears `GTF_reading`.
//! * Only version 1 exists here: `set_version(1)` succeeds, `set_version(2)` is
//!   `-ENOSYS` (allowed by §18), anything else `-EINVAL`.

use core::fmt;
use core::ops::Range;

use xen_abi::domid::DomId;
use xen_abi::errno::Errno;
use xen_abi::grant::{
    DEFAULT_MAX_NR_GRANT_FRAMES, GRANT_ENTRIES_V1_PER_PAGE, GTF_INVALID, GTF_PERMIT_ACCESS,
    GTF_READING, GTF_READONLY, GTF_SUB_PAGE, GTF_TYPE_MASK, GTF_WRITING, GrantEntryV1,
};
use xen_abi::types::GrantRef;

use super::GntError;
use super::ops::FrameOwnership;
use super::shared::{CMPXCHG_ATTEMPTS, EntryHeader, SharedEntries};
use crate::addr::Mfn;

/// Pin counters of one active entry (Xen's `GNTPIN_*` bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, zerocopy::FromZeros)]
pub struct Pins {
    /// Read-only host (CPU) mappings and read-only copy pins.
    pub host_read: u8,
    /// Writable host mappings and writable copy pins.
    pub host_write: u8,
    /// Read-only device mappings.
    pub dev_read: u8,
    /// Writable device mappings.
    pub dev_write: u8,
}

impl Pins {
    /// No pins.
    pub const NONE: Pins = Pins {
        host_read: 0,
        host_write: 0,
        dev_read: 0,
        dev_write: 0,
    };

    /// Whether any counter is non-zero (`GTF_reading` must be set).
    pub const fn is_pinned(&self) -> bool {
        self.host_read | self.host_write | self.dev_read | self.dev_write != 0
    }

    /// Whether a write counter is non-zero (`GTF_writing` must be set).
    pub const fn has_writers(&self) -> bool {
        self.host_write | self.dev_write != 0
    }

    /// The sum of the counters.
    pub const fn total(&self) -> u32 {
        self.host_read as u32
            + self.host_write as u32
            + self.dev_read as u32
            + self.dev_write as u32
    }

    /// Xen's overflow guard: a counter with bit 7 set refuses further pins.
    const fn near_overflow(&self) -> bool {
        (self.host_read | self.host_write | self.dev_read | self.dev_write) & 0x80 != 0
    }

    /// The pins one map or copy adds: a host and/or a device pin, each read or
    /// write.
    pub const fn for_access(host: bool, device: bool, readonly: bool) -> Pins {
        let h = host as u8;
        let d = device as u8;
        if readonly {
            Pins {
                host_read: h,
                host_write: 0,
                dev_read: d,
                dev_write: 0,
            }
        } else {
            Pins {
                host_read: 0,
                host_write: h,
                dev_read: 0,
                dev_write: d,
            }
        }
    }

    fn add(&mut self, d: Pins) {
        self.host_read += d.host_read;
        self.host_write += d.host_write;
        self.dev_read += d.dev_read;
        self.dev_write += d.dev_write;
    }

    fn sub(&mut self, d: Pins) {
        debug_assert!(
            self.host_read >= d.host_read
                && self.host_write >= d.host_write
                && self.dev_read >= d.dev_read
                && self.dev_write >= d.dev_write,
            "pin underflow"
        );
        self.host_read = self.host_read.saturating_sub(d.host_read);
        self.host_write = self.host_write.saturating_sub(d.host_write);
        self.dev_read = self.dev_read.saturating_sub(d.dev_read);
        self.dev_write = self.dev_write.saturating_sub(d.dev_write);
    }
}

/// Xen's private shadow of one grant entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, zerocopy::FromZeros)]
struct ActiveEntry {
    pins: Pins,
    /// The domain that pinned it (meaningful while pinned).
    domid: DomId,
    /// The frame captured at the first pin (meaningful while pinned).
    frame: u32,
}

impl ActiveEntry {
    const IDLE: ActiveEntry = ActiveEntry {
        pins: Pins::NONE,
        domid: 0,
        frame: 0,
    };
}

/// One domain's grant table as a granter: `F` frames at most (32, Xen 4.1's
/// default, unless chosen otherwise), i.e. `F * 512` active entries.
///
/// About 12 bytes per entry (192 KiB for `F = 32`): keep it in the domain
/// structure, not on a small stack (build it in place with [`new`](Self::new)
/// as a `const` or [`reset`](Self::reset)).
///
/// All-zero bytes are a valid table (`FromZeros`): a hypervisor may allocate
/// it zeroed in place and then [`reset`](Self::reset) it.
#[derive(Clone, zerocopy::FromZeros)]
pub struct GrantTable<const F: usize = { DEFAULT_MAX_NR_GRANT_FRAMES as usize }> {
    dom: DomId,
    nr_frames: u32,
    /// Number of entries whose pins are non-zero.
    nr_pinned: u32,
    active: [[ActiveEntry; GRANT_ENTRIES_V1_PER_PAGE]; F],
}

impl<const F: usize> fmt::Debug for GrantTable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantTable")
            .field("dom", &self.dom)
            .field("nr_frames", &self.nr_frames)
            .field("nr_pinned", &self.nr_pinned)
            .finish_non_exhaustive()
    }
}

impl<const F: usize> GrantTable<F> {
    /// The table of domain `dom`: one frame, nothing pinned.
    pub const fn new(dom: DomId) -> Self {
        const { assert!(F >= 1 && F <= (u32::MAX as usize) / GRANT_ENTRIES_V1_PER_PAGE) };
        Self {
            dom,
            nr_frames: 1,
            nr_pinned: 0,
            active: [[ActiveEntry::IDLE; GRANT_ENTRIES_V1_PER_PAGE]; F],
        }
    }

    /// Re-initialises in place for domain `dom` (as [`new`](Self::new)).
    pub fn reset(&mut self, dom: DomId) {
        self.dom = dom;
        self.nr_frames = 1;
        self.nr_pinned = 0;
        for frame in self.active.iter_mut() {
            frame.fill(ActiveEntry::IDLE);
        }
    }

    /// The granting domain.
    pub const fn dom(&self) -> DomId {
        self.dom
    }

    /// Frames of the table in use (at least 1).
    pub const fn nr_frames(&self) -> u32 {
        self.nr_frames
    }

    /// The most frames the table may grow to (`F`).
    pub const fn max_nr_frames(&self) -> u32 {
        F as u32
    }

    /// Grant refs `0..nr_entries()` are valid.
    pub const fn nr_entries(&self) -> u32 {
        self.nr_frames * GRANT_ENTRIES_V1_PER_PAGE as u32
    }

    /// `GNTTABOP_query_size`: `(nr_frames, max_nr_frames)`.
    pub const fn query_size(&self) -> (u32, u32) {
        (self.nr_frames, F as u32)
    }

    /// `GNTTABOP_setup_table` for `nr_frames` frames.
    ///
    /// More than the maximum is [`GntError::TooManyFrames`]. If the table must
    /// grow, `grow` is called once with the indices of the new frames; the
    /// hypervisor allocates, clears and shares them with the domain and returns
    /// `true`, or returns `false` (having freed what it allocated) and the table
    /// keeps its size ([`GntError::NoMemory`]). The table never shrinks.
    ///
    /// Returns the number of frames whose MFNs go to `frame_list`: frames
    /// `0..nr_frames` as asked (possibly fewer than the table has).
    pub fn setup_table(
        &mut self,
        nr_frames: u32,
        grow: impl FnOnce(Range<u32>) -> bool,
    ) -> Result<u32, GntError> {
        if nr_frames > F as u32 {
            return Err(GntError::TooManyFrames);
        }
        if nr_frames > self.nr_frames {
            if !grow(self.nr_frames..nr_frames) {
                return Err(GntError::NoMemory);
            }
            self.nr_frames = nr_frames;
        }
        Ok(nr_frames)
    }

    /// `GNTTABOP_set_version`: 1 is accepted (and is the current version), 2 is
    /// not implemented (`-ENOSYS`), anything else is `-EINVAL`.
    pub const fn set_version(&self, version: u32) -> Result<(), Errno> {
        match version {
            1 => Ok(()),
            2 => Err(Errno::ENOSYS),
            _ => Err(Errno::EINVAL),
        }
    }

    /// `GNTTABOP_get_version`: always 1.
    pub const fn get_version(&self) -> u32 {
        1
    }

    /// Whether any entry is pinned (by a mapping or a copy in flight): the
    /// domain's memory cannot be released while this is true.
    pub const fn has_active_pins(&self) -> bool {
        self.nr_pinned != 0
    }

    /// The number of pinned entries.
    pub const fn nr_pinned(&self) -> u32 {
        self.nr_pinned
    }

    /// The pins of `gref`, or `None` if the ref is beyond the table.
    pub fn pins(&self, gref: GrantRef) -> Option<Pins> {
        self.entry(gref).map(|a| a.pins)
    }

    /// `(grantee, frame)` of `gref` while it is pinned.
    pub fn active(&self, gref: GrantRef) -> Option<(DomId, Mfn)> {
        self.entry(gref)
            .filter(|a| a.pins.is_pinned())
            .map(|a| (a.domid, Mfn(u64::from(a.frame))))
    }

    fn entry(&self, gref: GrantRef) -> Option<&ActiveEntry> {
        let i = self.index(gref).ok()?;
        Some(&self.active[i / GRANT_ENTRIES_V1_PER_PAGE][i % GRANT_ENTRIES_V1_PER_PAGE])
    }

    fn index(&self, gref: GrantRef) -> Result<usize, GntError> {
        if gref < self.nr_entries() {
            Ok(gref as usize)
        } else {
            Err(GntError::BadGntref)
        }
    }

    fn slot_mut(&mut self, i: usize) -> &mut ActiveEntry {
        &mut self.active[i / GRANT_ENTRIES_V1_PER_PAGE][i % GRANT_ENTRIES_V1_PER_PAGE]
    }

    /// Takes the pins `add` on `gref` for domain `ldom` (a map or a copy), as
    /// described in the module rules, and returns the active frame.
    ///
    /// `mapping` selects the map-only check that the entry is not a sub-page
    /// grant. On the first pin the frame must belong to this table's domain
    /// according to `owners`.
    pub(super) fn pin<S, O>(
        &mut self,
        shared: &mut S,
        owners: &O,
        gref: GrantRef,
        ldom: DomId,
        add: Pins,
        mapping: bool,
    ) -> Result<Mfn, GntError>
    where
        S: SharedEntries + ?Sized,
        O: FrameOwnership + ?Sized,
    {
        let i = self.index(gref)?;
        let owner = self.dom;
        let act = *self.slot_mut(i);
        let pinned = act.pins.is_pinned();
        if pinned && (act.domid != ldom || act.pins.near_overflow()) {
            return Err(GntError::PinConflict);
        }
        let readonly = !add.has_writers();
        let mut new = act;
        if !pinned || (!readonly && !act.pins.has_writers()) {
            set_status(shared, gref, ldom, readonly, pinned, mapping)?;
            if !pinned {
                let frame = shared.read(gref).frame;
                if !owners.owns(owner, Mfn(u64::from(frame))) {
                    let mut bits = GTF_READING;
                    if !readonly {
                        bits |= GTF_WRITING;
                    }
                    shared.clear_flags(gref, bits);
                    return Err(GntError::FrameNotOwned);
                }
                new.domid = ldom;
                new.frame = frame;
            }
        }
        new.pins.add(add);
        *self.slot_mut(i) = new;
        if !pinned && new.pins.is_pinned() {
            self.nr_pinned += 1;
        }
        Ok(Mfn(u64::from(new.frame)))
    }

    /// Drops the pins `drop` of `gref`, clearing `GTF_writing` when the last
    /// write pin goes (and `drop` was a write) and `GTF_reading` when the last
    /// pin goes.
    pub(super) fn unpin<S: SharedEntries + ?Sized>(
        &mut self,
        shared: &mut S,
        gref: GrantRef,
        drop: Pins,
    ) {
        let Ok(i) = self.index(gref) else {
            debug_assert!(false, "unpin of a ref beyond the table");
            return;
        };
        let act = self.slot_mut(i);
        let was_pinned = act.pins.is_pinned();
        act.pins.sub(drop);
        let pins = act.pins;
        let mut bits = 0;
        if drop.has_writers() && !pins.has_writers() {
            bits |= GTF_WRITING;
        }
        if !pins.is_pinned() {
            bits |= GTF_READING;
        }
        if bits != 0 {
            shared.clear_flags(gref, bits);
        }
        if was_pinned && !pins.is_pinned() {
            self.nr_pinned -= 1;
        }
    }

    /// `GNTTABOP_dump_table`: a description of every entry that the guest has
    /// set to a non-invalid type or that is pinned, in gref order, for the log.
    pub fn dump<'a, S: SharedEntries + ?Sized>(
        &'a self,
        shared: &'a S,
    ) -> impl Iterator<Item = DumpEntry> + 'a {
        (0..self.nr_entries()).filter_map(move |gref| {
            let a = self.entry(gref)?;
            let entry = shared.read(gref);
            let pinned = a.pins.is_pinned();
            if entry.flags & GTF_TYPE_MASK == GTF_INVALID && !pinned {
                return None;
            }
            Some(DumpEntry {
                gref,
                entry,
                pins: a.pins,
                active: pinned.then(|| (a.domid, Mfn(u64::from(a.frame)))),
            })
        })
    }
}

/// One line of [`GrantTable::dump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpEntry {
    /// The grant ref.
    pub gref: GrantRef,
    /// The shared entry as the guest has it now.
    pub entry: GrantEntryV1,
    /// The active pins.
    pub pins: Pins,
    /// `(grantee, frame)` while pinned.
    pub active: Option<(DomId, Mfn)>,
}

impl fmt::Display for DumpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.entry;
        let (flags, domid, frame) = (e.flags, e.domid, e.frame);
        write!(
            f,
            "[{:5}] flags {:#06x} dom {:5} frame {:#010x}",
            self.gref, flags, domid, frame
        )?;
        match self.active {
            Some((d, mfn)) => write!(
                f,
                " | active dom {:5} mfn {:#x} pins hr {} hw {} dr {} dw {}",
                d,
                mfn.0,
                self.pins.host_read,
                self.pins.host_write,
                self.pins.dev_read,
                self.pins.dev_write
            ),
            None => f.write_str(" | idle"),
        }
    }
}

/// Sets `GTF_reading` (and `GTF_writing` unless `readonly`) on the shared
/// entry by compare-and-swap, checking the entry on each attempt.
fn set_status<S: SharedEntries + ?Sized>(
    shared: &mut S,
    gref: GrantRef,
    ldom: DomId,
    readonly: bool,
    pinned: bool,
    mapping: bool,
) -> Result<(), GntError> {
    let mask = if mapping {
        GTF_TYPE_MASK | GTF_SUB_PAGE
    } else {
        GTF_TYPE_MASK
    };
    let mut cur = EntryHeader::of(&shared.read(gref));
    for _ in 0..CMPXCHG_ATTEMPTS {
        if !pinned && (cur.flags & mask != GTF_PERMIT_ACCESS || cur.domid != ldom) {
            return Err(GntError::NotGranted);
        }
        let mut new = cur.flags | GTF_READING;
        if !readonly {
            if cur.flags & GTF_READONLY != 0 {
                return Err(GntError::ReadonlyGrant);
            }
            new |= GTF_WRITING;
        }
        match shared.cmpxchg_flags(gref, cur, new) {
            Ok(()) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
    Err(GntError::Unstable)
}
