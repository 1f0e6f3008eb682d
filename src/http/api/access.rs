//! API access authorisations over the API: `GET /server/api/access/{id}`,
//! where a service loads its own resource (the article's start-up check,
//! for a credential without a person), and their management under
//! `/server/api/admin/access`, for the admin API's callers only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::admin::AdminApiAuth;
use super::device::{LimitFields, LimitsBody, RegenerateBody, LIMIT_FIELDS};
use crate::credential::Token;
use crate::domain::{AccessAuthorisation, Scope, Timestamp};
use crate::http::auth::AccessAuth;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, OptionalApiJson, PathId};
use crate::http::json_body::{Field, JsonBody, OtherFields};
use crate::http::AppState;
use crate::service::{DeviceState, NewAccessRequest};

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
    last_used_user_agent: Option<Arc<str>>,
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
    /// Its fields as sent, `token` included.
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "token",
        "name",
        "description",
        "createdBy",
        "createdAt",
        "enabled",
        "lastUsedAt",
        "lastUsedIp",
        "lastUsedUserAgent",
        "recentIps",
        "scope",
        "expiresAt",
        "idleExpiryDays",
        "allowedNetworks",
        "deniedNetworks",
        "expired",
        "previousTokenValidUntil",
    ];

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

/// `POST /server/api/admin/access`: name, description and limits.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(flatten)]
    limits: LimitFields,
}

impl JsonBody for CreateBody {
    const FIELDS: &'static [Field] = &[
        Field::string("name"),
        Field::optional_string("description"),
        LIMIT_FIELDS[0],
        LIMIT_FIELDS[1],
        LIMIT_FIELDS[2],
        LIMIT_FIELDS[3],
        LIMIT_FIELDS[4],
    ];
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: AccessResource::FIELDS,
    };
}

/// `PATCH /server/api/admin/access/{id}`: a new name and/or description.
#[derive(Deserialize)]
pub struct DetailsBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

impl JsonBody for DetailsBody {
    const FIELDS: &'static [Field] = &[
        Field::optional_string("name"),
        Field::optional_string("description"),
    ];
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: AccessResource::FIELDS,
    };
}

/// `GET /server/api/admin/access`: every one, oldest first.
pub async fn list(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
) -> Result<Json<Vec<AccessResource>>, ApiError> {
    let all = state.service.accesses(&admin).await?;
    Ok(Json(
        all.into_iter()
            .map(|a| AccessResource::of(&state, a, None))
            .collect(),
    ))
}

/// `POST /server/api/admin/access`: the token is in this answer only.
pub async fn create(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let request = NewAccessRequest {
        name: body.name,
        description: body.description.unwrap_or_default(),
        limits: body.limits.parse()?,
    };
    let (access, token) = state.service.create_access(&admin, request).await?;
    let location = format!("/server/api/admin/access/{}", access.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(AccessResource::of(&state, access, Some(&token))),
    ))
}

/// `GET /server/api/admin/access/{id}`.
pub async fn show_any(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state.service.access(&admin, &id).await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `PATCH /server/api/admin/access/{id}`: what is left out stays.
pub async fn update(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<DetailsBody>,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state
        .service
        .update_access_details(&admin, &id, body.name, body.description)
        .await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `PUT /server/api/admin/access/{id}/limits`: all limits at once.
pub async fn set_limits(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<LimitsBody>,
) -> Result<Json<AccessResource>, ApiError> {
    let limits = body.limits.parse()?;
    let access = state.service.set_access_limits(&admin, &id, limits).await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `POST /server/api/admin/access/{id}/token`: a new token, shown once;
/// optionally `graceSeconds` of overlap and a new `expiresAt`.
pub async fn regenerate(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
    OptionalApiJson(body): OptionalApiJson<RegenerateBody>,
) -> Result<Json<AccessResource>, ApiError> {
    let change = body.parse()?;
    let (access, token) = state
        .service
        .regenerate_access_token(&admin, &id, change)
        .await?;
    Ok(Json(AccessResource::of(&state, access, Some(&token))))
}

/// `DELETE /server/api/admin/access/{id}/previous-token`: "end now".
pub async fn end_previous(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state.service.end_previous_access_token(&admin, &id).await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `POST /server/api/admin/access/{id}/disable`: refused everywhere at once.
pub async fn disable(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state.service.set_access_enabled(&admin, &id, false).await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `POST /server/api/admin/access/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
) -> Result<Json<AccessResource>, ApiError> {
    let access = state.service.set_access_enabled(&admin, &id, true).await?;
    Ok(Json(AccessResource::of(&state, access, None)))
}

/// `DELETE /server/api/admin/access/{id}`: its token stops working at once.
pub async fn delete(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.service.delete_access(&admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
