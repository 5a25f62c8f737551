//! The human table of `slant compare` (its JSON is the [`Comparison`] itself).

use serde::Serialize;

use crate::compare::*;

/// `slant compare --format json`: the [`Comparison`] with the schema version in front.
#[derive(Debug, Serialize)]
pub struct CompareDocument<'a> {
    /// [`crate::pipeline::records::SCHEMA_VERSION`].
    pub schema_version: u32,
    #[serde(flatten)]
    pub comparison: &'a Comparison,
}

/// The side-by-side attribution section of the table ("" without attributions).
fn render_attribution(c: &Comparison) -> String {
    let Some(s) = &c.attribution else {
        return String::new();
    };
    let mut out = String::from(
        "
Attributions (cue verbs and who gets quoted):
",
    );
    out.push_str(
        format!(
            "  {:<34}  {:<34}",
            format!("a = {}", c.a),
            format!("b = {}", c.b)
        )
        .trim_end(),
    );
    out.push('\n');
    let cue = |p: &crate::attribution::AttributionProfile, i: usize| {
        p.top_cues
            .get(i)
            .map(|x| format!("{} ({}, {})", x.lemma, x.count, x.stance))
            .unwrap_or_default()
    };
    let spk = |p: &crate::attribution::AttributionProfile, i: usize| {
        p.speakers
            .get(i)
            .map(|x| {
                format!(
                    "{} ({}, {:.0}%)",
                    x.speaker,
                    x.attributions,
                    100.0 * x.share_of_voice
                )
            })
            .unwrap_or_default()
    };
    out.push_str("  top cue verbs (count, stance):\n");
    for i in 0..s.a.top_cues.len().max(s.b.top_cues.len()).min(5) {
        out.push_str(format!("    {:<32}  {:<34}\n", cue(&s.a, i), cue(&s.b, i)).trim_end());
        out.push('\n');
    }
    out.push_str("  who gets quoted (attributions, share of voice):\n");
    let n = s.a.speakers.len().max(s.b.speakers.len()).min(5);
    if n == 0 {
        out.push_str("    (no named speakers)\n");
    }
    for i in 0..n {
        out.push_str(format!("    {:<32}  {:<34}\n", spk(&s.a, i), spk(&s.b, i)).trim_end());
        out.push('\n');
    }
    out
}

/// The distinctive-terms section of the table ("" when no terms were counted).
fn render_distinctive(c: &Comparison) -> String {
    let d = &c.distinctive;
    if d.a.is_empty() && d.b.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nDistinctive terms (log-odds ratio with an informative Dirichlet prior, Monroe et al. \
         2008; z > 1.96 is p < 0.05 for one term, uncorrected for the many terms looked at):\n",
    );
    for (label, name, list) in [("a", &c.a, &d.a), ("b", &c.b, &d.b)] {
        out.push_str(&format!("  {label} = {name}:\n"));
        if list.is_empty() {
            out.push_str("    (none)\n");
            continue;
        }
        let w = list
            .iter()
            .map(|t| t.term.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "    {:<w$}  {:>7}  {:>7}  {:>7}\n",
            "term", "z", "count a", "count b"
        ));
        for t in list {
            out.push_str(&format!(
                "    {:<w$}  {:>7.2}  {:>7}  {:>7}\n",
                t.term, t.z, t.count_a, t.count_b
            ));
        }
    }
    out
}

/// A value for the table: 4 decimals, or `n/a` when missing or undefined.
fn fmt_val(x: Option<f64>, signed: bool) -> String {
    match x {
        Some(v) if v.is_finite() => {
            if signed {
                format!("{v:+.4}")
            } else {
                format!("{v:.4}")
            }
        }
        _ => "n/a".to_string(),
    }
}

/// "1 article, 12 sentences", "3 articles, 1 sentence", ...
fn counts(articles: u64, sentences: u64) -> String {
    let plural = |n: u64, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(articles, "article"),
        plural(sentences, "sentence")
    )
}

/// A p-value for the table: 4 decimals, `<0.0001` below that, `n/a` when missing.
fn fmt_p(p: Option<f64>) -> String {
    match p {
        Some(v) if v.is_finite() && v < 0.0001 => "<0.0001".to_string(),
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "n/a".to_string(),
    }
}

/// Human-readable table (fixed-width, for a terminal).
///
/// A header naming both sources with their article and sentence counts, one row per metric
/// with `a`, `b`, `diff` (b − a), its 95% CI over articles, the permutation p-value and the
/// effect size (Cohen's h, shares only), then a key, the sentence-level tests (labelled as
/// treating sentences as independent) and every note in words. Missing values print as `n/a`.
pub fn render_table(c: &Comparison) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "a = {} ({})\n",
        c.a,
        counts(c.a_articles, c.a_sentences)
    ));
    out.push_str(&format!(
        "b = {} ({})\n\n",
        c.b,
        counts(c.b_articles, c.b_sentences)
    ));

    let header = [
        "metric".to_string(),
        "a".to_string(),
        "b".to_string(),
        "diff (b-a)".to_string(),
        "95% CI of diff".to_string(),
        "p".to_string(),
        "effect h".to_string(),
    ];
    let rows: Vec<[String; 7]> = c
        .metrics
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                fmt_val(Some(m.a), false),
                fmt_val(Some(m.b), false),
                fmt_val(Some(m.diff), true),
                match m.ci {
                    Some([lo, hi]) => {
                        format!("[{}, {}]", fmt_val(Some(lo), true), fmt_val(Some(hi), true))
                    }
                    None => "n/a".to_string(),
                },
                fmt_p(m.p),
                fmt_val(m.effect, true),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 7]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == 0 {
                s.push_str(&format!("{cell:<w$}"));
            } else {
                s.push_str(&format!("  {cell:>w$}"));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&header));
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
    }

    out.push_str(&format!(
        "\nCI: percentile bootstrap over articles; p: permutation test over articles \
         ({} resamples, seed {}); effect h: Cohen's h (0.2 small, 0.5 medium, 0.8 large).\n",
        c.reps, c.seed
    ));

    let tests: Vec<String> = c
        .metrics
        .iter()
        .filter_map(|m| {
            m.sentence_test.as_ref().map(|t| {
                format!(
                    "{}: z = {:+.2}, p {} (treats sentences as independent, so this p is \
                     too small when sentences within an article are alike; prefer the p over \
                     articles)",
                    m.name,
                    t.z,
                    match fmt_p(Some(t.p)) {
                        s if s.starts_with('<') => format!("< {}", &s[1..]),
                        s => format!("= {s}"),
                    }
                )
            })
        })
        .collect();
    if !tests.is_empty() {
        out.push_str("\nSentence-level tests:\n");
        for t in tests {
            out.push_str(&format!("  {t}\n"));
        }
    }

    out.push_str(&render_distinctive(c));
    out.push_str(&crate::actors::render(&c.actors, 4));
    out.push_str(&render_attribution(c));

    let metric_notes = c
        .metrics
        .iter()
        .filter_map(|m| m.note.as_ref().map(|n| format!("{}: {n}", m.name)));
    let notes: Vec<String> = c.notes.iter().cloned().chain(metric_notes).collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in notes {
            out.push_str(&format!("  - {n}\n"));
        }
    }
    out
}
