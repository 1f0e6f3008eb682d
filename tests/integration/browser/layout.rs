//! What people copy and read stays readable when space runs short: at a
//! phone's width, and in a squeezed desktop table.

use rstest::rstest;

use crate::driver::{available, Driver};
use crate::helpers::{spawn_app, Backend, PASSWORD};

const MEMBER: &str = "member@example.org";

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn ids_and_dates_never_wrap_names_do_and_nothing_overflows(#[case] backend: Backend) {
    if !available("ids_and_dates_never_wrap_names_do_and_nothing_overflows") {
        return;
    }
    let app = spawn_app(backend).await;
    app.create_member(MEMBER).await;
    let long_name = "a-very-long-device-name-without-any-spaces-".repeat(2);
    app.create_device(MEMBER, long_name.trim_end_matches('-'))
        .await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.sign_in(&app.base_url, MEMBER, PASSWORD).await;
    for (width, height) in [(360, 780), (700, 900)] {
        browser.resize(width, height).await;
        browser
            .open(&format!("{}/settings/devices", app.base_url))
            .await;
        let facts = browser
            .script(
                "const id = document.querySelector('code.device-id');
                 const name = document.querySelector('td.device-name');
                 const [change, remove] = document.querySelectorAll('td.row-actions > a.button');
                 const line = parseFloat(getComputedStyle(name).lineHeight) || 20;
                 return {
                   idLines: id.getClientRects().length,
                   nameWraps: name.getBoundingClientRect().height > 1.5 * line,
                   sideBySide: Math.abs(change.getBoundingClientRect().top - remove.getBoundingClientRect().top) < 2,
                   overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                   header: document.querySelector('header').getBoundingClientRect().width <= window.innerWidth,
                 };",
            )
            .await;
        assert_eq!(facts["idLines"], 1, "{width}px: {facts}");
        assert_eq!(facts["nameWraps"], true, "{width}px: {facts}");
        assert_eq!(facts["sideBySide"], true, "{width}px: {facts}");
        assert_eq!(facts["overflow"], 0, "{width}px: {facts}");
        assert_eq!(facts["header"], true, "{width}px: {facts}");
    }
    browser.close().await;
}
