//! The web interface over HTTP: the real application on port 0, a browser-like
//! client that keeps cookies and submits forms the way a page would.

#[path = "../api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
mod visitor;

mod admin;
mod csrf;
mod devices;
mod forms;
mod secrets;
mod session_store;
mod sessions;
mod sign_in;
