//! Command-line interface: argument parsing (clap derive) and the subcommands.
//!
//! Exit codes: 0 success; 1 the run finished but some input records could not be read (each
//! is reported on stderr and in the output's `errors`; an input path that does not exist counts
//! as such a record); 2 the command failed (bad arguments, missing model, head or data). A closed stdout (e.g. `| head`) ends the run quietly.

pub mod args;
pub mod commands;

use std::io::Write;

pub use args::Cli;
use clap::Parser;

/// Print an evaluation report on stdout: pretty JSON, or the report's own table. Returns exit
/// code 0.
fn print_report<R: serde::Serialize>(
    format: args::ReportFormat,
    report: &R,
    table: impl FnOnce(&R) -> String,
) -> anyhow::Result<i32> {
    let style = match format {
        args::ReportFormat::Json => slant::report::ReportStyle::Json,
        args::ReportFormat::Table => slant::report::ReportStyle::Table,
    };
    slant::report::write_report(&mut std::io::stdout().lock(), style, report, table)?;
    Ok(0)
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // candle's CPU kernels read RAYON_NUM_THREADS; rayon's global pool is sized the same way.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {e}");
            for cause in e.chain().skip(1) {
                let _ = writeln!(err, "  caused by: {cause}");
            }
            2
        }
    }
}

/// True when the error is a closed stdout (e.g. `| head`), however it was wrapped: a plain
/// `io::Error`, slant's `Error::Io`, or the I/O error inside a serde_json or csv error (whose
/// `source()` skips the `io::Error` itself, so a downcast of the chain alone misses it).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.kind() == BrokenPipe;
        }
        if let Some(slant::Error::Io { err, .. }) = c.downcast_ref::<slant::Error>() {
            return err.kind() == BrokenPipe;
        }
        if let Some(j) = c.downcast_ref::<serde_json::Error>() {
            return j.io_error_kind() == Some(BrokenPipe);
        }
        if let Some(csv::ErrorKind::Io(io)) = c.downcast_ref::<csv::Error>().map(|x| x.kind()) {
            return io.kind() == BrokenPipe;
        }
        false
    })
}
