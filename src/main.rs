//! The `slant` binary: a thin shell over the library (see `src/cli`).
fn main() {
    std::process::exit(slant::cli::main());
}
