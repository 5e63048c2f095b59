//! Errors and warnings of every parser in this crate.
//!
//! Owns [`ConfigError`] (fatal: the file is rejected) and [`Warning`] (reported, never
//! fatal). Both carry the file name as the caller gave it, a 1-based line number when
//! one exists (a missing key has none), a 1-based column (in characters) when it
//! points inside a line, and the key the problem belongs to when it is known.
//! `Display` renders them as `file:line[:col]: [key 'k': ]message`, the shape users
//! know from compilers, e.g. `brun.cfg:4: key 'memory': expected a number, found 'abc'`.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// Where a diagnostic points: file, line (1-based), column (1-based), key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File name as given to the parser.
    pub file: String,
    /// 1-based line, `None` when the problem is not on a line (e.g. a missing key).
    pub line: Option<u32>,
    /// 1-based column in characters, when meaningful.
    pub column: Option<u32>,
    /// The key (xm config) or entry name (sxp) the problem belongs to.
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "key '{key}': ")?;
        }
        Ok(())
    }
}

/// What went wrong (the location is in [`ConfigError`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A string literal reaches the end of its line (or of the file, for a
    /// triple-quoted one) without its closing quote. Points at the opening quote.
    UnterminatedString,
    /// A list (`[`, or `(` in sxp) is never closed. Points at the opening bracket;
    /// `found` describes what was met instead and on which line.
    UnterminatedList {
        /// What appeared where `,` or the closing bracket was expected, and its line.
        found: Option<(String, u32)>,
    },
    /// A character that cannot start any token.
    UnexpectedChar(char),
    /// The grammar wanted `expected` and met `found`.
    Expected {
        /// What the grammar wanted, e.g. `"'='"`.
        expected: &'static str,
        /// Description of what was there.
        found: String,
    },
    /// A malformed number literal.
    InvalidNumber {
        /// The literal as written.
        text: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A malformed escape sequence in a string literal.
    InvalidEscape(String),
    /// Brackets nested deeper than the parser allows.
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A required key is absent.
    MissingKey,
    /// The value should be a string.
    ExpectedString {
        /// Python-style rendering of what was found.
        found: String,
    },
    /// The value should be a number (an integer or a string holding one).
    ExpectedNumber {
        /// Python-style rendering of what was found.
        found: String,
    },
    /// The value should be a boolean (0/1, True/False, 'yes'/'no').
    ExpectedBool {
        /// Python-style rendering of what was found.
        found: String,
    },
    /// A number outside its allowed range.
    OutOfRange {
        /// The value given.
        value: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A value of the right type whose content is wrong (a disk spec, a MAC...).
    Invalid {
        /// What the value is, e.g. `"disk"`, `"domain name"`.
        what: &'static str,
        /// The value as written.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnterminatedString => f.write_str("unterminated string: no closing quote"),
            ErrorKind::UnterminatedList { found: None } => {
                f.write_str("unterminated list: the bracket opened here is never closed")
            }
            ErrorKind::UnterminatedList {
                found: Some((what, line)),
            } => write!(
                f,
                "unterminated list: the bracket opened here is never closed (found {what} at line {line})"
            ),
            ErrorKind::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            ErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ErrorKind::InvalidNumber { text, reason } => {
                write!(f, "invalid number '{text}': {reason}")
            }
            ErrorKind::InvalidEscape(esc) => write!(f, "invalid escape sequence '{esc}'"),
            ErrorKind::TooDeep { max } => write!(f, "lists nested deeper than {max} levels"),
            ErrorKind::MissingKey => f.write_str("required key is missing"),
            ErrorKind::ExpectedString { found } => write!(f, "expected a string, found {found}"),
            ErrorKind::ExpectedNumber { found } => write!(f, "expected a number, found {found}"),
            ErrorKind::ExpectedBool { found } => {
                write!(f, "expected a boolean (0 or 1), found {found}")
            }
            ErrorKind::OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range ({min} to {max})")
            }
            ErrorKind::Invalid {
                what,
                value,
                reason,
            } => write!(f, "invalid {what} '{value}': {reason}"),
        }
    }
}

/// A fatal problem: the file is rejected. (Boxed parts keep `Result`s small.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub location: Box<Location>,
    /// What.
    pub kind: Box<ErrorKind>,
}

impl ConfigError {
    pub(crate) fn new(
        file: &str,
        line: Option<u32>,
        column: Option<u32>,
        key: Option<&str>,
        kind: ErrorKind,
    ) -> Self {
        ConfigError {
            location: Box::new(Location {
                file: file.into(),
                line,
                column,
                key: key.map(Into::into),
            }),
            kind: Box::new(kind),
        }
    }

    /// 1-based line of the problem, if it is on a line.
    pub fn line(&self) -> Option<u32> {
        self.location.line
    }

    /// The key the problem belongs to, if known.
    pub fn key(&self) -> Option<&str> {
        self.location.key.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.location, self.kind)
    }
}

impl core::error::Error for ConfigError {}

/// What a warning is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key this parser does not know; its value is kept but not used.
    UnknownKey,
    /// A key assigned a second time; the later value wins.
    DuplicateKey {
        /// Line of the overridden assignment.
        previous_line: u32,
    },
    /// `maxmem` below `memory`: raised to `memory`, as xend did.
    MaxmemBelowMemory {
        /// The maxmem given (MiB).
        maxmem: u32,
        /// The memory given (MiB), which maxmem becomes.
        memory: u32,
    },
    /// `vif-script` of a different networking mode than `network-script`.
    ScriptMismatch {
        /// The network script's name.
        network: String,
        /// The vif script's name.
        vif: String,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::UnknownKey => f.write_str("unknown key, ignored"),
            WarningKind::DuplicateKey { previous_line } => write!(
                f,
                "assigned again; this value overrides the one from line {previous_line}"
            ),
            WarningKind::MaxmemBelowMemory { maxmem, memory } => write!(
                f,
                "maxmem {maxmem} is below memory {memory}; using {memory}"
            ),
            WarningKind::ScriptMismatch { network, vif } => write!(
                f,
                "vif-script '{vif}' does not match network-script '{network}'"
            ),
        }
    }
}

/// A non-fatal problem, reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub location: Location,
    /// What.
    pub kind: WarningKind,
}

impl Warning {
    pub(crate) fn new(file: &str, line: u32, key: &str, kind: WarningKind) -> Self {
        Warning {
            location: Location {
                file: file.into(),
                line: Some(line),
                column: None,
                key: Some(key.into()),
            },
            kind,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}warning: {}", self.location, self.kind)
    }
}
