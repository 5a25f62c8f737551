//! Crash-safe output of `slant score --out F`: every completed chunk is appended to a JSONL
//! journal next to `F` (`F.partial.jsonl`) and synced, then a small progress file
//! (`F.partial.json`) is replaced atomically. `F` itself appears only when the run is complete
//! (JSONL: the journal plus its manifest line, renamed; Parquet: converted from the journal,
//! then renamed), so a killed run never leaves a file that looks complete. `--resume` truncates
//! the journal to the last recorded chunk and continues after its articles, giving a file
//! byte-identical to an uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Manifest;
use crate::error::Error;
use crate::Result;

/// The format of the finished file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Jsonl,
    Parquet,
}

/// What the progress file records after each chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The run's options and models: a resumed run must have the same.
    pub fingerprint: serde_json::Value,
    pub chunks: u64,
    /// Journal bytes that hold complete chunks.
    pub bytes: u64,
    /// Articles scored into the journal.
    pub articles: u64,
    pub sentences: u64,
    pub truncated: u64,
    pub errors: u64,
}

/// The journal of a run in progress.
pub struct Journal {
    target: PathBuf,
    format: Format,
    journal: PathBuf,
    progress_path: PathBuf,
    file: BufWriter<File>,
    pub progress: Progress,
}

/// `F.partial.jsonl` and `F.partial.json` of the output `F`.
pub fn partial_paths(target: &Path) -> (PathBuf, PathBuf) {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    (
        target.with_file_name(format!("{name}.partial.jsonl")),
        target.with_file_name(format!("{name}.partial.json")),
    )
}

fn io(what: &Path, e: std::io::Error) -> Error {
    Error::io(what, e)
}

impl Journal {
    /// Start a new journal for `target` (an earlier partial run's journal is discarded).
    pub fn create(target: &Path, format: Format, fingerprint: serde_json::Value) -> Result<Self> {
        let (journal, progress_path) = partial_paths(target);
        let file = File::create(&journal).map_err(|e| io(&journal, e))?;
        let j = Self {
            target: target.to_path_buf(),
            format,
            journal,
            progress_path,
            file: BufWriter::with_capacity(1 << 20, file),
            progress: Progress {
                fingerprint,
                ..Progress::default()
            },
        };
        j.save_progress()?;
        Ok(j)
    }

    /// Continue the journal of an interrupted run of `target`, or `None` when there is none.
    /// The fingerprint must equal the earlier run's. The journal is cut back to its last
    /// complete chunk.
    pub fn resume(
        target: &Path,
        format: Format,
        fingerprint: serde_json::Value,
    ) -> Result<Option<Self>> {
        let (journal, progress_path) = partial_paths(target);
        let Ok(text) = std::fs::read_to_string(&progress_path) else {
            return Ok(None);
        };
        let progress: Progress = serde_json::from_str(&text).map_err(|e| {
            Error::bad_data(
                &progress_path,
                None,
                format!("unreadable progress file ({e}); delete it to start again"),
            )
        })?;
        if progress.fingerprint != fingerprint {
            return Err(Error::Mismatch(format!(
                "--resume: the interrupted run of {} used other inputs, models or options \
                 (recorded: {}; now: {}); run without --resume to start again",
                target.display(),
                progress.fingerprint,
                fingerprint
            )));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&journal)
            .map_err(|e| io(&journal, e))?;
        let len = file.metadata().map_err(|e| io(&journal, e))?.len();
        if len < progress.bytes {
            return Err(Error::bad_data(
                &journal,
                None,
                format!(
                    "the journal is shorter ({len} bytes) than its progress file says ({}); \
                 run without --resume to start again",
                    progress.bytes
                ),
            ));
        }
        file.set_len(progress.bytes).map_err(|e| io(&journal, e))?;
        file.sync_all().map_err(|e| io(&journal, e))?;
        file.seek(SeekFrom::End(0)).map_err(|e| io(&journal, e))?;
        Ok(Some(Self {
            target: target.to_path_buf(),
            format,
            journal,
            progress_path,
            file: BufWriter::with_capacity(1 << 20, file),
            progress,
        }))
    }

    fn save_progress(&self) -> Result<()> {
        let tmp = self.progress_path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        serde_json::to_writer(&mut f, &self.progress)
            .map_err(|e| Error::bad_data(&tmp, None, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &self.progress_path).map_err(|e| io(&self.progress_path, e))
    }

    /// Append one completed chunk (its JSONL lines) and record it.
    pub fn write_chunk(
        &mut self,
        lines: &[u8],
        articles: u64,
        sentences: u64,
        truncated: u64,
        errors: u64,
    ) -> Result<()> {
        self.file
            .write_all(lines)
            .and_then(|_| self.file.flush())
            .map_err(|e| io(&self.journal, e))?;
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| io(&self.journal, e))?;
        let p = &mut self.progress;
        p.chunks += 1;
        p.bytes += lines.len() as u64;
        p.articles += articles;
        p.sentences += sentences;
        p.truncated += truncated;
        p.errors += errors;
        self.save_progress()
    }

    /// Finish: write the manifest, produce the target file(s) and remove the journal.
    pub fn finish(mut self, manifest: &Manifest) -> Result<()> {
        match self.format {
            Format::Jsonl => {
                super::write_line(&mut self.file, super::LineRef::Manifest(manifest))
                    .and_then(|_| self.file.flush())
                    .map_err(|e| io(&self.journal, e))?;
                self.file
                    .get_ref()
                    .sync_all()
                    .map_err(|e| io(&self.journal, e))?;
                drop(self.file);
                std::fs::rename(&self.journal, &self.target).map_err(|e| io(&self.target, e))?;
            }
            Format::Parquet => {
                drop(self.file);
                super::parquet::write_from_journal(&self.journal, &self.target, manifest)?;
                std::fs::remove_file(&self.journal).map_err(|e| io(&self.journal, e))?;
            }
        }
        std::fs::remove_file(&self.progress_path).map_err(|e| io(&self.progress_path, e))?;
        Ok(())
    }
}
