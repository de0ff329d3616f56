//! Corrections to a decreed stage and the numbered amendments that publish them.
//!
//! A decree's decisions never change. A later correction (the Samsat block a family
//! brings to the service post, an officer's finding) is recorded with the child's
//! decision before and after, who, when, why and on what evidence (`correct`); the next
//! amendment (`amend`) takes every pending correction and records who it adds to or
//! removes from the recipients, and why, chained by hash to the decree and the amendments
//! before it. Amendments are not subject to the budget ceiling: a child wrongly left out
//! is added.

use std::collections::BTreeMap;

use kjp_domain::assess::Rules;
use kjp_domain::facts::FactKind;
use kjp_domain::{Fact, Nik, Policy, Rupiah, Stage, Status};
use kjp_store::{Correction, DecreeEntry, DecreeRecord, Store, StoreError};

use crate::decree::{canonical, DecreeError, DecreeRequest, OFFICER_DECISION};
use crate::encode;

/// What an officer corrects: facts, re-assessed by the rules, or the outcome itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `fact=value` pairs: yes/no facts take `yes`, `no` or `unknown`; amounts
    /// (`parent_wage`, `family_property_njop`) whole rupiah or `unknown`.
    Facts(Vec<(String, String)>),
    /// An officer's decision: eligible or ineligible.
    Outcome(Status),
}

#[derive(Debug, Clone)]
pub struct CorrectionRequest {
    pub nik: Nik,
    pub change: Change,
    pub reason: String,
    pub evidence: String,
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AmendError {
    #[error(transparent)]
    Decree(#[from] DecreeError),
    #[error("stage {0} is not decreed: correct it with `kjp stage resolve` or a new `kjp stage verify`")]
    NotDecreed(Stage),
    #[error("--fact {0:?}: {1}")]
    BadFact(String, String),
    #[error("the correction leaves NIK {nik} in review ({unknown} still unknown): give that fact too")]
    StillInReview { nik: String, unknown: String },
    #[error("the correction changes nothing: NIK {nik} stays {standing} at {amount} a month")]
    NoChange { nik: String, standing: String, amount: Rupiah },
    #[error("stage {0} has no pending corrections: record them first with `kjp stage correct`")]
    NothingPending(Stage),
    #[error("stage {0}: the {1} pending correction(s) cancel out and change no recipient; nothing to amend")]
    CancelOut(Stage, usize),
}

impl From<StoreError> for AmendError {
    fn from(e: StoreError) -> AmendError {
        AmendError::Decree(e.into())
    }
}

impl From<kjp_domain::AssessError> for AmendError {
    fn from(e: kjp_domain::AssessError) -> AmendError {
        AmendError::Decree(e.into())
    }
}

async fn decreed(store: &Store, stage: Stage) -> Result<(DecreeRecord, Policy), AmendError> {
    let decrees = store.decrees(stage).await?;
    let first = decrees.first().ok_or(AmendError::NotDecreed(stage))?.clone();
    let policy = crate::stage::policy_by_sha(store, &first.policy_sha256)
        .await
        .map_err(|e| DecreeError::Corrupt { nik: "-".into(), reason: e.to_string() })?;
    Ok((first, policy))
}

fn apply_fact(facts: &mut kjp_domain::Facts, name: &str, value: &str) -> Result<(), AmendError> {
    let bad = |why: &str| AmendError::BadFact(format!("{name}={value}"), why.into());
    let fact = Fact::from_name(name).ok_or_else(|| bad("unknown fact"))?;
    match fact.kind() {
        FactKind::Bool(b) => {
            let v = match value {
                "yes" | "true" => Some(true),
                "no" | "false" => Some(false),
                "unknown" => None,
                _ => return Err(bad("expected yes, no or unknown")),
            };
            facts.set(b, v);
        }
        FactKind::Amount => {
            let v = match value {
                "unknown" => None,
                digits => Some(Rupiah::new(
                    digits
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad("expected whole rupiah"))?,
                )),
            };
            match fact {
                Fact::ParentWage => facts.parent_wage = v,
                _ => facts.family_property_njop = v,
            }
        }
        _ => return Err(bad("only yes/no facts and amounts can be corrected here; correct the source data")),
    }
    Ok(())
}

/// Records a correction to a decreed stage, waiting for the next amendment.
pub async fn correct(store: &Store, stage: Stage, req: &CorrectionRequest) -> Result<Correction, AmendError> {
    if req.reason.trim().is_empty() {
        return Err(DecreeError::NoReason.into());
    }
    let (_, policy) = decreed(store, stage).await?;
    let row = store.stage(stage).await?.ok_or(DecreeError::NoStage(stage))?;
    let rules = Rules::new(&policy, row.as_of)?;
    let key = req.nik.to_string();
    let masked = req.nik.masked();
    let decision =
        store.decision(stage, &key).await?.ok_or_else(|| DecreeError::NotCandidate(masked.clone()))?;
    // The child as things stand: the last correction, else the decision.
    let last = store.corrections(stage, false).await?.into_iter().rev().find(|c| c.nik == key);
    let facts_before = last.as_ref().map_or(decision.facts.clone(), |c| c.facts_after.clone());
    let status_before = last.as_ref().map_or(decision.status.clone(), |c| c.status_after.clone());
    let recipients = store.recipients(stage).await?;
    let current = recipients.iter().find(|e| e.nik == key);
    let mut facts = encode::decode(&facts_before, &policy)
        .map_err(|reason| DecreeError::Corrupt { nik: masked.clone(), reason })?;
    let (status_after, monthly, reasons) = match &req.change {
        Change::Facts(pairs) => {
            for (name, value) in pairs {
                apply_fact(&mut facts, name, value)?;
            }
            let d = rules.assess(&facts);
            if d.status == Status::Review {
                let unknown: Vec<&str> = d.unknown.iter().map(|f| f.input_field()).collect();
                return Err(AmendError::StillInReview { nik: masked, unknown: unknown.join(", ") });
            }
            let reasons: Vec<&str> = d.unmet.iter().map(|i| policy.reason(i).code.as_str()).collect();
            (d.status, d.monthly.filter(|_| d.status == Status::Eligible), reasons.join(";"))
        }
        Change::Outcome(Status::Eligible) => {
            let m = facts
                .level
                .and_then(|l| rules.monthly(l, facts.school))
                .ok_or_else(|| DecreeError::NoAmount(masked.clone()))?;
            (Status::Eligible, Some(m), OFFICER_DECISION.to_string())
        }
        Change::Outcome(_) => (Status::Ineligible, None, OFFICER_DECISION.to_string()),
    };
    let total = monthly.map_or(0, |m| m.total.get());
    if (monthly.is_some(), total) == (current.is_some(), current.map_or(0, |e| e.monthly_total)) {
        return Err(AmendError::NoChange {
            nik: masked,
            standing: if current.is_some() { "a recipient" } else { "not a recipient" }.into(),
            amount: Rupiah::new(total),
        });
    }
    let m = monthly.unwrap_or_default();
    let c = Correction {
        seq: 0,
        nik: key,
        status_before,
        status_after: status_after.as_str().into(),
        facts_before,
        facts_after: encode::facts(&facts, &policy),
        level: decision.level.clone(),
        school: decision.school.clone(),
        npsn: decision.npsn.clone(),
        kelurahan: decision.kelurahan.clone(),
        routine: m.routine.get(),
        periodic: m.periodic.get(),
        school_fee: m.school_fee.get(),
        monthly_total: total,
        reasons,
        reason: req.reason.trim().into(),
        evidence: req.evidence.trim().into(),
        corrected_by: req.by.clone(),
        corrected_at: kjp_store::timestamp(),
        amendment: None,
    };
    let seq = store.add_correction(stage, &c).await.map_err(|e| match e {
        StoreError::NotDecreed(s) => AmendError::NotDecreed(s),
        other => other.into(),
    })?;
    Ok(Correction { seq, ..c })
}

/// Records the next numbered amendment from every pending correction.
pub async fn amend(
    store: &Store,
    stage: Stage,
    req: &DecreeRequest,
) -> Result<(DecreeRecord, Vec<DecreeEntry>), AmendError> {
    if req.number.trim().is_empty() {
        return Err(DecreeError::NoNumber.into());
    }
    let (first, _) = decreed(store, stage).await?;
    let pending = store.corrections(stage, true).await?;
    if pending.is_empty() {
        return Err(AmendError::NothingPending(stage));
    }
    let records = store.decrees(stage).await?;
    let last = records.last().expect("a decreed stage has its decree");
    let current: BTreeMap<String, DecreeEntry> =
        store.recipients(stage).await?.into_iter().map(|e| (e.nik.clone(), e)).collect();
    // The last pending correction of each child decides.
    let mut latest: BTreeMap<&str, &Correction> = BTreeMap::new();
    for c in &pending {
        latest.insert(c.nik.as_str(), c);
    }
    let why = |c: &Correction| {
        if c.evidence.is_empty() {
            c.reason.clone()
        } else {
            format!("{} (evidence: {})", c.reason, c.evidence)
        }
    };
    let mut entries = Vec::new();
    for (nik, c) in latest {
        let now = current.get(nik);
        let eligible = c.status_after == "eligible";
        let change = match (eligible, now) {
            (true, None) => "added",
            (true, Some(e)) if e.monthly_total != c.monthly_total => "changed",
            (false, Some(_)) => "removed",
            _ => continue,
        };
        let e = if eligible {
            DecreeEntry {
                nik: nik.into(),
                status: "recipient".into(),
                level: c.level.clone(),
                school: c.school.clone(),
                npsn: c.npsn.clone(),
                kelurahan: c.kelurahan.clone(),
                routine: c.routine,
                periodic: c.periodic,
                school_fee: c.school_fee,
                monthly_total: c.monthly_total,
                change: change.into(),
                reason: why(c),
            }
        } else {
            let before = now.expect("removed from the recipients");
            DecreeEntry {
                status: "not_recipient".into(),
                routine: 0,
                periodic: 0,
                school_fee: 0,
                monthly_total: 0,
                change: change.into(),
                reason: format!("{} [{}]", why(c), c.reasons),
                ..before.clone()
            }
        };
        entries.push(e);
    }
    if entries.is_empty() {
        return Err(AmendError::CancelOut(stage, pending.len()));
    }
    let mut after = current.clone();
    for e in &entries {
        match e.change.as_str() {
            "removed" => {
                after.remove(&e.nik);
            }
            _ => {
                after.insert(e.nik.clone(), e.clone());
            }
        }
    }
    let mut record = DecreeRecord {
        stage,
        amendment: last.amendment + 1,
        number: req.number.trim().into(),
        decree_date: req.date.to_string(),
        recorded_at: kjp_store::timestamp(),
        policy_sha256: first.policy_sha256.clone(),
        snapshots: first.snapshots.clone(),
        recipients: after.len() as i64,
        unfunded: 0,
        monthly_total: after.values().map(|e| e.monthly_total).sum(),
        budget: None,
        note: req.note.clone(),
        sha256: String::new(),
        previous_sha256: last.sha256.clone(),
    };
    record.sha256 = kjp_store::sha256_hex(canonical(&record, &entries).as_bytes());
    let seqs: Vec<i64> = pending.iter().map(|c| c.seq).collect();
    store.record_decree(&record, &entries, &seqs).await?;
    Ok((record, entries))
}
