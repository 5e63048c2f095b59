//! Property tests: parsing never panics on damaged archives, whatever parses is a
//! consistent tree, writer output always round-trips, normalisation is canonical.

use std::collections::BTreeMap;
use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;

use super::raw;
use crate::{Archive, FileType, NewEntry, NodeId, normalize, write_newc};

fn bases() -> Vec<Vec<u8>> {
    let written = write_newc(&[
        NewEntry::file("etc/xen/brun.cfg", 0o644, b"name='brun'".to_vec()),
        NewEntry::symlink("xen", "etc/xen"),
        NewEntry::symlink("loop", "loop"),
        NewEntry::file("vm/disk.img", 0o600, super::pattern(600)),
    ])
    .unwrap();
    let hand = raw::archive(&[
        raw::dir("."),
        raw::file("./a/b", b"bb"),
        raw::symlink("/a/up", ".."),
        raw::entry(0o020600, "dev/console", &[]),
        raw::file("c", b""),
    ]);
    std::vec![written, hand]
}

/// Walks the whole tree through the public API; every reachable node must answer
/// consistently.
fn exercise(a: &Archive<'_>) {
    let mut todo = std::vec![NodeId::ROOT];
    let mut seen = 0usize;
    while let Some(dir) = todo.pop() {
        seen += 1;
        assert!(seen <= a.node_count(), "a node reached twice");
        let path = a.path_of(dir);
        assert_eq!(a.lookup(NodeId::ROOT, &path), Ok(dir));
        for e in a.read_dir_at(dir, ".").unwrap() {
            let child_path = normalize(&path, e.name);
            assert_eq!(a.lookup_nofollow(NodeId::ROOT, &child_path), Ok(e.id));
            let meta = a.node_metadata(e.id);
            assert_eq!((meta.file_type, meta.size), (e.file_type, e.size));
            match e.file_type {
                FileType::Directory => todo.push(e.id),
                FileType::Regular => {
                    assert_eq!(a.open(&child_path).map(<[u8]>::len), Ok(e.size));
                }
                FileType::Symlink => {
                    assert_eq!(a.read_link(&child_path).map(str::len), Ok(e.size));
                    let _ = a.open(&child_path);
                    let _ = a.read_dir(&child_path);
                }
                _ => assert!(a.open(&child_path).is_err()),
            }
        }
    }
}

/// A byte that is likely to keep a header meaningful but wrong.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        prop::sample::select(b"0123456789abcdefABCDEF/.\0!T".to_vec()),
        any::<u8>(),
    ]
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(std::vec![
            "a", "b", "..", ".", "", "etc", "xen", "loop", "up"
        ]),
        0..8,
    )
    .prop_map(|c| c.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn damaged_archives_never_panic(
        base in 0usize..2,
        edits in prop::collection::vec((any::<prop::sample::Index>(), interesting_byte()), 0..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
        lookups in prop::collection::vec(path_strategy(), 0..4),
    ) {
        let mut bytes = bases().swap_remove(base);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        if let Ok(a) = Archive::parse(&bytes) {
            exercise(&a);
            for p in &lookups {
                let _ = a.open(p);
                let _ = a.metadata(p);
                if let Ok(id) = a.chdir(NodeId::ROOT, p) {
                    prop_assert_eq!(a.lookup(NodeId::ROOT, &a.path_of(id)), Ok(id));
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"070701".to_vec();
        bytes.extend(tail);
        let _ = Archive::parse(&bytes);
    }

    #[test]
    fn written_archives_round_trip(
        files in prop::collection::btree_map(
            (prop::collection::vec(0u8..3, 0..3), 0u8..4),
            (prop::collection::vec(any::<u8>(), 0..300), 0u32..0o7777),
            0..12,
        ),
        dirs in prop::collection::btree_set(prop::collection::vec(0u8..3, 1..4), 0..4),
    ) {
        // Directories are named d*, files f*, so no file is another entry's parent.
        let dir_path = |c: &[u8]| c.iter().map(|d| std::format!("d{d}")).collect::<Vec<_>>().join("/");
        let mut entries = Vec::new();
        let mut want: BTreeMap<String, (Vec<u8>, u32)> = BTreeMap::new();
        for ((dir, name), (data, perm)) in &files {
            let mut path = dir_path(dir);
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&std::format!("f{name}"));
            entries.push(NewEntry::file(&path, *perm, data.clone()));
            want.insert(path, (data.clone(), *perm));
        }
        for d in &dirs {
            entries.push(NewEntry::dir(&dir_path(d), 0o711));
        }
        let bytes = write_newc(&entries).unwrap();
        prop_assert_eq!(bytes.len() % 512, 0);
        let a = Archive::parse(&bytes).unwrap();
        exercise(&a);
        for (path, (data, perm)) in &want {
            prop_assert_eq!(a.open(path).unwrap(), &data[..]);
            prop_assert_eq!(a.metadata(path).unwrap().permissions, *perm);
        }
        for d in &dirs {
            prop_assert_eq!(a.metadata(&dir_path(d)).unwrap().permissions, 0o711);
        }
        let files_in_archive = a.entries().iter().filter(|e| e.file_type() == FileType::Regular).count();
        prop_assert_eq!(files_in_archive, want.len());
    }

    #[test]
    fn normalize_is_canonical(cwd in path_strategy(), path in path_strategy()) {
        let n = normalize(&cwd, &path);
        prop_assert!(n.starts_with('/'));
        prop_assert!(n == "/" || !n.ends_with('/'));
        prop_assert!(n.split('/').skip(1).all(|c| n == "/" || (c != "." && c != ".." && !c.is_empty())));
        prop_assert_eq!(normalize("/", &n), n.clone());
        prop_assert_eq!(normalize(&n, ""), n.clone());
        // An absolute path ignores the cwd.
        prop_assert_eq!(normalize("/zzz", &n), n);
    }
}
