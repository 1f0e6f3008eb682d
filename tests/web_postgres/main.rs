//! The web interface suite of `tests/web`, on PostgreSQL: every test gets a
//! fresh database on the local server (`LATCHKEY_TEST_POSTGRES_URL`). Plus
//! what only several nodes can show: a browser's session and its shown-once
//! password work whichever node answers.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;

const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "../web/visitor.rs"]
mod visitor;

#[path = "../web/admin.rs"]
mod admin;
#[path = "../web/csrf.rs"]
mod csrf;
#[path = "../web/devices.rs"]
mod devices;
#[path = "../web/forms.rs"]
mod forms;
#[path = "../web/secrets.rs"]
mod secrets;
#[path = "../web/session_store.rs"]
mod session_store;
#[path = "../web/sessions.rs"]
mod sessions;
#[path = "../web/sign_in.rs"]
mod sign_in;

mod nodes;
