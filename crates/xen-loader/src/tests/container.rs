//! ELF container rules: identification, header fields, program headers, PT_LOAD
//! bounds, where notes are found.

use super::elf_writer::{self as w, LoadSpec, NotesPlace, TestElf, off};
use super::{refusal, refusal_of, with_image};
use crate::{ElfPart, LoadError, NotesSource, PaeMode};
use xen_abi::elfnote::*;

#[test]
fn linux_fixture_is_accepted_with_every_declaration() {
    with_image(&TestElf::linux(), |img| {
        assert_eq!(img.entry(), 0xC010_0000);
        assert_eq!(img.virt_base(), 0xC000_0000);
        assert_eq!(img.paddr_offset(), 0);
        assert_eq!(img.virt_kstart(), w::LINUX_KSTART);
        assert_eq!(img.virt_kend(), w::LINUX_KEND);
        assert_eq!(img.hypercall_page(), Some(w::LINUX_HYPERCALL_PAGE));
        assert_eq!(img.pae(), PaeMode::ExtendedCr3);
        assert!(img.extended_cr3());
        assert_eq!(img.features().supported, 0b1_1111);
        assert_eq!(img.features().required, 0);
        assert_eq!(img.guest_os().as_bytes(), b"linux");
        assert_eq!(img.guest_version().to_str(), Some("2.6"));
        assert_eq!(img.xen_version().as_bytes(), b"xen-3.0");
        assert_eq!(img.loader().as_bytes(), b"generic");
        assert_eq!(img.notes_source(), NotesSource::ProgramHeaders);
        assert!(img.suspend_cancel());
        assert!(!img.mod_start_pfn());
        assert!(!img.bsd_symtab());
        assert_eq!(img.notes().hv_start_low, Some(0xF580_0000));
        assert_eq!(
            img.notes().l1_mfn_valid_pairs().collect::<Vec<_>>(),
            vec![(1, 1)]
        );
        let segs = img.segments();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].load_va, 0xC010_0000);
        assert_eq!(segs[0].elf.paddr, 0x10_0000);
        assert_eq!(segs[0].elf.vaddr, 0xC010_0000);
        assert_eq!(segs[0].elf.filesz, 0x100);
        assert_eq!(segs[0].elf.memsz, 0x2000);
        assert_eq!(segs[1].load_va, 0xC010_2000);
        assert_eq!(img.segment_bytes(&segs[1]), &w::pattern(0x40, 2)[..]);
    });
}

#[test]
fn too_short_or_wrong_magic_is_not_elf() {
    let bytes = TestElf::linux().build();
    assert_eq!(refusal_of(&bytes[..51]), LoadError::NotElf);
    assert_eq!(refusal_of(&[]), LoadError::NotElf);
    let mut bad = bytes.clone();
    bad[1] = b'X';
    assert_eq!(refusal_of(&bad), LoadError::NotElf);
}

#[test]
fn class_must_be_elf32() {
    let mut elf = TestElf::linux();
    elf.class = 2;
    assert_eq!(refusal(&elf), LoadError::NotElf32 { class: 2 });
}

#[test]
fn data_must_be_little_endian() {
    let mut elf = TestElf::linux();
    elf.data = 2;
    assert_eq!(refusal(&elf), LoadError::NotLittleEndian { data: 2 });
}

#[test]
fn ident_version_must_be_current() {
    let mut bytes = TestElf::linux().build();
    bytes[6] = 0;
    assert_eq!(
        refusal_of(&bytes),
        LoadError::MalformedElf(ElfPart::FileHeader)
    );
}

#[test]
fn machine_must_be_i386() {
    let mut elf = TestElf::linux();
    elf.machine = 62; // EM_X86_64
    assert_eq!(refusal(&elf), LoadError::NotI386 { machine: 62 });
}

#[test]
fn type_must_be_exec() {
    let mut elf = TestElf::linux();
    elf.e_type = 3; // ET_DYN
    assert_eq!(refusal(&elf), LoadError::NotExecutable { e_type: 3 });
}

#[test]
fn program_headers_must_lie_in_the_file() {
    let mut bytes = TestElf::linux().build();
    let len = bytes.len() as u32;
    w::put_u32(&mut bytes, off::E_PHOFF, len - 8);
    assert_eq!(
        refusal_of(&bytes),
        LoadError::MalformedElf(ElfPart::ProgramHeaders)
    );
}

#[test]
fn program_header_entry_size_must_be_32() {
    let mut bytes = TestElf::linux().build();
    w::put_u16(&mut bytes, off::E_PHENTSIZE, 56);
    assert_eq!(
        refusal_of(&bytes),
        LoadError::MalformedElf(ElfPart::ProgramHeaders)
    );
}

#[test]
fn at_least_one_load_segment() {
    let mut elf = TestElf::linux();
    elf.loads.clear();
    assert_eq!(refusal(&elf), LoadError::NoLoadSegments);
    // Segments that occupy no memory count as none.
    let mut elf = TestElf::linux();
    for load in &mut elf.loads {
        load.bytes.clear();
        load.memsz = 0;
    }
    assert_eq!(refusal(&elf), LoadError::NoLoadSegments);
}

#[test]
fn empty_load_segments_are_ignored() {
    let mut elf = TestElf::linux();
    elf.loads.push(LoadSpec {
        vaddr: 0x1000,
        paddr: 0x1000,
        bytes: vec![],
        memsz: 0,
    });
    with_image(&elf, |img| {
        assert_eq!(img.segments().len(), 2);
        assert_eq!(img.virt_kstart(), w::LINUX_KSTART);
    });
}

fn many_segments(n: u32) -> TestElf {
    let loads = (0..n)
        .map(|i| LoadSpec {
            vaddr: 0xC010_0000 + i * 0x1000,
            paddr: 0x10_0000 + i * 0x1000,
            bytes: vec![i as u8; 4],
            memsz: 0x1000,
        })
        .collect();
    let mut elf = TestElf::linux();
    elf.loads = loads;
    elf.without_note(XEN_ELFNOTE_HYPERCALL_PAGE)
}

#[test]
fn sixteen_segments_load_but_seventeen_do_not() {
    with_image(&many_segments(16), |img| {
        assert_eq!(img.segments().len(), 16);
        assert_eq!(img.virt_kend(), 0xC011_0000);
    });
    assert_eq!(
        refusal(&many_segments(17)),
        LoadError::TooManySegments { max: 16 }
    );
}

#[test]
fn segment_file_bytes_must_lie_in_the_file() {
    let bytes = TestElf::linux().build();
    let ph = off::phdr(1);
    let offset = w::get_u32(&bytes, ph + off::P_OFFSET);
    let len = bytes.len() as u32;

    // Ending exactly at the end of the file is fine.
    let mut ok = bytes.clone();
    w::put_u32(&mut ok, ph + off::P_FILESZ, len - offset);
    w::put_u32(&mut ok, ph + off::P_MEMSZ, len - offset);
    assert!(crate::GuestImage::parse(&ok).is_ok());

    let mut bad = bytes.clone();
    w::put_u32(&mut bad, ph + off::P_FILESZ, len - offset + 1);
    w::put_u32(&mut bad, ph + off::P_MEMSZ, len - offset + 1);
    assert_eq!(refusal_of(&bad), LoadError::SegmentTruncated { index: 1 });

    let mut wrap = bytes;
    w::put_u32(&mut wrap, ph + off::P_OFFSET, u32::MAX);
    assert_eq!(refusal_of(&wrap), LoadError::SegmentTruncated { index: 1 });
}

#[test]
fn segment_file_size_may_not_exceed_memory_size() {
    let mut elf = TestElf::linux();
    elf.loads[1].memsz = 0x40; // == filesz: fine
    with_image(&elf, |img| assert_eq!(img.virt_kend(), 0xC010_2040));
    elf.loads[1].memsz = 0x3F;
    assert_eq!(
        refusal(&elf),
        LoadError::SegmentFileSizeExceedsMemSize { index: 1 }
    );
}

#[test]
fn notes_only_in_a_section_are_found() {
    let mut elf = TestElf::linux();
    elf.notes_place = NotesPlace::SectionOnly;
    with_image(&elf, |img| {
        assert_eq!(img.notes_source(), NotesSource::Sections);
        assert_eq!(img.entry(), w::LINUX_KSTART);
        assert_eq!(img.pae(), PaeMode::ExtendedCr3);
    });
}

#[test]
fn sections_are_searched_when_pt_note_holds_no_xen_note() {
    // The PT_NOTE covers only a GNU note; the Xen notes follow it in the section.
    let mut elf = TestElf::linux();
    let gnu = w::NoteSpec {
        name: b"GNU\0".to_vec(),
        n_type: 3,
        desc: vec![0xAB; 20],
    };
    elf.notes.insert(0, gnu);
    let mut bytes = elf.build();
    let ph = off::phdr(elf.note_phdr_index().unwrap());
    w::put_u32(&mut bytes, ph + off::P_FILESZ, 12 + 4 + 20);
    let img = crate::GuestImage::parse(&bytes).unwrap();
    assert_eq!(img.notes_source(), NotesSource::Sections);
    assert_eq!(img.guest_os().as_bytes(), b"linux");
}

#[test]
fn pt_note_at_offset_zero_is_skipped() {
    let elf = TestElf::linux();
    let mut bytes = elf.build();
    let ph = off::phdr(elf.note_phdr_index().unwrap());
    w::put_u32(&mut bytes, ph + off::P_OFFSET, 0);
    let img = crate::GuestImage::parse(&bytes).unwrap();
    assert_eq!(img.notes_source(), NotesSource::Sections);
}

#[test]
fn non_xen_notes_are_ignored() {
    let mut elf = TestElf::linux();
    elf.notes.push(w::NoteSpec {
        name: b"Linux\0".to_vec(),
        n_type: XEN_ELFNOTE_PAE_MODE,
        desc: w::string("no"),
    });
    with_image(&elf, |img| assert_eq!(img.pae(), PaeMode::ExtendedCr3));
}

#[test]
fn note_segment_must_lie_in_the_file() {
    let elf = TestElf::linux();
    let mut bytes = elf.build();
    let ph = off::phdr(elf.note_phdr_index().unwrap());
    w::put_u32(&mut bytes, ph + off::P_FILESZ, 0x10_0000);
    assert_eq!(refusal_of(&bytes), LoadError::MalformedElf(ElfPart::Notes));
}

#[test]
fn truncated_note_is_refused() {
    let elf = TestElf::linux();
    let mut bytes = elf.build();
    let ph = off::phdr(elf.note_phdr_index().unwrap());
    let notes = w::get_u32(&bytes, ph + off::P_OFFSET) as usize;
    // First note's descsz far beyond the segment.
    w::put_u32(&mut bytes, notes + 4, 0x1000);
    assert_eq!(refusal_of(&bytes), LoadError::MalformedElf(ElfPart::Notes));
}

#[test]
fn note_alignment_other_than_4_or_8_is_refused() {
    let mut elf = TestElf::linux();
    elf.note_align = 8;
    // 8-aligned walking of 4-aligned notes misreads them; what matters is no panic.
    let _ = crate::GuestImage::parse(&elf.build());
    elf.note_align = 16;
    assert_eq!(refusal(&elf), LoadError::MalformedElf(ElfPart::Notes));
}

#[test]
fn bad_section_table_is_refused_only_when_needed() {
    // Notes in PT_NOTE: the section table is never read.
    let mut bytes = TestElf::linux().build();
    w::put_u32(&mut bytes, off::E_SHOFF, u32::MAX - 3);
    assert!(crate::GuestImage::parse(&bytes).is_ok());
    // Notes only in a section: it must be readable.
    let mut elf = TestElf::linux();
    elf.notes_place = NotesPlace::SectionOnly;
    let mut bytes = elf.build();
    w::put_u32(&mut bytes, off::E_SHOFF, u32::MAX - 3);
    assert_eq!(
        refusal_of(&bytes),
        LoadError::MalformedElf(ElfPart::SectionHeaders)
    );
}

#[test]
fn no_notes_and_no_legacy_string_is_not_a_xen_kernel() {
    let mut elf = TestElf::linux();
    elf.notes.clear();
    assert_eq!(refusal(&elf), LoadError::NoXenNotesOrLegacy);
    // Only foreign notes: the same.
    elf.notes.push(w::NoteSpec {
        name: b"GNU\0".to_vec(),
        n_type: 1,
        desc: vec![0; 4],
    });
    assert_eq!(refusal(&elf), LoadError::NoXenNotesOrLegacy);
}

#[test]
fn a_misaligned_image_still_parses() {
    let bytes = TestElf::linux().build();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let img = crate::GuestImage::parse(&shifted[1..]).unwrap();
    assert_eq!(img.entry(), w::LINUX_KSTART);
}
