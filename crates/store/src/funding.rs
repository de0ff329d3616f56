//! The budget ceiling of a stage and the corrections waiting for a decree's next
//! amendment.

use kjp_domain::Stage;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// An eligible (funded or not) child as the funding order sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingClaim {
    pub nik: String,
    pub status: String,
    pub level: String,
    pub kelurahan: String,
    pub facts: String,
    pub monthly_total: i64,
}

/// A correction to a decreed stage: the child's decision before and after, with who,
/// when, why and on what evidence. `amendment` is set once an amendment takes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Correction {
    pub seq: i64,
    pub nik: String,
    pub status_before: String,
    pub status_after: String,
    pub facts_before: String,
    pub facts_after: String,
    pub level: String,
    pub school: String,
    pub npsn: String,
    pub kelurahan: String,
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub monthly_total: i64,
    /// Reason codes of the decision after (unmet requirements).
    pub reasons: String,
    /// Why the officer corrected it.
    pub reason: String,
    pub evidence: String,
    pub corrected_by: String,
    pub corrected_at: String,
    pub amendment: Option<i64>,
}

impl Store {
    /// Sets or clears a stage's budget ceiling; refused on a decreed stage.
    pub async fn set_budget(&self, stage: Stage, budget: Option<i64>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        crate::ensure_not_decreed::<sqlx::Any>(&mut tx, stage, self.backend == crate::Backend::Postgres)
            .await?;
        sqlx::query("UPDATE stages SET budget = $2 WHERE stage = $1")
            .bind(stage.to_string())
            .bind(budget)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every eligible child of a stage, funded or unfunded, in NIK order.
    pub async fn funding_claims(&self, stage: Stage) -> Result<Vec<FundingClaim>> {
        let rows = sqlx::query(
            "SELECT nik, status, level, kelurahan, facts, monthly_total FROM decisions \
             WHERE stage = $1 AND status IN ('eligible', 'unfunded') ORDER BY nik",
        )
        .bind(stage.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FundingClaim {
                    nik: r.try_get(0)?,
                    status: r.try_get(1)?,
                    level: r.try_get(2)?,
                    kelurahan: r.try_get(3)?,
                    facts: r.try_get(4)?,
                    monthly_total: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Makes exactly `unfunded` the stage's unfunded children (reason `reason_code`), every
    /// other eligible child funded, in one transaction; refused on a decreed stage.
    pub async fn set_funding(&self, stage: Stage, unfunded: &[String], reason_code: &str) -> Result<()> {
        let s = stage.to_string();
        let mut tx = self.begin_write().await?;
        crate::ensure_not_decreed::<sqlx::Any>(&mut tx, stage, self.backend == crate::Backend::Postgres)
            .await?;
        sqlx::query(
            "UPDATE decisions SET status = 'eligible', reasons = '' WHERE stage = $1 AND status = 'unfunded'",
        )
        .bind(&s)
        .execute(&mut *tx)
        .await?;
        for chunk in unfunded.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE decisions SET status = 'unfunded', reasons = $2 \
                 WHERE stage = $1 AND status = 'eligible' AND nik IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(&s).bind(reason_code);
            for nik in chunk {
                q = q.bind(nik);
            }
            let done = q.execute(&mut *tx).await?;
            if done.rows_affected() != chunk.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "stage {s}: {} of {} children to leave unfunded are not eligible",
                    chunk.len() as u64 - done.rows_affected(),
                    chunk.len()
                )));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a correction to a decreed stage, waiting for the next amendment. Returns
    /// its sequence number.
    pub async fn add_correction(&self, stage: Stage, c: &Correction) -> Result<i64> {
        let s = stage.to_string();
        let mut tx = self.begin_write().await?;
        let state: Option<String> = sqlx::query("SELECT state FROM stages WHERE stage = $1")
            .bind(&s)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match state.as_deref() {
            None => return Err(StoreError::NoStage(stage)),
            Some("decreed") => {}
            Some(_) => return Err(StoreError::NotDecreed(stage)),
        }
        let seq: i64 =
            sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM corrections WHERE stage = $1")
                .bind(&s)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        sqlx::query(
            "INSERT INTO corrections (stage, seq, nik, status_before, status_after, facts_before, facts_after, \
             level, school, npsn, kelurahan, routine, periodic, school_fee, monthly_total, reasons, reason, \
             evidence, corrected_by, corrected_at, amendment) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, NULL)",
        )
        .bind(&s)
        .bind(seq)
        .bind(&c.nik)
        .bind(&c.status_before)
        .bind(&c.status_after)
        .bind(&c.facts_before)
        .bind(&c.facts_after)
        .bind(&c.level)
        .bind(&c.school)
        .bind(&c.npsn)
        .bind(&c.kelurahan)
        .bind(c.routine)
        .bind(c.periodic)
        .bind(c.school_fee)
        .bind(c.monthly_total)
        .bind(&c.reasons)
        .bind(&c.reason)
        .bind(&c.evidence)
        .bind(&c.corrected_by)
        .bind(&c.corrected_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// A stage's corrections in order; only those no amendment has taken yet if `pending`.
    pub async fn corrections(&self, stage: Stage, pending: bool) -> Result<Vec<Correction>> {
        let sql = if pending {
            "SELECT * FROM corrections WHERE stage = $1 AND amendment IS NULL ORDER BY seq"
        } else {
            "SELECT * FROM corrections WHERE stage = $1 ORDER BY seq"
        };
        let rows = sqlx::query(sql).bind(stage.to_string()).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let amendment: Option<i32> = r.try_get("amendment")?;
                Ok(Correction {
                    seq: r.try_get("seq")?,
                    nik: r.try_get("nik")?,
                    status_before: r.try_get("status_before")?,
                    status_after: r.try_get("status_after")?,
                    facts_before: r.try_get("facts_before")?,
                    facts_after: r.try_get("facts_after")?,
                    level: r.try_get("level")?,
                    school: r.try_get("school")?,
                    npsn: r.try_get("npsn")?,
                    kelurahan: r.try_get("kelurahan")?,
                    routine: r.try_get("routine")?,
                    periodic: r.try_get("periodic")?,
                    school_fee: r.try_get("school_fee")?,
                    monthly_total: r.try_get("monthly_total")?,
                    reasons: r.try_get("reasons")?,
                    reason: r.try_get("reason")?,
                    evidence: r.try_get("evidence")?,
                    corrected_by: r.try_get("corrected_by")?,
                    corrected_at: r.try_get("corrected_at")?,
                    amendment: amendment.map(i64::from),
                })
            })
            .collect()
    }
}
