//! What scoring needs of the loaded-language span tagger (a [`super::tagger::TaggerHead`]
//! trained by `crate::train::loaded_spans`): its file name and its labels.

use super::tagger::bio_labels;
use crate::data::spans::LOADED;

/// Default file of the span head under `models/`.
pub const LOADED_SPANS_HEAD_FILE: &str = "loaded_spans.safetensors";

/// The head's labels.
pub fn labels() -> Vec<String> {
    bio_labels(&[LOADED])
}
