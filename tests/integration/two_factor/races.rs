//! One code, many requests at once: a TOTP code (or a recovery code) sent
//! by 30 browsers in parallel, spread over two nodes on PostgreSQL, signs
//! in exactly one of them.

use std::sync::Arc;
use std::time::Duration;

use latchkey::domain::Clock;
use latchkey::service::throttle::{Rate, ThrottleConfig};
use reqwest::StatusCode;
use rstest::rstest;
use tokio::sync::Barrier;

use super::totp::{enrol, password_step};
use crate::helpers::{spawn_app_with, spawn_node, Backend, TestApp, PASSWORD};
use crate::visitor::Visitor;

const MEMBER: &str = "member@example.org";
const CLIENTS: usize = 30;

/// Two nodes on PostgreSQL (one on SQLite), sharing a clock; the code
/// budget is large, so the only thing that stops a copy is the replay rule.
async fn nodes(backend: Backend) -> (Vec<TestApp>, Clock) {
    let clock = Clock::default();
    let throttle = ThrottleConfig {
        per_account_second_factor: Rate {
            burst: 1000,
            refill_every: Duration::from_secs(1),
        },
        ..ThrottleConfig::default()
    };
    let shared = clock.clone();
    let first = spawn_app_with(backend, move |config| {
        config.clock = shared;
        config.throttle = throttle;
    })
    .await;
    let mut apps = vec![];
    if first.backend == Backend::Postgres {
        let shared = clock.clone();
        let second = spawn_node(&first, move |config| {
            config.clock = shared;
            config.throttle = throttle;
        })
        .await;
        apps.push(first);
        apps.push(second);
    } else {
        apps.push(first);
    }
    (apps, clock)
}

/// Has 30 browsers pass the password step, then send `code` all at once;
/// returns how many were signed in.
async fn race(apps: &[TestApp], code: &str) -> usize {
    let mut browsers = Vec::new();
    for i in 0..CLIENTS {
        let browser = Visitor::new(&apps[i % apps.len()]);
        password_step(&browser, MEMBER, PASSWORD).await;
        let csrf = browser.get("/sign-in/code").await.csrf();
        browsers.push((browser, csrf));
    }
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = browsers
        .into_iter()
        .map(|(browser, csrf)| {
            let barrier = barrier.clone();
            let code = code.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                let page = browser
                    .post("/sign-in/code", &[("csrf", &csrf), ("code", &code)])
                    .await;
                match page.status {
                    StatusCode::SEE_OTHER => {
                        assert_eq!(page.location(), Some("/settings/profile"));
                        1
                    }
                    StatusCode::UNAUTHORIZED => 0,
                    other => panic!("unexpected {other}: {}", page.body),
                }
            })
        })
        .collect();
    let mut signed_in = 0;
    for task in tasks {
        signed_in += task.await.unwrap();
    }
    signed_in
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_sent_thirty_times_at_once_signs_in_once(#[case] backend: Backend) {
    let (apps, clock) = nodes(backend).await;
    apps[0].create_member(MEMBER).await;
    let me = Visitor::signed_in(&apps[0], MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    assert_eq!(race(&apps, &enrolled.code(&clock)).await, 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_recovery_code_sent_thirty_times_at_once_signs_in_once(#[case] backend: Backend) {
    let (apps, clock) = nodes(backend).await;
    apps[0].create_member(MEMBER).await;
    let me = Visitor::signed_in(&apps[0], MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    assert_eq!(race(&apps, &enrolled.recovery_codes[0]).await, 1);
    let left = me.get("/settings/security").await;
    assert!(left.body.contains("9 recovery codes are left."));
}
