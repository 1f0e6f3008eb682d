//! HTTP Basic credentials (RFC 7617 over RFC 7235), parsed without panics.

use base64_simd::{Out, STANDARD, STANDARD_NO_PAD};
use zeroize::{Zeroize, Zeroizing};

/// Standard base64 into `out`, padded or not, since some clients drop the
/// padding; `None` for anything else, or when `out` is too small. The
/// `base64` crate's general engine spent more on an 88-character header
/// than any other part of a request's credential check but SHA-256
/// (bench/instructions.sh).
fn decode_into<'a>(encoded: &[u8], out: &'a mut [u8]) -> Option<&'a mut [u8]> {
    let engine = if encoded.ends_with(b"=") {
        &STANDARD
    } else {
        &STANDARD_NO_PAD
    };
    if engine.decoded_length(encoded).ok()? > out.len() {
        return None;
    }
    engine.decode(encoded, Out::from_slice(out)).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    /// The scheme is not `Basic`.
    NotBasic,
    /// Not base64, not UTF-8, or no colon.
    Malformed,
}

/// Decoded credentials no longer than this (a device id and token are 74
/// bytes) are kept on the stack: the hot path allocates nothing for them.
const INLINE: usize = 128;

/// The decoded `user-id:password`, wiped on drop.
pub struct BasicCredentials {
    decoded: Decoded,
    /// Where the first colon is.
    colon: usize,
}

enum Decoded {
    Inline(Inline),
    Heap(Zeroizing<Vec<u8>>),
}

/// A stack buffer that wipes, on drop, the bytes that may have been
/// written: all of them until a decoding succeeded, then the decoded ones.
struct Inline {
    buf: [u8; INLINE],
    len: usize,
}

impl Drop for Inline {
    fn drop(&mut self) {
        self.buf[..self.len].zeroize();
    }
}

impl BasicCredentials {
    fn bytes(&self) -> &[u8] {
        match &self.decoded {
            Decoded::Inline(inline) => &inline.buf[..inline.len],
            Decoded::Heap(buf) => &buf[..],
        }
    }

    /// Everything before the first colon, and everything after it (colons
    /// included).
    pub fn split(&self) -> (&str, &str) {
        // Checked to be UTF-8 when parsed, and split at an ASCII colon.
        let text = std::str::from_utf8(self.bytes()).unwrap_or_default();
        match text.split_at_checked(self.colon) {
            Some((user_id, rest)) => (user_id, rest.get(1..).unwrap_or_default()),
            None => ("", ""),
        }
    }
}

/// Spaces and tabs, the only whitespace RFC 7235 allows around the parts.
fn is_blank(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t')
}

fn trim_blanks(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_blank(first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_blank(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// Parsed as bytes, which is what a header value is: the scheme, the
/// base64 and the colon are ASCII, and only the decoded credentials need to
/// be UTF-8, checked once.
pub fn parse(header: &[u8]) -> Result<BasicCredentials, BasicError> {
    let header = trim_blanks(header);
    let (scheme, rest) = match header.iter().position(is_blank) {
        Some(blank) => header.split_at(blank),
        None => (header, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(BasicError::NotBasic);
    }
    // A blank inside is not base64, and refused by the decoder.
    let encoded = trim_blanks(rest);
    if encoded.is_empty() {
        return Err(BasicError::Malformed);
    }
    let decoded = if encoded.len() / 4 * 3 + 2 <= INLINE {
        let mut inline = Inline {
            buf: [0; INLINE],
            len: INLINE,
        };
        inline.len = decode_into(encoded, &mut inline.buf[..])
            .ok_or(BasicError::Malformed)?
            .len();
        Decoded::Inline(inline)
    } else {
        let mut buf = Zeroizing::new(vec![0; encoded.len() / 4 * 3 + 2]);
        let len = decode_into(encoded, &mut buf[..])
            .ok_or(BasicError::Malformed)?
            .len();
        buf.truncate(len);
        Decoded::Heap(buf)
    };
    let mut credentials = BasicCredentials { decoded, colon: 0 };
    let bytes = credentials.bytes();
    std::str::from_utf8(bytes).map_err(|_| BasicError::Malformed)?;
    credentials.colon = bytes
        .iter()
        .position(|&b| b == b':')
        .ok_or(BasicError::Malformed)?;
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        use base64::Engine;
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
            assert_eq!(parsed.split(), (user, password));
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
            // "a", with bits left over that no encoder writes.
            (b"Basic YR==", BasicError::Malformed),
            (b"Basic YR", BasicError::Malformed),
            (b"Basic Y", BasicError::Malformed),
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
            // Both sides of the inline buffer's size.
            let len = rng.gen_range(0..200);
            let raw: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = parse(&raw);
            let mut header = b"Basic ".to_vec();
            header.extend(b64(&raw).bytes());
            if let Ok(parsed) = parse(&header) {
                // What parsed must be exactly what was encoded.
                let text = String::from_utf8(raw).unwrap();
                let (user_id, password) = parsed.split();
                assert_eq!(format!("{user_id}:{password}"), text);
            }
        }
    }
}
