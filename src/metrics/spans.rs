//! Span scoring: exact-match and overlap precision / recall / F1 per label, with counts, plus
//! token-level P/R/F1.
//!
//! Spans are byte ranges `[start, end)` with a label, within one document; score several
//! documents by adding their [`SpanScores`] up (`+=`), never by averaging ratios.
//!
//! * **Exact**: a predicted span is a true positive when a gold span has the same label and the
//!   same `start` and `end`. Each gold span matches at most one prediction (duplicates count as
//!   false positives).
//! * **Overlap** (as in PARC 3.0 / citron, Pareti 2016 and Newell et al. 2018's "partial"
//!   match): a predicted span is correct when it shares at least one byte with a gold span of
//!   the same label; precision = correct predictions / predictions, recall = gold spans
//!   overlapped by some prediction of the same label / gold spans. (A long prediction covering
//!   two gold spans counts once in precision and twice in recall, as in citron.)
//! * **Token**: the text is cut into tokens (maximal runs of alphanumeric characters, and every
//!   other non-space character alone); a token is labelled X when it overlaps a span of label X.
//!   Counted per label over the document's tokens.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::Serialize;

/// A labelled byte span.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabeledSpan {
    pub label: String,
    pub start: usize,
    pub end: usize,
}

impl LabeledSpan {
    pub fn new(label: &str, start: usize, end: usize) -> Self {
        Self {
            label: label.into(),
            start,
            end,
        }
    }
}

/// P/R/F1 with the counts behind them. For overlap scores `tp` is the number of correct
/// predictions and `tp_gold` the number of gold spans found (they may differ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    pub tp: u64,
    pub tp_gold: u64,
    pub predicted: u64,
    pub gold: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    fn finish(mut self) -> Self {
        self.precision = ratio(self.tp, self.predicted);
        self.recall = ratio(self.tp_gold, self.gold);
        self.f1 = if self.precision + self.recall == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        };
        self
    }
}

impl AddAssign for Prf {
    fn add_assign(&mut self, o: Self) {
        self.tp += o.tp;
        self.tp_gold += o.tp_gold;
        self.predicted += o.predicted;
        self.gold += o.gold;
        *self = self.finish();
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Scores of one label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LabelScores {
    pub exact: Prf,
    pub overlap: Prf,
    pub token: Prf,
}

impl AddAssign for LabelScores {
    fn add_assign(&mut self, o: Self) {
        self.exact += o.exact;
        self.overlap += o.overlap;
        self.token += o.token;
    }
}

/// Scores per label (sorted by label).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SpanScores(pub BTreeMap<String, LabelScores>);

impl AddAssign for SpanScores {
    fn add_assign(&mut self, o: Self) {
        for (k, v) in o.0 {
            *self.0.entry(k).or_default() += v;
        }
    }
}

fn overlaps(a: &LabeledSpan, b: &LabeledSpan) -> bool {
    a.label == b.label && a.start < b.end && b.start < a.end
}

/// Token byte ranges of `text` (see the module doc).
pub fn tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut word: Option<usize> = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            word.get_or_insert(i);
            continue;
        }
        if let Some(s) = word.take() {
            out.push((s, i));
        }
        if !c.is_whitespace() {
            out.push((i, i + c.len_utf8()));
        }
    }
    if let Some(s) = word {
        out.push((s, text.len()));
    }
    out
}

/// Score one document's predicted spans against its gold spans. `text` is the document the
/// offsets refer to (for token scores). Labels seen in either list get an entry.
pub fn score(text: &str, gold: &[LabeledSpan], pred: &[LabeledSpan]) -> SpanScores {
    let mut out = SpanScores::default();
    let labels: std::collections::BTreeSet<&str> =
        gold.iter().chain(pred).map(|s| s.label.as_str()).collect();
    let toks = tokens(text);
    for label in labels {
        let g: Vec<&LabeledSpan> = gold.iter().filter(|s| s.label == label).collect();
        let p: Vec<&LabeledSpan> = pred.iter().filter(|s| s.label == label).collect();
        // Exact: one-to-one.
        let mut used = vec![false; g.len()];
        let mut tp = 0;
        for s in &p {
            if let Some(k) =
                (0..g.len()).find(|&k| !used[k] && g[k].start == s.start && g[k].end == s.end)
            {
                used[k] = true;
                tp += 1;
            }
        }
        let exact = Prf {
            tp,
            tp_gold: tp,
            predicted: p.len() as u64,
            gold: g.len() as u64,
            ..Default::default()
        }
        .finish();
        let overlap = Prf {
            tp: p
                .iter()
                .filter(|s| g.iter().any(|x| overlaps(s, x)))
                .count() as u64,
            tp_gold: g
                .iter()
                .filter(|x| p.iter().any(|s| overlaps(s, x)))
                .count() as u64,
            predicted: p.len() as u64,
            gold: g.len() as u64,
            ..Default::default()
        }
        .finish();
        let inside = |spans: &[&LabeledSpan], (a, b): (usize, usize)| {
            spans.iter().any(|s| s.start < b && a < s.end)
        };
        let (mut ttp, mut tpred, mut tgold) = (0, 0, 0);
        for &t in &toks {
            let (ig, ip) = (inside(&g, t), inside(&p, t));
            ttp += (ig && ip) as u64;
            tpred += ip as u64;
            tgold += ig as u64;
        }
        let token = Prf {
            tp: ttp,
            tp_gold: ttp,
            predicted: tpred,
            gold: tgold,
            ..Default::default()
        }
        .finish();
        out.0.insert(
            label.to_string(),
            LabelScores {
                exact,
                overlap,
                token,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(l: &str, a: usize, b: usize) -> LabeledSpan {
        LabeledSpan::new(l, a, b)
    }

    #[test]
    fn tokens_split_words_and_punctuation() {
        let t = "He said, “no” 3.5";
        let got: Vec<&str> = tokens(t).iter().map(|&(a, b)| &t[a..b]).collect();
        assert_eq!(got, ["He", "said", ",", "“", "no", "”", "3", ".", "5"]);
    }

    #[test]
    fn exact_and_overlap_by_hand() {
        // "Akhund claimed the Taliban did not want it, officials said."
        let text = "Akhund claimed the Taliban did not want it, officials said.";
        let gold = [
            s("SOURCE", 0, 6),
            s("CUE", 7, 14),
            s("CONTENT", 15, 42),
            s("SOURCE", 44, 53),
            s("CUE", 54, 58),
        ];
        let pred = [
            s("SOURCE", 0, 6),    // exact
            s("CUE", 7, 14),      // exact
            s("CUE", 7, 14),      // duplicate: FP for exact, still overlaps
            s("CONTENT", 19, 42), // overlap only
            s("SOURCE", 54, 58),  // wrong place (overlaps CUE, other label)
        ];
        let sc = score(text, &gold, &pred);
        let src = sc.0["SOURCE"];
        assert_eq!(
            (src.exact.tp, src.exact.predicted, src.exact.gold),
            (1, 2, 2)
        );
        assert!((src.exact.f1 - 0.5).abs() < 1e-12);
        let cue = sc.0["CUE"];
        assert_eq!(
            (cue.exact.tp, cue.exact.predicted, cue.exact.gold),
            (1, 2, 2)
        );
        assert_eq!((cue.overlap.tp, cue.overlap.tp_gold), (2, 1));
        assert!((cue.overlap.precision - 1.0).abs() < 1e-12);
        assert!((cue.overlap.recall - 0.5).abs() < 1e-12);
        let con = sc.0["CONTENT"];
        assert_eq!(con.exact.tp, 0);
        assert_eq!(con.exact.f1, 0.0);
        assert!((con.overlap.f1 - 1.0).abs() < 1e-12);
        // Content tokens: gold "the Taliban did not want it" = 6; pred misses "the".
        assert_eq!(
            (con.token.tp, con.token.predicted, con.token.gold),
            (5, 5, 6)
        );
    }

    #[test]
    fn long_prediction_covering_two_gold_spans() {
        let text = "aaaa bbbb cccc";
        let sc = score(text, &[s("X", 0, 4), s("X", 10, 14)], &[s("X", 0, 14)]);
        let x = sc.0["X"];
        assert_eq!((x.overlap.tp, x.overlap.tp_gold), (1, 2));
        assert!((x.overlap.precision - 1.0).abs() < 1e-12);
        assert!((x.overlap.recall - 1.0).abs() < 1e-12);
        assert_eq!(x.exact.tp, 0);
    }

    #[test]
    fn documents_add_by_counts() {
        let mut total = score("ab cd", &[s("X", 0, 2)], &[s("X", 0, 2)]);
        total += score("ab cd", &[s("X", 0, 2), s("X", 3, 5)], &[]);
        let x = total.0["X"];
        assert_eq!((x.exact.tp, x.exact.predicted, x.exact.gold), (1, 1, 3));
        assert!((x.exact.recall - 1.0 / 3.0).abs() < 1e-12);
        assert!((x.exact.precision - 1.0).abs() < 1e-12);
        // Empty inputs: no labels, nothing to report.
        assert!(score("", &[], &[]).0.is_empty());
    }
}
