//! `/sign-in` and `/sign-out`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::NoFields;
use crate::credential::{Secret, SessionKey, SIGN_IN_FORM_LIFETIME, TRUSTED_BROWSER_LIFETIME};
use crate::http::extract::ClientInfo;
use crate::http::web::cookie;
use crate::http::web::csrf::{Form, SignInForm};
use crate::http::web::page::{redirect, render, FieldErrors, WebError};
use crate::http::web::return_to;
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::ServiceError;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    email: String,
    /// Where to go once signed in (already checked to be safe), or empty.
    next: String,
    /// About the whole form, not one field.
    error: Option<String>,
    errors: FieldErrors,
    signed_out: bool,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(rename = "signed-out")]
    signed_out: Option<String>,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    next: String,
}

/// The page to land on after signing in.
fn landing(next: &str) -> &str {
    return_to::safe(next).unwrap_or("/settings/profile")
}

pub async fn show(
    State(state): State<AppState>,
    user: Result<SignedIn, WebError>,
    Query(query): Query<ShowQuery>,
) -> Response {
    if user.is_ok() {
        return redirect(landing(&query.next));
    }
    let page = SignInPage {
        csrf: String::new(),
        email: String::new(),
        next: return_to::safe(&query.next).unwrap_or_default().to_owned(),
        error: None,
        errors: FieldErrors::default(),
        signed_out: query.signed_out.is_some(),
    };
    form_page(&state, StatusCode::OK, page)
}

/// Renders the form with a fresh double-submit token.
fn form_page(state: &AppState, status: StatusCode, mut page: SignInPage) -> Response {
    page.csrf = state.service.issue_sign_in_form();
    let mut response = render(status, &page);
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie::set(
            cookie::SIGN_IN,
            &page.csrf,
            state.web.secure_cookies,
            Some(SIGN_IN_FORM_LIFETIME as u64),
        ),
    );
    response
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    info: ClientInfo,
    SignInForm(form): SignInForm<Credentials>,
) -> Result<Response, WebError> {
    let mut page = SignInPage {
        csrf: String::new(),
        email: form.email.trim().to_owned(),
        next: return_to::safe(&form.next).unwrap_or_default().to_owned(),
        error: None,
        errors: FieldErrors::default(),
        signed_out: false,
    };
    if form.email.trim().is_empty() {
        page.errors.add("email", "Enter your email address.");
    }
    if form.password.is_empty() {
        page.errors.add("password", "Enter your password.");
    }
    if !page.errors.is_empty() {
        return Ok(form_page(&state, StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    let trusted = cookie::read(&headers, cookie::TRUSTED_BROWSER, state.web.secure_cookies);
    let signed = state
        .service
        .sign_in(
            &form.email,
            form.password,
            &info.as_client(),
            &state.web.sessions,
            trusted.as_deref(),
        )
        .await;
    let status = match signed {
        Ok(signed) => {
            // A new id at every sign-in: a session id planted before
            // sign-in is worth nothing after it.
            if let Some(old) = cookie::read(&headers, cookie::SESSION, state.web.secure_cookies)
                .and_then(|raw| SessionKey::parse(&raw))
            {
                state.service.forget_session(&old).await?;
            }
            let mut response = redirect(landing(&form.next));
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie::set(
                    cookie::SESSION,
                    &signed.key.expose(),
                    state.web.secure_cookies,
                    None,
                ),
            );
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie::set(
                    cookie::TRUSTED_BROWSER,
                    &signed.trusted_browser,
                    state.web.secure_cookies,
                    Some(TRUSTED_BROWSER_LIFETIME as u64),
                ),
            );
            return Ok(response);
        }
        Err(ServiceError::Invalid { message, .. }) => {
            page.errors.add("email", message);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(ServiceError::InvalidCredentials) => {
            page.error = Some(ServiceError::InvalidCredentials.to_string());
            StatusCode::UNAUTHORIZED
        }
        Err(e @ ServiceError::RateLimited { retry_after }) => {
            page.error = Some(e.to_string());
            let mut response = form_page(&state, StatusCode::TOO_MANY_REQUESTS, page);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            return Ok(response);
        }
        Err(e @ ServiceError::SignInStopped) => {
            page.error = Some(e.to_string());
            StatusCode::TOO_MANY_REQUESTS
        }
        Err(e @ ServiceError::AccountDisabled) => {
            page.error = Some(e.to_string());
            StatusCode::FORBIDDEN
        }
        Err(ServiceError::TwoFactorEnabled) => {
            page.error = Some(
                "This account uses two-factor authentication, and signing in with it is not available in the web interface yet. Ask your administrator for help."
                    .to_owned(),
            );
            StatusCode::FORBIDDEN
        }
        Err(e) => return Err(e.into()),
    };
    Ok(form_page(&state, status, page))
}

pub async fn sign_out(
    State(state): State<AppState>,
    Form(user, NoFields {}): Form<SignedIn, NoFields>,
) -> Result<Response, WebError> {
    state.service.sign_out(user.actor()).await?;
    let mut response = redirect("/sign-in?signed-out=1");
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie::clear(cookie::SESSION, state.web.secure_cookies),
    );
    Ok(response.into_response())
}
