//! Installs what the build and the QEMU runs need, when it is missing.
//!
//! Debian packages come through apt-get (as root). The one known trap is
//! QEMU: a machine may already carry `qemu-utils` from the release's
//! backports suite (10.0 on bookworm), and that version `Breaks:` the
//! release's own `qemu-system-common` (7.2). A plain install would then
//! either fail ("pkgProblemResolver::Resolve generated breaks", when
//! `qemu-utils` is held) or silently remove `qemu-utils`. So:
//!
//! 1. everything is installed with `--no-remove`: nothing the machine has
//!    is ever taken away;
//! 2. if QEMU cannot go in beside the installed `qemu-utils`, the QEMU of
//!    the same version is installed from the suite that `qemu-utils` came
//!    from (a backports suite is added as a file of its own in
//!    `/etc/apt/sources.list.d/`, built from the machine's own entry for
//!    the release; `debian.sources` is never edited);
//! 3. failing that, the release's QEMU is installed and `qemu-utils` is
//!    downgraded to the same version (`--allow-downgrades`, version named);
//! 4. failing that, the error names the package, shows apt's words and the
//!    commands to run by hand.

use std::path::Path;
use std::process::Command;

/// Debian packages and a file each provides.
const PACKAGES: &[(&str, &str)] = &[
    (QEMU, "/usr/bin/qemu-system-i386"),
    ("grub-pc-bin", "/usr/lib/grub/i386-pc/multiboot2.mod"),
    ("grub-common", "/usr/bin/grub-mkrescue"),
    ("xorriso", "/usr/bin/xorriso"),
    ("mtools", "/usr/bin/mformat"),
    ("e2fsprogs", "/usr/sbin/mkfs.ext2"),
    // objcopy strips the kernel and guest ELFs that go into the ISO.
    ("binutils", "/usr/bin/objcopy"),
    // GNU cpio: the initrd crate's interop tests read and write archives with it.
    ("cpio", "/usr/bin/cpio"),
];

/// The package that brings `qemu-system-i386`.
const QEMU: &str = "qemu-system-x86";

/// Where Oxen's own apt source (the backports suite, when needed) is written.
const OXEN_SOURCES: &str = "/etc/apt/sources.list.d/oxen-backports.sources";

/// The QEMU releases the scenarios are run against (README: "QEMU versions").
pub const QEMU_SUPPORTED: &[(u32, u32)] = &[(7, 2), (10, 0)];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn missing() -> Vec<&'static str> {
    PACKAGES
        .iter()
        .filter(|(_, f)| !Path::new(f).exists())
        .map(|(p, _)| *p)
        .collect()
}

/// The outcome of one apt command: success, or apt's own error lines.
fn apt(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot start {}: {e}", args[0]))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // apt explains a failed resolution in the lines before its "E:" line;
    // keep the last few of them, which name the package and the conflict.
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(8)..].join("\n    ");
    Err(format!("`{}` failed:\n    {tail}", args.join(" ")))
}

fn apt_install(packages: &[String], extra: &[&str]) -> Result<(), String> {
    let mut args = vec![
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "--no-remove",
    ];
    args.extend_from_slice(extra);
    args.extend(packages.iter().map(String::as_str));
    apt(&args)
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The installed version of `package`, if it is installed.
fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}|${Version}", package])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, version) = text.split_once('|')?;
    (status.ends_with(" installed") && !version.is_empty()).then(|| version.to_string())
}

/// Versions of `package` the configured sources offer, with their suites
/// (`apt-cache madison`).
fn offered(package: &str) -> Vec<(String, String)> {
    let Ok(out) = Command::new("apt-cache")
        .args(["madison", package])
        .output()
    else {
        return Vec::new();
    };
    parse_madison(&String::from_utf8_lossy(&out.stdout))
}

/// `apt-cache madison` lines: ` pkg | version | URI suite/component arch Packages`.
/// Returns (version, suite) pairs.
pub fn parse_madison(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('|').map(str::trim);
            let _pkg = cols.next()?;
            let version = cols.next()?;
            let source = cols.next()?;
            let suite = source.split_whitespace().nth(1)?.split('/').next()?;
            Some((version.to_string(), suite.to_string()))
        })
        .collect()
}

/// The release's code name (`VERSION_CODENAME` of /etc/os-release).
fn codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The apt source files of the machine (deb822 `.sources` and one-line
/// `.list`), as (path, text).
fn source_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut push = |p: &Path| {
        if let Ok(t) = std::fs::read_to_string(p) {
            files.push((p.display().to_string(), t));
        }
    };
    push(Path::new("/etc/apt/sources.list"));
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p.to_string_lossy();
            if name.ends_with(".sources") || name.ends_with(".list") {
                push(&p);
            }
        }
    }
    files
}

/// A deb822 stanza for `<codename>-backports`, made from the machine's own
/// entry for `<codename>` (same mirror, same key), or `None` if the machine
/// has no such entry. The mirror is never named here: it is the machine's.
pub fn backports_stanza(files: &[(String, String)], codename: &str) -> Option<String> {
    for (path, text) in files {
        if path.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
                    })
                };
                let (Some(types), Some(uris), Some(suites)) =
                    (field("Types"), field("URIs"), field("Suites"))
                else {
                    continue;
                };
                if !types.split_whitespace().any(|t| t == "deb")
                    || !suites.split_whitespace().any(|s| s == codename)
                {
                    continue;
                }
                let mut out = format!(
                    "Types: deb\nURIs: {uris}\nSuites: {codename}-backports\nComponents: {}\n",
                    field("Components").unwrap_or_else(|| "main".into())
                );
                if let Some(key) = field("Signed-By") {
                    out.push_str(&format!("Signed-By: {key}\n"));
                }
                return Some(out);
            }
        } else {
            for line in text.lines() {
                let line = line.trim();
                let Some(rest) = line.strip_prefix("deb ") else {
                    continue;
                };
                let mut rest = rest.trim_start();
                let mut signed_by = None;
                if let Some(opts) = rest.strip_prefix('[') {
                    let (opts, after) = opts.split_once(']')?;
                    signed_by = opts
                        .split_whitespace()
                        .find_map(|o| o.strip_prefix("signed-by="))
                        .map(str::to_string);
                    rest = after.trim_start();
                }
                let mut words = rest.split_whitespace();
                let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
                    continue;
                };
                if suite != codename {
                    continue;
                }
                let components: Vec<&str> = words.collect();
                let mut out = format!(
                    "Types: deb\nURIs: {uri}\nSuites: {codename}-backports\nComponents: {}\n",
                    if components.is_empty() {
                        "main".to_string()
                    } else {
                        components.join(" ")
                    }
                );
                if let Some(key) = signed_by {
                    out.push_str(&format!("Signed-By: {key}\n"));
                }
                return Some(out);
            }
        }
    }
    None
}

/// Whether `suite` is already among the machine's apt sources.
fn suite_configured(files: &[(String, String)], suite: &str) -> bool {
    files.iter().any(|(path, text)| {
        text.lines().any(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return false;
            }
            if path.ends_with(".sources") {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("Suites")
                        && v.split_whitespace().any(|s| s == suite)
                })
            } else {
                l.starts_with("deb ") && l.split_whitespace().any(|w| w == suite)
            }
        })
    })
}

/// Installs QEMU beside an installed `qemu-utils` that the release's QEMU
/// cannot live with: first the QEMU of the same version (from its suite),
/// then the release's QEMU with `qemu-utils` downgraded to match.
fn install_qemu_beside(utils: &str) -> Result<(), String> {
    let mut tried = Vec::new();
    // (2) The QEMU that matches qemu-utils, from the suite it came from.
    let mut matching = offered(QEMU).into_iter().find(|(v, _)| v == utils);
    if matching.is_none() && utils.contains("~bpo") {
        match codename() {
            Some(code) => {
                let suite = format!("{code}-backports");
                let files = source_files();
                if suite_configured(&files, &suite) {
                    tried.push(format!(
                        "{suite} is configured but offers no {QEMU} {utils}"
                    ));
                } else if let Some(stanza) = backports_stanza(&files, &code) {
                    eprintln!(
                        "xtask: qemu-utils {utils} comes from {suite}; adding {OXEN_SOURCES} to install the QEMU that matches it"
                    );
                    let text = format!(
                        "# Added by Oxen's `cargo xtask` (xtask/src/deps.rs): the QEMU that matches\n\
                         # the installed qemu-utils {utils}. Remove this file to undo.\n{stanza}"
                    );
                    std::fs::write(OXEN_SOURCES, text)
                        .map_err(|e| format!("cannot write {OXEN_SOURCES}: {e}"))?;
                    if let Err(e) = apt(&["apt-get", "update", "-qq"]) {
                        tried.push(e);
                    }
                    matching = offered(QEMU).into_iter().find(|(v, _)| v == utils);
                } else {
                    tried.push(format!("no apt source for {code} to derive {suite} from"));
                }
            }
            None => tried.push("no VERSION_CODENAME in /etc/os-release".into()),
        }
    }
    if let Some((version, suite)) = matching {
        eprintln!("xtask: installing {QEMU} {version} from {suite} (matches qemu-utils)");
        match apt_install(&[format!("{QEMU}={version}")], &["-t", &suite]) {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(e),
        }
    }
    // (3) The release's QEMU, with qemu-utils brought to the same version.
    if let Some((version, _)) = offered(QEMU)
        .into_iter()
        .find(|(v, suite)| v != utils && !suite.ends_with("-backports"))
    {
        eprintln!("xtask: installing {QEMU} {version} and downgrading qemu-utils {utils} to it");
        match apt_install(
            &[format!("{QEMU}={version}"), format!("qemu-utils={version}")],
            &["--allow-downgrades"],
        ) {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(e),
        }
    }
    Err(tried.join("\n  "))
}

/// Installs the missing Debian packages with apt-get (as root), or says how.
pub fn ensure_packages() -> Result<(), String> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let by_hand = format!(
        "to install by hand: apt-get update && apt-get install --no-install-recommends {list}\n\
         (if qemu-utils from backports is installed: apt-get install -t <release>-backports {QEMU}, \
         or apt-get install --allow-downgrades {QEMU} qemu-utils=<the release's QEMU version>)"
    );
    if !is_root() {
        return Err(format!("missing packages: {list}\n{by_hand} (as root)"));
    }
    eprintln!("xtask: installing {list}");
    apt(&["apt-get", "update", "-qq"])
        .map_err(|e| format!("cannot read the package lists: {e}\n{by_hand}"))?;
    let result = match apt_install(&owned(&missing), &[]) {
        Ok(()) => Ok(()),
        Err(plain) => {
            let others: Vec<&str> = missing.iter().copied().filter(|p| *p != QEMU).collect();
            let others_result = if others.is_empty() {
                Ok(())
            } else {
                apt_install(&owned(&others), &[])
            };
            let qemu_result = match (missing.contains(&QEMU), installed_version("qemu-utils")) {
                (false, _) => Ok(()),
                (true, Some(utils)) => {
                    eprintln!(
                        "xtask: {QEMU} cannot be installed beside qemu-utils {utils} as offered; trying a matching QEMU"
                    );
                    install_qemu_beside(&utils).map_err(|e| format!("{plain}\n  then:\n  {e}"))
                }
                (true, None) => Err(plain.clone()),
            };
            match (others_result, qemu_result) {
                (Ok(()), Ok(())) => Ok(()),
                (a, b) => Err([a.err(), b.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n")),
            }
        }
    };
    let still = self::missing();
    match result {
        Ok(()) if still.is_empty() => Ok(()),
        Ok(()) => Err(format!(
            "apt-get succeeded but these packages are still missing: {}\n{by_hand}",
            still.join(" ")
        )),
        Err(e) => Err(format!(
            "cannot install {}:\n  {e}\n{by_hand}",
            still.join(" ")
        )),
    }
}

/// Prints the QEMU version the scenarios run on, with a warning when it is
/// not one of the releases they are known to pass on.
pub fn report_qemu() {
    match qemu_version() {
        Some(v) if QEMU_SUPPORTED.contains(&v) => eprintln!("xtask: QEMU {}.{}", v.0, v.1),
        Some(v) => eprintln!(
            "xtask: warning: QEMU {}.{} is not one of the versions the scenarios are checked on ({})",
            v.0,
            v.1,
            QEMU_SUPPORTED
                .iter()
                .map(|(a, b)| format!("{a}.{b}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => eprintln!("xtask: warning: cannot tell the version of qemu-system-i386"),
    }
}

/// QEMU's version as (major, minor), from `qemu-system-i386 --version`
/// (or `$OXEN_QEMU --version`).
pub fn qemu_version() -> Option<(u32, u32)> {
    let out = Command::new(crate::qemu::binary())
        .arg("--version")
        .output()
        .ok()?;
    parse_qemu_version(&String::from_utf8_lossy(&out.stdout))
}

/// "QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)" -> (7, 2).
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut nums = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((nums.next()?.parse().ok()?, nums.next()?.parse().ok()?))
}

/// Adds the nightly `rust-src` component if the sysroot lacks it.
pub fn ensure_rust_src() -> Result<(), String> {
    let out = Command::new("rustc")
        .current_dir(crate::root())
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib/src/rust/library/core")
        .exists()
    {
        return Ok(());
    }
    eprintln!("xtask: adding the rust-src component");
    crate::run_checked(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEB822: &str = "Types: deb\n# a mirror comment\nURIs: http://mirror.example/debian\n\
        Suites: bookworm bookworm-updates\nComponents: main\n\
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
        Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\
        Components: main\n";

    fn files(path: &str, text: &str) -> Vec<(String, String)> {
        vec![(path.to_string(), text.to_string())]
    }

    #[test]
    fn backports_from_deb822_keeps_mirror_and_key() {
        let s = backports_stanza(&files("/x/debian.sources", DEB822), "bookworm").unwrap();
        assert_eq!(
            s,
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm-backports\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn backports_from_one_line_list() {
        let list = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n";
        let s = backports_stanza(&files("/x/sources.list", list), "bookworm").unwrap();
        assert!(s.contains("URIs: http://m.example/debian\n"), "{s}");
        assert!(s.contains("Suites: bookworm-backports\n"));
        assert!(s.contains("Components: main contrib\n"));
        assert!(s.contains("Signed-By: /k.gpg\n"));
    }

    #[test]
    fn no_backports_without_an_entry_for_the_release() {
        assert_eq!(
            backports_stanza(&files("/x/debian.sources", DEB822), "trixie"),
            None
        );
        // Only the security suite: not a mirror of the release itself.
        let only_sec = DEB822.split("\n\n").nth(1).unwrap();
        assert_eq!(
            backports_stanza(&files("/x/d.sources", only_sec), "bookworm"),
            None
        );
    }

    #[test]
    fn configured_suites_are_found_and_comments_ignored() {
        let f = files("/x/debian.sources", DEB822);
        assert!(suite_configured(&f, "bookworm-updates"));
        assert!(!suite_configured(&f, "bookworm-backports"));
        let list = files("/x/a.list", "# deb http://m bookworm-backports main\n");
        assert!(!suite_configured(&list, "bookworm-backports"));
        let list = files("/x/a.list", "deb http://m bookworm-backports main\n");
        assert!(suite_configured(&list, "bookworm-backports"));
    }

    #[test]
    fn madison_lines_give_version_and_suite() {
        let text = " qemu-system-x86 | 1:10.0.2+ds-2+deb13u1~bpo12+1 | http://m/debian bookworm-backports/main amd64 Packages\n\
                    qemu-system-x86 | 1:7.2+dfsg-7+deb12u18+b3 | http://m/debian bookworm/main amd64 Packages\n";
        assert_eq!(
            parse_madison(text),
            vec![
                (
                    "1:10.0.2+ds-2+deb13u1~bpo12+1".into(),
                    "bookworm-backports".into()
                ),
                ("1:7.2+dfsg-7+deb12u18+b3".into(), "bookworm".into()),
            ]
        );
        assert!(parse_madison("garbage\n").is_empty());
    }

    #[test]
    fn qemu_versions_parse() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n"),
            Some((7, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright"),
            Some((10, 0))
        );
        assert_eq!(parse_qemu_version("no version here"), None);
    }
}
