//! Several nodes on one PostgreSQL database: revocation reaches every node,
//! password guesses count across nodes, a lost change feed is noticed.

use std::time::{Duration, Instant};

use latchkey::domain::Permission;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;

use crate::helpers::{expect_error, spawn_app, spawn_node, Backend, TestApp};
use crate::writes::AutoCommit;

/// Polls `device`'s own resource on `node` until it is refused; returns how long that took.
async fn time_until_refused(
    node: &TestApp,
    device: &crate::helpers::DeviceCredentials,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let status = node.get_own_device(device).await.status();
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still accepted after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two nodes on one fresh database, with one member; `None` without PostgreSQL.
async fn two_nodes(backend: Backend, member: &str) -> Option<(TestApp, TestApp)> {
    if backend.available() != Backend::Postgres {
        eprintln!("SKIPPED: several nodes need PostgreSQL");
        return None;
    }
    let a = spawn_app(backend).await;
    let b = spawn_node(&a, |_| {}).await;
    a.create_member(member).await;
    Some((a, b))
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_one_node_is_refused_on_another_within_a_second(#[case] backend: Backend) {
    let Some((a, b)) = two_nodes(backend, "m@example.org").await else {
        return;
    };

    let mut latencies = Vec::new();
    // Delete, new password, permission revoked, account disabled: each made
    // on node A, each must reach node B's warm cache.
    for change in ["delete", "password", "permission", "disable"] {
        let device = a.create_device("m@example.org", change).await;
        let keeper = a.create_device("m@example.org", "keeper").await;
        assert_eq!(b.get_own_device(&device).await.status(), StatusCode::OK);
        match change {
            "delete" => {
                let deleted = a
                    .on_device(Method::DELETE, &device.id, &keeper)
                    .send()
                    .await
                    .unwrap();
                assert!(deleted.status().is_success());
            }
            "password" => {
                let renewed = a.change_password(&device.id, &keeper).send().await.unwrap();
                assert_eq!(renewed.status(), StatusCode::OK);
            }
            "permission" => {
                a.set_permission("m@example.org", Permission::Synchronisation, false)
                    .await
                    .unwrap();
            }
            _ => {
                a.set_enabled("m@example.org", false).await.unwrap();
            }
        }
        let started = Instant::now();
        let status = loop {
            let status = b.get_own_device(&device).await.status();
            if status != StatusCode::OK {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{change}: node B still accepts after 1 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        latencies.push((change, started.elapsed()));
        assert!(
            matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{change}: {status}"
        );
        // Undo, for the next round.
        a.set_permission("m@example.org", Permission::Synchronisation, true)
            .await
            .unwrap();
        a.set_enabled("m@example.org", true).await.unwrap();
    }
    eprintln!("revocation reached node B after {latencies:?}");
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_device_created_on_one_node_works_on_another_that_thought_it_unknown(
    #[case] backend: Backend,
) {
    let Some((a, b)) = two_nodes(backend, "m@example.org").await else {
        return;
    };
    let device = a.create_device("m@example.org", "phone").await;
    // B remembers an id as unknown; the id then comes to exist (as if
    // created at that moment) when the device is deleted and re-inserted.
    a.service
        .delete_device(&crate::helpers::OPERATOR, &device.id)
        .await
        .unwrap();
    assert_eq!(
        b.get_own_device(&device).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let owner = a.account_by_email("m@example.org").await.unwrap();
    let token = latchkey::credential::Token::parse(&device.token).unwrap();
    a.service
        .store()
        .insert_device(&latchkey::store::NewDevice {
            id: latchkey::credential::DeviceId::parse(&device.id).unwrap(),
            account_id: owner.id,
            name: latchkey::domain::DeviceName::parse("phone").unwrap(),
            device_type: "unknown".into(),
            token_digest: token.digest(),
            created_at: latchkey::domain::Timestamp::now(),
            limits: Default::default(),
        })
        .await
        .unwrap();
    let started = Instant::now();
    while b.get_own_device(&device).await.status() != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node B still thinks the device is unknown"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn password_guesses_count_across_nodes(#[case] backend: Backend) {
    let Some((a, b)) = two_nodes(backend, "victim@example.org").await else {
        return;
    };
    let guess = json!({"email": "victim@example.org", "password": "guess", "deviceName": "x"});
    // One network may fail 10 times at one account, on whichever node.
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        expect_error(
            node.post_device(&guess).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    for node in [&a, &b] {
        expect_error(
            node.post_device(&guess).await,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        )
        .await;
    }
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn last_use_from_two_nodes_keeps_the_newest(#[case] backend: Backend) {
    let Some((a, b)) = two_nodes(backend, "m@example.org").await else {
        return;
    };
    let device = a.create_device("m@example.org", "roaming").await;
    assert_eq!(a.get_own_device(&device).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let newest = b
        .get_own_device(&device)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap()["lastUsedAt"]
        .clone();
    // B flushes first, then A with its older use: the newer must stay.
    b.service.flush_last_used().await.unwrap();
    a.service.flush_last_used().await.unwrap();
    let id = latchkey::credential::DeviceId::parse(&device.id).unwrap();
    let stored = a.service.store().device(&id).await.unwrap().unwrap();
    let stored_at = stored.last_used.expect("written").at.to_rfc3339();
    assert_eq!(json!(stored_at), newest);
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_change_feed_is_noticed_and_revocations_still_arrive(#[case] backend: Backend) {
    let Some((a, b)) = two_nodes(backend, "m@example.org").await else {
        return;
    };
    let device = a.create_device("m@example.org", "d").await;
    let keeper = a.create_device("m@example.org", "keeper").await;
    assert_eq!(b.get_own_device(&device).await.status(), StatusCode::OK);

    // Cut every node's LISTEN connection, as a network blip or a proxy would.
    let admin = sqlx::PgPool::connect(&a.database_url).await.unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(cut >= 2, "found {cut} listeners");
    admin.close().await;

    let deleted = a
        .on_device(Method::DELETE, &device.id, &keeper)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    // Missed while reconnecting, the deletion must still take effect once
    // the feed is back, since a restored feed drops the whole cache.
    let took = time_until_refused(&b, &device, Duration::from_secs(3)).await;
    eprintln!("refused {took:?} after the feed was cut");
    // And the feed works again afterwards.
    assert_eq!(b.get_own_device(&keeper).await.status(), StatusCode::OK);
    let renewed = a.change_password(&keeper.id, &keeper).send().await.unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
    let took = time_until_refused(&b, &keeper, Duration::from_secs(1)).await;
    eprintln!("after reconnecting, a revocation took {took:?}");
}
