//! The web interface in real headless Chromium, driven through chromedriver:
//! the five scenarios of the web interface issue, against the real server on
//! port 0. Without Chromium or chromedriver installed the tests say SKIP and
//! pass, unless LATCHKEY_TEST_STRICT=1 (as in CI), where they fail.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod driver;
#[path = "../api/helpers.rs"]
mod helpers;

/// Pages do not depend on the backend; the store's session methods are
/// tested on both in `session_store` and the API suites.
const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod scenarios;
