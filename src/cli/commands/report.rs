//! `slant report`, `profile --format html` and `compare --format html`: the HTML report of a
//! scored dataset. A corpus is first scored into a temporary dataset (removed afterwards), so
//! the report is always made from a dataset, by one code path.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use super::dataset::{dataset_inputs, score, AtomicOut};
use crate::cli::args::*;
use slant::dataset::{self, Dataset, ReadOptions};
use slant::pipeline::TermOpts;
use slant::report::html::{render, ReportData};
use slant::{actors, compare as stats_compare};

/// A dataset file made for one command; removed (with its partial files) when dropped.
struct TempDataset(PathBuf);

impl Drop for TempDataset {
    fn drop(&mut self) {
        let (a, b) = dataset::journal::partial_paths(&self.0);
        for p in [&self.0, &a, &b] {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `inputs` as scored datasets: themselves, or the corpus they name scored into a temporary
/// JSONL dataset (the exit code of that scoring comes back: 1 when records failed).
fn as_datasets(
    inputs: &[PathBuf],
    model: ModelArgs,
    quiet: bool,
) -> Result<(Vec<PathBuf>, Option<TempDataset>, i32)> {
    let n = inputs.iter().filter(|p| dataset::is_dataset(p)).count();
    if n == inputs.len() {
        let how = "slant score CORPUS --out FILE --format jsonl";
        return Ok((dataset_inputs(inputs, how)?, None, 0));
    }
    if n > 0 {
        bail!("give either scored datasets or a corpus, not both");
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp =
        std::env::temp_dir().join(format!("slant-report-{}-{nanos}.jsonl", std::process::id()));
    let guard = TempDataset(tmp.clone());
    let code = score(ScoreArgs {
        inputs: inputs.to_vec(),
        format: ScoreFormat::Jsonl,
        out: Some(tmp.clone()),
        top: 0,
        resume: false,
        shard: None,
        max_article_bytes: slant::ingest::DEFAULT_MAX_ARTICLE_BYTES,
        quiet,
        no_summary: true,
        model,
    })?;
    Ok((vec![tmp], Some(guard), code))
}

/// The two sources to compare: the ones asked for (which must exist), else the two with the
/// most articles (ties by name); `None` with fewer than two sources.
fn pair(corpus: &slant::aggregate::Corpus, h: &HtmlArgs) -> Result<Option<(String, String)>> {
    if let (Some(a), Some(b)) = (&h.a, &h.b) {
        if a == b {
            bail!("--a and --b name the same source `{a}`");
        }
        for want in [a, b] {
            if !corpus.sources.contains_key(want) {
                let names: Vec<&str> = corpus.sources.keys().map(|s| s.as_str()).collect();
                bail!(
                    "source `{want}` is not in the dataset; sources found: {}",
                    names.join(", ")
                );
            }
        }
        return Ok(Some((a.clone(), b.clone())));
    }
    let mut by_size: Vec<(&String, usize)> = corpus
        .sources
        .iter()
        .map(|(k, s)| (k, s.articles.len()))
        .collect();
    by_size.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    Ok(match by_size.as_slice() {
        [a, b, ..] => Some((a.0.clone(), b.0.clone())),
        _ => None,
    })
}

/// Read `inputs` (datasets), build the report and write it to `out`. With `only_pair`, the
/// report is that of the comparison: the two sources only. Returns the number of record errors.
fn write_html(
    inputs: &[PathBuf],
    h: &HtmlArgs,
    only_pair: bool,
    out: &Option<PathBuf>,
) -> Result<(usize, u64)> {
    let terms_for = |a: &str, b: &str| {
        (h.terms > 0).then(|| TermOpts {
            sources: [a.to_string(), b.to_string()].into_iter().collect(),
            bigrams: h.bigrams,
        })
    };
    let asked = h.a.as_deref().zip(h.b.as_deref());
    let d = Dataset::read(
        inputs,
        &ReadOptions {
            terms: asked.and_then(|(a, b)| terms_for(a, b)),
            top: h.top,
            sample: h.articles,
        },
    )?;
    let chosen = pair(&d.corpus, h)?;
    let comparison = match &chosen {
        Some((a, b)) => {
            // Words are counted for the two sources only; for a pair chosen here that takes a
            // second (cheap) read of the sentences.
            let counted;
            let corpus = match (asked, terms_for(a, b)) {
                (None, Some(terms)) => {
                    counted = Dataset::read(
                        inputs,
                        &ReadOptions {
                            terms: Some(terms),
                            ..Default::default()
                        },
                    )?
                    .corpus;
                    &counted
                }
                _ => &d.corpus,
            };
            let (sa, sb) = (&corpus.sources[a], &corpus.sources[b]);
            let mut c = stats_compare::compare(a, sa, b, sb, h.reps, h.seed);
            c.distinctive = slant::terms::distinctive(&sa.terms, &sb.terms, h.terms);
            Some(c)
        }
        None if only_pair => bail!("a comparison needs two sources"),
        None => None,
    };
    let mut profiles = d.corpus.profiles();
    let mut actors = d.corpus.actor_report(actors::DEFAULT_MAIN_ACTORS);
    if let (true, Some((a, b))) = (only_pair, &chosen) {
        let keep = |s: &str| s == a || s == b;
        profiles.retain(|p| keep(&p.source));
        for x in &mut actors {
            x.by_source.retain(|s| keep(&s.source));
        }
    }
    let html = render(&ReportData {
        profiles: &profiles,
        actors: &actors,
        comparison: comparison.as_ref(),
        top: &d.top,
        sample: &d.sample,
        sample_per_source: h.articles,
        evidence_sources: h.evidence_sources,
        manifest: &d.manifest,
        errors: &d.errors,
    });
    let mut o = AtomicOut::new(out)?;
    o.w.write_all(html.as_bytes())?;
    o.finish()?;
    Ok((d.errors.len(), html.len() as u64))
}

fn done(out: &Option<PathBuf>, bytes: u64, t0: Instant, quiet: bool) {
    if quiet {
        return;
    }
    let what = out
        .as_deref()
        .map_or("the report".to_string(), |p: &Path| p.display().to_string());
    eprintln!(
        "slant: wrote {what} ({:.0} KB) in {:.1}s",
        bytes as f64 / 1024.0,
        t0.elapsed().as_secs_f64()
    );
}

pub fn report(a: ReportArgs) -> Result<i32> {
    let t0 = Instant::now();
    let (inputs, _tmp, code) = as_datasets(&a.inputs, a.model, a.quiet)?;
    let (errors, bytes) = write_html(&inputs, &a.html, false, &a.out)?;
    done(&a.out, bytes, t0, a.quiet);
    Ok(if code != 0 || errors > 0 { 1 } else { 0 })
}

/// `profile --format html` (datasets only): the full report.
pub fn profile_html(a: &ProfileArgs) -> Result<i32> {
    let t0 = Instant::now();
    let inputs = dataset_inputs(&a.inputs, "slant score CORPUS --out FILE --format jsonl")?;
    let h = HtmlArgs {
        top: a.top.max(1),
        ..HtmlArgs::default()
    };
    let (errors, bytes) = write_html(&inputs, &h, false, &a.out)?;
    done(&a.out, bytes, t0, a.quiet);
    Ok(if errors > 0 { 1 } else { 0 })
}

/// `compare --format html`: the report of the two sources.
pub fn compare_html(a: CompareArgs) -> Result<i32> {
    let t0 = Instant::now();
    if a.a == a.b {
        bail!("--a and --b name the same source `{}`", a.a);
    }
    let (inputs, _tmp, code) = as_datasets(&a.inputs, a.model, a.quiet)?;
    let h = HtmlArgs {
        a: Some(a.a),
        b: Some(a.b),
        evidence_sources: 2,
        reps: a.reps,
        seed: a.seed,
        terms: a.terms,
        bigrams: a.bigrams,
        ..HtmlArgs::default()
    };
    let (errors, bytes) = write_html(&inputs, &h, true, &a.out)?;
    done(&a.out, bytes, t0, a.quiet);
    Ok(if code != 0 || errors > 0 { 1 } else { 0 })
}
