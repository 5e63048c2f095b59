//! Address rules: load VA = p_paddr + VIRT_BASE − PADDR_OFFSET, defaults, overflow,
//! overlap, the hypervisor hole, entry, hypercall page, INIT_P2M, HV_START_LOW.

use super::elf_writer::{self as w, LoadSpec, TestElf, num4, num8};
use super::{refusal, with_image};
use crate::LoadError;
use xen_abi::elfnote::*;

#[test]
fn load_address_uses_paddr_virt_base_and_paddr_offset() {
    // VIRT_BASE 0xC0000000, PADDR_OFFSET 0x100000: paddr 0x100000 loads at VIRT_BASE.
    let mut elf = TestElf::linux().with_note(XEN_ELFNOTE_PADDR_OFFSET, num4(0x10_0000));
    elf.loads[0].vaddr = 0xDEAD_0000; // p_vaddr plays no part
    let elf = elf
        .with_note(XEN_ELFNOTE_ENTRY, num4(0xC000_0000))
        .with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(0xC000_1000));
    with_image(&elf, |img| {
        assert_eq!(img.paddr_offset(), 0x10_0000);
        assert_eq!(img.virt_kstart(), 0xC000_0000);
        assert_eq!(img.virt_kend(), 0xC000_3000);
        assert_eq!(img.segments()[0].load_va, 0xC000_0000);
    });
}

#[test]
fn paddr_offset_needs_virt_base() {
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_VIRT_BASE);
    assert_eq!(refusal(&elf), LoadError::PaddrOffsetWithoutVirtBase);
}

/// A kernel linked at its physical address, with neither VIRT_BASE nor PADDR_OFFSET.
fn flat_kernel() -> TestElf {
    let mut elf = TestElf::linux()
        .without_note(XEN_ELFNOTE_VIRT_BASE)
        .without_note(XEN_ELFNOTE_PADDR_OFFSET)
        .with_note(XEN_ELFNOTE_ENTRY, num4(0x10_0000))
        .with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(0x10_1000));
    elf.loads[0].vaddr = 0x10_0000;
    elf.loads[1].vaddr = 0x10_2000;
    elf
}

#[test]
fn virt_base_and_paddr_offset_default_to_zero_with_notes() {
    with_image(&flat_kernel(), |img| {
        assert_eq!(img.virt_base(), 0);
        assert_eq!(img.paddr_offset(), 0);
        assert_eq!(img.virt_kstart(), 0x10_0000);
        assert_eq!(img.entry(), 0x10_0000);
    });
}

#[test]
fn virt_base_must_be_page_aligned() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_VIRT_BASE, num4(0xC000_0800));
    assert_eq!(
        refusal(&elf),
        LoadError::VirtBaseNotPageAligned {
            virt_base: 0xC000_0800
        }
    );
}

#[test]
fn virt_base_may_not_lie_above_the_image() {
    // VIRT_BASE exactly at the image start: fine.
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_VIRT_BASE, num4(0xC010_0000))
        .with_note(XEN_ELFNOTE_PADDR_OFFSET, num4(0x10_0000));
    with_image(&elf, |img| {
        assert_eq!(img.virt_base(), img.virt_kstart());
        assert_eq!(img.virt_kstart(), 0xC010_0000);
    });
    // One page above it.
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_VIRT_BASE, num4(0xC010_1000))
        .with_note(XEN_ELFNOTE_PADDR_OFFSET, num4(0x10_1000));
    assert_eq!(
        refusal(&elf),
        LoadError::VirtBaseAboveImage {
            virt_base: 0xC010_1000,
            virt_kstart: 0xC010_0000
        }
    );
}

#[test]
fn load_address_below_zero_overflows() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_PADDR_OFFSET, num4(0xD000_0000));
    assert_eq!(refusal(&elf), LoadError::AddressOverflow { index: 0 });
}

#[test]
fn load_address_above_4gib_overflows() {
    let mut elf = TestElf::linux();
    elf.loads[1].paddr = 0x4000_0000; // + 0xC0000000 = 4 GiB
    assert_eq!(refusal(&elf), LoadError::AddressOverflow { index: 1 });
    let mut elf = TestElf::linux();
    elf.loads[1].paddr = 0x3FFF_F000;
    elf.loads[1].memsz = 0x2000; // starts below 4 GiB, ends above
    assert_eq!(refusal(&elf), LoadError::AddressOverflow { index: 1 });
}

#[test]
fn segments_must_end_below_the_hypervisor_hole() {
    // Ending exactly at 0xF5800000: fine.
    let mut elf = TestElf::linux();
    elf.loads[1].paddr = 0x357F_F000;
    elf.loads[1].memsz = 0x1000;
    with_image(&elf, |img| assert_eq!(img.virt_kend(), 0xF580_0000));
    // One byte into the hole.
    elf.loads[1].memsz = 0x1001;
    assert_eq!(
        refusal(&elf),
        LoadError::ImageInHypervisorHole {
            index: 1,
            end: 0xF580_0001
        }
    );
    // Starting inside it.
    elf.loads[1].paddr = 0x3600_0000;
    elf.loads[1].memsz = 0x1000;
    assert!(matches!(
        refusal(&elf),
        LoadError::ImageInHypervisorHole { index: 1, .. }
    ));
}

#[test]
fn segments_may_touch_but_not_overlap() {
    // The fixture's segments touch: [..0xC0102000) and [0xC0102000..).
    with_image(&TestElf::linux(), |img| assert_eq!(img.segments().len(), 2));
    let mut elf = TestElf::linux();
    elf.loads[0].memsz = 0x2001;
    assert_eq!(
        refusal(&elf),
        LoadError::SegmentsOverlap {
            first: 0,
            second: 1
        }
    );
    // Containment in the other order is an overlap too.
    let mut elf = TestElf::linux();
    elf.loads.push(LoadSpec {
        vaddr: 0,
        paddr: 0x10_0800,
        bytes: vec![],
        memsz: 0x10,
    });
    assert_eq!(
        refusal(&elf),
        LoadError::SegmentsOverlap {
            first: 0,
            second: 2
        }
    );
}

#[test]
fn entry_must_lie_in_the_image() {
    for entry in [w::LINUX_KSTART, w::LINUX_KEND - 1, w::LINUX_KEND] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_ENTRY, num4(entry));
        with_image(&elf, |img| assert_eq!(img.entry(), entry));
    }
    for entry in [w::LINUX_KSTART - 1, w::LINUX_KEND + 1, 0] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_ENTRY, num4(entry));
        assert_eq!(
            refusal(&elf),
            LoadError::EntryOutsideImage {
                entry,
                virt_kstart: w::LINUX_KSTART,
                virt_kend: w::LINUX_KEND
            }
        );
    }
}

#[test]
fn entry_defaults_to_e_entry() {
    let mut elf = TestElf::linux().without_note(XEN_ELFNOTE_ENTRY);
    elf.entry = 0xC010_0040;
    with_image(&elf, |img| assert_eq!(img.entry(), 0xC010_0040));
    elf.entry = 0x10_0040; // a physical e_entry is outside the image
    assert!(matches!(
        refusal(&elf),
        LoadError::EntryOutsideImage {
            entry: 0x10_0040,
            ..
        }
    ));
}

#[test]
fn hypercall_page_must_lie_in_the_image() {
    let last = w::LINUX_KEND - 0x1000;
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(last));
    with_image(&elf, |img| assert_eq!(img.hypercall_page(), Some(last)));
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(w::LINUX_KSTART));
    with_image(&elf, |img| {
        assert_eq!(img.hypercall_page(), Some(w::LINUX_KSTART))
    });
    for hp in [last + 1, w::LINUX_KSTART - 0x1000, w::LINUX_KEND, 0] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(hp));
        assert_eq!(
            refusal(&elf),
            LoadError::HypercallPageOutsideImage {
                hypercall_page: u64::from(hp),
                virt_kstart: w::LINUX_KSTART,
                virt_kend: w::LINUX_KEND
            }
        );
    }
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_HYPERCALL_PAGE, num8(u64::MAX));
    assert!(matches!(
        refusal(&elf),
        LoadError::HypercallPageOutsideImage { .. }
    ));
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_HYPERCALL_PAGE);
    with_image(&elf, |img| assert_eq!(img.hypercall_page(), None));
}

#[test]
fn init_p2m_may_not_point_into_the_image() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_INIT_P2M, num4(w::LINUX_KEND));
    with_image(&elf, |img| {
        assert_eq!(img.notes().init_p2m, Some(u64::from(w::LINUX_KEND)))
    });
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_INIT_P2M, num4(w::LINUX_KEND - 1));
    assert_eq!(
        refusal(&elf),
        LoadError::InitP2mInsideImage {
            init_p2m: w::LINUX_KEND - 1
        }
    );
}

#[test]
fn hv_start_low_may_not_exceed_the_hole_start() {
    for ok in [0xF580_0000u32, 0xF500_0000, 0] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_HV_START_LOW, num4(ok));
        with_image(&elf, |_| ());
    }
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_HV_START_LOW, num4(0xF5A0_0000));
    assert_eq!(
        refusal(&elf),
        LoadError::HvStartLowAboveHole {
            hv_start_low: 0xF5A0_0000
        }
    );
}
