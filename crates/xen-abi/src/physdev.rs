//! `physdev_op` sub-commands and the structs the digest lays out
//! (XEN-PV-ABI.md §15.6).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::types::GuestHandle;

/// Legacy: unmask notification for IRQs.
pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;
/// [`PhysdevIrqStatusQuery`].
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u32 = 5;
/// [`PhysdevSetIopl`].
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
/// [`PhysdevSetIobitmap`].
pub const PHYSDEVOP_SET_IOBITMAP: u32 = 7;
/// Read an IO-APIC register.
pub const PHYSDEVOP_APIC_READ: u32 = 8;
/// Write an IO-APIC register.
pub const PHYSDEVOP_APIC_WRITE: u32 = 9;
/// Allocate an IRQ vector.
pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u32 = 10;
/// Free an IRQ vector.
pub const PHYSDEVOP_FREE_IRQ_VECTOR: u32 = 11;
/// [`PhysdevEoi`].
pub const PHYSDEVOP_EOI: u32 = 12;
/// Map a PIRQ.
pub const PHYSDEVOP_MAP_PIRQ: u32 = 13;
/// Unmap a PIRQ.
pub const PHYSDEVOP_UNMAP_PIRQ: u32 = 14;
/// Report a PCI device.
pub const PHYSDEVOP_MANAGE_PCI_ADD: u32 = 15;
/// Remove a PCI device.
pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u32 = 16;
/// Register the PIRQ EOI bitmap frame.
pub const PHYSDEVOP_PIRQ_EOI_GMFN: u32 = 17;
/// Restore MSI state.
pub const PHYSDEVOP_RESTORE_MSI: u32 = 19;
/// Report a PCI device (extended).
pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u32 = 20;
/// Set up a GSI.
pub const PHYSDEVOP_SETUP_GSI: u32 = 21;
/// Get a free PIRQ.
pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;

/// `irq_status_query.flags`: the IRQ needs `PHYSDEVOP_eoi`.
pub const XENIRQSTAT_NEEDS_EOI: u32 = 1 << 0;
/// `irq_status_query.flags`: the IRQ is shared.
pub const XENIRQSTAT_SHARED: u32 = 1 << 1;

/// `struct physdev_set_iopl` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevSetIopl {
    /// Virtual IOPL 0–3 for this VCPU.
    pub iopl: u32,
}
assert_layout!(PhysdevSetIopl, size = 4, align = 4, iopl = 0);

/// `struct physdev_set_iobitmap` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevSetIobitmap {
    /// Guest address of the I/O permission bitmap.
    pub bitmap: GuestHandle,
    /// Number of ports it covers.
    pub nr_ports: u32,
}
assert_layout!(
    PhysdevSetIobitmap,
    size = 8,
    align = 4,
    bitmap = 0,
    nr_ports = 4
);

/// `struct physdev_eoi` (4 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevEoi {
    /// IRQ.
    pub irq: u32,
}
assert_layout!(PhysdevEoi, size = 4, align = 4, irq = 0);

/// `struct physdev_irq_status_query` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevIrqStatusQuery {
    /// IN: IRQ.
    pub irq: u32,
    /// OUT: `XENIRQSTAT_*`.
    pub flags: u32,
}
assert_layout!(
    PhysdevIrqStatusQuery,
    size = 8,
    align = 4,
    irq = 0,
    flags = 4
);

/// `physdev_map_pirq.type`: an MSI vector.
pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
/// `physdev_map_pirq.type`: a GSI (an IO-APIC or 8259 line).
pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
/// `physdev_map_pirq.type`: unknown.
pub const MAP_PIRQ_TYPE_UNKNOWN: i32 = 2;
/// `physdev_map_pirq.type`: an MSI with a PCI segment in `bus`'s high half.
pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
/// `physdev_map_pirq.type`: several MSI vectors.
pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;

/// `struct physdev_map_pirq` (36 bytes for a 32-bit guest: `table_base` is a
/// `uint64_t` at offset 28, 4-aligned in the i386 ABI, so it is two words here).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevMapPirq {
    /// IN: `DOMID_SELF` or a domain id.
    pub domid: u16,
    /// Padding.
    pub _pad: u16,
    /// IN: `MAP_PIRQ_TYPE_*`.
    pub ty: i32,
    /// IN: the GSI for `MAP_PIRQ_TYPE_GSI`.
    pub index: i32,
    /// IN (a wanted pirq, or negative for "any") and OUT (the pirq).
    pub pirq: i32,
    /// IN (MSI): PCI bus, segment in the high 16 bits for `MSI_SEG`.
    pub bus: i32,
    /// IN (MSI): PCI device/function.
    pub devfn: i32,
    /// IN (MSI): MSI-X entry.
    pub entry_nr: i32,
    /// IN (MSI-X): table base address, low and high words.
    pub table_base: [u32; 2],
}
assert_layout!(
    PhysdevMapPirq,
    size = 36,
    align = 4,
    domid = 0,
    ty = 4,
    index = 8,
    pirq = 12,
    bus = 16,
    devfn = 20,
    entry_nr = 24,
    table_base = 28
);

/// `struct physdev_unmap_pirq` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevUnmapPirq {
    /// IN: `DOMID_SELF` or a domain id.
    pub domid: u16,
    /// Padding.
    pub _pad: u16,
    /// IN: the pirq.
    pub pirq: i32,
}
assert_layout!(PhysdevUnmapPirq, size = 8, align = 4, domid = 0, pirq = 4);

/// `struct physdev_setup_gsi` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevSetupGsi {
    /// IN: the GSI.
    pub gsi: i32,
    /// IN: 0 edge, 1 level.
    pub triggering: u8,
    /// IN: 0 active high, 1 active low.
    pub polarity: u8,
    /// Padding.
    pub _pad: u16,
}
assert_layout!(
    PhysdevSetupGsi,
    size = 8,
    align = 4,
    gsi = 0,
    triggering = 4,
    polarity = 5
);

/// `struct physdev_get_free_pirq` (8 bytes).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevGetFreePirq {
    /// IN: `MAP_PIRQ_TYPE_*`.
    pub ty: i32,
    /// OUT: the pirq.
    pub pirq: u32,
}
assert_layout!(PhysdevGetFreePirq, size = 8, align = 4, ty = 0, pirq = 4);

/// Size of the union in `struct physdev_op`.
pub const PHYSDEV_OP_UNION_SIZE: usize = 12;

/// `struct physdev_op` (16 bytes), the argument of `physdev_op_compat` (#19).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PhysdevOp {
    /// `PHYSDEVOP_*`.
    pub cmd: u32,
    /// The union of the per-command structs.
    pub u: [u8; PHYSDEV_OP_UNION_SIZE],
}
assert_layout!(PhysdevOp, size = 16, align = 4, cmd = 0, u = 4);

impl PhysdevOp {
    /// Wraps `arg` for command `cmd`.
    pub fn new<T: IntoBytes + Immutable>(cmd: u32, arg: &T) -> Self {
        let mut op = Self {
            cmd,
            u: [0; PHYSDEV_OP_UNION_SIZE],
        };
        crate::types::write_union(&mut op.u, arg);
        op
    }

    /// The union read as `T`.
    pub fn payload<T: FromBytes + IntoBytes>(&self) -> T {
        crate::types::read_union(&self.u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_op() {
        let op = PhysdevOp::new(PHYSDEVOP_SET_IOPL, &PhysdevSetIopl { iopl: 1 });
        assert_eq!(op.payload::<PhysdevSetIopl>().iopl, 1);
        assert_eq!(op.as_bytes()[..8], [6, 0, 0, 0, 1, 0, 0, 0]);
    }
}
