//! On-disk layout of ext2 rev 0/1: the superblock, group descriptors, inodes and linear
//! directory entries, as little-endian fields read from and written into byte buffers.
//!
//! Owns the validation of the superblock geometry ([`Geometry::parse`]): after it, every
//! derived quantity (group count, inode table size, ...) is in range and fits the device,
//! so the rest of the crate can index with it.
//! Structures are kept as their raw bytes and edited in place, so fields this driver does
//! not know survive a rewrite.

use crate::error::{Error, FeatureKind, Result};

/// Byte offset of the primary superblock.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// ext2's magic number.
pub const MAGIC: u16 = 0xEF53;
/// The root directory's inode.
pub const ROOT_INO: u32 = 2;
/// The resize inode (reserved GDT blocks).
pub const RESIZE_INO: u32 = 7;
/// Size of a group descriptor without the 64bit feature.
pub const DESC_SIZE: usize = 32;
/// Direct block pointers in an inode.
pub const NDIR: usize = 12;
/// Largest link count ext2 stores.
pub const LINK_MAX: u16 = 65000;

/// `s_state`: cleanly unmounted.
pub const STATE_VALID: u16 = 1;
/// `s_state`: errors detected.
pub const STATE_ERROR: u16 = 2;

/// compat features whose metadata this driver keeps valid while writing (or can ignore).
pub const COMPAT_RW: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x10 | 0x20; // dir_prealloc imagic has_journal ext_attr resize_inode dir_index
/// incompat: filetype in directory entries.
pub const INCOMPAT_FILETYPE: u32 = 0x2;
/// incompat: the journal needs recovery.
pub const INCOMPAT_RECOVER: u32 = 0x4;
/// incompat: group metadata may sit outside its group (we follow the descriptors).
pub const INCOMPAT_FLEX_BG: u32 = 0x200;
/// incompat features this driver supports.
pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE | INCOMPAT_FLEX_BG;
/// ro_compat: superblock backups only in groups 0, 1 and powers of 3, 5, 7.
pub const RO_SPARSE_SUPER: u32 = 0x1;
/// ro_compat: files past 2 GiB.
pub const RO_LARGE_FILE: u32 = 0x2;
/// ro_compat features this driver maintains when writing
/// (sparse_super large_file huge_file dir_nlink extra_isize).
pub const RO_COMPAT_SUPPORTED: u32 = 0x1 | 0x2 | 0x8 | 0x20 | 0x40;

/// Inode flag: directory has an htree index (we clear it when we change the directory).
pub const FL_INDEX: u32 = 0x1000;
/// Inode flags that change the meaning of `i_block`/`i_blocks` (extents, inline data,
/// huge-file block units): such inodes are refused.
pub const FL_UNSUPPORTED: u32 = 0x8_0000 | 0x1000_0000 | 0x4_0000;

/// `i_mode` file type bits.
pub const S_IFMT: u16 = 0o170000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;

/// Reads a little-endian `u16` at `off` (caller guarantees bounds).
pub fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
/// Reads a little-endian `u32` at `off` (caller guarantees bounds).
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
/// Writes a little-endian `u16` at `off`.
pub fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
/// Writes a little-endian `u32` at `off`.
pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Superblock field offsets.
pub mod sb {
    pub const INODES_COUNT: usize = 0;
    pub const BLOCKS_COUNT: usize = 4;
    pub const R_BLOCKS_COUNT: usize = 8;
    pub const FREE_BLOCKS: usize = 12;
    pub const FREE_INODES: usize = 16;
    pub const FIRST_DATA_BLOCK: usize = 20;
    pub const LOG_BLOCK_SIZE: usize = 24;
    pub const BLOCKS_PER_GROUP: usize = 32;
    pub const INODES_PER_GROUP: usize = 40;
    pub const MTIME: usize = 44;
    pub const WTIME: usize = 48;
    pub const MNT_COUNT: usize = 52;
    pub const MAGIC: usize = 56;
    pub const STATE: usize = 58;
    pub const REV_LEVEL: usize = 76;
    pub const FIRST_INO: usize = 84;
    pub const INODE_SIZE: usize = 88;
    pub const FEATURE_COMPAT: usize = 92;
    pub const FEATURE_INCOMPAT: usize = 96;
    pub const FEATURE_RO_COMPAT: usize = 100;
    pub const RESERVED_GDT_BLOCKS: usize = 206;
    pub const LAST_ORPHAN: usize = 232;
    pub const WANT_EXTRA_ISIZE: usize = 350;
}

/// Inode field offsets.
pub mod ino {
    pub const MODE: usize = 0;
    pub const SIZE_LO: usize = 4;
    pub const ATIME: usize = 8;
    pub const CTIME: usize = 12;
    pub const MTIME: usize = 16;
    pub const DTIME: usize = 20;
    pub const LINKS: usize = 26;
    pub const BLOCKS_LO: usize = 28;
    pub const FLAGS: usize = 32;
    pub const BLOCK: usize = 40;
    pub const GENERATION: usize = 100;
    pub const FILE_ACL: usize = 104;
    pub const SIZE_HIGH: usize = 108;
    pub const BLOCKS_HI: usize = 116;
    pub const EXTRA_ISIZE: usize = 128;
}

/// Group descriptor field offsets.
pub mod gd {
    pub const BLOCK_BITMAP: usize = 0;
    pub const INODE_BITMAP: usize = 4;
    pub const INODE_TABLE: usize = 8;
    pub const FREE_BLOCKS: usize = 12;
    pub const FREE_INODES: usize = 14;
    pub const USED_DIRS: usize = 16;
}

/// The validated geometry of a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes (1024..=65536, a power of two).
    pub block_size: u32,
    /// Blocks in the filesystem.
    pub blocks_count: u32,
    /// Inodes in the filesystem (`groups * inodes_per_group`).
    pub inodes_count: u32,
    /// First block of group 0 (1 for 1 KiB blocks, else 0).
    pub first_data_block: u32,
    /// Blocks per group.
    pub blocks_per_group: u32,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// Number of block groups.
    pub groups: u32,
    /// Bytes per on-disk inode.
    pub inode_size: u32,
    /// First non-reserved inode.
    pub first_ino: u32,
    /// Blocks holding the group descriptor table.
    pub gdt_blocks: u32,
    /// Reserved GDT blocks after the table (resize_inode).
    pub reserved_gdt_blocks: u32,
    /// Blocks of one group's inode table.
    pub itable_blocks: u32,
    /// `s_feature_compat`.
    pub compat: u32,
    /// `s_feature_incompat`.
    pub incompat: u32,
    /// `s_feature_ro_compat`.
    pub ro_compat: u32,
}

impl Geometry {
    /// Validates a superblock (1024 bytes) against a device of `dev_bytes` bytes.
    /// With `write`, also refuses ro_compat/compat features a writer must understand.
    pub fn parse(s: &[u8], dev_bytes: u64, write: bool) -> Result<Self> {
        if s.len() < 1024 || le16(s, sb::MAGIC) != MAGIC {
            return Err(Error::Corrupt("bad superblock magic"));
        }
        let rev = le32(s, sb::REV_LEVEL);
        if rev > 1 {
            return Err(Error::Unsupported("superblock revision above 1"));
        }
        let (compat, incompat, ro_compat) = if rev == 0 {
            (0, 0, 0)
        } else {
            (
                le32(s, sb::FEATURE_COMPAT),
                le32(s, sb::FEATURE_INCOMPAT),
                le32(s, sb::FEATURE_RO_COMPAT),
            )
        };
        if incompat & INCOMPAT_RECOVER != 0 {
            return Err(Error::Unsupported(
                "the journal needs recovery (mount it with e2fsck or Linux first)",
            ));
        }
        if incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(Error::UnsupportedFeature(
                FeatureKind::Incompat,
                incompat & !INCOMPAT_SUPPORTED,
            ));
        }
        if write && ro_compat & !RO_COMPAT_SUPPORTED != 0 {
            return Err(Error::UnsupportedFeature(
                FeatureKind::RoCompat,
                ro_compat & !RO_COMPAT_SUPPORTED,
            ));
        }
        if write && compat & !COMPAT_RW != 0 {
            return Err(Error::UnsupportedFeature(
                FeatureKind::Compat,
                compat & !COMPAT_RW,
            ));
        }
        let log = le32(s, sb::LOG_BLOCK_SIZE);
        if log > 6 {
            return Err(Error::Corrupt("block size above 64 KiB"));
        }
        let block_size = 1024u32 << log;
        let blocks_count = le32(s, sb::BLOCKS_COUNT);
        let first_data_block = le32(s, sb::FIRST_DATA_BLOCK);
        if first_data_block != u32::from(block_size == 1024) {
            return Err(Error::Corrupt(
                "first data block does not match the block size",
            ));
        }
        if u64::from(blocks_count) * u64::from(block_size) > dev_bytes {
            return Err(Error::Corrupt("filesystem larger than the device"));
        }
        let bpg = le32(s, sb::BLOCKS_PER_GROUP);
        let ipg = le32(s, sb::INODES_PER_GROUP);
        let bits = block_size * 8;
        if bpg == 0 || bpg > bits || !bpg.is_multiple_of(8) {
            return Err(Error::Corrupt("bad blocks per group"));
        }
        if ipg == 0 || ipg > bits || !ipg.is_multiple_of(8) {
            return Err(Error::Corrupt("bad inodes per group"));
        }
        if blocks_count <= first_data_block + 1 {
            return Err(Error::Corrupt("too few blocks"));
        }
        let groups = (blocks_count - first_data_block).div_ceil(bpg);
        let inodes_count = le32(s, sb::INODES_COUNT);
        if u64::from(groups) * u64::from(ipg) != u64::from(inodes_count) {
            return Err(Error::Corrupt("inode count does not match the groups"));
        }
        let (inode_size, first_ino) = if rev == 0 {
            (128, 11)
        } else {
            (u32::from(le16(s, sb::INODE_SIZE)), le32(s, sb::FIRST_INO))
        };
        if inode_size < 128 || !inode_size.is_power_of_two() || inode_size > block_size {
            return Err(Error::Corrupt("bad inode size"));
        }
        if first_ino <= RESIZE_INO || first_ino > inodes_count {
            return Err(Error::Corrupt("bad first inode"));
        }
        let gdt_blocks = (groups as usize * DESC_SIZE).div_ceil(block_size as usize) as u32;
        let reserved_gdt_blocks = if compat & 0x10 != 0 {
            u32::from(le16(s, sb::RESERVED_GDT_BLOCKS))
        } else {
            0
        };
        if reserved_gdt_blocks > bits / 4 {
            return Err(Error::Corrupt("too many reserved GDT blocks"));
        }
        if first_data_block + 1 + gdt_blocks + reserved_gdt_blocks >= blocks_count {
            return Err(Error::Corrupt("group descriptors past the end"));
        }
        let itable_blocks =
            (u64::from(ipg) * u64::from(inode_size)).div_ceil(u64::from(block_size)) as u32;
        Ok(Self {
            block_size,
            blocks_count,
            inodes_count,
            first_data_block,
            blocks_per_group: bpg,
            inodes_per_group: ipg,
            groups,
            inode_size,
            first_ino,
            gdt_blocks,
            reserved_gdt_blocks,
            itable_blocks,
            compat,
            incompat,
            ro_compat,
        })
    }

    /// First block of group `g`.
    pub fn group_first_block(&self, g: u32) -> u32 {
        self.first_data_block + g * self.blocks_per_group
    }

    /// Blocks in group `g` (the last group may be short).
    pub fn group_blocks(&self, g: u32) -> u32 {
        let first = self.group_first_block(g);
        (self.blocks_count - first).min(self.blocks_per_group)
    }

    /// Whether group `g` holds a superblock backup (and GDT copy).
    pub fn group_has_super(&self, g: u32) -> bool {
        if g <= 1 || self.ro_compat & RO_SPARSE_SUPER == 0 {
            return true;
        }
        [3u32, 5, 7].iter().any(|&p| {
            let mut n = g;
            while n.is_multiple_of(p) {
                n /= p;
            }
            n == 1
        })
    }

    /// Block pointers per indirect block.
    pub fn ptrs_per_block(&self) -> u64 {
        u64::from(self.block_size / 4)
    }

    /// Bytes of file the largest block map reaches.
    pub fn max_map_bytes(&self) -> u64 {
        let p = self.ptrs_per_block();
        (NDIR as u64 + p + p * p + p * p * p) * u64::from(self.block_size)
    }
}

/// The on-disk type byte of a directory entry for an inode mode.
pub fn dirent_type(mode: u16) -> u8 {
    match mode & S_IFMT {
        S_IFREG => 1,
        S_IFDIR => 2,
        0o020000 => 3,
        0o060000 => 4,
        0o010000 => 5,
        0o140000 => 6,
        S_IFLNK => 7,
        _ => 0,
    }
}

/// One parsed directory entry inside a directory block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDirent {
    /// Offset of the entry in the block.
    pub off: usize,
    /// Inode number (0: unused entry).
    pub inode: u32,
    /// Record length.
    pub rec_len: usize,
    /// Name length.
    pub name_len: usize,
    /// Type byte (0 without the filetype feature).
    pub file_type: u8,
}

impl RawDirent {
    /// Bytes this entry needs for its name (8-byte header, 4-aligned).
    pub fn needed(name_len: usize) -> usize {
        (8 + name_len + 3) & !3
    }
}

/// Parses every entry of a directory block, validating record lengths and names.
pub fn parse_dir_block(
    b: &[u8],
    filetype: bool,
    inodes_count: u32,
) -> Result<alloc::vec::Vec<RawDirent>> {
    let mut out = alloc::vec::Vec::new();
    let mut off = 0;
    while off < b.len() {
        if b.len() - off < 8 {
            return Err(Error::Corrupt("directory entry header past the block"));
        }
        let inode = le32(b, off);
        let rec_len = usize::from(le16(b, off + 4));
        let (name_len, file_type) = if filetype {
            (usize::from(b[off + 6]), b[off + 7])
        } else {
            (usize::from(le16(b, off + 6)), 0)
        };
        if rec_len < 12 || !rec_len.is_multiple_of(4) || rec_len > b.len() - off {
            return Err(Error::Corrupt("bad directory record length"));
        }
        if inode != 0
            && (name_len == 0 || RawDirent::needed(name_len) > rec_len || inode > inodes_count)
        {
            return Err(Error::Corrupt("bad directory entry"));
        }
        out.push(RawDirent {
            off,
            inode,
            rec_len,
            name_len,
            file_type,
        });
        off += rec_len;
    }
    Ok(out)
}

/// Writes a directory entry header (and name) at `off`.
pub fn put_dirent(
    b: &mut [u8],
    off: usize,
    inode: u32,
    rec_len: usize,
    name: &[u8],
    ftype: u8,
    filetype: bool,
) {
    put32(b, off, inode);
    put16(b, off + 4, rec_len as u16);
    if filetype {
        b[off + 6] = name.len() as u8;
        b[off + 7] = ftype;
    } else {
        put16(b, off + 6, name.len() as u16);
    }
    b[off + 8..off + 8 + name.len()].copy_from_slice(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_groups() {
        let mut s = [0u8; 1024];
        put16(&mut s, sb::MAGIC, MAGIC);
        put32(&mut s, sb::REV_LEVEL, 1);
        put32(&mut s, sb::BLOCKS_COUNT, 8192 * 50);
        put32(&mut s, sb::FIRST_DATA_BLOCK, 1);
        put32(&mut s, sb::BLOCKS_PER_GROUP, 8192);
        put32(&mut s, sb::INODES_PER_GROUP, 16);
        put32(&mut s, sb::INODES_COUNT, 16 * 50);
        put16(&mut s, sb::INODE_SIZE, 256);
        put32(&mut s, sb::FIRST_INO, 11);
        put32(&mut s, sb::FEATURE_RO_COMPAT, RO_SPARSE_SUPER);
        let g = Geometry::parse(&s, 1 << 30, true).unwrap();
        let with: alloc::vec::Vec<u32> = (0..50).filter(|&i| g.group_has_super(i)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
        assert_eq!(
            Geometry::parse(&s, 1 << 20, true),
            Err(Error::Corrupt("filesystem larger than the device"))
        );
        put32(&mut s, sb::FEATURE_INCOMPAT, 0x40);
        assert_eq!(
            Geometry::parse(&s, 1 << 30, false),
            Err(Error::UnsupportedFeature(FeatureKind::Incompat, 0x40))
        );
    }

    #[test]
    fn dir_block_rejects_bad_records() {
        let mut b = [0u8; 1024];
        put_dirent(&mut b, 0, 2, 12, b".", 2, true);
        put_dirent(&mut b, 12, 2, 1012, b"..", 2, true);
        assert_eq!(parse_dir_block(&b, true, 100).unwrap().len(), 2);
        put16(&mut b, 16, 1020); // runs past the block
        assert!(parse_dir_block(&b, true, 100).is_err());
        put16(&mut b, 16, 1012);
        b[6] = 5; // "." claims a 5-byte name in a 12-byte record
        assert!(parse_dir_block(&b, true, 100).is_err());
    }
}
