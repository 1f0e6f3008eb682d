//! Extractors whose rejections are API errors with stable codes, not axum's
//! plain-text defaults.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::StatusCode;

use ipnet::IpNet;

use super::client_addr;
use super::error::ApiError;
use super::json_body::{self, JsonBody};
use super::limits::TooLarge;
use super::AppState;
use crate::service::{Client, ServiceError};

/// A JSON body: missing or JSON content type, size-limited, and every way
/// it can be wrong answered with its own code and a sentence that says
/// what is wrong in the API's terms (see [`json_body`]).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: JsonBody,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = req.headers().get(CONTENT_TYPE) {
            if !is_json(content_type.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the request body as JSON (Content-Type: application/json).",
                ));
            }
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(TooLarge::Body)
            } else {
                ApiError::bad_request("invalid_request", "The request body could not be read.")
            }
        })?;
        json_body::parse(&body).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an empty body (the article's routes send none)
/// is the body's default.
pub struct OptionalApiJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalApiJson<T>
where
    S: Send + Sync,
    T: JsonBody + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large(TooLarge::Body)
                } else {
                    ApiError::bad_request("invalid_request", "The request body could not be read.")
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalApiJson(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(body)| OptionalApiJson(body))
    }
}

fn is_json(content_type: &[u8]) -> bool {
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A path segment such as a device id.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|_| ApiError::bad_request("invalid_request", "The address is malformed."))
    }
}

/// The client's address (see [`client_addr`]) and user agent; refused
/// when a trusted proxy's `X-Forwarded-For` cannot be read.
pub fn client<'a>(parts: &'a Parts, trusted_proxies: &[IpNet]) -> Result<Client<'a>, ServiceError> {
    let ip = client_addr::of_request(&parts.headers, trusted_proxies)
        .map_err(|_| ServiceError::BadForwardedFor)?;
    Ok(Client {
        ip,
        // Not `to_str`, which gives up on any byte outside ASCII.
        user_agent: parts
            .headers
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes())),
    })
}

/// [`client`], owned, for handlers that also take a body.
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn as_client(&self) -> Client<'_> {
        Client {
            ip: self.ip,
            user_agent: self.user_agent.as_deref().map(Cow::Borrowed),
        }
    }
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let c = client(parts, &state.trusted_proxies)?;
        Ok(ClientInfo {
            ip: c.ip,
            user_agent: c.user_agent.map(Cow::into_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn recognises_json_content_types() {
        assert!(is_json(b"application/json"));
        assert!(is_json(b"Application/JSON; charset=utf-8"));
        assert!(is_json(b"application/vnd.api+json"));
        assert!(!is_json(b"text/plain"));
        assert!(!is_json(b"application/x-www-form-urlencoded"));
        assert!(!is_json(b"\xff"));
    }
}
