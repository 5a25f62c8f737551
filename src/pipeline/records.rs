//! The records a scoring run produces: one [`SentenceRecord`] per sentence (what `--format
//! jsonl` writes per line) and one [`ArticleSummary`] per article, the small mergeable unit that
//! [`crate::aggregate`] folds into per-source profiles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::actors::ActorCounts;
use crate::attribution::{Attribution, AttributionCounts};
use crate::terms::TermCounts;

/// Version of the output schemas (docs/output.md). Every JSON document slant writes carries it
/// as `schema_version`, and so does a scored dataset's manifest; JSONL records follow the same
/// version. A change to a field's name, type or meaning bumps it. Version 2: JSONL lines are
/// tagged with `record`, datasets have article rows and a manifest, loaded spans carry
/// `text_start`/`text_end`.
pub const SCHEMA_VERSION: u32 = 2;
/// One sentence's result: what `--format jsonl` writes per line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentenceRecord {
    /// Article id.
    pub article: String,
    /// The outlet.
    pub source: String,
    /// 0-based position of the sentence in the article.
    pub index: usize,
    /// Byte offset of the sentence's first byte in the article text.
    pub start: usize,
    /// Byte offset one past the sentence's last byte.
    pub end: usize,
    /// The sentence, `text[start..end]`, with internal whitespace runs collapsed to one space.
    pub text: String,
    /// Probability that the sentence uses loaded language (rounded to 4 decimals).
    pub loaded: f64,
    /// `loaded >= threshold` of the head.
    pub loaded_label: bool,
    /// Loaded-language spans found by the span head (byte offsets into the article; empty
    /// without the head). Independent of `loaded_label`: the two heads are separate.
    #[serde(default)]
    pub loaded_spans: Vec<LoadedSpan>,
    /// Tokens fed to the encoder (special tokens included).
    pub tokens: usize,
    /// The sentence was longer than the encoder's limit and was cut.
    pub truncated: bool,
    /// Attributions found in the sentence ([`crate::attribution`]): source, cue and content
    /// spans (byte offsets into the article), cue lemma and stance, kind. Empty without the
    /// attribution head.
    #[serde(default)]
    pub attributions: Vec<Attribution>,
    /// An unattributed assertion: no attribution and no part of the sentence inside a quoted or
    /// reported content. `null` without the attribution head.
    #[serde(default)]
    pub unattributed: Option<bool>,
}

/// A text cell made safe for spreadsheets (CSV formula injection): a cell that begins with `=`,
/// `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so Excel, LibreOffice and
/// Google Sheets show it as text instead of evaluating it (the OWASP rule). Other cells are
/// unchanged.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A sentence record as one CSV row: `loaded_spans` and `attributions` as compact JSON array
/// strings; the text cells (`article`, `source`, `text`) through [`spreadsheet_safe`].
#[derive(Debug, Clone, Serialize)]
pub struct CsvSentenceRecord<'a> {
    pub article: std::borrow::Cow<'a, str>,
    pub source: std::borrow::Cow<'a, str>,
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub text: std::borrow::Cow<'a, str>,
    pub loaded: f64,
    pub loaded_label: bool,
    pub loaded_spans: String,
    pub tokens: usize,
    pub truncated: bool,
    pub attributions: String,
    pub unattributed: Option<bool>,
}

impl<'a> From<&'a SentenceRecord> for CsvSentenceRecord<'a> {
    fn from(r: &'a SentenceRecord) -> Self {
        Self {
            article: spreadsheet_safe(&r.article),
            source: spreadsheet_safe(&r.source),
            index: r.index,
            start: r.start,
            end: r.end,
            text: spreadsheet_safe(&r.text),
            loaded: r.loaded,
            loaded_label: r.loaded_label,
            loaded_spans: serde_json::to_string(&r.loaded_spans).unwrap_or_default(),
            tokens: r.tokens,
            truncated: r.truncated,
            attributions: serde_json::to_string(&r.attributions).unwrap_or_default(),
            unattributed: r.unattributed,
        }
    }
}

/// A span of loaded language in a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedSpan {
    /// Byte offset of the span's first byte in the article text.
    pub start: usize,
    /// Byte offset one past its last byte.
    pub end: usize,
    /// `article[start..end]`.
    pub text: String,
    /// Mean probability of its words' labels (rounded to 4 decimals).
    pub score: f64,
    /// Byte offset of the span's first byte in the sentence record's `text` (whose whitespace
    /// runs are collapsed, so offsets differ from `start - sentence start`).
    pub text_start: usize,
    /// Byte offset one past the span's last byte in the record's `text`.
    pub text_end: usize,
}

impl SentenceRecord {
    /// `text` with each loaded span wrapped in `[[` `]]`.
    pub fn marked_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 4 * self.loaded_spans.len());
        let mut at = 0;
        for (a, b) in self.loaded_spans.iter().map(|s| (s.text_start, s.text_end)) {
            if a < at
                || b > self.text.len()
                || a > b
                || !self.text.is_char_boundary(a)
                || !self.text.is_char_boundary(b)
            {
                continue;
            }
            out.push_str(&self.text[at..a]);
            out.push_str("[[");
            out.push_str(&self.text[a..b]);
            out.push_str("]]");
            at = b;
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// The span terms of the sentence: lower-cased, whitespace collapsed, outer punctuation
    /// trimmed (empty ones dropped).
    pub fn loaded_terms(&self) -> Vec<String> {
        self.loaded_spans
            .iter()
            .map(|s| loaded_term(&s.text))
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// The profile form of a span's text: lower-cased, whitespace runs collapsed, leading and
/// trailing non-alphanumeric characters removed.
pub fn loaded_term(text: &str) -> String {
    crate::segment::display_text(text)
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// How often a loaded term occurs in a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermCount {
    pub term: String,
    pub count: u64,
}

/// Loaded terms listed per source profile.
pub const TOP_LOADED_TERMS: usize = 10;

/// What one article contributes to its source's profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleSummary {
    pub id: String,
    pub source: String,
    pub sentences: u64,
    pub loaded_sentences: u64,
    pub loaded_prob_sum: f64,
    pub truncated: u64,
    /// Word counts of the article's sentences ([`crate::terms`]); only filled for the sources
    /// whose terms are needed (see [`crate::pipeline::Scorer::terms`]), so memory stays bounded.
    /// [`Corpus::push`] moves them into [`SourceSums::terms`].
    #[serde(default, skip_serializing_if = "TermCounts::is_empty")]
    pub terms: TermCounts,
    /// P(frame) of the article for each frame of [`FRAMES`] (rounded to 4 decimals); empty
    /// when no frames head was used or the article has no sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<f64>,
    /// Actor mentions and label phrases ([`crate::actors`]); [`Corpus::push`] moves them into
    /// [`SourceSums::actors`].
    #[serde(default, skip_serializing_if = "ActorCounts::is_empty")]
    pub actors: ActorCounts,
    /// Attribution counts ([`crate::attribution`]); empty without the attribution head.
    #[serde(default, skip_serializing_if = "AttributionCounts::is_empty")]
    pub attribution: AttributionCounts,
    /// Sentences with at least one loaded span; `None` when no span head was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_sentences: Option<u64>,
    /// Loaded terms ([`loaded_term`]) of the article's spans with their counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub loaded_terms: BTreeMap<String, u64>,
}

impl ArticleSummary {
    /// Summarise the sentence records of one article.
    pub fn from_records(id: &str, source: &str, recs: &[SentenceRecord]) -> Self {
        Self {
            id: id.to_string(),
            source: source.to_string(),
            sentences: recs.len() as u64,
            loaded_sentences: recs.iter().filter(|r| r.loaded_label).count() as u64,
            loaded_prob_sum: recs.iter().map(|r| r.loaded).sum(),
            truncated: recs.iter().filter(|r| r.truncated).count() as u64,
            terms: TermCounts::new(),
            frames: Vec::new(),
            actors: ActorCounts::default(),
            attribution: {
                let mut c = AttributionCounts::default();
                for r in recs {
                    if let Some(u) = r.unattributed {
                        c.add_sentence(&r.attributions, u);
                    }
                }
                c
            },
            span_sentences: None,
            loaded_terms: BTreeMap::new(),
        }
    }

    /// Fill the span fields from records scored with a span head.
    pub fn add_spans(&mut self, recs: &[SentenceRecord]) {
        self.span_sentences =
            Some(recs.iter().filter(|r| !r.loaded_spans.is_empty()).count() as u64);
        for r in recs {
            for t in r.loaded_terms() {
                *self.loaded_terms.entry(t).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_a_spreadsheet_would_evaluate_are_quoted() {
        for bad in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(spreadsheet_safe(bad), format!("'{bad}"), "{bad:?}");
        }
        for fine in ["Officials said", "", "'already", "1=1", "a-b", "— dash"] {
            assert_eq!(spreadsheet_safe(fine), fine, "{fine:?}");
        }
        let r = SentenceRecord {
            article: "=cmd|' /C calc'!A0".into(),
            source: "@src".into(),
            text: "-1 is a number".into(),
            ..Default::default()
        };
        let c = CsvSentenceRecord::from(&r);
        assert_eq!(c.article, "'=cmd|' /C calc'!A0");
        assert_eq!(c.source, "'@src");
        assert_eq!(c.text, "'-1 is a number");
    }
}
