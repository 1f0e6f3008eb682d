//! Personal settings, Security tab: two-factor state and web sessions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{NoFields, PagePath};
use crate::domain::SessionId;
use crate::http::web::csrf::Form;
use crate::http::web::page::{redirect, render, when, Layout, WebError};
use crate::http::web::session::SignedIn;
use crate::http::AppState;

const HERE: &str = "/settings/security";

#[derive(Template)]
#[template(path = "settings/security.html")]
struct SecurityPage {
    layout: Layout,
    tab: &'static str,
    two_factor: bool,
    sessions: Vec<SessionRow>,
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
            two_factor: user.account().two_factor_enabled,
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
