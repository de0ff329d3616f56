//! Settling conflicts and fixing a stage by decree.
//!
//! `resolve_by_rule` settles the conflicts a documented rule decides (see
//! `kjp_domain::conflict::Rule`) and re-decides those children; `resolve_one` records an
//! officer's decision for one child. Each keeps who, when, why and what it was before.
//! `decree` refuses while anything is in review, then records the decree number and
//! date, the policy and snapshot hashes, every recipient with level and monthly amount,
//! and a sha256 over all of it; the stage's decisions are then frozen. `replay`
//! re-decides every child from what was recorded and compares.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::NaiveDate;
use kjp_domain::assess::Rules;
use kjp_domain::conflict::{self, Conflict, Rule};
use kjp_domain::{Facts, Nik, Policy, Stage, Status};
use kjp_store::{DecisionRow, DecreeEntry, DecreeRecord, Resolution, StageState, Store, StoreError};

use crate::encode;

/// Reason code of a decision an officer made by hand (the why is in the resolution).
pub const OFFICER_DECISION: &str = "OFFICER_DECISION";

#[derive(Debug, thiserror::Error)]
pub enum DecreeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Assess(#[from] kjp_domain::AssessError),
    #[error("stage {0} does not exist")]
    NoStage(Stage),
    #[error("stage {0} has not been verified: run `kjp stage verify {0}` first")]
    NotVerified(Stage),
    #[error("stage {0} is already decreed; a correction is an amendment")]
    Decreed(Stage),
    #[error("stage {stage} still has {count} decision(s) in review: {detail}. Settle them first with `kjp stage resolve {stage} --rule later-source-wins --reason ...` and `kjp stage resolve {stage} --nik N --as eligible|ineligible --reason ...`")]
    InReview { stage: Stage, count: usize, detail: String },
    #[error("NIK {0} is not a candidate of this stage")]
    NotCandidate(String),
    #[error("NIK {nik} is {status}, not in review: only decisions in review are settled by hand (correct the data and verify again)")]
    NotInReview { nik: String, status: String },
    #[error("NIK {0} cannot be made eligible: its school level or school type is unknown; correct the enrolment data and verify again")]
    NoAmount(String),
    #[error("a resolution needs a reason (--reason)")]
    NoReason,
    #[error("the decree needs a number (--number)")]
    NoNumber,
    #[error("stored decision for NIK {nik}: {reason}")]
    Corrupt { nik: String, reason: String },
    #[error("applying the budget ceiling: {0}")]
    Funding(String),
}

/// The budget ceiling again, after resolutions changed who is eligible.
async fn refund(store: &Store, stage: Stage, policy: &Policy) -> Result<(), DecreeError> {
    match crate::funding::apply(store, stage, policy).await {
        Ok(_) => Ok(()),
        Err(crate::stage::StageError::Store(e)) => Err(e.into()),
        Err(e) => Err(DecreeError::Funding(e.to_string())),
    }
}

fn masked(nik: &str) -> String {
    Nik::parse(nik).map(|n| n.masked()).unwrap_or_else(|_| "(invalid NIK)".into())
}

/// The decision row for `facts` decided by `rules`, keeping what the run recorded.
fn redecided(before: &DecisionRow, facts: &Facts, rules: &Rules, policy: &Policy) -> DecisionRow {
    crate::verify::with_decision(before.clone(), policy, facts, &rules.assess(facts))
}

/// An officer's decision: eligible at `monthly`, or ineligible when `None`.
fn officer_row(before: &DecisionRow, monthly: Option<kjp_domain::Monthly>) -> DecisionRow {
    let m = monthly.unwrap_or_default();
    DecisionRow {
        status: if monthly.is_some() { "eligible" } else { "ineligible" }.into(),
        grp: if monthly.is_some() { before.grp.clone() } else { String::new() },
        routine: m.routine.get(),
        periodic: m.periodic.get(),
        school_fee: m.school_fee.get(),
        monthly_total: m.total.get(),
        reasons: OFFICER_DECISION.into(),
        unknown: String::new(),
        ..before.clone()
    }
}

fn conflicts_of(d: &DecisionRow) -> Result<Vec<Conflict>, DecreeError> {
    if d.conflicts.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(&d.conflicts)
        .map_err(|e| DecreeError::Corrupt { nik: masked(&d.nik), reason: e.to_string() })
}

fn facts_of(d: &DecisionRow, policy: &Policy) -> Result<Facts, DecreeError> {
    encode::decode(&d.facts, policy).map_err(|reason| DecreeError::Corrupt { nik: masked(&d.nik), reason })
}

async fn stage_row(store: &Store, stage: Stage) -> Result<kjp_store::StageRow, DecreeError> {
    let row = store.stage(stage).await?.ok_or(DecreeError::NoStage(stage))?;
    match row.state {
        StageState::Decreed => Err(DecreeError::Decreed(stage)),
        StageState::Open => Err(DecreeError::NotVerified(stage)),
        StageState::Verified => Ok(row),
    }
}

/// What settling by rule did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Settled {
    pub settled: usize,
    /// After settling: how many are now eligible, ineligible, or still in review
    /// (another fact is still unknown).
    pub by_outcome: BTreeMap<String, usize>,
    /// Left for an officer, by the fact in dispute or unknown.
    pub left: BTreeMap<String, usize>,
}

/// Settles every review decision whose conflicts `rule` decides.
pub async fn resolve_by_rule(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    rule: Rule,
    reason: &str,
    by: &str,
) -> Result<Settled, DecreeError> {
    if reason.trim().is_empty() {
        return Err(DecreeError::NoReason);
    }
    let row = stage_row(store, stage).await?;
    let rules = Rules::new(policy, row.as_of)?;
    let now = kjp_store::timestamp();
    let mut out = Settled::default();
    let mut items = Vec::new();
    for d in store.decisions_with_status(stage, "review").await? {
        let conflicts = conflicts_of(&d)?;
        let facts = facts_of(&d, policy)?;
        match conflict::settle_all(&facts, &conflicts, rule) {
            Some(settled) => {
                let after = redecided(&d, &settled, &rules, policy);
                out.settled += 1;
                *out.by_outcome.entry(after.status.clone()).or_default() += 1;
                items.push((
                    after.clone(),
                    Resolution {
                        nik: d.nik.clone(),
                        rule: rule.name().into(),
                        outcome: after.status.clone(),
                        reason: reason.into(),
                        resolved_by: by.into(),
                        resolved_at: now.clone(),
                        before_status: d.status.clone(),
                        before_unknown: d.unknown.clone(),
                    },
                ));
            }
            None => {
                let key = if conflicts.is_empty() {
                    format!("unknown: {}", d.unknown)
                } else {
                    let facts: Vec<&str> = conflicts.iter().map(Conflict::fact).collect();
                    format!("conflict: {}", facts.join(", "))
                };
                *out.left.entry(key).or_default() += 1;
            }
        }
    }
    store.apply_resolutions(stage, &items).await?;
    refund(store, stage, policy).await?;
    Ok(out)
}

/// An officer settles one child in review.
pub async fn resolve_one(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    nik: &Nik,
    outcome: Status,
    reason: &str,
    by: &str,
) -> Result<DecisionRow, DecreeError> {
    if reason.trim().is_empty() {
        return Err(DecreeError::NoReason);
    }
    let row = stage_row(store, stage).await?;
    let rules = Rules::new(policy, row.as_of)?;
    let key = nik.to_string();
    let before = store.decision(stage, &key).await?.ok_or_else(|| DecreeError::NotCandidate(nik.masked()))?;
    if before.status != "review" {
        return Err(DecreeError::NotInReview { nik: nik.masked(), status: before.status });
    }
    let facts = facts_of(&before, policy)?;
    let after = match outcome {
        Status::Eligible => {
            let m = facts
                .level
                .and_then(|l| rules.monthly(l, facts.school))
                .ok_or_else(|| DecreeError::NoAmount(nik.masked()))?;
            officer_row(&before, Some(m))
        }
        _ => officer_row(&before, None),
    };
    let resolution = Resolution {
        nik: key,
        rule: "manual".into(),
        outcome: after.status.clone(),
        reason: reason.into(),
        resolved_by: by.into(),
        resolved_at: kjp_store::timestamp(),
        before_status: before.status.clone(),
        before_unknown: before.unknown.clone(),
    };
    store.apply_resolutions(stage, &[(after.clone(), resolution)]).await?;
    refund(store, stage, policy).await?;
    Ok(after)
}

/// A stage's earlier resolutions applied again to a new run's decisions, in memory:
/// rule-based ones by the same rule, an officer's for a child still in review with the
/// same open question. Returns, for each that applies, the index of the row in `rows`,
/// the row as resolved and the resolution as recorded again; the caller writes both with
/// the run.
pub fn reapplied(
    rows: &[DecisionRow],
    resolutions: Vec<Resolution>,
    policy: &Policy,
    as_of: NaiveDate,
) -> Result<Vec<(usize, DecisionRow, Resolution)>, DecreeError> {
    if resolutions.is_empty() {
        return Ok(Vec::new());
    }
    let rules = Rules::new(policy, as_of)?;
    // A few resolutions against millions of rows: look the rows up by the resolutions.
    let mut by_nik: std::collections::HashMap<String, Resolution> =
        resolutions.into_iter().map(|r| (r.nik.clone(), r)).collect();
    let mut items = Vec::new();
    for (i, d) in rows.iter().enumerate() {
        if d.status != "review" {
            continue;
        }
        let Some(r) = by_nik.remove(&d.nik) else { continue };
        let after = match Rule::parse(&r.rule) {
            Some(rule) => {
                let facts = facts_of(d, policy)?;
                match conflict::settle_all(&facts, &conflicts_of(d)?, rule) {
                    Some(settled) => redecided(d, &settled, &rules, policy),
                    None => continue,
                }
            }
            // An officer's ruling applies only to the same open question it answered.
            None if d.unknown != r.before_unknown => continue,
            None => {
                let facts = facts_of(d, policy)?;
                match (r.outcome.as_str(), facts.level.and_then(|l| rules.monthly(l, facts.school))) {
                    ("eligible", Some(m)) => officer_row(d, Some(m)),
                    ("ineligible", _) => officer_row(d, None),
                    _ => continue,
                }
            }
        };
        let again = Resolution {
            outcome: after.status.clone(),
            before_status: d.status.clone(),
            before_unknown: d.unknown.clone(),
            ..r
        };
        items.push((i, after, again));
    }
    Ok(items)
}

/// What the office asks to record.
#[derive(Debug, Clone)]
pub struct DecreeRequest {
    pub number: String,
    pub date: NaiveDate,
    pub note: String,
}

/// The text the decree's sha256 is taken over: every recorded field, one recipient a line.
pub fn canonical(d: &DecreeRecord, entries: &[DecreeEntry]) -> String {
    let mut t = String::with_capacity(entries.len() * 80 + 512);
    let _ = writeln!(t, "stage={}", d.stage);
    let _ = writeln!(t, "amendment={}", d.amendment);
    let _ = writeln!(t, "number={}", d.number);
    let _ = writeln!(t, "date={}", d.decree_date);
    let _ = writeln!(t, "policy_sha256={}", d.policy_sha256);
    let _ = writeln!(t, "snapshots={}", d.snapshots);
    let _ = writeln!(t, "recipients={}", d.recipients);
    let _ = writeln!(t, "unfunded={}", d.unfunded);
    let _ = writeln!(t, "monthly_total={}", d.monthly_total);
    let _ = writeln!(t, "note={}", d.note);
    let _ = writeln!(t, "previous_sha256={}", d.previous_sha256);
    // Absent for a stage without a ceiling, so that such decrees keep their hash.
    if let Some(b) = d.budget {
        let _ = writeln!(t, "budget={b}");
    }
    for e in entries {
        let _ = writeln!(
            t,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            e.nik,
            e.status,
            e.level,
            e.school,
            e.npsn,
            e.kelurahan,
            e.routine,
            e.periodic,
            e.school_fee,
            e.monthly_total,
            e.change,
            e.reason
        );
    }
    t
}

/// Freezes a verified stage by decree.
pub async fn decree(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    req: &DecreeRequest,
) -> Result<DecreeRecord, DecreeError> {
    if req.number.trim().is_empty() {
        return Err(DecreeError::NoNumber);
    }
    let row = stage_row(store, stage).await?;
    let run = store.last_run(stage).await?.ok_or(DecreeError::NotVerified(stage))?;
    let review = store.tally(stage, &["status", "unknown", "city"]).await?;
    let pending: Vec<&kjp_store::Tally> = review.iter().filter(|t| t.key[0] == "review").collect();
    if !pending.is_empty() {
        let count: i64 = pending.iter().map(|t| t.count).sum();
        let mut by_fact: BTreeMap<&str, i64> = BTreeMap::new();
        let mut by_city: BTreeMap<String, i64> = BTreeMap::new();
        for t in &pending {
            for f in t.key[1].split(';').filter(|f| !f.is_empty()) {
                *by_fact.entry(f).or_default() += t.count;
            }
            let city = kjp_domain::RegionCode::parse(&t.key[2])
                .map(|r| r.name().to_string())
                .unwrap_or_else(|_| "no kelurahan on record".into());
            *by_city.entry(city).or_default() += t.count;
        }
        let facts: Vec<String> = by_fact.iter().map(|(f, n)| format!("{f} {n}")).collect();
        let cities: Vec<String> = by_city.iter().map(|(c, n)| format!("{c} {n}")).collect();
        return Err(DecreeError::InReview {
            stage,
            count: count as usize,
            detail: format!("by fact: {}; by city: {}", facts.join(", "), cities.join(", ")),
        });
    }
    if run.policy_sha256 != policy.sha256 {
        // The decree records the policy the decisions were made with; a different file
        // now would make the record untrue.
        return Err(DecreeError::Corrupt {
            nik: "-".into(),
            reason: format!(
                "the stage was verified with policy sha256 {} but {} is loaded now: verify again with this policy",
                run.policy_sha256, policy.sha256
            ),
        });
    }
    let entry = |d: DecisionRow, status: &str| DecreeEntry {
        nik: d.nik,
        status: status.into(),
        level: d.level,
        school: d.school,
        npsn: d.npsn,
        kelurahan: d.kelurahan,
        routine: d.routine,
        periodic: d.periodic,
        school_fee: d.school_fee,
        monthly_total: d.monthly_total,
        change: String::new(),
        reason: if status == "unfunded" { d.reasons } else { String::new() },
    };
    let mut entries: Vec<DecreeEntry> = store
        .decisions_with_status(stage, "eligible")
        .await?
        .into_iter()
        .map(|d| entry(d, "recipient"))
        .collect();
    let recipients = entries.len() as i64;
    let monthly_total = entries.iter().map(|e| e.monthly_total).sum();
    entries.extend(
        store.decisions_with_status(stage, "unfunded").await?.into_iter().map(|d| entry(d, "unfunded")),
    );
    entries.sort_by(|a, b| a.nik.cmp(&b.nik));
    let mut record = DecreeRecord {
        stage,
        amendment: 0,
        number: req.number.trim().into(),
        decree_date: req.date.to_string(),
        recorded_at: kjp_store::timestamp(),
        policy_sha256: run.policy_sha256,
        snapshots: run.snapshots,
        recipients,
        unfunded: entries.len() as i64 - recipients,
        monthly_total,
        budget: row.budget,
        note: req.note.clone(),
        sha256: String::new(),
        previous_sha256: String::new(),
    };
    record.sha256 = kjp_store::sha256_hex(canonical(&record, &entries).as_bytes());
    store.record_decree(&record, &entries, &[]).await?;
    Ok(record)
}

/// Re-decides every child of a decreed stage from what was recorded and compares.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Replay {
    pub decisions: usize,
    pub matching: usize,
    pub mismatching: usize,
    /// The first masked NIKs whose recorded decision the rules do not reproduce.
    pub mismatches: Vec<String>,
    pub hash_ok: bool,
}

/// Replays under the policy recorded with the decree, not whatever file is loaded now.
pub async fn replay(store: &Store, stage: Stage) -> Result<Replay, DecreeError> {
    let row = store.stage(stage).await?.ok_or(DecreeError::NoStage(stage))?;
    let decrees = store.decrees(stage).await?;
    let first = decrees.first().ok_or(DecreeError::NotVerified(stage))?;
    let policy = &crate::stage::policy_by_sha(store, &first.policy_sha256)
        .await
        .map_err(|e| DecreeError::Corrupt { nik: "-".into(), reason: e.to_string() })?;
    let entries = store.decree_entries(stage, 0).await?;
    let mut out = Replay {
        hash_ok: kjp_store::sha256_hex(canonical(first, &entries).as_bytes()) == first.sha256,
        ..Replay::default()
    };
    // Every amendment's hash, and its link to the record before it.
    for pair in decrees.windows(2) {
        let (before, d) = (&pair[0], &pair[1]);
        let own = store.decree_entries(stage, d.amendment).await?;
        out.hash_ok &= d.previous_sha256 == before.sha256
            && kjp_store::sha256_hex(canonical(d, &own).as_bytes()) == d.sha256;
    }
    let rules = Rules::new(policy, row.as_of)?;
    let manual: BTreeMap<String, String> = store
        .resolutions(stage)
        .await?
        .into_iter()
        .filter(|r| r.rule == "manual")
        .map(|r| (r.nik, r.outcome))
        .collect();
    let recipients: BTreeMap<&str, &DecreeEntry> = entries.iter().map(|e| (e.nik.as_str(), e)).collect();
    let mut bad = None;
    // The eligible, to replay the budget ceiling over: (claim, funded as recorded).
    let mut claims: Vec<(kjp_domain::funding::Claim, bool, String)> = Vec::new();
    let months = stage.benefit_months().len() as i64;
    store
        .each_decision(stage, |d| {
            out.decisions += 1;
            let facts = match encode::decode(&d.facts, policy) {
                Ok(f) => f,
                Err(e) => {
                    bad.get_or_insert(DecreeError::Corrupt { nik: masked(&d.nik), reason: e });
                    return;
                }
            };
            let decided = rules.assess(&facts);
            let (status, total) = match manual.get(&d.nik) {
                Some(outcome) => (outcome.clone(), d.monthly_total),
                None => (decided.status.as_str().to_string(), decided.monthly.map_or(0, |m| m.total.get())),
            };
            let eligible = status == "eligible";
            let recorded = recipients.get(d.nik.as_str());
            let ok = (status == d.status || (eligible && d.status == "unfunded"))
                && (!eligible || total == d.monthly_total)
                && eligible == recorded.is_some()
                && recorded.is_none_or(|e| e.monthly_total == total);
            if ok {
                out.matching += 1;
            } else {
                out.mismatching += 1;
                if out.mismatches.len() < 20 {
                    out.mismatches.push(masked(&d.nik));
                }
            }
            if let (true, Some(e), Ok(nik)) = (ok && eligible, recorded, d.nik.parse::<u64>()) {
                let claim = kjp_domain::funding::Claim {
                    nik,
                    decile: facts.dtks_decile,
                    continuing: facts.get(kjp_domain::BoolFact::Continuing) == Some(true),
                    cost: kjp_domain::Rupiah::new(total * months),
                };
                claims.push((claim, e.status == "recipient" && d.status == "eligible", d.nik.clone()));
            }
        })
        .await?;
    // The ceiling, replayed with the budget and order recorded.
    let funded: Vec<bool> = match (first.budget, policy.funding.as_ref()) {
        (Some(budget), Some(order)) => {
            let only: Vec<_> = claims.iter().map(|c| c.0).collect();
            order.fund(&only, kjp_domain::Rupiah::new(budget)).0
        }
        (Some(_), None) => vec![false; claims.len()],
        (None, _) => vec![true; claims.len()],
    };
    for ((_, recorded, nik), funded) in claims.iter().zip(funded) {
        if *recorded != funded {
            out.matching -= 1;
            out.mismatching += 1;
            if out.mismatches.len() < 20 {
                out.mismatches.push(masked(nik));
            }
        }
    }
    if let Some(e) = bad {
        return Err(e);
    }
    Ok(out)
}
