//! `kjp import`: an agency file becomes an immutable, content-hashed snapshot.
//!
//! The file is checked (a wrong header refuses it whole; bad rows are reported with line,
//! column and reason), copied unchanged to `DATA/snapshots/<sha256>.csv`, its report
//! written to `DATA/reports/`, and only then recorded in the database in one statement.
//! A kill at any point leaves either no snapshot or a whole one; importing the same bytes
//! again changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use kjp_store::{Snapshot, Store, StoreError};

use crate::source::{FileError, RowError, Source};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path}: not a known source file; expected one of {expected}")]
    UnknownFile { path: PathBuf, expected: String },
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{dir}: no source files found (expected files such as dukcapil.csv; see docs/formats.md)")]
    NothingToImport { dir: PathBuf },
    #[error("{path}: refused: {good} good rows, against {current} in the current snapshot of this source; a truncated or empty export would silently exclude families. Check the file; import it with --force if it is right")]
    Suspicious { path: PathBuf, good: i64, current: i64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |error| ImportError::Io { path: path.to_path_buf(), error }
}

/// What importing one file did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub source: Source,
    pub file: PathBuf,
    pub snapshot: Snapshot,
    /// False when the same bytes were imported before: nothing changed.
    pub new: bool,
    /// The bytes of an earlier snapshot, made the current one again.
    pub reactivated: bool,
    /// The first few bad rows, for the screen; all of them are in the report file.
    pub first_errors: Vec<RowError>,
}

/// Checks a file's rows without keeping them: (data rows, bad rows).
pub fn check(source: Source, file: &str, bytes: &[u8]) -> Result<(u64, Vec<RowError>), FileError> {
    use crate::source::*;
    fn run<T: Record>(file: &str, bytes: &[u8]) -> Result<(u64, Vec<RowError>), FileError> {
        let p = parse::<T>(file, bytes)?;
        Ok((p.rows, p.errors))
    }
    match source {
        Source::Dukcapil => run::<Person>(file, bytes),
        Source::Dtks => run::<DtksEntry>(file, bytes),
        Source::Sktm => run::<SktmEntry>(file, bytes),
        Source::Dapodik => run::<Dapodik>(file, bytes),
        Source::Emis => run::<Emis>(file, bytes),
        Source::Schools => run::<School>(file, bytes),
        Source::Transjakarta => run::<Driver>(file, bytes),
        Source::Wages => run::<Wage>(file, bytes),
        Source::Foster => run::<FosterChild>(file, bytes),
        Source::Lurah => run::<LurahLetter>(file, bytes),
        Source::Bapenda => run::<TaxedVehicle>(file, bytes),
        Source::Samsat => run::<RegisteredVehicle>(file, bytes),
        Source::Njop => run::<PropertyValue>(file, bytes),
        Source::Occupations => run::<Occupation>(file, bytes),
        Source::Sanctions => run::<SanctionEntry>(file, bytes),
        Source::Pddikti => run::<Student>(file, bytes),
        Source::Graduates => run::<Graduate>(file, bytes),
        Source::Scholarships => run::<Scholarship>(file, bytes),
    }
}

/// Writes `bytes` to `path` so that the file appears whole or not at all.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ImportError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// The bad rows as CSV: `line,column,reason`.
fn report(errors: &[RowError]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["line", "column", "reason"]);
    for e in errors {
        let _ = w.write_record([e.line.to_string().as_str(), e.column, e.reason.as_str()]);
    }
    w.into_inner().unwrap_or_default()
}

/// Imports one source file.
/// A new file with fewer good rows than this share of the current snapshot's is refused
/// without `force`: a truncated export must not silently replace a registry.
pub const SHRINK_LIMIT_PERCENT: i64 = 50;

/// Imports one source file. Importing the bytes of an earlier snapshot makes it the
/// current one again (`reactivated`); a file with no good rows, or with less than half the
/// good rows of the current snapshot, is refused unless `force`.
pub async fn import_file(store: &Store, path: &Path, force: bool) -> Result<Imported, ImportError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let source = name
        .strip_suffix(".csv")
        .and_then(Source::from_name)
        .ok_or_else(|| ImportError::UnknownFile { path: path.into(), expected: expected_files() })?;
    let bytes = std::fs::read(path).map_err(io(path))?;
    let sha256 = kjp_store::sha256_hex(&bytes);
    let current = store.latest_snapshots().await?.into_iter().find(|s| s.source == source.name());
    if let Some(snapshot) = store.snapshot(&sha256).await? {
        let reactivated = current.as_ref().is_some_and(|c| c.sha256 != sha256);
        let snapshot = if reactivated { store.make_current(&sha256).await? } else { snapshot };
        return Ok(Imported {
            source,
            file: path.into(),
            snapshot,
            new: false,
            reactivated,
            first_errors: Vec::new(),
        });
    }
    let (rows, errors) = check(source, &name, &bytes)?;
    let good = (rows - errors.len() as u64) as i64;
    if !force {
        match &current {
            _ if good == 0 => {
                return Err(ImportError::Suspicious {
                    path: path.into(),
                    good,
                    current: current.map_or(0, |c| c.rows_good),
                })
            }
            Some(c) if good * 100 < c.rows_good * SHRINK_LIMIT_PERCENT => {
                return Err(ImportError::Suspicious { path: path.into(), good, current: c.rows_good })
            }
            _ => {}
        }
    }
    let data = store.data_dir();
    let copy = data.join("snapshots").join(format!("{sha256}.csv"));
    let report_path = data.join("reports").join(format!("{}-{}.csv", source.name(), &sha256[..12]));
    write_atomically(&copy, &bytes)?;
    write_atomically(&report_path, &report(&errors))?;
    let snapshot = Snapshot {
        sha256,
        source: source.name().into(),
        file_name: name,
        path: copy.display().to_string(),
        rows_total: rows as i64,
        rows_good: (rows - errors.len() as u64) as i64,
        rows_bad: errors.len() as i64,
        report_path: report_path.display().to_string(),
        imported_at: kjp_store::timestamp(),
        seq: 0,
    };
    let new = store.insert_snapshot(&snapshot).await?;
    let snapshot = store.snapshot(&snapshot.sha256).await?.unwrap_or(snapshot);
    Ok(Imported {
        source,
        file: path.into(),
        snapshot,
        new,
        reactivated: false,
        first_errors: errors.into_iter().take(5).collect(),
    })
}

fn expected_files() -> String {
    Source::ALL.iter().map(|s| s.file_name()).collect::<Vec<_>>().join(", ")
}

/// The source files present in `dir`, in the order of [`Source::ALL`].
pub fn source_files(dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let found: Vec<PathBuf> =
        Source::ALL.iter().map(|s| dir.join(s.file_name())).filter(|p| p.is_file()).collect();
    if !dir.is_dir() {
        return Err(ImportError::Io {
            path: dir.into(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
        });
    }
    if found.is_empty() {
        return Err(ImportError::NothingToImport { dir: dir.into() });
    }
    Ok(found)
}
