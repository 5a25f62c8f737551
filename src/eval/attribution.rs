//! Attribution spans on PolNeAR: train the tagger ([`train`]) and score it ([`evaluate`]).
//!
//! Both read PolNeAR through [`crate::data::polnear`], split articles into sentences with
//! slant's splitter, and encode every sentence once into token states kept in the feature cache
//! ([`crate::train::tagger::token_states_cached`], f16; a later run re-encodes nothing).
//!
//! Evaluation is on whole articles: each sentence is tagged, spans are moved to article offsets
//! and contents joined across sentence boundaries ([`crate::attribution::join_sentences`]), then
//! compared with the article's gold spans (covering ranges of discontinuous spans) by
//! [`crate::eval::spans::score`] (exact and overlap F1, token F1), summed over articles.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::attribution::{article_gold, join_sentences, labels, sentence_gold};
use crate::data::polnear::{self, PolnearArticle};
use crate::encode::Encoder;
use crate::eval::spans::{score, LabeledSpan, Prf, SpanScores};
use crate::eval::{version_info, DataFile};
use crate::heads::tagger::{
    TagSpan, TaggerHead, DECODING_VITERBI, META_DECODING, META_TRANSITIONS,
};
use crate::segment::{self, SentenceSpan};
use crate::train::tagger::{
    bio_tags, token_states_cached, train_tagger_window, transition_scores, word_tags, TaggedSet,
    TaggerOpts, TaggerReport, TokenStates, Transitions,
};
use crate::Result;

/// Sentences of a split with their token states and gold tags.
pub struct Prepared {
    pub articles: Vec<PolnearArticle>,
    pub sentences: Vec<Vec<SentenceSpan>>,
    pub states: TokenStates,
    pub tags: Vec<Vec<Option<usize>>>,
}

/// Read, split, encode (cached) and tag one PolNeAR split.
pub fn prepare(encoder: &Encoder, data: &Path, split: &str, batch_size: usize) -> Result<Prepared> {
    let articles = polnear::read_split(data, split)?;
    let sentences: Vec<Vec<SentenceSpan>> =
        articles.iter().map(|a| segment::split(&a.text)).collect();
    let texts: Vec<&str> = articles
        .iter()
        .zip(&sentences)
        .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
        .collect();
    let cache = crate::train::cache_dir();
    let states = token_states_cached(encoder, &texts, batch_size, Some(&cache))?;
    let labels = labels();
    let mut tags = Vec::with_capacity(texts.len());
    let mut k = 0;
    for (a, ss) in articles.iter().zip(&sentences) {
        for s in ss {
            let gold = sentence_gold(a, s);
            tags.push(bio_tags(texts[k], &states.offsets[k], &gold, &labels)?);
            k += 1;
        }
    }
    Ok(Prepared {
        articles,
        sentences,
        states,
        tags,
    })
}

/// Train the attribution tagger on PolNeAR train, selecting the epoch on dev.
/// `window` is the head's context window (0 = each token's own state; see
/// [`crate::heads::tagger::TaggerHead::window`]).
pub fn train(
    encoder: &Encoder,
    data: &Path,
    opts: &TaggerOpts,
    window: usize,
    batch_size: usize,
) -> Result<(TaggerHead, TaggerReport, Prepared, Prepared)> {
    let tr = prepare(encoder, data, "train", batch_size)?;
    let dv = prepare(encoder, data, "dev", batch_size)?;
    let (head, report) = train_tagger_window(
        TaggedSet {
            states: &tr.states,
            tags: &tr.tags,
        },
        Some(TaggedSet {
            states: &dv.states,
            tags: &dv.tags,
        }),
        &labels(),
        opts,
        window,
    )?;
    Ok((head, report, tr, dv))
}

/// Decoding of the attribution head (stored in its metadata; see
/// [`crate::heads::tagger::Decoding`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecodingMode {
    /// Each word's own arg-max label (heads without a `decoding` key).
    Argmax,
    /// Viterbi under BIO constraints only.
    Viterbi,
    /// Viterbi plus `ln P(label | previous label)` from PolNeAR train's word tags.
    ViterbiBigram,
    /// Viterbi plus `ln P(label | previous) − ln P(label)` from PolNeAR train's word tags.
    ViterbiPmi,
}

/// Word-level gold tag sequences of a prepared split (one per sentence; see
/// [`crate::train::tagger::word_tags`]).
pub fn word_tag_sequences(p: &Prepared) -> Vec<Vec<usize>> {
    let mut out = Vec::with_capacity(p.tags.len());
    let mut k = 0;
    for (a, ss) in p.articles.iter().zip(&p.sentences) {
        for s in ss {
            out.push(word_tags(
                &a.text[s.start..s.end],
                &p.states.offsets[k],
                &p.tags[k],
            ));
            k += 1;
        }
    }
    out
}

/// Set `head`'s decoding metadata to `mode`; the transition scores of the learned modes are
/// estimated from `train` (PolNeAR train; an error if absent).
pub fn set_decoding(
    head: &mut TaggerHead,
    mode: DecodingMode,
    train: Option<&Prepared>,
) -> Result<()> {
    head.meta.remove(META_TRANSITIONS);
    let kind = match mode {
        DecodingMode::Argmax => {
            head.meta.remove(META_DECODING);
            return Ok(());
        }
        DecodingMode::Viterbi => None,
        DecodingMode::ViterbiBigram => Some(Transitions::Bigram),
        DecodingMode::ViterbiPmi => Some(Transitions::Pmi),
    };
    head.meta
        .insert(META_DECODING.into(), DECODING_VITERBI.into());
    if let Some(kind) = kind {
        let tr = train.ok_or_else(|| {
            crate::Error::Data("learned transitions need the PolNeAR train split".into())
        })?;
        let t = transition_scores(&head.labels, &word_tag_sequences(tr), kind);
        let t: Vec<f32> = t.iter().map(|v| (v * 1e4).round() / 1e4).collect();
        head.meta.insert(
            META_TRANSITIONS.into(),
            serde_json::to_string(&t).expect("floats serialise"),
        );
    }
    Ok(())
}

/// Scores of one role, flattened for the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct RoleReport {
    pub exact_f1: f64,
    pub overlap_f1: f64,
    pub token_f1: f64,
    pub exact: Prf,
    pub overlap: Prf,
    pub token: Prf,
}

/// Provenance of an attribution evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct AttributionManifest {
    pub slant_version: String,
    pub git_commit: String,
    pub encoder_sha256: String,
    pub engine: String,
    pub head_sha256: Option<String>,
    pub dataset: String,
    pub split: String,
    /// The metadata file of PolNeAR (its checksum identifies the corpus version).
    pub data_files: Vec<DataFile>,
    pub articles: usize,
    pub sentences: usize,
}

/// `slant eval attribution --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct AttributionReport {
    pub source: RoleReport,
    pub cue: RoleReport,
    pub content: RoleReport,
    /// Targets of the issue and the BBC citron tagger's figures on PARC 3.0, for reference.
    pub reference: BTreeMap<String, [f64; 3]>,
    pub manifest: AttributionManifest,
}

impl AttributionReport {
    /// A table for humans.
    pub fn table(&self) -> String {
        let mut s = format!(
            "PolNeAR {} split: {} articles, {} sentences\n\n{:<8} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9}\n",
            self.manifest.split,
            self.manifest.articles,
            self.manifest.sentences,
            "role",
            "exact F1",
            "P",
            "R",
            "TP",
            "pred",
            "gold",
            "overlap F1"
        );
        for (name, r) in [
            ("source", &self.source),
            ("cue", &self.cue),
            ("content", &self.content),
        ] {
            s.push_str(&format!(
                "{:<8} {:>9.4} {:>7.4} {:>7.4} {:>7} {:>9} {:>9} {:>9.4}   token F1 {:.4}\n",
                name,
                r.exact_f1,
                r.exact.precision,
                r.exact.recall,
                r.exact.tp,
                r.exact.predicted,
                r.exact.gold,
                r.overlap_f1,
                r.token_f1
            ));
        }
        s.push_str(
            "\nTargets (exact F1): source 0.85, cue 0.88, content 0.65; citron on PARC 3.0: 0.82 / 0.82 / 0.59.\n",
        );
        s
    }
}

/// Tag every sentence of a prepared split: per article, joined spans in article offsets.
pub fn predict(head: &TaggerHead, p: &Prepared) -> Vec<Vec<(usize, TagSpan)>> {
    let mut out = Vec::with_capacity(p.articles.len());
    let mut k = 0;
    for (a, ss) in p.articles.iter().zip(&p.sentences) {
        let tagged: Vec<Vec<TagSpan>> = ss
            .iter()
            .map(|s| {
                let i = k;
                k += 1;
                head.tag(
                    &a.text[s.start..s.end],
                    &p.states.states_of(i),
                    &p.states.offsets[i],
                    p.states.n_tokens(i),
                )
            })
            .collect();
        out.push(join_sentences(&a.text, ss, &tagged));
    }
    out
}

/// Score a head on a prepared split.
pub fn score_prepared(head: &TaggerHead, p: &Prepared) -> SpanScores {
    let preds = predict(head, p);
    let mut total = SpanScores::default();
    for (a, pred) in p.articles.iter().zip(&preds) {
        let pred: Vec<LabeledSpan> = pred
            .iter()
            .map(|(_, t)| LabeledSpan::new(&t.label, t.start, t.end))
            .collect();
        total += score(&a.text, &article_gold(a), &pred);
    }
    total
}

fn role(s: &SpanScores, name: &str) -> RoleReport {
    let r = s.0.get(name).copied().unwrap_or_default();
    RoleReport {
        exact_f1: r.exact.f1,
        overlap_f1: r.overlap.f1,
        token_f1: r.token.f1,
        exact: r.exact,
        overlap: r.overlap,
        token: r.token,
    }
}

/// Evaluate `head` on a PolNeAR split (`test` for the reported figures).
pub fn evaluate(
    encoder: &Encoder,
    head: &TaggerHead,
    head_sha256: Option<String>,
    data: &Path,
    split: &str,
    batch_size: usize,
) -> Result<AttributionReport> {
    let p = prepare(encoder, data, split, batch_size)?;
    Ok(report_of(
        encoder,
        head_sha256,
        data,
        split,
        &p,
        &score_prepared(head, &p),
    ))
}

/// The report of scores on a prepared split.
pub fn report_of(
    encoder: &Encoder,
    head_sha256: Option<String>,
    data: &Path,
    split: &str,
    p: &Prepared,
    s: &SpanScores,
) -> AttributionReport {
    let meta = data.join("polnear/data/metadata.tsv");
    let data_files = DataFile::new(data, &meta).into_iter().collect();
    let reference = [
        (
            "target_exact_f1_source_cue_content".to_string(),
            [0.85, 0.88, 0.65],
        ),
        (
            "citron_parc3_exact_f1_source_cue_content".to_string(),
            [0.82, 0.82, 0.59],
        ),
    ]
    .into_iter()
    .collect();
    AttributionReport {
        source: role(s, "SOURCE"),
        cue: role(s, "CUE"),
        content: role(s, "CONTENT"),
        reference,
        manifest: AttributionManifest {
            slant_version: version_info().0,
            git_commit: version_info().1,
            encoder_sha256: encoder.weights_sha256().to_string(),
            engine: encoder.engine().name().to_string(),
            head_sha256,
            dataset: "polnear".into(),
            split: split.into(),
            data_files,
            articles: p.articles.len(),
            sentences: p.states.len(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::tagger::Decoding;

    fn head() -> TaggerHead {
        let l = labels().len();
        TaggerHead {
            labels: labels(),
            input: 1,
            hidden: 0,
            w1: vec![],
            b1: vec![],
            w2: vec![0.0; l],
            b2: vec![0.0; l],
            meta: BTreeMap::new(),
            w1_packed: Default::default(),
            decode: Default::default(),
        }
    }

    fn prepared() -> Prepared {
        // One article, one sentence: "Akhund claimed it." tagged B-SOURCE B-CUE B-CONTENT O.
        let text = "Akhund claimed it.";
        let mut states = TokenStates {
            hidden: 1,
            ..Default::default()
        };
        states.row_start = vec![0, 6];
        states.offsets = vec![vec![(0, 0), (0, 6), (7, 14), (15, 17), (17, 18), (0, 0)]];
        states.states = vec![half::f16::ZERO; 6];
        Prepared {
            articles: vec![PolnearArticle {
                id: "a".into(),
                text: text.into(),
                spans: vec![],
                relations: vec![],
                ann: "a.ann".into(),
            }],
            sentences: vec![vec![SentenceSpan { start: 0, end: 18 }]],
            states,
            tags: vec![vec![None, Some(1), Some(3), Some(5), Some(0), None]],
        }
    }

    #[test]
    fn decoding_modes_set_and_clear_head_metadata() {
        let p = prepared();
        assert_eq!(word_tag_sequences(&p), vec![vec![1, 3, 5, 0]]);
        let mut h = head();
        set_decoding(&mut h, DecodingMode::Viterbi, None).unwrap();
        assert_eq!(h.decoding(), Decoding::Viterbi(None));
        assert!(set_decoding(&mut h, DecodingMode::ViterbiPmi, None).is_err());
        set_decoding(&mut h, DecodingMode::ViterbiBigram, Some(&p)).unwrap();
        let Decoding::Viterbi(Some(t)) = h.decoding() else {
            panic!("no transitions in {:?}", h.meta);
        };
        // After B-SOURCE the most likely label is B-CUE (the one observed bigram).
        let l = h.labels.len();
        let row = &t[l..2 * l];
        let best = (0..l).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
        assert_eq!(h.labels[best], "B-CUE");
        set_decoding(&mut h, DecodingMode::Argmax, None).unwrap();
        assert_eq!(h.decoding(), Decoding::Argmax);
        assert!(h.meta.is_empty(), "{:?}", h.meta);
    }
}
