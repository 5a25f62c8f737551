//! The document of `slant score --format json`: per-source profiles, actors, articles,
//! sentences, record errors and the run manifest, in that order.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::actors::ActorReport;
use crate::aggregate::SourceProfile;
use crate::ingest::RecordError;
use crate::pipeline::records::SentenceRecord;

/// `slant score --format json`: one JSON object.
#[derive(Debug, Serialize)]
pub struct ScoreDocument<'a> {
    /// [`crate::pipeline::records::SCHEMA_VERSION`].
    pub schema_version: u32,
    pub sources: &'a [SourceProfile],
    pub actors: Vec<ActorReport>,
    pub articles: &'a [ArticleRecord],
    pub sentences: &'a [SentenceRecord],
    pub errors: &'a [RecordError],
    pub manifest: &'a Manifest,
}

impl ScoreDocument<'_> {
    /// Pretty JSON, every object's keys sorted (the document goes through `serde_json::Value`,
    /// whose maps are ordered by key), without the final newline.
    pub fn write_pretty<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(w, &serde_json::to_value(self)?)
    }
}

/// One article of `score --format json`'s `articles` array.
#[derive(Debug, Serialize)]
pub struct ArticleRecord {
    pub id: String,
    pub source: String,
    pub sentences: u64,
    /// P(frame) per frame (absent without the frames head).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub frames: BTreeMap<String, f64>,
}

use crate::dataset::Manifest;
