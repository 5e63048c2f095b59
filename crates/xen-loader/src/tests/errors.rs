//! Error messages name their rule and values; `ShortName` copies names safely.

use crate::error::{ElfPart, LoadError, ShortName};

#[test]
fn every_load_error_has_a_distinct_message() {
    let name = ShortName::new(b"x");
    let all = [
        LoadError::NotElf,
        LoadError::NotElf32 { class: 2 },
        LoadError::NotLittleEndian { data: 2 },
        LoadError::NotI386 { machine: 62 },
        LoadError::NotExecutable { e_type: 3 },
        LoadError::MalformedElf(ElfPart::FileHeader),
        LoadError::MalformedElf(ElfPart::ProgramHeaders),
        LoadError::MalformedElf(ElfPart::SectionHeaders),
        LoadError::MalformedElf(ElfPart::Notes),
        LoadError::MalformedElf(ElfPart::LegacyGuestInfo),
        LoadError::NoLoadSegments,
        LoadError::TooManySegments { max: 16 },
        LoadError::SegmentTruncated { index: 1 },
        LoadError::SegmentFileSizeExceedsMemSize { index: 1 },
        LoadError::AddressOverflow { index: 1 },
        LoadError::SegmentsOverlap {
            first: 0,
            second: 1,
        },
        LoadError::ImageInHypervisorHole {
            index: 1,
            end: 0xF580_0001,
        },
        LoadError::NoXenNotesOrLegacy,
        LoadError::BadNoteSize { note: 3, descsz: 2 },
        LoadError::NoteValueTooLarge {
            note: 3,
            value: 1 << 32,
        },
        LoadError::LegacyItemTooLong,
        LoadError::BadLegacyNumber { key: name },
        LoadError::XenVersionMissing,
        LoadError::BadXenVersion(name),
        LoadError::LoaderNotGeneric,
        LoadError::NotPae,
        LoadError::UnknownPaeMode(name),
        LoadError::UnknownFeature(name),
        LoadError::RequiredFeatureUnsupported { bit: 2 },
        LoadError::PaddrOffsetWithoutVirtBase,
        LoadError::VirtBaseNotPageAligned { virt_base: 0x800 },
        LoadError::VirtBaseAboveImage {
            virt_base: 2,
            virt_kstart: 1,
        },
        LoadError::EntryOutsideImage {
            entry: 0,
            virt_kstart: 1,
            virt_kend: 2,
        },
        LoadError::HypercallPageOutsideImage {
            hypercall_page: 0,
            virt_kstart: 1,
            virt_kend: 2,
        },
        LoadError::InitP2mInsideImage { init_p2m: 1 },
        LoadError::HvStartLowAboveHole {
            hv_start_low: 0xF5A0_0000,
        },
    ];
    let texts: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    for (i, a) in texts.iter().enumerate() {
        assert!(!a.is_empty());
        for b in &texts[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert!(texts[3].contains("EM_386"));
    assert!(texts[16].contains("0xf5800001"));
    assert!(texts[28].contains("auto_translated_physmap"));
    assert!(
        LoadError::RequiredFeatureUnsupported { bit: 9 }
            .to_string()
            .contains("(unnamed)")
    );
}

#[test]
fn short_names_truncate_and_escape() {
    let n = ShortName::new(b"plain name");
    assert_eq!(n.as_str(), "plain name");
    assert_eq!(n.to_string(), "plain name");
    assert_eq!(format!("{n:?}"), "\"plain name\"");
    let n = ShortName::new(b"a\x00b\xffc\n");
    assert_eq!(n.as_str(), "a?b?c?");
    let long = [b'z'; 100];
    let n = ShortName::new(&long);
    assert_eq!(n.as_str().len(), ShortName::CAPACITY);
    assert!(n.to_string().ends_with("..."));
    assert!(format!("{n:?}").ends_with("..."));
    assert_eq!(ShortName::new(b""), ShortName::new(b""));
}
