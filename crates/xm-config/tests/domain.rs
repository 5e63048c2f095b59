//! Typed-config rules: each with an accepted and a rejected case; every error
//! message names file, line and key.

use xm_config::{CpuSet, DomainConfig, ShutdownAction, Uuid, Warning, WarningKind, parse};

const BASE: &str = "kernel = '/boot/k'\nname = 'd'\n";

fn ok(extra: &str) -> (DomainConfig, Vec<Warning>) {
    parse("d.cfg", &format!("{BASE}{extra}")).unwrap_or_else(|e| panic!("{e}"))
}

fn cfg(extra: &str) -> DomainConfig {
    let (c, w) = ok(extra);
    assert!(w.is_empty(), "{w:?}");
    c
}

/// The error for `extra` appended after the two base lines (so it starts at line 3).
fn err(extra: &str) -> String {
    parse("d.cfg", &format!("{BASE}{extra}"))
        .expect_err("must fail")
        .to_string()
}

#[test]
fn required_keys() {
    assert_eq!(
        parse("d.cfg", "name = 'd'\n").unwrap_err().to_string(),
        "d.cfg: key 'kernel': required key is missing"
    );
    assert_eq!(
        parse("d.cfg", "kernel = '/k'\n").unwrap_err().to_string(),
        "d.cfg: key 'name': required key is missing"
    );
    let e = parse("d.cfg", "").unwrap_err();
    assert_eq!((e.line(), e.key()), (None, Some("name")));
    assert_eq!(
        err("kernel = ''\n"),
        "d.cfg:3: key 'kernel': invalid kernel path '': must not be empty"
    );
    assert_eq!(
        err("kernel = 5\n"),
        "d.cfg:3: key 'kernel': expected a string, found 5"
    );
}

#[test]
fn memory_as_string_or_int() {
    let c = cfg("");
    assert_eq!((c.memory_mib, c.maxmem_mib), (128, 128));
    assert_eq!(cfg("memory = 64\n").memory_mib, 64);
    assert_eq!(cfg("memory = '64'\n").memory_mib, 64);
    assert_eq!(cfg("memory = ' 64 '\n").memory_mib, 64);
    assert_eq!(cfg("memory = 0x40\n").memory_mib, 64);
    assert_eq!(cfg("memory = '65536'\n").memory_mib, 65536);
    assert_eq!(
        err("memory = 'abc'\n"),
        "d.cfg:3: key 'memory': expected a number, found 'abc'"
    );
    assert_eq!(
        err("memory = '64M'\n"),
        "d.cfg:3: key 'memory': expected a number, found '64M'"
    );
    assert_eq!(
        err("memory = ''\n"),
        "d.cfg:3: key 'memory': expected a number, found ''"
    );
    assert_eq!(
        err("memory = [64]\n"),
        "d.cfg:3: key 'memory': expected a number, found [64]"
    );
    assert_eq!(
        err("memory = 0\n"),
        "d.cfg:3: key 'memory': 0 is out of range (1 to 65536)"
    );
    assert_eq!(
        err("memory = '-5'\n"),
        "d.cfg:3: key 'memory': -5 is out of range (1 to 65536)"
    );
    assert_eq!(
        err("memory = 65537\n"),
        "d.cfg:3: key 'memory': 65537 is out of range (1 to 65536)"
    );
    assert_eq!(
        err("memory = '99999999999999999999'\n"),
        "d.cfg:3: key 'memory': expected a number, found '99999999999999999999'"
    );
}

#[test]
fn maxmem_defaults_to_and_is_raised_to_memory() {
    let c = cfg("memory = 64\nmaxmem = '256'\n");
    assert_eq!((c.memory_mib, c.maxmem_mib), (64, 256));
    let (c, w) = ok("maxmem = 32\nmemory = 64\n");
    assert_eq!(c.maxmem_mib, 64);
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].kind,
        WarningKind::MaxmemBelowMemory {
            maxmem: 32,
            memory: 64
        }
    );
    assert_eq!(
        w[0].to_string(),
        "d.cfg:3: key 'maxmem': warning: maxmem 32 is below memory 64; using 64"
    );
    assert_eq!(
        err("maxmem = 'x'\n"),
        "d.cfg:3: key 'maxmem': expected a number, found 'x'"
    );
}

#[test]
fn name_validation() {
    for good in ["brun", "web-1", "a_b.c:d/e+f", "Domain-U", "1st"] {
        let (c, w) = parse("d.cfg", &format!("kernel = '/k'\nname = '{good}'\n")).unwrap();
        assert_eq!((c.name.as_str(), w.len()), (good, 0));
    }
    assert_eq!(
        err("name = 'my vm'\n"),
        "d.cfg:3: key 'name': invalid domain name 'my vm': character ' ' is not allowed (use letters, digits and _-.:/+)"
    );
    assert_eq!(
        err("name = 'caf\u{e9}'\n"),
        "d.cfg:3: key 'name': invalid domain name 'caf\u{e9}': character '\u{e9}' is not allowed (use letters, digits and _-.:/+)"
    );
    assert_eq!(
        err("name = ''\n"),
        "d.cfg:3: key 'name': invalid domain name '': must not be empty"
    );
    assert_eq!(
        err("name = '42'\n"),
        "d.cfg:3: key 'name': invalid domain name '42': all digits: xm commands would read it as a domain id"
    );
    assert_eq!(
        err("name = brun\n"),
        "d.cfg:3:8: key 'name': expected a value (strings must be quoted), found name 'brun'"
    );
}

#[test]
fn vcpus_and_cpus() {
    assert_eq!(cfg("").vcpus, 1);
    assert_eq!(cfg("vcpus = 2\n").vcpus, 2);
    assert_eq!(cfg("vcpus = '32'\n").vcpus, 32);
    assert_eq!(
        err("vcpus = 0\n"),
        "d.cfg:3: key 'vcpus': 0 is out of range (1 to 32)"
    );
    assert_eq!(
        err("vcpus = 33\n"),
        "d.cfg:3: key 'vcpus': 33 is out of range (1 to 32)"
    );
    assert_eq!(cfg("cpus = '0-3,^2, 5'\n").cpus, Some(CpuSet(0b10_1011)));
    assert_eq!(cfg("cpus = 3\n").cpus, Some(CpuSet(0b1000)));
    assert_eq!(cfg("cpus = [1, 2]\n").cpus, Some(CpuSet(0b110)));
    assert_eq!(cfg("cpus = ''\n").cpus, None);
    let set = cfg("cpus = '63'\n").cpus.unwrap();
    assert!(set.contains(63) && !set.contains(0) && !set.contains(64));
    assert_eq!(set.iter().collect::<Vec<_>>(), [63]);
    assert_eq!(
        err("cpus = '3-1'\n"),
        "d.cfg:3: key 'cpus': invalid cpus '3-1': range 3-1 is backwards"
    );
    assert_eq!(
        err("cpus = '64'\n"),
        "d.cfg:3: key 'cpus': invalid cpus '64': CPU 64 is above 63"
    );
    assert_eq!(
        err("cpus = '1,^1'\n"),
        "d.cfg:3: key 'cpus': invalid cpus '1,^1': selects no CPU"
    );
    assert_eq!(
        err("cpus = 'a'\n"),
        "d.cfg:3: key 'cpus': invalid cpus 'a': 'a' is not a CPU number (in 'a')"
    );
    assert_eq!(
        err("cpus = [1,\n 70]\n"),
        "d.cfg:4: key 'cpus': 70 is out of range (0 to 63)"
    );
    assert_eq!(
        err("cpus = [1,\n '2']\n"),
        "d.cfg:4: key 'cpus': expected a number, found '2'"
    );
    assert_eq!(
        err("cpus = True\n"),
        "d.cfg:3: key 'cpus': expected a number, found True"
    );
}

#[test]
fn cmdline_assembly() {
    assert_eq!(cfg("").cmdline, "");
    assert_eq!(cfg("root = '/dev/sda1 ro'\n").cmdline, "root=/dev/sda1 ro");
    assert_eq!(
        cfg("root = 'root=/dev/xvda1'\n").root.as_deref(),
        Some("/dev/xvda1")
    );
    assert_eq!(cfg("root = 'root=/dev/xvda1'\n").cmdline, "root=/dev/xvda1");
    assert_eq!(
        cfg("root = '/dev/sda1 ro'\nextra = ' 4 console=hvc0 '\n").cmdline,
        "root=/dev/sda1 ro 4 console=hvc0"
    );
    assert_eq!(cfg("extra = 'single'\n").cmdline, "single");
    let c = cfg(
        "ip = '10.0.0.2'\nnetmask = '255.255.255.0'\ngateway = '10.0.0.254'\nhostname = 'brun'\nroot = '/dev/sda1 ro'\n",
    );
    assert_eq!(
        c.kernel_ip.as_deref(),
        Some("10.0.0.2:1.2.3.4:10.0.0.254:255.255.255.0:brun:eth0:off")
    );
    assert_eq!(
        c.cmdline,
        "ip=10.0.0.2:1.2.3.4:10.0.0.254:255.255.255.0:brun:eth0:off root=/dev/sda1 ro"
    );
    let c = cfg("dhcp = 'dhcp'\ninterface = 'eth1'\n");
    assert_eq!(c.cmdline, "ip=:1.2.3.4::::eth1:dhcp");
    assert_eq!(cfg("netmask = '255.0.0.0'\n").kernel_ip, None);
    assert_eq!(
        err("ip = '10.0.0'\n"),
        "d.cfg:3: key 'ip': invalid address '10.0.0': '10.0.0' is not an IPv4 address like 10.0.0.2"
    );
    assert_eq!(
        err("dhcp = 'yes'\n"),
        "d.cfg:3: key 'dhcp': invalid dhcp 'yes': expected 'off' or 'dhcp'"
    );
    assert_eq!(
        err("hostname = 'a b'\n"),
        "d.cfg:3: key 'hostname': invalid hostname 'a b': contains a space or ':'"
    );
    assert_eq!(
        err("interface = ''\n"),
        "d.cfg:3: key 'interface': invalid interface '': interface name '' must have 1 to 15 characters"
    );
    assert_eq!(
        err("extra = 1\n"),
        "d.cfg:3: key 'extra': expected a string, found 1"
    );
}

#[test]
fn ramdisk_and_builder() {
    assert_eq!(
        cfg("ramdisk = '/boot/initrd'\n").ramdisk.as_deref(),
        Some("/boot/initrd")
    );
    assert_eq!(cfg("ramdisk = ''\n").ramdisk, None);
    assert_eq!(
        cfg("builder = 'linux'\n").builder,
        xm_config::Builder::Linux
    );
    assert_eq!(
        err("builder = 'hvm'\n"),
        "d.cfg:3: key 'builder': invalid builder 'hvm': only 'linux' is supported: Oxen runs PV guests"
    );
    assert_eq!(
        err("ramdisk = '/a\\tb'\n"),
        "d.cfg:3: key 'ramdisk': invalid ramdisk path '/a\tb': contains a control character"
    );
}

#[test]
fn disk_lists() {
    let c = cfg("disk = 'phy:sda1,xvda1,w'\n");
    assert_eq!(c.disks.len(), 1);
    assert_eq!(c.disks[0].vdev, 51713);
    assert!(cfg("disk = []\n").disks.is_empty());
    let c = cfg("disk = [\n  'phy:/dev/vg/a,xvda,w',\n  'file:/iso/b.iso,xvdb:cdrom,r',\n]\n");
    assert_eq!(c.disks.len(), 2);
    // A bad element is reported at its own line.
    assert_eq!(
        err("disk = [\n  'phy:/dev/vg/a,xvda,w',\n  'file:/b,xvdb,x',\n]\n"),
        "d.cfg:5: key 'disk': invalid disk 'file:/b,xvdb,x': mode 'x' is not 'r', 'w' or 'w!'"
    );
    assert_eq!(
        err("disk = ['phy:a,sda1,w',\n 'phy:b,2049,w']\n"),
        "d.cfg:4: key 'disk': invalid disk 'phy:b,2049,w': virtual device '2049' is already used by disk 0 ('sda1')"
    );
    assert_eq!(
        err("disk = ['phy:a,sda1,w', 7]\n"),
        "d.cfg:3: key 'disk': expected a string, found 7"
    );
    assert_eq!(
        err("disk = 7\n"),
        "d.cfg:3: key 'disk': invalid list '7': expected a list of strings like [ '...', '...' ]"
    );
}

#[test]
fn vif_lists() {
    let c = cfg(
        "vif = [ 'ip=10.0.0.2, mac=00:16:3e:00:00:01, bridge=xenbr0, script=vif-bridge, vifname=brun.0', '' ]\n",
    );
    assert_eq!(c.vifs.len(), 2);
    assert_eq!(c.vifs[0].mac.unwrap().to_string(), "00:16:3e:00:00:01");
    assert_eq!(c.vifs[0].vifname.as_deref(), Some("brun.0"));
    assert_eq!(c.vifs[1], xm_config::VifSpec::default());
    assert_eq!(
        err("vif = [ 'mac=00:16:3e:00:00:1' ]\n"),
        "d.cfg:3: key 'vif': invalid vif 'mac=00:16:3e:00:00:1': MAC address '00:16:3e:00:00:1' is not six hex octets like 00:16:3e:00:00:01"
    );
    assert_eq!(
        err("vif = [ 'mac=00:16:3e:00:00:01',\n        'mac=00:16:3E:00:00:01' ]\n"),
        "d.cfg:4: key 'vif': invalid vif 'mac=00:16:3E:00:00:01': MAC 00:16:3e:00:00:01 is already used by vif 0"
    );
    assert_eq!(
        err("vif = [ 'ip=300.0.0.1' ]\n"),
        "d.cfg:3: key 'vif': invalid vif 'ip=300.0.0.1': '300.0.0.1' has an octet above 255"
    );
}

#[test]
fn shutdown_actions() {
    for a in ShutdownAction::ALL {
        let c = cfg(&format!(
            "on_poweroff = '{a}'\non_reboot = '{a}'\non_crash = '{a}'\n"
        ));
        assert_eq!((c.on_poweroff, c.on_reboot, c.on_crash), (a, a, a));
    }
    let c = cfg("");
    assert_eq!(
        (c.on_poweroff, c.on_reboot, c.on_crash),
        (
            ShutdownAction::Destroy,
            ShutdownAction::Restart,
            ShutdownAction::Restart
        )
    );
    assert_eq!(
        err("on_crash = 'explode'\n"),
        "d.cfg:3: key 'on_crash': invalid action 'explode': expected destroy, restart, preserve, rename-restart, coredump-destroy or coredump-restart"
    );
    assert_eq!(
        err("on_reboot = 1\n"),
        "d.cfg:3: key 'on_reboot': expected a string, found 1"
    );
}

#[test]
fn uuid_and_localtime() {
    let c = cfg("uuid = '6C2A5F0e-1111-2222-3333-444455556666'\n");
    let u = c.uuid.unwrap();
    assert_eq!(u.0[0], 0x6c);
    assert_eq!(u.0[15], 0x66);
    assert_eq!(u.to_string(), "6c2a5f0e-1111-2222-3333-444455556666");
    assert_eq!(Uuid::parse(&u.to_string()), Some(u));
    for bad in [
        "6c2a5f0e-1111-2222-3333-44445555666",
        "6c2a5f0e111122223333444455556666",
        "6c2a5f0e-1111-2222-3333-44445555666g",
    ] {
        assert_eq!(
            err(&format!("uuid = '{bad}'\n")),
            format!(
                "d.cfg:3: key 'uuid': invalid uuid '{bad}': expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex)"
            )
        );
    }
    assert!(!cfg("").localtime);
    assert!(cfg("localtime = 1\n").localtime);
    assert!(cfg("localtime = True\n").localtime);
    assert!(cfg("localtime = 'yes'\n").localtime);
    assert!(!cfg("localtime = 0\n").localtime);
    assert!(!cfg("localtime = False\n").localtime);
    assert_eq!(
        err("localtime = 2\n"),
        "d.cfg:3: key 'localtime': expected a boolean (0 or 1), found 2"
    );
}

#[test]
fn unknown_keys_are_kept_and_warned() {
    let (c, w) = ok("vnc = 1\nbootloader = '/usr/bin/pygrub'\n");
    assert_eq!(c.unknown.len(), 2);
    assert_eq!(c.unknown[0].key, "vnc");
    assert_eq!(c.unknown[1].value.value.as_str(), Some("/usr/bin/pygrub"));
    let msgs: Vec<String> = w.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        msgs,
        [
            "d.cfg:3: key 'vnc': warning: unknown key, ignored",
            "d.cfg:4: key 'bootloader': warning: unknown key, ignored"
        ]
    );
}

#[test]
fn duplicate_keys_warn_through_parse() {
    let (c, w) = ok("memory = 64\nmemory = '96'\n");
    assert_eq!(c.memory_mib, 96);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].kind, WarningKind::DuplicateKey { previous_line: 3 });
    assert_eq!(w[0].location.line, Some(4));
    assert_eq!(w[0].location.key.as_deref(), Some("memory"));
}

#[test]
fn error_key_and_line_accessors() {
    let e = parse("x.cfg", "kernel = '/k'\nname = 'a'\n\nmemory = 'abc'\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.cfg:4: key 'memory': expected a number, found 'abc'"
    );
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.key(), Some("memory"));
    assert_eq!(e.location.file, "x.cfg");
}
