use std::fmt;
use std::str::FromStr;

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// May create and use device passwords.
    Synchronisation,
    /// Manages accounts and permissions.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 2] = [Permission::Synchronisation, Permission::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Synchronisation => "synchronisation",
            Permission::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Permission::Synchronisation => 1,
            Permission::Admin => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown permission {0:?}; known permissions are: synchronisation, admin.")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            // The American spelling is accepted; the British one is canonical.
            "synchronisation" | "synchronization" => Ok(Permission::Synchronisation),
            "admin" => Ok(Permission::Admin),
            _ => Err(UnknownPermission(raw.to_owned())),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A small set of permissions.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    pub fn remove(&mut self, permission: Permission) {
        self.0 &= !permission.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::default();
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("synchronisation".parse(), Ok(Permission::Synchronisation));
        assert_eq!(" Synchronization ".parse(), Ok(Permission::Synchronisation));
        assert_eq!("ADMIN".parse(), Ok(Permission::Admin));
        assert!("root".parse::<Permission>().is_err());
        assert!("".parse::<Permission>().is_err());
    }

    #[test]
    fn set_operations() {
        let mut set: Permissions = [Permission::Admin].into_iter().collect();
        assert!(set.contains(Permission::Admin));
        assert!(!set.contains(Permission::Synchronisation));
        set.insert(Permission::Synchronisation);
        set.remove(Permission::Admin);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Permission::Synchronisation]
        );
    }
}
