//! `kjp serve` as a process: its settings file, JSON logs, and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn a_bad_settings_file_stops_serve_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kjp.toml");
    std::fs::write(&file, "port = 0\n\nprot = 1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("KJP_PORT")
        .output()
        .expect("kjp");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3: unknown field `prot`", file.display())), "{err}");
}

#[cfg(unix)]
#[test]
fn serve_reads_its_file_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("kjp.toml");
    let db = dir.path().join("kjp.db");
    std::fs::write(
        &file,
        format!(
            "bind = \"127.0.0.1\"\nport = 0\nlog_format = \"json\"\ndatabase_url = \"sqlite:{}\"\n",
            db.display()
        ),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(["serve", "--config"])
        .arg(&file)
        .env("KJP_RATE_PER_MINUTE", "0")
        .env_remove("KJP_PORT")
        .env_remove("KJP_LOG_FORMAT")
        .env_remove("KJP_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kjp serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port: u16 = loop {
        let line = lines.next().expect("a line before the address").expect("stdout");
        if let Some(rest) = line.strip_prefix("Status check at http://127.0.0.1:") {
            break rest.trim_end_matches('/').parse().expect("port");
        }
    };
    let ready = get(port, "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let metrics = get(port, "/metrics");
    assert!(
        metrics.contains("kjp_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"),
        "{metrics}"
    );

    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(term.success());
    let status = child.wait().expect("exit");
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).expect("stderr");
    let logs: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(logs.iter().any(|l| l["route"] == "/readyz" && l["status"] == 200), "{err}");
    assert!(
        logs.iter().any(|l| l["message"].as_str().is_some_and(|m| m.starts_with("shutting down"))),
        "{err}"
    );
}
