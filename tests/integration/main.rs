//! The integration suite: the real application on port 0, each test with its
//! own database, spoken to over HTTP (and, for the CLI tests, through the
//! real binary; for the browser tests, through headless Chromium).
//!
//! Each test is an `async fn` taking the `Backend` it runs on, declared once
//! per backend by its `#[case]`s, so it is listed as `…::case_1_sqlite` and
//! `…::case_2_postgres`; `cargo test --test integration sqlite` (or `postgres`)
//! runs one side. PostgreSQL cases get a fresh database on
//! `LATCHKEY_TEST_POSTGRES_URL`, dropped afterwards.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod driver;
mod helpers;
mod visitor;
mod writes;

/// The JSON API (the admin API too), the admin CLI, the real server process and the store contract.
mod api {
    mod access;
    mod admin_api;
    pub(crate) mod app_sign_in;
    mod article;
    mod basic_auth;
    mod cli;
    mod create_device;
    mod database_health;
    mod devices;
    mod durability;
    mod forward_auth;
    mod hot_routes;
    mod last_used;
    mod limit_races;
    mod limits;
    mod logs;
    mod proxies;
    mod races;
    mod real_proxies;
    mod routes;
    mod secrets;
    mod store;
    mod throttling;
    mod unknown_ids;
    mod validation;
    mod validity;
}

/// The web interface's pages and forms over HTTP, and the store's sessions.
mod web {
    mod access;
    mod admin;
    mod csrf;
    mod devices;
    mod forms;
    mod password_policy;
    mod races;
    mod secrets;
    mod session_store;
    mod sessions;
    mod sign_in;
    mod without_scripts;
}

/// Two-factor authentication: enrolment, the second sign-in step, recovery
/// codes, replay races, secrets at rest, the requirement and its grace period.
mod two_factor {
    mod races;
    mod secrets;
    pub mod totp;
    mod web;
}

/// The web interface in headless Chromium through chromedriver, mostly on
/// SQLite: pages do not depend on the backend; the two-factor flows
/// run on both. Without Chromium or
/// chromedriver the tests say SKIP and pass, unless LATCHKEY_TEST_STRICT=1.
mod browser {
    mod access;
    mod app_sign_in;
    mod layout;
    mod login_forgery;
    mod scenarios;
    mod two_factor;
    mod without_scripts;
}

/// Several nodes on one database, which only PostgreSQL can be.
mod nodes {
    mod api;
    mod startup;
    mod web;
}
