//! End-to-end tests of `slant eval splitter`, `slant eval all` and `slant eval loaded --labels`:
//! each test runs the real binary from the crate root.
//!
//! * Fixtures live in `tests/fixtures/eval/`: a tiny data folder laid out like the shared one
//!   (`data/`: BABE SG2, MBIC, anno-lexical and SemEval-2023 Task 3 subtask 2 layouts, with
//!   sentences and 10 short articles written for these tests, not taken from those sets), a user's
//!   labelled files (`sentences.jsonl`, `sentences.csv`, `spans.jsonl`, `attributions.jsonl`)
//!   and splitter cases (`cases.jsonl`).
//! * Tests that need the encoder print `skipping: …` and pass without
//!   `models/encoder/all-MiniLM-L6-v2/model.safetensors`. Each such run gets its own feature
//!   cache (`SLANT_CACHE_DIR`), so the encoder really runs at the thread count under test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const FIX: &str = "tests/fixtures/eval";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Run {
    args: Vec<String>,
    out: Output,
}

impl Run {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn show(&self) -> String {
        format!(
            "`slant {}` exited {}\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.args.join(" "),
            self.code(),
            self.stderr(),
            self.stdout()
        )
    }
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "{}", self.show());
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("{e}: {}", self.show()))
    }
}

/// Run the binary in the crate root; `cache` sets SLANT_CACHE_DIR. SLANT_DATA is removed so that
/// only `--data` counts.
fn slant_env(args: &[&str], cache: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slant"));
    cmd.args(args)
        .current_dir(root())
        .env_remove("SLANT_MODEL")
        .env_remove("SLANT_DATA")
        .env_remove("RAYON_NUM_THREADS");
    if let Some(c) = cache {
        cmd.env("SLANT_CACHE_DIR", c);
    }
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        out: cmd.output().expect("cannot run slant"),
    }
}

fn slant(args: &[&str]) -> Run {
    slant_env(args, None)
}

fn have_encoder() -> bool {
    if root()
        .join("models/encoder/all-MiniLM-L6-v2/model.safetensors")
        .is_file()
    {
        true
    } else {
        eprintln!("skipping: encoder not fetched (run models/fetch)");
        false
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fix(name: &str) -> String {
    format!("{FIX}/{name}")
}

// ------------------------------------------------------------------------------------------
// eval splitter

#[test]
fn eval_splitter_on_fixture_cases_counts_by_hand() {
    // cases.jsonl: t-1, t-2, t-4 right; t-3 ("... the U.S. Democrats ...") is a known miss:
    // boundaries: t-1 1 tp, t-2 2 tp, t-3 1 fn, t-4 none. P = 3/3, R = 3/4, F1 = 6/7.
    let run = slant(&[
        "eval",
        "splitter",
        "--cases",
        &fix("cases.jsonl"),
        "--format",
        "json",
    ]);
    let v = run.expect(0).json();
    assert_eq!(v["cases"], 4);
    assert_eq!(v["counts"]["exact"], 3);
    assert_eq!(
        (
            &v["counts"]["boundary_tp"],
            &v["counts"]["boundary_fp"],
            &v["counts"]["boundary_fn"]
        ),
        (&Value::from(3), &Value::from(0), &Value::from(1))
    );
    assert_eq!(v["metrics"]["boundary_recall"]["value"], 0.75);
    assert_eq!(v["metrics"]["boundary_f1"]["value"], 0.857143);
    assert_eq!(v["metrics"]["exact_match"]["value"], 0.75);
    let ci = v["metrics"]["exact_match"]["ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= 0.75 && 0.75 <= ci[1].as_f64().unwrap());
    assert_eq!(v["failures"][0]["id"], "t-3");
    assert_eq!(v["failures"][0]["got"].as_array().unwrap().len(), 1);
    assert_eq!(v["per_category"]["abbreviation"]["exact"], 1);
    assert_eq!(v["per_category"]["abbreviation"]["cases"], 2);
}

#[test]
fn eval_splitter_defaults_to_the_checkout_cases_and_prints_a_table() {
    let run = slant(&["eval", "splitter"]);
    let out = run.expect(0).stdout();
    let n = read(&root().join("eval/splitter/cases.jsonl"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("//"))
        .count();
    assert!(out.contains(&format!("/{n} = ")), "{}", run.show());
    assert!(out.contains("boundaries P "), "{}", run.show());
    assert!(out.contains("FAIL abbr-14"), "{}", run.show());
    // From a directory outside the checkout the file is found above the executable.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_slant"))
        .args(["eval", "splitter", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cases"], n);
}

#[test]
fn eval_splitter_bad_case_file_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.jsonl");
    std::fs::write(
        &p,
        "{\"id\":\"a\",\"category\":\"c\",\"text\":\"A. B.\",\"sentences\":[\"A.\",\"B.\"]}\n{\"id\":\"b\"}\n",
    )
    .unwrap();
    let run = slant(&["eval", "splitter", "--cases", p.to_str().unwrap()]);
    run.expect(2);
    assert!(
        run.stderr().contains("bad.jsonl:2: invalid case"),
        "{}",
        run.show()
    );
}

// ------------------------------------------------------------------------------------------
// eval loaded --labels

#[test]
fn eval_loaded_labels_span_and_attribution_files_are_validated_not_scored() {
    for (file, kind, n) in [
        ("spans.jsonl", "spans", 3),
        ("attributions.jsonl", "attributions", 3),
    ] {
        let run = slant(&["eval", "loaded", "--labels", &fix(file)]);
        run.expect(2);
        let want = format!("{n} {kind} records are valid");
        assert!(run.stderr().contains(&want), "{}", run.show());
        assert!(run.stderr().contains("runs once the"), "{}", run.show());
    }
}

#[test]
fn eval_loaded_labels_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mine.jsonl");
    std::fs::write(
        &p,
        "{\"id\":\"a\",\"text\":\"One.\",\"label\":1}\n\n{\"id\":\"b\",\"text\":\"Two.\",\"label\":\"yes\"}\n",
    )
    .unwrap();
    let run = slant(&["eval", "loaded", "--labels", p.to_str().unwrap()]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("mine.jsonl:3: record \"b\": `label` must be 0 or 1"),
        "{}",
        run.show()
    );
    std::fs::write(
        &p,
        "{\"id\":\"s\",\"text\":\"Short.\",\"spans\":[{\"start\":2,\"end\":40,\"label\":\"loaded\"}]}\n",
    )
    .unwrap();
    let run = slant(&[
        "eval",
        "all",
        "--out",
        dir.path().join("run").to_str().unwrap(),
        "--labels",
        p.to_str().unwrap(),
    ]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("mine.jsonl:1: record \"s\": spans[0]: [2, 40)"),
        "{}",
        run.show()
    );
    // --dataset and --labels exclude each other; one of them is needed.
    slant(&["eval", "loaded"]).expect(2);
    slant(&[
        "eval",
        "loaded",
        "--dataset",
        "babe",
        "--labels",
        &fix("sentences.jsonl"),
    ])
    .expect(2);
}

#[test]
fn eval_loaded_labels_jsonl_and_csv_agree() {
    if !have_encoder() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = slant_env(
        &[
            "eval",
            "loaded",
            "--labels",
            &fix("sentences.jsonl"),
            "--format",
            "json",
        ],
        Some(dir.path()),
    );
    let b = slant_env(
        &[
            "eval",
            "loaded",
            "--labels",
            &fix("sentences.csv"),
            "--format",
            "json",
        ],
        Some(dir.path()),
    );
    let (a, b) = (a.expect(0).json(), b.expect(0).json());
    assert_eq!(a["dataset"], "labels");
    assert_eq!(a["n"], 12);
    assert_eq!(a["positive"]["support"], 6);
    for k in ["tp", "fp", "fn", "tn", "macro_f1", "ece"] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert_eq!(
        a["manifest"]["data_files"][0]["path"],
        fix("sentences.jsonl")
    );
}

// ------------------------------------------------------------------------------------------
// eval all

fn eval_all(out: &Path, threads: &str, cache: &Path) -> Run {
    slant_env(
        &[
            "--threads",
            threads,
            "eval",
            "all",
            "--data",
            &fix("data"),
            "--out",
            out.to_str().unwrap(),
            "--labels",
            &fix("sentences.jsonl"),
            "--labels",
            &fix("spans.jsonl"),
            "--reps",
            "200",
            "--outlets-min-n",
            "4",
        ],
        Some(cache),
    )
}

#[test]
fn eval_all_is_byte_identical_across_thread_counts() {
    if !have_encoder() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Same folder name, so that the command shown in results.md is the same.
    let (o1, o2) = (dir.path().join("a/run"), dir.path().join("b/run"));
    // Separate feature caches: both runs encode, train and bootstrap from scratch.
    eval_all(&o1, "1", &dir.path().join("c1")).expect(0);
    let r2 = eval_all(&o2, "2", &dir.path().join("c2"));
    r2.expect(0);
    let (j1, j2) = (
        read(&o1.join("results.json")),
        read(&o2.join("results.json")),
    );
    assert!(
        j1 == j2,
        "results.json differs between --threads 1 and 2:\n{j1}\n---\n{j2}"
    );
    assert_eq!(read(&o1.join("results.md")), read(&o2.join("results.md")));

    let v: Value = serde_json::from_str(&j1).unwrap();
    let ev = &v["evaluations"];
    for name in [
        "splitter",
        "loaded/anno-lexical-test",
        "loaded/babe-sg2-zero-shot",
        "loaded/babe-sg2-cv5",
        "loaded/babe-sg2-cv5-babe-only",
        "loaded/labels/sentences.jsonl",
        "frames/semeval2023-cv5",
        "outlets/babe-mbic",
    ] {
        assert_eq!(ev[name]["status"], "ok", "{name}: {}", ev[name]);
    }
    // The fixture BABE file has 32 labelled sentences (+1 "No agreement") in 8 articles.
    let babe = &ev["loaded/babe-sg2-zero-shot"];
    assert_eq!(
        (babe["n"].as_u64(), babe["documents"].as_u64()),
        (Some(32), Some(8))
    );
    assert_eq!(
        ev["loaded/babe-sg2-cv5"]["folds"].as_array().unwrap().len(),
        5
    );
    assert_eq!(ev["loaded/anno-lexical-test"]["documents"], 16);
    let labels = &ev["loaded/labels/sentences.jsonl"];
    assert_eq!(
        (labels["n"].as_u64(), labels["documents"].as_u64()),
        (Some(12), Some(6))
    );
    for name in ["loaded/babe-sg2-cv5", "loaded/anno-lexical-test"] {
        let m = &ev[name]["metrics"]["macro_f1"];
        let (x, ci) = (m["value"].as_f64().unwrap(), m["ci"].as_array().unwrap());
        assert!(
            ci[0].as_f64().unwrap() <= x && x <= ci[1].as_f64().unwrap(),
            "{name}: {m}"
        );
    }
    // Frames: the fixture SemEval folder has 10 articles with 2 frames each (20 labels).
    let frames = &ev["frames/semeval2023-cv5"];
    assert_eq!(
        (frames["n"].as_u64(), frames["documents"].as_u64()),
        (Some(10), Some(10))
    );
    let per = frames["per_frame"].as_array().unwrap();
    assert_eq!(per.len(), 14);
    let support: u64 = per.iter().map(|f| f["support"].as_u64().unwrap()).sum();
    assert_eq!(support, 20);
    let c = &frames["counts"];
    assert_eq!(c["tp"].as_u64().unwrap() + c["fn"].as_u64().unwrap(), 20);
    assert_eq!(frames["folds"].as_array().unwrap().len(), 5);
    for m in ["micro_f1", "macro_f1"] {
        let e = &frames["metrics"][m];
        let (x, ci) = (e["value"].as_f64().unwrap(), e["ci"].as_array().unwrap());
        assert!(
            ci[0].as_f64().unwrap() <= x && x <= ci[1].as_f64().unwrap(),
            "{m}: {e}"
        );
    }
    // Outlets: SG2 has outlets A and B (16 sentences each); MBIC repeats 8 of them and adds
    // outlet C (6 labelled sentences in 3 articles), so only the pooled set and MBIC have 3
    // outlets with n >= 4.
    let outlets = &ev["outlets/babe-mbic"];
    assert_eq!(outlets["min_n"], 4);
    let sets = outlets["sets"].as_array().unwrap();
    assert_eq!(
        sets.iter()
            .map(|s| s["sentences"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [38, 32, 14]
    );
    assert_eq!(sets[0]["outlets_in_correlation"], 3);
    assert!(sets[1]["spearman"].is_null(), "2 outlets: no rho");
    let rho = &outlets["metrics"]["spearman"];
    assert_eq!(rho, &sets[0]["spearman"]);
    let r = rho["value"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&r), "{rho}");
    let spans = &ev["loaded/labels/spans.jsonl"];
    assert_eq!(spans["status"], "skipped");
    assert!(spans["reason"]
        .as_str()
        .unwrap()
        .contains("3 spans records parsed and validated"));

    // No absolute paths anywhere; the manifest has what a rerun needs.
    let man_text = read(&o1.join("manifest.json"));
    for (name, text) in [("results.json", &j1), ("manifest.json", &man_text)] {
        for bad in [dir.path().to_str().unwrap(), root().to_str().unwrap()] {
            assert!(!text.contains(bad), "{name} holds the absolute path {bad}");
        }
    }
    let man: Value = serde_json::from_str(&man_text).unwrap();
    assert_no_absolute_path(&man, "manifest.json");
    assert_no_absolute_path(&v, "results.json");
    assert_eq!(man["threads"], 1);
    assert_eq!(man["cv"]["k"], 5);
    assert!(man["total_wall_s"].as_f64().unwrap() > 0.0);
    assert!(man["evaluations"]["loaded/babe-sg2-cv5"]["wall_s"].is_number());
    let files: Vec<&str> = man["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"babe/data/final_labels_SG2.csv"),
        "{files:?}"
    );
    assert!(
        files.contains(&"anno_lexical/annomatic-dataset/data/training/anno-lexical-train.jsonl")
    );
    assert_eq!(man["encoder"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(man["loaded_head"]["path"], "models/loaded.safetensors");
    assert!(man["command"]
        .as_str()
        .unwrap()
        .starts_with("slant eval all --data DIR --out "));
    let md = read(&o1.join("results.md"));
    assert!(md.contains("0.804 (Spinde et al. 2021"), "{md}");
    assert!(md.contains("pySBD: 47/48"), "{md}");
    assert!(md.contains("slant eval all --data DIR"), "{md}");
    assert!(md.contains("--outlets-min-n 4"), "{md}");
    assert!(md.contains("## Frames head"), "{md}");
    assert!(md.contains("not directly comparable"), "{md}");
    assert!(md.contains("## Outlet validity"), "{md}");
    assert!(
        files.contains(&"babe/data/final_labels_MBIC.csv"),
        "{files:?}"
    );
    assert!(
        files.contains(&"semeval2023_task3_en/data/en/train-labels-subtask-2.txt"),
        "{files:?}"
    );
}

#[test]
fn eval_all_without_data_runs_the_splitter_and_records_skips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let md = dir.path().join("RESULTS.md");
    let run = slant(&[
        "eval",
        "all",
        "--out",
        out.to_str().unwrap(),
        "--results-md",
        md.to_str().unwrap(),
        "--reps",
        "100",
    ]);
    run.expect(0);
    let v: Value = serde_json::from_str(&read(&out.join("results.json"))).unwrap();
    assert_eq!(v["schema"], "slant-eval-results/1");
    assert_eq!(v["bootstrap"]["reps"], 100);
    assert_eq!(v["evaluations"]["splitter"]["status"], "ok");
    let babe = &v["evaluations"]["loaded/babe-sg2-cv5"];
    assert_eq!(babe["status"], "skipped");
    let reason = babe["reason"].as_str().unwrap();
    assert!(
        reason.contains("no data folder") || reason.contains("no encoder"),
        "{reason}"
    );
    for name in ["frames/semeval2023-cv5", "outlets/babe-mbic"] {
        assert_eq!(v["evaluations"][name]["status"], "skipped", "{name}");
    }
    assert_eq!(read(&md), read(&out.join("results.md")));
    assert!(read(&md).contains("## Skipped"));
}

#[test]
fn eval_all_missing_data_file_is_skipped_with_a_relative_reason() {
    if !have_encoder() {
        return;
    }
    // A data folder with anno-lexical but no BABE.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rel = "anno_lexical/annomatic-dataset/data/training";
    std::fs::create_dir_all(data.join(rel)).unwrap();
    for f in ["anno-lexical-test.jsonl", "anno-lexical-train.jsonl"] {
        std::fs::copy(
            root().join(FIX).join("data").join(rel).join(f),
            data.join(rel).join(f),
        )
        .unwrap();
    }
    let out = dir.path().join("run");
    let run = slant_env(
        &[
            "eval",
            "all",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--reps",
            "50",
        ],
        Some(&dir.path().join("cache")),
    );
    run.expect(0);
    let v: Value = serde_json::from_str(&read(&out.join("results.json"))).unwrap();
    let ev = &v["evaluations"];
    assert_eq!(ev["loaded/anno-lexical-test"]["status"], "ok");
    assert_eq!(
        ev["loaded/babe-sg2-zero-shot"]["reason"],
        "BABE SG2 not found at babe/data/final_labels_SG2.csv (relative to --data)"
    );
    assert_eq!(ev["loaded/babe-sg2-cv5"]["status"], "skipped");
    assert_eq!(
        ev["outlets/babe-mbic"]["reason"],
        "BABE SG2 not found at babe/data/final_labels_SG2.csv (relative to --data)"
    );
    assert!(ev["frames/semeval2023-cv5"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("SemEval-2023 Task 3 subtask 2 not found at semeval2023_task3_en/"));
}

/// The committed run directories are what `eval all` writes: parseable, no absolute paths, and
/// eval/RESULTS.md is the newest run's results.md.
#[test]
fn committed_runs_are_consistent() {
    let runs = root().join("eval/runs");
    let Ok(entries) = std::fs::read_dir(&runs) else {
        eprintln!("skipping: no eval/runs");
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty());
    for d in &dirs {
        let r: Value = serde_json::from_str(&read(&d.join("results.json"))).unwrap();
        assert_eq!(r["schema"], "slant-eval-results/1", "{}", d.display());
        let m: Value = serde_json::from_str(&read(&d.join("manifest.json"))).unwrap();
        assert!(m["git_commit"].is_string());
        for v in [&r, &m] {
            assert_no_absolute_path(v, &d.display().to_string());
        }
        let md = read(&d.join("results.md"));
        assert!(!md.contains(root().to_str().unwrap()), "{}", d.display());
    }
    let newest = dirs.last().unwrap();
    assert_eq!(
        read(&root().join("eval/RESULTS.md")),
        read(&newest.join("results.md")),
        "eval/RESULTS.md is not {}/results.md",
        newest.display()
    );
}

/// No string in `v` is an absolute path.
fn assert_no_absolute_path(v: &Value, what: &str) {
    match v {
        Value::String(s) => assert!(
            !s.starts_with('/') && !s.contains(" /") && !s.contains(":\\"),
            "{what}: absolute path in {s:?}"
        ),
        Value::Array(a) => a.iter().for_each(|x| assert_no_absolute_path(x, what)),
        Value::Object(o) => o.values().for_each(|x| assert_no_absolute_path(x, what)),
        _ => {}
    }
}

// ------------------------------------------------------------------------------------------
// eval loaded-spans

#[test]
fn feature_experiments_need_cv() {
    let run = slant(&[
        "eval",
        "loaded",
        "--data",
        &fix("data"),
        "--dataset",
        "babe",
        "--pooling",
        "mean-max",
    ]);
    run.expect(2);
    assert!(
        run.stderr().contains("--pooling and --span-evidence"),
        "{}",
        run.show()
    );
}

#[test]
fn eval_loaded_spans_without_ptc_is_a_clear_error() {
    // The fixture data folder has BABE and SemEval-2023 subtask 2 but no PTC.
    let run = slant(&[
        "eval",
        "loaded-spans",
        "--data",
        &fix("data"),
        "--dataset",
        "ptc",
    ]);
    run.expect(2);
    assert!(
        run.stderr()
            .contains("PTC (SemEval-2020 Task 11) not found"),
        "{}",
        run.show()
    );
}

/// The shared data folder ($SLANT_DATA, else ../shared/data) when it holds BABE SG2.
fn shared_data() -> Option<PathBuf> {
    let d = match std::env::var("SLANT_DATA") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => root().join("../shared/data"),
    };
    if d.join("babe/data/final_labels_SG2.csv").is_file() {
        Some(d)
    } else {
        eprintln!("skipping: no BABE SG2 under {}", d.display());
        None
    }
}

#[test]
fn eval_loaded_spans_on_babe_held_out_fold() {
    if !have_encoder() || !root().join("models/loaded_spans.safetensors").is_file() {
        eprintln!("skipping: encoder or models/loaded_spans.safetensors missing");
        return;
    }
    let Some(data) = shared_data() else {
        return;
    };
    let run = slant(&[
        "eval",
        "loaded-spans",
        "--data",
        data.to_str().unwrap(),
        "--dataset",
        "babe",
        "--format",
        "json",
    ]);
    run.expect(0);
    let v = run.json();
    // Fold 0 of 5 of BABE SG2's 3,673 sentences.
    let texts = v["texts"].as_u64().unwrap();
    assert!((600..880).contains(&texts), "{texts}");
    let m = &v["model"];
    assert_eq!(v["token_f1"], m["token_f1"]);
    assert_eq!(v["span_f1"], m["span_f1"]);
    assert_eq!(m["span_overlap"]["gold"], v["gold_spans"]);
    assert_eq!(m["span_overlap"]["predicted"], v["predicted_spans"]);
    // The trained head finds loaded words far better than chance and than the lexicon.
    let (tf, sf) = (
        v["token_f1"].as_f64().unwrap(),
        v["span_f1"].as_f64().unwrap(),
    );
    assert!(tf > 0.2 && sf > 0.2, "token F1 {tf}, span F1 {sf}");
    if let Some(l) = v["lexicon_baseline"].as_object() {
        assert!(tf > l["token_f1"].as_f64().unwrap(), "{}", run.stdout());
    }
}

/// The committed span head's header, as JSON.
fn safetensors_header(bytes: &[u8]) -> Value {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

#[test]
fn select_threshold_reproduces_the_committed_decoding_and_keeps_the_tensors() {
    let head = root().join("models/loaded_spans.safetensors");
    if !have_encoder() || !head.is_file() {
        eprintln!("skipping: encoder or models/loaded_spans.safetensors missing");
        return;
    }
    let Some(data) = shared_data() else {
        return;
    };
    if !data.join("ptc_semeval2020_task11").is_dir() {
        eprintln!("skipping: no PTC under {}", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, card) = (dir.path().join("h.safetensors"), dir.path().join("card.md"));
    let committed = std::fs::read(&head).unwrap();
    // Start from the committed head without its decoding keys: the selection must find them.
    let mut h = safetensors_header(&committed);
    let meta = h["__metadata__"].as_object_mut().unwrap();
    let want_w = meta.remove("decode_min_word_prob");
    let want_s = meta.remove("decode_min_span_score");
    assert!(want_w.is_some() && want_s.is_some(), "{h}");
    let n = u64::from_le_bytes(committed[..8].try_into().unwrap()) as usize;
    let mut hs = serde_json::to_vec(&h).unwrap();
    while !hs.len().is_multiple_of(8) {
        hs.push(b' ');
    }
    let mut stripped = (hs.len() as u64).to_le_bytes().to_vec();
    stripped.extend(&hs);
    stripped.extend(&committed[8 + n..]);
    std::fs::write(&out, &stripped).unwrap();
    let run = slant(&[
        "train",
        "loaded-spans",
        "--data",
        data.to_str().unwrap(),
        "--select-threshold",
        "--out",
        out.to_str().unwrap(),
        "--card",
        card.to_str().unwrap(),
    ]);
    run.expect(0);
    let got = std::fs::read(&out).unwrap();
    let gh = safetensors_header(&got);
    assert_eq!(
        gh["__metadata__"].get("decode_min_word_prob"),
        want_w.as_ref()
    );
    assert_eq!(
        gh["__metadata__"].get("decode_min_span_score"),
        want_s.as_ref()
    );
    let gn = u64::from_le_bytes(got[..8].try_into().unwrap()) as usize;
    assert_eq!(&got[8 + gn..], &committed[8 + n..], "tensors changed");
    assert!(read(&card).contains("## Decoding thresholds"));
}

// ------------------------------------------------------------------------------------------
// eval attribution --export-tokens / --probs (PolNeAR from the shared data folder)

/// The shared data folder when it holds PolNeAR.
fn polnear_data() -> Option<PathBuf> {
    let d = match std::env::var("SLANT_DATA") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => root().join("../shared/data"),
    };
    if d.join("polnear/data/dev/text").is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: no PolNeAR under {}", d.display());
        None
    }
}

/// The exported input ids are the encoder's own: on the first 40 dev sentences, the token
/// states the encoder computes have exactly one row per exported id, with the same offsets.
#[test]
fn attribution_token_ids_are_the_encoders_tokens() {
    if !have_encoder() {
        return;
    }
    let Some(data) = polnear_data() else {
        return;
    };
    use slant::eval::attribution::prepare_ids;
    use slant::heads::tagger::Scheme;
    let enc = slant::encode::Encoder::load(
        &root().join("models/encoder/all-MiniLM-L6-v2"),
        Default::default(),
    )
    .expect("encoder");
    let (p, ids) = prepare_ids(&enc, &data, "dev", Scheme::Flat).unwrap();
    assert_eq!(ids.len(), p.states.len());
    let texts: Vec<&str> = p
        .articles
        .iter()
        .zip(&p.sentences)
        .flat_map(|(a, ss)| ss.iter().map(move |s| &a.text[s.start..s.end]))
        .take(40)
        .collect();
    let states = slant::train::tagger::token_states_cached(&enc, &texts, 8, None).unwrap();
    for (k, id) in ids.iter().take(40).enumerate() {
        assert_eq!(id.len(), states.n_tokens(k), "sentence {k}");
        assert_eq!(p.states.offsets[k], states.offsets[k], "sentence {k}");
        assert_eq!(p.tags[k].len(), id.len(), "sentence {k}");
        assert_eq!((id[0], *id.last().unwrap()), (101, 102), "[CLS] … [SEP]");
    }
}

/// Export dev's token ids and tags, turn the tags into one-hot probabilities and score them
/// with `--probs`: the figures are `--oracle rules`'s (gold tags decoded and joined as
/// predictions are). Rows in another order, or a row short of a token, are refused.
#[test]
fn attribution_export_tokens_and_gold_probs_score_as_the_oracle() {
    if !have_encoder() || !root().join("models/attribution.safetensors").is_file() {
        eprintln!("skipping: encoder or models/attribution.safetensors missing");
        return;
    }
    let Some(data) = polnear_data() else {
        return;
    };
    let data = data.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tokens");
    let base = [
        "eval",
        "attribution",
        "--data",
        data,
        "--dataset",
        "polnear",
    ];
    let args = |more: &[&str]| -> Vec<String> {
        base.iter()
            .chain(more)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |more: &[&str]| {
        let a = args(more);
        slant(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    run(&["--export-tokens", out.to_str().unwrap()]).expect(0);
    let labels: Value = serde_json::from_str(&read(&out.join("labels.json"))).unwrap();
    assert_eq!(
        labels,
        serde_json::json!([
            "O",
            "B-SOURCE",
            "I-SOURCE",
            "B-CUE",
            "I-CUE",
            "B-CONTENT",
            "I-CONTENT"
        ])
    );
    assert!(read(&out.join("README.txt")).contains("input_ids"));
    for split in ["train", "test"] {
        assert!(out.join(format!("{split}.jsonl")).is_file());
    }
    let dev = read(&out.join("dev.jsonl"));
    let mut lines = Vec::new();
    let mut rows = 0;
    for (n, line) in dev.lines().enumerate() {
        let r: Value = serde_json::from_str(line).unwrap();
        let ids = r["input_ids"].as_array().unwrap();
        let tags = r["tags"].as_array().unwrap();
        assert_eq!(ids.len(), tags.len(), "row {n}");
        assert_eq!(tags[0], -1, "[CLS] untagged");
        let probs: Vec<Vec<f32>> = tags
            .iter()
            .map(|t| {
                let t = t.as_i64().unwrap();
                let mut v = vec![0.0f32; 7];
                v[t.max(0) as usize] = 1.0;
                v
            })
            .collect();
        // Half the rows name their sentence (checked), half do not.
        let row = if n % 2 == 0 {
            serde_json::json!({"article": r["article"], "sentence": r["sentence"], "probs": probs})
        } else {
            serde_json::json!({ "probs": probs })
        };
        lines.push(row.to_string());
        rows += 1;
    }
    let probs = dir.path().join("probs.jsonl");
    std::fs::write(&probs, lines.join("\n") + "\n").unwrap();
    let got = run(&[
        "--split",
        "dev",
        "--probs",
        probs.to_str().unwrap(),
        "--format",
        "json",
    ]);
    got.expect(0);
    let want = run(&["--split", "dev", "--oracle", "rules", "--format", "json"]);
    want.expect(0);
    let (got, want) = (got.json(), want.json());
    for role in ["source", "cue", "content"] {
        assert_eq!(got[role], want[role], "{role}");
    }
    assert!(got["cue"]["exact"]["tp"].as_u64().unwrap() > 1000, "{got}");
    assert_eq!(got["manifest"]["sentences"].as_u64().unwrap(), rows);
    let pred = &got["manifest"]["predictions"];
    assert_eq!(pred["sha256"].as_str().unwrap().len(), 64, "{pred}");
    // Rows 1 and 3 (both keyed) swapped: line 1 names the third sentence and is refused.
    let mut swapped = lines.clone();
    swapped.swap(0, 2);
    std::fs::write(&probs, swapped.join("\n")).unwrap();
    let bad = run(&["--split", "dev", "--probs", probs.to_str().unwrap()]);
    assert_ne!(bad.code(), 0, "{}", bad.show());
    assert!(bad.stderr().contains("probs.jsonl:1:"), "{}", bad.show());
    // A row short of its last token.
    let mut short: Value = serde_json::from_str(&lines[1]).unwrap();
    short["probs"].as_array_mut().unwrap().pop();
    let mut cut = lines.clone();
    cut[1] = short.to_string();
    std::fs::write(&probs, cut.join("\n")).unwrap();
    let bad = run(&["--split", "dev", "--probs", probs.to_str().unwrap()]);
    assert_ne!(bad.code(), 0, "{}", bad.show());
    assert!(
        bad.stderr().contains("probs.jsonl:2:") && bad.stderr().contains("input ids"),
        "{}",
        bad.show()
    );
}
