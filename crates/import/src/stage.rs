//! The stage commands: open, verify (the run), summary, export and the what-if.

use std::collections::BTreeMap;
use std::path::Path;

use kjp_domain::assess::Rules;
use kjp_domain::ids::{Level, REPORT_LEVELS};
use kjp_domain::regions::{self, RegionLevel};
use kjp_domain::{Policy, Programme, Stage, Status};
use kjp_store::{RunRecord, StageRow, StageState, Store, StoreError};
use serde::Serialize;

use crate::verify::{self, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error("stage {0} does not exist: open it with `kjp stage open {1} {2}`")]
    NotOpen(Stage, i32, u8),
    #[error("the policy {0} has no [funding] order: a stage decided under it cannot have a budget ceiling")]
    NoFundingOrder(String),
    #[error("stage {stage} is a {} stage but the policy is {policy:?}: give the programme's policy file (policy/{}.toml)", stage.programme().name(), stage.programme().id())]
    WrongPolicy { stage: Stage, policy: String },
    #[error("stage {0} has not been verified yet: run `kjp stage verify {0}`")]
    NotVerified(Stage),
    #[error("stage {0} is decreed: its decisions cannot change")]
    Decreed(Stage),
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("stored decision for NIK {nik}: {reason}")]
    Corrupt { nik: String, reason: String },
    #[error(transparent)]
    Assess(#[from] kjp_domain::AssessError),
    #[error("re-applying earlier resolutions: {0}")]
    Reapply(String),
    #[error("the policy this stage was decided under (sha256 {0}) is not recorded: verify the stage again")]
    PolicyNotRecorded(String),
    #[error("the recorded policy {sha256} no longer loads: {error}")]
    RecordedPolicy { sha256: String, error: kjp_domain::PolicyError },
}

/// The policy a stage's last run was decided under, as recorded.
pub async fn recorded_policy(store: &Store, stage: Stage) -> Result<Policy, StageError> {
    let run = store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    policy_by_sha(store, &run.policy_sha256).await
}

/// A recorded policy, by its sha256.
pub async fn policy_by_sha(store: &Store, sha256: &str) -> Result<Policy, StageError> {
    let (source, text) =
        store.policy_text(sha256).await?.ok_or_else(|| StageError::PolicyNotRecorded(sha256.to_string()))?;
    Policy::parse(&source, &text)
        .map_err(|error| StageError::RecordedPolicy { sha256: sha256.to_string(), error })
}

/// Progress reports: `(step, done, total)`.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// Opens a stage: its reference date is the first benefit month.
pub async fn open(store: &Store, stage: Stage) -> Result<(StageRow, bool), StageError> {
    Ok(store.open_stage(stage, stage.start()).await?)
}

async fn existing(store: &Store, stage: Stage) -> Result<StageRow, StageError> {
    store.stage(stage).await?.ok_or(StageError::NotOpen(stage, stage.year(), stage.half()))
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Verified {
    pub run: i64,
    pub candidates: u64,
    /// Earlier resolutions applied again to this run's decisions.
    pub reapplied: usize,
    pub snapshots: Vec<(String, String)>,
}

/// Runs the stage: every candidate decided and stored, replacing the previous run.
pub async fn verify(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    progress: Progress<'_>,
) -> Result<Verified, StageError> {
    let row = existing(store, stage).await?;
    if row.state == StageState::Decreed {
        return Err(StageError::Decreed(stage));
    }
    // The policy must be the stage's programme's, in force on the reference date, before
    // any file is read.
    if policy.id != stage.programme().id() {
        return Err(StageError::WrongPolicy { stage, policy: policy.id.clone() });
    }
    kjp_domain::assess::Rules::new(policy, row.as_of)?;
    let started_at = kjp_store::timestamp();
    let snapshots = store.latest_snapshots().await?;
    let mut rows = decide_latest(store, stage, policy, row.as_of, &snapshots, progress).await?;
    let candidates = rows.len() as u64;
    // Conflicts settled before this run stay settled; then the budget ceiling, over the
    // children eligible after the settlements. Both in memory, so that the run's decisions
    // are written with them in one transaction or not at all. Both are read now, after
    // deciding, and the write checks under its lock that they are still the ones applied.
    let budget = existing(store, stage).await?.budget;
    let resolutions = store.resolutions(stage).await?;
    let basis = kjp_store::RunBasis::new(budget, &resolutions);
    let again = crate::decree::reapplied(&rows, resolutions, policy, row.as_of).map_err(|e| match e {
        crate::decree::DecreeError::Store(e) => StageError::Store(e),
        other => StageError::Reapply(other.to_string()),
    })?;
    let reapplied = again.len();
    let mut resolutions_again = Vec::with_capacity(reapplied);
    for (i, after, resolution) in again {
        rows[i] = after;
        resolutions_again.push(resolution);
    }
    crate::funding::apply_to(&mut rows, stage, policy, budget)?;
    progress("write decisions", 0, candidates);
    let used: Vec<(String, String)> =
        snapshots.iter().map(|s| (s.source.clone(), s.sha256.clone())).collect();
    let run = RunRecord {
        stage,
        run: 0,
        started_at,
        finished_at: String::new(),
        policy_id: policy.id.clone(),
        policy_version: policy.version.clone(),
        policy_sha256: policy.sha256.clone(),
        snapshots: used.iter().map(|(s, h)| format!("{s}={h}")).collect::<Vec<_>>().join(";"),
        candidates: candidates as i64,
    };
    store.record_policy(&policy.sha256, &policy.source, &policy.text).await?;
    let number =
        store.replace_decisions(&run, &rows, &resolutions_again, &basis).await.map_err(|e| match e {
            StoreError::Decreed(s) => StageError::Decreed(s),
            other => other.into(),
        })?;
    progress("write decisions", candidates, candidates);
    std::thread::spawn(move || drop(rows));
    Ok(Verified { run: number, candidates, snapshots: used, reapplied })
}

/// Decides every candidate of `stage` from `snapshots`, with the programme's module: the
/// run's work, without storing anything.
async fn decide_latest(
    store: &Store,
    stage: Stage,
    policy: &Policy,
    as_of: chrono::NaiveDate,
    snapshots: &[kjp_store::Snapshot],
    progress: Progress<'_>,
) -> Result<Vec<kjp_store::DecisionRow>, StageError> {
    let continuing: std::collections::HashSet<kjp_domain::Nik> = store
        .recipients(stage.previous())
        .await?
        .iter()
        .filter_map(|e| kjp_domain::Nik::parse(&e.nik).ok())
        .collect();
    progress("read and parse snapshots", 0, snapshots.len() as u64);
    let decide = |done, total| progress("decide", done, total);
    // The programme module joins the programme's sources into facts; the rest is shared.
    let rows = match stage.programme() {
        Programme::KjpPlus => {
            let mut sources = verify::load(snapshots)?;
            // Sanctions recorded on a school's recommendation count like those of the
            // sanctions file: in force on the reference date (lifting one makes the child
            // proposable in a later stage).
            for s in store.sanctions(None).await? {
                let day = |t: &str| t.get(..10).and_then(kjp_domain::ids::parse_date);
                let in_force = day(&s.act_date).is_some_and(|a| a <= as_of)
                    && day(&s.lifted_at).is_none_or(|l| l > as_of);
                if let (true, Ok(nik)) = (in_force, kjp_domain::Nik::parse(&format!("{:016}", s.nik))) {
                    sources.recorded_sanctions.insert(nik);
                }
            }
            progress("read and parse snapshots", snapshots.len() as u64, snapshots.len() as u64);
            let rows = verify::decide(&sources, policy, as_of, &continuing, &decide)?;
            // Freeing millions of small allocations takes seconds: let another thread do
            // it while the decisions are written.
            std::thread::spawn(move || drop(sources));
            rows
        }
        Programme::Kjmu => {
            let sources = crate::kjmu::load(snapshots)?;
            progress("read and parse snapshots", snapshots.len() as u64, snapshots.len() as u64);
            let rows = crate::kjmu::decide(&sources, policy, as_of, &continuing, &decide)?;
            std::thread::spawn(move || drop(sources));
            rows
        }
    };
    Ok(rows)
}

/// What the agency files imported since the stage's last run would change, before the
/// stage is run on them: the stage run on the latest snapshots, compared child by child
/// with the stored decisions, under the policy of the last run. Nothing is stored. This
/// is the check a data synchronisation needs before it stops anyone (KJMU, 2024).
pub async fn data_impact(store: &Store, stage: Stage, progress: Progress<'_>) -> Result<Impact, StageError> {
    let row = existing(store, stage).await?;
    let run = store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    let policy = policy_by_sha(store, &run.policy_sha256).await?;
    let snapshots = store.latest_snapshots().await?;
    let used: std::collections::HashMap<&str, &str> =
        run.snapshots.split(';').filter_map(|p| p.split_once('=')).collect();
    let changed: Vec<String> = snapshots
        .iter()
        .filter(|s| used.get(s.source.as_str()) != Some(&s.sha256.as_str()))
        .map(|s| format!("{} {}", s.source, &s.sha256[..12]))
        .collect();
    let rows = decide_latest(store, stage, &policy, row.as_of, &snapshots, progress).await?;
    let mut then: std::collections::HashMap<String, kjp_store::DecisionRow> =
        rows.into_iter().map(|r| (r.nik.clone(), r)).collect();
    let mut out = Impact {
        stage: stage.to_string(),
        current: format!("the decisions of run {} ({})", run.run, run.finished_at),
        proposed: if changed.is_empty() {
            "the same snapshots (nothing imported since the run)".into()
        } else {
            format!("the latest snapshots: {}", changed.join(", "))
        },
        ..Impact::default()
    };
    let codes = |d: &kjp_store::DecisionRow| -> Vec<String> {
        let unknown = d.unknown.split(';').filter(|f| !f.is_empty()).map(|f| format!("UNKNOWN_FACT:{f}"));
        d.reasons.split(';').filter(|c| !c.is_empty()).map(str::to_string).chain(unknown).collect()
    };
    let eligible = |status: &str| status == "eligible" || status == "unfunded";
    let tally = |out: &mut Impact,
                 before: Option<&kjp_store::DecisionRow>,
                 after: Option<&kjp_store::DecisionRow>| {
        let (now, later) =
            (before.is_some_and(|d| eligible(&d.status)), after.is_some_and(|d| eligible(&d.status)));
        out.candidates += 1;
        out.eligible_now += i64::from(now);
        out.eligible_then += i64::from(later);
        let review = |d: Option<&kjp_store::DecisionRow>| d.is_some_and(|d| d.status == "review");
        out.into_review += i64::from(!review(before) && review(after));
        out.out_of_review += i64::from(review(before) && !review(after));
        out.monthly_cost_change += after.filter(|d| eligible(&d.status)).map_or(0, |d| d.monthly_total)
            - before.filter(|d| eligible(&d.status)).map_or(0, |d| d.monthly_total);
        let (b, a) = (before.map(codes).unwrap_or_default(), after.map(codes).unwrap_or_default());
        let (change, why): (&mut Change, Vec<String>) = match (now, later) {
            (false, true) => {
                let why = if before.is_none() {
                    vec!["NEW_CANDIDATE".to_string()]
                } else {
                    b.iter().filter(|c| !a.contains(c)).cloned().collect()
                };
                (&mut out.added, why)
            }
            (true, false) => {
                let why = if after.is_none() {
                    vec!["NO_LONGER_CANDIDATE".to_string()]
                } else {
                    a.iter().filter(|c| !b.contains(c)).cloned().collect()
                };
                (&mut out.removed, why)
            }
            _ => return,
        };
        let d = after.or(before).expect("one side exists");
        change.total += 1;
        change.by_level.add(&d.level, 1);
        *change.by_city.entry(city_of(&d.kelurahan)).or_default() += 1;
        for code in why {
            *change.by_reason.entry(code).or_default() += 1;
        }
    };
    store
        .each_decision(stage, |d| {
            let after = then.remove(&d.nik);
            tally(&mut out, Some(&d), after.as_ref());
        })
        .await?;
    for d in then.values() {
        tally(&mut out, None, Some(d));
    }
    Ok(out)
}

/// Counts per reporting level, in the programme's order.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LevelCounts {
    #[serde(rename = "SD")]
    pub sd: i64,
    #[serde(rename = "SMP")]
    pub smp: i64,
    #[serde(rename = "SMA")]
    pub sma: i64,
    #[serde(rename = "SMK")]
    pub smk: i64,
    #[serde(rename = "SLB")]
    pub slb: i64,
    #[serde(rename = "PKBM")]
    pub pkbm: i64,
    #[serde(rename = "LKP")]
    pub lkp: i64,
    #[serde(rename = "D3")]
    pub d3: i64,
    #[serde(rename = "D4")]
    pub d4: i64,
    #[serde(rename = "S1")]
    pub s1: i64,
}

impl LevelCounts {
    fn slot(&mut self, level_code: &str) -> Option<&mut i64> {
        let report = Level::parse(level_code).ok()?.report();
        Some(match report {
            "SD" => &mut self.sd,
            "SMP" => &mut self.smp,
            "SMA" => &mut self.sma,
            "SMK" => &mut self.smk,
            "SLB" => &mut self.slb,
            "PKBM" => &mut self.pkbm,
            "LKP" => &mut self.lkp,
            "D3" => &mut self.d3,
            "D4" => &mut self.d4,
            _ => &mut self.s1,
        })
    }
    pub fn add(&mut self, level_code: &str, n: i64) {
        if let Some(slot) = self.slot(level_code) {
            *slot += n;
        }
    }
    pub fn get(&self, report: &str) -> i64 {
        match report {
            "SD" => self.sd,
            "SMP" => self.smp,
            "SMA" => self.sma,
            "SMK" => self.smk,
            "SLB" => self.slb,
            "PKBM" => self.pkbm,
            "LKP" => self.lkp,
            "D3" => self.d3,
            "D4" => self.d4,
            "S1" => self.s1,
            _ => 0,
        }
    }
    pub fn total(&self) -> i64 {
        REPORT_LEVELS.iter().map(|l| self.get(l)).sum()
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CityRow {
    pub code: String,
    pub name: String,
    pub eligible: i64,
    pub ineligible: i64,
    pub review: i64,
    pub unfunded: i64,
    pub monthly_cost: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CodeCount {
    pub code: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Comparison {
    pub previous: String,
    pub continuing: i64,
    pub new: i64,
    pub dropped: i64,
    /// Why the dropped children are no longer eligible (a child counts once per reason).
    pub dropped_by_reason: Vec<CodeCount>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunInfo {
    pub run: i64,
    pub finished_at: String,
    pub policy: String,
    pub policy_sha256: String,
    pub snapshots: Vec<String>,
}

/// A stage's outcome: the `summary --format json` contract.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub stage: String,
    pub state: String,
    pub as_of: String,
    pub candidates: i64,
    pub eligible: LevelCounts,
    pub eligible_total: i64,
    pub ineligible: i64,
    pub review: i64,
    /// Eligible but beyond the stage's budget ceiling (not in `eligible`).
    pub unfunded: i64,
    /// The stage's budget ceiling, in rupiah, if it has one.
    pub budget: Option<i64>,
    pub monthly_cost: i64,
    pub six_month_cost: i64,
    pub by_city: Vec<CityRow>,
    pub ineligible_by_reason: Vec<CodeCount>,
    pub review_by_fact: Vec<CodeCount>,
    pub comparison: Option<Comparison>,
    pub run: Option<RunInfo>,
}

fn count_codes(tallies: &[kjp_store::Tally], status: &str, column: usize) -> Vec<CodeCount> {
    let mut by: BTreeMap<String, i64> = BTreeMap::new();
    for t in tallies.iter().filter(|t| t.key[0] == status) {
        for code in t.key[column].split(';').filter(|c| !c.is_empty()) {
            *by.entry(code.to_string()).or_default() += t.count;
        }
    }
    let mut out: Vec<CodeCount> = by.into_iter().map(|(code, count)| CodeCount { code, count }).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    out
}

pub async fn summary(store: &Store, stage: Stage) -> Result<Summary, StageError> {
    let row = existing(store, stage).await?;
    let run = store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    let by_level = store.tally(stage, &["status", "level"]).await?;
    let mut eligible = LevelCounts::default();
    let (mut ineligible, mut review, mut unfunded, mut monthly) = (0, 0, 0, 0);
    for t in &by_level {
        match t.key[0].as_str() {
            "eligible" => {
                eligible.add(&t.key[1], t.count);
                monthly += t.monthly;
            }
            "ineligible" => ineligible += t.count,
            "unfunded" => unfunded += t.count,
            _ => review += t.count,
        }
    }
    let mut cities: BTreeMap<String, CityRow> = regions::at_level(RegionLevel::Kota)
        .map(|r| {
            let row = CityRow {
                code: r.code.into(),
                name: r.name.into(),
                eligible: 0,
                ineligible: 0,
                review: 0,
                unfunded: 0,
                monthly_cost: 0,
            };
            (r.code.to_string(), row)
        })
        .collect();
    for t in store.tally(stage, &["status", "city"]).await? {
        let city = cities.entry(t.key[1].clone()).or_insert_with(|| CityRow {
            code: t.key[1].clone(),
            name: if t.key[1].is_empty() { "(outside Jakarta or unknown)".into() } else { t.key[1].clone() },
            eligible: 0,
            ineligible: 0,
            review: 0,
            unfunded: 0,
            monthly_cost: 0,
        });
        match t.key[0].as_str() {
            "eligible" => {
                city.eligible += t.count;
                city.monthly_cost += t.monthly;
            }
            "ineligible" => city.ineligible += t.count,
            "unfunded" => city.unfunded += t.count,
            _ => city.review += t.count,
        }
    }
    let reasons = store.tally(stage, &["status", "reasons", "unknown"]).await?;
    let previous = stage.previous();
    let comparison = if store.last_run(previous).await?.is_some() {
        let rows = store.compare(stage, previous).await?;
        let (mut continuing, mut new, mut dropped) = (0, 0, 0);
        let mut why: BTreeMap<String, i64> = BTreeMap::new();
        for t in &rows {
            let (now, then) = (t.key[0].as_str(), t.key[1].as_str());
            match (now == "eligible", then == "eligible") {
                (true, true) => continuing += t.count,
                (true, false) => new += t.count,
                (false, true) => {
                    dropped += t.count;
                    let codes: Vec<&str> = t.key[2].split(';').filter(|c| !c.is_empty()).collect();
                    let codes = if now == "absent" {
                        vec!["NO_LONGER_CANDIDATE"]
                    } else if codes.is_empty() {
                        vec!["REVIEW"]
                    } else {
                        codes
                    };
                    for c in codes {
                        *why.entry(c.to_string()).or_default() += t.count;
                    }
                }
                (false, false) => {}
            }
        }
        let mut dropped_by_reason: Vec<CodeCount> =
            why.into_iter().map(|(code, count)| CodeCount { code, count }).collect();
        dropped_by_reason.sort_by_key(|c| std::cmp::Reverse(c.count));
        Some(Comparison { previous: previous.to_string(), continuing, new, dropped, dropped_by_reason })
    } else {
        None
    };
    Ok(Summary {
        stage: stage.to_string(),
        state: row.state.as_str().into(),
        as_of: row.as_of.to_string(),
        candidates: run.candidates,
        eligible_total: eligible.total(),
        eligible,
        ineligible,
        review,
        unfunded,
        budget: row.budget,
        monthly_cost: monthly,
        six_month_cost: monthly * 6,
        by_city: cities.into_values().collect(),
        ineligible_by_reason: count_codes(&reasons, "ineligible", 1),
        review_by_fact: count_codes(&reasons, "review", 2),
        comparison,
        run: Some(RunInfo {
            run: run.run,
            finished_at: run.finished_at,
            policy: format!("{} {}", run.policy_id, run.policy_version),
            policy_sha256: run.policy_sha256,
            snapshots: run.snapshots.split(';').map(str::to_string).collect(),
        }),
    })
}

/// Writes one row per candidate: `nik,birth_date,status,level,monthly_total,reason_codes,...`.
pub async fn export(store: &Store, stage: Stage, out: &Path) -> Result<u64, StageError> {
    existing(store, stage).await?;
    store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    let io = |error| StageError::Io { path: out.display().to_string(), error };
    let tmp = out.with_extension("csv.tmp");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let header = [
        "nik",
        "birth_date",
        "status",
        "level",
        "monthly_total",
        "reason_codes",
        "group",
        "school",
        "npsn",
        "kelurahan",
        "unknown_facts",
        "conflicts",
        "evidence",
    ];
    w.write_record(header).map_err(|e| io(e.into()))?;
    let mut failed = None;
    let n = store
        .each_decision(stage, |d| {
            if failed.is_some() {
                return;
            }
            let codes = if d.status == "review" {
                d.unknown
                    .split(';')
                    .filter(|f| !f.is_empty())
                    .map(|f| format!("UNKNOWN_FACT:{f}"))
                    .collect::<Vec<_>>()
                    .join(";")
            } else {
                d.reasons.clone()
            };
            let total = d.monthly_total.to_string();
            let record = [
                d.nik.as_str(),
                &d.birth_date,
                &d.status,
                &d.level,
                &total,
                &codes,
                &d.grp,
                &d.school,
                &d.npsn,
                &d.kelurahan,
                &d.unknown,
                &d.conflicts,
                &d.evidence,
            ];
            if let Err(e) = w.write_record(record) {
                failed = Some(e);
            }
        })
        .await?;
    let finished = match failed {
        Some(e) => Err(io(e.into())),
        None => w.flush().map_err(io),
    };
    drop(w);
    if let Err(e) = finished.and_then(|()| std::fs::rename(&tmp, out).map_err(io)) {
        // The temporary file holds every NIK: never leave it behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(n)
}

/// One change the what-if found, counted.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Change {
    pub total: i64,
    pub by_level: LevelCounts,
    pub by_city: BTreeMap<String, i64>,
    /// For removals: the reasons under the new policy; for additions: the reasons under
    /// the current one that no longer apply.
    pub by_reason: BTreeMap<String, i64>,
}

/// What another policy would do to a verified stage, changing nothing.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Impact {
    pub stage: String,
    pub current: String,
    pub proposed: String,
    pub candidates: i64,
    pub eligible_now: i64,
    pub eligible_then: i64,
    pub added: Change,
    pub removed: Change,
    /// Decisions that would move into or out of review.
    pub into_review: i64,
    pub out_of_review: i64,
    pub monthly_cost_change: i64,
}

fn city_of(kelurahan: &str) -> String {
    kelurahan.get(..5).map(str::to_string).unwrap_or_else(|| "(unknown)".into())
}

/// Re-assesses every stored candidate under `current` and `proposed` and reports the
/// difference by level, city and reason.
pub async fn impact(
    store: &Store,
    stage: Stage,
    current: &Policy,
    proposed: &Policy,
) -> Result<Impact, StageError> {
    let row = existing(store, stage).await?;
    store.last_run(stage).await?.ok_or(StageError::NotVerified(stage))?;
    let a = Rules::new(current, row.as_of)?;
    let b = Rules::new(proposed, row.as_of)?;
    // Screens switched in the proposal do not change the file's hash: say so.
    let switched: Vec<String> = proposed
        .rules
        .iter()
        .filter(|p| {
            current.rules.iter().any(|c| c.id == p.id && c.scope == p.scope && c.enabled != p.enabled)
        })
        .map(|p| format!("screen {} {}", p.id, if p.enabled { "on" } else { "off" }))
        .collect();
    let label = |p: &Policy| format!("{} {} ({})", p.id, p.version, &p.sha256[..12]);
    let mut proposed_label = label(proposed);
    if !switched.is_empty() {
        proposed_label = format!("{proposed_label} with {}", switched.join(", "));
    }
    let mut out = Impact {
        stage: stage.to_string(),
        current: label(current),
        proposed: proposed_label,
        ..Impact::default()
    };
    let mut corrupt = None;
    store
        .each_decision(stage, |d| {
            let facts = match crate::encode::decode(&d.facts, current) {
                Ok(f) => f,
                Err(reason) => {
                    corrupt.get_or_insert(StageError::Corrupt { nik: d.nik.clone(), reason });
                    return;
                }
            };
            let (x, y) = (a.assess(&facts), b.assess(&facts));
            out.candidates += 1;
            let money = |d: &kjp_domain::Decision| d.monthly.map_or(0, |m| m.total.get());
            out.eligible_now += i64::from(x.status == Status::Eligible);
            out.eligible_then += i64::from(y.status == Status::Eligible);
            out.monthly_cost_change += money(&y) - money(&x);
            out.into_review += i64::from(x.status != Status::Review && y.status == Status::Review);
            out.out_of_review += i64::from(x.status == Status::Review && y.status != Status::Review);
            // Added: the reasons (and unknowns) that no longer apply. Removed: the new ones.
            let codes = |p: &Policy, d: &kjp_domain::Decision| -> Vec<String> {
                d.unmet
                    .iter()
                    .map(|i| p.reason(i).code.clone())
                    .chain(d.unknown.iter().map(|f| format!("UNKNOWN_FACT:{}", f.input_field())))
                    .collect()
            };
            let (before, after) = (codes(current, &x), codes(proposed, &y));
            let (change, why): (&mut Change, Vec<String>) =
                match (x.status == Status::Eligible, y.status == Status::Eligible) {
                    (false, true) => {
                        (&mut out.added, before.iter().filter(|c| !after.contains(c)).cloned().collect())
                    }
                    (true, false) => {
                        (&mut out.removed, after.iter().filter(|c| !before.contains(c)).cloned().collect())
                    }
                    _ => return,
                };
            change.total += 1;
            change.by_level.add(&d.level, 1);
            *change.by_city.entry(city_of(&d.kelurahan)).or_default() += 1;
            for code in why {
                *change.by_reason.entry(code).or_default() += 1;
            }
        })
        .await?;
    if let Some(e) = corrupt {
        return Err(e);
    }
    Ok(out)
}
