//! The store on SQLite, and on PostgreSQL when `KJP_TEST_DATABASE_URL` is set.

use chrono::NaiveDate;
use kjp_domain::Stage;
use kjp_store::{RunRecord, Snapshot, StageState, Store, StoreError};
use sqlx::Connection;

async fn with_each_backend(test: impl AsyncFn(Store)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    test(Store::open(&url, Some(dir.path().join("data"))).await.expect("open sqlite")).await;

    let Some(admin) = std::env::var("KJP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: PostgreSQL not tested");
        return;
    };
    let name =
        format!("kjp_store_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros() % 1_000_000_000);
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let store =
        Store::open(&format!("{base}/{name}"), Some(dir.path().join("pgdata"))).await.expect("open postgres");
    test(store.clone()).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.ok();
}

fn snapshot(sha: &str, source: &str) -> Snapshot {
    Snapshot {
        sha256: sha.into(),
        source: source.into(),
        file_name: format!("{source}.csv"),
        path: format!("/data/{sha}.csv"),
        rows_total: 3,
        rows_good: 2,
        rows_bad: 1,
        report_path: "/data/r.csv".into(),
        imported_at: "2025-01-01T00:00:00Z".into(),
        seq: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_recorded_once_and_the_latest_per_source_wins() {
    with_each_backend(async |store: Store| {
        assert!(store.insert_snapshot(&snapshot("aa", "dukcapil")).await.unwrap());
        assert!(
            !store.insert_snapshot(&snapshot("aa", "dukcapil")).await.unwrap(),
            "same hash: nothing changes"
        );
        assert!(store.insert_snapshot(&snapshot("bb", "dukcapil")).await.unwrap());
        assert!(store.insert_snapshot(&snapshot("cc", "dtks")).await.unwrap());
        let latest: Vec<(String, String)> =
            store.latest_snapshots().await.unwrap().into_iter().map(|s| (s.source, s.sha256)).collect();
        assert_eq!(latest, vec![("dtks".into(), "cc".into()), ("dukcapil".into(), "bb".into())]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_open_once_and_runs_need_an_open_stage() {
    with_each_backend(async |store: Store| {
        let s = Stage::parse("2025/1").unwrap();
        let run = RunRecord {
            stage: s,
            run: 0,
            started_at: "t".into(),
            finished_at: String::new(),
            policy_id: "kjp-plus".into(),
            policy_version: "1".into(),
            policy_sha256: "x".into(),
            snapshots: String::new(),
            candidates: 0,
        };
        assert!(matches!(
            store.replace_decisions(&run, &[], &[], &kjp_store::RunBasis::default()).await,
            Err(StoreError::NoStage(_))
        ));
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let (row, new) = store.open_stage(s, day).await.unwrap();
        assert!(new);
        assert_eq!(row.state, StageState::Open);
        let (_, again) = store.open_stage(s, day).await.unwrap();
        assert!(!again, "opening twice changes nothing");
        assert_eq!(
            store.replace_decisions(&run, &[], &[], &kjp_store::RunBasis::default()).await.unwrap(),
            1
        );
        assert_eq!(
            store.replace_decisions(&run, &[], &[], &kjp_store::RunBasis::default()).await.unwrap(),
            2
        );
        assert_eq!(store.stage(s).await.unwrap().unwrap().state, StageState::Verified);
        // A ceiling set while a run was deciding: the run, settled without it, is refused
        // and nothing is written; settled with it, it is written.
        store.set_budget(s, Some(1_000_000)).await.unwrap();
        let stale = store.replace_decisions(&run, &[], &[], &kjp_store::RunBasis::default()).await;
        assert!(matches!(stale, Err(StoreError::Changed(_))), "{stale:?}");
        assert!(stale.unwrap_err().to_string().contains("run it again"));
        assert_eq!(store.last_run(s).await.unwrap().unwrap().run, 2, "no run recorded");
        let basis = kjp_store::RunBasis { budget: Some(1_000_000), settled: vec![] };
        assert_eq!(store.replace_decisions(&run, &[], &[], &basis).await.unwrap(), 3);
    })
    .await;
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let store = Store::open(&url, None).await.expect("open");
    sqlx::query("UPDATE kjp_migrations SET sha256 = 'edited' WHERE version = 1")
        .execute(&sqlx::AnyPool::connect(&url).await.expect("pool"))
        .await
        .expect("tamper");
    store.close().await;
    let err = Store::open(&url, None).await.unwrap_err();
    assert!(err.to_string().contains("migration 1 (stage_run) was edited after it was applied"), "{err}");
}

#[tokio::test]
async fn a_bad_url_says_what_is_expected() {
    let err = Store::open("mysql://x", None).await.unwrap_err();
    assert_eq!(err.to_string(), "database URL \"mysql://x\": expected sqlite:PATH or postgres://...");
}
