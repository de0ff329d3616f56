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
/// A well-formed NIK nobody in the fixture has.
pub const UNKNOWN: &str = "3171010403129999";

fn write(dir: &Path, name: &str, lines: &[&str]) {
    std::fs::write(dir.join(name), lines.join("\n") + "\n").expect("write fixture");
}

/// Writes the fixture files into `dir`.
pub fn fixture(dir: &Path) {
    write(
        dir,
        "dukcapil.csv",
        &[
            "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship",
            "3171010403120001,3171010101100001,Adi Saputra,L,2012-03-04,31.71.01.1001,true,true,anak",
            "3171014101800001,3171010101100001,Sri Wahyuni,P,1980-01-01,31.71.01.1001,true,true,kepala_keluarga",
            "3171010505140002,3171010101100002,Bima Putra,L,2014-05-05,31.71.01.1002,true,true,anak",
            "3171010101750001,3171010101100002,Joko Susilo,L,1975-01-01,31.71.01.1002,true,true,kepala_keluarga",
            "3171010606130003,3171010101100003,Candra,L,2013-06-06,31.71.01.1003,true,true,anak",
            "3171010202700001,3171010101100003,Hadi,L,1970-02-02,31.71.01.1003,true,true,kepala_keluarga",
            "3171010707110004,3171010101100004,Dodi,L,2011-07-07,,false,false,anak",
            "3171011009090006,3171010101100006,Eko,L,2009-09-10,31.71.01.1004,true,true,anak",
            "3171010303720001,3171010101100006,Slamet,L,1972-03-03,31.71.01.1004,true,true,kepala_keluarga",
            "3171011111080007,3171010101100007,Fajar,L,2008-11-11,31.71.01.1005,true,true,anak",
            "3171010404760001,3171010101100007,Gunawan,L,1976-04-04,31.71.01.1005,true,true,kepala_keluarga",
            "3171011212070008,3171010101100008,Hendra,L,2007-12-12,31.71.01.1006,true,true,anak",
            // Bad rows: an impossible date, a NIK with a letter, a duplicate of line 2.
            "3171011312070009,3171010101100009,Bad Date,L,2007-13-13,31.71.01.1006,true,true,anak",
            "31710113130700x9,3171010101100009,Bad Nik,L,2007-12-13,31.71.01.1006,true,true,anak",
            "3171010403120001,3171010101100001,Adi Saputra,L,2012-03-04,31.71.01.1001,true,true,anak",
            // Fajar's elder brother works for a low wage: a sibling is not a parent.
            "3171010101000007,3171010101100007,Budi,L,2000-01-01,31.71.01.1005,true,true,anak",
        ],
    );
    write(
        dir,
        "schools.csv",
        &[
            "npsn,name,level,status,kelurahan",
            "20100001,SMP Swasta Harapan,SMP,swasta,31.71.01.1001",
            "20100002,SD Negeri Gambir 01,SD,negeri,31.71.01.1001",
            "20100003,SMA Negeri 1,SMA,negeri,31.71.01.1002",
            "20100004,SMK Swasta Teknik,SMK,swasta,31.71.01.1003",
        ],
    );
    write(
        dir,
        "dapodik.csv",
        &[
            "nik,nisn,npsn,level,grade,active",
            "3171010403120001,0121234501,20100001,SMP,7,true",
            "3171010505140002,0141234502,20100002,SD,5,true",
            "3171010606130003,0131234503,20100002,SD,6,true",
            "3171010707110004,0111234504,20100001,SMP,8,true",
            "3171010808100005,0101234505,20100001,SMP,9,true",
            "3171011009090006,0091234506,20100003,SMA,10,true",
            "3171011111080007,0081234507,20100004,SMK,11,true",
            "3171011212070008,0071234508,20100003,SMA,12,true",
        ],
    );
    write(dir, "emis.csv", &["nik,nisn,npsn,level,grade,active"]);
    write(
        dir,
        "dtks.csv",
        &[
            "nik,kk,decile,listed_since,region",
            "3171014101800001,3171010101100001,2,2019-05-01,3171",
            "3171010101750001,3171010101100002,1,2018-05-01,3171",
            "3171010202700001,3171010101100003,3,2018-05-01,3171",
            "3171011212070008,3171010101100008,2,2020-01-01,3201",
        ],
    );
    write(
        dir,
        "sktm.csv",
        &[
            "nik,number,issued,valid_until",
            "3171010403120001,SKTM/001/2024,2024-08-01,2025-06-30",
            "3171010505140002,SKTM/002/2024,2024-07-01,2025-06-30",
            "3171010606130003,SKTM/003/2024,2024-07-01,2025-06-30",
            "3171011212070008,SKTM/008/2024,2024-07-01,2025-06-30",
            "3171011111080007,SKTM/007/2023,2023-01-01,2023-12-31",
        ],
    );
    write(
        dir,
        "transjakarta.csv",
        &["nik,kk,vehicle_class,active", "3171010303720001,3171010101100006,bus_kecil,true"],
    );
    write(
        dir,
        "wages.csv",
        &[
            "nik,kk,ktp_dki,monthly_wage,period",
            "3171010404760001,3171010101100007,true,7250000,2024-11",
            "3171010101000007,3171010101100007,true,3000000,2024-11",
        ],
    );
    write(dir, "foster.csv", &["nik,care_home,since"]);
    write(dir, "lurah.csv", &["nik,kelurahan,letter_number,issued"]);
    write(
        dir,
        "bapenda.csv",
        &[
            "owner_nik,plate,vehicle_kind,as_of",
            "3171010101750001,B 1 AA,roda4,2023-01-01",
            "3171010202700001,B 2 BB,roda4,2024-01-01",
            "3171010303720001,B 3 CC,roda2,2024-01-01",
        ],
    );
    write(
        dir,
        "samsat.csv",
        &[
            "plate,owner_nik,status,status_date",
            "B 1 AA,3171010101750001,blocked,2024-05-01",
            "B 2 BB,3171010202700001,active,2020-01-01",
        ],
    );
    write(dir, "njop.csv", &["kk,njop,as_of", "3171010101100001,350000000,2024-01-01"]);
    write(dir, "occupations.csv", &["nik,kk,occupation,as_of"]);
    write(dir, "sanctions.csv", &["nik,npsn,category,since,lifted"]);
}

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
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub fn stage() -> Stage {
    Stage::parse("2025/1").expect("stage")
}

/// Imports and verifies stage 2025/1; decrees it when `decreed`.
pub async fn spawn(decreed: bool, rate_per_minute: u32) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
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
    let state = AppState::load(store.clone(), Policy::kjp_plus(), Config { rate_per_minute })
        .await
        .expect("build the index");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(kjp_server::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestApp { addr, state, store, client: reqwest::Client::new(), _dir: dir, _shutdown: tx }
}

/// Verifies, settles the three reviews and decrees the stage.
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
    let req = decree::DecreeRequest {
        number: "266/2025".into(),
        date: "2025-03-10".parse().expect("date"),
        note: String::new(),
    };
    decree::decree(store, s, &policy, &req).await.expect("decree");
}

impl TestApp {
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
