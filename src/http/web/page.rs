//! Rendering pages, redirecting after a POST, and the one error type of the
//! web interface, which answers with a page, never with internal detail.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::macros::format_description;
use time::OffsetDateTime;

use super::reveal::Reveal;
use crate::domain::Timestamp;
use crate::http::limits::TooLarge;
use crate::service::ServiceError;

/// What every signed-in page shows around its content.
pub struct Layout {
    pub name: String,
    pub email: String,
    pub is_admin: bool,
    pub may_sync: bool,
    /// The token the page's forms carry.
    pub csrf: String,
    pub flash: Option<String>,
    pub reveal: Option<Reveal>,
}

/// Validation messages, each shown next to its field.
#[derive(Default)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn of(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// 303: the browser follows with a GET, so reloading never re-submits.
pub fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

/// "2026-11-28 15:52 UTC".
pub fn when(at: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.millis()) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
pub enum WebError {
    /// No (live) session: go and sign in.
    SignInRequired,
    /// As [`WebError::SignInRequired`], then back to this page.
    SignInToReturnTo(String),
    /// The two-factor requirement's grace period is over: enrol first.
    MustEnrol,
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl WebError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing at this address.",
        )
    }

    pub fn forbidden_form() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Form refused",
            "This form was not sent from this site's current page, or it has expired. Go back, reload the page and try again.",
        )
    }

    pub fn admins_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "This page is for administrators. Ask your administrator if you need something changed.",
        )
    }

    pub fn too_large(what: TooLarge) -> Self {
        let (status, message) = match what {
            TooLarge::Body => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "What was sent is larger than this site accepts. Go back and send less.",
            ),
            TooLarge::Uri => (
                StatusCode::URI_TOO_LONG,
                "This address is longer than this site accepts.",
            ),
            TooLarge::Headers => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "Your browser sent more headers or cookies than this site accepts. Clearing this site's cookies may help.",
            ),
        };
        Self::new(status, "Too large", message)
    }

    pub fn bad_form() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Form not understood",
            "The form was incomplete or malformed. Go back, reload the page and try again.",
        )
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::Invalid { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "Not possible", message)
            }
            ServiceError::InvalidCredentials | ServiceError::InvalidDeviceCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "Not signed in", message)
            }
            ServiceError::TwoFactorEnabled
            | ServiceError::AccountDisabled
            | ServiceError::SignInExpired => Self::SignInRequired,
            ServiceError::WrongCode => Self::new(StatusCode::UNAUTHORIZED, "Wrong code", message),
            ServiceError::PermissionMissing(_) => {
                Self::new(StatusCode::FORBIDDEN, "Permission missing", message)
            }
            ServiceError::NotAnAdministrator => Self::admins_only(),
            ServiceError::InsufficientScope(_)
            | ServiceError::AddressNotAllowed
            | ServiceError::AccessDisabled
            | ServiceError::AccountRequired => {
                Self::new(StatusCode::FORBIDDEN, "Not allowed", message)
            }
            ServiceError::CredentialExpired | ServiceError::LifetimeExceeded(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "Expired", message)
            }
            ServiceError::BadForwardedFor => {
                Self::new(StatusCode::BAD_REQUEST, "Address unknown", message)
            }
            ServiceError::DeviceNotFound
            | ServiceError::AccountNotFound(_)
            | ServiceError::AccessNotFound => Self::not_found(),
            ServiceError::EmailTaken(_) => {
                Self::new(StatusCode::CONFLICT, "Already exists", message)
            }
            ServiceError::ChangedMeanwhile => {
                Self::new(StatusCode::CONFLICT, "Changed meanwhile", message)
            }
            ServiceError::RateLimited { .. }
            | ServiceError::SignInStopped
            | ServiceError::TooManyPendingAuthorizations { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", message)
            }
            ServiceError::Busy => Self::new(StatusCode::SERVICE_UNAVAILABLE, "Busy", message),
            ServiceError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The database is unavailable right now. Try again shortly.",
                )
            }
            ServiceError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on the server. It has been logged.",
                )
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignInRequired => redirect("/sign-in"),
            WebError::MustEnrol => redirect("/settings/security/two-factor"),
            WebError::SignInToReturnTo(path) => {
                redirect(&super::return_to::sign_in_returning_to(&path))
            }
            WebError::Page {
                status,
                title,
                message,
            } => render(
                status,
                &ErrorPage {
                    title,
                    message: &message,
                },
            ),
        }
    }
}
