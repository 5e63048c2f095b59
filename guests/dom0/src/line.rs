//! The shell's line editor for a serial console: bytes in, echo and finished
//! lines out.
//!
//! It owns the line being typed and the rules of a cooked terminal:
//! printable bytes (and UTF-8 sequences) are appended and echoed; backspace and
//! DEL erase one character (`\b \b`); Ctrl-U erases the whole line; Ctrl-C
//! cancels it (`^C`); CR, LF or CR LF end it (echoed as one `\n`). Escape
//! sequences (arrow and function keys) and other control bytes are swallowed,
//! never inserted. A line holds at most [`MAX_LINE`] bytes; a byte that does
//! not fit rings the bell.
//!
//! Input may arrive in bursts (a pasted script): the editor is a pure state
//! machine over single bytes, so any split of the same bytes gives the same
//! lines and echo.

use alloc::string::String;
use alloc::vec::Vec;

/// Longest line, in bytes.
pub const MAX_LINE: usize = 1024;

const BS: u8 = 0x08;
const DEL: u8 = 0x7f;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const ERASE: &[u8] = b"\x08 \x08";

/// What a byte completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Nothing yet.
    None,
    /// Enter: the line typed (invalid UTF-8 replaced by U+FFFD).
    Line(String),
    /// Ctrl-C: the line was thrown away.
    Cancelled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [` ... up to a final byte 0x40..=0x7e.
    Csi,
    /// After `ESC O`: one more byte.
    Ss3,
}

/// The line being edited.
#[derive(Debug)]
pub struct LineEditor {
    buf: Vec<u8>,
    escape: Escape,
    /// The previous byte was CR (an LF right after it ends nothing).
    after_cr: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// The bytes typed so far on this line.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Feeds one byte; appends what to echo to `echo`.
    pub fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Event {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.escape {
            Escape::None => {}
            Escape::Start => {
                self.escape = match b {
                    b'[' => Escape::Csi,
                    b'O' => Escape::Ss3,
                    _ => Escape::None,
                };
                return Event::None;
            }
            Escape::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    self.escape = Escape::None;
                }
                return Event::None;
            }
            Escape::Ss3 => {
                self.escape = Escape::None;
                return Event::None;
            }
        }
        match b {
            b'\n' if after_cr => Event::None,
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                echo.push(b'\n');
                let line = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                Event::Line(line)
            }
            BS | DEL => {
                if self.erase_char() {
                    echo.extend_from_slice(ERASE);
                }
                Event::None
            }
            CTRL_U => {
                while self.erase_char() {
                    echo.extend_from_slice(ERASE);
                }
                Event::None
            }
            CTRL_C => {
                self.buf.clear();
                echo.extend_from_slice(b"^C\n");
                Event::Cancelled
            }
            ESC => {
                self.escape = Escape::Start;
                Event::None
            }
            b'\t' => self.insert(b' ', echo),
            0..=0x1f => Event::None,
            _ => self.insert(b, echo),
        }
    }

    fn insert(&mut self, b: u8, echo: &mut Vec<u8>) -> Event {
        if self.buf.len() < MAX_LINE {
            self.buf.push(b);
            echo.push(b);
        } else {
            echo.push(BEL);
        }
        Event::None
    }

    /// Removes the last character (all bytes of a UTF-8 sequence); false if
    /// the line was empty.
    fn erase_char(&mut self) -> bool {
        let Some(last) = self.buf.pop() else {
            return false;
        };
        if last >= 0x80 {
            // Continuation bytes back to (and including) the lead byte.
            let mut b = last;
            while b & 0xC0 == 0x80 {
                match self.buf.last() {
                    Some(&prev) if prev >= 0x80 => {
                        b = prev;
                        self.buf.pop();
                    }
                    _ => break,
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn run(input: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut ed = LineEditor::new();
        let mut echo = Vec::new();
        let events = input
            .iter()
            .map(|&b| ed.feed(b, &mut echo))
            .filter(|e| *e != Event::None)
            .collect();
        (events, echo)
    }

    fn line(s: &str) -> Event {
        Event::Line(s.into())
    }

    #[test]
    fn typed_text_is_echoed_and_ends_at_newline() {
        let (ev, echo) = run(b"ls /etc\n");
        assert_eq!(ev, vec![line("ls /etc")]);
        assert_eq!(echo, b"ls /etc\n");
    }

    #[test]
    fn cr_lf_and_crlf_each_end_one_line() {
        assert_eq!(
            run(b"a\rb\nc\r\nd\n").0,
            vec![line("a"), line("b"), line("c"), line("d")]
        );
        // An empty line is still a line (the shell prints a new prompt).
        assert_eq!(run(b"\n\n").0, vec![line(""), line("")]);
        // LF after CR is swallowed only right after it.
        assert_eq!(run(b"\r\n\n").0, vec![line(""), line("")]);
    }

    #[test]
    fn backspace_and_del_erase_one_character() {
        let (ev, echo) = run(b"lx\x08s\n");
        assert_eq!(ev, vec![line("ls")]);
        assert_eq!(echo, b"lx\x08 \x08s\n");
        assert_eq!(run(b"ab\x7f\x7fc\n").0, vec![line("c")]);
    }

    #[test]
    fn backspace_on_empty_line_echoes_nothing() {
        let (ev, echo) = run(b"\x08\x7fa\n");
        assert_eq!(ev, vec![line("a")]);
        assert_eq!(echo, b"a\n");
    }

    #[test]
    fn backspace_removes_a_whole_utf8_character() {
        let (ev, echo) = run("añ\x08o\n".as_bytes());
        assert_eq!(ev, vec![line("ao")]);
        // One erase for the two-byte character.
        assert_eq!(echo, "añ\x08 \x08o\n".as_bytes());
    }

    #[test]
    fn ctrl_u_kills_the_line() {
        let (ev, echo) = run(b"abc\x15pwd\n");
        assert_eq!(ev, vec![line("pwd")]);
        assert_eq!(&echo[..3], b"abc");
        assert_eq!(&echo[3..12], b"\x08 \x08\x08 \x08\x08 \x08");
    }

    #[test]
    fn ctrl_c_cancels_the_line() {
        let (ev, echo) = run(b"rm -rf\x03ls\n");
        assert_eq!(ev, vec![Event::Cancelled, line("ls")]);
        assert_eq!(echo, b"rm -rf^C\nls\n");
    }

    #[test]
    fn escape_sequences_and_controls_are_swallowed() {
        // Up arrow (CSI A), F1 (SS3 P), a CSI with parameters, Ctrl-A, NUL.
        let (ev, echo) = run(b"\x1b[Ap\x1bOPw\x1b[1;5Cd\x01\x00\n");
        assert_eq!(ev, vec![line("pwd")]);
        assert_eq!(echo, b"pwd\n");
    }

    #[test]
    fn tab_becomes_a_space() {
        assert_eq!(run(b"ls\t/\n").0, vec![line("ls /")]);
    }

    #[test]
    fn overlong_line_rings_the_bell() {
        let mut input = vec![b'x'; MAX_LINE + 2];
        input.push(b'\n');
        let (ev, echo) = run(&input);
        assert_eq!(ev, vec![Event::Line("x".repeat(MAX_LINE))]);
        assert_eq!(echo.iter().filter(|&&b| b == BEL).count(), 2);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(run(b"a\xffb\n").0, vec![line("a\u{fffd}b")]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Printable text with backspaces: the line is what a model that pops
        /// on backspace says, and the echo, drawn on a terminal, shows exactly
        /// that line (erased cells are blanks after the cursor).
        #[test]
        fn echo_draws_the_edited_line(keys in proptest::collection::vec(
            prop_oneof![3 => 0x20u8..0x7f, 1 => Just(BS), 1 => Just(DEL)], 0..200)) {
            let mut input = keys.clone();
            input.push(b'\n');
            let (ev, echo) = run(&input);
            let mut model: Vec<u8> = Vec::new();
            for &k in &keys {
                if k == BS || k == DEL { model.pop(); } else { model.push(k); }
            }
            prop_assert_eq!(ev, vec![Event::Line(String::from_utf8(model.clone()).unwrap())]);
            let (mut screen, mut cursor) = (Vec::new(), 0usize);
            for &b in &echo[..echo.len() - 1] {
                if b == BS {
                    prop_assert!(cursor > 0, "backspace echoed at column 0");
                    cursor -= 1;
                } else if cursor < screen.len() {
                    screen[cursor] = b;
                    cursor += 1;
                } else {
                    screen.push(b);
                    cursor += 1;
                }
            }
            prop_assert_eq!(&screen[..cursor], &model[..]);
            prop_assert!(screen[cursor..].iter().all(|&b| b == b' '));
            prop_assert_eq!(echo.last(), Some(&b'\n'));
        }

        /// Arbitrary bytes: lines never hold control bytes.
        #[test]
        fn lines_hold_no_control_bytes(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            for e in run(&input).0 {
                if let Event::Line(l) = e {
                    prop_assert!(!l.bytes().any(|b| b < 0x20 || b == DEL));
                }
            }
        }

        /// The pending line never exceeds MAX_LINE bytes.
        #[test]
        fn pending_is_bounded(input in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut ed = LineEditor::new();
            let mut echo = Vec::new();
            for b in input {
                ed.feed(b, &mut echo);
                prop_assert!(ed.pending().len() <= MAX_LINE);
            }
        }
    }
}
