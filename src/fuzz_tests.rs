//! Shared settings and input generators of the property ("fuzz") tests of ingest
//! (`ingest/fuzz_tests.rs`), the splitter (`segment/fuzz_tests.rs`) and span handling
//! (`attribution/fuzz_tests.rs`).
//!
//! `cargo test` runs each property with a fixed seed and a few hundred cases (the seeded CI
//! run). `scripts/fuzz.sh MINUTES` runs them again and again with fresh seeds and many cases
//! until the time is up: `SLANT_FUZZ_SEED=N` picks the seed, `SLANT_FUZZ_CASES=N` the cases per
//! property. Failure persistence is off: an input that broke a property is kept as a named
//! regression test beside the property instead of a `proptest-regressions` file.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The seed of the CI run.
pub(crate) const CI_SEED: u64 = 20_261_207;

/// The proptest configuration of a property: `cases` cases (else `SLANT_FUZZ_CASES`) from
/// the CI seed (else `SLANT_FUZZ_SEED`).
pub(crate) fn config(cases: u32) -> Config {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let seed = env("SLANT_FUZZ_SEED").map_or(CI_SEED, |v| {
        v.parse().expect("SLANT_FUZZ_SEED must be an integer")
    });
    let cases = env("SLANT_FUZZ_CASES").map_or(cases, |v| {
        v.parse().expect("SLANT_FUZZ_CASES must be an integer")
    });
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces of hostile text: news punctuation and abbreviations, every kind of whitespace and
/// line break, combining marks, right-to-left text and controls, emoji sequences, NUL, and
/// arbitrary characters.
fn piece() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "The ",
        "Mr. ",
        "U.S. ",
        "a.m. ",
        "p.m. ",
        "said ",
        "told ",
        "according to ",
        "Trump",
        "\"",
        "“",
        "”",
        "‘",
        "’",
        "«",
        "»",
        "'",
        ".",
        ". ",
        "!",
        "?",
        "?!",
        "...",
        "…",
        ". . .",
        "[...]",
        "(",
        ")",
        "1) ",
        "2. ",
        "a. ",
        "• ",
        "- ",
        "—",
        ":",
        ";",
        ",",
        "\n",
        "\r\n",
        "\r",
        "\n\n",
        "\t",
        " ",
        "  ",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{3000}",
        "\u{200b}",
        "\u{feff}",
        "e\u{301}",
        "\u{301}\u{300}",
        "\u{20dd}",
        "مرحبا",
        "שלום.",
        "\u{202e}",
        "\u{200f}",
        "\u{61c}",
        "👩\u{200d}👩\u{200d}👧",
        "🇺🇸",
        "\u{fe0f}",
        "😀. ",
        "\0",
        "\u{1}",
        "\u{7f}",
        "\u{85}",
        "İ",
        "ß",
        "ﬁ",
        "Å",
        "ǅ",
        "ᾈ",
        "\u{10ffff}",
        "\u{e000}",
        "<script>",
        "&amp;",
        "=1+1",
        ",\"",
        "\"\"",
    ];
    prop_oneof![
        6 => proptest::sample::select(fixed).prop_map(str::to_string),
        2 => "[a-zA-Z]{1,12} ",
        2 => any::<char>().prop_map(String::from),
        1 => "\\PC{0,20}",
        1 => (1usize..4000, proptest::sample::select(vec!["x", "é", "字", "😀", "."]))
            .prop_map(|(n, c)| c.repeat(n)),
    ]
}

/// Hostile text of up to `pieces` pieces.
pub(crate) fn hostile_text(pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..pieces).prop_map(|v| v.concat())
}

/// Hostile text with at least one character that is not whitespace (an acceptable article).
pub(crate) fn article_text(pieces: usize) -> impl Strategy<Value = String> {
    (hostile_text(pieces), "[A-Za-z0-9]").prop_map(|(t, w)| {
        if t.trim().is_empty() {
            format!("{t}{w}")
        } else {
            t
        }
    })
}

/// Check that `start..end` is a valid, non-inverted byte range on char boundaries of `text`.
pub(crate) fn assert_range(text: &str, start: usize, end: usize, what: &str) {
    assert!(
        start <= end && end <= text.len(),
        "{what}: {start}..{end} out of a {}-byte text",
        text.len()
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "{what}: {start}..{end} not on char boundaries of {text:?}"
    );
}
