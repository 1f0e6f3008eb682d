//! Values the server hands out and later takes back, signed under a subkey
//! of the [`ServerKey`](super::ServerKey) so that nobody else can make one:
//! the sign-in form's token and the trusted-browser cookie.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

use super::server_key::{ServerKey, Subkey};

const NONCE: usize = 16;
const TAG: usize = 16;

/// How long a sign-in form may be filled in, in seconds.
pub const SIGN_IN_FORM_LIFETIME: i64 = 3600;
/// How long a browser stays trusted after its last successful sign-in, in
/// seconds (180 days).
pub const TRUSTED_BROWSER_LIFETIME: i64 = 180 * 24 * 3600;
/// Accounts one browser is remembered for; older entries make room.
pub const TRUSTED_ACCOUNTS_PER_BROWSER: usize = 5;

fn nonce() -> [u8; NONCE] {
    let mut nonce = [0u8; NONCE];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

/// `payload` and its truncated signature, as one base64url text.
fn seal(key: &Subkey, payload: &[u8]) -> String {
    let mut sealed = payload.to_vec();
    sealed.extend_from_slice(&key.sign(payload)[..TAG]);
    URL_SAFE_NO_PAD.encode(sealed)
}

/// The payload of a value [`seal`] made with this key, if it is one.
fn open(key: &Subkey, text: &str) -> Option<Vec<u8>> {
    let mut sealed = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
    let split = sealed.len().checked_sub(TAG)?;
    let tag = sealed.split_off(split);
    key.verify(&sealed, &tag).then_some(sealed)
}

/// Issues and checks sign-in form tokens: random, expiring, and signed, so
/// a cookie planted by a page on a sibling host must at least be one this
/// server issued within the hour, and each one is good for one sign-in.
pub struct SignInForms(Subkey);

/// A sign-in form token that checked out; spend it before trusting the form.
#[derive(Debug, PartialEq, Eq)]
pub struct FormToken {
    pub nonce: [u8; NONCE],
    /// Unix seconds.
    pub expires_at: i64,
}

impl SignInForms {
    pub fn new(key: &ServerKey) -> Self {
        Self(key.subkey("sign-in form"))
    }

    pub fn issue(&self, now: i64) -> String {
        let mut payload = nonce().to_vec();
        payload.extend_from_slice(&(now + SIGN_IN_FORM_LIFETIME).to_be_bytes());
        seal(&self.0, &payload)
    }

    /// The token's nonce, if this server issued it and it has not expired.
    pub fn check(&self, token: &str, now: i64) -> Option<FormToken> {
        let payload = open(&self.0, token)?;
        let (nonce, expires) = payload.split_first_chunk::<NONCE>()?;
        let expires_at = i64::from_be_bytes(expires.try_into().ok()?);
        (expires_at > now).then_some(FormToken {
            nonce: *nonce,
            expires_at,
        })
    }
}

/// Issues and reads the trusted-browser cookie (OWASP's "device cookie"): a
/// browser that signed in to an account successfully before is judged by
/// its own guessing budget for that account, so an attacker who spends the
/// account's other budgets cannot lock its owner out.
pub struct TrustedBrowsers(Subkey);

/// One account a browser is trusted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedEntry {
    /// The account's email, as the throttle knows it.
    pub account: String,
    /// Names this browser's own budget; changes at every sign-in.
    pub nonce: [u8; NONCE],
    /// Unix seconds.
    pub issued_at: i64,
    sealed: String,
}

impl TrustedEntry {
    /// The throttle bucket of this browser for this account.
    pub fn bucket(&self) -> String {
        let nonce: String = self.nonce.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}|{nonce}", self.account)
    }
}

impl TrustedBrowsers {
    pub fn new(key: &ServerKey) -> Self {
        Self(key.subkey("trusted browser"))
    }

    /// The entries of a cookie value that this server issued and that are
    /// still good, newest first; anything else is ignored.
    pub fn read(&self, cookie: &str, now: i64) -> Vec<TrustedEntry> {
        let mut entries: Vec<TrustedEntry> = cookie
            .split('~')
            .take(TRUSTED_ACCOUNTS_PER_BROWSER)
            .filter_map(|sealed| {
                let payload = open(&self.0, sealed)?;
                let (issued, rest) = payload.split_first_chunk::<8>()?;
                let (nonce, account) = rest.split_first_chunk::<NONCE>()?;
                let issued_at = i64::from_be_bytes(*issued);
                let live = issued_at <= now + 300 && now - issued_at < TRUSTED_BROWSER_LIFETIME;
                if !live {
                    return None;
                }
                Some(TrustedEntry {
                    account: String::from_utf8(account.to_vec()).ok()?,
                    nonce: *nonce,
                    issued_at,
                    sealed: sealed.to_owned(),
                })
            })
            .collect();
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.issued_at));
        entries
    }

    /// The cookie value after a successful sign-in to `account`: a fresh
    /// entry for it, then the other accounts' entries that still fit.
    pub fn after_sign_in(&self, kept: &[TrustedEntry], account: &str, now: i64) -> String {
        let mut payload = now.to_be_bytes().to_vec();
        payload.extend_from_slice(&nonce());
        payload.extend_from_slice(account.as_bytes());
        let fresh = seal(&self.0, &payload);
        std::iter::once(fresh.as_str())
            .chain(
                kept.iter()
                    .filter(|entry| entry.account != account)
                    .map(|entry| entry.sealed.as_str()),
            )
            .take(TRUSTED_ACCOUNTS_PER_BROWSER)
            .collect::<Vec<_>>()
            .join("~")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_tokens_expire_and_cannot_be_forged() {
        let key = ServerKey::generate();
        let forms = SignInForms::new(&key);
        let token = forms.issue(1_000);
        let checked = forms.check(&token, 1_001).unwrap();
        assert_eq!(checked.expires_at, 1_000 + SIGN_IN_FORM_LIFETIME);
        assert!(forms.check(&token, 1_000 + SIGN_IN_FORM_LIFETIME).is_none());
        // Another server's token, a tampered one, and a random value fail.
        assert!(SignInForms::new(&ServerKey::generate())
            .check(&token, 1_001)
            .is_none());
        let mut tampered = token.into_bytes();
        tampered[3] ^= 1;
        assert!(forms
            .check(std::str::from_utf8(&tampered).unwrap(), 1_001)
            .is_none());
        assert!(forms
            .check(&URL_SAFE_NO_PAD.encode([7u8; 40]), 1_001)
            .is_none());
        assert!(forms.check("", 1_001).is_none());
        // A trusted-browser entry is no sign-in token, though signed by the same key.
        let browsers = TrustedBrowsers::new(&key);
        let cookie = browsers.after_sign_in(&[], "a@x.org", 1_000);
        assert!(forms.check(&cookie, 1_001).is_none());
    }

    #[test]
    fn trusted_browser_cookies_keep_the_newest_accounts() {
        let browsers = TrustedBrowsers::new(&ServerKey::generate());
        let mut cookie = String::new();
        for (i, account) in ["a", "b", "c", "d", "e", "f", "b"].iter().enumerate() {
            let kept = browsers.read(&cookie, 100 + i as i64);
            cookie = browsers.after_sign_in(&kept, &format!("{account}@x.org"), 100 + i as i64);
        }
        let accounts: Vec<String> = browsers
            .read(&cookie, 200)
            .into_iter()
            .map(|e| e.account)
            .collect();
        assert_eq!(
            accounts,
            ["b@x.org", "f@x.org", "e@x.org", "d@x.org", "c@x.org"]
        );
    }

    #[test]
    fn trusted_browser_entries_expire_and_need_the_key() {
        let key = ServerKey::generate();
        let browsers = TrustedBrowsers::new(&key);
        let cookie = browsers.after_sign_in(&[], "a@x.org", 1_000);
        let entry = &browsers.read(&cookie, 2_000)[0];
        assert_eq!(entry.account, "a@x.org");
        assert!(entry.bucket().starts_with("a@x.org|"));
        assert!(browsers
            .read(&cookie, 1_000 + TRUSTED_BROWSER_LIFETIME)
            .is_empty());
        assert!(browsers.read(&cookie, 0).is_empty(), "issued in the future");
        assert!(TrustedBrowsers::new(&ServerKey::generate())
            .read(&cookie, 2_000)
            .is_empty());
        assert!(SignInForms::new(&key).check(&cookie, 2_000).is_none());
        assert!(browsers.read("garbage~~.", 2_000).is_empty());
        // A fresh entry gets a fresh budget.
        let again = browsers.after_sign_in(&browsers.read(&cookie, 2_000), "a@x.org", 2_000);
        assert_ne!(browsers.read(&again, 2_001)[0].nonce, entry.nonce);
    }
}
