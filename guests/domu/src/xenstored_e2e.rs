//! pvrt's xenstore client against the real daemon (`crates/xenstored`), as
//! the domU runs it: dom0 prepares `/local/domain/<id>` as a toolstack does,
//! introduces the domain, and the client reads, writes, watches and uses
//! transactions with relative paths. The transport moves bytes straight
//! between the client and `Xenstored::process_bytes`, in small pieces to
//! exercise reassembly.

use std::collections::VecDeque;

use xenstored::{Perms, Xenstored};

use crate::control::ShutdownRequest;
use crate::pvrt_pure::client::{Client, Transport, Tx};
use crate::pvrt_pure::wire::XsError;

const DOMID: u16 = 3;

struct Daemon {
    xs: Xenstored,
    to_guest: VecDeque<u8>,
}

impl Transport for Daemon {
    fn write(&mut self, bytes: &[u8]) -> Result<usize, XsError> {
        let n = bytes.len().min(7);
        let out = self
            .xs
            .process_bytes(DOMID, &bytes[..n])
            .map_err(|_| XsError::Protocol)?;
        self.to_guest.extend(out);
        Ok(n)
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<usize, XsError> {
        let n = buf.len().min(5).min(self.to_guest.len());
        for b in &mut buf[..n] {
            *b = self.to_guest.pop_front().expect("counted");
        }
        Ok(n)
    }

    fn wait(&mut self, _want_write: bool) -> Result<(), XsError> {
        // Everything is synchronous: waiting would never end.
        Err(XsError::TimedOut)
    }
}

fn perms(p: &[&str]) -> Perms {
    Perms::parse(p.iter().map(|s| s.as_bytes())).expect("valid perms")
}

/// A daemon with domain 3 set up as `xm create` would, and a client for it.
fn setup() -> Client<Daemon> {
    let mut xs = Xenstored::new();
    let home = format!("/local/domain/{DOMID}");
    let guest_ro = perms(&["n0", &format!("r{DOMID}")]);
    for (node, value) in [
        ("", &b""[..]),
        ("/name", b"brun"),
        ("/domid", b"3"),
        ("/memory", b""),
        ("/memory/target", b"65536"),
        ("/control", b""),
    ] {
        let path = format!("{home}{node}");
        xs.write(&path, value).unwrap();
        xs.set_perms(&path, guest_ro.clone()).unwrap();
    }
    for node in ["/data", "/control/shutdown"] {
        let path = format!("{home}{node}");
        xs.write(&path, b"").unwrap();
        xs.set_perms(&path, perms(&[&format!("b{DOMID}")])).unwrap();
    }
    xs.introduce(DOMID, 0x1234, 5).unwrap();
    Client::new(Daemon {
        xs,
        to_guest: VecDeque::new(),
    })
}

#[test]
fn boot_reads_and_writes_what_the_domu_needs() {
    let mut c = setup();
    assert_eq!(c.read(Tx::NONE, "name"), Ok(&b"brun"[..]));
    assert_eq!(c.read(Tx::NONE, "domid"), Ok(&b"3"[..]));
    assert_eq!(c.read(Tx::NONE, "memory/target"), Ok(&b"65536"[..]));
    c.write(Tx::NONE, "data/hello", b"world").unwrap();
    let daemon = &mut c.transport_mut().xs;
    assert_eq!(
        daemon.read("/local/domain/3/data/hello").unwrap(),
        b"world".to_vec()
    );
}

#[test]
fn the_daemon_refuses_what_a_guest_may_not_do() {
    let mut c = setup();
    // memory/ is read-only for the guest; other domains are invisible.
    assert_eq!(
        c.write(Tx::NONE, "memory/target", b"1"),
        Err(XsError::Daemon(xen_abi::errno::Errno::EACCES))
    );
    assert!(c.read(Tx::NONE, "nonexistent").unwrap_err().is_enoent());
    // The connection goes on after errors.
    assert_eq!(c.read(Tx::NONE, "name"), Ok(&b"brun"[..]));
}

#[test]
fn directory_mkdir_rm() {
    let mut c = setup();
    c.mkdir(Tx::NONE, "data/dir").unwrap();
    c.write(Tx::NONE, "data/dir/a", b"1").unwrap();
    let names: Vec<Vec<u8>> = c
        .directory(Tx::NONE, "data/dir")
        .unwrap()
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(names, [b"a".to_vec()]);
    c.rm(Tx::NONE, "data/dir").unwrap();
    assert!(c.read(Tx::NONE, "data/dir/a").unwrap_err().is_enoent());
}

#[test]
fn shutdown_watch_fires_and_the_node_is_cleared_in_a_transaction() {
    let mut c = setup();
    c.watch("control/shutdown", "shutdown").unwrap();
    let mut buf = [0u8; 128];
    // The initial firing.
    let e = c.next_event(&mut buf).unwrap().expect("fires once at once");
    assert_eq!((e.path, e.token), ("control/shutdown", "shutdown"));
    assert_eq!(c.next_event(&mut buf), Ok(None));

    // The toolstack asks for a poweroff.
    let daemon = &mut c.transport_mut().xs;
    daemon
        .write("/local/domain/3/control/shutdown", b"poweroff")
        .unwrap();
    // The event is queued by the daemon; reading any reply brings it in.
    let e = c.next_event(&mut buf);
    let got = match e {
        Ok(Some(e)) => e.token.to_string(),
        other => {
            // Output is only produced in response to input here: poke it.
            assert_eq!(other, Ok(None));
            c.read(Tx::NONE, "name").unwrap();
            c.next_event(&mut buf)
                .unwrap()
                .expect("event")
                .token
                .to_string()
        }
    };
    assert_eq!(got, "shutdown");

    let req = c
        .transaction(|c, tx| {
            let r = ShutdownRequest::parse(c.read(tx, "control/shutdown")?);
            if r.must_clear() {
                c.write(tx, "control/shutdown", b"")?;
            }
            Ok(r)
        })
        .unwrap();
    assert_eq!(req, ShutdownRequest::Poweroff);
    let daemon = &mut c.transport_mut().xs;
    assert_eq!(
        daemon.read("/local/domain/3/control/shutdown").unwrap(),
        b"".to_vec()
    );
}

impl crate::flood::Store for Client<Daemon> {
    type Error = XsError;
    fn start(&mut self) -> Result<u32, XsError> {
        self.transaction_start().map(|t| t.0)
    }
    fn end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        self.transaction_end(Tx(tx), commit)
    }
    fn read(&mut self, tx: u32, path: &str) -> Result<(), XsError> {
        Client::read(self, Tx(tx), path).map(drop)
    }
    fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        Client::write(self, Tx::NONE, path, value)
    }
    fn rm(&mut self, path: &str) -> Result<(), XsError> {
        Client::rm(self, Tx::NONE, path)
    }
}

#[test]
fn xs_flood_is_refused_with_the_xen_errnos_and_bounded() {
    use xen_abi::errno::Errno;
    let mut c = setup();
    let r = crate::flood::run(&mut c);
    assert_eq!(r.tx_started, Ok(()));
    // The 3070-byte path is over a domU's path limit: refused before any walk.
    assert_eq!(r.attack, [Err(XsError::Daemon(Errno::EINVAL)); 2]);
    // The longest allowed one walks up to `/`, which the domU may not read.
    assert_eq!(r.longest, [Err(XsError::Daemon(Errno::EACCES)); 4]);
    // The writes stop at the memory quota (256 KiB: ~2.1 KB per node).
    assert_eq!(r.write_error, Some(XsError::Daemon(Errno::ENOSPC)));
    assert!((100..130).contains(&r.writes), "{}", r.writes);
    assert_eq!((r.removed, r.after), (Ok(()), Ok(())));
    let xs = &c.transport_mut().xs;
    assert!(xs.usage(DOMID) < 4096, "freed: {}", xs.usage(DOMID));
    assert_eq!(xs.store().check(), Ok(()));
}
