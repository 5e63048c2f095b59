//! Splitting a command line into words, as a POSIX shell does for the subset
//! the dom0 shell needs: blanks separate words; `'...'` quotes literally;
//! `"..."` quotes with `\"`, `\\` (and `\$`, `` \` ``) escapes; a backslash
//! outside quotes takes the next character literally; `#` at the start of a
//! word starts a comment. No expansion of any kind.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a line could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A `'` or `"` was not closed.
    UnterminatedQuote(char),
    /// The line ends with a lone backslash.
    TrailingBackslash,
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::UnterminatedQuote(q) => write!(f, "unterminated {q} quote"),
            SplitError::TrailingBackslash => f.write_str("line ends with a lone backslash"),
        }
    }
}

/// The words of `line`.
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    // Whether a word has started (an empty quoted word `''` is a word).
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::UnterminatedQuote('\'')),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(other) => {
                                cur.push('\\');
                                cur.push(other);
                            }
                            None => return Err(SplitError::UnterminatedQuote('"')),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::UnterminatedQuote('"')),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(SplitError::TrailingBackslash),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ok(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(ok("  ls   -l\t/etc/xen  "), vec!["ls", "-l", "/etc/xen"]);
        assert!(ok("   ").is_empty());
        assert!(ok("").is_empty());
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(ok("echo 'a  b' \"c d\""), vec!["echo", "a  b", "c d"]);
        assert_eq!(ok("echo ab'c d'e"), vec!["echo", "abc de"]);
        assert_eq!(ok("echo '' x"), vec!["echo", "", "x"]);
        assert_eq!(ok(r#"echo "a\"b\\c\n""#), vec!["echo", "a\"b\\c\\n"]);
        assert_eq!(ok(r"echo 'no \escape'"), vec!["echo", r"no \escape"]);
    }

    #[test]
    fn backslash_escapes_one_character() {
        assert_eq!(ok(r"cat my\ file"), vec!["cat", "my file"]);
        assert_eq!(ok(r"echo \#x"), vec!["echo", "#x"]);
    }

    #[test]
    fn comments_start_only_a_word() {
        assert_eq!(ok("ls # list"), vec!["ls"]);
        assert_eq!(ok("echo a#b"), vec!["echo", "a#b"]);
        assert!(ok("# only a comment").is_empty());
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert_eq!(split("echo 'abc"), Err(SplitError::UnterminatedQuote('\'')));
        assert_eq!(split("echo \"abc"), Err(SplitError::UnterminatedQuote('"')));
        assert_eq!(
            split("echo \"abc\\"),
            Err(SplitError::UnterminatedQuote('"'))
        );
        assert_eq!(split("echo abc\\"), Err(SplitError::TrailingBackslash));
        assert_eq!(
            SplitError::UnterminatedQuote('\'').to_string(),
            "unterminated ' quote"
        );
    }

    use alloc::string::ToString;
}
