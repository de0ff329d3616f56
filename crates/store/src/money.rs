//! Money in the database: bank accounts, payment batches and their lines, the ledger of
//! paid benefit months whose primary key `(nik, month)` makes a payment exactly once,
//! the bank's returns, card feeds and flags, sanctions, and the audit trail.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use sqlx::{Connection, Row};

use crate::{values_sql, Backend, Result, Store, StoreError};

/// A student's bank account as the bank last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub nik: i64,
    pub account: String,
    pub holder: String,
    /// `active`, `dormant`, `closed` or `not_opened`.
    pub status: String,
    /// Why the last payment into it failed (empty when none or fixed since).
    pub hold: String,
}

/// A payment batch as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub batch: String,
    pub stage: String,
    /// The benefit months asked for (bit set over the stage's six months).
    pub months: i64,
    pub seq: i64,
    pub lines: i64,
    pub total: i64,
    pub file_name: String,
    pub file_sha256: String,
    pub created_at: String,
    pub created_by: String,
    /// The return file reconciled against it (empty until then).
    pub return_sha256: String,
    pub reconciled_at: String,
}

/// One line of a batch: one recipient, the months it pays and what.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayLine {
    pub line: i64,
    pub nik: i64,
    pub months: i64,
    pub name: String,
    pub account: String,
    pub level: String,
    pub kelurahan: String,
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub amount: i64,
    /// `sent`, `credited` or `failed`.
    pub status: String,
    pub reason: String,
}

/// Why recording a batch failed in a way the caller must report.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("a benefit month in this batch is already paid or being paid (another batch was recorded meanwhile): build the batch again")]
    AlreadyPaid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the bank said about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineReturn {
    pub line: i64,
    pub nik: i64,
    /// The months the line paid (to release them from the ledger when it failed).
    pub months: Vec<i64>,
    /// Empty when credited, else the reason code.
    pub failure: String,
}

/// A recorded sanction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sanction {
    pub nik: i64,
    pub seq: i64,
    pub category: String,
    pub evidence: String,
    pub act_date: String,
    pub school: String,
    /// First benefit month (YYYYMM) it stops.
    pub stop_from: i64,
    pub withdraw: i64,
    pub recorded_at: String,
    pub recorded_by: String,
    pub lifted_at: String,
    pub lifted_by: String,
    pub lift_school: String,
    pub lift_reason: String,
}

/// A card flag as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFlag {
    pub kind: String,
    pub period: String,
    pub nik: i64,
    pub merchant: String,
    pub value: i64,
    pub limit: i64,
    pub lines: String,
}

/// A card feed as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFeed {
    pub sha256: String,
    pub file_name: String,
    pub rows_total: i64,
    pub rows_bad: i64,
    pub cash: i64,
    pub purchases: i64,
    pub flags: i64,
    pub imported_at: String,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

const BATCH_COLUMNS: &str = "batch, stage, months, seq, lines, total, file_name, file_sha256, created_at, \
     created_by, return_sha256, reconciled_at";
/// A line's status as reconciled: a line still `sent` in a batch whose return file was
/// applied was credited (`l` is the line, `b` its batch).
const EFFECTIVE_STATUS: &str =
    "CASE WHEN l.status = 'sent' AND b.return_sha256 <> '' THEN 'credited' ELSE l.status END";

const LINE_COLUMNS: &str =
    "batch, line, nik, months, name, account, level, kelurahan, routine, periodic, school_fee, amount, status, reason";

async fn audit_in<'c, E>(
    conn: E,
    seq: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO money_audit (seq, at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(seq)
    .bind(crate::now())
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

async fn next_audit_seq<'c, E>(conn: E) -> Result<i64>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    Ok(sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM money_audit")
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

fn batch_from(r: &sqlx::any::AnyRow) -> Result<Batch> {
    let months: i32 = r.try_get("months")?;
    Ok(Batch {
        batch: r.try_get("batch")?,
        stage: r.try_get("stage")?,
        months: i64::from(months),
        seq: r.try_get("seq")?,
        lines: r.try_get("lines")?,
        total: r.try_get("total")?,
        file_name: r.try_get("file_name")?,
        file_sha256: r.try_get("file_sha256")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        return_sha256: r.try_get("return_sha256")?,
        reconciled_at: r.try_get("reconciled_at")?,
    })
}

fn sanction_from(r: &sqlx::any::AnyRow) -> Result<Sanction> {
    let seq: i32 = r.try_get("seq")?;
    let stop: i32 = r.try_get("stop_from")?;
    Ok(Sanction {
        nik: r.try_get("nik")?,
        seq: i64::from(seq),
        category: r.try_get("category")?,
        evidence: r.try_get("evidence")?,
        act_date: r.try_get("act_date")?,
        school: r.try_get("school")?,
        stop_from: i64::from(stop),
        withdraw: r.try_get("withdraw")?,
        recorded_at: r.try_get("recorded_at")?,
        recorded_by: r.try_get("recorded_by")?,
        lifted_at: r.try_get("lifted_at")?,
        lifted_by: r.try_get("lifted_by")?,
        lift_school: r.try_get("lift_school")?,
        lift_reason: r.try_get("lift_reason")?,
    })
}

/// A pay line as a CSV line for PostgreSQL's COPY (the text columns are digits, codes or
/// names: quoted, with quotes doubled).
fn copy_line(buf: &mut String, batch: &str, l: &PayLine) {
    use std::fmt::Write;
    fn text(buf: &mut String, s: &str) {
        buf.push('"');
        for c in s.chars() {
            if c == '"' {
                buf.push('"');
            }
            buf.push(c);
        }
        buf.push('"');
    }
    text(buf, batch);
    let _ = write!(buf, ",{},{},{},", l.line, l.nik, l.months);
    text(buf, &l.name);
    buf.push(',');
    text(buf, &l.account);
    buf.push(',');
    text(buf, &l.level);
    buf.push(',');
    text(buf, &l.kelurahan);
    let _ = write!(buf, ",{},{},{},{},", l.routine, l.periodic, l.school_fee, l.amount);
    text(buf, &l.status);
    buf.push(',');
    text(buf, &l.reason);
    buf.push('\n');
}

/// `INSERT INTO payment_months ... SELECT` expanding a batch's lines into one row per
/// benefit month: `months` are the stage's six months as YYYYMM, bit 0 first.
fn ledger_sql(months: &[i64; 6]) -> String {
    let table: Vec<String> =
        months.iter().enumerate().map(|(i, m)| format!("SELECT {} AS bit, {m} AS month", 1 << i)).collect();
    format!(
        "INSERT INTO payment_months (nik, month, batch, line) SELECT l.nik, m.month, l.batch, l.line \
         FROM pay_lines l JOIN ({}) m ON (l.months & m.bit) <> 0 WHERE l.batch = $1",
        table.join(" UNION ALL ")
    )
}

/// The rows of a JSON array of arrays bound as parameter `$n`, as a table with one
/// column `value` (each element; `value ->> 0` is its first field as text).
fn json_rows(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("json_each(${n})"),
        Backend::Postgres => format!("json_array_elements(${n}::json) AS je(value)"),
    }
}

/// A text as an SQLite string literal: in single quotes, a quote doubled (the only escape
/// SQLite's literals have). A NUL, which would end the statement early, is refused.
fn sql_text(s: &str) -> Result<String> {
    if s.contains('\0') {
        return Err(StoreError::Corrupt(format!("a NUL character in {:?}", s.replace('\0', "\\0"))));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

/// The elements of a flat JSON array bound as parameter `$n`, as a table with one text
/// column `value`.
fn json_values(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => format!("json_each(${n})"),
        Backend::Postgres => format!("json_array_elements_text(${n}::json) AS je(value)"),
    }
}

/// An aggregate turning rows of `fields` into one JSON array of arrays (text).
fn json_agg(backend: Backend, fields: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_group_array(json_array({fields}))"),
        Backend::Postgres => format!("CAST(json_agg(json_build_array({fields})) AS TEXT)"),
    }
}

/// One recipient of amendment 0 with what paying needs: the decree's amounts, the
/// account (if any) and the months already paid.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
pub struct PayInput {
    pub nik: String,
    pub level: String,
    pub kelurahan: String,
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub account: String,
    pub holder: String,
    /// Empty when there is no account.
    pub status: String,
    pub hold: String,
    pub paid: i64,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation() || d.code().is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}

impl Store {
    // ------------------------------------------------------------------ audit

    /// The audit trail, oldest first; only entries about `subject` when given.
    pub async fn audit_trail(&self, subject: Option<&str>) -> Result<Vec<AuditEntry>> {
        let rows = match subject {
            Some(s) => {
                sqlx::query("SELECT * FROM money_audit WHERE subject = $1 ORDER BY seq")
                    .bind(s)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query("SELECT * FROM money_audit ORDER BY seq").fetch_all(&self.pool).await?,
        };
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------ accounts

    /// Inserts or replaces accounts (the bank's latest word per NIK) in one transaction,
    /// audited. Returns how many rows were written.
    pub async fn upsert_accounts(&self, file_sha256: &str, rows: &[Account], actor: &str) -> Result<u64> {
        let now = crate::now();
        let mut tx = self.begin_write().await?;
        for chunk in rows.chunks(1000) {
            let sql = values_sql(
                self.backend,
                "INSERT INTO accounts (nik, account, holder, status, hold, file_sha256, updated_at)",
                7,
                chunk.len(),
            ) + " ON CONFLICT (nik) DO UPDATE SET account = excluded.account, holder = excluded.holder, \
                 status = excluded.status, hold = '', file_sha256 = excluded.file_sha256, updated_at = excluded.updated_at";
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(a.nik)
                    .bind(&a.account)
                    .bind(&a.holder)
                    .bind(&a.status)
                    .bind("")
                    .bind(file_sha256)
                    .bind(&now);
            }
            q.execute(&mut *tx).await?;
        }
        let seq = next_audit_seq(&mut *tx).await?;
        let detail = format!("{} accounts", rows.len());
        audit_in(&mut *tx, seq, actor, "accounts.import", file_sha256, &detail).await?;
        tx.commit().await?;
        self.audit(actor, "accounts.import", file_sha256, &detail, "").await?;
        Ok(rows.len() as u64)
    }

    /// Every account, by NIK.
    pub async fn accounts(&self) -> Result<HashMap<i64, Account>> {
        let mut out = HashMap::new();
        let mut rows =
            sqlx::query("SELECT nik, account, holder, status, hold FROM accounts").fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let a = Account {
                nik: r.try_get(0)?,
                account: r.try_get(1)?,
                holder: r.try_get(2)?,
                status: r.try_get(3)?,
                hold: r.try_get(4)?,
            };
            out.insert(a.nik, a);
        }
        Ok(out)
    }

    pub async fn account(&self, nik: i64) -> Result<Option<Account>> {
        let r = sqlx::query("SELECT nik, account, holder, status, hold FROM accounts WHERE nik = $1")
            .bind(nik)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(Account {
                nik: r.try_get(0)?,
                account: r.try_get(1)?,
                holder: r.try_get(2)?,
                status: r.try_get(3)?,
                hold: r.try_get(4)?,
            })
        })
        .transpose()
    }

    // ------------------------------------------------------------------ the ledger

    /// The months of `months` (YYYYMM, bit 0 first) already sent or credited, per NIK, as
    /// a bit set.
    pub async fn paid_months(&self, months: &[i64; 6]) -> Result<HashMap<i64, u8>> {
        let cases: String =
            months.iter().enumerate().map(|(i, m)| format!(" WHEN {m} THEN {}", 1 << i)).collect();
        let sql = format!(
            "SELECT nik, CAST(SUM(CASE month{cases} ELSE 0 END) AS BIGINT) FROM payment_months \
             WHERE month BETWEEN $1 AND $2 GROUP BY nik"
        );
        let mut out = HashMap::new();
        let mut rows = sqlx::query(&sql).bind(months[0]).bind(months[5]).fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let nik: i64 = r.try_get(0)?;
            let bits: i64 = r.try_get(1)?;
            out.insert(nik, bits as u8);
        }
        Ok(out)
    }

    /// The recipients of a stage's decree (amendment 0) joined with their accounts and
    /// the months of `months` already paid, in one query returning one JSON text: a
    /// row-per-recipient stream costs several microseconds a row in the driver.
    pub async fn pay_inputs(&self, stage: kjp_domain::Stage, months: &[i64; 6]) -> Result<Vec<PayInput>> {
        let cases: String =
            months.iter().enumerate().map(|(i, m)| format!(" WHEN {m} THEN {}", 1 << i)).collect();
        let agg = json_agg(
            self.backend,
            "e.nik, e.level, e.kelurahan, e.routine, e.periodic, e.school_fee, COALESCE(a.account, ''), \
             COALESCE(a.holder, ''), COALESCE(a.status, ''), COALESCE(a.hold, ''), COALESCE(p.bits, 0)",
        );
        let sql = format!(
            "SELECT {agg} FROM decree_entries e \
             LEFT JOIN accounts a ON a.nik = CAST(e.nik AS BIGINT) \
             LEFT JOIN (SELECT nik, CAST(SUM(CASE month{cases} ELSE 0 END) AS BIGINT) AS bits FROM payment_months \
                        WHERE month BETWEEN $2 AND $3 GROUP BY nik) p ON p.nik = CAST(e.nik AS BIGINT) \
             WHERE e.stage = $1 AND e.amendment = 0 AND e.status = 'recipient'"
        );
        let text: Option<String> = sqlx::query(&sql)
            .bind(stage.to_string())
            .bind(months[0])
            .bind(months[5])
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let Some(text) = text else { return Ok(Vec::new()) };
        let mut rows: Vec<PayInput> =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("pay inputs: {e}")))?;
        rows.sort_unstable_by(|a, b| a.nik.cmp(&b.nik));
        Ok(rows)
    }

    /// The months of `months` already paid to one child, as a bit set.
    pub async fn paid_bits(&self, nik: i64, months: &[i64; 6]) -> Result<u8> {
        let rows = sqlx::query("SELECT month FROM payment_months WHERE nik = $1")
            .bind(nik)
            .fetch_all(&self.pool)
            .await?;
        let mut bits = 0u8;
        for r in &rows {
            let m: i32 = r.try_get(0)?;
            if let Some(i) = months.iter().position(|x| *x == i64::from(m)) {
                bits |= 1 << i;
            }
        }
        Ok(bits)
    }

    /// Names of a stage's eligible children, by NIK (what a payment line says).
    pub async fn recipient_names(&self, stage: kjp_domain::Stage) -> Result<HashMap<i64, String>> {
        let mut out = HashMap::new();
        let mut rows =
            sqlx::query("SELECT nik, name FROM decisions WHERE stage = $1 AND status = 'eligible'")
                .bind(stage.to_string())
                .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let nik: String = r.try_get(0)?;
            if let Ok(n) = nik.parse::<i64>() {
                out.insert(n, r.try_get(1)?);
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ batches

    pub async fn batch(&self, batch: &str) -> Result<Option<Batch>> {
        let r = sqlx::query(&format!("SELECT {BATCH_COLUMNS} FROM pay_batches WHERE batch = $1"))
            .bind(batch)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| batch_from(&r)).transpose()
    }

    /// The batches of a stage, oldest first.
    pub async fn batches(&self, stage: kjp_domain::Stage) -> Result<Vec<Batch>> {
        let rows =
            sqlx::query(&format!("SELECT {BATCH_COLUMNS} FROM pay_batches WHERE stage = $1 ORDER BY seq"))
                .bind(stage.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(batch_from).collect()
    }

    /// A batch's lines, in line order (one JSON text from the database, see `pay_inputs`).
    pub async fn batch_lines(&self, batch: &str) -> Result<Vec<PayLine>> {
        let agg = json_agg(
            self.backend,
            &format!(
                "l.line, l.nik, l.months, l.name, l.account, l.level, l.kelurahan, l.routine, l.periodic, l.school_fee, \
                 l.amount, {EFFECTIVE_STATUS}, l.reason"
            ),
        );
        let sql = format!(
            "SELECT {agg} FROM pay_lines l JOIN pay_batches b ON b.batch = l.batch WHERE l.batch = $1"
        );
        let text: Option<String> = sqlx::query(&sql).bind(batch).fetch_one(&self.pool).await?.try_get(0)?;
        let Some(text) = text else { return Ok(Vec::new()) };
        type Raw = (i64, i64, i64, String, String, String, String, i64, i64, i64, i64, String, String);
        let raw: Vec<Raw> =
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("batch lines: {e}")))?;
        let mut out: Vec<PayLine> = raw
            .into_iter()
            .map(|r| PayLine {
                line: r.0,
                nik: r.1,
                months: r.2,
                name: r.3,
                account: r.4,
                level: r.5,
                kelurahan: r.6,
                routine: r.7,
                periodic: r.8,
                school_fee: r.9,
                amount: r.10,
                status: r.11,
                reason: r.12,
            })
            .collect();
        out.sort_unstable_by_key(|l| l.line);
        Ok(out)
    }

    /// Records a batch, its lines and their months in the ledger, in one transaction.
    /// Returns `false` (and changes nothing) when a batch with this id exists already.
    /// A month already in the ledger for one of the children fails the whole batch with
    /// [`PayError::AlreadyPaid`]: the database, not only the caller, keeps payments
    /// exactly once. `months` are the stage's six benefit months as YYYYMM.
    pub async fn record_batch(
        &self,
        b: &Batch,
        lines: &[PayLine],
        months: &[i64; 6],
    ) -> Result<bool, PayError> {
        if self.batch(&b.batch).await?.is_some() {
            return Ok(false);
        }
        let result = match self.backend {
            Backend::Sqlite => self.record_batch_sqlite(b, lines, months).await,
            Backend::Postgres => self.record_batch_postgres(b, lines, months).await,
        };
        match result {
            Ok(()) => Ok(true),
            Err(StoreError::Db(e)) if is_unique_violation(&e) => {
                // Either the same batch was recorded meanwhile (fine) or another one paid
                // some of these months (refused).
                if self.batch(&b.batch).await?.is_some() {
                    Ok(false)
                } else {
                    Err(PayError::AlreadyPaid)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn record_batch_sqlite(&self, b: &Batch, lines: &[PayLine], months: &[i64; 6]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("PRAGMA cache_size = -262144").execute(&mut *tx).await?;
        let seq = insert_batch_row(&mut tx, b).await?;
        let _ = seq;
        // The lines go in as multi-row VALUES of literals, 5,000 rows a statement: binding
        // fourteen values a row through the driver, or extracting them from JSON, costs
        // several times SQLite's own insert. Numbers are written by Rust; every text goes
        // through `sql_text`, which quotes it as SQLite requires.
        let batch = sql_text(&b.batch)?;
        for chunk in lines.chunks(5_000) {
            use std::fmt::Write;
            let mut sql = String::with_capacity(chunk.len() * 170 + 200);
            let _ = write!(sql, "INSERT INTO pay_lines ({LINE_COLUMNS}) VALUES ");
            for (i, l) in chunk.iter().enumerate() {
                let _ = write!(
                    sql,
                    "{}({batch},{},{},{},{},{},{},{},{},{},{},{},'sent','')",
                    if i == 0 { "" } else { "," },
                    l.line,
                    l.nik,
                    l.months,
                    sql_text(&l.name)?,
                    sql_text(&l.account)?,
                    sql_text(&l.level)?,
                    sql_text(&l.kelurahan)?,
                    l.routine,
                    l.periodic,
                    l.school_fee,
                    l.amount
                );
            }
            sqlx::raw_sql(&sql).execute(&mut *tx).await?;
        }
        sqlx::query(&ledger_sql(months)).bind(&b.batch).execute(&mut *tx).await?;
        let aseq = next_audit_seq(&mut *tx).await?;
        let detail =
            format!("stage {}, {} lines, total {}, file sha256 {}", b.stage, b.lines, b.total, b.file_sha256);
        audit_in(&mut *tx, aseq, &b.created_by, "pay.batch", &b.batch, &detail).await?;
        tx.commit().await?;
        self.audit(&b.created_by, "pay.batch", &b.batch, &detail, "").await?;
        Ok(())
    }

    async fn record_batch_postgres(&self, b: &Batch, lines: &[PayLine], months: &[i64; 6]) -> Result<()> {
        let mut conn = sqlx::postgres::PgConnection::connect(&self.url).await?;
        let mut tx = conn.begin().await?;
        // One batch at a time: serialise on the batches table.
        sqlx::query("LOCK TABLE pay_batches IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await?;
        let seq: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM pay_batches")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(&format!(
            "INSERT INTO pay_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '')"
        ))
        .bind(&b.batch)
        .bind(&b.stage)
        .bind(b.months as i32)
        .bind(seq)
        .bind(b.lines)
        .bind(b.total)
        .bind(&b.file_name)
        .bind(&b.file_sha256)
        .bind(&b.created_at)
        .bind(&b.created_by)
        .execute(&mut *tx)
        .await?;
        let mut copy =
            tx.copy_in_raw(&format!("COPY pay_lines ({LINE_COLUMNS}) FROM STDIN WITH (FORMAT csv)")).await?;
        let mut buf = String::with_capacity(1 << 20);
        for l in lines {
            copy_line(&mut buf, &b.batch, l);
            if buf.len() > 1 << 20 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes()).await?;
        }
        copy.finish().await?;
        sqlx::query(&ledger_sql(months)).bind(&b.batch).execute(&mut *tx).await?;
        let aseq: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM money_audit")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let detail =
            format!("stage {}, {} lines, total {}, file sha256 {}", b.stage, b.lines, b.total, b.file_sha256);
        sqlx::query("INSERT INTO money_audit (seq, at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(aseq)
            .bind(crate::now())
            .bind(&b.created_by)
            .bind("pay.batch")
            .bind(&b.batch)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.close().await?;
        Ok(())
    }

    /// Applies the bank's return for a batch in one transaction: failed lines are marked
    /// with their reason and their months leave the ledger (owed again); every other line
    /// still `sent` is credited. Refused if the batch was reconciled already with another
    /// file; the same file again changes nothing (`false`).
    pub async fn apply_return(
        &self,
        batch: &str,
        return_sha256: &str,
        failures: &[LineReturn],
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done: Option<String> = sqlx::query("SELECT return_sha256 FROM pay_batches WHERE batch = $1")
            .bind(batch)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match done.as_deref() {
            None => return Err(StoreError::Corrupt(format!("no batch {batch}"))),
            Some("") => {}
            Some(s) if s == return_sha256 => return Ok(false),
            Some(s) => {
                return Err(StoreError::Corrupt(format!(
                    "batch {batch} was reconciled already with another return file (sha256 {s})"
                )))
            }
        }
        // The failures go in as JSON arrays of line numbers and of NIKs, one statement
        // per reason rather than one per line.
        let from = json_values(self.backend, 2);
        let mut by_reason: std::collections::BTreeMap<&str, (Vec<i64>, Vec<i64>)> = Default::default();
        for f in failures {
            let e = by_reason.entry(f.failure.as_str()).or_default();
            e.0.push(f.line);
            e.1.push(f.nik);
        }
        for (reason, (lines, niks)) in &by_reason {
            let lines = serde_json::to_string(lines).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let niks = serde_json::to_string(niks).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(&format!(
                "UPDATE pay_lines SET status = 'failed', reason = $3 \
                 WHERE batch = $1 AND line IN (SELECT CAST(value AS INTEGER) FROM {from})"
            ))
            .bind(batch)
            .bind(&lines)
            .bind(*reason)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE accounts SET hold = $1 WHERE nik IN (SELECT CAST(value AS BIGINT) FROM {from})"
            ))
            .bind(*reason)
            .bind(&niks)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM payment_months WHERE batch = $1 AND nik IN (SELECT CAST(value AS BIGINT) FROM {from})"
            ))
            .bind(batch)
            .bind(&niks)
            .execute(&mut *tx)
            .await?;
        }
        // Every other line is credited: recorded once on the batch (`return_sha256`), not
        // by rewriting hundreds of thousands of lines (see `EFFECTIVE_STATUS`).
        sqlx::query("UPDATE pay_batches SET return_sha256 = $2, reconciled_at = $3 WHERE batch = $1")
            .bind(batch)
            .bind(return_sha256)
            .bind(crate::now())
            .execute(&mut *tx)
            .await?;
        let seq = next_audit_seq(&mut *tx).await?;
        let detail = format!("return file sha256 {return_sha256}, {} failed lines", failures.len());
        audit_in(&mut *tx, seq, actor, "pay.reconcile", batch, &detail).await?;
        tx.commit().await?;
        self.audit(actor, "pay.reconcile", batch, &detail, "").await?;
        Ok(true)
    }

    /// Count and sum of a batch's lines by status.
    pub async fn batch_status_totals(&self, batch: &str) -> Result<Vec<(String, i64, i64)>> {
        let sql = format!(
            "SELECT {EFFECTIVE_STATUS} AS st, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) \
             FROM pay_lines l JOIN pay_batches b ON b.batch = l.batch WHERE l.batch = $1 GROUP BY 1 ORDER BY 1"
        );
        let rows = sqlx::query(&sql).bind(batch).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    /// Count and sum of a batch's lines by level and city (the kelurahan's first five
    /// characters, e.g. `31.71`).
    pub async fn batch_totals(&self, batch: &str) -> Result<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT level, SUBSTR(kelurahan, 1, 5), CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(amount), 0) AS BIGINT) \
             FROM pay_lines WHERE batch = $1 GROUP BY level, SUBSTR(kelurahan, 1, 5) ORDER BY 1, 2",
        )
        .bind(batch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))).collect()
    }

    /// The total credited to a child over every batch.
    pub async fn credited_total(&self, nik: i64) -> Result<i64> {
        Ok(sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) FROM pay_lines l JOIN pay_batches b ON b.batch = l.batch \
             WHERE l.nik = $1 AND {EFFECTIVE_STATUS} = 'credited'"
        ))
        .bind(nik)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    /// The last benefit month (YYYYMM) sent or credited to a child, if any.
    pub async fn last_paid_month(&self, nik: i64) -> Result<Option<i64>> {
        let m: Option<i32> = sqlx::query("SELECT MAX(month) FROM payment_months WHERE nik = $1")
            .bind(nik)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(m.map(i64::from))
    }

    // ------------------------------------------------------------------ card feeds

    pub async fn card_feed(&self, sha256: &str) -> Result<Option<CardFeed>> {
        let r = sqlx::query("SELECT * FROM card_feeds WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(CardFeed {
                sha256: r.try_get("sha256")?,
                file_name: r.try_get("file_name")?,
                rows_total: r.try_get("rows_total")?,
                rows_bad: r.try_get("rows_bad")?,
                cash: r.try_get("cash")?,
                purchases: r.try_get("purchases")?,
                flags: r.try_get("flags")?,
                imported_at: r.try_get("imported_at")?,
            })
        })
        .transpose()
    }

    /// Records a card feed: what each card spent and the flags, in one transaction.
    /// Returns `false` (nothing changed) when the feed was recorded already.
    pub async fn record_card_feed(
        &self,
        feed: &CardFeed,
        spending: &[(i64, i64, i64)],
        flags: &[CardFlag],
        actor: &str,
    ) -> Result<bool> {
        if self.card_feed(&feed.sha256).await?.is_some() {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO card_feeds (sha256, file_name, rows_total, rows_bad, cash, purchases, flags, imported_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&feed.sha256)
        .bind(&feed.file_name)
        .bind(feed.rows_total)
        .bind(feed.rows_bad)
        .bind(feed.cash)
        .bind(feed.purchases)
        .bind(feed.flags)
        .bind(&feed.imported_at)
        .execute(&mut *tx)
        .await?;
        // As JSON text, expanded by the database: one value bound per 100,000 cards.
        let insert = format!(
            "INSERT INTO card_spending (feed, nik, cash, purchases) SELECT $1, CAST(value ->> 0 AS BIGINT), \
             CAST(value ->> 1 AS BIGINT), CAST(value ->> 2 AS BIGINT) FROM {}",
            json_rows(self.backend, 2)
        );
        for chunk in spending.chunks(100_000) {
            let json = serde_json::to_string(chunk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(&insert).bind(&feed.sha256).bind(json).execute(&mut *tx).await?;
        }
        for (i, chunk) in flags.chunks(1000).enumerate() {
            let sql = values_sql(
                self.backend,
                "INSERT INTO card_flags (feed, seq, kind, period, nik, merchant, value, lim, lines)",
                9,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for (j, f) in chunk.iter().enumerate() {
                q = q
                    .bind(&feed.sha256)
                    .bind((i * 1000 + j) as i32)
                    .bind(&f.kind)
                    .bind(&f.period)
                    .bind(f.nik)
                    .bind(&f.merchant)
                    .bind(f.value)
                    .bind(f.limit)
                    .bind(&f.lines);
            }
            q.execute(&mut *tx).await?;
        }
        let seq = next_audit_seq(&mut *tx).await?;
        let detail = format!("{} rows, {} flags", feed.rows_total, feed.flags);
        audit_in(&mut *tx, seq, actor, "transactions.import", &feed.sha256, &detail).await?;
        tx.commit().await?;
        self.audit(actor, "transactions.import", &feed.sha256, &detail, "").await?;
        Ok(true)
    }

    /// The flags of a feed, in order.
    pub async fn card_flags(&self, feed: &str) -> Result<Vec<CardFlag>> {
        let rows = sqlx::query("SELECT * FROM card_flags WHERE feed = $1 ORDER BY seq")
            .bind(feed)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CardFlag {
                    kind: r.try_get("kind")?,
                    period: r.try_get("period")?,
                    nik: r.try_get("nik")?,
                    merchant: r.try_get("merchant")?,
                    value: r.try_get("value")?,
                    limit: r.try_get("lim")?,
                    lines: r.try_get("lines")?,
                })
            })
            .collect()
    }

    /// What a child's card spent over every feed (cash plus purchases).
    pub async fn spent_total(&self, nik: i64) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT CAST(COALESCE(SUM(cash + purchases), 0) AS BIGINT) FROM card_spending WHERE nik = $1",
        )
        .bind(nik)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?)
    }

    // ------------------------------------------------------------------ sanctions

    /// Records a sanction (its stop month and withdrawal computed by the caller), audited.
    /// Refused while another sanction of the child is in force.
    pub async fn add_sanction(&self, s: &Sanction) -> Result<Sanction> {
        let mut tx = self.begin_write().await?;
        let active: i64 =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM sanctions WHERE nik = $1 AND lifted_at = ''")
                .bind(s.nik)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        if active > 0 {
            return Err(StoreError::Corrupt(
                "this child has a sanction in force already: lift it first".into(),
            ));
        }
        let seq: i64 =
            sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM sanctions WHERE nik = $1")
                .bind(s.nik)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
        sqlx::query(
            "INSERT INTO sanctions (nik, seq, category, evidence, act_date, school, stop_from, withdraw, recorded_at, \
             recorded_by, lifted_at, lifted_by, lift_school, lift_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '', '', '')",
        )
        .bind(s.nik)
        .bind(seq as i32)
        .bind(&s.category)
        .bind(&s.evidence)
        .bind(&s.act_date)
        .bind(&s.school)
        .bind(s.stop_from as i32)
        .bind(s.withdraw)
        .bind(&s.recorded_at)
        .bind(&s.recorded_by)
        .execute(&mut *tx)
        .await?;
        let aseq = next_audit_seq(&mut *tx).await?;
        let detail = format!(
            "sanction {seq}: {} on {} recommended by school {}; payments stop from {}; Rp {} marked for withdrawal; evidence: {}",
            s.category, s.act_date, s.school, s.stop_from, s.withdraw, s.evidence
        );
        audit_in(&mut *tx, aseq, &s.recorded_by, "sanction.add", &s.nik.to_string(), &detail).await?;
        tx.commit().await?;
        // The shared log is read in the console: the NIK masked there, as everywhere.
        self.audit(&s.recorded_by, "sanction.add", &masked_nik(s.nik), &detail, "").await?;
        let mut out = s.clone();
        out.seq = seq;
        Ok(out)
    }

    /// Lifts the sanction in force, audited. `None` when there is none.
    pub async fn lift_sanction(
        &self,
        nik: i64,
        school: &str,
        reason: &str,
        by: &str,
    ) -> Result<Option<Sanction>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT * FROM sanctions WHERE nik = $1 AND lifted_at = ''")
            .bind(nik)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut s = sanction_from(&row)?;
        s.lifted_at = crate::now();
        s.lifted_by = by.into();
        s.lift_school = school.into();
        s.lift_reason = reason.into();
        sqlx::query(
            "UPDATE sanctions SET lifted_at = $3, lifted_by = $4, lift_school = $5, lift_reason = $6 WHERE nik = $1 AND seq = $2",
        )
        .bind(nik)
        .bind(s.seq as i32)
        .bind(&s.lifted_at)
        .bind(by)
        .bind(school)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let aseq = next_audit_seq(&mut *tx).await?;
        let detail = format!("sanction {} lifted on the recommendation of school {school}: {reason}", s.seq);
        audit_in(&mut *tx, aseq, by, "sanction.lift", &nik.to_string(), &detail).await?;
        tx.commit().await?;
        self.audit(by, "sanction.lift", &masked_nik(nik), &detail, "").await?;
        Ok(Some(s))
    }

    /// Every sanction, or one child's, in order.
    pub async fn sanctions(&self, nik: Option<i64>) -> Result<Vec<Sanction>> {
        let rows = match nik {
            Some(n) => {
                sqlx::query("SELECT * FROM sanctions WHERE nik = $1 ORDER BY seq")
                    .bind(n)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => sqlx::query("SELECT * FROM sanctions ORDER BY nik, seq").fetch_all(&self.pool).await?,
        };
        rows.iter().map(sanction_from).collect()
    }

    /// The status page's view: the child's latest sanction, in force or lifted. `None`
    /// when the child was never sanctioned.
    pub async fn sanction_status(&self, nik: i64) -> Result<Option<Sanction>> {
        Ok(self.sanctions(Some(nik)).await?.pop())
    }

    /// The months (YYYYMM, both ends inclusive) each sanction stops, per child. A sanction
    /// in force stops every month from its `stop_from`; a lifted one stops them up to the
    /// end of the stage (half-year) in which it was lifted: the stopped months are not paid
    /// back, and a later stage that decrees the child again pays it.
    pub async fn sanction_stops(&self) -> Result<HashMap<i64, Vec<(i64, i64)>>> {
        let rows =
            sqlx::query("SELECT nik, stop_from, lifted_at FROM sanctions").fetch_all(&self.pool).await?;
        let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for r in &rows {
            let nik: i64 = r.try_get(0)?;
            let stop: i32 = r.try_get(1)?;
            let lifted: String = r.try_get(2)?;
            out.entry(nik).or_default().push((i64::from(stop), stage_end(&lifted)));
        }
        Ok(out)
    }
}

/// The last benefit month (YYYYMM) of the stage a timestamp falls in: June or December of
/// its year. `i64::MAX` for an empty (not lifted) timestamp.
fn stage_end(at: &str) -> i64 {
    let year: Option<i64> = at.get(..4).and_then(|y| y.parse().ok());
    let month: Option<i64> = at.get(5..7).and_then(|m| m.parse().ok());
    match (year, month) {
        (Some(y), Some(m)) if m <= 6 => y * 100 + 6,
        (Some(y), Some(_)) => y * 100 + 12,
        _ => i64::MAX,
    }
}

async fn insert_batch_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, b: &Batch) -> Result<i64> {
    let seq: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM pay_batches")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(&format!(
        "INSERT INTO pay_batches ({BATCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '')"
    ))
    .bind(&b.batch)
    .bind(&b.stage)
    .bind(b.months as i32)
    .bind(seq)
    .bind(b.lines)
    .bind(b.total)
    .bind(&b.file_name)
    .bind(&b.file_sha256)
    .bind(&b.created_at)
    .bind(&b.created_by)
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// A NIK as the shared audit log shows it: [`kjp_domain::Nik::masked`].
fn masked_nik(nik: i64) -> String {
    kjp_domain::Nik::parse(&format!("{nik:016}")).map_or_else(|_| "(not a NIK)".into(), |n| n.masked())
}

#[cfg(test)]
mod tests {
    #[test]
    fn texts_are_quoted_as_sqlite_literals() {
        assert_eq!(super::sql_text("Adi").unwrap(), "'Adi'");
        assert_eq!(super::sql_text("O'Neil'); DROP TABLE x; --").unwrap(), "'O''Neil''); DROP TABLE x; --'");
        assert!(super::sql_text("a\0b").is_err());
    }

    #[test]
    fn a_lifted_sanction_stops_months_to_the_end_of_its_stage() {
        assert_eq!(super::stage_end(""), i64::MAX);
        assert_eq!(super::stage_end("2025-03-20T10:00:00.000Z"), 202506);
        assert_eq!(super::stage_end("2025-07-01T00:00:00.000Z"), 202512);
    }
}
