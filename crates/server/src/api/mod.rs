//! The API for other agencies' systems: authenticated clients ([`clients`]), each call
//! checked against the client's scopes and recorded in the hash-chained audit log.
//!
//! These routes sit outside the public status check's per-address rate limit, body limit
//! and request timeout: a client is known by its token, its calls are audited one by one,
//! and an upload may be large ([`crate::Config::upload_limit`]) and slow.

pub mod clients;
pub(crate) mod files;
pub mod registry;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use clients::{ApiScope, Client};

use crate::AppState;

pub(crate) fn router(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/api/v1/client", get(whoami))
        .route(
            "/api/v1/files",
            post(files::upload).get(files::list).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/v1/files/{sha256}", get(files::download))
        .route("/api/v1/files/{sha256}/report.csv", get(files::report))
        .route("/api/v1/annex/{file}", get(files::annex))
        .merge(registry::router())
}

/// Who the token belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct WhoAmI {
    /// The client's name, as in `kjp client list`.
    #[schema(example = "dinsos-dtks")]
    name: String,
    /// The agency it belongs to.
    #[schema(example = "Dinas Sosial DKI Jakarta")]
    agency: String,
    /// What it may do.
    #[schema(example = json!(["registry.search", "registry.subscribe"]))]
    scopes: Vec<String>,
}

/// The client the bearer token belongs to and its scopes: for an agency to check its
/// token. Recorded in the audit log like every authenticated call.
#[utoipa::path(
    get,
    path = "/api/v1/client",
    tag = "clients",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is live", body = WhoAmI),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
    )
)]
pub(crate) async fn whoami(State(state): State<AppState>, client: Client) -> Json<WhoAmI> {
    client.audit(&state, "api.client", "", "").await;
    Json(WhoAmI {
        name: client.name.clone(),
        agency: client.agency.clone(),
        scopes: client.scopes.iter().map(ApiScope::to_string).collect(),
    })
}
