//! Single writes for tests that set up or check rows one at a time: each
//! runs in a write transaction of its own, committed at once. What a
//! transaction does with several writes is tested on [`WriteTx`] itself.

use async_trait::async_trait;
use latchkey::credential::{DeviceId, SessionDigest, TokenDigest};
use latchkey::domain::{Account, AccountId, Device, DeviceName, Permission, SessionId, WebSession};
use latchkey::store::{NewAccount, NewDevice, NewSession, Serialise, Store, StoreError, WriteTx};

#[async_trait]
pub trait AutoCommit {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError>;
    async fn set_permission(
        &self,
        id: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<bool, StoreError>;
    async fn set_enabled(&self, id: AccountId, enabled: bool) -> Result<bool, StoreError>;
    async fn set_two_factor_enabled(
        &self,
        id: AccountId,
        enabled: bool,
    ) -> Result<bool, StoreError>;
    async fn set_account_name(&self, id: AccountId, name: &str) -> Result<bool, StoreError>;
    async fn insert_device(&self, device: &NewDevice) -> Result<Device, StoreError>;
    async fn rename_device(&self, id: &DeviceId, name: &DeviceName) -> Result<bool, StoreError>;
    async fn set_device_token(
        &self,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        digest: &TokenDigest,
    ) -> Result<bool, StoreError>;
    async fn delete_device(&self, id: &DeviceId) -> Result<bool, StoreError>;
    async fn create_session(&self, session: &NewSession) -> Result<WebSession, StoreError>;
    async fn delete_session(&self, account: AccountId, id: SessionId) -> Result<bool, StoreError>;
    async fn end_sessions(
        &self,
        account: AccountId,
        keep: Option<&SessionDigest>,
    ) -> Result<u64, StoreError>;
}

async fn begin(store: &dyn Store) -> Result<Box<dyn WriteTx>, StoreError> {
    store.begin_write(Serialise::Ordinary).await
}

#[async_trait]
impl AutoCommit for dyn Store {
    async fn create_account(&self, account: &NewAccount) -> Result<Account, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.create_account(account).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn set_permission(
        &self,
        id: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.set_permission(id, permission, granted).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn set_enabled(&self, id: AccountId, enabled: bool) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.set_enabled(id, enabled).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn set_two_factor_enabled(
        &self,
        id: AccountId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.set_two_factor_enabled(id, enabled).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn set_account_name(&self, id: AccountId, name: &str) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.set_account_name(id, name).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn insert_device(&self, device: &NewDevice) -> Result<Device, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.insert_device(device).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn rename_device(&self, id: &DeviceId, name: &DeviceName) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.rename_device(id, name).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn set_device_token(
        &self,
        id: &DeviceId,
        expected: Option<&TokenDigest>,
        digest: &TokenDigest,
    ) -> Result<bool, StoreError> {
        // No expiry condition here: these writes set rows up, they race nothing.
        let had_expiry = match self.device(id).await? {
            Some(device) => device.limits.expires_at,
            None => return Ok(false),
        };
        let mut tx = begin(self).await?;
        let new = latchkey::store::NewToken {
            digest: *digest,
            issued_at: latchkey::domain::Timestamp::now(),
            expires_at: None,
            previous_until: None,
        };
        let done = tx.set_device_token(id, expected, had_expiry, &new).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn delete_device(&self, id: &DeviceId) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.delete_device(id).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn create_session(&self, session: &NewSession) -> Result<WebSession, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.create_session(session).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn delete_session(&self, account: AccountId, id: SessionId) -> Result<bool, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.delete_session(account, id).await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn end_sessions(
        &self,
        account: AccountId,
        keep: Option<&SessionDigest>,
    ) -> Result<u64, StoreError> {
        let mut tx = begin(self).await?;
        let done = tx.end_sessions(account, keep).await?;
        tx.commit().await?;
        Ok(done)
    }
}
