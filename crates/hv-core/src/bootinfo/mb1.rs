//! Multiboot1: a fixed information structure whose `flags` say which fields are
//! valid, pointing at strings and tables elsewhere in physical memory.

use super::{
    BootInfo, BootInfoError, Loader, MAX_MODULES, MB1_MAX_MMAP_LENGTH, read_array, read_cstr,
    u32_at, u64_at,
};

const FLAG_MEM: u32 = 1 << 0;
const FLAG_CMDLINE: u32 = 1 << 2;
const FLAG_MODS: u32 = 1 << 3;
const FLAG_MMAP: u32 = 1 << 6;
const FLAG_LOADER_NAME: u32 = 1 << 9;
const FLAG_VBE: u32 = 1 << 11;
const FLAG_FRAMEBUFFER: u32 = 1 << 12;

const OFF_FLAGS: usize = 0;
const OFF_MEM_LOWER: usize = 4;
const OFF_MEM_UPPER: usize = 8;
const OFF_CMDLINE: usize = 16;
const OFF_MODS_COUNT: usize = 20;
const OFF_MODS_ADDR: usize = 24;
const OFF_MMAP_LENGTH: usize = 44;
const OFF_MMAP_ADDR: usize = 48;
const OFF_LOADER_NAME: usize = 64;

/// Bytes read: every field up to and including `apm_table`.
const INFO_LEN: usize = 72;
/// Extent of the structure when the VBE or framebuffer fields are valid.
const INFO_LEN_VBE: u64 = 88;
const INFO_LEN_FRAMEBUFFER: u64 = 116;

const MODULE_ENTRY_LEN: u64 = 16;
/// `size` (not counting itself) must cover base_addr u64, length u64, type u32.
const MMAP_ENTRY_MIN_SIZE: u32 = 20;

pub(super) fn parse(
    info_paddr: u32,
    mem: &impl super::PhysRead,
) -> Result<BootInfo, BootInfoError> {
    let base = u64::from(info_paddr);
    let raw: [u8; INFO_LEN] = read_array(mem, base, "multiboot1 info")?;
    let field = |offset| u32_at(&raw, offset);
    let flags = field(OFF_FLAGS);
    let len = if flags & FLAG_FRAMEBUFFER != 0 {
        INFO_LEN_FRAMEBUFFER
    } else if flags & FLAG_VBE != 0 {
        INFO_LEN_VBE
    } else {
        INFO_LEN as u64
    };
    let mut info = BootInfo::empty(Loader::Multiboot1, (base, base + len));

    if flags & FLAG_MEM != 0 {
        info.mem_lower_kib = Some(field(OFF_MEM_LOWER));
        info.mem_upper_kib = Some(field(OFF_MEM_UPPER));
    }
    if flags & FLAG_CMDLINE != 0 {
        let at = u64::from(field(OFF_CMDLINE));
        let (s, n) = read_cstr(mem, at, None, "command line")?;
        info.cmdline = s;
        info.note_structure(at, n);
    }
    if flags & FLAG_LOADER_NAME != 0 {
        let at = u64::from(field(OFF_LOADER_NAME));
        let (s, n) = read_cstr(mem, at, None, "boot loader name")?;
        info.loader_name = s;
        info.note_structure(at, n);
    }
    if flags & FLAG_MODS != 0 {
        parse_modules(&mut info, mem, field(OFF_MODS_COUNT), field(OFF_MODS_ADDR))?;
    }
    if flags & FLAG_MMAP != 0 {
        parse_mmap(&mut info, mem, field(OFF_MMAP_LENGTH), field(OFF_MMAP_ADDR))?;
    }
    Ok(info)
}

fn parse_modules(
    info: &mut BootInfo,
    mem: &impl super::PhysRead,
    count: u32,
    addr: u32,
) -> Result<(), BootInfoError> {
    if count as usize > MAX_MODULES {
        return Err(BootInfoError::TooManyModules);
    }
    let table = u64::from(addr);
    if count > 0 {
        info.note_structure(table, u64::from(count) * MODULE_ENTRY_LEN);
    }
    for i in 0..u64::from(count) {
        let entry: [u8; 16] = read_array(mem, table + i * MODULE_ENTRY_LEN, "module table")?;
        let start = u64::from(u32_at(&entry, 0));
        let end = u64::from(u32_at(&entry, 4));
        let string_at = u64::from(u32_at(&entry, 8));
        // A null pointer is read as "no string": no loader puts one at address 0.
        let string = if string_at == 0 {
            heapless::String::new()
        } else {
            let (s, n) = read_cstr(mem, string_at, None, "module string")?;
            info.note_structure(string_at, n);
            s
        };
        info.push_module(start, end, string)?;
    }
    Ok(())
}

fn parse_mmap(
    info: &mut BootInfo,
    mem: &impl super::PhysRead,
    length: u32,
    addr: u32,
) -> Result<(), BootInfoError> {
    if length > MB1_MAX_MMAP_LENGTH {
        return Err(BootInfoError::Mb1MmapTooLarge { length });
    }
    let table = u64::from(addr);
    if length > 0 {
        info.note_structure(table, u64::from(length));
    }
    let mut offset = 0u32;
    let mut index = 0usize;
    while offset < length {
        let truncated = BootInfoError::Mb1MmapTruncated { offset, length };
        if length - offset < 4 {
            return Err(truncated);
        }
        let at = table + u64::from(offset);
        let size = u32::from_le_bytes(read_array(mem, at, "memory map")?);
        if size < MMAP_ENTRY_MIN_SIZE {
            return Err(BootInfoError::Mb1MmapEntryTooSmall { offset, size });
        }
        if size > length - offset - 4 {
            return Err(truncated);
        }
        let entry: [u8; 20] = read_array(mem, at + 4, "memory map")?;
        info.push_region(
            index,
            u64_at(&entry, 0),
            u64_at(&entry, 8),
            u32_at(&entry, 16),
        )?;
        // Cannot overflow: offset + 4 + size <= length.
        offset += 4 + size;
        index += 1;
    }
    Ok(())
}
