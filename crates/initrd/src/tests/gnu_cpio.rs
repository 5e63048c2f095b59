//! Interoperability with GNU cpio: it reads what we write, we read what it writes.
//! Each test is skipped, with a note, when `cpio` is not installed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::string::String;
use std::vec::Vec;

use super::scratch_dir;
use crate::{Archive, FileType, NewEntry, write_newc};

fn have_cpio() -> bool {
    let found = Command::new("cpio")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        std::println!("note: GNU cpio is not installed; skipping the cpio interoperability test");
    }
    found
}

/// Runs `cpio args` in `dir` with `input` on stdin; returns stdout.
fn run_cpio(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cpio");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "cpio {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn entries() -> Vec<NewEntry> {
    std::vec![
        NewEntry::file("etc/xen/brun.cfg", 0o640, b"name = 'brun'\n".to_vec()),
        NewEntry::file(
            "etc/xen/xend-config.sxp",
            0o644,
            b"(network-script network-route)\n".to_vec()
        ),
        NewEntry::file(
            "boot/vmlinuz-2.6.18-4-xen-686",
            0o755,
            super::pattern(100_003)
        ),
        NewEntry::symlink("boot/vmlinuz", "vmlinuz-2.6.18-4-xen-686"),
        NewEntry::dir("vm/domains/brun", 0o700),
        NewEntry::file("vm/domains/brun/disk.img", 0o600, super::pattern(8192)),
        NewEntry::file("a", 0o644, Vec::new()),
        NewEntry::file("bc", 0o644, b"x".to_vec()),
        NewEntry::file("def", 0o644, b"yy".to_vec()),
    ]
}

#[test]
fn gnu_cpio_lists_what_we_write() {
    if !have_cpio() {
        return;
    }
    let bytes = write_newc(&entries()).unwrap();
    let dir = scratch_dir("cpio-list");
    let listing = run_cpio(&dir, &["-i", "-t", "--quiet"], &bytes);
    let listing = String::from_utf8(listing).unwrap();
    let got: Vec<&str> = listing.lines().collect();
    assert_eq!(
        got,
        [
            "boot",
            "etc",
            "etc/xen",
            "vm",
            "vm/domains",
            "vm/domains/brun",
            "a",
            "bc",
            "boot/vmlinuz",
            "boot/vmlinuz-2.6.18-4-xen-686",
            "def",
            "etc/xen/brun.cfg",
            "etc/xen/xend-config.sxp",
            "vm/domains/brun/disk.img",
        ]
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gnu_cpio_extracts_what_we_write() {
    if !have_cpio() {
        return;
    }
    let entries = entries();
    let bytes = write_newc(&entries).unwrap();
    let dir = scratch_dir("cpio-extract");
    run_cpio(&dir, &["-i", "-d", "--quiet"], &bytes);
    for e in &entries {
        let host = dir.join(&e.path);
        let meta = fs::symlink_metadata(&host).unwrap();
        match &e.body {
            crate::NewBody::File(data) => {
                assert_eq!(&fs::read(&host).unwrap(), data, "{}", e.path);
                assert_eq!(meta.permissions().mode() & 0o7777, e.permissions);
            }
            crate::NewBody::Symlink(target) => {
                assert_eq!(fs::read_link(&host).unwrap().to_str(), Some(&target[..]));
            }
            crate::NewBody::Directory => {
                assert!(meta.is_dir());
                assert_eq!(meta.permissions().mode() & 0o7777, e.permissions);
            }
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn we_read_what_gnu_cpio_writes() {
    if !have_cpio() {
        return;
    }
    let dir = scratch_dir("cpio-create");
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    super::pack::populate(&src);
    // A hard link: GNU cpio stores the data once, with the last link.
    fs::hard_link(
        src.join("etc/xen/brun.cfg"),
        src.join("etc/xen/brun-hard.cfg"),
    )
    .unwrap();
    // Our own walk supplies the (sorted) list of names, both links included.
    let mut list = String::new();
    for entry in crate::collect_dir(&src).unwrap() {
        list.push_str(&entry.path);
        list.push('\n');
    }
    for format in ["newc", "crc"] {
        let bytes = run_cpio(&src, &["-o", "-H", format, "--quiet"], list.as_bytes());
        let a = Archive::parse(&bytes).unwrap_or_else(|e| panic!("{format}: {e}"));
        let magic = if format == "newc" { "070701" } else { "070702" };
        assert!(bytes.starts_with(magic.as_bytes()));
        assert_eq!(a.open("/etc/xen/brun.cfg").unwrap(), b"name = 'brun'\n");
        assert_eq!(
            a.open("/etc/xen/brun-hard.cfg").unwrap(),
            b"name = 'brun'\n"
        );
        assert_eq!(a.metadata("/etc/xen/brun.cfg").unwrap().nlink, 2);
        assert_eq!(
            a.open("/vm/domains/brun/disk.img").unwrap(),
            &super::pattern(64 * 1024 + 5)[..]
        );
        assert_eq!(a.read_link("/xen"), Ok("etc/xen"));
        assert_eq!(a.open("/xen/brun.cfg").unwrap(), b"name = 'brun'\n");
        assert_eq!(a.metadata("/vm/domains/brun").unwrap().permissions, 0o700);
        assert_eq!(
            a.metadata("/empty-dir").unwrap().file_type,
            FileType::Directory
        );
    }
    fs::remove_dir_all(&dir).unwrap();
}
