//! What the servers' operations share through the database: a stage run's progress (for
//! every server's `/metrics`), the public check's rate-limit counts across processes, and
//! the sizes of the registry's delivery queues.

use sqlx::Row;

use crate::{Result, Store};

/// Where a stage run is, as its command last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageProgress {
    pub stage: String,
    pub step: String,
    pub done: i64,
    pub total: i64,
    pub started_at: String,
    pub updated_at: String,
    /// RFC 3339; empty while the run goes on.
    pub finished_at: String,
}

impl StageProgress {
    pub fn running(&self) -> bool {
        self.finished_at.is_empty()
    }
}

/// The registry's delivery queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryQueues {
    /// Recipient changes not yet acknowledged by a live subscription, summed over them.
    pub notify_backlog: i64,
    /// Answers to asynchronous requests not yet delivered to their callback.
    pub callbacks_pending: i64,
}

impl Store {
    /// Records where the run of `stage` is. `started` begins a run (its start time is
    /// now); `finished` ends it.
    pub async fn set_stage_progress(
        &self,
        stage: &str,
        step: &str,
        done: u64,
        total: u64,
        started: bool,
        finished: bool,
    ) -> Result<()> {
        let now = crate::timestamp();
        let finished_at = if finished { now.as_str() } else { "" };
        let (done, total) =
            (i64::try_from(done).unwrap_or(i64::MAX), i64::try_from(total).unwrap_or(i64::MAX));
        let sql = if started {
            "INSERT INTO stage_progress (stage, step, done, total, started_at, updated_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (stage) DO UPDATE SET step = excluded.step, \
             done = excluded.done, total = excluded.total, started_at = excluded.started_at, \
             updated_at = excluded.updated_at, finished_at = excluded.finished_at"
        } else {
            "UPDATE stage_progress SET step = $2, done = $3, total = $4, updated_at = $5, finished_at = $6 \
             WHERE stage = $1"
        };
        sqlx::query(sql)
            .bind(stage)
            .bind(step)
            .bind(done)
            .bind(total)
            .bind(&now)
            .bind(finished_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The last run of every stage that has been run with progress recorded.
    pub async fn stage_progress(&self) -> Result<Vec<StageProgress>> {
        let rows = sqlx::query(
            "SELECT stage, step, done, total, started_at, updated_at, finished_at FROM stage_progress \
             ORDER BY stage",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StageProgress {
                    stage: r.try_get(0)?,
                    step: r.try_get(1)?,
                    done: r.try_get(2)?,
                    total: r.try_get(3)?,
                    started_at: r.try_get(4)?,
                    updated_at: r.try_get(5)?,
                    finished_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Adds `hits` (client digest, requests counted since the last call) to the counts of
    /// `minute`, in one transaction, and returns every client's total for that minute among
    /// those given and those with at least `at_least` (counted by any process). Deletes the
    /// counts of minutes before `minute - 1`.
    pub async fn add_rate_hits(
        &self,
        minute: i64,
        hits: &[(String, i64)],
        at_least: i64,
    ) -> Result<Vec<(String, i64)>> {
        let mut tx = self.begin_write().await?;
        let mut totals = Vec::with_capacity(hits.len());
        for chunk in hits.chunks(500) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
            let sql = format!(
                "INSERT INTO rate_hits (minute, client, hits) VALUES {} ON CONFLICT (minute, client) \
                 DO UPDATE SET hits = rate_hits.hits + excluded.hits RETURNING client, hits",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(minute);
            for (client, n) in chunk {
                q = q.bind(client.as_str()).bind(*n);
            }
            for r in q.fetch_all(&mut *tx).await? {
                totals.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        for r in sqlx::query("SELECT client, hits FROM rate_hits WHERE minute = $1 AND hits >= $2")
            .bind(minute)
            .bind(at_least)
            .fetch_all(&mut *tx)
            .await?
        {
            totals.push((r.try_get(0)?, r.try_get(1)?));
        }
        sqlx::query("DELETE FROM rate_hits WHERE minute < $1").bind(minute - 1).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(totals)
    }

    /// The sizes of the registry's delivery queues.
    pub async fn registry_queues(&self) -> Result<RegistryQueues> {
        let notify_backlog: i64 = sqlx::query(
            "SELECT COUNT(*) FROM registry_subscriptions s JOIN registry_events e \
             ON e.stage = s.stage AND e.seq > s.delivered_seq WHERE s.cancelled_at = ''",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let callbacks_pending: i64 =
            sqlx::query("SELECT COUNT(*) FROM registry_callbacks WHERE delivered_at = ''")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        Ok(RegistryQueues { notify_backlog, callbacks_pending })
    }
}
