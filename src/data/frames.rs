//! SemEval-2023 Task 3 subtask 2 (English): 433 news articles, each labelled with one or more of
//! 14 frames. Layout under the data folder:
//!
//! * `semeval2023_task3_en/data/en/train-articles-subtask-2/article<ID>.txt` (title on the first
//!   line, then the text);
//! * `semeval2023_task3_en/data/en/train-labels-subtask-2.txt`: `ID<TAB>Frame1,Frame2,...`.
//!
//! The data is the organisers' (research use); it is read by path and never committed.

use std::path::{Path, PathBuf};

use crate::vocab::FRAMES;
use crate::{Error, Result};

/// One labelled article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedArticle {
    pub id: String,
    pub text: String,
    /// One flag per frame of [`FRAMES`].
    pub labels: Vec<bool>,
}

/// Relative path of the labels file inside the data folder.
pub const LABELS: &str = "semeval2023_task3_en/data/en/train-labels-subtask-2.txt";
/// Relative path of the articles folder inside the data folder.
pub const ARTICLES: &str = "semeval2023_task3_en/data/en/train-articles-subtask-2";

/// Read the articles and their frames, sorted by id. Returns the labels file path too.
pub fn semeval_frames(data: &Path) -> Result<(Vec<FramedArticle>, PathBuf)> {
    let labels = data.join(LABELS);
    let dir = data.join(ARTICLES);
    if !labels.is_file() || !dir.is_dir() {
        return Err(Error::Missing(format!(
            "SemEval-2023 Task 3 subtask 2 not found at {} (check --data / SLANT_DATA)",
            labels.display()
        )));
    }
    let text = std::fs::read_to_string(&labels).map_err(|e| Error::io(&labels, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (id, frames) = line.split_once('\t').unwrap_or((line, ""));
        let mut flags = vec![false; FRAMES.len()];
        for f in frames.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let k = FRAMES.iter().position(|x| *x == f).ok_or_else(|| {
                Error::bad_data(&labels, Some(i + 1), format!("unknown frame `{f}`"))
            })?;
            flags[k] = true;
        }
        let path = dir.join(format!("article{}.txt", id.trim()));
        let body = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        out.push(FramedArticle {
            id: id.trim().to_string(),
            text: body,
            labels: flags,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((out, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labels_and_texts() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(ARTICLES)).unwrap();
        std::fs::write(d.path().join(LABELS), "2\tEconomic,Political\n1\t\n").unwrap();
        std::fs::write(d.path().join(ARTICLES).join("article1.txt"), "One.").unwrap();
        std::fs::write(d.path().join(ARTICLES).join("article2.txt"), "Two.").unwrap();
        let (rows, _) = semeval_frames(d.path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].id.as_str(), rows[0].text.as_str()), ("1", "One."));
        assert!(rows[0].labels.iter().all(|&x| !x));
        let on: Vec<&str> = FRAMES
            .iter()
            .zip(&rows[1].labels)
            .filter(|(_, &x)| x)
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(on, ["Economic", "Political"]);
        std::fs::write(d.path().join(LABELS), "1\tNope\n").unwrap();
        assert!(semeval_frames(d.path()).is_err());
    }
}
