//! App sign-in (RFC 8628's shape): the app starts over the API, the person
//! approves on `/device`, the app polls and collects its device password
//! exactly once.

use std::sync::Arc;
use std::time::Duration;

use latchkey::domain::Clock;
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{
    basic, captured_logs, expect_error, spawn_app, spawn_app_with, spawn_node, Backend, TestApp,
    PASSWORD,
};
use crate::visitor::{Page, Visitor};

const MEMBER: &str = "member@example.org";

/// What `POST /server/api/device/authorize` handed out.
pub struct Started {
    pub device_code: String,
    pub user_code: String,
    pub body: Value,
}

pub async fn start(app: &TestApp, name: &str) -> Started {
    let response = start_request(app, name).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    Started {
        device_code: body["deviceCode"].as_str().unwrap().to_owned(),
        user_code: body["userCode"].as_str().unwrap().to_owned(),
        body,
    }
}

fn start_request(app: &TestApp, name: &str) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/server/api/device/authorize"))
        .json(&json!({"deviceName": name, "deviceType": "ios"}))
}

pub fn poll_request(app: &TestApp, device_code: &str) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/server/api/device/authorize/token"))
        .json(&json!({ "deviceCode": device_code }))
}

pub async fn poll(app: &TestApp, device_code: &str) -> reqwest::Response {
    poll_request(app, device_code).send().await.unwrap()
}

/// The `/device` page for `code`, as `visitor` sees it.
async fn request_page(visitor: &Visitor, code: &str) -> Page {
    let query = serde_urlencoded::to_string([("code", code)]).unwrap();
    visitor.get(&format!("/device?{query}")).await
}

/// Approve (or Deny) on the page for `code`.
async fn decide(visitor: &Visitor, code: &str, button: &str) -> Page {
    let page = request_page(visitor, code).await;
    let mut fields = vec![("csrf", page.csrf())];
    fields.push(("code", code.to_owned()));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    visitor.post(&format!("/device/{button}"), &fields).await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_whole_flow_hands_the_app_its_device_password_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Ann's phone").await;
    let body = &started.body;
    let user_code = &started.user_code;
    assert_eq!(user_code.len(), 9, "{body}");
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert!(started.device_code.len() >= 40, "{body}");
    assert_eq!(body["verificationUri"], app.url("/device"));
    assert_eq!(
        body["verificationUriComplete"],
        app.url(&format!("/device?code={user_code}"))
    );
    assert_eq!(body["expiresIn"], 600);
    assert_eq!(body["interval"], 5);

    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;

    // The person follows verificationUriComplete and sees who asks.
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    let page = request_page(&visitor, user_code).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.text_of("device-app-name").unwrap(), "Ann's phone");
    assert_eq!(page.text_of("device-app-type").unwrap(), "ios");
    assert_eq!(page.text_of("device-address").unwrap(), "127.0.0.1");
    assert_eq!(
        page.text_of("device-user-agent").unwrap(),
        "latchkey-tests/1.0"
    );
    assert_eq!(page.text_of("device-user-code").unwrap(), *user_code);
    decide(&visitor, user_code, "approve")
        .await
        .assert_redirect("/settings/devices");
    let tab = visitor.get("/settings/devices").await;
    assert!(tab.body.contains("Ann&#39;s phone") || tab.body.contains("Ann's phone"));
    assert!(tab.body.contains("is signed in"), "{}", tab.body);

    let collected = poll(&app, &started.device_code).await;
    assert_eq!(collected.status(), StatusCode::OK);
    let device: Value = collected.json().await.unwrap();
    let (id, token) = (
        device["_id"].as_str().unwrap(),
        device["token"].as_str().unwrap(),
    );
    assert_eq!(device["deviceName"], "Ann's phone");
    assert_eq!(device["deviceType"], "ios");
    assert!(token.starts_with("lkd_"));

    // Once only: the code is dead now.
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;

    // The article's start-up check works with what the app stored.
    let own = app
        .http
        .get(app.url(&format!("/server/api/device/{id}")))
        .header("authorization", basic(id, token))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["_id"], id);
    assert!(own.get("token").is_none());
    let account = app.account_by_email(MEMBER).await.unwrap();
    let devices = app.devices(Some(account.id)).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].id.as_str(), id);

    // The request is no longer there to decide.
    let page = request_page(&visitor, user_code).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error("device-code").is_some(), "{}", page.body);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn signing_in_first_returns_to_the_request(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Laptop").await;
    let path = format!("/device?code={}", started.user_code);
    let visitor = Visitor::new(&app);
    let page = visitor.get(&path).await;
    let next = serde_urlencoded::to_string([("next", path.as_str())]).unwrap();
    page.assert_redirect(&format!("/sign-in?{next}"));
    visitor
        .submit(
            &format!("/sign-in?{next}"),
            "/sign-in",
            &[("email", MEMBER), ("password", PASSWORD), ("next", &path)],
        )
        .await
        .assert_redirect(&path);
    let page = visitor.get(&path).await;
    assert_eq!(page.text_of("device-app-name").unwrap(), "Laptop");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_denied_request_gets_access_denied(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Unknown thing").await;
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    decide(&visitor, &started.user_code, "deny")
        .await
        .assert_redirect("/device");
    assert!(visitor.get("/device").await.body.contains("Denied"));
    for _ in 0..2 {
        expect_error(
            poll(&app, &started.device_code).await,
            StatusCode::BAD_REQUEST,
            "access_denied",
        )
        .await;
    }
    // Nor can it be approved afterwards.
    let page = decide(&visitor, &started.user_code, "approve").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let account = app.account_by_email(MEMBER).await.unwrap();
    assert!(app.devices(Some(account.id)).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_device_deleted_or_changed_before_collection_is_not_handed_out(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member(MEMBER).await;
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    let changed = start(&app, "Changed").await;
    let deleted = start(&app, "Deleted").await;
    for started in [&changed, &deleted] {
        decide(&visitor, &started.user_code, "approve")
            .await
            .assert_redirect("/settings/devices");
    }
    let devices = app.devices(Some(account.id)).await.unwrap();
    let id_of = |name: &str| {
        devices
            .iter()
            .find(|d| d.name.as_str() == name)
            .unwrap()
            .id
            .to_string()
    };
    visitor.change_device_password(&id_of("Changed")).await;
    visitor
        .act(
            "/settings/devices",
            &format!("/settings/devices/{}/delete", id_of("Deleted")),
            &[],
        )
        .await;
    for started in [&changed, &deleted] {
        expect_error(
            poll(&app, &started.device_code).await,
            StatusCode::BAD_REQUEST,
            "access_denied",
        )
        .await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_expired_request_gets_expired_token(#[case] backend: Backend) {
    let clock = Clock::adjustable();
    let app = spawn_app_with(backend, |config| config.clock = clock.clone()).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Slow phone").await;
    let approved_late = start(&app, "Late collector").await;
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    decide(&visitor, &approved_late.user_code, "approve")
        .await
        .assert_redirect("/settings/devices");

    clock.advance(Duration::from_secs(9 * 60 + 50));
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    clock.advance(Duration::from_secs(10));
    for code in [&started.device_code, &approved_late.device_code] {
        expect_error(
            poll(&app, code).await,
            StatusCode::BAD_REQUEST,
            "expired_token",
        )
        .await;
    }
    let page = decide(&visitor, &started.user_code, "approve").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error("device-code").unwrap().contains("expired"));
    let account = app.account_by_email(MEMBER).await.unwrap();
    assert_eq!(app.devices(Some(account.id)).await.unwrap().len(), 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn polling_too_soon_gets_slow_down_and_a_longer_interval(#[case] backend: Backend) {
    let clock = Clock::adjustable();
    let app = spawn_app_with(backend, |config| config.clock = clock.clone()).await;
    let started = start(&app, "Eager app").await;
    let code = &started.device_code;
    expect_error(
        poll(&app, code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    let body = expect_error(poll(&app, code).await, StatusCode::BAD_REQUEST, "slow_down").await;
    assert_eq!(body["interval"], 10);
    clock.advance(Duration::from_secs(6));
    // Six seconds would have done before; now ten are needed.
    let body = expect_error(poll(&app, code).await, StatusCode::BAD_REQUEST, "slow_down").await;
    assert_eq!(body["interval"], 15);
    clock.advance(Duration::from_secs(15));
    expect_error(
        poll(&app, code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    clock.advance(Duration::from_secs(14));
    expect_error(poll(&app, code).await, StatusCode::BAD_REQUEST, "slow_down").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_user_code_may_be_typed_in_lower_case_without_the_dash(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Tablet").await;
    let typed = started.user_code.replace('-', "").to_lowercase();
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    let page = visitor.get("/device").await;
    assert!(page.body.contains("id=\"device-code\""), "{}", page.body);
    let page = request_page(&visitor, &typed).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.text_of("device-app-name").unwrap(), "Tablet");
    decide(&visitor, &typed, "approve")
        .await
        .assert_redirect("/settings/devices");
    assert_eq!(
        poll(&app, &started.device_code).await.status(),
        StatusCode::OK
    );

    // A code nobody was given is refused beside the field.
    let page = request_page(&visitor, "BCDF-GHJK").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error("device-code").is_some());
    let page = request_page(&visitor, "not a code").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_account_without_synchronisation_cannot_approve(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_account("reader@example.org", &[]).await;
    let started = start(&app, "Phone").await;
    let visitor = Visitor::signed_in(&app, "reader@example.org").await;
    let page = request_page(&visitor, &started.user_code).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page
        .text_of("device-refused")
        .unwrap()
        .contains("synchronisation"));
    assert!(!page.body.contains("approve-button"));
    // Posting the form anyway changes nothing.
    let csrf = visitor.get("/device").await.csrf();
    let page = visitor
        .post(
            "/device/approve",
            &[("csrf", &csrf), ("code", &started.user_code)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("synchronisation"), "{}", page.body);
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    assert!(app.devices(None).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_start_route_checks_its_fields_like_the_password_route(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let post = |body: Value| {
        app.http
            .post(app.url("/server/api/device/authorize"))
            .json(&body)
            .send()
    };
    expect_error(
        post(json!({"deviceType": "ios"})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    expect_error(
        post(json!({"deviceName": ""})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_device_name",
    )
    .await;
    expect_error(
        post(json!({"deviceName": 7})).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let unknown_type = start_request(&app, "x")
        .json(&json!({"deviceName": "x", "deviceType": "toaster"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_type.status(), StatusCode::OK);
    expect_error(
        poll(&app, "lkdc_nothing").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

/// Starts from `address` (through the trusted proxy); the status.
async fn start_from(app: &TestApp, address: &str) -> StatusCode {
    start_request(app, "x")
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap()
        .status()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn one_address_may_have_only_so_many_pending_requests(#[case] backend: Backend) {
    let clock = Clock::adjustable();
    let app = spawn_app_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.device_authorizations.per_address = 3;
        config.clock = clock.clone();
    })
    .await;
    for _ in 0..3 {
        assert_eq!(start_from(&app, "198.51.100.7").await, StatusCode::OK);
    }
    let refused = start_request(&app, "x")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(
        refused,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_pending_authorizations",
    )
    .await;
    assert_eq!(start_from(&app, "198.51.100.8").await, StatusCode::OK);
    // Expired requests no longer count.
    clock.advance(Duration::from_secs(601));
    assert_eq!(start_from(&app, "198.51.100.7").await, StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn requests_started_at_once_from_one_address_stay_within_the_limit(#[case] backend: Backend) {
    let adjust = |config: &mut latchkey::config::Config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        config.device_authorizations.per_address = 5;
    };
    let first = Arc::new(spawn_app_with(backend, adjust).await);
    let mut nodes = vec![first.clone()];
    if first.backend == Backend::Postgres {
        nodes.push(Arc::new(spawn_node(&first, adjust).await));
    }
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (app, barrier) = (nodes[i % nodes.len()].clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let request = start_request(&app, "x").header("x-forwarded-for", "203.0.113.9");
            barrier.wait().await;
            request.send().await.unwrap().status()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 5);
}

/// Two nodes on PostgreSQL, one on SQLite.
async fn nodes_for(backend: Backend) -> Vec<Arc<TestApp>> {
    let first = Arc::new(spawn_app(backend).await);
    let mut nodes = vec![first.clone()];
    if first.backend == Backend::Postgres {
        nodes.push(Arc::new(spawn_node(&first, |_| {}).await));
    }
    nodes
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn thirty_polls_at_once_after_approval_collect_one_token(#[case] backend: Backend) {
    let nodes = nodes_for(backend).await;
    nodes[0].create_member(MEMBER).await;
    let started = start(&nodes[0], "Raced").await;
    let visitor = Visitor::signed_in(&nodes[0], MEMBER).await;
    decide(&visitor, &started.user_code, "approve")
        .await
        .assert_redirect("/settings/devices");
    let barrier = Arc::new(Barrier::new(30));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let app = nodes[i % nodes.len()].clone();
        let (code, barrier) = (started.device_code.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let request = poll_request(&app, &code);
            barrier.wait().await;
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => tokens.push(body["token"].as_str().unwrap().to_owned()),
            StatusCode::BAD_REQUEST => assert_eq!(body["error"], "expired_token", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(tokens.len(), 1, "{tokens:?}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn twenty_approvals_at_once_create_one_device(#[case] backend: Backend) {
    let nodes = nodes_for(backend).await;
    let account = nodes[0].create_member(MEMBER).await;
    let started = start(&nodes[0], "Approved twice").await;
    let visitor = Visitor::signed_in(&nodes[0], MEMBER).await;
    let csrf = request_page(&visitor, &started.user_code).await.csrf();
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let browser = visitor.on(&nodes[i % nodes.len()]);
        let (csrf, code, barrier) = (csrf.clone(), started.user_code.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            browser
                .post("/device/approve", &[("csrf", &csrf), ("code", &code)])
                .await
                .status
        }));
    }
    let mut approved = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::SEE_OTHER => approved += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(approved, 1);
    assert_eq!(nodes[0].devices(Some(account.id)).await.unwrap().len(), 1);
    assert_eq!(
        poll(&nodes[0], &started.device_code).await.status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_code_or_token_is_logged_or_stored_readably(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let started = start(&app, "Quiet app").await;
    let visitor = Visitor::new(&app);
    // Through the sign-in page, whose address carries the code too.
    let path = format!("/device?code={}", started.user_code);
    let next = serde_urlencoded::to_string([("next", path.as_str())]).unwrap();
    visitor.get(&path).await;
    visitor
        .submit(
            &format!("/sign-in?{next}"),
            "/sign-in",
            &[("email", MEMBER), ("password", PASSWORD), ("next", &path)],
        )
        .await
        .assert_redirect(&path);
    decide(&visitor, &started.user_code, "approve")
        .await
        .assert_redirect("/settings/devices");
    let device: Value = poll(&app, &started.device_code).await.json().await.unwrap();
    let token = device["token"].as_str().unwrap().to_owned();

    let bare = started.user_code.replace('-', "");
    let secrets = [
        started.device_code.as_str(),
        &started.device_code[5..],
        started.user_code.as_str(),
        bare.as_str(),
        token.as_str(),
        &token[4..30],
    ];
    let logs = captured_logs();
    assert!(logs.contains("app sign-in collected"), "logs were captured");
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} is in the logs");
    }
    let database = app.stop().await;
    for (name, bytes) in database.contents().await {
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} is readable in {name}");
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_request_started_on_one_node_is_approved_and_collected_on_others(
    #[case] backend: Backend,
) {
    let nodes = nodes_for(backend).await;
    let last = nodes.last().unwrap();
    nodes[0].create_member(MEMBER).await;
    let started = start(&nodes[0], "Roaming").await;
    let visitor = Visitor::signed_in(last, MEMBER).await;
    decide(&visitor, &started.user_code, "approve")
        .await
        .assert_redirect("/settings/devices");
    assert_eq!(
        poll(last, &started.device_code).await.status(),
        StatusCode::OK
    );
}
