//! Credentials: what a device token looks like, how it is checked, and how
//! main passwords are hashed.

mod device_code;
mod device_id;
mod password;
mod secret;
mod server_key;
mod session;
mod signed;
mod token;
mod totp;

pub use device_code::{
    DeviceAuthorizationKeys, DeviceCode, UserCode, USER_CODE_ALPHABET, USER_CODE_CHARS,
};
pub use device_id::{DeviceId, DeviceIdError};
pub use password::{HashingError, MainPassword, PasswordError, PasswordHasher, MAX_PASSWORD_BYTES};
pub use secret::Secret;
pub use server_key::{readable_by_others, Created, KeyFileError, ServerKey, Subkey};
pub use session::{CsrfSecret, SessionDigest, SessionKey};
pub use signed::{
    FormToken, SignInForms, TrustedBrowsers, TrustedEntry, SIGN_IN_FORM_LIFETIME,
    TRUSTED_BROWSER_LIFETIME,
};
pub use token::{
    Token, TokenDigest, TokenFormatError, TokenKind, ACCESS_TOKEN_PREFIX, TOKEN_LEN, TOKEN_PREFIX,
};
pub use totp::{
    looks_like_totp_code, RecoveryCode, RecoveryDigests, SealError, SecretBox, TotpSecret,
    RECOVERY_CODES, TOTP_DRIFT_STEPS, TOTP_STEP_SECONDS,
};
