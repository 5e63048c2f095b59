//! Lexical path handling shared by the reader and the writer.
//!
//! A path is a `/`-separated string. Empty components and `.` carry no meaning, so
//! `./etc/xen/brun.cfg`, `etc/xen/brun.cfg`, `/etc/xen/brun.cfg` and
//! `//etc/./xen/brun.cfg` all name the same file. `..` steps to the parent and never
//! above the root. [`normalize`] is purely lexical (it does not see symlinks); the
//! tree's lookups resolve `..` physically, after following symlinks.

use alloc::string::String;
use alloc::vec::Vec;

/// The meaningful components of `path`: empty and `.` components are dropped, `..` is kept.
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Whether `path` starts at the root.
pub fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

/// Resolves `path` lexically against the directory `cwd` (itself taken from the root)
/// and returns the absolute normal form: `/` or `/a/b` with no `.`, `..` or empty
/// component. `..` at the root stays at the root.
pub fn normalize(cwd: &str, path: &str) -> String {
    let base = if is_absolute(path) { "" } else { cwd };
    let mut stack: Vec<&str> = Vec::new();
    for c in components(base).chain(components(path)) {
        if c == ".." {
            stack.pop();
        } else {
            stack.push(c);
        }
    }
    if stack.is_empty() {
        return String::from("/");
    }
    let mut out = String::new();
    for c in stack {
        out.push('/');
        out.push_str(c);
    }
    out
}
