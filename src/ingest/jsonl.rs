//! JSON Lines: one article object per line.

use std::io::{BufRead, BufReader};

use serde_json::{Map, Value};

use super::{check_bytes, BadBytes, Fields, Raw, Reader, RecordError};

/// Reads a JSON Lines stream one line at a time.
pub(super) struct JsonlSource {
    name: String,
    reader: BufReader<Reader>,
    /// Number of the last line read (1-based).
    line: u64,
    /// Byte offset in the file of the next line.
    offset: u64,
    buf: Vec<u8>,
    done: bool,
}

impl JsonlSource {
    /// `offset` is where `reader` starts in the file (3 after a byte order mark).
    pub(super) fn new(name: String, reader: Reader, offset: u64) -> Self {
        JsonlSource {
            name,
            reader: BufReader::new(reader),
            line: 0,
            offset,
            buf: Vec::new(),
            done: false,
        }
    }

    pub(super) fn next_raw(&mut self) -> Option<Raw> {
        while !self.done {
            self.buf.clear();
            let start = self.offset;
            let read = self.reader.read_until(b'\n', &mut self.buf);
            self.line += 1;
            let record = format!("{}:{}", self.name, self.line);
            match read {
                Ok(0) => self.done = true,
                Ok(n) => {
                    self.offset += n as u64;
                    if self.buf.trim_ascii().is_empty() {
                        continue;
                    }
                    // The line without its terminator, so that serde's messages speak of
                    // this line only.
                    let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    return Some(parse_line(record, line, start));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(RecordError::new(
                        record,
                        None,
                        format!("read error: {e}"),
                    )));
                }
            }
        }
        None
    }
}

/// Parses one non-blank line that starts at byte `offset` of the file.
fn parse_line(record: String, bytes: &[u8], offset: u64) -> Raw {
    let fail = |id: Option<String>, message: String| RecordError::new(&*record, id, message);
    let line = match check_bytes(bytes) {
        Ok(line) => line,
        Err(bad) => {
            let (what, at) = match bad {
                BadBytes::Nul(at) => ("binary content: NUL byte", at),
                BadBytes::Utf8(at) => ("invalid UTF-8", at),
            };
            let absolute = offset + at as u64;
            let message = format!("{what} at byte offset {absolute} (byte {at} of the line)");
            return Err(fail(None, message));
        }
    };
    let mut object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            let message = format!("expected a JSON object, found {}", kind(&other));
            return Err(fail(None, message));
        }
        Err(e) => return Err(fail(None, format!("malformed JSON: {e}"))),
    };
    let id = match object.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            let message = format!(
                "field `id` must be a string or a number, found {}",
                kind(&other)
            );
            return Err(fail(None, message));
        }
    };
    let mut take = |key: &str| string_field(&mut object, key).map_err(|m| fail(id.clone(), m));
    let fields = Fields {
        source: take("source")?,
        text: take("text")?,
        title: take("title")?,
        date: take("date")?,
        url: take("url")?,
        id,
    };
    super::finish(record, fields)
}

/// A string field; absent and `null` are `None`, other types are an error.
fn string_field(
    object: &mut Map<String, Value>,
    key: &str,
) -> std::result::Result<Option<String>, String> {
    match object.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "field `{key}` must be a string, found {}",
            kind(&other)
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
