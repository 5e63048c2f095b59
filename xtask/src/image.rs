//! The GRUB rescue ISO.
//!
//! The kernel and ELF modules go in stripped (no debug information, no symbol
//! table): GRUB reads every byte of them from the emulated CD, and the debug
//! information is most of their size. `target/oxen.elf` and the guest ELFs in
//! `target/` keep theirs for gdb.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies `from` to `to`, stripped (`objcopy --strip-all`) if it is an ELF
/// file, as it is otherwise.
pub fn copy_stripped(from: &Path, to: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    let is_elf = std::fs::File::open(from)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && magic == *b"\x7fELF";
    if !is_elf {
        std::fs::copy(from, to).map_err(|e| format!("copying {}: {e}", from.display()))?;
        return Ok(());
    }
    let output = Command::new("objcopy")
        .arg("--strip-all")
        .arg(from)
        .arg(to)
        .output()
        .map_err(|e| format!("cannot run objcopy: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "objcopy --strip-all {} failed:\n{}",
            from.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Builds an ISO holding `kernel` as /boot/oxen.elf and each module ("PATH ARGS")
/// as /boot/<file name>, both stripped, with a grub.cfg made from boot/grub.cfg.in.
pub fn make_iso(
    kernel: &Path,
    cmdline: &str,
    modules: &[String],
    out: &Path,
) -> Result<PathBuf, String> {
    let stage = crate::target_dir().join("iso-root");
    let _ = std::fs::remove_dir_all(&stage);
    let boot = stage.join("boot");
    std::fs::create_dir_all(boot.join("grub")).map_err(|e| e.to_string())?;
    copy_stripped(kernel, &boot.join("oxen.elf"))?;
    let mut lines = String::new();
    for m in modules {
        let (path, args) = m.split_once(' ').unwrap_or((m.as_str(), ""));
        let name = Path::new(path)
            .file_name()
            .ok_or_else(|| format!("bad module path '{path}'"))?;
        copy_stripped(Path::new(path), &boot.join(name))?;
        let name = name.to_string_lossy();
        lines.push_str(&format!("    module2 /boot/{name} {args}\n"));
    }
    let template = std::fs::read_to_string(crate::root().join("boot/grub.cfg.in"))
        .map_err(|e| format!("reading boot/grub.cfg.in: {e}"))?;
    let cfg = template
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"))
        .replace("@CMDLINE@", cmdline)
        .replace("@MODULES@", lines.trim_end_matches('\n'));
    std::fs::write(boot.join("grub/grub.cfg"), cfg).map_err(|e| e.to_string())?;
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(&stage)
        .output()
        .map_err(|e| format!("cannot run grub-mkrescue: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "grub-mkrescue failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out.to_path_buf())
}
