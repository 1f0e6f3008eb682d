//! A device works only while its account is enabled and holds synchronisation.

use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{expect_error, spawn_app, Backend};
use latchkey::domain::Permission;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn removing_the_permission_stops_devices_and_granting_it_restores_them(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    app.set_permission("a@example.org", Permission::Synchronisation, false)
        .await
        .unwrap();
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::FORBIDDEN,
        "permission_missing",
    )
    .await;

    app.set_permission("a@example.org", Permission::Synchronisation, true)
        .await
        .unwrap();
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabling_the_account_stops_devices_and_enabling_restores_them(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    app.set_enabled("a@example.org", false).await.unwrap();
    expect_error(
        app.get_own_device(&device).await,
        StatusCode::FORBIDDEN,
        "account_disabled",
    )
    .await;

    app.set_enabled("a@example.org", true).await.unwrap();
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn changing_the_main_password_leaves_devices_alone(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    app.set_password("a@example.org", "a whole new password")
        .await
        .unwrap();
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn other_accounts_are_unaffected(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    app.create_member("b@example.org").await;
    let a = app.create_device("a@example.org", "a").await;
    let b = app.create_device("b@example.org", "b").await;
    app.set_enabled("a@example.org", false).await.unwrap();
    assert_eq!(app.get_own_device(&a).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_own_device(&b).await.status(), StatusCode::OK);
}
