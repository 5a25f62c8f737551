//! The loaded-language **span** tagger: which words make a sentence loaded.
//!
//! A [`TaggerHead`] with labels `O`, `B-LOADED`, `I-LOADED` over the encoder's final token states
//! (the same single pass the sentence heads read). Training data ([`crate::data::spans`]):
//! PTC `Loaded_Language` spans of the train part of the fixed article split, the SemEval-2023
//! Task 3 articles PTC does not have (train part), and, unless left out (zero-shot), BABE SG2
//! `biased_words` of folds 1–4. Epochs are chosen on the PTC dev part. Texts are cut into
//! sentences by slant's own splitter ([`crate::segment::split`]) exactly as `slant score` does,
//! and gold spans are clipped to sentences.
//!
//! Evaluation ([`evaluate`]) tags every sentence of the held-out texts, maps the spans back to
//! byte offsets of the text, and scores them with [`crate::eval::spans::score`]: token-level
//! P/R/F1 and span-overlap P/R/F1 (plus exact match), summed over texts. A lexicon baseline
//! (every word of the Recasens et al. 2013 bias lexicon is a span) is scored the same way.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::spans::{self as ds, Part, SpanDoc, LOADED};
use crate::encode::Encoder;
use crate::heads::tagger::{bio_tags, decode_with, DecodeOpts, GoldSpan, TagSpan, TaggerHead};
use crate::metrics::spans::{score, LabeledSpan, Prf, SpanScores};
use crate::segment;
use crate::train::tagger::{
    token_states_cached, train_tagger, TaggedSet, TaggerOpts, TaggerReport,
};
use crate::{Error, Result};

use crate::heads::loaded_spans::labels;

/// Relative path of the Recasens et al. (2013) bias lexicon in the data folder.
pub const RECASENS_LEXICON: &str = "recasens_lexicons_wnc_sample/src/lexicons/npov_lexicon.txt";

/// Which data a span head is trained on.
#[derive(Debug, Clone, Serialize)]
pub struct SpansConfig {
    /// Add BABE SG2 `biased_words` of folds 1–4.
    pub babe: bool,
    /// Add the SemEval-2023 Task 3 articles that PTC does not have.
    pub semeval23: bool,
    /// Also train on `Name_Calling` spans (as loaded language).
    pub name_calling: bool,
    pub tagger: TaggerOpts,
}

impl Default for SpansConfig {
    fn default() -> Self {
        Self {
            babe: true,
            semeval23: true,
            name_calling: false,
            tagger: TaggerOpts {
                hidden: 256,
                epochs: 12,
                batch_tokens: 512,
                lr: 1e-3,
                weight_decay: 1e-2,
                seed: 13,
                class_weight_power: 0.5,
                patience: 3,
            },
        }
    }
}

/// A sentence of a [`SpanDoc`]: its byte range in the document and its gold spans, relative to
/// the sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanSentence {
    pub doc: usize,
    pub start: usize,
    pub end: usize,
    pub gold: Vec<GoldSpan>,
}

/// Split documents into sentences (slant's splitter) and clip their spans to them.
pub fn sentences(docs: &[SpanDoc]) -> Vec<SpanSentence> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for s in segment::split(&doc.text) {
            let gold = doc
                .spans
                .iter()
                .filter(|&&(a, b)| a < s.end && b > s.start)
                .map(|&(a, b)| GoldSpan {
                    label: LOADED.into(),
                    start: a.max(s.start) - s.start,
                    end: b.min(s.end) - s.start,
                })
                .collect();
            out.push(SpanSentence {
                doc: d,
                start: s.start,
                end: s.end,
                gold,
            });
        }
    }
    out
}

/// Counts of one data source used in training.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceCount {
    pub name: String,
    pub texts: usize,
    pub spans: usize,
}

/// The training and development texts of a configuration, with the files read.
#[derive(Debug, Clone, Default)]
pub struct TrainingData {
    pub train: Vec<SpanDoc>,
    pub dev: Vec<SpanDoc>,
    pub sources: Vec<SourceCount>,
    pub files: Vec<PathBuf>,
}

fn techniques(name_calling: bool, semeval23: bool) -> Vec<&'static str> {
    let mut v = vec![ds::PTC_LOADED];
    if name_calling {
        v.push(if semeval23 {
            "Name_Calling-Labeling"
        } else {
            ds::PTC_NAME_CALLING
        });
    }
    v
}

fn count(name: &str, docs: &[SpanDoc]) -> SourceCount {
    SourceCount {
        name: name.into(),
        texts: docs.len(),
        spans: docs.iter().map(|d| d.spans.len()).sum(),
    }
}

/// Gather the training data of `cfg` (see the module doc).
pub fn training_data(data: &Path, cfg: &SpansConfig) -> Result<TrainingData> {
    let mut td = TrainingData::default();
    let (ptc, files) = ds::ptc_loaded(data, &techniques(cfg.name_calling, false))?;
    td.files.extend(files);
    let ptc_ids: HashSet<String> = ptc.iter().map(|d| d.id.clone()).collect();
    let (train, rest): (Vec<SpanDoc>, Vec<SpanDoc>) = ptc
        .into_iter()
        .partition(|d| ds::article_part(&d.id) == Part::Train);
    td.dev = rest
        .into_iter()
        .filter(|d| ds::article_part(&d.id) == Part::Dev)
        .collect();
    td.sources.push(count("ptc_train", &train));
    td.train = train;
    if cfg.semeval23 {
        let (s23, files) = ds::semeval23_loaded(data, &techniques(cfg.name_calling, true))?;
        td.files.extend(files);
        let extra: Vec<SpanDoc> = s23
            .into_iter()
            .filter(|d| !ptc_ids.contains(&d.id) && ds::article_part(&d.id) == Part::Train)
            .collect();
        td.sources
            .push(count("semeval2023_train_not_in_ptc", &extra));
        td.train.extend(extra);
    }
    if cfg.babe {
        let (babe, file) = ds::babe_spans(data)?;
        td.files.push(file);
        let folds: Vec<SpanDoc> = babe
            .into_iter()
            .filter(|d| ds::babe_fold(&d.id) != 0)
            .collect();
        td.sources.push(count("babe_folds_1_4", &folds));
        td.train.extend(folds);
    }
    td.sources.push(count("ptc_dev", &td.dev));
    Ok(td)
}

/// Token states and BIO tags of the sentences of `docs`.
fn tagged(
    enc: &Encoder,
    docs: &[SpanDoc],
    batch: usize,
) -> Result<(crate::train::tagger::TokenStates, Vec<Vec<Option<usize>>>)> {
    let sents = sentences(docs);
    let texts: Vec<&str> = sents
        .iter()
        .map(|s| &docs[s.doc].text[s.start..s.end])
        .collect();
    let states = token_states_cached(enc, &texts, batch, Some(&super::cache_dir()))?;
    let labels = labels();
    let tags = sents
        .iter()
        .zip(&texts)
        .enumerate()
        .map(|(i, (s, t))| bio_tags(t, &states.offsets[i], &s.gold, &labels))
        .collect::<Result<Vec<_>>>()?;
    Ok((states, tags))
}

/// Train a span head on `td`.
pub fn train(
    enc: &Encoder,
    td: &TrainingData,
    cfg: &SpansConfig,
    batch: usize,
) -> Result<(TaggerHead, TaggerReport)> {
    let (ts, tt) = tagged(enc, &td.train, batch)?;
    let (vs, vt) = tagged(enc, &td.dev, batch)?;
    train_tagger(
        TaggedSet {
            states: &ts,
            tags: &tt,
        },
        Some(TaggedSet {
            states: &vs,
            tags: &vt,
        }),
        &labels(),
        &cfg.tagger,
    )
}

/// Held-out evaluation sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpansDataset {
    /// PTC `Loaded_Language`, test part of the article split.
    Ptc,
    /// BABE SG2 `biased_words`, held-out fold 0.
    Babe,
}

/// The held-out texts of a dataset, and the files read.
pub fn held_out(data: &Path, dataset: SpansDataset) -> Result<(Vec<SpanDoc>, Vec<PathBuf>)> {
    Ok(match dataset {
        SpansDataset::Ptc => {
            let (docs, files) = ds::ptc_loaded(data, &[ds::PTC_LOADED])?;
            (
                docs.into_iter()
                    .filter(|d| ds::article_part(&d.id) == Part::Test)
                    .collect(),
                files,
            )
        }
        SpansDataset::Babe => {
            let (docs, file) = ds::babe_spans(data)?;
            (
                docs.into_iter()
                    .filter(|d| ds::babe_fold(&d.id) == 0)
                    .collect(),
                vec![file],
            )
        }
    })
}

/// Loaded spans the head finds in each document (byte offsets into the document).
pub fn predict(
    enc: &Encoder,
    head: &TaggerHead,
    docs: &[SpanDoc],
    batch: usize,
) -> Result<Vec<Vec<TagSpan>>> {
    let sents = sentences(docs);
    let texts: Vec<&str> = sents
        .iter()
        .map(|s| &docs[s.doc].text[s.start..s.end])
        .collect();
    let st = token_states_cached(enc, &texts, batch, Some(&super::cache_dir()))?;
    let mut out = vec![Vec::new(); docs.len()];
    for (i, s) in sents.iter().enumerate() {
        let n = st.n_tokens(i);
        let offs = &st.offsets[i][..n.min(st.offsets[i].len())];
        for mut t in head.tag(texts[i], &st.states_of(i), offs, n) {
            if t.label == LOADED {
                t.start += s.start;
                t.end += s.start;
                out[s.doc].push(t);
            }
        }
    }
    Ok(out)
}

/// Candidate minimum word probabilities of [`select_decode`] (`None` = arg-max).
pub const WORD_PROB_GRID: [Option<f32>; 11] = [
    None,
    Some(0.3),
    Some(0.4),
    Some(0.5),
    Some(0.6),
    Some(0.7),
    Some(0.75),
    Some(0.8),
    Some(0.85),
    Some(0.9),
    Some(0.95),
];

/// Candidate minimum span scores of [`select_decode`] (`None` = keep all).
pub const SPAN_SCORE_GRID: [Option<f32>; 7] = [
    None,
    Some(0.5),
    Some(0.6),
    Some(0.7),
    Some(0.8),
    Some(0.85),
    Some(0.9),
];

/// One candidate of [`select_decode`] with its development scores.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeCandidate {
    pub decode: DecodeOpts,
    pub dev: SystemScores,
}

/// Choose the head's decoding thresholds on development texts `dev` (never the test part):
/// every pair of [`WORD_PROB_GRID`] × [`SPAN_SCORE_GRID`] is scored, and the pair with the
/// best span-overlap F1 wins (ties: the first in grid order, so arg-max decoding when nothing
/// beats it). The encoder runs once; decoding is repeated per candidate. Returns the choice
/// and every candidate in grid order.
pub fn select_decode(
    enc: &Encoder,
    head: &TaggerHead,
    dev: &[SpanDoc],
    batch: usize,
) -> Result<(DecodeOpts, Vec<DecodeCandidate>)> {
    let sents = sentences(dev);
    let texts: Vec<&str> = sents
        .iter()
        .map(|s| &dev[s.doc].text[s.start..s.end])
        .collect();
    let st = token_states_cached(enc, &texts, batch, Some(&super::cache_dir()))?;
    let probs: Vec<(Vec<Vec<f32>>, usize)> = (0..sents.len())
        .map(|i| {
            let n = st.n_tokens(i).min(st.offsets[i].len());
            (head.predict(&st.states_of(i)[..n * head.input], n), n)
        })
        .collect();
    let labels = &head.labels;
    let mut out = Vec::new();
    for &w in &WORD_PROB_GRID {
        for &m in &SPAN_SCORE_GRID {
            let opts = DecodeOpts {
                min_word_prob: w,
                min_span_score: m,
            };
            let mut pred = vec![Vec::new(); dev.len()];
            for (i, s) in sents.iter().enumerate() {
                let (p, n) = &probs[i];
                for t in decode_with(texts[i], labels, p, &st.offsets[i][..*n], &opts) {
                    if t.label == LOADED {
                        pred[s.doc].push((s.start + t.start, s.start + t.end));
                    }
                }
            }
            out.push(DecodeCandidate {
                decode: opts,
                dev: score_docs(dev, &pred),
            });
        }
    }
    let best = out
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1.dev
                .span_f1
                .total_cmp(&b.1.dev.span_f1)
                .then(b.0.cmp(&a.0))
        })
        .map(|(_, c)| c.decode)
        .unwrap_or_default();
    Ok((best, out))
}

/// Human description of decoding thresholds.
pub fn decode_text(d: &DecodeOpts) -> String {
    let w = d
        .min_word_prob
        .map_or("arg-max word labels".to_string(), |t| {
            format!("a word is loaded when P(not O) >= {t}")
        });
    let m = d.min_span_score.map_or("every span kept".to_string(), |t| {
        format!("spans scoring below {t} dropped")
    });
    format!("{w}; {m}")
}

/// Read a one-word-per-line lexicon (lower-cased; `#` comments and blank lines skipped).
pub fn read_lexicon(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

/// Lexicon baseline: every word (maximal alphanumeric run, as [`crate::metrics::spans::tokens`]
/// cuts them) whose lower-case form is in `lexicon` is a span.
pub fn lexicon_spans(text: &str, lexicon: &HashSet<String>) -> Vec<(usize, usize)> {
    crate::metrics::spans::tokens(text)
        .into_iter()
        .filter(|&(a, b)| lexicon.contains(&text[a..b].to_lowercase()))
        .collect()
}

/// Scores of one system on a held-out set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SystemScores {
    /// Token-level F1 (tokens as [`crate::metrics::spans::tokens`] cuts them).
    pub token_f1: f64,
    /// Span-overlap F1.
    pub span_f1: f64,
    pub token: Prf,
    pub span_overlap: Prf,
    pub span_exact: Prf,
}

impl SystemScores {
    fn from(s: &SpanScores) -> Self {
        let l = s.0.get(LOADED).copied().unwrap_or_default();
        Self {
            token_f1: l.token.f1,
            span_f1: l.overlap.f1,
            token: l.token,
            span_overlap: l.overlap,
            span_exact: l.exact,
        }
    }
}

/// Score predicted spans (per document, byte offsets) against the documents' gold spans.
pub fn score_docs(docs: &[SpanDoc], pred: &[Vec<(usize, usize)>]) -> SystemScores {
    let mut total = SpanScores::default();
    for (d, p) in docs.iter().zip(pred) {
        let gold: Vec<LabeledSpan> = d
            .spans
            .iter()
            .map(|&(a, b)| LabeledSpan::new(LOADED, a, b))
            .collect();
        let pred: Vec<LabeledSpan> = p
            .iter()
            .map(|&(a, b)| LabeledSpan::new(LOADED, a, b))
            .collect();
        total += score(&d.text, &gold, &pred);
    }
    SystemScores::from(&total)
}

/// Names of the metrics [`span_metric_values`] gives, in order.
pub const SPAN_METRICS: [&str; 6] = [
    "token_precision",
    "token_recall",
    "token_f1",
    "span_precision",
    "span_recall",
    "span_f1",
];

/// Additive statistics of one document for the bootstrap: token (tp, tp, predicted, gold) and
/// span-overlap (tp, gold found, predicted, gold) counts.
pub fn doc_stats(doc: &SpanDoc, pred: &[(usize, usize)]) -> Vec<f64> {
    let s = score_docs(std::slice::from_ref(doc), &[pred.to_vec()]);
    [s.token, s.span_overlap]
        .iter()
        .flat_map(|p| [p.tp, p.tp_gold, p.predicted, p.gold])
        .map(|v| v as f64)
        .collect()
}

/// [`SPAN_METRICS`] from summed [`doc_stats`].
pub fn span_metric_values(s: &[f64]) -> Vec<f64> {
    let prf = |tp: f64, tpg: f64, p: f64, g: f64| {
        let pr = if p > 0.0 { tp / p } else { 0.0 };
        let rc = if g > 0.0 { tpg / g } else { 0.0 };
        let f = if pr + rc > 0.0 {
            2.0 * pr * rc / (pr + rc)
        } else {
            0.0
        };
        [pr, rc, f]
    };
    let mut v = prf(s[0], s[1], s[2], s[3]).to_vec();
    v.extend(prf(s[4], s[5], s[6], s[7]));
    v
}

/// What [`evaluate`] reports.
#[derive(Debug, Clone, Serialize)]
pub struct SpansReport {
    pub dataset: SpansDataset,
    pub split: String,
    pub texts: usize,
    pub sentences: usize,
    pub gold_spans: usize,
    pub predicted_spans: usize,
    /// Token-level F1 of the head (top level for scripts).
    pub token_f1: f64,
    /// Span-overlap F1 of the head.
    pub span_f1: f64,
    pub model: SystemScores,
    /// The Recasens et al. (2013) lexicon baseline, when the lexicon is in the data folder.
    pub lexicon_baseline: Option<SystemScores>,
    /// The head's decoding thresholds (`null`: arg-max decoding, every span kept).
    pub decode: DecodeOpts,
    pub head_meta: std::collections::BTreeMap<String, String>,
    pub data_files: Vec<String>,
}

/// Evaluate `head` on the held-out part of `dataset`.
pub fn evaluate(
    enc: &Encoder,
    head: &TaggerHead,
    data: &Path,
    dataset: SpansDataset,
    batch: usize,
) -> Result<SpansReport> {
    let (docs, files) = held_out(data, dataset)?;
    let pred = predict(enc, head, &docs, batch)?;
    let pred_b: Vec<Vec<(usize, usize)>> = pred
        .iter()
        .map(|v| v.iter().map(|t| (t.start, t.end)).collect())
        .collect();
    let model = score_docs(&docs, &pred_b);
    let lex_path = data.join(RECASENS_LEXICON);
    let lexicon_baseline = if lex_path.is_file() {
        let lex = read_lexicon(&lex_path)?;
        let p: Vec<Vec<(usize, usize)>> =
            docs.iter().map(|d| lexicon_spans(&d.text, &lex)).collect();
        Some(score_docs(&docs, &p))
    } else {
        None
    };
    Ok(SpansReport {
        dataset,
        split: match dataset {
            SpansDataset::Ptc => "PTC train-articles, test part of the fixed article split (sha256 bucket 0-19 of 100)".into(),
            SpansDataset::Babe => "BABE SG2, held-out fold 0 of 5 (sha256 of the sentence id mod 5)".into(),
        },
        texts: docs.len(),
        sentences: sentences(&docs).len(),
        gold_spans: docs.iter().map(|d| d.spans.len()).sum(),
        predicted_spans: pred_b.iter().map(Vec::len).sum(),
        token_f1: model.token_f1,
        span_f1: model.span_f1,
        model,
        lexicon_baseline,
        decode: head.decode,
        head_meta: head.meta.clone(),
        data_files: files.iter().map(|f| f.display().to_string()).collect(),
    })
}

impl SpansReport {
    /// Human table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "loaded-language spans on {} ({})\ntexts {}, sentences {}, gold spans {}, predicted spans {}\n\n",
            match self.dataset {
                SpansDataset::Ptc => "PTC Loaded_Language",
                SpansDataset::Babe => "BABE SG2 biased_words",
            },
            self.split,
            self.texts,
            self.sentences,
            self.gold_spans,
            self.predicted_spans
        );
        s.push_str(&format!(
            "span head decoding: {}\n\n",
            decode_text(&self.decode)
        ));
        s.push_str(
            "system            level          P      R      F1     (tp / predicted / gold)\n",
        );
        let mut row = |name: &str, x: &SystemScores| {
            for (lvl, p) in [
                ("token", &x.token),
                ("span overlap", &x.span_overlap),
                ("span exact", &x.span_exact),
            ] {
                s.push_str(&format!(
                    "{:<16}  {:<12}  {:.3}  {:.3}  {:.3}  ({} / {} / {})\n",
                    name, lvl, p.precision, p.recall, p.f1, p.tp, p.predicted, p.gold
                ));
            }
        };
        row("span head", &self.model);
        if let Some(l) = &self.lexicon_baseline {
            row("Recasens lexicon", l);
        }
        s
    }
}

/// Whether a span head's header says it was trained on BABE (`config.babe`; a head without
/// the key counts as not). Its token evidence then leaks into a BABE cross-validation.
pub fn saw_babe(head: &TaggerHead) -> bool {
    head.meta
        .get("config")
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|v| v.get("babe").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_clip_spans() {
        let doc = SpanDoc {
            id: "1".into(),
            text: "He is a traitor. A vile, cowardly man said so.".into(),
            spans: vec![(8, 24)], // "traitor. A vile,"
        };
        let s = sentences(std::slice::from_ref(&doc));
        assert_eq!(s.len(), 2);
        let t0 = &doc.text[s[0].start..s[0].end];
        let g0 = &s[0].gold[0];
        assert_eq!(&t0[g0.start..g0.end], "traitor.");
        let t1 = &doc.text[s[1].start..s[1].end];
        let g1 = &s[1].gold[0];
        assert_eq!(&t1[g1.start..g1.end], "A vile,");
    }

    #[test]
    fn lexicon_baseline_and_scoring() {
        let lex: HashSet<String> = ["vile", "cowardly"].iter().map(|s| s.to_string()).collect();
        let text = "A Vile, cowardly man.";
        let p = lexicon_spans(text, &lex);
        assert_eq!(p, vec![(2, 6), (8, 16)]);
        let doc = SpanDoc {
            id: "x".into(),
            text: text.into(),
            spans: vec![(2, 16)],
        };
        let s = score_docs(&[doc], &[p]);
        // Both predictions overlap the one gold span; tokens: Vile , cowardly gold, 2 predicted.
        assert_eq!(s.span_overlap.tp, 2);
        assert!((s.span_f1 - 1.0).abs() < 1e-12);
        assert_eq!((s.token.tp, s.token.predicted, s.token.gold), (2, 2, 3));
        assert_eq!(s.span_exact.tp, 0);
    }
}
