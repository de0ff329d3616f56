//! Counts of a stage's decisions within one staff member's scope (a kecamatan or a
//! school), for the console's dashboards.

use kjp_domain::Stage;
use sqlx::Row;

use crate::{Result, Store, Tally};

/// Which decisions a count covers: all, one kecamatan (`31.71.01`) or one school (NPSN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within<'a> {
    All,
    Kecamatan(&'a str),
    School(&'a str),
}

impl Store {
    /// Like [`Store::tally`], within a scope; also knows `continuing` (`1` for a
    /// continuing recipient, `0` for a new one).
    pub async fn tally_within(
        &self,
        stage: Stage,
        columns: &[&str],
        within: Within<'_>,
    ) -> Result<Vec<Tally>> {
        let exprs: Vec<&str> = columns
            .iter()
            .map(|c| match *c {
                "status" => "status",
                "level" => "level",
                "reasons" => "reasons",
                "city" => "SUBSTR(kelurahan, 1, 5)",
                "kecamatan" => "SUBSTR(kelurahan, 1, 8)",
                "continuing" => "CASE WHEN (';' || facts) LIKE '%;c=1%' THEN '1' ELSE '0' END",
                other => panic!("tally_within: unknown column {other}"),
            })
            .collect();
        let keys = exprs.join(", ");
        let (filter, value) = match within {
            Within::All => ("$2 = ''", ""),
            Within::Kecamatan(k) => ("SUBSTR(kelurahan, 1, 8) = $2", k),
            Within::School(n) => ("npsn = $2", n),
        };
        let sql = format!(
            "SELECT {keys}, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(monthly_total), 0) AS BIGINT) \
             FROM decisions WHERE stage = $1 AND {filter} GROUP BY {keys} ORDER BY {keys}"
        );
        let rows = sqlx::query(&sql).bind(stage.to_string()).bind(value).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let n = exprs.len();
                Ok(Tally {
                    key: (0..n).map(|i| r.try_get::<String, _>(i)).collect::<Result<_, _>>()?,
                    count: r.try_get(n)?,
                    monthly: r.try_get(n + 1)?,
                })
            })
            .collect()
    }
}
