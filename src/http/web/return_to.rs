//! Where to send someone after they sign in: back to the page that asked
//! them to, never anywhere else.

/// Longest return path kept; anything longer is dropped, not cut.
const MAX_CHARS: usize = 2048;

/// `raw` if it is a path on this server that a browser cannot read as
/// another origin: it starts with a single `/`, holds no backslash (which
/// browsers treat as `/`, making `/\evil.example` a host), no control
/// character, and is not the sign-in page itself.
pub fn safe(raw: &str) -> Option<&str> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && !raw.chars().any(char::is_control)
        && raw.chars().count() <= MAX_CHARS
        && !(raw == "/sign-in" || raw.starts_with("/sign-in?") || raw.starts_with("/sign-out"));
    ok.then_some(raw)
}

/// The sign-in address that returns to `path` afterwards.
pub fn sign_in_returning_to(path: &str) -> String {
    match safe(path) {
        Some(path) if path != "/" => {
            let query = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
            format!("/sign-in?{query}")
        }
        _ => "/sign-in".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        for good in [
            "/settings/devices",
            "/admin/accounts?q=ada",
            "/admin/accounts/7",
        ] {
            assert_eq!(safe(good), Some(good));
        }
        for bad in [
            "",
            "settings",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/%0d%0aSet-Cookie:x", // encoded is harmless, but the raw form below is not
            "/a\r\nSet-Cookie: x=1",
            "/sign-in",
            "/sign-in?next=/x",
            "/sign-out",
            "javascript:alert(1)",
        ] {
            if bad == "/%0d%0aSet-Cookie:x" {
                assert!(safe(bad).is_some());
                continue;
            }
            assert_eq!(safe(bad), None, "{bad:?}");
        }
        assert_eq!(safe(&format!("/{}", "a".repeat(MAX_CHARS))), None);
    }

    #[test]
    fn the_sign_in_address_carries_the_path_encoded() {
        assert_eq!(
            sign_in_returning_to("/admin/accounts?q=a&b"),
            "/sign-in?next=%2Fadmin%2Faccounts%3Fq%3Da%26b"
        );
        assert_eq!(sign_in_returning_to("//evil.example"), "/sign-in");
        assert_eq!(sign_in_returning_to("/"), "/sign-in");
    }
}
