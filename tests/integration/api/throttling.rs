//! Password guessing on `POST /server/api/device` and the sign-in page is
//! slowed per account and client network, per network, and capped per
//! account across networks; none of it lets an attacker keep the owner out.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use std::sync::Arc;

use latchkey::config::Config;

use crate::helpers::{
    expect_error, spawn_app, spawn_app_with, spawn_node, Backend, TestApp, OPERATOR, PASSWORD,
};
use crate::visitor::Visitor;
use latchkey::service::throttle::{Rate, ThrottleConfig};

fn strict(account_burst: u32, address_burst: u32) -> ThrottleConfig {
    ThrottleConfig {
        per_account_and_network: Rate {
            burst: account_burst,
            refill_every: Duration::from_secs(60),
        },
        per_network: Rate {
            burst: address_burst,
            refill_every: Duration::from_secs(60),
        },
        per_trusted_browser: Rate {
            burst: 3,
            refill_every: Duration::from_secs(60),
        },
        ..ThrottleConfig::default()
    }
}

/// Behind a proxy on loopback, so each test client can come from its own address.
fn behind_proxy(throttle: ThrottleConfig) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.throttle = throttle;
    }
}

async fn post_device_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.http
        .post(app.url("/server/api/device"))
        .header("X-Forwarded-For", address)
        .json(&json!({"email": email, "password": password, "deviceName": "x"}))
        .send()
        .await
        .unwrap()
}

const VICTIM: &str = "victim@example.org";
const ATTACKER: &str = "192.0.2.66";

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_attacker_elsewhere_cannot_lock_the_owner_out(#[case] backend: Backend) {
    let app = spawn_app_with(backend, behind_proxy(strict(3, 100))).await;
    app.create_member(VICTIM).await;
    for _ in 0..3 {
        let response = post_device_from(&app, ATTACKER, VICTIM, "guess").await;
        expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    // The attacker is slowed down, and told so without a verdict on the password.
    let response = post_device_from(&app, ATTACKER, VICTIM, PASSWORD).await;
    let body = expect_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("not checked") && !message.contains("wrong"),
        "{message}"
    );
    // The owner, from their own network, is not: over the API and in the browser.
    let response = post_device_from(&app, "198.51.100.7", VICTIM, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let owner = Visitor::from_address(&app, "198.51.100.7");
    owner
        .sign_in_as(VICTIM, PASSWORD)
        .await
        .assert_redirect("/settings/profile");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_browser_that_signed_in_before_is_judged_by_its_own_budget(#[case] backend: Backend) {
    // The attacker shares the owner's network (one NAT, one café).
    let app = spawn_app_with(backend, behind_proxy(strict(3, 5))).await;
    app.create_member(VICTIM).await;
    let owner = Visitor::from_address(&app, ATTACKER);
    owner
        .sign_in_as(VICTIM, PASSWORD)
        .await
        .assert_redirect("/settings/profile");
    owner.submit("/settings/profile", "/sign-out", &[]).await;
    let attacker = Visitor::from_address(&app, ATTACKER);
    for _ in 0..3 {
        assert_eq!(
            attacker.sign_in_as(VICTIM, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attacker.sign_in_as(VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A new browser on that network waits too; the owner's own one does not.
    let stranger = Visitor::from_address(&app, ATTACKER);
    assert_eq!(
        stranger.sign_in_as(VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    owner
        .sign_in_as(VICTIM, PASSWORD)
        .await
        .assert_redirect("/settings/profile");
    owner.submit("/settings/profile", "/sign-out", &[]).await;
    // Its own budget is limited as well: its typos count against it alone.
    for _ in 0..3 {
        assert_eq!(
            owner.sign_in_as(VICTIM, "typo").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        owner.sign_in_as(VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A cookie trusted for another account counts for nothing here.
    app.create_member("other@example.org").await;
    let other = Visitor::from_address(&app, ATTACKER);
    other
        .sign_in_as("other@example.org", PASSWORD)
        .await
        .assert_redirect("/settings/profile");
    other.submit("/settings/profile", "/sign-out", &[]).await;
    assert_eq!(
        other.sign_in_as(VICTIM, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn right_passwords_sent_in_parallel_all_get_through(#[case] backend: Backend) {
    // The defaults, as a provisioning script would meet them.
    let app = spawn_app(backend).await;
    app.create_member(VICTIM).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..50 {
        let request = app.http.post(app.url("/server/api/device")).json(
            &json!({"email": VICTIM, "password": PASSWORD, "deviceName": format!("box {i}")}),
        );
        let barrier = barrier.clone();
        attempts.spawn(async move {
            barrier.wait().await;
            request.send().await.unwrap().status()
        });
    }
    let statuses = attempts.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    let id = app.account_by_email(VICTIM).await.unwrap().id;
    assert_eq!(app.devices(Some(id)).await.unwrap().len(), 50);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn distributed_guessing_stops_at_the_cap_until_cleared(#[case] backend: Backend) {
    let throttle = ThrottleConfig {
        consecutive_failures: 6,
        ..strict(3, 100)
    };
    let a = spawn_app_with(backend, behind_proxy(throttle)).await;
    // Guesses spread over two nodes count together.
    let b = spawn_node(&a, behind_proxy(throttle)).await;
    a.create_member(VICTIM).await;
    let owner = Visitor::from_address(&a, "198.51.100.7");
    owner
        .sign_in_as(VICTIM, PASSWORD)
        .await
        .assert_redirect("/settings/profile");
    owner.submit("/settings/profile", "/sign-out", &[]).await;
    let attack = |round: u32| {
        let (a, b) = (&a, &b);
        async move {
            for i in 0..6 {
                let node = if i % 2 == 0 { a } else { b };
                let address = format!("203.0.113.{}", round * 10 + i);
                let response = post_device_from(node, &address, VICTIM, "guess").await;
                expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
            }
        }
    };
    attack(0).await;
    // Now every untrusted client is stopped, the right password included.
    for node in [&a, &b] {
        let response = post_device_from(node, "198.51.100.200", VICTIM, PASSWORD).await;
        let body = expect_error(response, StatusCode::TOO_MANY_REQUESTS, "sign_in_stopped").await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("not checked") && !message.contains("wrong"),
            "{message}"
        );
        let stranger = Visitor::from_address(node, "198.51.100.201");
        assert_eq!(
            stranger.sign_in_as(VICTIM, PASSWORD).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let shown = app_failed_sign_ins(&a).await;
    assert_eq!(shown, (6, 6));
    // The owner's browser still signs in, and that clears the stop.
    owner
        .on(&b)
        .sign_in_as(VICTIM, PASSWORD)
        .await
        .assert_redirect("/settings/profile");
    let response = post_device_from(&a, "198.51.100.200", VICTIM, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Once more; this time an administrator clears it.
    attack(1).await;
    let response = post_device_from(&b, "198.51.100.200", VICTIM, PASSWORD).await;
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "sign_in_stopped").await;
    let id = a.account_by_email(VICTIM).await.unwrap().id;
    a.service
        .clear_failed_sign_ins(&OPERATOR, id)
        .await
        .unwrap();
    let response = post_device_from(&b, "198.51.100.200", VICTIM, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn app_failed_sign_ins(app: &TestApp) -> (u32, u32) {
    let id = app.account_by_email(VICTIM).await.unwrap().id;
    app.service.failed_sign_ins(&OPERATOR, id).await.unwrap()
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

/// Six failures in a row from six networks: the cap of these tests.
async fn stop_with_distributed_guesses(app: &TestApp) {
    for i in 0..6 {
        let response = post_device_from(app, &format!("203.0.113.{i}"), VICTIM, "guess").await;
        expect_error(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let response = post_device_from(app, "198.51.100.200", VICTIM, PASSWORD).await;
    expect_error(response, StatusCode::TOO_MANY_REQUESTS, "sign_in_stopped").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_clears_the_stop_on_the_account_page(#[case] backend: Backend) {
    let throttle = ThrottleConfig {
        consecutive_failures: 6,
        ..strict(3, 100)
    };
    let app = spawn_app_with(backend, behind_proxy(throttle)).await;
    let victim = app.create_member(VICTIM).await;
    let (admin, _) = Visitor::admin(&app).await;
    let page = format!("/admin/accounts/{}", victim.id.0);
    let before = admin.get(&page).await;
    assert!(before
        .body
        .contains("none since the last successful sign-in"));
    assert!(!before.body.contains("clear-failed-sign-ins"));
    stop_with_distributed_guesses(&app).await;
    let stopped = admin.get(&page).await;
    assert!(
        stopped.body.contains("6 in a row: stopped"),
        "{}",
        stopped.body
    );
    let cleared = admin
        .act(&page, &format!("{page}/failed-sign-ins/clear"), &[])
        .await;
    assert!(
        cleared.body.contains("Failed sign-in attempts cleared"),
        "{}",
        cleared.body
    );
    let response = post_device_from(&app, "198.51.100.200", VICTIM, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Only administrators may.
    let member = Visitor::signed_in(&app, VICTIM).await;
    let refused = member
        .submit(
            "/settings/profile",
            &format!("{page}/failed-sign-ins/clear"),
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_cli_clears_the_stop(#[case] backend: Backend) {
    let throttle = ThrottleConfig {
        consecutive_failures: 6,
        ..strict(3, 100)
    };
    let app = spawn_app_with(backend, behind_proxy(throttle)).await;
    app.create_member(VICTIM).await;
    stop_with_distributed_guesses(&app).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["user", "unlock", "--email", VICTIM])
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("cleared (6 in a row before)"), "{said}");
    let response = post_device_from(&app, "198.51.100.200", VICTIM, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
