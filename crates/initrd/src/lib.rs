//! dom0's initrd: a cpio "newc" archive (GRUB module 2) read in place as a file tree,
//! and written by xtask.
//!
//! Layers, one module each:
//! - [`newc`]: the wire format. [`newc::parse_entries`] walks the headers of an archive,
//!   validating every field (magic, ASCII-hex digits, name NUL-terminated and inside the
//!   archive, data inside the archive, known file type) and requiring the archive to end
//!   with its `TRAILER!!!` entry followed by nothing but zero padding.
//! - [`path`]: lexical path normalisation (`./a`, `a` and `/a` are one path; `..` never
//!   climbs above the root).
//! - [`tree`]: [`Archive`], the parsed archive as an in-memory tree of directories,
//!   regular files, symlinks and device nodes. File data is borrowed from the module's
//!   bytes, never copied. Lookups resolve `.`, `..` and symlinks (at most
//!   [`tree::MAX_SYMLINK_FOLLOWS`] per lookup).
//! - [`write`]: [`write_newc`], a deterministic archive writer (alloc only).
//! - `pack` (feature `std`; always built under `cfg(test)`): [`pack_dir`]/[`collect_dir`], which turn a host directory
//!   into an archive for xtask.
//!
//! Invariant: an [`Archive`] only exists for bytes that parsed completely; every node it
//! hands out refers to bytes inside the archive.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod newc;
#[cfg(any(test, feature = "std"))]
mod pack;
pub mod path;
pub mod tree;
pub mod write;

pub use newc::{Entry, Error, ErrorKind, FileType};
#[cfg(any(test, feature = "std"))]
pub use pack::{collect_dir, pack_dir};
pub use path::normalize;
pub use tree::{Archive, DirEntry, FsError, Metadata, NodeId};
pub use write::{NewBody, NewEntry, WriteError, write_newc};

#[cfg(test)]
mod tests;
