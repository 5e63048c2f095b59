//! `cargo xtask test`: the QEMU scenarios, read from `tests/scenarios/`.
//!
//! A scenario is data: one TOML file `tests/scenarios/<name>.toml`, whose
//! file stem is the scenario's name (lower-case letters, digits and `-`; there
//! is no `name` key). This module owns the format, its loader and the runner:
//! each scenario boots Oxen one way, types on the serial console when the
//! text it waits for appears, waits (with a timeout) for QEMU to exit, and
//! checks the exit and the serial transcript (`\r` removed). Scenarios run in
//! file-name order (they are independent: each boots its own machine). The
//! run ends with one line `N passed, M failed`, counting the host test suites,
//! the lints (one) and the scenarios.
//!
//! The format (every key below is the whole list; any other key is an error):
//!
//! ```toml
//! boot = "kernel"          # "kernel": QEMU -kernel (multiboot1, modules as
//!                          # "PATH ARGS"); "iso": a GRUB ISO (multiboot2)
//! cmdline = "dom0_mem=64M" # the hypervisor command line
//! test_opts = true         # default true: append "noreboot debug_exit=0xf4" so
//!                          # QEMU exits when Oxen stops (false to see a reset)
//! modules = [              # default none; files of target/test-fixtures/
//!     { file = "test-dom0.elf", args = "console=hvc0" },
//!     { file = "test-initrd.cpio", args = "role=initrd" },  # args default ""
//! ]
//! mem_mib = 256            # the machine's RAM
//! exit = "halted"          # "halted" (QEMU exit 1), "fatal" (3) or "reset" (0)
//! timeout_s = 60           # default 60: QEMU is killed after this (a failure)
//! overflow_checks = false  # default false: true boots the kernel built with
//!                          # overflow checks on (profile release-overflow;
//!                          # built once, only when a scenario asks)
//! cpu = "qemu32,+pae"      # default qemu::CPU: QEMU's -cpu model and flags
//! disk_mib = 64            # default none: a fresh dom0 disk of this size
//!                          # (ext2, xtask/src/disk.rs) as virtio-blk
//! net = false              # default false: true gives dom0 a virtio NIC on
//!                          # the lab's restricted user-mode network
//!
//! [[step]]                 # typing on the serial console, in order
//! wait_for = "oxen-dom0:/# "  # text to wait for, after the previous step's
//! after_s = 0              # default 0: seconds to wait after it appeared
//! type = "xm list\n"       # default: type nothing (just wait)
//!
//! [[check]]                # exactly one of has, lacks, custom
//! has = "Oxen halted."     # the transcript contains this text
//! [[check]]
//! lacks = "Panic"          # the transcript does not contain it
//! [[check]]
//! custom = "test_dom0_passed"  # a function of xtask/src/checks.rs
//! count = 359              # required by counted custom checks, else refused
//! why = "test-dom0 passes every check"  # optional on any check: printed
//!                          # with its failure
//! ```
//!
//! Strings are TOML basic strings: `\n`, `\r`, `\u001d` (Ctrl-]) and
//! `\u0001` (Ctrl-A) are written so. In `wait_for`, `type`, `has` and `lacks`,
//! `{version}` stands for the workspace version (dom0 shares it with xtask);
//! nothing else is substituted. Each step's text is looked for after where the
//! previous step's text was found, so a step waits for output that follows
//! what came before; every wait is for text (event-driven), and `after_s` is
//! only for a deliberate wall-clock pause a check then measures. Shared check
//! lists (the boot report, the toolstack scenarios' end checks) are repeated
//! in each file: a file says all that its scenario checks.
//!
//! A file that does not parse, misses a key, has an unknown key, a check
//! with none or two of has/lacks/custom, an unknown custom name or a wrong
//! `count` is reported as that scenario FAILED, with the file and the key
//! named: never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::checks::{self, CustomFn, number_after};
use crate::qemu::{self, Boot, Run};

/// Options a scenario's command line gets unless `test_opts = false`, so
/// that QEMU exits when Oxen stops.
pub const TEST_OPTS: &str = "noreboot debug_exit=0xf4";

/// Where the scenario files are, relative to the workspace root.
pub const SCENARIO_DIR: &str = "tests/scenarios";

/// `timeout_s` when a file gives none.
const DEFAULT_TIMEOUT_S: u64 = 60;

/// How Oxen is booted (`boot`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootPath {
    /// QEMU's multiboot1 loader (`-kernel`).
    Kernel,
    /// A GRUB ISO (multiboot2).
    Iso,
}

/// How QEMU must end (`exit`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// Oxen halted cleanly: isa-debug-exit value 0, QEMU exit code 1.
    Halted,
    /// Oxen stopped on a fatal error: value 1, QEMU exit code 3.
    Fatal,
    /// The machine reset, which QEMU (`-no-reboot`) turns into exit code 0.
    Reset,
}

impl Exit {
    /// QEMU's exit code for this ending.
    pub fn code(self) -> i32 {
        match self {
            Exit::Halted => 1,
            Exit::Fatal => 3,
            Exit::Reset => 0,
        }
    }
}

/// A scenario file as written (see the module doc).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    boot: BootPath,
    cmdline: String,
    #[serde(default = "yes")]
    test_opts: bool,
    #[serde(default)]
    modules: Vec<Module>,
    mem_mib: u32,
    exit: Exit,
    #[serde(default = "default_timeout")]
    timeout_s: u64,
    #[serde(default)]
    overflow_checks: bool,
    cpu: Option<String>,
    disk_mib: Option<u32>,
    #[serde(default)]
    net: bool,
    #[serde(default)]
    step: Vec<StepFile>,
    #[serde(default)]
    check: Vec<CheckFile>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_S
}

/// A module: a file of the fixture directory and its arguments.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Module {
    pub file: String,
    #[serde(default)]
    pub args: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    wait_for: String,
    #[serde(default)]
    after_s: u64,
    #[serde(rename = "type", default)]
    type_: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckFile {
    has: Option<String>,
    lacks: Option<String>,
    custom: Option<String>,
    count: Option<u64>,
    why: Option<String>,
}

/// A step: wait for `wait_for`, then `after` longer, then type `text`.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub wait_for: String,
    pub after: Duration,
    pub text: String,
}

/// What a check looks for.
pub enum What {
    /// The transcript contains this text.
    Has(String),
    /// The transcript does not contain this text.
    Lacks(String),
    /// A function of `checks::CUSTOM_CHECKS`, with the check's `count`.
    Custom {
        name: String,
        f: CustomFn,
        count: Option<u64>,
    },
}

/// A check on the transcript, with its optional description.
pub struct Check {
    pub what: What,
    pub why: Option<String>,
}

/// A loaded scenario, ready to run.
pub struct Scenario {
    pub name: String,
    pub boot: BootPath,
    /// The command line as passed (with [`TEST_OPTS`] unless refused).
    pub cmdline: String,
    pub modules: Vec<Module>,
    pub mem_mib: u32,
    pub exit: Exit,
    pub timeout: Duration,
    /// Boot the kernel built with overflow checks on.
    pub overflow_checks: bool,
    /// QEMU's `-cpu` argument, if not [`qemu::CPU`].
    pub cpu: Option<String>,
    /// The size of a fresh dom0 disk to attach, if any.
    pub disk_mib: Option<u32>,
    /// Give dom0 a NIC on the lab network (`qemu::net_args`).
    pub net: bool,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
}

/// `{version}` replaced by the workspace version.
fn expand(s: &str) -> String {
    s.replace("{version}", env!("CARGO_PKG_VERSION"))
}

/// Whether `name` is a scenario name: lower-case letters, digits, `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses the text of the scenario file of `name`. The error says what is
/// wrong, naming the key (and, for a check, its number from 1).
pub fn parse(name: &str, text: &str) -> Result<Scenario, String> {
    if !valid_name(name) {
        return Err(format!(
            "'{name}' is not a scenario name (lower-case letters, digits and '-')"
        ));
    }
    let f: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    if f.mem_mib == 0 {
        return Err("mem_mib: must be more than 0".into());
    }
    if f.timeout_s == 0 {
        return Err("timeout_s: must be more than 0".into());
    }
    if let Some(cpu) = &f.cpu
        && (cpu.is_empty() || cpu.contains(char::is_whitespace))
    {
        return Err(format!(
            "cpu: '{cpu}' is not a QEMU CPU model (a name and ,+flag list)"
        ));
    }
    if f.disk_mib.is_some_and(|m| !(8..=65536).contains(&m)) {
        return Err("disk_mib: must be 8..=65536".into());
    }
    if let Some(m) = f.modules.iter().find(|m| m.file.is_empty()) {
        return Err(format!("modules: a module with an empty file ({m:?})"));
    }
    let mut steps = Vec::new();
    for (i, s) in f.step.into_iter().enumerate() {
        if s.wait_for.is_empty() {
            return Err(format!("[[step]] {}: wait_for is empty", i + 1));
        }
        steps.push(Step {
            wait_for: expand(&s.wait_for),
            after: Duration::from_secs(s.after_s),
            text: expand(&s.type_),
        });
    }
    if f.check.is_empty() {
        return Err("no [[check]]: a scenario checks its transcript".into());
    }
    let checks = f
        .check
        .into_iter()
        .enumerate()
        .map(|(i, c)| check(c).map_err(|e| format!("[[check]] {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let cmdline = match (f.test_opts, f.cmdline.is_empty()) {
        (false, _) => f.cmdline,
        (true, true) => TEST_OPTS.to_string(),
        (true, false) => format!("{} {TEST_OPTS}", f.cmdline),
    };
    Ok(Scenario {
        name: name.to_string(),
        boot: f.boot,
        cmdline,
        modules: f.modules,
        mem_mib: f.mem_mib,
        exit: f.exit,
        timeout: Duration::from_secs(f.timeout_s),
        overflow_checks: f.overflow_checks,
        cpu: f.cpu,
        disk_mib: f.disk_mib,
        net: f.net,
        steps,
        checks,
    })
}

/// One `[[check]]`, resolved: exactly one kind, a known custom name, and a
/// `count` exactly where the custom check takes one.
fn check(c: CheckFile) -> Result<Check, String> {
    let given: Vec<&str> = [
        ("has", c.has.is_some()),
        ("lacks", c.lacks.is_some()),
        ("custom", c.custom.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if given.len() != 1 {
        return Err(format!(
            "exactly one of has, lacks, custom is needed, found {}",
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(" and ")
            }
        ));
    }
    if c.count.is_some() && c.custom.is_none() {
        return Err(format!(
            "count: only a custom check takes one, not {}",
            given[0]
        ));
    }
    let nonempty = |key: &str, t: String| {
        if t.is_empty() {
            Err(format!("{key}: the text is empty"))
        } else {
            Ok(expand(&t))
        }
    };
    let what = match (c.has, c.lacks, c.custom) {
        (Some(t), _, _) => What::Has(nonempty("has", t)?),
        (_, Some(t), _) => What::Lacks(nonempty("lacks", t)?),
        (_, _, Some(name)) => {
            let f = checks::find(&name).ok_or_else(|| {
                format!("custom: unknown check '{name}' (see xtask/src/checks.rs)")
            })?;
            match (f, c.count) {
                (CustomFn::Plain(_) | CustomFn::Disk(_), Some(_)) => {
                    return Err(format!("count: custom check '{name}' takes no count"));
                }
                (CustomFn::Counted(_), None) => {
                    return Err(format!("count: custom check '{name}' needs a count"));
                }
                _ => {}
            }
            What::Custom {
                name,
                f,
                count: c.count,
            }
        }
        (None, None, None) => unreachable!("one kind was given"),
    };
    Ok(Check { what, why: c.why })
}

/// A scenario file's name and its scenario, or why the file is wrong.
pub type Loaded = (String, Result<Scenario, String>);

/// The scenario files' directory.
pub fn scenario_dir() -> PathBuf {
    crate::root().join(SCENARIO_DIR)
}

/// Every scenario of `dir`, in file-name order, as (name, the loaded
/// scenario or why its file is wrong, naming the file). A file in `dir` that
/// is not a `.toml` file is an error too; an unreadable or empty `dir` fails
/// the whole.
pub fn load_dir(dir: &Path) -> Result<Vec<Loaded>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no scenario file in {}", dir.display()));
    }
    Ok(paths
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let loaded = if p.extension().is_some_and(|e| e == "toml") && p.is_file() {
                load_file(p)
            } else {
                Err(format!("{}: not a scenario file (<name>.toml)", shown(p)))
            };
            (stem, loaded)
        })
        .collect())
}

/// `p` relative to the workspace root when it is inside it.
fn shown(p: &Path) -> String {
    p.strip_prefix(crate::root())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// Loads one scenario file; the error starts with the file's path.
pub fn load_file(p: &Path) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", shown(p)))?;
    let name = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&name, &text).map_err(|e| format!("{}: {e}", shown(p)))
}

/// The scenario `name` (`tests/scenarios/<name>.toml`).
pub fn load_named(name: &str) -> Result<Scenario, String> {
    load_file(&scenario_dir().join(format!("{name}.toml")))
}

/// The initrd fixture: 64 KiB where byte i is i % 251 (test-dom0 checks it).
pub fn initrd_fixture() -> Result<PathBuf, String> {
    let dir = crate::target_dir().join("test-fixtures");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("test-initrd.cpio");
    let data: Vec<u8> = (0..64 * 1024).map(|i: usize| (i % 251) as u8).collect();
    std::fs::write(&path, data).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Builds the module files the scenarios boot with: the test dom0, its initrd,
/// and a "kernel" that is not an ELF file.
pub fn fixtures() -> Result<PathBuf, String> {
    let initrd = initrd_fixture()?;
    let dir = initrd.parent().expect("in the fixture dir").to_path_buf();
    let dom0 = crate::build_guest("test-dom0")?;
    std::fs::copy(&dom0, dir.join("test-dom0.elf")).map_err(|e| e.to_string())?;
    let fuzz = crate::build_guest("fuzz")?;
    std::fs::copy(&fuzz, dir.join("fuzz.elf")).map_err(|e| e.to_string())?;
    crate::dom0::fixtures(&dir)?;
    let garbage: Vec<u8> = (0..300 * 1024 + 123)
        .map(|i: usize| (i % 251) as u8)
        .collect();
    std::fs::write(dir.join("not-a-kernel.bin"), garbage).map_err(|e| e.to_string())?;
    Ok(dir)
}

/// A module's QEMU/GRUB string: "PATH ARGS", or "PATH" without arguments.
pub fn module_arg(dir: &Path, file: &str, args: &str) -> String {
    let p = dir.join(file).display().to_string();
    if args.is_empty() {
        p
    } else {
        format!("{p} {args}")
    }
}

/// How `s` boots, with its modules from the fixture directory (each must
/// exist there); an ISO is made for the GRUB path.
pub fn boot_for(s: &Scenario, kernel: &Path, fixtures: &Path) -> Result<Boot, String> {
    if let Some(m) = s.modules.iter().find(|m| !fixtures.join(&m.file).is_file()) {
        return Err(format!(
            "module file '{}' is not in {}",
            m.file,
            fixtures.display()
        ));
    }
    let modules: Vec<String> = s
        .modules
        .iter()
        .map(|m| module_arg(fixtures, &m.file, &m.args))
        .collect();
    Ok(match s.boot {
        BootPath::Kernel => Boot::Kernel {
            kernel: kernel.to_path_buf(),
            cmdline: s.cmdline.clone(),
            modules,
        },
        BootPath::Iso => {
            let iso = crate::target_dir().join(format!("{}.iso", s.name));
            Boot::Iso(crate::image::make_iso(kernel, &s.cmdline, &modules, &iso)?)
        }
    })
}

/// What failed in `run` of `s`: its exit, then each check, in file order.
///
/// `disk` is the scenario's disk image (`disk_mib`), read after QEMU exited,
/// for the checks of [`CustomFn::Disk`].
fn judge(s: &Scenario, run: &Run, disk: Option<&std::path::Path>) -> Vec<String> {
    let mut failures = Vec::new();
    let want = s.exit.code();
    match run.exit_code {
        Some(c) if c == want => {}
        Some(c) => failures.push(format!(
            "QEMU exit code {c}, expected {want} ({:?})",
            s.exit
        )),
        None => failures.push(format!(
            "timed out after {:.1} s",
            run.elapsed.as_secs_f64()
        )),
    }
    let t = run.transcript.as_str();
    for c in &s.checks {
        let why = c
            .why
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        match &c.what {
            What::Has(x) if !t.contains(x.as_str()) => {
                failures.push(format!("missing: {x:?}{why}"))
            }
            What::Lacks(x) if t.contains(x.as_str()) => {
                failures.push(format!("unexpected: {x:?}{why}"))
            }
            What::Custom { name, f, count } => {
                let result = match (f, count) {
                    (CustomFn::Plain(f), _) => f(t),
                    (CustomFn::Counted(f), Some(n)) => f(t, *n),
                    (CustomFn::Counted(_), None) => Err("no count (refused by the loader)".into()),
                    (CustomFn::Disk(f), _) => match disk.map(std::fs::read) {
                        Some(Ok(image)) => f(t, &image),
                        Some(Err(e)) => Err(format!("cannot read the disk image: {e}")),
                        None => Err("the scenario has no disk (disk_mib)".into()),
                    },
                };
                if let Err(e) = result {
                    failures.push(format!("{}: {e}", c.why.as_deref().unwrap_or(name)));
                }
            }
            _ => {}
        }
    }
    failures
}

/// Host tests: `cargo test` of the default members. Returns (passed, failed)
/// summed over every test binary's `test result:` line; a build failure or a
/// crashed test binary counts as one failure.
fn host_tests() -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    // The default members, then dom0's, the domU's and the fuzzer's libraries
    // (host-tested, but not default members: their binaries are PV kernels).
    let runs: [&[&str]; 4] = [
        &["test", "--quiet"],
        &["test", "--quiet", "--package", "oxen-dom0", "--lib"],
        &["test", "--quiet", "--package", "domu", "--lib"],
        &["test", "--quiet", "--package", "fuzz", "--lib"],
    ];
    for args in runs {
        let output = Command::new("cargo")
            .current_dir(crate::root())
            .args(args)
            .output();
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                println!("host tests: cannot run cargo: {e}");
                failed += 1;
                continue;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let failed_before = failed;
        for line in stdout.lines().filter(|l| l.starts_with("test result:")) {
            passed += number_after(line, ". ").unwrap_or(0) as u32;
            failed += number_after(line, "passed; ").unwrap_or(0) as u32;
        }
        if !output.status.success() && failed == failed_before {
            failed += 1;
        }
    }
    println!("host tests: {passed} passed, {failed} failed");
    (passed, failed)
}

pub fn test_cmd(args: &[String]) -> Result<(), String> {
    let qemu_only = args.iter().any(|a| a == "--qemu-only");
    let host_only = args.iter().any(|a| a == "--host-only");
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned();
    let (mut passed, mut failed) = (0u32, 0u32);
    // First, before the host tests: they use GNU cpio (the initrd crate's
    // interoperability tests skip without it). Only the QEMU scenarios
    // cannot run at all without the packages.
    match crate::deps::ensure_packages() {
        Ok(()) => {}
        Err(e) if host_only => println!("xtask: warning: {e}"),
        Err(e) => return Err(e),
    }
    if !qemu_only {
        let (p, f) = host_tests();
        passed += p;
        failed += f;
        match crate::lint() {
            Ok(()) => passed += 1,
            Err(e) => {
                println!("{e}");
                failed += 1;
            }
        }
    }
    if !host_only {
        let scenarios: Vec<_> = load_dir(&scenario_dir())?
            .into_iter()
            .filter(|(name, _)| filter.as_ref().is_none_or(|f| name.contains(f.as_str())))
            .collect();
        if !scenarios.is_empty() {
            crate::deps::report_qemu();
        }
        let built = if scenarios.is_empty() {
            None
        } else {
            Some((crate::build_kernel(true)?, fixtures()?))
        };
        // The kernel with overflow checks, built once if a scenario wants it.
        let checked = if scenarios
            .iter()
            .any(|(_, s)| s.as_ref().is_ok_and(|s| s.overflow_checks))
        {
            Some(crate::build_kernel_profile(crate::OVERFLOW_CHECKS_PROFILE)?)
        } else {
            None
        };
        let logs = crate::target_dir().join("test-logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        for (name, loaded) in scenarios {
            let (kernel, dir) = built.as_ref().expect("built for a scenario");
            let s = match loaded {
                Ok(s) => s,
                Err(e) => {
                    failed += 1;
                    println!("scenario {name}: FAILED (bad scenario file)");
                    for line in e.lines() {
                        println!("    {line}");
                    }
                    continue;
                }
            };
            let kernel = match (&checked, s.overflow_checks) {
                (Some(k), true) => k,
                _ => kernel,
            };
            let boot = match boot_for(&s, kernel, dir) {
                Ok(b) => b,
                Err(e) => {
                    failed += 1;
                    println!("scenario {name}: FAILED (cannot boot)\n    {e}");
                    continue;
                }
            };
            let steps: Vec<(&str, Duration, &str)> = s
                .steps
                .iter()
                .map(|st| (st.wait_for.as_str(), st.after, st.text.as_str()))
                .collect();
            let mut disk_image = None;
            let mut extra: Vec<String> = s
                .cpu
                .iter()
                .flat_map(|c| ["-cpu".to_string(), c.clone()])
                .collect();
            if let Some(mib) = s.disk_mib {
                let img = crate::target_dir()
                    .join("test-disks")
                    .join(format!("{name}.img"));
                if let Err(e) = crate::disk::create(&img, mib) {
                    failed += 1;
                    println!("scenario {name}: FAILED (cannot make its disk)\n    {e}");
                    continue;
                }
                extra.extend(crate::disk::qemu_args(&img));
                disk_image = Some(img);
            }
            if s.net {
                extra.extend(qemu::net_args());
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            let run = qemu::run_captured_paced(&boot, s.mem_mib, s.timeout, None, &extra, &steps)?;
            let log = logs.join(format!("{name}.log"));
            let _ = std::fs::write(&log, &run.transcript);
            let failures = judge(&s, &run, disk_image.as_deref());
            if failures.is_empty() {
                passed += 1;
                println!("scenario {name}: ok ({:.1} s)", run.elapsed.as_secs_f64());
            } else {
                failed += 1;
                println!(
                    "scenario {name}: FAILED ({:.1} s), transcript in {}",
                    run.elapsed.as_secs_f64(),
                    log.display()
                );
                for f in &failures {
                    println!("    {f}");
                }
                println!(
                    "---- transcript ----\n{}\n--------------------",
                    run.transcript.trim_end()
                );
            }
        }
    }
    if passed + failed == 0 {
        return Err("no test ran (a filter that matches no scenario?)".into());
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with every key, a step of each form and each kind of check.
    const GOOD: &str = r#"
        boot = "iso"
        cmdline = "dom0_mem=64M"
        modules = [
            { file = "test-dom0.elf", args = "console=hvc0" },
            { file = "test-initrd.cpio" },
        ]
        mem_mib = 256
        exit = "fatal"
        timeout_s = 90
        overflow_checks = true
        cpu = "qemu32,+pae,+pse36"
        disk_mib = 64
        net = true

        [[step]]
        wait_for = "oxen-dom0:/# "
        type = "xm list\n\u001d"

        [[step]]
        wait_for = "xm list\nName"
        after_s = 2

        [[check]]
        has = "oxen-dom0 {version}: "
        why = "the banner"

        [[check]]
        lacks = "Panic"

        [[check]]
        custom = "test_dom0_passed"
        count = 359
        why = "test-dom0 passes every check"

        [[check]]
        custom = "no_xm_error"
    "#;

    fn err(text: &str) -> String {
        match parse("x", text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    /// GOOD with `from` replaced by `to` (which must be there).
    fn good_with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "{from:?} not in GOOD");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn good_file_loads_every_key() {
        let s = parse("some-name-2", GOOD).unwrap();
        assert_eq!(s.name, "some-name-2");
        assert_eq!(s.boot, BootPath::Iso);
        assert_eq!(s.cmdline, format!("dom0_mem=64M {TEST_OPTS}"));
        assert_eq!(
            s.modules,
            vec![
                Module {
                    file: "test-dom0.elf".into(),
                    args: "console=hvc0".into()
                },
                Module {
                    file: "test-initrd.cpio".into(),
                    args: String::new()
                },
            ]
        );
        assert_eq!(s.mem_mib, 256);
        assert_eq!(s.exit, Exit::Fatal);
        assert_eq!(s.exit.code(), 3);
        assert_eq!(s.timeout, Duration::from_secs(90));
        assert!(s.overflow_checks);
        assert_eq!(s.cpu.as_deref(), Some("qemu32,+pae,+pse36"));
        assert_eq!(s.disk_mib, Some(64));
        assert!(s.net);
        assert_eq!(
            s.steps,
            vec![
                Step {
                    wait_for: "oxen-dom0:/# ".into(),
                    after: Duration::ZERO,
                    text: "xm list\n\x1d".into(),
                },
                Step {
                    wait_for: "xm list\nName".into(),
                    after: Duration::from_secs(2),
                    text: String::new(),
                },
            ]
        );
        assert_eq!(s.checks.len(), 4);
        match &s.checks[0] {
            Check {
                what: What::Has(t),
                why: Some(w),
            } => {
                assert_eq!(t, &format!("oxen-dom0 {}: ", env!("CARGO_PKG_VERSION")));
                assert_eq!(w, "the banner");
            }
            _ => panic!("check 1 is not has with why"),
        }
        assert!(matches!(&s.checks[1], Check { what: What::Lacks(t), why: None } if t == "Panic"));
        assert!(matches!(
            &s.checks[2].what,
            What::Custom { name, f: CustomFn::Counted(_), count: Some(359) } if name == "test_dom0_passed"
        ));
        assert!(matches!(
            &s.checks[3].what,
            What::Custom { name, f: CustomFn::Plain(_), count: None } if name == "no_xm_error"
        ));
    }

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let s = parse(
            "d",
            "boot = \"kernel\"\ncmdline = \"\"\nmem_mib = 64\nexit = \"halted\"\n\
             [[check]]\nhas = \"Oxen halted.\"\n",
        )
        .unwrap();
        assert_eq!(s.cmdline, TEST_OPTS);
        assert!(s.modules.is_empty() && s.steps.is_empty());
        assert_eq!(s.timeout, Duration::from_secs(DEFAULT_TIMEOUT_S));
        assert!(!s.overflow_checks);
        assert_eq!(s.cpu, None);
        assert_eq!(s.disk_mib, None);
        assert!(!s.net);
        assert_eq!(s.exit.code(), 1);
    }

    #[test]
    fn test_opts_false_keeps_the_cmdline_as_written() {
        let s = parse(
            "r",
            &good_with(
                "cmdline = \"dom0_mem=64M\"",
                "cmdline = \"selftest_fault=de\"\ntest_opts = false",
            ),
        )
        .unwrap();
        assert_eq!(s.cmdline, "selftest_fault=de");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&good_with("mem_mib = 256", "mem_mib = 256\nmemory = 5"));
        assert!(e.contains("unknown field `memory`"), "{e}");
        let e = err(&good_with("after_s = 2", "after_s = 2\ndelay = 1"));
        assert!(e.contains("unknown field `delay`"), "{e}");
        let e = err(&good_with(
            "lacks = \"Panic\"",
            "lacks = \"Panic\"\nhave = \"x\"",
        ));
        assert!(e.contains("unknown field `have`"), "{e}");
        let e = err(&good_with(
            "{ file = \"test-initrd.cpio\" }",
            "{ file = \"a\", arg = \"b\" }",
        ));
        assert!(e.contains("unknown field `arg`"), "{e}");
        // A misspelt table is an unknown key too, not an empty list.
        let e = err(&good_with(
            "[[check]]\n        lacks",
            "[[checks]]\n        lacks",
        ));
        assert!(e.contains("unknown field `checks`"), "{e}");
    }

    #[test]
    fn missing_key_is_named() {
        let e = err(&good_with("mem_mib = 256\n", ""));
        assert!(e.contains("missing field `mem_mib`"), "{e}");
        let e = err(&good_with("boot = \"iso\"\n", ""));
        assert!(e.contains("missing field `boot`"), "{e}");
        let e = err(&good_with("wait_for = \"xm list\\nName\"\n", ""));
        assert!(e.contains("missing field `wait_for`"), "{e}");
    }

    #[test]
    fn two_kinds_in_one_check_are_refused() {
        let e = err(&good_with(
            "lacks = \"Panic\"",
            "lacks = \"Panic\"\nhas = \"x\"",
        ));
        assert!(
            e.contains(
                "[[check]] 2: exactly one of has, lacks, custom is needed, found has and lacks"
            ),
            "{e}"
        );
        let e = err(&good_with(
            "custom = \"no_xm_error\"",
            "custom = \"no_xm_error\"\nlacks = \"y\"",
        ));
        assert!(
            e.contains("[[check]] 4: ") && e.contains("found lacks and custom"),
            "{e}"
        );
    }

    #[test]
    fn check_of_no_kind_is_refused() {
        let e = err(&good_with("lacks = \"Panic\"", "why = \"nothing\""));
        assert!(
            e.contains("[[check]] 2: exactly one of has, lacks, custom is needed, found none"),
            "{e}"
        );
    }

    #[test]
    fn unknown_custom_name_is_refused() {
        let e = err(&good_with(
            "custom = \"no_xm_error\"",
            "custom = \"no_such_check\"",
        ));
        assert!(
            e.contains("[[check]] 4: custom: unknown check 'no_such_check'"),
            "{e}"
        );
    }

    #[test]
    fn count_must_match_the_custom_check() {
        let e = err(&good_with("count = 359\n", ""));
        assert!(
            e.contains("count: custom check 'test_dom0_passed' needs a count"),
            "{e}"
        );
        let e = err(&good_with(
            "custom = \"no_xm_error\"",
            "custom = \"no_xm_error\"\ncount = 1",
        ));
        assert!(
            e.contains("count: custom check 'no_xm_error' takes no count"),
            "{e}"
        );
        let e = err(&good_with(
            "lacks = \"Panic\"",
            "lacks = \"Panic\"\ncount = 1",
        ));
        assert!(
            e.contains("count: only a custom check takes one, not lacks"),
            "{e}"
        );
    }

    #[test]
    fn bad_exit_and_boot_values_are_refused() {
        let e = err(&good_with("exit = \"fatal\"", "exit = \"crashed\""));
        assert!(e.contains("unknown variant `crashed`"), "{e}");
        assert!(e.contains("halted") && e.contains("reset"), "{e}");
        let e = err(&good_with("exit = \"fatal\"", "exit = 3"));
        assert!(e.contains("exit"), "{e}");
        let e = err(&good_with("boot = \"iso\"", "boot = \"grub\""));
        assert!(e.contains("unknown variant `grub`"), "{e}");
    }

    #[test]
    fn empty_texts_and_no_checks_are_refused() {
        let e = err(&good_with("lacks = \"Panic\"", "lacks = \"\""));
        assert!(e.contains("[[check]] 2: lacks: the text is empty"), "{e}");
        let e = err(&good_with(
            "wait_for = \"oxen-dom0:/# \"",
            "wait_for = \"\"",
        ));
        assert!(e.contains("[[step]] 1: wait_for is empty"), "{e}");
        let no_checks = &GOOD[..GOOD.find("[[check]]").unwrap()];
        assert!(err(no_checks).contains("no [[check]]"));
        let e = err(&good_with("mem_mib = 256", "mem_mib = 0"));
        assert!(e.contains("mem_mib"), "{e}");
    }

    #[test]
    fn bad_cpu_values_are_refused() {
        for bad in ["\"\"", "\"qemu32, +pse36\"", "\"qemu32 -s\""] {
            let e = err(&good_with(
                "cpu = \"qemu32,+pae,+pse36\"",
                &format!("cpu = {bad}"),
            ));
            assert!(e.contains("cpu: "), "{bad}: {e}");
        }
        let e = err(&good_with("cpu = \"qemu32,+pae,+pse36\"", "cpu = 36"));
        assert!(e.contains("cpu"), "{e}");
        for bad in [
            "disk_mib = 0",
            "disk_mib = 4",
            "disk_mib = 100000",
            "disk_mib = -1",
        ] {
            let e = err(&good_with("disk_mib = 64", bad));
            assert!(e.contains("disk_mib"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "Has-Capitals", "with space", "dot.ted"] {
            let e = parse(name, GOOD)
                .err()
                .unwrap_or_else(|| panic!("{name:?} accepted"));
            assert!(e.contains("is not a scenario name"), "{e}");
        }
    }

    #[test]
    fn load_dir_names_the_bad_file_and_keeps_the_good() {
        let dir = std::env::temp_dir().join(format!("xtask-scenarios-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b-good.toml"), GOOD).unwrap();
        std::fs::write(
            dir.join("a-bad.toml"),
            good_with("exit = \"fatal\"", "exit = \"nope\""),
        )
        .unwrap();
        std::fs::write(dir.join("c-notes.txt"), "not a scenario").unwrap();
        let loaded = load_dir(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a-bad", "b-good", "c-notes"]);
        let e = loaded[0].1.as_ref().err().expect("a-bad refused");
        assert!(
            e.contains("a-bad.toml: ") && e.contains("unknown variant `nope`"),
            "{e}"
        );
        assert_eq!(loaded[1].1.as_ref().expect("b-good loads").name, "b-good");
        let e = loaded[2].1.as_ref().err().expect("c-notes refused");
        assert!(e.contains("c-notes.txt: not a scenario file"), "{e}");
    }

    #[test]
    fn every_scenario_file_loads_and_every_custom_check_is_used() {
        let loaded = load_dir(&scenario_dir()).unwrap();
        let mut used = std::collections::BTreeSet::new();
        for (name, s) in &loaded {
            let s = s.as_ref().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&s.name, name);
            for c in &s.checks {
                if let What::Custom { name, .. } = &c.what {
                    assert!(checks::find(name).is_some(), "{name}");
                    used.insert(name.as_str());
                }
            }
        }
        // The scenarios of issue 9 (21 when they moved to files).
        assert!(loaded.len() >= 21, "{} scenario files", loaded.len());
        for (name, _) in checks::CUSTOM_CHECKS {
            assert!(
                used.contains(name),
                "custom check '{name}' is used by no scenario"
            );
        }
        let mut names: Vec<&str> = checks::CUSTOM_CHECKS.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            checks::CUSTOM_CHECKS.len(),
            "a custom name twice"
        );
    }

    fn run(transcript: &str, exit_code: Option<i32>) -> Run {
        Run {
            transcript: transcript.into(),
            exit_code,
            elapsed: Duration::from_secs(2),
            mark_at: None,
            step_at: Vec::new(),
        }
    }

    #[test]
    fn judge_passes_a_good_run_and_names_each_failure() {
        let s = parse("j", GOOD).unwrap();
        let good = format!(
            "oxen-dom0 {}: hello\ntest-dom0: 359 passed, 0 failed\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(judge(&s, &run(&good, Some(3)), None), Vec::<String>::new());
        let bad = "Panic\ntest-dom0: 358 passed, 0 failed\nxm list: refused\n";
        assert_eq!(
            judge(&s, &run(bad, Some(1)), None),
            [
                "QEMU exit code 1, expected 3 (Fatal)".to_string(),
                format!(
                    "missing: \"oxen-dom0 {}: \" (the banner)",
                    env!("CARGO_PKG_VERSION")
                ),
                "unexpected: \"Panic\"".to_string(),
                "test-dom0 passes every check: \"test-dom0: 358 passed, 0 failed\"".to_string(),
                "no_xm_error: \"xm list: refused\"".to_string(),
            ]
        );
        let timed_out = judge(&s, &run(&good, None), None);
        assert_eq!(timed_out, ["timed out after 2.0 s"]);
    }

    #[test]
    fn bench_scenarios_exist() {
        for name in [
            "grub-iso-boot-report",
            "kernel-boot-report",
            "xm-lifecycle",
            "grub-dom0-hello",
        ] {
            load_named(name).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
