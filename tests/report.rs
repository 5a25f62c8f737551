//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/install-test-deps.sh`) renders the seeds' report; the rendered DOM has every
//! section, every source, the numbers of the JSON outputs, a working sort and no console
//! error, and a screenshot is kept under the tests' temp dir (`CARGO_TARGET_TMPDIR`). A
//! hostile article renders as inert text. Skips (saying so) without the encoder or Chromium.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{p, slant};
use serde_json::Value;

const A: &str = "000_0ac7ef0ff899d3ba";
const B: &str = "003_4f504e27a0b360eb";

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return Some(PathBuf::from(path));
            }
        }
    }
    eprintln!("skipping: chromium not installed (bash scripts/install-test-deps.sh installs it)");
    None
}

/// Headless Chromium with a fresh profile in `profile` and the flags every run here needs;
/// the caller adds its own and the URL.
fn headless(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
    ])
    .arg(format!("--user-data-dir={}", p(profile)));
    c
}

fn run_chromium(mut c: Command) -> std::process::Output {
    let out = c.output().expect("cannot start chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Chromium's rendered DOM of `url` and what it logged (console messages included).
fn dump_dom(chromium: &Path, url: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut c = headless(chromium, profile.path());
    c.args(["--enable-logging=stderr", "--v=0", "--dump-dom", url]);
    let out = run_chromium(c);
    (
        String::from_utf8(out.stdout).expect("UTF-8 DOM"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn screenshot(chromium: &Path, url: &str, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let mut c = headless(chromium, profile.path());
    c.args(["--hide-scrollbars", "--window-size=1280,2400"])
        .arg(format!("--screenshot={}", p(png)))
        .arg(url);
    run_chromium(c);
}

/// Lines of Chromium's log that report a page error: an uncaught exception, a console error,
/// a Content-Security-Policy refusal.
fn page_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Refused to")
                || l.contains("Content Security Policy")
        })
        .collect()
}

fn file_url(path: &Path) -> String {
    format!("file://{}", p(&path.canonicalize().unwrap()))
}

/// The `data-value` of the element whose opening tag contains `attrs`.
fn cell_value(dom: &str, attrs: &str) -> Option<f64> {
    let at = dom.find(attrs)?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[dom[..at].rfind('<')?..tag_end];
    let v = tag.split("data-value=\"").nth(1)?.split('"').next()?;
    v.parse().ok()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn seeds_report_renders_in_chromium_with_the_json_numbers() {
    need_encoder!();
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scores = dir.path().join("seeds.jsonl");
    slant(&[
        "score",
        "seeds",
        "--format",
        "jsonl",
        "--out",
        p(&scores),
        "-q",
    ])
    .ok();
    let profile: Value = serde_json::from_str(
        &slant(&["profile", p(&scores), "--format", "json", "-q"])
            .ok()
            .text(),
    )
    .unwrap();
    let compare: Value = serde_json::from_str(
        &slant(&[
            "compare",
            p(&scores),
            "--a",
            A,
            "--b",
            B,
            "--format",
            "json",
            "-q",
        ])
        .ok()
        .text(),
    )
    .unwrap();
    let html = dir.path().join("report.html");
    slant(&[
        "report",
        p(&scores),
        "--a",
        A,
        "--b",
        B,
        "--out",
        p(&html),
        "-q",
    ])
    .ok();
    // From raw text: the same report (but for the inputs line of the run manifest).
    let raw = dir.path().join("raw.html");
    slant(&[
        "report",
        "seeds",
        "--a",
        A,
        "--b",
        B,
        "--out",
        p(&raw),
        "-q",
    ])
    .ok();
    let strip_inputs = |s: String| {
        let at = s.find("<td>inputs</td>").unwrap();
        let end = at + s[at..].find("</tr>").unwrap();
        format!("{}{}", &s[..at], &s[end..])
    };
    assert_eq!(
        strip_inputs(std::fs::read_to_string(&html).unwrap()),
        strip_inputs(std::fs::read_to_string(&raw).unwrap()),
        "report from raw text differs from the report of its dataset"
    );
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 1_000_000, "seeds report is {size} bytes");

    let (dom, log) = dump_dom(&chromium, &file_url(&html));
    assert_eq!(page_errors(&log), Vec::<&str>::new(), "page errors");
    assert!(
        dom.contains("data-ready=\"1\""),
        "the report's script did not run"
    );
    for id in [
        "overview", "profiles", "frames", "voices", "actors", "compare", "evidence",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\"")),
            "section {id} missing"
        );
    }
    let sources = profile["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5);
    for s in sources {
        let name = s["source"].as_str().unwrap();
        let row = format!("<tr data-source=\"{name}\"");
        assert!(dom.contains(&row), "{name} not in the profile table");
        assert!(dom.contains(&format!(
            "<div class=\"source-evidence\" data-source=\"{name}\">"
        )));
        // Every forest-plot number equals the JSON's, and is shown with 3 decimals.
        let at = dom.find(&row).unwrap();
        let tr = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        let mut checks = vec![("loaded_share", s["loaded_share"].as_f64().unwrap())];
        for k in ["attribution_rate", "loaded_cue_share", "unattributed_share"] {
            checks.push((k, s["attribution"][k].as_f64().unwrap()));
        }
        for (k, want) in checks {
            let got = cell_value(tr, &format!("data-metric=\"{k}\"")).unwrap_or(f64::NAN);
            assert!(close(got, want), "{name} {k}: html {got}, json {want}");
            assert!(
                tr.contains(&format!("<span class=\"v\">{want:.3}</span>")),
                "{name} {k}: {want:.3} not shown"
            );
        }
        let ci = &s["loaded_share_ci"];
        assert!(tr.contains(&format!(
            "[{:.3}, {:.3}]",
            ci[0].as_f64().unwrap(),
            ci[1].as_f64().unwrap()
        )));
    }
    for m in compare["metrics"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let at = dom
            .find(&format!("<tr data-metric=\"{name}\""))
            .unwrap_or_else(|| panic!("compare row {name} missing"));
        let tr = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        let diff = cell_value(tr, "class=\"num diff\"").unwrap();
        assert!(
            close(diff, m["diff"].as_f64().unwrap()),
            "{name}: diff {diff} vs {}",
            m["diff"]
        );
    }
    for t in compare["distinctive"]["a"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
    {
        let term = t["term"].as_str().unwrap();
        assert!(
            dom.contains(&format!(">{term} <tspan")),
            "distinctive term {term} missing"
        );
    }

    // Sorting: the table opened with #sort=loaded_share lists sources by loaded share, descending.
    let (sorted, log) = dump_dom(&chromium, &format!("{}#sort=loaded_share", file_url(&html)));
    assert_eq!(page_errors(&log), Vec::<&str>::new());
    let mut want: Vec<(f64, &str)> = sources
        .iter()
        .map(|s| {
            (
                s["loaded_share"].as_f64().unwrap(),
                s["source"].as_str().unwrap(),
            )
        })
        .collect();
    want.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
    let table = &sorted[sorted.find("id=\"profile-table\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let got: Vec<&str> = table
        .split("<tr data-source=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
        .collect();
    assert_eq!(got, want.iter().map(|w| w.1).collect::<Vec<_>>());
    assert!(table.contains("aria-sort=\"descending\""));

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("seeds-report.png");
    screenshot(&chromium, &file_url(&html), &png);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot {}",
        png.display()
    );
    eprintln!("screenshot: {}", png.display());
}

#[test]
fn hostile_article_renders_as_inert_text() {
    need_encoder!();
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("hostile.jsonl");
    let evil = serde_json::json!({
        "id": "x\"><img src=x onerror=\"document.title='pwned-id'\">",
        "source": "<img src=x onerror=\"document.title='pwned-source'\">",
        "title": "\" onmouseover=\"document.title='pwned-title'\" x=\"",
        "url": "javascript:document.title='pwned-url'",
        "text": "The minister said <script>document.title='pwned-text'</script> was a disgrace. \
                 Critics called the plan </p><iframe src=javascript:alert(1)></iframe> reckless.",
    });
    let calm = serde_json::json!({
        "id": "calm-1", "source": "calm", "url": "https://example.org/a",
        "text": "The council met on Tuesday. It approved the budget.",
    });
    std::fs::write(&corpus, format!("{evil}\n{calm}\n")).unwrap();
    let html = dir.path().join("hostile.html");
    slant(&["report", p(&corpus), "--out", p(&html), "-q"]).ok();
    let (dom, log) = dump_dom(&chromium, &file_url(&html));
    assert_eq!(page_errors(&log), Vec::<&str>::new(), "page errors");
    assert!(dom.contains("data-ready=\"1\""));
    let title = dom
        .split("<title>")
        .nth(1)
        .unwrap()
        .split("</title>")
        .next()
        .unwrap();
    assert!(
        title.starts_with("slant report"),
        "title changed to {title}"
    );
    // Every `<` of the serialised DOM opens a real tag (text has `&lt;`): no injected element,
    // no event-handler attribute, no javascript: link, one script (the report's).
    let tags: Vec<&str> = dom
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
        .collect();
    for t in &tags {
        let name = t.split([' ', '/']).next().unwrap().to_ascii_lowercase();
        assert!(
            !["img", "iframe"].contains(&name.as_str()),
            "<{t}> in the rendered DOM"
        );
        for attr in [" onerror=\"", " onmouseover=\"", "href=\"javascript:"] {
            assert!(!t.contains(attr), "<{t}> has {attr}");
        }
    }
    assert_eq!(tags.iter().filter(|t| t.starts_with("script")).count(), 1);
    // The hostile strings are there, as text.
    assert!(dom.contains("&lt;script&gt;document.title='pwned-text'&lt;/script&gt;"));
    assert!(dom.contains("&lt;img src=x onerror=\"document.title='pwned-source'\"&gt;"));
    assert!(dom.contains("javascript:document.title='pwned-url'"));
    // A plain http(s) URL stays a link.
    assert!(dom.contains("href=\"https://example.org/a\""));
}
