//! The help-center article's walk-through, exactly.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, DeviceCredentials};
use latchkey::domain::Permission;
use latchkey::service::{NewAccountRequest, Operator};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_articles_request_creates_a_device_of_unknown_type(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.service
        .create_account(
            &Operator::at_the_command_line(),
            NewAccountRequest {
                email: "test@5point.de".into(),
                name: None,
                password: None,
                permissions: [Permission::Synchronisation].into_iter().collect(),
            },
        )
        .await
        .unwrap();
    // The article's account has the password "password", which no one can
    // set today: an account from before the password rules.
    app.set_legacy_password("test@5point.de", "password").await;

    let response = app
        .post_device(&json!({
            "email": "test@5point.de",
            "password": "password",
            "deviceName": "test5p",
            "deviceType": "de.fivepoint.other"
        }))
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    let id = body["_id"].as_str().unwrap();
    assert!(
        id.len() >= 8 && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(location, format!("/server/api/device/{id}"));
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("lkd_") && token.len() == 53, "{token}");
    assert_eq!(body["deviceName"], "test5p");
    assert_eq!(body["deviceType"], "unknown");
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(body["lastUsedAt"].is_null());

    // "When your app starts up, first load its own device resource."
    let device = DeviceCredentials {
        id: id.to_owned(),
        token: token.to_owned(),
    };
    let own = app.get_own_device(&device).await;
    assert_eq!(own.status(), StatusCode::OK);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["_id"], id);
    assert_eq!(own["deviceName"], "test5p");
    assert_eq!(own["deviceType"], "unknown");
    assert!(own.get("token").is_none(), "token returned again: {own}");
    for field in ["createdAt", "lastUsedAt", "lastUsedIp", "lastUsedUserAgent"] {
        assert!(own.get(field).is_some(), "{field} missing from {own}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_articles_xhr_style_header_works(#[case] backend: Backend) {
    // window.btoa(device._id + ':' + device.token) is plain base64 of "id:token".
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app
        .create_device("member@example.org", "Accounting import script")
        .await;
    let header = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", device.id, device.token)
        )
    );
    let response = app
        .http
        .get(app.url(&format!("/server/api/device/{}", device.id)))
        .header("Authorization", header)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn known_types_are_kept_and_configurable(#[case] backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |c| {
        c.device_types = latchkey::domain::DeviceTypes::new(["de.fivepoint.other", "ios"]);
    })
    .await;
    app.create_member("member@example.org").await;
    for (sent, stored) in [
        (json!("de.fivepoint.other"), "de.fivepoint.other"),
        (json!("iOS"), "ios"),
        (json!("android"), "unknown"),
        (Value::Null, "unknown"),
    ] {
        let response = app
            .post_device(&json!({
                "email": "member@example.org",
                "password": crate::helpers::PASSWORD,
                "deviceName": "phone",
                "deviceType": sent
            }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["deviceType"], stored, "sent {sent}");
    }
}
