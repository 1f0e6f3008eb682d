//! The web interface over HTTP: the real application on port 0, a browser-like
//! client that keeps cookies and submits forms the way a page would.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;

/// This binary runs on SQLite; `tests/web_postgres` runs it again on PostgreSQL.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;
mod visitor;

mod admin;
mod csrf;
mod devices;
mod forms;
mod secrets;
mod session_store;
mod sessions;
mod sign_in;
