//! latchkey: a self-hosted account and device-password server.
//!
//! Data flows one way: [`http`] → [`service`] → {[`domain`], [`store`],
//! [`credential`]}; [`store`] → {[`domain`], [`credential`]}; [`domain`] →
//! [`credential`]. The domain never imports axum, sqlx or the store; the
//! store never decides policy; [`cli`] acts as the operator through the same
//! [`service`].

/// Build the application (listener, router, background tasks) and run it until shutdown.
pub mod app;
/// Admin subcommands that work directly on the database, acting as the operator.
pub mod cli;
/// Command-line flags and their `LATCHKEY_*` environment equivalents.
pub mod config;
/// A leaf: token format, device ids, app sign-in codes, session keys, main-password hashing, typed secrets.
pub mod credential;
/// Pure types (accounts, devices, app sign-in requests, permissions, sessions, the clock) and
/// `rules`, each rule one function.
pub mod domain;
/// The JSON API and the web interface: routes, proof extractors, the error contract.
pub mod http;
/// The application layer: one module per capability, the actor proofs, and
/// beside them the verification cache, the guessing throttle and the last-use recorder.
pub mod service;
/// The storage interface: portable SQL written once, and per backend only what differs.
pub mod store;
/// Logging setup.
pub mod telemetry;
