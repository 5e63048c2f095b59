//! Virtual-device names and their `virtual-device` numbers (XEN-PV-ABI.md §11.3,
//! Xen's `docs/misc/vbd-interface.txt`), both ways.
//!
//! A [`Vdev`] is a nominal disk type (xvd, sd, hd), a disk number and a partition
//! number (0 = the whole disk). Its number, written in decimal to xenstore and
//! used as the `<devid>` of the device directories, is
//!
//! | Encoding | Range |
//! |---|---|
//! | `202<<8 \| disk<<4 \| partition` | xvd, disks and partitions up to 15 |
//! | `1<<28 \| disk<<8 \| partition` | xvd, disks up to 2^20 − 1 and partitions up to 255, used only where the form above has too few bits |
//! | `8<<8 \| disk<<4 \| partition` | sd, disks 0…15 (`sda`…`sdp`), partitions up to 15 |
//! | `3<<8 \| disk<<6 \| partition` | hd, disks 0…1 (`hda`, `hdb`), partitions up to 63 |
//! | `22<<8 \| (disk−2)<<6 \| partition` | hd, disks 2…3 (`hdc`, `hdd`), partitions up to 63 |
//!
//! Everything else is reserved or deprecated (Linux-specific numbers of `sdq` and
//! beyond, `hde` and beyond) and is refused in both directions.
//!
//! Names: the type, the disk as letters in bijective base 26 (`a`…`z`, `aa`…`zz`,
//! `aaa`…; disk 536 is `tq`) and the partition in decimal without leading zeros,
//! omitted for partition 0 (`xvda`, `xvdtq37`, `sdb3`, `hdc2`). Parsing accepts
//! exactly the names formatting produces, so name → number → name is the identity
//! for every name in range; a number in the extended form whose disk and
//! partition fit the short form decodes to the same device as the short form.

use core::fmt;

use crate::blkif::{
    XEN_IDE0_MAJOR, XEN_SCSI_DISK0_MAJOR, XEN_VDEV_EXT_FLAG, XEN_XVD_MAJOR, hd_devid, sd_devid,
    xvd_devid,
};

/// Major number of the second IDE controller (`hdc`, `hdd`).
pub const XEN_IDE1_MAJOR: u32 = 22;
/// Disks the extended xvd encoding can name (`disk < 2^20`).
pub const XVD_EXT_MAX_DISKS: u32 = 1 << 20;
/// Partitions the extended xvd encoding can name (`partition < 256`).
pub const XVD_EXT_MAX_PARTITIONS: u32 = 256;

/// The nominal disk type of a virtual device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VdevKind {
    /// `xvd*`, the Xen virtual disk.
    Xvd,
    /// `sd*`, a SCSI disk.
    Sd,
    /// `hd*`, an IDE disk.
    Hd,
}

impl VdevKind {
    /// The name prefix (`xvd`, `sd`, `hd`).
    pub const fn prefix(self) -> &'static str {
        match self {
            VdevKind::Xvd => "xvd",
            VdevKind::Sd => "sd",
            VdevKind::Hd => "hd",
        }
    }

    /// Number of disks this type can name.
    pub const fn max_disks(self) -> u32 {
        match self {
            VdevKind::Xvd => XVD_EXT_MAX_DISKS,
            VdevKind::Sd => 16,
            VdevKind::Hd => 4,
        }
    }

    /// Number of partitions (including 0, the whole disk) this type can name.
    pub const fn max_partitions(self) -> u32 {
        match self {
            VdevKind::Xvd => XVD_EXT_MAX_PARTITIONS,
            VdevKind::Sd => 16,
            VdevKind::Hd => 64,
        }
    }
}

/// Why a virtual-device name or number was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VdevError {
    /// The name does not start with `xvd`, `sd` or `hd`.
    UnknownType,
    /// No disk letters, or something other than `a`–`z` where letters belong.
    BadDiskLetters,
    /// The partition is not a decimal number without leading zeros (a written
    /// partition 0 included: the whole disk has no suffix).
    BadPartition,
    /// The disk is beyond what the type's encoding can carry (`sdq`, `hde`, …).
    DiskOutOfRange,
    /// The partition is beyond what the type's encoding can carry.
    PartitionOutOfRange,
    /// The number is reserved or a deprecated Linux-specific encoding.
    UnknownNumber,
}

impl fmt::Display for VdevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VdevError::UnknownType => "not an xvd, sd or hd device",
            VdevError::BadDiskLetters => "bad disk letters",
            VdevError::BadPartition => "bad partition number",
            VdevError::DiskOutOfRange => "disk out of range for this device type",
            VdevError::PartitionOutOfRange => "partition out of range for this device type",
            VdevError::UnknownNumber => "reserved or deprecated device number",
        })
    }
}

/// A virtual block device: type, disk, partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vdev {
    /// Nominal type.
    pub kind: VdevKind,
    /// Disk number, 0 for the first disk (`a`).
    pub disk: u32,
    /// Partition number, 0 for the whole disk.
    pub partition: u32,
}

impl Vdev {
    /// A device, if the type's encoding can carry `disk` and `partition`.
    pub const fn new(kind: VdevKind, disk: u32, partition: u32) -> Result<Vdev, VdevError> {
        if disk >= kind.max_disks() {
            Err(VdevError::DiskOutOfRange)
        } else if partition >= kind.max_partitions() {
            Err(VdevError::PartitionOutOfRange)
        } else {
            Ok(Vdev {
                kind,
                disk,
                partition,
            })
        }
    }

    /// The `virtual-device` number (the short xvd form whenever it fits).
    /// Fields out of range (only possible by building the struct by hand) are
    /// masked by the encoding; use [`Vdev::new`] to check them.
    pub const fn number(self) -> u32 {
        match self.kind {
            VdevKind::Xvd => xvd_devid(self.disk & (XVD_EXT_MAX_DISKS - 1), self.partition & 0xFF),
            VdevKind::Sd => sd_devid(self.disk & 15, self.partition & 15),
            VdevKind::Hd if self.disk < 2 => hd_devid(self.disk, self.partition & 63),
            VdevKind::Hd => {
                (XEN_IDE1_MAJOR << 8) | ((self.disk - 2) & 1) << 6 | (self.partition & 63)
            }
        }
    }

    /// Decodes a `virtual-device` number.
    pub const fn from_number(n: u32) -> Result<Vdev, VdevError> {
        if n & !(XEN_VDEV_EXT_FLAG - 1) == XEN_VDEV_EXT_FLAG {
            return Ok(Vdev {
                kind: VdevKind::Xvd,
                disk: (n >> 8) & (XVD_EXT_MAX_DISKS - 1),
                partition: n & 0xFF,
            });
        }
        if n >> 16 != 0 {
            return Err(VdevError::UnknownNumber);
        }
        let minor = n & 0xFF;
        let (kind, disk, partition) = match n >> 8 {
            XEN_XVD_MAJOR => (VdevKind::Xvd, minor >> 4, minor & 15),
            XEN_SCSI_DISK0_MAJOR => (VdevKind::Sd, minor >> 4, minor & 15),
            // Each IDE major carries two disks; minors 128 and up (a third
            // and fourth disk on the major) are Linux-specific.
            XEN_IDE0_MAJOR if minor >> 6 < 2 => (VdevKind::Hd, minor >> 6, minor & 63),
            XEN_IDE1_MAJOR if minor >> 6 < 2 => (VdevKind::Hd, 2 + (minor >> 6), minor & 63),
            _ => return Err(VdevError::UnknownNumber),
        };
        Ok(Vdev {
            kind,
            disk,
            partition,
        })
    }

    /// Parses a device name (`xvda`, `xvdtq37`, `sda1`, `hdc2`).
    pub fn parse(name: &str) -> Result<Vdev, VdevError> {
        let (kind, rest) = if let Some(r) = name.strip_prefix("xvd") {
            (VdevKind::Xvd, r)
        } else if let Some(r) = name.strip_prefix("sd") {
            (VdevKind::Sd, r)
        } else if let Some(r) = name.strip_prefix("hd") {
            (VdevKind::Hd, r)
        } else {
            return Err(VdevError::UnknownType);
        };
        let split = rest
            .bytes()
            .position(|b| !b.is_ascii_lowercase())
            .unwrap_or(rest.len());
        let (letters, digits) = rest.split_at(split);
        if letters.is_empty() {
            return Err(VdevError::BadDiskLetters);
        }
        // Bijective base 26; anything longer than the largest type's range is
        // out of range (checked arithmetic: no overflow on absurd names).
        let mut n: u32 = 0;
        for b in letters.bytes() {
            n = n
                .checked_mul(26)
                .and_then(|n| n.checked_add(u32::from(b - b'a') + 1))
                .ok_or(VdevError::DiskOutOfRange)?;
        }
        let disk = n - 1;
        let partition = if digits.is_empty() {
            0
        } else {
            if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VdevError::BadPartition);
            }
            digits
                .parse::<u32>()
                .map_err(|_| VdevError::PartitionOutOfRange)?
        };
        Vdev::new(kind, disk, partition)
    }
}

/// Writes disk number `disk` as bijective base-26 letters.
fn write_letters(f: &mut fmt::Formatter<'_>, disk: u32) -> fmt::Result {
    // u32::MAX + 1 needs 7 letters.
    let mut buf = [0u8; 8];
    let mut i = buf.len();
    let mut n = u64::from(disk) + 1;
    while n > 0 {
        n -= 1;
        i -= 1;
        buf[i] = b'a' + (n % 26) as u8;
        n /= 26;
    }
    for &b in &buf[i..] {
        fmt::Write::write_char(f, char::from(b))?;
    }
    Ok(())
}

impl fmt::Display for Vdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.prefix())?;
        write_letters(f, self.disk)?;
        if self.partition != 0 {
            write!(f, "{}", self.partition)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(v: Vdev) -> String {
        v.to_string()
    }

    /// The examples of vbd-interface.txt, the tutorial's devices and the edges
    /// of each encoding.
    #[test]
    fn table() {
        let cases: &[(&str, VdevKind, u32, u32, u32)] = &[
            ("xvda", VdevKind::Xvd, 0, 0, 51712),
            ("xvda1", VdevKind::Xvd, 0, 1, 51713),
            ("xvdb2", VdevKind::Xvd, 1, 2, 51712 + 16 + 2),
            ("xvdp15", VdevKind::Xvd, 15, 15, (202 << 8) | 255),
            ("xvdq", VdevKind::Xvd, 16, 0, (1 << 28) | (16 << 8)),
            ("xvda16", VdevKind::Xvd, 0, 16, (1 << 28) | 16),
            ("xvdz", VdevKind::Xvd, 25, 0, (1 << 28) | (25 << 8)),
            ("xvdaa", VdevKind::Xvd, 26, 0, (1 << 28) | (26 << 8)),
            (
                "xvdtq37",
                VdevKind::Xvd,
                536,
                37,
                (1 << 28) | (536 << 8) | 37,
            ),
            (
                "xvdzz255",
                VdevKind::Xvd,
                701,
                255,
                (1 << 28) | (701 << 8) | 255,
            ),
            ("xvdaaa", VdevKind::Xvd, 702, 0, (1 << 28) | (702 << 8)),
            (
                "xvdbgqcv",
                VdevKind::Xvd,
                (1 << 20) - 1,
                0,
                (1 << 28) | (((1 << 20) - 1) << 8),
            ),
            ("sda", VdevKind::Sd, 0, 0, 2048),
            ("sda1", VdevKind::Sd, 0, 1, 2049),
            ("sda2", VdevKind::Sd, 0, 2, 2050),
            ("sdb3", VdevKind::Sd, 1, 3, 2048 + 16 + 3),
            ("sdp15", VdevKind::Sd, 15, 15, 2048 + 255),
            ("hda", VdevKind::Hd, 0, 0, 768),
            ("hda1", VdevKind::Hd, 0, 1, 769),
            ("hdb", VdevKind::Hd, 1, 0, 832),
            ("hdb63", VdevKind::Hd, 1, 63, 832 + 63),
            ("hdc", VdevKind::Hd, 2, 0, 22 << 8),
            ("hdc2", VdevKind::Hd, 2, 2, (22 << 8) | 2),
            ("hdd63", VdevKind::Hd, 3, 63, (22 << 8) | 64 | 63),
        ];
        for &(s, kind, disk, partition, number) in cases {
            let v = Vdev::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(
                v,
                Vdev {
                    kind,
                    disk,
                    partition
                },
                "{s}"
            );
            assert_eq!(v.number(), number, "{s}");
            assert_eq!(Vdev::from_number(number), Ok(v), "{s}");
            assert_eq!(name(v), s);
        }
    }

    #[test]
    fn refused_names() {
        let cases: &[(&str, VdevError)] = &[
            ("", VdevError::UnknownType),
            ("vda", VdevError::UnknownType),
            ("xvd", VdevError::BadDiskLetters),
            ("sd1", VdevError::BadDiskLetters),
            ("xvdA", VdevError::BadDiskLetters),
            ("xvda0", VdevError::BadPartition),
            ("sda01", VdevError::BadPartition),
            ("sda1x", VdevError::BadPartition),
            ("sda-1", VdevError::BadPartition),
            ("sdq", VdevError::DiskOutOfRange),
            ("sdaa", VdevError::DiskOutOfRange),
            ("sda16", VdevError::PartitionOutOfRange),
            ("hde", VdevError::DiskOutOfRange),
            ("hda64", VdevError::PartitionOutOfRange),
            ("xvda256", VdevError::PartitionOutOfRange),
            ("xvdbgqcw", VdevError::DiskOutOfRange),
            ("xvdzzzzzzzzzzzz", VdevError::DiskOutOfRange),
            ("xvda99999999999", VdevError::PartitionOutOfRange),
        ];
        for &(s, e) in cases {
            assert_eq!(Vdev::parse(s), Err(e), "{s}");
        }
    }

    #[test]
    fn refused_numbers() {
        for n in [
            0,
            1,
            (3 << 8) | (2 << 6),  // hd disk 2 in the 3<<8 form: Linux-only
            (22 << 8) | (2 << 6), // hd disk 4
            65 << 8,              // sdq in Linux's numbering: deprecated
            (202 << 8) + 0x1_0000,
            2 << 28,
            u32::MAX,
        ] {
            assert_eq!(
                Vdev::from_number(n),
                Err(VdevError::UnknownNumber),
                "{n:#x}"
            );
        }
    }

    /// An extended-form number whose fields fit the short form names the same
    /// device; its canonical number is the short form.
    #[test]
    fn extended_form_of_a_short_device() {
        let v = Vdev::from_number((1 << 28) | (1 << 8) | 2).unwrap();
        assert_eq!(name(v), "xvdb2");
        assert_eq!(v.number(), 51712 + 16 + 2);
    }

    #[test]
    fn every_number_round_trips() {
        // Every 16-bit number and every extended number with a small disk.
        let ext = (0..4096u32).map(|i| XEN_VDEV_EXT_FLAG | (i << 8) | (i & 0xFF));
        for n in (0..=0xFFFFu32).chain(ext) {
            if let Ok(v) = Vdev::from_number(n) {
                let s = name(v);
                assert_eq!(Vdev::parse(&s), Ok(v), "{n:#x} {s}");
                assert_eq!(Vdev::from_number(v.number()), Ok(v), "{n:#x}");
            }
        }
    }
}
