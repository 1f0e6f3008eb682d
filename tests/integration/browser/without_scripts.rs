//! The article's whole Devices flow in a Chromium that runs no page script:
//! every dialog is reached by its link, confirmed or cancelled, and the
//! password shown once is closed, all without `app.js`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use rstest::rstest;

use crate::driver::{available, Browser, Driver};
use crate::helpers::{spawn_app, Backend, DeviceCredentials, TestApp, PASSWORD};

const MEMBER: &str = "member@example.org";

/// What only `app.js` would have done to the page: a dialog made modal, a
/// Copy button saying "Copied". Both stay undone when no script runs.
async fn assert_no_script_ran(browser: &Browser) {
    let modal = browser
        .script("return document.querySelectorAll('dialog:modal').length;")
        .await;
    assert_eq!(modal, 0, "a dialog was made modal: app.js ran");
}

/// Follows a link and checks where it led.
async fn follow(browser: &Browser, css: &str, to: &str) {
    browser.click_to_load(css).await;
    assert_eq!(browser.path().await, to, "after {css}");
}

/// The dialog open as the page arrived, and the only one.
async fn assert_only_open_dialog(browser: &Browser, id: &str) {
    let open = browser
        .script("return [...document.querySelectorAll('dialog[open]')].map(d => d.id);")
        .await;
    assert_eq!(open, serde_json::json!([id]));
    assert!(browser
        .element(&format!("#{id}"))
        .await
        .is_displayed()
        .await
        .unwrap());
}

/// Reads the dialog shown once, checks its Copy button is dead without the
/// script, and closes it with its own button.
async fn read_and_close_shown_once(browser: &Browser) -> DeviceCredentials {
    assert_only_open_dialog(browser, "shown-once").await;
    assert!(browser
        .text("#shown-once")
        .await
        .contains("Shown only once — note it down now."));
    let shown = DeviceCredentials {
        id: browser.text("#shown-once #shown-device-id").await,
        token: browser.text("#shown-once #shown-password").await,
    };
    browser
        .click("#shown-once button[data-copy='shown-password']")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        browser
            .text("#shown-once button[data-copy='shown-password']")
            .await,
        "Copy",
        "the copy button reacted: app.js ran"
    );
    assert_no_script_ran(browser).await;

    let here = browser.path().await;
    browser.click("#shown-once button.primary").await;
    assert!(
        !browser
            .element("#shown-once")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "the shown-once dialog does not close"
    );
    assert_eq!(browser.path().await, here);
    shown
}

/// For a person to look at: `target/screenshots/NAME`.
async fn save_screenshot(browser: &Browser, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), browser.client.screenshot().await.unwrap()).unwrap();
}

async fn device_status(app: &TestApp, device: &DeviceCredentials) -> StatusCode {
    app.get_own_device(device).await.status()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_whole_devices_flow_works_without_javascript(#[case] backend: Backend) {
    if !available("the_whole_devices_flow_works_without_javascript") {
        return;
    }
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser_without_scripts().await;

    browser.sign_in(&app.base_url, MEMBER, PASSWORD).await;
    assert_eq!(browser.path().await, "/settings/profile");
    follow(
        &browser,
        "nav.tabs a[href='/settings/devices']",
        "/settings/devices",
    )
    .await;
    assert!(!browser.has("dialog[open]").await);

    // New device password: the link leads to the tab with the dialog open
    // (where the script would have opened it in place), focus in the name.
    follow(&browser, "#new-device-button", "/settings/devices/new").await;
    assert_only_open_dialog(&browser, "new-device").await;
    assert_no_script_ran(&browser).await;
    assert_eq!(browser.focused_id().await, "device-name");
    // Cancel leads back to the tab, nothing created.
    follow(&browser, "#new-device a[data-close]", "/settings/devices").await;
    assert!(!browser.has("dialog[open]").await);
    assert!(app.devices(None).await.unwrap().is_empty());

    follow(&browser, "#new-device-button", "/settings/devices/new").await;
    browser
        .fill("#device-name", "Accounting import script")
        .await;
    follow(
        &browser,
        "#new-device button.primary[type='submit']",
        "/settings/devices",
    )
    .await;
    save_screenshot(&browser, "devices-shown-once-without-script.png").await;
    let old = read_and_close_shown_once(&browser).await;
    assert_eq!(browser.text("td code.device-id").await, old.id);
    assert_eq!(
        browser.text("td.device-name").await,
        "Accounting import script"
    );
    assert_eq!(device_status(&app, &old).await, StatusCode::OK);

    // Change password, first cancelled, then confirmed.
    let regen = format!("regen-{}", old.id);
    let regen_page = format!("/settings/devices/{}/password", old.id);
    follow(&browser, &format!("a[data-open='{regen}']"), &regen_page).await;
    assert_only_open_dialog(&browser, &regen).await;
    follow(
        &browser,
        &format!("#{regen} a[data-close]"),
        "/settings/devices",
    )
    .await;
    assert_eq!(device_status(&app, &old).await, StatusCode::OK);
    follow(&browser, &format!("a[data-open='{regen}']"), &regen_page).await;
    follow(
        &browser,
        &format!("#{regen} button[type='submit']"),
        "/settings/devices",
    )
    .await;
    let new = read_and_close_shown_once(&browser).await;
    assert_eq!(new.id, old.id);
    assert_ne!(new.token, old.token);
    assert_eq!(device_status(&app, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(device_status(&app, &new).await, StatusCode::OK);

    // Delete, first cancelled, then confirmed.
    let delete = format!("delete-{}", new.id);
    let delete_page = format!("/settings/devices/{}/delete", new.id);
    follow(&browser, &format!("a[data-open='{delete}']"), &delete_page).await;
    assert_only_open_dialog(&browser, &delete).await;
    follow(
        &browser,
        &format!("#{delete} a[data-close]"),
        "/settings/devices",
    )
    .await;
    assert_eq!(device_status(&app, &new).await, StatusCode::OK);
    follow(&browser, &format!("a[data-open='{delete}']"), &delete_page).await;
    save_screenshot(&browser, "devices-delete-without-script.png").await;
    assert!(browser
        .text(&format!("#{delete}"))
        .await
        .contains("Delete “Accounting import script”?"));
    follow(
        &browser,
        &format!("#{delete} button[type='submit']"),
        "/settings/devices",
    )
    .await;
    assert!(browser
        .text("p.flash")
        .await
        .contains("“Accounting import script” has been deleted"));
    assert_eq!(device_status(&app, &new).await, StatusCode::UNAUTHORIZED);
    assert!(!browser.has("td code.device-id").await);
    assert!(browser
        .text("p.empty")
        .await
        .contains("No device passwords yet."));
    assert_no_script_ran(&browser).await;
    browser.close().await;
}
