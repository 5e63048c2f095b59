//! Introduce, release, resume, is_domain_introduced, node quota.

use super::*;

#[test]
fn introduce_over_the_wire() {
    let mut h = H::new();
    h.x.watch("@introduceDomain", "i").unwrap();
    h.events(0);
    h.ok(0, XS_INTRODUCE, 0, b"5\x001234\x0017\0").unwrap();
    let c = h.x.connection(5).unwrap();
    assert_eq!((c.mfn(), c.port()), (1234, 17));
    assert_eq!(h.events(0), [ev("@introduceDomain", "i")]);
    // Same page again: rebinds the port, no new event.
    h.ok(0, XS_INTRODUCE, 0, b"5\x001234\x0018\0").unwrap();
    assert_eq!(h.x.connection(5).unwrap().port(), 18);
    assert!(h.events(0).is_empty());
    assert_eq!(
        h.ok(0, XS_INTRODUCE, 0, b"5\x009999\x0018\0"),
        Err(XsError::EEXIST)
    );
    for bad in [
        &b"0\x001\x001\0"[..],
        b"32752\x001\x001\0",
        b"6\x00x\x001\0",
        b"6\x001\0",
    ] {
        assert_eq!(
            h.ok(0, XS_INTRODUCE, 0, bad),
            Err(XsError::EINVAL),
            "{bad:?}"
        );
    }
    assert_eq!(
        h.ok(5, XS_INTRODUCE, 0, b"6\x001\x001\0"),
        Err(XsError::EACCES)
    );
    assert!(!h.x.is_domain_introduced(6));
}

#[test]
fn is_domain_introduced() {
    let mut h = H::new();
    h.add(2);
    for (caller, arg, want) in [
        (0, &b"2\0"[..], Ok(&b"T\0"[..])),
        (0, b"0\0", Ok(b"T\0")),
        (0, b"3\0", Ok(b"F\0")),
        (2, b"2\0", Err(XsError::EACCES)),
        (0, b"\0", Err(XsError::EINVAL)),
    ] {
        assert_eq!(
            h.call(caller, XS_IS_DOMAIN_INTRODUCED, 0, arg),
            want.map(<[u8]>::to_vec),
            "{caller} {arg:?}"
        );
    }
}

#[test]
fn release_drops_everything_and_fires() {
    let mut h = H::new();
    h.add(2);
    h.add(3);
    h.watch(2, "/local/domain/2", "w").unwrap();
    assert_eq!(h.events(2).len(), 1);
    let t = h.start(2).unwrap();
    h.write_tx(2, t, "pending", "x").unwrap();
    h.watch(3, "@releaseDomain", "r").unwrap();
    h.events(3);
    assert_eq!(h.ok(3, XS_RELEASE, 0, b"2\0"), Err(XsError::EACCES));
    h.ok(0, XS_RELEASE, 0, b"2\0").unwrap();
    assert_eq!(h.events(3), [ev("@releaseDomain", "r")]);
    assert!(h.x.connection(2).is_none());
    assert!(
        h.x.receive(2, &Message::new(XS_READ, 1, t, z("pending")).encode())
            .is_err()
    );
    assert_eq!(h.ok(0, XS_RELEASE, 0, b"2\0"), Err(XsError::ENOENT));
    assert_eq!(h.ok(0, XS_RELEASE, 0, b"0\0"), Err(XsError::EINVAL));
    // Re-introduced: a fresh connection without the old watches/transactions.
    h.x.introduce(2, 1, 1).unwrap();
    let c = h.x.connection(2).unwrap();
    assert!(c.watches().is_empty());
    assert_eq!(c.transaction_count(), 0);
    assert_eq!(h.read(2, "pending"), Err(XsError::ENOENT));
    h.x.write("/local/domain/2/z", b"1").unwrap();
    assert!(h.events(2).is_empty());
}

#[test]
fn shutdown_and_resume() {
    let mut h = H::new();
    h.add(2);
    h.x.watch("@releaseDomain", "r").unwrap();
    h.events(0);
    h.x.domain_shutdown(2).unwrap();
    assert!(h.x.connection(2).unwrap().is_shutdown());
    assert_eq!(h.events(0), [ev("@releaseDomain", "r")]);
    assert_eq!(h.ok(2, XS_RESUME, 0, b"2\0"), Err(XsError::EACCES));
    assert_eq!(h.ok(0, XS_RESUME, 0, b"9\0"), Err(XsError::ENOENT));
    h.ok(0, XS_RESUME, 0, b"2\0").unwrap();
    assert!(!h.x.connection(2).unwrap().is_shutdown());
    assert_eq!(h.x.domain_shutdown(9), Err(XsError::ENOENT));
}

#[test]
fn node_quota() {
    let mut h = H::with_quota(Quota {
        max_nodes_per_domain: 5,
        ..Quota::default()
    });
    h.add(1); // its home dir is node 1 owned by domain 1
    assert_eq!(h.x.store().owned_count(1), 1);
    h.write(1, "a/b/c", "x").unwrap(); // 3 more
    assert_eq!(h.x.store().owned_count(1), 4);
    assert_eq!(h.write(1, "d/e", "x"), Err(XsError::ENOSPC), "would be 6");
    assert_eq!(h.read(1, "d"), Err(XsError::ENOENT), "nothing half-created");
    h.write(1, "d", "x").unwrap();
    assert_eq!(h.mkdir(1, "e"), Err(XsError::ENOSPC));
    h.rm(1, "a").unwrap();
    assert_eq!(h.x.store().owned_count(1), 2);
    h.mkdir(1, "e").unwrap();
    // Transactions count too.
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "f", "").unwrap();
    h.write_tx(1, t, "g", "").unwrap();
    assert_eq!(h.write_tx(1, t, "h", ""), Err(XsError::ENOSPC));
    h.end(1, t, true).unwrap();
    assert_eq!(h.x.store().owned_count(1), 5);
    // Two non-conflicting transactions (different parents), each within the
    // quota, cannot together exceed it.
    h.rm(1, "f").unwrap();
    h.rm(1, "g").unwrap();
    let t1 = h.start(1).unwrap();
    let t2 = h.start(1).unwrap();
    h.write_tx(1, t1, "f", "").unwrap();
    h.write_tx(1, t1, "g", "").unwrap();
    h.write_tx(1, t2, "e/p", "").unwrap();
    h.write_tx(1, t2, "e/q", "").unwrap();
    h.end(1, t1, true).unwrap();
    assert_eq!(h.end(1, t2, true), Err(XsError::ENOSPC));
    assert_eq!(h.read(1, "e/p"), Err(XsError::ENOENT));
    assert_eq!(h.x.store().owned_count(1), 5);
    // dom0 is not limited, even when creating nodes owned by the domain.
    h.x.write("/local/domain/1/by-dom0/x", b"").unwrap();
    assert_eq!(h.x.store().owned_count(1), 7);
    h.x.store().check().unwrap();
}
