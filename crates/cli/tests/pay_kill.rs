//! `kjp pay` killed with SIGKILL at any moment while it builds, records or writes a batch,
//! then run again: nobody is paid twice or zero times, and the batch, its file and its
//! sha256 are the ones an uninterrupted run gives.

use std::path::Path;
use std::process::{Command, Stdio};

fn kjp(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kjp"));
    c.args(args)
        .env("KJP_DATABASE_URL", format!("sqlite:{}", dir.join("kjp.db").display()))
        .env("KJP_DATA_DIR", dir.join("kjp-data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
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

fn pay_json(dir: &Path) -> serde_json::Value {
    let out = kjp(dir, PAY).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
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

    // An uninterrupted run on a copy: the reference, and its duration.
    let probe = root.path().join("probe");
    copy_dir(&demo, &probe);
    let started = std::time::Instant::now();
    let reference = pay_json(&probe);
    let whole = started.elapsed();
    assert!(reference["lines"].as_i64().unwrap() > 1000, "{reference}");

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for k in 0..10u32 {
        let mut child = kjp(&demo, PAY).spawn().expect("spawn");
        // Spread over the run, jittered.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let jitter = (seed % 1000) as u32;
        std::thread::sleep(whole * k / 10 + whole * jitter / 10_000);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let after = pay_json(&demo);
    for key in ["batch", "lines", "total", "sha256"] {
        assert_eq!(after[key], reference[key], "{key}: {after} vs {reference}");
    }
    let file = after["file"].as_str().unwrap();
    let bytes = std::fs::read(file).expect("the batch file is there");
    assert_eq!(kjp_store_sha(&bytes), after["sha256"].as_str().unwrap());
    // Running again changes nothing.
    assert_eq!(pay_json(&demo)["sha256"], reference["sha256"]);

    // Every recipient has April to June exactly once, or is withheld with a reason.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = kjp_store::Store::open(
            &format!("sqlite:{}", demo.join("kjp.db").display()),
            Some(demo.join("kjp-data")),
        )
        .await
        .unwrap();
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
        let withheld =
            std::fs::read_to_string(Path::new(file).with_file_name("withheld-2025-1-202504-202506.csv"))
                .unwrap();
        let withheld: std::collections::HashSet<i64> =
            withheld.lines().skip(1).map(|l| l[..16].parse().unwrap()).collect();
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

fn kjp_store_sha(bytes: &[u8]) -> String {
    kjp_store::sha256_hex(bytes)
}
