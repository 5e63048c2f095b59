//! The x86 (32-bit, PAE) binding: everything that touches the CPU directly.
//!
//! This is where Oxen's `unsafe` lives: port I/O, control registers, descriptor
//! tables, page tables and the trap entry. Each block says why it is sound.

pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod guest;
pub mod idt;
pub mod paging;
pub mod pic;
pub mod pit;
pub mod traps;
pub mod uaccess;

/// The operand of `lgdt`/`lidt`: a table's limit and linear base.
#[repr(C, packed)]
pub struct DescriptorTablePointer {
    pub limit: u16,
    pub base: u32,
}
