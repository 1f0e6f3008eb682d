//! The Devices tab: the article's main path, over HTTP.

use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{basic, spawn_app, Backend, DeviceCredentials};
use crate::visitor::Visitor;

const XSS: &str = "<script>alert(1)</script>";

fn credentials(id: &str, token: &str) -> DeviceCredentials {
    DeviceCredentials {
        id: id.to_owned(),
        token: token.to_owned(),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn new_device_password_is_shown_once_and_works(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let tab = visitor.get("/settings/devices").await;
    assert_eq!(tab.status, StatusCode::OK);
    assert!(tab.body.contains("No device passwords yet."));

    visitor
        .submit(
            "/settings/devices",
            "/settings/devices",
            &[
                ("name", "Accounting import script"),
                ("device_type", "script"),
            ],
        )
        .await
        .assert_redirect("/settings/devices");
    let page = visitor.get("/settings/devices").await;
    let id = page.text_of("shown-device-id").unwrap();
    let token = page.text_of("shown-password").unwrap();
    assert!(token.starts_with("lkd_"));
    assert!(page.body.contains("Shown only once — note it down now."));
    // Open as delivered: readable even where the script does not run.
    assert!(page
        .body
        .contains("<dialog id=\"shown-once\" class=\"reveal\" open"));
    let header = page.text_of("shown-header").unwrap();
    assert_eq!(header, basic(&id, &token));
    assert!(page.body.contains("Accounting import script"));
    assert!(page.body.contains("<td data-label=\"Type\">script</td>"));
    assert_eq!(page.headers["cache-control"], "no-store");

    let device = credentials(&id, &token);
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let again = visitor.get("/settings/devices").await;
    assert!(!again.body.contains(&token));
    assert!(!again.body.contains(&header));
    assert!(again.body.contains(&id));
    // Now used once: the table says when and from where.
    app.service.flush_last_used().await.unwrap();
    let used = visitor.get("/settings/devices").await;
    assert!(used.body.contains("from 127.0.0.1"), "{}", used.body);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn change_password_and_delete_act_on_one_device(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    let (id, old) = visitor.create_device("laptop").await;
    let (other_id, other_token) = visitor.create_device("phone").await;

    let page = visitor.change_device_password(&id).await;
    assert_eq!(page.text_of("shown-device-id").unwrap(), id);
    let new = page.text_of("shown-password").unwrap();
    assert_ne!(new, old);
    assert_eq!(
        app.get_own_device(&credentials(&id, &old)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_own_device(&credentials(&id, &new)).await.status(),
        StatusCode::OK
    );

    visitor
        .submit(
            "/settings/devices",
            &format!("/settings/devices/{id}/delete"),
            &[],
        )
        .await
        .assert_redirect("/settings/devices");
    let page = visitor.get("/settings/devices").await;
    assert!(page.body.contains("“laptop” has been deleted"));
    assert!(!page.body.contains(&id));
    assert_eq!(
        app.get_own_device(&credentials(&id, &new)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_own_device(&credentials(&other_id, &other_token))
            .await
            .status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn nobody_acts_on_someone_elses_device(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("alice@example.org").await;
    app.create_member("mallory@example.org").await;
    let alice = Visitor::signed_in(&app, "alice@example.org").await;
    let (id, token) = alice.create_device("alice's phone").await;
    let mallory = Visitor::signed_in(&app, "mallory@example.org").await;
    for action in ["password", "delete"] {
        let page = mallory
            .submit(
                "/settings/devices",
                &format!("/settings/devices/{id}/{action}"),
                &[],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
    }
    for bad in ["not-a-device", "0", "%3Cscript%3E"] {
        let page = mallory
            .submit(
                "/settings/devices",
                &format!("/settings/devices/{bad}/delete"),
                &[],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
    }
    assert_eq!(
        app.get_own_device(&credentials(&id, &token)).await.status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn without_the_permission_there_is_no_devices_tab(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_account("reader@example.org", &[]).await;
    let visitor = Visitor::signed_in(&app, "reader@example.org").await;
    let profile = visitor.get("/settings/profile").await;
    assert!(!profile.body.contains("href=\"/settings/devices\""));
    assert!(profile.body.contains(
        "ask your administrator to grant you the <strong>Synchronisation</strong> permission"
    ));
    let tab = visitor.get("/settings/devices").await;
    assert_eq!(tab.status, StatusCode::FORBIDDEN);
    assert!(tab.body.contains("Ask your administrator"));
    // Nor can a form create one behind the missing tab.
    let page = visitor
        .submit(
            "/settings/profile",
            "/settings/devices",
            &[("name", "sneaky")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let account = app.account_by_email("reader@example.org").await.unwrap();
    assert!(app.devices(Some(account.id)).await.unwrap().is_empty());

    app.set_permission("reader@example.org", Permission::Synchronisation, true)
        .await
        .unwrap();
    let profile = visitor.get("/settings/profile").await;
    assert!(profile.body.contains("href=\"/settings/devices\""));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_hostile_device_name_is_text_everywhere(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    visitor.create_device_typed(XSS, "").await;
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";

    // The page right after Save: flash, shown-once dialog, table, both confirm dialogs.
    let page = visitor.get("/settings/devices").await;
    let id = page.text_of("shown-device-id").unwrap();
    assert!(!page.body.contains(XSS), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("Device password “{escaped}” created.")));
    assert!(page
        .body
        .contains(&format!("Device password for “{escaped}”")));
    assert!(page.body.contains(&format!(
        "<td data-label=\"Name\" class=\"device-name\">{escaped}</td>"
    )));
    assert!(page
        .body
        .contains(&format!("Change the password of “{escaped}”?")));
    assert!(page.body.contains(&format!("Delete “{escaped}”?")));

    let page = visitor.change_device_password(&id).await;
    assert!(!page.body.contains(XSS));
    assert!(page
        .body
        .contains(&format!("The password of “{escaped}” has been changed")));

    let page = admin.get(&format!("/admin/accounts/{}", member.id.0)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(XSS));
    assert!(page.body.contains(&format!("Delete “{escaped}”?")));
    admin
        .submit(
            &format!("/admin/accounts/{}", member.id.0),
            &format!("/admin/accounts/{}/devices/{id}/delete", member.id.0),
            &[],
        )
        .await;
    let page = admin.get(&format!("/admin/accounts/{}", member.id.0)).await;
    assert!(!page.body.contains(XSS));
    assert!(page.body.contains(&format!("“{escaped}” has been deleted")));

    // A hostile display name and email-like input too.
    visitor
        .submit(
            "/settings/profile",
            "/settings/profile/name",
            &[("name", XSS)],
        )
        .await;
    for path in ["/settings/profile".to_owned(), "/admin/accounts".to_owned()] {
        let who = if path.starts_with("/admin") {
            &admin
        } else {
            &visitor
        };
        let page = who.get(&path).await;
        assert!(!page.body.contains(XSS), "{path}");
        assert!(page.body.contains(escaped), "{path}");
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn limits_are_set_shown_and_an_overlap_ended_in_the_tab(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let visitor = Visitor::signed_in(&app, "member@example.org").await;
    // Only administrators are offered the admin scope.
    let tab = visitor.get("/settings/devices").await;
    assert!(tab.body.contains("name=\"scope\""));
    assert!(!tab.body.contains("value=\"admin\""));
    visitor
        .submit(
            "/settings/devices",
            "/settings/devices",
            &[
                ("name", "Time clock"),
                ("scope", "read"),
                ("expires", "2999-12-31"),
                ("idle_days", "30"),
                ("allowed_networks", "127.0.0.0/8, 2001:db8::/32"),
                ("denied_networks", ""),
            ],
        )
        .await
        .assert_redirect("/settings/devices");
    let page = visitor.get("/settings/devices").await;
    let device = credentials(
        &page.text_of("shown-device-id").unwrap(),
        &page.text_of("shown-password").unwrap(),
    );
    assert!(page.body.contains("scope read"), "{}", page.body);
    assert!(page.body.contains("expires after 30 days unused"));
    assert!(page.body.contains("only from 127.0.0.0/8, 2001:db8::/32"));
    let devices = app.devices(None).await.unwrap();
    assert_eq!(
        devices[0].limits.expires_at.unwrap().to_rfc3339(),
        "3000-01-01T00:00:00.000Z"
    );
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    // A refused limit is said next to the form, nothing is created.
    let refused = visitor
        .submit(
            "/settings/devices",
            "/settings/devices",
            &[("name", "bad"), ("allowed_networks", "10.0.0.0/33")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.devices(None).await.unwrap().len(), 1);

    // Change password with an overlap: the row says until when, End now ends it.
    visitor
        .act(
            "/settings/devices",
            &format!("/settings/devices/{}/password", device.id),
            &[("grace_seconds", "3600"), ("expires", "")],
        )
        .await;
    let page = visitor.get("/settings/devices").await;
    assert!(
        page.body.contains("old password works until"),
        "{}",
        page.body
    );
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    visitor
        .act(
            "/settings/devices",
            &format!("/settings/devices/{}/previous-password/end", device.id),
            &[],
        )
        .await;
    assert_eq!(
        app.get_own_device(&device).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let page = visitor.get("/settings/devices").await;
    assert!(!page.body.contains("old password works until"));
}
