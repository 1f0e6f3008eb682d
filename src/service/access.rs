//! API access authorisations: made, changed and deleted by administrators
//! only (web, admin API, command line), used by services that belong to no
//! person. Every change reaches every node's cache through the change feed.

use super::actor::{AccessCaller, AccessManager};
use super::devices::{DeviceState, TokenChange, CHANGED_MEANWHILE_ATTEMPTS};
use super::{parse_device_name, Service, ServiceError};
use crate::credential::{DeviceId, Token, TokenKind};
use crate::domain::limits::{self, LimitsRejection, MAX_GRACE_SECONDS};
use crate::domain::{parse_description, AccessAuthorisation, RequestedLimits, Timestamp};
use crate::store::{NewAccess, NewToken, StoreError};

/// What an administrator asks for when making one, unparsed.
#[derive(Clone, Debug, Default)]
pub struct NewAccessRequest {
    pub name: String,
    pub description: String,
    pub limits: RequestedLimits,
}

fn rejected(rejection: LimitsRejection) -> ServiceError {
    ServiceError::invalid(rejection.code(), rejection)
}

/// How often a random id may collide, or a regeneration meet a concurrent
/// change of the expiry it was decided on, before giving up.
const ATTEMPTS: usize = 5;

impl Service {
    /// Makes an API access authorisation; its token is returned this once.
    pub async fn create_access(
        &self,
        by: &impl AccessManager,
        request: NewAccessRequest,
    ) -> Result<(AccessAuthorisation, Token), ServiceError> {
        let name = parse_device_name(&request.name)?;
        let description = parse_description(&request.description)
            .map_err(|e| ServiceError::invalid("invalid_description", e))?;
        let now = self.clock.now();
        // An administrator makes it: every scope is theirs to give.
        let limits =
            limits::limits_for_new(request.limits, true, now, self.lifetime).map_err(rejected)?;
        let token = Token::generate_for(TokenKind::Access);
        let mut new = NewAccess {
            id: DeviceId::generate(),
            name,
            description,
            created_by: by.maker(),
            token_digest: token.digest(),
            created_at: now,
            limits,
        };
        for _ in 0..ATTEMPTS {
            let mut tx = self.begin_write().await?;
            match tx.insert_access(&new).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    new.id = DeviceId::generate();
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            // Another read may have remembered the id as unknown meanwhile.
            self.access_cache.invalidate_device(new.id.as_str());
            tracing::info!(by = %by.acting(), access = %new.id, scope = %new.limits.scope, "API access authorisation created");
            return Ok((new.inserted(), token));
        }
        Err(ServiceError::Internal(
            "could not find a free API access authorisation id".to_owned(),
        ))
    }

    /// Every API access authorisation, oldest first.
    pub async fn accesses(
        &self,
        _by: &impl AccessManager,
    ) -> Result<Vec<AccessAuthorisation>, ServiceError> {
        let mut all = self.store.accesses().await?;
        for access in &mut all {
            self.access_last_used
                .overlay_on(&access.id, &mut access.last_used);
        }
        Ok(all)
    }

    pub async fn access(
        &self,
        _by: &impl AccessManager,
        id: &str,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let id = DeviceId::parse(id).map_err(|_| ServiceError::AccessNotFound)?;
        let mut access = self
            .store
            .access(&id)
            .await?
            .ok_or(ServiceError::AccessNotFound)?;
        self.access_last_used
            .overlay_on(&access.id, &mut access.last_used);
        Ok(access)
    }

    /// `GET /server/api/access/{id}`: a service loads its own resource, and
    /// only its own; any other id is "not found", whether or not it exists.
    pub fn own_access(
        &self,
        caller: &AccessCaller,
        id: &str,
    ) -> Result<AccessAuthorisation, ServiceError> {
        if caller.id().as_str() == id {
            Ok(caller.access())
        } else {
            Err(ServiceError::AccessNotFound)
        }
    }

    /// A new token, the old one dead at once or still working for
    /// `change.grace_seconds`. The expiry is decided on the stored one and
    /// written only while that is still the stored one, so a concurrent
    /// change of limits is never overwritten by a decision made without it.
    pub async fn regenerate_access_token(
        &self,
        by: &impl AccessManager,
        id: &str,
        change: TokenChange,
    ) -> Result<(AccessAuthorisation, Token), ServiceError> {
        if change.grace_seconds > MAX_GRACE_SECONDS {
            return Err(ServiceError::invalid(
                "invalid_grace",
                format!("graceSeconds must be between 0 and {MAX_GRACE_SECONDS} (24 hours)."),
            ));
        }
        for _ in 0..ATTEMPTS {
            let mut access = self.access(by, id).await?;
            let now = self.clock.now();
            let expires_at = limits::expiry_for(
                change.expires_at,
                access.limits.expires_at,
                now,
                self.lifetime,
            )
            .map_err(rejected)?;
            let token = Token::generate_for(TokenKind::Access);
            let previous_until = (change.grace_seconds > 0).then(|| {
                Timestamp::from_millis(now.millis() + i64::from(change.grace_seconds) * 1000)
            });
            let mut tx = self.begin_write().await?;
            let replaced = tx
                .set_access_token(
                    &access.id,
                    access.limits.expires_at,
                    &NewToken {
                        digest: token.digest(),
                        issued_at: now,
                        expires_at,
                        previous_until,
                    },
                )
                .await?;
            tx.commit().await?;
            self.access_cache.invalidate_device(access.id.as_str());
            if !replaced {
                // Deleted meanwhile (the next read says so), or its expiry changed.
                continue;
            }
            tracing::info!(by = %by.acting(), access = %access.id, grace_seconds = change.grace_seconds, "API access authorisation token regenerated");
            access.limits.expires_at = expires_at;
            access.token_issued_at = now;
            access.previous_token_until = previous_until;
            return Ok((access, token));
        }
        Err(ServiceError::ChangedMeanwhile)
    }

    /// Disables (refused everywhere at once, and kept) or enables one.
    pub async fn set_access_enabled(
        &self,
        by: &impl AccessManager,
        id: &str,
        enabled: bool,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let mut access = self.access(by, id).await?;
        let mut tx = self.begin_write().await?;
        let changed = tx.set_access_enabled(&access.id, enabled).await?;
        tx.commit().await?;
        self.access_cache.invalidate_device(access.id.as_str());
        if !changed {
            return Err(ServiceError::AccessNotFound);
        }
        tracing::info!(by = %by.acting(), access = %access.id, enabled, "API access authorisation enabled state changed");
        access.enabled = enabled;
        Ok(access)
    }

    /// Renames one and replaces its description.
    pub async fn set_access_details(
        &self,
        by: &impl AccessManager,
        id: &str,
        name: &str,
        description: &str,
    ) -> Result<AccessAuthorisation, ServiceError> {
        self.update_access_details(by, id, Some(name.to_owned()), Some(description.to_owned()))
            .await
    }

    /// Renames one and/or replaces its description; what is `None` stays,
    /// whatever another change wrote meanwhile.
    pub async fn update_access_details(
        &self,
        by: &impl AccessManager,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let name = name.as_deref().map(parse_device_name).transpose()?;
        let description = description
            .as_deref()
            .map(parse_description)
            .transpose()
            .map_err(|e| ServiceError::invalid("invalid_description", e))?;
        let id = self.access(by, id).await?.id;
        let mut tx = self.begin_write().await?;
        let changed = tx
            .set_access_details(&id, name.as_ref(), description.as_deref())
            .await?;
        tx.commit().await?;
        self.access_cache.invalidate_device(id.as_str());
        if !changed {
            return Err(ServiceError::AccessNotFound);
        }
        tracing::info!(by = %by.acting(), access = %id, "API access authorisation renamed");
        self.access(by, id.as_str()).await
    }

    /// Replaces its limits, as a whole; every node enforces them from then on.
    pub async fn set_access_limits(
        &self,
        by: &impl AccessManager,
        id: &str,
        requested: RequestedLimits,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let mut access = self.access(by, id).await?;
        let now = self.clock.now();
        let expiry_given = requested.expires_at.is_some();
        let asked =
            limits::limits_for_new(requested, true, now, self.lifetime).map_err(rejected)?;
        let mut attempts = 0;
        let limits = loop {
            let (limits, had_expiry) =
                self.limits_on(&asked, expiry_given, access.limits.expires_at, now)?;
            let mut tx = self.begin_write().await?;
            let changed = tx
                .set_access_limits(&access.id, &limits, had_expiry)
                .await?;
            tx.commit().await?;
            self.access_cache.invalidate_device(access.id.as_str());
            if changed {
                break limits;
            }
            let fresh = self.access(by, id).await?;
            if had_expiry.is_none_or(|had| had == fresh.limits.expires_at) {
                return Err(ServiceError::AccessNotFound);
            }
            attempts += 1;
            if attempts == CHANGED_MEANWHILE_ATTEMPTS {
                return Err(ServiceError::ChangedMeanwhile);
            }
            access = fresh;
        };
        tracing::info!(by = %by.acting(), access = %access.id, "API access authorisation limits changed");
        access.limits = limits;
        Ok(access)
    }

    /// "End now": the token replaced by the last regeneration stops working.
    pub async fn end_previous_access_token(
        &self,
        by: &impl AccessManager,
        id: &str,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let mut access = self.access(by, id).await?;
        let mut tx = self.begin_write().await?;
        let ended = tx.end_previous_access_token(&access.id).await?;
        tx.commit().await?;
        self.access_cache.invalidate_device(access.id.as_str());
        if ended {
            tracing::info!(by = %by.acting(), access = %access.id, "previous API access token ended");
        }
        access.previous_token_until = None;
        Ok(access)
    }

    /// Deletes one: its token stops working on every node.
    pub async fn delete_access(
        &self,
        by: &impl AccessManager,
        id: &str,
    ) -> Result<AccessAuthorisation, ServiceError> {
        let access = self.access(by, id).await?;
        let mut tx = self.begin_write().await?;
        let deleted = tx.delete_access(&access.id).await?;
        tx.commit().await?;
        self.access_cache.invalidate_device(access.id.as_str());
        self.access_last_used.forget(&access.id);
        if !deleted {
            return Err(ServiceError::AccessNotFound);
        }
        tracing::info!(by = %by.acting(), access = %access.id, "API access authorisation deleted");
        Ok(access)
    }

    /// How one stands now, for lists and resources.
    pub fn access_state(&self, access: &AccessAuthorisation) -> DeviceState {
        self.credential_state(
            &access.limits,
            access.token_issued_at,
            access.last_used.as_ref(),
            access.previous_token_until,
        )
    }
}
