//! Bad input gets a 4xx with a stable code, never a 500 or a half-written record.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{expect_error, spawn_app, spawn_node, Backend, PASSWORD};

async fn post_raw(
    app: &crate::helpers::TestApp,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.http
        .post(app.url("/server/api/device"))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn malformed_bodies_are_refused_with_clear_codes(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let json = "application/json";
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            json,
            b"{".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json,
            b"not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json,
            b"\xff\xfe".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json,
            b"[]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json,
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json,
            br#"{"email":"member@example.org","password":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json,
            br#"{"email":5,"password":"x","deviceName":"d"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json,
            br#"{"email":"member@example.org","password":"x","deviceName":["d"]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json,
            br#"{"email":"member@example.org","password":"x","deviceName":"d","deviceType":7}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "text/html",
            br#"{"email":"member@example.org","password":"x","deviceName":"d"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json,
            format!(
                r#"{{"email":"member@example.org","password":"x","deviceName":"{}"}}"#,
                "a".repeat(40_000)
            )
            .into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let response = post_raw(&app, content_type, body).await;
        assert_eq!(response.status(), status, "{shown}");
        expect_error(response, status, code).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn refusals_say_what_is_wrong_in_the_apis_words(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let shape = "The request body must be a JSON object with the fields email, password and deviceName, and optionally deviceType, scope, expiresAt, idleExpiryDays, allowedNetworks and deniedNetworks.";
    let cases: Vec<(&[u8], &str, String)> = vec![
        (b"null", "invalid_request", format!("{shape} It is null.")),
        (b"[]", "invalid_request", format!("{shape} It is an array.")),
        (b"42", "invalid_request", format!("{shape} It is a number.")),
        (
            b"{}",
            "invalid_request",
            format!("Field email is missing. {shape}"),
        ),
        (
            br#"{"email":"member@example.org","password":"x"}"#,
            "invalid_request",
            format!("Field deviceName is missing. {shape}"),
        ),
        (
            br#"{"email":"member@example.org","password":"x","deviceName":null}"#,
            "invalid_request",
            "Field deviceName must be a string, not null.".into(),
        ),
        (
            br#"{"email":5,"password":"x","deviceName":"d"}"#,
            "invalid_request",
            "Field email must be a string, not a number.".into(),
        ),
        (
            br#"{"email":"member@example.org","password":["x"],"deviceName":"d"}"#,
            "invalid_request",
            "Field password must be a string, not an array.".into(),
        ),
        (
            br#"{"email":"member@example.org","password":"x","deviceName":"d","deviceType":7}"#,
            "invalid_request",
            "Field deviceType must be a string or null, not a number.".into(),
        ),
        (
            br#"{"email":"member@example.org","password":"x","deviceName":"a","deviceName":"b"}"#,
            "invalid_request",
            r#"Field "deviceName" appears more than once."#.into(),
        ),
        (
            b"",
            "malformed_json",
            format!("The request body is empty. {shape}"),
        ),
        (
            br#"{"email": }"#,
            "malformed_json",
            "The request body is not valid JSON (line 1, column 11).".into(),
        ),
    ];
    for (body, code, message) in cases {
        let shown = String::from_utf8_lossy(body).into_owned();
        let response = post_raw(&app, "application/json", body.to_vec()).await;
        let answer = expect_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(answer["message"], message.as_str(), "{shown}");
    }
    // Renaming says the same in its own terms.
    let device = app.create_device("member@example.org", "d").await;
    for (body, message) in [
        (
            json!(null),
            "The request body must be a JSON object with the field deviceName. It is null.",
        ),
        (
            json!({"deviceName": 12}),
            "Field deviceName must be a string, not a number.",
        ),
    ] {
        let response = app
            .on_device(reqwest::Method::PATCH, &device.id, &device)
            .json(&body)
            .send()
            .await
            .unwrap();
        let answer = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(answer["message"], message, "{body}");
    }
    // Nothing of serde's own wording anywhere.
    for leak in [
        "expected struct",
        "invalid type",
        "CreateBody",
        "RenameBody",
        "`",
    ] {
        let response = post_raw(&app, "application/json", b"null".to_vec()).await;
        let text = response.text().await.unwrap();
        assert!(!text.contains(leak), "{text}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rename_refuses_fields_it_would_not_change(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "old").await;
    let before: serde_json::Value = app.get_own_device(&device).await.json().await.unwrap();
    for (body, code, message) in [
        (
            json!({"deviceName": "new", "deviceType": "ios"}),
            "read_only_field",
            "Field deviceType cannot be changed: this request takes only the field deviceName.",
        ),
        (
            json!({"deviceName": "new", "createdAt": "2020-01-01T00:00:00Z"}),
            "read_only_field",
            "Field createdAt cannot be changed: this request takes only the field deviceName.",
        ),
        (
            json!({"_id": "100012345678", "deviceName": "new"}),
            "read_only_field",
            "Field _id cannot be changed: this request takes only the field deviceName.",
        ),
        (
            json!({"deviceName": "new", "token": "lkd_x"}),
            "read_only_field",
            "Field token cannot be changed: this request takes only the field deviceName.",
        ),
        (
            json!({"deviceName": "new", "colour": "red"}),
            "unknown_field",
            r#"Field "colour" is not known here: this request takes only the field deviceName."#,
        ),
        (
            json!({"device_name": "new"}),
            "unknown_field",
            r#"Field "device_name" is not known here: this request takes only the field deviceName."#,
        ),
    ] {
        let response = app
            .on_device(reqwest::Method::PATCH, &device.id, &device)
            .json(&body)
            .send()
            .await
            .unwrap();
        let answer = expect_error(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(answer["message"], message, "{body}");
    }
    let after: serde_json::Value = app.get_own_device(&device).await.json().await.unwrap();
    assert_eq!(after["deviceName"], "old");
    assert_eq!(after["deviceType"], before["deviceType"]);
    assert_eq!(after["createdAt"], before["createdAt"]);
    // Creating a device still takes more than it reads, as the original API's clients send.
    let response = app
        .post_device(&json!({"email": "member@example.org", "password": PASSWORD, "deviceName": "extra", "appVersion": "2.1"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_fields_are_refused_before_anything_is_written(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    let long_name = "n".repeat(101);
    for (email, name, code) in [
        ("member@example.org", "", "invalid_device_name"),
        ("member@example.org", "   ", "invalid_device_name"),
        ("member@example.org", "line\nbreak", "invalid_device_name"),
        ("member@example.org", "nul\u{0}byte", "invalid_device_name"),
        ("member@example.org", "esc\u{1b}[31m", "invalid_device_name"),
        // Invisible names, and invisible characters in visible ones.
        ("member@example.org", "\u{200B}", "invalid_device_name"),
        ("member@example.org", "\u{200D}", "invalid_device_name"),
        (
            "member@example.org",
            "\u{FEFF}\u{2060}",
            "invalid_device_name",
        ),
        ("member@example.org", "\u{3164}", "invalid_device_name"),
        ("member@example.org", "phone\u{200B}", "invalid_device_name"),
        (
            "member@example.org",
            "line\u{2028}break",
            "invalid_device_name",
        ),
        (
            "member@example.org",
            "para\u{2029}graph",
            "invalid_device_name",
        ),
        (
            "member@example.org",
            long_name.as_str(),
            "invalid_device_name",
        ),
        ("not-an-email", "ok", "invalid_email"),
        ("", "ok", "invalid_email"),
    ] {
        let response = app
            .post_device(&json!({"email": email, "password": PASSWORD, "deviceName": name}))
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let oversized_password = "p".repeat(2000);
    let response = app
        .post_device(&json!({"email": "member@example.org", "password": oversized_password, "deviceName": "ok"}))
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_password").await;
    let devices = app.devices(Some(account.id)).await.unwrap();
    assert!(devices.is_empty(), "half-written devices: {devices:?}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn names_may_hold_any_printable_text(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    for name in [
        "<script>alert(1)</script>",
        "Kalender – Büro 📅",
        "\"quoted\" & 'single'",
        // Emoji sequences keep their joiners and tags.
        "Laptop 👩\u{200D}💻",
        "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} Phone",
    ] {
        let device = app.create_device("member@example.org", name).await;
        let body: serde_json::Value = app.get_own_device(&device).await.json().await.unwrap();
        assert_eq!(body["deviceName"], name);
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rename_validates_like_create(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "old").await;
    let path = format!("/server/api/device/{}", device.id);
    for (body, code) in [
        (json!({"deviceName": "tab\there"}), "invalid_device_name"),
        (json!({"deviceName": ""}), "invalid_device_name"),
        (json!({"deviceName": "\u{200B}"}), "invalid_device_name"),
        (json!({"deviceName": 12}), "invalid_request"),
        (json!({}), "invalid_request"),
    ] {
        let response = app
            .as_device(reqwest::Method::PATCH, &path, &device)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, code).await;
    }
    let body: serde_json::Value = app.get_own_device(&device).await.json().await.unwrap();
    assert_eq!(body["deviceName"], "old");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn names_stored_under_older_rules_still_load(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "old name").await;
    // What a server from before the rule against invisible characters kept.
    let old = "old\u{200B}name";
    let update = "UPDATE devices SET name = $1 WHERE id = $2";
    if app.backend == Backend::Postgres {
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        sqlx::query(update)
            .bind(old)
            .bind(&device.id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
        sqlx::query(update)
            .bind(old)
            .bind(&device.id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    // A node with nothing cached reads it from the database.
    let fresh = spawn_node(&app, |_| {}).await;
    let response = fresh.get_own_device(&device).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["deviceName"], old);
}

/// A random JSON value of bounded depth, biased towards the fields the API reads.
fn random_value(rng: &mut rand::rngs::StdRng, depth: u32) -> serde_json::Value {
    use rand::seq::SliceRandom;
    use rand::Rng;
    let strings = [
        "",
        " ",
        "a@b.c",
        "member@example.org",
        "\u{0}",
        "\u{202E}x",
        "<script>",
        "é",
        "10001234",
        "lkd_",
    ];
    match rng.gen_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => serde_json::Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>()),
        4 => {
            let base = *strings.choose(rng).unwrap();
            json!(base.repeat(rng.gen_range(0..150)))
        }
        5 => serde_json::Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let keys = ["email", "password", "deviceName", "deviceType", "other"];
            let mut object = serde_json::Map::new();
            for key in keys {
                if rng.gen_bool(0.7) {
                    object.insert(key.to_owned(), random_value(rng, depth - 1));
                }
            }
            serde_json::Value::Object(object)
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn random_bodies_never_get_a_server_error(#[case] backend: Backend) {
    use rand::SeedableRng;
    let app = crate::helpers::spawn_app_with(backend, |c| {
        // Room for every guess: this test is about input handling, not throttling.
        c.throttle.per_account_and_network.burst = 10_000;
        c.throttle.per_network.burst = 10_000;
        c.throttle.consecutive_failures = 10_000;
    })
    .await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "target").await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    for _ in 0..150 {
        let body = random_value(&mut rng, 3);
        let created = app.post_device(&body).await.status();
        let renamed = app
            .on_device(reqwest::Method::PATCH, &device.id, &device)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        for status in [created, renamed] {
            assert!(!status.is_server_error(), "{status} for {body}");
        }
    }
    // The target device is still whole.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
}
