//! Authorization by type for pages: a handler that takes a [`SignedIn`]
//! only runs for a browser with a live session, one that takes an [`Admin`]
//! only for an administrator's.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::Response;

use super::cookie;
use super::page::{redirect, Layout, WebError};
use super::reveal::{self, Reveal};
use crate::credential::{CsrfSecret, SessionKey};
use crate::domain::{rules, Account, Notice, Standing};
use crate::http::AppState;
use crate::service::{Admin, Member};

/// A browser with a live session, as `A`: a [`Member`] (the default) or an
/// [`Admin`]. The key is the cookie's, kept to seal what is shown once.
pub struct SignedIn<A = Member> {
    actor: A,
    key: SessionKey,
}

/// A [`SignedIn`] administrator.
pub type AsAdmin = SignedIn<Admin>;

/// What proves a form came from one of our pages.
pub trait HasCsrf {
    fn csrf(&self) -> &CsrfSecret;
}

impl<A: AsRef<Member>> HasCsrf for SignedIn<A> {
    fn csrf(&self) -> &CsrfSecret {
        &self.member().session().csrf
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        // After signing in, a person comes back to the page they asked
        // for; a form's target is not a page, so a POST starts over.
        let sign_in = || match (&parts.method, parts.uri.path_and_query()) {
            (&Method::GET, Some(asked)) => WebError::SignInToReturnTo(asked.to_string()),
            _ => WebError::SignInRequired,
        };
        let key = cookie::read(&parts.headers, cookie::SESSION, state.web.secure_cookies)
            .and_then(|raw| SessionKey::parse(&raw))
            .ok_or_else(sign_in)?;
        let member = state
            .service
            .resume_session(&key, &state.web.sessions)
            .await?
            .ok_or_else(sign_in)?;
        // Past the grace period, an account the requirement covers may only
        // enrol (or sign out, or look at its sessions).
        if state.service.two_factor_standing(member.account()) == Standing::Overdue
            && !parts.uri.path().starts_with("/settings/security")
            && parts.uri.path() != "/sign-out"
        {
            return Err(WebError::MustEnrol);
        }
        Ok(SignedIn { actor: member, key })
    }
}

impl FromRequestParts<AppState> for AsAdmin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let user = <SignedIn>::from_request_parts(parts, state).await?;
        let admin = user
            .actor
            .into_admin()
            .map_err(|_| WebError::admins_only())?;
        Ok(SignedIn {
            actor: admin,
            key: user.key,
        })
    }
}

impl<A: AsRef<Member>> SignedIn<A> {
    /// The proof operations take.
    pub fn actor(&self) -> &A {
        &self.actor
    }

    pub fn member(&self) -> &Member {
        self.actor.as_ref()
    }

    pub fn account(&self) -> &Account {
        self.member().account()
    }

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
            name: self.account().name.clone(),
            email: self.account().email.to_string(),
            is_admin: rules::is_administrator(self.account()).is_ok(),
            may_sync: rules::may_use_device_passwords(&self.account().permissions).is_ok(),
            csrf: self.member().session().csrf.token(),
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
