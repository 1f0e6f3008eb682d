//! App sign-in with a person in Chromium: the test plays the app over
//! HTTP, the person signs in and decides on the `/device` page.

use std::time::Duration;

use latchkey::domain::Clock;
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::{json, Value};

use crate::api::app_sign_in::{poll, start};
use crate::driver::{available, Driver};
use crate::helpers::{basic, expect_error, spawn_app, spawn_app_with, Backend, PASSWORD};
use crate::two_factor::totp::enrol;
use crate::visitor::Visitor;

const MEMBER: &str = "member@example.org";

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_app_signs_in_and_the_person_approves_in_the_browser(#[case] backend: Backend) {
    if !available("app sign-in approved") {
        return;
    }
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    // The app starts and shows the person its code and where to go.
    let started = start(&app, "Ann's calendar app").await;
    let complete = started.body["verificationUriComplete"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;

    // The person opens it, signs in first, and is brought back.
    browser.open(&complete).await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.fill("#email", MEMBER).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click_to_load("form[action='/sign-in'] button[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/device");
    assert_eq!(browser.text("#device-app-name").await, "Ann's calendar app");
    assert_eq!(browser.text("#device-user-code").await, started.user_code);
    assert_eq!(browser.text("#device-address").await, "127.0.0.1");
    assert_eq!(
        browser.text("#device-user-agent").await,
        "latchkey-tests/1.0"
    );
    browser.click_to_load("#approve-button").await;
    assert_eq!(browser.path().await, "/settings/devices");
    assert!(browser.text("main").await.contains("Ann's calendar app"));

    // The app collects its device password, once, and it works.
    let collected = poll(&app, &started.device_code).await;
    assert_eq!(collected.status(), StatusCode::OK);
    let device: Value = collected.json().await.unwrap();
    let (id, token) = (
        device["_id"].as_str().unwrap(),
        device["token"].as_str().unwrap(),
    );
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    let own = app
        .http
        .get(app.url(&format!("/server/api/device/{id}")))
        .header("authorization", basic(id, token))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    browser.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_denied_and_an_expired_request_get_their_errors(#[case] backend: Backend) {
    if !available("app sign-in denied or expired") {
        return;
    }
    let clock = Clock::adjustable();
    let app = spawn_app_with(backend, |config| config.clock = clock.clone()).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.sign_in(&app.base_url, MEMBER, PASSWORD).await;

    // Denied: the person types the code, in lower case, without the dash.
    let denied = start(&app, "Suspicious app").await;
    browser.open(&app.url("/device")).await;
    browser
        .fill(
            "#device-code",
            &denied.user_code.replace('-', "").to_lowercase(),
        )
        .await;
    browser.click_to_load("#device-continue").await;
    assert_eq!(browser.text("#device-app-name").await, "Suspicious app");
    browser.click_to_load("#deny-button").await;
    assert!(browser.text(".flash").await.contains("Denied"));
    expect_error(
        poll(&app, &denied.device_code).await,
        StatusCode::BAD_REQUEST,
        "access_denied",
    )
    .await;

    // Expired while the page was open: Approve says so, and makes nothing.
    let expired = start(&app, "Forgotten app").await;
    browser
        .open(expired.body["verificationUriComplete"].as_str().unwrap())
        .await;
    assert_eq!(browser.text("#device-app-name").await, "Forgotten app");
    clock.advance(Duration::from_secs(601));
    browser.click_to_load("#approve-button").await;
    assert!(browser.text("#device-code-error").await.contains("expired"));
    expect_error(
        poll(&app, &expired.device_code).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    assert!(app.devices(None).await.unwrap().is_empty());
    browser.close().await;
}

/// With two-factor authentication on, email and password alone make no
/// device password, but the app sign-in does: the person passes both steps
/// in the browser and is brought back to the request.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn an_app_signs_in_for_an_account_with_two_factor_authentication(#[case] backend: Backend) {
    if !available("app sign-in with two-factor authentication") {
        return;
    }
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = shared).await;
    app.create_member(MEMBER).await;
    let enrolled = enrol(&Visitor::signed_in(&app, MEMBER).await, &clock).await;

    // The right password alone is refused, pointing at the app sign-in.
    let refused = expect_error(
        app.post_device(&json!({"email": MEMBER, "password": PASSWORD, "deviceName": "phone"}))
            .await,
        StatusCode::FORBIDDEN,
        "two_factor_enabled",
    )
    .await;
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("app sign-in flow"), "{message}");
    assert!(app.devices(None).await.unwrap().is_empty());

    let started = start(&app, "Ann's calendar app").await;
    let complete = started.body["verificationUriComplete"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.open(&complete).await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.fill("#email", MEMBER).await;
    browser.fill("#password", PASSWORD).await;
    browser
        .click_to_load("form[action='/sign-in'] button[type='submit']")
        .await;
    // The second step, which the password alone does not get past.
    assert_eq!(browser.path().await, "/sign-in/code");
    assert!(browser.has("#code").await);
    browser.fill("#code", &enrolled.code(&clock)).await;
    browser
        .click_to_load("form[action='/sign-in/code'] button[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/device");
    assert_eq!(browser.text("#device-app-name").await, "Ann's calendar app");
    assert_eq!(browser.text("#device-user-code").await, started.user_code);
    browser.click_to_load("#approve-button").await;
    assert_eq!(browser.path().await, "/settings/devices");
    assert!(browser.text("main").await.contains("Ann's calendar app"));

    // The app collects its device password, once, and it works.
    let collected = poll(&app, &started.device_code).await;
    assert_eq!(collected.status(), StatusCode::OK);
    let device: Value = collected.json().await.unwrap();
    let (id, token) = (
        device["_id"].as_str().unwrap(),
        device["token"].as_str().unwrap(),
    );
    expect_error(
        poll(&app, &started.device_code).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    let own = app
        .http
        .get(app.url(&format!("/server/api/device/{id}")))
        .header("authorization", basic(id, token))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(app.devices(None).await.unwrap().len(), 1);
    browser.close().await;
    drop(driver);
}
