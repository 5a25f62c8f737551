//! Scored datasets: what `slant score --out` writes once, and what every analysis reads
//! (`profile`, `compare`, `merge`, `report`) without loading the encoder.
//!
//! A dataset is JSONL or Parquet (docs/output.md has the schema, version
//! [`SCHEMA_VERSION`]):
//!
//! * **JSONL**: one record per line, tagged by `record`: `"sentence"` (a [`SentenceRecord`]),
//!   after an article's sentences one `"article"` line ([`ArticleRow`]), `"error"` lines for
//!   records that could not be read ([`ErrorRow`]), and last a `"manifest"` line ([`Manifest`]).
//!   A stream whose last line is not a manifest is incomplete (a killed run) and is refused.
//!   Several streams may be concatenated (shards, Spark partitions): each ends with its manifest.
//! * **Parquet**: `NAME.parquet` holds the sentence table and `NAME.articles.parquet` the article
//!   table ([`parquet`]); the manifest is in both files' key-value metadata under
//!   `slant.manifest`.
//!
//! [`Dataset::read`] folds article rows into an [`crate::aggregate::Corpus`] and streams the
//! sentence rows through a callback, so an analysis holds per-article summaries and nothing
//! per sentence.

pub mod journal;
pub mod parquet;
pub mod sample;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::actors::ActorCounts;
use crate::aggregate::Corpus;
use crate::attribution::AttributionCounts;
use crate::error::Error;
use crate::ingest::RecordError;
use crate::pipeline::records::{ArticleSummary, SentenceRecord};
use crate::pipeline::ScoredArticle;
use crate::vocab::FRAMES;
use crate::Result;

use crate::pipeline::records::SCHEMA_VERSION;

/// One article of a scored dataset: its metadata and the summary its source's profile folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleRow {
    pub id: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Sentences of the article.
    pub sentences: u64,
    /// Sentences with `loaded_label`.
    pub loaded_sentences: u64,
    /// Sum of the sentences' `loaded` probabilities.
    pub loaded_prob_sum: f64,
    /// Sentences cut at the encoder's token limit.
    pub truncated: u64,
    /// P(frame) per frame (absent without the frames head).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frames: BTreeMap<String, f64>,
    /// Sentences with a loaded span; absent when no span head was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_sentences: Option<u64>,
    /// Loaded terms of the article's spans and their counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub loaded_terms: BTreeMap<String, u64>,
    /// Attribution counts (absent without the attribution head).
    #[serde(default, skip_serializing_if = "AttributionCounts::is_empty")]
    pub attribution: AttributionCounts,
    /// Actor mentions and labels.
    #[serde(default, skip_serializing_if = "ActorCounts::is_empty")]
    pub actors: ActorCounts,
}

impl ArticleRow {
    /// The row of a scored article (`meta` gives title, date and url).
    pub fn of(a: &ScoredArticle, meta: &crate::ingest::Article) -> Self {
        let s = &a.summary;
        Self {
            id: s.id.clone(),
            source: s.source.clone(),
            title: meta.title.clone(),
            date: meta.date.clone(),
            url: meta.url.clone(),
            sentences: s.sentences,
            loaded_sentences: s.loaded_sentences,
            loaded_prob_sum: s.loaded_prob_sum,
            truncated: s.truncated,
            frames: a.frames(),
            span_sentences: s.span_sentences,
            loaded_terms: s.loaded_terms.clone(),
            attribution: s.attribution.clone(),
            actors: s.actors.clone(),
        }
    }

    /// The summary [`Corpus::push`] takes (no word counts: those come from the sentences).
    pub fn summary(&self) -> Result<ArticleSummary> {
        let frames = if self.frames.is_empty() {
            Vec::new()
        } else {
            FRAMES
                .iter()
                .map(|f| {
                    self.frames.get(*f).copied().ok_or_else(|| {
                        Error::Input(format!("article `{}`: frame `{f}` is missing", self.id))
                    })
                })
                .collect::<Result<Vec<f64>>>()?
        };
        Ok(ArticleSummary {
            id: self.id.clone(),
            source: self.source.clone(),
            sentences: self.sentences,
            loaded_sentences: self.loaded_sentences,
            loaded_prob_sum: self.loaded_prob_sum,
            truncated: self.truncated,
            terms: Default::default(),
            frames,
            actors: self.actors.clone(),
            attribution: self.attribution.clone(),
            span_sentences: self.span_sentences,
            loaded_terms: self.loaded_terms.clone(),
        })
    }
}

/// A record that could not be read, as a dataset keeps it (`location` is
/// [`RecordError::record`], renamed because `record` tags the JSONL line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    pub location: String,
    #[serde(default)]
    pub id: Option<String>,
    pub message: String,
}

impl From<&RecordError> for ErrorRow {
    fn from(e: &RecordError) -> Self {
        Self {
            location: e.record.clone(),
            id: e.id.clone(),
            message: e.message.clone(),
        }
    }
}

impl From<ErrorRow> for RecordError {
    fn from(e: ErrorRow) -> Self {
        RecordError {
            record: e.location,
            id: e.id,
            message: e.message,
        }
    }
}

/// Manifest of a scoring run: everything needed to reproduce it (no timings, so it is stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA_VERSION`] of the records.
    pub schema_version: u32,
    pub slant_version: String,
    pub git_commit: String,
    pub encoder: String,
    pub encoder_sha256: String,
    pub loaded_head_sha256: String,
    pub loaded_threshold: f32,
    pub max_tokens: usize,
    pub batch_size: usize,
    pub inputs: Vec<String>,
    pub articles: usize,
    pub sentences: usize,
    pub truncated_sentences: usize,
    pub record_errors: usize,
    /// `"int8"` with `--precision int8`; absent for fp32 (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// `"I/N"` for a run with `--shard I/N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Manifest {
    /// The fields that must agree for datasets to be analysed together (models and options).
    fn models_key(&self) -> (String, String, String, u32, usize, Option<String>) {
        (
            self.encoder.clone(),
            self.encoder_sha256.clone(),
            self.loaded_head_sha256.clone(),
            self.loaded_threshold.to_bits(),
            self.max_tokens,
            self.precision.clone(),
        )
    }

    /// One manifest for several compatible runs: counts summed, inputs joined, no shard.
    pub fn merged(parts: &[Manifest]) -> Result<Manifest> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Input("no dataset to merge".into()))?;
        let mut m = first.clone();
        m.inputs.clear();
        m.articles = 0;
        m.sentences = 0;
        m.truncated_sentences = 0;
        m.record_errors = 0;
        m.shard = None;
        let mut inputs = BTreeSet::new();
        for p in parts {
            if p.models_key() != first.models_key() {
                return Err(Error::Mismatch(format!(
                    "datasets were scored with different models or options (encoder {} / head {} / \
                     threshold {} / precision {} vs encoder {} / head {} / threshold {} / precision {}); \
                     analyse them separately",
                    first.encoder_sha256,
                    first.loaded_head_sha256,
                    first.loaded_threshold,
                    first.precision.as_deref().unwrap_or("fp32"),
                    p.encoder_sha256,
                    p.loaded_head_sha256,
                    p.loaded_threshold,
                    p.precision.as_deref().unwrap_or("fp32"),
                )));
            }
            if p.schema_version != SCHEMA_VERSION {
                return Err(Error::Mismatch(format!(
                    "dataset schema version {} (this slant reads version {SCHEMA_VERSION}); \
                     score the corpus again",
                    p.schema_version
                )));
            }
            inputs.extend(p.inputs.iter().cloned());
            m.articles += p.articles;
            m.sentences += p.sentences;
            m.truncated_sentences += p.truncated_sentences;
            m.record_errors += p.record_errors;
        }
        m.inputs = inputs.into_iter().collect();
        Ok(m)
    }
}

/// One line of a JSONL dataset.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Line {
    Sentence(SentenceRecord),
    Article(ArticleRow),
    Error(ErrorRow),
    Manifest(Manifest),
}

/// Borrowed form of [`Line`] for writing without copies.
#[derive(Serialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum LineRef<'a> {
    Sentence(&'a SentenceRecord),
    Article(&'a ArticleRow),
    Error(&'a ErrorRow),
    Manifest(&'a Manifest),
}

/// Write one JSONL line.
pub fn write_line<W: Write>(w: &mut W, line: LineRef<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, &line)?;
    w.write_all(b"\n")
}

/// The JSONL lines of a scored chunk: each article's sentences, then its article row.
pub fn write_chunk<W: Write>(
    w: &mut W,
    scored: &[ScoredArticle],
    meta: &[crate::ingest::Article],
    errors: &[RecordError],
) -> std::io::Result<()> {
    for e in errors {
        write_line(w, LineRef::Error(&ErrorRow::from(e)))?;
    }
    for (a, m) in scored.iter().zip(meta) {
        for r in &a.sentences {
            write_line(w, LineRef::Sentence(r))?;
        }
        write_line(w, LineRef::Article(&ArticleRow::of(a, m)))?;
    }
    Ok(())
}

/// What a dataset reader hands the analysis, in file order.
#[allow(clippy::large_enum_variant)] // one item at a time; boxing would cost an allocation each
pub enum Item {
    Sentence(SentenceRecord),
    Article(ArticleRow),
    Error(RecordError),
}

/// Is `path` a scored dataset (rather than a corpus of articles)? Parquet files are; a JSONL
/// file (or a Spark output file `part-*`) is when its first line has a `record` field; a folder
/// is when it holds such files.
pub fn is_dataset(path: &Path) -> bool {
    if path.is_dir() {
        return !dataset_files(path).unwrap_or_default().is_empty();
    }
    if path.extension().is_some_and(|e| e == "parquet") {
        return true;
    }
    let spark_part = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("part-"));
    if !spark_part
        && !path
            .extension()
            .is_some_and(|e| e == "jsonl" || e == "ndjson")
    {
        return false;
    }
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut first = String::new();
    let mut r = BufReader::new(f);
    loop {
        first.clear();
        match r.read_line(&mut first) {
            Ok(0) | Err(_) => return false,
            Ok(_) if first.trim().is_empty() => continue,
            Ok(_) => break,
        }
    }
    first.trim_start().starts_with("{\"record\":")
}

/// The dataset files of a folder (shards), sorted: `*.parquet` sentence tables (not their
/// `.articles.parquet` partners) and JSONL datasets.
pub fn dataset_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in rd {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || !p.is_file() {
            continue;
        }
        // `part-*`: the files Spark's saveAsTextFile writes. One that is empty or not a dataset
        // is a failed task: refused, so that a shard is never dropped without a word.
        if name.starts_with("part-") && !is_dataset(&p) && !name.ends_with(".parquet") {
            return Err(Error::bad_data(
                &p,
                None,
                "a part file that is not a scored dataset (empty: a failed task?)",
            ));
        }
        if name.ends_with(".parquet") && !name.ends_with(".articles.parquet")
            || (name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.starts_with("part-"))
                && is_dataset(&p)
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The dataset files named by `inputs` (files, or folders of shards), in order.
pub fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let files = dataset_files(p)?;
            if files.is_empty() {
                return Err(Error::bad_data(
                    p,
                    None,
                    "no scored dataset in this folder (.parquet or slant JSONL files)",
                ));
            }
            out.extend(files);
        } else if !p.exists() {
            return Err(Error::Missing(format!("{}: no such file", p.display())));
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Read every item of one dataset file in order, calling `each`; returns its manifests (one
/// per concatenated stream).
pub fn read_file(path: &Path, each: &mut dyn FnMut(Item) -> Result<()>) -> Result<Vec<Manifest>> {
    if path.extension().is_some_and(|e| e == "parquet") {
        return parquet::read(path, each).map(|m| vec![m]);
    }
    read_jsonl(path, true, each)
}

/// Read a JSONL dataset (`complete`), or a run's journal (no manifest yet: `!complete`), in
/// order, calling `each`; returns its manifests.
pub(crate) fn read_jsonl(
    path: &Path,
    complete: bool,
    each: &mut dyn FnMut(Item) -> Result<()>,
) -> Result<Vec<Manifest>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut manifests = Vec::new();
    let mut open_lines = 0usize;
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let k = r
            .read_line(&mut line)
            .map_err(|e| Error::bad_data(path, Some(n + 1), e))?;
        if k == 0 {
            break;
        }
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        if !line.ends_with('\n') {
            return Err(Error::bad_data(
                path,
                Some(n),
                "the last line is cut off (a killed run?); score again with --resume or without \
                 it",
            ));
        }
        let parsed: Line = serde_json::from_str(&line).map_err(|e| {
            Error::bad_data(path, Some(n), format!("not a slant dataset record ({e})"))
        })?;
        match parsed {
            Line::Manifest(m) => {
                manifests.push(m);
                open_lines = 0;
                continue;
            }
            Line::Sentence(s) => each(Item::Sentence(s))?,
            Line::Article(a) => each(Item::Article(a))?,
            Line::Error(e) => each(Item::Error(e.into()))?,
        }
        open_lines += 1;
    }
    if complete && (manifests.is_empty() || open_lines > 0) {
        return Err(Error::bad_data(
            path,
            None,
            "incomplete dataset: no manifest line after its last records (the run that wrote \
             it did not finish)",
        ));
    }
    Ok(manifests)
}

/// What an analysis needs from the sentence rows, besides the article summaries.
#[derive(Debug, Default, Clone)]
pub struct ReadOptions {
    /// Count words ([`crate::terms`]) for these sources' sentences.
    pub terms: Option<crate::pipeline::TermOpts>,
    /// Keep the `top` most loaded sentences of each source (bounded).
    pub top: usize,
    /// Keep this many whole articles per source ([`sample::ArticleSample`]).
    pub sample: usize,
}

/// A dataset read for analysis: the corpus of article summaries, the record errors, the
/// merged manifest, and the most loaded sentences of each source.
#[derive(Debug)]
pub struct Dataset {
    pub corpus: Corpus,
    pub errors: Vec<RecordError>,
    pub manifest: Manifest,
    /// Per source, its `top` most loaded sentences (loaded desc, then article and index).
    pub top: BTreeMap<String, Vec<SentenceRecord>>,
    /// Sentences read.
    pub sentences: u64,
    /// Per source, the sampled whole articles ([`ReadOptions::sample`]).
    pub sample: BTreeMap<String, Vec<sample::SampledArticle>>,
}

impl Dataset {
    /// Read `inputs` (files or folders of shards) for analysis. Article ids must be unique
    /// across all of them (a shard given twice is an error).
    pub fn read(inputs: &[PathBuf], opts: &ReadOptions) -> Result<Dataset> {
        let files = expand(inputs)?;
        let mut corpus = Corpus::default();
        let mut errors = Vec::new();
        let mut manifests = Vec::new();
        let mut seen: std::collections::HashSet<String> = Default::default();
        let mut top: BTreeMap<String, TopN> = BTreeMap::new();
        let mut sentences = 0u64;
        let mut sampled = sample::ArticleSample::new(opts.sample);
        for f in &files {
            let mut each = |item: Item| -> Result<()> {
                match item {
                    Item::Article(a) => {
                        if !seen.insert(a.id.clone()) {
                            return Err(Error::bad_data(
                                f,
                                None,
                                format!(
                                    "article `{}` is in more than one dataset (a shard given \
                                 twice?)",
                                    a.id
                                ),
                            ));
                        }
                        sampled.offer_article(
                            &a.id,
                            &a.source,
                            a.title.as_deref(),
                            a.date.as_deref(),
                            a.url.as_deref(),
                        );
                        corpus.push(a.summary()?);
                    }
                    Item::Sentence(s) => {
                        sentences += 1;
                        if let Some(t) = opts
                            .terms
                            .as_ref()
                            .filter(|t| t.sources.contains(&s.source))
                        {
                            let sums = corpus.sources.entry(s.source.clone()).or_default();
                            crate::terms::count_sentence(&s.text, t.bigrams, &mut sums.terms);
                        }
                        if opts.top > 0 {
                            top.entry(s.source.clone())
                                .or_insert_with(|| TopN::new(opts.top))
                                .offer(&s);
                        }
                        sampled.offer_sentence(&s);
                    }
                    Item::Error(e) => errors.push(e),
                }
                Ok(())
            };
            manifests.extend(read_file(f, &mut each)?);
        }
        let manifest = Manifest::merged(&manifests)?;
        Ok(Dataset {
            corpus,
            errors,
            manifest,
            top: top.into_iter().map(|(k, v)| (k, v.into_sorted())).collect(),
            sentences,
            sample: sampled.into_articles(),
        })
    }

    /// The kept top sentences of every source, as one list.
    pub fn top_sentences(&self) -> Vec<SentenceRecord> {
        self.top.values().flatten().cloned().collect()
    }
}

/// The `n` most loaded sentences seen (loaded desc, then article and index asc), in bounded
/// memory.
#[derive(Debug)]
pub struct TopN {
    n: usize,
    items: Vec<SentenceRecord>,
}

fn top_order(x: &SentenceRecord, y: &SentenceRecord) -> std::cmp::Ordering {
    y.loaded
        .total_cmp(&x.loaded)
        .then_with(|| (&x.article, x.index).cmp(&(&y.article, y.index)))
}

impl TopN {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            items: Vec::new(),
        }
    }
    /// Offer one sentence; it is copied only when it is kept.
    pub fn offer(&mut self, s: &SentenceRecord) {
        if self.n == 0 {
            return;
        }
        if self.items.len() == self.n {
            let worst = self.items.last().expect("n > 0");
            if top_order(s, worst) != std::cmp::Ordering::Less {
                return;
            }
            self.items.pop();
        }
        let at = self
            .items
            .binary_search_by(|x| top_order(x, s))
            .unwrap_or_else(|e| e);
        self.items.insert(at, s.clone());
    }
    /// The kept sentences, best first.
    pub fn into_sorted(self) -> Vec<SentenceRecord> {
        self.items
    }
}

#[cfg(test)]
mod tests;
