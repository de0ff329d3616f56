//! Money end to end on the hand-made Jakarta: accounts, payment batches exactly once
//! (re-runs, a missing file, the database refusing a second payment of a month), the
//! bank's return reconciled to the rupiah, a failed line paid later once the account is
//! fixed, and sanctions stopping payment. On SQLite always, on PostgreSQL too when
//! `KJP_TEST_DATABASE_URL` is set.

use std::collections::BTreeMap;
use std::path::Path;

use kjp_domain::money::{parse_month_range, Withheld};
use kjp_domain::{Nik, Npsn, Policy, Stage, Status};
use kjp_import::money as m;
use kjp_import::{decree, stage};
use kjp_store::money::{PayError, PayLine};
use kjp_store::Store;

mod common;
use common::TestDb;

const POOR: i64 = 3171010403120001; // SMP swasta, 470,000 a month
const CAR_CONFLICT: i64 = 3171010505140002;
const DRIVER_CHILD: i64 = 3171011009090006;
const DTKS_OUTSIDE: i64 = 3171011212070008;

fn quiet(_: &str, _: u64, _: u64) {}

/// The fixture, imported, verified, settled and decreed: four recipients.
async fn decreed(store: &Store, dir: &Path) -> Stage {
    kjp_import::fixture::write_all(dir);
    for path in kjp_import::source_files(dir).expect("fixture files") {
        kjp_import::import_file(store, &path, true).await.expect("import");
    }
    let s = Stage::parse("2025/1").unwrap();
    let policy = Policy::kjp_plus();
    stage::open(store, s).await.expect("open");
    stage::verify(store, s, &policy, &quiet).await.expect("verify");
    decree::resolve_by_rule(store, s, &policy, kjp_domain::conflict::Rule::LaterSourceWins, "later", "t")
        .await
        .expect("rule");
    let nik = |n: &str| Nik::parse(n).unwrap();
    decree::resolve_one(store, s, &policy, &nik("3171010808100005"), Status::Ineligible, "x", "t")
        .await
        .unwrap();
    decree::resolve_one(store, s, &policy, &nik("3171011212070008"), Status::Eligible, "x", "t")
        .await
        .unwrap();
    let req = decree::DecreeRequest {
        number: "1/2025".into(),
        date: "2025-03-10".parse().unwrap(),
        note: String::new(),
    };
    decree::decree(store, s, &policy, &req).await.expect("decree");
    s
}

fn accounts_file(dir: &Path, name: &str, rows: &[(i64, &str)]) -> std::path::PathBuf {
    let mut text = String::from("nik,account,holder,status\n");
    for (nik, status) in rows {
        text.push_str(&format!(
            "{nik},{},Holder {nik} O'Neil,{status}\n",
            1_000_000_000_000_000 + nik % 1_000_000
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn run(db: &TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = db.store(dir.path()).await;
    let out = dir.path().join("payments");
    let s = decreed(&store, dir.path()).await;
    let q1 = parse_month_range(s, "2025-01..2025-03").unwrap();

    // No accounts yet: nobody is paid into nothing; all four are listed for opening.
    let p = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay");
    assert!(p.batch.is_none());
    assert_eq!(p.withheld.len(), 4);
    assert!(p.withheld.iter().all(|w| w.reason == Withheld::NoAccount));
    let list = std::fs::read_to_string(p.withheld_file.unwrap()).unwrap();
    assert!(
        list.contains("3171010403120001,no_account,2025-01;2025-02;2025-03,1410000,open an account"),
        "{list}"
    );

    // The accounts file: bad rows reported with line and column, good rows kept.
    let bad = dir.path().join("bad-accounts.csv");
    std::fs::write(
        &bad,
        format!(
            "nik,account,holder,status\n{POOR},1000000000000001,ADI,active\n{POOR},1000000000000001,ADI,active\n\
             3171010403120009,12ab,X,active\n{CAR_CONFLICT},1000000000000002,B,frozen\n"
        ),
    )
    .unwrap();
    let i = m::import_accounts(&store, &bad, "t").await.expect("accounts");
    let errors: Vec<(u64, &str)> = i.errors.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(errors, vec![(3, ""), (4, "account"), (5, "status")], "{:?}", i.errors);
    assert!(i.errors[0].reason.contains("duplicate of line 2"));
    assert_eq!(i.written, 1);

    let all_active =
        [(POOR, "active"), (CAR_CONFLICT, "active"), (DRIVER_CHILD, "active"), (DTKS_OUTSIDE, "active")];
    m::import_accounts(&store, &accounts_file(dir.path(), "a1.csv", &all_active), "t").await.unwrap();

    // The batch: one line per recipient, three months each.
    let p = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay");
    assert!(p.new && p.withheld.is_empty());
    let b1 = p.batch.expect("batch");
    assert_eq!(b1.lines, 4);
    let decree_total: i64 = store.recipients(s).await.unwrap().iter().map(|r| r.monthly_total).sum();
    assert_eq!(b1.total, decree_total * 3);
    // Totals per level and city equal the decree's monthly totals times three, to the rupiah.
    let mut expected: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
    for r in store.recipients(s).await.unwrap() {
        let e = expected.entry((r.level.clone(), r.kelurahan[..5].to_string())).or_default();
        e.0 += 1;
        e.1 += r.monthly_total * 3;
    }
    let got: BTreeMap<(String, String), (i64, i64)> = store
        .batch_totals(&b1.batch)
        .await
        .unwrap()
        .into_iter()
        .map(|(l, c, n, sum)| ((l, c), (n, sum)))
        .collect();
    assert_eq!(got, expected);
    let file = p.file.expect("file");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(kjp_store::sha256_hex(&bytes), b1.file_sha256);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with("batch,line,nik,name,account,months,routine,periodic,school_fee,amount\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{},1,3171010403120001,Holder 3171010403120001 O'Neil,1000000000120001,2025-01;2025-02;2025-03,555000,345000,510000,1410000\n",
            b1.batch
        )),
        "{text}"
    );

    // Again: the same batch, the same bytes; a lost file is written again from the database.
    let again = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay again");
    assert!(!again.new);
    assert_eq!(again.batch.as_ref().unwrap(), &b1);
    std::fs::remove_file(&file).unwrap();
    let again = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay again");
    assert_eq!(again.batch.unwrap().file_sha256, b1.file_sha256);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    // The database itself refuses a second payment of a month, whatever the code does.
    let dup = kjp_store::money::Batch { batch: "forged".into(), lines: 1, total: 470_000, ..b1.clone() };
    let line = PayLine {
        line: 1,
        nik: POOR,
        months: 1,
        amount: 470_000,
        status: "sent".into(),
        ..PayLine::default()
    };
    let months = m::stage_months(s);
    let err = store.record_batch(&dup, &[line], &months).await.unwrap_err();
    assert!(matches!(err, PayError::AlreadyPaid), "{err}");
    assert!(store.batch("forged").await.unwrap().is_none(), "nothing of the refused batch is kept");

    // The bank's return: the driver's child's account turned out dormant.
    let ret = dir.path().join("return.csv");
    let (r, failed) = kjp_synth::bank::simulate_return(&text, 0.0, 1, &[DRIVER_CHILD as u64]).unwrap();
    assert_eq!(failed, 1);
    // A tampered amount refuses the whole file, naming line and column.
    std::fs::write(&ret, r.replacen(",1410000,credited", ",1410001,credited", 1)).unwrap();
    match m::reconcile(&store, &ret, "t", &quiet).await {
        Err(m::MoneyError::BadRows { errors, .. }) => {
            assert_eq!((errors[0].line, errors[0].column), (2, "amount"), "{errors:?}")
        }
        other => panic!("expected bad rows, got {other:?}"),
    }
    std::fs::write(&ret, &r).unwrap();
    let rec = m::reconcile(&store, &ret, "t", &quiet).await.expect("reconcile");
    let driver_line =
        store.batch_lines(&b1.batch).await.unwrap().into_iter().find(|l| l.nik == DRIVER_CHILD).unwrap();
    assert_eq!(rec.failed, (1, driver_line.amount));
    assert_eq!(rec.credited, (3, b1.total - driver_line.amount));
    assert_eq!(rec.credited.1 + rec.failed.1, b1.total, "money in equals money out");
    let report = std::fs::read_to_string(&rec.report).unwrap();
    assert!(
        report.contains("3171011009090006,") && report.contains("account_dormant,the account is dormant"),
        "{report}"
    );
    assert!(
        !m::reconcile(&store, &ret, "t", &quiet).await.unwrap().new,
        "the same return again changes nothing"
    );

    // The failed line stays owed but waits for the account to be fixed ...
    let p = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay");
    assert_eq!(p.batch.unwrap().batch, b1.batch);
    assert_eq!(
        p.withheld.iter().map(|w| (w.nik, w.reason)).collect::<Vec<_>>(),
        vec![(DRIVER_CHILD, Withheld::PaymentFailed)]
    );
    // ... and the bank reporting it active again puts it in a new batch, once.
    m::import_accounts(&store, &accounts_file(dir.path(), "a2.csv", &[(DRIVER_CHILD, "active")]), "t")
        .await
        .unwrap();
    let p = m::pay(&store, s, q1, &out, "t", &quiet).await.expect("pay");
    let b2 = p.batch.unwrap();
    assert!(p.new && b2.batch != b1.batch);
    assert_eq!((b2.lines, b2.total), (1, driver_line.amount));
    let paid = store.paid_months(&months).await.unwrap();
    assert_eq!(paid.len(), 4);
    assert!(paid.values().all(|bits| *bits == 0b111), "every recipient has January to March exactly once");
    assert!(m::pay(&store, s, q1, &out, "t", &quiet).await.unwrap().batch.unwrap().batch == b2.batch);

    // A sanction: payments stop from the next unpaid month (April); the unspent balance
    // (all of it: no card spending recorded) is marked for withdrawal.
    let policy = Policy::kjp_plus();
    let req = m::SanctionRequest {
        nik: Nik::parse("3171010505140002").unwrap(),
        category: "VIOLENCE".into(),
        evidence: "tawuran 2025-03-20, school letter 12/2025".into(),
        date: "2025-03-20".parse().unwrap(),
        school: Npsn::parse("20100003").unwrap(),
        by: "operator".into(),
    };
    let bad_category = m::SanctionRequest { category: "LATE_ONCE".into(), ..req.clone() };
    assert!(m::add_sanction(&store, &policy, &bad_category)
        .await
        .unwrap_err()
        .to_string()
        .contains("not in the sanction catalogue"));
    let car_line =
        store.batch_lines(&b1.batch).await.unwrap().into_iter().find(|l| l.nik == CAR_CONFLICT).unwrap();
    let sanction = m::add_sanction(&store, &policy, &req).await.expect("sanction");
    assert_eq!((sanction.stop_from, sanction.withdraw), (202504, car_line.amount));
    assert!(m::add_sanction(&store, &policy, &req).await.is_err(), "one sanction in force at a time");
    let status = store.sanction_status(CAR_CONFLICT).await.unwrap().expect("status");
    assert_eq!((status.category.as_str(), status.lifted_at.as_str()), ("VIOLENCE", ""));
    assert!(store.sanction_status(POOR).await.unwrap().is_none());
    let q2 = parse_month_range(s, "2025-04..2025-06").unwrap();
    let p = m::pay(&store, s, q2, &out, "t", &quiet).await.expect("pay q2");
    assert_eq!(p.batch.as_ref().unwrap().lines, 3);
    assert_eq!(
        p.withheld.iter().map(|w| (w.nik, w.reason)).collect::<Vec<_>>(),
        vec![(CAR_CONFLICT, Withheld::Sanctioned)]
    );
    // Lifting it makes the child proposable in a later stage; the stopped months stay unpaid.
    let lifted =
        store.lift_sanction(CAR_CONFLICT, "20100003", "behaviour improved", "operator").await.unwrap();
    assert!(lifted.is_some());
    assert!(store.lift_sanction(CAR_CONFLICT, "20100003", "again", "operator").await.unwrap().is_none());
    assert!(!store.sanction_status(CAR_CONFLICT).await.unwrap().unwrap().lifted_at.is_empty());
    // The stopped months run to the end of the stage in which it was lifted, not forever.
    let stops = store.sanction_stops().await.unwrap();
    let (from, to) = stops[&CAR_CONFLICT][0];
    assert_eq!(from, 202504);
    assert!((202506..i64::MAX).contains(&to) && (to % 100 == 6 || to % 100 == 12), "{to}");
    let p = m::pay(&store, s, q2, &out, "t", &quiet).await.expect("pay q2 again");
    assert!(!p.new);
    assert_eq!(p.withheld.len(), 1);
    // The card feed: flags for review, spending recorded, bad rows reported.
    let feed = dir.path().join("card.csv");
    std::fs::write(
        &feed,
        format!(
            "txn,nik,time,kind,amount,mcc,merchant\n\
             T1,{POOR},2025-02-03T10:00:00,cash,100000,6011,ATM1\n\
             T2,{POOR},2025-02-20T10:00:00,cash,50000,6011,ATM2\n\
             T3,{POOR},2025-02-21T10:00:00,refund,50000,6011,ATM2\n\
             T4,{DTKS_OUTSIDE},2025-02-05T11:00:00,purchase,75000,5813,BAR9\n\
             T5,{DTKS_OUTSIDE},2025-02-05T12:00:00,purchase,125000,5942,BOOKS1\n"
        ),
    )
    .unwrap();
    let t = m::import_transactions(&store, &policy, &feed, "t", &quiet).await.expect("feed");
    assert_eq!(t.errors.iter().map(|e| (e.line, e.column)).collect::<Vec<_>>(), vec![(4, "kind")]);
    assert_eq!((t.feed.rows_total, t.feed.cash, t.feed.purchases), (5, 150_000, 200_000));
    let flags: Vec<(String, i64, i64)> = t.flags.iter().map(|f| (f.kind.clone(), f.nik, f.value)).collect();
    assert_eq!(
        flags,
        vec![
            ("cash_over_limit".to_string(), POOR, 150_000),
            ("category_not_allowed".to_string(), DTKS_OUTSIDE, 75_000)
        ]
    );
    assert_eq!(store.card_flags(&t.feed.sha256).await.unwrap().len(), 2);
    assert_eq!(store.spent_total(DTKS_OUTSIDE).await.unwrap(), 200_000);
    assert!(!m::import_transactions(&store, &policy, &feed, "t", &quiet).await.unwrap().new);
    // A sanction now marks only the unspent balance for withdrawal.
    let dtks_paid = store.credited_total(DTKS_OUTSIDE).await.unwrap();
    let req = m::SanctionRequest {
        nik: Nik::parse("3171011212070008").unwrap(),
        category: "PARENT_FAKE_RECEIPTS".into(),
        ..req
    };
    let s2 = m::add_sanction(&store, &policy, &req).await.expect("sanction");
    assert_eq!((s2.withdraw, s2.stop_from), (dtks_paid - 200_000, 202507));

    // Every step is audited.
    let trail: Vec<String> = store
        .audit_trail(Some(&CAR_CONFLICT.to_string()))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(trail, vec!["sanction.add", "sanction.lift"]);
    // The shared, chained log (read in the console) names the child masked only.
    let shared = store.audit_entries(500, "sanction").await.unwrap();
    assert!(shared.len() >= 3, "{shared:?}");
    for e in &shared {
        assert!(
            e.subject.contains("**********") && !e.subject.contains(&CAR_CONFLICT.to_string()[4..14]),
            "{e:?}"
        );
    }
    let all: Vec<String> = store.audit_trail(None).await.unwrap().into_iter().map(|a| a.action).collect();
    for action in ["accounts.import", "pay.batch", "pay.reconcile"] {
        assert!(all.iter().any(|a| a == action), "{action} audited: {all:?}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_on_sqlite() {
    run(&TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
        return;
    };
    run(&db).await;
    db.drop().await;
}
