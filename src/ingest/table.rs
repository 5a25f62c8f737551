//! CSV and TSV with a header row.

use super::{check_bytes, BadBytes, Fields, Raw, Reader, RecordError};

/// Where the known columns are.
struct Columns {
    id: usize,
    source: usize,
    text: usize,
    title: Option<usize>,
    date: Option<usize>,
    url: Option<usize>,
}

/// Reads a CSV/TSV stream one row at a time.
pub(super) struct TableSource {
    name: String,
    reader: csv::Reader<Reader>,
    columns: Columns,
    /// Number of fields in the header.
    width: usize,
    /// Row number of the last row read; the header is row 1.
    row: u64,
    record: csv::ByteRecord,
    done: bool,
    /// Longest article text accepted, in bytes.
    max: u64,
}

/// A row buffer that grew past this is released after its row, so that an oversized record does
/// not keep its memory.
const KEEP_RECORD_BYTES: usize = 1 << 20;

/// Header cells as matched: trimmed, lower-case.
pub(super) fn header_names(header: &csv::ByteRecord) -> Vec<String> {
    header
        .iter()
        .map(|cell| String::from_utf8_lossy(cell).trim().to_ascii_lowercase())
        .collect()
}

/// Whether `line` read as a header with this delimiter has a `text` column (stdin detection).
pub(super) fn header_has_text(line: &[u8], delimiter: u8) -> bool {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(line);
    let mut record = csv::ByteRecord::new();
    matches!(reader.read_byte_record(&mut record), Ok(true))
        && header_names(&record).iter().any(|n| n == "text")
}

impl TableSource {
    /// Reads the header; `Err` when it is unreadable or lacks a required column. `max` is the
    /// article size limit.
    pub(super) fn new(
        name: String,
        reader: Reader,
        delimiter: u8,
        max: u64,
    ) -> std::result::Result<Self, RecordError> {
        let fail = |message: String| RecordError::new(&*name, None, message);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(reader);
        let header = reader
            .byte_headers()
            .map_err(|e| fail(format!("cannot read header: {e}")))?
            .clone();
        if header.is_empty() {
            return Err(fail(
                "no header row: expected the columns id, source, text".to_string(),
            ));
        }
        let names = header_names(&header);
        let index = |want: &str| -> std::result::Result<Option<usize>, RecordError> {
            let mut found = names.iter().enumerate().filter(|(_, n)| *n == want);
            let first = found.next().map(|(i, _)| i);
            if found.next().is_some() {
                return Err(fail(format!(
                    "column `{want}` appears more than once in the header"
                )));
            }
            Ok(first)
        };
        let required = |want: &str| {
            index(want)?.ok_or_else(|| {
                fail(format!(
                    "missing required column `{want}` (header has: {})",
                    names.join(", ")
                ))
            })
        };
        let columns = Columns {
            id: required("id")?,
            source: required("source")?,
            text: required("text")?,
            title: index("title")?,
            date: index("date")?,
            url: index("url")?,
        };
        Ok(TableSource {
            name,
            reader,
            columns,
            width: header.len(),
            row: 1,
            record: csv::ByteRecord::new(),
            done: false,
            max,
        })
    }

    pub(super) fn next_raw(&mut self) -> Option<Raw> {
        if self.done {
            return None;
        }
        let read = self.reader.read_byte_record(&mut self.record);
        self.row += 1;
        let record = format!("{}:row {}", self.name, self.row);
        match read {
            Ok(true) => {
                let parsed = self.parse_row(record);
                if self.record.as_slice().len() > KEEP_RECORD_BYTES {
                    self.record = csv::ByteRecord::new();
                }
                Some(parsed)
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(RecordError::new(
                    record,
                    None,
                    format!("read error: {e}"),
                )))
            }
        }
    }

    fn parse_row(&self, record: String) -> Raw {
        let row = &self.record;
        let cell = |column: &str, at: usize| -> std::result::Result<Option<String>, String> {
            let Some(bytes) = row.get(at) else {
                return Ok(None);
            };
            match check_bytes(bytes) {
                Ok(text) => Ok(Some(text.to_string())),
                Err(BadBytes::Nul(i)) => Err(format!(
                    "binary content: NUL byte in column `{column}` at byte {i} of the field"
                )),
                Err(BadBytes::Utf8(i)) => Err(format!(
                    "invalid UTF-8 in column `{column}` at byte {i} of the field"
                )),
            }
        };
        let c = &self.columns;
        // The id, when readable, names the record in every error.
        let id = cell("id", c.id)
            .ok()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let fail = |message: String| Err(RecordError::new(&*record, id.clone(), message));
        if row.len() != self.width {
            return fail(format!(
                "wrong number of fields: expected {} as in the header, found {}",
                self.width,
                row.len()
            ));
        }
        // Measured before anything is copied.
        if let Some(text) = row.get(c.text) {
            if text.len() as u64 > self.max {
                return fail(super::too_long_message(text.len() as u64, self.max));
            }
        }
        let optional = |column: &str, at: Option<usize>| match at {
            Some(at) => cell(column, at),
            None => Ok(None),
        };
        let read = || -> std::result::Result<Fields, String> {
            Ok(Fields {
                id: cell("id", c.id)?,
                source: cell("source", c.source)?,
                text: cell("text", c.text)?,
                title: optional("title", c.title)?,
                date: optional("date", c.date)?,
                url: optional("url", c.url)?,
            })
        };
        match read() {
            Ok(fields) => super::finish(record, fields, self.max),
            Err(message) => fail(message),
        }
    }
}
