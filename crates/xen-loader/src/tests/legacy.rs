//! The legacy `__xen_guest` string: syntax, keys, defaults, and that notes win.

use super::elf_writer::{LoadSpec, TestElf};
use super::{refusal, with_image};
use crate::error::ShortName;
use crate::notes::parse_c_number;
use crate::{LoadError, NotesSource, PaeMode, XenNotes};
use xen_abi::elfnote::*;

#[test]
fn minios_legacy_string_is_accepted() {
    with_image(&TestElf::minios_legacy(), |img| {
        assert_eq!(img.notes_source(), NotesSource::LegacyGuestInfo);
        assert_eq!(img.guest_os().as_bytes(), b"Mini-OS");
        assert_eq!(img.xen_version().as_bytes(), b"xen-3.0");
        assert_eq!(img.loader().as_bytes(), b"generic");
        assert_eq!(img.virt_base(), 0);
        assert_eq!(img.paddr_offset(), 0);
        assert_eq!(img.entry(), 0);
        // HYPERCALL_PAGE=0x2 is a page number from VIRT_BASE.
        assert_eq!(img.hypercall_page(), Some(0x2000));
        assert_eq!(img.pae(), PaeMode::ExtendedCr3);
        assert!(img.extended_cr3());
        assert_eq!((img.virt_kstart(), img.virt_kend()), (0, 0x4000));
    });
}

/// A legacy kernel linked at 0xC0000000 (p_paddr = virtual address, as old Linux).
fn legacy_high(info: &str) -> TestElf {
    let mut elf = TestElf::bare(
        0xC000_0000,
        vec![LoadSpec {
            vaddr: 0xC000_0000,
            paddr: 0xC000_0000,
            bytes: vec![0x90; 0x40],
            memsz: 0x8000,
        }],
    );
    elf.legacy = Some(info.as_bytes().to_vec());
    elf
}

#[test]
fn legacy_paddr_offset_defaults_to_virt_base() {
    let elf = legacy_high("GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,PAE=yes");
    with_image(&elf, |img| {
        assert_eq!(img.paddr_offset(), 0xC000_0000);
        assert_eq!(img.virt_kstart(), 0xC000_0000);
        assert_eq!(img.pae(), PaeMode::Yes);
        assert!(!img.extended_cr3());
    });
}

#[test]
fn legacy_paddr_offset_needs_virt_base() {
    let elf = legacy_high("GUEST_OS=linux,XEN_VER=xen-3.0,ELF_PADDR_OFFSET=0,PAE=yes");
    assert_eq!(refusal(&elf), LoadError::PaddrOffsetWithoutVirtBase);
}

#[test]
fn legacy_hypercall_page_is_relative_to_the_final_virt_base() {
    // HYPERCALL_PAGE before VIRT_BASE: order does not matter.
    let elf = legacy_high(
        "HYPERCALL_PAGE=3,GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,PAE=bimodal",
    );
    with_image(&elf, |img| {
        assert_eq!(img.hypercall_page(), Some(0xC000_3000));
        assert_eq!(img.pae(), PaeMode::Bimodal);
        assert!(img.extended_cr3());
    });
    let elf =
        legacy_high("HYPERCALL_PAGE=8,GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,PAE=yes");
    assert!(matches!(
        refusal(&elf),
        LoadError::HypercallPageOutsideImage {
            hypercall_page: 0xC000_8000,
            ..
        }
    ));
    let elf = legacy_high(
        "HYPERCALL_PAGE=0xffffffffffffffff,GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0,PAE=yes",
    );
    assert!(matches!(
        refusal(&elf),
        LoadError::NoteValueTooLarge {
            note: XEN_ELFNOTE_HYPERCALL_PAGE,
            ..
        }
    ));
}

#[test]
fn legacy_virt_entry() {
    let elf = legacy_high(
        "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,VIRT_ENTRY=0xC0000010,PAE=yes",
    );
    with_image(&elf, |img| assert_eq!(img.entry(), 0xC000_0010));
    let elf = legacy_high(
        "GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,VIRT_ENTRY=0xC0009000,PAE=yes",
    );
    assert!(matches!(refusal(&elf), LoadError::EntryOutsideImage { .. }));
}

#[test]
fn legacy_pae_values() {
    let base = "GUEST_OS=Mini-OS,XEN_VER=xen-3.0,LOADER=generic";
    for (pae, mode) in [
        ("yes", PaeMode::Yes),
        ("yes[extended-cr3]", PaeMode::ExtendedCr3),
        ("bimodal", PaeMode::Bimodal),
    ] {
        let elf = TestElf::minios_legacy().with_legacy(&format!("{base},PAE={pae}"));
        with_image(&elf, |img| assert_eq!(img.pae(), mode, "{pae}"));
    }
    let elf = TestElf::minios_legacy().with_legacy(&format!("{base},PAE=no"));
    assert_eq!(refusal(&elf), LoadError::NotPae);
    let elf = TestElf::minios_legacy().with_legacy(base);
    assert_eq!(refusal(&elf), LoadError::NotPae);
    let elf = TestElf::minios_legacy().with_legacy(&format!("{base},PAE=yes[other]"));
    assert_eq!(
        refusal(&elf),
        LoadError::UnknownPaeMode(ShortName::new(b"yes[other]"))
    );
}

#[test]
fn legacy_rules_match_the_note_rules() {
    let elf = TestElf::minios_legacy().with_legacy("GUEST_OS=Mini-OS,XEN_VER=xen-3.0,PAE=yes");
    assert_eq!(refusal(&elf), LoadError::LoaderNotGeneric);
    let elf = TestElf::minios_legacy().with_legacy("GUEST_OS=linux,PAE=yes");
    assert_eq!(refusal(&elf), LoadError::XenVersionMissing);
    let elf = TestElf::minios_legacy().with_legacy("GUEST_OS=linux,XEN_VER=xen-4.0,PAE=yes");
    assert!(matches!(refusal(&elf), LoadError::BadXenVersion(_)));
    let elf = TestElf::minios_legacy()
        .with_legacy("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,FEATURES=!foo|writable_page_tables");
    assert_eq!(
        refusal(&elf),
        LoadError::UnknownFeature(ShortName::new(b"foo"))
    );
    let elf = TestElf::minios_legacy().with_legacy(
        "GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,FEATURES=!writable_page_tables|pae_pgdir_above_4gb",
    );
    with_image(&elf, |img| {
        assert_eq!(img.features().supported, 0b1_0001);
        assert_eq!(img.features().required, 0b1);
    });
}

#[test]
fn legacy_bsd_symtab_is_a_bare_key_and_unknown_keys_are_ignored() {
    let elf = TestElf::minios_legacy()
        .with_legacy(",GUEST_OS=linux,,XEN_VER=xen-3.0,BSD_SYMTAB,SOMETHING=else,PAE=yes,");
    with_image(&elf, |img| assert!(img.bsd_symtab()));
    with_image(&TestElf::minios_legacy(), |img| assert!(!img.bsd_symtab()));
}

#[test]
fn legacy_numbers_must_be_numbers() {
    let elf = TestElf::minios_legacy()
        .with_legacy("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,VIRT_BASE=0xZZ");
    assert_eq!(
        refusal(&elf),
        LoadError::BadLegacyNumber {
            key: ShortName::new(b"VIRT_BASE")
        }
    );
    let elf =
        TestElf::minios_legacy().with_legacy("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,VIRT_BASE=");
    assert!(matches!(refusal(&elf), LoadError::BadLegacyNumber { .. }));
}

#[test]
fn legacy_keys_and_values_have_length_limits() {
    let key31 = "K".repeat(31);
    let value127 = "v".repeat(127);
    let ok = format!("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,{key31}={value127}");
    with_image(&TestElf::minios_legacy().with_legacy(&ok), |_| ());
    let long_key = format!("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,{key31}K=1");
    assert_eq!(
        refusal(&TestElf::minios_legacy().with_legacy(&long_key)),
        LoadError::LegacyItemTooLong
    );
    let long_value = format!("GUEST_OS=linux,XEN_VER=xen-3.0,PAE=yes,GUEST_VER={value127}v");
    assert_eq!(
        refusal(&TestElf::minios_legacy().with_legacy(&long_value)),
        LoadError::LegacyItemTooLong
    );
}

#[test]
fn legacy_string_ends_at_its_nul() {
    let mut elf = TestElf::minios_legacy();
    let mut info = elf.legacy.take().unwrap();
    info.extend_from_slice(b"\0,PAE=no");
    elf.legacy = Some(info);
    with_image(&elf, |img| assert_eq!(img.pae(), PaeMode::ExtendedCr3));
}

#[test]
fn xen_notes_win_over_the_legacy_string() {
    let mut elf = TestElf::linux();
    elf.legacy = Some(b"GUEST_OS=other,XEN_VER=xen-2.0,PAE=no".to_vec());
    with_image(&elf, |img| {
        assert_eq!(img.notes_source(), NotesSource::ProgramHeaders);
        assert_eq!(img.guest_os().as_bytes(), b"linux");
    });
}

#[test]
fn parse_legacy_directly() {
    let notes = XenNotes::parse_legacy(b"GUEST_VER=2.6.18,LOADER=generic,XEN_VER=xen-3.0").unwrap();
    assert_eq!(notes.source, NotesSource::LegacyGuestInfo);
    assert_eq!(notes.guest_version.unwrap().as_bytes(), b"2.6.18");
    assert_eq!(notes.virt_base, None);
    assert_eq!(notes.hypercall_page, None);
    // A value may contain '='.
    let notes = XenNotes::parse_legacy(b"GUEST_VER=a=b").unwrap();
    assert_eq!(notes.guest_version.unwrap().as_bytes(), b"a=b");
}

#[test]
fn c_numbers() {
    assert_eq!(parse_c_number(b"0"), Some(0));
    assert_eq!(parse_c_number(b"42"), Some(42));
    assert_eq!(parse_c_number(b"0x2A"), Some(42));
    assert_eq!(parse_c_number(b"0X2a"), Some(42));
    assert_eq!(parse_c_number(b"052"), Some(42));
    assert_eq!(parse_c_number(b"0xC0000000"), Some(0xC000_0000));
    assert_eq!(parse_c_number(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_c_number(b"18446744073709551616"), None);
    assert_eq!(parse_c_number(b""), None);
    assert_eq!(parse_c_number(b"0x"), None);
    assert_eq!(parse_c_number(b"08"), None);
    assert_eq!(parse_c_number(b"12a"), None);
    assert_eq!(parse_c_number(b" 1"), None);
    assert_eq!(parse_c_number(b"-1"), None);
}
