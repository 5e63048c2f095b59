//! `cargo xtask fuzz`: long runs of the hypercall fuzzer (guests/fuzz).
//!
//! Boots Oxen built with overflow checks with `mm_audit` (the frame table
//! recounted after every MMU hypercall, or every Nth with `--audit-every`)
//! under QEMU's `-kernel` loader and runs the fuzzer for a seed
//! and a number of calls: as a domU (Oxen's dom0 with its initrd, then `xm
//! create fuzz.cfg 'extra=seed=S calls=N progress=K'` typed at its prompt,
//! `halt` once the domain is gone) or as dom0 itself (`fuzz=dom0` on its
//! module line). The progress lines are shown as they come; the whole
//! transcript goes to `target/fuzz-logs/<mode>-<seed>.log`. At the end it
//! prints the calls, the time, calls/s, the audit line and `fuzz: PASS` or
//! `fuzz: FAIL (why)` with the command that replays the failure from the
//! last progress line with every call printed ([`verdict`] judges).

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::qemu::{self, Boot};

/// The fuzzer's modes, as its command line and `--mode` name them.
const MODES: [&str; 2] = ["domu", "dom0"];

struct Opts {
    calls: u64,
    seed: u64,
    mode: &'static str,
    progress: u64,
    trace_from: Option<u64>,
    /// Calls drawn but not made (`--skip A-B`), to narrow a failure down.
    skip: Option<String>,
    /// Checksum the fuzzer's image after every call (`--verify`).
    verify: bool,
    /// Boot without `mm_audit` (`--no-audit`: faster; then only crashes,
    /// hangs and Oxen's own checks count).
    no_audit: bool,
    /// Recount after every Nth MMU hypercall (`--audit-every N`, Oxen's
    /// `mm_audit_every`; 1: after each).
    audit_every: u64,
    /// The machine's memory in MiB (the audit recounts every frame: less is faster).
    mem_mib: u32,
    /// Seconds without any output before the run counts as hung.
    stall_s: u64,
}

fn parse(args: &[String], clock_seed: u64) -> Result<Opts, String> {
    let mut o = Opts {
        calls: 100_000,
        seed: clock_seed,
        mode: "domu",
        progress: 0,
        trace_from: None,
        skip: None,
        verify: false,
        mem_mib: 0,
        no_audit: false,
        audit_every: 1,
        stall_s: 300,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            fuzz::parse_number(v).ok_or_else(|| format!("{name}: '{v}' is not a number"))
        };
        match a.as_str() {
            "--calls" => o.calls = number("--calls")?,
            "--seed" => o.seed = number("--seed")?,
            "--progress" => o.progress = number("--progress")?,
            "--trace-from" => o.trace_from = Some(number("--trace-from")?),
            "--stall-s" => o.stall_s = number("--stall-s")?,
            "--verify" => o.verify = true,
            "--no-audit" => o.no_audit = true,
            "--audit-every" => o.audit_every = number("--audit-every")?.max(1),
            "--mem" => o.mem_mib = number("--mem")? as u32,
            "--skip" => o.skip = Some(it.next().ok_or("--skip needs A-B")?.clone()),
            "--mode" => {
                let v = it.next().ok_or("--mode needs a value")?;
                o.mode = MODES
                    .into_iter()
                    .find(|m| m == v)
                    .ok_or_else(|| format!("--mode: '{v}' is not domu or dom0"))?;
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if o.mem_mib == 0 {
        o.mem_mib = if o.mode == "dom0" { 64 } else { 128 };
    }
    if o.progress == 0 {
        o.progress = (o.calls / 100).clamp(1000, 100_000);
    }
    Ok(o)
}

/// The fuzzer's own command line for these options.
fn guest_args(o: &Opts) -> String {
    let mut s = format!("seed={} calls={} progress={}", o.seed, o.calls, o.progress);
    if let Some(t) = o.trace_from {
        s.push_str(&format!(" trace={t}"));
    }
    if o.verify {
        s.push_str(" verify=1");
    }
    if let Some(k) = &o.skip {
        s.push_str(&format!(" skip={k}"));
    }
    s
}

/// How a run ended, judged from its transcript and QEMU's exit code.
#[derive(Debug, PartialEq)]
pub struct Verdict {
    /// The calls the fuzzer reported done, if it got to the end.
    pub done: Option<u64>,
    /// The last progress line's call index.
    pub last_progress: Option<u64>,
    /// Oxen's `mm audit:` line.
    pub audit: Option<String>,
    /// What went wrong (empty: a pass).
    pub failures: Vec<String>,
}

/// The number at the start of `s`.
fn leading_number(s: &str) -> Option<u64> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Judges a run: QEMU exited 1 (Oxen halted), the fuzzer printed `fuzz:
/// done` with as many calls as asked, Oxen's audit line says all
/// recounts were consistent, and nothing crashed (no panic or fatal trap in
/// Oxen, no guest panic, no domain crash).
pub fn verdict(transcript: &str, exit: Option<i32>, calls: u64, audit_on: bool) -> Verdict {
    let mut failures = Vec::new();
    let done = transcript
        .rfind("fuzz: done: ")
        .and_then(|i| leading_number(&transcript[i + 12..]));
    let last_progress = transcript
        .rfind("fuzz: call ")
        .and_then(|i| leading_number(&transcript[i + 11..]));
    let audit = transcript
        .rfind("mm audit: ")
        .map(|i| transcript[i..].lines().next().unwrap_or("").to_string());
    match exit {
        Some(1) => {}
        Some(3) => failures.push("Oxen stopped on a fatal error".into()),
        Some(c) => failures.push(format!("QEMU exited with {c} (a reset?)")),
        None => failures.push("hung: no output for the stall limit, QEMU killed".into()),
    }
    match done {
        Some(n) if n == calls => {}
        Some(n) => failures.push(format!("the fuzzer did {n} calls, not {calls}")),
        None => failures.push("the fuzzer did not finish".into()),
    }
    match &audit {
        _ if !audit_on => {}
        Some(a) if a.ends_with("all consistent") => {}
        Some(a) => failures.push(format!("audit: {a}")),
        None => failures.push("no mm audit line (Oxen did not halt cleanly)".into()),
    }
    for (bad, what) in [
        ("Panic", "Oxen panicked"),
        ("FATAL", "Oxen hit a fatal trap"),
        ("mm audit failed", "the frame-table audit failed"),
        ("guest panic", "the fuzzer panicked"),
        ("shut down (crash)", "a domain crashed"),
        ("Hardware Dom0 crashed", "dom0 crashed"),
    ] {
        if transcript.contains(bad) {
            failures.push(what.to_string());
        }
    }
    Verdict {
        done,
        last_progress,
        audit,
        failures,
    }
}

/// The xm command line that creates the fuzzing domU.
fn xm_create(o: &Opts) -> String {
    format!("xm create fuzz.cfg 'extra={}'\n", guest_args(o))
}

pub fn fuzz_cmd(args: &[String]) -> Result<(), String> {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(1);
    let o = parse(args, clock)?;
    println!(
        "xtask fuzz: mode {} seed {} calls {} (progress every {})",
        o.mode, o.seed, o.calls, o.progress
    );
    crate::deps::ensure_packages()?;
    // Overflow checks on: arithmetic on guest values that wraps stops the machine.
    let kernel = crate::build_kernel_profile(crate::OVERFLOW_CHECKS_PROFILE)?;
    // dom0 mode: half the machine; domU mode: dom0 keeps 48 MiB, the
    // fuzzer's domain takes 32 (fuzz.cfg).
    let dom0_mem = if o.mode == "dom0" { o.mem_mib / 2 } else { 48 };
    let audit = match (o.no_audit, o.audit_every) {
        (true, _) => String::new(),
        (false, 1) => " mm_audit".to_string(),
        (false, n) => format!(" mm_audit mm_audit_every={n}"),
    };
    // The domU fuzzer reports through console_io: its lines (guest messages
    // at warning level) are printed whole, not rate-limited, so no progress
    // line or verdict is lost; Oxen's debug-level guest messages stay off.
    let guest_loglvl = if o.mode == "dom0" {
        ""
    } else {
        " guest_loglvl=warning"
    };
    let cmdline = format!("dom0_mem={dom0_mem}M{audit}{guest_loglvl} noreboot debug_exit=0xf4");
    let modules = if o.mode == "dom0" {
        let fuzz = crate::build_guest("fuzz")?;
        vec![format!("{} fuzz=dom0 {}", fuzz.display(), guest_args(&o))]
    } else {
        let (dom0, initrd) = crate::dom0::build_all()?;
        vec![
            format!("{} console=hvc0", dom0.display()),
            initrd.display().to_string(),
        ]
    };
    let boot = Boot::Kernel {
        kernel,
        cmdline,
        modules,
    };
    let mut cmd = qemu::command(&boot, o.mem_mib);
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut transcript = String::new();
    let mut shown = 0;
    // domU mode: (text to wait for, what to type); dom0 mode: nothing to type.
    let steps: Vec<(&str, String)> = if o.mode == "domu" {
        vec![
            ("oxen-dom0:/# ", xm_create(&o)),
            // fuzz.cfg destroys the domain on poweroff and on crash alike.
            ("= destroy: destroyed", "halt\n".to_string()),
        ]
    } else {
        Vec::new()
    };
    let mut step = 0;
    let mut searched = 0;
    let mut fuzz_started: Option<Instant> = None;
    let mut fuzz_ended: Option<Instant> = None;
    let mut hung = false;
    loop {
        match rx.recv_timeout(Duration::from_secs(o.stall_s)) {
            Ok(chunk) => transcript.push_str(&String::from_utf8_lossy(&chunk)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hung = true;
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if fuzz_started.is_none() && transcript.contains("fuzz: mode ") {
            fuzz_started = Some(Instant::now());
        }
        if fuzz_ended.is_none() && transcript.contains("fuzz: done: ") {
            fuzz_ended = Some(Instant::now());
        }
        // Show the fuzzer's lines and Oxen's complaints as they come.
        while let Some(nl) = transcript[shown..].find('\n') {
            let line = &transcript[shown..shown + nl];
            if ["fuzz", "Panic", "FATAL", "audit", "crash", "Dom0"]
                .iter()
                .any(|k| line.contains(k))
            {
                println!("{}", line.trim_end());
            }
            shown += nl + 1;
        }
        if let Some((wait, text)) = steps.get(step)
            && let Some(at) = transcript[searched..].find(wait)
        {
            searched += at + wait.len();
            stdin
                .write_all(text.as_bytes())
                .and_then(|_| stdin.flush())
                .map_err(|e| format!("typing into QEMU: {e}"))?;
            step += 1;
        }
    }
    let exit = if hung {
        let _ = child.wait();
        None
    } else {
        child
            .wait()
            .map_err(|e| format!("waiting for QEMU: {e}"))?
            .code()
    };
    let logs = crate::target_dir().join("fuzz-logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let log = logs.join(format!("{}-{}.log", o.mode, o.seed));
    let _ = std::fs::write(&log, &transcript);
    let v = verdict(&transcript, exit, o.calls, !o.no_audit);
    let secs = match (fuzz_started, fuzz_ended) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        (Some(a), None) => a.elapsed().as_secs_f64(),
        _ => started.elapsed().as_secs_f64(),
    };
    let calls = v.done.or(v.last_progress).unwrap_or(0);
    println!(
        "xtask fuzz: mode {} seed {}: {calls} calls in {secs:.1} s ({:.0} calls/s); {}",
        o.mode,
        o.seed,
        calls as f64 / secs.max(0.001),
        v.audit.as_deref().unwrap_or("no audit line")
    );
    println!("xtask fuzz: transcript in {}", log.display());
    if v.failures.is_empty() {
        println!("fuzz: PASS");
        Ok(())
    } else {
        println!("fuzz: FAIL ({})", v.failures.join("; "));
        let from = v.last_progress.unwrap_or(0);
        println!(
            "xtask fuzz: replay with every call printed: cargo xtask fuzz --mode {} --seed {} --calls {} --progress {} --trace-from {from}",
            o.mode,
            o.seed,
            from + o.progress,
            o.progress
        );
        Err("the fuzz run failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "fuzz: mode domu seed 5 calls 2000\nfuzz: call 1000 (300 succeeded)\n\
        fuzz: done: 2000 calls, 611 succeeded, seed 5 mode domu\n\
        mm audit: 4242 recounts of the frame table, all consistent\nHardware Dom0 halted\n";

    #[test]
    fn a_clean_run_passes() {
        let v = verdict(GOOD, Some(1), 2000, true);
        assert_eq!(v.failures, Vec::<String>::new());
        assert_eq!(v.done, Some(2000));
        assert_eq!(v.last_progress, Some(1000));
        assert_eq!(
            v.audit.as_deref(),
            Some("mm audit: 4242 recounts of the frame table, all consistent")
        );
    }

    #[test]
    fn crashes_hangs_and_short_runs_fail() {
        let v = verdict(GOOD, None, 2000, true);
        assert!(v.failures[0].starts_with("hung"), "{:?}", v.failures);
        let v = verdict(GOOD, Some(1), 3000, true);
        assert_eq!(v.failures, ["the fuzzer did 2000 calls, not 3000"]);
        let panic = format!("{GOOD}Panic: mm audit failed after a hypercall of d1\n");
        let v = verdict(&panic, Some(3), 2000, true);
        assert!(
            v.failures
                .contains(&"Oxen stopped on a fatal error".to_string())
        );
        assert!(v.failures.contains(&"Oxen panicked".to_string()));
        assert!(
            v.failures
                .contains(&"the frame-table audit failed".to_string())
        );
        let crashed = "fuzz: call 1000 (1 succeeded)\ndom0: domain fuzz (id=1) shut down (crash)\n";
        let v = verdict(crashed, Some(1), 2000, true);
        assert!(v.failures.contains(&"a domain crashed".to_string()));
        assert!(
            v.failures
                .contains(&"the fuzzer did not finish".to_string())
        );
        assert_eq!(v.last_progress, Some(1000));
    }

    #[test]
    fn options_and_the_guest_command_line() {
        let args: Vec<String> = ["--calls", "5000", "--seed", "0x10", "--mode", "dom0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse(&args, 99).unwrap();
        assert_eq!(
            (o.calls, o.seed, o.mode, o.progress),
            (5000, 16, "dom0", 1000)
        );
        assert_eq!(guest_args(&o), "seed=16 calls=5000 progress=1000");
        let o = parse(&[], 99).unwrap();
        assert_eq!((o.seed, o.mode), (99, "domu"));
        assert_eq!(
            xm_create(&o),
            "xm create fuzz.cfg 'extra=seed=99 calls=100000 progress=1000'\n"
        );
        assert!(parse(&["--mode".into(), "hvm".into()], 1).is_err());
        assert!(parse(&["--calls".into()], 1).is_err());
        assert!(parse(&["--bogus".into()], 1).is_err());
    }
}
