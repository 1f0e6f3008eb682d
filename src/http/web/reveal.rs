//! Secrets shown once, across a redirect.
//!
//! After "Save" the browser is redirected (post/redirect/get), so the new
//! password must survive until the next page load without ever appearing in
//! a URL, a cookie, a log or readable in the database. It is stored in the
//! session row encrypted under a key derived from the session's cookie
//! value, which the server does not keep; the first page load decrypts and
//! clears it. Any node can serve that page, as the session lives in the
//! database.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::credential::{SessionKey, Token};

const PURPOSE: &[u8] = b"latchkey web reveal v2";
const NONCE_BYTES: usize = 12;

/// What the "shown only once" dialog displays.
#[derive(Serialize, Deserialize)]
pub struct Reveal {
    pub title: String,
    pub items: Vec<RevealItem>,
    /// Plain text the dialog offers as a file to download.
    #[serde(default)]
    pub download: Option<String>,
}

impl Reveal {
    /// The download as a `data:` URL, which works without the script.
    pub fn download_href(&self) -> Option<String> {
        self.download.as_deref().map(|text| {
            format!(
                "data:text/plain;charset=utf-8,{}",
                percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
            )
        })
    }
}

impl Drop for Reveal {
    fn drop(&mut self) {
        if let Some(text) = self.download.as_mut() {
            text.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct RevealItem {
    pub label: String,
    pub value: String,
    /// The element id the copy button points at.
    pub id: String,
}

impl Drop for RevealItem {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl RevealItem {
    pub fn new(id: &str, label: &str, value: impl Into<String>) -> Self {
        Self {
            label: label.to_owned(),
            value: value.into(),
            id: id.to_owned(),
        }
    }
}

/// What a new credential's dialog shows: its id, its token, and the ready
/// `Authorization` header, each with the element id the page gives it.
pub struct CredentialShown<'a> {
    pub title: String,
    pub id: (&'static str, &'static str, &'a str),
    pub token: (&'static str, &'static str, &'a Token),
}

impl From<CredentialShown<'_>> for Reveal {
    fn from(shown: CredentialShown<'_>) -> Self {
        let (id_key, id_label, id) = shown.id;
        let (token_key, token_label, token) = shown.token;
        let header = format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{}", token.expose()))
        );
        Reveal {
            title: shown.title,
            items: vec![
                RevealItem::new(id_key, id_label, id),
                RevealItem::new(token_key, token_label, token.expose()),
                RevealItem::new("shown-header", "Authorization header", header),
            ],
            download: None,
        }
    }
}

/// ChaCha20-Poly1305 under a key derived from the session's cookie value,
/// with a fresh random nonce each time: confidential, and any change to the
/// stored bytes makes [`open`] fail instead of showing something else.
pub fn seal(reveal: &Reveal, key: &SessionKey) -> Vec<u8> {
    let plain = Zeroizing::new(serde_json::to_vec(reveal).expect("a reveal serialises"));
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(key)
        .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
        .expect("ChaCha20-Poly1305 encrypts any message this small");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

/// `None` when the data was sealed for another session or was altered.
pub fn open(sealed: &[u8], key: &SessionKey) -> Option<Reveal> {
    if sealed.len() <= NONCE_BYTES {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    let plain = Zeroizing::new(cipher(key).decrypt(Nonce::from_slice(nonce), body).ok()?);
    serde_json::from_slice(&plain).ok()
}

fn cipher(key: &SessionKey) -> ChaCha20Poly1305 {
    let key = key.derive(PURPOSE);
    ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Reveal {
        Reveal {
            title: "New device password".into(),
            items: vec![RevealItem::new("token", "Password", "lkd_secret_value")],
            download: None,
        }
    }

    #[test]
    fn only_the_same_session_can_open_it() {
        let key = SessionKey::generate();
        let sealed = seal(&sample(), &key);
        assert!(!String::from_utf8_lossy(&sealed).contains("lkd_secret_value"));
        assert_eq!(
            open(&sealed, &key).unwrap().items[0].value,
            "lkd_secret_value"
        );
        assert!(open(&sealed, &SessionKey::generate()).is_none());
        assert!(open(&sealed[..10], &key).is_none());
    }

    #[test]
    fn an_altered_seal_does_not_open() {
        let key = SessionKey::generate();
        let mut sealed = seal(&sample(), &key);
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(open(&sealed, &key).is_none());
    }

    #[test]
    fn sealing_twice_differs() {
        let key = SessionKey::generate();
        assert_ne!(seal(&sample(), &key), seal(&sample(), &key));
    }
}
