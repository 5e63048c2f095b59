//! The file tree: normalisation, directories, lookups relative to a cwd, symlinks,
//! hard links, large files.

use std::string::String;
use std::vec::Vec;

use super::raw::{self, Fields};
use crate::tree::MAX_SYMLINK_FOLLOWS;
use crate::{Archive, FileType, FsError, NodeId, normalize};

/// An initrd shaped like dom0's, written by hand with mixed name spellings.
fn sample() -> Vec<u8> {
    raw::archive(&[
        raw::dir("."),
        raw::entry(0o040700, "./etc", &[]),
        raw::file("./etc/xen/brun.cfg", b"name = 'brun'\n"),
        raw::file(
            "etc/xen/xend-config.sxp",
            b"(network-script network-bridge)\n",
        ),
        raw::file("/etc/xen/other.cfg", b"name = 'other'\n"),
        raw::entry(0o100755, "boot/vmlinuz-2.6.18-4-xen-686", b"\x7fELF kernel"),
        raw::symlink("boot/vmlinuz", "vmlinuz-2.6.18-4-xen-686"),
        raw::symlink("kernel", "/boot/vmlinuz"),
        raw::symlink("xen", "etc/xen"),
        raw::symlink("up", ".."),
        raw::symlink("dangling", "/nowhere"),
        raw::symlink("etc/xen/self", "."),
        raw::entry(0o020600, "dev/console", &[]),
        raw::file("vm/domains/brun/disk.img", &super::pattern(4096)),
    ])
}

fn names(a: &Archive<'_>, path: &str) -> Vec<String> {
    a.read_dir(path)
        .unwrap()
        .iter()
        .map(|e| String::from(e.name))
        .collect()
}

#[test]
fn normalize_is_lexical_and_stays_below_root() {
    let cases = [
        ("/", "./etc/xen/brun.cfg", "/etc/xen/brun.cfg"),
        ("/", "etc/xen/brun.cfg", "/etc/xen/brun.cfg"),
        ("/", "/etc/xen/brun.cfg", "/etc/xen/brun.cfg"),
        ("/anything", "//etc/./xen//brun.cfg/", "/etc/xen/brun.cfg"),
        ("/etc", "xen/brun.cfg", "/etc/xen/brun.cfg"),
        ("etc/xen", "../xen/./brun.cfg", "/etc/xen/brun.cfg"),
        ("/etc/xen", "..", "/etc"),
        ("/etc/xen", "../../../..", "/"),
        ("/", "..", "/"),
        ("/", "../etc", "/etc"),
        ("/a/b", "", "/a/b"),
        ("", "", "/"),
        ("/a/../../b", "c", "/b/c"),
    ];
    for (cwd, path, want) in cases {
        assert_eq!(normalize(cwd, path), want, "normalize({cwd:?}, {path:?})");
    }
}

#[test]
fn name_spellings_are_one_path() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    for path in [
        "./etc/xen/brun.cfg",
        "etc/xen/brun.cfg",
        "/etc/xen/brun.cfg",
        "//etc/./xen/brun.cfg",
    ] {
        assert_eq!(a.open(path).unwrap(), b"name = 'brun'\n", "{path}");
    }
    // The three spellings in the archive landed in one directory.
    assert_eq!(
        names(&a, "/etc/xen"),
        ["brun.cfg", "other.cfg", "self", "xend-config.sxp"]
    );
}

#[test]
fn directories_explicit_and_implied() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(
        names(&a, "/"),
        [
            "boot", "dangling", "dev", "etc", "kernel", "up", "vm", "xen"
        ]
    );
    // Explicit directories keep their mode and offset; implied ones are 0755, no offset.
    let etc = a.metadata("/etc").unwrap();
    assert_eq!(
        (etc.file_type, etc.permissions),
        (FileType::Directory, 0o700)
    );
    assert!(etc.offset.is_some());
    let xen = a.metadata("/etc/xen").unwrap();
    assert_eq!(
        (xen.file_type, xen.permissions, xen.offset),
        (FileType::Directory, 0o755, None)
    );
    assert!(a.metadata("/").unwrap().offset.is_some());
    // Kinds and sizes in a listing.
    let boot = a.read_dir("/boot").unwrap();
    assert_eq!(boot.len(), 2);
    assert_eq!(
        (boot[0].name, boot[0].file_type, boot[0].size),
        (
            "vmlinuz",
            FileType::Symlink,
            "vmlinuz-2.6.18-4-xen-686".len()
        )
    );
    assert_eq!(
        (boot[1].name, boot[1].file_type, boot[1].size),
        ("vmlinuz-2.6.18-4-xen-686", FileType::Regular, 11)
    );
    assert_eq!(
        a.metadata("/boot/vmlinuz-2.6.18-4-xen-686")
            .unwrap()
            .permissions,
        0o755
    );
    assert_eq!(
        a.read_dir("/dev").unwrap()[0].file_type,
        FileType::CharDevice
    );
    // The root directory without an explicit entry is implied too.
    let bytes = raw::archive(&[raw::file("a/b", b"")]);
    let b = Archive::parse(&bytes).unwrap();
    assert_eq!(b.metadata("/").unwrap().offset, None);
    assert_eq!(names(&b, "/"), ["a"]);
    assert_eq!(b.node_count(), 3);
}

#[test]
fn implied_directory_may_be_named_later() {
    // `find -depth` order: children before their directory.
    let bytes = raw::archive(&[
        raw::file("etc/xen/a.cfg", b"a"),
        raw::entry(0o040750, "etc/xen", &[]),
        raw::entry(0o040711, "etc", &[]),
    ]);
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(a.metadata("etc/xen").unwrap().permissions, 0o750);
    assert_eq!(a.metadata("etc").unwrap().permissions, 0o711);
    assert_eq!(a.open("etc/xen/a.cfg").unwrap(), b"a");
}

#[test]
fn lookup_errors() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(a.open("/etc/xen/missing.cfg"), Err(FsError::NotFound));
    assert_eq!(a.open("/nope/brun.cfg"), Err(FsError::NotFound));
    assert_eq!(a.open("/etc/xen"), Err(FsError::IsADirectory));
    assert_eq!(a.open("/"), Err(FsError::IsADirectory));
    assert_eq!(a.open("/dev/console"), Err(FsError::NotAFile));
    assert_eq!(
        a.read_dir("/etc/xen/brun.cfg").err(),
        Some(FsError::NotADirectory)
    );
    assert_eq!(a.open("/etc/xen/brun.cfg/x"), Err(FsError::NotADirectory));
    assert_eq!(a.open("/etc/xen/brun.cfg/"), Err(FsError::NotADirectory));
    assert_eq!(a.open("/kernel/"), Err(FsError::NotADirectory));
    assert!(a.open("/kernel").is_ok());
    assert_eq!(a.open("/etc/xen/brun.cfg/.."), Err(FsError::NotADirectory));
    assert_eq!(a.read_link("/etc"), Err(FsError::NotASymlink));
    assert_eq!(
        a.chdir(NodeId::ROOT, "/etc/xen/brun.cfg"),
        Err(FsError::NotADirectory)
    );
    let file = a.lookup(NodeId::ROOT, "/etc/xen/brun.cfg").unwrap();
    assert_eq!(a.open_at(file, "x"), Err(FsError::NotADirectory));
    // ...but an absolute path does not use the cwd.
    assert!(a.open_at(file, "/etc/xen/brun.cfg").is_ok());
}

#[test]
fn relative_lookups_from_a_cwd() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    let etc = a.chdir(NodeId::ROOT, "etc").unwrap();
    assert_eq!(a.path_of(etc), "/etc");
    assert_eq!(a.open_at(etc, "xen/brun.cfg").unwrap(), b"name = 'brun'\n");
    assert_eq!(
        a.open_at(etc, "./xen/../xen/brun.cfg").unwrap(),
        b"name = 'brun'\n"
    );
    let xen = a.chdir(etc, "xen").unwrap();
    assert_eq!(a.path_of(xen), "/etc/xen");
    assert_eq!(a.open_at(xen, "brun.cfg").unwrap(), b"name = 'brun'\n");
    assert_eq!(a.chdir(xen, ".."), Ok(etc));
    assert_eq!(a.chdir(xen, "../.."), Ok(NodeId::ROOT));
    // `..` never climbs above the root.
    assert_eq!(a.chdir(xen, "../../../../.."), Ok(NodeId::ROOT));
    assert_eq!(
        a.open_at(xen, "../../../../etc/xen/brun.cfg").unwrap(),
        b"name = 'brun'\n"
    );
    assert_eq!(a.path_of(NodeId::ROOT), "/");
    assert_eq!(a.chdir(xen, "nope"), Err(FsError::NotFound));
    let names: Vec<&str> = a
        .read_dir_at(xen, ".")
        .unwrap()
        .iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["brun.cfg", "other.cfg", "self", "xend-config.sxp"]);
    assert_eq!(a.metadata_at(xen, "brun.cfg").unwrap().size, 14);
}

#[test]
fn symlinks_resolve() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    // Relative target (from the link's directory), absolute target, chains.
    assert_eq!(a.open("/boot/vmlinuz").unwrap(), b"\x7fELF kernel");
    assert_eq!(a.open("/kernel").unwrap(), b"\x7fELF kernel");
    // A link to a directory in the middle of a path.
    assert_eq!(a.open("/xen/brun.cfg").unwrap(), b"name = 'brun'\n");
    assert_eq!(
        a.open("/etc/xen/self/self/self/brun.cfg").unwrap(),
        b"name = 'brun'\n"
    );
    // `..` after a link is taken from where the link led (physically).
    assert_eq!(
        a.chdir(NodeId::ROOT, "/xen/.."),
        a.chdir(NodeId::ROOT, "/etc")
    );
    assert_eq!(
        a.chdir(NodeId::ROOT, "/up/up/etc"),
        a.chdir(NodeId::ROOT, "/etc")
    );
    let xen = a.chdir(NodeId::ROOT, "xen").unwrap();
    assert_eq!(a.path_of(xen), "/etc/xen");
    // metadata follows, symlink_metadata does not; read_link gives the target.
    assert_eq!(a.metadata("/kernel").unwrap().file_type, FileType::Regular);
    let link = a.symlink_metadata("/kernel").unwrap();
    assert_eq!((link.file_type, link.size), (FileType::Symlink, 13));
    assert_eq!(a.read_link("/kernel"), Ok("/boot/vmlinuz"));
    assert_eq!(a.read_link("/xen/self"), Ok("."));
    // A trailing slash follows a final link.
    assert_eq!(
        a.symlink_metadata("/xen/").unwrap().file_type,
        FileType::Directory
    );
    // A dangling link is not found when followed, but exists itself.
    assert_eq!(a.open("/dangling"), Err(FsError::NotFound));
    assert_eq!(
        a.symlink_metadata("/dangling").unwrap().file_type,
        FileType::Symlink
    );
    // Reading a link as a file follows it; a link to a directory is a directory.
    assert_eq!(a.open("/xen"), Err(FsError::IsADirectory));
}

#[test]
fn symlink_loops_are_bounded() {
    let bytes = raw::archive(&[
        raw::symlink("a", "b"),
        raw::symlink("b", "/a"),
        raw::symlink("me", "me"),
        raw::symlink("d/deep", "../d/deep/x"),
    ]);
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(a.open("a"), Err(FsError::SymlinkLoop));
    assert_eq!(a.open("me"), Err(FsError::SymlinkLoop));
    assert_eq!(a.read_dir("me/x").err(), Some(FsError::SymlinkLoop));
    assert_eq!(a.open("d/deep"), Err(FsError::SymlinkLoop));
    // The loop is only walked when followed.
    assert_eq!(a.read_link("a"), Ok("b"));
}

#[test]
fn symlink_chain_limit_is_exact() {
    // l0 -> l1 -> ... -> lN -> file: N+1 follows.
    fn chain(links: usize) -> Vec<u8> {
        let mut entries = std::vec![raw::file("file", b"end")];
        for i in 0..links {
            let target = if i + 1 == links {
                String::from("file")
            } else {
                std::format!("l{}", i + 1)
            };
            entries.push(raw::symlink(&std::format!("l{i}"), &target));
        }
        raw::archive(&entries)
    }
    let ok = chain(MAX_SYMLINK_FOLLOWS);
    assert_eq!(Archive::parse(&ok).unwrap().open("l0").unwrap(), b"end");
    let too_long = chain(MAX_SYMLINK_FOLLOWS + 1);
    assert_eq!(
        Archive::parse(&too_long).unwrap().open("l0"),
        Err(FsError::SymlinkLoop)
    );
}

#[test]
fn hard_links_share_the_data_stored_with_the_last_link() {
    let link = |name: &str, ino: u32, nlink: u32, data: &[u8]| {
        let mut f = Fields::for_entry(0o100644, name.as_bytes(), data);
        f.ino = ino;
        f.nlink = nlink;
        raw::entry_with(b"070701", f, std::format!("{name}\0").as_bytes(), data)
    };
    let bytes = raw::archive(&[
        link("a", 5, 3, b""),
        link("b", 5, 3, b""),
        link("c", 5, 3, b"shared"),
        // Same inode but nlink 1: not a link, an empty file.
        link("d", 5, 1, b""),
        // nlink 2 without data anywhere in its group: stays empty.
        link("e", 9, 2, b""),
    ]);
    let a = Archive::parse(&bytes).unwrap();
    for name in ["a", "b", "c"] {
        assert_eq!(a.open(name).unwrap(), b"shared", "{name}");
        assert_eq!(a.metadata(name).unwrap().size, 6);
    }
    assert_eq!(a.open("d").unwrap(), b"");
    assert_eq!(a.open("e").unwrap(), b"");
}

#[test]
fn large_files_are_borrowed_not_copied() {
    let big = super::pattern(300 * 1024 + 3);
    let bytes = raw::archive(&[
        raw::file("small", b"1"),
        raw::file("vm/disk.img", &big),
        raw::file("after", b"22"),
    ]);
    let a = Archive::parse(&bytes).unwrap();
    let data = a.open("/vm/disk.img").unwrap();
    assert_eq!(data, &big[..]);
    let range = bytes.as_ptr_range();
    assert!(range.contains(&data.as_ptr()));
    assert_eq!(a.open("after").unwrap(), b"22");
    assert_eq!(a.metadata("vm/disk.img").unwrap().size, big.len());
}
