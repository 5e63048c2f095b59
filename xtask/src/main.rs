//! `cargo xtask`: Oxen's build, image, run, test and bench driver.
//!
//! - `build`  builds `target/oxen.elf` for `x86_32-hv.json` with build-std;
//! - `iso`    makes a GRUB rescue ISO (`target/oxen.iso`) from `boot/grub.cfg.in`;
//! - `run`    boots the ISO in QEMU (Oxen, dom0 and its initrd by default) with
//!   the serial console on this terminal;
//! - `test`   runs the host tests, then the QEMU scenarios, and ends with
//!   `N passed, M failed`; a scenario is a data file
//!   `tests/scenarios/<name>.toml` (the format: `scenarios.rs`; its custom
//!   checks: `checks.rs`);
//! - `bench`  measures boot times and prints JSON (`bench.rs`);
//! - `fuzz`   runs the hypercall fuzzer (guests/fuzz) for a seed and a number
//!   of calls, as a domU or as dom0, with `mm_audit` on (`fuzz.rs`).
//!
//! Missing Debian packages and the nightly `rust-src` component are installed
//! here when absent (as root), or the exact command is printed.

mod bench;
mod checks;
mod deps;
mod disk;
mod dom0;
mod fuzz;
mod image;
mod qemu;
mod scenarios;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--debug]                 build target/oxen.elf and the guests (oxen-dom0, test-dom0, domu, fuzz)
  iso [--cmdline STR] [--module 'PATH ARGS']...
                                  build target/oxen.iso (GRUB, multiboot2)
  run [--kernel] [--cmdline STR] [--module 'PATH ARGS']... [--mem MIB] [--disk-mib MIB] [--gdb]
                                  boot in QEMU, serial console on this terminal; dom0's
                                  disk target/oxen-disk.img (made on first use, --disk-mib
                                  MiB sparse ext2, default 1024) as virtio-blk, and a
                                  virtio NIC on a restricted user-mode network
                                  (10.0.0.0/24, the host is 10.0.0.254)
                                  (--kernel: QEMU -kernel/multiboot1 instead of GRUB;
                                   --gdb: wait for gdb on :1234; without --module:
                                   oxen-dom0 and its initrd, the shell with xm)
  test [--qemu-only] [--host-only] [FILTER]
                                  host tests, then QEMU scenarios
  bench                           boot-time measurements as JSON
  fuzz [--calls N] [--seed S] [--mode domu|dom0] [--progress K] [--trace-from I]
       [--skip A-B] [--verify] [--audit-every N] [--no-audit] [--mem MIB] [--stall-s S]
                                  the hypercall fuzzer under mm_audit: calls/s, the
                                  audit result, pass/fail (seed default: the clock)
  lint                            rustfmt check, clippy -D warnings (host crates and kernel)
  deps                            install what is missing (Debian packages, rust-src) and
                                  print the QEMU version
";

/// The default hypervisor command line of `run` (the tutorial's GRUB entry).
pub const DEFAULT_CMDLINE: &str = "dom0_mem=256M loglvl=all com1=115200,8n1 console=com1";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match cmd.as_str() {
        "build" => build_cmd(rest),
        "iso" => iso_cmd(rest),
        "run" => run_cmd(rest),
        "test" => scenarios::test_cmd(rest),
        "bench" => bench::bench_cmd(rest),
        "fuzz" => fuzz::fuzz_cmd(rest),
        "lint" => lint(),
        "deps" => deps_cmd(),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// `target/` of the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Installs what is missing and says which QEMU the scenarios will use.
fn deps_cmd() -> Result<(), String> {
    deps::ensure_packages()?;
    deps::ensure_rust_src()?;
    deps::report_qemu();
    Ok(())
}

/// Runs a command, failing with its name if it does not succeed.
pub fn run_checked(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Builds the hypervisor and returns the path of `oxen.elf`.
pub fn build_kernel(release: bool) -> Result<PathBuf, String> {
    build_kernel_profile(if release { "release" } else { "dev" })
}

/// The cargo profile of the kernel built with overflow checks on (Cargo.toml:
/// release plus `overflow-checks`), for the scenarios that ask for it.
pub const OVERFLOW_CHECKS_PROFILE: &str = "release-overflow";

/// Builds the hypervisor with cargo profile `profile` and returns the path
/// of the copy in target/: `oxen.elf` (release and dev), else
/// `oxen-<profile>.elf`.
pub fn build_kernel_profile(profile: &str) -> Result<PathBuf, String> {
    deps::ensure_rust_src()?;
    let started = Instant::now();
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root())
        .arg("build")
        .args(KERNEL_BUILD_FLAGS)
        .args(["--profile", profile]);
    run_checked(&mut cmd)?;
    let dir = if profile == "dev" { "debug" } else { profile };
    let built = target_dir().join("x86_32-hv").join(dir).join("oxen");
    let out = match profile {
        "release" | "dev" => target_dir().join("oxen.elf"),
        _ => target_dir().join(format!("oxen-{profile}.elf")),
    };
    std::fs::copy(&built, &out).map_err(|e| format!("copying {}: {e}", built.display()))?;
    eprintln!(
        "xtask: built {} in {:.1} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// The kernel build's `-Z` flags (build-std lives only here, never in a config file).
pub const KERNEL_BUILD_FLAGS: &[&str] = &[
    "--package",
    "oxen",
    "--target",
    "x86_32-hv.json",
    "-Zbuild-std=core,alloc,compiler_builtins",
    "-Zbuild-std-features=compiler-builtins-mem",
    "-Zjson-target-spec",
];

/// rustfmt and clippy (`-D warnings`) on the host crates and on the kernel.
/// Fails naming the checks that did not pass.
pub fn lint() -> Result<(), String> {
    deps::ensure_rust_src()?;
    let mut failed = Vec::new();
    let checks: [(&str, Vec<&str>); 4] = [
        ("rustfmt", vec!["fmt", "--all", "--", "--check"]),
        (
            "clippy (host crates)",
            vec!["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"],
        ),
        // dom0's library is host-tested but not a default member (its binary
        // is a PV kernel).
        (
            "clippy (dom0 host tests)",
            vec![
                "clippy",
                "--quiet",
                "--package",
                "oxen-dom0",
                "--package",
                "domu",
                "--package",
                "fuzz",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("clippy (kernel and guests)", {
            let mut v = vec![
                "clippy",
                "--quiet",
                "--release",
                "--package",
                "pvrt",
                "--package",
                "test-dom0",
                "--package",
                "oxen-dom0",
                "--package",
                "domu",
                "--package",
                "fuzz",
            ];
            v.extend_from_slice(KERNEL_BUILD_FLAGS);
            v.extend_from_slice(&["--", "-D", "warnings"]);
            v
        }),
    ];
    for (name, args) in checks {
        let ok = Command::new("cargo")
            .current_dir(root())
            .args(&args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        println!("lint {name}: {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("lint failed: {}", failed.join(", ")))
    }
}

/// Builds a guest kernel of `guests/` for the same target and returns
/// `target/<name>.elf`.
pub fn build_guest(name: &str) -> Result<PathBuf, String> {
    deps::ensure_rust_src()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root())
        .args(["build", "--release", "--package", name])
        .args(&KERNEL_BUILD_FLAGS[2..]);
    run_checked(&mut cmd)?;
    let built = target_dir().join("x86_32-hv").join("release").join(name);
    let out = target_dir().join(format!("{name}.elf"));
    std::fs::copy(&built, &out).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(out)
}

/// The modules `run` and `iso` use when none are given: Oxen's dom0 and its
/// initrd (DESIGN.md §1).
fn default_modules() -> Result<Vec<String>, String> {
    let (dom0, initrd) = dom0::build_all()?;
    Ok(vec![
        format!("{} console=hvc0", dom0.display()),
        initrd.display().to_string(),
    ])
}

fn build_cmd(args: &[String]) -> Result<(), String> {
    let release = !args.iter().any(|a| a == "--debug");
    build_kernel(release)?;
    dom0::build()?;
    build_guest("domu")?;
    build_guest("fuzz")?;
    build_guest("test-dom0").map(|_| ())
}

/// Options shared by `iso` and `run`.
struct BootOpts {
    cmdline: String,
    modules: Vec<String>,
    kernel_path: bool,
    mem_mib: u32,
    disk_mib: u32,
    gdb: bool,
}

fn parse_boot_opts(args: &[String]) -> Result<BootOpts, String> {
    let mut o = BootOpts {
        cmdline: DEFAULT_CMDLINE.to_string(),
        modules: Vec::new(),
        kernel_path: false,
        mem_mib: 512,
        disk_mib: 1024,
        gdb: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--cmdline" => o.cmdline = value("--cmdline")?,
            "--module" => o.modules.push(value("--module")?),
            "--mem" => {
                o.mem_mib = value("--mem")?
                    .parse()
                    .map_err(|_| "--mem takes a number of MiB".to_string())?
            }
            "--disk-mib" => {
                o.disk_mib = value("--disk-mib")?
                    .parse()
                    .map_err(|_| "--disk-mib takes a number of MiB".to_string())?
            }
            "--kernel" => o.kernel_path = true,
            "--gdb" => o.gdb = true,
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(o)
}

fn iso_cmd(args: &[String]) -> Result<(), String> {
    let o = parse_boot_opts(args)?;
    deps::ensure_packages()?;
    let kernel = build_kernel(true)?;
    let modules = if o.modules.is_empty() {
        default_modules()?
    } else {
        o.modules.clone()
    };
    let iso = image::make_iso(
        &kernel,
        &o.cmdline,
        &modules,
        &target_dir().join("oxen.iso"),
    )?;
    eprintln!("xtask: wrote {}", iso.display());
    Ok(())
}

fn run_cmd(args: &[String]) -> Result<(), String> {
    let o = parse_boot_opts(args)?;
    deps::ensure_packages()?;
    let kernel = build_kernel(true)?;
    let modules = if o.modules.is_empty() {
        default_modules()?
    } else {
        o.modules.clone()
    };
    let boot = if o.kernel_path {
        qemu::Boot::Kernel {
            kernel,
            cmdline: o.cmdline.clone(),
            modules,
        }
    } else {
        qemu::Boot::Iso(image::make_iso(
            &kernel,
            &o.cmdline,
            &modules,
            &target_dir().join("oxen.iso"),
        )?)
    };
    eprintln!("xtask: booting Oxen in QEMU (TCG). Quit with Ctrl-A X.");
    let disk = target_dir().join("oxen-disk.img");
    disk::ensure(&disk, o.disk_mib)?;
    let mut cmd = qemu::command(&boot, o.mem_mib);
    cmd.args(disk::qemu_args(&disk));
    cmd.args(qemu::net_args());
    cmd.args(["-serial", "mon:stdio", "-display", "none"]);
    if o.gdb {
        cmd.args(["-s", "-S"]);
        eprintln!(
            "xtask: waiting for gdb: target remote :1234 (symbols: {})",
            target_dir().join("oxen.elf").display()
        );
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    // isa-debug-exit: 1 = Oxen halted cleanly, 3 = fatal; 0 = reset/quit.
    match status.code() {
        Some(0) | Some(1) => Ok(()),
        Some(3) => Err("Oxen stopped on a fatal error (see above)".into()),
        _ => Err(format!("QEMU exited with {status}")),
    }
}
