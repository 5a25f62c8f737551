//! JSON Lines: one article object per line.

use std::io::{self, BufRead, BufReader};

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
    /// Longest article text accepted, in bytes.
    max: u64,
}

/// A line buffer that grew past this is released after its line, so that an oversized record
/// does not keep its memory.
const KEEP_BUF_BYTES: usize = 1 << 20;

impl JsonlSource {
    /// `offset` is where `reader` starts in the file (3 after a byte order mark); `max` is the
    /// article size limit.
    pub(super) fn new(name: String, reader: Reader, offset: u64, max: u64) -> Self {
        JsonlSource {
            name,
            reader: BufReader::new(reader),
            line: 0,
            offset,
            buf: Vec::new(),
            done: false,
            max,
        }
    }

    pub(super) fn next_raw(&mut self) -> Option<Raw> {
        while !self.done {
            self.buf.clear();
            let start = self.offset;
            let cap = super::jsonl_line_cap(self.max);
            let read = read_line_capped(&mut self.reader, &mut self.buf, cap);
            self.line += 1;
            let record = format!("{}:{}", self.name, self.line);
            match read {
                Ok(Line { len: 0, .. }) => self.done = true,
                Ok(Line {
                    len,
                    skipped: true,
                    newline,
                    blank,
                }) => {
                    self.offset += len;
                    if blank {
                        continue;
                    }
                    let message = format!(
                        "line is {} bytes, too long for an article text within the limit of {} \
                         (--max-article-bytes)",
                        super::grouped(len - u64::from(newline)),
                        super::grouped(self.max)
                    );
                    return Some(Err(RecordError::new(record, None, message)));
                }
                Ok(Line { len, .. }) => {
                    self.offset += len;
                    if self.buf.trim_ascii().is_empty() {
                        continue;
                    }
                    // The line without its terminator, so that serde's messages speak of
                    // this line only.
                    let line = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let parsed = parse_line(record, line, start, self.max);
                    if self.buf.capacity() > KEEP_BUF_BYTES {
                        self.buf = Vec::new();
                    }
                    return Some(parsed);
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

/// One line as read by [`read_line_capped`].
struct Line {
    /// Bytes consumed, terminator included; 0 at the end of the input.
    len: u64,
    /// The line was longer than the cap: it was consumed but not kept.
    skipped: bool,
    /// It ended with `\n` (rather than at the end of the input).
    newline: bool,
    /// A skipped line held only whitespace.
    blank: bool,
}

/// Reads one line (up to and including `\n`) into `buf`, like `read_until`, unless it is longer
/// than `cap` bytes: then the rest of it is consumed without being kept (`buf` is left empty),
/// so that an endless line costs constant memory.
fn read_line_capped(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: u64) -> io::Result<Line> {
    let mut line = Line {
        len: 0,
        skipped: false,
        newline: false,
        blank: true,
    };
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(line);
        }
        let (used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let part = &available[..used];
        if line.skipped {
            line.blank = line.blank && part.trim_ascii().is_empty();
        } else if (buf.len() + used) as u64 > cap {
            line.skipped = true;
            line.blank = buf.trim_ascii().is_empty() && part.trim_ascii().is_empty();
            *buf = Vec::new();
        } else {
            buf.extend_from_slice(part);
        }
        reader.consume(used);
        line.len += used as u64;
        if done {
            line.newline = true;
            return Ok(line);
        }
    }
}

/// Parses one non-blank line that starts at byte `offset` of the file; `max` is the article size
/// limit.
fn parse_line(record: String, bytes: &[u8], offset: u64, max: u64) -> Raw {
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
    super::finish(record, fields, max)
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
