//! Registry interoperability (the DCI search and subscribe/notify API): what a NIK's
//! decree entries say across amendments, the agencies' subscriptions and transactions,
//! and the outbox of recipient changes.
//!
//! Recipient changes are *derived* from what is stored, never pushed by the code that
//! made them: [`Store::derive_registry_events`] turns every decree record (the decree:
//! its recipients added; an amendment: its entries added, removed or changed) and every
//! sanction (recorded: revoked; lifted: reinstated) not yet derived into numbered events,
//! each source once, in one transaction. A change made while no server runs is derived by
//! the next one. Two processes deriving at once collide on the source's (or the seq's)
//! primary key and the loser rolls back.
//!
//! A subscription keeps the seq of the last event its receiver acknowledged. A process
//! delivers to it only under a lease taken by compare-and-set
//! ([`Store::claim_registry_subscription`]), so one process at a time posts to one
//! receiver, in order; a process that dies mid-delivery leaves the lease to expire and
//! the batch is posted again (at least once; the event's seq is its stable id).

use std::collections::HashSet;

use kjp_domain::Stage;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// One entry of a NIK in a stage's decree or one of its amendments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub amendment: i64,
    /// The decree's (or amendment's) number and date.
    pub number: String,
    pub decree_date: String,
    /// `recipient` or `unfunded` (decree), or the status after an amendment.
    pub status: String,
    /// Empty in the decree; `added`, `removed` or `changed` in an amendment.
    pub change: String,
}

/// A change of a recipient, as notified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    /// Its stable id: increasing, never reused.
    pub seq: i64,
    pub stage: String,
    pub nik: String,
    /// `added`, `removed`, `changed`, `revoked` or `reinstated`.
    pub change: String,
    /// The status after the change: `recipient`, `not_recipient` or `revoked`.
    pub status: String,
    /// The date the change takes effect (YYYY-MM-DD).
    pub since: String,
    /// The decree or amendment number, or the sanction's reference.
    pub decree: String,
    pub recorded_at: String,
}

/// An agency's subscription to the recipient changes of a stage (`stage` empty: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub code: String,
    pub client: String,
    pub reference_id: String,
    pub stage: String,
    pub notify_url: String,
    pub created_at: String,
    /// Empty while active.
    pub cancelled_at: String,
    pub delivered_seq: i64,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: String,
}

/// A request an agency sent, and how it was answered (no NIK: statuses and codes only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub client: String,
    pub message_id: String,
    pub transaction_id: String,
    pub action: String,
    pub status: String,
    /// JSON, written and read by the server.
    pub detail: String,
    pub recorded_at: String,
}

/// An answer to an asynchronous request, waiting to be POSTed to its requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub id: String,
    pub client: String,
    pub action: String,
    pub url: String,
    /// JSON `{"header": ..., "message": ...}`, unsigned; empty once delivered.
    pub body: String,
    pub delivered_at: String,
    pub attempts: i64,
    pub last_error: String,
}

/// What an unsubscription found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    Now,
    Already,
    /// No such subscription of this client.
    Unknown,
}

const SUB_COLUMNS: &str = "code, client, reference_id, stage, notify_url, created_at, cancelled_at, \
     delivered_seq, attempts, next_attempt_at, last_error";

fn subscription_from(r: &AnyRow) -> Result<Subscription> {
    let attempts: i32 = r.try_get("attempts")?;
    Ok(Subscription {
        code: r.try_get("code")?,
        client: r.try_get("client")?,
        reference_id: r.try_get("reference_id")?,
        stage: r.try_get("stage")?,
        notify_url: r.try_get("notify_url")?,
        created_at: r.try_get("created_at")?,
        cancelled_at: r.try_get("cancelled_at")?,
        delivered_seq: r.try_get("delivered_seq")?,
        attempts: i64::from(attempts),
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
    })
}

/// The last day of a stage's benefit period.
fn last_day(stage: Stage) -> chrono::NaiveDate {
    let months = stage.benefit_months();
    months[5] + chrono::Months::new(1) - chrono::Days::new(1)
}

/// An event before it is numbered.
struct Pending {
    stage: String,
    nik: String,
    change: &'static str,
    status: &'static str,
    since: String,
    decree: String,
}

impl Store {
    /// A NIK's entries in a stage's decree records, decree first.
    pub async fn registry_history(&self, stage: Stage, nik: &str) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT d.amendment, d.number, d.decree_date, e.status, e.change FROM decree_entries e \
             JOIN decrees d ON d.stage = e.stage AND d.amendment = e.amendment \
             WHERE e.nik = $1 AND e.stage = $2 ORDER BY d.amendment",
        )
        .bind(nik)
        .bind(stage.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let amendment: i32 = r.try_get(0)?;
                Ok(HistoryRow {
                    amendment: i64::from(amendment),
                    number: r.try_get(1)?,
                    decree_date: r.try_get(2)?,
                    status: r.try_get(3)?,
                    change: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Derives the events of every decree record and sanction not derived yet; returns
    /// how many events were appended. Safe to run from several processes at once.
    pub async fn derive_registry_events(&self) -> Result<u64> {
        let done: HashSet<String> = sqlx::query("SELECT source FROM registry_sources")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let mut appended = 0;
        for row in self.stages().await? {
            for d in self.decrees(row.stage).await? {
                let source = format!("decree:{}:{}", row.stage, d.amendment);
                if done.contains(&source) {
                    continue;
                }
                let mut events = Vec::new();
                for e in self.decree_entries(row.stage, d.amendment).await? {
                    let (change, status) = match (d.amendment, e.change.as_str(), e.status.as_str()) {
                        (0, _, "recipient") => ("added", "recipient"),
                        (0, _, _) => continue,
                        (_, "removed", _) => ("removed", "not_recipient"),
                        (_, "added", "recipient") => ("added", "recipient"),
                        (_, "changed", "recipient") => ("changed", "recipient"),
                        _ => continue,
                    };
                    events.push(Pending {
                        stage: row.stage.to_string(),
                        nik: e.nik,
                        change,
                        status,
                        since: d.decree_date.clone(),
                        decree: d.number.clone(),
                    });
                }
                appended += self.append_events(&source, &events).await?;
            }
        }
        for s in self.sanctions(None).await? {
            let sources = [
                (format!("sanction:{}:{}", s.nik, s.seq), "revoked", "revoked", s.act_date.clone()),
                (
                    format!("sanction-lifted:{}:{}", s.nik, s.seq),
                    "reinstated",
                    "recipient",
                    s.lifted_at.get(..10).unwrap_or_default().to_string(),
                ),
            ];
            for (source, change, status, since) in sources {
                if since.is_empty() || done.contains(&source) {
                    continue;
                }
                let Ok(act) = chrono::NaiveDate::parse_from_str(&s.act_date, "%Y-%m-%d") else { continue };
                // The stages the child was a recipient of whose period the sanction reaches.
                let nik = format!("{:016}", s.nik);
                let stages: Vec<String> = sqlx::query(
                    "SELECT DISTINCT stage FROM decree_entries WHERE nik = $1 AND status = 'recipient' ORDER BY stage",
                )
                .bind(&nik)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
                let events: Vec<Pending> = stages
                    .into_iter()
                    .filter(|st| Stage::parse(st).is_ok_and(|st| act <= last_day(st)))
                    .map(|stage| Pending {
                        stage,
                        nik: nik.clone(),
                        change,
                        status,
                        since: since.clone(),
                        decree: format!("sanction {}", s.seq),
                    })
                    .collect();
                appended += self.append_events(&source, &events).await?;
            }
        }
        Ok(appended)
    }

    /// Records one source's events under the next seqs, once; 0 if another process did.
    async fn append_events(&self, source: &str, events: &[Pending]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let marked =
            sqlx::query("INSERT INTO registry_sources (source, events, derived_at) VALUES ($1, $2, $3)")
                .bind(source)
                .bind(events.len() as i64)
                .bind(crate::now())
                .execute(&mut *tx)
                .await;
        match marked {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        let last: i64 = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM registry_events")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let now = crate::now();
        for (chunk_no, chunk) in events.chunks(1000).enumerate() {
            let sql = crate::values_sql(
                self.backend,
                "INSERT INTO registry_events (seq, source, stage, nik, change, status, since, decree, recorded_at)",
                9,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for (i, e) in chunk.iter().enumerate() {
                q = q
                    .bind(last + 1 + (chunk_no * 1000 + i) as i64)
                    .bind(source)
                    .bind(&e.stage)
                    .bind(&e.nik)
                    .bind(e.change)
                    .bind(e.status)
                    .bind(&e.since)
                    .bind(&e.decree)
                    .bind(&now);
            }
            match q.execute(&mut *tx).await {
                Ok(_) => {}
                // Another process took these seqs first: derive again next time.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(0),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(events.len() as u64)
    }

    /// The highest event seq (0 when there is none).
    pub async fn registry_last_seq(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM registry_events")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Up to `limit` events after `after` of a stage (`stage` empty: of every stage).
    pub async fn registry_events_after(
        &self,
        after: i64,
        stage: &str,
        limit: i64,
    ) -> Result<Vec<RegistryEvent>> {
        let rows = sqlx::query(
            "SELECT seq, stage, nik, change, status, since, decree, recorded_at FROM registry_events \
             WHERE seq > $1 AND ($2 = '' OR stage = $2) ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(stage)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RegistryEvent {
                    seq: r.try_get(0)?,
                    stage: r.try_get(1)?,
                    nik: r.try_get(2)?,
                    change: r.try_get(3)?,
                    status: r.try_get(4)?,
                    since: r.try_get(5)?,
                    decree: r.try_get(6)?,
                    recorded_at: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Adds a subscription that is notified of the events after those derived now.
    pub async fn add_registry_subscription(
        &self,
        code: &str,
        client: &str,
        reference_id: &str,
        stage: &str,
        notify_url: &str,
    ) -> Result<Subscription> {
        self.derive_registry_events().await?;
        let from = self.registry_last_seq().await?;
        sqlx::query(
            "INSERT INTO registry_subscriptions (code, client, reference_id, stage, notify_url, created_at, \
             cancelled_at, delivered_seq, attempts, next_attempt_at, last_error, lease_owner, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, '', $7, 0, '', '', '', '')",
        )
        .bind(code)
        .bind(client)
        .bind(reference_id)
        .bind(stage)
        .bind(notify_url)
        .bind(crate::now())
        .bind(from)
        .execute(&self.pool)
        .await?;
        self.registry_subscription(code)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("subscription {code} vanished")))
    }

    pub async fn registry_subscription(&self, code: &str) -> Result<Option<Subscription>> {
        let row = sqlx::query(&format!("SELECT {SUB_COLUMNS} FROM registry_subscriptions WHERE code = $1"))
            .bind(code)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| subscription_from(&r)).transpose()
    }

    /// A client's subscriptions, active or not, oldest first.
    pub async fn registry_subscriptions(&self, client: &str) -> Result<Vec<Subscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM registry_subscriptions WHERE client = $1 ORDER BY created_at, code"
        ))
        .bind(client)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription_from).collect()
    }

    /// Cancels one of a client's subscriptions; another client's code is `Unknown`.
    pub async fn cancel_registry_subscription(&self, client: &str, code: &str) -> Result<Cancelled> {
        let done = sqlx::query(
            "UPDATE registry_subscriptions SET cancelled_at = $3 WHERE code = $1 AND client = $2 AND cancelled_at = ''",
        )
        .bind(code)
        .bind(client)
        .bind(crate::now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Cancelled::Now);
        }
        Ok(match self.registry_subscription(code).await? {
            Some(s) if s.client == client => Cancelled::Already,
            _ => Cancelled::Unknown,
        })
    }

    /// Takes the delivery lease of one active subscription that has events waiting and is
    /// due (`now` RFC 3339), for `owner` until `until`; `None` if there is none.
    pub async fn claim_registry_subscription(
        &self,
        owner: &str,
        now: &str,
        until: &str,
    ) -> Result<Option<Subscription>> {
        let last = self.registry_last_seq().await?;
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM registry_subscriptions WHERE cancelled_at = '' AND delivered_seq < $1 \
             AND next_attempt_at <= $2 AND lease_until <= $2 ORDER BY next_attempt_at, code LIMIT 20"
        ))
        .bind(last)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let sub = subscription_from(r)?;
            if self.registry_events_after(sub.delivered_seq, &sub.stage, 1).await?.is_empty() {
                continue;
            }
            // Compare-and-set: only one process moves an expired lease.
            let taken = sqlx::query(
                "UPDATE registry_subscriptions SET lease_owner = $2, lease_until = $3 \
                 WHERE code = $1 AND cancelled_at = '' AND lease_until <= $4",
            )
            .bind(&sub.code)
            .bind(owner)
            .bind(until)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(Some(sub));
            }
        }
        Ok(None)
    }

    /// The receiver acknowledged every event up to `seq`: moves the cursor on, clears the
    /// failures and gives the lease back. `false` if `owner` no longer holds the lease.
    pub async fn registry_delivered(&self, code: &str, owner: &str, seq: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE registry_subscriptions SET delivered_seq = $3, attempts = 0, next_attempt_at = '', \
             last_error = '', lease_owner = '', lease_until = '' \
             WHERE code = $1 AND lease_owner = $2 AND delivered_seq < $3",
        )
        .bind(code)
        .bind(owner)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A delivery failed: counts it, records why, and waits until `next_attempt_at`.
    pub async fn registry_delivery_failed(
        &self,
        code: &str,
        owner: &str,
        error: &str,
        next_attempt_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE registry_subscriptions SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
             lease_owner = '', lease_until = '' WHERE code = $1 AND lease_owner = $2",
        )
        .bind(code)
        .bind(owner)
        .bind(error.chars().take(500).collect::<String>())
        .bind(next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a request as received (`rcvd`); `false` if this client already sent a
    /// message with this id.
    pub async fn begin_registry_txn(
        &self,
        client: &str,
        message_id: &str,
        transaction_id: &str,
        action: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO registry_transactions (client, message_id, transaction_id, action, status, detail, recorded_at) \
             VALUES ($1, $2, $3, $4, 'rcvd', '{}', $5)",
        )
        .bind(client)
        .bind(message_id)
        .bind(transaction_id)
        .bind(action)
        .bind(crate::now())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records how a received request was answered.
    pub async fn finish_registry_txn(
        &self,
        client: &str,
        message_id: &str,
        status: &str,
        detail: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE registry_transactions SET status = $3, detail = $4 WHERE client = $1 AND message_id = $2",
        )
        .bind(client)
        .bind(message_id)
        .bind(status)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A client's requests under one transaction id, in the order received.
    pub async fn registry_txns(&self, client: &str, transaction_id: &str) -> Result<Vec<TxnRecord>> {
        let rows = sqlx::query(
            "SELECT client, message_id, transaction_id, action, status, detail, recorded_at \
             FROM registry_transactions WHERE client = $1 AND transaction_id = $2 ORDER BY recorded_at, message_id",
        )
        .bind(client)
        .bind(transaction_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TxnRecord {
                    client: r.try_get(0)?,
                    message_id: r.try_get(1)?,
                    transaction_id: r.try_get(2)?,
                    action: r.try_get(3)?,
                    status: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    recorded_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}

const CALLBACK_COLUMNS: &str = "id, client, action, url, body, delivered_at, attempts, last_error";

fn callback_from(r: &AnyRow) -> Result<Callback> {
    let attempts: i32 = r.try_get("attempts")?;
    Ok(Callback {
        id: r.try_get("id")?,
        client: r.try_get("client")?,
        action: r.try_get("action")?,
        url: r.try_get("url")?,
        body: r.try_get("body")?,
        delivered_at: r.try_get("delivered_at")?,
        attempts: i64::from(attempts),
        last_error: r.try_get("last_error")?,
    })
}

impl Store {
    /// Queues an answer to be POSTed to `url`.
    pub async fn add_registry_callback(
        &self,
        id: &str,
        client: &str,
        action: &str,
        url: &str,
        body: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO registry_callbacks (id, client, action, url, body, created_at, delivered_at, attempts, \
             next_attempt_at, last_error, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6, '', 0, '', '', '', '')",
        )
        .bind(id)
        .bind(client)
        .bind(action)
        .bind(url)
        .bind(body)
        .bind(crate::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn registry_callback(&self, id: &str) -> Result<Option<Callback>> {
        let row = sqlx::query(&format!("SELECT {CALLBACK_COLUMNS} FROM registry_callbacks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| callback_from(&r)).transpose()
    }

    /// Takes the lease of one undelivered, due answer (as [`Store::claim_registry_subscription`]).
    pub async fn claim_registry_callback(
        &self,
        owner: &str,
        now: &str,
        until: &str,
    ) -> Result<Option<Callback>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALLBACK_COLUMNS} FROM registry_callbacks WHERE delivered_at = '' AND next_attempt_at <= $1 \
             AND lease_until <= $1 ORDER BY next_attempt_at, id LIMIT 20"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let cb = callback_from(r)?;
            let taken = sqlx::query(
                "UPDATE registry_callbacks SET lease_owner = $2, lease_until = $3 \
                 WHERE id = $1 AND delivered_at = '' AND lease_until <= $4",
            )
            .bind(&cb.id)
            .bind(owner)
            .bind(until)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(Some(cb));
            }
        }
        Ok(None)
    }

    /// The answer was accepted: marks it delivered and forgets its body.
    pub async fn registry_callback_delivered(&self, id: &str, owner: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE registry_callbacks SET delivered_at = $3, body = '', last_error = '', lease_owner = '', \
             lease_until = '' WHERE id = $1 AND lease_owner = $2 AND delivered_at = ''",
        )
        .bind(id)
        .bind(owner)
        .bind(crate::now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Posting the answer failed: counts it and waits until `next_attempt_at`.
    pub async fn registry_callback_failed(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        next_attempt_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE registry_callbacks SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
             lease_owner = '', lease_until = '' WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(error.chars().take(500).collect::<String>())
        .bind(next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
