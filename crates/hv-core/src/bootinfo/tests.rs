//! Host tests: fixtures built byte by byte (little-endian) in a fake physical memory.

use std::collections::BTreeMap;
use std::string::ToString;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------
// Fake physical memory and fixture builders
// ---------------------------------------------------------------------------

/// Physical memory made of 4 KiB frames; reading an absent frame fails. It also
/// holds the parser to its promise of never reading across a page in one call.
#[derive(Default, Clone)]
pub(crate) struct FakeMem {
    pages: BTreeMap<u64, Box<[u8; 4096]>>,
}

impl FakeMem {
    /// Writes `bytes` at `paddr`, creating zeroed frames as needed.
    pub(crate) fn write(&mut self, paddr: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let a = paddr + i as u64;
            let page = self
                .pages
                .entry(a / 4096)
                .or_insert_with(|| Box::new([0; 4096]));
            page[(a % 4096) as usize] = b;
        }
    }

    /// Removes the frame holding `paddr`.
    pub(crate) fn unmap(&mut self, paddr: u64) {
        self.pages.remove(&(paddr / 4096));
    }
}

impl PhysRead for FakeMem {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<(), PhysReadError> {
        let err = PhysReadError {
            paddr,
            len: buf.len(),
        };
        if buf.is_empty() {
            return Ok(());
        }
        let last = paddr.checked_add(buf.len() as u64 - 1).ok_or(err)?;
        assert_eq!(paddr / 4096, last / 4096, "read crosses a page: {err:?}");
        let page = self.pages.get(&(paddr / 4096)).ok_or(err)?;
        let off = (paddr % 4096) as usize;
        buf.copy_from_slice(&page[off..off + buf.len()]);
        Ok(())
    }
}

/// A little-endian byte builder.
#[derive(Default, Clone)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        for i in 0..4 {
            self.u8((v >> (8 * i)) as u8);
        }
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.u32(v as u32).u32((v >> 32) as u32)
    }
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.u8(b);
        }
        self
    }
    /// The string and its NUL.
    fn cstr(&mut self, s: &str) -> &mut Self {
        self.raw(s.as_bytes()).u8(0)
    }
    fn zeros(&mut self, n: usize) -> &mut Self {
        for _ in 0..n {
            self.u8(0);
        }
        self
    }
    fn align(&mut self, to: usize) -> &mut Self {
        while !self.0.len().is_multiple_of(to) {
            self.u8(0);
        }
        self
    }
    fn set_u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

fn cstr(s: &str) -> Vec<u8> {
    Bytes::default().cstr(s).0.clone()
}

// --- multiboot1 -------------------------------------------------------------

const MB1_INFO: u64 = 0x9500;
const MB1_CMDLINE: u64 = 0x9600;
const MB1_LOADER_NAME: u64 = 0x9700;
const MB1_MODS: u64 = 0x9800;
const MB1_MOD_STRINGS: [u64; 2] = [0x9900, 0x9940];
const MB1_MMAP: u64 = 0x9a00;

const QEMU_CMDLINE: &str = "/boot/oxen.elf dom0_mem=256M loglvl=all com1=115200,8n1 console=com1";
const DOM0_STRING: &str = "/boot/oxen-dom0.elf console=hvc0";
const INITRD_STRING: &str = "/boot/oxen-dom0-initrd.cpio";

/// (base, length, type) of a QEMU-like 128 MiB PC.
const PC_MMAP: [(u64, u64, u32); 6] = [
    (0x0, 0x9fc00, 1),
    (0x9fc00, 0x400, 2),
    (0xf0000, 0x10000, 2),
    (0x10_0000, 0x7ee_0000, 1),
    (0x7fe_0000, 0x2_0000, 2),
    (0xfffc_0000, 0x4_0000, 2),
];
const PC_AVAILABLE: u64 = 0x9fc00 + 0x7ee_0000;

/// The information structure: flags, mem_lower, mem_upper, boot_device, cmdline,
/// mods_count, mods_addr, syms[4], mmap_length, mmap_addr, drives_length,
/// drives_addr, config_table, boot_loader_name, apm_table.
struct Mb1 {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    mods_count: u32,
    mmap_length: u32,
}

impl Mb1 {
    fn info(&self) -> Vec<u8> {
        let mut b = Bytes::default();
        b.u32(self.flags)
            .u32(self.mem_lower)
            .u32(self.mem_upper)
            .u32(0x8000_ffff) // boot_device
            .u32(MB1_CMDLINE as u32)
            .u32(self.mods_count)
            .u32(MB1_MODS as u32)
            .zeros(16) // syms
            .u32(self.mmap_length)
            .u32(MB1_MMAP as u32)
            .u32(0) // drives_length
            .u32(0) // drives_addr
            .u32(0) // config_table
            .u32(MB1_LOADER_NAME as u32)
            .u32(0); // apm_table
        assert_eq!(b.len(), 72);
        b.0
    }
}

fn mb1_module(start: u32, end: u32, string: u64) -> Vec<u8> {
    Bytes::default()
        .u32(start)
        .u32(end)
        .u32(string as u32)
        .u32(0)
        .0
        .clone()
}

fn mb1_mmap(entries: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut b = Bytes::default();
    for &(base, len, ty) in entries {
        b.u32(20).u64(base).u64(len).u32(ty);
    }
    b.0
}

/// Flags QEMU sets: mem, boot_device, cmdline, mods, mmap, boot_loader_name.
const QEMU_FLAGS: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x40 | 0x200;

/// What QEMU's `-kernel oxen.elf -initrd "dom0.elf console=hvc0,initrd.cpio"` leaves.
fn qemu_mb1() -> FakeMem {
    let mmap = mb1_mmap(&PC_MMAP);
    let mut mem = FakeMem::default();
    mem.write(
        MB1_INFO,
        &Mb1 {
            flags: QEMU_FLAGS,
            mem_lower: 639,
            mem_upper: 130_944,
            mods_count: 2,
            mmap_length: mmap.len() as u32,
        }
        .info(),
    );
    mem.write(MB1_CMDLINE, &cstr(QEMU_CMDLINE));
    mem.write(MB1_LOADER_NAME, &cstr("qemu"));
    let mut mods = mb1_module(0x40_0000, 0x42_3456, MB1_MOD_STRINGS[0]);
    mods.extend(mb1_module(0x42_4000, 0x52_4000, MB1_MOD_STRINGS[1]));
    mem.write(MB1_MODS, &mods);
    mem.write(MB1_MOD_STRINGS[0], &cstr(DOM0_STRING));
    mem.write(MB1_MOD_STRINGS[1], &cstr(INITRD_STRING));
    mem.write(MB1_MMAP, &mmap);
    mem
}

fn parse_mb1(mem: &FakeMem) -> Result<BootInfo, BootInfoError> {
    BootInfo::from_multiboot(MULTIBOOT1_MAGIC, MB1_INFO as u32, mem)
}

// --- multiboot2 -------------------------------------------------------------

const MB2_INFO: u64 = 0x1_0000;
const GRUB_CMDLINE: &str = "dom0_mem=256M loglvl=all com1=115200,8n1 console=com1";

/// A multiboot2 block under construction; `tag` pads to 8 as the spec wants.
#[derive(Clone)]
struct Mb2(Bytes);

impl Mb2 {
    fn new() -> Self {
        let mut b = Bytes::default();
        b.u32(0).u32(0); // total_size (patched by `finish`), reserved
        Mb2(b)
    }
    /// A tag with `size` = header + payload.
    fn tag(&mut self, ty: u32, payload: &[u8]) -> &mut Self {
        self.tag_sized(ty, 8 + payload.len() as u32, payload)
    }
    /// A tag with any `size`, for the broken ones.
    fn tag_sized(&mut self, ty: u32, size: u32, payload: &[u8]) -> &mut Self {
        self.0.u32(ty).u32(size).raw(payload).align(8);
        self
    }
    fn cmdline(&mut self, s: &str) -> &mut Self {
        self.tag(1, &cstr(s))
    }
    fn module(&mut self, start: u32, end: u32, s: &str) -> &mut Self {
        let mut p = Bytes::default();
        p.u32(start).u32(end).cstr(s);
        self.tag(3, &p.0)
    }
    fn meminfo(&mut self, lower: u32, upper: u32) -> &mut Self {
        self.tag(4, &Bytes::default().u32(lower).u32(upper).0.clone())
    }
    fn mmap(&mut self, entries: &[(u64, u64, u32)]) -> &mut Self {
        let mut p = Bytes::default();
        p.u32(24).u32(0);
        for &(base, len, ty) in entries {
            p.u64(base).u64(len).u32(ty).u32(0);
        }
        self.tag(6, &p.0)
    }
    fn end(&mut self) -> &mut Self {
        self.tag(0, &[])
    }
    /// Patches `total_size` to the length so far.
    fn finish(&mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0.set_u32(0, len);
        self.0.0.clone()
    }
}

fn grub_mmap() -> [(u64, u64, u32); 7] {
    [
        (0x0, 0x9fc00, 1),
        (0x9fc00, 0x400, 2),
        (0xf0000, 0x10000, 2),
        (0x10_0000, 0x7ee_0000, 1),
        (0x7fe_0000, 0x1_0000, 3),
        (0x7ff_0000, 0x1_0000, 4),
        (0xfffc_0000, 0x4_0000, 2),
    ]
}

/// What GRUB's `multiboot2` + two `module2` lines leave (tags in GRUB's order).
fn grub_mb2() -> Mb2 {
    let mut m = Mb2::new();
    m.cmdline(GRUB_CMDLINE)
        .tag(2, &cstr("GRUB 2.12"))
        .module(0x20_0000, 0x2f_1234, DOM0_STRING)
        .module(0x2f_2000, 0x80_0000, INITRD_STRING)
        .meminfo(639, 130_944)
        .tag(
            5,
            &Bytes::default().u32(0x80).u32(0).u32(0xffff_ffff).0.clone(),
        ) // bootdev: size 20
        .mmap(&grub_mmap())
        .tag(14, &[b'R'; 20]) // old ACPI RSDP copy: size 28, skipped
        .end();
    m
}

fn mem_with(paddr: u64, bytes: &[u8]) -> FakeMem {
    let mut mem = FakeMem::default();
    mem.write(paddr, bytes);
    mem
}

fn parse_mb2(block: &[u8]) -> Result<BootInfo, BootInfoError> {
    BootInfo::from_multiboot(
        MULTIBOOT2_MAGIC,
        MB2_INFO as u32,
        &mem_with(MB2_INFO, block),
    )
}

fn region(base: u64, len: u64, kind: MemoryKind) -> MemoryRegion {
    MemoryRegion { base, len, kind }
}

fn with_map(regions: &[MemoryRegion]) -> BootInfo {
    let mut info = BootInfo::empty(Loader::Multiboot2, (0, 0));
    for r in regions {
        info.memory_map.push(*r).unwrap();
    }
    info
}

// ---------------------------------------------------------------------------
// The helpers themselves
// ---------------------------------------------------------------------------

#[test]
fn fixture_builder_is_little_endian() {
    let mut b = Bytes::default();
    b.u32(MULTIBOOT1_MAGIC)
        .u64(0x0102_0304_0506_0708)
        .cstr("ab")
        .align(8);
    assert_eq!(
        b.0,
        [
            0x02, 0xb0, 0xad, 0x2b, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, b'a', b'b', 0,
            0
        ]
    );
    // A tag's size counts header and payload, not the padding after it.
    let mut m = Mb2::new();
    let block = m.tag(1, &cstr("x")).end().finish();
    assert_eq!(block.len(), 8 + 16 + 8);
    assert_eq!(&block[0..4], &32u32.to_le_bytes());
    assert_eq!(&block[8..16], &[1, 0, 0, 0, 10, 0, 0, 0]);
}

#[test]
fn fake_mem_reads_mapped_frames_only() {
    let mut mem = mem_with(0x1ffe, &[1, 2, 3, 4]);
    let mut buf = [0u8; 2];
    mem.read_phys(0x1ffe, &mut buf).unwrap();
    assert_eq!(buf, [1, 2]);
    mem.read_phys(0x2000, &mut buf).unwrap();
    assert_eq!(buf, [3, 4]);
    mem.unmap(0x2000);
    assert_eq!(
        mem.read_phys(0x2000, &mut buf),
        Err(PhysReadError {
            paddr: 0x2000,
            len: 2
        })
    );
    assert!(mem.read_phys(0x5000, &mut buf).is_err());
}

// ---------------------------------------------------------------------------
// Realistic fixtures
// ---------------------------------------------------------------------------

#[test]
fn mb1_qemu_like() {
    let info = parse_mb1(&qemu_mb1()).unwrap();
    assert_eq!(info.loader, Loader::Multiboot1);
    assert_eq!(info.loader_name, "qemu");
    assert_eq!(info.cmdline, QEMU_CMDLINE);
    assert_eq!(info.mem_lower_kib, Some(639));
    assert_eq!(info.mem_upper_kib, Some(130_944));
    assert!(!info.memory_map_synthesized);

    assert_eq!(info.modules.len(), 2);
    assert_eq!(
        (info.modules[0].start, info.modules[0].end),
        (0x40_0000, 0x42_3456)
    );
    assert_eq!(info.modules[0].string, DOM0_STRING);
    assert_eq!(
        (info.modules[1].start, info.modules[1].end),
        (0x42_4000, 0x52_4000)
    );
    assert_eq!(info.modules[1].string, INITRD_STRING);

    let expected: Vec<_> = PC_MMAP
        .iter()
        .map(|&(b, l, t)| region(b, l, MemoryKind::from_raw(t)))
        .collect();
    assert_eq!(info.memory_map.as_slice(), expected.as_slice());
    assert_eq!(info.total_available(), PC_AVAILABLE);
    assert_eq!(
        info.available_ranges().as_slice(),
        &[(0, 0x9fc00), (0x10_0000, 0x7fe_0000)]
    );

    let reserved: Vec<_> = info.reserved_ranges().collect();
    let cmd_end = MB1_CMDLINE + QEMU_CMDLINE.len() as u64 + 1;
    assert_eq!(
        reserved,
        [
            (MB1_INFO, MB1_INFO + 72),
            (0x40_0000, 0x42_3456),
            (0x42_4000, 0x52_4000),
            (MB1_CMDLINE, cmd_end),
            (MB1_LOADER_NAME, MB1_LOADER_NAME + 5),
            (MB1_MODS, MB1_MODS + 32),
            (
                MB1_MOD_STRINGS[0],
                MB1_MOD_STRINGS[0] + DOM0_STRING.len() as u64 + 1
            ),
            (
                MB1_MOD_STRINGS[1],
                MB1_MOD_STRINGS[1] + INITRD_STRING.len() as u64 + 1
            ),
            (MB1_MMAP, MB1_MMAP + 6 * 24),
        ]
    );
}

#[test]
fn mb1_info_range_follows_vbe_and_framebuffer_flags() {
    for (extra, len) in [(1 << 11, 88), (1 << 12 | 1 << 11, 116)] {
        let mut mem = qemu_mb1();
        mem.write(MB1_INFO, &(QEMU_FLAGS | extra).to_le_bytes());
        let info = parse_mb1(&mem).unwrap();
        assert_eq!(info.info_range, (MB1_INFO, MB1_INFO + len));
    }
}

#[test]
fn mb1_strings_may_straddle_pages() {
    let mut mem = qemu_mb1();
    mem.write(0x9ff0, &cstr(QEMU_CMDLINE));
    mem.write(MB1_INFO + 16, &0x9ff0u32.to_le_bytes());
    assert_eq!(parse_mb1(&mem).unwrap().cmdline, QEMU_CMDLINE);
}

#[test]
fn mb2_grub_like() {
    let block = grub_mb2().finish();
    let info = parse_mb2(&block).unwrap();
    assert_eq!(info.loader, Loader::Multiboot2);
    assert_eq!(info.loader_name, "GRUB 2.12");
    assert_eq!(info.cmdline, GRUB_CMDLINE);
    assert_eq!(info.mem_lower_kib, Some(639));
    assert_eq!(info.mem_upper_kib, Some(130_944));
    assert_eq!(info.modules.len(), 2);
    assert_eq!(
        info.modules[0],
        Module {
            start: 0x20_0000,
            end: 0x2f_1234,
            string: DOM0_STRING.try_into().unwrap()
        }
    );
    assert_eq!(
        (info.modules[1].start, info.modules[1].end),
        (0x2f_2000, 0x80_0000)
    );
    assert_eq!(info.modules[1].string, INITRD_STRING);

    let expected: Vec<_> = grub_mmap()
        .iter()
        .map(|&(b, l, t)| region(b, l, MemoryKind::from_raw(t)))
        .collect();
    assert_eq!(info.memory_map.as_slice(), expected.as_slice());
    assert_eq!(info.memory_map[4].kind, MemoryKind::AcpiReclaimable);
    assert_eq!(info.memory_map[5].kind, MemoryKind::AcpiNvs);
    assert_eq!(info.total_available(), PC_AVAILABLE);

    let end = MB2_INFO + block.len() as u64;
    let reserved: Vec<_> = info.reserved_ranges().collect();
    assert_eq!(
        reserved,
        [
            (MB2_INFO, end),
            (0x20_0000, 0x2f_1234),
            (0x2f_2000, 0x80_0000)
        ]
    );
    assert!(info.structure_ranges.is_empty());
}

#[test]
fn mb2_accepts_larger_mmap_entries() {
    let mut p = Bytes::default();
    p.u32(32).u32(0);
    p.u64(0x10_0000).u64(0x10_0000).u32(1).u32(0).u64(0xdead); // 8 future bytes
    p.u64(0x30_0000).u64(0x1000).u32(7).u32(0).u64(0xbeef);
    let mut m = Mb2::new();
    let info = parse_mb2(&m.tag(6, &p.0).end().finish()).unwrap();
    assert_eq!(
        info.memory_map.as_slice(),
        &[
            region(0x10_0000, 0x10_0000, MemoryKind::Available),
            region(0x30_0000, 0x1000, MemoryKind::Other(7)),
        ]
    );
}

#[test]
fn mb2_block_straddling_pages_and_exact_capacity_strings() {
    let long = "x".repeat(CMDLINE_CAPACITY);
    let mut m = Mb2::new();
    m.cmdline(&long)
        .tag(2, &cstr(&"n".repeat(LOADER_NAME_CAPACITY)))
        .meminfo(0, 4096)
        .end();
    let block = m.finish();
    let at = 0x1fff8u32; // header on one page, tags on the next
    let info =
        BootInfo::from_multiboot(MULTIBOOT2_MAGIC, at, &mem_with(at.into(), &block)).unwrap();
    assert_eq!(info.cmdline.len(), CMDLINE_CAPACITY);
    assert_eq!(info.loader_name.len(), LOADER_NAME_CAPACITY);
}

// ---------------------------------------------------------------------------
// Dispatch and memory fall-back
// ---------------------------------------------------------------------------

#[test]
fn bad_magic() {
    let mem = qemu_mb1();
    for magic in [0, 0x2BAD_B001, 0x1BAD_B002, 0xE852_50D6] {
        assert_eq!(
            BootInfo::from_multiboot(magic, MB1_INFO as u32, &mem),
            Err(BootInfoError::BadMagic(magic))
        );
    }
}

#[test]
fn mb1_without_mmap_falls_back_to_meminfo() {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO, &(QEMU_FLAGS & !0x40).to_le_bytes());
    let info = parse_mb1(&mem).unwrap();
    assert!(info.memory_map_synthesized);
    assert_eq!(
        info.memory_map.as_slice(),
        &[
            region(0, 639 * 1024, MemoryKind::Available),
            region(1 << 20, 130_944 * 1024, MemoryKind::Available),
        ]
    );
    // The map table is not pointed at any more, so it is not reserved.
    assert!(!info.reserved_ranges().any(|r| r.0 == MB1_MMAP));
}

#[test]
fn mb1_with_empty_mmap_falls_back_to_meminfo() {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 44, &0u32.to_le_bytes());
    let info = parse_mb1(&mem).unwrap();
    assert!(info.memory_map_synthesized);
    assert_eq!(info.total_available(), (639 + 130_944) * 1024);
}

#[test]
fn mb1_without_mmap_or_meminfo_fails() {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO, &(QEMU_FLAGS & !0x41).to_le_bytes());
    assert_eq!(parse_mb1(&mem), Err(BootInfoError::NoMemoryInfo));
    // Zero-sized meminfo is no information either.
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO, &(QEMU_FLAGS & !0x40).to_le_bytes());
    mem.write(MB1_INFO + 4, &[0; 8]);
    assert_eq!(parse_mb1(&mem), Err(BootInfoError::NoMemoryInfo));
}

#[test]
fn mb1_minimal_flags() {
    // Only mem: no cmdline, modules or name, and no pointer is followed.
    let info = Mb1 {
        flags: 1,
        mem_lower: 640,
        mem_upper: 1024,
        mods_count: 5,
        mmap_length: 99,
    }
    .info();
    let info = parse_mb1(&mem_with(MB1_INFO, &info)).unwrap();
    assert_eq!(info.cmdline, "");
    assert_eq!(info.loader_name, "");
    assert!(info.modules.is_empty());
    assert_eq!(info.reserved_ranges().count(), 1);
}

#[test]
fn mb2_without_mmap_falls_back_to_meminfo() {
    let mut m = Mb2::new();
    let info = parse_mb2(&m.meminfo(639, 64 * 1024).end().finish()).unwrap();
    assert!(info.memory_map_synthesized);
    assert_eq!(info.total_available(), (639 + 64 * 1024) * 1024);

    let mut m = Mb2::new();
    assert_eq!(
        parse_mb2(&m.cmdline("x").end().finish()),
        Err(BootInfoError::NoMemoryInfo)
    );
}

// ---------------------------------------------------------------------------
// Multiboot1 failures
// ---------------------------------------------------------------------------

#[test]
fn mb1_module_end_before_start() {
    let mut mem = qemu_mb1();
    mem.write(MB1_MODS + 16, &mb1_module(0x50_0000, 0x4f_ffff, 0));
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::ModuleEndBeforeStart {
            index: 1,
            start: 0x50_0000,
            end: 0x4f_ffff
        })
    );
}

#[test]
fn mb1_empty_module_and_null_string_are_accepted() {
    let mut mem = qemu_mb1();
    mem.write(MB1_MODS + 16, &mb1_module(0x50_0000, 0x50_0000, 0));
    let info = parse_mb1(&mem).unwrap();
    assert_eq!(info.modules[1].string, "");
    // Empty ranges are not reported.
    assert!(!info.reserved_ranges().any(|r| r.0 == 0x50_0000));
}

fn mem_with_mb1_modules(count: u32) -> FakeMem {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 20, &count.to_le_bytes());
    for i in 0..u64::from(count) {
        let start = 0x100_0000 + (i as u32) * 0x1000;
        mem.write(MB1_MODS + 16 * i, &mb1_module(start, start + 0x1000, 0));
    }
    mem
}

#[test]
fn mb1_too_many_modules() {
    let info = parse_mb1(&mem_with_mb1_modules(MAX_MODULES as u32)).unwrap();
    assert_eq!(info.modules.len(), MAX_MODULES);
    assert_eq!(
        parse_mb1(&mem_with_mb1_modules(MAX_MODULES as u32 + 1)),
        Err(BootInfoError::TooManyModules)
    );
    // A garbage count is refused before the table is read.
    assert_eq!(
        parse_mb1(&mem_with_mb1_modules(0)).map(|i| i.modules.len()),
        Ok(0)
    );
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 20, &u32::MAX.to_le_bytes());
    assert_eq!(parse_mb1(&mem), Err(BootInfoError::TooManyModules));
}

fn mem_with_mb1_mmap(mmap: &[u8]) -> FakeMem {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 44, &(mmap.len() as u32).to_le_bytes());
    mem.write(MB1_MMAP, mmap);
    mem
}

#[test]
fn mb1_mmap_entry_too_small() {
    let mut mmap = mb1_mmap(&PC_MMAP[..2]);
    mmap.extend(Bytes::default().u32(16).u64(0).u64(0).0.iter());
    assert_eq!(
        parse_mb1(&mem_with_mb1_mmap(&mmap)),
        Err(BootInfoError::Mb1MmapEntryTooSmall {
            offset: 48,
            size: 16
        })
    );
}

#[test]
fn mb1_mmap_truncated() {
    // The last entry claims more than mmap_length leaves.
    let mut mmap = mb1_mmap(&PC_MMAP[..2]);
    mmap.truncate(mmap.len() - 1);
    let mem = mem_with_mb1_mmap(&mmap);
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::Mb1MmapTruncated {
            offset: 24,
            length: 47
        })
    );
    // Fewer bytes left than a size field.
    let mut mmap = mb1_mmap(&PC_MMAP[..2]);
    mmap.extend([0, 0]);
    assert_eq!(
        parse_mb1(&mem_with_mb1_mmap(&mmap)),
        Err(BootInfoError::Mb1MmapTruncated {
            offset: 48,
            length: 50
        })
    );
}

#[test]
fn mb1_mmap_entries_with_larger_size_are_stepped_over() {
    let mut b = Bytes::default();
    b.u32(28)
        .u64(0x10_0000)
        .u64(0x1000)
        .u32(1)
        .u64(0xffff_ffff_ffff_ffff);
    b.u32(20).u64(0x20_0000).u64(0x2000).u32(2);
    let info = parse_mb1(&mem_with_mb1_mmap(&b.0)).unwrap();
    assert_eq!(
        info.memory_map.as_slice(),
        &[
            region(0x10_0000, 0x1000, MemoryKind::Available),
            region(0x20_0000, 0x2000, MemoryKind::Reserved),
        ]
    );
}

#[test]
fn mb1_mmap_too_large() {
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 44, &(MB1_MAX_MMAP_LENGTH + 4).to_le_bytes());
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::Mb1MmapTooLarge {
            length: MB1_MAX_MMAP_LENGTH + 4
        })
    );
}

#[test]
fn mb1_zero_length_entries_are_skipped() {
    let mmap = mb1_mmap(&[(0x1000, 0, 1), (0x10_0000, 0x1000, 1), (0, 0, 2)]);
    let info = parse_mb1(&mem_with_mb1_mmap(&mmap)).unwrap();
    assert_eq!(
        info.memory_map.as_slice(),
        &[region(0x10_0000, 0x1000, MemoryKind::Available)]
    );
}

#[test]
fn mb1_region_wrapping_around() {
    let mmap = mb1_mmap(&[(0x10_0000, 0x1000, 1), (u64::MAX - 0xfff, 0x1001, 2)]);
    assert_eq!(
        parse_mb1(&mem_with_mb1_mmap(&mmap)),
        Err(BootInfoError::MemoryRegionOverflow {
            index: 1,
            base: u64::MAX - 0xfff,
            len: 0x1001
        })
    );
    // Ending at 2^64 - 1 is fine; ending at 2^64 is not representable.
    let mmap = mb1_mmap(&[(u64::MAX - 0xfff, 0xfff, 2), (0, 0x1000, 1)]);
    assert!(parse_mb1(&mem_with_mb1_mmap(&mmap)).is_ok());
}

fn pc_like_entries(n: usize) -> Vec<(u64, u64, u32)> {
    (0..n as u64)
        .map(|i| (i * 0x10_0000, 0x8_0000, 1 + (i % 2) as u32))
        .collect()
}

#[test]
fn mb1_too_many_regions() {
    let mmap = mb1_mmap(&pc_like_entries(MAX_MEMORY_REGIONS));
    let info = parse_mb1(&mem_with_mb1_mmap(&mmap)).unwrap();
    assert_eq!(info.memory_map.len(), MAX_MEMORY_REGIONS);
    let mmap = mb1_mmap(&pc_like_entries(MAX_MEMORY_REGIONS + 1));
    assert_eq!(
        parse_mb1(&mem_with_mb1_mmap(&mmap)),
        Err(BootInfoError::TooManyMemoryRegions)
    );
}

#[test]
fn mb1_cmdline_too_long() {
    let mut mem = qemu_mb1();
    let at = 0x2_0000;
    mem.write(MB1_INFO + 16, &(at as u32).to_le_bytes());
    mem.write(at, &cstr(&"a".repeat(CMDLINE_CAPACITY)));
    assert_eq!(parse_mb1(&mem).unwrap().cmdline.len(), CMDLINE_CAPACITY);
    mem.write(at, &cstr(&"a".repeat(CMDLINE_CAPACITY + 1)));
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::StringTooLong {
            what: "command line",
            capacity: CMDLINE_CAPACITY
        })
    );
}

#[test]
fn mb1_module_string_too_long_and_not_utf8() {
    let mut mem = qemu_mb1();
    mem.write(
        MB1_MOD_STRINGS[0],
        &cstr(&"m".repeat(MODULE_STRING_CAPACITY + 1)),
    );
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::StringTooLong {
            what: "module string",
            capacity: MODULE_STRING_CAPACITY
        })
    );
    let mut mem = qemu_mb1();
    mem.write(MB1_LOADER_NAME, &[b'q', 0xff, 0xfe, 0]);
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::StringNotUtf8 {
            what: "boot loader name"
        })
    );
}

#[test]
fn mb1_unreadable_memory() {
    // The command line runs into an absent frame.
    let mut mem = qemu_mb1();
    mem.write(0x20ff0, &[b'a'; 16]);
    mem.write(MB1_INFO + 16, &0x20ff0u32.to_le_bytes());
    assert_eq!(
        parse_mb1(&mem),
        Err(BootInfoError::PhysRead {
            what: "command line",
            err: PhysReadError {
                paddr: 0x21000,
                len: 64
            }
        })
    );
    // The info block itself is absent.
    assert!(matches!(
        BootInfo::from_multiboot(MULTIBOOT1_MAGIC, 0x30_0000, &qemu_mb1()),
        Err(BootInfoError::PhysRead {
            what: "multiboot1 info",
            ..
        })
    ));
    // The module table points nowhere.
    let mut mem = qemu_mb1();
    mem.write(MB1_INFO + 24, &0x50_0000u32.to_le_bytes());
    assert!(matches!(
        parse_mb1(&mem),
        Err(BootInfoError::PhysRead {
            what: "module table",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// Multiboot2 failures
// ---------------------------------------------------------------------------

#[test]
fn mb2_misaligned() {
    let block = grub_mb2().finish();
    for at in [MB2_INFO + 4, MB2_INFO + 1] {
        assert_eq!(
            BootInfo::from_multiboot(MULTIBOOT2_MAGIC, at as u32, &mem_with(at, &block)),
            Err(BootInfoError::Mb2Misaligned { paddr: at as u32 })
        );
    }
}

#[test]
fn mb2_total_size_too_small_or_huge() {
    for total_size in [0u32, 8, 15] {
        let mut block = Mb2::new().end().finish();
        block[0..4].copy_from_slice(&total_size.to_le_bytes());
        assert_eq!(
            parse_mb2(&block),
            Err(BootInfoError::Mb2TotalSizeTooSmall { total_size })
        );
    }
    for total_size in [MB2_MAX_TOTAL_SIZE + 1, u32::MAX] {
        let mut block = grub_mb2().finish();
        block[0..4].copy_from_slice(&total_size.to_le_bytes());
        assert_eq!(
            parse_mb2(&block),
            Err(BootInfoError::Mb2TotalSizeTooLarge { total_size })
        );
    }
    // The smallest block: header and end tag, but no memory information.
    assert_eq!(
        parse_mb2(&Mb2::new().end().finish()),
        Err(BootInfoError::NoMemoryInfo)
    );
}

#[test]
fn mb2_tag_overflows_block() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag_sized(1, 64, &cstr("short")).end();
    let block = m.finish();
    assert_eq!(
        parse_mb2(&block),
        Err(BootInfoError::Mb2TagOverflow {
            offset: 24,
            tag_type: 1,
            size: 64,
            total_size: block.len() as u32
        })
    );
    // total_size cuts a tag short.
    let mut block = grub_mb2().finish();
    block[0..4].copy_from_slice(&40u32.to_le_bytes());
    assert!(matches!(
        parse_mb2(&block),
        Err(BootInfoError::Mb2TagOverflow { total_size: 40, .. })
    ));
}

#[test]
fn mb2_tag_size_below_header() {
    for size in [0, 7] {
        let mut m = Mb2::new();
        m.meminfo(639, 1024).tag_sized(9, size, &[0; 8]).end();
        assert_eq!(
            parse_mb2(&m.finish()),
            Err(BootInfoError::Mb2TagTooSmall { offset: 24, size })
        );
    }
}

#[test]
fn mb2_missing_end_tag() {
    let mut m = Mb2::new();
    assert_eq!(
        parse_mb2(&m.meminfo(639, 1024).finish()),
        Err(BootInfoError::Mb2MissingEndTag)
    );
    // A last tag whose padding would pass total_size.
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag(1, &cstr("abc"));
    let mut block = m.finish();
    block.truncate(block.len() - 4);
    let total = block.len() as u32;
    block[0..4].copy_from_slice(&total.to_le_bytes());
    assert_eq!(parse_mb2(&block), Err(BootInfoError::Mb2MissingEndTag));
    // Four stray bytes where the end tag should be.
    let mut m = Mb2::new();
    m.meminfo(639, 1024);
    m.0.u32(0);
    assert_eq!(parse_mb2(&m.finish()), Err(BootInfoError::Mb2MissingEndTag));
}

#[test]
fn mb2_bad_end_tag() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag_sized(0, 16, &[0; 8]);
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::Mb2BadEndTag { size: 16 })
    );
}

#[test]
fn mb2_tags_after_end_are_ignored() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024).end().tag_sized(1, 999, &[1; 8]);
    assert!(parse_mb2(&m.finish()).is_ok());
}

#[test]
fn mb2_module_end_before_start() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024)
        .module(0x20_0000, 0x30_0000, "a")
        .module(0x40_0000, 0x3f_f000, "b")
        .end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::ModuleEndBeforeStart {
            index: 1,
            start: 0x40_0000,
            end: 0x3f_f000
        })
    );
}

#[test]
fn mb2_too_many_modules() {
    let with_modules = |n: u32| {
        let mut m = Mb2::new();
        m.meminfo(639, 1024);
        for i in 0..n {
            m.module(0x100_0000 + i * 0x1000, 0x100_1000 + i * 0x1000, "m");
        }
        parse_mb2(&m.end().finish())
    };
    assert_eq!(
        with_modules(MAX_MODULES as u32).unwrap().modules.len(),
        MAX_MODULES
    );
    assert_eq!(
        with_modules(MAX_MODULES as u32 + 1),
        Err(BootInfoError::TooManyModules)
    );
}

#[test]
fn mb2_too_many_regions() {
    let with_regions = |n: usize| {
        let mut m = Mb2::new();
        parse_mb2(&m.mmap(&pc_like_entries(n)).end().finish())
    };
    assert_eq!(
        with_regions(MAX_MEMORY_REGIONS).unwrap().memory_map.len(),
        MAX_MEMORY_REGIONS
    );
    assert_eq!(
        with_regions(MAX_MEMORY_REGIONS + 1),
        Err(BootInfoError::TooManyMemoryRegions)
    );
}

#[test]
fn mb2_strings_without_nul() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag(1, b"dom0_mem=256M").end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::UnterminatedString {
            what: "command line"
        })
    );
    // The NUL is in the padding after the tag, which does not count.
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag(2, b"GRUB").end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::UnterminatedString {
            what: "boot loader name"
        })
    );
    let mut m = Mb2::new();
    let mut p = Bytes::default();
    p.u32(0x20_0000).u32(0x30_0000);
    m.meminfo(639, 1024).tag(3, &p.0).end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::UnterminatedString {
            what: "module string"
        })
    );
}

#[test]
fn mb2_strings_too_long_or_not_utf8() {
    let mut m = Mb2::new();
    m.meminfo(639, 1024)
        .tag(2, &cstr(&"n".repeat(LOADER_NAME_CAPACITY + 1)))
        .end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::StringTooLong {
            what: "boot loader name",
            capacity: LOADER_NAME_CAPACITY
        })
    );
    let mut m = Mb2::new();
    m.meminfo(639, 1024).tag(1, &[b'a', 0xc3, 0]).end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::StringNotUtf8 {
            what: "command line"
        })
    );
}

#[test]
fn mb2_tags_too_short_for_their_fields() {
    for (tag_type, payload) in [(3u32, 4usize), (4, 4), (6, 0)] {
        let mut m = Mb2::new();
        m.meminfo(639, 1024).tag(tag_type, &vec![0; payload]).end();
        let size = 8 + payload as u32;
        let result = parse_mb2(&m.finish());
        // A second meminfo is a duplicate before it is short.
        if tag_type == 4 {
            assert_eq!(result, Err(BootInfoError::Mb2DuplicateTag { tag_type }));
        } else {
            assert_eq!(
                result,
                Err(BootInfoError::Mb2TagTooShort { tag_type, size })
            );
        }
    }
    let mut m = Mb2::new();
    m.tag(4, &[0; 4]).end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::Mb2TagTooShort {
            tag_type: 4,
            size: 12
        })
    );
}

#[test]
fn mb2_duplicate_tags() {
    let mut m = Mb2::new();
    m.cmdline("a").meminfo(639, 1024).cmdline("b").end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::Mb2DuplicateTag { tag_type: 1 })
    );
    let mut m = Mb2::new();
    m.mmap(&PC_MMAP).mmap(&PC_MMAP).end();
    assert_eq!(
        parse_mb2(&m.finish()),
        Err(BootInfoError::Mb2DuplicateTag { tag_type: 6 })
    );
}

#[test]
fn mb2_bad_mmap_entry_size() {
    for entry_size in [0, 20, 28] {
        let mut p = Bytes::default();
        p.u32(entry_size).u32(0).zeros(entry_size as usize);
        let mut m = Mb2::new();
        assert_eq!(
            parse_mb2(&m.tag(6, &p.0).end().finish()),
            Err(BootInfoError::Mb2BadMmapEntrySize { entry_size })
        );
    }
}

#[test]
fn mb2_mmap_trailing_bytes() {
    let mut p = Bytes::default();
    p.u32(24).u32(0).u64(0).u64(0x9fc00).u32(1).u32(0).zeros(8);
    let mut m = Mb2::new();
    assert_eq!(
        parse_mb2(&m.tag(6, &p.0).end().finish()),
        Err(BootInfoError::Mb2MmapTrailingBytes {
            size: 48,
            entry_size: 24
        })
    );
}

#[test]
fn mb2_unreadable_memory() {
    let block = grub_mb2().finish();
    let mut mem = mem_with(MB2_INFO, &block);
    mem.unmap(MB2_INFO);
    assert!(matches!(
        BootInfo::from_multiboot(MULTIBOOT2_MAGIC, MB2_INFO as u32, &mem),
        Err(BootInfoError::PhysRead {
            what: "multiboot2 info",
            ..
        })
    ));
    // total_size says the block reaches into an absent frame.
    let at = 0x1_0ff8u64;
    let mut block = Mb2::new().end().finish();
    block[0..4].copy_from_slice(&64u32.to_le_bytes());
    block.truncate(8);
    let mem = mem_with(at, &block);
    assert!(matches!(
        BootInfo::from_multiboot(MULTIBOOT2_MAGIC, at as u32, &mem),
        Err(BootInfoError::PhysRead {
            what: "multiboot2 tag",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// Memory accounting
// ---------------------------------------------------------------------------

#[test]
fn total_available_counts_unsorted_overlaps_once() {
    use MemoryKind::*;
    let info = with_map(&[
        region(0x20_0000, 0x10_0000, Available),
        region(0x10_0000, 0x18_0000, Available), // overlaps the first by 0x8_0000
        region(0x28_0000, 0x1_0000, Available),  // inside the first
        region(0x0, 0x1000, Available),
        region(0x30_0000, 0x1000, Available), // touches the first
    ]);
    assert_eq!(
        info.available_ranges().as_slice(),
        &[(0, 0x1000), (0x10_0000, 0x30_1000)]
    );
    assert_eq!(info.total_available(), 0x1000 + 0x20_1000);
}

#[test]
fn available_ranges_exclude_anything_reported_otherwise() {
    use MemoryKind::*;
    let info = with_map(&[
        region(0x10_0000, 0x100_0000, Available),
        region(0x20_0000, 0x1000, Reserved), // a hole in the middle
        region(0x0f_f000, 0x2000, AcpiNvs),  // straddles the start
        region(0x10f_f000, 0x10_0000, Defective), // straddles the end
        region(0x50_0000, 0x1000, Other(12)),
        region(0x50_0800, 0x1000, AcpiReclaimable), // overlaps the previous hole
        region(0x200_0000, 0x1000, Reserved),       // outside any RAM
    ]);
    assert_eq!(
        info.available_ranges().as_slice(),
        &[
            (0x10_1000, 0x20_0000),
            (0x20_1000, 0x50_0000),
            (0x50_1800, 0x10f_f000)
        ]
    );
    assert_eq!(
        info.total_available(),
        (0x20_0000 - 0x10_1000) + (0x50_0000 - 0x20_1000) + (0x10f_f000 - 0x50_1800)
    );
    assert_eq!(with_map(&[]).total_available(), 0);
    assert_eq!(
        with_map(&[region(0, 0x1000, Reserved)]).total_available(),
        0
    );
}

#[test]
fn memory_kinds_from_raw() {
    use MemoryKind::*;
    let kinds: Vec<_> = (0..7).map(MemoryKind::from_raw).collect();
    assert_eq!(
        kinds,
        [
            Other(0),
            Available,
            Reserved,
            AcpiReclaimable,
            AcpiNvs,
            Defective,
            Other(6)
        ]
    );
}

#[test]
fn memory_kinds_print_as_xen_does() {
    let words: Vec<std::string::String> = (0..7)
        .map(|t| MemoryKind::from_raw(t).to_string())
        .collect();
    assert_eq!(
        words,
        [
            "type 0",
            "usable",
            "reserved",
            "ACPI data",
            "ACPI NVS",
            "unusable",
            "type 6"
        ]
    );
}

#[test]
fn errors_name_the_reason() {
    let cases: [(BootInfoError, &str); 8] = [
        (BootInfoError::BadMagic(0x1234), "magic 0x00001234"),
        (BootInfoError::NoMemoryInfo, "no memory map"),
        (BootInfoError::TooManyModules, "more than 16 boot modules"),
        (
            BootInfoError::TooManyMemoryRegions,
            "more than 128 memory map entries",
        ),
        (
            BootInfoError::StringTooLong {
                what: "command line",
                capacity: 1024,
            },
            "command line is longer than 1024",
        ),
        (
            BootInfoError::PhysRead {
                what: "module table",
                err: PhysReadError {
                    paddr: 0x5000,
                    len: 16,
                },
            },
            "reading the module table: cannot read 16 bytes at 0x5000",
        ),
        (BootInfoError::Mb2MissingEndTag, "no end tag"),
        (
            BootInfoError::Mb2Misaligned { paddr: 0x1004 },
            "0x1004 is not 8-byte aligned",
        ),
    ];
    for (err, want) in cases {
        let text = err.to_string();
        assert!(text.contains(want), "{text:?} lacks {want:?}");
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Invariants of anything the parser accepts.
fn check_parsed(info: &BootInfo) {
    for m in &info.modules {
        assert!(m.start <= m.end);
    }
    for r in &info.memory_map {
        assert!(r.len > 0 && r.base.checked_add(r.len).is_some());
    }
    check_available(info);
}

/// `available_ranges` is sorted, disjoint and has no empty range.
fn check_available(info: &BootInfo) {
    let ranges = info.available_ranges();
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "not sorted and disjoint: {ranges:?}");
    }
    for &(s, e) in &ranges {
        assert!(s < e);
    }
}

proptest! {
    #[test]
    fn mutated_mb1_never_panics(
        edits in prop::collection::vec((0usize..72 + 64 + 144 + 80, any::<u8>()), 1..8)
    ) {
        // Edit the info block, module table, memory map and first strings.
        let mut mem = qemu_mb1();
        for (i, byte) in edits {
            let at = match i {
                0..72 => MB1_INFO + i as u64,
                72..136 => MB1_MODS + (i - 72) as u64,
                136..280 => MB1_MMAP + (i - 136) as u64,
                _ => MB1_CMDLINE + (i - 280) as u64,
            };
            mem.write(at, &[byte]);
        }
        if let Ok(info) = parse_mb1(&mem) {
            check_parsed(&info);
        }
    }

    #[test]
    fn mutated_mb2_never_panics(
        edits in prop::collection::vec((0usize..512, any::<u8>()), 1..8)
    ) {
        let mut block = grub_mb2().finish();
        let len = block.len();
        for (i, byte) in edits {
            block[i % len] = byte;
        }
        if let Ok(info) = parse_mb2(&block) {
            check_parsed(&info);
        }
    }

    #[test]
    fn available_ranges_match_a_byte_by_byte_count(
        regions in prop::collection::vec((0u64..64, 0u64..16, 1u32..4), 0..12)
    ) {
        let map: Vec<_> = regions
            .iter()
            .map(|&(b, l, t)| region(b, l, MemoryKind::from_raw(t)))
            .collect();
        let info = with_map(&map);
        check_available(&info);
        let usable = |a: u64| {
            let has = |avail: bool| map.iter().any(|r| {
                (r.kind == MemoryKind::Available) == avail && r.base <= a && a < r.end()
            });
            has(true) && !has(false)
        };
        let ranges = info.available_ranges();
        for a in 0..96 {
            let listed = ranges.iter().any(|&(s, e)| s <= a && a < e);
            prop_assert_eq!(listed, usable(a), "address {}", a);
        }
        prop_assert_eq!(info.total_available(), (0..96).filter(|&a| usable(a)).count() as u64);
    }
}

#[test]
fn memory_kinds_round_trip_through_e820_numbers() {
    for t in 0..8 {
        assert_eq!(MemoryKind::from_raw(t).e820_type(), t);
    }
}
