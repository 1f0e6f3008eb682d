//! What people change about their own account.

use super::{parse_new_password, Client, Service};
use crate::credential::{MainPassword, SessionKey};
use crate::domain::{Account, DisplayName};
use crate::service::ServiceError;

impl Service {
    pub async fn rename_account(&self, account: &Account, name: &str) -> Result<(), ServiceError> {
        let name =
            DisplayName::parse(name).map_err(|e| ServiceError::invalid("invalid_name", e))?;
        self.store
            .set_account_name(account.id, name.as_str())
            .await?;
        Ok(())
    }

    /// Changes one's own main password. The current one is checked under
    /// the guessing throttle (a borrowed, unlocked browser must not make it
    /// cheap to try), device passwords stay as they are, and every other
    /// web session of the account ends.
    pub async fn change_own_password(
        &self,
        account: &Account,
        current: String,
        new: String,
        keep: &SessionKey,
        client: &Client<'_>,
    ) -> Result<(), ServiceError> {
        let new = parse_new_password(new)?;
        let current =
            MainPassword::candidate(current).map_err(|_| ServiceError::InvalidCredentials)?;
        self.check_main_password_throttled(&account.email, &current, client)
            .await?;
        let hash = self.hasher.hash(&new).await?;
        self.store
            .set_password_hash(account.id, &hash, Some(&keep.digest()))
            .await?;
        tracing::info!(account = %account.email, "main password changed by its owner");
        Ok(())
    }
}
