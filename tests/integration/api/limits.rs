//! Limits on device passwords over HTTP: scope, expiry, idle expiry, the
//! lifetime policy, networks, rotation with overlap, recent addresses. Time
//! moves by a manual clock, never by sleeping.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};

use crate::helpers::OPERATOR;
use crate::helpers::{
    expect_error, spawn_app, spawn_app_with, spawn_node, Backend, DeviceCredentials, TestApp,
    PASSWORD,
};
use latchkey::domain::{Clock, LifetimePolicy, Permission, Timestamp};
use latchkey::service::{parse_limits, RawLimits};

const DAY: Duration = Duration::from_secs(86_400);

async fn device_with(app: &TestApp, email: &str, limits: Value) -> (DeviceCredentials, Value) {
    let mut body = json!({"email": email, "password": PASSWORD, "deviceName": "limited"});
    for (k, v) in limits.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app.post_device(&body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    (
        DeviceCredentials {
            id: body["_id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        },
        body,
    )
}

async fn manual_app(backend: Backend, policy: Option<u32>) -> (TestApp, Clock) {
    let clock = Clock::manual(Timestamp::now());
    let c = clock.clone();
    let app = spawn_app_with(backend, move |config| {
        config.clock = c;
        config.lifetime = LifetimePolicy { max_days: policy };
    })
    .await;
    (app, clock)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_read_credential_may_only_read(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    let (device, shown) = device_with(&app, "m@example.org", json!({"scope": "read"})).await;
    assert_eq!(shown["scope"], "read");
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let head = app
        .on_device(Method::HEAD, &device.id, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let rename = app
        .on_device(Method::PATCH, &device.id, &device)
        .json(&json!({"deviceName": "x"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(rename, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert!(
        body["message"].as_str().unwrap().contains("\"full\""),
        "{body}"
    );
    let delete = app
        .on_device(Method::DELETE, &device.id, &device)
        .send()
        .await
        .unwrap();
    expect_error(delete, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // Still there: nothing was done.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    // Without the field, a device is full, as always.
    let plain = app.create_device("m@example.org", "plain").await;
    let shown: Value = app.get_own_device(&plain).await.json().await.unwrap();
    assert_eq!(shown["scope"], "full");
    assert_eq!(shown["expired"], false);
    // Admin scope only for administrators' devices.
    let refused = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "scope": "admin"}))
        .await;
    expect_error(refused, StatusCode::BAD_REQUEST, "scope_not_allowed").await;
    let refused = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "scope": "root"}))
        .await;
    expect_error(refused, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn expiry_and_idle_expiry_follow_the_clock(#[case] backend: Backend) {
    let (app, clock) = manual_app(backend, None).await;
    app.create_member("m@example.org").await;
    let expires = Timestamp::from_millis(clock.now().millis() + 10 * 86_400_000);
    let (dated, _) = device_with(
        &app,
        "m@example.org",
        json!({"expiresAt": expires.to_rfc3339()}),
    )
    .await;
    let (idle, _) = device_with(&app, "m@example.org", json!({"idleExpiryDays": 3})).await;
    assert_eq!(app.get_own_device(&dated).await.status(), StatusCode::OK);
    assert_eq!(app.get_own_device(&idle).await.status(), StatusCode::OK);
    clock.advance(2 * DAY);
    // Used within its idle period: it carries on.
    assert_eq!(app.get_own_device(&idle).await.status(), StatusCode::OK);
    clock.advance(2 * DAY);
    assert_eq!(app.get_own_device(&idle).await.status(), StatusCode::OK);
    clock.advance(3 * DAY);
    let refused = app.get_own_device(&idle).await;
    expect_error(refused, StatusCode::UNAUTHORIZED, "credential_expired").await;
    clock.advance(3 * DAY);
    let refused = app.get_own_device(&dated).await;
    expect_error(refused, StatusCode::UNAUTHORIZED, "credential_expired").await;
    // Shown as expired, not deleted.
    let member = app.account_by_email("m@example.org").await.unwrap();
    let devices = app.devices(Some(member.id)).await.unwrap();
    assert_eq!(devices.len(), 2);
    assert!(devices.iter().all(|d| app.service.device_state(d).expired));
    // Far-past and unreadable expiries are refused at creation.
    let past = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "expiresAt": "2001-01-01T00:00:00Z"}))
        .await;
    expect_error(past, StatusCode::BAD_REQUEST, "invalid_expiry").await;
    let bad = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "expiresAt": "soon"}))
        .await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_expiry").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_lifetime_policy_holds_at_creation_and_at_use(#[case] backend: Backend) {
    let (app, clock) = manual_app(backend, Some(30)).await;
    app.create_member("m@example.org").await;
    let too_late = Timestamp::from_millis(clock.now().millis() + 31 * 86_400_000);
    let refused = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "expiresAt": too_late.to_rfc3339()}))
        .await;
    expect_error(
        refused,
        StatusCode::BAD_REQUEST,
        "credential_lifetime_exceeded",
    )
    .await;
    // Without an expiry: the latest the policy allows.
    let (device, shown) = device_with(&app, "m@example.org", json!({})).await;
    let latest = Timestamp::from_millis(clock.now().millis() + 30 * 86_400_000);
    assert_eq!(shown["expiresAt"], latest.to_rfc3339());
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    clock.advance(30 * DAY);
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::UNAUTHORIZED,
        "credential_expired",
    )
    .await;

    // A credential made before the policy was lowered is refused at use.
    let clock = Clock::manual(Timestamp::now());
    let c = clock.clone();
    let open = spawn_app_with(backend, move |config| config.clock = c).await;
    open.create_member("m@example.org").await;
    let forever = open.create_device("m@example.org", "forever").await;
    let c = clock.clone();
    let strict = spawn_node(&open, move |config| {
        config.clock = c;
        config.lifetime = LifetimePolicy { max_days: Some(7) };
    })
    .await;
    if strict.backend == Backend::Postgres {
        expect_error(
            strict.get_own_device(&forever).await,
            StatusCode::UNAUTHORIZED,
            "credential_lifetime_exceeded",
        )
        .await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn networks_allow_and_deny_by_the_client_address(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_member("m@example.org").await;
    let (device, shown) = device_with(
        &app,
        "m@example.org",
        json!({"allowedNetworks": ["192.0.2.0/24", "2001:db8::/32"], "deniedNetworks": ["192.0.2.128/25"]}),
    )
    .await;
    assert_eq!(
        shown["allowedNetworks"],
        json!(["192.0.2.0/24", "2001:db8::/32"])
    );
    let from = |ip: &'static str| {
        app.on_device(Method::GET, &device.id, &device)
            .header("X-Forwarded-For", ip)
            .send()
    };
    assert_eq!(from("192.0.2.7").await.unwrap().status(), StatusCode::OK);
    assert_eq!(from("2001:db8::7").await.unwrap().status(), StatusCode::OK);
    for ip in ["192.0.2.200", "198.51.100.1", "2001:db9::1"] {
        expect_error(
            from(ip).await.unwrap(),
            StatusCode::FORBIDDEN,
            "address_not_allowed",
        )
        .await;
    }
    // The proxy itself (no header) is not inside the networks either.
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;
    // A header the trusted proxy sent that cannot be read is refused, not skipped.
    expect_error(
        from("not-an-address").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_forwarded_for",
    )
    .await;
    let refused = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "allowedNetworks": ["10.0.0.0/33"]}))
        .await;
    expect_error(refused, StatusCode::BAD_REQUEST, "invalid_network").await;
    let recent: Value = from("192.0.2.9").await.unwrap().json().await.unwrap();
    assert_eq!(
        recent["recentIps"],
        json!(["192.0.2.9", "2001:db8::7", "192.0.2.7"])
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_changed_password_can_overlap_and_be_ended(#[case] backend: Backend) {
    let (app, clock) = manual_app(backend, None).await;
    app.create_member("m@example.org").await;
    let old = app.create_device("m@example.org", "fleet").await;
    let response = app
        .change_password(&old.id, &old)
        .json(&json!({"graceSeconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let new = DeviceCredentials {
        id: old.id.clone(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    assert!(body["previousPasswordValidUntil"].is_string(), "{body}");
    assert_eq!(app.get_own_device(&old).await.status(), StatusCode::OK);
    assert_eq!(app.get_own_device(&new).await.status(), StatusCode::OK);
    clock.advance(Duration::from_secs(3600));
    expect_error(
        app.get_own_device(&old).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    assert_eq!(app.get_own_device(&new).await.status(), StatusCode::OK);

    // "End now" kills the old one at once.
    let response = app
        .change_password(&new.id, &new)
        .json(&json!({"graceSeconds": 86400}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let newest = DeviceCredentials {
        id: new.id.clone(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.get_own_device(&new).await.status(), StatusCode::OK);
    let ended = app
        .as_device(
            Method::DELETE,
            &format!("/server/api/device/{}/previous-password", new.id),
            &newest,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    let shown: Value = ended.json().await.unwrap();
    assert_eq!(shown["previousPasswordValidUntil"], Value::Null);
    expect_error(
        app.get_own_device(&new).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    assert_eq!(app.get_own_device(&newest).await.status(), StatusCode::OK);

    // At most 24 hours; without a body, the old one dies at once, as in the article.
    let too_long = app
        .change_password(&newest.id, &newest)
        .json(&json!({"graceSeconds": 86401}))
        .send()
        .await
        .unwrap();
    expect_error(too_long, StatusCode::BAD_REQUEST, "invalid_grace").await;
    let plain: Value = app
        .change_password(&newest.id, &newest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plain["previousPasswordValidUntil"], Value::Null);
    expect_error(
        app.get_own_device(&newest).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn limits_can_be_replaced(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    app.create_account(
        "boss@example.org",
        &[Permission::Synchronisation, Permission::Admin],
    )
    .await;
    let (device, _) = device_with(
        &app,
        "m@example.org",
        json!({"expiresAt": "2999-01-01T00:00:00Z"}),
    )
    .await;
    let other = app.create_device("m@example.org", "other").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    // A full device cannot lift limits, its own or a sibling's.
    let lift = app
        .as_device(
            Method::PUT,
            &format!("/server/api/device/{}/limits", device.id),
            &other,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(lift, StatusCode::FORBIDDEN, "insufficient_scope").await;
    let later = app
        .change_password(&device.id, &device)
        .json(&json!({"expiresAt": "3000-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    expect_error(later, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // An administrator's admin-scope device may manage its own devices' limits.
    let (boss, _) = device_with(&app, "boss@example.org", json!({"scope": "admin"})).await;
    let (boss_other, _) = device_with(&app, "boss@example.org", json!({})).await;
    let set = app
        .as_device(
            Method::PUT,
            &format!("/server/api/device/{}/limits", boss_other.id),
            &boss,
        )
        .json(&json!({"scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let device = boss_other;
    // The warm cache of this node sees it at once.
    let patch = app
        .on_device(Method::PATCH, &device.id, &device)
        .json(&json!({"deviceName": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(patch, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_limit_changed_on_one_node_is_enforced_on_another_within_a_second(
    #[case] backend: Backend,
) {
    if backend.available() != Backend::Postgres {
        eprintln!("SKIPPED: several nodes need PostgreSQL");
        return;
    }
    let a = spawn_app(backend).await;
    let b = spawn_node(&a, |_| {}).await;
    a.create_member("m@example.org").await;
    let device = a.create_device("m@example.org", "d").await;
    // Warm on B.
    assert_eq!(b.get_own_device(&device).await.status(), StatusCode::OK);
    // Changed on A the way `latchkey device limits` does.
    let limits = parse_limits(RawLimits {
        allowed_networks: vec!["192.0.2.0/24".into()],
        ..RawLimits::default()
    })
    .unwrap();
    a.service
        .set_device_limits(&OPERATOR, &device.id, limits)
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let status = b.get_own_device(&device).await.status();
        if status == StatusCode::FORBIDDEN {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
