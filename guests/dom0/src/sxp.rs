//! S-expressions as xm printed them, and the domain configuration in that form
//! (what `xm create --dry-run` shows: `(vm (name brun) (memory 64) ...)`).
//!
//! Rules of the printed form: an atom is written bare unless it is empty or
//! holds a blank, a parenthesis, a quote, a backslash or starts with `#`; then
//! it is single-quoted with `\\`, `\'`, `\n`, `\t`, `\r` escapes (what
//! `xm_config::parse_sxp` reads back). [`Sx::pretty`] keeps a list on one line
//! when it fits in [`WIDTH`] columns or holds only atoms, and otherwise puts
//! each element on its own line, indented by four, with the closing
//! parenthesis under the opening one.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use xm_config::{DeviceType, DiskBackend, DiskMode, DiskSpec, DomainConfig, VifSpec};

/// Column limit of the pretty-printed form.
pub const WIDTH: usize = 80;

/// An S-expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sx {
    Atom(String),
    List(Vec<Sx>),
}

/// `(name value...)` with atom values.
pub fn entry(name: &str, value: impl ToString) -> Sx {
    Sx::List(vec![atom(name), atom(value)])
}

/// An atom.
pub fn atom(text: impl ToString) -> Sx {
    Sx::Atom(text.to_string())
}

/// `(name children...)`.
pub fn list(name: &str, children: Vec<Sx>) -> Sx {
    let mut items = vec![atom(name)];
    items.extend(children);
    Sx::List(items)
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text.starts_with('#')
        || text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '\'' | '"' | '\\'))
}

fn write_atom(out: &mut String, text: &str) {
    if !needs_quotes(text) {
        out.push_str(text);
        return;
    }
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

impl Sx {
    /// The one-line form.
    pub fn flat(&self) -> String {
        let mut out = String::new();
        self.write_flat(&mut out);
        out
    }

    fn write_flat(&self, out: &mut String) {
        match self {
            Sx::Atom(t) => write_atom(out, t),
            Sx::List(items) => {
                out.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_flat(out);
                }
                out.push(')');
            }
        }
    }

    /// The pretty-printed form (no trailing newline).
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, indent: usize) {
        let flat = self.flat();
        let items = match self {
            Sx::List(items)
                if indent + flat.len() > WIDTH
                    && items.iter().any(|i| matches!(i, Sx::List(_))) =>
            {
                items
            }
            _ => {
                out.push_str(&flat);
                return;
            }
        };
        out.push('(');
        // The head (an atom naming the list) stays on the opening line.
        let rest = match &items[0] {
            Sx::Atom(t) => {
                write_atom(out, t);
                &items[1..]
            }
            Sx::List(_) => &items[..],
        };
        for item in rest {
            out.push('\n');
            let _ = write!(out, "{:1$}", "", indent + 4);
            item.write_pretty(out, indent + 4);
        }
        out.push('\n');
        let _ = write!(out, "{:1$})", "", indent);
    }
}

fn uname(d: &DiskSpec) -> String {
    match &d.backend {
        DiskBackend::Phy => format!("phy:{}", d.target),
        DiskBackend::File => format!("file:{}", d.target),
        DiskBackend::Tap(driver) => format!("tap:{driver}:{}", d.target),
    }
}

/// `(device (vbd (uname ...) (dev ...) (mode ...) [(backend ...)]))`.
pub fn vbd(d: &DiskSpec) -> Sx {
    let dev = match d.device_type {
        DeviceType::Disk => d.vdev_name.clone(),
        DeviceType::Cdrom => format!("{}:cdrom", d.vdev_name),
    };
    let mode = match d.mode {
        DiskMode::Read => "r",
        DiskMode::Write => "w",
        DiskMode::WriteShared => "w!",
    };
    let mut v = vec![
        entry("uname", uname(d)),
        entry("dev", dev),
        entry("mode", mode),
    ];
    if let Some(b) = &d.backend_domain {
        v.push(entry("backend", b));
    }
    list("device", vec![list("vbd", v)])
}

/// `(device (vif [(mac ...)] [(ip ...)] ...))`.
pub fn vif(v: &VifSpec) -> Sx {
    let mut items = Vec::new();
    if let Some(mac) = &v.mac {
        items.push(entry("mac", mac));
    }
    if !v.ips.is_empty() {
        let ips: Vec<String> = v.ips.iter().map(|ip| ip.to_string()).collect();
        items.push(entry("ip", ips.join(" ")));
    }
    for (key, value) in [
        ("bridge", &v.bridge),
        ("script", &v.script),
        ("vifname", &v.vifname),
        ("backend", &v.backend),
    ] {
        if let Some(value) = value {
            items.push(entry(key, value));
        }
    }
    if let Some(r) = &v.rate {
        items.push(entry(
            "rate",
            format!("{}B/s@{}us", r.bytes_per_sec, r.window_us),
        ));
    }
    list("device", vec![list("vif", items)])
}

/// A CPU set in xm's syntax: ascending numbers and `a-b` ranges.
fn cpu_list(cpus: xm_config::CpuSet) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for c in cpus.iter() {
        run = match run {
            Some((a, b)) if b + 1 == c => Some((a, c)),
            Some((a, b)) => {
                parts.push(range(a, b));
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some((a, b)) = run {
        parts.push(range(a, b));
    }
    parts.join(",")
}

fn range(a: u32, b: u32) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("{a}-{b}")
    }
}

/// The domain configuration as xm's `(vm ...)` expression.
pub fn domain(cfg: &DomainConfig) -> Sx {
    let mut vm = vec![entry("name", &cfg.name), entry("memory", cfg.memory_mib)];
    if cfg.maxmem_mib != cfg.memory_mib {
        vm.push(entry("maxmem", cfg.maxmem_mib));
    }
    vm.push(entry("vcpus", cfg.vcpus));
    if let Some(cpus) = cfg.cpus {
        vm.push(entry("cpus", cpu_list(cpus)));
    }
    if let Some(uuid) = &cfg.uuid {
        vm.push(entry("uuid", uuid));
    }
    vm.push(entry("on_poweroff", cfg.on_poweroff));
    vm.push(entry("on_reboot", cfg.on_reboot));
    vm.push(entry("on_crash", cfg.on_crash));
    if cfg.localtime {
        vm.push(entry("localtime", 1));
    }
    let mut linux = vec![entry("kernel", &cfg.kernel)];
    if let Some(r) = &cfg.ramdisk {
        linux.push(entry("ramdisk", r));
    }
    if let Some(ip) = &cfg.kernel_ip {
        linux.push(entry("ip", ip));
    }
    if let Some(root) = &cfg.root {
        linux.push(entry("root", root));
    }
    if let Some(extra) = &cfg.extra {
        linux.push(entry("args", extra));
    }
    vm.push(list("image", vec![list("linux", linux)]));
    vm.extend(cfg.disks.iter().map(vbd));
    vm.extend(cfg.vifs.iter().map(vif));
    list("vm", vm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xm_config::Sexp;

    use crate::testing::BRUN;

    /// Back from `xm_config`'s sxp reader to our tree (positions dropped).
    fn from_sexp(s: &Sexp) -> Sx {
        match s {
            Sexp::Atom { text, .. } => Sx::Atom(text.clone()),
            Sexp::List { items, .. } => Sx::List(items.iter().map(from_sexp).collect()),
        }
    }

    fn reparse(text: &str) -> Sx {
        let parsed = xm_config::parse_sxp("dry-run", text).expect("xm's reader accepts it");
        assert_eq!(parsed.len(), 1);
        from_sexp(&parsed[0])
    }

    #[test]
    fn brun_dry_run_expression() {
        let (cfg, _) = xm_config::parse("brun.cfg", BRUN).unwrap();
        let sx = domain(&cfg);
        assert_eq!(
            sx.flat(),
            "(vm (name brun) (memory 64) (vcpus 1) (on_poweroff destroy) \
             (on_reboot restart) (on_crash restart) \
             (image (linux (kernel /boot/vmlinuz-2.6.18-4-xen-686) (root '/dev/sda1 ro'))) \
             (device (vbd (uname file:/vm/domains/brun/disk.img) (dev sda1) (mode w))) \
             (device (vbd (uname file:/vm/domains/brun/swap.img) (dev sda2) (mode w))) \
             (device (vif (ip 10.0.0.2))))"
        );
        let pretty = sx.pretty();
        assert!(pretty.starts_with("(vm\n    (name brun)\n    (memory 64)\n"));
        assert!(pretty.ends_with("\n)"));
        assert!(pretty.contains("\n    (device (vif (ip 10.0.0.2)))\n"));
        assert!(pretty.lines().all(|l| l.len() <= WIDTH), "{pretty}");
        assert_eq!(reparse(&pretty), sx);
    }

    #[test]
    fn optional_settings_appear_only_when_set() {
        let text = "name='web'\nkernel='/boot/k'\nmemory=128\nmaxmem=256\nvcpus=2\n\
                    cpus='0-2,^1,5'\nramdisk='/boot/i'\nextra='console=hvc0 quiet'\n\
                    uuid='12345678-9abc-def0-1234-56789abcdef0'\nlocaltime=1\n\
                    disk=['phy:/dev/vg/web,xvda,r', 'tap:aio:/img/cd.iso,hdb:cdrom,r,dom1']\n\
                    vif=['mac=00:16:3e:00:00:01,bridge=xenbr0,ip=10.0.0.3 10.0.0.4,rate=1MB/s@20ms']\n";
        let (cfg, _) = xm_config::parse("web.cfg", text).unwrap();
        let flat = domain(&cfg).flat();
        for want in [
            "(maxmem 256)",
            "(vcpus 2)",
            "(cpus 0,2,5)",
            "(uuid 12345678-9abc-def0-1234-56789abcdef0)",
            "(localtime 1)",
            "(ramdisk /boot/i)",
            "(args 'console=hvc0 quiet')",
            "(vbd (uname phy:/dev/vg/web) (dev xvda) (mode r))",
            "(vbd (uname tap:aio:/img/cd.iso) (dev hdb:cdrom) (mode r) (backend dom1))",
            "(vif (mac 00:16:3e:00:00:01) (ip '10.0.0.3 10.0.0.4') (bridge xenbr0) \
             (rate 1000000B/s@20000us))",
        ] {
            assert!(flat.contains(want), "{want} missing from {flat}");
        }
        assert!(!flat.contains("(root"));
        let (plain, _) = xm_config::parse("p.cfg", "name='p'\nkernel='/k'\n").unwrap();
        let flat = domain(&plain).flat();
        for absent in [
            "(maxmem",
            "(cpus",
            "(uuid",
            "(localtime",
            "(ramdisk",
            "(args",
            "(device",
        ] {
            assert!(!flat.contains(absent), "{absent} in {flat}");
        }
        assert!(flat.contains("(memory 128)"), "xm's default memory");
    }

    #[test]
    fn atoms_are_quoted_only_when_needed() {
        assert_eq!(atom("plain/path:1").flat(), "plain/path:1");
        assert_eq!(atom("").flat(), "''");
        assert_eq!(atom("a b").flat(), "'a b'");
        assert_eq!(atom("it's").flat(), r"'it\'s'");
        assert_eq!(atom("back\\slash").flat(), r"'back\\slash'");
        assert_eq!(atom("#x").flat(), "'#x'");
        assert_eq!(atom("(x)").flat(), "'(x)'");
        assert_eq!(atom("a\nb").flat(), r"'a\nb'");
    }

    #[test]
    fn short_lists_stay_on_one_line() {
        let sx = list("vm", vec![entry("name", "x")]);
        assert_eq!(sx.pretty(), "(vm (name x))");
        let long = list("vm", vec![entry("name", "x".repeat(90))]);
        assert_eq!(
            long.pretty(),
            format!("(vm\n    (name {})\n)", "x".repeat(90))
        );
        // Only atoms: never broken, however long.
        let atoms = list("args", vec![atom("y".repeat(90)), atom("z")]);
        assert_eq!(atoms.pretty(), atoms.flat());
    }

    use proptest::prelude::*;

    fn arb_sx() -> impl Strategy<Value = Sx> {
        let leaf = "[ -~\n\t]{0,12}".prop_map(Sx::Atom);
        leaf.prop_recursive(4, 40, 6, |inner| {
            proptest::collection::vec(inner, 1..6).prop_map(Sx::List)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the atoms hold, xm's reader gets the same tree back from
        /// both printed forms.
        #[test]
        fn printed_forms_read_back(items in proptest::collection::vec(arb_sx(), 1..6)) {
            let sx = list("vm", items);
            prop_assert_eq!(reparse(&sx.flat()), sx.clone());
            prop_assert_eq!(reparse(&sx.pretty()), sx);
        }
    }
}
