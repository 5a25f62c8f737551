//! # Reading articles
//!
//! [`open`] turns the inputs given on the command line into a stream of [`Article`]s
//! (`id`, `source`, `text`, and optionally `title`, `date`, `url`). Inputs are read in the order
//! given; the files of a folder are read sorted by path, so the same inputs always give the same
//! stream. The stream never holds the corpus in memory: JSONL is read line by line, CSV/TSV row by
//! row and folders one `.txt` file at a time. What is kept is the ids seen so far (to catch
//! duplicates) and, for a folder, the list of its file paths and its `manifest.csv`.
//!
//! A record that cannot be read never stops the run: it comes out of the stream as a
//! [`RecordError`] naming the record (`path` for a file, `path:LINE` for JSONL, `path:row N` for
//! CSV/TSV, `<stdin>:LINE` / `<stdin>:row N` for stdin), the article id when it could be read, and
//! what is wrong. An input path that does not exist or cannot be opened is reported the same way.
//!
//! Article text is kept byte-for-byte as read: nothing is trimmed or normalised (carriage returns
//! included), because later stages keep byte offsets into it. The one exception is a UTF-8 byte
//! order mark at the start of a file, which is dropped. `id`, `source`, `title`, `date` and `url`
//! have surrounding whitespace trimmed, and an empty optional field counts as absent.
//!
//! ## A folder of `.txt` files
//!
//! Every file ending in `.txt` (any case) under the folder is one article, searched recursively.
//! Other files are ignored, except `manifest.csv` directly in the folder (below). Files and folders
//! whose name starts with `.` are skipped (editor and OS clutter such as `._story.txt`), and
//! symbolic links to folders are not followed; symbolic links to files are read.
//!
//! * **id**: the path relative to the folder without the `.txt` extension, with `/` separators
//!   (`cnn/2021-09-08`).
//! * **source**: the name of the folder directly containing the file when the file is in a
//!   sub-folder (`corpus/cnn/a.txt` → `cnn`; `corpus/cnn/2021/a.txt` → `2021`), or the file name
//!   without extension when the file sits directly in the given folder.
//!
//! ### `manifest.csv`
//!
//! When the folder holds a `manifest.csv`, it sets the metadata of the files it lists. Its header
//! must have the columns `file` and `source`, and may have `id`, `title`, `date` and `url`:
//!
//! ```csv
//! file,source,id,title,date,url
//! cnn/a.txt,CNN,cnn-001,"Taliban form government",2021-09-07,https://example.com/a
//! b.txt,Fox News,,,,
//! ```
//!
//! `file` is relative to the folder (`/` or `\` separators). An empty `id` keeps the id from the
//! path. `.txt` files the manifest does not list get the source and id from the rules above.
//! A manifest row naming a missing file, or one that is not read (not `.txt`, or hidden), is an
//! error, as is a second row for the same file (the first row counts) and a row with an empty
//! `file` or `source` (that file is then skipped, so that it cannot be counted under a wrong
//! source). A manifest that cannot be read or lacks the `file` or
//! `source` column makes the whole folder an error, for the same reason.
//!
//! A single `.txt` file can be given too: its id and source are the file name without extension.
//!
//! ## JSON Lines (`.jsonl`, `.ndjson`)
//!
//! One JSON object per line, with `id`, `source` and `text` required and `title`, `date`, `url`
//! optional; other fields are ignored and blank lines are skipped. `id` may be a string or a
//! number (a number is used as written by JSON, e.g. `42`). The other fields must be strings; a
//! `null` counts as absent.
//!
//! ```json
//! {"id": "cnn-001", "source": "CNN", "text": "The Taliban ...", "date": "2021-09-07"}
//! ```
//!
//! ## CSV (`.csv`) and TSV (`.tsv`)
//!
//! A header row, then one article per row. Required columns: `id`, `source`, `text`; optional:
//! `title`, `date`, `url`; other columns are ignored. Column names are matched ignoring case and
//! surrounding spaces. `.tsv` files are tab-separated. Both follow the usual CSV quoting (as
//! written by spreadsheets, pandas and Python's `csv` module): a field in double quotes may hold
//! the delimiter, line breaks and doubled `""` quotes. Lines that are completely empty are
//! skipped. Every row must have as many fields as the header. Rows are numbered as a spreadsheet
//! numbers them: the header is row 1, the first article row 2.
//!
//! ## stdin (`-`)
//!
//! `-` reads stdin. The format is detected from the content: JSON Lines if the first non-blank
//! character is `{`, otherwise CSV (or TSV) if the first non-blank line is a header with a `text`
//! column. Plain text on stdin is refused: save it as a `.txt` file and pass the file.
//!
//! ## Errors
//!
//! Each of these is one [`RecordError`]; the stream goes on with the next record:
//!
//! | problem | message |
//! |---|---|
//! | input missing or unreadable | `cannot open input: …` |
//! | unknown extension | `unsupported input format .xyz: expected a folder of .txt files, .jsonl, .csv or .tsv` |
//! | bytes that are not UTF-8 | `invalid UTF-8 at byte offset N` (JSONL adds the byte within the line; CSV/TSV name the column and the byte within the field) |
//! | NUL bytes (binary file, UTF-16) | `binary content: NUL byte at byte offset N` (placed like invalid UTF-8) |
//! | empty or whitespace-only text | `text is empty or whitespace-only` |
//! | required field absent / empty | ``missing required field `source` `` / ``required field `id` is empty`` |
//! | broken JSON line | `malformed JSON: …` (serde's message) |
//! | row with a wrong number of fields | `wrong number of fields: expected 3 as in the header, found 2` |
//! | header without a required column | ``missing required column `text` (header has: …)`` |
//! | id already seen in this run | `duplicate id X, first seen in REC` (the first one is kept) |
//! | text over [`IngestOptions::max_article_bytes`] | `article text is 41,943,040 bytes, over the limit of 1,048,576 (--max-article-bytes)` |
//! | JSONL line too long to hold such a text | `line is N bytes, too long for an article text within the limit of M (--max-article-bytes)` |
//!
//! Byte offsets count from 0 from the start of the file (byte order mark included).
//!
//! ## Article size
//!
//! An article whose text is longer than [`IngestOptions::max_article_bytes`] (default
//! [`DEFAULT_MAX_ARTICLE_BYTES`], 1 MiB; bytes of UTF-8, after a byte order mark is dropped) is
//! a [`RecordError`] with its id, and the stream goes on. The limit also bounds the memory a
//! pathological record can take:
//!
//! * a `.txt` file is measured from its metadata and not read at all when it is over the limit;
//! * a JSONL line is read into memory only up to [`jsonl_line_cap`] bytes (the longest line that
//!   can hold a text within the limit: six bytes per text byte for `\u00XX` escapes, plus 1 MiB
//!   for the other fields); a longer line is skipped as it is read, in constant memory, and
//!   reported without an id, which cannot be read without reading the line. A line under the
//!   cap is parsed, so its error has the id;
//! * a CSV/TSV row is read whole (the CSV reader has no bound) and its `text` field is measured
//!   before it is copied; the row's buffer is released after an oversized row.
//!
//! Only one oversized record is in memory at a time, and none is kept once reported.

mod folder;
mod jsonl;
mod table;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One news article.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Article {
    /// Unique within a run.
    pub id: String,
    /// The outlet that published the article.
    pub source: String,
    /// The article text, byte-for-byte as read (minus a leading UTF-8 byte order mark).
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A record that could not be read. `record` names it: file path, `"path:line"` for JSONL,
/// `"path:row N"` for CSV, `"<stdin>:line"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordError {
    /// Where the record is: `path`, `path:LINE` (JSONL, 1-based), `path:row N` (CSV/TSV, header
    /// = row 1), `<stdin>:LINE` or `<stdin>:row N`.
    pub record: String,
    /// The article id, when it could be read.
    pub id: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl RecordError {
    fn new(record: impl Into<String>, id: Option<String>, message: impl Into<String>) -> Self {
        RecordError {
            record: record.into(),
            id,
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.record)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RecordError {}

/// Name used for stdin in record names.
pub const STDIN_NAME: &str = "<stdin>";

/// Default for [`IngestOptions::max_article_bytes`]: 1 MiB (1,048,576 bytes). The longest news
/// articles are well under 100 KB of text; 1 MiB leaves room for long reports and transcripts
/// (an article is scored as one unit: its token states take about 0.8 GB per MB of text)
/// while refusing a dump or binary blob before it costs seconds and gigabytes downstream.
pub const DEFAULT_MAX_ARTICLE_BYTES: u64 = 1024 * 1024;

/// How [`open_with`] reads its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOptions {
    /// Longest article text accepted, in bytes (UTF-8, after a byte order mark is dropped); a
    /// longer one is a [`RecordError`] (see [Article size](crate::ingest#article-size)). `u64::MAX` means
    /// no limit. Default [`DEFAULT_MAX_ARTICLE_BYTES`].
    pub max_article_bytes: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_article_bytes: DEFAULT_MAX_ARTICLE_BYTES,
        }
    }
}

/// The longest JSONL line that is read into memory under a text limit of `max_article_bytes`:
/// a text within the limit takes at most six bytes per text byte in JSON (`\u00XX` escapes),
/// and the other fields get 1 MiB. A longer line cannot hold an acceptable article.
pub fn jsonl_line_cap(max_article_bytes: u64) -> u64 {
    max_article_bytes.saturating_mul(6).saturating_add(1 << 20)
}

/// `n` with thousands separators: `41943040` → `41,943,040`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The message for an article text of `len` bytes over the limit `max`.
fn too_long_message(len: u64, max: u64) -> String {
    format!(
        "article text is {} bytes, over the limit of {} (--max-article-bytes)",
        grouped(len),
        grouped(max)
    )
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

type Reader = Box<dyn Read + Send>;

/// An article with the name of the record it came from (for duplicate messages), or an error.
type Raw = std::result::Result<(Article, String), RecordError>;

/// Streams articles from the given inputs in a deterministic order (inputs in the order given;
/// files in a folder sorted by path).
/// Each item is either an article or a record error; one broken record never stops the stream.
/// An input path that does not exist or cannot be opened is yielded as a RecordError too.
///
/// `-` means stdin. See the [module documentation](self) for the formats and the errors.
/// Uses the default [`IngestOptions`]; see [`open_with`].
pub fn open(inputs: &[PathBuf]) -> Articles {
    open_with(inputs, &IngestOptions::default())
}

/// [`open`] with options: an article whose text is longer than
/// [`IngestOptions::max_article_bytes`] comes out as a [`RecordError`] (record and id, when it
/// could be read) and the stream goes on with the next record.
pub fn open_with(inputs: &[PathBuf], options: &IngestOptions) -> Articles {
    Articles {
        inputs: inputs.iter().cloned().collect(),
        options: *options,
        current: None,
        pending: VecDeque::new(),
        seen: HashMap::new(),
        stdin: None,
        stdin_used: false,
    }
}

/// Reads every input to the end: the articles, and the records that could not be read, each in
/// stream order. Holds the whole corpus in memory; prefer [`open`] for large inputs.
pub fn read_all(inputs: &[PathBuf]) -> (Vec<Article>, Vec<RecordError>) {
    collect(open(inputs))
}

/// [`read_all`] with options (see [`open_with`]).
pub fn read_all_with(
    inputs: &[PathBuf],
    options: &IngestOptions,
) -> (Vec<Article>, Vec<RecordError>) {
    collect(open_with(inputs, options))
}

fn collect(articles: Articles) -> (Vec<Article>, Vec<RecordError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for item in articles {
        match item {
            Ok(article) => ok.push(article),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

/// The stream returned by [`open`].
pub struct Articles {
    /// Inputs not opened yet.
    inputs: VecDeque<PathBuf>,
    options: IngestOptions,
    current: Option<Source>,
    pending: VecDeque<RecordError>,
    /// id → record it was first seen in.
    seen: HashMap<String, String>,
    /// Replaces the process's stdin (tests).
    stdin: Option<Reader>,
    stdin_used: bool,
}

impl fmt::Debug for Articles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Articles")
            .field("inputs_left", &self.inputs)
            .field("ids_seen", &self.seen.len())
            .finish_non_exhaustive()
    }
}

enum Source {
    Files(folder::TxtFiles),
    Jsonl(jsonl::JsonlSource),
    Table(table::TableSource),
}

impl Source {
    fn next_raw(&mut self) -> Option<Raw> {
        match self {
            Source::Files(s) => s.next_raw(),
            Source::Jsonl(s) => s.next_raw(),
            Source::Table(s) => s.next_raw(),
        }
    }
}

impl Iterator for Articles {
    type Item = std::result::Result<Article, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Err(e));
            }
            if let Some(source) = &mut self.current {
                match source.next_raw() {
                    Some(Ok((article, record))) => return Some(self.first_time(article, record)),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.current = None,
                }
                continue;
            }
            let input = self.inputs.pop_front()?;
            self.start(&input);
        }
    }
}

impl std::iter::FusedIterator for Articles {}

impl Articles {
    /// Like [`open`], with `reader` standing in for stdin.
    #[cfg(test)]
    fn with_stdin(inputs: &[PathBuf], reader: Reader) -> Self {
        Self::with_stdin_and(inputs, reader, &IngestOptions::default())
    }

    /// Like [`open_with`], with `reader` standing in for stdin.
    #[cfg(test)]
    fn with_stdin_and(inputs: &[PathBuf], reader: Reader, options: &IngestOptions) -> Self {
        let mut articles = open_with(inputs, options);
        articles.stdin = Some(reader);
        articles
    }

    /// Keeps the first article with a given id; later ones become errors.
    fn first_time(
        &mut self,
        article: Article,
        record: String,
    ) -> std::result::Result<Article, RecordError> {
        match self.seen.entry(article.id.clone()) {
            Entry::Occupied(first) => {
                let message = format!("duplicate id {}, first seen in {}", article.id, first.get());
                Err(RecordError::new(record, Some(article.id), message))
            }
            Entry::Vacant(slot) => {
                slot.insert(record);
                Ok(article)
            }
        }
    }

    /// Opens one input, leaving a source in `current` and/or errors in `pending`.
    fn start(&mut self, input: &Path) {
        let name = input.display().to_string();
        let max = self.options.max_article_bytes;
        if input.as_os_str() == "-" {
            if self.stdin_used {
                self.fail(STDIN_NAME, "stdin (`-`) given more than once");
                return;
            }
            self.stdin_used = true;
            let reader = self.stdin.take().unwrap_or_else(|| Box::new(io::stdin()));
            match detect_stdin(reader, max) {
                Ok(source) => self.current = Some(source),
                Err(e) => self.pending.push_back(e),
            }
            return;
        }
        let meta = match std::fs::metadata(input) {
            Ok(meta) => meta,
            Err(e) => return self.fail(&name, format!("cannot open input: {e}")),
        };
        if meta.is_dir() {
            let mut errors = Vec::new();
            let files = folder::TxtFiles::folder(input, max, &mut errors);
            self.pending.extend(errors);
            self.current = files.map(Source::Files);
            return;
        }
        let ext = input
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let opened = match ext.as_deref() {
            Some("txt") => Ok(Source::Files(folder::TxtFiles::single(input, max))),
            Some("jsonl") | Some("ndjson") => open_file(input).map(|(reader, bom)| {
                Source::Jsonl(jsonl::JsonlSource::new(name, reader, bom, max))
            }),
            Some("csv") => open_file(input)
                .and_then(|(reader, _)| table::TableSource::new(name, reader, b',', max))
                .map(Source::Table),
            Some("tsv") => open_file(input)
                .and_then(|(reader, _)| table::TableSource::new(name, reader, b'\t', max))
                .map(Source::Table),
            other => {
                let shown = match other {
                    Some(ext) => format!(".{ext}"),
                    None => "(no extension)".to_string(),
                };
                Err(RecordError::new(
                    name,
                    None,
                    format!(
                        "unsupported input format {shown}: expected a folder of .txt files, \
                         .jsonl, .csv or .tsv"
                    ),
                ))
            }
        };
        match opened {
            Ok(source) => self.current = Some(source),
            Err(e) => self.pending.push_back(e),
        }
    }

    fn fail(&mut self, record: &str, message: impl Into<String>) {
        self.pending
            .push_back(RecordError::new(record, None, message));
    }
}

/// Opens a file and drops a leading byte order mark; returns the reader and the BOM length.
fn open_file(path: &Path) -> std::result::Result<(Reader, u64), RecordError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| RecordError::new(&*name, None, format!("cannot open input: {e}")))?;
    strip_bom(Box::new(file))
        .map_err(|e| RecordError::new(name, None, format!("cannot read input: {e}")))
}

/// Reads up to three bytes and drops them if they are a UTF-8 byte order mark; otherwise puts
/// them back in front of the rest.
fn strip_bom(mut reader: Reader) -> io::Result<(Reader, u64)> {
    let mut head = [0u8; 3];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if head[..got] == *BOM {
        Ok((reader, BOM.len() as u64))
    } else {
        let head = head[..got].to_vec();
        Ok((Box::new(io::Cursor::new(head).chain(reader)), 0))
    }
}

/// Picks the format of stdin from its first non-blank line. `max` is the article size limit.
fn detect_stdin(reader: Reader, max: u64) -> std::result::Result<Source, RecordError> {
    let read_error = |e: io::Error| RecordError::new(STDIN_NAME, None, format!("read error: {e}"));
    let (reader, bom) = strip_bom(reader).map_err(read_error)?;
    let mut reader = io::BufReader::new(reader);
    let mut prefix = Vec::new();
    let first_line = loop {
        let start = prefix.len();
        let n = io::BufRead::read_until(&mut reader, b'\n', &mut prefix).map_err(read_error)?;
        if n == 0 {
            break None;
        }
        if !prefix[start..].trim_ascii().is_empty() {
            break Some(start);
        }
    };
    // Nothing but blank lines: an empty corpus (an empty pipe, an empty Spark partition), read
    // as JSONL with no records.
    let Some(first_line) = first_line else {
        let rest: Reader = Box::new(io::Cursor::new(prefix).chain(reader));
        return Ok(Source::Jsonl(jsonl::JsonlSource::new(
            STDIN_NAME.to_string(),
            rest,
            bom,
            max,
        )));
    };
    // `None`: JSONL; `Some(d)`: a table with delimiter `d`.
    let line = prefix[first_line..].trim_ascii();
    let format = if line.starts_with(b"{") {
        Some(None)
    } else {
        [b',', b'\t']
            .into_iter()
            .find(|&d| table::header_has_text(line, d))
            .map(Some)
    };
    // What was read to decide goes back in front of the rest.
    let rest: Reader = Box::new(io::Cursor::new(prefix).chain(reader));
    let name = STDIN_NAME.to_string();
    match format {
        Some(None) => Ok(Source::Jsonl(jsonl::JsonlSource::new(name, rest, bom, max))),
        Some(Some(delimiter)) => {
            table::TableSource::new(name, rest, delimiter, max).map(Source::Table)
        }
        None => Err(RecordError::new(
            STDIN_NAME,
            None,
            "stdin: expected JSONL or CSV with a `text` column; for plain text pass a file",
        )),
    }
}

/// Why raw bytes are not usable text.
enum BadBytes {
    /// A NUL byte at this offset.
    Nul(usize),
    /// Invalid UTF-8 starting at this offset.
    Utf8(usize),
}

/// Checks that `bytes` is UTF-8 text without NUL bytes.
fn check_bytes(bytes: &[u8]) -> std::result::Result<&str, BadBytes> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(BadBytes::Nul(at));
    }
    std::str::from_utf8(bytes).map_err(|e| BadBytes::Utf8(e.valid_up_to()))
}

/// The fields of one record as read, before validation.
#[derive(Default)]
struct Fields {
    id: Option<String>,
    source: Option<String>,
    text: Option<String>,
    title: Option<String>,
    date: Option<String>,
    url: Option<String>,
}

fn trimmed(value: Option<String>) -> Option<String> {
    value.and_then(|v| {
        let t = v.trim();
        if t.is_empty() {
            None
        } else if t.len() == v.len() {
            Some(v)
        } else {
            Some(t.to_string())
        }
    })
}

/// Validates the fields of one record into an article. Absent required fields are listed
/// together; the text must be at most `max` bytes; present but blank `id` / `source` are
/// "empty"; the text must hold more than whitespace and no NUL character.
fn finish(record: String, fields: Fields, max: u64) -> Raw {
    let id_given = fields.id.is_some();
    let source_given = fields.source.is_some();
    let id = trimmed(fields.id);
    let mut missing = Vec::new();
    if !id_given {
        missing.push("id");
    }
    if !source_given {
        missing.push("source");
    }
    if fields.text.is_none() {
        missing.push("text");
    }
    let fail = |message: String| Err(RecordError::new(record.clone(), id.clone(), message));
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        let plural = if missing.len() > 1 { "s" } else { "" };
        return fail(format!(
            "missing required field{plural} {}",
            names.join(", ")
        ));
    }
    if let Some(len) = fields.text.as_ref().map(|t| t.len() as u64) {
        if len > max {
            return fail(too_long_message(len, max));
        }
    }
    let Some(id) = id.clone() else {
        return fail("required field `id` is empty".to_string());
    };
    let Some(source) = trimmed(fields.source) else {
        return fail("required field `source` is empty".to_string());
    };
    let text = fields.text.unwrap_or_default();
    if text.contains('\0') {
        return fail("binary content: NUL character in text".to_string());
    }
    if text.trim().is_empty() {
        return fail("text is empty or whitespace-only".to_string());
    }
    let article = Article {
        id,
        source,
        text,
        title: trimmed(fields.title),
        date: trimmed(fields.date),
        url: trimmed(fields.url),
    };
    Ok((article, record))
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
