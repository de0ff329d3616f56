//! A fresh database per test: a SQLite file in a temporary directory, or, when
//! `KJP_TEST_DATABASE_URL` points at a PostgreSQL server, a new database on it.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use kjp_store::Store;
use sqlx::Connection;

pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, url: String, name: String },
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub fn sqlite() -> TestDb {
        TestDb::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    pub async fn postgres() -> Option<TestDb> {
        let admin = std::env::var("KJP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        let name = format!(
            "kjp_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect to KJP_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(TestDb::Postgres { url: format!("{base}/{name}"), admin, name })
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(dir) => format!("sqlite:{}", dir.path().join("kjp.db").display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    pub async fn store(&self, data_dir: &Path) -> Store {
        Store::open(&self.url(), Some(data_dir.join("kjp-data"))).await.expect("open store")
    }

    pub async fn drop(self) {
        if let TestDb::Postgres { admin, name, .. } = self {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .ok();
        }
    }
}
