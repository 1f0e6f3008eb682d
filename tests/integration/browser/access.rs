//! The API access scenario in Chromium: an administrator makes
//! "Time clock, hall 2" with an allowed network, reads the id and token off
//! the page, uses them, disables it and sees it refused, enables it again.
//! Then the same dialogs once more without any page script.

use latchkey::domain::Permission;
use reqwest::header::AUTHORIZATION;
use reqwest::{Response, StatusCode};
use rstest::rstest;

use crate::driver::{available, Browser, Driver};
use crate::helpers::{basic, expect_error, spawn_app_with, Backend, TestApp, PASSWORD};

const ADMIN: &str = "admin@example.org";

/// The service's start-up check, from `from` when given: the app trusts
/// loopback as a proxy, so a request can say it comes from elsewhere.
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

async fn admin_app(backend: Backend) -> TestApp {
    let app = spawn_app_with(backend, |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_account(ADMIN, &[Permission::Admin]).await;
    app
}

/// Signs in and follows Administration → API access, as a person would.
async fn to_access_page(browser: &Browser, app: &TestApp) {
    browser.sign_in(&app.base_url, ADMIN, PASSWORD).await;
    browser
        .click_to_load("nav.main-nav a[href='/admin/accounts']")
        .await;
    browser
        .click_to_load("nav.tabs a[href='/admin/access']")
        .await;
    assert_eq!(browser.path().await, "/admin/access");
}

/// For a person to look at: `target/screenshots/NAME`.
async fn save_screenshot(browser: &Browser, name: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = browser.client.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// Reads the id and token the dialog shows once, then closes it.
async fn read_shown_once(browser: &Browser) -> (String, String) {
    assert!(browser
        .text("#shown-once")
        .await
        .contains("Shown only once — note it down now."));
    let id = browser.text("#shown-once #shown-access-id").await;
    let token = browser.text("#shown-once #shown-token").await;
    browser.click("#shown-once button.primary").await;
    (id, token)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_administrator_makes_a_time_clock_credential_and_controls_it(#[case] backend: Backend) {
    if !available("api access") {
        return;
    }
    let app = admin_app(backend).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    to_access_page(&browser, &app).await;

    browser.click("#new-access-button").await;
    let modal = browser
        .script("return document.querySelector('#new-access').matches(':modal');")
        .await;
    assert_eq!(modal, true, "the script opens the dialog in place");
    browser.fill("#access-name", "Time clock, hall 2").await;
    browser
        .fill("#access-description", "By the east door")
        .await;
    browser.fill("#access-allowed", "127.0.0.1/32").await;
    browser
        .click_to_load("#new-access button.primary[type='submit']")
        .await;
    save_screenshot(&browser, "admin-access-shown-once.png").await;
    let (id, token) = read_shown_once(&browser).await;
    assert!(token.starts_with("lks_"), "{token}");

    // From the allowed network (the test client is on loopback): 200.
    let answer = use_access(&app, &id, &token, None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let resource: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(resource["name"], "Time clock, hall 2");
    assert_eq!(
        resource["allowedNetworks"],
        serde_json::json!(["127.0.0.1/32"])
    );
    // From outside it: refused.
    expect_error(
        use_access(&app, &id, &token, Some("192.0.2.7")).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;

    // Reloaded: listed, with its network, and the token is gone for good.
    browser.client.refresh().await.unwrap();
    let source = browser.source().await;
    assert!(source.contains("Time clock, hall 2"));
    assert!(source.contains("only from 127.0.0.1/32"));
    assert!(!source.contains(&token) && !source.contains(&token[4..]));
    assert!(!browser.has("#shown-once").await);
    save_screenshot(&browser, "admin-access.png").await;

    browser.click_to_load(&format!("#disable-{id}")).await;
    assert!(browser
        .text(&format!("#access-{id} .access-state"))
        .await
        .contains("disabled"));
    expect_error(
        use_access(&app, &id, &token, None).await,
        StatusCode::FORBIDDEN,
        "access_disabled",
    )
    .await;

    browser.click_to_load(&format!("#enable-{id}")).await;
    assert_eq!(
        browser.text(&format!("#access-{id} .access-state")).await,
        "active"
    );
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );
    browser.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_dialogs_work_without_scripts(#[case] backend: Backend) {
    if !available("api access without scripts") {
        return;
    }
    let app = admin_app(backend).await;
    let driver = Driver::start().await;
    let browser = driver.browser_without_scripts().await;
    to_access_page(&browser, &app).await;

    browser.click_to_load("#new-access-button").await;
    assert_eq!(browser.path().await, "/admin/access/new");
    browser.fill("#access-name", "Time clock, hall 2").await;
    browser.fill("#access-allowed", "10.0.0.0/8").await;
    browser
        .click_to_load("#new-access button.primary[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/admin/access");
    let (id, token) = read_shown_once(&browser).await;
    expect_error(
        use_access(&app, &id, &token, None).await,
        StatusCode::FORBIDDEN,
        "address_not_allowed",
    )
    .await;

    // Edit limits, by its link: allow loopback instead.
    browser
        .click_to_load(&format!("a[data-open='limits-{id}']"))
        .await;
    assert_eq!(browser.path().await, format!("/admin/access/{id}/limits"));
    browser
        .fill(&format!("#limits-{id}-allowed"), "127.0.0.0/8")
        .await;
    browser
        .click_to_load(&format!("#limits-{id} button.primary[type='submit']"))
        .await;
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::OK
    );

    // Delete, confirmed in its dialog.
    browser
        .click_to_load(&format!("a[data-open='delete-{id}']"))
        .await;
    assert_eq!(browser.path().await, format!("/admin/access/{id}/delete"));
    browser
        .click_to_load(&format!("#delete-{id} button[type='submit']"))
        .await;
    assert!(browser.source().await.contains("has been deleted"));
    assert_eq!(
        use_access(&app, &id, &token, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    browser.close().await;
}
