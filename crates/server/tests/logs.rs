//! The request log, black box. Alone in its test binary: the subscriber is set for this
//! thread only, and tracing caches per call site whether anyone listens, so a test running
//! beside it on another thread (with no subscriber) could silence these call sites.

mod common;
use common::*;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kjp_server::LogFormat;

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("utf-8")
    }
}

// The test runtime runs on this one thread, server included: the default subscriber set
// here sees the server's events.
#[tokio::test(flavor = "current_thread")]
async fn one_json_line_per_request_with_its_id_and_no_personal_data() {
    let logs = Captured::default();
    let _guard = tracing::subscriber::set_default(kjp_server::log_subscriber(LogFormat::Json, logs.clone()));
    let app = spawn(true, 0).await;

    let res = app
        .client
        .get(app.url("/api/v1/status"))
        .query(&[("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("year", "2025"), ("stage", "1")])
        .send()
        .await
        .expect("api");
    assert_eq!(res.status().as_u16(), 200);
    let id = res.headers()["x-request-id"].to_str().expect("id").to_owned();
    let (code, _) = app
        .check(&[("nik", CAR_OWNED), ("birth_date", CAR_OWNED_BIRTH), ("year", "2025"), ("stage", "1")])
        .await;
    assert_eq!(code, 200);
    // A NIK in the path of an unknown route, and a bad one in the query.
    app.client.get(app.url(&format!("/api/v1/status/{UNFUNDED}?nik={UNFUNDED}"))).send().await.expect("404");
    app.client.get(app.url("/staff/complaints/KJP-0001")).send().await.expect("complaint");

    let text = logs.text();
    for nik in [RECIPIENT, CAR_OWNED, UNFUNDED] {
        assert!(!text.contains(nik), "NIK {nik} in the logs:\n{text}");
        assert!(!text.contains(&nik[..12]), "part of NIK {nik} in the logs:\n{text}");
    }
    for birth in [RECIPIENT_BIRTH, CAR_OWNED_BIRTH] {
        assert!(!text.contains(birth), "a date of birth in the logs:\n{text}");
    }
    assert!(!text.contains("KJP-0001"), "a ticket number in the logs:\n{text}");

    let requests: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["target"] == "kjp::http")
        .collect();
    assert_eq!(requests.len(), 5, "{text}");
    let api = &requests[0];
    assert_eq!(api["request_id"], id.as_str());
    assert_eq!(api["method"], "GET");
    assert_eq!(api["route"], "/api/v1/status");
    assert_eq!(api["status"], 200);
    assert!(api["latency_ms"].is_f64(), "{api}");
    assert_eq!(api["level"], "INFO");
    assert_eq!(requests[1]["route"], "/cek");
    assert_eq!(requests[2]["route"], "unmatched");
    assert_eq!(requests[2]["status"], 404);
    assert_eq!(requests[3]["route"], "/staff/complaints/{ticket}");
    assert_eq!(requests[3]["status"], 303);
    assert_eq!(requests[4]["route"], "/staff/login");
    let ids: std::collections::HashSet<_> = requests.iter().map(|r| r["request_id"].to_string()).collect();
    assert_eq!(ids.len(), 5, "request ids are unique");
}
