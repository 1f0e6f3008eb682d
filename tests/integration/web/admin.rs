//! Administration pages.

use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, Backend};
use crate::visitor::Visitor;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn only_administrators_get_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    assert!(!visitor
        .get("/settings/profile")
        .await
        .body
        .contains("href=\"/admin/accounts\""));
    let id = member.id.0;
    for path in [
        "/admin/accounts".to_owned(),
        "/admin/accounts/new".to_owned(),
        format!("/admin/accounts/{id}"),
    ] {
        let page = visitor.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Administrators only"));
    }
    let page = visitor
        .submit(
            "/settings/profile",
            &format!("/admin/accounts/{id}/permissions"),
            &[("permission", "admin"), ("granted", "true")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!app
        .account(member.id)
        .await
        .unwrap()
        .permissions
        .contains(Permission::Admin));
    // Signed out: to the sign-in page.
    Visitor::new(&app)
        .get("/admin/accounts")
        .await
        .assert_redirect("/sign-in?next=%2Fadmin%2Faccounts");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn list_search_and_create(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    app.create_member("alice@example.org").await;
    app.create_device("alice@example.org", "phone").await;
    app.create_device("alice@example.org", "laptop").await;
    app.create_member("bob@example.org").await;
    assert!(admin
        .get("/settings/profile")
        .await
        .body
        .contains("href=\"/admin/accounts\""));

    let page = admin.get("/admin/accounts").await;
    assert_eq!(page.status, StatusCode::OK);
    for email in ["admin@example.org", "alice@example.org", "bob@example.org"] {
        assert!(page.body.contains(email));
    }
    assert!(page.body.contains("<td data-label=\"Devices\">2</td>"));
    assert!(page
        .body
        .contains("<td data-label=\"Permissions\">synchronisation</td>"));
    let page = admin.get("/admin/accounts?q=ALI").await;
    assert!(page.body.contains("alice@example.org") && !page.body.contains("bob@example.org"));
    assert!(admin
        .get("/admin/accounts?q=nobody")
        .await
        .body
        .contains("No account matches."));

    // A generated first password, shown once on the new account's page.
    let answer = admin
        .submit(
            "/admin/accounts/new",
            "/admin/accounts",
            &[
                ("email", "Carol@Example.org"),
                ("name", "Carol"),
                ("password", ""),
                ("synchronisation", "on"),
            ],
        )
        .await;
    let carol = app.account_by_email("carol@example.org").await.unwrap();
    answer.assert_redirect(&format!("/admin/accounts/{}", carol.id.0));
    assert_eq!(carol.name, "Carol");
    assert!(carol.permissions.contains(Permission::Synchronisation));
    let page = admin.get(&format!("/admin/accounts/{}", carol.id.0)).await;
    assert!(page.body.contains("Account carol@example.org created."));
    let password = page.text_of("shown-password").unwrap();
    assert!(admin
        .get(&format!("/admin/accounts/{}", carol.id.0))
        .await
        .text_of("shown-password")
        .is_none());
    Visitor::assert_signs_in(&app, "carol@example.org", &password).await;

    // Or a password the administrator chose: nothing to show.
    admin
        .submit(
            "/admin/accounts/new",
            "/admin/accounts",
            &[
                ("email", "dave@example.org"),
                ("password", "the chosen first password"),
            ],
        )
        .await;
    let dave = app.account_by_email("dave@example.org").await.unwrap();
    assert!(admin
        .get(&format!("/admin/accounts/{}", dave.id.0))
        .await
        .text_of("shown-password")
        .is_none());
    Visitor::assert_signs_in(&app, "dave@example.org", "the chosen first password").await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn grant_revoke_disable_and_revoke_devices(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_account("member@example.org", &[]).await;
    let page = format!("/admin/accounts/{}", member.id.0);
    let permissions = format!("{page}/permissions");

    assert!(admin
        .act(
            &page,
            &permissions,
            &[("permission", "synchronisation"), ("granted", "true")],
        )
        .await
        .body
        .contains("member@example.org now has the synchronisation permission."));
    let device = app.create_device("member@example.org", "phone").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    admin
        .submit(&page, &format!("{page}/enabled"), &[("enabled", "false")])
        .await
        .assert_redirect(&page);
    assert_eq!(
        app.get_own_device(&device).await.status(),
        StatusCode::FORBIDDEN
    );
    admin
        .submit(&page, &format!("{page}/enabled"), &[("enabled", "true")])
        .await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    admin
        .submit(&page, &format!("{page}/devices/{}/delete", device.id), &[])
        .await
        .assert_redirect(&page);
    assert_eq!(
        app.get_own_device(&device).await.status(),
        StatusCode::UNAUTHORIZED
    );

    admin
        .submit(
            &page,
            &permissions,
            &[("permission", "admin"), ("granted", "true")],
        )
        .await;
    assert!(app
        .account(member.id)
        .await
        .unwrap()
        .permissions
        .contains(Permission::Admin));

    let bad = admin
        .submit(
            &page,
            &permissions,
            &[("permission", "root"), ("granted", "true")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = admin.get("/admin/accounts/999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let malformed = admin.get("/admin/accounts/not-a-number").await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_last_administrator_cannot_lock_everyone_out(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = Visitor::admin(&app).await;
    let other = app.create_account("other@example.org", &[]).await;
    let page = format!("/admin/accounts/{}", me.id.0);

    let answer = admin
        .submit(
            &page,
            &format!("{page}/permissions"),
            &[("permission", "admin"), ("granted", "false")],
        )
        .await;
    answer.assert_redirect(&page);
    assert!(admin
        .get(&page)
        .await
        .body
        .contains("You are the only enabled administrator."));
    assert!(admin
        .act(&page, &format!("{page}/enabled"), &[("enabled", "false")])
        .await
        .body
        .contains("You are the only enabled administrator."));
    let me_now = app.account(me.id).await.unwrap();
    assert!(me_now.enabled && me_now.permissions.contains(Permission::Admin));
    assert!(admin.is_signed_in().await);

    // With a second administrator, giving it up is fine.
    app.set_permission("other@example.org", Permission::Admin, true)
        .await
        .unwrap();
    admin
        .submit(
            &page,
            &format!("{page}/permissions"),
            &[("permission", "admin"), ("granted", "false")],
        )
        .await
        .assert_redirect("/settings/profile");
    assert!(!app
        .account(me.id)
        .await
        .unwrap()
        .permissions
        .contains(Permission::Admin));
    assert_eq!(admin.get(&page).await.status, StatusCode::FORBIDDEN);
    let _ = other;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_changes_their_own_password_in_the_profile(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = Visitor::admin(&app).await;
    let page = format!("/admin/accounts/{}", me.id.0);
    assert!(!admin.get(&page).await.body.contains("Reset main password"));
    assert!(admin
        .act(&page, &format!("{page}/password"), &[("password", "")])
        .await
        .body
        .contains("use Personal settings, Profile"));
    assert!(admin.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_account_page_states_what_the_account_may_do_in_words(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let page = format!("/admin/accounts/{}", member.id.0);

    let before = admin.get(&page).await;
    assert_eq!(
        before.text_of("account-permissions").as_deref(),
        Some("Synchronisation: may use device passwords; cannot administer.")
    );
    assert_eq!(before.text_of("account-two-factor").as_deref(), Some("off"));
    assert_eq!(before.text_of("account-devices").as_deref(), Some("0"));
    assert!(before
        .text_of("account-last-sign-in")
        .unwrap()
        .starts_with("not signed in now"));

    app.create_device("member@example.org", "phone").await;
    Visitor::signed_in(&app, "member@example.org").await;
    let after = admin.get(&page).await;
    assert_eq!(after.text_of("account-devices").as_deref(), Some("1"));
    assert!(after
        .text_of("account-last-sign-in")
        .unwrap()
        .ends_with("UTC (1 web session open)"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn deleting_an_account_revokes_everything_it_had(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, me) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "phone").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let session = Visitor::signed_in(&app, "member@example.org").await;
    let page = format!("/admin/accounts/{}", member.id.0);
    let action = format!("{page}/delete");

    // Without the typed confirmation nothing happens.
    let unconfirmed = admin
        .submit(&page, &action, &[("confirm", "someone@else.org")])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed
        .field_error("delete-confirm")
        .unwrap()
        .contains("member@example.org"));
    assert!(app.account(member.id).await.is_ok());

    admin
        .submit(&page, &action, &[("confirm", "Member@Example.org")])
        .await
        .assert_redirect("/admin/accounts");
    assert!(app.account(member.id).await.is_err());
    assert_eq!(
        app.get_own_device(&device).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(!session.is_signed_in().await);
    assert!(admin
        .get("/admin/accounts")
        .await
        .body
        .contains("Account member@example.org deleted"));

    // One's own account is not deleted from here.
    let own = format!("/admin/accounts/{}", me.id.0);
    assert!(!admin.get(&own).await.body.contains("id=\"delete-account\""));
    admin
        .submit(
            &own,
            &format!("{own}/delete"),
            &[("confirm", "admin@example.org")],
        )
        .await
        .assert_redirect(&own);
    assert!(app.account(me.id).await.is_ok());
}
