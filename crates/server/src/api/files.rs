//! Bulk data exchange: agency files uploaded as multipart and imported exactly as
//! `kjp import` does (same checks, same row-level report, same content-addressed
//! snapshot), their snapshots and reports downloaded, and a decree's annex downloaded.
//! Downloads are streamed from disk, never held whole in memory.
//!
//! An upload is written to a private directory under the data directory as it arrives
//! (the body is never held in memory), then imported; the directory is removed whatever
//! happens, and a refused file leaves nothing behind.

use std::path::Path;

use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kjp_domain::Stage;
use kjp_import::{ImportError, Source};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ApiScope, Client};
use crate::web::{api_internal, json_error};
use crate::AppState;

/// Row errors listed in an upload's answer; all of them are in its report.
const MAX_LISTED_ERRORS: usize = 1000;

/// What an upload did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Upload {
    /// The source, from the file name: `dtks` for `dtks.csv`.
    #[schema(example = "dtks")]
    source: String,
    /// `imported` (a new snapshot), `unchanged` (these bytes are the current snapshot
    /// already) or `reactivated` (the bytes of an earlier snapshot, current again).
    #[schema(example = "imported")]
    outcome: &'static str,
    /// The snapshot's sha256: its name for downloads and in the stage run's evidence.
    sha256: String,
    rows_total: i64,
    rows_good: i64,
    /// Rows left out, each listed in `errors` (up to 1000) and all in the report.
    rows_bad: i64,
    errors: Vec<UploadRowError>,
    /// Whether `errors` stops short of `rows_bad`.
    errors_truncated: bool,
    /// Where to download every row error as CSV (`line,column,reason`).
    #[schema(example = "/api/v1/files/0f3a.../report.csv")]
    report: String,
}

/// One row left out of a file, as in `kjp import`'s report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UploadRowError {
    /// The line in the file (the header is line 1).
    line: u64,
    /// The column, or empty for a problem with the whole row.
    column: String,
    reason: String,
}

/// The multipart form of an upload.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads the parts as they stream in
pub(crate) struct UploadForm {
    /// The agency file, named as in docs/formats.md (`dtks.csv`, `dukcapil.csv`, ...).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `true` to accept a file with under half the current snapshot's good rows (a
    /// truncated export is refused otherwise).
    #[schema(example = "false")]
    force: Option<String>,
}

fn bad_request(field: &str, message: &str) -> Response {
    json_error(StatusCode::BAD_REQUEST, Some(field), message)
}

fn multipart_error(e: MultipartError) -> Response {
    let status = e.status();
    let message = format!("the multipart body could not be read: {}", e.body_text());
    json_error(if status.is_client_error() { status } else { StatusCode::BAD_REQUEST }, None, &message)
}

fn expected_files() -> String {
    Source::ALL.iter().map(|s| s.file_name()).collect::<Vec<_>>().join(", ")
}

/// Streams one part to `path`.
async fn save(mut field: Field<'_>, path: &Path) -> Result<(), Response> {
    let mut out = tokio::fs::File::create(path).await.map_err(api_internal)?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        out.write_all(&chunk).await.map_err(api_internal)?;
    }
    out.flush().await.map_err(api_internal)
}

/// Import an agency file.
///
/// The same as `kjp import FILE`: a wrong header refuses the whole file (422); bad rows are
/// left out and reported by line, column and reason; good rows become an immutable
/// snapshot named by its sha256. Uploading the same bytes again changes nothing. A file
/// with no good rows, or under half the good rows of the current snapshot, is refused
/// (409) unless `force=true`.
#[utoipa::path(
    post,
    path = "/api/v1/files",
    tag = "files",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "A new snapshot", body = Upload),
        (status = 200, description = "The same bytes were imported before: unchanged or reactivated", body = Upload),
        (status = 400, description = "Not a multipart body with one `file` part named as a known source file", body = crate::web::ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
        (status = 403, description = "The client may not import this source (`files.import` or `files.import:SOURCE`)", body = crate::web::ApiError),
        (status = 409, description = "Refused as suspicious: too few good rows; send `force=true` if the file is right", body = crate::web::ApiError),
        (status = 413, description = "Larger than the server's upload limit", body = crate::web::ApiError),
        (status = 422, description = "The file as a whole cannot be read: wrong header, empty, not UTF-8", body = crate::web::ApiError),
    )
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    client: Client,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut form = match form {
        Ok(form) => form,
        Err(e) => {
            return bad_request("file", &format!("send the file as multipart/form-data: {}", e.body_text()))
        }
    };
    let store = &state.inner.store;
    let dir = match tempfile::Builder::new().prefix("upload-").tempdir_in(ensure_uploads(store.data_dir())) {
        Ok(dir) => dir,
        Err(e) => return api_internal(e),
    };
    let mut file: Option<(Source, std::path::PathBuf)> = None;
    let mut force = false;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return multipart_error(e),
        };
        match field.name().unwrap_or("") {
            "file" => {
                if file.is_some() {
                    return bad_request("file", "one file per request");
                }
                let name =
                    field.file_name().unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("").to_string();
                let Some(source) = name.strip_suffix(".csv").and_then(Source::from_name) else {
                    let message = format!("the file is named {name:?}; expected one of {}", expected_files());
                    return bad_request("file", &message);
                };
                if let Err(refused) =
                    client.require(&state, &ApiScope::Import(Some(source.name().into()))).await
                {
                    return refused;
                }
                let path = dir.path().join(source.file_name());
                if let Err(res) = save(field, &path).await {
                    return res;
                }
                file = Some((source, path));
            }
            "force" => match field.text().await.map_err(multipart_error) {
                Ok(v) if v.trim() == "true" => force = true,
                Ok(v) if v.trim() == "false" || v.trim().is_empty() => force = false,
                Ok(_) => return bad_request("force", "force is `true` or `false`"),
                Err(res) => return res,
            },
            other => {
                return bad_request(other, "unexpected part: send `file` (and optionally `force`)");
            }
        }
    }
    let Some((source, path)) = file else {
        return bad_request(
            "file",
            "no `file` part: send the agency file as multipart/form-data field `file`",
        );
    };
    let imported = match kjp_import::import_file(store, &path, force).await {
        Ok(imported) => imported,
        Err(ImportError::File(e)) => {
            return json_error(StatusCode::UNPROCESSABLE_ENTITY, Some("file"), &e.to_string())
        }
        Err(ImportError::Suspicious { good, current, .. }) => {
            let message = format!(
                "{}: refused: {good} good rows, against {current} in the current snapshot; a truncated or empty export would silently exclude families. Check the file; send force=true if it is right",
                source.file_name()
            );
            return json_error(StatusCode::CONFLICT, Some("file"), &message);
        }
        Err(e) => return api_internal(e),
    };
    let snapshot = &imported.snapshot;
    let outcome = match (imported.new, imported.reactivated) {
        (true, _) => "imported",
        (false, true) => "reactivated",
        (false, false) => "unchanged",
    };
    let detail = format!("{outcome} {} rows, {} bad", snapshot.rows_total, snapshot.rows_bad);
    client.audit(&state, "api.import", &source.file_name(), &detail).await;
    let errors = match read_report(Path::new(&snapshot.report_path)).await {
        Ok(errors) => errors,
        Err(e) => return api_internal(e),
    };
    let body = Upload {
        source: source.name().into(),
        outcome,
        sha256: snapshot.sha256.clone(),
        rows_total: snapshot.rows_total,
        rows_good: snapshot.rows_good,
        rows_bad: snapshot.rows_bad,
        errors_truncated: (errors.len() as i64) < snapshot.rows_bad,
        errors,
        report: format!("/api/v1/files/{}/report.csv", snapshot.sha256),
    };
    let status = if imported.new { StatusCode::CREATED } else { StatusCode::OK };
    (status, Json(body)).into_response()
}

/// Removes scratch directories a killed process left behind: those older than an hour
/// (a request in flight in another process is younger). Called when serving starts.
pub(crate) fn sweep_scratch(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data.join("uploads")) else { return };
    let hour = std::time::Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > hour));
        if old {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!("uploads: could not remove {}: {e}", entry.path().display());
            }
        }
    }
}

fn ensure_uploads(data: &Path) -> std::path::PathBuf {
    let dir = data.join("uploads");
    // A failure shows at the tempdir that follows.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The first [`MAX_LISTED_ERRORS`] rows of an import report.
async fn read_report(path: &Path) -> Result<Vec<UploadRowError>, String> {
    let bytes = tokio::fs::read(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let mut out = Vec::new();
    for row in reader.records().take(MAX_LISTED_ERRORS) {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(UploadRowError {
            line: row.get(0).and_then(|l| l.parse().ok()).unwrap_or(0),
            column: row.get(1).unwrap_or("").into(),
            reason: row.get(2).unwrap_or("").into(),
        });
    }
    Ok(out)
}

/// A current snapshot of an agency file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SnapshotInfo {
    #[schema(example = "dtks")]
    source: String,
    sha256: String,
    #[schema(example = "dtks.csv")]
    file_name: String,
    rows_total: i64,
    rows_good: i64,
    rows_bad: i64,
    /// When it was imported (RFC 3339, UTC).
    imported_at: String,
    /// Download of the file as imported.
    download: String,
    /// Download of its row errors.
    report: String,
}

/// The current snapshot of every source the client may import.
#[utoipa::path(
    get,
    path = "/api/v1/files",
    tag = "files",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The current snapshots within the client's scopes", body = [SnapshotInfo]),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
        (status = 403, description = "The client holds no `files.import` scope", body = crate::web::ApiError),
    )
)]
pub(crate) async fn list(State(state): State<AppState>, client: Client) -> Response {
    let may = |source: &str| client.allows(&ApiScope::Import(Some(source.into())));
    if !Source::ALL.iter().any(|s| may(s.name())) {
        if let Err(refused) = client.require(&state, &ApiScope::Import(None)).await {
            return refused;
        }
    }
    let snapshots = match state.inner.store.latest_snapshots().await {
        Ok(s) => s,
        Err(e) => return api_internal(e),
    };
    client.audit(&state, "api.files", "", "").await;
    let body: Vec<SnapshotInfo> = snapshots
        .into_iter()
        .filter(|s| may(&s.source))
        .map(|s| SnapshotInfo {
            download: format!("/api/v1/files/{}", s.sha256),
            report: format!("/api/v1/files/{}/report.csv", s.sha256),
            source: s.source,
            sha256: s.sha256,
            file_name: s.file_name,
            rows_total: s.rows_total,
            rows_good: s.rows_good,
            rows_bad: s.rows_bad,
            imported_at: s.imported_at,
        })
        .collect();
    Json(body).into_response()
}

/// The snapshot named by `sha256`, if the client may import its source.
async fn snapshot_for(
    state: &AppState,
    client: &Client,
    sha256: &str,
) -> Result<kjp_store::Snapshot, Response> {
    let not_found = || json_error(StatusCode::NOT_FOUND, None, "no snapshot with this sha256");
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            Some("sha256"),
            "a snapshot is named by 64 hex digits",
        ));
    }
    let snapshot = state.inner.store.snapshot(&sha256.to_ascii_lowercase()).await.map_err(api_internal)?;
    let snapshot = snapshot.ok_or_else(not_found)?;
    client.require(state, &ApiScope::Import(Some(snapshot.source.clone()))).await?;
    Ok(snapshot)
}

/// Download an agency file's snapshot, byte for byte as imported.
#[utoipa::path(
    get,
    path = "/api/v1/files/{sha256}",
    tag = "files",
    security(("bearer" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-fA-F]{64}$", description = "The snapshot's sha256")),
    responses(
        (status = 200, description = "The file, streamed", content_type = "text/csv", body = String),
        (status = 400, description = "Not 64 hex digits", body = crate::web::ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
        (status = 403, description = "The client may not import this snapshot's source", body = crate::web::ApiError),
        (status = 404, description = "No such snapshot", body = crate::web::ApiError),
    )
)]
pub(crate) async fn download(
    State(state): State<AppState>,
    client: Client,
    UrlPath(sha256): UrlPath<String>,
) -> Response {
    let snapshot = match snapshot_for(&state, &client, &sha256).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    client.audit(&state, "api.download", &snapshot.file_name, &snapshot.sha256).await;
    stream_file(Path::new(&snapshot.path), "text/csv; charset=utf-8", &snapshot.file_name, None).await
}

/// Download every row error of an agency file's import: `line,column,reason`.
#[utoipa::path(
    get,
    path = "/api/v1/files/{sha256}/report.csv",
    tag = "files",
    security(("bearer" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-fA-F]{64}$", description = "The snapshot's sha256")),
    responses(
        (status = 200, description = "The report, streamed", content_type = "text/csv", body = String),
        (status = 400, description = "Not 64 hex digits", body = crate::web::ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
        (status = 403, description = "The client may not import this snapshot's source", body = crate::web::ApiError),
        (status = 404, description = "No such snapshot", body = crate::web::ApiError),
    )
)]
pub(crate) async fn report(
    State(state): State<AppState>,
    client: Client,
    UrlPath(sha256): UrlPath<String>,
) -> Response {
    let snapshot = match snapshot_for(&state, &client, &sha256).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    client.audit(&state, "api.report", &snapshot.file_name, &snapshot.sha256).await;
    let name = format!("{}-{}-report.csv", snapshot.source, &snapshot.sha256[..12]);
    stream_file(Path::new(&snapshot.report_path), "text/csv; charset=utf-8", &name, None).await
}

/// The annex query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AnnexQuery {
    /// The stage: `2025/1` (KJP Plus) or `kjmu/2025/1`.
    #[param(example = "2025/1")]
    stage: Option<String>,
}

/// Download the decree annex of a stage: `recipients.csv` (recipients by school, NIKs
/// masked), `totals.csv` (per level and city) or `annex.xlsx` (both, one workbook), as
/// `kjp stage annex` writes them, totals checked to the rupiah against the decree.
#[utoipa::path(
    get,
    path = "/api/v1/annex/{file}",
    tag = "files",
    security(("bearer" = [])),
    params(
        ("file" = String, Path, pattern = "^(recipients\\.csv|totals\\.csv|annex\\.xlsx)$",
            description = "`recipients.csv`, `totals.csv` or `annex.xlsx`"),
        AnnexQuery,
    ),
    responses(
        (status = 200, description = "The file, streamed", content(
            (String = "text/csv"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "No such annex file, or the stage is missing or malformed", body = crate::web::ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = crate::web::ApiError),
        (status = 403, description = "The client lacks `decree.export`", body = crate::web::ApiError),
        (status = 404, description = "The stage has no decree", body = crate::web::ApiError),
    )
)]
pub(crate) async fn annex(
    State(state): State<AppState>,
    client: Client,
    UrlPath(file): UrlPath<String>,
    query: Result<Query<AnnexQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(refused) = client.require(&state, &ApiScope::Export).await {
        return refused;
    }
    let content_type = match file.as_str() {
        "recipients.csv" | "totals.csv" => "text/csv; charset=utf-8",
        "annex.xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => return bad_request("file", "the annex files are recipients.csv, totals.csv and annex.xlsx"),
    };
    let Ok(Query(query)) = query else {
        return bad_request("stage", "the query string could not be read");
    };
    let Some(raw) = query.stage else {
        return bad_request("stage", "give the stage: ?stage=2025/1 or ?stage=kjmu/2025/1");
    };
    let stage = match Stage::parse(&raw) {
        Ok(s) => s,
        Err(e) => return bad_request("stage", &e.to_string()),
    };
    let dir = match tempfile::Builder::new()
        .prefix("annex-")
        .tempdir_in(ensure_uploads(state.inner.store.data_dir()))
    {
        Ok(dir) => dir,
        Err(e) => return api_internal(e),
    };
    let written = match kjp_import::annex::annex(&state.inner.store, stage, dir.path()).await {
        Ok(a) => a,
        Err(kjp_import::annex::AnnexError::NotDecreed(_)) => {
            return json_error(StatusCode::NOT_FOUND, Some("stage"), &format!("stage {stage} has no decree"));
        }
        Err(e) => return api_internal(e),
    };
    let path = match file.as_str() {
        "recipients.csv" => written.recipients_csv,
        "totals.csv" => written.totals_csv,
        _ => written.xlsx,
    };
    client.audit(&state, "api.annex", &file, &stage.to_string()).await;
    let name = format!("{}-{file}", stage.to_string().replace('/', "-"));
    stream_file(&path, content_type, &name, Some(dir)).await
}

/// A file's bytes as a streamed body, read 64 KiB at a time. `scratch`, the directory the
/// file was written to for this request, is removed once the body is sent or dropped.
async fn stream_file(
    path: &Path,
    content_type: &'static str,
    download_name: &str,
    scratch: Option<tempfile::TempDir>,
) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return api_internal(format!("{}: {e}", path.display())),
    };
    let length = file.metadata().await.ok().map(|m| m.len());
    let chunks = futures_util::stream::unfold((file, scratch), |(mut file, scratch)| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), (file, scratch)))
            }
            Err(e) => Some((Err(e), (file, scratch))),
        }
    });
    let mut res = Body::from_stream(chunks).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(n) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{download_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeping_removes_only_scratch_older_than_an_hour() {
        let data = tempfile::tempdir().unwrap();
        let uploads = ensure_uploads(data.path());
        let (old, new) = (uploads.join("upload-old"), uploads.join("upload-new"));
        for dir in [&old, &new] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("dtks.csv"), "nik\n").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::open(&old).unwrap().set_modified(two_hours_ago).unwrap();
        sweep_scratch(data.path());
        assert!(!old.exists(), "left by a killed process");
        assert!(new.join("dtks.csv").exists(), "may be another process's upload in flight");
    }
}
