//! Loading through a `LoadTarget`: contents, zeroing, coverage, order, errors.

use super::elf_writer::{self as w, LoadSpec, TestElf, num4};
use super::with_image;
use crate::{GuestImage, LoadTarget};
use xen_abi::elfnote::*;

/// Guest memory `[base, base + mem.len())`, pre-filled with 0xEE so unwritten bytes
/// show, recording every operation.
pub struct VecTarget {
    pub base: u32,
    pub mem: Vec<u8>,
    pub ops: Vec<(bool, u32, u32)>, // (is_write, va, len)
}

#[derive(Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub va: u32,
    pub len: u64,
}

impl VecTarget {
    pub fn new(base: u32, len: usize) -> Self {
        VecTarget {
            base,
            mem: vec![0xEE; len],
            ops: Vec::new(),
        }
    }

    fn range(&self, va: u32, len: u64) -> Result<core::ops::Range<usize>, OutOfRange> {
        let start = u64::from(va)
            .checked_sub(u64::from(self.base))
            .ok_or(OutOfRange { va, len })?;
        let end = start + len;
        if end > self.mem.len() as u64 {
            return Err(OutOfRange { va, len });
        }
        Ok(start as usize..end as usize)
    }

    pub fn at(&self, va: u32, len: usize) -> &[u8] {
        let start = (va - self.base) as usize;
        &self.mem[start..start + len]
    }
}

impl LoadTarget for VecTarget {
    type Error = OutOfRange;

    fn write(&mut self, va: u32, bytes: &[u8]) -> Result<(), OutOfRange> {
        let r = self.range(va, bytes.len() as u64)?;
        self.mem[r].copy_from_slice(bytes);
        self.ops.push((true, va, bytes.len() as u32));
        Ok(())
    }

    fn zero(&mut self, va: u32, len: u32) -> Result<(), OutOfRange> {
        let r = self.range(va, u64::from(len))?;
        self.mem[r].fill(0);
        self.ops.push((false, va, len));
        Ok(())
    }
}

/// Checks that the operations cover `[start, end)` exactly once, in order.
fn assert_covers(ops: &[(bool, u32, u32)], start: u32, end: u32) {
    let mut cursor = start;
    for &(_, va, len) in ops {
        assert_eq!(va, cursor, "gap or overlap at {va:#x}");
        assert!(len > 0, "empty operation at {va:#x}");
        cursor = va + len;
    }
    assert_eq!(cursor, end);
}

#[test]
fn linux_image_loads_segments_and_zeroes_bss() {
    with_image(&TestElf::linux(), |img| {
        let mut t = VecTarget::new(0xC000_0000, 0x20_0000);
        img.load(&mut t).unwrap();
        assert_eq!(t.at(0xC010_0000, 0x100), &w::pattern(0x100, 1)[..]);
        assert!(t.at(0xC010_0100, 0x1F00).iter().all(|&b| b == 0));
        assert_eq!(t.at(0xC010_2000, 0x40), &w::pattern(0x40, 2)[..]);
        assert!(t.at(0xC010_2040, 0xFC0).iter().all(|&b| b == 0));
        // Nothing outside the image is touched.
        assert!(t.at(0xC00F_F000, 0x1000).iter().all(|&b| b == 0xEE));
        assert!(t.at(0xC010_3000, 0x1000).iter().all(|&b| b == 0xEE));
        assert_covers(&t.ops, img.virt_kstart(), img.virt_kend());
    });
}

#[test]
fn gaps_between_segments_are_zeroed_and_order_follows_addresses() {
    let mut elf = TestElf::linux().without_note(XEN_ELFNOTE_HYPERCALL_PAGE);
    // Program headers out of address order, with a gap.
    elf.loads = vec![
        LoadSpec {
            vaddr: 0,
            paddr: 0x10_5000,
            bytes: vec![0xBB; 0x10],
            memsz: 0x10,
        },
        LoadSpec {
            vaddr: 0,
            paddr: 0x10_0000,
            bytes: vec![0xAA; 0x800],
            memsz: 0x800,
        },
    ];
    with_image(&elf, |img| {
        assert_eq!(
            (img.virt_kstart(), img.virt_kend()),
            (0xC010_0000, 0xC010_5010)
        );
        let mut t = VecTarget::new(0xC010_0000, 0x6000);
        img.load(&mut t).unwrap();
        assert!(t.at(0xC010_0000, 0x800).iter().all(|&b| b == 0xAA));
        assert!(t.at(0xC010_0800, 0x4800).iter().all(|&b| b == 0));
        assert!(t.at(0xC010_5000, 0x10).iter().all(|&b| b == 0xBB));
        assert!(t.at(0xC010_5010, 0x10).iter().all(|&b| b == 0xEE));
        assert_eq!(
            t.ops,
            vec![
                (true, 0xC010_0000, 0x800),
                (false, 0xC010_0800, 0x4800),
                (true, 0xC010_5000, 0x10),
            ]
        );
    });
}

#[test]
fn pure_bss_segment_is_only_zeroed() {
    let mut elf = TestElf::linux();
    elf.loads[1].bytes.clear();
    with_image(&elf, |img| {
        let mut t = VecTarget::new(0xC010_0000, 0x3000);
        img.load(&mut t).unwrap();
        assert_eq!(t.ops.last(), Some(&(false, 0xC010_2000, 0x1000)));
        assert_covers(&t.ops, 0xC010_0000, 0xC010_3000);
    });
}

#[test]
fn target_errors_stop_the_load() {
    with_image(&TestElf::linux(), |img| {
        // Memory ends inside the first segment's bss.
        let mut t = VecTarget::new(0xC010_0000, 0x1000);
        let err = img.load(&mut t).unwrap_err();
        assert_eq!(
            err,
            OutOfRange {
                va: 0xC010_0100,
                len: 0x1F00
            }
        );
        assert_eq!(t.ops.len(), 1);
    });
}

#[test]
fn legacy_image_loads_at_zero() {
    with_image(&TestElf::minios_legacy(), |img| {
        let mut t = VecTarget::new(0, 0x4000);
        img.load(&mut t).unwrap();
        assert_eq!(t.at(0, 0x80), &w::pattern(0x80, 3)[..]);
        assert_covers(&t.ops, 0, 0x4000);
    });
}

#[test]
fn load_through_a_trait_object() {
    let bytes = TestElf::linux()
        .with_note(XEN_ELFNOTE_ENTRY, num4(0xC010_0000))
        .build();
    let img = GuestImage::parse(&bytes).unwrap();
    let mut t = VecTarget::new(0xC010_0000, 0x3000);
    let target: &mut dyn LoadTarget<Error = OutOfRange> = &mut t;
    img.load(target).unwrap();
    assert_covers(&t.ops, 0xC010_0000, 0xC010_3000);
}
