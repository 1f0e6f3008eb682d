//! latchkey: a self-hosted account and device-password server.
//!
//! Data flows one way: [`http`] → [`domain`] → [`store`].

/// Build the application (listener, router, background tasks) and run it until shutdown.
pub mod app;
/// Admin subcommands that work directly on the database.
pub mod cli;
/// Command-line flags and their `LATCHKEY_*` environment equivalents.
pub mod config;
/// Token format, device ids, main-password hashing and the verification cache.
pub mod credential;
/// Accounts, devices and permissions: plain types and the rules that govern them.
pub mod domain;
/// The JSON API: routes, extractors and the error type.
pub mod http;
/// The application layer: every operation, with the verification cache,
/// the guessing throttle and the last-use recorder.
pub mod service;
/// The storage interface and its SQLite implementation: the one place that knows SQL.
pub mod store;
/// Logging setup.
pub mod telemetry;
