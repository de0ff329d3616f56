//! Operations, black box: `/readyz`, `/metrics`, graceful shutdown (the request log is
//! tested alone in `logs.rs`).

mod common;
use common::*;

use std::time::Duration;

use kjp_domain::Policy;
use kjp_server::{AppState, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get_json(app: &TestApp, path: &str) -> (u16, serde_json::Value) {
    let res = app.client.get(app.url(path)).send().await.expect("request");
    let code = res.status().as_u16();
    let text = res.text().await.expect("body");
    (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

#[tokio::test]
async fn readyz_is_ready_when_the_database_answers_and_the_index_is_built() {
    let app = spawn(true, 0).await;
    let (code, body) = get_json(&app, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert!(body["index_age_seconds"].is_u64(), "{body}");
}

#[tokio::test]
async fn readyz_is_unavailable_while_the_index_is_not_built() {
    let app = spawn(true, 0).await;
    let state = AppState::starting(app.store.clone(), Policy::kjp_plus(), Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(kjp_server::serve(listener, state.clone(), std::future::pending()));
    let url = format!("http://{addr}/readyz");
    let res = app.client.get(&url).send().await.expect("readyz");
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = serde_json::from_str(&res.text().await.expect("body")).expect("json");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "the status index is being built");
    // /healthz answers all the same: the process is alive.
    let health = app.client.get(format!("http://{addr}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    state.reload().await.expect("build");
    let res = app.client.get(&url).send().await.expect("readyz");
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn readyz_is_unavailable_when_the_database_does_not_answer() {
    let app = spawn(true, 0).await;
    app.store.close().await;
    let (code, body) = get_json(&app, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert!(body["reason"].as_str().expect("reason").starts_with("database"), "{body}");
    // The status check still answers from its index.
    let (code, _) = app
        .api(&[("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("year", "2025"), ("stage", "1")])
        .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_never_by_nik() {
    let app = spawn(true, 0).await;
    let q = [("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("year", "2025"), ("stage", "1")];
    app.api(&q).await;
    app.api(&q).await;
    app.api(&[("nik", UNKNOWN), ("birth_date", RECIPIENT_BIRTH), ("year", "2025"), ("stage", "1")]).await;
    app.check(&[("nik", RECIPIENT), ("birth_date", "04-03-2012"), ("year", "2025"), ("stage", "1")]).await;
    let res = app.client.get(app.url("/staff/complaints/KJP-0001")).send().await.expect("complaint");
    // The guard sends the anonymous to sign in (303, followed by the client).
    assert_eq!(res.url().path(), "/staff/login");
    app.client.get(app.url(&format!("/no/such/{RECIPIENT}"))).send().await.expect("404");

    let res = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = res.text().await.expect("body");
    for line in [
        r#"kjp_http_requests_total{method="GET",route="/api/v1/status",status="200"} 2"#,
        r#"kjp_http_requests_total{method="GET",route="/api/v1/status",status="404"} 1"#,
        r#"kjp_http_requests_total{method="POST",route="/cek",status="200"} 1"#,
        r#"kjp_http_requests_total{method="GET",route="/staff/complaints/{ticket}",status="303"} 1"#,
        r#"kjp_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"kjp_http_request_duration_seconds_count{method="GET",route="/api/v1/status"} 3"#,
        r#"kjp_status_index_children{stage="2025/1"} 7"#,
        r#"kjp_status_index_decreed{stage="2025/1"} 1"#,
        "kjp_complaints_open 0",
        "kjp_complaints_overdue 0",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    assert!(text.contains("kjp_status_index_age_seconds "), "{text}");
    assert!(text.contains("kjp_http_request_duration_seconds_bucket{"), "{text}");
    assert!(!text.contains(RECIPIENT) && !text.contains(UNKNOWN), "a NIK in the metrics");
    assert!(!text.contains("KJP-0001"), "a ticket in the metrics");
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_show_a_stage_run_as_it_goes_and_when_it_ended() {
    let app = spawn(true, 0).await;
    let metric = |text: &str, name: &str| -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let scrape = || async { app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    // What `kjp stage verify` writes: the run begins, goes on, ends.
    app.store.set_stage_progress("2025/2", "start", 0, 0, true, false).await.unwrap();
    app.store.set_stage_progress("2025/2", "decide", 1200, 5000, false, false).await.unwrap();
    let text = scrape().await;
    assert_eq!(metric(&text, r#"kjp_stage_run_running{stage="2025/2"}"#).as_deref(), Some("1"), "{text}");
    assert_eq!(
        metric(&text, r#"kjp_stage_run_step_done{stage="2025/2",step="decide"}"#).as_deref(),
        Some("1200")
    );
    assert_eq!(
        metric(&text, r#"kjp_stage_run_step_total{stage="2025/2",step="decide"}"#).as_deref(),
        Some("5000")
    );
    let updated: i64 = metric(&text, r#"kjp_stage_run_updated_timestamp_seconds{stage="2025/2"}"#)
        .expect("updated")
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - updated).abs() < 60, "{updated}");
    app.store.set_stage_progress("2025/2", "write decisions", 5000, 5000, false, true).await.unwrap();
    let text = scrape().await;
    assert_eq!(metric(&text, r#"kjp_stage_run_running{stage="2025/2"}"#).as_deref(), Some("0"), "{text}");
    assert!(!text.contains(r#"step="decide""#), "only the step the run is at: {text}");
    assert_eq!(
        metric(&text, r#"kjp_stage_run_step_done{stage="2025/2",step="write decisions"}"#).as_deref(),
        Some("5000")
    );
    assert_eq!(metric(&text, "kjp_registry_notify_backlog").as_deref(), Some("0"));
    assert_eq!(metric(&text, "kjp_registry_callbacks_pending").as_deref(), Some("0"));
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_refuses_new_connections() {
    let mut app = spawn(true, 0).await;
    let body = format!("nik={RECIPIENT}&birth_date=04-03-2012&year=2025&stage=1");
    let (first, rest) = body.split_at(10);
    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /cek HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("head");
    slow.write_all(first.as_bytes()).await.expect("first part");
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(app.addr).await.is_err(), "a new connection was accepted during shutdown");
    assert!(!app.is_stopped(), "stopped with a request in flight");

    slow.write_all(rest.as_bytes()).await.expect("rest");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut got))
        .await
        .expect("answered in time")
        .expect("read");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("PENERIMA"), "the answer itself: {got}");
    tokio::time::timeout(Duration::from_secs(5), app.stopped())
        .await
        .expect("serve returned after the last request")
        .expect("serve");
}
