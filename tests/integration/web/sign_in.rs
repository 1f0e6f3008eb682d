//! Signing in and out.

use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::visitor::Visitor;
use crate::writes::AutoCommit;
use latchkey::service::throttle::{Rate, ThrottleConfig};

fn error_of(page: &crate::visitor::Page) -> String {
    page.text_of("sign-in-error").unwrap_or_default()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_member_signs_in_and_out(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::new(&app);
    assert!(!visitor.is_signed_in().await);
    visitor.get("/").await.assert_redirect("/sign-in");

    let page = visitor.sign_in_as("Member@Example.org", PASSWORD).await;
    page.assert_redirect("/settings/profile");
    let cookie = page.cookie("latchkey_session").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http must not mark cookies Secure"
    );
    visitor.get("/").await.assert_redirect("/settings/profile");
    visitor
        .get("/sign-in")
        .await
        .assert_redirect("/settings/profile");
    let profile = visitor.get("/settings/profile").await;
    assert!(profile.body.contains("member@example.org"));

    visitor
        .submit("/settings/profile", "/sign-out", &[])
        .await
        .assert_redirect("/sign-in?signed-out=1");
    assert!(!visitor.is_signed_in().await);
    assert!(visitor
        .get("/sign-in?signed-out=1")
        .await
        .body
        .contains("You have signed out."));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn cookies_are_secure_behind_https(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.public_url = Some("https://keys.example.org".into())
    })
    .await;
    app.create_member("member@example.org").await;
    // A browser behind the https proxy; this test client talks plain http,
    // so it hands the host-only cookie back by hand.
    let form = Visitor::new(&app).get("/sign-in").await;
    let sign_in_cookie = form.cookie("__Host-latchkey_sign_in").unwrap();
    assert!(sign_in_cookie.contains("; Secure"));
    let value = sign_in_cookie.split(';').next().unwrap();
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/sign-in"))
        .header("Cookie", format!("__Host-latchkey_sign_in={value}"))
        .form(&[
            ("csrf", form.csrf().as_str()),
            ("email", "member@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let session = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("__Host-latchkey_session="))
        .expect("a host-only session cookie");
    assert!(session.contains("; Secure") && session.contains("; Path=/"));
    assert!(!session.contains("Domain"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_new_session_id_at_every_sign_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    // Cookies by hand: the browser still holds its first session when it
    // signs in again with a fresh form.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |session: Option<String>| {
        let (http, app) = (&http, &app);
        async move {
            let form = http.get(app.url("/sign-in")).send().await.unwrap();
            let token = form
                .headers()
                .get_all("set-cookie")
                .iter()
                .find_map(|v| v.to_str().unwrap().strip_prefix("latchkey_sign_in="))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let mut cookies = format!("latchkey_sign_in={token}");
            if let Some(session) = session {
                cookies.push_str(&format!("; latchkey_session={session}"));
            }
            let signed_in = http
                .post(app.url("/sign-in"))
                .header("cookie", cookies)
                .form(&[
                    ("csrf", token.as_str()),
                    ("email", "member@example.org"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
            signed_in
                .headers()
                .get_all("set-cookie")
                .iter()
                .find_map(|v| v.to_str().unwrap().strip_prefix("latchkey_session="))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        }
    };
    let first = sign_in(None).await;
    let second = sign_in(Some(first.clone())).await;
    assert_ne!(first, second);
    // The session the browser had before is gone, not just replaced in the jar.
    let sessions = app
        .sessions_of(app.account_by_email("member@example.org").await.unwrap().id)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::new(&app);
    let wrong = visitor
        .sign_in_as("member@example.org", "not the password")
        .await;
    let unknown = visitor
        .sign_in_as("ghost@example.org", "not the password")
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(error_of(&wrong), "The email address or password is wrong.");
    assert_eq!(error_of(&unknown), error_of(&wrong));
    // The email stays filled in; the password never comes back.
    assert!(wrong.body.contains("value=\"member@example.org\""));
    assert!(!wrong.body.contains("not the password"));
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn empty_and_malformed_fields_are_named(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = Visitor::new(&app);
    let page = visitor.sign_in_as("", "").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.field_error("email").unwrap(),
        "Enter your email address."
    );
    assert_eq!(
        page.field_error("password").unwrap(),
        "Enter your password."
    );
    let page = visitor.sign_in_as("no-at-sign", "whatever").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error("email").unwrap().contains("'@'"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn device_passwords_never_sign_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "script").await;
    let visitor = Visitor::new(&app);
    for (user, password) in [
        ("member@example.org", device.token.as_str()),
        (device.id.as_str(), device.token.as_str()),
    ] {
        let page = visitor.sign_in_as(user, password).await;
        assert_ne!(page.status, StatusCode::SEE_OTHER);
        assert!(page.cookie("latchkey_session").is_none());
    }
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabled_accounts_cannot_sign_in_and_two_factor_ones_need_a_code(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_member("off@example.org").await;
    app.set_enabled("off@example.org", false).await.unwrap();
    let two_factor = app.create_member("2fa@example.org").await;
    app.service
        .store()
        .set_two_factor_enabled(two_factor.id, true)
        .await
        .unwrap();
    let visitor = Visitor::new(&app);

    let page = visitor.sign_in_as("off@example.org", PASSWORD).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(error_of(&page).contains("disabled"));
    let page = visitor.sign_in_as("2fa@example.org", PASSWORD).await;
    page.assert_redirect("/sign-in/code");
    assert!(page.cookie("latchkey_session").is_none());
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn failed_sign_ins_are_throttled_together_with_the_api(#[case] backend: Backend) {
    let strict = ThrottleConfig {
        per_account_and_network: Rate {
            burst: 3,
            refill_every: Duration::from_secs(60),
        },
        ..ThrottleConfig::default()
    };
    let app = spawn_app_with(backend, |c| c.throttle = strict).await;
    app.create_member("victim@example.org").await;
    let visitor = Visitor::new(&app);
    for _ in 0..3 {
        let page = visitor.sign_in_as("victim@example.org", "guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = visitor.sign_in_as("victim@example.org", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // Nothing suggests that the right password was wrong.
    let error = error_of(&page);
    assert!(error.starts_with("Too many failed attempts"), "{error}");
    assert!(
        error.contains("not checked") && !error.contains("wrong"),
        "{error}"
    );
    let retry_after: u64 = page.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    // The same buckets guard the API's password check.
    let response = app
        .post_device(
            &json!({"email": "victim@example.org", "password": PASSWORD, "deviceName": "x"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Unknown emails are throttled the same way.
    for _ in 0..3 {
        visitor.sign_in_as("ghost@example.org", "guess").await;
    }
    let page = visitor.sign_in_as("ghost@example.org", "guess").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn signing_in_returns_to_the_page_that_asked_for_it(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::new(&app);
    let asked = visitor.get("/settings/devices").await;
    asked.assert_redirect("/sign-in?next=%2Fsettings%2Fdevices");
    let form = visitor.get("/sign-in?next=%2Fsettings%2Fdevices").await;
    assert!(form
        .body
        .contains(r#"name="next" value="/settings/devices""#));
    visitor
        .submit(
            "/sign-in?next=%2Fsettings%2Fdevices",
            "/sign-in",
            &[
                ("email", "member@example.org"),
                ("password", PASSWORD),
                ("next", "/settings/devices"),
            ],
        )
        .await
        .assert_redirect("/settings/devices");
    // Signed in already, the sign-in page sends on to where it was asked to.
    visitor
        .get("/sign-in?next=%2Fsettings%2Fsecurity")
        .await
        .assert_redirect("/settings/security");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn signing_in_never_sends_anyone_to_another_site(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "evil.example",
    ] {
        let visitor = Visitor::new(&app);
        let form = visitor
            .get(&format!(
                "/sign-in?{}",
                serde_urlencoded::to_string([("next", next)]).unwrap()
            ))
            .await;
        assert!(!form.body.contains("evil.example"), "{next}");
        visitor
            .submit(
                "/sign-in",
                "/sign-in",
                &[
                    ("email", "member@example.org"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await
            .assert_redirect("/settings/profile");
    }
    // A form's target is not a page to return to.
    let visitor = Visitor::new(&app);
    visitor
        .post("/settings/profile/name", &[("name", "x")])
        .await
        .assert_redirect("/sign-in");
}
