//! Persistence: SQLite (embedded default, one file created on first use) and PostgreSQL
//! (selected by a `postgres://` URL), through one code path (`sqlx::Any`) and one set of
//! portable, embedded, forward-only migrations.
//!
//! Only this crate knows SQL. Bulk writes are batched in one transaction; on PostgreSQL
//! they use COPY. Agency files themselves are kept as content-addressed snapshot files in
//! the data directory next to the database; the database records what they are.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use futures_util::TryStreamExt;
use kjp_domain::Stage;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Row};

mod audit;
mod clients;
mod complaints;
mod decree;
mod funding;
mod migrate;
pub mod money;
mod ops;
mod registry;
mod scoped;
mod staff;

pub use audit::{AuditBreak, AuditEntry};
pub use clients::ApiClient;
pub use complaints::{Complaint, ComplaintCount, ComplaintEvent};
pub use decree::{DecreeEntry, DecreeRecord, Resolution};
pub use funding::{Correction, FundingClaim};
pub use migrate::{Applied, MIGRATIONS};
pub use ops::{RegistryQueues, StageProgress};
pub use registry::{Callback, Cancelled, HistoryRow, RegistryEvent, Subscription, TxnRecord};
pub use scoped::Within;
pub use staff::{LoginAttempt, StaffSession, StaffUser};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?}: expected sqlite:PATH or postgres://...")]
    BadUrl(String),
    #[error("database: {0}")]
    Db(sqlx::Error),
    #[error("migration {version} ({name}) was edited after it was applied (sha256 {applied} in the database, {now} in the binary); migrations are forward-only: add a new one")]
    MigrationEdited { version: i64, name: String, applied: String, now: String },
    #[error("stage {0} does not exist: open it first with `kjp stage open`")]
    NoStage(Stage),
    #[error("stage {0} is decreed: its decisions cannot change (a correction is an amendment)")]
    Decreed(Stage),
    #[error("stage {0} is not decreed: correct its decisions with `kjp stage resolve` or a new run")]
    NotDecreed(Stage),
    #[error("{0}")]
    Unsupported(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("the database is busy ({0}): try again")]
    Busy(String),
    #[error("stage {0} changed while the run was deciding (a conflict was settled or the budget ceiling set): nothing was written; run it again")]
    Changed(Stage),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

impl From<sqlx::Error> for StoreError {
    /// A lock wait that timed out (SQLite's busy timeout, a PostgreSQL deadlock or
    /// serialization failure) is `Busy`, for the caller to retry; anything else is `Db`.
    fn from(e: sqlx::Error) -> StoreError {
        if is_lock_timeout(&e) {
            StoreError::Busy(e.to_string())
        } else {
            StoreError::Db(e)
        }
    }
}

impl StoreError {
    /// True when the request may succeed if retried later: the database was busy.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }
}

/// SQLite's SQLITE_BUSY and SQLITE_LOCKED (primary codes 5 and 6, with their extended
/// codes); PostgreSQL's serialization failure, deadlock and lock-not-available.
pub(crate) fn is_lock_timeout(e: &sqlx::Error) -> bool {
    use sqlx::error::DatabaseError as _;
    let sqlx::Error::Database(d) = e else { return false };
    if let Some(s) = d.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        return s.code().and_then(|c| c.parse::<i64>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6));
    }
    matches!(d.code().as_deref(), Some("40001" | "40P01" | "55P03"))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database connection pool plus the data directory for snapshot files.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    url: String,
    backend: Backend,
    data_dir: PathBuf,
}

/// An imported agency file: immutable, named by the sha256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub sha256: String,
    pub source: String,
    pub file_name: String,
    /// The content-addressed copy in the data directory.
    pub path: String,
    pub rows_total: i64,
    pub rows_good: i64,
    pub rows_bad: i64,
    pub report_path: String,
    pub imported_at: String,
    /// Import order: the latest snapshot of a source has the highest.
    pub seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Open,
    Verified,
    Decreed,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Open => "open",
            StageState::Verified => "verified",
            StageState::Decreed => "decreed",
        }
    }
    fn parse(s: &str) -> Result<StageState> {
        match s {
            "open" => Ok(StageState::Open),
            "verified" => Ok(StageState::Verified),
            "decreed" => Ok(StageState::Decreed),
            other => Err(StoreError::Corrupt(format!("unknown stage state {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    pub stage: Stage,
    pub as_of: NaiveDate,
    pub state: StageState,
    pub opened_at: String,
    /// The budget ceiling for the whole stage, in rupiah; `None`: every eligible child is
    /// funded.
    pub budget: Option<i64>,
}

/// One run of `kjp stage verify`: what it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub stage: Stage,
    pub run: i64,
    pub started_at: String,
    pub finished_at: String,
    pub policy_id: String,
    pub policy_version: String,
    pub policy_sha256: String,
    /// `source=sha256` pairs joined by `;`.
    pub snapshots: String,
    pub candidates: i64,
}

/// What a stage run's decisions were settled against: the stage's budget ceiling and its
/// settlements (NIK and when settled) as the run read them. [`Store::replace_decisions`]
/// writes the run only if they are still so, inside its transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunBasis {
    pub budget: Option<i64>,
    pub settled: Vec<(String, String)>,
}

impl RunBasis {
    pub fn new(budget: Option<i64>, resolutions: &[Resolution]) -> RunBasis {
        let mut settled: Vec<(String, String)> =
            resolutions.iter().map(|r| (r.nik.clone(), r.resolved_at.clone())).collect();
        settled.sort();
        RunBasis { budget, settled }
    }
}

/// One candidate's decision as stored. Text columns hold compact encodings written and
/// read by the import crate; the store does not interpret them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecisionRow {
    pub nik: String,
    pub kk: String,
    pub name: String,
    pub birth_date: String,
    pub status: String,
    pub grp: String,
    pub level: String,
    pub school: String,
    pub npsn: String,
    pub kelurahan: String,
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub monthly_total: i64,
    pub reasons: String,
    pub unknown: String,
    pub conflicts: String,
    pub evidence: String,
    pub facts: String,
}

const DECISION_COLUMNS: &str =
    "stage, nik, kk, name, birth_date, status, grp, level, school, npsn, kelurahan, \
     routine, periodic, school_fee, monthly_total, reasons, unknown, conflicts, evidence, facts";

/// A count and a rupiah sum for one group of decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub key: Vec<String>,
    pub count: i64,
    pub monthly: i64,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `data_dir` defaults to `<file>-data` next to a SQLite file, `./kjp-data` otherwise.
    pub async fn open(url: &str, data_dir: Option<PathBuf>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, connect_url, default_dir) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            if path.is_empty() {
                return Err(StoreError::BadUrl(url.into()));
            }
            let file = Path::new(path.split('?').next().unwrap_or(path));
            let stem =
                file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "kjp".into());
            let dir = file.parent().unwrap_or(Path::new(".")).join(format!("{stem}-data"));
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite:{path}{sep}mode=rwc"), dir)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string(), PathBuf::from("kjp-data"))
        } else {
            return Err(StoreError::BadUrl(url.into()));
        };
        let options = AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 8 });
        let pool = options.connect(&connect_url).await?;
        if backend == Backend::Sqlite {
            // WAL (kept in the file) lets readers, such as the status page, go on while a
            // stage run writes.
            sqlx::raw_sql("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        // Absolute, so that commands run from another directory find the same snapshots.
        let data_dir = data_dir.unwrap_or(default_dir);
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|error| StoreError::Io { path: data_dir.clone(), error })?;
        let store = Store { pool, url: url.to_string(), backend, data_dir };
        migrate::run(&store.pool).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that may write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads and then writes while another
    /// connection writes fails at once with "database is locked" (the busy timeout cannot
    /// apply to the upgrade), whereas this one waits its turn, up to the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// The migrations applied to this database (opening a store applies any missing).
    pub async fn migrations(&self) -> Result<Vec<Applied>> {
        migrate::applied(&self.pool).await
    }

    /// An online, consistent copy of a SQLite database into `out` (written under a
    /// temporary name and renamed, so `out` is whole or absent), and the snapshot files
    /// into `out_data` (only those not copied before: snapshots never change). Returns
    /// how many snapshot files were copied. PostgreSQL is backed up with `pg_dump`.
    pub async fn backup(&self, out: &Path, out_data: &Path) -> Result<usize> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "kjp backup copies a SQLite database; back up PostgreSQL with pg_dump (see docs/operations.md)".into(),
            ));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StoreError::Io { path, error }
        };
        if out.exists() {
            return Err(StoreError::Io {
                path: out.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "already exists: choose a new name",
                ),
            });
        }
        let tmp = out.with_extension("tmp-backup");
        let _ = std::fs::remove_file(&tmp);
        let target = tmp.to_string_lossy().replace('\'', "''");
        sqlx::raw_sql(&format!("VACUUM INTO '{target}'")).execute(&self.pool).await?;
        std::fs::rename(&tmp, out).map_err(io(out))?;
        let from = self.data_dir.join("snapshots");
        let to = out_data.join("snapshots");
        std::fs::create_dir_all(&to).map_err(io(&to))?;
        let mut copied = 0;
        if from.exists() {
            for entry in std::fs::read_dir(&from).map_err(io(&from))? {
                let entry = entry.map_err(io(&from))?;
                let dest = to.join(entry.file_name());
                if !dest.exists() {
                    let part = dest.with_extension("part");
                    std::fs::copy(entry.path(), &part).map_err(io(&part))?;
                    std::fs::rename(&part, &dest).map_err(io(&dest))?;
                    copied += 1;
                }
            }
        }
        Ok(copied)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where snapshot files and import reports live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---------------------------------------------------------------- snapshots

    pub async fn snapshot(&self, sha256: &str) -> Result<Option<Snapshot>> {
        let row = sqlx::query("SELECT * FROM snapshots WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| self.snapshot_from(&r)).transpose()
    }

    /// A snapshot row, its file found under this store's data directory when the path
    /// recorded at import no longer exists (a database restored from a backup elsewhere).
    fn snapshot_from(&self, r: &AnyRow) -> Result<Snapshot> {
        let mut s = snapshot_from(r)?;
        if !Path::new(&s.path).exists() {
            let moved = self.data_dir.join("snapshots").join(format!("{}.csv", s.sha256));
            if moved.exists() {
                s.path = moved.display().to_string();
            }
        }
        Ok(s)
    }

    /// Records a snapshot. Returns `false` (and changes nothing) if one with the same
    /// hash exists already.
    pub async fn insert_snapshot(&self, s: &Snapshot) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM snapshots")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let done = sqlx::query(
            "INSERT INTO snapshots (sha256, source, file_name, path, rows_total, rows_good, rows_bad, report_path, imported_at, seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&s.sha256)
        .bind(&s.source)
        .bind(&s.file_name)
        .bind(&s.path)
        .bind(s.rows_total)
        .bind(s.rows_good)
        .bind(s.rows_bad)
        .bind(&s.report_path)
        .bind(&s.imported_at)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes an earlier snapshot the current one of its source again (a new import event).
    pub async fn make_current(&self, sha256: &str) -> Result<Snapshot> {
        let mut tx = self.begin_write().await?;
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM snapshots")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query("UPDATE snapshots SET seq = $1, imported_at = $2 WHERE sha256 = $3")
            .bind(seq)
            .bind(now())
            .bind(sha256)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.snapshot(sha256).await?.ok_or_else(|| StoreError::Corrupt(format!("snapshot {sha256} vanished")))
    }

    /// The latest snapshot of every source.
    pub async fn latest_snapshots(&self) -> Result<Vec<Snapshot>> {
        let rows = sqlx::query(
            "SELECT s.* FROM snapshots s JOIN (SELECT source, MAX(seq) AS seq FROM snapshots GROUP BY source) m \
             ON s.source = m.source AND s.seq = m.seq ORDER BY s.source",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.snapshot_from(r)).collect()
    }

    // ---------------------------------------------------------------- policies

    /// Keeps a policy's text under its sha256 (once).
    pub async fn record_policy(&self, sha256: &str, source: &str, text: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO policies (sha256, source, text, recorded_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(source)
        .bind(text)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A recorded policy's source name and text.
    pub async fn policy_text(&self, sha256: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT source, text FROM policies WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    // ---------------------------------------------------------------- stages

    /// Opens a stage. Opening one that exists returns it unchanged (`false`).
    pub async fn open_stage(&self, stage: Stage, as_of: NaiveDate) -> Result<(StageRow, bool)> {
        let done = sqlx::query(
            "INSERT INTO stages (stage, year, half, as_of, state, opened_at) VALUES ($1, $2, $3, $4, 'open', $5) \
             ON CONFLICT (stage) DO NOTHING",
        )
        .bind(stage.to_string())
        .bind(stage.year())
        .bind(i32::from(stage.half()))
        .bind(as_of.to_string())
        .bind(now())
        .execute(&self.pool)
        .await?;
        let row = self.stage(stage).await?.ok_or(StoreError::NoStage(stage))?;
        Ok((row, done.rows_affected() == 1))
    }

    pub async fn stage(&self, stage: Stage) -> Result<Option<StageRow>> {
        let row = sqlx::query("SELECT stage, as_of, state, opened_at, budget FROM stages WHERE stage = $1")
            .bind(stage.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| stage_from(&r)).transpose()
    }

    pub async fn stages(&self) -> Result<Vec<StageRow>> {
        let rows =
            sqlx::query("SELECT stage, as_of, state, opened_at, budget FROM stages ORDER BY year, half")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(stage_from).collect()
    }

    /// The last run of a stage.
    pub async fn last_run(&self, stage: Stage) -> Result<Option<RunRecord>> {
        let row = sqlx::query("SELECT * FROM stage_runs WHERE stage = $1 ORDER BY run DESC LIMIT 1")
            .bind(stage.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from(&r)).transpose()
    }

    /// Replaces every decision of a stage with `rows`, records again the `resolutions`
    /// already applied to them (earlier settlements carried over to this run), records the
    /// run and marks the stage verified, all in one transaction: a crash leaves the
    /// previous run intact. Refused with [`StoreError::Changed`] if the stage's ceiling or
    /// settlements are no longer `basis`. Returns the run number.
    pub async fn replace_decisions(
        &self,
        run: &RunRecord,
        rows: &[DecisionRow],
        resolutions: &[Resolution],
        basis: &RunBasis,
    ) -> Result<i64> {
        let stage = run.stage.to_string();
        match self.backend {
            Backend::Sqlite => {
                let mut tx = self.begin_write().await?;
                let number = begin_run::<sqlx::Any>(&mut tx, run, basis, false).await?;
                // A stage run writes millions of rows in one transaction: give this
                // connection a page cache of 256 MB rather than the 2 MB default.
                sqlx::query("PRAGMA cache_size = -262144").execute(&mut *tx).await?;
                sqlx::query("DELETE FROM decisions WHERE stage = $1").bind(&stage).execute(&mut *tx).await?;
                for chunk in rows.chunks(1000) {
                    let sql = values_sql(
                        self.backend,
                        &format!("INSERT INTO decisions ({DECISION_COLUMNS})"),
                        20,
                        chunk.len(),
                    );
                    let mut q = sqlx::query(&sql);
                    for d in chunk {
                        q = q
                            .bind(&stage)
                            .bind(&d.nik)
                            .bind(&d.kk)
                            .bind(&d.name)
                            .bind(&d.birth_date)
                            .bind(&d.status)
                            .bind(&d.grp)
                            .bind(&d.level)
                            .bind(&d.school)
                            .bind(&d.npsn)
                            .bind(&d.kelurahan)
                            .bind(d.routine)
                            .bind(d.periodic)
                            .bind(d.school_fee)
                            .bind(d.monthly_total)
                            .bind(&d.reasons)
                            .bind(&d.unknown)
                            .bind(&d.conflicts)
                            .bind(&d.evidence)
                            .bind(&d.facts);
                    }
                    q.execute(&mut *tx).await?;
                }
                decree::record_resolutions::<sqlx::Any>(&mut tx, run.stage, resolutions).await?;
                tx.commit().await?;
                Ok(number)
            }
            Backend::Postgres => {
                // COPY needs the PostgreSQL connection itself, not the `Any` wrapper.
                let mut conn = sqlx::postgres::PgConnection::connect(&self.url).await?;
                let mut tx = conn.begin().await?;
                // The stage's row locked: two runs, or a run and a settlement, take turns.
                let number = begin_run::<sqlx::Postgres>(&mut tx, run, basis, true).await?;
                sqlx::query("DELETE FROM decisions WHERE stage = $1").bind(&stage).execute(&mut *tx).await?;
                let mut copy = tx
                    .copy_in_raw(&format!("COPY decisions ({DECISION_COLUMNS}) FROM STDIN WITH (FORMAT csv)"))
                    .await?;
                let mut buf = String::with_capacity(1 << 20);
                for d in rows {
                    copy_line(&mut buf, &stage, d);
                    if buf.len() > 1 << 20 {
                        copy.send(buf.as_bytes()).await?;
                        buf.clear();
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.as_bytes()).await?;
                }
                copy.finish().await?;
                decree::record_resolutions::<sqlx::Postgres>(&mut tx, run.stage, resolutions).await?;
                tx.commit().await?;
                Ok(number)
            }
        }
    }

    /// Calls `f` for every decision of a stage, in NIK order, without loading them all.
    pub async fn each_decision(&self, stage: Stage, mut f: impl FnMut(DecisionRow)) -> Result<u64> {
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE stage = $1 ORDER BY nik");
        let mut rows = sqlx::query(&sql).bind(stage.to_string()).fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            f(decision_from(&row)?);
            n += 1;
        }
        Ok(n)
    }

    /// Every decision of a stage with only what the public status check shows: NIK, name,
    /// birth date and reason codes (`DecisionRow` with the other fields empty). Much less
    /// to read than `each_decision` when the index is built for millions of children.
    pub async fn each_status_row(&self, stage: Stage, mut f: impl FnMut(DecisionRow)) -> Result<u64> {
        let mut rows = sqlx::query("SELECT nik, name, birth_date, reasons FROM decisions WHERE stage = $1")
            .bind(stage.to_string())
            .fetch(&self.pool);
        let mut n = 0;
        while let Some(row) = rows.try_next().await? {
            f(DecisionRow {
                nik: row.try_get(0)?,
                name: row.try_get(1)?,
                birth_date: row.try_get(2)?,
                reasons: row.try_get(3)?,
                ..DecisionRow::default()
            });
            n += 1;
        }
        Ok(n)
    }

    /// One decision.
    pub async fn decision(&self, stage: Stage, nik: &str) -> Result<Option<DecisionRow>> {
        let row =
            sqlx::query(&format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE stage = $1 AND nik = $2"))
                .bind(stage.to_string())
                .bind(nik)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| decision_from(&r)).transpose()
    }

    /// Counts and monthly sums of a stage's decisions grouped by `columns` (any of
    /// `status`, `level`, `school`, `grp`, `reasons`, `city`, `kecamatan`).
    pub async fn tally(&self, stage: Stage, columns: &[&str]) -> Result<Vec<Tally>> {
        let exprs: Vec<&str> = columns
            .iter()
            .map(|c| match *c {
                "status" => "status",
                "level" => "level",
                "school" => "school",
                "grp" => "grp",
                "reasons" => "reasons",
                "unknown" => "unknown",
                // Dotted kelurahan codes: 31.71 is the city, 31.71.01 the kecamatan.
                "city" => "SUBSTR(kelurahan, 1, 5)",
                "kecamatan" => "SUBSTR(kelurahan, 1, 8)",
                other => panic!("tally: unknown column {other}"),
            })
            .collect();
        let keys = exprs.join(", ");
        let sql = format!(
            "SELECT {keys}, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(monthly_total), 0) AS BIGINT) \
             FROM decisions WHERE stage = $1 GROUP BY {keys} ORDER BY {keys}"
        );
        let rows = sqlx::query(&sql).bind(stage.to_string()).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let n = exprs.len();
                Ok(Tally {
                    key: (0..n).map(|i| r.try_get::<String, _>(i)).collect::<Result<_, _>>()?,
                    count: r.try_get(n)?,
                    monthly: r.try_get(n + 1)?,
                })
            })
            .collect()
    }

    /// Compares a stage with an earlier one, candidate by candidate: the status now, the
    /// status then (`absent` when not a candidate then), the reasons now, and how many.
    /// Children who were candidates then but are not now come with status `absent`.
    pub async fn compare(&self, stage: Stage, previous: Stage) -> Result<Vec<Tally>> {
        let (now, then) = (stage.to_string(), previous.to_string());
        let mut out = Vec::new();
        let rows = sqlx::query(
            "SELECT c.status, COALESCE(p.status, 'absent'), c.reasons, CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(c.monthly_total), 0) AS BIGINT) \
             FROM decisions c LEFT JOIN decisions p ON p.stage = $2 AND p.nik = c.nik \
             WHERE c.stage = $1 GROUP BY c.status, COALESCE(p.status, 'absent'), c.reasons",
        )
        .bind(&now)
        .bind(&then)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            out.push(Tally {
                key: vec![r.try_get(0)?, r.try_get(1)?, r.try_get(2)?],
                count: r.try_get(3)?,
                monthly: r.try_get(4)?,
            });
        }
        let gone = sqlx::query(
            "SELECT p.status, CAST(COUNT(*) AS BIGINT) FROM decisions p \
             WHERE p.stage = $2 AND NOT EXISTS (SELECT 1 FROM decisions c WHERE c.stage = $1 AND c.nik = p.nik) \
             GROUP BY p.status",
        )
        .bind(&now)
        .bind(&then)
        .fetch_all(&self.pool)
        .await?;
        for r in &gone {
            out.push(Tally {
                key: vec!["absent".into(), r.try_get(0)?, String::new()],
                count: r.try_get(1)?,
                monthly: 0,
            });
        }
        Ok(out)
    }
}

/// Fails unless the stage exists and is not decreed (inside the caller's transaction).
/// With `lock` (PostgreSQL) the stage's row is locked until the transaction ends, so that
/// writers of a stage's decisions take turns, as SQLite's write lock makes them.
pub(crate) async fn ensure_not_decreed<DB>(conn: &mut DB::Connection, stage: Stage, lock: bool) -> Result<()>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let sql = if lock {
        "SELECT state FROM stages WHERE stage = $1 FOR UPDATE"
    } else {
        "SELECT state FROM stages WHERE stage = $1"
    };
    let state: Option<String> = sqlx::query::<DB>(sql)
        .bind(stage.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    match state.as_deref() {
        None => Err(StoreError::NoStage(stage)),
        Some("decreed") => Err(StoreError::Decreed(stage)),
        _ => Ok(()),
    }
}

/// Checks that the stage exists, is not decreed and still stands on `basis`, records the
/// run and marks the stage verified, on `conn` (inside the caller's transaction, which
/// holds SQLite's write lock, or with `lock` takes the stage's row). Generic so that the
/// `Any` path and PostgreSQL's COPY path share it.
async fn begin_run<DB>(
    conn: &mut DB::Connection,
    run: &RunRecord,
    basis: &RunBasis,
    lock: bool,
) -> Result<i64>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    ensure_not_decreed::<DB>(conn, run.stage, lock).await?;
    let stage = run.stage.to_string();
    let budget: Option<i64> = sqlx::query::<DB>("SELECT budget FROM stages WHERE stage = $1")
        .bind(stage.clone())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let mut settled: Vec<(String, String)> =
        sqlx::query::<DB>("SELECT nik, resolved_at FROM resolutions WHERE stage = $1")
            .bind(stage.clone())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
    settled.sort();
    if budget != basis.budget || settled != basis.settled {
        return Err(StoreError::Changed(run.stage));
    }
    let number: i64 = sqlx::query::<DB>(
        "SELECT CAST(COALESCE(MAX(run), 0) + 1 AS BIGINT) FROM stage_runs WHERE stage = $1",
    )
    .bind(stage.clone())
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    sqlx::query::<DB>(
        "INSERT INTO stage_runs (stage, run, started_at, finished_at, policy_id, policy_version, policy_sha256, snapshots, candidates) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(stage.clone())
    .bind(number as i32)
    .bind(run.started_at.clone())
    .bind(now())
    .bind(run.policy_id.clone())
    .bind(run.policy_version.clone())
    .bind(run.policy_sha256.clone())
    .bind(run.snapshots.clone())
    .bind(run.candidates)
    .execute(&mut *conn)
    .await?;
    sqlx::query::<DB>("UPDATE stages SET state = 'verified' WHERE stage = $1")
        .bind(stage)
        .execute(&mut *conn)
        .await?;
    Ok(number)
}

/// `PREFIX VALUES (...), (...)` for `rows` rows of `columns` values. PostgreSQL takes
/// numbered placeholders; SQLite gets `?`, bound by position: sqlx looks a numbered one
/// up by name, which is quadratic in a statement of thousands of values.
pub(crate) fn values_sql(backend: Backend, prefix: &str, columns: usize, rows: usize) -> String {
    use std::fmt::Write;
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 6);
    sql.push_str(prefix);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            let sep = if c == 0 { "" } else { ", " };
            let _ = match backend {
                Backend::Sqlite => write!(sql, "{sep}?"),
                Backend::Postgres => write!(sql, "{sep}${}", r * columns + c + 1),
            };
        }
        sql.push(')');
    }
    sql
}

/// One decision as a CSV line for PostgreSQL's COPY.
fn copy_line(buf: &mut String, stage: &str, d: &DecisionRow) {
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
    use std::fmt::Write;
    for (i, s) in [
        stage,
        &d.nik,
        &d.kk,
        &d.name,
        &d.birth_date,
        &d.status,
        &d.grp,
        &d.level,
        &d.school,
        &d.npsn,
        &d.kelurahan,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            buf.push(',');
        }
        text(buf, s);
    }
    let _ = write!(buf, ",{},{},{},{}", d.routine, d.periodic, d.school_fee, d.monthly_total);
    for s in [&d.reasons, &d.unknown, &d.conflicts, &d.evidence, &d.facts] {
        buf.push(',');
        text(buf, s);
    }
    buf.push('\n');
}

fn snapshot_from(r: &AnyRow) -> Result<Snapshot> {
    Ok(Snapshot {
        sha256: r.try_get("sha256")?,
        source: r.try_get("source")?,
        file_name: r.try_get("file_name")?,
        path: r.try_get("path")?,
        rows_total: r.try_get("rows_total")?,
        rows_good: r.try_get("rows_good")?,
        rows_bad: r.try_get("rows_bad")?,
        report_path: r.try_get("report_path")?,
        imported_at: r.try_get("imported_at")?,
        seq: r.try_get("seq")?,
    })
}

fn stage_from(r: &AnyRow) -> Result<StageRow> {
    let stage: String = r.try_get("stage")?;
    let as_of: String = r.try_get("as_of")?;
    let state: String = r.try_get("state")?;
    Ok(StageRow {
        stage: Stage::parse(&stage).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        as_of: kjp_domain::ids::parse_date(&as_of)
            .ok_or_else(|| StoreError::Corrupt(format!("stage date {as_of:?}")))?,
        state: StageState::parse(&state)?,
        opened_at: r.try_get("opened_at")?,
        budget: r.try_get("budget")?,
    })
}

fn run_from(r: &AnyRow) -> Result<RunRecord> {
    let stage: String = r.try_get("stage")?;
    let run: i32 = r.try_get("run")?;
    Ok(RunRecord {
        stage: Stage::parse(&stage).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        run: i64::from(run),
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        policy_id: r.try_get("policy_id")?,
        policy_version: r.try_get("policy_version")?,
        policy_sha256: r.try_get("policy_sha256")?,
        snapshots: r.try_get("snapshots")?,
        candidates: r.try_get("candidates")?,
    })
}

pub(crate) fn decision_from(r: &AnyRow) -> Result<DecisionRow> {
    Ok(DecisionRow {
        nik: r.try_get("nik")?,
        kk: r.try_get("kk")?,
        name: r.try_get("name")?,
        birth_date: r.try_get("birth_date")?,
        status: r.try_get("status")?,
        grp: r.try_get("grp")?,
        level: r.try_get("level")?,
        school: r.try_get("school")?,
        npsn: r.try_get("npsn")?,
        kelurahan: r.try_get("kelurahan")?,
        routine: r.try_get("routine")?,
        periodic: r.try_get("periodic")?,
        school_fee: r.try_get("school_fee")?,
        monthly_total: r.try_get("monthly_total")?,
        reasons: r.try_get("reasons")?,
        unknown: r.try_get("unknown")?,
        conflicts: r.try_get("conflicts")?,
        evidence: r.try_get("evidence")?,
        facts: r.try_get("facts")?,
    })
}

/// sha256 of some bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The time now, as stored (RFC 3339, UTC, milliseconds).
pub fn timestamp() -> String {
    now()
}
