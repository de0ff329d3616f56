//! An import killed with SIGKILL at any moment leaves either a whole snapshot or none,
//! and importing again afterwards works and records exactly one.

use std::path::Path;
use std::process::{Command, Stdio};

fn big_dukcapil(path: &Path, rows: u32) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    writeln!(out, "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship").expect("write");
    for i in 0..rows {
        let day = 1 + i % 28;
        let serial = 1 + (i / 28) % 9999;
        let month = 1 + (i / 28 / 9999) % 12;
        writeln!(
            out,
            "317101{day:02}{month:02}10{serial:04},3171010101{:06},Warga {i},L,2010-{month:02}-{day:02},31.71.01.1001,true,true,anak",
            i % 999_999 + 1
        )
        .expect("write");
    }
}

fn kjp(db: &Path, data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kjp"));
    c.args(args)
        .env("KJP_DATABASE_URL", format!("sqlite:{}", db.display()))
        .env("KJP_DATA_DIR", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn snapshot_count(db: &Path, data: &Path) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = kjp_store::Store::open(&format!("sqlite:{}", db.display()), Some(data.into()))
            .await
            .expect("open");
        let n = store.latest_snapshots().await.expect("snapshots").len();
        store.close().await;
        n
    })
}

#[test]
fn import_killed_at_any_moment_leaves_no_partial_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dukcapil.csv");
    big_dukcapil(&file, 100_000);
    let db = dir.path().join("kjp.db");
    let data = dir.path().join("data");

    // Time one whole import to spread the kills over it.
    let probe_db = dir.path().join("probe.db");
    let started = std::time::Instant::now();
    let ok = kjp(&probe_db, &dir.path().join("probe-data"), &["import", file.to_str().unwrap()])
        .output()
        .expect("run");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let whole = started.elapsed();

    for k in 0..8u32 {
        let mut child = kjp(&db, &data, &["import", file.to_str().unwrap()]).spawn().expect("spawn");
        std::thread::sleep(whole * k / 8);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever the moment, a recorded snapshot has its complete file beside it.
        let snapshots = data.join("snapshots");
        if let Ok(entries) = std::fs::read_dir(&snapshots) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".csv") {
                    let bytes = std::fs::read(e.path()).expect("read snapshot");
                    assert_eq!(
                        bytes,
                        std::fs::read(&file).expect("read original"),
                        "snapshot file {name} is not whole"
                    );
                }
            }
        }
    }
    let again = kjp(&db, &data, &["import", file.to_str().unwrap()]).output().expect("run");
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(snapshot_count(&db, &data), 1, "exactly one snapshot after kills and a re-run");
    let third = kjp(&db, &data, &["import", file.to_str().unwrap()]).output().expect("run");
    assert!(String::from_utf8_lossy(&third.stdout).contains("already imported, nothing changed"));
}
