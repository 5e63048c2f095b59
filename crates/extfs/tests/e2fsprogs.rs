//! The crate cross-checked against e2fsprogs: images made by mke2fs (also `-d`-populated)
//! read back, everything the crate writes checked clean by `e2fsck -fn` and read by
//! `debugfs`. Each test skips with a printed reason if e2fsprogs is missing.

mod common;

use common::*;
use extfs::{Error, FeatureKind, FileKind, Fs, MemDevice, MountOptions};
use std::path::Path;

/// A host tree: small and multi-block files, nested directories, a symlink, a big
/// directory (htree-indexed by mke2fs).
fn populate(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut add = |rel: &str, data: Vec<u8>| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        files.push((format!("/{rel}"), data));
    };
    add(
        "etc/xen/xend-config.sxp",
        b"(xend-unix-server yes)\n".to_vec(),
    );
    add("etc/hostname", b"dom0\n".to_vec());
    add("big/one-block", pattern(1024, 1));
    add("big/multi", pattern(100_000, 2));
    add("big/double-indirect", pattern(600 * 1024, 3));
    add("empty", Vec::new());
    for i in 0..300 {
        add(
            &format!("many/file-{i:03}"),
            format!("file {i}\n").into_bytes(),
        );
    }
    std::os::unix::fs::symlink("etc/hostname", root.join("link")).unwrap();
    // A slow symlink (target in a block) and a hard link.
    std::os::unix::fs::symlink(
        format!("etc/{}/../hostname", "x".repeat(80)),
        root.join("longlink"),
    )
    .unwrap();
    std::fs::hard_link(root.join("etc/hostname"), root.join("hardlink")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    files
}

fn feature_sets() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("ext2 1k", vec!["-t", "ext2", "-b", "1024"]),
        ("ext2 4k", vec!["-t", "ext2", "-b", "4096"]),
        (
            "ext4 lite 4k",
            vec!["-t", "ext4", "-b", "4096", "-O", EXT4_LITE],
        ),
        (
            "ext2 1k 128-byte inodes",
            vec!["-t", "ext2", "-b", "1024", "-I", "128"],
        ),
    ]
}

#[test]
fn reads_populated_images() {
    if !have_e2fsprogs("reads_populated_images") {
        return;
    }
    let dir = scratch();
    let _cleanup = Cleanup(dir.clone());
    let files = populate(&dir);
    for (name, args) in feature_sets() {
        let img = mkfs(&args, 8192, Some(&dir));
        let (mut fs, rep) = Fs::mount(
            MemDevice::from_bytes(img),
            MountOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(rep.was_clean, "{name}");
        for (path, data) in &files {
            assert_eq!(&read_all(&mut fs, path), data, "{name}: {path}");
        }
        let link = fs.lookup("/link").unwrap();
        let st = fs.stat(link).unwrap();
        assert_eq!(st.kind, FileKind::Symlink);
        let mut b = [0u8; 64];
        let n = fs.read_at(link, 0, &mut b).unwrap();
        assert_eq!(&b[..n], b"etc/hostname");
        let long = fs.lookup("/longlink").unwrap();
        let mut b = [0u8; 200];
        let n = fs.read_at(long, 0, &mut b).unwrap();
        assert_eq!(
            b[..n],
            *format!("etc/{}/../hostname", "x".repeat(80)).as_bytes(),
            "{name}"
        );
        let hard = fs.lookup("/hardlink").unwrap();
        assert_eq!(hard, fs.lookup("/etc/hostname").unwrap(), "{name}");
        assert_eq!(fs.stat(hard).unwrap().links, 2);
        let many = fs.lookup("/many").unwrap();
        let mut names: Vec<String> = fs
            .readdir(many)
            .unwrap()
            .iter()
            .map(|e| e.name_str().unwrap().to_string())
            .collect();
        names.sort();
        assert_eq!(names.len(), 302, "{name}");
        assert_eq!(names[2], "file-000");
        assert_eq!(fs.lookup("/etc/nope"), Err(Error::NotFound));
        assert_eq!(fs.lookup("/etc/hostname/x"), Err(Error::NotDir));
        // `..` goes through the directory entries.
        assert_eq!(
            fs.lookup("/etc/xen/../hostname").unwrap(),
            fs.lookup("/etc/hostname").unwrap()
        );
    }
}

#[test]
fn writes_are_clean_and_readable_by_debugfs() {
    if !have_e2fsprogs("writes_are_clean_and_readable_by_debugfs") {
        return;
    }
    let dir = scratch();
    let _cleanup = Cleanup(dir.clone());
    let files = populate(&dir);
    for (name, args) in feature_sets() {
        let mut fs = mount_rw(mkfs(&args, 8192, Some(&dir)));
        fs.mkdir("/vm").unwrap();
        fs.mkdir("/vm/domains").unwrap();
        fs.mkdir("/vm/domains/brun").unwrap();
        let cfg = b"kernel = '/boot/vmlinuz'\nmemory = 64\nname = 'brun'\n";
        let ino = fs.create("/etc/xen/brun.cfg", 0o644).unwrap();
        fs.write_at(ino, 0, cfg).unwrap();
        let big = pattern(3 * 1024 * 1024 + 17, 9);
        let ino = fs.create("/vm/domains/brun/data", 0o644).unwrap();
        // Written in uneven pieces, so that blocks are completed across calls.
        let mut off = 0;
        for chunk in big.chunks(70_001) {
            fs.write_at(ino, off, chunk).unwrap();
            off += chunk.len() as u64;
        }
        // A file in the htree directory: the index flag must be dropped.
        let ino = fs.create("/many/added", 0o600).unwrap();
        fs.write_at(ino, 0, b"added\n").unwrap();
        // Overwrite inside an existing file.
        let ino = fs.lookup("/big/multi").unwrap();
        fs.write_at(ino, 50_000, b"OVERWRITE").unwrap();
        assert_eq!(fs.create("/etc/xen/brun.cfg", 0o644), Err(Error::Exists));
        assert_eq!(fs.mkdir("/vm"), Err(Error::Exists));
        assert_eq!(fs.create("/nodir/x", 0o644), Err(Error::NotFound));
        assert_eq!(fs.create("/etc/hostname/x", 0o644), Err(Error::NotDir));
        assert_eq!(fs.create("/etc/..", 0o644), Err(Error::InvalidPath));
        assert_eq!(
            fs.create(&format!("/{}", "n".repeat(256)), 0o644),
            Err(Error::NameTooLong)
        );
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, name);
        assert_eq!(debugfs(&img, "cat /etc/xen/brun.cfg"), cfg, "{name}");
        assert_eq!(debugfs(&img, "cat /vm/domains/brun/data"), big, "{name}");
        assert_eq!(debugfs(&img, "cat /many/added"), b"added\n", "{name}");
        let mut multi = files
            .iter()
            .find(|f| f.0 == "/big/multi")
            .unwrap()
            .1
            .clone();
        multi[50_000..50_009].copy_from_slice(b"OVERWRITE");
        assert_eq!(debugfs(&img, "cat /big/multi"), multi, "{name}");
        // And the crate reads back what it wrote after a remount.
        let mut fs = mount_rw(img);
        assert_eq!(read_all(&mut fs, "/vm/domains/brun/data"), big);
        let d = fs.lookup("/vm/domains").unwrap();
        assert_eq!(fs.stat(d).unwrap().links, 3);
        fs.unmount().unwrap();
    }
}

#[test]
fn sparse_files_stay_sparse() {
    if !have_e2fsprogs("sparse_files_stay_sparse") {
        return;
    }
    for bs in [1024u32, 4096] {
        let mut fs = mount_rw(mkfs_ext2(bs, 16 * 1024, None));
        let before = fs.statfs().free_blocks;
        let ino = fs.create("/disk.img", 0o644).unwrap();
        // A 4 GiB image: one byte at each end and one in the middle (triple indirect
        // with 1 KiB blocks).
        let size = 4u64 << 30;
        fs.write_at(ino, 0, b"A").unwrap();
        fs.write_at(ino, size / 2 + 5, b"MIDDLE").unwrap();
        fs.write_at(ino, size - 1, b"Z").unwrap();
        let st = fs.stat(ino).unwrap();
        assert_eq!(st.size, size);
        let used = before - fs.statfs().free_blocks;
        // 3 data blocks plus at most 2 paths of 3 indirect blocks.
        assert!(used <= 9, "bs {bs}: {used} blocks for a sparse file");
        assert_eq!(st.blocks, used * u64::from(bs / 512));
        let mut b = vec![0xffu8; 20];
        fs.read_at(ino, size / 2, &mut b).unwrap();
        assert_eq!(&b[..11], b"\0\0\0\0\0MIDDLE");
        fs.read_at(ino, size - 3, &mut b).unwrap();
        assert_eq!(&b[..3], b"\0\0Z");
        // A hole inside a block-aligned run reads as zeros.
        let mut b = vec![0xffu8; 3 * bs as usize];
        fs.read_at(ino, u64::from(bs), &mut b).unwrap();
        assert!(b.iter().all(|&x| x == 0));
        // Growing by truncate leaves a hole, too.
        let t = fs.create("/grown", 0o644).unwrap();
        fs.truncate(t, 1 << 30).unwrap();
        assert_eq!(fs.stat(t).unwrap().blocks, 0);
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, "sparse writes");
        let stat = String::from_utf8(debugfs(&img, "stat /disk.img")).unwrap();
        assert!(stat.contains(&format!("Size: {size}")), "{stat}");
        assert!(
            stat.contains(&format!("Blockcount: {}", used * u64::from(bs / 512))),
            "{stat}"
        );
    }
}

#[test]
fn truncate_shrinks_and_frees() {
    if !have_e2fsprogs("truncate_shrinks_and_frees") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 8192, None));
    let free0 = fs.statfs().free_blocks;
    let ino = fs.create("/f", 0o644).unwrap();
    let data = pattern(2 * 1024 * 1024, 4);
    fs.write_at(ino, 0, &data).unwrap();
    for keep in [1_500_000u64, 300_000, 70_000, 12 * 1024 + 5, 1000] {
        fs.truncate(ino, keep).unwrap();
        assert_eq!(read_all(&mut fs, "/f"), data[..keep as usize]);
    }
    // The tail past the new size was zeroed: growing again shows zeros there.
    fs.truncate(ino, 3000).unwrap();
    let got = read_all(&mut fs, "/f");
    assert_eq!(&got[..1000], &data[..1000]);
    assert!(got[1000..].iter().all(|&b| b == 0));
    fs.truncate(ino, 0).unwrap();
    assert_eq!(fs.stat(ino).unwrap().blocks, 0);
    assert_eq!(fs.statfs().free_blocks, free0);
    fs.write_at(ino, 5, b"again").unwrap();
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "truncates");
    assert_eq!(debugfs(&img, "cat /f"), b"\0\0\0\0\0again");
}

#[test]
fn unlink_and_rmdir_free_space() {
    if !have_e2fsprogs("unlink_and_rmdir_free_space") {
        return;
    }
    let dir = scratch();
    let _cleanup = Cleanup(dir.clone());
    populate(&dir);
    let mut fs = mount_rw(mkfs_ext2(4096, 8192, Some(&dir)));
    let s0 = fs.statfs();
    fs.mkdir("/d").unwrap();
    fs.mkdir("/d/sub").unwrap();
    let ino = fs.create("/d/sub/file", 0o644).unwrap();
    fs.write_at(ino, 0, &pattern(1 << 20, 5)).unwrap();
    let s1 = fs.statfs();
    assert!(s1.free_blocks + 256 + 2 <= s0.free_blocks);
    assert_eq!(s1.free_inodes + 3, s0.free_inodes);
    assert_eq!(fs.rmdir("/d/sub"), Err(Error::NotEmpty));
    assert_eq!(fs.unlink("/d/sub"), Err(Error::IsDir));
    assert_eq!(fs.rmdir("/d/sub/file"), Err(Error::NotDir));
    assert_eq!(fs.unlink("/d/nothing"), Err(Error::NotFound));
    fs.unlink("/d/sub/file").unwrap();
    fs.rmdir("/d/sub").unwrap();
    fs.rmdir("/d").unwrap();
    assert_eq!(fs.statfs(), s0);
    // Files from mke2fs -d, and a whole directory of them.
    fs.unlink("/big/double-indirect").unwrap();
    // One name of a hard link: the other keeps the data; symlinks (fast and slow) go.
    fs.unlink("/hardlink").unwrap();
    let host = fs.lookup("/etc/hostname").unwrap();
    assert_eq!(fs.stat(host).unwrap().links, 1);
    assert_eq!(read_all(&mut fs, "/etc/hostname"), b"dom0\n");
    fs.unlink("/link").unwrap();
    fs.unlink("/longlink").unwrap();
    for i in 0..300 {
        fs.unlink(&format!("/many/file-{i:03}")).unwrap();
    }
    fs.rmdir("/many").unwrap();
    assert_eq!(fs.lookup("/many"), Err(Error::NotFound));
    assert!(fs.readdir(2).unwrap().iter().all(|e| e.name != b"many"));
    let s2 = fs.statfs();
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "unlinks");
    // e2fsck agrees with the free counts the crate reports.
    let (_, text) = e2fsck(&img);
    let want = format!("{}/{} blocks", s2.blocks - s2.free_blocks, s2.blocks);
    assert!(text.contains(&want), "e2fsck: {text} (wanted {want})");
    // Space comes back after a remount too.
    let fs = mount_rw(img);
    assert_eq!(fs.statfs(), s2);
    fs.unmount().unwrap();
}

#[test]
fn full_disk_is_enospc_and_stays_consistent() {
    if !have_e2fsprogs("full_disk_is_enospc_and_stays_consistent") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 2048, None));
    let ino = fs.create("/fill", 0o644).unwrap();
    let chunk = pattern(64 * 1024, 6);
    let mut off = 0u64;
    let err = loop {
        match fs.write_at(ino, off, &chunk) {
            Ok(_) => off += chunk.len() as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::NoSpace);
    // The failed write left nothing behind: the size is what succeeded, and single
    // blocks still fit.
    assert_eq!(fs.stat(ino).unwrap().size, off);
    let free = fs.statfs().free_blocks;
    assert!(free > 0);
    // Inodes run out cleanly too (a directory per free block is not enough: use files).
    let mut n = 0;
    let err = loop {
        match fs.create(&format!("/f{n}"), 0o644) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::NoSpace);
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "filling the disk");
    let mut fs = mount_rw(img);
    assert_eq!(read_all(&mut fs, "/fill").len() as u64, off);
    fs.unlink("/fill").unwrap();
    let ino = fs
        .create("/after", 0o644)
        .unwrap_or_else(|_| fs.lookup("/f0").unwrap());
    fs.write_at(ino, 0, &chunk).unwrap();
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "freeing a full disk");
}

#[test]
fn refuses_unsupported_features() {
    if !have_e2fsprogs("refuses_unsupported_features") {
        return;
    }
    let ext4 = mkfs(&["-t", "ext4", "-O", "^has_journal"], 8192, None);
    match Fs::mount(
        MemDevice::from_bytes(ext4),
        MountOptions {
            read_only: true,
            ..Default::default()
        },
    ) {
        Err(Error::UnsupportedFeature(FeatureKind::Incompat, bits)) => {
            assert_ne!(bits & 0x40, 0, "extents")
        }
        Err(e) => panic!("ext4 refused with {e}"),
        Ok(_) => panic!("ext4 with extents mounted"),
    }
    let csum = mkfs(
        &[
            "-t",
            "ext4",
            "-O",
            "^has_journal,^extent,^64bit,^orphan_file",
        ],
        8192,
        None,
    );
    match Fs::mount(MemDevice::from_bytes(csum.clone()), MountOptions::default()) {
        Err(Error::UnsupportedFeature(FeatureKind::RoCompat, bits)) => {
            assert_ne!(bits & 0x400, 0, "metadata_csum")
        }
        Err(e) => panic!("metadata_csum refused with {e}"),
        Ok(_) => panic!("metadata_csum mounted read-write"),
    }
    let (mut fs, _) = Fs::mount(
        MemDevice::from_bytes(csum),
        MountOptions {
            read_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fs.lookup("/lost+found").unwrap(), 11);
    assert_eq!(fs.create("/x", 0o644), Err(Error::ReadOnly));
    let msg = format!("{}", Error::UnsupportedFeature(FeatureKind::Incompat, 0x40));
    assert!(msg.contains("cannot mount"), "{msg}");
}

#[test]
fn unclean_mount_runs_the_check() {
    if !have_e2fsprogs("unclean_mount_runs_the_check") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    let ino = fs.create("/kept", 0o644).unwrap();
    fs.write_at(ino, 0, b"kept").unwrap();
    fs.sync().unwrap();
    // Power cut: the image is still marked not clean, counts not written back.
    fs.unlink("/kept").unwrap();
    let img = fs.into_device().data;
    let (fs2, rep) = Fs::mount(
        MemDevice::from_bytes(img.clone()),
        MountOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!rep.was_clean);
    let check = rep.check.expect("an unclean mount runs the check");
    assert!(check.counts_fixed > 0, "{check:?}");
    let img2 = fs2.unmount().unwrap().data;
    assert_fsck_clean(&img2, "repair at mount");
    // A clean mount does not check.
    let (fs3, rep) = Fs::mount(MemDevice::from_bytes(img2), MountOptions::default()).unwrap();
    assert!(rep.was_clean && rep.check.is_none());
    fs3.unmount().unwrap();
    // Damage that ordered writes never leave is refused: a directory entry naming a free
    // inode (clear the bitmap bit of /kept's successor).
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    let ino = fs.create("/victim", 0o644).unwrap();
    let mut bad = fs.into_device().data;
    let gdt = 2048usize; // 1 KiB blocks: descriptors in block 2
    let ibmp = u32::from_le_bytes(bad[gdt + 4..gdt + 8].try_into().unwrap()) as usize * 1024;
    let bit = (ino - 1) as usize;
    bad[ibmp + bit / 8] &= !(1 << (bit % 8));
    match Fs::mount(MemDevice::from_bytes(bad), MountOptions::default()) {
        Err(Error::NeedsFsck(m)) => assert!(m.contains("free inode"), "{m}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("damaged image mounted"),
    }
}

/// The operations a power cut interrupts.
fn workload(fs: &mut Fs<CutDevice>) {
    let _ = fs.mkdir("/etc/xen");
    if let Ok(ino) = fs.create("/etc/xen/a.cfg", 0o644) {
        let _ = fs.write_at(ino, 0, b"name = 'a'\n");
    }
    let _ = fs.mkdir("/vm");
    if let Ok(ino) = fs.create("/vm/disk.img", 0o644) {
        let _ = fs.write_at(ino, 0, &pattern(300 * 1024, 7));
        let _ = fs.write_at(ino, 64 << 20, b"end");
    }
    let _ = fs.symlink("/etc/xen/a.cfg", "/vm/a-link");
    let _ = fs.symlink(&"l".repeat(80), "/vm/slow-link");
    if let Ok(ino) = fs.create("/etc/xen/a.cfg.new", 0o644) {
        let _ = fs.write_at(ino, 0, b"name = 'a2'\n");
        let _ = fs.rename("/etc/xen/a.cfg.new", "/etc/xen/a.cfg");
    }
    let _ = fs.rename("/grow", "/vm/grow");
    let _ = fs.unlink("/old");
    let _ = fs.mkdir("/vm/sub");
    let _ = fs.rename("/olddir", "/vm/sub/olddir2");
    let _ = fs.rmdir("/vm/sub/olddir2/sub");
    if let Ok(ino) = fs.lookup("/vm/grow") {
        let _ = fs.truncate(ino, 10_000);
    }
    let _ = fs.sync();
}

/// Cuts the power after every write of `workload` run on `base`: each image must mount
/// (the check repairing what the cut left) and then be clean for `e2fsck -fn`.
/// Returns how many cuts left something to repair, and how many a directory with two names.
fn cut_everywhere(base: &[u8], workload: fn(&mut Fs<CutDevice>)) -> (u32, u32) {
    let run = |budget: usize| {
        let dev = CutDevice {
            inner: MemDevice::from_bytes(base.to_vec()),
            budget,
            writes: 0,
        };
        let (mut fs, _) = Fs::mount(
            dev,
            MountOptions {
                now: now(),
                ..Default::default()
            },
        )
        .unwrap();
        workload(&mut fs);
        fs.into_device()
    };
    let dev = CutDevice {
        inner: MemDevice::from_bytes(base.to_vec()),
        budget: usize::MAX,
        writes: 0,
    };
    let start = Fs::mount(dev, MountOptions::default())
        .unwrap()
        .0
        .into_device()
        .writes;
    let total = run(usize::MAX).writes;
    assert!(total > start + 20, "workload too small: {total}");
    let (mut repaired, mut two_names) = (0, 0);
    for cut in start..=total {
        let img = run(cut).inner.data;
        let (fs, rep) = Fs::mount(
            MemDevice::from_bytes(img),
            MountOptions {
                now: now(),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("cut after write {cut}: remount failed: {e}"));
        let check = rep.check.expect("unclean");
        if !check.is_clean() {
            repaired += 1;
        }
        if check.names_removed > 0 {
            two_names += 1;
        }
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, &format!("a power cut after write {cut} of {total}"));
    }
    (repaired, two_names)
}

#[test]
fn power_cut_at_every_write_recovers_clean() {
    if !have_e2fsprogs("power_cut_at_every_write_recovers_clean") {
        return;
    }
    for args in [
        vec!["-t", "ext2", "-b", "1024"],
        vec!["-t", "ext4", "-b", "4096", "-O", EXT4_LITE],
    ] {
        let mut fs = mount_rw(mkfs(&args, 8192, None));
        let ino = fs.create("/old", 0o644).unwrap();
        fs.write_at(ino, 0, &pattern(200 * 1024, 8)).unwrap();
        fs.mkdir("/olddir").unwrap();
        fs.mkdir("/olddir/sub").unwrap();
        let ino = fs.create("/grow", 0o644).unwrap();
        fs.write_at(ino, 0, &pattern(500 * 1024, 9)).unwrap();
        let base = fs.unmount().unwrap().data;
        let (repaired, two_names) = cut_everywhere(&base, workload);
        assert!(repaired > 0, "{args:?}: no cut left anything to repair");
        // The directory move: a cut after its new name and before the old one went.
        assert!(
            two_names > 0,
            "{args:?}: no cut left a directory with two names"
        );
    }
}

fn long_name(i: usize) -> String {
    format!("/d/{i:04}-{}", "n".repeat(56))
}

/// A directory growing past its twelve direct blocks, and shrinking.
fn dir_workload(fs: &mut Fs<CutDevice>) {
    for i in 160..200 {
        let _ = fs.create(&long_name(i), 0o644);
    }
    for i in (0..30).step_by(3) {
        let _ = fs.unlink(&long_name(i));
    }
    let _ = fs.sync();
}

#[test]
fn power_cut_while_a_directory_grows() {
    if !have_e2fsprogs("power_cut_while_a_directory_grows") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    fs.mkdir("/d").unwrap();
    for i in 0..160 {
        fs.create(&long_name(i), 0o644).unwrap();
    }
    let base = fs.unmount().unwrap().data;
    let mut fs = mount_rw(base.clone());
    let d = fs.lookup("/d").unwrap();
    assert!(
        fs.stat(d).unwrap().size <= 12 * 1024,
        "the base directory is still direct-mapped"
    );
    drop(fs);
    assert!(cut_everywhere(&base, dir_workload).0 > 0);
    // Without a cut, the directory went indirect and e2fsck agrees.
    let dev = CutDevice {
        inner: MemDevice::from_bytes(base),
        budget: usize::MAX,
        writes: 0,
    };
    let (mut fs, _) = Fs::mount(
        dev,
        MountOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap();
    dir_workload(&mut fs);
    let d = fs.lookup("/d").unwrap();
    assert!(fs.stat(d).unwrap().size > 12 * 1024);
    assert_eq!(fs.readdir(d).unwrap().len(), 2 + 200 - 10);
    let img = fs.unmount().unwrap().inner.data;
    assert_fsck_clean(&img, "growing a directory");
}

#[test]
fn unlink_frees_an_xattr_block() {
    if !have_e2fsprogs("unlink_frees_an_xattr_block") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    let ino = fs.create("/tagged", 0o644).unwrap();
    fs.write_at(ino, 0, b"data").unwrap();
    let img = fs.unmount().unwrap().data;
    // A value too big for the inode's extra space goes to an xattr block.
    let img = debugfs_w(
        &img,
        &format!("ea_set /tagged user.big {}", "v".repeat(600)),
    );
    let stat = String::from_utf8(debugfs(&img, "stat /tagged")).unwrap();
    assert!(
        stat.contains("File ACL: ") && !stat.contains("File ACL: 0"),
        "no xattr block: {stat}"
    );
    let mut fs = mount_rw(img);
    let before = fs.statfs().free_blocks;
    let blocks = fs.stat(ino).unwrap().blocks;
    assert_eq!(blocks, 4, "one data block and one xattr block of 1 KiB");
    fs.unlink("/tagged").unwrap();
    assert_eq!(fs.statfs().free_blocks, before + 2);
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "unlinking a file with an xattr block");
}

#[test]
fn corruption_met_while_mounted_forces_the_check() {
    if !have_e2fsprogs("corruption_met_while_mounted_forces_the_check") {
        return;
    }
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    let d = fs.mkdir("/d").unwrap();
    fs.create("/d/x", 0o644).unwrap();
    let img = fs.unmount().unwrap().data;
    // Break the directory block's first record length.
    let blk: usize = String::from_utf8(debugfs(&img, "blocks /d"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut bad = img.clone();
    bad[blk * 1024 + 4..blk * 1024 + 6].copy_from_slice(&3u16.to_le_bytes());
    let (mut fs, rep) = Fs::mount(MemDevice::from_bytes(bad), MountOptions::default()).unwrap();
    assert!(rep.was_clean && rep.check.is_none());
    assert!(matches!(fs.lookup("/d/x"), Err(Error::Corrupt(_))));
    assert!(matches!(fs.readdir(d), Err(Error::Corrupt(_))));
    let bad = fs.unmount().unwrap().data;
    match Fs::mount(MemDevice::from_bytes(bad.clone()), MountOptions::default()) {
        Err(Error::NeedsFsck(m)) => assert!(m.contains("record length"), "{m}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("the error mark did not force the check"),
    }
    // Read-only still mounts, and e2fsck sees the same damage.
    assert!(
        Fs::mount(
            MemDevice::from_bytes(bad.clone()),
            MountOptions {
                read_only: true,
                ..Default::default()
            }
        )
        .is_ok()
    );
    assert!(!e2fsck(&bad).0);
}

#[test]
fn file_device_on_an_image_file() {
    if !have_e2fsprogs("file_device_on_an_image_file") {
        return;
    }
    let s = scratch();
    let path = s.join("disk.img");
    std::fs::write(&path, mkfs_ext2(4096, 16 * 1024, None)).unwrap();
    let dev = extfs::FileDevice::open(&path).unwrap();
    let (mut fs, _) = Fs::mount(
        dev,
        MountOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap();
    fs.mkdir("/etc").unwrap();
    fs.mkdir("/etc/xen").unwrap();
    let ino = fs.create("/etc/xen/brun.cfg", 0o644).unwrap();
    fs.write_at(ino, 0, b"name = 'brun'\n").unwrap();
    fs.unmount().unwrap();
    let out = std::process::Command::new(tool("e2fsck").unwrap())
        .arg("-fn")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = std::process::Command::new(tool("debugfs").unwrap())
        .args(["-R", "cat /etc/xen/brun.cfg"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"name = 'brun'\n");
    // Out-of-range requests are refused by the device, not by a panic.
    let mut dev = extfs::FileDevice::open(&path).unwrap();
    use extfs::BlockDevice;
    let n = dev.sector_count();
    assert_eq!(n, 16 * 1024 * 2);
    assert_eq!(
        dev.read_sectors(n, &mut [0u8; 512]),
        Err(extfs::IoError::OutOfRange)
    );
    let _ = std::fs::remove_dir_all(&s);
}

#[test]
fn a_refused_mount_hands_the_device_back_untouched() {
    if !have_e2fsprogs("a_refused_mount_hands_the_device_back_untouched") {
        return;
    }
    // An unclean image with real damage: a used block (of /f) marked free.
    let mut fs = mount_rw(mkfs_ext2(1024, 4096, None));
    let ino = fs.create("/f", 0o644).unwrap();
    fs.write_at(ino, 0, &pattern(5000, 3)).unwrap();
    fs.create("/orphan-to-be", 0o644).unwrap();
    let img = fs.into_device().data;
    let blk: usize = String::from_utf8(debugfs(&img, "blocks /f"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let bbmp = u32::from_le_bytes(img[2048..2052].try_into().unwrap()) as usize * 1024;
    let mut bad = img.clone();
    let bit = blk - 1;
    bad[bbmp + bit / 8] &= !(1 << (bit % 8));
    match Fs::try_mount(MemDevice::from_bytes(bad.clone()), MountOptions::default()) {
        Err((Error::NeedsFsck(m), dev)) => {
            assert!(m.contains("marked free"), "{m}");
            assert!(dev.data == bad, "a refused check wrote to the disk");
            // The caller can still mount it read-only.
            let (mut fs, _) = Fs::mount(
                dev,
                MountOptions {
                    read_only: true,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(read_all(&mut fs, "/f"), pattern(5000, 3));
        }
        Err((e, _)) => panic!("wrong error {e}"),
        Ok(_) => panic!("damaged image mounted read-write"),
    }
}

#[test]
fn symlinks_and_renames() {
    if !have_e2fsprogs("symlinks_and_renames") {
        return;
    }
    let long = format!("/etc/{}", "t".repeat(100));
    for bs in [1024, 4096] {
        let mut fs = mount_rw(mkfs_ext2(bs, 4096, None));
        fs.mkdir("/etc").unwrap();
        fs.mkdir("/etc/xen").unwrap();
        let short = fs.symlink("/etc/xen", "/xen").unwrap();
        let slow = fs.symlink(&long, "/long").unwrap();
        assert_eq!(fs.stat(short).unwrap().blocks, 0);
        assert_eq!(fs.stat(slow).unwrap().blocks, u64::from(bs / 512));
        assert_eq!(fs.symlink("x", "/xen"), Err(Error::Exists));
        assert_eq!(fs.symlink("", "/empty"), Err(Error::InvalidPath));
        let a = fs.create("/etc/xen/a.cfg.tmp", 0o644).unwrap();
        fs.write_at(a, 0, b"new\n").unwrap();
        let b = fs.create("/etc/xen/a.cfg", 0o644).unwrap();
        fs.write_at(b, 0, &pattern(50_000, 1)).unwrap();
        let free = fs.statfs().free_blocks;
        // Atomic replace of a config, as an editor saves it; the old file's blocks come back.
        fs.rename("/etc/xen/a.cfg.tmp", "/etc/xen/a.cfg").unwrap();
        assert!(fs.statfs().free_blocks > free);
        assert_eq!(fs.lookup("/etc/xen/a.cfg").unwrap(), a);
        assert_eq!(fs.lookup("/etc/xen/a.cfg.tmp"), Err(Error::NotFound));
        // Across directories, onto itself, missing source, a file onto a directory.
        fs.rename("/etc/xen/a.cfg", "/moved").unwrap();
        fs.rename("/moved", "/moved").unwrap();
        assert_eq!(fs.stat(a).unwrap().links, 1);
        assert_eq!(fs.rename("/nope", "/x"), Err(Error::NotFound));
        assert_eq!(fs.rename("/moved", "/etc"), Err(Error::IsDir));
        fs.rename("/long", "/etc/xen/long").unwrap();
        // Directories: within a parent, across parents, onto an empty directory; not below
        // themselves, not onto a file or a non-empty directory.
        fs.mkdir("/a").unwrap();
        fs.mkdir("/a/b").unwrap();
        fs.mkdir("/a/b/inner").unwrap();
        fs.mkdir("/e").unwrap();
        fs.mkdir("/full").unwrap();
        fs.create("/full/x", 0o644).unwrap();
        assert_eq!(fs.rename("/a", "/a/b/c"), Err(Error::InvalidPath));
        assert_eq!(fs.rename("/a", "/a/b"), Err(Error::InvalidPath));
        assert_eq!(fs.rename("/a/b", "/moved"), Err(Error::NotDir));
        assert_eq!(fs.rename("/a/b", "/full"), Err(Error::NotEmpty));
        let b_ino = fs.lookup("/a/b").unwrap();
        let root_links = fs.stat(2).unwrap().links;
        fs.rename("/a/b", "/b").unwrap();
        assert_eq!(fs.lookup("/b/inner/..").unwrap(), b_ino);
        assert_eq!(fs.lookup("/b/..").unwrap(), 2);
        let a_dir = fs.lookup("/a").unwrap();
        assert_eq!(fs.stat(a_dir).unwrap().links, 2);
        assert_eq!(fs.stat(2).unwrap().links, root_links + 1);
        fs.rename("/b", "/e").unwrap();
        assert_eq!(fs.lookup("/e").unwrap(), b_ino);
        assert_eq!(fs.stat(2).unwrap().links, root_links);
        let long_ino = fs.lookup("/etc/xen/long").unwrap();
        fs.rename("/etc", "/etc2").unwrap();
        assert_eq!(fs.lookup("/etc2/xen/long").unwrap(), long_ino);
        assert_eq!(fs.lookup("/etc"), Err(Error::NotFound));
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, "symlinks and renames");
        assert_eq!(debugfs(&img, "cat /moved"), b"new\n");
        assert_eq!(debugfs(&img, "cat /e/inner/.."), debugfs(&img, "cat /e"));
        let stat = String::from_utf8(debugfs(&img, "stat /xen")).unwrap();
        assert!(stat.contains("Fast link dest: \"/etc/xen\""), "{stat}");
        let mut fs = mount_rw(img);
        let l = fs.lookup("/etc2/xen/long").unwrap();
        let mut buf = [0u8; 200];
        let n = fs.read_at(l, 0, &mut buf).unwrap();
        assert_eq!(&buf[..n], long.as_bytes());
        fs.unlink("/etc2/xen/long").unwrap();
        fs.unlink("/xen").unwrap();
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, "unlinking symlinks");
    }
}

#[test]
fn ext3_with_a_clean_journal_is_written_as_ext2() {
    if !have_e2fsprogs("ext3_with_a_clean_journal_is_written_as_ext2") {
        return;
    }
    let img = mkfs(&["-t", "ext3", "-b", "1024"], 8192, None);
    let (mut fs, rep) = Fs::mount(
        MemDevice::from_bytes(img),
        MountOptions {
            now: now(),
            force_check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        rep.check.unwrap().is_clean(),
        "{rep:?}: the journal's blocks are claimed"
    );
    let ino = fs.create("/f", 0o644).unwrap();
    fs.write_at(ino, 0, &pattern(100_000, 2)).unwrap();
    let img = fs.unmount().unwrap().data;
    assert_fsck_clean(&img, "writing to ext3 without the journal");
    assert_eq!(debugfs(&img, "cat /f"), pattern(100_000, 2));
}
