//! How large a request may be, answered by the application itself with the
//! API's JSON error (or, for a page, an error page) and a stable code.
//!
//! hyper refuses some requests before the application sees them, with an
//! answer of its own that has no body and cannot be given one: a request
//! head it cannot parse (`400`: a malformed request line, header or
//! `Content-Length`), and one beyond its buffers. So the limits here are
//! below hyper's (set in [`serve`](super::serve)): every head between the two
//! gets a JSON answer, and only heads over [`HYPER_MAX_HEAD_BYTES`] meet
//! hyper's empty one.

use axum::extract::Request;
use axum::http::header;

/// Largest request body accepted; the biggest legitimate one is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Largest request target (path and query) accepted; ours are short.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Largest header section accepted, counted as sent (`name: value\r\n`),
/// with room for the cookies of other sites on the same domain.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Most header fields accepted.
pub const MAX_HEADERS: usize = 100;

/// hyper's own limit, above ours: the buffer a request head must fit in.
/// (Its request target limit is fixed, at 64 KiB; its number of header
/// fields is its default, 100, the same as ours.)
pub const HYPER_MAX_HEAD_BYTES: usize = 4 * MAX_HEADER_BYTES;

/// What about a request is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TooLarge {
    /// 413: its declared body.
    Body,
    /// 414: its request target.
    Uri,
    /// 431: its header section.
    Headers,
}

/// What about the request is too large, if anything. Refused at once (in
/// [`front`](super::front)): a body is judged by its declared
/// `Content-Length`, so it is neither read (nor, after `Expect:
/// 100-continue`, invited) nor waited for until the request timeout while a
/// client sends it slowly or not at all; a body sent without a length
/// (chunked) is still cut off as it arrives, also in `front`.
/// `has_body`: whether hyper, from the head, expects a body to follow.
pub(super) fn too_large(request: &Request, has_body: bool) -> Option<TooLarge> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(TooLarge::Uri);
    }
    let headers = request.headers();
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || size > MAX_HEADER_BYTES {
        return Some(TooLarge::Headers);
    }
    // Most requests have no body, and need no lookup.
    if !has_body {
        return None;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Some(TooLarge::Body);
    }
    None
}
