//! No session id, CSRF token, device password or main password in the logs
//! or the database files, whatever the web interface did.

use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{captured_logs, spawn_app, Backend, PASSWORD};
use crate::visitor::Visitor;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn web_flows_leak_no_secret(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;

    let visitor = Visitor::new(&app);
    let signed_in = visitor.sign_in_as("member@example.org", PASSWORD).await;
    let session = signed_in.cookie("latchkey_session").unwrap();
    let session = session.split(';').next().unwrap().to_owned();
    let csrf = visitor.get("/settings/profile").await.csrf();
    let (_, first_token) = visitor.create_device("script").await;
    let id = app.devices(Some(member.id)).await.unwrap()[0]
        .id
        .to_string();
    let second_token = visitor
        .change_device_password(&id)
        .await
        .text_of("shown-password")
        .unwrap();
    Visitor::new(&app)
        .sign_in_as("member@example.org", "a wrong web guess")
        .await;
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[
                ("current", PASSWORD),
                ("new", "the member's new password"),
                ("confirm", "the member's new password"),
            ],
        )
        .await;

    admin
        .submit(
            "/admin/accounts/new",
            "/admin/accounts",
            &[("email", "new@example.org"), ("password", "")],
        )
        .await;
    let new = app.account_by_email("new@example.org").await.unwrap();
    let generated = admin
        .get(&format!("/admin/accounts/{}", new.id.0))
        .await
        .text_of("shown-password")
        .unwrap();

    let secrets = [
        session.clone(),
        first_token.clone(),
        first_token[4..].to_owned(),
        second_token.clone(),
        second_token[4..].to_owned(),
        PASSWORD.to_owned(),
        "a wrong web guess".to_owned(),
        "the member's new password".to_owned(),
        generated,
    ];
    let database = app.stop().await;
    // The test's own cookie jar logs what it stores; that is the browser's
    // side, not the server's.
    let logs: String = captured_logs()
        .lines()
        .filter(|line| !line.contains("cookie_store::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(logs.contains("signed in"), "logs were not captured");
    let files = database.contents().await;
    for (i, secret) in secrets.iter().enumerate() {
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!(
                "secret #{i} is in the logs: {}",
                line.replace(secret.as_str(), "<SECRET>")
            );
        }
        for (name, bytes) in &files {
            assert!(!contains(bytes, secret), "a secret is in {name}");
        }
    }
    // The CSRF secret is kept with the session (it has to be), but never logged.
    assert!(!logs.contains(&csrf), "the CSRF token is in the logs");
    // The session id is stored only as its SHA-256.
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&session)
        .unwrap();
    for (name, bytes) in &files {
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
            "the raw session id is in {name}"
        );
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn every_page_carries_the_security_headers(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = Visitor::admin(&app).await;
    app.set_permission(me.email.as_str(), Permission::Synchronisation, true)
        .await
        .unwrap();
    let anonymous = Visitor::new(&app);
    let pages = [
        (&anonymous, "/sign-in"),
        (&anonymous, "/settings/profile"),
        (&admin, "/settings/profile"),
        (&admin, "/settings/devices"),
        (&admin, "/settings/security"),
        (&admin, "/admin/accounts"),
        (&admin, "/admin/accounts/new"),
        (&admin, "/admin/accounts/1"),
        (&admin, "/admin/accounts/404404"),
        (&admin, "/static/app.css"),
        (&admin, "/static/app.js"),
        (&admin, "/settings/no-such-page"),
        (&anonymous, "/no-such-page"),
    ];
    for (who, path) in pages {
        let page = who.get(path).await;
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        if path.starts_with("/static/") {
            // Unhashed names (older pages) may be revalidated, not kept.
            assert_eq!(header("cache-control"), "no-cache", "{path}");
        } else {
            assert_eq!(header("cache-control"), "no-store", "{path}");
        }
        // Nothing inline for the CSP to block.
        assert!(!page.body.contains("<script>"), "{path}");
        assert!(!page.body.contains(" style=\""), "{path}");
        assert!(!page.body.contains(" onclick="), "{path}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn assets_are_linked_by_content_hash_and_kept_for_a_year(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = Visitor::new(&app);
    let page = visitor.get("/sign-in").await;
    for (attribute, extension) in [("href", "css"), ("src", "js")] {
        let start = page
            .body
            .find(&format!("{attribute}=\"/static/app."))
            .unwrap_or_else(|| panic!("no hashed {extension} link"));
        let rest = &page.body[start + attribute.len() + 2..];
        let link = &rest[..rest.find('"').unwrap()];
        assert!(link.ends_with(&format!(".{extension}")), "{link}");
        let asset = visitor.get(link).await;
        assert_eq!(asset.status, StatusCode::OK, "{link}");
        assert_eq!(
            asset.headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
    // A name that is not this release's asset is not found, not guessed at.
    assert_eq!(
        visitor.get("/static/app.000000000000.css").await.status,
        StatusCode::NOT_FOUND
    );
    // Pages themselves are still never stored.
    assert_eq!(page.headers["cache-control"], "no-store");
}
