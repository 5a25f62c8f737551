//! Line-level pre-segmentation: turns raw article text into *chunks*, runs of text that no
//! sentence boundary can cross.
//!
//! News text arrives with one of two line conventions, often mixed in one file:
//!
//! * **one paragraph (or headline, or list item) per line**: every line break ends a sentence,
//!   even when the line has no final period (headlines, captions, "Leave a Reply");
//! * **hard-wrapped paragraphs** (wire copy, e-mail, plain-text exports): lines are cut at a fixed
//!   width and a line break is just a space.
//!
//! The rules, applied to each pair of consecutive non-blank lines `prev` / `next`:
//!
//! 1. A blank (whitespace-only) line always separates chunks.
//! 2. A break before a **list item** (`- `, `* `, `• `, `1. `, `2) `, `(3) `, `a) `, `iv. `, …)
//!    always separates chunks: each item is at least one sentence. Exception: a line starting
//!    with a dash (`-`, `–`, `—`) after a line that runs on by rule 3's `prev`-side evidence is
//!    a dash inside the sentence, not a bullet.
//! 3. Otherwise the break is **soft** (the two lines belong to one chunk and the line break is
//!    plain whitespace) when there is positive evidence that the sentence runs on:
//!    * `next` starts with a lowercase letter (after any opening quote or bracket), e.g.
//!      `...a paragraph that` / `continues here.` (`iPhone`-style words do not count);
//!    * `prev` ends with a continuation mark: `,` `;` `(` `-` `–` `—` `&` `/`;
//!    * `prev` ends with a function word that cannot end an English sentence (`the`, `of`,
//!      `and`, `to`, `with`, …), e.g. `talks with the` / `United States.`;
//!    * `prev` ends with a title abbreviation that needs a following name (`Mr.`, `Sen.`, …).
//! 4. **Wrapped blocks.** If a block (lines between blank lines) has at least one soft break by
//!    rule 3 and no line wider than [`WRAP_MAX_WIDTH`] characters, it is treated as hard-wrapped:
//!    a break is then also soft when `prev` is "full", at least [`WRAP_FULL_RATIO`] of the widest
//!    line, because the writer's editor wrapped it at the margin, *and* `prev` does not end like
//!    a sentence (`.`/`?`/`!`/`…`, optionally followed by closing quotes or brackets) unless its
//!    last token is an abbreviation (`U.S.` / `Army`). Short lines (headlines, the last line of a
//!    paragraph) still end their chunk, and so does a Title Case first line (a headline right
//!    above a wrapped paragraph).
//! 5. Every other break is **hard**: the line ends a sentence.

/// A byte range `[start, end)` of trimmed, non-empty text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Start of the chunk (first non-whitespace byte), including any list marker.
    pub start: usize,
    /// Start of the chunk's body: after the list marker and its whitespace, else `start`.
    pub body: usize,
    /// End of the chunk (one past the last non-whitespace byte).
    pub end: usize,
}

/// Lines wider than this (in chars) mean the text is not hard-wrapped: wrapped plain text is
/// usually cut at 60–80 columns, while one-paragraph-per-line news text has much longer lines.
pub(crate) const WRAP_MAX_WIDTH: usize = 100;

/// In a wrapped block, a line at least this fraction of the widest line is "full" (it was
/// wrapped at the margin, so its sentence continues on the next line).
pub(crate) const WRAP_FULL_RATIO: f64 = 0.6;

/// One non-blank line: trimmed content range.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
}

/// Function words after which an English sentence cannot end: a line ending in one of these
/// runs on into the next line.
const RUN_ON_WORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "with", "from", "into", "onto",
    "and", "or", "but", "nor", "as", "than", "that", "which", "whose", "whom", "about", "after",
    "against", "among", "between", "during", "without", "within", "under", "over", "its", "their",
    "his", "her", "our", "your", "my", "is", "are", "was", "were", "be", "been", "has", "have",
    "had", "will", "would", "could", "should", "can", "may", "might", "must", "not", "very",
    "this", "these", "those", "if", "because", "while", "although", "when", "where", "who",
];

/// Split `text` into chunks (see the module docs for the rules).
///
/// Memory beyond the chunks returned is constant: a block is found in one pass and then read
/// twice more (its widest line and whether rule 4 applies, then the breaks), rather than held
/// as a list of lines (a 40 MB text of one word per line would need hundreds of MB for that).
pub(crate) fn chunks(text: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    // Start of the block's first line and end of its last line (trimmed).
    let mut block: Option<(usize, usize)> = None;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let lead = raw.len() - raw.trim_start().len();
        let content = raw.trim();
        if content.is_empty() {
            if let Some((start, end)) = block.take() {
                flush_block(text, start, end, &mut out);
            }
        } else {
            let start = offset + lead;
            let end = start + content.len();
            block = Some((block.map_or(start, |(first, _)| first), end));
        }
        offset += raw.len();
    }
    if let Some((start, end)) = block {
        flush_block(text, start, end, &mut out);
    }
    out
}

/// The lines of the block `text[start..end]` (consecutive non-blank lines, `start` the first
/// one's first non-whitespace byte and `end` one past the last one's last).
fn block_lines(text: &str, start: usize, end: usize) -> impl Iterator<Item = Line> + '_ {
    let mut offset = start;
    text[start..end].split_inclusive('\n').map(move |raw| {
        let lead = raw.len() - raw.trim_start().len();
        let line_start = offset + lead;
        offset += raw.len();
        Line {
            start: line_start,
            end: line_start + raw.trim().len(),
        }
    })
}

/// Rule 2: is `line` a list item? A dash "bullet" after a line that evidently runs on is a dash
/// inside the sentence (`...attended by` / `— by some estimates — thousands`), not a list item.
fn is_list_item(prev: Option<&str>, line: &str) -> bool {
    let dash_continuation =
        prev.is_some_and(|p| line.starts_with(['-', '–', '—']) && prev_runs_on(p));
    super::rules::list_marker_len(line).is_some() && !dash_continuation
}

/// Decide the breaks inside one block of consecutive non-blank lines (`text[start..end]`, see
/// [`block_lines`]) and emit its chunks.
fn flush_block(text: &str, start: usize, end: usize, out: &mut Vec<Chunk>) {
    let line = |l: &Line| &text[l.start..l.end];
    // Rule 3 (evidence-based soft breaks) anywhere in the block, and its widest line, decide
    // whether rule 4 (wrapped blocks) applies.
    let mut max_width = 0;
    let mut any_soft = false;
    let mut prev: Option<Line> = None;
    for l in block_lines(text, start, end) {
        let t = line(&l);
        max_width = max_width.max(t.chars().count());
        if let Some(p) = prev {
            let p = line(&p);
            any_soft = any_soft || (!is_list_item(Some(p), t) && runs_on(p, t));
        }
        prev = Some(l);
    }
    let wrapped = any_soft && max_width <= WRAP_MAX_WIDTH;
    let mut lines = block_lines(text, start, end).peekable();
    let mut first_line = true;
    let mut chunk_start: Option<Line> = None;
    while let Some(cur) = lines.next() {
        let chunk_first = *chunk_start.get_or_insert(cur);
        let soft = lines.peek().is_some_and(|next| {
            let (prev, next) = (line(&cur), line(next));
            if is_list_item(Some(prev), next) {
                return false;
            }
            if runs_on(prev, next) {
                return true;
            }
            // Rule 4: wrapped blocks.
            let full = wrapped && prev.chars().count() as f64 >= WRAP_FULL_RATIO * max_width as f64;
            let open_ended = !super::rules::ends_sentence_like(prev)
                || super::rules::ends_with_abbreviation(prev);
            let headline = first_line && is_title_case(prev);
            full && open_ended && !headline
        });
        first_line = false;
        if !soft {
            let start = chunk_first.start;
            let body =
                super::rules::list_marker_len(line(&chunk_first)).map_or(start, |n| start + n);
            out.push(Chunk {
                start,
                body,
                end: cur.end,
            });
            chunk_start = None;
        }
    }
}

/// Rule 3: does the sentence on line `prev` evidently continue on line `next`?
fn runs_on(prev: &str, next: &str) -> bool {
    starts_lowercase(next) || prev_runs_on(prev)
}

/// The `prev`-side evidence of rule 3: a continuation mark, a function word or a title at the
/// end of the line.
fn prev_runs_on(prev: &str) -> bool {
    prev.ends_with([',', ';', '(', '-', '–', '—', '&', '/'])
        || last_word(prev).is_some_and(|w| RUN_ON_WORDS.contains(&w))
        || last_word_with_period(prev).is_some_and(super::rules::is_title_abbreviation)
}

/// True when `line` starts with a lowercase letter, skipping opening quotes and brackets.
/// A lowercase letter followed by an uppercase one inside the same word (`iPhone`, `eBay`) is
/// a brand name that may well start a sentence, so it does not count.
fn starts_lowercase(line: &str) -> bool {
    let word = line.trim_start_matches(|c: char| super::rules::is_opener(c));
    let mut chars = word.chars();
    match chars.next() {
        Some(c) if c.is_lowercase() => !chars
            .take_while(|c| c.is_alphanumeric())
            .any(char::is_uppercase),
        _ => false,
    }
}

/// Title Case, as in a headline: at least three words of four or more letters, all
/// capitalised (`Taliban Announce Interim Government Led by Hardliners`).
fn is_title_case(line: &str) -> bool {
    let long: Vec<&str> = line
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .collect();
    long.len() >= 3 && long.iter().all(|w| w.starts_with(char::is_uppercase))
}

/// The last word of a line if it is purely alphabetic (no final punctuation).
fn last_word(line: &str) -> Option<&str> {
    let w = line.rsplit(char::is_whitespace).next()?;
    (!w.is_empty() && w.chars().all(char::is_alphabetic)).then_some(w)
}

/// The last whitespace-delimited token of a line when it ends with a period, without the period.
fn last_word_with_period(line: &str) -> Option<&str> {
    line.rsplit(char::is_whitespace).next()?.strip_suffix('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::rules::list_marker_len;

    fn texts(text: &str) -> Vec<&str> {
        chunks(text).iter().map(|c| &text[c.start..c.end]).collect()
    }

    #[test]
    fn list_markers() {
        assert_eq!(list_marker_len("- The U.S. will"), Some(2));
        assert_eq!(list_marker_len("• Bullet"), Some("•".len() + 1));
        assert_eq!(list_marker_len("1. First"), Some(3));
        assert_eq!(list_marker_len("12)  Twelfth"), Some(5));
        assert_eq!(list_marker_len("(3) Third"), Some(4));
        assert_eq!(list_marker_len("a) first"), Some(3));
        assert_eq!(list_marker_len("iv. The fourth"), Some(4));
        assert_eq!(list_marker_len("A) Option"), Some(3));
        assert_eq!(list_marker_len("— The U.S. said no."), Some("—".len() + 1));
        // Not markers.
        assert_eq!(list_marker_len("J. Edgar Hoover"), None);
        assert_eq!(list_marker_len("2021. The year"), None);
        assert_eq!(list_marker_len("-5 degrees"), None);
        assert_eq!(list_marker_len("1."), None);
        assert_eq!(list_marker_len("3.5 percent rose"), None);
        assert_eq!(list_marker_len("*"), None);
        assert_eq!(list_marker_len("I. Introduction"), None);
    }

    #[test]
    fn paragraph_per_line() {
        let t = "Headline Without Period\nFirst paragraph.\n\nSecond paragraph.";
        assert_eq!(
            texts(t),
            [
                "Headline Without Period",
                "First paragraph.",
                "Second paragraph."
            ]
        );
    }

    #[test]
    fn lowercase_continuation_and_run_on_words() {
        let t = "This is a paragraph that\ncontinues here. Talks with the\nUnited States ended.";
        assert_eq!(texts(t), [t]);
        let t = "He met Mr.\nSmith on Monday.";
        assert_eq!(texts(t), [t]);
        let t = "Prices rose,\nAnalysts said.";
        assert_eq!(texts(t), [t]);
    }

    #[test]
    fn lists_always_break() {
        let t = "Key points:\n- one thing\n- another\n1. first\n2) second";
        assert_eq!(
            texts(t),
            [
                "Key points:",
                "- one thing",
                "- another",
                "1. first",
                "2) second"
            ]
        );
        let c = chunks("- one thing");
        assert_eq!(c[0].body, 2);
        let t = "The rally was attended by\n— by some estimates — thousands of people.";
        assert_eq!(texts(t), [t]);
    }

    #[test]
    fn wrapped_block_joins_full_lines_only() {
        let t = "The minister met officials from the United Nations and\n\
                 European Union in Brussels on Monday to discuss aid to\n\
                 Afghanistan. The talks ended without a deal.\n\
                 Short Headline\n\
                 Another line.";
        let got = texts(t);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].ends_with("without a deal."));
        assert_eq!(got[1], "Short Headline");
    }

    #[test]
    fn title_case_headline_above_wrapped_paragraph() {
        assert!(is_title_case(
            "Taliban Announce Interim Government Led by Hardliners"
        ));
        assert!(!is_title_case(
            "The delegation was led by Deputy Prime Minister Abdul Ghani"
        ));
        assert!(!is_title_case("Taliban Win Big"));
        let t = "Taliban Announce Interim Government Led by Hardliners
\
                 The Taliban on Tuesday named an interim government packed
\
                 with veterans of their 1990s rule.";
        assert_eq!(texts(t).len(), 2);
    }

    #[test]
    fn crlf_and_whitespace_lines() {
        let t = "One.\r\n \r\nTwo\r\nThree.";
        assert_eq!(texts(t), ["One.", "Two", "Three."]);
    }
}
