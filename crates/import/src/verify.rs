//! The stage run: join the snapshots by NIK and family card, build each candidate's
//! facts with the evidence for each one, call `assess`, and turn the decisions into rows.
//!
//! Who is a candidate: every NIK with an active enrolment (Dapodik or EMIS) and every
//! out-of-school child with a Lurah's letter. A source never imported leaves the facts it
//! feeds unknown (it is not evidence of absence); a source imported is a complete
//! registry, so absence from it is a "no". Two sources that disagree make the fact
//! unknown and record a conflict with both rows: the decision is then `review` if the
//! fact could change it, never a silent exclusion.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use kjp_domain::assess::Rules;
use kjp_domain::conflict::Conflict;
use kjp_domain::ids::SchoolType;
use kjp_domain::{BoolFact, Education, Facts, Nik, Policy, Status};
use kjp_store::{DecisionRow, Snapshot};
use rayon::prelude::*;

use crate::encode;
use crate::source::*;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("snapshot {path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("no snapshot of {0} has been imported: run `kjp import` first")]
    Missing(&'static str),
    #[error(transparent)]
    Assess(#[from] kjp_domain::AssessError),
}

/// Every source's good records, as read from the snapshots.
#[derive(Debug, Default)]
pub struct Sources {
    /// Sorted by NIK.
    pub persons: Vec<Person>,
    pub dtks: Vec<DtksEntry>,
    pub sktm: Vec<SktmEntry>,
    pub enrolments: Vec<(Source, Enrolment)>,
    pub schools: Vec<School>,
    pub drivers: Vec<Driver>,
    pub wages: Vec<Wage>,
    pub foster: Vec<FosterChild>,
    pub lurah: Vec<LurahLetter>,
    pub bapenda: Vec<TaxedVehicle>,
    pub samsat: Vec<RegisteredVehicle>,
    pub njop: Vec<PropertyValue>,
    pub occupations: Vec<Occupation>,
    pub sanctions: Vec<SanctionEntry>,
    /// Children under a sanction recorded with `kjp sanction add` and in force on the
    /// reference date (filled by the stage run from the store, not from a file).
    pub recorded_sanctions: HashSet<Nik>,
    /// Which sources were imported.
    pub present: HashSet<Source>,
}

impl Sources {
    fn has(&self, s: Source) -> bool {
        self.present.contains(&s)
    }
}

pub(crate) fn read(snap: &Snapshot) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(Path::new(&snap.path)).map_err(|error| VerifyError::Io { path: snap.path.clone(), error })
}

pub(crate) fn load_one<T: Record>(snaps: &[Snapshot]) -> Result<Vec<T>, VerifyError> {
    match snaps.iter().find(|s| s.source == T::SOURCE.name()) {
        None => Ok(Vec::new()),
        Some(snap) => Ok(parse::<T>(&snap.file_name, &read(snap)?)?.records),
    }
}

/// Reads and parses the snapshots, in parallel. This alone is the floor that the stage
/// run is measured against (`kjp bench parse`).
pub fn load(snapshots: &[Snapshot]) -> Result<Sources, VerifyError> {
    let mut s = Sources {
        present: snapshots.iter().filter_map(|s| Source::from_name(&s.source)).collect(),
        ..Sources::default()
    };
    for required in [Source::Dukcapil, Source::Schools] {
        if !s.has(required) {
            return Err(VerifyError::Missing(required.name()));
        }
    }
    if !s.has(Source::Dapodik) && !s.has(Source::Emis) {
        return Err(VerifyError::Missing("dapodik (or emis)"));
    }
    let mut r: [Result<(), VerifyError>; 15] = std::array::from_fn(|_| Ok(()));
    let [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14] = &mut r;
    let Sources {
        persons,
        dtks,
        sktm,
        enrolments,
        schools,
        drivers,
        wages,
        foster,
        lurah,
        bapenda,
        samsat,
        njop,
        occupations,
        sanctions,
        ..
    } = &mut s;
    let mut emis: Vec<Emis> = Vec::new();
    let mut dapodik: Vec<Dapodik> = Vec::new();
    fn into<T>(slot: &mut Vec<T>, res: &mut Result<(), VerifyError>, v: Result<Vec<T>, VerifyError>) {
        match v {
            Ok(v) => *slot = v,
            Err(e) => *res = Err(e),
        }
    }
    rayon::scope(|sc| {
        sc.spawn(|_| {
            into(persons, r0, load_one::<Person>(snapshots));
            persons.par_sort_unstable_by_key(|p| p.nik);
        });
        sc.spawn(|_| into(dtks, r1, load_one(snapshots)));
        sc.spawn(|_| into(sktm, r2, load_one(snapshots)));
        sc.spawn(|_| into(&mut dapodik, r3, load_one(snapshots)));
        sc.spawn(|_| into(&mut emis, r4, load_one(snapshots)));
        sc.spawn(|_| into(schools, r5, load_one(snapshots)));
        sc.spawn(|_| into(drivers, r6, load_one(snapshots)));
        sc.spawn(|_| into(wages, r7, load_one(snapshots)));
        sc.spawn(|_| into(foster, r8, load_one(snapshots)));
        sc.spawn(|_| into(lurah, r9, load_one(snapshots)));
        sc.spawn(|_| into(bapenda, r10, load_one(snapshots)));
        sc.spawn(|_| into(samsat, r11, load_one(snapshots)));
        sc.spawn(|_| into(njop, r12, load_one(snapshots)));
        sc.spawn(|_| into(occupations, r13, load_one(snapshots)));
        sc.spawn(|_| into(sanctions, r14, load_one(snapshots)));
    });
    for res in r {
        res?;
    }
    enrolments.extend(dapodik.into_iter().map(|d| (Source::Dapodik, d.0)));
    enrolments.extend(emis.into_iter().map(|e| (Source::Emis, e.0)));
    Ok(s)
}

#[derive(Debug, Default)]
struct Family {
    dtks: Option<u32>,
    /// The lowest decile any DTKS entry of the family records.
    dtks_decile: Option<u8>,
    dtks_outside: Option<u32>,
    sktm: Option<u32>,
    driver: Option<u32>,
    /// Lowest wage of a parent with a Jakarta KTP (else of any parent), its KTP, line.
    wage: Option<(i64, bool, u32)>,
    car: Option<u32>,
    car_conflicts: Vec<Conflict>,
    njop: Option<(i64, u32)>,
    occupation: Option<u32>,
}

struct Candidate<'a> {
    nik: Nik,
    enrolment: Option<&'a (Source, Enrolment)>,
    letter: Option<&'a LurahLetter>,
}

/// Decides every candidate. `continuing`: the recipients of the previous stage. The rows
/// come out in NIK order.
pub fn decide(
    src: &Sources,
    policy: &Policy,
    as_of: NaiveDate,
    continuing: &HashSet<Nik>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<DecisionRow>, VerifyError> {
    let rules = Rules::new(policy, as_of)?;
    let group = |id: &str| policy.group_index(id);

    // Candidates: active enrolments (Dapodik before EMIS), then Lurah letters.
    let mut by_nik: HashMap<Nik, Candidate> = HashMap::new();
    for e in src.enrolments.iter().filter(|(_, e)| e.active) {
        by_nik.entry(e.1.nik).or_insert(Candidate { nik: e.1.nik, enrolment: Some(e), letter: None });
    }
    for l in &src.lurah {
        by_nik.entry(l.nik).or_insert(Candidate { nik: l.nik, enrolment: None, letter: None }).letter =
            Some(l);
    }
    let mut candidates: Vec<Candidate> = by_nik.into_values().collect();
    candidates.sort_unstable_by_key(|c| c.nik);

    let person = |nik: Nik| src.persons.binary_search_by_key(&nik, |p| p.nik).ok().map(|i| &src.persons[i]);
    let kk_of = |nik: Nik| person(nik).map(|p| p.kk.as_u64());

    let mut families: HashMap<u64, Family> =
        candidates.iter().filter_map(|c| kk_of(c.nik)).map(|kk| (kk, Family::default())).collect();
    let candidate_niks: std::collections::HashSet<Nik> = candidates.iter().map(|c| c.nik).collect();
    let mut dtks_by_nik: HashMap<Nik, &DtksEntry> = HashMap::new();
    for d in &src.dtks {
        if candidate_niks.contains(&d.nik) {
            dtks_by_nik.insert(d.nik, d);
        }
        if let Some(f) = families.get_mut(&d.kk.as_u64()) {
            f.dtks_decile = Some(f.dtks_decile.map_or(d.decile, |x| x.min(d.decile)));
            if d.address_in_jakarta {
                f.dtks.get_or_insert(d.line);
            } else {
                f.dtks_outside.get_or_insert(d.line);
            }
        }
    }
    for s in src.sktm.iter().filter(|s| s.issued <= as_of && as_of <= s.valid_until) {
        if let Some(f) = kk_of(s.nik).and_then(|kk| families.get_mut(&kk)) {
            f.sktm.get_or_insert(s.line);
        }
    }
    // The driver and the worker must be a parent on the card: the head or the head's spouse.
    let parent_on = |nik: Nik, kk: kjp_domain::KkNumber| {
        person(nik).is_some_and(|p| p.kk == kk && p.relationship.is_parent())
    };
    for d in src.drivers.iter().filter(|d| d.active && d.small_bus && parent_on(d.nik, d.kk)) {
        if let Some(f) = families.get_mut(&d.kk.as_u64()) {
            f.driver.get_or_insert(d.line);
        }
    }
    for w in src.wages.iter().filter(|w| parent_on(w.nik, w.kk)) {
        if let Some(f) = families.get_mut(&w.kk.as_u64()) {
            let better = match f.wage {
                None => true,
                Some((wage, ktp, _)) => (w.ktp_dki && !ktp) || (w.ktp_dki == ktp && w.monthly_wage < wage),
            };
            if better {
                f.wage = Some((w.monthly_wage, w.ktp_dki, w.line));
            }
        }
    }
    // Only the cars of candidates' families matter: look those plates up in Samsat.
    let cars: Vec<(&TaxedVehicle, u64)> = src
        .bapenda
        .iter()
        .filter(|v| v.car)
        .filter_map(|v| kk_of(v.owner).filter(|kk| families.contains_key(kk)).map(|kk| (v, kk)))
        .collect();
    let plates: std::collections::HashSet<&str> = cars.iter().map(|(v, _)| v.plate.as_str()).collect();
    let samsat: HashMap<&str, &RegisteredVehicle> = src
        .samsat
        .iter()
        .filter(|r| plates.contains(r.plate.as_str()))
        .map(|r| (r.plate.as_str(), r))
        .collect();
    for (v, kk) in cars {
        let Some(f) = families.get_mut(&kk) else { continue };
        match samsat.get(v.plate.as_str()) {
            // Samsat shows the car blocked or transferred, or registered to someone outside
            // the family, before the stage: the sources disagree about who owns it.
            Some(r)
                if r.status_date < as_of
                    && (r.status != Registration::Active
                        || kk_of(r.owner).is_none_or(|owner| owner != kk)) =>
            {
                let status = if r.status == Registration::Active {
                    "registered to another owner"
                } else {
                    r.status.name()
                };
                f.car_conflicts.push(Conflict::Car {
                    plate: v.plate.clone(),
                    bapenda_line: v.line,
                    bapenda_as_of: v.as_of,
                    samsat_line: r.line,
                    samsat_status: status.into(),
                    samsat_date: r.status_date,
                });
            }
            _ => {
                f.car.get_or_insert(v.line);
            }
        }
    }
    for n in &src.njop {
        if let Some(f) = families.get_mut(&n.kk.as_u64()) {
            f.njop = Some((n.njop, n.line));
        }
    }
    for o in &src.occupations {
        if let Some(f) = families.get_mut(&o.kk.as_u64()) {
            f.occupation.get_or_insert(o.line);
        }
    }
    let schools: HashMap<u32, &School> = src.schools.iter().map(|s| (s.npsn.as_u32(), s)).collect();
    let foster: HashMap<Nik, u32> = src.foster.iter().map(|f| (f.nik, f.line)).collect();
    let mut sanctions: HashMap<Nik, u32> = HashMap::new();
    for s in src.sanctions.iter().filter(|s| s.in_force(as_of)) {
        sanctions.entry(s.nik).or_insert(s.line);
    }

    let poor = group("poor_family");
    let driver_group = group("transjakarta_driver");
    let worker_group = group("worker");
    let total = candidates.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);

    let rows = candidates
        .par_iter()
        .map(|c| {
            let p = person(c.nik);
            let family = p.and_then(|p| families.get(&p.kk.as_u64()));
            let mut f = Facts::default().with(BoolFact::Continuing, continuing.contains(&c.nik));
            let mut ev = Evidence::default();
            let mut conflicts: Vec<Conflict> = Vec::new();
            if let Some(g) = poor {
                f.claims.insert(g);
            }
            if let Some(p) = p {
                f.birth_date = Some(p.birth_date);
                f.set(BoolFact::DomiciledDki, Some(p.domiciled_dki));
                f.set(BoolFact::OnDkiKk, Some(p.kk.as_u64() / 100_000_000_000_000 == 31));
                ev.add(Source::Dukcapil, p.line);
            }
            match (c.enrolment, c.letter) {
                (Some((source, e)), letter) => {
                    f.education = Some(Education::Enrolled);
                    f.level = Some(e.level);
                    ev.add(*source, e.line);
                    if let Some(l) = letter {
                        ev.add(Source::Lurah, l.line);
                    }
                    if let Some(school) = schools.get(&e.npsn.as_u32()) {
                        f.school = Some(school.status);
                        ev.add(Source::Schools, school.line);
                    }
                }
                (None, Some(l)) => {
                    f.education = Some(Education::OutOfSchool);
                    ev.add(Source::Lurah, l.line);
                }
                (None, None) => unreachable!("a candidate has an enrolment or a letter"),
            }
            f.set(BoolFact::LurahRecommendation, Some(c.letter.is_some()));

            let own_dtks = dtks_by_nik.get(&c.nik);
            if src.has(Source::Dtks) && (family.is_some() || own_dtks.is_some()) {
                let in_jakarta =
                    own_dtks.filter(|d| d.address_in_jakarta).map(|d| d.line).or(family.and_then(|f| f.dtks));
                let outside = own_dtks
                    .filter(|d| !d.address_in_jakarta)
                    .map(|d| d.line)
                    .or(family.and_then(|f| f.dtks_outside));
                f.set(BoolFact::InDtks, Some(in_jakarta.is_some() || outside.is_some()));
                f.dtks_decile = own_dtks.map(|d| d.decile).or(family.and_then(|f| f.dtks_decile));
                if let Some(line) = in_jakarta.or(outside) {
                    ev.add(Source::Dtks, line);
                }
                if let (Some(line), Some(p)) = (outside, p) {
                    if p.domiciled_dki && in_jakarta.is_none() {
                        f.set(BoolFact::DomiciledDki, None);
                        conflicts.push(Conflict::DtksAddress { dtks_line: line, dukcapil_line: p.line });
                    }
                }
            }
            // Only a child on the card is in the family of its driver or worker parent.
            let own_child = p.is_some_and(|p| p.relationship == Relationship::Child);
            if let Some(fam) = family {
                if src.has(Source::Sktm) {
                    f.set(BoolFact::HasSktm, Some(fam.sktm.is_some()));
                    if let Some(line) = fam.sktm {
                        ev.add(Source::Sktm, line);
                    }
                }
                if let (Some(g), Some(line), true) = (driver_group, fam.driver, own_child) {
                    f.claims.insert(g);
                    ev.add(Source::Transjakarta, line);
                }
                if let (Some(g), Some((wage, ktp, line)), true) = (worker_group, fam.wage, own_child) {
                    f.claims.insert(g);
                    f.parent_wage = Some(kjp_domain::Rupiah::new(wage));
                    f.set(BoolFact::ParentKtpDki, Some(ktp));
                    ev.add(Source::Wages, line);
                }
                if src.has(Source::Bapenda) {
                    match (fam.car, fam.car_conflicts.is_empty()) {
                        (Some(line), _) => {
                            f.set(BoolFact::FamilyCar, Some(true));
                            ev.add(Source::Bapenda, line);
                        }
                        (None, true) => f.set(BoolFact::FamilyCar, Some(false)),
                        (None, false) => {
                            f.set(BoolFact::FamilyCar, None);
                            conflicts.extend(fam.car_conflicts.iter().cloned());
                        }
                    }
                }
                if src.has(Source::Njop) {
                    f.family_property_njop = Some(kjp_domain::Rupiah::new(fam.njop.map_or(0, |(v, _)| v)));
                    if let Some((_, line)) = fam.njop {
                        ev.add(Source::Njop, line);
                    }
                }
                if src.has(Source::Occupations) {
                    f.set(BoolFact::FamilyExcludedOccupation, Some(fam.occupation.is_some()));
                    if let Some(line) = fam.occupation {
                        ev.add(Source::Occupations, line);
                    }
                }
            }
            if src.has(Source::Foster) {
                f.set(BoolFact::FosterChild, Some(foster.contains_key(&c.nik)));
                if let Some(line) = foster.get(&c.nik) {
                    ev.add(Source::Foster, *line);
                }
            }
            let recorded = src.recorded_sanctions.contains(&c.nik);
            if src.has(Source::Sanctions) || recorded {
                f.set(BoolFact::Sanctioned, Some(sanctions.contains_key(&c.nik) || recorded));
                if let Some(line) = sanctions.get(&c.nik) {
                    ev.add(Source::Sanctions, *line);
                }
            }

            let d = rules.assess(&f);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(65_536) {
                progress(n, total);
            }
            let npsn = c.enrolment.map(|(_, e)| e.npsn.to_string()).unwrap_or_default();
            row(
                policy,
                Decided {
                    nik: c.nik,
                    person: p,
                    facts: &f,
                    decision: &d,
                    npsn,
                    evidence: ev,
                    conflicts: &conflicts,
                },
            )
        })
        .collect();
    progress(total, total);
    Ok(rows)
}

/// One candidate, decided, with everything its stored row needs.
pub(crate) struct Decided<'a> {
    pub(crate) nik: Nik,
    pub(crate) person: Option<&'a Person>,
    pub(crate) facts: &'a Facts,
    pub(crate) decision: &'a kjp_domain::Decision,
    pub(crate) npsn: String,
    pub(crate) evidence: Evidence,
    pub(crate) conflicts: &'a [Conflict],
}

pub(crate) fn row(policy: &Policy, c: Decided) -> DecisionRow {
    let Decided { nik, person: p, facts: f, decision: d, npsn, evidence: ev, conflicts } = c;
    let base = DecisionRow {
        nik: nik.to_string(),
        kk: p.map(|p| p.kk.to_string()).unwrap_or_default(),
        name: p.map(|p| p.name.clone()).unwrap_or_default(),
        birth_date: p.map(|p| p.birth_date.to_string()).unwrap_or_default(),
        level: f.level.map(|l| l.code().to_string()).unwrap_or_default(),
        school: f.school.map(SchoolType::code).unwrap_or_default().into(),
        npsn,
        kelurahan: p.and_then(|p| p.kelurahan).map(|k| k.code().to_string()).unwrap_or_default(),
        conflicts: if conflicts.is_empty() {
            String::new()
        } else {
            serde_json::to_string(conflicts).expect("conflicts serialize")
        },
        evidence: ev.0,
        ..DecisionRow::default()
    };
    with_decision(base, policy, f, d)
}

/// `row` with the columns a decision sets: status, group, amounts, reasons, unknown
/// facts and the encoded facts.
pub(crate) fn with_decision(
    row: DecisionRow,
    policy: &Policy,
    f: &Facts,
    d: &kjp_domain::Decision,
) -> DecisionRow {
    let m = d.monthly.unwrap_or_default();
    DecisionRow {
        status: d.status.as_str().into(),
        grp: d.group.map(|g| policy.group_ids[g as usize].clone()).unwrap_or_default(),
        routine: m.routine.get(),
        periodic: m.periodic.get(),
        school_fee: m.school_fee.get(),
        monthly_total: if d.status == Status::Eligible { m.total.get() } else { 0 },
        reasons: d.unmet.iter().map(|i| policy.reason(i).code.as_str()).collect::<Vec<_>>().join(";"),
        unknown: d.unknown.iter().map(|f| f.input_field()).collect::<Vec<_>>().join(";"),
        facts: encode::facts(f, policy),
        ..row
    }
}

/// The source rows a decision rests on: `source:line` joined by `;`. Each source feeds
/// fixed facts (docs/formats.md, "Evidence"), so the row alone says which fact it proves;
/// an absent source row is evidence of a "no" from a complete registry.
#[derive(Debug, Default)]
pub(crate) struct Evidence(String);

impl Evidence {
    pub(crate) fn add(&mut self, source: Source, line: u32) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(';');
        }
        let _ = write!(self.0, "{}:{line}", source.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kjp_domain::ids::{parse_date, Level};
    use kjp_domain::{KkNumber, Npsn, RegionCode};

    fn person(nik: &str, kk: &str, birth: &str, relationship: Relationship) -> Person {
        Person {
            nik: Nik::parse(nik).unwrap(),
            kk: KkNumber::parse(kk).unwrap(),
            name: "X".into(),
            birth_date: parse_date(birth).unwrap(),
            kelurahan: RegionCode::parse("31.71.01.1001").ok(),
            ktp_dki: true,
            domiciled_dki: true,
            relationship,
            line: 2,
        }
    }

    /// A family's car that Samsat shows registered to someone outside the family since
    /// before the stage: the sources disagree, so the child is review, not excluded.
    #[test]
    fn a_car_registered_to_another_owner_is_a_conflict() {
        let child = "3171010403120001";
        let mut persons = vec![
            person(child, "3171010101100001", "2012-03-04", Relationship::Child),
            person("3171014101800001", "3171010101100001", "1980-01-01", Relationship::Head),
            person("3171010202700001", "3171010101100003", "1970-02-02", Relationship::Head),
        ];
        persons.sort_by_key(|p| p.nik);
        let npsn = Npsn::parse("20100001").unwrap();
        let src = Sources {
            persons,
            enrolments: vec![(
                Source::Dapodik,
                Enrolment {
                    nik: Nik::parse(child).unwrap(),
                    npsn,
                    level: Level::Smp,
                    grade: 7,
                    active: true,
                    line: 2,
                },
            )],
            schools: vec![School {
                npsn,
                name: "S".into(),
                level: Level::Smp,
                status: kjp_domain::SchoolType::Negeri,
                kelurahan: RegionCode::parse("31.71.01.1001").unwrap(),
                line: 2,
            }],
            bapenda: vec![TaxedVehicle {
                owner: Nik::parse("3171014101800001").unwrap(),
                plate: plate_key("B 9 ZZ"),
                car: true,
                as_of: parse_date("2023-01-01").unwrap(),
                line: 2,
            }],
            samsat: vec![RegisteredVehicle {
                plate: plate_key("B 9 ZZ"),
                owner: Nik::parse("3171010202700001").unwrap(),
                status: Registration::Active,
                status_date: parse_date("2024-02-01").unwrap(),
                line: 3,
            }],
            present: [Source::Dukcapil, Source::Dapodik, Source::Schools, Source::Bapenda, Source::Samsat]
                .into(),
            ..Sources::default()
        };
        let rows =
            decide(&src, &Policy::kjp_plus(), parse_date("2025-01-01").unwrap(), &HashSet::new(), &|_, _| {})
                .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].unknown.contains("family_car"), "{:?}", rows[0]);
        assert!(rows[0].conflicts.contains("registered to another owner"), "{}", rows[0].conflicts);
    }
}
