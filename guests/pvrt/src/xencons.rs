//! The domU console ring client (XEN-PV-ABI.md §14.1): the page at
//! `start_info.console.domU.mfn` (`struct xencons_interface`, layout from
//! `xen_abi::console`) and its event channel `console.domU.evtchn`.
//!
//! Output goes to `out` (2048 bytes, index masked with 2047): bytes, write
//! barrier, `out_prod` bumped, `EVTCHNOP_send`. When `out` is full the writer
//! sleeps (`SCHEDOP_block`, through [`crate::xenbus::wait_until`]) until the
//! console daemon consumes some. Input is read from `in` (1024 bytes, masked
//! with 1023) and `in_cons` bumped, with a notification so the daemon can send
//! more. Ring indices that break the ring invariant (another domain wrote
//! them) make output be dropped and input read as empty, never a hang.
//!
//! Precondition: events are set up (`pvrt::events::init`), since writes that
//! find the ring full block.

use core::fmt;
use core::mem::offset_of;

use xen_abi::console::{XENCONS_IN_SIZE, XENCONS_OUT_SIZE, XenconsInterface};
use xen_abi::errno::Errno;

use crate::StartInfo;
use crate::xenbus::{ByteRing, map_frame, shared_bytes, shared_u32, unmask, wait_until};

/// The console ring page and its event channel.
pub struct XenCons {
    /// Guest → daemon (`out`, `out_prod` ours, `out_cons` the daemon's).
    out: ByteRing<'static>,
    /// Daemon → guest (`in`, `in_cons` ours, `in_prod` the daemon's).
    in_: ByteRing<'static>,
    port: u32,
}

impl XenCons {
    /// The console of the `xencons_interface` page mapped at `va`, whose
    /// daemon is notified on `port`.
    ///
    /// # Safety
    /// `va` must be the page-aligned address of the console page, mapped
    /// read-write for the rest of the guest's life and used by nothing else.
    pub unsafe fn new(va: u32, port: u32) -> XenCons {
        type I = XenconsInterface;
        let at = |off: usize| va + off as u32;
        // SAFETY: the caller maps the whole page at `va`; the offsets are the
        // ABI's (xen_abi), inside the page and 4-aligned for the indices.
        let (out, in_) = unsafe {
            (
                ByteRing::new(
                    shared_bytes(at(offset_of!(I, out)), XENCONS_OUT_SIZE),
                    shared_u32(at(offset_of!(I, out_prod))),
                    shared_u32(at(offset_of!(I, out_cons))),
                ),
                ByteRing::new(
                    shared_bytes(at(offset_of!(I, in_)), XENCONS_IN_SIZE),
                    shared_u32(at(offset_of!(I, in_prod))),
                    shared_u32(at(offset_of!(I, in_cons))),
                ),
            )
        };
        XenCons {
            out: out.expect("XENCONS_OUT_SIZE is a power of two"),
            in_: in_.expect("XENCONS_IN_SIZE is a power of two"),
            port,
        }
    }

    /// Maps the console page (`start_info.console.domU.mfn`, a machine
    /// frame) at `va` with `update_va_mapping`, unmasks its port and returns
    /// the console. `va` must be a page whose L1 exists and that nothing else
    /// uses (e.g. in the bootstrap padding, §4.3).
    pub fn map(si: &StartInfo, va: u32) -> Result<XenCons, Errno> {
        if si.console_mfn == 0 {
            return Err(Errno::ENODEV);
        }
        map_frame(va, si.console_mfn)?;
        unmask(si.console_evtchn)?;
        // SAFETY: the console page was just mapped read-write at `va`, which
        // the caller gives to the console for the guest's life.
        Ok(unsafe { XenCons::new(va, si.console_evtchn) })
    }

    /// The console's event channel.
    pub fn port(&self) -> u32 {
        self.port
    }

    fn notify(&self) {
        // Nothing to do if the port is closed: output just stays queued.
        let _ = crate::events::send(self.port);
    }

    /// Queues as much of `bytes` as fits without waiting; returns how many.
    pub fn try_write(&mut self, bytes: &[u8]) -> usize {
        let n = self.out.produce(bytes).unwrap_or(0);
        if n > 0 {
            self.notify();
        }
        n
    }

    /// Queues all of `bytes`, sleeping while `out` is full. Stops early (and
    /// returns the count queued) only if the ring's indices are corrupt.
    pub fn write(&mut self, mut bytes: &[u8]) -> usize {
        let total = bytes.len();
        while !bytes.is_empty() {
            let n = self.try_write(bytes);
            bytes = &bytes[n..];
            if bytes.is_empty() {
                break;
            }
            let out = self.out;
            let ok = wait_until(|| match out.space() {
                Ok(0) => None,
                Ok(_) => Some(true),
                Err(_) => Some(false),
            });
            if !ok {
                break;
            }
        }
        total - bytes.len()
    }

    /// Whether input is waiting in `in`.
    pub fn has_input(&self) -> bool {
        self.in_.used().is_ok_and(|n| n > 0)
    }

    /// Takes up to `buf.len()` bytes of input without waiting.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = self.in_.consume(buf).unwrap_or(0);
        if n > 0 {
            // The daemon may be waiting for room for more input.
            self.notify();
        }
        n
    }

    /// Takes at least one byte of input, sleeping until there is some.
    pub fn read_blocking(&mut self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        loop {
            let input = self.in_;
            wait_until(|| input.used().is_ok_and(|n| n > 0).then_some(()));
            let n = self.read(buf);
            if n > 0 {
                return n;
            }
        }
    }
}

impl fmt::Write for XenCons {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.write(s.as_bytes()) == s.len() {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}
