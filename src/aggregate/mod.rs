//! Per-source aggregation from mergeable sums.
//!
//! Every article becomes an [`ArticleSummary`]; summaries fold into [`Corpus`] with `+`, which is
//! associative and commutative up to the final sort, so shards, threads and chunk orders all give
//! the same profiles. [`Corpus::profiles`] sorts by source name and computes intervals with fixed
//! seeds, so the output is byte-identical for any thread count.

use std::collections::BTreeMap;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use std::path::PathBuf;

use crate::actors::ActorCounts;
use crate::attribution::{AttributionCounts, AttributionProfile};
use crate::encode::EncodeStats;
use crate::ingest::{self, Article, RecordError};
use crate::pipeline::{Scorer, DEFAULT_CHUNK_ARTICLES};
use crate::stats::{self, Unit};
use crate::terms::{add_counts, TermCounts};
use crate::vocab::FRAMES;

/// Bootstrap resamples for per-source intervals.
pub const BOOTSTRAP_REPS: usize = 2000;
/// Seed of every bootstrap in profiles (fixed so output is reproducible).
pub const BOOTSTRAP_SEED: u64 = 20211;
/// Fewer articles than this and a source's intervals are Wilson intervals over sentences
/// (which treat sentences as independent, so they are too narrow); from this many on, the
/// interval is a percentile bootstrap over articles.
pub const MIN_ARTICLES_FOR_BOOTSTRAP: usize = 5;

use crate::pipeline::records::{ArticleSummary, TermCount, TOP_LOADED_TERMS};

/// Mergeable sums of one source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceSums {
    pub articles: Vec<ArticleSummary>,
    /// Word counts over the source's articles (empty unless terms were counted for it).
    #[serde(default, skip_serializing_if = "TermCounts::is_empty")]
    pub terms: TermCounts,
    /// Actor mentions and labels over the source's articles.
    #[serde(default, skip_serializing_if = "ActorCounts::is_empty")]
    pub actors: ActorCounts,
    /// Attribution counts summed over the source's articles. [`Corpus::push`] moves each
    /// article's cue-lemma and speaker maps here, so per-article summaries keep only scalars
    /// (and the four-key stance map) and memory grows with the vocabulary, not the corpus.
    #[serde(default, skip_serializing_if = "AttributionCounts::is_empty")]
    pub attribution: AttributionCounts,
    /// Loaded terms summed over the source's articles (moved here from the summaries).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub loaded_terms: BTreeMap<String, u64>,
}

impl SourceSums {
    fn sorted_articles(&self) -> Vec<&ArticleSummary> {
        let mut a: Vec<&ArticleSummary> = self.articles.iter().collect();
        a.sort_by(|x, y| x.id.cmp(&y.id));
        a
    }
    /// Per-article units of (loaded sentences, sentences), sorted by article id.
    pub fn loaded_units(&self) -> Vec<Unit> {
        self.sorted_articles()
            .into_iter()
            .map(|a| Unit::new(a.loaded_sentences as f64, a.sentences as f64))
            .collect()
    }
    /// The frame vectors of the articles that have one, sorted by article id.
    pub fn frame_vectors(&self) -> Vec<&[f64]> {
        self.sorted_articles()
            .into_iter()
            .filter(|a| a.frames.len() == FRAMES.len())
            .map(|a| a.frames.as_slice())
            .collect()
    }
    /// Per-article units of an attribution ratio (`f` gives numerator and denominator from the
    /// article's counts), sorted by article id; articles scored without the attribution head, or
    /// with a zero denominator, are left out.
    pub fn attribution_units(&self, f: impl Fn(&AttributionCounts) -> (u64, u64)) -> Vec<Unit> {
        self.sorted_articles()
            .into_iter()
            .map(|a| f(&a.attribution))
            .filter(|&(_, d)| d > 0)
            .map(|(n, d)| Unit::new(n as f64, d as f64))
            .collect()
    }
    /// The attribution profile (`None` without the attribution head), with the 95% interval
    /// of each ratio.
    pub fn attribution_profile(&self) -> Option<AttributionProfile> {
        attribution_profile(self)
    }
    /// Summed attribution counts of the source's articles.
    pub fn attribution_counts(&self) -> AttributionCounts {
        self.attribution.clone()
    }
    /// Per-article units of (sum of loaded probabilities, sentences), sorted by article id.
    pub fn prob_units(&self) -> Vec<Unit> {
        self.sorted_articles()
            .into_iter()
            .map(|a| Unit::new(a.loaded_prob_sum, a.sentences as f64))
            .collect()
    }
}

impl AddAssign for SourceSums {
    fn add_assign(&mut self, rhs: Self) {
        self.articles.extend(rhs.articles);
        add_counts(&mut self.terms, rhs.terms);
        self.actors += rhs.actors;
        self.attribution += &rhs.attribution;
        add_counts(&mut self.loaded_terms, rhs.loaded_terms);
    }
}

/// Mergeable sums of a whole corpus, keyed by source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Corpus {
    pub sources: BTreeMap<String, SourceSums>,
}

impl Corpus {
    /// Add one article. Its maps (word counts, actors, cue lemmas, speakers, loaded terms) are
    /// folded into the source's sums; the summary kept per article holds only what the
    /// per-article bootstrap and permutation tests resample.
    pub fn push(&mut self, mut a: ArticleSummary) {
        let sums = self.sources.entry(a.source.clone()).or_default();
        add_counts(&mut sums.terms, std::mem::take(&mut a.terms));
        sums.actors += std::mem::take(&mut a.actors);
        sums.attribution += &a.attribution;
        a.attribution.cue_lemmas = BTreeMap::new();
        a.attribution.speakers = BTreeMap::new();
        add_counts(&mut sums.loaded_terms, std::mem::take(&mut a.loaded_terms));
        a.id.shrink_to_fit();
        a.frames.shrink_to_fit();
        sums.articles.push(a);
    }
    /// Profiles sorted by source name, computed in parallel (each source's bootstrap is
    /// seeded on its own, so the result does not depend on the thread count).
    /// The `n` main actors of the corpus and how each source labels them.
    pub fn actor_report(&self, n: usize) -> Vec<crate::actors::ActorReport> {
        let per: BTreeMap<String, ActorCounts> = self
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.actors.clone()))
            .collect();
        crate::actors::report(&per, n)
    }

    /// Profiles sorted by source name, computed in parallel.
    pub fn profiles(&self) -> Vec<SourceProfile> {
        use rayon::prelude::*;
        let sources: Vec<(&String, &SourceSums)> = self.sources.iter().collect();
        sources
            .par_iter()
            .map(|(name, sums)| SourceProfile::new(name, sums))
            .collect()
    }

    /// Fold article summaries into a corpus in parallel: per-thread partial corpora merged
    /// with `+`. The result equals pushing them one by one (profiles sort articles by id).
    pub fn from_summaries(summaries: Vec<ArticleSummary>) -> Corpus {
        use rayon::prelude::*;
        summaries
            .into_par_iter()
            .fold(Corpus::default, |mut c, a| {
                c.push(a);
                c
            })
            .reduce(Corpus::default, |a, b| a + b)
    }
}

impl AddAssign for Corpus {
    fn add_assign(&mut self, rhs: Self) {
        for (k, v) in rhs.sources {
            *self.sources.entry(k).or_default() += v;
        }
    }
}

impl Add for Corpus {
    type Output = Corpus;
    fn add(mut self, rhs: Self) -> Corpus {
        self += rhs;
        self
    }
}

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiMethod {
    /// Percentile bootstrap over articles (2,000 resamples, fixed seed).
    BootstrapArticles,
    /// Wilson score interval over sentences: used when a source has fewer than 5 articles;
    /// it treats sentences as independent and so is too narrow.
    WilsonSentences,
    /// Normal approximation over sentences (mean ± 1.96·sd/√n), same caveat.
    NormalSentences,
    /// No interval (no sentences).
    None,
}

/// A source's framing profile: what `score` prints per source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceProfile {
    pub source: String,
    pub articles: u64,
    pub sentences: u64,
    /// Sentences with `loaded_label`.
    pub loaded_sentences: u64,
    /// loaded_sentences / sentences.
    pub loaded_share: f64,
    /// 95% interval of loaded_share, `[lo, hi]`.
    pub loaded_share_ci: [f64; 2],
    /// Mean loaded probability over sentences.
    pub mean_loaded: f64,
    /// 95% interval of mean_loaded, `[lo, hi]`.
    pub mean_loaded_ci: [f64; 2],
    /// How both intervals were computed.
    pub ci_method: CiMethod,
    /// Sentences cut at the encoder's token limit.
    pub truncated_sentences: u64,
    /// Frame distribution: mean P(frame) over the source's articles, per frame (empty without
    /// the frames head). Frames are not exclusive, so the values do not sum to 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub frames: BTreeMap<String, f64>,
    /// Attributions: rate, loaded cue share, top cue verbs, who gets quoted (share of voice),
    /// unattributed share. Absent without the attribution head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionProfile>,
    /// Share of the source's sentences with at least one loaded span (absent without the span
    /// head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_term_share: Option<f64>,
    /// The source's most frequent loaded terms (lower-cased span texts), most frequent first,
    /// ties by term; at most [`TOP_LOADED_TERMS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded_terms: Vec<TermCount>,
}

/// Mean of equal-length vectors (empty input: empty output).
pub fn mean_vector(v: &[&[f64]]) -> Vec<f64> {
    let Some(first) = v.first() else {
        return Vec::new();
    };
    let mut m = vec![0.0; first.len()];
    for x in v {
        for (a, b) in m.iter_mut().zip(x.iter()) {
            *a += b;
        }
    }
    m.iter().map(|a| a / v.len() as f64).collect()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl SourceProfile {
    /// Build the profile of `name` from its sums.
    pub fn new(name: &str, sums: &SourceSums) -> Self {
        let arts = sums.sorted_articles();
        let sentences: u64 = arts.iter().map(|a| a.sentences).sum();
        let loaded: u64 = arts.iter().map(|a| a.loaded_sentences).sum();
        let prob_sum: f64 = arts.iter().map(|a| a.loaded_prob_sum).sum();
        let truncated: u64 = arts.iter().map(|a| a.truncated).sum();
        let share = if sentences == 0 {
            0.0
        } else {
            loaded as f64 / sentences as f64
        };
        let mean = if sentences == 0 {
            0.0
        } else {
            prob_sum / sentences as f64
        };
        let (share_ci, mean_ci, method) = if sentences == 0 {
            ((0.0, 1.0), (0.0, 1.0), CiMethod::None)
        } else if arts.len() >= MIN_ARTICLES_FOR_BOOTSTRAP {
            let s = stats::bootstrap_ratio_ci(&sums.loaded_units(), BOOTSTRAP_REPS, BOOTSTRAP_SEED)
                .unwrap_or((share, share));
            let m = stats::bootstrap_ratio_ci(&sums.prob_units(), BOOTSTRAP_REPS, BOOTSTRAP_SEED)
                .unwrap_or((mean, mean));
            (s, m, CiMethod::BootstrapArticles)
        } else {
            (
                stats::wilson(loaded, sentences),
                (f64::NAN, f64::NAN),
                CiMethod::WilsonSentences,
            )
        };
        // Without articles to resample, the mean probability gets a normal interval over
        // sentences; it needs the sum of squares, which summaries do not keep, so it is
        // approximated from the Bernoulli bound p(1-p) (conservative for probabilities).
        let mean_ci = if mean_ci.0.is_nan() {
            let half = stats::Z95 * (mean * (1.0 - mean) / sentences as f64).sqrt();
            ((mean - half).max(0.0), (mean + half).min(1.0))
        } else {
            mean_ci
        };
        Self {
            source: name.to_string(),
            articles: arts.len() as u64,
            sentences,
            loaded_sentences: loaded,
            loaded_share: round6(share),
            loaded_share_ci: [round6(share_ci.0), round6(share_ci.1)],
            mean_loaded: round6(mean),
            mean_loaded_ci: [round6(mean_ci.0), round6(mean_ci.1)],
            ci_method: method,
            truncated_sentences: truncated,
            frames: FRAMES
                .iter()
                .zip(mean_vector(&sums.frame_vectors()))
                .map(|(f, p)| (f.to_string(), round6(p)))
                .collect(),
            attribution: sums.attribution_profile(),
            loaded_term_share: span_share(&arts),
            loaded_terms: top_terms(&sums.loaded_terms, TOP_LOADED_TERMS),
        }
    }
}

/// The attribution profile of a source with the interval of each ratio, computed as for the
/// loaded share: a bootstrap over articles with at least [`MIN_ARTICLES_FOR_BOOTSTRAP`]
/// articles (those with a zero denominator left out), Wilson over the summed counts otherwise.
fn attribution_profile(sums: &SourceSums) -> Option<AttributionProfile> {
    let articles = sums.articles.len();
    let counts = sums.attribution_counts();
    let mut p = AttributionProfile::new(&counts)?;
    for (name, parts) in crate::attribution::RATIOS {
        let (k, n) = parts(&counts);
        let units = sums.attribution_units(parts);
        let ci = if n == 0 {
            (0.0, 1.0)
        } else if articles >= MIN_ARTICLES_FOR_BOOTSTRAP && units.len() >= 2 {
            let r = k as f64 / n as f64;
            stats::bootstrap_ratio_ci(&units, BOOTSTRAP_REPS, BOOTSTRAP_SEED).unwrap_or((r, r))
        } else {
            stats::wilson(k, n)
        };
        if let Some(slot) = p.ci_mut(name) {
            *slot = [round6(ci.0), round6(ci.1)];
        }
    }
    Some(p)
}

/// Share of sentences with a span over the articles scored with a span head.
fn span_share(arts: &[&ArticleSummary]) -> Option<f64> {
    let scored: Vec<&&ArticleSummary> =
        arts.iter().filter(|a| a.span_sentences.is_some()).collect();
    if scored.is_empty() {
        return None;
    }
    let n: u64 = scored.iter().map(|a| a.sentences).sum();
    let k: u64 = scored.iter().filter_map(|a| a.span_sentences).sum();
    Some(if n == 0 {
        0.0
    } else {
        round6(k as f64 / n as f64)
    })
}

/// The `top` most frequent loaded terms (count desc, then term).
fn top_terms(all: &BTreeMap<String, u64>, top: usize) -> Vec<TermCount> {
    let mut v: Vec<TermCount> = all
        .iter()
        .map(|(t, c)| TermCount {
            term: t.to_string(),
            count: *c,
        })
        .collect();
    v.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.term.cmp(&y.term)));
    v.truncate(top);
    v
}

/// Text bytes per chunk (see [`RunOptions::chunk_bytes`]): 128 KiB, about 25 news articles.
pub const DEFAULT_CHUNK_BYTES: usize = 128 * 1024;

/// How [`score_corpus`] walks the input.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Articles per chunk fed to the encoder ([`DEFAULT_CHUNK_ARTICLES`]).
    pub chunk_articles: usize,
    /// A chunk is also closed when its articles' text reaches this many bytes
    /// ([`DEFAULT_CHUNK_BYTES`]): the token states of a chunk are held at once, so this bounds
    /// memory whatever the article lengths. Results do not depend on the chunking.
    pub chunk_bytes: usize,
    /// Skip this many (readable, in-shard) articles from the start: they were scored by an
    /// earlier run that `--resume` continues. Errors met before the last skipped article are
    /// skipped too (the earlier run kept them).
    pub skip_articles: usize,
    /// Score only the articles of shard `I` of `N` (1-based), by [`shard_of`] their id.
    pub shard: Option<(u64, u64)>,
    /// Ingest limits (article size).
    pub ingest: ingest::IngestOptions,
    /// Fold the article summaries into the returned corpus (`false`: the caller keeps what it
    /// needs from the chunks, e.g. a dataset writer, and the corpus comes back empty).
    pub fold: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            chunk_articles: DEFAULT_CHUNK_ARTICLES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            skip_articles: 0,
            shard: None,
            ingest: ingest::IngestOptions::default(),
            fold: true,
        }
    }
}

/// The shard (0-based, of `n`) an article id falls in: the first 8 bytes of its SHA-256 as a
/// big-endian integer, modulo `n`. It depends on the id only, so any split of the input (files,
/// Spark partitions) puts an article in the same shard.
pub fn shard_of(id: &str, n: u64) -> u64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % n.max(1)
}

/// One scored chunk, as [`score_corpus`] hands it over.
pub struct Chunk<'a> {
    /// The scored articles, in input order.
    pub scored: &'a [crate::pipeline::ScoredArticle],
    /// The articles themselves (title, date, url), aligned with `scored`.
    pub articles: &'a [Article],
    /// Records met while this chunk was read that could not be read.
    pub errors: &'a [RecordError],
    /// Encoder statistics of the chunk.
    pub stats: &'a EncodeStats,
}

/// Stream a corpus through the scorer in chunks, calling `each` per scored chunk and
/// `on_error` per unreadable record (as it is met), and fold the article summaries:
/// `(corpus, record errors, encoder statistics, articles scored)`; skipped articles
/// ([`RunOptions::skip_articles`]) and their errors are in none of them.
pub fn score_corpus<E: From<crate::Error>>(
    inputs: &[PathBuf],
    scorer: &Scorer,
    opts: &RunOptions,
    mut on_error: impl FnMut(&RecordError),
    mut each: impl FnMut(&Chunk<'_>) -> std::result::Result<(), E>,
) -> std::result::Result<(Corpus, Vec<RecordError>, EncodeStats, usize), E> {
    let mut corpus = Corpus::default();
    let mut errors = Vec::new();
    let mut stats = EncodeStats::default();
    let mut n_articles = 0;
    let chunk_size = opts.chunk_articles.max(1);
    let mut chunk: Vec<Article> = Vec::with_capacity(chunk_size);
    let mut chunk_text = 0usize;
    let mut chunk_errors: Vec<RecordError> = Vec::new();
    let mut flush = |chunk: &mut Vec<Article>,
                     chunk_errors: &mut Vec<RecordError>,
                     corpus: &mut Corpus,
                     stats: &mut EncodeStats,
                     n_articles: &mut usize|
     -> std::result::Result<(), E> {
        if chunk.is_empty() && chunk_errors.is_empty() {
            return Ok(());
        }
        let (scored, s) = scorer.score_chunk(chunk)?;
        stats.sentences += s.sentences;
        stats.tokens += s.tokens;
        stats.padded_tokens += s.padded_tokens;
        stats.truncated += s.truncated;
        stats.batches += s.batches;
        each(&Chunk {
            scored: &scored,
            articles: chunk,
            errors: chunk_errors,
            stats: &s,
        })?;
        if opts.fold {
            *corpus += Corpus::from_summaries(scored.into_iter().map(|a| a.summary).collect());
        }
        *n_articles += chunk.len();
        chunk.clear();
        chunk_errors.clear();
        Ok(())
    };
    let mut skipped = 0usize;
    for item in ingest::open_with(inputs, &opts.ingest) {
        match item {
            Ok(a) => {
                if let Some((i, n)) = opts.shard {
                    if shard_of(&a.id, n) != i - 1 {
                        continue;
                    }
                }
                if skipped < opts.skip_articles {
                    skipped += 1;
                    continue;
                }
                chunk_text += a.text.len();
                chunk.push(a);
                if chunk.len() >= chunk_size || chunk_text >= opts.chunk_bytes {
                    chunk_text = 0;
                    flush(
                        &mut chunk,
                        &mut chunk_errors,
                        &mut corpus,
                        &mut stats,
                        &mut n_articles,
                    )?;
                }
            }
            Err(e) => {
                // A shard keeps the errors of its own articles, and shard 1 those whose id is
                // unknown, so merged shards hold each error once.
                if let Some((i, n)) = opts.shard {
                    let mine = match &e.id {
                        Some(id) => shard_of(id, n) == i - 1,
                        None => i == 1,
                    };
                    if !mine {
                        continue;
                    }
                }
                if skipped < opts.skip_articles {
                    continue;
                }
                on_error(&e);
                chunk_errors.push(e.clone());
                errors.push(e);
            }
        }
    }
    flush(
        &mut chunk,
        &mut chunk_errors,
        &mut corpus,
        &mut stats,
        &mut n_articles,
    )?;
    Ok((corpus, errors, stats, n_articles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::records::{loaded_term, LoadedSpan, SentenceRecord};

    fn art(id: &str, source: &str, n: u64, k: u64, p: f64) -> ArticleSummary {
        ArticleSummary {
            id: id.into(),
            source: source.into(),
            sentences: n,
            loaded_sentences: k,
            loaded_prob_sum: p,
            truncated: 0,
            terms: TermCounts::new(),
            frames: Vec::new(),
            actors: ActorCounts::default(),
            attribution: AttributionCounts::default(),
            span_sentences: None,
            loaded_terms: BTreeMap::new(),
        }
    }

    fn rec(text: &str, spans: &[(usize, usize, &str)]) -> SentenceRecord {
        SentenceRecord {
            article: "a".into(),
            source: "x".into(),
            index: 0,
            start: 0,
            end: text.len(),
            text: text.into(),
            loaded: 0.5,
            loaded_label: true,
            loaded_spans: spans
                .iter()
                .map(|&(a, b, t)| LoadedSpan {
                    start: a,
                    end: b,
                    text: t.into(),
                    score: 0.9,
                    text_start: a,
                    text_end: b,
                })
                .collect(),
            tokens: 5,
            truncated: false,
            attributions: Vec::new(),
            unattributed: None,
        }
    }

    #[test]
    fn spans_are_marked_counted_and_profiled() {
        let r = rec(
            "A vile, cowardly Act.",
            &[(2, 6, "vile"), (8, 20, "cowardly\nAct")],
        );
        assert_eq!(r.marked_text(), "A [[vile]], [[cowardly Act]].");
        assert_eq!(r.loaded_terms(), ["vile", "cowardly act"]);
        assert_eq!(loaded_term("“Radical”,"), "radical");
        let plain = rec("Nothing here.", &[]);
        assert_eq!(plain.marked_text(), "Nothing here.");
        let mut a1 = art("a1", "x", 2, 1, 0.5);
        a1.add_spans(&[r.clone(), plain.clone()]);
        let mut a2 = art("a2", "x", 2, 1, 0.5);
        a2.add_spans(&[rec("So vile.", &[(3, 7, "vile")]), plain]);
        let mut c = Corpus::default();
        c.push(a1);
        c.push(a2);
        c.push(art("b", "y", 3, 0, 0.0));
        let p = c.profiles();
        assert_eq!(p[0].loaded_term_share, Some(0.5));
        assert_eq!(
            p[0].loaded_terms,
            [
                TermCount {
                    term: "vile".into(),
                    count: 2
                },
                TermCount {
                    term: "cowardly act".into(),
                    count: 1
                }
            ]
        );
        // A source scored without the span head has neither field, in JSON too.
        assert_eq!(p[1].loaded_term_share, None);
        let j = serde_json::to_string(&p[1]).unwrap();
        assert!(!j.contains("loaded_term"), "{j}");
    }

    #[test]
    fn merge_order_does_not_change_profiles() {
        let arts: Vec<ArticleSummary> = (0..12)
            .map(|i| {
                art(
                    &format!("a{i:02}"),
                    if i % 3 == 0 { "x" } else { "y" },
                    10 + i,
                    i % 4,
                    (i % 4) as f64 * 0.8,
                )
            })
            .collect();
        let mut fwd = Corpus::default();
        for a in arts.iter().cloned() {
            fwd.push(a);
        }
        // Two shards folded in the opposite order.
        let mut s1 = Corpus::default();
        let mut s2 = Corpus::default();
        for (i, a) in arts.iter().rev().cloned().enumerate() {
            if i % 2 == 0 {
                s1.push(a)
            } else {
                s2.push(a)
            }
        }
        let merged = s2 + s1;
        let parallel = Corpus::from_summaries(arts.iter().rev().cloned().collect());
        assert_eq!(
            serde_json::to_string(&fwd.profiles()).unwrap(),
            serde_json::to_string(&parallel.profiles()).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&fwd.profiles()).unwrap(),
            serde_json::to_string(&merged.profiles()).unwrap()
        );
    }

    #[test]
    fn term_counts_fold_into_sources_in_any_order() {
        let with_terms = |id: &str, source: &str, words: &[(&str, u64)]| ArticleSummary {
            terms: words.iter().map(|(w, c)| (w.to_string(), *c)).collect(),
            ..art(id, source, 1, 0, 0.0)
        };
        let arts = vec![
            with_terms("a1", "x", &[("wall", 2), ("border", 1)]),
            with_terms("a2", "x", &[("wall", 1), ("crisis", 4)]),
            with_terms("a3", "y", &[("wall", 5)]),
            art("a4", "y", 3, 0, 0.0),
        ];
        let mut fwd = Corpus::default();
        for a in arts.iter().cloned() {
            fwd.push(a);
        }
        let rev = Corpus::from_summaries(arts.into_iter().rev().collect());
        let x = &fwd.sources["x"];
        assert_eq!(
            x.terms
                .iter()
                .map(|(w, c)| (w.as_str(), *c))
                .collect::<Vec<_>>(),
            [("border", 1), ("crisis", 4), ("wall", 3)]
        );
        assert_eq!(fwd.sources["y"].terms.get("wall"), Some(&5));
        // Article summaries hand their counts over, so nothing is kept twice.
        assert!(x.articles.iter().all(|a| a.terms.is_empty()));
        assert_eq!(fwd.sources["x"].terms, rev.sources["x"].terms);
        assert_eq!(fwd.sources["y"].terms, rev.sources["y"].terms);
    }

    #[test]
    fn frame_distribution_is_the_mean_over_articles() {
        let mut c = Corpus::default();
        let mut f1 = vec![0.0; FRAMES.len()];
        let mut f2 = vec![0.0; FRAMES.len()];
        f1[3] = 0.8; // Economic
        f2[3] = 0.2;
        f2[10] = 1.0; // Political
        c.push(ArticleSummary {
            frames: f1,
            ..art("a", "x", 2, 0, 0.0)
        });
        c.push(ArticleSummary {
            frames: f2,
            ..art("b", "x", 2, 0, 0.0)
        });
        c.push(art("c", "y", 2, 0, 0.0));
        let p = c.profiles();
        assert_eq!(p[0].frames.len(), 14);
        assert!((p[0].frames["Economic"] - 0.5).abs() < 1e-12);
        assert!((p[0].frames["Political"] - 0.5).abs() < 1e-12);
        assert_eq!(p[0].frames["Morality"], 0.0);
        assert!(p[1].frames.is_empty(), "no frames head, no distribution");
    }

    #[test]
    fn profile_counts_and_methods() {
        let mut c = Corpus::default();
        c.push(art("a", "one", 10, 3, 3.5));
        let p = &c.profiles()[0];
        assert_eq!((p.articles, p.sentences, p.loaded_sentences), (1, 10, 3));
        assert!((p.loaded_share - 0.3).abs() < 1e-12);
        assert!((p.mean_loaded - 0.35).abs() < 1e-12);
        assert_eq!(p.ci_method, CiMethod::WilsonSentences);
        let (lo, hi) = stats::wilson(3, 10);
        assert_eq!(p.loaded_share_ci, [round6(lo), round6(hi)]);
        for i in 0..6 {
            c.push(art(&format!("b{i}"), "many", 10, i, i as f64));
        }
        let p = &c.profiles()[0];
        assert_eq!(p.source, "many", "profiles are sorted by source");
        assert_eq!(p.ci_method, CiMethod::BootstrapArticles);
        assert!(p.loaded_share_ci[0] <= p.loaded_share && p.loaded_share <= p.loaded_share_ci[1]);
    }
}
