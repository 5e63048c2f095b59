//! The GRUB rescue ISO.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds an ISO holding `kernel` as /boot/oxen.elf and each module ("PATH ARGS")
/// as /boot/<file name>, with a grub.cfg made from boot/grub.cfg.in.
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
    std::fs::copy(kernel, boot.join("oxen.elf")).map_err(|e| format!("copying kernel: {e}"))?;
    let mut lines = String::new();
    for m in modules {
        let (path, args) = m.split_once(' ').unwrap_or((m.as_str(), ""));
        let name = Path::new(path)
            .file_name()
            .ok_or_else(|| format!("bad module path '{path}'"))?;
        std::fs::copy(path, boot.join(name)).map_err(|e| format!("copying module {path}: {e}"))?;
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
