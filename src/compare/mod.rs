//! Two sources side by side: `slant compare A B`.
//!
//! [`compare`] puts the per-source sums of two outlets ([`SourceSums`]) next to each other, one
//! [`Metric`] row per measure:
//!
//! * `loaded_share`: share of sentences labelled as loaded language (per-article units from
//!   [`SourceSums::loaded_units`]);
//! * `mean_loaded`: mean loaded-language probability over sentences (per-article units from
//!   [`SourceSums::prob_units`]).
//!
//! Every row reports `a`, `b` and `diff = b − a`, with inference **over articles** (sentences in
//! one article share an author, a topic and a house style, so they are not independent):
//!
//! * `ci`: percentile bootstrap 95% interval of the difference, resampling articles within each
//!   source ([`stats::diff_test`]); `None` when a side has fewer than 2 articles;
//! * `p`: two-sided permutation p-value, relabelling articles between the two sources; `None`
//!   when there are fewer than [`stats::MIN_PERMUTATION_ASSIGNMENTS`] distinct relabellings
//!   (e.g. 2 vs 2 articles), when the difference is undefined, or when `reps == 0`.
//!
//! Share rows also carry Cohen's h ([`stats::cohens_h`]) as an effect size and a
//! **sentence-level** two-proportion z-test ([`stats::two_proportion_z`]). The z-test treats
//! every sentence as an independent trial, which they are not, so its p-value is too small; it is
//! reported for context (and for sources with a single article, where nothing over articles can
//! be computed) and labelled as such.
//!
//! Output is deterministic for a given seed: units are sorted by article id, the resampling
//! draws from seeded ChaCha streams, rows and notes are built in a fixed order, and every
//! reported float is rounded to 6 decimals so that JSON output is byte-stable.
//!
//! New measures (attribution rate, frame divergence, ...) are added by pushing more [`Metric`]
//! rows, e.g. with [`Metric::from_diff_test`]; [`render_table`] prints whatever rows it finds.

use serde::Serialize;

use crate::aggregate::SourceSums;
use crate::stats::{self, DiffTest, Unit};
use crate::terms::{self, Distinctive};

/// Default number of bootstrap resamples and of permutations.
pub const DEFAULT_REPS: usize = 5000;
/// Default seed of the bootstrap and permutation streams.
pub const DEFAULT_SEED: u64 = 20211;
/// Below this many articles on a side, intervals over articles are flagged as wide and unstable
/// (the same threshold as [`crate::aggregate::MIN_ARTICLES_FOR_BOOTSTRAP`]).
pub const FEW_ARTICLES: u64 = 5;

/// Name of the loaded-sentence share row.
pub const LOADED_SHARE: &str = "loaded_share";
/// Name of the mean loaded-probability row.
pub const MEAN_LOADED: &str = "mean_loaded";

/// One measure compared between the two sources (one row of the table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Machine name of the measure, e.g. `"loaded_share"`, `"mean_loaded"`.
    pub name: String,
    /// Value for source a (NaN, serialised as `null`, when a has no sentences).
    pub a: f64,
    /// Value for source b (NaN, serialised as `null`, when b has no sentences).
    pub b: f64,
    /// `b − a`.
    pub diff: f64,
    /// Percentile bootstrap 95% CI of `diff`, resampling articles; `None` (JSON `null`) when a
    /// side has fewer than 2 articles.
    pub ci: Option<[f64; 2]>,
    /// Two-sided permutation p-value over articles; `None` when too few distinct relabellings
    /// of articles exist (see [`stats::diff_test`]).
    pub p: Option<f64>,
    /// Effect size: Cohen's h of b vs a for shares (positive when b is higher); `None` for means.
    pub effect: Option<f64>,
    /// For shares: two-proportion z-test over sentences. It treats sentences as independent,
    /// which they are not (they cluster in articles), so its p-value is too small; prefer `p`.
    pub sentence_test: Option<SentenceTest>,
    /// Plain-words caveat about this row, when there is one.
    pub note: Option<String>,
}

/// Two-proportion z-test over sentences (treats sentences as independent trials).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentenceTest {
    /// z statistic of `b − a` (pooled variance).
    pub z: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Result of [`compare`]: what `slant compare` prints or writes as JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Name of source a.
    pub a: String,
    /// Name of source b.
    pub b: String,
    /// Articles of source a.
    pub a_articles: u64,
    /// Articles of source b.
    pub b_articles: u64,
    /// Sentences of source a.
    pub a_sentences: u64,
    /// Sentences of source b.
    pub b_sentences: u64,
    /// One row per measure, in a fixed order.
    pub metrics: Vec<Metric>,
    /// The terms that most distinguish each side (log-odds ratio with an informative Dirichlet
    /// prior, from [`SourceSums::terms`]); empty lists when no words were counted.
    pub distinctive: Distinctive,
    /// The main actors of the two sources together and how each side labels them
    /// ([`crate::actors`]).
    pub actors: Vec<crate::actors::ActorReport>,
    /// Attribution profiles of both sides (cue verbs, who gets quoted), when both were scored
    /// with the attribution head; the rates are also rows of `metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionSides>,
    /// Caveats about the comparison as a whole, in words.
    pub notes: Vec<String>,
    /// Bootstrap resamples and permutations per row.
    pub reps: usize,
    /// Seed of the resampling streams.
    pub seed: u64,
}

impl Comparison {
    /// The row called `name`, if any.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Round to 6 decimals (and turn `-0.0` into `0.0`) so that serialised output is stable.
/// Non-finite values pass through.
fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    (x * 1e6).round() / 1e6 + 0.0
}

/// Number of ways to relabel `n` articles into groups of `k` and `n − k`, `C(n, k)`; `u128::MAX`
/// when an intermediate product overflows (only counts below 20 are ever printed).
fn relabellings(n: u64, k: u64) -> u128 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k) as u128;
    let n = n as u128;
    let mut c: u128 = 1;
    for i in 0..k {
        // C(n, i+1) = C(n, i)·(n−i)/(i+1), exact at every step.
        match c.checked_mul(n - i) {
            Some(v) => c = v / (i + 1),
            None => return u128::MAX,
        }
    }
    c
}

/// Article and sentence counts of one side, used to explain missing statistics.
#[derive(Debug, Clone, Copy)]
struct Side<'a> {
    name: &'a str,
    articles: u64,
    sentences: u64,
}

impl Metric {
    /// A row from a [`stats::diff_test`] result, with values rounded to 6 decimals and a note
    /// explaining in words why `ci` or `p` is missing, if one is. `effect` and `sentence_test`
    /// start empty; measures that have them fill them in.
    ///
    /// `a_articles`/`b_articles` are the unit counts that were passed to `diff_test` and `reps`
    /// its number of replicates (both only used to word the note).
    pub fn from_diff_test(
        name: &str,
        t: &DiffTest,
        a_articles: u64,
        b_articles: u64,
        reps: usize,
    ) -> Self {
        let mut reasons: Vec<String> = Vec::new();
        if reps == 0 {
            reasons.push("no resampling was done (reps = 0): no interval or p-value".into());
        } else if !t.diff.is_finite() {
            reasons.push(
                "the difference is undefined (a source has no sentences): \
                 no interval or p-value"
                    .into(),
            );
        } else {
            let single = a_articles < 2 || b_articles < 2;
            match (t.ci.is_none() && single, t.p.is_none()) {
                (true, true) => reasons.push(format!(
                    "too few articles for an interval or a p-value over articles \
                     (a: {a_articles}, b: {b_articles}; an interval needs at least 2 on each side)"
                )),
                (true, false) => reasons.push(format!(
                    "too few articles for an interval over articles (a: {a_articles}, \
                     b: {b_articles}; each side needs at least 2)"
                )),
                (false, true) => {
                    let ways = relabellings(a_articles + b_articles, a_articles);
                    reasons.push(format!(
                        "too few articles for a permutation p-value (a: {a_articles}, \
                         b: {b_articles} allow only {ways} distinct relabellings; at least {} \
                         are needed)",
                        stats::MIN_PERMUTATION_ASSIGNMENTS
                    ));
                }
                (false, false) => {}
            }
        }
        Metric {
            name: name.to_string(),
            a: round6(t.a),
            b: round6(t.b),
            diff: round6(t.diff),
            ci: t.ci.map(|(lo, hi)| [round6(lo), round6(hi)]),
            p: t.p.map(round6),
            effect: None,
            sentence_test: None,
            note: (!reasons.is_empty()).then(|| reasons.join("; ")),
        }
    }
}

/// Sum of `num` and of `den` over units.
fn totals(units: &[Unit]) -> (f64, f64) {
    units
        .iter()
        .fold((0.0, 0.0), |(n, d), u| (n + u.num, d + u.den))
}

/// The `loaded_share` row: diff test over articles, Cohen's h and the sentence-level z-test.
fn loaded_share_row(
    a: &SourceSums,
    b: &SourceSums,
    sa: Side,
    sb: Side,
    reps: usize,
    seed: u64,
) -> Metric {
    let (ua, ub) = (a.loaded_units(), b.loaded_units());
    let t = stats::diff_test(&ua, &ub, reps, seed);
    let mut m = Metric::from_diff_test(LOADED_SHARE, &t, sa.articles, sb.articles, reps);
    if t.a.is_finite() && t.b.is_finite() {
        m.effect = Some(round6(stats::cohens_h(t.a, t.b)));
    }
    if sa.sentences > 0 && sb.sentences > 0 {
        // Loaded-sentence counts are whole numbers stored as f64 in the units.
        let (ka, na) = totals(&ua);
        let (kb, nb) = totals(&ub);
        let (z, p) = stats::two_proportion_z(
            ka.round() as u64,
            na.round() as u64,
            kb.round() as u64,
            nb.round() as u64,
        );
        m.sentence_test = Some(SentenceTest {
            z: round6(z),
            p: round6(p),
        });
        if m.note.is_some() {
            let note = m.note.take().unwrap_or_default();
            m.note = Some(format!(
                "{note}; the sentence-level test treats sentences as independent, so its \
                 p-value is too small"
            ));
        }
    }
    m
}

/// The `mean_loaded` row: diff test over articles (no effect size, no sentence-level test).
fn mean_loaded_row(
    a: &SourceSums,
    b: &SourceSums,
    sa: Side,
    sb: Side,
    reps: usize,
    seed: u64,
) -> Metric {
    let t = stats::diff_test(&a.prob_units(), &b.prob_units(), reps, seed);
    Metric::from_diff_test(MEAN_LOADED, &t, sa.articles, sb.articles, reps)
}

/// Both sides' attribution profiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributionSides {
    pub a: crate::attribution::AttributionProfile,
    pub b: crate::attribution::AttributionProfile,
}

/// Names of the attribution rows: share of sentences with an attribution, share of loaded cue
/// verbs among cues, share of unattributed assertions ([`crate::attribution::RATIOS`]).
pub const ATTRIBUTION_ROWS: [&str; 3] = [
    crate::attribution::RATIOS[0].0,
    crate::attribution::RATIOS[1].0,
    crate::attribution::RATIOS[2].0,
];

/// The attribution rows (diff tests over articles, Cohen's h), when both sides have
/// attribution counts.
fn attribution_rows(a: &SourceSums, b: &SourceSums, reps: usize, seed: u64) -> Vec<Metric> {
    if a.attribution_counts().is_empty() || b.attribution_counts().is_empty() {
        return Vec::new();
    }
    crate::attribution::RATIOS
        .iter()
        .map(|&(name, f)| {
            let (ua, ub) = (a.attribution_units(f), b.attribution_units(f));
            let t = stats::diff_test(&ua, &ub, reps, seed);
            let mut m = Metric::from_diff_test(name, &t, ua.len() as u64, ub.len() as u64, reps);
            if t.a.is_finite() && t.b.is_finite() {
                m.effect = Some(round6(stats::cohens_h(t.a, t.b)));
            }
            m
        })
        .collect()
}

/// Name of the frame-distribution divergence row.
pub const FRAMES_JSD: &str = "frames_jsd";

/// The `frames_jsd` row: Jensen–Shannon divergence (bits) between the two sources' frame
/// distributions (mean P(frame) over articles, normalised to sum to 1), in `diff`; `a` and `b`
/// are undefined (NaN, JSON `null`). With at least 2 articles with frames on each side, `ci`
/// is a percentile bootstrap over articles (resampled within each source; seeded). `None` when
/// a side has no frame scores (no frames head).
fn frames_jsd_row(a: &SourceSums, b: &SourceSums, reps: usize, seed: u64) -> Option<Metric> {
    use crate::aggregate::mean_vector;
    use rand::Rng;
    let (fa, fb) = (a.frame_vectors(), b.frame_vectors());
    if fa.is_empty() || fb.is_empty() {
        return None;
    }
    let d = stats::jsd(&mean_vector(&fa), &mean_vector(&fb));
    let mut notes = vec![
        "diff is the Jensen-Shannon divergence in bits between the two frame distributions \
         (0 = identical, 1 = disjoint); a and b do not apply"
            .to_string(),
    ];
    let ci = if fa.len() >= 2 && fb.len() >= 2 && reps > 0 {
        let mut rng = stats::rng(seed);
        let mut draws: Vec<f64> = (0..reps)
            .map(|_| {
                let ra: Vec<&[f64]> = (0..fa.len())
                    .map(|_| fa[rng.gen_range(0..fa.len())])
                    .collect();
                let rb: Vec<&[f64]> = (0..fb.len())
                    .map(|_| fb[rng.gen_range(0..fb.len())])
                    .collect();
                stats::jsd(&mean_vector(&ra), &mean_vector(&rb))
            })
            .filter(|x| x.is_finite())
            .collect();
        draws.sort_by(f64::total_cmp);
        notes.push(
            "the bootstrap interval is biased upwards (resampling noise adds divergence), so \
             an interval that does not reach 0 is not by itself evidence of a difference"
                .into(),
        );
        (!draws.is_empty()).then(|| {
            [
                round6(stats::percentile_sorted(&draws, 0.025)),
                round6(stats::percentile_sorted(&draws, 0.975)),
            ]
        })
    } else {
        notes.push(format!(
            "too few articles for an interval over articles (a: {}, b: {}; each side needs at \
             least 2)",
            fa.len(),
            fb.len()
        ));
        None
    };
    Some(Metric {
        name: FRAMES_JSD.to_string(),
        a: f64::NAN,
        b: f64::NAN,
        diff: round6(d),
        ci,
        p: None,
        effect: None,
        sentence_test: None,
        note: Some(notes.join("; ")),
    })
}

/// Caveats about one side's size, in words.
fn side_notes(s: Side, notes: &mut Vec<String>) {
    let name = s.name;
    match s.articles {
        0 => notes.push(format!(
            "source {name} has no articles: its values are undefined and nothing can be compared"
        )),
        1 => notes.push(format!(
            "source {name} has 1 article: no interval or p-value over articles can be \
             computed; read the difference as descriptive"
        )),
        n if n < FEW_ARTICLES => notes.push(format!(
            "source {name} has only {n} articles: intervals over articles are wide and \
             unstable with fewer than {FEW_ARTICLES} articles per source"
        )),
        _ => {}
    }
    if s.articles > 0 && s.sentences == 0 {
        notes.push(format!(
            "source {name} has no sentences: its values are undefined"
        ));
    }
}

/// Compare source `b` with source `a` (differences are `b − a`).
///
/// `reps` is the number of bootstrap resamples and of permutations per row ([`DEFAULT_REPS`]),
/// `seed` the seed of both streams ([`DEFAULT_SEED`]); every row uses the same seed, so the
/// same articles are drawn for every measure. The result depends only on the inputs, not on
/// the order of articles within a source (units are sorted by article id).
pub fn compare(
    a_name: &str,
    a: &SourceSums,
    b_name: &str,
    b: &SourceSums,
    reps: usize,
    seed: u64,
) -> Comparison {
    let side = |name, s: &SourceSums| Side {
        name,
        articles: s.articles.len() as u64,
        sentences: s.articles.iter().map(|x| x.sentences).sum(),
    };
    let (sa, sb) = (side(a_name, a), side(b_name, b));

    let mut metrics = vec![
        loaded_share_row(a, b, sa, sb, reps, seed),
        mean_loaded_row(a, b, sa, sb, reps, seed),
    ];
    metrics.extend(frames_jsd_row(a, b, reps, seed));
    metrics.extend(attribution_rows(a, b, reps, seed));
    let attribution = match (a.attribution_profile(), b.attribution_profile()) {
        (Some(pa), Some(pb)) => Some(AttributionSides { a: pa, b: pb }),
        _ => None,
    };

    let mut notes = Vec::new();
    side_notes(sa, &mut notes);
    side_notes(sb, &mut notes);

    Comparison {
        a: a_name.to_string(),
        b: b_name.to_string(),
        a_articles: sa.articles,
        b_articles: sb.articles,
        a_sentences: sa.sentences,
        b_sentences: sb.sentences,
        metrics,
        distinctive: terms::distinctive(&a.terms, &b.terms, terms::DEFAULT_TOP_TERMS),
        actors: crate::actors::report(
            &[
                (a_name.to_string(), a.actors.clone()),
                (b_name.to_string(), b.actors.clone()),
            ]
            .into_iter()
            .collect(),
            crate::actors::DEFAULT_MAIN_ACTORS,
        ),
        attribution,
        notes,
        reps,
        seed,
    }
}

#[cfg(test)]
mod tests;
