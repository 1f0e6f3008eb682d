//! API access authorisations over the API: `GET /server/api/access/{id}`,
//! where a service loads its own resource (the article's start-up check,
//! for a credential without a person), and the resource every answer about
//! one renders.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::credential::Token;
use crate::domain::{AccessAuthorisation, Scope, Timestamp};
use crate::http::auth::AccessAuth;
use crate::http::error::ApiError;
use crate::http::extract::PathId;
use crate::http::AppState;
use crate::service::DeviceState;

/// The access resource. `token` appears only in the answers that make a new one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessResource {
    #[serde(rename = "_id")]
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    name: String,
    description: String,
    /// The administrator who made it, as named then; `null`: the command line.
    created_by: Option<String>,
    created_at: Timestamp,
    enabled: bool,
    last_used_at: Option<Timestamp>,
    last_used_ip: Option<String>,
    last_used_user_agent: Option<String>,
    recent_ips: Vec<String>,
    scope: Scope,
    expires_at: Option<Timestamp>,
    idle_expiry_days: Option<u32>,
    allowed_networks: Vec<String>,
    denied_networks: Vec<String>,
    expired: bool,
    previous_token_valid_until: Option<Timestamp>,
}

impl AccessResource {
    pub fn new(access: AccessAuthorisation, state: DeviceState, token: Option<&Token>) -> Self {
        let last_used = access.last_used;
        let limits = access.limits;
        let nets = |list: &[ipnet::IpNet]| list.iter().map(ToString::to_string).collect();
        Self {
            id: access.id.to_string(),
            token: token.map(|t| t.expose().to_owned()),
            name: access.name.to_string(),
            description: access.description,
            created_by: access.created_by,
            created_at: access.created_at,
            enabled: access.enabled,
            last_used_at: last_used.as_ref().map(|u| u.at),
            last_used_ip: last_used
                .as_ref()
                .and_then(|u| u.ip.map(|ip| ip.to_string())),
            recent_ips: last_used
                .as_ref()
                .map(|u| u.recent.iter().map(|ip| ip.to_string()).collect())
                .unwrap_or_default(),
            last_used_user_agent: last_used.and_then(|u| u.user_agent),
            scope: limits.scope,
            expires_at: limits.expires_at,
            idle_expiry_days: limits.idle_expiry_days,
            allowed_networks: nets(&limits.allowed_networks),
            denied_networks: nets(&limits.denied_networks),
            expired: state.expired,
            previous_token_valid_until: state.previous_token_until,
        }
    }

    /// The resource as the service sees it now.
    pub fn of(state: &AppState, access: AccessAuthorisation, token: Option<&Token>) -> Self {
        let now = state.service.access_state(&access);
        Self::new(access, now, token)
    }
}

/// `GET /server/api/access/{id}`: a service's own resource, from the cache.
pub async fn show(
    State(state): State<AppState>,
    AccessAuth(who): AccessAuth,
    PathId(id): PathId,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state.service.own_access(&who, &id)?;
    Ok(Json(AccessResource::of(&state, access, None)))
}
