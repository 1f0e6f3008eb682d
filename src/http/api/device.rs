//! `/server/api/device`: the article's device resource.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::credential::Secret;
use crate::credential::Token;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::credential::DeviceId;
use crate::domain::{
    Device, DeviceName, LastUse, RecentAddresses, RequestedLimits, Scope, Timestamp,
};
use crate::http::auth;
use crate::http::auth::DeviceAuth;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo, OptionalApiJson, PathId};
use crate::http::hot_routes::{self, HotAnswer};
use crate::http::json_body::{Field, JsonBody, OtherFields};
use crate::http::AppState;
use crate::service::{parse_limits, DeviceState, PasswordDeviceRequest, RawLimits, TokenChange};

/// The device resource. `token` appears only in the answers that create one.
/// Addresses and names stay typed until written: one answer is written
/// straight into one buffer ([`DeviceResource::to_json`]), without a string
/// per field.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceResource {
    #[serde(rename = "_id", serialize_with = "as_text")]
    id: DeviceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(serialize_with = "as_text")]
    device_name: DeviceName,
    device_type: Arc<str>,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    last_used_ip: Option<IpAddr>,
    last_used_user_agent: Option<Arc<str>>,
    /// The last distinct addresses, newest first.
    #[serde(serialize_with = "addresses")]
    recent_ips: RecentAddresses,
    scope: Scope,
    expires_at: Option<Timestamp>,
    idle_expiry_days: Option<u32>,
    #[serde(serialize_with = "networks")]
    allowed_networks: Vec<IpNet>,
    #[serde(serialize_with = "networks")]
    denied_networks: Vec<IpNet>,
    /// Past its expiry, idle too long, or beyond the lifetime policy.
    expired: bool,
    /// Until when the password before the last change still works.
    previous_password_valid_until: Option<Timestamp>,
}

fn as_text<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn addresses<S: serde::Serializer>(
    recent: &RecentAddresses,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(recent.iter())
}

fn networks<S: serde::Serializer>(list: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(list.iter().map(|net| net.to_string()))
}

impl DeviceResource {
    /// Its fields as sent, `token` included.
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "token",
        "deviceName",
        "deviceType",
        "createdAt",
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
        "previousPasswordValidUntil",
    ];

    pub fn new(device: Device, state: DeviceState, token: Option<&Token>) -> Self {
        let last_used = device.last_used;
        let limits = device.limits;
        Self {
            id: device.id,
            token: token.map(|t| t.expose().to_owned()),
            device_name: device.name,
            device_type: device.device_type,
            created_at: device.created_at,
            last_used_at: last_used.as_ref().map(|u| u.at),
            last_used_ip: last_used.as_ref().and_then(|u| u.ip),
            recent_ips: last_used.as_ref().map(|u| u.recent).unwrap_or_default(),
            last_used_user_agent: last_used.and_then(|u| u.user_agent),
            scope: limits.scope,
            expires_at: limits.expires_at,
            idle_expiry_days: limits.idle_expiry_days,
            allowed_networks: limits.allowed_networks,
            denied_networks: limits.denied_networks,
            expired: state.expired,
            previous_password_valid_until: state.previous_token_until,
        }
    }

    /// The same bytes as `serde_json::to_vec(self)` (a test holds them
    /// equal), written by [`ResourceView::to_json`].
    pub fn to_json(&self) -> Vec<u8> {
        ResourceView {
            id: &self.id,
            token: self.token.as_deref(),
            device_name: &self.device_name,
            device_type: &self.device_type,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            last_used_ip: self.last_used_ip,
            last_used_user_agent: self.last_used_user_agent.as_deref(),
            recent_ips: self.recent_ips,
            scope: self.scope,
            expires_at: self.expires_at,
            idle_expiry_days: self.idle_expiry_days,
            allowed_networks: &self.allowed_networks,
            denied_networks: &self.denied_networks,
            expired: self.expired,
            previous_password_valid_until: self.previous_password_valid_until,
        }
        .to_json()
    }
}

/// A [`DeviceResource`]'s fields, borrowed: the resource of a device
/// written without a copy of it (the hot route's caller's own device).
struct ResourceView<'a> {
    id: &'a DeviceId,
    token: Option<&'a str>,
    device_name: &'a DeviceName,
    device_type: &'a str,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    last_used_ip: Option<IpAddr>,
    last_used_user_agent: Option<&'a str>,
    recent_ips: RecentAddresses,
    scope: Scope,
    expires_at: Option<Timestamp>,
    idle_expiry_days: Option<u32>,
    allowed_networks: &'a [IpNet],
    denied_networks: &'a [IpNet],
    expired: bool,
    previous_password_valid_until: Option<Timestamp>,
}

impl<'a> ResourceView<'a> {
    /// `device` as it stands, with `used` as its last use.
    fn of(device: &'a Device, used: Option<&'a LastUse>, state: DeviceState) -> Self {
        let limits = &device.limits;
        Self {
            id: &device.id,
            token: None,
            device_name: &device.name,
            device_type: &device.device_type,
            created_at: device.created_at,
            last_used_at: used.map(|u| u.at),
            last_used_ip: used.and_then(|u| u.ip),
            last_used_user_agent: used.and_then(|u| u.user_agent.as_deref()),
            recent_ips: used.map(|u| u.recent).unwrap_or_default(),
            scope: limits.scope,
            expires_at: limits.expires_at,
            idle_expiry_days: limits.idle_expiry_days,
            allowed_networks: &limits.allowed_networks,
            denied_networks: &limits.denied_networks,
            expired: state.expired,
            previous_password_valid_until: state.previous_token_until,
        }
    }

    /// The keys are written as they are, and only the free texts (name,
    /// type, user agent, token) go through JSON escaping; ids, timestamps,
    /// addresses and networks need none.
    fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"{\"_id\":");
        quoted(&mut out, self.id.as_str().as_bytes());
        if let Some(token) = self.token {
            out.extend_from_slice(b",\"token\":");
            escaped(&mut out, token);
        }
        out.extend_from_slice(b",\"deviceName\":");
        escaped(&mut out, self.device_name.as_str());
        out.extend_from_slice(b",\"deviceType\":");
        escaped(&mut out, self.device_type);
        out.extend_from_slice(b",\"createdAt\":");
        timestamp(&mut out, Some(self.created_at));
        out.extend_from_slice(b",\"lastUsedAt\":");
        timestamp(&mut out, self.last_used_at);
        out.extend_from_slice(b",\"lastUsedIp\":");
        // Usually also the newest recent address: written once, copied.
        let ip_at = out.len();
        match self.last_used_ip {
            Some(ip) => address(&mut out, ip),
            None => out.extend_from_slice(b"null"),
        }
        let ip_written = ip_at..out.len();
        out.extend_from_slice(b",\"lastUsedUserAgent\":");
        match self.last_used_user_agent {
            Some(agent) => escaped(&mut out, agent),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"recentIps\":[");
        for (i, ip) in self.recent_ips.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if Some(ip) == self.last_used_ip {
                out.extend_from_within(ip_written.clone());
            } else {
                address(&mut out, ip);
            }
        }
        out.extend_from_slice(b"],\"scope\":");
        quoted(&mut out, self.scope.as_str().as_bytes());
        out.extend_from_slice(b",\"expiresAt\":");
        timestamp(&mut out, self.expires_at);
        out.extend_from_slice(b",\"idleExpiryDays\":");
        match self.idle_expiry_days {
            Some(days) => out.extend_from_slice(days.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"allowedNetworks\":");
        network_list(&mut out, self.allowed_networks);
        out.extend_from_slice(b",\"deniedNetworks\":");
        network_list(&mut out, self.denied_networks);
        out.extend_from_slice(if self.expired {
            b",\"expired\":true"
        } else {
            b",\"expired\":false"
        });
        out.extend_from_slice(b",\"previousPasswordValidUntil\":");
        timestamp(&mut out, self.previous_password_valid_until);
        out.push(b'}');
        out
    }
}

const APPLICATION_JSON: header::HeaderValue = header::HeaderValue::from_static("application/json");

/// One resource as `application/json`, as `Json` would answer it.
impl IntoResponse for DeviceResource {
    fn into_response(self) -> axum::response::Response {
        json_answer(self.to_json())
    }
}

fn json_answer(json: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, APPLICATION_JSON)], json).into_response()
}

/// Text that needs no escaping: digits, ASCII letters and punctuation.
fn quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(text);
    out.push(b'"');
}

fn escaped(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn timestamp(out: &mut Vec<u8>, at: Option<Timestamp>) {
    match at {
        Some(at) => {
            out.push(b'"');
            at.push_rfc3339(out);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn address(out: &mut Vec<u8>, ip: IpAddr) {
    use std::io::Write;
    out.push(b'"');
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

fn network_list(out: &mut Vec<u8>, list: &[IpNet]) {
    use std::io::Write;
    out.push(b'[');
    for (i, net) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "\"{net}\"");
    }
    out.push(b']');
}

fn resource(state: &AppState, device: Device, token: Option<&Token>) -> DeviceResource {
    let now = state.service.device_state(&device);
    DeviceResource::new(device, now, token)
}

/// The limit fields every body that sets limits takes.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LimitFields {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    idle_expiry_days: Option<u32>,
    #[serde(default)]
    allowed_networks: Option<Vec<String>>,
    #[serde(default)]
    denied_networks: Option<Vec<String>>,
}

impl LimitFields {
    pub(super) fn parse(self) -> Result<RequestedLimits, ApiError> {
        Ok(parse_limits(RawLimits {
            scope: self.scope,
            expires_at: self.expires_at,
            idle_expiry_days: self.idle_expiry_days,
            allowed_networks: self.allowed_networks.unwrap_or_default(),
            denied_networks: self.denied_networks.unwrap_or_default(),
        })?)
    }
}

macro_rules! limit_fields {
    () => {
        [
            Field::optional_string("scope"),
            Field::optional_string("expiresAt"),
            Field::optional_count("idleExpiryDays"),
            Field::optional_strings("allowedNetworks"),
            Field::optional_strings("deniedNetworks"),
        ]
    };
}

/// The limit fields, for bodies elsewhere that set limits too.
pub(super) const LIMIT_FIELDS: [Field; 5] = limit_fields!();

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    email: String,
    password: Secret,
    device_name: String,
    #[serde(default)]
    device_type: Option<String>,
    #[serde(flatten)]
    limits: LimitFields,
}

impl JsonBody for CreateBody {
    const FIELDS: &'static [Field] = &{
        let limits = limit_fields!();
        [
            Field::string("email"),
            Field::string("password"),
            Field::string("deviceName"),
            Field::optional_string("deviceType"),
            limits[0],
            limits[1],
            limits[2],
            limits[3],
            limits[4],
        ]
    };
    // Clients of the original API may send more; nothing here depends on it.
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenameBody {
    device_name: String,
}

impl JsonBody for RenameBody {
    const FIELDS: &'static [Field] = &[Field::string("deviceName")];
    // A client that sends more means to change more, and nothing else can
    // be changed here: say so instead of answering 200 with it unchanged.
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: DeviceResource::FIELDS,
    };
}

/// `PUT /server/api/device/{id}/limits`: all limits at once; a field left
/// out means no such limit.
#[derive(Deserialize, Default)]
pub struct LimitsBody {
    #[serde(flatten)]
    pub(super) limits: LimitFields,
}

impl JsonBody for LimitsBody {
    const FIELDS: &'static [Field] = &limit_fields!();
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: DeviceResource::FIELDS,
    };
}

/// "Change password", optionally with an overlap and a new expiry.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegenerateBody {
    #[serde(default)]
    grace_seconds: Option<u32>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl JsonBody for RegenerateBody {
    const FIELDS: &'static [Field] = &[
        Field::optional_count("graceSeconds"),
        Field::optional_string("expiresAt"),
    ];
    // The article's route took no body: whatever clients sent was unread.
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

impl RegenerateBody {
    pub(super) fn parse(self) -> Result<TokenChange, ApiError> {
        let limits = parse_limits(RawLimits {
            expires_at: self.expires_at,
            ..RawLimits::default()
        })?;
        Ok(TokenChange {
            grace_seconds: self.grace_seconds.unwrap_or(0),
            expires_at: limits.expires_at,
        })
    }
}

/// `POST /server/api/device`: email + main password → a new device and its token.
pub async fn create(
    State(state): State<AppState>,
    info: ClientInfo,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let request = PasswordDeviceRequest {
        email: body.email,
        password: body.password,
        device_name: body.device_name,
        device_type: body.device_type,
        limits: body.limits.parse()?,
    };
    let (device, token) = state
        .service
        .create_device_with_password(request, &info.as_client())
        .await?;
    let location = format!("/server/api/device/{}", device.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        resource(&state, device, Some(&token)),
    ))
}

/// `GET /server/api/device`: the account's devices.
pub async fn list(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
) -> Result<Json<Vec<DeviceResource>>, ApiError> {
    let devices = state.service.devices(&who).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| resource(&state, d, None))
            .collect(),
    ))
}

/// `GET /server/api/device/{id}`: the article's start-up check.
pub async fn show(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<DeviceResource, ApiError> {
    let device = state.service.device(&who, &id).await?;
    Ok(resource(&state, device, None))
}

/// [`show`] for a request the router has not seen (see `hot_routes`),
/// answered at once when the cache can prove the caller and the device is
/// the caller's own; otherwise by [`show_unrouted`], or, once the caller is
/// proved, by [`Service::device`](crate::service::Service::device).
pub fn show_hot(state: &AppState, request: Request) -> HotAnswer {
    let (parts, body) = request.into_parts();
    let need = Scope::needed_for(parts.method.as_str().as_bytes());
    let who =
        match auth::caller_if_cached(&parts, state, need).map(|r| r.and_then(auth::of_a_person)) {
            None => {
                let request = Request::from_parts(parts, body);
                return HotAnswer::Later(Box::pin(show_unrouted(state.clone(), request)));
            }
            Some(Err(e)) => return HotAnswer::Ready(e.into_response()),
            Some(Ok(who)) => who,
        };
    let id = hot_routes::device_id(parts.uri.path());
    match state.service.own_device(&who, id) {
        Ok(Some((device, used, now))) => HotAnswer::Ready(json_answer(
            ResourceView::of(device, Some(used), now).to_json(),
        )),
        Err(e) => HotAnswer::Ready(ApiError::from(e).into_response()),
        Ok(None) => {
            let (state, id) = (state.clone(), id.to_owned());
            HotAnswer::Later(Box::pin(async move {
                match state.service.device(&who, &id).await {
                    Ok(device) => resource(&state, device, None).into_response(),
                    Err(e) => ApiError::from(e).into_response(),
                }
            }))
        }
    }
}

/// [`show`] for a request the router has not seen (see `hot_routes`): the
/// same proof, checked first as the extractors would, and the same answer.
pub async fn show_unrouted(state: AppState, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let answer = async {
        let DeviceAuth(who) = DeviceAuth::of(&parts, &state).await?;
        let id = hot_routes::device_id(parts.uri.path());
        let device = state.service.device(&who, id).await?;
        Ok::<_, ApiError>(resource(&state, device, None))
    };
    answer.await.into_response()
}

/// `PATCH /server/api/device/{id}`: rename.
pub async fn rename(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<DeviceResource, ApiError> {
    let device = state
        .service
        .rename_device(&who, &id, &body.device_name)
        .await?;
    Ok(resource(&state, device, None))
}

/// `PUT /server/api/device/{id}/limits`: replaces the device's limits.
pub async fn set_limits(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<LimitsBody>,
) -> Result<DeviceResource, ApiError> {
    let limits = body.limits.parse()?;
    let device = state.service.set_device_limits(&who, &id, limits).await?;
    Ok(resource(&state, device, None))
}

/// `POST /server/api/device/{id}/password`: the article's "Change password";
/// the body is optional.
pub async fn regenerate(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    OptionalApiJson(body): OptionalApiJson<RegenerateBody>,
) -> Result<DeviceResource, ApiError> {
    let change = body.parse()?;
    let (device, token) = state.service.regenerate_token(&who, &id, change).await?;
    Ok(resource(&state, device, Some(&token)))
}

/// `DELETE /server/api/device/{id}/previous-password`: "end now".
pub async fn end_previous(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<DeviceResource, ApiError> {
    let device = state.service.end_previous_token(&who, &id).await?;
    Ok(resource(&state, device, None))
}

/// `DELETE /server/api/device/{id}`: revokes exactly that device.
pub async fn delete(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.service.delete_device(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::DeviceId;
    use crate::domain::{AccountId, DeviceName, LastUse};

    #[test]
    fn the_read_only_fields_are_the_resources() {
        let device = Device {
            id: DeviceId::generate(),
            account_id: AccountId(1),
            name: DeviceName::parse("d").unwrap(),
            device_type: "unknown".into(),
            created_at: Timestamp::from_millis(0),
            last_used: Some(LastUse {
                at: Timestamp::from_millis(0),
                ip: None,
                user_agent: None,
                recent: Default::default(),
            }),
            limits: Default::default(),
            token_issued_at: Timestamp::from_millis(0),
            previous_token_until: None,
        };
        let state = DeviceState {
            expired: false,
            previous_token_until: None,
        };
        let shown =
            serde_json::to_value(DeviceResource::new(device, state, Some(&Token::generate())))
                .unwrap();
        let mut fields: Vec<&str> = shown
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut declared = DeviceResource::FIELDS.to_vec();
        fields.sort_unstable();
        declared.sort_unstable();
        assert_eq!(fields, declared);
    }

    #[test]
    fn the_written_json_is_what_serde_writes() {
        use crate::domain::CredentialLimits;
        let mut recent = RecentAddresses::default();
        for ip in [
            "2001:db8::7",
            "192.0.2.250",
            "10.0.0.1",
            "2001:db8::1:0:0:1",
        ] {
            recent.note(ip.parse().unwrap());
        }
        let used = |ip: Option<&str>, agent: Option<&str>| LastUse {
            at: Timestamp::from_millis(1_764_000_000_123),
            ip: ip.map(|ip| ip.parse().unwrap()),
            user_agent: agent.map(|a| format!("{a}\u{7}\t").into()),
            recent,
        };
        let limits = CredentialLimits {
            scope: Scope::Read,
            expires_at: Some(Timestamp::from_millis(1_900_000_000_000)),
            idle_expiry_days: Some(30),
            allowed_networks: vec![
                "192.0.2.0/24".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            denied_networks: vec!["192.0.2.7/32".parse().unwrap()],
        };
        for (name, last_used, limits, token, until) in [
            ("plain", None, CredentialLimits::default(), None, None),
            (
                "Jö's \"phone\" \\ </script>",
                Some(used(Some("192.0.2.250"), Some("curl/8 \"x\""))),
                limits.clone(),
                Some(Token::generate()),
                Some(Timestamp::from_millis(-5)),
            ),
            (
                "v6",
                Some(used(Some("2001:db8::7"), None)),
                limits,
                None,
                None,
            ),
            (
                "gone",
                Some(used(None, Some("ua"))),
                Default::default(),
                None,
                Some(Timestamp::from_millis(253_402_300_800_000)),
            ),
        ] {
            let device = Device {
                id: DeviceId::generate(),
                account_id: AccountId(1),
                name: DeviceName::parse(name).unwrap(),
                device_type: "type \"t\"".into(),
                created_at: Timestamp::from_millis(0),
                last_used,
                limits,
                token_issued_at: Timestamp::from_millis(0),
                previous_token_until: None,
            };
            let state = DeviceState {
                expired: until.is_some(),
                previous_token_until: until,
            };
            let resource = DeviceResource::new(device, state, token.as_ref());
            assert_eq!(
                String::from_utf8(resource.to_json()).unwrap(),
                serde_json::to_string(&resource).unwrap()
            );
        }
    }
}
