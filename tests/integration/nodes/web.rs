//! One browser, several nodes behind a load balancer that does not keep it
//! on one: every request may reach another node.

use std::time::Duration;

use latchkey::service::throttle::{Rate, ThrottleConfig};
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, spawn_app_with, spawn_node, Backend, PASSWORD};
use crate::visitor::Visitor;

fn postgres(backend: Backend) -> bool {
    if backend.available() != Backend::Postgres {
        eprintln!("SKIPPED: several nodes need PostgreSQL");
        return false;
    }
    true
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_session_and_its_shown_once_password_work_on_every_node(#[case] backend: Backend) {
    if !postgres(backend) {
        return;
    }
    let a = spawn_app(backend).await;
    let b = spawn_node(&a, |_| {}).await;
    a.create_member("member@example.org").await;
    let on_a = Visitor::signed_in(&a, "member@example.org").await;
    let on_b = on_a.on(&b);
    assert!(on_b.is_signed_in().await);

    // Save on one node, the redirect's page from the other.
    on_a.submit(
        "/settings/devices",
        "/settings/devices",
        &[("name", "script")],
    )
    .await
    .assert_redirect("/settings/devices");
    let page = on_b.get("/settings/devices").await;
    let id = page.text_of("shown-device-id").unwrap();
    let token = page.text_of("shown-password").unwrap();
    assert!(on_a
        .get("/settings/devices")
        .await
        .text_of("shown-password")
        .is_none());
    let device = crate::helpers::DeviceCredentials { id, token };
    assert_eq!(a.get_own_device(&device).await.status(), StatusCode::OK);

    // Signing out on one node ends the session on all.
    on_b.submit("/settings/profile", "/sign-out", &[]).await;
    assert!(!on_a.is_signed_in().await);
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_guesses_count_across_nodes(#[case] backend: Backend) {
    if !postgres(backend) {
        return;
    }
    let strict = ThrottleConfig {
        per_account_and_network: Rate {
            burst: 4,
            refill_every: Duration::from_secs(60),
        },
        ..ThrottleConfig::default()
    };
    let a = spawn_app_with(backend, |c| c.throttle = strict).await;
    let b = spawn_node(&a, |c| c.throttle = strict).await;
    a.create_member("victim@example.org").await;
    let on_a = Visitor::new(&a);
    let on_b = on_a.on(&b);
    for visitor in [&on_a, &on_b, &on_a, &on_b] {
        let page = visitor.sign_in_as("victim@example.org", "guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    for visitor in [&on_a, &on_b] {
        let page = visitor.sign_in_as("victim@example.org", PASSWORD).await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    }
}
