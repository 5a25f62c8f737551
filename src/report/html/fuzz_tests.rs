//! Property tests of the report's marked sentences and of the records' JSON on hostile text
//! (see `src/fuzz_tests.rs`): sentence records built as the pipeline builds them (loaded spans
//! from random word ranges, attributions from random tags through the real pairing code) render
//! without panicking, every piece of text escaped (the markup holds no tag but slant's own, and
//! its text is the sentence's, plus the mark labels), and serialise to one JSON line that reads
//! back equal.

use proptest::prelude::*;

use super::text::marked;
use crate::fuzz_tests::{article_text, config};
use crate::pipeline::records::LoadedSpan;
use crate::pipeline::records::SentenceRecord;
use crate::segment::display_text;

/// The byte ranges of the whitespace-separated words of `t`.
fn word_ranges(t: &str) -> Vec<(usize, usize)> {
    t.split_whitespace()
        .map(|w| {
            let a = w.as_ptr() as usize - t.as_ptr() as usize;
            (a, a + w.len())
        })
        .collect()
}

/// The records of an article with random evidence.
fn records(text: &str, weights: &[Vec<f32>], picks: &[(usize, usize)]) -> Vec<SentenceRecord> {
    let (sentences, joined) =
        crate::attribution::fuzz_tests::check_article(text, weights, false, |st, _| {
            // One token per word, between the special tokens' empty offsets.
            [(0, 0)]
                .into_iter()
                .chain(word_ranges(st))
                .chain([(0, 0)])
                .collect()
        });
    let per = crate::attribution::article_attributions(text, sentences.len(), &joined, 3);
    sentences
        .iter()
        .zip(per)
        .enumerate()
        .map(|(index, (s, attributions))| {
            let raw = &text[s.start..s.end];
            let words = word_ranges(raw);
            let loaded_spans = picks
                .iter()
                .filter(|_| !words.is_empty())
                .map(|&(i, j)| {
                    let (x, y) = (words[i % words.len()], words[j % words.len()]);
                    let (a, b) = (x.0.min(y.0), x.1.max(y.1));
                    LoadedSpan {
                        start: s.start + a,
                        end: s.start + b,
                        text: raw[a..b].to_string(),
                        score: 0.5,
                        text_start: crate::pipeline::display_offset(raw, a, true),
                        text_end: crate::pipeline::display_offset(raw, b, false),
                    }
                })
                .collect();
            SentenceRecord {
                article: "a\"<b>".into(),
                source: "s'</script>".into(),
                index,
                start: s.start,
                end: s.end,
                text: display_text(raw),
                loaded_spans,
                attributions,
                ..Default::default()
            }
        })
        .collect()
}

/// The text of markup with slant's own tags removed (the mark labels kept in `<sub>`s are
/// removed whole), entities decoded; panics on any other tag.
fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let close = rest.find('>').expect("a tag is closed");
        let tag = &rest[..=close];
        rest = &rest[close + 1..];
        if tag.starts_with("<sub class=\"tag ") {
            let end = rest.find("</sub>").expect("label closed");
            rest = &rest[end + "</sub>".len()..];
        } else {
            assert!(
                tag == "</span>" || tag.starts_with("<span class=\"m-"),
                "markup holds a tag slant did not write: {tag}"
            );
        }
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn marked_sentences_escape_all_text_and_records_are_one_json_line(
        text in article_text(50),
        weights in prop::collection::vec(prop::collection::vec(0f32..1.0, 7), 1..30),
        picks in prop::collection::vec((0usize..1000, 0usize..1000), 0..4),
    ) {
        for r in records(&text, &weights, &picks) {
            let html = marked(&r).into_string();
            assert_eq!(text_of(&html), r.text, "{html}");
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
            let back: SentenceRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(back, r);
        }
    }
}
