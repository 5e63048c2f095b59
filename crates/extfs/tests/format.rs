//! `format` (mkfs) checked by e2fsck, then used.

mod common;

use common::*;
use extfs::{Error, FormatOptions, Fs, MemDevice, MountOptions, format};

#[test]
fn formatted_images_are_clean_and_usable() {
    if !have_e2fsprogs("formatted_images_are_clean_and_usable") {
        return;
    }
    // Sizes around group boundaries (a tiny last group is dropped), both block sizes.
    for (kib, bs) in [
        (2048u64, None),
        (8193, None),
        (8192 + 100, None),
        (20_000, Some(4096)),
        (64 * 1024, Some(2048)),
        (512 * 1024, None),
        (50, None),
    ] {
        let mut dev = MemDevice::zeroed((kib * 2) as usize);
        let opts = FormatOptions {
            block_size: bs,
            now: now(),
            uuid: *b"0123456789abcdef",
            ..Default::default()
        };
        let geo = format(&mut dev, &opts).unwrap_or_else(|e| panic!("{kib} KiB: {e}"));
        assert_fsck_clean(
            &dev.data,
            &format!("formatting {kib} KiB (block size {})", geo.block_size),
        );
        let (mut fs, rep) = Fs::mount(
            dev,
            MountOptions {
                now: now(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(rep.was_clean);
        let names: Vec<_> = fs.readdir(2).unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [b".".to_vec(), b"..".to_vec(), b"lost+found".to_vec()]
        );
        fs.mkdir("/etc").unwrap();
        let ino = fs.create("/etc/fstab", 0o644).unwrap();
        fs.write_at(ino, 0, b"/dev/sda1 / ext2 defaults 0 1\n")
            .unwrap();
        let st = fs.statfs();
        assert!(kib < 100 || st.free_blocks > st.blocks / 2, "{st:?}");
        let img = fs.unmount().unwrap().data;
        assert_fsck_clean(&img, &format!("writing to a formatted {kib} KiB image"));
        assert_eq!(
            debugfs(&img, "cat /etc/fstab"),
            b"/dev/sda1 / ext2 defaults 0 1\n"
        );
    }
}

#[test]
fn assume_zeroed_skips_the_inode_tables() {
    if !have_e2fsprogs("assume_zeroed_skips_the_inode_tables") {
        return;
    }
    let mut dev = CutDevice {
        inner: MemDevice::zeroed(64 * 1024 * 2),
        budget: usize::MAX,
        writes: 0,
    };
    format(
        &mut dev,
        &FormatOptions {
            assume_zeroed: true,
            ..Default::default()
        },
    )
    .unwrap();
    let few = dev.writes;
    let mut dev2 = CutDevice {
        inner: MemDevice::zeroed(64 * 1024 * 2),
        budget: usize::MAX,
        writes: 0,
    };
    format(&mut dev2, &FormatOptions::default()).unwrap();
    assert!(few < dev2.writes, "{few} vs {}", dev2.writes);
    assert_eq!(
        dev.inner, dev2.inner,
        "same image either way on a zeroed device"
    );
    assert_fsck_clean(&dev.inner.data, "an assume_zeroed format");
}

#[test]
fn too_small_or_odd_devices_are_refused() {
    let mut dev = MemDevice::zeroed(10);
    assert_eq!(
        format(&mut dev, &FormatOptions::default()).map(|_| ()),
        Err(Error::NoSpace)
    );
    let mut dev = MemDevice::zeroed(8192);
    assert!(matches!(
        format(
            &mut dev,
            &FormatOptions {
                block_size: Some(3000),
                ..Default::default()
            }
        ),
        Err(Error::Unsupported(_))
    ));
}

/// The tutorial's flow in miniature: a sparse `disk.img` on dom0's filesystem, formatted
/// and filled through [`extfs::FileImage`]; both filesystems check clean, the inner one
/// after extracting it with debugfs.
#[test]
fn a_filesystem_inside_a_sparse_image_file() {
    if !have_e2fsprogs("a_filesystem_inside_a_sparse_image_file") {
        return;
    }
    let mut dev = MemDevice::zeroed(64 * 1024 * 2);
    format(
        &mut dev,
        &FormatOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap();
    let (mut outer, _) = Fs::mount(
        dev,
        MountOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap();
    for d in ["/vm", "/vm/domains", "/vm/domains/brun"] {
        outer.mkdir(d).unwrap();
    }
    let img = outer.create("/vm/domains/brun/disk.img", 0o644).unwrap();
    outer.truncate(img, 32 << 20).unwrap();
    let free_before = outer.statfs().free_blocks;
    {
        let mut file = extfs::FileImage::open(&mut outer, img).unwrap();
        format(
            &mut file,
            &FormatOptions {
                now: now(),
                assume_zeroed: true,
                ..Default::default()
            },
        )
        .unwrap();
        let (mut inner, _) = Fs::mount(
            file,
            MountOptions {
                now: now(),
                ..Default::default()
            },
        )
        .unwrap();
        inner.mkdir("/root").unwrap();
        let f = inner.create("/root/hello", 0o644).unwrap();
        inner.write_at(f, 0, b"written by the domU\n").unwrap();
        inner.unmount().unwrap();
    }
    // Sparse: the 32 MiB image costs its metadata and one data block, not 32 MiB.
    let used = free_before - outer.statfs().free_blocks;
    assert!(used < 200, "{used} KiB for a fresh 32 MiB image");
    let outer_img = outer.unmount().unwrap().data;
    assert_fsck_clean(&outer_img, "the outer filesystem");
    let s = scratch();
    let outer_path = s.join("outer");
    write_sparse(&outer_path, &outer_img);
    let inner_path = s.join("disk.img");
    let out = std::process::Command::new(tool("debugfs").unwrap())
        .arg("-R")
        .arg(format!(
            "dump /vm/domains/brun/disk.img {}",
            inner_path.display()
        ))
        .arg(&outer_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let inner_img = std::fs::read(&inner_path).unwrap();
    assert_eq!(inner_img.len(), 32 << 20);
    assert_fsck_clean(&inner_img, "the filesystem inside disk.img");
    assert_eq!(
        debugfs(&inner_img, "cat /root/hello"),
        b"written by the domU\n"
    );
    let _ = std::fs::remove_dir_all(&s);
}
