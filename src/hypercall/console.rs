//! `console_io` (XEN-PV-ABI.md §14.2): the privileged domain's console is
//! Oxen's serial line. dom0's writes are printed as they come; another
//! domain's go through its line buffer and come out as whole lines prefixed
//! `(dN) `, as a debug build of Xen prints them (`hv_core::conline`), each
//! line a guest message under `guest_loglvl=` and the domain's rate limit
//! (`hv_core::ratelimit`: by default 10 lines, then one per 5 s, the rest
//! counted as suppressed). A release Xen refuses domUs' writes (-EPERM);
//! Oxen prints them rate-limited, so a domU's boot messages still show. A
//! long write is served until `OUTPUT_PER_CALL` bytes went out or
//! `INPUT_PER_CALL` bytes were read (a continuation, as Xen preempts), so a
//! guest cannot hold the CPU long with one call, even with every line
//! suppressed. Reads take the bytes COM1 received (VIRQ_CONSOLE tells dom0
//! when there are some), without blocking, and only dom0 may read.

use hv_core::hypercall::Outcome;
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use xen_abi::errno::Errno;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_from_guest, copy_to_guest};
use crate::domain::Domain;

/// Bytes copied from the guest per read step.
const CHUNK: usize = 256;
/// Bytes of a write handed to the console at once (with interrupts off):
/// small, since one guest byte may cost a whole prefixed line on the wire.
const WRITE_STEP: usize = 32;
/// Bytes that may go out on the console per call before the rest of the
/// write is continued: what a call costs is counted in output (a domU's
/// newline is a whole `(dN) ` line), so a write of newlines yields as soon
/// as a write of text does. More than one call's worth of Oxen's guests'
/// 512-byte writes of text, so they never see it.
const OUTPUT_PER_CALL: usize = 1024;
/// Bytes that may be read from the guest per call: what bounds a write
/// whose lines are suppressed (or not printable), which costs no output.
const INPUT_PER_CALL: usize = 16 * 1024;

pub fn do_console_io(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, count, buf, ..] = args;
    let Ok(count) = usize::try_from(count as i32) else {
        return Err(Errno::EINVAL).into();
    };
    let privileged = ctx.dom().privileged;
    match cmd {
        CONSOLEIO_WRITE => return write(ctx.dom(), count, buf),
        // The serial input is dom0's (as in Xen).
        CONSOLEIO_READ if !privileged => Err(Errno::EPERM),
        CONSOLEIO_READ => read(count, buf),
        _ => Err(Errno::ENOSYS),
    }
    .into()
}

/// Prints the `count` bytes at `buf` until `OUTPUT_PER_CALL` bytes went
/// out or `INPUT_PER_CALL` were read; the rest is a continuation (which rewrites only the three
/// arguments).
fn write(dom: &mut Domain, count: usize, buf: u32) -> Outcome {
    let mut step = [0u8; WRITE_STEP];
    let (mut done, mut printed) = (0, 0);
    while done < count && printed < OUTPUT_PER_CALL && done < INPUT_PER_CALL {
        let n = WRITE_STEP.min(count - done);
        if let Err(e) = copy_from_guest(&mut step[..n], buf.wrapping_add(done as u32)) {
            return Err(e).into();
        }
        printed += crate::console::guest_write(
            dom.domid,
            &mut dom.console_line,
            &mut dom.log_limit,
            &step[..n],
        );
        done += n;
    }
    if done < count {
        return Outcome::Continue([
            CONSOLEIO_WRITE,
            (count - done) as u32,
            buf.wrapping_add(done as u32),
            0,
            0,
        ]);
    }
    Ok(0).into()
}

fn read(count: usize, buf: u32) -> Result<i32, Errno> {
    let mut chunk = [0u8; CHUNK];
    let n = crate::console::read_input(&mut chunk[..count.min(CHUNK)]);
    copy_to_guest(buf, &chunk[..n])?;
    Ok(n as i32)
}
