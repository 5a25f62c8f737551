//! Library error type. The CLI wraps these in `anyhow` and prints the cause chain.

use std::path::{Path, PathBuf};

/// Errors raised by the slant library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The I/O error is part of the message (not a separate cause), so it is printed once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A model, head or encoder config file that is readable but not what slant reads: not
    /// safetensors, a missing or mis-shaped tensor, a bad header value, a config field.
    #[error("{}: {why}", path.display())]
    BadModel { path: PathBuf, why: String },
    /// A record of a data file (labelled data, a scored dataset, its journal, splitter cases)
    /// that does not parse or breaks the file's rules; `line` when the file has lines.
    #[error("{}{}: {why}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    BadData {
        path: PathBuf,
        line: Option<usize>,
        why: String,
    },
    /// Input or options that cannot be used (an article, a text, a value out of range).
    #[error("invalid input: {0}")]
    Input(String),
    /// Something this engine or head cannot do (a feature of the other engine, an activation
    /// function, a decoding scheme).
    #[error("{0}")]
    Unsupported(String),
    /// Training data that cannot be trained on (sizes that disagree, nothing to learn from).
    #[error("{0}")]
    Training(String),
    /// A broken internal invariant (a bug, not bad input): a serialisation that cannot fail, or
    /// sizes the code itself made that disagree.
    #[error("internal error: {0}")]
    Internal(String),
    /// A model, head or file that was asked for (or is needed) cannot be found.
    #[error("{0}")]
    Missing(String),
    /// A head, encoder or option that does not fit the others (labels, dimensions, engine,
    /// partner head).
    #[error("{0}")]
    Mismatch(String),
    /// A model file that is truncated, overwritten or otherwise not what it should be.
    #[error("{} is damaged: {why}", path.display())]
    Damaged { path: PathBuf, why: String },
    /// A head used with an encoder other than the one it was trained on.
    #[error("{0}")]
    WrongEncoder(String),
    /// What was being done when `source` failed.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }

    /// [`Error::BadModel`] for `path`.
    pub fn bad_model(path: impl AsRef<Path>, why: impl std::fmt::Display) -> Self {
        Error::BadModel {
            path: path.as_ref().to_path_buf(),
            why: why.to_string(),
        }
    }

    /// [`Error::BadData`] for `path`, at 1-based `line` when there is one.
    pub fn bad_data(
        path: impl AsRef<Path>,
        line: Option<usize>,
        why: impl std::fmt::Display,
    ) -> Self {
        Error::BadData {
            path: path.as_ref().to_path_buf(),
            line,
            why: why.to_string(),
        }
    }
}

/// Context for library results and options, in the manner of `anyhow::Context`: the message
/// says what was being done, the cause chain keeps the original error.
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e),
        })
    }
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().into(),
            source: Box::new(e),
        })
    }
}

/// A missing value (`None`) is an [`Error::Missing`] with the given message.
impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::Missing(context.into()))
    }
    fn with_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.ok_or_else(|| Error::Missing(context().into()))
    }
}
