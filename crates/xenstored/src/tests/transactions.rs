//! Transactions: isolation, commit, abort, conflicts, ids.

use super::*;

#[test]
fn commit_applies_atomically_and_isolates_until_then() {
    let mut h = H::new();
    h.add(1);
    let t = h.start(1).unwrap();
    assert_ne!(t, 0);
    h.write_tx(1, t, "device/a", "1").unwrap();
    h.write_tx(1, t, "device/b", "2").unwrap();
    assert_eq!(h.read_tx(1, t, "device/a").unwrap(), b"1", "visible inside");
    assert_eq!(h.read(1, "device/a"), Err(XsError::ENOENT), "not outside");
    assert_eq!(h.call(1, XS_DIRECTORY, t, b"device\0").unwrap(), b"a\0b\0");
    h.end(1, t, true).unwrap();
    assert_eq!(h.read(1, "device/a").unwrap(), b"1");
    assert_eq!(h.read(1, "device/b").unwrap(), b"2");
    assert_eq!(
        h.end(1, t, true),
        Err(XsError::ENOENT),
        "ended transactions are gone"
    );
    h.x.store().check().unwrap();
}

#[test]
fn abort_discards() {
    let mut h = H::new();
    h.add(1);
    h.write(1, "k", "old").unwrap();
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "k", "new").unwrap();
    h.ok(1, XS_RM, t, b"k\0").unwrap();
    assert_eq!(h.read_tx(1, t, "k"), Err(XsError::ENOENT));
    h.end(1, t, false).unwrap();
    assert_eq!(h.read(1, "k").unwrap(), b"old");
}

#[test]
fn conflicting_commit_gets_eagain_and_applies_nothing() {
    let mut h = H::new();
    h.add(1);
    h.add(2);
    h.x.mkdir("/shared").unwrap();
    h.x.set_perms("/shared", crate::Perms::parse([&b"b0"[..]]).unwrap())
        .unwrap();
    h.write(0, "/shared/node", "0").unwrap();
    let t1 = h.start(1).unwrap();
    let t2 = h.start(2).unwrap();
    assert_eq!(h.read_tx(1, t1, "/shared/node").unwrap(), b"0");
    assert_eq!(h.read_tx(2, t2, "/shared/node").unwrap(), b"0");
    h.write_tx(1, t1, "/shared/node", "from1").unwrap();
    h.write_tx(2, t2, "/shared/node", "from2").unwrap();
    h.write_tx(2, t2, "/shared/other", "side-effect").unwrap();
    h.end(1, t1, true).unwrap();
    assert_eq!(h.end(2, t2, true), Err(XsError::EAGAIN));
    assert_eq!(h.read(0, "/shared/node").unwrap(), b"from1");
    assert_eq!(
        h.read(0, "/shared/other"),
        Err(XsError::ENOENT),
        "nothing of t2 applied"
    );
    assert_eq!(
        h.end(2, t2, true),
        Err(XsError::ENOENT),
        "a failed transaction is gone"
    );
}

#[test]
fn read_only_dependency_conflicts_too() {
    let mut h = H::new();
    h.write(0, "/cfg", "a").unwrap();
    let t = h.start(0).unwrap();
    assert_eq!(h.read_tx(0, t, "/cfg").unwrap(), b"a");
    h.write_tx(0, t, "/derived", "from-a").unwrap();
    h.write(0, "/cfg", "b").unwrap(); // outside the transaction
    assert_eq!(h.end(0, t, true), Err(XsError::EAGAIN));
    assert_eq!(h.read(0, "/derived"), Err(XsError::ENOENT));
}

#[test]
fn conflict_on_creating_the_same_node() {
    let mut h = H::new();
    h.add(1);
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "x", "tx").unwrap();
    h.write(1, "x", "direct").unwrap();
    assert_eq!(h.end(1, t, true), Err(XsError::EAGAIN));
    assert_eq!(h.read(1, "x").unwrap(), b"direct");
}

#[test]
fn non_conflicting_concurrent_commits_succeed() {
    let mut h = H::new();
    h.add(1);
    h.add(2);
    h.write(1, "a", "0").unwrap();
    h.write(2, "a", "0").unwrap();
    let t1 = h.start(1).unwrap();
    let t2 = h.start(2).unwrap();
    h.write_tx(1, t1, "a", "1").unwrap();
    h.write_tx(2, t2, "a", "2").unwrap();
    h.end(2, t2, true).unwrap();
    h.end(1, t1, true).unwrap();
    assert_eq!(h.read(1, "a").unwrap(), b"1");
    assert_eq!(h.read(2, "a").unwrap(), b"2");
}

#[test]
fn transaction_errors() {
    let mut h = H::new();
    h.add(1);
    assert_eq!(h.read_tx(1, 42, "x"), Err(XsError::ENOENT), "unknown tx id");
    assert_eq!(h.write_tx(1, 42, "x", "y"), Err(XsError::ENOENT));
    assert_eq!(h.end(1, 42, true), Err(XsError::ENOENT));
    assert_eq!(h.end(1, 0, true), Err(XsError::ENOENT), "no transaction");
    let t = h.start(1).unwrap();
    assert_eq!(
        h.call(1, XS_TRANSACTION_START, t, b"\0"),
        Err(XsError::EBUSY)
    );
    assert_eq!(h.ok(1, XS_TRANSACTION_END, t, b"X\0"), Err(XsError::EINVAL));
    // Transactions are per connection: another domain cannot use this id.
    h.add(2);
    assert_eq!(h.read_tx(2, t, "x"), Err(XsError::ENOENT));
    h.end(1, t, false).unwrap();
}

#[test]
fn ids_are_fresh_per_connection() {
    let mut h = H::new();
    h.add(1);
    let a = h.start(1).unwrap();
    let b = h.start(1).unwrap();
    assert_ne!(a, b);
    h.end(1, a, false).unwrap();
    let c = h.start(1).unwrap();
    assert!(c != a && c != b);
}

#[test]
fn transaction_quota() {
    let mut h = H::with_quota(Quota {
        max_transactions: 2,
        ..Quota::default()
    });
    h.add(1);
    let a = h.start(1).unwrap();
    h.start(1).unwrap();
    assert_eq!(h.start(1), Err(XsError::ENOSPC));
    h.end(1, a, false).unwrap();
    h.start(1).unwrap();
    for _ in 0..5 {
        h.start(0).unwrap(); // dom0 is exempt
    }
}

#[test]
fn permissions_apply_inside_transactions() {
    let mut h = H::new();
    h.add(1);
    let t = h.start(1).unwrap();
    assert_eq!(h.write_tx(1, t, "/vm/x", "y"), Err(XsError::EACCES));
    assert_eq!(
        h.read_tx(1, t, "/local/domain/0/name"),
        Err(XsError::EACCES)
    );
    h.end(1, t, true).unwrap();
}

#[test]
fn rm_and_set_perms_in_a_transaction() {
    let mut h = H::new();
    h.write(0, "/t/a/b", "1").unwrap();
    let t = h.start(0).unwrap();
    h.ok(0, XS_RM, t, b"/t/a\0").unwrap();
    h.ok(0, XS_SET_PERMS, t, b"/t\0r3\0").unwrap();
    assert_eq!(h.call(0, XS_GET_PERMS, t, b"/t\0").unwrap(), b"r3\0");
    assert_eq!(h.get_perms(0, "/t").unwrap(), ["n0"]);
    assert_eq!(h.read(0, "/t/a/b").unwrap(), b"1");
    h.end(0, t, true).unwrap();
    assert_eq!(h.read(0, "/t/a/b"), Err(XsError::ENOENT));
    assert_eq!(h.get_perms(0, "/t").unwrap(), ["r3"]);
    h.x.store().check().unwrap();
}
