//! The budget ceiling of a stage: who is funded when the budget falls short, applied to
//! the stored decisions (`apply`) or shown before it is set (`what_if`).
//!
//! The order is the policy's `[funding]` (see `kjp_domain::funding`); a child's cost is
//! the monthly amount times the stage's benefit months.

use std::collections::BTreeMap;

use kjp_domain::funding::{Claim, Outcome, BUDGET_CEILING};
use kjp_domain::regions::{self, RegionLevel};
use kjp_domain::{Policy, Rupiah, Stage};
use kjp_store::{DecisionRow, FundingClaim, StageState, Store};
use serde::Serialize;

use crate::encode;
use crate::stage::{LevelCounts, StageError};

/// What a ceiling does to a stage's eligible children: the `stage budget` and
/// `stage impact --budget` contract.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CeilingImpact {
    pub stage: String,
    pub eligible: usize,
    /// The cost of funding every eligible child for the whole stage.
    pub eligible_cost: i64,
    pub outcome: Outcome,
    pub unfunded_by_level: LevelCounts,
    pub unfunded_by_city: Vec<CityCount>,
    /// Unfunded now (under the ceiling currently applied), for comparison.
    pub unfunded_now: usize,
    /// Children funded now who the ceiling would leave unfunded, and the reverse.
    pub newly_unfunded: usize,
    pub newly_funded: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CityCount {
    pub code: String,
    pub name: String,
    pub count: i64,
}

fn months(stage: Stage) -> i64 {
    stage.benefit_months().len() as i64
}

fn claims_of(rows: &[FundingClaim], policy: &Policy, stage: Stage) -> Result<Vec<Claim>, StageError> {
    rows.iter().map(|r| claim(&r.nik, &r.facts, r.monthly_total, policy, stage)).collect()
}

/// One eligible child's claim on the budget, from its stored facts and monthly amount.
fn claim(
    nik: &str,
    facts: &str,
    monthly_total: i64,
    policy: &Policy,
    stage: Stage,
) -> Result<Claim, StageError> {
    let corrupt = |reason: String| StageError::Corrupt { nik: nik.to_owned(), reason };
    let facts = encode::decode(facts, policy).map_err(corrupt)?;
    let nik = nik.parse::<u64>().map_err(|e| corrupt(e.to_string()))?;
    Ok(Claim {
        nik,
        decile: facts.dtks_decile,
        continuing: facts.get(kjp_domain::BoolFact::Continuing) == Some(true),
        cost: Rupiah::new(monthly_total * months(stage)),
    })
}

/// The budget ceiling applied to a new run's decisions in memory, before they are
/// written, exactly as [`apply`] applies it to stored ones: the eligible children, in NIK
/// order, funded by the policy's order; those beyond `budget` become `unfunded` (reason
/// `BUDGET_CEILING`). Without a ceiling every eligible child stays funded.
pub fn apply_to(
    rows: &mut [DecisionRow],
    stage: Stage,
    policy: &Policy,
    budget: Option<i64>,
) -> Result<Option<Outcome>, StageError> {
    for d in rows.iter_mut().filter(|d| d.status == "unfunded") {
        d.status = "eligible".into();
        d.reasons.clear();
    }
    let Some(budget) = budget else { return Ok(None) };
    let funding = order(policy)?;
    let mut eligible: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].status == "eligible").collect();
    eligible.sort_by(|&a, &b| rows[a].nik.cmp(&rows[b].nik));
    let claims = eligible
        .iter()
        .map(|&i| claim(&rows[i].nik, &rows[i].facts, rows[i].monthly_total, policy, stage))
        .collect::<Result<Vec<_>, _>>()?;
    let (funded, outcome) = funding.fund(&claims, Rupiah::new(budget));
    for (&i, funded) in eligible.iter().zip(&funded) {
        if !funded {
            rows[i].status = "unfunded".into();
            rows[i].reasons = BUDGET_CEILING.into();
        }
    }
    Ok(Some(outcome))
}

fn order(policy: &Policy) -> Result<&kjp_domain::funding::Funding, StageError> {
    policy.funding.as_ref().ok_or_else(|| StageError::NoFundingOrder(policy.source.clone()))
}

/// Applies the stage's budget ceiling to its stored decisions: eligible children beyond
/// it become `unfunded` (reason `BUDGET_CEILING`), the rest are funded. Without a
/// ceiling, every eligible child is funded. Returns the outcome, if there is a ceiling.
pub async fn apply(store: &Store, stage: Stage, policy: &Policy) -> Result<Option<Outcome>, StageError> {
    let row = store.stage(stage).await?.ok_or(StageError::NotOpen(stage, stage.year(), stage.half()))?;
    if row.state == StageState::Decreed {
        return Err(StageError::Decreed(stage));
    }
    let Some(budget) = row.budget else {
        store.set_funding(stage, &[], BUDGET_CEILING).await?;
        return Ok(None);
    };
    let funding = order(policy)?;
    let rows = store.funding_claims(stage).await?;
    let claims = claims_of(&rows, policy, stage)?;
    let (funded, outcome) = funding.fund(&claims, Rupiah::new(budget));
    let unfunded: Vec<String> =
        rows.iter().zip(&funded).filter(|(_, f)| !**f).map(|(r, _)| r.nik.clone()).collect();
    store.set_funding(stage, &unfunded, BUDGET_CEILING).await?;
    Ok(Some(outcome))
}

/// Sets (or with `None` clears) a stage's budget ceiling and applies it.
pub async fn set_budget(
    store: &Store,
    stage: Stage,
    budget: Option<Rupiah>,
) -> Result<Option<CeilingImpact>, StageError> {
    let policy = crate::stage::recorded_policy(store, stage).await?;
    if budget.is_some() {
        order(&policy)?;
    }
    store.set_budget(stage, budget.map(Rupiah::get)).await.map_err(|e| match e {
        kjp_store::StoreError::Decreed(s) => StageError::Decreed(s),
        other => other.into(),
    })?;
    apply(store, stage, &policy).await?;
    match budget {
        Some(b) => Ok(Some(what_if(store, stage, &policy, b).await?)),
        None => Ok(None),
    }
}

/// What `budget` would do to the stage's eligible children, without changing anything.
pub async fn what_if(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    budget: Rupiah,
) -> Result<CeilingImpact, StageError> {
    store.stage(stage).await?.ok_or(StageError::NotOpen(stage, stage.year(), stage.half()))?;
    store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    let funding = order(policy)?;
    let rows = store.funding_claims(stage).await?;
    let claims = claims_of(&rows, policy, stage)?;
    let (funded, outcome) = funding.fund(&claims, budget);
    let mut by_level = LevelCounts::default();
    let mut by_city: BTreeMap<String, i64> = BTreeMap::new();
    let (mut newly_unfunded, mut newly_funded) = (0, 0);
    for (r, f) in rows.iter().zip(&funded) {
        let now_unfunded = r.status == "unfunded";
        match (*f, now_unfunded) {
            (false, false) => newly_unfunded += 1,
            (true, true) => newly_funded += 1,
            _ => {}
        }
        if !f {
            by_level.add(&r.level, 1);
            // Dotted kelurahan codes: 31.71 is the city.
            *by_city.entry(r.kelurahan.get(..5).unwrap_or("").to_string()).or_default() += 1;
        }
    }
    let unfunded_by_city = regions::at_level(RegionLevel::Kota)
        .map(|r| CityCount {
            code: r.code.into(),
            name: r.name.into(),
            count: by_city.get(r.code).copied().unwrap_or(0),
        })
        .collect();
    Ok(CeilingImpact {
        stage: stage.to_string(),
        eligible: rows.len(),
        eligible_cost: claims.iter().map(|c| c.cost.get()).sum(),
        outcome,
        unfunded_by_level: by_level,
        unfunded_by_city,
        unfunded_now: rows.iter().filter(|r| r.status == "unfunded").count(),
        newly_unfunded,
        newly_funded,
    })
}
