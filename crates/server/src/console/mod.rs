//! The staff console at `/staff`: education office, school operators, kecamatan service
//! posts, the social office, the bank and auditors, each seeing what their role and scope
//! allow ([`access::MATRIX`]), and the families' complaint follow-up page at `/pengaduan`.
//!
//! Server-rendered, no JavaScript. Every change and every view of a child's record goes
//! into the hash-chained audit log (`kjp_store::Store::audit`); nothing personal goes to
//! the server's own output.

pub mod access;
pub mod auth;
mod child;
mod clients;
mod complaints;
pub(crate) mod dashboard;
mod office;
mod password;
mod public;
mod review;

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kjp_domain::Stage;

pub use access::{Role, Scope, ScopeError};
pub use auth::generate_password;
pub use office::check_username;
pub use password::hash_password;

use crate::AppState;

const CSS: &str = include_str!("../../templates/console/console.css");

/// Console settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Days a complaint may stay open before it is overdue.
    pub sla_days: i64,
    /// How long a session lasts.
    pub session_hours: i64,
    /// Failed sign-ins in a row that lock an account ...
    pub max_failures: i64,
    /// ... for this long.
    pub lock_minutes: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { sla_days: 14, session_hours: 8, max_failures: 5, lock_minutes: 15 }
    }
}

pub(crate) fn settings(state: &AppState) -> std::sync::Arc<Settings> {
    state.inner.console.load_full()
}

/// The console's routes; the staff ones behind [`auth::guard`].
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let staff = Router::new()
        .route("/staff", get(office::home))
        .route("/staff/logout", post(auth::logout))
        .route("/staff/password", get(auth::password_form).post(auth::change_password))
        .route("/staff/child", post(child::show))
        .route("/staff/complaints", get(complaints::list).post(complaints::create))
        .route("/staff/complaints/new", get(complaints::new_form))
        .route("/staff/complaints/{ticket}", get(complaints::show))
        .route("/staff/complaints/{ticket}/route", post(complaints::route))
        .route("/staff/complaints/{ticket}/note", post(complaints::note))
        .route("/staff/complaints/{ticket}/resolve", post(complaints::resolve))
        .route("/staff/review", get(review::queue))
        .route("/staff/review/resolve", post(review::resolve))
        .route("/staff/dashboard", get(dashboard::page))
        .route("/staff/dashboard.csv", get(dashboard::csv))
        .route("/staff/dashboard.xlsx", get(dashboard::xlsx))
        .route("/staff/audit", get(office::audit))
        .route("/staff/users", get(office::users).post(office::add_user))
        .route("/staff/clients", get(clients::list).post(clients::add))
        .route("/staff/clients/{name}/revoke", post(clients::revoke))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::guard));
    let open = Router::new()
        .route("/staff/login", get(auth::login_form).post(auth::login))
        .route("/pengaduan", get(public::form).post(public::follow))
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .route("/staff/console.css", get(css));
    staff.merge(open)
}

/// The public status check's per-client limit, on the sign-in and follow-up forms too.
async fn rate_limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if state.inner.limiter.allow(peer.ip()) {
        return next.run(req).await;
    }
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        Html("<p>Terlalu banyak permintaan: tunggu satu menit. / Too many requests: wait a minute.</p>"),
    )
        .into_response();
    res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    res
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        CSS,
    )
        .into_response()
}

/// The top of every staff page: who is signed in and where they may go.
#[derive(Debug, Clone)]
pub struct Nav {
    pub username: String,
    pub role: String,
    pub scope: String,
    pub csrf: String,
    /// (href, label) of every page the role may open.
    pub links: Vec<(&'static str, &'static str)>,
}

impl Nav {
    fn for_staff(s: &auth::Staff) -> Nav {
        let candidates = [
            ("/staff", "Beranda"),
            ("/staff/complaints", "Pengaduan"),
            ("/staff/review", "Antrean review"),
            ("/staff/dashboard", "Dasbor"),
            ("/staff/audit", "Audit"),
            ("/staff/users", "Akun"),
            ("/staff/clients", "Klien API"),
            ("/staff/password", "Kata sandi"),
        ];
        let links = candidates
            .into_iter()
            .filter(|(href, _)| access::access(s.role, "GET", href).allowed())
            .collect();
        let scope = match &s.scope {
            Scope::All => "semua / all".to_string(),
            Scope::Kecamatan(k) => format!("Kecamatan {} ({k})", access::kecamatan_name(k).unwrap_or("?")),
            Scope::School(n) => format!("NPSN {n}"),
        };
        Nav {
            username: s.username.clone(),
            role: s.role.label().to_string(),
            scope,
            csrf: s.csrf.clone(),
            links,
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub(crate) struct ErrorPage {
    pub nav: Nav,
    pub title: &'static str,
    pub message: String,
}

pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => internal(e),
    }
}

/// An internal error: logged without request data, a plain message to the user.
/// The database being busy (a lock wait ran out) is 503 with `Retry-After`, not 500.
pub(crate) fn internal(e: impl std::fmt::Display + 'static) -> Response {
    // Store and template errors carry no personal data.
    if crate::web::is_busy(&e) {
        tracing::warn!("console: {e}");
        let mut res = (
            StatusCode::SERVICE_UNAVAILABLE,
            Html("<p>Sistem sedang sibuk: coba lagi sebentar. / The system is busy: try again in a moment.</p>"),
        )
            .into_response();
        res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return res;
    }
    tracing::error!("console: internal error: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, Html("<p>Terjadi kesalahan internal. / Internal error.</p>"))
        .into_response()
}

/// The stage a page is about: the one asked for, else the latest opened.
pub(crate) async fn pick_stage(state: &AppState, asked: Option<&str>) -> Result<Option<Stage>, Response> {
    if let Some(s) = asked.filter(|s| !s.is_empty()) {
        if let Ok(stage) = Stage::parse(s) {
            return Ok(Some(stage));
        }
    }
    let stages = state.inner.store.stages().await.map_err(internal)?;
    Ok(stages.iter().map(|s| s.stage).max())
}

/// Today in Jakarta (WIB, UTC+7).
pub(crate) fn today_wib() -> chrono::NaiveDate {
    let wib = chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    chrono::Utc::now().with_timezone(&wib).date_naive()
}

/// One option of a select box.
#[derive(Debug, Clone)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Options from (value, label) pairs, the one equal to `selected` marked.
pub(crate) fn opts<V: AsRef<str>, L: AsRef<str>>(
    items: impl IntoIterator<Item = (V, L)>,
    selected: &str,
) -> Vec<Opt> {
    items
        .into_iter()
        .map(|(v, l)| Opt {
            selected: v.as_ref() == selected,
            value: v.as_ref().to_string(),
            label: l.as_ref().to_string(),
        })
        .collect()
}

/// A stored UTC timestamp as Jakarta reads it: `2025-04-01 10:00 WIB`.
pub(crate) fn wib(stamp: &str) -> String {
    let wib = chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(t) => t.with_timezone(&wib).format("%Y-%m-%d %H:%M WIB").to_string(),
        Err(_) => stamp.to_string(),
    }
}

/// A rupiah amount as the page shows it.
pub(crate) fn rupiah(n: i64) -> String {
    kjp_domain::Rupiah::new(n).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_jakarta_time() {
        assert_eq!(super::wib("2025-04-01T20:30:00.000Z"), "2025-04-02 03:30 WIB");
        assert_eq!(super::wib("not a time"), "not a time");
    }

    #[test]
    fn a_busy_database_is_503_with_retry_after_and_other_faults_500() {
        use axum::http::{header, StatusCode};
        use kjp_store::StoreError;
        for (res, status) in [
            (super::internal(StoreError::Busy("lock".into())), StatusCode::SERVICE_UNAVAILABLE),
            (crate::web::api_internal(StoreError::Busy("lock".into())), StatusCode::SERVICE_UNAVAILABLE),
            (super::internal(StoreError::Corrupt("x".into())), StatusCode::INTERNAL_SERVER_ERROR),
            (crate::web::api_internal(StoreError::Corrupt("x".into())), StatusCode::INTERNAL_SERVER_ERROR),
            (crate::web::api_internal("not a store error"), StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(res.status(), status);
            let retry = res.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap_or("").to_owned());
            let expected = (status == StatusCode::SERVICE_UNAVAILABLE).then(|| "5".to_owned());
            assert_eq!(retry, expected);
        }
    }
}
