//! # slant
//!
//! Measures how news outlets frame a story. The pipeline, one module per stage:
//!
//! 1. [`ingest`]: read articles (`Article { id, source, text, .. }`) from folders of `.txt`
//!    files (with an optional manifest), JSONL, CSV or stdin. A broken record is reported with
//!    its id and the run goes on.
//! 2. [`segment`]: split each article into sentences, keeping byte spans into the original text.
//! 3. [`encode`]: one pass of a local BERT-family encoder per sentence batch (the packed, unpadded
//!    fast engine by default; candle's `BertModel` as the reference); batches are sorted by length.
//! 4. [`heads`]: small trained heads reading that one pass: the loaded-language sentence head,
//!    the frames head, and per-token span taggers ([`heads::tagger`]) such as the attribution
//!    tagger of [`attribution`] (who is cited, with which verb, saying what).
//! 5. [`aggregate`]: per-source profiles built from mergeable sums, folded in parallel and sorted.
//! 6. [`compare`]: two sources side by side with bootstrap CIs and permutation p-values
//!    (statistics live in [`stats`]).
//! 7. [`report`]: human tables, JSON, JSONL and CSV.
//! 8. [`train`] / [`eval`]: train heads on labelled data and evaluate them with a run manifest.

pub mod actors;
pub mod aggregate;
pub mod attribution;
pub mod compare;
pub mod data;
pub mod dataset;
pub mod encode;
pub mod error;
pub mod eval;
pub mod heads;
pub mod ingest;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod report;
pub mod segment;
pub mod stats;
pub mod terms;
pub mod train;
pub mod vocab;

#[cfg(test)]
mod fuzz_tests;

pub use error::{Error, Result};
