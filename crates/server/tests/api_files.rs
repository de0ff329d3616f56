//! Bulk data exchange through the API, black box: an agency file uploaded as multipart is
//! imported as `kjp import` does (row errors by line and column, refusals, idempotence),
//! downloaded back byte for byte; the decree annex is streamed; scopes are enforced.

mod common;
use common::*;

use kjp_server::api::clients::new_token;
use kjp_server::Config;

const BOUNDARY: &str = "kjp-test-boundary-7d1f";

/// A multipart/form-data body from (field, file name, bytes) parts.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file_name {
            Some(f) => format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n"),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn client_with(app: &TestApp, name: &str, scopes: &[&str]) -> String {
    let (token, digest) = new_token();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    assert!(app.store.add_api_client(name, "Dinas Sosial", &scopes, &digest, "test").await.unwrap());
    token
}

async fn upload(
    app: &TestApp,
    token: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (u16, serde_json::Value) {
    let res = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(parts))
        .send()
        .await
        .expect("upload");
    let code = res.status().as_u16();
    let text = res.text().await.expect("body");
    (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let res = app.client.get(app.url(path)).bearer_auth(token).send().await.expect("get");
    let code = res.status().as_u16();
    let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (code, kind, res.bytes().await.expect("body").to_vec())
}

fn fixture_dtks() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    kjp_import::fixture::write_all(dir.path());
    std::fs::read(dir.path().join("dtks.csv")).unwrap()
}

#[tokio::test]
async fn an_uploaded_file_is_imported_with_its_row_errors_and_downloaded_back() {
    let app = spawn(true, 0).await;
    let token = client_with(&app, "dinsos", &["files.import:dtks"]).await;

    // The fixture's DTKS plus one row with a bad decile and one with a short KK.
    let mut file = fixture_dtks();
    file.extend_from_slice(b"3171010101750009,3171010101100009,11,2018-05-01,3171\n");
    file.extend_from_slice(b"3171010101750010,31710101,2,2018-05-01,3171\n");
    let (code, body) = upload(&app, &token, &[("file", Some("dtks.csv"), &file)]).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["outcome"], "imported");
    assert_eq!(body["source"], "dtks");
    assert_eq!(body["rows_total"], 6);
    assert_eq!(body["rows_good"], 4);
    assert_eq!(body["rows_bad"], 2);
    assert_eq!(body["errors_truncated"], false);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["column"].as_str()),
        (Some(6), Some("decile")),
        "{body}"
    );
    assert_eq!((errors[1]["line"].as_u64(), errors[1]["column"].as_str()), (Some(7), Some("kk")), "{body}");
    let sha = body["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha, kjp_store::sha256_hex(&file));

    // The store holds it as the current DTKS snapshot, as `kjp import` would.
    let current = app.store.latest_snapshots().await.unwrap();
    assert!(current.iter().any(|s| s.source == "dtks" && s.sha256 == sha && s.rows_bad == 2));

    // Downloaded back byte for byte, and the full report.
    let (code, kind, bytes) = get(&app, &token, &format!("/api/v1/files/{sha}")).await;
    assert_eq!((code, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(bytes, file);
    let (code, _, report) = get(&app, &token, body["report"].as_str().unwrap()).await;
    assert_eq!(code, 200);
    let report = String::from_utf8(report).unwrap();
    assert!(report.starts_with("line,column,reason\n6,decile,"), "{report}");
    assert_eq!(report.lines().count(), 3, "{report}");

    // The same bytes again change nothing.
    let (code, again) = upload(&app, &token, &[("file", Some("dtks.csv"), &file)]).await;
    assert_eq!((code, again["outcome"].as_str()), (200, Some("unchanged")), "{again}");
    assert_eq!(again["errors"].as_array().unwrap().len(), 2, "the errors are listed again from the report");

    // Listed among the client's snapshots (only its own source).
    let (code, _, list) = get(&app, &token, "/api/v1/files").await;
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    let sources: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["source"].as_str().unwrap()).collect();
    assert_eq!(sources, ["dtks"]);

    let log = app.store.audit_entries(50, "").await.unwrap();
    let actions: Vec<&str> =
        log.iter().filter(|e| e.actor == "client:dinsos").map(|e| e.action.as_str()).collect();
    for action in ["api.import", "api.download", "api.report", "api.files"] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_with_the_reason_and_leave_nothing_behind() {
    let app = spawn(true, 0).await;
    let token = client_with(&app, "dinsos", &["files.import:dtks"]).await;
    let before = app.store.latest_snapshots().await.unwrap();

    let (code, body) = upload(&app, &token, &[("file", Some("dtks.csv"), b"nik,kk\n1,2\n")]).await;
    assert_eq!(code, 422, "{body}");
    assert!(body["error"].as_str().unwrap().contains("header"), "{body}");

    let (code, body) = upload(&app, &token, &[("file", Some("dtks.xlsx"), b"x")]).await;
    assert_eq!((code, body["field"].as_str()), (400, Some("file")), "{body}");
    assert!(body["error"].as_str().unwrap().contains("dukcapil.csv"), "names the expected files: {body}");

    let (code, body) = upload(&app, &token, &[("force", None, b"true")]).await;
    assert_eq!((code, body["field"].as_str()), (400, Some("file")), "{body}");

    let dtks = fixture_dtks();
    let two = [("file", Some("dtks.csv"), dtks.as_slice()), ("file", Some("dtks.csv"), dtks.as_slice())];
    assert_eq!(upload(&app, &token, &two).await.0, 400, "one file per request");

    let res = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400, "not multipart");

    // Another agency's source is out of this client's scope.
    let (code, body) = upload(&app, &token, &[("file", Some("samsat.csv"), b"anything")]).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("files.import:samsat"), "{body}");

    // A truncated export (one good row of four) is refused unless forced.
    let header_and_one: Vec<u8> = dtks.split(|b| *b == b'\n').take(2).collect::<Vec<_>>().join(&b'\n');
    let mut truncated = header_and_one.clone();
    truncated.push(b'\n');
    let (code, body) = upload(&app, &token, &[("file", Some("dtks.csv"), &truncated)]).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("force=true"), "{body}");
    assert_eq!(app.store.latest_snapshots().await.unwrap(), before, "nothing imported by the refusals");

    let parts = [("file", Some("dtks.csv"), truncated.as_slice()), ("force", None, b"true".as_slice())];
    let (code, body) = upload(&app, &token, &parts).await;
    assert_eq!((code, body["rows_good"].as_i64()), (201, Some(1)), "{body}");

    // Scratch files are gone.
    let uploads = app.store.data_dir().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&uploads).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413() {
    let app = spawn_with(true, Config { rate_per_minute: 0, upload_limit: 1024, ..Config::default() }).await;
    let token = client_with(&app, "dinsos", &["files.import"]).await;
    let mut big = fixture_dtks();
    big.resize(4096, b'\n');
    let (code, body) = upload(&app, &token, &[("file", Some("dtks.csv"), &big)]).await;
    assert_eq!(code, 413, "{body}");
}

#[tokio::test]
async fn the_decree_annex_is_streamed_to_a_client_with_decree_export() {
    let app = spawn(true, 0).await;
    let bank = client_with(&app, "bankdki", &["decree.export"]).await;
    let dinsos = client_with(&app, "dinsos", &["files.import"]).await;

    let (code, kind, bytes) = get(&app, &bank, "/api/v1/annex/recipients.csv?stage=2025/1").await;
    assert_eq!((code, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let csv = String::from_utf8(bytes).unwrap();
    assert!(!csv.contains(RECIPIENT), "full NIKs never leave in the annex");
    assert!(csv.contains("3171**********01"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 3, "three recipients: {csv}");

    let (code, _, totals) = get(&app, &bank, "/api/v1/annex/totals.csv?stage=2025/1").await;
    assert_eq!(code, 200);
    assert!(String::from_utf8(totals).unwrap().contains("1140000"), "the monthly total");
    let (code, kind, xlsx) = get(&app, &bank, "/api/v1/annex/annex.xlsx?stage=2025/1").await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("application/vnd.openxmlformats"), "{kind}");
    assert_eq!(&xlsx[..2], b"PK", "a zip container");

    assert_eq!(get(&app, &bank, "/api/v1/annex/recipients.csv?stage=2025/2").await.0, 404);
    assert_eq!(get(&app, &bank, "/api/v1/annex/recipients.csv?stage=2025/9").await.0, 400);
    assert_eq!(get(&app, &bank, "/api/v1/annex/recipients.csv").await.0, 400);
    assert_eq!(get(&app, &bank, "/api/v1/annex/secret.txt?stage=2025/1").await.0, 400);
    assert_eq!(get(&app, &dinsos, "/api/v1/annex/recipients.csv?stage=2025/1").await.0, 403);
    assert_eq!(get(&app, &bank, "/api/v1/files").await.0, 403, "no import scope, no agency files");

    let scratch = app.store.data_dir().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "annex scratch directories are removed: {left:?}");
}
