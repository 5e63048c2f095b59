//! The toolstack against the fake hypervisor, with the tests playing the
//! domU's side of the store and console rings in the fake's frames.

use super::*;
use crate::testing::{BRUN, FakeXen, tiny_kernel};
use core::mem::offset_of;
use xen_abi::console::{XenconsInterface, mask_xencons_in_idx, mask_xencons_out_idx};
use xen_abi::sched::SHUTDOWN_CRASH;
use xen_abi::xenstore::{
    XENSTORE_RING_SIZE, XS_ERROR, XS_READ, XS_WATCH, XS_WATCH_EVENT, XS_WRITE,
    XenstoreDomainInterface, mask_xenstore_idx,
};
use xenstored::Message;
use xenstored::wire::{HEADER_LEN, decode_header};

use crate::hv::SharedPage;

const SMALL: &str = "name = 'small'\nkernel = '/k'\nmemory = 8\non_reboot = 'restart'\n\
                     on_crash = 'preserve'\n";

fn config(text: &str) -> DomainConfig {
    xm_config::parse("/etc/xen/t.cfg", text).unwrap().0
}

struct World {
    xen: FakeXen,
    ts: Toolstack<'static>,
    out: String,
}

fn kernel() -> &'static [u8] {
    tiny_kernel(b"\xf4", 0, true).leak()
}

impl World {
    fn new() -> Self {
        World {
            xen: FakeXen::machine(1),
            ts: Toolstack::new(),
            out: String::new(),
        }
    }

    fn create(&mut self, text: &str) -> Result<DomId, String> {
        self.ts
            .create(&mut self.xen, &mut self.out, &config(text), kernel(), None)
    }

    fn managed(&self, domid: DomId) -> &Managed<'static> {
        self.ts.managed().iter().find(|m| m.domid == domid).unwrap()
    }

    fn store_mfn(&self, domid: DomId) -> XenPfn {
        self.managed(domid).store.mfn
    }

    /// The guest sends a xenstore request and kicks its store port.
    fn guest_request(&mut self, domid: DomId, type_: u32, req_id: u32, payload: &[u8]) {
        let bytes = Message::new(type_, req_id, 0, payload.to_vec()).encode();
        let mfn = self.store_mfn(domid);
        let page = self.xen.frame(mfn);
        let prod = page.read_u32(offset_of!(XenstoreDomainInterface, req_prod));
        for (i, &b) in bytes.iter().enumerate() {
            page.write(mask_xenstore_idx(prod.wrapping_add(i as u32)), &[b]);
        }
        page.write_u32(
            offset_of!(XenstoreDomainInterface, req_prod),
            prod.wrapping_add(bytes.len() as u32),
        );
        let port = self.managed(domid).store.local.unwrap();
        assert!(self.ts.on_event(&mut self.xen, &mut self.out, port));
    }

    /// The guest takes every message xenstored put on its ring.
    fn guest_replies(&mut self, domid: DomId) -> Vec<(u32, u32, Vec<u8>)> {
        let mfn = self.store_mfn(domid);
        let page = self.xen.frame(mfn);
        type I = XenstoreDomainInterface;
        let mut cons = page.read_u32(offset_of!(I, rsp_cons));
        let prod = page.read_u32(offset_of!(I, rsp_prod));
        let mut bytes = Vec::new();
        while cons != prod {
            let mut b = [0u8];
            page.read(offset_of!(I, rsp) + mask_xenstore_idx(cons), &mut b);
            bytes.push(b[0]);
            cons = cons.wrapping_add(1);
        }
        page.write_u32(offset_of!(I, rsp_cons), cons);
        let mut msgs = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= HEADER_LEN {
            let h = decode_header(rest[..HEADER_LEN].try_into().unwrap());
            let end = HEADER_LEN + h.len as usize;
            msgs.push((h.type_, h.req_id, rest[HEADER_LEN..end].to_vec()));
            rest = &rest[end..];
        }
        assert!(rest.is_empty());
        msgs
    }

    /// The guest prints on its console ring and kicks its console port.
    fn guest_print(&mut self, domid: DomId, text: &[u8]) {
        let mfn = self.managed(domid).console.mfn;
        let page = self.xen.frame(mfn);
        type C = XenconsInterface;
        let prod = page.read_u32(offset_of!(C, out_prod));
        for (i, &b) in text.iter().enumerate() {
            let at = offset_of!(C, out) + mask_xencons_out_idx(prod.wrapping_add(i as u32));
            page.write(at, &[b]);
        }
        page.write_u32(
            offset_of!(C, out_prod),
            prod.wrapping_add(text.len() as u32),
        );
        let port = self.managed(domid).console.local.unwrap();
        assert!(self.ts.on_event(&mut self.xen, &mut self.out, port));
    }

    fn guest_keyboard(&mut self, domid: DomId) -> Vec<u8> {
        let mfn = self.managed(domid).console.mfn;
        let page = self.xen.frame(mfn);
        type C = XenconsInterface;
        let mut cons = page.read_u32(offset_of!(C, in_cons));
        let prod = page.read_u32(offset_of!(C, in_prod));
        let mut v = Vec::new();
        while cons != prod {
            let mut b = [0u8];
            page.read(offset_of!(C, in_) + mask_xencons_in_idx(cons), &mut b);
            v.push(b[0]);
            cons = cons.wrapping_add(1);
        }
        page.write_u32(offset_of!(C, in_cons), cons);
        v
    }

    fn dom_exc(&mut self) {
        let port = self.ts.bind_dom_exc(&mut self.xen).unwrap();
        assert!(self.ts.on_event(&mut self.xen, &mut self.out, port));
    }

    fn take_out(&mut self) -> String {
        core::mem::take(&mut self.out)
    }
}

#[test]
fn create_writes_the_standard_xenstore_entries() {
    let mut w = World::new();
    assert_eq!(w.create(BRUN), Ok(1));
    assert_eq!(w.take_out(), "Started domain brun (id=1)\n");
    let m = w.managed(1).clone();
    let xs = &mut w.ts.xs;
    let read = |xs: &mut Xenstored, p: &str| String::from_utf8(xs.read(p).unwrap()).unwrap();
    let h = "/local/domain/1";
    assert_eq!(read(xs, &format!("{h}/name")), "brun");
    assert_eq!(read(xs, &format!("{h}/domid")), "1");
    assert_eq!(read(xs, &format!("{h}/memory/target")), "65536");
    assert_eq!(read(xs, &format!("{h}/memory/static-max")), "65536");
    assert_eq!(read(xs, &format!("{h}/cpu/0/availability")), "online");
    assert_eq!(
        read(xs, &format!("{h}/store/ring-ref")),
        m.store.mfn.to_string()
    );
    assert_eq!(
        read(xs, &format!("{h}/store/port")),
        m.store.remote.to_string()
    );
    assert_eq!(
        read(xs, &format!("{h}/console/ring-ref")),
        m.console.mfn.to_string()
    );
    assert_eq!(
        read(xs, &format!("{h}/console/port")),
        m.console.remote.to_string()
    );
    assert_eq!(read(xs, &format!("{h}/console/type")), "xenconsoled");
    assert_eq!(read(xs, &format!("{h}/control/shutdown")), "");
    let vm = read(xs, &format!("{h}/vm"));
    assert_eq!(read(xs, &format!("{vm}/name")), "brun");
    assert!(xs.directory(&format!("{h}/device")).unwrap().is_empty());
    // Read-only for the domain: its home and what is below it by default.
    for p in ["", "/name", "/memory/target", "/control"] {
        assert_eq!(xs.get_perms(&format!("{h}{p}")).unwrap(), ro(1), "{p}");
    }
    // Its own: control/shutdown, data, device.
    for p in ["/control/shutdown", "/data", "/device"] {
        assert_eq!(xs.get_perms(&format!("{h}{p}")).unwrap(), rw(1), "{p}");
    }
    assert!(xs.is_domain_introduced(1));
    assert_eq!(xs.connection(1).unwrap().mfn(), m.store.mfn);
    assert_eq!(xs.connection(1).unwrap().port(), m.store.remote);
    // dom0 bound both channels and maps both pages.
    assert_eq!(
        w.xen.bound,
        [
            (m.store.local.unwrap(), 1, m.store.remote),
            (m.console.local.unwrap(), 1, m.console.remote)
        ]
    );
    assert_eq!(w.xen.mappings.len(), 2);
    assert_eq!(w.xen.steps.last().unwrap(), "unpausedomain");
}

#[test]
fn the_domain_reads_its_home_and_writes_only_where_allowed() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.xen.sent.clear();
    w.guest_request(1, XS_READ, 5, b"name\0");
    assert_eq!(w.guest_replies(1), [(XS_READ, 5, b"brun".to_vec())]);
    let store_port = w.managed(1).store.local.unwrap();
    assert!(w.xen.sent.contains(&store_port), "notified");
    w.guest_request(1, XS_READ, 6, b"memory/target\0");
    assert_eq!(w.guest_replies(1)[0].2, b"65536");
    w.guest_request(1, XS_WRITE, 7, b"data/hello\0world");
    assert_eq!(w.guest_replies(1), [(XS_WRITE, 7, b"OK\0".to_vec())]);
    assert_eq!(
        w.ts.xs.read("/local/domain/1/data/hello").unwrap(),
        b"world"
    );
    w.guest_request(1, XS_WRITE, 8, b"name\0evil");
    assert_eq!(w.guest_replies(1), [(XS_ERROR, 8, b"EACCES\0".to_vec())]);
    w.guest_request(1, XS_READ, 9, b"/local/domain/0/name\0");
    assert_eq!(w.guest_replies(1)[0].0, XS_ERROR, "dom0's home is private");
}

#[test]
fn xm_shutdown_reaches_the_domains_watch() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.guest_request(1, XS_WATCH, 1, b"control/shutdown\0tok\0");
    let first = w.guest_replies(1);
    assert_eq!(first[0], (XS_WATCH, 1, b"OK\0".to_vec()));
    assert_eq!(first[1].0, XS_WATCH_EVENT, "fires once at once");
    w.ts.request_shutdown(&mut w.xen, &mut w.out, 1, "poweroff")
        .unwrap();
    assert_eq!(
        w.ts.xs.read("/local/domain/1/control/shutdown").unwrap(),
        b"poweroff"
    );
    // Delivered without the domain asking: dom0 served its ring.
    assert_eq!(
        w.guest_replies(1),
        [(XS_WATCH_EVENT, 0, b"control/shutdown\0tok\0".to_vec())]
    );
    // The domain clears it, as it is allowed to.
    w.guest_request(1, XS_WRITE, 2, b"control/shutdown\0");
    assert_eq!(w.guest_replies(1)[0], (XS_WRITE, 2, b"OK\0".to_vec()));
}

#[test]
fn a_broken_store_ring_stops_that_connection_only() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.take_out();
    let mfn = w.store_mfn(1);
    w.xen.frame(mfn).write_u32(
        offset_of!(XenstoreDomainInterface, req_prod),
        XENSTORE_RING_SIZE as u32 + 9,
    );
    let port = w.managed(1).store.local.unwrap();
    w.ts.on_event(&mut w.xen, &mut w.out, port);
    w.ts.on_event(&mut w.xen, &mut w.out, port);
    let out = w.take_out();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("xenstored: domain 1's connection stopped: BadRingIndex"));
    // dom0's own use of xenstore goes on.
    assert_eq!(w.ts.name_of(1).as_deref(), Some("brun"));
}

#[test]
fn console_output_is_kept_and_shown_when_attached() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.take_out();
    w.guest_print(1, b"booting\n");
    assert_eq!(w.take_out(), "", "not attached: kept, not shown");
    let port = w.managed(1).console.local.unwrap();
    assert!(w.xen.sent.contains(&port), "space freed: notified");
    w.ts.attach(&mut w.xen, &mut w.out, 1).unwrap();
    assert_eq!(w.take_out(), "booting\n");
    w.guest_print(1, b"login: ");
    assert_eq!(w.take_out(), "login: ");
    assert!(w.ts.console_input(&mut w.xen, &mut w.out, b"root\r"));
    assert_eq!(w.guest_keyboard(1), b"root\r");
    // Ctrl-] detaches; what precedes it still goes to the domain.
    assert!(!w.ts.console_input(&mut w.xen, &mut w.out, b"ls\x1d"));
    assert_eq!(w.guest_keyboard(1), b"ls");
    assert_eq!(w.take_out(), "\n");
    assert_eq!(w.ts.attached(), None);
    w.guest_print(1, b"more\n");
    assert_eq!(w.take_out(), "");
    assert_eq!(w.managed(1).log.contents(), b"booting\nlogin: more\n");
    assert!(
        !w.ts.console_input(&mut w.xen, &mut w.out, b"x"),
        "not attached"
    );
}

#[test]
fn attaching_needs_a_domain_this_dom0_serves() {
    let mut w = World::new();
    assert_eq!(
        w.ts.attach(&mut w.xen, &mut w.out, 3),
        Err(String::from(
            "domain 3 was not started by this dom0; its console is not served"
        ))
    );
    assert_eq!(w.ts.attached(), None);
}

#[test]
fn names_resolve_through_xenstore_and_must_be_unique() {
    let mut w = World::new();
    assert_eq!(w.ts.resolve("Domain-0"), Ok(0));
    assert!(w.ts.resolve("brun").is_err());
    w.create(BRUN).unwrap();
    assert_eq!(w.ts.resolve("brun"), Ok(1));
    assert_eq!(w.ts.resolve("1"), Ok(1));
    assert_eq!(
        w.ts.resolve("32752"),
        Err(String::from("'32752' is not a valid domain id"))
    );
    let steps = w.xen.steps.len();
    assert_eq!(
        w.create(BRUN),
        Err(String::from("domain 'brun' already exists with id 1"))
    );
    assert_eq!(w.xen.steps.len(), steps, "nothing asked of the hypervisor");
}

#[test]
fn poweroff_applies_on_poweroff_destroy_and_releases_everything() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.ts.attach(&mut w.xen, &mut w.out, 1).unwrap();
    w.guest_print(1, b"bye\n");
    w.take_out();
    let m = w.managed(1).clone();
    w.xen.shut_down(1, SHUTDOWN_POWEROFF);
    w.dom_exc();
    assert_eq!(
        w.take_out(),
        "dom0: domain brun (id=1) shut down (poweroff); on_poweroff = destroy: destroyed\n"
    );
    assert!(!w.xen.exists(1));
    assert!(w.xen.mappings.is_empty());
    assert!(w.xen.closed.contains(&m.store.local.unwrap()));
    assert!(w.xen.closed.contains(&m.console.local.unwrap()));
    assert!(!w.ts.xs.is_domain_introduced(1));
    assert!(w.ts.xs.read("/local/domain/1").is_err());
    assert!(w.ts.managed().is_empty());
    assert_eq!(w.ts.attached(), None, "the console went with it");
    assert!(w.ts.resolve("brun").is_err());
}

#[test]
fn reboot_restarts_from_the_same_config_with_a_new_id() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.take_out();
    w.xen.time_ns = MIN_RESTART_NS + 1;
    w.xen.shut_down(1, SHUTDOWN_REBOOT);
    w.dom_exc();
    assert_eq!(
        w.take_out(),
        "dom0: domain brun (id=1) shut down (reboot); on_reboot = restart: destroyed\n\
         Started domain brun (id=2)\n"
    );
    assert!(!w.xen.exists(1));
    assert!(w.xen.exists(2));
    assert_eq!(w.ts.resolve("brun"), Ok(2));
    assert_eq!(w.xen.max_mem, [(1, 65536), (2, 65536)]);
}

#[test]
fn a_restart_that_dies_at_once_is_not_restarted_again() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.take_out();
    // The first quick crash is restarted...
    w.xen.time_ns = 1_000_000_000;
    w.xen.shut_down(1, SHUTDOWN_CRASH);
    w.dom_exc();
    assert_eq!(
        w.take_out(),
        "dom0: domain brun (id=1) shut down (crash); on_crash = restart: destroyed\n\
         Started domain brun (id=2)\n"
    );
    // ... the restarted one crashing within 20 s is not.
    w.xen.time_ns += MIN_RESTART_NS - 1;
    w.xen.shut_down(2, SHUTDOWN_CRASH);
    w.dom_exc();
    assert_eq!(
        w.take_out(),
        "dom0: domain brun (id=2) shut down (crash); on_crash = restart: destroyed \
         (restarted less than 20 s ago: not restarted again)\n"
    );
    assert!(!w.xen.exists(2) && !w.xen.exists(3));
    assert!(w.ts.managed().is_empty());
}

#[test]
fn a_restart_that_ran_long_enough_is_restarted_again() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.xen.shut_down(1, SHUTDOWN_REBOOT);
    w.dom_exc();
    w.xen.time_ns += MIN_RESTART_NS;
    w.xen.shut_down(2, SHUTDOWN_REBOOT);
    w.dom_exc();
    assert!(w.take_out().ends_with("Started domain brun (id=3)\n"));
    assert!(w.xen.exists(3));
}

#[test]
fn preserve_leaves_the_domain_and_says_so_once() {
    let mut w = World::new();
    w.create(SMALL).unwrap();
    w.take_out();
    w.xen.shut_down(1, SHUTDOWN_CRASH);
    w.dom_exc();
    assert_eq!(
        w.take_out(),
        "dom0: domain small (id=1) shut down (crash); on_crash = preserve: preserved\n"
    );
    w.dom_exc();
    assert_eq!(w.take_out(), "");
    assert!(w.xen.exists(1));
    // xm destroy still works: pages unmapped first, so it is not refused.
    assert_eq!(w.ts.destroy(&mut w.xen, 1), Ok(()));
    assert!(!w.xen.exists(1));
}

#[test]
fn running_domains_are_left_alone_and_vanished_ones_forgotten() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    w.create(SMALL).unwrap();
    w.take_out();
    w.dom_exc();
    assert_eq!(w.take_out(), "");
    assert_eq!(w.ts.managed().len(), 2);
    // Gone behind the toolstack's back (the fake forgets it).
    w.xen.domains.as_mut().unwrap().retain(|d| d.domain != 2);
    w.dom_exc();
    assert_eq!(w.take_out(), "dom0: domain small (id=2) is gone\n");
    assert_eq!(w.ts.managed().len(), 1);
    assert!(w.xen.mappings.values().all(|&(d, _)| d == 1));
}

#[test]
fn a_failure_after_the_build_undoes_everything() {
    for (step, what) in [
        ("bind_interdomain", "event_channel_op bind_interdomain"),
        ("unpausedomain", "domctl unpausedomain"),
    ] {
        let mut w = World::new();
        w.xen = FakeXen::machine(1).failing(step, Errno::ENOSPC);
        let e = w.create(BRUN).unwrap_err();
        assert_eq!(
            e,
            format!(
                "the hypervisor refused {what}: -ENOSPC (no space left on device); domain 1 destroyed"
            )
        );
        assert!(!w.xen.exists(1));
        assert!(w.xen.mappings.is_empty());
        assert!(!w.ts.xs.is_domain_introduced(1));
        assert!(w.ts.xs.read("/local/domain/1").is_err());
        assert!(w.ts.xs.directory("/vm").unwrap().is_empty());
        assert!(w.ts.managed().is_empty());
        assert_eq!(w.take_out(), "");
    }
}

#[test]
fn destroy_releases_before_it_destroys() {
    let mut w = World::new();
    w.create(BRUN).unwrap();
    assert_eq!(w.ts.destroy(&mut w.xen, 1), Ok(()));
    assert!(!w.xen.exists(1));
    assert!(w.ts.managed().is_empty());
    // A domain dom0 did not build: just the domctl.
    assert_eq!(
        w.ts.destroy(&mut w.xen, 9),
        Err(Refused {
            what: "domctl destroydomain",
            errno: Errno::ESRCH
        })
    );
}

#[test]
fn the_config_uuid_is_the_domain_handle_and_vm_path() {
    let mut w = World::new();
    let text = format!("{SMALL}uuid = '12345678-9abc-def0-1234-56789abcdef0'\n");
    w.create(&text).unwrap();
    let want = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde,
        0xf0,
    ];
    assert_eq!(w.xen.domains.as_ref().unwrap()[1].handle, want);
    assert_eq!(
        w.ts.xs.read("/local/domain/1/vm").unwrap(),
        b"/vm/12345678-9abc-def0-1234-56789abcdef0"
    );
}

#[test]
fn dom_exc_is_bound_as_a_global_virq() {
    let mut xen = FakeXen::machine(1);
    let mut ts = Toolstack::new();
    let port = ts.bind_dom_exc(&mut xen).unwrap();
    assert_eq!(xen.virqs, [(VIRQ_DOM_EXC, port)]);
    let mut out = String::new();
    assert!(!ts.on_event(&mut xen, &mut out, port + 100), "not ours");
}

/// What the back ends were told to release, in order.
struct Released(std::rc::Rc<core::cell::RefCell<Vec<DomId>>>);

impl Backends for Released {
    fn release_domain(&mut self, xs: &mut Xenstored, domid: DomId) {
        // Called while the vbd's nodes still exist.
        assert!(
            xs.read(&format!("/local/domain/0/backend/vbd/{domid}/2049/state"))
                .is_ok()
        );
        self.0.borrow_mut().push(domid);
    }
}

#[test]
fn phy_vbds_get_xend_nodes_and_are_released_before_destroy() {
    let mut w = World::new();
    let released = std::rc::Rc::new(core::cell::RefCell::new(Vec::new()));
    w.ts.set_backends(alloc::boxed::Box::new(Released(released.clone())));
    let id = w
        .create(&format!(
            "{SMALL}disk = ['phy:/dev/vda,sda1,r', 'file:/vm/x.img,sda2,w']\n"
        ))
        .unwrap();
    let be = format!("/local/domain/0/backend/vbd/{id}/2049");
    let fe = format!("/local/domain/{id}/device/vbd/2049");
    let rd = |w: &mut World, p: &str| String::from_utf8(w.ts.xs.read(p).unwrap()).unwrap();
    for (k, v) in [
        ("frontend", fe.as_str()),
        ("frontend-id", &id.to_string()),
        ("params", "/dev/vda"),
        ("type", "phy"),
        ("mode", "r"),
        ("dev", "sda1"),
        ("online", "1"),
        ("state", "1"),
        ("domain", "small"),
    ] {
        assert_eq!(rd(&mut w, &format!("{be}/{k}")), v, "{k}");
    }
    for (k, v) in [
        ("backend", be.as_str()),
        ("backend-id", "0"),
        ("virtual-device", "2049"),
        ("device-type", "disk"),
        ("state", "1"),
    ] {
        assert_eq!(rd(&mut w, &format!("{fe}/{k}")), v, "{k}");
    }
    // The domain may read its back end's directory, and write its own.
    let perms = w.ts.xs.get_perms(&be).unwrap();
    assert_eq!(perms.owner, 0);
    assert!(perms.acl.contains(&(id, Access::Read)));
    assert_eq!(w.ts.xs.get_perms(&fe).unwrap().owner, id);
    // file: images are not attached yet.
    assert!(
        w.ts.xs
            .read(&format!("/local/domain/0/backend/vbd/{id}/2050"))
            .is_err()
    );

    w.ts.destroy(&mut w.xen, id).unwrap();
    assert_eq!(*released.borrow(), [id]);
    assert!(w.ts.xs.read(&be).is_err());
    assert!(!w.xen.exists(id));
}
