//! Personal settings, Profile tab: name and main password.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::credential::Secret;
use crate::http::extract::ClientInfo;
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, FieldErrors, Layout, WebError};
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::ServiceError;

const HERE: &str = "/settings/profile";

#[derive(Template)]
#[template(path = "settings/profile.html")]
struct ProfilePage {
    layout: Layout,
    tab: &'static str,
    name: String,
    email: String,
    password_rules: String,
    errors: FieldErrors,
}

impl ProfilePage {
    fn new(state: &AppState, user: &SignedIn, layout: Layout) -> Self {
        Self {
            layout,
            tab: "profile",
            name: user.account().name.clone(),
            email: user.account().email.to_string(),
            password_rules: state.service.password_policy().describe(),
            errors: FieldErrors::default(),
        }
    }
}

pub async fn show(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    Ok(render(
        StatusCode::OK,
        &ProfilePage::new(&state, &user, layout),
    ))
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    State(state): State<AppState>,
    Form(user, form): Form<SignedIn, NameForm>,
) -> Result<Response, WebError> {
    match state.service.rename_account(user.actor(), &form.name).await {
        Ok(()) => {
            user.done(&state, "Your name has been changed.", None, HERE)
                .await
        }
        Err(ServiceError::Invalid { message, .. }) => {
            let mut page = ProfilePage::new(&state, &user, user.layout_without_notice());
            page.name = form.name;
            page.errors.add("name", message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: Secret,
    #[serde(default)]
    new: Secret,
    #[serde(default)]
    confirm: Secret,
}

pub async fn change_password(
    State(state): State<AppState>,
    info: ClientInfo,
    Form(user, form): Form<SignedIn, PasswordForm>,
) -> Result<Response, WebError> {
    let mut page = ProfilePage::new(&state, &user, user.layout_without_notice());
    if form.current.is_empty() {
        page.errors
            .add("current", "Enter your current main password.");
    }
    if form.new.expose() != form.confirm.expose() {
        page.errors
            .add("confirm", "The two new passwords are not the same.");
    }
    if page.errors.is_empty() {
        let changed = state
            .service
            .change_password(user.actor(), form.current, form.new, &info.as_client())
            .await;
        match changed {
            Ok(()) => {
                return user
                    .done(
                        &state,
                        "Your main password has been changed and your other web sessions have been signed out. Your device passwords still work.",
                        None,
                        HERE,
                    )
                    .await
            }
            Err(ServiceError::Invalid { message, .. }) => page.errors.add("new", message),
            Err(ServiceError::InvalidCredentials) => page
                .errors
                .add("current", "This is not your current main password."),
            Err(e @ ServiceError::RateLimited { .. }) => page.errors.add("current", e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}
