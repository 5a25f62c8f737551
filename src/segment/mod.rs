//! Sentence segmentation for English news text, keeping byte spans into the original text.
//!
//! [`split`] works in three stages:
//!
//! 1. **Lines → chunks** (`lines.rs`): blank lines and single line breaks that end a line
//!    (headline, paragraph, list item) are hard boundaries; a line break inside a sentence
//!    (hard-wrapped paragraph: the next line starts lowercase, the line ends with `,` or `the`,
//!    …) is plain whitespace. List markers (`- `, `1. `, `(a) `) stay in the first sentence of
//!    their item but are hidden from the punctuation splitter.
//! 2. **Chunks → sentences** (`rules.rs`): [`sentencex`] (`get_sentence_boundaries("en", ..)`)
//!    on each chunk, with quotes masked so that multi-sentence quotes split, plus news-specific
//!    fixes for its weak spots (titles, `No. 1`, `9 a.m. Tuesday`, `U.S. Officials said`,
//!    Unicode ellipses, quote attributions, parenthesised sentences).
//!
//! 3. **Long sentences → pieces**: a "sentence" longer than [`MAX_SENTENCE_BYTES`] (a run-on
//!    text with no sentence punctuation, a table flattened into one line) is cut into
//!    consecutive pieces of at most that many bytes, at whitespace (at a char boundary inside a
//!    longer run without whitespace), so that each piece fits the encoder's window and is
//!    scored, rather than one truncated sentence standing for all of it. Each piece is a span
//!    like any other sentence.
//!
//! Every span is trimmed, non-empty, at most [`MAX_SENTENCE_BYTES`] long, on char boundaries,
//! sorted and non-overlapping, and the spans of a text cover each of its non-whitespace
//! characters exactly once (list bullets and stray decoration such as a lone `*` included).
//!
//! Cost: linear in the text length, and memory beyond the text is the spans returned (plus the
//! chunks, one per paragraph or line). A very long chunk (over 16 KiB without a line break that
//! ends a sentence) is handed to the punctuation splitter in bounded windows that start at
//! sentence boundaries, so the work and memory of each call stay bounded; a chunk up to 16 KiB
//! (any ordinary paragraph) is split exactly as a whole.
//!
//! Conventions (what the tests and `eval/splitter/cases.jsonl` expect):
//!
//! * a sentence ending in `."` / `.”` / `?”` / `.)` ends after the closing quote or bracket;
//!   `"Stop," he said.` and `“Why?” he asked.` are one sentence;
//! * a quotation holding several sentences is split inside the quotes
//!   (`“We urge all countries to talk.` | `We will protect women,” he added.`);
//! * after a sentence-final abbreviation (`U.S.`, `Inc.`, `a.m.`) a capitalised word starts a
//!   new sentence only if it is a typical sentence opener (`The`, `He`, `Officials`, …), so
//!   `the U.S. Army` stays whole while `from the U.S. Officials said` splits.
//!
//! Known limits: a sentence-final abbreviation or initial followed by a proper noun or other
//! non-opener (`...in the U.S. Democrats criticized it.`, `...Apple Inc. Tim Cook praised it.`,
//! `...vitamin D. Doctors were puzzled.`) is not split; a Title Case line inside a hard-wrapped
//! block is only recognised as a headline when it is the block's first line.

pub mod eval;
mod lines;
mod rules;

/// A sentence as a byte range into the original text. `&text[start..end]` is the sentence,
/// trimmed of surrounding whitespace.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SentenceSpan {
    /// Byte offset of the first character of the sentence.
    pub start: usize,
    /// Byte offset one past the last character of the sentence.
    pub end: usize,
}

impl SentenceSpan {
    /// The sentence text: `&text[self.start..self.end]`.
    ///
    /// # Panics
    /// If the span is out of range or not on char boundaries of `text` (i.e. `text` is not the
    /// string the span was computed from).
    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True for an empty span ([`split`] never returns one).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The longest span [`split`] returns, in bytes; longer sentences are cut into pieces.
///
/// The encoder (all-MiniLM-L6-v2) reads at most 256 tokens, 254 of them text. Run-on English
/// news text takes about 4.8-5.6 bytes per WordPiece token: measured by the test
/// `pieces_fit_the_encoder_window` on the seed articles (5.6; at most 192 tokens in a 1,000-byte
/// piece) and on the splitter's evaluation cases, dense with abbreviations, numbers and names
/// (4.8; at most 225 tokens). So a 1,000-byte piece fits the window with room to spare, where
/// 1,200 bytes would not for dense text. Real sentences are far shorter (a 60-word sentence is
/// about 350 bytes), so only run-on text is cut.
pub const MAX_SENTENCE_BYTES: usize = 1_000;

/// Split `text` into sentences. Never returns empty spans; spans are sorted, non-overlapping,
/// on char boundaries, trimmed, and at most [`MAX_SENTENCE_BYTES`] long (longer sentences come
/// out as consecutive pieces, see the [module documentation](self)).
pub fn split(text: &str) -> Vec<SentenceSpan> {
    let mut out = Vec::new();
    for chunk in lines::chunks(text) {
        let body = &text[chunk.body..chunk.end];
        let mut prev = 0;
        let mut first = true;
        for cut in rules::find_cuts_bounded(body)
            .into_iter()
            .chain([body.len()])
        {
            if let Some(mut span) = trimmed_span(text, chunk.body + prev, chunk.body + cut) {
                if first {
                    // The list marker (if any) belongs to the item's first sentence.
                    span.start = chunk.start;
                }
                first = false;
                push_pieces(text, span, &mut out);
            }
            prev = cut;
        }
        if first {
            // A chunk that is only a list marker cannot happen (markers need content), but
            // keep the coverage guarantee regardless.
            if let Some(span) = trimmed_span(text, chunk.start, chunk.end) {
                push_pieces(text, span, &mut out);
            }
        }
    }
    out
}

/// Push `span` (trimmed, non-empty) as one sentence, or, when it is longer than
/// [`MAX_SENTENCE_BYTES`], as consecutive trimmed pieces of at most that length (see
/// [`next_piece`]). The pieces cover every non-whitespace byte of `span`.
fn push_pieces(text: &str, span: SentenceSpan, out: &mut Vec<SentenceSpan>) {
    let mut start = span.start;
    while span.end - start > MAX_SENTENCE_BYTES {
        let (end, next) = next_piece(text, start, span.end);
        out.push(SentenceSpan { start, end });
        start = next;
    }
    out.push(SentenceSpan {
        start,
        end: span.end,
    });
}

/// The first piece of the sentence `text[start..end]`, which is longer than
/// [`MAX_SENTENCE_BYTES`] and starts and ends with non-whitespace: `(piece_end, next_start)`.
/// The piece ends at the last whitespace within the limit (trimmed; a whitespace character
/// starting right at the limit counts), or, when there is none, at the last char boundary within
/// the limit; `next_start` is the first non-whitespace byte after it.
pub(crate) fn next_piece(text: &str, start: usize, end: usize) -> (usize, usize) {
    let hard = rules::floor_char_boundary(text, start + MAX_SENTENCE_BYTES);
    let search_end = match text[hard..].chars().next() {
        Some(c) if c.is_whitespace() => hard + c.len_utf8(),
        _ => hard,
    };
    match text[start..search_end].rfind(char::is_whitespace) {
        // `start` is not whitespace, so `i > 0` and the piece is not empty.
        Some(i) => {
            let ws = start + i;
            let rest = &text[ws..end];
            let next = ws + (rest.len() - rest.trim_start().len());
            (start + text[start..ws].trim_end().len(), next)
        }
        // No whitespace up to and at the limit: cut inside the run.
        None => (hard, hard),
    }
}

/// The span of `text[start..end]` with surrounding whitespace removed, or `None` if empty.
fn trimmed_span(text: &str, start: usize, end: usize) -> Option<SentenceSpan> {
    let slice = &text[start..end];
    let trimmed = slice.trim_start();
    let start = start + (slice.len() - trimmed.len());
    let end = start + trimmed.trim_end().len();
    (end > start).then_some(SentenceSpan { start, end })
}

/// The sentence text with internal newlines/runs of whitespace collapsed to single spaces (for
/// display/`slant split`). Leading and trailing whitespace is removed.
pub fn display_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Sentences of `text` as strings.
    fn sents(text: &str) -> Vec<&str> {
        split(text).iter().map(|s| s.text(text)).collect()
    }

    /// Check every invariant promised by [`split`] and return the sentence texts.
    fn check_invariants(text: &str) -> Vec<&str> {
        let spans = split(text);
        let mut covered = vec![false; text.len()];
        let mut prev_end = 0;
        for s in &spans {
            assert!(s.start < s.end, "empty span {s:?}");
            assert!(s.start >= prev_end, "unsorted or overlapping {s:?}");
            assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
            let t = s.text(text);
            assert_eq!(t, t.trim(), "untrimmed span {t:?}");
            covered[s.start..s.end].iter_mut().for_each(|c| *c = true);
            prev_end = s.end;
        }
        // Every non-whitespace char is inside exactly one span (spans don't overlap, so
        // "inside some span" is enough), and the gaps are whitespace only.
        for (i, c) in text.char_indices() {
            if !c.is_whitespace() {
                assert!(covered[i], "char {c:?} at {i} not covered in {text:?}");
            }
        }
        // Gaps + spans rebuild the original text.
        let mut rebuilt = String::new();
        let mut at = 0;
        for s in &spans {
            let gap = &text[at..s.start];
            assert!(gap.trim().is_empty(), "non-whitespace gap {gap:?}");
            rebuilt.push_str(gap);
            rebuilt.push_str(s.text(text));
            at = s.end;
        }
        rebuilt.push_str(&text[at..]);
        assert_eq!(rebuilt, text);
        spans.iter().map(|s| s.text(text)).collect()
    }

    #[test]
    fn empty_and_whitespace() {
        assert!(split("").is_empty());
        assert!(split(" \n\t\n  ").is_empty());
        assert_eq!(sents("  Hello.  "), ["Hello."]);
        assert_eq!(split("  Hello.  "), [SentenceSpan { start: 2, end: 8 }]);
    }

    #[test]
    fn simple_sentences() {
        assert_eq!(
            sents("The vote failed. Critics cheered! Was it fair? Nobody knows."),
            [
                "The vote failed.",
                "Critics cheered!",
                "Was it fair?",
                "Nobody knows."
            ]
        );
    }

    #[test]
    fn abbreviations_inside_sentences() {
        let t = "Mr. Smith and Mrs. Jones met Dr. Brown at 10 a.m. on Jan. 5. They talked.";
        assert_eq!(
            sents(t),
            [
                "Mr. Smith and Mrs. Jones met Dr. Brown at 10 a.m. on Jan. 5.",
                "They talked."
            ]
        );
        let t = "Gen. Mark Milley, Sen. Warren, Rep. Jim Jordan and Gov. Gavin Newsom spoke. \
                 Sept. 11 was recalled.";
        assert_eq!(sents(t).len(), 2);
        let t = "He lives near St. James Park. Acme Inc. said it would sue. Globex Corp. and \
                 Initech Ltd. agreed.";
        assert_eq!(
            sents(t),
            [
                "He lives near St. James Park.",
                "Acme Inc. said it would sue.",
                "Globex Corp. and Initech Ltd. agreed."
            ]
        );
        let t = "It was No. 1 in the charts. Smith vs. Jones was decided, e.g. by a jury, i.e. \
                 twelve people.";
        assert_eq!(sents(t).len(), 2);
        assert_eq!(
            sents("The U.N. Security Council met. The U.K. abstained."),
            ["The U.N. Security Council met.", "The U.K. abstained."]
        );
    }

    #[test]
    fn titles_never_end_sentences() {
        assert_eq!(
            sents("He thanked Lt. Col. Alexander Vindman. Capt. Kirk agreed."),
            [
                "He thanked Lt. Col. Alexander Vindman.",
                "Capt. Kirk agreed."
            ]
        );
        assert_eq!(
            sents("The Rev. Al Sharpton spoke."),
            ["The Rev. Al Sharpton spoke."]
        );
    }

    /// The chosen heuristic for a sentence-final abbreviation: split only when the next word
    /// is a sentence starter (function word, pronoun, or a plural role noun such as
    /// `Officials`); any other capitalised word continues the sentence.
    #[test]
    fn us_at_sentence_end() {
        assert_eq!(
            sents("The aid came from the U.S. Officials said it would continue."),
            [
                "The aid came from the U.S.",
                "Officials said it would continue."
            ]
        );
        assert_eq!(
            sents("The deal was signed in the U.S. The president was pleased."),
            [
                "The deal was signed in the U.S.",
                "The president was pleased."
            ]
        );
        assert_eq!(
            sents("He left the U.S. He never returned."),
            ["He left the U.S.", "He never returned."]
        );
        // Institution names after U.S. keep the sentence going.
        assert_eq!(
            sents("The U.S. Army said the U.S. Secretary of State would visit."),
            ["The U.S. Army said the U.S. Secretary of State would visit."]
        );
        // Lowercase after: never a boundary.
        assert_eq!(
            sents("U.S. officials said. U.S. officials denied it."),
            ["U.S. officials said.", "U.S. officials denied it."]
        );
        assert_eq!(
            sents("Shares of Apple Inc. rose. It was Apple Inc. The end."),
            [
                "Shares of Apple Inc. rose.",
                "It was Apple Inc.",
                "The end."
            ]
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            sents("The meeting ended at 5 p.m. The next one starts at 9 a.m. Tuesday."),
            [
                "The meeting ended at 5 p.m.",
                "The next one starts at 9 a.m. Tuesday."
            ]
        );
        assert_eq!(
            sents("Polls close at 8 p.m. EST on Monday. Results follow."),
            ["Polls close at 8 p.m. EST on Monday.", "Results follow."]
        );
        assert_eq!(
            sents("They left at 4 p.m. Officials said nothing."),
            ["They left at 4 p.m.", "Officials said nothing."]
        );
    }

    #[test]
    fn initials() {
        assert_eq!(
            sents("John F. Kennedy was shot in 1963. George W. Bush later became president."),
            [
                "John F. Kennedy was shot in 1963.",
                "George W. Bush later became president."
            ]
        );
        assert_eq!(
            sents("The book by A. A. Milne sold well. Its sequel sold too."),
            ["The book by A. A. Milne sold well.", "Its sequel sold too."]
        );
        // A single capital letter that is not an initial ends a sentence before a starter.
        assert_eq!(
            sents("The vaccine protects against hepatitis B. The campaign starts today."),
            [
                "The vaccine protects against hepatitis B.",
                "The campaign starts today."
            ]
        );
        assert_eq!(
            sents("A fellow in the Edward S. Mason program spoke. J.K. Rowling wrote."),
            [
                "A fellow in the Edward S. Mason program spoke.",
                "J.K. Rowling wrote."
            ]
        );
    }

    #[test]
    fn numbers_and_money() {
        assert_eq!(
            sents(
                "The U.S. spent $780 million, or 3.5 percent, on aid. Revenue was $1.2bn. \
                 Shares fell 2.5%. The index rose 0.7 points."
            ),
            [
                "The U.S. spent $780 million, or 3.5 percent, on aid.",
                "Revenue was $1.2bn.",
                "Shares fell 2.5%.",
                "The index rose 0.7 points."
            ]
        );
        assert_eq!(
            sents("He won in 2016. Biden won in 2020."),
            ["He won in 2016.", "Biden won in 2020."]
        );
    }

    #[test]
    fn quotes() {
        assert_eq!(
            sents("\"Stop,\" he said. \"We are done.\""),
            ["\"Stop,\" he said.", "\"We are done.\""]
        );
        assert_eq!(
            sents("He called it “illegal.” The ministers disagreed."),
            ["He called it “illegal.”", "The ministers disagreed."]
        );
        assert_eq!(
            sents("He called it \"illegal.\" The ministers disagreed."),
            ["He called it \"illegal.\"", "The ministers disagreed."]
        );
        assert_eq!(
            sents("“Why?” he asked. “Because,” she said."),
            ["“Why?” he asked.", "“Because,” she said."]
        );
        assert_eq!(
            sents("‘We will fight. We will win,’ he said. The crowd cheered."),
            [
                "‘We will fight.",
                "We will win,’ he said.",
                "The crowd cheered."
            ]
        );
        assert_eq!(
            sents("He shouted “Go!” and the crowd ran."),
            ["He shouted “Go!” and the crowd ran."]
        );
    }

    #[test]
    fn question_exclamation_ellipsis() {
        assert_eq!(
            sents("Why? Because the U.S. said so! Really?! Yes."),
            ["Why?", "Because the U.S. said so!", "Really?!", "Yes."]
        );
        assert_eq!(
            sents("He paused... and then left. It was late... The end."),
            ["He paused... and then left.", "It was late...", "The end."]
        );
        assert_eq!(
            sents("It was late… The end. Well… I don’t know."),
            ["It was late…", "The end.", "Well… I don’t know."]
        );
        assert_eq!(
            sents("He said: “I don’t know…” Then silence."),
            ["He said: “I don’t know…”", "Then silence."]
        );
    }

    #[test]
    fn parentheses_and_dashes() {
        assert_eq!(
            sents("It failed. (The vote was 13-2.) Officials left."),
            ["It failed.", "(The vote was 13-2.)", "Officials left."]
        );
        assert_eq!(
            sents("Sen. Elizabeth Warren (D-Mass.) said so. Rep. Jim Jordan (R-Ohio) disagreed."),
            [
                "Sen. Elizabeth Warren (D-Mass.) said so.",
                "Rep. Jim Jordan (R-Ohio) disagreed."
            ]
        );
        assert_eq!(
            sents("Taliban troops – backed by allies – seized Kabul. The U.S. — caught off guard — withdrew."),
            [
                "Taliban troops – backed by allies – seized Kabul.",
                "The U.S. — caught off guard — withdrew."
            ]
        );
    }

    #[test]
    fn headlines_and_lines() {
        let t =
            "Taliban Celebrates Running 39 Diplomatic Missions\nThe Taliban has announced it.\n\
                 Leave a Reply\n\nYour email address will not be published.";
        assert_eq!(
            sents(t),
            [
                "Taliban Celebrates Running 39 Diplomatic Missions",
                "The Taliban has announced it.",
                "Leave a Reply",
                "Your email address will not be published."
            ]
        );
    }

    #[test]
    fn hard_wrapped_paragraph() {
        let t = "This is a hard-wrapped paragraph that\ncontinues on the next line. And another \
                 sentence\nthat wraps too.";
        assert_eq!(
            sents(t),
            [
                "This is a hard-wrapped paragraph that\ncontinues on the next line.",
                "And another sentence\nthat wraps too."
            ]
        );
        assert_eq!(
            display_text(sents(t)[0]),
            "This is a hard-wrapped paragraph that continues on the next line."
        );
    }

    #[test]
    fn lists() {
        let t = "Key points:\n- The U.S. will send aid\n- Prices rose 3.5 percent\n1. First item\n\
                 2) Second item. With two sentences.\n• Bullet three";
        assert_eq!(
            check_invariants(t),
            [
                "Key points:",
                "- The U.S. will send aid",
                "- Prices rose 3.5 percent",
                "1. First item",
                "2) Second item.",
                "With two sentences.",
                "• Bullet three"
            ]
        );
        assert_eq!(
            sents("The results: 1. growth; 2. jobs. The end."),
            ["The results: 1. growth; 2. jobs.", "The end."]
        );
    }

    #[test]
    fn unicode_spans_on_char_boundaries() {
        let t = "Le président Macron a parlé à São Paulo. Erdoğan said “no.” Zürich agreed… \
                 Ça va? 東京 reacted.";
        let got = check_invariants(t);
        assert_eq!(
            got,
            [
                "Le président Macron a parlé à São Paulo.",
                "Erdoğan said “no.”",
                "Zürich agreed…",
                "Ça va?",
                "東京 reacted."
            ]
        );
        // Non-breaking spaces are whitespace too.
        assert_eq!(
            check_invariants("It is “illegal.”\u{a0} \n\nNext\u{a0}one."),
            ["It is “illegal.”", "Next\u{a0}one."]
        );
    }

    #[test]
    fn display_text_collapses_whitespace() {
        assert_eq!(display_text("  a\n b\t\tc \u{a0}d  "), "a b c d");
        assert_eq!(display_text(""), "");
    }

    /// Property-style: for tricky strings, spans plus gaps give back the original.
    #[test]
    fn round_trip_tricky_strings() {
        let cases = [
            "",
            "x",
            "...",
            "“”",
            "\n\n.\n\n",
            "- \n* \n•",
            "1.\n2)\n(3)",
            "U.S. U.K. U.N. e.g. i.e. a.m. p.m.",
            "He said.The next sentence.No space here!Really?Yes.",
            "“Unclosed quote. Then more. And more",
            "Mixed\r\nline\r\nendings.\r\n\r\nDone.",
            "Tabs\tand\u{a0}nbsp\u{2003}em space. Then… “quotes’ and ‘singles’.”",
            "Emoji 🎉 party. 🎉 Another! Ünïcödé—dashes–everywhere… ¿Qué? ¡Sí!",
            "(Reporting by Jane Doe; Editing by John Smith.)\n*\n***",
            "A. B. C. D. E.",
            "Mr.\nSmith went to\nWashington, D.C. He stayed.",
            "   leading and trailing   ",
        ];
        for t in cases {
            check_invariants(t);
        }
    }

    /// Fuzz-style: random concatenations of tricky tokens never break the invariants.
    #[test]
    fn random_token_soup_keeps_invariants() {
        const TOKENS: &[&str] = &[
            "The",
            "U.S.",
            "Mr.",
            "said",
            ".",
            "?",
            "!",
            "…",
            "...",
            "“",
            "”",
            "\"",
            "'",
            "’",
            "‘",
            "(",
            ")",
            "[",
            "]",
            " ",
            " ",
            " ",
            "\n",
            "\n\n",
            "\r\n",
            "- ",
            "1. ",
            "(a) ",
            "• ",
            "a.m.",
            "No.",
            "3.5",
            "$1.2bn",
            "é",
            "Zürich",
            "東京",
            "🎉",
            "\u{a0}",
            "—",
            "–",
            "Inc.",
            "J.",
            "iPhone",
            "the",
            "officials",
            ",",
            ";",
            ":",
            "St.",
            "e.g.",
            "Officials",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            // xorshift64*: deterministic, no dependency.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..2000 {
            let len = (next() % 40) as usize;
            let mut text = String::new();
            for _ in 0..len {
                let tok = TOKENS[(next() % TOKENS.len() as u64) as usize];
                text.push_str(tok);
                if next() % 3 == 0 {
                    text.push(' ');
                }
            }
            check_invariants(&text);
        }
    }

    const SEEDS: [&str; 5] = [
        include_str!("../../seeds/000_0ac7ef0ff899d3ba.txt"),
        include_str!("../../seeds/001_a97b6867efbebe7e.txt"),
        include_str!("../../seeds/002_7f085a4d41f1373a.txt"),
        include_str!("../../seeds/003_4f504e27a0b360eb.txt"),
        include_str!("../../seeds/004_2958265e761597a1.txt"),
    ];

    #[test]
    fn seeds_invariants() {
        for seed in SEEDS {
            let got = check_invariants(seed);
            assert!(!got.is_empty());
        }
    }

    #[test]
    fn seed_000_sentences() {
        let got = check_invariants(SEEDS[0]);
        assert!(got.contains(
            &"The Taliban called Wednesday for all Muslim nations to officially recognise the \
              terrorist organisation as a legitimate government following their military coup in \
              the wake of the vacuum created by the hasty U.S. withdrawal."
        ));
        assert!(got.contains(
            &"The United States has however sent the Taliban-controlled region more than $780 \
              million in financial aid and\u{a0}3.3 million coronavirus vaccinations, since the \
              U.S.’ military withdrawal in August 2021."
        ));
        assert!(got.contains(
            &"Taliban Prime Minister Mohammad Hassan Akhund said the time has come for \
              “Muslim\u{a0}countries to take the lead” and recognise Afghanistan “officially.”"
        ));
        assert!(got.contains(&"Some 80 percent of Afghanistan’s public spending – for services such as schools and public hospitals – came from overseas aid, and other nations are reluctant to send financial aid incase it is used to fund the Taliban’s atrocities in the region."));
        assert_eq!(got.len(), 12);
    }

    #[test]
    fn seed_001_sentences() {
        let got = check_invariants(SEEDS[1]);
        assert_eq!(
            got[0],
            "Afghanistan’s Resistance Movement Urges International Community Not to Recognize \
             Taliban Regime"
        );
        assert!(got.contains(&"It’s led by Mullah Mohammad Hassan Akhund, who is on a UN blacklist, and includes Sirajuddin Haqqani, an interior minister who is wanted by the FBI."));
        assert!(got.contains(
            &"The U.S. has also expressed concerns that the announced cabinet includes figures \
              linked to attacks on American forces."
        ));
        assert!(got.contains(&"Be the first to comment"));
        assert!(got.contains(&"Leave a Reply"));
        assert_eq!(got.last(), Some(&"*"));
    }

    #[test]
    fn seed_002_sentences() {
        let got = check_invariants(SEEDS[2]);
        assert!(got.contains(&"According to Nishank Motwani, a fellow in the Edward S. Mason program at Harvard Kennedy School, the Taliban had three goals in mind to expand their reach into far-flung countries."));
        // The multi-sentence quote is split into its sentences.
        assert!(got.contains(
            &"\"First, to give the impression that more nations are interested in cooperating \
              with their regime."
        ));
        assert!(got.contains(&"Third, the need for some sort of financial support.\""));
        assert!(got.contains(&"Seek technical, or developmental assistance."));
        assert!(
            got.contains(&"Afghan Taliban signs deal with Iran to import 350,000 tonnes of oil")
        );
        assert_eq!(
            got.last(),
            Some(&"Afghan artists find no refuge in Pakistan, saying they are \"harassed here too.\"")
        );
    }

    #[test]
    fn seed_003_sentences() {
        let got = check_invariants(SEEDS[3]);
        assert_eq!(got[0], "5 countries to recognize the Taliban");
        assert!(got.contains(&"“We urge all countries of the world to sit with us on any issue."));
        assert!(got.contains(&"We will always be vigilant in protecting the rights of women and minorities and the freedom of speech of Afghan citizens,” he added."));
        assert!(got.contains(&"“We welcome their wishes and choices,” he also said."));
        assert!(got.contains(&"The Russian government says it wants to establish ties with the Taliban, but “will not recognize them as the legitimate ruler of Afghanistan right now”."));
        assert_eq!(
            got.last(),
            Some(&"Meanwhile, Turkish President Recep Tayyip Erdoğan said Turkey will work together with Pakistan to maintain stability in Afghanistan.")
        );
    }

    #[test]
    fn seed_004_sentences() {
        let got = check_invariants(SEEDS[4]);
        assert_eq!(
            got[0],
            "Taliban Celebrates Running 39 Diplomatic Missions Globally"
        );
        assert!(got.contains(&"The situation underscores the failure of U.S. President Joe Biden’s administration to isolate the Taliban since their return to power following the chaotic U.S. withdrawal from Afghanistan in August 2021."));
        assert!(got.contains(&"Taliban “foreign minister” Amir Khan Muttaqi revealed that these missions, which include embassies and consulates, are “fully operating” under Taliban leadership."));
        assert_eq!(got.len(), 16);
    }

    // -----------------------------------------------------------------------------------------
    // Long sentences: pieces and bounded windows.

    /// [`check_invariants`] plus the length limit; returns the spans.
    fn check_pieces(text: &str) -> Vec<SentenceSpan> {
        check_invariants(text);
        let spans = split(text);
        for s in &spans {
            assert!(s.len() <= MAX_SENTENCE_BYTES, "span of {} bytes", s.len());
        }
        spans
    }

    /// Deterministic pseudo-random words (xorshift64*), joined by `sep`, about `bytes` long.
    fn words(bytes: usize, sep: &str, seed: u64) -> String {
        let mut state = seed;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut out = String::with_capacity(bytes + 16);
        while out.len() < bytes {
            let len = 2 + (next() % 8) as usize;
            for _ in 0..len {
                out.push((b'a' + (next() % 26) as u8) as char);
            }
            out.push_str(sep);
        }
        out
    }

    #[test]
    fn run_on_text_is_cut_into_pieces_at_whitespace() {
        let text = words(50_000, " ", 7);
        let spans = check_pieces(&text);
        // The chunk is longer than a window: the windows' extra cuts fall between pieces, so
        // the result is the pieces of the whole text as one sentence.
        assert!(text.len() > 2 * rules::BLOCK_BYTES);
        let mut whole = Vec::new();
        push_pieces(
            &text,
            trimmed_span(&text, 0, text.len()).unwrap(),
            &mut whole,
        );
        assert_eq!(spans, whole);
        assert!(spans.len() >= 50, "{} pieces", spans.len());
        // Every piece but the last ends at whitespace and is nearly full: the next word would
        // not have fitted.
        for w in spans.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert!(text[a.end..].starts_with(' '));
            let next_word = text[b.start..].split(' ').next().unwrap();
            assert!(
                a.len() + 1 + next_word.len() > MAX_SENTENCE_BYTES,
                "{a:?} {b:?}"
            );
            assert_eq!(b.start, a.end + 1, "pieces are consecutive");
        }
        // Lowercase words on separate lines are one hard-wrapped chunk: pieces again.
        let text = words(50_000, "\n", 8);
        let spans = check_pieces(&text);
        assert!(spans.len() >= 50);
        // Runs of mixed whitespace between words, non-breaking spaces included.
        let text = words(20_000, " \u{a0}\t  ", 9);
        check_pieces(&text);
    }

    #[test]
    fn a_run_without_whitespace_is_cut_at_char_boundaries() {
        for unit in ["x", "é", "東", "🎉", "ab€"] {
            let text = unit.repeat(40_000 / unit.len());
            let spans = check_pieces(&text);
            let mut whole = Vec::new();
            push_pieces(
                &text,
                trimmed_span(&text, 0, text.len()).unwrap(),
                &mut whole,
            );
            assert_eq!(spans, whole, "{unit:?}");
            for w in spans.windows(2) {
                // Consecutive, and as long as a char boundary allows.
                assert_eq!(w[0].end, w[1].start);
                assert!(w[0].len() > MAX_SENTENCE_BYTES - 4);
            }
        }
        // A long word among short ones: the words before it make a piece of their own, then
        // the word is cut, then the pieces go on at whitespace.
        let long = "y".repeat(2_500);
        let text = format!("one two three {long} four five");
        let got: Vec<&str> = check_pieces(&text).iter().map(|s| s.text(&text)).collect();
        assert_eq!(
            got.len(),
            4,
            "{:?}",
            got.iter().map(|s| s.len()).collect::<Vec<_>>()
        );
        assert_eq!(got[0], "one two three");
        assert_eq!(got[1].len(), MAX_SENTENCE_BYTES);
        assert_eq!(got[2].len(), MAX_SENTENCE_BYTES);
        assert_eq!(got[3], format!("{} four five", "y".repeat(500)));
        // Whitespace exactly at the limit gives a piece of full length.
        let text = format!("{} {}", "z".repeat(MAX_SENTENCE_BYTES), "w".repeat(10));
        let got: Vec<&str> = check_pieces(&text).iter().map(|s| s.text(&text)).collect();
        assert_eq!(got, ["z".repeat(MAX_SENTENCE_BYTES), "w".repeat(10)]);
    }

    #[test]
    fn sentences_under_the_limit_are_split_as_before() {
        let long = words(3_500, " ", 11);
        let text = format!(
            "The vote failed. Critics cheered! Then {long}and then it ended. Was it fair? Nobody knows."
        );
        let got: Vec<&str> = check_pieces(&text).iter().map(|s| s.text(&text)).collect();
        assert_eq!(&got[..2], ["The vote failed.", "Critics cheered!"]);
        assert_eq!(&got[got.len() - 2..], ["Was it fair?", "Nobody knows."]);
        assert!(got.len() >= 2 + 4 + 2, "{}", got.len());
        assert!(got[got.len() - 3].ends_with("and then it ended."));
        // A sentence of exactly the limit is not cut.
        let exact = format!("A{}.", "b".repeat(MAX_SENTENCE_BYTES - 2));
        let text = format!("Before. {exact} After.");
        assert_eq!(sents(&text), ["Before.", exact.as_str(), "After."]);
        // A list marker stays in the first piece of its item.
        let text = format!("- {}", words(2_500, " ", 12));
        let spans = check_pieces(&text);
        assert_eq!(spans[0].start, 0);
        assert!(spans[0].text(&text).starts_with("- "));
    }

    /// Ordinary prose in one very long chunk: the windowed cut finder gives exactly the cuts of
    /// the whole-chunk one. (Headlines and list items are left out: joined into one line they
    /// are no longer ordinary text, and sentencex decides list markers per paragraph, so a
    /// marker kilobytes away can suppress boundaries in the whole chunk but not in a window.)
    #[test]
    fn windowed_cuts_equal_whole_chunk_cuts() {
        let cases_path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/splitter/cases.jsonl");
        let cases = eval::load_cases(&cases_path).unwrap();
        let mut parts: Vec<&str> = SEEDS
            .iter()
            .flat_map(|seed| seed.lines())
            .map(str::trim)
            .filter(|l| l.len() >= 80 && rules::ends_sentence_like(l))
            .collect();
        parts.extend(
            cases
                .iter()
                .filter(|c| !matches!(c.category.as_str(), "list" | "multiline" | "headline"))
                .map(|c| c.text.as_str()),
        );
        // Line breaks become spaces so that everything is one chunk.
        let one_line: String = parts.join(" ").replace(['\r', '\n'], " ");
        let body = one_line.repeat(8);
        let body = body.trim();
        assert!(body.len() > 5 * rules::BLOCK_BYTES, "{}", body.len());
        let whole = rules::find_cuts(body);
        let windowed = rules::find_cuts_bounded(body);
        assert!(whole.len() > 300, "{} cuts", whole.len());
        assert_eq!(windowed, whole);
        // `split` gives the spans of the whole-chunk cuts (any stretch over the limit cut into
        // the same pieces).
        let mut expected = Vec::new();
        let mut prev = 0;
        for cut in whole.iter().copied().chain([body.len()]) {
            if let Some(span) = trimmed_span(body, prev, cut) {
                push_pieces(body, span, &mut expected);
            }
            prev = cut;
        }
        assert_eq!(check_pieces(body), expected);
    }

    /// Inputs that used to be quadratic (parentheses that never close, e-mail addresses in
    /// parentheses) or many-sentence floods: a second each at most in a test build, and the
    /// invariants hold.
    #[test]
    fn pathological_inputs_stay_linear() {
        let patterns = [
            "It. (The ",
            "(a@b.co) It went. ",
            "word. ",
            "U.S. The ",
            "late\u{2026} The ",
            "\u{201c}no.\u{201d} Then ",
            "((((",
            "a.",
        ];
        for unit in patterns {
            let text = unit.repeat((1 << 20) / unit.len());
            let t0 = std::time::Instant::now();
            check_pieces(&text);
            let secs = t0.elapsed().as_secs_f64();
            assert!(secs < 20.0, "{unit:?}: {secs:.1}s");
        }
    }

    /// The limit keeps a piece of ordinary English within the encoder's 256 tokens. Prints the
    /// measured bytes per token. Skips when the encoder is not fetched.
    #[test]
    fn pieces_fit_the_encoder_window() {
        let Some(dir) = crate::encode::fetched_encoder_dir() else {
            return;
        };
        let mut tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        tok.with_truncation(None).unwrap();
        tok.with_padding(None);
        let cases_path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/splitter/cases.jsonl");
        let cases: Vec<String> = eval::load_cases(&cases_path)
            .unwrap()
            .into_iter()
            .map(|c| c.text)
            .collect();
        // The seed articles, and the splitter's evaluation cases (dense with abbreviations,
        // numbers and names), with their sentence punctuation removed: run-on texts.
        for (name, raw) in [("seeds", SEEDS.join(" ")), ("eval cases", cases.join(" "))] {
            let text: String = raw
                .chars()
                .map(|c| if ".?!\u{2026}\n".contains(c) { ' ' } else { c })
                .collect();
            let spans = check_pieces(&text);
            let (mut bytes, mut tokens, mut most) = (0, 0, 0);
            for s in &spans {
                let n = tok.encode(s.text(&text), true).unwrap().get_ids().len();
                assert!(n <= 256, "{n} tokens in {:?}", s.text(&text));
                bytes += s.len();
                tokens += n;
                most = most.max(n);
            }
            println!(
                "{name}: {} pieces, {:.2} bytes/token, at most {most} tokens in a piece",
                spans.len(),
                bytes as f64 / tokens as f64
            );
        }
    }
}
