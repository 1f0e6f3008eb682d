use std::time::Duration;

use crate::credential::HashingError;
use crate::domain::{Permission, Refusal};
use crate::store::StoreError;

/// Why an operation did not happen. Each variant maps to one stable
/// API error code in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input that does not parse; `code` is the stable error code.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Email and main password do not match an account (the same answer for
    /// an unknown email as for a wrong password).
    #[error("The email address or password is wrong.")]
    InvalidCredentials,
    /// Device id and token do not match a device.
    #[error("The device ID or device password is wrong, or the device has been deleted.")]
    InvalidDeviceCredentials,
    #[error("Two-factor authentication is on for this account, so device passwords cannot be created with email and password alone. Either create the device password in the web interface (Personal settings, Devices tab, New device password), or use the app sign-in flow, in which you approve the app in the web interface (see docs/api.md#app-sign-in).")]
    TwoFactorEnabled,
    /// A second-factor code that is wrong, or was used already.
    #[error("That code is wrong, or it was used already. Enter the current code from your authenticator app, or one of your recovery codes.")]
    WrongCode,
    /// The sign-in waiting for its second step is gone: expired, too many
    /// wrong codes, or finished elsewhere.
    #[error("This sign-in has expired or had too many wrong codes. Sign in again.")]
    SignInExpired,
    #[error("This account lacks the \"{}\" permission needed for device passwords. Ask your administrator to grant it.", .0.as_str())]
    PermissionMissing(Permission),
    #[error("This account is disabled. Ask your administrator to enable it.")]
    AccountDisabled,
    #[error("This API access authorisation is disabled. Ask an administrator to enable it.")]
    AccessDisabled,
    /// An API access authorisation on a route that acts for an account.
    #[error("An API access authorisation belongs to no account, so it cannot do this: it acts for an account's device passwords. Use a device password of that account.")]
    AccountRequired,
    #[error("There is no API access authorisation with that ID.")]
    AccessNotFound,
    #[error("Only administrators can do this.")]
    NotAnAdministrator,
    /// What the account was asked for by: "the email address a@b.c", "the ID 5".
    #[error("No account has {0}.")]
    AccountNotFound(String),
    #[error("There is no device with that ID that you can see.")]
    DeviceNotFound,
    #[error("An account with the email address {0} already exists.")]
    EmailTaken(String),
    /// A guessing budget is spent: the attempt was not checked at all, so
    /// the message must not suggest the password was wrong.
    #[error("Too many failed attempts from your network, so this attempt was not checked. Try again in {} seconds.", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    /// An address has as many app sign-in requests waiting as it may.
    #[error("Too many app sign-in requests from your network are waiting for approval. Approve or deny them, or try again in {} minutes.", .retry_after.as_secs().div_ceil(60).max(1))]
    TooManyPendingAuthorizations { retry_after: Duration },
    /// The account's consecutive-failure cap is reached: only browsers that
    /// signed in to it before may try until it is cleared.
    #[error("This account has had too many failed sign-in attempts in a row, so your password was not checked. Sign in from a browser you have signed in with before, or ask an administrator to clear the failed attempts.")]
    SignInStopped,
    #[error("The server is busy checking passwords. Try again in a few seconds.")]
    Busy,
    /// The device kept changing under a decision made from how it stood.
    #[error(
        "The credential was changed by another request at the same time. Look at it again and retry."
    )]
    ChangedMeanwhile,
    #[error("This credential's scope is too narrow for this request: it needs scope \"{0}\".")]
    InsufficientScope(crate::domain::Scope),
    #[error("This device password has expired. Give the device a new password with an expiry, in Personal settings, Devices tab, Change password.")]
    CredentialExpired,
    #[error("This device password is valid longer than the server's policy allows ({0} days). Give the device a new password within the policy.")]
    LifetimeExceeded(u32),
    #[error("This device password may not be used from your network address.")]
    AddressNotAllowed,
    #[error("The X-Forwarded-For header from the proxy cannot be read, so the client's address is unknown.")]
    BadForwardedFor,
    #[error("The database is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl ToString) -> Self {
        ServiceError::Invalid {
            code,
            message: message.to_string(),
        }
    }
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AccountDisabled => ServiceError::AccountDisabled,
            Refusal::TwoFactorEnabled => ServiceError::TwoFactorEnabled,
            Refusal::PermissionMissing(permission) => ServiceError::PermissionMissing(permission),
            Refusal::NotAnAdministrator => ServiceError::NotAnAdministrator,
            Refusal::InsufficientScope(scope) => ServiceError::InsufficientScope(scope),
            Refusal::CredentialExpired => ServiceError::CredentialExpired,
            Refusal::LifetimeExceeded(days) => ServiceError::LifetimeExceeded(days),
            Refusal::AddressNotAllowed => ServiceError::AddressNotAllowed,
            Refusal::LastAdministrator => ServiceError::invalid(
                "last_administrator",
                "This would leave no enabled administrator. Make another account an administrator first, or nobody could administer this server.",
            ),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => ServiceError::Unavailable(why),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<HashingError> for ServiceError {
    fn from(e: HashingError) -> Self {
        match e {
            HashingError::Busy => {
                // The one 5xx without a cause of its own to log.
                tracing::warn!(
                    "every password-hashing slot is busy: a request was refused (503 busy)"
                );
                ServiceError::Busy
            }
            HashingError::Failed(why) => ServiceError::Internal(why),
        }
    }
}
