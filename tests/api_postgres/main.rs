//! The same integration suite as `tests/api`, on PostgreSQL: every test gets
//! a fresh database on the local server (`LATCHKEY_TEST_POSTGRES_URL`),
//! dropped afterwards. Plus what only several nodes can show.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

#[path = "../api/helpers.rs"]
mod helpers;

const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "../api/article.rs"]
mod article;
#[path = "../api/basic_auth.rs"]
mod basic_auth;
#[path = "../api/cli.rs"]
mod cli;
#[path = "../api/create_device.rs"]
mod create_device;
#[path = "../api/devices.rs"]
mod devices;
#[path = "../api/durability.rs"]
mod durability;
#[path = "../api/last_used.rs"]
mod last_used;
#[path = "../api/proxies.rs"]
mod proxies;
#[path = "../api/races.rs"]
mod races;
#[path = "../api/routes.rs"]
mod routes;
#[path = "../api/secrets.rs"]
mod secrets;
#[path = "../api/store.rs"]
mod store;
#[path = "../api/throttling.rs"]
mod throttling;
#[path = "../api/unknown_ids.rs"]
mod unknown_ids;
#[path = "../api/validation.rs"]
mod validation;
#[path = "../api/validity.rs"]
mod validity;

mod nodes;
