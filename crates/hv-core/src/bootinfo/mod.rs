//! Boot information handed over by a multiboot1 or multiboot2 loader, parsed into one
//! [`BootInfo`] without a heap.
//!
//! The loader leaves its information block at a physical address; every byte of it
//! (and, for multiboot1, of the strings and tables it points at) is read through
//! [`PhysRead`], which the kernel implements with temporary mappings and the host
//! tests implement with a fake memory. Nothing here dereferences a pointer.
//!
//! Policies, decided once for both protocols:
//! - **Strings** (command line, boot loader name, module strings) are copied into
//!   fixed-capacity strings. One longer than its capacity, one without a NUL inside
//!   its multiboot2 tag, or one that is not UTF-8 is an error naming the string: a
//!   truncated command line would silently change what boots.
//! - **Capacity** ([`MAX_MODULES`], [`MAX_MEMORY_REGIONS`]) is never exceeded by
//!   dropping entries: one entry too many is an error.
//! - **Memory map** entries are kept in the loader's order, overlaps and all, except
//!   that zero-length entries are skipped. [`BootInfo::available_ranges`] gives the
//!   sorted, disjoint usable RAM. Without a memory map (or with an empty one), the
//!   basic `mem_lower`/`mem_upper` values are turned into two regions (conventional
//!   memory from 0 and extended memory from 1 MiB); without either it is an error.
//! - A **module** must not end before it starts; `end` is exclusive (both GRUB and
//!   QEMU store start + size).

use core::fmt;

use heapless::{String, Vec};

mod mb1;
mod mb2;
#[cfg(test)]
mod tests;

/// EAX at the kernel entry when a multiboot1 loader booted us.
pub const MULTIBOOT1_MAGIC: u32 = 0x2BAD_B002;
/// EAX at the kernel entry when a multiboot2 loader booted us.
pub const MULTIBOOT2_MAGIC: u32 = 0x36D7_6289;

/// Most boot modules [`BootInfo`] holds; one more is [`BootInfoError::TooManyModules`].
pub const MAX_MODULES: usize = 16;
/// Most memory map entries [`BootInfo`] holds.
pub const MAX_MEMORY_REGIONS: usize = 128;
/// Capacity of [`BootInfo::cmdline`] in bytes, NUL excluded.
pub const CMDLINE_CAPACITY: usize = 1024;
/// Capacity of [`BootInfo::loader_name`] in bytes, NUL excluded.
pub const LOADER_NAME_CAPACITY: usize = 64;
/// Capacity of [`Module::string`] in bytes, NUL excluded.
pub const MODULE_STRING_CAPACITY: usize = 256;
/// Largest multiboot2 information block accepted (`total_size`).
pub const MB2_MAX_TOTAL_SIZE: u32 = 64 * 1024;
/// Largest multiboot1 memory map accepted (`mmap_length`).
pub const MB1_MAX_MMAP_LENGTH: u32 = 64 * 1024;
/// Capacity of [`BootInfo::structure_ranges`]: the multiboot1 command line, boot
/// loader name, module table and memory map, plus one string per module.
pub const MAX_STRUCTURE_RANGES: usize = 4 + MAX_MODULES;

/// A physical address range `[start, end)`.
pub type PhysRange = (u64, u64);

/// Failure to read physical memory through [`PhysRead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysReadError {
    /// First byte of the failed read.
    pub paddr: u64,
    /// Length of the failed read.
    pub len: usize,
}

impl fmt::Display for PhysReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {} bytes at {:#x}", self.len, self.paddr)
    }
}

/// Read access to physical memory.
///
/// The parser never reads across a 4 KiB page boundary in one call, so an
/// implementation may map one frame per call.
pub trait PhysRead {
    /// Fills `buf` with the bytes at `[paddr, paddr + buf.len())`.
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError>;
}

/// Which protocol handed the information over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Multiboot1,
    Multiboot2,
}

/// What a memory map entry describes (BIOS E820 types, shared by both protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Type 1: usable RAM.
    Available,
    /// Type 2.
    Reserved,
    /// Type 3: ACPI tables, usable once read.
    AcpiReclaimable,
    /// Type 4: must be preserved across hibernation.
    AcpiNvs,
    /// Type 5: bad RAM.
    Defective,
    /// Any other type; treat as reserved.
    Other(u32),
}

impl fmt::Display for MemoryKind {
    /// The words Xen uses when it prints the E820 map.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Available => f.write_str("usable"),
            Self::Reserved => f.write_str("reserved"),
            Self::AcpiReclaimable => f.write_str("ACPI data"),
            Self::AcpiNvs => f.write_str("ACPI NVS"),
            Self::Defective => f.write_str("unusable"),
            Self::Other(t) => write!(f, "type {t}"),
        }
    }
}

impl MemoryKind {
    /// The E820 type number of this kind.
    pub fn e820_type(self) -> u32 {
        match self {
            Self::Available => 1,
            Self::Reserved => 2,
            Self::AcpiReclaimable => 3,
            Self::AcpiNvs => 4,
            Self::Defective => 5,
            Self::Other(t) => t,
        }
    }

    /// The kind for a raw multiboot/E820 type number.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Available,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Defective,
            other => Self::Other(other),
        }
    }
}

/// One memory map entry, `[base, base + len)`; `base + len` never overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte (saturating, for hand-built regions).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

/// A boot module: the image is `[start, end)` in physical memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
    /// The rest of the `module`/`module2` line (what the loader passed).
    pub string: String<MODULE_STRING_CAPACITY>,
}

/// Everything Oxen needs from the boot loader, whichever protocol it spoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    pub loader: Loader,
    /// Empty if the loader gave none.
    pub loader_name: String<LOADER_NAME_CAPACITY>,
    /// Empty if the loader gave none. May start with the kernel's path, depending on
    /// the loader.
    pub cmdline: String<CMDLINE_CAPACITY>,
    /// In the loader's order: the first is dom0's kernel, the second its initrd.
    pub modules: Vec<Module, MAX_MODULES>,
    /// In the loader's order; may overlap. See [`BootInfo::available_ranges`].
    pub memory_map: Vec<MemoryRegion, MAX_MEMORY_REGIONS>,
    /// True if `memory_map` was made from `mem_lower_kib`/`mem_upper_kib`.
    pub memory_map_synthesized: bool,
    /// KiB of conventional memory from address 0, if the loader said.
    pub mem_lower_kib: Option<u32>,
    /// KiB of extended memory from 1 MiB, if the loader said.
    pub mem_upper_kib: Option<u32>,
    /// The information block itself.
    pub info_range: PhysRange,
    /// Tables and strings outside the block that it points at (multiboot1 only;
    /// multiboot2 keeps everything inside `info_range`).
    pub structure_ranges: Vec<PhysRange, MAX_STRUCTURE_RANGES>,
}

/// Why the boot information was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// EAX held neither multiboot magic.
    BadMagic(u32),
    /// Physical memory holding `what` could not be read.
    PhysRead {
        what: &'static str,
        err: PhysReadError,
    },
    /// Neither a (non-empty) memory map nor `mem_lower`/`mem_upper`.
    NoMemoryInfo,
    /// More modules than [`MAX_MODULES`].
    TooManyModules,
    /// More non-empty memory map entries than [`MAX_MEMORY_REGIONS`].
    TooManyMemoryRegions,
    /// Module `index` (from 0) ends before it starts.
    ModuleEndBeforeStart { index: usize, start: u64, end: u64 },
    /// Memory map entry `index` (from 0) wraps past 2^64.
    MemoryRegionOverflow { index: usize, base: u64, len: u64 },
    /// No NUL within `capacity` bytes.
    StringTooLong { what: &'static str, capacity: usize },
    /// No NUL before the end of the multiboot2 tag.
    UnterminatedString { what: &'static str },
    /// Not valid UTF-8.
    StringNotUtf8 { what: &'static str },
    /// Multiboot1 `mmap_length` above [`MB1_MAX_MMAP_LENGTH`].
    Mb1MmapTooLarge { length: u32 },
    /// A multiboot1 memory map entry whose `size` cannot hold base, length and type.
    Mb1MmapEntryTooSmall { offset: u32, size: u32 },
    /// A multiboot1 memory map entry runs past `mmap_length`.
    Mb1MmapTruncated { offset: u32, length: u32 },
    /// The multiboot2 block is not 8-byte aligned.
    Mb2Misaligned { paddr: u32 },
    /// `total_size` cannot even hold the header and an end tag.
    Mb2TotalSizeTooSmall { total_size: u32 },
    /// `total_size` above [`MB2_MAX_TOTAL_SIZE`].
    Mb2TotalSizeTooLarge { total_size: u32 },
    /// A tag whose `size` is below its 8-byte header.
    Mb2TagTooSmall { offset: u32, size: u32 },
    /// A tag running past `total_size`.
    Mb2TagOverflow {
        offset: u32,
        tag_type: u32,
        size: u32,
        total_size: u32,
    },
    /// A tag too small for its fixed fields.
    Mb2TagTooShort { tag_type: u32, size: u32 },
    /// The end tag's size is not 8.
    Mb2BadEndTag { size: u32 },
    /// The tags ran out before an end tag.
    Mb2MissingEndTag,
    /// A tag that may appear once appeared again.
    Mb2DuplicateTag { tag_type: u32 },
    /// Memory map `entry_size` below 24 or not a multiple of 8.
    Mb2BadMmapEntrySize { entry_size: u32 },
    /// Memory map tag not a whole number of entries.
    Mb2MmapTrailingBytes { size: u32, entry_size: u32 },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BootInfoError as E;
        match *self {
            E::BadMagic(m) => write!(
                f,
                "bad multiboot magic {m:#010x} (want {MULTIBOOT1_MAGIC:#010x} or {MULTIBOOT2_MAGIC:#010x})"
            ),
            E::PhysRead { what, err } => write!(f, "reading the {what}: {err}"),
            E::NoMemoryInfo => f.write_str("no memory map and no mem_lower/mem_upper"),
            E::TooManyModules => write!(f, "more than {MAX_MODULES} boot modules"),
            E::TooManyMemoryRegions => {
                write!(f, "more than {MAX_MEMORY_REGIONS} memory map entries")
            }
            E::ModuleEndBeforeStart { index, start, end } => write!(
                f,
                "module {index} ends ({end:#x}) before it starts ({start:#x})"
            ),
            E::MemoryRegionOverflow { index, base, len } => write!(
                f,
                "memory map entry {index} (base {base:#x}, length {len:#x}) wraps around"
            ),
            E::StringTooLong { what, capacity } => {
                write!(f, "the {what} is longer than {capacity} bytes")
            }
            E::UnterminatedString { what } => {
                write!(f, "the {what} has no NUL terminator inside its tag")
            }
            E::StringNotUtf8 { what } => write!(f, "the {what} is not UTF-8"),
            E::Mb1MmapTooLarge { length } => write!(
                f,
                "multiboot1 mmap_length {length} above {MB1_MAX_MMAP_LENGTH}"
            ),
            E::Mb1MmapEntryTooSmall { offset, size } => write!(
                f,
                "multiboot1 memory map entry at offset {offset} has size {size} (< 20)"
            ),
            E::Mb1MmapTruncated { offset, length } => write!(
                f,
                "multiboot1 memory map entry at offset {offset} runs past mmap_length {length}"
            ),
            E::Mb2Misaligned { paddr } => {
                write!(f, "multiboot2 info at {paddr:#x} is not 8-byte aligned")
            }
            E::Mb2TotalSizeTooSmall { total_size } => {
                write!(f, "multiboot2 total_size {total_size} too small (< 16)")
            }
            E::Mb2TotalSizeTooLarge { total_size } => write!(
                f,
                "multiboot2 total_size {total_size} too large (> {MB2_MAX_TOTAL_SIZE})"
            ),
            E::Mb2TagTooSmall { offset, size } => {
                write!(f, "multiboot2 tag at offset {offset} has size {size} (< 8)")
            }
            E::Mb2TagOverflow {
                offset,
                tag_type,
                size,
                total_size,
            } => write!(
                f,
                "multiboot2 tag type {tag_type} at offset {offset} with size {size} overflows total_size {total_size}"
            ),
            E::Mb2TagTooShort { tag_type, size } => write!(
                f,
                "multiboot2 tag type {tag_type} too short for its fields (size {size})"
            ),
            E::Mb2BadEndTag { size } => write!(f, "multiboot2 end tag has size {size} (want 8)"),
            E::Mb2MissingEndTag => f.write_str("multiboot2 info has no end tag"),
            E::Mb2DuplicateTag { tag_type } => {
                write!(f, "multiboot2 tag type {tag_type} appears twice")
            }
            E::Mb2BadMmapEntrySize { entry_size } => write!(
                f,
                "multiboot2 memory map entry_size {entry_size} (want a multiple of 8, >= 24)"
            ),
            E::Mb2MmapTrailingBytes { size, entry_size } => write!(
                f,
                "multiboot2 memory map tag size {size} is not 16 + n * {entry_size}"
            ),
        }
    }
}

impl core::error::Error for BootInfoError {}

impl BootInfo {
    /// Parses the information a multiboot loader left at `info_paddr`, given the
    /// `magic` it left in EAX.
    pub fn from_multiboot(
        magic: u32,
        info_paddr: u32,
        mem: &impl PhysRead,
    ) -> Result<BootInfo, BootInfoError> {
        let mut info = match magic {
            MULTIBOOT1_MAGIC => mb1::parse(info_paddr, mem)?,
            MULTIBOOT2_MAGIC => mb2::parse(info_paddr, mem)?,
            other => return Err(BootInfoError::BadMagic(other)),
        };
        info.fall_back_to_meminfo()?;
        Ok(info)
    }

    fn empty(loader: Loader, info_range: PhysRange) -> Self {
        BootInfo {
            loader,
            loader_name: String::new(),
            cmdline: String::new(),
            modules: Vec::new(),
            memory_map: Vec::new(),
            memory_map_synthesized: false,
            mem_lower_kib: None,
            mem_upper_kib: None,
            info_range,
            structure_ranges: Vec::new(),
        }
    }

    /// Records a table or string the information block points at.
    fn note_structure(&mut self, start: u64, len: u64) {
        // Cannot fail: multiboot1 notes at most four tables and strings plus one
        // string per module, and modules are capped at MAX_MODULES before that.
        let _ = self.structure_ranges.push((start, start + len));
    }

    fn push_module(
        &mut self,
        start: u64,
        end: u64,
        string: String<MODULE_STRING_CAPACITY>,
    ) -> Result<(), BootInfoError> {
        let index = self.modules.len();
        if end < start {
            return Err(BootInfoError::ModuleEndBeforeStart { index, start, end });
        }
        self.modules
            .push(Module { start, end, string })
            .map_err(|_| BootInfoError::TooManyModules)
    }

    /// Adds raw memory map entry number `index`; skips it if empty.
    fn push_region(
        &mut self,
        index: usize,
        base: u64,
        len: u64,
        raw_type: u32,
    ) -> Result<(), BootInfoError> {
        if base.checked_add(len).is_none() {
            return Err(BootInfoError::MemoryRegionOverflow { index, base, len });
        }
        if len == 0 {
            return Ok(());
        }
        let region = MemoryRegion {
            base,
            len,
            kind: MemoryKind::from_raw(raw_type),
        };
        self.memory_map
            .push(region)
            .map_err(|_| BootInfoError::TooManyMemoryRegions)
    }

    fn fall_back_to_meminfo(&mut self) -> Result<(), BootInfoError> {
        if !self.memory_map.is_empty() {
            return Ok(());
        }
        let (Some(lower), Some(upper)) = (self.mem_lower_kib, self.mem_upper_kib) else {
            return Err(BootInfoError::NoMemoryInfo);
        };
        self.push_region(0, 0, u64::from(lower) * 1024, 1)?;
        self.push_region(1, 1 << 20, u64::from(upper) * 1024, 1)?;
        if self.memory_map.is_empty() {
            return Err(BootInfoError::NoMemoryInfo);
        }
        self.memory_map_synthesized = true;
        Ok(())
    }

    /// Usable RAM: the union of `Available` entries minus the union of every other
    /// entry (a range reported both ways is not usable), sorted and disjoint.
    /// Modules and the boot information still live in it: see
    /// [`BootInfo::reserved_ranges`].
    pub fn available_ranges(&self) -> Vec<PhysRange, MAX_MEMORY_REGIONS> {
        let is_available = |r: &&MemoryRegion| r.kind == MemoryKind::Available;
        let available = merged(self.memory_map.iter().filter(is_available));
        let busy = merged(self.memory_map.iter().filter(|r| !is_available(r)));
        let mut out = Vec::new();
        // Cannot overflow: every piece pushed either ends at a busy range's start or
        // is the last piece of an available range, so there are at most
        // available.len() + busy.len() <= memory_map.len() pieces.
        for &(mut start, end) in &available {
            for &(busy_start, busy_end) in &busy {
                if busy_end <= start {
                    continue;
                }
                if busy_start >= end {
                    break;
                }
                if busy_start > start {
                    let _ = out.push((start, busy_start));
                }
                start = busy_end;
                if start >= end {
                    break;
                }
            }
            if start < end {
                let _ = out.push((start, end));
            }
        }
        out
    }

    /// Bytes of usable RAM, as [`BootInfo::available_ranges`]: overlapping entries
    /// count once, and nothing also reported as non-available counts.
    pub fn total_available(&self) -> u64 {
        self.available_ranges().iter().map(|&(s, e)| e - s).sum()
    }

    /// Physical ranges `[start, end)` the frame allocator must not hand out while the
    /// boot information or modules are still needed: the information block, each
    /// module, and (multiboot1) the tables and strings it points at. Empty ranges
    /// are left out.
    pub fn reserved_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        core::iter::once(self.info_range)
            .chain(self.modules.iter().map(|m| (m.start, m.end)))
            .chain(self.structure_ranges.iter().copied())
            .filter(|&(start, end)| start < end)
    }
}

/// The sorted union of `regions`, touching ranges joined, empty ones dropped.
fn merged<'a>(
    regions: impl Iterator<Item = &'a MemoryRegion>,
) -> Vec<PhysRange, MAX_MEMORY_REGIONS> {
    let mut ranges: Vec<PhysRange, MAX_MEMORY_REGIONS> = Vec::new();
    for r in regions.filter(|r| r.len > 0) {
        // Cannot fail: `regions` comes from a memory map of the same capacity.
        let _ = ranges.push((r.base, r.end()));
    }
    ranges.sort_unstable();
    let mut out: Vec<PhysRange, MAX_MEMORY_REGIONS> = Vec::new();
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            // Cannot fail: no more ranges out than in.
            _ => {
                let _ = out.push((start, end));
            }
        }
    }
    out
}

use crate::addr::PAGE_SIZE;

/// Reads `K` bytes at `paddr`, never crossing a page in one call.
fn read_array<const K: usize>(
    mem: &impl PhysRead,
    paddr: u64,
    what: &'static str,
) -> Result<[u8; K], BootInfoError> {
    let mut buf = [0u8; K];
    let mut done = 0;
    while done < K {
        let addr = paddr + done as u64;
        let n = (K - done).min(to_page_end(addr));
        mem.read_phys(addr, &mut buf[done..done + n])
            .map_err(|err| BootInfoError::PhysRead { what, err })?;
        done += n;
    }
    Ok(buf)
}

fn to_page_end(addr: u64) -> usize {
    (PAGE_SIZE - addr % PAGE_SIZE) as usize
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(b)
}

/// Reads the NUL-terminated string at `paddr` into a string of capacity `N`.
///
/// With `limit`, the NUL must come within `limit` bytes (a multiboot2 tag's
/// payload). Returns the string and the bytes it occupies, NUL included. Reads
/// ahead in small chunks, never past the page holding the next byte wanted.
fn read_cstr<const N: usize>(
    mem: &impl PhysRead,
    paddr: u64,
    limit: Option<u64>,
    what: &'static str,
) -> Result<(String<N>, u64), BootInfoError> {
    const CHUNK: usize = 64;
    // A string of N bytes and its NUL.
    let scan = limit.map_or(N as u64 + 1, |l| l.min(N as u64 + 1));
    let mut bytes: Vec<u8, N> = Vec::new();
    let mut chunk = [0u8; CHUNK];
    let mut pos = 0u64;
    while pos < scan {
        let addr = paddr + pos;
        let n = CHUNK.min(to_page_end(addr)).min((scan - pos) as usize);
        mem.read_phys(addr, &mut chunk[..n])
            .map_err(|err| BootInfoError::PhysRead { what, err })?;
        for &b in &chunk[..n] {
            if b == 0 {
                let s =
                    String::from_utf8(bytes).map_err(|_| BootInfoError::StringNotUtf8 { what })?;
                return Ok((s, pos + 1));
            }
            bytes
                .push(b)
                .map_err(|_| BootInfoError::StringTooLong { what, capacity: N })?;
            pos += 1;
        }
    }
    // Only reachable when `limit` stopped the scan before N + 1 bytes.
    Err(BootInfoError::UnterminatedString { what })
}
