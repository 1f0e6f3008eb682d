//! Every dialog of the Devices tab and of an account's administration page
//! has its own address, which answers with the page and that dialog open,
//! so a browser that runs no script can reach, confirm and cancel each one.

use reqwest::StatusCode;
use rstest::rstest;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::visitor::{Page, Visitor};

const MEMBER: &str = "member@example.org";

/// The ids of the dialogs a page arrives with open.
fn open_dialogs(page: &Page) -> Vec<String> {
    page.body
        .split("<dialog ")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let id = tag.strip_prefix("id=\"")?;
            let id = &id[..id.find('"')?];
            tag.contains(" open").then(|| id.to_owned())
        })
        .collect()
}

/// The markup of one dialog.
fn dialog<'a>(page: &'a Page, id: &str) -> &'a str {
    let start = page
        .body
        .find(&format!("<dialog id=\"{id}\""))
        .unwrap_or_else(|| panic!("no dialog {id}: {}", page.body));
    let end = page.body[start..].find("</dialog>").unwrap() + start;
    &page.body[start..end]
}

/// The page at `path`, answered with exactly the dialog `id` open, whose
/// form posts to `action` with the session's CSRF token and whose Cancel
/// is a link to `back`.
async fn assert_dialog_page(visitor: &Visitor, path: &str, id: &str, action: &str, back: &str) {
    let page = visitor.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    assert_eq!(open_dialogs(&page), [id], "{path}");
    let markup = dialog(&page, id);
    assert!(
        markup.contains(&format!("<form method=\"post\" action=\"{action}\"")),
        "{markup}"
    );
    assert!(
        markup.contains(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            page.csrf()
        )),
        "{markup}"
    );
    assert!(
        markup.contains(&format!("<a class=\"button\" href=\"{back}\" data-close")),
        "{markup}"
    );
    assert!(markup.contains(" autofocus"), "{markup}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn each_devices_dialog_has_its_own_page(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let visitor = Visitor::signed_in(&app, MEMBER).await;
    let (id, _) = visitor.create_device("laptop").await;

    let tab = visitor.get("/settings/devices").await;
    assert!(open_dialogs(&tab).is_empty());
    for link in [
        "href=\"/settings/devices/new\" data-open=\"new-device\"".to_owned(),
        format!("href=\"/settings/devices/{id}/password\" data-open=\"regen-{id}\""),
        format!("href=\"/settings/devices/{id}/delete\" data-open=\"delete-{id}\""),
    ] {
        assert!(tab.body.contains(&link), "{link}");
    }

    assert_dialog_page(
        &visitor,
        "/settings/devices/new",
        "new-device",
        "/settings/devices",
        "/settings/devices",
    )
    .await;
    assert_dialog_page(
        &visitor,
        &format!("/settings/devices/{id}/password"),
        &format!("regen-{id}"),
        &format!("/settings/devices/{id}/password"),
        "/settings/devices",
    )
    .await;
    assert_dialog_page(
        &visitor,
        &format!("/settings/devices/{id}/delete"),
        &format!("delete-{id}"),
        &format!("/settings/devices/{id}/delete"),
        "/settings/devices",
    )
    .await;

    // The forms on those pages do what the tab's do.
    visitor
        .submit(
            "/settings/devices/new",
            "/settings/devices",
            &[("name", "phone")],
        )
        .await
        .assert_redirect("/settings/devices");
    // What is shown once waits for the tab: a dialog page opened first
    // neither shows it nor uses it up.
    let regen_page = format!("/settings/devices/{id}/password");
    let confirm = visitor.get(&regen_page).await;
    assert_eq!(open_dialogs(&confirm), [format!("regen-{id}")]);
    assert!(confirm.text_of("shown-password").is_none());
    assert!(!confirm.body.contains("Device password “phone” created."));
    let shown = visitor.get("/settings/devices").await;
    assert_eq!(open_dialogs(&shown), ["shown-once"]);
    assert!(shown.text_of("shown-password").is_some());
    // Its Close needs no script either: a form the browser itself handles.
    assert!(dialog(&shown, "shown-once").contains("<form method=\"dialog\""));

    visitor
        .submit(&regen_page, &regen_page, &[])
        .await
        .assert_redirect("/settings/devices");
    assert_eq!(
        visitor
            .get("/settings/devices")
            .await
            .text_of("shown-device-id"),
        Some(id.clone())
    );
    let delete_page = format!("/settings/devices/{id}/delete");
    visitor
        .submit(&delete_page, &delete_page, &[])
        .await
        .assert_redirect("/settings/devices");
    assert!(visitor
        .get("/settings/devices")
        .await
        .body
        .contains("“laptop” has been deleted"));
    assert_eq!(
        visitor.get(&delete_page).await.status,
        StatusCode::NOT_FOUND
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn dialog_pages_are_only_for_ones_own_devices(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("alice@example.org").await;
    app.create_member("mallory@example.org").await;
    app.create_account("reader@example.org", &[]).await;
    let alice = Visitor::signed_in(&app, "alice@example.org").await;
    let (id, _) = alice.create_device("alice's phone").await;

    let mallory = Visitor::signed_in(&app, "mallory@example.org").await;
    for action in ["password", "delete"] {
        let page = mallory
            .get(&format!("/settings/devices/{id}/{action}"))
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
        assert!(!page.body.contains("alice's phone"), "{action}");
        for bad in ["not-a-device", "0", "%3Cscript%3E"] {
            let page = mallory
                .get(&format!("/settings/devices/{bad}/{action}"))
                .await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}/{action}");
        }
    }

    let reader = Visitor::signed_in(&app, "reader@example.org").await;
    for path in [
        "/settings/devices/new".to_owned(),
        format!("/settings/devices/{id}/delete"),
    ] {
        assert_eq!(reader.get(&path).await.status, StatusCode::FORBIDDEN);
    }

    let stranger = Visitor::new(&app);
    for (path, next) in [
        (
            "/settings/devices/new".to_owned(),
            "%2Fsettings%2Fdevices%2Fnew".to_owned(),
        ),
        (
            format!("/settings/devices/{id}/password"),
            format!("%2Fsettings%2Fdevices%2F{id}%2Fpassword"),
        ),
        (
            format!("/settings/devices/{id}/delete"),
            format!("%2Fsettings%2Fdevices%2F{id}%2Fdelete"),
        ),
    ] {
        stranger
            .get(&path)
            .await
            .assert_redirect(&format!("/sign-in?next={next}"));
    }
}

async fn member_with_device(app: &TestApp) -> (i64, String) {
    let member = app.create_member(MEMBER).await;
    let device = app.create_device(MEMBER, "phone").await;
    (member.id.0, device.id)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_accounts_dialogs_work_without_scripts(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let (member, device) = member_with_device(&app).await;
    let account = format!("/admin/accounts/{member}");
    let delete_page = format!("{account}/devices/{device}/delete");

    let page = admin.get(&account).await;
    assert!(open_dialogs(&page).is_empty());
    assert!(page.body.contains(&format!(
        "href=\"{delete_page}\" data-open=\"delete-{device}\""
    )));
    // Administration has no Change password for devices.
    assert!(!page.body.contains(&format!("regen-{device}")));
    assert_dialog_page(
        &admin,
        &delete_page,
        &format!("delete-{device}"),
        &delete_page,
        &account,
    )
    .await;

    // Reset main password and Delete account are plain forms on the page;
    // the generated password arrives in an open dialog that closes itself.
    admin
        .submit(&account, &format!("{account}/password"), &[])
        .await
        .assert_redirect(&account);
    let shown = admin.get(&account).await;
    assert_eq!(open_dialogs(&shown), ["shown-once"]);
    assert!(dialog(&shown, "shown-once").contains("<form method=\"dialog\""));

    admin
        .submit(&delete_page, &delete_page, &[])
        .await
        .assert_redirect(&account);
    assert!(admin
        .get(&account)
        .await
        .body
        .contains("“phone” has been deleted"));
    assert!(app
        .devices(None)
        .await
        .unwrap()
        .iter()
        .all(|d| d.id.to_string() != device));
    assert_eq!(admin.get(&delete_page).await.status, StatusCode::NOT_FOUND);

    admin
        .submit(
            &account,
            &format!("{account}/delete"),
            &[("confirm", MEMBER)],
        )
        .await
        .assert_redirect("/admin/accounts");
    assert_eq!(admin.get(&account).await.status, StatusCode::NOT_FOUND);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_accounts_dialog_pages_are_for_administrators_and_that_accounts_devices(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (admin, admin_account) = Visitor::admin(&app).await;
    let (member, device) = member_with_device(&app).await;
    let other = app.create_member("other@example.org").await;
    let delete_page = format!("/admin/accounts/{member}/devices/{device}/delete");

    // Someone else's device under this account, or no such account: 404.
    for path in [
        format!("/admin/accounts/{}/devices/{device}/delete", other.id.0),
        format!(
            "/admin/accounts/{}/devices/{device}/delete",
            admin_account.id.0
        ),
        format!("/admin/accounts/999999/devices/{device}/delete"),
        format!("/admin/accounts/{member}/devices/0/delete"),
        format!("/admin/accounts/not-a-number/devices/{device}/delete"),
    ] {
        assert_eq!(
            admin.get(&path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    let member_visitor = Visitor::signed_in(&app, MEMBER).await;
    assert_eq!(
        member_visitor.get(&delete_page).await.status,
        StatusCode::FORBIDDEN
    );
    Visitor::new(&app)
        .get(&delete_page)
        .await
        .assert_redirect(&format!(
            "/sign-in?next=%2Fadmin%2Faccounts%2F{member}%2Fdevices%2F{device}%2Fdelete"
        ));
    assert_eq!(app.devices(None).await.unwrap().len(), 1);
}
