//! Forward auth: lets a reverse proxy (nginx `auth_request`, Traefik
//! `forwardAuth`, Caddy `forward_auth`, HAProxy) guard an API that is not
//! latchkey's own with device passwords. The proxy asks here about each
//! request; only a positively verified credential is answered 2xx, with the
//! identity as headers. Anything missing, malformed or unreadable is 401
//! or 403, and an outage 503: never 200.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;

use super::auth::{caller, caller_if_cached};
use super::error::ApiError;
use super::hot_routes::HotAnswer;
use super::AppState;
use crate::domain::{Permission, Scope};
use crate::service::Caller;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/server/authz/auth-request", any(auth_request))
        .route("/server/authz/forward-auth", any(forward_auth))
}

/// `GET /server/authz/auth-request`: nginx, with `X-Original-Method` and
/// `X-Original-URL`.
async fn auth_request(State(state): State<AppState>, request: Request) -> Response {
    // Taken apart, not extracted as `Parts`, which would clone every header.
    let (parts, _) = request.into_parts();
    let original = nginx_original(&parts.headers);
    answer(&state, &parts, original).await
}

/// `GET /server/authz/forward-auth`: Traefik, Caddy and HAProxy, with
/// `X-Forwarded-Method` and, when sent, `-Proto`, `-Host` and `-Uri`.
async fn forward_auth(State(state): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let original = forwarded_original(&parts.headers);
    answer(&state, &parts, original).await
}

/// `Remote-Scope`, checked at compile time.
fn scope_value(scope: Scope) -> HeaderValue {
    const READ: HeaderValue = HeaderValue::from_static(Scope::Read.as_str());
    const FULL: HeaderValue = HeaderValue::from_static(Scope::Full.as_str());
    const ADMIN: HeaderValue = HeaderValue::from_static(Scope::Admin.as_str());
    match scope {
        Scope::Read => READ,
        Scope::Full => FULL,
        Scope::Admin => ADMIN,
    }
}

// Parsed once, at compile time, not per request.
const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
const REMOTE_EMAIL: HeaderName = HeaderName::from_static("remote-email");
const REMOTE_NAME: HeaderName = HeaderName::from_static("remote-name");
const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
const REMOTE_CREDENTIAL: HeaderName = HeaderName::from_static("remote-credential");
const REMOTE_SCOPE: HeaderName = HeaderName::from_static("remote-scope");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// Per-upstream rules in the query string.
#[derive(Deserialize)]
struct Rules {
    scope: Option<String>,
    group: Option<String>,
}

async fn answer(state: &AppState, parts: &Parts, original: Result<Scope, ApiError>) -> Response {
    let check = async {
        let (need, group) = requirement(parts, original)?;
        respond(caller(parts, state, need).await?, group)
    };
    check.await.unwrap_or_else(IntoResponse::into_response)
}

/// Forward auth for the hot routes: answered at once when the cache can
/// prove the caller, which is almost always; otherwise later, as routed.
pub(super) fn hot(state: &AppState, request: Request, nginx: bool) -> HotAnswer {
    let (parts, body) = request.into_parts();
    let original = if nginx {
        nginx_original(&parts.headers)
    } else {
        forwarded_original(&parts.headers)
    };
    let (need, group) = match requirement(&parts, original) {
        Ok(requirement) => requirement,
        Err(e) => return HotAnswer::Ready(e.into_response()),
    };
    match caller_if_cached(&parts, state, need) {
        Some(caller) => HotAnswer::Ready(
            caller
                .and_then(|caller| respond(caller, group))
                .unwrap_or_else(IntoResponse::into_response),
        ),
        None => {
            let (state, request) = (state.clone(), Request::from_parts(parts, body));
            HotAnswer::Later(if nginx {
                Box::pin(auth_request(State(state), request))
            } else {
                Box::pin(forward_auth(State(state), request))
            })
        }
    }
}

/// Room for the identity headers and those every answer gets on its way
/// out, so that the answer's header map is made once and never grows.
const ANSWER_HEADERS: usize = 12;

/// The scope the original request needs, and the permission the
/// upstream's rules ask for, if any.
fn requirement(
    parts: &Parts,
    original: Result<Scope, ApiError>,
) -> Result<(Scope, Option<Permission>), ApiError> {
    let method_needs = original?;
    let (rule_scope, group) = rules(parts.uri.query())?;
    Ok((method_needs.max(rule_scope), group))
}

/// The answer for a proved caller: the identity headers, if it holds what
/// the upstream asks for.
fn respond(caller: Caller, group: Option<Permission>) -> Result<Response, ApiError> {
    if let Some(group) = group {
        if !caller.permissions().contains(group) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_missing",
                format!("This service needs the \"{group}\" permission."),
            ));
        }
    }
    // Written straight into the answer's own map: a map of their own
    // would be hashed into it again.
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.reserve(ANSWER_HEADERS);
    let mut put = |name: HeaderName, value: Option<HeaderValue>| {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    };
    // Every identity value is a slice of one buffer: one allocation for
    // them all, not one (or two) per header.
    let mut text = Vec::with_capacity(160);
    let mut part = |pieces: &[&[u8]]| {
        let start = text.len();
        for piece in pieces {
            text.extend_from_slice(piece);
        }
        start..text.len()
    };
    let (user, email, name, credential) = match &caller {
        Caller::Device(device) => {
            let holder = device.holder();
            let email = part(&[holder.email.as_bytes()]);
            let name = part(&[holder.name.as_bytes()]);
            let credential = part(&[b"device:", device.device().id.as_str().as_bytes()]);
            (email.clone(), Some(email), name, credential)
        }
        Caller::Access(access) => {
            // A service has no email and belongs to nobody: its id names it.
            let credential = part(&[b"access:", access.id().as_str().as_bytes()]);
            let name = part(&[access.name().as_bytes()]);
            (credential.clone(), None, name, credential)
        }
    };
    let groups = {
        let start = text.len();
        for permission in caller.permissions().iter() {
            if text.len() > start {
                text.push(b',');
            }
            text.extend_from_slice(permission.as_str().as_bytes());
        }
        start..text.len()
    };
    let text = Bytes::from(text);
    // Names may be any text: UTF-8 bytes are allowed in a header value,
    // control characters are not, and a name that has any is left out.
    let value = |range: Range<usize>| HeaderValue::from_maybe_shared(text.slice(range)).ok();
    put(REMOTE_USER, value(user));
    put(REMOTE_EMAIL, email.and_then(value));
    put(REMOTE_NAME, value(name));
    put(REMOTE_GROUPS, value(groups));
    put(REMOTE_CREDENTIAL, value(credential));
    put(REMOTE_SCOPE, Some(scope_value(caller.scope())));
    Ok(response)
}

fn rules(query: Option<&str>) -> Result<(Scope, Option<Permission>), ApiError> {
    let invalid = |what: String| ApiError::new(StatusCode::FORBIDDEN, "invalid_rule", what);
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok((Scope::Read, None));
    };
    let rules: Rules = serde_urlencoded::from_str(query).map_err(|_| {
        invalid("The query string must be scope=read|full|admin and/or group=<permission>.".into())
    })?;
    let scope = match rules.scope {
        Some(raw) => raw.parse::<Scope>().map_err(|e| invalid(e.to_string()))?,
        None => Scope::Read,
    };
    let group = rules
        .group
        .map(|raw| raw.parse::<Permission>())
        .transpose()
        .map_err(|e| invalid(e.to_string()))?;
    Ok((scope, group))
}

fn unreadable(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_original_request",
        format!("The proxy's {what} header is missing or cannot be read, so the request cannot be judged."),
    )
}

/// For each of `names`, its one value, or none; `Err` for a name sent
/// more than once. One pass over the request's headers, not a hashed
/// lookup per name.
fn sent<'a, const N: usize>(
    headers: &'a HeaderMap,
    names: [&HeaderName; N],
) -> [Result<Option<&'a HeaderValue>, ()>; N] {
    let mut found = [Ok(None); N];
    for (name, value) in headers {
        for (wanted, slot) in names.iter().zip(&mut found) {
            if name == *wanted {
                *slot = match slot {
                    Ok(None) => Ok(Some(value)),
                    _ => Err(()),
                };
            }
        }
    }
    found
}

/// The scope the original method needs; the method must be an HTTP token
/// in upper case, as proxies send it.
fn method_scope(
    sent: Result<Option<&HeaderValue>, ()>,
    name: &HeaderName,
) -> Result<Scope, ApiError> {
    let Ok(Some(value)) = sent else {
        return Err(unreadable(name.as_str()));
    };
    let method = value.as_bytes();
    if method.is_empty() || method.len() > 32 || !method.iter().all(u8::is_ascii_uppercase) {
        return Err(unreadable(name.as_str()));
    }
    Ok(Scope::needed_for(method))
}

fn nginx_original(headers: &HeaderMap) -> Result<Scope, ApiError> {
    let [method, url] = sent(headers, [&X_ORIGINAL_METHOD, &X_ORIGINAL_URL]);
    let scope = method_scope(method, &X_ORIGINAL_METHOD)?;
    let Ok(Some(url)) = url else {
        return Err(unreadable("X-Original-URL"));
    };
    let url = url
        .to_str()
        .ok()
        .and_then(|u| u.parse::<Uri>().ok())
        .ok_or_else(|| unreadable("X-Original-URL"))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.authority().is_none() {
        return Err(unreadable("X-Original-URL"));
    }
    Ok(scope)
}

fn forwarded_original(headers: &HeaderMap) -> Result<Scope, ApiError> {
    let [method, proto, host, uri] = sent(
        headers,
        [
            &X_FORWARDED_METHOD,
            &X_FORWARDED_PROTO,
            &X_FORWARDED_HOST,
            &X_FORWARDED_URI,
        ],
    );
    let scope = method_scope(method, &X_FORWARDED_METHOD)?;
    match proto {
        Ok(None) => {}
        Ok(Some(v)) if matches!(v.as_bytes(), b"http" | b"https") => {}
        _ => return Err(unreadable("X-Forwarded-Proto")),
    }
    match host {
        Ok(None) => {}
        Ok(Some(v))
            if v.to_str().ok().is_some_and(|h| {
                !h.is_empty() && h.parse::<axum::http::uri::Authority>().is_ok()
            }) => {}
        _ => return Err(unreadable("X-Forwarded-Host")),
    }
    match uri {
        Ok(None) => {}
        Ok(Some(v))
            if v.to_str()
                .ok()
                .is_some_and(|u| u.starts_with('/') && u.parse::<Uri>().is_ok()) => {}
        _ => return Err(unreadable("X-Forwarded-Uri")),
    }
    Ok(scope)
}
