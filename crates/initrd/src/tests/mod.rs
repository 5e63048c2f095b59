//! Tests. `raw` builds hand-written archives byte by byte, independently of
//! [`crate::write`], so the reader is not only checked against our own writer.

mod format;
mod gnu_cpio;
mod pack;
mod props;
mod tree;
mod write;

use std::path::PathBuf;
use std::vec::Vec;

/// Hand-written newc entries.
pub mod raw {
    use std::vec::Vec;

    /// Header fields in wire order (see `newc::FIELD_NAMES`).
    #[derive(Clone, Copy)]
    pub struct Fields {
        pub ino: u32,
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
        pub nlink: u32,
        pub mtime: u32,
        pub filesize: u32,
        pub devmajor: u32,
        pub devminor: u32,
        pub rdevmajor: u32,
        pub rdevminor: u32,
        pub namesize: u32,
        pub check: u32,
    }

    impl Fields {
        pub fn for_entry(mode: u32, name: &[u8], data: &[u8]) -> Fields {
            Fields {
                ino: 7,
                mode,
                uid: 0,
                gid: 0,
                nlink: 1,
                mtime: 0x5000_0000,
                filesize: data.len() as u32,
                devmajor: 0,
                devminor: 0,
                rdevmajor: 0,
                rdevminor: 0,
                namesize: name.len() as u32 + 1,
                check: 0,
            }
        }

        fn list(&self) -> [u32; 13] {
            [
                self.ino,
                self.mode,
                self.uid,
                self.gid,
                self.nlink,
                self.mtime,
                self.filesize,
                self.devmajor,
                self.devminor,
                self.rdevmajor,
                self.rdevminor,
                self.namesize,
                self.check,
            ]
        }
    }

    /// An entry exactly as given: magic, fields (lower-case hex), `name_bytes` verbatim
    /// (the caller includes the NUL), padding, data, padding.
    pub fn entry_with(magic: &[u8], f: Fields, name_bytes: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::from(magic);
        for v in f.list() {
            out.extend_from_slice(std::format!("{v:08x}").as_bytes());
        }
        out.extend_from_slice(name_bytes);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out
    }

    /// A well-formed `070701` entry.
    pub fn entry(mode: u32, name: &str, data: &[u8]) -> Vec<u8> {
        let mut name_bytes = Vec::from(name.as_bytes());
        name_bytes.push(0);
        entry_with(
            b"070701",
            Fields::for_entry(mode, name.as_bytes(), data),
            &name_bytes,
            data,
        )
    }

    pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
        entry(0o100644, name, data)
    }

    pub fn dir(name: &str) -> Vec<u8> {
        entry(0o040755, name, &[])
    }

    pub fn symlink(name: &str, target: &str) -> Vec<u8> {
        entry(0o120777, name, target.as_bytes())
    }

    /// The trailer, with GNU cpio's field values and padding.
    pub fn trailer() -> Vec<u8> {
        let mut f = Fields::for_entry(0, b"TRAILER!!!", &[]);
        f.ino = 0;
        f.mtime = 0;
        entry_with(b"070701", f, b"TRAILER!!!\0", &[])
    }

    /// Concatenates entries and appends the trailer.
    pub fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend(trailer());
        out
    }
}

/// A fresh, empty scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(std::format!("initrd-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Bytes where byte i is i % 251 (a pattern with no short period).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
