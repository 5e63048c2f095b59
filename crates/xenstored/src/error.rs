//! The errors a xenstore request can fail with, named as the wire protocol names
//! them (XEN-PV-ABI.md §13.1): an `XS_ERROR` reply carries `as_str()` plus a NUL.
//!
//! Invariant: every variant maps to an entry of `xen_abi::xenstore::XSD_ERRORS`, so
//! the name and errno value come from the ABI crate and are declared nowhere else.

use xen_abi::errno::Errno;
use xen_abi::xenstore::{xsd_error_from_name, xsd_error_name};

/// An error a xenstore request can fail with (the §13 errno names).
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XsError {
    /// Malformed request, bad path, bad argument.
    EINVAL,
    /// Permission denied.
    EACCES,
    /// Already exists (duplicate watch, re-introduction with another page).
    EEXIST,
    /// Is a directory.
    EISDIR,
    /// No such node, watch, transaction or domain.
    ENOENT,
    /// Out of memory.
    ENOMEM,
    /// Quota exceeded (nodes, value size, transactions).
    ENOSPC,
    /// I/O error (an internal consistency check failed).
    EIO,
    /// Directory not empty.
    ENOTEMPTY,
    /// Not implemented.
    ENOSYS,
    /// Read-only.
    EROFS,
    /// Busy (transaction started inside a transaction).
    EBUSY,
    /// Transaction conflict: retry the whole transaction.
    EAGAIN,
    /// Already connected.
    EISCONN,
    /// Too big (watch quota, reply larger than a payload).
    E2BIG,
    /// Operation not permitted (an unprivileged domain changing a node's owner).
    EPERM,
}

impl XsError {
    /// Every variant, in the order of `XSD_ERRORS`.
    pub const ALL: [XsError; 16] = [
        XsError::EINVAL,
        XsError::EACCES,
        XsError::EEXIST,
        XsError::EISDIR,
        XsError::ENOENT,
        XsError::ENOMEM,
        XsError::ENOSPC,
        XsError::EIO,
        XsError::ENOTEMPTY,
        XsError::ENOSYS,
        XsError::EROFS,
        XsError::EBUSY,
        XsError::EAGAIN,
        XsError::EISCONN,
        XsError::E2BIG,
        XsError::EPERM,
    ];

    /// The errno value (Xen's = Linux's).
    pub const fn errno(self) -> Errno {
        match self {
            XsError::EINVAL => Errno::EINVAL,
            XsError::EACCES => Errno::EACCES,
            XsError::EEXIST => Errno::EEXIST,
            XsError::EISDIR => Errno::EISDIR,
            XsError::ENOENT => Errno::ENOENT,
            XsError::ENOMEM => Errno::ENOMEM,
            XsError::ENOSPC => Errno::ENOSPC,
            XsError::EIO => Errno::EIO,
            XsError::ENOTEMPTY => Errno::ENOTEMPTY,
            XsError::ENOSYS => Errno::ENOSYS,
            XsError::EROFS => Errno::EROFS,
            XsError::EBUSY => Errno::EBUSY,
            XsError::EAGAIN => Errno::EAGAIN,
            XsError::EISCONN => Errno::EISCONN,
            XsError::E2BIG => Errno::E2BIG,
            XsError::EPERM => Errno::EPERM,
        }
    }

    /// The name sent in an `XS_ERROR` reply, e.g. `"ENOENT"` (without the NUL).
    pub fn as_str(self) -> &'static str {
        // Every variant is in XSD_ERRORS (checked by a test), so the fallback is
        // never taken; it keeps this total without a panic path.
        xsd_error_name(self.errno()).unwrap_or("EIO")
    }

    /// Decodes an `XS_ERROR` payload (with or without its NUL).
    pub fn from_name(name: &[u8]) -> Option<XsError> {
        let e = xsd_error_from_name(name)?;
        XsError::ALL.iter().copied().find(|v| v.errno() == e)
    }
}

impl core::fmt::Display for XsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::xenstore::XSD_ERRORS;

    #[test]
    fn names_come_from_the_abi_table() {
        assert_eq!(XsError::ENOENT.as_str(), "ENOENT");
        assert_eq!(XsError::EAGAIN.as_str(), "EAGAIN");
        assert_eq!(XsError::E2BIG.as_str(), "E2BIG");
        for (v, (errno, name)) in XsError::ALL.iter().zip(XSD_ERRORS) {
            assert_eq!(v.errno(), errno);
            assert_eq!(v.as_str(), name);
            assert_eq!(XsError::from_name(name.as_bytes()), Some(*v));
        }
    }

    #[test]
    fn from_name_rejects_unknown() {
        assert_eq!(XsError::from_name(b"EACCES\0"), Some(XsError::EACCES));
        assert_eq!(XsError::from_name(b"EFAULT"), None);
        assert_eq!(XsError::from_name(b""), None);
    }
}
