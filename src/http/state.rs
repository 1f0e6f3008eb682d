//! What every handler can reach: the service and the settings of the edge.

use std::sync::Arc;

use crate::config::Config;
use crate::domain::SessionPolicy;
use crate::service::Service;

/// Cloned for every request a handler serves: one shared allocation, so
/// that a clone is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub service: Arc<Service>,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    pub web: WebSettings,
    /// Where people reach this server (the public URL, or the bound
    /// address), for the addresses the API hands to apps.
    pub base_url: Arc<str>,
}

/// What the web interface needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct WebSettings {
    pub sessions: SessionPolicy,
    /// Mark cookies `Secure`: the public URL is https.
    pub secure_cookies: bool,
}

impl WebSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            sessions: config.sessions,
            secure_cookies: config.https(),
        }
    }
}
