//! API access authorisations over HTTP: a service's own resource, the same
//! limits, cache and revocation feed as device passwords, forward auth, and
//! what they may not do (act for an account). Time moves by a manual clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{
    basic, expect_error, spawn_app, spawn_app_with, spawn_node, Backend, DeviceCredentials,
    TestApp, OPERATOR,
};
use latchkey::domain::{Clock, LifetimePolicy, Timestamp};
use latchkey::service::{parse_limits, NewAccessRequest, RawLimits, TokenChange};

const DAY: Duration = Duration::from_secs(86_400);

async fn make(app: &TestApp, name: &str, limits: RawLimits) -> DeviceCredentials {
    let (access, token) = app
        .service
        .create_access(
            &OPERATOR,
            NewAccessRequest {
                name: name.to_owned(),
                description: "made by a test".to_owned(),
                limits: parse_limits(limits).unwrap(),
            },
        )
        .await
        .expect("access created");
    DeviceCredentials {
        id: access.id.to_string(),
        token: token.expose().to_owned(),
    }
}

fn own(app: &TestApp, access: &DeviceCredentials) -> reqwest::RequestBuilder {
    app.http
        .get(app.url(&format!("/server/api/access/{}", access.id)))
        .header("Authorization", basic(&access.id, &access.token))
}

async fn status_of(app: &TestApp, access: &DeviceCredentials) -> StatusCode {
    own(app, access).send().await.unwrap().status()
}

/// Polls until `access` gets `want` on `app`; how long that took.
async fn until(app: &TestApp, access: &DeviceCredentials, want: StatusCode) -> Duration {
    let start = Instant::now();
    while status_of(app, access).await != want {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still not {want} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_service_loads_its_own_resource_and_nothing_else(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let access = make(&app, "Time clock, hall 2", RawLimits::default()).await;
    assert!(access.token.starts_with("lks_"));
    let response = own(&app, &access)
        .header("User-Agent", "clock/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["_id"], access.id.as_str());
    assert_eq!(body["name"], "Time clock, hall 2");
    assert_eq!(body["description"], "made by a test");
    assert_eq!(body["scope"], "full");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["createdBy"], Value::Null);
    assert_eq!(body["lastUsedUserAgent"], "clock/1.0");
    assert_eq!(body["recentIps"], json!(["127.0.0.1"]));
    assert!(body.get("token").is_none());
    assert!(!body.to_string().contains(&access.token));

    // Another one's id, or an unknown one: not found, whether or not it exists.
    let other = make(&app, "Other", RawLimits::default()).await;
    let response = app
        .http
        .get(app.url(&format!("/server/api/access/{}", other.id)))
        .header("Authorization", basic(&access.id, &access.token))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "access_not_found").await;

    // A wrong token, a device token format under its id, garbage: 401.
    for token in [
        other.token.clone(),
        other.token.replacen("lks_", "lkd_", 1),
        "nonsense".to_owned(),
    ] {
        let wrong = DeviceCredentials {
            id: access.id.clone(),
            token,
        };
        expect_error(
            own(&app, &wrong).send().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_device_credentials",
        )
        .await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn it_acts_for_no_account(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "phone").await;
    let access = make(&app, "Build server", RawLimits::default()).await;
    for (method, path) in [
        (Method::GET, "/server/api/device".to_owned()),
        (Method::GET, format!("/server/api/device/{}", access.id)),
        (Method::GET, format!("/server/api/device/{}", device.id)),
        (Method::DELETE, format!("/server/api/device/{}", device.id)),
        (Method::GET, "/server/api/user".to_owned()),
    ] {
        let response = app
            .http
            .request(method.clone(), app.url(&path))
            .header("Authorization", basic(&access.id, &access.token))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::FORBIDDEN, "account_required").await;
    }
    // The device is untouched, and a device cannot load an access resource.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let response = app
        .http
        .get(app.url(&format!("/server/api/access/{}", device.id)))
        .header("Authorization", basic(&device.id, &device.token))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "access_not_found").await;
    // Nor does it open the web interface: pages know sessions only, and
    // send it to the sign-in form, which takes an email.
    let response = app
        .http
        .get(app.url("/settings/devices"))
        .header("Authorization", basic(&access.id, &access.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.url().path(), "/sign-in");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabling_regenerating_and_deleting_reach_every_node_at_once(#[case] backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_node(&a, |_| {}).await;
    let access = make(&a, "Time clock", RawLimits::default()).await;
    // Both nodes have it cached.
    assert_eq!(status_of(&a, &access).await, StatusCode::OK);
    assert_eq!(status_of(&b, &access).await, StatusCode::OK);

    a.service
        .set_access_enabled(&OPERATOR, &access.id, false)
        .await
        .unwrap();
    expect_error(
        own(&a, &access).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "access_disabled",
    )
    .await;
    assert!(until(&b, &access, StatusCode::FORBIDDEN).await < Duration::from_secs(1));
    a.service
        .set_access_enabled(&OPERATOR, &access.id, true)
        .await
        .unwrap();
    assert!(until(&b, &access, StatusCode::OK).await < Duration::from_secs(1));

    let (_, token) = a
        .service
        .regenerate_access_token(&OPERATOR, &access.id, TokenChange::default())
        .await
        .unwrap();
    let renewed = DeviceCredentials {
        id: access.id.clone(),
        token: token.expose().to_owned(),
    };
    assert_eq!(status_of(&a, &access).await, StatusCode::UNAUTHORIZED);
    assert!(until(&b, &access, StatusCode::UNAUTHORIZED).await < Duration::from_secs(1));
    assert_eq!(status_of(&b, &renewed).await, StatusCode::OK);

    // A limit changed on one node is enforced on the other within a second.
    a.service
        .set_access_limits(
            &OPERATOR,
            &access.id,
            parse_limits(RawLimits {
                allowed_networks: vec!["192.0.2.0/24".into()],
                ..RawLimits::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(until(&b, &renewed, StatusCode::FORBIDDEN).await < Duration::from_secs(1));

    a.service
        .delete_access(&OPERATOR, &access.id)
        .await
        .unwrap();
    assert_eq!(status_of(&a, &renewed).await, StatusCode::UNAUTHORIZED);
    assert!(until(&b, &renewed, StatusCode::UNAUTHORIZED).await < Duration::from_secs(1));
    assert!(a.service.accesses(&OPERATOR).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_limits_of_devices_hold_for_services(#[case] backend: Backend) {
    let clock = Clock::manual(Timestamp::now());
    let c = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = c).await;

    let reader = make(
        &app,
        "Reader",
        RawLimits {
            scope: Some("read".into()),
            ..RawLimits::default()
        },
    )
    .await;
    assert_eq!(status_of(&app, &reader).await, StatusCode::OK);
    let forward = |method: &str, who: &DeviceCredentials| {
        app.http
            .get(app.url("/server/authz/forward-auth"))
            .header("X-Forwarded-Method", method.to_owned())
            .header("Authorization", basic(&who.id, &who.token))
    };
    assert_eq!(
        forward("GET", &reader).send().await.unwrap().status(),
        StatusCode::OK
    );
    expect_error(
        forward("POST", &reader).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;

    let elsewhere = make(
        &app,
        "Elsewhere",
        RawLimits {
            allowed_networks: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
            ..RawLimits::default()
        },
    )
    .await;
    expect_error(
        own(&app, &elsewhere).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;
    let denied = make(
        &app,
        "Denied",
        RawLimits {
            allowed_networks: vec!["127.0.0.0/8".into()],
            denied_networks: vec!["127.0.0.1".into()],
            ..RawLimits::default()
        },
    )
    .await;
    expect_error(
        own(&app, &denied).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;

    let expiring = make(
        &app,
        "Expiring",
        RawLimits {
            expires_at: Some(
                Timestamp::from_millis(clock.now().millis() + 2 * DAY.as_millis() as i64)
                    .to_rfc3339(),
            ),
            idle_expiry_days: Some(30),
            ..RawLimits::default()
        },
    )
    .await;
    assert_eq!(status_of(&app, &expiring).await, StatusCode::OK);
    clock.advance(DAY * 3);
    expect_error(
        own(&app, &expiring).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "credential_expired",
    )
    .await;
    let shown = app.service.access(&OPERATOR, &expiring.id).await.unwrap();
    assert!(app.service.access_state(&shown).expired);
    // Regenerating an expired one needs a new expiry.
    let refused = app
        .service
        .regenerate_access_token(&OPERATOR, &expiring.id, TokenChange::default())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("expir"), "{refused}");

    // Idle expiry counts from the last use.
    let idle = make(
        &app,
        "Idle",
        RawLimits {
            idle_expiry_days: Some(7),
            ..RawLimits::default()
        },
    )
    .await;
    clock.advance(DAY * 6);
    assert_eq!(status_of(&app, &idle).await, StatusCode::OK);
    clock.advance(DAY * 6);
    assert_eq!(status_of(&app, &idle).await, StatusCode::OK);
    clock.advance(DAY * 8);
    expect_error(
        own(&app, &idle).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "credential_expired",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rotation_overlaps_and_the_lifetime_policy_applies(#[case] backend: Backend) {
    let clock = Clock::manual(Timestamp::now());
    let c = clock.clone();
    let app = spawn_app_with(backend, move |config| {
        config.clock = c;
        config.lifetime = LifetimePolicy { max_days: Some(30) };
    })
    .await;
    // Under the policy, one made without an expiry gets the latest allowed.
    let access = make(&app, "Fleet", RawLimits::default()).await;
    let stored = app.service.access(&OPERATOR, &access.id).await.unwrap();
    assert_eq!(
        stored.limits.expires_at.unwrap().millis(),
        clock.now().millis() + 30 * DAY.as_millis() as i64
    );
    let too_late = app
        .service
        .create_access(
            &OPERATOR,
            NewAccessRequest {
                name: "Too long".into(),
                description: String::new(),
                limits: parse_limits(RawLimits {
                    expires_at: Some(
                        Timestamp::from_millis(clock.now().millis() + 40 * DAY.as_millis() as i64)
                            .to_rfc3339(),
                    ),
                    ..RawLimits::default()
                })
                .unwrap(),
            },
        )
        .await
        .unwrap_err();
    assert!(too_late.to_string().contains("30"), "{too_late}");

    let (renewed, token) = app
        .service
        .regenerate_access_token(
            &OPERATOR,
            &access.id,
            TokenChange {
                grace_seconds: 600,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert!(renewed.previous_token_until.is_some());
    let new = DeviceCredentials {
        id: access.id.clone(),
        token: token.expose().to_owned(),
    };
    assert_eq!(status_of(&app, &access).await, StatusCode::OK);
    assert_eq!(status_of(&app, &new).await, StatusCode::OK);
    let body: Value = own(&app, &new).send().await.unwrap().json().await.unwrap();
    assert!(body["previousTokenValidUntil"].is_string());
    clock.advance(Duration::from_secs(601));
    assert_eq!(status_of(&app, &access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&app, &new).await, StatusCode::OK);

    // "End now" kills the old one before its time.
    let (_, third) = app
        .service
        .regenerate_access_token(
            &OPERATOR,
            &access.id,
            TokenChange {
                grace_seconds: 600,
                expires_at: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(status_of(&app, &new).await, StatusCode::OK);
    app.service
        .end_previous_access_token(&OPERATOR, &access.id)
        .await
        .unwrap();
    assert_eq!(status_of(&app, &new).await, StatusCode::UNAUTHORIZED);
    let third = DeviceCredentials {
        id: access.id.clone(),
        token: third.expose().to_owned(),
    };
    assert_eq!(status_of(&app, &third).await, StatusCode::OK);

    // Lowering the policy reaches the existing token at use.
    drop(app);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn forward_auth_names_the_service(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let access = make(&app, "Time clock, hall 2", RawLimits::default()).await;
    let response = app
        .http
        .get(app.url("/server/authz/auth-request"))
        .header("X-Original-Method", "POST")
        .header("X-Original-URL", "https://api.example.org/v1/clock-in")
        .header("Authorization", basic(&access.id, &access.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let id = format!("access:{}", access.id);
    assert_eq!(header("remote-user").as_deref(), Some(id.as_str()));
    assert_eq!(header("remote-credential").as_deref(), Some(id.as_str()));
    assert_eq!(header("remote-name").as_deref(), Some("Time clock, hall 2"));
    assert_eq!(header("remote-email"), None);
    assert_eq!(header("remote-groups").as_deref(), Some(""));
    assert_eq!(header("remote-scope").as_deref(), Some("full"));
    // It holds no permission, so a group rule refuses it.
    let response = app
        .http
        .get(app.url("/server/authz/auth-request?group=synchronisation"))
        .header("X-Original-Method", "GET")
        .header("X-Original-URL", "https://api.example.org/v1/clock-in")
        .header("Authorization", basic(&access.id, &access.token))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::FORBIDDEN, "permission_missing").await;
}

/// Regenerating decides the new token's expiry on the stored one: a
/// concurrent change of limits must never be undone by a decision made
/// without it. Every limits request sets the same expiry on one that had
/// none, every regeneration keeps what is stored: whatever the order, the
/// expiry ends set.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn regenerating_never_undoes_a_concurrent_change_of_limits(#[case] backend: Backend) {
    const CLIENTS: usize = 24;
    let a = Arc::new(spawn_app(backend).await);
    let b = Arc::new(spawn_node(&a, |_| {}).await);
    let expiry = Timestamp::from_millis(Timestamp::now().millis() + 10 * DAY.as_millis() as i64);
    for round in 0..3 {
        let access = make(&a, &format!("Raced {round}"), RawLimits::default()).await;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (id, barrier) = (access.id.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if i % 3 == 0 {
                    node.service
                        .set_access_limits(
                            &OPERATOR,
                            &id,
                            parse_limits(RawLimits {
                                expires_at: Some(expiry.to_rfc3339()),
                                ..RawLimits::default()
                            })
                            .unwrap(),
                        )
                        .await
                        .map(|_| ())
                } else {
                    node.service
                        .regenerate_access_token(&OPERATOR, &id, TokenChange::default())
                        .await
                        .map(|_| ())
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().expect("every change succeeds");
        }
        let stored = a.service.access(&OPERATOR, &access.id).await.unwrap();
        assert_eq!(
            stored.limits.expires_at.map(|t| t.millis() / 1000),
            Some(expiry.millis() / 1000),
            "round {round}: a regeneration undid the expiry"
        );
    }
}

async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .env_remove("LATCHKEY_LOG")
        .output()
        .await
        .expect("latchkey runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The value after `label` on the line that starts with it.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim()
        .to_owned()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_command_line_manages_them_and_every_server_follows(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (ok, out) = cli(
        &app,
        &[
            "access",
            "create",
            "--name",
            "Time clock, hall 2",
            "--description",
            "Gate terminal",
            "--scope",
            "read",
            "--allow",
            "127.0.0.0/8,::1",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let access = DeviceCredentials {
        id: field(&out, "id:"),
        token: field(&out, "token:"),
    };
    assert!(access.token.starts_with("lks_"));
    assert_eq!(field(&out, "scope:"), "read");
    assert_eq!(status_of(&app, &access).await, StatusCode::OK);

    let (ok, list) = cli(&app, &["access", "list"]).await;
    assert!(ok, "{list}");
    assert!(list.contains(&access.id) && list.contains("Time clock, hall 2"));
    assert!(list.contains("127.0.0.0/8,::1/128"), "{list}");
    assert!(
        !list.contains(&access.token),
        "the token is shown only once"
    );
    let (ok, shown) = cli(&app, &["access", "show", &access.id]).await;
    assert!(ok && shown.contains("Gate terminal") && !shown.contains(&access.token));

    let (ok, out) = cli(&app, &["access", "disable", &access.id]).await;
    assert!(ok, "{out}");
    assert!(until(&app, &access, StatusCode::FORBIDDEN).await < Duration::from_secs(2));
    let (ok, out) = cli(&app, &["access", "enable", &access.id]).await;
    assert!(ok, "{out}");
    assert!(until(&app, &access, StatusCode::OK).await < Duration::from_secs(2));

    let (ok, out) = cli(
        &app,
        &["access", "regenerate", &access.id, "--grace-seconds", "60"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("keeps working until"), "{out}");
    let renewed = DeviceCredentials {
        id: access.id.clone(),
        token: field(&out, "token:"),
    };
    // The server hears of the new token from the change feed.
    assert!(until(&app, &renewed, StatusCode::OK).await < Duration::from_secs(2));
    assert_eq!(status_of(&app, &access).await, StatusCode::OK);

    let (ok, out) = cli(
        &app,
        &["access", "limits", &access.id, "--allow", "10.0.0.0/8"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(until(&app, &renewed, StatusCode::FORBIDDEN).await < Duration::from_secs(2));

    for bad in [
        vec!["access", "create", "--name", ""],
        vec!["access", "create", "--name", "x", "--scope", "root"],
        vec!["access", "create", "--name", "x", "--allow", "nowhere"],
        vec!["access", "show", "123"],
        vec!["access", "disable", "999999999999"],
    ] {
        let (ok, out) = cli(&app, &bad).await;
        assert!(!ok, "{bad:?} succeeded: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }

    let (ok, out) = cli(&app, &["access", "delete", &access.id]).await;
    assert!(ok, "{out}");
    assert!(until(&app, &renewed, StatusCode::UNAUTHORIZED).await < Duration::from_secs(2));
}

fn admin_api(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &DeviceCredentials,
) -> reqwest::RequestBuilder {
    app.http
        .request(method, app.url(&format!("/server/api/admin{path}")))
        .header("Authorization", basic(&who.id, &who.token))
}

async fn json_of(request: reqwest::RequestBuilder, status: StatusCode) -> Value {
    let response = request.send().await.unwrap();
    let actual = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_admin_api_manages_them_and_they_outlive_their_maker(#[case] backend: Backend) {
    use latchkey::domain::Permission;
    let app = spawn_app(backend).await;
    // Another administrator remains, so the maker may be deleted.
    app.create_account("keeper@example.org", &[Permission::Admin])
        .await;
    let maker = app
        .create_account(
            "maker@example.org",
            &[Permission::Admin, Permission::Synchronisation],
        )
        .await;
    let response = app
        .post_device(
            &json!({"email": "maker@example.org", "password": crate::helpers::PASSWORD,
            "deviceName": "admin script", "scope": "admin"}),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let admin_device = DeviceCredentials {
        id: body["_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    };

    let created = json_of(
        admin_api(&app, Method::POST, "/access", &admin_device).json(&json!({
            "name": "Time clock, hall 2",
            "description": "at the gate",
            "scope": "read",
            "allowedNetworks": ["127.0.0.1/32"]
        })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["createdBy"], "maker@example.org");
    assert_eq!(created["allowedNetworks"], json!(["127.0.0.1/32"]));
    let clock = DeviceCredentials {
        id: created["_id"].as_str().unwrap().to_owned(),
        token: created["token"].as_str().unwrap().to_owned(),
    };
    assert!(clock.token.starts_with("lks_"));
    assert_eq!(status_of(&app, &clock).await, StatusCode::OK);
    let listed = json_of(
        admin_api(&app, Method::GET, "/access", &admin_device),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&clock.token));
    let renamed = json_of(
        admin_api(
            &app,
            Method::PATCH,
            &format!("/access/{}", clock.id),
            &admin_device,
        )
        .json(&json!({"description": "hall 2, north gate"})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "Time clock, hall 2");
    assert_eq!(renamed["description"], "hall 2, north gate");

    // The maker disabled, then deleted: the service does not notice.
    app.set_enabled("maker@example.org", false).await.unwrap();
    assert_eq!(status_of(&app, &clock).await, StatusCode::OK);
    app.service
        .delete_account(&OPERATOR, maker.id)
        .await
        .unwrap();
    assert_eq!(status_of(&app, &clock).await, StatusCode::OK);
    let shown = app.service.access(&OPERATOR, &clock.id).await.unwrap();
    assert_eq!(shown.created_by.as_deref(), Some("maker@example.org"));

    // An admin-scope authorisation may use the admin API; a full one may not.
    let robot = make(
        &app,
        "Provisioning robot",
        RawLimits {
            scope: Some("admin".into()),
            ..RawLimits::default()
        },
    )
    .await;
    let accounts = json_of(
        admin_api(&app, Method::GET, "/accounts", &robot),
        StatusCode::OK,
    )
    .await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    json_of(
        admin_api(
            &app,
            Method::POST,
            &format!("/access/{}/disable", clock.id),
            &robot,
        ),
        StatusCode::OK,
    )
    .await;
    expect_error(
        own(&app, &clock).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "access_disabled",
    )
    .await;
    json_of(
        admin_api(
            &app,
            Method::POST,
            &format!("/access/{}/enable", clock.id),
            &robot,
        ),
        StatusCode::OK,
    )
    .await;
    let rotated = json_of(
        admin_api(
            &app,
            Method::POST,
            &format!("/access/{}/token", clock.id),
            &robot,
        )
        .json(&json!({"graceSeconds": 60})),
        StatusCode::OK,
    )
    .await;
    let new = DeviceCredentials {
        id: clock.id.clone(),
        token: rotated["token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(status_of(&app, &new).await, StatusCode::OK);
    assert_eq!(status_of(&app, &clock).await, StatusCode::OK);
    json_of(
        admin_api(
            &app,
            Method::DELETE,
            &format!("/access/{}/previous-token", clock.id),
            &robot,
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(status_of(&app, &clock).await, StatusCode::UNAUTHORIZED);
    let limited = json_of(
        admin_api(
            &app,
            Method::PUT,
            &format!("/access/{}/limits", clock.id),
            &robot,
        )
        .json(&json!({"scope": "full", "deniedNetworks": ["127.0.0.1"]})),
        StatusCode::OK,
    )
    .await;
    assert_eq!(limited["scope"], "full");
    expect_error(
        own(&app, &new).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;

    let full = make(&app, "Full", RawLimits::default()).await;
    for (method, path) in [
        (Method::GET, "/accounts".to_owned()),
        (Method::GET, "/access".to_owned()),
        (Method::DELETE, format!("/access/{}", clock.id)),
    ] {
        expect_error(
            admin_api(&app, method, &path, &full).send().await.unwrap(),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        )
        .await;
    }
    // Bad input: stable codes, nothing written.
    for body in [
        json!({"name": ""}),
        json!({"name": "x", "scope": "root"}),
        json!({"name": "x", "allowedNetworks": ["nowhere"]}),
        json!({"name": "x", "token": "lks_mine"}),
        json!({"description": "no name"}),
    ] {
        let response = admin_api(&app, Method::POST, "/access", &robot)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    expect_error(
        admin_api(&app, Method::GET, "/access/12", &robot)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "access_not_found",
    )
    .await;
    assert_eq!(app.service.accesses(&OPERATOR).await.unwrap().len(), 3);

    let response = admin_api(
        &app,
        Method::DELETE,
        &format!("/access/{}", clock.id),
        &robot,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(status_of(&app, &new).await, StatusCode::UNAUTHORIZED);
    // Changes are logged with who made them; a token never is.
    let logs = crate::helpers::captured_logs();
    assert!(
        logs.contains(&format!("API access {}", robot.id)),
        "no actor in the logs"
    );
    for token in [&clock.token, &new.token, &robot.token] {
        assert!(!logs.contains(&token[4..]), "a token was logged");
    }
}

/// The other way round: under a lifetime policy, a change of limits that
/// asks for no expiry keeps the stored one, so it is decided on it, and a
/// regeneration that sets a new expiry meanwhile must never be undone by it.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_change_of_limits_never_undoes_a_concurrent_new_expiry(#[case] backend: Backend) {
    const CLIENTS: usize = 24;
    let policy = |c: &mut latchkey::config::Config| {
        c.lifetime = LifetimePolicy { max_days: Some(30) };
    };
    let a = Arc::new(spawn_app_with(backend, policy).await);
    let b = Arc::new(spawn_node(&a, policy).await);
    let sooner = Timestamp::from_millis(Timestamp::now().millis() + 5 * DAY.as_millis() as i64);
    for round in 0..3 {
        // Made under the policy: it expires in 30 days.
        let access = make(&a, &format!("Raced {round}"), RawLimits::default()).await;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (id, barrier) = (access.id.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if i % 3 == 0 {
                    let change = TokenChange {
                        grace_seconds: 0,
                        expires_at: Some(sooner),
                    };
                    node.service
                        .regenerate_access_token(&OPERATOR, &id, change)
                        .await
                        .map(|_| ())
                } else {
                    let limits = parse_limits(RawLimits {
                        scope: Some("read".into()),
                        ..RawLimits::default()
                    })
                    .unwrap();
                    node.service
                        .set_access_limits(&OPERATOR, &id, limits)
                        .await
                        .map(|_| ())
                }
            }));
        }
        for task in tasks {
            task.await.unwrap().expect("every change succeeds");
        }
        let stored = a.service.access(&OPERATOR, &access.id).await.unwrap();
        assert_eq!(
            stored.limits.expires_at.map(|t| t.millis() / 1000),
            Some(sooner.millis() / 1000),
            "round {round}: a change of limits undid the new expiry"
        );
    }
}
