//! Segment-descriptor checks for guest GDTs and LDTs (XEN-PV-ABI.md §6.8, §6.9).
//!
//! The guest kernel runs in ring 1, which is *supervisor* mode for paging, so
//! the only thing that keeps it out of Oxen's area above `HYPERVISOR_VIRT_START`
//! is segmentation: every descriptor a guest can load passes through
//! [`check_descriptor`] first (`set_gdt` pages, `update_descriptor`, LDT pages
//! on first use), which follows Xen's `check_descriptor`:
//!
//! * a not-present descriptor is accepted as is (loading it faults);
//! * a present descriptor with DPL 0 gets DPL 1;
//! * of the system descriptors only 32-bit call gates are accepted: the target
//!   selector gets RPL ≥ 1 and must name a guest GDT entry (index < 7168),
//!   `FLAT_KERNEL_CS` or an LDT entry, and the reserved bits 5–7 of the high
//!   word must be 0; interrupt/trap gates, TSS, task gates, LDT descriptors,
//!   16-bit gates and the reserved types are refused;
//! * a code or data segment must start below `0xF6800000 - 4096`, and its
//!   limit is truncated so that nothing it reaches lies above `0xF6800000`
//!   (the end of the read-only M2P). Only a page-granular (G=1) limit can be
//!   truncated; a byte-granular segment that would need it is refused. An
//!   expand-down segment whose accessible range would wrap up to 4 GiB gets the
//!   limit that makes it end just below its base (Xen's rule; with D/B = 0 this
//!   is conservative but still safe).
//! * Oxen also refuses code/data segments with the L (64-bit) bit set, as Xen
//!   4.1 and today's 64-bit Xen do for 32-bit guests.
//!
//! The checks may *change* a descriptor (DPL, call-gate RPL, limit): the caller
//! stores the returned value, not the one the guest gave. A descriptor page is
//! checked in place with [`check_descriptor_page`].

use xen_abi::errno::Errno;
use xen_abi::layout::GUEST_SEGMENT_LIMIT_END;
use xen_abi::selectors::{FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS, selector_index};
use xen_abi::traps::{DESCRIPTORS_PER_PAGE, MAX_GUEST_GDT_ENTRIES};
use xen_abi::types::PAGE_SIZE;

use crate::addr::{Maddr, Mfn};

// ---- descriptor bits (Intel SDM vol. 3, §3.4.5 and §5.8.3) ----

/// High word: type field (bits 8–11).
const HI_TYPE_SHIFT: u32 = 8;
const HI_TYPE_MASK: u32 = 0xF << HI_TYPE_SHIFT;
/// High word: S, 1 = code/data, 0 = system.
const HI_S: u32 = 1 << 12;
/// High word: DPL (bits 13–14).
const HI_DPL_SHIFT: u32 = 13;
const HI_DPL_MASK: u32 = 3 << HI_DPL_SHIFT;
/// High word: present.
const HI_P: u32 = 1 << 15;
/// High word: limit bits 19:16.
const HI_LIMIT_MASK: u32 = 0xF_0000;
/// High word: 64-bit code segment.
const HI_L: u32 = 1 << 21;
/// High word: default operation size / big.
const HI_DB: u32 = 1 << 22;
/// High word: granularity (limit in 4 KiB units).
const HI_G: u32 = 1 << 23;
/// Low word: limit bits 15:0.
const LO_LIMIT_MASK: u32 = 0xFFFF;
/// Call gate, high word: reserved bits 5–7 (bits 0–4 are the parameter count).
const GATE_RESERVED_MASK: u32 = 0xE0;

/// Code/data type bit 3: code.
const TYPE_CODE: u8 = 0x8;
/// Data type bit 2: expand-down (for code it means conforming).
const TYPE_EXPAND_DOWN: u8 = 0x4;
/// System type 0xC: 32-bit call gate.
pub const TYPE_CALL_GATE32: u8 = 0xC;

/// Where guest segments must end (`0xF6800000`, the end of the read-only M2P).
pub const GUEST_SEGMENT_MAX_ADDR: u32 = GUEST_SEGMENT_LIMIT_END;
/// A segment base must lie below this (one page under the ceiling).
pub const GUEST_SEGMENT_MAX_BASE: u32 = GUEST_SEGMENT_MAX_ADDR - PAGE_SIZE as u32;

const FOUR_GIB: u64 = 1 << 32;

/// An 8-byte segment descriptor as the ABI passes it: two 32-bit words
/// (`update_descriptor`'s `desc_lo`/`desc_hi`, or `a`/`b` in Xen's
/// `struct desc_struct`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// Bytes 0–3: limit 15:0, base 15:0 (call gate: offset 15:0, selector).
    pub lo: u32,
    /// Bytes 4–7: base 23:16, type, S, DPL, P, limit 19:16, AVL, L, D/B, G,
    /// base 31:24 (call gate: parameter count, type, DPL, P, offset 31:16).
    pub hi: u32,
}

impl Descriptor {
    /// From the two words.
    pub const fn new(lo: u32, hi: u32) -> Self {
        Self { lo, hi }
    }

    /// From the 64-bit value as it sits in memory (little endian).
    pub const fn from_u64(raw: u64) -> Self {
        Self {
            lo: raw as u32,
            hi: (raw >> 32) as u32,
        }
    }

    /// The 64-bit value as it sits in memory.
    pub const fn to_u64(self) -> u64 {
        (self.hi as u64) << 32 | self.lo as u64
    }

    /// P: present.
    pub const fn present(self) -> bool {
        self.hi & HI_P != 0
    }

    /// DPL.
    pub const fn dpl(self) -> u8 {
        ((self.hi & HI_DPL_MASK) >> HI_DPL_SHIFT) as u8
    }

    /// S = 0: a system descriptor (gate, TSS, LDT).
    pub const fn is_system(self) -> bool {
        self.hi & HI_S == 0
    }

    /// The 4-bit type field.
    pub const fn type_field(self) -> u8 {
        ((self.hi & HI_TYPE_MASK) >> HI_TYPE_SHIFT) as u8
    }

    /// A code segment.
    pub const fn is_code(self) -> bool {
        !self.is_system() && self.type_field() & TYPE_CODE != 0
    }

    /// An expand-down data segment.
    pub const fn is_expand_down(self) -> bool {
        !self.is_system() && self.type_field() & (TYPE_CODE | TYPE_EXPAND_DOWN) == TYPE_EXPAND_DOWN
    }

    /// G: the limit counts 4 KiB units.
    pub const fn granular(self) -> bool {
        self.hi & HI_G != 0
    }

    /// D/B: 32-bit segment (for expand-down data: upper bound 4 GiB − 1, not 64 KiB − 1).
    pub const fn big(self) -> bool {
        self.hi & HI_DB != 0
    }

    /// L: 64-bit code segment.
    pub const fn long_mode(self) -> bool {
        self.hi & HI_L != 0
    }

    /// Segment base.
    pub const fn base(self) -> u32 {
        (self.hi & 0xFF00_0000) | (self.hi & 0xFF) << 16 | self.lo >> 16
    }

    /// The raw 20-bit limit field.
    pub const fn raw_limit(self) -> u32 {
        (self.hi & HI_LIMIT_MASK) | (self.lo & LO_LIMIT_MASK)
    }

    /// The limit field scaled to bytes and made exclusive: `(limit + 1) × unit`,
    /// 1 B … 4 GiB. For an expand-up segment this is the size; for an
    /// expand-down one it is the lowest valid offset.
    pub const fn limit_bytes(self) -> u64 {
        let units = self.raw_limit() as u64 + 1;
        if self.granular() { units << 12 } else { units }
    }

    /// Call gate: the target code selector.
    pub const fn gate_selector(self) -> u16 {
        (self.lo >> 16) as u16
    }

    /// One past the highest linear address a code/data segment can reach, in
    /// `0..=2^32` (2^32: it reaches the top of the address space, also when its
    /// range wraps around). 0 if it reaches nothing (an empty expand-down
    /// segment) or is a system descriptor.
    pub const fn segment_end(self) -> u64 {
        if self.is_system() {
            return 0;
        }
        let base = self.base() as u64;
        if self.is_expand_down() {
            // Valid offsets: limit_bytes ..= upper.
            let first = self.limit_bytes();
            let upper: u64 = if self.big() { 0xFFFF_FFFF } else { 0xFFFF };
            if first > upper {
                0
            } else if base + upper < FOUR_GIB {
                base + upper + 1
            } else if base + first < FOUR_GIB {
                FOUR_GIB
            } else {
                base + upper + 1 - FOUR_GIB
            }
        } else {
            let end = base + self.limit_bytes();
            if end > FOUR_GIB { FOUR_GIB } else { end }
        }
    }

    const fn with_dpl(self, dpl: u8) -> Self {
        Self {
            lo: self.lo,
            hi: (self.hi & !HI_DPL_MASK) | ((dpl as u32 & 3) << HI_DPL_SHIFT),
        }
    }

    const fn with_raw_limit(self, limit: u32) -> Self {
        Self {
            lo: (self.lo & !LO_LIMIT_MASK) | (limit & LO_LIMIT_MASK),
            hi: (self.hi & !HI_LIMIT_MASK) | (limit & HI_LIMIT_MASK),
        }
    }

    const fn with_gate_selector(self, sel: u16) -> Self {
        Self {
            lo: (self.lo & 0xFFFF) | (sel as u32) << 16,
            hi: self.hi,
        }
    }
}

/// Raises a guest selector's RPL to at least 1 (the guest kernel's ring), as Xen
/// does for every code/stack selector a guest supplies (§3.1).
pub const fn fixup_guest_selector(sel: u16) -> u16 {
    if sel & 3 == 0 { sel | 1 } else { sel }
}

/// Whether `sel` may be put into a gate (call gate, the direct `int $0x80` trap
/// gate): the CPU ignores a gate target's RPL, so the selector must not name
/// one of the hypervisor's reserved GDT entries. Accepted: a guest GDT index
/// below `FIRST_RESERVED_GDT_ENTRY`, exactly `FLAT_KERNEL_CS`, or any LDT
/// selector (LDT descriptors are themselves checked).
pub const fn guest_gate_selector_okay(sel: u16) -> bool {
    selector_index(sel) < FIRST_RESERVED_GDT_ENTRY || sel == FLAT_KERNEL_CS || sel & 4 != 0
}

/// Xen's `check_descriptor`: the descriptor to store in place of `desc`, or
/// `EINVAL` (see the module documentation for the rules).
pub fn check_descriptor(desc: Descriptor) -> Result<Descriptor, Errno> {
    // A not-present descriptor faults when loaded, whatever it says.
    if !desc.present() {
        return Ok(desc);
    }
    let desc = if desc.dpl() == 0 {
        desc.with_dpl(1)
    } else {
        desc
    };

    if desc.is_system() {
        if desc.type_field() != TYPE_CALL_GATE32 || desc.hi & GATE_RESERVED_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let sel = fixup_guest_selector(desc.gate_selector());
        if !guest_gate_selector_okay(sel) {
            return Err(Errno::EINVAL);
        }
        return Ok(desc.with_gate_selector(sel));
    }

    if desc.long_mode() {
        return Err(Errno::EINVAL);
    }
    let base = desc.base();
    if base >= GUEST_SEGMENT_MAX_BASE {
        return Err(Errno::EINVAL);
    }
    let base = base as u64;
    let size = desc.limit_bytes();
    let new_size = if desc.is_expand_down() {
        // Valid offsets start at `size`; unless that start already wraps past
        // 4 GiB (or the segment is empty), the range runs up through the
        // hypervisor area. Make it start at 4 GiB - page-aligned base, so it
        // wraps and ends just below the base.
        if size < FOUR_GIB && base + size < FOUR_GIB {
            Some(FOUR_GIB - (base & !(PAGE_SIZE as u64 - 1)))
        } else {
            None
        }
    } else if base + size > GUEST_SEGMENT_MAX_ADDR as u64 {
        Some(GUEST_SEGMENT_MAX_ADDR as u64 - base)
    } else {
        None
    };
    match new_size {
        None => Ok(desc),
        // Byte-granular limits are not truncated (as Xen: too easy to get wrong).
        Some(_) if !desc.granular() => Err(Errno::EINVAL),
        // `new_size` ≥ 4 KiB because the base is a page below the ceiling.
        Some(bytes) => Ok(desc.with_raw_limit(((bytes >> 12) - 1) as u32)),
    }
}

/// Checks a whole descriptor page (or any run of descriptors) in place, as Xen
/// does when a frame takes the segment-descriptor type (`set_gdt`, an LDT page
/// on first use): every entry is replaced by its checked form. On `EINVAL` the
/// entries before the bad one may already be rewritten (harmless: they are
/// their own fixed-up forms) and the frame must not take the type.
pub fn check_descriptor_page(descs: &mut [u64]) -> Result<(), Errno> {
    for d in descs.iter_mut() {
        *d = check_descriptor(Descriptor::from_u64(*d))?.to_u64();
    }
    Ok(())
}

/// `set_gdt(frame_list, entries)` argument check: the number of frames to
/// copy from `frame_list`, `ceil(entries / 512)`, or `EINVAL` when `entries`
/// exceeds `FIRST_RESERVED_GDT_ENTRY` (7168). Zero entries (no guest GDT) is
/// valid and needs no frame.
pub fn set_gdt_frames(entries: u32) -> Result<usize, Errno> {
    let entries = entries as usize;
    if entries > MAX_GUEST_GDT_ENTRIES {
        return Err(Errno::EINVAL);
    }
    Ok(entries.div_ceil(DESCRIPTORS_PER_PAGE))
}

/// A decoded `update_descriptor(ma, desc)` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateDescriptor {
    /// The frame holding the slot.
    pub mfn: Mfn,
    /// Descriptor index within the frame (0..512).
    pub slot: usize,
    /// The checked (possibly fixed-up) descriptor to store.
    pub desc: Descriptor,
}

/// `update_descriptor` (#10) argument checks: `ma` must be 8-byte aligned and
/// `desc` must pass [`check_descriptor`]; both failures are `EINVAL`. The
/// caller then checks that the frame belongs to the caller and takes the
/// segment-descriptor type (if it is in use as a GDT/LDT) or the writable type
/// (an ordinary page), as Xen does, and stores `desc` there.
pub fn update_descriptor_args(
    ma_lo: u32,
    ma_hi: u32,
    desc_lo: u32,
    desc_hi: u32,
) -> Result<UpdateDescriptor, Errno> {
    let ma = Maddr((ma_hi as u64) << 32 | ma_lo as u64);
    if !ma.0.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let desc = check_descriptor(Descriptor::new(desc_lo, desc_hi))?;
    Ok(UpdateDescriptor {
        mfn: ma.mfn(),
        slot: (ma.page_offset() / 8) as usize,
        desc,
    })
}

/// The instruction bytes at offset `eip` of code segment `desc` that Oxen
/// may fetch to emulate it: `(linear address, length)`, the length the
/// part of `max` bytes inside the segment's limit. `None` when the CPU could
/// not fetch there either: `desc` is not a present code segment, or `eip`
/// lies beyond its limit. Like Xen's `insn_fetch` (which checks the CS base
/// and limit), an emulator that needs more bytes than this refuses, and the
/// guest gets the #GP a fetch past the limit raises.
pub fn code_fetch_window(desc: Descriptor, eip: u32, max: usize) -> Option<(u32, usize)> {
    if !desc.present() || !desc.is_code() {
        return None;
    }
    let inside = desc.limit_bytes().checked_sub(u64::from(eip))?;
    if inside == 0 {
        return None;
    }
    let len = inside.min(max as u64) as usize;
    Some((desc.base().wrapping_add(eip), len))
}

/// Whether an `iret` to `cs:eip` lands in guest code the way the CPU would
/// take it: RPL 1 or 3 (a guest ring), a present code segment whose DPL
/// equals the RPL (or, conforming, does not exceed it), `eip` inside the
/// limit. `desc` is what `cs` names now (`None`: null or beyond the table).
/// The exception-table fixup on Oxen's `iret` is the backstop; this lets
/// Oxen refuse early what would fault there.
pub fn code_selector_accepts(cs: u16, desc: Option<Descriptor>, eip: u32) -> bool {
    let rpl = (cs & 3) as u8;
    let Some(d) = desc else {
        return false;
    };
    let dpl_ok = if d.type_field() & TYPE_EXPAND_DOWN != 0 {
        d.dpl() <= rpl
    } else {
        d.dpl() == rpl
    };
    matches!(rpl, 1 | 3) && d.present() && d.is_code() && dpl_ok && u64::from(eip) < d.limit_bytes()
}

/// The linear address of the `len` bytes at offset `esp` of stack segment
/// `ss` (`desc` what it names now), for a guest running at ring `rpl`:
/// `None` when the CPU would not take `ss` as that ring's stack (RPL and
/// DPL must be `rpl`, a present writable data segment) or the bytes leave
/// the segment (expand-up: below the limit; expand-down: above it, up to
/// 64 KiB or 4 GiB by the B bit). Oxen writes bounce frames and reads iret
/// frames through this, so a based or limited stack is honoured.
pub fn stack_range(ss: u16, rpl: u8, desc: Option<Descriptor>, esp: u32, len: u32) -> Option<u32> {
    let d = desc?;
    let writable_data = !d.is_system() && !d.is_code() && d.type_field() & 0x2 != 0;
    if (ss & 3) as u8 != rpl || d.dpl() != rpl || !d.present() || !writable_data {
        return None;
    }
    let (start, end) = (u64::from(esp), u64::from(esp) + u64::from(len));
    let inside = if d.is_expand_down() {
        let upper: u64 = if d.big() { 0xFFFF_FFFF } else { 0xFFFF };
        start >= d.limit_bytes() && end <= upper + 1
    } else {
        end <= d.limit_bytes()
    };
    inside.then(|| d.base().wrapping_add(esp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xen_abi::selectors::{FLAT_RING0_CS, FLAT_RING3_CS};

    /// Builds a code/data descriptor: `type_` is the 4-bit type, `flags` the
    /// high nibble (G, D/B, L, AVL as bits 3..0).
    fn seg(base: u32, limit: u32, type_: u8, dpl: u8, present: bool, flags: u8) -> Descriptor {
        let lo = (base & 0xFFFF) << 16 | (limit & 0xFFFF);
        let hi = (base & 0xFF00_0000)
            | (base >> 16) & 0xFF
            | (type_ as u32) << 8
            | HI_S
            | (dpl as u32 & 3) << 13
            | if present { HI_P } else { 0 }
            | (limit & 0xF_0000)
            | (flags as u32 & 0xF) << 20;
        Descriptor::new(lo, hi)
    }

    fn gate(selector: u16, offset: u32, type_: u8, dpl: u8, params: u8) -> Descriptor {
        let lo = (selector as u32) << 16 | (offset & 0xFFFF);
        let hi = (offset & 0xFFFF_0000)
            | HI_P
            | (dpl as u32 & 3) << 13
            | (type_ as u32) << 8
            | params as u32;
        Descriptor::new(lo, hi)
    }

    const G: u8 = 0x8;
    const DB: u8 = 0x4;
    const L: u8 = 0x2;
    const CODE_RX: u8 = 0xA;
    const DATA_RW: u8 = 0x2;
    const DATA_RW_DOWN: u8 = 0x6;

    #[test]
    fn field_accessors() {
        let d = seg(0x1234_5678, 0xABCDE, CODE_RX, 3, true, G | DB);
        assert_eq!(d.base(), 0x1234_5678);
        assert_eq!(d.raw_limit(), 0xABCDE);
        assert_eq!(d.type_field(), CODE_RX);
        assert_eq!(d.dpl(), 3);
        assert!(d.present() && d.is_code() && !d.is_system() && d.granular() && d.big());
        assert_eq!(d.limit_bytes(), 0xABCDF << 12);
        assert_eq!(Descriptor::from_u64(d.to_u64()), d);
        // The flat ring-1 code segment Oxen itself installs (limit ends at the M2P end).
        let flat = seg(0, 0xF67FF, CODE_RX, 1, true, G | DB);
        assert_eq!(flat.segment_end(), 0xF680_0000);
    }

    #[test]
    fn not_present_is_accepted_as_is() {
        // Even a DPL-0 TSS with a huge limit: loading it faults.
        let mut d = gate(FLAT_RING0_CS, 0, 0x9, 0, 0);
        d.hi &= !HI_P;
        assert_eq!(check_descriptor(d), Ok(d));
        let d = seg(0xFFFF_F000, 0xFFFFF, CODE_RX, 0, false, G | DB);
        assert_eq!(check_descriptor(d), Ok(d));
    }

    #[test]
    fn dpl0_code_segment_is_raised_to_dpl1() {
        let d = seg(0, 0x7FFFF, CODE_RX, 0, true, G | DB);
        let c = check_descriptor(d).unwrap();
        assert_eq!(c.dpl(), 1);
        assert_eq!(c, Descriptor::new(d.lo, d.hi | 1 << 13));
        // DPL 1..3 are left alone.
        for dpl in 1..=3 {
            let d = seg(0, 0x7FFFF, CODE_RX, dpl, true, G | DB);
            assert_eq!(check_descriptor(d), Ok(d));
        }
    }

    #[test]
    fn segment_below_the_ceiling_is_unchanged() {
        // 2 GiB flat data, byte-granular 1 MiB, and one ending exactly at 0xF6800000.
        for d in [
            seg(0, 0x7FFFF, DATA_RW, 1, true, G | DB),
            seg(0x0010_0000, 0xFFFFF, DATA_RW, 3, true, DB),
            seg(0xF600_0000, 0x7FF, DATA_RW, 3, true, G | DB),
        ] {
            assert_eq!(check_descriptor(d), Ok(d));
            assert!(d.segment_end() <= 0xF680_0000);
        }
    }

    #[test]
    fn descriptor_reaching_the_hypervisor_hole_is_truncated() {
        // A flat 4 GiB segment, as a native kernel would write it.
        let d = seg(0, 0xFFFFF, CODE_RX, 1, true, G | DB);
        let c = check_descriptor(d).unwrap();
        assert_eq!(c.raw_limit(), 0xF67FF);
        assert_eq!(c.segment_end(), 0xF680_0000);
        assert_eq!(c.base(), 0);
        assert_eq!(c.hi & !HI_LIMIT_MASK, d.hi & !HI_LIMIT_MASK);
        // One byte past the ceiling.
        let d = seg(0xF600_1000, 0x7FF, DATA_RW, 1, true, G | DB);
        assert_eq!(d.segment_end(), 0xF680_1000);
        let c = check_descriptor(d).unwrap();
        assert_eq!(c.raw_limit(), 0x7FE);
        assert_eq!(c.segment_end(), 0xF680_0000);
        // An unaligned base: the end is rounded down below the ceiling.
        let d = seg(0x0000_0123, 0xFFFFF, DATA_RW, 3, true, G | DB);
        let c = check_descriptor(d).unwrap();
        assert!(c.segment_end() <= 0xF680_0000);
        assert!(c.segment_end() > 0xF680_0000 - 4096);
        // A segment whose limit wraps past 4 GiB.
        let d = seg(0x8000_0000, 0xFFFFF, DATA_RW, 3, true, G | DB);
        assert_eq!(d.segment_end(), 1 << 32);
        assert_eq!(check_descriptor(d).unwrap().segment_end(), 0xF680_0000);
    }

    #[test]
    fn byte_granular_segment_needing_truncation_is_refused() {
        let d = seg(0xF67F_0000, 0xFFFFF, DATA_RW, 1, true, DB);
        assert_eq!(d.segment_end(), 0xF68F_0000);
        assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
        // The same with G=1 is truncated.
        let d = seg(0xF67F_0000, 0x1F, DATA_RW, 1, true, G | DB);
        assert_eq!(check_descriptor(d).unwrap().segment_end(), 0xF680_0000);
    }

    #[test]
    fn base_too_close_to_the_ceiling_is_refused() {
        let ok = seg(GUEST_SEGMENT_MAX_BASE - 1, 0, DATA_RW, 1, true, DB);
        assert_eq!(check_descriptor(ok), Ok(ok));
        for base in [GUEST_SEGMENT_MAX_BASE, 0xF680_0000, 0xFF00_0000] {
            let d = seg(base, 0, DATA_RW, 1, true, DB);
            assert_eq!(check_descriptor(d), Err(Errno::EINVAL), "base {base:#x}");
        }
    }

    #[test]
    fn long_mode_segment_is_refused() {
        let d = seg(0, 0x7FFFF, CODE_RX, 1, true, G | L);
        assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
    }

    #[test]
    fn expand_down_data_segment() {
        // A 32-bit expand-down segment with limit 0x10000 (G=1): offsets from
        // 0x10001000 up to 4 GiB - 1, i.e. through Oxen's area. Truncated so
        // its valid offsets wrap and end just below the base.
        let d = seg(0x0040_0000, 0x10000, DATA_RW_DOWN, 1, true, G | DB);
        assert!(d.is_expand_down());
        assert_eq!(d.segment_end(), 1 << 32);
        let c = check_descriptor(d).unwrap();
        assert_eq!(c.raw_limit(), 0xFFFFF - 0x400);
        assert_eq!(c.limit_bytes(), (1 << 32) - 0x0040_0000);
        assert_eq!(c.segment_end(), 0x0040_0000);
        // Already wrapping: accepted unchanged (ends below its base).
        let d = seg(0x0040_0000, 0xFFF00, DATA_RW_DOWN, 1, true, G | DB);
        assert_eq!(d.segment_end(), 0x0040_0000);
        assert_eq!(check_descriptor(d), Ok(d));
        // Limit 0xFFFFF with G=1: no valid offset at all.
        let d = seg(0, 0xFFFFF, DATA_RW_DOWN, 1, true, G | DB);
        assert_eq!(d.segment_end(), 0);
        assert_eq!(check_descriptor(d), Ok(d));
        // Byte-granular expand-down would need truncation: refused.
        let d = seg(0x0040_0000, 0xFFF, DATA_RW_DOWN, 1, true, DB);
        assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
        // A code segment with the "conforming" bit is not expand-down.
        let d = seg(0, 0x7FFFF, 0xE, 1, true, G | DB);
        assert!(!d.is_expand_down());
        assert_eq!(check_descriptor(d), Ok(d));
    }

    #[test]
    fn call_gate_to_guest_selectors_is_accepted() {
        // Guest GDT entry, RPL 0 raised to 1; DPL 0 raised to 1.
        let d = gate(0x0010, 0xC012_3456, TYPE_CALL_GATE32, 0, 2);
        let c = check_descriptor(d).unwrap();
        assert_eq!(c.gate_selector(), 0x0011);
        assert_eq!(c.dpl(), 1);
        assert_eq!(c.lo & 0xFFFF, 0x3456);
        assert_eq!(c.hi & 0xFFFF_001F, 0xC012_0002);
        // Last guest GDT entry, FLAT_KERNEL_CS (also given with RPL 0), LDT selectors.
        for (sel, fixed) in [
            (((FIRST_RESERVED_GDT_ENTRY - 1) << 3) as u16 | 3, None),
            (FLAT_KERNEL_CS, None),
            (FLAT_KERNEL_CS & !3, Some(FLAT_KERNEL_CS)),
            (0xE00C | 3, None),
            (0x0004, Some(0x0005)),
        ] {
            let d = gate(sel, 0x1000, TYPE_CALL_GATE32, 3, 0);
            let c = check_descriptor(d).unwrap();
            assert_eq!(c.gate_selector(), fixed.unwrap_or(sel), "selector {sel:#x}");
        }
    }

    #[test]
    fn call_gate_to_the_hypervisor_ring0_cs_is_refused() {
        for sel in [FLAT_RING0_CS, FLAT_RING0_CS | 1, 0xE010] {
            let d = gate(sel, 0x1000, TYPE_CALL_GATE32, 3, 0);
            assert_eq!(check_descriptor(d), Err(Errno::EINVAL), "selector {sel:#x}");
        }
        // Other reserved entries too, even the guest-usable ring-3 flat CS.
        let d = gate(FLAT_RING3_CS, 0x1000, TYPE_CALL_GATE32, 3, 0);
        assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
        let d = gate(
            (FIRST_RESERVED_GDT_ENTRY << 3) as u16 | 1,
            0,
            TYPE_CALL_GATE32,
            3,
            0,
        );
        assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
    }

    #[test]
    fn call_gate_reserved_bits_must_be_zero() {
        for params in [0x20, 0x40, 0x80] {
            let d = gate(0x0011, 0, TYPE_CALL_GATE32, 1, params);
            assert_eq!(check_descriptor(d), Err(Errno::EINVAL));
        }
        let d = gate(0x0011, 0, TYPE_CALL_GATE32, 1, 0x1F);
        assert!(check_descriptor(d).is_ok());
    }

    #[test]
    fn other_system_descriptors_are_refused() {
        // Every system type but the 32-bit call gate: reserved 0/8/A/D, 16-bit
        // TSS/LDT/call/task/interrupt/trap gates, 32-bit TSS, interrupt and trap gates.
        for t in (0u8..16).filter(|&t| t != TYPE_CALL_GATE32) {
            let d = gate(0x0011, 0x1000, t, 1, 0);
            assert_eq!(check_descriptor(d), Err(Errno::EINVAL), "type {t:#x}");
        }
    }

    #[test]
    fn descriptor_page_is_fixed_in_place() {
        let mut page = [0u64; DESCRIPTORS_PER_PAGE];
        page[1] = seg(0, 0xFFFFF, CODE_RX, 0, true, G | DB).to_u64();
        page[2] = seg(0, 0xFFFFF, DATA_RW, 1, true, G | DB).to_u64();
        assert_eq!(check_descriptor_page(&mut page), Ok(()));
        let c = Descriptor::from_u64(page[1]);
        assert_eq!((c.dpl(), c.raw_limit()), (1, 0xF67FF));
        assert_eq!(Descriptor::from_u64(page[2]).segment_end(), 0xF680_0000);
        assert_eq!(page[0], 0);
        page[511] = gate(FLAT_RING0_CS, 0, TYPE_CALL_GATE32, 3, 0).to_u64();
        assert_eq!(check_descriptor_page(&mut page), Err(Errno::EINVAL));
    }

    #[test]
    fn set_gdt_entry_limits() {
        assert_eq!(set_gdt_frames(0), Ok(0));
        assert_eq!(set_gdt_frames(1), Ok(1));
        assert_eq!(set_gdt_frames(512), Ok(1));
        assert_eq!(set_gdt_frames(513), Ok(2));
        assert_eq!(set_gdt_frames(7168), Ok(14));
        assert_eq!(set_gdt_frames(7169), Err(Errno::EINVAL));
        assert_eq!(set_gdt_frames(u32::MAX), Err(Errno::EINVAL));
    }

    #[test]
    fn update_descriptor_arguments() {
        let d = seg(0, 0xFFFFF, DATA_RW, 0, true, G | DB);
        let u = update_descriptor_args(0x1234_5ff8, 0x1, d.lo, d.hi).unwrap();
        assert_eq!(u.mfn, Mfn(0x0011_2345));
        assert_eq!(u.slot, 511);
        assert_eq!(u.desc, check_descriptor(d).unwrap());
        // Misaligned slot.
        assert_eq!(
            update_descriptor_args(0x1234_5004, 0, d.lo, d.hi),
            Err(Errno::EINVAL)
        );
        // Bad descriptor.
        let g = gate(FLAT_RING0_CS, 0, TYPE_CALL_GATE32, 3, 0);
        assert_eq!(
            update_descriptor_args(0x1000, 0, g.lo, g.hi),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn gate_selector_rule() {
        assert!(guest_gate_selector_okay(0x0000));
        assert!(guest_gate_selector_okay(0xDFFB));
        assert!(guest_gate_selector_okay(FLAT_KERNEL_CS));
        assert!(guest_gate_selector_okay(0xFFFC | 4));
        assert!(!guest_gate_selector_okay(0xE000 | 1));
        assert!(!guest_gate_selector_okay(FLAT_RING0_CS | 1));
        assert!(!guest_gate_selector_okay(FLAT_KERNEL_CS | 2));
        assert!(!guest_gate_selector_okay(FLAT_RING3_CS));
        assert_eq!(fixup_guest_selector(0xE018), FLAT_KERNEL_CS);
        assert_eq!(fixup_guest_selector(0x0000), 0x0001);
        assert_eq!(fixup_guest_selector(0x002B), 0x002B);
        assert_eq!(fixup_guest_selector(0x0022), 0x0022);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Nothing accepted reaches above 0xF6800000, and nothing present keeps DPL 0.
        #[test]
        fn accepted_descriptors_are_safe(lo in any::<u32>(), hi in any::<u32>()) {
            let d = Descriptor::new(lo, hi);
            if let Ok(c) = check_descriptor(d) {
                if c.present() {
                    prop_assert_ne!(c.dpl(), 0);
                    if c.is_system() {
                        prop_assert_eq!(c.type_field(), TYPE_CALL_GATE32);
                        prop_assert_ne!(c.gate_selector() & 3, 0);
                        prop_assert!(guest_gate_selector_okay(c.gate_selector()));
                    } else {
                        prop_assert!(c.segment_end() <= GUEST_SEGMENT_MAX_ADDR as u64,
                            "{:x?} reaches {:#x}", c, c.segment_end());
                    }
                } else {
                    prop_assert_eq!(c, d);
                }
                // Checking is idempotent: a stored descriptor passes again unchanged.
                prop_assert_eq!(check_descriptor(c), Ok(c));
            }
        }

        /// The same, biased towards present code/data segments with G=1, where
        /// the limit arithmetic matters.
        #[test]
        fn accepted_segments_end_below_the_ceiling(
            base in any::<u32>(),
            limit in 0u32..0x10_0000,
            type_ in 0u8..16,
            dpl in 0u8..4,
            flags in 0u8..16,
        ) {
            let d = seg(base, limit, type_, dpl, true, flags);
            match check_descriptor(d) {
                Ok(c) => {
                    prop_assert_ne!(c.dpl(), 0);
                    prop_assert!(c.segment_end() <= GUEST_SEGMENT_MAX_ADDR as u64);
                    // Only the limit and the DPL may change.
                    prop_assert_eq!(c.base(), d.base());
                    prop_assert_eq!(c.type_field(), d.type_field());
                    prop_assert_eq!(c.hi & !(HI_LIMIT_MASK | HI_DPL_MASK), d.hi & !(HI_LIMIT_MASK | HI_DPL_MASK));
                    if d.segment_end() <= GUEST_SEGMENT_MAX_ADDR as u64 && !d.is_expand_down() {
                        prop_assert_eq!(c.raw_limit(), d.raw_limit());
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e, Errno::EINVAL);
                    prop_assert!(
                        d.long_mode() || base >= GUEST_SEGMENT_MAX_BASE || !d.granular(),
                        "{:x?} refused", d
                    );
                }
            }
        }
    }

    #[test]
    fn code_fetch_window_stays_inside_the_code_segment() {
        // Flat DPL-1 code ending at the guest segment limit (4 KiB units).
        let flat = seg(0, 0xF67FF, 0xA, 1, true, 0xC);
        assert_eq!(code_fetch_window(flat, 0x1000, 15), Some((0x1000, 15)));
        assert_eq!(
            code_fetch_window(flat, 0xF67F_FFFE, 15),
            Some((0xF67F_FFFE, 2))
        );
        assert_eq!(code_fetch_window(flat, 0xF680_0000, 15), None);
        assert_eq!(code_fetch_window(flat, 0xFFFF_FFFE, 15), None);
        // A based, byte-granular code segment of 0x100 bytes.
        let small = seg(0x40_0000, 0xFF, 0xA, 1, true, 0x4);
        assert_eq!(code_fetch_window(small, 0, 15), Some((0x40_0000, 15)));
        assert_eq!(code_fetch_window(small, 0xFF, 15), Some((0x40_00FF, 1)));
        assert_eq!(code_fetch_window(small, 0x100, 15), None);
        // Not present, a data segment, a system descriptor: nothing.
        assert_eq!(
            code_fetch_window(seg(0, 0xF67FF, 0xA, 1, false, 0xC), 0, 15),
            None
        );
        assert_eq!(
            code_fetch_window(seg(0, 0xF67FF, 0x2, 1, true, 0xC), 0, 15),
            None
        );
        assert_eq!(code_fetch_window(gate(0xE019, 0, 0xC, 1, 0), 0, 15), None);
    }

    proptest! {
        #[test]
        fn code_fetch_window_never_passes_the_limit(
            base in any::<u32>(), limit in 0u32..0x10_0000, g in any::<bool>(),
            eip in any::<u32>(), max in 0usize..16,
        ) {
            let d = seg(base, limit, 0xA, 1, true, if g { 0xC } else { 0x4 });
            if let Some((linear, len)) = code_fetch_window(d, eip, max) {
                prop_assert!(len <= max);
                prop_assert!(u64::from(eip) + len as u64 <= d.limit_bytes());
                prop_assert_eq!(linear, base.wrapping_add(eip));
            } else {
                prop_assert!(u64::from(eip) >= d.limit_bytes());
            }
        }
    }

    #[test]
    fn code_selector_accepts_what_the_cpu_takes() {
        let code1 = Some(seg(0, 0xF67FF, 0xA, 1, true, 0xC));
        assert!(code_selector_accepts(0x19, code1, 0x1000));
        assert!(code_selector_accepts(0xD, code1, 0xF67F_FFFF));
        assert!(!code_selector_accepts(0x19, code1, 0xF680_0000));
        assert!(!code_selector_accepts(0x18, code1, 0x1000), "RPL 0");
        assert!(!code_selector_accepts(0x1B, code1, 0x1000), "RPL 3, DPL 1");
        assert!(!code_selector_accepts(0x19, None, 0x1000));
        let not_present = Some(seg(0, 0xF67FF, 0xA, 1, false, 0xC));
        assert!(!code_selector_accepts(0x19, not_present, 0));
        let data = Some(seg(0, 0xF67FF, 0x2, 1, true, 0xC));
        assert!(!code_selector_accepts(0x19, data, 0));
        // Conforming DPL 1 code at RPL 3 runs in ring 3.
        let conforming = Some(seg(0, 0xF67FF, 0xE, 1, true, 0xC));
        assert!(code_selector_accepts(0x1B, conforming, 0));
        let ring2 = Some(seg(0, 0xF67FF, 0xA, 2, true, 0xC));
        assert!(
            !code_selector_accepts(0x1A, ring2, 0),
            "ring 2 is no guest ring"
        );
    }

    #[test]
    fn stack_range_applies_base_and_limit() {
        let flat = Some(seg(0, 0xF67FF, 0x2, 1, true, 0xC));
        assert_eq!(stack_range(0x11, 1, flat, 0x5000, 12), Some(0x5000));
        assert_eq!(
            stack_range(0x11, 1, flat, 0xF67F_FFF8, 8),
            Some(0xF67F_FFF8)
        );
        assert_eq!(stack_range(0x11, 1, flat, 0xF67F_FFF8, 12), None);
        assert_eq!(
            stack_range(0x13, 3, flat, 0x5000, 12),
            None,
            "DPL 1 at ring 3"
        );
        assert_eq!(
            stack_range(0x11, 3, flat, 0x5000, 12),
            None,
            "RPL 1 at ring 3"
        );
        let based = Some(seg(0x10_0000, 0xFFF, 0x2, 1, true, 0x4));
        assert_eq!(stack_range(0x11, 1, based, 0xFF4, 12), Some(0x10_0FF4));
        assert_eq!(stack_range(0x11, 1, based, 0xFF8, 12), None);
        let read_only = Some(seg(0, 0xF67FF, 0x0, 1, true, 0xC));
        assert_eq!(stack_range(0x11, 1, read_only, 0x5000, 4), None);
        let code = Some(seg(0, 0xF67FF, 0xA, 1, true, 0xC));
        assert_eq!(stack_range(0x11, 1, code, 0x5000, 4), None);
        assert_eq!(stack_range(0x11, 1, None, 0x5000, 4), None);
        // Expand-down, 16-bit: offsets above 0xFFF up to 0xFFFF.
        let down = Some(seg(0x20_0000, 0xFFF, 0x6, 1, true, 0x0));
        assert_eq!(stack_range(0x11, 1, down, 0x1000, 16), Some(0x20_1000));
        assert_eq!(stack_range(0x11, 1, down, 0xFF0, 16), None);
        assert_eq!(stack_range(0x11, 1, down, 0xFFF4, 16), None);
    }
}
