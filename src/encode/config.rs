//! The typed `config.json` of an encoder folder: what the engines read of it, checked once at
//! load. Unknown keys are ignored (the Hugging Face files carry many), missing optional ones
//! take the BERT defaults.

use std::path::Path;

use serde::Deserialize;

use crate::{Error, Result};

/// What an encoder's `config.json` says about its shape.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EncoderConfig {
    /// `"bert"` for the BERT family (MiniLM included); other architectures are refused by the
    /// engines that cannot run them.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    /// MPNet: buckets of the relative position bias.
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: usize,
}

fn default_buckets() -> usize {
    32
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

impl EncoderConfig {
    /// Parse the bytes of `path` (a `config.json`); a truncated file is [`Error::Damaged`], a
    /// missing or ill-typed field names the file and the field.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        // The same parse as every model file: truncation is `Damaged`, the rest `BadModel`.
        let config: Self = super::files::parse_json(path, bytes)?;
        config.check(path)?;
        Ok(config)
    }

    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &bytes)
    }

    fn check(&self, path: &Path) -> Result<()> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(Error::bad_model(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    self.hidden_size, self.num_attention_heads
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINILM: &str = r#"{"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_size": 384, "intermediate_size": 1536,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 6, "type_vocab_size": 2,
        "vocab_size": 30522}"#;

    #[test]
    fn reads_a_bert_config_and_ignores_unknown_keys() {
        let c = EncoderConfig::parse(Path::new("config.json"), MINILM.as_bytes()).unwrap();
        assert_eq!(c.model_type, "bert");
        assert_eq!(
            (c.hidden_size, c.num_attention_heads, c.num_hidden_layers),
            (384, 12, 6)
        );
        assert_eq!(c.intermediate_size, 1536);
        assert_eq!(c.position_embedding_type, "absolute");
    }

    #[test]
    fn a_missing_field_names_the_file_and_the_field() {
        let text = MINILM.replace(r#""hidden_size": 384,"#, "");
        let e = EncoderConfig::parse(Path::new("m/config.json"), text.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::BadModel { .. }), "{e:?}");
        assert!(
            msg.contains("m/config.json") && msg.contains("hidden_size"),
            "{msg}"
        );
    }

    #[test]
    fn heads_that_do_not_divide_the_width_are_refused() {
        let text = MINILM.replace(
            r#""num_attention_heads": 12"#,
            r#""num_attention_heads": 7"#,
        );
        let e = EncoderConfig::parse(Path::new("config.json"), text.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not a multiple"), "{e}");
    }

    #[test]
    fn a_truncated_config_is_damaged() {
        let e =
            EncoderConfig::parse(Path::new("config.json"), &MINILM.as_bytes()[..40]).unwrap_err();
        assert!(matches!(e, Error::Damaged { .. }), "{e:?}");
    }
}
