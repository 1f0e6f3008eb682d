//! Secrets shown once, across a redirect.
//!
//! After "Save" the browser is redirected (post/redirect/get), so the new
//! password must survive until the next page load without ever appearing in
//! a URL, a cookie, a log or readable in the database. It is stored in the
//! session row encrypted under a key derived from the session's cookie
//! value, which the server does not keep; the first page load decrypts and
//! clears it. Any node can serve that page, as the session lives in the
//! database.

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::credential::SessionKey;

const PURPOSE: &[u8] = b"latchkey web reveal v1";
const NONCE_BYTES: usize = 16;

/// What the "shown only once" dialog displays.
#[derive(Serialize, Deserialize)]
pub struct Reveal {
    pub title: String,
    pub items: Vec<RevealItem>,
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

pub fn seal(reveal: &Reveal, key: &SessionKey) -> Vec<u8> {
    let plain = Zeroizing::new(serde_json::to_vec(reveal).expect("a reveal serialises"));
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&plain);
    apply_keystream(&mut sealed[NONCE_BYTES..], key, &nonce);
    sealed
}

/// `None` when the data was sealed for another session or is damaged.
pub fn open(sealed: &[u8], key: &SessionKey) -> Option<Reveal> {
    if sealed.len() <= NONCE_BYTES {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    let mut plain = Zeroizing::new(body.to_vec());
    apply_keystream(&mut plain, key, nonce);
    serde_json::from_slice(&plain).ok()
}

/// SHA-256 in counter mode as a stream cipher: block i is
/// SHA-256(key ‖ nonce ‖ i). The nonce is fresh for every seal, so no
/// keystream is used twice. Confidentiality is all that is needed here:
/// whoever could tamper with the row can already change the account.
fn apply_keystream(data: &mut [u8], key: &SessionKey, nonce: &[u8]) {
    let key = key.derive(PURPOSE);
    for (counter, chunk) in data.chunks_mut(32).enumerate() {
        let mut hasher = Sha256::new();
        hasher.update(key.as_ref());
        hasher.update(nonce);
        hasher.update((counter as u64).to_be_bytes());
        let block = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        for (byte, k) in chunk.iter_mut().zip(block.iter()) {
            *byte ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Reveal {
        Reveal {
            title: "New device password".into(),
            items: vec![RevealItem::new("token", "Password", "lkd_secret_value")],
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
    fn sealing_twice_differs() {
        let key = SessionKey::generate();
        assert_ne!(seal(&sample(), &key), seal(&sample(), &key));
    }
}
