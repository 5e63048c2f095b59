//! Helpers shared by the host tests: images made by e2fsprogs, checks with `e2fsck -fn`,
//! reads with `debugfs`, and devices that simulate a power cut.
#![allow(dead_code)]

use extfs::{BlockDevice, Fs, IoError, MemDevice, MountOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Finds an e2fsprogs binary, or `None` (the test then skips with a printed reason).
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// Whether mkfs.ext2, e2fsck and debugfs are all installed; prints why a test skips if not.
pub fn have_e2fsprogs(test: &str) -> bool {
    let ok = ["mke2fs", "e2fsck", "debugfs"]
        .iter()
        .all(|t| tool(t).is_some());
    if !ok {
        eprintln!("SKIP {test}: e2fsprogs (mke2fs, e2fsck, debugfs) not installed");
    }
    ok
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh scratch directory under the system temp dir.
pub fn scratch() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let p = std::env::temp_dir().join(format!("extfs-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Runs mke2fs with `args` on a `size_kib` image (populated from `dir` if given).
pub fn mkfs(args: &[&str], size_kib: u64, dir: Option<&Path>) -> Vec<u8> {
    let s = scratch();
    let img = s.join("img");
    let mut c = Command::new(tool("mke2fs").unwrap());
    c.args(["-q", "-F", "-E", "root_owner=0:0"]).args(args);
    if let Some(d) = dir {
        c.arg("-d").arg(d);
    }
    c.arg(&img).arg(format!("{size_kib}k"));
    c.env("MKE2FS_CONFIG", "/etc/mke2fs.conf");
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "mke2fs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = std::fs::read(&img).unwrap();
    let _ = std::fs::remove_dir_all(&s);
    b
}

/// A plain ext2 image (the default ext2 feature set of mke2fs.conf).
pub fn mkfs_ext2(block_size: u32, size_kib: u64, dir: Option<&Path>) -> Vec<u8> {
    let bs = block_size.to_string();
    mkfs(&["-t", "ext2", "-b", &bs], size_kib, dir)
}

/// The ext4 feature set minus what the driver refuses.
pub const EXT4_LITE: &str = "^has_journal,^extent,^64bit,^metadata_csum,^orphan_file";

/// Writes `img` to a file and runs `e2fsck -fn` on it; returns (clean, output).
pub fn e2fsck(img: &[u8]) -> (bool, String) {
    let s = scratch();
    let p = s.join("img");
    write_sparse(&p, img);
    let out = Command::new(tool("e2fsck").unwrap())
        .arg("-fn")
        .arg(&p)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&s);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code() == Some(0), text)
}

/// Asserts that `e2fsck -fn` finds `img` clean.
pub fn assert_fsck_clean(img: &[u8], what: &str) {
    let (ok, text) = e2fsck(img);
    assert!(ok, "e2fsck -fn not clean after {what}:\n{text}");
}

/// Runs a debugfs request on `img`; returns stdout.
pub fn debugfs(img: &[u8], req: &str) -> Vec<u8> {
    let s = scratch();
    let p = s.join("img");
    write_sparse(&p, img);
    let out = Command::new(tool("debugfs").unwrap())
        .arg("-R")
        .arg(req)
        .arg(&p)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&s);
    out.stdout
}

/// The current time, for timestamps.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Mounts `img` read-write.
pub fn mount_rw(img: Vec<u8>) -> Fs<MemDevice> {
    Fs::mount(
        MemDevice::from_bytes(img),
        MountOptions {
            now: now(),
            ..Default::default()
        },
    )
    .unwrap()
    .0
}

/// Reads a whole file through the crate.
pub fn read_all(fs: &mut Fs<MemDevice>, path: &str) -> Vec<u8> {
    let ino = fs.lookup(path).unwrap();
    let size = fs.stat(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    assert_eq!(fs.read_at(ino, 0, &mut buf).unwrap(), size);
    buf
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A device that loses every write after the first `budget` (a power cut), and counts writes.
pub struct CutDevice {
    pub inner: MemDevice,
    pub budget: usize,
    pub writes: usize,
}

impl BlockDevice for CutDevice {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.inner.read_sectors(lba, buf)
    }
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> Result<(), IoError> {
        self.writes += 1;
        if self.writes > self.budget {
            return Ok(());
        }
        self.inner.write_sectors(lba, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

/// Runs a writing debugfs request (`debugfs -w`) on `img`; returns the changed image.
pub fn debugfs_w(img: &[u8], req: &str) -> Vec<u8> {
    let s = scratch();
    let p = s.join("img");
    write_sparse(&p, img);
    let out = Command::new(tool("debugfs").unwrap())
        .arg("-w")
        .arg("-R")
        .arg(req)
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debugfs -w {req}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = std::fs::read(&p).unwrap();
    let _ = std::fs::remove_dir_all(&s);
    b
}

/// Writes `img` to `p` leaving all-zero 64 KiB chunks as holes (big images stay cheap).
pub fn write_sparse(p: &Path, img: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(p).unwrap();
    f.set_len(img.len() as u64).unwrap();
    for (i, c) in img.chunks(65536).enumerate() {
        if c.iter().any(|&b| b != 0) {
            f.write_all_at(c, (i * 65536) as u64).unwrap();
        }
    }
}

/// Removes a scratch directory when dropped.
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
