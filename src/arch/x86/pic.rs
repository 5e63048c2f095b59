//! The legacy 8259A pair: remapped to vectors 0x20..0x30, everything masked but
//! what Oxen asks for.

use super::cpu::{inb, outb};
use super::idt::IRQ_BASE;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;
const EOI: u8 = 0x20;

/// Remaps both PICs and masks every line.
pub fn init() {
    outb(MASTER_CMD, 0x11); // ICW1: edge, cascade, ICW4 follows
    outb(SLAVE_CMD, 0x11);
    outb(MASTER_DATA, IRQ_BASE); // ICW2: vector bases
    outb(SLAVE_DATA, IRQ_BASE + 8);
    outb(MASTER_DATA, 1 << 2); // ICW3: slave on IRQ2
    outb(SLAVE_DATA, 2);
    outb(MASTER_DATA, 0x01); // ICW4: 8086 mode
    outb(SLAVE_DATA, 0x01);
    outb(MASTER_DATA, 0xFF);
    outb(SLAVE_DATA, 0xFF);
}

/// Unmasks IRQ line `irq` (0..16).
pub fn unmask(irq: u8) {
    if irq < 8 {
        outb(MASTER_DATA, inb(MASTER_DATA) & !(1 << irq));
    } else {
        outb(SLAVE_DATA, inb(SLAVE_DATA) & !(1 << (irq - 8)));
        outb(MASTER_DATA, inb(MASTER_DATA) & !(1 << 2));
    }
}

/// Acknowledges IRQ line `irq`.
pub fn eoi(irq: u8) {
    if irq >= 8 {
        outb(SLAVE_CMD, EOI);
    }
    outb(MASTER_CMD, EOI);
}
