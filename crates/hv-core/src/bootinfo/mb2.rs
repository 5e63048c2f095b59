//! Multiboot2: one 8-aligned block, `total_size` and `reserved` then 8-aligned tags
//! `{type, size}` up to an end tag. Everything lives inside the block.
//!
//! Parsed tag by tag through [`super::PhysRead`] rather than with the `multiboot2`
//! crate, which wants the block contiguous in our address space (an `unsafe` load
//! from a pointer, or a copy into a buffer of up to 64 KiB that early boot does
//! not have to spare) and would leave multiboot1 with a second code path anyway.

use super::{
    BootInfo, BootInfoError, Loader, MB2_MAX_TOTAL_SIZE, PhysRead, read_array, read_cstr, u32_at,
    u64_at,
};

const TAG_END: u32 = 0;
const TAG_CMDLINE: u32 = 1;
const TAG_LOADER_NAME: u32 = 2;
const TAG_MODULE: u32 = 3;
const TAG_BASIC_MEMINFO: u32 = 4;
const TAG_MMAP: u32 = 6;

const HEADER_LEN: u32 = 8;
const TAG_HEADER_LEN: u32 = 8;
/// Header plus end tag.
const MIN_TOTAL_SIZE: u32 = HEADER_LEN + TAG_HEADER_LEN;
/// Module tag: header, mod_start, mod_end, then the string.
const MODULE_FIXED_LEN: u32 = 16;
/// Basic meminfo tag: header, mem_lower, mem_upper.
const MEMINFO_LEN: u32 = 16;
/// Memory map tag: header, entry_size, entry_version, then the entries.
const MMAP_FIXED_LEN: u32 = 16;
/// base u64, length u64, type u32, reserved u32.
const MMAP_ENTRY_MIN_SIZE: u32 = 24;

pub(super) fn parse(info_paddr: u32, mem: &impl PhysRead) -> Result<BootInfo, BootInfoError> {
    if !info_paddr.is_multiple_of(8) {
        return Err(BootInfoError::Mb2Misaligned { paddr: info_paddr });
    }
    let base = u64::from(info_paddr);
    let header: [u8; 8] = read_array(mem, base, "multiboot2 info")?;
    let total_size = u32_at(&header, 0);
    if total_size < MIN_TOTAL_SIZE {
        return Err(BootInfoError::Mb2TotalSizeTooSmall { total_size });
    }
    if total_size > MB2_MAX_TOTAL_SIZE {
        return Err(BootInfoError::Mb2TotalSizeTooLarge { total_size });
    }
    let mut info = BootInfo::empty(Loader::Multiboot2, (base, base + u64::from(total_size)));

    let mut seen = Seen::default();
    let mut offset = HEADER_LEN;
    loop {
        // offset <= total_size <= 64 KiB throughout, so u32 arithmetic cannot overflow.
        if total_size - offset < TAG_HEADER_LEN {
            return Err(BootInfoError::Mb2MissingEndTag);
        }
        let at = base + u64::from(offset);
        let tag: [u8; 8] = read_array(mem, at, "multiboot2 tag")?;
        let (tag_type, size) = (u32_at(&tag, 0), u32_at(&tag, 4));
        if size < TAG_HEADER_LEN {
            return Err(BootInfoError::Mb2TagTooSmall { offset, size });
        }
        if size > total_size - offset {
            return Err(BootInfoError::Mb2TagOverflow {
                offset,
                tag_type,
                size,
                total_size,
            });
        }
        if tag_type == TAG_END {
            if size != TAG_HEADER_LEN {
                return Err(BootInfoError::Mb2BadEndTag { size });
            }
            return Ok(info);
        }
        seen.check(tag_type)?;
        parse_tag(&mut info, mem, tag_type, at, size)?;
        offset = (offset + size).next_multiple_of(8);
        if offset > total_size {
            return Err(BootInfoError::Mb2MissingEndTag);
        }
    }
}

/// Tags that may appear at most once.
#[derive(Default)]
struct Seen {
    cmdline: bool,
    loader_name: bool,
    meminfo: bool,
    mmap: bool,
}

impl Seen {
    fn check(&mut self, tag_type: u32) -> Result<(), BootInfoError> {
        let flag = match tag_type {
            TAG_CMDLINE => &mut self.cmdline,
            TAG_LOADER_NAME => &mut self.loader_name,
            TAG_BASIC_MEMINFO => &mut self.meminfo,
            TAG_MMAP => &mut self.mmap,
            _ => return Ok(()),
        };
        if core::mem::replace(flag, true) {
            return Err(BootInfoError::Mb2DuplicateTag { tag_type });
        }
        Ok(())
    }
}

/// One tag of `size` bytes at `at` (already checked to lie within the block).
fn parse_tag(
    info: &mut BootInfo,
    mem: &impl PhysRead,
    tag_type: u32,
    at: u64,
    size: u32,
) -> Result<(), BootInfoError> {
    let too_short = |fixed: u32| {
        if size < fixed {
            Err(BootInfoError::Mb2TagTooShort { tag_type, size })
        } else {
            Ok(())
        }
    };
    let payload = at + u64::from(TAG_HEADER_LEN);
    let payload_len = u64::from(size - TAG_HEADER_LEN);
    match tag_type {
        TAG_CMDLINE => {
            info.cmdline = read_cstr(mem, payload, Some(payload_len), "command line")?.0;
        }
        TAG_LOADER_NAME => {
            info.loader_name = read_cstr(mem, payload, Some(payload_len), "boot loader name")?.0;
        }
        TAG_MODULE => {
            too_short(MODULE_FIXED_LEN)?;
            let fields: [u8; 8] = read_array(mem, payload, "multiboot2 module tag")?;
            let string_len = u64::from(size - MODULE_FIXED_LEN);
            let string_at = at + u64::from(MODULE_FIXED_LEN);
            let (string, _) = read_cstr(mem, string_at, Some(string_len), "module string")?;
            let start = u64::from(u32_at(&fields, 0));
            let end = u64::from(u32_at(&fields, 4));
            info.push_module(start, end, string)?;
        }
        TAG_BASIC_MEMINFO => {
            too_short(MEMINFO_LEN)?;
            let fields: [u8; 8] = read_array(mem, payload, "multiboot2 meminfo tag")?;
            info.mem_lower_kib = Some(u32_at(&fields, 0));
            info.mem_upper_kib = Some(u32_at(&fields, 4));
        }
        TAG_MMAP => {
            too_short(MMAP_FIXED_LEN)?;
            let fields: [u8; 8] = read_array(mem, payload, "multiboot2 memory map")?;
            let entry_size = u32_at(&fields, 0);
            if entry_size < MMAP_ENTRY_MIN_SIZE || !entry_size.is_multiple_of(8) {
                return Err(BootInfoError::Mb2BadMmapEntrySize { entry_size });
            }
            let entries_len = size - MMAP_FIXED_LEN;
            if !entries_len.is_multiple_of(entry_size) {
                return Err(BootInfoError::Mb2MmapTrailingBytes { size, entry_size });
            }
            let first = at + u64::from(MMAP_FIXED_LEN);
            for index in 0..entries_len / entry_size {
                let entry_at = first + u64::from(index * entry_size);
                let entry: [u8; 20] = read_array(mem, entry_at, "multiboot2 memory map")?;
                let (base, len) = (u64_at(&entry, 0), u64_at(&entry, 8));
                info.push_region(index as usize, base, len, u32_at(&entry, 16))?;
            }
        }
        // Framebuffer, ELF sections, APM, EFI, ACPI, ...: not needed by Oxen.
        _ => {}
    }
    Ok(())
}
