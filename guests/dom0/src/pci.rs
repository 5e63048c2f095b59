//! The PCI functions dom0 found on bus 0, as `lspci` shows them.
//!
//! The kernel scans configuration space (ports 0xCF8/0xCFC, DESIGN.md §8)
//! and hands each function's identity here; this module only names them,
//! with the class and vendor/device names of the PCI ID database for the
//! devices of QEMU's `pc` machine and the virtio devices, and the numbers
//! for the rest.

use alloc::format;
use alloc::string::String;

/// One PCI function: where it is and what it says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
    pub vendor_id: u16,
    pub device_id: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub revision: u8,
}

/// The class name of `class`/`subclass` (PCI ID database), if known.
pub fn class_name(class: u8, subclass: u8) -> Option<&'static str> {
    Some(match (class, subclass) {
        (0x00, 0x00) => "Non-VGA unclassified device",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x01, 0x80) => "Mass storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x80) => "Bridge",
        (0x07, 0x80) => "Communication controller",
        (0x0C, 0x03) => "USB controller",
        (0x0C, 0x05) => "SMBus",
        _ => return None,
    })
}

/// The vendor's name, if known.
pub fn vendor_name(vendor_id: u16) -> Option<&'static str> {
    Some(match vendor_id {
        0x8086 => "Intel Corporation",
        0x1AF4 => "Red Hat, Inc.",
        0x1B36 => "Red Hat, Inc.",
        _ => return None,
    })
}

/// The device's name, if known.
pub fn device_name(vendor_id: u16, device_id: u16) -> Option<&'static str> {
    Some(match (vendor_id, device_id) {
        (0x8086, 0x1237) => "440FX - 82441FX PMC [Natoma]",
        (0x8086, 0x7000) => "82371SB PIIX3 ISA [Natoma/Triton II]",
        (0x8086, 0x7010) => "82371SB PIIX3 IDE [Natoma/Triton II]",
        (0x8086, 0x7113) => "82371AB/EB/MB PIIX4 ACPI",
        (0x8086, 0x100E) => "82540EM Gigabit Ethernet Controller",
        (0x1AF4, 0x1000) => "Virtio network device",
        (0x1AF4, 0x1001) => "Virtio block device",
        (0x1AF4, 0x1041) => "Virtio 1.0 network device",
        (0x1AF4, 0x1042) => "Virtio 1.0 block device",
        _ => return None,
    })
}

impl PciFunction {
    /// `00:04.0`.
    pub fn slot(&self) -> String {
        format!("{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }

    /// One line of `lspci`: `00:04.0 SCSI storage controller: Red Hat, Inc.
    /// Virtio block device`, with ` (rev NN)` when the revision is not 0 and
    /// the numbers where a name is unknown.
    pub fn lspci_line(&self) -> String {
        let class = class_name(self.class, self.subclass)
            .map(String::from)
            .unwrap_or_else(|| format!("Class {:02x}{:02x}", self.class, self.subclass));
        // As lspci: "Device vvvv:dddd" for an unknown vendor, "Vendor
        // Device dddd" for a known vendor's unknown device.
        let name = match (
            vendor_name(self.vendor_id),
            device_name(self.vendor_id, self.device_id),
        ) {
            (None, _) => format!("Device {:04x}:{:04x}", self.vendor_id, self.device_id),
            (Some(v), None) => format!("{v} Device {:04x}", self.device_id),
            (Some(v), Some(d)) => format!("{v} {d}"),
        };
        let rev = if self.revision != 0 {
            format!(" (rev {:02x})", self.revision)
        } else {
            String::new()
        };
        format!("{} {class}: {name}{rev}", self.slot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(device: u8, ids: (u16, u16), class: (u8, u8), revision: u8) -> PciFunction {
        PciFunction {
            bus: 0,
            device,
            function: 0,
            vendor_id: ids.0,
            device_id: ids.1,
            class: class.0,
            subclass: class.1,
            prog_if: 0,
            revision,
        }
    }

    #[test]
    fn lines_as_lspci_prints_them() {
        assert_eq!(
            f(0, (0x8086, 0x1237), (6, 0), 2).lspci_line(),
            "00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma] (rev 02)"
        );
        assert_eq!(
            f(4, (0x1AF4, 0x1001), (1, 0), 0).lspci_line(),
            "00:04.0 SCSI storage controller: Red Hat, Inc. Virtio block device"
        );
        let mut bridge = f(0x1f, (0x8086, 0x7113), (6, 0x80), 3);
        bridge.function = 3;
        bridge.bus = 0x12;
        assert_eq!(
            bridge.lspci_line(),
            "12:1f.3 Bridge: Intel Corporation 82371AB/EB/MB PIIX4 ACPI (rev 03)"
        );
    }

    #[test]
    fn unknown_ids_are_shown_as_numbers() {
        assert_eq!(
            f(9, (0xABCD, 0x0102), (0x11, 0x22), 0).lspci_line(),
            "00:09.0 Class 1122: Device abcd:0102"
        );
        assert_eq!(
            f(9, (0x8086, 0x0102), (2, 0), 0).lspci_line(),
            "00:09.0 Ethernet controller: Intel Corporation Device 0102"
        );
        assert_eq!(
            f(2, (0x1234, 0x1111), (3, 0), 2).lspci_line(),
            "00:02.0 VGA compatible controller: Device 1234:1111 (rev 02)"
        );
    }
}
