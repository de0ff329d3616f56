//! The public JSON API fuzzed against its own OpenAPI document by schemathesis (PyPI) on a
//! running `kjp serve`: any server error, or a status or body the document does not
//! describe, fails. `.ci/run` installs schemathesis into `KJP_SCHEMATHESIS` (a virtualenv);
//! without it this test fails and says how to install it, unless
//! `KJP_SKIP_SCHEMATHESIS=1`.
//!
//! `positive_data_acceptance` is skipped: a 16-digit NIK can still be impossible (an
//! unknown region code, an impossible date inside it), which a schema cannot say; the 400
//! it gets is documented.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn venv() -> PathBuf {
    match std::env::var_os("KJP_SCHEMATHESIS") {
        Some(v) => PathBuf::from(v),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
            });
            cache.join("kjp-ci").join("schemathesis-4.32.5")
        }
    }
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    if std::env::var("KJP_SKIP_SCHEMATHESIS").is_ok_and(|v| v == "1") {
        eprintln!("KJP_SKIP_SCHEMATHESIS=1: skipped");
        return;
    }
    let bin = venv().join("bin").join("schemathesis");
    assert!(
        bin.exists(),
        "schemathesis is not installed at {}: run `bash .ci/run`, or `python3 -m venv {v} && {v}/bin/pip install schemathesis==4.32.5` (or set KJP_SKIP_SCHEMATHESIS=1)",
        bin.display(),
        v = venv().display()
    );
    let kjp = env!("CARGO_BIN_EXE_kjp");
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let out = Command::new(kjp)
        .args(["demo", "--scale", "0.002", "--no-serve", "--dir"])
        .arg(&demo)
        .output()
        .expect("kjp demo runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // An API client holding the registry's scopes, so that its routes are fuzzed past the
    // token check too.
    let out = Command::new(kjp)
        .args([
            "client",
            "add",
            "fuzz",
            "--agency",
            "schemathesis",
            "--scope",
            "registry.search,registry.subscribe",
        ])
        .env("KJP_DATABASE_URL", format!("sqlite:{}", demo.join("kjp.db").display()))
        .env("KJP_DATA_DIR", demo.join("kjp-data"))
        .output()
        .expect("kjp client add runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .split_whitespace()
        .find(|w| w.starts_with("kjp_") && w.len() == 68)
        .unwrap_or_else(|| panic!("no token in {stdout}"))
        .to_string();
    // A free loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Server(
        Command::new(kjp)
            .args(["serve", "--bind", "127.0.0.1", "--rate-limit", "0", "--port", &port.to_string()])
            .arg("--database-url")
            .arg(format!("sqlite:{}", demo.join("kjp.db").display()))
            .env("KJP_DATA_DIR", demo.join("kjp-data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kjp serve starts"),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "kjp serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let base = format!("http://127.0.0.1:{port}");
    // Run in the temporary directory: schemathesis keeps its databases in the working one.
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["run", &format!("{base}/api/openapi.json"), "--url", &base])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", "--exclude-checks", "positive_data_acceptance", "-n", "300", "--no-color"])
        .output()
        .expect("schemathesis runs");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis found failures:\n{report}");
}
