//! `console_io` (XEN-PV-ABI.md §14.2): the privileged domain's console is
//! Oxen's serial line. Writes are printed as they come (another domain's
//! lines prefixed `(dN) `, as a debug build of Xen does); reads take the
//! bytes COM1 received (VIRQ_CONSOLE tells dom0 when there are some),
//! without blocking, and only dom0 may read.

use hv_core::hypercall::Outcome;
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use xen_abi::errno::Errno;

use super::Ctx;
use crate::arch::x86::uaccess::{copy_from_guest, copy_to_guest};

/// Bytes copied from the guest per step.
const CHUNK: usize = 256;

pub fn do_console_io(ctx: &mut Ctx, args: [u32; 5]) -> Outcome {
    let [cmd, count, buf, ..] = args;
    let Ok(count) = usize::try_from(count as i32) else {
        return Err(Errno::EINVAL).into();
    };
    let (domid, privileged) = (ctx.dom().domid, ctx.dom().privileged);
    match cmd {
        CONSOLEIO_WRITE => write(domid, count, buf),
        // The serial input is dom0's (as in Xen).
        CONSOLEIO_READ if !privileged => Err(Errno::EPERM),
        CONSOLEIO_READ => read(count, buf),
        _ => Err(Errno::ENOSYS),
    }
    .into()
}

fn write(domid: u16, count: usize, buf: u32) -> Result<i32, Errno> {
    let mut chunk = [0u8; CHUNK];
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        copy_from_guest(&mut chunk[..n], buf.wrapping_add(done as u32))?;
        crate::console::guest_write(domid, &chunk[..n]);
        done += n;
    }
    Ok(0)
}

fn read(count: usize, buf: u32) -> Result<i32, Errno> {
    let mut chunk = [0u8; CHUNK];
    let n = crate::console::read_input(&mut chunk[..count.min(CHUNK)]);
    copy_to_guest(buf, &chunk[..n])?;
    Ok(n as i32)
}
