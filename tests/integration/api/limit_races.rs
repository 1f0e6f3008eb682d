//! Limit writes fired at once: replacing limits, "Change password" with an
//! overlap, "end now", and a password change racing a shortened expiry.
//! Each ends in a state one request order could have made, never a mix.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};
use tokio::sync::Barrier;

use crate::helpers::{spawn_app_with, spawn_node, Backend, DeviceCredentials, TestApp, PASSWORD};
use latchkey::domain::{Clock, Device, Permission, Timestamp};

const CLIENTS: usize = 24;
const DAY_MILLIS: i64 = 86_400_000;
const BOSS: &str = "boss@example.org";

/// `count` nodes on one database sharing one manual clock; `None` when
/// several nodes are asked for and there is no PostgreSQL.
async fn nodes(backend: Backend, count: usize) -> Option<(Vec<Arc<TestApp>>, Clock)> {
    // Whole seconds, so that expiries survive their RFC 3339 round trip.
    let start = Timestamp::from_millis(Timestamp::now().millis() / 1000 * 1000);
    let clock = Clock::manual(start);
    let c = clock.clone();
    let first = spawn_app_with(backend, move |config| config.clock = c).await;
    if count > 1 && first.backend != Backend::Postgres {
        return None; // skipped loudly by the helpers (or failed, in strict mode)
    }
    let mut nodes = vec![Arc::new(first)];
    for _ in 1..count {
        let c = clock.clone();
        let node = spawn_node(&nodes[0], move |config| config.clock = c).await;
        nodes.push(Arc::new(node));
    }
    nodes[0]
        .create_account(BOSS, &[Permission::Synchronisation, Permission::Admin])
        .await;
    Some((nodes, clock))
}

/// A device of the administrator's, with `extra` fields in its creation body.
async fn boss_device(app: &TestApp, extra: Value) -> DeviceCredentials {
    let mut body = json!({"email": BOSS, "password": PASSWORD, "deviceName": "racer"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app.post_device(&body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    DeviceCredentials {
        id: body["_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

async fn stored(app: &TestApp, id: &str) -> Device {
    let boss = app.account_by_email(BOSS).await.unwrap();
    app.devices(Some(boss.id))
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.id.as_str() == id)
        .expect("device still there")
}

fn at(millis: i64) -> String {
    Timestamp::from_millis(millis).to_rfc3339()
}

fn limits_request(app: &TestApp, target: &str, by: &DeviceCredentials) -> reqwest::RequestBuilder {
    app.as_device(
        Method::PUT,
        &format!("/server/api/device/{target}/limits"),
        by,
    )
}

async fn warm(nodes: &[Arc<TestApp>], devices: &[&DeviceCredentials]) {
    for node in nodes {
        for device in devices {
            assert_eq!(node.get_own_device(device).await.status(), StatusCode::OK);
        }
    }
}

/// The limit fields of a device resource.
fn limit_fields(resource: &Value) -> Value {
    json!({
        "scope": resource["scope"],
        "expiresAt": resource["expiresAt"],
        "idleExpiryDays": resource["idleExpiryDays"],
        "allowedNetworks": resource["allowedNetworks"],
        "deniedNetworks": resource["deniedNetworks"],
    })
}

#[rstest]
#[case::sqlite(Backend::Sqlite, 1)]
#[case::postgres(Backend::Postgres, 1)]
#[case::postgres_two_nodes(Backend::Postgres, 2)]
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_limit_replacements_leave_exactly_one_whole_body(
    #[case] backend: Backend,
    #[case] count: usize,
) {
    let Some((nodes, clock)) = nodes(backend, count).await else {
        return;
    };
    let admin = boss_device(&nodes[0], json!({"scope": "admin"})).await;
    let target = boss_device(&nodes[0], json!({})).await;
    warm(&nodes, &[&admin, &target]).await;
    let now = clock.now().millis();
    let bodies: Vec<Value> = (0..CLIENTS)
        .map(|i| {
            let scope = ["read", "full", "admin"][i % 3];
            json!({
                "scope": scope,
                "expiresAt": at(now + (i as i64 + 1) * DAY_MILLIS),
                "idleExpiryDays": i + 1,
                "allowedNetworks": [format!("10.{i}.0.0/16")],
                "deniedNetworks": [format!("10.{i}.1.0/24")],
            })
        })
        .collect();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let app = nodes[i % nodes.len()].clone();
        let request = limits_request(&app, &target.id, &admin).json(body);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for (task, body) in tasks.into_iter().zip(&bodies) {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        // Each answer shows exactly what its own request set.
        assert_eq!(&limit_fields(&answer), body, "{answer}");
        answers.push(answer);
    }
    let last = stored(&nodes[0], &target.id).await;
    for node in &nodes {
        let shown: Value = node
            .on_device(Method::GET, &target.id, &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let fields = limit_fields(&shown);
        assert_eq!(
            bodies.iter().filter(|b| **b == fields).count(),
            1,
            "the stored limits are no single request's body: {fields}"
        );
        assert_eq!(
            shown["expiresAt"],
            json!(last.limits.expires_at.map(|t| t.to_rfc3339()))
        );
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite, 1)]
#[case::postgres(Backend::Postgres, 1)]
#[case::postgres_two_nodes(Backend::Postgres, 2)]
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_changes_with_an_overlap_give_one_new_token_and_keep_the_old_for_the_grace(
    #[case] backend: Backend,
    #[case] count: usize,
) {
    let Some((nodes, clock)) = nodes(backend, count).await else {
        return;
    };
    let old = boss_device(&nodes[0], json!({})).await;
    warm(&nodes, &[&old]).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let app = nodes[i % nodes.len()].clone();
        let request = app
            .change_password(&old.id, &old)
            .json(&json!({"graceSeconds": 600 + i}));
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::OK, body) => winners.push(body),
            (StatusCode::UNAUTHORIZED, body) => {
                assert_eq!(body["error"], "invalid_device_credentials", "{body}")
            }
            (other, body) => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let new = DeviceCredentials {
        id: old.id.clone(),
        token: winners[0]["token"].as_str().unwrap().to_owned(),
    };
    let until =
        Timestamp::parse_rfc3339(winners[0]["previousPasswordValidUntil"].as_str().unwrap())
            .unwrap();
    let stored = stored(&nodes[0], &old.id).await;
    assert_eq!(stored.previous_token_until, Some(until));
    let grace = until.millis() - clock.now().millis();
    assert!((600_000..600_000 + CLIENTS as i64 * 1000).contains(&grace));
    for node in &nodes {
        assert_eq!(node.get_own_device(&new).await.status(), StatusCode::OK);
        assert_eq!(node.get_own_device(&old).await.status(), StatusCode::OK);
    }
    clock.advance(Duration::from_millis(grace as u64 - 1000));
    for node in &nodes {
        assert_eq!(node.get_own_device(&old).await.status(), StatusCode::OK);
    }
    clock.advance(Duration::from_secs(1));
    for node in &nodes {
        assert_eq!(
            node.get_own_device(&old).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(node.get_own_device(&new).await.status(), StatusCode::OK);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite, 1)]
#[case::postgres(Backend::Postgres, 1)]
#[case::postgres_two_nodes(Backend::Postgres, 2)]
#[tokio::test(flavor = "multi_thread")]
async fn end_now_racing_a_change_of_password_ends_in_one_order_or_the_other(
    #[case] backend: Backend,
    #[case] count: usize,
) {
    let Some((nodes, _clock)) = nodes(backend, count).await else {
        return;
    };
    let admin = boss_device(&nodes[0], json!({"scope": "admin"})).await;
    let first = boss_device(&nodes[0], json!({})).await;
    // One change with an overlap already: `first` is the live old token.
    let body: Value = nodes[0]
        .change_password(&first.id, &first)
        .json(&json!({"graceSeconds": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = DeviceCredentials {
        id: first.id.clone(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    warm(&nodes, &[&admin, &second, &first]).await;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let app = nodes[i % nodes.len()].clone();
        let request = if i == CLIENTS / 2 {
            app.change_password(&second.id, &second)
                .json(&json!({"graceSeconds": 1800}))
        } else {
            app.as_device(
                Method::DELETE,
                &format!("/server/api/device/{}/previous-password", first.id),
                &admin,
            )
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }));
    }
    let mut change = None;
    let mut ends = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        if i == CLIENTS / 2 {
            change = Some(body);
        } else {
            ends.push(body);
        }
    }
    let change = change.unwrap();
    let third = DeviceCredentials {
        id: first.id.clone(),
        token: change["token"].as_str().unwrap().to_owned(),
    };
    let until = change["previousPasswordValidUntil"].clone();
    assert!(until.is_string(), "{change}");
    let stored = stored(&nodes[0], &first.id).await;
    let second_live = stored.previous_token_until.is_some();
    if second_live {
        assert_eq!(
            json!(stored.previous_token_until.unwrap().to_rfc3339()),
            until
        );
    }
    for end in &ends {
        // Each answer shows the device as it stood after that "end now":
        // ended, or overlapping again with the change that came after it.
        let shown = &end["previousPasswordValidUntil"];
        assert!(shown.is_null() || *shown == until, "{end}");
    }
    for node in &nodes {
        // The token two changes back never comes back.
        assert_eq!(
            node.get_own_device(&first).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(node.get_own_device(&third).await.status(), StatusCode::OK);
        let expected = if second_live {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(node.get_own_device(&second).await.status(), expected);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite, 1)]
#[case::postgres(Backend::Postgres, 1)]
#[case::postgres_two_nodes(Backend::Postgres, 2)]
#[tokio::test(flavor = "multi_thread")]
async fn a_change_of_password_never_undoes_a_shortened_expiry(
    #[case] backend: Backend,
    #[case] count: usize,
) {
    let Some((nodes, clock)) = nodes(backend, count).await else {
        return;
    };
    let now = clock.now().millis();
    let (far, soon) = (now + 30 * DAY_MILLIS, now + DAY_MILLIS);
    let admin = boss_device(&nodes[0], json!({"scope": "admin"})).await;
    // Full devices: none may move its own expiry later.
    let mut targets = Vec::new();
    for _ in 0..CLIENTS / 2 {
        targets.push(boss_device(&nodes[0], json!({"expiresAt": at(far)})).await);
    }
    let mut everyone: Vec<&DeviceCredentials> = targets.iter().collect();
    everyone.push(&admin);
    warm(&nodes, &everyone).await;
    let barrier = Arc::new(Barrier::new(2 * targets.len()));
    let mut tasks = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        // The shortening and the change on different nodes when there are two.
        let app = nodes[i % nodes.len()].clone();
        let shorten =
            limits_request(&app, &target.id, &admin).json(&json!({"expiresAt": at(soon)}));
        let app = nodes[(i + 1) % nodes.len()].clone();
        let change = app.change_password(&target.id, target);
        for request in [shorten, change] {
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let response = request.send().await.unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            }));
        }
    }
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for target in &targets {
        let stored = stored(&nodes[0], &target.id).await;
        assert_eq!(
            stored.limits.expires_at.map(Timestamp::millis),
            Some(soon),
            "device {}: the change of password brought back the longer expiry",
            target.id
        );
    }
}
