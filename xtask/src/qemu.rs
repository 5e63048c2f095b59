//! QEMU command lines and captured runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How Oxen is booted.
pub enum Boot {
    /// GRUB from an ISO (multiboot2).
    Iso(PathBuf),
    /// QEMU's own multiboot1 loader: `-kernel` with modules as `-initrd`.
    Kernel {
        kernel: PathBuf,
        cmdline: String,
        modules: Vec<String>,
    },
}

/// The I/O port of QEMU's isa-debug-exit device (`debug_exit=0xf4`).
pub const DEBUG_EXIT_PORT: &str = "0xf4";

/// The QEMU binary: `qemu-system-i386` from PATH, or `$OXEN_QEMU` (e.g. a
/// second QEMU release to check the scenarios against).
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("OXEN_QEMU").unwrap_or_else(|| "qemu-system-i386".into())
}

/// A QEMU command booting `boot` with `mem_mib` of RAM (TCG, no display).
pub fn command(boot: &Boot, mem_mib: u32) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(["-machine", "pc", "-cpu", "qemu32,+pae", "-m"])
        .arg(mem_mib.to_string());
    cmd.args(["-no-reboot", "-device"]).arg(format!(
        "isa-debug-exit,iobase={DEBUG_EXIT_PORT},iosize=0x04"
    ));
    match boot {
        Boot::Iso(iso) => {
            cmd.arg("-cdrom").arg(iso).args(["-boot", "d"]);
        }
        Boot::Kernel {
            kernel,
            cmdline,
            modules,
        } => {
            cmd.arg("-kernel").arg(kernel).arg("-append").arg(cmdline);
            if !modules.is_empty() {
                // QEMU separates modules with commas; a module's string is "PATH ARGS".
                cmd.arg("-initrd").arg(modules.join(","));
            }
        }
    }
    cmd
}

/// The outcome of a captured run.
pub struct Run {
    pub transcript: String,
    /// QEMU's exit code, `None` if it was killed at the timeout.
    pub exit_code: Option<i32>,
    pub elapsed: Duration,
    /// Time from start until the transcript first contained `mark`, if asked.
    pub mark_at: Option<Duration>,
    /// For each input step reached: when its text was seen (its bytes were
    /// typed then, or after the step's delay).
    pub step_at: Vec<Duration>,
}

/// Runs QEMU with the serial line captured, killing it after `timeout`.
pub fn run_captured(
    boot: &Boot,
    mem_mib: u32,
    timeout: Duration,
    mark: Option<&str>,
) -> Result<Run, String> {
    run_captured_with(boot, mem_mib, timeout, mark, &[])
}

/// `run_captured` with extra QEMU arguments (e.g. `-icount`).
pub fn run_captured_with(
    boot: &Boot,
    mem_mib: u32,
    timeout: Duration,
    mark: Option<&str>,
    extra: &[&str],
) -> Result<Run, String> {
    run_captured_full(boot, mem_mib, timeout, mark, extra, None)
}

/// `input` is (text to wait for, bytes to type on the serial console once it
/// appears).
pub fn run_captured_full(
    boot: &Boot,
    mem_mib: u32,
    timeout: Duration,
    mark: Option<&str>,
    extra: &[&str],
    input: Option<(&str, &str)>,
) -> Result<Run, String> {
    let steps: Vec<(&str, &str)> = input.into_iter().collect();
    run_captured_steps(boot, mem_mib, timeout, mark, extra, &steps)
}

/// The general form: `steps` are (text to wait for, bytes to type), taken in
/// order; each step's text is looked for after where the previous step's
/// text was found, so a step waits for output that follows what came before.
pub fn run_captured_steps(
    boot: &Boot,
    mem_mib: u32,
    timeout: Duration,
    mark: Option<&str>,
    extra: &[&str],
    steps: &[(&str, &str)],
) -> Result<Run, String> {
    let paced: Vec<(&str, Duration, &str)> = steps
        .iter()
        .map(|&(wait_for, text)| (wait_for, Duration::ZERO, text))
        .collect();
    run_captured_paced(boot, mem_mib, timeout, mark, extra, &paced)
}

/// `run_captured_steps` where each step is (text to wait for, how long to
/// wait after it appeared, bytes to type then): a user who waits, say, for a
/// restarted domain to have run long enough.
pub fn run_captured_paced(
    boot: &Boot,
    mem_mib: u32,
    timeout: Duration,
    mark: Option<&str>,
    extra: &[&str],
    steps: &[(&str, Duration, &str)],
) -> Result<Run, String> {
    let mut cmd = command(boot, mem_mib);
    cmd.args(extra);
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
        .stdin(if !steps.is_empty() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().expect("piped");
    let sink = Arc::clone(&buf);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdin = child.stdin.take();
    let mut mark_at = None;
    let mut next_step = 0;
    let mut searched_from = 0;
    let mut step_at = Vec::new();
    let exit_code = loop {
        if let Some(&(wait_for, delay, text)) = steps.get(next_step) {
            if step_at.len() == next_step {
                let seen = String::from_utf8_lossy(&buf.lock().unwrap()).replace('\r', "");
                if let Some(at) = seen
                    .get(searched_from..)
                    .and_then(|rest| rest.find(wait_for))
                {
                    searched_from += at + wait_for.len();
                    step_at.push(start.elapsed());
                }
            }
            if step_at.len() > next_step && start.elapsed() >= step_at[next_step] + delay {
                if let Some(s) = stdin.as_mut() {
                    use std::io::Write;
                    let _ = s.write_all(text.as_bytes());
                    let _ = s.flush();
                }
                next_step += 1;
            }
        }
        if let (Some(m), None) = (mark, mark_at)
            && String::from_utf8_lossy(&buf.lock().unwrap()).contains(m)
        {
            mark_at = Some(start.elapsed());
        }
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status.code(),
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let elapsed = start.elapsed();
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let mut transcript = String::from_utf8_lossy(&buf.lock().unwrap()).replace('\r', "");
    if let (Some(m), None) = (mark, mark_at)
        && transcript.contains(m)
    {
        mark_at = Some(elapsed);
    }
    if !stderr.trim().is_empty() {
        transcript.push_str("\n[qemu stderr]\n");
        transcript.push_str(&stderr);
    }
    Ok(Run {
        transcript,
        exit_code,
        elapsed,
        mark_at,
        step_at,
    })
}
