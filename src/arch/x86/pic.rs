//! The legacy 8259A pair: remapped to vectors 0x20..0x30, everything masked but
//! what Oxen asks for (its own lines, [`unmask`]) and the lines guests have
//! bound as pirqs ([`unmask_guest`], [`mask`]; the rules are
//! `hv_core::pirq`).
//!
//! Invariant: the interrupt mask registers are only read-modified-written
//! with interrupts off, so the interrupt handler's [`mask`] and a
//! hypercall's [`unmask_guest`] cannot lose each other's update. The cascade
//! line 2 is unmasked whenever a slave line is.

use core::sync::atomic::{AtomicU16, Ordering};

use super::cpu::{disable_interrupts, inb, outb, restore_interrupts};
use super::idt::IRQ_BASE;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;
const EOI: u8 = 0x20;
/// The edge/level control registers (PIIX/ICH), bit N = line N level-triggered.
const ELCR: [u16; 2] = [0x4D0, 0x4D1];

/// The lines Oxen unmasked for itself (bit N = line N).
static OXEN_LINES: AtomicU16 = AtomicU16::new(0);

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

fn set_masked(irq: u8, masked: bool) {
    let was = disable_interrupts();
    let (port, bit) = if irq < 8 {
        (MASTER_DATA, 1 << irq)
    } else {
        (SLAVE_DATA, 1 << (irq - 8))
    };
    let v = inb(port);
    outb(port, if masked { v | bit } else { v & !bit });
    if irq >= 8 && !masked {
        outb(MASTER_DATA, inb(MASTER_DATA) & !(1 << 2));
    }
    restore_interrupts(was);
}

/// Unmasks IRQ line `irq` (0..16) for Oxen itself (its timer, its console);
/// guests may never bind it (`oxen_lines`).
pub fn unmask(irq: u8) {
    if irq < 16 {
        OXEN_LINES.fetch_or(1 << irq, Ordering::SeqCst);
        set_masked(irq, false);
    }
}

/// The lines Oxen unmasked for itself.
pub fn oxen_lines() -> u16 {
    OXEN_LINES.load(Ordering::SeqCst)
}

/// Unmasks a guest's pirq line `irq` (never one of Oxen's: the caller checked).
pub fn unmask_guest(irq: u8) {
    if irq < 16 && oxen_lines() & (1 << irq) == 0 {
        set_masked(irq, false);
    }
}

/// Masks line `irq` (a guest's line that fired or lost its last binder).
pub fn mask(irq: u8) {
    if irq < 16 && oxen_lines() & (1 << irq) == 0 {
        set_masked(irq, true);
    }
}

/// The ELCR: bit N set if line N is level-triggered (as the firmware set it
/// for PCI INTx lines).
pub fn level_lines() -> u16 {
    u16::from(inb(ELCR[0])) | u16::from(inb(ELCR[1])) << 8
}

/// Acknowledges IRQ line `irq`.
pub fn eoi(irq: u8) {
    if irq >= 8 {
        outb(SLAVE_CMD, EOI);
    }
    outb(MASTER_CMD, EOI);
}
