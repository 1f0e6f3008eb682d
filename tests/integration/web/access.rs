//! Administration, API access: the page and its forms over HTTP.

use latchkey::domain::{AccessAuthorisation, Permission, Scope};
use latchkey::service::Operator;
use reqwest::header::AUTHORIZATION;
use reqwest::{Response, StatusCode};
use rstest::rstest;

use crate::helpers::{basic, expect_error, spawn_app, spawn_app_with, Backend, TestApp};
use crate::visitor::{Page, Visitor};

const PAGE: &str = "/admin/access";

/// A form's fields as sent.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// `GET /server/api/access/{id}` with the credential, from `from` when
/// given (as a trusted proxy reports it).
async fn use_access(app: &TestApp, id: &str, token: &str, from: Option<&str>) -> Response {
    let mut request = app
        .http
        .get(app.url(&format!("/server/api/access/{id}")))
        .header(AUTHORIZATION, basic(id, token));
    if let Some(address) = from {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap()
}

async fn stored(app: &TestApp) -> Vec<AccessAuthorisation> {
    app.service
        .accesses(&Operator::at_the_command_line())
        .await
        .unwrap()
}

/// Creates one through the dialog; the answer to the POST and the page after it.
async fn create(admin: &Visitor, fields: &[(&str, &str)]) -> (Page, Page) {
    let answer = admin.submit(PAGE, PAGE, fields).await;
    answer.assert_redirect(PAGE);
    let page = admin.get(PAGE).await;
    (answer, page)
}

/// The id and token the page shows once.
fn shown(page: &Page) -> (String, String) {
    (
        page.text_of("shown-access-id").expect("id shown"),
        page.text_of("shown-token").expect("token shown"),
    )
}

fn proxied(config: &mut latchkey::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_creates_one_and_its_token_is_shown_once(#[case] backend: Backend) {
    let app = spawn_app_with(backend, proxied).await;
    let (admin, _) = Visitor::admin(&app).await;
    let profile = admin.get("/settings/profile").await;
    assert!(profile.body.contains("href=\"/admin/accounts\""));
    let accounts = admin.get("/admin/accounts").await;
    assert!(accounts.body.contains("href=\"/admin/access\""));
    let empty = admin.get(PAGE).await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No API access authorisations yet."));
    assert!(empty
        .body
        .contains("<a href=\"/admin/access\" aria-current=\"page\">API access</a>"));

    let (answer, page) = create(
        &admin,
        &[
            ("name", "Time clock, hall 2"),
            ("description", "The terminal by the east door"),
            ("scope", "read"),
            ("expires", ""),
            ("idle_days", "30"),
            ("allowed_networks", "127.0.0.1/32, 10.0.0.0/8"),
            ("denied_networks", "10.9.0.0/16"),
        ],
    )
    .await;
    let (id, token) = shown(&page);
    assert!(token.starts_with("lks_"), "{token}");
    assert!(page
        .body
        .contains("API access “Time clock, hall 2” created."));
    assert!(page.body.contains("Shown only once — note it down now."));
    assert!(page
        .body
        .contains("<dialog id=\"shown-once\" class=\"reveal\" open"));
    assert_eq!(page.text_of("shown-header").unwrap(), basic(&id, &token));
    assert_eq!(page.headers["cache-control"], "no-store");

    // The token in exactly one answer: the page right after creating it.
    let list = admin.get(PAGE).await;
    for other in [&answer, &list] {
        assert!(!other.body.contains(&token));
        assert!(!other
            .headers
            .iter()
            .any(|(_, v)| v.to_str().is_ok_and(|v| v.contains(&token[4..]))));
    }
    assert!(answer.location().is_some_and(|l| !l.contains(&token[4..])));
    assert!(list.text_of("shown-token").is_none());
    for text in [
        "Time clock, hall 2",
        "The terminal by the east door",
        id.as_str(),
        "scope read",
        "no expiry",
        "expires after 30 days unused",
        "only from 10.0.0.0/8, 127.0.0.1/32",
        "never from 10.9.0.0/16",
        "by admin@example.org",
    ] {
        assert!(list.body.contains(text), "{text} missing: {}", list.body);
    }
    assert!(list
        .body
        .contains("<td data-label=\"State\" class=\"access-state\">active</td>"));

    let all = stored(&app).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].limits.scope, Scope::Read);
    assert_eq!(all[0].limits.idle_expiry_days, Some(30));

    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );
    expect_error(
        use_access(&app, &id, &token, Some("192.0.2.7")).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;
    expect_error(
        use_access(&app, &id, &token, Some("10.9.1.1")).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;
    assert_eq!(
        use_access(&app, &id, &token, Some("10.1.2.3"))
            .await
            .status(),
        StatusCode::OK
    );
    app.service.flush_last_used().await.unwrap();
    let used = admin.get(PAGE).await;
    assert!(used.body.contains("from 10.1.2.3"), "{}", used.body);
    assert!(used.body.contains("latchkey-tests/1.0"));
    assert!(used.body.contains("last addresses: 10.1.2.3, 127.0.0.1"));
    assert!(!used.body.contains(&token));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn regenerate_disable_enable_limits_and_delete(#[case] backend: Backend) {
    let app = spawn_app_with(backend, proxied).await;
    let (admin, _) = Visitor::admin(&app).await;
    let (_, page) = create(&admin, &[("name", "Door terminal")]).await;
    let (id, old) = shown(&page);
    let (_, other_page) = create(&admin, &[("name", "Other service")]).await;
    let (other_id, other_token) = shown(&other_page);

    // Regenerate, keeping the old token for 10 minutes.
    let page = admin
        .act(
            PAGE,
            &format!("/admin/access/{id}/token"),
            &[("grace_seconds", "600"), ("expires", "")],
        )
        .await;
    assert_eq!(page.text_of("shown-access-id").unwrap(), id);
    let new = page.text_of("shown-token").unwrap();
    assert_ne!(new, old);
    assert!(page.body.contains("the old one still works until"));
    for token in [&old, &new] {
        assert_eq!(
            use_access(&app, &id, token, None).await.status(),
            StatusCode::OK
        );
    }
    let list = admin.get(PAGE).await;
    assert!(list.body.contains("old token works until"));
    assert!(!list.body.contains(&new) && !list.body.contains(&old));
    // End now.
    let page = admin
        .act(PAGE, &format!("/admin/access/{id}/previous-token/end"), &[])
        .await;
    assert!(page
        .body
        .contains("The old token of “Door terminal” no longer works."));
    assert!(!page.body.contains("old token works until"));
    assert_eq!(
        use_access(&app, &id, &old, None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Disable: refused everywhere, kept; enable again.
    let page = admin
        .act(
            PAGE,
            &format!("/admin/access/{id}/enabled"),
            &[("enabled", "false")],
        )
        .await;
    assert!(page.body.contains("disabled: it is refused everywhere"));
    assert!(page.body.contains(&format!("id=\"enable-{id}\"")));
    assert!(page
        .body
        .contains("<strong class=\"disabled\">disabled</strong>"));
    expect_error(
        use_access(&app, &id, &new, None).await,
        StatusCode::FORBIDDEN,
        "access_disabled",
    )
    .await;
    assert_eq!(
        use_access(&app, &other_id, &other_token, None)
            .await
            .status(),
        StatusCode::OK
    );
    let page = admin
        .act(
            PAGE,
            &format!("/admin/access/{id}/enabled"),
            &[("enabled", "true")],
        )
        .await;
    assert!(page.body.contains("API access “Door terminal” enabled."));
    assert_eq!(
        use_access(&app, &id, &new, None).await.status(),
        StatusCode::OK
    );

    // Edit limits: only from a network the test client is outside of.
    let dialog = admin.get(&format!("/admin/access/{id}/limits")).await;
    assert_eq!(dialog.status, StatusCode::OK);
    assert!(dialog.body.contains(&format!(
        "<dialog id=\"limits-{id}\" aria-labelledby=\"limits-{id}-title\" open"
    )));
    let page = admin
        .act(
            PAGE,
            &format!("/admin/access/{id}/limits"),
            &[
                ("scope", "full"),
                ("expires", "2099-12-31"),
                ("idle_days", ""),
                ("allowed_networks", "192.0.2.0/24"),
                ("denied_networks", ""),
            ],
        )
        .await;
    assert!(page
        .body
        .contains("The limits of “Door terminal” have been changed."));
    assert!(page.body.contains("only from 192.0.2.0/24"));
    assert!(page
        .body
        .contains("expires <span class=\"when\">2100-01-01 00:00 UTC</span>"));
    // Shown in its dialog as the day it is valid through.
    assert!(page.body.contains("value=\"2099-12-31\""));
    expect_error(
        use_access(&app, &id, &new, None).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;
    assert_eq!(
        use_access(&app, &id, &new, Some("192.0.2.50"))
            .await
            .status(),
        StatusCode::OK
    );

    // Delete, after its confirmation dialog.
    let confirm = admin.get(&format!("/admin/access/{id}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains(&format!(
        "<dialog id=\"delete-{id}\" aria-labelledby=\"delete-{id}-title\" open"
    )));
    let page = admin
        .act(PAGE, &format!("/admin/access/{id}/delete"), &[])
        .await;
    assert!(page.body.contains("“Door terminal” has been deleted"));
    assert!(!page.body.contains(&format!("access-{id}")));
    assert_eq!(
        use_access(&app, &id, &new, Some("192.0.2.50"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stored(&app).await.len(), 1);
    for path in ["token", "limits", "delete"] {
        let gone = admin.get(&format!("/admin/access/{id}/{path}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{path}");
    }
    let gone = admin
        .submit(PAGE, &format!("/admin/access/{id}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// The dialogs' own addresses, for browsers without the script.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn each_dialog_has_its_own_address(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let page = admin.get("/admin/access/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("<dialog id=\"new-access\" aria-labelledby=\"new-access-title\" open"));
    let (_, page) = create(&admin, &[("name", "Terminal"), ("idle_days", "7")]).await;
    let (id, _) = shown(&page);
    let page = admin.get(&format!("/admin/access/{id}/token")).await;
    assert!(page.body.contains(&format!(
        "<dialog id=\"regen-{id}\" aria-labelledby=\"regen-{id}-title\" open"
    )));
    assert!(!page
        .body
        .contains("<dialog id=\"new-access\" aria-labelledby=\"new-access-title\" open"));
    let page = admin.get(&format!("/admin/access/{id}/limits")).await;
    assert!(page.body.contains(&format!(
        "id=\"limits-{id}-idle\" name=\"idle_days\" type=\"number\" min=\"1\" max=\"3650\" value=\"7\""
    )));
    for bad in ["not-an-id", "0", "%3Cscript%3E"] {
        let page = admin.get(&format!("/admin/access/{bad}/limits")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn forms_without_the_sessions_token_change_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let (_, page) = create(&admin, &[("name", "Terminal")]).await;
    let (id, token) = shown(&page);
    app.create_member("member@example.org").await;
    let other = Visitor::signed_in(&app, "member@example.org").await;
    let foreign = other.get("/settings/profile").await.csrf();

    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (PAGE.into(), vec![("name", "planted")]),
        (
            format!("/admin/access/{id}/token"),
            vec![("grace_seconds", "0")],
        ),
        (format!("/admin/access/{id}/previous-token/end"), vec![]),
        (
            format!("/admin/access/{id}/enabled"),
            vec![("enabled", "false")],
        ),
        (
            format!("/admin/access/{id}/limits"),
            vec![("allowed_networks", "192.0.2.0/24")],
        ),
        (format!("/admin/access/{id}/delete"), vec![]),
    ];
    for (path, fields) in &posts {
        let without = admin.post(path, fields).await;
        assert_eq!(without.status, StatusCode::FORBIDDEN, "{path}");
        assert!(without.body.contains("Form refused"));
        let mut with_foreign = vec![("csrf", foreign.as_str())];
        with_foreign.extend_from_slice(fields);
        let page = admin.post(path, &with_foreign).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    let all = stored(&app).await;
    assert_eq!(all.len(), 1);
    assert!(all[0].enabled);
    assert!(all[0].limits.allowed_networks.is_empty());
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn only_administrators_get_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let (_, page) = create(&admin, &[("name", "Terminal")]).await;
    let (id, token) = shown(&page);
    app.create_account("member@example.org", &[Permission::Synchronisation])
        .await;
    let member = Visitor::signed_in(&app, "member@example.org").await;
    assert!(!member
        .get("/settings/profile")
        .await
        .body
        .contains("href=\"/admin/access\""));
    for path in [
        PAGE.to_owned(),
        "/admin/access/new".to_owned(),
        format!("/admin/access/{id}/token"),
        format!("/admin/access/{id}/limits"),
        format!("/admin/access/{id}/delete"),
    ] {
        let page = member.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Administrators only"));
    }
    for (path, fields) in [
        (PAGE.to_owned(), vec![("name", "planted")]),
        (
            format!("/admin/access/{id}/enabled"),
            vec![("enabled", "false")],
        ),
        (format!("/admin/access/{id}/token"), vec![]),
        (format!("/admin/access/{id}/delete"), vec![]),
    ] {
        let page = member.submit("/settings/profile", &path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Administrators only"));
        assert!(!page.body.contains("lks_"));
    }
    let all = stored(&app).await;
    assert_eq!(all.len(), 1);
    assert!(all[0].enabled);
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );
    Visitor::new(&app)
        .get(PAGE)
        .await
        .assert_redirect("/sign-in?next=%2Fadmin%2Faccess");
    // An API access credential is no way into the pages either.
    let page = app
        .http
        .get(app.url(PAGE))
        .header(AUTHORIZATION, basic(&id, &token))
        .send()
        .await
        .unwrap();
    // (This client follows the redirect.)
    assert_eq!(page.url().path(), "/sign-in");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_input_is_a_form_error_and_writes_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let cases: [(Fields, &str, &str); 8] = [
        (&[("name", "")], "access-name", "name"),
        (&[("name", "   ")], "access-name", "name"),
        (
            &[
                ("name", "T"),
                ("allowed_networks", "10.0.0.0/8, 300.1.2.3/8"),
            ],
            "access-allowed",
            "300.1.2.3/8",
        ),
        (
            &[("name", "T"), ("denied_networks", "not-a-network")],
            "access-denied",
            "not-a-network",
        ),
        (
            &[("name", "T"), ("expires", "2020-01-01")],
            "access-expires",
            "The expiry must be in the future.",
        ),
        (
            &[("name", "T"), ("expires", "soon")],
            "access-expires",
            "RFC 3339",
        ),
        (
            &[("name", "T"), ("idle_days", "0")],
            "access-idle",
            "between 1 and 3650",
        ),
        (
            &[("name", "T"), ("scope", "root")],
            "access-scope",
            "Unknown scope",
        ),
    ];
    for (fields, field, says) in cases {
        let page = admin.submit(PAGE, PAGE, fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let error = page
            .field_error(field)
            .unwrap_or_else(|| panic!("no error at {field}: {}", page.body));
        assert!(error.contains(says), "{fields:?}: {error}");
        // The dialog arrives open, with what was typed.
        assert!(page
            .body
            .contains("<dialog id=\"new-access\" aria-labelledby=\"new-access-title\" open"));
        if let Some((_, typed)) = fields.iter().find(|(name, _)| name.ends_with("networks")) {
            assert!(page.body.contains(&format!("value=\"{typed}\"")), "{typed}");
        }
    }
    let page = admin
        .submit(PAGE, PAGE, &[("name", "T"), ("idle_days", "many")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error("access-idle").is_some());
    assert!(stored(&app).await.is_empty());

    // On a row: its own dialog comes back open with the error; nothing changes.
    let (_, page) = create(&admin, &[("name", "Terminal")]).await;
    let (id, token) = shown(&page);
    let page = admin
        .submit(
            PAGE,
            &format!("/admin/access/{id}/limits"),
            &[("scope", "full"), ("allowed_networks", "10.0.0.0/33")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page
        .field_error(&format!("limits-{id}-allowed"))
        .is_some_and(|e| e.contains("10.0.0.0/33")));
    assert!(page.body.contains("value=\"10.0.0.0/33\""));
    assert!(page.body.contains(&format!(
        "<dialog id=\"limits-{id}\" aria-labelledby=\"limits-{id}-title\" open"
    )));
    let page = admin
        .submit(
            PAGE,
            &format!("/admin/access/{id}/token"),
            &[("grace_seconds", "0"), ("expires", "2020-01-01")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page
        .field_error(&format!("regen-expires-{id}"))
        .is_some_and(|e| e.contains("in the future")));
    assert!(page.text_of("shown-token").is_none());
    let page = admin
        .submit(
            PAGE,
            &format!("/admin/access/{id}/token"),
            &[("grace_seconds", "999999")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.field_error(&format!("grace-{id}")).is_some());
    let page = admin
        .submit(
            PAGE,
            &format!("/admin/access/{id}/enabled"),
            &[("enabled", "perhaps")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let all = stored(&app).await;
    assert_eq!(all.len(), 1);
    assert!(all[0].enabled);
    assert!(all[0].limits.allowed_networks.is_empty());
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn hostile_names_are_text(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let xss = "<script>alert(1)</script>";
    let (_, page) = create(&admin, &[("name", xss), ("description", xss)]).await;
    assert!(!page.body.contains(xss));
    assert!(page
        .body
        .contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
}
