//! Check-then-write operations fired at once: exactly one may win.

use std::sync::Arc;

use reqwest::StatusCode;
use rstest::rstest;
use tokio::sync::Barrier;

use crate::helpers::{spawn_app, spawn_node, Backend, TestApp};

const CLIENTS: usize = 20;

/// Sends "Change password" on `device` with its own, same old token from
/// `CLIENTS` clients at once; returns how many got a new token.
async fn regenerate_at_once(app: &Arc<TestApp>, warm: bool) -> (usize, usize) {
    regenerate_on_nodes_at_once(std::slice::from_ref(app), warm).await
}

/// The same, with the clients spread over `nodes` in turn.
async fn regenerate_on_nodes_at_once(nodes: &[Arc<TestApp>], warm: bool) -> (usize, usize) {
    nodes[0].create_member("m@example.org").await;
    let device = nodes[0].create_device("m@example.org", "racer").await;
    if warm {
        for node in nodes {
            assert_eq!(node.get_own_device(&device).await.status(), StatusCode::OK);
        }
    }
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let app = nodes[i % nodes.len()].clone();
        let (device, barrier) = (device.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let request = app.change_password(&device.id, &device);
            barrier.wait().await;
            request.send().await.unwrap().status()
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::UNAUTHORIZED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (ok, refused)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn parallel_password_changes_with_one_old_token_give_one_new_token_cold(
    #[case] backend: Backend,
) {
    let app = Arc::new(spawn_app(backend).await);
    assert_eq!(regenerate_at_once(&app, false).await, (1, CLIENTS - 1));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn parallel_password_changes_with_one_old_token_give_one_new_token_warm(
    #[case] backend: Backend,
) {
    let app = Arc::new(spawn_app(backend).await);
    assert_eq!(regenerate_at_once(&app, true).await, (1, CLIENTS - 1));
}

#[rstest]
#[case::postgres_cold(Backend::Postgres, false)]
#[case::postgres_warm(Backend::Postgres, true)]
#[tokio::test(flavor = "multi_thread")]
async fn parallel_password_changes_split_over_two_nodes_give_one_new_token(
    #[case] backend: Backend,
    #[case] warm: bool,
) {
    let first = Arc::new(spawn_app(backend).await);
    if first.backend != Backend::Postgres {
        return; // skipped loudly by the helpers (or failed, in strict mode)
    }
    let second = Arc::new(spawn_node(&first, |_| {}).await);
    assert_eq!(
        regenerate_on_nodes_at_once(&[first, second], warm).await,
        (1, CLIENTS - 1)
    );
}
