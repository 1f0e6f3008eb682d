//! Made-up device ids cannot flush the credential cache or cost a query each.

use latchkey::credential::{DeviceId, Token};
use latchkey::service::throttle::{Rate, ThrottleConfig};
use reqwest::StatusCode;
use rstest::rstest;
use std::time::Duration;

use crate::helpers::{expect_error, spawn_app_with, Backend, DeviceCredentials};
use crate::writes::AutoCommit;

fn made_up() -> DeviceCredentials {
    DeviceCredentials {
        id: DeviceId::generate().to_string(),
        token: Token::generate().expose().to_owned(),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn unknown_ids_are_limited_per_address_and_remembered(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.throttle = ThrottleConfig {
            lookup_failures: Rate {
                burst: 5,
                refill_every: Duration::from_secs(60),
            },
            ..ThrottleConfig::default()
        }
    })
    .await;
    app.create_member("m@example.org").await;
    let real = app.create_device("m@example.org", "real").await;
    // The new account's permission grant comes back through the change feed
    // (polled every 100 ms) and drops the account's cached credentials; let
    // it pass before caching `real`, which must then stay cached.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get_own_device(&real).await.status(), StatusCode::OK);

    // The same unknown id again and again is answered from memory: it uses
    // up one lookup, not twenty.
    let ghost = made_up();
    for _ in 0..20 {
        expect_error(
            app.get_own_device(&ghost).await,
            StatusCode::UNAUTHORIZED,
            "invalid_device_credentials",
        )
        .await;
    }
    // Fresh made-up ids each cost a lookup, until the address runs out.
    for _ in 0..4 {
        expect_error(
            app.get_own_device(&made_up()).await,
            StatusCode::UNAUTHORIZED,
            "invalid_device_credentials",
        )
        .await;
    }
    let response = app.get_own_device(&made_up()).await;
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Credentials already verified are untouched by all this.
    assert_eq!(app.get_own_device(&real).await.status(), StatusCode::OK);
    // A wrong token for a real device is refused from the cache, no lookup.
    let wrong = DeviceCredentials {
        id: real.id.clone(),
        token: Token::generate().expose().to_owned(),
    };
    expect_error(
        app.get_own_device(&wrong).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_device_created_after_its_id_was_tried_works_at_once(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let owner = app.create_member("m@example.org").await;
    let later = made_up();
    expect_error(
        app.get_own_device(&later).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    // Another process (the CLI, another node) creates exactly that device.
    let other = latchkey::store::open(&app.database_url, &Default::default())
        .await
        .unwrap();
    other
        .insert_device(&latchkey::store::NewDevice {
            id: DeviceId::parse(&later.id).unwrap(),
            account_id: owner.id,
            name: latchkey::domain::DeviceName::parse("later").unwrap(),
            device_type: "unknown".into(),
            token_digest: Token::parse(&later.token).unwrap().digest(),
            created_at: latchkey::domain::Timestamp::now(),
            limits: Default::default(),
        })
        .await
        .unwrap();
    other.close().await;
    let started = std::time::Instant::now();
    while app.get_own_device(&later).await.status() != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still remembered as unknown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn wrong_tokens_for_real_devices_are_not_cached_and_count_as_failures(
    #[case] backend: Backend,
) {
    let app = spawn_app_with(backend, |c| {
        c.throttle = ThrottleConfig {
            lookup_failures: Rate {
                burst: 3,
                refill_every: Duration::from_secs(60),
            },
            ..ThrottleConfig::default()
        }
    })
    .await;
    app.create_member("m@example.org").await;
    let real = app.create_device("m@example.org", "real").await;
    let wrong = DeviceCredentials {
        id: real.id.clone(),
        token: Token::generate().expose().to_owned(),
    };
    for _ in 0..3 {
        expect_error(
            app.get_own_device(&wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_device_credentials",
        )
        .await;
    }
    assert_eq!(
        app.service.cached_credentials(),
        0,
        "a wrong token got its device cached"
    );
    expect_error(
        app.get_own_device(&wrong).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}
