//! `POST /server/api/device`: who may create a device with email and password.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{expect_error, spawn_app, Backend, PASSWORD};
use crate::writes::AutoCommit;
use latchkey::domain::Permission;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;

    let wrong_password = app
        .post_device(&json!({"email": "member@example.org", "password": "nope", "deviceName": "x"}))
        .await;
    let wrong = expect_error(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown_email = app
        .post_device(&json!({"email": "nobody@example.org", "password": "nope", "deviceName": "x"}))
        .await;
    let unknown = expect_error(
        unknown_email,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn email_is_case_insensitive(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("Member@Example.org").await;
    let response = app
        .post_device(
            &json!({"email": "MEMBER@example.ORG", "password": PASSWORD, "deviceName": "x"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn two_factor_accounts_must_use_the_web_interface(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    app.service
        .store()
        .set_two_factor_enabled(account.id, true)
        .await
        .unwrap();
    let response = app
        .post_device(
            &json!({"email": "member@example.org", "password": PASSWORD, "deviceName": "x"}),
        )
        .await;
    let body = expect_error(response, StatusCode::FORBIDDEN, "two_factor_enabled").await;
    assert!(body["message"].as_str().unwrap().contains("web interface"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_synchronisation_permission_is_required(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_account("admin@example.org", &[Permission::Admin])
        .await;
    let response = app
        .post_device(
            &json!({"email": "admin@example.org", "password": PASSWORD, "deviceName": "x"}),
        )
        .await;
    let body = expect_error(response, StatusCode::FORBIDDEN, "permission_missing").await;
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("synchronisation"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabled_accounts_cannot_create_devices(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    app.set_enabled("member@example.org", false).await.unwrap();
    let response = app
        .post_device(
            &json!({"email": "member@example.org", "password": PASSWORD, "deviceName": "x"}),
        )
        .await;
    expect_error(response, StatusCode::FORBIDDEN, "account_disabled").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn every_device_gets_its_own_id_and_token(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let a = app.create_device("member@example.org", "one").await;
    let b = app.create_device("member@example.org", "two").await;
    assert_ne!(a.id, b.id);
    assert_ne!(a.token, b.token);
    // Each token belongs to its own device only.
    let crossed = crate::helpers::DeviceCredentials {
        id: a.id.clone(),
        token: b.token.clone(),
    };
    expect_error(
        app.get_own_device(&crossed).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
}
