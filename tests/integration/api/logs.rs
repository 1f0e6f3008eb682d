//! What the log lines say about a request's client.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{captured_logs, spawn_app, Backend};

/// The captured lines that contain `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    captured_logs()
        .lines()
        .filter(|line| line.contains(marker))
        .map(str::to_owned)
        .collect()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn log_lines_show_the_client_address_plainly(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let marker = format!("probe{:016x}", rand::random::<u64>());

    // The access log line of a request names its client.
    let health = app
        .http
        .get(app.url(&format!("/healthz?{marker}")))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let finished = lines_with(&marker)
        .into_iter()
        .find(|line| line.contains("finished processing request"))
        .unwrap_or_else(|| panic!("no access log line for {marker}"));
    assert!(finished.contains("client=127.0.0.1"), "{finished}");
    assert!(finished.contains("status=200"), "{finished}");

    // So does a failed main-password check, without Some(…) around it.
    let email = format!("{marker}@example.org");
    let refused = app
        .post_device(&json!({"email": email, "password": "wrong", "deviceName": "d"}))
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = lines_with(&email)
        .into_iter()
        .find(|line| line.contains("wrong email or password"))
        .unwrap_or_else(|| panic!("no log line for {email}"));
    assert!(wrong.contains(" client=127.0.0.1"), "{wrong}");

    for line in lines_with("client=") {
        assert!(!line.contains("client=Some("), "{line}");
        assert!(!line.contains("client=None"), "{line}");
    }
}
