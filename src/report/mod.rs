//! Report stage: everything slant prints for people and programs. The human tables of
//! `score` (per-source profiles) live in [`profiles_table`]; every subcommand prints its
//! evaluation or comparison reports through [`write_report`] (pretty JSON or the report's
//! own table).

pub mod compare;
pub mod html;
pub mod score;

use std::io::Write;

use crate::aggregate::SourceProfile;
use crate::pipeline::records::SentenceRecord;

/// How a report is printed: `Table` for people, `Json` (pretty, one document) for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStyle {
    Table,
    Json,
}

/// Write `report` to `out` as pretty JSON plus a newline, or as the table `table` renders.
pub fn write_report<R: serde::Serialize, W: Write>(
    out: &mut W,
    style: ReportStyle,
    report: &R,
    table: impl FnOnce(&R) -> String,
) -> std::io::Result<()> {
    match style {
        ReportStyle::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")?;
        }
        ReportStyle::Table => out.write_all(table(report).as_bytes())?,
    }
    out.flush()
}

fn fmt_ci(ci: [f64; 2]) -> String {
    format!("[{:.3}, {:.3}]", ci[0], ci[1])
}

/// The human table of `score`.
pub fn profiles_table(
    profiles: &[SourceProfile],
    sentences: &[SentenceRecord],
    top: usize,
    threshold: f32,
) -> String {
    let mut s = String::new();
    let w = profiles
        .iter()
        .map(|p| p.source.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    s.push_str(&format!(
        "{:<w$}  {:>8}  {:>9}  {:>12}  {:<16}  {:>11}  {:<16}\n",
        "source", "articles", "sentences", "loaded share", "95% CI", "mean loaded", "95% CI"
    ));
    for p in profiles {
        s.push_str(&format!(
            "{:<w$}  {:>8}  {:>9}  {:>12.3}  {:<16}  {:>11.3}  {:<16}\n",
            p.source,
            p.articles,
            p.sentences,
            p.loaded_share,
            fmt_ci(p.loaded_share_ci),
            p.mean_loaded,
            fmt_ci(p.mean_loaded_ci),
        ));
    }
    let few: Vec<&str> = profiles
        .iter()
        .filter(|p| {
            p.articles < crate::aggregate::MIN_ARTICLES_FOR_BOOTSTRAP as u64 && p.sentences > 0
        })
        .map(|p| p.source.as_str())
        .collect();
    s.push_str(&format!(
        "\nloaded share = share of sentences with P(loaded) >= {threshold:.2}.\n"
    ));
    if !few.is_empty() {
        s.push_str(&format!(
            "Intervals for sources with fewer than {} articles ({}) are over sentences and treat them as \
             independent, so they are too narrow; more articles per source give intervals over articles.\n",
            crate::aggregate::MIN_ARTICLES_FOR_BOOTSTRAP,
            if few.len() > 4 { format!("{} sources", few.len()) } else { few.join(", ") }
        ));
    }
    if profiles.iter().any(|p| !p.frames.is_empty()) {
        s.push_str("\nmost likely frames (mean P(frame) over the source's articles):\n");
        for p in profiles.iter().filter(|p| !p.frames.is_empty()) {
            let mut f: Vec<(&String, &f64)> = p.frames.iter().collect();
            f.sort_by(|x, y| y.1.total_cmp(x.1).then_with(|| x.0.cmp(y.0)));
            let top3: Vec<String> = f
                .iter()
                .take(3)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect();
            s.push_str(&format!("  {:<w$}  {}\n", p.source, top3.join(", ")));
        }
    }
    if profiles.iter().any(|p| p.attribution.is_some()) {
        s.push_str(
            "\nattributions (rate = sentences with one; loaded = share of evaluative cue verbs; \
             unattributed = assertions in the outlet's own voice):\n",
        );
        for p in profiles {
            let Some(a) = &p.attribution else { continue };
            let cues: Vec<String> = a
                .top_cues
                .iter()
                .take(4)
                .map(|c| format!("{} {}", c.lemma, c.count))
                .collect();
            let who: Vec<String> = a
                .speakers
                .iter()
                .take(3)
                .map(|x| format!("{} {:.0}%", x.speaker, 100.0 * x.share_of_voice))
                .collect();
            s.push_str(&format!(
                "  {:<w$}  rate {:.3}  loaded {:.3}  unattributed {:.3}  cues: {}  quoted: {}\n",
                p.source,
                a.attribution_rate,
                a.loaded_cue_share,
                a.unattributed_share,
                if cues.is_empty() {
                    "-".into()
                } else {
                    cues.join(", ")
                },
                if who.is_empty() {
                    "-".into()
                } else {
                    who.join(", ")
                },
            ));
        }
    }
    if profiles.iter().any(|p| p.loaded_term_share.is_some()) {
        s.push_str(
            "\nloaded terms (span head; share of sentences with any, most frequent terms):\n",
        );
        for p in profiles {
            let Some(share) = p.loaded_term_share else {
                continue;
            };
            let terms: Vec<String> = p
                .loaded_terms
                .iter()
                .take(5)
                .map(|t| format!("{} {}", t.term, t.count))
                .collect();
            s.push_str(&format!(
                "  {:<w$}  {:.3}  {}\n",
                p.source,
                share,
                terms.join(", ")
            ));
        }
    }
    if top > 0 && !sentences.is_empty() {
        if sentences.iter().any(|r| !r.loaded_spans.is_empty()) {
            s.push_str("\n[[...]] marks the loaded-language spans the span head found.\n");
        }
        for p in profiles {
            let mut v: Vec<&SentenceRecord> =
                sentences.iter().filter(|r| r.source == p.source).collect();
            v.sort_by(|x, y| {
                y.loaded
                    .total_cmp(&x.loaded)
                    .then_with(|| (&x.article, x.index).cmp(&(&y.article, y.index)))
            });
            s.push_str(&format!("\nmost loaded sentences of {}:\n", p.source));
            for r in v.into_iter().take(top) {
                let marked = r.marked_text();
                let text: String = if marked.chars().count() > 160 {
                    format!("{}…", marked.chars().take(159).collect::<String>())
                } else {
                    marked
                };
                s.push_str(&format!("  {:.3}  {}\n", r.loaded, text));
            }
        }
    }
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}
