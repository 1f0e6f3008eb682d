//! Logging. Human-readable lines by default, JSON on request; the level comes
//! from `LATCHKEY_LOG` (for example `info` or `latchkey=debug,sqlx=warn`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `default_level` applies when `LATCHKEY_LOG` is unset.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_env("LATCHKEY_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
