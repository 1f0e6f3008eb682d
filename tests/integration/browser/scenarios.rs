//! The five scenarios, each in its own Chromium.

use std::path::PathBuf;

use fantoccini::key::Key;
use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;

use crate::driver::{available, Browser, Driver};
use crate::helpers::{spawn_app, Backend, DeviceCredentials, TestApp, PASSWORD};

const MEMBER: &str = "member@example.org";

/// Signs in and opens Personal settings → Devices, as a person would: by
/// following the tab.
async fn to_devices_tab(browser: &Browser, app: &TestApp) {
    browser.sign_in(&app.base_url, MEMBER, PASSWORD).await;
    assert_eq!(browser.path().await, "/settings/profile");
    browser
        .click_to_load("nav.tabs a[href='/settings/devices']")
        .await;
    assert_eq!(browser.path().await, "/settings/devices");
}

/// A member signed in on the Devices tab in a fresh Chromium (whose driver
/// must be kept alive); `None` when the browser tests are skipped.
async fn member_on_devices_tab(backend: Backend, test: &str) -> Option<(TestApp, Driver, Browser)> {
    if !available(test) {
        return None;
    }
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    to_devices_tab(&browser, &app).await;
    Some((app, driver, browser))
}

/// New device password → name → Save; returns what the dialog shows.
async fn create_device(browser: &Browser, name: &str) -> DeviceCredentials {
    browser.click("#new-device-button").await;
    browser.fill("#device-name", name).await;
    browser
        .click_to_load("#new-device button.primary[type='submit']")
        .await;
    let id = browser.text("#shown-once #shown-device-id").await;
    let token = browser.text("#shown-once #shown-password").await;
    assert!(browser
        .text("#shown-once")
        .await
        .contains("Shown only once — note it down now."));
    browser.click("#shown-once button.primary").await;
    DeviceCredentials { id, token }
}

/// Opens a row's confirm dialog and confirms it.
async fn confirm_row_action(browser: &Browser, dialog: &str) {
    browser.click(&format!("a[data-open='{dialog}']")).await;
    let dialog_text = browser.text(&format!("#{dialog}")).await;
    assert!(!dialog_text.is_empty());
    browser
        .click_to_load(&format!("#{dialog} button[type='submit']"))
        .await;
}

/// For a person to look at: `target/screenshots/NAME`.
async fn save_screenshot(browser: &Browser, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn s1_a_member_creates_a_device_password_and_it_works(#[case] backend: Backend) {
    let Some((app, _driver, browser)) = member_on_devices_tab(backend, "s1").await else {
        return;
    };

    browser.click("#new-device-button").await;
    browser
        .fill("#device-name", "Accounting import script")
        .await;
    browser
        .click_to_load("#new-device button.primary[type='submit']")
        .await;
    let id = browser.text("#shown-once #shown-device-id").await;
    let token = browser.text("#shown-once #shown-password").await;
    let header = browser.text("#shown-once #shown-header").await;
    assert!(browser
        .text("#shown-once")
        .await
        .contains("Shown only once — note it down now."));
    save_screenshot(&browser, "devices-shown-once.png").await;

    let device = DeviceCredentials {
        id: id.clone(),
        token: token.clone(),
    };
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    assert_eq!(header, crate::helpers::basic(&id, &token));

    browser.client.refresh().await.unwrap();
    let source = browser.source().await;
    assert!(source.contains(&id), "the device is listed");
    assert!(source.contains("Accounting import script"));
    assert!(!source.contains(&token), "the password is shown once only");
    assert!(!source.contains(&token[4..]));
    assert!(!browser.has("#shown-once").await);

    // The same tab at phone width, for a person to look at.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.click("a[data-open^='delete-']").await;
    save_screenshot(&browser, "devices-phone.png").await;
    browser.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn s2_change_password_kills_the_old_one(#[case] backend: Backend) {
    let Some((app, _driver, browser)) = member_on_devices_tab(backend, "s2").await else {
        return;
    };
    let old = create_device(&browser, "Accounting import script").await;

    confirm_row_action(&browser, &format!("regen-{}", old.id)).await;
    assert_eq!(browser.text("#shown-once #shown-device-id").await, old.id);
    let new = DeviceCredentials {
        id: old.id.clone(),
        token: browser.text("#shown-once #shown-password").await,
    };
    assert_ne!(new.token, old.token);
    assert_eq!(
        app.get_own_device(&old).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get_own_device(&new).await.status(), StatusCode::OK);
    browser.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn s3_delete_revokes_exactly_that_device(#[case] backend: Backend) {
    let Some((app, _driver, browser)) = member_on_devices_tab(backend, "s3").await else {
        return;
    };
    let doomed = create_device(&browser, "Accounting import script").await;
    let kept = create_device(&browser, "Calendar on the phone").await;

    let dialog = format!("delete-{}", doomed.id);
    browser.click(&format!("a[data-open='{dialog}']")).await;
    assert!(browser
        .text(&format!("#{dialog}"))
        .await
        .contains("Delete “Accounting import script”?"));
    browser
        .click_to_load(&format!("#{dialog} button[type='submit']"))
        .await;
    assert!(browser
        .text("p.flash")
        .await
        .contains("“Accounting import script” has been deleted"));

    assert_eq!(
        app.get_own_device(&doomed).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get_own_device(&kept).await.status(), StatusCode::OK);
    browser.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn s4_an_administrator_grants_the_permission_and_the_tab_appears(#[case] backend: Backend) {
    if !available("s4") {
        return;
    }
    let app = spawn_app(backend).await;
    let member = app.create_account(MEMBER, &[]).await;
    app.create_account("admin@example.org", &[Permission::Admin])
        .await;
    let driver = Driver::start().await;
    let person = driver.browser().await;
    person.sign_in(&app.base_url, MEMBER, PASSWORD).await;
    assert_eq!(person.path().await, "/settings/profile");
    assert!(!person.has("nav.tabs a[href='/settings/devices']").await);
    assert!(person
        .text("#ask-admin")
        .await
        .contains("ask your administrator to grant you the Synchronisation permission"));

    let admin = driver.browser().await;
    admin
        .sign_in(&app.base_url, "admin@example.org", PASSWORD)
        .await;
    admin
        .click_to_load("nav.main-nav a[href='/admin/accounts']")
        .await;
    admin.fill("#q", "member").await;
    admin
        .click_to_load("form.search button[type='submit']")
        .await;
    admin
        .click_to_load(&format!("a[href='/admin/accounts/{}']", member.id.0))
        .await;
    save_screenshot(&admin, "admin-account.png").await;
    admin.click_to_load("#grant-synchronisation").await;
    assert!(admin
        .text("p.flash")
        .await
        .contains("now has the synchronisation permission"));

    person.client.refresh().await.unwrap();
    assert!(person.has("nav.tabs a[href='/settings/devices']").await);
    assert!(!person.has("#ask-admin").await);
    person
        .click_to_load("nav.tabs a[href='/settings/devices']")
        .await;
    assert_eq!(person.path().await, "/settings/devices");
    admin.close().await;
    person.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn s5_wrong_passwords_and_forged_forms_are_refused(#[case] backend: Backend) {
    if !available("s5") {
        return;
    }
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser
        .sign_in(&app.base_url, MEMBER, "not my password")
        .await;
    assert_eq!(browser.path().await, "/sign-in");
    assert_eq!(
        browser.text("#sign-in-error").await,
        "The email address or password is wrong."
    );
    save_screenshot(&browser, "sign-in-error.png").await;

    browser.sign_in(&app.base_url, MEMBER, PASSWORD).await;
    assert_eq!(browser.path().await, "/settings/profile");
    // A form posted to the server without the token, as another site's
    // page (or a stripped copy of ours) would send it.
    browser.leaving().await;
    browser
        .client
        .execute(
            "const form = document.createElement('form');
             form.method = 'post';
             form.action = '/settings/profile/name';
             const name = document.createElement('input');
             name.name = 'name';
             name.value = 'Forged';
             form.appendChild(name);
             document.body.appendChild(form);
             form.submit();",
            vec![],
        )
        .await
        .unwrap();
    browser.arrived().await;
    assert_eq!(browser.text("h1").await, "Form refused");
    let account = app.account_by_email(MEMBER).await.unwrap();
    assert_eq!(account.name, "member");
    browser.close().await;
}

/// Not one of the five: the main path by keyboard alone.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_devices_tab_works_by_keyboard(#[case] backend: Backend) {
    let Some((_app, _driver, browser)) = member_on_devices_tab(backend, "keyboard").await else {
        return;
    };
    let mut found = false;
    for _ in 0..40 {
        browser.press(&Key::Tab).await;
        if browser.focused_id().await == "new-device-button" {
            found = true;
            break;
        }
    }
    assert!(found, "Tab never reaches New device password");
    browser.press(&Key::Enter).await;
    assert_eq!(
        browser.focused_id().await,
        "device-name",
        "the dialog takes the focus"
    );
    browser.leaving().await;
    browser
        .press(&(String::from("Keyboard script") + &Key::Enter))
        .await;
    browser.arrived().await;
    assert!(browser
        .text("#shown-once #shown-password")
        .await
        .starts_with("lkd_"));
    browser.press(&Key::Escape).await;
    assert!(!browser
        .element("#shown-once")
        .await
        .is_displayed()
        .await
        .unwrap());
    browser.close().await;
}

/// Not one of the five: with the script, the dialogs' links open
/// them in place; a dialog's own address, opened directly (a new tab, a
/// reload), shows it modal, and closing it puts the tab's address back.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn with_the_script_dialogs_open_in_place(#[case] backend: Backend) {
    let Some((app, _driver, browser)) = member_on_devices_tab(backend, "in_place").await else {
        return;
    };
    let device = create_device(&browser, "Accounting import script").await;
    let modal = "return [...document.querySelectorAll('dialog:modal')].map(d => d.id);";

    browser.click("#new-device-button").await;
    assert_eq!(
        browser.script(modal).await,
        serde_json::json!(["new-device"])
    );
    assert_eq!(browser.path().await, "/settings/devices");
    browser.click("#new-device a[data-close]").await;
    assert_eq!(browser.script(modal).await, serde_json::json!([]));
    browser.wait_for_path("/settings/devices").await;

    let delete = format!("delete-{}", device.id);
    browser
        .open(&format!(
            "{}/settings/devices/{}/delete",
            app.base_url, device.id
        ))
        .await;
    assert_eq!(browser.script(modal).await, serde_json::json!([delete]));
    assert_eq!(
        browser.path().await,
        format!("/settings/devices/{}/delete", device.id)
    );
    browser.press(&Key::Escape).await;
    assert_eq!(browser.script(modal).await, serde_json::json!([]));
    browser.wait_for_path("/settings/devices").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    browser.close().await;
}
