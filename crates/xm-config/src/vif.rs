//! Network interface entries of the `vif = [...]` list.
//!
//! Owns the xm vif specification: comma-separated `option=value` pairs (spaces
//! around them ignored; the empty string `''` is a vif with every default) with the
//! options `mac`, `ip` (one or more IPv4 addresses separated by spaces), `bridge`,
//! `script`, `vifname`, `backend` and `rate`. Like xm, an unknown option is an error.
//! Invariants of a parsed [`VifSpec`]: a MAC is a unicast address of six octets,
//! every IP is a dotted quad of decimal octets ≤ 255 without leading zeros, interface
//! names fit Linux's 15 characters.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Parses `aa:bb:cc:dd:ee:ff` (hex digits in either case); rejects multicast
    /// addresses (bit 0 of the first octet), which no interface may own.
    pub fn parse(text: &str) -> Result<MacAddr, String> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in text.split(':') {
            if n == 6 || part.len() != 2 || !part.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "MAC address '{text}' is not six hex octets like 00:16:3e:00:00:01"
                ));
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC '{text}'"))?;
            n += 1;
        }
        if n != 6 {
            return Err(format!(
                "MAC address '{text}' is not six hex octets like 00:16:3e:00:00:01"
            ));
        }
        if out[0] & 1 != 0 {
            return Err(format!("MAC address '{text}' is a multicast address"));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Parses a dotted-quad IPv4 address strictly (no leading zeros, octets ≤ 255).
pub fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    let bad = || format!("'{text}' is not an IPv4 address like 10.0.0.2");
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in text.split('.') {
        if n == 4 || part.is_empty() || part.len() > 3 || !part.chars().all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!(
                "'{text}' has an octet with a leading zero (ambiguous: octal?)"
            ));
        }
        octets[n] = part
            .parse()
            .map_err(|_| format!("'{text}' has an octet above 255"))?;
        n += 1;
    }
    if n != 4 {
        return Err(bad());
    }
    Ok(Ipv4Addr::from(octets))
}

/// Checks a Linux interface name (bridge, vifname): 1–15 characters, none of them
/// whitespace, `/` or `:`.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 15 {
        return Err(format!(
            "interface name '{name}' must have 1 to 15 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '/' || *c == ':')
    {
        return Err(format!("interface name '{name}' contains {c:?}"));
    }
    Ok(())
}

/// Default credit window of xend's rate limiting: 50 ms.
pub const DEFAULT_RATE_WINDOW_US: u64 = 50_000;

/// A transmit rate limit, `rate=10Mb/s` or `rate=1MB/s@20ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bytes per second.
    pub bytes_per_sec: u64,
    /// Credit replenish window in microseconds.
    pub window_us: u64,
}

impl Rate {
    /// Parses `<n>[K|M|G](B|b)/s[@<n>(s|ms|us)]` (B = bytes, b = bits, units ×1000).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("rate '{text}' is not like '10Mb/s' or '1MB/s@20ms'");
        let (amount, window) = match text.split_once('@') {
            Some((a, w)) => (a, Some(w)),
            None => (text, None),
        };
        let amount = amount.strip_suffix("/s").ok_or_else(bad)?;
        let (amount, bits) = if let Some(a) = amount.strip_suffix('b') {
            (a, true)
        } else {
            (amount.strip_suffix('B').ok_or_else(bad)?, false)
        };
        let (digits, scale) = match amount.as_bytes().last() {
            Some(b'K') => (&amount[..amount.len() - 1], 1_000),
            Some(b'M') => (&amount[..amount.len() - 1], 1_000_000),
            Some(b'G') => (&amount[..amount.len() - 1], 1_000_000_000),
            _ => (amount, 1),
        };
        let n = parse_u64(digits).ok_or_else(bad)?;
        let per_sec = n.checked_mul(scale).ok_or_else(bad)?;
        let bytes_per_sec = if bits { per_sec / 8 } else { per_sec };
        let window_us = match window {
            None => DEFAULT_RATE_WINDOW_US,
            Some(w) => {
                let (digits, scale) = if let Some(d) = w.strip_suffix("us") {
                    (d, 1)
                } else if let Some(d) = w.strip_suffix("ms") {
                    (d, 1_000)
                } else {
                    (w.strip_suffix('s').ok_or_else(bad)?, 1_000_000)
                };
                parse_u64(digits)
                    .and_then(|v| v.checked_mul(scale))
                    .ok_or_else(bad)?
            }
        };
        if bytes_per_sec == 0 || window_us == 0 {
            return Err(format!("rate '{text}' must be above zero"));
        }
        Ok(Rate {
            bytes_per_sec,
            window_us,
        })
    }
}

fn parse_u64(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One parsed vif entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VifSpec {
    /// `mac=`; `None` lets the toolstack pick one (xend used 00:16:3e:xx:xx:xx).
    pub mac: Option<MacAddr>,
    /// `ip=` addresses (for vif-route / vif-nat and antispoofing).
    pub ips: Vec<Ipv4Addr>,
    /// `bridge=` to join (bridge mode); `None` = the default bridge.
    pub bridge: Option<String>,
    /// `script=` hotplug script name; `None` = xend's `vif-script`.
    pub script: Option<String>,
    /// `vifname=` backend interface name; `None` = `vif<domid>.<n>`.
    pub vifname: Option<String>,
    /// `backend=` domain (name or id); `None` = dom0.
    pub backend: Option<String>,
    /// `rate=` transmit limit.
    pub rate: Option<Rate>,
}

impl VifSpec {
    /// Parses one xm vif specification; the error is the reason it is rejected.
    pub fn parse(spec: &str) -> Result<VifSpec, String> {
        let mut vif = VifSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for option in spec.split(',').map(str::trim) {
            if option.is_empty() {
                if spec.trim().is_empty() {
                    break;
                }
                return Err("empty option (two commas in a row?)".into());
            }
            let Some((key, value)) = option.split_once('=') else {
                return Err(format!("option '{option}' is not 'name=value'"));
            };
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(format!("option '{key}' given twice"));
            }
            seen.push(key);
            if value.is_empty() {
                return Err(format!("option '{key}' has an empty value"));
            }
            match key {
                "mac" => vif.mac = Some(MacAddr::parse(value)?),
                "ip" => {
                    vif.ips = value
                        .split_ascii_whitespace()
                        .map(parse_ipv4)
                        .collect::<Result<_, _>>()?
                }
                "bridge" => {
                    check_ifname(value)?;
                    vif.bridge = Some(value.into());
                }
                "vifname" => {
                    check_ifname(value)?;
                    vif.vifname = Some(value.into());
                }
                "script" => {
                    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(format!("script '{value}' contains a space"));
                    }
                    vif.script = Some(value.into());
                }
                "backend" => vif.backend = Some(value.to_string()),
                "rate" => vif.rate = Some(Rate::parse(value)?),
                "type" | "model" => {
                    return Err(format!(
                        "option '{key}' is for HVM guests; Oxen runs PV guests"
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown option '{other}' (mac, ip, bridge, script, vifname, backend, rate)"
                    ));
                }
            }
        }
        Ok(vif)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn tutorial_vif_and_defaults() {
        let v = VifSpec::parse("ip=10.0.0.2").unwrap();
        assert_eq!(v.ips, vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(v.mac, None);
        assert_eq!(VifSpec::parse("").unwrap(), VifSpec::default());
        assert_eq!(VifSpec::parse("  ").unwrap(), VifSpec::default());
    }

    #[test]
    fn every_option() {
        let v = VifSpec::parse(
            "ip=10.0.0.2 10.0.0.3, mac=00:16:3E:0a:0B:0c ,bridge=xenbr1, script=vif-route,vifname=brun0, backend=netdom, rate=10Mb/s@20ms",
        )
        .unwrap();
        assert_eq!(
            v.ips,
            vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
        );
        assert_eq!(v.mac, Some(MacAddr([0x00, 0x16, 0x3e, 0x0a, 0x0b, 0x0c])));
        assert_eq!(v.mac.unwrap().to_string(), "00:16:3e:0a:0b:0c");
        assert_eq!(v.bridge.as_deref(), Some("xenbr1"));
        assert_eq!(v.script.as_deref(), Some("vif-route"));
        assert_eq!(v.vifname.as_deref(), Some("brun0"));
        assert_eq!(v.backend.as_deref(), Some("netdom"));
        assert_eq!(
            v.rate,
            Some(Rate {
                bytes_per_sec: 1_250_000,
                window_us: 20_000
            })
        );
    }

    #[test]
    fn rejected_vifs() {
        for (spec, reason) in [
            ("ip=10.0.0.256", "'10.0.0.256' has an octet above 255"),
            ("ip=10.0.0", "'10.0.0' is not an IPv4 address like 10.0.0.2"),
            (
                "ip=10.0.0.1.2",
                "'10.0.0.1.2' is not an IPv4 address like 10.0.0.2",
            ),
            (
                "ip=10.0.0.02",
                "'10.0.0.02' has an octet with a leading zero (ambiguous: octal?)",
            ),
            (
                "ip=10.0.0.x",
                "'10.0.0.x' is not an IPv4 address like 10.0.0.2",
            ),
            ("ip=", "option 'ip' has an empty value"),
            (
                "mac=00:16:3e:00:00",
                "MAC address '00:16:3e:00:00' is not six hex octets like 00:16:3e:00:00:01",
            ),
            (
                "mac=00:16:3e:00:00:01:02",
                "MAC address '00:16:3e:00:00:01:02' is not six hex octets like 00:16:3e:00:00:01",
            ),
            (
                "mac=00:16:3e:0:00:01",
                "MAC address '00:16:3e:0:00:01' is not six hex octets like 00:16:3e:00:00:01",
            ),
            (
                "mac=00:16:3g:00:00:01",
                "MAC address '00:16:3g:00:00:01' is not six hex octets like 00:16:3e:00:00:01",
            ),
            (
                "mac=01:00:5e:00:00:01",
                "MAC address '01:00:5e:00:00:01' is a multicast address",
            ),
            (
                "bridge=this-name-is-too-long",
                "interface name 'this-name-is-too-long' must have 1 to 15 characters",
            ),
            ("vifname=a/b", "interface name 'a/b' contains '/'"),
            ("script=vif bridge", "script 'vif bridge' contains a space"),
            (
                "ip=10.0.0.2,,mac=00:16:3e:00:00:01",
                "empty option (two commas in a row?)",
            ),
            ("10.0.0.2", "option '10.0.0.2' is not 'name=value'"),
            ("ip=10.0.0.2, ip=10.0.0.3", "option 'ip' given twice"),
            (
                "model=e1000",
                "option 'model' is for HVM guests; Oxen runs PV guests",
            ),
            (
                "colour=red",
                "unknown option 'colour' (mac, ip, bridge, script, vifname, backend, rate)",
            ),
            ("rate=10", "rate '10' is not like '10Mb/s' or '1MB/s@20ms'"),
            ("rate=0MB/s", "rate '0MB/s' must be above zero"),
            (
                "rate=1MB/s@20h",
                "rate '1MB/s@20h' is not like '10Mb/s' or '1MB/s@20ms'",
            ),
            (
                "rate=99999999999999999999GB/s",
                "rate '99999999999999999999GB/s' is not like '10Mb/s' or '1MB/s@20ms'",
            ),
        ] {
            assert_eq!(VifSpec::parse(spec).unwrap_err(), reason, "{spec}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            Rate::parse("1MB/s"),
            Ok(Rate {
                bytes_per_sec: 1_000_000,
                window_us: 50_000
            })
        );
        assert_eq!(
            Rate::parse("800Kb/s@1s"),
            Ok(Rate {
                bytes_per_sec: 100_000,
                window_us: 1_000_000
            })
        );
        assert_eq!(
            Rate::parse("1GB/s@500us"),
            Ok(Rate {
                bytes_per_sec: 1_000_000_000,
                window_us: 500
            })
        );
        assert_eq!(
            Rate::parse("64B/s"),
            Ok(Rate {
                bytes_per_sec: 64,
                window_us: 50_000
            })
        );
    }

    #[test]
    fn ipv4_and_mac_accept() {
        assert_eq!(parse_ipv4("0.0.0.0"), Ok(Ipv4Addr::new(0, 0, 0, 0)));
        assert_eq!(
            parse_ipv4("255.255.255.255"),
            Ok(Ipv4Addr::new(255, 255, 255, 255))
        );
        assert_eq!(
            MacAddr::parse("FE:FF:FF:FF:FF:FF"),
            Ok(MacAddr([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]))
        );
        assert!(check_ifname("xenbr0").is_ok());
        assert!(check_ifname("").is_err());
    }
}
