//! Every form's validation: the message next to the field, a 422, the
//! other input kept, and nothing half-written.

use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, Backend, PASSWORD};
use crate::visitor::Visitor;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn profile_name(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let too_long = "x".repeat(101);
    for (name, message) in [
        ("", "The name is empty."),
        ("   ", "The name is empty."),
        ("tab\there", "The name contains a control character."),
        (too_long.as_str(), "The name is longer than 100 characters."),
    ] {
        let page = visitor
            .submit(
                "/settings/profile",
                "/settings/profile/name",
                &[("name", name)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert_eq!(page.field_error("name").as_deref(), Some(message));
    }
    assert_eq!(app.account(account.id).await.unwrap().name, "member");
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/name",
            &[("name", "  Ada Lovelace ")],
        )
        .await
        .assert_redirect("/settings/profile");
    let page = visitor.get("/settings/profile").await;
    assert!(page.body.contains("Your name has been changed."));
    assert!(page.body.contains("value=\"Ada Lovelace\""));
    assert_eq!(app.account(account.id).await.unwrap().name, "Ada Lovelace");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn profile_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let cases: [(&str, &str, &str, &str, &str); 4] = [
        (
            "",
            "a good new password",
            "a good new password",
            "current",
            "Enter your current main password.",
        ),
        (
            "wrong password",
            "a good new password",
            "a good new password",
            "current",
            "This is not your current main password.",
        ),
        (
            PASSWORD,
            "a good new password",
            "a different one",
            "confirm",
            "The two new passwords are not the same.",
        ),
        (
            PASSWORD,
            "short",
            "short",
            "new",
            "The password must have at least 12 characters.",
        ),
    ];
    for (current, new, confirm, field, message) in cases {
        let page = visitor
            .submit(
                "/settings/profile",
                "/settings/profile/password",
                &[("current", current), ("new", new), ("confirm", confirm)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(page.field_error(field).as_deref(), Some(message));
        // Password fields never come back filled in.
        for secret in [current, new, confirm]
            .into_iter()
            .filter(|s| !s.is_empty())
        {
            assert!(!page.body.contains(&format!("value=\"{secret}\"")));
        }
    }
    // The old password still works: nothing was changed.
    Visitor::assert_signs_in(&app, "member@example.org", PASSWORD).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn new_device(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let too_long = "é".repeat(101);
    for (name, message) in [
        ("", "The device name is empty."),
        ("new\nline", "The device name contains a control character."),
        (
            "evil\u{202E}gnp.exe",
            "The device name contains a control character.",
        ),
        (
            too_long.as_str(),
            "The device name is longer than 100 characters.",
        ),
    ] {
        let page = visitor
            .submit(
                "/settings/devices",
                "/settings/devices",
                &[("name", name), ("device_type", "ios")],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert_eq!(page.field_error("device-name").as_deref(), Some(message));
        // The dialog opens again, with the chosen type kept.
        assert!(page.body.contains("data-show-on-load"));
        assert!(page.body.contains("<option value=\"ios\" selected>"));
    }
    assert!(app.devices(Some(account.id)).await.unwrap().is_empty());
    // An unknown type is stored as "unknown", like over the API.
    visitor.create_device_typed("tool", "toaster").await;
    let devices = app.devices(Some(account.id)).await.unwrap();
    assert_eq!(&*devices[0].device_type, "unknown");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn new_account(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    app.create_member("taken@example.org").await;
    let cases = [
        ("", "", "", "email", "The email address is empty."),
        (
            "not-an-email",
            "",
            "",
            "email",
            "The email address has no '@'.",
        ),
        (
            "Taken@example.org",
            "",
            "",
            "email",
            "An account with the email address taken@example.org already exists.",
        ),
        (
            "new@example.org",
            "bad\u{7}name",
            "",
            "name",
            "The name contains a control character.",
        ),
        (
            "new@example.org",
            "",
            "short",
            "password",
            "The password must have at least 12 characters.",
        ),
    ];
    for (email, name, password, field, message) in cases {
        let page = admin
            .submit(
                "/admin/accounts/new",
                "/admin/accounts",
                &[
                    ("email", email),
                    ("name", name),
                    ("password", password),
                    ("admin", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{email:?}");
        assert_eq!(
            page.field_error(field).as_deref(),
            Some(message),
            "{email:?}"
        );
        assert!(page.body.contains("name=\"admin\" value=\"on\" checked"));
        assert!(page
            .body
            .contains(&format!("name=\"email\" type=\"email\" value=\"{email}\"")));
        // What was typed comes back, escaped.
        assert!(!page
            .body
            .contains("name=\"synchronisation\" value=\"on\" checked"));
    }
    assert_eq!(app.accounts().await.unwrap().len(), 2);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn admin_reset_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let page = format!("/admin/accounts/{}", member.id.0);
    let answer = admin
        .submit(&page, &format!("{page}/password"), &[("password", "short")])
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.field_error("reset-password").as_deref(),
        Some("The password must have at least 12 characters.")
    );
    Visitor::signed_in(&app, "member@example.org").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn malformed_bodies_get_a_clear_refusal_never_a_server_error(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = Visitor::admin(&app).await;
    let csrf = admin.get("/settings/profile").await.csrf();
    let id = me.id.0;
    let routes = [
        "/sign-in".to_owned(),
        "/settings/profile/name".to_owned(),
        "/settings/profile/password".to_owned(),
        "/settings/devices".to_owned(),
        "/settings/devices/123/password".to_owned(),
        "/settings/security/sessions/abc/sign-out".to_owned(),
        "/admin/accounts".to_owned(),
        format!("/admin/accounts/{id}/permissions"),
        format!("/admin/accounts/{id}/enabled"),
        format!("/admin/accounts/{id}/password"),
        // Last: it ends the session the others use.
        "/sign-out".to_owned(),
    ];
    let big = "x".repeat(20_000);
    let bodies: Vec<Vec<u8>> = vec![
        format!("csrf={csrf}&granted=maybe&enabled=perhaps&permission=").into_bytes(),
        format!("csrf={csrf}&name=%FF%FE").into_bytes(),
        format!("csrf={csrf}&%%%=&&==").into_bytes(),
        b"\xff\xfe\x00garbage".to_vec(),
        format!("csrf={csrf}&name={big}").into_bytes(),
    ];
    // Without a session, and with the administrator's.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for route in &routes {
        for body in &bodies {
            for who in [&client, admin.http()] {
                let response = who
                    .post(app.url(route))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(
                    status.is_client_error() || status.is_redirection(),
                    "{route}: {status}"
                );
            }
        }
    }
}
