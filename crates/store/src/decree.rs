//! Settled conflicts (resolutions) and decrees: the rows that freeze a stage.

use kjp_domain::Stage;
use sqlx::Row;

use crate::{DecisionRow, Result, Store, StoreError};

/// Who settled a decision, when, why, and what it was before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub nik: String,
    /// `later-source-wins` or `manual`.
    pub rule: String,
    /// The status after.
    pub outcome: String,
    pub reason: String,
    pub resolved_by: String,
    pub resolved_at: String,
    pub before_status: String,
    pub before_unknown: String,
}

/// A decree (amendment 0) or one of its numbered amendments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecreeRecord {
    pub stage: Stage,
    pub amendment: i64,
    pub number: String,
    pub decree_date: String,
    pub recorded_at: String,
    pub policy_sha256: String,
    pub snapshots: String,
    pub recipients: i64,
    pub unfunded: i64,
    pub monthly_total: i64,
    /// The stage's budget ceiling when it was decreed, if it had one.
    pub budget: Option<i64>,
    pub note: String,
    /// sha256 over everything recorded (see the import crate's decree module).
    pub sha256: String,
    /// The hash of the amendment before (empty for the decree itself).
    pub previous_sha256: String,
}

/// One child in a decree: a recipient or eligible but unfunded. In an amendment, the
/// children it adds or removes (`change`), with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecreeEntry {
    pub nik: String,
    pub status: String,
    pub level: String,
    pub school: String,
    pub npsn: String,
    pub kelurahan: String,
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub monthly_total: i64,
    pub change: String,
    pub reason: String,
}

impl Store {
    /// Updates decisions and records why, in one transaction; refused on a decreed stage.
    pub async fn apply_resolutions(&self, stage: Stage, items: &[(DecisionRow, Resolution)]) -> Result<()> {
        let s = stage.to_string();
        let mut tx = self.begin_write().await?;
        crate::ensure_not_decreed::<sqlx::Any>(&mut tx, stage, self.backend == crate::Backend::Postgres)
            .await?;
        for (d, _) in items {
            sqlx::query(
                "UPDATE decisions SET status = $3, grp = $4, routine = $5, periodic = $6, school_fee = $7, \
                 monthly_total = $8, reasons = $9, unknown = $10, facts = $11 WHERE stage = $1 AND nik = $2",
            )
            .bind(&s)
            .bind(&d.nik)
            .bind(&d.status)
            .bind(&d.grp)
            .bind(d.routine)
            .bind(d.periodic)
            .bind(d.school_fee)
            .bind(d.monthly_total)
            .bind(&d.reasons)
            .bind(&d.unknown)
            .bind(&d.facts)
            .execute(&mut *tx)
            .await?;
        }
        let resolutions: Vec<Resolution> = items.iter().map(|(_, r)| r.clone()).collect();
        record_resolutions::<sqlx::Any>(&mut tx, stage, &resolutions).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn resolutions(&self, stage: Stage) -> Result<Vec<Resolution>> {
        let rows = sqlx::query("SELECT * FROM resolutions WHERE stage = $1 ORDER BY nik")
            .bind(stage.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Resolution {
                    nik: r.try_get("nik")?,
                    rule: r.try_get("rule")?,
                    outcome: r.try_get("outcome")?,
                    reason: r.try_get("reason")?,
                    resolved_by: r.try_get("resolved_by")?,
                    resolved_at: r.try_get("resolved_at")?,
                    before_status: r.try_get("before_status")?,
                    before_unknown: r.try_get("before_unknown")?,
                })
            })
            .collect()
    }

    /// Decisions of a stage with a given status, in NIK order.
    pub async fn decisions_with_status(&self, stage: Stage, status: &str) -> Result<Vec<DecisionRow>> {
        let sql = format!(
            "SELECT {} FROM decisions WHERE stage = $1 AND status = $2 ORDER BY nik",
            crate::DECISION_COLUMNS
        );
        let rows = sqlx::query(&sql).bind(stage.to_string()).bind(status).fetch_all(&self.pool).await?;
        rows.iter().map(crate::decision_from).collect()
    }

    /// Records a decree or an amendment with its entries and marks the stage decreed, in
    /// one transaction; an amendment also marks the corrections (by `seq`) it takes. A
    /// decree for a stage that has one, or an amendment whose number is taken, is refused.
    pub async fn record_decree(
        &self,
        d: &DecreeRecord,
        entries: &[DecreeEntry],
        corrections: &[i64],
    ) -> Result<()> {
        let s = d.stage.to_string();
        let mut tx = self.begin_write().await?;
        let last: Option<i64> =
            sqlx::query("SELECT CAST(MAX(amendment) AS BIGINT) FROM decrees WHERE stage = $1")
                .bind(&s)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        let expected = last.map_or(0, |n| n + 1);
        if d.amendment != expected {
            return Err(StoreError::Corrupt(format!(
                "stage {s}: recording amendment {} but the next one is {expected}",
                d.amendment
            )));
        }
        sqlx::query(
            "INSERT INTO decrees (stage, amendment, number, decree_date, recorded_at, policy_sha256, snapshots, \
             recipients, unfunded, monthly_total, note, sha256, previous_sha256, budget) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&s)
        .bind(d.amendment as i32)
        .bind(&d.number)
        .bind(&d.decree_date)
        .bind(&d.recorded_at)
        .bind(&d.policy_sha256)
        .bind(&d.snapshots)
        .bind(d.recipients)
        .bind(d.unfunded)
        .bind(d.monthly_total)
        .bind(&d.note)
        .bind(&d.sha256)
        .bind(&d.previous_sha256)
        .bind(d.budget)
        .execute(&mut *tx)
        .await?;
        for seq in corrections {
            let done = sqlx::query(
                "UPDATE corrections SET amendment = $3 WHERE stage = $1 AND seq = $2 AND amendment IS NULL",
            )
            .bind(&s)
            .bind(seq)
            .bind(d.amendment as i32)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Corrupt(format!(
                    "stage {s}: correction {seq} is not pending (another amendment took it)"
                )));
            }
        }
        for chunk in entries.chunks(1000) {
            let sql = crate::values_sql(
                self.backend,
                "INSERT INTO decree_entries (stage, amendment, nik, status, level, school, npsn, kelurahan, \
                 routine, periodic, school_fee, monthly_total, change, reason)",
                14,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&s)
                    .bind(d.amendment as i32)
                    .bind(&e.nik)
                    .bind(&e.status)
                    .bind(&e.level)
                    .bind(&e.school)
                    .bind(&e.npsn)
                    .bind(&e.kelurahan)
                    .bind(e.routine)
                    .bind(e.periodic)
                    .bind(e.school_fee)
                    .bind(e.monthly_total)
                    .bind(&e.change)
                    .bind(&e.reason);
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE stages SET state = 'decreed' WHERE stage = $1")
            .bind(&s)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every decree record of a stage: the decree, then its amendments.
    pub async fn decrees(&self, stage: Stage) -> Result<Vec<DecreeRecord>> {
        let rows = sqlx::query("SELECT * FROM decrees WHERE stage = $1 ORDER BY amendment")
            .bind(stage.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let amendment: i32 = r.try_get("amendment")?;
                Ok(DecreeRecord {
                    stage,
                    amendment: i64::from(amendment),
                    number: r.try_get("number")?,
                    decree_date: r.try_get("decree_date")?,
                    recorded_at: r.try_get("recorded_at")?,
                    policy_sha256: r.try_get("policy_sha256")?,
                    snapshots: r.try_get("snapshots")?,
                    recipients: r.try_get("recipients")?,
                    unfunded: r.try_get("unfunded")?,
                    monthly_total: r.try_get("monthly_total")?,
                    budget: r.try_get("budget")?,
                    note: r.try_get("note")?,
                    sha256: r.try_get("sha256")?,
                    previous_sha256: r.try_get("previous_sha256")?,
                })
            })
            .collect()
    }

    /// The entries of one decree record, in NIK order.
    pub async fn decree_entries(&self, stage: Stage, amendment: i64) -> Result<Vec<DecreeEntry>> {
        let rows =
            sqlx::query("SELECT * FROM decree_entries WHERE stage = $1 AND amendment = $2 ORDER BY nik")
                .bind(stage.to_string())
                .bind(amendment as i32)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(DecreeEntry {
                    nik: r.try_get("nik")?,
                    status: r.try_get("status")?,
                    level: r.try_get("level")?,
                    school: r.try_get("school")?,
                    npsn: r.try_get("npsn")?,
                    kelurahan: r.try_get("kelurahan")?,
                    routine: r.try_get("routine")?,
                    periodic: r.try_get("periodic")?,
                    school_fee: r.try_get("school_fee")?,
                    monthly_total: r.try_get("monthly_total")?,
                    change: r.try_get("change")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// The recipients of a decreed stage as they stand now: the decree's recipients with
    /// every amendment applied in order (an entry whose `change` is `removed` takes the
    /// child out; `added` or `changed` puts the child in with the amounts it records). In NIK order;
    /// empty for a stage without a decree.
    pub async fn recipients(&self, stage: Stage) -> Result<Vec<DecreeEntry>> {
        let mut current = std::collections::BTreeMap::new();
        for d in self.decrees(stage).await? {
            for e in self.decree_entries(stage, d.amendment).await? {
                match (d.amendment, e.change.as_str()) {
                    (0, _) | (_, "added" | "changed") if e.status == "recipient" => {
                        current.insert(e.nik.clone(), e);
                    }
                    (_, "removed") => {
                        current.remove(&e.nik);
                    }
                    _ => {}
                }
            }
        }
        Ok(current.into_values().collect())
    }
}

/// Records each resolution as the child's latest (replacing one recorded before), inside
/// the caller's transaction. Generic so that a stage run's PostgreSQL COPY path shares it.
pub(crate) async fn record_resolutions<DB>(
    conn: &mut DB::Connection,
    stage: Stage,
    resolutions: &[Resolution],
) -> Result<()>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let s = stage.to_string();
    for r in resolutions {
        sqlx::query::<DB>("DELETE FROM resolutions WHERE stage = $1 AND nik = $2")
            .bind(s.clone())
            .bind(r.nik.clone())
            .execute(&mut *conn)
            .await?;
        sqlx::query::<DB>(
            "INSERT INTO resolutions (stage, nik, rule, outcome, reason, resolved_by, resolved_at, before_status, before_unknown) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.clone())
        .bind(r.nik.clone())
        .bind(r.rule.clone())
        .bind(r.outcome.clone())
        .bind(r.reason.clone())
        .bind(r.resolved_by.clone())
        .bind(r.resolved_at.clone())
        .bind(r.before_status.clone())
        .bind(r.before_unknown.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
