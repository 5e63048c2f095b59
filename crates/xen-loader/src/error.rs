//! Why a guest image was refused.
//!
//! Owns [`LoadError`], the one error type of image parsing and validation. Every
//! variant names one rule of XEN-PV-ABI.md §16 (or of ELF itself) and its `Display`
//! says which, with the offending values, so a refusal printed on the hypervisor
//! console or by the toolstack tells the user exactly what is wrong with the kernel.
//! Errors are `Copy` and borrow nothing from the image: names taken from the image
//! are copied into a [`ShortName`] (truncated, non-printable bytes replaced).

use core::fmt;

use arrayvec::ArrayString;

/// A short printable copy of a name found in a guest image (a feature name, a PAE
/// mode, a version string), for error messages. At most [`ShortName::CAPACITY`]
/// bytes are kept; bytes that are not printable ASCII become `?`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortName {
    text: ArrayString<{ ShortName::CAPACITY }>,
    truncated: bool,
}

impl ShortName {
    /// Bytes kept from the original name.
    pub const CAPACITY: usize = 40;

    /// Copies (a prefix of) `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut text = ArrayString::new();
        for &b in bytes.iter().take(Self::CAPACITY) {
            let c = if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            };
            text.push(c);
        }
        ShortName {
            text,
            truncated: bytes.len() > Self::CAPACITY,
        }
    }

    /// The kept text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ShortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text.as_str())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Which part of the ELF file could not be read (for [`LoadError::MalformedElf`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfPart {
    /// The 52-byte file header.
    FileHeader,
    /// The program header table (`e_phoff`, `e_phnum`, `e_phentsize`).
    ProgramHeaders,
    /// The section header table or the section name string table.
    SectionHeaders,
    /// A `PT_NOTE` segment or `SHT_NOTE` section (bounds, alignment or note sizes).
    Notes,
    /// The `__xen_guest` section (bounds, or no terminating NUL).
    LegacyGuestInfo,
}

impl fmt::Display for ElfPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfPart::FileHeader => "file header",
            ElfPart::ProgramHeaders => "program header table",
            ElfPart::SectionHeaders => "section header table",
            ElfPart::Notes => "note segment/section",
            ElfPart::LegacyGuestInfo => "__xen_guest section",
        })
    }
}

/// A guest image was refused. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Too short for an ELF header, or the magic `\x7fELF` is missing.
    NotElf,
    /// `EI_CLASS` is not `ELFCLASS32`.
    NotElf32 { class: u8 },
    /// `EI_DATA` is not `ELFDATA2LSB`.
    NotLittleEndian { data: u8 },
    /// `e_machine` is not `EM_386` (3).
    NotI386 { machine: u16 },
    /// `e_type` is not `ET_EXEC` (2).
    NotExecutable { e_type: u16 },
    /// Some table of the file lies outside it, is misaligned or has a wrong entry size.
    MalformedElf(ElfPart),
    /// No `PT_LOAD` segment with a non-zero size.
    NoLoadSegments,
    /// More `PT_LOAD` segments than the loader keeps.
    TooManySegments { max: usize },
    /// A `PT_LOAD` segment's file bytes lie (partly) outside the file.
    SegmentTruncated { index: usize },
    /// A `PT_LOAD` segment has `p_filesz > p_memsz`.
    SegmentFileSizeExceedsMemSize { index: usize },
    /// A `PT_LOAD` segment's load address (`p_paddr + VIRT_BASE − PADDR_OFFSET`) or
    /// its end does not fit in 32 bits.
    AddressOverflow { index: usize },
    /// Two `PT_LOAD` segments overlap at their load addresses.
    SegmentsOverlap { first: usize, second: usize },
    /// A segment reaches the hypervisor hole at `0xF5800000`.
    ImageInHypervisorHole { index: usize, end: u64 },
    /// Neither `"Xen"` notes nor a `__xen_guest` section.
    NoXenNotesOrLegacy,
    /// A numeric note has a `descsz` other than 4 or 8.
    BadNoteSize { note: u32, descsz: usize },
    /// A numeric note holds a value that cannot be a 32-bit guest address.
    NoteValueTooLarge { note: u32, value: u64 },
    /// A `__xen_guest` item has a key of 32+ or a value of 128+ characters.
    LegacyItemTooLong,
    /// A `__xen_guest` numeric value is not a C-style number.
    BadLegacyNumber { key: ShortName },
    /// No `XEN_VERSION` note / `XEN_VER` key.
    XenVersionMissing,
    /// `XEN_VERSION` does not start with `"xen-3.0"`.
    BadXenVersion(ShortName),
    /// Neither does `LOADER` start with `"generic"` nor `GUEST_OS` with `"linux"`.
    LoaderNotGeneric,
    /// No PAE declaration, or `"no"`.
    NotPae,
    /// A PAE declaration this loader does not understand.
    UnknownPaeMode(ShortName),
    /// A `FEATURES` name outside the accepted list.
    UnknownFeature(ShortName),
    /// The kernel requires a feature the hypervisor does not offer (XENFEAT bit).
    RequiredFeatureUnsupported { bit: u32 },
    /// `PADDR_OFFSET` given without `VIRT_BASE`.
    PaddrOffsetWithoutVirtBase,
    /// `VIRT_BASE` is not page aligned.
    VirtBaseNotPageAligned { virt_base: u32 },
    /// `VIRT_BASE` lies above the start of the kernel image.
    VirtBaseAboveImage { virt_base: u32, virt_kstart: u32 },
    /// The entry point is outside `[virt_kstart, virt_kend]`.
    EntryOutsideImage {
        entry: u32,
        virt_kstart: u32,
        virt_kend: u32,
    },
    /// The hypercall page is not wholly inside `[virt_kstart, virt_kend)`.
    HypercallPageOutsideImage {
        hypercall_page: u64,
        virt_kstart: u32,
        virt_kend: u32,
    },
    /// `INIT_P2M` points inside the kernel image.
    InitP2mInsideImage { init_p2m: u32 },
    /// `HV_START_LOW` is above Oxen's hypervisor hole start: the kernel cannot live
    /// with a hole that starts as low as `0xF5800000`.
    HvStartLowAboveHole { hv_start_low: u32 },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use LoadError::*;
        match *self {
            NotElf => f.write_str("kernel image is not an ELF file"),
            NotElf32 { class } => write!(f, "kernel is not a 32-bit ELF (EI_CLASS {class})"),
            NotLittleEndian { data } => {
                write!(f, "kernel ELF is not little endian (EI_DATA {data})")
            }
            NotI386 { machine } => write!(
                f,
                "kernel ELF machine is {machine}, not EM_386 (3): not a 32-bit x86 kernel"
            ),
            NotExecutable { e_type } => {
                write!(f, "kernel ELF type is {e_type}, not ET_EXEC (2)")
            }
            MalformedElf(part) => write!(f, "kernel ELF {part} is malformed or truncated"),
            NoLoadSegments => f.write_str("kernel ELF has no loadable (PT_LOAD) segment"),
            TooManySegments { max } => {
                write!(f, "kernel ELF has more than {max} PT_LOAD segments")
            }
            SegmentTruncated { index } => write!(
                f,
                "PT_LOAD segment {index}: its file bytes lie outside the image"
            ),
            SegmentFileSizeExceedsMemSize { index } => {
                write!(f, "PT_LOAD segment {index}: p_filesz exceeds p_memsz")
            }
            AddressOverflow { index } => write!(
                f,
                "PT_LOAD segment {index}: load address p_paddr + VIRT_BASE - PADDR_OFFSET \
                 is outside the 32-bit address space"
            ),
            SegmentsOverlap { first, second } => write!(
                f,
                "PT_LOAD segments {first} and {second} overlap at their load addresses"
            ),
            ImageInHypervisorHole { index, end } => write!(
                f,
                "PT_LOAD segment {index} ends at {end:#x}, inside the hypervisor hole \
                 (>= 0xf5800000)"
            ),
            NoXenNotesOrLegacy => f.write_str(
                "not a Xen guest kernel: no \"Xen\" ELF notes and no __xen_guest section",
            ),
            BadNoteSize { note, descsz } => write!(
                f,
                "Xen ELF note {note}: numeric value of {descsz} bytes (must be 4 or 8)"
            ),
            NoteValueTooLarge { note, value } => write!(
                f,
                "Xen ELF note {note}: value {value:#x} does not fit a 32-bit address"
            ),
            LegacyItemTooLong => f.write_str(
                "__xen_guest: a key is 32 or more, or a value 128 or more characters long",
            ),
            BadLegacyNumber { key } => write!(f, "__xen_guest: {key}= is not a number"),
            XenVersionMissing => f.write_str(
                "kernel does not declare XEN_VERSION; only kernels built for xen-3.0 load",
            ),
            BadXenVersion(v) => write!(
                f,
                "kernel XEN_VERSION is \"{v}\"; only kernels built for xen-3.0 load"
            ),
            LoaderNotGeneric => f.write_str(
                "kernel is neither for the generic loader (LOADER=generic) nor Linux \
                 (GUEST_OS=linux)",
            ),
            NotPae => f.write_str(
                "kernel does not declare PAE; an x86_32p hypervisor loads only PAE kernels",
            ),
            UnknownPaeMode(m) => write!(f, "kernel PAE mode \"{m}\" is not understood"),
            UnknownFeature(name) => write!(f, "kernel FEATURES names unknown feature \"{name}\""),
            RequiredFeatureUnsupported { bit } => write!(
                f,
                "kernel requires feature {} (XENFEAT bit {bit}), which this hypervisor lacks",
                feature_name(bit)
            ),
            PaddrOffsetWithoutVirtBase => {
                f.write_str("kernel sets PADDR_OFFSET (ELF_PADDR_OFFSET) without VIRT_BASE")
            }
            VirtBaseNotPageAligned { virt_base } => {
                write!(f, "kernel VIRT_BASE {virt_base:#x} is not page aligned")
            }
            VirtBaseAboveImage {
                virt_base,
                virt_kstart,
            } => write!(
                f,
                "kernel VIRT_BASE {virt_base:#x} lies above the image start {virt_kstart:#x}"
            ),
            EntryOutsideImage {
                entry,
                virt_kstart,
                virt_kend,
            } => write!(
                f,
                "kernel entry {entry:#x} is outside the image [{virt_kstart:#x}, {virt_kend:#x}]"
            ),
            HypercallPageOutsideImage {
                hypercall_page,
                virt_kstart,
                virt_kend,
            } => write!(
                f,
                "kernel hypercall page {hypercall_page:#x} is not inside the image \
                 [{virt_kstart:#x}, {virt_kend:#x})"
            ),
            InitP2mInsideImage { init_p2m } => {
                write!(
                    f,
                    "kernel INIT_P2M {init_p2m:#x} lies inside the kernel image"
                )
            }
            HvStartLowAboveHole { hv_start_low } => write!(
                f,
                "kernel needs the hypervisor hole at or above {hv_start_low:#x}, \
                 but it starts at 0xf5800000"
            ),
        }
    }
}

fn feature_name(bit: u32) -> &'static str {
    xen_abi::elfnote::FEATURE_NAMES
        .get(bit as usize)
        .copied()
        .unwrap_or("(unnamed)")
}
