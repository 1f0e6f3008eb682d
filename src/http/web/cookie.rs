//! Reading and writing the two cookies the web interface uses.

use axum::http::{header, HeaderMap, HeaderValue};

/// Holds the session key. Not readable by scripts; sent on top-level
/// navigation from other sites (so links into the app work) but not on
/// their POSTs.
pub const SESSION: &str = "latchkey_session";
/// Holds the sign-in form's CSRF value until a session exists.
pub const SIGN_IN: &str = "latchkey_sign_in";

/// The value of the first cookie named `name`.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value; `max_age` zero deletes the cookie.
pub fn set(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", secure, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; latchkey_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(read(&headers, SESSION).as_deref(), Some("xyz"));
        assert_eq!(read(&headers, "b").as_deref(), Some("2"));
        assert_eq!(read(&headers, "latchkey"), None);
    }

    #[test]
    fn attributes() {
        let cookie = set(SESSION, "v", true, None);
        assert_eq!(
            cookie.to_str().unwrap(),
            "latchkey_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(clear(SESSION, false)
            .to_str()
            .unwrap()
            .ends_with("Max-Age=0"));
    }
}
