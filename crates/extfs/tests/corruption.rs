//! Corrupted images: mutated superblocks, descriptors, bitmaps, inodes and directory
//! entries must give errors, never a panic, whatever operation runs on them.

mod common;

use common::*;
use extfs::{Error, FileKind, Fs, MemDevice, MountOptions};
use proptest::prelude::*;
use std::sync::OnceLock;

/// A populated 1 KiB-block image and the length of its used prefix.
fn base() -> Option<&'static (Vec<u8>, usize)> {
    static BASE: OnceLock<Option<(Vec<u8>, usize)>> = OnceLock::new();
    BASE.get_or_init(|| {
        if !have_e2fsprogs("corruption") {
            return None;
        }
        let dir = scratch();
        for (p, len) in [
            ("a/b/c/file", 3000),
            ("a/big", 300 * 1024),
            ("etc/xen/x.cfg", 40),
            ("top", 12 * 1024 + 1),
        ] {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, pattern(len, len as u32)).unwrap();
        }
        for i in 0..40 {
            std::fs::write(dir.join(format!("a/f{i}")), b"x").unwrap();
        }
        let img = mkfs_ext2(1024, 1024, Some(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        let used = img.iter().rposition(|&b| b != 0).unwrap_or(0) + 1;
        Some((img, used))
    })
    .as_ref()
}

/// Reads the whole tree (bounded), returning how many files were read.
fn walk(fs: &mut Fs<MemDevice>, ino: u32, depth: u32, budget: &mut u32) -> u32 {
    let mut n = 0;
    let Ok(entries) = fs.readdir(ino) else {
        return 0;
    };
    for e in entries {
        if *budget == 0 || e.name == b"." || e.name == b".." {
            continue;
        }
        *budget -= 1;
        let Ok(st) = fs.stat(e.ino) else { continue };
        match st.kind {
            FileKind::Dir if depth < 6 => n += walk(fs, e.ino, depth + 1, budget),
            FileKind::File | FileKind::Symlink => {
                let mut buf = vec![0u8; 64 * 1024];
                let mut off = 0u64;
                while off < st.size.min(512 * 1024) {
                    match fs.read_at(e.ino, off, &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => off += k as u64,
                    }
                }
                n += 1;
            }
            _ => {}
        }
    }
    n
}

/// Every operation on one image; returns whether any mount succeeded.
fn exercise(img: &[u8]) -> bool {
    let mut mounted = false;
    for opts in [
        MountOptions {
            read_only: true,
            ..Default::default()
        },
        MountOptions::default(),
        MountOptions {
            force_check: true,
            ..Default::default()
        },
    ] {
        let Ok((mut fs, _)) = Fs::mount(MemDevice::from_bytes(img.to_vec()), opts) else {
            continue;
        };
        mounted = true;
        let mut budget = 200;
        walk(&mut fs, 2, 0, &mut budget);
        let _ = fs.check(false);
        if !opts.read_only {
            if let Ok(ino) = fs.create("/a/new", 0o644) {
                let _ = fs.write_at(ino, 5000, &[7u8; 10_000]);
                let _ = fs.truncate(ino, 100);
            }
            if let Ok(ino) = fs.lookup("/top") {
                let _ = fs.write_at(ino, 100, b"overwrite");
                let _ = fs.truncate(ino, 5);
            }
            let _ = fs.mkdir("/a/b/d");
            let _ = fs.unlink("/a/big");
            let _ = fs.unlink("/a/f3");
            let _ = fs.rmdir("/a/b/d");
            let _ = fs.rmdir("/a/b/c");
            let _ = fs.statfs();
            let _ = fs.unmount();
        }
    }
    mounted
}

#[test]
fn byte_flips_never_panic() {
    let Some((img, used)) = base() else { return };
    assert!(exercise(img), "the unmutated image mounts");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 7;
        x ^= x >> 9;
        x
    };
    let (mut mounted, mut refused) = (0, 0);
    for round in 0..1500 {
        let mut m = img.clone();
        let flips = 1 + next() % 6;
        for _ in 0..flips {
            // Half the flips in the first 8 KiB (superblock, descriptors, bitmaps, the
            // start of the inode table), half anywhere in the used part.
            let span = if next() % 2 == 0 { 8192 } else { *used as u64 };
            let pos = 1024 + (next() % (span - 1024)) as usize;
            if round % 3 == 0 {
                m[pos] = next() as u8;
            } else {
                m[pos] ^= 1 << (next() % 8);
            }
        }
        if exercise(&m) {
            mounted += 1
        } else {
            refused += 1
        }
    }
    eprintln!("byte flips: {mounted} images mounted, {refused} refused");
    // Both outcomes happen: the loop reaches the operations and the validation.
    assert!(
        mounted > 100 && refused > 10,
        "mounted {mounted}, refused {refused}"
    );
}

#[test]
fn superblock_and_descriptor_fields_are_validated() {
    let Some((img, _)) = base() else { return };
    let put32 =
        |m: &mut Vec<u8>, off: usize, v: u32| m[off..off + 4].copy_from_slice(&v.to_le_bytes());
    let mount =
        |m: Vec<u8>| Fs::mount(MemDevice::from_bytes(m), MountOptions::default()).map(|_| ());
    let cases: Vec<(usize, u32, &str)> = vec![
        (1024 + 4, u32::MAX, "filesystem larger than the device"),
        (1024 + 24, 9, "block size above 64 KiB"),
        (1024 + 32, 0, "bad blocks per group"),
        (1024 + 40, 0, "bad inodes per group"),
        (1024, 7, "inode count does not match the groups"),
        (2048 + 8, 1_000_000, "group metadata outside the filesystem"),
        (
            2048 + 4,
            u32::from_le_bytes(img[2048 + 8..2048 + 12].try_into().unwrap()),
            "group metadata overlaps",
        ),
    ];
    for (off, v, msg) in cases {
        let mut m = img.clone();
        put32(&mut m, off, v);
        assert_eq!(mount(m), Err(Error::Corrupt(msg)), "field at {off}");
    }
    let mut m = img.clone();
    m[1024 + 56] = 0;
    assert_eq!(mount(m), Err(Error::Corrupt("bad superblock magic")));
    let mut m = img.clone();
    put32(&mut m, 1024 + 96, 0x2 | 0x4);
    assert!(
        matches!(mount(m), Err(Error::Unsupported(_))),
        "journal needing recovery"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Arbitrary bytes written over a directory block, an inode or the superblock.
    #[test]
    fn overwritten_structures_never_panic(
        which in 0usize..3,
        at in 0usize..1024,
        bytes in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let Some((img, _)) = base() else { return Ok(()) };
        let mut m = img.clone();
        let target = match which {
            // A directory block of /a, the inode table block holding /a/big, the superblock.
            0 => debug_block(img, "blocks /a"),
            1 => debug_block(img, "imap /a/big"),
            _ => 1024,
        };
        let start = target + at.min(1024 - bytes.len());
        m[start..start + bytes.len()].copy_from_slice(&bytes);
        exercise(&m);
    }
}

/// Byte offset of the first block debugfs names for `req` (`blocks <path>` lists the
/// blocks of a file, `imap <path>` the inode table block of its inode).
fn debug_block(img: &[u8], req: &str) -> usize {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(&v) = cache.lock().unwrap().get(req) {
        return v;
    }
    let out = String::from_utf8(debugfs(img, req)).unwrap();
    let blk: usize = match out.split("located at block ").nth(1) {
        Some(rest) => rest.split(',').next().unwrap().trim().parse().unwrap(),
        None => out.split_whitespace().next().unwrap().parse().unwrap(),
    };
    cache.lock().unwrap().insert(req.to_string(), blk * 1024);
    blk * 1024
}
