//! Work nobody asks for: following other nodes' changes, writing last-use
//! data, forgetting refilled throttle buckets.

use super::Service;
use crate::domain::Timestamp;
use crate::store::{CredentialChange, StoreError};

impl Service {
    /// Applies a change another process (or node) committed.
    pub fn apply_change(&self, change: CredentialChange) {
        match change {
            CredentialChange::Device(id) => self.cache.invalidate_device(id.as_str()),
            CredentialChange::Access(id) => self.access_cache.invalidate_device(id.as_str()),
            CredentialChange::Account(id) => self.cache.invalidate_account(id),
            CredentialChange::Everything => {
                self.cache.clear();
                self.access_cache.clear();
            }
            CredentialChange::FeedLost => {
                self.cache.feed_lost();
                self.access_cache.feed_lost();
            }
            CredentialChange::FeedRestored => {
                self.cache.feed_restored();
                self.access_cache.feed_restored();
            }
            CredentialChange::FeedCaughtUp => {
                self.cache.feed_caught_up();
                self.access_cache.feed_caught_up();
            }
        }
    }

    /// Writes pending last-used data of every kind of credential.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        let devices = self.last_used.flush(self.store.as_ref()).await;
        let access = self.access_last_used.flush(self.store.as_ref()).await?;
        Ok(devices? + access)
    }

    /// Forgets throttle buckets that have refilled, and used sign-in form
    /// tokens that have expired anyway.
    pub async fn prune_throttle(&self) -> Result<u64, StoreError> {
        let forms = self
            .store
            .prune_spent_sign_in_forms(Timestamp::now().seconds())
            .await?;
        Ok(self.throttle.prune().await? + forms)
    }

    pub fn cached_credentials(&self) -> usize {
        self.cache.len() + self.access_cache.len()
    }
}
