//! No token or main password in the database files or in the logs.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;

use crate::helpers::{captured_logs, spawn_app, Backend, PASSWORD};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn secrets_never_reach_the_database_or_the_logs(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app
        .service
        .ensure_administrator(&crate::helpers::OPERATOR, "root@example.org")
        .await
        .unwrap()
        .expect("first administrator created");
    let admin_password = admin.1.expose().to_owned();
    app.create_member("member@example.org").await;

    let first = app.create_device("member@example.org", "script").await;
    assert_eq!(app.get_own_device(&first).await.status(), StatusCode::OK);
    let response = app.change_password(&first.id, &first).send().await.unwrap();
    let renewed: Value = response.json().await.unwrap();
    let second_token = renewed["token"].as_str().unwrap().to_owned();
    // Failed attempts carry secrets too.
    let _ = app
        .post_device(&serde_json::json!({"email": "member@example.org", "password": "a wrong guess", "deviceName": "x"}))
        .await;

    let mut secrets = vec![
        PASSWORD.to_owned(),
        "a wrong guess".to_owned(),
        admin_password,
        first.token.clone(),
        second_token.clone(),
    ];
    // The random part alone must not appear either.
    secrets.push(first.token[4..].to_owned());
    secrets.push(second_token[4..].to_owned());

    let database = app.stop().await;
    let files = database.contents().await;
    assert!(
        files.iter().any(
            |(name, bytes)| (name.ends_with("latchkey.db") || name == "devices")
                && !bytes.is_empty()
        ),
        "the database holds nothing"
    );
    let logs = captured_logs();
    assert!(logs.contains("device created"), "logs were not captured");
    for secret in &secrets {
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "a secret is in {name}");
        }
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
    }
}

/// SQLite only: there the database is files.
#[cfg(unix)]
#[rstest]
#[case::sqlite()]
#[tokio::test]
async fn a_new_database_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("fresh").join("data");
    let file = dir.join("latchkey.db");
    let store = latchkey::store::open(&format!("sqlite://{}", file.display()), &Default::default())
        .await
        .unwrap();
    // Something written, so the WAL files exist too.
    store.has_admin().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(
        std::fs::read_dir(&dir).unwrap().count() >= 2,
        "no WAL files seen"
    );
    store.close().await;
}
