//! The initrd as the shell shows it: error texts as coreutils word them, and
//! the two `ls` layouts (names in columns down the screen; `-l` long lines).
//! The tree itself, its lookups and the read-only guarantee belong to the
//! `initrd` crate: nothing here can change the archive.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use initrd::{Archive, FileType, FsError, Metadata, NodeId};

/// The `strerror` text of a lookup failure (`No such file or directory`).
pub fn error_text(e: FsError) -> &'static str {
    match e {
        FsError::NotFound => "No such file or directory",
        FsError::NotADirectory => "Not a directory",
        FsError::IsADirectory => "Is a directory",
        FsError::NotAFile => "Not a regular file",
        FsError::NotASymlink => "Invalid argument",
        FsError::SymlinkLoop => "Too many levels of symbolic links",
    }
}

/// `drwxr-xr-x` for a node.
pub fn mode_string(meta: &Metadata) -> String {
    let kind = match meta.file_type {
        FileType::Regular => '-',
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
    };
    let p = meta.permissions;
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (shift, special, special_ch) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (p >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (p & special != 0, x) {
            (true, true) => special_ch,
            (true, false) => special_ch.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// One row of `ls -l`: metadata, name, and a symlink's target.
#[derive(Clone, Debug)]
pub struct LongRow<'a> {
    pub meta: Metadata,
    pub name: String,
    pub target: Option<&'a str>,
}

impl<'a> LongRow<'a> {
    /// The row for `name` in the directory `dir` (symlinks not followed).
    pub fn of(archive: &Archive<'a>, dir: NodeId, name: &str) -> Result<Self, FsError> {
        let meta = archive.symlink_metadata_at(dir, name)?;
        let target = if meta.is_symlink() {
            Some(archive.read_link_at(dir, name)?)
        } else {
            None
        };
        Ok(LongRow {
            meta,
            name: name.into(),
            target,
        })
    }
}

/// `ls -l` lines, columns aligned across `rows`.
pub fn long_listing(rows: &[LongRow<'_>]) -> Vec<String> {
    let w = |f: &dyn Fn(&LongRow<'_>) -> usize| rows.iter().map(f).max().unwrap_or(1);
    let digits = |n: u64| format!("{n}").len();
    let size_of = |r: &LongRow<'_>| match r.meta.file_type {
        FileType::CharDevice | FileType::BlockDevice => {
            format!("{}, {}", r.meta.rdev_major, r.meta.rdev_minor)
        }
        _ => format!("{}", r.meta.size),
    };
    let nlink_w = w(&|r| digits(u64::from(r.meta.nlink)));
    let uid_w = w(&|r| digits(u64::from(r.meta.uid)));
    let gid_w = w(&|r| digits(u64::from(r.meta.gid)));
    let size_w = w(&|r| size_of(r).len());
    rows.iter()
        .map(|r| {
            let mut line = format!(
                "{} {:>nlink_w$} {:<uid_w$} {:<gid_w$} {:>size_w$} {} {}",
                mode_string(&r.meta),
                r.meta.nlink,
                r.meta.uid,
                r.meta.gid,
                size_of(r),
                crate::clock::long_iso(u64::from(r.meta.mtime)),
                r.name
            );
            if let Some(t) = r.target {
                line.push_str(" -> ");
                line.push_str(t);
            }
            line
        })
        .collect()
}

/// Names laid out in columns down then across, as `ls` does on a terminal of
/// `width` columns (two blanks between columns, no trailing blanks).
pub fn columns(names: &[&str], width: usize) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    let n = names.len();
    // The most columns whose widths fit.
    let mut best = (
        1,
        n,
        Vec::from([names.iter().map(|s| s.chars().count()).max().unwrap_or(0)]),
    );
    for cols in 2..=n {
        let rows = n.div_ceil(cols);
        if rows * cols - n >= rows {
            continue; // a column would be empty
        }
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                names[(c * rows).min(n)..((c + 1) * rows).min(n)]
                    .iter()
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let total = widths.iter().sum::<usize>() + 2 * (cols - 1);
        if total <= width {
            best = (cols, rows, widths);
        }
    }
    let (cols, rows, widths) = best;
    (0..rows)
        .map(|r| {
            let mut line = String::new();
            for c in 0..cols {
                let Some(name) = names.get(c * rows + r) else {
                    break;
                };
                if c > 0 {
                    let pad = widths[c - 1] + 2 - names[(c - 1) * rows + r].chars().count();
                    line.push_str(&format!("{:pad$}", ""));
                }
                line.push_str(name);
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use initrd::{NewEntry, write_newc};

    fn meta(file_type: FileType, permissions: u32) -> Metadata {
        Metadata {
            file_type,
            permissions,
            size: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            ino: 1,
            rdev_major: 0,
            rdev_minor: 0,
            offset: None,
        }
    }

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(&meta(FileType::Directory, 0o755)), "drwxr-xr-x");
        assert_eq!(mode_string(&meta(FileType::Regular, 0o644)), "-rw-r--r--");
        assert_eq!(mode_string(&meta(FileType::Symlink, 0o777)), "lrwxrwxrwx");
        assert_eq!(mode_string(&meta(FileType::Regular, 0o4755)), "-rwsr-xr-x");
        assert_eq!(
            mode_string(&meta(FileType::Directory, 0o1777)),
            "drwxrwxrwt"
        );
        assert_eq!(mode_string(&meta(FileType::Regular, 0o2644)), "-rw-r-Sr--");
        assert_eq!(
            mode_string(&meta(FileType::CharDevice, 0o600)),
            "crw-------"
        );
    }

    #[test]
    fn long_rows_show_symlink_targets_and_align() {
        let bytes = write_newc(&[
            NewEntry::dir("etc", 0o755),
            NewEntry::file("etc/motd", 0o644, b"hello\n".to_vec()),
            NewEntry::file("etc/big", 0o600, vec![0; 12345]),
            NewEntry::symlink("etc/m", "motd"),
        ])
        .unwrap();
        let a = Archive::parse(&bytes).unwrap();
        let etc = a.chdir(NodeId::ROOT, "/etc").unwrap();
        let rows: Vec<LongRow<'_>> = ["big", "m", "motd"]
            .iter()
            .map(|n| LongRow::of(&a, etc, n).unwrap())
            .collect();
        let lines = long_listing(&rows);
        assert_eq!(lines[0], "-rw------- 1 0 0 12345 1970-01-01 00:00 big");
        assert_eq!(
            lines[1],
            "lrwxrwxrwx 1 0 0     4 1970-01-01 00:00 m -> motd"
        );
        assert_eq!(lines[2], "-rw-r--r-- 1 0 0     6 1970-01-01 00:00 motd");
        assert_eq!(LongRow::of(&a, etc, "nope").unwrap_err(), FsError::NotFound);
    }

    #[test]
    fn columns_fill_down_then_across() {
        let names = ["a", "bb", "ccc", "d", "e"];
        assert_eq!(columns(&names, 80), vec!["a  bb  ccc  d  e"]);
        // Narrow: 2 rows of 3 columns, down then across.
        assert_eq!(columns(&names, 11), vec!["a   ccc  e", "bb  d"]);
        // Too narrow for two columns: one per line.
        assert_eq!(columns(&names, 3), vec!["a", "bb", "ccc", "d", "e"]);
        assert!(columns(&[], 80).is_empty());
    }

    #[test]
    fn columns_never_exceed_width_when_names_fit() {
        let names: Vec<String> = (0..40).map(|i| "x".repeat(i % 13 + 1)).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for width in [20, 40, 80] {
            let lines = columns(&refs, width);
            assert!(lines.iter().all(|l| l.len() <= width), "{lines:?}");
            let mut seen: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
            let mut want = refs.clone();
            seen.sort();
            want.sort();
            assert_eq!(seen, want, "every name exactly once");
        }
    }

    #[test]
    fn error_texts_are_coreutils_words() {
        assert_eq!(error_text(FsError::NotFound), "No such file or directory");
        assert_eq!(error_text(FsError::IsADirectory), "Is a directory");
    }
}
