//! Console commands: the domU echoes what is typed on its console ring and
//! collects it into lines; a line that is a command is acted on, as a user
//! at a real guest's console would expect:
//!
//! - `crash`: the kernel stops with `SCHEDOP_shutdown(SHUTDOWN_crash)`, as a
//!   kernel does on a fatal error (Linux's `echo c > /proc/sysrq-trigger`),
//!   so the toolstack's `on_crash` applies;
//! - `xs-read <path>`: reads a xenstore node (relative to the domain's home,
//!   or absolute) and prints its value or the error the store returns — how a
//!   user sees what this domain may and may not read;
//! - `xs-flood`: attacks xenstored's memory as a hostile domain would
//!   ([`crate::flood`]) and prints what the store answered;
//! - `console-flood`: floods the hypervisor console through `console_io`
//!   ([`crate::conflood`]) for a few seconds, then writes 2^31 - 1 bytes
//!   at once, as a hostile domain would;
//! - `spin <ms>`: keeps the CPU busy for that long (at most 10 s), so that
//!   the domain's CPU time (`xm list`'s Time column) visibly advances;
//! - `help`: the list of commands.
//!
//! Any other line is only echoed. Rules: CR or LF ends a line (a terminal
//! sends CR, a pipe LF; the LF of a CR LF pair ends an empty line, which is
//! no command); backspace and DEL drop the last byte; leading and trailing
//! blanks are ignored; a line longer than [`MAX_LINE`] is cut to its first
//! [`MAX_LINE`] bytes (so it is no command).
#![forbid(unsafe_code)]

/// Longest line kept.
pub const MAX_LINE: usize = 64;

/// What a finished line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `crash`: shut down with reason crash.
    Crash,
    /// `help`: print the commands.
    Help,
    /// `xs-read <path>`: print a xenstore node's value; the path is
    /// `path[..len]`.
    XsRead { path: [u8; MAX_LINE], len: usize },
    /// `spin <ms>`: busy for `ms` milliseconds.
    Spin { ms: u32 },
    /// `xs-flood`: run [`crate::flood::run`] on the domain's store connection.
    XsFlood,
    /// `console-flood`: flood the hypervisor console ([`crate::conflood`]).
    ConsoleFlood,
    /// `blk ...`: raw sectors of the first vbd.
    Blk(BlkCommand),
}

/// Sectors one `blk read`/`blk write` moves at most (16 pages).
pub const MAX_BLK_SECTORS: u32 = 128;
/// Longest `blk write` pattern.
pub const MAX_PATTERN: usize = 24;

/// `blk` subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkCommand {
    /// `blk info`: size, mode, features of the vbd.
    Info,
    /// `blk read <sector> <count>`: read and print a checksum.
    Read { sector: u64, count: u32 },
    /// `blk write <sector> <count> <pattern>`: fill with the pattern
    /// repeated, write, print the checksum of what was written.
    Write {
        sector: u64,
        count: u32,
        pattern: [u8; MAX_PATTERN],
        len: usize,
    },
    /// `blk flush`: BLKIF_OP_FLUSH_DISKCACHE.
    Flush,
    /// `blk hostile`: send the back end the bad requests of issue 12's
    /// "Bad input", then break the ring.
    Hostile,
}

impl BlkCommand {
    /// The pattern of a write.
    pub fn pattern(&self) -> &[u8] {
        match self {
            BlkCommand::Write { pattern, len, .. } => &pattern[..*len],
            _ => &[],
        }
    }
}

fn parse_blk(args: &[u8]) -> Option<BlkCommand> {
    let text = core::str::from_utf8(args).ok()?;
    let mut w = text.split_ascii_whitespace();
    let sub = w.next()?;
    let range = |w: &mut core::str::SplitAsciiWhitespace<'_>| -> Option<(u64, u32)> {
        let sector = w.next()?.parse().ok()?;
        let count: u32 = w.next()?.parse().ok()?;
        (1..=MAX_BLK_SECTORS)
            .contains(&count)
            .then_some((sector, count))
    };
    let cmd = match sub {
        "info" => BlkCommand::Info,
        "flush" => BlkCommand::Flush,
        "hostile" => BlkCommand::Hostile,
        "read" => {
            let (sector, count) = range(&mut w)?;
            BlkCommand::Read { sector, count }
        }
        "write" => {
            let (sector, count) = range(&mut w)?;
            let p = w.next()?.as_bytes();
            if p.len() > MAX_PATTERN {
                return None;
            }
            let mut pattern = [0u8; MAX_PATTERN];
            pattern[..p.len()].copy_from_slice(p);
            BlkCommand::Write {
                sector,
                count,
                pattern,
                len: p.len(),
            }
        }
        _ => return None,
    };
    w.next().is_none().then_some(cmd)
}

/// FNV-1a (32 bits) of `data`: the checksum `blk read`/`blk write` print.
pub fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Fills `buf` with `pattern` repeated (zeroes if it is empty).
pub fn fill_pattern(buf: &mut [u8], pattern: &[u8]) {
    if pattern.is_empty() {
        buf.fill(0);
        return;
    }
    for (b, p) in buf.iter_mut().zip(pattern.iter().cycle()) {
        *b = *p;
    }
}

/// The longest `spin`.
pub const MAX_SPIN_MS: u32 = 10_000;

/// The commands and what they do, for `help`.
pub const HELP: &[(&str, &str)] = &[
    (
        "crash",
        "stop this kernel as crashed (SCHEDOP_shutdown crash)",
    ),
    ("xs-read", "xs-read <path>: print a xenstore node"),
    (
        "xs-flood",
        "try to exhaust xenstored's memory (long paths, writes)",
    ),
    (
        "console-flood",
        "flood the hypervisor console for 6 s (console_io)",
    ),
    (
        "spin",
        "spin <ms>: keep the CPU busy that long (at most 10 s)",
    ),
    (
        "blk",
        "blk info | read <sector> <n> | write <sector> <n> <pattern> | flush | hostile: raw sectors of the vbd",
    ),
    ("help", "this list"),
];

/// The line being typed.
#[derive(Clone, Debug)]
pub struct LineBuffer {
    buf: [u8; MAX_LINE],
    len: usize,
    /// More was typed than fits.
    overflow: bool,
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineBuffer {
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_LINE],
            len: 0,
            overflow: false,
        }
    }

    /// The bytes of the line so far.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Takes one typed byte; at the end of a line returns the command it
    /// names, if any, and starts a new line.
    pub fn feed(&mut self, b: u8) -> Option<Command> {
        match b {
            b'\r' | b'\n' => {
                let cmd = if self.overflow {
                    None
                } else {
                    parse(self.pending())
                };
                self.len = 0;
                self.overflow = false;
                cmd
            }
            0x08 | 0x7f => {
                self.len = self.len.saturating_sub(1);
                None
            }
            _ if self.len < MAX_LINE => {
                self.buf[self.len] = b;
                self.len += 1;
                None
            }
            _ => {
                self.overflow = true;
                None
            }
        }
    }
}

/// The command a whole line names.
pub fn parse(line: &[u8]) -> Option<Command> {
    match line.trim_ascii() {
        b"crash" => Some(Command::Crash),
        b"help" => Some(Command::Help),
        b"xs-flood" => Some(Command::XsFlood),
        b"console-flood" => Some(Command::ConsoleFlood),
        l if l.starts_with(b"blk ") => parse_blk(&l[4..]).map(Command::Blk),
        l if l.starts_with(b"spin ") => {
            let ms = core::str::from_utf8(&l[5..]).ok()?.trim().parse().ok()?;
            (ms <= MAX_SPIN_MS).then_some(Command::Spin { ms })
        }
        l => {
            let arg = l.strip_prefix(b"xs-read")?;
            let path = arg.trim_ascii();
            if !arg.starts_with(b" ") || path.is_empty() {
                return None;
            }
            let mut buf = [0u8; MAX_LINE];
            buf[..path.len()].copy_from_slice(path);
            Some(Command::XsRead {
                path: buf,
                len: path.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(l: &mut LineBuffer, bytes: &[u8]) -> Vec<Command> {
        bytes.iter().filter_map(|&b| l.feed(b)).collect()
    }

    #[test]
    fn crash_on_cr_or_lf() {
        let mut l = LineBuffer::new();
        assert_eq!(feed_all(&mut l, b"crash\r"), [Command::Crash]);
        assert_eq!(feed_all(&mut l, b"crash\n"), [Command::Crash]);
        assert_eq!(feed_all(&mut l, b"  crash \r\n"), [Command::Crash]);
        assert_eq!(feed_all(&mut l, b"help\r"), [Command::Help]);
    }

    #[test]
    fn xs_read_takes_a_path() {
        let mut l = LineBuffer::new();
        let got = feed_all(&mut l, b"xs-read /local/domain/0/name\r");
        match got.as_slice() {
            [Command::XsRead { path, len }] => assert_eq!(&path[..*len], b"/local/domain/0/name"),
            other => panic!("{other:?}"),
        }
        assert!(feed_all(&mut l, b"xs-read\r").is_empty());
        assert!(feed_all(&mut l, b"xs-read   \r").is_empty());
        assert!(feed_all(&mut l, b"xs-readx name\r").is_empty());
    }

    #[test]
    fn xs_flood_takes_no_argument() {
        let mut l = LineBuffer::new();
        assert_eq!(feed_all(&mut l, b" xs-flood \r"), [Command::XsFlood]);
        assert!(feed_all(&mut l, b"xs-flood now\r").is_empty());
        assert!(feed_all(&mut l, b"xs-floo\r").is_empty());
    }

    #[test]
    fn console_flood_takes_no_argument() {
        let mut l = LineBuffer::new();
        assert_eq!(
            feed_all(&mut l, b"console-flood\r"),
            [Command::ConsoleFlood]
        );
        assert!(feed_all(&mut l, b"console-flood 5\r").is_empty());
        assert!(feed_all(&mut l, b"console\r").is_empty());
    }

    #[test]
    fn spin_takes_bounded_milliseconds() {
        assert_eq!(parse(b"spin 300"), Some(Command::Spin { ms: 300 }));
        assert_eq!(parse(b"spin 10000"), Some(Command::Spin { ms: 10_000 }));
        assert_eq!(parse(b"spin 10001"), None);
        assert_eq!(parse(b"spin -1"), None);
        assert_eq!(parse(b"spin"), None);
    }

    #[test]
    fn other_lines_are_no_command() {
        let mut l = LineBuffer::new();
        assert!(feed_all(&mut l, b"hello oxen\r").is_empty());
        assert!(feed_all(&mut l, b"crashed\r").is_empty());
        assert!(feed_all(&mut l, b"Crash\r").is_empty());
        assert!(feed_all(&mut l, b"\r\n\r").is_empty());
        // Nothing until the line ends.
        assert!(feed_all(&mut l, b"crash").is_empty());
        assert_eq!(l.pending(), b"crash");
        assert_eq!(l.feed(b'\r'), Some(Command::Crash));
        assert_eq!(l.pending(), b"");
    }

    #[test]
    fn backspace_edits_the_line() {
        let mut l = LineBuffer::new();
        assert_eq!(feed_all(&mut l, b"crasx\x7fh\r"), [Command::Crash]);
        assert_eq!(feed_all(&mut l, b"crash\x08\r"), []);
        // Backspace on an empty line is harmless.
        assert_eq!(feed_all(&mut l, b"\x08\x08crash\r"), [Command::Crash]);
    }

    #[test]
    fn an_overlong_line_is_no_command() {
        let mut l = LineBuffer::new();
        let mut long = vec![b' '; MAX_LINE];
        long.extend_from_slice(b"crash\r");
        assert!(feed_all(&mut l, &long).is_empty());
        // The next line starts afresh.
        assert_eq!(feed_all(&mut l, b"crash\r"), [Command::Crash]);
    }

    #[test]
    fn help_names_every_command() {
        for (name, _) in HELP {
            // Commands that take an argument are given one.
            let line = match *name {
                "xs-read" => "xs-read name",
                "spin" => "spin 10",
                "blk" => "blk info",
                other => other,
            };
            assert!(parse(line.as_bytes()).is_some(), "{name}");
        }
        assert_eq!(HELP.len(), 7);
    }

    #[test]
    fn blk_commands_parse_and_bad_ones_are_refused() {
        assert_eq!(parse(b"blk info"), Some(Command::Blk(BlkCommand::Info)));
        assert_eq!(parse(b"blk flush"), Some(Command::Blk(BlkCommand::Flush)));
        assert_eq!(
            parse(b"blk hostile"),
            Some(Command::Blk(BlkCommand::Hostile))
        );
        assert_eq!(
            parse(b"blk read 2048 16"),
            Some(Command::Blk(BlkCommand::Read {
                sector: 2048,
                count: 16
            }))
        );
        match parse(b"blk write 7 3 oxen") {
            Some(Command::Blk(
                c @ BlkCommand::Write {
                    sector: 7,
                    count: 3,
                    ..
                },
            )) => {
                assert_eq!(c.pattern(), b"oxen")
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"blk"[..],
            b"blk read",
            b"blk read 1",
            b"blk read 1 0",
            b"blk read 1 129",
            b"blk read -1 2",
            b"blk read 1 2 3",
            b"blk write 1 2",
            b"blk write 1 2 0123456789abcdef012345678",
            b"blk info now",
            b"blk erase",
        ] {
            assert_eq!(parse(bad), None, "{:?}", core::str::from_utf8(bad));
        }
    }

    #[test]
    fn pattern_and_checksum() {
        let mut b = [0u8; 10];
        fill_pattern(&mut b, b"abc");
        assert_eq!(&b, b"abcabcabca");
        fill_pattern(&mut b, b"");
        assert_eq!(b, [0; 10]);
        // FNV-1a test vectors.
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }
}
