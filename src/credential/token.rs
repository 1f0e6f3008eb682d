use std::fmt;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Every device token starts with this, so secret scanners can find leaks.
pub const TOKEN_PREFIX: &str = "lkd_";
/// Every API access authorisation's token starts with this instead: the
/// prefix says which kind of credential a token is, before any lookup.
pub const ACCESS_TOKEN_PREFIX: &str = "lks_";

/// Which kind of credential a token belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A device password: a person's, for one application.
    Device,
    /// An API access authorisation: a service's, belonging to no person.
    Access,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Device => TOKEN_PREFIX,
            TokenKind::Access => ACCESS_TOKEN_PREFIX,
        }
    }
}
/// Base62 characters of randomness: 62^43 > 2^256.
const SECRET_CHARS: usize = 43;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
const CHECKSUM_CHARS: usize = 6;
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + SECRET_CHARS + CHECKSUM_CHARS;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether a byte is one of [`BASE62`]: one load per byte of every
/// presented token, instead of three range tests.
const IS_BASE62: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < BASE62.len() {
        table[BASE62[i] as usize] = true;
        i += 1;
    }
    table
};

/// A device token: `lkd_` (`lks_` for an API access authorisation) + 43
/// base62 characters (256 random bits) + a 6-character base62 CRC32 of
/// those characters. Debug output is redacted and the memory is wiped on drop.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("the token does not have the latchkey device token format")]
    Malformed,
    #[error("the token's checksum does not match; it was probably mistyped or cut off")]
    BadChecksum,
}

impl Token {
    /// A fresh device token from the operating system's random generator.
    pub fn generate() -> Self {
        Self::generate_for(TokenKind::Device)
    }

    /// A fresh token of the given kind.
    pub fn generate_for(kind: TokenKind) -> Self {
        let mut rng = OsRng;
        Self::from_random_bytes(kind, || {
            let mut byte = [0u8; 1];
            rng.fill_bytes(&mut byte);
            byte[0]
        })
    }

    /// The token a 256-bit `seed` stands for, always the same one: so a
    /// token can be handed out later without being stored meanwhile.
    pub fn derive(seed: &[u8; 32]) -> Self {
        let mut block = Zeroizing::new([0u8; 32]);
        let (mut counter, mut used) = (0u64, 32);
        Self::from_random_bytes(TokenKind::Device, || {
            if used == 32 {
                let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("any key length");
                mac.update(&counter.to_be_bytes());
                block.copy_from_slice(&mac.finalize().into_bytes());
                counter += 1;
                used = 0;
            }
            used += 1;
            block[used - 1]
        })
    }

    fn from_random_bytes(kind: TokenKind, mut next: impl FnMut() -> u8) -> Self {
        let mut token = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        token.push_str(kind.prefix());
        while token.len() < TOKEN_PREFIX.len() + SECRET_CHARS {
            let byte = next();
            // Rejection sampling keeps every character uniform: 248 = 4 * 62.
            if byte < 248 {
                token.push(BASE62[usize::from(byte % 62)] as char);
            }
        }
        let checksum = checksum(&token[TOKEN_PREFIX.len()..]);
        token.push_str(&checksum);
        Self(token)
    }

    /// Checks the format and checksum without touching any stored data, so
    /// garbage is refused before a lookup.
    pub fn parse(raw: &str) -> Result<Self, TokenFormatError> {
        Self::check(raw)?;
        Ok(Self(Zeroizing::new(raw.to_owned())))
    }

    /// What [`Token::parse`] checks, without copying the token: its kind.
    pub fn check(raw: &str) -> Result<TokenKind, TokenFormatError> {
        let (kind, body) = match raw.strip_prefix(TOKEN_PREFIX) {
            Some(body) => (TokenKind::Device, body),
            None => (
                TokenKind::Access,
                raw.strip_prefix(ACCESS_TOKEN_PREFIX)
                    .ok_or(TokenFormatError::Malformed)?,
            ),
        };
        if raw.len() != TOKEN_LEN || !body.bytes().all(|b| IS_BASE62[usize::from(b)]) {
            return Err(TokenFormatError::Malformed);
        }
        let (secret, sum) = body.split_at(SECRET_CHARS);
        // Not compared in constant time: the checksum is no secret, anyone
        // can compute it from the rest, and it only tells typos apart.
        if checksum(secret).as_bytes() != sum.as_bytes() {
            return Err(TokenFormatError::BadChecksum);
        }
        Ok(kind)
    }

    /// The kind a presented token claims by its prefix, or `None` for one
    /// that cannot be either: the warm path's only format check, since a
    /// token that matches a cached credential's digest was issued as it is,
    /// checksum included; [`Token::check`] keeps garbage from the store.
    pub fn claimed_kind(raw: &str) -> Option<TokenKind> {
        if raw.len() != TOKEN_LEN {
            None
        } else if raw.starts_with(TOKEN_PREFIX) {
            Some(TokenKind::Device)
        } else if raw.starts_with(ACCESS_TOKEN_PREFIX) {
            Some(TokenKind::Access)
        } else {
            None
        }
    }

    /// Which kind of credential the token is for, by its prefix.
    pub fn kind(&self) -> TokenKind {
        if self.0.starts_with(ACCESS_TOKEN_PREFIX) {
            TokenKind::Access
        } else {
            TokenKind::Device
        }
    }

    /// The token's text, for the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The checksum's characters, on the stack.
struct Checksum([u8; CHECKSUM_CHARS]);

impl Checksum {
    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Checksum {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn checksum(secret: &str) -> Checksum {
    let mut value = crc32fast::hash(secret.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    Checksum(out)
}

/// SHA-256 of a token: the only form in which a token is stored. SHA-256 is
/// the right hash for 256 random bits; a slow password hash would add cost
/// to every request and no security.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Compares in constant time: the differences of the four words are
    /// gathered without a branch, and only the result is compared, with
    /// `subtle` (byte by byte, as `subtle` compares slices, it would cost
    /// every request a few hundred instructions more).
    pub fn matches(&self, other: &TokenDigest) -> bool {
        let mut difference = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            difference |= word(a) ^ word(b);
        }
        difference.ct_eq(&0).into()
    }
}

fn word(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    u64::from_ne_bytes(word)
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_when_every_byte_does() {
        let digest = Token::generate().digest();
        assert!(digest.matches(&digest));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut other = digest;
                other.0[byte] ^= 1 << bit;
                assert!(!digest.matches(&other), "byte {byte}, bit {bit}");
            }
        }
    }

    #[test]
    fn generated_tokens_have_the_format() {
        let token = Token::generate();
        let text = token.expose();
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(TOKEN_LEN, 53);
        assert!(text.starts_with("lkd_"));
        assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(Token::parse(text).unwrap().expose(), text);
    }

    #[test]
    fn access_tokens_have_their_own_prefix_and_the_same_checksum() {
        let token = Token::generate_for(TokenKind::Access);
        let text = token.expose();
        assert_eq!(text.len(), TOKEN_LEN);
        assert!(text.starts_with("lks_"));
        let parsed = Token::parse(text).unwrap();
        assert_eq!(parsed.kind(), TokenKind::Access);
        assert_eq!(Token::generate().kind(), TokenKind::Device);
        // The checksum covers the random part only, so the prefix must not
        // be what makes a device token an access token unnoticed: the two
        // kinds are told apart, never confused.
        let swapped = text.replacen("lks_", "lkd_", 1);
        assert_eq!(Token::parse(&swapped).unwrap().kind(), TokenKind::Device);
        assert!(!Token::parse(&swapped)
            .unwrap()
            .digest()
            .matches(&parsed.digest()));
    }

    #[test]
    fn derived_tokens_are_valid_and_depend_only_on_the_seed() {
        let (a, b) = (Token::derive(&[1; 32]), Token::derive(&[2; 32]));
        assert_eq!(a.expose(), Token::derive(&[1; 32]).expose());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(Token::parse(a.expose()).unwrap().expose(), a.expose());
    }

    #[test]
    fn tokens_differ() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(!a.digest().matches(&b.digest()));
        assert!(a
            .digest()
            .matches(&Token::parse(a.expose()).unwrap().digest()));
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // CRC32("") = 0, CRC32("a") = 0xE8B7BE43 = 3904355907.
        assert_eq!(&*checksum(""), "000000");
        let mut n: u64 = 3_904_355_907;
        let mut expected = Vec::new();
        for _ in 0..6 {
            expected.push(BASE62[(n % 62) as usize]);
            n /= 62;
        }
        expected.reverse();
        assert_eq!(checksum("a").as_bytes(), expected.as_slice());
    }

    #[test]
    fn detects_a_changed_character() {
        let token = Token::generate();
        let text = token.expose();
        let mut bytes = text.as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let altered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            Token::parse(&altered).unwrap_err(),
            TokenFormatError::BadChecksum
        );
    }

    #[test]
    fn rejects_malformed_tokens() {
        let good = Token::generate();
        let text = good.expose();
        for bad in [
            String::new(),
            "D1C2B3A4".to_owned(),
            text.replacen("lkd_", "lkx_", 1),
            text[..TOKEN_LEN - 1].to_owned(),
            format!("{text}0"),
            text.replacen(&text[5..6], "-", 1),
            format!("lkd_{}", "é".repeat(24)),
        ] {
            assert!(Token::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::generate();
        let shown = format!("{token:?} {:?}", token.digest());
        assert!(!shown.contains(&token.expose()[4..]));
    }
}
