//! `cargo xtask test` and `cargo xtask bench`: the QEMU scenarios.
//!
//! Each scenario boots Oxen one way, waits (with a timeout) for QEMU to exit
//! through isa-debug-exit (1 = Oxen halted, 3 = fatal), and checks the serial
//! transcript. The run ends with one line `N passed, M failed`, counting the
//! host test suites and the scenarios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::qemu::{self, Boot, Run};

/// QEMU exit code when Oxen halts cleanly (isa-debug-exit value 0).
const EXIT_HALTED: i32 = 1;
/// QEMU exit code when Oxen stops on a fatal error (value 1).
const EXIT_FATAL: i32 = 3;

/// QEMU exit code when the machine resets (QEMU runs with -no-reboot).
const EXIT_RESET: i32 = 0;

/// Options every scenario passes so that QEMU exits when Oxen stops.
const TEST_OPTS: &str = "noreboot debug_exit=0xf4";

#[derive(Clone, Copy, PartialEq)]
enum BootPath {
    Kernel,
    Iso,
}

/// A check on the transcript.
enum Check {
    /// The transcript contains this text.
    Has(&'static str),
    /// The transcript does not contain this text.
    Lacks(&'static str),
    /// A custom check with a description.
    Custom(&'static str, fn(&str) -> Result<(), String>),
}

struct Scenario {
    name: &'static str,
    path: BootPath,
    cmdline: String,
    /// Modules as ("file name in the fixture dir", "args").
    modules: Vec<(&'static str, &'static str)>,
    mem_mib: u32,
    exit: i32,
    checks: Vec<Check>,
    /// (text to wait for, bytes to type on the serial console then).
    input: Option<(&'static str, &'static str)>,
}

/// Further steps of the scenarios that type more than once, after their
/// `input`: (text to wait for, seconds to wait after it appeared, bytes to
/// type then). Each text is looked for after the previous one
/// (`qemu::run_captured_paced`); an empty text to type types nothing.
type Steps = &'static [(&'static str, u64, &'static str)];

const FOLLOW_UP: &[(&str, Steps)] = &[
    (
        "xm-create-domu",
        &[
            ("Started domain brun (id=1)\n", 0, "xm list\n"),
            ("domU brun: up", 0, "xm shutdown brun\n"),
            ("on_poweroff = destroy: destroyed\n", 0, "xm list\n"),
            ("# xm list\nName", 0, "halt\n"),
        ],
    ),
    ("xm-lifecycle", XM_LIFECYCLE),
    ("xm-eight-domus", XM_EIGHT_DOMUS),
    ("xm-fill-memory", XM_FILL_MEMORY),
];

/// xm-fill-memory after the first `xm info`: 64 MiB domains until Oxen is
/// out of memory (seven asked; six fit in 512 MiB beside a 64 MiB dom0).
const XM_FILL_MEMORY: Steps = &[
    ("free_memory", 0, ""),
    (PROMPT, 0, "xm create brun.cfg name=b1\n"),
    ("Started domain b1 (id=", 0, "xm create brun.cfg name=b2\n"),
    ("Started domain b2 (id=", 0, "xm create brun.cfg name=b3\n"),
    ("Started domain b3 (id=", 0, "xm create brun.cfg name=b4\n"),
    ("Started domain b4 (id=", 0, "xm create brun.cfg name=b5\n"),
    ("Started domain b5 (id=", 0, "xm create brun.cfg name=b6\n"),
    ("Started domain b6 (id=", 0, "xm create brun.cfg name=b7\n"),
    ("xm create: ", 0, ""),
    (PROMPT, 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "halt\n"),
];

/// The prompt.
const PROMPT: &str = "oxen-dom0:/# ";

/// xm-lifecycle after `xm create brun.cfg`. dom0 (like xend) does not
/// restart again a restarted domain that stops within 20 s
/// (`toolstack::MIN_RESTART_NS`), so the crash is tried on a second domain.
const XM_LIFECYCLE: Steps = &[
    ("Started domain brun (id=", 0, ""),
    ("domU brun: up", 0, "xm console brun\n"),
    // The buffered output, then what is typed is echoed; Ctrl-] returns.
    ("Hello from brun (domain ", 0, "hello oxen\r"),
    // What the domU may read of xenstore: its own name, not dom0's.
    ("hello oxen\n", 0, "xs-read name\r"),
    ("xs-read name: 'brun'", 0, "xs-read /local/domain/0/name\r"),
    // Half a second of CPU work, which xm list's Time column then shows.
    (
        "xs-read /local/domain/0/name: xenstore error",
        0,
        "spin 500\r",
    ),
    ("spun 500 ms", 0, "\x1d"),
    (PROMPT, 0, "xm pause brun\n"),
    ("xm pause brun\n", 0, ""),
    (PROMPT, 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    // A second later, still paused: its CPU time has not moved.
    (PROMPT, 1, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm unpause brun\n"),
    ("xm unpause brun\n", 0, ""),
    (PROMPT, 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm reboot brun\n"),
    ("on_reboot = restart: destroyed\n", 0, ""),
    ("Started domain brun (id=", 0, ""),
    // A crash (typed on the console of a second domain from the same
    // config: a domain that was itself just restarted is not restarted
    // again, as in xend) gives a restart with a new id too.
    ("domU brun: up", 0, "xm create brun.cfg name=crashy\n"),
    ("Started domain crashy (id=", 0, ""),
    ("domU crashy: up", 0, "xm console crashy\n"),
    ("Hello from crashy (domain ", 0, "crash\r"),
    ("on_crash = restart: destroyed\n", 0, ""),
    ("Started domain crashy (id=", 0, ""),
    ("domU crashy: up", 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm destroy brun\n"),
    ("xm destroy brun\n", 0, ""),
    (PROMPT, 0, "xm destroy crashy\n"),
    ("xm destroy crashy\n", 0, ""),
    (PROMPT, 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm dmesg\n"),
    ("xm dmesg\n", 0, ""),
    ("Starting dom0 (ring 1)", 0, ""),
    (PROMPT, 0, "halt\n"),
];

/// xm-eight-domus after the first `xm info`.
const XM_EIGHT_DOMUS: Steps = &[
    ("free_memory", 0, ""),
    (PROMPT, 0, "xm create small.cfg name=s1\n"),
    ("Started domain s1 (id=", 0, "xm create small.cfg name=s2\n"),
    ("Started domain s2 (id=", 0, "xm create small.cfg name=s3\n"),
    ("Started domain s3 (id=", 0, "xm create small.cfg name=s4\n"),
    ("Started domain s4 (id=", 0, "xm create small.cfg name=s5\n"),
    ("Started domain s5 (id=", 0, "xm create small.cfg name=s6\n"),
    ("Started domain s6 (id=", 0, "xm create small.cfg name=s7\n"),
    ("Started domain s7 (id=", 0, "xm create small.cfg name=s8\n"),
    ("Started domain s8 (id=", 0, ""),
    ("domU s8: up", 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm destroy s1\n"),
    ("xm destroy s1\n", 0, ""),
    (PROMPT, 0, "xm destroy s2\n"),
    ("xm destroy s2\n", 0, ""),
    (PROMPT, 0, "xm destroy s3\n"),
    ("xm destroy s3\n", 0, ""),
    (PROMPT, 0, "xm destroy s4\n"),
    ("xm destroy s4\n", 0, ""),
    (PROMPT, 0, "xm destroy s5\n"),
    ("xm destroy s5\n", 0, ""),
    (PROMPT, 0, "xm destroy s6\n"),
    ("xm destroy s6\n", 0, ""),
    (PROMPT, 0, "xm destroy s7\n"),
    ("xm destroy s7\n", 0, ""),
    (PROMPT, 0, "xm destroy s8\n"),
    ("xm destroy s8\n", 0, ""),
    (PROMPT, 0, "xm list\n"),
    ("xm list\nName", 0, ""),
    (PROMPT, 0, "xm info\n"),
    ("xm info\n", 0, ""),
    ("free_memory", 0, ""),
    (PROMPT, 0, "halt\n"),
];

/// Scenarios that run longer than the default minute.
const LONG_RUNNING: &[(&str, u64)] = &[("xm-eight-domus", 120)];

/// Every input step of `s`, in order: (text to wait for, delay, bytes to type).
fn input_steps(s: &Scenario) -> Vec<(&'static str, Duration, &'static str)> {
    let more = FOLLOW_UP
        .iter()
        .filter(|(name, _)| *name == s.name)
        .flat_map(|(_, steps)| steps.iter().copied());
    s.input
        .map(|(w, t)| (w, 0, t))
        .into_iter()
        .chain(more)
        .map(|(w, secs, t)| (w, Duration::from_secs(secs), t))
        .collect()
}

/// How long `s` may run.
fn timeout_of(s: &Scenario) -> Duration {
    let secs = LONG_RUNNING
        .iter()
        .find(|(name, _)| *name == s.name)
        .map_or(60, |(_, secs)| *secs);
    Duration::from_secs(secs)
}

/// The `xm list` tables of the transcript: the lines after each echoed
/// `xm list` (at a prompt, or on a line of its own when a domain's message
/// came first) up to the next prompt.
fn xm_lists(t: &str) -> Vec<Vec<&str>> {
    let lines: Vec<&str> = t.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "xm list" || l.ends_with("# xm list"))
        .map(|(i, _)| {
            lines[i + 1..]
                .iter()
                .copied()
                .take_while(|l| !l.starts_with("oxen-dom0:"))
                .collect()
        })
        .collect()
}

/// xm-create-domu: brun (id 1) is listed first, gone from the last list.
fn check_brun_listed_then_gone(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [first, .., last] = lists.as_slice() else {
        return Err(format!("{} xm list tables, expected 2", lists.len()));
    };
    let brun = |l: &&str| l.starts_with("brun ") && l.split_whitespace().nth(1) == Some("1");
    if !first.iter().any(brun) {
        return Err(format!("brun (id 1) not in the first list: {first:?}"));
    }
    if !last.iter().any(|l| l.starts_with("Domain-0 "))
        || last.iter().any(|l| l.starts_with("brun "))
    {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// The rows of an `xm list` table naming `name`.
fn rows_named<'t>(table: &[&'t str], name: &str) -> Vec<&'t str> {
    table
        .iter()
        .copied()
        .filter(|l| l.split_whitespace().next() == Some(name))
        .collect()
}

/// The state column (5th) of an `xm list` row.
fn state_of(row: &str) -> &str {
    row.split_whitespace().nth(4).unwrap_or("")
}

/// A scenario driving Oxen's dom0 (64 MiB, its initrd, 512 MiB machine)
/// through its shell: `first` is typed at the first prompt (the rest comes
/// from `FOLLOW_UP`); the run must end with dom0 powering off, and no
/// xenstored complaint, guest panic or Oxen panic may appear.
fn toolstack_scenario(name: &'static str, first: &'static str, mut checks: Vec<Check>) -> Scenario {
    checks.extend([
        Check::Has("oxen-dom0: powering off\n"),
        Check::Lacks("xenstored: domain"),
        Check::Lacks("guest panic"),
        Check::Lacks("Panic"),
    ]);
    Scenario {
        name,
        path: BootPath::Kernel,
        cmdline: format!("dom0_mem=64M {TEST_OPTS}"),
        modules: vec![
            ("oxen-dom0.elf", "console=hvc0"),
            (crate::dom0::INITRD_NAME, ""),
        ],
        mem_mib: 512,
        exit: EXIT_HALTED,
        input: Some((PROMPT, first)),
        checks,
    }
}

/// No line starts with `xm <sub>:` (xm's error form) after the boot.
fn check_no_xm_error(t: &str) -> Result<(), String> {
    match t.lines().find(|l| {
        l.strip_prefix("xm ")
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|sub| sub.ends_with(':'))
            || l.starts_with("xm:")
    }) {
        Some(l) => Err(format!("{l:?}")),
        None => Ok(()),
    }
}

/// xm-lifecycle: `xm console brun` prints what brun wrote before (its banner
/// and greeting, from the console daemon's buffer).
fn check_console_banner(t: &str) -> Result<(), String> {
    let after = &t[t
        .find("xm console brun\n")
        .ok_or("'xm console brun' not typed")?..];
    let banner = after
        .find("Oxen domU ")
        .ok_or("no banner after xm console")?;
    let hello = after
        .find("Hello from brun (domain ")
        .ok_or("no greeting after xm console")?;
    if banner < hello && after[banner..].contains(": booted as domain ") {
        Ok(())
    } else {
        Err(format!(
            "unexpected console output {:?}",
            &after[..after.len().min(300)]
        ))
    }
}

/// xm-lifecycle: the list after `xm pause` shows brun paused ('p'), the one
/// after `xm unpause` shows it without 'p'.
fn check_pause_state(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let (Some(paused), Some(later), Some(unpaused)) = (lists.first(), lists.get(1), lists.get(2))
    else {
        return Err(format!(
            "{} xm list tables, expected 3 or more",
            lists.len()
        ));
    };
    let p = rows_named(paused, "brun");
    let l = rows_named(later, "brun");
    let u = rows_named(unpaused, "brun");
    match (p.as_slice(), l.as_slice(), u.as_slice()) {
        ([p], [l], [u])
            if state_of(p).contains('p')
                && state_of(l).contains('p')
                && !state_of(u).contains('p') =>
        {
            Ok(())
        }
        _ => Err(format!(
            "after pause {p:?}, a second later {l:?}, after unpause {u:?}"
        )),
    }
}

/// The Time(s) column (last) of an `xm list` row.
fn cpu_time_of(row: &str) -> Option<f64> {
    row.split_whitespace().last()?.parse().ok()
}

/// xm-lifecycle: after `spin 500` brun has used at least half a second of
/// CPU, and while paused its CPU time stands still.
fn check_cpu_time(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let time = |i: usize| {
        lists
            .get(i)
            .and_then(|l| rows_named(l, "brun").first().copied())
            .and_then(cpu_time_of)
    };
    match (time(0), time(1)) {
        (Some(a), Some(b)) if a >= 0.5 && a == b => Ok(()),
        other => Err(format!("brun's Time(s) while paused: {other:?}")),
    }
}

/// The ids of the `Started domain <name> (id=N)` lines, in order.
fn started_ids(t: &str, name: &str) -> Vec<u64> {
    let prefix = format!("Started domain {name} (id=");
    t.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.trim_end_matches(')').parse().ok())
        .collect()
}

/// xm-lifecycle: brun started three times (create, reboot, crash) with
/// increasing ids; dom0 reported each restart of the previous id; the domU
/// came up each time.
fn check_restarts(t: &str) -> Result<(), String> {
    // `xm dmesg` repeats dom0's output (it went through Oxen's console).
    let t = &t[..t.find("xm dmesg\n").unwrap_or(t.len())];
    let brun = started_ids(t, "brun");
    let crashy = started_ids(t, "crashy");
    let ([a, b], [c, d]) = (brun.as_slice(), crashy.as_slice()) else {
        return Err(format!(
            "brun started with ids {brun:?}, crashy with {crashy:?}, expected 2 starts each"
        ));
    };
    if !(a < b && b < c && c < d) {
        return Err(format!("ids {brun:?} then {crashy:?} do not increase"));
    }
    for want in [
        format!("dom0: domain brun (id={a}) shut down (reboot); on_reboot = restart: destroyed\n"),
        format!("dom0: domain crashy (id={c}) shut down (crash); on_crash = restart: destroyed\n"),
    ] {
        if !t.contains(&want) {
            return Err(format!("missing {want:?}"));
        }
    }
    for (name, n) in [("brun", 2), ("crashy", 2)] {
        let ups = t.matches(&format!("domU {name}: up")).count();
        if ups != n {
            return Err(format!("'domU {name}: up' {ups} times, expected {n}"));
        }
    }
    Ok(())
}

/// xm-lifecycle: the list before `xm destroy` has brun, the last one has
/// Domain-0 only.
fn check_gone_after_destroy(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [.., before, last] = lists.as_slice() else {
        return Err(format!("{} xm list tables", lists.len()));
    };
    if rows_named(before, "brun").len() != 1 || rows_named(before, "crashy").len() != 1 {
        return Err(format!(
            "brun and crashy not in the list before xm destroy: {before:?}"
        ));
    }
    if rows_named(last, "Domain-0").len() != 1 || last.len() != 2 {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// xm-lifecycle: `xm dmesg` prints Oxen's boot log (read back from its
/// console ring), which ends with what happened since.
fn check_dmesg(t: &str) -> Result<(), String> {
    let at = t.find("xm dmesg\n").ok_or("'xm dmesg' not typed")?;
    let after = &t[at..];
    let end = after.find("# halt").unwrap_or(after.len());
    let out = &after[..end];
    for want in ["Starting dom0 (ring 1)", "Modules: 2"] {
        if !out.contains(want) {
            return Err(format!("{want:?} not in xm dmesg's output"));
        }
    }
    Ok(())
}

/// xm-eight-domus: the list shows Domain-0 and s1..s8 (once each), the
/// last list none of s1..s8.
fn check_eight_listed_then_none(t: &str) -> Result<(), String> {
    let lists = xm_lists(t);
    let [full, .., last] = lists.as_slice() else {
        return Err(format!("{} xm list tables, expected 2", lists.len()));
    };
    let names: Vec<String> = (1..=8).map(|i| format!("s{i}")).collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| rows_named(full, n).len() != 1)
        .collect();
    if !missing.is_empty() || rows_named(full, "Domain-0").len() != 1 {
        return Err(format!("missing {missing:?}: {full:?}"));
    }
    if rows_named(last, "Domain-0").len() != 1
        || names.iter().any(|n| !rows_named(last, n).is_empty())
    {
        return Err(format!("the last list should have Domain-0 only: {last:?}"));
    }
    Ok(())
}

/// xm-eight-domus: each small domain printed `domU sN: up`.
fn check_eight_up(t: &str) -> Result<(), String> {
    let missing: Vec<u32> = (1..=8)
        .filter(|i| !t.contains(&format!("domU s{i}: up")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("no 'domU sN: up' for {missing:?}"))
    }
}

/// xm-eight-domus: `free_memory` of the last `xm info` equals the first.
fn check_free_memory_returns(t: &str) -> Result<(), String> {
    let figures: Vec<u64> = t
        .lines()
        .filter_map(|l| l.strip_prefix("free_memory"))
        .filter_map(|rest| rest.trim_start_matches([' ', ':']).trim().parse().ok())
        .collect();
    let [first, last] = figures.as_slice() else {
        return Err(format!("free_memory figures {figures:?}, expected 2"));
    };
    if first == last && *first > 0 {
        Ok(())
    } else {
        Err(format!("free_memory {first} MiB before, {last} MiB after"))
    }
}

/// xm-fill-memory: as many 64 MiB domains started as whole 64 MiB fit in
/// the first `free_memory` figure; the next `xm create` was refused with
/// -ENOMEM by populate_physmap and its half-built domain destroyed; the list
/// shows the ones that fit.
fn check_filled_then_enomem(t: &str) -> Result<(), String> {
    let free = number_after(t, "free_memory            : ").ok_or("no free_memory figure")?;
    let started = (1..=7)
        .filter(|i| t.contains(&format!("Started domain b{i} (id=")))
        .count() as u64;
    if started != free / 64 || started >= 7 {
        return Err(format!(
            "{started} domains of 64 MiB started with {free} MiB free"
        ));
    }
    let refusal = "xm create: the hypervisor refused memory_op populate_physmap: -ENOMEM";
    let line = t
        .lines()
        .find(|l| l.starts_with(refusal))
        .ok_or("no -ENOMEM refusal")?;
    if !line.ends_with(" destroyed") {
        return Err(format!("the refused domain was not destroyed: {line:?}"));
    }
    let lists = xm_lists(t);
    let last = lists.last().ok_or("no xm list")?;
    let listed = (1..=7)
        .filter(|i| !rows_named(last, &format!("b{i}")).is_empty())
        .count() as u64;
    if listed != started {
        return Err(format!("{listed} listed, {started} started: {last:?}"));
    }
    Ok(())
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
fn fixtures() -> Result<PathBuf, String> {
    let initrd = initrd_fixture()?;
    let dir = initrd.parent().expect("in the fixture dir").to_path_buf();
    let dom0 = crate::build_guest("test-dom0")?;
    std::fs::copy(&dom0, dir.join("test-dom0.elf")).map_err(|e| e.to_string())?;
    crate::dom0::fixtures(&dir)?;
    let garbage: Vec<u8> = (0..300 * 1024 + 123)
        .map(|i: usize| (i % 251) as u8)
        .collect();
    std::fs::write(dir.join("not-a-kernel.bin"), garbage).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn module_arg(dir: &Path, file: &str, args: &str) -> String {
    let p = dir.join(file).display().to_string();
    if args.is_empty() {
        p
    } else {
        format!("{p} {args}")
    }
}

fn check_dom0_all_but_128m(t: &str) -> Result<(), String> {
    let free = number_after(t, "Free memory: ").ok_or("no 'Free memory:' line")?;
    let dom0 = number_after(t, "dom0_mem: -128M resolved to ")
        .ok_or("no 'dom0_mem: -128M resolved to' line")?;
    // MiB are rounded down on both lines, so allow one MiB of slack.
    if dom0 + 128 == free || dom0 + 129 == free {
        Ok(())
    } else {
        Err(format!(
            "free {free} MiB but dom0 got {dom0} MiB; expected free - 128"
        ))
    }
}

fn check_frame_table_census(t: &str) -> Result<(), String> {
    let line = t
        .lines()
        .find(|l| l.contains("frame table for "))
        .ok_or("no frame table line")?;
    let frames = number_after(line, "frame table for ").ok_or("no frame count")?;
    let oxen = number_after(line, "frames (").ok_or("no Oxen count")?;
    let free = number_after(line, "Oxen's, ").ok_or("no free count")?;
    let io = number_after(line, "free, ").ok_or("no I/O count")?;
    if oxen + free + io != frames {
        return Err(format!("census {oxen}+{free}+{io} != {frames} frames"));
    }
    let free_line = number_after(t, "Free memory: ").ok_or("no Free memory line")?;
    let free_pages =
        number_after(t, &format!("Free memory: {free_line} MiB (")).ok_or("no free pages")?;
    // The frame table is filled after the heap: everything allocated later is
    // Oxen's too, so the table can only count fewer free frames than the allocator.
    if free < free_pages {
        return Err(format!(
            "frame table says {free} free, allocator {free_pages}"
        ));
    }
    Ok(())
}

/// How many checks test-dom0 runs: a section that silently stopped running
/// shows up as a different count.
const TEST_DOM0_CHECKS: u64 = 359;

fn check_dom0_passed(t: &str) -> Result<(), String> {
    let line = t
        .lines()
        .find(|l| l.starts_with("test-dom0: ") && l.contains(" passed, "))
        .ok_or("no test-dom0 summary line")?;
    let passed = number_after(line, "test-dom0: ").ok_or("no pass count")?;
    let failed = number_after(line, "passed, ").ok_or("no fail count")?;
    if failed != 0 || passed != TEST_DOM0_CHECKS {
        return Err(format!("{line:?}"));
    }
    match t.lines().find(|l| l.contains(": FAILED")) {
        Some(l) => Err(format!("{l:?}")),
        None => Ok(()),
    }
}

fn check_audits(t: &str) -> Result<(), String> {
    let n = number_after(t, "mm audit: ").ok_or("no 'mm audit:' line")?;
    if n >= 50 {
        Ok(())
    } else {
        Err(format!("only {n} recounts"))
    }
}

/// `xm list` in dom0-shell: the table (once Oxen serves the sysctl) or the
/// hypervisor's refusal, on one line.
fn check_xm_list(t: &str) -> Result<(), String> {
    let after = &t[t.find("# xm list\n").ok_or("'xm list' was not echoed")? + 10..];
    let first = after.lines().next().unwrap_or("");
    if first.starts_with("xm list: the hypervisor refused sysctl getdomaininfolist: -")
        || (first.starts_with("Name ")
            && after
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("Domain-0 ")))
    {
        Ok(())
    } else {
        Err(format!("unexpected answer {first:?}"))
    }
}

fn number_after(t: &str, prefix: &str) -> Option<u64> {
    let rest = &t[t.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn scenarios() -> Vec<Scenario> {
    // GRUB passes a module's arguments as its string; QEMU passes "PATH ARGS".
    let report = |loader: &'static str, module0: &'static str, module1: &'static str| {
        vec![
            Check::Has(loader),
            Check::Has("Parsed options: dom0_mem=256M"),
            Check::Has("Parsed options: dom0_mem=256M loglvl=all"),
            Check::Has("Memory map total: "),
            Check::Has("dom0_mem: 256M resolved to 256 MiB (65536 pages)"),
            Check::Has("Modules: 2"),
            Check::Has(module0),
            Check::Has(module1),
            Check::Has("GDT: FLAT_RING1_CS 0xe019 limit 0xf67fffff dpl 1"),
            Check::Has("GDT: FLAT_RING1_DS 0xe021 limit 0xf67fffff dpl 1"),
            Check::Has("GDT: FLAT_RING3_CS 0xe02b limit 0xf67fffff dpl 3"),
            Check::Has("GDT: FLAT_RING3_DS 0xe033 limit 0xf67fffff dpl 3"),
            Check::Has("TSC: "),
            Check::Has(" Hz tick running ("),
            Check::Custom("frame table census adds up", check_frame_table_census),
            Check::Has("dom0: Oxen-pvrt '0.1' entry 0xc0000000, 65536 pages"),
            Check::Has("cmdline 'console=hvc0'"),
            Check::Has("Starting dom0 (ring 1)"),
            Check::Custom("test-dom0 passes every check", check_dom0_passed),
            Check::Has("Domain 0 (Domain-0) shutdown: reason poweroff (0)"),
            Check::Has("Hardware Dom0 halted: halting machine"),
            Check::Has("Oxen halted."),
            Check::Lacks("warning:"),
            Check::Lacks("Panic"),
        ]
    };
    let dom0_modules =
        |args: &'static str| vec![("test-dom0.elf", args), ("test-initrd.cpio", "role=initrd")];
    let two_modules = dom0_modules("console=hvc0");
    vec![
        Scenario {
            name: "grub-iso-boot-report",
            path: BootPath::Iso,
            cmdline: format!("dom0_mem=256M loglvl=all com1=115200,8n1 console=com1 {TEST_OPTS}"),
            modules: two_modules.clone(),
            mem_mib: 512,
            exit: EXIT_HALTED,
            input: None,
            checks: {
                let mut c = report(
                    "Loader: multiboot2 (GRUB",
                    "KiB) 'console=hvc0'",
                    "(64 KiB) 'role=initrd'",
                );
                c.push(Check::Has(
                    "Command line: dom0_mem=256M loglvl=all com1=115200,8n1 console=com1",
                ));
                c
            },
        },
        Scenario {
            name: "kernel-boot-report",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=256M loglvl=all com1=115200,8n1 console=com1 {TEST_OPTS}"),
            modules: two_modules.clone(),
            mem_mib: 512,
            exit: EXIT_HALTED,
            input: None,
            checks: report(
                "Loader: multiboot1",
                "/test-fixtures/test-dom0.elf console=hvc0'",
                "/test-fixtures/test-initrd.cpio role=initrd'",
            ),
        },
        Scenario {
            // The PV MMU through GRUB: dom0 builds, pins and switches page
            // tables and tries every bad input; Oxen recounts the whole frame
            // table after each MMU hypercall (mm_audit).
            name: "grub-dom0-mmu-audit",
            path: BootPath::Iso,
            cmdline: format!("dom0_mem=64M mm_audit {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0"),
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: None,
            checks: vec![
                Check::Has("Loader: multiboot2 (GRUB"),
                Check::Has("dom0: Oxen-pvrt '0.1' entry 0xc0000000, 16384 pages"),
                Check::Has("check start_info.magic: ok"),
                Check::Has("check p2m_m2p_consistent: ok"),
                Check::Has("check initrd_contents: ok"),
                Check::Has("check new_baseptr: ok"),
                Check::Has("check ptwr_mov_entry: ok"),
                Check::Has("check batch_stops_at_bad_entry: ok"),
                Check::Has("check mmu_update_reqs_in_hole: ok"),
                Check::Has("check long_batch: ok"),
                Check::Has("check trap_page_fault_caught: ok"),
                Check::Has("check trap_gp_caught: ok"),
                Check::Has("check fpu_taskswitch_nm_once: ok"),
                Check::Has("check evtchn_ipi_delivered: ok"),
                Check::Has("check evtchn_delivered_on_unmask: ok"),
                Check::Has("check timer_wakes_blocked_vcpu: ok"),
                Check::Has("check periodic_wakes_twice: ok"),
                Check::Has("check cpuid_xen_signature: ok"),
                Check::Has("check port_io_with_iopl: ok"),
                Check::Has("check gdt_dpl0_raised_to_1: ok"),
                Check::Has("check bad_selector_failsafe_callback: ok"),
                Check::Has("check ldt_gone_selector_failsafe: ok"),
                Check::Has("check int80_direct_gate: ok"),
                Check::Has("check int80_through_oxen: ok"),
                Check::Has("check seg4gb_limit_truncated: ok"),
                Check::Has("check seg4gb_negative_offset_load: ok"),
                Check::Has("check destroy_gives_back_all_memory: ok"),
                Check::Has("check virq_dom_exc_on_destroy: ok"),
                Check::Has(") domU: a second domain ran; its FPU value survived 50 switches"),
                Check::Has("check dom0_fpu_survived_domu: ok"),
                Check::Has("check evtchn_interdomain_delivered: ok"),
                Check::Has("check domu_domctl_refused: ok"),
                Check::Has("check gnttab_map_grant_ref: ok"),
                Check::Has("check gnttab_copy_from_grant: ok"),
                Check::Has("check destroy_while_granted_page_mapped: ok"),
                Check::Custom("test-dom0 passes every check", check_dom0_passed),
                Check::Custom("the frame table was recounted", check_audits),
                // test-dom0's 5000-entry batch is served 1024 entries at a time
                // (4), and its multicall with a 3000-entry mmu_update inside
                // yields twice more.
                Check::Has("Hypercall continuations (preempted batches) so far: 7\n"),
                Check::Has("Domain 0 (Domain-0) shutdown: reason poweroff (0)"),
                Check::Has("Hardware Dom0 halted: halting machine"),
                Check::Lacks("Panic"),
            ],
        },
        Scenario {
            name: "dom0-guest-fault-crashes-domain",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0 test=fault"),
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("test-dom0: reading unmapped address 0x1000"),
                Check::Has(
                    "d0: unhandled trap 14 (#PF page fault) error code 0x0000, cr2 0x00001000",
                ),
                Check::Has("EIP:    e019:[<c"),
                Check::Has("Domain 0 (Domain-0) shutdown: reason crash (3)"),
                Check::Has("Hardware Dom0 crashed"),
                Check::Lacks("test-dom0: read returned"),
                Check::Lacks("FATAL TRAP"),
                Check::Lacks("fault on the fatal path"),
            ],
        },
        Scenario {
            // A trap handler Oxen cannot return to (EIP in the hypervisor
            // hole): the domain crashes, Oxen does not fault on its iret.
            name: "dom0-bad-trap-handler",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0 test=bad-handler"),
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("test-dom0: int3 with a handler in the hypervisor hole"),
                Check::Has("d0: unhandled trap 3 (#BP breakpoint)"),
                Check::Has("trap handler or kernel stack is not one Oxen can return to"),
                Check::Has("Domain 0 (Domain-0) shutdown: reason crash (3)"),
                Check::Lacks("test-dom0: int3 returned"),
                Check::Lacks("FATAL TRAP"),
            ],
        },
        Scenario {
            // writable_pagetables must refuse a store that breaks the rules.
            name: "dom0-ptwr-refused",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M mm_audit {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0 test=ptwr-refused"),
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("test-dom0: storing a writable mapping of L1"),
                Check::Has("not emulated: entry refused (-EINVAL)"),
                Check::Has("d0: unhandled trap 14 (#PF page fault) error code 0x0003"),
                Check::Has("Domain 0 (Domain-0) shutdown: reason crash (3)"),
                Check::Lacks("test-dom0: the store was accepted"),
                Check::Lacks("FATAL TRAP"),
            ],
        },
        Scenario {
            // Typing on the serial console: VIRQ_CONSOLE wakes dom0, which
            // reads the line with console_io.
            name: "dom0-console-input",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0 test=console-input"),
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: Some(("test-dom0: waiting for console input", "hello oxen\n")),
            checks: vec![
                Check::Has("test-dom0: console read 'hello oxen' after "),
                Check::Has("Hardware Dom0 halted"),
                Check::Lacks("after 0 VIRQ_CONSOLE"),
                Check::Has(" VIRQ_CONSOLE event(s), 0 VIRQ_DEBUG event(s)"),
            ],
        },
        Scenario {
            // Ctrl-A three times gives the serial input to Oxen: 'h' lists
            // the debug keys, 'q' dumps the domain and sends VIRQ_DEBUG;
            // three more Ctrl-A give the input back to dom0.
            name: "debug-keys",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M {TEST_OPTS}"),
            modules: dom0_modules("console=hvc0 test=console-input"),
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: Some((
                "test-dom0: waiting for console input",
                "\x01\x01\x01hq\x01\x01\x01hello oxen\n",
            )),
            checks: vec![
                Check::Has(
                    "*** Serial input to Oxen (type 'CTRL-a' three times to switch input to DOM0)",
                ),
                Check::Has("'h' pressed -> showing installed handlers"),
                Check::Has(" key 'q' (ascii '71') => dump domain (and guest debug) info"),
                Check::Has("General information for domain 0 (Domain-0): tot_pages=8192"),
                Check::Has("Notifying guest 0:0 (virq 1, port "),
                Check::Has("*** Serial input to DOM0"),
                Check::Has("test-dom0: console read 'hello oxen' after "),
                Check::Has(" VIRQ_CONSOLE event(s), 1 VIRQ_DEBUG event(s)"),
                Check::Has("Hardware Dom0 halted"),
            ],
        },
        Scenario {
            // Oxen's dom0 with its initrd: the shell on the hypervisor
            // console, typed in one burst; `halt` powers the machine off.
            name: "dom0-shell",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=64M {TEST_OPTS}"),
            modules: vec![
                ("oxen-dom0.elf", "console=hvc0"),
                (crate::dom0::INITRD_NAME, ""),
            ],
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: Some((
                "oxen-dom0:/# ",
                "ls /etc/xen\ncat /etc/xen/brun.cfg\nxm create -n brun.cfg\nxm list\n\
                 cd /etc/xen\npwd\ncat /nope\nfrob\nuname -a\nhalt\n",
            )),
            checks: vec![
                // dom0 shares the workspace version with xtask.
                Check::Has(concat!(
                    "oxen-dom0 ",
                    env!("CARGO_PKG_VERSION"),
                    ": Oxen's control domain, on Xen "
                )),
                Check::Has(" entries, mounted read-only on /"),
                Check::Has(
                    "oxen-dom0:/# ls /etc/xen\nREADME  brun.cfg  small.cfg  xend-config.sxp\n",
                ),
                Check::Has("\nname   = 'brun'\n"),
                Check::Has("Using config file \"/etc/xen/brun.cfg\".\n(vm\n"),
                Check::Has("    (name brun)\n    (memory 64)\n"),
                Check::Has("(kernel /boot/vmlinuz-2.6.18-4-xen-686)"),
                Check::Custom("xm list answers or reports a refusal", check_xm_list),
                Check::Has("oxen-dom0:/etc/xen# pwd\n/etc/xen\n"),
                Check::Has("cat: /nope: No such file or directory\n"),
                Check::Has("oxen-dom0: frob: command not found\n"),
                Check::Has(concat!(
                    "Oxen-dom0 oxen-dom0 ",
                    env!("CARGO_PKG_VERSION"),
                    " Xen "
                )),
                Check::Has("oxen-dom0: powering off\n"),
                Check::Has("Domain 0 (Domain-0) shutdown: reason poweroff (0)"),
                Check::Has("Hardware Dom0 halted"),
                Check::Lacks("guest panic"),
                Check::Lacks("Panic"),
            ],
        },
        Scenario {
            // xm create builds and starts the tutorial's domU; xm shutdown
            // asks it through xenstore; dom0 applies on_poweroff = destroy.
            name: "xm-create-domu",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=64M {TEST_OPTS}"),
            modules: vec![
                ("oxen-dom0.elf", "console=hvc0"),
                (crate::dom0::INITRD_NAME, ""),
            ],
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: Some(("oxen-dom0:/# ", "xm create brun.cfg\n")),
            checks: vec![
                Check::Has("dom0: domain exceptions on VIRQ_DOM_EXC (port "),
                Check::Has(
                    "Using config file \"/etc/xen/brun.cfg\".\nStarted domain brun (id=1)\n",
                ),
                Check::Has("domU brun: up"),
                // No complaint from xm shutdown: the prompt follows at once.
                Check::Has("xm shutdown brun\noxen-dom0:/# "),
                Check::Has(
                    "dom0: domain brun (id=1) shut down (poweroff); on_poweroff = destroy: destroyed\n",
                ),
                Check::Custom("brun is listed, then gone", check_brun_listed_then_gone),
                Check::Has("oxen-dom0: powering off\n"),
                Check::Has("Hardware Dom0 halted"),
                Check::Lacks("xm create:"),
                Check::Lacks("xenstored: domain"),
                Check::Lacks("guest panic"),
                Check::Lacks("Panic"),
            ],
        },
        toolstack_scenario(
            // The domU life cycle as a user drives it on the serial console.
            "xm-lifecycle",
            "xm create brun.cfg\n",
            vec![
                Check::Has("Using config file \"/etc/xen/brun.cfg\".\nStarted domain brun (id="),
                Check::Custom("xm console shows the buffered banner", check_console_banner),
                // Echoed by the domU; Ctrl-] gives the prompt back.
                Check::Has("hello oxen\n"),
                Check::Has("xs-read name: 'brun'"),
                // Another domain's node: refused by xenstored's permissions.
                Check::Has("xs-read /local/domain/0/name: xenstore error EACCES"),
                Check::Has("\noxen-dom0:/# xm pause brun\n"),
                Check::Custom("paused brun shows 'p', unpaused not", check_pause_state),
                Check::Custom(
                    "brun's CPU time shows its work and stops while paused",
                    check_cpu_time,
                ),
                Check::Has("domU brun: reboot"),
                Check::Has("domU crashy: crashing (asked on its console)"),
                Check::Custom("reboot and crash restart brun with new ids", check_restarts),
                Check::Custom("brun is gone after xm destroy", check_gone_after_destroy),
                Check::Custom("xm dmesg shows Oxen's log", check_dmesg),
                Check::Has("Hardware Dom0 halted"),
                Check::Lacks("not restarted again"),
                Check::Lacks("restarting brun failed"),
                Check::Custom("no xm command failed", check_no_xm_error),
            ],
        ),
        toolstack_scenario(
            // Eight domains from one config, named on the command line; all
            // the memory comes back.
            "xm-eight-domus",
            "xm info\n",
            vec![
                Check::Has("Using config file \"/etc/xen/small.cfg\".\nStarted domain s1 (id="),
                Check::Custom(
                    "eight domains listed, then none",
                    check_eight_listed_then_none,
                ),
                Check::Custom("every small domain came up", check_eight_up),
                Check::Custom(
                    "free_memory returns to its first figure",
                    check_free_memory_returns,
                ),
                Check::Custom("no xm command failed", check_no_xm_error),
            ],
        ),
        toolstack_scenario(
            // How many 64 MiB domains fit: creating until Oxen says -ENOMEM.
            "xm-fill-memory",
            "xm info\n",
            vec![Check::Custom(
                "64 MiB domains fill free memory, then -ENOMEM",
                check_filled_then_enomem,
            )],
        ),
        Scenario {
            name: "bad-dom0-kernel",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=32M {TEST_OPTS}"),
            modules: vec![("not-a-kernel.bin", "console=hvc0")],
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("Could not set up DOM0 guest OS: kernel refused: "),
                Check::Lacks("Starting dom0"),
            ],
        },
        Scenario {
            name: "no-dom0-module",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=min:64M,max:512M {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: None,
            checks: vec![
                Check::Has("Modules: 0"),
                Check::Has("dom0_mem: min:64M,max:512M resolved to "),
                Check::Has("No dom0 kernel was given (no multiboot module): nothing to run."),
                Check::Has("Oxen halted."),
            ],
        },
        Scenario {
            name: "dom0-mem-all-but",
            path: BootPath::Kernel,
            cmdline: format!("dom0_mem=-128M {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 384,
            exit: EXIT_HALTED,
            input: None,
            checks: vec![Check::Custom(
                "dom0 gets free memory less 128 MiB",
                check_dom0_all_but_128m,
            )],
        },
        Scenario {
            name: "unknown-option-warns",
            path: BootPath::Kernel,
            cmdline: format!("frobnicate=1 loglvl=bogus dom0_mem=12Q {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: None,
            checks: vec![
                Check::Has("warning: unknown option 'frobnicate=1'"),
                Check::Has("warning: malformed value 'bogus' for option 'loglvl'"),
                Check::Has("warning: malformed value '12Q' for option 'dom0_mem'"),
                Check::Has("Memory map total: "),
                Check::Has("Oxen halted."),
            ],
        },
        Scenario {
            name: "selftest-page-fault",
            path: BootPath::Kernel,
            cmdline: format!("selftest_fault=pf {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("FATAL TRAP: vector = 14 (#PF page fault), error code = 0x0000"),
                Check::Has(
                    "Page fault at CR2=0xa5a5a000: not-present page on read in supervisor mode",
                ),
                Check::Has("cr2: a5a5a000"),
                Check::Has("EIP:    e008:[<"),
                Check::Has("Current domain: idle"),
                Check::Has("Manual reset required ('noreboot' specified)"),
                Check::Lacks("Oxen halted."),
            ],
        },
        Scenario {
            name: "selftest-divide-error",
            path: BootPath::Kernel,
            cmdline: format!("selftest_fault=de loglvl=info {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_FATAL,
            input: None,
            checks: vec![
                Check::Has("FATAL TRAP: vector = 0 (#DE divide error)"),
                Check::Has("eax: 00000001"),
                Check::Has("Current domain: idle"),
                Check::Lacks("Oxen halted."),
            ],
        },
        Scenario {
            // No `noreboot` and no debug_exit: the fatal path must reset the
            // machine, which QEMU (-no-reboot) turns into a plain exit 0.
            name: "fatal-error-reboots",
            path: BootPath::Kernel,
            cmdline: "selftest_fault=de".to_string(),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_RESET,
            input: None,
            checks: vec![
                Check::Has("FATAL TRAP: vector = 0 (#DE divide error)"),
                Check::Has("Reboot in five seconds..."),
                Check::Lacks("Manual reset required"),
            ],
        },
        Scenario {
            name: "vga-console-and-loglvl-none",
            path: BootPath::Kernel,
            cmdline: format!("console=com1,vga loglvl=none {TEST_OPTS}"),
            modules: vec![],
            mem_mib: 256,
            exit: EXIT_HALTED,
            input: None,
            checks: vec![
                Check::Has("Memory map total: "),
                Check::Lacks("GDT: FLAT_RING1_CS"),
                Check::Has("Oxen halted."),
            ],
        },
    ]
}

fn boot_for(s: &Scenario, kernel: &Path, fixtures: &Path) -> Result<Boot, String> {
    let modules: Vec<String> = s
        .modules
        .iter()
        .map(|(f, a)| module_arg(fixtures, f, a))
        .collect();
    Ok(match s.path {
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

fn judge(s: &Scenario, run: &Run) -> Vec<String> {
    let mut failures = Vec::new();
    match run.exit_code {
        Some(c) if c == s.exit => {}
        Some(c) => failures.push(format!("QEMU exit code {c}, expected {}", s.exit)),
        None => failures.push(format!(
            "timed out after {:.1} s",
            run.elapsed.as_secs_f64()
        )),
    }
    for c in &s.checks {
        match c {
            Check::Has(t) if !run.transcript.contains(t) => {
                failures.push(format!("missing: {t:?}"))
            }
            Check::Lacks(t) if run.transcript.contains(t) => {
                failures.push(format!("unexpected: {t:?}"))
            }
            Check::Custom(what, f) => {
                if let Err(e) = f(&run.transcript) {
                    failures.push(format!("{what}: {e}"));
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
    // The default members, then dom0's and the domU's libraries
    // (host-tested, but not default members: their binaries are PV kernels).
    let runs: [&[&str]; 3] = [
        &["test", "--quiet"],
        &["test", "--quiet", "--package", "oxen-dom0", "--lib"],
        &["test", "--quiet", "--package", "domu", "--lib"],
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
        crate::deps::ensure_packages()?;
        crate::deps::report_qemu();
        let kernel = crate::build_kernel(true)?;
        let dir = fixtures()?;
        let logs = crate::target_dir().join("test-logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        for s in scenarios() {
            if filter
                .as_ref()
                .is_some_and(|f| !s.name.contains(f.as_str()))
            {
                continue;
            }
            let boot = boot_for(&s, &kernel, &dir)?;
            let run = qemu::run_captured_paced(
                &boot,
                s.mem_mib,
                timeout_of(&s),
                None,
                &[],
                &input_steps(&s),
            )?;
            let log = logs.join(format!("{}.log", s.name));
            let _ = std::fs::write(&log, &run.transcript);
            let failures = judge(&s, &run);
            if failures.is_empty() {
                passed += 1;
                println!(
                    "scenario {}: ok ({:.1} s)",
                    s.name,
                    run.elapsed.as_secs_f64()
                );
            } else {
                failed += 1;
                println!(
                    "scenario {}: FAILED ({:.1} s), transcript in {}",
                    s.name,
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

/// Boot-time figures: wall time from QEMU start to the end of the boot report
/// ("Modules:" line), for the GRUB and the `-kernel` paths, as JSON.
pub fn bench_cmd(_args: &[String]) -> Result<(), String> {
    crate::deps::ensure_packages()?;
    let kernel = crate::build_kernel(true)?;
    let dir = fixtures()?;
    let mut results = Vec::new();
    for s in scenarios()
        .into_iter()
        .filter(|s| s.name == "grub-iso-boot-report" || s.name == "kernel-boot-report")
    {
        let boot = boot_for(&s, &kernel, &dir)?;
        let mut samples = Vec::new();
        for _ in 0..3 {
            let run =
                qemu::run_captured(&boot, s.mem_mib, Duration::from_secs(60), Some("Modules: "))?;
            let at = run
                .mark_at
                .ok_or_else(|| format!("{}: no boot report", s.name))?;
            samples.push(at.as_secs_f64() * 1000.0);
        }
        samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        results.push(format!(
            "{{\"name\":\"boot_to_report_{}\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{}}}",
            if s.path == BootPath::Iso { "grub_iso" } else { "qemu_kernel" },
            samples[1],
            samples[0],
            samples[2],
            samples.len()
        ));
    }
    results.push(boot_to_dom0_result_bench(&kernel, &dir)?);
    results.push(domain_create_bench(&kernel, &dir)?);
    results.extend(guest_benches(&kernel, &dir)?);
    println!("[{}]", results.join(",\n "));
    Ok(())
}

/// Xen 4.17's `boot_to_dom0_result_grub_iso` on this machine, under the same
/// QEMU, GRUB and guest: a fixed reference printed beside Oxen's figure.
const XEN_4_17_BOOT_TO_DOM0_RESULT_MS: u32 = 1240;

/// Boot as a user waits for it: wall time from QEMU start to a PV dom0's first
/// result, through SeaBIOS, GRUB (from the ISO), Oxen's bring-up and the dom0
/// build. The dom0 is test-dom0 in `test=hello` mode (one line, then power
/// off), alone on the module list; 256 MiB of RAM, `dom0_mem=64M`; seven boots.
fn boot_to_dom0_result_bench(kernel: &Path, dir: &Path) -> Result<String, String> {
    const HELLO: &str = "test-dom0: hello";
    let module = module_arg(dir, "test-dom0.elf", "console=hvc0 test=hello");
    let iso = crate::target_dir().join("bench-boot-to-dom0-result.iso");
    let boot = Boot::Iso(crate::image::make_iso(
        kernel,
        &format!("dom0_mem=64M {TEST_OPTS}"),
        &[module],
        &iso,
    )?);
    let mut samples = Vec::new();
    for _ in 0..7 {
        let run = qemu::run_captured(&boot, 256, Duration::from_secs(60), Some(HELLO))?;
        let at = run.mark_at.ok_or_else(|| {
            format!(
                "boot-to-dom0-result bench: no {HELLO:?} line:\n{}",
                run.transcript
            )
        })?;
        samples.push(at.as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(format!(
        "{{\"name\":\"boot_to_dom0_result_grub_iso\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{},\"reference_ms\":{XEN_4_17_BOOT_TO_DOM0_RESULT_MS},\"reference\":\"Xen 4.17, measured under the same QEMU, GRUB and guest\"}}",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    ))
}

/// Domain creation as a user sees it: wall time from typing `xm create
/// brun.cfg` at dom0's prompt to the domU's `domU brun: up` (build, start,
/// and the domU's boot through its xenstore reads), five boots.
fn domain_create_bench(kernel: &Path, dir: &Path) -> Result<String, String> {
    let s = scenarios()
        .into_iter()
        .find(|s| s.name == "xm-lifecycle")
        .ok_or("no xm-lifecycle scenario")?;
    let boot = boot_for(&s, kernel, dir)?;
    let steps = [
        (PROMPT, Duration::ZERO, "xm create brun.cfg\n"),
        ("domU brun: up", Duration::ZERO, "halt\n"),
    ];
    let mut samples = Vec::new();
    for _ in 0..5 {
        let run =
            qemu::run_captured_paced(&boot, s.mem_mib, Duration::from_secs(60), None, &[], &steps)?;
        let [typed, up] = run.step_at.as_slice() else {
            return Err(format!(
                "xm create bench: the domU did not come up:\n{}",
                run.transcript
            ));
        };
        samples.push((*up - *typed).as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(format!(
        "{{\"name\":\"xm_create_to_domu_up\",\"unit\":\"ms\",\"median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"samples\":{}}}",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        samples.len()
    ))
}

/// test-dom0's micro-benchmarks (`bench` on its command line), run twice: under
/// `-icount` (the guest's TSC counts instructions: stable figures) and under
/// plain TCG (TSC cycles converted to ns with the TSC rate Oxen measured).
fn guest_benches(kernel: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let boot = Boot::Kernel {
        kernel: kernel.to_path_buf(),
        cmdline: format!("dom0_mem=64M {TEST_OPTS}"),
        modules: vec![module_arg(dir, "test-dom0.elf", "console=hvc0 bench")],
    };
    let parse = |t: &str| -> Vec<(String, u64, u64)> {
        t.lines()
            .filter_map(|l| l.strip_prefix("bench "))
            .filter_map(|l| {
                let name = l.split_whitespace().next()?.to_string();
                Some((
                    name,
                    number_after(l, "ops=")?,
                    number_after(l, "tsc_per_op=")?,
                ))
            })
            .collect()
    };
    let icount = qemu::run_captured_with(
        &boot,
        256,
        Duration::from_secs(300),
        None,
        &["-icount", "shift=0,sleep=off"],
    )?;
    let tcg = qemu::run_captured(&boot, 256, Duration::from_secs(300), None)?;
    let mhz = number_after(&tcg.transcript, "TSC: ").ok_or("no TSC line in the bench run")?;
    let (a, b) = (parse(&icount.transcript), parse(&tcg.transcript));
    if a.is_empty() || a.len() != b.len() {
        return Err(format!(
            "bench runs printed {} and {} results",
            a.len(),
            b.len()
        ));
    }
    Ok(a.iter()
        .zip(&b)
        .map(|((name, ops, icount_tsc), (_, _, tcg_tsc))| {
            format!(
                "{{\"name\":\"{name}\",\"ops\":{ops},\"icount_tsc_per_op\":{icount_tsc},\"tcg_ns_per_op\":{}}}",
                tcg_tsc * 1000 / mhz.max(1)
            )
        })
        .collect())
}
