//! Model files checked before use: the encoders slant knows by sha256, and damage (truncated
//! or overwritten safetensors and JSON files) reported as [`Error::Damaged`] naming the file
//! and what is wrong, instead of a parser's message or, worse, scores from broken weights.

use std::path::Path;

use crate::{Error, Result};

/// An encoder release slant knows: its folder name under `models/encoder/`, and the sha256 of
/// its `model.safetensors` as fetched by the script that installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownEncoder {
    /// The model's name, also its folder under `models/encoder/`.
    pub name: &'static str,
    /// sha256 of `model.safetensors`.
    pub weights_sha256: &'static str,
    /// The command that installs (or restores) it.
    pub fetch: &'static str,
}

/// Every encoder release slant knows (the default first).
pub const KNOWN_ENCODERS: &[KnownEncoder] = &[
    KnownEncoder {
        name: "all-MiniLM-L6-v2",
        weights_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        fetch: "models/fetch",
    },
    KnownEncoder {
        name: "all-mpnet-base-v2",
        weights_sha256: "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        fetch: "models/fetch --accurate",
    },
];

/// The known encoder whose weights have this sha256.
pub fn known_by_sha(sha256: &str) -> Option<&'static KnownEncoder> {
    KNOWN_ENCODERS.iter().find(|k| k.weights_sha256 == sha256)
}

/// The known encoder installed in a folder of this name (`models/encoder/<name>`).
pub fn known_by_folder(dir: &Path) -> Option<&'static KnownEncoder> {
    let name = dir.file_name()?.to_str()?;
    KNOWN_ENCODERS.iter().find(|k| k.name == name)
}

/// A short name for the encoder with these weights: the known release's name, else the
/// first 12 hex digits of the sha256.
pub fn describe_sha(sha256: &str) -> String {
    match known_by_sha(sha256) {
        Some(k) => format!("{} (sha256 {}…)", k.name, &sha256[..12]),
        None => format!("sha256 {}…", &sha256[..12.min(sha256.len())]),
    }
}

/// Check that the folder's weights are what its name promises: a folder named like a known
/// release (`models/encoder/all-MiniLM-L6-v2`) must hold that release's exact weights, else
/// the file was damaged or replaced.
pub fn check_known_weights(dir: &Path, weights_sha256: &str) -> Result<()> {
    let Some(k) = known_by_folder(dir) else {
        return Ok(());
    };
    if k.weights_sha256 == weights_sha256 {
        return Ok(());
    }
    Err(Error::Damaged {
        path: dir.join("model.safetensors"),
        why: format!(
            "its sha256 is {}…, not that of the {} release ({}…): the file was damaged or \
             replaced. Run `{}` to restore it",
            &weights_sha256[..12.min(weights_sha256.len())],
            k.name,
            &k.weights_sha256[..12],
            k.fetch
        ),
    })
}

/// Check a safetensors file's layout against its length: the 8-byte header length, the JSON
/// header, and the tensor data its offsets need. A truncated file says how many bytes it has
/// and how many its header needs.
pub fn check_safetensors(path: &Path, bytes: &[u8]) -> Result<()> {
    let damaged = |why: String| Error::Damaged {
        path: path.to_path_buf(),
        why,
    };
    let len = bytes.len() as u64;
    if len < 8 {
        return Err(damaged(format!(
            "it has {len} bytes, fewer than the 8 of a safetensors header length (truncated, \
             or not a safetensors file)"
        )));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > len - 8 {
        // A header length beyond any plausible header is not a truncation but another format.
        if n > 100 << 20 {
            return Err(damaged(
                "it does not start with a safetensors header length (not a safetensors file)"
                    .into(),
            ));
        }
        return Err(damaged(format!(
            "truncated: it has {len} bytes, but its header alone needs {}",
            8 + n
        )));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n as usize])
        .map_err(|e| damaged(format!("its safetensors header is not valid JSON ({e})")))?;
    let Some(obj) = header.as_object() else {
        return Err(damaged(
            "its safetensors header is not a JSON object".into(),
        ));
    };
    let mut need = 0u64;
    for (name, t) in obj {
        if name == "__metadata__" {
            continue;
        }
        let end = t
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(|| damaged(format!("tensor {name:?} has no data_offsets")))?;
        need = need.max(end);
    }
    let have = len - 8 - n;
    if have < need {
        return Err(damaged(format!(
            "truncated: it has {len} bytes, but its tensors need {} ({:.1}% present)",
            8 + n + need,
            100.0 * len as f64 / (8 + n + need) as f64
        )));
    }
    if have > need {
        return Err(damaged(format!(
            "it has {} bytes after its last tensor (two files joined, or not written by a \
             safetensors writer)",
            have - need
        )));
    }
    Ok(())
}

/// Read and parse a JSON file; a file that ends inside its JSON is [`Error::Damaged`]
/// (truncated), one that is not JSON an `Error::BadModel` naming the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_json(path, &text)
}

/// Parse `bytes` read from `path` as in [`read_json`].
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| json_error(path, bytes.len(), &e))
}

/// The error for a JSON file that did not parse: truncated (it ends inside a value), else not
/// valid JSON / not of the expected shape.
pub fn json_error(path: &Path, len: usize, e: &serde_json::Error) -> Error {
    if e.is_eof() {
        Error::Damaged {
            path: path.to_path_buf(),
            why: format!("truncated: its {len} bytes end inside the JSON ({e})"),
        }
    } else {
        Error::bad_model(path, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tensors: &[(&str, usize)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut off = 0;
        for (name, n) in tensors {
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": "F32", "shape": [n / 4], "data_offsets": [off, off + n]}),
            );
            off += n;
        }
        let h = serde_json::to_vec(&header).unwrap();
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        out.extend(vec![0u8; off]);
        out
    }

    fn why(e: Error) -> String {
        match e {
            Error::Damaged { why, .. } => why,
            e => panic!("not a damage error: {e}"),
        }
    }

    #[test]
    fn a_whole_file_passes_and_every_cut_says_truncated() {
        let f = file(&[("a", 16), ("b", 40)]);
        check_safetensors(Path::new("m"), &f).unwrap();
        for cut in [0, 5, 9, f.len() - 56, f.len() - 1] {
            let w = why(check_safetensors(Path::new("m"), &f[..cut]).unwrap_err());
            assert!(
                w.contains("truncated") || w.contains("fewer than the 8"),
                "cut {cut}: {w}"
            );
        }
        let mut long = f.clone();
        long.extend([1, 2, 3]);
        assert!(
            why(check_safetensors(Path::new("m"), &long).unwrap_err()).contains("3 bytes after")
        );
    }

    #[test]
    fn another_format_is_not_called_truncated() {
        let w = why(check_safetensors(Path::new("m"), b"{\"not\": \"safetensors\"}").unwrap_err());
        assert!(w.contains("not a safetensors file"), "{w}");
    }

    #[test]
    fn a_known_folder_must_hold_its_release() {
        let dir = Path::new("models/encoder/all-MiniLM-L6-v2");
        check_known_weights(dir, KNOWN_ENCODERS[0].weights_sha256).unwrap();
        let w = why(check_known_weights(dir, &"0".repeat(64)).unwrap_err());
        assert!(
            w.contains("damaged or replaced") && w.contains("models/fetch"),
            "{w}"
        );
        // Any other folder may hold any weights.
        check_known_weights(Path::new("my-encoder"), &"0".repeat(64)).unwrap();
    }

    #[test]
    fn truncated_json_is_damage_and_bad_json_is_not() {
        let e = parse_json::<serde_json::Value>(Path::new("c.json"), b"{\"a\": [1, 2").unwrap_err();
        assert!(why(e).contains("truncated"));
        let e = parse_json::<serde_json::Value>(Path::new("c.json"), b"{\"a\" 1}").unwrap_err();
        assert!(matches!(e, Error::BadModel { .. }), "{e}");
    }
}
