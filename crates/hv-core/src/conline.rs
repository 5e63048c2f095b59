//! Console lines: how Oxen's own text and the domains' `console_io` output
//! (XEN-PV-ABI.md §14.2) share one terminal — the serial line, the VGA
//! screen and the console ring, which all get the same bytes — without a
//! line ever starting in the middle of another writer's line.
//!
//! Three kinds of writer:
//! - **Oxen** ([`Terminal::xen`]): every line starts with `(XEN) `. Its text
//!   is printed as it comes (`core::fmt` hands a line over in pieces).
//! - **The hardware domain, dom0** ([`Terminal::dom0`]): its bytes go out as
//!   they are, without prefix, buffering or filtering, because its console
//!   is interactive: a prompt without newline, then the echo of what is
//!   typed, must show at once. Xen does the same ("direct console output as
//!   it could be interactive").
//! - **Every other domain** ([`Terminal::guest`]): its text collects in its
//!   own [`GuestLine`] until a newline, then goes out as one whole line
//!   `(dN) text\n` (a debug Xen's `guest_printk`). A guest controls nothing
//!   beyond that line: it holds at most [`GUEST_LINE_MAX`] bytes (Xen's
//!   `DOMAIN_PBUF_SIZE` is 200 with its NUL), a longer line is printed in
//!   parts of that many bytes, and bytes that are not printable are dropped
//!   as Xen drops them (C0 and C1 controls and DEL; tab is kept): so no
//!   escape sequence, no carriage return, no backspace reaches the terminal
//!   from a domU, and `\r\n` ends a line as `\n` does. Bytes 0xA0-0xFF are
//!   printable, as in Xen's Latin-1 `isprint`.
//!
//! Invariant ([`Terminal`]): the terminal's current line belongs to at most
//! one writer ([`LineOwner`]): nobody (the cursor is at the start of an
//! empty line), Oxen (a `(XEN) ` line not yet ended) or dom0 (a partial
//! line, e.g. its prompt). Before another writer prints, the open line is
//! ended with a newline. So a `(dN) ` or `(XEN) ` line always starts at the
//! start of a line, and Oxen's text broken off by another writer resumes
//! on a new line with a new `(XEN) ` prefix. dom0's broken-off partial line
//! is not repeated: its continuation (say, the echo of typed text after
//! the prompt) goes on at the start of the next line, as a shell's input
//! does after a kernel message.
//!
//! A domain's unfinished line is printed when the domain is destroyed
//! ([`Terminal::flush_guest`]): a crashing guest's last words are the ones
//! worth reading.

use core::fmt::Write;

use arrayvec::ArrayVec;

use crate::ratelimit::Verdict;

/// The most bytes of one domain's console line held before they are
/// printed anyway (as a line of their own).
pub const GUEST_LINE_MAX: usize = 200;

/// Whether a guest byte is printed (Xen's `is_console_printable`: printable
/// in Latin-1, or tab; the newline is handled before).
pub fn guest_printable(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7E | 0xA0..=0xFF)
}

/// One domain's console line not yet printed: printable bytes only, at most
/// [`GUEST_LINE_MAX`].
#[derive(Clone, Debug, Default)]
pub struct GuestLine {
    text: ArrayVec<u8, GUEST_LINE_MAX>,
}

impl GuestLine {
    pub const fn new() -> Self {
        Self {
            text: ArrayVec::new_const(),
        }
    }

    /// The bytes held (the line so far).
    pub fn pending(&self) -> &[u8] {
        &self.text
    }

    /// Takes `bytes` from the guest and calls `line` with the text of each
    /// line they complete (without its newline): at a newline, or when a
    /// printable byte arrives with [`GUEST_LINE_MAX`] already held (so a
    /// line of exactly that length followed by a newline is one line).
    pub fn feed(&mut self, bytes: &[u8], mut line: impl FnMut(&[u8])) {
        for &b in bytes {
            if b == b'\n' {
                line(&self.text);
                self.text.clear();
            } else if guest_printable(b) {
                if self.text.is_full() {
                    line(&self.text);
                    self.text.clear();
                }
                self.text.push(b);
            }
        }
    }

    /// Calls `line` with the unfinished line, if there is one, and forgets it.
    pub fn flush(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.text.is_empty() {
            line(&self.text);
            self.text.clear();
        }
    }
}

/// Who the terminal's current line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineOwner {
    /// Nobody: the cursor is at the start of an empty line.
    Nobody,
    /// Oxen: a `(XEN) ` line is open.
    Xen,
    /// dom0: its partial line (a prompt, typed echo) is open.
    Dom0,
}

/// `(dN) `, the prefix of domain `domid`'s lines.
fn guest_prefix(domid: u16, buf: &mut [u8; 9]) -> &[u8] {
    let mut digits = [0u8; 5];
    let mut n = 0;
    let mut v = domid;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[..2].copy_from_slice(b"(d");
    for i in 0..n {
        buf[2 + i] = digits[n - 1 - i];
    }
    buf[2 + n..4 + n].copy_from_slice(b") ");
    &buf[..4 + n]
}

/// The prefix of Oxen's lines.
pub const XEN_PREFIX: &[u8] = b"(XEN) ";

/// The terminal's line state; every method writes what goes on the
/// terminal through `out`.
#[derive(Debug)]
pub struct Terminal {
    owner: LineOwner,
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

impl Terminal {
    pub const fn new() -> Self {
        Self {
            owner: LineOwner::Nobody,
        }
    }

    /// Who the current line belongs to.
    pub fn owner(&self) -> LineOwner {
        self.owner
    }

    /// Ends the open line unless it is `who`'s.
    fn claim(&mut self, who: LineOwner, out: &mut impl FnMut(&[u8])) {
        if self.owner != LineOwner::Nobody && self.owner != who {
            out(b"\n");
            self.owner = LineOwner::Nobody;
        }
    }

    /// Ends the open line, whoever's it is (the fatal path starts its
    /// report on a line of its own).
    pub fn end_line(&mut self, out: &mut impl FnMut(&[u8])) {
        self.claim(LineOwner::Nobody, out);
    }

    /// Oxen's text: `(XEN) ` at the start of each of its lines.
    pub fn xen(&mut self, text: &[u8], out: &mut impl FnMut(&[u8])) {
        if text.is_empty() {
            return;
        }
        self.claim(LineOwner::Xen, out);
        for piece in text.split_inclusive(|&b| b == b'\n') {
            if self.owner == LineOwner::Nobody {
                out(XEN_PREFIX);
            }
            out(piece);
            self.owner = if piece.ends_with(b"\n") {
                LineOwner::Nobody
            } else {
                LineOwner::Xen
            };
        }
    }

    /// dom0's `console_io` output, as it is.
    pub fn dom0(&mut self, bytes: &[u8], out: &mut impl FnMut(&[u8])) {
        if bytes.is_empty() {
            return;
        }
        self.claim(LineOwner::Dom0, out);
        out(bytes);
        self.owner = if bytes.ends_with(b"\n") {
            LineOwner::Nobody
        } else {
            LineOwner::Dom0
        };
    }

    /// Another domain's `console_io` output: collected in `line` (that
    /// domain's), printed a whole line at a time.
    pub fn guest(
        &mut self,
        domid: u16,
        line: &mut GuestLine,
        bytes: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) {
        line.feed(bytes, |text| self.guest_line(domid, text, out));
    }

    /// Another domain's `console_io` output under a rate limit: as
    /// [`Terminal::guest`], but each completed line asks `gate` first
    /// (`crate::ratelimit`): a refused line is dropped, and a line let through
    /// after refusals is preceded by Oxen's line `dN: K messages suppressed`.
    pub fn guest_gated(
        &mut self,
        domid: u16,
        line: &mut GuestLine,
        bytes: &[u8],
        out: &mut impl FnMut(&[u8]),
        mut gate: impl FnMut() -> Verdict,
    ) {
        line.feed(bytes, |text| match gate() {
            Verdict::Print { suppressed } => {
                self.suppressed_note(domid, suppressed, out);
                self.guest_line(domid, text, out);
            }
            Verdict::Suppress => {}
        });
    }

    /// Oxen's line `dN: K messages suppressed` (nothing when `suppressed`
    /// is 0).
    pub fn suppressed_note(&mut self, domid: u16, suppressed: u64, out: &mut impl FnMut(&[u8])) {
        if suppressed == 0 {
            return;
        }
        let mut note = arrayvec::ArrayString::<64>::new();
        let _ = writeln!(note, "d{domid}: {suppressed} messages suppressed");
        self.xen(note.as_bytes(), out);
    }

    /// Prints what is left in `line` (a domain going away).
    pub fn flush_guest(&mut self, domid: u16, line: &mut GuestLine, out: &mut impl FnMut(&[u8])) {
        line.flush(|text| self.guest_line(domid, text, out));
    }

    /// One whole line of domain `domid`, on a line of its own.
    fn guest_line(&mut self, domid: u16, text: &[u8], out: &mut impl FnMut(&[u8])) {
        self.end_line(out);
        let mut buf = [0; 9];
        out(guest_prefix(domid, &mut buf));
        out(text);
        out(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One writer's turn.
    #[derive(Clone, Debug)]
    enum W {
        Xen(Vec<u8>),
        Dom0(Vec<u8>),
        /// Domain 1 or 2 (index into the line buffers).
        Guest(u16, Vec<u8>),
        /// Domain 1 or 2 is destroyed.
        Destroy(u16),
    }

    /// Runs the turns on a fresh terminal; returns the terminal's bytes.
    fn run(turns: &[W]) -> Vec<u8> {
        let mut term = Terminal::new();
        let mut lines = [GuestLine::new(), GuestLine::new(), GuestLine::new()];
        let mut got = Vec::new();
        let mut out = |b: &[u8]| got.extend_from_slice(b);
        for t in turns {
            match t {
                W::Xen(s) => term.xen(s, &mut out),
                W::Dom0(s) => term.dom0(s, &mut out),
                W::Guest(d, s) => term.guest(*d, &mut lines[usize::from(*d)], s, &mut out),
                W::Destroy(d) => term.flush_guest(*d, &mut lines[usize::from(*d)], &mut out),
            }
        }
        got
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    use W::{Destroy, Dom0, Guest, Xen};

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn a_gated_flood_prints_the_burst_then_says_what_it_dropped() {
        use crate::ratelimit::{BURST, INTERVAL_NS, RateLimit};
        let mut term = Terminal::new();
        let mut line = GuestLine::new();
        let mut limit = RateLimit::new(0);
        let mut got = Vec::new();
        let mut out = |b: &[u8]| got.extend_from_slice(b);
        let flood = b"flood\n".repeat(1000);
        term.guest_gated(3, &mut line, &flood, &mut out, || limit.check(0));
        term.guest_gated(3, &mut line, b"later\n", &mut out, || {
            limit.check(INTERVAL_NS)
        });
        let text = text(&got);
        assert_eq!(text.matches("(d3) flood\n").count(), BURST as usize);
        assert!(text.ends_with(&format!(
            "(XEN) d3: {} messages suppressed\n(d3) later\n",
            1000 - BURST
        )));
        // A gate that refuses everything prints nothing, and the line
        // buffer still empties.
        let mut none = Vec::new();
        term.guest_gated(
            3,
            &mut line,
            b"x\ny\n",
            &mut |b: &[u8]| none.extend_from_slice(b),
            || Verdict::Suppress,
        );
        assert!(none.is_empty());
        assert!(line.pending().is_empty());
    }

    #[test]
    fn prefixes() {
        let mut buf = [0; 9];
        assert_eq!(guest_prefix(0, &mut buf), b"(d0) ");
        assert_eq!(guest_prefix(7, &mut buf), b"(d7) ");
        assert_eq!(guest_prefix(10, &mut buf), b"(d10) ");
        assert_eq!(guest_prefix(65535, &mut buf), b"(d65535) ");
    }

    #[test]
    fn a_domu_line_after_dom0_prompt_starts_a_new_line() {
        // The bug this module fixes: "oxen-dom0:/# domU brun: up".
        let got = run(&[
            Dom0(v("oxen-dom0:/# ")),
            Guest(1, v("domU brun: up\n")),
            Dom0(v("xm list\n")),
        ]);
        assert_eq!(text(&got), "oxen-dom0:/# \n(d1) domU brun: up\nxm list\n");
    }

    #[test]
    fn oxen_lines_keep_their_prefix_after_dom0_and_domu_output() {
        let got = run(&[
            Dom0(v("oxen-dom0:/# ")),
            Xen(v("Domain 1 destroyed\n")),
            Guest(2, v("partial")),
            Xen(v("second\nthird\n")),
            Dom0(v("prompt# ")),
            Dom0(v("typed")),
            Xen(v("fourth\n")),
            Dom0(v(" more\n")),
        ]);
        assert_eq!(
            text(&got),
            "oxen-dom0:/# \n(XEN) Domain 1 destroyed\n(XEN) second\n(XEN) third\n\
             prompt# typed\n(XEN) fourth\n more\n"
        );
    }

    #[test]
    fn oxen_text_in_pieces_is_one_line_and_resumes_prefixed_when_broken() {
        let got = run(&[
            Xen(v("one ")),
            Xen(v("line\n(")),
            Guest(1, v("hello\n")),
            Xen(v("rest)\n")),
            Xen(v("a")),
            Dom0(v("dom0 text\n")),
            Xen(v("b\n")),
        ]);
        assert_eq!(
            text(&got),
            "(XEN) one line\n(XEN) (\n(d1) hello\n(XEN) rest)\n(XEN) a\ndom0 text\n(XEN) b\n"
        );
    }

    #[test]
    fn two_domus_interleaved_come_out_as_whole_lines() {
        let got = run(&[
            Guest(1, v("Boot")),
            Guest(2, v("Hel")),
            Dom0(v("oxen-dom0:/# ")),
            Guest(1, v("strapping...\nsecond ")),
            Xen(v("tick\n")),
            Guest(2, v("lo\n")),
            Guest(1, v("line\n")),
        ]);
        assert_eq!(
            text(&got),
            "oxen-dom0:/# \n(d1) Bootstrapping...\n(XEN) tick\n(d2) Hello\n(d1) second line\n"
        );
    }

    #[test]
    fn empty_lines_and_crlf() {
        let got = run(&[
            Guest(1, v("\n")),
            Guest(1, v("a\r\n\r\nb\r")),
            Guest(1, v("c\n")),
            Xen(v("\n")),
            Dom0(v("\r\n")),
        ]);
        // CR is not printable: dropped, so "\r\n" ends a line as "\n" does
        // and a lone CR cannot rewrite the line.
        assert_eq!(text(&got), "(d1) \n(d1) a\n(d1) \n(d1) bc\n(XEN) \n\r\n");
    }

    #[test]
    fn non_printable_guest_bytes_are_dropped_but_dom0_bytes_are_not() {
        let got = run(&[
            Guest(1, b"\x1b[2Jred\x07\x08\x7f\t\x9bx\xe9\0\n".to_vec()),
            Dom0(b"\x1b[K\x08ok\n".to_vec()),
        ]);
        // ESC goes, the rest of the sequence is plain text (as in Xen).
        assert_eq!(got, b"(d1) [2Jred\tx\xe9\n\x1b[K\x08ok\n");
    }

    #[test]
    fn long_lines_are_split_at_the_buffer_size() {
        let long: Vec<u8> = (0..450).map(|i| b'a' + (i % 26) as u8).collect();
        let mut turn = long.clone();
        turn.push(b'\n');
        let got = run(&[Guest(1, turn)]);
        let lines: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 4, "three lines then nothing: {}", text(&got));
        assert_eq!(lines[0], [b"(d1) ", &long[..200]].concat());
        assert_eq!(lines[1], [b"(d1) ", &long[200..400]].concat());
        assert_eq!(lines[2], [b"(d1) ", &long[400..]].concat());
        assert!(lines[3].is_empty());
    }

    #[test]
    fn a_line_of_exactly_the_buffer_size_is_one_line() {
        let full = vec![b'z'; GUEST_LINE_MAX];
        let mut line = GuestLine::new();
        let mut lines = Vec::new();
        line.feed(&full, |t| lines.push(t.to_vec()));
        assert!(lines.is_empty(), "held until more comes");
        assert_eq!(line.pending().len(), GUEST_LINE_MAX);
        line.feed(b"\n", |t| lines.push(t.to_vec()));
        assert_eq!(lines, core::slice::from_ref(&full));
        assert!(line.pending().is_empty());
        // One more byte than fits: the full part goes out at once.
        line.feed(&full, |t| lines.push(t.to_vec()));
        line.feed(b"!", |t| lines.push(t.to_vec()));
        assert_eq!(lines, [full.clone(), full]);
        assert_eq!(line.pending(), b"!");
    }

    #[test]
    fn a_destroyed_domains_partial_line_is_printed_once() {
        let got = run(&[
            Guest(1, v("panic: ")),
            Dom0(v("oxen-dom0:/# ")),
            Guest(1, b"last words\x1b".to_vec()),
            Xen(v("Domain 1 crashed\n")),
            Destroy(1),
            Destroy(1),
            Destroy(2),
        ]);
        assert_eq!(
            text(&got),
            "oxen-dom0:/# \n(XEN) Domain 1 crashed\n(d1) panic: last words\n"
        );
    }

    #[test]
    fn end_line_breaks_any_open_line() {
        let mut term = Terminal::new();
        let mut got = Vec::new();
        let mut out = |b: &[u8]| got.extend_from_slice(b);
        term.end_line(&mut out);
        term.dom0(b"prompt# ", &mut out);
        assert_eq!(term.owner(), LineOwner::Dom0);
        term.end_line(&mut out);
        assert_eq!(term.owner(), LineOwner::Nobody);
        term.xen(b"partial", &mut out);
        assert_eq!(term.owner(), LineOwner::Xen);
        term.end_line(&mut out);
        term.xen(b"FATAL\n", &mut out);
        assert_eq!(text(&got), "prompt# \n(XEN) partial\n(XEN) FATAL\n");
    }

    #[test]
    fn the_full_scenario_line_by_line() {
        // dom0's shell, two domUs booting, Oxen's reports, all interleaved.
        let got = run(&[
            Xen(v("Starting dom0\n")),
            Dom0(v("oxen-dom0:/# ")),
            Dom0(v("x")),
            Dom0(v("m create brun.cfg\n")),
            Guest(1, v("Oxen domU 0.1\r\n")),
            Dom0(v("Started domain brun (id=1)\noxen-dom0:/# ")),
            Guest(1, v("domU brun")),
            Guest(2, v("domU s2: up\n")),
            Guest(1, v(": up\n")),
            Xen(v("Domain 1 (brun) shutdown: reason poweroff (0)\n")),
            Dom0(v("xm list\n")),
            Guest(2, v("")),
            Xen(v("")),
            Dom0(v("")),
            Dom0(v("oxen-dom0:/# ")),
        ]);
        let lines: Vec<String> = text(&got).split('\n').map(String::from).collect();
        assert_eq!(
            lines,
            [
                "(XEN) Starting dom0",
                "oxen-dom0:/# xm create brun.cfg",
                "(d1) Oxen domU 0.1",
                "Started domain brun (id=1)",
                "oxen-dom0:/# ",
                "(d2) domU s2: up",
                "(d1) domU brun: up",
                "(XEN) Domain 1 (brun) shutdown: reason poweroff (0)",
                "xm list",
                "oxen-dom0:/# ",
            ]
        );
    }

    /// What one domU's lines must be: its printable bytes, cut at each
    /// newline and every `GUEST_LINE_MAX` bytes (the last, unfinished part
    /// only when it is flushed).
    fn expected_guest_lines(input: &[u8], flushed: bool) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut cur = Vec::new();
        for &b in input {
            if b == b'\n' {
                lines.push(core::mem::take(&mut cur));
            } else if guest_printable(b) {
                if cur.len() == GUEST_LINE_MAX {
                    lines.push(core::mem::take(&mut cur));
                }
                cur.push(b);
            }
        }
        if flushed && !cur.is_empty() {
            lines.push(cur);
        }
        lines
    }

    fn writer() -> impl Strategy<Value = W> {
        // Each writer has its own alphabet, so that every byte on the
        // terminal can be traced to its writer.
        let xen = proptest::collection::vec(prop::sample::select(&b"xyz\n"[..]), 0..20);
        let dom0 = proptest::collection::vec(prop::sample::select(&b"ab #\n"[..]), 0..20);
        let d1 = proptest::collection::vec(prop::sample::select(&b"123\n\r\t\x1b\x85"[..]), 0..300);
        let d2 = proptest::collection::vec(prop::sample::select(&b"456\n\r\x08"[..]), 0..300);
        prop_oneof![
            xen.prop_map(Xen),
            dom0.prop_map(Dom0),
            d1.prop_map(|s| Guest(1, s)),
            d2.prop_map(|s| Guest(2, s)),
            (1u16..3).prop_map(Destroy),
        ]
    }

    proptest! {
        #[test]
        fn every_line_is_one_writers_and_nothing_is_lost(turns in proptest::collection::vec(writer(), 0..40)) {
            let mut all = turns.clone();
            all.push(Destroy(1));
            all.push(Destroy(2));
            let got = run(&all);
            let (mut xen, mut dom0) = (Vec::new(), Vec::new());
            let mut guests: [Vec<Vec<u8>>; 3] = Default::default();
            for line in got.split(|&b| b == b'\n') {
                if let Some(rest) = line.strip_prefix(XEN_PREFIX) {
                    prop_assert!(rest.iter().all(|b| b"xyz".contains(b)), "{:?}", text(line));
                    xen.extend_from_slice(rest);
                } else if let Some(rest) = line.strip_prefix(b"(d1) ") {
                    prop_assert!(rest.iter().all(|b| b"123\t".contains(b)), "{:?}", text(line));
                    guests[1].push(rest.to_vec());
                } else if let Some(rest) = line.strip_prefix(b"(d2) ") {
                    prop_assert!(rest.iter().all(|b| b"456".contains(b)), "{:?}", text(line));
                    guests[2].push(rest.to_vec());
                } else {
                    prop_assert!(line.iter().all(|b| b"ab #".contains(b)), "{:?}", text(line));
                    dom0.extend_from_slice(line);
                }
            }
            // Every writer's text is there, in order (newlines aside: the
            // terminal adds some between writers).
            let strip = |s: &[u8]| s.iter().copied().filter(|&b| b != b'\n').collect::<Vec<u8>>();
            let input = |f: fn(&W) -> Option<&Vec<u8>>| strip(&all.iter().filter_map(f).flatten().copied().collect::<Vec<u8>>());
            prop_assert_eq!(xen, input(|w| if let Xen(s) = w { Some(s) } else { None }));
            prop_assert_eq!(dom0, input(|w| if let Dom0(s) = w { Some(s) } else { None }));
            for d in 1u16..3 {
                let mut fed = Vec::new();
                let mut lines = Vec::new();
                for w in &all {
                    match w {
                        Guest(g, s) if *g == d => fed.extend_from_slice(s),
                        Destroy(g) if *g == d => {
                            lines.extend(expected_guest_lines(&fed, true));
                            fed.clear();
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(&guests[usize::from(d)], &lines);
            }
        }
    }
}
