//! App sign-in (the shape of RFC 8628's device authorization grant): an
//! app asks without credentials, a signed-in person approves or denies in
//! the web interface, and the app polls until it collects its device
//! password, exactly once. It works for every account, two-factor or not:
//! the approval is an action of a web session, which had to sign in fully.
//!
//! Nothing secret is stored: the device code and the user code only as
//! digests, and the device password not at all, since it is derived from
//! the device code when the app collects it.

use std::time::Duration;

use super::actor::DeviceActor;
use super::{parse_device_name, Client, Member, Service, ServiceError};
use crate::credential::{DeviceCode, Token, UserCode};
use crate::domain::{
    poll_decision, Device, DeviceAuthorization, LastUse, PollDecision, RequestedLimits,
    SLOW_DOWN_STEP,
};
use crate::store::{NewDeviceAuthorization, StoreError};

/// How often a random user code may collide before we give up.
const USER_CODE_ATTEMPTS: usize = 5;
/// Expired requests are kept this long, so their codes still answer
/// `expired_token` (not "unknown") for a while, then deleted.
pub const KEEP_EXPIRED: Duration = Duration::from_secs(24 * 3600);

/// The knobs of app sign-in.
#[derive(Clone, Copy, Debug)]
pub struct DeviceAuthorizationSettings {
    /// How long a request may wait for approval and then for collection.
    pub lifetime: Duration,
    /// The least time an app must leave between two polls, at first.
    pub interval: Duration,
    /// Pending requests one address may have open at once.
    pub per_address: u32,
}

impl Default for DeviceAuthorizationSettings {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(10 * 60),
            interval: Duration::from_secs(5),
            per_address: 10,
        }
    }
}

/// `POST /server/api/device/authorize`'s body, unparsed.
#[derive(Debug)]
pub struct AuthorizationRequest {
    pub device_name: String,
    pub device_type: Option<String>,
}

/// What the app gets to start with.
#[derive(Debug)]
pub struct StartedAuthorization {
    pub device_code: DeviceCode,
    pub user_code: UserCode,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// What one poll gets.
#[derive(Debug)]
pub enum Poll {
    Pending,
    /// Too soon: the interval has grown to this.
    SlowDown(Duration),
    Denied,
    Expired,
    /// A device code this server did not issue (or forgot long ago).
    Unknown,
    /// The one successful poll.
    Approved(Box<Device>, Token),
}

/// A request as the person deciding sees it.
pub struct PendingAuthorization {
    pub request: DeviceAuthorization,
    pub user_code: String,
}

pub(super) fn no_longer_pending() -> ServiceError {
    ServiceError::invalid(
        "authorization_not_pending",
        "This sign-in request has already been approved or denied, or it has expired. Start the sign-in in the app again.",
    )
}

fn unknown_user_code() -> ServiceError {
    ServiceError::invalid(
        "unknown_user_code",
        "No sign-in request has this code. Check the code the app shows, or start the sign-in in the app again.",
    )
}

impl Service {
    /// An app asks to sign in.
    pub async fn start_device_authorization(
        &self,
        request: AuthorizationRequest,
        client: &Client<'_>,
    ) -> Result<StartedAuthorization, ServiceError> {
        let name = parse_device_name(&request.device_name)?;
        let settings = self.device_authorizations;
        let device_code = DeviceCode::generate();
        let now = self.clock.now();
        let mut new = NewDeviceAuthorization {
            device_code_digest: device_code.digest(),
            user_code_digest: [0; 32],
            device_name: name,
            device_type: self.device_types.resolve(request.device_type.as_deref()),
            token_digest: self.keys.device_authorizations.token(&device_code).digest(),
            requested_ip: client.ip,
            requested_user_agent: client
                .user_agent
                .as_deref()
                .and_then(LastUse::clean_user_agent),
            created_at: now,
            expires_at: crate::domain::Timestamp::from_millis(
                now.millis()
                    .saturating_add(i64::try_from(settings.lifetime.as_millis()).unwrap_or(0)),
            ),
            interval: settings.interval,
        };
        for _ in 0..USER_CODE_ATTEMPTS {
            let user_code = UserCode::generate();
            new.user_code_digest = self.keys.device_authorizations.user_code_digest(&user_code);
            let mut tx = self.begin_write().await?;
            match tx
                .insert_device_authorization(&new, settings.per_address)
                .await
            {
                Ok(true) => {
                    tx.commit().await?;
                    tracing::info!(device_name = %new.device_name, "app sign-in requested");
                    return Ok(StartedAuthorization {
                        device_code,
                        user_code,
                        expires_in: settings.lifetime,
                        interval: settings.interval,
                    });
                }
                Ok(false) => {
                    return Err(ServiceError::TooManyPendingAuthorizations {
                        retry_after: settings.lifetime,
                    })
                }
                // A taken code spoils the transaction, so each attempt has its own.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Internal(
            "could not find a free user code".to_owned(),
        ))
    }

    /// The app polls with its device code.
    pub async fn poll_device_authorization(&self, raw_code: &str) -> Result<Poll, ServiceError> {
        let Some(code) = DeviceCode::parse(raw_code) else {
            return Ok(Poll::Unknown);
        };
        let Some(request) = self.store.device_authorization(&code.digest()).await? else {
            return Ok(Poll::Unknown);
        };
        let now = self.clock.now();
        match poll_decision(&request, now) {
            PollDecision::Denied => Ok(Poll::Denied),
            PollDecision::Expired => Ok(Poll::Expired),
            PollDecision::Pending => {
                match self
                    .store
                    .poll_device_authorization(request.id, now, SLOW_DOWN_STEP)
                    .await?
                {
                    None => Ok(Poll::Pending),
                    Some(interval) => Ok(Poll::SlowDown(interval)),
                }
            }
            PollDecision::Claim => {
                if !self
                    .store
                    .claim_device_authorization(request.id, now)
                    .await?
                {
                    // Another poll, perhaps on another node, got there first.
                    return Ok(Poll::Expired);
                }
                let stored = match &request.device_id {
                    Some(id) => self.store.credential(id).await?,
                    None => None,
                };
                let token = self.keys.device_authorizations.token(&code);
                match stored {
                    Some(stored) if stored.digest.matches(&token.digest()) => {
                        tracing::info!(device = %stored.device.id, "app sign-in collected");
                        Ok(Poll::Approved(Box::new(stored.device), token))
                    }
                    // Deleted, or given a new password, between approval
                    // and collection: this token would not work.
                    _ => Ok(Poll::Denied),
                }
            }
        }
    }

    /// The request a person typed (or followed) the code of, while it is
    /// still theirs to decide. Wrong codes count against the address's
    /// lookup budget, as unknown device ids do.
    pub async fn pending_device_authorization(
        &self,
        _signed_in: &Member,
        raw_user_code: &str,
        client: &Client<'_>,
    ) -> Result<PendingAuthorization, ServiceError> {
        let Some(code) = UserCode::parse(raw_user_code) else {
            return Err(unknown_user_code());
        };
        if !self.lookups.allows(client.ip) {
            return Err(ServiceError::RateLimited {
                retry_after: self.lookups.retry_after(),
            });
        }
        let digest = self.keys.device_authorizations.user_code_digest(&code);
        let Some(request) = self
            .store
            .device_authorization_by_user_code(&digest)
            .await?
        else {
            self.lookups.record_failure(client.ip);
            return Err(unknown_user_code());
        };
        if !request.is_open(self.clock.now()) {
            return Err(no_longer_pending());
        }
        Ok(PendingAuthorization {
            request,
            user_code: code.display(),
        })
    }

    /// Approves: creates the device exactly as New device password does,
    /// in the transaction that marks the request approved, so of several
    /// approvals at once exactly one makes a device.
    pub async fn approve_device_authorization(
        &self,
        by: &Member,
        raw_user_code: &str,
        client: &Client<'_>,
    ) -> Result<Device, ServiceError> {
        by.may_manage()?;
        let pending = self
            .pending_device_authorization(by, raw_user_code, client)
            .await?;
        let request = pending.request;
        let device = self
            .insert_device(
                by.account(),
                request.device_name.clone(),
                Some(request.device_type.as_str()),
                request.token_digest,
                Some(request.id),
                // The article's defaults; the person can set limits in the
                // Devices tab afterwards.
                RequestedLimits::default(),
            )
            .await?;
        tracing::info!(account = %by.account().email, device = %device.id, "app sign-in approved");
        Ok(device)
    }

    pub async fn deny_device_authorization(
        &self,
        by: &Member,
        raw_user_code: &str,
        client: &Client<'_>,
    ) -> Result<DeviceAuthorization, ServiceError> {
        by.may_manage()?;
        let pending = self
            .pending_device_authorization(by, raw_user_code, client)
            .await?;
        let request = pending.request;
        if !self
            .store
            .deny_device_authorization(request.id, by.account().id, self.clock.now())
            .await?
        {
            return Err(no_longer_pending());
        }
        tracing::info!(account = %by.account().email, "app sign-in denied");
        Ok(request)
    }

    /// Forgets requests long expired.
    pub async fn prune_device_authorizations(&self) -> Result<u64, ServiceError> {
        let now = self.clock.now().millis();
        let keep = i64::try_from(KEEP_EXPIRED.as_millis()).unwrap_or(0);
        Ok(self
            .store
            .prune_device_authorizations(crate::domain::Timestamp::from_millis(now - keep))
            .await?)
    }
}
