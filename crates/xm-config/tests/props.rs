//! Property tests: no input makes any parser panic, and generated files round-trip.

use proptest::prelude::*;
use std::fmt::Write;
use std::net::Ipv4Addr;
use xm_config::{
    CpuSet, DiskMode, DiskSpec, MacAddr, Rate, ShutdownAction, Value, VifSpec, parse,
    parse_assignments, parse_xend_config,
};

/// A value without positions, for comparisons.
#[derive(Debug, Clone, PartialEq)]
enum Plain {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Plain>),
}

fn plain(v: &Value) -> Plain {
    match v {
        Value::Str(s) => Plain::Str(s.clone()),
        Value::Int(i) => Plain::Int(*i),
        Value::Bool(b) => Plain::Bool(*b),
        Value::List(items) => Plain::List(items.iter().map(|i| plain(&i.value)).collect()),
    }
}

/// Writes `s` as a Python literal in quoting `style` (0 ', 1 ", 2 ''', 3 """).
fn quote(s: &str, style: u8) -> String {
    let (q, triple) = match style % 4 {
        0 => ('\'', false),
        1 => ('"', false),
        2 => ('\'', true),
        _ => ('"', true),
    };
    let mut out = String::new();
    let delim: String = std::iter::repeat_n(q, if triple { 3 } else { 1 }).collect();
    out.push_str(&delim);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' if triple => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str(&delim);
    out
}

fn render(v: &Plain, style: u8, out: &mut String) {
    match v {
        Plain::Str(s) => {
            // Sometimes as two adjacent literals, which Python concatenates.
            let split = s.char_indices().nth(s.chars().count() / 2).map(|(i, _)| i);
            match split {
                Some(i) if style & 4 != 0 && i > 0 => {
                    out.push_str(&quote(&s[..i], style));
                    out.push(' ');
                    out.push_str(&quote(&s[i..], style.wrapping_add(1)));
                }
                _ => out.push_str(&quote(s, style)),
            }
        }
        Plain::Int(i) if *i >= 0 && style & 8 != 0 => {
            let _ = write!(out, "{i:#x}");
        }
        Plain::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Plain::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Plain::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if style & 16 != 0 {
                    out.push_str("  # element\n   ");
                }
                render(item, style.wrapping_add(n as u8), out);
                if n + 1 < items.len() || style & 32 != 0 {
                    out.push(',');
                }
                out.push(' ');
            }
            out.push(']');
        }
    }
}

fn plain_value() -> impl Strategy<Value = Plain> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Plain::Str),
        // The characters that need escaping or mean something to the parser.
        "([a-z'\"\\\\\t\n\r #,=\\[\\]]|''|\"\"\"){0,12}".prop_map(Plain::Str),
        (i64::MIN + 1..=i64::MAX).prop_map(Plain::Int),
        any::<bool>().prop_map(Plain::Bool),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Plain::List)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_assignments("f.cfg", &text);
        let _ = parse("f.cfg", &text);
        let _ = parse_xend_config("f.sxp", &text);
        let _ = DiskSpec::parse(&text);
        let _ = VifSpec::parse(&text);
        let _ = CpuSet::parse(&text);
        let _ = Rate::parse(&text);
        let _ = MacAddr::parse(&text);
    }

    #[test]
    fn config_shaped_text_never_panics(
        text in "([a-z_]{1,8}|[ =\\[\\],'\"#\\n\\\\()x0-9:-]|'''|disk|vif|memory|name|kernel|cpus|True|0x|\\^){0,60}"
    ) {
        let _ = parse("f.cfg", &text);
        let _ = parse_xend_config("f.sxp", &text);
        if let Err(e) = parse_assignments("f.cfg", &text) {
            // Every error points at a real line of the input.
            let lines = text.split('\n').count() as u32;
            let line = e.line().expect("syntax errors have a line");
            prop_assert!(line >= 1 && line <= lines, "{e} ({lines} lines)");
            prop_assert!(e.to_string().starts_with("f.cfg:"));
        }
    }

    #[test]
    fn raw_values_round_trip(
        values in prop::collection::vec(plain_value(), 1..6),
        styles in prop::collection::vec(any::<u8>(), 6),
    ) {
        let mut text = String::from("# generated\n");
        for (n, v) in values.iter().enumerate() {
            let _ = write!(text, "key{n} = ");
            render(v, styles[n], &mut text);
            text.push_str(if styles[n] & 64 != 0 { "   # trailing comment\n\n" } else { "\n" });
        }
        let (map, warnings) = parse_assignments("g.cfg", &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(map.len(), values.len());
        for (n, v) in values.iter().enumerate() {
            let got = map.value(&format!("key{n}")).map(plain);
            prop_assert_eq!(got.as_ref(), Some(v), "{}", text);
        }
    }

    #[test]
    fn generated_domain_config_round_trips(
        name in "[A-Za-z_][A-Za-z0-9_.:+-]{0,15}",
        kernel in "/[a-z0-9._-]{1,10}(/[a-z0-9._-]{1,10}){0,3}",
        memory in 1u32..=65536,
        memory_as_string in any::<bool>(),
        vcpus in 1u32..=32,
        root in proptest::option::of("/dev/[a-z]{3}[1-9]( ro)?"),
        extra in proptest::option::of("[a-z0-9=]{1,8}( [a-z0-9=]{1,8}){0,3}"),
        disks in prop::collection::btree_map(0u32..26, (any::<bool>(), "[a-z0-9]{1,8}", 0u8..3), 0..5),
        vifs in prop::collection::btree_map(any::<[u8; 5]>(), proptest::option::of(any::<[u8; 4]>()), 0..4),
        actions in (0usize..6, 0usize..6, 0usize..6),
        style in any::<u8>(),
    ) {
        let q = |s: &str| quote(s, style);
        let mut text = String::new();
        let _ = writeln!(text, "kernel = {}  # kernel", q(&kernel));
        if memory_as_string {
            let _ = writeln!(text, "memory = {}", q(&memory.to_string()));
        } else {
            let _ = writeln!(text, "memory = {memory}");
        }
        let _ = writeln!(text, "vcpus = {vcpus}");
        let _ = writeln!(text, "name = {}", q(&name));
        if let Some(r) = &root { let _ = writeln!(text, "root = {}", q(r)); }
        if let Some(e) = &extra { let _ = writeln!(text, "extra = {}", q(e)); }
        let modes = ["r", "w", "w!"];
        let disk_specs: Vec<String> = disks.iter().map(|(letter, (phy, file, mode))| {
            let dev = char::from(b'a' + *letter as u8);
            if *phy {
                format!("phy:/dev/vg/{file},xvd{dev},{}", modes[*mode as usize])
            } else {
                format!("file:/vm/{file}.img, xvd{dev}1, {}", modes[*mode as usize])
            }
        }).collect();
        text.push_str("disk = [\n");
        for d in &disk_specs { let _ = writeln!(text, "    {},", q(d)); }
        text.push_str("]\n");
        // Unicast MACs: first octet 0x00, rest generated (map keys keep them distinct).
        let vif_specs: Vec<(MacAddr, Option<Ipv4Addr>, String)> = vifs.iter().map(|(m, ip)| {
            let mac = MacAddr([0, m[0], m[1], m[2], m[3], m[4]]);
            let ip = ip.map(Ipv4Addr::from);
            let spec = match ip {
                Some(ip) => format!("mac={mac}, ip={ip}"),
                None => format!("mac={mac}"),
            };
            (mac, ip, spec)
        }).collect();
        let vif_list: Vec<String> = vif_specs.iter().map(|(_, _, s)| q(s)).collect();
        let _ = writeln!(text, "vif = [ {} ]", vif_list.join(", "));
        let all = ShutdownAction::ALL;
        let _ = writeln!(text, "on_poweroff = {}", q(all[actions.0].as_str()));
        let _ = writeln!(text, "on_reboot = {}", q(all[actions.1].as_str()));
        let _ = writeln!(text, "on_crash = {}", q(all[actions.2].as_str()));

        let (c, warnings) = parse("gen.cfg", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(&c.name, &name);
        prop_assert_eq!(&c.kernel, &kernel);
        prop_assert_eq!(c.memory_mib, memory);
        prop_assert_eq!(c.maxmem_mib, memory);
        prop_assert_eq!(c.vcpus, vcpus);
        prop_assert_eq!(&c.root, &root);
        prop_assert_eq!(&c.extra, &extra);
        let want_cmdline: Vec<String> = root.iter().map(|r| format!("root={r}")).chain(extra.clone()).collect();
        prop_assert_eq!(c.cmdline, want_cmdline.join(" "));
        prop_assert_eq!(c.disks.len(), disks.len());
        for (d, (letter, (phy, file, mode))) in c.disks.iter().zip(&disks) {
            let want_mode = [DiskMode::Read, DiskMode::Write, DiskMode::WriteShared][*mode as usize];
            prop_assert_eq!(d.mode, want_mode);
            let part = u32::from(!*phy);
            prop_assert_eq!(d.vdev, xen_abi::blkif::xvd_devid(*letter, part));
            if *phy {
                prop_assert_eq!(&d.target, &format!("/dev/vg/{file}"));
            } else {
                prop_assert_eq!(&d.target, &format!("/vm/{file}.img"));
            }
        }
        prop_assert_eq!(c.vifs.len(), vif_specs.len());
        for (v, (mac, ip, _)) in c.vifs.iter().zip(&vif_specs) {
            prop_assert_eq!(v.mac, Some(*mac));
            prop_assert_eq!(&v.ips, &ip.iter().copied().collect::<Vec<_>>());
        }
        prop_assert_eq!((c.on_poweroff, c.on_reboot, c.on_crash), (all[actions.0], all[actions.1], all[actions.2]));
    }

    #[test]
    fn cpuset_parse_matches_listed_cpus(cpus in prop::collection::btree_set(0u32..64, 1..10)) {
        let text: Vec<String> = cpus.iter().map(u32::to_string).collect();
        let set = CpuSet::parse(&text.join(",")).unwrap();
        prop_assert_eq!(set.iter().collect::<Vec<_>>(), cpus.into_iter().collect::<Vec<_>>());
    }
}
