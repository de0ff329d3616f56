//! The console's tables: the audit chain (tampering is detected), staff accounts and
//! their lock-out counters, sessions, complaint tickets. On SQLite, and on PostgreSQL
//! when `KJP_TEST_DATABASE_URL` is set.

use kjp_store::{Complaint, LoginAttempt, Store};
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
        "kjp_console_{}_{}",
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

/// What an attacker with database access would run, behind the store's back.
async fn tamper(store: &Store, sql: &str) {
    let mut conn = sqlx::AnyConnection::connect(store.url()).await.expect("connect");
    sqlx::query(sql).execute(&mut conn).await.expect("tamper");
    conn.close().await.ok();
}

async fn five_entries(store: &Store) {
    for i in 1..=5 {
        store
            .audit("pos.gambir", "view.child", "3171010403120001", &format!("view {i}"), "10.0.0.1")
            .await
            .expect("append");
    }
    assert_eq!(store.verify_audit().await.expect("verify"), Ok(5));
}

#[tokio::test]
async fn an_edited_audit_entry_is_detected() {
    with_each_backend(async |store| {
        five_entries(&store).await;
        tamper(&store, "UPDATE audit_log SET actor = 'someone.else' WHERE seq = 3").await;
        let breaks = store.verify_audit().await.expect("verify").expect_err("tampering found");
        assert_eq!(breaks.len(), 1, "{breaks:?}");
        assert_eq!(breaks[0].seq, 3);
        assert!(breaks[0].problem.contains("edited"), "{breaks:?}");
    })
    .await;
}

#[tokio::test]
async fn an_entry_rehashed_after_editing_breaks_the_next_link() {
    with_each_backend(async |store| {
        five_entries(&store).await;
        // Editing and recomputing the entry's own hash is not enough: the next one
        // chains to the old hash.
        let mut e =
            store.audit_entries(10, "").await.expect("entries").into_iter().find(|e| e.seq == 2).expect("2");
        e.detail = "nothing to see".into();
        tamper(&store, "UPDATE audit_log SET detail = 'nothing to see', sha256 = 'f00d' WHERE seq = 2").await;
        let breaks = store.verify_audit().await.expect("verify").expect_err("tampering found");
        assert!(breaks.iter().any(|b| b.seq == 2), "{breaks:?}");
        assert!(breaks.iter().any(|b| b.seq == 3 && b.problem.contains("does not chain")), "{breaks:?}");
    })
    .await;
}

#[tokio::test]
async fn a_deleted_audit_entry_is_detected_in_the_middle_and_at_the_end() {
    with_each_backend(async |store| {
        five_entries(&store).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq = 2").await;
        let breaks = store.verify_audit().await.expect("verify").expect_err("deletion found");
        assert!(breaks.iter().any(|b| b.problem.contains("entries 2 to 2 are missing")), "{breaks:?}");
    })
    .await;
    with_each_backend(async |store| {
        five_entries(&store).await;
        tamper(&store, "DELETE FROM audit_log WHERE seq >= 4").await;
        let breaks = store.verify_audit().await.expect("verify").expect_err("truncation found");
        assert!(
            breaks.iter().any(|b| b.problem.contains("ends at entry 3 but its head records entry 5")),
            "{breaks:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_keep_one_chain() {
    with_each_backend(async |store| {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.audit("t", "x", &i.to_string(), "", "").await.expect("append").seq
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.expect("task"));
        }
        seqs.sort();
        assert_eq!(seqs, (1..=16).collect::<Vec<_>>());
        assert_eq!(store.verify_audit().await.expect("verify"), Ok(16));
    })
    .await;
}

#[tokio::test]
async fn appends_go_on_while_another_process_writes() {
    with_each_backend(async |store| {
        // Another process (a stage run, say) holds the write lock for 3 s, then writes in
        // short transactions for 1 s more.
        let url = store.url().to_string();
        let sqlite = store.backend() == kjp_store::Backend::Sqlite;
        let writer = async move {
            let mut other = sqlx::AnyConnection::connect(&url).await.expect("connect");
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(4) {
                let hold = if started.elapsed().as_secs() < 1 { 3000 } else { 40 };
                sqlx::raw_sql(if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" })
                    .execute(&mut other)
                    .await
                    .expect("begin");
                sqlx::raw_sql("UPDATE audit_head SET seq = seq WHERE id = 1")
                    .execute(&mut other)
                    .await
                    .expect("write");
                tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
                sqlx::raw_sql("COMMIT").execute(&mut other).await.expect("commit");
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            other.close().await.ok();
        };
        let appender = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            for i in 1..=20 {
                let entry = store.audit("pos.gambir", "view.child", "x", "", "").await.expect("appended");
                assert_eq!(entry.seq, i);
            }
        };
        tokio::join!(writer, appender);
        assert_eq!(store.verify_audit().await.expect("verify"), Ok(20));
    })
    .await;
}

#[tokio::test]
async fn a_write_that_outwaits_the_busy_timeout_is_busy_not_a_database_fault() {
    // SQLite only: its busy timeout (5 s) is what runs out. Another process holds the
    // write lock for longer; the store's write gives up with `Busy`, and succeeds once
    // the lock is released.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let store = Store::open(&url, Some(dir.path().join("data"))).await.expect("open sqlite");
    let mut other = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.expect("begin");
    sqlx::raw_sql("UPDATE audit_head SET seq = seq WHERE id = 1").execute(&mut other).await.expect("write");
    let err = store.add_staff("a", "post", "31.71.01", "$argon2id$x").await.expect_err("locked out");
    assert!(err.is_busy(), "expected busy, got {err:?}");
    assert!(err.to_string().contains("try again"), "{err}");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.expect("commit");
    assert!(store.add_staff("a", "post", "31.71.01", "$argon2id$x").await.expect("added once free"));
}

#[tokio::test]
async fn failed_sign_ins_lock_after_the_limit_and_success_clears_them() {
    with_each_backend(async |store| {
        assert!(store.add_staff("a", "post", "31.71.01", "$argon2id$x").await.expect("add"));
        assert!(!store.add_staff("a", "admin", "*", "$argon2id$y").await.expect("add"), "taken");
        assert_eq!(store.login_failed("nobody", 3, "2099").await.expect("count"), LoginAttempt::Unknown);
        assert_eq!(store.login_failed("a", 3, "2099").await.expect("count"), LoginAttempt::Counted);
        store.login_succeeded("a").await.expect("clear");
        assert_eq!(store.login_failed("a", 3, "2099").await.expect("count"), LoginAttempt::Counted);
        assert_eq!(store.login_failed("a", 3, "2099").await.expect("count"), LoginAttempt::Counted);
        assert_eq!(store.login_failed("a", 3, "2099").await.expect("count"), LoginAttempt::Locked);
        let u = store.staff("a").await.expect("get").expect("exists");
        assert_eq!((u.locked_until.as_str(), u.failed_logins), ("2099", 0));
        assert!(!format!("{u:?}").contains("argon2"), "no hash in debug output");
        store.create_session("digest", "a", "csrf", "2030-01-01T00:00:00.000Z").await.expect("session");
        assert!(store.session("digest", "2029-12-31T23:59:59.000Z").await.expect("get").is_some());
        assert!(store.session("digest", "2030-01-01T00:00:00.000Z").await.expect("get").is_none(), "expired");
        store.end_session("digest", "2000").await.expect("end");
        assert!(store.session("digest", "2000").await.expect("get").is_none());
    })
    .await;
}

#[tokio::test]
async fn complaint_tickets_are_numbered_per_year_with_their_history() {
    with_each_backend(async |store| {
        let c = Complaint {
            stage: "2025/1".into(),
            nik: "3171010403120001".into(),
            category: "other".into(),
            kecamatan: "31.71.01".into(),
            owner: "post:31.71.01".into(),
            opened_at: "2025-04-01T03:00:00.000Z".into(),
            due_date: "2025-04-15".into(),
            ..Complaint::default()
        };
        let a = store.open_complaint(&c, "received").await.expect("open");
        let b = store.open_complaint(&c, "received").await.expect("open");
        assert_eq!((a.ticket.as_str(), b.ticket.as_str()), ("KJP-2025-000001", "KJP-2025-000002"));
        assert!(store.route_complaint(&a.ticket, "education", "p", "n", "routed").await.expect("route"));
        assert!(store.resolve_complaint(&a.ticket, "e", "done", "fixed").await.expect("resolve"));
        assert!(
            !store.resolve_complaint(&a.ticket, "e", "again", "").await.expect("resolve"),
            "already closed"
        );
        assert!(!store.route_complaint(&a.ticket, "bank", "p", "", "").await.expect("route"), "closed");
        let h = store.complaint_events(&a.ticket).await.expect("events");
        assert_eq!(
            h.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["opened", "routed to education", "resolved"]
        );
        let counts = store.complaint_counts(None, "2025-04-20").await.expect("counts");
        assert_eq!((counts[0].open, counts[0].overdue, counts[0].resolved), (1, 1, 1));
        assert_eq!(store.complaints(Some("31.71.02"), None).await.expect("list").len(), 0);
        assert_eq!(store.complaints(None, Some("education")).await.expect("list").len(), 1);
    })
    .await;
}

#[tokio::test]
async fn tallies_within_a_kecamatan_or_a_school() {
    use kjp_domain::Stage;
    use kjp_store::{DecisionRow, RunRecord, Within};
    with_each_backend(async |store| {
        let s = Stage::parse("2025/1").unwrap();
        store.open_stage(s, chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()).await.unwrap();
        let run = RunRecord {
            stage: s,
            run: 0,
            started_at: "t".into(),
            finished_at: String::new(),
            policy_id: "kjp-plus".into(),
            policy_version: "1".into(),
            policy_sha256: "x".into(),
            snapshots: String::new(),
            candidates: 3,
        };
        let row = |nik: &str, kel: &str, npsn: &str, status: &str, facts: &str| DecisionRow {
            nik: nik.into(),
            status: status.into(),
            level: "SMP".into(),
            kelurahan: kel.into(),
            npsn: npsn.into(),
            monthly_total: if status == "eligible" { 470_000 } else { 0 },
            facts: facts.into(),
            ..DecisionRow::default()
        };
        let rows = [
            row("3171010403120001", "31.71.01.1001", "20100001", "eligible", "b=2012-03-04;d=1;c=1"),
            row("3171010403120002", "31.71.01.1002", "20100002", "eligible", "b=2012-03-04;d=2"),
            row("3171020403120003", "31.71.02.1001", "20100001", "ineligible", "b=2012-03-04;c=1"),
        ];
        store.replace_decisions(&run, &rows, &[], &kjp_store::RunBasis::default()).await.unwrap();
        let key = |t: &kjp_store::Tally| (t.key.join("/"), t.count, t.monthly);
        let all = store.tally_within(s, &["status", "continuing"], Within::All).await.unwrap();
        assert_eq!(
            all.iter().map(key).collect::<Vec<_>>(),
            [
                ("eligible/0".into(), 1, 470_000),
                ("eligible/1".into(), 1, 470_000),
                ("ineligible/1".into(), 1, 0)
            ]
        );
        let gambir = store.tally_within(s, &["kecamatan"], Within::Kecamatan("31.71.01")).await.unwrap();
        assert_eq!(gambir.iter().map(key).collect::<Vec<_>>(), [("31.71.01".into(), 2, 940_000)]);
        let school = store.tally_within(s, &["city", "status"], Within::School("20100001")).await.unwrap();
        assert_eq!(
            school.iter().map(key).collect::<Vec<_>>(),
            [("31.71/eligible".into(), 1, 470_000), ("31.71/ineligible".into(), 1, 0)]
        );
    })
    .await;
}
