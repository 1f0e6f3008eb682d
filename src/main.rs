use std::process::ExitCode;

use clap::Parser;
use latchkey::config::{Cli, Command};

// Measured, not assumed (bench/instructions.sh): with glibc's allocator a
// quarter of a request's instructions were malloc and free; mimalloc cut
// that, and jemalloc cuts it further (about 600 instructions a request
// fewer than mimalloc, whose Rust binding asks for an aligned block every
// time and so takes its slow path for large ones).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    latchkey::telemetry::init(cli.log_format, if serving { "info" } else { "warn" });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(latchkey::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
