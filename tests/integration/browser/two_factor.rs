//! The two-factor scenario in Chromium: enrol reading the secret
//! off the page (codes from the test's own RFC 6238), sign out, sign in
//! with a code, with a recovery code, see that recovery code refused the
//! second time and a used code refused.

use latchkey::domain::Clock;
use rstest::rstest;

use crate::driver::{available, Browser, Driver};
use crate::helpers::{spawn_app_with, Backend, PASSWORD};
use crate::two_factor::totp::{base32_decode, code_at, next_step};

const MEMBER: &str = "member@example.org";

async fn sign_out(browser: &Browser) {
    browser
        .click_to_load("form.sign-out button[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/sign-in");
}

async fn second_step(browser: &Browser, base: &str, code: &str) {
    browser.sign_in(base, MEMBER, PASSWORD).await;
    assert_eq!(browser.path().await, "/sign-in/code");
    browser.fill("#code", code).await;
    browser
        .click_to_load("form[action='/sign-in/code'] button[type='submit']")
        .await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn enrol_then_sign_in_with_a_code_and_with_a_recovery_code(#[case] backend: Backend) {
    if !available("enrol_then_sign_in_with_a_code_and_with_a_recovery_code") {
        return;
    }
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = shared).await;
    app.create_member(MEMBER).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let base = &app.base_url;

    browser.sign_in(base, MEMBER, PASSWORD).await;
    browser.open(&format!("{base}/settings/security")).await;
    browser.click_to_load("#turn-on-two-factor").await;
    assert_eq!(browser.path().await, "/settings/security/two-factor");
    assert!(browser.has(".qr svg").await, "the QR code is inline SVG");
    let secret = base32_decode(&browser.text("#totp-secret").await);
    assert_eq!(secret.len(), 20);
    browser.fill("#code", "000000").await;
    browser
        .fill("#code", &code_at(&secret, clock.now().seconds()))
        .await;
    browser
        .click_to_load("form[action='/settings/security/two-factor'] button[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/settings/security");
    let dialog = browser.text("#shown-once").await;
    assert!(dialog.contains("Your recovery codes"), "{dialog}");
    assert!(browser.has("#shown-once a[download]").await);
    let recovery: Vec<String> = {
        let mut codes = Vec::new();
        for i in 1..=10 {
            codes.push(browser.text(&format!("#recovery-code-{i}")).await);
        }
        codes
    };
    browser.click("#shown-once button.primary").await;
    assert!(browser.text("#two-factor-state").await.contains("on"));
    sign_out(&browser).await;

    // With a code.
    next_step(&clock);
    let code = code_at(&secret, clock.now().seconds());
    second_step(&browser, base, &code).await;
    assert_eq!(browser.path().await, "/settings/profile");
    sign_out(&browser).await;

    // The same code again: refused.
    second_step(&browser, base, &code).await;
    assert_eq!(browser.path().await, "/sign-in/code");
    assert!(browser
        .text("#sign-in-error")
        .await
        .contains("used already"));

    // With a recovery code, which says how many are left.
    browser.fill("#code", &recovery[0]).await;
    browser
        .click_to_load("form[action='/sign-in/code'] button[type='submit']")
        .await;
    assert_eq!(browser.path().await, "/settings/profile");
    assert!(browser
        .text("p.flash")
        .await
        .contains("9 recovery codes are left"));
    sign_out(&browser).await;

    // That recovery code a second time: refused.
    second_step(&browser, base, &recovery[0]).await;
    assert_eq!(browser.path().await, "/sign-in/code");
    assert!(browser.text("#sign-in-error").await.contains("wrong"));
    browser.close().await;
    drop(driver);
}
