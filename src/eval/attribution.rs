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
//!
//! [`oracle_scores`] measures the ceiling of a label scheme: the gold spans projected onto the
//! training tags, decoded and post-processed like a prediction (`slant eval attribution
//! --oracle`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::attribution::{article_gold, join_sentences, labels_of, sentence_gold, sentence_tags};
use crate::data::polnear::{self, PolnearArticle};
use crate::encode::Encoder;
use crate::eval::{version_info, DataFile};
use crate::heads::tagger::{
    per_role_digits, Scheme, TagSpan, TaggerHead, DECODING_VITERBI, META_DECODING,
    META_EXTRA_LAYER, META_SCHEME, META_TRANSITIONS, SCHEME_PER_ROLE,
};
use crate::metrics::spans::{score, LabeledSpan, Prf, SpanScores};
use crate::segment::{self, SentenceSpan};
use crate::train::tagger::{
    extra_layer_features, token_states_cached, train_tagger_scheme, transition_scores, word_tags,
    TaggedSet, TaggerOpts, TaggerReport, TokenStates, Transitions,
};
use crate::Result;

/// Sentences of a split with their token states and gold tags.
pub struct Prepared {
    pub articles: Vec<PolnearArticle>,
    pub sentences: Vec<Vec<SentenceSpan>>,
    pub states: TokenStates,
    pub tags: Vec<Vec<Option<usize>>>,
}

/// Read, split, encode (cached) and tag one PolNeAR split (flat tags).
pub fn prepare(encoder: &Encoder, data: &Path, split: &str, batch_size: usize) -> Result<Prepared> {
    prepare_scheme(encoder, data, split, batch_size, Scheme::Flat)
}

/// [`prepare`] with the training tags of `scheme` ([`crate::attribution::sentence_tags`]).
pub fn prepare_scheme(
    encoder: &Encoder,
    data: &Path,
    split: &str,
    batch_size: usize,
    scheme: Scheme,
) -> Result<Prepared> {
    prepare_features(encoder, data, split, batch_size, scheme, None)
}

/// [`prepare`] with the features `head` reads (final states, or final states followed by lower
/// layers' when its header has [`crate::heads::tagger::META_EXTRA_LAYER`]).
pub fn prepare_for_head(
    encoder: &Encoder,
    head: &TaggerHead,
    data: &Path,
    split: &str,
    batch_size: usize,
) -> Result<Prepared> {
    head.check_extra_layers(encoder.layers())?;
    prepare_features(
        encoder,
        data,
        split,
        batch_size,
        head.scheme(),
        head.extra_layers(),
    )
}

/// [`prepare_scheme`] whose token features are, with `extra_layers = Some((a, b))`, each
/// token's final state followed by the mean of its states after layers `a..=b`
/// ([`crate::train::tagger::extra_layer_features`], each layer cached apart from the final
/// states); `None`: the final states alone, as [`prepare_scheme`].
pub fn prepare_features(
    encoder: &Encoder,
    data: &Path,
    split: &str,
    batch_size: usize,
    scheme: Scheme,
    extra_layers: Option<(usize, usize)>,
) -> Result<Prepared> {
    let (articles, sentences) = read_sentences(data, split)?;
    let texts = sentence_texts(&articles, &sentences);
    let cache = crate::train::cache_dir();
    let mut states = token_states_cached(encoder, &texts, batch_size, Some(&cache))?;
    if let Some(layers) = extra_layers {
        states = extra_layer_features(encoder, &texts, layers, batch_size, Some(&cache), &states)?;
    }
    let tags = tags_of(&articles, &sentences, &states.offsets, scheme)?;
    Ok(Prepared {
        articles,
        sentences,
        states,
        tags,
    })
}

/// The articles of a PolNeAR split (read order) and their sentences (slant's splitter).
fn read_sentences(
    data: &Path,
    split: &str,
) -> Result<(Vec<PolnearArticle>, Vec<Vec<SentenceSpan>>)> {
    let articles = polnear::read_split(data, split)?;
    let sentences = articles.iter().map(|a| segment::split(&a.text)).collect();
    Ok((articles, sentences))
}

/// Every sentence's text, articles in order, sentences in order: the order of a split's rows.
fn sentence_texts<'a>(
    articles: &'a [PolnearArticle],
    sentences: &[Vec<SentenceSpan>],
) -> Vec<&'a str> {
    articles
        .iter()
        .zip(sentences)
        .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
        .collect()
}

/// The training tags of every sentence under `scheme`, from its token offsets.
fn tags_of(
    articles: &[PolnearArticle],
    sentences: &[Vec<SentenceSpan>],
    offsets: &[Vec<(usize, usize)>],
    scheme: Scheme,
) -> Result<Vec<Vec<Option<usize>>>> {
    let mut tags = Vec::with_capacity(offsets.len());
    let mut k = 0;
    for (a, ss) in articles.iter().zip(sentences) {
        for s in ss {
            let gold = sentence_gold(a, s);
            tags.push(sentence_tags(
                &a.text[s.start..s.end],
                &offsets[k],
                &gold,
                scheme,
            )?);
            k += 1;
        }
    }
    Ok(tags)
}

/// [`prepare_scheme`] without the encoder pass: the split's sentences tokenized by the
/// encoder's tokenizer (the same call, padding off and truncation at
/// [`Encoder::max_tokens`], as the encoder makes before its forward pass, so the offsets are
/// those of the token states), with their training tags, and each sentence's input ids
/// (`[CLS]` and `[SEP]` included, as the encoder is fed). The returned [`Prepared`] holds no
/// token states (`hidden` 0): it serves to decode probabilities computed elsewhere
/// ([`predict_probs`]) and the oracle, not a head.
pub fn prepare_ids(
    encoder: &Encoder,
    data: &Path,
    split: &str,
    scheme: Scheme,
) -> Result<(Prepared, Vec<Vec<u32>>)> {
    let (articles, sentences) = read_sentences(data, split)?;
    let texts = sentence_texts(&articles, &sentences);
    let encodings = encoder
        .tokenizer()
        .encode_batch(texts.clone(), true)
        .map_err(|e| crate::Error::Tokenizer(e.to_string()))?;
    let mut states = TokenStates {
        hidden: 0,
        ..Default::default()
    };
    states.row_start.push(0);
    let mut ids = Vec::with_capacity(texts.len());
    for e in &encodings {
        let (i, o) = (e.get_ids(), e.get_offsets());
        assert_eq!(i.len(), o.len(), "one offset per input id");
        states.offsets.push(o.to_vec());
        states
            .row_start
            .push(states.row_start.last().copied().unwrap_or(0) + i.len());
        ids.push(i.to_vec());
    }
    let tags = tags_of(&articles, &sentences, &states.offsets, scheme)?;
    Ok((
        Prepared {
            articles,
            sentences,
            states,
            tags,
        },
        ids,
    ))
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
    train_scheme(encoder, data, opts, window, batch_size, Scheme::Flat)
}

/// [`train`] under a labelling scheme (see [`crate::heads::tagger::Scheme`]).
pub fn train_scheme(
    encoder: &Encoder,
    data: &Path,
    opts: &TaggerOpts,
    window: usize,
    batch_size: usize,
    scheme: Scheme,
) -> Result<(TaggerHead, TaggerReport, Prepared, Prepared)> {
    train_features(encoder, data, opts, window, batch_size, scheme, None)
}

/// [`train_scheme`] on the features of [`prepare_features`]; with `extra_layers` the head's
/// header records them ([`crate::heads::tagger::META_EXTRA_LAYER`]: `L`, or `A-B` for a mean).
pub fn train_features(
    encoder: &Encoder,
    data: &Path,
    opts: &TaggerOpts,
    window: usize,
    batch_size: usize,
    scheme: Scheme,
    extra_layers: Option<(usize, usize)>,
) -> Result<(TaggerHead, TaggerReport, Prepared, Prepared)> {
    let tr = prepare_features(encoder, data, "train", batch_size, scheme, extra_layers)?;
    let dv = prepare_features(encoder, data, "dev", batch_size, scheme, extra_layers)?;
    let (mut head, report) = train_tagger_scheme(
        TaggedSet {
            states: &tr.states,
            tags: &tr.tags,
        },
        Some(TaggedSet {
            states: &dv.states,
            tags: &dv.tags,
        }),
        &labels_of(scheme),
        opts,
        window,
        scheme,
    )?;
    if let Some((a, b)) = extra_layers {
        let v = if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        };
        head.meta.insert(META_EXTRA_LAYER.to_string(), v);
    }
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
        if head.scheme() == Scheme::PerRole {
            return Err(crate::Error::Unsupported(
                "learned transitions are for flat taggers; a per-role tagger decodes each role \
                 by Viterbi under BIO constraints only"
                    .into(),
            ));
        }
        let tr = train.ok_or_else(|| {
            crate::Error::Missing("learned transitions need the PolNeAR train split".into())
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
    /// Where the predictions came from when they were not the head's own (`slant eval
    /// attribution --probs FILE`): decoded by the head from that file's probabilities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionsFile>,
}

/// A file of per-token probabilities that a report's predictions were decoded from.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionsFile {
    /// As given on the command line.
    pub path: String,
    pub sha256: String,
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
        if let Some(f) = &self.manifest.predictions {
            s.push_str(&format!(
                "\nPredictions decoded from {} (sha256 {}).\n",
                f.path, f.sha256
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
    joined(
        p,
        per_sentence(p, |i, text| {
            head.tag(
                text,
                &p.states.states_of(i),
                &p.states.offsets[i],
                p.states.n_tokens(i),
            )
        }),
    )
}

/// [`predict`] from per-token probabilities computed elsewhere (`probs[i]`: one row of
/// `head.labels.len()` per token of sentence `i`, as [`read_probs`] checks them): each
/// sentence decoded by `head`'s [`TaggerHead::decode_probs`] (its decoding, transitions and
/// rules), then joined like [`predict`]'s.
pub fn predict_probs(
    head: &TaggerHead,
    p: &Prepared,
    probs: &[Vec<Vec<f32>>],
) -> Vec<Vec<(usize, TagSpan)>> {
    assert_eq!(
        probs.len(),
        p.states.len(),
        "one probability row per sentence"
    );
    joined(
        p,
        per_sentence(p, |i, text| {
            head.decode_probs(text, &probs[i], &p.states.offsets[i])
        }),
    )
}

/// Per-sentence spans (grouped by article, sentence offsets) joined per article as
/// [`predict`] does ([`join_sentences`]).
fn joined(p: &Prepared, tagged: Vec<Vec<Vec<TagSpan>>>) -> Vec<Vec<(usize, TagSpan)>> {
    tagged
        .into_iter()
        .zip(p.articles.iter().zip(&p.sentences))
        .map(|(tagged, (a, ss))| join_sentences(&a.text, ss, &tagged))
        .collect()
}

/// `tag(i, sentence text)` for every sentence of `p` (`i` its index across the split), grouped
/// by article, spans in sentence offsets.
fn per_sentence(
    p: &Prepared,
    mut tag: impl FnMut(usize, &str) -> Vec<TagSpan>,
) -> Vec<Vec<Vec<TagSpan>>> {
    let mut k = 0;
    p.articles
        .iter()
        .zip(&p.sentences)
        .map(|(a, ss)| {
            ss.iter()
                .map(|s| {
                    k += 1;
                    tag(k - 1, &a.text[s.start..s.end])
                })
                .collect()
        })
        .collect()
}

/// Score a head on a prepared split.
pub fn score_prepared(head: &TaggerHead, p: &Prepared) -> SpanScores {
    score_articles(p, &predict(head, p))
}

/// Score per-article spans (article offsets) against a prepared split's gold spans.
pub fn score_articles(p: &Prepared, preds: &[Vec<(usize, TagSpan)>]) -> SpanScores {
    let mut total = SpanScores::default();
    for (a, pred) in p.articles.iter().zip(preds) {
        let pred: Vec<LabeledSpan> = pred
            .iter()
            .map(|(_, t)| LabeledSpan::new(&t.label, t.start, t.end))
            .collect();
        total += score(&a.text, &article_gold(a), &pred);
    }
    total
}

/// What the oracle of [`oracle_scores`] keeps of the post-processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OracleRules {
    /// Each sentence's decoded spans moved to article offsets, nothing else (no cross-sentence
    /// join, no boundary rules).
    Decoded,
    /// Everything [`predict`] does after the head: [`join_sentences`] with its boundary rules.
    Rules,
}

/// A head that only describes an attribution tagger of `scheme` decoded by Viterbi (no
/// weights): what [`oracle_scores`] needs without a trained head.
pub fn oracle_head(scheme: Scheme) -> TaggerHead {
    let mut meta = BTreeMap::new();
    meta.insert(META_DECODING.to_string(), DECODING_VITERBI.to_string());
    if scheme == Scheme::PerRole {
        meta.insert(META_SCHEME.to_string(), SCHEME_PER_ROLE.to_string());
    }
    TaggerHead {
        labels: labels_of(scheme),
        input: 0,
        hidden: 0,
        w1: vec![],
        b1: vec![],
        w2: vec![],
        b2: vec![],
        meta,
        w1_packed: Default::default(),
        decode: Default::default(),
    }
}

/// The probabilities a perfect tagger of `head`'s scheme would give a sentence's gold tags
/// (`tags` as [`prepare_scheme`] makes them for that scheme): one-hot per token (per role
/// group for a per-role head); untagged special tokens as `O`. (In the flat scheme the rest of
/// an outer span after a nested one is an `I-X` that Viterbi cannot keep: it decodes as `O`,
/// part of what flattening loses.)
pub fn gold_probs(head: &TaggerHead, tags: &[Option<usize>]) -> Vec<Vec<f32>> {
    let l = head.labels.len();
    let o = head
        .labels
        .iter()
        .position(|x| crate::heads::tagger::split_bio(x).0 == 'O')
        .unwrap_or(0);
    tags.iter()
        .map(|t| {
            let mut v = vec![0.0f32; l];
            match head.scheme() {
                Scheme::PerRole => {
                    for (g, d) in per_role_digits(t.unwrap_or(0), l / 3)
                        .into_iter()
                        .enumerate()
                    {
                        v[3 * g + d] = 1.0;
                    }
                }
                Scheme::Flat => v[t.unwrap_or(o)] = 1.0,
            }
            v
        })
        .collect()
}

/// The ceiling of a label scheme: the gold spans projected onto the per-sentence training tags
/// of `head`'s scheme (`p` prepared with that scheme: sentence cuts, word alignment, and for
/// the flat scheme the flattening of nested spans), decoded as `head` decodes
/// ([`TaggerHead::decode_probs`] on one-hot probabilities) and post-processed as `rules`
/// says, then scored against the gold spans like a prediction.
pub fn oracle_scores(head: &TaggerHead, p: &Prepared, rules: OracleRules) -> SpanScores {
    let tagged = per_sentence(p, |i, text| {
        head.decode_probs(text, &gold_probs(head, &p.tags[i]), &p.states.offsets[i])
    });
    let preds: Vec<Vec<(usize, TagSpan)>> = match rules {
        OracleRules::Rules => joined(p, tagged),
        OracleRules::Decoded => tagged
            .into_iter()
            .zip(&p.sentences)
            .map(|(tagged, ss)| {
                ss.iter()
                    .zip(tagged)
                    .enumerate()
                    .flat_map(|(i, (s, t))| {
                        t.into_iter().map(move |mut t| {
                            t.start += s.start;
                            t.end += s.start;
                            (i, t)
                        })
                    })
                    .collect()
            })
            .collect(),
    };
    score_articles(p, &preds)
}

/// What [`export_tokens`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct TokenExport {
    /// Per split: (split, sentences, input ids).
    pub splits: Vec<(String, usize, usize)>,
    pub labels: Vec<String>,
}

/// One row of `{split}.jsonl` ([`export_tokens`]).
#[derive(Serialize)]
struct TokenRow<'a> {
    article: &'a str,
    sentence: usize,
    input_ids: &'a [u32],
    tags: Vec<i64>,
}

/// Write the flat training data of the attribution tagger for a tagger trained elsewhere:
/// `out/{train,dev,test}.jsonl`, one row per sentence in the order of [`prepare`] (articles
/// in read order, sentences in order): `article` (PolNeAR id), `sentence` (index in the
/// article), `input_ids` (exactly what the encoder is fed, `[CLS]` / `[SEP]` included) and
/// `tags` (index into `labels` per input id, `-1` where training ignores the token); plus
/// `labels.json` and `README.txt`. Tokenizes only ([`prepare_ids`]); encodes nothing.
pub fn export_tokens(encoder: &Encoder, data: &Path, out: &Path) -> Result<TokenExport> {
    use std::io::Write;
    std::fs::create_dir_all(out).map_err(|e| crate::Error::io(out, e))?;
    let labels = labels_of(Scheme::Flat);
    let mut splits = Vec::new();
    for split in ["train", "dev", "test"] {
        let (p, ids) = prepare_ids(encoder, data, split, Scheme::Flat)?;
        let path = out.join(format!("{split}.jsonl"));
        let file = std::fs::File::create(&path).map_err(|e| crate::Error::io(&path, e))?;
        let mut w = std::io::BufWriter::new(file);
        let mut k = 0;
        let mut n_ids = 0;
        for (a, ss) in p.articles.iter().zip(&p.sentences) {
            for i in 0..ss.len() {
                let (input_ids, tags) = (&ids[k], &p.tags[k]);
                assert_eq!(input_ids.len(), p.states.n_tokens(k), "ids vs token states");
                assert_eq!(input_ids.len(), p.states.offsets[k].len(), "ids vs offsets");
                assert_eq!(input_ids.len(), tags.len(), "ids vs tags");
                let row = TokenRow {
                    article: &a.id,
                    sentence: i,
                    input_ids,
                    tags: tags.iter().map(|t| t.map_or(-1, |t| t as i64)).collect(),
                };
                serde_json::to_writer(&mut w, &row).expect("rows serialise");
                w.write_all(b"\n").map_err(|e| crate::Error::io(&path, e))?;
                n_ids += input_ids.len();
                k += 1;
            }
        }
        w.flush().map_err(|e| crate::Error::io(&path, e))?;
        splits.push((split.to_string(), k, n_ids));
    }
    let path = out.join("labels.json");
    let json = serde_json::to_string(&labels).expect("labels serialise") + "\n";
    std::fs::write(&path, json).map_err(|e| crate::Error::io(&path, e))?;
    let mut readme = format!(
        "Token data of slant's attribution tagger on PolNeAR ({} {}; `slant eval attribution \
         --export-tokens`).\n\n\
         {{train,dev,test}}.jsonl: one row per sentence, articles in slant's read order, sentences in \
         order (slant's splitter), the order `slant eval attribution --probs FILE` expects.\n\
         - article: PolNeAR article id\n\
         - sentence: index of the sentence in its article (from 0)\n\
         - input_ids: the encoder's input ids for the sentence, exactly as slant feeds them \
         ([CLS] and [SEP] included, no padding, truncated at {} tokens), tokenizer.json of \
         the encoder whose weights have sha256 {}\n\
         - tags: per input id, the index of its training label in labels.json (flat BIO over \
         SOURCE / CUE / CONTENT), or -1 where slant's training ignores the token (the \
         special tokens [CLS] and [SEP], which cover no text); every word piece is tagged \
         (B- on a span's first piece, I- on the rest), and slant's decoding reads each word at \
         its first piece\n\n\
         labels.json: the label list in index order (as in models/attribution.safetensors).\n\n\
         --probs FILE rows: {{\"probs\": [[p per label] per input id]}} (optionally with the \
         \"article\" and \"sentence\" of the row, checked), one per sentence of the split in \
         this order; slant decodes them with the head's own decoding and scores them.\n\n",
        crate::eval::version_info().0,
        crate::eval::version_info().1,
        encoder.max_tokens(),
        encoder.weights_sha256(),
    );
    for (split, n, t) in &splits {
        readme.push_str(&format!("{split}: {n} sentences, {t} input ids\n"));
    }
    let path = out.join("README.txt");
    std::fs::write(&path, readme).map_err(|e| crate::Error::io(&path, e))?;
    Ok(TokenExport { splits, labels })
}

/// One row of a `--probs` file.
#[derive(serde::Deserialize)]
struct ProbsRow {
    probs: Vec<Vec<f32>>,
    article: Option<String>,
    sentence: Option<usize>,
}

/// Read per-token probabilities for every sentence of `p` from JSONL text (`name` for
/// errors): one row per sentence in `p`'s order, `{"probs": [[f32; n_labels] per token]}`,
/// optionally with `article` and `sentence` (checked against `p`). Blank lines are skipped.
/// A wrong row count, token count, width, a negative or non-finite value, or a row naming
/// another sentence is an error naming the line.
pub fn read_probs(
    text: &str,
    name: &str,
    p: &Prepared,
    n_labels: usize,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let bad = |line: usize, m: String| crate::Error::bad_data(name, Some(line), m);
    let mut where_: Vec<(&str, usize)> = Vec::with_capacity(p.states.len());
    for (a, ss) in p.articles.iter().zip(&p.sentences) {
        where_.extend((0..ss.len()).map(|i| (a.id.as_str(), i)));
    }
    let mut out = Vec::with_capacity(where_.len());
    let mut last = 0;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        last = n;
        let k = out.len();
        let Some(&(article, sentence)) = where_.get(k) else {
            return Err(bad(
                n,
                format!("more rows than the split's {} sentences", where_.len()),
            ));
        };
        let row: ProbsRow = serde_json::from_str(line)
            .map_err(|e| bad(n, format!("not a row {{\"probs\": [[...], ...]}}: {e}")))?;
        if let Some(a) = &row.article {
            if a != article {
                return Err(bad(
                    n,
                    format!(
                        "row {} is article {a:?}, expected {article:?} (sentence {sentence})",
                        k + 1
                    ),
                ));
            }
        }
        if let Some(s) = row.sentence {
            if s != sentence {
                return Err(bad(
                    n,
                    format!("row {} is sentence {s}, expected sentence {sentence} of article {article:?}", k + 1),
                ));
            }
        }
        let want = p.states.n_tokens(k);
        if row.probs.len() != want {
            return Err(bad(
                n,
                format!(
                    "{} probability rows, but sentence {sentence} of article {article:?} has {want} input ids",
                    row.probs.len()
                ),
            ));
        }
        for (t, r) in row.probs.iter().enumerate() {
            if r.len() != n_labels {
                return Err(bad(
                    n,
                    format!(
                        "token {t} has {} probabilities, the head has {n_labels} labels",
                        r.len()
                    ),
                ));
            }
            if let Some(v) = r.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(bad(
                    n,
                    format!("token {t}: probability {v} is not a finite value >= 0"),
                ));
            }
        }
        out.push(row.probs);
    }
    if out.len() != where_.len() {
        return Err(bad(
            last,
            format!(
                "{} rows, but the split has {} sentences",
                out.len(),
                where_.len()
            ),
        ));
    }
    Ok(out)
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
    let p = prepare_for_head(encoder, head, data, split, batch_size)?;
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
            predictions: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::tagger::per_role_code;
    use crate::heads::tagger::Decoding;

    fn head() -> TaggerHead {
        let l = crate::attribution::labels().len();
        TaggerHead {
            labels: crate::attribution::labels(),
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

    /// "Obama said that Trump claimed it." with its nested gold attributions, tagged for
    /// `scheme`.
    fn nested(scheme: Scheme) -> Prepared {
        use crate::data::polnear::RoleSpan;
        let text = "Obama said that Trump claimed it.";
        let span = |role, needle: &str| {
            let s = text.find(needle).unwrap();
            RoleSpan {
                role,
                start: s,
                end: s + needle.len(),
            }
        };
        let article = PolnearArticle {
            id: "n".into(),
            text: text.into(),
            spans: vec![
                span("SOURCE", "Obama"),
                span("CUE", "said"),
                span("CONTENT", "that Trump claimed it"),
                span("SOURCE", "Trump"),
                span("CUE", "claimed"),
                span("CONTENT", "it"),
            ],
            relations: vec![],
            ann: "n.ann".into(),
        };
        let offsets = vec![
            (0, 0),
            (0, 5),
            (6, 10),
            (11, 15),
            (16, 21),
            (22, 29),
            (30, 32),
            (32, 33),
            (0, 0),
        ];
        let sentence = SentenceSpan { start: 0, end: 33 };
        let gold = sentence_gold(&article, &sentence);
        let tags = sentence_tags(text, &offsets, &gold, scheme).unwrap();
        let mut states = TokenStates {
            hidden: 1,
            ..Default::default()
        };
        states.row_start = vec![0, offsets.len()];
        states.states = vec![half::f16::ZERO; offsets.len()];
        states.offsets = vec![offsets];
        Prepared {
            articles: vec![article],
            sentences: vec![vec![sentence]],
            states,
            tags: vec![tags],
        }
    }

    #[test]
    fn oracle_shows_what_flattening_loses_and_per_role_keeps() {
        let flat = nested(Scheme::Flat);
        // Flat: Obama/B-SOURCE said/B-CUE that/B-CONTENT Trump/B-SOURCE claimed/B-CUE
        // it/I-CONTENT (the outer content keeps "it"; Viterbi cannot read an I- after a CUE).
        let per = nested(Scheme::PerRole);
        // Per role (SOURCE, CUE, CONTENT digits): that = (O, O, B), Trump = (B, O, I) ...
        assert_eq!(per.tags[0][3], Some(per_role_code(&[0, 0, 1])));
        assert_eq!(per.tags[0][4], Some(per_role_code(&[1, 0, 2])));
        for rules in [OracleRules::Decoded, OracleRules::Rules] {
            let f = oracle_scores(&oracle_head(Scheme::Flat), &flat, rules);
            let p = oracle_scores(&oracle_head(Scheme::PerRole), &per, rules);
            for role in ["SOURCE", "CUE"] {
                assert_eq!(f.0[role].exact.tp, 2, "{rules:?} {role}");
                assert_eq!(p.0[role].exact.tp, 2, "{rules:?} {role}");
            }
            // Flat: "that" only (the outer content is cut by the nested attribution and its
            // rest, an I-CONTENT after a CUE, is not valid BIO); per role: the outer content
            // whole (the inner "it" is inside it in the CONTENT sequence).
            let (fc, pc) = (f.0["CONTENT"].exact, p.0["CONTENT"].exact);
            assert_eq!((fc.tp, fc.predicted, fc.gold), (0, 1, 2), "{rules:?}");
            assert_eq!((pc.tp, pc.predicted, pc.gold), (1, 1, 2), "{rules:?}");
        }
        // The oracle's probabilities are one-hot per group.
        let g = gold_probs(&oracle_head(Scheme::PerRole), &per.tags[0]);
        assert!(g.iter().all(|r| r.iter().sum::<f32>() == 3.0));
        let g = gold_probs(&oracle_head(Scheme::Flat), &flat.tags[0]);
        assert!(g.iter().all(|r| r.iter().sum::<f32>() == 1.0));
        assert_eq!(g[0][0], 1.0, "special tokens read as O");
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

    #[test]
    fn read_probs_checks_rows_tokens_and_width_naming_the_line() {
        let p = prepared();
        let l = crate::attribution::labels().len();
        let row = |n: usize, w: usize| {
            let probs = vec![vec![0.0f32; w]; n];
            serde_json::json!({ "probs": probs }).to_string()
        };
        let ok = read_probs(&format!("{}\n\n", row(6, l)), "f", &p, l).unwrap();
        assert_eq!((ok.len(), ok[0].len(), ok[0][0].len()), (1, 6, l));
        let keyed = r#"{"article":"a","sentence":0,"probs":[[1,0,0,0,0,0,0],[0,1,0,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,0,1,0],[1,0,0,0,0,0,0],[1,0,0,0,0,0,0]]}"#;
        assert_eq!(read_probs(keyed, "f", &p, l).unwrap()[0][2][3], 1.0);
        let err = |text: &str| read_probs(text, "f.jsonl", &p, l).unwrap_err().to_string();
        let e = err(&row(5, l));
        assert!(
            e.contains("f.jsonl:1:") && e.contains("5 probability rows") && e.contains("has 6"),
            "{e}"
        );
        let e = err(&row(6, l - 1));
        assert!(
            e.contains("f.jsonl:1:") && e.contains("has 6 probabilities"),
            "{e}"
        );
        let e = err(&format!("{}\n{}", row(6, l), row(6, l)));
        assert!(e.contains("f.jsonl:2:") && e.contains("more rows"), "{e}");
        let e = err("\n");
        assert!(e.contains("0 rows, but the split has 1 sentences"), "{e}");
        let e = err(&keyed.replace(r#""article":"a""#, r#""article":"b""#));
        assert!(e.contains("article \"b\", expected \"a\""), "{e}");
        let e = err(&keyed.replace(r#""sentence":0"#, r#""sentence":1"#));
        assert!(e.contains("sentence 1, expected sentence 0"), "{e}");
        let e = err(&keyed.replace("[0,1,0,0,0,0,0]", "[0,-1,0,0,0,0,0]"));
        assert!(e.contains("token 1: probability -1"), "{e}");
        let e = err(r#"{"prob":[]}"#);
        assert!(e.contains("f.jsonl:1: not a row"), "{e}");
    }

    #[test]
    fn gold_probabilities_decode_to_the_oracle_with_the_joins_of_predict() {
        // Flat gold one-hot probabilities given as external probabilities: the spans are the
        // oracle's with the post-processing of predictions.
        let p = nested(Scheme::Flat);
        let head = oracle_head(Scheme::Flat);
        let probs: Vec<Vec<Vec<f32>>> = p.tags.iter().map(|t| gold_probs(&head, t)).collect();
        let got = score_articles(&p, &predict_probs(&head, &p, &probs));
        let want = oracle_scores(&head, &p, OracleRules::Rules);
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        assert!(got.0["CUE"].exact.tp > 0);
        // A misaligned row (shifted by one token) is not the oracle.
        let shifted: Vec<Vec<Vec<f32>>> = probs
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.rotate_right(1);
                r
            })
            .collect();
        let off = score_articles(&p, &predict_probs(&head, &p, &shifted));
        assert_ne!(format!("{off:?}"), format!("{want:?}"));
    }
}
