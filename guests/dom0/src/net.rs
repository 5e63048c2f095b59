//! dom0's network as the shell shows it: the interface configuration read
//! from `/etc/network/interfaces` (Debian's format), and `ifconfig`,
//! `route -n` and `ping` as net-tools and iputils print them.
//!
//! The stack itself (smoltcp on the virtio NIC) is the kernel's; the shell
//! reaches it through [`NetStack`], so everything here is host-tested with a
//! fake stack.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

/// An IPv4 address.
pub type Ipv4 = [u8; 4];

/// `a.b.c.d`.
pub fn ip_text(a: Ipv4) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// Parses `a.b.c.d`.
pub fn parse_ip(s: &str) -> Option<Ipv4> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The netmask of a prefix length.
pub fn netmask(prefix_len: u8) -> Ipv4 {
    let bits = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    };
    bits.to_be_bytes()
}

/// The prefix length of a netmask, if it is one (contiguous ones).
pub fn prefix_len(mask: Ipv4) -> Option<u8> {
    let bits = u32::from_be_bytes(mask);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// One statically configured interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceConfig {
    pub name: String,
    pub address: Ipv4,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4>,
}

impl IfaceConfig {
    /// The network address.
    pub fn network(&self) -> Ipv4 {
        let m = u32::from_be_bytes(netmask(self.prefix_len));
        (u32::from_be_bytes(self.address) & m).to_be_bytes()
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4 {
        let m = u32::from_be_bytes(netmask(self.prefix_len));
        (u32::from_be_bytes(self.address) | !m).to_be_bytes()
    }
}

/// Reads the static interfaces of an `/etc/network/interfaces` text
/// (`iface NAME inet static` stanzas with `address` (optionally `/len`),
/// `netmask`, `gateway`; `auto`, comments and `inet loopback` stanzas are
/// accepted and skipped). An error names the file's line and the key.
pub fn parse_interfaces(file: &str, text: &str) -> Result<Vec<IfaceConfig>, String> {
    let mut out: Vec<IfaceConfig> = Vec::new();
    // The stanza being read: (its line, config) for a static one, None for
    // one that is skipped (loopback), and no stanza before the first.
    let mut current: Option<Option<(usize, IfaceConfig, bool)>> = None;
    let finish = |cur: Option<Option<(usize, IfaceConfig, bool)>>,
                  out: &mut Vec<IfaceConfig>|
     -> Result<(), String> {
        if let Some(Some((line, cfg, has_address))) = cur {
            if !has_address {
                return Err(format!("{file}:{line}: iface {}: no address", cfg.name));
            }
            out.push(cfg);
        }
        Ok(())
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&key, args)) = words.split_first() else {
            continue;
        };
        let err = |what: &str| format!("{file}:{n}: {key}: {what}");
        match key {
            "auto" | "allow-hotplug" => {}
            "iface" => {
                finish(current.take(), &mut out)?;
                match args {
                    [name, "inet", "static"] => {
                        current = Some(Some((
                            n,
                            IfaceConfig {
                                name: name.to_string(),
                                address: [0; 4],
                                prefix_len: 24,
                                gateway: None,
                            },
                            false,
                        )))
                    }
                    [_, "inet", "loopback"] => current = Some(None),
                    [_, "inet", method] => {
                        return Err(err(&format!(
                            "method '{method}' is not supported (static, loopback)"
                        )));
                    }
                    _ => return Err(err("expected 'iface NAME inet METHOD'")),
                }
            }
            "address" | "netmask" | "gateway" => {
                let Some(Some((_, cfg, has_address))) = current.as_mut() else {
                    return Err(err("outside an 'iface ... inet static' stanza"));
                };
                let [value] = args else {
                    return Err(err("expected one value"));
                };
                match key {
                    "address" => {
                        let (addr, len) = match value.split_once('/') {
                            Some((a, l)) => {
                                let l: u8 = l
                                    .parse()
                                    .ok()
                                    .filter(|l| *l <= 32)
                                    .ok_or_else(|| err(&format!("bad prefix length '{l}'")))?;
                                (a, Some(l))
                            }
                            None => (*value, None),
                        };
                        cfg.address = parse_ip(addr)
                            .ok_or_else(|| err(&format!("'{addr}' is not an IPv4 address")))?;
                        if let Some(l) = len {
                            cfg.prefix_len = l;
                        }
                        *has_address = true;
                    }
                    "netmask" => {
                        cfg.prefix_len = parse_ip(value)
                            .and_then(prefix_len)
                            .ok_or_else(|| err(&format!("'{value}' is not a netmask")))?;
                    }
                    _ => {
                        cfg.gateway =
                            Some(parse_ip(value).ok_or_else(|| {
                                err(&format!("'{value}' is not an IPv4 address"))
                            })?);
                    }
                }
            }
            _ if current.is_some() => {} // other options of a stanza (dns-*, mtu, ...)
            _ => return Err(err("unknown keyword")),
        }
    }
    finish(current, &mut out)?;
    Ok(out)
}

/// What the stack says of an interface (for `ifconfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceInfo {
    pub config: IfaceConfig,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    /// The NIC's interrupt line, if it has one.
    pub irq: Option<u8>,
}

/// A ping that came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReply {
    pub bytes: usize,
    pub ttl: u8,
    /// Round trip in microseconds.
    pub rtt_us: u64,
}

/// dom0's network stack, as the shell uses it.
pub trait NetStack {
    /// The configured interfaces.
    fn interfaces(&self) -> Vec<IfaceInfo>;
    /// Sends ICMP echo request `seq` with `payload` bytes to `dst` and waits
    /// up to `timeout_ms` for its reply (`Ok(None)`: none came).
    fn ping(
        &mut self,
        dst: Ipv4,
        seq: u16,
        payload: usize,
        timeout_ms: u32,
    ) -> Result<Option<EchoReply>, String>;
    /// Milliseconds since boot (for the statistics line).
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds (serving the network meanwhile).
    fn sleep_ms(&mut self, ms: u32);
    /// The NIC signalled: take what arrived and answer what needs it.
    fn interrupt(&mut self);
}

/// `1.5 KiB`-style sizes as net-tools shows bytes: `(294.0 B)`, `(1.4 KiB)`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    let tenths = (v * 10.0 + 0.5) as u64;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[u])
}

/// `ifconfig`'s block for one interface (net-tools 1.60, as Debian Etch).
pub fn ifconfig_block(i: &IfaceInfo) -> String {
    let m = i.mac;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10}Link encap:Ethernet  HWaddr {:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        i.config.name, m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let _ = writeln!(
        s,
        "          inet addr:{}  Bcast:{}  Mask:{}",
        ip_text(i.config.address),
        ip_text(i.config.broadcast()),
        ip_text(netmask(i.config.prefix_len))
    );
    let _ = writeln!(
        s,
        "          UP BROADCAST RUNNING MULTICAST  MTU:{}  Metric:1",
        i.mtu
    );
    let _ = writeln!(
        s,
        "          RX packets:{} errors:0 dropped:{} overruns:0 frame:0",
        i.rx_packets, i.rx_dropped
    );
    let _ = writeln!(
        s,
        "          TX packets:{} errors:0 dropped:0 overruns:0 carrier:0",
        i.tx_packets
    );
    let _ = writeln!(s, "          collisions:0 txqueuelen:1000");
    let _ = writeln!(
        s,
        "          RX bytes:{} ({})  TX bytes:{} ({})",
        i.rx_bytes,
        human(i.rx_bytes),
        i.tx_bytes,
        human(i.tx_bytes)
    );
    if let Some(irq) = i.irq {
        let _ = writeln!(s, "          Interrupt:{irq} ");
    }
    s
}

/// `route -n`: the kernel routing table of the configured interfaces.
pub fn route_table(ifaces: &[IfaceConfig]) -> String {
    let mut s = String::from(
        "Kernel IP routing table\n\
         Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n",
    );
    let row = |s: &mut String, dst: Ipv4, gw: Ipv4, mask: Ipv4, flags: &str, iface: &str| {
        let _ = writeln!(
            s,
            "{:<16}{:<16}{:<16}{:<6}{:<7}{:<7}{:>3} {iface}",
            ip_text(dst),
            ip_text(gw),
            ip_text(mask),
            flags,
            0,
            0,
            0
        );
    };
    for i in ifaces {
        row(
            &mut s,
            i.network(),
            [0; 4],
            netmask(i.prefix_len),
            "U",
            &i.name,
        );
    }
    for i in ifaces {
        if let Some(gw) = i.gateway {
            row(&mut s, [0; 4], gw, [0; 4], "UG", &i.name);
        }
    }
    s
}

/// Milliseconds with three decimals from microseconds: `1.234`.
fn ms3(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// `ping [-c COUNT] HOST`: echo requests one second apart (4 by default:
/// the shell has no Ctrl-C for a command), printed as iputils does.
pub fn ping(net: &mut dyn NetStack, args: &[String], out: &mut dyn Write) {
    const PAYLOAD: usize = 56;
    let mut count = 4u32;
    let mut host = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" => match it.next().and_then(|c| c.parse().ok()).filter(|&c| c > 0) {
                Some(c) => count = c,
                None => {
                    let _ = writeln!(out, "ping: bad number of packets to transmit.");
                    return;
                }
            },
            h if host.is_none() && !h.starts_with('-') => host = Some(h),
            other => {
                let _ = writeln!(
                    out,
                    "ping: invalid argument '{other}'\nUsage: ping [-c count] destination"
                );
                return;
            }
        }
    }
    let Some(host) = host else {
        let _ = writeln!(out, "Usage: ping [-c count] destination");
        return;
    };
    let Some(dst) = parse_ip(host) else {
        let _ = writeln!(out, "ping: unknown host {host}");
        return;
    };
    let _ = writeln!(
        out,
        "PING {host} ({host}) {PAYLOAD}({}) bytes of data.",
        PAYLOAD + 28
    );
    let start = net.now_ms();
    let mut rtts = Vec::new();
    for seq in 1..=count {
        let sent_at = net.now_ms();
        match net.ping(dst, seq as u16, PAYLOAD, 1000) {
            Ok(Some(r)) => {
                let _ = writeln!(
                    out,
                    "{} bytes from {host}: icmp_seq={seq} ttl={} time={} ms",
                    r.bytes,
                    r.ttl,
                    ms3(r.rtt_us)
                );
                rtts.push(r.rtt_us);
            }
            Ok(None) => {}
            Err(e) => {
                let _ = writeln!(out, "ping: sendmsg: {e}");
            }
        }
        if seq < count {
            let spent = net.now_ms().saturating_sub(sent_at);
            net.sleep_ms(1000u64.saturating_sub(spent) as u32);
        }
    }
    let received = rtts.len() as u32;
    let loss = (count - received) * 100 / count;
    let _ = writeln!(out, "\n--- {host} ping statistics ---");
    let _ = writeln!(
        out,
        "{count} packets transmitted, {received} received, {loss}% packet loss, time {}ms",
        net.now_ms().saturating_sub(start)
    );
    if !rtts.is_empty() {
        let n = rtts.len() as u64;
        let min = *rtts.iter().min().unwrap_or(&0);
        let max = *rtts.iter().max().unwrap_or(&0);
        let avg = rtts.iter().sum::<u64>() / n;
        let var = rtts
            .iter()
            .map(|&r| {
                let d = r.abs_diff(avg);
                d * d
            })
            .sum::<u64>()
            / n;
        let _ = writeln!(
            out,
            "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
            ms3(min),
            ms3(avg),
            ms3(max),
            ms3(isqrt(var))
        );
    }
}

fn isqrt(v: u64) -> u64 {
    let mut x = 0u64;
    while (x + 1) * (x + 1) <= v {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const FILE: &str = "/etc/network/interfaces";

    #[test]
    fn addresses_and_masks() {
        assert_eq!(parse_ip("10.0.0.254"), Some([10, 0, 0, 254]));
        for bad in [
            "10.0.0",
            "10.0.0.256",
            "10.0.0.1.2",
            "a.b.c.d",
            "",
            "1..2.3",
            "+1.2.3.4",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
        assert_eq!(netmask(24), [255, 255, 255, 0]);
        assert_eq!(netmask(0), [0; 4]);
        assert_eq!(netmask(32), [255; 4]);
        assert_eq!(prefix_len([255, 255, 254, 0]), Some(23));
        assert_eq!(prefix_len([255, 0, 255, 0]), None);
        assert_eq!(prefix_len([0; 4]), Some(0));
        assert_eq!(prefix_len([255; 4]), Some(32));
    }

    #[test]
    fn debian_interfaces_file() {
        let text = "# comment\nauto lo\niface lo inet loopback\n\nauto eth0\n\
                    iface eth0 inet static\n  address 10.0.0.1\n  netmask 255.255.255.0\n  \
                    gateway 10.0.0.254\n  dns-nameservers 10.0.0.254\n\
                    iface eth1 inet static\n address 192.168.1.5/16\n";
        let got = parse_interfaces(FILE, text).unwrap();
        assert_eq!(
            got,
            vec![
                IfaceConfig {
                    name: "eth0".into(),
                    address: [10, 0, 0, 1],
                    prefix_len: 24,
                    gateway: Some([10, 0, 0, 254])
                },
                IfaceConfig {
                    name: "eth1".into(),
                    address: [192, 168, 1, 5],
                    prefix_len: 16,
                    gateway: None
                }
            ]
        );
        assert_eq!(got[0].network(), [10, 0, 0, 0]);
        assert_eq!(got[0].broadcast(), [10, 0, 0, 255]);
    }

    #[test]
    fn bad_lines_name_the_line_and_key() {
        for (text, want) in [
            (
                "iface eth0 inet dhcp\n",
                "/etc/network/interfaces:1: iface: method 'dhcp'",
            ),
            (
                "iface eth0\n",
                ":1: iface: expected 'iface NAME inet METHOD'",
            ),
            ("address 10.0.0.1\n", ":1: address: outside an 'iface"),
            (
                "iface eth0 inet static\naddress 10.0.0.300\n",
                ":2: address: '10.0.0.300' is not",
            ),
            (
                "iface eth0 inet static\naddress 10.0.0.1/33\n",
                ":2: address: bad prefix length '33'",
            ),
            (
                "iface eth0 inet static\naddress 10.0.0.1\nnetmask 255.0.255.0\n",
                ":3: netmask: '255.0.255.0' is not a netmask",
            ),
            (
                "iface eth0 inet static\naddress 10.0.0.1\ngateway x\n",
                ":3: gateway: 'x' is not",
            ),
            (
                "iface eth0 inet static\naddress 1.2.3.4 5\n",
                ":2: address: expected one value",
            ),
            (
                "iface eth0 inet static\nnetmask 255.0.0.0\n",
                ":1: iface eth0: no address",
            ),
            ("frob\n", ":1: frob: unknown keyword"),
        ] {
            let e = parse_interfaces(FILE, text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    fn info() -> IfaceInfo {
        IfaceInfo {
            config: IfaceConfig {
                name: "eth0".into(),
                address: [10, 0, 0, 1],
                prefix_len: 24,
                gateway: Some([10, 0, 0, 254]),
            },
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            mtu: 1500,
            rx_packets: 3,
            rx_bytes: 1500,
            tx_packets: 4,
            tx_bytes: 294,
            rx_dropped: 0,
            irq: Some(11),
        }
    }

    #[test]
    fn ifconfig_and_route_as_net_tools() {
        assert_eq!(
            ifconfig_block(&info()),
            "eth0      Link encap:Ethernet  HWaddr 52:54:00:12:34:56\n\
             \x20         inet addr:10.0.0.1  Bcast:10.0.0.255  Mask:255.255.255.0\n\
             \x20         UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1\n\
             \x20         RX packets:3 errors:0 dropped:0 overruns:0 frame:0\n\
             \x20         TX packets:4 errors:0 dropped:0 overruns:0 carrier:0\n\
             \x20         collisions:0 txqueuelen:1000\n\
             \x20         RX bytes:1500 (1.5 KiB)  TX bytes:294 (294.0 B)\n\
             \x20         Interrupt:11 \n"
        );
        assert_eq!(
            route_table(&[info().config]),
            "Kernel IP routing table\n\
             Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n\
             10.0.0.0        0.0.0.0         255.255.255.0   U     0      0        0 eth0\n\
             0.0.0.0         10.0.0.254      0.0.0.0         UG    0      0        0 eth0\n"
        );
    }

    /// Replies to every other echo (or none), 1.5 ms after it; time moves
    /// only when the stack is used.
    struct Fake {
        now_ms: u64,
        answer: fn(u16) -> bool,
        sent: Vec<(Ipv4, u16, usize)>,
    }

    impl NetStack for Fake {
        fn interfaces(&self) -> Vec<IfaceInfo> {
            vec![info()]
        }
        fn ping(
            &mut self,
            dst: Ipv4,
            seq: u16,
            payload: usize,
            timeout_ms: u32,
        ) -> Result<Option<EchoReply>, String> {
            self.sent.push((dst, seq, payload));
            if (self.answer)(seq) {
                self.now_ms += 1;
                Ok(Some(EchoReply {
                    bytes: payload + 8,
                    ttl: 255,
                    rtt_us: 1000 + u64::from(seq) * 500,
                }))
            } else {
                self.now_ms += u64::from(timeout_ms);
                Ok(None)
            }
        }
        fn now_ms(&self) -> u64 {
            self.now_ms
        }
        fn sleep_ms(&mut self, ms: u32) {
            self.now_ms += u64::from(ms);
        }
        fn interrupt(&mut self) {}
    }

    fn run(answer: fn(u16) -> bool, args: &[&str]) -> (String, Vec<(Ipv4, u16, usize)>) {
        let mut f = Fake {
            now_ms: 0,
            answer,
            sent: Vec::new(),
        };
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = String::new();
        ping(&mut f, &args, &mut out);
        (out, f.sent)
    }

    #[test]
    fn ping_prints_replies_and_statistics() {
        let (out, sent) = run(|_| true, &["-c", "2", "10.0.0.254"]);
        assert_eq!(
            out,
            "PING 10.0.0.254 (10.0.0.254) 56(84) bytes of data.\n\
             64 bytes from 10.0.0.254: icmp_seq=1 ttl=255 time=1.500 ms\n\
             64 bytes from 10.0.0.254: icmp_seq=2 ttl=255 time=2.000 ms\n\
             \n--- 10.0.0.254 ping statistics ---\n\
             2 packets transmitted, 2 received, 0% packet loss, time 1001ms\n\
             rtt min/avg/max/mdev = 1.500/1.750/2.000/0.250 ms\n"
        );
        assert_eq!(
            sent,
            vec![([10, 0, 0, 254], 1, 56), ([10, 0, 0, 254], 2, 56)]
        );
    }

    #[test]
    fn ping_counts_losses() {
        let (out, sent) = run(|seq| seq % 2 == 1, &["10.0.0.9"]);
        assert_eq!(sent.len(), 4);
        assert!(
            out.contains("4 packets transmitted, 2 received, 50% packet loss"),
            "{out}"
        );
        let (out, _) = run(|_| false, &["-c", "1", "10.0.0.9"]);
        assert!(
            out.contains("1 packets transmitted, 0 received, 100% packet loss"),
            "{out}"
        );
        assert!(!out.contains("rtt"), "{out}");
    }

    #[test]
    fn ping_refuses_bad_arguments() {
        for (args, want) in [
            (&[][..], "Usage: ping"),
            (&["-c", "0", "10.0.0.1"][..], "bad number of packets"),
            (&["-c", "x", "10.0.0.1"][..], "bad number of packets"),
            (&["-c"][..], "bad number of packets"),
            (&["nosuch.example"][..], "ping: unknown host nosuch.example"),
            (&["-q", "10.0.0.1"][..], "invalid argument '-q'"),
            (&["10.0.0.1", "10.0.0.2"][..], "invalid argument '10.0.0.2'"),
        ] {
            let (out, sent) = run(|_| true, args);
            assert!(out.contains(want), "{args:?}: {out}");
            assert!(sent.is_empty(), "{args:?} sent");
        }
    }
}
