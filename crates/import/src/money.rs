//! Money in and out: the bank's accounts file, payment batches (`kjp pay`), the bank's
//! return file (`kjp reconcile`), the card feed (`kjp transactions import`) and
//! sanctions. File formats are in docs/formats.md; the rules are pure in
//! `kjp_domain::money`; the store keeps payments exactly once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use kjp_domain::money::{self, AccountStatus, FailReason, MonthlyParts, Months, Withheld};
use kjp_domain::{Nik, Policy, Stage};
use kjp_store::money::{Account, Batch, CardFeed, CardFlag, LineReturn, PayError, PayLine, Sanction};
use kjp_store::{sha256_hex, Store, StoreError};

use crate::source::{FileError, RowError};

pub const ACCOUNTS_HEADER: &[&str] = &["nik", "account", "holder", "status"];
pub const BATCH_HEADER: &[&str] =
    &["batch", "line", "nik", "name", "account", "months", "routine", "periodic", "school_fee", "amount"];
pub const RETURN_HEADER: &[&str] = &["batch", "line", "nik", "account", "amount", "status", "reason"];
pub const CARD_HEADER: &[&str] = &["txn", "nik", "time", "kind", "amount", "mcc", "merchant"];

#[derive(Debug, thiserror::Error)]
pub enum MoneyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pay(#[from] PayError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("stage {0} has no decree: pay a stage after its decree (`kjp stage decree`)")]
    NotDecreed(Stage),
    #[error("{file}: {count} bad row(s); nothing was recorded. First: {first}")]
    BadRows { file: String, count: usize, first: String, errors: Vec<RowError> },
    #[error("{0}")]
    Refused(String),
}

type Result<T, E = MoneyError> = std::result::Result<T, E>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MoneyError + '_ {
    move |error| MoneyError::Io { path: path.to_path_buf(), error }
}

/// Writes `bytes` to `path` through a temporary name, synced, then renamed: a reader never
/// sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

use crate::source::read_rows;

type Field<T> = crate::source::FieldResult<T>;

fn refuse_bad(file: &str, errors: Vec<RowError>) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let e = &errors[0];
    let col = if e.column.is_empty() { String::new() } else { format!(", column {}", e.column) };
    Err(MoneyError::BadRows {
        file: file.into(),
        count: errors.len(),
        first: format!("line {}{col}: {}", e.line, e.reason),
        errors,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

// ---------------------------------------------------------------------------- accounts

/// An accounts file imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountsImported {
    pub sha256: String,
    pub rows: u64,
    pub written: u64,
    pub by_status: BTreeMap<String, u64>,
    pub errors: Vec<RowError>,
}

/// Parses the bank's accounts file (`nik,account,holder,status`; a NIK twice is a bad row).
pub fn parse_accounts(file: &str, bytes: &[u8]) -> Result<(Vec<Account>, Vec<RowError>, u64), FileError> {
    let h = ACCOUNTS_HEADER;
    let mut seen: HashMap<i64, u64> = HashMap::new();
    let (rows, mut errors, n) = read_rows(file, bytes, h, |line, f| {
        let nik = f.nik(0)?.as_u64() as i64;
        let status_raw = f.text(3)?;
        let status = AccountStatus::parse(&status_raw).ok_or_else(|| {
            (h[3], format!("{status_raw:?} is not one of active, dormant, closed, not_opened"))
        })?;
        let account = if status == AccountStatus::NotOpened {
            f.optional_text(1)?.to_string()
        } else {
            f.account_number(1)?
        };
        let holder = f.text(2)?;
        if let Some(first) = seen.insert(nik, u64::from(line)) {
            return Err(("", format!("duplicate of line {first} (same nik)")));
        }
        Ok(Account { nik, account, holder, status: status.code().to_string(), hold: String::new() })
    })?;
    errors.sort_by_key(|e| e.line);
    Ok((rows, errors, n))
}

/// `kjp accounts import FILE`: good rows are recorded (the bank's latest word per NIK),
/// bad rows reported with line, column and reason.
pub async fn import_accounts(store: &Store, path: &Path, by: &str) -> Result<AccountsImported> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let sha256 = sha256_hex(&bytes);
    let (rows, errors, n) = parse_accounts(&path.display().to_string(), &bytes)?;
    let mut by_status = BTreeMap::new();
    for a in &rows {
        *by_status.entry(a.status.clone()).or_insert(0) += 1;
    }
    let written = store.upsert_accounts(&sha256, &rows, by).await?;
    Ok(AccountsImported { sha256, rows: n, written, by_status, errors })
}

// ---------------------------------------------------------------------------- batches

/// A recipient left out of a batch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithheldRow {
    pub nik: i64,
    pub reason: Withheld,
    pub months: Months,
    pub amount: i64,
}

/// What `kjp pay` did.
#[derive(Debug, Clone)]
pub struct PayOutcome {
    /// The batch: new, or the one recorded before for these months.
    pub batch: Option<Batch>,
    /// True when this run recorded it.
    pub new: bool,
    pub file: Option<PathBuf>,
    /// Recipients with months owed in the range who are not in the batch.
    pub withheld: Vec<WithheldRow>,
    /// The list of children to open (or fix) an account for, written next to the batch.
    pub withheld_file: Option<PathBuf>,
}

/// `YYYYMM` of a stage's six benefit months.
pub fn stage_months(stage: Stage) -> [i64; 6] {
    stage.benefit_months().map(|d| i64::from(d.year()) * 100 + i64::from(d.month()))
}

/// A stage in file names: `2025-1` for KJP Plus, `kjmu-2025-1` for KJMU, so that two
/// programmes paying the same months never share a batch id or a file.
pub fn stage_slug(stage: Stage) -> String {
    stage.to_string().replace('/', "-")
}

/// The batch file's bytes for its lines (also how a missing file is re-derived).
pub fn render_batch(stage: Stage, batch: &str, lines: &[PayLine]) -> Vec<u8> {
    let mut out = String::with_capacity(lines.len() * 110 + 100);
    out.push_str(&BATCH_HEADER.join(","));
    out.push('\n');
    for l in lines {
        let months = Months::from_bits(l.months as u8).unwrap_or_default().label(stage);
        let _ = writeln!(
            out,
            "{batch},{},{:016},{},{},{months},{},{},{},{}",
            l.line,
            l.nik,
            csv_text(&l.name),
            l.account,
            l.routine,
            l.periodic,
            l.school_fee,
            l.amount
        );
    }
    out.into_bytes()
}

fn csv_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The batch id: the stage, the months asked, and a hash of what the lines pay to whom.
/// The same owed lines give the same id, whoever builds them and however often.
fn batch_id(stage: Stage, range: Months, lines: &[PayLine]) -> String {
    let mut canon = String::with_capacity(lines.len() * 60);
    for l in lines {
        let _ = writeln!(
            canon,
            "{},{},{},{},{},{},{},{},{},{}",
            l.nik,
            l.months,
            l.name,
            l.account,
            l.level,
            l.kelurahan,
            l.routine,
            l.periodic,
            l.school_fee,
            l.amount
        );
    }
    let months = stage_months(stage);
    let first = range.indexes().next().map_or(0, |i| months[i]);
    let last = range.indexes().last().map_or(0, |i| months[i]);
    let hash = sha256_hex(format!("{stage}|{}|{canon}", range.bits()).as_bytes());
    format!("{}-{first}-{last}-{}", stage_slug(stage), &hash[..12])
}

/// Where batch files go by default: `DATA/payments`.
pub fn default_out(store: &Store) -> PathBuf {
    store.data_dir().join("payments")
}

/// Makes sure a recorded batch's file is on disk with its recorded bytes, re-deriving it
/// from the database when it is missing or different. Returns the path.
pub async fn ensure_file(store: &Store, batch: &Batch, out: &Path) -> Result<PathBuf> {
    let path = out.join(&batch.file_name);
    if let Ok(bytes) = std::fs::read(&path) {
        if sha256_hex(&bytes) == batch.file_sha256 {
            return Ok(path);
        }
    }
    let stage = Stage::parse(&batch.stage).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let lines = store.batch_lines(&batch.batch).await?;
    let bytes = render_batch(stage, &batch.batch, &lines);
    if sha256_hex(&bytes) != batch.file_sha256 {
        return Err(StoreError::Corrupt(format!(
            "batch {}: the lines no longer give the recorded file",
            batch.batch
        ))
        .into());
    }
    write_atomically(&path, &bytes)?;
    Ok(path)
}

/// What paying needs about every recipient as the decree stands now: amendment 0 in one
/// query, then each amendment's changes applied in order (as `Store::recipients` does).
async fn pay_inputs(
    store: &Store,
    stage: Stage,
    months: &[i64; 6],
) -> Result<Vec<kjp_store::money::PayInput>> {
    let decrees = store.decrees(stage).await?;
    let inputs = store.pay_inputs(stage, months).await?;
    if decrees.len() <= 1 {
        return Ok(inputs);
    }
    let mut map: BTreeMap<String, kjp_store::money::PayInput> =
        inputs.into_iter().map(|i| (i.nik.clone(), i)).collect();
    for d in decrees.iter().skip(1) {
        for e in store.decree_entries(stage, d.amendment).await? {
            match e.change.as_str() {
                "removed" => {
                    map.remove(&e.nik);
                }
                "added" | "changed" if e.status == "recipient" => {
                    let nik: i64 =
                        e.nik.parse().map_err(|_| StoreError::Corrupt(format!("decree NIK {:?}", e.nik)))?;
                    let account = store.account(nik).await?;
                    let paid = store.paid_bits(nik, months).await?;
                    let a = account.unwrap_or(Account {
                        nik,
                        account: String::new(),
                        holder: String::new(),
                        status: String::new(),
                        hold: String::new(),
                    });
                    map.insert(
                        e.nik.clone(),
                        kjp_store::money::PayInput {
                            nik: e.nik,
                            level: e.level,
                            kelurahan: e.kelurahan,
                            routine: e.routine,
                            periodic: e.periodic,
                            school_fee: e.school_fee,
                            account: a.account,
                            holder: a.holder,
                            status: a.status,
                            hold: a.hold,
                            paid: i64::from(paid),
                        },
                    );
                }
                _ => {}
            }
        }
    }
    Ok(map.into_values().collect())
}

/// `kjp pay --stage S --months A..B`: one line per recipient owed a month in the range
/// (not paid yet, not stopped by a sanction, with an active account), recorded with its
/// months in one transaction, then the file written. Building it again returns the same
/// batch and bytes; when nothing is owed any more, the last batch for these months.
pub async fn pay(
    store: &Store,
    stage: Stage,
    range: Months,
    out: &Path,
    by: &str,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<PayOutcome> {
    if store.decrees(stage).await?.is_empty() {
        return Err(MoneyError::NotDecreed(stage));
    }
    progress("read recipients and accounts", 0, 2);
    let months = stage_months(stage);
    let inputs = pay_inputs(store, stage, &months).await?;
    let stops = store.sanction_stops().await?;
    progress("read recipients and accounts", 2, 2);

    let total = inputs.len() as u64;
    let mut lines = Vec::with_capacity(inputs.len());
    let mut withheld = Vec::new();
    for (i, r) in inputs.into_iter().enumerate() {
        if i % 100_000 == 0 {
            progress("build lines", i as u64, total);
        }
        let nik: i64 = r.nik.parse().map_err(|_| StoreError::Corrupt(format!("decree NIK {:?}", r.nik)))?;
        let already = Months::from_bits(r.paid as u8).unwrap_or(Months::ALL);
        let stopped = stops.get(&nik).map_or(Months::NONE, |ranges| {
            (0..6)
                .filter(|i| ranges.iter().any(|(from, to)| (*from..=*to).contains(&months[*i])))
                .fold(Months::NONE, Months::with)
        });
        let status = AccountStatus::parse(&r.status);
        let parts = MonthlyParts { routine: r.routine, periodic: r.periodic, school_fee: r.school_fee };
        match money::owed(range, already, stopped, status, !r.hold.is_empty()) {
            Ok(m) if m.is_empty() => {}
            Ok(m) => {
                let a = money::line_amounts(parts, m);
                lines.push(PayLine {
                    line: lines.len() as i64 + 1,
                    nik,
                    months: i64::from(m.bits()),
                    name: r.holder,
                    account: r.account,
                    level: r.level,
                    kelurahan: r.kelurahan,
                    routine: a.routine,
                    periodic: a.periodic,
                    school_fee: a.school_fee,
                    amount: a.total,
                    status: "sent".into(),
                    reason: String::new(),
                });
            }
            Err((reason, m)) => withheld.push(WithheldRow {
                nik,
                reason,
                months: m,
                amount: money::line_amounts(parts, m).total,
            }),
        }
    }
    progress("build lines", total, total);

    let withheld_file = if withheld.is_empty() {
        None
    } else {
        let mut s = String::from("nik,reason,months,amount,what_to_do\n");
        for w in &withheld {
            let todo = match w.reason {
                Withheld::NoAccount => "open an account at Bank DKI (collective opening through the school)",
                Withheld::Dormant => "reactivate the account at a Bank DKI branch",
                Withheld::Closed => "open a new account at Bank DKI",
                Withheld::Sanctioned => "none: payments stopped by a sanction",
                Withheld::PaymentFailed => {
                    "the last payment failed: the bank must report the account fixed (accounts import)"
                }
            };
            let _ = writeln!(
                s,
                "{:016},{},{},{},{todo}",
                w.nik,
                w.reason.code(),
                w.months.label(stage),
                w.amount
            );
        }
        let m = stage_months(stage);
        let first = range.indexes().next().map_or(0, |i| m[i]);
        let last = range.indexes().last().map_or(0, |i| m[i]);
        let path = out.join(format!("withheld-{}-{first}-{last}.csv", stage_slug(stage)));
        write_atomically(&path, s.as_bytes())?;
        Some(path)
    };

    if lines.is_empty() {
        // Nothing owed: the last batch for exactly these months, if any.
        let last =
            store.batches(stage).await?.into_iter().rev().find(|b| b.months == i64::from(range.bits()));
        let file = match &last {
            Some(b) => Some(ensure_file(store, b, out).await?),
            None => None,
        };
        return Ok(PayOutcome { batch: last, new: false, file, withheld, withheld_file });
    }

    progress("record batch", 0, 1);
    let id = batch_id(stage, range, &lines);
    let bytes = render_batch(stage, &id, &lines);
    let batch = Batch {
        batch: id.clone(),
        stage: stage.to_string(),
        months: i64::from(range.bits()),
        seq: 0,
        lines: lines.len() as i64,
        total: lines.iter().map(|l| l.amount).sum(),
        file_name: format!("{id}.csv"),
        file_sha256: sha256_hex(&bytes),
        created_at: kjp_store::timestamp(),
        created_by: by.into(),
        return_sha256: String::new(),
        reconciled_at: String::new(),
    };
    let new = store.record_batch(&batch, &lines, &months).await?;
    drop(lines);
    progress("record batch", 1, 1);
    let batch = store.batch(&id).await?.ok_or_else(|| StoreError::Corrupt(format!("batch {id} vanished")))?;
    let path = out.join(&batch.file_name);
    if batch.file_sha256 == sha256_hex(&bytes) {
        write_atomically(&path, &bytes)?;
    } else {
        ensure_file(store, &batch, out).await?;
    }
    Ok(PayOutcome { batch: Some(batch), new, file: Some(path), withheld, withheld_file })
}

// ---------------------------------------------------------------------------- returns

/// One line of the bank's return file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReturnRow {
    line: u64,
    batch: String,
    pay_line: i64,
    nik: i64,
    account: String,
    amount: i64,
    failure: Option<FailReason>,
}

/// Parses a return file (`batch,line,nik,account,amount,status,reason`).
fn parse_return(file: &str, bytes: &[u8]) -> Result<(Vec<ReturnRow>, Vec<RowError>), FileError> {
    let h = RETURN_HEADER;
    let (rows, errors, _) = read_rows(file, bytes, h, |line, f| {
        let line = u64::from(line);
        let batch = f.text(0)?;
        let pay_line: i64 = f.text(1)?.parse().map_err(|_| (h[1], "is not a line number".to_string()))?;
        let nik = f.nik(2)?.as_u64() as i64;
        let account = f.text(3)?;
        let amount = f.rupiah(4)?;
        let status = f.text(5)?;
        let status = status.as_str();
        let reason = f.optional_text(6)?;
        let failure = match status {
            "credited" if reason.is_empty() => None,
            "credited" => return Err((h[6], "a credited line has no reason".into())),
            "failed" => Some(FailReason::parse(reason).ok_or_else(|| {
                (h[6], format!("{reason:?} is not one of account_closed, account_dormant, name_mismatch, unknown_account"))
            })?),
            other => return Err((h[5], format!("{other:?} is not credited or failed"))),
        };
        Ok(ReturnRow { line, batch, pay_line, nik, account, amount, failure })
    })?;
    Ok((rows, errors))
}

/// A child not paid by a batch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpaid {
    pub nik: i64,
    pub name: String,
    pub months: String,
    pub amount: i64,
    pub reason: FailReason,
}

/// What `kjp reconcile` found.
#[derive(Debug, Clone)]
pub struct Reconciled {
    pub batch: Batch,
    /// False when this very return file was reconciled before (nothing changed).
    pub new: bool,
    pub sent: i64,
    pub credited: (i64, i64),
    pub failed: (i64, i64),
    pub by_reason: BTreeMap<FailReason, (i64, i64)>,
    pub unpaid: Vec<Unpaid>,
    pub report: PathBuf,
}

/// `kjp reconcile FILE`: every line of the batch must come back once, for the same child,
/// account and amount; a failed line's months are owed again (a later batch pays them
/// once the account is fixed). Money in equals money out: credited plus failed is the
/// batch's total, to the rupiah, or nothing is recorded.
pub async fn reconcile(
    store: &Store,
    path: &Path,
    by: &str,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<Reconciled> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let sha = sha256_hex(&bytes);
    let file = path.display().to_string();
    progress("read return file", 0, 1);
    let (rows, mut errors) = parse_return(&file, &bytes)?;
    progress("read return file", 1, 1);
    let Some(first) = rows.first() else {
        refuse_bad(&file, errors)?;
        return Err(MoneyError::Refused(format!("{file}: no lines")));
    };
    let batch = store
        .batch(&first.batch)
        .await?
        .ok_or_else(|| MoneyError::Refused(format!("{file}: no batch {:?} was recorded", first.batch)))?;
    let stage = Stage::parse(&batch.stage).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    progress("check lines", 0, batch.lines as u64);
    let lines = store.batch_lines(&batch.batch).await?;
    let mut seen = vec![0u64; lines.len() + 1];
    let mut failures = Vec::new();
    let months = stage_months(stage);
    for r in &rows {
        let err = |column: &'static str, reason: String| RowError { line: r.line, column, reason };
        if r.batch != batch.batch {
            errors.push(err(
                "batch",
                format!("{:?}: a return file answers one batch ({})", r.batch, batch.batch),
            ));
            continue;
        }
        let Some(l) =
            usize::try_from(r.pay_line).ok().and_then(|i| i.checked_sub(1)).and_then(|i| lines.get(i))
        else {
            errors.push(err("line", format!("batch {} has no line {}", batch.batch, r.pay_line)));
            continue;
        };
        if seen[l.line as usize] != 0 {
            errors.push(err(
                "line",
                format!("line {} answered twice (first on line {})", l.line, seen[l.line as usize]),
            ));
            continue;
        }
        seen[l.line as usize] = r.line;
        if r.nik != l.nik {
            errors.push(err("nik", format!("line {} paid another NIK", l.line)));
        } else if r.account != l.account {
            errors.push(err("account", format!("line {} paid account {}", l.line, l.account)));
        } else if r.amount != l.amount {
            errors.push(err("amount", format!("{} but line {} paid {}", r.amount, l.line, l.amount)));
        } else if let Some(reason) = r.failure {
            let m = Months::from_bits(l.months as u8).unwrap_or_default();
            failures.push((
                LineReturn {
                    line: l.line,
                    nik: l.nik,
                    months: m.indexes().map(|i| months[i]).collect(),
                    failure: reason.code().into(),
                },
                reason,
                l,
            ));
        }
    }
    let missing = seen.iter().skip(1).filter(|s| **s == 0).count();
    if missing > 0 {
        let first = seen.iter().skip(1).position(|s| *s == 0).map_or(0, |i| i + 1);
        errors.push(RowError {
            line: 0,
            column: "",
            reason: format!(
                "{missing} line(s) of batch {} are not answered (the first: line {first})",
                batch.batch
            ),
        });
    }
    errors.sort_by_key(|e| e.line);
    refuse_bad(&file, errors)?;
    progress("check lines", batch.lines as u64, batch.lines as u64);

    // Money in equals money out, before anything is recorded.
    let lines_sum: i64 = lines.iter().map(|l| l.amount).sum();
    if lines_sum != batch.total {
        return Err(StoreError::Corrupt(format!(
            "batch {}: lines add up to {lines_sum}, recorded {}",
            batch.batch, batch.total
        ))
        .into());
    }
    progress("record", 0, 1);
    let returns: Vec<LineReturn> = failures.iter().map(|(r, _, _)| r.clone()).collect();
    let new = store.apply_return(&batch.batch, &sha, &returns, by).await?;
    progress("record", 1, 1);
    let totals = store.batch_status_totals(&batch.batch).await?;
    let get = |s: &str| totals.iter().find(|t| t.0 == s).map_or((0, 0), |t| (t.1, t.2));
    let (credited, failed) = (get("credited"), get("failed"));
    if credited.1 + failed.1 != batch.total || get("sent").0 != 0 {
        return Err(StoreError::Corrupt(format!(
            "batch {}: credited {} + failed {} is not the batch total {}",
            batch.batch, credited.1, failed.1, batch.total
        ))
        .into());
    }
    // Who was not paid and why: from the database, so a second reconcile reports the same.
    // (The lines were read before this return was applied, unless it was applied before.)
    let failed_now: HashMap<i64, FailReason> =
        returns.iter().zip(&failures).map(|(r, f)| (r.line, f.1)).collect();
    let mut unpaid = Vec::new();
    let mut by_reason: BTreeMap<FailReason, (i64, i64)> = BTreeMap::new();
    for l in &lines {
        let reason = match failed_now.get(&l.line) {
            Some(f) => *f,
            None if l.status == "failed" => FailReason::parse(&l.reason).ok_or_else(|| {
                StoreError::Corrupt(format!("line {}: failure reason {:?}", l.line, l.reason))
            })?,
            None => continue,
        };
        let e = by_reason.entry(reason).or_default();
        e.0 += 1;
        e.1 += l.amount;
        unpaid.push(Unpaid {
            nik: l.nik,
            name: l.name.clone(),
            months: Months::from_bits(l.months as u8).unwrap_or_default().label(stage),
            amount: l.amount,
            reason,
        });
    }
    let mut s = String::from("nik,name,months,amount,reason,what_to_do\n");
    for u in &unpaid {
        let _ = writeln!(
            s,
            "{:016},{},{},{},{},{}",
            u.nik,
            csv_text(&u.name),
            u.months,
            u.amount,
            u.reason.code(),
            u.reason.explain()
        );
    }
    let report = path.with_file_name(format!("{}.unpaid.csv", batch.batch));
    write_atomically(&report, s.as_bytes())?;
    let batch = store.batch(&batch.batch).await?.unwrap_or(batch);
    Ok(Reconciled { sent: batch.lines, batch, new, credited, failed, by_reason, unpaid, report })
}

// ---------------------------------------------------------------------------- card feed

/// What `kjp transactions import` found.
#[derive(Debug, Clone)]
pub struct TransactionsImported {
    pub feed: CardFeed,
    pub new: bool,
    pub flags: Vec<CardFlag>,
    pub by_kind: BTreeMap<String, i64>,
    pub errors: Vec<RowError>,
}

/// Parses the card feed (`txn,nik,time,kind,amount,mcc,merchant`) in parallel chunks.
pub fn parse_card_feed(
    file: &str,
    bytes: &[u8],
) -> Result<(Vec<money::CardTxn>, Vec<RowError>, u64), FileError> {
    use rayon::prelude::*;
    let h = CARD_HEADER;
    // The header line alone first, for its check.
    let header_end = bytes.iter().position(|b| *b == b'\n').map_or(bytes.len(), |i| i + 1);
    read_rows(file, &bytes[..header_end], h, |_, _| Ok(()))?;
    // Split the body into chunks at line ends; each chunk is parsed on its own.
    let body = &bytes[header_end..];
    let mut chunks = Vec::new();
    let mut start = 0;
    let size = (body.len() / 64).max(1 << 20);
    while start < body.len() {
        let mut end = (start + size).min(body.len());
        while end < body.len() && body[end - 1] != b'\n' {
            end += 1;
        }
        chunks.push((start, end));
        start = end;
    }
    // Line numbers: count the lines before each chunk.
    let mut first_lines = Vec::with_capacity(chunks.len());
    let mut line = 2u64;
    for (s, e) in &chunks {
        first_lines.push(line);
        line += body[*s..*e].iter().filter(|b| **b == b'\n').count() as u64;
    }
    let parts: Vec<(Vec<money::CardTxn>, Vec<RowError>, u64)> = chunks
        .par_iter()
        .zip(first_lines.par_iter())
        .map(|((s, e), first)| {
            let mut txns = Vec::with_capacity((e - s) / 60);
            let mut errors = Vec::new();
            let mut rows = 0;
            let mut last = None;
            for (i, raw) in body[*s..*e].split(|b| *b == b'\n').enumerate() {
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.is_empty() {
                    continue;
                }
                rows += 1;
                let line = first + i as u64;
                match card_row(raw, line, &mut last) {
                    Ok(t) => txns.push(t),
                    Err((column, reason)) => errors.push(RowError { line, column, reason }),
                }
            }
            (txns, errors, rows)
        })
        .collect();
    let mut txns = Vec::new();
    let mut errors = Vec::new();
    let mut rows = 0;
    for (t, e, n) in parts {
        txns.extend(t);
        errors.extend(e);
        rows += n;
    }
    Ok((txns, errors, rows))
}

/// One card feed row. The feed has no quoted fields (ids, codes and numbers only).
/// `last` remembers the previous row's NIK: a feed lists a card's transactions together,
/// and checking a NIK's region and date once per card is enough.
fn card_row(raw: &[u8], line: u64, last: &mut Option<(Vec<u8>, u64)>) -> Field<money::CardTxn> {
    let h = CARD_HEADER;
    let s = std::str::from_utf8(raw).map_err(|_| ("", "not valid UTF-8".to_string()))?;
    let mut f = [""; 7];
    let mut n = 0;
    for part in s.split(',') {
        if n < 7 {
            f[n] = part.trim();
        }
        n += 1;
    }
    if n != h.len() {
        return Err(("", format!("{n} fields; expected {} ({})", h.len(), h.join(","))));
    }
    let need = |i: usize| if f[i].is_empty() { Err((h[i], "is empty".to_string())) } else { Ok(f[i]) };
    need(0)?;
    let raw_nik = need(1)?;
    let nik = match last {
        Some((bytes, nik)) if bytes.as_slice() == raw_nik.as_bytes() => *nik,
        _ => {
            let nik = Nik::parse(raw_nik).map_err(|e| (h[1], e.to_string()))?.as_u64();
            *last = Some((raw_nik.as_bytes().to_vec(), nik));
            nik
        }
    };
    let time = need(2)?;
    let date = time
        .get(..10)
        .and_then(kjp_domain::ids::parse_date)
        .ok_or_else(|| (h[2], format!("{time:?} is not a time (expected YYYY-MM-DDTHH:MM:SS)")))?;
    let cash = match need(3)? {
        "cash" => true,
        "purchase" => false,
        other => return Err((h[3], format!("{other:?} is not cash or purchase"))),
    };
    let a = need(4)?;
    if a.len() > 15 || !a.bytes().all(|b| b.is_ascii_digit()) {
        return Err((h[4], format!("{a:?} is not a whole amount of rupiah (digits only)")));
    }
    let amount: i64 = a.parse().map_err(|_| (h[4], format!("{a:?} is not a number")))?;
    let mcc = need(5)?;
    if mcc.len() != 4 || !mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err((h[5], format!("{mcc:?} is not a 4-digit merchant category code")));
    }
    let mcc: u16 = mcc.parse().map_err(|_| (h[5], format!("{mcc:?} is not a number")))?;
    let merchant = need(6)?;
    let merchant = money::Code::new(merchant)
        .ok_or_else(|| (h[6], format!("{merchant:?} is longer than {} characters", money::Code::MAX)))?;
    Ok(money::CardTxn { line, nik, date, cash, amount, mcc, merchant })
}

/// `kjp transactions import FILE`: screens the feed with the card rules in force on each
/// transaction's date (the first date's rules for the feed) and records what each card
/// spent and every flag (for review). Bad rows are reported and left out.
pub async fn import_transactions(
    store: &Store,
    policy: &Policy,
    path: &Path,
    by: &str,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<TransactionsImported> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    progress("read and screen", 0, 3);
    let name = path.display().to_string();
    let (sha, parsed) = rayon::join(|| sha256_hex(&bytes), || parse_card_feed(&name, &bytes));
    let (txns, errors, rows) = parsed?;
    drop(bytes);
    progress("read and screen", 1, 3);
    let day = txns.iter().map(|t| t.date).min().unwrap_or(NaiveDate::MIN);
    let rules = policy
        .money
        .card_rules_at(day)
        .ok_or_else(|| MoneyError::Refused(format!("the policy has no card rules in force on {day}")))?;
    let limit_index = policy
        .param_index("cash_limit_monthly")
        .ok_or_else(|| MoneyError::Refused("the policy has no cash_limit_monthly".into()))?;
    let cash_limit = policy
        .param_at(limit_index, day)
        .map(|v| v.value.floor())
        .ok_or_else(|| MoneyError::Refused(format!("no cash_limit_monthly in force on {day}")))?;
    let flags = money::screen(&txns, rules, cash_limit);
    progress("read and screen", 2, 3);
    let spending: Vec<(i64, i64, i64)> =
        money::spending(&txns).into_iter().map(|(n, c, p)| (n as i64, c, p)).collect();
    let (cash, purchases) = spending.iter().fold((0, 0), |(c, p), s| (c + s.1, p + s.2));
    let stored: Vec<CardFlag> = flags
        .iter()
        .map(|f| CardFlag {
            kind: f.kind.code().into(),
            period: f.period.clone(),
            nik: f.nik as i64,
            merchant: f.merchant.clone(),
            value: f.value,
            limit: f.limit,
            lines: f.lines.iter().map(u64::to_string).collect::<Vec<_>>().join(";"),
        })
        .collect();
    let feed = CardFeed {
        sha256: sha.clone(),
        file_name: file_name(path),
        rows_total: rows as i64,
        rows_bad: errors.len() as i64,
        cash,
        purchases,
        flags: stored.len() as i64,
        imported_at: kjp_store::timestamp(),
    };
    let new = store.record_card_feed(&feed, &spending, &stored, by).await?;
    progress("read and screen", 3, 3);
    let mut by_kind = BTreeMap::new();
    for f in &stored {
        *by_kind.entry(f.kind.clone()).or_insert(0) += 1;
    }
    let feed = store.card_feed(&sha).await?.unwrap_or(feed);
    Ok(TransactionsImported { feed, new, flags: stored, by_kind, errors })
}

// ---------------------------------------------------------------------------- sanctions

/// A sanction to record, on a school's recommendation.
#[derive(Debug, Clone)]
pub struct SanctionRequest {
    pub nik: Nik,
    pub category: String,
    pub evidence: String,
    pub date: NaiveDate,
    pub school: kjp_domain::Npsn,
    pub by: String,
}

/// Records a sanction: the category must be in the catalogue in force on the act's date;
/// payments stop from the next unpaid month (the month after the last one sent or
/// credited; every month when none was); the unspent balance (credited minus what the
/// card spent) is marked for withdrawal. Audited.
pub async fn add_sanction(store: &Store, policy: &Policy, req: &SanctionRequest) -> Result<Sanction> {
    let category = policy.money.sanction_at(&req.category, req.date).ok_or_else(|| {
        let codes: Vec<&str> = policy.money.sanctions.iter().map(|s| s.code.as_str()).collect();
        MoneyError::Refused(format!(
            "--category {:?} is not in the sanction catalogue in force on {} (one of: {})",
            req.category,
            req.date,
            codes.join(", ")
        ))
    })?;
    if req.evidence.trim().is_empty() {
        return Err(MoneyError::Refused("--evidence must say what happened".into()));
    }
    let nik = req.nik.as_u64() as i64;
    let stop_from = match store.last_paid_month(nik).await? {
        Some(m) if m % 100 == 12 => (m / 100 + 1) * 100 + 1,
        Some(m) => m + 1,
        None => 0,
    };
    let withdraw = (store.credited_total(nik).await? - store.spent_total(nik).await?).max(0);
    let s = Sanction {
        nik,
        seq: 0,
        category: category.code.clone(),
        evidence: req.evidence.clone(),
        act_date: req.date.to_string(),
        school: req.school.to_string(),
        stop_from,
        withdraw,
        recorded_at: kjp_store::timestamp(),
        recorded_by: req.by.clone(),
        ..Sanction::default()
    };
    Ok(store.add_sanction(&s).await?)
}
