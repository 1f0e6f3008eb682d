//! HTTP Basic credentials (RFC 7617 over RFC 7235), parsed without panics.

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use zeroize::Zeroizing;

use crate::credential::Secret;

/// Standard base64; padding optional, since some clients drop it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    /// The scheme is not `Basic`.
    NotBasic,
    /// Not base64, not UTF-8, or no colon.
    Malformed,
}

pub struct BasicCredentials {
    /// Everything before the first colon.
    pub user_id: String,
    /// Everything after it, colons included.
    pub password: Secret,
}

pub fn parse(header: &[u8]) -> Result<BasicCredentials, BasicError> {
    let header = std::str::from_utf8(header).map_err(|_| BasicError::Malformed)?;
    let header = header.trim_matches([' ', '\t']);
    let (scheme, rest) = header.split_once([' ', '\t']).unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::NotBasic);
    }
    let encoded = rest.trim_matches([' ', '\t']);
    if encoded.is_empty() || encoded.contains([' ', '\t']) {
        return Err(BasicError::Malformed);
    }
    let decoded = Zeroizing::new(LENIENT.decode(encoded).map_err(|_| BasicError::Malformed)?);
    let text = std::str::from_utf8(&decoded).map_err(|_| BasicError::Malformed)?;
    let (user_id, password) = text.split_once(':').ok_or(BasicError::Malformed)?;
    Ok(BasicCredentials {
        user_id: user_id.to_owned(),
        password: Secret::from(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_well_formed_headers() {
        for (header, user, password) in [
            (
                format!("Basic {}", b64(b"10001234:lkd_abc")),
                "10001234",
                "lkd_abc",
            ),
            (format!("basic {}", b64(b"1:2")), "1", "2"),
            (format!("BASIC  {} ", b64(b"1:2")), "1", "2"),
            (format!("Basic {}", b64(b"id:pa:ss:")), "id", "pa:ss:"),
            (format!("Basic {}", b64(b":empty-user")), "", "empty-user"),
            (format!("Basic {}", b64(b"id:")), "id", ""),
            (
                format!("Basic {}", b64("jö:pässwörd".as_bytes())),
                "jö",
                "pässwörd",
            ),
            // unpadded
            (
                format!("Basic {}", b64(b"ab:c").trim_end_matches('=')),
                "ab",
                "c",
            ),
        ] {
            let parsed = parse(header.as_bytes()).unwrap_or_else(|e| panic!("{header}: {e:?}"));
            assert_eq!(parsed.user_id, user);
            assert_eq!(parsed.password.expose(), password);
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let table: &[(&[u8], BasicError)] = &[
            (b"", BasicError::NotBasic),
            (b"Bearer abc", BasicError::NotBasic),
            (b"Basicabc", BasicError::NotBasic),
            (b"Digest username=x", BasicError::NotBasic),
            (b"Basic", BasicError::Malformed),
            (b"Basic ", BasicError::Malformed),
            (b"Basic !!!!", BasicError::Malformed),
            (b"Basic MTIzNDU2Nzg", BasicError::Malformed), // "12345678": no colon
            (b"Basic MTI= MTI=", BasicError::Malformed),
            (b"Basic /w==", BasicError::Malformed), // 0xFF: not UTF-8
            (b"Basic \xff\xfe", BasicError::Malformed),
            (b"Basic ====", BasicError::Malformed),
            (b"Basic YQ===", BasicError::Malformed),
        ];
        for (header, expected) in table {
            assert_eq!(
                parse(header).err(),
                Some(*expected),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn random_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7617);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..64);
            let raw: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = parse(&raw);
            let mut header = b"Basic ".to_vec();
            header.extend(b64(&raw).bytes());
            if let Ok(parsed) = parse(&header) {
                // What parsed must be exactly what was encoded.
                let text = String::from_utf8(raw).unwrap();
                assert_eq!(
                    format!("{}:{}", parsed.user_id, parsed.password.expose()),
                    text
                );
            }
        }
    }
}
