//! One kelurahan: its families, children, schools attended, vehicles, property, jobs and
//! every agency row about them.
//!
//! Eligibility is decided by construction. Each family gets a fate when it is made:
//! an eligible family takes its school children from the kelurahan's calibration quota
//! (so the eligible counts per level and school type come out exact), and every other
//! family with a candidate child carries at least one reason that fails every such child
//! whatever group the child could claim (see [`Fate`]).

use crate::alloc::Ids;
use crate::date::{Day, REF};
use crate::names;
use crate::out::{Chunk, F};
use crate::plan::{cell_kind, Kel, Kind, Plan, Sp, ELSEWHERE, NCELLS, NEGERI, NSPECIAL, SWASTA};
use crate::rng::Rng;

/// What one kelurahan produced, and what was built into it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub(crate) residents: u64,
    pub(crate) families: u64,
    pub(crate) moved_out: u64,
    /// Eligible by construction, per reporting level.
    pub(crate) eligible: [u64; 7],
    /// Sum of the monthly amounts of the eligible children.
    pub(crate) monthly: i64,
    pub(crate) candidates: u64,
    pub(crate) car_conflict_families: u64,
    pub(crate) car_conflict_children: u64,
    pub(crate) dtks_conflict_children: u64,
    pub(crate) lurah_only: u64,
    pub(crate) not_in_dukcapil: u64,
    pub(crate) sanctioned: u64,
    pub(crate) age_out: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.residents += o.residents;
        self.families += o.families;
        self.moved_out += o.moved_out;
        for i in 0..7 {
            self.eligible[i] += o.eligible[i];
        }
        self.monthly += o.monthly;
        self.candidates += o.candidates;
        self.car_conflict_families += o.car_conflict_families;
        self.car_conflict_children += o.car_conflict_children;
        self.dtks_conflict_children += o.dtks_conflict_children;
        self.lurah_only += o.lurah_only;
        self.not_in_dukcapil += o.not_in_dukcapil;
        self.sanctioned += o.sanctioned;
        self.age_out += o.age_out;
    }
}

/// Why a family's candidate children are, or are not, eligible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// In DTKS with a valid SKTM, nothing excluding: eligible (counted).
    Poor,
    /// Worker with a Jakarta KTP at most 1.1 x UMP, not in DTKS: eligible (counted).
    Worker,
    /// Small-bus Transjakarta driver: eligible (counted).
    Driver,
    /// Children in a care home, with SKTM: eligible (counted) unless without SKTM.
    CareHome,
    /// Otherwise eligible, but Bapenda's car is blocked/transferred at Samsat: review.
    CarConflict,
    /// Otherwise eligible, but the DTKS address is outside Jakarta: review.
    DtksConflict,
    /// Neither DTKS nor SKTM, and no group exemption for its candidates.
    NotPoor,
    /// In DTKS, no valid SKTM.
    DtksNoSktm,
    /// Valid SKTM, not in DTKS.
    SktmNoDtks,
    /// Poor, but owns a car (Samsat agrees).
    PoorCar,
    /// Poor, but property above the NJOP limit.
    PoorProperty,
    /// Poor, but a family member is a civil servant, soldier, ...
    PoorOccupation,
    /// Poor, but moved out of Jakarta.
    PoorMovedOut,
    /// Poor, lives in Jakarta, on a family card from elsewhere.
    PoorNonDkiKk,
    /// Not poor, parent's wage above 1.1 x UMP.
    WorkerHighWage,
    /// Not poor, low wage but the parent's KTP is not a Jakarta one.
    WorkerNonDkiKtp,
    /// Not poor and moved out.
    NotPoorMovedOut,
}

impl Fate {
    fn poor(self) -> bool {
        matches!(
            self,
            Fate::Poor
                | Fate::CarConflict
                | Fate::DtksConflict
                | Fate::PoorCar
                | Fate::PoorProperty
                | Fate::PoorOccupation
                | Fate::PoorMovedOut
                | Fate::PoorNonDkiKk
        )
    }
    /// Whether a failing family must keep its candidates out of the driver and worker
    /// groups (their only failure is a requirement those groups are exempt from).
    fn fails_only_poverty(self) -> bool {
        matches!(self, Fate::NotPoor | Fate::DtksNoSktm | Fate::SktmNoDtks)
    }
}

#[derive(Debug, Clone, Copy)]
struct Name {
    given: &'static str,
    second: Option<&'static str>,
    surname: Option<&'static str>,
    /// The title of one who made the hajj: `H.` or `Hj.`.
    haji: Option<&'static str>,
    title: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Person {
    nik: u64,
    birth: Day,
    female: bool,
    name: Name,
    ktp: bool,
    moved: bool,
    /// Relationship on the family card (SHDK), as written in dukcapil.csv.
    rel: &'static str,
}

impl Person {
    fn adult(&self) -> bool {
        self.birth.age_on(REF) >= 17
    }
}

#[derive(Debug, Clone, Copy)]
struct Sanction {
    since: Day,
    lifted: Option<Day>,
}

#[derive(Debug, Clone)]
struct Enrol {
    who: usize,
    school: u32,
    kind: Kind,
    grade: u8,
    active: bool,
    lurah: bool,
    sanction: Option<Sanction>,
    /// An earlier, inactive row in the other enrolment file (changed Dapodik <-> EMIS).
    prev: Option<(u32, Kind, u8)>,
}

/// A child to place in a family, with what the calibration decided about it.
#[derive(Debug, Clone, Copy)]
struct Kid {
    birth: Day,
    /// Enrolled at this kind of school, status and grade (None: not enrolled).
    school: Option<(Kind, usize, u8)>,
    lurah: bool,
    sanction: Option<Sanction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wheels {
    Two,
    Four,
    Six,
}

#[derive(Debug, Clone, Copy)]
enum Registration {
    Active,
    /// Samsat shows the vehicle blocked or transferred on this date; Bapenda still lists it.
    Stale {
        transferred: bool,
        bapenda_as_of: Day,
        samsat_date: Day,
    },
    /// Sold and removed from Bapenda; only Samsat remembers it.
    SamsatOnly {
        transferred: bool,
        date: Day,
    },
}

#[derive(Debug, Clone, Copy)]
struct Vehicle {
    owner: usize,
    wheels: Wheels,
    reg: Registration,
}

#[derive(Debug, Clone)]
struct Fam {
    kk: u64,
    fate: Fate,
    members: Vec<Person>,
    enrol: Vec<Enrol>,
    lurah_only: Vec<usize>,
    /// DTKS listing: decile range and the region (None: this kelurahan).
    dtks: Option<(u8, u8, Option<u64>)>,
    sktm_valid: Vec<usize>,
    sktm_expired: Vec<usize>,
    wages: Vec<(usize, i64, bool)>,
    driver: Option<(usize, &'static str, bool)>,
    vehicles: Vec<Vehicle>,
    njop: Option<i64>,
    occupations: Vec<(usize, &'static str)>,
    care_home: Option<String>,
}

impl Fam {
    fn has_candidates(&self) -> bool {
        self.enrol.iter().any(|e| e.active) || !self.lurah_only.is_empty()
    }
    fn adults(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|&i| self.members[i].adult()).collect()
    }
    fn screen_fails(&self, njop_limit: i64) -> bool {
        self.vehicles.iter().any(|v| v.wheels != Wheels::Two && matches!(v.reg, Registration::Active))
            || self.njop.is_some_and(|n| n > njop_limit)
            || !self.occupations.is_empty()
    }
}

const OCCUPATIONS: [(u32, &str); 6] =
    [(45, "pns"), (10, "tni"), (12, "polri"), (1, "legislator"), (21, "bumn"), (11, "bumd")];

pub(crate) struct Gen<'p> {
    plan: &'p Plan,
    kel: &'p Kel,
    rng: Rng,
    ids: Ids,
    out: Chunk,
    st: Stats,
    quota: [u32; NCELLS],
    quota_left: u32,
    special: [u32; NSPECIAL],
    sktm_seq: u32,
    letter_seq: u32,
    plain: String,
    fams: Vec<Fam>,
    people: u64,
}

fn years(n: i64) -> i32 {
    (n * 365 + n / 4) as i32
}

/// The birth dates of the children in `grade` of the 2024/25 school year, `late` years
/// behind: born from 1 July (2018 - grade - late) to 30 June (2019 - grade - late).
fn grade_births(grade: u8, late: i32) -> (Day, Day) {
    let y = 2018 - i32::from(grade) - late;
    (Day::ymd(y, 7, 1), Day::ymd(y + 1, 6, 30))
}

/// The school grade a child born on `birth` is of age for in 2024/25 (0: too young).
fn grade_of(birth: Day) -> i32 {
    let (y, m, _) = birth.to_ymd();
    let cohort = if m >= 7 { y } else { y - 1 };
    2018 - cohort
}

/// Eligible children are kept well inside the age bounds (6 to 21 on 2025-01-01).
const BORN_EARLIEST: Day = Day::ymd(2003, 6, 1);
const BORN_LATEST: Day = Day::ymd(2018, 6, 30);

impl<'p> Gen<'p> {
    pub(crate) fn new(plan: &'p Plan, k: usize) -> Gen<'p> {
        let kel = &plan.kels[k];
        Gen {
            plan,
            kel,
            rng: Rng::new(plan.seed, k as u64),
            ids: Ids::new(k),
            out: Chunk::new(true),
            st: Stats::default(),
            quota: kel.quota,
            quota_left: kel.quota.iter().sum(),
            special: kel.special,
            sktm_seq: 0,
            letter_seq: 0,
            plain: kel.code.replace('.', ""),
            fams: Vec::new(),
            people: 0,
        }
    }

    fn day(&mut self, from: Day, to: Day) -> Day {
        Day(self.rng.range(i64::from(from.0), i64::from(to.0)) as i32)
    }

    fn take(&mut self, sp: Sp) -> bool {
        if self.special[sp as usize] > 0 {
            self.special[sp as usize] -= 1;
            true
        } else {
            false
        }
    }

    // ------------------------------------------------------------------ people

    /// The region where a person's NIK was issued: mostly this kecamatan, some elsewhere
    /// in Jakarta, and people born outside Jakarta carry their birthplace's code.
    fn prefix(&mut self, jakarta: f64) -> u32 {
        if self.rng.chance(jakarta) {
            if self.rng.chance(0.85) {
                self.kel.kec
            } else {
                *self.rng.pick(&self.plan.kecamatan)
            }
        } else {
            *self.rng.pick(&ELSEWHERE)
        }
    }

    fn name(&mut self, female: bool, surname: Option<&'static str>, birth: Day, educated: f64) -> Name {
        let r = &mut self.rng;
        let (given, second) = if female {
            (*r.pick(names::FEMALE), r.chance(0.6).then(|| *r.pick(names::FEMALE_SECOND)))
        } else {
            (*r.pick(names::MALE), r.chance(0.6).then(|| *r.pick(names::MALE_SECOND)))
        };
        let age = birth.age_on(REF);
        Name {
            given,
            second,
            surname,
            haji: (age >= 45 && r.chance(0.05)).then_some(if female { "Hj. " } else { "H. " }),
            title: (age >= 24 && r.chance(educated)).then(|| *r.pick(names::TITLES)),
        }
    }

    fn person(&mut self, prefix: u32, birth: Day, female: bool, name: Name, ktp: bool) -> Person {
        let (nik, birth) = self.ids.nik(prefix, birth, female);
        Person { nik, birth, female, name, ktp, moved: false, rel: "anak" }
    }

    // --------------------------------------------------------------- children

    /// A child of a calibration cell: the school grade and a birth date that fits it.
    fn kid_for_cell(&mut self, c: usize) -> Kid {
        let kind = cell_kind(c);
        let status = c % 2;
        let (lo, hi) = kind.grades();
        let (grade, late) = match kind {
            Kind::Pkbm => (self.rng.range(4, 12) as u8, self.rng.range(1, 4) as i32),
            Kind::Lkp => (1, 0),
            Kind::Sdlb | Kind::Smplb | Kind::Smalb => {
                (self.rng.range(i64::from(lo), i64::from(hi)) as u8, self.rng.range(0, 3) as i32)
            }
            _ => (
                self.rng.range(i64::from(lo), i64::from(hi)) as u8,
                self.rng.choose(&[(88, 0), (10, 1), (2, 2)]),
            ),
        };
        let (from, to) = if kind == Kind::Lkp {
            (Day::ymd(2004, 3, 1), Day::ymd(2009, 6, 30))
        } else {
            grade_births(grade, late)
        };
        let from = from.max(BORN_EARLIEST);
        let to = to.min(BORN_LATEST).max(from);
        let birth = self.day(from, to);
        let lurah = match kind {
            Kind::Lkp => true,
            Kind::Pkbm => self.rng.chance(0.35),
            Kind::Sd | Kind::Smp => self.rng.chance(0.003),
            _ => false,
        };
        Kid { birth, school: Some((kind, status, grade)), lurah, sanction: None }
    }

    /// Takes one child from the kelurahan's quota (None when it is used up). Lifted and
    /// later sanctions are spread over the counted children by selection sampling, so
    /// their planned numbers come out exact.
    fn counted_kid(&mut self) -> Option<Kid> {
        if self.quota_left == 0 {
            return None;
        }
        let c = self.rng.weighted(&self.quota);
        let left = self.quota_left;
        self.quota[c] -= 1;
        self.quota_left -= 1;
        let mut kid = self.kid_for_cell(c);
        for (sp, since, lifted) in [
            (Sp::SanctionLifted, (Day::ymd(2023, 8, 1), Day::ymd(2024, 6, 30)), true),
            (Sp::SanctionLater, (Day::ymd(2025, 1, 20), Day::ymd(2025, 3, 10)), false),
        ] {
            let n = self.special[sp as usize];
            if n > 0 && self.rng.below(u64::from(left)) < u64::from(n) {
                self.special[sp as usize] -= 1;
                let since = self.day(since.0, since.1);
                let lifted = lifted.then(|| since.plus(self.rng.range(30, 150) as i32));
                kid.sanction = Some(Sanction { since, lifted });
            }
        }
        self.st.eligible[cell_kind(c).report()] += 1;
        self.st.monthly += self.plan.monthly[c];
        Some(kid)
    }

    /// A child who looks like an eligible one (same mix of levels) but is not counted.
    fn lookalike_kid(&mut self) -> Kid {
        let c = self.rng.weighted(&self.plan.cell_weights);
        self.kid_for_cell(c)
    }

    /// A candidate child made ineligible (or undecidable) by one planted fact of its own.
    fn special_kid(&mut self, sp: Sp) -> Kid {
        match sp {
            Sp::SanctionInForce => {
                let mut kid = self.lookalike_kid();
                let since = self.day(Day::ymd(2024, 2, 1), Day::ymd(2024, 12, 20));
                let lifted =
                    self.rng.chance(0.12).then(|| self.day(Day::ymd(2025, 1, 10), Day::ymd(2025, 3, 15)));
                kid.sanction = Some(Sanction { since, lifted });
                self.st.sanctioned += 1;
                kid
            }
            Sp::Underage => {
                self.st.age_out += 1;
                let status = if self.rng.chance(0.85) { NEGERI } else { SWASTA };
                let birth = self.day(Day::ymd(2019, 1, 10), Day::ymd(2019, 6, 30));
                Kid { birth, school: Some((Kind::Sd, status, 1)), lurah: false, sanction: None }
            }
            Sp::Overage => {
                self.st.age_out += 1;
                let (school, from) = if self.rng.chance(0.6) {
                    ((Kind::Pkbm, SWASTA, self.rng.range(10, 12) as u8), Day::ymd(1998, 1, 1))
                } else {
                    ((Kind::Smk, SWASTA, 12), Day::ymd(2001, 1, 1))
                };
                let birth = self.day(from, Day::ymd(2002, 10, 31));
                Kid { birth, school: Some(school), lurah: false, sanction: None }
            }
            Sp::LurahOnly => {
                self.st.lurah_only += 1;
                let birth = self.day(Day::ymd(2007, 6, 1), Day::ymd(2016, 6, 30));
                Kid { birth, school: None, lurah: true, sanction: None }
            }
            _ => unreachable!("not a child case"),
        }
    }

    /// Where an ordinary child goes to school, if at all, by age.
    fn natural_school(&mut self, birth: Day, poor: bool) -> Option<(Kind, usize, u8, bool)> {
        let g = grade_of(birth);
        let r = &mut self.rng;
        let (kind, grade) = match g {
            1..=6 => {
                if !r.chance(0.975) {
                    return None;
                }
                let kind = r.choose(&[(905, Kind::Sd), (85, Kind::Mi), (10, Kind::Sdlb)]);
                (kind, g)
            }
            7..=9 => {
                if !r.chance(0.93) {
                    return None;
                }
                (r.choose(&[(860, Kind::Smp), (125, Kind::Mts), (6, Kind::Smplb), (9, Kind::Pkbm)]), g)
            }
            10..=12 => {
                if !r.chance(0.8) {
                    return None;
                }
                (
                    r.choose(&[
                        (400, Kind::Sma),
                        (455, Kind::Smk),
                        (95, Kind::Ma),
                        (5, Kind::Smalb),
                        (45, Kind::Pkbm),
                    ]),
                    g,
                )
            }
            13..=14 => {
                if !r.chance(0.05) {
                    return None;
                }
                (r.choose(&[(40, Kind::Smk), (20, Kind::Sma), (40, Kind::Pkbm)]), 12)
            }
            0 if r.chance(0.015) => (Kind::Sd, 1),
            _ => return None,
        };
        let late = g > 1 && grade == g && r.chance(0.05);
        let grade = if late { grade - 1 } else { grade } as u8;
        let private = match kind {
            Kind::Sd => {
                if poor {
                    0.12
                } else {
                    0.25
                }
            }
            Kind::Mi => 0.93,
            Kind::Smp => {
                if poor {
                    0.35
                } else {
                    0.45
                }
            }
            Kind::Mts => 0.85,
            Kind::Sma => 0.52,
            Kind::Ma => 0.75,
            Kind::Smk => 0.8,
            Kind::Lkp => 1.0,
            _ => 0.75,
        };
        let status = if r.chance(private) { SWASTA } else { NEGERI };
        Some((kind, status, grade, true))
    }

    // --------------------------------------------------------------- families

    /// A family around `kids`: parents whose ages fit, perhaps toddlers, an adult child
    /// and grandparents, on a new family card.
    fn family(
        &mut self,
        fate: Fate,
        kids: &[Kid],
        extras: bool,
        origin: Option<u32>,
        mother: Option<Day>,
    ) -> Fam {
        let r = &mut self.rng;
        let single = r.chance(0.17);
        let single_father = single && r.chance(0.2);
        let surname = r.chance(0.22).then(|| *r.pick(names::SURNAMES));
        let mother_surname = r.chance(0.22).then(|| *r.pick(names::SURNAMES));
        let educated = if fate.poor() || matches!(fate, Fate::Worker | Fate::Driver) { 0.01 } else { 0.06 };
        let oldest = kids.iter().map(|k| k.birth).min();
        let youngest = kids.iter().map(|k| k.birth).max();
        let mother_birth = match (oldest, youngest) {
            _ if mother.is_some() => mother.unwrap_or(REF),
            (Some(o), Some(y)) => {
                let m = Day(o.0 - years(r.range(19, 36)) - r.range(0, 364) as i32);
                m.max(Day(y.0 - years(44))).min(Day(o.0 - years(17)))
            }
            _ => Day(REF.0 - years(r.range(24, 60)) - r.range(0, 364) as i32),
        };
        let father_birth = Day(mother_birth.0 - years(r.range(-2, 9)) - r.range(0, 364) as i32);
        let jakarta_adult = if origin.is_some() { 0.0 } else { 0.92 };
        let jakarta_kid = if origin.is_some() { 0.0 } else { 0.985 };
        let mut members = Vec::with_capacity(kids.len() + 4);
        let ktp_adult = origin.is_none();
        let pre = |g: &mut Gen, p: f64| origin.unwrap_or_else(|| g.prefix(p));
        if !single || single_father {
            let p = pre(self, jakarta_adult);
            let name = self.name(false, surname, father_birth, educated);
            let ktp = ktp_adult && self.rng.chance(0.99);
            let mut father = self.person(p, father_birth, false, name, ktp);
            father.rel = "kepala_keluarga";
            members.push(father);
        }
        if !single || !single_father {
            let p = pre(self, jakarta_adult);
            let name = self.name(true, mother_surname, mother_birth, educated);
            let ktp = ktp_adult && self.rng.chance(0.99);
            let mut mother = self.person(p, mother_birth, true, name, ktp);
            mother.rel = if single { "kepala_keluarga" } else { "istri" };
            members.push(mother);
        }
        let mut births: Vec<(Day, Option<usize>)> =
            kids.iter().enumerate().map(|(i, k)| (k.birth, Some(i))).collect();
        if extras {
            let r = &mut self.rng;
            let mother_age = mother_birth.age_on(REF);
            let from = Day::ymd(2019, 7, 1).max(Day(mother_birth.0 + years(19)));
            let to = Day::ymd(2024, 12, 15);
            if mother_age <= 44 && from < to && r.chance(0.3) {
                births.push((self.day(from, to), None));
            }
            let from = Day(mother_birth.0 + years(18)).max(Day::ymd(2000, 1, 15));
            let to = Day::ymd(2005, 12, 31);
            if from < to && self.rng.chance(0.12) {
                births.push((self.day(from, to), None));
            }
        }
        births.sort_by_key(|b| b.0);
        let mut enrol = Vec::new();
        let mut lurah_only = Vec::new();
        for (birth, which) in births {
            let female = self.rng.chance(0.49);
            let p = pre(self, jakarta_kid);
            let child_surname = if self.rng.chance(0.9) { surname } else { None };
            let name = self.name(female, child_surname, birth, 0.0);
            let mut child = self.person(p, birth, female, name, false);
            child.ktp = ktp_adult && child.adult();
            let who = members.len();
            match which.map(|i| kids[i]) {
                Some(kid) => {
                    if let Some((kind, status, grade)) = kid.school {
                        let school = self.plan.school(&mut self.rng, kind, status, self.kel.city);
                        enrol.push(Enrol {
                            who,
                            school,
                            kind,
                            grade,
                            active: true,
                            lurah: kid.lurah,
                            sanction: kid.sanction,
                            prev: None,
                        });
                    } else if kid.lurah {
                        lurah_only.push(who);
                    }
                }
                None => {
                    // An adult child who finished school, or a toddler.
                    if child.adult() {
                        child.moved = self.rng.chance(0.1);
                        if self.rng.chance(0.4) {
                            let kind = if self.rng.chance(0.55) { Kind::Smk } else { Kind::Sma };
                            let status = if self.rng.chance(0.6) { SWASTA } else { NEGERI };
                            let school = self.plan.school(&mut self.rng, kind, status, self.kel.city);
                            enrol.push(Enrol {
                                who,
                                school,
                                kind,
                                grade: 12,
                                active: false,
                                lurah: false,
                                sanction: None,
                                prev: None,
                            });
                        }
                    }
                }
            }
            members.push(child);
        }
        if self.rng.chance(if extras { 0.12 } else { 0.22 }) {
            let n = if self.rng.chance(0.4) { 2 } else { 1 };
            for i in 0..n {
                let female = if n == 2 { i == 1 } else { self.rng.chance(0.6) };
                let birth =
                    Day(mother_birth.0 - years(self.rng.range(20, 32)) - self.rng.range(0, 364) as i32)
                        .max(Day::ymd(1938, 1, 1));
                let p = pre(self, 0.85);
                let name = self.name(female, None, birth, educated);
                let mut grandparent = self.person(p, birth, female, name, ktp_adult);
                grandparent.rel = "orang_tua";
                members.push(grandparent);
            }
        }
        if !extras && !kids.is_empty() && self.rng.chance(0.14) {
            // Another relative on the card: a sibling, niece or nephew of the parents.
            let female = self.rng.chance(0.5);
            let birth = Day(REF.0 - years(self.rng.range(18, 45)) - self.rng.range(0, 364) as i32);
            let p = pre(self, 0.8);
            let name = self.name(female, None, birth, educated);
            let mut m = self.person(p, birth, female, name, ktp_adult);
            m.moved = self.rng.chance(0.05);
            m.rel = "famili_lain";
            members.push(m);
        }
        let youngest_member = members.iter().map(|m| m.birth).max().unwrap_or(REF);
        let issued = Day(youngest_member.0 + self.rng.range(20, 900) as i32)
            .clamp(Day::ymd(2005, 1, 3), Day::ymd(2024, 12, 20));
        let kk_prefix = match origin {
            Some(p) => p,
            None if self.rng.chance(0.93) => self.kel.kec,
            None => *self.rng.pick(&self.plan.kecamatan),
        };
        let kk = self.ids.kk(kk_prefix, issued);
        Fam {
            kk,
            fate,
            members,
            enrol,
            lurah_only,
            dtks: None,
            sktm_valid: Vec::new(),
            sktm_expired: Vec::new(),
            wages: Vec::new(),
            driver: None,
            vehicles: Vec::new(),
            njop: None,
            occupations: Vec::new(),
            care_home: None,
        }
    }

    /// A parent: the father if there is one, else the first adult.
    fn parent(fam: &Fam) -> usize {
        fam.adults().into_iter().next().unwrap_or(0)
    }

    fn motorcycles(&mut self, fam: &mut Fam, p: f64) {
        if !self.rng.chance(p) || fam.adults().is_empty() {
            return;
        }
        let n = self.rng.choose(&[(50, 1), (35, 2), (15, 3)]);
        let adults = fam.adults();
        for _ in 0..n {
            let owner = *self.rng.pick(&adults);
            let reg = if self.rng.chance(0.03) {
                let bapenda_as_of = self.day(Day::ymd(2023, 3, 1), Day::ymd(2024, 3, 31));
                let samsat_date = self.day(bapenda_as_of.plus(20), Day::ymd(2024, 12, 28));
                Registration::Stale { transferred: self.rng.chance(0.5), bapenda_as_of, samsat_date }
            } else {
                Registration::Active
            };
            fam.vehicles.push(Vehicle { owner, wheels: Wheels::Two, reg });
        }
        if self.rng.chance(0.04) {
            let date = self.day(Day::ymd(2015, 1, 1), Day::ymd(2024, 12, 20));
            let owner = *self.rng.pick(&adults);
            let wheels = if self.rng.chance(0.8) { Wheels::Two } else { Wheels::Four };
            fam.vehicles.push(Vehicle {
                owner,
                wheels,
                reg: Registration::SamsatOnly { transferred: self.rng.chance(0.7), date },
            });
        }
    }

    fn cars(&mut self, fam: &mut Fam, n: u32) {
        let adults = fam.adults();
        if adults.is_empty() {
            return;
        }
        for i in 0..n {
            let owner = if i == 0 { adults[0] } else { *self.rng.pick(&adults) };
            let wheels = if self.rng.chance(0.04) { Wheels::Six } else { Wheels::Four };
            fam.vehicles.push(Vehicle { owner, wheels, reg: Registration::Active });
        }
    }

    fn modest_njop(&mut self, fam: &mut Fam, p: f64) {
        if self.rng.chance(p) {
            let limit = self.plan.njop_limit;
            fam.njop = Some(self.rng.range(60_000_000, limit - limit / 20) / 1000 * 1000);
        }
    }

    fn dtks(&mut self, fam: &mut Fam, lo: u8, hi: u8) {
        fam.dtks = Some((lo, hi, None));
    }

    /// A valid SKTM for every candidate child (or once, for a parent), and often an
    /// expired one from an earlier year.
    fn sktm(&mut self, fam: &mut Fam) {
        let kids: Vec<usize> = fam
            .enrol
            .iter()
            .filter(|e| e.active)
            .map(|e| e.who)
            .chain(fam.lurah_only.iter().copied())
            .collect();
        if kids.is_empty() || self.rng.chance(0.3) {
            fam.sktm_valid.push(Gen::parent(fam));
        } else {
            fam.sktm_valid.extend(kids);
        }
        if self.rng.chance(0.5) {
            fam.sktm_expired.push(Gen::parent(fam));
        }
    }

    fn low_wage(&mut self) -> i64 {
        if self.rng.chance(0.25) {
            self.plan.ump
        } else {
            self.rng.range(3_300_000, self.plan.wage_limit - 40_000) / 1000 * 1000
        }
    }

    fn high_wage(&mut self) -> i64 {
        let w = self.plan.wage_limit + 100_000 + self.rng.lognormal(14.6, 0.7) as i64;
        w.min(60_000_000) / 1000 * 1000
    }

    fn occupation(&mut self, fam: &mut Fam) {
        let free = |i: &usize| fam.occupations.iter().all(|o| o.0 != *i);
        let mut adults: Vec<usize> = fam
            .adults()
            .into_iter()
            .filter(|&i| (20..=60).contains(&fam.members[i].birth.age_on(REF)))
            .filter(free)
            .collect();
        if adults.is_empty() {
            adults = fam.adults().into_iter().filter(free).collect();
        }
        if adults.is_empty() {
            return;
        }
        let who = *self.rng.pick(&adults);
        let occ = self.rng.choose(&OCCUPATIONS);
        fam.occupations.push((who, occ));
    }

    // ------------------------------------------------------- eligible families

    fn push(&mut self, fam: Fam) {
        self.people += fam.members.len() as u64;
        self.fams.push(fam);
    }

    fn eligible_family(&mut self, fate: Fate, mut kids: Vec<Kid>) {
        let mut fam = self.family(fate, &kids, true, None, None);
        kids.clear();
        match fate {
            Fate::Poor | Fate::CarConflict | Fate::DtksConflict => {
                self.dtks(&mut fam, 1, 4);
                self.sktm(&mut fam);
                if self.rng.chance(0.05) {
                    // A parent with a reported wage above the worker limit: harmless for a poor family.
                    let p = Gen::parent(&fam);
                    let w = self.high_wage();
                    fam.wages.push((p, w, fam.members[p].ktp));
                }
            }
            Fate::Worker => {
                if self.rng.chance(0.2) {
                    self.dtks(&mut fam, 3, 6);
                }
                if self.rng.chance(0.3) {
                    let p = Gen::parent(&fam);
                    fam.sktm_expired.push(p);
                }
                let adults = fam.adults();
                let p = adults[0];
                fam.members[p].ktp = true;
                let w = self.low_wage();
                fam.wages.push((p, w, true));
                if adults.len() > 1 && self.rng.chance(0.4) {
                    let q = adults[1];
                    let w = if self.rng.chance(0.5) { self.low_wage() } else { self.high_wage() };
                    fam.wages.push((q, w, fam.members[q].ktp));
                }
            }
            Fate::Driver => {
                let p = Gen::parent(&fam);
                fam.members[p].ktp = true;
                fam.driver = Some((p, "bus_kecil", true));
                if self.rng.chance(0.2) {
                    self.dtks(&mut fam, 2, 5);
                }
            }
            _ => unreachable!(),
        }
        self.motorcycles(&mut fam, 0.55);
        self.modest_njop(&mut fam, 0.35);
        match fate {
            Fate::CarConflict => {
                let owner = Gen::parent(&fam);
                let transferred = self.rng.chance(0.4);
                let (bapenda_as_of, samsat_date) = if self.rng.chance(0.9) {
                    // Samsat's block is the later record: "the later source wins" clears it.
                    let a = self.day(Day::ymd(2023, 1, 2), Day::ymd(2024, 3, 31));
                    (a, self.day(a.plus(30), Day::ymd(2024, 12, 20)))
                } else {
                    // Bapenda re-listed the car after Samsat's block.
                    let s = self.day(Day::ymd(2023, 6, 1), Day::ymd(2024, 6, 30));
                    (self.day(s.plus(30), Day::ymd(2024, 12, 20)), s)
                };
                fam.vehicles.push(Vehicle {
                    owner,
                    wheels: Wheels::Four,
                    reg: Registration::Stale { transferred, bapenda_as_of, samsat_date },
                });
                self.st.car_conflict_families += 1;
                self.st.car_conflict_children += fam.enrol.iter().filter(|e| e.active).count() as u64;
            }
            Fate::DtksConflict => {
                let outside =
                    u64::from(*self.rng.pick(&ELSEWHERE)) * 10_000 + 2000 + self.rng.range(1, 15) as u64;
                fam.dtks = Some((1, 4, Some(outside)));
                self.st.dtks_conflict_children += fam.enrol.iter().filter(|e| e.active).count() as u64;
            }
            _ => {}
        }
        self.push(fam);
    }

    /// How many children of one eligible family are counted.
    fn eligible_kids(&mut self) -> Vec<Kid> {
        let n = self.rng.choose(&[(50, 1), (33, 2), (13, 3), (4, 4)]);
        (0..n).filter_map(|_| self.counted_kid()).collect()
    }

    fn care_home(&mut self, name: &str, children: u32) {
        // SKTM is matched by family card, and a care home's children share one card: a
        // home either has SKTMs for its children or none (Pasal 5 ayat 4 exempts foster
        // children from DTKS, not from SKTM).
        let with_sktm = !self.rng.chance(0.12);
        let mut kids = Vec::new();
        for _ in 0..children {
            let kid = if self.rng.chance(0.08) {
                None
            } else if with_sktm {
                self.counted_kid()
            } else {
                let mut kid = self.lookalike_kid();
                kid.lurah = false;
                Some(kid)
            };
            // Too young for school (or, once the quota is used up, not enrolled).
            kids.push(kid.unwrap_or_else(|| {
                let birth = self.day(Day::ymd(2019, 2, 1), Day::ymd(2023, 12, 31));
                Kid { birth, school: None, lurah: false, sanction: None }
            }));
        }
        // The care home's card: its head and a carer, then the children.
        let head_birth = self.day(Day::ymd(1960, 1, 1), Day::ymd(1985, 12, 31));
        let carer_birth = self.day(Day::ymd(1975, 1, 1), Day::ymd(1998, 12, 31));
        let mut members = Vec::new();
        for (birth, female, rel) in
            [(head_birth, self.rng.chance(0.5), "kepala_keluarga"), (carer_birth, true, "famili_lain")]
        {
            let p = self.prefix(0.85);
            let name = self.name(female, None, birth, 0.3);
            let mut m = self.person(p, birth, female, name, true);
            m.rel = rel;
            members.push(m);
        }
        let mut enrol = Vec::new();
        let mut lurah_only = Vec::new();
        let mut sktm_valid = Vec::new();
        for kid in &kids {
            let female = self.rng.chance(0.5);
            let p = self.prefix(0.9);
            let name = self.name(female, None, kid.birth, 0.0);
            let mut child = self.person(p, kid.birth, female, name, false);
            child.ktp = child.adult();
            // Children in a care home are not the head's own children.
            child.rel = "famili_lain";
            let who = members.len();
            if let Some((kind, status, grade)) = kid.school {
                let school = self.plan.school(&mut self.rng, kind, status, self.kel.city);
                enrol.push(Enrol {
                    who,
                    school,
                    kind,
                    grade,
                    active: true,
                    lurah: kid.lurah,
                    sanction: kid.sanction,
                    prev: None,
                });
                if with_sktm {
                    sktm_valid.push(who);
                }
            } else if kid.lurah {
                lurah_only.push(who);
            }
            members.push(child);
        }
        let issued = self.day(Day::ymd(2015, 1, 1), Day::ymd(2024, 11, 30));
        let kk = self.ids.kk(self.kel.kec, issued);
        let mut fam = Fam {
            kk,
            fate: Fate::CareHome,
            members,
            enrol,
            lurah_only,
            dtks: None,
            sktm_valid,
            sktm_expired: Vec::new(),
            wages: Vec::new(),
            driver: None,
            vehicles: Vec::new(),
            njop: None,
            occupations: Vec::new(),
            care_home: Some(name.to_string()),
        };
        if with_sktm && self.rng.chance(0.3) {
            self.dtks(&mut fam, 1, 2);
        }
        self.push(fam);
    }

    // ------------------------------------------------------- ordinary families

    fn ordinary_fate(&mut self) -> Fate {
        self.rng.choose(&[
            (820, Fate::NotPoor),
            (40, Fate::DtksNoSktm),
            (25, Fate::SktmNoDtks),
            (15, Fate::PoorCar),
            (8, Fate::PoorProperty),
            (6, Fate::PoorOccupation),
            (12, Fate::PoorMovedOut),
            (20, Fate::PoorNonDkiKk),
            (25, Fate::WorkerHighWage),
            (10, Fate::WorkerNonDkiKtp),
            (9, Fate::NotPoorMovedOut),
        ])
    }

    /// A household that holds no eligible child: singles, couples, families.
    fn ordinary_family(&mut self, budget: u64) {
        let fate = self.ordinary_fate();
        let poor = fate.poor() || matches!(fate, Fate::DtksNoSktm | Fate::SktmNoDtks);
        let origin = (fate == Fate::PoorNonDkiKk).then(|| *self.rng.pick(&ELSEWHERE));
        let roll = self.rng.f64();
        let age = |g: &mut Gen, lo: i64, hi: i64| {
            Day(REF.0 - years(g.rng.range(lo, hi)) - g.rng.range(0, 364) as i32)
        };
        let mut fam = if roll < 0.12 {
            // Someone living alone: young workers, and the elderly.
            let (lo, hi) = self.rng.choose(&[(42, (20, 29)), (23, (30, 44)), (12, (45, 59)), (23, (60, 88))]);
            let birth = age(self, lo, hi);
            let mut f = self.family(fate, &[], false, origin, Some(birth));
            f.members.truncate(1);
            f
        } else if roll < 0.23 {
            let (lo, hi) = self.rng.choose(&[(52, (21, 34)), (18, (35, 54)), (30, (55, 84))]);
            let birth = age(self, lo, hi);
            let mut f = self.family(fate, &[], false, origin, Some(birth));
            f.members.truncate(2);
            f
        } else {
            let (lo, hi) = self.rng.choose(&[
                (6, (20, 24)),
                (14, (25, 29)),
                (18, (30, 34)),
                (19, (35, 39)),
                (17, (40, 44)),
                (14, (45, 49)),
                (8, (50, 54)),
                (4, (55, 59)),
            ]);
            let mother_birth = age(self, lo, hi);
            let n = self.rng.choose(&[(31, 1), (39, 2), (20, 3), (7, 4), (2, 5), (1, 6)]);
            let mut birth =
                Day(mother_birth.0 + years(self.rng.range(19, 30)) + self.rng.range(0, 364) as i32);
            let mut kids = Vec::new();
            for _ in 0..n {
                if birth > Day::ymd(2024, 12, 15) || birth.0 - mother_birth.0 > years(44) {
                    break;
                }
                if birth.age_on(REF) <= 24 {
                    let school = self.natural_school(birth, poor).map(|(k, s, g, _)| (k, s, g));
                    kids.push(Kid { birth, school, lurah: false, sanction: None });
                }
                birth = Day(birth.0 + self.rng.range(420, 1900) as i32);
            }
            self.family(fate, &kids, false, origin, Some(mother_birth))
        };
        while fam.members.len() as u64 > budget.max(1) {
            fam.members.pop();
            let n = fam.members.len();
            fam.enrol.retain(|e| e.who < n);
        }
        self.ordinary_extras(&mut fam);
        self.ordinary_attributes(&mut fam);
        self.push(fam);
    }

    /// Adults in courses, school transfers between Dapodik and EMIS, dropouts.
    fn ordinary_extras(&mut self, fam: &mut Fam) {
        for i in 0..fam.members.len() {
            let age = fam.members[i].birth.age_on(REF);
            if (18..=35).contains(&age) && fam.enrol.iter().all(|e| e.who != i) {
                let roll = self.rng.f64();
                let kind = if roll < 0.006 {
                    Kind::Lkp
                } else if roll < 0.008 {
                    Kind::Pkbm
                } else {
                    continue;
                };
                let grade = if kind == Kind::Lkp { 1 } else { 12 };
                let school = self.plan.school(&mut self.rng, kind, SWASTA, self.kel.city);
                fam.enrol.push(Enrol {
                    who: i,
                    school,
                    kind,
                    grade,
                    active: true,
                    lurah: false,
                    sanction: None,
                    prev: None,
                });
            }
        }
        let city = self.kel.city;
        for e in &mut fam.enrol {
            if e.active && (e.kind == Kind::Smp || e.kind == Kind::Mts) && self.rng.chance(0.03) {
                // Came from a madrasah to a general school or back: the old row is inactive.
                let from = if e.kind == Kind::Smp { Kind::Mi } else { Kind::Sd };
                let status = if from == Kind::Mi { SWASTA } else { NEGERI };
                let school = self.plan.school(&mut self.rng, from, status, city);
                e.prev = Some((school, from, 6));
            }
            if e.active && self.rng.chance(0.0015) {
                let since = self.day(Day::ymd(2023, 6, 1), Day::ymd(2024, 12, 20));
                let lifted = self
                    .rng
                    .chance(0.5)
                    .then(|| since.plus(self.rng.range(20, 200) as i32))
                    .filter(|d| *d < REF);
                e.sanction = Some(Sanction { since, lifted });
            }
        }
        // Children of school age who left school: an inactive row where they last were.
        for i in 0..fam.members.len() {
            let g = grade_of(fam.members[i].birth);
            if (8..=16).contains(&g) && fam.enrol.iter().all(|e| e.who != i) && self.rng.chance(0.5) {
                // Dropped out of SD, left after SMP, or finished upper secondary.
                let (kind, grade) = match g {
                    8..=9 => (Kind::Sd, (g - 3) as u8),
                    10..=12 => (Kind::Smp, 9),
                    _ if self.rng.chance(0.55) => (Kind::Smk, 12),
                    _ => (Kind::Sma, 12),
                };
                let school = self.plan.school(&mut self.rng, kind, NEGERI, self.kel.city);
                fam.enrol.push(Enrol {
                    who: i,
                    school,
                    kind,
                    grade,
                    active: false,
                    lurah: false,
                    sanction: None,
                    prev: None,
                });
            }
        }
    }

    fn ordinary_attributes(&mut self, fam: &mut Fam) {
        let fate = fam.fate;
        let adults = fam.adults();
        if adults.is_empty() {
            return;
        }
        match fate {
            Fate::NotPoor | Fate::NotPoorMovedOut | Fate::WorkerHighWage | Fate::WorkerNonDkiKtp => {
                self.motorcycles(fam, 0.7);
                if self.rng.chance(0.38) {
                    let n = self.rng.choose(&[(80, 1), (17, 2), (3, 3)]);
                    self.cars(fam, n);
                }
                if self.rng.chance(0.5) {
                    fam.njop = Some(
                        (self.rng.lognormal(20.6, 0.8) as i64).clamp(80_000_000, 80_000_000_000) / 1000
                            * 1000,
                    );
                }
                if self.rng.chance(0.11) {
                    self.occupation(fam);
                    if self.rng.chance(0.15) {
                        self.occupation(fam);
                    }
                }
            }
            _ => {
                self.motorcycles(fam, 0.5);
                self.modest_njop(fam, 0.3);
            }
        }
        match fate {
            Fate::DtksNoSktm => {
                self.dtks(fam, 1, 6);
                if self.rng.chance(0.5) {
                    let p = Gen::parent(fam);
                    fam.sktm_expired.push(p);
                }
            }
            Fate::SktmNoDtks => self.sktm(fam),
            Fate::PoorCar
            | Fate::PoorProperty
            | Fate::PoorOccupation
            | Fate::PoorMovedOut
            | Fate::PoorNonDkiKk => {
                self.dtks(fam, 1, 5);
                self.sktm(fam);
                match fate {
                    Fate::PoorCar => self.cars(fam, 1),
                    Fate::PoorProperty => {
                        fam.njop = Some(self.rng.range(1_050_000_000, 4_000_000_000) / 1000 * 1000);
                    }
                    Fate::PoorOccupation => self.occupation(fam),
                    _ => {}
                }
            }
            Fate::WorkerHighWage => {
                let n = adults.len().min(if self.rng.chance(0.4) { 2 } else { 1 });
                for &a in adults.iter().take(n) {
                    fam.members[a].ktp = true;
                    let w = self.high_wage();
                    fam.wages.push((a, w, true));
                }
            }
            Fate::WorkerNonDkiKtp => {
                let a = adults[0];
                fam.members[a].ktp = false;
                let w = self.low_wage();
                fam.wages.push((a, w, false));
            }
            _ => {}
        }
        if matches!(fate, Fate::PoorMovedOut | Fate::NotPoorMovedOut) {
            for m in &mut fam.members {
                m.moved = true;
            }
        } else {
            for m in &mut fam.members {
                if !m.moved && m.adult() && (19..=30).contains(&m.birth.age_on(REF)) && self.rng.chance(0.06)
                {
                    m.moved = true;
                }
            }
        }
        let candidates = fam.has_candidates();
        let free = !candidates || !fate.fails_only_poverty() || fam.screen_fails(self.plan.njop_limit);
        if !candidates {
            // Households without a candidate child: their registrations decide nothing.
            if fam.dtks.is_none() && self.rng.chance(0.08) {
                self.dtks(fam, 1, 5);
                if self.rng.chance(0.3) {
                    self.sktm(fam);
                }
            }
            if self.rng.chance(0.05) && fam.occupations.is_empty() {
                self.occupation(fam);
            }
        }
        if free && fam.wages.is_empty() && self.rng.chance(0.08) {
            for &a in adults.iter().take(if self.rng.chance(0.3) { 2 } else { 1 }) {
                let age = fam.members[a].birth.age_on(REF);
                if (18..=60).contains(&age) {
                    let w = if self.rng.chance(0.6) { self.low_wage() } else { self.high_wage() };
                    fam.wages.push((a, w, fam.members[a].ktp));
                }
            }
        }
        // Planted driver cases ride on households that fit them.
        let driver = adults.iter().copied().find(|&a| (25..=58).contains(&fam.members[a].birth.age_on(REF)));
        if let Some(d) = driver {
            if !candidates && self.take(Sp::DriverNoKids) {
                fam.members[d].ktp = true;
                fam.driver = Some((d, "bus_kecil", true));
            } else if candidates && fate == Fate::NotPoor && self.take(Sp::DriverCar) {
                if !fam.screen_fails(self.plan.njop_limit) {
                    self.cars(fam, 1);
                }
                fam.driver = Some((d, "bus_kecil", true));
            } else if fate.fails_only_poverty() && self.take(Sp::DriverInactive) {
                fam.driver = Some((d, "bus_kecil", false));
            } else if self.take(Sp::BusSedang) {
                fam.driver = Some((d, "bus_sedang", self.rng.chance(0.92)));
            } else if self.take(Sp::BusBesar) {
                fam.driver = Some((d, "bus_besar", self.rng.chance(0.92)));
            }
        }
    }

    // --------------------------------------------------------------- the whole

    pub(crate) fn run(mut self) -> (Chunk, Stats) {
        let homes = self.kel.homes.clone();
        for home in &homes {
            self.care_home(&home.name, home.children);
        }
        while self.take(Sp::DriverEligible) {
            let kids = self.eligible_kids();
            self.eligible_family(Fate::Driver, kids);
        }
        while self.take(Sp::CarConflict) {
            let n = self.rng.choose(&[(60, 1), (30, 2), (10, 3)]);
            let kids = (0..n).map(|_| self.lookalike_kid()).collect();
            let fate = Fate::CarConflict;
            self.eligible_family(fate, kids);
        }
        while self.take(Sp::DtksConflict) {
            let n = self.rng.choose(&[(65, 1), (35, 2)]);
            let kids = (0..n).map(|_| self.lookalike_kid()).collect();
            self.eligible_family(Fate::DtksConflict, kids);
        }
        let extras = [Sp::SanctionInForce, Sp::Underage, Sp::Overage, Sp::LurahOnly];
        while self.quota_left > 0 {
            let families_left = (f64::from(self.quota_left) / 1.7).max(1.0);
            let mut kids = self.eligible_kids();
            for sp in extras {
                let n = self.special[sp as usize];
                if n > 0 && self.rng.chance(f64::from(n) / families_left) {
                    self.special[sp as usize] -= 1;
                    kids.push(self.special_kid(sp));
                }
            }
            let fate = if self.rng.chance(0.05) { Fate::Worker } else { Fate::Poor };
            self.eligible_family(fate, kids);
        }
        for sp in extras {
            while self.take(sp) {
                let kid = self.special_kid(sp);
                self.eligible_family(Fate::Poor, vec![kid]);
            }
        }
        while self.people < self.kel.pop {
            let budget = self.kel.pop - self.people;
            self.ordinary_family(budget);
        }
        // Shuffle the households, as a registry sorted by card number would mix them.
        let mut fams = std::mem::take(&mut self.fams);
        for i in (1..fams.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            fams.swap(i, j);
        }
        for fam in &fams {
            self.emit(fam);
        }
        while self.take(Sp::NotInDukcapil) {
            self.not_in_dukcapil();
        }
        self.non_resident_vehicles();
        self.out.finish();
        (self.out, self.st)
    }

    // ------------------------------------------------------------------ rows

    fn not_in_dukcapil(&mut self) {
        let kid = self.lookalike_kid();
        let (kind, status, grade) = kid.school.expect("a schoolchild");
        let prefix = *self.rng.pick(&ELSEWHERE);
        let female = self.rng.chance(0.5);
        let (nik, birth) = self.ids.nik(prefix, kid.birth, female);
        let school = self.plan.school(&mut self.rng, kind, status, self.kel.city);
        self.enrolment(nik, birth, school, kind, grade, true);
        self.st.not_in_dukcapil += 1;
        self.st.candidates += 1;
    }

    /// Plates registered in this kelurahan to owners who are not Jakarta residents.
    fn non_resident_vehicles(&mut self) {
        let resident = self.ids_plates();
        let n = (resident as f64 * 0.12).round() as u64;
        for _ in 0..n {
            let birth = self.day(Day::ymd(1950, 1, 1), Day::ymd(2004, 12, 31));
            let prefix = *self.rng.pick(&ELSEWHERE);
            let female = self.rng.chance(0.35);
            let (nik, _) = self.ids.nik(prefix, birth, female);
            let wheels = self.rng.choose(&[(75, Wheels::Two), (24, Wheels::Four), (1, Wheels::Six)]);
            self.vehicle_rows(nik, Vehicle { owner: 0, wheels, reg: Registration::Active });
        }
    }

    fn ids_plates(&self) -> u64 {
        self.out.rows[F::Bapenda as usize]
    }

    fn enrolment(&mut self, nik: u64, birth: Day, school: u32, kind: Kind, grade: u8, active: bool) {
        let nisn = self.ids.nisn(birth);
        self.enrolment_row(nik, nisn, school, kind, grade, active);
    }

    fn enrolment_row(&mut self, nik: u64, nisn: u64, school: u32, kind: Kind, grade: u8, active: bool) {
        let f = if kind.emis() { F::Emis } else { F::Dapodik };
        let npsn = u64::from(self.plan.schools[school as usize].npsn);
        self.out
            .begin(f)
            .id16(nik)
            .padded(nisn, 10)
            .padded(npsn, 8)
            .raw(kind.code().as_bytes())
            .num(u64::from(grade))
            .yes_no(active);
        self.out.end(&mut self.rng);
    }

    fn vehicle_rows(&mut self, owner: u64, v: Vehicle) {
        let plate = self.ids.plate();
        let kind: &[u8] = match v.wheels {
            Wheels::Two => b"roda2",
            Wheels::Four => b"roda4",
            Wheels::Six => b"roda6",
        };
        let (as_of, status, status_date): (Option<Day>, &[u8], Day) = match v.reg {
            Registration::Active => {
                let as_of = self.day(Day::ymd(2023, 6, 1), Day::ymd(2024, 12, 20));
                let registered = self.day(Day::ymd(2008, 1, 1), as_of.plus(-60));
                (Some(as_of), b"active", registered)
            }
            Registration::Stale { transferred, bapenda_as_of, samsat_date } => {
                (Some(bapenda_as_of), if transferred { b"transferred" } else { b"blocked" }, samsat_date)
            }
            Registration::SamsatOnly { transferred, date } => {
                (None, if transferred { b"transferred" } else { b"blocked" }, date)
            }
        };
        if let Some(as_of) = as_of {
            self.out.begin(F::Bapenda).id16(owner).plate(plate).raw(kind).date(as_of);
            self.out.end(&mut self.rng);
        }
        self.out.begin(F::Samsat).plate(plate).id16(owner).raw(status).date(status_date);
        self.out.end(&mut self.rng);
    }

    fn write_name(out: &mut Vec<u8>, n: &Name) {
        if let Some(h) = n.haji {
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(n.given.as_bytes());
        for part in [n.second, n.surname].into_iter().flatten() {
            out.push(b' ');
            out.extend_from_slice(part.as_bytes());
        }
        if let Some(t) = n.title {
            out.extend_from_slice(b", ");
            out.extend_from_slice(t.as_bytes());
        }
    }

    fn emit(&mut self, fam: &Fam) {
        let kel_code = self.kel.code.as_bytes();
        self.st.families += 1;
        for m in &fam.members {
            self.st.residents += 1;
            if m.moved {
                self.st.moved_out += 1;
            }
            let name = m.name;
            self.out
                .begin(F::Dukcapil)
                .id16(m.nik)
                .id16(fam.kk)
                .with(name.title.is_some(), |o| Gen::write_name(o, &name))
                .raw(if m.female { b"P" } else { b"L" })
                .date(m.birth)
                .raw(if m.moved { b"" } else { kel_code })
                .yes_no(m.ktp)
                .yes_no(!m.moved)
                .raw(m.rel.as_bytes());
            self.out.end(&mut self.rng);
        }
        for e in &fam.enrol {
            let m = &fam.members[e.who];
            let nisn = self.ids.nisn(m.birth);
            if let Some((school, kind, grade)) = e.prev {
                self.enrolment_row(m.nik, nisn, school, kind, grade, false);
            }
            self.enrolment_row(m.nik, nisn, e.school, e.kind, e.grade, e.active);
            if e.active {
                self.st.candidates += 1;
            }
            if let Some(s) = e.sanction {
                let category = *self.rng.pick(names::SANCTIONS);
                let npsn = u64::from(self.plan.schools[e.school as usize].npsn);
                self.out
                    .begin(F::Sanctions)
                    .id16(m.nik)
                    .padded(npsn, 8)
                    .text(category)
                    .date(s.since)
                    .opt_date(s.lifted);
                self.out.end(&mut self.rng);
            }
            if e.lurah {
                self.letter(m.nik);
            }
        }
        for &who in &fam.lurah_only {
            self.st.candidates += 1;
            self.letter(fam.members[who].nik);
        }
        if let Some((lo, hi, outside)) = fam.dtks {
            let listed = self.day(Day::ymd(2012, 1, 2), Day::ymd(2024, 6, 30));
            let decile = self.rng.range(i64::from(lo), i64::from(hi)) as u64;
            let region = match outside {
                Some(code) => code,
                None => self.plain.parse().expect("numeric kelurahan code"),
            };
            for m in &fam.members {
                let since = listed.max(m.birth.plus(30)).min(Day::ymd(2024, 12, 31)).max(m.birth);
                self.out.begin(F::Dtks).id16(m.nik).id16(fam.kk).num(decile).date(since).padded(region, 10);
                self.out.end(&mut self.rng);
            }
        }
        for (&who, valid) in
            fam.sktm_valid.iter().map(|w| (w, true)).chain(fam.sktm_expired.iter().map(|w| (w, false)))
        {
            let (issued, valid_until) = if valid {
                let i = self.day(Day::ymd(2024, 7, 20), Day::ymd(2024, 12, 20));
                (i, i.plus(if self.rng.chance(0.5) { 182 } else { 365 }))
            } else {
                let i = self.day(Day::ymd(2023, 1, 10), Day::ymd(2023, 12, 20));
                (i, i.plus(if self.rng.chance(0.5) { 182 } else { 365 }))
            };
            self.sktm_seq += 1;
            let seq = self.sktm_seq;
            let plain = self.plain.clone();
            self.out
                .begin(F::Sktm)
                .id16(fam.members[who].nik)
                .with(false, |o| {
                    o.extend_from_slice(b"SKTM/");
                    o.extend_from_slice(plain.as_bytes());
                    o.push(b'/');
                    crate::alloc::push_u64(o, issued.year() as u64);
                    o.push(b'/');
                    crate::alloc::push_padded(o, u64::from(seq), 5);
                })
                .date(issued)
                .date(valid_until);
            self.out.end(&mut self.rng);
        }
        for &(who, wage, ktp) in &fam.wages {
            let period = if self.rng.chance(0.6) { Day::ymd(2024, 11, 1) } else { Day::ymd(2024, 12, 1) };
            self.out
                .begin(F::Wages)
                .id16(fam.members[who].nik)
                .id16(fam.kk)
                .yes_no(ktp)
                .num(wage as u64)
                .month(period);
            self.out.end(&mut self.rng);
        }
        if let Some((who, class, active)) = fam.driver {
            self.out
                .begin(F::Transjakarta)
                .id16(fam.members[who].nik)
                .id16(fam.kk)
                .raw(class.as_bytes())
                .yes_no(active);
            self.out.end(&mut self.rng);
        }
        if let Some(home) = &fam.care_home {
            for e in &fam.enrol {
                let m = &fam.members[e.who];
                let since = self.day(m.birth.plus(200), Day::ymd(2024, 12, 15)).max(m.birth.plus(200));
                self.out.begin(F::Foster).id16(m.nik).text(home).date(since);
                self.out.end(&mut self.rng);
            }
            for m in fam.members.iter().skip(2) {
                if fam.enrol.iter().all(|e| fam.members[e.who].nik != m.nik) {
                    let since = m.birth.plus(self.rng.range(100, 900) as i32).min(Day::ymd(2024, 12, 15));
                    self.out.begin(F::Foster).id16(m.nik).text(home).date(since);
                    self.out.end(&mut self.rng);
                }
            }
        }
        for v in &fam.vehicles {
            self.vehicle_rows(fam.members[v.owner].nik, *v);
        }
        if let Some(njop) = fam.njop {
            let as_of = self.day(Day::ymd(2024, 1, 1), Day::ymd(2024, 12, 1));
            self.out.begin(F::Njop).id16(fam.kk).num(njop as u64).date(as_of);
            self.out.end(&mut self.rng);
        }
        for &(who, occ) in &fam.occupations {
            let as_of = self.day(Day::ymd(2022, 1, 3), Day::ymd(2024, 12, 1));
            self.out
                .begin(F::Occupations)
                .id16(fam.members[who].nik)
                .id16(fam.kk)
                .raw(occ.as_bytes())
                .date(as_of);
            self.out.end(&mut self.rng);
        }
    }

    fn letter(&mut self, nik: u64) {
        self.letter_seq += 1;
        let seq = self.letter_seq;
        let issued = self.day(Day::ymd(2024, 6, 1), Day::ymd(2024, 12, 15));
        let plain = self.plain.clone();
        let code = self.kel.code;
        self.out
            .begin(F::Lurah)
            .id16(nik)
            .raw(code.as_bytes())
            .with(false, |o| {
                o.extend_from_slice(b"REK-ATS/");
                o.extend_from_slice(plain.as_bytes());
                o.extend_from_slice(b"/2024/");
                crate::alloc::push_padded(o, u64::from(seq), 4);
            })
            .date(issued);
        self.out.end(&mut self.rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_and_births_agree() {
        for g in 1..=12u8 {
            let (from, to) = grade_births(g, 0);
            assert_eq!(grade_of(from), i32::from(g));
            assert_eq!(grade_of(to), i32::from(g));
        }
        let (from, _) = grade_births(1, 0);
        assert!(from.age_on(REF) >= 6);
        let (_, to) = grade_births(12, 2);
        assert!(to.age_on(REF) <= 21);
        assert_eq!(crate::plan::cell(Kind::Sd, NEGERI), 0);
    }
}
