//! Console output through `console_io(CONSOLEIO_write)` (XEN-PV-ABI.md §14.2):
//! the initial domain's console is the hypervisor's.

use core::fmt;

use xen_abi::console::CONSOLEIO_WRITE;
use xen_abi::hypercall::CONSOLE_IO;

/// Writes bytes to the hypervisor console.
pub fn write_bytes(bytes: &[u8]) {
    for chunk in bytes.chunks(512) {
        // SAFETY: the buffer is valid for `chunk.len()` bytes and only read.
        unsafe {
            super::hypercall::raw(
                CONSOLE_IO,
                [
                    CONSOLEIO_WRITE,
                    chunk.len() as u32,
                    chunk.as_ptr() as u32,
                    0,
                    0,
                ],
            )
        };
    }
}

/// A `fmt::Write` sink that batches into a small buffer before each hypercall.
pub struct Console {
    buf: [u8; 256],
    len: usize,
}

impl Console {
    pub const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }

    pub fn flush(&mut self) {
        write_bytes(&self.buf[..self.len]);
        self.len = 0;
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// Formats to the console (used by `print!`/`println!`).
pub fn print(args: fmt::Arguments<'_>) {
    let mut c = Console::new();
    let _ = fmt::write(&mut c, args);
    c.flush();
}

/// Prints to the hypervisor console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the hypervisor console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
