//! The tutorial's domain config (DESIGN.md §1) and the file xen-create-image wrote
//! for it (tutorial §3.2) parse to the expected domain.

use std::net::Ipv4Addr;
use xm_config::{DeviceType, DiskBackend, DiskMode, ShutdownAction, VifSpec, parse};

/// Verbatim from DESIGN.md §1.
const BRUN_CFG: &str = "\
kernel = '/boot/vmlinuz-2.6.18-4-xen-686'   # a path inside dom0's initrd
memory = '64'
root   = '/dev/sda1 ro'
disk   = [ 'file:/vm/domains/brun/disk.img,sda1,w', 'file:/vm/domains/brun/swap.img,sda2,w' ]
name   = 'brun'
vif    = [ 'ip=10.0.0.2' ]
on_poweroff = 'destroy'
on_reboot   = 'restart'
on_crash    = 'restart'
";

#[test]
fn design_brun_cfg_parses_verbatim() {
    let (c, warnings) = parse("brun.cfg", BRUN_CFG).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.name, "brun");
    assert_eq!(c.kernel, "/boot/vmlinuz-2.6.18-4-xen-686");
    assert_eq!(c.ramdisk, None);
    assert_eq!(c.memory_mib, 64);
    assert_eq!(c.maxmem_mib, 64);
    assert_eq!(c.vcpus, 1);
    assert_eq!(c.cpus, None);
    assert_eq!(c.root.as_deref(), Some("/dev/sda1 ro"));
    assert_eq!(c.extra, None);
    assert_eq!(c.kernel_ip, None);
    assert_eq!(c.cmdline, "root=/dev/sda1 ro");
    assert_eq!(c.disks.len(), 2);
    let targets: Vec<_> = c
        .disks
        .iter()
        .map(|d| (d.target.as_str(), d.vdev_name.as_str(), d.vdev))
        .collect();
    assert_eq!(
        targets,
        [
            ("/vm/domains/brun/disk.img", "sda1", 2049),
            ("/vm/domains/brun/swap.img", "sda2", 2050)
        ]
    );
    for d in &c.disks {
        assert_eq!(d.backend, DiskBackend::File);
        assert_eq!(d.mode, DiskMode::Write);
        assert_eq!(d.device_type, DeviceType::Disk);
        assert_eq!(d.backend_domain, None);
    }
    assert_eq!(
        c.vifs,
        [VifSpec {
            ips: vec![Ipv4Addr::new(10, 0, 0, 2)],
            ..VifSpec::default()
        }]
    );
    assert_eq!(c.on_poweroff, ShutdownAction::Destroy);
    assert_eq!(c.on_reboot, ShutdownAction::Restart);
    assert_eq!(c.on_crash, ShutdownAction::Restart);
    assert_eq!(c.uuid, None);
    assert!(!c.localtime);
    assert!(c.unknown.is_empty());
}

/// The xen-create-image output of tutorial §3.2, with the `#` the PDF extraction
/// lost restored: a ramdisk, header comments, a disk list over two lines with
/// spaces after the commas.
const XEN_TOOLS_BRUN_CFG: &str = "\
#
# Configuration file for the Xen instance brun, created on
# Thu Aug 31 19:54:40 2006.
#

#
#  Kernel + memory size
#
kernel  = '/boot/vmlinuz-2.6.18-4-xen-686'
ramdisk = '/boot/initrd.img-2.6.18-4-xen-686'
memory  = '64'

#
#  Disk device(s).
#
root    = '/dev/sda1 ro'
disk    = [ 'file:/vm/domains/brun/disk.img, sda1, w',
            'file:/vm/domains/brun/swap.img,sda2,w' ]

#
#  Hostname
#
name    = 'brun'

#
#  Networking
#
vif  = [ 'ip=10.0.0.2' ]

#
#  Behaviour
#
on_poweroff = 'destroy'
on_reboot   = 'restart'
on_crash    = 'restart'
";

#[test]
fn xen_tools_generated_brun_cfg_parses() {
    let (c, warnings) =
        parse("/etc/xen/brun.cfg", XEN_TOOLS_BRUN_CFG).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty());
    let (design, _) = parse("brun.cfg", BRUN_CFG).unwrap();
    assert_eq!(
        c.ramdisk.as_deref(),
        Some("/boot/initrd.img-2.6.18-4-xen-686")
    );
    // Apart from the ramdisk, the same domain as DESIGN's copy.
    assert_eq!(xm_config::DomainConfig { ramdisk: None, ..c }, design);
}

#[test]
fn tutorial_typo_on_crash_is_a_syntax_error_with_location() {
    // The PDF text shows "on crash = 'restart'"; it is not valid and must say where.
    let text = XEN_TOOLS_BRUN_CFG.replace("on_crash    =", "on crash =");
    let e = parse("brun.cfg", &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "brun.cfg:35:4: key 'on': expected '=', found name 'crash'"
    );
}
