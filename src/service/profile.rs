//! What members change about their own account.

use super::{Client, Member, Service, ServiceError};
use crate::credential::{MainPassword, Secret};
use crate::domain::DisplayName;

impl Service {
    pub async fn rename_account(&self, by: &Member, name: &str) -> Result<(), ServiceError> {
        let name =
            DisplayName::parse(name).map_err(|e| ServiceError::invalid("invalid_name", e))?;
        let account = by.account();
        let mut tx = self.begin_write().await?;
        if !tx.set_account_name(account.id, name.as_str()).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        Ok(tx.commit().await?)
    }

    /// Changes one's own main password. The current one is checked under
    /// the guessing throttle (a borrowed, unlocked browser must not make it
    /// cheap to try), device passwords stay as they are, and every other
    /// web session of the account ends in the same commit.
    pub async fn change_password(
        &self,
        by: &Member,
        current: Secret,
        new: Secret,
        client: &Client<'_>,
    ) -> Result<(), ServiceError> {
        let account = by.account();
        let (new, _) = self.new_password(Some(new), &account.email)?;
        let current =
            MainPassword::candidate(current).map_err(|_| ServiceError::InvalidCredentials)?;
        self.check_main_password_throttled(&account.email, &current, client, None)
            .await?;
        let hash = self.hasher.hash(&new).await?;
        let mut tx = self.begin_write().await?;
        if !tx.set_password_hash(account.id, &hash).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        tx.end_sessions(account.id, Some(by.session_digest()))
            .await?;
        tx.commit().await?;
        tracing::info!(account = %account.email, "main password changed by its owner");
        Ok(())
    }
}
