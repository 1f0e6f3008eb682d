//! Forward auth: the answers and identity headers proxies act on, and a
//! fuzz-style check that nothing but a valid credential ever gets a 2xx.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;

use crate::helpers::{
    basic, expect_error, spawn_app, Backend, DeviceCredentials, TestApp, PASSWORD,
};

const NGINX: &str = "/server/authz/auth-request";
const FORWARD: &str = "/server/authz/forward-auth";

fn nginx(
    app: &TestApp,
    method: &str,
    device: Option<&DeviceCredentials>,
) -> reqwest::RequestBuilder {
    let request = app
        .http
        .get(app.url(NGINX))
        .header("X-Original-Method", method)
        .header("X-Original-URL", "https://api.example.org/v1/things?x=1");
    match device {
        Some(d) => request.header("Authorization", basic(&d.id, &d.token)),
        None => request,
    }
}

fn forward(
    app: &TestApp,
    path: &str,
    method: &str,
    device: &DeviceCredentials,
) -> reqwest::RequestBuilder {
    app.http
        .get(app.url(path))
        .header("X-Forwarded-Method", method)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "api.example.org")
        .header("X-Forwarded-Uri", "/v1/things")
        .header("Authorization", basic(&device.id, &device.token))
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_valid_device_password_gets_its_identity(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("ann@example.org").await;
    let device = app.create_device("ann@example.org", "api client").await;
    for response in [
        nginx(&app, "POST", Some(&device)).send().await.unwrap(),
        forward(&app, FORWARD, "DELETE", &device)
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::OK);
        let h = response.headers();
        assert_eq!(h["remote-user"], "ann@example.org");
        assert_eq!(h["remote-email"], "ann@example.org");
        assert!(h.contains_key("remote-name"));
        assert_eq!(h["remote-groups"], "synchronisation");
        assert_eq!(
            h["remote-credential"],
            format!("device:{}", device.id).as_str()
        );
        assert_eq!(h["remote-scope"], "full");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn refusals_are_401_or_403(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("ann@example.org").await;
    let device = app.create_device("ann@example.org", "full").await;
    let response = app
        .post_device(&json!({"email": "ann@example.org", "password": PASSWORD, "deviceName": "reader", "scope": "read"}))
        .await;
    let body: serde_json::Value = response.json().await.unwrap();
    let reader = DeviceCredentials {
        id: body["_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    };
    // No credentials, wrong ones: 401 with the challenge.
    let missing = nginx(&app, "GET", None).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Basic realm=\"latchkey\""
    );
    let wrong = DeviceCredentials {
        id: device.id.clone(),
        token: reader.token.clone(),
    };
    let response = nginx(&app, "GET", Some(&wrong)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().contains_key("www-authenticate"));
    // The scope is checked against the original method.
    assert_eq!(
        nginx(&app, "GET", Some(&reader))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    expect_error(
        nginx(&app, "POST", Some(&reader)).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    expect_error(
        forward(&app, FORWARD, "PUT", &reader).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    // Rules per upstream.
    let full_only = format!("{FORWARD}?scope=full");
    expect_error(
        forward(&app, &full_only, "GET", &reader)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    assert_eq!(
        forward(&app, &full_only, "GET", &device)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let admins = format!("{FORWARD}?group=admin");
    expect_error(
        forward(&app, &admins, "GET", &device).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "permission_missing",
    )
    .await;
    let admin_scope = format!("{FORWARD}?scope=admin");
    expect_error(
        forward(&app, &admin_scope, "GET", &device)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    let nonsense = format!("{FORWARD}?scope=everything");
    expect_error(
        forward(&app, &nonsense, "GET", &device)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "invalid_rule",
    )
    .await;
    // The original request must be readable.
    let no_method = app
        .http
        .get(app.url(NGINX))
        .header("X-Original-URL", "https://api.example.org/")
        .header("Authorization", basic(&device.id, &device.token))
        .send()
        .await
        .unwrap();
    expect_error(no_method, StatusCode::FORBIDDEN, "invalid_original_request").await;
    let bad_url = app
        .http
        .get(app.url(NGINX))
        .header("X-Original-Method", "GET")
        .header("X-Original-URL", "not a url")
        .header("Authorization", basic(&device.id, &device.token))
        .send()
        .await
        .unwrap();
    expect_error(bad_url, StatusCode::FORBIDDEN, "invalid_original_request").await;
    // Sent twice, a header of the original request cannot be judged: a
    // proxy and a client each sent one, and either may be the lie.
    let twice = [
        ("X-Original-Method", "GET", "DELETE", NGINX),
        (
            "X-Original-URL",
            "https://api.example.org/",
            "https://other.example.org/",
            NGINX,
        ),
        ("X-Forwarded-Method", "GET", "DELETE", FORWARD),
        ("X-Forwarded-Uri", "/v1/things", "/admin", FORWARD),
        (
            "X-Forwarded-Host",
            "api.example.org",
            "other.example.org",
            FORWARD,
        ),
        ("X-Forwarded-Proto", "https", "http", FORWARD),
    ];
    for (name, first, second, path) in twice {
        let mut request = app
            .http
            .get(app.url(path))
            .header("Authorization", basic(&device.id, &device.token));
        for (header, value) in [
            ("X-Original-Method", "GET"),
            ("X-Original-URL", "https://api.example.org/"),
            ("X-Forwarded-Method", "GET"),
        ] {
            if header != name {
                request = request.header(header, value);
            }
        }
        let response = request
            .header(name, first)
            .header(name, second)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name} twice");
        expect_error(response, StatusCode::FORBIDDEN, "invalid_original_request").await;
    }
    // Revoked: refused at once.
    let gone = app
        .on_device(Method::DELETE, &device.id, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let response = nginx(&app, "GET", Some(&device)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Thousands of generated header sets: none without the valid credential
/// gets a 2xx, and none gets a 5xx.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn generated_headers_never_pass_without_a_valid_credential(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("ann@example.org").await;
    let device = app.create_device("ann@example.org", "fuzz").await;
    let valid = basic(&device.id, &device.token);
    let mut rng = StdRng::seed_from_u64(0x1a7c_4e11);
    let pieces: Vec<String> = vec![
        "GET".into(),
        "POST".into(),
        "get".into(),
        "".into(),
        " GET".into(),
        "G\tET".into(),
        "https://api.example.org/".into(),
        "/v1".into(),
        "http://".into(),
        "//x".into(),
        "Basic".into(),
        "Basic ".into(),
        "Bearer x".into(),
        format!("Basic {}", &valid[6..20]),
        basic(&device.id, "lk_wrong"),
        basic(&device.id, ""),
        basic("", &device.token),
        basic("ann@example.org", PASSWORD),
        basic(&format!("{}0", device.id), &device.token),
        "Basic ====".into(),
        "Basic OjE=".into(),
        "\u{7f}".into(),
        "é".into(),
        "a".repeat(300),
        "http".into(),
        "https".into(),
        "ftp".into(),
        "api.example.org".into(),
        "[::1]:x".into(),
    ];
    let names = [
        "authorization",
        "x-original-method",
        "x-original-url",
        "x-forwarded-method",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-uri",
        "x-forwarded-for",
        "remote-user",
    ];
    let mut passed = 0;
    for round in 0..2000 {
        let path = if round % 2 == 0 { NGINX } else { FORWARD };
        let mut request = app.http.get(app.url(path));
        let mut with_valid = false;
        // A third start from a request that would pass, then get more.
        if rng.gen_bool(0.33) {
            with_valid = true;
            request = request
                .header("authorization", valid.as_str())
                .header("x-original-method", "GET")
                .header("x-original-url", "https://api.example.org/")
                .header("x-forwarded-method", "GET");
        }
        for _ in 0..rng.gen_range(0..6) {
            let name = names[rng.gen_range(0..names.len())];
            let value = if name == "authorization" && rng.gen_bool(0.2) {
                with_valid = true;
                valid.clone()
            } else {
                let mut v = pieces[rng.gen_range(0..pieces.len())].clone();
                if rng.gen_bool(0.2) {
                    let cut = rng.gen_range(0..=v.len());
                    v = String::from_utf8_lossy(&v.as_bytes()[..cut]).into_owned();
                }
                v
            };
            let Ok(value) = reqwest::header::HeaderValue::from_bytes(value.as_bytes()) else {
                continue;
            };
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "round {round}: {status}");
        if status.is_success() {
            assert!(
                with_valid,
                "round {round}: {status} without the valid credential"
            );
            passed += 1;
        }
    }
    assert!(passed > 0, "the generator never produced a passing request");
}
