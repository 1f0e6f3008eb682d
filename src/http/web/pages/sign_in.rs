//! `/sign-in` and `/sign-out`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::NoFields;
use crate::credential::{Secret, SessionKey, SIGN_IN_FORM_LIFETIME, TRUSTED_BROWSER_LIFETIME};
use crate::domain::{Notice, Standing};
use crate::http::extract::ClientInfo;
use crate::http::web::cookie;
use crate::http::web::csrf::{Form, SignInForm};
use crate::http::web::page::{redirect, render, FieldErrors, WebError};
use crate::http::web::return_to;
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::{ServiceError, SignIn, SignInStep, PENDING_SIGN_IN_LIFETIME};

/// Where an account the two-factor requirement covers is sent after signing in.
pub const ENROL: &str = "/settings/security/two-factor";

#[derive(Template)]
#[template(path = "sign_in_code.html")]
struct CodePage {
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: Secret,
    #[serde(default)]
    next: String,
}

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
    with_form_cookie(state, render(status, &page), &page.csrf)
}

/// Sets the cookie half of a sign-in form token (the first step's form and
/// the second step's alike).
fn with_form_cookie(state: &AppState, mut response: Response, token: &str) -> Response {
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie::set(
            cookie::SIGN_IN,
            token,
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
        Ok(SignInStep::Done(signed)) => {
            return finish(&state, &headers, *signed, &form.next, None).await;
        }
        Ok(SignInStep::SecondFactor(pending)) => {
            let mut to = "/sign-in/code".to_owned();
            if !page.next.is_empty() {
                to.push_str("?next=");
                to.push_str(
                    &percent_encoding::utf8_percent_encode(
                        &page.next,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string(),
                );
            }
            let mut response = redirect(&to);
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie::set(
                    cookie::SECOND_STEP,
                    &pending.expose(),
                    state.web.secure_cookies,
                    Some(PENDING_SIGN_IN_LIFETIME.as_secs()),
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
        Err(e) => return Err(e.into()),
    };
    Ok(form_page(&state, status, page))
}

/// Sets the cookies of a finished sign-in and sends the browser on: to
/// enrol, if the two-factor requirement covers the account.
async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    signed: SignIn,
    next: &str,
    flash: Option<String>,
) -> Result<Response, WebError> {
    // A new id at every sign-in: a session id planted before sign-in is
    // worth nothing after it.
    if let Some(old) = cookie::read(headers, cookie::SESSION, state.web.secure_cookies)
        .and_then(|raw| SessionKey::parse(&raw))
    {
        state.service.forget_session(&old).await?;
    }
    let to = match state.service.two_factor_standing(signed.member.account()) {
        Standing::Fine => landing(next),
        Standing::Grace { .. } | Standing::Overdue => ENROL,
    };
    if let Some(flash) = flash {
        let notice = Notice {
            flash: Some(flash),
            reveal: None,
        };
        state.service.set_notice(&signed.key, &notice).await?;
    }
    let mut response = redirect(to);
    let secure = state.web.secure_cookies;
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        cookie::set(cookie::SESSION, &signed.key.expose(), secure, None),
    );
    cookies.append(
        header::SET_COOKIE,
        cookie::set(
            cookie::TRUSTED_BROWSER,
            &signed.trusted_browser,
            secure,
            Some(TRUSTED_BROWSER_LIFETIME as u64),
        ),
    );
    cookies.append(
        header::SET_COOKIE,
        cookie::clear(cookie::SECOND_STEP, secure),
    );
    Ok(response)
}

/// The pending sign-in this browser holds, if it is still waiting.
async fn pending(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionKey>, WebError> {
    let Some(key) = cookie::read(headers, cookie::SECOND_STEP, state.web.secure_cookies)
        .and_then(|raw| SessionKey::parse(&raw))
    else {
        return Ok(None);
    };
    Ok(state
        .service
        .pending_sign_in_is_live(&key)
        .await?
        .then_some(key))
}

fn code_page(state: &AppState, status: StatusCode, mut page: CodePage) -> Response {
    page.csrf = state.service.issue_sign_in_form();
    with_form_cookie(state, render(status, &page), &page.csrf)
}

/// The second step's page; without a live pending sign-in, back to the start.
pub async fn show_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ShowQuery>,
) -> Result<Response, WebError> {
    if pending(&state, &headers).await?.is_none() {
        return Ok(redirect("/sign-in"));
    }
    let page = CodePage {
        csrf: String::new(),
        next: return_to::safe(&query.next).unwrap_or_default().to_owned(),
        error: None,
    };
    Ok(code_page(&state, StatusCode::OK, page))
}

pub async fn submit_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    info: ClientInfo,
    SignInForm(form): SignInForm<CodeForm>,
) -> Result<Response, WebError> {
    let mut page = CodePage {
        csrf: String::new(),
        next: return_to::safe(&form.next).unwrap_or_default().to_owned(),
        error: None,
    };
    let expired = |state: &AppState, message: String| {
        let page = SignInPage {
            csrf: String::new(),
            email: String::new(),
            next: String::new(),
            error: Some(message),
            errors: FieldErrors::default(),
            signed_out: false,
        };
        let mut response = form_page(state, StatusCode::UNAUTHORIZED, page);
        response.headers_mut().append(
            header::SET_COOKIE,
            cookie::clear(cookie::SECOND_STEP, state.web.secure_cookies),
        );
        response
    };
    let Some(key) = cookie::read(&headers, cookie::SECOND_STEP, state.web.secure_cookies)
        .and_then(|raw| SessionKey::parse(&raw))
    else {
        return Ok(expired(&state, ServiceError::SignInExpired.to_string()));
    };
    if form.code.expose().trim().is_empty() {
        page.error = Some("Enter the code from your authenticator app, or a recovery code.".into());
        return Ok(code_page(&state, StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    let trusted = cookie::read(&headers, cookie::TRUSTED_BROWSER, state.web.secure_cookies);
    let done = state
        .service
        .finish_sign_in(
            &key,
            form.code.expose(),
            &info.as_client(),
            &state.web.sessions,
            trusted.as_deref(),
        )
        .await;
    match done {
        Ok(done) => {
            let flash = done.recovery_codes_left.map(|left| match left {
                0 => "You signed in with your last recovery code. Generate new ones now: Personal settings, Security.".to_owned(),
                1 => "You signed in with a recovery code. 1 recovery code is left; generate new ones under Personal settings, Security.".to_owned(),
                n => format!("You signed in with a recovery code. {n} recovery codes are left."),
            });
            finish(&state, &headers, done.sign_in, &form.next, flash).await
        }
        Err(e @ ServiceError::WrongCode) => {
            page.error = Some(e.to_string());
            Ok(code_page(&state, StatusCode::UNAUTHORIZED, page))
        }
        Err(e @ (ServiceError::SignInExpired | ServiceError::AccountDisabled)) => {
            Ok(expired(&state, e.to_string()))
        }
        Err(e @ ServiceError::RateLimited { retry_after }) => {
            page.error = Some(format!(
                "Too many wrong codes for this account, so this one was not checked. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ));
            let _ = e;
            let mut response = code_page(&state, StatusCode::TOO_MANY_REQUESTS, page);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
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
