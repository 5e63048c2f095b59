//! Raw values of an xm config file, before any typing.
//!
//! Owns [`Value`] (the Python-subset literal forms), [`Item`] (a value with the line
//! and column where it starts, so a bad list element can be pointed at) and
//! [`Assignments`], the `key -> value` map of a file. Invariant of [`Assignments`]:
//! each key appears once, holding the value of its *last* assignment, and entries
//! are ordered by the line of that assignment.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// A literal value: the subset of Python xm config files use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `'text'`, `"text"`, `'''text'''`, `"""text"""` (escapes already applied;
    /// adjacent literals already concatenated, as Python does).
    Str(String),
    /// `64`, `-1`, `0x40`.
    Int(i64),
    /// `True` / `False`.
    Bool(bool),
    /// `[ v, v, ... ]`, possibly spanning lines, trailing comma allowed.
    List(Vec<Item>),
}

/// A value and where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The value.
    pub value: Value,
    /// Line of its first character.
    pub line: u32,
    /// Column of its first character.
    pub column: u32,
}

/// Longest string rendered in full by [`Value::repr`]; longer ones are cut.
const REPR_MAX_CHARS: usize = 60;

impl Value {
    /// Python-style rendering for diagnostics: `'abc'`, `64`, `True`, `['a', 1]`.
    /// Strings longer than 60 characters are cut and end in `...`.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            Value::Str(s) => repr_str(s, out),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::List(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.value.write_repr(out);
                }
                out.push(']');
            }
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Writes `s` as a single-quoted Python literal (escaping `\`, `'` and controls).
pub(crate) fn repr_str(s: &str, out: &mut String) {
    out.push('\'');
    for (n, c) in s.chars().enumerate() {
        if n == REPR_MAX_CHARS {
            out.push_str("...");
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32 & 0xff);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// One `key = value` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key (a Python identifier).
    pub key: String,
    /// Line of the key.
    pub line: u32,
    /// Column of the key.
    pub column: u32,
    /// The value and where it starts.
    pub value: Item,
}

/// All assignments of a file: one per key, the last one written wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments {
    entries: Vec<Assignment>,
}

impl Assignments {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `a`; returns the assignment it overrides, if the key was already set.
    pub fn insert(&mut self, a: Assignment) -> Option<Assignment> {
        let previous = self
            .entries
            .iter()
            .position(|e| e.key == a.key)
            .map(|i| self.entries.remove(i));
        self.entries.push(a);
        previous
    }

    /// The assignment of `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Assignment> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value of `key`, if any.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).map(|a| &a.value.value)
    }

    /// Assignments in the order of their (last) line.
    pub fn iter(&self) -> core::slice::Iter<'_, Assignment> {
        self.entries.iter()
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> IntoIterator for &'a Assignments {
    type Item = &'a Assignment;
    type IntoIter = core::slice::Iter<'a, Assignment>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn item(value: Value) -> Item {
        Item {
            value,
            line: 1,
            column: 1,
        }
    }

    #[test]
    fn repr_forms() {
        assert_eq!(Value::Str("abc".into()).repr(), "'abc'");
        assert_eq!(Value::Str("it's\n\\".into()).repr(), "'it\\'s\\n\\\\'");
        assert_eq!(Value::Str("\u{1}".into()).repr(), "'\\x01'");
        assert_eq!(Value::Int(-5).repr(), "-5");
        assert_eq!(Value::Bool(true).repr(), "True");
        assert_eq!(Value::Bool(false).repr(), "False");
        let l = Value::List(vec![item(Value::Str("a".into())), item(Value::Int(1))]);
        assert_eq!(l.repr(), "['a', 1]");
        let long: String = core::iter::repeat_n('x', 100).collect();
        let r = Value::Str(long).repr();
        assert_eq!(r.chars().count(), 60 + 5);
        assert!(r.ends_with("...'"));
    }

    #[test]
    fn later_assignment_wins_and_moves_last() {
        let mut m = Assignments::new();
        let a = |key: &str, line, v| Assignment {
            key: key.into(),
            line,
            column: 1,
            value: item(Value::Int(v)),
        };
        assert!(m.insert(a("memory", 1, 64)).is_none());
        assert!(m.insert(a("name", 2, 0)).is_none());
        let old = m.insert(a("memory", 3, 128)).expect("override reported");
        assert_eq!(old.line, 1);
        assert_eq!(m.len(), 2);
        assert_eq!(m.value("memory"), Some(&Value::Int(128)));
        let keys: Vec<&str> = m.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["name", "memory"]);
        assert!(m.get("kernel").is_none());
    }
}
