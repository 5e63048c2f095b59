//! The cpio "newc" wire format: header layout, validation, and the flat entry list.
//!
//! An entry is a 110-byte ASCII header (`070701`, or `070702` with a data checksum,
//! then thirteen 8-digit hex fields), the name (`c_namesize` bytes including its NUL),
//! zero padding so that the data starts 4-byte aligned, the data (`c_filesize` bytes)
//! and padding to the next 4-byte boundary. The archive ends with an entry named
//! `TRAILER!!!`; only zero bytes may follow it (writers pad to 512 bytes).
//!
//! Invariants of [`parse_entries`]: every returned [`Entry`] has a valid UTF-8 name with
//! no NUL, a known file type, a `data` slice inside the input, no data for directories
//! and device nodes, a non-empty NUL-free UTF-8 target for symlinks; and the input was
//! terminated by the trailer. Padding bytes between entries are not inspected (as GNU
//! cpio and Linux do not); `c_check` is verified for regular files of `070702` archives
//! and ignored (beyond being hex) in `070701` ones, as Linux does.

use alloc::vec::Vec;
use core::fmt;

/// Magic of a newc archive.
pub const MAGIC_NEWC: &[u8; 6] = b"070701";
/// Magic of a newc archive whose `c_check` holds the byte sum of each regular file.
pub const MAGIC_CRC: &[u8; 6] = b"070702";
/// Length of an entry header.
pub const HEADER_LEN: usize = 110;
/// Name of the entry that ends an archive.
pub const TRAILER_NAME: &str = "TRAILER!!!";

/// File-type bits of `c_mode`.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
/// Permission bits of `c_mode` (including setuid, setgid, sticky).
pub const PERM_MASK: u32 = 0o7777;

/// Names of the thirteen hex fields, in header order.
pub const FIELD_NAMES: [&str; 13] = [
    "c_ino",
    "c_mode",
    "c_uid",
    "c_gid",
    "c_nlink",
    "c_mtime",
    "c_filesize",
    "c_devmajor",
    "c_devminor",
    "c_rdevmajor",
    "c_rdevminor",
    "c_namesize",
    "c_check",
];
const F_INO: usize = 0;
const F_MODE: usize = 1;
const F_UID: usize = 2;
const F_GID: usize = 3;
const F_NLINK: usize = 4;
const F_MTIME: usize = 5;
const F_FILESIZE: usize = 6;
const F_DEVMAJOR: usize = 7;
const F_DEVMINOR: usize = 8;
const F_RDEVMAJOR: usize = 9;
const F_RDEVMINOR: usize = 10;
const F_NAMESIZE: usize = 11;
const F_CHECK: usize = 12;

/// Offset of hex field `i` inside a header.
pub const fn field_offset(i: usize) -> usize {
    6 + 8 * i
}

/// The type of a file, from the `S_IFMT` bits of its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    /// The type named by the `S_IFMT` bits of `mode`, if they name one.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits of this type.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }
}

/// Why an archive was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fewer than 110 bytes left where a header should start.
    TruncatedHeader,
    /// The header does not start with `070701` or `070702`.
    BadMagic,
    /// A header field holds something other than 8 hex digits.
    BadHex { field: &'static str },
    /// `c_mode` has bits above the 16 a mode can hold.
    ModeOutOfRange(u32),
    /// The `S_IFMT` bits of `c_mode` name no file type.
    UnknownFileType(u32),
    /// `c_namesize` is 0 or 1: the name (without its NUL) is empty.
    EmptyName,
    /// The name, or the padding after it, runs past the end of the archive.
    TruncatedName,
    /// The last byte of the name is not NUL.
    NameNotTerminated,
    /// The name holds a NUL before its end.
    NameHasNul,
    /// The name is not UTF-8.
    NameNotUtf8,
    /// The data, or the padding after it, runs past the end of the archive.
    TruncatedData,
    /// `070702` archive: `c_check` is not the byte sum of the file's data.
    BadChecksum { expected: u32, actual: u32 },
    /// A directory or device node carries data.
    UnexpectedData,
    /// A symlink has an empty target.
    EmptySymlink,
    /// A symlink target holds a NUL or is not UTF-8.
    BadSymlinkTarget,
    /// The trailer entry carries data.
    TrailerWithData,
    /// The archive ends without a `TRAILER!!!` entry.
    MissingTrailer,
    /// Non-zero bytes follow the trailer.
    TrailingData,
    /// A name holds a `..` component.
    DotDotInName,
    /// The name of the root (`.`, `/`) is given to something that is not a directory.
    RootNotDirectory,
    /// Two entries name the same path (directories may be named once explicitly).
    Duplicate,
    /// A parent component of the name is an entry that is not a directory.
    ParentNotDirectory,
}

/// A rejected archive: where (byte offset from the archive's start) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    pub offset: usize,
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) fn at(offset: usize, kind: ErrorKind) -> Error {
        Error { offset, kind }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::TruncatedHeader => f.write_str("truncated header"),
            ErrorKind::BadMagic => f.write_str("bad magic (expected 070701 or 070702)"),
            ErrorKind::BadHex { field } => write!(f, "{field} is not 8 hex digits"),
            ErrorKind::ModeOutOfRange(m) => write!(f, "mode {m:#o} out of range"),
            ErrorKind::UnknownFileType(m) => write!(f, "mode {m:#o} names no file type"),
            ErrorKind::EmptyName => f.write_str("empty name"),
            ErrorKind::TruncatedName => f.write_str("name runs past the end of the archive"),
            ErrorKind::NameNotTerminated => f.write_str("name not NUL-terminated"),
            ErrorKind::NameHasNul => f.write_str("NUL inside name"),
            ErrorKind::NameNotUtf8 => f.write_str("name is not UTF-8"),
            ErrorKind::TruncatedData => f.write_str("data runs past the end of the archive"),
            ErrorKind::BadChecksum { expected, actual } => {
                write!(f, "checksum {actual:#x}, header says {expected:#x}")
            }
            ErrorKind::UnexpectedData => f.write_str("directory or device node with data"),
            ErrorKind::EmptySymlink => f.write_str("symlink with an empty target"),
            ErrorKind::BadSymlinkTarget => f.write_str("symlink target has NUL or is not UTF-8"),
            ErrorKind::TrailerWithData => f.write_str("trailer with data"),
            ErrorKind::MissingTrailer => f.write_str("archive ends without TRAILER!!!"),
            ErrorKind::TrailingData => f.write_str("non-zero bytes after the trailer"),
            ErrorKind::DotDotInName => f.write_str("'..' in an entry name"),
            ErrorKind::RootNotDirectory => f.write_str("root entry is not a directory"),
            ErrorKind::Duplicate => f.write_str("path named twice"),
            ErrorKind::ParentNotDirectory => f.write_str("a parent of the path is not a directory"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "initrd offset {:#x}: {}", self.offset, self.kind)
    }
}

/// One archive member as it appears on the wire (the trailer is not an entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Offset of the header from the start of the archive.
    pub offset: usize,
    /// The name exactly as stored, without its NUL.
    pub name: &'a str,
    pub ino: u32,
    /// Full mode: file-type bits and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    /// The file's data (a symlink's target), borrowed from the archive.
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// The file type (validated at parse time).
    pub fn file_type(&self) -> FileType {
        FileType::from_mode(self.mode).unwrap_or(FileType::Regular)
    }

    /// Permission bits of the mode.
    pub fn permissions(&self) -> u32 {
        self.mode & PERM_MASK
    }
}

/// Parses 8 ASCII hex digits (either case).
fn hex8(field: &[u8]) -> Option<u32> {
    if field.len() != 8 {
        return None;
    }
    let mut value = 0u32;
    for &c in field {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u32::from(digit);
    }
    Some(value)
}

/// Rounds `x` up to a multiple of 4, or `None` on overflow.
fn align4(x: usize) -> Option<usize> {
    Some(x.checked_add(3)? & !3)
}

/// Walks all headers of `bytes` and returns its entries in archive order (trailer
/// excluded), or the first violation of the format.
pub fn parse_entries(bytes: &[u8]) -> Result<Vec<Entry<'_>>, Error> {
    let len = bytes.len();
    let mut entries = Vec::new();
    let mut off = 0usize;
    loop {
        // Invariant: off <= len and off is 4-aligned.
        let rest = len - off;
        if rest == 0 {
            return Err(Error::at(off, ErrorKind::MissingTrailer));
        }
        if rest < HEADER_LEN {
            return Err(Error::at(off, ErrorKind::TruncatedHeader));
        }
        let header = &bytes[off..off + HEADER_LEN];
        let crc = match &header[..6] {
            m if m == MAGIC_NEWC => false,
            m if m == MAGIC_CRC => true,
            _ => return Err(Error::at(off, ErrorKind::BadMagic)),
        };
        let mut fields = [0u32; 13];
        for (i, value) in fields.iter_mut().enumerate() {
            let at = field_offset(i);
            *value = hex8(&header[at..at + 8]).ok_or(Error::at(
                off + at,
                ErrorKind::BadHex {
                    field: FIELD_NAMES[i],
                },
            ))?;
        }
        let field_at = |i: usize| off + field_offset(i);

        // Name: c_namesize bytes including the NUL, then padding to 4.
        let namesize = fields[F_NAMESIZE] as usize;
        let name_start = off + HEADER_LEN;
        if namesize <= 1 {
            return Err(Error::at(field_at(F_NAMESIZE), ErrorKind::EmptyName));
        }
        let name_end = name_start
            .checked_add(namesize)
            .filter(|&end| end <= len)
            .ok_or(Error::at(name_start, ErrorKind::TruncatedName))?;
        let raw_name = &bytes[name_start..name_end];
        let (nul, raw_name) = raw_name.split_last().expect("namesize >= 2");
        if *nul != 0 {
            return Err(Error::at(name_end - 1, ErrorKind::NameNotTerminated));
        }
        if let Some(i) = raw_name.iter().position(|&b| b == 0) {
            return Err(Error::at(name_start + i, ErrorKind::NameHasNul));
        }
        let name = core::str::from_utf8(raw_name)
            .map_err(|e| Error::at(name_start + e.valid_up_to(), ErrorKind::NameNotUtf8))?;

        let filesize = fields[F_FILESIZE] as usize;
        if name == TRAILER_NAME {
            if filesize != 0 {
                return Err(Error::at(field_at(F_FILESIZE), ErrorKind::TrailerWithData));
            }
            if let Some(i) = bytes[name_end..].iter().position(|&b| b != 0) {
                return Err(Error::at(name_end + i, ErrorKind::TrailingData));
            }
            return Ok(entries);
        }

        let data_start = align4(name_end)
            .filter(|&s| s <= len)
            .ok_or(Error::at(name_end, ErrorKind::TruncatedName))?;
        let data_end = data_start
            .checked_add(filesize)
            .filter(|&end| end <= len)
            .ok_or(Error::at(data_start, ErrorKind::TruncatedData))?;
        let next = align4(data_end)
            .filter(|&n| n <= len)
            .ok_or(Error::at(data_end, ErrorKind::TruncatedData))?;
        let data = &bytes[data_start..data_end];

        let mode = fields[F_MODE];
        if mode > 0xFFFF {
            return Err(Error::at(field_at(F_MODE), ErrorKind::ModeOutOfRange(mode)));
        }
        let file_type = FileType::from_mode(mode).ok_or(Error::at(
            field_at(F_MODE),
            ErrorKind::UnknownFileType(mode),
        ))?;
        match file_type {
            FileType::Regular => {
                if crc {
                    let actual = data
                        .iter()
                        .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)));
                    let expected = fields[F_CHECK];
                    if actual != expected {
                        return Err(Error::at(
                            field_at(F_CHECK),
                            ErrorKind::BadChecksum { expected, actual },
                        ));
                    }
                }
            }
            FileType::Symlink => {
                if data.is_empty() {
                    return Err(Error::at(field_at(F_FILESIZE), ErrorKind::EmptySymlink));
                }
                if data.contains(&0) || core::str::from_utf8(data).is_err() {
                    return Err(Error::at(data_start, ErrorKind::BadSymlinkTarget));
                }
            }
            FileType::Directory
            | FileType::CharDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                if !data.is_empty() {
                    return Err(Error::at(field_at(F_FILESIZE), ErrorKind::UnexpectedData));
                }
            }
        }

        entries.push(Entry {
            offset: off,
            name,
            ino: fields[F_INO],
            mode,
            uid: fields[F_UID],
            gid: fields[F_GID],
            nlink: fields[F_NLINK],
            mtime: fields[F_MTIME],
            dev_major: fields[F_DEVMAJOR],
            dev_minor: fields[F_DEVMINOR],
            rdev_major: fields[F_RDEVMAJOR],
            rdev_minor: fields[F_RDEVMINOR],
            data,
        });
        off = next;
    }
}
