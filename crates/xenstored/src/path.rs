//! Xenstore paths (XEN-PV-ABI.md §13.1, §13.3): validation and resolution.
//!
//! A canonical path is absolute: it starts with `/`, uses only `[A-Za-z0-9-/_@]`,
//! has no empty component and no trailing `/` (except the root `/` itself), and is
//! at most `XENSTORE_ABS_PATH_MAX` bytes. A relative path (no leading `/`, at most
//! `XENSTORE_REL_PATH_MAX` bytes) is resolved against `/local/domain/<domid>` of the
//! requester. Watches may also name special paths starting with `@`
//! (`@introduceDomain`, `@releaseDomain`), which are never nodes.

use alloc::format;
use alloc::string::String;
use xen_abi::domid::DomId;
use xen_abi::xenstore::{XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};

use crate::error::XsError;

/// `/local/domain/<domid>`, the home of a domain's nodes.
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Checks the component syntax of `p` (without its leading `/`, if any).
fn check_components(p: &[u8]) -> Result<(), XsError> {
    if !p.iter().all(|&c| valid_char(c)) {
        return Err(XsError::EINVAL);
    }
    if p.split(|&c| c == b'/').any(|c| c.is_empty()) {
        return Err(XsError::EINVAL);
    }
    Ok(())
}

/// Resolves a node path sent by `domid` to its canonical absolute form.
pub fn resolve(domid: DomId, raw: &[u8]) -> Result<String, XsError> {
    Ok(resolve_watch(domid, raw)
        .and_then(|w| {
            if w.special {
                // `@…` is only a watch target; as a node path it would be a
                // relative name, which is not what the caller meant.
                Err(XsError::EINVAL)
            } else {
                Ok(w)
            }
        })?
        .path)
}

/// A resolved watch path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchPath {
    /// Canonical absolute path, or the special `@…` name.
    pub path: String,
    /// The caller gave a relative path: events report paths relative to its
    /// domain directory.
    pub relative: bool,
    /// A special `@…` path.
    pub special: bool,
}

/// Resolves a watch path: a node path or a special `@…` name.
pub fn resolve_watch(domid: DomId, raw: &[u8]) -> Result<WatchPath, XsError> {
    let s = core::str::from_utf8(raw).map_err(|_| XsError::EINVAL)?;
    match raw.first() {
        None => Err(XsError::EINVAL),
        Some(b'@') => {
            if raw.len() > XENSTORE_REL_PATH_MAX {
                return Err(XsError::EINVAL);
            }
            check_components(raw)?;
            Ok(WatchPath {
                path: String::from(s),
                relative: false,
                special: true,
            })
        }
        Some(b'/') => {
            if raw.len() > XENSTORE_ABS_PATH_MAX {
                return Err(XsError::EINVAL);
            }
            if raw.len() > 1 {
                check_components(&raw[1..])?;
            }
            Ok(WatchPath {
                path: String::from(s),
                relative: false,
                special: false,
            })
        }
        Some(_) => {
            if raw.len() > XENSTORE_REL_PATH_MAX {
                return Err(XsError::EINVAL);
            }
            check_components(raw)?;
            let path = format!("{}/{s}", domain_path(domid));
            if path.len() > XENSTORE_ABS_PATH_MAX {
                return Err(XsError::EINVAL);
            }
            Ok(WatchPath {
                path,
                relative: true,
                special: false,
            })
        }
    }
}

/// The parent of a canonical path (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a canonical path (`""` for the root).
pub fn basename(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `parent/name` of a canonical parent.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether canonical `path` is `ancestor` or lies below it.
pub fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn absolute_paths() {
        assert_eq!(resolve(3, b"/").unwrap(), "/");
        assert_eq!(
            resolve(3, b"/local/domain/3/a-b_c").unwrap(),
            "/local/domain/3/a-b_c"
        );
        assert_eq!(resolve(3, b"/a/x@y").unwrap(), "/a/x@y");
        for bad in [
            &b""[..],
            b"//",
            b"/a/",
            b"/a//b",
            b"/a b",
            b"/a.b",
            b"/a\0b",
            b"/\xff",
        ] {
            assert_eq!(resolve(3, bad), Err(XsError::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_domain_directory() {
        assert_eq!(
            resolve(7, b"device/vbd").unwrap(),
            "/local/domain/7/device/vbd"
        );
        assert_eq!(resolve(0, b"name").unwrap(), "/local/domain/0/name");
        assert_eq!(resolve(7, b"a/"), Err(XsError::EINVAL));
        assert_eq!(resolve(7, b"a//b"), Err(XsError::EINVAL));
        let w = resolve_watch(7, b"device").unwrap();
        assert!(w.relative && !w.special);
    }

    #[test]
    fn length_limits() {
        let mut abs = vec![b'/'];
        abs.resize(XENSTORE_ABS_PATH_MAX, b'a');
        assert!(resolve(1, &abs).is_ok());
        abs.push(b'a');
        assert_eq!(resolve(1, &abs), Err(XsError::EINVAL));

        let rel = vec![b'a'; XENSTORE_REL_PATH_MAX];
        assert!(resolve(1, &rel).is_ok());
        let rel = vec![b'a'; XENSTORE_REL_PATH_MAX + 1];
        assert_eq!(resolve(1, &rel), Err(XsError::EINVAL));
    }

    #[test]
    fn special_paths_are_watch_only() {
        let w = resolve_watch(4, b"@releaseDomain").unwrap();
        assert_eq!(w.path, "@releaseDomain");
        assert!(w.special && !w.relative);
        assert_eq!(resolve(4, b"@releaseDomain"), Err(XsError::EINVAL));
        assert_eq!(resolve_watch(4, b"@bad path"), Err(XsError::EINVAL));
    }

    #[test]
    fn helpers() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/x", "/"));
        assert!(!is_at_or_below("@releaseDomain", "/"));
        assert_eq!(domain_path(12), "/local/domain/12");
    }
}
