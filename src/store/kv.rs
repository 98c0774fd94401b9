//! The strict subset of TOML that secret and config files use: `key = value` lines with
//! comments, basic and literal strings, non-negative integers and arrays of strings.
//! Hand-written because a general TOML parser cost most of a login's instructions and most
//! of the module's size. Anything outside the subset (tables, dotted keys, floats, dates,
//! escapes other than `\"` and `\\`, duplicate keys) is an error naming the line, never
//! quoting the content.

use zeroize::Zeroizing;

/// A value of the subset.
#[derive(PartialEq, Eq)]
pub enum Value {
    /// A string (wiped on drop: it may be the secret).
    Str(Zeroizing<String>),
    /// A non-negative integer.
    Int(u64),
    /// An array of strings.
    List(Vec<Zeroizing<String>>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(_) => write!(f, "Str(<redacted>)"),
            Value::Int(n) => write!(f, "Int({n})"),
            Value::List(l) => write!(f, "List(<{} redacted>)", l.len()),
        }
    }
}

/// One `key = value` line.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    /// The bare key.
    pub key: String,
    /// Its value.
    pub value: Value,
    /// The 1-based line it starts on.
    pub line: usize,
}

/// Why a file is not in the subset: a line number and a fixed description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// 1-based line.
    pub line: usize,
    /// What is wrong, never the content.
    pub what: &'static str,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at = self.at.saturating_add(1);
        if b == b'\n' {
            self.line = self.line.saturating_add(1);
        }
        Some(b)
    }

    fn err(&self, what: &'static str) -> Error {
        Error {
            line: self.line,
            what,
        }
    }

    /// Skips spaces and tabs.
    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    /// Skips a comment up to (not including) the end of the line.
    fn comment(&mut self) {
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.bump();
            }
        }
    }

    /// Consumes the end of a line: blanks, a comment, then `\n`, `\r\n` or the end.
    fn end_of_line(&mut self) -> Result<(), Error> {
        self.blanks();
        self.comment();
        match self.peek() {
            None => Ok(()),
            Some(b'\n') => {
                self.bump();
                Ok(())
            }
            Some(b'\r') => {
                self.bump();
                if self.bump() == Some(b'\n') {
                    Ok(())
                } else {
                    Err(self.err("stray carriage return"))
                }
            }
            Some(_) => Err(self.err("unexpected text after the value")),
        }
    }

    /// Skips blanks, comments and line breaks (inside arrays).
    fn space_and_newlines(&mut self) {
        loop {
            self.blanks();
            self.comment();
            match self.peek() {
                Some(b'\n') => {
                    self.bump();
                }
                Some(b'\r') if self.text.get(self.at.saturating_add(1)) == Some(&b'\n') => {
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    fn string(&mut self) -> Result<Zeroizing<String>, Error> {
        let quote = self.bump().ok_or_else(|| self.err("expected a string"))?;
        let mut out = Zeroizing::new(String::new());
        loop {
            if matches!(self.peek(), None | Some(b'\n' | b'\r')) {
                return Err(self.err("unterminated string"));
            }
            match self.bump() {
                None => return Err(self.err("unterminated string")),
                Some(b) if b == quote => return Ok(out),
                Some(b'\\') if quote == b'"' => match self.bump() {
                    Some(b'"') => out.push('"'),
                    Some(b'\\') => out.push('\\'),
                    _ => return Err(self.err("unsupported escape in string")),
                },
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => out.push(char::from(b)),
                Some(_) => return Err(self.err("control or non-ASCII character in string")),
            }
        }
    }

    fn integer(&mut self) -> Result<u64, Error> {
        if self.peek() == Some(b'+') {
            self.bump();
        }
        let mut value: u64 = 0;
        let mut digits = 0usize;
        let mut last_underscore = false;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' => {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or_else(|| self.err("number too large"))?;
                    digits = digits.saturating_add(1);
                    last_underscore = false;
                }
                b'_' if digits > 0 && !last_underscore => last_underscore = true,
                _ => break,
            }
            self.bump();
        }
        if digits == 0 || last_underscore {
            return Err(self.err("expected a number"));
        }
        Ok(value)
    }

    fn value(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some(b'"' | b'\'') => Ok(Value::Str(self.string()?)),
            Some(b'0'..=b'9' | b'+') => Ok(Value::Int(self.integer()?)),
            Some(b'-') => Err(self.err("negative numbers are not allowed")),
            Some(b'[') => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.space_and_newlines();
                    match self.peek() {
                        Some(b']') => {
                            self.bump();
                            return Ok(Value::List(items));
                        }
                        Some(b'"' | b'\'') => items.push(self.string()?),
                        _ => return Err(self.err("arrays hold only strings")),
                    }
                    if items.len() > 1000 {
                        return Err(self.err("array too long"));
                    }
                    self.space_and_newlines();
                    match self.peek() {
                        Some(b',') => {
                            self.bump();
                        }
                        Some(b']') => {}
                        _ => return Err(self.err("expected ',' or ']' in array")),
                    }
                }
            }
            Some(b't' | b'f') => Err(self.err("booleans are not used in this file")),
            _ => Err(self.err("expected a string, a number or an array")),
        }
    }
}

/// Parses the whole text.
pub fn parse(text: &[u8]) -> Result<Vec<Entry>, Error> {
    let mut c = Cursor {
        text,
        at: 0,
        line: 1,
    };
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        c.space_and_newlines();
        let Some(first) = c.peek() else {
            return Ok(entries);
        };
        if first == b'[' {
            return Err(c.err("tables are not used in this file"));
        }
        let line = c.line;
        let start = c.at;
        while matches!(
            c.peek(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
        ) {
            c.bump();
        }
        let key = text.get(start..c.at).unwrap_or(&[]);
        if key.is_empty() {
            return Err(c.err("expected a key"));
        }
        let key = String::from_utf8_lossy(key).into_owned();
        c.blanks();
        if c.bump() != Some(b'=') {
            return Err(c.err("expected '=' after the key"));
        }
        c.blanks();
        let value = c.value()?;
        c.end_of_line()?;
        if entries.iter().any(|e| e.key == key) {
            return Err(Error {
                line,
                what: "duplicate key",
            });
        }
        entries.push(Entry { key, value, line });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_the_cli_writes_parse() {
        let text = b"version = 1\nid = \"ab-1\"  # comment\n\n# full line\ntype = 'totp'\r\ncounter = 1_000\nscratch = [\n  \"a\", # one\n  \"b\",\n]\nempty = []\n";
        let e = parse(text).unwrap();
        let keys: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["version", "id", "type", "counter", "scratch", "empty"]
        );
        assert_eq!(e[0].value, Value::Int(1));
        assert_eq!(e[3].value, Value::Int(1000));
        assert_eq!(e[1].value, Value::Str(Zeroizing::new("ab-1".into())));
        assert_eq!(e[4].line, 7);
        match &e[4].value {
            Value::List(l) => assert_eq!(l.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn anything_outside_the_subset_is_an_error_with_its_line() {
        let cases: [(&[u8], usize); 14] = [
            (b"a = 1\na = 2\n", 2),
            (b"[table]\n", 1),
            (b"a = \"x\n", 1),
            (b"a = -1\n", 1),
            (b"a = 1.5\n", 1),
            (b"a = true\n", 1),
            (b"a = \"\\n\"\n", 1),
            (b"\n\na = 99999999999999999999999\n", 3),
            (b"a.b = 1\n", 1),
            (b"= 1\n", 1),
            (b"a = [1]\n", 1),
            (b"a = \"x\" junk\n", 1),
            (b"a = \"caf\xc3\xa9\"\n", 1),
            (b"a = 1_\n", 1),
        ];
        for (text, line) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{:?}: {e}", String::from_utf8_lossy(text));
        }
    }
}
