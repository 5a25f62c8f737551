//! Property tests of span handling on hostile text (see `src/fuzz_tests.rs`): token offsets
//! (synthetic, and from the real tokenizer when the encoder is fetched) decoded into spans,
//! fragments merged, contents joined across sentences and spans paired into attributions never
//! panic, and every span is a byte range on char boundaries of the text it points into, with
//! its `text` that very slice (whitespace collapsed, as shown).

use std::sync::OnceLock;

use proptest::prelude::*;

use super::{article_attributions, join_sentences, labels, merge_nested, unattributed, TextSpan};
use crate::fuzz_tests::{article_text, assert_range, config};
use crate::heads::tagger::{decode_viterbi, decode_with, DecodeOpts, TagSpan};
use crate::segment::{split, SentenceSpan};

/// The char boundaries of `text`, `text.len()` included.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect()
}

/// Token offsets of a sentence: contiguous runs of its characters (whitespace skipped, as a
/// tokenizer does), between the special tokens' empty offsets.
fn synthetic_offsets(text: &str, cuts: &[prop::sample::Index]) -> Vec<(usize, usize)> {
    let b = boundaries(text);
    let mut at: Vec<usize> = cuts.iter().map(|c| b[c.index(b.len())]).collect();
    at.extend([0, text.len()]);
    at.sort_unstable();
    at.dedup();
    let mut out = vec![(0, 0)];
    for w in at.windows(2) {
        let piece = &text[w[0]..w[1]];
        let lead = piece.len() - piece.trim_start().len();
        let (a, z) = (w[0] + lead, w[0] + lead + piece.trim().len());
        if a < z {
            out.push((a, z));
        }
    }
    out.push((0, 0));
    out
}

/// Per-token probabilities over `n` labels from raw weights.
fn probs(weights: &[Vec<f32>], n_tokens: usize, n: usize) -> Vec<Vec<f32>> {
    (0..n_tokens)
        .map(|t| {
            let w = &weights[t % weights.len().max(1)];
            let row: Vec<f32> = (0..n)
                .map(|k| w.get(k).copied().unwrap_or(0.0) + 1e-3)
                .collect();
            let s: f32 = row.iter().sum();
            row.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

fn check_spans(text: &str, spans: &[TagSpan], what: &str) {
    for s in spans {
        assert_range(text, s.start, s.end, what);
        assert!(s.score.is_finite(), "{what}: score {}", s.score);
    }
}

fn check_text_span(text: &str, s: &TextSpan, what: &str) {
    assert_range(text, s.start, s.end, what);
    let slice = crate::segment::display_text(&text[s.start..s.end]);
    assert_eq!(
        s.text, slice,
        "{what}: text is not its slice (whitespace collapsed)"
    );
}

/// Decode every sentence with `offsets_of`, then join, pair and check the whole article.
pub(crate) fn check_article(
    text: &str,
    weights: &[Vec<f32>],
    viterbi: bool,
    offsets_of: impl Fn(&str, usize) -> Vec<(usize, usize)>,
) -> (Vec<SentenceSpan>, Vec<(usize, TagSpan)>) {
    let labels = labels();
    let sentences = split(text);
    let tagged: Vec<Vec<TagSpan>> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let st = &text[s.start..s.end];
            let offsets = offsets_of(st, i);
            for &(a, b) in &offsets {
                assert_range(st, a, b, "token offset");
            }
            let p = probs(weights, offsets.len(), labels.len());
            let spans = if viterbi {
                decode_viterbi(st, &labels, &p, &offsets, None)
            } else {
                decode_with(st, &labels, &p, &offsets, &DecodeOpts::default())
            };
            check_spans(st, &spans, "decoded span");
            check_spans(st, &merge_nested(st, &spans), "merged span");
            spans
        })
        .collect();
    let joined = join_sentences(text, &sentences, &tagged);
    for (i, s) in &joined {
        assert!(
            *i < sentences.len(),
            "sentence index {i} of {}",
            sentences.len()
        );
        check_spans(text, std::slice::from_ref(s), "joined span");
    }
    let per = article_attributions(text, sentences.len(), &joined, 3);
    assert_eq!(per.len(), sentences.len());
    for (atts, s) in per.iter().zip(&sentences) {
        let _ = unattributed(atts, s, &joined);
        for a in atts {
            check_text_span(text, &a.cue, "cue");
            for (x, what) in [
                (&a.source, "source"),
                (&a.content, "content"),
                (&a.linked_source, "linked source"),
            ] {
                if let Some(x) = x {
                    check_text_span(text, x, what);
                }
            }
        }
    }
    (sentences, joined)
}

/// The fetched encoder's tokenizer (padding off, truncation as the encoder sets it), if any.
fn tokenizer() -> Option<&'static tokenizers::Tokenizer> {
    static T: OnceLock<Option<tokenizers::Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        let dir = crate::encode::fetched_encoder_dir()?;
        let enc = crate::encode::Encoder::load(&dir, Default::default()).ok()?;
        Some(enc.tokenizer().clone())
    })
    .as_ref()
}

fn weights() -> impl Strategy<Value = Vec<Vec<f32>>> {
    prop::collection::vec(prop::collection::vec(0f32..1.0, 7), 1..40)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn spans_from_synthetic_offsets_stay_on_char_boundaries(
        text in article_text(60),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..120),
        weights in weights(),
        viterbi in any::<bool>(),
    ) {
        check_article(&text, &weights, viterbi, |st, _| synthetic_offsets(st, &cuts));
    }

    #[test]
    fn spans_from_the_real_tokenizer_stay_on_char_boundaries(
        text in article_text(60),
        weights in weights(),
        viterbi in any::<bool>(),
    ) {
        let Some(tok) = tokenizer() else { return Ok(()) };
        check_article(&text, &weights, viterbi, |st, _| {
            tok.encode(st, true).expect("tokenizes").get_offsets().to_vec()
        });
    }
}
