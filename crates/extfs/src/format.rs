//! `mkfs`: writes a fresh ext2 filesystem (revision 1, features `filetype`, `sparse_super`,
//! `large_file`; no resize inode, no journal) over a whole [`BlockDevice`], with an empty
//! root directory and `lost+found` — what dom0's `xen-create-image` puts inside a new
//! `disk.img`.
//!
//! Layout per group: superblock and descriptor copies (groups 0, 1 and powers of 3, 5, 7),
//! block bitmap, inode bitmap, inode table, then data. A last group too small to hold its
//! own metadata and some data is dropped, as mke2fs does. Sizes follow mke2fs.conf's
//! defaults: 1 KiB blocks, 128-byte inodes and one inode per 4 KiB below 512 MiB; 4 KiB
//! blocks, 256-byte inodes and one inode per 16 KiB above.

use alloc::vec;
use alloc::vec::Vec;

use crate::dev::{BlockDevice, SECTOR_SIZE};
use crate::error::{Error, Result};
use crate::layout::*;

/// Options for [`format`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// Block size (1024, 2048 or 4096); `None` picks by size as mke2fs does.
    pub block_size: Option<u32>,
    /// Seconds since the epoch for the timestamps.
    pub now: u32,
    /// The filesystem UUID (the caller supplies the randomness).
    pub uuid: [u8; 16],
    /// Volume label (up to 16 bytes; longer is cut).
    pub label: [u8; 16],
    /// The device already reads as zeros (a new sparse image file): the inode tables are
    /// not written, so they stay holes.
    pub assume_zeroed: bool,
}

const FIRST_INO: u32 = 11;

/// Formats the whole device; returns the geometry written.
pub fn format<D: BlockDevice>(dev: &mut D, opts: &FormatOptions) -> Result<Geometry> {
    let bytes = dev.sector_count().saturating_mul(SECTOR_SIZE as u64);
    let big = bytes >= 512 << 20;
    let bs = opts.block_size.unwrap_or(if big { 4096 } else { 1024 });
    if !matches!(bs, 1024 | 2048 | 4096) {
        return Err(Error::Unsupported("block size other than 1, 2 or 4 KiB"));
    }
    let (inode_size, inode_ratio) = if big { (256u32, 16384u64) } else { (128, 4096) };
    let fdb = u32::from(bs == 1024);
    let mut blocks = u32::try_from(bytes / u64::from(bs)).unwrap_or(u32::MAX);
    let bpg = bs * 8;
    let per_iblock = bs / inode_size;
    // Inodes per group: the ratio's share, a whole number of inode-table blocks and of
    // bitmap bytes, at most one bitmap block.
    let layout = |blocks: u32| -> Option<(u32, u32, u32)> {
        let groups = blocks.checked_sub(fdb)?.div_ceil(bpg);
        if groups == 0 {
            return None;
        }
        let inodes =
            (u64::from(blocks) * u64::from(bs) / inode_ratio).max(u64::from(FIRST_INO + 5));
        let mut ipg = u64::from(inodes.div_ceil(u64::from(groups)) as u32).max(16);
        let unit = u64::from(per_iblock.max(8));
        ipg = ipg.div_ceil(unit) * unit;
        let ipg = ipg.min(u64::from(bpg)) as u32;
        let itable = (ipg * inode_size).div_ceil(bs);
        Some((groups, ipg, itable))
    };
    let (mut groups, mut ipg, mut itable) = layout(blocks).ok_or(Error::NoSpace)?;
    let gdt_blocks = |groups: u32| (groups as usize * DESC_SIZE).div_ceil(bs as usize) as u32;
    // The last group must hold its metadata and some data, else it is dropped.
    let last = (blocks - fdb) - (groups - 1) * bpg;
    let overhead = 1 + gdt_blocks(groups) + 2 + itable;
    if last < overhead + 50 && groups > 1 {
        blocks -= last;
        (groups, ipg, itable) = layout(blocks).ok_or(Error::NoSpace)?;
    }
    let gdtb = gdt_blocks(groups);
    if blocks < fdb + 1 + gdtb + 2 + itable + 8 {
        return Err(Error::NoSpace);
    }

    let mut sb = vec![0u8; 1024];
    put32(&mut sb, sb::INODES_COUNT, groups * ipg);
    put32(&mut sb, sb::BLOCKS_COUNT, blocks);
    put32(&mut sb, sb::R_BLOCKS_COUNT, blocks / 20);
    put32(&mut sb, sb::FIRST_DATA_BLOCK, fdb);
    put32(&mut sb, sb::LOG_BLOCK_SIZE, bs.trailing_zeros() - 10);
    put32(&mut sb, 28, bs.trailing_zeros() - 10); // s_log_frag_size
    put32(&mut sb, sb::BLOCKS_PER_GROUP, bpg);
    put32(&mut sb, 36, bpg); // s_frags_per_group
    put32(&mut sb, sb::INODES_PER_GROUP, ipg);
    put32(&mut sb, sb::WTIME, opts.now);
    put16(&mut sb, 54, 0xffff); // s_max_mnt_count: -1, no forced check
    put16(&mut sb, sb::MAGIC, MAGIC);
    put16(&mut sb, sb::STATE, STATE_VALID);
    put16(&mut sb, 60, 1); // s_errors: continue
    put32(&mut sb, 64, opts.now); // s_lastcheck
    put32(&mut sb, sb::REV_LEVEL, 1);
    put32(&mut sb, sb::FIRST_INO, FIRST_INO);
    put16(&mut sb, sb::INODE_SIZE, inode_size as u16);
    put32(&mut sb, sb::FEATURE_INCOMPAT, INCOMPAT_FILETYPE);
    put32(
        &mut sb,
        sb::FEATURE_RO_COMPAT,
        RO_SPARSE_SUPER | RO_LARGE_FILE,
    );
    sb[104..120].copy_from_slice(&opts.uuid);
    sb[120..136].copy_from_slice(&opts.label);
    put32(&mut sb, 264, opts.now); // s_mkfs_time
    if inode_size > 128 {
        put16(&mut sb, 348, 32); // s_min_extra_isize
        put16(&mut sb, sb::WANT_EXTRA_ISIZE, 32);
    }
    let geo = Geometry::parse(&sb, bytes, true)?;

    // Group metadata positions and descriptors.
    let mut gdt = vec![0u8; gdtb as usize * bs as usize];
    let mut bitmaps = Vec::with_capacity(groups as usize);
    let (mut free_blocks, mut free_inodes) = (0u32, 0u32);
    let mut data_start = 0;
    for g in 0..groups {
        let first = geo.group_first_block(g);
        let n = geo.group_blocks(g);
        let mut used = if geo.group_has_super(g) { 1 + gdtb } else { 0 };
        let bb = first + used;
        let ib = bb + 1;
        let it = ib + 1;
        used += 2 + itable;
        if g == 0 {
            data_start = first + used;
            used += 2; // root and lost+found directory blocks
        }
        if used > n {
            return Err(Error::NoSpace);
        }
        let mut bbm = vec![0u8; bs as usize];
        for i in (0..used).chain(n..bpg) {
            bbm[(i / 8) as usize] |= 1 << (i % 8);
        }
        let mut ibm = vec![0u8; bs as usize];
        let reserved = if g == 0 { FIRST_INO } else { 0 };
        for i in (0..reserved).chain(ipg..bs * 8) {
            ibm[(i / 8) as usize] |= 1 << (i % 8);
        }
        let o = g as usize * DESC_SIZE;
        put32(&mut gdt, o + gd::BLOCK_BITMAP, bb);
        put32(&mut gdt, o + gd::INODE_BITMAP, ib);
        put32(&mut gdt, o + gd::INODE_TABLE, it);
        put16(&mut gdt, o + gd::FREE_BLOCKS, (n - used) as u16);
        put16(&mut gdt, o + gd::FREE_INODES, (ipg - reserved) as u16);
        put16(&mut gdt, o + gd::USED_DIRS, if g == 0 { 2 } else { 0 });
        free_blocks += n - used;
        free_inodes += ipg - reserved;
        bitmaps.push((bb, bbm, ib, ibm, it));
    }
    put32(&mut sb, sb::FREE_BLOCKS, free_blocks);
    put32(&mut sb, sb::FREE_INODES, free_inodes);

    let wr = |dev: &mut D, blk: u32, data: &[u8]| -> Result<()> {
        Ok(dev.write_sectors(u64::from(blk) * u64::from(bs / 512), data)?)
    };
    // Inode tables (zeroed unless the device already is), bitmaps.
    let zeros = vec![0u8; bs as usize * 16];
    for (bb, bbm, ib, ibm, it) in &bitmaps {
        if !opts.assume_zeroed {
            let mut b = 0;
            while b < itable {
                let k = (itable - b).min(16);
                wr(dev, it + b, &zeros[..(k * bs) as usize])?;
                b += k;
            }
        }
        wr(dev, *bb, bbm)?;
        wr(dev, *ib, ibm)?;
    }
    // The root directory and lost+found.
    let (root_blk, lf_blk) = (data_start, data_start + 1);
    let mut d = vec![0u8; bs as usize];
    put_dirent(&mut d, 0, ROOT_INO, 12, b".", 2, true);
    put_dirent(&mut d, 12, ROOT_INO, 12, b"..", 2, true);
    put_dirent(
        &mut d,
        24,
        FIRST_INO,
        bs as usize - 24,
        b"lost+found",
        2,
        true,
    );
    wr(dev, root_blk, &d)?;
    let mut d = vec![0u8; bs as usize];
    put_dirent(&mut d, 0, FIRST_INO, 12, b".", 2, true);
    put_dirent(&mut d, 12, ROOT_INO, bs as usize - 12, b"..", 2, true);
    wr(dev, lf_blk, &d)?;
    let it0 = bitmaps[0].4;
    for (ino, mode, links, blk) in [
        (ROOT_INO, S_IFDIR | 0o755, 3u16, root_blk),
        (FIRST_INO, S_IFDIR | 0o700, 2, lf_blk),
    ] {
        let idx = ino - 1;
        let tblk = it0 + idx / per_iblock;
        let off = ((idx % per_iblock) * inode_size) as usize;
        // Read back: the block is zeroed (or was) and may hold the other inode already.
        let mut b = vec![0u8; bs as usize];
        dev.read_sectors(u64::from(tblk) * u64::from(bs / 512), &mut b)?;
        let r = &mut b[off..off + inode_size as usize];
        r.fill(0);
        put16(r, ino::MODE, mode);
        put16(r, ino::LINKS, links);
        put32(r, ino::SIZE_LO, bs);
        put32(r, ino::BLOCKS_LO, bs / 512);
        put32(r, ino::BLOCK, blk);
        for f in [ino::ATIME, ino::CTIME, ino::MTIME] {
            put32(r, f, opts.now);
        }
        if inode_size > 128 {
            put16(r, ino::EXTRA_ISIZE, 32);
        }
        wr(dev, tblk, &b)?;
    }
    // Superblock and descriptor copies, primary last.
    for g in (0..groups).rev().filter(|&g| geo.group_has_super(g)) {
        put16(&mut sb, 90, g as u16); // s_block_group_nr
        let first = geo.group_first_block(g);
        if g == 0 {
            dev.write_sectors(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &sb)?;
        } else {
            let mut b = vec![0u8; bs as usize];
            b[..1024].copy_from_slice(&sb);
            wr(dev, first, &b)?;
        }
        wr(dev, first + 1, &gdt)?;
    }
    dev.flush()?;
    Ok(geo)
}
