//! The status index: what the public check answers, built whole from the store at startup
//! (and again on reload) and then never changed. Lookups read only this, never the database,
//! so staff work and stage runs cannot slow the public page down.

use std::collections::HashMap;

use chrono::NaiveDate;
use kjp_domain::Stage;
use kjp_store::{StageState, Store};

/// Everything the public check knows, per stage.
#[derive(Debug, Default)]
pub struct Index {
    stages: HashMap<Stage, StageIndex>,
    /// What the index was built from: every stage's state and decree hashes.
    fingerprint: String,
}

#[derive(Debug)]
enum StageIndex {
    /// Verified or still open: every NIK is "in process".
    InProcess,
    /// Decreed: one entry per decided child, and the reason texts of the policy the
    /// stage was decided under (code -> Indonesian, English).
    Decreed(HashMap<u64, Entry>, HashMap<String, (String, String)>),
}

/// One child of a decreed stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub birth_date: NaiveDate,
    /// e.g. "S*** R***": enough for a parent to recognise, not to identify.
    pub masked_name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recipient {
        level: String,
        routine: i64,
        periodic: i64,
        school_fee: i64,
        total: i64,
    },
    /// Reason codes of the policy, in the decision's order.
    NotRecipient {
        reasons: Vec<String>,
    },
    /// Eligible, but beyond the stage's budget ceiling: not funded this stage.
    Unfunded {
        level: String,
        /// What the child would have received a month.
        total: i64,
        reasons: Vec<String>,
    },
    /// A recipient whose support a sanction (Pergub 110/2021 Pasal 23-24) withdrew during
    /// the stage: the sanction's category (a code of the policy's catalogue) and since when.
    Revoked {
        level: String,
        category: String,
        since: NaiveDate,
    },
}

/// The answer to one lookup. An unknown NIK and a wrong date of birth are both `NotFound`:
/// the check must not tell who is in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    InProcess,
    Found(&'a Entry),
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] kjp_store::StoreError),
    #[error("stage {stage}: {problem}")]
    Corrupt { stage: Stage, problem: String },
}

impl Index {
    /// A cheap summary of what the index depends on: each stage's state and the hashes of
    /// its decree records. Reloading rebuilds only when it changed.
    pub async fn fingerprint(store: &Store) -> Result<String, IndexError> {
        let mut out = String::new();
        // A sanction recorded or lifted changes what the check answers.
        for s in store.sanctions(None).await? {
            out.push_str(&format!("s{}:{}:{};", s.nik, s.seq, s.lifted_at));
        }
        for row in store.stages().await? {
            out.push_str(&format!("{}={};", row.stage, row.state.as_str()));
            for d in store.decrees(row.stage).await? {
                out.push_str(&d.sha256);
                out.push(';');
            }
        }
        Ok(out)
    }

    /// Whether the index was built from what `fingerprint` describes.
    pub fn is_current(&self, fingerprint: &str) -> bool {
        self.fingerprint == fingerprint
    }

    /// Reads every stage of the store. Decisions stay in the store; only what the page
    /// shows is kept.
    pub async fn build(store: &Store) -> Result<Index, IndexError> {
        let fingerprint = Index::fingerprint(store).await?;
        let mut stages = HashMap::new();
        for row in store.stages().await? {
            if row.state != StageState::Decreed {
                stages.insert(row.stage, StageIndex::InProcess);
                continue;
            }
            let stage = row.stage;
            let corrupt = |problem: String| IndexError::Corrupt { stage, problem };
            // The recipients as amended; the unfunded of the decree; and for a child an
            // amendment changed, the reasons of that correction.
            let parse =
                |nik: &str| nik.parse::<u64>().map_err(|_| corrupt("a malformed NIK in the decree".into()));
            let mut recipients = HashMap::new();
            for e in store.recipients(stage).await? {
                recipients.insert(parse(&e.nik)?, e);
            }
            let mut unfunded = HashMap::new();
            for e in store.decree_entries(stage, 0).await?.into_iter().filter(|e| e.status == "unfunded") {
                unfunded.insert(parse(&e.nik)?, e);
            }
            let mut corrected = HashMap::new();
            for c in store.corrections(stage, false).await?.into_iter().filter(|c| c.amendment.is_some()) {
                corrected.insert(parse(&c.nik)?, c.reasons);
            }
            // The reasons, and the sanction categories, in the words of the policy the stage
            // was decided under.
            let mut texts = HashMap::new();
            if let Some(d) = store.decrees(stage).await?.first() {
                if let Some((source, text)) = store.policy_text(&d.policy_sha256).await? {
                    let policy = kjp_domain::Policy::parse(&source, &text)
                        .map_err(|e| corrupt(format!("the recorded policy no longer loads: {e}")))?;
                    for r in &policy.reasons {
                        texts.insert(r.code.clone(), (r.texts.id.clone(), r.texts.en.clone()));
                    }
                    for c in &policy.money.sanctions {
                        texts.insert(format!("sanction:{}", c.code), (c.id.clone(), c.en.clone()));
                    }
                }
            }
            // Recipients under a sanction in force at some time during the stage: recorded
            // on or before its last day, and not lifted before its first.
            let months = stage.benefit_months();
            let (first, last) = (months[0], months[5] + chrono::Months::new(1) - chrono::Days::new(1));
            let mut revoked: HashMap<u64, (String, NaiveDate)> = HashMap::new();
            for s in store.sanctions(None).await? {
                let nik = s.nik as u64;
                let Ok(act) = NaiveDate::parse_from_str(&s.act_date, "%Y-%m-%d") else { continue };
                let lifted =
                    s.lifted_at.get(..10).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                if recipients.contains_key(&nik) && act <= last && lifted.is_none_or(|l| l >= first) {
                    revoked.insert(nik, (s.category.clone(), act.max(first)));
                }
            }
            let codes = |text: &str| -> Vec<String> {
                text.split(';').filter(|r| !r.is_empty()).map(str::to_owned).collect()
            };
            let mut entries = HashMap::with_capacity(recipients.len() * 2);
            let mut bad = 0u64;
            store
                .each_status_row(stage, |d| {
                    let (Ok(nik), Ok(birth_date)) =
                        (d.nik.parse::<u64>(), NaiveDate::parse_from_str(&d.birth_date, "%Y-%m-%d"))
                    else {
                        // A child without a known birth date cannot be checked publicly.
                        bad += 1;
                        return;
                    };
                    let outcome = match recipients.get(&nik) {
                        Some(e) if revoked.contains_key(&nik) => {
                            let (category, since) = revoked[&nik].clone();
                            Outcome::Revoked { level: e.level.clone(), category, since }
                        }
                        Some(e) => Outcome::Recipient {
                            level: e.level.clone(),
                            routine: e.routine,
                            periodic: e.periodic,
                            school_fee: e.school_fee,
                            total: e.monthly_total,
                        },
                        None => match (corrected.get(&nik), unfunded.get(&nik)) {
                            (Some(reasons), _) => Outcome::NotRecipient { reasons: codes(reasons) },
                            (None, Some(e)) => Outcome::Unfunded {
                                level: e.level.clone(),
                                total: e.monthly_total,
                                reasons: codes(&e.reason),
                            },
                            (None, None) => Outcome::NotRecipient { reasons: codes(&d.reasons) },
                        },
                    };
                    entries.insert(nik, Entry { birth_date, masked_name: mask_name(&d.name), outcome });
                })
                .await?;
            if recipients.keys().any(|n| !entries.contains_key(n)) {
                return Err(corrupt("a recipient of the decree has no decision with a birth date".into()));
            }
            if bad > 0 {
                tracing::warn!(
                    "status index: stage {stage}: {bad} decision(s) without a usable birth date left out"
                );
            }
            stages.insert(stage, StageIndex::Decreed(entries, texts));
        }
        Ok(Index { stages, fingerprint })
    }

    /// The answer for a child. A stage the store does not know yet is still in process.
    pub fn lookup(&self, stage: Stage, nik: u64, birth_date: NaiveDate) -> Answer<'_> {
        match self.stages.get(&stage) {
            None | Some(StageIndex::InProcess) => Answer::InProcess,
            Some(StageIndex::Decreed(entries, _)) => match entries.get(&nik) {
                Some(e) if e.birth_date == birth_date => Answer::Found(e),
                _ => Answer::NotFound,
            },
        }
    }

    /// A NIK's standing in a stage without its date of birth, for authenticated agencies
    /// (the registry API); `None` for a stage the index does not hold.
    pub fn standing(&self, stage: Stage, nik: u64) -> Option<Answer<'_>> {
        Some(match self.stages.get(&stage)? {
            StageIndex::InProcess => Answer::InProcess,
            StageIndex::Decreed(entries, _) => entries.get(&nik).map_or(Answer::NotFound, Answer::Found),
        })
    }

    /// Whether the index holds a stage (opened, verified or decreed).
    pub fn holds(&self, stage: Stage) -> bool {
        self.stages.contains_key(&stage)
    }

    /// Every stage the index holds, in order.
    pub fn stages(&self) -> Vec<Stage> {
        let mut v: Vec<Stage> = self.stages.keys().copied().collect();
        v.sort();
        v
    }

    /// A reason's texts (Indonesian, English) in the policy a decreed stage was decided under.
    pub fn reason_text(&self, stage: Stage, code: &str) -> Option<&(String, String)> {
        match self.stages.get(&stage) {
            Some(StageIndex::Decreed(_, texts)) => texts.get(code),
            _ => None,
        }
    }

    /// How many children each decreed stage holds (for `/healthz` and the startup line).
    pub fn sizes(&self) -> Vec<(Stage, Option<usize>)> {
        let mut v: Vec<_> = self
            .stages
            .iter()
            .map(|(s, i)| {
                (
                    *s,
                    match i {
                        StageIndex::InProcess => None,
                        StageIndex::Decreed(e, _) => Some(e.len()),
                    },
                )
            })
            .collect();
        v.sort_by_key(|(s, _)| *s);
        v
    }
}

/// "Siti Rahayu" -> "S*** R***": the first letter of each word.
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}***"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_word_by_word() {
        assert_eq!(mask_name("Siti  Rahayu"), "S*** R***");
        assert_eq!(mask_name("Candra"), "C***");
        assert_eq!(mask_name(""), "");
    }
}
