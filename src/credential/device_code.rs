//! The two codes of an app sign-in (RFC 8628's device authorization grant):
//! the device code, the app's long secret for collecting its device
//! password, and the user code, short enough for a person to type.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::server_key::{ServerKey, Subkey};
use super::token::Token;

/// Every device code starts with this, so secret scanners can find leaks.
const DEVICE_CODE_PREFIX: &str = "lkdc_";
const DEVICE_CODE_BYTES: usize = 32;

/// RFC 8628 §6.1's alphabet: consonants only, so no look-alike characters
/// and no words.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// 20^8 ≈ 2^34.6 codes: with the lookup limit and the short lifetime,
/// guessing a pending one is hopeless.
pub const USER_CODE_CHARS: usize = 8;

/// `lkdc_` + 256 random bits in base64url. Debug output is redacted.
pub struct DeviceCode(Zeroizing<String>);

impl DeviceCode {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; DEVICE_CODE_BYTES]);
        OsRng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(format!(
            "{DEVICE_CODE_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(bytes.as_ref())
        )))
    }

    /// `None` for anything this server cannot have issued.
    pub fn parse(raw: &str) -> Option<Self> {
        let encoded = raw.strip_prefix(DEVICE_CODE_PREFIX)?;
        let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded).ok()?);
        (decoded.len() == DEVICE_CODE_BYTES).then(|| Self(Zeroizing::new(raw.to_owned())))
    }

    /// The code's text, for the one answer that gives it to the app.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form in which the code is stored.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCode(<redacted>)")
    }
}

/// Eight letters of [`USER_CODE_ALPHABET`], shown as `WDJB-MJHT`.
pub struct UserCode(Zeroizing<String>);

impl UserCode {
    pub fn generate() -> Self {
        let mut code = Zeroizing::new(String::with_capacity(USER_CODE_CHARS));
        let mut byte = [0u8; 1];
        while code.len() < USER_CODE_CHARS {
            OsRng.fill_bytes(&mut byte);
            // Rejection sampling keeps every letter uniform: 240 = 12 * 20.
            if byte[0] < 240 {
                code.push(USER_CODE_ALPHABET[usize::from(byte[0] % 20)] as char);
            }
        }
        Self(code)
    }

    /// As a person types it: any case, with or without the dash, spaces
    /// around or between the halves ignored.
    pub fn parse(raw: &str) -> Option<Self> {
        let code: Zeroizing<String> = Zeroizing::new(
            raw.chars()
                .filter(|c| !matches!(c, '-' | ' ' | '\t'))
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let valid =
            code.len() == USER_CODE_CHARS && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// `WDJB-MJHT`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_CHARS / 2);
        format!("{a}-{b}")
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<redacted>)")
    }
}

/// What the server keeps secret about app sign-ins, each under its own
/// subkey of the server key.
pub struct DeviceAuthorizationKeys {
    user_codes: Subkey,
    tokens: Subkey,
}

impl DeviceAuthorizationKeys {
    pub fn new(key: &ServerKey) -> Self {
        Self {
            user_codes: key.subkey("device authorization user codes"),
            tokens: key.subkey("device authorization tokens"),
        }
    }

    /// A keyed hash: a plain one of so short a code could be reversed from
    /// a database dump by trying every code.
    pub fn user_code_digest(&self, code: &UserCode) -> [u8; 32] {
        self.user_codes.sign(code.0.as_bytes())
    }

    /// The device password the request's device will have. Derived from the
    /// device code (which the server does not keep) and the server key, so
    /// it is never stored and a database dump cannot produce it.
    pub fn token(&self, code: &DeviceCode) -> Token {
        let seed = Zeroizing::new(self.tokens.sign(code.0.as_bytes()));
        Token::derive(&seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_codes_parse_back_and_nothing_else_does() {
        let code = DeviceCode::generate();
        let parsed = DeviceCode::parse(code.expose()).unwrap();
        assert_eq!(parsed.digest(), code.digest());
        assert_ne!(DeviceCode::generate().digest(), code.digest());
        for bad in ["", "lkdc_", "lkdc_AAAA", &code.expose()[1..], "lkd_x"] {
            assert!(DeviceCode::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{code:?}").contains(&code.expose()[5..]));
    }

    #[test]
    fn user_codes_are_typed_in_any_case_with_or_without_the_dash() {
        let code = UserCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        let keys = DeviceAuthorizationKeys::new(&ServerKey::generate());
        let digest = keys.user_code_digest(&code);
        for typed in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace('-', ""),
            format!(" {} ", shown.to_lowercase().replace('-', " ")),
        ] {
            let parsed = UserCode::parse(&typed).unwrap();
            assert_eq!(keys.user_code_digest(&parsed), digest, "{typed:?}");
        }
        for bad in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTX",
            "WDJB-MJH0",
            "AEIO-UBCD",
            "WDJB–MJHT",
        ] {
            assert!(UserCode::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{code:?}").contains(&shown[..4]));
    }

    #[test]
    fn the_token_depends_on_the_device_code_and_the_server_key() {
        let key = ServerKey::generate();
        let keys = DeviceAuthorizationKeys::new(&key);
        let code = DeviceCode::generate();
        let token = keys.token(&code);
        assert_eq!(
            keys.token(&DeviceCode::parse(code.expose()).unwrap())
                .expose(),
            token.expose()
        );
        assert_ne!(keys.token(&DeviceCode::generate()).expose(), token.expose());
        let other = DeviceAuthorizationKeys::new(&ServerKey::generate());
        assert_ne!(other.token(&code).expose(), token.expose());
        assert!(Token::parse(token.expose()).is_ok());
    }
}
