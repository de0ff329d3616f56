//! An independent reader of the generated files, strict per `docs/formats.md` (with
//! `kjp_domain`'s parsers), and a minimal stage run of tahap I 2025 over them: the facts
//! are derived as the stage run derives them and decided by `kjp_domain`'s rules engine.
//! Shared by the tests and by `examples/verify.rs` (which runs it at scale 1).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use kjp_domain::ids::{parse_date, REPORT_LEVELS};
use kjp_domain::regions::RegionLevel;
use kjp_domain::{
    BoolFact, Education, Facts, KkNumber, Level, Nik, Npsn, Policy, RegionCode, Rules, Rupiah, SchoolType,
    Status,
};

pub const FILES: [&str; 15] = [
    "dukcapil",
    "dtks",
    "sktm",
    "dapodik",
    "emis",
    "schools",
    "transjakarta",
    "wages",
    "foster",
    "lurah",
    "bapenda",
    "samsat",
    "njop",
    "occupations",
    "sanctions",
];

/// The documented headers.
pub fn header(file: &str) -> &'static str {
    match file {
        "dukcapil" => "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship",
        "dtks" => "nik,kk,decile,listed_since,region",
        "sktm" => "nik,number,issued,valid_until",
        "dapodik" | "emis" => "nik,nisn,npsn,level,grade,active",
        "schools" => "npsn,name,level,status,kelurahan",
        "transjakarta" => "nik,kk,vehicle_class,active",
        "wages" => "nik,kk,ktp_dki,monthly_wage,period",
        "foster" => "nik,care_home,since",
        "lurah" => "nik,kelurahan,letter_number,issued",
        "bapenda" => "owner_nik,plate,vehicle_kind,as_of",
        "samsat" => "plate,owner_nik,status,status_date",
        "njop" => "kk,njop,as_of",
        "occupations" => "nik,kk,occupation,as_of",
        "sanctions" => "nik,npsn,category,since,lifted",
        _ => panic!("unknown file {file}"),
    }
}

/// The good rows of a file (first occurrence of each key), and what was left out.
#[derive(Debug, Default)]
pub struct Table {
    pub rows: Vec<Vec<String>>,
    pub total: u64,
    pub bad: u64,
    pub duplicates: u64,
    /// A few bad rows with their reasons, for messages.
    pub examples: Vec<String>,
}

fn nik(v: &str) -> Result<u64, String> {
    Nik::parse(v).map(Nik::as_u64).map_err(|e| e.to_string())
}
fn kk(v: &str) -> Result<u64, String> {
    KkNumber::parse(v).map(KkNumber::as_u64).map_err(|e| e.to_string())
}
fn date(v: &str) -> Result<NaiveDate, String> {
    parse_date(v).ok_or_else(|| format!("{v:?} is not a date"))
}
fn yes_no(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "y" => Ok(true),
        "false" | "0" | "n" => Ok(false),
        _ => Err(format!("{v:?} is not yes/no")),
    }
}
fn kelurahan(v: &str) -> Result<RegionCode, String> {
    let r = RegionCode::parse(v).map_err(|e| e.to_string())?;
    if r.level() != RegionLevel::Kelurahan {
        return Err(format!("{v} is not a kelurahan"));
    }
    Ok(r)
}
fn money(v: &str) -> Result<i64, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{v:?} is not whole rupiah"));
    }
    v.parse().map_err(|_| format!("{v:?} too large"))
}
fn number(v: &str, lo: u32, hi: u32) -> Result<u32, String> {
    v.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n)).ok_or_else(|| format!("{v:?} not in {lo}..={hi}"))
}
fn one_of(v: &str, options: &[&str]) -> Result<(), String> {
    options.contains(&v).then_some(()).ok_or_else(|| format!("{v:?} not one of {options:?}"))
}
fn text(v: &str) -> Result<(), String> {
    (!v.trim().is_empty()).then_some(()).ok_or_else(|| "empty".to_string())
}

/// Checks one row of `file`; returns its key.
pub fn check_row(file: &str, f: &[String]) -> Result<String, String> {
    let n = header(file).split(',').count();
    if f.len() != n {
        return Err(format!("{} fields, expected {n}", f.len()));
    }
    let s = |i: usize| f[i].as_str();
    match file {
        "dukcapil" => {
            nik(s(0))?;
            kk(s(1))?;
            text(s(2))?;
            one_of(s(3), &["L", "P"])?;
            date(s(4))?;
            if !s(5).is_empty() {
                kelurahan(s(5))?;
            }
            yes_no(s(6))?;
            let domiciled = yes_no(s(7))?;
            if domiciled == s(5).is_empty() {
                return Err("kelurahan is empty exactly when not domiciled".into());
            }
            Ok(s(0).into())
        }
        "dtks" => {
            nik(s(0))?;
            kk(s(1))?;
            number(s(2), 1, 10)?;
            date(s(3))?;
            let digits: String = s(4).chars().filter(|c| *c != '.').collect();
            if !matches!(digits.len(), 2 | 4 | 6 | 10) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("region {:?}", s(4)));
            }
            if digits.starts_with("31") {
                RegionCode::parse(s(4)).map_err(|e| e.to_string())?;
            }
            Ok(s(0).into())
        }
        "sktm" => {
            nik(s(0))?;
            text(s(1))?;
            if date(s(3))? < date(s(2))? {
                return Err("valid_until before issued".into());
            }
            Ok(s(1).into())
        }
        "dapodik" | "emis" => {
            nik(s(0))?;
            if s(1).len() != 10 || !s(1).bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("nisn {:?}", s(1)));
            }
            Npsn::parse(s(2)).map_err(|e| e.to_string())?;
            Level::parse(s(3)).map_err(|e| e.to_string())?;
            let madrasah = ["MI", "MTs", "MA"].contains(&s(3));
            if madrasah != (file == "emis") {
                return Err(format!("{} in {file}", s(3)));
            }
            number(s(4), 1, 13)?;
            yes_no(s(5))?;
            Ok(s(0).into())
        }
        "schools" => {
            Npsn::parse(s(0)).map_err(|e| e.to_string())?;
            text(s(1))?;
            Level::parse(s(2)).map_err(|e| e.to_string())?;
            SchoolType::parse(s(3)).map_err(|e| e.to_string())?;
            one_of(s(3), &["negeri", "swasta"])?;
            kelurahan(s(4))?;
            Ok(s(0).into())
        }
        "transjakarta" => {
            nik(s(0))?;
            kk(s(1))?;
            one_of(s(2), &["bus_kecil", "bus_sedang", "bus_besar"])?;
            yes_no(s(3))?;
            Ok(s(0).into())
        }
        "wages" => {
            nik(s(0))?;
            kk(s(1))?;
            yes_no(s(2))?;
            money(s(3))?;
            date(&format!("{}-01", s(4)))?;
            Ok(s(0).into())
        }
        "foster" => {
            nik(s(0))?;
            text(s(1))?;
            date(s(2))?;
            Ok(s(0).into())
        }
        "lurah" => {
            nik(s(0))?;
            kelurahan(s(1))?;
            text(s(2))?;
            date(s(3))?;
            Ok(s(2).into())
        }
        "bapenda" => {
            nik(s(0))?;
            text(s(1))?;
            one_of(s(2), &["roda2", "roda4", "roda6"])?;
            date(s(3))?;
            Ok(plate_key(s(1)))
        }
        "samsat" => {
            text(s(0))?;
            nik(s(1))?;
            one_of(s(2), &["active", "blocked", "transferred"])?;
            date(s(3))?;
            Ok(plate_key(s(0)))
        }
        "njop" => {
            kk(s(0))?;
            money(s(1))?;
            date(s(2))?;
            Ok(s(0).into())
        }
        "occupations" => {
            nik(s(0))?;
            kk(s(1))?;
            one_of(s(2), &["pns", "tni", "polri", "legislator", "bumn", "bumd"])?;
            date(s(3))?;
            Ok(s(0).into())
        }
        "sanctions" => {
            nik(s(0))?;
            Npsn::parse(s(1)).map_err(|e| e.to_string())?;
            text(s(2))?;
            let since = date(s(3))?;
            if !s(4).is_empty() && date(s(4))? < since {
                return Err("lifted before since".into());
            }
            Ok(format!("{}/{}", s(0), s(3)))
        }
        _ => unreachable!(),
    }
}

pub fn plate_key(p: &str) -> String {
    p.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Reads and checks a whole file. Panics if the header is not exactly the documented one.
pub fn read(dir: &Path, file: &str) -> Table {
    let path = dir.join(format!("{file}.csv"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes.as_slice());
    let mut records = reader.records();
    let head = records.next().expect("a header").expect("a readable header");
    assert_eq!(head.iter().collect::<Vec<_>>().join(","), header(file), "{file}: header");
    let mut t = Table::default();
    let mut seen = HashSet::new();
    for r in records {
        t.total += 1;
        let r = r.expect("RFC 4180 rows");
        let fields: Vec<String> = r.iter().map(str::to_string).collect();
        match check_row(file, &fields) {
            Ok(key) => {
                if seen.insert(key) {
                    t.rows.push(fields);
                } else {
                    t.duplicates += 1;
                }
            }
            Err(e) => {
                t.bad += 1;
                if t.examples.len() < 5 {
                    t.examples.push(format!("{e}: {}", fields.join(",")));
                }
            }
        }
    }
    t
}

pub fn read_all(dir: &Path) -> HashMap<&'static str, Table> {
    FILES.iter().map(|f| (*f, read(dir, f))).collect()
}

/// What the stage run finds.
#[derive(Debug, Default)]
pub struct Outcome {
    pub candidates: u64,
    pub eligible: [u64; 7],
    pub six_month_cost: i64,
    pub review: u64,
    pub ineligible: u64,
    pub car_conflicts: u64,
    pub dtks_conflicts: u64,
    /// Ineligible decisions per reason code (a decision counts once per reason).
    pub reasons: HashMap<String, u64>,
    /// Eligible children per qualifying group.
    pub groups: HashMap<String, u64>,
    /// Eligible children at private schools, per reporting level.
    pub private: [u64; 7],
    /// Candidates not in the civil registry.
    pub unknown_person: u64,
}

struct Person {
    kk: u64,
    birth: NaiveDate,
    domiciled: bool,
}

/// The stage run of tahap I 2025, deriving facts as `docs/formats.md` and the issue say.
pub fn stage(t: &HashMap<&'static str, Table>) -> Outcome {
    let as_of = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let policy = Policy::kjp_plus();
    let rules = Rules::new(&policy, as_of).unwrap();
    let n = |s: &str| Nik::parse(s).unwrap().as_u64();
    let k = |s: &str| KkNumber::parse(s).unwrap().as_u64();
    let d = |s: &str| parse_date(s).unwrap();

    let mut people: HashMap<u64, Person> = HashMap::new();
    for r in &t["dukcapil"].rows {
        people.insert(n(&r[0]), Person { kk: k(&r[1]), birth: d(&r[4]), domiciled: yes_no(&r[7]).unwrap() });
    }
    let kk_of = |nik: u64| people.get(&nik).map(|p| p.kk);
    // DTKS: by NIK and by KK; whether any address is outside Jakarta.
    let mut dtks_nik: HashMap<u64, bool> = HashMap::new();
    let mut dtks_kk: HashMap<u64, bool> = HashMap::new();
    for r in &t["dtks"].rows {
        let inside = r[4].replace('.', "").starts_with("31");
        let e = dtks_nik.entry(n(&r[0])).or_insert(true);
        *e &= inside;
        let e = dtks_kk.entry(k(&r[1])).or_insert(true);
        *e &= inside;
    }
    let mut sktm: HashSet<u64> = HashSet::new();
    for r in &t["sktm"].rows {
        if d(&r[2]) <= as_of && as_of <= d(&r[3]) {
            sktm.insert(n(&r[0]));
        }
    }
    let sktm_kk: HashSet<u64> = sktm.iter().filter_map(|nik| kk_of(*nik)).collect();
    let schools: HashMap<String, SchoolType> =
        t["schools"].rows.iter().map(|r| (r[0].clone(), SchoolType::parse(&r[3]).unwrap())).collect();
    let mut enrolled: HashMap<u64, (Level, String)> = HashMap::new();
    for file in ["dapodik", "emis"] {
        for r in &t[file].rows {
            if yes_no(&r[5]).unwrap() {
                enrolled.entry(n(&r[0])).or_insert((Level::parse(&r[3]).unwrap(), r[2].clone()));
            }
        }
    }
    let lurah: HashSet<u64> = t["lurah"].rows.iter().map(|r| n(&r[0])).collect();
    let drivers: HashSet<u64> = t["transjakarta"]
        .rows
        .iter()
        .filter(|r| r[2] == "bus_kecil" && yes_no(&r[3]).unwrap())
        .map(|r| k(&r[1]))
        .collect();
    let mut wages: HashMap<u64, (bool, Option<i64>)> = HashMap::new();
    for r in &t["wages"].rows {
        let e = wages.entry(k(&r[1])).or_insert((false, None));
        if yes_no(&r[2]).unwrap() {
            e.0 = true;
            let w = money(&r[3]).unwrap();
            e.1 = Some(e.1.map_or(w, |x: i64| x.min(w)));
        }
    }
    let foster: HashSet<u64> = t["foster"].rows.iter().map(|r| n(&r[0])).collect();
    let mut sanctioned: HashSet<u64> = HashSet::new();
    for r in &t["sanctions"].rows {
        let since = d(&r[3]);
        let lifted = (!r[4].is_empty()).then(|| d(&r[4]));
        if since <= as_of && lifted.is_none_or(|l| l > as_of) {
            sanctioned.insert(n(&r[0]));
        }
    }
    let samsat: HashMap<String, (String, NaiveDate)> =
        t["samsat"].rows.iter().map(|r| (plate_key(&r[0]), (r[2].clone(), d(&r[3])))).collect();
    // Per KK: a car Samsat agrees with, and a car Samsat shows blocked/transferred.
    let mut car: HashMap<u64, (bool, bool)> = HashMap::new();
    for r in &t["bapenda"].rows {
        if r[2] == "roda2" {
            continue;
        }
        let Some(kk) = kk_of(n(&r[0])) else { continue };
        let e = car.entry(kk).or_insert((false, false));
        match samsat.get(&plate_key(&r[1])) {
            Some((status, date)) if status != "active" && *date < as_of => e.1 = true,
            _ => e.0 = true,
        }
    }
    let njop: HashMap<u64, i64> = t["njop"].rows.iter().map(|r| (k(&r[0]), money(&r[1]).unwrap())).collect();
    let occupation: HashSet<u64> = t["occupations"].rows.iter().map(|r| k(&r[1])).collect();

    let groups: Vec<usize> = ["poor_family", "transjakarta_driver", "worker"]
        .iter()
        .map(|g| policy.group_index(g).unwrap())
        .collect();
    let mut out = Outcome::default();
    let candidates: HashSet<u64> = enrolled.keys().copied().chain(lurah.iter().copied()).collect();
    for &c in &candidates {
        out.candidates += 1;
        let mut f = Facts::default();
        f.claims.insert(groups[0]);
        let enrol = enrolled.get(&c);
        f.education = Some(if enrol.is_some() { Education::Enrolled } else { Education::OutOfSchool });
        f.set(BoolFact::LurahRecommendation, Some(lurah.contains(&c)));
        if let Some((level, npsn)) = enrol {
            f.level = Some(*level);
            f.school = schools.get(npsn).copied();
        }
        f.set(BoolFact::FosterChild, Some(foster.contains(&c)));
        f.set(BoolFact::Sanctioned, Some(sanctioned.contains(&c)));
        let mut conflict = (false, false);
        if let Some(p) = people.get(&c) {
            f.birth_date = Some(p.birth);
            f.set(BoolFact::DomiciledDki, Some(p.domiciled));
            f.set(BoolFact::OnDkiKk, Some(p.kk / 100_000_000_000_000 == 31));
            if drivers.contains(&p.kk) {
                f.claims.insert(groups[1]);
            }
            if let Some((ktp, wage)) = wages.get(&p.kk) {
                f.claims.insert(groups[2]);
                f.set(BoolFact::ParentKtpDki, Some(*ktp));
                f.parent_wage = wage.map(Rupiah::new);
            }
            let dtks = [dtks_nik.get(&c), dtks_kk.get(&p.kk)];
            let in_dtks = dtks.iter().any(Option::is_some);
            let outside = dtks.iter().flatten().any(|inside| !**inside);
            if p.domiciled && outside {
                conflict.1 = true;
                f.set(BoolFact::InDtks, None);
            } else {
                f.set(BoolFact::InDtks, Some(in_dtks));
            }
            f.set(BoolFact::HasSktm, Some(sktm.contains(&c) || sktm_kk.contains(&p.kk)));
            let (car_agreed, car_disputed) = car.get(&p.kk).copied().unwrap_or_default();
            if car_disputed && !car_agreed {
                conflict.0 = true;
                f.set(BoolFact::FamilyCar, None);
            } else {
                f.set(BoolFact::FamilyCar, Some(car_agreed));
            }
            f.family_property_njop = Some(Rupiah::new(njop.get(&p.kk).copied().unwrap_or(0)));
            f.set(BoolFact::FamilyExcludedOccupation, Some(occupation.contains(&p.kk)));
        } else {
            out.unknown_person += 1;
            f.set(BoolFact::InDtks, dtks_nik.contains_key(&c).then_some(true));
            f.set(BoolFact::HasSktm, sktm.contains(&c).then_some(true));
        }
        let decision = rules.assess(&f);
        match decision.status {
            Status::Eligible => {
                let level = f.level.expect("an eligible child has a level");
                let i = REPORT_LEVELS.iter().position(|r| *r == level.report()).unwrap();
                out.eligible[i] += 1;
                if f.school == Some(SchoolType::Swasta) {
                    out.private[i] += 1;
                }
                out.six_month_cost += 6 * decision.monthly.expect("an amount").total.get();
                let g = decision.group.map_or("?".to_string(), |g| policy.group_ids[g as usize].clone());
                *out.groups.entry(g).or_default() += 1;
            }
            Status::Review => {
                out.review += 1;
                out.car_conflicts += u64::from(conflict.0);
                out.dtks_conflicts += u64::from(conflict.1);
            }
            Status::Ineligible => {
                out.ineligible += 1;
                for r in decision.unmet.iter() {
                    *out.reasons.entry(policy.reason(r).code.clone()).or_default() += 1;
                }
            }
        }
    }
    out
}
