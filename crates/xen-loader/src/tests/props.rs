//! Property tests: mutated or truncated images never panic the loader, and whatever
//! it accepts satisfies the `GuestImage` invariants; every layout it computes obeys
//! the §4.3 rules.

use proptest::prelude::*;

use super::elf_writer::{NotesPlace, TestElf};
use crate::{BootstrapLayout, Builder, GuestImage, LayoutRequest, LoadTarget};

const HOLE: u64 = 0xF580_0000;

/// A target without memory that checks the loader's coverage rule.
struct CoverageTarget {
    cursor: u64,
    end: u64,
}

impl CoverageTarget {
    fn op(&mut self, va: u32, len: u64) -> Result<(), ()> {
        assert_eq!(u64::from(va), self.cursor, "non-contiguous load");
        assert!(len > 0);
        self.cursor += len;
        assert!(self.cursor <= self.end, "load past virt_kend");
        Ok(())
    }
}

impl LoadTarget for CoverageTarget {
    type Error = ();
    fn write(&mut self, va: u32, bytes: &[u8]) -> Result<(), ()> {
        self.op(va, bytes.len() as u64)
    }
    fn zero(&mut self, va: u32, len: u32) -> Result<(), ()> {
        self.op(va, u64::from(len))
    }
}

fn check_accepted(img: &GuestImage<'_>, nr_pages: u32, initrd_len: u32) {
    let (kstart, kend) = (img.virt_kstart(), img.virt_kend());
    assert!(img.virt_base() <= kstart && kstart <= img.entry() && img.entry() <= kend);
    assert!(u64::from(kend) <= HOLE);
    assert_eq!(img.virt_base() % 4096, 0);
    for s in img.segments() {
        assert!(s.load_va >= kstart && s.end() <= u64::from(kend));
        assert!(s.elf.filesz <= s.elf.memsz);
        assert_eq!(img.segment_bytes(s).len(), s.elf.filesz as usize);
    }
    if let Some(hp) = img.hypercall_page() {
        assert!(hp >= kstart && u64::from(hp) + 4096 <= u64::from(kend));
    }
    let mut target = CoverageTarget {
        cursor: u64::from(kstart),
        end: u64::from(kend),
    };
    img.load(&mut target).unwrap();
    assert_eq!(target.cursor, u64::from(kend));
    for builder in [Builder::Dom0, Builder::DomU] {
        let req = LayoutRequest::for_image(img, builder, nr_pages, initrd_len);
        if let Ok(layout) = BootstrapLayout::compute(&req) {
            check_layout(&req, &layout);
        }
    }
}

fn check_layout(req: &LayoutRequest, l: &BootstrapLayout) {
    let page = 4096u32;
    // Elements in order, each on the page after the previous one.
    let mut order = vec![l.kernel];
    order.extend(l.initrd);
    order.push(l.p2m);
    order.push(l.start_info);
    order.extend(l.xenstore);
    order.extend(l.console);
    order.push(l.page_tables);
    order.push(l.stack);
    for pair in order.windows(2) {
        assert_eq!(pair[0].end(), pair[1].va, "{l:?}");
    }
    assert_eq!(l.kernel.va, req.virt_kstart / page * page);
    assert!(l.kernel.end() >= req.virt_kend);
    assert_eq!(
        l.p2m.pages,
        (u64::from(req.nr_pages) * 4).div_ceil(4096) as u32
    );
    assert_eq!(l.start_info.pages, 1);
    assert_eq!(l.stack.pages, 1);
    assert_eq!(l.xenstore.is_some(), req.builder == Builder::DomU);
    assert_eq!(l.initrd.is_some(), req.initrd_len > 0);
    // Region end: 4 MiB aligned, >= 512 KiB padding, the smallest such boundary.
    let (v_end, stack_end) = (u64::from(l.v_end), u64::from(l.stack.end()));
    assert_eq!(v_end % (4 << 20), 0);
    assert!(v_end - stack_end >= 512 << 10);
    assert!(v_end - (4 << 20) < stack_end + (512 << 10));
    assert!(v_end <= HOLE);
    assert!(l.nr_bootstrap_pages() <= req.nr_pages);
    // Page tables: L3 + L2s + one L1 per 2 MiB slot touched.
    let l1s = ((v_end - 1) >> 21) - (u64::from(l.virt_base) >> 21) + 1;
    assert_eq!(u64::from(l.nr_l1_frames), l1s);
    assert_eq!(
        l.nr_pt_frames(),
        1 + l.nr_l2_frames() + l.nr_l1_frames,
        "{l:?}"
    );
    assert!(l.l2_slots & 0b1000 != 0);
    if req.builder == Builder::Dom0 {
        assert_eq!(l.l2_slots, 0b1111);
    }
    for va in [l.virt_base, l.v_end - 1] {
        let slot = va >> 30;
        assert!(l.l2_pfn(slot).is_some());
        assert!(l.is_page_table_pfn(l.l1_pfn(va).unwrap()));
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let mut section_only = TestElf::linux();
    section_only.notes_place = NotesPlace::SectionOnly;
    vec![
        TestElf::linux().build(),
        section_only.build(),
        TestElf::minios_legacy().build(),
    ]
}

proptest! {
    #[test]
    fn mutated_images_never_panic(
        which in 0usize..3,
        mutations in prop::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..24),
        nr_pages in 0u32..0x20_0000,
        initrd_len in prop_oneof![Just(0u32), any::<u32>(), 0u32..0x100_0000],
    ) {
        let mut bytes = fixtures().swap_remove(which);
        for (in_headers, at, value) in mutations {
            // Half the mutations hit the headers, where the interesting fields are.
            let span = if in_headers { bytes.len().min(256) } else { bytes.len() };
            let at = at % span;
            bytes[at] = value;
        }
        if let Ok(img) = GuestImage::parse(&bytes) {
            check_accepted(&img, nr_pages, initrd_len);
        }
    }

    #[test]
    fn mutated_words_never_panic(
        which in 0usize..3,
        mutations in prop::collection::vec((0usize..64, any::<u32>()), 1..6),
        nr_pages in 0u32..0x20_0000,
    ) {
        // Whole 32-bit words in the first 256 bytes: header and program header fields.
        let mut bytes = fixtures().swap_remove(which);
        for (word, value) in mutations {
            let at = (word * 4).min(bytes.len() - 4);
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        if let Ok(img) = GuestImage::parse(&bytes) {
            check_accepted(&img, nr_pages, 0);
        }
    }

    #[test]
    fn truncated_images_never_panic(which in 0usize..3, keep in 0usize..4096) {
        let bytes = fixtures().swap_remove(which);
        let keep = keep.min(bytes.len());
        if let Ok(img) = GuestImage::parse(&bytes[..keep]) {
            check_accepted(&img, 16384, 0);
        }
    }

    #[test]
    fn layouts_obey_the_rules(
        domu in any::<bool>(),
        virt_base_page in 0u32..0xF5800,
        kstart_off in 0u32..0x100_0000,
        klen in 0u32..0x400_0000,
        nr_pages in 0u32..0x10_0000,
        initrd_len in prop_oneof![Just(0u32), 0u32..0x200_0000, any::<u32>()],
    ) {
        let virt_base = virt_base_page << 12;
        let virt_kstart = virt_base.saturating_add(kstart_off);
        let virt_kend = virt_kstart.saturating_add(klen);
        let req = LayoutRequest {
            builder: if domu { Builder::DomU } else { Builder::Dom0 },
            virt_base,
            virt_kstart,
            virt_kend,
            nr_pages,
            initrd_len,
        };
        if let Ok(layout) = BootstrapLayout::compute(&req) {
            check_layout(&req, &layout);
        }
    }
}
