//! Daemon-level tests: requests over the wire, permissions, transactions,
//! watches, domains and quotas, ring service, and a property test.

mod domains;
mod memory;
mod prop;
mod requests;
mod ring_service;
mod transactions;
mod watches;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::domid::DomId;
use xen_abi::xenstore::*;

use crate::{Message, Quota, Xenstored, XsError};

/// A test harness: a daemon and the watch events each domain received.
pub struct H {
    pub x: Xenstored,
    events: BTreeMap<DomId, Vec<(String, String)>>,
    next_req: u32,
}

fn ev_of(m: &Message) -> (String, String) {
    let s: Vec<&[u8]> = m
        .payload
        .strip_suffix(b"\0")
        .unwrap()
        .split(|&c| c == 0)
        .collect();
    assert_eq!(s.len(), 2, "event payload is path\\0token\\0");
    assert_eq!((m.header.req_id, m.header.tx_id), (0, 0));
    (
        String::from_utf8(s[0].to_vec()).unwrap(),
        String::from_utf8(s[1].to_vec()).unwrap(),
    )
}

impl H {
    pub fn new() -> H {
        H::with_quota(Quota::default())
    }

    pub fn with_quota(q: Quota) -> H {
        H {
            x: Xenstored::with_quota(q),
            events: BTreeMap::new(),
            next_req: 100,
        }
    }

    /// Introduces `dom` and gives it its home directory as the toolstack does:
    /// owned by the domain, readable by dom0.
    pub fn add(&mut self, dom: DomId) {
        self.x
            .introduce(dom, 1000 + u32::from(dom), 10 + u32::from(dom))
            .unwrap();
        let home = crate::path::domain_path(dom);
        self.x.mkdir(&home).unwrap();
        self.x
            .set_perms(
                &home,
                crate::Perms::parse([format!("n{dom}").as_bytes(), b"r0"]).unwrap(),
            )
            .unwrap();
        self.collect(0);
    }

    fn collect(&mut self, dom: DomId) {
        for m in self.x.take_messages(dom) {
            assert_eq!(m.header.type_, XS_WATCH_EVENT, "unexpected queued {m:?}");
            self.events.entry(dom).or_default().push(ev_of(&m));
        }
    }

    /// Sends one request over the byte interface; returns the reply payload or
    /// the error name it carried.
    pub fn call(
        &mut self,
        dom: DomId,
        ty: u32,
        tx: u32,
        payload: &[u8],
    ) -> Result<Vec<u8>, XsError> {
        self.collect(dom);
        self.next_req += 1;
        let req = self.next_req;
        let bytes = Message::new(ty, req, tx, payload.to_vec()).encode();
        self.x.receive(dom, &bytes).expect("protocol ok");
        let mut reply = None;
        for m in self.x.take_messages(dom) {
            if m.header.type_ == XS_WATCH_EVENT {
                assert!(reply.is_some(), "events follow the reply");
                self.events.entry(dom).or_default().push(ev_of(&m));
            } else {
                assert!(reply.is_none(), "exactly one reply");
                assert_eq!(m.header.req_id, req);
                assert_eq!(m.header.tx_id, tx);
                assert_eq!(m.header.len as usize, m.payload.len());
                reply = Some(m);
            }
        }
        let m = reply.expect("a reply");
        if m.header.type_ == XS_ERROR {
            assert_eq!(m.payload.last(), Some(&0));
            Err(XsError::from_name(&m.payload).expect("known error name"))
        } else {
            assert_eq!(m.header.type_, ty);
            Ok(m.payload)
        }
    }

    pub fn ok(&mut self, dom: DomId, ty: u32, tx: u32, payload: &[u8]) -> Result<(), XsError> {
        let p = self.call(dom, ty, tx, payload)?;
        assert_eq!(p, b"OK\0");
        Ok(())
    }

    pub fn read(&mut self, dom: DomId, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(dom, XS_READ, 0, &z(path))
    }

    pub fn read_tx(&mut self, dom: DomId, tx: u32, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(dom, XS_READ, tx, &z(path))
    }

    pub fn write(&mut self, dom: DomId, path: &str, v: &str) -> Result<(), XsError> {
        self.write_tx(dom, 0, path, v)
    }

    pub fn write_tx(&mut self, dom: DomId, tx: u32, path: &str, v: &str) -> Result<(), XsError> {
        let mut p = z(path);
        p.extend_from_slice(v.as_bytes());
        self.ok(dom, XS_WRITE, tx, &p)
    }

    pub fn mkdir(&mut self, dom: DomId, path: &str) -> Result<(), XsError> {
        self.ok(dom, XS_MKDIR, 0, &z(path))
    }

    pub fn rm(&mut self, dom: DomId, path: &str) -> Result<(), XsError> {
        self.ok(dom, XS_RM, 0, &z(path))
    }

    pub fn dir(&mut self, dom: DomId, path: &str) -> Result<Vec<String>, XsError> {
        let p = self.call(dom, XS_DIRECTORY, 0, &z(path))?;
        Ok(nul_list(&p))
    }

    pub fn set_perms(&mut self, dom: DomId, path: &str, perms: &[&str]) -> Result<(), XsError> {
        self.ok(dom, XS_SET_PERMS, 0, &zs(&[&[path], perms].concat()))
    }

    pub fn get_perms(&mut self, dom: DomId, path: &str) -> Result<Vec<String>, XsError> {
        let p = self.call(dom, XS_GET_PERMS, 0, &z(path))?;
        Ok(nul_list(&p))
    }

    pub fn watch(&mut self, dom: DomId, path: &str, tok: &str) -> Result<(), XsError> {
        self.ok(dom, XS_WATCH, 0, &zs(&[path, tok]))
    }

    pub fn unwatch(&mut self, dom: DomId, path: &str, tok: &str) -> Result<(), XsError> {
        self.ok(dom, XS_UNWATCH, 0, &zs(&[path, tok]))
    }

    pub fn start(&mut self, dom: DomId) -> Result<u32, XsError> {
        let p = self.call(dom, XS_TRANSACTION_START, 0, b"\0")?;
        let s = core::str::from_utf8(p.strip_suffix(b"\0").unwrap()).unwrap();
        Ok(s.parse().unwrap())
    }

    pub fn end(&mut self, dom: DomId, tx: u32, commit: bool) -> Result<(), XsError> {
        self.ok(
            dom,
            XS_TRANSACTION_END,
            tx,
            if commit { b"T\0" } else { b"F\0" },
        )
    }

    /// Watch events `dom` received so far (drained).
    pub fn events(&mut self, dom: DomId) -> Vec<(String, String)> {
        self.collect(dom);
        self.events.remove(&dom).unwrap_or_default()
    }
}

/// `s\0`.
pub fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Each string NUL-terminated.
pub fn zs(s: &[&str]) -> Vec<u8> {
    s.iter().flat_map(|x| z(x)).collect()
}

pub fn nul_list(p: &[u8]) -> Vec<String> {
    match p.strip_suffix(b"\0") {
        None => {
            assert!(p.is_empty());
            Vec::new()
        }
        Some(b) => b
            .split(|&c| c == 0)
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect(),
    }
}

pub fn ev(path: &str, tok: &str) -> (String, String) {
    (String::from(path), String::from(tok))
}
