//! The filesystem's error type: every failure, including a corrupted image, is one of these
//! (the crate never panics on what it reads from the disk).

use crate::dev::IoError;
use core::fmt;

/// Which feature word an unsupported feature bit was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// `s_feature_incompat`: the image cannot be mounted at all.
    Incompat,
    /// `s_feature_ro_compat`: the image can be mounted read-only only.
    RoCompat,
    /// `s_feature_compat` bits whose metadata a writer must maintain.
    Compat,
}

/// A filesystem error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The device failed.
    Io(IoError),
    /// The image is inconsistent (the message says what was found).
    Corrupt(&'static str),
    /// The image uses features this driver does not implement.
    UnsupportedFeature(FeatureKind, u32),
    /// Something this driver does not implement (extents, inline data, ...).
    Unsupported(&'static str),
    /// After an unclean stop the check found damage that ordered writes cannot cause;
    /// run `e2fsck` on the image (the message names the first problem).
    NeedsFsck(&'static str),
    /// No such file or directory (ENOENT).
    NotFound,
    /// A path component is not a directory (ENOTDIR).
    NotDir,
    /// The target is a directory (EISDIR).
    IsDir,
    /// The name already exists (EEXIST).
    Exists,
    /// rmdir of a directory with entries (ENOTEMPTY).
    NotEmpty,
    /// No free block or inode (ENOSPC).
    NoSpace,
    /// A name longer than 255 bytes (ENAMETOOLONG).
    NameTooLong,
    /// An empty path, a name with NUL, or an operation on `.`/`..`/`/` (EINVAL).
    InvalidPath,
    /// The filesystem is mounted read-only (EROFS).
    ReadOnly,
    /// Past the largest file the block map or the feature set allows (EFBIG).
    FileTooLarge,
    /// A link count would pass 65000 (EMLINK).
    TooManyLinks,
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        Error::Io(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e:?}"),
            Error::Corrupt(m) => write!(f, "corrupted filesystem: {m}"),
            Error::UnsupportedFeature(FeatureKind::Incompat, b) => {
                write!(f, "unsupported incompatible features {b:#x}: cannot mount")
            }
            Error::UnsupportedFeature(FeatureKind::RoCompat, b) => {
                write!(f, "unsupported ro_compat features {b:#x}: mount read-only")
            }
            Error::UnsupportedFeature(FeatureKind::Compat, b) => {
                write!(
                    f,
                    "compat features {b:#x} are not maintained by this driver: mount read-only"
                )
            }
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::NeedsFsck(m) => write!(f, "filesystem needs e2fsck: {m}"),
            Error::NotFound => f.write_str("no such file or directory"),
            Error::NotDir => f.write_str("not a directory"),
            Error::IsDir => f.write_str("is a directory"),
            Error::Exists => f.write_str("file exists"),
            Error::NotEmpty => f.write_str("directory not empty"),
            Error::NoSpace => f.write_str("no space left on device"),
            Error::NameTooLong => f.write_str("file name too long"),
            Error::InvalidPath => f.write_str("invalid path"),
            Error::ReadOnly => f.write_str("read-only filesystem"),
            Error::FileTooLarge => f.write_str("file too large"),
            Error::TooManyLinks => f.write_str("too many links"),
        }
    }
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, Error>;
