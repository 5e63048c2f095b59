//! The ELF32 container of a guest kernel, read in place with the `object` crate.
//!
//! Owns the ELF-level rules and nothing Xen-specific beyond *where* Xen's
//! information sits (XEN-PV-ABI.md §16):
//! - the file is `ELFCLASS32`, little endian, `EM_386`, `ET_EXEC`;
//! - `PT_LOAD` segments: their file bytes lie inside the image and
//!   `p_filesz <= p_memsz`; segments with `p_memsz == 0` load nothing and are dropped;
//! - Xen notes come from the `PT_NOTE` segments (those with `p_offset == 0` are
//!   skipped, as Xen does for old binutils output); only when these hold no `"Xen"`
//!   note at all are the `SHT_NOTE` sections searched (DESIGN §6: notes may sit only in
//!   a section);
//! - the legacy guest-info string is the `__xen_guest` section, up to its first NUL.
//!
//! Nothing here allocates: `object` parses in place, and segments are kept in a
//! fixed-capacity array of [`MAX_LOAD_SEGMENTS`]. Address arithmetic (load VAs,
//! overlaps, the hypervisor hole) is [`crate::image`]'s job, because it needs the notes.

use core::fmt;

use arrayvec::ArrayVec;
use object::LittleEndian;
use object::elf::{
    ELFCLASS32, ELFDATA2LSB, ELFMAG, EM_386, ET_EXEC, FileHeader32, PT_LOAD, PT_NOTE,
    ProgramHeader32, SHT_NOTE,
};
use object::read::elf::{FileHeader, NoteIterator, ProgramHeader, SectionHeader};
use xen_abi::elfnote::{LEGACY_GUEST_INFO_SECTION, XEN_ELFNOTE_NAME};

use crate::error::{ElfPart, LoadError};

/// Most `PT_LOAD` segments a kernel may have (Linux has 2–5).
pub const MAX_LOAD_SEGMENTS: usize = 16;

const ENDIAN: LittleEndian = LittleEndian;
/// Offsets of the class and data-encoding bytes in `e_ident`.
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
/// Size of an ELF32 file header.
const ELF32_EHDR_SIZE: usize = 52;

/// One `PT_LOAD` program header, as found in the file (before address translation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElfSegment {
    /// Index in the program header table (what `readelf -l` numbers).
    pub index: usize,
    /// `p_vaddr` (informative: loading uses `p_paddr`, §16).
    pub vaddr: u32,
    /// `p_paddr`, the base of the load address computation.
    pub paddr: u32,
    /// `p_offset`: where the file bytes start.
    pub offset: u32,
    /// `p_filesz`: bytes copied from the file.
    pub filesz: u32,
    /// `p_memsz`: bytes occupied in memory (the tail beyond `filesz` is zeroed).
    pub memsz: u32,
}

/// Where the Xen information of an image was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotesSource {
    /// `"Xen"` notes in `PT_NOTE` segments.
    ProgramHeaders,
    /// `"Xen"` notes in `SHT_NOTE` sections (no `PT_NOTE` held any).
    Sections,
    /// The legacy `__xen_guest` string.
    LegacyGuestInfo,
}

/// A checked ELF32 i386 executable, borrowed from the image bytes.
#[derive(Clone, Copy)]
pub struct ElfFile<'a> {
    data: &'a [u8],
    header: &'a FileHeader32<LittleEndian>,
    program_headers: &'a [ProgramHeader32<LittleEndian>],
}

impl<'a> ElfFile<'a> {
    /// Checks the identification and file header and locates the program headers.
    pub fn parse(data: &'a [u8]) -> Result<Self, LoadError> {
        if data.len() < ELF32_EHDR_SIZE || data[..4] != ELFMAG {
            return Err(LoadError::NotElf);
        }
        if data[EI_CLASS] != ELFCLASS32.0 {
            return Err(LoadError::NotElf32 {
                class: data[EI_CLASS],
            });
        }
        if data[EI_DATA] != ELFDATA2LSB.0 {
            return Err(LoadError::NotLittleEndian {
                data: data[EI_DATA],
            });
        }
        let header = FileHeader32::<LittleEndian>::parse(data)
            .map_err(|_| LoadError::MalformedElf(ElfPart::FileHeader))?;
        let machine = header.e_machine(ENDIAN);
        if machine != EM_386 {
            return Err(LoadError::NotI386 { machine: machine.0 });
        }
        let e_type = header.e_type(ENDIAN);
        if e_type != ET_EXEC {
            return Err(LoadError::NotExecutable { e_type: e_type.0 });
        }
        let program_headers = header
            .program_headers(ENDIAN, data)
            .map_err(|_| LoadError::MalformedElf(ElfPart::ProgramHeaders))?;
        Ok(ElfFile {
            data,
            header,
            program_headers,
        })
    }

    /// The image bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// `e_entry`.
    pub fn e_entry(&self) -> u32 {
        self.header.e_entry(ENDIAN)
    }

    /// The `PT_LOAD` segments that occupy memory, in program-header order, with their
    /// file ranges checked against the image and `p_filesz <= p_memsz`.
    pub fn load_segments(&self) -> Result<ArrayVec<ElfSegment, MAX_LOAD_SEGMENTS>, LoadError> {
        let mut segments = ArrayVec::new();
        for (index, ph) in self.program_headers.iter().enumerate() {
            if ph.p_type(ENDIAN) != PT_LOAD {
                continue;
            }
            let segment = ElfSegment {
                index,
                vaddr: ph.p_vaddr(ENDIAN),
                paddr: ph.p_paddr(ENDIAN),
                offset: ph.p_offset(ENDIAN),
                filesz: ph.p_filesz(ENDIAN),
                memsz: ph.p_memsz(ENDIAN),
            };
            let file_end = u64::from(segment.offset) + u64::from(segment.filesz);
            if file_end > self.data.len() as u64 {
                return Err(LoadError::SegmentTruncated { index });
            }
            if segment.filesz > segment.memsz {
                return Err(LoadError::SegmentFileSizeExceedsMemSize { index });
            }
            if segment.memsz == 0 {
                continue;
            }
            segments
                .try_push(segment)
                .map_err(|_| LoadError::TooManySegments {
                    max: MAX_LOAD_SEGMENTS,
                })?;
        }
        if segments.is_empty() {
            return Err(LoadError::NoLoadSegments);
        }
        Ok(segments)
    }

    /// The file bytes of a segment returned by [`Self::load_segments`] (empty for a
    /// hand-made segment that does not lie in the image).
    pub fn segment_bytes(&self, segment: &ElfSegment) -> &'a [u8] {
        let start = segment.offset as usize;
        start
            .checked_add(segment.filesz as usize)
            .and_then(|end| self.data.get(start..end))
            .unwrap_or(&[])
    }

    /// Calls `visit(type, desc)` for every `"Xen"` note: those of the `PT_NOTE`
    /// segments, or, when they hold none, those of the `SHT_NOTE` sections. Returns
    /// where the notes were found, or `None` when there are no Xen notes.
    pub fn for_each_xen_note(
        &self,
        mut visit: impl FnMut(u32, &'a [u8]) -> Result<(), LoadError>,
    ) -> Result<Option<NotesSource>, LoadError> {
        let mut found = 0usize;
        for ph in self.program_headers {
            if ph.p_type(ENDIAN) != PT_NOTE || ph.p_offset(ENDIAN) == 0 {
                continue;
            }
            let notes = ph
                .notes(ENDIAN, self.data)
                .map_err(|_| LoadError::MalformedElf(ElfPart::Notes))?;
            if let Some(notes) = notes {
                found += walk_xen_notes(notes, &mut visit)?;
            }
        }
        if found > 0 {
            return Ok(Some(NotesSource::ProgramHeaders));
        }
        let sections = self
            .header
            .sections(ENDIAN, self.data)
            .map_err(|_| LoadError::MalformedElf(ElfPart::SectionHeaders))?;
        for sh in sections.iter() {
            if sh.sh_type(ENDIAN) != SHT_NOTE {
                continue;
            }
            let notes = sh
                .notes(ENDIAN, self.data)
                .map_err(|_| LoadError::MalformedElf(ElfPart::Notes))?;
            if let Some(notes) = notes {
                found += walk_xen_notes(notes, &mut visit)?;
            }
        }
        Ok((found > 0).then_some(NotesSource::Sections))
    }

    /// The legacy guest-info string: the `__xen_guest` section's bytes up to the first
    /// NUL (or its end), or `None` when there is no such section.
    pub fn legacy_guest_info(&self) -> Result<Option<&'a [u8]>, LoadError> {
        let sections = self
            .header
            .sections(ENDIAN, self.data)
            .map_err(|_| LoadError::MalformedElf(ElfPart::SectionHeaders))?;
        let Some((_, section)) = sections.section_by_name(ENDIAN, LEGACY_GUEST_INFO_SECTION) else {
            return Ok(None);
        };
        let bytes = section
            .data(ENDIAN, self.data)
            .map_err(|_| LoadError::MalformedElf(ElfPart::LegacyGuestInfo))?;
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Ok(Some(&bytes[..len]))
    }
}

impl fmt::Debug for ElfFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the bytes: an image is megabytes.
        f.debug_struct("ElfFile")
            .field("len", &self.data.len())
            .field("e_entry", &self.e_entry())
            .field("program_headers", &self.program_headers.len())
            .finish()
    }
}

/// Feeds the `"Xen"` notes of one container to `visit`; returns how many there were.
fn walk_xen_notes<'a>(
    mut notes: NoteIterator<'a, FileHeader32<LittleEndian>>,
    visit: &mut impl FnMut(u32, &'a [u8]) -> Result<(), LoadError>,
) -> Result<usize, LoadError> {
    let mut count = 0;
    while let Some(note) = notes
        .next()
        .map_err(|_| LoadError::MalformedElf(ElfPart::Notes))?
    {
        if note.name() != XEN_ELFNOTE_NAME {
            continue;
        }
        count += 1;
        visit(note.n_type(ENDIAN).0, note.desc())?;
    }
    Ok(count)
}
