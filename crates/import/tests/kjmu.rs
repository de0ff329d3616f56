//! KJMU on the same engine: the fixture's two university students through import, the
//! KJMU stage run, the what-if of a rule change, the decree and the replay. SQLite always,
//! PostgreSQL too when `KJP_TEST_DATABASE_URL` is set.

use kjp_domain::{Policy, Programme, Stage};
use kjp_import::{decree, stage};

mod common;
use common::TestDb;

const RINA: &str = "3171015505060009"; // DTKS family, UI S1 semester 3, GPA 3.40
const TONO: &str = "3171011708050010"; // family not in DTKS

async fn run(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    kjp_import::fixture::write_all(dir.path());
    let store = db.store(dir.path()).await;
    for path in kjp_import::source_files(dir.path()).expect("fixture files") {
        kjp_import::import_file(&store, &path, true).await.expect("import");
    }
    let s = Stage::of(Programme::Kjmu, 2025, 1).expect("stage");
    assert_eq!(s.to_string(), "kjmu/2025/1");
    stage::open(&store, s).await.expect("open");
    let no_progress = |_: &str, _: u64, _: u64| {};

    // A KJMU stage is decided under KJMU's policy, not KJP Plus's.
    let err = stage::verify(&store, s, &Policy::kjp_plus(), &no_progress).await.unwrap_err();
    assert!(err.to_string().contains("is a KJMU stage but the policy is \"kjp-plus\""), "{err}");
    let policy = Policy::kjmu();
    let v = stage::verify(&store, s, &policy, &no_progress).await.expect("verify");
    assert_eq!(v.candidates, 2, "the students of pddikti.csv");
    let d = |nik: &'static str| {
        let store = store.clone();
        async move { store.decision(s, nik).await.expect("decision").expect("decided") }
    };
    let rina = d(RINA).await;
    assert_eq!((rina.status.as_str(), rina.grp.as_str(), rina.level.as_str()), ("eligible", "dtks", "S1"));
    // Rp 9,000,000 a semester: the university's part and the student's, monthly.
    assert_eq!((rina.school_fee, rina.routine, rina.monthly_total), (500_000, 1_000_000, 1_500_000));
    assert!(
        rina.evidence.contains("pddikti:2") && rina.evidence.contains("graduates:2"),
        "{}",
        rina.evidence
    );
    let tono = d(TONO).await;
    assert_eq!((tono.status.as_str(), tono.reasons.as_str()), ("ineligible", "NOT_IN_DTKS"));
    let sum = stage::summary(&store, s).await.expect("summary");
    assert_eq!((sum.eligible.s1, sum.eligible_total, sum.six_month_cost), (1, 1, 9_000_000));
    // KJP Plus's stage of the same half-year is another stage, untouched.
    assert!(store.last_run(Stage::new(2025, 1).unwrap()).await.expect("run").is_none());

    // A rule change shows its impact before it applies: a GPA floor of 3.50 stops Rina,
    // and says why.
    let stricter =
        Policy::parse("kjmu-stricter.toml", &policy.text.replacen("value = \"3.00\"", "value = \"3.50\"", 1))
            .expect("edited policy");
    let i = stage::impact(&store, s, &policy, &stricter).await.expect("impact");
    assert_eq!((i.removed.total, i.added.total), (1, 0));
    assert_eq!(i.removed.by_level.s1, 1);
    assert_eq!(i.removed.by_reason.get("GPA_TOO_LOW"), Some(&1));
    assert_eq!(d(RINA).await.status, "eligible", "a what-if changes nothing");

    // A data source changes before it is used: PDDikti now reports Rina's GPA as 2.90.
    // The what-if runs the stage on the new files and says who would stop, and why,
    // before anyone is stopped (KJMU's 2024 data synchronisation).
    let newer = tempfile::tempdir().expect("tempdir");
    let pddikti = std::fs::read_to_string(dir.path().join("pddikti.csv")).expect("read");
    std::fs::write(newer.path().join("pddikti.csv"), pddikti.replace(",3,3.40,active", ",3,2.90,active"))
        .expect("write");
    kjp_import::import_file(&store, &newer.path().join("pddikti.csv"), false).await.expect("import newer");
    let i = stage::data_impact(&store, s, &no_progress).await.expect("data impact");
    assert!(i.proposed.contains("pddikti"), "{}", i.proposed);
    assert_eq!((i.removed.total, i.added.total, i.eligible_now, i.eligible_then), (1, 0, 1, 0));
    assert_eq!(i.removed.by_reason.get("GPA_TOO_LOW"), Some(&1));
    assert_eq!(i.monthly_cost_change, -1_500_000);
    assert_eq!(d(RINA).await.status, "eligible", "nothing changed");
    // The registrar's correction arrives; the files are as before.
    kjp_import::import_file(&store, &dir.path().join("pddikti.csv"), false).await.expect("import again");
    assert_eq!(stage::data_impact(&store, s, &no_progress).await.expect("impact").removed.total, 0);

    // The decree, reproduced from what was recorded.
    let req = decree::DecreeRequest {
        number: "300/2025".into(),
        date: "2025-03-10".parse().unwrap(),
        note: String::new(),
    };
    let record = decree::decree(&store, s, &policy, &req).await.expect("decree");
    assert_eq!((record.recipients, record.monthly_total), (1, 1_500_000));
    let replay = decree::replay(&store, s).await.expect("replay");
    assert_eq!((replay.decisions, replay.matching, replay.hash_ok), (2, 2, true));
    assert_eq!(store.recipients(s).await.expect("recipients")[0].nik, RINA);

    // Paid in two parts: the university's fee (school_fee) and the student's support.
    let accounts = dir.path().join("accounts.csv");
    std::fs::write(&accounts, format!("nik,account,holder,status\n{RINA},1234567890,Rina Saputri,active\n"))
        .expect("write accounts");
    kjp_import::money::import_accounts(&store, &accounts, "bank").await.expect("accounts");
    let range = kjp_domain::money::parse_month_range(s, "2025-01..2025-06").expect("months");
    let out = dir.path().join("payments");
    let paid = kjp_import::money::pay(&store, s, range, &out, "office", &|_, _, _| {}).await.expect("pay");
    let batch = paid.batch.expect("a batch");
    assert!(batch.batch.starts_with("kjmu-2025-1-202501-202506-"), "{}", batch.batch);
    assert_eq!((batch.lines, batch.total), (1, 9_000_000));
    let file = std::fs::read_to_string(paid.file.expect("file")).expect("batch file");
    assert!(
        file.contains(",6000000,0,3000000,9000000"),
        "personal 6,000,000 and the university's 3,000,000: {file}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kjmu_on_sqlite() {
    run(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kjmu_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
        return;
    };
    run(&db).await;
    db.drop().await;
}
