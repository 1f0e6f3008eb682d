//! Password guessing on `POST /server/api/device` is slowed per account and
//! per client address.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{expect_error, spawn_app_with, Backend, PASSWORD};
use latchkey::service::throttle::{Rate, ThrottleConfig};

fn strict(account_burst: u32, address_burst: u32) -> ThrottleConfig {
    ThrottleConfig {
        per_account: Rate {
            burst: account_burst,
            refill_every: Duration::from_secs(60),
        },
        per_address: Rate {
            burst: address_burst,
            refill_every: Duration::from_secs(60),
        },
        ..ThrottleConfig::default()
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_account_under_attack_answers_429_with_retry_after(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle = strict(3, 100)).await;
    app.create_member("victim@example.org").await;
    let guess = json!({"email": "victim@example.org", "password": "guess", "deviceName": "x"});
    for _ in 0..3 {
        expect_error(
            app.post_device(&guess).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    let response = app.post_device(&guess).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Even the right password waits: otherwise the throttle would be an oracle.
    let right = json!({"email": "victim@example.org", "password": PASSWORD, "deviceName": "x"});
    expect_error(
        app.post_device(&right).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    // Unknown emails are throttled the same way.
    let unknown = json!({"email": "ghost@example.org", "password": "guess", "deviceName": "x"});
    for _ in 0..3 {
        app.post_device(&unknown).await;
    }
    expect_error(
        app.post_device(&unknown).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn one_address_spraying_many_accounts_is_throttled(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle = strict(100, 4)).await;
    for i in 0..4 {
        let guess = json!({"email": format!("user{i}@example.org"), "password": "guess", "deviceName": "x"});
        expect_error(
            app.post_device(&guess).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    let guess = json!({"email": "user9@example.org", "password": "guess", "deviceName": "x"});
    expect_error(
        app.post_device(&guess).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_limit(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle = strict(5, 100)).await;
    app.create_member("victim@example.org").await;
    let guess = json!({"email": "victim@example.org", "password": "guess", "deviceName": "x"});
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app.http.post(app.url("/server/api/device")).json(&guess);
        attempts.spawn(async move { request.send().await.unwrap().status() });
    }
    let statuses = attempts.join_all().await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((unauthorized, limited), (5, 15), "{statuses:?}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn successful_sign_ins_do_not_count(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle = strict(2, 2)).await;
    app.create_member("busy@example.org").await;
    for i in 0..6 {
        app.create_device("busy@example.org", &format!("device {i}"))
            .await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_database_outage_answers_503_and_costs_nobody_an_attempt(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| c.throttle = strict(1, 1)).await;
    app.create_member("member@example.org").await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    app.service.store().close().await;
    let not_ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    expect_error(
        not_ready,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    let attempt = json!({"email": "member@example.org", "password": PASSWORD, "deviceName": "x"});
    for _ in 0..3 {
        let response = app.post_device(&attempt).await;
        assert!(response.headers().contains_key("retry-after"));
        let body = expect_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
        )
        .await;
        let message = body["message"].as_str().unwrap();
        assert!(
            !message.contains("pool") && !message.contains("sqlx"),
            "internals leaked: {message}"
        );
    }
}
