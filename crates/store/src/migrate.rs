//! A small forward-only migration runner over embedded SQL files. Each applied
//! migration's sha256 is recorded; a file edited after it was applied is refused.

use sqlx::{AnyPool, Row};

use crate::{sha256_hex, StoreError};

/// Every migration, in order. Add new files at the end; never edit one.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "stage_run", include_str!("../migrations/0001_stage_run.sql")),
    (2, "decree", include_str!("../migrations/0002_decree.sql")),
    (3, "drop_status_index", include_str!("../migrations/0003_drop_status_index.sql")),
    (4, "policies", include_str!("../migrations/0004_policies.sql")),
    (5, "funding_amendments", include_str!("../migrations/0005_funding_amendments.sql")),
    (6, "money", include_str!("../migrations/0006_money.sql")),
    (20, "console", include_str!("../migrations/0020_console.sql")),
    (21, "api_clients", include_str!("../migrations/0021_api_clients.sql")),
    (23, "registry", include_str!("../migrations/0023_registry.sql")),
    (24, "operations", include_str!("../migrations/0024_operations.sql")),
    (25, "unfunded_index", include_str!("../migrations/0025_unfunded_index.sql")),
];

pub(crate) async fn run(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS kjp_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for &(version, name, sql) in MIGRATIONS {
        let now = sha256_hex(sql.as_bytes());
        let mut tx = pool.begin().await?;
        let applied: Option<String> = sqlx::query("SELECT sha256 FROM kjp_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match applied {
            Some(applied) if applied == now => continue,
            Some(applied) => {
                return Err(StoreError::MigrationEdited { version, name: name.into(), applied, now })
            }
            None => {}
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        // Two processes migrating at once: the loser's insert fails and its transaction,
        // with the schema changes, rolls back.
        sqlx::query("INSERT INTO kjp_migrations (version, name, sha256, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(version)
            .bind(name)
            .bind(&now)
            .bind(crate::timestamp())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// An applied migration: version, name, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub name: String,
    pub applied_at: String,
}

pub(crate) async fn applied(pool: &AnyPool) -> Result<Vec<Applied>, StoreError> {
    let rows = sqlx::query("SELECT version, name, applied_at FROM kjp_migrations ORDER BY version")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok(Applied { version: r.try_get(0)?, name: r.try_get(1)?, applied_at: r.try_get(2)? }))
        .collect()
}
