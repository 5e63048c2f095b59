//! The S-expression subset of xend's `xend-config.sxp`, and the network mode it selects.
//!
//! Syntax: a file is a sequence of lists `( ... )`; a list holds atoms and lists;
//! an atom is a bare word (any run of characters other than blanks, parentheses and
//! quotes) or a quoted string (`'...'` or `"..."`, with `\\ \' \" \n \t \r` escapes,
//! which may span lines); `#` at the start of a token begins a comment to the end of
//! the line. Nesting is bounded by [`MAX_SXP_DEPTH`].
//!
//! Meaning ([`parse_xend_config`]): `(network-script <script>)` selects dom0's
//! networking — `network-bridge`, `network-route` or `network-nat`, optionally with
//! arguments in a quoted atom, `'network-bridge bridge=xenbr1 netdev=eth1'`;
//! `(vif-script <script>)` the matching per-vif script; `(dom0-min-mem N)` and
//! `(dom0-cpus N)` are read as numbers. Other entries are kept, not interpreted
//! (xend has dozens that do not concern Oxen). An entry given twice: the later
//! wins, with a warning. A vif script of another mode than the network script is
//! a warning. Errors name the file, line and entry.

use crate::error::{ConfigError, ErrorKind, Warning, WarningKind};
use crate::lexer::Cursor;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Deepest list nesting accepted in an sxp file.
pub const MAX_SXP_DEPTH: usize = 32;

/// An S-expression with the position (1-based line, column) where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sexp {
    /// A bare or quoted atom (escapes applied).
    Atom {
        /// The text.
        text: String,
        /// Whether it was written in quotes.
        quoted: bool,
        /// Line.
        line: u32,
        /// Column.
        column: u32,
    },
    /// A parenthesised list.
    List {
        /// The elements.
        items: Vec<Sexp>,
        /// Line of `(`.
        line: u32,
        /// Column of `(`.
        column: u32,
    },
}

impl Sexp {
    /// Line where this expression starts.
    pub fn line(&self) -> u32 {
        match self {
            Sexp::Atom { line, .. } | Sexp::List { line, .. } => *line,
        }
    }

    /// The text of an atom.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom { text, .. } => Some(text),
            Sexp::List { .. } => None,
        }
    }

    /// For a list whose first element is an atom: that name (xend's entry key).
    pub fn name(&self) -> Option<&str> {
        match self {
            Sexp::List { items, .. } => items.first().and_then(Sexp::atom),
            Sexp::Atom { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Sexp::Atom { text, .. } => format!("atom '{text}'"),
            Sexp::List { .. } => "a list".into(),
        }
    }
}

struct SxpLexer<'f> {
    file: &'f str,
    cur: Cursor,
}

impl SxpLexer<'_> {
    fn error(&self, line: u32, column: u32, key: Option<&str>, kind: ErrorKind) -> ConfigError {
        ConfigError::new(self.file, Some(line), Some(column), key, kind)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.cur.peek() {
            if c.is_whitespace() {
                self.cur.bump();
            } else if c == '#' {
                while self.cur.peek().is_some_and(|c| c != '\n') {
                    self.cur.bump();
                }
            } else {
                break;
            }
        }
    }

    /// One expression starting at the next non-blank character, which exists and
    /// is not `)`.
    fn expr(&mut self, depth: usize, key: Option<&str>) -> Result<Sexp, ConfigError> {
        let (line, column) = self.cur.at();
        match self.cur.peek() {
            Some('(') => {
                if depth >= MAX_SXP_DEPTH {
                    return Err(self.error(
                        line,
                        column,
                        key,
                        ErrorKind::TooDeep { max: MAX_SXP_DEPTH },
                    ));
                }
                self.cur.bump();
                let mut items: Vec<Sexp> = Vec::new();
                loop {
                    self.skip_blanks();
                    match self.cur.peek() {
                        None => {
                            let key = key.or_else(|| items.first().and_then(Sexp::atom));
                            return Err(self.error(
                                line,
                                column,
                                key,
                                ErrorKind::UnterminatedList { found: None },
                            ));
                        }
                        Some(')') => {
                            self.cur.bump();
                            return Ok(Sexp::List {
                                items,
                                line,
                                column,
                            });
                        }
                        Some(_) => {
                            let key = key
                                .or_else(|| items.first().and_then(Sexp::atom))
                                .map(String::from);
                            let e = self.expr(depth + 1, key.as_deref())?;
                            items.push(e);
                        }
                    }
                }
            }
            Some(q @ ('\'' | '"')) => {
                self.cur.bump();
                let mut text = String::new();
                loop {
                    match self.cur.bump() {
                        None => {
                            return Err(self.error(
                                line,
                                column,
                                key,
                                ErrorKind::UnterminatedString,
                            ));
                        }
                        Some('\\') => match self.cur.bump() {
                            None => {
                                return Err(self.error(
                                    line,
                                    column,
                                    key,
                                    ErrorKind::UnterminatedString,
                                ));
                            }
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some('r') => text.push('\r'),
                            Some(c @ ('\\' | '\'' | '"')) => text.push(c),
                            Some(c) => {
                                text.push('\\');
                                text.push(c);
                            }
                        },
                        Some(c) if c == q => break,
                        Some(c) => text.push(c),
                    }
                }
                Ok(Sexp::Atom {
                    text,
                    quoted: true,
                    line,
                    column,
                })
            }
            _ => {
                let mut text = String::new();
                while let Some(c) = self
                    .cur
                    .peek()
                    .filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '\'' | '"'))
                {
                    text.push(c);
                    self.cur.bump();
                }
                Ok(Sexp::Atom {
                    text,
                    quoted: false,
                    line,
                    column,
                })
            }
        }
    }
}

/// Parses an sxp file into its top-level lists.
pub fn parse_sxp(file_name: &str, text: &str) -> Result<Vec<Sexp>, ConfigError> {
    let mut lx = SxpLexer {
        file: file_name,
        cur: Cursor::new(text),
    };
    let mut out = Vec::new();
    loop {
        lx.skip_blanks();
        let (line, column) = lx.cur.at();
        match lx.cur.peek() {
            None => return Ok(out),
            Some(')') => {
                return Err(lx.error(line, column, None, ErrorKind::UnexpectedChar(')')));
            }
            Some('(') => out.push(lx.expr(0, None)?),
            Some(_) => {
                let atom = lx.expr(0, None)?;
                return Err(lx.error(
                    line,
                    column,
                    None,
                    ErrorKind::Expected {
                        expected: "'(' (every setting is a list)",
                        found: atom.describe(),
                    },
                ));
            }
        }
    }
}

/// The networking mode of a script pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// `network-bridge` / `vif-bridge`.
    Bridge,
    /// `network-route` / `vif-route`.
    Route,
    /// `network-nat` / `vif-nat`.
    Nat,
}

impl ScriptKind {
    fn suffix(self) -> &'static str {
        match self {
            ScriptKind::Bridge => "bridge",
            ScriptKind::Route => "route",
            ScriptKind::Nat => "nat",
        }
    }
}

/// A script setting: which script, with which `name=value` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCall {
    /// The script's mode.
    pub kind: ScriptKind,
    /// The script name as written (`network-bridge`, `vif-route`, or a path to one).
    pub script: String,
    /// Its arguments, in order.
    pub args: Vec<(String, String)>,
    /// Line of the setting.
    pub line: u32,
}

impl ScriptCall {
    /// The value of argument `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How dom0 connects domUs to the outside (xend's three modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A learning bridge joining the physical NIC and the vifs.
    Bridge {
        /// Bridge name: `bridge=` argument, else `xenbr<vifnum>` (xenbr0).
        bridge: String,
    },
    /// IP routing with proxy ARP.
    Route,
    /// NAT from a private range.
    Nat,
}

/// What `xend-config.sxp` says that Oxen uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XendConfig {
    /// `(network-script ...)`, if set.
    pub network_script: Option<ScriptCall>,
    /// `(vif-script ...)`, if set.
    pub vif_script: Option<ScriptCall>,
    /// `(dom0-min-mem N)` MiB, if set.
    pub dom0_min_mem: Option<u32>,
    /// `(dom0-cpus N)`, if set (0 = all).
    pub dom0_cpus: Option<u32>,
    /// Every top-level entry, as parsed.
    pub entries: Vec<Sexp>,
}

impl XendConfig {
    /// The networking mode selected by `network-script`; `None` when it is not set
    /// (xend then set up no network).
    pub fn network_mode(&self) -> Option<NetworkMode> {
        let s = self.network_script.as_ref()?;
        Some(match s.kind {
            ScriptKind::Bridge => NetworkMode::Bridge {
                bridge: s
                    .arg("bridge")
                    .map(String::from)
                    .unwrap_or_else(|| format!("xenbr{}", s.arg("vifnum").unwrap_or("0"))),
            },
            ScriptKind::Route => NetworkMode::Route,
            ScriptKind::Nat => NetworkMode::Nat,
        })
    }

    /// The physical interface the network script uses: `netdev=`, else `eth<vifnum>`.
    pub fn netdev(&self) -> Option<String> {
        let s = self.network_script.as_ref()?;
        Some(
            s.arg("netdev")
                .map(String::from)
                .unwrap_or_else(|| format!("eth{}", s.arg("vifnum").unwrap_or("0"))),
        )
    }
}

/// Parses `xend-config.sxp` and extracts the settings Oxen uses.
pub fn parse_xend_config(
    file_name: &str,
    text: &str,
) -> Result<(XendConfig, Vec<Warning>), ConfigError> {
    let entries = parse_sxp(file_name, text)?;
    let mut cfg = XendConfig::default();
    let mut warnings = Vec::new();
    let mut seen: Vec<(String, u32)> = Vec::new();
    for e in &entries {
        let Sexp::List {
            items,
            line,
            column,
        } = e
        else {
            continue; // parse_sxp only returns lists
        };
        let Some(name) = e.name() else {
            let found = items
                .first()
                .map_or_else(|| "nothing".into(), Sexp::describe);
            return Err(ConfigError::new(
                file_name,
                Some(*line),
                Some(*column),
                None,
                ErrorKind::Expected {
                    expected: "a setting name after '('",
                    found,
                },
            ));
        };
        if let Some((_, previous_line)) = seen.iter().find(|(n, _)| n == name) {
            warnings.push(Warning::new(
                file_name,
                *line,
                name,
                WarningKind::DuplicateKey {
                    previous_line: *previous_line,
                },
            ));
        }
        seen.push((name.into(), *line));
        let err = |kind| ConfigError::new(file_name, Some(*line), None, Some(name), kind);
        let single = || -> Result<&Sexp, ConfigError> {
            match items.as_slice() {
                [_, value] => Ok(value),
                [_] => Err(err(ErrorKind::Expected {
                    expected: "a value",
                    found: "')'".into(),
                })),
                [_, _, extra, ..] => Err(err(ErrorKind::Expected {
                    expected: "')' (quote a script with arguments: 'network-bridge bridge=xenbr1')",
                    found: extra.describe(),
                })),
                [] => unreachable!("a named list has a first element"),
            }
        };
        let atom_of = |v: &Sexp| -> Result<String, ConfigError> {
            v.atom().map(String::from).ok_or_else(|| {
                err(ErrorKind::ExpectedString {
                    found: v.describe(),
                })
            })
        };
        let number = |v: &Sexp| -> Result<u32, ConfigError> {
            let text = atom_of(v)?;
            if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
                return Err(err(ErrorKind::ExpectedNumber {
                    found: format!("'{text}'"),
                }));
            }
            text.parse().map_err(|_| {
                err(ErrorKind::ExpectedNumber {
                    found: format!("'{text}'"),
                })
            })
        };
        match name {
            "network-script" | "vif-script" => {
                let text = atom_of(single()?)?;
                let prefix = if name == "network-script" {
                    "network-"
                } else {
                    "vif-"
                };
                let call = parse_script(&text, prefix, *line).map_err(|reason| {
                    err(ErrorKind::Invalid {
                        what: "script",
                        value: text.clone(),
                        reason,
                    })
                })?;
                if name == "network-script" {
                    cfg.network_script = Some(call);
                } else {
                    cfg.vif_script = Some(call);
                }
            }
            "dom0-min-mem" => cfg.dom0_min_mem = Some(number(single()?)?),
            "dom0-cpus" => cfg.dom0_cpus = Some(number(single()?)?),
            _ => {}
        }
    }
    if let (Some(n), Some(v)) = (&cfg.network_script, &cfg.vif_script)
        && n.kind != v.kind
    {
        warnings.push(Warning::new(
            file_name,
            v.line,
            "vif-script",
            WarningKind::ScriptMismatch {
                network: n.script.clone(),
                vif: v.script.clone(),
            },
        ));
    }
    cfg.entries = entries;
    Ok((cfg, warnings))
}

/// Parses `'<script> [name=value ...]'` where the script's base name is
/// `<prefix>bridge|route|nat`.
fn parse_script(text: &str, prefix: &str, line: u32) -> Result<ScriptCall, String> {
    let mut words = text.split_ascii_whitespace();
    let Some(script) = words.next() else {
        return Err("empty script".into());
    };
    let base = script.rsplit('/').next().unwrap_or(script);
    let kind = [ScriptKind::Bridge, ScriptKind::Route, ScriptKind::Nat]
        .into_iter()
        .find(|k| base.strip_prefix(prefix) == Some(k.suffix()))
        .ok_or_else(|| {
            format!(
                "unknown script '{base}' (expected {prefix}bridge, {prefix}route or {prefix}nat)"
            )
        })?;
    let mut args = Vec::new();
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!("argument '{word}' is not name=value"));
        };
        match k {
            "bridge" | "netdev" => crate::vif::check_ifname(v)?,
            "vifnum" if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) || v.len() > 4 => {
                return Err(format!("vifnum '{v}' is not a number"));
            }
            _ => {}
        }
        args.push((k.to_string(), v.to_string()));
    }
    Ok(ScriptCall {
        kind,
        script: script.into(),
        args,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn cfg(text: &str) -> (XendConfig, Vec<Warning>) {
        parse_xend_config("xend-config.sxp", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        parse_xend_config("xend-config.sxp", text)
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn tutorial_section_2_4() {
        let text = "# -*- sh -*-\n#(network-script network-dummy)\n(network-script network-bridge)\n\
                    (vif-script vif-bridge)\n(dom0-min-mem 196)\n(dom0-cpus 0)\n";
        let (c, w) = cfg(text);
        assert!(w.is_empty());
        assert_eq!(
            c.network_mode(),
            Some(NetworkMode::Bridge {
                bridge: "xenbr0".into()
            })
        );
        assert_eq!(c.netdev().as_deref(), Some("eth0"));
        assert_eq!(
            c.vif_script.as_ref().map(|v| v.kind),
            Some(ScriptKind::Bridge)
        );
        assert_eq!(c.network_script.as_ref().unwrap().line, 3);
        assert_eq!(c.dom0_min_mem, Some(196));
        assert_eq!(c.dom0_cpus, Some(0));
        assert_eq!(c.entries.len(), 4);
    }

    #[test]
    fn route_nat_and_bridge_arguments() {
        let (c, _) = cfg("(network-script network-route)\n(vif-script vif-route)\n");
        assert_eq!(c.network_mode(), Some(NetworkMode::Route));
        let (c, _) = cfg("(network-script network-nat)\n(vif-script vif-nat)\n");
        assert_eq!(c.network_mode(), Some(NetworkMode::Nat));
        for (text, bridge, netdev) in [
            (
                "(network-script 'network-bridge bridge=xenbr1 netdev=eth1')\n",
                "xenbr1",
                "eth1",
            ),
            (
                "(network-script \"/etc/xen/scripts/network-bridge vifnum=2\")",
                "xenbr2",
                "eth2",
            ),
        ] {
            let (c, _) = cfg(text);
            assert_eq!(
                c.network_mode(),
                Some(NetworkMode::Bridge {
                    bridge: bridge.into()
                }),
                "{text}"
            );
            assert_eq!(c.netdev().as_deref(), Some(netdev), "{text}");
        }
        let (c, _) = cfg("(vif-script 'vif-bridge bridge=xenbr1')");
        assert_eq!(c.vif_script.unwrap().arg("bridge"), Some("xenbr1"));
        let (c, _) = cfg("# nothing uncommented\n(xend-http-server no)\n");
        assert_eq!(c.network_mode(), None);
        assert_eq!(c.netdev(), None);
    }

    #[test]
    fn generic_sxp_structure() {
        let e = parse_sxp("f", "(a (b 'c d' \"e\\\"f\") g) # c\n(h)").unwrap();
        assert_eq!(e.len(), 2);
        let Sexp::List {
            items,
            line,
            column,
        } = &e[0]
        else {
            panic!()
        };
        assert_eq!((*line, *column), (1, 1));
        assert_eq!(items[0].atom(), Some("a"));
        let Sexp::List { items: inner, .. } = &items[1] else {
            panic!()
        };
        assert_eq!(inner[0].atom(), Some("b"));
        assert_eq!(
            inner[1],
            Sexp::Atom {
                text: "c d".into(),
                quoted: true,
                line: 1,
                column: 7
            }
        );
        assert_eq!(inner[2].atom(), Some("e\"f"));
        assert_eq!(items[2].atom(), Some("g"));
        assert_eq!(e[1].name(), Some("h"));
        assert_eq!(e[1].line(), 2);
        assert_eq!(parse_sxp("f", "").unwrap(), vec![]);
        assert_eq!(
            parse_sxp("f", "(a '')").unwrap()[0],
            Sexp::List {
                items: vec![
                    Sexp::Atom {
                        text: "a".into(),
                        quoted: false,
                        line: 1,
                        column: 2
                    },
                    Sexp::Atom {
                        text: String::new(),
                        quoted: true,
                        line: 1,
                        column: 4
                    },
                ],
                line: 1,
                column: 1,
            }
        );
    }

    #[test]
    fn duplicate_and_mismatch_warnings() {
        let (c, w) = cfg(
            "(network-script network-route)\n(vif-script vif-bridge)\n(network-script network-nat)\n",
        );
        assert_eq!(c.network_mode(), Some(NetworkMode::Nat));
        let msgs: Vec<String> = w.iter().map(|w| w.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "xend-config.sxp:3: key 'network-script': warning: assigned again; this value overrides the one from line 1",
                "xend-config.sxp:2: key 'vif-script': warning: vif-script 'vif-bridge' does not match network-script 'network-nat'",
            ]
        );
    }

    #[test]
    fn errors_name_file_line_and_entry() {
        assert_eq!(
            err("(dom0-cpus 0)\n(network-script network-bridge\n(vif-script vif-bridge)\n"),
            "xend-config.sxp:2:1: key 'network-script': unterminated list: the bracket opened here is never closed"
        );
        assert_eq!(
            err("\n(network-script 'network-bridge)\n"),
            "xend-config.sxp:2:17: key 'network-script': unterminated string: no closing quote"
        );
        assert_eq!(
            err("(network-script network-dummy)"),
            "xend-config.sxp:1: key 'network-script': invalid script 'network-dummy': unknown script \
             'network-dummy' (expected network-bridge, network-route or network-nat)"
        );
        assert_eq!(
            err("(a)\n(vif-script network-bridge)"),
            "xend-config.sxp:2: key 'vif-script': invalid script 'network-bridge': unknown script \
             'network-bridge' (expected vif-bridge, vif-route or vif-nat)"
        );
        assert_eq!(
            err("(network-script network-bridge bridge=xenbr1)"),
            "xend-config.sxp:1: key 'network-script': expected ')' (quote a script with arguments: \
             'network-bridge bridge=xenbr1'), found atom 'bridge=xenbr1'"
        );
        assert_eq!(
            err("(network-script 'network-bridge xenbr1')"),
            "xend-config.sxp:1: key 'network-script': invalid script 'network-bridge xenbr1': argument 'xenbr1' is not name=value"
        );
        assert_eq!(
            err("(network-script 'network-bridge bridge=a/b')"),
            "xend-config.sxp:1: key 'network-script': invalid script 'network-bridge bridge=a/b': interface name 'a/b' contains '/'"
        );
        assert_eq!(
            err("(network-script '')"),
            "xend-config.sxp:1: key 'network-script': invalid script '': empty script"
        );
        assert_eq!(
            err("(network-script)"),
            "xend-config.sxp:1: key 'network-script': expected a value, found ')'"
        );
        assert_eq!(
            err("(network-script (network-bridge))"),
            "xend-config.sxp:1: key 'network-script': expected a string, found a list"
        );
        assert_eq!(
            err("\n\n(dom0-min-mem 196M)"),
            "xend-config.sxp:3: key 'dom0-min-mem': expected a number, found '196M'"
        );
        assert_eq!(
            err("(dom0-cpus 99999999999)"),
            "xend-config.sxp:1: key 'dom0-cpus': expected a number, found '99999999999'"
        );
        assert_eq!(
            err("(a)\n)"),
            "xend-config.sxp:2:1: unexpected character ')'"
        );
        assert_eq!(
            err("network-script network-bridge"),
            "xend-config.sxp:1:1: expected '(' (every setting is a list), found atom 'network-script'"
        );
        assert_eq!(
            err("()"),
            "xend-config.sxp:1:1: expected a setting name after '(', found nothing"
        );
        assert_eq!(
            err("((a) b)"),
            "xend-config.sxp:1:1: expected a setting name after '(', found a list"
        );
        let deep = "(".repeat(10_000);
        assert_eq!(
            err(&deep),
            alloc::format!(
                "xend-config.sxp:1:{}: lists nested deeper than 32 levels",
                MAX_SXP_DEPTH + 1
            )
        );
    }
}
