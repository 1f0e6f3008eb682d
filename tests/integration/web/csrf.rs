//! Every state-changing form needs the token of the session that sent it.

use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, Backend, PASSWORD};
use crate::visitor::Visitor;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn forms_without_the_sessions_token_are_refused_and_change_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app
        .create_account(
            "admin@example.org",
            &[Permission::Admin, Permission::Synchronisation],
        )
        .await;
    let member = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "admin@example.org").await;
    let (device_id, _) = visitor.create_device("phone").await;
    let other = Visitor::signed_in(&app, "member@example.org").await;
    let foreign_token = other.get("/settings/profile").await.csrf();
    let m = member.id.0;

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/sign-out".into(), vec![]),
        ("/settings/profile/name".into(), vec![("name", "Mallory")]),
        (
            "/settings/profile/password".into(),
            vec![
                ("current", PASSWORD),
                ("new", "pwned pwned pwned"),
                ("confirm", "pwned pwned pwned"),
            ],
        ),
        ("/settings/devices".into(), vec![("name", "planted")]),
        (format!("/settings/devices/{device_id}/password"), vec![]),
        (format!("/settings/devices/{device_id}/delete"), vec![]),
        ("/settings/security/sign-out-others".into(), vec![]),
        (
            "/admin/accounts".into(),
            vec![("email", "planted@example.org")],
        ),
        (
            format!("/admin/accounts/{m}/permissions"),
            vec![("permission", "admin"), ("granted", "true")],
        ),
        (
            format!("/admin/accounts/{m}/enabled"),
            vec![("enabled", "false")],
        ),
        (
            format!("/admin/accounts/{m}/password"),
            vec![("password", "pwned pwned pwned")],
        ),
    ];
    for (path, fields) in &posts {
        for token in [None, Some("forged"), Some(foreign_token.as_str())] {
            let mut all = fields.clone();
            if let Some(token) = token {
                all.push(("csrf", token));
            }
            let page = visitor.post(path, &all).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{path} with {token:?}");
            assert!(page.body.contains("Form refused"), "{path}");
        }
    }

    assert!(visitor.is_signed_in().await);
    assert!(other.is_signed_in().await);
    let admin = app.account(admin.id).await.unwrap();
    assert_eq!(admin.name, "admin");
    let member = app.account(member.id).await.unwrap();
    assert!(member.enabled && !member.permissions.contains(Permission::Admin));
    assert_eq!(app.devices(Some(admin.id)).await.unwrap().len(), 1);
    assert_eq!(app.accounts().await.unwrap().len(), 2);
    // The right token still works, so the refusals above were about the token.
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/name",
            &[("name", "Ada")],
        )
        .await
        .assert_redirect("/settings/profile");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_sign_in_form_needs_its_own_token(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::new(&app);
    // No token at all, as a forging site would send it.
    let page = visitor
        .post(
            "/sign-in",
            &[("email", "member@example.org"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // A token without the matching cookie (another browser's page).
    let token = Visitor::new(&app).get("/sign-in").await.csrf();
    let page = visitor
        .post(
            "/sign-in",
            &[
                ("csrf", token.as_str()),
                ("email", "member@example.org"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_sign_in_token_is_the_servers_own_and_good_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let fields = |token: &str| {
        [
            ("csrf", token.to_owned()),
            ("email", "member@example.org".to_owned()),
            ("password", PASSWORD.to_owned()),
        ]
    };
    let post = |token: String, cookie: String| {
        let app = &app;
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(app.url("/sign-in"))
                .header("cookie", format!("latchkey_sign_in={cookie}"))
                .form(&fields(&token))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Any well-formed value in both places, as a page on a sibling host
    // could plant it, is not one this server issued.
    let planted = "A".repeat(54);
    assert_eq!(post(planted.clone(), planted).await, StatusCode::FORBIDDEN);
    // One it issued works once; sent again (replayed, or planted after
    // being fetched), it is refused.
    let token = Visitor::new(&app).get("/sign-in").await.csrf();
    assert_eq!(
        post(token.clone(), token.clone()).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(post(token.clone(), token).await, StatusCode::FORBIDDEN);
    // Another server's token (another key) is refused too.
    let other = spawn_app(backend).await;
    let foreign = Visitor::new(&other).get("/sign-in").await.csrf();
    assert_eq!(post(foreign.clone(), foreign).await, StatusCode::FORBIDDEN);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn posts_without_a_session_go_to_sign_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let page = Visitor::new(&app)
        .post("/settings/devices", &[("csrf", "x"), ("name", "x")])
        .await;
    page.assert_redirect("/sign-in");
}

/// A sign-in POST with a good token and its cookie, plus `headers`.
async fn sign_in_with(
    app: &crate::helpers::TestApp,
    cookie_header: impl Fn(&str) -> String,
    headers: &[(&str, String)],
) -> StatusCode {
    let form = Visitor::new(app).get("/sign-in").await;
    let token = form.csrf();
    let cookie = form.cookie("latchkey_sign_in").unwrap();
    let value = cookie.split(';').next().unwrap().to_owned();
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/sign-in"))
        .header("Cookie", cookie_header(&value))
        .form(&[
            ("csrf", token.as_str()),
            ("email", "member@example.org"),
            ("password", PASSWORD),
        ]);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_sign_in_posted_from_another_origin_is_refused(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let own = |v: &str| format!("latchkey_sign_in={v}");
    // Our own page, as a browser reports it.
    assert_eq!(
        sign_in_with(&app, own, &[("Sec-Fetch-Site", "same-origin".into())]).await,
        StatusCode::SEE_OTHER
    );
    // A page on another port of this host, or a sibling subdomain, is
    // "same-site"; another site is "cross-site".
    for site in ["same-site", "cross-site"] {
        assert_eq!(
            sign_in_with(&app, own, &[("Sec-Fetch-Site", site.into())]).await,
            StatusCode::FORBIDDEN,
            "{site}"
        );
    }
    // Without Sec-Fetch-Site, Origin must name this host and port.
    let host = app.base_url.trim_start_matches("http://").to_owned();
    assert_eq!(
        sign_in_with(&app, own, &[("Origin", format!("http://{host}"))]).await,
        StatusCode::SEE_OTHER
    );
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    let other = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    assert_eq!(
        sign_in_with(&app, own, &[("Origin", other)]).await,
        StatusCode::FORBIDDEN
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_planted_second_sign_in_cookie_is_refused_not_chosen_from(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    // Whichever of the two a server took, one of them was planted.
    for cookies in [
        |v: &str| format!("latchkey_sign_in={v}; latchkey_sign_in=planted"),
        |v: &str| format!("latchkey_sign_in=planted; latchkey_sign_in={v}"),
    ] {
        assert_eq!(
            sign_in_with(&app, cookies, &[]).await,
            StatusCode::FORBIDDEN
        );
    }
}
