//! §4.3 bootstrap layout: known sizes, padding edges, page-table counts, limits, and
//! a page walk over the emitted bootstrap page tables.

use std::collections::HashMap;

use super::elf_writer::TestElf;
use super::with_image;
use crate::layout::{
    BOOTSTRAP_L1_FLAGS, BOOTSTRAP_L2_FLAGS, BOOTSTRAP_L3_FLAGS, PTE_RW, region_end,
};
use crate::{BootstrapLayout, Builder, Element, LayoutError, LayoutRequest};

fn linux_request(builder: Builder, nr_pages: u32, initrd_len: u32) -> LayoutRequest {
    LayoutRequest {
        builder,
        virt_base: 0xC000_0000,
        virt_kstart: 0xC010_0000,
        virt_kend: 0xC010_3000,
        nr_pages,
        initrd_len,
    }
}

fn el(va: u32, pages: u32) -> Element {
    Element { va, pages }
}

#[test]
fn dom0_known_layout() {
    let l = BootstrapLayout::compute(&linux_request(Builder::Dom0, 16384, 0x5001)).unwrap();
    assert_eq!(l.kernel, el(0xC010_0000, 3));
    assert_eq!(l.initrd, Some(el(0xC010_3000, 6)));
    assert_eq!(l.mod_start(), 0xC010_3000);
    assert_eq!(l.initrd_len, 0x5001);
    assert_eq!(l.p2m, el(0xC010_9000, 16));
    assert_eq!(l.mfn_list(), 0xC010_9000);
    assert_eq!(l.start_info, el(0xC011_9000, 1));
    assert_eq!(l.start_info_va(), 0xC011_9000);
    assert_eq!(l.xenstore, None);
    assert_eq!(l.console, None);
    // L3 + four L2s + two L1s for [0xC0000000, 0xC0400000).
    assert_eq!(l.page_tables, el(0xC011_A000, 7));
    assert_eq!(l.pt_base(), 0xC011_A000);
    assert_eq!(l.nr_pt_frames(), 7);
    assert_eq!(l.nr_l2_frames(), 4);
    assert_eq!(l.nr_l1_frames, 2);
    assert_eq!(l.stack, el(0xC012_1000, 1));
    assert_eq!(l.stack_top(), 0xC012_2000);
    assert_eq!(l.v_end, 0xC040_0000);
    assert_eq!(l.nr_bootstrap_pages(), 1024);
    // Table pfns.
    assert_eq!(l.l3_pfn(), 0x11A);
    assert_eq!(
        (0..5).map(|s| l.l2_pfn(s)).collect::<Vec<_>>(),
        vec![Some(0x11B), Some(0x11C), Some(0x11D), Some(0x11E), None]
    );
    assert_eq!(l.l1_pfn(0xC000_0000), Some(0x11F));
    assert_eq!(l.l1_pfn(0xC03F_FFFF), Some(0x120));
    assert_eq!(l.l1_pfn(0xC040_0000), None);
    assert_eq!(l.l1_pfn(0xBFFF_FFFF), None);
    assert!(l.is_page_table_pfn(0x11A) && l.is_page_table_pfn(0x120));
    assert!(!l.is_page_table_pfn(0x119) && !l.is_page_table_pfn(0x121));
    assert_eq!(l.pfn_of(0xC012_1FFF), Some(0x121));
    assert_eq!(l.va_of(0x121), Some(0xC012_1000));
    assert_eq!(l.va_of(1024), None);
}

#[test]
fn domu_known_layout() {
    let l = BootstrapLayout::compute(&linux_request(Builder::DomU, 16384, 0x5001)).unwrap();
    assert_eq!(l.p2m, el(0xC010_9000, 16));
    assert_eq!(l.start_info, el(0xC011_9000, 1));
    assert_eq!(l.xenstore, Some(el(0xC011_A000, 1)));
    assert_eq!(l.console, Some(el(0xC011_B000, 1)));
    // L3 + the L2 for slot 3 (the region lies in it) + two L1s.
    assert_eq!(l.page_tables, el(0xC011_C000, 4));
    assert_eq!(l.l2_slots, 0b1000);
    assert_eq!(l.l2_pfn(3), Some(0x11D));
    assert_eq!(l.l2_pfn(0), None);
    assert_eq!(l.stack, el(0xC012_0000, 1));
    assert_eq!(l.stack_top(), 0xC012_1000);
    assert_eq!(l.v_end, 0xC040_0000);
}

#[test]
fn domu_below_3gib_gets_an_l2_for_slot_3() {
    let req = LayoutRequest {
        builder: Builder::DomU,
        virt_base: 0,
        virt_kstart: 0,
        virt_kend: 0x4000,
        nr_pages: 8192,
        initrd_len: 0,
    };
    let l = BootstrapLayout::compute(&req).unwrap();
    assert_eq!(l.kernel, el(0, 4));
    assert_eq!(l.initrd, None);
    assert_eq!(l.mod_start(), 0);
    assert_eq!(l.p2m, el(0x4000, 8));
    assert_eq!(l.start_info, el(0xC000, 1));
    assert_eq!(l.xenstore, Some(el(0xD000, 1)));
    assert_eq!(l.console, Some(el(0xE000, 1)));
    assert_eq!(l.page_tables, el(0xF000, 5));
    assert_eq!(l.l2_slots, 0b1001);
    assert_eq!(l.l2_pfn(0), Some(0x10));
    assert_eq!(l.l2_pfn(3), Some(0x11));
    assert_eq!(l.l1_pfn(0), Some(0x12));
    assert_eq!(l.l1_pfn(0x20_0000), Some(0x13));
    assert_eq!(l.stack, el(0x14000, 1));
    assert_eq!(l.v_end, 0x40_0000);
}

#[test]
fn dom0_always_has_four_l2s() {
    let req = LayoutRequest {
        builder: Builder::Dom0,
        virt_base: 0,
        virt_kstart: 0,
        virt_kend: 0x4000,
        nr_pages: 8192,
        initrd_len: 0,
    };
    let l = BootstrapLayout::compute(&req).unwrap();
    assert_eq!(l.l2_slots, 0b1111);
    assert_eq!(l.nr_pt_frames(), 1 + 4 + 2);
}

#[test]
fn padding_rule_edges() {
    // Exactly 512 KiB of slack: kept.
    assert_eq!(region_end(0xC038_0000), 0xC040_0000);
    // 511 KiB: another 4 MiB.
    assert_eq!(region_end(0xC038_0400), 0xC080_0000);
    // Ending on a boundary: no slack at all, so another 4 MiB.
    assert_eq!(region_end(0xC040_0000), 0xC080_0000);
    assert_eq!(region_end(0xC000_1000), 0xC040_0000);
}

#[test]
fn exactly_512_kib_of_padding_is_enough() {
    // kernel end K, P2M 16, start_info 1, tables 7, stack 1: stack end = K + 25 pages.
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_kend = 0xC038_0000 - 25 * 0x1000;
    let l = BootstrapLayout::compute(&req).unwrap();
    assert_eq!(l.stack.end(), 0xC038_0000);
    assert_eq!(l.v_end, 0xC040_0000);
    assert_eq!(l.v_end - l.stack.end(), 512 << 10);
    assert_eq!(l.nr_pt_frames(), 7);
}

#[test]
fn less_than_512_kib_of_padding_adds_4_mib() {
    // One page more: the slack would be 508 KiB, so the region grows by 4 MiB, which
    // needs two more L1s, which move the stack by two pages.
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_kend = 0xC038_0000 - 24 * 0x1000;
    let l = BootstrapLayout::compute(&req).unwrap();
    assert_eq!(l.nr_l1_frames, 4);
    assert_eq!(l.nr_pt_frames(), 9);
    assert_eq!(l.stack.end(), 0xC038_3000);
    assert_eq!(l.v_end, 0xC080_0000);
    assert!(l.v_end - l.stack.end() >= 512 << 10);
}

#[test]
fn domain_too_small() {
    let l = BootstrapLayout::compute(&linux_request(Builder::Dom0, 1024, 0x5001)).unwrap();
    assert_eq!(l.nr_bootstrap_pages(), 1024);
    assert_eq!(
        BootstrapLayout::compute(&linux_request(Builder::Dom0, 1023, 0x5001)),
        Err(LayoutError::DomainTooSmall {
            needed_pages: 1024,
            nr_pages: 1023
        })
    );
    let err = BootstrapLayout::compute(&linux_request(Builder::DomU, 16, 0)).unwrap_err();
    assert!(matches!(
        err,
        LayoutError::DomainTooSmall { nr_pages: 16, .. }
    ));
    assert!(err.to_string().contains("the domain has 16"));
}

#[test]
fn region_must_stay_below_the_hypervisor_hole() {
    let big = |kend| LayoutRequest {
        builder: Builder::Dom0,
        virt_base: 0xC000_0000,
        virt_kstart: 0xC010_0000,
        virt_kend: kend,
        nr_pages: 0x40000,
        initrd_len: 0,
    };
    let l = BootstrapLayout::compute(&big(0xF500_0000)).unwrap();
    assert_eq!(l.v_end, 0xF540_0000);
    assert_eq!(l.nr_l1_frames, 426);
    // Ending exactly at the hole is allowed.
    let l = BootstrapLayout::compute(&big(0xF530_0000)).unwrap();
    assert_eq!(l.v_end, 0xF580_0000);
    assert_eq!(l.nr_l1_frames, 428);
    assert_eq!(
        BootstrapLayout::compute(&big(0xF550_0000)),
        Err(LayoutError::ReachesHypervisorHole { v_end: 0xF5C0_0000 })
    );
    assert!(matches!(
        BootstrapLayout::compute(&big(0xF580_0000)),
        Err(LayoutError::ReachesHypervisorHole { .. })
    ));
    // Elements alone past the hole (a huge initrd).
    let mut req = big(0xC010_3000);
    req.initrd_len = 0x3600_0000;
    assert!(matches!(
        BootstrapLayout::compute(&req),
        Err(LayoutError::ReachesHypervisorHole { .. })
    ));
}

#[test]
fn request_sanity() {
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_base = 0xC000_0800;
    assert_eq!(
        BootstrapLayout::compute(&req),
        Err(LayoutError::VirtBaseNotPageAligned {
            virt_base: 0xC000_0800
        })
    );
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_kstart = 0xBFFF_F000;
    assert!(matches!(
        BootstrapLayout::compute(&req),
        Err(LayoutError::KernelOutsideRegion { .. })
    ));
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_kend = req.virt_kstart - 1;
    assert!(matches!(
        BootstrapLayout::compute(&req),
        Err(LayoutError::KernelOutsideRegion { .. })
    ));
    // Kernel starting exactly at virt_base is fine.
    let mut req = linux_request(Builder::Dom0, 16384, 0);
    req.virt_kstart = req.virt_base;
    assert_eq!(
        BootstrapLayout::compute(&req).unwrap().kernel,
        el(0xC000_0000, 0x103)
    );
}

#[test]
fn unaligned_kernel_bounds_widen_to_pages() {
    let mut req = linux_request(Builder::DomU, 16384, 1);
    req.virt_kstart = 0xC010_0123;
    req.virt_kend = 0xC010_2001;
    let l = BootstrapLayout::compute(&req).unwrap();
    assert_eq!(l.kernel, el(0xC010_0000, 3));
    assert_eq!(l.initrd, Some(el(0xC010_3000, 1)));
}

#[test]
fn layout_from_a_parsed_image() {
    with_image(&TestElf::linux(), |img| {
        let req = LayoutRequest::for_image(img, Builder::Dom0, 16384, 0x5001);
        assert_eq!(req, linux_request(Builder::Dom0, 16384, 0x5001));
    });
}

/// Emits the page tables, then walks every address of the region through them.
fn walk_check(l: &BootstrapLayout) {
    let mut tables: HashMap<u32, HashMap<u32, (u8, u32, u64)>> = HashMap::new();
    let mut l1_count = 0;
    l.for_each_bootstrap_pte(|pte| {
        assert!(l.is_page_table_pfn(pte.table_pfn), "{pte:?}");
        assert!(pte.index < 512);
        let prev = tables
            .entry(pte.table_pfn)
            .or_default()
            .insert(pte.index, (pte.level, pte.target_pfn, pte.flags));
        assert!(prev.is_none(), "entry written twice: {pte:?}");
        if pte.level == 1 {
            l1_count += 1;
        }
    });
    assert_eq!(l1_count, l.nr_bootstrap_pages());
    // Every table frame that holds an entry is a bootstrap table; L2s for slots the
    // region does not reach stay empty.
    assert!(tables.len() as u32 <= l.nr_pt_frames());
    for i in 0..l.nr_l1_frames {
        assert!(tables.contains_key(&(l.l3_pfn() + 1 + l.nr_l2_frames() + i)));
    }
    for pfn in 0..l.nr_bootstrap_pages() {
        let va = l.virt_base + pfn * 4096;
        let l3 = &tables[&l.l3_pfn()];
        let &(lvl, l2_pfn, flags) = &l3[&(va >> 30)];
        assert_eq!((lvl, flags), (3, BOOTSTRAP_L3_FLAGS));
        let &(lvl, l1_pfn, flags) = &tables[&l2_pfn][&((va >> 21) & 511)];
        assert_eq!((lvl, flags), (2, BOOTSTRAP_L2_FLAGS));
        assert_eq!(Some(l1_pfn), l.l1_pfn(va));
        let &(lvl, target, flags) = &tables[&l1_pfn][&((va >> 12) & 511)];
        assert_eq!((lvl, target), (1, pfn));
        let expected = if l.page_tables.contains(va) {
            BOOTSTRAP_L1_FLAGS & !PTE_RW
        } else {
            BOOTSTRAP_L1_FLAGS
        };
        assert_eq!(flags, expected, "va {va:#x}");
    }
}

#[test]
fn bootstrap_page_tables_map_the_region() {
    walk_check(&BootstrapLayout::compute(&linux_request(Builder::Dom0, 16384, 0x5001)).unwrap());
    walk_check(&BootstrapLayout::compute(&linux_request(Builder::DomU, 16384, 0)).unwrap());
    let minios = LayoutRequest {
        builder: Builder::DomU,
        virt_base: 0,
        virt_kstart: 0,
        virt_kend: 0x4000,
        nr_pages: 8192,
        initrd_len: 0,
    };
    let l = BootstrapLayout::compute(&minios).unwrap();
    walk_check(&l);
    // The slot-3 L2 is referenced from the L3 even though nothing maps through it.
    let mut l3_entries = Vec::new();
    l.for_each_bootstrap_pte(|pte| {
        if pte.level == 3 {
            l3_entries.push((pte.index, pte.target_pfn));
        }
    });
    assert_eq!(l3_entries, vec![(0, 0x10), (3, 0x11)]);
    // A region straddling a 1 GiB boundary, with an unaligned-to-2-MiB base.
    let straddle = LayoutRequest {
        builder: Builder::DomU,
        virt_base: 0xBFF0_0000,
        virt_kstart: 0xBFF0_0000,
        virt_kend: 0xC000_4000,
        nr_pages: 4096,
        initrd_len: 0,
    };
    let l = BootstrapLayout::compute(&straddle).unwrap();
    assert_eq!(l.l2_slots, 0b1100);
    walk_check(&l);
}

#[test]
fn element_pfns() {
    let l = BootstrapLayout::compute(&linux_request(Builder::Dom0, 16384, 0x5001)).unwrap();
    assert_eq!(l.kernel.first_pfn(l.virt_base), 0x100);
    assert_eq!(l.start_info.first_pfn(l.virt_base), 0x119);
    assert_eq!(l.page_tables.first_pfn(l.virt_base), l.l3_pfn());
    assert!(l.stack.contains(0xC012_1FFF) && !l.stack.contains(0xC012_2000));
}

#[test]
fn layout_errors_explain_themselves() {
    let texts = [
        LayoutError::VirtBaseNotPageAligned { virt_base: 0x800 }.to_string(),
        LayoutError::KernelOutsideRegion {
            virt_kstart: 1,
            virt_kend: 0,
        }
        .to_string(),
        LayoutError::ReachesHypervisorHole { v_end: 0xF5C0_0000 }.to_string(),
        LayoutError::DomainTooSmall {
            needed_pages: 1024,
            nr_pages: 1000,
        }
        .to_string(),
    ];
    assert!(texts[0].contains("0x800"));
    assert!(texts[1].contains("bootstrap region"));
    assert!(texts[2].contains("0xf5c00000") && texts[2].contains("hypervisor hole"));
    assert_eq!(
        texts[3],
        "bootstrap region needs 1024 pages (4096 KiB) but the domain has 1000 (4000 KiB)"
    );
}
