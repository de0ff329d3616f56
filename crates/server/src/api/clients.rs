//! Agency API clients: a bearer token per client, scopes, revocation, audit.
//!
//! A token is `kjp_` and 64 hex digits (256 random bits), shown once when the client is
//! made (`kjp client add`); the database keeps only its sha256. Every request looks the
//! client up in the database, so revoking or rotating takes effect at once in every
//! server process.

use std::fmt;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::web::json_error;
use crate::AppState;

/// What a client may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiScope {
    /// Ask whether a NIK is a recipient of a stage, and since when (DCI search).
    RegistrySearch,
    /// Subscribe to changes of recipients and be notified (DCI subscribe/notify).
    RegistrySubscribe,
    /// Upload agency files for a stage: every source, or only the one named
    /// (`files.import:dtks`).
    Import(Option<String>),
    /// Download decree annexes.
    Export,
}

impl ApiScope {
    /// Every scope's code, for help texts.
    pub const CODES: &'static str =
        "registry.search, registry.subscribe, files.import, files.import:<source>, decree.export";

    pub fn parse(raw: &str) -> Option<ApiScope> {
        match raw {
            "registry.search" => Some(ApiScope::RegistrySearch),
            "registry.subscribe" => Some(ApiScope::RegistrySubscribe),
            "files.import" => Some(ApiScope::Import(None)),
            "decree.export" => Some(ApiScope::Export),
            _ => {
                let source = raw.strip_prefix("files.import:")?;
                let known = kjp_import::Source::from_name(source).is_some();
                known.then(|| ApiScope::Import(Some(source.to_string())))
            }
        }
    }

    /// Whether holding `self` allows what `wanted` names.
    fn covers(&self, wanted: &ApiScope) -> bool {
        match (self, wanted) {
            (ApiScope::Import(None), ApiScope::Import(_)) => true,
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiScope::RegistrySearch => f.write_str("registry.search"),
            ApiScope::RegistrySubscribe => f.write_str("registry.subscribe"),
            ApiScope::Import(None) => f.write_str("files.import"),
            ApiScope::Import(Some(source)) => write!(f, "files.import:{source}"),
            ApiScope::Export => f.write_str("decree.export"),
        }
    }
}

/// Why managing a client failed; the texts are shown as they are by the CLI and console.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client name: {0}")]
    Name(String),
    #[error("--agency: name the agency the client belongs to")]
    NoAgency,
    #[error("--scope {0:?}: one of {codes}", codes = ApiScope::CODES)]
    UnknownScope(String),
    #[error("--scope: give at least one of {codes}", codes = ApiScope::CODES)]
    NoScope,
    #[error("a client named {0:?} exists (revoked names stay taken)")]
    Taken(String),
    #[error("no client named {0:?}")]
    NotFound(String),
    #[error("client {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error("client {0:?} is revoked: add a new one")]
    Revoked(String),
    #[error(transparent)]
    Store(#[from] kjp_store::StoreError),
}

/// Creates a client and returns its token (to show once; only its digest is kept).
/// `scopes` is comma-separated. Audited as `client.add` by `actor` from `origin`.
pub async fn add_client(
    store: &kjp_store::Store,
    name: &str,
    agency: &str,
    scopes: &str,
    actor: &str,
    origin: &str,
) -> Result<String, ClientError> {
    crate::console::check_username(name).map_err(ClientError::Name)?;
    let agency = agency.trim();
    if agency.is_empty() {
        return Err(ClientError::NoAgency);
    }
    let mut parsed = Vec::new();
    for raw in scopes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let scope = ApiScope::parse(raw).ok_or_else(|| ClientError::UnknownScope(raw.into()))?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    if parsed.is_empty() {
        return Err(ClientError::NoScope);
    }
    let codes: Vec<String> = parsed.iter().map(ApiScope::to_string).collect();
    let (token, digest) = new_token();
    if !store.add_api_client(name, agency, &codes, &digest, actor).await? {
        return Err(ClientError::Taken(name.into()));
    }
    store.audit(actor, "client.add", name, &format!("{agency} [{}]", codes.join(" ")), origin).await?;
    Ok(token)
}

/// Revokes a client at once, in every server process. Audited as `client.revoke`.
pub async fn revoke_client(
    store: &kjp_store::Store,
    name: &str,
    actor: &str,
    origin: &str,
) -> Result<(), ClientError> {
    if !store.revoke_api_client(name).await? {
        return Err(match store.api_client(name).await? {
            Some(_) => ClientError::AlreadyRevoked(name.into()),
            None => ClientError::NotFound(name.into()),
        });
    }
    store.audit(actor, "client.revoke", name, "", origin).await?;
    Ok(())
}

/// Gives a live client a new token (returned, to show once); the old one stops working
/// at once. Audited as `client.rotate`.
pub async fn rotate_client(
    store: &kjp_store::Store,
    name: &str,
    actor: &str,
    origin: &str,
) -> Result<String, ClientError> {
    let (token, digest) = new_token();
    if !store.rotate_api_client(name, &digest).await? {
        return Err(match store.api_client(name).await? {
            Some(_) => ClientError::Revoked(name.into()),
            None => ClientError::NotFound(name.into()),
        });
    }
    store.audit(actor, "client.rotate", name, "", origin).await?;
    Ok(token)
}

/// A new token and the digest the store keeps of it.
pub fn new_token() -> (String, String) {
    let token = format!("kjp_{}", crate::console::auth::random_hex(32));
    let digest = kjp_store::sha256_hex(token.as_bytes());
    (token, digest)
}

/// The authenticated client a request runs as. As an extractor it answers 401 for a
/// missing, unknown or revoked token.
#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub agency: String,
    pub scopes: Vec<ApiScope>,
    /// The client address, for the audit log.
    pub origin: String,
}

impl Client {
    /// Whether the client holds `scope`.
    pub fn allows(&self, scope: &ApiScope) -> bool {
        self.scopes.iter().any(|s| s.covers(scope))
    }

    /// 403 unless the client holds `scope`; a refusal is recorded in the audit log.
    pub async fn require(&self, state: &AppState, scope: &ApiScope) -> Result<(), Response> {
        if self.allows(scope) {
            return Ok(());
        }
        self.audit(state, "api.denied", "", &format!("scope {scope} not granted")).await;
        let message = format!("this client does not hold the scope {scope}");
        Err(json_error(StatusCode::FORBIDDEN, None, &message))
    }

    /// Records a call in the audit log as `client:NAME`. The subject is a masked NIK or a
    /// file name, never personal data in full. A failure to record is logged, not fatal:
    /// the call has already been authorised.
    pub async fn audit(&self, state: &AppState, action: &str, subject: &str, detail: &str) {
        let actor = format!("client:{}", self.name);
        if let Err(e) = state.inner.store.audit(&actor, action, subject, detail, &self.origin).await {
            tracing::error!("audit log: could not record {action} by {actor}: {e}");
        }
    }
}

fn unauthorized(message: &str) -> Response {
    let mut res = json_error(StatusCode::UNAUTHORIZED, None, message);
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kjp\""));
    res
}

impl FromRequestParts<AppState> for Client {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Client, Response> {
        let Some(raw) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized(
                "this endpoint needs an API client's token: Authorization: Bearer kjp_...",
            ));
        };
        let token = raw.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthorized("the Authorization header must be: Bearer <token>"));
        };
        let digest = kjp_store::sha256_hex(token.as_bytes());
        let found = match state.inner.store.api_client_by_token(&digest).await {
            Ok(found) => found,
            Err(e) => return Err(crate::web::api_internal(e)),
        };
        let Some(client) = found.filter(|c| !c.is_revoked()) else {
            return Err(unauthorized("unknown or revoked token"));
        };
        let origin = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_string())
            .unwrap_or_default();
        // A scope the server no longer knows grants nothing.
        let scopes = client.scopes.iter().filter_map(|s| ApiScope::parse(s)).collect();
        Ok(Client { name: client.name, agency: client.agency, scopes, origin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_import_all_covers_each_source() {
        for code in
            ["registry.search", "registry.subscribe", "files.import", "files.import:dtks", "decree.export"]
        {
            assert_eq!(ApiScope::parse(code).map(|s| s.to_string()).as_deref(), Some(code));
        }
        assert_eq!(ApiScope::parse("files.import:nonsense"), None);
        assert_eq!(ApiScope::parse("admin"), None);
        let dtks = ApiScope::Import(Some("dtks".into()));
        let vehicles = ApiScope::Import(Some("vehicles".into()));
        assert!(ApiScope::Import(None).covers(&dtks));
        assert!(dtks.covers(&dtks));
        assert!(!dtks.covers(&vehicles), "one source's scope does not open another's");
        assert!(!dtks.covers(&ApiScope::Import(None)));
        assert!(!ApiScope::Export.covers(&ApiScope::RegistrySearch));
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let (a, da) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("kjp_") && a.len() == 68);
        assert_eq!(da, kjp_store::sha256_hex(a.as_bytes()));
        assert!(!da.contains(&a[4..]));
    }
}
