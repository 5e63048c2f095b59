//! Watches: registration records and the rule deciding which change a watch sees.
//!
//! A watch on path W sees a change of node P when P is W or lies below it (the
//! event names P), and, when a subtree is removed, a watch below the removed node
//! sees the removal too (the event names W, as xenstored does). Special `@…`
//! watches see only their own special events. Events for a watch registered with a
//! relative path name paths relative to the watcher's domain directory.

use alloc::string::String;
use alloc::vec::Vec;
use xen_abi::domid::DomId;

use crate::path::{domain_path, is_at_or_below};
use crate::store::Change;

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Canonical absolute path, or the special `@…` name.
    pub path: String,
    /// The token echoed in every event.
    pub token: Vec<u8>,
    /// Registered with a relative path.
    pub relative: bool,
    /// A special `@…` watch.
    pub special: bool,
}

impl Watch {
    /// The canonical path this watch reports for `change`, if it sees it.
    pub fn sees<'a>(&'a self, change: &'a Change) -> Option<&'a str> {
        if self.special {
            None
        } else if is_at_or_below(&change.path, &self.path) {
            Some(&change.path)
        } else if change.removed && is_at_or_below(&self.path, &change.path) {
            Some(&self.path)
        } else {
            None
        }
    }

    /// The path as the watcher `domid` expects it in an event.
    pub fn render(&self, domid: DomId, path: &str) -> Vec<u8> {
        if self.relative {
            let home = domain_path(domid);
            if let Some(rel) = path
                .strip_prefix(home.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return Vec::from(rel.as_bytes());
            }
        }
        Vec::from(path.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(path: &str, relative: bool) -> Watch {
        Watch {
            path: String::from(path),
            token: Vec::from(&b"t"[..]),
            relative,
            special: path.starts_with('@'),
        }
    }

    fn ch(path: &str, removed: bool) -> Change {
        Change {
            path: String::from(path),
            removed,
            perms: Vec::new(),
        }
    }

    #[test]
    fn subtree_and_removal_rules() {
        let a = w("/a", false);
        assert_eq!(a.sees(&ch("/a", false)), Some("/a"));
        assert_eq!(a.sees(&ch("/a/b/c", false)), Some("/a/b/c"));
        assert_eq!(a.sees(&ch("/ab", false)), None);
        assert_eq!(
            a.sees(&ch("/", false)),
            None,
            "a write of an ancestor is not seen"
        );
        assert_eq!(
            a.sees(&ch("/", true)),
            Some("/a"),
            "removal of an ancestor is"
        );
        assert_eq!(w("@releaseDomain", false).sees(&ch("/", true)), None);
    }

    #[test]
    fn relative_rendering() {
        let r = w("/local/domain/3/device", true);
        assert_eq!(r.render(3, "/local/domain/3/device/vbd"), b"device/vbd");
        let a = w("/local/domain/3/device", false);
        assert_eq!(
            a.render(3, "/local/domain/3/device"),
            b"/local/domain/3/device"
        );
    }
}
