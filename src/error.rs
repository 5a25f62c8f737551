//! Library error type. The CLI wraps these in `anyhow` and prints the cause chain.

use std::path::PathBuf;

/// Errors raised by the slant library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The I/O error is part of the message (not a separate cause), so it is printed once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("model error: {0}")]
    Model(String),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("data error: {0}")]
    Data(String),
    #[error("invalid input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err: source,
        }
    }
}
