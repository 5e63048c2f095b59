//! Oxen's dom0 (`guests/dom0`) and its initrd, as `run`, `iso` and the
//! scenarios boot them: the kernel as `target/oxen-dom0.elf`, and
//! `guests/dom0/initrd/` packed (cpio newc, `initrd::pack_dir`) with the domU
//! kernel its configs name and the hypercall fuzzer (`fuzz.cfg`) as
//! `target/oxen-dom0-initrd.cpio`.

use std::path::{Path, PathBuf};

/// Where `/etc/xen/brun.cfg` (the tutorial's config) says the domU kernel is.
pub const DOMU_KERNEL_PATH: &str = "boot/vmlinuz-2.6.18-4-xen-686";

/// Where `/etc/xen/fuzz.cfg` says the fuzzer's kernel is (guests/fuzz).
pub const FUZZ_KERNEL_PATH: &str = "boot/oxen-fuzz";

/// The initrd's file name (the GRUB module line of DESIGN.md §1).
pub const INITRD_NAME: &str = "oxen-dom0-initrd.cpio";

/// Builds dom0 and returns `target/oxen-dom0.elf`.
pub fn build() -> Result<PathBuf, String> {
    crate::build_guest("oxen-dom0")
}

/// The PV kernel to place at [`DOMU_KERNEL_PATH`]: Oxen's domU
/// (guests/domu), under the name the tutorial's brun.cfg gives its kernel.
fn domu_kernel() -> Result<PathBuf, String> {
    crate::build_guest("domu")
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(|e| format!("linking {}: {e}", dest.display()))?;
        } else {
            std::fs::copy(entry.path(), &dest)
                .map_err(|e| format!("copying {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Packs `guests/dom0/initrd/` plus the domU kernel into
/// `target/oxen-dom0-initrd.cpio` and returns its path.
pub fn build_initrd() -> Result<PathBuf, String> {
    let kernel = domu_kernel()?;
    let stage = crate::target_dir().join("dom0-initrd-root");
    let _ = std::fs::remove_dir_all(&stage);
    copy_tree(&crate::root().join("guests/dom0/initrd"), &stage)?;
    let dest = stage.join(DOMU_KERNEL_PATH);
    std::fs::create_dir_all(dest.parent().expect("a path in boot/")).map_err(|e| e.to_string())?;
    // Stripped: dom0 reads the domU kernel out of the initrd at every `xm create`.
    crate::image::copy_stripped(&kernel, &dest)?;
    let fuzz = crate::build_guest("fuzz")?;
    crate::image::copy_stripped(&fuzz, &stage.join(FUZZ_KERNEL_PATH))?;
    let archive = initrd::pack_dir(&stage).map_err(|e| format!("packing dom0's initrd: {e}"))?;
    let out = crate::target_dir().join(INITRD_NAME);
    std::fs::write(&out, archive).map_err(|e| format!("writing {}: {e}", out.display()))?;
    eprintln!(
        "xtask: packed {} (/{DOMU_KERNEL_PATH} is guests/domu, /{FUZZ_KERNEL_PATH} guests/fuzz)",
        out.display()
    );
    Ok(out)
}

/// Builds dom0 and its initrd; returns (kernel, initrd).
pub fn build_all() -> Result<(PathBuf, PathBuf), String> {
    Ok((build()?, build_initrd()?))
}

/// Puts `oxen-dom0.elf` and the initrd into the scenario fixture directory.
pub fn fixtures(dir: &Path) -> Result<(), String> {
    let (kernel, initrd) = build_all()?;
    std::fs::copy(&kernel, dir.join("oxen-dom0.elf")).map_err(|e| e.to_string())?;
    std::fs::copy(&initrd, dir.join(INITRD_NAME)).map_err(|e| e.to_string())?;
    Ok(())
}
