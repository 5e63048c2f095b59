//! Disk entries of the `disk = [...]` list.
//!
//! Owns the xm disk specification `'<type>:<target>,<vdev>[:cdrom|:disk],<mode>[,<backend>]'`
//! (spaces around the commas are ignored, as users wrote them that way in the
//! tutorial) and the mapping of a virtual device name to the Xen `virtual-device`
//! number, as `xen_abi::vdev` reads names (digest §11.3: `xvd<letters><part>`
//! with the extended encoding for disks ≥ 16 or partitions ≥ 16,
//! `sd<a–p><part ≤ 15>`, `hd<a–d><part ≤ 63>`), or a plain decimal number taken
//! as the device number itself.

use alloc::format;
use alloc::string::{String, ToString};
use xen_abi::vdev::Vdev;

/// How dom0 reaches the data behind a virtual disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskBackend {
    /// `phy:` a block device of dom0.
    Phy,
    /// `file:` an image file (loop-mounted in xm's time).
    File,
    /// `tap:<driver>:` a blktap driver (`aio`, `sync`, `qcow`, `qcow2`, `vmdk`, `ram`, `vhd`).
    Tap(String),
}

/// Blktap drivers xm knew.
const TAP_DRIVERS: [&str; 7] = ["aio", "sync", "qcow", "qcow2", "vmdk", "ram", "vhd"];

/// Access mode of a virtual disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskMode {
    /// `r`: read-only.
    Read,
    /// `w`: read-write, exclusive.
    Write,
    /// `w!`: read-write even if another domain also has it writable.
    WriteShared,
}

impl DiskMode {
    /// The xenstore `mode` value (`r` or `w`).
    pub fn xenstore_mode(self) -> &'static str {
        match self {
            DiskMode::Read => "r",
            DiskMode::Write | DiskMode::WriteShared => "w",
        }
    }
}

/// Whether the guest sees a disk or a CD-ROM (`device-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// `disk` (the default).
    Disk,
    /// `cdrom` (`hdc:cdrom`).
    Cdrom,
}

/// One parsed disk entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Backend type (`phy`, `file`, `tap:<driver>`).
    pub backend: DiskBackend,
    /// Device or file in dom0, as written.
    pub target: String,
    /// Virtual device name as written (without a `:cdrom`/`:disk` suffix), e.g. `sda1`.
    pub vdev_name: String,
    /// The Xen `virtual-device` number of `vdev_name`.
    pub vdev: u32,
    /// Disk or CD-ROM.
    pub device_type: DeviceType,
    /// Access mode.
    pub mode: DiskMode,
    /// Backend domain (name or id) if a fourth field was given; dom0 otherwise.
    pub backend_domain: Option<String>,
}

impl DiskSpec {
    /// Parses one xm disk specification; the error is the reason it is rejected.
    pub fn parse(spec: &str) -> Result<DiskSpec, String> {
        let fields: alloc::vec::Vec<&str> = spec.split(',').map(str::trim).collect();
        if fields.len() < 3 || fields.len() > 4 {
            return Err(
                "expected '<type>:<target>,<device>,<mode>' (e.g. 'file:/vm/disk.img,xvda1,w')"
                    .into(),
            );
        }
        let (backend, target) = parse_uname(fields[0])?;
        let (vdev_name, device_type) = match fields[1].split_once(':') {
            None => (fields[1], DeviceType::Disk),
            Some((name, "cdrom")) => (name, DeviceType::Cdrom),
            Some((name, "disk")) => (name, DeviceType::Disk),
            Some(("ioemu", _)) => {
                return Err("'ioemu:' devices are for HVM guests; Oxen runs PV guests".into());
            }
            Some((_, other)) => {
                return Err(format!("device type '{other}' is not 'disk' or 'cdrom'"));
            }
        };
        let vdev = vdev_number(vdev_name)?;
        let mode = match fields[2] {
            "r" => DiskMode::Read,
            "w" => DiskMode::Write,
            "w!" => DiskMode::WriteShared,
            other => return Err(format!("mode '{other}' is not 'r', 'w' or 'w!'")),
        };
        let backend_domain = match fields.get(3) {
            None => None,
            Some(&"") => return Err("empty backend domain".into()),
            Some(d) => Some(d.to_string()),
        };
        Ok(DiskSpec {
            backend,
            target: target.into(),
            vdev_name: vdev_name.into(),
            vdev,
            device_type,
            mode,
            backend_domain,
        })
    }
}

fn parse_uname(uname: &str) -> Result<(DiskBackend, &str), String> {
    let Some((kind, rest)) = uname.split_once(':') else {
        return Err(format!(
            "'{uname}' has no backend type (phy:, file: or tap:<driver>:)"
        ));
    };
    let (backend, target) = match kind {
        "phy" => (DiskBackend::Phy, rest),
        "file" => (DiskBackend::File, rest),
        "tap" => {
            let Some((driver, path)) = rest.split_once(':') else {
                return Err("tap needs a driver: 'tap:aio:/path'".into());
            };
            if !TAP_DRIVERS.contains(&driver) {
                return Err(format!(
                    "unknown tap driver '{driver}' (aio, sync, qcow, qcow2, vmdk, ram, vhd)"
                ));
            }
            (DiskBackend::Tap(driver.into()), path)
        }
        other => return Err(format!("unknown backend type '{other}' (phy, file or tap)")),
    };
    if target.is_empty() {
        return Err("empty target path".into());
    }
    if target.chars().any(char::is_control) {
        return Err("control character in target path".into());
    }
    if backend != DiskBackend::Phy && !target.starts_with('/') {
        return Err(format!("image path '{target}' must be absolute"));
    }
    Ok((backend, target))
}

/// The Xen `virtual-device` number of a device name (`xvda1`, `sda2`, `hda`,
/// `hdc`, `51712`): names as `xen_abi::vdev` reads them, or a plain decimal
/// number taken as the device number itself.
pub fn vdev_number(name: &str) -> Result<u32, String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
        return name
            .parse()
            .map_err(|_| format!("virtual device number '{name}' is too large"));
    }
    Vdev::parse(name)
        .map(Vdev::number)
        .map_err(|e| format!("virtual device '{name}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_entries() {
        let d = DiskSpec::parse("file:/vm/domains/brun/disk.img,sda1,w").unwrap();
        assert_eq!(d.backend, DiskBackend::File);
        assert_eq!(d.target, "/vm/domains/brun/disk.img");
        assert_eq!(d.vdev_name, "sda1");
        assert_eq!(d.vdev, 2049);
        assert_eq!(d.mode, DiskMode::Write);
        assert_eq!(d.device_type, DeviceType::Disk);
        assert_eq!(d.backend_domain, None);
        // the original tutorial put spaces after the commas
        let d2 = DiskSpec::parse("file:/vm/domains/brun/disk.img, sda1, w").unwrap();
        assert_eq!(d, d2);
    }

    #[test]
    fn backends_modes_types() {
        let d = DiskSpec::parse("phy:hda1,xvda,r").unwrap();
        assert_eq!(
            (d.backend, d.target.as_str(), d.vdev, d.mode),
            (DiskBackend::Phy, "hda1", 51712, DiskMode::Read)
        );
        assert_eq!(d.mode.xenstore_mode(), "r");
        let d = DiskSpec::parse("tap:aio:/img/a.img,xvdb2,w!,driverdom").unwrap();
        assert_eq!(d.backend, DiskBackend::Tap("aio".into()));
        assert_eq!(d.target, "/img/a.img");
        assert_eq!(d.mode, DiskMode::WriteShared);
        assert_eq!(d.mode.xenstore_mode(), "w");
        assert_eq!(d.backend_domain.as_deref(), Some("driverdom"));
        let d = DiskSpec::parse("file:/iso/x.iso,hdb:cdrom,r").unwrap();
        assert_eq!(
            (d.vdev_name.as_str(), d.device_type, d.vdev),
            ("hdb", DeviceType::Cdrom, 832)
        );
        let d = DiskSpec::parse("phy:/dev/vg/x,xvdc:disk,w").unwrap();
        assert_eq!(d.device_type, DeviceType::Disk);
    }

    #[test]
    fn rejected_entries() {
        for (spec, reason) in [
            (
                "file:/a,sda1",
                "expected '<type>:<target>,<device>,<mode>' (e.g. 'file:/vm/disk.img,xvda1,w')",
            ),
            (
                "file:/a,sda1,w,d,e",
                "expected '<type>:<target>,<device>,<mode>' (e.g. 'file:/vm/disk.img,xvda1,w')",
            ),
            (
                "/a,sda1,w",
                "'/a' has no backend type (phy:, file: or tap:<driver>:)",
            ),
            (
                "nbd:/a,sda1,w",
                "unknown backend type 'nbd' (phy, file or tap)",
            ),
            ("tap:/a,sda1,w", "tap needs a driver: 'tap:aio:/path'"),
            (
                "tap::/a,sda1,w",
                "unknown tap driver '' (aio, sync, qcow, qcow2, vmdk, ram, vhd)",
            ),
            ("tap:aio,sda1,w", "tap needs a driver: 'tap:aio:/path'"),
            (
                "tap:foo:/a,sda1,w",
                "unknown tap driver 'foo' (aio, sync, qcow, qcow2, vmdk, ram, vhd)",
            ),
            ("file:,sda1,w", "empty target path"),
            (
                "file:disk.img,sda1,w",
                "image path 'disk.img' must be absolute",
            ),
            ("file:/a,sda1,rw", "mode 'rw' is not 'r', 'w' or 'w!'"),
            ("file:/a,sda1,", "mode '' is not 'r', 'w' or 'w!'"),
            (
                "file:/a,ioemu:hda,w",
                "'ioemu:' devices are for HVM guests; Oxen runs PV guests",
            ),
            (
                "file:/a,hdc:floppy,w",
                "device type 'floppy' is not 'disk' or 'cdrom'",
            ),
            (
                "file:/a,vda,w",
                "virtual device 'vda': not an xvd, sd or hd device",
            ),
            (
                "file:/a,,w",
                "virtual device '': not an xvd, sd or hd device",
            ),
            ("file:/a,sda1,w,", "empty backend domain"),
        ] {
            assert_eq!(DiskSpec::parse(spec).unwrap_err(), reason, "{spec}");
        }
    }

    #[test]
    fn vdev_numbers_follow_the_digest() {
        assert_eq!(vdev_number("xvda"), Ok(51712));
        assert_eq!(vdev_number("xvda1"), Ok(51713));
        assert_eq!(vdev_number("xvdb"), Ok(51712 + 16));
        assert_eq!(vdev_number("xvdp15"), Ok((202 << 8) | (15 << 4) | 15));
        assert_eq!(vdev_number("xvdq"), Ok((1 << 28) | (16 << 8)));
        assert_eq!(vdev_number("xvda16"), Ok((1 << 28) | 16));
        assert_eq!(vdev_number("xvdaa"), Ok((1 << 28) | (26 << 8)));
        assert_eq!(vdev_number("xvdzz3"), Ok((1 << 28) | (701 << 8) | 3));
        assert_eq!(vdev_number("sda"), Ok(2048));
        assert_eq!(vdev_number("sda2"), Ok(2050));
        assert_eq!(vdev_number("sdp15"), Ok((8 << 8) | (15 << 4) | 15));
        assert_eq!(vdev_number("hda"), Ok(768));
        assert_eq!(vdev_number("hdb63"), Ok(832 + 63));
        assert_eq!(vdev_number("51712"), Ok(51712));
        // As xen_abi::vdev reads names: three letters, and the second IDE
        // controller's disks (hdc:cdrom in the tutorials).
        assert_eq!(vdev_number("xvdaaa"), Ok((1 << 28) | (702 << 8)));
        assert_eq!(vdev_number("hdc"), Ok(22 << 8));
        for bad in [
            "xvd",
            "xvda0",
            "xvda01",
            "xvda256",
            "xvdA",
            "xvda1b",
            "sdq",
            "sda16",
            "sdaa",
            "hde",
            "hda64",
            "99999999999",
            "xvda1000",
        ] {
            assert!(vdev_number(bad).is_err(), "{bad}");
        }
    }
}
