//! Declaration rules from Xen notes: numeric sizes, XEN_VERSION, LOADER/GUEST_OS,
//! PAE_MODE, FEATURES, defaults.

use super::elf_writer::{TestElf, num4, num8, string};
use super::{refusal, with_image};
use crate::error::ShortName;
use crate::{FeatureSet, LoadError, PaeMode};
use xen_abi::elfnote::*;

#[test]
fn numeric_notes_take_4_or_8_bytes() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_ENTRY, num4(0xC010_0010));
    with_image(&elf, |img| assert_eq!(img.entry(), 0xC010_0010));
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_ENTRY, num8(0xC010_0020));
    with_image(&elf, |img| assert_eq!(img.entry(), 0xC010_0020));
    for descsz in [0usize, 1, 2, 3, 5, 7, 16] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_VIRT_BASE, vec![0; descsz]);
        assert_eq!(
            refusal(&elf),
            LoadError::BadNoteSize {
                note: XEN_ELFNOTE_VIRT_BASE,
                descsz
            }
        );
    }
}

#[test]
fn numeric_notes_must_fit_32_bits() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_VIRT_BASE, num8(0x1_C000_0000));
    assert_eq!(
        refusal(&elf),
        LoadError::NoteValueTooLarge {
            note: XEN_ELFNOTE_VIRT_BASE,
            value: 0x1_C000_0000
        }
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_ENTRY, num8(0x1_C010_0000));
    assert_eq!(
        refusal(&elf),
        LoadError::NoteValueTooLarge {
            note: XEN_ELFNOTE_ENTRY,
            value: 0x1_C010_0000
        }
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_VIRT_BASE, num8(0xC000_0000));
    with_image(&elf, |img| assert_eq!(img.virt_base(), 0xC000_0000));
}

#[test]
fn a_later_duplicate_note_wins() {
    let mut elf = TestElf::linux();
    elf.notes.push(super::elf_writer::xen_note(
        XEN_ELFNOTE_GUEST_VERSION,
        string("3.1"),
    ));
    with_image(&elf, |img| {
        assert_eq!(img.guest_version().as_bytes(), b"3.1")
    });
}

#[test]
fn unknown_note_types_are_ignored() {
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_INFO, string("anything"))
        .with_note(XEN_ELFNOTE_PHYS32_ENTRY, num4(0x100000))
        .with_note(0x7777, vec![1, 2, 3]);
    with_image(&elf, |img| assert_eq!(img.entry(), 0xC010_0000));
}

#[test]
fn xen_version_must_be_declared() {
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_XEN_VERSION);
    assert_eq!(refusal(&elf), LoadError::XenVersionMissing);
}

#[test]
fn xen_version_must_start_with_xen_3_0() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_XEN_VERSION, string("xen-3.0-x86_32p"));
    with_image(&elf, |img| {
        assert_eq!(img.xen_version().as_bytes(), b"xen-3.0-x86_32p")
    });
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_XEN_VERSION, string("xen-2.0"));
    assert_eq!(
        refusal(&elf),
        LoadError::BadXenVersion(ShortName::new(b"xen-2.0"))
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_XEN_VERSION, string("xen-3"));
    assert!(matches!(refusal(&elf), LoadError::BadXenVersion(_)));
}

#[test]
fn generic_loader_or_linux_guest_is_required() {
    // generic loader, not Linux: fine.
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_GUEST_OS, string("Mini-OS"));
    with_image(&elf, |img| {
        assert_eq!(img.guest_os().as_bytes(), b"Mini-OS")
    });
    // Linux, no loader: fine.
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_LOADER);
    with_image(&elf, |img| assert!(img.loader().is_empty()));
    // "generic" is a prefix rule.
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_GUEST_OS, string("oxen-dom0"))
        .with_note(XEN_ELFNOTE_LOADER, string("generic-2"));
    with_image(&elf, |_| ());
    // Neither.
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_GUEST_OS, string("Mini-OS"))
        .with_note(XEN_ELFNOTE_LOADER, string("elf"));
    assert_eq!(refusal(&elf), LoadError::LoaderNotGeneric);
    // Case matters, and absence of both fails.
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_GUEST_OS, string("Linux"))
        .without_note(XEN_ELFNOTE_LOADER);
    assert_eq!(refusal(&elf), LoadError::LoaderNotGeneric);
    let elf = TestElf::linux()
        .without_note(XEN_ELFNOTE_GUEST_OS)
        .without_note(XEN_ELFNOTE_LOADER);
    assert_eq!(refusal(&elf), LoadError::LoaderNotGeneric);
}

#[test]
fn pae_must_be_declared() {
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_PAE_MODE);
    let err = refusal(&elf);
    assert_eq!(err, LoadError::NotPae);
    assert_eq!(
        err.to_string(),
        "kernel does not declare PAE; an x86_32p hypervisor loads only PAE kernels"
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_PAE_MODE, string("no"));
    assert_eq!(refusal(&elf), LoadError::NotPae);
}

#[test]
fn pae_note_values() {
    for (value, mode) in [
        ("yes", PaeMode::ExtendedCr3),
        ("bimodal", PaeMode::Bimodal),
        ("yes,bimodal", PaeMode::Bimodal),
    ] {
        let elf = TestElf::linux().with_note(XEN_ELFNOTE_PAE_MODE, string(value));
        with_image(&elf, |img| {
            assert_eq!(img.pae(), mode, "{value}");
            assert!(img.extended_cr3(), "{value}");
        });
    }
    // The legacy-only spelling is not a note value.
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_PAE_MODE, string("yes[extended-cr3]"));
    assert_eq!(
        refusal(&elf),
        LoadError::UnknownPaeMode(ShortName::new(b"yes[extended-cr3]"))
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_PAE_MODE, string("maybe"));
    assert!(matches!(refusal(&elf), LoadError::UnknownPaeMode(_)));
}

#[test]
fn features_are_parsed_into_xenfeat_bits() {
    let elf = TestElf::linux().with_note(
        XEN_ELFNOTE_FEATURES,
        string("!writable_page_tables||pae_pgdir_above_4gb|"),
    );
    with_image(&elf, |img| {
        assert_eq!(
            img.features(),
            FeatureSet {
                supported: 0b1_0001,
                required: 0b0_0001
            }
        );
        assert_eq!(img.check_required_features(0b1), Ok(()));
        assert_eq!(
            img.check_required_features(0b1_0000),
            Err(LoadError::RequiredFeatureUnsupported { bit: 0 })
        );
    });
    // No FEATURES note: nothing supported or required.
    let elf = TestElf::linux().without_note(XEN_ELFNOTE_FEATURES);
    with_image(&elf, |img| {
        assert_eq!(img.features(), FeatureSet::default());
        assert_eq!(img.check_required_features(0), Ok(()));
    });
}

#[test]
fn unknown_feature_names_are_refused() {
    let elf = TestElf::linux().with_note(
        XEN_ELFNOTE_FEATURES,
        string("writable_page_tables|hvm_callback_vector"),
    );
    let err = refusal(&elf);
    assert_eq!(
        err,
        LoadError::UnknownFeature(ShortName::new(b"hvm_callback_vector"))
    );
    assert!(err.to_string().contains("\"hvm_callback_vector\""));
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_FEATURES, string("!"));
    assert_eq!(
        refusal(&elf),
        LoadError::UnknownFeature(ShortName::new(b""))
    );
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_FEATURES, string("!!writable_page_tables"));
    assert!(matches!(refusal(&elf), LoadError::UnknownFeature(_)));
}

#[test]
fn feature_set_parse_directly() {
    assert_eq!(FeatureSet::parse(b""), Ok(FeatureSet::default()));
    let all = FeatureSet::parse(super::elf_writer::ALL_FEATURES.as_bytes()).unwrap();
    assert_eq!(all.supported, 0b1_1111);
    let req = FeatureSet::parse(b"!supervisor_mode_kernel|!auto_translated_physmap").unwrap();
    assert_eq!(req.required, 0b1100);
    assert_eq!(req.missing_from(0b0100), 0b1000);
}

#[test]
fn string_notes_stop_at_nul_and_may_lack_one() {
    let mut desc = b"linux".to_vec();
    desc.extend_from_slice(b"\0garbage");
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_GUEST_OS, desc);
    with_image(&elf, |img| assert_eq!(img.guest_os().as_bytes(), b"linux"));
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_GUEST_OS, b"linux".to_vec());
    with_image(&elf, |img| assert_eq!(img.guest_os().as_bytes(), b"linux"));
}

#[test]
fn boolean_notes() {
    let elf = TestElf::linux()
        .with_note(XEN_ELFNOTE_MOD_START_PFN, num4(1))
        .with_note(XEN_ELFNOTE_SUSPEND_CANCEL, num4(0))
        .with_note(XEN_ELFNOTE_BSD_SYMTAB, string("yes"));
    with_image(&elf, |img| {
        assert!(img.mod_start_pfn());
        assert!(!img.suspend_cancel());
        assert!(img.bsd_symtab());
    });
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_BSD_SYMTAB, string("no"));
    with_image(&elf, |img| assert!(!img.bsd_symtab()));
}

#[test]
fn note_strings_display_escaped() {
    let elf = TestElf::linux().with_note(XEN_ELFNOTE_GUEST_VERSION, b"2.6\x01\xff".to_vec());
    with_image(&elf, |img| {
        assert_eq!(img.guest_version().to_string(), "2.6\\x01\\xff");
        assert_eq!(img.guest_version().to_str(), None);
        assert_eq!(format!("{:?}", img.guest_os()), "\"linux\"");
    });
}
