//! A running server on port 0 over a fresh SQLite store built from a tiny hand-made
//! Jakarta (the import crate's stage-run fixture): imported, verified, settled and decreed
//! through `kjp_import`'s own functions.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use kjp_domain::conflict::Rule;
use kjp_domain::{Nik, Policy, Stage, Status};
use kjp_import::{decree, stage};
use kjp_server::{AppState, Config};
use kjp_store::Store;

/// Children of the fixture (reference date 2025-01-01) and their dates of birth.
pub const RECIPIENT: &str = "3171010403120001"; // Adi Saputra, private SMP: Rp 470.000
pub const RECIPIENT_BIRTH: &str = "2012-03-04";
pub const CAR_CONFLICT: &str = "3171010505140002";
pub const CAR_OWNED: &str = "3171010606130003"; // Candra: ineligible, EXCLUDED_CAR
pub const CAR_OWNED_BIRTH: &str = "2013-06-06";
pub const NOT_IN_REGISTRY: &str = "3171010808100005";
pub const DTKS_OUTSIDE: &str = "3171011212070008";
/// Eko, a Transjakarta driver's child outside DTKS: last in the funding order, left out by
/// the budget ceiling.
pub const UNFUNDED: &str = "3171011009090006";
pub const UNFUNDED_BIRTH: &str = "2009-09-10";
/// A well-formed NIK nobody in the fixture has.
pub const UNKNOWN: &str = "3171010403129999";

async fn import_all(store: &Store, dir: &Path) {
    for path in kjp_import::source_files(dir).expect("fixture files") {
        // Some fixture registries are empty on purpose (no foster children, no sanctions).
        kjp_import::import_file(store, &path, true).await.expect("import");
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Store,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn stage() -> Stage {
    Stage::parse("2025/1").expect("stage")
}

/// Imports and verifies stage 2025/1; decrees it when `decreed`.
pub async fn spawn(decreed: bool, rate_per_minute: u32) -> TestApp {
    spawn_with(decreed, Config { rate_per_minute, ..Config::default() }).await
}

/// As [`spawn`], with every setting given.
pub async fn spawn_with(decreed: bool, config: Config) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    kjp_import::fixture::write_all(dir.path());
    let url = format!("sqlite:{}", dir.path().join("kjp.db").display());
    let store = Store::open(&url, Some(dir.path().join("kjp-data"))).await.expect("open store");
    import_all(&store, dir.path()).await;
    stage::open(&store, stage()).await.expect("open stage");
    if decreed {
        decree_stage(&store).await;
    } else {
        let no_progress = |_: &str, _: u64, _: u64| {};
        stage::verify(&store, stage(), &Policy::kjp_plus(), &no_progress).await.expect("verify");
    }
    let state = AppState::load(store.clone(), Policy::kjp_plus(), config).await.expect("build the index");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kjp_server::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        state,
        store,
        client: reqwest::Client::new(),
        _dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// Verifies, settles the three reviews, sets a budget ceiling that leaves one eligible
/// child unfunded and decrees the stage.
pub async fn decree_stage(store: &Store) {
    let s = stage();
    let policy = Policy::kjp_plus();
    let no_progress = |_: &str, _: u64, _: u64| {};
    stage::verify(store, s, &policy, &no_progress).await.expect("verify");
    decree::resolve_by_rule(
        store,
        s,
        &policy,
        Rule::LaterSourceWins,
        "Samsat block after Bapenda record",
        "tester",
    )
    .await
    .expect("resolve by rule");
    let nik = |n: &str| Nik::parse(n).expect("nik");
    decree::resolve_one(
        store,
        s,
        &policy,
        &nik(NOT_IN_REGISTRY),
        Status::Ineligible,
        "not a resident",
        "tester",
    )
    .await
    .expect("resolve");
    decree::resolve_one(store, s, &policy, &nik(DTKS_OUTSIDE), Status::Eligible, "lives in Gambir", "tester")
        .await
        .expect("resolve");
    // Everyone but Eko: 6 x (470,000 + 250,000 + 420,000).
    kjp_import::funding::set_budget(store, s, Some(kjp_domain::Rupiah::new(6_840_000)))
        .await
        .expect("budget");
    let req = decree::DecreeRequest {
        number: "266/2025".into(),
        date: "2025-03-10".parse().expect("date"),
        note: String::new(),
    };
    decree::decree(store, s, &policy, &req).await.expect("decree");
}

impl TestApp {
    /// Asks the server to stop, as Ctrl-C or SIGTERM does; [`TestApp::stopped`] waits.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Whether `serve` has returned.
    pub fn is_stopped(&self) -> bool {
        self.server.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for `serve` to return (every request in flight answered).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        match self.server.take() {
            Some(h) => h.await.expect("the server task"),
            None => Ok(()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Submits the page's form.
    pub async fn check(&self, fields: &[(&str, &str)]) -> (u16, String) {
        let res = self.client.post(self.url("/cek")).form(fields).send().await.expect("request");
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    /// Calls the JSON API.
    pub async fn api(&self, query: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let res = self.client.get(self.url("/api/v1/status")).query(query).send().await.expect("request");
        let code = res.status().as_u16();
        let text = res.text().await.expect("body");
        (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }
}
