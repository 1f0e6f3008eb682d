//! Session rules: timeouts, and the events that end sessions.

use std::time::Duration;

use latchkey::credential::{CsrfSecret, SessionKey};
use latchkey::domain::{SessionPolicy, Timestamp};
use latchkey::store::NewSession;
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::visitor::Visitor;
use crate::writes::AutoCommit;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_idle_session_ends(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.sessions = SessionPolicy {
            idle: Duration::from_millis(700),
            absolute: Duration::from_secs(3600),
        }
    })
    .await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    // Activity keeps it alive past the idle limit...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(visitor.is_signed_in().await);
    }
    // ...silence does not.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_busy_session_still_ends_at_its_absolute_limit(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.sessions = SessionPolicy {
            idle: Duration::from_secs(3600),
            absolute: Duration::from_millis(1200),
        }
    })
    .await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    assert!(visitor.is_signed_in().await);
    let mut alive = true;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        alive = visitor.is_signed_in().await;
        if !alive {
            break;
        }
    }
    assert!(!alive, "the session outlived its absolute limit");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn changing_the_main_password_signs_out_the_other_sessions_only(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "script").await;
    let laptop = Visitor::signed_in(&app, "member@example.org").await;
    let phone = Visitor::signed_in(&app, "member@example.org").await;

    let page = laptop
        .submit(
            "/settings/profile",
            "/settings/profile/password",
            &[
                ("current", PASSWORD),
                ("new", "a brand new main password"),
                ("confirm", "a brand new main password"),
            ],
        )
        .await;
    page.assert_redirect("/settings/profile");
    assert!(laptop
        .get("/settings/profile")
        .await
        .body
        .contains("other web sessions have been signed out"));
    assert!(laptop.is_signed_in().await);
    assert!(!phone.is_signed_in().await);
    // Device passwords are untouched: that is the point of them.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    // The new password is the one that works now.
    let visitor = crate::visitor::Visitor::new(&app);
    assert_eq!(
        visitor
            .sign_in_as("member@example.org", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    Visitor::assert_signs_in(&app, "member@example.org", "a brand new main password").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabling_an_account_ends_its_sessions(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    app.set_enabled("member@example.org", false).await.unwrap();
    assert!(!visitor.is_signed_in().await);
    // Enabling it again does not bring the session back.
    app.set_enabled("member@example.org", true).await.unwrap();
    assert!(!visitor.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_disabled_account_is_refused_even_if_its_session_row_survived(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    // Disabling ends the sessions in the same commit; a row written
    // afterwards (an old node, a restored backup) must still not let in.
    app.set_enabled("member@example.org", false).await.unwrap();
    let key = SessionKey::generate();
    app.service
        .store()
        .create_session(&NewSession {
            digest: key.digest(),
            account_id: account.id,
            csrf: CsrfSecret::generate(),
            created_at: Timestamp::now(),
            ip: None,
            user_agent: None,
        })
        .await
        .unwrap();
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/settings/profile"))
        .header("Cookie", format!("latchkey_session={}", key.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(answer.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/sign-in"));
    // And the row is gone: the check ended it.
    assert!(app.sessions_of(account.id).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_resetting_a_password_signs_out_every_session(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let page = format!("/admin/accounts/{}", member.id.0);
    admin
        .submit(&page, &format!("{page}/password"), &[("password", "")])
        .await
        .assert_redirect(&page);
    let shown = admin.get(&page).await;
    let password = shown.text_of("shown-password").unwrap();
    assert_eq!(password.len(), 20);
    assert!(admin.get(&page).await.text_of("shown-password").is_none());
    assert!(!visitor.is_signed_in().await);
    Visitor::assert_signs_in(&app, "member@example.org", &password).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_security_tab_lists_sessions_and_signs_them_out(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let account = app.create_member("member@example.org").await;
    let laptop = Visitor::signed_in(&app, "member@example.org").await;
    let phone = Visitor::signed_in(&app, "member@example.org").await;
    let tablet = Visitor::signed_in(&app, "member@example.org").await;

    let page = laptop.get("/settings/security").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page
        .body
        .contains("Two-factor authentication is <strong>off</strong>"));
    assert_eq!(page.body.matches("latchkey-web-tests/1.0").count(), 3);
    assert_eq!(
        page.body.matches("class=\"badge\">this session<").count(),
        1
    );

    let sessions = app.sessions_of(account.id).await.unwrap();
    // Sign out one particular other session: the phone's, the second to sign in.
    let mut ids: Vec<i64> = sessions.iter().map(|s| s.id.0).collect();
    ids.sort();
    let phones = ids[1];
    laptop
        .submit(
            "/settings/security",
            &format!("/settings/security/sessions/{phones}/sign-out"),
            &[],
        )
        .await
        .assert_redirect("/settings/security");
    assert!(!phone.is_signed_in().await);
    assert!(tablet.is_signed_in().await);

    assert!(laptop
        .act(
            "/settings/security",
            "/settings/security/sign-out-others",
            &[],
        )
        .await
        .body
        .contains("1 other session has been signed out."));
    assert!(!tablet.is_signed_in().await);
    assert!(laptop.is_signed_in().await);

    // Someone else's session is not ours to end.
    app.create_member("other@example.org").await;
    let other = Visitor::signed_in(&app, "other@example.org").await;
    let theirs = app
        .sessions_of(app.account_by_email("other@example.org").await.unwrap().id)
        .await
        .unwrap()[0]
        .id
        .0;
    let page = laptop
        .submit(
            "/settings/security",
            &format!("/settings/security/sessions/{theirs}/sign-out"),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(other.is_signed_in().await);
}
