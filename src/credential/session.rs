//! Web session secrets: the random id in the session cookie, the digest the
//! database keeps instead of it, and the per-session CSRF secret.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const SECRET_BYTES: usize = 32;

/// The session id a browser holds in its cookie: 256 random bits. Only its
/// [`SessionDigest`] is stored, so a copy of the database signs no one in.
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; SECRET_BYTES]>);

impl SessionKey {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// Reads a cookie value; anything malformed is simply no session.
    pub fn parse(raw: &str) -> Option<Self> {
        let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(raw.as_bytes()).ok()?);
        let bytes: [u8; SECRET_BYTES] = decoded.as_slice().try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }

    /// The cookie value.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_ref())
    }

    pub fn digest(&self) -> SessionDigest {
        SessionDigest(Sha256::digest(self.0.as_ref()).into())
    }

    /// Key material for data only this browser may read back (see `web::reveal`).
    pub fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut hasher = Sha256::new();
        hasher.update(purpose);
        hasher.update(self.0.as_ref());
        Zeroizing::new(hasher.finalize().into())
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// SHA-256 of a [`SessionKey`]: how the database knows a session.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionDigest(pub [u8; 32]);

impl SessionDigest {
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for SessionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionDigest(..)")
    }
}

/// A random secret every state-changing form must echo back, so another
/// site cannot make a signed-in browser submit one.
#[derive(Clone)]
pub struct CsrfSecret(Zeroizing<[u8; SECRET_BYTES]>);

impl CsrfSecret {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; SECRET_BYTES] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(bytes)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The value forms carry.
    pub fn token(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_ref())
    }

    /// Compares a submitted token in constant time.
    pub fn matches(&self, submitted: &str) -> bool {
        let expected = self.token();
        expected.as_bytes().ct_eq(submitted.as_bytes()).into()
    }
}

impl fmt::Debug for CsrfSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_cookie() {
        let key = SessionKey::generate();
        let parsed = SessionKey::parse(&key.expose()).unwrap();
        assert_eq!(parsed.digest(), key.digest());
        assert_ne!(SessionKey::generate().digest(), key.digest());
    }

    #[test]
    fn malformed_cookies_are_no_session() {
        for raw in ["", "x", "!!!!", &"A".repeat(44), &"A".repeat(42)] {
            assert!(SessionKey::parse(raw).is_none(), "{raw:?}");
        }
    }

    #[test]
    fn csrf_tokens_match_only_their_secret() {
        let secret = CsrfSecret::generate();
        assert!(secret.matches(&secret.token()));
        assert!(!secret.matches(&CsrfSecret::generate().token()));
        assert!(!secret.matches(""));
        assert!(!format!("{secret:?}").contains(&secret.token()));
    }
}
