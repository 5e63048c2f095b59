//! The writer: round trips, layout rules, rejected inputs.

use std::string::String;
use std::vec::Vec;

use crate::newc::{HEADER_LEN, parse_entries};
use crate::write::BLOCK_LEN;
use crate::{Archive, FileType, NewEntry, WriteError, write_newc};

fn sample_entries() -> Vec<NewEntry> {
    std::vec![
        NewEntry::file("etc/xen/brun.cfg", 0o644, b"name = 'brun'\n".to_vec()),
        NewEntry::file(
            "/etc/xen/xend-config.sxp",
            0o600,
            b"(network-script network-nat)".to_vec()
        ),
        NewEntry::dir("./etc", 0o750),
        NewEntry::file(
            "boot/vmlinuz-2.6.18-4-xen-686",
            0o4755,
            super::pattern(70_000)
        ),
        NewEntry::symlink("boot/vmlinuz", "vmlinuz-2.6.18-4-xen-686"),
        NewEntry::dir("vm/domains/brun", 0o700),
        NewEntry::file(
            "vm/domains/brun/disk.img",
            0o644,
            super::pattern(5 * 1024 + 1)
        ),
        NewEntry::file("empty", 0o644, Vec::new()),
        NewEntry::file("x/TRAILER!!!", 0o644, b"not the end".to_vec()),
    ]
}

#[test]
fn round_trip_write_parse_tree() {
    let entries = sample_entries();
    let bytes = write_newc(&entries).unwrap();
    let a = Archive::parse(&bytes).unwrap();
    for e in &entries {
        let meta = a.symlink_metadata(&e.path).unwrap();
        assert_eq!(meta.permissions, e.permissions, "{}", e.path);
        assert_eq!((meta.uid, meta.gid, meta.mtime), (0, 0, 0));
        match &e.body {
            crate::NewBody::File(data) => assert_eq!(a.open(&e.path).unwrap(), &data[..]),
            crate::NewBody::Symlink(t) => assert_eq!(a.read_link(&e.path).unwrap(), t),
            crate::NewBody::Directory => assert!(meta.is_dir()),
        }
    }
    assert_eq!(a.open("boot/vmlinuz").unwrap().len(), 70_000);
    // Implied parents were written as entries of their own, mode 0755.
    let vm = a.metadata("vm").unwrap();
    assert_eq!((vm.permissions, vm.offset.is_some()), (0o755, true));
    let names: Vec<&str> = a.read_dir("/").unwrap().iter().map(|e| e.name).collect();
    assert_eq!(names, ["boot", "empty", "etc", "vm", "x"]);
}

#[test]
fn layout_is_deterministic_and_directories_come_first() {
    let entries = sample_entries();
    let bytes = write_newc(&entries).unwrap();
    let mut reversed = entries.clone();
    reversed.reverse();
    assert_eq!(write_newc(&reversed).unwrap(), bytes);

    let parsed = parse_entries(&bytes).unwrap();
    let order: Vec<(&str, FileType)> = parsed.iter().map(|e| (e.name, e.file_type())).collect();
    use FileType::*;
    assert_eq!(
        order,
        [
            ("boot", Directory),
            ("etc", Directory),
            ("etc/xen", Directory),
            ("vm", Directory),
            ("vm/domains", Directory),
            ("vm/domains/brun", Directory),
            ("x", Directory),
            ("boot/vmlinuz", Symlink),
            ("boot/vmlinuz-2.6.18-4-xen-686", Regular),
            ("empty", Regular),
            ("etc/xen/brun.cfg", Regular),
            ("etc/xen/xend-config.sxp", Regular),
            ("vm/domains/brun/disk.img", Regular),
            ("x/TRAILER!!!", Regular),
        ]
    );
    for (i, e) in parsed.iter().enumerate() {
        assert_eq!(e.ino, i as u32 + 1, "inode numbers count from 1");
        assert_eq!(e.mtime, 0);
        assert_eq!(e.nlink, if e.file_type() == Directory { 2 } else { 1 });
        assert_eq!(e.offset % 4, 0);
    }
    assert_eq!(bytes.len() % BLOCK_LEN, 0);
    assert!(bytes.starts_with(b"070701"));
}

#[test]
fn empty_archive_is_just_the_trailer() {
    let bytes = write_newc(&[]).unwrap();
    assert_eq!(bytes.len(), BLOCK_LEN);
    assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + 11], b"TRAILER!!!\0");
    assert!(bytes[HEADER_LEN + 11..].iter().all(|&b| b == 0));
    let a = Archive::parse(&bytes).unwrap();
    assert!(a.entries().is_empty());
    assert!(a.read_dir("/").unwrap().is_empty());
    assert_eq!(a.open("anything"), Err(crate::FsError::NotFound));
}

#[test]
fn header_fields_are_upper_case_hex() {
    let bytes = write_newc(&[NewEntry::file("f", 0o644, std::vec![0; 0xab])]).unwrap();
    // c_filesize of the single entry.
    assert_eq!(&bytes[6 + 6 * 8..6 + 7 * 8], b"000000AB");
    // c_mode.
    assert_eq!(&bytes[6 + 8..6 + 16], b"000081A4");
}

#[test]
fn rejected_inputs() {
    let cases: Vec<(Vec<NewEntry>, WriteError)> = std::vec![
        (
            std::vec![NewEntry::dir(".", 0o755)],
            WriteError::BadPath(String::from("."))
        ),
        (
            std::vec![NewEntry::dir("/", 0o755)],
            WriteError::BadPath(String::from("/"))
        ),
        (
            std::vec![NewEntry::file("a/../b", 0o644, Vec::new())],
            WriteError::BadPath(String::from("a/../b"))
        ),
        (
            std::vec![NewEntry::file("a\0b", 0o644, Vec::new())],
            WriteError::BadPath(String::from("a\0b"))
        ),
        (
            std::vec![NewEntry::file("./TRAILER!!!", 0o644, Vec::new())],
            WriteError::BadPath(String::from("./TRAILER!!!"))
        ),
        (
            std::vec![
                NewEntry::file("a", 0o644, Vec::new()),
                NewEntry::dir("/a/", 0o755)
            ],
            WriteError::Duplicate(String::from("/a/"))
        ),
        (
            std::vec![NewEntry::file("a", 0o10644, Vec::new())],
            WriteError::BadPermissions {
                path: String::from("a"),
                permissions: 0o10644
            }
        ),
        (
            std::vec![NewEntry::symlink("l", "")],
            WriteError::BadSymlinkTarget(String::from("l"))
        ),
        (
            std::vec![NewEntry::symlink("l", "a\0")],
            WriteError::BadSymlinkTarget(String::from("l"))
        ),
        (
            std::vec![
                NewEntry::file("a", 0o644, Vec::new()),
                NewEntry::file("a/b/c", 0o644, Vec::new())
            ],
            WriteError::ParentNotDirectory(String::from("a/b/c"))
        ),
        (
            std::vec![
                NewEntry::symlink("a", "/etc"),
                NewEntry::file("a/b", 0o644, Vec::new())
            ],
            WriteError::ParentNotDirectory(String::from("a/b"))
        ),
    ];
    for (entries, want) in cases {
        assert_eq!(write_newc(&entries), Err(want.clone()), "{want}");
    }
}
