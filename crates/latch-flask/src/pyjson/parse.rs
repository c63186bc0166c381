//! A strict JSON reader producing `serde_json::Value` without loss.
//!
//! serde_json would read `18446744073709551616` as a float and Python's
//! `NaN` not at all; a session value must never change type on the way through
//! latch, so such input is refused here instead.

use serde_json::{Map, Number, Value};

/// Deeper nesting than this is refused (Flask sessions are shallow; the limit
/// keeps recursion bounded).
const MAX_DEPTH: usize = 128;

/// Why a JSON text was refused (for logs; never shown to clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) &'static str);

type Parsed<T> = Result<T, ParseError>;

/// Parse one JSON value that must fill `text` (surrounding whitespace allowed).
pub(crate) fn parse(text: &[u8]) -> Parsed<Value> {
    let text = std::str::from_utf8(text).map_err(|_| ParseError("JSON is not UTF-8"))?;
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(ParseError("trailing characters after JSON"));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Parsed<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ParseError("unexpected character in JSON"))
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Parsed<Value> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(ParseError("invalid JSON literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Parsed<Value> {
        if depth > MAX_DEPTH {
            return Err(ParseError("JSON nested too deeply"));
        }
        self.skip_ws();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            // Python also reads NaN and +-Infinity; a JSON value cannot hold them.
            Some(b'N' | b'I') => Err(ParseError("non-finite float in JSON")),
            _ => Err(ParseError("unexpected character in JSON")),
        }
    }

    fn array(&mut self, depth: usize) -> Parsed<Value> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(ParseError("unterminated JSON array")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Parsed<Value> {
        self.expect(b'{')?;
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            let item = self.value(depth + 1)?;
            // Python keeps the last of duplicate keys; Flask never writes any, so
            // a duplicate is refused rather than guessed at.
            if map.insert(key, item).is_some() {
                return Err(ParseError("duplicate key in JSON object"));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(ParseError("unterminated JSON object")),
            }
        }
    }

    fn number(&mut self) -> Parsed<Number> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            Some(b'I') => return Err(ParseError("non-finite float in JSON")),
            _ => return Err(ParseError("invalid JSON number")),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
            is_float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.require_digits()?;
            is_float = true;
        }
        // The scanned bytes are ASCII digits and signs, so this cannot fail.
        let text = std::str::from_utf8(&self.bytes[start..self.pos])
            .map_err(|_| ParseError("invalid JSON number"))?;
        if is_float {
            let f: f64 = text
                .parse()
                .map_err(|_| ParseError("invalid JSON number"))?;
            Number::from_f64(f).ok_or(ParseError("float out of range in JSON"))
        } else if let Ok(i) = text.parse::<i64>() {
            Ok(Number::from(i))
        } else {
            text.parse::<u64>()
                .map(Number::from)
                .map_err(|_| ParseError("integer beyond 64 bits in JSON"))
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Parsed<()> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(ParseError("invalid JSON number"));
        }
        Ok(())
    }

    fn string(&mut self) -> Parsed<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // Valid UTF-8 cut at ASCII bytes stays valid, so this cannot fail.
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.pos])
                    .map_err(|_| ParseError("JSON is not UTF-8"))?,
            );
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                Some(_) => return Err(ParseError("control character in JSON string")),
                None => return Err(ParseError("unterminated JSON string")),
            }
        }
    }

    fn escape(&mut self) -> Parsed<char> {
        let byte = self.peek().ok_or(ParseError("unterminated JSON string"))?;
        self.pos += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(ParseError("invalid escape in JSON string")),
        })
    }

    fn unicode_escape(&mut self) -> Parsed<char> {
        let first = self.hex4()?;
        if !(0xD800..0xDC00).contains(&first) {
            // A lone low surrogate fails here too: `from_u32` refuses it.
            return char::from_u32(u32::from(first))
                .ok_or(ParseError("lone surrogate in JSON string"));
        }
        if !self.bytes[self.pos..].starts_with(b"\\u") {
            return Err(ParseError("lone surrogate in JSON string"));
        }
        self.pos += 2;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return Err(ParseError("lone surrogate in JSON string"));
        }
        let code = 0x10000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00);
        char::from_u32(code).ok_or(ParseError("lone surrogate in JSON string"))
    }

    fn hex4(&mut self) -> Parsed<u16> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or(ParseError("invalid \\u escape in JSON string"))?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(ParseError("invalid \\u escape in JSON string"));
        }
        self.pos += 4;
        // Four ASCII hex digits, so neither step can fail.
        let text = std::str::from_utf8(digits).map_err(|_| ParseError("invalid \\u escape"))?;
        u16::from_str_radix(text, 16).map_err(|_| ParseError("invalid \\u escape"))
    }
}
