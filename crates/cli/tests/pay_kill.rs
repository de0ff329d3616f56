//! `kjp pay` killed with SIGKILL at any moment while it builds, records or writes a batch,
//! then run again: nobody is paid twice or zero times, and the batch, its file and its
//! sha256 are the ones an uninterrupted run gives. On SQLite always; on PostgreSQL too
//! when `KJP_TEST_DATABASE_URL` is set (a fresh database per run).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sqlx::Connection;

/// Where a run keeps its database and files.
struct Place {
    url: String,
    data: PathBuf,
}

fn kjp(place: &Place, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kjp"));
    c.args(args)
        .env("KJP_DATABASE_URL", &place.url)
        .env("KJP_DATA_DIR", &place.data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn ok(place: &Place, args: &[&str]) {
    let out = kjp(place, args).output().expect("run");
    assert!(out.status.success(), "kjp {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

const PAY: &[&str] = &["pay", "--stage", "2025/1", "--months", "2025-04..2025-06", "--format", "json"];

fn pay_json(place: &Place) -> serde_json::Value {
    let out = kjp(place, PAY).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Kills `kjp pay` at spread moments of a run as long as `whole`, runs it again, and
/// checks the outcome against `reference` (an uninterrupted run on a copy).
fn kill_and_check(place: &Place, reference: &serde_json::Value, whole: std::time::Duration) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for k in 0..10u32 {
        let mut child = kjp(place, PAY).spawn().expect("spawn");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let jitter = (seed % 1000) as u32;
        std::thread::sleep(whole * k / 10 + whole * jitter / 10_000);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let after = pay_json(place);
    for key in ["batch", "lines", "total", "sha256"] {
        assert_eq!(after[key], reference[key], "{key}: {after} vs {reference}");
    }
    let file = after["file"].as_str().unwrap().to_string();
    let bytes = std::fs::read(&file).expect("the batch file is there");
    assert_eq!(kjp_store::sha256_hex(&bytes), after["sha256"].as_str().unwrap());
    // Running again changes nothing.
    assert_eq!(pay_json(place)["sha256"], reference["sha256"]);

    // Every recipient has April to June exactly once, or is withheld with a reason.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = kjp_store::Store::open(&place.url, Some(place.data.clone())).await.unwrap();
        let stage = kjp_domain::Stage::parse("2025/1").unwrap();
        let batches = store.batches(stage).await.unwrap();
        let q2: Vec<_> = batches.iter().filter(|b| b.months == 0b111000).collect();
        assert_eq!(q2.len(), 1, "one batch for April to June, whatever the kills");
        let months = kjp_import::money::stage_months(stage);
        let paid = store.paid_months(&months).await.unwrap();
        let lines = store.batch_lines(&q2[0].batch).await.unwrap();
        let mut in_batch = std::collections::HashSet::new();
        for l in &lines {
            assert!(in_batch.insert(l.nik), "{} twice in the batch", l.nik);
            assert_eq!(paid.get(&l.nik).map(|b| b & 0b111000), Some(0b111000));
        }
        let withheld = Path::new(&file).with_file_name("withheld-2025-1-202504-202506.csv");
        let withheld: std::collections::HashSet<i64> = std::fs::read_to_string(withheld)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(|l| l[..16].parse().unwrap())
            .collect();
        for r in store.recipients(stage).await.unwrap() {
            let nik: i64 = r.nik.parse().unwrap();
            assert!(
                in_batch.contains(&nik) != withheld.contains(&nik),
                "{nik}: paid exactly once, or withheld with a reason"
            );
        }
        store.close().await;
    });
}

#[test]
fn pay_killed_at_any_moment_pays_everyone_exactly_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let demo = root.path().join("demo");
    // A decreed stage of a 2% Jakarta with synthetic accounts; January to March paid.
    let out = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(["demo", "--no-serve", "--scale", "0.02", "--dir", demo.to_str().unwrap()])
        .output()
        .expect("demo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let place = |dir: &Path| Place {
        url: format!("sqlite:{}", dir.join("kjp.db").display()),
        data: dir.join("kjp-data"),
    };

    // An uninterrupted run on a copy: the reference, and its duration.
    let probe = root.path().join("probe");
    copy_dir(&demo, &probe);
    let started = std::time::Instant::now();
    let reference = pay_json(&place(&probe));
    let whole = started.elapsed();
    assert!(reference["lines"].as_i64().unwrap() > 1000, "{reference}");
    kill_and_check(&place(&demo), &reference, whole);
}

#[test]
fn pay_killed_at_any_moment_on_postgres() {
    let Some(admin) = std::env::var("KJP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_else(|| admin.clone());
    let name = format!("kjp_paykill_{}", std::process::id());
    let sql = |q: String| {
        runtime.block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(&q).execute(&mut c).await.expect("admin statement");
            c.close().await.ok();
        })
    };
    sql(format!("CREATE DATABASE {name}"));
    let root = tempfile::tempdir().expect("tempdir");
    let main = Place { url: format!("{base}/{name}"), data: root.path().join("kjp-data") };
    // A decreed stage of a 1% Jakarta (settled by the synthetic benchmark setup), accounts.
    let data = root.path().join("data");
    ok(&main, &["generate", "--scale", "0.01", "--out", data.to_str().unwrap()]);
    ok(&main, &["import", "--data", data.to_str().unwrap(), "--force"]);
    ok(&main, &["stage", "open", "2025", "1"]);
    ok(&main, &["stage", "verify", "2025/1"]);
    ok(&main, &["bank", "prepare-bench", "--stage", "2025/1"]);
    let accounts = root.path().join("accounts.csv");
    ok(&main, &["bank", "simulate-accounts", "--stage", "2025/1", "--out", accounts.to_str().unwrap()]);
    ok(&main, &["accounts", "import", accounts.to_str().unwrap()]);

    // The reference on a copy of the database.
    sql(format!("CREATE DATABASE {name}_probe TEMPLATE {name}"));
    let probe = Place { url: format!("{base}/{name}_probe"), data: root.path().join("probe-data") };
    let started = std::time::Instant::now();
    let reference = pay_json(&probe);
    let whole = started.elapsed();
    assert!(reference["lines"].as_i64().unwrap() > 1000, "{reference}");
    kill_and_check(&main, &reference, whole);
    sql(format!("DROP DATABASE IF EXISTS {name}_probe WITH (FORCE)"));
    sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
