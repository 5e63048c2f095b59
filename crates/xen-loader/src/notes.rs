//! What a guest kernel declares about itself: Xen ELF notes or the legacy
//! `__xen_guest` string (XEN-PV-ABI.md §16), gathered into [`XenNotes`].
//!
//! Owns the *syntax* of both forms and keeps the values as declared (numbers as
//! `u64`, strings borrowed from the image); the *rules* that combine them (defaults,
//! bounds, required declarations) are [`crate::image`]'s. Invariants:
//! - a numeric note has a 4- or 8-byte little-endian desc, else [`LoadError::BadNoteSize`];
//! - a string note's value is its desc up to the first NUL;
//! - a later duplicate of a note or key replaces an earlier one (Xen does the same);
//! - note types this loader does not use are ignored;
//! - in the legacy string, `HYPERCALL_PAGE` is a page number: it is turned into an
//!   address only after the whole string is read, with the final `VIRT_BASE` (default
//!   0), so the order of the items does not matter;
//! - the interpretation of `PAE`/`PAE_MODE` and `FEATURES` is here too
//!   ([`XenNotes::pae_mode`], [`FeatureSet::parse`]), because it differs between the
//!   two forms.

use core::fmt;

use xen_abi::elfnote::{
    FEATURE_REQUIRED_PREFIX, FEATURES_SEPARATOR, XEN_ELFNOTE_BSD_SYMTAB, XEN_ELFNOTE_ENTRY,
    XEN_ELFNOTE_FEATURES, XEN_ELFNOTE_GUEST_OS, XEN_ELFNOTE_GUEST_VERSION,
    XEN_ELFNOTE_HV_START_LOW, XEN_ELFNOTE_HYPERCALL_PAGE, XEN_ELFNOTE_INIT_P2M,
    XEN_ELFNOTE_L1_MFN_VALID, XEN_ELFNOTE_LOADER, XEN_ELFNOTE_MOD_START_PFN,
    XEN_ELFNOTE_PADDR_OFFSET, XEN_ELFNOTE_PAE_MODE, XEN_ELFNOTE_SUSPEND_CANCEL,
    XEN_ELFNOTE_VIRT_BASE, XEN_ELFNOTE_XEN_VERSION, feature_bit,
};

use crate::elf::NotesSource;
use crate::error::{LoadError, ShortName};

/// Page size of the guest (4 KiB).
pub const PAGE_SIZE: u32 = 4096;

/// A string value from a note or the legacy string, borrowed from the image. It is
/// whatever bytes the kernel wrote (not necessarily UTF-8); `Display` shows printable
/// ASCII and escapes the rest.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct NoteStr<'a>(&'a [u8]);

impl<'a> NoteStr<'a> {
    /// Wraps raw bytes.
    pub const fn new(bytes: &'a [u8]) -> Self {
        NoteStr(bytes)
    }

    /// A string note's value: its desc up to the first NUL.
    pub fn from_desc(desc: &'a [u8]) -> Self {
        let len = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
        NoteStr(&desc[..len])
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The value as `&str`, if it is UTF-8.
    pub fn to_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// Whether the value starts with `prefix` (byte-wise, as `strncmp`).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.0.starts_with(prefix)
    }

    /// Whether the value is empty (also the value of an absent declaration).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for NoteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                fmt::Write::write_char(f, b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for NoteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The PAE declaration of a kernel (§16 `PAE_MODE` / legacy `PAE`; §4.2 for the
/// `pae_extended_cr3` consequence). A kernel without one does not load (§16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaeMode {
    /// Legacy `PAE=yes`: PAE, but the L3 table must stay below 4 GiB machine address.
    Yes,
    /// Note `"yes"` or legacy `PAE=yes[extended-cr3]`: the L3 may be anywhere.
    ExtendedCr3,
    /// `"bimodal"` / `"yes,bimodal"`: runs on PAE and non-PAE hypervisors.
    Bimodal,
}

impl PaeMode {
    /// Whether the builder turns on the `pae_extended_cr3` VM assist (§4.2:
    /// for note `"yes"`/`"bimodal"` and legacy `yes[extended-cr3]`).
    pub fn extended_cr3(self) -> bool {
        matches!(self, PaeMode::ExtendedCr3 | PaeMode::Bimodal)
    }
}

/// The features a kernel names in `FEATURES`, as `XENFEAT_*` bit masks (§16, bit
/// numbers of §15.4 = indices of [`xen_abi::elfnote::FEATURE_NAMES`]). A required
/// feature is also supported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureSet {
    /// Features the kernel can use (bit n = `XENFEAT` n).
    pub supported: u32,
    /// Features the kernel cannot run without (`!` prefix); a subset of `supported`.
    pub required: u32,
}

impl FeatureSet {
    /// Parses a `|`-separated list of names; `!name` marks a required feature; empty
    /// names are skipped; any name outside the accepted list fails the load (§16).
    pub fn parse(list: &[u8]) -> Result<Self, LoadError> {
        let mut set = FeatureSet::default();
        for item in list.split(|&b| b == FEATURES_SEPARATOR) {
            if item.is_empty() {
                continue;
            }
            let (required, name) = match item.split_first() {
                Some((&FEATURE_REQUIRED_PREFIX, rest)) => (true, rest),
                _ => (false, item),
            };
            let bit = feature_bit(name).ok_or(LoadError::UnknownFeature(ShortName::new(name)))?;
            set.supported |= 1 << bit;
            if required {
                set.required |= 1 << bit;
            }
        }
        Ok(set)
    }

    /// The required features missing from `offered` (a `XENVER_get_features` submap 0).
    pub fn missing_from(&self, offered: u32) -> u32 {
        self.required & !offered
    }
}

/// Everything a kernel declared, as declared. `None` = not declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XenNotes<'a> {
    /// Which form the declarations came in (decides defaults and PAE syntax).
    pub source: NotesSource,
    /// `ENTRY` / `VIRT_ENTRY`.
    pub entry: Option<u64>,
    /// `HYPERCALL_PAGE` as a virtual address (legacy page numbers already converted).
    pub hypercall_page: Option<u64>,
    /// `VIRT_BASE`.
    pub virt_base: Option<u64>,
    /// `PADDR_OFFSET` / `ELF_PADDR_OFFSET`.
    pub paddr_offset: Option<u64>,
    /// `XEN_VERSION` / `XEN_VER`.
    pub xen_version: Option<NoteStr<'a>>,
    /// `GUEST_OS`.
    pub guest_os: Option<NoteStr<'a>>,
    /// `GUEST_VERSION` / `GUEST_VER`.
    pub guest_version: Option<NoteStr<'a>>,
    /// `LOADER`.
    pub loader: Option<NoteStr<'a>>,
    /// `PAE_MODE` / `PAE`, raw; see [`XenNotes::pae_mode`].
    pub pae: Option<NoteStr<'a>>,
    /// `FEATURES`, raw; see [`FeatureSet::parse`].
    pub features: Option<NoteStr<'a>>,
    /// `BSD_SYMTAB` = `"yes"` (note) or present (legacy).
    pub bsd_symtab: bool,
    /// `HV_START_LOW`.
    pub hv_start_low: Option<u64>,
    /// `L1_MFN_VALID` desc: mask/value pairs; see [`XenNotes::l1_mfn_valid_pairs`].
    pub l1_mfn_valid: Option<&'a [u8]>,
    /// `SUSPEND_CANCEL`.
    pub suspend_cancel: Option<u64>,
    /// `INIT_P2M`.
    pub init_p2m: Option<u64>,
    /// `MOD_START_PFN`.
    pub mod_start_pfn: Option<u64>,
}

impl<'a> XenNotes<'a> {
    /// No declarations yet, from `source`.
    pub const fn empty(source: NotesSource) -> Self {
        XenNotes {
            source,
            entry: None,
            hypercall_page: None,
            virt_base: None,
            paddr_offset: None,
            xen_version: None,
            guest_os: None,
            guest_version: None,
            loader: None,
            pae: None,
            features: None,
            bsd_symtab: false,
            hv_start_low: None,
            l1_mfn_valid: None,
            suspend_cancel: None,
            init_p2m: None,
            mod_start_pfn: None,
        }
    }

    /// Records one `"Xen"` ELF note.
    pub fn apply_note(&mut self, n_type: u32, desc: &'a [u8]) -> Result<(), LoadError> {
        let string = NoteStr::from_desc(desc);
        match n_type {
            XEN_ELFNOTE_ENTRY => self.entry = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_HYPERCALL_PAGE => self.hypercall_page = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_VIRT_BASE => self.virt_base = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_PADDR_OFFSET => self.paddr_offset = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_XEN_VERSION => self.xen_version = Some(string),
            XEN_ELFNOTE_GUEST_OS => self.guest_os = Some(string),
            XEN_ELFNOTE_GUEST_VERSION => self.guest_version = Some(string),
            XEN_ELFNOTE_LOADER => self.loader = Some(string),
            XEN_ELFNOTE_PAE_MODE => self.pae = Some(string),
            XEN_ELFNOTE_FEATURES => self.features = Some(string),
            XEN_ELFNOTE_BSD_SYMTAB => self.bsd_symtab = string.as_bytes() == b"yes",
            XEN_ELFNOTE_HV_START_LOW => self.hv_start_low = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_L1_MFN_VALID => self.l1_mfn_valid = Some(desc),
            XEN_ELFNOTE_SUSPEND_CANCEL => self.suspend_cancel = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_INIT_P2M => self.init_p2m = Some(numeric(n_type, desc)?),
            XEN_ELFNOTE_MOD_START_PFN => self.mod_start_pfn = Some(numeric(n_type, desc)?),
            _ => {}
        }
        Ok(())
    }

    /// Parses a legacy `__xen_guest` string (without its NUL): comma-separated
    /// `KEY=VALUE` items, keys shorter than 32 and values shorter than 128
    /// characters, numbers C-style (`0x` hex, leading `0` octal, else decimal),
    /// `BSD_SYMTAB` as a bare key, unknown keys ignored (§16).
    pub fn parse_legacy(info: &'a [u8]) -> Result<Self, LoadError> {
        let mut notes = XenNotes::empty(NotesSource::LegacyGuestInfo);
        let mut hypercall_page_number = None;
        for item in info.split(|&b| b == b',') {
            if item.is_empty() {
                continue;
            }
            let (key, value) = match item.iter().position(|&b| b == b'=') {
                Some(eq) => (&item[..eq], &item[eq + 1..]),
                None => (item, &item[item.len()..]),
            };
            if key.len() >= 32 || value.len() >= 128 {
                return Err(LoadError::LegacyItemTooLong);
            }
            let string = NoteStr::new(value);
            let number = || {
                parse_c_number(value).ok_or(LoadError::BadLegacyNumber {
                    key: ShortName::new(key),
                })
            };
            match key {
                b"GUEST_OS" => notes.guest_os = Some(string),
                b"GUEST_VER" => notes.guest_version = Some(string),
                b"XEN_VER" => notes.xen_version = Some(string),
                b"LOADER" => notes.loader = Some(string),
                b"VIRT_BASE" => notes.virt_base = Some(number()?),
                b"ELF_PADDR_OFFSET" => notes.paddr_offset = Some(number()?),
                b"VIRT_ENTRY" => notes.entry = Some(number()?),
                b"HYPERCALL_PAGE" => hypercall_page_number = Some(number()?),
                b"FEATURES" => notes.features = Some(string),
                b"PAE" => notes.pae = Some(string),
                b"BSD_SYMTAB" => notes.bsd_symtab = true,
                _ => {}
            }
        }
        if let Some(page) = hypercall_page_number {
            let va = page
                .checked_mul(u64::from(PAGE_SIZE))
                .and_then(|offset| offset.checked_add(notes.virt_base.unwrap_or(0)))
                .ok_or(LoadError::NoteValueTooLarge {
                    note: XEN_ELFNOTE_HYPERCALL_PAGE,
                    value: page,
                })?;
            notes.hypercall_page = Some(va);
        }
        Ok(notes)
    }

    /// Interprets the PAE declaration (§16). Notes: `"yes"` = extended-cr3, anything
    /// containing `"bimodal"` = bimodal, `"no"` or none = not PAE. Legacy: `yes` = PAE
    /// with the L3 below 4 GiB, `yes[extended-cr3]`, `bimodal`, `no` or none = not PAE.
    pub fn pae_mode(&self) -> Result<PaeMode, LoadError> {
        let Some(declared) = self.pae else {
            return Err(LoadError::NotPae);
        };
        let value = declared.as_bytes();
        let legacy = self.source == NotesSource::LegacyGuestInfo;
        match value {
            b"no" => Err(LoadError::NotPae),
            b"yes" if legacy => Ok(PaeMode::Yes),
            b"yes" => Ok(PaeMode::ExtendedCr3),
            b"yes[extended-cr3]" if legacy => Ok(PaeMode::ExtendedCr3),
            b"bimodal" => Ok(PaeMode::Bimodal),
            _ if !legacy && contains(value, b"bimodal") => Ok(PaeMode::Bimodal),
            _ => Err(LoadError::UnknownPaeMode(ShortName::new(value))),
        }
    }

    /// The `L1_MFN_VALID` mask/value pairs (8-byte little-endian numbers each; a
    /// trailing partial pair is ignored).
    pub fn l1_mfn_valid_pairs(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.l1_mfn_valid
            .unwrap_or(&[])
            .chunks_exact(16)
            .map(|pair| (le_u64(&pair[..8]), le_u64(&pair[8..])))
    }
}

/// A numeric note's value: its 4- or 8-byte little-endian desc.
fn numeric(note: u32, desc: &[u8]) -> Result<u64, LoadError> {
    match desc.len() {
        4 | 8 => Ok(le_u64(desc)),
        descsz => Err(LoadError::BadNoteSize { note, descsz }),
    }
}

/// Little-endian value of up to 8 bytes.
fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A C-style unsigned number (`strtoull(s, NULL, 0)` syntax): `0x`/`0X` hex, a
/// leading `0` octal, else decimal; the whole value must be the number.
pub fn parse_c_number(s: &[u8]) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = s.strip_prefix(b"0x").or_else(|| s.strip_prefix(b"0X"))
    {
        (hex, 16)
    } else if s.len() > 1 && s[0] == b'0' {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        let digit = (b as char).to_digit(radix)?;
        value = value
            .checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))?;
    }
    Some(value)
}
