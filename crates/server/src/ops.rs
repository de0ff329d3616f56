//! Operations: readiness (`/readyz`), Prometheus metrics (`/metrics`), one log line per
//! request with a request id, and the shutdown signal.
//!
//! Nothing personal leaves through here: a request is described by its method, the route
//! *template* it matched (`/staff/complaints/{ticket}`, never the path as sent), its status
//! and its latency. The query string, the body and the headers are never read, so a NIK
//! in the JSON API's query string or in a form body cannot reach a log line or a label.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::index::Index;
use crate::AppState;

/// How long `/readyz` and `/metrics` wait for the database.
const DB_DEADLINE: Duration = Duration::from_secs(2);

/// Label of a request that matched no route (the 404 fallback).
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    stage: String,
    step: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The server's own state for operations: metrics, request ids, when the index was last
/// known current, whether shutdown has begun.
pub(crate) struct Ops {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    index_children: Family<StageLabels, Gauge>,
    index_decreed: Family<StageLabels, Gauge>,
    index_age: Gauge<f64, AtomicU64>,
    index_reload_failures: Counter,
    complaints_open: Gauge,
    complaints_overdue: Gauge,
    stage_run_running: Family<StageLabels, Gauge>,
    stage_run_done: Family<StepLabels, Gauge>,
    stage_run_total: Family<StepLabels, Gauge>,
    stage_run_updated: Family<StageLabels, Gauge>,
    registry_notify_backlog: Gauge,
    registry_callbacks_pending: Gauge,
    /// Random per process, so ids from several servers do not collide.
    id_prefix: u32,
    next_id: AtomicU64,
    /// When the index now answering was built or last found current; `None` until the
    /// first build.
    index_built: Mutex<Option<Instant>>,
    pub(crate) draining: AtomicBool,
}

impl fmt::Debug for Ops {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ops").field("draining", &self.draining).finish_non_exhaustive()
    }
}

impl Ops {
    pub(crate) fn new() -> Ops {
        let mut registry = Registry::with_prefix("kjp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, matched route template and status",
            requests.clone(),
        );
        let latency =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by method and matched route template",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("http_requests_in_flight", "Requests being answered now", in_flight.clone());
        let index_children = Family::<StageLabels, Gauge>::default();
        registry.register(
            "status_index_children",
            "Children in the status index per decreed stage",
            index_children.clone(),
        );
        let index_decreed = Family::<StageLabels, Gauge>::default();
        registry.register(
            "status_index_decreed",
            "1 when the stage is decreed in the index, 0 while it answers \"in process\"",
            index_decreed.clone(),
        );
        let index_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "status_index_age_seconds",
            "Seconds since the status index was built or last found current",
            index_age.clone(),
        );
        let index_reload_failures = Counter::default();
        registry.register(
            "status_index_reload_failures",
            "Index rebuilds that failed (the previous index kept answering)",
            index_reload_failures.clone(),
        );
        let complaints_open = Gauge::default();
        registry.register("complaints_open", "Complaints open", complaints_open.clone());
        let complaints_overdue = Gauge::default();
        registry.register(
            "complaints_overdue",
            "Open complaints past their due date",
            complaints_overdue.clone(),
        );
        let stage_run_running = Family::<StageLabels, Gauge>::default();
        registry.register(
            "stage_run_running",
            "1 while a run of the stage goes on (written by the `kjp` command running it), 0 once it ended",
            stage_run_running.clone(),
        );
        let stage_run_done = Family::<StepLabels, Gauge>::default();
        registry.register(
            "stage_run_step_done",
            "Work done in the step the stage's run is at (or ended at): files read, candidates decided, rows written",
            stage_run_done.clone(),
        );
        let stage_run_total = Family::<StepLabels, Gauge>::default();
        registry.register(
            "stage_run_step_total",
            "Work in the step the stage's run is at (or ended at)",
            stage_run_total.clone(),
        );
        let stage_run_updated = Family::<StageLabels, Gauge>::default();
        registry.register(
            "stage_run_updated_timestamp_seconds",
            "When the stage's run last reported (Unix time): a running stage that stops reporting has died",
            stage_run_updated.clone(),
        );
        let registry_notify_backlog = Gauge::default();
        registry.register(
            "registry_notify_backlog",
            "Recipient changes not yet acknowledged by the registry's live subscriptions, summed over them",
            registry_notify_backlog.clone(),
        );
        let registry_callbacks_pending = Gauge::default();
        registry.register(
            "registry_callbacks_pending",
            "Answers to asynchronous registry requests not yet delivered to their callback",
            registry_callbacks_pending.clone(),
        );
        let mut seed = [0u8; 4];
        getrandom::getrandom(&mut seed).expect("the operating system's random source");
        Ops {
            registry,
            requests,
            latency,
            in_flight,
            index_children,
            index_decreed,
            index_age,
            index_reload_failures,
            complaints_open,
            complaints_overdue,
            stage_run_running,
            stage_run_done,
            stage_run_total,
            stage_run_updated,
            registry_notify_backlog,
            registry_callbacks_pending,
            id_prefix: u32::from_be_bytes(seed),
            next_id: AtomicU64::new(1),
            index_built: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-{n:08x}", self.id_prefix)
    }

    pub(crate) fn index_current(&self) {
        *self.index_built.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    pub(crate) fn reload_failed(&self) {
        self.index_reload_failures.inc();
    }

    pub(crate) fn built(&self) -> bool {
        self.index_built.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    fn index_age(&self) -> Option<Duration> {
        self.index_built.lock().unwrap_or_else(|p| p.into_inner()).map(|t| t.elapsed())
    }
}

/// A fixed label for the method: an invented method must not grow the label set.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts, times and logs every request, and gives it an id (`x-request-id`). Outermost
/// layer of the router, so the route template is known and every answer is seen.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ops = &state.inner.ops;
    let started = Instant::now();
    let id = ops.request_id();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    // Decremented on drop: also when the client goes away and the request is cancelled.
    struct InFlight<'a>(&'a Gauge);
    impl Drop for InFlight<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    ops.in_flight.inc();
    let guard = InFlight(&ops.in_flight);
    let mut res = next.run(req).await;
    drop(guard);
    let elapsed = started.elapsed();
    let status = res.status().as_u16();
    ops.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
    ops.latency.get_or_create(&RouteLabels { method, route: route.clone() }).observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "kjp::http",
        request_id = %id,
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Why the server is unavailable (absent when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seconds since the status index was built or last found current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_age_seconds: Option<u64>,
}

fn unavailable(reason: impl Into<String>) -> Response {
    let body = Readiness { status: "unavailable", reason: Some(reason.into()), index_age_seconds: None };
    let mut res = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

/// Ready when the database answers within two seconds and the status index is built;
/// unavailable (503, with the reason) while the index is first built, when the database
/// does not answer, and once shutdown has begun.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to answer", body = Readiness),
        (status = 503, description = "Not ready: the database does not answer, the index is not built yet, or the server is shutting down", body = Readiness),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let ops = &state.inner.ops;
    if ops.draining.load(Ordering::Relaxed) {
        return unavailable("shutting down");
    }
    match tokio::time::timeout(DB_DEADLINE, Index::fingerprint(&state.inner.store)).await {
        // Store errors carry no personal data.
        Ok(Err(e)) => return unavailable(format!("database: {e}")),
        Err(_) => return unavailable("database: no answer within 2 s"),
        Ok(Ok(_)) => {}
    }
    let Some(age) = ops.index_age() else {
        return unavailable("the status index is being built");
    };
    Json(Readiness { status: "ready", reason: None, index_age_seconds: Some(age.as_secs()) }).into_response()
}

/// The metrics in the OpenMetrics text format. Gauges of the index, the queues and the
/// stage runs are read now; those from the database (complaints, registry queues, stage
/// runs: three small queries) are left as they were if it does not answer in time.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let ops = &state.inner.ops;
    ops.index_children.clear();
    ops.index_decreed.clear();
    for (stage, children) in state.index().sizes() {
        let labels = StageLabels { stage: stage.to_string() };
        ops.index_decreed.get_or_create(&labels).set(i64::from(children.is_some()));
        if let Some(n) = children {
            ops.index_children.get_or_create(&labels).set(n as i64);
        }
    }
    ops.index_age.set(ops.index_age().map_or(f64::NAN, |a| a.as_secs_f64()));
    let today = chrono::Local::now().date_naive().format("%Y-%m-%d").to_string();
    if let Ok(Ok(counts)) =
        tokio::time::timeout(DB_DEADLINE, state.inner.store.complaint_counts(None, &today)).await
    {
        ops.complaints_open.set(counts.iter().map(|c| c.open).sum());
        ops.complaints_overdue.set(counts.iter().map(|c| c.overdue).sum());
    }
    if let Ok(Ok(q)) = tokio::time::timeout(DB_DEADLINE, state.inner.store.registry_queues()).await {
        ops.registry_notify_backlog.set(q.notify_backlog);
        ops.registry_callbacks_pending.set(q.callbacks_pending);
    }
    if let Ok(Ok(runs)) = tokio::time::timeout(DB_DEADLINE, state.inner.store.stage_progress()).await {
        ops.stage_run_running.clear();
        ops.stage_run_done.clear();
        ops.stage_run_total.clear();
        ops.stage_run_updated.clear();
        for run in runs {
            let stage = StageLabels { stage: run.stage.clone() };
            ops.stage_run_running.get_or_create(&stage).set(i64::from(run.running()));
            let updated = chrono::DateTime::parse_from_rfc3339(&run.updated_at).map_or(0, |t| t.timestamp());
            ops.stage_run_updated.get_or_create(&stage).set(updated);
            let step = StepLabels { stage: run.stage, step: run.step };
            ops.stage_run_done.get_or_create(&step).set(run.done);
            ops.stage_run_total.get_or_create(&step).set(run.total);
        }
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &ops.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded").into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Logs

/// How log lines are written: one JSON object per line, or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    #[default]
    Text,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(format!("unknown log format {other:?}: json or text")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        })
    }
}

/// The subscriber `kjp serve` logs through (info and above), writing to `writer`; the
/// tests pass a buffer.
pub fn log_subscriber<W>(format: LogFormat, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_writer(writer).with_max_level(tracing::Level::INFO).with_target(true);
    match format {
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
        LogFormat::Text => Box::new(builder.finish()),
    }
}

/// Installs [`log_subscriber`] on standard error for the whole process.
pub fn init_logging(format: LogFormat) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
    tracing::subscriber::set_global_default(log_subscriber(format, std::io::stderr))
}

/// Completes on Ctrl-C or SIGTERM (what `systemctl stop`, Docker and Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
