//! Packing a host directory.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::scratch_dir;
use crate::{Archive, FileType, collect_dir, pack_dir};

/// Fills `root` with an initrd-like tree.
pub fn populate(root: &Path) {
    fs::create_dir_all(root.join("etc/xen")).unwrap();
    fs::create_dir_all(root.join("vm/domains/brun")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("etc/xen/brun.cfg"), b"name = 'brun'\n").unwrap();
    fs::write(
        root.join("etc/xen/xend-config.sxp"),
        b"(network-script network-bridge)\n",
    )
    .unwrap();
    fs::write(
        root.join("vm/domains/brun/disk.img"),
        super::pattern(64 * 1024 + 5),
    )
    .unwrap();
    fs::set_permissions(
        root.join("vm/domains/brun"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::set_permissions(
        root.join("etc/xen/brun.cfg"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    symlink("etc/xen", root.join("xen")).unwrap();
    symlink("/etc/xen/brun.cfg", root.join("etc/brun-link")).unwrap();
}

#[test]
fn pack_dir_round_trips() {
    let dir = scratch_dir("pack");
    populate(&dir);
    let bytes = pack_dir(&dir).unwrap();
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(a.open("/etc/xen/brun.cfg").unwrap(), b"name = 'brun'\n");
    assert_eq!(
        a.open("/xen/xend-config.sxp").unwrap(),
        b"(network-script network-bridge)\n"
    );
    assert_eq!(a.open("/etc/brun-link").unwrap(), b"name = 'brun'\n");
    assert_eq!(a.read_link("/xen"), Ok("etc/xen"));
    assert_eq!(
        a.open("/vm/domains/brun/disk.img").unwrap(),
        &super::pattern(64 * 1024 + 5)[..]
    );
    assert_eq!(a.metadata("/etc/xen/brun.cfg").unwrap().permissions, 0o640);
    assert_eq!(a.metadata("/vm/domains/brun").unwrap().permissions, 0o700);
    let empty = a.metadata("/empty-dir").unwrap();
    assert_eq!(empty.file_type, FileType::Directory);
    assert!(a.read_dir("/empty-dir").unwrap().is_empty());
    // The collected entries come out sorted, parents before children.
    let paths: std::vec::Vec<_> = collect_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "empty-dir",
            "etc",
            "etc/brun-link",
            "etc/xen",
            "etc/xen/brun.cfg",
            "etc/xen/xend-config.sxp",
            "vm",
            "vm/domains",
            "vm/domains/brun",
            "vm/domains/brun/disk.img",
            "xen",
        ]
    );
    // Packing twice gives the same bytes.
    assert_eq!(pack_dir(&dir).unwrap(), bytes);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pack_dir_rejects_other_file_types() {
    let dir = scratch_dir("pack-socket");
    fs::write(dir.join("ok"), b"1").unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(dir.join("sock")).unwrap();
    let err = pack_dir(&dir).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("sock"), "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pack_dir_needs_a_directory() {
    let dir = scratch_dir("pack-file");
    fs::write(dir.join("file"), b"1").unwrap();
    assert!(pack_dir(&dir.join("file")).is_err());
    assert!(pack_dir(&dir.join("missing")).is_err());
    fs::remove_dir_all(&dir).unwrap();
}
