//! Identifiers and small value types, parsed once at the edge.
//!
//! Every constructor is fallible and every error says which part of the input is wrong,
//! so an operator can fix a row without guessing. Functions elsewhere take `Nik`, never
//! `String`.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::regions::{self, RegionLevel};

/// Indonesian province codes (Kemendagri), used to check the first two digits of a NIK
/// or family card number from outside Jakarta. Includes the four Papua provinces of 2022.
const PROVINCES: [u8; 38] = [
    11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65, 71, 72,
    73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96,
];

/// Jakarta's province code.
pub const JAKARTA: u8 = 31;

/// Shows a NIK or KK number in error messages without disclosing all of it.
fn shown(raw: &str) -> String {
    let head: String = raw.chars().take(6).collect();
    if raw.chars().count() > 6 {
        format!("{head}…")
    } else {
        head
    }
}

fn digits<const N: usize>(raw: &str) -> Result<[u8; N], DigitsError> {
    let len = raw.chars().count();
    if len != N {
        return Err(DigitsError::Length { expected: N, got: len });
    }
    let mut out = [0u8; N];
    for (i, c) in raw.chars().enumerate() {
        out[i] = c.to_digit(10).ok_or(DigitsError::NotDigit { position: i + 1, found: c })? as u8;
    }
    Ok(out)
}

#[derive(Debug)]
enum DigitsError {
    Length { expected: usize, got: usize },
    NotDigit { position: usize, found: char },
}

impl fmt::Display for DigitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigitsError::Length { expected, got } => {
                write!(f, "must be {expected} digits, got {got} characters")
            }
            DigitsError::NotDigit { position, found } => {
                write!(f, "character {position} ({found:?}) is not a digit")
            }
        }
    }
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0, |acc, &x| acc * 10 + u32::from(x))
}

/// Checks the 6-digit region prefix shared by NIK and family card numbers: the province
/// must exist; inside Jakarta the city and kecamatan must be in the official list.
fn check_region_prefix(d: &[u8]) -> Result<(), String> {
    let province = num(&d[0..2]) as u8;
    if !PROVINCES.contains(&province) {
        return Err(format!("province code {province:02} does not exist"));
    }
    let regency = num(&d[2..4]);
    let district = num(&d[4..6]);
    if province == JAKARTA {
        if !regions::is_kota(3100 + regency) {
            return Err(format!("31.{regency:02} is not a Jakarta city or regency"));
        }
        if !regions::is_kecamatan(310_000 + regency * 100 + district) {
            return Err(format!("kecamatan 31.{regency:02}.{district:02} does not exist in Jakarta"));
        }
    } else {
        if regency == 0 {
            return Err("regency code 00 does not exist".into());
        }
        if district == 0 {
            return Err("district code 00 does not exist".into());
        }
    }
    Ok(())
}

/// Parses a strict `YYYY-MM-DD` date, the one format our files and APIs use. Much faster
/// than a general format parser, which matters for files of millions of rows.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(n(0..4)? as i32, n(5..7)?, n(8..10)?)
}

/// A Nomor Induk Kependudukan: region of first registration (6 digits), birth date
/// DDMMYY with 40 added to the day for women, serial 0001 to 9999.
///
/// The prefix says where the NIK was first issued, not where the person lives: a Jakarta
/// resident may hold a NIK from elsewhere, so residency never comes from here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nik(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NIK {shown}: {problem}")]
pub struct NikError {
    shown: String,
    problem: String,
}

impl NikError {
    fn new(raw: &str, problem: impl Into<String>) -> Self {
        NikError { shown: shown(raw), problem: problem.into() }
    }
    /// What is wrong, without the NIK itself.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

/// Sex as encoded in a NIK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

impl Nik {
    pub fn parse(raw: &str) -> Result<Nik, NikError> {
        let d = digits::<16>(raw).map_err(|e| NikError::new(raw, e.to_string()))?;
        check_region_prefix(&d).map_err(|e| NikError::new(raw, e))?;
        let day = num(&d[6..8]);
        let month = num(&d[8..10]);
        let yy = num(&d[10..12]) as i32;
        let real_day = match day {
            1..=31 => day,
            41..=71 => day - 40,
            _ => {
                return Err(NikError::new(
                    raw,
                    format!("day {day:02} is not a date (01-31, or 41-71 for women)"),
                ))
            }
        };
        if !(1..=12).contains(&month) {
            return Err(NikError::new(raw, format!("month {month:02} is not a month")));
        }
        // The century is not encoded: accept a day that exists in either.
        let exists = |y| NaiveDate::from_ymd_opt(y, month, real_day).is_some();
        if !exists(1900 + yy) && !exists(2000 + yy) {
            return Err(NikError::new(raw, format!("day {real_day:02}-{month:02}-{yy:02} is not a date")));
        }
        if num(&d[12..16]) == 0 {
            return Err(NikError::new(raw, "serial 0000 is not allowed (0001 to 9999)"));
        }
        Ok(Nik(u64::from(num(&d[0..8])) * 100_000_000 + u64::from(num(&d[8..16]))))
    }

    fn part(self, from: u32, len: u32) -> u32 {
        ((self.0 / 10u64.pow(16 - from - len)) % 10u64.pow(len)) as u32
    }

    /// The 6-digit region of first registration, e.g. `317101`.
    pub fn region_prefix(self) -> u32 {
        self.part(0, 6)
    }
    pub fn province(self) -> u8 {
        self.part(0, 2) as u8
    }
    pub fn sex(self) -> Sex {
        if self.part(6, 2) > 40 {
            Sex::Female
        } else {
            Sex::Male
        }
    }
    /// Day, month and two-digit year of birth as encoded.
    pub fn birth_dmy(self) -> (u32, u32, u32) {
        let day = self.part(6, 2);
        (if day > 40 { day - 40 } else { day }, self.part(8, 2), self.part(10, 2))
    }
    /// The encoded birth date in the latest century that puts it on or before `today`.
    pub fn birth_date(self, today: NaiveDate) -> Option<NaiveDate> {
        let (d, m, yy) = self.birth_dmy();
        let century = today.year() / 100 * 100;
        [century, century - 100]
            .into_iter()
            .filter_map(|c| NaiveDate::from_ymd_opt(c + yy as i32, m, d))
            .find(|date| *date <= today)
    }
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// A NIK for public display: region and serial hidden.
    pub fn masked(self) -> String {
        let s = self.to_string();
        format!("{}**********{}", &s[..4], &s[14..])
    }
}

impl fmt::Display for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}", self.0)
    }
}

impl fmt::Debug for Nik {
    // Debug output ends up in logs: never the whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nik({})", self.masked())
    }
}

impl FromStr for Nik {
    type Err = NikError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nik::parse(s)
    }
}

/// A family card (Kartu Keluarga) number: 16 digits with the same region prefix as a NIK.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KkNumber(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("family card number {shown}: {problem}")]
pub struct KkError {
    shown: String,
    problem: String,
}

impl KkNumber {
    pub fn parse(raw: &str) -> Result<KkNumber, KkError> {
        let err = |problem: String| KkError { shown: shown(raw), problem };
        let d = digits::<16>(raw).map_err(|e| err(e.to_string()))?;
        check_region_prefix(&d).map_err(err)?;
        Ok(KkNumber(u64::from(num(&d[0..8])) * 100_000_000 + u64::from(num(&d[8..16]))))
    }
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for KkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}", self.0)
    }
}

impl fmt::Debug for KkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KkNumber({}…)", &self.to_string()[..6])
    }
}

/// Nomor Pokok Sekolah Nasional: the 8-digit national school number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Npsn(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NPSN {raw:?}: {problem}")]
pub struct NpsnError {
    raw: String,
    problem: String,
}

impl Npsn {
    pub fn parse(raw: &str) -> Result<Npsn, NpsnError> {
        let d = digits::<8>(raw)
            .map_err(|e| NpsnError { raw: raw.chars().take(20).collect(), problem: e.to_string() })?;
        Ok(Npsn(num(&d)))
    }
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Npsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

/// A Jakarta region code from the official list: a city, kecamatan or kelurahan.
/// Accepts the dotted form `31.71.01.1001` or the plain digits `3171011001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode {
    index: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region code {raw:?}: {problem}")]
pub struct RegionError {
    raw: String,
    problem: String,
}

impl RegionCode {
    pub fn parse(raw: &str) -> Result<RegionCode, RegionError> {
        let err =
            |problem: &str| RegionError { raw: raw.chars().take(20).collect(), problem: problem.into() };
        let dotted = if raw.contains('.') {
            raw.to_string()
        } else {
            if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("expected digits like 3171011001 or 31.71.01.1001"));
            }
            let cuts = [2, 4, 6, 10];
            if !cuts.contains(&raw.len()) {
                return Err(err("expected 2, 4, 6 or 10 digits"));
            }
            let mut out = String::new();
            let mut start = 0;
            for cut in cuts.into_iter().take_while(|c| *c <= raw.len()) {
                if start > 0 {
                    out.push('.');
                }
                out.push_str(&raw[start..cut]);
                start = cut;
            }
            out
        };
        match regions::find(&dotted) {
            Some(index) => Ok(RegionCode { index }),
            None if !dotted.starts_with("31") => Err(err("not a Jakarta region (province 31)")),
            None => Err(err("not in the official Jakarta region list")),
        }
    }
    pub fn code(self) -> &'static str {
        regions::all()[self.index as usize].code
    }
    pub fn name(self) -> &'static str {
        regions::all()[self.index as usize].name
    }
    pub fn level(self) -> RegionLevel {
        regions::all()[self.index as usize].level
    }
    /// The region one level up (`None` for the province).
    pub fn parent(self) -> Option<RegionCode> {
        let parent = regions::all()[self.index as usize].parent?;
        regions::find(parent).map(|index| RegionCode { index })
    }
    /// The enclosing region at `level`, or `None` if this region is above it.
    pub fn ancestor(self, level: RegionLevel) -> Option<RegionCode> {
        let mut at = self;
        loop {
            if at.level() == level {
                return Some(at);
            }
            at = at.parent()?;
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The level of an education unit, as the programme pays it.
///
/// Madrasahs (MI, MTs, MA) are paid as their general-school equivalent. Special schools
/// are paid at the rate of their stage (SDLB, SMPLB, SMALB) and reported together as SLB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "SD")]
    Sd,
    #[serde(rename = "SMP")]
    Smp,
    #[serde(rename = "SMA")]
    Sma,
    #[serde(rename = "SMK")]
    Smk,
    #[serde(rename = "SDLB")]
    Sdlb,
    #[serde(rename = "SMPLB")]
    Smplb,
    #[serde(rename = "SMALB")]
    Smalb,
    #[serde(rename = "PKBM")]
    Pkbm,
    #[serde(rename = "LKP")]
    Lkp,
    /// University programmes (KJMU): diploma three, applied bachelor, bachelor.
    #[serde(rename = "D3")]
    D3,
    #[serde(rename = "D4")]
    D4,
    #[serde(rename = "S1")]
    S1,
}

/// The reporting categories of the summaries: seven school levels (KJP Plus), then the
/// university programmes (KJMU).
pub const REPORT_LEVELS: [&str; 10] = ["SD", "SMP", "SMA", "SMK", "SLB", "PKBM", "LKP", "D3", "D4", "S1"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("level {raw:?}: {problem}")]
pub struct LevelError {
    raw: String,
    problem: String,
}

impl Level {
    pub const ALL: [Level; 12] = [
        Level::Sd,
        Level::Smp,
        Level::Sma,
        Level::Smk,
        Level::Sdlb,
        Level::Smplb,
        Level::Smalb,
        Level::Pkbm,
        Level::Lkp,
        Level::D3,
        Level::D4,
        Level::S1,
    ];

    pub fn parse(raw: &str) -> Result<Level, LevelError> {
        let err = |problem: &str| LevelError { raw: raw.chars().take(20).collect(), problem: problem.into() };
        Ok(match raw.trim().to_ascii_uppercase().as_str() {
            "SD" | "MI" | "SD/MI" => Level::Sd,
            "SMP" | "MTS" | "SMP/MTS" => Level::Smp,
            "SMA" | "MA" | "SMA/MA" => Level::Sma,
            "SMK" | "MAK" => Level::Smk,
            "SDLB" => Level::Sdlb,
            "SMPLB" => Level::Smplb,
            "SMALB" => Level::Smalb,
            "PKBM" => Level::Pkbm,
            "LKP" => Level::Lkp,
            "D3" => Level::D3,
            "D4" => Level::D4,
            "S1" => Level::S1,
            "SLB" => return Err(err("SLB is paid at the rate of its stage: give SDLB, SMPLB or SMALB")),
            _ => {
                return Err(err(
                    "expected SD, MI, SMP, MTs, SMA, MA, SMK, SDLB, SMPLB, SMALB, PKBM, LKP, D3, D4 or S1",
                ))
            }
        })
    }
    /// The canonical code, as used in the policy file and in files we write.
    pub fn code(self) -> &'static str {
        match self {
            Level::Sd => "SD",
            Level::Smp => "SMP",
            Level::Sma => "SMA",
            Level::Smk => "SMK",
            Level::Sdlb => "SDLB",
            Level::Smplb => "SMPLB",
            Level::Smalb => "SMALB",
            Level::Pkbm => "PKBM",
            Level::Lkp => "LKP",
            Level::D3 => "D3",
            Level::D4 => "D4",
            Level::S1 => "S1",
        }
    }
    /// The reporting category: SD (with MI), SMP (with MTs), SMA (with MA), SMK, SLB, PKBM, LKP.
    pub fn report(self) -> &'static str {
        match self {
            Level::Sdlb | Level::Smplb | Level::Smalb => "SLB",
            other => other.code(),
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Level {
    type Err = LevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::parse(s)
    }
}

/// Public (negeri) or private (swasta) school: private schools get the fee add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchoolType {
    Negeri,
    Swasta,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("school type {0:?}: expected negeri or swasta")]
pub struct SchoolTypeError(String);

impl SchoolType {
    pub fn parse(raw: &str) -> Result<SchoolType, SchoolTypeError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "negeri" | "public" | "n" => Ok(SchoolType::Negeri),
            "swasta" | "private" | "s" => Ok(SchoolType::Swasta),
            _ => Err(SchoolTypeError(raw.chars().take(20).collect())),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            SchoolType::Negeri => "negeri",
            SchoolType::Swasta => "swasta",
        }
    }
}

/// An amount of money in whole rupiah. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rupiah(i64);

impl Rupiah {
    pub const ZERO: Rupiah = Rupiah(0);
    pub const fn new(amount: i64) -> Rupiah {
        Rupiah(amount)
    }
    pub const fn get(self) -> i64 {
        self.0
    }
    pub fn checked_add(self, other: Rupiah) -> Option<Rupiah> {
        self.0.checked_add(other.0).map(Rupiah)
    }
    pub fn checked_mul(self, n: i64) -> Option<Rupiah> {
        self.0.checked_mul(n).map(Rupiah)
    }
}

impl std::ops::Add for Rupiah {
    type Output = Rupiah;
    fn add(self, other: Rupiah) -> Rupiah {
        Rupiah(self.0 + other.0)
    }
}

impl std::iter::Sum for Rupiah {
    fn sum<I: Iterator<Item = Rupiah>>(iter: I) -> Rupiah {
        Rupiah(iter.map(|r| r.0).sum())
    }
}

impl fmt::Display for Rupiah {
    /// Indonesian style: `Rp 1.234.567`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push('.');
            }
            grouped.push(c);
        }
        write!(f, "{}Rp {grouped}", if self.0 < 0 { "-" } else { "" })
    }
}

/// A programme the engine runs. Each has its own policy file and its own stages; the
/// sources that feed its facts are joined by a programme module of the import crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Programme {
    /// Kartu Jakarta Pintar Plus: school children.
    #[default]
    KjpPlus,
    /// Kartu Jakarta Mahasiswa Unggul: university students.
    Kjmu,
}

impl Programme {
    pub const ALL: [Programme; 2] = [Programme::KjpPlus, Programme::Kjmu];

    /// The id used in policy files (`[programme] id`) and stage names.
    pub fn id(self) -> &'static str {
        match self {
            Programme::KjpPlus => "kjp-plus",
            Programme::Kjmu => "kjmu",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Programme::KjpPlus => "KJP Plus",
            Programme::Kjmu => "KJMU",
        }
    }

    pub fn parse(raw: &str) -> Option<Programme> {
        let raw = raw.trim().to_ascii_lowercase();
        Programme::ALL.into_iter().find(|p| p.id() == raw || p.name().to_ascii_lowercase() == raw)
    }
}

impl fmt::Display for Programme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A stage (tahap) of a programme: a year and its first or second half. Written
/// `2025/1` for KJP Plus and `kjmu/2025/1` for KJMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stage {
    programme: Programme,
    year: u16,
    half: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage {raw:?}: {problem}")]
pub struct StageError {
    raw: String,
    problem: String,
}

impl Stage {
    /// A KJP Plus stage.
    pub fn new(year: i32, half: u8) -> Result<Stage, StageError> {
        Stage::of(Programme::KjpPlus, year, half)
    }
    pub fn of(programme: Programme, year: i32, half: u8) -> Result<Stage, StageError> {
        let raw = format!("{year}/{half}");
        if !(2012..=2100).contains(&year) {
            return Err(StageError { raw, problem: "year must be between 2012 and 2100".into() });
        }
        if half != 1 && half != 2 {
            return Err(StageError { raw, problem: "the stage is 1 or 2".into() });
        }
        Ok(Stage { programme, year: year as u16, half })
    }
    /// Parses `2025/1` (also `2025-1`), a KJP Plus stage, or `kjmu/2025/1`.
    pub fn parse(raw: &str) -> Result<Stage, StageError> {
        let err = |problem: &str| StageError { raw: raw.chars().take(20).collect(), problem: problem.into() };
        let (programme, rest) = match raw.split_once('/') {
            Some((p, rest)) if p.chars().any(|c| c.is_ascii_alphabetic()) => (
                Programme::parse(p).ok_or_else(|| err("unknown programme: expected kjp-plus or kjmu"))?,
                rest,
            ),
            _ => (Programme::KjpPlus, raw),
        };
        let (y, h) = rest.split_once(['/', '-']).ok_or_else(|| err("expected YEAR/STAGE, e.g. 2025/1"))?;
        let year: i32 = y.trim().parse().map_err(|_| err("the year is not a number"))?;
        let half: u8 = h.trim().parse().map_err(|_| err("the stage is 1 or 2"))?;
        Stage::of(programme, year, half)
    }
    pub fn programme(self) -> Programme {
        self.programme
    }
    pub fn year(self) -> i32 {
        i32::from(self.year)
    }
    pub fn half(self) -> u8 {
        self.half
    }
    /// The six benefit months: January to June for stage 1, July to December for stage 2.
    pub fn benefit_months(self) -> [NaiveDate; 6] {
        let first = if self.half == 1 { 1 } else { 7 };
        std::array::from_fn(|i| {
            NaiveDate::from_ymd_opt(self.year(), first + i as u32, 1).expect("months 1-12 exist")
        })
    }
    /// The first day of the first benefit month: the reference date of the stage.
    pub fn start(self) -> NaiveDate {
        self.benefit_months()[0]
    }
    /// The stage before this one, of the same programme.
    pub fn previous(self) -> Stage {
        if self.half == 2 {
            Stage { half: 1, ..self }
        } else {
            Stage { year: self.year - 1, half: 2, ..self }
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.programme {
            Programme::KjpPlus => write!(f, "{}/{}", self.year, self.half),
            other => write!(f, "{}/{}/{}", other.id(), self.year, self.half),
        }
    }
}

impl FromStr for Stage {
    type Err = StageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nik_parts() {
        let nik = Nik::parse("3171014403120001").unwrap();
        assert_eq!(nik.region_prefix(), 317101);
        assert_eq!(nik.sex(), Sex::Female);
        assert_eq!(nik.birth_dmy(), (4, 3, 12));
        let today = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(nik.birth_date(today), NaiveDate::from_ymd_opt(2012, 3, 4));
        assert_eq!(nik.to_string(), "3171014403120001");
        assert_eq!(nik.masked(), "3171**********01");
        assert!(!format!("{nik:?}").contains("31710144"));
    }

    #[test]
    fn nik_errors_name_the_part() {
        let cases = [
            ("317101440312000", "must be 16 digits, got 15 characters"),
            ("31710144031200a1", "character 15 ('a') is not a digit"),
            ("9971014403120001", "province code 99 does not exist"),
            ("3179014403120001", "31.79 is not a Jakarta city or regency"),
            ("3171994403120001", "kecamatan 31.71.99 does not exist in Jakarta"),
            ("3171013503120001", "day 35 is not a date (01-31, or 41-71 for women)"),
            ("3171017203120001", "day 72 is not a date (01-31, or 41-71 for women)"),
            ("3171010413120001", "month 13 is not a month"),
            ("3171013102120001", "day 31-02-12 is not a date"),
            ("3171010403120000", "serial 0000 is not allowed (0001 to 9999)"),
            ("3201000403120001", "district code 00 does not exist"),
        ];
        for (raw, problem) in cases {
            let err = Nik::parse(raw).unwrap_err();
            assert_eq!(err.problem(), problem, "{raw}");
            assert!(err.to_string().starts_with("NIK "), "{err}");
        }
    }

    #[test]
    fn nik_feb_29_needs_a_leap_year_in_some_century() {
        assert!(Nik::parse("3171012902000001").is_ok()); // 2000 is leap
        assert!(Nik::parse("3171016902120001").is_ok()); // a woman born 29-02-2012
        assert!(Nik::parse("3171012902010001").is_err());
    }

    #[test]
    fn non_jakarta_nik_is_valid() {
        // Residency never comes from the prefix: a Bogor-issued NIK is a valid NIK.
        let nik = Nik::parse("3201011506100001").unwrap();
        assert_eq!(nik.province(), 32);
    }

    #[test]
    fn region_codes() {
        let kel = RegionCode::parse("31.71.01.1001").unwrap();
        assert_eq!(kel.name(), "Gambir");
        assert_eq!(kel.level(), RegionLevel::Kelurahan);
        assert_eq!(RegionCode::parse("3171011001").unwrap(), kel);
        assert_eq!(kel.ancestor(RegionLevel::Kota).unwrap().code(), "31.71");
        assert!(RegionCode::parse("32.01").is_err());
        assert!(RegionCode::parse("31.71.01.9999").unwrap_err().to_string().contains("official"));
    }

    #[test]
    fn levels() {
        assert_eq!(Level::parse("MTs").unwrap(), Level::Smp);
        assert_eq!(Level::parse("sd/mi").unwrap(), Level::Sd);
        assert_eq!(Level::Smalb.report(), "SLB");
        assert!(Level::parse("SLB").unwrap_err().to_string().contains("SDLB"));
        assert!(Level::parse("TK").is_err());
    }

    #[test]
    fn rupiah_display() {
        assert_eq!(Rupiah::new(5_396_761).to_string(), "Rp 5.396.761");
        assert_eq!(Rupiah::new(100).to_string(), "Rp 100");
        assert_eq!(Rupiah::new(-1_000).to_string(), "-Rp 1.000");
    }

    #[test]
    fn stages() {
        let s = Stage::parse("2025/1").unwrap();
        assert_eq!(s.benefit_months()[5], NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
        assert_eq!(Stage::parse("2025-2").unwrap().start(), NaiveDate::from_ymd_opt(2025, 7, 1).unwrap());
        assert_eq!(s.previous().to_string(), "2024/2");
        assert!(Stage::parse("2025/3").is_err());
        assert!(Stage::parse("2025").is_err());
        let k = Stage::parse("kjmu/2025/1").unwrap();
        assert_eq!(
            (k.programme(), k.to_string(), k.previous().to_string()),
            (Programme::Kjmu, "kjmu/2025/1".into(), "kjmu/2024/2".into())
        );
        assert_eq!(Stage::parse("KJMU/2024-2").unwrap().to_string(), "kjmu/2024/2");
        assert_eq!(Stage::parse("kjp-plus/2025/1").unwrap(), s);
        assert_ne!(k, s, "the same half-year of two programmes is two stages");
        let e = Stage::parse("kjmx/2025/1").unwrap_err().to_string();
        assert!(e.contains("unknown programme"), "{e}");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in ["2023-02-29", "2025-1-01", "2025/01/01", "01-01-2025", "2025-01-0a", "", "2025-13-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn npsn() {
        assert_eq!(Npsn::parse("20100001").unwrap().to_string(), "20100001");
        assert!(Npsn::parse("2010001").unwrap_err().to_string().contains("8 digits"));
    }
}
