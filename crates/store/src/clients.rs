//! Other agencies' systems that call the API. The store keeps a client's name, agency,
//! scopes and the sha256 of its bearer token, never the token. Clients live in the
//! database, so a revocation takes effect at once in every `kjp serve` process.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store};

/// An API client. `scopes` are interpreted by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub name: String,
    pub agency: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    /// RFC 3339; empty while the client may call.
    pub revoked_at: String,
}

impl ApiClient {
    pub fn is_revoked(&self) -> bool {
        !self.revoked_at.is_empty()
    }
}

fn client_from(r: &AnyRow) -> Result<ApiClient> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiClient {
        name: r.try_get("name")?,
        agency: r.try_get("agency")?,
        scopes: scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const COLUMNS: &str = "name, agency, scopes, created_by, created_at, revoked_at";

impl Store {
    /// Adds a client; `false` if the name is taken (revoked names stay taken, so the audit
    /// log's names stay unambiguous).
    pub async fn add_api_client(
        &self,
        name: &str,
        agency: &str,
        scopes: &[String],
        token_sha256: &str,
        created_by: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO api_clients (name, agency, scopes, token_sha256, created_by, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, '')",
        )
        .bind(name)
        .bind(agency)
        .bind(scopes.join(" "))
        .bind(token_sha256)
        .bind(created_by)
        .bind(crate::now())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The client holding the token with this sha256, revoked or not.
    pub async fn api_client_by_token(&self, token_sha256: &str) -> Result<Option<ApiClient>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_clients WHERE token_sha256 = $1"))
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| client_from(&r)).transpose()
    }

    pub async fn api_client(&self, name: &str) -> Result<Option<ApiClient>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_clients WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| client_from(&r)).transpose()
    }

    pub async fn api_clients(&self) -> Result<Vec<ApiClient>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM api_clients ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from).collect()
    }

    /// Revokes a client; `false` if there is no such client or it was already revoked.
    pub async fn revoke_api_client(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE api_clients SET revoked_at = $2 WHERE name = $1 AND revoked_at = ''")
            .bind(name)
            .bind(crate::now())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a live client a new token; the old one stops working. `false` if there is no
    /// such client or it is revoked.
    pub async fn rotate_api_client(&self, name: &str, token_sha256: &str) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_clients SET token_sha256 = $2 WHERE name = $1 AND revoked_at = ''")
                .bind(name)
                .bind(token_sha256)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
