//! `/device`: where a person approves or denies an app's sign-in request
//! (the verification page of RFC 8628). Signing in comes first, with every
//! step the account needs, so the approval is as strong as the session.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::http::extract::ClientInfo;
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, when, FieldErrors, Layout, WebError};
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::ServiceError;

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    layout: Layout,
    code: String,
    errors: FieldErrors,
    request: Option<RequestShown>,
}

/// The request as the person deciding sees it.
struct RequestShown {
    user_code: String,
    name: String,
    device_type: String,
    address: String,
    user_agent: String,
    asked: String,
}

#[derive(Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    code: Option<String>,
}

/// Shows the code form, or, for a code of a pending request, the request
/// with Approve and Deny.
pub async fn show(
    State(state): State<AppState>,
    user: SignedIn,
    info: ClientInfo,
    query: Result<Query<CodeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let code = query
        .ok()
        .and_then(|Query(q)| q.code)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let mut page = DevicePage {
        layout: user.layout(&state).await?,
        code: String::new(),
        errors: FieldErrors::default(),
        request: None,
    };
    let Some(code) = code else {
        return Ok(render(StatusCode::OK, &page));
    };
    if !page.layout.may_sync {
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    match state
        .service
        .pending_device_authorization(user.member(), &code, &info.as_client())
        .await
    {
        Ok(pending) => {
            let r = pending.request;
            page.request = Some(RequestShown {
                user_code: pending.user_code,
                name: r.device_name.to_string(),
                device_type: r.device_type,
                address: r
                    .requested_ip
                    .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
                user_agent: r
                    .requested_user_agent
                    .unwrap_or_else(|| "none sent".to_owned()),
                asked: when(r.created_at),
            });
            Ok(render(StatusCode::OK, &page))
        }
        Err(ServiceError::Invalid { message, .. }) => {
            page.code = code;
            page.errors.add("code", message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The code form again, with what went wrong.
fn refused(user: &SignedIn, code: String, message: String) -> Response {
    let mut page = DevicePage {
        layout: user.layout_without_notice(),
        code,
        errors: FieldErrors::default(),
        request: None,
    };
    page.errors.add("code", message);
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn approve(
    State(state): State<AppState>,
    info: ClientInfo,
    Form(user, form): Form<SignedIn, CodeForm>,
) -> Result<Response, WebError> {
    match state
        .service
        .approve_device_authorization(user.member(), &form.code, &info.as_client())
        .await
    {
        Ok(device) => {
            let flash = format!(
                "“{}” is signed in: the app now collects its own device password. It is listed here; delete it to sign the app out.",
                device.name
            );
            user.done(&state, flash, None, "/settings/devices").await
        }
        Err(ServiceError::Invalid { message, .. }) => Ok(refused(&user, form.code, message)),
        Err(e) => Err(e.into()),
    }
}

pub async fn deny(
    State(state): State<AppState>,
    info: ClientInfo,
    Form(user, form): Form<SignedIn, CodeForm>,
) -> Result<Response, WebError> {
    match state
        .service
        .deny_device_authorization(user.member(), &form.code, &info.as_client())
        .await
    {
        Ok(request) => {
            let flash = format!("Denied: “{}” gets no device password.", request.device_name);
            user.done(&state, flash, None, "/device").await
        }
        Err(ServiceError::Invalid { message, .. }) => Ok(refused(&user, form.code, message)),
        Err(e) => Err(e.into()),
    }
}
