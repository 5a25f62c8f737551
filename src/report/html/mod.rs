//! The HTML report: one self-contained file (inline CSS, inline SVG, a few lines of vanilla
//! JavaScript, no network) built from the same aggregates that the JSON outputs serialise:
//! [`SourceProfile`]s, [`ActorReport`]s and a [`Comparison`]. Nothing is computed here but
//! chart geometry; every number shown is a field of those structs, formatted.
//!
//! Templates are [`maud`]: compile-time HTML whose every interpolated value is escaped, so
//! article text, titles, source names and URLs cannot inject markup. The page's
//! Content-Security-Policy allows no network at all and only the report's own script (by its
//! SHA-256), so even a missed escape could not run code.

pub mod charts;
pub mod text;

use std::collections::BTreeMap;

use base64::Engine;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};

use crate::actors::ActorReport;
use crate::aggregate::{CiMethod, SourceProfile, MIN_ARTICLES_FOR_BOOTSTRAP};
use crate::compare::Comparison;
use crate::dataset::sample::SampledArticle;
use crate::dataset::Manifest;
use crate::ingest::RecordError;
use crate::pipeline::records::SentenceRecord;
use crate::vocab::FRAMES;

use charts::Scale;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Record errors listed in the overview (the rest are counted).
const ERRORS_LISTED: usize = 20;

/// Everything the report shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportData<'a> {
    pub profiles: &'a [SourceProfile],
    pub actors: &'a [ActorReport],
    /// The comparison of two sources, if one was made.
    pub comparison: Option<&'a Comparison>,
    /// Per source, its most loaded sentences.
    pub top: &'a BTreeMap<String, Vec<SentenceRecord>>,
    /// Per source, the sampled whole articles.
    pub sample: &'a BTreeMap<String, Vec<SampledArticle>>,
    /// Articles sampled per source (to say so).
    pub sample_per_source: usize,
    /// Evidence is shown for at most this many sources (those with the most articles).
    pub evidence_sources: usize,
    pub manifest: &'a Manifest,
    pub errors: &'a [RecordError],
}

/// A share and its 95% interval.
type WithCi = (f64, [f64; 2]);

/// A forest-plot column of the profile table: a share with its interval.
struct Col {
    key: &'static str,
    label: &'static str,
    help: &'static str,
    get: fn(&SourceProfile) -> Option<WithCi>,
}

const COLS: [Col; 4] = [
    Col {
        key: "loaded_share",
        label: "Loaded share",
        help: "share of sentences the loaded-language head flags",
        get: |p| Some((p.loaded_share, p.loaded_share_ci)),
    },
    Col {
        key: "attribution_rate",
        label: "Attribution rate",
        help: "share of sentences that attribute a claim to someone",
        get: |p| {
            p.attribution
                .as_ref()
                .map(|a| (a.attribution_rate, a.attribution_rate_ci))
        },
    },
    Col {
        key: "loaded_cue_share",
        label: "Loaded-cue share",
        help: "share of attribution cue verbs that are evaluative (claimed, admitted, …)",
        get: |p| {
            p.attribution
                .as_ref()
                .map(|a| (a.loaded_cue_share, a.loaded_cue_share_ci))
        },
    },
    Col {
        key: "unattributed_share",
        label: "Unattributed share",
        help: "share of sentences asserting in the outlet's own voice",
        get: |p| {
            p.attribution
                .as_ref()
                .map(|a| (a.unattributed_share, a.unattributed_share_ci))
        },
    },
];

/// A frame's name for charts (the full name is in the row's title).
fn frame_label(f: &str) -> &str {
    match f {
        "Capacity_and_resources" => "Capacity & resources",
        "Crime_and_punishment" => "Crime & punishment",
        "Cultural_identity" => "Cultural identity",
        "External_regulation_and_reputation" => "External regulation",
        "Fairness_and_equality" => "Fairness & equality",
        "Health_and_safety" => "Health & safety",
        "Legality_Constitutionality_and_jurisprudence" => "Legality",
        "Policy_prescription_and_evaluation" => "Policy",
        "Public_opinion" => "Public opinion",
        "Quality_of_life" => "Quality of life",
        "Security_and_defense" => "Security & defense",
        other => other,
    }
}

/// A comparison metric's name in words.
fn metric_label(name: &str) -> &str {
    match name {
        "loaded_share" => "Loaded share",
        "mean_loaded" => "Mean P(loaded)",
        "frames_jsd" => "Frame divergence (JSD, bits)",
        "attribution_rate" => "Attribution rate",
        "loaded_cue_share" => "Loaded-cue share",
        "unattributed_share" => "Unattributed share",
        other => other,
    }
}

fn f3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "–".into()
    }
}

fn ci3(ci: [f64; 2]) -> String {
    format!("[{}, {}]", f3(ci[0]), f3(ci[1]))
}

fn p3(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        f3(p)
    }
}

fn pct(v: f64) -> String {
    format!("{:.0}%", 100.0 * v)
}

/// The page's Content-Security-Policy: nothing from the network, only this script.
fn csp() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS.as_bytes()));
    format!(
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; \
         base-uri 'none'; form-action 'none'"
    )
}

/// A link for `http(s)` URLs; any other URL (`javascript:`, `data:`, …) is shown as text only.
fn url(u: &str) -> Markup {
    let lower = u.trim_start().to_ascii_lowercase();
    html! {
        @if lower.starts_with("https://") || lower.starts_with("http://") {
            a href=(u) rel="noopener noreferrer nofollow" { (u) }
        } @else {
            span.url { (u) }
        }
    }
}

/// The report as one HTML document.
pub fn render(d: &ReportData) -> String {
    let sources = d.profiles.len();
    let articles: u64 = d.profiles.iter().map(|p| p.articles).sum();
    let title = format!(
        "slant report: {articles} article{} from {sources} source{}",
        if articles == 1 { "" } else { "s" },
        if sources == 1 { "" } else { "s" }
    );
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="Content-Security-Policy" content=(csp());
                meta name="generator" content=(format!("slant {}", d.manifest.slant_version));
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                a.skip href="#main" { "Skip to the report" }
                header.top {
                    h1 { "slant report" }
                    p { (title) @if let Some(c) = d.comparison { ", comparing " b { (c.a) } " and " b { (c.b) } } "." }
                }
                nav.toc aria-label="Sections" {
                    a href="#overview" { "Overview" }
                    a href="#profiles" { "Profiles" }
                    @if d.profiles.iter().any(|p| !p.frames.is_empty()) { a href="#frames" { "Frames" } }
                    @if d.profiles.iter().any(|p| p.attribution.is_some()) { a href="#voices" { "Who is quoted" } }
                    @if !d.actors.is_empty() { a href="#actors" { "Actors" } }
                    @if d.comparison.is_some() { a href="#compare" { "Compare" } }
                    a href="#evidence" { "Evidence" }
                }
                main #main {
                    (overview(d))
                    (profiles(d))
                    (frames(d.profiles))
                    (voices(d.profiles))
                    (actors(d.actors))
                    @if let Some(c) = d.comparison { (compare(c, d)) }
                    (evidence(d))
                }
                script { (PreEscaped(JS)) }
            }
        }
    };
    page.into_string()
}

fn overview(d: &ReportData) -> Markup {
    let m = d.manifest;
    let few: Vec<&str> = d
        .profiles
        .iter()
        .filter(|p| p.ci_method == CiMethod::WilsonSentences)
        .map(|p| p.source.as_str())
        .collect();
    html! {
        section #overview aria-labelledby="h-overview" {
            h2 #h-overview { "Overview" }
            div.cards {
                div.card data-count="articles" { b { (m.articles) } "articles" }
                div.card data-count="sentences" { b { (m.sentences) } "sentences" }
                div.card data-count="sources" { b { (d.profiles.len()) } "sources" }
                div.card data-count="record_errors" { b { (d.errors.len()) } "record errors" }
                div.card data-count="truncated" { b { (m.truncated_sentences) } "sentences cut at " (m.max_tokens) " tokens" }
            }
            h3 { "How to read the numbers" }
            dl.read {
                dt { "Loaded share" }
                dd { "The share of a source's sentences whose probability of loaded language (from the sentence head) is at least "
                     (format!("{:.2}", m.loaded_threshold)) ". Loaded language means wording that carries a judgement beyond the facts it reports (\"slammed\", \"regime\", \"disastrous\"); it is a property of words, not a verdict on the outlet's accuracy or its politics. The head was trained on sentence-level labels (BABE and anno-lexical), so treat the level as indicative and the differences between sources as the finding." }
                dt { "Attribution rate, loaded-cue share, unattributed share" }
                dd { "The share of sentences that attribute content to a source (\"X said …\", \"according to X\"); among the cue verbs, the share that are evaluative (\"claimed\", \"admitted\", \"insisted\") rather than neutral (\"said\"); and the share of sentences that assert something in the outlet's own voice, with no attribution and outside any quote." }
                dt { "Intervals" }
                dd { "Every ± is a 95% interval. For a source with at least " (MIN_ARTICLES_FOR_BOOTSTRAP) " articles it is a percentile bootstrap over articles (2,000 resamples, fixed seed): articles, not sentences, are the independent units. For a source with fewer articles it is a Wilson interval over sentences, which treats sentences as independent and is therefore too narrow."
                     @if !few.is_empty() { " Sources here with such intervals: " (if few.len() > 6 { format!("{} sources", few.len()) } else { few.join(", ") }) "." } }
                dt { "Differences, p-values and effect sizes" }
                dd { "In the comparison, each difference (b − a) has a bootstrap interval over articles and a permutation p-value (articles relabelled between the two sources); the effect size is Cohen's h for shares. Distinctive terms are log-odds ratios with an informative Dirichlet prior (Monroe et al. 2008), as z-scores: |z| > 1.96 is p < 0.05 for one term, uncorrected for the many terms looked at. Frame divergence is the Jensen–Shannon divergence (bits) between the two sources' mean frame distributions." }
                dt { "Who is quoted, actors" }
                dd { "Share of voice is a speaker's share of a source's attributions that name a speaker. Actors are the most mentioned names of the corpus; their labels are the descriptive phrases each source uses beside the name." }
            }
            h3 { "Run" }
            table.kv {
                tbody {
                    tr { td { "slant" } td { (m.slant_version) " " code { (m.git_commit) } } }
                    tr { td { "encoder" } td { (m.encoder) @if let Some(p) = &m.precision { " (" (p) ")" } br; code.hash { "sha256 " (m.encoder_sha256) } } }
                    tr { td { "loaded head" } td { code.hash { "sha256 " (m.loaded_head_sha256) } " · threshold " (format!("{:.2}", m.loaded_threshold)) } }
                    tr { td { "inputs" } td { (m.inputs.join(", ")) } }
                    tr { td { "schema" } td { "version " (m.schema_version) } }
                }
            }
            @if !d.errors.is_empty() {
                h3 { "Record errors" }
                p.note { (d.errors.len()) " record(s) could not be read and are not counted." @if d.errors.len() > ERRORS_LISTED { " The first " (ERRORS_LISTED) ":" } }
                ul.errors {
                    @for e in d.errors.iter().take(ERRORS_LISTED) {
                        li { (e.record) @if let Some(id) = &e.id { " (id " (id) ")" } ": " (e.message) }
                    }
                }
            }
        }
    }
}

fn profiles(d: &ReportData) -> Markup {
    let cols: Vec<&Col> = COLS
        .iter()
        .filter(|c| d.profiles.iter().any(|p| (c.get)(p).is_some()))
        .collect();
    let scales: Vec<Scale> = cols
        .iter()
        .map(|c| {
            Scale::shares(
                d.profiles
                    .iter()
                    .filter_map(|p| (c.get)(p))
                    .flat_map(|(v, ci)| [v, ci[1]]),
                charts::CELL_W,
            )
        })
        .collect();
    html! {
        section #profiles aria-labelledby="h-profiles" {
            h2 #h-profiles { "Per-source profiles" }
            p.note { "Each dot is a source's value, the line its 95% interval; every column has one axis for all sources. Sort by any column with its heading button." }
            div style="overflow-x: auto" {
            table.sortable.forest #profile-table {
                thead {
                    tr {
                        th scope="col" aria-sort="none" { button type="button" data-key="source" { "Source" } }
                        th.num scope="col" aria-sort="none" { button type="button" data-key="articles" { "Articles" } }
                        th.num scope="col" aria-sort="none" { button type="button" data-key="sentences" { "Sentences" } }
                        @for (c, s) in cols.iter().zip(&scales) {
                            th scope="col" aria-sort="none" title=(c.help) {
                                button type="button" data-key=(c.key) { (c.label) }
                                br; (charts::axis(s))
                            }
                        }
                    }
                }
                tbody {
                    @for p in d.profiles {
                        tr data-source=(p.source) data-articles=(p.articles) data-sentences=(p.sentences)
                           data-loaded_share=(p.loaded_share)
                           data-attribution_rate=[p.attribution.as_ref().map(|a| a.attribution_rate)]
                           data-loaded_cue_share=[p.attribution.as_ref().map(|a| a.loaded_cue_share)]
                           data-unattributed_share=[p.attribution.as_ref().map(|a| a.unattributed_share)] {
                            td.src { (p.source) }
                            td.num data-metric="articles" data-value=(p.articles) { (p.articles) }
                            td.num data-metric="sentences" data-value=(p.sentences) { (p.sentences) }
                            @for (c, s) in cols.iter().zip(&scales) {
                                @if let Some((v, ci)) = (c.get)(p) {
                                    td.plot data-metric=(c.key) data-value=(v) data-lo=(ci[0]) data-hi=(ci[1]) {
                                        (charts::dot_ci(s, v, Some(ci), &format!("{}: {} {}, 95% interval {}", p.source, c.label, f3(v), ci3(ci))))
                                        span.val { span.v { (f3(v)) } " " span.muted { (ci3(ci)) } }
                                    }
                                } @else {
                                    td.plot.muted { "–" }
                                }
                            }
                        }
                    }
                }
            }
            }
            @if d.profiles.iter().any(|p| p.loaded_term_share.is_some()) {
                h3 { "Loaded terms" }
                p.note { "From the span head: the share of sentences with at least one loaded word or phrase, and the most frequent ones." }
                table #loaded-terms {
                    thead { tr { th { "Source" } th.num { "Share with a loaded span" } th { "Most frequent loaded terms" } } }
                    tbody {
                        @for p in d.profiles {
                            @if let Some(s) = p.loaded_term_share {
                                tr data-source=(p.source) {
                                    td { (p.source) }
                                    td.num data-metric="loaded_term_share" data-value=(s) { (f3(s)) }
                                    td { (p.loaded_terms.iter().take(8).map(|t| format!("{} ({})", t.term, t.count)).collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn frames(profiles: &[SourceProfile]) -> Markup {
    let with: Vec<&SourceProfile> = profiles.iter().filter(|p| !p.frames.is_empty()).collect();
    if with.is_empty() {
        return html! {};
    }
    let s = Scale::shares(with.iter().flat_map(|p| p.frames.values().copied()), 130.0);
    html! {
        section #frames aria-labelledby="h-frames" {
            h2 #h-frames { "Frames" }
            p.note { "Mean probability of each of the 14 Media Frames Corpus frames over a source's articles (frames are not exclusive, so they do not sum to 1). One panel per source, all on one scale from 0 to " (format!("{:.1}", s.hi)) "." }
            div.multiples {
                @for p in &with {
                    figure data-source=(p.source) {
                        figcaption { (p.source) " · " (p.articles) " articles" }
                        table.bars {
                            tbody {
                                @for f in FRAMES {
                                    @let v = p.frames.get(f as &str).copied().unwrap_or(0.0);
                                    tr title=(f) {
                                        td { (frame_label(f)) }
                                        td { (charts::bar(&s, v, "b-blue", &format!("{}: {f} {}", p.source, f3(v)))) }
                                        td.num data-metric=(format!("frame:{f}")) data-value=(v) { (f3(v)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn voices(profiles: &[SourceProfile]) -> Markup {
    let with: Vec<&SourceProfile> = profiles
        .iter()
        .filter(|p| p.attribution.is_some())
        .collect();
    if with.is_empty() {
        return html! {};
    }
    let s = Scale::new(0.0, 1.0, 140.0);
    html! {
        section #voices aria-labelledby="h-voices" {
            h2 #h-voices { "Who is quoted" }
            p.note { "Share of voice: each speaker's share of the attributions that name a speaker, per source; and the cue verbs used, with their stance." }
            div.multiples {
                @for p in &with {
                    @let a = p.attribution.as_ref().expect("filtered");
                    figure data-source=(p.source) {
                        figcaption { (p.source) " · " (a.cues) " attributions" }
                        @if a.speakers.is_empty() {
                            p.muted { "No named speakers." }
                        } @else {
                            table.bars {
                                tbody {
                                    @for sp in &a.speakers {
                                        tr {
                                            td { (sp.speaker) }
                                            td { (charts::bar(&s, sp.share_of_voice, "b-green", &format!("{}: {} {}", p.source, sp.speaker, pct(sp.share_of_voice)))) }
                                            td.num data-metric=(format!("voice:{}", sp.speaker)) data-value=(sp.share_of_voice) { (pct(sp.share_of_voice)) " (" (sp.attributions) ")" }
                                        }
                                    }
                                }
                            }
                        }
                        @if !a.top_cues.is_empty() {
                            p.muted { "Cues: " (a.top_cues.iter().take(6).map(|c| format!("{} {} ({})", c.lemma, c.count, c.stance)).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

fn label_list(labels: &[crate::actors::LabelCount], n: usize) -> String {
    if labels.is_empty() {
        return "–".into();
    }
    labels
        .iter()
        .take(n)
        .map(|l| format!("{} ({})", l.label, l.count))
        .collect::<Vec<_>>()
        .join(", ")
}

fn actors(actors: &[ActorReport]) -> Markup {
    if actors.is_empty() {
        return html! {};
    }
    html! {
        section #actors aria-labelledby="h-actors" {
            h2 #h-actors { "How each source labels the main actors" }
            p.note { "The most mentioned names of the corpus and the descriptive phrases each source uses for them, with counts." }
            @for a in actors {
                h3 { (a.actor) span.muted { " · " (a.articles) " articles, " (a.mentions) " mentions" } }
                table.actor data-actor=(a.actor) {
                    thead { tr { th { "Source" } th.num { "Mentions" } th { "Labels" } } }
                    tbody {
                        @for s in &a.by_source {
                            tr data-source=(s.source) {
                                td { (s.source) }
                                td.num { (s.mentions) }
                                td { (label_list(&s.labels, 6)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn compare(c: &Comparison, d: &ReportData) -> Markup {
    let s = Scale::symmetric(
        c.metrics.iter().flat_map(|m| {
            [
                m.diff,
                m.ci.map_or(0.0, |x| x[0]),
                m.ci.map_or(0.0, |x| x[1]),
            ]
        }),
        charts::CELL_W * 1.4,
    );
    let pa = d.profiles.iter().find(|p| p.source == c.a);
    let pb = d.profiles.iter().find(|p| p.source == c.b);
    let rows: Vec<charts::TermRow> = (0..c.distinctive.a.len().max(c.distinctive.b.len()))
        .map(|i| charts::TermRow {
            a: c.distinctive.a.get(i).map(|t| (t.term.as_str(), t.z)),
            b: c.distinctive.b.get(i).map(|t| (t.term.as_str(), t.z)),
        })
        .collect();
    html! {
        section #compare aria-labelledby="h-compare" {
            h2 #h-compare { "Compare " (c.a) " and " (c.b) }
            p { b { (c.a) } " (a): " (c.a_articles) " articles, " (c.a_sentences) " sentences · "
                b { (c.b) } " (b): " (c.b_articles) " articles, " (c.b_sentences) " sentences · "
                (c.reps) " resamples, seed " (c.seed) "." }
            table #compare-table {
                thead {
                    tr {
                        th { "Metric" } th.num { "a" } th.num { "b" } th.num { "b − a" }
                        th { "Difference, 95% interval" br; (charts::axis(&s)) }
                        th.num { "p (permutation)" } th.num { "Effect (Cohen's h)" } th { "Note" }
                    }
                }
                tbody {
                    @for m in &c.metrics {
                        tr data-metric=(m.name) data-diff=(m.diff) data-p=[m.p] data-effect=[m.effect] {
                            td { (metric_label(&m.name)) }
                            td.num data-value=(m.a) { (f3(m.a)) }
                            td.num data-value=(m.b) { (f3(m.b)) }
                            td.num.diff data-value=(m.diff) { (f3(m.diff)) }
                            td.plot { (charts::dot_ci(&s, m.diff, m.ci, &format!("{}: difference {}, 95% interval {}", metric_label(&m.name), f3(m.diff), m.ci.map_or("none".into(), ci3)))) " " span.muted { (m.ci.map_or("–".into(), ci3)) } }
                            td.num { (m.p.map_or("–".into(), p3)) }
                            td.num { (m.effect.map_or("–".into(), f3)) }
                            td.note { (m.note.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if let (Some(pa), Some(pb)) = (pa, pb) {
                @if !pa.frames.is_empty() && !pb.frames.is_empty() {
                    @let fs = Scale::shares(pa.frames.values().chain(pb.frames.values()).copied(), 150.0);
                    h3 { "Frames side by side" }
                    table.bars #compare-frames {
                        thead { tr { th { "Frame" } th colspan="2" { (c.a) } th colspan="2" { (c.b) } } }
                        tbody {
                            @for f in FRAMES {
                                @let (va, vb) = (pa.frames.get(f as &str).copied().unwrap_or(0.0), pb.frames.get(f as &str).copied().unwrap_or(0.0));
                                tr title=(f) {
                                    td { (frame_label(f)) }
                                    td { (charts::bar(&fs, va, "b-blue", &format!("{}: {f} {}", c.a, f3(va)))) } td.num { (f3(va)) }
                                    td { (charts::bar(&fs, vb, "b-orange", &format!("{}: {f} {}", c.b, f3(vb)))) } td.num { (f3(vb)) }
                                }
                            }
                        }
                    }
                }
            }
            @if !rows.is_empty() {
                h3 { "Distinctive terms" }
                p.note { "Words each source uses more than the other (log-odds ratio with an informative Dirichlet prior, as z; dashed lines at |z| = 1.96)." }
                figure #distinctive { (charts::two_sided(&rows, &c.a, &c.b)) }
            }
            @if !c.actors.is_empty() {
                h3 { "How each labels the main actors" }
                table #compare-actors {
                    thead { tr { th { "Actor" } th { (c.a) } th { (c.b) } } }
                    tbody {
                        @for a in &c.actors {
                            @let side = |name: &str| a.by_source.iter().find(|s| s.source == name).map_or("–".to_string(), |s| format!("{} mentions: {}", s.mentions, label_list(&s.labels, 5)));
                            tr { td { (a.actor) } td { (side(&c.a)) } td { (side(&c.b)) } }
                        }
                    }
                }
            }
            @if !c.notes.is_empty() {
                ul.note { @for n in &c.notes { li { (n) } } }
            }
        }
    }
}

fn legend() -> Markup {
    html! {
        div.legend aria-label="Legend" {
            span { span.m-loaded { "word" } sub.tag.m-loaded { "loaded" } " loaded span (span head)" }
            span { span.m-source { "Officials" } sub.tag.m-source { "source" } " who is cited" }
            span { span.m-cue { "said" } sub.tag.m-cue { "cue: neutral" } " cue verb and its stance" }
            span { span.m-content { "the talks failed" } sub.tag.m-content { "content" } " what is attributed" }
            span { span.s-loaded { "Sentence" } sup.badge { "0.91" } " sentence flagged loaded, with P(loaded)" }
        }
    }
}

fn sentence(r: &SentenceRecord) -> Markup {
    html! {
        span class=(if r.loaded_label { "s s-loaded" } else { "s" }) data-index=(r.index) title=(format!("sentence {} · P(loaded) {}", r.index + 1, f3(r.loaded))) {
            (text::marked(r))
        }
        @if r.loaded_label { sup.badge { (format!("{:.2}", r.loaded)) } }
        " "
    }
}

fn evidence(d: &ReportData) -> Markup {
    let mut order: Vec<&SourceProfile> = d.profiles.iter().collect();
    order.sort_by(|x, y| y.articles.cmp(&x.articles).then(x.source.cmp(&y.source)));
    let mut shown: Vec<&SourceProfile> = order.into_iter().take(d.evidence_sources).collect();
    shown.sort_by(|x, y| x.source.cmp(&y.source));
    let left = d.profiles.len() - shown.len();
    let empty = Vec::new();
    html! {
        section #evidence aria-labelledby="h-evidence" {
            h2 #h-evidence { "Evidence" }
            p.note { "The sentences behind the numbers: each source's most loaded sentences, and a sample of its articles ("
                (d.sample_per_source) " per source, the same for every run: those whose ids have the smallest SHA-256) shown whole, with loaded spans and attributions marked."
                @if left > 0 { " Evidence is shown for the " (shown.len()) " sources with the most articles; " (left) " more are in the tables above." } }
            (legend())
            @for p in &shown {
                @let top = d.top.get(&p.source).unwrap_or(&empty);
                @let sample = d.sample.get(&p.source);
                div.source-evidence data-source=(p.source) {
                    h3 { (p.source) }
                    @if !top.is_empty() {
                        p.muted { "Most loaded sentences (P(loaded), article):" }
                        ol.top {
                            @for r in top {
                                li data-loaded=(r.loaded) {
                                    span.p { (f3(r.loaded)) } " " (text::marked(r)) " " span.muted { "— " (r.article) ", sentence " (r.index + 1) }
                                }
                            }
                        }
                    }
                    @if let Some(arts) = sample {
                        p.muted { "Sampled articles (" (arts.len()) " of " (p.articles) "):" }
                        @for a in arts {
                            @let loaded = a.sentences.iter().filter(|s| s.loaded_label).count();
                            details.article data-article=(a.id) {
                                summary {
                                    (a.title.as_deref().unwrap_or(&a.id))
                                    span.muted { " · " @if let Some(dt) = &a.date { (dt) " · " } (a.sentences.len()) " sentences, " (loaded) " loaded" }
                                }
                                p.muted { "id " code { (a.id) } @if let Some(u) = &a.url { " · " (url(u)) } }
                                p.body { @for s in &a.sentences { (sentence(s)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
