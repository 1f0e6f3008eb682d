//! Last use is shown at once, written in batches, and kept over a restart.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::Value;

use crate::helpers::{spawn_app_with, Backend};
use latchkey::credential::DeviceId;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn last_use_is_shown_at_once_and_written_in_batches(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.last_used_flush = Duration::from_secs(3600)).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;

    let body: Value = app.get_own_device(&device).await.json().await.unwrap();
    assert_eq!(body["lastUsedIp"], "127.0.0.1");
    assert_eq!(body["lastUsedUserAgent"], "latchkey-tests/1.0");
    assert!(body["lastUsedAt"].is_string());

    // Many requests, yet nothing written to the database yet.
    for _ in 0..20 {
        assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    }
    let id = DeviceId::parse(&device.id).unwrap();
    let stored = app.service.store().device(&id).await.unwrap().unwrap();
    assert!(
        stored.last_used.is_none(),
        "written per request: {stored:?}"
    );

    // A graceful shutdown writes what is pending.
    let database_url = app.database_url.clone();
    let _data_dir = app.stop().await;
    let store = latchkey::store::open(&database_url, &Default::default())
        .await
        .unwrap();
    let stored = store.device(&id).await.unwrap().unwrap();
    let used = stored.last_used.expect("flushed at shutdown");
    assert_eq!(used.ip.unwrap().to_string(), "127.0.0.1");
    assert_eq!(used.user_agent.as_deref(), Some("latchkey-tests/1.0"));
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn last_use_is_flushed_periodically(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.last_used_flush = Duration::from_secs(1)).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let id = DeviceId::parse(&device.id).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stored = app.service.store().device(&id).await.unwrap().unwrap();
        if stored.last_used.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never flushed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn user_agents_beyond_ascii_are_kept(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    for (sent, shown) in [
        // UTF-8, as most clients send it.
        ("Kalender/2.0 (Büro)".as_bytes(), "Kalender/2.0 (Büro)"),
        // Latin-1: the byte that is not UTF-8 is replaced, the rest kept.
        (
            b"Kalender/2.0 (B\xfcro)".as_slice(),
            "Kalender/2.0 (B\u{FFFD}ro)",
        ),
    ] {
        let response = app
            .on_device(reqwest::Method::GET, &device.id, &device)
            .header(
                reqwest::header::USER_AGENT,
                reqwest::header::HeaderValue::from_bytes(sent).unwrap(),
            )
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["lastUsedUserAgent"], shown);
    }
}
