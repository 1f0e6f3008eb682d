//! Everything outside the API contract answers in the same JSON error shape.

use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{expect_error, spawn_app, spawn_app_with, Backend};

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn health_unknown_routes_and_wrong_methods(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let missing = app
        .http
        .get(app.url("/server/api/nothing"))
        .send()
        .await
        .unwrap();
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;

    let wrong_method = app
        .http
        .put(app.url("/server/api/user"))
        .send()
        .await
        .unwrap();
    expect_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn browsers_on_allowed_origins_may_call_the_api(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.cors_origins = vec!["https://app.example.org".parse().unwrap()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(
                reqwest::Method::OPTIONS,
                app.url("/server/api/device/10001234"),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example.org").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://app.example.org"
    );
    let actual = app
        .http
        .get(app.url("/server/api/user"))
        .header("Origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("location") && exposed.contains("retry-after"),
        "{exposed}"
    );
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn cors_headers_are_on_the_api_only(#[case] backend: Backend) {
    let origin = "https://app.example.org";
    let app = spawn_app_with(backend, |c| {
        c.cors_origins = vec![origin.parse().unwrap()];
    })
    .await;
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // The API, unknown addresses under it included, answers the browser app.
    for path in [
        "/server/api/device",
        "/server/api/user",
        "/server/api/nothing",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed(&response).as_deref(), Some(origin), "{path}");
    }
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/server/api/device"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&preflight).as_deref(), Some(origin));
    // Pages, their assets and the health checks are not the API.
    for path in [
        "/sign-in",
        "/",
        "/no-such-page",
        "/healthz",
        "/readyz",
        "/static/app.css",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(allowed(&response), None, "{path}");
        assert!(
            response
                .headers()
                .get("access-control-expose-headers")
                .is_none(),
            "{path}"
        );
    }
    let page_preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/sign-in"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed(&page_preflight), None);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_stalled_client(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.shutdown_grace = std::time::Duration::from_secs(1)
    })
    .await;
    let _stalled = app.stalled_connection().await;
    // `stop` fails the test if the server is not gone within 10 s.
    app.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected(#[case] backend: Backend) {
    use tokio::io::AsyncReadExt;
    let app = spawn_app(backend).await;
    let mut stalled = app.stalled_connection().await;
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stalled.read_to_end(&mut rest),
    )
    .await
    .expect("the server closes the connection")
    .ok();
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "closed too early"
    );
    // Meanwhile the server serves others.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_body_that_never_arrives_gets_a_json_408(#[case] backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(backend, |c| {
        c.request_timeout = std::time::Duration::from_secs(1);
        c.cors_origins = vec!["https://app.example.org".parse().unwrap()];
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(app.base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /server/api/device HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.org\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    // A browser app can read it too.
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example.org"),
        "{answer}"
    );
}
