//! A validated Xen PV guest kernel: [`GuestImage`].
//!
//! Owns the loader's sanity rules of XEN-PV-ABI.md §16 and the address computation
//! that places the image. [`GuestImage::parse`] applies them in this order, each
//! failure naming its rule:
//! 1. ELF container ([`crate::elf`]): ELF32, little endian, `EM_386`, `ET_EXEC`, at
//!    least one `PT_LOAD`, file ranges inside the image, `p_filesz <= p_memsz`.
//! 2. Declarations ([`crate::notes`]): `"Xen"` notes (`PT_NOTE`, else `SHT_NOTE`), else
//!    the legacy `__xen_guest` string, else [`LoadError::NoXenNotesOrLegacy`].
//! 3. `XEN_VERSION` starts with `"xen-3.0"`; `LOADER` starts with `"generic"` or
//!    `GUEST_OS` with `"linux"`; the kernel declares PAE (an x86_32p hypervisor loads
//!    only PAE kernels); every `FEATURES` name is known.
//! 4. Addresses: `PADDR_OFFSET` needs `VIRT_BASE`; `VIRT_BASE` defaults to 0 and
//!    must be page aligned; `PADDR_OFFSET` defaults to 0 with notes and to
//!    `VIRT_BASE` with the legacy string. Each segment loads at
//!    `p_paddr + VIRT_BASE − PADDR_OFFSET`, which with its `p_memsz` must fit in 32
//!    bits, stay below the hypervisor hole (`0xF5800000`, §3.2) and not overlap
//!    another segment.
//! 5. `[virt_kstart, virt_kend)` is the union hull of the segments; then
//!    `VIRT_BASE <= virt_kstart <= ENTRY <= virt_kend` (`ENTRY` defaults to `e_entry`);
//!    the 4 KiB hypercall page lies inside `[virt_kstart, virt_kend)`; `INIT_P2M`, if
//!    given, lies outside it; `HV_START_LOW`, if given, is at most `0xF5800000`.
//!
//! Invariants of a `GuestImage`: every field above holds; all addresses are 32-bit
//! guest virtual addresses; segments are disjoint and lie in `[virt_kstart,
//! virt_kend)` below the hypervisor hole. Oxen does not append a BSD symbol table:
//! `bsd_symtab()` only reports that the kernel asked for one, and `virt_kend` is the
//! end of the loaded segments.

use arrayvec::ArrayVec;
use xen_abi::elfnote::{
    XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_HV_START_LOW, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_INIT_P2M,
    XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_VIRT_BASE, XEN_VERSION_PREFIX,
};
use xen_abi::layout::HYPERVISOR_VIRT_START;

use crate::elf::{ElfFile, ElfSegment, MAX_LOAD_SEGMENTS, NotesSource};
use crate::error::{LoadError, ShortName};
use crate::notes::{FeatureSet, NoteStr, PAGE_SIZE, PaeMode, XenNotes};

/// A `PT_LOAD` segment placed at its guest virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// The program header it came from.
    pub elf: ElfSegment,
    /// Guest virtual address of its first byte: `p_paddr + VIRT_BASE − PADDR_OFFSET`.
    pub load_va: u32,
}

impl LoadSegment {
    /// One past the last byte in memory (`load_va + p_memsz`, at most 4 GiB).
    pub fn end(&self) -> u64 {
        u64::from(self.load_va) + u64::from(self.elf.memsz)
    }
}

/// A guest kernel that passed every check of §16. See the module documentation.
#[derive(Clone, Debug)]
pub struct GuestImage<'a> {
    elf: ElfFile<'a>,
    notes: XenNotes<'a>,
    segments: ArrayVec<LoadSegment, MAX_LOAD_SEGMENTS>,
    entry: u32,
    virt_base: u32,
    paddr_offset: u32,
    virt_kstart: u32,
    virt_kend: u32,
    hypercall_page: Option<u32>,
    pae: PaeMode,
    features: FeatureSet,
}

impl<'a> GuestImage<'a> {
    /// Parses and validates a kernel image held in `image` (no copy is made).
    pub fn parse(image: &'a [u8]) -> Result<Self, LoadError> {
        let elf = ElfFile::parse(image)?;
        let elf_segments = elf.load_segments()?;
        let notes = read_declarations(&elf)?;

        // §16: the loader only takes kernels built for xen-3.0, for the generic
        // loader or Linux, in PAE mode, with known features.
        let xen_version = notes.xen_version.ok_or(LoadError::XenVersionMissing)?;
        if !xen_version.starts_with(XEN_VERSION_PREFIX) {
            return Err(LoadError::BadXenVersion(ShortName::new(
                xen_version.as_bytes(),
            )));
        }
        let generic = notes.loader.is_some_and(|l| l.starts_with(b"generic"));
        let linux = notes.guest_os.is_some_and(|os| os.starts_with(b"linux"));
        if !generic && !linux {
            return Err(LoadError::LoaderNotGeneric);
        }
        let pae = notes.pae_mode()?;
        let features = match notes.features {
            Some(list) => FeatureSet::parse(list.as_bytes())?,
            None => FeatureSet::default(),
        };

        // §16: VIRT_BASE defaults to 0; PADDR_OFFSET to 0 (notes) or VIRT_BASE
        // (legacy), and is meaningless without VIRT_BASE.
        if notes.paddr_offset.is_some() && notes.virt_base.is_none() {
            return Err(LoadError::PaddrOffsetWithoutVirtBase);
        }
        let virt_base = address(XEN_ELFNOTE_VIRT_BASE, notes.virt_base.unwrap_or(0))?;
        if virt_base % PAGE_SIZE != 0 {
            return Err(LoadError::VirtBaseNotPageAligned { virt_base });
        }
        let default_paddr_offset = match notes.source {
            NotesSource::LegacyGuestInfo => virt_base,
            NotesSource::ProgramHeaders | NotesSource::Sections => 0,
        };
        let paddr_offset = match notes.paddr_offset {
            Some(v) => address(XEN_ELFNOTE_PADDR_OFFSET, v)?,
            None => default_paddr_offset,
        };

        let segments = place_segments(&elf_segments, virt_base, paddr_offset)?;
        let virt_kstart = segments.iter().map(|s| s.load_va).min();
        let virt_kend = segments.iter().map(LoadSegment::end).max();
        let (Some(virt_kstart), Some(virt_kend)) = (virt_kstart, virt_kend) else {
            return Err(LoadError::NoLoadSegments);
        };
        // Below the hole (checked per segment), so it fits.
        let virt_kend = virt_kend as u32;

        if virt_base > virt_kstart {
            return Err(LoadError::VirtBaseAboveImage {
                virt_base,
                virt_kstart,
            });
        }
        let entry = match notes.entry {
            Some(v) => address(XEN_ELFNOTE_ENTRY, v)?,
            None => elf.e_entry(),
        };
        if entry < virt_kstart || entry > virt_kend {
            return Err(LoadError::EntryOutsideImage {
                entry,
                virt_kstart,
                virt_kend,
            });
        }
        let hypercall_page = match notes.hypercall_page {
            None => None,
            Some(va) => {
                let inside = va >= u64::from(virt_kstart)
                    && va
                        .checked_add(u64::from(PAGE_SIZE))
                        .is_some_and(|end| end <= u64::from(virt_kend));
                if !inside {
                    return Err(LoadError::HypercallPageOutsideImage {
                        hypercall_page: va,
                        virt_kstart,
                        virt_kend,
                    });
                }
                Some(address(XEN_ELFNOTE_HYPERCALL_PAGE, va)?)
            }
        };
        if let Some(v) = notes.init_p2m {
            let init_p2m = address(XEN_ELFNOTE_INIT_P2M, v)?;
            if (virt_kstart..virt_kend).contains(&init_p2m) {
                return Err(LoadError::InitP2mInsideImage { init_p2m });
            }
        }
        if let Some(v) = notes.hv_start_low {
            let hv_start_low = address(XEN_ELFNOTE_HV_START_LOW, v)?;
            if hv_start_low > HYPERVISOR_VIRT_START {
                return Err(LoadError::HvStartLowAboveHole { hv_start_low });
            }
        }

        Ok(GuestImage {
            elf,
            notes,
            segments,
            entry,
            virt_base,
            paddr_offset,
            virt_kstart,
            virt_kend,
            hypercall_page,
            pae,
            features,
        })
    }

    /// Initial `EIP` (§4.2): `ENTRY`, else `e_entry`.
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// Start of the bootstrap region (§4.3): pfn 0 is mapped here.
    pub fn virt_base(&self) -> u32 {
        self.virt_base
    }

    /// The effective `PADDR_OFFSET`.
    pub fn paddr_offset(&self) -> u32 {
        self.paddr_offset
    }

    /// First byte of the loaded image.
    pub fn virt_kstart(&self) -> u32 {
        self.virt_kstart
    }

    /// One past the last byte of the loaded image (not page aligned in general).
    pub fn virt_kend(&self) -> u32 {
        self.virt_kend
    }

    /// Virtual address where the hypervisor writes the hypercall page, if the kernel
    /// asked for one. It lies inside the image, so write it after [`Self::load`].
    pub fn hypercall_page(&self) -> Option<u32> {
        self.hypercall_page
    }

    /// The declared PAE mode.
    pub fn pae(&self) -> PaeMode {
        self.pae
    }

    /// Whether to turn on `VMASST_TYPE_pae_extended_cr3` for the domain (§4.2).
    pub fn extended_cr3(&self) -> bool {
        self.pae.extended_cr3()
    }

    /// The declared features (XENFEAT bit masks).
    pub fn features(&self) -> FeatureSet {
        self.features
    }

    /// Fails if the kernel requires a feature missing from `offered` (the
    /// hypervisor's `XENVER_get_features` submap 0).
    pub fn check_required_features(&self, offered: u32) -> Result<(), LoadError> {
        match self.features.missing_from(offered) {
            0 => Ok(()),
            missing => Err(LoadError::RequiredFeatureUnsupported {
                bit: missing.trailing_zeros(),
            }),
        }
    }

    /// `GUEST_OS` (empty if not declared).
    pub fn guest_os(&self) -> NoteStr<'a> {
        self.notes.guest_os.unwrap_or_default()
    }

    /// `GUEST_VERSION` (empty if not declared).
    pub fn guest_version(&self) -> NoteStr<'a> {
        self.notes.guest_version.unwrap_or_default()
    }

    /// `XEN_VERSION`.
    pub fn xen_version(&self) -> NoteStr<'a> {
        self.notes.xen_version.unwrap_or_default()
    }

    /// `LOADER` (empty if not declared).
    pub fn loader(&self) -> NoteStr<'a> {
        self.notes.loader.unwrap_or_default()
    }

    /// Whether the kernel accepts `start_info.mod_start` as a PFN (`MOD_START_PFN`).
    pub fn mod_start_pfn(&self) -> bool {
        self.notes.mod_start_pfn.is_some_and(|v| v != 0)
    }

    /// Whether the kernel supports cooperative suspend cancellation.
    pub fn suspend_cancel(&self) -> bool {
        self.notes.suspend_cancel.is_some_and(|v| v != 0)
    }

    /// Whether the kernel asked for its symbol table (not provided by Oxen).
    pub fn bsd_symtab(&self) -> bool {
        self.notes.bsd_symtab
    }

    /// Where the declarations came from.
    pub fn notes_source(&self) -> NotesSource {
        self.notes.source
    }

    /// Every declaration as made (for `HV_START_LOW`, `L1_MFN_VALID`, `INIT_P2M`...).
    pub fn notes(&self) -> &XenNotes<'a> {
        &self.notes
    }

    /// The segments to load, in program-header order.
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments
    }

    /// The file bytes of one of [`Self::segments`].
    pub fn segment_bytes(&self, segment: &LoadSegment) -> &'a [u8] {
        self.elf.segment_bytes(&segment.elf)
    }
}

/// Xen notes if there are any, else the legacy string (§16).
fn read_declarations<'a>(elf: &ElfFile<'a>) -> Result<XenNotes<'a>, LoadError> {
    let mut notes = XenNotes::empty(NotesSource::ProgramHeaders);
    if let Some(source) = elf.for_each_xen_note(|n_type, desc| notes.apply_note(n_type, desc))? {
        notes.source = source;
        return Ok(notes);
    }
    match elf.legacy_guest_info()? {
        Some(info) => XenNotes::parse_legacy(info),
        None => Err(LoadError::NoXenNotesOrLegacy),
    }
}

/// A declared number used as a 32-bit guest address.
fn address(note: u32, value: u64) -> Result<u32, LoadError> {
    u32::try_from(value).map_err(|_| LoadError::NoteValueTooLarge { note, value })
}

/// Load VA of every segment (§16), below the hole, pairwise disjoint.
fn place_segments(
    elf_segments: &[ElfSegment],
    virt_base: u32,
    paddr_offset: u32,
) -> Result<ArrayVec<LoadSegment, MAX_LOAD_SEGMENTS>, LoadError> {
    let mut placed = ArrayVec::<LoadSegment, MAX_LOAD_SEGMENTS>::new();
    for seg in elf_segments {
        let index = seg.index;
        let va = i64::from(seg.paddr) + i64::from(virt_base) - i64::from(paddr_offset);
        let load_va = u32::try_from(va).map_err(|_| LoadError::AddressOverflow { index })?;
        let segment = LoadSegment { elf: *seg, load_va };
        let end = segment.end();
        if end > 1 << 32 {
            return Err(LoadError::AddressOverflow { index });
        }
        if end > u64::from(HYPERVISOR_VIRT_START) {
            return Err(LoadError::ImageInHypervisorHole { index, end });
        }
        if let Some(other) = placed
            .iter()
            .find(|o| u64::from(o.load_va) < end && u64::from(load_va) < o.end())
        {
            return Err(LoadError::SegmentsOverlap {
                first: other.elf.index,
                second: index,
            });
        }
        // Capacity: `elf_segments` holds at most MAX_LOAD_SEGMENTS.
        placed.push(segment);
    }
    Ok(placed)
}
