use super::*;
use crate::aggregate::Corpus;
use crate::pipeline::records::ArticleSummary;

const EVIL_SOURCE: &str = "<img src=x onerror=alert(1)>";
const EVIL_TITLE: &str = "\" onmouseover=\"alert(2)";
const EVIL_TEXT: &str = "They said <script>alert(3)</script> happened.";

fn manifest() -> Manifest {
    Manifest {
        schema_version: crate::pipeline::records::SCHEMA_VERSION,
        slant_version: "0.0.0".into(),
        git_commit: "abc".into(),
        encoder: "enc".into(),
        encoder_sha256: "00".into(),
        loaded_head_sha256: "11".into(),
        loaded_threshold: 0.5,
        max_tokens: 128,
        batch_size: 8,
        inputs: vec!["corpus.jsonl".into()],
        articles: 12,
        sentences: 36,
        truncated_sentences: 0,
        record_errors: 1,
        precision: None,
        shard: None,
    }
}

fn sentence(article: &str, source: &str, index: usize, loaded: f64) -> SentenceRecord {
    SentenceRecord {
        article: article.into(),
        source: source.into(),
        index,
        start: index * 100,
        end: index * 100 + EVIL_TEXT.len(),
        text: EVIL_TEXT.into(),
        loaded,
        loaded_label: loaded >= 0.5,
        ..Default::default()
    }
}

struct Fixture {
    profiles: Vec<SourceProfile>,
    actors: Vec<ActorReport>,
    comparison: Comparison,
    top: BTreeMap<String, Vec<SentenceRecord>>,
    sample: BTreeMap<String, Vec<SampledArticle>>,
    manifest: Manifest,
    errors: Vec<RecordError>,
}

fn fixture() -> Fixture {
    let mut corpus = Corpus::default();
    let mut top = BTreeMap::new();
    let mut sample = BTreeMap::new();
    for (k, source) in ["plain", EVIL_SOURCE].iter().enumerate() {
        for i in 0..6 {
            let id = format!("{k}-{i}");
            let recs: Vec<SentenceRecord> = (0..3)
                .map(|j| sentence(&id, source, j, if (i + j + k) % 3 == 0 { 0.9 } else { 0.1 }))
                .collect();
            corpus.push(ArticleSummary::from_records(&id, source, &recs));
            if i == 0 {
                top.insert(source.to_string(), vec![recs[0].clone()]);
                sample.insert(
                    source.to_string(),
                    vec![SampledArticle {
                        id: id.clone(),
                        source: source.to_string(),
                        title: Some(EVIL_TITLE.into()),
                        date: None,
                        url: Some("javascript:alert(4)".into()),
                        sentences: recs,
                    }],
                );
            }
        }
    }
    let profiles = corpus.profiles();
    let s = &corpus.sources;
    let comparison =
        crate::compare::compare("plain", &s["plain"], EVIL_SOURCE, &s[EVIL_SOURCE], 200, 1);
    Fixture {
        profiles,
        actors: corpus.actor_report(5),
        comparison,
        top,
        sample,
        manifest: manifest(),
        errors: vec![RecordError {
            record: "corpus.jsonl:3".into(),
            id: Some("<b>bad</b>".into()),
            message: "missing field `text`".into(),
        }],
    }
}

fn render_fixture(f: &Fixture) -> String {
    render(&ReportData {
        profiles: &f.profiles,
        actors: &f.actors,
        comparison: Some(&f.comparison),
        top: &f.top,
        sample: &f.sample,
        sample_per_source: 1,
        evidence_sources: 10,
        manifest: &f.manifest,
        errors: &f.errors,
    })
}

#[test]
fn hostile_text_is_escaped_everywhere() {
    let f = fixture();
    let html = render_fixture(&f);
    assert!(!html.contains(EVIL_SOURCE), "source name unescaped");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<script>alert"), "article text unescaped");
    assert!(html.contains("&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert!(!html.contains(EVIL_TITLE), "title unescaped");
    assert!(!html.contains("<b>bad</b>"), "record error id unescaped");
    // A javascript: URL is shown as text, never as a link.
    assert!(
        !html.contains("href=\"javascript:"),
        "javascript: URL became a link"
    );
    assert!(html.contains("<span class=\"url\">javascript:alert(4)</span>"));
    // Exactly one script element: the report's own.
    assert_eq!(html.matches("<script").count(), 1);
}

#[test]
fn csp_allows_only_the_reports_script() {
    let html = render_fixture(&fixture());
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(JS.as_bytes()));
    assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains(&format!("<script>{JS}</script>")));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network reference"
    );
}

#[test]
fn every_section_and_every_source_is_there_with_its_numbers() {
    let f = fixture();
    let html = render_fixture(&f);
    for id in ["overview", "profiles", "compare", "evidence"] {
        assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
    }
    for p in &f.profiles {
        let src = maud::html! { (p.source) }.into_string();
        let cell = format!(
            "data-metric=\"loaded_share\" data-value=\"{}\" data-lo=\"{}\" data-hi=\"{}\"",
            p.loaded_share, p.loaded_share_ci[0], p.loaded_share_ci[1]
        );
        assert!(html.contains(&cell), "{src}: {cell}");
        assert!(html.contains(&format!("<span class=\"v\">{:.3}</span>", p.loaded_share)));
        assert!(html.contains(&format!(
            "<div class=\"source-evidence\" data-source=\"{src}\">"
        )));
    }
    let m = f.comparison.metric("loaded_share").unwrap();
    assert!(html.contains(&format!(
        "<tr data-metric=\"loaded_share\" data-diff=\"{}\"",
        m.diff
    )));
}

#[test]
fn evidence_is_bounded_to_the_largest_sources() {
    let f = fixture();
    let html = render(&ReportData {
        evidence_sources: 1,
        ..ReportData {
            profiles: &f.profiles,
            actors: &f.actors,
            comparison: None,
            top: &f.top,
            sample: &f.sample,
            sample_per_source: 1,
            evidence_sources: 10,
            manifest: &f.manifest,
            errors: &[],
        }
    });
    assert_eq!(html.matches("class=\"source-evidence\"").count(), 1);
    assert!(html.contains("1 more are in the tables above"));
    assert!(!html.contains("<section id=\"compare\""));
}
