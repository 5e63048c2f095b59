//! The typed domain configuration built from an xm config's assignments.
//!
//! Owns the meaning of each key xm knew (see [`DomainConfig`]) and the rules xm
//! applied: `kernel` and `name` required; `memory` in MiB as a number or a string
//! holding one (default 128), `maxmem` defaulting to and raised to `memory`; `vcpus`
//! 1..=32 (the `vcpu_info` slots of `shared_info`); the kernel command line
//! assembled as xend did (`ip=... root=... <extra>`); disks and vifs typed by
//! [`crate::disk`] and [`crate::vif`]; `builder` must be `linux`. Keys not known here
//! are kept in [`DomainConfig::unknown`] with a warning, never an error. Every error
//! names the file, the line of the offending value (of the list element, for a bad
//! disk or vif) and the key.

use crate::disk::DiskSpec;
use crate::error::{ConfigError, ErrorKind, Warning, WarningKind};
use crate::parser::parse_assignments;
use crate::value::{Assignment, Assignments, Item, Value};
use crate::vif::{MacAddr, VifSpec, parse_ipv4};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;
use xen_abi::layout::XEN_LEGACY_MAX_VCPUS;

/// Memory given to a domain whose config has no `memory` key (xm's default), MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 128;
/// Largest `memory`/`maxmem`, MiB: the 64 GiB a PAE guest can address.
pub const MAX_MEMORY_MIB: u32 = 64 * 1024;
/// Largest `vcpus`: the `vcpu_info` slots of `shared_info`.
pub const MAX_VCPUS: u32 = XEN_LEGACY_MAX_VCPUS as u32;
/// Number of physical CPUs a `cpus` affinity mask can name.
pub const MAX_CPUS: u32 = 64;

/// What to do when a domain powers off, reboots or crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownAction {
    /// `destroy`: tear it down.
    Destroy,
    /// `restart`: build it again from the same config.
    Restart,
    /// `preserve`: keep it (paused, dying) for inspection.
    Preserve,
    /// `rename-restart`: keep the old one under another name and start a new one.
    RenameRestart,
    /// `coredump-destroy`: dump its memory, then destroy.
    CoredumpDestroy,
    /// `coredump-restart`: dump its memory, then restart.
    CoredumpRestart,
}

impl ShutdownAction {
    /// All actions, in xm's order.
    pub const ALL: [ShutdownAction; 6] = [
        ShutdownAction::Destroy,
        ShutdownAction::Restart,
        ShutdownAction::Preserve,
        ShutdownAction::RenameRestart,
        ShutdownAction::CoredumpDestroy,
        ShutdownAction::CoredumpRestart,
    ];

    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownAction::Destroy => "destroy",
            ShutdownAction::Restart => "restart",
            ShutdownAction::Preserve => "preserve",
            ShutdownAction::RenameRestart => "rename-restart",
            ShutdownAction::CoredumpDestroy => "coredump-destroy",
            ShutdownAction::CoredumpRestart => "coredump-restart",
        }
    }

    /// Parses the config-file spelling.
    pub fn parse(text: &str) -> Option<ShutdownAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for ShutdownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A domain handle (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Parses the 8-4-4-4-12 hex form (either case).
    pub fn parse(text: &str) -> Option<Uuid> {
        let groups: Vec<&str> = text.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if groups.len() != 5 || groups.iter().zip(lens).any(|(g, l)| g.len() != l) {
            return None;
        }
        let hex: String = groups.concat();
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Uuid(out))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A set of physical CPUs (`cpus = "0-3,^2"`), bit n = CPU n, n < [`MAX_CPUS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuSet(pub u64);

impl CpuSet {
    /// Parses xm's syntax: comma-separated `n`, `a-b` (inclusive) and `^n` (remove
    /// n, applied after every addition), spaces ignored.
    pub fn parse(text: &str) -> Result<CpuSet, String> {
        let mut add = 0u64;
        let mut remove = 0u64;
        for part in text.split(',').map(str::trim) {
            let (target, body) = match part.strip_prefix('^') {
                Some(b) => (&mut remove, b.trim()),
                None => (&mut add, part),
            };
            let (lo, hi) = match body.split_once('-') {
                Some((a, b)) => (cpu_number(a.trim(), text)?, cpu_number(b.trim(), text)?),
                None => {
                    let n = cpu_number(body, text)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("range {lo}-{hi} is backwards"));
            }
            for cpu in lo..=hi {
                *target |= 1 << cpu;
            }
        }
        let set = add & !remove;
        if set == 0 {
            return Err("selects no CPU".into());
        }
        Ok(CpuSet(set))
    }

    /// Whether CPU `cpu` is in the set.
    pub fn contains(self, cpu: u32) -> bool {
        cpu < MAX_CPUS && self.0 & (1 << cpu) != 0
    }

    /// The CPUs, ascending.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..MAX_CPUS).filter(move |&c| self.contains(c))
    }
}

fn cpu_number(text: &str, whole: &str) -> Result<u32, String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("'{text}' is not a CPU number (in '{whole}')"));
    }
    match text.parse::<u32>() {
        Ok(n) if n < MAX_CPUS => Ok(n),
        _ => Err(format!("CPU {text} is above {}", MAX_CPUS - 1)),
    }
}

/// The domain builder. xm also knew `hvm`; Oxen builds PV guests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// A PV kernel image.
    #[default]
    Linux,
}

/// Everything an xm config says about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name`: letters, digits and `_-.:/+`; not all digits (it would read as a domid).
    pub name: String,
    /// `kernel`: the PV kernel image (a path in dom0's initrd).
    pub kernel: String,
    /// `ramdisk`: initial ramdisk, if any (`''` means none, as in xm).
    pub ramdisk: Option<String>,
    /// `builder` (only `linux`).
    pub builder: Builder,
    /// `memory` in MiB.
    pub memory_mib: u32,
    /// `maxmem` in MiB, ≥ `memory_mib`.
    pub maxmem_mib: u32,
    /// `vcpus`, 1..=[`MAX_VCPUS`].
    pub vcpus: u32,
    /// `cpus` affinity, if given.
    pub cpus: Option<CpuSet>,
    /// `root`, without a `root=` prefix.
    pub root: Option<String>,
    /// `extra` kernel arguments.
    pub extra: Option<String>,
    /// The `ip=` kernel argument xm composed from `ip`, `gateway`, `netmask`,
    /// `hostname`, `interface` and `dhcp`, if any of `ip`/`dhcp` asks for it.
    pub kernel_ip: Option<String>,
    /// The guest's command line: `ip=<kernel_ip> root=<root> <extra>`, absent parts
    /// left out.
    pub cmdline: String,
    /// `disk` entries, in order.
    pub disks: Vec<DiskSpec>,
    /// `vif` entries, in order (index = vif device number).
    pub vifs: Vec<VifSpec>,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: ShutdownAction,
    /// `on_reboot` (default restart).
    pub on_reboot: ShutdownAction,
    /// `on_crash` (default restart).
    pub on_crash: ShutdownAction,
    /// `uuid`, if given.
    pub uuid: Option<Uuid>,
    /// `localtime`: the guest clock runs in local time.
    pub localtime: bool,
    /// Keys this parser does not know, as written (each was also warned about).
    pub unknown: Vec<Assignment>,
}

/// Parses an xm domain config file: the raw assignments, then their meaning.
/// Warnings (unknown keys, keys assigned twice, maxmem raised) come back with the
/// config, in line order; the first error stops the parse.
pub fn parse(file_name: &str, text: &str) -> Result<(DomainConfig, Vec<Warning>), ConfigError> {
    let (assignments, mut warnings) = parse_assignments(file_name, text)?;
    let (config, more) = DomainConfig::from_assignments(file_name, &assignments)?;
    warnings.extend(more);
    warnings.sort_by_key(|w| w.location.line);
    Ok((config, warnings))
}

/// Error construction for one assignment (file, key; line/column of a value).
struct Ctx<'a> {
    file: &'a str,
    a: &'a Assignment,
}

impl Ctx<'_> {
    fn err_at(&self, item: &Item, kind: ErrorKind) -> ConfigError {
        ConfigError::new(self.file, Some(item.line), None, Some(&self.a.key), kind)
    }

    fn err(&self, kind: ErrorKind) -> ConfigError {
        self.err_at(&self.a.value, kind)
    }

    fn invalid(&self, item: &Item, what: &'static str, value: &str, reason: String) -> ConfigError {
        self.err_at(
            item,
            ErrorKind::Invalid {
                what,
                value: value.into(),
                reason,
            },
        )
    }

    fn string_of<'i>(&self, item: &'i Item) -> Result<&'i str, ConfigError> {
        item.value.as_str().ok_or_else(|| {
            self.err_at(
                item,
                ErrorKind::ExpectedString {
                    found: item.value.repr(),
                },
            )
        })
    }

    fn string(&self) -> Result<&str, ConfigError> {
        self.string_of(&self.a.value)
    }

    /// A string that must not be empty or contain control characters.
    fn path(&self, what: &'static str) -> Result<String, ConfigError> {
        let s = self.string()?;
        if s.is_empty() {
            return Err(self.invalid(&self.a.value, what, s, "must not be empty".into()));
        }
        if s.chars().any(char::is_control) {
            return Err(self.invalid(
                &self.a.value,
                what,
                s,
                "contains a control character".into(),
            ));
        }
        Ok(s.into())
    }

    /// A number, given as an integer or as a string holding a decimal integer
    /// (Python's `int()`: surrounding blanks allowed), within `min..=max`.
    fn number(&self, min: u32, max: u32) -> Result<u32, ConfigError> {
        let expected = || {
            self.err(ErrorKind::ExpectedNumber {
                found: self.a.value.value.repr(),
            })
        };
        let n: i64 = match &self.a.value.value {
            Value::Int(i) => *i,
            Value::Str(s) => {
                let t = s.trim();
                let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
                if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                    return Err(expected());
                }
                t.parse().map_err(|_| expected())?
            }
            _ => return Err(expected()),
        };
        if n < i64::from(min) || n > i64::from(max) {
            return Err(self.err(ErrorKind::OutOfRange {
                value: n,
                min: min.into(),
                max: max.into(),
            }));
        }
        Ok(n as u32)
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        match &self.a.value.value {
            Value::Bool(b) => Ok(*b),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Str(s) if matches!(s.as_str(), "0" | "no" | "false" | "False") => Ok(false),
            Value::Str(s) if matches!(s.as_str(), "1" | "yes" | "true" | "True") => Ok(true),
            v => Err(self.err(ErrorKind::ExpectedBool { found: v.repr() })),
        }
    }

    /// The elements of a list of strings; a lone string counts as a one-element list.
    fn string_list(&self) -> Result<Vec<(&str, &Item)>, ConfigError> {
        match &self.a.value.value {
            Value::Str(s) => Ok(alloc::vec![(s.as_str(), &self.a.value)]),
            Value::List(items) => items.iter().map(|i| Ok((self.string_of(i)?, i))).collect(),
            v => Err(self.err(ErrorKind::Invalid {
                what: "list",
                value: v.repr(),
                reason: "expected a list of strings like [ '...', '...' ]".into(),
            })),
        }
    }

    fn action(&self) -> Result<ShutdownAction, ConfigError> {
        let s = self.string()?;
        ShutdownAction::parse(s).ok_or_else(|| {
            self.invalid(
                &self.a.value,
                "action",
                s,
                "expected destroy, restart, preserve, rename-restart, coredump-destroy or coredump-restart"
                    .into(),
            )
        })
    }

    fn ipv4(&self) -> Result<Option<Ipv4Addr>, ConfigError> {
        let s = self.string()?;
        if s.is_empty() {
            return Ok(None);
        }
        parse_ipv4(s)
            .map(Some)
            .map_err(|reason| self.invalid(&self.a.value, "address", s, reason))
    }
}

/// Checks a domain name: non-empty; letters, digits and `_-.:/+`; not all digits.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-.:/+".contains(*c)))
    {
        return Err(format!(
            "character {c:?} is not allowed (use letters, digits and _-.:/+)"
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return Err("all digits: xm commands would read it as a domain id".into());
    }
    Ok(())
}

/// The kernel `ip=` argument as xm composed it:
/// `<ip>:<nfs server or 1.2.3.4>:<gateway>:<netmask>:<hostname>:<interface>:<dhcp>`.
fn compose_kernel_ip(
    ip: Option<Ipv4Addr>,
    gateway: Option<Ipv4Addr>,
    netmask: Option<Ipv4Addr>,
    hostname: &str,
    interface: &str,
    dhcp: &str,
) -> Option<String> {
    if ip.is_none() && dhcp == "off" {
        return None;
    }
    let show = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
    Some(format!(
        "{}:1.2.3.4:{}:{}:{hostname}:{interface}:{dhcp}",
        show(ip),
        show(gateway),
        show(netmask)
    ))
}

/// The guest command line: `ip=<ip> root=<root> <extra>`, absent parts left out.
pub fn assemble_cmdline(
    kernel_ip: Option<&str>,
    root: Option<&str>,
    extra: Option<&str>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(ip) = kernel_ip {
        parts.push(format!("ip={ip}"));
    }
    if let Some(root) = root.filter(|r| !r.is_empty()) {
        parts.push(format!("root={root}"));
    }
    if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
        parts.push(extra.into());
    }
    parts.join(" ")
}

impl DomainConfig {
    /// Gives meaning to parsed assignments (see the module docs for the rules).
    pub fn from_assignments(
        file_name: &str,
        assignments: &Assignments,
    ) -> Result<(DomainConfig, Vec<Warning>), ConfigError> {
        let mut warnings = Vec::new();
        let mut name = None;
        let mut kernel = None;
        let mut ramdisk = None;
        let mut memory: Option<(u32, u32)> = None; // (MiB, line)
        let mut maxmem: Option<(u32, u32)> = None;
        let mut vcpus = 1;
        let mut cpus = None;
        let mut root = None;
        let mut extra = None;
        let (mut ip, mut gateway, mut netmask) = (None, None, None);
        let mut hostname = String::new();
        let mut interface = String::from("eth0");
        let mut dhcp = String::from("off");
        let mut disks: Vec<DiskSpec> = Vec::new();
        let mut vifs: Vec<VifSpec> = Vec::new();
        let mut on_poweroff = ShutdownAction::Destroy;
        let mut on_reboot = ShutdownAction::Restart;
        let mut on_crash = ShutdownAction::Restart;
        let mut uuid = None;
        let mut localtime = false;
        let mut unknown = Vec::new();

        for a in assignments {
            let c = Ctx { file: file_name, a };
            match a.key.as_str() {
                "name" => {
                    let n = c.string()?;
                    check_domain_name(n).map_err(|r| c.invalid(&a.value, "domain name", n, r))?;
                    name = Some(String::from(n));
                }
                "kernel" => kernel = Some(c.path("kernel path")?),
                "ramdisk" => {
                    ramdisk = match c.string()? {
                        "" => None,
                        _ => Some(c.path("ramdisk path")?),
                    }
                }
                "builder" => {
                    let b = c.string()?;
                    if b != "linux" {
                        return Err(c.invalid(
                            &a.value,
                            "builder",
                            b,
                            "only 'linux' is supported: Oxen runs PV guests".into(),
                        ));
                    }
                }
                "memory" => memory = Some((c.number(1, MAX_MEMORY_MIB)?, a.line)),
                "maxmem" => maxmem = Some((c.number(1, MAX_MEMORY_MIB)?, a.line)),
                "vcpus" => vcpus = c.number(1, MAX_VCPUS)?,
                "cpus" => {
                    cpus = match &a.value.value {
                        Value::Int(_) => {
                            let n = c.number(0, MAX_CPUS - 1)?;
                            Some(CpuSet(1 << n))
                        }
                        Value::Str(s) if s.trim().is_empty() => None,
                        Value::Str(s) => {
                            Some(CpuSet::parse(s).map_err(|r| c.invalid(&a.value, "cpus", s, r))?)
                        }
                        Value::List(items) => {
                            let mut set = 0u64;
                            for item in items {
                                match item.value {
                                    Value::Int(n) if (0..i64::from(MAX_CPUS)).contains(&n) => {
                                        set |= 1 << n
                                    }
                                    Value::Int(n) => {
                                        return Err(c.err_at(
                                            item,
                                            ErrorKind::OutOfRange {
                                                value: n,
                                                min: 0,
                                                max: i64::from(MAX_CPUS - 1),
                                            },
                                        ));
                                    }
                                    ref v => {
                                        return Err(c.err_at(
                                            item,
                                            ErrorKind::ExpectedNumber { found: v.repr() },
                                        ));
                                    }
                                }
                            }
                            (set != 0).then_some(CpuSet(set))
                        }
                        Value::Bool(_) => {
                            return Err(c.err(ErrorKind::ExpectedNumber {
                                found: a.value.value.repr(),
                            }));
                        }
                    }
                }
                "root" => {
                    let r = c.string()?.trim();
                    let r = r.strip_prefix("root=").unwrap_or(r);
                    root = (!r.is_empty()).then(|| String::from(r));
                }
                "extra" => extra = Some(String::from(c.string()?)),
                "ip" => ip = c.ipv4()?,
                "gateway" => gateway = c.ipv4()?,
                "netmask" => netmask = c.ipv4()?,
                "hostname" => {
                    let h = c.string()?;
                    if h.chars().any(|ch| ch.is_whitespace() || ch == ':') {
                        return Err(c.invalid(
                            &a.value,
                            "hostname",
                            h,
                            "contains a space or ':'".into(),
                        ));
                    }
                    hostname = h.into();
                }
                "interface" => {
                    let i = c.string()?;
                    crate::vif::check_ifname(i)
                        .map_err(|r| c.invalid(&a.value, "interface", i, r))?;
                    interface = i.into();
                }
                "dhcp" => {
                    let d = c.string()?;
                    if d != "off" && d != "dhcp" {
                        return Err(c.invalid(
                            &a.value,
                            "dhcp",
                            d,
                            "expected 'off' or 'dhcp'".into(),
                        ));
                    }
                    dhcp = d.into();
                }
                "disk" => {
                    disks.clear();
                    for (spec, item) in c.string_list()? {
                        let d =
                            DiskSpec::parse(spec).map_err(|r| c.invalid(item, "disk", spec, r))?;
                        if let Some(i) = disks.iter().position(|o| o.vdev == d.vdev) {
                            let reason = format!(
                                "virtual device '{}' is already used by disk {i} ('{}')",
                                d.vdev_name, disks[i].vdev_name
                            );
                            return Err(c.invalid(item, "disk", spec, reason));
                        }
                        disks.push(d);
                    }
                }
                "vif" => {
                    vifs.clear();
                    let mut macs: Vec<(MacAddr, usize)> = Vec::new();
                    for (n, (spec, item)) in c.string_list()?.into_iter().enumerate() {
                        let v =
                            VifSpec::parse(spec).map_err(|r| c.invalid(item, "vif", spec, r))?;
                        if let Some(mac) = v.mac {
                            if let Some((_, i)) = macs.iter().find(|(m, _)| *m == mac) {
                                let reason = format!("MAC {mac} is already used by vif {i}");
                                return Err(c.invalid(item, "vif", spec, reason));
                            }
                            macs.push((mac, n));
                        }
                        vifs.push(v);
                    }
                }
                "on_poweroff" => on_poweroff = c.action()?,
                "on_reboot" => on_reboot = c.action()?,
                "on_crash" => on_crash = c.action()?,
                "uuid" => {
                    let u = c.string()?;
                    uuid = Some(Uuid::parse(u).ok_or_else(|| {
                        c.invalid(
                            &a.value,
                            "uuid",
                            u,
                            "expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex)".into(),
                        )
                    })?);
                }
                "localtime" => localtime = c.boolean()?,
                _ => {
                    warnings.push(Warning::new(
                        file_name,
                        a.line,
                        &a.key,
                        WarningKind::UnknownKey,
                    ));
                    unknown.push(a.clone());
                }
            }
        }

        let missing =
            |key: &str| ConfigError::new(file_name, None, None, Some(key), ErrorKind::MissingKey);
        let name = name.ok_or_else(|| missing("name"))?;
        let kernel = kernel.ok_or_else(|| missing("kernel"))?;
        let memory_mib = memory.map_or(DEFAULT_MEMORY_MIB, |(m, _)| m);
        let maxmem_mib = match maxmem {
            None => memory_mib,
            Some((m, _)) if m >= memory_mib => m,
            Some((m, line)) => {
                warnings.push(Warning::new(
                    file_name,
                    line,
                    "maxmem",
                    WarningKind::MaxmemBelowMemory {
                        maxmem: m,
                        memory: memory_mib,
                    },
                ));
                memory_mib
            }
        };
        let kernel_ip = compose_kernel_ip(ip, gateway, netmask, &hostname, &interface, &dhcp);
        let cmdline = assemble_cmdline(kernel_ip.as_deref(), root.as_deref(), extra.as_deref());
        let config = DomainConfig {
            name,
            kernel,
            ramdisk,
            builder: Builder::Linux,
            memory_mib,
            maxmem_mib,
            vcpus,
            cpus,
            root,
            extra,
            kernel_ip,
            cmdline,
            disks,
            vifs,
            on_poweroff,
            on_reboot,
            on_crash,
            uuid,
            localtime,
            unknown,
        };
        Ok((config, warnings))
    }
}
