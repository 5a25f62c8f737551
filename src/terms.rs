//! Word counts per source and the terms that distinguish two sources.
//!
//! * [`tokens`]: lower-cased word tokens of a sentence (letters and digits, with inner
//!   apostrophes, hyphens and dots kept: `don't`, `so-called`, `u.s`; curly apostrophes become
//!   `'`; a possessive `'s` is dropped; one-character tokens and tokens without a letter, such
//!   as `2016`, are dropped).
//! * [`count_sentence`]: adds a sentence's unigrams, and optionally its bigrams, to a
//!   [`TermCounts`], leaving out [`STOPWORDS`]. A bigram is two adjacent tokens of the same
//!   sentence, neither of them a stopword (`border wall`, not `of the`); bigrams never cross
//!   sentences.
//! * [`distinctive`]: the top terms of each side by the log-odds ratio with an informative
//!   Dirichlet prior (Monroe, Colaresi & Quinn 2008; [`stats::log_odds_dirichlet`] with
//!   [`stats::pooled_prior`], `α₀` = [`stats::DEFAULT_ALPHA0`] capped at the pooled token count).
//!
//! Counts are `BTreeMap`s of integers, so merging them with [`add_counts`] gives the same result
//! in any order, and the output is sorted (by `z` descending, then by term).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats;

/// Term → occurrences.
pub type TermCounts = BTreeMap<String, u64>;

/// Default number of distinctive terms listed per side.
pub const DEFAULT_TOP_TERMS: usize = 10;

/// A small English stopword list: articles, pronouns, auxiliaries and modals, prepositions,
/// conjunctions, common adverbs and determiners, contractions, and the reporting verb `said`
/// (in news text it marks attribution, not framing). Written for slant; sorted, lower case.
pub const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "aren't",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "can't",
    "could",
    "couldn't",
    "did",
    "didn't",
    "do",
    "does",
    "doesn't",
    "doing",
    "don't",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "hadn't",
    "has",
    "hasn't",
    "have",
    "haven't",
    "having",
    "he",
    "he'd",
    "he'll",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "i'd",
    "i'll",
    "i'm",
    "i've",
    "if",
    "in",
    "into",
    "is",
    "isn't",
    "it",
    "it's",
    "its",
    "itself",
    "just",
    "let's",
    "me",
    "more",
    "most",
    "mr",
    "mrs",
    "ms",
    "much",
    "must",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "s",
    "said",
    "same",
    "says",
    "she",
    "she'd",
    "she'll",
    "should",
    "shouldn't",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "that's",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "there's",
    "these",
    "they",
    "they'd",
    "they'll",
    "they're",
    "they've",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "wasn't",
    "we",
    "we'd",
    "we'll",
    "we're",
    "we've",
    "were",
    "weren't",
    "what",
    "what's",
    "when",
    "where",
    "which",
    "while",
    "who",
    "who's",
    "whom",
    "why",
    "will",
    "with",
    "won't",
    "would",
    "wouldn't",
    "you",
    "you'd",
    "you'll",
    "you're",
    "you've",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Whether `w` (lower case) is in [`STOPWORDS`].
pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok()
}

/// Lower-cased word tokens of `text` (see the module docs for the rules).
pub fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() {
            if chars[i].is_alphanumeric() {
                i += 1;
            } else if (chars[i] == '\'' || chars[i] == '-' || chars[i] == '.')
                && i + 1 < chars.len()
                && chars[i + 1].is_alphanumeric()
            {
                i += 2;
            } else {
                break;
            }
        }
        let mut w: String = chars[start..i].iter().collect::<String>().to_lowercase();
        if let Some(stem) = w.strip_suffix("'s") {
            w = stem.to_string();
        }
        if w.chars().count() > 1 && w.chars().any(char::is_alphabetic) {
            out.push(w);
        }
    }
    out
}

/// Add the unigrams (and with `bigrams`, the bigrams) of one sentence to `counts`, leaving
/// stopwords out.
pub fn count_sentence(text: &str, bigrams: bool, counts: &mut TermCounts) {
    let toks = tokens(text);
    for t in &toks {
        if !is_stopword(t) {
            *counts.entry(t.clone()).or_insert(0) += 1;
        }
    }
    if bigrams {
        for w in toks.windows(2) {
            if !is_stopword(&w[0]) && !is_stopword(&w[1]) {
                *counts.entry(format!("{} {}", w[0], w[1])).or_insert(0) += 1;
            }
        }
    }
}

/// `into += from`, term by term.
pub fn add_counts(into: &mut TermCounts, from: TermCounts) {
    if into.is_empty() {
        *into = from;
        return;
    }
    for (w, c) in from {
        *into.entry(w).or_insert(0) += c;
    }
}

/// One distinctive term of a side. `z` and `delta` are oriented towards that side: positive
/// means the term is used more by that side than by the other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistinctiveTerm {
    pub term: String,
    /// z-score of the log-odds ratio (|z| > 1.96 is the usual two-sided 5% line, uncorrected
    /// for the many terms tested).
    pub z: f64,
    /// Log-odds ratio (natural log) with the informative Dirichlet prior.
    pub delta: f64,
    pub count_a: u64,
    pub count_b: u64,
}

/// The most distinctive terms of each side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Distinctive {
    pub a: Vec<DistinctiveTerm>,
    pub b: Vec<DistinctiveTerm>,
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4 + 0.0
}

/// Up to `top` terms per side with a positive z towards that side, by z descending, then term.
pub fn distinctive(a: &TermCounts, b: &TermCounts, top: usize) -> Distinctive {
    let prior = stats::pooled_prior(a, b, stats::DEFAULT_ALPHA0);
    // Positive z: characteristic of a. Sorted by z descending, then word ascending.
    let lo = stats::log_odds_dirichlet(a, b, &prior);
    let term = |r: &stats::LogOdds, sign: f64| DistinctiveTerm {
        term: r.word.clone(),
        z: round4(sign * r.z),
        delta: round4(sign * r.delta),
        count_a: r.count_i,
        count_b: r.count_j,
    };
    let side_a = lo
        .iter()
        .filter(|r| r.z > 0.0)
        .take(top)
        .map(|r| term(r, 1.0))
        .collect();
    let mut for_b: Vec<&stats::LogOdds> = lo.iter().filter(|r| r.z < 0.0).collect();
    for_b.sort_by(|x, y| x.z.total_cmp(&y.z).then_with(|| x.word.cmp(&y.word)));
    let side_b = for_b.into_iter().take(top).map(|r| term(r, -1.0)).collect();
    Distinctive {
        a: side_a,
        b: side_b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_lowercase_and_unique() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(STOPWORDS.iter().all(|w| w.to_lowercase() == *w));
        assert!(is_stopword("the") && is_stopword("don't") && !is_stopword("wall"));
    }

    #[test]
    fn tokens_keep_inner_apostrophes_and_hyphens() {
        assert_eq!(
            tokens(
                "The so-called “border” crisis isn’t Trump's, said Mr. O'Neil in 2016 - again, \
                 in the U.S. - a 3.5% rise."
            ),
            vec![
                "the",
                "so-called",
                "border",
                "crisis",
                "isn't",
                "trump",
                "said",
                "mr",
                "o'neil",
                "in",
                "again",
                "in",
                "the",
                "u.s",
                "rise"
            ]
        );
        assert!(tokens("  -- 42 ... ").is_empty());
    }

    #[test]
    fn counts_leave_out_stopwords_and_bigrams_stay_inside_sentences() {
        let mut c = TermCounts::new();
        count_sentence("The border wall is a border wall.", true, &mut c);
        count_sentence("Wall street.", false, &mut c);
        let want: TermCounts = [
            ("border", 2),
            ("border wall", 2),
            ("wall", 3),
            ("street", 1),
        ]
        .into_iter()
        .map(|(w, n)| (w.to_string(), n))
        .collect();
        assert_eq!(c, want);
        // Merging is order-independent.
        let mut x = TermCounts::new();
        let mut y = TermCounts::new();
        count_sentence("wall street", false, &mut x);
        count_sentence("border wall border", false, &mut y);
        let mut xy = x.clone();
        add_counts(&mut xy, y.clone());
        add_counts(&mut y, x);
        assert_eq!(xy, y);
    }

    fn counts(v: &[(&str, u64)]) -> TermCounts {
        v.iter().map(|(w, c)| (w.to_string(), *c)).collect()
    }

    #[test]
    fn distinctive_terms_hand_checked() {
        // a: illegal 3, aliens 1, wall 1 (n_a = 5); b: undocumented 3, immigrants 2, wall 1
        // (n_b = 6). Pooled n = 11 < 1000, so α₀ = 11 and α_w = the pooled count:
        // illegal 3, aliens 1, wall 2, undocumented 3, immigrants 2.
        // illegal: δ = ln(6/(16−6)) − ln(3/(17−3)) = ln(0.6) − ln(3/14) = 1.0296194;
        //          Var = 1/6 + 1/3 = 0.5, z = 1.0296194/√0.5 = 1.4561017.
        // aliens:  δ = ln(2/14) − ln(1/16) = ln(16/7) = 0.8266786; Var = 1/2 + 1 = 1.5,
        //          z = 0.6749802.
        // wall:    δ = ln(3/13) − ln(3/14) = ln(14/13) = 0.0741080; Var = 2/3, z = 0.0907634.
        // undocumented: δ = ln(3/13) − ln(6/11) = −0.8602013, Var = 1/3 + 1/6, z = −1.2165083.
        // immigrants:   δ = ln(2/14) − ln(4/13) = −0.7672552, Var = 1/2 + 1/4, z = −0.8859499.
        let a = counts(&[("illegal", 3), ("aliens", 1), ("wall", 1)]);
        let b = counts(&[("undocumented", 3), ("immigrants", 2), ("wall", 1)]);
        let d = distinctive(&a, &b, 2);
        let got_a: Vec<(&str, f64, f64, u64, u64)> =
            d.a.iter()
                .map(|t| (t.term.as_str(), t.z, t.delta, t.count_a, t.count_b))
                .collect();
        assert_eq!(
            got_a,
            vec![
                ("illegal", 1.4561, 1.0296, 3, 0),
                ("aliens", 0.675, 0.8267, 1, 0)
            ]
        );
        let got_b: Vec<(&str, f64, f64, u64, u64)> =
            d.b.iter()
                .map(|t| (t.term.as_str(), t.z, t.delta, t.count_a, t.count_b))
                .collect();
        assert_eq!(
            got_b,
            vec![
                ("undocumented", 1.2165, 0.8602, 0, 3),
                ("immigrants", 0.8859, 0.7673, 0, 2)
            ]
        );
        // Swapping the sides swaps the lists.
        let r = distinctive(&b, &a, 2);
        assert_eq!(
            r.a.iter().map(|t| &t.term).collect::<Vec<_>>(),
            ["undocumented", "immigrants"]
        );
        assert_eq!(r.b[0].z, d.a[0].z);
        // wall leans to a but is third: with top 3 it appears, and never on b's side.
        let d3 = distinctive(&a, &b, 3);
        assert_eq!(d3.a[2].term, "wall");
        assert_eq!(d3.a[2].z, 0.0908);
        assert!(d3.b.iter().all(|t| t.term != "wall"));
        assert_eq!(
            distinctive(&TermCounts::new(), &TermCounts::new(), 5),
            Distinctive::default()
        );
    }
}
