//! Device passwords managed by their owner in the web interface.

use super::{parse_device_name, Service};
use crate::credential::Token;
use crate::domain::{Account, AccountId, Device, Permission};
use crate::service::ServiceError;

impl Service {
    /// A new device password for a signed-in person, who needs the
    /// `synchronisation` permission for it.
    pub async fn create_own_device(
        &self,
        account: &Account,
        name: &str,
        device_type: Option<&str>,
    ) -> Result<(Device, Token), ServiceError> {
        require_synchronisation(account)?;
        let name = parse_device_name(name)?;
        self.create_device(account, name, device_type).await
    }

    /// "Change password" on one's own device.
    pub async fn regenerate_own_token(
        &self,
        account: &Account,
        id: &str,
    ) -> Result<(Device, Token), ServiceError> {
        require_synchronisation(account)?;
        let device = self.device_of(account.id, id).await?;
        self.replace_token(device, None).await
    }

    /// Deletes a device of `owner`'s: its owner's choice, or an administrator's.
    pub async fn delete_device_of(
        &self,
        owner: AccountId,
        id: &str,
    ) -> Result<Device, ServiceError> {
        let device = self.device_of(owner, id).await?;
        self.revoke_device(&device.id).await?;
        Ok(device)
    }
}

fn require_synchronisation(account: &Account) -> Result<(), ServiceError> {
    if account.permissions.contains(Permission::Synchronisation) {
        Ok(())
    } else {
        Err(ServiceError::PermissionMissing(Permission::Synchronisation))
    }
}
