//! Reading and writing the cookies the web interface uses.

use axum::http::{header, HeaderMap, HeaderValue};

/// Holds the session key. Not readable by scripts; sent on top-level
/// navigation from other sites (so links into the app work) but not on
/// their POSTs.
pub const SESSION: &str = "latchkey_session";
/// Holds the sign-in form's token until a session exists.
pub const SIGN_IN: &str = "latchkey_sign_in";
/// Holds the key of a sign-in waiting for its second step (five minutes).
pub const SECOND_STEP: &str = "latchkey_second_step";
/// Says, signed, which accounts this browser has signed in to before (see
/// `service::throttle`); outlives sessions.
pub const TRUSTED_BROWSER: &str = "latchkey_trusted";

/// The name a cookie goes by: over https with the `__Host-` prefix, which
/// browsers accept only from this very host, with `Secure`, `Path=/` and no
/// `Domain`, so a sibling subdomain cannot plant one.
fn full_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of the cookie named `name`, if the browser sent exactly one.
/// Two of the same name mean one was planted (another path, another port,
/// a sibling domain): taking either would let the planter choose.
pub fn read(headers: &HeaderMap, name: &str, secure: bool) -> Option<String> {
    let name = full_name(name, secure);
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned());
    match (found.next(), found.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// A `Set-Cookie` value; `max_age` zero deletes the cookie.
pub fn set(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> HeaderValue {
    let name = full_name(name, secure);
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
        assert_eq!(read(&headers, SESSION, false).as_deref(), Some("xyz"));
        assert_eq!(read(&headers, "b", false).as_deref(), Some("2"));
        assert_eq!(read(&headers, "latchkey", false), None);
        // Over https only the prefixed name counts.
        assert_eq!(read(&headers, SESSION, true), None);
    }

    #[test]
    fn a_cookie_sent_twice_counts_as_none() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("latchkey_sign_in=planted; latchkey_sign_in=real"),
        );
        assert_eq!(read(&headers, SIGN_IN, false), None);
        let mut split = HeaderMap::new();
        split.append(
            header::COOKIE,
            HeaderValue::from_static("latchkey_sign_in=a"),
        );
        split.append(
            header::COOKIE,
            HeaderValue::from_static("latchkey_sign_in=b"),
        );
        assert_eq!(read(&split, SIGN_IN, false), None);
    }

    #[test]
    fn attributes() {
        let cookie = set(SESSION, "v", true, None);
        assert_eq!(
            cookie.to_str().unwrap(),
            "__Host-latchkey_session=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            set(SESSION, "v", false, None).to_str().unwrap(),
            "latchkey_session=v; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(clear(SESSION, false)
            .to_str()
            .unwrap()
            .ends_with("Max-Age=0"));
    }
}
