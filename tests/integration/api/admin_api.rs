//! The admin API (`/server/api/admin/…`): only an administrator's device
//! password with the `admin` scope gets in; with it, accounts are listed,
//! searched, given and stripped of permissions, disabled and enabled, and
//! any account's devices listed and deleted, each change on every node at
//! once and under the last-administrator rule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{
    captured_logs, expect_error, spawn_app, spawn_app_with, spawn_node, Backend, DeviceCredentials,
    TestApp, PASSWORD,
};
use latchkey::domain::{rules, Clock, Permission, Timestamp};

const CLIENTS: usize = 20;

/// A device of `email`'s account with `scope`, through the article's route.
async fn device_with_scope(app: &TestApp, email: &str, scope: &str) -> DeviceCredentials {
    let response = app
        .post_device(
            &json!({"email": email, "password": PASSWORD, "deviceName": scope, "scope": scope}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], scope);
    DeviceCredentials {
        id: body["_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// A new administrator (who may also use device passwords) and an
/// admin-scope device of theirs.
async fn administrator(app: &TestApp, email: &str) -> (i64, DeviceCredentials) {
    let account = app
        .create_account(email, &[Permission::Admin, Permission::Synchronisation])
        .await;
    (account.id.0, device_with_scope(app, email, "admin").await)
}

/// A request under `/server/api/admin`, as `device`.
fn admin(
    app: &TestApp,
    method: Method,
    path: &str,
    device: &DeviceCredentials,
) -> reqwest::RequestBuilder {
    app.as_device(method, &format!("/server/api/admin{path}"), device)
}

async fn json_of(request: reqwest::RequestBuilder, status: StatusCode) -> Value {
    let response = request.send().await.unwrap();
    let actual = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body
}

/// Every route of the admin API, with ids that exist.
fn every_route(account: i64, device: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, "/accounts".to_owned()),
        (Method::GET, "/accounts?q=x".to_owned()),
        (Method::GET, format!("/accounts/{account}")),
        (
            Method::PUT,
            format!("/accounts/{account}/permissions/synchronisation"),
        ),
        (
            Method::DELETE,
            format!("/accounts/{account}/permissions/synchronisation"),
        ),
        (Method::POST, format!("/accounts/{account}/disable")),
        (Method::POST, format!("/accounts/{account}/enable")),
        (Method::GET, "/devices".to_owned()),
        (Method::GET, format!("/devices?account={account}")),
        (Method::DELETE, format!("/devices/{device}")),
    ]
}

/// One node on SQLite; two on one database on PostgreSQL.
async fn nodes(backend: Backend) -> Vec<Arc<TestApp>> {
    let first = spawn_app(backend).await;
    let mut nodes = Vec::new();
    if first.backend == Backend::Postgres {
        nodes.push(Arc::new(spawn_node(&first, |_| {}).await));
    }
    nodes.insert(0, Arc::new(first));
    nodes
}

async fn enabled_administrators(app: &TestApp) -> usize {
    app.accounts()
        .await
        .unwrap()
        .iter()
        .filter(|a| rules::is_administrator(a).is_ok())
        .count()
}

/// Polls `device`'s own resource on `node` until it gets `status`, for at most a second.
async fn refused_within_a_second(node: &TestApp, device: &DeviceCredentials, status: StatusCode) {
    let start = Instant::now();
    loop {
        let now = node.get_own_device(device).await.status();
        if now == status {
            return;
        }
        assert_eq!(now, StatusCode::OK);
        assert!(start.elapsed() < Duration::from_secs(1), "still {now}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_admin_scope_device_lists_searches_and_shows_accounts(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (boss_id, boss) = administrator(&app, "boss@example.org").await;
    let alice = app.create_member("alice@example.org").await;
    app.create_member("bob@example.org").await;
    app.create_device("alice@example.org", "phone").await;
    app.create_device("alice@example.org", "laptop").await;

    let all = json_of(admin(&app, Method::GET, "/accounts", &boss), StatusCode::OK).await;
    let emails: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails.len(), 3, "{all}");
    for email in ["boss@example.org", "alice@example.org", "bob@example.org"] {
        assert!(emails.contains(&email), "{all}");
    }
    let shown = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == "alice@example.org")
        .unwrap();
    assert_eq!(shown["id"], alice.id.0);
    assert_eq!(shown["name"], "alice");
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["permissions"], json!(["synchronisation"]));
    assert_eq!(shown["twoFactorEnabled"], false);
    assert_eq!(shown["deviceCount"], 2);
    assert!(shown["createdAt"].is_string(), "{shown}");

    // Case-insensitive, in email or name; a query matching nothing is an empty list.
    for (q, expected) in [
        ("ALI", vec!["alice@example.org"]),
        ("%20bob%20", vec!["bob@example.org"]),
        ("nobody", vec![]),
    ] {
        let found = json_of(
            admin(&app, Method::GET, &format!("/accounts?q={q}"), &boss),
            StatusCode::OK,
        )
        .await;
        let emails: Vec<&str> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, expected, "{q}");
    }
    let everyone = json_of(
        admin(&app, Method::GET, "/accounts?q=", &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(everyone.as_array().unwrap().len(), 3);

    let one = json_of(
        admin(&app, Method::GET, &format!("/accounts/{boss_id}"), &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["email"], "boss@example.org");
    assert_eq!(one["permissions"], json!(["synchronisation", "admin"]));
    assert_eq!(one["deviceCount"], 1);

    // Ids that name no account are all "not found", never a 500.
    for id in [
        "999999",
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999",
        "%F0%9F%94%91",
    ] {
        let response = admin(&app, Method::GET, &format!("/accounts/{id}"), &boss)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "account_not_found").await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_admin_scope_device_grants_and_revokes_permissions(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, boss) = administrator(&app, "boss@example.org").await;
    let member = app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "phone").await;
    let path = |p: &str| format!("/accounts/{}/permissions/{p}", member.id.0);

    let granted = json_of(
        admin(&app, Method::PUT, &path("admin"), &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(granted["permissions"], json!(["synchronisation", "admin"]));
    assert!(granted.get("deviceCount").is_none(), "{granted}");
    // Granting again changes nothing and is no error.
    json_of(
        admin(&app, Method::PUT, &path("admin"), &boss),
        StatusCode::OK,
    )
    .await;
    let revoked = json_of(
        admin(&app, Method::DELETE, &path("admin"), &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(revoked["permissions"], json!(["synchronisation"]));

    // Without synchronisation, the member's device password stops at once;
    // the American spelling is understood.
    json_of(
        admin(&app, Method::DELETE, &path("synchronization"), &boss),
        StatusCode::OK,
    )
    .await;
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::FORBIDDEN,
        "permission_missing",
    )
    .await;
    json_of(
        admin(&app, Method::PUT, &path("Synchronisation"), &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    for unknown in ["root", "admin%20x", "%00"] {
        for method in [Method::PUT, Method::DELETE] {
            let response = admin(&app, method, &path(unknown), &boss)
                .send()
                .await
                .unwrap();
            expect_error(response, StatusCode::BAD_REQUEST, "invalid_permission").await;
        }
    }
    let response = admin(&app, Method::PUT, "/accounts/abc/permissions/admin", &boss)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "account_not_found").await;
    let response = admin(
        &app,
        Method::PUT,
        "/accounts/424242/permissions/admin",
        &boss,
    )
    .send()
    .await
    .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "account_not_found").await;

    // Each change is logged with who made it, never with a token.
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| {
            l.contains("permission changed")
                && l.contains(&format!(
                    "administrator boss@example.org with device {}",
                    boss.id
                ))
        })
        .unwrap_or_else(|| panic!("no log line naming the administrator's device"));
    assert!(line.contains("m@example.org"), "{line}");
    assert!(!logs.contains(&boss.token));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_accounts_device_passwords_are_refused_at_once_on_every_node(
    #[case] backend: Backend,
) {
    let nodes = nodes(backend).await;
    let app = &nodes[0];
    let (_, boss) = administrator(app, "boss@example.org").await;
    let member = app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "phone").await;
    for node in &nodes {
        assert_eq!(node.get_own_device(&device).await.status(), StatusCode::OK);
    }

    let disabled = json_of(
        admin(
            app,
            Method::POST,
            &format!("/accounts/{}/disable", member.id.0),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(disabled["enabled"], false);
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;
    for node in &nodes[1..] {
        refused_within_a_second(node, &device, StatusCode::FORBIDDEN).await;
    }

    let enabled = json_of(
        admin(
            &nodes[nodes.len() - 1],
            Method::POST,
            &format!("/accounts/{}/enable", member.id.0),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(enabled["enabled"], true);
    let start = Instant::now();
    for node in &nodes {
        while node.get_own_device(&device).await.status() != StatusCode::OK {
            assert!(start.elapsed() < Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for path in ["/accounts/abc/disable", "/accounts/77777/enable"] {
        let response = admin(app, Method::POST, path, &boss).send().await.unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "account_not_found").await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_scope_device_lists_and_deletes_any_device(#[case] backend: Backend) {
    let clock = Clock::manual(Timestamp::now());
    let c = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = c).await;
    let nodes = if app.backend == Backend::Postgres {
        let second = spawn_node(&app, {
            let c = clock.clone();
            move |config| config.clock = c
        })
        .await;
        vec![app, second]
    } else {
        vec![app]
    };
    let app = &nodes[0];
    let (boss_id, boss) = administrator(app, "boss@example.org").await;
    let member = app.create_member("m@example.org").await;
    let phone = app.create_device("m@example.org", "phone").await;
    let soon = Timestamp::from_millis(clock.now().millis() + 3_600_000);
    let response = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "short", "expiresAt": soon.to_rfc3339(), "allowedNetworks": ["127.0.0.0/8"]}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let short: Value = response.json().await.unwrap();
    clock.advance(Duration::from_secs(7200));

    let all = json_of(admin(app, Method::GET, "/devices", &boss), StatusCode::OK).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let shown = |id: &str| all.iter().find(|d| d["_id"] == id).unwrap().clone();
    let row = shown(&phone.id);
    assert_eq!(row["accountId"], member.id.0);
    assert_eq!(row["accountEmail"], "m@example.org");
    assert_eq!(row["deviceName"], "phone");
    assert_eq!(row["scope"], "full");
    assert_eq!(row["expired"], false);
    assert!(row.get("token").is_none(), "{row}");
    let row = shown(short["_id"].as_str().unwrap());
    assert_eq!(row["expired"], true);
    assert_eq!(row["allowedNetworks"], json!(["127.0.0.0/8"]));
    assert_eq!(shown(&boss.id)["accountEmail"], "boss@example.org");
    assert_eq!(shown(&boss.id)["scope"], "admin");

    let theirs = json_of(
        admin(
            app,
            Method::GET,
            &format!("/devices?account={}", member.id.0),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs.as_array().unwrap().len(), 2);
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["accountId"] == member.id.0));
    let own = json_of(
        admin(
            app,
            Method::GET,
            &format!("/devices?account={boss_id}"),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    let nobodys = json_of(
        admin(app, Method::GET, "/devices?account=888888", &boss),
        StatusCode::OK,
    )
    .await;
    assert_eq!(nobodys, json!([]));
    for bad in ["abc", "-3", "1e3"] {
        let response = admin(app, Method::GET, &format!("/devices?account={bad}"), &boss)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }

    // Deleting another account's device revokes it at once, on every node.
    for node in &nodes {
        assert_eq!(node.get_own_device(&phone).await.status(), StatusCode::OK);
    }
    let deleted = admin(
        app,
        Method::DELETE,
        &format!("/devices/{}", phone.id),
        &boss,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get_own_device(&phone).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    for node in &nodes[1..] {
        refused_within_a_second(node, &phone, StatusCode::UNAUTHORIZED).await;
    }
    for id in [phone.id.as_str(), "garbage", "0", "%F0%9F%94%91"] {
        let response = admin(app, Method::DELETE, &format!("/devices/{id}"), &boss)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "device_not_found").await;
    }
    assert_eq!(app.devices(None).await.unwrap().len(), 2);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn only_an_administrators_admin_scope_device_gets_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (boss_id, boss) = administrator(&app, "boss@example.org").await;
    let full = device_with_scope(&app, "boss@example.org", "full").await;
    let read = device_with_scope(&app, "boss@example.org", "read").await;
    app.create_member("m@example.org").await;
    let members = device_with_scope(&app, "m@example.org", "full").await;
    let target = app.create_device("m@example.org", "target").await;

    // A member cannot even have a device with the admin scope.
    let refused = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x", "scope": "admin"}))
        .await;
    expect_error(refused, StatusCode::BAD_REQUEST, "scope_not_allowed").await;

    for (method, path) in every_route(boss_id, &target.id) {
        // A full or read device of an administrator, and any device of a
        // member, are told the scope they would need: reading is
        // administration here too.
        for device in [&full, &read, &members] {
            let response = admin(&app, method.clone(), &path, device)
                .send()
                .await
                .unwrap();
            let body = expect_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
            assert!(
                body["message"].as_str().unwrap().contains("\"admin\""),
                "{body}"
            );
        }
        let anonymous = app
            .http
            .request(method.clone(), app.url(&format!("/server/api/admin{path}")))
            .send()
            .await
            .unwrap();
        expect_error(anonymous, StatusCode::UNAUTHORIZED, "missing_credentials").await;
        let wrong = DeviceCredentials {
            id: boss.id.clone(),
            token: target.token.clone(),
        };
        let response = admin(&app, method.clone(), &path, &wrong)
            .send()
            .await
            .unwrap();
        expect_error(
            response,
            StatusCode::UNAUTHORIZED,
            "invalid_device_credentials",
        )
        .await;
        // A main password is never checked here.
        let response = app
            .http
            .request(method.clone(), app.url(&format!("/server/api/admin{path}")))
            .basic_auth("boss@example.org", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        expect_error(
            response,
            StatusCode::UNAUTHORIZED,
            "device_password_required",
        )
        .await;
    }
    // Nothing was changed by any of them.
    assert_eq!(app.get_own_device(&target).await.status(), StatusCode::OK);
    let account = app.account_by_email("boss@example.org").await.unwrap();
    assert!(account.enabled);

    // The admin API's unknown addresses and methods answer in JSON too.
    let response = admin(&app, Method::GET, "/nothing", &boss)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = admin(&app, Method::PATCH, "/accounts", &boss)
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    // The routes take no body: one sent is not read.
    let response = admin(
        &app,
        Method::POST,
        &format!("/accounts/{boss_id}/enable"),
        &boss,
    )
    .header("content-type", "application/json")
    .body("{not json")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = admin(&app, Method::GET, "/accounts?q=a&q=b", &boss)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_scope_device_is_refused_once_its_holder_is_no_administrator(
    #[case] backend: Backend,
) {
    let nodes = nodes(backend).await;
    let app = &nodes[0];
    let (_, boss) = administrator(app, "boss@example.org").await;
    let (deputy_id, deputy) = administrator(app, "deputy@example.org").await;
    for node in &nodes {
        json_of(
            admin(node, Method::GET, "/accounts", &deputy),
            StatusCode::OK,
        )
        .await;
    }

    json_of(
        admin(
            app,
            Method::DELETE,
            &format!("/accounts/{deputy_id}/permissions/admin"),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    let start = Instant::now();
    for node in &nodes {
        loop {
            let response = admin(node, Method::GET, "/accounts", &deputy)
                .send()
                .await
                .unwrap();
            if response.status() != StatusCode::OK {
                expect_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
                break;
            }
            // Only another node may lag, and not for long.
            assert!(!Arc::ptr_eq(node, &nodes[0]), "accepted after revoking");
            assert!(start.elapsed() < Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Still a device password of the account, acting with full scope.
        assert_eq!(node.get_own_device(&deputy).await.status(), StatusCode::OK);
    }
    // Given back the permission, the same device is in again.
    app.set_permission("deputy@example.org", Permission::Admin, true)
        .await
        .unwrap();
    json_of(
        admin(app, Method::GET, "/accounts", &deputy),
        StatusCode::OK,
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_only_administrator_cannot_disable_or_demote_itself(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (boss_id, boss) = administrator(&app, "boss@example.org").await;
    // A disabled administrator does not count.
    let (other_id, _) = administrator(&app, "gone@example.org").await;
    app.set_enabled("gone@example.org", false).await.unwrap();

    for (method, path) in [
        (Method::POST, format!("/accounts/{boss_id}/disable")),
        (
            Method::DELETE,
            format!("/accounts/{boss_id}/permissions/admin"),
        ),
    ] {
        let response = admin(&app, method, &path, &boss).send().await.unwrap();
        let body = expect_error(response, StatusCode::BAD_REQUEST, "last_administrator").await;
        assert!(
            body["message"].as_str().unwrap().starts_with("You are"),
            "{body}"
        );
    }
    let account = app.account_by_email("boss@example.org").await.unwrap();
    assert!(account.enabled && account.permissions.contains(Permission::Admin));
    json_of(admin(&app, Method::GET, "/accounts", &boss), StatusCode::OK).await;

    // With another administrator enabled, it may.
    json_of(
        admin(
            &app,
            Method::POST,
            &format!("/accounts/{other_id}/enable"),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    json_of(
        admin(
            &app,
            Method::DELETE,
            &format!("/accounts/{boss_id}/permissions/admin"),
            &boss,
        ),
        StatusCode::OK,
    )
    .await;
    let response = admin(&app, Method::GET, "/accounts", &boss)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::FORBIDDEN, "insufficient_scope").await;
}

/// Every `(node, device, method, path)` sent at once after a barrier; the answers' statuses and codes.
async fn all_at_once(
    requests: Vec<(Arc<TestApp>, DeviceCredentials, Method, String)>,
) -> Vec<(StatusCode, Option<String>)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for (node, device, method, path) in requests {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let request = admin(&node, method, &path, &device);
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["error"].as_str().map(str::to_owned))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn administrators_all_giving_up_their_admin_right_at_once_leave_one(
    #[case] backend: Backend,
) {
    let nodes = nodes(backend).await;
    let mut requests = Vec::new();
    for i in 0..CLIENTS {
        let node = nodes[i % nodes.len()].clone();
        let (id, device) = administrator(&node, &format!("admin{i}@example.org")).await;
        // Warm: each device is in its node's cache, as in daily use.
        json_of(
            admin(&node, Method::GET, "/accounts?q=none", &device),
            StatusCode::OK,
        )
        .await;
        requests.push((
            node,
            device,
            Method::DELETE,
            format!("/accounts/{id}/permissions/admin"),
        ));
    }
    let answers = all_at_once(requests).await;

    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let last = answers
        .iter()
        .filter(|(s, code)| {
            *s == StatusCode::BAD_REQUEST && code.as_deref() == Some("last_administrator")
        })
        .count();
    assert_eq!((ok, last), (CLIENTS - 1, 1), "{answers:?}");
    for node in &nodes {
        assert_eq!(enabled_administrators(node).await, 1);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn two_administrators_demoting_each_other_at_once_leave_one(#[case] backend: Backend) {
    let nodes = nodes(backend).await;
    let (a_id, a) = administrator(&nodes[0], "a@example.org").await;
    let (b_id, b) = administrator(&nodes[0], "b@example.org").await;
    for node in &nodes {
        for device in [&a, &b] {
            json_of(
                admin(node, Method::GET, "/accounts?q=none", device),
                StatusCode::OK,
            )
            .await;
        }
    }
    // Half the clients are A revoking B's admin right, half B revoking A's,
    // spread over the nodes.
    let mut requests = Vec::new();
    for i in 0..CLIENTS + 2 {
        let node = nodes[(i / 2) % nodes.len()].clone();
        let (device, target) = if i % 2 == 0 { (&a, b_id) } else { (&b, a_id) };
        requests.push((
            node,
            device.clone(),
            Method::DELETE,
            format!("/accounts/{target}/permissions/admin"),
        ));
    }
    let answers = all_at_once(requests).await;

    let side = |parity: usize| -> Vec<&(StatusCode, Option<String>)> {
        answers
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, a)| a)
            .collect()
    };
    let won = |answers: &[&(StatusCode, Option<String>)]| {
        answers.iter().any(|(s, _)| *s == StatusCode::OK)
    };
    let (a_side, b_side) = (side(0), side(1));
    // Exactly one of them demoted the other; every request of the other was
    // refused, as leaving no administrator, or as no longer being one (seen
    // inside the change, or already when authenticated).
    assert!(won(&a_side) != won(&b_side), "{answers:?}");
    let loser = if won(&a_side) { &b_side } else { &a_side };
    for (status, code) in loser {
        assert!(
            matches!(
                (*status, code.as_deref()),
                (StatusCode::BAD_REQUEST, Some("last_administrator"))
                    | (
                        StatusCode::FORBIDDEN,
                        Some("insufficient_scope" | "admin_required")
                    )
            ),
            "{answers:?}"
        );
    }
    for node in &nodes {
        assert_eq!(enabled_administrators(node).await, 1);
    }
}

/// With a third administrator the last-administrator rule allows both
/// demotions, so only the acting administrator's own right, checked again
/// inside each change's transaction, keeps one of them from acting after
/// the other demoted them.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_demoted_meanwhile_cannot_demote_the_other(#[case] backend: Backend) {
    let nodes = nodes(backend).await;
    let (a_id, a) = administrator(&nodes[0], "a@example.org").await;
    let (b_id, b) = administrator(&nodes[0], "b@example.org").await;
    administrator(&nodes[0], "c@example.org").await;
    for node in &nodes {
        for device in [&a, &b] {
            json_of(
                admin(node, Method::GET, "/accounts?q=none", device),
                StatusCode::OK,
            )
            .await;
        }
    }
    let mut requests = Vec::new();
    for i in 0..CLIENTS + 2 {
        let node = nodes[(i / 2) % nodes.len()].clone();
        let (device, target) = if i % 2 == 0 { (&a, b_id) } else { (&b, a_id) };
        requests.push((
            node,
            device.clone(),
            Method::DELETE,
            format!("/accounts/{target}/permissions/admin"),
        ));
    }
    let answers = all_at_once(requests).await;
    for (status, code) in &answers {
        assert!(
            matches!(
                (*status, code.as_deref()),
                (StatusCode::OK, _)
                    | (
                        StatusCode::FORBIDDEN,
                        Some("admin_required" | "insufficient_scope")
                    )
            ),
            "{answers:?}"
        );
    }
    let a_admin = nodes[0]
        .account_by_email("a@example.org")
        .await
        .unwrap()
        .permissions
        .contains(Permission::Admin);
    let b_admin = nodes[0]
        .account_by_email("b@example.org")
        .await
        .unwrap()
        .permissions
        .contains(Permission::Admin);
    assert!(
        a_admin != b_admin,
        "a: {a_admin}, b: {b_admin}; {answers:?}"
    );
    for node in &nodes {
        assert_eq!(enabled_administrators(node).await, 2);
    }
}
