//! Writing a newc archive (host side: xtask builds dom0's initrd with it; alloc only).
//!
//! [`write_newc`] is deterministic: the same entries in any order give the same bytes.
//! Rules:
//! - paths are normalised (`./a`, `/a`, `a` are one path) and stored relative, without
//!   a leading `/` or `./`; an empty path (the root), a `..` component, a NUL, a
//!   top-level `TRAILER!!!` and a path named twice are rejected;
//! - every parent directory gets an entry (implied ones with mode 0755);
//! - directories come first, then the other entries, each group sorted by path
//!   (a parent sorts before its children);
//! - inode numbers count from 1 in output order; uid, gid, mtime and device numbers are
//!   0; `c_nlink` is 2 for directories and 1 otherwise, so no entry looks hard-linked;
//! - the archive ends with the `TRAILER!!!` entry and is zero-padded to 512 bytes.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::newc::{
    FileType, HEADER_LEN, MAGIC_NEWC, PERM_MASK, S_IFDIR, S_IFLNK, S_IFREG, TRAILER_NAME,
};
use crate::path::components;

/// Size the written archive is padded to a multiple of.
pub const BLOCK_LEN: usize = 512;

/// What an entry to write holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewBody {
    Directory,
    File(Vec<u8>),
    /// Target path, stored verbatim.
    Symlink(String),
}

/// An entry to write: its path inside the archive, permission bits and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    pub path: String,
    /// Permission bits only (at most `0o7777`).
    pub permissions: u32,
    pub body: NewBody,
}

impl NewEntry {
    pub fn dir(path: &str, permissions: u32) -> NewEntry {
        NewEntry {
            path: path.to_string(),
            permissions,
            body: NewBody::Directory,
        }
    }

    pub fn file(path: &str, permissions: u32, data: Vec<u8>) -> NewEntry {
        NewEntry {
            path: path.to_string(),
            permissions,
            body: NewBody::File(data),
        }
    }

    /// A symlink; its permission bits are 0777, as on Linux.
    pub fn symlink(path: &str, target: &str) -> NewEntry {
        NewEntry {
            path: path.to_string(),
            permissions: 0o777,
            body: NewBody::Symlink(target.to_string()),
        }
    }

    fn file_type(&self) -> FileType {
        match self.body {
            NewBody::Directory => FileType::Directory,
            NewBody::File(_) => FileType::Regular,
            NewBody::Symlink(_) => FileType::Symlink,
        }
    }
}

/// Why entries could not be written; each names the offending path as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Empty after normalisation, or holds `..`, a NUL, or is the trailer's name.
    BadPath(String),
    /// Two entries normalise to the same path.
    Duplicate(String),
    /// Permission bits above `0o7777`.
    BadPermissions { path: String, permissions: u32 },
    /// Data (or target) longer than the 32-bit `c_filesize` allows.
    TooLarge(String),
    /// Empty symlink target, or one holding a NUL.
    BadSymlinkTarget(String),
    /// A parent of the path is an entry that is not a directory.
    ParentNotDirectory(String),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::BadPath(p) => write!(f, "{p:?}: bad archive path"),
            WriteError::Duplicate(p) => write!(f, "{p:?}: path given twice"),
            WriteError::BadPermissions { path, permissions } => {
                write!(f, "{path:?}: permissions {permissions:#o} above 0o7777")
            }
            WriteError::TooLarge(p) => write!(f, "{p:?}: larger than 4 GiB - 1"),
            WriteError::BadSymlinkTarget(p) => write!(f, "{p:?}: empty or NUL in symlink target"),
            WriteError::ParentNotDirectory(p) => write!(f, "{p:?}: a parent is not a directory"),
        }
    }
}

/// Appends `value` as 8 upper-case hex digits.
fn put_hex8(out: &mut Vec<u8>, value: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for shift in (0..8).rev() {
        out.push(DIGITS[((value >> (shift * 4)) & 0xF) as usize]);
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends one entry: header, name, padding, data, padding.
fn put_entry(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, name: &str, data: &[u8]) {
    let start = out.len();
    out.extend_from_slice(MAGIC_NEWC);
    // Sizes were checked to fit in u32 by the caller.
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        name.len() as u32 + 1,
        0, // check
    ];
    for value in fields {
        put_hex8(out, value);
    }
    debug_assert_eq!(out.len() - start, HEADER_LEN);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// Writes `entries` as a newc archive (see the module docs for the rules).
pub fn write_newc(entries: &[NewEntry]) -> Result<Vec<u8>, WriteError> {
    // Canonical path -> entry, for explicit entries.
    let mut explicit: BTreeMap<String, &NewEntry> = BTreeMap::new();
    for entry in entries {
        let bad_path = || WriteError::BadPath(entry.path.clone());
        let comps: Vec<&str> = components(&entry.path).collect();
        if comps.is_empty()
            || comps.contains(&"..")
            || entry.path.contains('\0')
            || comps == [TRAILER_NAME]
        {
            return Err(bad_path());
        }
        if entry.permissions & !PERM_MASK != 0 {
            return Err(WriteError::BadPermissions {
                path: entry.path.clone(),
                permissions: entry.permissions,
            });
        }
        let data_len = match &entry.body {
            NewBody::Directory => 0,
            NewBody::File(data) => data.len(),
            NewBody::Symlink(target) => {
                if target.is_empty() || target.contains('\0') {
                    return Err(WriteError::BadSymlinkTarget(entry.path.clone()));
                }
                target.len()
            }
        };
        let canonical = comps.join("/");
        if data_len > u32::MAX as usize || canonical.len() >= u32::MAX as usize {
            return Err(WriteError::TooLarge(entry.path.clone()));
        }
        if explicit.insert(canonical, entry).is_some() {
            return Err(WriteError::Duplicate(entry.path.clone()));
        }
    }

    // Directories (explicit or implied) in path order, then everything else.
    let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
    let mut others: Vec<(&str, &NewEntry)> = Vec::new();
    for (path, entry) in &explicit {
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match explicit.get(parent) {
                Some(p) if p.file_type() != FileType::Directory => {
                    return Err(WriteError::ParentNotDirectory(entry.path.clone()));
                }
                Some(_) => {}
                None => {
                    dirs.entry(parent.to_string())
                        .or_insert(crate::tree::IMPLIED_DIR_PERMISSIONS);
                }
            }
        }
        match entry.body {
            NewBody::Directory => {
                dirs.insert(path.clone(), entry.permissions);
            }
            _ => others.push((path, entry)),
        }
    }

    let mut out = Vec::new();
    let mut ino = 0u32;
    for (path, permissions) in &dirs {
        ino += 1;
        put_entry(&mut out, ino, S_IFDIR | permissions, 2, path, &[]);
    }
    for (path, entry) in others {
        ino += 1;
        match &entry.body {
            NewBody::File(data) => {
                put_entry(&mut out, ino, S_IFREG | entry.permissions, 1, path, data)
            }
            NewBody::Symlink(target) => put_entry(
                &mut out,
                ino,
                S_IFLNK | entry.permissions,
                1,
                path,
                target.as_bytes(),
            ),
            NewBody::Directory => {}
        }
    }
    put_entry(&mut out, 0, 0, 1, TRAILER_NAME, &[]);
    out.resize(out.len().div_ceil(BLOCK_LEN) * BLOCK_LEN, 0);
    Ok(out)
}
