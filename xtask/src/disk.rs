//! dom0's disk in QEMU: a sparse raw image holding an ext2 filesystem made
//! by the host's e2fsprogs, attached as a virtio block device (DESIGN.md §8).
//!
//! `cargo xtask run` keeps one image, `target/oxen-disk.img`, made on first
//! use and kept between runs; a scenario with `disk_mib` gets a fresh one of
//! its own, `target/test-disks/<name>.img`.

use std::path::Path;
use std::process::{Command, Stdio};

/// The volume name of the filesystems xtask makes.
pub const VOLUME_NAME: &str = "oxen-dom0";

/// Makes a sparse image of `mib` MiB at `path` with an empty ext2
/// filesystem in it (replacing what was there).
pub fn create(path: &Path, mib: u32) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // set_len leaves a hole: the image costs only what is written.
    file.set_len(u64::from(mib) << 20)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    drop(file);
    let out = Command::new("mkfs.ext2")
        .args(["-q", "-F", "-b", "4096", "-L", VOLUME_NAME])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mkfs.ext2 (e2fsprogs): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mkfs.ext2 {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The image at `path`, made (`mib` MiB) if it does not exist yet.
pub fn ensure(path: &Path, mib: u32) -> Result<(), String> {
    if path.exists() {
        Ok(())
    } else {
        eprintln!(
            "xtask: making dom0's disk {} ({mib} MiB, ext2)",
            path.display()
        );
        create(path, mib)
    }
}

/// QEMU arguments attaching `path` as a virtio block device (dom0's `vda`).
pub fn qemu_args(path: &Path) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},format=raw,if=none,id=vda", path.display()),
        "-device".into(),
        "virtio-blk-pci,drive=vda".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_sparse_and_holds_an_ext2_filesystem() {
        if !Path::new("/usr/sbin/mkfs.ext2").exists() {
            eprintln!("skipped: e2fsprogs is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("oxen-disk-test-{}", std::process::id()));
        let path = dir.join("d.img");
        create(&path, 64).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 64 << 20);
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < 8 << 20,
            "{} bytes used",
            meta.blocks() * 512
        );
        let sb = &std::fs::read(&path).unwrap()[1024..2048];
        assert_eq!(u16::from_le_bytes([sb[56], sb[57]]), 0xEF53);
        assert_eq!(&sb[120..120 + VOLUME_NAME.len()], VOLUME_NAME.as_bytes());
        let fsck = Command::new("e2fsck")
            .args(["-fn"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        // ensure keeps what is there.
        std::fs::write(&path, b"kept").unwrap();
        ensure(&path, 64).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn attached_as_virtio_blk() {
        let args = qemu_args(Path::new("/t/x.img"));
        assert_eq!(
            args,
            [
                "-drive",
                "file=/t/x.img,format=raw,if=none,id=vda",
                "-device",
                "virtio-blk-pci,drive=vda"
            ]
        );
    }
}
