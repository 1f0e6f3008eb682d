//! A person with a browser: a cookie jar, redirects not followed (so tests
//! see each 303), and helpers that read pages the way a person would.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};

use latchkey::domain::{Account, Permission};

use crate::helpers::{TestApp, PASSWORD};

pub struct Visitor {
    base: String,
    http: reqwest::Client,
}

/// One answer, read in full.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        attribute_after(&self.body, "name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field on the page: {}", self.body))
    }

    /// The text of the element with this id (a shown-once value).
    pub fn text_of(&self, id: &str) -> Option<String> {
        let start = self.body.find(&format!("id=\"{id}\">"))? + id.len() + 6;
        let end = self.body[start..].find('<')? + start;
        Some(unescape(&self.body[start..end]))
    }

    /// The message shown next to a field.
    pub fn field_error(&self, field: &str) -> Option<String> {
        self.text_of(&format!("{field}-error"))
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    pub fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.body);
        assert_eq!(self.location(), Some(to));
    }
}

fn attribute_after(body: &str, marker: &str) -> Option<String> {
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base_url.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .user_agent("latchkey-web-tests/1.0")
                .build()
                .unwrap(),
        }
    }

    /// A browser at `address`, as a proxy in `--trusted-proxies` reports it.
    pub fn from_address(app: &TestApp, address: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", address.parse().unwrap());
        Self {
            base: app.base_url.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .user_agent("latchkey-web-tests/1.0")
                .default_headers(headers)
                .build()
                .unwrap(),
        }
    }

    /// The same browser (cookies and all) talking to another node.
    pub fn on(&self, app: &TestApp) -> Self {
        Self {
            base: app.base_url.clone(),
            http: self.http.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        read(self.http.get(format!("{}{path}", self.base))).await
    }

    /// Posts exactly these fields (no CSRF token unless among them).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        read(self.http.post(format!("{}{path}", self.base)).form(fields)).await
    }

    /// Opens `page`, then submits a form to `action` with the page's CSRF token.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn sign_in_as(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/sign-in",
            "/sign-in",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs in with the test password; panics unless it worked.
    pub async fn signed_in(app: &TestApp, email: &str) -> Self {
        let visitor = Self::new(app);
        visitor
            .sign_in_as(email, PASSWORD)
            .await
            .assert_redirect("/settings/profile");
        visitor
    }

    /// Whether this visitor's session still works.
    pub async fn is_signed_in(&self) -> bool {
        let page = self.get("/settings/profile").await;
        match page.status {
            StatusCode::OK => true,
            StatusCode::SEE_OTHER => {
                assert_eq!(page.location(), Some("/sign-in?next=%2Fsettings%2Fprofile"));
                false
            }
            other => panic!("unexpected {other}"),
        }
    }

    /// Creates a device in the Devices tab; returns its id and password as shown once.
    pub async fn create_device(&self, name: &str) -> (String, String) {
        self.submit("/settings/devices", "/settings/devices", &[("name", name)])
            .await
            .assert_redirect("/settings/devices");
        let page = self.get("/settings/devices").await;
        (
            page.text_of("shown-device-id").expect("device id shown"),
            page.text_of("shown-password").expect("password shown"),
        )
    }
}

async fn read(request: reqwest::RequestBuilder) -> Page {
    let response = request.send().await.unwrap();
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

impl Visitor {
    /// Like [`Visitor::create_device`], choosing a type.
    pub async fn create_device_typed(&self, name: &str, device_type: &str) {
        self.submit(
            "/settings/devices",
            "/settings/devices",
            &[("name", name), ("device_type", device_type)],
        )
        .await
        .assert_redirect("/settings/devices");
    }
}

impl Visitor {
    /// An administrator account, signed in.
    pub async fn admin(app: &TestApp) -> (Self, Account) {
        let account = app
            .create_account("admin@example.org", &[Permission::Admin])
            .await;
        (Self::signed_in(app, "admin@example.org").await, account)
    }

    /// Submits a form of `page` to `action`, expects to be sent back to
    /// `page`, and returns it as shown then (with its one-time message).
    pub async fn act(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        self.submit(page, action, fields)
            .await
            .assert_redirect(page);
        self.get(page).await
    }

    /// "Change password" on one of the visitor's devices; the page after it.
    pub async fn change_device_password(&self, id: &str) -> Page {
        self.act(
            "/settings/devices",
            &format!("/settings/devices/{id}/password"),
            &[],
        )
        .await
    }

    /// The underlying client, with this visitor's cookies.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Panics unless a fresh browser can sign in with these.
    pub async fn assert_signs_in(app: &TestApp, email: &str, password: &str) {
        Self::new(app)
            .sign_in_as(email, password)
            .await
            .assert_redirect("/settings/profile");
    }
}
