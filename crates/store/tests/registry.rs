//! The registry's store on SQLite, and on PostgreSQL when `KJP_TEST_DATABASE_URL` is set:
//! events derived once per decree record and sanction, the delivery lease taken by one
//! process at a time, the cursor, failures, transactions and cancellations.

use kjp_domain::Stage;
use kjp_store::{Cancelled, DecreeEntry, DecreeRecord, Store};
use sqlx::Connection;

async fn with_each_backend(test: impl AsyncFn(Store)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    test(Store::open(&url, Some(dir.path().join("data"))).await.expect("open sqlite")).await;

    let Some(admin) = std::env::var("KJP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: PostgreSQL not tested");
        return;
    };
    let name = format!(
        "kjp_registry_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let store =
        Store::open(&format!("{base}/{name}"), Some(dir.path().join("pgdata"))).await.expect("open postgres");
    test(store.clone()).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.ok();
}

const A: &str = "3171010403120001";
const B: &str = "3171011009090006";

fn record(stage: Stage, amendment: i64, number: &str, date: &str) -> DecreeRecord {
    DecreeRecord {
        stage,
        amendment,
        number: number.into(),
        decree_date: date.into(),
        recorded_at: format!("{date}T08:00:00.000Z"),
        policy_sha256: "p".into(),
        snapshots: String::new(),
        recipients: 1,
        unfunded: 1,
        monthly_total: 0,
        budget: None,
        note: String::new(),
        sha256: format!("h{amendment}"),
        previous_sha256: String::new(),
    }
}

fn entry(nik: &str, status: &str, change: &str) -> DecreeEntry {
    DecreeEntry { nik: nik.into(), status: status.into(), change: change.into(), ..Default::default() }
}

#[tokio::test]
async fn changes_are_derived_once_and_delivered_under_one_lease() {
    with_each_backend(async |store: Store| {
        let s = Stage::parse("2025/1").unwrap();
        store.open_stage(s, s.start()).await.unwrap();
        let decree = [entry(A, "recipient", ""), entry(B, "unfunded", "")];
        store.record_decree(&record(s, 0, "266/2025", "2025-03-10"), &decree, &[]).await.unwrap();
        assert_eq!(store.derive_registry_events().await.unwrap(), 1, "the decree's one recipient");
        assert_eq!(store.derive_registry_events().await.unwrap(), 0, "once");

        let sub =
            store.add_registry_subscription("sub_1", "dinsos", "r1", "2025/1", "http://x/n").await.unwrap();
        assert_eq!(sub.delivered_seq, 1, "notified of what comes after");
        let all = store.add_registry_subscription("sub_2", "bpjs", "r1", "", "http://y/n").await.unwrap();
        let (now, until) = ("2025-04-16T00:00:00.000Z", "2025-04-16T00:01:00.000Z");
        assert_eq!(
            store.claim_registry_subscription("p1", now, until).await.unwrap(),
            None,
            "nothing waiting"
        );

        let amendment = [entry(A, "not_recipient", "removed"), entry(B, "recipient", "added")];
        store.record_decree(&record(s, 1, "301/2025", "2025-04-15"), &amendment, &[]).await.unwrap();
        assert_eq!(store.derive_registry_events().await.unwrap(), 2);
        let events = store.registry_events_after(1, "2025/1", 10).await.unwrap();
        let got: Vec<_> =
            events.iter().map(|e| (e.seq, e.nik.as_str(), e.change.as_str(), e.since.as_str())).collect();
        assert_eq!(got, [(2, A, "removed", "2025-04-15"), (3, B, "added", "2025-04-15")]);
        assert!(store.registry_events_after(1, "kjmu/2025/1", 10).await.unwrap().is_empty());

        // One process at a time per subscription.
        let first = store.claim_registry_subscription("p1", now, until).await.unwrap().expect("a claim");
        let second =
            store.claim_registry_subscription("p2", now, until).await.unwrap().expect("the other one");
        assert_ne!(first.code, second.code);
        assert_eq!(store.claim_registry_subscription("p3", now, until).await.unwrap(), None, "both leased");
        let owner = |code: &str| if code == first.code { "p1" } else { "p2" };
        assert!(!store.registry_delivered("sub_1", "p3", 3).await.unwrap(), "not the lease holder");
        assert!(store.registry_delivered("sub_1", owner("sub_1"), 3).await.unwrap());
        store
            .registry_delivery_failed("sub_2", owner("sub_2"), "answered 500", "2025-04-16T00:00:10.000Z")
            .await
            .unwrap();
        let failed = store.registry_subscription("sub_2").await.unwrap().unwrap();
        assert_eq!(
            (failed.attempts, failed.last_error.as_str(), failed.delivered_seq),
            (1, "answered 500", all.delivered_seq)
        );
        assert_eq!(store.claim_registry_subscription("p1", now, until).await.unwrap(), None, "not due yet");
        let later = "2025-04-16T00:00:11.000Z";
        let retried =
            store.claim_registry_subscription("p1", later, "2025-04-16T00:02:00.000Z").await.unwrap();
        assert_eq!(retried.map(|s| s.code).as_deref(), Some("sub_2"));
        // An expired lease is taken over.
        let taken = store
            .claim_registry_subscription("p2", "2025-04-16T00:03:00.000Z", "2025-04-16T00:04:00.000Z")
            .await
            .unwrap();
        assert_eq!(taken.map(|s| s.code).as_deref(), Some("sub_2"));
        assert!(!store.registry_delivered("sub_2", "p1", 3).await.unwrap(), "the old holder lost it");

        // A sanction revokes the stages the child was a recipient of, once.
        let sanction = kjp_store::money::Sanction {
            nik: B.parse().unwrap(),
            seq: 0,
            category: "TRUANCY".into(),
            evidence: String::new(),
            act_date: "2025-05-02".into(),
            school: "20100001".into(),
            stop_from: 202506,
            withdraw: 0,
            recorded_at: "2025-05-02T08:00:00Z".into(),
            recorded_by: "t".into(),
            lifted_at: String::new(),
            lifted_by: String::new(),
            lift_school: String::new(),
            lift_reason: String::new(),
        };
        store.add_sanction(&sanction).await.unwrap();
        assert_eq!(store.derive_registry_events().await.unwrap(), 1);
        assert_eq!(store.derive_registry_events().await.unwrap(), 0);
        let revoked = store.registry_events_after(3, "", 10).await.unwrap();
        assert_eq!((revoked[0].change.as_str(), revoked[0].since.as_str()), ("revoked", "2025-05-02"));

        // "Since when": the NIK's entries across the records.
        let history = store.registry_history(s, A).await.unwrap();
        let h: Vec<_> = history.iter().map(|h| (h.amendment, h.status.as_str(), h.change.as_str())).collect();
        assert_eq!(h, [(0, "recipient", ""), (1, "not_recipient", "removed")]);

        // Transactions and cancellations, per client.
        assert!(store.begin_registry_txn("dinsos", "m1", "t1", "search").await.unwrap());
        assert!(
            !store.begin_registry_txn("dinsos", "m1", "t1", "search").await.unwrap(),
            "a message id once"
        );
        assert!(store.begin_registry_txn("bpjs", "m1", "t1", "search").await.unwrap(), "per client");
        store.finish_registry_txn("dinsos", "m1", "succ", "{\"n\":1}").await.unwrap();
        let txns = store.registry_txns("dinsos", "t1").await.unwrap();
        assert_eq!((txns.len(), txns[0].status.as_str(), txns[0].detail.as_str()), (1, "succ", "{\"n\":1}"));
        assert_eq!(store.cancel_registry_subscription("bpjs", "sub_1").await.unwrap(), Cancelled::Unknown);
        assert_eq!(store.cancel_registry_subscription("dinsos", "sub_1").await.unwrap(), Cancelled::Now);
        assert_eq!(store.cancel_registry_subscription("dinsos", "sub_1").await.unwrap(), Cancelled::Already);
        assert_eq!(store.registry_subscriptions("dinsos").await.unwrap().len(), 1);

        // An async answer: one lease at a time, forgotten once delivered.
        store.add_registry_callback("c1", "dinsos", "on-search", "http://x/on-search", "{}").await.unwrap();
        let cb = store.claim_registry_callback("p1", now, until).await.unwrap().expect("a claim");
        assert_eq!((cb.id.as_str(), cb.body.as_str()), ("c1", "{}"));
        assert_eq!(store.claim_registry_callback("p2", now, until).await.unwrap(), None, "leased");
        store.registry_callback_failed("c1", "p1", "timed out", "2025-04-16T00:00:05.000Z").await.unwrap();
        assert_eq!(store.claim_registry_callback("p2", now, until).await.unwrap(), None, "not due");
        assert!(store
            .claim_registry_callback("p2", later, "2025-04-16T00:05:00.000Z")
            .await
            .unwrap()
            .is_some());
        assert!(!store.registry_callback_delivered("c1", "p1").await.unwrap(), "not the holder");
        assert!(store.registry_callback_delivered("c1", "p2").await.unwrap());
        let done = store.registry_callback("c1").await.unwrap().unwrap();
        assert!(done.body.is_empty() && !done.delivered_at.is_empty() && done.attempts == 1);
        assert_eq!(
            store
                .claim_registry_callback("p3", "2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z")
                .await
                .unwrap(),
            None
        );
    })
    .await;
}
