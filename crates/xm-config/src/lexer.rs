//! Tokenizer for the Python subset of xm config files.
//!
//! Owns the character-level rules: `#` comments outside strings, blank space,
//! backslash-newline line continuation, string literals (single, double and triple
//! quotes, Python escapes), integer literals (decimal, `0x` hex), identifiers and
//! punctuation. Every token carries the 1-based line and column (in characters) of
//! its first character; an error carries the position it is about (the opening
//! quote for an unterminated string). Newlines are tokens: the parser decides
//! where they matter (they do not inside brackets).

use crate::error::ErrorKind;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    LBracket,
    RBracket,
    Comma,
    Assign,
    Minus,
    Semicolon,
    Newline,
    Eof,
}

impl Tok {
    /// Description for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("name '{name}'"),
            Tok::Str(s) => {
                let mut out = String::from("string ");
                crate::value::repr_str(s, &mut out);
                out
            }
            Tok::Int(i) => format!("number {i}"),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::Assign => "'='".into(),
            Tok::Minus => "'-'".into(),
            Tok::Semicolon => "';'".into(),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
}

/// A lexical error and where it points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub kind: ErrorKind,
    pub line: u32,
    pub column: u32,
}

/// A position in a text's characters that tracks the 1-based line and column
/// (in characters) of the next one; shared by this lexer and the sxp one.
pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    column: u32,
}

impl Cursor {
    pub(crate) fn new(text: &str) -> Self {
        Cursor {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            column: 1,
        }
    }

    /// The (line, column) of the next character.
    pub(crate) fn at(&self) -> (u32, u32) {
        (self.line, self.column)
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }
}

pub(crate) struct Lexer {
    cur: Cursor,
}

impl Lexer {
    pub(crate) fn new(text: &str) -> Self {
        Lexer {
            cur: Cursor::new(text),
        }
    }

    fn err(&self, kind: ErrorKind, line: u32, column: u32) -> LexError {
        LexError { kind, line, column }
    }

    /// The next token (`Eof` forever once the text is consumed).
    pub(crate) fn next_token(&mut self) -> Result<Token, LexError> {
        loop {
            let (line, column) = self.cur.at();
            let tok = |tok| Ok(Token { tok, line, column });
            let Some(c) = self.cur.peek() else {
                return tok(Tok::Eof);
            };
            match c {
                ' ' | '\t' | '\r' | '\x0c' => {
                    self.cur.bump();
                }
                '#' => {
                    while self.cur.peek().is_some_and(|c| c != '\n') {
                        self.cur.bump();
                    }
                }
                '\\' => {
                    // Explicit line joining: a backslash ending the line.
                    let next = self.cur.peek_at(1);
                    let crlf = next == Some('\r') && self.cur.peek_at(2) == Some('\n');
                    if next == Some('\n') || crlf {
                        self.cur.bump();
                        if crlf {
                            self.cur.bump();
                        }
                        self.cur.bump();
                    } else {
                        return Err(self.err(ErrorKind::UnexpectedChar('\\'), line, column));
                    }
                }
                '\n' => {
                    self.cur.bump();
                    return tok(Tok::Newline);
                }
                '[' | ']' | ',' | '=' | '-' | ';' => {
                    self.cur.bump();
                    return tok(match c {
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        ',' => Tok::Comma,
                        '=' => Tok::Assign,
                        '-' => Tok::Minus,
                        _ => Tok::Semicolon,
                    });
                }
                '\'' | '"' => {
                    return self.string(c).map(|s| Token {
                        tok: Tok::Str(s),
                        line,
                        column,
                    });
                }
                '0'..='9' => {
                    return self.number().map(|i| Token {
                        tok: Tok::Int(i),
                        line,
                        column,
                    });
                }
                c if c.is_ascii_alphabetic() || c == '_' => {
                    let mut name = String::new();
                    while let Some(c) = self
                        .cur
                        .peek()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    {
                        name.push(c);
                        self.cur.bump();
                    }
                    return tok(Tok::Ident(name));
                }
                c => return Err(self.err(ErrorKind::UnexpectedChar(c), line, column)),
            }
        }
    }

    /// A string literal starting at the current quote character.
    fn string(&mut self, quote: char) -> Result<String, LexError> {
        let (line, column) = self.cur.at();
        let unterminated = LexError {
            kind: ErrorKind::UnterminatedString,
            line,
            column,
        };
        self.cur.bump();
        let triple = self.cur.peek() == Some(quote) && self.cur.peek_at(1) == Some(quote);
        if triple {
            self.cur.bump();
            self.cur.bump();
        } else if self.cur.peek() == Some(quote) {
            self.cur.bump();
            return Ok(String::new());
        }
        let mut out = String::new();
        loop {
            let Some(c) = self.cur.peek() else {
                return Err(unterminated);
            };
            match c {
                '\n' if !triple => return Err(unterminated),
                '\\' => {
                    let (eline, ecol) = self.cur.at();
                    self.cur.bump();
                    let Some(e) = self.cur.bump() else {
                        return Err(unterminated);
                    };
                    match e {
                        '\n' => {}
                        '\r' if self.cur.peek() == Some('\n') => {
                            self.cur.bump();
                        }
                        '\\' | '\'' | '"' => out.push(e),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\x07'),
                        'b' => out.push('\x08'),
                        'f' => out.push('\x0c'),
                        'v' => out.push('\x0b'),
                        '0'..='7' => {
                            let mut v = e.to_digit(8).unwrap_or(0);
                            for _ in 0..2 {
                                match self.cur.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) => {
                                        v = v * 8 + d;
                                        self.cur.bump();
                                    }
                                    None => break,
                                }
                            }
                            // At most 0o777 = 511: always a valid scalar value.
                            out.extend(char::from_u32(v));
                        }
                        'x' => {
                            let hi = self.cur.peek().and_then(|c| c.to_digit(16));
                            let lo = self.cur.peek_at(1).and_then(|c| c.to_digit(16));
                            match (hi, lo) {
                                (Some(hi), Some(lo)) => {
                                    self.cur.bump();
                                    self.cur.bump();
                                    out.extend(char::from_u32(hi * 16 + lo));
                                }
                                _ => {
                                    let mut esc = String::from("\\x");
                                    esc.extend(self.cur.peek().filter(|c| !c.is_whitespace()));
                                    return Err(self.err(
                                        ErrorKind::InvalidEscape(esc),
                                        eline,
                                        ecol,
                                    ));
                                }
                            }
                        }
                        // Python keeps unknown escapes as written.
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c if c == quote => {
                    if !triple {
                        self.cur.bump();
                        return Ok(out);
                    }
                    if self.cur.peek_at(1) == Some(quote) && self.cur.peek_at(2) == Some(quote) {
                        self.cur.bump();
                        self.cur.bump();
                        self.cur.bump();
                        return Ok(out);
                    }
                    out.push(c);
                    self.cur.bump();
                }
                c => {
                    out.push(c);
                    self.cur.bump();
                }
            }
        }
    }

    /// An integer literal starting at the current digit.
    fn number(&mut self) -> Result<i64, LexError> {
        let (line, column) = self.cur.at();
        let mut text = String::new();
        while let Some(c) = self
            .cur
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        {
            text.push(c);
            self.cur.bump();
        }
        let bad = |reason: &'static str| LexError {
            kind: ErrorKind::InvalidNumber {
                text: text.clone(),
                reason,
            },
            line,
            column,
        };
        let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None => (text.as_str(), 10),
        };
        if radix == 10
            && (text.contains('.')
                || text.contains(['e', 'E'])
                    && text
                        .chars()
                        .all(|c| c.is_ascii_digit() || "eE.".contains(c)))
        {
            return Err(bad("floating-point numbers are not supported"));
        }
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(bad("not an integer (decimal or 0x hexadecimal)"));
        }
        if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
            return Err(bad(
                "leading zeros are ambiguous (Python 2 read them as octal)",
            ));
        }
        i64::from_str_radix(digits, radix).map_err(|_| bad("too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn toks(text: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(text);
        let mut out = vec![];
        loop {
            let t = lx.next_token().expect("lexes").tok;
            if t == Tok::Eof {
                return out;
            }
            out.push(t);
        }
    }

    fn lex_err(text: &str) -> LexError {
        let mut lx = Lexer::new(text);
        loop {
            match lx.next_token() {
                Ok(t) if t.tok == Tok::Eof => panic!("no error in {text:?}"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    fn s(x: &str) -> Tok {
        Tok::Str(x.into())
    }

    #[test]
    fn punctuation_idents_comments() {
        assert_eq!(
            toks("a_1 = [x, -3]; # comment ' \" [\n"),
            vec![
                Tok::Ident("a_1".into()),
                Tok::Assign,
                Tok::LBracket,
                Tok::Ident("x".into()),
                Tok::Comma,
                Tok::Minus,
                Tok::Int(3),
                Tok::RBracket,
                Tok::Semicolon,
                Tok::Newline
            ]
        );
    }

    #[test]
    fn positions_are_one_based_characters() {
        let mut lx = Lexer::new("é = 'x'\n  k");
        let e = lx.next_token().unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        let mut lx = Lexer::new("ab = 'é'  \n  k");
        let want = [(1, 1), (1, 4), (1, 6), (1, 11), (2, 3)];
        for (l, c) in want {
            let t = lx.next_token().unwrap();
            assert_eq!((t.line, t.column), (l, c), "{t:?}");
        }
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks(r#"'a\\b\'c\"d\ne\tf'"#), vec![s("a\\b'c\"d\ne\tf")]);
        assert_eq!(toks(r#""it's""#), vec![s("it's")]);
        assert_eq!(toks("''"), vec![s("")]);
        assert_eq!(toks("\"\""), vec![s("")]);
        assert_eq!(toks(r"'\x41\101\0\q\r'"), vec![s("AA\0\\q\r")]);
        assert_eq!(toks("'a\\\nb'"), vec![s("ab")]);
        assert_eq!(toks("'# not a comment'"), vec![s("# not a comment")]);
    }

    #[test]
    fn triple_quoted_strings_span_lines() {
        assert_eq!(toks("'''a\n'b'\n''c'''"), vec![s("a\n'b'\n''c")]);
        assert_eq!(toks("\"\"\"x\\ny\"\"\""), vec![s("x\ny")]);
        let e = lex_err("k = '''never\nclosed\n");
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::UnterminatedString, 1, 5)
        );
    }

    #[test]
    fn unterminated_string_points_at_opening_quote() {
        let e = lex_err("a = 1\nkernel = '/boot/x\nname = 'y'\n");
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::UnterminatedString, 2, 10)
        );
        let e = lex_err("k = \"abc");
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::UnterminatedString, 1, 5)
        );
        let e = lex_err("k = 'abc\\");
        assert_eq!(e.kind, ErrorKind::UnterminatedString);
    }

    #[test]
    fn bad_hex_escape() {
        let e = lex_err(r"k = 'a\xZZ'");
        assert_eq!(
            (e.kind, e.line, e.column),
            (ErrorKind::InvalidEscape("\\xZ".into()), 1, 7)
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("0 64 0x40 0XfF"),
            vec![Tok::Int(0), Tok::Int(64), Tok::Int(64), Tok::Int(255)]
        );
        assert_eq!(toks("9223372036854775807"), vec![Tok::Int(i64::MAX)]);
        for (text, reason) in [
            (
                "064",
                "leading zeros are ambiguous (Python 2 read them as octal)",
            ),
            ("1.5", "floating-point numbers are not supported"),
            ("1e3", "floating-point numbers are not supported"),
            ("64M", "not an integer (decimal or 0x hexadecimal)"),
            ("0x", "not an integer (decimal or 0x hexadecimal)"),
            ("0xg", "not an integer (decimal or 0x hexadecimal)"),
            ("9223372036854775808", "too large"),
        ] {
            let e = lex_err(text);
            assert_eq!(
                e.kind,
                ErrorKind::InvalidNumber {
                    text: text.into(),
                    reason
                },
                "{text}"
            );
        }
    }

    #[test]
    fn line_continuation_and_stray_backslash() {
        assert_eq!(
            toks("a = \\\n 1"),
            vec![Tok::Ident("a".into()), Tok::Assign, Tok::Int(1)]
        );
        assert_eq!(
            toks("a = \\\r\n 1"),
            vec![Tok::Ident("a".into()), Tok::Assign, Tok::Int(1)]
        );
        let e = lex_err("a = \\ 1");
        assert_eq!((e.kind, e.column), (ErrorKind::UnexpectedChar('\\'), 5));
        let e = lex_err("a = (1)");
        assert_eq!(e.kind, ErrorKind::UnexpectedChar('('));
    }
}
