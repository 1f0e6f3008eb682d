//! Accounts, devices and permissions: plain types and the rules that govern
//! them. Nothing here knows HTTP or SQL.

mod access;
mod account;
mod device;
mod device_authorization;
mod email;
pub mod limits;
mod name;
mod password_policy;
mod permission;
pub mod rules;
mod session;
mod time;
mod two_factor;

pub use access::{parse_description, AccessAuthorisation, AccessId, MAX_DESCRIPTION_CHARS};
pub use account::{Account, AccountId};
pub use device::{
    Device, DeviceTypes, LastUse, RecentAddresses, DEFAULT_DEVICE_TYPES, MAX_USER_AGENT_CHARS,
    UNKNOWN_DEVICE_TYPE,
};
pub use device_authorization::{
    poll_decision, AuthorizationStatus, DeviceAuthorization, PollDecision, SLOW_DOWN_STEP,
};
pub use email::{Email, EmailError};
pub use limits::{CredentialLimits, LifetimePolicy, RequestedLimits, Scope};
pub use name::{DeviceName, DisplayName, NameError, MAX_NAME_CHARS};
pub use password_policy::{
    MinLengthOutOfRange, PasswordPolicy, PasswordRejection, MAX_MIN_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
};
pub use permission::{Permission, Permissions, UnknownPermission};
pub use rules::Refusal;
pub use session::{Notice, SessionId, SessionPolicy, WebSession};
pub use time::{Clock, Timestamp};
pub use two_factor::{Requirement, Standing, TwoFactorPolicy};
