//! Behind a trusted reverse proxy, the client is the forwarded address.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use latchkey::service::throttle::{Rate, ThrottleConfig};

async fn last_used_ip(app: &TestApp, forwarded_for: &str) -> Value {
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "behind a proxy").await;
    let body: Value = app
        .on_device(Method::GET, &device.id, &device)
        .header("X-Forwarded-For", forwarded_for)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["lastUsedIp"].clone()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_trusted_proxy_names_the_client(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]
    })
    .await;
    assert_eq!(
        last_used_ip(&app, "198.51.100.1, 203.0.113.5").await,
        "203.0.113.5"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn anyone_else_cannot_choose_their_address(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(last_used_ip(&app, "203.0.113.5").await, "127.0.0.1");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn forwarded_clients_are_throttled_separately(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.throttle = ThrottleConfig {
            per_network: Rate {
                burst: 2,
                refill_every: Duration::from_secs(60),
            },
            ..ThrottleConfig::default()
        };
    })
    .await;
    let guess = |from: &'static str, n: u32| {
        app.http
            .post(app.url("/server/api/device"))
            .header("X-Forwarded-For", from)
            .json(&json!({"email": format!("user{n}@example.org"), "password": "guess", "deviceName": "x"}))
            .send()
    };
    for n in 0..2 {
        assert_eq!(
            guess("203.0.113.5", n).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guess("203.0.113.5", 3).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        guess("198.51.100.1", 4).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}
