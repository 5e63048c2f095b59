//! The VGA text screen (80x25 at machine address 0xB8000, in the direct map).

use crate::mm::layout::DIRECT_MAP_VIRT;

const COLS: usize = 80;
const ROWS: usize = 25;
const ATTR: u16 = 0x07 << 8; // light grey on black

/// A scrolling writer on the text screen.
pub struct VgaText {
    row: usize,
    col: usize,
}

impl VgaText {
    /// Clears the screen.
    pub fn new() -> Self {
        let mut v = Self { row: 0, col: 0 };
        for i in 0..COLS * ROWS {
            v.put(i, b' ');
        }
        v
    }

    fn cell(i: usize) -> *mut u16 {
        (DIRECT_MAP_VIRT as usize + 0xB8000 + i * 2) as *mut u16
    }

    fn put(&mut self, i: usize, b: u8) {
        // SAFETY: i < COLS*ROWS, so the cell lies in the 4000-byte text buffer,
        // which the direct map covers; volatile because it is device memory.
        unsafe { Self::cell(i).write_volatile(ATTR | u16::from(b)) };
    }

    fn scroll(&mut self) {
        for i in 0..COLS * (ROWS - 1) {
            // SAFETY: both cells are inside the text buffer (see `put`).
            let v = unsafe { Self::cell(i + COLS).read_volatile() };
            // SAFETY: as above.
            unsafe { Self::cell(i).write_volatile(v) };
        }
        for i in COLS * (ROWS - 1)..COLS * ROWS {
            self.put(i, b' ');
        }
        self.row = ROWS - 1;
    }

    /// Writes bytes; those outside printable ASCII show as '?'.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    self.col = 0;
                    self.row += 1;
                }
                b'\r' => self.col = 0,
                _ => {
                    let b = if (0x20..0x7F).contains(&b) { b } else { b'?' };
                    self.put(self.row * COLS + self.col, b);
                    self.col += 1;
                    if self.col == COLS {
                        self.col = 0;
                        self.row += 1;
                    }
                }
            }
            if self.row == ROWS {
                self.scroll();
            }
        }
    }
}
