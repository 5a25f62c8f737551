//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub mod attribution;
pub mod eval;
pub mod frames;
pub mod outlets;
pub mod spans;
pub mod tuned;

pub use eval::{EvalAllArgs, EvalSplitterArgs};

/// slant: measure how news outlets frame a story.
///
/// Articles are split into sentences; every sentence goes once through a local transformer
/// encoder (all-MiniLM-L6-v2 by default, run in-process with candle, offline) and small trained
/// heads score it. Results are aggregated per source (outlet) with confidence intervals, and two
/// sources can be compared.
///
/// Inputs (for score and compare): folders of .txt files (source = manifest.csv's value, else
/// the sub-folder name, else the file stem), .jsonl (id, source, text; optional title, date,
/// url), .csv/.tsv with a header, or - for stdin.
#[derive(Debug, Parser)]
#[command(name = "slant", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Worker threads for the encoder and parallel stages (default: all cores, or
    /// RAYON_NUM_THREADS). Output is identical for any value.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a corpus: per-sentence loaded-language probabilities and per-source profiles.
    ///
    /// With --out and --format jsonl or parquet it writes a scored dataset, which `profile`,
    /// `compare` and `merge` read without running the encoder again. The file appears only
    /// when the run is complete; a killed run continues with --resume.
    ///
    /// Examples:
    ///   slant score seeds
    ///   slant score seeds --format json > scores.json
    ///   slant score corpus.jsonl --format parquet --out scores.parquet
    ///   slant score corpus.jsonl --format jsonl --out scores.jsonl --resume
    ///   slant score corpus.jsonl --format jsonl --shard 2/8 --out part-2.jsonl
    ///   cat articles.csv | slant score - --format csv > sentences.csv
    #[command(verbatim_doc_comment)]
    Score(ScoreArgs),
    /// Per-source profiles of a scored dataset (what `score` prints), without the encoder.
    ///
    /// Examples:
    ///   slant profile scores.parquet
    ///   slant profile shards/ --format json
    #[command(verbatim_doc_comment)]
    Profile(ProfileArgs),
    /// Compare two sources: differences with bootstrap CIs and permutation p-values.
    ///
    /// Reads a corpus (and scores it) or a scored dataset (no encoder: seconds).
    ///
    /// Examples:
    ///   slant compare scores.parquet --a nyt --b breitbart
    ///   slant compare seeds --a 000_0ac7ef0ff899d3ba --b 003_4f504e27a0b360eb
    #[command(verbatim_doc_comment)]
    Compare(CompareArgs),
    /// An HTML report: profiles with intervals, frames, who is quoted, actors, a comparison of
    /// two sources, and the sentences behind the numbers. One file that works offline.
    ///
    /// Reads a scored dataset (no encoder: seconds) or a corpus (scored first, into a
    /// temporary dataset that is removed afterwards; to keep it, run `score --out` first).
    ///
    /// Examples:
    ///   slant report scores.parquet --out report.html
    ///   slant report seeds --out seeds.html
    ///   slant report scores.parquet --a nyt --b breitbart --out report.html
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
    /// Merge scored datasets (shards of one corpus, Spark outputs) into one dataset.
    ///
    /// Article ids must be unique across the inputs, and all inputs must come from the same
    /// models and options. Profiles and comparisons of the merged dataset equal those of one
    /// unsharded run.
    ///
    /// Example:
    ///   slant merge part-1.jsonl part-2.jsonl part-3.jsonl --out scores.parquet
    #[command(verbatim_doc_comment)]
    Merge(MergeArgs),
    /// Split text into sentences, one per line (newlines inside a sentence become spaces).
    ///
    /// Examples:
    ///   slant split seeds/000_0ac7ef0ff899d3ba.txt
    ///   echo 'Mr. Smith went to Washington. He said "no."' | slant split --format jsonl
    #[command(verbatim_doc_comment)]
    Split(SplitArgs),
    /// Train a head on labelled data (reads --data, writes models/).
    #[command(subcommand)]
    Train(TrainCommand),
    /// Evaluate a head against labelled data: counts, P/R/F1 per class, macro-F1, manifest.
    #[command(subcommand)]
    Eval(EvalCommand),
}

/// Output formats of `score`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    /// Per-source table for humans.
    Table,
    /// One JSON object: sources, sentences, errors, manifest.
    Json,
    /// One sentence record per line (streams; use for large corpora).
    Jsonl,
    /// Sentence records as CSV with a header.
    Csv,
    /// A scored dataset in Parquet (needs --out): FILE holds the sentences,
    /// FILE.articles.parquet (`.parquet` replaced) the articles; the manifest is in both files'
    /// metadata.
    Parquet,
}

/// Formats of a scored dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DatasetFormat {
    Jsonl,
    Parquet,
}

/// A shard `I/N` (1-based I).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected I/N with 1 <= I <= N, e.g. 2/8");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Output formats of `profile` and `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalysisFormat {
    /// Tables for humans.
    Table,
    /// One JSON document.
    Json,
    /// A self-contained HTML report (as `slant report`); use with --out.
    Html,
}

/// Output formats of `eval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
}

/// Output formats of `split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitFormat {
    /// One sentence per line.
    Text,
    /// One {"start","end","text"} object per line (byte offsets).
    Jsonl,
}

/// Options shared by the commands that run the encoder.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Encoder folder (config.json, tokenizer.json, model.safetensors; BERT or MPNet), or
    /// `accurate` for all-mpnet-base-v2 (after `models/fetch --accurate`) [default: SLANT_MODEL,
    /// else models/encoder/all-MiniLM-L6-v2 found above the current directory]
    #[arg(long, value_name = "DIR|accurate")]
    pub model: Option<PathBuf>,
    /// Loaded-language head on the frozen encoder [default: models/loaded.safetensors of the
    /// slant checkout].
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// Sentences per encoder batch (batches are sorted by length).
    #[arg(long, default_value_t = slant::encode::DEFAULT_BATCH_SIZE, value_name = "N")]
    pub batch_size: usize,
    /// Encoder implementation: `fast` (packed tokens, no padding; tested equal to candle within
    /// 1e-4) or `candle` (candle-transformers' BertModel, the reference).
    #[arg(long, value_enum, default_value_t = slant::encode::Engine::Fast, env = "SLANT_ENGINE")]
    pub engine: slant::encode::Engine,
    /// Encoder arithmetic: `fp32`, or `int8` (fast engine only: int8 weights per output channel
    /// and activations per row in the linear maps; faster, pooled vectors within cosine ~0.99).
    #[arg(long, value_enum, default_value_t = slant::encode::Precision::Fp32, env = "SLANT_PRECISION")]
    pub precision: slant::encode::Precision,
    /// Loaded-language span head [default: models/loaded_spans.safetensors of the slant
    /// checkout, when present].
    #[arg(long, value_name = "FILE")]
    pub spans_head: Option<PathBuf>,
    /// Do not look for loaded-language spans (with `--no-attribution` too, the encoder keeps no
    /// token states).
    #[arg(long)]
    pub no_spans: bool,
    /// Do not tag attributions (records then have empty `attributions` and `unattributed: null`).
    #[arg(long)]
    pub no_attribution: bool,
    /// Take the sentence probability from the tuned loaded-language head
    /// (models/loaded_tuned.safetensors: LoRA adapters on the encoder's top 3 layers, blended
    /// with the frozen head): a little better (anno-lexical test macro-F1 0.773 vs 0.757), about
    /// 0.69× the throughput, as it reruns the top 3 layers.
    #[arg(long, conflicts_with = "head")]
    pub tuned: bool,
    /// A tuned loaded-language head file (implies --tuned).
    #[arg(long, value_name = "FILE", conflicts_with = "head")]
    pub tuned_head: Option<PathBuf>,
    /// Run heads trained on another encoder (or on a damaged or replaced copy of their own)
    /// with a warning instead of stopping with an error. Their output may be meaningless.
    #[arg(long)]
    pub allow_other_encoder: bool,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Folders, .txt/.jsonl/.csv/.tsv files, or - for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ScoreFormat::Table)]
    pub format: ScoreFormat,
    /// Write the output to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With --format table: also list the N most loaded sentences of each source.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub top: usize,
    /// Continue an interrupted run of the same command (--out with --format jsonl or parquet):
    /// the chunks it completed are kept, and the final file is the one an uninterrupted run
    /// writes.
    #[arg(long)]
    pub resume: bool,
    /// Score only shard I of N: the articles whose id hashes to it (SHA-256 of the id modulo
    /// N), whatever the input order. `slant merge` or any analysis given all N outputs gives
    /// the result of one unsharded run.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// An article longer than this (bytes of text) is reported as a record error and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = slant::ingest::DEFAULT_MAX_ARTICLE_BYTES)]
    pub max_article_bytes: u64,
    /// No progress bar or timing lines on stderr (the bar is shown only on a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    /// Leave out the profile table that a run with --out prints on stderr (set by commands
    /// that score on the way to something else).
    #[arg(skip)]
    pub no_summary: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A scored dataset (files written by `slant score --out`, or folders of shards), or a
    /// corpus: folders, .txt/.jsonl/.csv/.tsv files, or - for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The HTML file [default: stdout]. Written to FILE.partial.tmp and renamed when complete.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub html: HtmlArgs,
    /// No progress bar or timing lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// What the HTML report shows.
#[derive(Debug, Clone, Args)]
pub struct HtmlArgs {
    /// Compare this source with --b [default: the two sources with the most articles].
    #[arg(long, value_name = "SOURCE", requires = "b")]
    pub a: Option<String>,
    /// Second source of the comparison.
    #[arg(long, value_name = "SOURCE", requires = "a")]
    pub b: Option<String>,
    /// Most loaded sentences shown per source.
    #[arg(long, default_value_t = HtmlArgs::TOP, value_name = "N")]
    pub top: usize,
    /// Whole articles shown per source (the same sample on every run: the articles whose ids
    /// have the smallest SHA-256).
    #[arg(long, default_value_t = HtmlArgs::ARTICLES, value_name = "N")]
    pub articles: usize,
    /// Evidence (sentences, articles) for at most N sources, those with the most articles;
    /// every source is in the tables.
    #[arg(long, default_value_t = HtmlArgs::EVIDENCE_SOURCES, value_name = "N")]
    pub evidence_sources: usize,
    /// Bootstrap resamples and permutations of the comparison.
    #[arg(long, default_value_t = slant::compare::DEFAULT_REPS, value_name = "N")]
    pub reps: usize,
    /// Seed of the comparison's bootstrap and permutation test.
    #[arg(long, default_value_t = slant::compare::DEFAULT_SEED, value_name = "N")]
    pub seed: u64,
    /// Distinctive terms shown per source of the comparison; 0 counts no words.
    #[arg(long, default_value_t = slant::terms::DEFAULT_TOP_TERMS, value_name = "N")]
    pub terms: usize,
    /// Count word bigrams as well as single words for the distinctive terms.
    #[arg(long)]
    pub bigrams: bool,
}

impl HtmlArgs {
    pub const TOP: usize = 5;
    pub const ARTICLES: usize = 3;
    pub const EVIDENCE_SOURCES: usize = 25;
}

/// The defaults of the command line.
impl Default for HtmlArgs {
    fn default() -> Self {
        Self {
            a: None,
            b: None,
            top: Self::TOP,
            articles: Self::ARTICLES,
            evidence_sources: Self::EVIDENCE_SOURCES,
            reps: slant::compare::DEFAULT_REPS,
            seed: slant::compare::DEFAULT_SEED,
            terms: slant::terms::DEFAULT_TOP_TERMS,
            bigrams: false,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Scored datasets: JSONL or Parquet files written by `slant score --out`, or folders of
    /// them (shards).
    #[arg(required = true, value_name = "DATASET")]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = AnalysisFormat::Table)]
    pub format: AnalysisFormat,
    /// With --format table: also list the N most loaded sentences of each source.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub top: usize,
    /// Write the output to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No timing line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Scored datasets (files or folders of shards).
    #[arg(required = true, value_name = "DATASET")]
    pub inputs: Vec<PathBuf>,
    /// The merged dataset.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Format of the merged dataset [default: from --out's extension, .parquet or .jsonl].
    #[arg(long, value_enum)]
    pub format: Option<DatasetFormat>,
    /// No timing line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A scored dataset (files written by `slant score --out`, or folders of shards: no
    /// encoder is run), or a corpus: folders, .txt/.jsonl/.csv/.tsv files, or - for stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// First source (as named in the corpus).
    #[arg(long, value_name = "SOURCE")]
    pub a: String,
    /// Second source.
    #[arg(long, value_name = "SOURCE")]
    pub b: String,
    #[arg(long, value_enum, default_value_t = AnalysisFormat::Table)]
    pub format: AnalysisFormat,
    /// Write the output to FILE instead of stdout (FILE appears only when complete).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Bootstrap resamples and permutations.
    #[arg(long, default_value_t = slant::compare::DEFAULT_REPS, value_name = "N")]
    pub reps: usize,
    /// Seed of the bootstrap and the permutation test.
    #[arg(long, default_value_t = slant::compare::DEFAULT_SEED, value_name = "N")]
    pub seed: u64,
    /// Distinctive terms listed per source (log-odds with an informative Dirichlet prior over
    /// lower-cased words, stopwords left out); 0 counts no words.
    #[arg(long, default_value_t = slant::terms::DEFAULT_TOP_TERMS, value_name = "N")]
    pub terms: usize,
    /// Count word bigrams as well as single words for the distinctive terms.
    #[arg(long)]
    pub bigrams: bool,
    /// No timing lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// A text file, or - (the default) for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
    #[arg(long, value_enum, default_value_t = SplitFormat::Text)]
    pub format: SplitFormat,
}

/// Where labelled data lives.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Folder laid out like the shared data folder (e.g. DIR/babe/data/final_labels_SG2.csv).
    #[arg(long, env = "SLANT_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Train the loaded-language sentence head on anno-lexical train (threshold chosen on dev),
    /// report dev/test and BABE zero-shot, write the head and its model card.
    ///
    /// Example:
    ///   slant train loaded --data ../shared/data
    #[command(verbatim_doc_comment)]
    Loaded(TrainLoadedArgs),
    /// Train the article frames head (14 SemEval-2023 Task 3 frames, multi-label) on all 433
    /// articles, after reporting its 5-fold CV; write the head and its model card.
    ///
    /// Example:
    ///   slant train frames --data ../shared/data
    #[command(verbatim_doc_comment)]
    Frames(frames::TrainFramesArgs),
    /// Train the attribution tagger (SOURCE / CUE / CONTENT spans) on PolNeAR train, keeping the
    /// epoch with the best dev token F1; report dev and test span F1, write the head and its card.
    ///
    /// Example:
    ///   slant train attribution --data ../shared/data
    #[command(verbatim_doc_comment)]
    Attribution(attribution::TrainAttributionArgs),
    /// Train the loaded-language span tagger (which words make a sentence loaded) on PTC
    /// Loaded_Language, SemEval-2023 Task 3 and BABE biased_words (train parts); report the
    /// held-out PTC and BABE figures; write the head and its model card.
    ///
    /// Example:
    ///   slant train loaded-spans --data ../shared/data
    #[command(verbatim_doc_comment)]
    LoadedSpans(spans::TrainSpansArgs),
    /// Train the tuned loaded-language head: LoRA adapters on the encoder's top 3 layers and a
    /// logistic head, one epoch on anno-lexical train then BABE SG2 (a 10% development split
    /// picks epoch, temperature, threshold); report zero-shot and held-out figures, write the
    /// head (fp16 adapters, under 1 MB) and its model card. `slant score` uses it when present.
    ///
    /// Example:
    ///   slant train loaded-tuned --data ../shared/data
    #[command(verbatim_doc_comment)]
    LoadedTuned(tuned::TrainTunedArgs),
}

#[derive(Debug, Args)]
pub struct TrainLoadedArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the head.
    #[arg(long, default_value = "models/loaded.safetensors", value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write the model card.
    #[arg(long, default_value = "models/MODEL_CARD.md", value_name = "FILE")]
    pub card: PathBuf,
    /// Hidden units of the head (0 = logistic regression).
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Training seed (shuffling and initialisation).
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Also read this span head's token evidence (max and mean over the sentence's word pieces
    /// of P(not O)) from the same encoder pass; the head records the span head's sha256, and
    /// `slant score` then needs that span head (use one trained with `--no-babe`, so BABE stays
    /// unseen).
    #[arg(long, value_name = "FILE")]
    pub span_evidence: Option<PathBuf>,
    /// Average this many heads trained with seeds SEED, SEED+1, ... into one head file (a seed
    /// ensemble; its hidden layer is the members' side by side).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub ensemble: usize,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01, value_name = "F")]
    pub weight_decay: f64,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Evaluate the loaded-language sentence head.
    ///
    /// Examples:
    ///   slant eval loaded --dataset anno-lexical          # anno-lexical test split
    ///   slant eval loaded --dataset babe                  # zero-shot on all of BABE SG2
    ///   slant eval loaded --dataset babe --cv 5 --format json
    ///   slant eval loaded --labels my_labels.jsonl        # your own labelled sentences
    #[command(verbatim_doc_comment)]
    Loaded(EvalLoadedArgs),
    /// Evaluate the sentence splitter: exact-match cases, boundary P/R/F1 with 95% intervals,
    /// per category, failures.
    ///
    /// Examples:
    ///   slant eval splitter
    ///   slant eval splitter --cases my_cases.jsonl --format json
    #[command(verbatim_doc_comment)]
    Splitter(EvalSplitterArgs),
    /// Every evaluation the data present allows, into a run directory: results.json (metrics
    /// with bootstrap 95% intervals; byte-identical on rerun), results.md, manifest.json.
    ///
    /// Examples:
    ///   slant eval all --data DIR --out eval/runs/NAME
    ///   slant eval all --data DIR --out eval/runs/NAME --results-md eval/RESULTS.md
    ///   slant eval all --out runs/mine --labels my_labels.jsonl
    #[command(verbatim_doc_comment)]
    All(EvalAllArgs),
    /// Cross-validate the frames head on SemEval-2023 Task 3 subtask 2: micro- and macro-F1,
    /// per-frame P/R/F1 with counts, manifest.
    ///
    /// Example:
    ///   slant eval frames --cv 5 --format json
    #[command(verbatim_doc_comment)]
    Frames(frames::EvalFramesArgs),
    /// Outlet validity: Spearman correlation over outlets between slant's loaded share and the
    /// human-labelled biased share on BABE SG2 and MBIC (zero-shot: the head never saw them).
    ///
    /// Example:
    ///   slant eval outlets --format json
    #[command(verbatim_doc_comment)]
    Outlets(outlets::EvalOutletsArgs),
    /// Attribution spans on PolNeAR's own test split: exact-match, overlap and token P/R/F1 for
    /// SOURCE, CUE and CONTENT, with counts and a manifest.
    ///
    /// Example:
    ///   slant eval attribution --data DIR --dataset polnear --format json
    #[command(verbatim_doc_comment)]
    Attribution(attribution::EvalAttributionArgs),
    /// Evaluate the loaded-language span head: token-level and span-overlap P/R/F1 on the
    /// held-out PTC articles or BABE fold, beside a bias-lexicon baseline.
    ///
    /// Examples:
    ///   slant eval loaded-spans --dataset ptc
    ///   slant eval loaded-spans --dataset babe --format json
    #[command(verbatim_doc_comment)]
    LoadedSpans(spans::EvalSpansArgs),
}

/// Labelled sets for the loaded-language head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadedDataset {
    /// BABE SG2 (3,673 expert-labelled sentences; "No agreement" left out).
    Babe,
    /// anno-lexical test split (7,250 LLM-labelled sentences).
    AnnoLexical,
}

#[derive(Debug, Args)]
pub struct EvalLoadedArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(
        long,
        value_enum,
        required_unless_present = "labels",
        conflicts_with = "labels"
    )]
    pub dataset: Option<LoadedDataset>,
    /// Evaluate on your own labelled sentences instead (JSONL or CSV: id, text, label 0|1,
    /// optional source, article; formats in docs/cli.md). Span and attribution files are validated only.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Stratified K-fold cross-validation on the dataset (BABE only): each fold's head is
    /// trained on the other folds (plus anno-lexical train unless --no-anno-lexical).
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// With --cv: train on the BABE folds only.
    #[arg(long)]
    pub no_anno_lexical: bool,
    /// Seed of the folds and of training.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Hidden units of the heads trained in --cv.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// With --cv: how the heads pool the encoder's token states.
    #[arg(long, value_enum, default_value_t = slant::heads::Pooling::Mean)]
    pub pooling: slant::heads::Pooling,
    /// With --cv: append this span head's token evidence (max and mean P(not O) over the
    /// sentence's tokens) to the features. Mind leakage: use a span head trained without BABE
    /// (`slant train loaded-spans --no-babe`).
    #[arg(long, value_name = "FILE")]
    pub span_evidence: Option<PathBuf>,
    /// With --cv: append the L2-normalised max over the sentence's word pieces of this span
    /// head's hidden-layer activations (an experiment; use a head trained without BABE).
    #[arg(long, value_name = "FILE")]
    pub span_hidden: Option<PathBuf>,
    /// With --cv: append the 15 lexicon features of `--lexicon` (read from --data) to the
    /// encoder features (an experiment; `slant score` has no lexicons).
    #[arg(long)]
    pub append_lexicon: bool,
    /// With --cv: average this many heads trained with seeds SEED, SEED+1, ... (one head file).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub ensemble: usize,
    /// With --cv: AdamW weight decay of the heads.
    #[arg(long, default_value_t = 0.01, value_name = "F")]
    pub weight_decay: f64,
    /// With --cv: repeat each BABE training row this many times (weights BABE against
    /// anno-lexical train).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub babe_repeat: usize,
    /// Lexicon-only baseline instead of the encoder (lexicons read from --data): without --cv
    /// the rule "a word of the Recasens et al. 2013 bias lexicon"; with --cv a
    /// logistic regression on lexicon counts and scores.
    #[arg(long, conflicts_with = "labels")]
    pub lexicon: bool,
    /// Also write every sentence's prediction to FILE as CSV (`index,fold,gold,prob,pred,threshold`;
    /// `index` is the row of the evaluated set, `fold` the CV fold that held it out, empty
    /// without --cv; `prob` is calibrated; with --cv these are out-of-fold predictions).
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
    #[command(flatten)]
    pub tune: TuneArgs,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Options of the tuned-top loaded head (`--tune-layers K`: fine-tune the top K encoder layers
/// with the head; 0 trains the frozen-feature MLP head).
#[derive(Debug, Clone, Args)]
pub struct TuneArgs {
    /// Top encoder layers fine-tuned with the head (0: frozen encoder, MLP head).
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub tune_layers: usize,
    /// Epochs of fine-tuning (the best epoch on the development split is kept).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub tune_epochs: usize,
    /// Peak learning rate of the tuned layers, or of the adapters with --tune-lora (the head
    /// uses --tune-lr-head) [default: 5e-5, with --tune-lora 5e-4].
    #[arg(long, value_name = "LR")]
    pub tune_lr: Option<f64>,
    /// Peak learning rate of the head when tuning.
    #[arg(long, default_value_t = 1e-3, value_name = "LR")]
    pub tune_lr_head: f64,
    /// Sentences per fine-tuning step.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub tune_batch: usize,
    /// Dropout while fine-tuning.
    #[arg(long, default_value_t = 0.1, value_name = "P")]
    pub tune_dropout: f32,
    /// With --tune-layers: use at most N anno-lexical train sentences (seeded sample) as extra
    /// training data (0: none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub tune_anno_sample: usize,
    /// Train rank-R low-rank adapters (LoRA) on the tuned layers' six weight matrices instead
    /// of the layers' full weights (0: full weights). Pretrained weights stay frozen; the
    /// adapters are what a shipped head stores.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub tune_lora: usize,
    /// LoRA scale numerator: adapters are multiplied by ALPHA / R [default: 2·R].
    #[arg(long, value_name = "ALPHA")]
    pub tune_lora_alpha: Option<f32>,
    /// With --tune-lora: before the folds, train the adapters and head for one epoch on a seeded
    /// sample of N anno-lexical train sentences (LLM labels; 33831 or more: all of them), and
    /// start every fold from there (0: no pretraining).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub tune_pretrain_anno: usize,
    /// With --tune-lora: train N adapter sets per fold (different seeds, same start) and use
    /// their uniform soup (the mean of their merged weights and heads; same inference cost as
    /// one).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub tune_soup: usize,
    /// With --tune-lora: blend the tuned head with a frozen-encoder head trained in the same
    /// fold (the MLP of the untuned CV, reading --span-evidence when given, plus anno-lexical
    /// train unless --no-anno-lexical): the mean of their temperature-scaled logits, then a
    /// temperature and threshold of its own, all on the fold's development split.
    #[arg(long)]
    pub tune_blend_frozen: bool,
    /// Clip the global gradient norm of adapters and head at this value with --tune-lora
    /// (0: no clipping).
    #[arg(long, default_value_t = 1.0, value_name = "NORM")]
    pub tune_clip: f32,
    /// With --tune-lora: keep the epoch whose development macro-F1 (at its best threshold) is
    /// highest, instead of the one with the lowest development loss.
    #[arg(long)]
    pub tune_select_f1: bool,
    /// Implementation of the fine-tuning passes: `fast` (hand-written backward on packed
    /// tokens) or `candle` (candle autograd, the reference); same model, see `train::fastgrad`.
    #[arg(long, value_enum, default_value_t = slant::train::tune::TuneEngine::Fast, value_name = "ENGINE")]
    pub tune_engine: slant::train::tune::TuneEngine,
}

impl TuneArgs {
    /// The training options these arguments give, with `seed`.
    pub fn opts(&self, seed: u64) -> slant::train::tune::TuneOpts {
        slant::train::tune::TuneOpts {
            layers: self.tune_layers,
            epochs: self.tune_epochs,
            batch_size: self.tune_batch,
            lr_layers: self.tune_lr.unwrap_or(5e-5),
            lr_head: self.tune_lr_head,
            weight_decay: 1e-2,
            dropout: self.tune_dropout,
            seed,
            engine: self.tune_engine,
        }
    }

    /// The LoRA training options these arguments give (`--tune-lora R > 0`), with `seed`.
    pub fn lora_opts(&self, seed: u64) -> slant::train::lora::LoraOpts {
        slant::train::lora::LoraOpts {
            epochs: self.tune_epochs,
            batch_size: self.tune_batch,
            lr: self.tune_lr.unwrap_or(5e-4),
            lr_head: self.tune_lr_head,
            weight_decay: 1e-2,
            dropout: self.tune_dropout,
            clip: self.tune_clip,
            seed,
            select_by_f1: self.tune_select_f1,
        }
    }

    /// The LoRA scale numerator (`--tune-lora-alpha`, default twice the rank).
    pub fn lora_alpha(&self) -> f32 {
        self.tune_lora_alpha.unwrap_or(2.0 * self.tune_lora as f32)
    }
}

impl From<&ModelArgs> for slant::models::ModelOptions {
    fn from(m: &ModelArgs) -> Self {
        Self {
            model: m.model.clone(),
            head: m.head.clone(),
            batch_size: m.batch_size,
            engine: m.engine,
            precision: m.precision,
            spans_head: m.spans_head.clone(),
            no_spans: m.no_spans,
            no_attribution: m.no_attribution,
            tuned: m.tuned,
            tuned_head: m.tuned_head.clone(),
            allow_other_encoder: m.allow_other_encoder,
        }
    }
}
