//! Watches: immediate fire, subtree, removal, unwatch, permission filter,
//! transactions, special paths, quota.

use super::*;

#[test]
fn fires_once_on_registration() {
    let mut h = H::new();
    h.add(1);
    h.watch(1, "/local/domain/1/device", "tok").unwrap();
    assert_eq!(h.events(1), [ev("/local/domain/1/device", "tok")]);
    h.watch(1, "device", "rel").unwrap();
    assert_eq!(h.events(1), [ev("device", "rel")], "relative as given");
    assert!(h.events(1).is_empty());
}

#[test]
fn fires_on_changes_at_or_below() {
    let mut h = H::new();
    h.add(1);
    h.watch(1, "device", "t").unwrap();
    h.events(1);
    h.write(1, "device/vif/0/state", "1").unwrap();
    assert_eq!(h.events(1), [ev("device/vif/0/state", "t")]);
    h.write(1, "devices", "x").unwrap();
    h.write(1, "other", "x").unwrap();
    assert!(
        h.events(1).is_empty(),
        "siblings and prefixes are not below"
    );
    h.mkdir(1, "device/new").unwrap();
    assert_eq!(h.events(1), [ev("device/new", "t")]);
    h.mkdir(1, "device/new").unwrap();
    assert!(
        h.events(1).is_empty(),
        "mkdir of an existing node changes nothing"
    );
    h.set_perms(1, "device/new", &["n1", "r0"]).unwrap();
    assert_eq!(h.events(1), [ev("device/new", "t")]);
    h.rm(1, "device/new").unwrap();
    assert_eq!(h.events(1), [ev("device/new", "t")]);
    h.rm(1, "device/new").unwrap();
    assert!(
        h.events(1).is_empty(),
        "rm of a missing node changes nothing"
    );
}

#[test]
fn other_connections_get_events_queued() {
    let mut h = H::new();
    h.add(1);
    h.x.watch("/local/domain/1", "be").unwrap();
    assert_eq!(h.events(0), [ev("/local/domain/1", "be")]);
    h.write(1, "device/vbd/state", "4").unwrap();
    assert_eq!(h.events(0), [ev("/local/domain/1/device/vbd/state", "be")]);
}

#[test]
fn rm_of_a_parent_fires_child_watchers() {
    let mut h = H::new();
    h.add(1);
    h.write(1, "a/b/c", "x").unwrap();
    h.watch(1, "a/b/c", "child").unwrap();
    h.watch(1, "/local/domain/1", "top").unwrap();
    h.events(1);
    h.rm(1, "a").unwrap();
    let mut e = h.events(1);
    e.sort();
    assert_eq!(e, [ev("/local/domain/1/a", "top"), ev("a/b/c", "child")]);
}

#[test]
fn unwatch() {
    let mut h = H::new();
    h.add(1);
    h.watch(1, "x", "t").unwrap();
    assert_eq!(h.watch(1, "x", "t"), Err(XsError::EEXIST));
    assert_eq!(
        h.watch(1, "/local/domain/1/x", "t"),
        Err(XsError::EEXIST),
        "same node"
    );
    h.watch(1, "x", "t2").unwrap();
    h.unwatch(1, "x", "t").unwrap();
    assert_eq!(h.unwatch(1, "x", "t"), Err(XsError::ENOENT));
    h.events(1);
    h.write(1, "x", "v").unwrap();
    assert_eq!(h.events(1), [ev("x", "t2")]);
    assert_eq!(h.watch(1, "bad path", "t"), Err(XsError::EINVAL));
    assert_eq!(
        h.ok(1, XS_WATCH, 0, b"x\0"),
        Err(XsError::EINVAL),
        "token missing"
    );
}

#[test]
fn events_only_reach_readers() {
    let mut h = H::new();
    h.add(1);
    h.add(2);
    h.watch(2, "/local/domain/1", "spy").unwrap();
    assert_eq!(h.events(2).len(), 1, "registration itself fires");
    h.write(1, "private", "x").unwrap();
    assert!(
        h.events(2).is_empty(),
        "domain 2 cannot read domain 1's node"
    );
    h.write(1, "public", "x").unwrap();
    h.set_perms(1, "public", &["r1"]).unwrap();
    assert_eq!(
        h.events(2),
        [ev("/local/domain/1/public", "spy")],
        "now readable"
    );
    // Losing read access is still announced (old permissions count).
    h.set_perms(1, "public", &["n1"]).unwrap();
    assert_eq!(h.events(2), [ev("/local/domain/1/public", "spy")]);
    h.write(1, "public", "y").unwrap();
    assert!(h.events(2).is_empty());
}

#[test]
fn transaction_changes_fire_at_commit_only() {
    let mut h = H::new();
    h.add(1);
    h.watch(1, "k", "t").unwrap();
    h.x.watch("/local/domain/1", "d0").unwrap();
    h.events(1);
    h.events(0);
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "k", "v").unwrap();
    assert!(h.events(1).is_empty());
    assert!(h.events(0).is_empty());
    h.end(1, t, true).unwrap();
    assert_eq!(h.events(1), [ev("k", "t")]);
    assert_eq!(h.events(0), [ev("/local/domain/1/k", "d0")]);
    // Aborted and conflicting transactions fire nothing.
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "k", "w").unwrap();
    h.end(1, t, false).unwrap();
    let t = h.start(1).unwrap();
    h.write_tx(1, t, "k", "w").unwrap();
    h.write(0, "/local/domain/1/k", "z").unwrap();
    h.events(1);
    assert_eq!(h.end(1, t, true), Err(XsError::EAGAIN));
    assert!(h.events(1).is_empty());
}

#[test]
fn special_watches_fire_on_introduce_and_release() {
    let mut h = H::new();
    h.x.watch("@introduceDomain", "in").unwrap();
    h.x.watch("@releaseDomain", "out").unwrap();
    assert_eq!(
        h.events(0),
        [ev("@introduceDomain", "in"), ev("@releaseDomain", "out")]
    );
    h.add(3);
    assert_eq!(h.events(0), [ev("@introduceDomain", "in")]);
    h.add(4);
    h.watch(4, "@releaseDomain", "r4").unwrap();
    h.events(0);
    h.events(4);
    h.write(0, "/local/domain/3/x", "y").unwrap();
    assert!(
        h.events(4).is_empty(),
        "node changes do not reach special watches"
    );
    h.x.release(3).unwrap();
    assert_eq!(h.events(0), [ev("@releaseDomain", "out")]);
    assert_eq!(
        h.events(4),
        [ev("@releaseDomain", "r4")],
        "no read check for specials"
    );
}

#[test]
fn watch_quota() {
    let mut h = H::with_quota(Quota {
        max_watches: 3,
        ..Quota::default()
    });
    h.add(1);
    for i in 0..3 {
        h.watch(1, "x", &format!("{i}")).unwrap();
    }
    assert_eq!(h.watch(1, "x", "3"), Err(XsError::E2BIG));
    h.unwatch(1, "x", "0").unwrap();
    h.watch(1, "x", "3").unwrap();
    for i in 0..5 {
        h.watch(0, "x", &format!("{i}")).unwrap();
    }
}

#[test]
fn events_beyond_the_output_quota_are_dropped() {
    let mut h = H::with_quota(Quota {
        max_pending_output: 200,
        ..Quota::default()
    });
    h.add(1);
    h.x.mkdir("/local/domain/1/w").unwrap();
    h.watch(1, "w", "t").unwrap();
    h.events(1);
    for i in 0..20 {
        h.x.write("/local/domain/1/w", format!("{i}").as_bytes())
            .unwrap();
    }
    let c = h.x.connection(1).unwrap();
    assert!(c.pending_output() <= 200);
    assert!(c.dropped_events() > 0);
    let got = h.events(1).len();
    assert_eq!(got as u64 + h.x.connection(1).unwrap().dropped_events(), 20);
}
