//! Parquet form of a scored dataset: `NAME.parquet` (one row per sentence) and
//! `NAME.articles.parquet` (one row per article), both carrying the run manifest (JSON) under
//! the key-value metadata key `slant.manifest` and the record errors under `slant.errors`.
//!
//! Rows go through arrow-json (serde rows → Arrow record batches, and back), with the explicit
//! schemas below, so the Parquet columns are typed and nested (`loaded_spans` and
//! `attributions` are lists of structs, `frames` a struct of 14 probabilities). The article
//! table's count maps (`attribution`, `actors`, `loaded_terms`) are JSON text columns (duckdb:
//! `json_extract`; pandas: `json.loads`). Snappy compression; one row group per 64 articles.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::{ArticleRow, ErrorRow, Item, Manifest};
use crate::error::Error;
use crate::pipeline::records::SentenceRecord;
use crate::vocab::FRAMES;
use crate::Result;

/// Key of the manifest in the files' key-value metadata.
pub const MANIFEST_KEY: &str = "slant.manifest";
/// Key of the record errors (a JSON list) in the sentence file's key-value metadata.
pub const ERRORS_KEY: &str = "slant.errors";
/// Articles per row group.
pub const ARTICLES_PER_ROW_GROUP: usize = 64;

fn pq(e: impl std::fmt::Display, what: &Path) -> Error {
    Error::bad_data(what, None, e)
}

fn u64f(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}
fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn text_span(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Struct(Fields::from(vec![
            u64f("start"),
            u64f("end"),
            text("text", false),
        ])),
        nullable,
    )
}
fn list_of(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        false,
    )
}

/// Schema of the sentence table (the fields of [`SentenceRecord`]).
pub fn sentence_schema() -> SchemaRef {
    let span = DataType::Struct(Fields::from(vec![
        u64f("start"),
        u64f("end"),
        text("text", false),
        Field::new("score", DataType::Float64, false),
        u64f("text_start"),
        u64f("text_end"),
    ]));
    let attribution = DataType::Struct(Fields::from(vec![
        text_span("source", true),
        text_span("cue", false),
        text_span("content", true),
        text("cue_lemma", false),
        text("cue_stance", false),
        text("kind", false),
        text_span("linked_source", true),
        text("linked_from", true),
        text("speaker", true),
    ]));
    Arc::new(Schema::new(vec![
        text("article", false),
        text("source", false),
        u64f("index"),
        u64f("start"),
        u64f("end"),
        text("text", false),
        Field::new("loaded", DataType::Float64, false),
        Field::new("loaded_label", DataType::Boolean, false),
        list_of("loaded_spans", span),
        u64f("tokens"),
        Field::new("truncated", DataType::Boolean, false),
        list_of("attributions", attribution),
        Field::new("unattributed", DataType::Boolean, true),
    ]))
}

/// Schema of the article table ([`ArticleRow`]; maps of counts as JSON text).
pub fn article_schema() -> SchemaRef {
    let frames = DataType::Struct(
        FRAMES
            .iter()
            .map(|f| Field::new(*f, DataType::Float64, false))
            .collect::<Vec<_>>()
            .into(),
    );
    Arc::new(Schema::new(vec![
        text("id", false),
        text("source", false),
        text("title", true),
        text("date", true),
        text("url", true),
        u64f("sentences"),
        u64f("loaded_sentences"),
        Field::new("loaded_prob_sum", DataType::Float64, false),
        u64f("truncated"),
        Field::new("frames", frames, true),
        Field::new("span_sentences", DataType::UInt64, true),
        text("loaded_terms", true),
        text("attribution", true),
        text("actors", true),
    ]))
}

/// An article row as the article table stores it.
#[derive(Serialize, Deserialize)]
struct FlatArticle {
    id: String,
    source: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    url: Option<String>,
    sentences: u64,
    loaded_sentences: u64,
    loaded_prob_sum: f64,
    truncated: u64,
    #[serde(default)]
    frames: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    span_sentences: Option<u64>,
    #[serde(default)]
    loaded_terms: Option<String>,
    #[serde(default)]
    attribution: Option<String>,
    #[serde(default)]
    actors: Option<String>,
}

fn json_text<T: Serialize>(v: &T, empty: bool) -> Option<String> {
    (!empty).then(|| serde_json::to_string(v).expect("counts serialise"))
}

impl From<&ArticleRow> for FlatArticle {
    fn from(a: &ArticleRow) -> Self {
        Self {
            id: a.id.clone(),
            source: a.source.clone(),
            title: a.title.clone(),
            date: a.date.clone(),
            url: a.url.clone(),
            sentences: a.sentences,
            loaded_sentences: a.loaded_sentences,
            loaded_prob_sum: a.loaded_prob_sum,
            truncated: a.truncated,
            frames: (!a.frames.is_empty()).then(|| a.frames.clone()),
            span_sentences: a.span_sentences,
            loaded_terms: json_text(&a.loaded_terms, a.loaded_terms.is_empty()),
            attribution: json_text(&a.attribution, a.attribution.is_empty()),
            actors: json_text(&a.actors, a.actors.is_empty()),
        }
    }
}

impl FlatArticle {
    fn into_row(self) -> std::result::Result<ArticleRow, serde_json::Error> {
        fn parse<T: Default + for<'de> Deserialize<'de>>(
            s: Option<String>,
        ) -> std::result::Result<T, serde_json::Error> {
            s.map(|s| serde_json::from_str(&s))
                .transpose()
                .map(Option::unwrap_or_default)
        }
        Ok(ArticleRow {
            id: self.id,
            source: self.source,
            title: self.title,
            date: self.date,
            url: self.url,
            sentences: self.sentences,
            loaded_sentences: self.loaded_sentences,
            loaded_prob_sum: self.loaded_prob_sum,
            truncated: self.truncated,
            frames: self.frames.unwrap_or_default(),
            span_sentences: self.span_sentences,
            loaded_terms: parse(self.loaded_terms)?,
            attribution: parse(self.attribution)?,
            actors: parse(self.actors)?,
        })
    }
}

/// The article table of the Parquet dataset `F`: `F` with `.parquet` replaced by
/// `.articles.parquet` (`.articles.parquet` appended when it does not end in `.parquet`).
pub fn articles_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".parquet").unwrap_or(&name);
    target.with_file_name(format!("{stem}.articles.parquet"))
}

fn writer(path: &Path, schema: SchemaRef, meta: Vec<KeyValue>) -> Result<ArrowWriter<File>> {
    let f = File::create(path).map_err(|e| pq(e, path))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(meta))
        .build();
    ArrowWriter::try_new(f, schema, Some(props)).map_err(|e| pq(e, path))
}

fn batch_of<S: Serialize>(schema: &SchemaRef, rows: &[S], path: &Path) -> Result<RecordBatch> {
    let mut d = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(|e| pq(e, path))?;
    d.serialize(rows).map_err(|e| pq(e, path))?;
    Ok(d.flush()
        .map_err(|e| pq(e, path))?
        .unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}

/// Convert a finished journal into the Parquet dataset `target` (plus its article table),
/// written to temporary files and renamed, the article table first.
pub fn write_from_journal(journal: &Path, target: &Path, manifest: &Manifest) -> Result<()> {
    let articles_target = articles_path(target);
    let tmp_s = target.with_file_name(format!(
        "{}.tmp",
        target.file_name().unwrap_or_default().to_string_lossy()
    ));
    let tmp_a = articles_target.with_file_name(format!(
        "{}.tmp",
        articles_target
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    ));
    // Errors go to the metadata, which is written at the end: collect them first (they are few
    // compared with sentences; one pass over the journal reads them).
    let mut errors: Vec<ErrorRow> = Vec::new();
    super::read_jsonl(journal, false, &mut |item| {
        if let Item::Error(e) = item {
            errors.push(ErrorRow::from(&e));
        }
        Ok(())
    })?;
    let manifest_json = serde_json::to_string(manifest).expect("manifest serialises");
    let errors_json = serde_json::to_string(&errors).expect("errors serialise");
    let meta = |with_errors: bool| {
        let mut m = vec![KeyValue::new(MANIFEST_KEY.into(), manifest_json.clone())];
        if with_errors {
            m.push(KeyValue::new(ERRORS_KEY.into(), errors_json.clone()));
        }
        m
    };
    let (ss, sa) = (sentence_schema(), article_schema());
    let mut ws = writer(&tmp_s, ss.clone(), meta(true))?;
    let mut wa = writer(&tmp_a, sa.clone(), meta(false))?;
    let mut sentences: Vec<SentenceRecord> = Vec::new();
    let mut articles: Vec<FlatArticle> = Vec::new();
    let flush = |sentences: &mut Vec<SentenceRecord>,
                 articles: &mut Vec<FlatArticle>,
                 ws: &mut ArrowWriter<File>,
                 wa: &mut ArrowWriter<File>|
     -> Result<()> {
        if !sentences.is_empty() {
            ws.write(&batch_of(&ss, sentences, target)?)
                .and_then(|_| ws.flush())
                .map_err(|e| pq(e, target))?;
        }
        if !articles.is_empty() {
            wa.write(&batch_of(&sa, articles, &articles_target)?)
                .and_then(|_| wa.flush())
                .map_err(|e| pq(e, &articles_target))?;
        }
        sentences.clear();
        articles.clear();
        Ok(())
    };
    super::read_jsonl(journal, false, &mut |item| {
        match item {
            Item::Sentence(s) => sentences.push(s),
            Item::Article(a) => {
                articles.push(FlatArticle::from(&a));
                if articles.len() >= ARTICLES_PER_ROW_GROUP {
                    flush(&mut sentences, &mut articles, &mut ws, &mut wa)?;
                }
            }
            Item::Error(_) => {}
        }
        Ok(())
    })?;
    flush(&mut sentences, &mut articles, &mut ws, &mut wa)?;
    for (w, p) in [(ws, &tmp_s), (wa, &tmp_a)] {
        let f = w.into_inner().map_err(|e| pq(e, p))?;
        f.sync_all().map_err(|e| pq(e, p))?;
    }
    std::fs::rename(&tmp_a, &articles_target).map_err(|e| pq(e, &articles_target))?;
    std::fs::rename(&tmp_s, target).map_err(|e| pq(e, target))?;
    Ok(())
}

fn manifest_of(path: &Path, kv: Option<&Vec<KeyValue>>) -> Result<(Manifest, Vec<ErrorRow>)> {
    let get = |k: &str| {
        kv.and_then(|kv| kv.iter().find(|x| x.key == k))
            .and_then(|x| x.value.clone())
    };
    let m = get(MANIFEST_KEY).ok_or_else(|| {
        Error::bad_data(
            path,
            None,
            format!("not a slant dataset (no `{MANIFEST_KEY}` in its metadata)"),
        )
    })?;
    let m: Manifest = serde_json::from_str(&m)
        .map_err(|e| Error::bad_data(path, None, format!("bad manifest: {e}")))?;
    let errors: Vec<ErrorRow> = match get(ERRORS_KEY) {
        Some(e) => serde_json::from_str(&e)
            .map_err(|e| Error::bad_data(path, None, format!("bad error list: {e}")))?,
        None => Vec::new(),
    };
    Ok((m, errors))
}

/// Rows of a Parquet file as JSON lines (one per row), batch by batch.
fn for_each_row(
    path: &Path,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Option<Vec<KeyValue>>> {
    let f = File::open(path).map_err(|e| pq(e, path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| pq(e, path))?;
    let kv = b.metadata().file_metadata().key_value_metadata().cloned();
    let reader = b.with_batch_size(4096).build().map_err(|e| pq(e, path))?;
    let mut buf = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| pq(e, path))?;
        buf.clear();
        {
            let mut w = arrow_json::LineDelimitedWriter::new(&mut buf);
            w.write(&batch).map_err(|e| pq(e, path))?;
            w.finish().map_err(|e| pq(e, path))?;
        }
        for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            each(line)?;
        }
    }
    Ok(kv)
}

/// Read a Parquet dataset (the sentence file and its article table) in order: errors, then
/// sentences, then articles.
pub fn read(path: &Path, each: &mut dyn FnMut(Item) -> Result<()>) -> Result<Manifest> {
    let articles = articles_path(path);
    if !articles.exists() {
        return Err(Error::Missing(format!(
            "{}: its article table {} is missing (a Parquet dataset is both files)",
            path.display(),
            articles.display()
        )));
    }
    let f = File::open(path).map_err(|e| pq(e, path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| pq(e, path))?;
    let (manifest, errors) = manifest_of(path, b.metadata().file_metadata().key_value_metadata())?;
    drop(b);
    for e in errors {
        each(Item::Error(e.into()))?;
    }
    for_each_row(path, |line| {
        let s: SentenceRecord = serde_json::from_slice(line)
            .map_err(|e| Error::bad_data(path, None, format!("bad sentence row: {e}")))?;
        each(Item::Sentence(s))
    })?;
    let kv = for_each_row(&articles, |line| {
        let a: FlatArticle = serde_json::from_slice(line)
            .map_err(|e| Error::bad_data(&articles, None, format!("bad article row: {e}")))?;
        each(Item::Article(a.into_row().map_err(|e| {
            Error::bad_data(&articles, None, format!("bad article row: {e}"))
        })?))
    })?;
    let (m2, _) = manifest_of(&articles, kv.as_ref())?;
    if m2 != manifest {
        return Err(Error::Mismatch(format!(
            "{} and {} come from different runs (their manifests differ)",
            path.display(),
            articles.display()
        )));
    }
    Ok(manifest)
}
