//! Complaints taken at the kecamatan service posts: a ticket, an owner, a due date and a
//! history of every step, some of it shown to the family on the public follow-up page.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, Store, StoreError};

/// One complaint. `owner` is a team: `post:31.71.01`, `social:31.71.01`, `education`,
/// `bank`. `state` is `open` or `resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Complaint {
    pub ticket: String,
    pub stage: String,
    pub nik: String,
    pub contact: String,
    pub category: String,
    pub description: String,
    pub kecamatan: String,
    pub owner: String,
    pub state: String,
    pub opened_by: String,
    pub opened_at: String,
    /// YYYY-MM-DD.
    pub due_date: String,
    pub resolved_at: String,
    pub resolution: String,
}

/// One step in a complaint's history. `public_note` is what the family sees (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComplaintEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub note: String,
    pub public_note: String,
}

/// Complaints of one kecamatan: open, of which overdue on a date, and resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComplaintCount {
    pub kecamatan: String,
    pub open: i64,
    pub overdue: i64,
    pub resolved: i64,
}

fn complaint_from(r: &AnyRow) -> Result<Complaint> {
    Ok(Complaint {
        ticket: r.try_get("ticket")?,
        stage: r.try_get("stage")?,
        nik: r.try_get("nik")?,
        contact: r.try_get("contact")?,
        category: r.try_get("category")?,
        description: r.try_get("description")?,
        kecamatan: r.try_get("kecamatan")?,
        owner: r.try_get("owner")?,
        state: r.try_get("state")?,
        opened_by: r.try_get("opened_by")?,
        opened_at: r.try_get("opened_at")?,
        due_date: r.try_get("due_date")?,
        resolved_at: r.try_get("resolved_at")?,
        resolution: r.try_get("resolution")?,
    })
}

impl Store {
    /// Records a new complaint with its first history entry; the ticket is
    /// `KJP-<year>-<n>` (six digits), numbered per year of `opened_at`. Returns it.
    pub async fn open_complaint(&self, c: &Complaint, public_note: &str) -> Result<Complaint> {
        for attempt in 0..50u64 {
            match self.try_open_complaint(c, public_note).await {
                Ok(c) => return Ok(c),
                Err(e) if crate::audit::retryable(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1 + attempt % 7 * 3)).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt("complaints: could not number a ticket (contention)".into()))
    }

    async fn try_open_complaint(
        &self,
        c: &Complaint,
        public_note: &str,
    ) -> std::result::Result<Complaint, sqlx::Error> {
        let year = c.opened_at.get(..4).unwrap_or("0000").to_string();
        {
            let mut tx = self.begin_write().await?;
            let n: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM complaints WHERE ticket LIKE $1")
                .bind(format!("KJP-{year}-%"))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            let mut c = c.clone();
            c.ticket = format!("KJP-{year}-{:06}", n + 1);
            c.state = "open".into();
            sqlx::query(
                "INSERT INTO complaints (ticket, stage, nik, contact, category, description, kecamatan, owner, \
                 state, opened_by, opened_at, due_date, resolved_at, resolution) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '', '')",
            )
            .bind(&c.ticket)
            .bind(&c.stage)
            .bind(&c.nik)
            .bind(&c.contact)
            .bind(&c.category)
            .bind(&c.description)
            .bind(&c.kecamatan)
            .bind(&c.owner)
            .bind(&c.state)
            .bind(&c.opened_by)
            .bind(&c.opened_at)
            .bind(&c.due_date)
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, &c.ticket, &c.opened_by, "opened", &c.description, public_note).await?;
            tx.commit().await?;
            Ok(c)
        }
    }

    pub async fn complaint(&self, ticket: &str) -> Result<Option<Complaint>> {
        let row = sqlx::query("SELECT * FROM complaints WHERE ticket = $1")
            .bind(ticket)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| complaint_from(&r)).transpose()
    }

    /// Complaints, newest first, of a kecamatan and/or an owner when given.
    pub async fn complaints(&self, kecamatan: Option<&str>, owner: Option<&str>) -> Result<Vec<Complaint>> {
        let rows = sqlx::query(
            "SELECT * FROM complaints WHERE ($1 = '' OR kecamatan = $1) AND ($2 = '' OR owner = $2) \
             ORDER BY opened_at DESC, ticket DESC",
        )
        .bind(kecamatan.unwrap_or(""))
        .bind(owner.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(complaint_from).collect()
    }

    pub async fn complaint_events(&self, ticket: &str) -> Result<Vec<ComplaintEvent>> {
        let rows = sqlx::query("SELECT * FROM complaint_events WHERE ticket = $1 ORDER BY seq")
            .bind(ticket)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ComplaintEvent {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    note: r.try_get("note")?,
                    public_note: r.try_get("public_note")?,
                })
            })
            .collect()
    }

    /// Hands an open complaint to another team, with a history entry. `false` if it is
    /// not open.
    pub async fn route_complaint(
        &self,
        ticket: &str,
        owner: &str,
        actor: &str,
        note: &str,
        public_note: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE complaints SET owner = $2 WHERE ticket = $1 AND state = 'open'")
            .bind(ticket)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut tx, ticket, actor, &format!("routed to {owner}"), note, public_note).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds a note to the history.
    pub async fn note_complaint(
        &self,
        ticket: &str,
        actor: &str,
        note: &str,
        public_note: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_event(&mut tx, ticket, actor, "note", note, public_note).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes an open complaint with its resolution. `false` if it is not open.
    pub async fn resolve_complaint(
        &self,
        ticket: &str,
        actor: &str,
        resolution: &str,
        public_note: &str,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE complaints SET state = 'resolved', resolved_at = $2, resolution = $3 \
             WHERE ticket = $1 AND state = 'open'",
        )
        .bind(ticket)
        .bind(crate::now())
        .bind(resolution)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut tx, ticket, actor, "resolved", resolution, public_note).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Open, overdue on `today` (YYYY-MM-DD) and resolved complaints per kecamatan, of
    /// one kecamatan when given.
    pub async fn complaint_counts(
        &self,
        kecamatan: Option<&str>,
        today: &str,
    ) -> Result<Vec<ComplaintCount>> {
        let rows = sqlx::query(
            "SELECT kecamatan, \
             CAST(SUM(CASE WHEN state = 'open' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN state = 'open' AND due_date < $2 THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN state = 'resolved' THEN 1 ELSE 0 END) AS BIGINT) \
             FROM complaints WHERE ($1 = '' OR kecamatan = $1) GROUP BY kecamatan ORDER BY kecamatan",
        )
        .bind(kecamatan.unwrap_or(""))
        .bind(today)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ComplaintCount {
                    kecamatan: r.try_get(0)?,
                    open: r.try_get(1)?,
                    overdue: r.try_get(2)?,
                    resolved: r.try_get(3)?,
                })
            })
            .collect()
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ticket: &str,
    actor: &str,
    action: &str,
    note: &str,
    public_note: &str,
) -> std::result::Result<(), sqlx::Error> {
    let seq: i64 = sqlx::query(
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM complaint_events WHERE ticket = $1",
    )
    .bind(ticket)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    sqlx::query(
        "INSERT INTO complaint_events (ticket, seq, at, actor, action, note, public_note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ticket)
    .bind(seq)
    .bind(crate::now())
    .bind(actor)
    .bind(action)
    .bind(note)
    .bind(public_note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
