use super::{Email, Permissions, Timestamp};

/// The database key of an account; shown only to administrators (the
/// admin pages' addresses, the admin API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub i64);

#[derive(Clone, Debug)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub name: String,
    pub permissions: Permissions,
    pub enabled: bool,
    pub two_factor_enabled: bool,
    pub created_at: Timestamp,
}
