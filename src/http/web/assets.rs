//! The stylesheet and script, compiled into the binary: no build step, no
//! files to deploy beside it. Pages link them by a name that carries a hash
//! of their content, so browsers may keep them for a year: a new release
//! has new names.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::http::AppState;

struct Asset {
    /// `app.<hash>.css`
    name: String,
    /// What older pages link to; served, but not to be kept.
    plain_name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(plain_name: &'static str, content_type: &'static str, body: &'static str) -> Self {
        let hash = Sha256::digest(body.as_bytes());
        let short: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let name = match plain_name.rsplit_once('.') {
            Some((stem, extension)) => format!("{stem}.{short}.{extension}"),
            None => format!("{plain_name}.{short}"),
        };
        Self {
            name,
            plain_name,
            content_type,
            body,
        }
    }
}

static STYLESHEET: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../static/app.css"),
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/app.js"),
    )
});

/// Where pages link the stylesheet.
pub fn stylesheet_path() -> String {
    format!("/static/{}", STYLESHEET.name)
}

/// Where pages link the script.
pub fn script_path() -> String {
    format!("/static/{}", SCRIPT.name)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    for asset in [&*STYLESHEET, &*SCRIPT] {
        let cache = if file == asset.name {
            "public, max-age=31536000, immutable"
        } else if file == asset.plain_name {
            "no-cache"
        } else {
            continue;
        };
        return (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, cache),
            ],
            asset.body,
        )
            .into_response();
    }
    super::page::WebError::not_found().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_names_carry_a_hash_of_their_content() {
        let css = stylesheet_path();
        assert!(
            css.starts_with("/static/app.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/app..css".len() + 12);
        assert_ne!(
            Asset::new("a.css", "text/css", "x").name,
            Asset::new("a.css", "text/css", "y").name
        );
    }
}
