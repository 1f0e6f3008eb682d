use super::{Email, Permission, Permissions, Timestamp};

/// The database key of an account; never shown to API clients.
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

impl Account {
    /// Whether this account's device passwords may authenticate.
    pub fn may_use_devices(&self) -> bool {
        self.enabled && self.permissions.contains(Permission::Synchronisation)
    }
}
