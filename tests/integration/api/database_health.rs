//! A database that cannot take writes, or a file deleted under a running
//! server: readiness says so, and requests get 503 `database_unavailable`,
//! never a 500 or a silent success on a file nobody reads any more.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{captured_logs, expect_error, spawn_app, spawn_node, Backend, PASSWORD};

fn file_of(url: &str) -> &str {
    url.strip_prefix("sqlite://").expect("a SQLite URL")
}

async fn post_device(app: &crate::helpers::TestApp) -> reqwest::Response {
    app.post_device(&json!({
        "email": "m@example.org",
        "password": PASSWORD,
        "deviceName": "phone",
    }))
    .await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_read_only_database_is_not_ready_and_answers_503(#[case] backend: Backend) {
    let first = spawn_app(backend).await;
    first.create_member("m@example.org").await;
    // As if the file, or its file system, had become read-only.
    let read_only = spawn_node(&first, |config| {
        config.database_url = format!("{}?mode=ro", config.database_url);
    })
    .await;
    let ready = reqwest::get(read_only.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The right password is still checked (a read), then the write refused.
    expect_error(
        post_device(&read_only).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    // The writable node is unaffected.
    assert_eq!(post_device(&first).await.status(), StatusCode::CREATED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_database_file_deleted_under_the_server_stops_it_answering(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "laptop").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    std::fs::remove_file(file_of(&app.database_url)).unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ready = reqwest::get(app.url("/readyz")).await.unwrap();
        if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    expect_error(
        post_device(&app).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    assert!(captured_logs().contains("the database file was deleted or replaced"));
}

/// PostgreSQL: a database set to read-only (as a standby is, or after
/// `default_transaction_read_only`), once the server's connections are new.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_postgres_database_is_not_ready_and_answers_503(#[case] backend: Backend) {
    use sqlx::{Connection, Executor};
    let app = spawn_app(backend).await;
    if app.backend != Backend::Postgres {
        return;
    }
    app.create_member("m@example.org").await;
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url())
        .await
        .unwrap();
    let reconnect_all =
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'");
    admin
        .execute(format!("ALTER DATABASE {name} SET default_transaction_read_only = on").as_str())
        .await
        .unwrap();
    admin.execute(reconnect_all.as_str()).await.unwrap();
    let mut ready = StatusCode::OK;
    for _ in 0..50 {
        ready = reqwest::get(app.url("/readyz")).await.unwrap().status();
        if ready == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    expect_error(
        post_device(&app).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    // Writable again: ready again, without a restart.
    admin
        .execute(format!("ALTER DATABASE {name} RESET default_transaction_read_only").as_str())
        .await
        .unwrap();
    admin.execute(reconnect_all.as_str()).await.unwrap();
    for _ in 0..50 {
        ready = reqwest::get(app.url("/readyz")).await.unwrap().status();
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, StatusCode::OK);
    assert_eq!(post_device(&app).await.status(), StatusCode::CREATED);
    let _ = admin.close().await;
}
