//! Listing, renaming, "Change password" and deleting devices.

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};

use crate::helpers::{expect_error, spawn_app, Backend, DeviceCredentials};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_device_lists_its_accounts_devices_only(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    app.create_member("b@example.org").await;
    let a1 = app.create_device("a@example.org", "one").await;
    let a2 = app.create_device("a@example.org", "two").await;
    app.create_device("b@example.org", "theirs").await;

    let response = app
        .as_device(Method::GET, "/server/api/device", &a1)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Vec<Value> = response.json().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|d| d["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a1.id.as_str(), a2.id.as_str()]);
    assert!(list.iter().all(|d| d.get("token").is_none()));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn devices_of_other_accounts_are_out_of_reach(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    app.create_member("b@example.org").await;
    let mine = app.create_device("a@example.org", "mine").await;
    let theirs = app.create_device("b@example.org", "theirs").await;
    let path = format!("/server/api/device/{}", theirs.id);
    for (method, path) in [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/password")),
    ] {
        let response = app
            .as_device(method.clone(), &path, &mine)
            .json(&json!({"deviceName": "hijacked"}))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::NOT_FOUND, "device_not_found").await;
    }
    // Untouched.
    let body: Value = app.get_own_device(&theirs).await.json().await.unwrap();
    assert_eq!(body["deviceName"], "theirs");
    // Ids that cannot exist are simply not found.
    let response = app
        .as_device(Method::GET, "/server/api/device/abc", &mine)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "device_not_found").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rename_changes_only_the_name(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "old name").await;
    let response = app
        .on_device(Method::PATCH, &device.id, &device)
        .json(&json!({"deviceName": "  new name  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["deviceName"], "new name");
    assert!(body.get("token").is_none());
    // The device's own view (served from the credential cache) shows it too.
    let own: Value = app.get_own_device(&device).await.json().await.unwrap();
    assert_eq!(own["deviceName"], "new name");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn change_password_keeps_the_id_and_kills_the_old_token_at_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "script").await;
    // Warm the cache with the old token first.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    let response = app
        .change_password(&device.id, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["_id"], device.id.as_str());
    let new_token = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, device.token);

    expect_error(
        app.get_own_device(&device).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    let renewed = DeviceCredentials {
        id: device.id.clone(),
        token: new_token,
    };
    assert_eq!(app.get_own_device(&renewed).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn delete_revokes_exactly_that_device(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let doomed = app.create_device("a@example.org", "doomed").await;
    let kept = app.create_device("a@example.org", "kept").await;
    assert_eq!(app.get_own_device(&doomed).await.status(), StatusCode::OK);

    let response = app
        .on_device(Method::DELETE, &doomed.id, &kept)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get_own_device(&doomed).await,
        StatusCode::UNAUTHORIZED,
        "invalid_device_credentials",
    )
    .await;
    assert_eq!(app.get_own_device(&kept).await.status(), StatusCode::OK);

    // Deleting again: gone.
    let response = app
        .on_device(Method::DELETE, &doomed.id, &kept)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "device_not_found").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_device_can_delete_itself(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("a@example.org").await;
    let device = app.create_device("a@example.org", "self").await;
    let response = app
        .on_device(Method::DELETE, &device.id, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get_own_device(&device).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
