//! `score`, `profile`, `compare` and `merge`: scoring a corpus into a scored dataset, and the
//! analyses that read one (or score raw text on the fly).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use super::{load_scorer, threads};
use crate::cli::args::*;
use slant::aggregate::{Corpus, RunOptions};
use slant::dataset::journal::{Format, Journal};
use slant::dataset::{self, Dataset, Manifest, ReadOptions, TopN};
use slant::eval::version_info;
use slant::ingest::{IngestOptions, RecordError};
use slant::pipeline::records::{CsvSentenceRecord, SentenceRecord};
use slant::pipeline::{Scorer, TermOpts};
use slant::{compare as stats_compare, report};

/// Output written to `F.partial` and renamed to `F` when complete (stdout when no file).
pub(super) struct AtomicOut {
    target: Option<(PathBuf, PathBuf)>,
    pub(super) w: Box<dyn Write>,
}

impl AtomicOut {
    pub(super) fn new(out: &Option<PathBuf>) -> Result<Self> {
        Ok(match out {
            Some(p) => {
                let tmp = dataset::journal::partial_paths(p).0.with_extension("tmp");
                let f =
                    File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                Self {
                    target: Some((tmp, p.clone())),
                    w: Box::new(BufWriter::new(f)),
                }
            }
            None => Self {
                target: None,
                w: Box::new(BufWriter::new(std::io::stdout().lock())),
            },
        })
    }
    pub(super) fn finish(mut self) -> Result<()> {
        self.w.flush()?;
        drop(self.w);
        if let Some((tmp, target)) = self.target {
            std::fs::rename(&tmp, &target)
                .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
        }
        Ok(())
    }
}

/// A rough count of the articles in `inputs` for the progress bar's ETA (lines of JSONL,
/// rows of CSV/TSV, `.txt` files of folders); `None` for stdin or when unsure.
fn estimate_articles(inputs: &[PathBuf]) -> Option<u64> {
    fn txt_files(dir: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    txt_files(&p)
                } else {
                    p.extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("txt"))
                        .into()
                }
            })
            .sum()
    }
    fn lines(p: &Path) -> Option<u64> {
        use std::io::Read;
        let mut f = File::open(p).ok()?;
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).ok()?;
            if k == 0 {
                return Some(n);
            }
            n += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    let mut total = 0;
    for p in inputs {
        if p.as_os_str() == "-" {
            return None;
        }
        if p.is_dir() {
            total += txt_files(p);
            continue;
        }
        let ext = p
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        total += match ext.as_str() {
            "jsonl" | "ndjson" => lines(p)?,
            "csv" | "tsv" => lines(p)?.saturating_sub(1),
            _ => 1,
        };
    }
    Some(total)
}

/// The progress bar of a scoring run: on stderr, drawn only on a terminal and without -q.
fn progress_bar(quiet: bool, total: Option<u64>) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = match total {
        Some(_) => ProgressStyle::with_template(
            "{bar:30} {pos}/{len} articles, {msg} [{elapsed_precise}, ETA {eta}]",
        ),
        None => ProgressStyle::with_template("{spinner} {pos} articles, {msg} [{elapsed_precise}]"),
    }
    .expect("valid template");
    pb.set_style(style);
    pb
}

fn bar_message(sentences: u64, t0: Instant) -> String {
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    format!(
        "{sentences} sentences, {:.0} sentences/s",
        sentences as f64 / secs
    )
}

fn manifest_of(
    scorer: &Scorer,
    head_sha: &str,
    inputs: &[PathBuf],
    shard: Option<Shard>,
    counts: (usize, usize, usize, usize),
) -> Manifest {
    let (articles, sentences, truncated, errors) = counts;
    Manifest {
        schema_version: slant::pipeline::records::SCHEMA_VERSION,
        slant_version: version_info().0,
        git_commit: version_info().1,
        encoder: scorer
            .encoder
            .dir()
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        encoder_sha256: scorer.encoder.weights_sha256().to_string(),
        loaded_head_sha256: head_sha.to_string(),
        loaded_threshold: scorer.loaded_threshold(),
        max_tokens: scorer.encoder.max_tokens(),
        batch_size: scorer.batch_size,
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        articles,
        sentences,
        truncated_sentences: truncated,
        record_errors: errors,
        precision: (scorer.encoder.precision() == slant::encode::Precision::Int8)
            .then(|| "int8".to_string()),
        shard: shard.map(|s| s.to_string()),
    }
}

fn refuse_datasets(inputs: &[PathBuf], cmd: &str) -> Result<()> {
    if let Some(p) = inputs.iter().find(|p| dataset::is_dataset(p)) {
        bail!("{} is a scored dataset, not a corpus; {cmd}", p.display());
    }
    Ok(())
}

pub(super) fn score(a: ScoreArgs) -> Result<i32> {
    let t0 = Instant::now();
    let dataset_format = match a.format {
        ScoreFormat::Jsonl => Some(Format::Jsonl),
        ScoreFormat::Parquet => Some(Format::Parquet),
        _ => None,
    };
    if a.format == ScoreFormat::Parquet && a.out.is_none() {
        bail!("--format parquet needs --out FILE (Parquet is not written to stdout)");
    }
    if a.resume && (a.out.is_none() || dataset_format.is_none()) {
        bail!("--resume needs --out FILE with --format jsonl or parquet");
    }
    refuse_datasets(
        &a.inputs,
        "use `slant profile` or `slant compare` on it (no encoder needed)",
    )?;
    let (scorer, head_sha) = load_scorer(&a.model)?;
    let fingerprint = json!({
        "inputs": a.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "format": format!("{:?}", a.format).to_lowercase(),
        "shard": a.shard.map(|s| s.to_string()),
        "max_article_bytes": a.max_article_bytes,
        "manifest": manifest_of(&scorer, &head_sha, &a.inputs, a.shard, (0, 0, 0, 0)),
        "spans": scorer.spans.is_some(),
        "attribution": scorer.attribution.is_some(),
        "frames": scorer.frames.is_some(),
        "tuned": scorer.tuned.is_some(),
    });
    let mut corpus = Corpus::default();
    let mut journal: Option<Journal> = None;
    if let (Some(out), Some(fmt)) = (&a.out, dataset_format) {
        if a.resume {
            journal = Journal::resume(out, fmt, fingerprint.clone())?;
            match &journal {
                Some(j) if !a.quiet => eprintln!(
                    "slant: resuming {}: {} articles in {} chunks already scored",
                    out.display(),
                    j.progress.articles,
                    j.progress.chunks
                ),
                None if out.exists() => {
                    if !a.quiet {
                        eprintln!(
                            "slant: {} is complete (no interrupted run to resume)",
                            out.display()
                        );
                    }
                    return Ok(0);
                }
                None if !a.quiet => {
                    eprintln!(
                        "slant: no interrupted run of {} to resume; starting",
                        out.display()
                    )
                }
                _ => {}
            }
        }
        if journal.is_none() {
            journal = Some(Journal::create(out, fmt, fingerprint)?);
        }
    }
    let done = journal
        .as_ref()
        .map(|j| j.progress.clone())
        .unwrap_or_default();
    let run = RunOptions {
        skip_articles: done.articles as usize,
        shard: a.shard.map(|s| (s.index, s.count)),
        ingest: IngestOptions {
            max_article_bytes: a.max_article_bytes,
        },
        // A dataset run keeps nothing per article (its profile is read back from the file), nor
        // does a stream to stdout; the table, JSON and CSV-with-summary outputs need the corpus.
        fold: match a.format {
            ScoreFormat::Json | ScoreFormat::Table => true,
            ScoreFormat::Csv => a.out.is_some() && !a.quiet,
            ScoreFormat::Jsonl | ScoreFormat::Parquet => false,
        },
        ..RunOptions::default()
    };
    let pb = progress_bar(
        a.quiet,
        estimate_articles(&a.inputs).map(|n| match a.shard {
            Some(s) => n.div_ceil(s.count),
            None => n,
        }),
    );
    pb.set_position(done.articles);
    let mut sentences_done = done.sentences;

    let mut out = match (&journal, a.format) {
        (Some(_), _) => None,
        (None, _) => Some(AtomicOut::new(&a.out)?),
    };
    let mut csv_w = if a.format == ScoreFormat::Csv {
        let o = out.as_mut().expect("csv output");
        Some(csv::Writer::from_writer(std::mem::replace(
            &mut o.w,
            Box::new(std::io::sink()),
        )))
    } else {
        None
    };
    let mut all_sentences: Vec<SentenceRecord> = Vec::new();
    let mut all_articles: Vec<report::score::ArticleRecord> = Vec::new();
    let mut top: BTreeMap<String, TopN> = BTreeMap::new();
    let mut lines: Vec<u8> = Vec::new();
    let (new_corpus, errors, stats, n_articles) = slant::aggregate::score_corpus(
        &a.inputs,
        &scorer,
        &run,
        |e: &RecordError| pb.suspend(|| eprintln!("error: {e}")),
        |chunk| -> Result<()> {
            match a.format {
                ScoreFormat::Jsonl | ScoreFormat::Parquet => {
                    lines.clear();
                    dataset::write_chunk(&mut lines, chunk.scored, chunk.articles, chunk.errors)?;
                    match journal.as_mut() {
                        Some(j) => j.write_chunk(
                            &lines,
                            chunk.scored.len() as u64,
                            chunk.stats.sentences as u64,
                            chunk.stats.truncated as u64,
                            chunk.errors.len() as u64,
                        )?,
                        None => out.as_mut().expect("stdout").w.write_all(&lines)?,
                    }
                }
                ScoreFormat::Csv => {
                    let cw = csv_w.as_mut().expect("csv writer");
                    for art in chunk.scored {
                        for r in &art.sentences {
                            cw.serialize(CsvSentenceRecord::from(r))?;
                        }
                    }
                }
                ScoreFormat::Json => {
                    for art in chunk.scored {
                        all_sentences.extend(art.sentences.iter().cloned());
                        all_articles.push(report::score::ArticleRecord {
                            id: art.summary.id.clone(),
                            source: art.summary.source.clone(),
                            sentences: art.summary.sentences,
                            frames: art.frames(),
                        });
                    }
                }
                ScoreFormat::Table => {
                    for art in chunk.scored {
                        for r in &art.sentences {
                            top.entry(r.source.clone())
                                .or_insert_with(|| TopN::new(a.top))
                                .offer(r);
                        }
                    }
                }
            }
            sentences_done += chunk.stats.sentences as u64;
            pb.inc(chunk.scored.len() as u64);
            pb.set_message(bar_message(sentences_done - done.sentences, t0));
            Ok(())
        },
    )?;
    pb.finish_and_clear();
    corpus += new_corpus;
    if let Some(mut cw) = csv_w.take() {
        cw.flush()?;
    }
    let n_errors = done.errors as usize + errors.len();
    let manifest = manifest_of(
        &scorer,
        &head_sha,
        &a.inputs,
        a.shard,
        (
            done.articles as usize + n_articles,
            done.sentences as usize + stats.sentences,
            done.truncated as usize + stats.truncated,
            n_errors,
        ),
    );
    let threshold = scorer.loaded_threshold();
    match a.format {
        ScoreFormat::Json => {
            let profiles = corpus.profiles();
            all_sentences.sort_by(|x, y| (&x.article, x.index).cmp(&(&y.article, y.index)));
            all_articles.sort_by(|x, y| x.id.cmp(&y.id));
            let obj = report::score::ScoreDocument {
                schema_version: slant::pipeline::records::SCHEMA_VERSION,
                sources: &profiles,
                actors: corpus.actor_report(slant::actors::DEFAULT_MAIN_ACTORS),
                articles: &all_articles,
                sentences: &all_sentences,
                errors: &errors,
                manifest: &manifest,
            };
            let w = &mut out.as_mut().expect("output").w;
            obj.write_pretty(&mut *w)?;
            w.write_all(b"\n")?;
        }
        ScoreFormat::Table => {
            let top: Vec<SentenceRecord> = top.into_values().flat_map(TopN::into_sorted).collect();
            let table = profile_table(&corpus, &top, a.top, threshold);
            out.as_mut()
                .expect("output")
                .w
                .write_all(table.as_bytes())?;
        }
        ScoreFormat::Jsonl if journal.is_none() => {
            let w = &mut out.as_mut().expect("stdout").w;
            dataset::write_line(w, dataset::LineRef::Manifest(&manifest))?;
        }
        _ => {}
    }
    let wrote_dataset = journal.is_some();
    if let Some(j) = journal {
        j.finish(&manifest)?;
    }
    if let Some(o) = out {
        o.finish()?;
    }
    drop(scorer);
    if let (Some(path), false, false) = (&a.out, a.quiet, a.no_summary) {
        let profiles = if wrote_dataset {
            // Read back from the finished file, with the encoder gone: memory stays that of
            // the per-article summaries, and the table is the dataset's own.
            Dataset::read(std::slice::from_ref(path), &ReadOptions::default())?
                .corpus
                .profiles()
        } else {
            corpus.profiles()
        };
        if a.format == ScoreFormat::Csv || wrote_dataset {
            eprint!("{}", report::profiles_table(&profiles, &[], 0, threshold));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if !a.quiet {
        eprintln!(
            "slant: {} articles, {} sentences ({} truncated) in {:.1}s = {:.1} sentences/s, {} threads, {} record errors",
            n_articles,
            stats.sentences,
            stats.truncated,
            secs,
            stats.sentences as f64 / secs.max(1e-9),
            threads(),
            n_errors
        );
    }
    Ok(if n_errors == 0 { 0 } else { 1 })
}

/// The human table of per-source profiles, followed by the actors.
fn profile_table(corpus: &Corpus, top: &[SentenceRecord], n: usize, threshold: f32) -> String {
    let mut table = report::profiles_table(&corpus.profiles(), top, n, threshold);
    table.push_str(&slant::actors::render(
        &corpus.actor_report(slant::actors::DEFAULT_MAIN_ACTORS),
        4,
    ));
    table
}

/// `slant profile --format json`: the per-source profiles of a dataset.
#[derive(serde::Serialize)]
struct ProfileDocument<'a> {
    schema_version: u32,
    sources: &'a [slant::aggregate::SourceProfile],
    actors: Vec<slant::actors::ActorReport>,
    errors: &'a [RecordError],
    manifest: &'a Manifest,
}

pub fn profile(a: ProfileArgs) -> Result<i32> {
    let t0 = Instant::now();
    let inputs = dataset_inputs(&a.inputs, "slant score CORPUS --out FILE --format jsonl")?;
    let d = Dataset::read(
        &inputs,
        &ReadOptions {
            terms: None,
            top: a.top,
            ..Default::default()
        },
    )?;
    let mut out = AtomicOut::new(&a.out)?;
    match a.format {
        AnalysisFormat::Html => unreachable!("dispatched to report::profile_html"),
        AnalysisFormat::Table => {
            let table = profile_table(
                &d.corpus,
                &d.top_sentences(),
                a.top,
                d.manifest.loaded_threshold,
            );
            out.w.write_all(table.as_bytes())?;
        }
        AnalysisFormat::Json => {
            let profiles = d.corpus.profiles();
            let doc = ProfileDocument {
                schema_version: slant::pipeline::records::SCHEMA_VERSION,
                sources: &profiles,
                actors: d.corpus.actor_report(slant::actors::DEFAULT_MAIN_ACTORS),
                errors: &d.errors,
                manifest: &d.manifest,
            };
            serde_json::to_writer_pretty(&mut out.w, &serde_json::to_value(&doc)?)?;
            out.w.write_all(b"\n")?;
        }
    }
    out.finish()?;
    if !a.quiet {
        eprintln!(
            "slant: {} articles, {} sentences read from {} dataset file(s) in {:.1}s, {} record errors",
            d.manifest.articles,
            d.sentences,
            dataset::expand(&inputs)?.len(),
            t0.elapsed().as_secs_f64(),
            d.errors.len()
        );
    }
    Ok(if d.errors.is_empty() { 0 } else { 1 })
}

/// `inputs` when every one is a scored dataset; a clear error otherwise.
pub(super) fn dataset_inputs(inputs: &[PathBuf], how: &str) -> Result<Vec<PathBuf>> {
    for p in inputs {
        if !p.exists() {
            bail!("{}: no such file or folder", p.display());
        }
        if !dataset::is_dataset(p) {
            bail!(
                "{} is not a scored dataset (a .parquet file or JSONL written by `slant score \
                 --out`); make one with `{how}`",
                p.display()
            );
        }
    }
    Ok(inputs.to_vec())
}

pub fn compare(a: CompareArgs) -> Result<i32> {
    let t0 = Instant::now();
    if a.a == a.b {
        bail!("--a and --b name the same source `{}`", a.a);
    }
    let terms = (a.terms > 0).then(|| TermOpts {
        sources: [a.a.clone(), a.b.clone()].into_iter().collect(),
        bigrams: a.bigrams,
    });
    let n_datasets = a.inputs.iter().filter(|p| dataset::is_dataset(p)).count();
    let (corpus, errors, sentences) = if n_datasets > 0 {
        if n_datasets < a.inputs.len() {
            bail!("give compare either scored datasets or a corpus, not both");
        }
        let d = Dataset::read(
            &a.inputs,
            &ReadOptions {
                terms,
                ..Default::default()
            },
        )?;
        (d.corpus, d.errors, d.sentences as usize)
    } else {
        let (mut scorer, _) = load_scorer(&a.model)?;
        scorer.terms = terms;
        let pb = progress_bar(a.quiet, estimate_articles(&a.inputs));
        let (corpus, errors, stats, _) = slant::aggregate::score_corpus(
            &a.inputs,
            &scorer,
            &RunOptions::default(),
            |e: &RecordError| pb.suspend(|| eprintln!("error: {e}")),
            |chunk| -> Result<()> {
                pb.inc(chunk.scored.len() as u64);
                Ok(())
            },
        )?;
        pb.finish_and_clear();
        (corpus, errors, stats.sentences)
    };
    let names: Vec<&String> = corpus.sources.keys().collect();
    for want in [&a.a, &a.b] {
        if !corpus.sources.contains_key(want) {
            bail!(
                "source `{want}` is not in the corpus; sources found: {}",
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let (sa, sb) = (&corpus.sources[&a.a], &corpus.sources[&a.b]);
    let mut c = stats_compare::compare(&a.a, sa, &a.b, sb, a.reps, a.seed);
    c.distinctive = slant::terms::distinctive(&sa.terms, &sb.terms, a.terms);
    let mut o = AtomicOut::new(&a.out)?;
    let out = &mut o.w;
    match a.format {
        AnalysisFormat::Html => unreachable!("dispatched to report::compare_html"),
        AnalysisFormat::Json => {
            let doc = report::compare::CompareDocument {
                schema_version: slant::pipeline::records::SCHEMA_VERSION,
                comparison: &c,
            };
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            out.write_all(b"\n")?;
        }
        AnalysisFormat::Table => out.write_all(report::compare::render_table(&c).as_bytes())?,
    }
    o.finish()?;
    if !a.quiet {
        eprintln!(
            "slant: {} sentences in {:.1}s, {} record errors",
            sentences,
            t0.elapsed().as_secs_f64(),
            errors.len()
        );
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

pub fn merge(a: MergeArgs) -> Result<i32> {
    let t0 = Instant::now();
    let inputs = dataset_inputs(&a.inputs, "slant score CORPUS --shard I/N --out FILE")?;
    let format = match a.format {
        Some(DatasetFormat::Jsonl) => Format::Jsonl,
        Some(DatasetFormat::Parquet) => Format::Parquet,
        None => match a.out.extension().and_then(|e| e.to_str()) {
            Some("parquet") => Format::Parquet,
            Some("jsonl") | Some("ndjson") => Format::Jsonl,
            _ => bail!(
                "{}: say --format jsonl or parquet (the extension does not tell)",
                a.out.display()
            ),
        },
    };
    let files = dataset::expand(&inputs)?;
    if files.iter().any(|f| same_file(f, &a.out)) {
        bail!("--out {} is one of the inputs", a.out.display());
    }
    let mut j = Journal::create(&a.out, format, json!({"merge": true}))?;
    let mut manifests = Vec::new();
    let mut seen: std::collections::HashSet<String> = Default::default();
    let mut buf: Vec<u8> = Vec::new();
    let (mut arts, mut sents, mut errs, mut trunc) = (0u64, 0u64, 0u64, 0u64);
    for f in &files {
        let mut each = |item: dataset::Item| -> slant::Result<()> {
            let io = |e: std::io::Error| slant::Error::bad_data(&a.out, None, e);
            match item {
                dataset::Item::Sentence(s) => {
                    sents += 1;
                    trunc += s.truncated as u64;
                    dataset::write_line(&mut buf, dataset::LineRef::Sentence(&s)).map_err(io)?;
                    if buf.len() > 8 << 20 {
                        j.write_chunk(&buf, arts, sents, trunc, errs)?;
                        (arts, sents, trunc, errs) = (0, 0, 0, 0);
                        buf.clear();
                    }
                }
                dataset::Item::Article(r) => {
                    if !seen.insert(r.id.clone()) {
                        return Err(slant::Error::bad_data(
                            f,
                            None,
                            format!(
                                "article `{}` is in more than one input (a shard given twice?)",
                                r.id
                            ),
                        ));
                    }
                    arts += 1;
                    dataset::write_line(&mut buf, dataset::LineRef::Article(&r)).map_err(io)?;
                    // A chunk per 64 articles, or sooner when a Parquet input's sentences (read
                    // before its articles) fill the buffer: memory stays bounded.
                    if arts % slant::pipeline::DEFAULT_CHUNK_ARTICLES as u64 == 0 {
                        j.write_chunk(&buf, arts, sents, trunc, errs)?;
                        (arts, sents, trunc, errs) = (0, 0, 0, 0);
                        buf.clear();
                    }
                }
                dataset::Item::Error(e) => {
                    errs += 1;
                    dataset::write_line(
                        &mut buf,
                        dataset::LineRef::Error(&dataset::ErrorRow::from(&e)),
                    )
                    .map_err(io)?;
                }
            }
            Ok(())
        };
        manifests.extend(dataset::read_file(f, &mut each)?);
    }
    j.write_chunk(&buf, arts, sents, trunc, errs)?;
    let manifest = Manifest::merged(&manifests)?;
    j.finish(&manifest)?;
    if !a.quiet {
        eprintln!(
            "slant: merged {} file(s), {} articles, {} sentences into {} in {:.1}s",
            files.len(),
            manifest.articles,
            manifest.sentences,
            a.out.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
