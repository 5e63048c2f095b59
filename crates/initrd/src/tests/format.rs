//! Wire-format validation: one hand-written archive per rule, passing and failing.

use std::string::ToString;
use std::vec::Vec;

use super::raw::{self, Fields};
use crate::newc::{FIELD_NAMES, HEADER_LEN, field_offset, parse_entries};
use crate::{Archive, Error, ErrorKind, FileType};

fn parse_err(bytes: &[u8]) -> Error {
    Archive::parse(bytes).expect_err("archive must be rejected")
}

#[test]
fn trailer_only_is_an_empty_archive() {
    let bytes = raw::trailer();
    let a = Archive::parse(&bytes).unwrap();
    assert!(a.entries().is_empty());
    assert_eq!(a.node_count(), 1);
    assert!(a.read_dir("/").unwrap().is_empty());
    // Zero padding after the trailer is allowed, as is a trailer without name padding.
    let mut padded = bytes.clone();
    padded.resize(512, 0);
    assert!(Archive::parse(&padded).is_ok());
    let unpadded = &bytes[..HEADER_LEN + "TRAILER!!!\0".len()];
    assert!(Archive::parse(unpadded).is_ok());
}

#[test]
fn empty_input_misses_the_trailer() {
    assert_eq!(parse_err(&[]), Error::at(0, ErrorKind::MissingTrailer));
}

#[test]
fn entries_without_trailer_are_rejected() {
    let one = raw::file("a", b"xyz");
    let e = parse_err(&one);
    assert_eq!(e, Error::at(one.len(), ErrorKind::MissingTrailer));
    // Zero bytes where the trailer should be are not a trailer.
    let mut zeros = one.clone();
    zeros.resize(512, 0);
    assert_eq!(parse_err(&zeros), Error::at(one.len(), ErrorKind::BadMagic));
}

#[test]
fn truncated_header() {
    let bytes = raw::archive(&[raw::file("a", b"1")]);
    let second = raw::file("a", b"1").len();
    let cut = &bytes[..second + 50];
    assert_eq!(
        parse_err(cut),
        Error::at(second, ErrorKind::TruncatedHeader)
    );
}

#[test]
fn magic_must_be_newc() {
    let good = raw::archive(&[raw::file("a", b"1")]);
    assert!(Archive::parse(&good).is_ok());
    for magic in [&b"070707"[..], b"070700", b"707010", b"\0\0\0\0\0\0"] {
        let mut bad = good.clone();
        bad[..6].copy_from_slice(magic);
        assert_eq!(parse_err(&bad), Error::at(0, ErrorKind::BadMagic));
    }
    // The offset names the entry with the bad magic.
    let first = raw::file("a", b"1").len();
    let mut bad = good.clone();
    bad[first] = b'1';
    assert_eq!(parse_err(&bad), Error::at(first, ErrorKind::BadMagic));
}

#[test]
fn every_field_must_be_hex() {
    let first = raw::dir("d");
    let bytes = raw::archive(&[first.clone(), raw::file("d/a", b"data")]);
    assert!(Archive::parse(&bytes).is_ok());
    for (i, &name) in FIELD_NAMES.iter().enumerate() {
        for bad_digit in *b"g x-" {
            let mut bad = bytes.clone();
            // Corrupt the second entry so that the offset is not trivially 0.
            let at = first.len() + field_offset(i) + 5;
            bad[at] = bad_digit;
            assert_eq!(
                parse_err(&bad),
                Error::at(
                    first.len() + field_offset(i),
                    ErrorKind::BadHex { field: name }
                ),
                "field {name}, digit {bad_digit}"
            );
        }
    }
}

#[test]
fn hex_digits_of_either_case_are_read() {
    let mut f = Fields::for_entry(0o100644, b"a", b"x");
    f.uid = 0xABCDEF12;
    let entry = raw::entry_with(b"070701", f, b"a\0", b"x");
    let mut upper = entry.clone();
    upper[..HEADER_LEN].make_ascii_uppercase();
    for bytes in [entry, upper] {
        let bytes = [bytes, raw::trailer()].concat();
        let entries = parse_entries(&bytes).unwrap();
        assert_eq!(entries[0].uid, 0xABCDEF12);
    }
}

#[test]
fn fields_are_reported_as_stored() {
    let f = Fields {
        ino: 1,
        mode: 0o104755,
        uid: 2,
        gid: 3,
        nlink: 1,
        mtime: 0x6000_0000,
        filesize: 3,
        devmajor: 8,
        devminor: 9,
        rdevmajor: 10,
        rdevminor: 11,
        namesize: 5,
        check: 0,
    };
    let bytes = [
        raw::entry_with(b"070701", f, b"bin\0\0", b"abc")[..].to_vec(),
        raw::trailer(),
    ]
    .concat();
    // namesize 5 with "bin\0\0": the NUL inside the name is rejected...
    assert_eq!(
        parse_err(&bytes),
        Error::at(HEADER_LEN + 3, ErrorKind::NameHasNul)
    );
    // ...and with a proper name every field comes back.
    let f = Fields { namesize: 4, ..f };
    let bytes = [
        raw::entry_with(b"070701", f, b"bin\0", b"abc"),
        raw::trailer(),
    ]
    .concat();
    let e = parse_entries(&bytes).unwrap()[0];
    assert_eq!(
        (e.ino, e.mode, e.uid, e.gid, e.nlink, e.mtime),
        (1, 0o104755, 2, 3, 1, 0x6000_0000)
    );
    assert_eq!(
        (e.dev_major, e.dev_minor, e.rdev_major, e.rdev_minor),
        (8, 9, 10, 11)
    );
    assert_eq!((e.name, e.data, e.offset), ("bin", &b"abc"[..], 0));
    assert_eq!(e.file_type(), FileType::Regular);
    assert_eq!(e.permissions(), 0o4755);
}

#[test]
fn name_rules() {
    let nsize_at = field_offset(11);
    // namesize 0 and 1 leave no name.
    for (namesize, name_bytes) in [(0u32, &b""[..]), (1, b"\0")] {
        let mut f = Fields::for_entry(0o100644, b"", b"");
        f.namesize = namesize;
        let bytes = [
            raw::entry_with(b"070701", f, name_bytes, b""),
            raw::trailer(),
        ]
        .concat();
        assert_eq!(parse_err(&bytes), Error::at(nsize_at, ErrorKind::EmptyName));
    }
    // Name longer than the archive.
    let mut f = Fields::for_entry(0o100644, b"a", b"");
    f.namesize = 4096;
    let bytes = [raw::entry_with(b"070701", f, b"a\0", b""), raw::trailer()].concat();
    assert_eq!(
        parse_err(&bytes),
        Error::at(HEADER_LEN, ErrorKind::TruncatedName)
    );
    // Name not NUL-terminated.
    let f = Fields::for_entry(0o100644, b"ab", b"");
    let bytes = [raw::entry_with(b"070701", f, b"abc", b""), raw::trailer()].concat();
    assert_eq!(
        parse_err(&bytes),
        Error::at(HEADER_LEN + 2, ErrorKind::NameNotTerminated)
    );
    // Not UTF-8.
    let f = Fields::for_entry(0o100644, b"a\xff", b"");
    let bytes = [
        raw::entry_with(b"070701", f, b"a\xff\0", b""),
        raw::trailer(),
    ]
    .concat();
    assert_eq!(
        parse_err(&bytes),
        Error::at(HEADER_LEN + 1, ErrorKind::NameNotUtf8)
    );
    // Name cut short.
    let entry = raw::file("abc", b"");
    let cut = &entry[..HEADER_LEN + 3];
    assert_eq!(
        parse_err(cut),
        Error::at(HEADER_LEN, ErrorKind::TruncatedName)
    );
    // Name ending exactly at the end of the input, its padding missing.
    let cut = &entry[..HEADER_LEN + 4];
    assert_eq!(
        parse_err(cut),
        Error::at(HEADER_LEN + 4, ErrorKind::TruncatedName)
    );
}

#[test]
fn data_must_fit_in_the_archive() {
    let entry = raw::file("a", b"hello");
    let data_at = HEADER_LEN + 2; // "a\0" ends 4-aligned
    let full = raw::archive(std::slice::from_ref(&entry));
    assert_eq!(Archive::parse(&full).unwrap().open("a").unwrap(), b"hello");
    // filesize larger than what follows; u32::MAX must not overflow anything.
    let mut f = Fields::for_entry(0o100644, b"a", b"hello");
    for filesize in [0x7fff_ffff, u32::MAX] {
        f.filesize = filesize;
        let bytes = [
            raw::entry_with(b"070701", f, b"a\0", b"hello"),
            raw::trailer(),
        ]
        .concat();
        assert_eq!(
            parse_err(&bytes),
            Error::at(data_at, ErrorKind::TruncatedData),
            "filesize {filesize:#x}"
        );
    }
    // Data ending at the end of the input without its padding.
    let cut = &entry[..data_at + 5];
    assert_eq!(
        parse_err(cut),
        Error::at(data_at + 5, ErrorKind::TruncatedData)
    );
    // Data cut short.
    let cut = &entry[..data_at + 2];
    assert_eq!(parse_err(cut), Error::at(data_at, ErrorKind::TruncatedData));
}

#[test]
fn mode_must_name_a_file_type() {
    let mode_at = field_offset(1);
    for (mode, kind) in [
        (0o000644, ErrorKind::UnknownFileType(0o000644)),
        (0o070644, ErrorKind::UnknownFileType(0o070644)),
        (0o170644, ErrorKind::UnknownFileType(0o170644)),
        (
            0x1_0000 | 0o100644,
            ErrorKind::ModeOutOfRange(0x1_0000 | 0o100644),
        ),
    ] {
        let bytes = raw::archive(&[raw::entry(mode, "x", b"")]);
        assert_eq!(parse_err(&bytes), Error::at(mode_at, kind), "mode {mode:o}");
    }
    for (mode, ft) in [
        (0o100600, FileType::Regular),
        (0o040700, FileType::Directory),
        (0o020600, FileType::CharDevice),
        (0o060600, FileType::BlockDevice),
        (0o010600, FileType::Fifo),
        (0o140600, FileType::Socket),
    ] {
        let bytes = raw::archive(&[raw::entry(mode, "x", b"")]);
        let a = Archive::parse(&bytes).unwrap();
        let m = a.metadata("x").unwrap();
        assert_eq!(
            (m.file_type, m.permissions, m.mode()),
            (ft, mode & 0o7777, mode)
        );
    }
}

#[test]
fn directories_and_devices_carry_no_data() {
    let size_at = field_offset(6);
    for mode in [0o040755, 0o020600, 0o060600, 0o010600, 0o140600] {
        let bytes = raw::archive(&[raw::entry(mode, "x", b"oops")]);
        assert_eq!(
            parse_err(&bytes),
            Error::at(size_at, ErrorKind::UnexpectedData),
            "mode {mode:o}"
        );
    }
}

#[test]
fn symlink_targets_are_checked() {
    let ok = raw::archive(&[raw::symlink("l", "target")]);
    assert_eq!(Archive::parse(&ok).unwrap().read_link("l"), Ok("target"));
    let empty = raw::archive(&[raw::entry(0o120777, "l", b"")]);
    assert_eq!(
        parse_err(&empty),
        Error::at(field_offset(6), ErrorKind::EmptySymlink)
    );
    let data_at = HEADER_LEN + 2;
    for target in [&b"a\0b"[..], b"\xff\xfe"] {
        let bytes = raw::archive(&[raw::entry(0o120777, "l", target)]);
        assert_eq!(
            parse_err(&bytes),
            Error::at(data_at, ErrorKind::BadSymlinkTarget)
        );
    }
}

#[test]
fn crc_archives_have_their_checksum_verified() {
    let data = super::pattern(1000);
    let sum = data.iter().map(|&b| u32::from(b)).sum::<u32>();
    let mut f = Fields::for_entry(0o100644, b"f", &data);
    f.check = sum;
    let good = [raw::entry_with(b"070702", f, b"f\0", &data), raw::trailer()].concat();
    assert_eq!(Archive::parse(&good).unwrap().open("f").unwrap(), &data[..]);
    f.check = sum + 1;
    let bad = [raw::entry_with(b"070702", f, b"f\0", &data), raw::trailer()].concat();
    assert_eq!(
        parse_err(&bad),
        Error::at(
            field_offset(12),
            ErrorKind::BadChecksum {
                expected: sum + 1,
                actual: sum
            }
        )
    );
    // In a 070701 archive c_check is not a checksum.
    let plain = [raw::entry_with(b"070701", f, b"f\0", &data), raw::trailer()].concat();
    assert!(Archive::parse(&plain).is_ok());
}

#[test]
fn trailer_carries_no_data_and_ends_the_archive() {
    let mut f = Fields::for_entry(0, b"TRAILER!!!", b"x");
    f.ino = 0;
    let with_data = raw::entry_with(b"070701", f, b"TRAILER!!!\0", b"x");
    assert_eq!(
        parse_err(&with_data),
        Error::at(field_offset(6), ErrorKind::TrailerWithData)
    );
    // Anything but zeros after the trailer is rejected, at the first such byte.
    let mut bytes = raw::archive(&[raw::file("a", b"1")]);
    bytes.resize(1024, 0);
    assert!(Archive::parse(&bytes).is_ok());
    bytes[700] = 1;
    assert_eq!(parse_err(&bytes), Error::at(700, ErrorKind::TrailingData));
    // A second archive appended is trailing data too.
    let mut two = raw::archive(&[raw::file("a", b"1")]);
    let len = two.len();
    two.extend(raw::archive(&[raw::file("b", b"2")]));
    assert_eq!(parse_err(&two), Error::at(len, ErrorKind::TrailingData));
}

#[test]
fn tree_rules_reject_bad_names() {
    let second = raw::dir("etc").len();
    let cases: Vec<(Vec<u8>, Error)> = std::vec![
        (
            raw::archive(&[raw::dir("etc"), raw::file("etc/../x", b"")]),
            Error::at(second, ErrorKind::DotDotInName),
        ),
        (
            raw::archive(&[raw::dir("etc"), raw::file(".", b"")]),
            Error::at(second, ErrorKind::RootNotDirectory),
        ),
        (
            raw::archive(&[raw::dir("etc"), raw::file("./etc", b"")]),
            Error::at(second, ErrorKind::Duplicate),
        ),
        (
            raw::archive(&[raw::dir("etc"), raw::dir("/etc/")]),
            Error::at(second, ErrorKind::Duplicate),
        ),
        (
            raw::archive(&[raw::dir("."), raw::dir("/")]),
            Error::at(raw::dir(".").len(), ErrorKind::Duplicate),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(parse_err(&bytes), want);
    }
    let file = raw::file("f", b"1");
    let bytes = raw::archive(&[file.clone(), raw::file("f/x", b"")]);
    assert_eq!(
        parse_err(&bytes),
        Error::at(file.len(), ErrorKind::ParentNotDirectory)
    );
    let bytes = raw::archive(&[raw::file("x", b"1"), raw::file("/x", b"2")]);
    assert_eq!(
        parse_err(&bytes),
        Error::at(file.len(), ErrorKind::Duplicate)
    );
}

#[test]
fn errors_display_offset_and_reason() {
    let e = Error::at(0x74, ErrorKind::BadHex { field: "c_mode" });
    assert_eq!(
        e.to_string(),
        "initrd offset 0x74: c_mode is not 8 hex digits"
    );
    assert!(
        Error::at(0, ErrorKind::MissingTrailer)
            .to_string()
            .contains("TRAILER!!!")
    );
}
