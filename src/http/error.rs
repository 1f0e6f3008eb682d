//! The one error type of the API. Client errors carry a stable code and a
//! sentence; storage and unexpected errors are logged with their cause and
//! answered with an opaque message.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::limits::{self, TooLarge};
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is nothing at this address. The API lives under /server/api.",
        )
    }

    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The request took too long and was cancelled. Try again.",
        )
    }

    pub fn too_large(what: TooLarge) -> Self {
        match what {
            TooLarge::Body => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "The request body is too large: at most {} KiB are accepted.",
                    limits::MAX_BODY_BYTES / 1024
                ),
            ),
            TooLarge::Uri => Self::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!(
                    "The address is too long: at most {} KiB are accepted.",
                    limits::MAX_URI_BYTES / 1024
                ),
            ),
            TooLarge::Headers => Self::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!(
                    "The request headers are too large: at most {} fields and {} KiB are accepted.",
                    limits::MAX_HEADERS,
                    limits::MAX_HEADER_BYTES / 1024
                ),
            ),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This address does not accept that HTTP method.",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::Invalid { code, message } => Self::bad_request(code, message),
            ServiceError::InvalidCredentials => Self::unauthorized("invalid_credentials", message),
            ServiceError::InvalidDeviceCredentials => {
                Self::unauthorized("invalid_device_credentials", message)
            }
            ServiceError::TwoFactorEnabled => {
                Self::new(StatusCode::FORBIDDEN, "two_factor_enabled", message)
            }
            ServiceError::WrongCode => Self::unauthorized("wrong_code", message),
            ServiceError::SignInExpired => Self::unauthorized("sign_in_expired", message),
            ServiceError::PermissionMissing(_) => {
                Self::new(StatusCode::FORBIDDEN, "permission_missing", message)
            }
            ServiceError::InsufficientScope(_) => {
                Self::new(StatusCode::FORBIDDEN, "insufficient_scope", message)
            }
            ServiceError::CredentialExpired => Self::unauthorized("credential_expired", message),
            ServiceError::LifetimeExceeded(_) => {
                Self::unauthorized("credential_lifetime_exceeded", message)
            }
            ServiceError::AddressNotAllowed => {
                Self::new(StatusCode::FORBIDDEN, "address_not_allowed", message)
            }
            ServiceError::BadForwardedFor => Self::bad_request("invalid_forwarded_for", message),
            ServiceError::AccountDisabled => {
                Self::new(StatusCode::FORBIDDEN, "account_disabled", message)
            }
            ServiceError::AccessDisabled => {
                Self::new(StatusCode::FORBIDDEN, "access_disabled", message)
            }
            ServiceError::AccountRequired => {
                Self::new(StatusCode::FORBIDDEN, "account_required", message)
            }
            ServiceError::AccessNotFound => {
                Self::new(StatusCode::NOT_FOUND, "access_not_found", message)
            }
            ServiceError::NotAnAdministrator => {
                Self::new(StatusCode::FORBIDDEN, "admin_required", message)
            }
            ServiceError::DeviceNotFound => {
                Self::new(StatusCode::NOT_FOUND, "device_not_found", message)
            }
            ServiceError::AccountNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "account_not_found", message)
            }
            ServiceError::EmailTaken(_) => Self::new(StatusCode::CONFLICT, "email_taken", message),
            ServiceError::ChangedMeanwhile => {
                Self::new(StatusCode::CONFLICT, "changed_meanwhile", message)
            }
            ServiceError::RateLimited { retry_after } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                    .with_retry_after(retry_after)
            }
            ServiceError::SignInStopped => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "sign_in_stopped", message)
            }
            ServiceError::TooManyPendingAuthorizations { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_pending_authorizations",
                message,
            )
            .with_retry_after(retry_after),
            ServiceError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
                .with_retry_after(Duration::from_secs(5)),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "The database is unavailable right now. Try again shortly.",
                )
                .with_retry_after(Duration::from_secs(5))
            }
            ServiceError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on the server. It has been logged.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"latchkey\""),
            );
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response
    }
}
