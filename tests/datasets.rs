//! Scored datasets on the real binary and model: score once, analyse many (same bytes as from
//! raw text), shards merged = one run, a SIGKILLed run resumed = an uninterrupted run, Parquet
//! loaded by pandas/polars/duckdb, pathological input. Skips (saying so) without the encoder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const A: &str = "000_0ac7ef0ff899d3ba";
const B: &str = "003_4f504e27a0b360eb";

mod common;

use common::{p, root, slant};

/// A JSONL corpus of `n` short articles cut from the seeds (new ids, 3 sources).
fn short_corpus(dir: &Path, n: usize) -> PathBuf {
    let mut seeds: Vec<String> = std::fs::read_dir(root().join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    seeds.sort();
    let mut out = String::new();
    for i in 0..n {
        let text = &seeds[i % seeds.len()];
        let cut = (0..=700.min(text.len()))
            .rev()
            .find(|&k| text.is_char_boundary(k))
            .unwrap();
        let row = serde_json::json!({
            "id": format!("art-{i:04}"),
            "source": (["left", "centre", "right"][i % 3]),
            "text": &text[..cut],
        });
        out.push_str(&row.to_string());
        out.push('\n');
    }
    let path = dir.join("corpus.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn analyses_of_a_dataset_equal_those_of_raw_text() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("seeds.jsonl");
    let parquet = dir.path().join("seeds.parquet");
    slant(&[
        "score",
        "seeds",
        "--format",
        "jsonl",
        "--out",
        p(&jsonl),
        "-q",
    ])
    .ok();
    slant(&[
        "score",
        "seeds",
        "--format",
        "parquet",
        "--out",
        p(&parquet),
        "-q",
    ])
    .ok();
    assert!(dir.path().join("seeds.articles.parquet").is_file());
    let table = slant(&["score", "seeds", "-q"]).ok().stdout;
    for ds in [&jsonl, &parquet] {
        let prof = slant(&["profile", p(ds), "-q"]).ok().stdout;
        assert_eq!(
            String::from_utf8_lossy(&prof),
            String::from_utf8_lossy(&table),
            "profile of {} differs from score's table",
            ds.display()
        );
        for fmt in ["json", "table"] {
            let raw = slant(&[
                "compare", "seeds", "--a", A, "--b", B, "--format", fmt, "-q",
            ])
            .ok();
            let saved = slant(&["compare", p(ds), "--a", A, "--b", B, "--format", fmt, "-q"]).ok();
            assert_eq!(
                saved.text(),
                raw.text(),
                "compare --format {fmt} from {} differs from raw text",
                ds.display()
            );
        }
    }
    // The JSONL dataset's article lines and manifest agree with the sentences.
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let manifest = lines.last().unwrap();
    assert_eq!(manifest["record"], "manifest");
    assert_eq!(manifest["schema_version"], 2);
    let n_sent = lines.iter().filter(|l| l["record"] == "sentence").count();
    assert_eq!(manifest["sentences"].as_u64().unwrap() as usize, n_sent);
    let arts: Vec<&Value> = lines.iter().filter(|l| l["record"] == "article").collect();
    assert_eq!(arts.len(), 5);
    let sum: u64 = arts.iter().map(|a| a["sentences"].as_u64().unwrap()).sum();
    assert_eq!(sum as usize, n_sent);
    // Loaded spans point into the sentence text as displayed.
    for l in lines.iter().filter(|l| l["record"] == "sentence") {
        let t = l["text"].as_str().unwrap();
        for s in l["loaded_spans"].as_array().unwrap() {
            let (a, b) = (
                s["text_start"].as_u64().unwrap() as usize,
                s["text_end"].as_u64().unwrap() as usize,
            );
            let shown: Vec<&str> = s["text"].as_str().unwrap().split_whitespace().collect();
            assert_eq!(t[a..b], shown.join(" "), "span {s} in {t}");
        }
    }
}

#[test]
fn shards_merged_equal_one_run() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let corpus = short_corpus(dir.path(), 24);
    let one = dir.path().join("one.jsonl");
    slant(&[
        "score",
        p(&corpus),
        "--format",
        "jsonl",
        "--out",
        p(&one),
        "-q",
    ])
    .ok();
    let shards = dir.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    let mut counts = Vec::new();
    for i in 1..=3 {
        let out = shards.join(format!("part-{i}.jsonl"));
        let shard = format!("{i}/3");
        slant(&[
            "score",
            p(&corpus),
            "--format",
            "jsonl",
            "--shard",
            &shard,
            "--out",
            p(&out),
            "-q",
        ])
        .ok();
        let text = std::fs::read_to_string(&out).unwrap();
        counts.push(text.matches("\"record\":\"article\"").count());
    }
    assert_eq!(counts.iter().sum::<usize>(), 24, "shards {counts:?}");
    assert!(
        counts.iter().all(|&c| c > 0),
        "every shard gets articles: {counts:?}"
    );
    let want = slant(&["profile", p(&one), "--format", "json", "-q"])
        .ok()
        .text();
    let from_folder = slant(&["profile", p(&shards), "--format", "json", "-q"])
        .ok()
        .text();
    assert_eq!(from_folder, want, "profile of 3 shards != one run");
    let merged = dir.path().join("merged.parquet");
    slant(&["merge", p(&shards), "--out", p(&merged), "-q"]).ok();
    let from_merged = slant(&["profile", p(&merged), "--format", "json", "-q"])
        .ok()
        .text();
    assert_eq!(from_merged, want, "profile of merged shards != one run");
    let c1 = slant(&[
        "compare",
        p(&one),
        "--a",
        "left",
        "--b",
        "right",
        "--format",
        "json",
        "-q",
    ])
    .ok();
    let c3 = slant(&[
        "compare",
        p(&merged),
        "--a",
        "left",
        "--b",
        "right",
        "--format",
        "json",
        "-q",
    ])
    .ok();
    assert_eq!(c3.text(), c1.text());
    // A shard given twice is refused.
    let part1 = shards.join("part-1.jsonl");
    let twice = slant(&["profile", p(&part1), p(&part1)]);
    assert_ne!(twice.code, 0);
    assert!(
        twice.stderr.contains("more than one dataset"),
        "{}",
        twice.stderr
    );
}

/// Start a run, SIGKILL it once the journal holds a chunk, then resume it.
fn kill_and_resume(corpus: &Path, out: &Path, format: &str) {
    let progress = out.with_file_name(format!(
        "{}.partial.json",
        out.file_name().unwrap().to_str().unwrap()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_slant"))
        .args([
            "--threads",
            "1",
            "score",
            p(corpus),
            "--format",
            format,
            "--out",
            p(out),
            "-q",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(&progress).unwrap_or_default();
        if text.contains("\"chunks\":1") || text.contains("\"chunks\":2") {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before it could be killed mid-way");
        }
        assert!(t0.elapsed().as_secs() < 120, "no chunk recorded in 120 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!out.exists(), "a killed run left {} behind", out.display());
    let run = slant(&[
        "score",
        p(corpus),
        "--format",
        format,
        "--out",
        p(out),
        "--resume",
    ])
    .ok();
    assert!(run.stderr.contains("resuming"), "{}", run.stderr);
    assert!(
        !progress.exists(),
        "the progress file is removed at the end"
    );
}

#[test]
fn a_killed_run_resumes_to_the_same_bytes() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let corpus = short_corpus(dir.path(), 150);
    for format in ["jsonl", "parquet"] {
        let full = dir.path().join(format!("full.{format}"));
        let resumed = dir.path().join(format!("resumed.{format}"));
        slant(&[
            "score",
            p(&corpus),
            "--format",
            format,
            "--out",
            p(&full),
            "-q",
        ])
        .ok();
        kill_and_resume(&corpus, &resumed, format);
        assert!(
            std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
            "{format}: resumed output differs from an uninterrupted run"
        );
        if format == "parquet" {
            let (a, b) = (
                dir.path().join("full.articles.parquet"),
                dir.path().join("resumed.articles.parquet"),
            );
            assert!(std::fs::read(a).unwrap() == std::fs::read(b).unwrap());
        }
    }
    // Resuming a complete file does nothing; resuming with other options is refused.
    let full = dir.path().join("full.jsonl");
    let again = slant(&[
        "score",
        p(&corpus),
        "--format",
        "jsonl",
        "--out",
        p(&full),
        "--resume",
    ])
    .ok();
    assert!(again.stderr.contains("is complete"), "{}", again.stderr);
}

#[test]
fn a_torn_dataset_is_refused_with_a_clear_error() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    slant(&[
        "score",
        "seeds",
        "--format",
        "jsonl",
        "--out",
        p(&out),
        "-q",
    ])
    .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(&torn, &text[..text.len() / 2]).unwrap();
    let run = slant(&["profile", p(&torn)]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cut off") || run.stderr.contains("incomplete"),
        "{}",
        run.stderr
    );
    // Not a dataset at all.
    let run = slant(&["profile", "seeds"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("not a scored dataset"),
        "{}",
        run.stderr
    );
    // Options that need a file.
    let run = slant(&["score", "seeds", "--format", "parquet"]);
    assert!(run.stderr.contains("needs --out"), "{}", run.stderr);
    let run = slant(&["score", "seeds", "--resume"]);
    assert!(
        run.stderr.contains("--resume needs --out"),
        "{}",
        run.stderr
    );
}

#[test]
fn oversized_and_run_on_articles() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    // A seed article with its punctuation and line breaks removed: ~8 KB of run-on English.
    let seed = std::fs::read_to_string(root().join("seeds").join(format!("{A}.txt"))).unwrap();
    let run_on: String = seed
        .chars()
        .filter(|c| !matches!(c, '.' | '!' | '?' | ';' | ':' | '"' | '\n'))
        .collect::<String>()
        .repeat(3);
    let corpus = dir.path().join("c.jsonl");
    let rows = [
        serde_json::json!({"id": "big", "source": "x", "text": "y ".repeat(40_000)}),
        serde_json::json!({"id": "runon", "source": "x", "text": run_on}),
    ];
    std::fs::write(
        &corpus,
        rows.iter().map(|r| format!("{r}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("s.jsonl");
    let run = slant(&[
        "score",
        p(&corpus),
        "--format",
        "jsonl",
        "--out",
        p(&out),
        "--max-article-bytes",
        "50000",
        "-q",
    ]);
    assert_eq!(run.code, 1, "a record error exits 1: {}", run.stderr);
    assert!(
        run.stderr.contains("big") && run.stderr.contains("over the limit"),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors: Vec<&Value> = lines.iter().filter(|l| l["record"] == "error").collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], "big");
    let sents: Vec<&Value> = lines.iter().filter(|l| l["record"] == "sentence").collect();
    assert!(
        sents.len() >= 6,
        "the run-on article is cut into pieces: {}",
        sents.len()
    );
    assert!(sents
        .iter()
        .all(|s| s["truncated"] == false && s["article"] == "runon"));
    assert_eq!(lines.last().unwrap()["record_errors"], 1);
}

#[test]
fn progress_bar_stays_off_pipes() {
    need_encoder!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let run = slant(&["score", "seeds", "--format", "jsonl", "--out", p(&out)]).ok();
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\u{1b}'),
        "stderr is not a terminal: no bar drawn: {:?}",
        run.stderr
    );
    assert!(run.stderr.contains("slant: 5 articles"), "{}", run.stderr);
}

/// The Python interpreter of scripts/install-test-deps.sh, when it has the dataset readers.
fn python_with_readers() -> Option<PathBuf> {
    let py = root().join(".cache/pyenv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import pyarrow, pandas, polars, duckdb"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "skipping: pandas/polars/duckdb/pyarrow not installed (scripts/install-test-deps.sh)"
        );
        return None;
    }
    Some(py)
}

#[test]
fn parquet_loads_in_pandas_polars_and_duckdb() {
    need_encoder!();
    let Some(py) = python_with_readers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.parquet");
    slant(&[
        "score",
        "seeds",
        "--format",
        "parquet",
        "--out",
        p(&out),
        "-q",
    ])
    .ok();
    let check = Command::new(py)
        .arg(root().join("scripts/check_dataset.py"))
        .arg(&out)
        .arg(dir.path().join("s.articles.parquet"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let got: Value = serde_json::from_slice(&check.stdout).unwrap();
    let prof: Value = serde_json::from_slice(
        &slant(&["profile", p(&out), "--format", "json", "-q"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(got["articles"], 5);
    for s in prof["sources"].as_array().unwrap() {
        let name = s["source"].as_str().unwrap();
        let want = s["loaded_share"].as_f64().unwrap();
        let py_share = got["loaded_share"][name].as_f64().unwrap();
        assert!(
            (want - py_share).abs() < 1e-6,
            "{name}: {want} vs {py_share}"
        );
    }
    assert_eq!(got["sentences"], prof["manifest"]["sentences"]);
}
