//! Credentials: what a device token looks like, how it is checked, and how
//! main passwords are hashed.

mod device_id;
mod password;
mod secret;
mod session;
mod token;

pub use device_id::{DeviceId, DeviceIdError};
pub use password::{HashingError, MainPassword, PasswordError, PasswordHasher, MAX_PASSWORD_BYTES};
pub use secret::Secret;
pub use session::{CsrfSecret, SessionDigest, SessionKey};
pub use token::{Token, TokenDigest, TokenFormatError, TOKEN_LEN, TOKEN_PREFIX};
