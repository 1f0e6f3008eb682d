//! Turning rows into domain values, the same way for every backend.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{AccessRecord, CredentialRecord, StoreError};
use crate::credential::{CsrfSecret, DeviceId, TokenDigest};
use crate::domain::limits::networks_from_stored;
use crate::domain::{
    AccessAuthorisation, Account, AccountId, AuthorizationStatus, CredentialLimits, Device,
    DeviceAuthorization, DeviceName, Email, LastUse, Permission, Permissions, RecentAddresses,
    Scope, SessionId, Timestamp, WebSession,
};

pub(super) const SESSION_COLUMNS: &str =
    "id, account_id, csrf_secret, created_at, last_seen_at, ip, user_agent";

/// A row type whose columns decode into the plain values the schema uses.
pub(super) trait PlainRow: Row {
    fn decoded<'r, T>(&'r self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>;
}

impl<R> PlainRow for R
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
{
    fn decoded<'r, T>(&'r self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, Self::Database> + Type<Self::Database>,
    {
        self.try_get(column).map_err(internal)
    }
}

/// Everything the mappers below decode.
pub(super) trait Decodes<DB: sqlx::Database>: for<'r> Decode<'r, DB> + Type<DB> {}
impl<DB: sqlx::Database, T: for<'r> Decode<'r, DB> + Type<DB>> Decodes<DB> for T {}

pub(super) fn account<R>(row: &R) -> Result<Account, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    bool: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let email: String = row.decoded("email")?;
    Ok(Account {
        id: AccountId(row.decoded("id")?),
        email: Email::parse(&email)
            .map_err(|e| StoreError::Internal(format!("stored email is invalid: {e}")))?,
        name: row.decoded("name")?,
        permissions: permissions(row)?,
        enabled: row.decoded("enabled")?,
        two_factor_enabled: row.decoded("two_factor_enabled")?,
        created_at: Timestamp::from_millis(row.decoded("created_at")?),
    })
}

/// Permissions aggregated into one comma-separated column.
pub(super) fn permissions<R>(row: &R) -> Result<Permissions, StoreError>
where
    R: PlainRow,
    Option<String>: Decodes<R::Database>,
{
    let joined: Option<String> = row.decoded("permissions")?;
    joined
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<Permission>()
                .map_err(|e| StoreError::Internal(e.to_string()))
        })
        .collect()
}

pub(super) fn device<R>(row: &R) -> Result<Device, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    Option<i64>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let id: String = row.decoded("id")?;
    let name: String = row.decoded("name")?;
    let created_at = Timestamp::from_millis(row.decoded("created_at")?);
    let issued: Option<i64> = row.decoded("token_issued_at")?;
    Ok(Device {
        id: DeviceId::parse(&id).map_err(|e| StoreError::Internal(e.to_string()))?,
        account_id: AccountId(row.decoded("account_id")?),
        name: DeviceName::from_stored(name),
        device_type: row.decoded::<String>("device_type")?.into(),
        created_at,
        last_used: last_use(row)?,
        limits: limits(row)?,
        token_issued_at: issued.map_or(created_at, Timestamp::from_millis),
        previous_token_until: millis(row.decoded("previous_token_until")?),
    })
}

fn millis(m: Option<i64>) -> Option<Timestamp> {
    m.map(Timestamp::from_millis)
}

/// The last-use columns every credential table has.
fn last_use<R>(row: &R) -> Result<Option<LastUse>, StoreError>
where
    R: PlainRow,
    Option<i64>: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let last_used_at: Option<i64> = row.decoded("last_used_at")?;
    let Some(at) = last_used_at else {
        return Ok(None);
    };
    let last_used_ip: Option<String> = row.decoded("last_used_ip")?;
    let recent: Option<String> = row.decoded("recent_ips")?;
    Ok(Some(LastUse {
        at: Timestamp::from_millis(at),
        ip: last_used_ip.and_then(|ip| ip.parse::<IpAddr>().ok()),
        user_agent: row
            .decoded::<Option<String>>("last_used_user_agent")?
            .map(Arc::from),
        recent: RecentAddresses::from_stored(recent.as_deref()),
    }))
}

/// The limit columns every credential table has.
fn limits<R>(row: &R) -> Result<CredentialLimits, StoreError>
where
    R: PlainRow,
    Option<i64>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let scope: String = row.decoded("scope")?;
    let allowed: Option<String> = row.decoded("allowed_networks")?;
    let denied: Option<String> = row.decoded("denied_networks")?;
    let idle: Option<i64> = row.decoded("idle_expiry_days")?;
    Ok(CredentialLimits {
        scope: scope
            .parse::<Scope>()
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        expires_at: millis(row.decoded("expires_at")?),
        idle_expiry_days: idle.and_then(|d| u32::try_from(d).ok()),
        allowed_networks: networks_from_stored(allowed.as_deref()),
        denied_networks: networks_from_stored(denied.as_deref()),
    })
}

/// An API access authorisation, read with `ACCESS_COLUMNS`.
pub(super) fn access<R>(row: &R) -> Result<AccessAuthorisation, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    bool: Decodes<R::Database>,
    Option<i64>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let id: String = row.decoded("id")?;
    Ok(AccessAuthorisation {
        id: DeviceId::parse(&id).map_err(|e| StoreError::Internal(e.to_string()))?,
        name: DeviceName::from_stored(row.decoded("name")?),
        description: row.decoded("description")?,
        created_by: row.decoded("created_by")?,
        created_at: Timestamp::from_millis(row.decoded("created_at")?),
        enabled: row.decoded("enabled")?,
        limits: limits(row)?,
        token_issued_at: Timestamp::from_millis(row.decoded("token_issued_at")?),
        previous_token_until: millis(row.decoded("previous_token_until")?),
        last_used: last_use(row)?,
    })
}

/// An API access authorisation with its token digests.
pub(super) fn access_credential<R>(row: &R) -> Result<AccessRecord, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    bool: Decodes<R::Database>,
    Vec<u8>: Decodes<R::Database>,
    Option<Vec<u8>>: Decodes<R::Database>,
    Option<i64>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let digest: Vec<u8> = row.decoded("token_digest")?;
    let previous: Option<Vec<u8>> = row.decoded("previous_token_digest")?;
    Ok(AccessRecord {
        digest: TokenDigest::from_slice(&digest)
            .ok_or_else(|| StoreError::Internal("token digest is not 32 bytes".into()))?,
        previous_digest: previous.as_deref().and_then(TokenDigest::from_slice),
        access: access(row)?,
    })
}

/// A device row joined with its token digest and its account's state.
pub(super) fn credential<R>(row: &R) -> Result<CredentialRecord, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    bool: Decodes<R::Database>,
    Vec<u8>: Decodes<R::Database>,
    Option<Vec<u8>>: Decodes<R::Database>,
    Option<i64>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let digest: Vec<u8> = row.decoded("token_digest")?;
    let previous: Option<Vec<u8>> = row.decoded("previous_token_digest")?;
    Ok(CredentialRecord {
        digest: TokenDigest::from_slice(&digest)
            .ok_or_else(|| StoreError::Internal("token digest is not 32 bytes".into()))?,
        previous_digest: previous.as_deref().and_then(TokenDigest::from_slice),
        account_email: row.decoded("email")?,
        account_name: row.decoded("account_name")?,
        account_enabled: row.decoded("enabled")?,
        permissions: permissions(row)?,
        device: device(row)?,
    })
}

/// A web session row, read with [`SESSION_COLUMNS`].
pub(super) fn session<R>(row: &R) -> Result<WebSession, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    Vec<u8>: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let csrf: Vec<u8> = row.decoded("csrf_secret")?;
    let ip: Option<String> = row.decoded("ip")?;
    Ok(WebSession {
        id: SessionId(row.decoded("id")?),
        account_id: AccountId(row.decoded("account_id")?),
        csrf: CsrfSecret::from_slice(&csrf)
            .ok_or_else(|| StoreError::Internal("CSRF secret is not 32 bytes".into()))?,
        created_at: Timestamp::from_millis(row.decoded("created_at")?),
        last_seen_at: Timestamp::from_millis(row.decoded("last_seen_at")?),
        ip: ip.and_then(|ip| ip.parse::<IpAddr>().ok()),
        user_agent: row.decoded("user_agent")?,
    })
}

pub(super) fn internal(e: sqlx::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

pub(super) const DEVICE_AUTHORIZATION_COLUMNS: &str = "id, device_name, device_type, token_digest,
    requested_ip, requested_user_agent, created_at, expires_at, interval_secs, last_polled_at,
    status, account_id, device_id";

/// An app sign-in request, read with [`DEVICE_AUTHORIZATION_COLUMNS`].
pub(super) fn device_authorization<R>(row: &R) -> Result<DeviceAuthorization, StoreError>
where
    R: PlainRow,
    i64: Decodes<R::Database>,
    Option<i64>: Decodes<R::Database>,
    Vec<u8>: Decodes<R::Database>,
    String: Decodes<R::Database>,
    Option<String>: Decodes<R::Database>,
{
    let digest: Vec<u8> = row.decoded("token_digest")?;
    let ip: Option<String> = row.decoded("requested_ip")?;
    let status: String = row.decoded("status")?;
    let interval: i64 = row.decoded("interval_secs")?;
    let device_id: Option<String> = row.decoded("device_id")?;
    let last_polled_at: Option<i64> = row.decoded("last_polled_at")?;
    let account_id: Option<i64> = row.decoded("account_id")?;
    Ok(DeviceAuthorization {
        id: row.decoded("id")?,
        device_name: DeviceName::from_stored(row.decoded("device_name")?),
        device_type: row.decoded("device_type")?,
        token_digest: TokenDigest::from_slice(&digest)
            .ok_or_else(|| StoreError::Internal("token digest is not 32 bytes".into()))?,
        requested_ip: ip.and_then(|ip| ip.parse::<IpAddr>().ok()),
        requested_user_agent: row.decoded("requested_user_agent")?,
        created_at: Timestamp::from_millis(row.decoded("created_at")?),
        expires_at: Timestamp::from_millis(row.decoded("expires_at")?),
        interval: Duration::from_secs(u64::try_from(interval).unwrap_or(0)),
        last_polled_at: last_polled_at.map(Timestamp::from_millis),
        status: AuthorizationStatus::parse(&status)
            .ok_or_else(|| StoreError::Internal(format!("unknown status {status:?}")))?,
        account_id: account_id.map(AccountId),
        device_id: device_id
            .map(|id| DeviceId::parse(&id).map_err(|e| StoreError::Internal(e.to_string())))
            .transpose()?,
    })
}
