//! The hot routes (a device's own resource, forward auth, `/healthz`) are
//! answered before the router, except when CORS is configured: two nodes on
//! one database, one each way, must give the same answers to the same
//! requests, whether the credential is cold or cached.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};

use crate::helpers::{basic, spawn_app, spawn_node, Backend, TestApp, PASSWORD};

/// One request, as sent to either node.
struct Case {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
}

fn case(method: Method, path: impl Into<String>, headers: &[(&'static str, &str)]) -> Case {
    Case {
        method,
        path: path.into(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

/// What must be the same both ways: the status, the headers clients and
/// proxies act on, and the body (the moment of the last use aside).
async fn answer(app: &TestApp, case: &Case) -> (StatusCode, Vec<(String, String)>, Value) {
    let mut request = app.http.request(case.method.clone(), app.url(&case.path));
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = shown(response.headers());
    let text = response.text().await.unwrap();
    let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(object) = body.as_object_mut() {
        object.remove("lastUsedAt");
    }
    (status, headers, body)
}

fn shown(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut shown: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("remote-")
                || matches!(
                    name,
                    "content-type"
                        | "content-length"
                        | "www-authenticate"
                        | "x-content-type-options"
                        | "cache-control"
                        | "retry-after"
                        | "allow"
                )
        })
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    shown.sort();
    shown
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn hot_routes_answer_as_the_router_does(#[case] backend: Backend) {
    let hot = spawn_app(backend).await;
    // CORS puts every route behind the router.
    let routed = spawn_node(&hot, |c| {
        c.cors_origins = vec!["https://app.example.org".parse().unwrap()];
    })
    .await;
    hot.create_member("ann@example.org").await;
    hot.create_member("bob@example.org").await;
    let own = hot.create_device("ann@example.org", "own").await;
    let sibling = hot.create_device("ann@example.org", "sibling").await;
    let other = hot.create_device("bob@example.org", "other").await;
    let read_only = hot
        .post_device(&json!({
            "email": "ann@example.org", "password": PASSWORD,
            "deviceName": "reader", "scope": "read",
        }))
        .await;
    assert_eq!(read_only.status(), StatusCode::CREATED);
    let read_only: Value = read_only.json().await.unwrap();
    let reader = basic(
        read_only["_id"].as_str().unwrap(),
        read_only["token"].as_str().unwrap(),
    );

    let auth = basic(&own.id, &own.token);
    let wrong = basic(&own.id, &sibling.token);
    let unknown = basic("10000000", &own.token);
    let email = basic("ann@example.org", PASSWORD);
    let mine = format!("/server/api/device/{}", own.id);
    let forwarded = |method: &'static str| {
        [
            ("X-Forwarded-Method", method),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "api.example.org"),
            ("X-Forwarded-Uri", "/v1/things?x=1"),
        ]
    };
    let with = |extra: &[(&'static str, &'static str)], authorization: &str| {
        let mut headers: Vec<(&'static str, String)> =
            extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
        headers.push(("Authorization", authorization.to_owned()));
        headers
    };
    let cases = vec![
        // The device route, the caller's own device first (cold, then cached).
        case(Method::GET, &mine, &[("Authorization", &auth)]),
        case(
            Method::GET,
            format!("{mine}?x=1"),
            &[("Authorization", &auth)],
        ),
        case(
            Method::GET,
            format!("/server/api/device/{}", sibling.id),
            &[("Authorization", &auth)],
        ),
        case(
            Method::GET,
            format!("/server/api/device/{}", other.id),
            &[("Authorization", &auth)],
        ),
        case(
            Method::GET,
            "/server/api/device/99999999",
            &[("Authorization", &auth)],
        ),
        case(
            Method::GET,
            "/server/api/device/12",
            &[("Authorization", &auth)],
        ),
        case(Method::GET, &mine, &[("Authorization", &reader)]),
        case(Method::GET, &mine, &[]),
        case(Method::GET, &mine, &[("Authorization", &wrong)]),
        case(Method::GET, &mine, &[("Authorization", &unknown)]),
        case(Method::GET, &mine, &[("Authorization", &email)]),
        case(Method::GET, &mine, &[("Authorization", "Bearer abc")]),
        case(Method::GET, &mine, &[("Authorization", "Basic !!!")]),
        Case {
            method: Method::GET,
            path: mine.clone(),
            headers: vec![
                ("Authorization", auth.clone()),
                ("Authorization", auth.clone()),
            ],
        },
        case(Method::HEAD, &mine, &[("Authorization", &auth)]),
        case(Method::GET, format!("{mine}/"), &[("Authorization", &auth)]),
        // The health check.
        case(Method::GET, "/healthz", &[]),
        case(Method::HEAD, "/healthz", &[]),
        case(Method::POST, "/healthz", &[]),
        // Forward auth, both conventions.
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth".into(),
            headers: with(&forwarded("GET"), &auth),
        },
        Case {
            method: Method::POST,
            path: "/server/authz/forward-auth?group=synchronisation".into(),
            headers: with(&forwarded("DELETE"), &auth),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth".into(),
            headers: with(&forwarded("POST"), &reader),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth?scope=full".into(),
            headers: with(&forwarded("GET"), &reader),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth?group=admin".into(),
            headers: with(&forwarded("GET"), &auth),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth?scope=bogus".into(),
            headers: with(&forwarded("GET"), &auth),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth".into(),
            headers: with(&forwarded("GET"), &wrong),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth".into(),
            headers: with(&[("X-Forwarded-Host", "api.example.org")], &auth),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/forward-auth".into(),
            headers: forwarded("GET")
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect(),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/auth-request".into(),
            headers: with(
                &[
                    ("X-Original-Method", "GET"),
                    ("X-Original-URL", "https://api.example.org/v1/things?x=1"),
                ],
                &auth,
            ),
        },
        Case {
            method: Method::GET,
            path: "/server/authz/auth-request".into(),
            headers: with(
                &[
                    ("X-Original-Method", "GET"),
                    ("X-Original-URL", "/relative"),
                ],
                &auth,
            ),
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        let mut seen = Vec::new();
        // Each node twice: the first time a credential may be cold on it.
        for app in [&hot, &hot, &routed, &routed] {
            seen.push(answer(app, case).await);
        }
        for answer in &seen[1..] {
            assert_eq!(
                answer, &seen[0],
                "case {i}: {} {} answered differently",
                case.method, case.path
            );
        }
    }
}
