//! The stage run end to end on a small hand-made Jakarta: import (bad rows, re-import,
//! wrong header), open, verify, summary, export and the what-if. Runs on SQLite always
//! and on PostgreSQL too when `KJP_TEST_DATABASE_URL` is set (a fresh database per test).

use std::path::Path;

use kjp_domain::conflict::Rule;
use kjp_domain::Status;
use kjp_domain::{Policy, Stage};
use kjp_import::{decree, stage};
use kjp_store::Store;
use sqlx::Connection;

mod common;
use common::TestDb;

/// Children of the fixture and what the law says about each (reference date 2025-01-01).
const ELIGIBLE_POOR: &str = "3171010403120001"; // DTKS + SKTM, private SMP
const CAR_CONFLICT: &str = "3171010505140002"; // Bapenda car, Samsat blocked before the stage
const CAR_OWNED: &str = "3171010606130003"; // Bapenda car, Samsat active
const MOVED_OUT: &str = "3171010707110004"; // domiciled outside Jakarta
const NOT_IN_REGISTRY: &str = "3171010808100005"; // enrolled but unknown to Dukcapil
const DRIVER_CHILD: &str = "3171011009090006"; // Transjakarta small-bus family, no DTKS/SKTM
const WORKER_ABOVE: &str = "3171011111080007"; // worker above 1.1 x UMP, no DTKS
const DTKS_OUTSIDE: &str = "3171011212070008"; // DTKS address in Bogor, Dukcapil says Jakarta

async fn import_all(store: &Store, dir: &Path) {
    for path in kjp_import::source_files(dir).expect("fixture files") {
        // Some fixture registries are empty on purpose (no foster children, no sanctions).
        kjp_import::import_file(store, &path, true).await.expect("import");
    }
}

async fn run(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    kjp_import::fixture::write_all(dir.path());
    let store = db.store(dir.path()).await;

    // Import: bad rows counted and reported, good rows kept.
    let dukcapil = kjp_import::import_file(&store, &dir.path().join("dukcapil.csv"), false)
        .await
        .expect("import dukcapil");
    assert!(dukcapil.new);
    assert_eq!(
        (dukcapil.snapshot.rows_total, dukcapil.snapshot.rows_good, dukcapil.snapshot.rows_bad),
        (18, 15, 3)
    );
    let report = std::fs::read_to_string(&dukcapil.snapshot.report_path).expect("report file");
    assert!(
        report.contains("14,birth_date,\"\"\"2007-13-13\"\" is not a date (expected YYYY-MM-DD)\""),
        "{report}"
    );
    assert!(report.contains("16,,duplicate of line 2 (same nik)"), "{report}");
    // The same file again changes nothing.
    let again =
        kjp_import::import_file(&store, &dir.path().join("dukcapil.csv"), false).await.expect("re-import");
    assert!(!again.new);
    assert_eq!(again.snapshot.sha256, dukcapil.snapshot.sha256);
    import_all(&store, dir.path()).await;
    assert_eq!(store.latest_snapshots().await.expect("snapshots").len(), 18);

    // A wrong header is refused whole and names the expected one; nothing is stored.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("dtks.csv"), "nik,kk,desil,listed_since,region\n").expect("write");
    let err = kjp_import::import_file(&store, &bad.path().join("dtks.csv"), false).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dtks.csv: the header is `nik,kk,desil,listed_since,region`; expected `nik,kk,decile,listed_since,region`"
    );
    assert_eq!(store.latest_snapshots().await.expect("snapshots").len(), 18);

    // A truncated export must not silently replace a registry: refused without --force;
    // and importing the right file again makes it current again.
    let short = tempfile::tempdir().expect("tempdir");
    std::fs::write(short.path().join("dtks.csv"), "nik,kk,decile,listed_since,region\n").expect("write");
    let err = kjp_import::import_file(&store, &short.path().join("dtks.csv"), false).await.unwrap_err();
    assert!(err.to_string().contains("refused: 0 good rows, against 4 in the current snapshot"), "{err}");
    let forced = kjp_import::import_file(&store, &short.path().join("dtks.csv"), true).await.expect("forced");
    assert!(forced.new);
    let back = kjp_import::import_file(&store, &dir.path().join("dtks.csv"), false).await.expect("re-import");
    assert!(!back.new && back.reactivated);
    let current = store.latest_snapshots().await.expect("snapshots");
    assert_eq!(current.iter().find(|s| s.source == "dtks").map(|s| s.rows_good), Some(4));

    // Verify before opening the stage is a clear error.
    let s = Stage::parse("2025/1").expect("stage");
    let policy = Policy::kjp_plus();
    let no_progress = |_: &str, _: u64, _: u64| {};
    let err = stage::verify(&store, s, &policy, &no_progress).await.unwrap_err();
    assert!(err.to_string().contains("kjp stage open 2025 1"), "{err}");

    stage::open(&store, s).await.expect("open");
    let v = stage::verify(&store, s, &policy, &no_progress).await.expect("verify");
    assert_eq!(v.candidates, 8);

    let d = |nik: &'static str| {
        let store = store.clone();
        async move { store.decision(s, nik).await.expect("query").expect("decision stored") }
    };
    let a = d(ELIGIBLE_POOR).await;
    assert_eq!((a.status.as_str(), a.grp.as_str(), a.monthly_total), ("eligible", "poor_family", 470_000));
    assert_eq!(a.name, "Adi Saputra");
    assert!(a.evidence.contains("dtks:2"), "{}", a.evidence);
    assert!(a.evidence.starts_with("dukcapil:2;dapodik:2;schools:2;dtks:2;sktm:2;njop:2"), "{}", a.evidence);

    // The 2023 failure: Bapenda still lists the car, Samsat shows it blocked. Review, with
    // both rows as evidence, never a silent exclusion.
    let b = d(CAR_CONFLICT).await;
    assert_eq!((b.status.as_str(), b.unknown.as_str(), b.reasons.as_str()), ("review", "family_car", ""));
    assert!(
        b.conflicts.contains("\"kind\":\"car\"") && b.conflicts.contains("\"samsat_status\":\"blocked\""),
        "{}",
        b.conflicts
    );
    assert!(
        b.conflicts.contains("\"bapenda_line\":2") && b.conflicts.contains("\"samsat_line\":2"),
        "{}",
        b.conflicts
    );

    let c = d(CAR_OWNED).await;
    assert_eq!((c.status.as_str(), c.reasons.as_str()), ("ineligible", "EXCLUDED_CAR"));
    let moved = d(MOVED_OUT).await;
    assert_eq!(
        (moved.status.as_str(), moved.reasons.as_str()),
        ("ineligible", "NOT_IN_DTKS;NO_SKTM;NOT_DOMICILED_DKI")
    );
    let unknown = d(NOT_IN_REGISTRY).await;
    assert_eq!(unknown.status, "review");
    assert!(unknown.unknown.contains("birth_date"), "{}", unknown.unknown);
    let driver = d(DRIVER_CHILD).await;
    assert_eq!(
        (driver.status.as_str(), driver.grp.as_str(), driver.monthly_total),
        ("eligible", "transjakarta_driver", 420_000)
    );
    let worker = d(WORKER_ABOVE).await;
    assert_eq!(
        (worker.status.as_str(), worker.reasons.as_str()),
        ("ineligible", "WAGE_ABOVE_LIMIT;NOT_IN_DTKS;NO_SKTM")
    );
    let outside = d(DTKS_OUTSIDE).await;
    assert_eq!((outside.status.as_str(), outside.unknown.as_str()), ("review", "domiciled_dki"));
    assert!(outside.conflicts.contains("dtks_address"), "{}", outside.conflicts);

    // Summary: the JSON contract's fields.
    let sum = stage::summary(&store, s).await.expect("summary");
    let json = serde_json::to_value(&sum).expect("json");
    assert_eq!(json["stage"], "2025/1");
    assert_eq!(json["eligible"]["SMP"], 1);
    assert_eq!(json["eligible"]["SMA"], 1);
    assert_eq!(json["eligible"]["LKP"], 0);
    assert_eq!(json["ineligible"], 3);
    assert_eq!(json["review"], 3);
    assert_eq!(json["six_month_cost"], 6 * (470_000 + 420_000));

    // Export: one row per candidate.
    let out = dir.path().join("decisions.csv");
    assert_eq!(stage::export(&store, s, &out).await.expect("export"), 8);
    let text = std::fs::read_to_string(&out).expect("read export");
    assert!(text.starts_with("nik,birth_date,status,level,monthly_total,reason_codes,"));
    assert!(
        text.contains(&format!("{CAR_CONFLICT},2014-05-05,review,SD,0,UNKNOWN_FACT:family_car,")),
        "{text}"
    );

    // What-if: switching off the car screen adds the owner and the disputed family.
    let off = policy.with_screen("family_car", false).expect("screen exists");
    let i = stage::impact(&store, s, &policy, &off).await.expect("impact");
    assert_eq!((i.added.total, i.removed.total, i.out_of_review), (2, 0, 1));
    assert_eq!(i.added.by_level.sd, 2);
    assert_eq!(i.added.by_reason.get("EXCLUDED_CAR"), Some(&1));
    assert_eq!(i.added.by_reason.get("UNKNOWN_FACT:family_car"), Some(&1));
    // ... and changed nothing.
    assert_eq!(d(CAR_OWNED).await.status, "ineligible");

    // The previous stage, run on the same snapshots: Adi's SKTM was issued after its
    // reference date, so he is new in 2025/1; the driver's child continues.
    let prev = Stage::parse("2024/2").expect("stage");
    stage::open(&store, prev).await.expect("open previous");
    stage::verify(&store, prev, &policy, &no_progress).await.expect("verify previous");
    let cmp = stage::summary(&store, s).await.expect("summary").comparison.expect("a previous stage exists");
    assert_eq!((cmp.previous.as_str(), cmp.continuing, cmp.new, cmp.dropped), ("2024/2", 1, 1, 0));
    let back = stage::summary(&store, prev).await.expect("summary").comparison;
    assert!(back.is_none(), "2024/1 was never run");

    // A second run replaces the first.
    let v2 = stage::verify(&store, s, &policy, &no_progress).await.expect("verify again");
    assert_eq!(v2.run, 2);
    assert_eq!(stage::summary(&store, s).await.expect("summary").candidates, 8);

    // The decree is refused while anything is in review, and says how many and where.
    let req = decree::DecreeRequest {
        number: "266/2025".into(),
        date: "2025-03-10".parse().unwrap(),
        note: String::new(),
    };
    let err = decree::decree(&store, s, &policy, &req).await.unwrap_err().to_string();
    assert!(err.contains("still has 3 decision(s) in review"), "{err}");
    assert!(
        err.contains("birth_date 1, domiciled_dki 2, family_car 2")
            && err.contains("no kelurahan on record 1"),
        "{err}"
    );

    // The documented rule settles the Bapenda/Samsat conflict (Samsat is later) ...
    let settled = decree::resolve_by_rule(
        &store,
        s,
        &policy,
        Rule::LaterSourceWins,
        "Samsat block after Bapenda record",
        "tester",
    )
    .await
    .expect("resolve by rule");
    assert_eq!(settled.settled, 1);
    assert_eq!(settled.by_outcome.get("eligible"), Some(&1));
    assert_eq!(settled.left.values().sum::<usize>(), 2);
    assert_eq!(d(CAR_CONFLICT).await.status, "eligible");
    // ... and an officer settles the rest, one by one, with a reason.
    let nik = |n: &str| kjp_domain::Nik::parse(n).unwrap();
    let e = decree::resolve_one(
        &store,
        s,
        &policy,
        &nik(NOT_IN_REGISTRY),
        Status::Ineligible,
        "not a Jakarta resident",
        "tester",
    )
    .await;
    assert_eq!(e.expect("resolve").reasons, "OFFICER_DECISION");
    decree::resolve_one(
        &store,
        s,
        &policy,
        &nik(DTKS_OUTSIDE),
        Status::Eligible,
        "lives in Gambir, DTKS address is old",
        "tester",
    )
    .await
    .expect("resolve");
    let not_review =
        decree::resolve_one(&store, s, &policy, &nik(CAR_OWNED), Status::Eligible, "x", "tester").await;
    assert!(not_review.unwrap_err().to_string().contains("is ineligible, not in review"));
    let no_reason =
        decree::resolve_one(&store, s, &policy, &nik(CAR_OWNED), Status::Eligible, " ", "tester").await;
    assert!(no_reason.unwrap_err().to_string().contains("needs a reason"));
    assert_eq!(store.resolutions(s).await.expect("resolutions").len(), 3);

    // A budget ceiling, seen before it is set. Funding order: DTKS decile 1 (Bima, SD,
    // 6 x 250,000), decile 2 by NIK (Adi, 6 x 470,000; Hendra, 6 x 420,000), outside DTKS
    // (Eko, 6 x 420,000): 9,360,000 in all.
    let rp = kjp_domain::Rupiah::new;
    let all = kjp_import::funding::what_if(&store, s, &policy, rp(9_360_000)).await.expect("what-if");
    assert_eq!((all.eligible, all.eligible_cost, all.outcome.unfunded), (4, 9_360_000, 0));
    let short = kjp_import::funding::what_if(&store, s, &policy, rp(6_839_999)).await.expect("what-if");
    assert_eq!((short.outcome.funded, short.outcome.unfunded, short.newly_unfunded), (2, 2, 2));
    assert_eq!((short.outcome.funded_cost.get(), short.outcome.unfunded_cost.get()), (4_320_000, 5_040_000));
    assert_eq!(short.unfunded_by_level.sma, 2);
    assert_eq!(short.unfunded_by_city.iter().map(|c| c.count).sum::<i64>(), 2);
    assert_eq!(d(DRIVER_CHILD).await.status, "eligible", "a what-if changes nothing");
    // Set: the child outside DTKS is last in the order and left unfunded, with the reason.
    let set = kjp_import::funding::set_budget(&store, s, Some(rp(6_840_000))).await.expect("budget");
    assert_eq!(set.expect("an impact").outcome.unfunded, 1);
    let driver = d(DRIVER_CHILD).await;
    assert_eq!((driver.status.as_str(), driver.reasons.as_str()), ("unfunded", "BUDGET_CEILING"));
    let sum = stage::summary(&store, s).await.expect("summary");
    assert_eq!((sum.eligible_total, sum.unfunded, sum.budget), (3, 1, Some(6_840_000)));

    // A new run keeps what was settled, and the ceiling.
    let v3 = stage::verify(&store, s, &policy, &no_progress).await.expect("verify again");
    assert_eq!(v3.reapplied, 3);
    assert_eq!(d(DRIVER_CHILD).await.status, "unfunded");
    assert_eq!(d(CAR_CONFLICT).await.status, "eligible");
    assert_eq!(d(DTKS_OUTSIDE).await.monthly_total, 420_000);

    // A run whose write fails part-way (here: recording a carried-over settlement) leaves
    // the previous run whole, not the new decisions without their settlements or ceiling.
    let run_before = store.last_run(s).await.expect("run").expect("a run").run;
    let sqlite = store.backend() == kjp_store::Backend::Sqlite;
    let mut conn = sqlx::AnyConnection::connect(store.url()).await.expect("connect");
    let (fail, unfail) = if sqlite {
        (
            "CREATE TRIGGER fail_test BEFORE INSERT ON resolutions BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            "DROP TRIGGER fail_test",
        )
    } else {
        (
            "CREATE FUNCTION fail_test() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ \
             LANGUAGE plpgsql; \
             CREATE TRIGGER fail_test BEFORE INSERT ON resolutions FOR EACH ROW EXECUTE FUNCTION fail_test()",
            "DROP TRIGGER fail_test ON resolutions; DROP FUNCTION fail_test()",
        )
    };
    sqlx::raw_sql(fail).execute(&mut conn).await.expect("install the failure");
    let err = stage::verify(&store, s, &policy, &no_progress).await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    sqlx::raw_sql(unfail).execute(&mut conn).await.expect("remove the failure");
    assert_eq!(store.last_run(s).await.expect("run").expect("a run").run, run_before, "no new run");
    assert_eq!(d(CAR_CONFLICT).await.status, "eligible", "still settled");
    assert_eq!(d(DRIVER_CHILD).await.status, "unfunded", "still beyond the ceiling");
    assert_eq!(store.resolutions(s).await.expect("resolutions").len(), 3);

    // The decree: every recipient with level and amount, and a hash over all of it.
    let record = decree::decree(&store, s, &policy, &req).await.expect("decree");
    assert_eq!((record.recipients, record.unfunded), (3, 1));
    assert_eq!((record.monthly_total, record.budget), (470_000 + 250_000 + 420_000, Some(6_840_000)));
    assert_eq!(record.policy_sha256, policy.sha256);
    assert_eq!(record.sha256.len(), 64);
    let entries = store.decree_entries(s, 0).await.expect("entries");
    assert_eq!(
        entries.iter().map(|e| (e.nik.as_str(), e.status.as_str())).collect::<Vec<_>>(),
        vec![
            (ELIGIBLE_POOR, "recipient"),
            (CAR_CONFLICT, "recipient"),
            (DRIVER_CHILD, "unfunded"),
            (DTKS_OUTSIDE, "recipient")
        ]
    );
    assert_eq!(store.recipients(s).await.expect("recipients").len(), 3);
    let err = kjp_import::funding::set_budget(&store, s, None).await.unwrap_err();
    assert!(err.to_string().contains("is decreed"), "{err}");
    // After the decree nothing changes the stage's decisions.
    let err = stage::verify(&store, s, &policy, &no_progress).await.unwrap_err();
    assert!(err.to_string().contains("is decreed"), "{err}");
    let err = decree::resolve_by_rule(&store, s, &policy, Rule::LaterSourceWins, "again", "tester")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already decreed"), "{err}");
    assert!(decree::decree(&store, s, &policy, &req).await.is_err());
    // Every decision is reproduced from what was recorded.
    let replay = decree::replay(&store, s).await.expect("replay");
    // ... under the policy recorded with the run, whatever file is loaded later.
    assert_eq!(stage::recorded_policy(&store, s).await.expect("recorded").sha256, policy.sha256);
    assert_eq!((replay.decisions, replay.matching, replay.mismatching, replay.hash_ok), (8, 8, 0, true));

    // A correction after the decree is an amendment: Candra's family brings the Samsat
    // block (re-assessed: eligible), and Adi's family moved away (an officer's decision).
    use kjp_import::amend::{self, AmendError, Change, CorrectionRequest};
    let correction = |n: &str, change: Change| CorrectionRequest {
        nik: nik(n),
        change,
        reason: "checked at the Gambir service post".into(),
        evidence: "Samsat block 2025-04-02 No. 12/2025".into(),
        by: "officer".into(),
    };
    let car = Change::Facts(vec![("family_car".into(), "no".into())]);
    let c = amend::correct(&store, s, &correction(CAR_OWNED, car.clone())).await.expect("correct");
    assert_eq!(
        (c.status_before.as_str(), c.status_after.as_str(), c.monthly_total),
        ("ineligible", "eligible", 250_000)
    );
    assert!(c.facts_before.contains("f=") && c.facts_before != c.facts_after);
    let moved = Change::Outcome(Status::Ineligible);
    amend::correct(&store, s, &correction(ELIGIBLE_POOR, moved)).await.expect("correct");
    // Nothing to correct, a bad fact, a stage not decreed: refused.
    let same = amend::correct(&store, s, &correction(CAR_CONFLICT, Change::Outcome(Status::Eligible))).await;
    assert!(matches!(same, Err(AmendError::NoChange { .. })), "{same:?}");
    let bad = Change::Facts(vec![("family_car".into(), "maybe".into())]);
    let err = amend::correct(&store, s, &correction(CAR_OWNED, bad)).await.unwrap_err();
    assert_eq!(err.to_string(), "--fact \"family_car=maybe\": expected yes, no or unknown");
    let err = amend::correct(&store, prev, &correction(CAR_OWNED, car)).await.unwrap_err();
    assert!(matches!(err, AmendError::NotDecreed(_)), "{err}");
    assert_eq!(store.recipients(s).await.expect("recipients").len(), 3, "not before the amendment");
    let amendment = decree::DecreeRequest { number: "301/2025".into(), ..req.clone() };
    let (a, changes) = amend::amend(&store, s, &amendment).await.expect("amend");
    assert_eq!((a.amendment, a.previous_sha256.as_str()), (1, record.sha256.as_str()));
    assert_eq!(
        changes.iter().map(|e| (e.nik.as_str(), e.change.as_str())).collect::<Vec<_>>(),
        vec![(ELIGIBLE_POOR, "removed"), (CAR_OWNED, "added")]
    );
    assert!(changes[0].reason.contains("[OFFICER_DECISION]") && changes[1].reason.contains("Samsat block"));
    let now: Vec<String> =
        store.recipients(s).await.expect("recipients").into_iter().map(|e| e.nik).collect();
    assert_eq!(now, vec![CAR_CONFLICT, CAR_OWNED, DTKS_OUTSIDE]);
    assert_eq!((a.recipients, a.monthly_total), (3, 250_000 + 250_000 + 420_000));
    let again = amend::amend(&store, s, &amendment).await.unwrap_err();
    assert!(matches!(again, AmendError::NothingPending(_)), "{again}");
    let replay = decree::replay(&store, s).await.expect("replay");
    assert!(replay.hash_ok && replay.mismatching == 0, "{replay:?}");

    // The annex: recipients by school, totals that add up to the rupiah.
    let annex_dir = dir.path().join("annex");
    let annex = kjp_import::annex::annex(&store, s, &annex_dir).await.expect("annex");
    assert_eq!((annex.recipients, annex.monthly_total), (3, record.monthly_total));
    let recipients = std::fs::read_to_string(&annex.recipients_csv).expect("recipients csv");
    assert_eq!(recipients.lines().count(), 4);
    assert!(
        recipients
            .contains("SMP Swasta Harapan,SMP,3171**********01,Adi Saputra,185000,115000,170000,470000"),
        "{recipients}"
    );
    assert!(!recipients.contains(ELIGIBLE_POOR), "NIKs are masked in the published annex");
    let totals = std::fs::read_to_string(&annex.totals_csv).expect("totals csv");
    assert!(totals.contains("level,SMA,1,420000,2520000"), "{totals}");
    assert!(
        totals.contains(&format!("total,,3,{},{}", record.monthly_total, record.monthly_total * 6)),
        "{totals}"
    );
    assert!(std::fs::read(&annex.xlsx).expect("xlsx").starts_with(b"PK"), "an XLSX is a zip");

    // A sanction recorded on the school's recommendation counts in the next stage's run
    // like one in the sanctions file.
    let next = Stage::parse("2025/2").expect("stage");
    stage::open(&store, next).await.expect("open");
    stage::verify(&store, next, &policy, &no_progress).await.expect("verify");
    let before = store.decision(next, DRIVER_CHILD).await.expect("decision").expect("decided");
    assert_eq!(before.status, "eligible");
    let req = kjp_import::money::SanctionRequest {
        nik: nik(DRIVER_CHILD),
        category: "MISUSE_OF_FUNDS".into(),
        evidence: "school report: the card bought a game console".into(),
        date: "2025-05-01".parse().unwrap(),
        school: kjp_domain::Npsn::parse("20100003").unwrap(),
        by: "school".into(),
    };
    kjp_import::money::add_sanction(&store, &policy, &req).await.expect("sanction");
    stage::verify(&store, next, &policy, &no_progress).await.expect("verify again");
    let after = store.decision(next, DRIVER_CHILD).await.expect("decision").expect("decided");
    // Ineligible now, for the sanction (the other groups' unmet requirements are listed too).
    assert_eq!(after.status, "ineligible");
    assert!(after.reasons.split(';').any(|r| r == "SANCTIONED"), "{}", after.reasons);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_run_on_sqlite() {
    run(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_run_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
        return;
    };
    run(&db).await;
    db.drop().await;
}
