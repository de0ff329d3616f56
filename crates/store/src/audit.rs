//! The append-only audit log: every change and every view of a person's record, each
//! entry chained to the one before by sha256, and the chain's head kept apart so a
//! truncated log is detected too. `verify_audit` recomputes the whole chain.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// How long an append waits for the database before giving up (under the servers' 15 s
/// request timeout).
const AUDIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// One entry: who did what to which subject, when and from where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    /// The staff username, or `public` for the follow-up page.
    pub actor: String,
    /// e.g. `view.child`, `complaint.open`, `login.failed`.
    pub action: String,
    /// What it was done to: a masked NIK, a ticket, a username.
    pub subject: String,
    pub detail: String,
    /// The client address.
    pub origin: String,
    pub prev_sha256: String,
    pub sha256: String,
}

/// Where the chain is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    pub seq: i64,
    pub problem: String,
}

/// The digest of an entry: every field length-prefixed, so no two entries share one.
pub(crate) fn digest(e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    for field in [
        e.prev_sha256.as_str(),
        &e.seq.to_string(),
        &e.at,
        &e.actor,
        &e.action,
        &e.subject,
        &e.detail,
        &e.origin,
    ] {
        h.update(field.len().to_string().as_bytes());
        h.update(b":");
        h.update(field.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

impl Store {
    /// Appends an entry (its `seq`, `at` and hashes are filled in) and returns it.
    /// Concurrent appenders retry: the head moves only from the entry they chained to.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        origin: &str,
    ) -> Result<AuditEntry> {
        // Appenders take the write lock first (SQLite) or the head's row (PostgreSQL), so
        // they mostly queue; what is left to retry is a lock wait that timed out, or a
        // head moved by a process that does not lock first. Bounded by time, within the
        // servers' request timeout.
        let deadline = std::time::Instant::now() + AUDIT_PATIENCE;
        for attempt in 0u64.. {
            match self.try_audit(actor, action, subject, detail, origin).await {
                Ok(Some(e)) => return Ok(e),
                Ok(None) => {}
                Err(e) if retryable(&e) => {}
                Err(e) => return Err(e.into()),
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1 + attempt % 7 * 3)).await;
        }
        Err(StoreError::Busy(format!(
            "the audit log could not be appended to within {} s: another process holds the database",
            AUDIT_PATIENCE.as_secs()
        )))
    }

    /// One attempt: `None` if the head moved under it.
    async fn try_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &str,
        origin: &str,
    ) -> std::result::Result<Option<AuditEntry>, sqlx::Error> {
        let mut tx = self.begin_write().await?;
        // A write first: on PostgreSQL it locks the head's row, so concurrent appenders
        // wait for each other instead of racing and retrying.
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut *tx).await?;
        let head = sqlx::query("SELECT seq, sha256 FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let (seq, prev): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
        let mut e = AuditEntry {
            seq: seq + 1,
            at: crate::now(),
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            detail: detail.into(),
            origin: origin.into(),
            prev_sha256: prev,
            sha256: String::new(),
        };
        e.sha256 = digest(&e);
        let moved = sqlx::query("UPDATE audit_head SET seq = $1, sha256 = $2 WHERE id = 1 AND seq = $3")
            .bind(e.seq)
            .bind(&e.sha256)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() != 1 {
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, origin, prev_sha256, sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.seq)
        .bind(&e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.subject)
        .bind(&e.detail)
        .bind(&e.origin)
        .bind(&e.prev_sha256)
        .bind(&e.sha256)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(e))
    }

    /// The newest entries first, at most `limit`, optionally only those whose actor,
    /// action or subject contains `filter`.
    pub async fn audit_entries(&self, limit: i64, filter: &str) -> Result<Vec<AuditEntry>> {
        let like = format!("%{}%", filter.replace(['%', '_'], ""));
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE actor LIKE $1 OR action LIKE $1 OR subject LIKE $1 \
             ORDER BY seq DESC LIMIT $2",
        )
        .bind(like)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from).collect()
    }

    /// Recomputes the chain from the first entry: returns the entries checked, or every
    /// place it is broken (an edited entry, a deleted one, a truncated tail).
    pub async fn verify_audit(&self) -> Result<std::result::Result<i64, Vec<AuditBreak>>> {
        use futures_util::TryStreamExt;
        let mut breaks = Vec::new();
        let (mut expect_seq, mut prev) = (1i64, String::new());
        let mut rows = sqlx::query("SELECT * FROM audit_log ORDER BY seq").fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let e = entry_from(&r)?;
            if e.seq != expect_seq {
                breaks.push(AuditBreak {
                    seq: expect_seq,
                    problem: format!("entries {expect_seq} to {} are missing", e.seq - 1),
                });
            }
            if e.prev_sha256 != prev {
                breaks
                    .push(AuditBreak { seq: e.seq, problem: "does not chain to the entry before it".into() });
            }
            if digest(&e) != e.sha256 {
                breaks.push(AuditBreak {
                    seq: e.seq,
                    problem: "was edited: its content does not match its hash".into(),
                });
            }
            expect_seq = e.seq + 1;
            prev = e.sha256;
        }
        drop(rows);
        let head =
            sqlx::query("SELECT seq, sha256 FROM audit_head WHERE id = 1").fetch_one(&self.pool).await?;
        let (head_seq, head_sha): (i64, String) = (head.try_get(0)?, head.try_get(1)?);
        if head_seq != expect_seq - 1 || head_sha != prev {
            breaks.push(AuditBreak {
                seq: head_seq,
                problem: format!(
                    "the log ends at entry {} but its head records entry {head_seq}: entries were removed or the head was changed",
                    expect_seq - 1
                ),
            });
        }
        Ok(if breaks.is_empty() { Ok(expect_seq - 1) } else { Err(breaks) })
    }
}

/// A write that lost a race and may simply be tried again: PostgreSQL's serialization
/// failure, deadlock and unique violation; SQLite's busy and locked (a reader that
/// cannot become a writer gets these at once, without waiting).
pub(crate) fn retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d.is_unique_violation() || crate::is_lock_timeout(e),
        _ => false,
    }
}

fn entry_from(r: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        detail: r.try_get("detail")?,
        origin: r.try_get("origin")?,
        prev_sha256: r.try_get("prev_sha256")?,
        sha256: r.try_get("sha256")?,
    })
}
