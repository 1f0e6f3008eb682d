//! Second factors: TOTP secrets (RFC 6238 with the parameters every
//! authenticator app expects: SHA-1, 6 digits, 30-second steps, 160-bit
//! secrets), how they are kept encrypted at rest, and recovery codes.
//!
//! The codes themselves come from `totp-rs`; what is ours is the step
//! window, the sealing under the server key, and the recovery codes.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use super::server_key::{ServerKey, Subkey};

/// Seconds per TOTP step.
pub const TOTP_STEP_SECONDS: i64 = 30;
/// Steps either side of the current one still accepted: a phone whose clock
/// is up to 30 seconds off (or a code typed just as it changed) still works,
/// while a code stays usable for at most 90 seconds.
pub const TOTP_DRIFT_STEPS: i64 = 1;
const SECRET_BYTES: usize = 20;
const NONCE_BYTES: usize = 12;
const SEAL_VERSION: &str = "v1";

/// A TOTP secret, in memory only as long as it is used.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        OsRng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    fn totp(&self) -> TOTP {
        // 20 bytes and 6 digits are always valid, so the unchecked form
        // cannot make a bad generator.
        TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            0,
            TOTP_STEP_SECONDS as u64,
            self.0.to_vec(),
        )
    }

    /// The code for one step.
    pub fn code_at_step(&self, step: i64) -> Zeroizing<String> {
        let time = step.max(0) as u64 * TOTP_STEP_SECONDS as u64;
        Zeroizing::new(self.totp().generate(time))
    }

    /// The step whose code `code` is, among the current one (at `now`, Unix
    /// seconds) and [`TOTP_DRIFT_STEPS`] either side; compared in constant
    /// time. The latest matching step wins.
    pub fn matching_step(&self, code: &str, now: i64) -> Option<i64> {
        let code = normalise_code(code)?;
        let current = now.div_euclid(TOTP_STEP_SECONDS);
        let mut found = None;
        for step in current - TOTP_DRIFT_STEPS..=current + TOTP_DRIFT_STEPS {
            if bool::from(self.code_at_step(step).as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    /// Base32 (RFC 4648, no padding), as authenticator apps take it.
    pub fn base32(&self) -> Zeroizing<String> {
        Zeroizing::new(self.totp().get_secret_base32())
    }

    /// Base32 in groups of four, for typing by hand.
    pub fn grouped_base32(&self) -> Zeroizing<String> {
        let plain = self.base32();
        let groups: Vec<&str> = plain
            .as_bytes()
            .chunks(4)
            .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
            .collect();
        Zeroizing::new(groups.join(" "))
    }

    /// The `otpauth://` URI (Google Authenticator's Key Uri Format) apps scan.
    pub fn otpauth_uri(&self, issuer: &str, label: &str) -> Zeroizing<String> {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let issuer = utf8_percent_encode(issuer, NON_ALPHANUMERIC).to_string();
        let label = utf8_percent_encode(label, NON_ALPHANUMERIC).to_string();
        Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{label}?secret={}&issuer={issuer}&algorithm=SHA1&digits=6&period={TOTP_STEP_SECONDS}",
            self.base32().as_str()
        ))
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Six digits, with spaces people type or apps show ("123 456") left out.
fn normalise_code(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Whether a typed code looks like a TOTP code rather than a recovery code.
pub fn looks_like_totp_code(code: &str) -> bool {
    normalise_code(code).is_some()
}

/// Why a stored secret does not open.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the secret was encrypted under server key {0}, not this node's")]
    OtherKey(String),
    #[error(
        "the secret does not open with this node's server key (altered, or another account's)"
    )]
    Broken,
}

/// Encrypts TOTP secrets under a subkey of the server key: ChaCha20-Poly1305
/// with a fresh nonce, the account id as associated data (so a ciphertext
/// copied to another account's row does not open), stored as
/// `v1:<key id>:<base64url of nonce and ciphertext>` so that a later key
/// rotation can tell which key each secret needs.
pub struct SecretBox {
    key_id: String,
    key: Subkey,
}

impl SecretBox {
    pub fn new(key: &ServerKey) -> Self {
        Self {
            key_id: key.id().to_owned(),
            key: key.subkey("totp secrets"),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.key.expose()))
    }

    fn aad(account: i64) -> Vec<u8> {
        format!("latchkey totp secret for account {account}").into_bytes()
    }

    pub fn seal(&self, secret: &TotpSecret, account: i64) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(account);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.0.as_slice(),
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encrypts 20 bytes");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{SEAL_VERSION}:{}:{}",
            self.key_id,
            URL_SAFE_NO_PAD.encode(out)
        )
    }

    pub fn open(&self, sealed: &str, account: i64) -> Result<TotpSecret, SealError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(SEAL_VERSION), Some(key_id), Some(body)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Broken);
        };
        if key_id != self.key_id {
            return Err(SealError::OtherKey(key_id.to_owned()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Broken)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::Broken);
        }
        let (nonce, body) = bytes.split_at(NONCE_BYTES);
        let aad = Self::aad(account);
        let plain = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Broken)?;
        Ok(TotpSecret(Zeroizing::new(plain)))
    }
}

/// How many recovery codes an account gets.
pub const RECOVERY_CODES: usize = 10;
/// Crockford's base32 in lower case: digits and letters without i, l, o
/// and u, so nothing reads as something else; 5 bits a symbol, 16 of them
/// are 80 random bits per code.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A recovery code as shown: `k7vq-2mzp-x9rd-hb4t`.
pub struct RecoveryCode(Zeroizing<String>);

impl RecoveryCode {
    pub fn generate() -> Self {
        let mut text = String::with_capacity(19);
        for i in 0..16 {
            if i > 0 && i % 4 == 0 {
                text.push('-');
            }
            text.push(char::from(RECOVERY_ALPHABET[OsRng.gen_range(0..32)]));
        }
        Self(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

/// Digests recovery codes under a subkey of the server key: what is stored
/// cannot even be checked against guesses without the key file.
pub struct RecoveryDigests(Subkey);

impl RecoveryDigests {
    pub fn new(key: &ServerKey) -> Self {
        Self(key.subkey("recovery codes"))
    }

    /// The digest of a code as typed (any case, with or without dashes or
    /// spaces), or `None` if it cannot be a recovery code.
    pub fn digest(&self, typed: &str) -> Option<[u8; 32]> {
        let plain: Zeroizing<String> = Zeroizing::new(
            typed
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .flat_map(char::to_lowercase)
                // Read off paper, o is 0 and i or l is 1 (Crockford).
                .map(|c| match c {
                    'o' => '0',
                    'i' | 'l' => '1',
                    c => c,
                })
                .collect(),
        );
        if plain.len() != 16 || !plain.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
            return None;
        }
        Some(self.0.sign(plain.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", last 6 digits.
        let secret = TotpSecret(Zeroizing::new(b"12345678901234567890".to_vec()));
        for (time, code) in [
            (59i64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(secret.code_at_step(time / 30).as_str(), code);
            assert_eq!(secret.matching_step(code, time), Some(time / 30));
        }
    }

    #[test]
    fn one_step_either_side_and_no_further() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let step = now / 30;
        for (offset, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = secret.code_at_step(step + offset);
            assert_eq!(
                secret.matching_step(&code, now).is_some(),
                ok,
                "offset {offset}"
            );
        }
        let code = secret.code_at_step(step);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(secret.matching_step(&spaced, now), Some(step));
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account_and_key() {
        let key = ServerKey::generate();
        let sealer = SecretBox::new(&key);
        let secret = TotpSecret::generate();
        let sealed = sealer.seal(&secret, 7);
        assert!(sealed.starts_with(&format!("v1:{}:", key.id())));
        assert!(!sealed.contains(secret.base32().as_str()));
        let opened = sealer.open(&sealed, 7).unwrap();
        assert_eq!(opened.base32().as_str(), secret.base32().as_str());
        assert_eq!(sealer.open(&sealed, 8).unwrap_err(), SealError::Broken);
        let other = SecretBox::new(&ServerKey::generate());
        assert!(matches!(
            other.open(&sealed, 7),
            Err(SealError::OtherKey(_))
        ));
        assert_eq!(sealer.open("v1:x", 7).unwrap_err(), SealError::Broken);
    }

    #[test]
    fn recovery_codes_look_right_and_digest_as_typed() {
        let key = ServerKey::generate();
        let digests = RecoveryDigests::new(&key);
        let code = RecoveryCode::generate();
        let text = code.expose();
        assert_eq!(text.len(), 19);
        assert_eq!(text.matches('-').count(), 3);
        let digest = digests.digest(text).unwrap();
        assert_eq!(digests.digest(&text.to_uppercase()), Some(digest));
        assert_eq!(digests.digest(&text.replace('-', " ")), Some(digest));
        assert_eq!(digests.digest("k7vq-2mzp-x9rd"), None);
        assert_ne!(RecoveryCode::generate().expose(), text);
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri("keys.example.org", "ann@example.com");
        assert!(uri.starts_with("otpauth://totp/keys%2Eexample%2Eorg:ann%40example%2Ecom?secret="));
        assert!(uri.contains("&issuer=keys%2Eexample%2Eorg&algorithm=SHA1&digits=6&period=30"));
    }
}
