//! Administrators acting on each other at the same moment, through the web
//! interface as people would: whatever the order, one enabled administrator
//! is left. On PostgreSQL the browsers are split over two nodes.

use std::sync::Arc;

use reqwest::StatusCode;
use rstest::rstest;
use tokio::sync::Barrier;

use crate::helpers::{spawn_app, spawn_node, Backend, TestApp};
use crate::visitor::Visitor;
use latchkey::domain::{rules, Permission};

const ADMINS: usize = 20;

/// One node per backend's worth of servers: two on PostgreSQL, where
/// several nodes share one database, one on SQLite.
async fn nodes(backend: Backend) -> Vec<TestApp> {
    let first = spawn_app(backend).await;
    let mut nodes = Vec::new();
    if first.backend == Backend::Postgres {
        nodes.push(spawn_node(&first, |_| {}).await);
    }
    nodes.insert(0, first);
    nodes
}

/// `ADMINS` administrators, each signed in on one of the nodes, with the
/// account page they will act on and its CSRF token already in hand.
async fn signed_in_admins(nodes: &[TestApp]) -> Vec<(Visitor, i64)> {
    let app = &nodes[0];
    let mut admins = Vec::new();
    for i in 0..ADMINS {
        let email = format!("admin{i}@example.org");
        let account = app.create_account(&email, &[Permission::Admin]).await;
        let visitor = Visitor::signed_in(app, &email).await;
        admins.push((visitor.on(&nodes[i % nodes.len()]), account.id.0));
    }
    admins
}

async fn enabled_administrators(app: &TestApp) -> usize {
    app.accounts()
        .await
        .unwrap()
        .iter()
        .filter(|a| rules::is_administrator(a).is_ok())
        .count()
}

/// Every administrator posts one form to `action_of(own id, index)` at once.
async fn all_at_once(
    admins: Vec<(Visitor, i64)>,
    ids: Arc<Vec<i64>>,
    form: impl Fn(usize, &[i64]) -> (String, String, Vec<(&'static str, String)>)
        + Send
        + Sync
        + 'static,
) -> Vec<(StatusCode, Option<String>)> {
    let barrier = Arc::new(Barrier::new(admins.len()));
    let form = Arc::new(form);
    let mut tasks = Vec::new();
    for (i, (visitor, _)) in admins.into_iter().enumerate() {
        let (barrier, form, ids) = (barrier.clone(), form.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let (page, action, fields) = form(i, &ids);
            let csrf = visitor.get(&page).await.csrf();
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(fields.iter().map(|(name, value)| (*name, value.as_str())));
            barrier.wait().await;
            let answer = visitor.post(&action, &all).await;
            (answer.status, answer.location().map(str::to_owned))
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
    let admins = signed_in_admins(&nodes).await;
    let ids = Arc::new(admins.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    let answers = all_at_once(admins, ids, |i, ids| {
        let page = format!("/admin/accounts/{}", ids[i]);
        let action = format!("{page}/permissions");
        (
            page,
            action,
            vec![("permission", "admin".into()), ("granted", "false".into())],
        )
    })
    .await;

    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == StatusCode::SEE_OTHER),
        "{answers:?}"
    );
    let gave_up = answers
        .iter()
        .filter(|(_, to)| to.as_deref() == Some("/settings/profile"))
        .count();
    // Exactly one was told it is the only administrator, and stays one.
    assert_eq!(gave_up, ADMINS - 1, "{answers:?}");
    for node in &nodes {
        assert_eq!(enabled_administrators(node).await, 1);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn administrators_all_disabling_each_other_at_once_leave_one(#[case] backend: Backend) {
    let nodes = nodes(backend).await;
    let admins = signed_in_admins(&nodes).await;
    let ids = Arc::new(admins.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    // A ring: each disables the next one.
    let answers = all_at_once(admins, ids, |i, ids| {
        let page = format!("/admin/accounts/{}", ids[(i + 1) % ids.len()]);
        let action = format!("{page}/enabled");
        (page, action, vec![("enabled", "false".into())])
    })
    .await;

    // Every answer is a redirect: back to the page (done, or refused with
    // the reason), or to sign-in for someone disabled a moment earlier.
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == StatusCode::SEE_OTHER),
        "{answers:?}"
    );
    for node in &nodes {
        assert!(enabled_administrators(node).await >= 1, "{answers:?}");
    }
    // Whoever is left can still administer, on every node.
    let left = nodes[0]
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| rules::is_administrator(a).is_ok())
        .unwrap();
    for node in &nodes {
        let visitor = Visitor::signed_in(node, left.email.as_str()).await;
        assert_eq!(visitor.get("/admin/accounts").await.status, StatusCode::OK);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn administrators_all_deleting_each_other_at_once_leave_one(#[case] backend: Backend) {
    let nodes = nodes(backend).await;
    let admins = signed_in_admins(&nodes).await;
    let ids = Arc::new(admins.iter().map(|(_, id)| *id).collect::<Vec<_>>());
    // A ring: each deletes the next one, typing its email to confirm.
    let answers = all_at_once(admins, ids, |i, ids| {
        let next = (i + 1) % ids.len();
        let page = format!("/admin/accounts/{}", ids[next]);
        let action = format!("{page}/delete");
        (
            page,
            action,
            vec![("confirm", format!("admin{next}@example.org"))],
        )
    })
    .await;

    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == StatusCode::SEE_OTHER),
        "{answers:?}"
    );
    for node in &nodes {
        assert!(enabled_administrators(node).await >= 1, "{answers:?}");
    }
}
