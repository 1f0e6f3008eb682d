//! Builds the application: store, domain service, router and background
//! tasks. `build` binds the listener, so tests can run the real app on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::credential::{readable_by_others, Created, ServerKey};
use crate::http::{self, AppState, Shared};
use crate::service::{Service, Settings};
use crate::store::{self, ChangeSink};

pub struct Application {
    listener: TcpListener,
    service: Arc<Service>,
    config: Config,
}

pub async fn build(config: Config) -> anyhow::Result<Application> {
    let store = store::open(&config.database_url, &config.store)
        .await
        .context("cannot open the database")?;
    let (key, created) = ServerKey::load_or_create(&config.secret_key_file)?;
    if created == Created::Yes {
        tracing::info!(path = %config.secret_key_file.display(), key_id = key.id(), "created the server's secret key; back it up with the database");
    } else if readable_by_others(&config.secret_key_file) {
        tracing::warn!(path = %config.secret_key_file.display(), "the secret key file can be read by other users; chmod 600 it");
    }
    let service = Arc::new(Service::new(
        store.clone(),
        Settings {
            device_types: config.device_types.clone(),
            throttle: config.throttle,
            cache_capacity: config.cache_capacity,
            max_staleness: config.max_staleness,
            password_policy: config.password_policy,
            device_authorizations: config.device_authorizations,
            issuer: config.issuer.clone(),
            require_two_factor: config.require_two_factor,
            two_factor_grace: config.two_factor_grace,
            lifetime: config.lifetime,
            clock: config.clock.clone(),
        },
        &key,
    ));
    drop(key);
    service
        .check_server_key()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    service.warm_up().await?;
    let weak = Arc::downgrade(&service);
    let sink: ChangeSink = Arc::new(move |change| {
        if let Some(service) = weak.upgrade() {
            service.apply_change(change);
        }
    });
    store
        .watch_changes(sink)
        .await
        .context("cannot watch the database for changes")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    Ok(Application {
        listener,
        service,
        config,
    })
}

impl Application {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    pub fn base_url(&self) -> String {
        self.config.base_url(self.local_addr())
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests,
    /// writes pending last-used data and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = http::router(
            AppState::new(Shared {
                service: self.service.clone(),
                trusted_proxies: self.config.trusted_proxies.clone().into(),
                web: crate::http::WebSettings::from_config(&self.config),
                base_url: self.base_url().into(),
            }),
            &self.config.cors_origins,
            self.config.request_timeout,
        );
        let (stop_flusher, flusher_stopped) = watch::channel(false);
        let flusher = tokio::spawn(flush_periodically(
            self.service.clone(),
            self.config.last_used_flush,
            flusher_stopped,
        ));
        http::serve(
            self.listener,
            router,
            shutdown,
            self.config.shutdown_grace,
            self.config.header_read_timeout,
        )
        .await;
        let _ = stop_flusher.send(true);
        let _ = flusher.await;
        if let Err(e) = self.service.flush_last_used().await {
            tracing::warn!(error = %e, "could not write last-used data at shutdown");
        }
        self.service.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Refilled throttle buckets and long-expired app sign-in requests are
/// deleted this often.
const THROTTLE_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Writes last-used data, and tidies the throttle buckets now and then.
async fn flush_periodically(
    service: Arc<Service>,
    every: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        if let Err(e) = service.flush_last_used().await {
            tracing::warn!(error = %e, "could not write last-used data; will retry");
        }
        if last_prune.elapsed() >= THROTTLE_PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            if let Err(e) = service.prune_throttle().await {
                tracing::warn!(error = %e, "could not prune throttle buckets");
            }
            if let Err(e) = service.prune_device_authorizations().await {
                tracing::warn!(error = %e, "could not prune expired app sign-in requests");
            }
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
