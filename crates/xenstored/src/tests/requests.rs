//! Each request type's happy and error paths, and the permission rules.

use super::*;

#[test]
fn standard_tree() {
    let mut h = H::new();
    assert_eq!(h.read(0, "/local/domain/0/name").unwrap(), b"Domain-0");
    assert_eq!(
        h.read(0, "name").unwrap(),
        b"Domain-0",
        "relative to dom0's home"
    );
    assert_eq!(h.read(0, "/local/domain/0/domid").unwrap(), b"0");
    assert_eq!(h.dir(0, "/").unwrap(), ["local", "tool", "vm"]);
    assert_eq!(h.dir(0, "/tool").unwrap(), ["xenstored"]);
    assert_eq!(h.get_perms(0, "/").unwrap(), ["n0"]);
    h.x.store().check().unwrap();
}

#[test]
fn read_and_write() {
    let mut h = H::new();
    h.write(0, "/a/b/c", "v1").unwrap();
    assert_eq!(h.read(0, "/a/b/c").unwrap(), b"v1");
    assert_eq!(h.read(0, "/a/b").unwrap(), b"", "created parents are empty");
    h.write(0, "/a/b/c", "").unwrap();
    assert_eq!(h.read(0, "/a/b/c").unwrap(), b"");
    // Values are raw bytes, NULs included.
    h.ok(0, XS_WRITE, 0, b"/bin\0\x00\x01\xff").unwrap();
    assert_eq!(h.read(0, "/bin").unwrap(), b"\x00\x01\xff");
    assert_eq!(h.read(0, "/nope"), Err(XsError::ENOENT));
    assert_eq!(h.read(0, "/a/"), Err(XsError::EINVAL));
    assert_eq!(h.read(0, "/a b"), Err(XsError::EINVAL));
    assert_eq!(h.call(0, XS_READ, 0, b"/a"), Err(XsError::EINVAL), "no NUL");
    assert_eq!(
        h.call(0, XS_READ, 0, b"/a\0/b\0"),
        Err(XsError::EINVAL),
        "two args"
    );
    assert_eq!(
        h.call(0, XS_WRITE, 0, b"/a"),
        Err(XsError::EINVAL),
        "no separator"
    );
    assert_eq!(h.write(0, "/", "x"), Ok(()), "the root has a value too");
}

#[test]
fn directory() {
    let mut h = H::new();
    h.write(0, "/d/y", "").unwrap();
    h.write(0, "/d/x/deep", "").unwrap();
    assert_eq!(h.dir(0, "/d").unwrap(), ["x", "y"]);
    assert_eq!(h.dir(0, "/d/y").unwrap(), Vec::<String>::new());
    assert_eq!(h.dir(0, "/e"), Err(XsError::ENOENT));
}

#[test]
fn directory_larger_than_a_payload_is_e2big() {
    let mut h = H::new();
    let name = "n".repeat(100);
    for i in 0..41 {
        h.x.mkdir(&format!("/big/{name}{i:02}")).unwrap();
    }
    h.x.rm(&format!("/big/{name}40")).unwrap();
    // 40 names of 102 bytes + NUL = 4120 bytes > 4096
    assert_eq!(h.dir(0, "/big"), Err(XsError::E2BIG));
    h.x.rm(&format!("/big/{name}39")).unwrap();
    assert_eq!(h.dir(0, "/big").unwrap().len(), 39, "4017 bytes fit");
}

#[test]
fn mkdir() {
    let mut h = H::new();
    h.mkdir(0, "/m/n").unwrap();
    assert_eq!(h.dir(0, "/m").unwrap(), ["n"]);
    h.write(0, "/m/n", "keep").unwrap();
    h.mkdir(0, "/m/n").unwrap();
    assert_eq!(
        h.read(0, "/m/n").unwrap(),
        b"keep",
        "mkdir of an existing node keeps it"
    );
    assert_eq!(h.mkdir(0, "/m//n"), Err(XsError::EINVAL));
}

#[test]
fn rm() {
    let mut h = H::new();
    h.write(0, "/r/a/b", "1").unwrap();
    h.write(0, "/r/c", "2").unwrap();
    h.rm(0, "/r/a").unwrap();
    assert_eq!(h.read(0, "/r/a/b"), Err(XsError::ENOENT));
    assert_eq!(h.dir(0, "/r").unwrap(), ["c"]);
    h.rm(0, "/r/gone").unwrap(); // missing node, parent exists: OK
    assert_eq!(h.rm(0, "/r/gone/deeper"), Err(XsError::ENOENT));
    assert_eq!(h.rm(0, "/"), Err(XsError::EINVAL));
    h.x.store().check().unwrap();
}

#[test]
fn get_and_set_perms() {
    let mut h = H::new();
    h.mkdir(0, "/p").unwrap();
    h.set_perms(0, "/p", &["r3", "b4", "n5"]).unwrap();
    assert_eq!(h.get_perms(0, "/p").unwrap(), ["r3", "b4", "n5"]);
    assert_eq!(h.set_perms(0, "/p", &[]), Err(XsError::EINVAL));
    assert_eq!(h.set_perms(0, "/p", &["q3"]), Err(XsError::EINVAL));
    assert_eq!(h.set_perms(0, "/nope", &["r3"]), Err(XsError::ENOENT));
    assert_eq!(h.get_perms(0, "/nope"), Err(XsError::ENOENT));
    // Children created later inherit.
    h.mkdir(0, "/p/q").unwrap();
    assert_eq!(h.get_perms(0, "/p/q").unwrap(), ["r3", "b4", "n5"]);
}

#[test]
fn get_domain_path() {
    let mut h = H::new();
    assert!(
        h.x.receive(7, &Message::new(XS_GET_DOMAIN_PATH, 1, 0, z("5")).encode())
            .is_err(),
        "not connected yet"
    );
    h.add(7);
    for (caller, arg, want) in [
        (7, &b"5\0"[..], Ok(&b"/local/domain/5\0"[..])),
        (0, b"0\0", Ok(b"/local/domain/0\0")),
        (7, b"x\0", Err(XsError::EINVAL)),
        (7, b"70000\0", Err(XsError::EINVAL)),
    ] {
        assert_eq!(
            h.call(caller, XS_GET_DOMAIN_PATH, 0, arg),
            want.map(<[u8]>::to_vec),
            "{caller} {arg:?}"
        );
    }
}

#[test]
fn unknown_and_reply_only_types_are_einval() {
    let mut h = H::new();
    for ty in [
        XS_WATCH_EVENT,
        XS_ERROR,
        XS_RESTRICT,
        XS_RESET_WATCHES,
        XS_DIRECTORY_PART,
        99,
    ] {
        assert_eq!(h.call(0, ty, 0, b"/\0"), Err(XsError::EINVAL), "type {ty}");
    }
}

#[test]
fn control_check_and_enosys() {
    let mut h = H::new();
    h.add(3);
    assert_eq!(h.call(0, XS_CONTROL, 0, b"check\0").unwrap(), b"OK\0");
    assert_eq!(
        h.call(0, XS_CONTROL, 0, b"frobnicate\0"),
        Err(XsError::ENOSYS)
    );
    assert_eq!(h.call(3, XS_CONTROL, 0, b"check\0"), Err(XsError::EACCES));
}

#[test]
fn value_quota() {
    let mut h = H::new();
    h.add(3);
    let big = "v".repeat(2048);
    h.write(3, "ok", &big).unwrap();
    assert_eq!(h.write(3, "ok", &(big.clone() + "v")), Err(XsError::ENOSPC));
    h.write(0, "/local/domain/3/dom0big", &(big + "v")).unwrap();
}

#[test]
fn domu_cannot_read_another_domains_nodes() {
    let mut h = H::new();
    h.add(1);
    h.add(2);
    h.write(1, "secret", "s").unwrap();
    assert_eq!(h.read(1, "/local/domain/1/secret").unwrap(), b"s");
    assert_eq!(h.read(2, "/local/domain/1/secret"), Err(XsError::EACCES));
    assert_eq!(h.dir(2, "/local/domain/1"), Err(XsError::EACCES));
    assert_eq!(h.get_perms(2, "/local/domain/1"), Err(XsError::EACCES));
    // Missing nodes under an unreadable ancestor do not reveal existence.
    assert_eq!(h.read(2, "/local/domain/1/none"), Err(XsError::EACCES));
    assert_eq!(
        h.read(2, "none"),
        Err(XsError::ENOENT),
        "its own home is readable"
    );
    assert_eq!(
        h.read(0, "/local/domain/1/secret").unwrap(),
        b"s",
        "dom0 reads all"
    );
}

#[test]
fn domu_cannot_write_dom0_nodes() {
    let mut h = H::new();
    h.add(1);
    h.x.write("/local/domain/1/name", b"brun").unwrap();
    h.x.set_perms(
        "/local/domain/1/name",
        crate::Perms::parse([&b"n0"[..], b"r1"]).unwrap(),
    )
    .unwrap();
    assert_eq!(h.read(1, "name").unwrap(), b"brun");
    assert_eq!(h.write(1, "name", "evil"), Err(XsError::EACCES));
    assert_eq!(h.rm(1, "name"), Err(XsError::EACCES));
    assert_eq!(h.write(1, "/vm/x", "y"), Err(XsError::EACCES));
    assert_eq!(h.mkdir(1, "/tool/x"), Err(XsError::EACCES));
    assert_eq!(h.set_perms(1, "name", &["b1"]), Err(XsError::EACCES));
    assert_eq!(
        h.rm(1, "/local/domain/1/name/deeper/x"),
        Err(XsError::ENOENT)
    );
    assert_eq!(h.read(1, "name").unwrap(), b"brun");
}

#[test]
fn domu_writes_its_device_subtree_when_permitted() {
    let mut h = H::new();
    h.add(4);
    // Toolstack: device/ owned by dom0, writable by the guest.
    h.x.mkdir("/local/domain/4/device/vbd/51712").unwrap();
    h.x.set_perms(
        "/local/domain/4/device",
        crate::Perms::parse([&b"n0"[..], b"b4"]).unwrap(),
    )
    .unwrap();
    // dom0-made nodes inherit the parent's owner (4), so the toolstack sets them.
    assert_eq!(
        h.get_perms(0, "/local/domain/4/device/vbd/51712").unwrap(),
        ["n4", "r0"]
    );
    for p in [
        "/local/domain/4/device/vbd",
        "/local/domain/4/device/vbd/51712",
    ] {
        h.x.set_perms(p, crate::Perms::parse([&b"n0"[..], b"r4"]).unwrap())
            .unwrap();
    }
    h.write(4, "device/ring-ref", "8").unwrap();
    // The created node is owned by the guest, with the rest inherited.
    assert_eq!(h.get_perms(4, "device/ring-ref").unwrap(), ["n4", "b4"]);
    assert_eq!(
        h.write(4, "device/vbd/51712/state", "3"),
        Err(XsError::EACCES),
        "vbd is read-only"
    );
    h.x.set_perms(
        "/local/domain/4/device/vbd/51712",
        crate::Perms::parse([&b"n0"[..], b"b4"]).unwrap(),
    )
    .unwrap();
    h.write(4, "device/vbd/51712/state", "3").unwrap();
    assert_eq!(
        h.get_perms(4, "device/vbd/51712/state").unwrap(),
        ["n4", "b4"]
    );
    assert_eq!(
        h.read(0, "/local/domain/4/device/vbd/51712/state").unwrap(),
        b"3"
    );
}

#[test]
fn set_perms_rules_for_unprivileged_domains() {
    let mut h = H::new();
    h.add(5);
    h.write(5, "mine", "x").unwrap();
    h.set_perms(5, "mine", &["n5", "r6"]).unwrap();
    assert_eq!(
        h.set_perms(5, "mine", &["n6"]),
        Err(XsError::EPERM),
        "cannot give away"
    );
    // Writable by 6 but not owned by it: no set_perms.
    h.set_perms(5, "mine", &["n5", "b6"]).unwrap();
    h.add(6);
    h.write(6, "/local/domain/5/mine", "y").unwrap();
    assert_eq!(
        h.set_perms(6, "/local/domain/5/mine", &["b5"]),
        Err(XsError::EACCES)
    );
    // dom0 may change owners.
    h.set_perms(0, "/local/domain/5/mine", &["n6"]).unwrap();
    assert_eq!(h.read(5, "mine"), Err(XsError::EACCES));
}

#[test]
fn set_target_grants_the_target_domains_rights() {
    let mut h = H::new();
    h.add(1);
    h.add(2);
    h.write(1, "k", "v").unwrap();
    assert_eq!(h.read(2, "/local/domain/1/k"), Err(XsError::EACCES));
    assert_eq!(
        h.ok(2, XS_SET_TARGET, 0, b"2\x001\0"),
        Err(XsError::EACCES),
        "dom0 only"
    );
    assert_eq!(h.ok(0, XS_SET_TARGET, 0, b"2\x009\0"), Err(XsError::ENOENT));
    assert_eq!(h.ok(0, XS_SET_TARGET, 0, b"9\x001\0"), Err(XsError::ENOENT));
    assert_eq!(h.ok(0, XS_SET_TARGET, 0, b"2\0"), Err(XsError::EINVAL));
    h.ok(0, XS_SET_TARGET, 0, b"2\x001\0").unwrap();
    assert_eq!(h.read(2, "/local/domain/1/k").unwrap(), b"v");
    h.x.release(1).unwrap();
    assert_eq!(h.x.connection(2).unwrap().target(), None);
}
