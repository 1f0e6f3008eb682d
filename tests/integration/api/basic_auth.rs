//! Basic auth on every route but device creation: device passwords only.

use reqwest::{Method, StatusCode};
use rstest::rstest;

use crate::helpers::{basic, expect_error, spawn_app, Backend, PASSWORD};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn requests_without_credentials_are_told_how_to_authenticate(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        (Method::GET, "/server/api/device"),
        (Method::GET, "/server/api/device/10001234"),
        (Method::PATCH, "/server/api/device/10001234"),
        (Method::DELETE, "/server/api/device/10001234"),
        (Method::POST, "/server/api/device/10001234/password"),
        (Method::GET, "/server/api/user"),
    ] {
        let response = app
            .http
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED, "missing_credentials").await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn email_and_main_password_are_refused_with_a_pointer_to_device_passwords(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let response = app
        .http
        .get(app.url("/server/api/user"))
        .header("Authorization", basic("member@example.org", PASSWORD))
        .send()
        .await
        .unwrap();
    let body = expect_error(
        response,
        StatusCode::UNAUTHORIZED,
        "device_password_required",
    )
    .await;
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("device password"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn malformed_and_wrong_credentials_get_401_never_500(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "script").await;
    let wrong_token = {
        // A well-formed token with a valid checksum that is not this device's.
        let other = app.create_device("member@example.org", "other").await;
        other.token
    };
    let cases: Vec<(String, &str)> = vec![
        ("Bearer abc".into(), "missing_credentials"),
        ("Basic".into(), "malformed_credentials"),
        ("Basic !!!".into(), "malformed_credentials"),
        ("Basic /w==".into(), "malformed_credentials"),
        ("Basic MTIzNDU2Nzg=".into(), "malformed_credentials"),
        (basic(&device.id, ""), "invalid_device_credentials"),
        (basic(&device.id, "D1C2B3A4"), "invalid_device_credentials"),
        (
            basic(&device.id, &device.token[..device.token.len() - 1]),
            "invalid_device_credentials",
        ),
        (
            basic(&device.id, &format!("{}:", device.token)),
            "invalid_device_credentials",
        ),
        (
            basic(&device.id, &wrong_token),
            "invalid_device_credentials",
        ),
        (
            basic("99999999", &device.token),
            "invalid_device_credentials",
        ),
        (
            basic("not-digits", &device.token),
            "invalid_device_credentials",
        ),
        (basic("", &device.token), "invalid_device_credentials"),
        (
            basic(&"9".repeat(5000), &device.token),
            "invalid_device_credentials",
        ),
    ];
    for (header, code) in cases {
        let response = app
            .http
            .get(app.url(&format!("/server/api/device/{}", device.id)))
            .header("Authorization", header.as_str())
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED, code).await;
    }
    // Case-insensitive scheme, as RFC 7235 says.
    let lower = basic(&device.id, &device.token).replacen("Basic", "basic", 1);
    let response = app
        .http
        .get(app.url("/server/api/user"))
        .header("Authorization", lower)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Two Authorization headers are ambiguous and refused.
    let response = app
        .http
        .get(app.url("/server/api/user"))
        .header("Authorization", basic(&device.id, &device.token))
        .header("Authorization", basic(&device.id, &device.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_user_route_describes_the_account(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "script").await;
    let response = app
        .as_device(Method::GET, "/server/api/user", &device)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["email"], "member@example.org");
    assert_eq!(body["name"], "member");
    assert_eq!(body["permissions"], serde_json::json!(["synchronisation"]));
    assert_eq!(body["twoFactorEnabled"], false);
    assert!(body.get("passwordHash").is_none() && body.get("password").is_none());
}
