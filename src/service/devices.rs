//! Device passwords: created with a main password (the article's route) or
//! by a signed-in member, then listed, renamed, given a new password and
//! deleted by whoever the actor says may.

use super::actor::{DeviceActor, DeviceCaller};
use super::{parse_device_name, parse_email, Client, Member, PasswordDeviceRequest};
use super::{Service, ServiceError};
use crate::credential::{DeviceId, MainPassword, Token, TokenDigest};
use crate::domain::limits::{self, LimitsRejection, UseContext, MAX_GRACE_SECONDS};
use crate::domain::{
    rules, Account, CredentialLimits, Device, DeviceName, LastUse, Permission, RequestedLimits,
    Timestamp,
};
use crate::store::{NewDevice, NewToken, StoreError};

/// What "Change password" was asked for besides a new token.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenChange {
    /// How long the old token keeps working; 0: it dies at once.
    pub grace_seconds: u32,
    /// A new expiry; without one, the old one stays while it is ahead.
    pub expires_at: Option<Timestamp>,
}

/// How a device stands now.
#[derive(Clone, Copy, Debug)]
pub struct DeviceState {
    pub expired: bool,
    /// Until when the token before the last "Change password" still works.
    pub previous_token_until: Option<Timestamp>,
}

fn rejected(rejection: LimitsRejection) -> ServiceError {
    ServiceError::invalid(rejection.code(), rejection)
}

/// How often a device's expiry may change under a decision made from it
/// before the operation gives up with [`ServiceError::ChangedMeanwhile`].
pub(super) const CHANGED_MEANWHILE_ATTEMPTS: usize = 3;

/// How often a random device id may collide before we give up.
const DEVICE_ID_ATTEMPTS: usize = 5;

impl Service {
    /// The article's API route: email and main password buy one device.
    pub async fn create_device_with_password(
        &self,
        request: PasswordDeviceRequest,
        client: &Client<'_>,
    ) -> Result<(Device, Token), ServiceError> {
        let email = parse_email(&request.email)?;
        let password = MainPassword::candidate(request.password)
            .map_err(|e| ServiceError::invalid("invalid_password", e))?;
        let name = parse_device_name(&request.device_name)?;
        let account = self
            .check_main_password_throttled(&email, &password, client, None)
            .await?;
        rules::password_alone_may_act_for(&account)?;
        rules::may_use_device_passwords(&account.permissions)?;
        let token = Token::generate();
        let device = self
            .insert_device(
                &account,
                name,
                request.device_type.as_deref(),
                token.digest(),
                None,
                request.limits,
            )
            .await?;
        Ok((device, token))
    }

    /// A new device password for a signed-in member.
    pub async fn create_device(
        &self,
        by: &Member,
        name: &str,
        device_type: Option<&str>,
        limits: RequestedLimits,
    ) -> Result<(Device, Token), ServiceError> {
        by.may_manage()?;
        let name = parse_device_name(name)?;
        let token = Token::generate();
        let device = self
            .insert_device(
                by.account(),
                name,
                device_type,
                token.digest(),
                None,
                limits,
            )
            .await?;
        Ok((device, token))
    }

    /// Every new device password comes from here: the password route, New
    /// device password, and an approved app sign-in, which `approving`
    /// marks approved in the same transaction (or, if it is no longer
    /// pending, the device is not made).
    pub(super) async fn insert_device(
        &self,
        account: &Account,
        name: DeviceName,
        device_type: Option<&str>,
        token_digest: TokenDigest,
        approving: Option<i64>,
        limits: RequestedLimits,
    ) -> Result<Device, ServiceError> {
        let now = self.clock.now();
        let is_admin = account.permissions.contains(Permission::Admin);
        let limits =
            limits::limits_for_new(limits, is_admin, now, self.lifetime).map_err(rejected)?;
        let mut new = NewDevice {
            id: DeviceId::generate(),
            account_id: account.id,
            name,
            device_type: self.device_types.resolve(device_type),
            token_digest,
            created_at: now,
            limits,
        };
        for _ in 0..DEVICE_ID_ATTEMPTS {
            // A taken id spoils the transaction, so each attempt has its own.
            let mut tx = self.begin_write().await?;
            let device = match tx.insert_device(&new).await {
                Ok(device) => device,
                Err(StoreError::Conflict(_)) => {
                    new.id = DeviceId::generate();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(request) = approving {
                if !tx
                    .approve_device_authorization(request, account.id, &device.id, now)
                    .await?
                {
                    return Err(super::device_authorization::no_longer_pending());
                }
            }
            tx.commit().await?;
            tracing::info!(account = %account.email, device = %device.id, "device created");
            return Ok(device);
        }
        Err(ServiceError::Internal(
            "could not find a free device id".to_owned(),
        ))
    }

    /// A device the actor may see; any other device is "not found", whether
    /// or not it exists.
    pub async fn device(&self, by: &impl DeviceActor, id: &str) -> Result<Device, ServiceError> {
        if let Some(itself) = self.device_at_hand(by, id)? {
            return Ok(itself);
        }
        // Boxed, so that the common case above does not carry the store's
        // large future.
        Box::pin(async {
            let id = DeviceId::parse(id).map_err(|_| ServiceError::DeviceNotFound)?;
            match self.store.device(&id).await? {
                Some(mut device) if by.owner().is_none_or(|owner| owner == device.account_id) => {
                    self.last_used.overlay(&mut device);
                    Ok(device)
                }
                _ => Err(ServiceError::DeviceNotFound),
            }
        })
        .await
    }

    /// [`Self::device`], when it needs no lookup: the caller's own device,
    /// just used. `None` when only [`Self::device`] can tell.
    pub fn device_at_hand(
        &self,
        by: &impl DeviceActor,
        id: &str,
    ) -> Result<Option<Device>, ServiceError> {
        by.may_manage()?;
        Ok(by.itself(id))
    }

    /// [`Self::device_at_hand`] without a copy: a device password's own
    /// device, its use just now, and how it stands.
    pub fn own_device<'a>(
        &self,
        by: &'a DeviceCaller,
        id: &str,
    ) -> Result<Option<(&'a Device, &'a LastUse, DeviceState)>, ServiceError> {
        by.may_manage()?;
        if by.device().id.as_str() != id {
            return Ok(None);
        }
        let (device, used) = (by.device(), by.used());
        let state = self.credential_state(
            &device.limits,
            device.token_issued_at,
            Some(used),
            device.previous_token_until,
        );
        Ok(Some((device, used, state)))
    }

    /// The devices the actor may see: its account's, or every one.
    pub async fn devices(&self, by: &impl DeviceActor) -> Result<Vec<Device>, ServiceError> {
        by.may_manage()?;
        let mut devices = self.store.devices(by.owner()).await?;
        for device in &mut devices {
            self.last_used.overlay(device);
        }
        Ok(devices)
    }

    pub async fn rename_device(
        &self,
        by: &impl DeviceActor,
        id: &str,
        name: &str,
    ) -> Result<Device, ServiceError> {
        let name = parse_device_name(name)?;
        let mut device = self.device(by, id).await?;
        let mut tx = self.begin_write().await?;
        let renamed = tx.rename_device(&device.id, &name).await?;
        tx.commit().await?;
        self.cache.invalidate_device(device.id.as_str());
        if !renamed {
            return Err(ServiceError::DeviceNotFound);
        }
        tracing::info!(by = %by.acting(), device = %device.id, "device renamed");
        device.name = name;
        Ok(device)
    }

    /// The article's "Change password": same id, new token, old token dead
    /// at once, or with `change.grace_seconds` still working for that long.
    /// When a device changes its own password, the change is made
    /// only while the token it presented is still the stored one: of several
    /// requests sent with the same old token exactly one gets a new token,
    /// the others are told their credentials are no longer valid.
    pub async fn regenerate_token(
        &self,
        by: &impl DeviceActor,
        id: &str,
        change: TokenChange,
    ) -> Result<(Device, Token), ServiceError> {
        if change.grace_seconds > MAX_GRACE_SECONDS {
            return Err(ServiceError::invalid(
                "invalid_grace",
                format!("graceSeconds must be between 0 and {MAX_GRACE_SECONDS} (24 hours)."),
            ));
        }
        let mut device = self.device(by, id).await?;
        let now = self.clock.now();
        let expected = by
            .as_device()
            .filter(|(own, _)| **own == device.id)
            .map(|(_, presented)| *presented);
        let token = Token::generate();
        let previous_until = (change.grace_seconds > 0)
            .then(|| Timestamp::from_millis(now.millis() + i64::from(change.grace_seconds) * 1000));
        let mut attempts = 0;
        let expires_at = loop {
            // The new expiry, and whether the actor may ask for it, follow
            // from the stored one; the write happens only while that is still
            // stored, so a limit shortened meanwhile is never overwritten.
            let had = device.limits.expires_at;
            if let (Some(asked), Some(had)) = (change.expires_at, had) {
                if asked > had {
                    by.may_loosen_limits()?;
                }
            }
            let expires_at =
                limits::expiry_for(change.expires_at, had, now, self.lifetime).map_err(rejected)?;
            let mut tx = self.begin_write().await?;
            let replaced = tx
                .set_device_token(
                    &device.id,
                    expected.as_ref(),
                    had,
                    &NewToken {
                        digest: token.digest(),
                        issued_at: now,
                        expires_at,
                        previous_until,
                    },
                )
                .await?;
            tx.commit().await?;
            self.cache.invalidate_device(device.id.as_str());
            if replaced {
                break expires_at;
            }
            // Gone, its token changed, or its expiry changed since it was read.
            let not_replaced = match expected {
                Some(_) => ServiceError::InvalidDeviceCredentials,
                None => ServiceError::DeviceNotFound,
            };
            match self.store.device(&device.id).await? {
                Some(fresh) if fresh.limits.expires_at != had => {
                    attempts += 1;
                    if attempts == CHANGED_MEANWHILE_ATTEMPTS {
                        return Err(ServiceError::ChangedMeanwhile);
                    }
                    device = fresh;
                    self.last_used.overlay(&mut device);
                }
                _ => return Err(not_replaced),
            }
        };
        tracing::info!(by = %by.acting(), device = %device.id, grace_seconds = change.grace_seconds, "device password changed");
        device.limits.expires_at = expires_at;
        device.token_issued_at = now;
        device.previous_token_until = previous_until;
        Ok((device, token))
    }

    /// Replaces a device's limits; every node enforces them from then on.
    pub async fn set_device_limits(
        &self,
        by: &impl DeviceActor,
        id: &str,
        requested: RequestedLimits,
    ) -> Result<Device, ServiceError> {
        by.may_loosen_limits()?;
        let mut device = self.device(by, id).await?;
        let is_admin = match self.store.account(device.account_id).await? {
            Some(account) => account.permissions.contains(Permission::Admin),
            None => return Err(ServiceError::DeviceNotFound),
        };
        let now = self.clock.now();
        let expiry_given = requested.expires_at.is_some();
        let asked =
            limits::limits_for_new(requested, is_admin, now, self.lifetime).map_err(rejected)?;
        let mut attempts = 0;
        let limits = loop {
            let (limits, had_expiry) =
                self.limits_on(&asked, expiry_given, device.limits.expires_at, now)?;
            let mut tx = self.begin_write().await?;
            let changed = tx
                .set_device_limits(&device.id, &limits, had_expiry)
                .await?;
            tx.commit().await?;
            self.cache.invalidate_device(device.id.as_str());
            if changed {
                break limits;
            }
            match self.store.device(&device.id).await? {
                Some(fresh) if had_expiry.is_some_and(|had| had != fresh.limits.expires_at) => {
                    attempts += 1;
                    if attempts == CHANGED_MEANWHILE_ATTEMPTS {
                        return Err(ServiceError::ChangedMeanwhile);
                    }
                    device = fresh;
                    self.last_used.overlay(&mut device);
                }
                _ => return Err(ServiceError::DeviceNotFound),
            }
        };
        tracing::info!(by = %by.acting(), device = %device.id, "device limits changed");
        device.limits = limits;
        Ok(device)
    }

    /// The limits to write for `asked`, on a credential whose stored expiry
    /// is `stored`: with no expiry asked for, none, unless the policy
    /// demands one, which follows from the stored one. Then it also returns
    /// that stored expiry, to write only while it is still the stored one
    /// (for devices and API access authorisations alike).
    pub(super) fn limits_on(
        &self,
        asked: &CredentialLimits,
        expiry_given: bool,
        stored: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<(CredentialLimits, Option<Option<Timestamp>>), ServiceError> {
        let mut limits = asked.clone();
        if expiry_given {
            return Ok((limits, None));
        }
        if self.lifetime.max_days.is_none() {
            limits.expires_at = None;
            return Ok((limits, None));
        }
        limits.expires_at =
            limits::expiry_for(None, stored, now, self.lifetime).map_err(rejected)?;
        Ok((limits, Some(stored)))
    }

    /// "End now": the token replaced by the last "Change password" stops
    /// working at once, on every node.
    pub async fn end_previous_token(
        &self,
        by: &impl DeviceActor,
        id: &str,
    ) -> Result<Device, ServiceError> {
        let device = self.device(by, id).await?;
        let mut tx = self.begin_write().await?;
        let ended = tx.end_previous_token(&device.id).await?;
        tx.commit().await?;
        self.cache.invalidate_device(device.id.as_str());
        if ended {
            tracing::info!(by = %by.acting(), device = %device.id, "previous device password ended");
        }
        // Answered as stored now, not as read before: a "Change password"
        // may have come between, and what was ended is its replaced token.
        match self.store.device(&device.id).await? {
            Some(mut now) => {
                self.last_used.overlay(&mut now);
                Ok(now)
            }
            None => Err(ServiceError::DeviceNotFound),
        }
    }

    /// How a device stands now, for lists and resources.
    pub fn device_state(&self, device: &Device) -> DeviceState {
        self.credential_state(
            &device.limits,
            device.token_issued_at,
            device.last_used.as_ref(),
            device.previous_token_until,
        )
    }

    /// How any credential stands now, from what every kind has.
    pub(super) fn credential_state(
        &self,
        limits: &CredentialLimits,
        issued_at: Timestamp,
        last_used: Option<&LastUse>,
        previous_token_until: Option<Timestamp>,
    ) -> DeviceState {
        let now = self.clock.now();
        let context = UseContext {
            issued_at,
            last_used_at: last_used.map(|u| u.at),
            holder_is_admin: true,
        };
        DeviceState {
            expired: limits::is_expired(limits, &context, now, self.lifetime),
            previous_token_until: previous_token_until
                .filter(|until| limits::within_grace(Some(*until), now)),
        }
    }

    /// Deletes a device: its password stops working on every node.
    pub async fn delete_device(
        &self,
        by: &impl DeviceActor,
        id: &str,
    ) -> Result<Device, ServiceError> {
        let device = self.device(by, id).await?;
        let mut tx = self.begin_write().await?;
        let deleted = tx.delete_device(&device.id).await?;
        tx.commit().await?;
        self.cache.invalidate_device(device.id.as_str());
        self.last_used.forget(&device.id);
        if !deleted {
            return Err(ServiceError::DeviceNotFound);
        }
        tracing::info!(by = %by.acting(), device = %device.id, "device deleted");
        Ok(device)
    }
}
