//! Property tests of the record offsets on hostile text (see `src/fuzz_tests.rs`): a span of a
//! sentence that starts and ends on a character that is not whitespace lands, through
//! `display_offset`, on char boundaries of the displayed (whitespace-collapsed) sentence, on
//! exactly its own collapsed text.

use proptest::prelude::*;

use super::display_offset;
use crate::fuzz_tests::{article_text, assert_range, config};
use crate::segment::{display_text, split};

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn span_offsets_map_onto_the_displayed_sentence(
        text in article_text(50),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..20),
    ) {
        for s in split(&text) {
            let raw = &text[s.start..s.end];
            let shown = display_text(raw);
            // Word starts and ends: the positions a tagged span can start and end at.
            let chars: Vec<(usize, char)> = raw.char_indices().collect();
            let solid: Vec<(usize, usize)> = chars
                .iter()
                .filter(|(_, c)| !c.is_whitespace())
                .map(|&(i, c)| (i, i + c.len_utf8()))
                .collect();
            if solid.is_empty() {
                continue;
            }
            for (i, j) in &picks {
                let (mut x, mut y) = (solid[i.index(solid.len())], solid[j.index(solid.len())]);
                if x.0 > y.0 {
                    std::mem::swap(&mut x, &mut y);
                }
                let (a, b) = (x.0, y.1);
                let (da, db) = (display_offset(raw, a, true), display_offset(raw, b, false));
                assert_range(&shown, da, db, "displayed span");
                assert_eq!(&shown[da..db], display_text(&raw[a..b]), "span {a}..{b} of {raw:?}");
            }
        }
    }
}
