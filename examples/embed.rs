//! Pooled encoder vectors of sentences, for agreement checks against other runtimes
//! (`benches/vs_ort.sh` compares them with onnxruntime's).
//!
//!   cargo run --release --example embed -- SENTENCES.jsonl OUT.jsonl [fp32|int8]
//!
//! SENTENCES.jsonl: one JSON object with a "text" field per line (e.g. `slant score --format
//! jsonl` output). OUT.jsonl: one JSON array of floats per input line, same order.
use std::io::{BufRead, Write};

use slant::encode::{resolve_model_dir, Encoder, Engine, Precision};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: embed SENTENCES.jsonl OUT.jsonl [fp32|int8]");
        std::process::exit(2);
    }
    let precision = match args.get(2).map(String::as_str) {
        None | Some("fp32") => Precision::Fp32,
        Some("int8") => Precision::Int8,
        Some(p) => return Err(format!("unknown precision {p}").into()),
    };
    let mut texts = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(&args[0])?).lines() {
        let v: serde_json::Value = serde_json::from_str(&line?)?;
        texts.push(
            v["text"]
                .as_str()
                .ok_or("a line has no \"text\"")?
                .to_string(),
        );
    }
    let enc = Encoder::load(
        &resolve_model_dir(None)?,
        slant::encode::EncoderOptions {
            engine: Engine::Fast,
            precision,
        },
    )?;
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let (out, _) = enc.encode(&refs, slant::encode::DEFAULT_BATCH_SIZE)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(&args[1])?);
    for e in out {
        writeln!(w, "{}", serde_json::to_string(&e.pooled)?)?;
    }
    Ok(())
}
