//! Slot bookkeeping of the map cache.
//!
//! The map cache lets Oxen look at any machine frame for a short while: a window
//! of `N` virtual pages (512, the pages of one L1 page table) at a fixed address
//! in the hypervisor area, each of which can be pointed at any frame. The kernel
//! writes the PTE and flushes the TLB; this module only decides which slot to
//! use and when a slot becomes free.
//!
//! * [`MapCacheSlots::acquire`] maps a single frame. Nested maps of the same frame
//!   share its slot and bump a per-slot reference count.
//! * [`MapCacheSlots::acquire_run`] maps consecutive frames into consecutive
//!   slots so that a multi-page structure is seen contiguously. A run always gets
//!   fresh slots and is released as a whole with [`MapCacheSlots::release_run`];
//!   its slots are never shared with single maps.
//! * On [`Release::Freed`] the kernel must clear the slot's PTE and `invlpg` its
//!   address before the slot can be handed out again.

use core::fmt;

use crate::addr::{Mfn, PAGE_SHIFT};

/// Slots in Oxen's map cache: the 512 entries of one PAE L1 page table.
pub const MAPCACHE_SLOTS: usize = 512;

/// The map cache as Oxen uses it.
pub type MapCache = MapCacheSlots<MAPCACHE_SLOTS>;

/// Why a map-cache call was refused. A refused call changes nothing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MapCacheError {
    /// No free slot (or, for a run, no long enough stretch of free slots).
    Exhausted,
    /// The slot index is beyond the window.
    BadSlot(usize),
    /// The slot is not mapped.
    NotMapped(usize),
    /// `release` of a slot that belongs to a run (use `release_run`).
    InRun(usize),
    /// `release_run` that does not name a whole run exactly as acquired.
    RunMismatch {
        /// First slot given.
        slot: usize,
        /// Slot count given.
        count: usize,
    },
    /// `acquire_run` of zero frames, or of frames past the largest mfn.
    BadRun,
}

impl fmt::Display for MapCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted => f.write_str("map cache exhausted"),
            Self::BadSlot(slot) => write!(f, "map cache slot {slot} out of range"),
            Self::NotMapped(slot) => write!(f, "map cache slot {slot} released but not in use"),
            Self::InRun(slot) => {
                write!(f, "map cache slot {slot} is part of a run; release the run")
            }
            Self::RunMismatch { slot, count } => write!(
                f,
                "map cache slots {slot}..{} are not a run as acquired",
                slot.saturating_add(count)
            ),
            Self::BadRun => f.write_str("bad map cache run (empty or past the last mfn)"),
        }
    }
}

impl core::error::Error for MapCacheError {}

/// What the kernel must do after [`MapCacheSlots::release`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Release {
    /// The slot is free again: clear its PTE and `invlpg` its address.
    Freed,
    /// Other users still hold the slot: leave the mapping alone.
    StillMapped {
        /// References that remain.
        refs: u16,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    Free,
    /// A single frame mapped `refs >= 1` times.
    Single {
        mfn: Mfn,
        refs: u16,
    },
    /// First slot of a run of `len` slots.
    RunHead {
        mfn: Mfn,
        len: usize,
    },
    /// A later slot of a run.
    RunTail {
        mfn: Mfn,
    },
}

/// Which of `N` map-cache slots are in use, and by which frames.
#[derive(Clone, Debug)]
pub struct MapCacheSlots<const N: usize> {
    slots: [Slot; N],
    in_use: usize,
}

impl<const N: usize> Default for MapCacheSlots<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> MapCacheSlots<N> {
    /// All slots free.
    pub const fn new() -> Self {
        Self {
            slots: [Slot::Free; N],
            in_use: 0,
        }
    }

    /// A slot mapping `mfn`. If a single map of `mfn` already exists its slot is
    /// shared and its reference count bumped (the PTE is already in place);
    /// otherwise a free slot is taken and the kernel must point its PTE at `mfn`.
    ///
    /// If the reference count of the existing slot is saturated (65535), another
    /// slot is used.
    pub fn acquire(&mut self, mfn: Mfn) -> Result<usize, MapCacheError> {
        let mut first_free = None;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            match slot {
                Slot::Single { mfn: m, refs } if *m == mfn && *refs < u16::MAX => {
                    *refs += 1;
                    return Ok(i);
                }
                Slot::Free if first_free.is_none() => {
                    first_free = Some(i);
                    if self.in_use == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        let i = first_free.ok_or(MapCacheError::Exhausted)?;
        self.slots[i] = Slot::Single { mfn, refs: 1 };
        self.in_use += 1;
        Ok(i)
    }

    /// Drops one reference to a slot obtained from [`Self::acquire`].
    pub fn release(&mut self, slot: usize) -> Result<Release, MapCacheError> {
        match self.slots.get_mut(slot) {
            None => Err(MapCacheError::BadSlot(slot)),
            Some(Slot::Free) => Err(MapCacheError::NotMapped(slot)),
            Some(Slot::RunHead { .. } | Slot::RunTail { .. }) => Err(MapCacheError::InRun(slot)),
            Some(s @ Slot::Single { refs: 1, .. }) => {
                *s = Slot::Free;
                self.in_use -= 1;
                Ok(Release::Freed)
            }
            Some(Slot::Single { refs, .. }) => {
                *refs -= 1;
                Ok(Release::StillMapped { refs: *refs })
            }
        }
    }

    /// `count` consecutive free slots mapping `first_mfn, first_mfn + 1, ...` in
    /// order; returns the first slot. The kernel must write all `count` PTEs.
    /// Runs are placed from the top of the window down, away from single maps.
    pub fn acquire_run(&mut self, first_mfn: Mfn, count: usize) -> Result<usize, MapCacheError> {
        if count == 0 {
            return Err(MapCacheError::BadRun);
        }
        let span = u64::try_from(count).map_err(|_| MapCacheError::BadRun)?;
        first_mfn
            .0
            .checked_add(span - 1)
            .ok_or(MapCacheError::BadRun)?;
        let mut free_above = 0;
        let mut start = None;
        for i in (0..N).rev() {
            if self.slots[i] == Slot::Free {
                free_above += 1;
                if free_above == count {
                    start = Some(i);
                    break;
                }
            } else {
                free_above = 0;
            }
        }
        let start = start.ok_or(MapCacheError::Exhausted)?;
        self.slots[start] = Slot::RunHead {
            mfn: first_mfn,
            len: count,
        };
        let mut mfn = first_mfn;
        for slot in &mut self.slots[start + 1..start + count] {
            mfn = Mfn(mfn.0 + 1);
            *slot = Slot::RunTail { mfn };
        }
        self.in_use += count;
        Ok(start)
    }

    /// Releases a whole run from [`Self::acquire_run`]: `first_slot` and `count`
    /// must be exactly what it returned and was given. All `count` slots become
    /// free: the kernel must clear their PTEs and `invlpg` their addresses.
    pub fn release_run(&mut self, first_slot: usize, count: usize) -> Result<(), MapCacheError> {
        match self.slots.get(first_slot) {
            None => Err(MapCacheError::BadSlot(first_slot)),
            Some(Slot::Free) => Err(MapCacheError::NotMapped(first_slot)),
            Some(&Slot::RunHead { len, .. }) if len == count => {
                self.slots[first_slot..first_slot + count].fill(Slot::Free);
                self.in_use -= count;
                Ok(())
            }
            Some(_) => Err(MapCacheError::RunMismatch {
                slot: first_slot,
                count,
            }),
        }
    }

    /// The frame a slot maps, if it is in use.
    pub fn mfn(&self, slot: usize) -> Option<Mfn> {
        match self.slots.get(slot)? {
            Slot::Free => None,
            Slot::Single { mfn, .. } | Slot::RunHead { mfn, .. } | Slot::RunTail { mfn } => {
                Some(*mfn)
            }
        }
    }

    /// References held on a slot: 0 if free, 1 for each slot of a run.
    pub fn refs(&self, slot: usize) -> u16 {
        match self.slots.get(slot) {
            None | Some(Slot::Free) => 0,
            Some(Slot::Single { refs, .. }) => *refs,
            Some(Slot::RunHead { .. } | Slot::RunTail { .. }) => 1,
        }
    }

    /// The slot of an existing single map of `mfn`, if any.
    pub fn lookup(&self, mfn: Mfn) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| matches!(s, Slot::Single { mfn: m, .. } if *m == mfn))
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Slots free.
    pub fn free_slots(&self) -> usize {
        N - self.in_use
    }

    /// The number of slots, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }
}

/// The virtual address of `slot` in a map-cache window starting at the
/// page-aligned `window_base`.
///
/// # Panics
///
/// If the address would lie beyond 4 GiB (a slot far outside any window).
pub const fn slot_va(window_base: u32, slot: usize) -> u32 {
    let offset = match (slot as u64).checked_mul(1 << PAGE_SHIFT) {
        Some(o) if o <= u32::MAX as u64 => o as u32,
        _ => panic!("map cache slot beyond 4 GiB"),
    };
    match window_base.checked_add(offset) {
        Some(va) => va,
        None => panic!("map cache slot beyond 4 GiB"),
    }
}

/// The slot whose page contains `va`, in a window of `slots` slots starting at
/// `window_base`; `None` if `va` is outside the window.
pub const fn va_slot(window_base: u32, slots: usize, va: u32) -> Option<usize> {
    if va < window_base {
        return None;
    }
    let slot = ((va - window_base) >> PAGE_SHIFT) as usize;
    if slot < slots { Some(slot) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_frames_get_distinct_slots() {
        let mut mc = MapCache::new();
        let slots: Vec<usize> = (0..100)
            .map(|i| mc.acquire(Mfn(0x1000 + i)).unwrap())
            .collect();
        let set: HashSet<usize> = slots.iter().copied().collect();
        assert_eq!(set.len(), 100);
        for (i, &s) in slots.iter().enumerate() {
            assert_eq!(mc.mfn(s), Some(Mfn(0x1000 + i as u64)));
            assert_eq!(mc.refs(s), 1);
        }
        assert_eq!(mc.in_use(), 100);
        assert_eq!(mc.free_slots(), MAPCACHE_SLOTS - 100);
        assert_eq!(mc.capacity(), 512);
    }

    #[test]
    fn same_frame_shares_a_slot() {
        let mut mc = MapCacheSlots::<8>::new();
        let a = mc.acquire(Mfn(7)).unwrap();
        let other = mc.acquire(Mfn(8)).unwrap();
        let b = mc.acquire(Mfn(7)).unwrap();
        let c = mc.acquire(Mfn(7)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, other);
        assert_eq!(mc.refs(a), 3);
        assert_eq!(mc.in_use(), 2);
        assert_eq!(mc.lookup(Mfn(7)), Some(a));
        assert_eq!(mc.lookup(Mfn(9)), None);

        assert_eq!(mc.release(a), Ok(Release::StillMapped { refs: 2 }));
        assert_eq!(mc.release(a), Ok(Release::StillMapped { refs: 1 }));
        assert_eq!(mc.mfn(a), Some(Mfn(7)));
        assert_eq!(mc.release(a), Ok(Release::Freed));
        assert_eq!(mc.mfn(a), None);
        assert_eq!(mc.refs(a), 0);
        assert_eq!(mc.in_use(), 1);
        // Releasing once more is an error and changes nothing.
        assert_eq!(mc.release(a), Err(MapCacheError::NotMapped(a)));
        assert_eq!(mc.in_use(), 1);
        assert_eq!(mc.mfn(other), Some(Mfn(8)));
    }

    #[test]
    fn freed_slot_is_reused() {
        let mut mc = MapCacheSlots::<4>::new();
        let a = mc.acquire(Mfn(1)).unwrap();
        mc.acquire(Mfn(2)).unwrap();
        assert_eq!(mc.release(a), Ok(Release::Freed));
        let c = mc.acquire(Mfn(3)).unwrap();
        assert_eq!(c, a);
        assert_eq!(mc.mfn(c), Some(Mfn(3)));
    }

    #[test]
    fn exhaustion() {
        let mut mc = MapCacheSlots::<4>::new();
        for i in 0..4 {
            mc.acquire(Mfn(i)).unwrap();
        }
        assert_eq!(mc.acquire(Mfn(99)), Err(MapCacheError::Exhausted));
        // A frame already mapped can still be shared when full.
        let s = mc.acquire(Mfn(2)).unwrap();
        assert_eq!(mc.refs(s), 2);
        assert_eq!(mc.acquire_run(Mfn(50), 1), Err(MapCacheError::Exhausted));
        mc.release(s).unwrap();
        mc.release(s).unwrap();
        assert!(mc.acquire(Mfn(99)).is_ok());
    }

    #[test]
    fn full_window_of_512() {
        let mut mc = MapCache::new();
        for i in 0..512 {
            mc.acquire(Mfn(i)).unwrap();
        }
        assert_eq!(mc.acquire(Mfn(512)), Err(MapCacheError::Exhausted));
        assert_eq!(mc.free_slots(), 0);
    }

    #[test]
    fn bad_releases_are_errors() {
        let mut mc = MapCacheSlots::<4>::new();
        assert_eq!(mc.release(0), Err(MapCacheError::NotMapped(0)));
        assert_eq!(mc.release(4), Err(MapCacheError::BadSlot(4)));
        assert_eq!(
            mc.release(usize::MAX),
            Err(MapCacheError::BadSlot(usize::MAX))
        );
        assert_eq!(mc.release_run(9, 1), Err(MapCacheError::BadSlot(9)));
        assert_eq!(mc.release_run(1, 1), Err(MapCacheError::NotMapped(1)));
        let s = mc.acquire(Mfn(5)).unwrap();
        // A single map is not a run.
        assert_eq!(
            mc.release_run(s, 1),
            Err(MapCacheError::RunMismatch { slot: s, count: 1 })
        );
        assert_eq!(mc.mfn(4), None);
        assert_eq!(mc.refs(4), 0);
        assert_eq!(mc.in_use(), 1);
    }

    #[test]
    fn runs_are_consecutive_and_whole() {
        let mut mc = MapCacheSlots::<16>::new();
        let single = mc.acquire(Mfn(0x500)).unwrap();
        let r = mc.acquire_run(Mfn(0x100), 5).unwrap();
        assert!(!(r..r + 5).contains(&single));
        for i in 0..5 {
            assert_eq!(mc.mfn(r + i), Some(Mfn(0x100 + i as u64)));
            assert_eq!(mc.refs(r + i), 1);
        }
        assert_eq!(mc.in_use(), 6);
        // Run slots are never shared with single maps.
        let s = mc.acquire(Mfn(0x102)).unwrap();
        assert!(!(r..r + 5).contains(&s));
        assert_eq!(mc.refs(r + 2), 1);
        // Slots of a run cannot be released one by one, nor partially.
        assert_eq!(mc.release(r + 1), Err(MapCacheError::InRun(r + 1)));
        assert_eq!(mc.release(r), Err(MapCacheError::InRun(r)));
        assert_eq!(
            mc.release_run(r, 4),
            Err(MapCacheError::RunMismatch { slot: r, count: 4 })
        );
        assert_eq!(
            mc.release_run(r + 1, 4),
            Err(MapCacheError::RunMismatch {
                slot: r + 1,
                count: 4
            })
        );
        assert_eq!(mc.in_use(), 7);
        assert_eq!(mc.release_run(r, 5), Ok(()));
        assert!((r..r + 5).all(|i| mc.mfn(i).is_none()));
        assert_eq!(mc.in_use(), 2);
        assert_eq!(mc.release_run(r, 5), Err(MapCacheError::NotMapped(r)));
    }

    #[test]
    fn runs_need_a_contiguous_stretch() {
        let mut mc = MapCacheSlots::<8>::new();
        // Occupy every other slot: 4 free slots, no two adjacent.
        let held: Vec<usize> = (0..8).map(|i| mc.acquire(Mfn(i)).unwrap()).collect();
        for &s in held.iter().step_by(2) {
            mc.release(s).unwrap();
        }
        assert_eq!(mc.free_slots(), 4);
        assert_eq!(mc.acquire_run(Mfn(100), 2), Err(MapCacheError::Exhausted));
        let one = mc.acquire_run(Mfn(100), 1).unwrap();
        assert_eq!(mc.mfn(one), Some(Mfn(100)));
        assert_eq!(one, 6, "runs are placed from the top");
        mc.release(held[1]).unwrap();
        assert_eq!(mc.release_run(one, 1), Ok(()));
        // Free now: 0, 1, 2, 4, 6; the only stretch of three is at the bottom.
        let r = mc.acquire_run(Mfn(200), 3).unwrap();
        assert_eq!(r, 0);
        assert_eq!(mc.acquire_run(Mfn(0), 9), Err(MapCacheError::Exhausted));
    }

    #[test]
    fn bad_runs() {
        let mut mc = MapCacheSlots::<8>::new();
        assert_eq!(mc.acquire_run(Mfn(1), 0), Err(MapCacheError::BadRun));
        assert_eq!(mc.acquire_run(Mfn(u64::MAX), 2), Err(MapCacheError::BadRun));
        assert_eq!(mc.acquire_run(Mfn(u64::MAX - 1), 2), Ok(6));
        assert_eq!(mc.mfn(7), Some(Mfn(u64::MAX)));
        assert_eq!(mc.acquire_run(Mfn(0), 8), Err(MapCacheError::Exhausted));
        assert_eq!(mc.in_use(), 2);
    }

    #[test]
    fn whole_window_run() {
        let mut mc = MapCache::new();
        assert_eq!(mc.acquire_run(Mfn(0x4000), 512), Ok(0));
        assert_eq!(mc.mfn(511), Some(Mfn(0x4000 + 511)));
        assert_eq!(mc.acquire(Mfn(1)), Err(MapCacheError::Exhausted));
        mc.release_run(0, 512).unwrap();
        assert_eq!(mc.in_use(), 0);
    }

    #[test]
    fn saturated_refcount_moves_to_another_slot() {
        let mut mc = MapCacheSlots::<2>::new();
        let s = mc.acquire(Mfn(3)).unwrap();
        for _ in 1..u16::MAX {
            assert_eq!(mc.acquire(Mfn(3)), Ok(s));
        }
        assert_eq!(mc.refs(s), u16::MAX);
        let t = mc.acquire(Mfn(3)).unwrap();
        assert_ne!(s, t);
        assert_eq!(mc.refs(t), 1);
        assert_eq!(mc.acquire(Mfn(3)), Ok(t));
        assert_eq!(mc.acquire(Mfn(4)), Err(MapCacheError::Exhausted));
        assert_eq!(
            mc.release(s),
            Ok(Release::StillMapped { refs: u16::MAX - 1 })
        );
    }

    #[test]
    fn const_construction() {
        static CACHE: MapCache = MapCache::new();
        assert_eq!(CACHE.in_use(), 0);
        let d = MapCacheSlots::<3>::default();
        assert_eq!(d.free_slots(), 3);
    }

    #[test]
    fn slot_addresses() {
        let base = 0xFF80_0000;
        assert_eq!(slot_va(base, 0), 0xFF80_0000);
        assert_eq!(slot_va(base, 1), 0xFF80_1000);
        assert_eq!(slot_va(base, 511), 0xFF9F_F000);
        assert_eq!(va_slot(base, 512, 0xFF80_0000), Some(0));
        assert_eq!(va_slot(base, 512, 0xFF80_1FFF), Some(1));
        assert_eq!(va_slot(base, 512, 0xFF9F_FFFF), Some(511));
        assert_eq!(va_slot(base, 512, 0xFFA0_0000), None);
        assert_eq!(va_slot(base, 512, 0xFF7F_FFFF), None);
        assert_eq!(va_slot(base, 512, 0), None);
        assert_eq!(slot_va(0xFFFF_F000, 0), 0xFFFF_F000);
        const VA: u32 = slot_va(0x1000_0000, 2);
        assert_eq!(VA, 0x1000_2000);
    }

    #[test]
    #[should_panic(expected = "beyond 4 GiB")]
    fn slot_va_overflow_panics() {
        slot_va(0xFFFF_F000, 1);
    }

    #[test]
    fn errors_display() {
        assert_eq!(MapCacheError::Exhausted.to_string(), "map cache exhausted");
        assert_eq!(
            MapCacheError::BadSlot(600).to_string(),
            "map cache slot 600 out of range"
        );
        assert_eq!(
            MapCacheError::NotMapped(3).to_string(),
            "map cache slot 3 released but not in use"
        );
        assert_eq!(
            MapCacheError::RunMismatch { slot: 4, count: 2 }.to_string(),
            "map cache slots 4..6 are not a run as acquired"
        );
        assert!(MapCacheError::InRun(1).to_string().contains("run"));
        assert!(MapCacheError::BadRun.to_string().contains("run"));
    }

    proptest! {
        #[test]
        fn slot_va_roundtrip(base_page in 0u32..0xF_FE00, slot in 0usize..512, off in 0u32..4096) {
            let base = base_page << PAGE_SHIFT;
            let va = slot_va(base, slot);
            prop_assert_eq!(va_slot(base, 512, va), Some(slot));
            prop_assert_eq!(va_slot(base, 512, va + off), Some(slot));
            prop_assert_eq!(va % 4096, 0);
        }
    }

    // ---- Property test against a model ------------------------------------

    const MODEL_N: usize = 12;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum M {
        Free,
        Single(u64, u16),
        Run { mfn: u64, head: usize, len: usize },
    }

    #[derive(Clone, Debug)]
    enum Op {
        Acquire(u64),
        Release(usize),
        AcquireRun(u64, usize),
        ReleaseRun(usize, usize),
        /// Release a run that the model knows about (its `i % runs`-th).
        ReleaseKnownRun(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0u64..10).prop_map(Op::Acquire),
            5 => (0..MODEL_N + 2).prop_map(Op::Release),
            2 => (0u64..10, 0..6usize).prop_map(|(m, n)| Op::AcquireRun(m, n)),
            1 => (0..MODEL_N + 2, 0..6usize).prop_map(|(s, n)| Op::ReleaseRun(s, n)),
            2 => any::<usize>().prop_map(Op::ReleaseKnownRun),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn slots_match_model(ops in prop::collection::vec(op(), 0..200)) {
            let mut mc = MapCacheSlots::<MODEL_N>::new();
            let mut model = [M::Free; MODEL_N];
            for op in ops {
                match op {
                    Op::Acquire(mfn) => {
                        let shared = model.iter().position(|s| matches!(s, M::Single(m, _) if *m == mfn));
                        let r = mc.acquire(Mfn(mfn));
                        match (shared, r) {
                            (Some(i), r) => {
                                prop_assert_eq!(r, Ok(i));
                                if let M::Single(_, refs) = &mut model[i] { *refs += 1; }
                            }
                            (None, Ok(i)) => {
                                prop_assert_eq!(model[i], M::Free);
                                model[i] = M::Single(mfn, 1);
                            }
                            (None, Err(e)) => {
                                prop_assert_eq!(e, MapCacheError::Exhausted);
                                prop_assert!(model.iter().all(|s| *s != M::Free));
                            }
                        }
                    }
                    Op::Release(slot) => {
                        let r = mc.release(slot);
                        match model.get(slot).copied() {
                            None => prop_assert_eq!(r, Err(MapCacheError::BadSlot(slot))),
                            Some(M::Free) => prop_assert_eq!(r, Err(MapCacheError::NotMapped(slot))),
                            Some(M::Run { .. }) => prop_assert_eq!(r, Err(MapCacheError::InRun(slot))),
                            Some(M::Single(_, 1)) => {
                                prop_assert_eq!(r, Ok(Release::Freed));
                                model[slot] = M::Free;
                            }
                            Some(M::Single(m, refs)) => {
                                prop_assert_eq!(r, Ok(Release::StillMapped { refs: refs - 1 }));
                                model[slot] = M::Single(m, refs - 1);
                            }
                        }
                    }
                    Op::AcquireRun(mfn, count) => {
                        let fits = (0..MODEL_N).any(|s| {
                            s + count <= MODEL_N && model[s..s + count].iter().all(|x| *x == M::Free)
                        });
                        match mc.acquire_run(Mfn(mfn), count) {
                            Ok(s) => {
                                prop_assert!(count > 0 && s + count <= MODEL_N);
                                for i in 0..count {
                                    prop_assert_eq!(model[s + i], M::Free);
                                    model[s + i] = M::Run { mfn: mfn + i as u64, head: s, len: count };
                                }
                            }
                            Err(MapCacheError::BadRun) => prop_assert_eq!(count, 0),
                            Err(e) => {
                                prop_assert_eq!(e, MapCacheError::Exhausted);
                                prop_assert!(!fits);
                            }
                        }
                    }
                    Op::ReleaseRun(slot, count) => {
                        let r = mc.release_run(slot, count);
                        match model.get(slot).copied() {
                            None => prop_assert_eq!(r, Err(MapCacheError::BadSlot(slot))),
                            Some(M::Free) => prop_assert_eq!(r, Err(MapCacheError::NotMapped(slot))),
                            Some(M::Run { head, len, .. }) if head == slot && len == count => {
                                prop_assert_eq!(r, Ok(()));
                                model[slot..slot + count].fill(M::Free);
                            }
                            Some(_) => prop_assert_eq!(r, Err(MapCacheError::RunMismatch { slot, count })),
                        }
                    }
                    Op::ReleaseKnownRun(i) => {
                        let heads: Vec<(usize, usize)> = model
                            .iter()
                            .enumerate()
                            .filter_map(|(s, x)| match *x {
                                M::Run { head, len, .. } if head == s => Some((s, len)),
                                _ => None,
                            })
                            .collect();
                        if !heads.is_empty() {
                            let (s, len) = heads[i % heads.len()];
                            prop_assert_eq!(mc.release_run(s, len), Ok(()));
                            model[s..s + len].fill(M::Free);
                        }
                    }
                }
                // Whole-state comparison after every step.
                let mut singles = HashSet::new();
                for (s, x) in model.iter().enumerate() {
                    match *x {
                        M::Free => {
                            prop_assert_eq!(mc.mfn(s), None);
                            prop_assert_eq!(mc.refs(s), 0);
                        }
                        M::Single(m, refs) => {
                            prop_assert_eq!(mc.mfn(s), Some(Mfn(m)));
                            prop_assert_eq!(mc.refs(s), refs);
                            prop_assert!(singles.insert(m), "mfn {} in two single slots", m);
                            prop_assert_eq!(mc.lookup(Mfn(m)), Some(s));
                        }
                        M::Run { mfn, .. } => {
                            prop_assert_eq!(mc.mfn(s), Some(Mfn(mfn)));
                            prop_assert_eq!(mc.refs(s), 1);
                        }
                    }
                }
                let used = model.iter().filter(|x| **x != M::Free).count();
                prop_assert_eq!(mc.in_use(), used);
                prop_assert_eq!(mc.free_slots(), MODEL_N - used);
            }
        }
    }
}
