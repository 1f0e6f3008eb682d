//! The integration suite: the real application on port 0, each test with its
//! own database, spoken to over HTTP (and, for the CLI tests, through the
//! real binary).

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod helpers;

/// This binary runs the suite on SQLite; `tests/api_postgres` runs it again on PostgreSQL.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod article;
mod basic_auth;
mod cli;
mod create_device;
mod devices;
mod durability;
mod last_used;
mod proxies;
mod races;
mod routes;
mod secrets;
mod store;
mod throttling;
mod unknown_ids;
mod validation;
mod validity;
