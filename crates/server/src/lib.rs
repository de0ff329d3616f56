//! The public KJP Plus status check: `kjp serve`.
//!
//! A parent enters the student's NIK, date of birth, year and stage and gets the answer
//! from an immutable in-memory [`index::Index`] built from the decree; the database is
//! only read to build it. The page is server-rendered (askama, auto-escaped) and needs no
//! JavaScript; the same answer is served as JSON at `/api/v1/status`.
//!
//! Personal data stays out of logs: the NIK is only ever sent in a POST body (or the API's
//! query string), and the one log line per request ([`ops`]) names the route template
//! matched, never the path, query string or body.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that a client cannot
//! hold one open for free: the request head must arrive within [`Config::header_timeout`]
//! (which also closes idle keep-alive connections), the whole request must be answered
//! within [`Config::request_timeout`], and a body may not exceed [`Config::body_limit`].

pub mod api;
mod api_doc;
pub mod console;
mod forwarded;
pub mod index;
mod limit;
pub mod ops;
mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioIo, TokioTimer};
use kjp_domain::Policy;
use kjp_store::Store;
use tower::ServiceExt;

pub use index::{Index, IndexError};
pub use ops::{init_logging, log_subscriber, shutdown_signal, LogFormat};

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Requests per minute per client address (`/healthz` and the stylesheet are exempt);
    /// 0 turns the limit off (for load tests, or behind a proxy that limits).
    pub rate_per_minute: u32,
    /// Time allowed to send a request's line and headers, counted from the opening of the
    /// connection (or, on a kept-alive one, from the end of the previous answer). A client
    /// that trickles its headers (slowloris) or sits idle is disconnected after it.
    pub header_timeout: Duration,
    /// Time allowed for a whole request, body included, once its headers are in: a client
    /// that trickles its body gets 408.
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes (the form is a few hundred): larger gets 413.
    pub body_limit: usize,
    /// Largest agency file an API client may upload, in bytes: larger gets 413.
    pub upload_limit: usize,
    /// Load balancers whose `X-Forwarded-For` is believed: a request from one of them is
    /// counted, limited and audited as from the client the header names. Empty: the
    /// header is ignored and every request is from its peer.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rate_per_minute: 60,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            body_limit: 4 * 1024,
            upload_limit: 1024 * 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Largest request head (request line and headers) read into memory; hyper's own floor is
/// 8 KiB. Longer gets 431 and the connection closes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

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
    config: Config,
    console: ArcSwap<console::Settings>,
    ops: ops::Ops,
    /// The dashboard's counts of decreed stages, made once per scope.
    dashboard_counts: console::dashboard::Counts,
    /// The registry's signing key, read (or made) from the data directory on first use.
    signer: std::sync::OnceLock<Result<Arc<api::registry::sign::Signer>, String>>,
}

impl AppState {
    /// Builds the index from the store; fails if the store cannot be read.
    pub async fn load(store: Store, policy: Policy, config: Config) -> Result<AppState, IndexError> {
        let state = AppState::starting(store, policy, config);
        state.reload().await?;
        Ok(state)
    }

    /// A state whose index is not built yet: every lookup answers "not found" and
    /// `/readyz` says unavailable until [`AppState::reload`] succeeds. For a server that
    /// listens (and answers `/healthz`) while a large index is built.
    pub fn starting(store: Store, policy: Policy, config: Config) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                store,
                policy,
                index: ArcSwap::from_pointee(Index::default()),
                limiter: limit::Limiter::new(config.rate_per_minute),
                config,
                console: ArcSwap::from_pointee(console::Settings::default()),
                ops: ops::Ops::new(),
                dashboard_counts: Default::default(),
                signer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Builds a new index and swaps it in whole, if a stage or decree changed since the
    /// last build; lookups in flight keep the old one. On error the old index stays.
    pub async fn reload(&self) -> Result<(), IndexError> {
        let result = self.rebuild().await;
        match &result {
            Ok(()) => self.inner.ops.index_current(),
            Err(_) => self.inner.ops.reload_failed(),
        }
        result
    }

    async fn rebuild(&self) -> Result<(), IndexError> {
        let fingerprint = Index::fingerprint(&self.inner.store).await?;
        if self.inner.ops.built() && self.inner.index.load().is_current(&fingerprint) {
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

    /// The key the registry's envelopes are signed with (`DATA/registry/ed25519.key`).
    pub fn registry_signer(&self) -> Result<Arc<api::registry::sign::Signer>, String> {
        self.inner
            .signer
            .get_or_init(|| {
                api::registry::sign::Signer::load_or_create(self.inner.store.data_dir())
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// Delivers registry notifications to subscribers in the background (see
    /// [`api::registry::notify`]); safe to run in every server process.
    pub fn spawn_notifier(
        &self,
        settings: api::registry::notify::NotifySettings,
    ) -> tokio::task::JoinHandle<()> {
        api::registry::notify::spawn(self.clone(), settings)
    }

    /// Shares the rate limit's counts with the other servers on the same PostgreSQL
    /// database, once a second (see [`limit`]); nothing to share on SQLite, which one
    /// server serves.
    fn spawn_rate_sync(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.inner.limiter.enabled() || self.inner.store.backend() != kjp_store::Backend::Postgres {
            return None;
        }
        let state = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match state.inner.limiter.sync(&state.inner.store).await {
                    Ok(()) => failing = false,
                    // Once per outage, not once a second; the limit goes on per server.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!("rate limit: sharing the counts failed, counting here only: {e}");
                    }
                    Err(_) => {}
                }
            }
        }))
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
                    tracing::warn!("status index: reload failed, keeping the previous one: {e}");
                }
            }
        })
    }
}

/// Serves the status check on `listener` until `shutdown` completes, then lets the requests
/// in flight finish. Called the same way by `kjp serve` and by the tests (port 0).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.inner.config.clone();
    api::files::sweep_scratch(state.inner.store.data_dir());
    let app = web::router(state.clone());
    let rate_sync = state.spawn_rate_sync();
    let trusted: Arc<[ipnet::IpNet]> = config.trusted_proxies.clone().into();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);

    // Each connection task holds a `done` receiver; the sender's `closed()` resolves when
    // the last one has finished. `stop` tells them to finish their current request.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors or similar: wait rather than spin.
                    tracing::warn!("status check: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        // Answers are small and written at once: do not let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let trusted = trusted.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let client = forwarded::client_addr(peer, req.headers(), &trusted);
            req.extensions_mut().insert(axum::extract::ConnectInfo(client));
            app.clone().oneshot(req)
        });
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    // Errors here are the client's (reset, timed out, malformed): nothing to do.
                    _ = conn.as_mut() => break,
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(done);
        });
    }
    // New connections are refused from here; `/readyz` answers 503 on kept-alive ones.
    state.inner.ops.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(listener);
    tracing::info!("shutting down: finishing the requests in flight");
    drop(done_rx);
    let _ = stop_tx.send(true);
    done_tx.closed().await;
    if let Some(task) = rate_sync {
        task.abort();
    }
    Ok(())
}

/// Errors of one incoming connection, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}
