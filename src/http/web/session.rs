//! Authorization by type for pages: a handler that takes a [`SignedIn`]
//! only runs for a browser with a live session, one that takes an [`Admin`]
//! only for an administrator's.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;

use super::cookie;
use super::page::{redirect, Layout, WebError};
use super::reveal::{self, Reveal};
use crate::credential::{CsrfSecret, SessionKey};
use crate::domain::{Account, Notice, Permission, WebSession};
use crate::http::AppState;

pub struct SignedIn {
    pub account: Account,
    pub session: WebSession,
    pub key: SessionKey,
}

/// A [`SignedIn`] administrator.
pub struct Admin(pub SignedIn);

/// What proves a form came from one of our pages.
pub trait HasCsrf {
    fn csrf(&self) -> &CsrfSecret;
}

impl HasCsrf for SignedIn {
    fn csrf(&self) -> &CsrfSecret {
        &self.session.csrf
    }
}

impl HasCsrf for Admin {
    fn csrf(&self) -> &CsrfSecret {
        &self.0.session.csrf
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let key = cookie::read(&parts.headers, cookie::SESSION)
            .and_then(|raw| SessionKey::parse(&raw))
            .ok_or(WebError::SignInRequired)?;
        let (session, account) = state
            .service
            .resume_session(&key, &state.web.sessions)
            .await?
            .ok_or(WebError::SignInRequired)?;
        Ok(SignedIn {
            account,
            session,
            key,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let user = SignedIn::from_request_parts(parts, state).await?;
        if !user.account.permissions.contains(Permission::Admin) {
            return Err(WebError::admins_only());
        }
        Ok(Admin(user))
    }
}

impl SignedIn {
    /// The page frame, with what was left to show once (which is now gone).
    pub async fn layout(&self, state: &AppState) -> Result<Layout, WebError> {
        let notice = state.service.take_notice(&self.key).await?;
        let mut layout = self.layout_without_notice();
        layout.flash = notice.flash;
        layout.reveal = notice
            .reveal
            .as_deref()
            .and_then(|sealed| reveal::open(sealed, &self.key));
        Ok(layout)
    }

    /// The page frame for a form shown again with its errors; the notice
    /// stays for the next regular page.
    pub fn layout_without_notice(&self) -> Layout {
        Layout {
            name: self.account.name.clone(),
            email: self.account.email.to_string(),
            is_admin: self.account.permissions.contains(Permission::Admin),
            may_sync: self
                .account
                .permissions
                .contains(Permission::Synchronisation),
            csrf: self.session.csrf.token(),
            flash: None,
            reveal: None,
        }
    }

    /// Ends a POST: remembers what to say (and perhaps reveal) on the next
    /// page, and sends the browser there.
    pub async fn done(
        &self,
        state: &AppState,
        flash: impl Into<String>,
        shown_once: Option<Reveal>,
        to: &str,
    ) -> Result<Response, WebError> {
        let notice = Notice {
            flash: Some(flash.into()),
            reveal: shown_once.map(|r| reveal::seal(&r, &self.key)),
        };
        state.service.set_notice(&self.key, &notice).await?;
        Ok(redirect(to))
    }
}
