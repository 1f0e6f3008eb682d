//! TOTP secrets and recovery codes are never in the logs (debug level) or
//! readable in the database; a node whose key cannot open the stored
//! secrets does not start.

use latchkey::app;
use latchkey::config::Config;
use latchkey::domain::Clock;
use rstest::rstest;

use super::totp::{code_step, enrol, password_step};
use crate::helpers::{captured_logs, spawn_app_with, Backend, PASSWORD};
use crate::visitor::Visitor;

const MEMBER: &str = "member@example.org";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_totp_secret_or_recovery_code_in_logs_or_database(#[case] backend: Backend) {
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = shared).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    let browser = Visitor::new(&app);
    password_step(&browser, MEMBER, PASSWORD).await;
    code_step(&browser, &enrolled.recovery_codes[0])
        .await
        .assert_redirect("/settings/profile");
    let plain_secret = enrolled.secret_text.replace(' ', "");
    let mut needles: Vec<Vec<u8>> = vec![
        plain_secret.clone().into_bytes(),
        plain_secret.to_lowercase().into_bytes(),
        enrolled.secret_text.clone().into_bytes(),
        enrolled.secret.clone(),
    ];
    for code in &enrolled.recovery_codes {
        needles.push(code.clone().into_bytes());
        needles.push(code.replace('-', "").into_bytes());
    }
    let logs = captured_logs();
    assert!(logs.contains("two-factor authentication turned on"));
    assert!(logs.contains("recovery code used"));
    let database = app.stop().await;
    for (file, bytes) in database.contents().await {
        for needle in &needles {
            assert!(!contains(&bytes, needle), "a secret readable in {file}");
        }
    }
    for needle in &needles {
        assert!(!contains(logs.as_bytes(), needle), "a secret in the logs");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_key_file_that_cannot_open_the_stored_secrets_stops_the_start(#[case] backend: Backend) {
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = shared).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    enrol(&me, &clock).await;
    let url = app.database_url.clone();
    let database = app.stop().await;

    // Another key file: the database says it belongs to another key.
    let mut config = Config::new(url.clone());
    config.secret_key_file = database.dir.path().join("another.key");
    let error = app::build(config).await.err().expect("refused").to_string();
    assert!(error.contains("same key file"), "{error}");

    // Even with the key record gone (a database put together from a dump),
    // the stored secrets tell: the node says so instead of refusing every code.
    {
        use sqlx::{Connection, Executor};
        if url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            conn.execute("DELETE FROM server_key").await.unwrap();
            conn.close().await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            conn.execute("DELETE FROM server_key").await.unwrap();
            conn.close().await.unwrap();
        }
    }
    let mut config = Config::new(url);
    config.secret_key_file = database.dir.path().join("yet-another.key");
    let error = app::build(config).await.err().expect("refused").to_string();
    assert!(
        error.contains("cannot open the two-factor secrets stored in the database"),
        "{error}"
    );
    assert!(error.contains("key file"), "{error}");
}
