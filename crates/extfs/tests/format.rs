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
