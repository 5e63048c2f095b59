//! QEMU command lines and captured runs.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
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

/// The CPU every run gets unless a scenario names its own (`cpu`, passed as
/// a second `-cpu`, which QEMU takes over the first).
pub const CPU: &str = "qemu32,+pae";

/// QEMU arguments giving dom0 a virtio NIC on the lab's user-mode network
/// (DESIGN.md §8): 10.0.0.0/24 with the host answering as 10.0.0.254, and
/// `restrict=on`, so nothing leaves this machine.
pub fn net_args() -> Vec<String> {
    vec![
        "-netdev".into(),
        "user,id=net0,restrict=on,net=10.0.0.0/24,host=10.0.0.254".into(),
        "-device".into(),
        "virtio-net-pci,netdev=net0".into(),
    ]
}

/// The QEMU binary: `qemu-system-i386` from PATH, or `$OXEN_QEMU` (e.g. a
/// second QEMU release to check the scenarios against).
pub fn binary() -> std::ffi::OsString {
    std::env::var_os("OXEN_QEMU").unwrap_or_else(|| "qemu-system-i386".into())
}

/// A QEMU command booting `boot` with `mem_mib` of RAM (TCG, no display).
pub fn command(boot: &Boot, mem_mib: u32) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(["-machine", "pc", "-cpu", CPU, "-m"])
        .arg(mem_mib.to_string());
    // No NIC unless asked for (`net_args`): QEMU's default one would have
    // an unrestricted user-mode network.
    cmd.args(["-nic", "none"]);
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
    run_captured_paced(boot, mem_mib, timeout, mark, extra, &[])
}

/// The serial output so far, shared by the thread reading QEMU's stdout
/// (which signals the condition variable on every chunk and at the end) and
/// the thread driving the run.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    /// QEMU closed its stdout (it exited).
    closed: bool,
}

/// The general form: `steps` are (text to wait for, how long to wait after
/// it appeared, bytes to type then), taken in order; each step's text is
/// looked for after where the previous step's text was found, so a step
/// waits for output that follows what came before. Waiting is event-driven:
/// the run wakes when QEMU prints (or exits), when a step's `after` delay is
/// over, or at the timeout; no fixed sleep stands in for output (only QEMU's
/// exit status, once its output has ended, is polled). `mark_at` is when the
/// transcript first contained `mark`.
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
    let deadline = start + timeout;
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let shared = Arc::new((Mutex::new(Output::default()), Condvar::new()));
    let mut stdout = child.stdout.take().expect("piped");
    let sink = Arc::clone(&shared);
    let reader = std::thread::spawn(move || {
        let (output, changed) = &*sink;
        let mut chunk = [0u8; 4096];
        loop {
            let n = stdout.read(&mut chunk).unwrap_or(0);
            let mut out = output.lock().unwrap();
            if n == 0 {
                out.closed = true;
                changed.notify_all();
                break;
            }
            out.bytes.extend_from_slice(&chunk[..n]);
            changed.notify_all();
        }
    });
    let mut stderr = child.stderr.take().expect("piped");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdin = child.stdin.take();
    let (output, changed) = &*shared;
    let mut mark_at = None;
    let mut cursor = StepCursor::new(steps);
    let mut timed_out = false;
    loop {
        let (text, seen_len, closed) = {
            let out = output.lock().unwrap();
            let text = String::from_utf8_lossy(&out.bytes).replace('\r', "");
            (text, out.bytes.len(), out.closed)
        };
        let now = start.elapsed();
        for typed in cursor.advance(&text, now) {
            if let Some(s) = stdin.as_mut() {
                use std::io::Write;
                let _ = s.write_all(typed.as_bytes());
                let _ = s.flush();
            }
        }
        if let (Some(m), None) = (mark, mark_at)
            && text.contains(m)
        {
            mark_at = Some(now);
        }
        if closed {
            break;
        }
        // Sleep until QEMU prints more, the next step's delay is over, or
        // the timeout.
        let wake = cursor
            .due_at()
            .map_or(deadline, |d| deadline.min(start + d));
        let mut out = output.lock().unwrap();
        while out.bytes.len() == seen_len && !out.closed && Instant::now() < wake {
            let left = wake.saturating_duration_since(Instant::now());
            out = changed.wait_timeout(out, left).unwrap().0;
        }
        if Instant::now() >= deadline && !out.closed {
            timed_out = true;
            break;
        }
    }
    let exit_code = if timed_out {
        let _ = child.kill();
        let _ = child.wait();
        None
    } else {
        // QEMU closed its stdout: it is exiting. Reap it (polling its exit
        // status, which has no event to wait on), still within the timeout.
        loop {
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(status) => break status.code(),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    };
    let elapsed = start.elapsed();
    let _ = reader.join();
    let stderr = err_reader.join().unwrap_or_default();
    let mut transcript = String::from_utf8_lossy(&output.lock().unwrap().bytes).replace('\r', "");
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
        step_at: cursor.seen_at,
    })
}

/// Where a run is in its steps: (text to wait for, delay after it appeared,
/// bytes to type then). Each step's text is looked for after where the
/// previous step's text was found.
struct StepCursor<'s> {
    steps: &'s [(&'s str, Duration, &'s str)],
    /// The next step to type.
    next: usize,
    /// Where in the transcript the next step's text is looked for.
    searched_from: usize,
    /// When each step's text was seen (one more than `next` while a seen
    /// step waits out its delay).
    seen_at: Vec<Duration>,
}

impl<'s> StepCursor<'s> {
    fn new(steps: &'s [(&'s str, Duration, &'s str)]) -> Self {
        StepCursor {
            steps,
            next: 0,
            searched_from: 0,
            seen_at: Vec::new(),
        }
    }

    /// Given the transcript so far (`\r` removed) at `now` (since the
    /// start), takes every step whose text has appeared and whose delay is
    /// over, and returns what to type, in order.
    fn advance(&mut self, text: &str, now: Duration) -> Vec<&'s str> {
        let mut typed = Vec::new();
        while let Some(&(wait_for, delay, bytes)) = self.steps.get(self.next) {
            if self.seen_at.len() == self.next {
                let Some(at) = text
                    .get(self.searched_from..)
                    .and_then(|rest| rest.find(wait_for))
                else {
                    break;
                };
                self.searched_from += at + wait_for.len();
                self.seen_at.push(now);
            }
            if now < self.seen_at[self.next] + delay {
                break;
            }
            typed.push(bytes);
            self.next += 1;
        }
        typed
    }

    /// When (since the start) the next step is due, if its text was seen and
    /// it waits out its delay.
    fn due_at(&self) -> Option<Duration> {
        let (_, delay, _) = self.steps.get(self.next)?;
        Some(*self.seen_at.get(self.next)? + *delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn steps_wait_for_their_text_in_order() {
        let steps = [
            ("# ", Duration::ZERO, "ls\n"),
            ("done", Duration::ZERO, ""),
            ("# ", Duration::ZERO, "halt\n"),
        ];
        let mut c = StepCursor::new(&steps);
        assert!(c.advance("booting", S).is_empty());
        assert_eq!(c.due_at(), None);
        // The prompt: the first step types; the second waits for "done".
        assert_eq!(c.advance("booting\n# ", 2 * S), ["ls\n"]);
        // "done" takes the second step (which types nothing); the first
        // prompt does not satisfy the third: its text must follow "done".
        assert_eq!(c.advance("booting\n# ls\ndone", 3 * S), [""]);
        assert!(c.advance("booting\n# ls\ndone", 3 * S).is_empty());
        assert_eq!(c.advance("booting\n# ls\ndone\n# ", 4 * S), ["halt\n"]);
        assert_eq!(c.seen_at, [2 * S, 3 * S, 4 * S]);
        assert!(c.advance("booting\n# ls\ndone\n# more", 5 * S).is_empty());
    }

    #[test]
    fn a_step_waits_out_its_delay_after_its_text() {
        let steps = [
            ("# ", 2 * S, "xm list\n"),
            ("Name", Duration::ZERO, "halt\n"),
        ];
        let mut c = StepCursor::new(&steps);
        assert!(c.advance("# ", S).is_empty());
        assert_eq!(c.due_at(), Some(3 * S));
        assert!(c.advance("# ", 2 * S).is_empty());
        // Once due, it types, and a later step already shown goes too.
        assert_eq!(c.advance("# Name", 3 * S), ["xm list\n", "halt\n"]);
        assert_eq!(c.due_at(), None);
        assert_eq!(c.seen_at, [S, 3 * S]);
    }
}
