//! The tests' own RFC 6238 (checked against the RFC's vectors), so the
//! server's codes are checked by an implementation it does not share, and
//! what people do with a browser: enrol, sign in with a code.

use hmac::{Hmac, Mac};
use latchkey::domain::Clock;
use sha1::Sha1;

use crate::visitor::{Page, Visitor};

/// RFC 4648 base32, without padding, spaces ignored.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The 6-digit code of `secret` at Unix time `time`.
pub fn code_at(secret: &[u8], time: i64) -> String {
    let counter = (time.div_euclid(30) as u64).to_be_bytes();
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(&counter);
    let hash = mac.finalize().into_bytes();
    let offset = (hash[19] & 0x0f) as usize;
    let value = u32::from_be_bytes(hash[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

#[test]
fn the_tests_totp_passes_the_rfc_6238_vectors() {
    let key = b"12345678901234567890";
    for (time, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(code_at(key, time), code[2..], "T = {time}");
    }
    assert_eq!(
        base32_decode("GEZD GNBV GY3T QOJQ GEZDGNBVGY3TQOJQ"),
        key.to_vec()
    );
}

/// An enrolled account as the test knows it.
pub struct Enrolled {
    pub secret: Vec<u8>,
    pub secret_text: String,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code the app shows now, by the server's clock.
    pub fn code(&self, clock: &Clock) -> String {
        code_at(&self.secret, clock.now().seconds())
    }
}

/// Turns two-factor authentication on for the visitor's account, reading
/// the secret off the enrolment page; the clock then moves to the next
/// step, so the code just used is not the current one any more.
pub async fn enrol(visitor: &Visitor, clock: &Clock) -> Enrolled {
    let page = visitor.get("/settings/security/two-factor").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg"), "QR code inline");
    let secret_text = page.text_of("totp-secret").expect("secret shown");
    let secret = base32_decode(&secret_text);
    assert_eq!(secret.len(), 20, "160-bit secret");
    let code = code_at(&secret, clock.now().seconds());
    let done = visitor
        .post(
            "/settings/security/two-factor",
            &[("csrf", &page.csrf()), ("code", &code)],
        )
        .await;
    done.assert_redirect("/settings/security");
    let shown = visitor.get("/settings/security").await;
    let recovery_codes: Vec<String> = (1..=10)
        .map(|i| {
            shown
                .text_of(&format!("recovery-code-{i}"))
                .expect("recovery code shown")
        })
        .collect();
    assert!(shown
        .body
        .contains("Two-factor authentication is <strong>on</strong>"));
    next_step(clock);
    Enrolled {
        secret,
        secret_text,
        recovery_codes,
    }
}

/// Moves the clock on by one TOTP step.
pub fn next_step(clock: &Clock) {
    clock.advance(std::time::Duration::from_secs(30));
}

/// Email and password, expecting the second step.
pub async fn password_step(visitor: &Visitor, email: &str, password: &str) {
    let page = visitor.sign_in_as(email, password).await;
    page.assert_redirect("/sign-in/code");
    assert!(
        page.cookie("latchkey_session").is_none(),
        "no session before the second step"
    );
    assert!(
        page.cookie("latchkey_trusted").is_none(),
        "not trusted before the second step"
    );
}

/// Submits a code on the second step's page.
pub async fn code_step(visitor: &Visitor, code: &str) -> Page {
    visitor
        .submit("/sign-in/code", "/sign-in/code", &[("code", code)])
        .await
}
