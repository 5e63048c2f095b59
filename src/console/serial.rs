//! COM1 through the `uart_16550` driver, programmed from `com1=`.

use hv_core::cmdline::{Baud, ComConfig, Parity};
use uart_16550::backend::PioBackend;
use uart_16550::spec::registers::{Parity as UartParity, WordLength};
use uart_16550::{BaudRate, Config, Uart16550};

/// The base port of the UART Oxen drives (0: none), which no domain may reach.
static BASE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The base port of Oxen's serial console, if it has one.
pub fn base_port() -> Option<u16> {
    match BASE.load(core::sync::atomic::Ordering::Relaxed) {
        0 => None,
        b => Some(b as u16),
    }
}

/// Oxen no longer drives a serial console.
pub fn forget() {
    BASE.store(0, core::sync::atomic::Ordering::Relaxed);
}

/// The rate used for `auto` when the UART was never programmed.
const DEFAULT_BAUD: u32 = 115_200;

/// A 16550 on port I/O.
pub struct Serial {
    uart: Uart16550<PioBackend>,
}

impl Serial {
    /// Programs the UART; `None` if no UART answers at the configured port.
    pub fn new(cfg: &ComConfig) -> Option<Self> {
        // SAFETY: the port range comes from `com1=` (default 0x3F8) and Oxen is
        // the only user of the serial line; the driver checks that the range fits.
        let mut uart = unsafe { Uart16550::new_port(cfg.io_base) }.ok()?;
        BASE.store(
            u32::from(cfg.io_base),
            core::sync::atomic::Ordering::Relaxed,
        );
        let baud = match cfg.baud {
            Baud::Rate(rate) => rate,
            // `auto`: keep what the firmware or loader programmed.
            Baud::Auto => match uart.dll_dlm() {
                (0, 0) => DEFAULT_BAUD,
                (dll, dlm) => {
                    ComConfig::BASE_BAUD / u32::from(u16::from(dll) | (u16::from(dlm) << 8))
                }
            },
        };
        let config = Config {
            baud_rate: BaudRate::from_integer(baud),
            data_bits: WordLength::from_integer(cfg.data_bits),
            extra_stop_bits: cfg.stop_bits == 2,
            parity: match cfg.parity {
                Parity::None => UartParity::Disabled,
                Parity::Odd => UartParity::Odd,
                Parity::Even => UartParity::Even,
                Parity::Mark => UartParity::Forced1,
                Parity::Space => UartParity::Forced0,
            },
            ..Config::DEFAULT
        };
        uart.init(config).ok()?;
        Some(Self { uart })
    }

    /// Sends bytes, turning `\n` into `\r\n` for terminals.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.uart.send_bytes_exact(b"\r");
            }
            self.uart.send_bytes_exact(&[b]);
        }
    }

    /// Interrupts on received data.
    pub fn enable_rx_interrupt(&mut self) {
        self.uart
            .enable_interrupts(uart_16550::spec::registers::IER::DATA_READY);
    }

    /// A received byte, if any.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        self.uart.try_receive_byte().ok()
    }
}
