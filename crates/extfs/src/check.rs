//! The consistency check run at mount after an unclean stop (and by [`Fs::check`]).
//!
//! It walks the tree from the root, claiming every block each reachable inode maps
//! (data, indirect, xattr) on top of the group metadata, and counting the directory
//! entries that name each inode. It then compares with the bitmaps and inodes:
//! - repaired (what an interrupted ordered write leaves): blocks marked used that nothing
//!   claims, inodes marked used or with links that no entry names (their links are zeroed
//!   and dtime set, then the bit cleared), link counts above the entries naming them,
//!   `i_blocks` and sizes short of the blocks an inode maps (a stop between linking a new
//!   block into an existing indirect block and writing the inode: the size is raised to the
//!   end of the last mapped block, whose data was written first), group/superblock free
//!   counts, `s_last_orphan`;
//! - refused with [`Error::NeedsFsck`] (what ordered writes never leave): a claimed block
//!   marked free or claimed twice, an entry naming a free, deleted or reserved inode, a link
//!   count below its entries, a directory named twice unless its `..` says which name is the
//!   stale one (then that name is removed: a stop in the middle of a directory move),
//!   pointers out of range.
//!
//! With `repair == false` it only reports; nothing is written.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;

use crate::dev::BlockDevice;
use crate::error::{Error, Result};
use crate::fs::{CheckReport, Fs, Inode};
use crate::layout::*;

struct Bits(Vec<u8>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(8)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 8] & (1 << (i % 8)) != 0
    }
    /// Sets bit `i`; returns whether it was already set.
    fn set(&mut self, i: usize) -> bool {
        let was = self.get(i);
        self.0[i / 8] |= 1 << (i % 8);
        was
    }
}

fn damage<T>(m: &'static str) -> Result<T> {
    Err(Error::NeedsFsck(m))
}

/// Turns a corruption found while walking into a refusal.
fn walk_err(e: Error) -> Error {
    match e {
        Error::Corrupt(m) => Error::NeedsFsck(m),
        e => e,
    }
}

#[derive(Default)]
struct MapStats {
    blocks: u64,
    last: Option<u64>,
}

struct Walk {
    claimed: Bits,
    xattr: BTreeSet<u32>,
}

impl Walk {
    fn claim(&mut self, geo: &Geometry, blk: u32) -> Result<()> {
        if blk < geo.first_data_block || blk >= geo.blocks_count {
            return damage("block pointer out of range");
        }
        if self.claimed.set(blk as usize) {
            return damage("block claimed twice");
        }
        Ok(())
    }
}

impl<D: BlockDevice> Fs<D> {
    fn claim_tree(
        &mut self,
        w: &mut Walk,
        blk: u32,
        level: u32,
        base: u64,
        st: &mut MapStats,
    ) -> Result<()> {
        let geo = self.geo.clone();
        w.claim(&geo, blk)?;
        st.blocks += 1;
        if level == 0 {
            st.last = st.last.max(Some(base));
            return Ok(());
        }
        let span = geo.ptrs_per_block().pow(level - 1);
        let data = self.read_block(blk)?;
        for (i, c) in data.chunks_exact(4).enumerate() {
            let child = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if child != 0 {
                self.claim_tree(w, child, level - 1, base + i as u64 * span, st)?;
            }
        }
        Ok(())
    }

    /// Claims every block `inode` owns; returns how many (as `i_blocks` counts them) and
    /// the last logical block mapped.
    fn claim_inode(&mut self, w: &mut Walk, inode: &Inode) -> Result<MapStats> {
        let geo = self.geo.clone();
        let mut st = MapStats::default();
        if inode.flags() & FL_UNSUPPORTED != 0 {
            return damage("inode uses extents, inline data or huge_file");
        }
        if inode.has_block_map(geo.block_size) {
            let p = geo.ptrs_per_block();
            let mut base = NDIR as u64;
            let mut span = p;
            for i in 0..NDIR + 3 {
                let b = inode.block(i);
                let (level, start) = if i < NDIR {
                    (0, i as u64)
                } else {
                    ((i - NDIR + 1) as u32, base)
                };
                if b != 0 {
                    self.claim_tree(w, b, level, start, &mut st)?;
                }
                if i >= NDIR {
                    base += span;
                    span *= p;
                }
            }
        }
        let acl = inode.file_acl();
        if acl != 0 {
            if w.xattr.insert(acl) {
                w.claim(&geo, acl)?;
            }
            st.blocks += 1;
        }
        Ok(st)
    }

    /// The `i_blocks` and size an inode must have for the blocks it maps, if they differ
    /// (a stop between an indirect-block write and the inode write leaves them short).
    fn inode_fix(&self, inode: &Inode, st: &MapStats) -> Option<(u64, u64)> {
        let bs = u64::from(self.geo.block_size);
        let blocks = st.blocks * (bs / 512);
        let mut size = inode.size();
        if let Some(last) = st.last {
            let short = if inode.is_dir() {
                size < (last + 1) * bs
            } else {
                inode.is_reg() && size <= last * bs
            };
            if short {
                size = (last + 1) * bs;
            }
        }
        (blocks != inode.blocks512() || size != inode.size()).then_some((blocks, size))
    }

    /// Checks the filesystem (see the module docs); with `repair`, fixes leaks and counts
    /// and writes the result.
    pub fn check(&mut self, repair: bool) -> Result<CheckReport> {
        self.check_inner(repair).map_err(walk_err)
    }

    fn check_inner(&mut self, repair: bool) -> Result<CheckReport> {
        if repair && self.read_only {
            return Err(Error::ReadOnly);
        }
        let geo = self.geo.clone();
        let mut rep = CheckReport::default();
        let mut w = Walk {
            claimed: Bits::new(geo.blocks_count as usize),
            xattr: BTreeSet::new(),
        };
        for &(s, e) in &self.meta.clone() {
            for b in s..e {
                w.claim(&geo, b)?;
            }
        }
        // Reserved inodes: the resize inode owns only its double-indirect block (its
        // children are the reserved GDT blocks, already metadata); the others their maps.
        for ino in 1..geo.first_ino {
            if ino == ROOT_INO {
                continue;
            }
            let inode = self.read_inode(ino)?;
            if ino == RESIZE_INO {
                let d = inode.block(NDIR + 1);
                if d != 0 {
                    w.claim(&geo, d)?;
                }
            } else if inode.mode() != 0 || (0..NDIR + 3).any(|i| inode.block(i) != 0) {
                self.claim_inode(&mut w, &inode)?;
            }
        }
        let n_inodes = geo.inodes_count as usize;
        let mut refs = vec![0u32; n_inodes + 1];
        let mut seen = Bits::new(n_inodes + 1);
        seen.set(ROOT_INO as usize);
        let mut stack = vec![ROOT_INO];
        let mut fixes: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        // Directories: where each was first named, what its `..` says, and second names.
        let mut named_in: BTreeMap<u32, (u32, Vec<u8>)> = BTreeMap::new();
        let mut dotdot: BTreeMap<u32, u32> = BTreeMap::new();
        let mut dups: Vec<(u32, Vec<u8>, u32)> = Vec::new();
        while let Some(d) = stack.pop() {
            let mut dir = self.read_inode(d)?;
            if !dir.is_dir() {
                return damage("root is not a directory");
            }
            let st = self.claim_inode(&mut w, &dir)?;
            if let Some(f) = self.inode_fix(&dir, &st) {
                fixes.insert(d, f);
                dir.set_size(f.1);
            }
            let mut entries = Vec::new();
            let mut collect = |b: &[u8], ents: &[RawDirent]| {
                for e in ents.iter().filter(|e| e.inode != 0) {
                    let name = b[e.off + 8..e.off + 8 + e.name_len].to_vec();
                    entries.push((e.inode, name));
                }
            };
            let bs = u64::from(geo.block_size);
            if dir.size() % bs != 0 {
                return damage("directory size not a multiple of the block size");
            }
            for l in 0..dir.size() / bs {
                let p = self
                    .bmap(&dir, l)
                    .map_err(walk_err)?
                    .ok_or(Error::NeedsFsck("hole in a directory"))?;
                let b = self.read_block(p)?;
                let ents = parse_dir_block(
                    &b,
                    self.geo.incompat & INCOMPAT_FILETYPE != 0,
                    geo.inodes_count,
                )
                .map_err(walk_err)?;
                collect(&b, &ents);
            }
            for (ino, name) in entries {
                if ino < geo.first_ino && ino != ROOT_INO {
                    return damage("directory entry names a reserved inode");
                }
                refs[ino as usize] += 1;
                if name == b".." {
                    dotdot.insert(d, ino);
                }
                if name == b"." || name == b".." {
                    continue;
                }
                let child = self.read_inode(ino)?;
                if seen.set(ino as usize) {
                    if child.is_dir() {
                        dups.push((d, name, ino));
                    }
                    continue;
                }
                if child.is_dir() {
                    named_in.insert(ino, (d, name));
                }
                if child.links() == 0 {
                    return damage("directory entry names a deleted inode");
                }
                if !self.inode_bit(ino)? {
                    return damage("directory entry names a free inode");
                }
                if child.is_dir() {
                    stack.push(ino);
                } else {
                    let st = self.claim_inode(&mut w, &child)?;
                    if let Some(f) = self.inode_fix(&child, &st) {
                        fixes.insert(ino, f);
                    }
                }
            }
        }
        // A directory with two names (a stop in the middle of moving it): keep the name in
        // the directory its `..` names, drop the other.
        let mut name_removals: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut resolved = BTreeSet::new();
        for (parent, name, child) in dups {
            if !resolved.insert(child) {
                return damage("directory named more than twice");
            }
            let (first_parent, first_name) = named_in
                .get(&child)
                .cloned()
                .ok_or(Error::NeedsFsck("directory named twice"))?;
            let up = dotdot.get(&child).copied();
            if up == Some(first_parent) {
                name_removals.push((parent, name));
            } else if up == Some(parent) {
                name_removals.push((first_parent, first_name));
            } else {
                return damage("directory named twice");
            }
            refs[child as usize] -= 1;
            rep.names_removed += 1;
        }
        // Inodes: leaks and link counts, one inode-table block at a time.
        let per_block = geo.block_size / geo.inode_size;
        let mut dirs = vec![0u32; geo.groups as usize];
        // Repaired inode-table blocks, written only once the whole check has passed (a
        // refused image is left exactly as it was, for e2fsck).
        let mut itable_fixes: Vec<(u32, Vec<u8>)> = Vec::new();
        for g in 0..geo.groups {
            let table = self.gd32(g, gd::INODE_TABLE);
            for tb in 0..geo.itable_blocks {
                let mut b = self.read_block(table + tb)?;
                let mut dirty = false;
                for k in 0..per_block {
                    let idx = tb * per_block + k;
                    if idx >= geo.inodes_per_group {
                        break;
                    }
                    let ino = g * geo.inodes_per_group + idx + 1;
                    let off = (k * geo.inode_size) as usize;
                    let raw = &mut b[off..off + geo.inode_size as usize];
                    let links = le16(raw, ino::LINKS);
                    if ino < geo.first_ino && ino != ROOT_INO {
                        continue;
                    }
                    if seen.get(ino as usize) {
                        let r = refs[ino as usize];
                        let is_dir = le16(raw, ino::MODE) & S_IFMT == S_IFDIR;
                        if is_dir {
                            dirs[g as usize] += 1;
                        }
                        if u32::from(links) < r {
                            return damage("link count below the entries naming the inode");
                        }
                        if u32::from(links) > r {
                            rep.link_counts_fixed += 1;
                            put16(raw, ino::LINKS, r as u16);
                            dirty = true;
                        }
                        if let Some(&(blocks, size)) = fixes.get(&ino) {
                            rep.inode_sizes_fixed += 1;
                            let mut i = Inode {
                                ino,
                                raw: raw.to_vec(),
                            };
                            i.set_blocks512(blocks);
                            i.set_size(size);
                            raw.copy_from_slice(&i.raw);
                            dirty = true;
                        }
                    } else if links != 0 || self.inode_bit(ino)? {
                        rep.leaked_inodes += 1;
                        put16(raw, ino::LINKS, 0);
                        if le32(raw, ino::DTIME) == 0 {
                            put32(raw, ino::DTIME, self.now.max(1));
                        }
                        dirty = true;
                        self.clear_inode_bit(ino)?;
                    }
                }
                if dirty {
                    itable_fixes.push((table + tb, b));
                }
            }
        }
        // Blocks: claimed vs. the bitmaps.
        for g in 0..geo.groups {
            let first = geo.group_first_block(g);
            let n = geo.group_blocks(g);
            let mut free = 0u32;
            let bm = self.bitmap(g, false)?;
            let mut changed = false;
            for i in 0..n {
                let used = bm[(i / 8) as usize] & (1 << (i % 8)) != 0;
                let claimed = w.claimed.get((first + i) as usize);
                if claimed && !used {
                    return damage("block in use is marked free");
                }
                if used && !claimed {
                    rep.leaked_blocks += 1;
                    bm[(i / 8) as usize] &= !(1 << (i % 8));
                    changed = true;
                }
                if !claimed {
                    free += 1;
                }
            }
            if changed {
                self.dirty_bbmp.insert(g);
            }
            let ibm = self.bitmap(g, true)?;
            let ifree = (0..geo.inodes_per_group)
                .filter(|&i| ibm[(i / 8) as usize] & (1 << (i % 8)) == 0)
                .count() as u32;
            for (f, v) in [
                (gd::FREE_BLOCKS, free),
                (gd::FREE_INODES, ifree),
                (gd::USED_DIRS, dirs[g as usize]),
            ] {
                if u32::from(self.gd16(g, f)) != v {
                    rep.counts_fixed += 1;
                    self.set_gd16(g, f, v as u16);
                }
            }
        }
        self.free_blocks = (0..geo.groups)
            .map(|g| u64::from(self.gd16(g, gd::FREE_BLOCKS)))
            .sum();
        self.free_inodes = (0..geo.groups)
            .map(|g| u64::from(self.gd16(g, gd::FREE_INODES)))
            .sum();
        if repair {
            for (parent, name) in name_removals {
                let dir = self.read_inode(parent)?;
                self.dir_remove_name(&dir, &name)?;
            }
            for (blk, data) in itable_fixes {
                self.write_blocks(blk, &data)?;
            }
            put32(&mut self.sb, sb::LAST_ORPHAN, 0);
            self.sync()?;
        } else {
            // Forget the in-memory repairs: reload bitmaps and descriptors from disk.
            self.dirty_bbmp.clear();
            self.dirty_ibmp.clear();
            self.bbmp.iter_mut().for_each(|b| *b = None);
            self.ibmp.iter_mut().for_each(|b| *b = None);
            let mut gdt = core::mem::take(&mut self.gdt);
            self.read_blocks(geo.first_data_block + 1, &mut gdt)?;
            self.gdt = gdt;
            self.free_blocks = (0..geo.groups)
                .map(|g| u64::from(self.gd16(g, gd::FREE_BLOCKS)))
                .sum();
            self.free_inodes = (0..geo.groups)
                .map(|g| u64::from(self.gd16(g, gd::FREE_INODES)))
                .sum();
        }
        Ok(rep)
    }

    fn inode_bit(&mut self, ino: u32) -> Result<bool> {
        let g = (ino - 1) / self.geo.inodes_per_group;
        let i = (ino - 1) % self.geo.inodes_per_group;
        Ok(self.bitmap(g, true)?[(i / 8) as usize] & (1 << (i % 8)) != 0)
    }

    fn clear_inode_bit(&mut self, ino: u32) -> Result<()> {
        let g = (ino - 1) / self.geo.inodes_per_group;
        let i = (ino - 1) % self.geo.inodes_per_group;
        let bm = self.bitmap(g, true)?;
        if bm[(i / 8) as usize] & (1 << (i % 8)) != 0 {
            bm[(i / 8) as usize] &= !(1 << (i % 8));
            self.dirty_ibmp.insert(g);
        }
        Ok(())
    }
}
