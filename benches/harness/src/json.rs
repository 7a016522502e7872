//! One flat JSON object per line: `loadgen` writes them, `report` reads them back. Values
//! are strings, numbers or `null`; nothing nests, so a few lines of code do.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A JSON object being written, field by field, in order.
#[derive(Default)]
pub struct Line {
    text: String,
}

impl Line {
    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        self.text.push('"');
        for c in value.chars() {
            match c {
                '"' => self.text.push_str("\\\""),
                '\\' => self.text.push_str("\\\\"),
                c if c < ' ' => write!(self.text, "\\u{:04x}", c as u32).unwrap(),
                c => self.text.push(c),
            }
        }
        self.text.push('"');
        self
    }

    /// Adds a number field with `decimals` digits after the point; `null` when not finite.
    pub fn num(mut self, key: &str, value: f64, decimals: usize) -> Line {
        self.key(key);
        if value.is_finite() {
            write!(self.text, "{value:.decimals$}").unwrap();
        } else {
            self.text.push_str("null");
        }
        self
    }

    /// Adds a number field, or `null` for `None`.
    pub fn opt(self, key: &str, value: Option<f64>, decimals: usize) -> Line {
        self.num(key, value.unwrap_or(f64::NAN), decimals)
    }

    fn key(&mut self, key: &str) {
        self.text.push(if self.text.is_empty() { '{' } else { ',' });
        write!(self.text, "\"{key}\":").unwrap();
    }

    /// The finished object, on one line.
    pub fn finish(self) -> String {
        if self.text.is_empty() {
            "{}".into()
        } else {
            self.text + "}"
        }
    }
}

/// A value read back from a flat object.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string, unescaped.
    Str(String),
    /// A number.
    Num(f64),
    /// `null`, `true` or `false`.
    Other,
}

/// Parses one flat JSON object; `None` when the line is not one.
pub fn parse(line: &str) -> Option<BTreeMap<String, Value>> {
    let mut chars = line.trim().chars().peekable();
    let mut out = BTreeMap::new();
    (chars.next()? == '{').then_some(())?;
    loop {
        skip_spaces(&mut chars);
        match chars.next()? {
            '}' if out.is_empty() => return Some(out),
            '"' => {}
            _ => return None,
        }
        let key = string(&mut chars)?;
        skip_spaces(&mut chars);
        (chars.next()? == ':').then_some(())?;
        skip_spaces(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            Value::Str(string(&mut chars)?)
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' || c == '}' || c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            match word.as_str() {
                "null" | "true" | "false" => Value::Other,
                w => Value::Num(w.parse().ok()?),
            }
        };
        out.insert(key, value);
        skip_spaces(&mut chars);
        match chars.next()? {
            ',' => {}
            '}' => return Some(out),
            _ => return None,
        }
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_spaces(chars: &mut Chars) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

/// The rest of a string whose opening quote was read.
fn string(chars: &mut Chars) -> Option<String> {
    let mut s = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(s),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => s.push('\n'),
                't' => s.push('\t'),
                c => s.push(c),
            },
            c => s.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let line = Line::default()
            .str("tag", "pp \"4k\"/std\n")
            .num("mib_s", 161.256, 1)
            .opt("cpu", None, 2)
            .finish();
        assert_eq!(
            line,
            r#"{"tag":"pp \"4k\"/std\u000a","mib_s":161.3,"cpu":null}"#
        );
        let back = parse(&line).unwrap();
        assert_eq!(back["tag"], Value::Str("pp \"4k\"/std\n".into()));
        assert_eq!(back["mib_s"], Value::Num(161.3));
        assert_eq!(back["cpu"], Value::Other);
        assert!(parse("not json").is_none());
        assert_eq!(parse("{}").map(|m| m.len()), Some(0));
    }
}
