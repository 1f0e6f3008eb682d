//! "Last used" time, address and user agent of each device, kept in memory
//! and written in one batch every few seconds instead of one write per request.

use std::mem;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;

use crate::credential::DeviceId;
use crate::domain::{Device, LastUse, Timestamp};
use crate::store::{CredentialTable, Store, StoreError};

/// Keyed by device id; foldhash for the reason the credential cache uses it.
type HashMap<K, V> = foldhash::HashMap<K, V>;

/// One per credential table: device passwords, API access authorisations.
pub struct LastUsedRecorder {
    table: CredentialTable,
    pending: Mutex<HashMap<String, (DeviceId, LastUse)>>,
}

impl Default for LastUsedRecorder {
    fn default() -> Self {
        Self::for_table(CredentialTable::Devices)
    }
}

impl LastUsedRecorder {
    pub fn for_table(table: CredentialTable) -> Self {
        Self {
            table,
            pending: Mutex::default(),
        }
    }

    /// Notes a use of the device at `now`, and returns it. `stored` is the
    /// last use the database knew of when the credential was read: the
    /// recent addresses carry on from it.
    pub fn record(
        &self,
        id: &DeviceId,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
        now: Timestamp,
        stored: Option<&LastUse>,
    ) -> LastUse {
        let mut pending = self.lock();
        let mut recent = stored.map(|s| s.recent).unwrap_or_default();
        if let Some((_, used)) = pending.get_mut(id.as_str()) {
            // The common case, the same client again: only the time changes.
            if used.ip == ip && used.user_agent.as_deref() == user_agent.map(str::trim) {
                used.at = used.at.max(now);
                return used.clone();
            }
            recent = used.recent;
        }
        if let Some(ip) = ip {
            recent.note(ip);
        }
        let used = LastUse {
            at: now,
            ip,
            user_agent: user_agent
                .and_then(LastUse::clean_user_agent)
                .map(Arc::from),
            recent,
        };
        pending.insert(id.as_str().to_owned(), (id.clone(), used.clone()));
        used
    }

    /// Shows not-yet-written use on a device read from the store.
    pub fn overlay(&self, device: &mut Device) {
        self.overlay_on(&device.id, &mut device.last_used);
    }

    /// Shows not-yet-written use of the credential `id` on what was read
    /// from the store.
    pub fn overlay_on(&self, id: &DeviceId, last_used: &mut Option<LastUse>) {
        if let Some((_, used)) = self.lock().get(id.as_str()) {
            if last_used.as_ref().is_none_or(|stored| stored.at <= used.at) {
                *last_used = Some(used.clone());
            }
        }
    }

    /// Forgets pending use of a deleted device.
    pub fn forget(&self, id: &DeviceId) {
        self.lock().remove(id.as_str());
    }

    /// Writes everything pending. On failure the batch goes back, merged with
    /// anything newer recorded meanwhile, to be written next time.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let batch = mem::take(&mut *self.lock());
        if batch.is_empty() {
            return Ok(0);
        }
        let uses: Vec<(DeviceId, LastUse)> = batch.values().cloned().collect();
        match store.record_last_used(self.table, &uses).await {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                let mut pending = self.lock();
                for (key, (id, used)) in batch {
                    match pending.get(&key) {
                        Some((_, newer)) if newer.at >= used.at => {}
                        _ => {
                            pending.insert(key, (id, used));
                        }
                    }
                }
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DeviceId, LastUse)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
