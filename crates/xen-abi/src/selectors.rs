//! The flat selectors in Xen's reserved part of every GDT (XEN-PV-ABI.md §3.3).

/// The first GDT page (of 16) that belongs to the hypervisor.
pub const FIRST_RESERVED_GDT_PAGE: usize = 14;
/// Byte offset of the hypervisor's part of the GDT.
pub const FIRST_RESERVED_GDT_BYTE: usize = FIRST_RESERVED_GDT_PAGE * 4096;
/// Descriptor index of the hypervisor's part of the GDT.
pub const FIRST_RESERVED_GDT_ENTRY: usize = FIRST_RESERVED_GDT_BYTE / 8;

/// Ring-0 (hypervisor) flat code selector; never usable by guests.
pub const FLAT_RING0_CS: u16 = 0xE008;
/// Ring-0 (hypervisor) flat data selector.
pub const FLAT_RING0_DS: u16 = 0xE010;
/// Guest kernel (ring 1) flat code selector.
pub const FLAT_RING1_CS: u16 = 0xE019;
/// Guest kernel (ring 1) flat data/stack selector.
pub const FLAT_RING1_DS: u16 = 0xE021;
/// Guest kernel (ring 1) stack selector.
pub const FLAT_RING1_SS: u16 = 0xE021;
/// Guest user (ring 3) flat code selector.
pub const FLAT_RING3_CS: u16 = 0xE02B;
/// Guest user (ring 3) flat data selector.
pub const FLAT_RING3_DS: u16 = 0xE033;
/// Guest user (ring 3) stack selector.
pub const FLAT_RING3_SS: u16 = 0xE033;
/// `FLAT_KERNEL_*` aliases as the headers spell them for 32-bit guests.
pub const FLAT_KERNEL_CS: u16 = FLAT_RING1_CS;
pub const FLAT_KERNEL_DS: u16 = FLAT_RING1_DS;
pub const FLAT_KERNEL_SS: u16 = FLAT_RING1_SS;
pub const FLAT_USER_CS: u16 = FLAT_RING3_CS;
pub const FLAT_USER_DS: u16 = FLAT_RING3_DS;
pub const FLAT_USER_SS: u16 = FLAT_RING3_SS;

/// GDT index of a selector (the low three bits are RPL and TI).
pub const fn selector_index(sel: u16) -> usize {
    (sel >> 3) as usize
}

const _: () = assert!(FIRST_RESERVED_GDT_ENTRY == 7168);
const _: () = assert!(selector_index(FLAT_RING0_CS) == 7169);
const _: () = assert!(selector_index(FLAT_RING1_CS) == 7171);
const _: () = assert!(selector_index(FLAT_RING3_DS) == 7174);
