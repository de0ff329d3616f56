//! The public KJP Plus status check: `kjp serve`.
//!
//! A parent enters the student's NIK, date of birth, year and stage and gets the answer
//! from an immutable in-memory [`index::Index`] built from the decree; the database is
//! only read to build it. The page is server-rendered (askama, auto-escaped) and needs no
//! JavaScript; the same answer is served as JSON at `/api/v1/status`.
//!
//! Personal data stays out of logs: the NIK is only ever sent in a POST body (or the API's
//! query string), and nothing here logs requests.

pub mod console;
pub mod index;
mod limit;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use kjp_domain::Policy;
use kjp_store::Store;

pub use index::{Index, IndexError};

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests per minute per client address (`/healthz` and the stylesheet are exempt).
    pub rate_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { rate_per_minute: 60 }
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    policy: Policy,
    index: ArcSwap<Index>,
    limiter: limit::Limiter,
    console: ArcSwap<console::Settings>,
}

impl AppState {
    /// Builds the index from the store; fails if the store cannot be read.
    pub async fn load(store: Store, policy: Policy, config: Config) -> Result<AppState, IndexError> {
        let index = Index::build(&store).await?;
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                policy,
                index: ArcSwap::from_pointee(index),
                limiter: limit::Limiter::new(config.rate_per_minute),
                console: ArcSwap::from_pointee(console::Settings::default()),
            }),
        })
    }

    /// Builds a new index and swaps it in whole, if a stage or decree changed since the
    /// last build; lookups in flight keep the old one. On error the old index stays.
    pub async fn reload(&self) -> Result<(), IndexError> {
        let fingerprint = Index::fingerprint(&self.inner.store).await?;
        if self.inner.index.load().is_current(&fingerprint) {
            return Ok(());
        }
        let index = Index::build(&self.inner.store).await?;
        self.inner.index.store(Arc::new(index));
        Ok(())
    }

    /// Replaces the staff console's settings (complaint SLA, sessions, lock-out).
    pub fn set_console(&self, settings: console::Settings) {
        self.inner.console.store(Arc::new(settings));
    }

    /// The index now answering.
    pub fn index(&self) -> Arc<Index> {
        self.inner.index.load_full()
    }

    /// Rebuilds the index every `every`, so a decree made while the server runs is
    /// published without a restart.
    pub fn spawn_reloader(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = state.reload().await {
                    // Store errors carry no personal data.
                    eprintln!("status index: reload failed, keeping the previous one: {e}");
                }
            }
        })
    }
}

/// Serves the status check on `listener` until `shutdown` completes. Called the same way
/// by `kjp serve` and by the tests (port 0).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = web::router(state);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
