//! The dom0 shell: a prompt on the hypervisor console, a table of commands
//! over the read-only initrd, and the `xm` toolstack.
//!
//! Rules:
//! - the prompt is `oxen-dom0:<cwd># `, `<cwd>` the canonical path of the
//!   current directory (`/` at boot);
//! - commands come from one table ([`COMMANDS`]); `help` lists it;
//! - each failure is one line `<command>: <what>: <why>` in coreutils wording
//!   (`cat: /nope: No such file or directory`); an unknown command is
//!   `oxen-dom0: foo: command not found`;
//! - nothing can write to the initrd: it is an [`Archive`] borrowed from the
//!   boot module;
//! - `halt`/`poweroff`/`reboot` shut this domain (and so the machine) down
//!   with `SCHEDOP_shutdown`; if the hypervisor refuses, the refusal is shown.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use initrd::{Archive, NodeId};
use xen_abi::sched::{SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT};

use crate::fs::{LongRow, columns, error_text, long_listing};
use crate::hv::{Hypervisor, VersionInfo, refused};
use crate::net::{self, NetStack};
use crate::pci::PciFunction;
use crate::toolstack::Toolstack;
use crate::xm;

/// The program name in prompts and messages.
pub const PROGRAM: &str = "oxen-dom0";
/// dom0's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Terminal width `ls` lays names out for.
pub const LS_WIDTH: usize = 80;

/// The line dom0 announces itself with.
pub fn banner(v: &VersionInfo) -> String {
    format!(
        "{PROGRAM} {VERSION}: Oxen's control domain, on Xen {}.{}{} ({})",
        v.major, v.minor, v.extra, v.capabilities
    )
}

/// What a command runs against: the hypervisor and the console.
pub struct Env<'e> {
    pub hv: &'e mut dyn Hypervisor,
    pub out: &'e mut dyn Write,
}

type Run = fn(&mut Shell<'_>, &mut Env<'_>, &[String]);

/// One shell command.
pub struct Command {
    pub name: &'static str,
    pub usage: &'static str,
    pub help: &'static str,
    run: Run,
}

/// Every command, in `help` order.
pub const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "",
        help: "this list",
        run: help,
    },
    Command {
        name: "ls",
        usage: "[-la1] [PATH...]",
        help: "list directory contents",
        run: ls,
    },
    Command {
        name: "cd",
        usage: "[DIR]",
        help: "change the current directory (default /)",
        run: cd,
    },
    Command {
        name: "pwd",
        usage: "",
        help: "print the current directory",
        run: pwd,
    },
    Command {
        name: "cat",
        usage: "FILE...",
        help: "print files",
        run: cat,
    },
    Command {
        name: "echo",
        usage: "[-n] [WORD...]",
        help: "print words",
        run: echo,
    },
    Command {
        name: "uname",
        usage: "[-asnrvm]",
        help: "system information",
        run: uname,
    },
    Command {
        name: "uptime",
        usage: "",
        help: "time since the hypervisor booted (PV clock)",
        run: uptime,
    },
    Command {
        name: "ifconfig",
        usage: "",
        help: "show the network interfaces",
        run: ifconfig,
    },
    Command {
        name: "route",
        usage: "[-n]",
        help: "show the IP routing table",
        run: route,
    },
    Command {
        name: "ping",
        usage: "[-c COUNT] HOST",
        help: "send ICMP echo requests (4 unless -c)",
        run: ping,
    },
    Command {
        name: "lspci",
        usage: "",
        help: "list the PCI devices dom0 found",
        run: lspci,
    },
    Command {
        name: "xm",
        usage: "SUBCOMMAND [ARGS]",
        help: "the Xen toolstack (see 'xm help')",
        run: xm_cmd,
    },
    Command {
        name: "halt",
        usage: "",
        help: "power the machine off",
        run: halt,
    },
    Command {
        name: "poweroff",
        usage: "",
        help: "power the machine off",
        run: halt,
    },
    Command {
        name: "reboot",
        usage: "",
        help: "reboot the machine",
        run: reboot,
    },
];

/// The shell's state: the mounted initrd, the current directory and the
/// toolstack (the domains dom0 serves, xenstored, the console daemon).
pub struct Shell<'a> {
    archive: Archive<'a>,
    cwd: NodeId,
    toolstack: Toolstack<'a>,
    pci: Vec<PciFunction>,
    net: Option<Box<dyn NetStack + 'a>>,
}

impl<'a> Shell<'a> {
    /// A shell at `/` of `archive`.
    pub fn new(archive: Archive<'a>) -> Self {
        Self {
            archive,
            cwd: NodeId::ROOT,
            toolstack: Toolstack::new(),
            pci: Vec::new(),
            net: None,
        }
    }

    /// dom0's network stack, if it has one (the kernel serves its NIC).
    pub fn net_mut(&mut self) -> Option<&mut (dyn NetStack + 'a)> {
        self.net.as_deref_mut()
    }

    /// dom0's network stack (for `ifconfig`, `route`, `ping`).
    pub fn set_net(&mut self, net: Box<dyn NetStack + 'a>) {
        self.net = Some(net);
    }

    /// The PCI functions the kernel's scan found (for `lspci`).
    pub fn set_pci(&mut self, functions: Vec<PciFunction>) {
        self.pci = functions;
    }

    pub fn archive(&self) -> &Archive<'a> {
        &self.archive
    }

    pub fn toolstack(&mut self) -> &mut Toolstack<'a> {
        &mut self.toolstack
    }

    /// The current directory's canonical path.
    pub fn cwd_path(&self) -> String {
        self.archive.path_of(self.cwd)
    }

    /// `oxen-dom0:/etc/xen# `.
    pub fn prompt(&self) -> String {
        format!("{PROGRAM}:{}# ", self.cwd_path())
    }

    /// The node name: the first line of /etc/hostname, else `oxen-dom0`.
    pub fn nodename(&self) -> String {
        self.archive
            .open("/etc/hostname")
            .ok()
            .and_then(|b| core::str::from_utf8(b).ok())
            .and_then(|s| s.lines().next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(PROGRAM)
            .to_string()
    }

    /// Runs one command line.
    pub fn execute(&mut self, line: &str, env: &mut Env<'_>) {
        let words = match crate::words::split(line) {
            Ok(w) => w,
            Err(e) => {
                let _ = writeln!(env.out, "{PROGRAM}: {e}");
                return;
            }
        };
        let Some((name, args)) = words.split_first() else {
            return;
        };
        match COMMANDS.iter().find(|c| c.name == name) {
            Some(c) => (c.run)(self, env, args),
            None => {
                let _ = writeln!(env.out, "{PROGRAM}: {name}: command not found");
            }
        }
    }
}

fn help(_: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    let _ = writeln!(env.out, "Commands:");
    for c in COMMANDS {
        let left = format!("{} {}", c.name, c.usage);
        let _ = writeln!(env.out, "  {left:<26} {}", c.help);
    }
    let _ = writeln!(
        env.out,
        "Line editing: Backspace, Ctrl-U (erase line), Ctrl-C (cancel line)."
    );
}

/// Splits `-xyz` style flags from operands; `--` ends the flags. Returns the
/// flags or the first one not in `allowed`.
fn flags<'w>(args: &'w [String], allowed: &str) -> Result<(Vec<char>, Vec<&'w str>), char> {
    let mut set = Vec::new();
    let mut operands = Vec::new();
    let mut only_operands = false;
    for a in args {
        if only_operands || !a.starts_with('-') || a == "-" {
            operands.push(a.as_str());
        } else if a == "--" {
            only_operands = true;
        } else {
            for c in a[1..].chars() {
                if !allowed.contains(c) {
                    return Err(c);
                }
                set.push(c);
            }
        }
    }
    Ok((set, operands))
}

fn ls(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    let (set, mut paths) = match flags(args, "la1") {
        Ok(v) => v,
        Err(c) => {
            let _ = writeln!(env.out, "ls: invalid option -- '{c}'");
            return;
        }
    };
    let long = set.contains(&'l');
    let all = set.contains(&'a');
    let one = set.contains(&'1');
    if paths.is_empty() {
        paths.push(".");
    }
    let a = &sh.archive;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for p in &paths {
        match a.metadata_at(sh.cwd, p) {
            Ok(m) if m.is_dir() => dirs.push(*p),
            Ok(_) => files.push(*p),
            Err(e) => {
                let _ = writeln!(env.out, "ls: cannot access '{p}': {}", error_text(e));
            }
        }
    }
    let show = |out: &mut dyn Write, dir: NodeId, names: &[&str]| {
        if long {
            let rows: Vec<LongRow<'_>> = names
                .iter()
                .filter_map(|n| LongRow::of(a, dir, n).ok())
                .collect();
            for line in long_listing(&rows) {
                let _ = writeln!(out, "{line}");
            }
        } else {
            let lines = if one {
                names.iter().map(|n| n.to_string()).collect()
            } else {
                columns(names, LS_WIDTH)
            };
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
        }
    };
    show(env.out, sh.cwd, &files);
    let headers = paths.len() > 1;
    for (i, d) in dirs.iter().enumerate() {
        if headers {
            if i > 0 || !files.is_empty() {
                let _ = writeln!(env.out);
            }
            let _ = writeln!(env.out, "{d}:");
        }
        let (Ok(dir), Ok(entries)) = (a.lookup(sh.cwd, d), a.read_dir_at(sh.cwd, d)) else {
            continue; // metadata said it is a directory
        };
        let mut names: Vec<&str> = Vec::new();
        if all {
            names.extend([".", ".."]);
        }
        names.extend(
            entries
                .iter()
                .map(|e| e.name)
                .filter(|n| all || !n.starts_with('.')),
        );
        show(env.out, dir, &names);
    }
}

fn cd(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    let target = match args {
        [] => "/",
        [d] => d.as_str(),
        _ => {
            let _ = writeln!(env.out, "cd: too many arguments");
            return;
        }
    };
    match sh.archive.chdir(sh.cwd, target) {
        Ok(id) => sh.cwd = id,
        Err(e) => {
            let _ = writeln!(env.out, "cd: {target}: {}", error_text(e));
        }
    }
}

fn pwd(sh: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    let _ = writeln!(env.out, "{}", sh.cwd_path());
}

fn cat(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    if args.is_empty() {
        let _ = writeln!(env.out, "cat: no file given (usage: cat FILE...)");
        return;
    }
    for f in args {
        match sh.archive.open_at(sh.cwd, f) {
            Ok(bytes) => {
                let _ = env.out.write_str(&String::from_utf8_lossy(bytes));
            }
            Err(e) => {
                let _ = writeln!(env.out, "cat: {f}: {}", error_text(e));
            }
        }
    }
}

fn echo(_: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    let (newline, words) = match args.split_first() {
        Some((n, rest)) if n == "-n" => (false, rest),
        _ => (true, args),
    };
    let _ = env.out.write_str(&words.join(" "));
    if newline {
        let _ = env.out.write_char('\n');
    }
}

fn uname(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    let (set, operands) = match flags(args, "asnrvm") {
        Ok(v) => v,
        Err(c) => {
            let _ = writeln!(env.out, "uname: invalid option -- '{c}'");
            return;
        }
    };
    if let Some(extra) = operands.first() {
        let _ = writeln!(env.out, "uname: extra operand '{extra}'");
        return;
    }
    let v = env.hv.version();
    let fields = [
        ('s', String::from("Oxen-dom0")),
        ('n', sh.nodename()),
        ('r', VERSION.to_string()),
        (
            'v',
            format!("Xen {}.{}{} {}", v.major, v.minor, v.extra, v.capabilities),
        ),
        ('m', String::from("i686")),
    ];
    let want = |c: char| set.contains(&'a') || set.contains(&c) || (set.is_empty() && c == 's');
    let shown: Vec<&str> = fields
        .iter()
        .filter(|(c, _)| want(*c))
        .map(|(_, s)| s.as_str())
        .collect();
    let _ = writeln!(env.out, "{}", shown.join(" "));
}

fn uptime(_: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    if !args.is_empty() {
        let _ = writeln!(env.out, "uptime: takes no arguments");
        return;
    }
    let up = env.hv.system_time_ns() / 1_000_000_000;
    let now = env.hv.wallclock_base() + up;
    let _ = writeln!(env.out, "{}", crate::clock::uptime_line(now, up));
}

fn ifconfig(sh: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    match &sh.net {
        Some(net) => {
            for i in net.interfaces() {
                let _ = writeln!(env.out, "{}", net::ifconfig_block(&i));
            }
        }
        None => {
            let _ = writeln!(env.out, "ifconfig: no network device");
        }
    }
}

fn route(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    if let Some(a) = args.iter().find(|a| *a != "-n") {
        let _ = writeln!(env.out, "route: invalid option '{a}'\nUsage: route [-n]");
        return;
    }
    let ifaces: Vec<_> = sh
        .net
        .as_ref()
        .map(|n| n.interfaces().into_iter().map(|i| i.config).collect())
        .unwrap_or_default();
    let _ = write!(env.out, "{}", net::route_table(&ifaces));
}

fn ping(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    match sh.net.as_deref_mut() {
        Some(n) => net::ping(n, args, env.out),
        None => {
            let _ = writeln!(env.out, "ping: no network device");
        }
    }
}

fn lspci(sh: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    for f in &sh.pci {
        let _ = writeln!(env.out, "{}", f.lspci_line());
    }
}

fn xm_cmd(sh: &mut Shell<'_>, env: &mut Env<'_>, args: &[String]) {
    let nodename = sh.nodename();
    let mut ctx = xm::Ctx {
        archive: &sh.archive,
        cwd: sh.cwd,
        nodename: &nodename,
        ts: &mut sh.toolstack,
        hv: &mut *env.hv,
        out: &mut *env.out,
    };
    xm::run(&mut ctx, args);
}

fn stop(name: &str, env: &mut Env<'_>, reason: u32, what: &str) {
    let _ = writeln!(env.out, "{PROGRAM}: {what}");
    let errno = env.hv.shutdown(reason);
    let e = refused::<()>("sched_op shutdown", Err(errno)).unwrap_err();
    let _ = writeln!(env.out, "{name}: {e}");
}

fn halt(_: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    stop("halt", env, SHUTDOWN_POWEROFF, "powering off");
}

fn reboot(_: &mut Shell<'_>, env: &mut Env<'_>, _: &[String]) {
    stop("reboot", env, SHUTDOWN_REBOOT, "rebooting");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Call, FakeXen};
    use alloc::vec;
    use initrd::{NewEntry, write_newc};
    use xen_abi::errno::Errno;

    fn image() -> Vec<u8> {
        write_newc(&[
            NewEntry::file(
                "etc/xen/brun.cfg",
                0o644,
                crate::testing::BRUN.as_bytes().to_vec(),
            ),
            NewEntry::file(
                "etc/xen/xend-config.sxp",
                0o644,
                b"(network-script network-bridge)\n".to_vec(),
            ),
            NewEntry::file("etc/motd", 0o644, b"Welcome\n".to_vec()),
            NewEntry::file("etc/hostname", 0o644, b"ayla\n".to_vec()),
            NewEntry::file("etc/.hidden", 0o600, Vec::new()),
            NewEntry::symlink("etc/xen/auto", "/etc/xen"),
            NewEntry::file("boot/vmlinuz-2.6.18-4-xen-686", 0o644, vec![0x7f; 100]),
        ])
        .unwrap()
    }

    struct Session {
        bytes: Vec<u8>,
    }

    impl Session {
        fn new() -> Self {
            Self { bytes: image() }
        }

        /// Runs the lines in one shell; returns each line's output.
        fn run(&self, xen: &mut FakeXen, lines: &[&str]) -> Vec<String> {
            let mut sh = Shell::new(Archive::parse(&self.bytes).unwrap());
            lines
                .iter()
                .map(|l| {
                    let mut out = String::new();
                    sh.execute(
                        l,
                        &mut Env {
                            hv: xen,
                            out: &mut out,
                        },
                    );
                    out
                })
                .collect()
        }

        fn one(&self, line: &str) -> String {
            self.run(&mut FakeXen::refusing(Errno::ENOSYS), &[line])
                .remove(0)
        }
    }

    #[test]
    fn prompt_follows_cd() {
        let bytes = image();
        let mut sh = Shell::new(Archive::parse(&bytes).unwrap());
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(sh.prompt(), "oxen-dom0:/# ");
        let mut out = String::new();
        sh.execute(
            "cd /etc/xen",
            &mut Env {
                hv: &mut xen,
                out: &mut out,
            },
        );
        assert_eq!(sh.prompt(), "oxen-dom0:/etc/xen# ");
        sh.execute(
            "cd ..",
            &mut Env {
                hv: &mut xen,
                out: &mut out,
            },
        );
        assert_eq!(sh.prompt(), "oxen-dom0:/etc# ");
        // Through a symlink the canonical path is shown.
        sh.execute(
            "cd xen/auto",
            &mut Env {
                hv: &mut xen,
                out: &mut out,
            },
        );
        assert_eq!(sh.prompt(), "oxen-dom0:/etc/xen# ");
        sh.execute(
            "cd",
            &mut Env {
                hv: &mut xen,
                out: &mut out,
            },
        );
        assert_eq!(sh.prompt(), "oxen-dom0:/# ");
        assert_eq!(out, "");
    }

    #[test]
    fn cd_errors() {
        let s = Session::new();
        assert_eq!(s.one("cd /nope"), "cd: /nope: No such file or directory\n");
        assert_eq!(s.one("cd /etc/motd"), "cd: /etc/motd: Not a directory\n");
        assert_eq!(s.one("cd a b"), "cd: too many arguments\n");
    }

    #[test]
    fn pwd_prints_the_directory() {
        let s = Session::new();
        let out = s.run(
            &mut FakeXen::refusing(Errno::ENOSYS),
            &["pwd", "cd etc/xen", "pwd"],
        );
        assert_eq!(out, vec!["/\n", "", "/etc/xen\n"]);
    }

    #[test]
    fn ls_lists_directories_and_files() {
        let s = Session::new();
        assert_eq!(s.one("ls"), "boot  etc\n");
        assert_eq!(s.one("ls /etc/xen"), "auto  brun.cfg  xend-config.sxp\n");
        assert_eq!(s.one("ls -1 /etc/xen"), "auto\nbrun.cfg\nxend-config.sxp\n");
        // Hidden names only with -a, which also shows . and ..
        assert_eq!(s.one("ls /etc"), "hostname  motd  xen\n");
        assert_eq!(s.one("ls -a /etc"), ".  ..  .hidden  hostname  motd  xen\n");
        assert_eq!(s.one("ls /etc/motd"), "/etc/motd\n");
        assert_eq!(
            s.one("ls /etc/motd /boot"),
            "/etc/motd\n\n/boot:\nvmlinuz-2.6.18-4-xen-686\n"
        );
    }

    #[test]
    fn ls_long_format() {
        let s = Session::new();
        let out = s.one("ls -l /etc/xen");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("lrwxrwxrwx 1 0 0 "), "{out}");
        assert!(lines[0].ends_with(" auto -> /etc/xen"), "{out}");
        let size = crate::testing::BRUN.len();
        assert!(lines[1].starts_with("-rw-r--r-- 1 0 0 "), "{out}");
        assert!(
            lines[1].ends_with(&format!("{size} 1970-01-01 00:00 brun.cfg")),
            "{out}"
        );
        assert!(s.one("ls -la /").starts_with("drwxr-xr-x "));
    }

    #[test]
    fn ls_errors() {
        let s = Session::new();
        assert_eq!(
            s.one("ls /nope"),
            "ls: cannot access '/nope': No such file or directory\n"
        );
        assert_eq!(s.one("ls -z"), "ls: invalid option -- 'z'\n");
        assert_eq!(
            s.one("ls /nope /etc/xen"),
            "ls: cannot access '/nope': No such file or directory\n/etc/xen:\nauto  brun.cfg  xend-config.sxp\n"
        );
    }

    #[test]
    fn cat_prints_files_and_names_the_missing_one() {
        let s = Session::new();
        let out = s.one("cat /etc/xen/brun.cfg");
        assert_eq!(out, crate::testing::BRUN);
        assert!(out.contains("name   = 'brun'"));
        assert_eq!(
            s.one("cat /nope"),
            "cat: /nope: No such file or directory\n"
        );
        assert_eq!(s.one("cat /etc"), "cat: /etc: Is a directory\n");
        assert_eq!(
            s.one("cat /etc/motd /nope /etc/hostname"),
            "Welcome\ncat: /nope: No such file or directory\nayla\n"
        );
        assert_eq!(s.one("cat"), "cat: no file given (usage: cat FILE...)\n");
        let out = s.run(
            &mut FakeXen::refusing(Errno::ENOSYS),
            &["cd /etc", "cat motd"],
        );
        assert_eq!(out[1], "Welcome\n");
    }

    #[test]
    fn echo_and_quoting() {
        let s = Session::new();
        assert_eq!(s.one("echo hello   oxen"), "hello oxen\n");
        assert_eq!(s.one("echo 'hello   oxen'"), "hello   oxen\n");
        assert_eq!(s.one("echo -n x"), "x");
        assert_eq!(s.one("echo"), "\n");
        assert_eq!(s.one("echo 'open"), "oxen-dom0: unterminated ' quote\n");
    }

    #[test]
    fn unknown_and_empty_commands() {
        let s = Session::new();
        assert_eq!(s.one("foo"), "oxen-dom0: foo: command not found\n");
        assert_eq!(s.one("foo bar"), "oxen-dom0: foo: command not found\n");
        assert_eq!(s.one(""), "");
        assert_eq!(s.one("   # a comment"), "");
    }

    #[test]
    fn help_lists_every_command() {
        let s = Session::new();
        let out = s.one("help");
        for c in COMMANDS {
            assert!(
                out.contains(&format!("  {} ", c.name)),
                "{} missing",
                c.name
            );
        }
    }

    #[test]
    fn uname_fields() {
        let s = Session::new();
        assert_eq!(s.one("uname"), "Oxen-dom0\n");
        assert_eq!(
            s.one("uname -a"),
            format!("Oxen-dom0 ayla {VERSION} Xen 4.1.0-oxen xen-3.0-x86_32p i686\n")
        );
        assert_eq!(s.one("uname -nm"), "ayla i686\n");
        assert_eq!(s.one("uname -r -s"), format!("Oxen-dom0 {VERSION}\n"));
        assert_eq!(s.one("uname -q"), "uname: invalid option -- 'q'\n");
        assert_eq!(s.one("uname x"), "uname: extra operand 'x'\n");
    }

    #[test]
    fn nodename_defaults_without_etc_hostname() {
        let bytes = write_newc(&[NewEntry::dir("etc", 0o755)]).unwrap();
        let sh = Shell::new(Archive::parse(&bytes).unwrap());
        assert_eq!(sh.nodename(), "oxen-dom0");
    }

    #[test]
    fn network_commands_without_a_nic_say_so() {
        let s = Session::new();
        assert_eq!(s.one("ifconfig"), "ifconfig: no network device\n");
        assert_eq!(s.one("ping 10.0.0.254"), "ping: no network device\n");
        assert_eq!(
            s.one("route -n"),
            "Kernel IP routing table\n\
             Destination     Gateway         Genmask         Flags Metric Ref    Use Iface\n"
        );
        assert_eq!(
            s.one("route -x"),
            "route: invalid option '-x'\nUsage: route [-n]\n"
        );
    }

    #[test]
    fn lspci_lists_what_the_scan_found() {
        let bytes = image();
        let mut sh = Shell::new(Archive::parse(&bytes).unwrap());
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let mut out = String::new();
        let mut run = |sh: &mut Shell<'_>, out: &mut String| {
            out.clear();
            sh.execute("lspci", &mut Env { hv: &mut xen, out });
        };
        run(&mut sh, &mut out);
        assert_eq!(out, "", "no scan, no devices");
        let f = |device, device_id, class, subclass| crate::pci::PciFunction {
            bus: 0,
            device,
            function: 0,
            vendor_id: if device_id == 0x1237 { 0x8086 } else { 0x1AF4 },
            device_id,
            class,
            subclass,
            prog_if: 0,
            revision: 0,
        };
        sh.set_pci(vec![f(0, 0x1237, 6, 0), f(4, 0x1001, 1, 0)]);
        run(&mut sh, &mut out);
        assert_eq!(
            out,
            "00:00.0 Host bridge: Intel Corporation 440FX - 82441FX PMC [Natoma]\n\
             00:04.0 SCSI storage controller: Red Hat, Inc. Virtio block device\n"
        );
    }

    #[test]
    fn uptime_uses_the_pv_clock() {
        let s = Session::new();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        xen.time_ns = 3_725_000_000_000; // 1 h 2 min 5 s
        xen.wallclock = 1_157_054_080 - 3725; // so that now is 19:54:40
        assert_eq!(s.run(&mut xen, &["uptime"])[0], " 19:54:40 up  1:02\n");
        assert_eq!(s.one("uptime -p"), "uptime: takes no arguments\n");
    }

    #[test]
    fn halt_and_reboot_shut_down_and_report_refusal() {
        let s = Session::new();
        let mut xen = FakeXen::refusing(Errno::EPERM);
        let out = s.run(&mut xen, &["halt", "poweroff", "reboot"]);
        assert_eq!(
            out[0],
            "oxen-dom0: powering off\nhalt: the hypervisor refused sched_op shutdown: -EPERM (operation not permitted)\n"
        );
        assert!(out[2].starts_with("oxen-dom0: rebooting\n"));
        assert_eq!(
            xen.calls,
            vec![
                Call::Shutdown(SHUTDOWN_POWEROFF),
                Call::Shutdown(SHUTDOWN_POWEROFF),
                Call::Shutdown(SHUTDOWN_REBOOT)
            ]
        );
    }

    #[test]
    fn xm_runs_from_the_shell_directory() {
        let s = Session::new();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = s.run(&mut xen, &["cd /boot", "xm create -n brun.cfg", "xm list"]);
        assert!(
            out[1].contains("(name brun)") && out[1].contains("(memory 64)"),
            "{}",
            out[1]
        );
        assert_eq!(
            out[2],
            "xm list: the hypervisor refused sysctl getdomaininfolist: -ENOSYS (function not implemented)\n"
        );
    }

    #[test]
    fn banner_names_version_and_interface() {
        let v = FakeXen::refusing(Errno::ENOSYS).version();
        assert_eq!(
            banner(&v),
            format!(
                "oxen-dom0 {VERSION}: Oxen's control domain, on Xen 4.1.0-oxen (xen-3.0-x86_32p)"
            )
        );
    }
}
