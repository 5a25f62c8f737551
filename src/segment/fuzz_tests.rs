//! Property tests of the splitter on hostile text (see `src/fuzz_tests.rs`): it never panics,
//! every sentence is a non-empty, trimmed byte range on char boundaries of the original text,
//! at most [`MAX_SENTENCE_BYTES`] long, in order and not overlapping, every character that is
//! not whitespace lies in a sentence, and splitting is deterministic.

use proptest::prelude::*;

use super::{display_text, split, MAX_SENTENCE_BYTES};
use crate::fuzz_tests::{assert_range, config, hostile_text};

/// Every property of [`split`]'s output for `text`.
pub(crate) fn check_split(text: &str) {
    let spans = split(text);
    let mut prev_end = 0;
    for s in &spans {
        assert_range(text, s.start, s.end, "sentence");
        assert!(s.start < s.end, "empty sentence at {}", s.start);
        assert!(
            s.start >= prev_end,
            "sentences overlap or are out of order: {spans:?}"
        );
        assert!(
            s.len() <= MAX_SENTENCE_BYTES,
            "sentence of {} bytes",
            s.len()
        );
        let t = s.text(text);
        assert_eq!(t, t.trim(), "sentence not trimmed: {t:?}");
        let _ = display_text(t);
        prev_end = s.end;
    }
    for (i, c) in text.char_indices() {
        if !c.is_whitespace() {
            assert!(
                spans.iter().any(|s| s.start <= i && i < s.end),
                "{c:?} at byte {i} is in no sentence of {text:?}: {spans:?}"
            );
        }
    }
    assert_eq!(spans, split(text), "splitting is not deterministic");
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn hostile_text_splits_into_valid_sentences(text in hostile_text(80)) {
        check_split(&text);
    }

    #[test]
    fn arbitrary_unicode_splits_into_valid_sentences(text in "\\PC{0,400}") {
        check_split(&text);
    }

    #[test]
    fn lossy_bytes_split_into_valid_sentences(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_split(&String::from_utf8_lossy(&bytes));
    }
}
