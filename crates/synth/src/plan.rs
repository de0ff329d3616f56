//! The plan of the synthetic Jakarta, made once and in order before the kelurahan are
//! generated in parallel: how many people live in each kelurahan, the schools, and how
//! many eligible children of each level and school type each kelurahan must hold (the
//! calibration), plus the planted special cases.

use chrono::NaiveDate;
use kjp_domain::regions::{self, RegionLevel};
use kjp_domain::{Level, Policy, SchoolType};

use crate::names::{COURSES, COURSE_NAMES, FOUNDATIONS, MADRASAH};
use crate::out::{Chunk, F};
use crate::rng::{apportion, Rng};

/// The kind of education unit as the enrolment files name it (madrasahs apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Sd,
    Mi,
    Smp,
    Mts,
    Sma,
    Ma,
    Smk,
    Sdlb,
    Smplb,
    Smalb,
    Pkbm,
    Lkp,
}

pub(crate) const NKINDS: usize = 12;

impl Kind {
    pub(crate) const ALL: [Kind; NKINDS] = [
        Kind::Sd,
        Kind::Mi,
        Kind::Smp,
        Kind::Mts,
        Kind::Sma,
        Kind::Ma,
        Kind::Smk,
        Kind::Sdlb,
        Kind::Smplb,
        Kind::Smalb,
        Kind::Pkbm,
        Kind::Lkp,
    ];

    pub(crate) fn code(self) -> &'static str {
        match self {
            Kind::Sd => "SD",
            Kind::Mi => "MI",
            Kind::Smp => "SMP",
            Kind::Mts => "MTs",
            Kind::Sma => "SMA",
            Kind::Ma => "MA",
            Kind::Smk => "SMK",
            Kind::Sdlb => "SDLB",
            Kind::Smplb => "SMPLB",
            Kind::Smalb => "SMALB",
            Kind::Pkbm => "PKBM",
            Kind::Lkp => "LKP",
        }
    }

    pub(crate) fn level(self) -> Level {
        Level::parse(self.code()).expect("every kind is a level")
    }

    /// Index into [`kjp_domain::ids::REPORT_LEVELS`].
    pub(crate) fn report(self) -> usize {
        match self {
            Kind::Sd | Kind::Mi => 0,
            Kind::Smp | Kind::Mts => 1,
            Kind::Sma | Kind::Ma => 2,
            Kind::Smk => 3,
            Kind::Sdlb | Kind::Smplb | Kind::Smalb => 4,
            Kind::Pkbm => 5,
            Kind::Lkp => 6,
        }
    }

    /// Madrasahs are in EMIS (Kemenag), everything else in Dapodik.
    pub(crate) fn emis(self) -> bool {
        matches!(self, Kind::Mi | Kind::Mts | Kind::Ma)
    }

    /// The grades taught.
    pub(crate) fn grades(self) -> (u8, u8) {
        match self {
            Kind::Sd | Kind::Mi | Kind::Sdlb => (1, 6),
            Kind::Smp | Kind::Mts | Kind::Smplb => (7, 9),
            Kind::Sma | Kind::Ma | Kind::Smk | Kind::Smalb => (10, 12),
            Kind::Pkbm => (1, 12),
            Kind::Lkp => (1, 1),
        }
    }
}

/// Public (negeri) or private (swasta): index 0 or 1.
pub(crate) const NEGERI: usize = 0;
pub(crate) const SWASTA: usize = 1;
pub(crate) const NCELLS: usize = NKINDS * 2;

/// A calibration cell: a kind of school and its status.
pub(crate) fn cell(kind: Kind, status: usize) -> usize {
    kind as usize * 2 + status
}

pub(crate) fn cell_kind(c: usize) -> Kind {
    Kind::ALL[c / 2]
}

/// The real recipients of tahap I 2025 per reporting level (SD, SMP, SMA, SMK, SLB, PKBM),
/// and a few hundred LKP course students, which the real figure does not list.
pub(crate) const TARGETS: [u64; 7] = [338_971, 189_437, 62_295, 111_315, 2_908, 2_696, 250];

/// How each level's recipients split over school kinds and status, per mille. The private
/// shares (SD 14%, SMP 36%, SMA 57%, SMK 83%) are what make the six-month cost.
const SHARES: [(Kind, usize, u32); 23] = [
    (Kind::Sd, NEGERI, 850),
    (Kind::Sd, SWASTA, 70),
    (Kind::Mi, NEGERI, 10),
    (Kind::Mi, SWASTA, 70),
    (Kind::Smp, NEGERI, 620),
    (Kind::Smp, SWASTA, 280),
    (Kind::Mts, NEGERI, 20),
    (Kind::Mts, SWASTA, 80),
    (Kind::Sma, NEGERI, 400),
    (Kind::Sma, SWASTA, 480),
    (Kind::Ma, NEGERI, 30),
    (Kind::Ma, SWASTA, 90),
    (Kind::Smk, NEGERI, 170),
    (Kind::Smk, SWASTA, 830),
    (Kind::Sdlb, NEGERI, 140),
    (Kind::Sdlb, SWASTA, 340),
    (Kind::Smplb, NEGERI, 80),
    (Kind::Smplb, SWASTA, 200),
    (Kind::Smalb, NEGERI, 70),
    (Kind::Smalb, SWASTA, 170),
    (Kind::Pkbm, NEGERI, 150),
    (Kind::Pkbm, SWASTA, 850),
    (Kind::Lkp, SWASTA, 1000),
];

/// Schools and courses at scale 1: (kind, negeri, swasta).
const SCHOOLS: [(Kind, u32, u32); NKINDS] = [
    (Kind::Sd, 1450, 850),
    (Kind::Mi, 20, 430),
    (Kind::Smp, 300, 700),
    (Kind::Mts, 40, 230),
    (Kind::Sma, 117, 383),
    (Kind::Ma, 25, 85),
    (Kind::Smk, 73, 477),
    (Kind::Sdlb, 12, 68),
    (Kind::Smplb, 10, 50),
    (Kind::Smalb, 8, 42),
    (Kind::Pkbm, 10, 390),
    (Kind::Lkp, 0, 1200),
];

/// The real populations of Jakarta's regency and five cities.
pub(crate) const CITIES: [(&str, &str, u64); 6] = [
    ("31.01", "Kepulauan Seribu", 30_334),
    ("31.71", "Jakarta Pusat", 1_057_270),
    ("31.72", "Jakarta Utara", 1_832_032),
    ("31.73", "Jakarta Barat", 2_556_752),
    ("31.74", "Jakarta Selatan", 2_331_411),
    ("31.75", "Jakarta Timur", 3_230_417),
];

/// How much poorer than average (more eligible children per resident) a city is.
const CITY_POVERTY: [f64; 6] = [1.5, 1.0, 1.25, 1.05, 0.75, 1.0];

/// Kecamatan notably richer or poorer than their city.
const KECAMATAN_POVERTY: [(&str, f64); 22] = [
    ("Menteng", 0.5),
    ("Kebayoran Baru", 0.5),
    ("Setiabudi", 0.55),
    ("Kelapa Gading", 0.5),
    ("Cilandak", 0.7),
    ("Gambir", 0.8),
    ("Tebet", 0.85),
    ("Pesanggrahan", 0.9),
    ("Kembangan", 0.9),
    ("Cilincing", 1.4),
    ("Koja", 1.3),
    ("Tanjung Priok", 1.25),
    ("Penjaringan", 1.3),
    ("Tambora", 1.35),
    ("Kalideres", 1.2),
    ("Cengkareng", 1.15),
    ("Cakung", 1.2),
    ("Johar Baru", 1.3),
    ("Kemayoran", 1.1),
    ("Senen", 1.1),
    ("Pademangan", 1.2),
    ("Jatinegara", 1.1),
];

/// Region prefixes (province, regency, district) of people born outside Jakarta.
pub(crate) const ELSEWHERE: [u32; 30] = [
    320_101, 320_102, 327_501, 327_502, 327_601, 327_603, 367_101, 367_102, 360_301, 367_401, 321_501,
    327_301, 320_401, 330_101, 331_001, 337_401, 332_901, 332_801, 330_201, 350_101, 357_801, 340_101,
    127_101, 130_101, 180_101, 167_101, 737_101, 320_201, 321_201, 330_501,
];

/// Special cases planted at scale 1 (scaled and rounded like everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sp {
    /// Families Bapenda lists with a car that Samsat shows blocked or transferred.
    CarConflict,
    /// Families whose DTKS address is outside Jakarta while they live in Jakarta.
    DtksConflict,
    /// Otherwise eligible children under a sanction on the reference date.
    SanctionInForce,
    /// Eligible children whose sanction was lifted before the reference date.
    SanctionLifted,
    /// Eligible children sanctioned only after the reference date.
    SanctionLater,
    /// Otherwise eligible five-year-olds already in SD grade 1.
    Underage,
    /// Otherwise eligible students aged 22 or more (PKBM, SMK).
    Overage,
    /// Out-of-school children with a Lurah letter and no enrolment yet.
    LurahOnly,
    /// Enrolled children who are not in Jakarta's civil registry.
    NotInDukcapil,
    /// Families of an active small-bus Transjakarta driver with eligible children.
    DriverEligible,
    /// Small-bus driver families who own a car.
    DriverCar,
    /// Small-bus drivers without school children.
    DriverNoKids,
    /// Small-bus drivers no longer active.
    DriverInactive,
    BusSedang,
    BusBesar,
}

pub(crate) const NSPECIAL: usize = 15;

const SPECIALS: [(Sp, u64, bool); NSPECIAL] = [
    // (case, count at scale 1, weighted by poverty rather than by population)
    (Sp::CarConflict, 18_000, true),
    (Sp::DtksConflict, 1_800, true),
    (Sp::SanctionInForce, 2_000, true),
    (Sp::SanctionLifted, 1_200, true),
    (Sp::SanctionLater, 150, true),
    (Sp::Underage, 900, true),
    (Sp::Overage, 2_200, true),
    (Sp::LurahOnly, 150, true),
    (Sp::NotInDukcapil, 1_000, false),
    (Sp::DriverEligible, 420, false),
    (Sp::DriverCar, 60, false),
    (Sp::DriverNoKids, 150, false),
    (Sp::DriverInactive, 120, false),
    (Sp::BusSedang, 1_400, false),
    (Sp::BusBesar, 2_600, false),
];

/// A care home (panti asuhan / LKSA) and its number of children.
#[derive(Debug, Clone)]
pub(crate) struct CareHome {
    pub(crate) name: String,
    pub(crate) children: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Kel {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    /// The kecamatan as the 6-digit NIK prefix, e.g. 317101.
    pub(crate) kec: u32,
    pub(crate) city: usize,
    pub(crate) pop: u64,
    /// Eligible children to create here, per calibration cell.
    pub(crate) quota: [u32; NCELLS],
    pub(crate) special: [u32; NSPECIAL],
    pub(crate) homes: Vec<CareHome>,
}

#[derive(Debug, Clone)]
pub(crate) struct School {
    pub(crate) npsn: u32,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) status: usize,
    pub(crate) kel: usize,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) seed: u64,
    pub(crate) kels: Vec<Kel>,
    pub(crate) kecamatan: Vec<u32>,
    pub(crate) schools: Vec<School>,
    /// School indexes by kind, status and city; and by kind and status in all Jakarta.
    pools: Vec<Vec<u32>>,
    /// Monthly amount per cell in rupiah (from the policy), for the expected cost.
    pub(crate) monthly: [i64; NCELLS],
    /// The global share of each cell among eligible children (for children who look
    /// eligible but are not counted: conflicts, sanctions).
    pub(crate) cell_weights: [u32; NCELLS],
    /// The highest wage that still qualifies a worker (1.1 x UMP, rounded down).
    pub(crate) wage_limit: i64,
    /// The minimum wage (UMP) in force on the reference date: many workers earn exactly it.
    pub(crate) ump: i64,
    pub(crate) njop_limit: i64,
    pub(crate) targets: [u64; 7],
}

/// The reference date of the calibration.
pub(crate) fn reference_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date")
}

fn scaled(n: u64, scale: f64) -> u64 {
    (n as f64 * scale).round() as u64
}

fn param(policy: &Policy, name: &str) -> kjp_domain::policy::Ratio {
    let i = policy.param_index(name).unwrap_or_else(|| panic!("the policy defines {name}"));
    policy.param_at(i, reference_date()).unwrap_or_else(|| panic!("{name} in force on 2025-01-01")).value
}

impl Plan {
    pub(crate) fn new(scale: f64, seed: u64) -> Plan {
        let mut rng = Rng::new(seed, u64::MAX);
        let policy = Policy::kjp_plus();

        // Kelurahan and their populations.
        let mut kels: Vec<Kel> = regions::at_level(RegionLevel::Kelurahan)
            .map(|r| {
                let kec_code = r.parent.expect("a kelurahan has a kecamatan");
                let kec: u32 = kec_code.replace('.', "").parse().expect("numeric code");
                let city = CITIES.iter().position(|c| r.code.starts_with(c.0)).expect("a known city");
                Kel {
                    code: r.code,
                    name: r.name,
                    kec,
                    city,
                    pop: 0,
                    quota: [0; NCELLS],
                    special: [0; NSPECIAL],
                    homes: Vec::new(),
                }
            })
            .collect();
        let kec_names: std::collections::HashMap<u32, &str> = regions::at_level(RegionLevel::Kecamatan)
            .map(|r| (r.code.replace('.', "").parse().expect("numeric"), r.name))
            .collect();
        let size: Vec<f64> = kels.iter().map(|_| rng.lognormal(0.0, 0.45)).collect();
        for (city, (_, _, people)) in CITIES.iter().enumerate() {
            let members: Vec<usize> = (0..kels.len()).filter(|&i| kels[i].city == city).collect();
            let weights: Vec<f64> = members.iter().map(|&i| size[i]).collect();
            for (&i, n) in members.iter().zip(apportion(scaled(*people, scale), &weights)) {
                kels[i].pop = n;
            }
        }
        let poverty: Vec<f64> = kels
            .iter()
            .map(|k| {
                let name = kec_names[&k.kec];
                let kec = KECAMATAN_POVERTY.iter().find(|(n, _)| *n == name).map_or(1.0, |p| p.1);
                (CITY_POVERTY[k.city] * kec * rng.lognormal(0.0, 0.2)).clamp(0.35, 2.0)
            })
            .collect();
        let by_poverty: Vec<f64> = kels.iter().zip(&poverty).map(|(k, p)| k.pop as f64 * p).collect();
        let by_pop: Vec<f64> = kels.iter().map(|k| k.pop as f64).collect();

        // Calibration: eligible children per cell, exactly round(target x scale) per level.
        let targets: [u64; 7] = std::array::from_fn(|i| scaled(TARGETS[i], scale));
        let mut cell_totals = [0u64; NCELLS];
        let mut cell_weights = [0u32; NCELLS];
        for (report, &target) in targets.iter().enumerate() {
            let shares: Vec<&(Kind, usize, u32)> = SHARES.iter().filter(|s| s.0.report() == report).collect();
            let weights: Vec<f64> = shares.iter().map(|s| f64::from(s.2)).collect();
            for (s, n) in shares.iter().zip(apportion(target, &weights)) {
                cell_totals[cell(s.0, s.1)] = n;
            }
            for s in &shares {
                cell_weights[cell(s.0, s.1)] = (TARGETS[report] * u64::from(s.2) / 1000) as u32;
            }
        }
        for (c, &total) in cell_totals.iter().enumerate() {
            for (k, n) in apportion(total, &by_poverty).into_iter().enumerate() {
                kels[k].quota[c] = n as u32;
            }
        }
        for (i, (_, count, poor)) in SPECIALS.iter().enumerate() {
            let weights = if *poor { &by_poverty } else { &by_pop };
            for (k, n) in apportion(scaled(*count, scale), weights).into_iter().enumerate() {
                kels[k].special[i] = n as u32;
            }
        }

        // Care homes, placed by population.
        let homes = scaled(90, scale).max(1);
        let children = scaled(4_000, scale).max(3);
        let sizes: Vec<f64> = (0..homes).map(|_| rng.lognormal(0.0, 0.4)).collect();
        let mut public = 0;
        for (i, n) in apportion(children, &sizes).into_iter().enumerate() {
            let k = weighted_index(&mut rng, &by_pop);
            let name = if i % 15 == 0 {
                public += 1;
                format!("Panti Sosial Asuhan Anak Putra Utama {public}")
            } else {
                format!("{} {}", rng.pick(crate::names::CARE_HOMES), kels[k].name)
            };
            kels[k].homes.push(CareHome { name, children: n.max(1) as u32 });
        }

        let schools = make_schools(&mut rng, &kels, scale, &by_pop);
        let mut pools = vec![Vec::new(); NKINDS * 2 * 7];
        for (i, s) in schools.iter().enumerate() {
            let city = kels[s.kel].city;
            pools[pool_index(s.kind, s.status, Some(city))].push(i as u32);
            pools[pool_index(s.kind, s.status, None)].push(i as u32);
        }

        let rules = kjp_domain::Rules::new(&policy, reference_date()).expect("policy in force in 2025");
        let monthly = std::array::from_fn(|c| {
            let status = if c % 2 == NEGERI { SchoolType::Negeri } else { SchoolType::Swasta };
            rules.monthly(cell_kind(c).level(), Some(status)).map_or(0, |m| m.total.get())
        });
        let ump = param(&policy, "ump");
        let wage_limit = ump.times(param(&policy, "wage_factor")).floor();
        let ump = ump.floor();
        let njop_limit = param(&policy, "njop_limit").floor();
        let mut kecamatan: Vec<u32> = kels.iter().map(|k| k.kec).collect();
        kecamatan.dedup();

        Plan {
            seed,
            kels,
            kecamatan,
            schools,
            pools,
            monthly,
            cell_weights,
            wage_limit,
            ump,
            njop_limit,
            targets,
        }
    }

    /// A school of this kind and status for a child living in `city`: in the same city
    /// when there is one, else anywhere in Jakarta.
    pub(crate) fn school(&self, rng: &mut Rng, kind: Kind, status: usize, city: usize) -> u32 {
        let local = &self.pools[pool_index(kind, status, Some(city))];
        let pool = if local.is_empty() || (city == 0 && rng.chance(0.3)) {
            &self.pools[pool_index(kind, status, None)]
        } else {
            local
        };
        if pool.is_empty() {
            // No such school at this scale: the other status has one.
            let other = &self.pools[pool_index(kind, 1 - status, None)];
            return *rng.pick(other);
        }
        *rng.pick(pool)
    }

    /// The schools file.
    pub(crate) fn write_schools(&self) -> Chunk {
        let mut rng = Rng::new(self.seed, u64::MAX - 1);
        let mut c = Chunk::new(true);
        for s in &self.schools {
            c.begin(F::Schools)
                .padded(u64::from(s.npsn), 8)
                .text(&s.name)
                .raw(s.kind.code().as_bytes())
                .raw(if s.status == NEGERI { b"negeri" } else { b"swasta" })
                .raw(self.kels[s.kel].code.as_bytes());
            c.end(&mut rng);
        }
        c.finish();
        c
    }
}

fn pool_index(kind: Kind, status: usize, city: Option<usize>) -> usize {
    (kind as usize * 2 + status) * 7 + city.map_or(6, |c| c)
}

fn weighted_index(rng: &mut Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

fn make_schools(rng: &mut Rng, kels: &[Kel], scale: f64, by_pop: &[f64]) -> Vec<School> {
    let mut schools = Vec::new();
    let city_pop: Vec<f64> = CITIES.iter().map(|c| c.2 as f64).collect();
    let mut used = std::collections::HashSet::new();
    let mut per_kel_sd = vec![0u32; kels.len()];
    for (kind, negeri, swasta) in SCHOOLS {
        for (status, base) in [(NEGERI, negeri), (SWASTA, swasta)] {
            if base == 0 {
                continue;
            }
            let n = scaled(u64::from(base), scale).max(1);
            let mut number = 0;
            for (city, m) in apportion(n, &city_pop).into_iter().enumerate() {
                let members: Vec<usize> = (0..kels.len()).filter(|&i| kels[i].city == city).collect();
                let weights: Vec<f64> = members.iter().map(|&i| by_pop[i]).collect();
                for _ in 0..m {
                    let kel = members[weighted_index(rng, &weights)];
                    number += 1;
                    let base_npsn = match kind {
                        Kind::Mi | Kind::Mts | Kind::Ma => 60_700_000,
                        Kind::Pkbm => 69_700_000,
                        Kind::Lkp => 69_900_000,
                        _ => 20_100_000,
                    };
                    let npsn = loop {
                        let n = base_npsn + rng.below(100_000) as u32;
                        if used.insert(n) {
                            break n;
                        }
                    };
                    let name = school_name(rng, kind, status, number, kels, kel, &mut per_kel_sd);
                    schools.push(School { npsn, name, kind, status, kel });
                }
            }
        }
    }
    // Mix the kinds, as an NPSN-sorted registry would.
    schools.sort_by_key(|s| s.npsn);
    schools
}

fn school_name(
    rng: &mut Rng,
    kind: Kind,
    status: usize,
    number: u32,
    kels: &[Kel],
    kel: usize,
    per_kel_sd: &mut [u32],
) -> String {
    let code = kind.code();
    if status == NEGERI {
        return match kind {
            Kind::Sd => {
                per_kel_sd[kel] += 1;
                let shift = if rng.chance(0.3) { " Petang" } else { " Pagi" };
                format!("SD Negeri {} {:02}{shift}", kels[kel].name, per_kel_sd[kel])
            }
            Kind::Sdlb | Kind::Smplb | Kind::Smalb => format!("SLB Negeri {number} Jakarta ({code})"),
            Kind::Pkbm => format!("SPNF SKB {} {number}", CITIES[kels[kel].city].1),
            _ => format!("{code} Negeri {number} Jakarta"),
        };
    }
    match kind {
        Kind::Mi | Kind::Mts | Kind::Ma => format!("{code} {} {}", rng.pick(MADRASAH), rng.range(1, 12)),
        Kind::Sdlb | Kind::Smplb | Kind::Smalb => format!("SLB {} ({code})", rng.pick(FOUNDATIONS)),
        Kind::Pkbm => format!("PKBM {} {}", rng.pick(COURSE_NAMES), kels[kel].name),
        Kind::Lkp => format!("LKP {} {}", rng.pick(COURSES), rng.pick(COURSE_NAMES)),
        _ => format!("{code} {} {}", rng.pick(FOUNDATIONS), rng.range(1, 40)),
    }
}
