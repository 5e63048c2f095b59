//! `console_io` (XEN-PV-ABI.md §14.2): the privileged domain's console is
//! Oxen's serial line. dom0's writes are printed as they come; another
//! domain's go through its line buffer and come out as whole lines prefixed
//! `(dN) `, as a debug build of Xen prints them (`hv_core::conline`). A long
//! write is served `WRITE_PER_CALL` bytes at a time (a continuation, as
//! Xen preempts), so a guest cannot hold the CPU with one call. Reads take
//! the bytes COM1 received (VIRQ_CONSOLE tells dom0 when there are some),
//! without blocking, and only dom0 may read.

use hv_core::hypercall::Outcome;
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use xen_abi::errno::Errno;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_from_guest, copy_to_guest};
use crate::domain::Domain;

/// Bytes copied from the guest per step.
const CHUNK: usize = 256;
/// Bytes printed per call before the rest is continued (more than the
/// 512 that Oxen's guests write at once, so they never see it).
const WRITE_PER_CALL: usize = 4 * CHUNK;

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

/// Prints up to `WRITE_PER_CALL` of the `count` bytes at `buf`; the rest is
/// a continuation.
fn write(dom: &mut Domain, count: usize, buf: u32) -> Outcome {
    let now = count.min(WRITE_PER_CALL);
    let mut chunk = [0u8; CHUNK];
    let mut done = 0;
    while done < now {
        let n = CHUNK.min(now - done);
        if let Err(e) = copy_from_guest(&mut chunk[..n], buf.wrapping_add(done as u32)) {
            return Err(e).into();
        }
        crate::console::guest_write(dom.domid, &mut dom.console_line, &chunk[..n]);
        done += n;
    }
    if now < count {
        return Outcome::Continue([
            CONSOLEIO_WRITE,
            (count - now) as u32,
            buf.wrapping_add(now as u32),
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
