//! Personal settings, Security tab: two-factor authentication (enrolment,
//! recovery codes, turning it off) and web sessions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{NoFields, PagePath};
use crate::credential::{RecoveryCode, Secret};
use crate::domain::{SessionId, Standing};
use crate::http::extract::ClientInfo;
use crate::http::web::csrf::Form;
use crate::http::web::page::{redirect, render, when, Layout, WebError};
use crate::http::web::reveal::{Reveal, RevealItem};
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::ServiceError;

const HERE: &str = "/settings/security";

#[derive(Template)]
#[template(path = "settings/security.html")]
struct SecurityPage {
    layout: Layout,
    tab: &'static str,
    two_factor: bool,
    recovery_codes_left: i64,
    /// Set when the requirement covers this account and it has no second factor.
    required_by: Option<String>,
    overdue: bool,
    sessions: Vec<SessionRow>,
}

#[derive(Template)]
#[template(path = "settings/two_factor.html")]
struct EnrolPage {
    layout: Layout,
    tab: &'static str,
    /// Inline SVG made here from the otpauth URI, never from input.
    qr_svg: String,
    secret: String,
    error: Option<String>,
    overdue: bool,
}

#[derive(Deserialize)]
pub struct CodeField {
    #[serde(default)]
    code: Secret,
}

#[derive(Deserialize)]
pub struct TurnOffFields {
    #[serde(default)]
    password: Secret,
    #[serde(default)]
    code: Secret,
}

/// The ten codes, shown once, with a plain-text download.
fn recovery_reveal(codes: &[RecoveryCode]) -> Reveal {
    let mut reveal = Reveal {
        title: "Your recovery codes".to_owned(),
        items: codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                RevealItem::new(
                    &format!("recovery-code-{}", i + 1),
                    &format!("Code {}", i + 1),
                    code.expose(),
                )
            })
            .collect(),
        download: None,
    };
    let text: String = codes
        .iter()
        .map(|code| format!("{}\n", code.expose()))
        .collect();
    reveal.download = Some(format!(
        "latchkey recovery codes: each works once, instead of a code from your authenticator app.\n\n{text}"
    ));
    reveal
}

fn qr_svg(uri: &str) -> Result<String, WebError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ServiceError::Internal(format!("cannot make the QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The XML declaration is not allowed inside HTML.
    let start = svg.find("<svg").unwrap_or(0);
    Ok(svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code for your authenticator app\" ",
        1,
    ))
}

async fn enrol_page(
    state: &AppState,
    user: &SignedIn,
    layout: Layout,
    error: Option<String>,
) -> Result<EnrolPage, WebError> {
    let enrolment = state.service.enrolment(user.actor()).await?;
    Ok(EnrolPage {
        layout,
        tab: "security",
        qr_svg: qr_svg(&enrolment.otpauth_uri)?,
        secret: enrolment.grouped_secret.to_string(),
        error,
        overdue: state.service.two_factor_standing(user.account()) == Standing::Overdue,
    })
}

pub async fn show_enrol(
    State(state): State<AppState>,
    user: SignedIn,
) -> Result<Response, WebError> {
    if user.account().two_factor_enabled {
        return Ok(redirect(HERE));
    }
    let layout = user.layout(&state).await?;
    let page = enrol_page(&state, &user, layout, None).await?;
    Ok(render(StatusCode::OK, &page))
}

pub async fn confirm_enrol(
    State(state): State<AppState>,
    Form(user, form): Form<SignedIn, CodeField>,
) -> Result<Response, WebError> {
    match state
        .service
        .confirm_enrolment(user.actor(), form.code.expose())
        .await
    {
        Ok(codes) => {
            let flash = "Two-factor authentication is on. Keep your recovery codes somewhere safe: each works once if you lose your phone.";
            user.done(&state, flash, Some(recovery_reveal(&codes)), HERE)
                .await
        }
        Err(e @ (ServiceError::WrongCode | ServiceError::RateLimited { .. })) => {
            let status = match e {
                ServiceError::WrongCode => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::TOO_MANY_REQUESTS,
            };
            let message = match e {
                ServiceError::WrongCode => "That code is not the current one. Check that the app was set up with this secret and that the phone's clock is right, then try the next code.".to_owned(),
                other => other.to_string(),
            };
            let page =
                enrol_page(&state, &user, user.layout_without_notice(), Some(message)).await?;
            Ok(render(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn regenerate_codes(
    State(state): State<AppState>,
    Form(user, form): Form<SignedIn, CodeField>,
) -> Result<Response, WebError> {
    match state
        .service
        .regenerate_recovery_codes(user.actor(), form.code.expose())
        .await
    {
        Ok(codes) => {
            let flash = "New recovery codes made; the old ones no longer work.";
            user.done(&state, flash, Some(recovery_reveal(&codes)), HERE)
                .await
        }
        Err(e @ (ServiceError::WrongCode | ServiceError::RateLimited { .. })) => {
            user.done(&state, format!("No new recovery codes: {e}"), None, HERE)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn turn_off(
    State(state): State<AppState>,
    info: ClientInfo,
    Form(user, form): Form<SignedIn, TurnOffFields>,
) -> Result<Response, WebError> {
    match state
        .service
        .turn_off_two_factor(
            user.actor(),
            form.password,
            form.code.expose(),
            &info.as_client(),
        )
        .await
    {
        Ok(()) => {
            user.done(&state, "Two-factor authentication is off.", None, HERE)
                .await
        }
        Err(
            e @ (ServiceError::WrongCode
            | ServiceError::InvalidCredentials
            | ServiceError::RateLimited { .. }
            | ServiceError::SignInStopped),
        ) => {
            let why = match e {
                ServiceError::InvalidCredentials => "The main password is wrong.".to_owned(),
                other => other.to_string(),
            };
            user.done(
                &state,
                format!("Two-factor authentication is still on: {why}"),
                None,
                HERE,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

struct SessionRow {
    id: i64,
    current: bool,
    started: String,
    last_seen: String,
    address: String,
    browser: String,
}

pub async fn show(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    let status = state.service.two_factor_status(user.actor()).await?;
    let (required_by, overdue) = match status.standing {
        Standing::Fine => (None, false),
        Standing::Grace { until } => (Some(when(until)), false),
        Standing::Overdue => (None, true),
    };
    let sessions = state
        .service
        .sessions(user.actor())
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.0,
            current: s.id == user.member().session().id,
            started: when(s.created_at),
            last_seen: when(s.last_seen_at),
            address: s.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            browser: s.user_agent.unwrap_or_default(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SecurityPage {
            layout,
            tab: "security",
            two_factor: status.enabled,
            recovery_codes_left: status.recovery_codes_left,
            required_by,
            overdue,
            sessions,
        },
    ))
}

pub async fn end_session(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, NoFields {}): Form<SignedIn, NoFields>,
) -> Result<Response, WebError> {
    if !state
        .service
        .end_session(user.actor(), SessionId(id))
        .await?
    {
        return Err(WebError::not_found());
    }
    if SessionId(id) == user.member().session().id {
        return Ok(redirect("/sign-in?signed-out=1"));
    }
    user.done(&state, "That session has been signed out.", None, HERE)
        .await
}

pub async fn end_others(
    State(state): State<AppState>,
    Form(user, NoFields {}): Form<SignedIn, NoFields>,
) -> Result<Response, WebError> {
    let ended = state.service.end_other_sessions(user.actor()).await?;
    let flash = match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "1 other session has been signed out.".to_owned(),
        n => format!("{n} other sessions have been signed out."),
    };
    user.done(&state, flash, None, HERE).await
}
