//! KJMU's stage run: the programme module that turns its sources into facts. Everything
//! else (the rules, the stored decisions, the decree, the status check, payments) is the
//! same code as KJP Plus under another policy file (`policy/kjmu.toml`).
//!
//! Candidates are the students of `pddikti.csv` (KJMU applicants and recipients matched
//! in the national higher-education database). Their facts come from the civil registry
//! (KTP, family card, domicile), DTKS (the family, by KK), the social office's care homes
//! (`foster.csv`, shared with KJP Plus), Jakarta secondary-school graduates
//! (`graduates.csv` against `schools.csv`) and scholarships (`scholarships.csv`).

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use kjp_domain::assess::Rules;
use kjp_domain::{BoolFact, Education, Facts, Nik, Policy, SchoolType};
use kjp_store::{DecisionRow, Snapshot};
use rayon::prelude::*;

use crate::source::*;
use crate::verify::{load_one, row, Decided, Evidence, VerifyError};

/// KJMU's sources as read from the snapshots.
#[derive(Debug, Default)]
pub struct KjmuSources {
    /// Sorted by NIK.
    pub persons: Vec<Person>,
    pub dtks: Vec<DtksEntry>,
    pub care_homes: Vec<FosterChild>,
    pub schools: Vec<School>,
    pub students: Vec<Student>,
    pub graduates: Vec<Graduate>,
    pub scholarships: Vec<Scholarship>,
    pub present: HashSet<Source>,
}

/// Reads and parses KJMU's snapshots, in parallel.
pub fn load(snapshots: &[Snapshot]) -> Result<KjmuSources, VerifyError> {
    let present: HashSet<Source> = snapshots.iter().filter_map(|s| Source::from_name(&s.source)).collect();
    for required in [Source::Dukcapil, Source::Pddikti] {
        if !present.contains(&required) {
            return Err(VerifyError::Missing(required.name()));
        }
    }
    let (persons, (dtks, (care_homes, (schools, (students, (graduates, scholarships)))))) = rayon::join(
        || {
            load_one::<Person>(snapshots).map(|mut p| {
                p.par_sort_unstable_by_key(|p| p.nik);
                p
            })
        },
        || {
            rayon::join(
                || load_one::<DtksEntry>(snapshots),
                || {
                    rayon::join(
                        || load_one::<FosterChild>(snapshots),
                        || {
                            rayon::join(
                                || load_one::<School>(snapshots),
                                || {
                                    rayon::join(
                                        || load_one::<Student>(snapshots),
                                        || {
                                            rayon::join(
                                                || load_one::<Graduate>(snapshots),
                                                || load_one::<Scholarship>(snapshots),
                                            )
                                        },
                                    )
                                },
                            )
                        },
                    )
                },
            )
        },
    );
    Ok(KjmuSources {
        persons: persons?,
        dtks: dtks?,
        care_homes: care_homes?,
        schools: schools?,
        students: students?,
        graduates: graduates?,
        scholarships: scholarships?,
        present,
    })
}

/// Decides every student. `continuing`: the recipients of the previous KJMU stage. The
/// rows come out in NIK order.
pub fn decide(
    src: &KjmuSources,
    policy: &Policy,
    as_of: NaiveDate,
    continuing: &HashSet<Nik>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<DecisionRow>, VerifyError> {
    let rules = Rules::new(policy, as_of)?;
    let has = |s: Source| src.present.contains(&s);
    let person = |nik: Nik| src.persons.binary_search_by_key(&nik, |p| p.nik).ok().map(|i| &src.persons[i]);
    let mut dtks_by_kk: HashMap<u64, &DtksEntry> = HashMap::new();
    let mut dtks_by_nik: HashMap<Nik, &DtksEntry> = HashMap::new();
    for d in &src.dtks {
        dtks_by_nik.insert(d.nik, d);
        dtks_by_kk
            .entry(d.kk.as_u64())
            .and_modify(|e| {
                if d.decile < e.decile {
                    *e = d
                }
            })
            .or_insert(d);
    }
    let care: HashMap<Nik, u32> = src.care_homes.iter().map(|c| (c.nik, c.line)).collect();
    let schools: HashSet<u32> = src.schools.iter().map(|s| s.npsn.as_u32()).collect();
    let graduates: HashMap<Nik, &Graduate> = src.graduates.iter().map(|g| (g.nik, g)).collect();
    let mut scholarships: HashMap<Nik, u32> = HashMap::new();
    for s in src.scholarships.iter().filter(|s| s.public_budget && s.in_force(as_of)) {
        scholarships.entry(s.nik).or_insert(s.line);
    }
    let dtks_group = policy.group_index("dtks");
    let panti_group = policy.group_index("panti");
    let mut students: Vec<&Student> = src.students.iter().collect();
    students.sort_unstable_by_key(|s| s.nik);
    let total = students.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);

    let rows = students
        .par_iter()
        .map(|s| {
            let p = person(s.nik);
            let mut ev = Evidence::default();
            let mut f = Facts {
                education: Some(if s.status == StudentStatus::Active {
                    Education::Enrolled
                } else {
                    Education::None
                }),
                level: Some(s.level),
                school: Some(if s.state_university { SchoolType::Negeri } else { SchoolType::Swasta }),
                semester: Some(s.semester),
                gpa: s.gpa,
                ..Facts::default()
            };
            ev.add(Source::Pddikti, s.line);
            f.set(BoolFact::Continuing, Some(continuing.contains(&s.nik)));
            f.set(BoolFact::Graduated, Some(s.status == StudentStatus::Graduated));
            f.set(BoolFact::StateRegularAdmission, Some(s.state_university && s.regular_admission));
            f.set(BoolFact::PrivateUnggulPriority, Some(!s.state_university && s.unggul_priority));
            if let Some(p) = p {
                f.birth_date = Some(p.birth_date);
                f.set(BoolFact::KtpDki, Some(p.ktp_dki));
                f.set(BoolFact::DomiciledDki, Some(p.domiciled_dki));
                f.set(BoolFact::OnDkiKk, Some(p.kk.as_u64() / 100_000_000_000_000 == 31));
                ev.add(Source::Dukcapil, p.line);
            }
            // DTKS lists the family: the student's own entry, or any on the family card.
            if let Some(g) = dtks_group {
                f.claims.insert(g);
            }
            if has(Source::Dtks) {
                let entry =
                    dtks_by_nik.get(&s.nik).or_else(|| p.and_then(|p| dtks_by_kk.get(&p.kk.as_u64())));
                f.set(BoolFact::InDtks, Some(entry.is_some()));
                if let Some(d) = entry {
                    f.dtks_decile = Some(d.decile);
                    ev.add(Source::Dtks, d.line);
                }
            }
            if has(Source::Foster) {
                let line = care.get(&s.nik);
                f.set(BoolFact::InPanti, Some(line.is_some()));
                if let (Some(line), Some(g)) = (line, panti_group) {
                    f.claims.insert(g);
                    ev.add(Source::Foster, *line);
                }
            }
            if has(Source::Graduates) {
                let g = graduates.get(&s.nik).filter(|g| schools.contains(&g.npsn.as_u32()));
                f.set(BoolFact::JakartaGraduate, Some(g.is_some()));
                if let Some(g) = g {
                    f.years_since_graduation = u8::try_from((as_of.year() - i32::from(g.year)).max(0)).ok();
                    ev.add(Source::Graduates, g.line);
                }
            }
            if has(Source::Scholarships) {
                let line = scholarships.get(&s.nik);
                f.set(BoolFact::OtherScholarship, Some(line.is_some()));
                if let Some(line) = line {
                    ev.add(Source::Scholarships, *line);
                }
            }
            let decision = rules.assess(&f);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(10_000) || n == total {
                progress(n, total);
            }
            row(
                policy,
                Decided {
                    nik: s.nik,
                    person: p,
                    facts: &f,
                    decision: &decision,
                    npsn: String::new(),
                    evidence: ev,
                    conflicts: &[],
                },
            )
        })
        .collect();
    Ok(rows)
}
