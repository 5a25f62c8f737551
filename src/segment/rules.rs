//! Within-chunk sentence boundaries: [`sentencex`] plus news-specific corrections.
//!
//! A chunk (see [`super::lines`]) is a run of text in which boundaries are found by punctuation
//! alone. A boundary is represented as a *cut*: a byte offset just after the last character of
//! a sentence (after its terminator and any closing quotes or brackets).
//!
//! Pipeline for one chunk:
//!
//! 1. **Quote masking.** Quote characters are replaced by spaces of the same byte length before
//!    the text goes to sentencex, so offsets stay valid. sentencex treats a quoted region as one
//!    unsplittable unit, which glues multi-sentence news quotes (`“We urge all countries to talk.
//!    We will protect women,” he added.`) into one "sentence"; masked, the quote splits like
//!    running text and the closing quote is re-attached to its sentence. A `’`/`'` is masked only
//!    where it is a quote (after whitespace or after sentence punctuation), never an apostrophe.
//! 2. **Candidates.** Every sentencex boundary is a candidate cut. Own rules add candidates where
//!    sentencex is known to miss: a Unicode ellipsis `…` followed by a capitalised word; a
//!    sentence-final abbreviation (`U.S.`, `Inc.`, `a.m.`, `vitamin D.`) followed by a word that
//!    starts sentences (`The`, `He`, `Officials`, …); a terminator or interrupting dash plus a
//!    closing quote followed by a capitalised word (`said “no.” Zürich`, `“We are—” The`); a
//!    parenthesised sentence (`(The vote was 13-2.)`) followed by a capitalised word; a plain
//!    lowercase word and a period followed by a capitalised word (`(b) Cut spending. Then`,
//!    which sentencex misses after inline enumerators).
//! 3. **Vetoes.** A candidate is dropped when the next word starts lowercase (`“Stop,” he said`,
//!    `1. growth; 2. jobs`), when it follows a title that needs a name (`Mr.`, `Sen.`, `Gov.`),
//!    a number abbreviation before a number (`No. 1`, `Jan. 6`), an abbreviation that never ends
//!    a sentence (`e.g.`, `i.e.`, `vs.`), a place prefix before a name (`Ft. Lauderdale`), a time
//!    before a day/month/time zone (`9 a.m. Tuesday`, `8 a.m. Kabul time`),
//!    or a quoted question/exclamation followed by its attribution (`“Why now?” Biden asked.`);
//!    an inline enumerator (`ranks 1. Housing 2. Health`, `i. Background ii. Findings`, `pick
//!    a. Smith b. Jones`: the token before the cut is `N.`, a lowercase letter or roman numeral
//!    whose predecessor comes before it, or successor after it, with no sentence end between);
//!    a break before an inline bullet or list marker (`Key points: • Taxes rise`, `Demands:
//!    1) Higher wages`) that follows no terminator.

use std::collections::BTreeSet;

/// Titles that precede a name: a period after them never ends a sentence.
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "messrs", "mmes", "dr", "drs", "gen", "sen", "sens", "rep", "reps", "gov",
    "lt", "col", "capt", "cpt", "sgt", "maj", "adm", "cmdr", "cdr", "brig", "cpl", "pvt", "prof",
    "rev", "hon", "pres", "supt", "det", "insp", "atty", "amb", "fr", "msgr", "gens",
];

/// Capitalised place-name prefixes (`St. Louis`, `Ft. Lauderdale`, `Mt. Everest`): no boundary
/// unless a sentence starter follows (`...on Main St. The shop...`).
const PLACE_PREFIXES: &[&str] = &["St", "Ste", "Ft", "Mt", "Pt"];

/// Abbreviations that introduce a number (`No. 1`, `Jan. 6`, `pp. 12`): no boundary when a
/// digit follows.
const NUMBER_PREFIXES: &[&str] = &[
    "no", "nos", "vol", "vols", "art", "fig", "figs", "p", "pp", "para", "sec", "ch", "approx",
    "ca", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "rt", "ste", "op", "ed", "gen", "ver",
];

/// Abbreviations that never end a sentence in news copy.
const NEVER_FINAL: &[&str] = &[
    "e.g", "i.e", "eg", "ie", "vs", "v", "cf", "viz", "approx", "ca",
];

/// Abbreviations that may end a sentence (besides dotted acronyms such as `U.S.` or `a.m.`).
/// `st`/`ave`/`rd` are street names (`on Main St. Police said`).
const MAY_END: &[&str] = &[
    "inc", "corp", "ltd", "co", "plc", "llc", "bros", "jr", "sr", "etc", "esq", "al", "st", "ave",
    "rd", "blvd",
];

/// Words after `a.m.`/`p.m.` that continue the time expression (`9 a.m. Tuesday`,
/// `5 p.m. EST`).
#[rustfmt::skip]
const TIME_FOLLOWERS: &[&str] = &[
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Mon", "Tue",
    "Tues", "Wed", "Thu", "Thur", "Thurs", "Fri", "Sat", "Sun", "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October", "November", "December",
    "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "ET",
    "EST", "EDT", "CT", "CST", "CDT", "MT", "MST", "MDT", "PT", "PST", "PDT", "GMT", "UTC",
    "BST", "CET", "CEST", "IST", "JST", "AEST", "AEDT", "HKT", "Eastern", "Pacific", "Central",
    "Mountain", "local", "Local",
];

/// Capitalised words that start sentences and almost never follow a sentence-final
/// abbreviation inside a sentence (`...in the U.S. Officials said` vs `the U.S. Army`).
/// Proper nouns and institution words (`Army`, `Senate`, `Secretary`) are deliberately absent.
#[rustfmt::skip]
const STARTERS: &[&str] = &[
    "The", "A", "An", "This", "That", "These", "Those", "It", "Its", "He", "She", "They", "We",
    "You", "His", "Her", "Their", "Our", "My", "But", "And", "Or", "So", "Yet", "Still",
    "However", "Meanwhile", "Also", "In", "On", "At", "As", "After", "Before", "When", "While",
    "If", "Although", "Though", "Because", "Since", "For", "With", "From", "By", "To", "Then",
    "There", "Here", "Now", "Today", "Yesterday", "Tomorrow", "Last", "Earlier", "Later",
    "What", "Who", "Why", "How", "Where", "Which", "Some", "Many", "Most", "Several", "All",
    "Both", "Each", "Every", "No", "None", "Nothing", "Only", "Even", "Such", "Other", "Others",
    "Another", "One", "Officials", "Analysts", "Experts", "Critics", "Lawmakers", "Investors",
    "Residents", "Witnesses", "Authorities", "Protesters", "Observers", "Negotiators",
    "Diplomats", "Sources", "Supporters", "Opponents", "Police", "Mr", "Mrs", "Ms", "Dr",
    "Asked", "According", "Despite", "During", "Under", "Until", "Instead", "Indeed",
    "Nevertheless", "Moreover", "Furthermore", "Currently", "Shares", "Prices",
];

/// Speech verbs for the quote-attribution veto (`“Why now?” Biden asked.`).
#[rustfmt::skip]
const SPEECH_VERBS: &[&str] = &[
    "said", "says", "asked", "asks", "added", "adds", "told", "tells", "wrote", "writes",
    "replied", "shouted", "tweeted", "posted", "insisted", "declared", "wondered", "continued",
    "explained", "noted", "argued", "exclaimed", "recalled", "warned", "responded", "cried",
    "yelled", "demanded", "quipped", "joked", "chanted", "screamed",
];

/// Opening quotes and brackets (skipped when looking at the first letter of a sentence).
pub(crate) fn is_opener(c: char) -> bool {
    matches!(
        c,
        '"' | '“' | '‘' | '\'' | '„' | '‟' | '«' | '‹' | '(' | '[' | '{' | '`'
    )
}

/// Closing quotes and brackets (they belong to the sentence they close).
pub(crate) fn is_closer(c: char) -> bool {
    matches!(c, '"' | '”' | '’' | '\'' | '»' | '›' | ')' | ']' | '}')
}

/// Sentence-final punctuation.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '?' | '!' | '…')
}

/// True if `abbr` (a token without its final period, any case) is a title that needs a name
/// after it, such as `Mr` or `Sen`. The token must start with an uppercase letter.
pub(crate) fn is_title_abbreviation(abbr: &str) -> bool {
    abbr.starts_with(|c: char| c.is_ascii_uppercase())
        && TITLES.contains(&abbr.to_ascii_lowercase().as_str())
}

/// True if `line` ends like a sentence: a terminator optionally followed by closing quotes or
/// brackets.
pub(crate) fn ends_sentence_like(line: &str) -> bool {
    line.trim_end_matches(is_closer).ends_with(is_terminator)
}

/// True if the last token of `line` is an abbreviation (dotted acronym such as `U.S.`, a title,
/// or a known abbreviation such as `Inc.`), so a final period there proves nothing.
pub(crate) fn ends_with_abbreviation(line: &str) -> bool {
    let token = line.rsplit(char::is_whitespace).next().unwrap_or("");
    let core = core_token(token);
    let Some(abbr) = core.strip_suffix('.') else {
        return false;
    };
    is_dotted_acronym(core)
        || is_title_abbreviation(abbr)
        || MAY_END.contains(&abbr.to_ascii_lowercase().as_str())
        || NUMBER_PREFIXES.contains(&abbr.to_ascii_lowercase().as_str())
}

/// `U.S.`, `U.K.`, `a.m.`, `D.C.`, `Ph.D.`: at least two groups of 1–2 letters, each followed by
/// a period.
fn is_dotted_acronym(core: &str) -> bool {
    let Some(body) = core.strip_suffix('.') else {
        return false;
    };
    let groups: Vec<&str> = body.split('.').collect();
    groups.len() >= 2
        && groups
            .iter()
            .all(|g| (1..=2).contains(&g.len()) && g.chars().all(|c| c.is_ascii_alphabetic()))
}

/// A token without leading openers and trailing closers: `“illegal.”` → `illegal.`.
fn core_token(token: &str) -> &str {
    token
        .trim_end_matches(is_closer)
        .trim_start_matches(is_opener)
}

/// The whitespace-delimited token that ends at byte `p`.
fn token_before(s: &str, p: usize) -> &str {
    let head = &s[..p];
    let start = head
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    &head[start..]
}

/// The first word after byte `p`, skipping whitespace and opening quotes/brackets. A word is a
/// run of alphanumerics, apostrophes and hyphens (`I’m`, `Ocasio-Cortez`, `A-10`).
fn next_word(s: &str, p: usize) -> Option<&str> {
    let rest = s[p..].trim_start().trim_start_matches(is_opener);
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || matches!(c, '\'' | '’' | '-')))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Move `p` past closing quotes and brackets that directly follow it.
fn extend_closers(s: &str, mut p: usize) -> usize {
    while let Some(c) = s[p..].chars().next().filter(|&c| is_closer(c)) {
        p += c.len_utf8();
    }
    p
}

/// Replace quotation marks by spaces of the same byte length (see the module docs).
fn mask_quotes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    for c in s.chars() {
        let mask = match c {
            '"' | '“' | '”' | '„' | '‟' | '«' | '»' | '‹' | '›' | '‘' | '`' => true,
            '’' | '\'' => prev.is_none_or(|p| {
                p.is_whitespace()
                    || matches!(
                        p,
                        '.' | ',' | '?' | '!' | '…' | ';' | ':' | '(' | '[' | '—' | '–' | '"' | '”'
                    )
            }),
            _ => false,
        };
        if mask {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// Find the cuts (sentence ends) inside one chunk, sorted. A cut at `p` means one sentence ends
/// at `p` and the next starts at the first non-whitespace byte after it. Cuts at the end of the
/// chunk are not returned.
pub(crate) fn find_cuts(s: &str) -> Vec<usize> {
    let masked = mask_quotes(s);
    let mut candidates = BTreeSet::new();
    for b in sentencex::get_sentence_boundaries("en", &masked) {
        let end = b.start_byte + b.text.trim_end().len();
        if end > 0 {
            candidates.insert(extend_closers(s, end));
        }
    }
    add_ellipsis_cuts(s, &mut candidates);
    add_abbreviation_cuts(s, &mut candidates);
    add_closing_quote_cuts(s, &mut candidates);
    add_plain_word_cuts(s, &mut candidates);
    let mut cuts: BTreeSet<usize> = candidates
        .into_iter()
        .filter(|&p| is_real_cut(s, p) && keep_cut(s, p))
        .collect();
    // Parenthesised sentences depend on where sentences start, so they come last.
    for p in parenthesis_cuts(s, &cuts) {
        if keep_cut(s, p) {
            cuts.insert(p);
        }
    }
    cuts.into_iter().collect()
}

/// Chunks up to this many bytes go to [`find_cuts`] whole; longer ones (a 40 MB article with no
/// sentence punctuation is one chunk) are cut in windows of this size by [`find_cuts_bounded`],
/// so that the work and memory of one call stay bounded (sentencex's handling of overlapping
/// parentheses/e-mail ranges is quadratic in the text it is given). News paragraphs are far
/// shorter, so ordinary text never takes the windowed path.
pub(crate) const BLOCK_BYTES: usize = 16 * 1024;

/// Cuts found within this many bytes of a window's end are not trusted (their right context,
/// such as the next word, an attribution or a closing parenthesis, may lie beyond the window):
/// the next window starts at the last trusted cut and finds them again.
const BLOCK_MARGIN: usize = 2 * 1024;

/// Every window moves on by at least this much. A window that yields no trusted cut this far
/// past its start holds part of a "sentence" longer than this (no boundary in it), which is cut
/// at a boundary between two of its pieces (it is longer than [`super::MAX_SENTENCE_BYTES`], so
/// it is cut into pieces anyway).
const MIN_ADVANCE: usize = (BLOCK_BYTES - BLOCK_MARGIN) / 2;

const _: () = assert!(MIN_ADVANCE > super::MAX_SENTENCE_BYTES);

/// [`find_cuts`] with bounded work per call: a chunk up to [`BLOCK_BYTES`] is passed whole (the
/// result is exactly [`find_cuts`]'s); a longer one is processed in windows of [`BLOCK_BYTES`]
/// that each start at a cut, keeping the cuts that lie at least [`BLOCK_MARGIN`] bytes before
/// the window's end. This gives the same cuts as [`find_cuts`] on the whole chunk unless some
/// decision needs more than [`BLOCK_MARGIN`] bytes of context: a parenthesis of over 2 KiB, or
/// sentencex's list-marker detection, which picks one marker family per paragraph, so that in a
/// whole chunk an inline `1.` kilobytes away can suppress boundaries that a window finds;
/// where a window holds no cut for [`MIN_ADVANCE`] bytes an extra cut is made inside that long
/// sentence, at a boundary between two of the pieces it is cut into anyway (see
/// [`super::MAX_SENTENCE_BYTES`]), so that the final spans are unchanged.
/// Linear in the chunk length; memory beyond the returned cuts is O([`BLOCK_BYTES`]).
pub(crate) fn find_cuts_bounded(s: &str) -> Vec<usize> {
    if s.len() <= BLOCK_BYTES {
        return find_cuts(s);
    }
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        if s.len() - pos <= BLOCK_BYTES {
            out.extend(find_cuts(&s[pos..]).into_iter().map(|c| c + pos));
            return out;
        }
        let end = floor_char_boundary(s, pos + BLOCK_BYTES);
        let safe = pos + BLOCK_BYTES - BLOCK_MARGIN;
        let mut last = pos;
        for cut in find_cuts(&s[pos..end]) {
            let cut = cut + pos;
            if cut > safe {
                break;
            }
            out.push(cut);
            last = cut;
        }
        if last >= pos + MIN_ADVANCE {
            pos = last;
            continue;
        }
        // No boundary in `last..safe`, which is longer than MIN_ADVANCE: cut this long
        // sentence where `super::push_pieces` cuts it anyway, at its last piece boundary
        // before `safe`, so that the pieces come out as without windows. (Only a whitespace
        // run of kilobytes leaves no such boundary far enough on; then the cut is at `safe`.)
        let mut piece = last + (s[last..].len() - s[last..].trim_start().len());
        let mut boundary = None;
        while piece <= safe {
            let (_, next) = super::next_piece(s, piece, s.len());
            if next > safe {
                break;
            }
            boundary = Some(next);
            piece = next;
        }
        let forced = match boundary {
            Some(b) if b >= pos + MIN_ADVANCE => b,
            _ => floor_char_boundary(s, safe),
        };
        out.push(forced);
        pos = forced;
    }
}

/// The largest char boundary of `s` at or before `i` (`i <= s.len()`).
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A cut must have non-whitespace text on both sides.
fn is_real_cut(s: &str, p: usize) -> bool {
    !s[..p].trim().is_empty() && !s[p..].trim().is_empty()
}

/// Rule: `…` (Unicode ellipsis, which sentencex does not treat as a terminator) followed by
/// whitespace and a capitalised word other than `I` ends a sentence: `It was late… The end.`
fn add_ellipsis_cuts(s: &str, cuts: &mut BTreeSet<usize>) {
    for (i, _) in s.match_indices('…') {
        let mut p = i;
        while let Some(c) = s[p..].chars().next().filter(|&c| c == '…' || c == '.') {
            p += c.len_utf8();
        }
        let p = extend_closers(s, p);
        if !s[p..].starts_with(char::is_whitespace) {
            continue;
        }
        if let Some(w) = next_word(s, p) {
            let is_i = w == "I" || w.starts_with("I'") || w.starts_with("I’");
            if w.starts_with(char::is_uppercase) && !is_i {
                cuts.insert(p);
            }
        }
    }
}

/// Every period followed (after closing quotes and brackets) by whitespace: the cut position
/// after the closers, and the core token ending in the period (`“illegal.”` → `illegal.`).
fn periods_before_space(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.match_indices('.').filter_map(|(i, _)| {
        let p = extend_closers(s, i + 1);
        s[p..]
            .starts_with(char::is_whitespace)
            .then(|| (p, core_token(token_before(s, i + 1))))
    })
}

/// Rule: a sentence-final abbreviation (`U.S.`, `U.K.`, `a.m.`, `Inc.`, `Jr.`) followed by a
/// word from [`STARTERS`] ends a sentence: `...the hasty U.S. withdrawal.` stays whole but
/// `Aid came from the U.S. Officials said...` splits. Any other capitalised word keeps the
/// sentence going (`the U.S. Army`, `U.S. Secretary of State`).
fn add_abbreviation_cuts(s: &str, cuts: &mut BTreeSet<usize>) {
    for (p, core) in periods_before_space(s) {
        let abbr = core.trim_end_matches('.').to_ascii_lowercase();
        // `vitamin D. The`, `chose b. Then` (inline enumerators are vetoed in `keep_cut`).
        let single_letter = core.len() == 2 && core.starts_with(|c: char| c.is_ascii_alphabetic());
        let final_abbr =
            is_dotted_acronym(core) || MAY_END.contains(&abbr.as_str()) || single_letter;
        if final_abbr
            && next_word(s, p).is_some_and(|w| STARTERS.contains(&w))
            && !initial_follows(s, p)
        {
            cuts.insert(p);
        }
    }
}

/// True if the text after `p` starts with a name initial such as `A.` (`A. A. Milne`), which
/// must not be mistaken for the article `A` starting a sentence.
fn initial_follows(s: &str, p: usize) -> bool {
    let rest = s[p..].trim_start();
    let mut chars = rest.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some(c), Some('.')) if c.is_uppercase()
    )
}

/// Rule: a terminator (or an interrupting dash) followed by a closing quote, whitespace and a
/// capitalised word ends a sentence: `He said “no.” Zürich agreed.`, `“We are—” The line went
/// dead.` Masking hides the quote from sentencex, which may then take `no.` for the
/// abbreviation `No.`, so this rule restores the boundary. Vetoes (attribution, titles) apply.
fn add_closing_quote_cuts(s: &str, cuts: &mut BTreeSet<usize>) {
    for (i, c) in s.char_indices() {
        if !(is_terminator(c) || matches!(c, '—' | '–')) {
            continue;
        }
        let after = i + c.len_utf8();
        let p = extend_closers(s, after);
        let quoted = s[after..p]
            .chars()
            .any(|c| c != ')' && c != ']' && c != '}');
        if quoted
            && s[p..].starts_with(char::is_whitespace)
            && next_word(s, p).is_some_and(|w| w.starts_with(char::is_uppercase))
        {
            cuts.insert(p);
        }
    }
}

/// Rule: a parenthesis that opens a sentence and closes after a terminator, followed by a
/// capitalised word, is a sentence of its own: `It failed. (The vote was 13-2.) Officials left.`
fn parenthesis_cuts(s: &str, cuts: &BTreeSet<usize>) -> Vec<usize> {
    let mut out = Vec::new();
    // The first `)` at or after the last `(` looked at (`None`: there is none further on). The
    // `(`s come in order, so the text is scanned once for `)`s, not once per `(` (quadratic on
    // a long run of unclosed parentheses).
    let mut next_close: Option<Option<usize>> = None;
    for (open, _) in s.match_indices('(') {
        let before = s[..open].trim_end().len();
        let starts_sentence = before == 0 || cuts.contains(&before);
        if !starts_sentence {
            continue;
        }
        let close = match next_close {
            Some(Some(close)) if close >= open => Some(close),
            Some(None) => None,
            _ => s[open..].find(')').map(|i| open + i),
        };
        next_close = Some(close);
        let Some(close) = close else {
            continue;
        };
        let inner = s[open + 1..close].trim_end_matches(is_closer);
        let p = extend_closers(s, close);
        if inner.ends_with(is_terminator)
            && is_real_cut(s, p)
            && s[p..].starts_with(char::is_whitespace)
            && next_word(s, p).is_some_and(|w| w.starts_with(char::is_uppercase))
        {
            out.push(p);
        }
    }
    out
}

/// Rule: a period after a plain lowercase word (`spending.`, not an abbreviation) followed by
/// whitespace and a capitalised word ends a sentence. sentencex misses some of these after
/// inline enumerators (`(a) Raise taxes and (b) Cut spending. Then ...`, `3) Safer sites.
/// Talks continue.`).
fn add_plain_word_cuts(s: &str, cuts: &mut BTreeSet<usize>) {
    for (p, core) in periods_before_space(s) {
        let Some(word) = core.strip_suffix('.') else {
            continue;
        };
        let lower = word.to_ascii_lowercase();
        let plain = word.chars().count() >= 2
            && word.chars().all(char::is_alphabetic)
            && word.starts_with(char::is_lowercase)
            && ![MAY_END, NEVER_FINAL, NUMBER_PREFIXES, TITLES]
                .iter()
                .any(|list| list.contains(&lower.as_str()));
        if plain && next_word(s, p).is_some_and(|w| w.starts_with(char::is_uppercase)) {
            cuts.insert(p);
        }
    }
}

/// List bullets at the start of a line ([`list_marker_len`]).
const BULLETS: &[char] = &[
    '-', '*', '•', '·', '◦', '▪', '‣', '●', '■', '□', '►', '➢', '–', '—',
];

/// A bullet that may also appear inside a line (`Key points: • Taxes rise • Debt grows.`):
/// every [`BULLETS`] character but the dashes and `*`, which are punctuation there.
fn is_inline_bullet(c: char) -> bool {
    BULLETS.contains(&c) && !matches!(c, '-' | '*' | '–' | '—')
}

/// Byte length of a list-item marker at the start of `line` (bullet or enumerator plus the
/// whitespace after it), or `None` if the line is not a list item. The line must have content
/// after the marker.
///
/// Recognised: bullets `- * • · ◦ ▪ ‣ ● ■ □ ► ➢ – —`, and enumerators `12.` `12)` `(12)`
/// `a)` `(a)` `a.` (lowercase single letter) `A)` `iv.` `iv)` (lowercase roman numerals up to
/// `xii`). Uppercase `A.` is *not* a marker: it is far more often an initial (`J. Edgar Hoover`).
pub(crate) fn list_marker_len(line: &str) -> Option<usize> {
    let marker_end = if line.starts_with(BULLETS) {
        line.chars().next().map(char::len_utf8)?
    } else {
        let (inner, paren) = match line.strip_prefix('(') {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let token_len = inner
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(inner.len());
        let token = &inner[..token_len];
        let closer = inner[token_len..].chars().next()?;
        let ok_closer = if paren {
            closer == ')'
        } else {
            closer == ')' || closer == '.'
        };
        let is_number =
            !token.is_empty() && token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit());
        let is_letter = token.len() == 1
            && (token.as_bytes()[0].is_ascii_lowercase()
                || (token.as_bytes()[0].is_ascii_uppercase() && closer == ')'));
        let is_roman = (1..=12).any(|n| roman(n) == token);
        if !ok_closer || !(is_number || is_letter || is_roman) {
            return None;
        }
        usize::from(paren) + token_len + 1
    };
    let rest = &line[marker_end..];
    let body = rest.trim_start();
    // A marker must be followed by whitespace and then content.
    if body.is_empty() || body.len() == rest.len() {
        return None;
    }
    Some(line.len() - body.len())
}

/// The values a token such as `2.`, `b.` or `iii.` has as an enumerator, with its kind
/// (0: number 1–30, 1: lowercase letter, 2: lowercase roman numeral up to `xx`): `i.` is both
/// the letter 9 and the roman 1.
fn enumerator_values(core: &str) -> Vec<(u8, u32)> {
    let Some(body) = core.strip_suffix('.') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(n) = body.parse::<u32>() {
        if (1..=30).contains(&n) && !body.starts_with('0') {
            out.push((0, n));
        }
    }
    let mut chars = body.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_ascii_lowercase() {
            out.push((1, c as u32 - 'a' as u32 + 1));
        }
    }
    if let Some(n) = (1..=20).find(|&n| roman(n) == body) {
        out.push((2, n));
    }
    out
}

fn roman(n: u32) -> String {
    const ONES: [&str; 10] = ["", "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix"];
    format!(
        "{}{}",
        "x".repeat((n / 10) as usize),
        ONES[(n % 10) as usize]
    )
}

/// The enumerator token of `kind` and `value` (`3.`, `c.`, `iii.`).
fn enumerator(kind: u8, value: u32) -> Option<String> {
    match kind {
        0 => Some(format!("{value}.")),
        1 => char::from_u32('a' as u32 + value - 1)
            .filter(char::is_ascii_lowercase)
            .map(|c| format!("{c}.")),
        _ => Some(format!("{}.", roman(value))),
    }
}

/// Does `t` hold a sentence end (a terminator followed by whitespace)?
fn has_sentence_end(t: &str) -> bool {
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if is_terminator(c) && chars.peek().is_some_and(|n| n.is_whitespace()) {
            return true;
        }
    }
    false
}

/// Is the token ending at `p` an inline enumerator (`The survey ranks 1. Housing 2. Health
/// 3. Jobs`, `i. Background ii. Findings`, `pick a. Smith b. Jones`)? It is when the one
/// before it in the sequence comes earlier, or the one after it comes later, within
/// [`ENUM_REACH`] bytes and with no sentence end between them.
fn inline_enumerator(s: &str, p: usize) -> bool {
    let token = token_before(s, p);
    let start = p - token.len();
    let core = token.trim_start_matches('(');
    for (kind, value) in enumerator_values(core) {
        let lo = ceil_char_boundary(s, start.saturating_sub(ENUM_REACH));
        let hi = floor_char_boundary(s, (p + ENUM_REACH).min(s.len()));
        let prev = (value > 1)
            .then(|| enumerator(kind, value - 1))
            .flatten()
            .and_then(|m| {
                let before = &s[lo..start];
                before
                    .split_whitespace()
                    .rev()
                    .find(|t| t.trim_start_matches('(') == m)
                    .map(|t| t.as_ptr() as usize - s.as_ptr() as usize + t.len())
            })
            .is_some_and(|end| !has_sentence_end(&s[end..start]));
        let next = enumerator(kind, value + 1)
            .and_then(|m| {
                s[p..hi]
                    .split_whitespace()
                    .find(|t| t.trim_start_matches('(') == m)
                    .map(|t| t.as_ptr() as usize - s.as_ptr() as usize)
            })
            .is_some_and(|at| !has_sentence_end(&s[p..at]));
        if prev || next {
            return true;
        }
    }
    false
}

/// How far apart two consecutive inline enumerators may be, in bytes.
const ENUM_REACH: usize = 300;

/// The smallest char boundary of `s` at or after `i`.
fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The vetoes: should the candidate cut at `p` stay?
fn keep_cut(s: &str, p: usize) -> bool {
    // sentencex breaks before an inline bullet or enumerator (`Key points: • Taxes rise •
    // Debt grows`, `Demands: 1) Higher wages 2) Shorter shifts`): not a sentence end unless
    // one precedes it.
    let rest = s[p..].trim_start();
    let marker = rest.starts_with(is_inline_bullet) || list_marker_len(rest).is_some();
    if marker && !ends_sentence_like(s[..p].trim_end()) {
        return false;
    }
    if inline_enumerator(s, p) {
        return false;
    }
    let Some(next) = next_word(s, p) else {
        return true;
    };
    let mut next_chars = next.chars();
    let first = next_chars.next().unwrap_or(' ');
    // Lowercase continuation (`“Stop,” he said`), unless a brand name like `iPhone`.
    if first.is_lowercase() && !next_chars.any(char::is_uppercase) {
        return false;
    }
    let token = token_before(s, p);
    let core = core_token(token);
    if let Some(abbr) = core.strip_suffix('.') {
        let lower = abbr.to_ascii_lowercase();
        let lower = lower.as_str();
        if is_title_abbreviation(abbr) {
            return false;
        }
        if PLACE_PREFIXES.contains(&abbr) && !STARTERS.contains(&next) {
            return false;
        }
        if NUMBER_PREFIXES.contains(&lower) && first.is_ascii_digit() {
            return false;
        }
        if NEVER_FINAL.contains(&lower) {
            return false;
        }
        if matches!(lower, "a.m" | "p.m" | "am" | "pm")
            && (TIME_FOLLOWERS.contains(&next) || followed_by_time(s, p))
        {
            return false;
        }
    }
    let quoted_question = token.trim_end_matches(is_closer).ends_with(['?', '!'])
        && token.ends_with(|c: char| is_closer(c) && c != ')');
    !(quoted_question && attribution_follows(&s[p..]))
}

/// Does `rest` start with a short attribution such as `Biden asked.`,
/// `Sen. Elizabeth Warren asked reporters.` or `Ahmad Shah, 34, asked.`? One to three
/// capitalised words, optionally an appositive between commas (up to four words), a speech
/// verb, and at most three more words before the sentence ends.
fn attribution_follows(rest: &str) -> bool {
    let words: Vec<&str> = rest.split_whitespace().take(12).collect();
    let capitalised = |w: &str| w.starts_with(|c: char| c.is_uppercase());
    let mut i = 0;
    while i < words.len().min(3) && capitalised(words[i]) {
        i += 1;
        if words[i - 1].ends_with(',') {
            break;
        }
    }
    if i == 0 || words[i - 1].ends_with(is_terminator) {
        return false;
    }
    if words[i - 1].ends_with(',') {
        // Skip an appositive: `Ahmad Shah, 34, asked` / `Khan, a farmer, said`.
        match words[i..].iter().take(4).position(|w| w.ends_with(',')) {
            Some(k) => i += k + 1,
            None => return false,
        }
    }
    let Some(verb) = words.get(i) else {
        return false;
    };
    let verb = verb.trim_end_matches(|c: char| is_terminator_or_comma(c) || is_closer(c));
    if !SPEECH_VERBS.contains(&verb) {
        return false;
    }
    // The attribution must end within three more words.
    words[i..].iter().take(4).any(|w| {
        w.trim_end_matches(is_closer)
            .ends_with(is_terminator_or_comma)
    }) || words.len() <= i + 4
}

/// `8 a.m. Kabul time`, `9 p.m. Eastern Time`: a capitalised word followed by `time`.
fn followed_by_time(s: &str, p: usize) -> bool {
    let mut words = s[p..].split_whitespace();
    let first = words.next().unwrap_or("");
    let second = words.next().unwrap_or("");
    first.starts_with(char::is_uppercase)
        && matches!(
            second.trim_end_matches(|c: char| !c.is_alphabetic()),
            "time" | "Time"
        )
}

fn is_terminator_or_comma(c: char) -> bool {
    is_terminator(c) || matches!(c, ',' | ';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut prev = 0;
        for p in find_cuts(s) {
            out.push(s[prev..p].trim());
            prev = p;
        }
        out.push(s[prev..].trim());
        out
    }

    #[test]
    fn masking_keeps_lengths_and_apostrophes() {
        let s = "“We’re here,” he said. 'Yes.' The Taliban’s rule, the countries’ leaders.";
        let m = mask_quotes(s);
        assert_eq!(m.len(), s.len());
        assert!(m.contains("We’re"));
        assert!(m.contains("Taliban’s"));
        assert!(m.contains("countries’"));
        assert!(!m.contains('“') && !m.contains('”') && !m.contains('\''));
    }

    #[test]
    fn inline_enumerations_stay_in_their_sentence() {
        assert_eq!(
            sentences("The survey ranks 1. Housing 2. Health 3. Jobs as top concerns. It ended."),
            [
                "The survey ranks 1. Housing 2. Health 3. Jobs as top concerns.",
                "It ended."
            ]
        );
        assert_eq!(
            sentences("It has parts i. Background ii. Findings iii. Policy. Each is short."),
            [
                "It has parts i. Background ii. Findings iii. Policy.",
                "Each is short."
            ]
        );
        assert_eq!(
            sentences("Voters could pick a. Smith b. Jones or c. Lee. Turnout was low."),
            [
                "Voters could pick a. Smith b. Jones or c. Lee.",
                "Turnout was low."
            ]
        );
        assert_eq!(
            sentences("Demands: 1) Higher wages 2) Shorter shifts 3) Safer sites. Talks go on."),
            [
                "Demands: 1) Higher wages 2) Shorter shifts 3) Safer sites.",
                "Talks go on."
            ]
        );
        assert_eq!(
            sentences("Steps: (a) Raise taxes and (b) Cut spending. Then the vote follows."),
            [
                "Steps: (a) Raise taxes and (b) Cut spending.",
                "Then the vote follows."
            ]
        );
        assert_eq!(
            sentences("Key points: • Taxes rise • Spending falls • Debt grows. Analysts disagree."),
            [
                "Key points: • Taxes rise • Spending falls • Debt grows.",
                "Analysts disagree."
            ]
        );
    }

    #[test]
    fn numbers_and_letters_ending_sentences_still_end_them() {
        // No sequence: a number or letter before a period ends its sentence.
        assert_eq!(
            sentences("He finished 2. Then he won the final. His rival was 3. She retired."),
            [
                "He finished 2.",
                "Then he won the final.",
                "His rival was 3.",
                "She retired."
            ]
        );
        // A sequence broken by a sentence end is no enumeration.
        assert_eq!(
            sentences("Options: a. delay it, b. hold it now. The senator chose b. Then it began."),
            [
                "Options: a. delay it, b. hold it now.",
                "The senator chose b.",
                "Then it began."
            ]
        );
    }

    #[test]
    fn times_and_ellipses() {
        assert_eq!(
            sentences(
                "The strike began at 6 a.m. Workers gathered. Talks resume at 10 a.m. Monday."
            ),
            [
                "The strike began at 6 a.m.",
                "Workers gathered.",
                "Talks resume at 10 a.m. Monday."
            ]
        );
        assert_eq!(
            sentences("He paused . . . and went on. She trailed off . . . The next day she quit."),
            [
                "He paused . . . and went on.",
                "She trailed off . . .",
                "The next day she quit."
            ]
        );
        assert_eq!(
            sentences("The memo [...] Officials withdrew it. The law [. . .] protects all."),
            [
                "The memo [...] Officials withdrew it.",
                "The law [. . .] protects all."
            ]
        );
        assert_eq!(
            sentences("Prices rose. . . . Then they fell."),
            ["Prices rose. . . .", "Then they fell."]
        );
    }

    #[test]
    fn enumerator_values_of_tokens() {
        assert_eq!(enumerator_values("3."), [(0, 3)]);
        assert_eq!(enumerator_values("i."), [(1, 9), (2, 1)]);
        assert_eq!(enumerator_values("iv."), [(2, 4)]);
        assert!(enumerator_values("2021.").is_empty());
        assert!(enumerator_values("B.").is_empty());
        assert!(enumerator_values("05.").is_empty());
        assert_eq!(enumerator(1, 27), None);
    }

    #[test]
    fn dotted_acronyms() {
        assert!(is_dotted_acronym("U.S."));
        assert!(is_dotted_acronym("a.m."));
        assert!(is_dotted_acronym("Ph.D."));
        assert!(!is_dotted_acronym("U.S"));
        assert!(!is_dotted_acronym("said."));
        assert!(!is_dotted_acronym("3.5."));
    }

    #[test]
    fn next_word_and_token() {
        let s = "said “I’m here.” Then";
        assert_eq!(next_word(s, 4), Some("I’m"));
        assert_eq!(token_before(s, s.len() - 5), "here.”");
        assert_eq!(core_token("“illegal.”"), "illegal.");
    }

    #[test]
    fn multi_sentence_quote_is_split() {
        assert_eq!(
            sentences("“We urge all countries to talk. We will protect women,” he added. Next."),
            [
                "“We urge all countries to talk.",
                "We will protect women,” he added.",
                "Next."
            ]
        );
    }

    #[test]
    fn attribution_after_quoted_question() {
        assert_eq!(
            sentences("“Why now?” Biden asked. Nobody knew."),
            ["“Why now?” Biden asked.", "Nobody knew."]
        );
        assert_eq!(
            sentences("\"Who knows?\" Not me."),
            ["\"Who knows?\"", "Not me."]
        );
    }
}
