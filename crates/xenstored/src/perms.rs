//! Node permissions (XEN-PV-ABI.md §13.1): the permission strings `r<domid>`,
//! `w<domid>`, `b<domid>`, `n<domid>`, and who may do what.
//!
//! A node's permission list always has at least one entry: the first names the
//! owner and the access everyone not listed gets (the default); later entries give
//! one domain its own access. The owner, a privileged domain (dom0) and a domain
//! whose target is the owner get full access ("owner rights"). Write access does
//! not imply read access (as in xenstored).

use alloc::vec::Vec;
use xen_abi::domid::DomId;

use crate::error::XsError;

/// One access level of a permission entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// The letter of the permission string.
    pub const fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    /// Parses a permission letter.
    pub const fn from_letter(c: u8) -> Option<Access> {
        match c {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }

    /// Whether this level allows reading.
    pub const fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::Both)
    }

    /// Whether this level allows writing.
    pub const fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::Both)
    }
}

/// The domain a request acts as: its domid and, after `XS_SET_TARGET`, the domain
/// it may act for (a device model's guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The requesting domain.
    pub domid: DomId,
    /// The domain this one may act for, if any.
    pub target: Option<DomId>,
}

impl Principal {
    /// A principal without a target.
    pub const fn new(domid: DomId) -> Principal {
        Principal {
            domid,
            target: None,
        }
    }

    /// dom0 bypasses permission checks and quotas.
    pub const fn is_privileged(&self) -> bool {
        self.domid == 0
    }

    fn is(&self, id: DomId) -> bool {
        self.domid == id || self.target == Some(id)
    }
}

/// The permission list of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms {
    /// The owning domain (first entry).
    pub owner: DomId,
    /// Access of domains not listed (first entry's letter).
    pub default: Access,
    /// Per-domain entries after the first, in order; the first match wins.
    pub acl: Vec<(DomId, Access)>,
}

impl Perms {
    /// An owner and default access with no per-domain entries.
    pub const fn new(owner: DomId, default: Access) -> Perms {
        Perms {
            owner,
            default,
            acl: Vec::new(),
        }
    }

    /// Parses permission strings (each without its NUL); at least one is needed.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Result<Perms, XsError> {
        let mut it = entries.into_iter();
        let (owner, default) = parse_entry(it.next().ok_or(XsError::EINVAL)?)?;
        let mut acl = Vec::new();
        for e in it {
            acl.push(parse_entry(e)?);
        }
        Ok(Perms {
            owner,
            default,
            acl,
        })
    }

    /// Appends the permission strings, each NUL-terminated (the `XS_GET_PERMS` reply).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_entry(out, self.default, self.owner);
        for &(id, a) in &self.acl {
            encode_entry(out, a, id);
        }
    }

    /// Whether `who` has owner rights (full access, may set permissions).
    pub fn is_owner(&self, who: &Principal) -> bool {
        who.is_privileged() || who.is(self.owner)
    }

    /// The access `who` gets.
    pub fn access_for(&self, who: &Principal) -> Access {
        if self.is_owner(who) {
            return Access::Both;
        }
        self.acl
            .iter()
            .find(|(id, _)| who.is(*id))
            .map_or(self.default, |&(_, a)| a)
    }

    /// Whether `who` may read the node.
    pub fn can_read(&self, who: &Principal) -> bool {
        self.access_for(who).can_read()
    }

    /// Whether `who` may write the node.
    pub fn can_write(&self, who: &Principal) -> bool {
        self.access_for(who).can_write()
    }
}

fn parse_entry(e: &[u8]) -> Result<(DomId, Access), XsError> {
    let (&letter, digits) = e.split_first().ok_or(XsError::EINVAL)?;
    let access = Access::from_letter(letter).ok_or(XsError::EINVAL)?;
    Ok((parse_domid(digits)?, access))
}

/// Parses a decimal domid (digits only, at least one, fitting a `u16`).
pub fn parse_domid(digits: &[u8]) -> Result<DomId, XsError> {
    let v = parse_decimal(digits, u64::from(DomId::MAX))?;
    DomId::try_from(v).map_err(|_| XsError::EINVAL)
}

/// Parses an unsigned decimal number no larger than `max`.
pub fn parse_decimal(digits: &[u8], max: u64) -> Result<u64, XsError> {
    if digits.is_empty() {
        return Err(XsError::EINVAL);
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(XsError::EINVAL);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .filter(|&v| v <= max)
            .ok_or(XsError::EINVAL)?;
    }
    Ok(v)
}

fn encode_entry(out: &mut Vec<u8>, a: Access, id: DomId) {
    use core::fmt::Write;
    let mut s = alloc::string::String::new();
    // Writing to a String cannot fail.
    let _ = write!(s, "{}{}", a.letter() as char, id);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(s: &[&str]) -> Result<Perms, XsError> {
        Perms::parse(s.iter().map(|e| e.as_bytes()))
    }

    #[test]
    fn parse_and_encode_round_trip() {
        let p = perms(&["n5", "r0", "b7", "w9"]).unwrap();
        assert_eq!(p.owner, 5);
        assert_eq!(p.default, Access::None);
        assert_eq!(
            p.acl,
            [(0, Access::Read), (7, Access::Both), (9, Access::Write)]
        );
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(out, b"n5\0r0\0b7\0w9\0");
    }

    #[test]
    fn parse_rejects_malformed_entries() {
        assert_eq!(perms(&[]), Err(XsError::EINVAL));
        assert_eq!(perms(&[""]), Err(XsError::EINVAL));
        assert_eq!(perms(&["x1"]), Err(XsError::EINVAL));
        assert_eq!(perms(&["r"]), Err(XsError::EINVAL));
        assert_eq!(perms(&["r-1"]), Err(XsError::EINVAL));
        assert_eq!(perms(&["r65536"]), Err(XsError::EINVAL));
        assert_eq!(perms(&["r1", "b2x"]), Err(XsError::EINVAL));
        assert!(perms(&["r65535"]).is_ok());
    }

    #[test]
    fn owner_default_and_acl_decide_access() {
        let p = perms(&["r5", "n7", "w8"]).unwrap();
        let d = |id| Principal::new(id);
        assert_eq!(p.access_for(&d(0)), Access::Both, "dom0 is privileged");
        assert_eq!(p.access_for(&d(5)), Access::Both, "owner");
        assert_eq!(p.access_for(&d(6)), Access::Read, "default");
        assert_eq!(
            p.access_for(&d(7)),
            Access::None,
            "acl entry overrides default"
        );
        assert!(p.can_write(&d(8)));
        assert!(!p.can_read(&d(8)), "write does not imply read");
        assert!(!p.is_owner(&d(6)));
        let t = Principal {
            domid: 9,
            target: Some(5),
        };
        assert!(
            p.is_owner(&t),
            "a domain targeting the owner has owner rights"
        );
    }

    #[test]
    fn decimal_parsing() {
        assert_eq!(parse_decimal(b"0", 10), Ok(0));
        assert_eq!(parse_decimal(b"10", 10), Ok(10));
        assert_eq!(parse_decimal(b"11", 10), Err(XsError::EINVAL));
        assert_eq!(parse_decimal(b"", 10), Err(XsError::EINVAL));
        assert_eq!(parse_decimal(b"1a", 10), Err(XsError::EINVAL));
        assert_eq!(
            parse_decimal(b"99999999999999999999999", u64::MAX),
            Err(XsError::EINVAL)
        );
    }
}
