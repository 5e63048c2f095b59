//! Statement parser: turns tokens into [`Assignments`].
//!
//! Grammar (a subset of Python):
//! ```text
//! file       := { statement? ( NEWLINE | ';' ) }
//! statement  := IDENT '=' value
//! value      := STRING { STRING } | ['-'] INT | 'True' | 'False' | list
//! list       := '[' [ value { ',' value } [ ',' ] ] ']'      (newlines ignored inside)
//! ```
//! Adjacent string literals concatenate, as in Python. Lists nest at most
//! [`MAX_DEPTH`] levels, so hostile input cannot exhaust the stack. Every error names
//! the file, the line (and column) and, once the key has been read, the key. A list
//! that is never closed is reported at its opening bracket: at end of file, or when
//! a name (most likely the next `key =`) appears where `,` or `]` was due.

use crate::error::{ConfigError, ErrorKind, Warning, WarningKind};
use crate::lexer::{LexError, Lexer, Tok, Token};
use crate::value::{Assignment, Assignments, Item, Value};
use alloc::vec::Vec;

/// Deepest list nesting accepted.
pub const MAX_DEPTH: usize = 16;

struct Parser<'f> {
    file: &'f str,
    lexer: Lexer,
    peeked: Option<Token>,
    key: Option<alloc::string::String>,
}

impl<'f> Parser<'f> {
    fn error(&self, line: u32, column: u32, kind: ErrorKind) -> ConfigError {
        ConfigError::new(
            self.file,
            Some(line),
            Some(column),
            self.key.as_deref(),
            kind,
        )
    }

    fn lex_error(&self, e: LexError) -> ConfigError {
        self.error(e.line, e.column, e.kind)
    }

    fn peek(&mut self) -> Result<&Token, ConfigError> {
        if self.peeked.is_none() {
            let t = self.lexer.next_token().map_err(|e| self.lex_error(e))?;
            self.peeked = Some(t);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Token, ConfigError> {
        self.peek()?;
        Ok(self.peeked.take().expect("just filled"))
    }

    fn skip_newlines(&mut self) -> Result<(), ConfigError> {
        while self.peek()?.tok == Tok::Newline {
            self.next()?;
        }
        Ok(())
    }

    fn expected(&self, expected: &'static str, found: &Token) -> ConfigError {
        self.error(
            found.line,
            found.column,
            ErrorKind::Expected {
                expected,
                found: found.tok.describe(),
            },
        )
    }

    fn value(&mut self, depth: usize, in_list: bool) -> Result<Item, ConfigError> {
        let t = self.next()?;
        let (line, column) = (t.line, t.column);
        let value = match t.tok {
            Tok::Str(mut s) => {
                loop {
                    if in_list {
                        self.skip_newlines()?;
                    }
                    if !matches!(self.peek()?.tok, Tok::Str(_)) {
                        break;
                    }
                    if let Tok::Str(more) = self.next()?.tok {
                        s.push_str(&more);
                    }
                }
                Value::Str(s)
            }
            Tok::Int(i) => Value::Int(i),
            Tok::Minus => {
                let n = self.next()?;
                match n.tok {
                    // -i64::MIN's magnitude is not a positive i64: never produced.
                    Tok::Int(i) => Value::Int(-i),
                    _ => return Err(self.expected("a number after '-'", &n)),
                }
            }
            Tok::Ident(ref name) if name == "True" => Value::Bool(true),
            Tok::Ident(ref name) if name == "False" => Value::Bool(false),
            Tok::LBracket => {
                if depth >= MAX_DEPTH {
                    return Err(self.error(line, column, ErrorKind::TooDeep { max: MAX_DEPTH }));
                }
                self.list(line, column, depth + 1)?
            }
            Tok::Ident(_) => {
                return Err(self.expected("a value (strings must be quoted)", &t));
            }
            _ => return Err(self.expected("a value", &t)),
        };
        Ok(Item {
            value,
            line,
            column,
        })
    }

    /// The rest of a list whose `[` was at (`line`, `column`).
    fn list(&mut self, line: u32, column: u32, depth: usize) -> Result<Value, ConfigError> {
        let unterminated = |p: &Self, found: &Token| {
            let found = match found.tok {
                Tok::Eof => None,
                ref t => Some((t.describe(), found.line)),
            };
            p.error(line, column, ErrorKind::UnterminatedList { found })
        };
        let mut items = Vec::new();
        loop {
            self.skip_newlines()?;
            let t = self.peek()?.clone();
            match t.tok {
                Tok::RBracket => {
                    self.next()?;
                    return Ok(Value::List(items));
                }
                Tok::Eof => return Err(unterminated(self, &t)),
                Tok::Ident(ref n) if n != "True" && n != "False" && t.line > line => {
                    return Err(unterminated(self, &t));
                }
                _ => {}
            }
            let item = self.value(depth, true)?;
            let item_line = item.line;
            items.push(item);
            self.skip_newlines()?;
            let t = self.next()?;
            match t.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok(Value::List(items)),
                Tok::Eof => return Err(unterminated(self, &t)),
                Tok::Ident(_) if t.line > item_line => return Err(unterminated(self, &t)),
                _ => return Err(self.expected("',' or ']'", &t)),
            }
        }
    }
}

/// Parses `text` (the contents of `file_name`) into its `key -> value` map.
///
/// A key assigned again overrides the earlier value and produces a
/// [`WarningKind::DuplicateKey`] warning.
pub fn parse_assignments(
    file_name: &str,
    text: &str,
) -> Result<(Assignments, Vec<Warning>), ConfigError> {
    let mut p = Parser {
        file: file_name,
        lexer: Lexer::new(text),
        peeked: None,
        key: None,
    };
    let mut map = Assignments::new();
    let mut warnings = Vec::new();
    loop {
        p.key = None;
        let t = p.next()?;
        let (line, column) = (t.line, t.column);
        let key = match t.tok {
            Tok::Eof => return Ok((map, warnings)),
            Tok::Newline | Tok::Semicolon => continue,
            Tok::Ident(key) => key,
            _ => return Err(p.expected("a key name", &t)),
        };
        p.key = Some(key.clone());
        let eq = p.next()?;
        if eq.tok != Tok::Assign {
            return Err(p.expected("'='", &eq));
        }
        if matches!(p.peek()?.tok, Tok::Newline | Tok::Eof | Tok::Semicolon) {
            let t = p.next()?;
            return Err(p.expected("a value after '='", &t));
        }
        let value = p.value(0, false)?;
        let end = p.next()?;
        if !matches!(end.tok, Tok::Newline | Tok::Eof | Tok::Semicolon) {
            return Err(p.expected("end of line after the value", &end));
        }
        let a = Assignment {
            key,
            line,
            column,
            value,
        };
        if let Some(previous) = map.insert(a) {
            warnings.push(Warning::new(
                file_name,
                line,
                &previous.key,
                WarningKind::DuplicateKey {
                    previous_line: previous.line,
                },
            ));
        }
        if end.tok == Tok::Eof {
            return Ok((map, warnings));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec;

    fn parse_ok(text: &str) -> (Assignments, Vec<Warning>) {
        parse_assignments("t.cfg", text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        parse_assignments("t.cfg", text)
            .expect_err("must fail")
            .to_string()
    }

    fn strs(v: &Value) -> Vec<String> {
        match v {
            Value::List(items) => items
                .iter()
                .map(|i| i.value.as_str().expect("string").into())
                .collect(),
            _ => panic!("not a list"),
        }
    }

    #[test]
    fn every_value_form() {
        let (m, w) = parse_ok(
            "a = 'single'\nb = \"double\"\nc = '''tri\nple'''\nd = 42\ne = 0x1F\nf = -7\n\
             g = True\nh = False\ni = []\nj = [ 'x', 1, ['y'], ]\nk = 'ab' \"cd\"\n",
        );
        assert!(w.is_empty());
        assert_eq!(m.value("a"), Some(&Value::Str("single".into())));
        assert_eq!(m.value("b"), Some(&Value::Str("double".into())));
        assert_eq!(m.value("c"), Some(&Value::Str("tri\nple".into())));
        assert_eq!(m.value("d"), Some(&Value::Int(42)));
        assert_eq!(m.value("e"), Some(&Value::Int(31)));
        assert_eq!(m.value("f"), Some(&Value::Int(-7)));
        assert_eq!(m.value("g"), Some(&Value::Bool(true)));
        assert_eq!(m.value("h"), Some(&Value::Bool(false)));
        assert_eq!(m.value("i"), Some(&Value::List(vec![])));
        assert_eq!(m.value("j").unwrap().repr(), "['x', 1, ['y']]");
        assert_eq!(m.value("k"), Some(&Value::Str("abcd".into())));
        // line of the key, line of the value after a triple-quoted string
        assert_eq!(m.get("d").unwrap().line, 5);
        assert_eq!(m.len(), 11);
    }

    #[test]
    fn multi_line_list_with_comments_and_trailing_comma() {
        let (m, _) = parse_ok(
            "disk = [ # the disks\n   'file:/a,sda1,w',   # root\n\n   'file:/b,sda2,w',\n]\nname = 'x'\n",
        );
        let a = m.get("disk").unwrap();
        assert_eq!(strs(&a.value.value), ["file:/a,sda1,w", "file:/b,sda2,w"]);
        let Value::List(items) = &a.value.value else {
            panic!()
        };
        assert_eq!((items[0].line, items[0].column), (2, 4));
        assert_eq!((items[1].line, items[1].column), (4, 4));
        assert_eq!(m.get("name").unwrap().line, 6);
    }

    #[test]
    fn blank_lines_comments_semicolons_continuations() {
        let (m, _) = parse_ok("\n# only a comment\n   \n a = 1 ; b = 2;\nc = \\\n  3 # trailing\n");
        assert_eq!(m.value("a"), Some(&Value::Int(1)));
        assert_eq!(m.value("b"), Some(&Value::Int(2)));
        assert_eq!(m.value("c"), Some(&Value::Int(3)));
        let (m, _) = parse_ok("a = 1");
        assert_eq!(m.value("a"), Some(&Value::Int(1)));
        let (m, _) = parse_ok("");
        assert!(m.is_empty());
    }

    #[test]
    fn duplicate_key_warns_and_later_wins() {
        let (m, w) = parse_ok("memory = 64\nname = 'a'\nmemory = 128\n");
        assert_eq!(m.value("memory"), Some(&Value::Int(128)));
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "t.cfg:3: key 'memory': warning: assigned again; this value overrides the one from line 1"
        );
    }

    #[test]
    fn unterminated_list_points_at_opening_bracket() {
        assert_eq!(
            err("name = 'a'\ndisk = [ 'file:/a,sda1,w',\n"),
            "t.cfg:2:8: key 'disk': unterminated list: the bracket opened here is never closed"
        );
        assert_eq!(
            err("disk = [ 'file:/a,sda1,w',\n  'file:/b,sda2,w'\nname = 'x'\n"),
            "t.cfg:1:8: key 'disk': unterminated list: the bracket opened here is never closed \
             (found name 'name' at line 3)"
        );
        assert_eq!(
            err("disk = [ 'a',\nname = 'x'\n"),
            "t.cfg:1:8: key 'disk': unterminated list: the bracket opened here is never closed \
             (found name 'name' at line 2)"
        );
        assert_eq!(
            err("vif = [[ 'a' ]"),
            "t.cfg:1:7: key 'vif': unterminated list: the bracket opened here is never closed"
        );
    }

    #[test]
    fn unterminated_string_names_key_and_opening() {
        assert_eq!(
            err("name = 'a'\nkernel = '/boot/x\nmemory = 64\n"),
            "t.cfg:2:10: key 'kernel': unterminated string: no closing quote"
        );
        assert_eq!(
            err("extra = \"\"\"a\nb\n"),
            "t.cfg:1:9: key 'extra': unterminated string: no closing quote"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_column_key() {
        assert_eq!(
            err("on crash = 'restart'"),
            "t.cfg:1:4: key 'on': expected '=', found name 'crash'"
        );
        assert_eq!(
            err("a = 1\nmemory = abc\n"),
            "t.cfg:2:10: key 'memory': expected a value (strings must be quoted), found name 'abc'"
        );
        assert_eq!(
            err("memory =\n"),
            "t.cfg:1:9: key 'memory': expected a value after '=', found end of line"
        );
        assert_eq!(
            err("memory = 64 128\n"),
            "t.cfg:1:13: key 'memory': expected end of line after the value, found number 128"
        );
        assert_eq!(err("= 5\n"), "t.cfg:1:1: expected a key name, found '='");
        assert_eq!(
            err("'x' = 5\n"),
            "t.cfg:1:1: expected a key name, found string 'x'"
        );
        assert_eq!(
            err("a = -'x'\n"),
            "t.cfg:1:6: key 'a': expected a number after '-', found string 'x'"
        );
        assert_eq!(
            err("a = ]\n"),
            "t.cfg:1:5: key 'a': expected a value, found ']'"
        );
        assert_eq!(
            err("a = ['x' 5]\n"),
            "t.cfg:1:10: key 'a': expected ',' or ']', found number 5"
        );
        assert_eq!(
            err("a = [,]\n"),
            "t.cfg:1:6: key 'a': expected a value, found ','"
        );
        assert_eq!(
            err("a = 1\nmemory = 064\n"),
            "t.cfg:2:10: key 'memory': invalid number '064': leading zeros are ambiguous (Python 2 read them as octal)"
        );
        assert_eq!(err("a = 1\n$ = 2"), "t.cfg:2:1: unexpected character '$'");
        assert_eq!(
            err("a = (1, 2)"),
            "t.cfg:1:5: key 'a': unexpected character '('"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = alloc::format!("a = {}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        parse_ok(&ok);
        let deep = alloc::format!(
            "a = {}{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            err(&deep),
            alloc::format!(
                "t.cfg:1:{}: key 'a': lists nested deeper than 16 levels",
                5 + MAX_DEPTH
            )
        );
        // Far deeper input must fail the same way, not overflow the stack.
        let hostile = "a = ".to_string() + &"[".repeat(100_000);
        assert!(err(&hostile).contains("nested deeper"));
    }
}
