//! Folders of `.txt` files (with an optional `manifest.csv`) and single `.txt` files.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::{check_bytes, BadBytes, Fields, Raw, RecordError, BOM};

/// Name of the manifest looked for directly in a given folder.
const MANIFEST: &str = "manifest.csv";

/// The `.txt` files of one input, read one at a time.
pub(super) struct TxtFiles {
    files: std::vec::IntoIter<TxtFile>,
    /// Longest article text accepted, in bytes.
    max: u64,
}

/// A file to read and the metadata it gets.
struct TxtFile {
    path: PathBuf,
    fields: Fields,
}

impl TxtFiles {
    /// A single `.txt` file: id and source are its stem. `max`: the article size limit.
    pub(super) fn single(path: &Path, max: u64) -> Self {
        let stem = stem(path);
        let file = TxtFile {
            path: path.to_path_buf(),
            fields: Fields {
                id: Some(stem.clone()),
                source: Some(stem),
                ..Fields::default()
            },
        };
        TxtFiles {
            files: vec![file].into_iter(),
            max,
        }
    }

    /// All `.txt` files under `root`, sorted by path, with metadata from the manifest or the
    /// folder layout. Problems found while listing go to `errors`; `None` when the folder cannot
    /// be used at all. `max`: the article size limit.
    pub(super) fn folder(root: &Path, max: u64, errors: &mut Vec<RecordError>) -> Option<Self> {
        let mut found = Vec::new();
        walk(root, Path::new(""), &mut found, errors);
        found.sort();

        let manifest_path = root.join(MANIFEST);
        let mut manifest = if manifest_path.is_file() {
            match Manifest::read(&manifest_path) {
                Ok(manifest) => Some(manifest),
                Err(message) => {
                    errors.push(RecordError::new(
                        manifest_path.display().to_string(),
                        None,
                        format!(
                            "{message}; folder {} skipped so that no article gets a wrong source",
                            root.display()
                        ),
                    ));
                    return None;
                }
            }
        } else {
            None
        };

        let mut files = Vec::with_capacity(found.len());
        let mut keys = HashSet::with_capacity(found.len());
        for rel in found {
            let key = slash_path(&rel);
            let path = root.join(&rel);
            keys.insert(key.clone());
            let default_id = slash_path(&rel.with_extension(""));
            let entry = match manifest.as_mut() {
                Some(m) => {
                    let entry = m.entries.remove(&key);
                    if m.skipped.contains(&key) {
                        // Its row is broken and already reported.
                        continue;
                    }
                    entry
                }
                None => None,
            };
            let fields = match entry {
                Some(entry) => Fields {
                    id: Some(entry.id.unwrap_or(default_id)),
                    ..entry.fields
                },
                None => layout_fields(&rel, default_id),
            };
            files.push(TxtFile { path, fields });
        }

        if let Some(mut m) = manifest {
            // Rows left over name files that are not read.
            for (key, entry) in std::mem::take(&mut m.entries) {
                let message = if root.join(&key).exists() {
                    format!(
                        "manifest names {key}, which is not read: only .txt files are read \
                         and names starting with '.' are skipped"
                    )
                } else {
                    format!("manifest names missing file {key}")
                };
                m.errors.push((
                    entry.row,
                    RecordError::new(m.row_name(entry.row), entry.id, message),
                ));
            }
            m.errors.sort_by_key(|(row, _)| *row);
            errors.extend(m.errors.into_iter().map(|(_, e)| e));
        }

        if files.is_empty() && errors.is_empty() {
            errors.push(RecordError::new(
                root.display().to_string(),
                None,
                "no .txt files found in folder",
            ));
        }
        Some(TxtFiles {
            files: files.into_iter(),
            max,
        })
    }

    pub(super) fn next_raw(&mut self) -> Option<Raw> {
        let file = self.files.next()?;
        Some(read_txt(file, self.max))
    }
}

/// Source and id from the folder layout: a file in a sub-folder belongs to that folder's name,
/// a file directly in the given folder to its stem.
fn layout_fields(rel: &Path, id: String) -> Fields {
    let parent = rel
        .parent()
        .and_then(Path::file_name)
        .map(|p| p.to_string_lossy().into_owned());
    Fields {
        id: Some(id),
        source: Some(parent.unwrap_or_else(|| stem(rel))),
        ..Fields::default()
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A relative path with `/` separators.
fn slash_path(rel: &Path) -> String {
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

fn is_txt(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
}

/// Collects the `.txt` files under `root/rel` (paths relative to `root`), skipping hidden
/// entries and not following links to folders.
fn walk(root: &Path, rel: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<RecordError>) {
    let dir = root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            let message = format!("cannot read folder: {e}");
            errors.push(RecordError::new(dir.display().to_string(), None, message));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let message = format!("cannot read folder entry: {e}");
                errors.push(RecordError::new(dir.display().to_string(), None, message));
                continue;
            }
        };
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let child = rel.join(&name);
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                let message = format!("cannot read file type: {e}");
                errors.push(RecordError::new(
                    entry.path().display().to_string(),
                    None,
                    message,
                ));
                continue;
            }
        };
        if file_type.is_dir() {
            walk(root, &child, found, errors);
        } else if is_txt(&child) {
            // Regular files, and links that lead to a file (links to folders are not followed).
            if file_type.is_file() || fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                found.push(child);
            }
        }
    }
}

/// Reads one `.txt` file into an article; a file whose text is longer than `max` bytes is an
/// error, found from its metadata without reading it.
fn read_txt(file: TxtFile, max: u64) -> Raw {
    let record = file.path.display().to_string();
    let fail = |message: String| Err(RecordError::new(&*record, file.fields.id.clone(), message));
    let mut bytes = match read_bounded(&file.path, max) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(text_len)) => return fail(super::too_long_message(text_len, max)),
        Err(e) => return fail(format!("cannot read file: {e}")),
    };
    let utf16 = bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF");
    let skip = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    match check_bytes(&bytes[skip..]) {
        Ok(_) => {}
        Err(BadBytes::Nul(at)) => {
            let hint = if utf16 {
                " (the file looks like UTF-16; save it as UTF-8)"
            } else {
                ""
            };
            return fail(format!(
                "binary content: NUL byte at byte offset {}{hint}",
                at + skip
            ));
        }
        Err(BadBytes::Utf8(at)) => {
            return fail(format!("invalid UTF-8 at byte offset {}", at + skip));
        }
    }
    bytes.drain(..skip);
    let text = String::from_utf8(bytes).expect("checked above");
    let fields = Fields {
        text: Some(text),
        ..file.fields
    };
    super::finish(record, fields, max)
}

/// The bytes of the file at `path`, or `Ok(Err(len))` when its text (the file less a byte
/// order mark) is `len` bytes, over `max`. The length comes from the metadata, so an oversized
/// file is not read (only its first three bytes, to tell a byte order mark); reading stops
/// past the limit, should the file grow meanwhile.
fn read_bounded(path: &Path, max: u64) -> std::io::Result<Result<Vec<u8>, u64>> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    let bom_len = BOM.len() as u64;
    if len > max.saturating_add(bom_len) {
        let mut head = Vec::with_capacity(BOM.len());
        (&mut file).take(bom_len).read_to_end(&mut head)?;
        return Ok(Err(if head == BOM { len - bom_len } else { len }));
    }
    // One byte over the limit (plus a byte order mark) is enough to tell.
    let cap = max.saturating_add(bom_len).saturating_add(1);
    let mut bytes = Vec::with_capacity(len.min(cap) as usize);
    file.take(cap).read_to_end(&mut bytes)?;
    let text_len = bytes.len() as u64 - if bytes.starts_with(BOM) { bom_len } else { 0 };
    if text_len > max {
        return Ok(Err(text_len.max(len - bom_len.min(len))));
    }
    Ok(Ok(bytes))
}

/// One usable manifest row.
struct ManifestEntry {
    row: u64,
    id: Option<String>,
    /// source, title, date, url.
    fields: Fields,
}

/// A folder's `manifest.csv`, read whole (it holds metadata, not article text).
struct Manifest {
    name: String,
    /// Normalised relative file path → row.
    entries: HashMap<String, ManifestEntry>,
    /// Files whose row is broken: not read at all.
    skipped: HashSet<String>,
    /// Row errors, with their row for ordering.
    errors: Vec<(u64, RecordError)>,
}

impl Manifest {
    fn row_name(&self, row: u64) -> String {
        format!("{}:row {row}", self.name)
    }

    /// Reads the manifest. `Err` when it cannot be used at all (unreadable, no `file` or `source`
    /// column); broken rows are collected in `errors`.
    fn read(path: &Path) -> std::result::Result<Self, String> {
        let (reader, _) = super::open_file(path).map_err(|e| e.message)?;
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = csv
            .byte_headers()
            .map_err(|e| format!("cannot read manifest header: {e}"))?
            .clone();
        let names = super::table::header_names(&header);
        let find = |want: &str| names.iter().position(|n| n == want);
        let (Some(file_col), Some(source_col)) = (find("file"), find("source")) else {
            return Err(format!(
                "manifest header must have the columns `file` and `source` (header has: {})",
                names.join(", ")
            ));
        };
        let optional = [find("id"), find("title"), find("date"), find("url")];

        let mut manifest = Manifest {
            name: path.display().to_string(),
            entries: HashMap::new(),
            skipped: HashSet::new(),
            errors: Vec::new(),
        };
        let mut record = csv::ByteRecord::new();
        let mut row = 1u64;
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(true) => row += 1,
                Ok(false) => break,
                Err(e) => {
                    let error = RecordError::new(manifest.row_name(row + 1), None, format!("{e}"));
                    manifest.errors.push((row + 1, error));
                    break;
                }
            }
            if let Err(error) =
                manifest.add_row(row, &record, header.len(), file_col, source_col, optional)
            {
                manifest.errors.push((row, error));
            }
        }
        Ok(manifest)
    }

    fn add_row(
        &mut self,
        row: u64,
        record: &csv::ByteRecord,
        width: usize,
        file_col: usize,
        source_col: usize,
        [id_col, title_col, date_col, url_col]: [Option<usize>; 4],
    ) -> std::result::Result<(), RecordError> {
        let name = self.row_name(row);
        let cell = |col: Option<usize>| -> std::result::Result<Option<String>, RecordError> {
            let Some(bytes) = col.and_then(|c| record.get(c)) else {
                return Ok(None);
            };
            let text = std::str::from_utf8(bytes).map_err(|e| {
                let message = format!("invalid UTF-8 at byte {} of a field", e.valid_up_to());
                RecordError::new(&*name, None, message)
            })?;
            let text = text.trim();
            Ok((!text.is_empty()).then(|| text.to_string()))
        };
        let id = cell(id_col)?;
        let fail = |message: String| RecordError::new(&*name, id.clone(), message);
        if record.len() != width {
            return Err(fail(format!(
                "wrong number of fields: expected {width} as in the header, found {}",
                record.len()
            )));
        }
        let Some(file) = cell(Some(file_col))? else {
            return Err(fail("required field `file` is empty".to_string()));
        };
        let key = normalise(&file).ok_or_else(|| {
            fail(format!(
                "`file` must be a path inside the folder, found {file}"
            ))
        })?;
        if let Some(first) = self.entries.get(&key) {
            return Err(fail(format!(
                "{key} is already listed in row {}",
                first.row
            )));
        }
        let Some(source) = cell(Some(source_col))? else {
            self.skipped.insert(key.clone());
            return Err(fail(format!(
                "required field `source` is empty; {key} skipped"
            )));
        };
        let entry = ManifestEntry {
            row,
            id,
            fields: Fields {
                source: Some(source),
                title: cell(title_col)?,
                date: cell(date_col)?,
                url: cell(url_col)?,
                ..Fields::default()
            },
        };
        self.entries.insert(key, entry);
        Ok(())
    }
}

/// A manifest `file` value as a `/`-separated relative path, or `None` when it leaves the folder.
fn normalise(file: &str) -> Option<String> {
    let unified = file.replace('\\', "/");
    let mut parts = Vec::new();
    for component in Path::new(&unified).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}
