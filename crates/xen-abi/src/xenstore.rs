//! Xenstore wire protocol: message header, message types, error names, limits and
//! the shared ring page (XEN-PV-ABI.md §13).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno::Errno;

/// `XS_DEBUG` (later `XS_CONTROL`): tool-specific.
pub const XS_DEBUG: u32 = 0;
/// Later name of [`XS_DEBUG`].
pub const XS_CONTROL: u32 = 0;
/// `path\0` → child names, each NUL-terminated.
pub const XS_DIRECTORY: u32 = 1;
/// `path\0` → raw value.
pub const XS_READ: u32 = 2;
/// `path\0` → permission strings.
pub const XS_GET_PERMS: u32 = 3;
/// `path\0token\0` → `OK\0` (fires once immediately).
pub const XS_WATCH: u32 = 4;
/// `path\0token\0` → `OK\0`.
pub const XS_UNWATCH: u32 = 5;
/// `\0` → `<decimal id>\0`.
pub const XS_TRANSACTION_START: u32 = 6;
/// `T\0` commit / `F\0` abort → `OK\0` or `EAGAIN`.
pub const XS_TRANSACTION_END: u32 = 7;
/// `domid\0mfn\0port\0` → `OK\0` (dom0 only).
pub const XS_INTRODUCE: u32 = 8;
/// `domid\0` → `OK\0`.
pub const XS_RELEASE: u32 = 9;
/// `domid\0` → `/local/domain/<domid>\0`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `path\0value` → `OK\0` (creates parents).
pub const XS_WRITE: u32 = 11;
/// `path\0` → `OK\0`.
pub const XS_MKDIR: u32 = 12;
/// `path\0` (recursive) → `OK\0`.
pub const XS_RM: u32 = 13;
/// `path\0perm\0perm\0…` → `OK\0`.
pub const XS_SET_PERMS: u32 = 14;
/// Unsolicited (`req_id` = `tx_id` = 0): `path\0token\0`.
pub const XS_WATCH_EVENT: u32 = 15;
/// Reply only: the errno name, e.g. `ENOENT\0`.
pub const XS_ERROR: u32 = 16;
/// `domid\0` → `T\0`/`F\0`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `domid\0` → `OK\0`.
pub const XS_RESUME: u32 = 18;
/// `domid\0target\0` → `OK\0`.
pub const XS_SET_TARGET: u32 = 19;
/// (removed later) `XS_RESTRICT`.
pub const XS_RESTRICT: u32 = 20;
/// (later) `XS_RESET_WATCHES`.
pub const XS_RESET_WATCHES: u32 = 21;
/// (later) `XS_DIRECTORY_PART`.
pub const XS_DIRECTORY_PART: u32 = 22;

/// Names of the message types 0…22, indexed by type.
pub const XS_TYPE_NAMES: [&str; 23] = [
    "DEBUG",
    "DIRECTORY",
    "READ",
    "GET_PERMS",
    "WATCH",
    "UNWATCH",
    "TRANSACTION_START",
    "TRANSACTION_END",
    "INTRODUCE",
    "RELEASE",
    "GET_DOMAIN_PATH",
    "WRITE",
    "MKDIR",
    "RM",
    "SET_PERMS",
    "WATCH_EVENT",
    "ERROR",
    "IS_DOMAIN_INTRODUCED",
    "RESUME",
    "SET_TARGET",
    "RESTRICT",
    "RESET_WATCHES",
    "DIRECTORY_PART",
];

/// Name of message type `t`, if known.
pub const fn xs_type_name(t: u32) -> Option<&'static str> {
    if (t as usize) < XS_TYPE_NAMES.len() {
        Some(XS_TYPE_NAMES[t as usize])
    } else {
        None
    }
}

/// Largest payload of one message; exceeding it gets the connection killed.
pub const XENSTORE_PAYLOAD_MAX: u32 = 4096;
/// Longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// Error names a daemon may send in `XS_ERROR`, with their errno values.
pub const XSD_ERRORS: [(Errno, &str); 16] = [
    (Errno::EINVAL, "EINVAL"),
    (Errno::EACCES, "EACCES"),
    (Errno::EEXIST, "EEXIST"),
    (Errno::EISDIR, "EISDIR"),
    (Errno::ENOENT, "ENOENT"),
    (Errno::ENOMEM, "ENOMEM"),
    (Errno::ENOSPC, "ENOSPC"),
    (Errno::EIO, "EIO"),
    (Errno::ENOTEMPTY, "ENOTEMPTY"),
    (Errno::ENOSYS, "ENOSYS"),
    (Errno::EROFS, "EROFS"),
    (Errno::EBUSY, "EBUSY"),
    (Errno::EAGAIN, "EAGAIN"),
    (Errno::EISCONN, "EISCONN"),
    (Errno::E2BIG, "E2BIG"),
    (Errno::EPERM, "EPERM"),
];

/// The errno of an `XS_ERROR` payload (with or without its NUL).
pub fn xsd_error_from_name(name: &[u8]) -> Option<Errno> {
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    XSD_ERRORS
        .iter()
        .find(|(_, n)| n.as_bytes() == name)
        .map(|(e, _)| *e)
}

/// The `XS_ERROR` name of `e`, if the protocol has one.
pub fn xsd_error_name(e: Errno) -> Option<&'static str> {
    XSD_ERRORS.iter().find(|(v, _)| *v == e).map(|(_, n)| *n)
}

/// Special watch path fired when a domain is introduced.
pub const XS_WATCH_INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Special watch path fired when a domain is released.
pub const XS_WATCH_RELEASE_DOMAIN: &str = "@releaseDomain";
/// Legacy write flag string.
pub const XS_WRITE_NONE: &str = "NONE";
/// Legacy write flag string.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// Legacy write flag string.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `struct xsd_sockmsg` (16 bytes): the header before every payload.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct XsdSockmsg {
    /// `XS_*`.
    pub type_: u32,
    /// Request id, echoed in the reply.
    pub req_id: u32,
    /// Transaction id (0 = none).
    pub tx_id: u32,
    /// Payload bytes that follow (≤ `XENSTORE_PAYLOAD_MAX`).
    pub len: u32,
}
assert_layout!(
    XsdSockmsg,
    size = 16,
    align = 4,
    type_ = 0,
    req_id = 4,
    tx_id = 8,
    len = 12
);

/// Size of each byte ring of the xenstore page.
pub const XENSTORE_RING_SIZE: usize = 1024;

/// `MASK_XENSTORE_IDX`: position of a free-running index in a ring.
pub const fn mask_xenstore_idx(idx: u32) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `struct xenstore_domain_interface` (Xen 4.1: 2064 bytes), at `store_mfn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Guest → daemon bytes.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Daemon → guest bytes (replies and watch events).
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// Daemon's consumer index of `req`.
    pub req_cons: u32,
    /// Guest's producer index of `req`.
    pub req_prod: u32,
    /// Guest's consumer index of `rsp`.
    pub rsp_cons: u32,
    /// Daemon's producer index of `rsp`.
    pub rsp_prod: u32,
}
assert_layout!(
    XenstoreDomainInterface,
    size = 2064,
    align = 4,
    req = 0,
    rsp = 1024,
    req_cons = 2048,
    req_prod = 2052,
    rsp_cons = 2056,
    rsp_prod = 2060,
);
zeroed_default!(XenstoreDomainInterface);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_errors() {
        assert_eq!(xs_type_name(XS_WATCH_EVENT), Some("WATCH_EVENT"));
        assert_eq!(xs_type_name(XS_SET_TARGET), Some("SET_TARGET"));
        assert_eq!(xs_type_name(23), None);
        assert_eq!(xsd_error_from_name(b"ENOENT\0"), Some(Errno::ENOENT));
        assert_eq!(xsd_error_from_name(b"EAGAIN"), Some(Errno::EAGAIN));
        assert_eq!(xsd_error_from_name(b"EWHAT"), None);
        assert_eq!(xsd_error_name(Errno::EACCES), Some("EACCES"));
        for (e, n) in XSD_ERRORS {
            assert_eq!(e.name(), Some(n));
        }
        assert_eq!(mask_xenstore_idx(1025), 1);
    }
}
