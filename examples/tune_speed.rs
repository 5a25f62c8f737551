//! Training-pass throughput of the tuned top layers: forward + backward (loss and every
//! gradient; no optimiser step) of `k` top layers, mean pooling and the logistic head, candle
//! autograd (`--tune-engine candle`) against the hand-written pass (`--tune-engine fast`), on
//! BABE SG2 sentences. Rounds alternate the engines; prints sentences/s per round and medians.
//!
//!   RAYON_NUM_THREADS=2 cargo run --release --example tune_speed -- DATA_DIR [N] [ROUNDS] [K,K,..]
//!
//! N sentences (seeded sample, default 256) in batches of 32 as `train_top` forms them (sorted
//! by length within the sample); DATA_DIR is the labelled-data folder (`../shared/data`).
use std::path::Path;
use std::time::Instant;

use slant::encode::{resolve_model_dir, Encoder, Engine, Precision};

/// CPU seconds (user + system, all threads) this process has used so far (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(data) = args.first() else {
        eprintln!("usage: tune_speed DATA_DIR [N] [ROUNDS] [K,K,..]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).map_or(Ok(256), |s| s.parse())?;
    let rounds: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let ks: Vec<usize> = args
        .get(3)
        .map_or("1,2,3", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let enc = Encoder::load(
        &resolve_model_dir(None)?,
        slant::encode::EncoderOptions {
            engine: Engine::Fast,
            precision: Precision::Fp32,
        },
    )?;
    let (rows, _) = slant::data::babe_sg2(Path::new(data))?;
    let rows = slant::train::tune::sample(rows, n, 13);
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let y: Vec<bool> = slant::eval::loaded::labels(&rows);
    println!(
        "{} sentences, batches of 32, {} rayon threads, {rounds} alternated rounds",
        texts.len(),
        rayon::current_num_threads()
    );
    println!(
        "| tuned layers | tokens/sentence | candle sent/s | fast sent/s | ratio (per round) |"
    );
    println!("|---|---:|---:|---:|---|");
    for &k in &ks {
        let l = enc.layers();
        let mut x = enc.states_after(&texts, l - k, 64)?;
        let h = enc.hidden_size();
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by_key(|&i| x[i].len());
        let xs: Vec<Vec<f32>> = order.iter().map(|&i| std::mem::take(&mut x[i])).collect();
        let ys: Vec<bool> = order.iter().map(|&i| y[i]).collect();
        let tokens = xs.iter().map(|r| r.len() / h).sum::<usize>() as f64 / xs.len() as f64;
        let top = slant::heads::lora::TunedTop::from_encoder(enc.dir(), l - k, k)?;
        let fast = top.to_fast()?;
        let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let (mut c, mut f, mut r) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cc, mut fc, mut rc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (t, c0) = (Instant::now(), cpu_seconds());
            let mut rng = slant::stats::rng(1);
            // TUNE_SPEED_FAST_ONLY=1 skips the candle rounds (for profiling the fast pass).
            let fast_only = std::env::var_os("TUNE_SPEED_FAST_ONLY").is_some();
            if !fast_only {
                for (b, yb) in refs.chunks(32).zip(ys.chunks(32)) {
                    top.candle_loss_and_backward(b, yb, Some((0.1, &mut rng)))?;
                }
            }
            let cs = if fast_only {
                f64::NAN
            } else {
                refs.len() as f64 / t.elapsed().as_secs_f64()
            };
            let ccpu = refs.len() as f64 / (cpu_seconds() - c0);
            let (t, c0) = (Instant::now(), cpu_seconds());
            let mut rng = slant::stats::rng(1);
            for (b, yb) in refs.chunks(32).zip(ys.chunks(32)) {
                std::hint::black_box(fast.loss_and_grads(b, yb, Some((0.1, &mut rng))));
            }
            let fs = refs.len() as f64 / t.elapsed().as_secs_f64();
            let fcpu = refs.len() as f64 / (cpu_seconds() - c0);
            eprintln!(
                "k={k}: candle {cs:.1}/s fast {fs:.1}/s; per CPU-second candle {ccpu:.1} fast {fcpu:.1}"
            );
            cc.push(ccpu);
            fc.push(fcpu);
            rc.push(fcpu / ccpu);
            c.push(cs);
            f.push(fs);
            r.push(fs / cs);
        }
        let per: Vec<String> = r.iter().map(|v| format!("{v:.2}")).collect();
        println!(
            "| {k} | {tokens:.1} | {:.1} | {:.1} | **{:.2}** ({}) | {:.1} | {:.1} | {:.2} |",
            median(c),
            median(f),
            median(r.clone()),
            per.join(", "),
            median(cc),
            median(fc),
            median(rc)
        );
    }
    Ok(())
}
