//! The main-password rules on every web form that sets one, the operator's
//! minimum, and old passwords that break today's rules still signing in.

use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use crate::helpers::{breaking_each_rule, spawn_app, spawn_app_with, Backend, OPERATOR, PASSWORD};
use crate::visitor::Visitor;
use latchkey::domain::PasswordPolicy;
use latchkey::service::ServiceError;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn changing_ones_own_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let form = visitor.get("/settings/profile").await;
    assert!(
        form.body.contains("At least 12 characters;"),
        "{}",
        form.body
    );
    for (new, message) in breaking_each_rule("member") {
        let page = visitor
            .submit(
                "/settings/profile",
                "/settings/profile/password",
                &[("current", PASSWORD), ("new", &new), ("confirm", &new)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert_eq!(page.field_error("new").as_deref(), Some(message));
    }
    Visitor::assert_signs_in(&app, "member@example.org", PASSWORD).await;
    // Twelve characters, spaces and all, are enough.
    let new = "  twelve ch ";
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[("current", PASSWORD), ("new", new), ("confirm", new)],
        )
        .await
        .assert_redirect("/settings/profile");
    Visitor::assert_signs_in(&app, "member@example.org", new).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrators_reset(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let page = format!("/admin/accounts/{}", member.id.0);
    assert!(admin
        .get(&page)
        .await
        .body
        .contains("At least 12 characters;"));
    for (password, message) in breaking_each_rule("member") {
        let answer = admin
            .submit(
                &page,
                &format!("{page}/password"),
                &[("password", &password)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert_eq!(
            answer.field_error("reset-password").as_deref(),
            Some(message)
        );
    }
    Visitor::assert_signs_in(&app, "member@example.org", PASSWORD).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_new_accounts_first_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    for (password, message) in breaking_each_rule("newbie") {
        let answer = admin
            .submit(
                "/admin/accounts/new",
                "/admin/accounts",
                &[("email", "Newbie@example.org"), ("password", &password)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert_eq!(answer.field_error("password").as_deref(), Some(message));
        assert!(answer.body.contains("At least 12 characters;"));
    }
    assert!(app.account_by_email("newbie@example.org").await.is_err());
}

/// What the web shows is the service's refusal; each rule has its code.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn each_rule_has_a_stable_code(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let codes = [
        "password_too_short",
        "password_too_long",
        "password_too_common",
        "password_contains_email",
    ];
    for ((password, message), want) in breaking_each_rule("member").into_iter().zip(codes) {
        match app.set_password("member@example.org", &password).await {
            Err(ServiceError::Invalid { code, message: got }) => {
                assert_eq!((code, got.as_str()), (want, message));
            }
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_operator_may_ask_for_longer_passwords(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.password_policy = PasswordPolicy::with_min_chars(16).unwrap();
    })
    .await;
    let member = app.create_member("member@example.org").await;
    let (admin, _) = Visitor::admin(&app).await;
    let page = format!("/admin/accounts/{}", member.id.0);
    let answer = admin
        .submit(
            &page,
            &format!("{page}/password"),
            &[("password", "fifteen letters")],
        )
        .await;
    assert_eq!(
        answer.field_error("reset-password").as_deref(),
        Some("The password must have at least 16 characters.")
    );
    assert!(answer.body.contains("At least 16 characters;"));
    admin
        .submit(
            &page,
            &format!("{page}/password"),
            &[("password", "sixteen letters!")],
        )
        .await
        .assert_redirect(&page);
    Visitor::assert_signs_in(&app, "member@example.org", "sixteen letters!").await;
    // Generated ones are long enough whatever the minimum.
    let (_, generated) = app
        .service
        .reset_password(&OPERATOR, member.id, None)
        .await
        .unwrap();
    assert!(generated.unwrap().expose().chars().count() >= 20);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn passwords_set_under_older_rules_keep_working(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    for old in ["short", "passwordpassword", "member12345678"] {
        app.set_legacy_password("member@example.org", old).await;
        Visitor::assert_signs_in(&app, "member@example.org", old).await;
        let response = app
            .post_device(
                &json!({"email": "member@example.org", "password": old, "deviceName": old}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{old}");
    }
    // And its owner can move on to one that passes, with the old one as
    // the current password.
    let visitor = Visitor::new(&app);
    visitor
        .sign_in_as("member@example.org", "member12345678")
        .await;
    let new = "a much better main password";
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[
                ("current", "member12345678"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await
        .assert_redirect("/settings/profile");
    Visitor::assert_signs_in(&app, "member@example.org", new).await;
}
