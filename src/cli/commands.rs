//! The subcommands.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::json;

use super::args::*;
use crate::aggregate::{Corpus, SentenceRecord, SourceProfile};
use crate::data;
use crate::encode::{self, sha256_file, EncodeStats, Encoder};
use crate::eval::loaded::{ece_of, labels, metrics_at, probs, train_opts};
use crate::eval::{best_threshold, version_info, BinaryMetrics, DataFile};
use crate::heads::frames::{FramesHead, FRAMES, FRAMES_HEAD_FILE};
use crate::heads::tagger::TaggerHead;
use crate::heads::{MlpHead, SentenceFeatures, LOADED_HEAD_FILE};
use crate::ingest::{self, Article, RecordError};
use crate::pipeline::{EvidenceHead, Scorer, TermOpts, DEFAULT_CHUNK_ARTICLES};
use crate::train::tune::fit_temperature;
use crate::train::{self, TrainOpts};
use crate::{compare, segment};

/// Dispatch a parsed command line.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Score(a) => score(a),
        Command::Compare(a) => compare_cmd(a),
        Command::Split(a) => split(a),
        Command::Train(TrainCommand::Loaded(a)) => train_loaded(a),
        Command::Eval(c) => super::eval_cmd::run(c),
        Command::Train(TrainCommand::Frames(a)) => super::frames_cmd::train_frames(a),
        Command::Train(TrainCommand::Attribution(a)) => {
            super::attribution_cmd::train_attribution(a)
        }
        Command::Train(TrainCommand::LoadedSpans(a)) => super::spans_cmd::train_spans(a),
        Command::Train(TrainCommand::LoadedTuned(a)) => super::tuned_cmd::train_tuned(a),
    }
}

pub(super) fn threads() -> usize {
    rayon::current_num_threads()
}

/// Find `models/<name>` of the slant checkout: above the current directory or the executable.
pub(super) fn find_models_file(name: &str) -> Option<PathBuf> {
    find_checkout_file(&Path::new("models").join(name))
}

/// Find `rel` (e.g. `eval/splitter/cases.jsonl`) of the slant checkout: above the current
/// directory or the executable.
pub(super) fn find_checkout_file(rel: &Path) -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(c) = std::env::current_dir() {
        starts.push(c);
    }
    if let Ok(e) = std::env::current_exe() {
        if let Some(p) = e.parent() {
            starts.push(p.to_path_buf());
        }
    }
    starts
        .iter()
        .flat_map(|s| s.ancestors())
        .map(|d| d.join(rel))
        .find(|p| p.is_file())
}

pub(super) fn load_encoder(m: &ModelArgs) -> Result<Encoder> {
    let dir = encode::resolve_model_dir(m.model.as_deref())?;
    Encoder::load_full(&dir, m.engine, m.precision)
        .with_context(|| format!("loading the encoder from {}", dir.display()))
}

pub(super) fn load_head(m: &ModelArgs) -> Result<(MlpHead, PathBuf)> {
    let path = match &m.head {
        Some(p) => p.clone(),
        None => find_models_file(LOADED_HEAD_FILE).with_context(|| {
            format!(
                "no loaded-language head: models/{LOADED_HEAD_FILE} was not found above the \
                 current directory; pass --head FILE or train one with `slant train loaded`"
            )
        })?,
    };
    let head = MlpHead::load(&path)?;
    Ok((head, path))
}

/// The span head a sentence head of kind `kind` reads evidence from (`--spans-head`, else
/// `models/loaded_spans.safetensors`), checked against the sha256 in the sentence head's
/// header: `(head, sha256, shown path)`; `None` for a mean-pooling head.
pub(super) fn evidence_span_head(
    kind: &SentenceFeatures,
    m: &ModelArgs,
) -> Result<Option<(TaggerHead, String, String)>> {
    if kind.span_sha256().is_none() {
        return Ok(None);
    }
    let path = super::spans_cmd::spans_head_path(m.spans_head.as_ref())
        .context("the loaded-language head reads span evidence")?;
    let sha = sha256_file(&path)?;
    kind.check_span_head(Some(&sha), &path.display().to_string())?;
    let head = TaggerHead::load(&path)?;
    Ok(Some((head, sha, path.display().to_string())))
}

/// The features the sentence head `head` reads for `rows` (mean pooling, or mean pooling plus
/// the evidence of its span head, found as in [`evidence_span_head`]).
pub(super) fn sentence_head_features(
    enc: &Encoder,
    head: &MlpHead,
    m: &ModelArgs,
    rows: &[crate::data::LabelledSentence],
    what: &str,
) -> Result<Vec<Vec<f32>>> {
    let kind = SentenceFeatures::of(head)?;
    let span = evidence_span_head(&kind, m)?;
    Ok(crate::eval::loaded::head_features(
        enc,
        rows,
        m.batch_size,
        what,
        &kind,
        span.as_ref().map(|(h, s, p)| (h, s.as_str(), p.as_str())),
    )?)
}

fn load_scorer(m: &ModelArgs) -> Result<(Scorer, String)> {
    let encoder = load_encoder(m)?;
    let tuned = load_tuned_head(m, &encoder)?;
    // A tuned head that blends reads its partner (a frozen-encoder MLP head beside it) as the
    // MLP head; otherwise the MLP head is --head / models/loaded.safetensors.
    let (loaded, head_path) = match &tuned {
        Some((t, _, tpath)) if t.blend.is_some() => tuned_partner(t, tpath)?,
        _ => load_head(m)?,
    };
    let kind = SentenceFeatures::of(&loaded)
        .with_context(|| format!("loaded-language head {}", head_path.display()))?;
    if loaded.input != kind.dim(encoder.hidden_size()) {
        bail!(
            "head {} expects {}-dimensional features but its features ({}) on this encoder have {}",
            head_path.display(),
            loaded.input,
            kind.name(),
            kind.dim(encoder.hidden_size())
        );
    }
    warn_other_encoder(
        "head",
        &head_path,
        loaded.meta.get("encoder_sha256"),
        &encoder,
    );
    let head_sha = match &tuned {
        Some((_, sha, _)) => sha.clone(),
        None => sha256_file(&head_path)?,
    };
    let encoder_sha = encoder.weights_sha256().to_string();
    // The MLP head's span evidence is needed unless a tuned head alone gives the probability.
    let mlp_used = tuned.as_ref().is_none_or(|(t, _, _)| t.blend.is_some());
    let attribution = if m.no_attribution {
        None
    } else {
        load_attribution_head(&encoder_sha)?
    };
    if let Some(h) = &attribution {
        check_extra_layers(h, &encoder)?;
    }
    let spans = if m.no_spans {
        None
    } else {
        load_spans_head(&encoder_sha, m.spans_head.as_ref())?
    };
    // A head reading span evidence gets it from the span head of the same pass when that is
    // the head it was trained with (checked by sha256), else from its own copy (--no-spans).
    let evidence = match evidence_span_head(&kind, m)
        .with_context(|| format!("loaded-language head {}", head_path.display()))?
    {
        // A tuned head alone gives the sentence probability: no evidence is needed.
        _ if !mlp_used => None,
        None => None,
        Some((head, _, _)) if spans.is_some() => {
            debug_assert_eq!(spans.as_ref(), Some(&head));
            Some(EvidenceHead::Spans)
        }
        Some((head, _, _)) => Some(EvidenceHead::Own(Box::new(head))),
    };
    Ok((
        Scorer {
            encoder,
            loaded,
            batch_size: m.batch_size.max(1),
            terms: None,
            frames: load_frames_head(&encoder_sha)?,
            attribution,
            spans,
            evidence,
            tuned: tuned.map(|(t, _, _)| t),
        },
        head_sha,
    ))
}

/// Warn when a head's header names another encoder (`want`: its `encoder_sha256`).
fn warn_other_encoder(what: &str, path: &Path, want: Option<&String>, encoder: &Encoder) {
    if let Some(want) = want.filter(|w| *w != encoder.weights_sha256()) {
        eprintln!(
            "warning: {what} {} was trained on encoder {}…, but this encoder is {}…; scores may \
             be meaningless",
            path.display(),
            &want[..12.min(want.len())],
            &encoder.weights_sha256()[..12]
        );
    }
}

/// The frozen partner a blending tuned head names, beside it, checked by sha256.
fn tuned_partner(t: &crate::heads::tuned::TunedLoaded, tpath: &Path) -> Result<(MlpHead, PathBuf)> {
    let b = t
        .blend
        .as_ref()
        .context("the tuned head blends with no partner")?;
    let p = tpath
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&b.partner_file);
    let sha = sha256_file(&p).with_context(|| {
        format!(
            "the tuned head {} blends with {}, which cannot be read; drop --tuned to \
             use the frozen head",
            tpath.display(),
            p.display()
        )
    })?;
    if sha != b.partner_sha256 {
        bail!(
            "{} is not the partner the tuned head {} was trained with (sha256 {}…, \
             expected {}…); retrain with `slant train loaded-tuned` or drop --tuned",
            p.display(),
            tpath.display(),
            &sha[..12],
            &b.partner_sha256[..12.min(b.partner_sha256.len())]
        );
    }
    Ok((MlpHead::load(&p)?, p))
}

/// The outcome of the loaded-language head `slant score` uses on `rows`: the tuned head (blended
/// with its partner when it has one) when present, else the frozen head; and that head's path.
pub(super) fn scorer_head_outcome(
    enc: &Encoder,
    m: &ModelArgs,
    rows: &[crate::data::LabelledSentence],
    what: &str,
) -> Result<(crate::eval::loaded::LoadedOutcome, PathBuf)> {
    let y = crate::eval::loaded::labels(rows);
    let Some((t, _, tpath)) = load_tuned_head(m, enc)? else {
        let (head, head_path) = load_head(m)?;
        let x = sentence_head_features(enc, &head, m, rows, what)?;
        return Ok((crate::eval::loaded::evaluate_head(&head, &x, &y), head_path));
    };
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let states = enc.states_after(&texts, t.first_layer, m.batch_size)?;
    let refs: Vec<&[f32]> = states.iter().map(Vec::as_slice).collect();
    let zt = t.logits(&refs)?;
    let zm = match &t.blend {
        None => None,
        Some(_) => {
            let (partner, _) = tuned_partner(&t, &tpath)?;
            let x = sentence_head_features(enc, &partner, m, rows, what)?;
            Some(crate::eval::loaded::logits(&partner, &x))
        }
    };
    let p = t.combine(&zt, zm.as_deref())?;
    Ok((
        crate::eval::loaded::evaluate_probs(p, &y, t.threshold),
        tpath,
    ))
}

/// The tuned loaded-language head when asked for (`--tuned-head FILE`, or `--tuned`:
/// `models/loaded_tuned.safetensors`), its sha256 and path. It needs the fast engine, which keeps the
/// states of the layer below its tuned top during the single encoder pass.
fn load_tuned_head(
    m: &ModelArgs,
    encoder: &Encoder,
) -> Result<Option<(crate::heads::tuned::TunedLoaded, String, PathBuf)>> {
    if !m.tuned && m.tuned_head.is_none() {
        return Ok(None);
    }
    let path = match &m.tuned_head {
        Some(p) => p.clone(),
        None => find_models_file(crate::heads::tuned::TUNED_HEAD_FILE).with_context(|| {
            format!(
                "--tuned: models/{} was not found above the current directory; train one with \
                 `slant train loaded-tuned` or pass --tuned-head FILE",
                crate::heads::tuned::TUNED_HEAD_FILE
            )
        })?,
    };
    if encoder.engine() != crate::encode::Engine::Fast {
        bail!(
            "the tuned loaded-language head {} reruns the encoder's top layers on the states \
             the fast engine keeps: use --engine fast, or drop --tuned for the frozen head",
            path.display()
        );
    }
    let t = crate::heads::tuned::TunedLoaded::load(&path, encoder.dir())?;
    if t.first_layer >= encoder.layers() {
        bail!(
            "tuned head {}: its top starts after layer {} but the encoder has {} layers",
            path.display(),
            t.first_layer,
            encoder.layers()
        );
    }
    warn_other_encoder("tuned head", &path, t.meta.get("encoder_sha256"), encoder);
    let sha = sha256_file(&path)?;
    Ok(Some((t, sha, path)))
}

/// The committed frames head (`models/frames.safetensors`), if present. Its labels must be
/// slant's 14 frames.
fn load_frames_head(encoder_sha: &str) -> Result<Option<FramesHead>> {
    let Some(path) = find_models_file(FRAMES_HEAD_FILE) else {
        return Ok(None);
    };
    let head = FramesHead::load(&path)?;
    if head.labels != FRAMES {
        bail!("{}: labels are not slant's 14 frames", path.display());
    }
    if head
        .meta
        .get("encoder_sha256")
        .is_some_and(|w| w != encoder_sha)
    {
        eprintln!(
            "warning: frames head {} was trained on another encoder; frame scores may be meaningless",
            path.display()
        );
    }
    Ok(Some(head))
}

/// The committed attribution tagger (`models/attribution.safetensors`), if present; its labels
/// must be the attribution BIO labels.
fn load_attribution_head(encoder_sha: &str) -> Result<Option<TaggerHead>> {
    match find_models_file(crate::attribution::ATTRIBUTION_HEAD_FILE) {
        Some(path) => {
            // The labels of the head's own scheme (flat unless its header says per_role).
            let scheme = TaggerHead::load(&path)?.scheme();
            load_tagger(
                &path,
                &crate::attribution::labels_of(scheme),
                "attribution head",
                encoder_sha,
            )
            .map(Some)
        }
        None => Ok(None),
    }
}

/// A tagger that reads a lower encoder layer (`extra_layer` in its header) needs a layer the
/// encoder has and the fast engine, which keeps that layer's states during its single pass.
fn check_extra_layers(head: &TaggerHead, encoder: &Encoder) -> Result<()> {
    head.check_extra_layers(encoder.layers())?;
    if head.extra_layers().is_some() && encoder.engine() != crate::encode::Engine::Fast {
        bail!(
            "the attribution head reads the token states of encoder layer {} besides the final \
             ones, which only the fast engine keeps: use --engine fast (or --no-attribution)",
            head.meta
                .get(crate::heads::tagger::META_EXTRA_LAYER)
                .map_or("?", String::as_str)
        );
    }
    Ok(())
}

/// The loaded-language span head: `explicit`, else `models/loaded_spans.safetensors` if present.
fn load_spans_head(encoder_sha: &str, explicit: Option<&PathBuf>) -> Result<Option<TaggerHead>> {
    let path = match explicit {
        Some(p) => p.clone(),
        None => match find_models_file(crate::train::loaded_spans::LOADED_SPANS_HEAD_FILE) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    load_tagger(
        &path,
        &crate::train::loaded_spans::labels(),
        "span head",
        encoder_sha,
    )
    .map(Some)
}

/// Load a token tagger, check its labels, and warn when it was trained on another encoder.
fn load_tagger(
    path: &Path,
    labels: &[String],
    what: &str,
    encoder_sha: &str,
) -> Result<TaggerHead> {
    let head = TaggerHead::load(path)?;
    if head.labels != labels {
        bail!("{}: labels are not the {what}'s {labels:?}", path.display());
    }
    if head
        .meta
        .get("encoder_sha256")
        .is_some_and(|w| w != encoder_sha)
    {
        eprintln!(
            "warning: {what} {} was trained on another encoder; its output may be meaningless",
            path.display()
        );
    }
    Ok(head)
}

/// One article of `score --format json`'s `articles` array.
#[derive(Debug, Serialize)]
struct ArticleRecord {
    id: String,
    source: String,
    sentences: u64,
    /// P(frame) per frame (absent without the frames head).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    frames: BTreeMap<String, f64>,
}

/// Manifest of a scoring run: everything needed to reproduce it (no timings, so it is stable).
#[derive(Debug, Serialize)]
struct ScoreManifest {
    slant_version: String,
    git_commit: String,
    encoder: String,
    encoder_sha256: String,
    loaded_head_sha256: String,
    loaded_threshold: f32,
    max_tokens: usize,
    batch_size: usize,
    inputs: Vec<String>,
    articles: usize,
    sentences: usize,
    truncated_sentences: usize,
    record_errors: usize,
    /// `"int8"` with `--precision int8`; absent for fp32 (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<&'static str>,
}

fn out_writer(out: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match out {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

fn report_error(e: &RecordError) {
    eprintln!("error: {e}");
}

/// Streams the corpus through the scorer, calling `each` per scored article.
fn run_corpus(
    inputs: &[PathBuf],
    scorer: &Scorer,
    mut each: impl FnMut(&crate::pipeline::ScoredArticle) -> Result<()>,
) -> Result<(Corpus, Vec<RecordError>, EncodeStats, usize)> {
    let mut corpus = Corpus::default();
    let mut errors = Vec::new();
    let mut stats = EncodeStats::default();
    let mut n_articles = 0;
    let mut chunk: Vec<Article> = Vec::with_capacity(DEFAULT_CHUNK_ARTICLES);
    let mut flush = |chunk: &mut Vec<Article>,
                     corpus: &mut Corpus,
                     stats: &mut EncodeStats,
                     n_articles: &mut usize|
     -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let (scored, s) = scorer.score_chunk(chunk)?;
        stats.sentences += s.sentences;
        stats.tokens += s.tokens;
        stats.padded_tokens += s.padded_tokens;
        stats.truncated += s.truncated;
        stats.batches += s.batches;
        for a in &scored {
            each(a)?;
        }
        *corpus += Corpus::from_summaries(scored.into_iter().map(|a| a.summary).collect());
        *n_articles += chunk.len();
        chunk.clear();
        Ok(())
    };
    for item in ingest::open(inputs) {
        match item {
            Ok(a) => {
                chunk.push(a);
                if chunk.len() >= DEFAULT_CHUNK_ARTICLES {
                    flush(&mut chunk, &mut corpus, &mut stats, &mut n_articles)?;
                }
            }
            Err(e) => {
                report_error(&e);
                errors.push(e);
            }
        }
    }
    flush(&mut chunk, &mut corpus, &mut stats, &mut n_articles)?;
    Ok((corpus, errors, stats, n_articles))
}

fn score(a: ScoreArgs) -> Result<i32> {
    let t0 = Instant::now();
    let (scorer, head_sha) = load_scorer(&a.model)?;
    let mut w = out_writer(&a.out)?;
    let mut all_sentences: Vec<SentenceRecord> = Vec::new();
    let mut csv_w = if a.format == ScoreFormat::Csv {
        Some(csv::Writer::from_writer(std::mem::replace(
            &mut w,
            Box::new(std::io::sink()),
        )))
    } else {
        None
    };
    let keep_all = matches!(a.format, ScoreFormat::Json | ScoreFormat::Table);
    let mut all_articles: Vec<ArticleRecord> = Vec::new();
    let (corpus, errors, stats, n_articles) = run_corpus(&a.inputs, &scorer, |art| {
        match a.format {
            ScoreFormat::Jsonl => {
                for r in &art.sentences {
                    serde_json::to_writer(&mut w, r)?;
                    w.write_all(b"\n")?;
                }
            }
            ScoreFormat::Csv => {
                let cw = csv_w.as_mut().expect("csv writer");
                for r in &art.sentences {
                    cw.serialize(crate::aggregate::CsvSentenceRecord::from(r))?;
                }
            }
            _ => {}
        }
        if keep_all {
            all_sentences.extend(art.sentences.iter().cloned());
        }
        if a.format == ScoreFormat::Json {
            all_articles.push(ArticleRecord {
                id: art.summary.id.clone(),
                source: art.summary.source.clone(),
                sentences: art.summary.sentences,
                frames: art.frames(),
            });
        }
        Ok(())
    })?;
    if let Some(mut cw) = csv_w.take() {
        cw.flush()?;
    }
    let profiles = corpus.profiles();
    let manifest = ScoreManifest {
        slant_version: version_info().0,
        git_commit: version_info().1,
        encoder: scorer
            .encoder
            .dir()
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        encoder_sha256: scorer.encoder.weights_sha256().to_string(),
        loaded_head_sha256: head_sha,
        loaded_threshold: scorer.loaded_threshold(),
        max_tokens: scorer.encoder.max_tokens(),
        batch_size: scorer.batch_size,
        inputs: a.inputs.iter().map(|p| p.display().to_string()).collect(),
        articles: n_articles,
        sentences: stats.sentences,
        truncated_sentences: stats.truncated,
        record_errors: errors.len(),
        precision: (scorer.encoder.precision() == crate::encode::Precision::Int8).then_some("int8"),
    };
    match a.format {
        ScoreFormat::Json => {
            all_sentences.sort_by(|x, y| (&x.article, x.index).cmp(&(&y.article, y.index)));
            all_articles.sort_by(|x, y| x.id.cmp(&y.id));
            let obj = json!({
                "sources": profiles,
                "actors": corpus.actor_report(crate::actors::DEFAULT_MAIN_ACTORS),
                "articles": all_articles,
                "sentences": all_sentences,
                "errors": errors,
                "manifest": manifest,
            });
            serde_json::to_writer_pretty(&mut w, &obj)?;
            w.write_all(b"\n")?;
        }
        ScoreFormat::Table => {
            let mut table =
                render_profiles(&profiles, &all_sentences, a.top, scorer.loaded_threshold());
            table.push_str(&crate::actors::render(
                &corpus.actor_report(crate::actors::DEFAULT_MAIN_ACTORS),
                4,
            ));
            w.write_all(table.as_bytes())?;
        }
        _ => {
            if a.out.is_some() && !a.quiet {
                eprint!(
                    "{}",
                    render_profiles(&profiles, &[], 0, scorer.loaded_threshold())
                );
            }
        }
    }
    w.flush()?;
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
            errors.len()
        );
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn fmt_ci(ci: [f64; 2]) -> String {
    format!("[{:.3}, {:.3}]", ci[0], ci[1])
}

/// The human table of `score`.
fn render_profiles(
    profiles: &[SourceProfile],
    sentences: &[SentenceRecord],
    top: usize,
    threshold: f32,
) -> String {
    let mut s = String::new();
    let w = profiles
        .iter()
        .map(|p| p.source.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    s.push_str(&format!(
        "{:<w$}  {:>8}  {:>9}  {:>12}  {:<16}  {:>11}  {:<16}\n",
        "source", "articles", "sentences", "loaded share", "95% CI", "mean loaded", "95% CI"
    ));
    for p in profiles {
        s.push_str(&format!(
            "{:<w$}  {:>8}  {:>9}  {:>12.3}  {:<16}  {:>11.3}  {:<16}\n",
            p.source,
            p.articles,
            p.sentences,
            p.loaded_share,
            fmt_ci(p.loaded_share_ci),
            p.mean_loaded,
            fmt_ci(p.mean_loaded_ci),
        ));
    }
    let few: Vec<&str> = profiles
        .iter()
        .filter(|p| {
            p.articles < crate::aggregate::MIN_ARTICLES_FOR_BOOTSTRAP as u64 && p.sentences > 0
        })
        .map(|p| p.source.as_str())
        .collect();
    s.push_str(&format!(
        "\nloaded share = share of sentences with P(loaded) >= {threshold:.2}.\n"
    ));
    if !few.is_empty() {
        s.push_str(&format!(
            "Intervals for sources with fewer than {} articles ({}) are over sentences and treat them as \
             independent, so they are too narrow; more articles per source give intervals over articles.\n",
            crate::aggregate::MIN_ARTICLES_FOR_BOOTSTRAP,
            if few.len() > 4 { format!("{} sources", few.len()) } else { few.join(", ") }
        ));
    }
    if profiles.iter().any(|p| !p.frames.is_empty()) {
        s.push_str("\nmost likely frames (mean P(frame) over the source's articles):\n");
        for p in profiles.iter().filter(|p| !p.frames.is_empty()) {
            let mut f: Vec<(&String, &f64)> = p.frames.iter().collect();
            f.sort_by(|x, y| y.1.total_cmp(x.1).then_with(|| x.0.cmp(y.0)));
            let top3: Vec<String> = f
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect();
            s.push_str(&format!("  {:<w$}  {}\n", p.source, top3.join(", ")));
        }
    }
    if profiles.iter().any(|p| p.attribution.is_some()) {
        s.push_str(
            "\nattributions (rate = sentences with one; loaded = share of evaluative cue verbs; \
             unattributed = assertions in the outlet's own voice):\n",
        );
        for p in profiles {
            let Some(a) = &p.attribution else { continue };
            let cues: Vec<String> = a
                .top_cues
                .iter()
                .take(4)
                .map(|c| format!("{} {}", c.lemma, c.count))
                .collect();
            let who: Vec<String> = a
                .speakers
                .iter()
                .take(3)
                .map(|x| format!("{} {:.0}%", x.speaker, 100.0 * x.share_of_voice))
                .collect();
            s.push_str(&format!(
                "  {:<w$}  rate {:.3}  loaded {:.3}  unattributed {:.3}  cues: {}  quoted: {}\n",
                p.source,
                a.attribution_rate,
                a.loaded_cue_share,
                a.unattributed_share,
                if cues.is_empty() {
                    "-".into()
                } else {
                    cues.join(", ")
                },
                if who.is_empty() {
                    "-".into()
                } else {
                    who.join(", ")
                },
            ));
        }
    }
    if profiles.iter().any(|p| p.loaded_term_share.is_some()) {
        s.push_str(
            "\nloaded terms (span head; share of sentences with any, most frequent terms):\n",
        );
        for p in profiles {
            let Some(share) = p.loaded_term_share else {
                continue;
            };
            let terms: Vec<String> = p
                .loaded_terms
                .iter()
                .take(5)
                .map(|t| format!("{} {}", t.term, t.count))
                .collect();
            s.push_str(&format!(
                "  {:<w$}  {:.3}  {}\n",
                p.source,
                share,
                terms.join(", ")
            ));
        }
    }
    if top > 0 && !sentences.is_empty() {
        if sentences.iter().any(|r| !r.display_spans.is_empty()) {
            s.push_str("\n[[...]] marks the loaded-language spans the span head found.\n");
        }
        for p in profiles {
            let mut v: Vec<&SentenceRecord> =
                sentences.iter().filter(|r| r.source == p.source).collect();
            v.sort_by(|x, y| {
                y.loaded
                    .total_cmp(&x.loaded)
                    .then_with(|| (&x.article, x.index).cmp(&(&y.article, y.index)))
            });
            s.push_str(&format!("\nmost loaded sentences of {}:\n", p.source));
            for r in v.into_iter().take(top) {
                let marked = r.marked_text();
                let text: String = if marked.chars().count() > 160 {
                    format!("{}…", marked.chars().take(159).collect::<String>())
                } else {
                    marked
                };
                s.push_str(&format!("  {:.3}  {}\n", r.loaded, text));
            }
        }
    }
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

fn compare_cmd(a: CompareArgs) -> Result<i32> {
    let t0 = Instant::now();
    let (mut scorer, _) = load_scorer(&a.model)?;
    if a.terms > 0 {
        scorer.terms = Some(TermOpts {
            sources: [a.a.clone(), a.b.clone()].into_iter().collect(),
            bigrams: a.bigrams,
        });
    }
    let (corpus, errors, stats, _) = run_corpus(&a.inputs, &scorer, |_| Ok(()))?;
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
    if a.a == a.b {
        bail!("--a and --b name the same source `{}`", a.a);
    }
    let (sa, sb) = (&corpus.sources[&a.a], &corpus.sources[&a.b]);
    let mut c = compare::compare(&a.a, sa, &a.b, sb, a.reps, a.seed);
    c.distinctive = crate::terms::distinctive(&sa.terms, &sb.terms, a.terms);
    let mut out = std::io::stdout().lock();
    match a.format {
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &c)?;
            out.write_all(b"\n")?;
        }
        ReportFormat::Table => out.write_all(compare::render_table(&c).as_bytes())?,
    }
    out.flush()?;
    if !a.quiet {
        eprintln!(
            "slant: {} sentences in {:.1}s, {} record errors",
            stats.sentences,
            t0.elapsed().as_secs_f64(),
            errors.len()
        );
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn split(a: SplitArgs) -> Result<i32> {
    let mut bytes = Vec::new();
    if a.input.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!("slant split: reading text from stdin (Ctrl-D to end)");
        }
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes =
            std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: invalid UTF-8 at byte offset {}",
            a.input.display(),
            e.valid_up_to()
        )
    })?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for s in segment::split(text) {
        let t = segment::display_text(&text[s.start..s.end]);
        match a.format {
            SplitFormat::Text => writeln!(out, "{t}")?,
            SplitFormat::Jsonl => {
                serde_json::to_writer(
                    &mut out,
                    &json!({"start": s.start, "end": s.end, "text": t}),
                )?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// train / eval

fn train_loaded(a: TrainLoadedArgs) -> Result<i32> {
    let t0 = Instant::now();
    let data_dir = data::resolve_data_dir(a.data.data.as_deref())?;
    let enc = load_encoder(&a.model)?;
    let (tr, tr_path) = data::anno_lexical(&data_dir, "train")?;
    let (dv, dv_path) = data::anno_lexical(&data_dir, "dev")?;
    let (te, te_path) = data::anno_lexical(&data_dir, "test")?;
    let (babe, babe_path) = data::babe_sg2(&data_dir)?;
    eprintln!(
        "slant train loaded: encoding (cached under {})",
        train::cache_dir().display()
    );
    let bs = a.model.batch_size;
    let span = match &a.span_evidence {
        None => None,
        Some(p) => {
            let head = TaggerHead::load(p)?;
            if head.labels != crate::train::loaded_spans::labels() {
                bail!("{}: not a loaded-language span head", p.display());
            }
            Some((head, sha256_file(p)?, p.display().to_string()))
        }
    };
    let kind = match &span {
        None => SentenceFeatures::Mean,
        Some((_, sha, _)) => SentenceFeatures::MeanSpanEvidence {
            span_sha256: sha.clone(),
        },
    };
    let span_ref = span.as_ref().map(|(h, s, p)| (h, s.as_str(), p.as_str()));
    let f = |rows: &[crate::data::LabelledSentence], what: &str| {
        crate::eval::loaded::head_features(&enc, rows, bs, what, &kind, span_ref)
    };
    let (xtr, xdv, xte, xbabe) = (
        f(&tr, "anno-lexical train")?,
        f(&dv, "anno-lexical dev")?,
        f(&te, "anno-lexical test")?,
        f(&babe, "BABE SG2")?,
    );
    let (ytr, ydv, yte, ybabe) = (labels(&tr), labels(&dv), labels(&te), labels(&babe));
    let training = crate::eval::loaded::HeadTraining {
        ensemble: a.ensemble.max(1),
        weight_decay: a.weight_decay,
        repeat: 1,
    };
    let opts = TrainOpts {
        weight_decay: a.weight_decay,
        ..train_opts(a.hidden, a.seed)
    };
    let t1 = Instant::now();
    let mut head = crate::eval::loaded::train_head(
        &xtr,
        &ytr,
        Some((&xdv, &ydv)),
        a.hidden,
        a.seed,
        &training,
    )?;
    eprintln!("  trained in {:.1}s", t1.elapsed().as_secs_f64());
    // Threshold on the raw dev probabilities; then one temperature fitted on dev (NLL), with the
    // threshold mapped through the same monotone map, so every decision stays as it was.
    let (thr_raw, _) = best_threshold(&probs(&head, &xdv), &ydv);
    let ece_raw_test = ece_of(&probs(&head, &xte), &yte);
    let ece_raw_babe = ece_of(&probs(&head, &xbabe), &ybabe);
    let temp = fit_temperature(&loaded_logits(&head, &xdv), &ydv);
    head.temperature = temp;
    head.threshold = calibrated_threshold(thr_raw, temp);
    let thr = head.threshold;
    let pdv = probs(&head, &xdv);
    let m_dev = metrics_at(&pdv, &ydv, thr);
    let pte = probs(&head, &xte);
    let m_test = metrics_at(&pte, &yte, thr);
    let pb = probs(&head, &xbabe);
    let m_babe = metrics_at(&pb, &ybabe, thr);
    let cal = Calibration {
        temperature: temp,
        threshold_raw: thr_raw,
        ece_test: (ece_raw_test, ece_of(&pte, &yte)),
        ece_babe: (ece_raw_babe, ece_of(&pb, &ybabe)),
    };
    let files = [
        DataFile::new(&data_dir, &tr_path)?,
        DataFile::new(&data_dir, &dv_path)?,
        DataFile::new(&data_dir, &te_path)?,
        DataFile::new(&data_dir, &babe_path)?,
    ];
    let mut meta: BTreeMap<String, String> = [
        ("head", "loaded-language sentence head".to_string()),
        ("encoder_sha256", enc.weights_sha256().to_string()),
        ("trained_on", "anno-lexical train (MIT)".into()),
        (
            "threshold_chosen_on",
            "anno-lexical dev (max macro-F1 of the uncalibrated probabilities, mapped through the temperature)".into(),
        ),
        (
            "temperature_fitted_on",
            "anno-lexical dev (min NLL over 2^-2..2^2)".into(),
        ),
        ("train_opts", serde_json::to_string(&opts)?),
        ("ensemble", training.ensemble.to_string()),
        ("data_files", serde_json::to_string(&files)?),
        ("dev_macro_f1", format!("{:.4}", m_dev.macro_f1)),
        ("test_macro_f1", format!("{:.4}", m_test.macro_f1)),
        ("babe_zero_shot_macro_f1", format!("{:.4}", m_babe.macro_f1)),
        ("slant_version", version_info().0),
        ("git_commit", version_info().1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    kind.write(&mut meta);
    head.meta = meta;
    head.save(&a.out)?;
    let head_sha = sha256_file(&a.out)?;
    let card = model_card(
        &head, &head_sha, &enc, &opts, &files, &m_dev, &m_test, &m_babe, &cal, &a, &kind,
    );
    std::fs::write(&a.card, card).with_context(|| format!("writing {}", a.card.display()))?;
    println!(
        "wrote {} (sha256 {}) and {}\nthreshold {:.2} (chosen on anno-lexical dev)\n\
         anno-lexical dev  macro-F1 {:.4}\nanno-lexical test macro-F1 {:.4}\n\
         BABE SG2 zero-shot macro-F1 {:.4}\ntemperature {} (fitted on anno-lexical dev): \
         ECE anno-lexical test {:.4} -> {:.4}, BABE SG2 zero-shot {:.4} -> {:.4}\ntotal {:.1}s",
        a.out.display(),
        head_sha,
        a.card.display(),
        thr,
        m_dev.macro_f1,
        m_test.macro_f1,
        m_babe.macro_f1,
        temp,
        cal.ece_test.0,
        cal.ece_test.1,
        cal.ece_babe.0,
        cal.ece_babe.1,
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// Temperature scaling of the shipped sentence head, for its card.
struct Calibration {
    temperature: f32,
    /// The threshold chosen on the uncalibrated dev probabilities.
    threshold_raw: f32,
    /// ECE (before, after) on anno-lexical test and on BABE SG2.
    ece_test: (f64, f64),
    ece_babe: (f64, f64),
}

/// The head's logits (temperature 1).
fn loaded_logits(head: &MlpHead, x: &[Vec<f32>]) -> Vec<f32> {
    crate::eval::loaded::logits(head, x)
}

/// The threshold on `sigmoid(z / t)` that makes the same decisions as `thr` on `sigmoid(z)`.
fn calibrated_threshold(thr: f32, t: f32) -> f32 {
    let thr = thr.clamp(1e-6, 1.0 - 1e-6) as f64;
    let z = (thr / (1.0 - thr)).ln();
    (1.0 / (1.0 + (-z / t as f64).exp())) as f32
}

#[allow(clippy::too_many_arguments)]
fn model_card(
    head: &MlpHead,
    head_sha: &str,
    enc: &Encoder,
    opts: &TrainOpts,
    files: &[DataFile],
    dev: &BinaryMetrics,
    test: &BinaryMetrics,
    babe: &BinaryMetrics,
    cal: &Calibration,
    a: &TrainLoadedArgs,
    kind: &SentenceFeatures,
) -> String {
    let row = |name: &str, m: &BinaryMetrics| {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            m.n,
            m.tp,
            m.fp,
            m.fn_,
            m.tn,
            m.positive.precision,
            m.positive.recall,
            m.positive.f1,
            m.macro_f1
        )
    };
    let mut s = String::new();
    s.push_str("# Model card: loaded-language sentence head (`models/loaded.safetensors`)\n\n");
    s.push_str("Generated by `slant train loaded`; do not edit by hand.\n\n");
    s.push_str("## What it is\n");
    let evidence = match kind.span_sha256() {
        None => String::new(),
        Some(sha) => format!(
            ", followed by two span-evidence features read from the token states of the same \
             encoder pass: the max and the mean, over the sentence's word-piece tokens, of P(not `O`) \
             of the span head with sha256 `{sha}` (header `features` = `{}`; `slant score` refuses \
             another span head)",
            kind.name()
        ),
    };
    s.push_str(&format!(
        "A {} on the L2-normalised mean-pooled final hidden states of the frozen encoder \
         (all-MiniLM-L6-v2, `model.safetensors` sha256 `{}`){evidence}. Output: P(sentence uses loaded / \
         lexically biased language), temperature-scaled (T = {}, fitted on anno-lexical dev). \
         Decision threshold {:.4} (= {:.2} on the uncalibrated probability, chosen on anno-lexical dev to \
         maximise macro-F1; the temperature changes no decision).\n\n",
        if head.hidden > 0 {
            format!("one-hidden-layer perceptron ({} ReLU units)", head.hidden)
        } else {
            "logistic regression".to_string()
        },
        enc.weights_sha256(),
        cal.temperature,
        head.threshold,
        cal.threshold_raw
    ));
    s.push_str(&format!("Head file sha256: `{head_sha}`\n\n"));
    s.push_str("## Data\n");
    s.push_str("- Train: anno-lexical train (33,831 sentences; LLM-annotated lexical bias; MIT licence, Media Bias Group).\n");
    s.push_str("- Model selection (early stopping), threshold and temperature: anno-lexical dev (7,249); no BABE sentence is used to fit anything.\n");
    s.push_str("- Test: anno-lexical test (7,250) and, as zero-shot transfer, all of BABE SG2 (3,673 expert-labelled sentences, AGPL-3.0; read by path, never committed).\n\n");
    s.push_str("Data files (paths relative to `--data`):\n\n");
    for f in files {
        s.push_str(&format!("- `{}` sha256 `{}`\n", f.path, f.sha256));
    }
    s.push_str(&format!(
        "\n## Training\nAdamW (lr {}, weight decay {}), batch {}, at most {} epochs, early stopping \
         on dev loss (patience {}), seed {}{}. Features are cached by encoder checksum and text.\n\n",
        opts.lr,
        opts.weight_decay,
        opts.batch_size,
        opts.epochs,
        opts.patience,
        opts.seed,
        if a.ensemble > 1 {
            format!(
                "; a seed ensemble: {} heads (seeds {}..={}) each early-stopped on dev, their logits \
                 averaged (stored as one head of {} hidden units)",
                a.ensemble,
                opts.seed,
                opts.seed + a.ensemble as u64 - 1,
                head.hidden
            )
        } else {
            String::new()
        }
    ));
    s.push_str("## Metrics (positive class = loaded)\n\n");
    s.push_str("| set | n | TP | FP | FN | TN | P | R | F1 | macro-F1 |\n|---|---|---|---|---|---|---|---|---|---|\n");
    s.push_str(&row("anno-lexical dev", dev));
    s.push_str(&row("anno-lexical test", test));
    s.push_str(&row("BABE SG2 (zero-shot)", babe));
    s.push_str(&format!(
        "\nExpected calibration error ({} equal-width bins), before -> after temperature scaling \
         (T = {}, fitted on anno-lexical dev by minimum log-loss over 2^-2..2^2): anno-lexical test \
         {:.4} -> {:.4}; BABE SG2 zero-shot {:.4} -> {:.4}.\n\n",
        crate::eval::loaded::ECE_BINS,
        cal.temperature,
        cal.ece_test.0,
        cal.ece_test.1,
        cal.ece_babe.0,
        cal.ece_babe.1
    ));
    s.push_str("## Reproduce\n\n```\nmodels/fetch\ncargo build --release\n");
    s.push_str(&format!(
        "target/release/slant train loaded --data DIR --hidden {} --seed {}{}{}{}\n```\n",
        a.hidden,
        a.seed,
        if kind.span_sha256().is_some() {
            " --span-evidence models/loaded_spans.safetensors"
        } else {
            ""
        },
        if a.ensemble > 1 {
            format!(" --ensemble {}", a.ensemble)
        } else {
            String::new()
        },
        if a.weight_decay != TrainOpts::default().weight_decay {
            format!(" --weight-decay {}", a.weight_decay)
        } else {
            String::new()
        }
    ));
    s.push_str(
        "\nwhere DIR is laid out like the shared data folder. Reproduced on the same machine type and \
         thread count, the head is byte-identical (seeded shuffling and initialisation).\n",
    );
    if kind.span_sha256().is_some() {
        s.push_str(
            "\nThe span head comes first: `target/release/slant train loaded-spans --data DIR --no-babe` \
             (see `models/LOADED_SPANS_CARD.md`; it never sees BABE, so the BABE figures above stay \
             zero-shot). The same features in BABE SG2 5-fold CV (each fold's head trained on the \
             other folds plus anno-lexical train): `target/release/slant eval loaded --data DIR \
             --dataset babe --cv 5 --span-evidence models/loaded_spans.safetensors`.\n",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrated_threshold_keeps_every_decision() {
        let sig = |z: f32| 1.0 / (1.0 + (-z).exp());
        for &(thr, t) in &[(0.49f32, 1.3f32), (0.3, 0.7), (0.5, 2.0), (0.8, 1.0)] {
            let c = calibrated_threshold(thr, t);
            for i in -400..=400 {
                let z = i as f32 / 50.0;
                // Leave out logits within rounding of the boundary.
                if (sig(z) - thr).abs() < 1e-5 {
                    continue;
                }
                assert_eq!(sig(z) >= thr, sig(z / t) >= c, "thr {thr} t {t} z {z}");
            }
        }
        assert!((calibrated_threshold(0.5, 3.0) - 0.5).abs() < 1e-7);
    }
}
