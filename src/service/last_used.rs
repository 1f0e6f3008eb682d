//! "Last used" time, address and user agent of each device, kept in memory
//! and written in one batch every few seconds instead of one write per request.

use std::hash::BuildHasher;
use std::mem;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

use crate::credential::DeviceId;
use crate::domain::{Device, LastUse, Timestamp};
use crate::store::{CredentialTable, Store, StoreError};

/// Keyed by device id; foldhash for the reason the credential cache uses it.
type HashMap<K, V> = foldhash::HashMap<K, V>;

/// Each credential's pending use is in one of this many maps, each behind
/// its own lock: every authenticated request notes its use, and with one
/// lock for all, requests for different credentials on different workers
/// would wait for each other.
const SHARDS: usize = 16;

type Pending = HashMap<DeviceId, LastUse>;

/// One per credential table: device passwords, API access authorisations.
pub struct LastUsedRecorder {
    table: CredentialTable,
    shards: [Mutex<Pending>; SHARDS],
    /// Picks a credential's shard.
    hasher: foldhash::fast::RandomState,
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
            shards: Default::default(),
            hasher: Default::default(),
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
        let mut pending = self.shard(id);
        let mut recent = stored.map(|s| s.recent).unwrap_or_default();
        if let Some(used) = pending.get_mut(id) {
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
        pending.insert(id.clone(), used.clone());
        used
    }

    /// Shows not-yet-written use on a device read from the store.
    pub fn overlay(&self, device: &mut Device) {
        self.overlay_on(&device.id, &mut device.last_used);
    }

    /// Shows not-yet-written use of the credential `id` on what was read
    /// from the store.
    pub fn overlay_on(&self, id: &DeviceId, last_used: &mut Option<LastUse>) {
        if let Some(used) = self.shard(id).get(id) {
            if last_used.as_ref().is_none_or(|stored| stored.at <= used.at) {
                *last_used = Some(used.clone());
            }
        }
    }

    /// Forgets pending use of a deleted device.
    pub fn forget(&self, id: &DeviceId) {
        self.shard(id).remove(id);
    }

    /// Writes everything pending. On failure the batch goes back, merged with
    /// anything newer recorded meanwhile, to be written next time.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let uses: Vec<(DeviceId, LastUse)> = self
            .shards
            .iter()
            .flat_map(|shard| mem::take(&mut *lock(shard)))
            .collect();
        if uses.is_empty() {
            return Ok(0);
        }
        match store.record_last_used(self.table, &uses).await {
            Ok(()) => Ok(uses.len()),
            Err(e) => {
                for (id, used) in uses {
                    let mut pending = self.shard(&id);
                    match pending.get(&id) {
                        Some(newer) if newer.at >= used.at => {}
                        _ => {
                            pending.insert(id, used);
                        }
                    }
                }
                Err(e)
            }
        }
    }

    fn shard(&self, id: &DeviceId) -> MutexGuard<'_, Pending> {
        let index = self.hasher.hash_one(id) as usize % SHARDS;
        lock(&self.shards[index])
    }
}

fn lock(shard: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    // A panic while holding it cannot leave a map inconsistent.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_credential_keeps_its_own_use_whatever_its_shard() {
        let recorder = LastUsedRecorder::default();
        let ids: Vec<DeviceId> = (0..200)
            .map(|i| DeviceId::parse(&format!("{:08}", 10_000_000 + i)).unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            let at = Timestamp::from_millis(1_000 + i as i64);
            recorder.record(id, Some(ip), Some("agent"), at, None);
        }
        for (i, id) in ids.iter().enumerate() {
            let mut seen = None;
            recorder.overlay_on(id, &mut seen);
            let seen = seen.expect("noted");
            assert_eq!(seen.at, Timestamp::from_millis(1_000 + i as i64));
            assert_eq!(
                seen.ip,
                Some(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]))
            );
        }
        recorder.forget(&ids[7]);
        let mut seen = None;
        recorder.overlay_on(&ids[7], &mut seen);
        assert!(seen.is_none());
        let total: usize = recorder.shards.iter().map(|s| lock(s).len()).sum();
        assert_eq!(total, ids.len() - 1);
        // Spread over the shards, not all in one.
        assert!(
            recorder
                .shards
                .iter()
                .filter(|s| !lock(s).is_empty())
                .count()
                > 1
        );
    }
}
