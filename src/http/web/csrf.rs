//! Form bodies, accepted only with the CSRF token of the session they claim
//! to come from.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use subtle::ConstantTimeEq;

use super::cookie;
use super::page::WebError;
use super::session::HasCsrf;
use crate::http::AppState;

#[derive(Deserialize)]
struct Token {
    csrf: Option<String>,
}

/// A URL-encoded form from `W` (a [`SignedIn`](super::session::SignedIn) or
/// an [`Admin`](super::session::Admin)), refused with 403 unless it carries
/// that session's CSRF token.
pub struct Form<W, T>(pub W, pub T);

impl<W, T> FromRequest<AppState> for Form<W, T>
where
    W: FromRequestParts<AppState, Rejection = WebError> + HasCsrf + Send,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let who = W::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| WebError::bad_form())?;
        let token: Token = serde_urlencoded::from_bytes(&body).map_err(|_| WebError::bad_form())?;
        match token.csrf {
            Some(token) if who.csrf().matches(&token) => {}
            _ => return Err(WebError::forbidden_form()),
        }
        let form = serde_urlencoded::from_bytes(&body).map_err(|_| WebError::bad_form())?;
        Ok(Form(who, form))
    }
}

/// Whether a browser says the form was posted from one of our own pages.
/// `Sec-Fetch-Site` is set by the browser and cannot be forged by a page;
/// `same-site` is refused too, since a page on another port of this host,
/// or on a sibling subdomain, is same-site. Without it (older browsers),
/// `Origin`, when sent, must name the host the request was sent to.
/// Neither header (curl, scripts) is not a browser being tricked.
fn from_this_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or_default();
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            authority.is_some_and(|authority| authority.as_bytes() == host.as_bytes())
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The sign-in form, which comes before any session: its token is
/// double-submitted, in a cookie set with the form and in the form itself,
/// and the browser must say the form came from one of our pages, so another
/// site cannot sign a browser in to an account of its choosing.
pub struct SignInForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for SignInForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WebError> {
        if !from_this_origin(req.headers()) {
            return Err(WebError::forbidden_form());
        }
        let expected = cookie::read(req.headers(), cookie::SIGN_IN, state.web.secure_cookies);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::bad_form())?;
        let token: Token = serde_urlencoded::from_bytes(&body).map_err(|_| WebError::bad_form())?;
        let token = match (expected, token.csrf) {
            (Some(expected), Some(token))
                if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) =>
            {
                token
            }
            _ => return Err(WebError::forbidden_form()),
        };
        // The cookie could have been planted by a sibling host with a token
        // it fetched from us: it must at least be fresh and unused.
        if !state.service.spend_sign_in_form(&token).await? {
            return Err(WebError::forbidden_form());
        }
        let form = serde_urlencoded::from_bytes(&body).map_err(|_| WebError::bad_form())?;
        Ok(SignInForm(form))
    }
}
