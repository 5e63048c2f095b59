//! The toolstack's state and dom0's daemons: the domains this dom0 built, the
//! xenstore daemon serving their store rings, the console daemon keeping
//! their output, and what happens when one of them shuts down.
//!
//! - Creating ([`Toolstack::create`]): the builder ([`crate::builder`]), then
//!   the xenstore entries of XEN-PV-ABI.md §13.3 under `/local/domain/<id>`
//!   (the domain may read its home; it may write `control/shutdown`, `data`
//!   and `device`, as libxl 4.1 makes them), `/vm/<uuid>`, the introduction
//!   to xenstored, dom0's ends of the store and console channels bound and the
//!   two ring pages mapped, then `unpausedomain`. A failure after the build
//!   undoes all of it and destroys the domain; the message names the step.
//! - xenstored: on an event of a domain's store port (and after introduce and
//!   after anything dom0 writes) every connection with queued output and the
//!   signalled one are served with `service_ring`; the domain is notified when
//!   bytes moved.
//! - Console daemon: a domain's `out` ring is drained into its
//!   [`ConsoleLog`] (16 KiB, oldest dropped) and the domain notified; while
//!   attached (`xm console`) the new output also goes to dom0's console and
//!   typed bytes go to the domain's `in` ring, until Ctrl-] (0x1d).
//! - VIRQ_DOM_EXC: every domain this dom0 built is looked up with
//!   getdomaininfo; one that is gone is forgotten; one that shut down gets its
//!   config's `on_poweroff`/`on_reboot`/`on_crash` (crash and watchdog use
//!   `on_crash`): destroy, restart (destroy, then create again from the same
//!   config, unless it was itself a restart that ran less than
//!   [`MIN_RESTART_NS`]: like xend, dom0 does not feed a restart loop), or
//!   preserve (left alone). Suspend is left alone.
//!
//! Invariants: a domain is destroyed only after dom0 dropped its mappings of
//! the domain's pages and closed its ends of the channels (a mapped frame
//! would keep the domain a zombie); a domain released from xenstored has no
//! xenstore home left; the attached console, if any, is a domain this dom0
//! serves.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;

use xen_abi::domctl::{
    XEN_DOMCTL_GETDOMAININFO, XEN_DOMCTL_UNPAUSEDOMAIN, XEN_DOMINF_DYING, XEN_DOMINF_SHUTDOWN,
    XenDomctl, XenDomctlGetdomaininfo, dominf_shutdown_reason,
};
use xen_abi::domid::{DOMID_FIRST_RESERVED, DomId};
use xen_abi::errno::Errno;
use xen_abi::evtchn::VIRQ_DOM_EXC;
use xen_abi::sched::{SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT, SHUTDOWN_SUSPEND, shutdown_reason_name};
use xen_abi::types::{EvtchnPort, XenPfn};
use xenstored::{Access, Perms, Xenstored};
use xm_config::{DeviceType, DiskBackend, DomainConfig, ShutdownAction, Uuid};

use crate::builder::{BuildPlan, NewDomain, build_domain, destroy, generated_uuid};
use crate::hv::{Hypervisor, Mapping, Refused};
use crate::rings::{ConsoleLog, StorePage, console_read_out, console_write_in};

/// A restarted domain that shuts down sooner than this after its restart is
/// not restarted again (xend's MINIMUM_RESTART_TIME, 20 s): it is destroyed.
pub const MIN_RESTART_NS: u64 = 20_000_000_000;
/// The byte that ends `xm console` (Ctrl-]).
pub const DETACH: u8 = 0x1d;

/// One shared page and event channel with a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The domain's port.
    pub remote: EvtchnPort,
    /// dom0's port, once bound.
    pub local: Option<EvtchnPort>,
    pub mfn: XenPfn,
    pub mapping: Option<Mapping>,
}

impl Channel {
    fn new(remote: EvtchnPort, mfn: XenPfn) -> Self {
        Self {
            remote,
            local: None,
            mfn,
            mapping: None,
        }
    }
}

/// A domain this dom0 built and serves.
#[derive(Clone, Debug)]
pub struct Managed<'a> {
    pub domid: DomId,
    pub config: DomainConfig,
    pub uuid: [u8; 16],
    pub kernel: &'a [u8],
    pub ramdisk: Option<&'a [u8]>,
    pub store: Channel,
    pub console: Channel,
    pub log: ConsoleLog,
    /// System time when it was unpaused.
    pub started_ns: u64,
    /// It was started by an `on_*` restart.
    pub restarted: bool,
    /// Its shutdown was seen and left alone (preserve, suspend).
    pub shutdown_seen: bool,
    /// Its xenstore connection broke (reported once).
    pub store_broken: bool,
}

/// dom0's device back ends (blkback), as the toolstack reaches them.
pub trait Backends {
    /// Drops everything the back ends hold of `domid`'s devices (ring
    /// mappings, bound ports): called before the domain is destroyed, since
    /// a mapped grant keeps a domain from dying.
    fn release_domain(&mut self, xs: &mut Xenstored, domid: DomId);
}

/// The toolstack's state. See the module documentation.
pub struct Toolstack<'a> {
    pub xs: Xenstored,
    backends: Option<alloc::boxed::Box<dyn Backends + 'a>>,
    domains: Vec<Managed<'a>>,
    dom_exc: Option<EvtchnPort>,
    attached: Option<DomId>,
}

impl Default for Toolstack<'_> {
    fn default() -> Self {
        Self::new()
    }
}

fn ro(domid: DomId) -> Perms {
    let mut p = Perms::new(0, Access::None);
    p.acl.push((domid, Access::Read));
    p
}

fn rw(domid: DomId) -> Perms {
    Perms::new(domid, Access::None)
}

fn xs_failed(what: &str, e: xenstored::XsError) -> String {
    format!("xenstore refused {what}: {e}")
}

/// What dom0 prints when it applies a shutdown action.
fn action_name(a: ShutdownAction) -> &'static str {
    match a {
        ShutdownAction::Destroy => "destroy",
        ShutdownAction::Restart => "restart",
        ShutdownAction::Preserve => "preserve",
        ShutdownAction::RenameRestart => "rename-restart",
        ShutdownAction::CoredumpDestroy => "coredump-destroy",
        ShutdownAction::CoredumpRestart => "coredump-restart",
    }
}

impl<'a> Toolstack<'a> {
    pub fn new() -> Self {
        Self {
            xs: Xenstored::new(),
            backends: None,
            domains: Vec::new(),
            dom_exc: None,
            attached: None,
        }
    }

    /// Plugs in the device back ends (once, at boot).
    pub fn set_backends(&mut self, b: alloc::boxed::Box<dyn Backends + 'a>) {
        self.backends = Some(b);
    }

    /// The domains this dom0 serves.
    pub fn managed(&self) -> &[Managed<'a>] {
        &self.domains
    }

    fn find(&self, domid: DomId) -> Option<usize> {
        self.domains.iter().position(|d| d.domid == domid)
    }

    /// Binds VIRQ_DOM_EXC (once, at boot) and returns its port.
    pub fn bind_dom_exc(&mut self, hv: &mut dyn Hypervisor) -> Result<EvtchnPort, Refused> {
        let port = hv.evtchn_bind_virq(VIRQ_DOM_EXC).map_err(|errno| Refused {
            what: "event_channel_op bind_virq",
            errno,
        })?;
        self.dom_exc = Some(port);
        Ok(port)
    }

    /// The domain whose console `xm console` is attached to.
    pub fn attached(&self) -> Option<DomId> {
        self.attached
    }

    // ------------------------------------------------------------ names

    /// `/local/domain/<domid>/name`, if the domain has one in xenstore.
    pub fn name_of(&mut self, domid: DomId) -> Option<String> {
        let v = self.xs.read(&format!("/local/domain/{domid}/name")).ok()?;
        String::from_utf8(v).ok()
    }

    /// A domain given as an id or a name known to xenstore.
    pub fn resolve(&mut self, text: &str) -> Result<DomId, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return match text.parse::<u32>() {
                Ok(id) if id < u32::from(DOMID_FIRST_RESERVED) => Ok(id as DomId),
                _ => Err(format!("'{text}' is not a valid domain id")),
            };
        }
        self.domid_named(text)
            .ok_or_else(|| format!("domain '{text}' does not exist"))
    }

    fn domid_named(&mut self, name: &str) -> Option<DomId> {
        let ids = self.xs.directory("/local/domain").ok()?;
        ids.iter()
            .filter_map(|id| id.parse::<DomId>().ok())
            .find(|&id| self.name_of(id).as_deref() == Some(name))
    }

    // ------------------------------------------------------------ create

    /// Builds, registers and starts a domain from `config` (the kernel and
    /// ramdisk already read from the initrd). Prints `Started domain <name>
    /// (id=<id>)`; returns the id, or one line saying which step failed.
    pub fn create(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        config: &DomainConfig,
        kernel: &'a [u8],
        ramdisk: Option<&'a [u8]>,
    ) -> Result<DomId, String> {
        if let Some(id) = self.domid_named(&config.name) {
            return Err(format!(
                "domain '{}' already exists with id {id}",
                config.name
            ));
        }
        let uuid = config
            .uuid
            .map(|u| u.0)
            .unwrap_or_else(|| generated_uuid(hv.system_time_ns() ^ (hv.wallclock_base() << 20)));
        let plan = BuildPlan {
            handle: uuid,
            memory_mib: config.memory_mib,
            kernel,
            ramdisk,
            cmdline: &config.cmdline,
        };
        let new = build_domain(hv, &plan).map_err(|e| e.to_string())?;
        let mut m = Managed {
            domid: new.domid,
            config: config.clone(),
            uuid,
            kernel,
            ramdisk,
            store: Channel::new(new.store_port, new.store_mfn),
            console: Channel::new(new.console_port, new.console_mfn),
            log: ConsoleLog::default(),
            started_ns: 0,
            restarted: false,
            shutdown_seen: false,
            store_broken: false,
        };
        if let Err(why) = self.connect(hv, &mut m, &new) {
            let teardown = self.release(hv, &mut m);
            let gone = match teardown.and_then(|_| destroy(hv, m.domid)) {
                Ok(()) => format!("domain {} destroyed", m.domid),
                Err(e) => format!("domain {} left behind: {e}", m.domid),
            };
            return Err(format!("{why}; {gone}"));
        }
        if new.cmdline_truncated {
            let _ = writeln!(
                out,
                "Warning: the kernel command line was cut to 1023 bytes"
            );
        }
        m.started_ns = hv.system_time_ns();
        let domid = m.domid;
        self.domains.push(m);
        // Anything the domain wrote before this point is served now.
        self.service_store(hv, domid, out);
        self.service_console(hv, domid, out);
        let _ = writeln!(out, "Started domain {} (id={domid})", config.name);
        Ok(domid)
    }

    /// Xenstore entries, introduce, channels, pages, unpause.
    fn connect(
        &mut self,
        hv: &mut dyn Hypervisor,
        m: &mut Managed<'a>,
        new: &NewDomain,
    ) -> Result<(), String> {
        self.write_entries(m, new)
            .map_err(|(what, e)| xs_failed(&what, e))?;
        self.xs
            .introduce(m.domid, m.store.mfn, m.store.remote)
            .map_err(|e| xs_failed("introduce", e))?;
        for ch in [&mut m.store, &mut m.console] {
            let map = hv.map_foreign(m.domid, ch.mfn).map_err(|errno| {
                Refused {
                    what: "update_va_mapping_otherdomain",
                    errno,
                }
                .to_string()
            })?;
            ch.mapping = Some(map);
            let local = hv
                .evtchn_bind_interdomain(m.domid, ch.remote)
                .map_err(|errno| {
                    Refused {
                        what: "event_channel_op bind_interdomain",
                        errno,
                    }
                    .to_string()
                })?;
            ch.local = Some(local);
        }
        let mut op = XenDomctl::new(XEN_DOMCTL_UNPAUSEDOMAIN, m.domid, &[0u8; 0]);
        hv.domctl(&mut op).map_err(|errno| {
            Refused {
                what: "domctl unpausedomain",
                errno,
            }
            .to_string()
        })
    }

    fn write_entries(
        &mut self,
        m: &Managed<'a>,
        new: &NewDomain,
    ) -> Result<(), (String, xenstored::XsError)> {
        let id = m.domid;
        let cfg = &m.config;
        let home = format!("/local/domain/{id}");
        let uuid = Uuid(m.uuid).to_string();
        let vm = format!("/vm/{uuid}");
        let xs = &mut self.xs;
        let w = |xs: &mut Xenstored, path: String, v: &[u8]| {
            xs.write(&path, v).map_err(|e| (format!("write {path}"), e))
        };
        let p = |xs: &mut Xenstored, path: String, perms: Perms| {
            xs.set_perms(&path, perms)
                .map_err(|e| (format!("set_perms {path}"), e))
        };
        let mk = |xs: &mut Xenstored, path: String| {
            xs.mkdir(&path).map_err(|e| (format!("mkdir {path}"), e))
        };
        mk(xs, vm.clone())?;
        p(xs, vm.clone(), ro(id))?;
        w(xs, format!("{vm}/uuid"), uuid.as_bytes())?;
        w(xs, format!("{vm}/name"), cfg.name.as_bytes())?;
        w(xs, format!("{vm}/image/kernel"), cfg.kernel.as_bytes())?;
        mk(xs, home.clone())?;
        p(xs, home.clone(), ro(id))?;
        w(xs, format!("{home}/vm"), vm.as_bytes())?;
        w(xs, format!("{home}/name"), cfg.name.as_bytes())?;
        w(xs, format!("{home}/domid"), id.to_string().as_bytes())?;
        let kib = u64::from(cfg.memory_mib) * 1024;
        let max_kib = u64::from(cfg.maxmem_mib.max(cfg.memory_mib)) * 1024;
        w(
            xs,
            format!("{home}/memory/target"),
            kib.to_string().as_bytes(),
        )?;
        w(
            xs,
            format!("{home}/memory/static-max"),
            max_kib.to_string().as_bytes(),
        )?;
        w(xs, format!("{home}/cpu/0/availability"), b"online")?;
        w(
            xs,
            format!("{home}/store/ring-ref"),
            new.store_mfn.to_string().as_bytes(),
        )?;
        w(
            xs,
            format!("{home}/store/port"),
            new.store_port.to_string().as_bytes(),
        )?;
        w(
            xs,
            format!("{home}/console/ring-ref"),
            new.console_mfn.to_string().as_bytes(),
        )?;
        w(
            xs,
            format!("{home}/console/port"),
            new.console_port.to_string().as_bytes(),
        )?;
        w(xs, format!("{home}/console/type"), b"xenconsoled")?;
        w(
            xs,
            format!("{home}/console/limit"),
            crate::rings::CONSOLE_LOG_BYTES.to_string().as_bytes(),
        )?;
        mk(xs, format!("{home}/control"))?;
        w(xs, format!("{home}/control/shutdown"), b"")?;
        p(xs, format!("{home}/control/shutdown"), rw(id))?;
        for d in ["data", "device"] {
            mk(xs, format!("{home}/{d}"))?;
            p(xs, format!("{home}/{d}"), rw(id))?;
        }
        // The vbds, as xend writes them (XEN-PV-ABI.md §11.3): `phy:` ones
        // only for now (`file:` images need dom0's filesystem).
        for d in cfg.disks.iter().filter(|d| d.backend == DiskBackend::Phy) {
            let dev = d.vdev;
            let be = format!("/local/domain/0/backend/vbd/{id}/{dev}");
            let fe = format!("{home}/device/vbd/{dev}");
            mk(xs, be.clone())?;
            p(xs, be.clone(), ro(id))?;
            let device_type = match d.device_type {
                DeviceType::Disk => "disk",
                DeviceType::Cdrom => "cdrom",
            };
            for (k, v) in [
                ("domain", cfg.name.as_str()),
                ("frontend", fe.as_str()),
                ("uuid", uuid.as_str()),
                ("dev", d.vdev_name.as_str()),
                ("params", d.target.as_str()),
                ("type", "phy"),
                ("mode", d.mode.xenstore_mode()),
                ("device-type", device_type),
                ("online", "1"),
                ("frontend-id", &id.to_string()),
            ] {
                w(xs, format!("{be}/{k}"), v.as_bytes())?;
            }
            w(xs, format!("{be}/state"), b"1")?;
            mk(xs, fe.clone())?;
            p(xs, fe.clone(), rw(id))?;
            for (k, v) in [
                ("backend", be.as_str()),
                ("backend-id", "0"),
                ("virtual-device", &dev.to_string()),
                ("device-type", device_type),
                ("state", "1"),
            ] {
                w(xs, format!("{fe}/{k}"), v.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Drops everything dom0 holds of `m`: its pages, dom0's ports, its
    /// xenstored connection and xenstore entries, its console attachment.
    /// Returns the first refusal (and goes on with the rest).
    fn release(&mut self, hv: &mut dyn Hypervisor, m: &mut Managed<'a>) -> Result<(), Refused> {
        let mut first = Ok(());
        if let Some(b) = &mut self.backends {
            b.release_domain(&mut self.xs, m.domid);
        }
        for ch in [&mut m.store, &mut m.console] {
            if let Some(map) = ch.mapping.take()
                && let Err(errno) = hv.unmap_foreign(map)
            {
                first = first.and(Err(Refused {
                    what: "update_va_mapping (unmap)",
                    errno,
                }));
            }
            if let Some(port) = ch.local.take()
                && let Err(errno) = hv.evtchn_close(port)
            {
                first = first.and(Err(Refused {
                    what: "event_channel_op close",
                    errno,
                }));
            }
        }
        if self.xs.is_domain_introduced(m.domid) {
            let _ = self.xs.release(m.domid);
        }
        let _ = self.xs.rm(&format!("/local/domain/{}", m.domid));
        let _ = self
            .xs
            .rm(&format!("/local/domain/0/backend/vbd/{}", m.domid));
        let _ = self
            .xs
            .rm(&format!("/local/domain/0/error/backend/vbd/{}", m.domid));
        let _ = self.xs.rm(&format!("/vm/{}", Uuid(m.uuid)));
        if self.attached == Some(m.domid) {
            self.attached = None;
        }
        first
    }

    /// Forgets `domid` (if this dom0 serves it) and releases what dom0 held.
    fn forget(&mut self, hv: &mut dyn Hypervisor, domid: DomId) -> Result<(), Refused> {
        match self.find(domid) {
            Some(i) => {
                let mut m = self.domains.remove(i);
                self.release(hv, &mut m)
            }
            None => Ok(()),
        }
    }

    /// Destroys `domid`: releases what dom0 holds of it first, then
    /// `domctl destroydomain`.
    pub fn destroy(&mut self, hv: &mut dyn Hypervisor, domid: DomId) -> Result<(), Refused> {
        self.forget(hv, domid)?;
        destroy(hv, domid)
    }

    // ------------------------------------------------------------ control

    /// Writes `control/shutdown` (`poweroff`, `reboot`, ...) for `domid` and
    /// serves the domain's ring so the watch event reaches it.
    pub fn request_shutdown(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        domid: DomId,
        value: &str,
    ) -> Result<(), String> {
        let home = format!("/local/domain/{domid}");
        if self.xs.read(&home).is_err() {
            return Err(format!("domain {domid} has no xenstore home ({home})"));
        }
        self.xs
            .write(&format!("{home}/control/shutdown"), value.as_bytes())
            .map_err(|e| xs_failed("write control/shutdown", e))?;
        self.flush_store(hv, out);
        Ok(())
    }

    // ------------------------------------------------------------ events

    /// Handles an event on `port`; false if the port is not the toolstack's.
    pub fn on_event(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        port: EvtchnPort,
    ) -> bool {
        if self.dom_exc == Some(port) {
            self.dom_exc_fired(hv, out);
            return true;
        }
        let hit = self.domains.iter().find_map(|d| {
            if d.store.local == Some(port) {
                Some((d.domid, true))
            } else if d.console.local == Some(port) {
                Some((d.domid, false))
            } else {
                None
            }
        });
        match hit {
            Some((domid, true)) => {
                self.service_store(hv, domid, out);
                self.flush_store(hv, out);
                true
            }
            Some((domid, false)) => {
                self.service_console(hv, domid, out);
                true
            }
            None => false,
        }
    }

    /// Serves the store ring of every domain with queued xenstore output.
    pub fn flush_store(&mut self, hv: &mut dyn Hypervisor, out: &mut dyn Write) {
        for domid in self.xs.connections_with_output() {
            if domid == 0 {
                // dom0's own watch events: the toolstack sets none.
                let _ = self.xs.take_messages(0);
            } else {
                self.service_store(hv, domid, out);
            }
        }
    }

    /// One `service_ring` pass over `domid`'s store page, notifying it when
    /// bytes moved.
    pub fn service_store(&mut self, hv: &mut dyn Hypervisor, domid: DomId, out: &mut dyn Write) {
        let Some(i) = self.find(domid) else { return };
        let (Some(map), Some(port)) = (self.domains[i].store.mapping, self.domains[i].store.local)
        else {
            return;
        };
        let Some(page) = hv.page(map) else { return };
        match self.xs.service_ring(domid, &mut StorePage(page)) {
            Ok(act) => {
                if act.notify() {
                    let _ = hv.evtchn_send(port);
                }
            }
            Err(e) => {
                let m = &mut self.domains[i];
                if !m.store_broken {
                    m.store_broken = true;
                    let _ = writeln!(out, "xenstored: domain {domid}'s connection stopped: {e:?}");
                }
            }
        }
    }

    /// Drains `domid`'s console output into its log (and onto dom0's console
    /// if attached), notifying it when space was freed.
    pub fn service_console(&mut self, hv: &mut dyn Hypervisor, domid: DomId, out: &mut dyn Write) {
        let Some(i) = self.find(domid) else { return };
        let (Some(map), Some(port)) = (
            self.domains[i].console.mapping,
            self.domains[i].console.local,
        ) else {
            return;
        };
        let Some(page) = hv.page(map) else { return };
        let mut bytes = Vec::new();
        if let Ok(n) = console_read_out(page, &mut bytes)
            && n > 0
        {
            let _ = hv.evtchn_send(port);
            self.domains[i].log.push(&bytes);
            if self.attached == Some(domid) {
                let _ = out.write_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// `xm console`: prints what `domid`'s console kept and attaches to it.
    pub fn attach(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        domid: DomId,
    ) -> Result<(), String> {
        let Some(i) = self.find(domid) else {
            return Err(format!(
                "domain {domid} was not started by this dom0; its console is not served"
            ));
        };
        self.service_console(hv, domid, out);
        let kept = self.domains[i].log.contents();
        let _ = out.write_str(&String::from_utf8_lossy(&kept));
        self.attached = Some(domid);
        Ok(())
    }

    /// Bytes typed while attached: sent to the domain's `in` ring up to
    /// Ctrl-], which detaches (a newline is printed). Returns whether the
    /// console is still attached.
    pub fn console_input(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        typed: &[u8],
    ) -> bool {
        let Some(domid) = self.attached else {
            return false;
        };
        let (send, detach) = match typed.iter().position(|&b| b == DETACH) {
            Some(at) => (&typed[..at], true),
            None => (typed, false),
        };
        if let Some(i) = self.find(domid)
            && let (Some(map), Some(port)) = (
                self.domains[i].console.mapping,
                self.domains[i].console.local,
            )
            && !send.is_empty()
            && let Some(page) = hv.page(map)
            && console_write_in(page, send).is_ok_and(|n| n > 0)
        {
            let _ = hv.evtchn_send(port);
        }
        if detach {
            self.attached = None;
            let _ = writeln!(out);
        }
        !detach
    }

    // ------------------------------------------------------------ VIRQ_DOM_EXC

    fn info(
        hv: &mut dyn Hypervisor,
        domid: DomId,
    ) -> Result<Option<XenDomctlGetdomaininfo>, Errno> {
        let mut op = XenDomctl::new(
            XEN_DOMCTL_GETDOMAININFO,
            domid,
            &XenDomctlGetdomaininfo::default(),
        );
        match hv.domctl(&mut op) {
            Ok(()) => {
                let i: XenDomctlGetdomaininfo = op.payload();
                Ok((i.domain == domid).then_some(i))
            }
            Err(Errno::ESRCH) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// VIRQ_DOM_EXC: look at every domain this dom0 serves.
    pub fn dom_exc_fired(&mut self, hv: &mut dyn Hypervisor, out: &mut dyn Write) {
        let ids: Vec<DomId> = self.domains.iter().map(|d| d.domid).collect();
        for domid in ids {
            let info = match Self::info(hv, domid) {
                Ok(i) => i,
                Err(errno) => {
                    let _ = writeln!(
                        out,
                        "dom0: {}",
                        Refused {
                            what: "domctl getdomaininfo",
                            errno
                        }
                    );
                    continue;
                }
            };
            let Some(info) = info else {
                let name = self.name_of(domid).unwrap_or_default();
                let _ = self.forget(hv, domid);
                let _ = writeln!(out, "dom0: domain {name} (id={domid}) is gone");
                continue;
            };
            if info.flags & XEN_DOMINF_SHUTDOWN == 0 || info.flags & XEN_DOMINF_DYING != 0 {
                continue;
            }
            self.shut_down(hv, out, domid, dominf_shutdown_reason(info.flags));
        }
    }

    fn shut_down(
        &mut self,
        hv: &mut dyn Hypervisor,
        out: &mut dyn Write,
        domid: DomId,
        reason: u32,
    ) {
        let Some(i) = self.find(domid) else { return };
        if self.domains[i].shutdown_seen {
            return;
        }
        // Its last words, before the pages go.
        self.service_console(hv, domid, out);
        let m = &self.domains[i];
        let (config, kernel, ramdisk, started_ns, restarted) = (
            m.config.clone(),
            m.kernel,
            m.ramdisk,
            m.started_ns,
            m.restarted,
        );
        let (key, action) = match reason {
            SHUTDOWN_POWEROFF => ("on_poweroff", config.on_poweroff),
            SHUTDOWN_REBOOT => ("on_reboot", config.on_reboot),
            SHUTDOWN_SUSPEND => {
                self.domains[i].shutdown_seen = true;
                let _ = writeln!(
                    out,
                    "dom0: domain {} (id={domid}) suspended; left as it is",
                    config.name
                );
                return;
            }
            _ => ("on_crash", config.on_crash),
        };
        let why = shutdown_reason_name(reason).unwrap_or("unknown reason");
        let name = config.name.clone();
        let mut line = format!(
            "dom0: domain {name} (id={domid}) shut down ({why}); {key} = {}",
            action_name(action)
        );
        let restart = matches!(
            action,
            ShutdownAction::Restart
                | ShutdownAction::RenameRestart
                | ShutdownAction::CoredumpRestart
        );
        if action == ShutdownAction::Preserve {
            self.domains[i].shutdown_seen = true;
            let _ = writeln!(out, "{line}: preserved");
            return;
        }
        let too_fast =
            restart && restarted && hv.system_time_ns().saturating_sub(started_ns) < MIN_RESTART_NS;
        let again = restart && !too_fast;
        match self.destroy(hv, domid) {
            Ok(()) => line.push_str(": destroyed"),
            Err(e) => {
                let _ = writeln!(out, "{line}: {e}");
                return;
            }
        }
        if too_fast {
            line.push_str(" (restarted less than 20 s ago: not restarted again)");
        }
        let _ = writeln!(out, "{line}");
        if again {
            match self.create(hv, out, &config, kernel, ramdisk) {
                Ok(new) => {
                    if let Some(i) = self.find(new) {
                        self.domains[i].restarted = true;
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "dom0: restarting {name} failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
