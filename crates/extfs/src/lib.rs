//! ext2 for dom0's disk: a read-write filesystem over a 512-byte-sector [`BlockDevice`],
//! `no_std` + `alloc`, without `unsafe`, host-tested against e2fsprogs.
//!
//! Supported: ext2 revision 0 and 1 images with 1–64 KiB blocks, block groups, bitmaps,
//! inodes of 128 bytes or more, block maps with direct, single, double and triple indirect
//! blocks, linear directories (an htree index flag is dropped when a directory changes),
//! sparse files (holes stay holes), the features `filetype`, `flex_bg`, `sparse_super`,
//! `large_file`, `resize_inode`, `dir_index`, `ext_attr` (xattr blocks freed with their
//! file), `dir_nlink`, `extra_isize`, `huge_file` (inodes without its flag). That is what
//! `mkfs.ext2` makes, and `mkfs.ext4 -O ^has_journal,^extent,^64bit,^metadata_csum,^orphan_file`.
//! Refused: any other incompat feature (extents, 64bit, meta_bg, inline_data, a journal
//! needing recovery ...) at mount; checksums (`metadata_csum`, `gdt_csum`) and other
//! ro_compat/compat features a writer must maintain for a read-write mount (read-only works).
//! No journal: crash consistency is ordered writes plus a check at mount after an unclean
//! stop that repairs leaks and refuses damage (see [`fs`] and [`check`]).
//!
//! Why our own: see `docs/extfs.md` (the maintained no_std ext4 crates were evaluated:
//! `ext4_rs` 1.3.3 has no error path from the device or from mount and exhausted memory on
//! a corrupted image; `ext4-view` 1.0 is read-only).
//!
//! Modules: [`dev`] the block device trait, a RAM disk and (feature `std`) an image file, [`layout`] the on-disk format,
//! [`fs`] the mounted filesystem and its operations, [`format`] mkfs, [`image`] a file
//! of a mounted filesystem as a block device (`disk.img`), [`check`] the mount-time check,
//! [`error`] the error type. Every error from a corrupted image is an [`Error`], never a panic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod check;
pub mod dev;
pub mod error;
pub mod format;
pub mod fs;
pub mod image;
pub mod layout;

#[cfg(any(test, feature = "std"))]
pub use dev::FileDevice;
pub use dev::{BlockDevice, IoError, MemDevice, SECTOR_SIZE};
pub use error::{Error, FeatureKind, Result};
pub use format::{FormatOptions, format};
pub use fs::{CheckReport, DirEntry, FileKind, Fs, MountOptions, MountReport, Stat, StatFs};
pub use image::FileImage;
