//! Staff accounts and their sessions. Sessions and failed sign-in counters live in the
//! database, so several `kjp serve` processes over one PostgreSQL share them. The store
//! keeps what it is given: password hashes and session-token digests, never a password
//! or a token.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store};

/// A staff account. `role` and `scope` are interpreted by the server.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffUser {
    pub username: String,
    pub role: String,
    /// `*` for everything, else a kecamatan code (`31.71.01`) or an NPSN.
    pub scope: String,
    pub password_hash: String,
    pub failed_logins: i64,
    /// RFC 3339; empty when not locked.
    pub locked_until: String,
    pub created_at: String,
}

impl std::fmt::Debug for StaffUser {
    // The hash stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A signed-in session, found by the sha256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    pub username: String,
    pub csrf: String,
    pub expires_at: String,
}

/// What a failed sign-in did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted; the account is still open.
    Counted,
    /// This failure locked the account.
    Locked,
    /// No such account.
    Unknown,
}

fn user_from(r: &AnyRow) -> Result<StaffUser> {
    Ok(StaffUser {
        username: r.try_get("username")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        password_hash: r.try_get("password_hash")?,
        failed_logins: r.try_get("failed_logins")?,
        locked_until: r.try_get("locked_until")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Adds an account; `false` if the username is taken.
    pub async fn add_staff(
        &self,
        username: &str,
        role: &str,
        scope: &str,
        password_hash: &str,
    ) -> Result<bool> {
        if self.staff(username).await?.is_some() {
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO staff_users (username, role, scope, password_hash, failed_logins, locked_until, created_at) \
             VALUES ($1, $2, $3, $4, 0, '', $5)",
        )
        .bind(username)
        .bind(role)
        .bind(scope)
        .bind(password_hash)
        .bind(crate::now())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(true),
            // Lost a race with another process adding the same name.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn staff(&self, username: &str) -> Result<Option<StaffUser>> {
        let row = sqlx::query("SELECT * FROM staff_users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from(&r)).transpose()
    }

    pub async fn staff_users(&self) -> Result<Vec<StaffUser>> {
        let rows = sqlx::query("SELECT * FROM staff_users ORDER BY username").fetch_all(&self.pool).await?;
        rows.iter().map(user_from).collect()
    }

    pub async fn set_staff_password(&self, username: &str, password_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE staff_users SET password_hash = $2, failed_logins = 0, locked_until = '' WHERE username = $1",
        )
        .bind(username)
        .bind(password_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts a failed sign-in; the `max`-th in a row locks the account until `lock_until`
    /// (RFC 3339) and starts the count again. Atomic: concurrent failures are all counted.
    pub async fn login_failed(&self, username: &str, max: i64, lock_until: &str) -> Result<LoginAttempt> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE staff_users SET failed_logins = failed_logins + 1 WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(LoginAttempt::Unknown);
        }
        let locked = sqlx::query(
            "UPDATE staff_users SET failed_logins = 0, locked_until = $3 WHERE username = $1 AND failed_logins >= $2",
        )
        .bind(username)
        .bind(max)
        .bind(lock_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if locked.rows_affected() == 1 { LoginAttempt::Locked } else { LoginAttempt::Counted })
    }

    /// A successful sign-in clears the failure count and any expired lock.
    pub async fn login_succeeded(&self, username: &str) -> Result<()> {
        sqlx::query("UPDATE staff_users SET failed_logins = 0, locked_until = '' WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_sha256: &str,
        username: &str,
        csrf: &str,
        expires_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_sha256, username, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256)
        .bind(username)
        .bind(csrf)
        .bind(crate::now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token digest, if it has not expired at `now` (RFC 3339).
    pub async fn session(&self, token_sha256: &str, now: &str) -> Result<Option<StaffSession>> {
        let row = sqlx::query(
            "SELECT username, csrf, expires_at FROM staff_sessions WHERE token_sha256 = $1 AND expires_at > $2",
        )
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StaffSession { username: r.try_get(0)?, csrf: r.try_get(1)?, expires_at: r.try_get(2)? })
        })
        .transpose()
    }

    /// Ends every session of an account but the one with `keep` (a token digest).
    pub async fn end_sessions_of(&self, username: &str, keep: &str) -> Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE username = $1 AND token_sha256 <> $2")
            .bind(username)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session; also sweeps every session expired at `now`.
    pub async fn end_session(&self, token_sha256: &str, now: &str) -> Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_sha256 = $1 OR expires_at <= $2")
            .bind(token_sha256)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
