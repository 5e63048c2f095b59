//! `xm`, the toolstack's command line, as the tutorial uses it: `create`,
//! `list`, `top`, `console`, `pause`, `unpause`, `shutdown`, `reboot`,
//! `destroy`, `dmesg`, `info`, `help`.
//!
//! Rules:
//! - subcommands live in one table ([`SUBCOMMANDS`]): help and dispatch come
//!   from it;
//! - a config file is looked up as given (from the shell's directory), then in
//!   `/etc/xen/` (xm's search path), parsed by `xm_config` with the command
//!   line's `key=value` settings overriding its keys (as xm's `xm create
//!   small.cfg name=s1`), its warnings printed, and its kernel (and ramdisk)
//!   must be files of dom0's initrd;
//! - anything the hypervisor must do is asked of it with the real hypercall
//!   (sysctl/domctl, interface versions from `xen_abi`); a refusal is printed
//!   as `xm <sub>: the hypervisor refused <call>: -E... (text)` and nothing is
//!   made up in its place;
//! - domain 0 cannot be paused, destroyed or shut down from `xm` (that would
//!   stop this shell; `halt`/`reboot` do it on purpose);
//! - `create` builds and starts the domain ([`crate::toolstack`]);
//!   `shutdown`/`reboot` write `control/shutdown` in xenstore (the domain acts
//!   on it); `destroy` releases what dom0 holds of the domain, then destroys
//!   it; `console` attaches to the console daemon's copy of its output.
//!
//! Domain names come from xenstore (`/local/domain/<id>/name`).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use initrd::{Archive, NodeId};
use xen_abi::domctl::{
    XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_PAUSEDOMAIN, XEN_DOMCTL_UNPAUSEDOMAIN, XEN_DOMINF_BLOCKED,
    XEN_DOMINF_DYING, XEN_DOMINF_PAUSED, XEN_DOMINF_RUNNING, XEN_DOMINF_SHUTDOWN, XenDomctl,
    XenDomctlGetdomaininfo, dominf_shutdown_reason,
};
use xen_abi::domid::{DOMID_FIRST_RESERVED, DomId};
use xen_abi::sched::SHUTDOWN_CRASH;
use xen_abi::sysctl::{
    XEN_SYSCTL_GETDOMAININFOLIST, XEN_SYSCTL_PHYSCAP_HVM, XEN_SYSCTL_PHYSCAP_HVM_DIRECTIO,
    XEN_SYSCTL_PHYSINFO, XEN_SYSCTL_READCONSOLE, XenSysctl, XenSysctlGetdomaininfolist,
    XenSysctlPhysinfo, XenSysctlReadconsole,
};
use zerocopy::IntoBytes;

use crate::hv::{Hypervisor, Refused, refused};
use crate::toolstack::Toolstack;

/// Where xm looks for a config file named without a directory, after the
/// current directory.
pub const CONFIG_DIR: &str = "/etc/xen";
/// Records fetched per `getdomaininfolist` call.
pub const LIST_BATCH: usize = 64;
/// Size of the buffer `xm dmesg` reads the hypervisor's ring into.
pub const DMESG_BUFFER: usize = 16 * 1024;

/// What `xm` works with: the initrd, the shell's directory, the toolstack's
/// state, the hypervisor and the console.
pub struct Ctx<'c, 'a> {
    pub archive: &'c Archive<'a>,
    pub cwd: NodeId,
    pub nodename: &'c str,
    pub ts: &'c mut Toolstack<'a>,
    pub hv: &'c mut dyn Hypervisor,
    pub out: &'c mut dyn Write,
}

type Run = fn(&mut Ctx<'_, '_>, &[String]) -> Result<(), String>;

/// One subcommand.
pub struct Sub {
    pub name: &'static str,
    pub args: &'static str,
    pub help: &'static str,
    run: Run,
}

/// Every subcommand, in `xm help` order.
pub const SUBCOMMANDS: &[Sub] = &[
    Sub {
        name: "create",
        args: "[-n|--dry-run] [-c] <config> [key=value...]",
        help: "create a domain from a config file (as given, or in /etc/xen); key=value overrides the file",
        run: create,
    },
    Sub {
        name: "list",
        args: "[domain...]",
        help: "list domains",
        run: list,
    },
    Sub {
        name: "top",
        args: "",
        help: "one snapshot of each domain's resource use",
        run: top,
    },
    Sub {
        name: "console",
        args: "<domain>",
        help: "attach to a domain's console (Ctrl-] returns)",
        run: console,
    },
    Sub {
        name: "pause",
        args: "<domain>",
        help: "stop scheduling a domain",
        run: pause,
    },
    Sub {
        name: "unpause",
        args: "<domain>",
        help: "schedule a paused domain again",
        run: unpause,
    },
    Sub {
        name: "shutdown",
        args: "<domain>",
        help: "shut a domain down",
        run: shutdown,
    },
    Sub {
        name: "reboot",
        args: "<domain>",
        help: "reboot a domain",
        run: reboot,
    },
    Sub {
        name: "destroy",
        args: "<domain>",
        help: "terminate a domain at once",
        run: destroy,
    },
    Sub {
        name: "block-list",
        args: "<domain>",
        help: "list a domain's virtual block devices",
        run: block_list,
    },
    Sub {
        name: "dmesg",
        args: "[-c]",
        help: "show the hypervisor's messages (-c: and clear them)",
        run: dmesg,
    },
    Sub {
        name: "info",
        args: "",
        help: "hypervisor and machine information",
        run: info,
    },
    Sub {
        name: "help",
        args: "[subcommand]",
        help: "this list",
        run: help,
    },
];

/// Runs `xm <args>`; every failure is one line `xm <sub>: <why>`.
pub fn run(ctx: &mut Ctx<'_, '_>, args: &[String]) {
    let Some((sub, rest)) = args.split_first() else {
        let _ = writeln!(ctx.out, "xm: no subcommand given; try 'xm help'");
        return;
    };
    let sub = sub.as_str();
    let Some(entry) = SUBCOMMANDS
        .iter()
        .find(|s| s.name == sub || (sub == "--help" || sub == "-h") && s.name == "help")
    else {
        let _ = writeln!(
            ctx.out,
            "xm: '{sub}' is not an xm subcommand; try 'xm help'"
        );
        return;
    };
    if let Err(why) = (entry.run)(ctx, rest) {
        let _ = writeln!(ctx.out, "xm {}: {why}", entry.name);
    }
}

fn usage(name: &str) -> String {
    let sub = SUBCOMMANDS
        .iter()
        .find(|s| s.name == name)
        .expect("usage of a table entry");
    format!("usage: xm {} {}", sub.name, sub.args)
        .trim_end()
        .to_string()
}

fn help(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    match args {
        [] => {
            let _ = writeln!(ctx.out, "usage: xm <subcommand> [args]");
            for s in SUBCOMMANDS {
                let left = format!("{} {}", s.name, s.args);
                let _ = writeln!(ctx.out, "  {left:<38} {}", s.help);
            }
            Ok(())
        }
        [name] => match SUBCOMMANDS.iter().find(|s| s.name == name) {
            Some(s) => {
                let _ = writeln!(ctx.out, "{}\n  {}", usage(s.name), s.help);
                Ok(())
            }
            None => Err(format!("'{name}' is not an xm subcommand")),
        },
        _ => Err(usage("help")),
    }
}

/// The one domain argument of a subcommand.
fn one_domain(ctx: &mut Ctx<'_, '_>, name: &str, args: &[String]) -> Result<DomId, String> {
    match args {
        [d] if !d.starts_with('-') => ctx.ts.resolve(d),
        [d] => Err(format!("unknown option '{d}' ({})", usage(name))),
        _ => Err(usage(name)),
    }
}

fn text_of(e: Refused) -> String {
    e.to_string()
}

// ---------------------------------------------------------------- create

/// The config file `name` names: as given (from the shell's directory), then
/// in [`CONFIG_DIR`] if it has no directory part. Returns its path and text.
pub fn find_config<'a>(
    archive: &Archive<'a>,
    cwd: NodeId,
    name: &str,
) -> Result<(String, &'a str), String> {
    let mut candidates = vec![initrd::normalize(&archive.path_of(cwd), name)];
    if !name.contains('/') {
        candidates.push(format!("{CONFIG_DIR}/{name}"));
    }
    let mut first_error = None;
    for path in &candidates {
        match archive.open(path) {
            Ok(bytes) => {
                let text =
                    core::str::from_utf8(bytes).map_err(|_| format!("{path}: not a text file"))?;
                return Ok((path.clone(), text));
            }
            Err(initrd::FsError::NotFound) => {}
            Err(e) => {
                first_error.get_or_insert(format!("{path}: {}", crate::fs::error_text(e)));
            }
        }
    }
    Err(first_error.unwrap_or_else(|| {
        if candidates.len() > 1 {
            format!(
                "config file '{name}' not found (looked in the current directory and {CONFIG_DIR})"
            )
        } else {
            format!("config file '{name}' not found")
        }
    }))
}

fn check_image<'a>(ctx: &Ctx<'_, 'a>, what: &str, path: &str) -> Result<&'a [u8], String> {
    match ctx.archive.open_at(ctx.cwd, path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(format!(
            "{what} image {path}: {} (it must be a file in dom0's initrd)",
            crate::fs::error_text(e)
        )),
    }
}

/// A command line `key=value` setting's key and value; the key must be a
/// key name (a Python identifier, as in a config file).
fn setting_parts(setting: &str) -> Result<(&str, &str), String> {
    let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
    let key = key.trim();
    let identifier = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if identifier {
        Ok((key, value))
    } else {
        Err(format!(
            "command line setting '{setting}': '{key}' is not a key name"
        ))
    }
}

/// Parses config file `path` with the command line's `key=value` settings
/// applied after it, as xm does (`xm create small.cfg name=s1`): a setting
/// overrides the file's value of that key and is read as a string (a number
/// or a one-element list may be given as one, as in a file). An error in a
/// setting names the command line, not the file.
pub fn parse_with_settings(
    path: &str,
    text: &str,
    settings: &[&str],
) -> Result<(xm_config::DomainConfig, Vec<xm_config::Warning>), String> {
    let (mut assignments, mut warnings) =
        xm_config::parse_assignments(path, text).map_err(|e| e.to_string())?;
    for setting in settings {
        let (key, value) = setting_parts(setting)?;
        // Line 0: on no line of the file.
        assignments.insert(xm_config::Assignment {
            key: key.to_string(),
            line: 0,
            column: 0,
            value: xm_config::Item {
                value: xm_config::Value::Str(value.trim().to_string()),
                line: 0,
                column: 0,
            },
        });
    }
    let (cfg, more) =
        xm_config::DomainConfig::from_assignments(path, &assignments).map_err(|mut e| {
            if e.line() == Some(0) {
                e.location.file = "command line".into();
                e.location.line = None;
                e.location.column = None;
            }
            e.to_string()
        })?;
    warnings.extend(more.into_iter().map(|mut w| {
        if w.location.line == Some(0) {
            w.location.file = "command line".into();
            w.location.line = None;
            w.location.column = None;
        }
        w
    }));
    warnings.sort_by_key(|w| w.location.line.unwrap_or(u32::MAX));
    Ok((cfg, warnings))
}

fn create(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let mut dry_run = false;
    let mut attach = false;
    let mut file = None;
    let mut settings = Vec::new();
    for a in args {
        match a.as_str() {
            "-n" | "--dry-run" => dry_run = true,
            "-c" => attach = true,
            opt if opt.starts_with('-') => {
                return Err(format!("unknown option '{opt}' ({})", usage("create")));
            }
            setting if setting.contains('=') => {
                setting_parts(setting)?;
                settings.push(setting);
            }
            name if file.is_none() => file = Some(name),
            _ => return Err(format!("one config file only ({})", usage("create"))),
        }
    }
    let name = file.ok_or_else(|| format!("no config file given ({})", usage("create")))?;
    let (path, text) = find_config(ctx.archive, ctx.cwd, name)?;
    let _ = writeln!(ctx.out, "Using config file \"{path}\".");
    let (cfg, warnings) = parse_with_settings(&path, text, &settings)?;
    for w in &warnings {
        let _ = writeln!(ctx.out, "{w}");
    }
    let kernel = check_image(ctx, "kernel", &cfg.kernel)?;
    let ramdisk = match &cfg.ramdisk {
        Some(r) => Some(check_image(ctx, "ramdisk", r)?),
        None => None,
    };
    if dry_run {
        let _ = writeln!(ctx.out, "{}", crate::sxp::domain(&cfg).pretty());
        return Ok(());
    }
    let domid = ctx.ts.create(ctx.hv, ctx.out, &cfg, kernel, ramdisk)?;
    if attach {
        ctx.ts.attach(ctx.hv, ctx.out, domid)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- domctls

fn simple_domctl(
    hv: &mut dyn Hypervisor,
    cmd: u32,
    domid: DomId,
    what: &'static str,
) -> Result<(), Refused> {
    let mut op = XenDomctl::new(cmd, domid, &[0u8; 0]);
    refused(what, hv.domctl(&mut op)).map(|_| ())
}

fn not_dom0(domid: DomId, what: &str) -> Result<(), String> {
    if domid == 0 {
        Err(format!(
            "Domain-0 cannot be {what} (use 'halt' or 'reboot' at the prompt to stop it)"
        ))
    } else {
        Ok(())
    }
}

fn pause(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let domid = one_domain(ctx, "pause", args)?;
    not_dom0(domid, "paused")?;
    simple_domctl(ctx.hv, XEN_DOMCTL_PAUSEDOMAIN, domid, "domctl pausedomain").map_err(text_of)
}

fn unpause(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let domid = one_domain(ctx, "unpause", args)?;
    simple_domctl(
        ctx.hv,
        XEN_DOMCTL_UNPAUSEDOMAIN,
        domid,
        "domctl unpausedomain",
    )
    .map_err(text_of)
}

fn destroy(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let domid = one_domain(ctx, "destroy", args)?;
    not_dom0(domid, "destroyed")?;
    ctx.ts.destroy(ctx.hv, domid).map_err(text_of)
}

/// Asks the domain to shut down through xenstore (`control/shutdown`), as
/// xm does; the domain's own kernel acts on it.
fn control_shutdown(
    ctx: &mut Ctx<'_, '_>,
    name: &str,
    args: &[String],
    value: &str,
) -> Result<(), String> {
    let domid = one_domain(ctx, name, args)?;
    not_dom0(
        domid,
        if value == "reboot" {
            "rebooted"
        } else {
            "shut down"
        },
    )?;
    domain_info(ctx.hv, domid)?;
    ctx.ts.request_shutdown(ctx.hv, ctx.out, domid, value)
}

fn shutdown(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    control_shutdown(ctx, "shutdown", args, "poweroff")
}

fn reboot(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    control_shutdown(ctx, "reboot", args, "reboot")
}

/// `domctl getdomaininfo` for exactly `domid`.
fn domain_info(hv: &mut dyn Hypervisor, domid: DomId) -> Result<XenDomctlGetdomaininfo, String> {
    let mut op = XenDomctl::new(
        XEN_DOMCTL_GETDOMAININFO,
        domid,
        &XenDomctlGetdomaininfo::default(),
    );
    refused("domctl getdomaininfo", hv.domctl(&mut op)).map_err(text_of)?;
    let info: XenDomctlGetdomaininfo = op.payload();
    // The hypervisor answers with the first domain at or above the id asked.
    if info.domain != domid {
        return Err(format!("domain {domid} does not exist"));
    }
    Ok(info)
}

fn console(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let domid = one_domain(ctx, "console", args)?;
    if domid == 0 {
        return Err("Domain-0's console is this one".into());
    }
    domain_info(ctx.hv, domid)?;
    ctx.ts.attach(ctx.hv, ctx.out, domid)
}

// ---------------------------------------------------------------- sysctls

/// Every domain, from `sysctl getdomaininfolist` in batches of [`LIST_BATCH`].
pub fn domain_list(hv: &mut dyn Hypervisor) -> Result<Vec<XenDomctlGetdomaininfo>, Refused> {
    let mut all = Vec::new();
    let mut first: u32 = 0;
    while first < u32::from(DOMID_FIRST_RESERVED) {
        let mut batch = vec![XenDomctlGetdomaininfo::default(); LIST_BATCH];
        let bytes = batch.as_mut_slice().as_mut_bytes();
        let request = XenSysctlGetdomaininfolist {
            first_domain: first as DomId,
            max_domains: LIST_BATCH as u32,
            buffer: bytes.as_mut_ptr() as usize as u64,
            ..Default::default()
        };
        let mut op = XenSysctl::new(XEN_SYSCTL_GETDOMAININFOLIST, &request);
        refused("sysctl getdomaininfolist", hv.sysctl(&mut op, bytes))?;
        let n = (op.payload::<XenSysctlGetdomaininfolist>().num_domains as usize).min(LIST_BATCH);
        batch.truncate(n);
        let next = batch.last().map(|d| u32::from(d.domain) + 1);
        // Records must move forward; anything else ends the walk.
        batch.retain(|d| u32::from(d.domain) >= first);
        all.extend(batch);
        match next {
            Some(next) if n == LIST_BATCH && next > first => first = next,
            _ => break,
        }
    }
    Ok(all)
}

/// The six state letters of `xm list`: running, blocked, paused, shutdown,
/// crashed, dying.
pub fn state_letters(flags: u32) -> String {
    let shut = flags & XEN_DOMINF_SHUTDOWN != 0;
    let crashed = shut && dominf_shutdown_reason(flags) == SHUTDOWN_CRASH;
    [
        (flags & XEN_DOMINF_RUNNING != 0, 'r'),
        (flags & XEN_DOMINF_BLOCKED != 0, 'b'),
        (flags & XEN_DOMINF_PAUSED != 0, 'p'),
        (shut && !crashed, 's'),
        (crashed, 'c'),
        (flags & XEN_DOMINF_DYING != 0, 'd'),
    ]
    .iter()
    .map(|&(on, c)| if on { c } else { '-' })
    .collect()
}

fn mib(pages: u64) -> u64 {
    pages * 4096 / (1024 * 1024)
}

fn seconds(ns: u64) -> String {
    format!("{}.{}", ns / 1_000_000_000, ns / 100_000_000 % 10)
}

fn selected(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<Vec<XenDomctlGetdomaininfo>, String> {
    if let Some(opt) = args.iter().find(|a| a.starts_with('-')) {
        return Err(format!("unknown option '{opt}'"));
    }
    let wanted: Vec<DomId> = args
        .iter()
        .map(|a| ctx.ts.resolve(a))
        .collect::<Result<_, _>>()?;
    let all = domain_list(ctx.hv).map_err(text_of)?;
    if wanted.is_empty() {
        return Ok(all);
    }
    wanted
        .iter()
        .map(|&id| {
            all.iter()
                .find(|d| d.domain == id)
                .copied()
                .ok_or_else(|| format!("domain {id} does not exist"))
        })
        .collect()
}

fn name_for(ts: &mut Toolstack<'_>, domid: DomId) -> String {
    ts.name_of(domid)
        .unwrap_or_else(|| format!("(domain {domid})"))
}

fn list(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let infos = selected(ctx, args)?;
    let _ = writeln!(
        ctx.out,
        "{:<40} {:>3} {:>8} {:>5} {:<6} {:>9}",
        "Name", "ID", "Mem(MiB)", "VCPUs", "State", "Time(s)"
    );
    for d in &infos {
        let _ = writeln!(
            ctx.out,
            "{:<40} {:>3} {:>8} {:>5} {:<6} {:>9}",
            name_for(ctx.ts, d.domain),
            d.domain,
            mib(d.tot_pages),
            d.nr_online_vcpus,
            state_letters(d.flags),
            seconds(d.cpu_time)
        );
    }
    Ok(())
}

/// A page limit in KiB; the "no limit" values (all ones, as Xen gives
/// dom0) say so.
fn kib_limit(max_pages: u64) -> String {
    if max_pages == u64::from(u32::MAX) || max_pages == u64::MAX {
        String::from("no limit")
    } else {
        (max_pages * 4).to_string()
    }
}

fn top(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(usage("top"));
    }
    let infos = selected(ctx, &[])?;
    let _ = writeln!(
        ctx.out,
        "{:>10} {:>6} {:>10} {:>10} {:>10} {:>5}",
        "NAME", "STATE", "CPU(sec)", "MEM(k)", "MAXMEM(k)", "VCPUS"
    );
    for d in &infos {
        let _ = writeln!(
            ctx.out,
            "{:>10} {:>6} {:>10} {:>10} {:>10} {:>5}",
            name_for(ctx.ts, d.domain),
            state_letters(d.flags),
            d.cpu_time / 1_000_000_000,
            d.tot_pages * 4,
            kib_limit(d.max_pages),
            d.nr_online_vcpus
        );
    }
    Ok(())
}

/// `xm block-list`: the domain's vbds as xm 3.x prints them, from the front
/// end's xenstore nodes (a node not written yet shows as `-1`; `handle` is
/// xm's default 0, no vbd front end writes one).
fn block_list(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let domid = one_domain(ctx, "block-list", args)?;
    let dir = format!("/local/domain/{domid}/device/vbd");
    let mut devs: Vec<u32> = ctx
        .ts
        .xs
        .directory(&dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    devs.sort_unstable();
    let _ = writeln!(ctx.out, "Vdev  BE handle state evt-ch ring-ref BE-path");
    for dev in devs {
        let mut node = |n: &str| {
            ctx.ts
                .xs
                .read(&format!("{dir}/{dev}/{n}"))
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .unwrap_or_else(|| "-1".into())
        };
        let (be_id, state, evtchn, ring_ref, be) = (
            node("backend-id"),
            node("state"),
            node("event-channel"),
            node("ring-ref"),
            node("backend"),
        );
        let _ = writeln!(
            ctx.out,
            "{dev:<3}    {be_id:<3} {:<3}   {state:<3}   {evtchn:<3}   {ring_ref:<5} {be}/",
            0
        );
    }
    Ok(())
}

fn dmesg(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    let clear = match args {
        [] => false,
        [c] if c == "-c" || c == "--clear" => true,
        _ => return Err(usage("dmesg")),
    };
    let mut buf = vec![0u8; DMESG_BUFFER];
    let request = XenSysctlReadconsole {
        clear: u8::from(clear),
        incremental: 0,
        index: 0,
        buffer: buf.as_mut_ptr() as usize as u64,
        count: DMESG_BUFFER as u32,
        ..Default::default()
    };
    let mut op = XenSysctl::new(XEN_SYSCTL_READCONSOLE, &request);
    refused("sysctl readconsole", ctx.hv.sysctl(&mut op, &mut buf)).map_err(text_of)?;
    let n = (op.payload::<XenSysctlReadconsole>().count as usize).min(DMESG_BUFFER);
    let text = String::from_utf8_lossy(&buf[..n]);
    let _ = ctx.out.write_str(&text);
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = ctx.out.write_char('\n');
    }
    Ok(())
}

fn info(ctx: &mut Ctx<'_, '_>, args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err(usage("info"));
    }
    let mut op = XenSysctl::new(XEN_SYSCTL_PHYSINFO, &XenSysctlPhysinfo::default());
    refused("sysctl physinfo", ctx.hv.sysctl(&mut op, &mut [])).map_err(text_of)?;
    let p: XenSysctlPhysinfo = op.payload();
    let v = ctx.hv.version();
    let hw_caps: Vec<String> = p.hw_cap.iter().map(|w| format!("{w:08x}")).collect();
    let mut virt_caps = Vec::new();
    if p.capabilities & XEN_SYSCTL_PHYSCAP_HVM != 0 {
        virt_caps.push("hvm");
    }
    if p.capabilities & XEN_SYSCTL_PHYSCAP_HVM_DIRECTIO != 0 {
        virt_caps.push("hvm_directio");
    }
    let rows: [(&str, String); 16] = [
        ("host", ctx.nodename.into()),
        ("release", env!("CARGO_PKG_VERSION").into()),
        ("machine", "i686".into()),
        ("nr_cpus", p.nr_cpus.to_string()),
        ("nr_nodes", p.nr_nodes.to_string()),
        ("cores_per_socket", p.cores_per_socket.to_string()),
        ("threads_per_core", p.threads_per_core.to_string()),
        ("cpu_mhz", (p.cpu_khz / 1000).to_string()),
        ("hw_caps", hw_caps.join(":")),
        ("virt_caps", virt_caps.join(" ")),
        ("total_memory", mib(p.total_pages).to_string()),
        ("free_memory", mib(p.free_pages).to_string()),
        ("xen_major", v.major.to_string()),
        ("xen_minor", v.minor.to_string()),
        ("xen_extra", v.extra.clone()),
        ("xen_caps", v.capabilities.clone()),
    ];
    for (k, val) in rows {
        let _ = writeln!(ctx.out, "{k:<22} : {val}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeXen, tiny_kernel};
    use initrd::{NewEntry, write_newc};
    use xen_abi::domctl::{
        XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_DESTROYDOMAIN, XEN_DOMCTL_INTERFACE_VERSION,
    };
    use xen_abi::errno::Errno;
    use xen_abi::sched::SHUTDOWN_POWEROFF;
    use xen_abi::sysctl::XEN_SYSCTL_INTERFACE_VERSION;

    use crate::testing::BRUN;

    fn image() -> Vec<u8> {
        write_newc(&[
            NewEntry::file("etc/xen/brun.cfg", 0o644, BRUN.as_bytes().to_vec()),
            NewEntry::file(
                "etc/xen/nokernel.cfg",
                0o644,
                b"name='x'\nkernel='/boot/missing'\n".to_vec(),
            ),
            NewEntry::file(
                "etc/xen/warn.cfg",
                0o644,
                b"name='w'\nkernel='/boot/vmlinuz-2.6.18-4-xen-686'\nfoo=1\n".to_vec(),
            ),
            NewEntry::file(
                "etc/xen/bad.cfg",
                0o644,
                b"name='b'\nmemory='lots'\n".to_vec(),
            ),
            NewEntry::file("etc/xen/bin.cfg", 0o644, vec![0xff, 0xfe]),
            NewEntry::file(
                "boot/vmlinuz-2.6.18-4-xen-686",
                0o644,
                tiny_kernel(b"\xf4", 0, true),
            ),
            NewEntry::file("boot/not-elf", 0o644, b"\x7fELF".to_vec()),
            NewEntry::file(
                "etc/xen/badkernel.cfg",
                0o644,
                b"name='bk'\nkernel='/boot/not-elf'\nmemory=8\n".to_vec(),
            ),
            NewEntry::file(
                "root/local.cfg",
                0o644,
                b"name='l'\nkernel='/boot/vmlinuz-2.6.18-4-xen-686'\n".to_vec(),
            ),
        ])
        .unwrap()
    }

    /// Runs `xm <line>` from directory `cwd`; returns the output.
    fn xm(bytes: &[u8], xen: &mut FakeXen, cwd: &str, line: &str) -> String {
        let archive = Archive::parse(bytes).unwrap();
        let cwd = archive.chdir(NodeId::ROOT, cwd).unwrap();
        let mut ts = Toolstack::new();
        let mut out = String::new();
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        let mut ctx = Ctx {
            archive: &archive,
            cwd,
            nodename: "oxen-dom0",
            ts: &mut ts,
            hv: xen,
            out: &mut out,
        };
        run(&mut ctx, &args);
        out
    }

    #[test]
    fn dry_run_prints_the_domain_sxp() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        for cwd in ["/", "/boot"] {
            for arg in ["-n", "--dry-run"] {
                let out = xm(&bytes, &mut xen, cwd, &format!("create {arg} brun.cfg"));
                assert!(
                    out.starts_with("Using config file \"/etc/xen/brun.cfg\".\n(vm\n"),
                    "{out}"
                );
                assert!(out.contains("    (name brun)\n    (memory 64)\n"), "{out}");
                assert!(out.contains("(device (vif (ip 10.0.0.2)))"), "{out}");
            }
        }
        assert!(
            xen.calls.is_empty(),
            "a dry run asks nothing of the hypervisor"
        );
    }

    #[test]
    fn config_lookup_as_given_then_etc_xen() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "create -n /etc/xen/brun.cfg");
        assert!(out.contains("(name brun)"));
        let out = xm(&bytes, &mut xen, "/root", "create -n local.cfg");
        assert!(
            out.starts_with("Using config file \"/root/local.cfg\"."),
            "{out}"
        );
        // With a directory part the name is not looked up in /etc/xen.
        let out = xm(&bytes, &mut xen, "/", "create -n ./brun.cfg");
        assert_eq!(out, "xm create: config file './brun.cfg' not found\n");
        let out = xm(&bytes, &mut xen, "/", "create -n nope.cfg");
        assert_eq!(
            out,
            "xm create: config file 'nope.cfg' not found (looked in the current directory and /etc/xen)\n"
        );
        let out = xm(&bytes, &mut xen, "/", "create -n /etc");
        assert_eq!(out, "xm create: /etc: Is a directory\n");
        let out = xm(&bytes, &mut xen, "/", "create -n bin.cfg");
        assert_eq!(out, "xm create: /etc/xen/bin.cfg: not a text file\n");
    }

    #[test]
    fn config_errors_and_warnings_name_file_line_and_key() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "create -n bad.cfg");
        assert!(out.starts_with("Using config file \"/etc/xen/bad.cfg\".\nxm create: /etc/xen/bad.cfg:2: key 'memory': "), "{out}");
        assert_eq!(out.lines().count(), 2);
        let out = xm(&bytes, &mut xen, "/", "create -n warn.cfg");
        assert!(
            out.contains("/etc/xen/warn.cfg:3: key 'foo': warning: unknown key, ignored\n"),
            "{out}"
        );
        assert!(out.contains("(name w)"));
    }

    #[test]
    fn kernel_must_be_in_the_initrd() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "create -n nokernel.cfg");
        assert!(out.ends_with(
            "xm create: kernel image /boot/missing: No such file or directory (it must be a file in dom0's initrd)\n"
        ), "{out}");
        assert!(!out.contains("(vm"));
    }

    #[test]
    fn create_asks_the_hypervisor_and_reports_its_refusal() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "create brun.cfg");
        assert!(out.ends_with(
            "xm create: the hypervisor refused domctl createdomain: -ENOSYS (function not implemented)\n"
        ), "{out}");
        assert_eq!(xen.calls.len(), 1);
        let (cmd, version, domain) = xen.domctls[0];
        assert_eq!(
            (cmd, version, domain),
            (XEN_DOMCTL_CREATEDOMAIN, XEN_DOMCTL_INTERFACE_VERSION, 0)
        );
        // A config that fails validation never reaches the hypervisor.
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        xm(&bytes, &mut xen, "/", "create nokernel.cfg");
        assert!(xen.calls.is_empty());
    }

    #[test]
    fn create_builds_and_starts_the_domain() {
        let bytes = image();
        let mut xen = FakeXen::machine(1);
        let out = xm(&bytes, &mut xen, "/", "create brun.cfg");
        assert_eq!(
            out,
            "Using config file \"/etc/xen/brun.cfg\".\nStarted domain brun (id=1)\n"
        );
        assert_eq!(xen.max_mem, [(1, 64 * 1024)]);
        assert_eq!(xen.steps.last().unwrap(), "unpausedomain");
        assert!(xen.domains.as_ref().unwrap()[1].flags & XEN_DOMINF_PAUSED == 0);
    }

    #[test]
    fn a_kernel_the_builder_refuses_is_reported_and_the_domain_destroyed() {
        let bytes = image();
        let mut xen = FakeXen::machine(4);
        let out = xm(&bytes, &mut xen, "/", "create badkernel.cfg");
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("xm create: building the domain failed: kernel refused: "),
            "{out}"
        );
        assert!(last.ends_with("; domain 4 destroyed"), "{out}");
        assert!(!xen.exists(4));
    }

    #[test]
    fn create_usage_errors() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "create"),
            "xm create: no config file given (usage: xm create [-n|--dry-run] [-c] <config> [key=value...])\n"
        );
        assert!(
            xm(&bytes, &mut xen, "/", "create -x brun.cfg")
                .starts_with("xm create: unknown option '-x'")
        );
        assert!(
            xm(&bytes, &mut xen, "/", "create a.cfg b.cfg")
                .starts_with("xm create: one config file only")
        );
    }

    #[test]
    fn command_line_settings_override_the_file() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(
            &bytes,
            &mut xen,
            "/",
            "create -n brun.cfg name=s1 memory=16",
        );
        assert!(out.contains("(name s1)"), "{out}");
        assert!(out.contains("(memory 16)"), "{out}");
        assert!(!out.contains("brun)"), "{out}");
        // Without settings, the file's values.
        let out = xm(&bytes, &mut xen, "/", "create -n brun.cfg");
        assert!(out.contains("(name brun)") && out.contains("(memory 64)"));
        // A key the file does not set, and an unknown key (a warning).
        let out = xm(
            &bytes,
            &mut xen,
            "/",
            "create -n nokernel.cfg kernel=/boot/vmlinuz-2.6.18-4-xen-686 frob=1",
        );
        assert!(out.contains("(name x)"), "{out}");
        assert!(
            out.contains("command line: key 'frob': warning: unknown key, ignored\n"),
            "{out}"
        );
        assert!(
            xen.calls.is_empty(),
            "a dry run asks nothing of the hypervisor"
        );
    }

    #[test]
    fn bad_command_line_settings_are_refused_naming_the_command_line() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "create brun.cfg memory=lots");
        let last = out.lines().last().unwrap();
        assert!(
            last.starts_with("xm create: command line: key 'memory': "),
            "{out}"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "create brun.cfg 9lives=1"),
            "xm create: command line setting '9lives=1': '9lives' is not a key name\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "create brun.cfg =1"),
            "xm create: command line setting '=1': '' is not a key name\n"
        );
        assert!(xen.calls.is_empty());
    }

    #[test]
    fn block_list_shows_the_front_ends_nodes() {
        let bytes: &'static [u8] = image().leak();
        let mut xen = FakeXen::machine(1);
        let archive = Archive::parse(bytes).unwrap();
        let mut ts = Toolstack::new();
        let mut out = String::new();
        let xm = |ts: &mut Toolstack<'static>, xen: &mut FakeXen, line: &str| {
            let args: Vec<String> = line.split_whitespace().map(String::from).collect();
            let mut o = String::new();
            run(
                &mut Ctx {
                    archive: &archive,
                    cwd: NodeId::ROOT,
                    nodename: "oxen-dom0",
                    ts,
                    hv: xen,
                    out: &mut o,
                },
                &args,
            );
            o
        };
        out.push_str(&xm(
            &mut ts,
            &mut xen,
            "create brun.cfg name=small disk=phy:/dev/vda,sda1,w",
        ));
        assert!(out.ends_with("Started domain small (id=1)\n"), "{out}");
        assert_eq!(
            xm(&mut ts, &mut xen, "block-list small"),
            "Vdev  BE handle state evt-ch ring-ref BE-path\n\
             2049    0   0     1     -1    -1    /local/domain/0/backend/vbd/1/2049/\n"
        );
        // The front end published its ring and connected.
        for (k, v) in [("ring-ref", "8"), ("event-channel", "6"), ("state", "4")] {
            ts.xs
                .write(
                    &format!("/local/domain/1/device/vbd/2049/{k}"),
                    v.as_bytes(),
                )
                .unwrap();
        }
        assert_eq!(
            xm(&mut ts, &mut xen, "block-list 1"),
            "Vdev  BE handle state evt-ch ring-ref BE-path\n\
             2049    0   0     4     6     8     /local/domain/0/backend/vbd/1/2049/\n"
        );
        assert_eq!(
            xm(&mut ts, &mut xen, "block-list"),
            "xm block-list: usage: xm block-list <domain>\n"
        );
        assert_eq!(
            xm(&mut ts, &mut xen, "block-list nosuch"),
            "xm block-list: domain 'nosuch' does not exist\n"
        );
    }

    #[test]
    fn create_with_settings_builds_what_they_say() {
        let bytes = image();
        let mut xen = FakeXen::machine(1);
        let out = xm(&bytes, &mut xen, "/", "create brun.cfg name=s1 memory=16");
        assert_eq!(
            out,
            "Using config file \"/etc/xen/brun.cfg\".\nStarted domain s1 (id=1)\n"
        );
        assert_eq!(xen.max_mem, [(1, 16 * 1024)]);
    }

    #[test]
    fn list_issues_getdomaininfolist_and_reports_refusal() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "list");
        assert_eq!(
            out,
            "xm list: the hypervisor refused sysctl getdomaininfolist: -ENOSYS (function not implemented)\n"
        );
        let (cmd, version) = xen.sysctls[0];
        assert_eq!(
            (cmd, version),
            (XEN_SYSCTL_GETDOMAININFOLIST, XEN_SYSCTL_INTERFACE_VERSION)
        );
    }

    fn dom(id: DomId, flags: u32, pages: u64, cpu_ns: u64) -> XenDomctlGetdomaininfo {
        XenDomctlGetdomaininfo {
            domain: id,
            flags,
            tot_pages: pages,
            max_pages: pages,
            cpu_time: cpu_ns,
            nr_online_vcpus: 1,
            ..Default::default()
        }
    }

    #[test]
    fn list_formats_what_the_hypervisor_returns() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        xen.domains = Some(vec![
            dom(0, XEN_DOMINF_RUNNING, 65536, 143_049_000_000),
            dom(
                1,
                XEN_DOMINF_BLOCKED | XEN_DOMINF_PAUSED,
                16384,
                118_200_000_000,
            ),
            dom(
                2,
                xen_abi::domctl::dominf_with_shutdown_reason(XEN_DOMINF_SHUTDOWN, SHUTDOWN_CRASH),
                256,
                0,
            ),
        ]);
        let out = xm(&bytes, &mut xen, "/", "list");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name                                      ID Mem(MiB) VCPUs State    Time(s)"
        );
        assert_eq!(
            lines[1],
            "Domain-0                                   0      256     1 r-----     143.0"
        );
        assert_eq!(
            lines[2],
            "(domain 1)                                 1       64     1 -bp---     118.2"
        );
        assert_eq!(
            lines[3],
            "(domain 2)                                 2        1     1 ----c-       0.0"
        );
        let out = xm(&bytes, &mut xen, "/", "list 1");
        assert_eq!(out.lines().count(), 2);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "list 9"),
            "xm list: domain 9 does not exist\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "list brun"),
            "xm list: domain 'brun' does not exist\n"
        );
    }

    #[test]
    fn list_fetches_in_batches_until_a_short_one() {
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        xen.domains = Some((0..150).map(|i| dom(i, 0, 1, 0)).collect());
        let all = domain_list(&mut xen).unwrap();
        assert_eq!(all.len(), 150);
        assert_eq!(xen.sysctls.len(), 3);
        assert!(all.windows(2).all(|w| w[0].domain < w[1].domain));
    }

    #[test]
    fn top_shows_usage_and_limits() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "top"),
            "xm top: the hypervisor refused sysctl getdomaininfolist: -ENOSYS (function not implemented)\n"
        );
        let mut dom0 = dom(0, XEN_DOMINF_RUNNING, 16384, 5_300_000_000);
        dom0.max_pages = u64::from(u32::MAX);
        xen.domains = Some(vec![dom0, dom(1, XEN_DOMINF_BLOCKED, 256, 0)]);
        let out = xm(&bytes, &mut xen, "/", "top");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "      NAME  STATE   CPU(sec)     MEM(k)  MAXMEM(k) VCPUS"
        );
        assert_eq!(
            lines[1],
            "  Domain-0 r-----          5      65536   no limit     1"
        );
        assert_eq!(
            lines[2],
            "(domain 1) -b----          0       1024       1024     1"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "top x"),
            "xm top: usage: xm top\n"
        );
    }

    #[test]
    fn state_letters_follow_the_flags() {
        assert_eq!(state_letters(0), "------");
        assert_eq!(
            state_letters(XEN_DOMINF_RUNNING | XEN_DOMINF_DYING),
            "r----d"
        );
        let shut =
            xen_abi::domctl::dominf_with_shutdown_reason(XEN_DOMINF_SHUTDOWN, SHUTDOWN_POWEROFF);
        assert_eq!(state_letters(shut), "---s--");
        let crash =
            xen_abi::domctl::dominf_with_shutdown_reason(XEN_DOMINF_SHUTDOWN, SHUTDOWN_CRASH);
        assert_eq!(state_letters(crash), "----c-");
    }

    #[test]
    fn domain_operations_issue_their_domctls() {
        let bytes = image();
        for (sub, cmd, what) in [
            ("pause", XEN_DOMCTL_PAUSEDOMAIN, "domctl pausedomain"),
            ("unpause", XEN_DOMCTL_UNPAUSEDOMAIN, "domctl unpausedomain"),
            ("destroy", XEN_DOMCTL_DESTROYDOMAIN, "domctl destroydomain"),
        ] {
            let mut xen = FakeXen::refusing(Errno::ESRCH);
            let out = xm(&bytes, &mut xen, "/", &format!("{sub} 3"));
            assert_eq!(
                out,
                format!("xm {sub}: the hypervisor refused {what}: -ESRCH (no such process)\n")
            );
            assert_eq!(xen.domctls, vec![(cmd, XEN_DOMCTL_INTERFACE_VERSION, 3)]);
            let mut ok = FakeXen::refusing(Errno::ESRCH);
            ok.domctl_ok = true;
            assert_eq!(xm(&bytes, &mut ok, "/", &format!("{sub} 3")), "");
        }
    }

    #[test]
    fn domain0_is_protected_from_xm() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        for sub in ["pause 0", "destroy Domain-0", "shutdown 0", "reboot 0"] {
            let out = xm(&bytes, &mut xen, "/", sub);
            assert!(out.contains("Domain-0 cannot be"), "{out}");
        }
        assert!(xen.calls.is_empty());
        assert_eq!(
            xm(&bytes, &mut xen, "/", "console 0"),
            "xm console: Domain-0's console is this one\n"
        );
    }

    #[test]
    fn shutdown_of_a_domain_without_xenstore_home_is_refused() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::EPERM);
        let out = xm(&bytes, &mut xen, "/", "shutdown 2");
        assert_eq!(
            out,
            "xm shutdown: the hypervisor refused domctl getdomaininfo: -EPERM (operation not permitted)\n"
        );
        xen.domains = Some(vec![dom(0, 0, 1, 0), dom(4, 0, 1, 0)]);
        xen.domctl_ok = true;
        assert_eq!(
            xm(&bytes, &mut xen, "/", "reboot 4"),
            "xm reboot: domain 4 has no xenstore home (/local/domain/4)\n"
        );
    }

    #[test]
    fn console_checks_the_domain_exists() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "console 1"),
            "xm console: the hypervisor refused domctl getdomaininfo: -ENOSYS (function not implemented)\n"
        );
        xen.domains = Some(vec![dom(0, 0, 1, 0), dom(5, 0, 1, 0)]);
        xen.domctl_ok = true;
        assert_eq!(
            xm(&bytes, &mut xen, "/", "console 1"),
            "xm console: domain 1 does not exist\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "console 5"),
            "xm console: domain 5 was not started by this dom0; its console is not served\n"
        );
    }

    #[test]
    fn domain_arguments_are_checked() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "pause"),
            "xm pause: usage: xm pause <domain>\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "pause 1 2"),
            "xm pause: usage: xm pause <domain>\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "pause 32752"),
            "xm pause: '32752' is not a valid domain id\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "pause brun"),
            "xm pause: domain 'brun' does not exist\n"
        );
        assert!(xen.calls.is_empty());
    }

    #[test]
    fn dmesg_reads_the_console_ring() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "dmesg"),
            "xm dmesg: the hypervisor refused sysctl readconsole: -ENOSYS (function not implemented)\n"
        );
        xen.console = Some(b"(XEN) Oxen booted".to_vec());
        assert_eq!(xm(&bytes, &mut xen, "/", "dmesg -c"), "(XEN) Oxen booted\n");
        assert_eq!(xen.cleared, vec![false, true]);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "dmesg -x"),
            "xm dmesg: usage: xm dmesg [-c]\n"
        );
    }

    #[test]
    fn info_reads_physinfo() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        assert_eq!(
            xm(&bytes, &mut xen, "/", "info"),
            "xm info: the hypervisor refused sysctl physinfo: -ENOSYS (function not implemented)\n"
        );
        xen.physinfo = Some(XenSysctlPhysinfo {
            nr_cpus: 2,
            nr_nodes: 1,
            cores_per_socket: 2,
            threads_per_core: 1,
            cpu_khz: 2_400_000,
            total_pages: 131072,
            free_pages: 32768,
            ..Default::default()
        });
        let out = xm(&bytes, &mut xen, "/", "info");
        for want in [
            "host                   : oxen-dom0\n",
            "nr_cpus                : 2\n",
            "cpu_mhz                : 2400\n",
            "total_memory           : 512\n",
            "free_memory            : 128\n",
            "xen_major              : 4\n",
            "xen_caps               : xen-3.0-x86_32p\n",
        ] {
            assert!(out.contains(want), "{want:?} in {out}");
        }
    }

    #[test]
    fn help_and_unknown_subcommands() {
        let bytes = image();
        let mut xen = FakeXen::refusing(Errno::ENOSYS);
        let out = xm(&bytes, &mut xen, "/", "help");
        for s in SUBCOMMANDS {
            assert!(
                out.contains(&format!("  {} ", s.name)),
                "{} in {out}",
                s.name
            );
        }
        assert_eq!(
            xm(&bytes, &mut xen, "/", "help pause"),
            "usage: xm pause <domain>\n  stop scheduling a domain\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", "frob"),
            "xm: 'frob' is not an xm subcommand; try 'xm help'\n"
        );
        assert_eq!(
            xm(&bytes, &mut xen, "/", ""),
            "xm: no subcommand given; try 'xm help'\n"
        );
    }
}
