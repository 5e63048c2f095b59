//! Packing a host directory into an initrd (feature `std`, for xtask).
//!
//! [`collect_dir`] walks a host directory without following symlinks, in sorted name
//! order, and turns regular files, directories and symlinks into [`NewEntry`]s with
//! their permission bits (on Unix; 0644/0755 elsewhere). Any other file type (fifo,
//! socket, device) and any name that is not UTF-8 is an error naming the host path.
//! The directory itself becomes the archive's root and gets no entry.

use std::fs;
use std::io;
use std::path::Path;
use std::string::String;
use std::vec::Vec;

use crate::write::{NewEntry, write_newc};

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        std::format!("{}: {what}", path.display()),
    )
}

#[cfg(unix)]
fn permissions(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & crate::newc::PERM_MASK
}

#[cfg(not(unix))]
fn permissions(meta: &fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

fn walk(host: &Path, prefix: &str, out: &mut Vec<NewEntry>) -> io::Result<()> {
    let mut children = fs::read_dir(host)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    children.sort();
    for name in children {
        let host_path = host.join(&name);
        let name = name
            .to_str()
            .ok_or_else(|| invalid(&host_path, "name is not UTF-8"))?;
        let path = if prefix.is_empty() {
            String::from(name)
        } else {
            std::format!("{prefix}/{name}")
        };
        let meta = fs::symlink_metadata(&host_path)?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            out.push(NewEntry::dir(&path, permissions(&meta)));
            walk(&host_path, &path, out)?;
        } else if file_type.is_file() {
            let data = fs::read(&host_path)?;
            out.push(NewEntry::file(&path, permissions(&meta), data));
        } else if file_type.is_symlink() {
            let target = fs::read_link(&host_path)?;
            let target = target
                .to_str()
                .ok_or_else(|| invalid(&host_path, "symlink target is not UTF-8"))?;
            out.push(NewEntry::symlink(&path, target));
        } else {
            return Err(invalid(
                &host_path,
                "not a regular file, directory or symlink",
            ));
        }
    }
    Ok(())
}

/// The entries for everything under the host directory `root` (sorted, root excluded).
pub fn collect_dir(root: &Path) -> io::Result<Vec<NewEntry>> {
    if !fs::metadata(root)?.is_dir() {
        return Err(invalid(root, "not a directory"));
    }
    let mut out = Vec::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// The newc archive of the host directory `root` (see [`collect_dir`] and
/// [`write_newc`]).
pub fn pack_dir(root: &Path) -> io::Result<Vec<u8>> {
    let entries = collect_dir(root)?;
    write_newc(&entries).map_err(|e| invalid(root, &std::format!("{e}")))
}
