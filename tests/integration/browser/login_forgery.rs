//! Login forgery from a second loopback origin, in real Chromium: a page on
//! another port of the same host plants a sign-in cookie (cookies do not
//! keep ports apart) and posts the sign-in form with the attacker's account.
//! The victim's browser must not end up signed in to it.

use std::time::Duration;

use rstest::rstest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::driver::{available, Driver};
use crate::helpers::{spawn_app, Backend, PASSWORD};
use crate::visitor::Visitor;

const ATTACKER: &str = "attacker@example.org";

/// Serves `page` to every request on 127.0.0.1, on a port of its own.
async fn attacker_site(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_page_on_another_port_cannot_sign_a_browser_in(#[case] backend: Backend) {
    if !available("a_page_on_another_port_cannot_sign_a_browser_in") {
        return;
    }
    let app = spawn_app(backend).await;
    app.create_member(ATTACKER).await;
    // The attacker fetches a genuine form and its cookie for themselves.
    let form = Visitor::new(&app).get("/sign-in").await;
    let token = form.csrf();
    let cookie = form.cookie("latchkey_sign_in").unwrap();
    let value = cookie.split(';').next().unwrap().to_owned();
    let page = format!(
        r#"<!doctype html><form method="post" action="{base}/sign-in">
<input type="hidden" name="csrf" value="{token}">
<input type="hidden" name="email" value="{ATTACKER}">
<input type="hidden" name="password" value="{PASSWORD}">
</form>
<script>document.cookie = "latchkey_sign_in={value}; path=/"; document.forms[0].submit();</script>"#,
        base = app.base_url
    );
    let port = attacker_site(page).await;

    let driver = Driver::start().await;
    let browser = driver.browser().await;
    browser.open(&format!("http://127.0.0.1:{port}/")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !browser.source().await.contains("Form refused") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forged sign-in was not refused: {}",
            browser.source().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And no session: the profile asks for a sign-in.
    browser
        .open(&format!("{}/settings/profile", app.base_url))
        .await;
    assert_eq!(browser.path().await, "/sign-in");
    browser.close().await;
}
