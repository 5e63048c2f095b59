//! A test-only writer of small ELF32 kernels, byte by byte, so every rule of the
//! loader can be hit by a fixture that differs from a valid one in one field.
//!
//! File layout: ELF header, program headers (the `PT_LOAD`s in spec order, then a
//! `PT_NOTE` if notes go in a segment), segment bytes, the note blob, the legacy
//! string, the section name table, then section headers (null, `.note.Xen` if notes
//! exist, `__xen_guest` if there is a legacy string, `.shstrtab`).

use xen_abi::elfnote::*;

pub const EHDR_SIZE: usize = 52;
pub const PHDR_SIZE: usize = 32;
pub const SHDR_SIZE: usize = 40;

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_NOTE: u32 = 7;

/// Offsets of header fields, for mutation tests.
pub mod off {
    pub const E_TYPE: usize = 16;
    pub const E_MACHINE: usize = 18;
    pub const E_ENTRY: usize = 24;
    pub const E_PHOFF: usize = 28;
    pub const E_SHOFF: usize = 32;
    pub const E_PHENTSIZE: usize = 42;
    pub const E_PHNUM: usize = 44;
    pub const P_TYPE: usize = 0;
    pub const P_OFFSET: usize = 4;
    pub const P_PADDR: usize = 12;
    pub const P_FILESZ: usize = 16;
    pub const P_MEMSZ: usize = 20;
    pub const P_ALIGN: usize = 28;

    /// Offset of program header `i`.
    pub fn phdr(i: usize) -> usize {
        super::EHDR_SIZE + i * super::PHDR_SIZE
    }
}

#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub vaddr: u32,
    pub paddr: u32,
    pub bytes: Vec<u8>,
    pub memsz: u32,
}

#[derive(Clone, Debug)]
pub struct NoteSpec {
    pub name: Vec<u8>,
    pub n_type: u32,
    pub desc: Vec<u8>,
}

/// Where the note blob goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotesPlace {
    /// A `PT_NOTE` segment and an `SHT_NOTE` section over the same bytes (what
    /// linkers produce).
    SegmentAndSection,
    /// Only an `SHT_NOTE` section.
    SectionOnly,
}

#[derive(Clone, Debug)]
pub struct TestElf {
    pub class: u8,
    pub data: u8,
    pub e_type: u16,
    pub machine: u16,
    pub entry: u32,
    pub loads: Vec<LoadSpec>,
    pub notes: Vec<NoteSpec>,
    pub notes_place: NotesPlace,
    /// `PT_NOTE` alignment (`p_align`) and `SHT_NOTE` `sh_addralign`.
    pub note_align: u32,
    /// `__xen_guest` section content (a NUL is appended).
    pub legacy: Option<Vec<u8>>,
}

pub fn num4(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub fn num8(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

pub fn string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A recognisable byte pattern for segment contents.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1)
        .collect()
}

pub const LINUX_VIRT_BASE: u32 = 0xC000_0000;
pub const LINUX_KSTART: u32 = 0xC010_0000;
pub const LINUX_KEND: u32 = 0xC010_3000;
pub const LINUX_HYPERCALL_PAGE: u32 = 0xC010_1000;
pub const ALL_FEATURES: &str = "writable_page_tables|writable_descriptor_tables|\
auto_translated_physmap|pae_pgdir_above_4gb|supervisor_mode_kernel";

impl TestElf {
    /// A bare ELF32 i386 executable with the given segments and nothing Xen.
    pub fn bare(entry: u32, loads: Vec<LoadSpec>) -> Self {
        TestElf {
            class: 1,
            data: 1,
            e_type: 2,
            machine: 3,
            entry,
            loads,
            notes: Vec::new(),
            notes_place: NotesPlace::SegmentAndSection,
            note_align: 4,
            legacy: None,
        }
    }

    /// A Linux-like PAE kernel at 0xC0100000 with a full set of notes: text
    /// `[0xC0100000, 0xC0102000)` (0x100 file bytes), data `[0xC0102000, 0xC0103000)`
    /// (0x40 file bytes), hypercall page at 0xC0101000.
    pub fn linux() -> Self {
        let mut elf = TestElf::bare(
            LINUX_KSTART,
            vec![
                LoadSpec {
                    vaddr: 0xC010_0000,
                    paddr: 0x0010_0000,
                    bytes: pattern(0x100, 1),
                    memsz: 0x2000,
                },
                LoadSpec {
                    vaddr: 0xC010_2000,
                    paddr: 0x0010_2000,
                    bytes: pattern(0x40, 2),
                    memsz: 0x1000,
                },
            ],
        );
        let mut pairs = num8(1);
        pairs.extend(num8(1));
        elf.notes = vec![
            xen_note(XEN_ELFNOTE_GUEST_OS, string("linux")),
            xen_note(XEN_ELFNOTE_GUEST_VERSION, string("2.6")),
            xen_note(XEN_ELFNOTE_XEN_VERSION, string("xen-3.0")),
            xen_note(XEN_ELFNOTE_VIRT_BASE, num4(LINUX_VIRT_BASE)),
            xen_note(XEN_ELFNOTE_PADDR_OFFSET, num4(0)),
            xen_note(XEN_ELFNOTE_ENTRY, num8(u64::from(LINUX_KSTART))),
            xen_note(XEN_ELFNOTE_HYPERCALL_PAGE, num4(LINUX_HYPERCALL_PAGE)),
            xen_note(XEN_ELFNOTE_LOADER, string("generic")),
            xen_note(XEN_ELFNOTE_PAE_MODE, string("yes")),
            xen_note(XEN_ELFNOTE_FEATURES, string(ALL_FEATURES)),
            xen_note(XEN_ELFNOTE_HV_START_LOW, num4(0xF580_0000)),
            xen_note(XEN_ELFNOTE_L1_MFN_VALID, pairs),
            xen_note(XEN_ELFNOTE_SUSPEND_CANCEL, num4(1)),
        ];
        elf
    }

    /// A Mini-OS-like kernel at 0 described by the legacy string only.
    pub fn minios_legacy() -> Self {
        let mut elf = TestElf::bare(
            0,
            vec![LoadSpec {
                vaddr: 0,
                paddr: 0,
                bytes: pattern(0x80, 3),
                memsz: 0x4000,
            }],
        );
        elf.legacy = Some(
            b"GUEST_OS=Mini-OS,XEN_VER=xen-3.0,VIRT_BASE=0x0,ELF_PADDR_OFFSET=0x0,\
HYPERCALL_PAGE=0x2,PAE=yes[extended-cr3],LOADER=generic"
                .to_vec(),
        );
        elf
    }

    /// Replaces (or adds) the Xen note of type `n_type`.
    pub fn with_note(mut self, n_type: u32, desc: Vec<u8>) -> Self {
        self.notes
            .retain(|n| n.name != b"Xen\0" || n.n_type != n_type);
        self.notes.push(xen_note(n_type, desc));
        self
    }

    /// Removes the Xen note of type `n_type`.
    pub fn without_note(mut self, n_type: u32) -> Self {
        self.notes
            .retain(|n| n.name != b"Xen\0" || n.n_type != n_type);
        self
    }

    /// Replaces the legacy string.
    pub fn with_legacy(mut self, s: &str) -> Self {
        self.legacy = Some(s.as_bytes().to_vec());
        self
    }

    fn has_note_segment(&self) -> bool {
        !self.notes.is_empty() && self.notes_place == NotesPlace::SegmentAndSection
    }

    /// Index of the `PT_NOTE` program header, if any.
    pub fn note_phdr_index(&self) -> Option<usize> {
        self.has_note_segment().then_some(self.loads.len())
    }

    pub fn build(&self) -> Vec<u8> {
        let phnum = self.loads.len() + usize::from(self.has_note_segment());
        let mut out = vec![0u8; EHDR_SIZE + phnum * PHDR_SIZE];

        // Segment bytes.
        let mut load_offsets = Vec::new();
        for load in &self.loads {
            align(&mut out, 16);
            load_offsets.push(out.len());
            out.extend_from_slice(&load.bytes);
        }
        // Notes.
        align(&mut out, 4);
        let notes_offset = out.len();
        for note in &self.notes {
            put_note(&mut out, note);
        }
        let notes_len = out.len() - notes_offset;
        // Legacy string.
        let legacy = self.legacy.as_ref().map(|s| {
            let start = out.len();
            out.extend_from_slice(s);
            out.push(0);
            (start, s.len() + 1)
        });
        // Section names.
        let mut sections: Vec<(u32, u32, usize, usize, u32)> = Vec::new(); // name, type, off, len, align
        let mut shstrtab = vec![0u8];
        let name = |n: &str, shstrtab: &mut Vec<u8>| {
            let at = shstrtab.len() as u32;
            shstrtab.extend_from_slice(n.as_bytes());
            shstrtab.push(0);
            at
        };
        if !self.notes.is_empty() {
            let n = name(".note.Xen", &mut shstrtab);
            sections.push((n, SHT_NOTE, notes_offset, notes_len, self.note_align));
        }
        if let Some((start, len)) = legacy {
            let n = name("__xen_guest", &mut shstrtab);
            sections.push((n, SHT_PROGBITS, start, len, 1));
        }
        let shstrtab_name = name(".shstrtab", &mut shstrtab);
        let shstrtab_offset = out.len();
        out.extend_from_slice(&shstrtab);
        sections.push((
            shstrtab_name,
            SHT_STRTAB,
            shstrtab_offset,
            shstrtab.len(),
            1,
        ));
        align(&mut out, 4);
        let shoff = out.len();
        out.extend_from_slice(&[0u8; SHDR_SIZE]); // null section
        for &(name, sh_type, offset, len, addralign) in &sections {
            let mut sh = [0u8; SHDR_SIZE];
            sh[0..4].copy_from_slice(&name.to_le_bytes());
            sh[4..8].copy_from_slice(&sh_type.to_le_bytes());
            sh[16..20].copy_from_slice(&(offset as u32).to_le_bytes());
            sh[20..24].copy_from_slice(&(len as u32).to_le_bytes());
            sh[32..36].copy_from_slice(&addralign.to_le_bytes());
            out.extend_from_slice(&sh);
        }
        let shnum = sections.len() + 1;

        // File header.
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = self.class;
        out[5] = self.data;
        out[6] = 1; // EV_CURRENT
        put_u16(&mut out, off::E_TYPE, self.e_type);
        put_u16(&mut out, off::E_MACHINE, self.machine);
        put_u32(&mut out, 20, 1); // e_version
        put_u32(&mut out, off::E_ENTRY, self.entry);
        put_u32(
            &mut out,
            off::E_PHOFF,
            if phnum > 0 { EHDR_SIZE as u32 } else { 0 },
        );
        put_u32(&mut out, off::E_SHOFF, shoff as u32);
        put_u16(&mut out, 40, EHDR_SIZE as u16); // e_ehsize
        put_u16(&mut out, off::E_PHENTSIZE, PHDR_SIZE as u16);
        put_u16(&mut out, off::E_PHNUM, phnum as u16);
        put_u16(&mut out, 46, SHDR_SIZE as u16); // e_shentsize
        put_u16(&mut out, 48, shnum as u16);
        put_u16(&mut out, 50, (shnum - 1) as u16); // e_shstrndx

        // Program headers.
        for (i, load) in self.loads.iter().enumerate() {
            let ph = off::phdr(i);
            put_u32(&mut out, ph + off::P_TYPE, PT_LOAD);
            put_u32(&mut out, ph + off::P_OFFSET, load_offsets[i] as u32);
            put_u32(&mut out, ph + 8, load.vaddr);
            put_u32(&mut out, ph + off::P_PADDR, load.paddr);
            put_u32(&mut out, ph + off::P_FILESZ, load.bytes.len() as u32);
            put_u32(&mut out, ph + off::P_MEMSZ, load.memsz);
            put_u32(&mut out, ph + 24, 7); // RWX
            put_u32(&mut out, ph + off::P_ALIGN, 0x1000);
        }
        if let Some(i) = self.note_phdr_index() {
            let ph = off::phdr(i);
            put_u32(&mut out, ph + off::P_TYPE, PT_NOTE);
            put_u32(&mut out, ph + off::P_OFFSET, notes_offset as u32);
            put_u32(&mut out, ph + off::P_FILESZ, notes_len as u32);
            put_u32(&mut out, ph + off::P_MEMSZ, notes_len as u32);
            put_u32(&mut out, ph + 24, 4); // R
            put_u32(&mut out, ph + off::P_ALIGN, self.note_align);
        }
        out
    }
}

pub fn xen_note(n_type: u32, desc: Vec<u8>) -> NoteSpec {
    NoteSpec {
        name: b"Xen\0".to_vec(),
        n_type,
        desc,
    }
}

fn put_note(out: &mut Vec<u8>, note: &NoteSpec) {
    out.extend_from_slice(&(note.name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(note.desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&note.n_type.to_le_bytes());
    out.extend_from_slice(&note.name);
    align(out, 4);
    out.extend_from_slice(&note.desc);
    align(out, 4);
}

fn align(out: &mut Vec<u8>, to: usize) {
    while !out.len().is_multiple_of(to) {
        out.push(0);
    }
}

pub fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn get_u32(out: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(out[at..at + 4].try_into().unwrap())
}
