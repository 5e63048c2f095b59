//! The mounted filesystem: [`Fs`] owns the device, the superblock and group descriptors
//! (in memory, written at [`Fs::sync`]), a cache of the bitmaps (written through as they
//! change) and a small cache of indirect blocks.
//!
//! Crash consistency is by ordered writes, no journal. Every operation writes in this order:
//! 1. bitmaps that gained bits (a block or inode is marked used before anything refers to it);
//! 2. file data and new directory blocks;
//! 3. indirect blocks, then the inode, then the directory entry that names it.
//!
//! When freeing, the reverse: the reference goes first (directory entry, then indirect
//! pointers and inode), the bitmap bit last. So a stop at any point leaves only *leaks*
//! (blocks or inodes marked used that nothing reaches, link counts one too high) and
//! inodes whose `i_blocks`/size lag the blocks just linked into an existing indirect
//! block — never a reference to a free block or inode. [`Fs::mount`] of an image not
//! marked clean runs the check in [`crate::check`], which repairs exactly those and refuses
//! ([`Error::NeedsFsck`]) anything else. Superblock and descriptor free counts are only
//! written at sync/unmount; the check recomputes them from the bitmaps.
//!
//! Invariants: `sb` is the 1024-byte primary superblock, `gdt` the primary descriptor table
//! of `geo.gdt_blocks` blocks; every group's bitmap and inode-table locations were checked
//! at mount to be in range and not to overlap other group metadata (`meta`).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use crate::dev::{BlockDevice, SECTOR_SIZE};
use crate::error::{Error, Result};
use crate::layout::*;

/// Options for [`Fs::mount`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Mount read-only: nothing is ever written (no state flag, no check repairs).
    pub read_only: bool,
    /// Run the consistency check even if the image says it was cleanly unmounted.
    pub force_check: bool,
    /// Seconds since the epoch, stamped into inodes and the superblock (see [`Fs::set_time`]).
    pub now: u32,
}

/// What the consistency check found (and, at a read-write mount, repaired).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Blocks marked used that no inode reaches (freed by a repair).
    pub leaked_blocks: u32,
    /// Inodes marked used (or with links) that no directory reaches (freed by a repair).
    pub leaked_inodes: u32,
    /// Inodes whose link count was above the number of entries naming them (lowered).
    pub link_counts_fixed: u32,
    /// Inodes whose `i_blocks` or size fell short of the blocks they map (raised).
    pub inode_sizes_fixed: u32,
    /// Second names of a directory removed (a stop in the middle of moving it).
    pub names_removed: u32,
    /// Group descriptor counts that differed from the bitmaps (recomputed).
    pub counts_fixed: u32,
}

impl CheckReport {
    /// Whether the check found nothing at all to repair.
    pub fn is_clean(&self) -> bool {
        *self == CheckReport::default()
    }
}

/// What [`Fs::mount`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountReport {
    /// The image was marked cleanly unmounted.
    pub was_clean: bool,
    /// The check ran (unclean image or `force_check`), with what it repaired.
    pub check: Option<CheckReport>,
}

/// The kind of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Device, FIFO or socket.
    Other,
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: u32,
    /// Mode bits (type and permissions).
    pub mode: u16,
    /// Kind of file.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Link count.
    pub links: u16,
    /// Allocated 512-byte units (data, indirect and xattr blocks), as `st_blocks`.
    pub blocks: u64,
    /// Owner.
    pub uid: u16,
    /// Group.
    pub gid: u16,
    /// Last modification, seconds since the epoch.
    pub mtime: u32,
}

/// What `statfs` reports (for `df`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free blocks minus those reserved for root.
    pub avail_blocks: u64,
    /// Inodes in the filesystem.
    pub inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
}

/// One directory entry as `readdir` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name's bytes.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u32,
    /// Entry type byte (1 file, 2 dir, 7 symlink, ...; 0 without the filetype feature).
    pub file_type: u8,
}

impl DirEntry {
    /// The name as UTF-8, if it is.
    pub fn name_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.name).ok()
    }
}

/// An inode as its raw on-disk bytes.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub ino: u32,
    pub raw: Vec<u8>,
}

impl Inode {
    pub fn mode(&self) -> u16 {
        le16(&self.raw, ino::MODE)
    }
    pub fn is_dir(&self) -> bool {
        self.mode() & S_IFMT == S_IFDIR
    }
    pub fn is_reg(&self) -> bool {
        self.mode() & S_IFMT == S_IFREG
    }
    pub fn links(&self) -> u16 {
        le16(&self.raw, ino::LINKS)
    }
    pub fn set_links(&mut self, n: u16) {
        put16(&mut self.raw, ino::LINKS, n)
    }
    pub fn size(&self) -> u64 {
        let lo = u64::from(le32(&self.raw, ino::SIZE_LO));
        if self.is_reg() {
            lo | u64::from(le32(&self.raw, ino::SIZE_HIGH)) << 32
        } else {
            lo
        }
    }
    pub fn set_size(&mut self, s: u64) {
        put32(&mut self.raw, ino::SIZE_LO, s as u32);
        if self.is_reg() {
            put32(&mut self.raw, ino::SIZE_HIGH, (s >> 32) as u32);
        }
    }
    pub fn block(&self, i: usize) -> u32 {
        le32(&self.raw, ino::BLOCK + 4 * i)
    }
    pub fn set_block(&mut self, i: usize, b: u32) {
        put32(&mut self.raw, ino::BLOCK + 4 * i, b)
    }
    pub fn flags(&self) -> u32 {
        le32(&self.raw, ino::FLAGS)
    }
    pub fn file_acl(&self) -> u32 {
        le32(&self.raw, ino::FILE_ACL)
    }
    /// 512-byte units (without huge_file, which is refused per inode).
    pub fn blocks512(&self) -> u64 {
        u64::from(le32(&self.raw, ino::BLOCKS_LO))
            | u64::from(le16(&self.raw, ino::BLOCKS_HI)) << 32
    }
    pub fn set_blocks512(&mut self, n: u64) {
        put32(&mut self.raw, ino::BLOCKS_LO, n as u32);
        put16(&mut self.raw, ino::BLOCKS_HI, (n >> 32) as u16);
    }
    /// Whether `i_block` holds block pointers (not a fast symlink or a device number).
    pub fn has_block_map(&self, block_size: u32) -> bool {
        match self.mode() & S_IFMT {
            S_IFREG | S_IFDIR => true,
            S_IFLNK => {
                let acl = if self.file_acl() != 0 {
                    u64::from(block_size / 512)
                } else {
                    0
                };
                self.blocks512() > acl
            }
            0 => true, // reserved inodes (bad blocks, journal)
            _ => false,
        }
    }
    fn check_supported(&self) -> Result<()> {
        if self.flags() & FL_UNSUPPORTED != 0 {
            return Err(Error::Unsupported(
                "inode uses extents, inline data or huge_file block units",
            ));
        }
        Ok(())
    }
}

/// Path from an inode to a logical block: the `i_block` slot, then one index per
/// indirect level.
struct MapPath {
    top: usize,
    idx: [u32; 3],
    levels: usize,
}

/// Blocks an operation changes, kept in memory until it commits.
#[derive(Default)]
struct Txn {
    /// Indirect blocks read or created by the operation, with a dirty flag.
    meta: BTreeMap<u32, (Vec<u8>, bool)>,
    /// Blocks the operation allocated (freed again if it fails).
    allocated: Vec<u32>,
}

const ICACHE_SLOTS: usize = 8;

/// A mounted ext2 filesystem on a [`BlockDevice`].
pub struct Fs<D: BlockDevice> {
    pub(crate) dev: D,
    pub(crate) geo: Geometry,
    pub(crate) sb: Vec<u8>,
    pub(crate) gdt: Vec<u8>,
    pub(crate) bbmp: Vec<Option<Vec<u8>>>,
    pub(crate) ibmp: Vec<Option<Vec<u8>>>,
    pub(crate) dirty_bbmp: BTreeSet<u32>,
    pub(crate) dirty_ibmp: BTreeSet<u32>,
    /// Sorted, non-overlapping `[start, end)` block ranges of group metadata.
    pub(crate) meta: Vec<(u32, u32)>,
    icache: Vec<(u32, Vec<u8>)>,
    pub(crate) free_blocks: u64,
    pub(crate) free_inodes: u64,
    pub(crate) read_only: bool,
    pub(crate) now: u32,
    generation: u32,
}

impl<D: BlockDevice> Fs<D> {
    /// Mounts the filesystem on `dev`: validates the superblock and group descriptors,
    /// refuses unsupported features, and for a read-write mount marks the image not clean
    /// (on disk, flushed) after checking and repairing it if it was not cleanly unmounted.
    pub fn mount(dev: D, opts: MountOptions) -> Result<(Self, MountReport)> {
        Self::try_mount(dev, opts).map_err(|(e, _)| e)
    }

    /// [`Fs::mount`], handing the device back on failure (so that a caller can retry
    /// read-only, or run something else on the disk).
    pub fn try_mount(
        mut dev: D,
        opts: MountOptions,
    ) -> core::result::Result<(Self, MountReport), (Error, D)> {
        let mut sbuf = vec![0u8; 1024];
        if let Err(e) = dev.read_sectors(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &mut sbuf) {
            return Err((e.into(), dev));
        }
        let dev_bytes = dev.sector_count().saturating_mul(SECTOR_SIZE as u64);
        let geo = match Geometry::parse(&sbuf, dev_bytes, !opts.read_only) {
            Ok(g) => g,
            Err(e) => return Err((e, dev)),
        };
        let bs = geo.block_size as usize;
        let mut fs = Fs {
            dev,
            gdt: vec![0u8; geo.gdt_blocks as usize * bs],
            bbmp: vec![None; geo.groups as usize],
            ibmp: vec![None; geo.groups as usize],
            dirty_bbmp: BTreeSet::new(),
            dirty_ibmp: BTreeSet::new(),
            meta: Vec::new(),
            icache: Vec::new(),
            free_blocks: 0,
            free_inodes: 0,
            read_only: opts.read_only,
            now: opts.now,
            generation: opts.now,
            sb: sbuf,
            geo,
        };
        match fs.finish_mount(opts) {
            Ok(r) => Ok((fs, r)),
            Err(e) => Err((e, fs.dev)),
        }
    }

    fn finish_mount(&mut self, opts: MountOptions) -> Result<MountReport> {
        let fs = self;
        let mut gdt = core::mem::take(&mut fs.gdt);
        fs.read_blocks(fs.geo.first_data_block + 1, &mut gdt)?;
        fs.gdt = gdt;
        fs.build_meta()?;
        for g in 0..fs.geo.groups {
            fs.free_blocks += u64::from(fs.gd16(g, gd::FREE_BLOCKS));
            fs.free_inodes += u64::from(fs.gd16(g, gd::FREE_INODES));
        }
        let state = le16(&fs.sb, sb::STATE);
        let was_clean = state & STATE_VALID != 0 && state & STATE_ERROR == 0;
        let mut report = MountReport {
            was_clean,
            check: None,
        };
        if !opts.read_only {
            if !was_clean || opts.force_check || le32(&fs.sb, sb::LAST_ORPHAN) != 0 {
                report.check = Some(fs.check(true)?);
            }
            // A check that passed clears an earlier error mark.
            let mut st = le16(&fs.sb, sb::STATE) & !STATE_VALID;
            if report.check.is_some() {
                st &= !STATE_ERROR;
            }
            put16(&mut fs.sb, sb::STATE, st);
            let n = le16(&fs.sb, sb::MNT_COUNT).wrapping_add(1);
            put16(&mut fs.sb, sb::MNT_COUNT, n);
            put32(&mut fs.sb, sb::MTIME, fs.now);
            fs.write_super()?;
            fs.dev.flush()?;
        }
        Ok(report)
    }

    /// Writes everything back, marks the image cleanly unmounted and returns the device.
    pub fn unmount(mut self) -> Result<D> {
        if !self.read_only {
            self.sync()?;
            let st = le16(&self.sb, sb::STATE) | STATE_VALID;
            put16(&mut self.sb, sb::STATE, st);
            self.write_super()?;
            self.dev.flush()?;
        }
        Ok(self.dev)
    }

    /// Drops the filesystem without writing anything (a simulated power cut in tests;
    /// also what a read-only user does). Returns the device.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// Sets the clock used for inode and superblock timestamps.
    pub fn set_time(&mut self, now: u32) {
        self.now = now;
    }

    /// The validated geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Writes bitmaps, group descriptors and the superblock, then flushes the device.
    pub fn sync(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.flush_bitmaps()?;
        let gdt = core::mem::take(&mut self.gdt);
        let r = self.write_blocks(self.geo.first_data_block + 1, &gdt);
        self.gdt = gdt;
        r?;
        put32(
            &mut self.sb,
            sb::FREE_BLOCKS,
            self.free_blocks.min(u64::from(u32::MAX)) as u32,
        );
        put32(
            &mut self.sb,
            sb::FREE_INODES,
            self.free_inodes.min(u64::from(u32::MAX)) as u32,
        );
        put32(&mut self.sb, sb::WTIME, self.now);
        self.write_super()?;
        self.dev.flush()?;
        Ok(())
    }

    /// Filesystem totals for `df`.
    pub fn statfs(&self) -> StatFs {
        let reserved = u64::from(le32(&self.sb, sb::R_BLOCKS_COUNT));
        StatFs {
            block_size: self.geo.block_size,
            blocks: u64::from(self.geo.blocks_count),
            free_blocks: self.free_blocks,
            avail_blocks: self.free_blocks.saturating_sub(reserved),
            inodes: u64::from(self.geo.inodes_count),
            free_inodes: self.free_inodes,
        }
    }

    // ---- raw block I/O ----

    fn check_block(&self, blk: u32) -> Result<()> {
        if blk >= self.geo.blocks_count || blk < self.geo.first_data_block {
            return Err(Error::Corrupt("block number out of range"));
        }
        Ok(())
    }

    fn lba(&self, blk: u32) -> u64 {
        u64::from(blk) * u64::from(self.geo.block_size / SECTOR_SIZE as u32)
    }

    /// Reads `buf.len()` bytes (whole blocks) starting at block `blk`.
    pub(crate) fn read_blocks(&mut self, blk: u32, buf: &mut [u8]) -> Result<()> {
        let n = (buf.len() / self.geo.block_size as usize) as u64;
        if u64::from(blk) + n > u64::from(self.geo.blocks_count) || blk < self.geo.first_data_block
        {
            return Err(Error::Corrupt("block number out of range"));
        }
        let lba = self.lba(blk);
        self.dev.read_sectors(lba, buf)?;
        Ok(())
    }

    pub(crate) fn read_block(&mut self, blk: u32) -> Result<Vec<u8>> {
        let mut b = vec![0u8; self.geo.block_size as usize];
        self.read_blocks(blk, &mut b)?;
        Ok(b)
    }

    /// Writes whole blocks starting at `blk`, keeping the indirect-block cache coherent.
    pub(crate) fn write_blocks(&mut self, blk: u32, buf: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let bs = self.geo.block_size as usize;
        let n = (buf.len() / bs) as u32;
        if u64::from(blk) + u64::from(n) > u64::from(self.geo.blocks_count)
            || blk < self.geo.first_data_block
        {
            return Err(Error::Corrupt("block number out of range"));
        }
        for (b, data) in self.icache.iter_mut() {
            if *b >= blk && *b < blk + n {
                let o = (*b - blk) as usize * bs;
                data.copy_from_slice(&buf[o..o + bs]);
            }
        }
        let lba = self.lba(blk);
        self.dev.write_sectors(lba, buf)?;
        Ok(())
    }

    fn write_super(&mut self) -> Result<()> {
        let sbuf = core::mem::take(&mut self.sb);
        let r = self
            .dev
            .write_sectors(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &sbuf);
        self.sb = sbuf;
        Ok(r?)
    }

    /// Reads pointer `idx` of indirect block `blk`, through the small cache.
    fn read_ptr(&mut self, blk: u32, idx: u32) -> Result<u32> {
        self.check_block(blk)?;
        let pos = match self.icache.iter().position(|(b, _)| *b == blk) {
            Some(p) => p,
            None => {
                let data = self.read_block(blk)?;
                if self.icache.len() == ICACHE_SLOTS {
                    self.icache.remove(0);
                }
                self.icache.push((blk, data));
                self.icache.len() - 1
            }
        };
        Ok(le32(&self.icache[pos].1, idx as usize * 4))
    }

    // ---- group descriptors and metadata map ----

    pub(crate) fn gd32(&self, g: u32, f: usize) -> u32 {
        le32(&self.gdt, g as usize * DESC_SIZE + f)
    }
    pub(crate) fn gd16(&self, g: u32, f: usize) -> u16 {
        le16(&self.gdt, g as usize * DESC_SIZE + f)
    }
    pub(crate) fn set_gd16(&mut self, g: u32, f: usize, v: u16) {
        put16(&mut self.gdt, g as usize * DESC_SIZE + f, v)
    }
    fn add_gd16(&mut self, g: u32, f: usize, d: i32) {
        let v = (i32::from(self.gd16(g, f)) + d).clamp(0, i32::from(u16::MAX)) as u16;
        self.set_gd16(g, f, v);
    }

    fn build_meta(&mut self) -> Result<()> {
        let geo = &self.geo;
        let mut m = Vec::new();
        for g in 0..geo.groups {
            let first = geo.group_first_block(g);
            if geo.group_has_super(g) {
                m.push((first, first + 1 + geo.gdt_blocks + geo.reserved_gdt_blocks));
            }
            let bb = self.gd32(g, gd::BLOCK_BITMAP);
            let ib = self.gd32(g, gd::INODE_BITMAP);
            let it = self.gd32(g, gd::INODE_TABLE);
            m.push((bb, bb.wrapping_add(1)));
            m.push((ib, ib.wrapping_add(1)));
            m.push((it, it.wrapping_add(geo.itable_blocks)));
        }
        for &(s, e) in &m {
            if s < geo.first_data_block || e <= s || e > geo.blocks_count {
                return Err(Error::Corrupt("group metadata outside the filesystem"));
            }
        }
        m.sort_unstable();
        if m.windows(2).any(|w| w[1].0 < w[0].1) {
            return Err(Error::Corrupt("group metadata overlaps"));
        }
        self.meta = m;
        Ok(())
    }

    /// Whether `blk` is a superblock, descriptor, bitmap or inode-table block.
    pub(crate) fn is_meta(&self, blk: u32) -> bool {
        let i = self.meta.partition_point(|&(s, _)| s <= blk);
        i > 0 && blk < self.meta[i - 1].1
    }

    // ---- bitmaps ----

    fn load_bitmap(&mut self, g: u32, inode: bool) -> Result<()> {
        let have = if inode {
            self.ibmp[g as usize].is_some()
        } else {
            self.bbmp[g as usize].is_some()
        };
        if !have {
            let blk = self.gd32(
                g,
                if inode {
                    gd::INODE_BITMAP
                } else {
                    gd::BLOCK_BITMAP
                },
            );
            let data = self.read_block(blk)?;
            if inode {
                self.ibmp[g as usize] = Some(data);
            } else {
                self.bbmp[g as usize] = Some(data);
            }
        }
        Ok(())
    }

    pub(crate) fn bitmap(&mut self, g: u32, inode: bool) -> Result<&mut Vec<u8>> {
        self.load_bitmap(g, inode)?;
        let slot = if inode {
            &mut self.ibmp[g as usize]
        } else {
            &mut self.bbmp[g as usize]
        };
        slot.as_mut().ok_or(Error::Corrupt("bitmap not loaded"))
    }

    pub(crate) fn flush_bitmaps(&mut self) -> Result<()> {
        for (inode, set) in [
            (false, core::mem::take(&mut self.dirty_bbmp)),
            (true, core::mem::take(&mut self.dirty_ibmp)),
        ] {
            for g in set {
                let blk = self.gd32(
                    g,
                    if inode {
                        gd::INODE_BITMAP
                    } else {
                        gd::BLOCK_BITMAP
                    },
                );
                let data = self.bitmap(g, inode)?.clone();
                self.write_blocks(blk, &data)?;
            }
        }
        Ok(())
    }

    fn alloc_block(&mut self, goal: u32) -> Result<u32> {
        let geo = self.geo.clone();
        let goal = goal.clamp(geo.first_data_block, geo.blocks_count - 1);
        let start_g = (goal - geo.first_data_block) / geo.blocks_per_group;
        let start_i = (goal - geo.first_data_block) % geo.blocks_per_group;
        for k in 0..=geo.groups {
            let g = (start_g + k) % geo.groups;
            let (from, to) = match k {
                0 => (start_i, geo.group_blocks(g)),
                k if k == geo.groups => (0, start_i.min(geo.group_blocks(g))),
                _ => (0, geo.group_blocks(g)),
            };
            let first = geo.group_first_block(g);
            let mut i = from;
            while i < to {
                let bm = self.bitmap(g, false)?;
                let byte = bm[(i / 8) as usize];
                if byte == 0xff {
                    i = (i / 8 + 1) * 8;
                    continue;
                }
                if byte & (1 << (i % 8)) == 0 && !self.is_meta(first + i) {
                    self.bitmap(g, false)?[(i / 8) as usize] |= 1 << (i % 8);
                    self.dirty_bbmp.insert(g);
                    self.free_blocks = self.free_blocks.saturating_sub(1);
                    self.add_gd16(g, gd::FREE_BLOCKS, -1);
                    return Ok(first + i);
                }
                i += 1;
            }
        }
        Err(Error::NoSpace)
    }

    /// Clears a block's bitmap bit (in memory; `flush_bitmaps` writes it). Metadata blocks
    /// and blocks already free are left alone.
    fn free_block(&mut self, blk: u32) -> Result<()> {
        if blk < self.geo.first_data_block || blk >= self.geo.blocks_count || self.is_meta(blk) {
            return Ok(());
        }
        let g = (blk - self.geo.first_data_block) / self.geo.blocks_per_group;
        let i = (blk - self.geo.first_data_block) % self.geo.blocks_per_group;
        let bm = self.bitmap(g, false)?;
        let m = 1u8 << (i % 8);
        if bm[(i / 8) as usize] & m != 0 {
            bm[(i / 8) as usize] &= !m;
            self.dirty_bbmp.insert(g);
            self.free_blocks += 1;
            self.add_gd16(g, gd::FREE_BLOCKS, 1);
        }
        Ok(())
    }

    fn alloc_inode(&mut self, dir: bool, near_group: u32) -> Result<u32> {
        let geo = self.geo.clone();
        let start = if dir {
            // Spread directories: the group with the most free inodes.
            (0..geo.groups)
                .max_by_key(|&g| (self.gd16(g, gd::FREE_INODES), core::cmp::Reverse(g)))
                .unwrap_or(0)
        } else {
            near_group.min(geo.groups - 1)
        };
        for k in 0..geo.groups {
            let g = (start + k) % geo.groups;
            for i in 0..geo.inodes_per_group {
                let ino = g * geo.inodes_per_group + i + 1;
                if ino < geo.first_ino {
                    continue;
                }
                let bm = self.bitmap(g, true)?;
                if bm[(i / 8) as usize] & (1 << (i % 8)) == 0 {
                    bm[(i / 8) as usize] |= 1 << (i % 8);
                    self.dirty_ibmp.insert(g);
                    self.free_inodes = self.free_inodes.saturating_sub(1);
                    self.add_gd16(g, gd::FREE_INODES, -1);
                    if dir {
                        self.add_gd16(g, gd::USED_DIRS, 1);
                    }
                    return Ok(ino);
                }
            }
        }
        Err(Error::NoSpace)
    }

    fn free_inode_bit(&mut self, ino: u32, dir: bool) -> Result<()> {
        let g = (ino - 1) / self.geo.inodes_per_group;
        let i = (ino - 1) % self.geo.inodes_per_group;
        let bm = self.bitmap(g, true)?;
        let m = 1u8 << (i % 8);
        if bm[(i / 8) as usize] & m != 0 {
            bm[(i / 8) as usize] &= !m;
            self.dirty_ibmp.insert(g);
            self.free_inodes += 1;
            self.add_gd16(g, gd::FREE_INODES, 1);
            if dir {
                self.add_gd16(g, gd::USED_DIRS, -1);
            }
        }
        Ok(())
    }

    // ---- inodes ----

    pub(crate) fn inode_loc(&self, ino: u32) -> Result<(u32, usize)> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(Error::Corrupt("inode number out of range"));
        }
        let g = (ino - 1) / self.geo.inodes_per_group;
        let idx = (ino - 1) % self.geo.inodes_per_group;
        let byte = u64::from(idx) * u64::from(self.geo.inode_size);
        let bs = u64::from(self.geo.block_size);
        let blk = self.gd32(g, gd::INODE_TABLE) + (byte / bs) as u32;
        Ok((blk, (byte % bs) as usize))
    }

    pub(crate) fn read_inode(&mut self, ino: u32) -> Result<Inode> {
        let (blk, off) = self.inode_loc(ino)?;
        let b = self.read_block(blk)?;
        let raw = b[off..off + self.geo.inode_size as usize].to_vec();
        Ok(Inode { ino, raw })
    }

    pub(crate) fn write_inode(&mut self, inode: &Inode) -> Result<()> {
        let (blk, off) = self.inode_loc(inode.ino)?;
        let mut b = self.read_block(blk)?;
        b[off..off + inode.raw.len()].copy_from_slice(&inode.raw);
        self.write_blocks(blk, &b)
    }

    fn new_inode(&mut self, ino: u32, mode: u16, links: u16) -> Inode {
        let mut raw = vec![0u8; self.geo.inode_size as usize];
        put16(&mut raw, ino::MODE, mode);
        put16(&mut raw, ino::LINKS, links);
        for f in [ino::ATIME, ino::CTIME, ino::MTIME] {
            put32(&mut raw, f, self.now);
        }
        self.generation = self
            .generation
            .wrapping_mul(1_103_515_245)
            .wrapping_add(12345);
        put32(&mut raw, ino::GENERATION, self.generation);
        if self.geo.inode_size > 128 {
            let want = le16(&self.sb, sb::WANT_EXTRA_ISIZE);
            let max = (self.geo.inode_size - 128) as u16;
            let extra = if want >= 4 && want <= max && want.is_multiple_of(4) {
                want
            } else {
                32.min(max)
            };
            put16(&mut raw, ino::EXTRA_ISIZE, extra);
        }
        Inode { ino, raw }
    }

    fn group_of_ino(&self, ino: u32) -> u32 {
        (ino - 1) / self.geo.inodes_per_group
    }

    // ---- block maps ----

    fn map_path(&self, lblk: u64) -> Result<MapPath> {
        let p = self.geo.ptrs_per_block();
        let mut idx = [0u32; 3];
        if lblk < NDIR as u64 {
            return Ok(MapPath {
                top: lblk as usize,
                idx,
                levels: 0,
            });
        }
        let mut rest = lblk - NDIR as u64;
        let mut span = p;
        for levels in 1..=3usize {
            if rest < span {
                let mut r = rest;
                for l in (0..levels).rev() {
                    idx[l] = (r % p) as u32;
                    r /= p;
                }
                return Ok(MapPath {
                    top: NDIR + levels - 1,
                    idx,
                    levels,
                });
            }
            rest -= span;
            span *= p;
        }
        Err(Error::FileTooLarge)
    }

    /// The physical block of logical block `lblk`, or `None` for a hole.
    pub(crate) fn bmap(&mut self, inode: &Inode, lblk: u64) -> Result<Option<u32>> {
        let path = self.map_path(lblk)?;
        let mut ptr = inode.block(path.top);
        for &i in &path.idx[..path.levels] {
            if ptr == 0 {
                return Ok(None);
            }
            ptr = self.read_ptr(ptr, i)?;
        }
        if ptr == 0 {
            return Ok(None);
        }
        self.check_block(ptr)?;
        Ok(Some(ptr))
    }

    fn txn_block<'a>(&mut self, txn: &'a mut Txn, blk: u32) -> Result<&'a mut (Vec<u8>, bool)> {
        use alloc::collections::btree_map::Entry;
        match txn.meta.entry(blk) {
            Entry::Vacant(v) => {
                self.check_block(blk)?;
                let data = self.read_block(blk)?;
                Ok(v.insert((data, false)))
            }
            Entry::Occupied(o) => Ok(o.into_mut()),
        }
    }

    fn txn_alloc(
        &mut self,
        inode: &mut Inode,
        txn: &mut Txn,
        goal: &mut u32,
        indirect: bool,
    ) -> Result<u32> {
        let b = self.alloc_block(*goal)?;
        txn.allocated.push(b);
        if indirect {
            txn.meta
                .insert(b, (vec![0u8; self.geo.block_size as usize], true));
        }
        *goal = b + 1;
        let n = inode.blocks512() + u64::from(self.geo.block_size / 512);
        inode.set_blocks512(n);
        Ok(b)
    }

    /// The physical block of `lblk`, allocating it (and indirect blocks) if it is a hole.
    /// Changes stay in `inode` and `txn` until the caller commits.
    fn bmap_alloc(
        &mut self,
        inode: &mut Inode,
        lblk: u64,
        txn: &mut Txn,
        goal: &mut u32,
    ) -> Result<u32> {
        let path = self.map_path(lblk)?;
        let mut ptr = inode.block(path.top);
        if ptr == 0 {
            ptr = self.txn_alloc(inode, txn, goal, path.levels > 0)?;
            inode.set_block(path.top, ptr);
        }
        for (l, &i) in path.idx[..path.levels].iter().enumerate() {
            let mut child = le32(&self.txn_block(txn, ptr)?.0, i as usize * 4);
            if child == 0 {
                child = self.txn_alloc(inode, txn, goal, l + 1 < path.levels)?;
                let e = self.txn_block(txn, ptr)?;
                put32(&mut e.0, i as usize * 4, child);
                e.1 = true;
            }
            ptr = child;
        }
        self.check_block(ptr)?;
        Ok(ptr)
    }

    fn rollback(&mut self, txn: Txn) -> Result<()> {
        for b in txn.allocated {
            self.free_block(b)?;
        }
        Ok(())
    }

    fn commit_meta(&mut self, txn: &Txn) -> Result<()> {
        for (&b, (data, dirty)) in &txn.meta {
            if *dirty {
                self.write_blocks(b, data)?;
            }
        }
        Ok(())
    }

    /// Frees the subtree of indirect block `blk` at `level` (1 = single indirect),
    /// pushing every block into `freed`.
    fn collect_subtree(&mut self, blk: u32, level: u32, freed: &mut Vec<u32>) -> Result<()> {
        self.check_block(blk)?;
        if level > 0 {
            let data = self.read_block(blk)?;
            for c in data.chunks_exact(4) {
                let child = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if child != 0 {
                    self.collect_subtree(child, level - 1, freed)?;
                }
            }
        }
        freed.push(blk);
        Ok(())
    }

    /// Drops every mapping at or past logical block `keep` below indirect block `blk`
    /// (covering logical blocks from `base`); returns whether `blk` now maps nothing.
    fn trim(
        &mut self,
        blk: u32,
        level: u32,
        base: u64,
        keep: u64,
        txn: &mut Txn,
        freed: &mut Vec<u32>,
    ) -> Result<bool> {
        let p = self.geo.ptrs_per_block();
        let span = p.pow(level - 1);
        let mut empty = true;
        for i in 0..p {
            let child_base = base + i * span;
            let child = le32(&self.txn_block(txn, blk)?.0, i as usize * 4);
            if child == 0 {
                continue;
            }
            let drop = if keep <= child_base {
                self.collect_subtree(child, level - 1, freed)?;
                true
            } else if keep < child_base + span && level > 1 {
                let e = self.trim(child, level - 1, child_base, keep, txn, freed)?;
                if e {
                    freed.push(child);
                }
                e
            } else {
                false
            };
            if drop {
                let e = self.txn_block(txn, blk)?;
                put32(&mut e.0, i as usize * 4, 0);
                e.1 = true;
            } else {
                empty = false;
            }
        }
        Ok(empty)
    }

    /// Unmaps every logical block at or past `keep` (in memory: `inode`, `txn`, `freed`).
    fn unmap_from(
        &mut self,
        inode: &mut Inode,
        keep: u64,
        txn: &mut Txn,
        freed: &mut Vec<u32>,
    ) -> Result<()> {
        let before = freed.len();
        for i in 0..NDIR {
            let b = inode.block(i);
            if b != 0 && keep <= i as u64 {
                self.check_block(b)?;
                freed.push(b);
                inode.set_block(i, 0);
            }
        }
        let p = self.geo.ptrs_per_block();
        let mut base = NDIR as u64;
        let mut span = p;
        for level in 1..=3u32 {
            let slot = NDIR + level as usize - 1;
            let b = inode.block(slot);
            if b != 0 {
                if keep <= base {
                    self.collect_subtree(b, level, freed)?;
                    inode.set_block(slot, 0);
                } else if keep < base + span && self.trim(b, level, base, keep, txn, freed)? {
                    freed.push(b);
                    inode.set_block(slot, 0);
                }
            }
            base += span;
            span *= p;
        }
        let gone = (freed.len() - before) as u64 * u64::from(self.geo.block_size / 512);
        inode.set_blocks512(inode.blocks512().saturating_sub(gone));
        Ok(())
    }

    // ---- files ----

    fn lookup_inner(&mut self, path: &str) -> Result<u32> {
        let mut cur = ROOT_INO;
        for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let dir = self.read_inode(cur)?;
            if !dir.is_dir() {
                return Err(Error::NotDir);
            }
            cur = self
                .dir_find(&dir, comp.as_bytes())?
                .ok_or(Error::NotFound)?
                .0;
        }
        Ok(cur)
    }

    fn stat_inner(&mut self, ino: u32) -> Result<Stat> {
        let i = self.read_inode(ino)?;
        let kind = match i.mode() & S_IFMT {
            S_IFREG => FileKind::File,
            S_IFDIR => FileKind::Dir,
            S_IFLNK => FileKind::Symlink,
            _ => FileKind::Other,
        };
        Ok(Stat {
            ino,
            mode: i.mode(),
            kind,
            size: i.size(),
            links: i.links(),
            blocks: i.blocks512(),
            uid: le16(&i.raw, 2),
            gid: le16(&i.raw, 24),
            mtime: le32(&i.raw, ino::MTIME),
        })
    }

    fn read_at_inner(&mut self, ino: u32, off: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.read_inode(ino)?;
        inode.check_supported()?;
        let size = inode.size();
        if !inode.has_block_map(self.geo.block_size) {
            // Fast symlink: the target is stored in i_block.
            let data = &inode.raw[ino::BLOCK..ino::BLOCK + 60];
            let len = (size.min(60)) as usize;
            let start = (off.min(len as u64)) as usize;
            let n = buf.len().min(len - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            return Ok(n);
        }
        if off >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        let bs = u64::from(self.geo.block_size);
        let mut done = 0usize;
        while done < n {
            let pos = off + done as u64;
            let lblk = pos / bs;
            let in_blk = (pos % bs) as usize;
            let phys = self.bmap(&inode, lblk)?;
            let chunk = (bs as usize - in_blk).min(n - done);
            match phys {
                None => buf[done..done + chunk].fill(0),
                Some(p) if in_blk == 0 && chunk == bs as usize => {
                    // Whole blocks: extend over physically contiguous ones.
                    let mut run = 1u64;
                    while done + ((run + 1) * bs) as usize <= n
                        && self.bmap(&inode, lblk + run)? == p.checked_add(run as u32)
                    {
                        run += 1;
                    }
                    let len = (run * bs) as usize;
                    self.read_blocks(p, &mut buf[done..done + len])?;
                    done += len;
                    continue;
                }
                Some(p) => {
                    let b = self.read_block(p)?;
                    buf[done..done + chunk].copy_from_slice(&b[in_blk..in_blk + chunk]);
                }
            }
            done += chunk;
        }
        Ok(n)
    }

    fn writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn size_limit(&self, inode: &Inode) -> u64 {
        let map = self.geo.max_map_bytes();
        if !inode.is_reg() {
            map.min(u64::from(u32::MAX))
        } else if self.geo.ro_compat & RO_LARGE_FILE == 0 {
            map.min((1 << 31) - 1)
        } else {
            map
        }
    }

    /// The inode `ino` for a change of its data: the filesystem writable,
    /// the inode supported and a regular file (`IsDir` for a directory,
    /// `Unsupported(what)` for anything else).
    fn regular_for_change(&mut self, ino: u32, what: &'static str) -> Result<Inode> {
        self.writable()?;
        let inode = self.read_inode(ino)?;
        inode.check_supported()?;
        if inode.is_dir() {
            return Err(Error::IsDir);
        }
        if !inode.is_reg() {
            return Err(Error::Unsupported(what));
        }
        Ok(inode)
    }

    fn write_at_inner(&mut self, ino: u32, off: u64, data: &[u8]) -> Result<usize> {
        let mut inode = self.regular_for_change(ino, "write to a file that is not regular")?;
        self.write_inode_data(&mut inode, off, data)?;
        Ok(data.len())
    }

    fn write_inode_data(&mut self, inode: &mut Inode, off: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = off
            .checked_add(data.len() as u64)
            .ok_or(Error::FileTooLarge)?;
        if end > self.size_limit(inode) {
            return Err(Error::FileTooLarge);
        }
        let bs = u64::from(self.geo.block_size);
        let (first, last) = (off / bs, (end - 1) / bs);
        let mut txn = Txn::default();
        let mut goal = match first.checked_sub(1) {
            Some(prev) => self.bmap(inode, prev)?.map(|b| b + 1),
            None => None,
        }
        .unwrap_or_else(|| self.geo.group_first_block(self.group_of_ino(inode.ino)));
        let mut phys = Vec::with_capacity((last - first + 1) as usize);
        for l in first..=last {
            match self.bmap_alloc(inode, l, &mut txn, &mut goal) {
                Ok(p) => phys.push(p),
                Err(e) => {
                    self.rollback(txn)?;
                    return Err(e);
                }
            }
        }
        // 1. bitmaps, 2. data, 3. indirect blocks and the inode.
        self.flush_bitmaps()?;
        let bsz = bs as usize;
        let mut i = 0usize;
        while i < phys.len() {
            let l = first + i as u64;
            let b_off = if l == first { (off % bs) as usize } else { 0 };
            let b_end = if l == last {
                ((end - 1) % bs) as usize + 1
            } else {
                bsz
            };
            let src = (l * bs + b_off as u64 - off) as usize;
            if b_off == 0 && b_end == bsz {
                let mut j = i + 1;
                while j < phys.len()
                    && phys[j] == phys[j - 1] + 1
                    && (first + j as u64 != last || (end % bs) == 0)
                {
                    j += 1;
                }
                let len = (j - i) * bsz;
                self.write_blocks(phys[i], &data[src..src + len])?;
                i = j;
                continue;
            }
            let mut b = if txn.allocated.contains(&phys[i]) {
                vec![0u8; bsz]
            } else {
                self.read_block(phys[i])?
            };
            b[b_off..b_end].copy_from_slice(&data[src..src + (b_end - b_off)]);
            self.write_blocks(phys[i], &b)?;
            i += 1;
        }
        self.commit_meta(&txn)?;
        if end > inode.size() {
            inode.set_size(end);
        }
        put32(&mut inode.raw, ino::MTIME, self.now);
        put32(&mut inode.raw, ino::CTIME, self.now);
        self.write_inode(inode)
    }

    fn truncate_inner(&mut self, ino: u32, size: u64) -> Result<()> {
        let mut inode = self.regular_for_change(ino, "truncate of a file that is not regular")?;
        if size > self.size_limit(&inode) {
            return Err(Error::FileTooLarge);
        }
        if size < inode.size() {
            let bs = u64::from(self.geo.block_size);
            if !size.is_multiple_of(bs)
                && let Some(p) = self.bmap(&inode, size / bs)?
            {
                let mut b = self.read_block(p)?;
                b[(size % bs) as usize..].fill(0);
                self.write_blocks(p, &b)?;
            }
            self.free_from(&mut inode, size.div_ceil(bs))?;
        }
        inode.set_size(size);
        put32(&mut inode.raw, ino::MTIME, self.now);
        put32(&mut inode.raw, ino::CTIME, self.now);
        self.write_inode(&inode)
    }

    /// Unmaps blocks from `keep` on, writes the pointers and the inode, then frees the bits.
    fn free_from(&mut self, inode: &mut Inode, keep: u64) -> Result<()> {
        let mut txn = Txn::default();
        let mut freed = Vec::new();
        self.unmap_from(inode, keep, &mut txn, &mut freed)?;
        self.commit_meta(&txn)?;
        self.write_inode(inode)?;
        for b in freed {
            self.free_block(b)?;
        }
        self.flush_bitmaps()
    }

    /// Frees an inode whose last link went: its blocks, its xattr block, then the inode.
    fn release_inode(&mut self, mut inode: Inode) -> Result<()> {
        let dir = inode.is_dir();
        inode.set_links(0);
        put32(&mut inode.raw, ino::DTIME, self.now.max(1));
        let mut freed = Vec::new();
        let mut txn = Txn::default();
        if inode.has_block_map(self.geo.block_size) {
            inode.check_supported()?;
            self.unmap_from(&mut inode, 0, &mut txn, &mut freed)?;
        }
        let acl = inode.file_acl();
        if acl != 0 {
            self.check_block(acl)?;
            let mut b = self.read_block(acl)?;
            let refs = le32(&b, 4);
            if le32(&b, 0) == 0xEA02_0000 && refs > 1 {
                put32(&mut b, 4, refs - 1);
                self.write_blocks(acl, &b)?;
            } else {
                freed.push(acl);
            }
            put32(&mut inode.raw, ino::FILE_ACL, 0);
            let n = inode
                .blocks512()
                .saturating_sub(u64::from(self.geo.block_size / 512));
            inode.set_blocks512(n);
        }
        inode.set_size(0);
        self.write_inode(&inode)?;
        for b in freed {
            self.free_block(b)?;
        }
        self.free_inode_bit(inode.ino, dir)?;
        self.flush_bitmaps()
    }

    // ---- directories ----

    fn filetype(&self) -> bool {
        self.geo.incompat & INCOMPAT_FILETYPE != 0
    }

    /// Calls `f` with every block of directory `dir` (logical index, physical, data)
    /// until it returns `Some`.
    fn dir_blocks<T>(
        &mut self,
        dir: &Inode,
        mut f: impl FnMut(&mut Self, u32, &mut Vec<u8>, &[RawDirent]) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        dir.check_supported()?;
        let bs = u64::from(self.geo.block_size);
        let size = dir.size();
        if !size.is_multiple_of(bs) {
            return Err(Error::Corrupt(
                "directory size not a multiple of the block size",
            ));
        }
        for l in 0..size / bs {
            let p = self
                .bmap(dir, l)?
                .ok_or(Error::Corrupt("hole in a directory"))?;
            let mut b = self.read_block(p)?;
            let ents = parse_dir_block(&b, self.filetype(), self.geo.inodes_count)?;
            if let Some(t) = f(self, p, &mut b, &ents)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    fn dir_find(&mut self, dir: &Inode, name: &[u8]) -> Result<Option<(u32, u8)>> {
        self.dir_blocks(dir, |_, _, b, ents| {
            Ok(ents
                .iter()
                .find(|e| e.inode != 0 && &b[e.off + 8..e.off + 8 + e.name_len] == name)
                .map(|e| (e.inode, e.file_type)))
        })
    }

    fn readdir_inner(&mut self, ino: u32) -> Result<Vec<DirEntry>> {
        let dir = self.read_inode(ino)?;
        if !dir.is_dir() {
            return Err(Error::NotDir);
        }
        let mut out = Vec::new();
        self.dir_blocks(&dir, |_, _, b, ents| {
            for e in ents.iter().filter(|e| e.inode != 0) {
                out.push(DirEntry {
                    name: b[e.off + 8..e.off + 8 + e.name_len].to_vec(),
                    ino: e.inode,
                    file_type: e.file_type,
                });
            }
            Ok(None::<()>)
        })?;
        Ok(out)
    }

    fn dir_add(&mut self, dir_ino: u32, name: &[u8], ino: u32, ftype: u8) -> Result<()> {
        let mut dir = self.read_inode(dir_ino)?;
        if dir.flags() & FL_INDEX != 0 {
            // A linear change invalidates an htree index: drop the index flag (the tree's
            // blocks remain valid linear directory blocks).
            let f = dir.flags() & !FL_INDEX;
            put32(&mut dir.raw, ino::FLAGS, f);
        }
        put32(&mut dir.raw, ino::MTIME, self.now);
        put32(&mut dir.raw, ino::CTIME, self.now);
        self.write_inode(&dir)?;
        let need = RawDirent::needed(name.len());
        let ft = self.filetype();
        let done = self.dir_blocks(&dir, |fs, p, b, ents| {
            for e in ents {
                let used = if e.inode == 0 {
                    0
                } else {
                    RawDirent::needed(e.name_len)
                };
                if e.rec_len >= used + need {
                    if used == 0 {
                        put_dirent(b, e.off, ino, e.rec_len, name, ftype, ft);
                    } else {
                        put16(b, e.off + 4, used as u16);
                        put_dirent(b, e.off + used, ino, e.rec_len - used, name, ftype, ft);
                    }
                    fs.write_blocks(p, b)?;
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })?;
        if done.is_none() {
            let bs = self.geo.block_size as usize;
            let mut b = vec![0u8; bs];
            put_dirent(&mut b, 0, ino, bs, name, ftype, ft);
            let size = dir.size();
            self.write_inode_data(&mut dir, size, &b)?;
        }
        Ok(())
    }

    pub(crate) fn dir_remove_name(&mut self, dir: &Inode, name: &[u8]) -> Result<u32> {
        self.dir_remove(dir, name)
    }

    /// Removes `name` from `dir`; returns the inode it named.
    fn dir_remove(&mut self, dir: &Inode, name: &[u8]) -> Result<u32> {
        self.dir_blocks(dir, |fs, p, b, ents| {
            for (k, e) in ents.iter().enumerate() {
                if e.inode != 0 && &b[e.off + 8..e.off + 8 + e.name_len] == name {
                    if k == 0 {
                        put32(b, e.off, 0);
                    } else {
                        let prev = ents[k - 1];
                        put16(b, prev.off + 4, (prev.rec_len + e.rec_len) as u16);
                    }
                    fs.write_blocks(p, b)?;
                    return Ok(Some(e.inode));
                }
            }
            Ok(None)
        })?
        .ok_or(Error::NotFound)
    }

    /// Splits a path into its parent directory's inode and the last name, validating it.
    fn parent_of<'p>(&mut self, path: &'p str) -> Result<(Inode, &'p [u8])> {
        let trimmed = path.trim_end_matches('/');
        let (parent, name) = match trimmed.rfind('/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => ("", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." || name.contains('\0') {
            return Err(Error::InvalidPath);
        }
        if name.len() > 255 {
            return Err(Error::NameTooLong);
        }
        let pino = self.lookup(parent)?;
        let dir = self.read_inode(pino)?;
        if !dir.is_dir() {
            return Err(Error::NotDir);
        }
        Ok((dir, name.as_bytes()))
    }

    fn create_inner(&mut self, path: &str, perm: u16) -> Result<u32> {
        self.writable()?;
        let (dir, name) = self.parent_of(path)?;
        if self.dir_find(&dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let ino = self.alloc_inode(false, self.group_of_ino(dir.ino))?;
        let inode = self.new_inode(ino, S_IFREG | (perm & 0o7777), 1);
        self.flush_bitmaps()?;
        self.write_inode(&inode)?;
        if let Err(e) = self.dir_add(dir.ino, name, ino, 1) {
            self.release_inode(inode)?;
            return Err(e);
        }
        Ok(ino)
    }

    fn mkdir_inner(&mut self, path: &str) -> Result<u32> {
        self.writable()?;
        let (mut dir, name) = self.parent_of(path)?;
        if self.dir_find(&dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        if dir.links() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        let ino = self.alloc_inode(true, 0)?;
        let blk = match self.alloc_block(self.geo.group_first_block(self.group_of_ino(ino))) {
            Ok(b) => b,
            Err(e) => {
                self.free_inode_bit(ino, true)?;
                return Err(e);
            }
        };
        self.flush_bitmaps()?;
        let bs = self.geo.block_size as usize;
        let ft = self.filetype();
        let mut b = vec![0u8; bs];
        put_dirent(&mut b, 0, ino, 12, b".", 2, ft);
        put_dirent(&mut b, 12, dir.ino, bs - 12, b"..", 2, ft);
        self.write_blocks(blk, &b)?;
        let mut inode = self.new_inode(ino, S_IFDIR | 0o755, 2);
        inode.set_block(0, blk);
        inode.set_size(bs as u64);
        inode.set_blocks512(u64::from(self.geo.block_size / 512));
        self.write_inode(&inode)?;
        dir.set_links(dir.links() + 1);
        self.write_inode(&dir)?;
        if let Err(e) = self.dir_add(dir.ino, name, ino, 2) {
            let mut dir = self.read_inode(dir.ino)?;
            dir.set_links(dir.links().saturating_sub(1));
            self.write_inode(&dir)?;
            self.release_inode(inode)?;
            return Err(e);
        }
        Ok(ino)
    }

    fn unlink_inner(&mut self, path: &str) -> Result<()> {
        self.writable()?;
        let (dir, name) = self.parent_of(path)?;
        let (ino, _) = self.dir_find(&dir, name)?.ok_or(Error::NotFound)?;
        let mut inode = self.read_inode(ino)?;
        if inode.is_dir() {
            return Err(Error::IsDir);
        }
        self.dir_remove(&dir, name)?;
        inode.set_links(inode.links().saturating_sub(1));
        put32(&mut inode.raw, ino::CTIME, self.now);
        if inode.links() == 0 {
            self.release_inode(inode)
        } else {
            self.write_inode(&inode)
        }
    }

    fn rmdir_inner(&mut self, path: &str) -> Result<()> {
        self.writable()?;
        let (mut dir, name) = self.parent_of(path)?;
        let (ino, _) = self.dir_find(&dir, name)?.ok_or(Error::NotFound)?;
        let target = self.read_inode(ino)?;
        if !target.is_dir() {
            return Err(Error::NotDir);
        }
        let busy = self.dir_blocks(&target, |_, _, b, ents| {
            Ok(ents
                .iter()
                .find(|e| {
                    e.inode != 0 && !matches!(&b[e.off + 8..e.off + 8 + e.name_len], b"." | b"..")
                })
                .map(|_| ()))
        })?;
        if busy.is_some() {
            return Err(Error::NotEmpty);
        }
        self.dir_remove(&dir, name)?;
        let dir_ino = dir.ino;
        dir = self.read_inode(dir_ino)?;
        dir.set_links(dir.links().saturating_sub(1));
        self.write_inode(&dir)?;
        self.release_inode(target)
    }

    /// Moves directory `d` from `sdir/sname` to `ddir/dname`. Order: the new parent's link
    /// count, the new name, `d`'s `..`, the old name, the old parent's link count — a stop
    /// leaves link counts too high, or two names of which `..` tells the live one (both
    /// repaired by the check).
    fn rename_dir(
        &mut self,
        sdir: &Inode,
        sname: &[u8],
        d: Inode,
        ddir: &Inode,
        dname: &[u8],
    ) -> Result<()> {
        let cross = sdir.ino != ddir.ino;
        // Not into itself or below it.
        let mut cur = ddir.ino;
        for _ in 0..=self.geo.inodes_count.min(1 << 16) {
            if cur == d.ino {
                return Err(Error::InvalidPath);
            }
            if cur == ROOT_INO {
                break;
            }
            let c = self.read_inode(cur)?;
            cur = self
                .dir_find(&c, b"..")?
                .ok_or(Error::Corrupt("directory without .."))?
                .0;
        }
        if cur != ROOT_INO {
            return Err(Error::Corrupt("directory loop"));
        }
        let old = match self.dir_find(ddir, dname)? {
            None => None,
            Some((e, _)) => {
                let e = self.read_inode(e)?;
                if !e.is_dir() {
                    return Err(Error::NotDir);
                }
                let busy = self.dir_blocks(&e, |_, _, b, ents| {
                    Ok(ents
                        .iter()
                        .find(|x| {
                            x.inode != 0
                                && !matches!(&b[x.off + 8..x.off + 8 + x.name_len], b"." | b"..")
                        })
                        .map(|_| ()))
                })?;
                if busy.is_some() {
                    return Err(Error::NotEmpty);
                }
                Some(e)
            }
        };
        if cross {
            let mut p = self.read_inode(ddir.ino)?;
            if p.links() >= LINK_MAX {
                return Err(Error::TooManyLinks);
            }
            p.set_links(p.links() + 1);
            self.write_inode(&p)?;
        }
        let added = match old {
            Some(_) => self.dir_replace(ddir, dname, d.ino, 2),
            None => self.dir_add(ddir.ino, dname, d.ino, 2),
        };
        if let Err(e) = added {
            if cross {
                let mut p = self.read_inode(ddir.ino)?;
                p.set_links(p.links().saturating_sub(1));
                self.write_inode(&p)?;
            }
            return Err(e);
        }
        if cross {
            self.dir_replace(&d, b"..", ddir.ino, 2)?;
        }
        let s = self.read_inode(sdir.ino)?;
        self.dir_remove(&s, sname)?;
        if cross {
            let mut s = self.read_inode(sdir.ino)?;
            s.set_links(s.links().saturating_sub(1));
            self.write_inode(&s)?;
        }
        if let Some(o) = old {
            self.release_inode(o)?;
            let mut p = self.read_inode(ddir.ino)?;
            p.set_links(p.links().saturating_sub(1));
            self.write_inode(&p)?;
        }
        Ok(())
    }

    /// Replaces the inode an existing entry names (one block write).
    fn dir_replace(&mut self, dir: &Inode, name: &[u8], ino: u32, ftype: u8) -> Result<()> {
        let ft = self.filetype();
        self.dir_blocks(dir, |fs, p, b, ents| {
            for e in ents {
                if e.inode != 0 && &b[e.off + 8..e.off + 8 + e.name_len] == name {
                    put32(b, e.off, ino);
                    if ft {
                        b[e.off + 7] = ftype;
                    }
                    fs.write_blocks(p, b)?;
                    return Ok(Some(()));
                }
            }
            Ok(None)
        })?
        .ok_or(Error::NotFound)
    }

    fn symlink_inner(&mut self, target: &str, path: &str) -> Result<u32> {
        self.writable()?;
        let t = target.as_bytes();
        if t.is_empty() || t.contains(&0) {
            return Err(Error::InvalidPath);
        }
        if t.len() >= self.geo.block_size as usize {
            return Err(Error::NameTooLong);
        }
        let (dir, name) = self.parent_of(path)?;
        if self.dir_find(&dir, name)?.is_some() {
            return Err(Error::Exists);
        }
        let ino = self.alloc_inode(false, self.group_of_ino(dir.ino))?;
        let mut inode = self.new_inode(ino, S_IFLNK | 0o777, 1);
        inode.set_size(t.len() as u64);
        if t.len() < 60 {
            // Fast symlink: the target lives in i_block.
            inode.raw[ino::BLOCK..ino::BLOCK + t.len()].copy_from_slice(t);
            self.flush_bitmaps()?;
        } else {
            let goal = self.geo.group_first_block(self.group_of_ino(ino));
            let blk = match self.alloc_block(goal) {
                Ok(b) => b,
                Err(e) => {
                    self.free_inode_bit(ino, false)?;
                    return Err(e);
                }
            };
            self.flush_bitmaps()?;
            let mut b = vec![0u8; self.geo.block_size as usize];
            b[..t.len()].copy_from_slice(t);
            self.write_blocks(blk, &b)?;
            inode.set_block(0, blk);
            inode.set_blocks512(u64::from(self.geo.block_size / 512));
        }
        self.write_inode(&inode)?;
        if let Err(e) = self.dir_add(dir.ino, name, ino, 7) {
            self.release_inode(inode)?;
            return Err(e);
        }
        Ok(ino)
    }

    fn rename_inner(&mut self, from: &str, to: &str) -> Result<()> {
        self.writable()?;
        let (sdir, sname) = self.parent_of(from)?;
        let (ino, ftype) = self.dir_find(&sdir, sname)?.ok_or(Error::NotFound)?;
        let mut src = self.read_inode(ino)?;
        let (ddir, dname) = self.parent_of(to)?;
        if sdir.ino == ddir.ino && sname == dname {
            return Ok(());
        }
        if src.is_dir() {
            return self.rename_dir(&sdir, sname, src, &ddir, dname);
        }
        let existing = self.dir_find(&ddir, dname)?;
        let mut old = None;
        if let Some((eino, _)) = existing {
            if eino == ino {
                return Ok(()); // two names of one file: POSIX says do nothing
            }
            let e = self.read_inode(eino)?;
            if e.is_dir() {
                return Err(Error::IsDir);
            }
            old = Some(e);
        }
        if src.links() >= LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        // The file gains its new name before it loses the old one, its link count covering
        // both in between: a stop leaves a link count too high (repaired), never too low.
        src.set_links(src.links() + 1);
        self.write_inode(&src)?;
        let added = match old {
            Some(_) => self.dir_replace(&ddir, dname, ino, ftype),
            None => self.dir_add(ddir.ino, dname, ino, ftype),
        };
        if let Err(e) = added {
            src.set_links(src.links() - 1);
            self.write_inode(&src)?;
            return Err(e);
        }
        let sdir = self.read_inode(sdir.ino)?;
        self.dir_remove(&sdir, sname)?;
        let mut src = self.read_inode(ino)?;
        src.set_links(src.links().saturating_sub(1));
        put32(&mut src.raw, ino::CTIME, self.now);
        self.write_inode(&src)?;
        if let Some(mut o) = old {
            o.set_links(o.links().saturating_sub(1));
            if o.links() == 0 {
                self.release_inode(o)?;
            } else {
                self.write_inode(&o)?;
            }
        }
        Ok(())
    }
}

/// The public operations: each records a corruption it ran into (see [`Fs::note`]).
impl<D: BlockDevice> Fs<D> {
    /// Marks the superblock `STATE_ERROR` (written at the next sync/unmount) when `r` is a
    /// corruption found on a read-write mount, so that the next mount runs the check.
    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(Error::Corrupt(_)) = r
            && !self.read_only
        {
            let st = le16(&self.sb, sb::STATE) | STATE_ERROR;
            put16(&mut self.sb, sb::STATE, st);
        }
        r
    }

    /// Looks up `path` (absolute, or relative to the root) and returns its inode number.
    pub fn lookup(&mut self, path: &str) -> Result<u32> {
        let r = self.lookup_inner(path);
        self.note(r)
    }

    /// `stat` of an inode.
    pub fn stat(&mut self, ino: u32) -> Result<Stat> {
        let r = self.stat_inner(ino);
        self.note(r)
    }

    /// Reads from `off`; returns the bytes read (0 at or past the end). Holes read as zeros.
    pub fn read_at(&mut self, ino: u32, off: u64, buf: &mut [u8]) -> Result<usize> {
        let r = self.read_at_inner(ino, off, buf);
        self.note(r)
    }

    /// Writes all of `data` at `off`, growing the file; skipped ranges stay holes.
    /// On an error nothing of the write is visible (blocks allocated for it are freed).
    pub fn write_at(&mut self, ino: u32, off: u64, data: &[u8]) -> Result<usize> {
        let r = self.write_at_inner(ino, off, data);
        self.note(r)
    }

    /// Sets the file's size: shrinking frees the blocks past it (and zeroes the tail of
    /// the last block), growing leaves a hole.
    pub fn truncate(&mut self, ino: u32, size: u64) -> Result<()> {
        let r = self.truncate_inner(ino, size);
        self.note(r)
    }

    /// Lists a directory (without unused entries; `.` and `..` included).
    pub fn readdir(&mut self, ino: u32) -> Result<Vec<DirEntry>> {
        let r = self.readdir_inner(ino);
        self.note(r)
    }

    /// Creates an empty regular file with permission bits `perm`; returns its inode.
    pub fn create(&mut self, path: &str, perm: u16) -> Result<u32> {
        let r = self.create_inner(path, perm);
        self.note(r)
    }

    /// Creates a directory (mode 0755); returns its inode.
    pub fn mkdir(&mut self, path: &str) -> Result<u32> {
        let r = self.mkdir_inner(path);
        self.note(r)
    }

    /// Removes a name that is not a directory, freeing the inode with its last link.
    pub fn unlink(&mut self, path: &str) -> Result<()> {
        let r = self.unlink_inner(path);
        self.note(r)
    }

    /// Removes an empty directory.
    pub fn rmdir(&mut self, path: &str) -> Result<()> {
        let r = self.rmdir_inner(path);
        self.note(r)
    }

    /// Creates a symbolic link at `path` pointing to `target` (stored in the inode below
    /// 60 bytes, else in one block); returns its inode.
    pub fn symlink(&mut self, target: &str, path: &str) -> Result<u32> {
        let r = self.symlink_inner(target, path);
        self.note(r)
    }

    /// Renames a file, symlink or directory, replacing a non-directory (or, for a
    /// directory, an empty directory) at `to`. A directory cannot move below itself.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let r = self.rename_inner(from, to);
        self.note(r)
    }
}
