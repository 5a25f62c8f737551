//! The scoring pipeline: articles → sentences → one encoder pass → heads → records + summaries.
//!
//! [`Scorer::score_chunk`] takes a chunk of articles, splits them in parallel (rayon), encodes
//! all their sentences together (length-sorted batches) and applies the heads. The CLI feeds it
//! bounded chunks from the ingest stream, so memory stays flat whatever the corpus size.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

pub mod records;

use crate::attribution;
use crate::encode::{EncodeStats, Encoder};
use crate::heads::frames::{article_vector, FramesHead};
use crate::heads::tagger::{outside_label, TagSpan, TaggerHead};
use crate::heads::tuned::TunedLoaded;
use crate::heads::{sentence_features, span_evidence, MlpHead, SPAN_EVIDENCE_DIM};
use crate::ingest::Article;
use crate::vocab::FRAMES;
use crate::Result;
use crate::{segment, terms};
use records::{ArticleSummary, LoadedSpan, SentenceRecord};

/// Per sentence of an article: its attributions and its `unattributed` flag.
type ArticleAttributions = (Vec<Vec<attribution::Attribution>>, Vec<bool>);

/// Articles per chunk fed to the encoder by the CLI.
pub const DEFAULT_CHUNK_ARTICLES: usize = 64;

/// The encoder plus the heads that read it.
#[derive(Debug)]
pub struct Scorer {
    pub encoder: Encoder,
    pub loaded: MlpHead,
    pub batch_size: usize,
    /// Count words ([`crate::terms`]) for these sources' articles; `None` counts none (memory
    /// stays bounded: `compare` only needs the two sources it compares).
    pub terms: Option<TermOpts>,
    /// The article frames head ([`crate::heads::frames`]); `None` scores no frames.
    pub frames: Option<FramesHead>,
    /// The attribution tagger ([`crate::attribution`]); `None` finds no attributions (records
    /// then have empty `attributions` and `unattributed: null`).
    pub attribution: Option<TaggerHead>,
    /// The loaded-language span head ([`crate::train::loaded_spans`]); `None` finds no spans.
    /// Without it and without the attribution tagger the encoder keeps no token states.
    pub spans: Option<TaggerHead>,
    /// Where the loaded head's span evidence comes from ([`crate::heads::SentenceFeatures`]);
    /// `None` when it reads mean pooling only.
    pub evidence: Option<EvidenceHead>,
    /// The tuned loaded head ([`crate::heads::tuned`]): when present, the sentence
    /// probability and label are its, and [`Self::loaded`] is not used for them.
    pub tuned: Option<TunedLoaded>,
}

/// The span head whose token evidence the loaded-language sentence head reads.
#[derive(Debug)]
pub enum EvidenceHead {
    /// [`Scorer::spans`] itself: one prediction per token serves spans and evidence.
    Spans,
    /// A span head kept for evidence only (e.g. `--no-spans`: no spans are reported).
    Own(Box<TaggerHead>),
}

/// Which sources get word counts, and whether bigrams are counted too.
#[derive(Debug, Clone, Default)]
pub struct TermOpts {
    pub sources: BTreeSet<String>,
    pub bigrams: bool,
}

/// One scored article.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredArticle {
    pub summary: ArticleSummary,
    pub sentences: Vec<SentenceRecord>,
}

impl ScoredArticle {
    /// P(frame) per frame of the frames head (label → probability), empty without the head.
    pub fn frames(&self) -> BTreeMap<String, f64> {
        FRAMES
            .iter()
            .zip(&self.summary.frames)
            .map(|(f, p)| (f.to_string(), *p))
            .collect()
    }
}

fn round4(x: f32) -> f64 {
    ((x as f64) * 1e4).round() / 1e4
}

/// Where byte `p` of `raw` lands in [`segment::display_text`]`(raw)`: the length of the
/// displayed prefix, plus the joining space when `p` starts a word after whitespace
/// (`starts = true`; span starts sit on a word's first byte, ends just after a word's last).
pub(crate) fn display_offset(raw: &str, p: usize, starts: bool) -> usize {
    let prefix = &raw[..p];
    let shown = segment::display_text(prefix).len();
    if starts && shown > 0 && prefix.ends_with(char::is_whitespace) {
        shown + 1
    } else {
        shown
    }
}

impl Scorer {
    /// The decision threshold of the sentence probability (`loaded_label`).
    pub fn loaded_threshold(&self) -> f32 {
        match &self.tuned {
            Some(t) => t.threshold,
            None => self.loaded.threshold,
        }
    }

    /// Score a chunk of articles; results are in input order.
    pub fn score_chunk(&self, articles: &[Article]) -> Result<(Vec<ScoredArticle>, EncodeStats)> {
        let spans: Vec<Vec<segment::SentenceSpan>> = articles
            .par_iter()
            .map(|a| segment::split(&a.text))
            .collect();
        let texts: Vec<&str> = articles
            .iter()
            .zip(&spans)
            .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
            .collect();
        let evidence_head: Option<&TaggerHead> = match &self.evidence {
            None => None,
            Some(EvidenceHead::Spans) => self.spans.as_ref(),
            Some(EvidenceHead::Own(h)) => Some(h),
        };
        if self.evidence.is_some() && evidence_head.is_none() {
            return Err(crate::Error::Mismatch(
                "the loaded head reads span evidence, but the scorer has no span head".into(),
            ));
        }
        // One encoder pass: token states are kept only when a token head reads them.
        let (enc, stats) = if self.attribution.is_some()
            || self.spans.is_some()
            || evidence_head.is_some()
            || self.tuned.is_some()
        {
            // An attribution head that reads a lower layer, and the tuned loaded head's input,
            // come from this same pass.
            let extra = self.attribution.as_ref().and_then(|h| h.extra_layers());
            let branch = self.tuned.as_ref().map(|t| t.branch());
            self.encoder.encode_tokens(
                &texts,
                self.batch_size,
                crate::encode::TokenExtras { extra, branch },
            )?
        } else {
            let (e, st) = self.encoder.encode(&texts, self.batch_size)?;
            let e = e
                .into_iter()
                .map(|e| crate::encode::TokenEncoding {
                    pooled: e.pooled,
                    states: Vec::new(),
                    offsets: Vec::new(),
                    n_tokens: e.n_tokens,
                    truncated: e.truncated,
                    extra: Vec::new(),
                    branch: Vec::new(),
                })
                .collect();
            (e, st)
        };
        // Per sentence: the span head's spans and, when the loaded head reads it, its evidence
        // (one prediction per token when both come from the same head).
        let evidence_is_spans = matches!(self.evidence, Some(EvidenceHead::Spans));
        let (spans_of, evidence): (Vec<Vec<TagSpan>>, Vec<Option<[f32; SPAN_EVIDENCE_DIM]>>) = enc
            .par_iter()
            .zip(&texts)
            .map(|(e, t)| {
                let n = e.n_tokens.min(e.offsets.len());
                let mut ev = None;
                let spans = match &self.spans {
                    None => Vec::new(),
                    Some(head) => {
                        let probs = head.predict(&e.states[..n * head.state_dim()], n);
                        if evidence_is_spans {
                            ev = Some(span_evidence(&probs, &e.offsets[..n], outside_label(head)));
                        }
                        let mut v = head.decode_probs(t, &probs, &e.offsets[..n]);
                        v.retain(|s| s.label == crate::data::spans::LOADED);
                        v
                    }
                };
                if let (None, Some(EvidenceHead::Own(head))) = (&ev, &self.evidence) {
                    let probs = head.predict(&e.states[..n * head.state_dim()], n);
                    ev = Some(span_evidence(&probs, &e.offsets[..n], outside_label(head)));
                }
                (spans, ev)
            })
            .unzip();
        let feats: Vec<Vec<f32>> = enc
            .par_iter()
            .map(|e| sentence_features(&e.pooled))
            .collect();
        // The frozen head's input: mean pooling, plus the span evidence when it reads it.
        let mlp_input = |f: &Vec<f32>, ev: &Option<[f32; SPAN_EVIDENCE_DIM]>| -> Vec<f32> {
            let mut x = Vec::with_capacity(f.len() + SPAN_EVIDENCE_DIM);
            x.extend_from_slice(f);
            if let Some(ev) = ev {
                x.extend_from_slice(ev);
            }
            x
        };
        let probs: Vec<f32> = match &self.tuned {
            Some(t) => {
                // The merged top already ran inside the encoder's pass (pooled branch).
                let zt = t.logits_of_pooled(enc.iter().map(|e| e.branch.as_slice()));
                let zm: Option<Vec<f32>> = t.blend.as_ref().map(|_| {
                    feats
                        .par_iter()
                        .zip(&evidence)
                        .map(|(f, ev)| self.loaded.logit(&mlp_input(f, ev)))
                        .collect()
                });
                t.combine(&zt, zm.as_deref())?
            }
            None => feats
                .par_iter()
                .zip(&evidence)
                .map(|(f, ev)| self.loaded.prob(&mlp_input(f, ev)))
                .collect(),
        };
        let mut out = Vec::with_capacity(articles.len());
        let mut k = 0;
        // Attributions per article (tagging is per sentence; linking and content joining need
        // the whole article).
        let mut starts = Vec::with_capacity(articles.len());
        let mut k0 = 0;
        for ss in &spans {
            starts.push(k0);
            k0 += ss.len();
        }
        let atts: Vec<Option<ArticleAttributions>> = articles
            .par_iter()
            .zip(&spans)
            .zip(&starts)
            .map(|((a, ss), &k)| {
                let head = self.attribution.as_ref()?;
                let joined = attribution::tag_article(head, &a.text, ss, &enc[k..k + ss.len()]);
                let per = attribution::article_attributions(
                    &a.text,
                    ss.len(),
                    &joined,
                    attribution::LINK_WINDOW,
                );
                let un = ss
                    .iter()
                    .zip(&per)
                    .map(|(s, at)| attribution::unattributed(at, s, &joined))
                    .collect();
                Some((per, un))
            })
            .collect();
        for ((a, ss), mut att) in articles.iter().zip(&spans).zip(atts) {
            let frames: Vec<f64> = match &self.frames {
                Some(h) => article_vector(feats[k..k + ss.len()].iter().map(Vec::as_slice))
                    .map(|v| h.probs(&v).into_iter().map(round4).collect())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let mut recs = Vec::with_capacity(ss.len());
            for (index, s) in ss.iter().enumerate() {
                let p = round4(probs[k]);
                let raw = &a.text[s.start..s.end];
                let loaded_spans: Vec<LoadedSpan> = spans_of[k]
                    .iter()
                    .map(|t| LoadedSpan {
                        start: s.start + t.start,
                        end: s.start + t.end,
                        text: raw[t.start..t.end].to_string(),
                        score: round4(t.score),
                        text_start: display_offset(raw, t.start, true),
                        text_end: display_offset(raw, t.end, false),
                    })
                    .collect();
                recs.push(SentenceRecord {
                    article: a.id.clone(),
                    source: a.source.clone(),
                    index,
                    start: s.start,
                    end: s.end,
                    text: segment::display_text(&a.text[s.start..s.end]),
                    loaded: p,
                    loaded_label: p >= self.loaded_threshold() as f64,
                    loaded_spans,
                    tokens: enc[k].n_tokens,
                    truncated: enc[k].truncated,
                    attributions: att
                        .as_mut()
                        .map(|(per, _)| std::mem::take(&mut per[index]))
                        .unwrap_or_default(),
                    unattributed: att.as_ref().map(|(_, un)| un[index]),
                });
                k += 1;
            }
            let mut summary = ArticleSummary::from_records(&a.id, &a.source, &recs);
            if self.spans.is_some() {
                summary.add_spans(&recs);
            }
            summary.frames = frames;
            summary.actors = crate::actors::extract(&a.text, ss);
            if let Some(t) = self
                .terms
                .as_ref()
                .filter(|t| t.sources.contains(&a.source))
            {
                for s in ss {
                    terms::count_sentence(&a.text[s.start..s.end], t.bigrams, &mut summary.terms);
                }
            }
            out.push(ScoredArticle {
                summary,
                sentences: recs,
            });
        }
        Ok((out, stats))
    }
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_offsets_follow_whitespace_collapsing() {
        let raw = "He  called\n them   vile  traitors.";
        let shown = segment::display_text(raw);
        let a = raw.find("vile").unwrap();
        let b = raw.find("traitors").unwrap() + "traitors".len();
        let (x, y) = (display_offset(raw, a, true), display_offset(raw, b, false));
        assert_eq!(&shown[x..y], "vile traitors");
        assert_eq!(display_offset(raw, 0, true), 0);
        let q = "A \"rogue\" state";
        let s = q.find("rogue").unwrap();
        assert_eq!(display_offset(q, s, true), s);
    }
}
