//! The agency file formats of `docs/formats.md`: one record type per source, parsed from
//! CSV in two explicit stages (raw fields, then domain types). Every bad row is collected
//! with its line, column and reason; parsing never stops at the first.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use chrono::NaiveDate;
use kjp_domain::ids::{parse_date, Level, SchoolType};
use kjp_domain::{KkNumber, Nik, Npsn, RegionCode};

/// Every source the stage run reads, with its file name and header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Dukcapil,
    Dtks,
    Sktm,
    Dapodik,
    Emis,
    Schools,
    Transjakarta,
    Wages,
    Foster,
    Lurah,
    Bapenda,
    Samsat,
    Njop,
    Occupations,
    Sanctions,
    // University students (KJMU).
    Pddikti,
    Graduates,
    Scholarships,
}

impl Source {
    pub const ALL: [Source; 18] = [
        Source::Dukcapil,
        Source::Dtks,
        Source::Sktm,
        Source::Dapodik,
        Source::Emis,
        Source::Schools,
        Source::Transjakarta,
        Source::Wages,
        Source::Foster,
        Source::Lurah,
        Source::Bapenda,
        Source::Samsat,
        Source::Njop,
        Source::Occupations,
        Source::Sanctions,
        Source::Pddikti,
        Source::Graduates,
        Source::Scholarships,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::Dukcapil => "dukcapil",
            Source::Dtks => "dtks",
            Source::Sktm => "sktm",
            Source::Dapodik => "dapodik",
            Source::Emis => "emis",
            Source::Schools => "schools",
            Source::Transjakarta => "transjakarta",
            Source::Wages => "wages",
            Source::Foster => "foster",
            Source::Lurah => "lurah",
            Source::Bapenda => "bapenda",
            Source::Samsat => "samsat",
            Source::Njop => "njop",
            Source::Occupations => "occupations",
            Source::Sanctions => "sanctions",
            Source::Pddikti => "pddikti",
            Source::Graduates => "graduates",
            Source::Scholarships => "scholarships",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.csv", self.name())
    }

    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The exact header row the file must have.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            Source::Dukcapil => &[
                "nik",
                "kk",
                "name",
                "sex",
                "birth_date",
                "kelurahan",
                "ktp_dki",
                "domiciled_dki",
                "relationship",
            ],
            Source::Dtks => &["nik", "kk", "decile", "listed_since", "region"],
            Source::Sktm => &["nik", "number", "issued", "valid_until"],
            Source::Dapodik | Source::Emis => &["nik", "nisn", "npsn", "level", "grade", "active"],
            Source::Schools => &["npsn", "name", "level", "status", "kelurahan"],
            Source::Transjakarta => &["nik", "kk", "vehicle_class", "active"],
            Source::Wages => &["nik", "kk", "ktp_dki", "monthly_wage", "period"],
            Source::Foster => &["nik", "care_home", "since"],
            Source::Lurah => &["nik", "kelurahan", "letter_number", "issued"],
            Source::Bapenda => &["owner_nik", "plate", "vehicle_kind", "as_of"],
            Source::Samsat => &["plate", "owner_nik", "status", "status_date"],
            Source::Njop => &["kk", "njop", "as_of"],
            Source::Occupations => &["nik", "kk", "occupation", "as_of"],
            Source::Sanctions => &["nik", "npsn", "category", "since", "lifted"],
            Source::Pddikti => &[
                "nik",
                "university",
                "university_status",
                "university_accreditation",
                "programme",
                "level",
                "programme_accreditation",
                "priority_field",
                "admission",
                "semester",
                "gpa",
                "status",
            ],
            Source::Graduates => &["nik", "npsn", "graduation_year"],
            Source::Scholarships => &["nik", "funder", "name", "from", "to"],
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One bad row: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    /// The column's name, or empty for a problem with the whole row.
    pub column: &'static str,
    pub reason: String,
}

/// The file as a whole cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{file}: the header is `{found}`; expected `{expected}`")]
    Header { file: String, found: String, expected: String },
    #[error("{file}: the file is empty; expected the header `{expected}`")]
    Empty { file: String, expected: String },
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
}

/// Good records and the rows left out.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    pub records: Vec<T>,
    pub errors: Vec<RowError>,
    /// Data rows read (good and bad), the header not counted.
    pub rows: u64,
}

/// Typed access to one CSV row's fields, with errors that name the column.
#[derive(Debug)]
pub struct Fields<'a> {
    record: &'a csv::ByteRecord,
    header: &'static [&'static str],
}

/// A field's value, or the column and why it is wrong.
pub type FieldResult<T> = Result<T, (&'static str, String)>;

impl Fields<'_> {
    fn raw(&self, i: usize) -> FieldResult<&str> {
        let col = self.header[i];
        std::str::from_utf8(self.record.get(i).unwrap_or_default())
            .map(str::trim)
            .map_err(|_| (col, "not valid UTF-8".to_string()))
    }
    fn required(&self, i: usize) -> FieldResult<&str> {
        let v = self.raw(i)?;
        if v.is_empty() {
            return Err((self.header[i], "is empty".into()));
        }
        Ok(v)
    }
    pub fn text(&self, i: usize) -> FieldResult<String> {
        self.required(i).map(str::to_string)
    }
    /// The trimmed text, which may be empty.
    pub fn optional_text(&self, i: usize) -> FieldResult<&str> {
        self.raw(i)
    }
    /// A bank account number: 10 to 16 digits.
    pub fn account_number(&self, i: usize) -> FieldResult<String> {
        let v = self.required(i)?;
        if !(10..=16).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err((self.header[i], format!("{v:?} is not an account number (10 to 16 digits)")));
        }
        Ok(v.to_string())
    }
    pub fn nik(&self, i: usize) -> FieldResult<Nik> {
        Nik::parse(self.required(i)?).map_err(|e| (self.header[i], e.to_string()))
    }
    pub fn kk(&self, i: usize) -> FieldResult<KkNumber> {
        KkNumber::parse(self.required(i)?).map_err(|e| (self.header[i], e.to_string()))
    }
    pub fn npsn(&self, i: usize) -> FieldResult<Npsn> {
        Npsn::parse(self.required(i)?).map_err(|e| (self.header[i], e.to_string()))
    }
    pub fn date(&self, i: usize) -> FieldResult<NaiveDate> {
        let v = self.required(i)?;
        parse_date(v).ok_or_else(|| (self.header[i], format!("{v:?} is not a date (expected YYYY-MM-DD)")))
    }
    pub fn optional_date(&self, i: usize) -> FieldResult<Option<NaiveDate>> {
        if self.raw(i)?.is_empty() {
            return Ok(None);
        }
        self.date(i).map(Some)
    }
    pub fn yes_no(&self, i: usize) -> FieldResult<bool> {
        match self.required(i)?.to_ascii_lowercase().as_str() {
            "true" | "1" | "y" => Ok(true),
            "false" | "0" | "n" => Ok(false),
            other => Err((self.header[i], format!("{other:?} is not true/false, 1/0 or Y/N"))),
        }
    }
    pub fn rupiah(&self, i: usize) -> FieldResult<i64> {
        let v = self.required(i)?;
        if !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 15 {
            return Err((self.header[i], format!("{v:?} is not a whole amount of rupiah (digits only)")));
        }
        v.parse().map_err(|_| (self.header[i], format!("{v:?} is not a number")))
    }
    pub fn number(&self, i: usize, range: std::ops::RangeInclusive<u32>) -> FieldResult<u32> {
        let v = self.required(i)?;
        match v.parse::<u32>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err((
                self.header[i],
                format!("{v:?} is not a number from {} to {}", range.start(), range.end()),
            )),
        }
    }
    pub fn region(&self, i: usize) -> FieldResult<RegionCode> {
        RegionCode::parse(self.required(i)?).map_err(|e| (self.header[i], e.to_string()))
    }
    pub fn optional_region(&self, i: usize) -> FieldResult<Option<RegionCode>> {
        if self.raw(i)?.is_empty() {
            return Ok(None);
        }
        self.region(i).map(Some)
    }
    pub fn level(&self, i: usize) -> FieldResult<Level> {
        Level::parse(self.required(i)?).map_err(|e| (self.header[i], e.to_string()))
    }
    pub fn choice<T: Copy>(&self, i: usize, choices: &[(&str, T)]) -> FieldResult<T> {
        let v = self.required(i)?;
        choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(v)).map(|(_, t)| *t).ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            (self.header[i], format!("{v:?} is not one of {}", names.join(", ")))
        })
    }
}

/// A record of one source.
pub trait Record: Sized + Send {
    const SOURCE: Source;
    /// What must be unique in the file: a later row with the same key is a duplicate.
    type Key: Eq + Hash + Send;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self>;
    fn key(&self) -> Self::Key;
}

/// Parses a whole file's bytes. A wrong header fails the file; bad rows are collected,
/// a row repeating an earlier row's key among them.
pub fn parse<T: Record>(file: &str, bytes: &[u8]) -> Result<Parsed<T>, FileError> {
    let source = T::SOURCE;
    let mut seen: HashMap<T::Key, u32> = HashMap::new();
    let (records, errors, rows) = read_rows(file, bytes, source.header(), |line, fields| {
        let r = T::parse(fields, line)?;
        match seen.entry(r.key()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                Err(("", format!("duplicate of line {} (same {})", first.get(), key_name(source))))
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(line);
                Ok(r)
            }
        }
    })?;
    Ok(Parsed { records, errors, rows })
}

/// The rows of a CSV file whose header must be exactly `header`: each good row as `row`
/// makes it, every bad one as a [`RowError`] with its line and column; data rows counted.
/// Used for the agency files ([`parse`]) and the bank's files.
pub fn read_rows<T>(
    file: &str,
    bytes: &[u8],
    expected: &'static [&'static str],
    mut row: impl FnMut(u32, &Fields) -> FieldResult<T>,
) -> Result<(Vec<T>, Vec<RowError>, u64), FileError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let header_ok = reader
        .read_byte_record(&mut record)
        .map_err(|e| FileError::Unreadable { file: file.into(), reason: e.to_string() })?;
    if !header_ok {
        return Err(FileError::Empty { file: file.into(), expected: expected.join(",") });
    }
    let found: Vec<String> = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if found.iter().map(String::as_str).ne(expected.iter().copied()) {
        return Err(FileError::Header {
            file: file.into(),
            found: found.join(","),
            expected: expected.join(","),
        });
    }
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut rows = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                rows += 1;
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError { line, column: "", reason: format!("unreadable row: {e}") });
                continue;
            }
        }
        rows += 1;
        let line = record.position().map_or(0, |p| p.line());
        // Our formats have no multi-line fields: a field with a line break is a quote that
        // was never closed, which swallowed the lines after it.
        let mut spanned =
            record.iter().map(|f| f.iter().filter(|b| **b == b'\n').count() as u64).sum::<u64>();
        if record.iter().next_back().is_some_and(|f| f.ends_with(b"\n")) {
            spanned = spanned.saturating_sub(1); // the file's last line break, swallowed too
        }
        if spanned > 0 {
            rows += spanned;
            errors.push(RowError {
                line,
                column: "",
                reason: format!(
                    "a quote opened on line {line} is never closed: lines {line} to {} were read as one field and left out",
                    line + spanned
                ),
            });
            continue;
        }
        if record.len() != expected.len() {
            errors.push(RowError {
                line,
                column: "",
                reason: format!(
                    "{} fields; expected {} ({})",
                    record.len(),
                    expected.len(),
                    expected.join(",")
                ),
            });
            continue;
        }
        let fields = Fields { record: &record, header: expected };
        match row(line as u32, &fields) {
            Ok(r) => records.push(r),
            Err((column, reason)) => errors.push(RowError { line, column, reason }),
        }
    }
    Ok((records, errors, rows))
}

fn key_name(source: Source) -> &'static str {
    match source {
        Source::Sktm => "number",
        Source::Schools => "npsn",
        Source::Lurah => "letter_number",
        Source::Bapenda | Source::Samsat => "plate",
        Source::Njop => "kk",
        Source::Sanctions => "nik and since",
        Source::Scholarships => "nik and from",
        _ => "nik",
    }
}

// ------------------------------------------------------------------------------ records

/// A member's relationship on the family card (status hubungan dalam keluarga, SHDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    Head,
    Husband,
    Wife,
    Child,
    Parent,
    Other,
}

impl Relationship {
    /// The head of the family or the head's spouse: a child's parent on the same card.
    pub fn is_parent(self) -> bool {
        matches!(self, Relationship::Head | Relationship::Husband | Relationship::Wife)
    }
}

#[derive(Debug, Clone)]
pub struct Person {
    pub nik: Nik,
    pub kk: KkNumber,
    pub name: String,
    pub birth_date: NaiveDate,
    pub kelurahan: Option<RegionCode>,
    pub ktp_dki: bool,
    pub domiciled_dki: bool,
    pub relationship: Relationship,
    pub line: u32,
}

impl Record for Person {
    const SOURCE: Source = Source::Dukcapil;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let nik = f.nik(0)?;
        let kk = f.kk(1)?;
        let name = f.text(2)?;
        f.choice(3, &[("L", ()), ("P", ())])?;
        Ok(Person {
            nik,
            kk,
            name,
            birth_date: f.date(4)?,
            kelurahan: f.optional_region(5)?,
            ktp_dki: f.yes_no(6)?,
            domiciled_dki: f.yes_no(7)?,
            relationship: f.choice(
                8,
                &[
                    ("kepala_keluarga", Relationship::Head),
                    ("suami", Relationship::Husband),
                    ("istri", Relationship::Wife),
                    ("anak", Relationship::Child),
                    ("orang_tua", Relationship::Parent),
                    ("famili_lain", Relationship::Other),
                ],
            )?,
            line,
        })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct DtksEntry {
    pub nik: Nik,
    pub kk: KkNumber,
    pub decile: u8,
    pub listed_since: NaiveDate,
    /// The DTKS address is in Jakarta (its region code starts with 31).
    pub address_in_jakarta: bool,
    pub line: u32,
}

impl Record for DtksEntry {
    const SOURCE: Source = Source::Dtks;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let region = f.required(4)?;
        let digits: String = region.chars().filter(|c| *c != '.').collect();
        if !matches!(digits.len(), 2 | 4 | 6 | 10) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(("region", format!("{region:?} is not a region code (2, 4, 6 or 10 digits)")));
        }
        Ok(DtksEntry {
            nik: f.nik(0)?,
            kk: f.kk(1)?,
            decile: f.number(2, 1..=10)? as u8,
            listed_since: f.date(3)?,
            address_in_jakarta: digits.starts_with("31"),
            line,
        })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct SktmEntry {
    pub nik: Nik,
    pub number: String,
    pub issued: NaiveDate,
    pub valid_until: NaiveDate,
    pub line: u32,
}

impl Record for SktmEntry {
    const SOURCE: Source = Source::Sktm;
    type Key = String;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let issued = f.date(2)?;
        let valid_until = f.date(3)?;
        if valid_until < issued {
            return Err(("valid_until", format!("{valid_until} is before issued {issued}")));
        }
        Ok(SktmEntry { nik: f.nik(0)?, number: f.text(1)?, issued, valid_until, line })
    }
    fn key(&self) -> String {
        self.number.clone()
    }
}

#[derive(Debug, Clone)]
pub struct Enrolment {
    pub nik: Nik,
    pub npsn: Npsn,
    pub level: Level,
    pub grade: u8,
    pub active: bool,
    pub line: u32,
}

impl Enrolment {
    fn parse_fields(f: &Fields, line: u32) -> FieldResult<Self> {
        let nisn = f.required(1)?;
        if nisn.len() != 10 || !nisn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(("nisn", format!("{nisn:?} is not a 10-digit NISN")));
        }
        Ok(Enrolment {
            nik: f.nik(0)?,
            npsn: f.npsn(2)?,
            level: f.level(3)?,
            grade: f.number(4, 1..=13)? as u8,
            active: f.yes_no(5)?,
            line,
        })
    }
}

/// Enrolment rows from Dapodik (general schools).
#[derive(Debug, Clone)]
pub struct Dapodik(pub Enrolment);
/// Enrolment rows from EMIS (madrasahs).
#[derive(Debug, Clone)]
pub struct Emis(pub Enrolment);

impl Record for Dapodik {
    const SOURCE: Source = Source::Dapodik;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Enrolment::parse_fields(f, line).map(Dapodik)
    }
    fn key(&self) -> Nik {
        self.0.nik
    }
}

impl Record for Emis {
    const SOURCE: Source = Source::Emis;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Enrolment::parse_fields(f, line).map(Emis)
    }
    fn key(&self) -> Nik {
        self.0.nik
    }
}

#[derive(Debug, Clone)]
pub struct School {
    pub npsn: Npsn,
    pub name: String,
    pub level: Level,
    pub status: SchoolType,
    pub kelurahan: RegionCode,
    pub line: u32,
}

impl Record for School {
    const SOURCE: Source = Source::Schools;
    type Key = Npsn;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Ok(School {
            npsn: f.npsn(0)?,
            name: f.text(1)?,
            level: f.level(2)?,
            status: f.choice(3, &[("negeri", SchoolType::Negeri), ("swasta", SchoolType::Swasta)])?,
            kelurahan: f.region(4)?,
            line,
        })
    }
    fn key(&self) -> Npsn {
        self.npsn
    }
}

#[derive(Debug, Clone)]
pub struct Driver {
    pub nik: Nik,
    pub kk: KkNumber,
    pub small_bus: bool,
    pub active: bool,
    pub line: u32,
}

impl Record for Driver {
    const SOURCE: Source = Source::Transjakarta;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Ok(Driver {
            nik: f.nik(0)?,
            kk: f.kk(1)?,
            small_bus: f.choice(2, &[("bus_kecil", true), ("bus_sedang", false), ("bus_besar", false)])?,
            active: f.yes_no(3)?,
            line,
        })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct Wage {
    pub nik: Nik,
    pub kk: KkNumber,
    pub ktp_dki: bool,
    pub monthly_wage: i64,
    pub line: u32,
}

impl Record for Wage {
    const SOURCE: Source = Source::Wages;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let period = f.required(4)?;
        if parse_date(&format!("{period}-01")).is_none() {
            return Err(("period", format!("{period:?} is not a month (expected YYYY-MM)")));
        }
        Ok(Wage { nik: f.nik(0)?, kk: f.kk(1)?, ktp_dki: f.yes_no(2)?, monthly_wage: f.rupiah(3)?, line })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct FosterChild {
    pub nik: Nik,
    pub line: u32,
}

impl Record for FosterChild {
    const SOURCE: Source = Source::Foster;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        f.text(1)?;
        f.date(2)?;
        Ok(FosterChild { nik: f.nik(0)?, line })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct LurahLetter {
    pub nik: Nik,
    pub number: String,
    pub issued: NaiveDate,
    pub line: u32,
}

impl Record for LurahLetter {
    const SOURCE: Source = Source::Lurah;
    type Key = String;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        f.region(1)?;
        Ok(LurahLetter { nik: f.nik(0)?, number: f.text(2)?, issued: f.date(3)?, line })
    }
    fn key(&self) -> String {
        self.number.clone()
    }
}

#[derive(Debug, Clone)]
pub struct TaxedVehicle {
    pub owner: Nik,
    pub plate: String,
    /// Four wheels or more: a car for the exclusion screen.
    pub car: bool,
    pub as_of: NaiveDate,
    pub line: u32,
}

/// Plates are compared without spaces and case: `B 1234 XYZ` is `b1234xyz`.
pub fn plate_key(plate: &str) -> String {
    plate.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

impl Record for TaxedVehicle {
    const SOURCE: Source = Source::Bapenda;
    type Key = String;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Ok(TaxedVehicle {
            owner: f.nik(0)?,
            plate: plate_key(&f.text(1)?),
            car: f.choice(2, &[("roda2", false), ("roda4", true), ("roda6", true)])?,
            as_of: f.date(3)?,
            line,
        })
    }
    fn key(&self) -> String {
        self.plate.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    Active,
    Blocked,
    Transferred,
}

impl Registration {
    pub fn name(self) -> &'static str {
        match self {
            Registration::Active => "active",
            Registration::Blocked => "blocked",
            Registration::Transferred => "transferred",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegisteredVehicle {
    pub plate: String,
    pub owner: Nik,
    pub status: Registration,
    pub status_date: NaiveDate,
    pub line: u32,
}

impl Record for RegisteredVehicle {
    const SOURCE: Source = Source::Samsat;
    type Key = String;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Ok(RegisteredVehicle {
            plate: plate_key(&f.text(0)?),
            owner: f.nik(1)?,
            status: f.choice(
                2,
                &[
                    ("active", Registration::Active),
                    ("blocked", Registration::Blocked),
                    ("transferred", Registration::Transferred),
                ],
            )?,
            status_date: f.date(3)?,
            line,
        })
    }
    fn key(&self) -> String {
        self.plate.clone()
    }
}

#[derive(Debug, Clone)]
pub struct PropertyValue {
    pub kk: KkNumber,
    pub njop: i64,
    pub line: u32,
}

impl Record for PropertyValue {
    const SOURCE: Source = Source::Njop;
    type Key = KkNumber;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        f.date(2)?;
        Ok(PropertyValue { kk: f.kk(0)?, njop: f.rupiah(1)?, line })
    }
    fn key(&self) -> KkNumber {
        self.kk
    }
}

#[derive(Debug, Clone)]
pub struct Occupation {
    pub nik: Nik,
    pub kk: KkNumber,
    pub line: u32,
}

impl Record for Occupation {
    const SOURCE: Source = Source::Occupations;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        f.choice(
            2,
            &[("pns", ()), ("tni", ()), ("polri", ()), ("legislator", ()), ("bumn", ()), ("bumd", ())],
        )?;
        f.date(3)?;
        Ok(Occupation { nik: f.nik(0)?, kk: f.kk(1)?, line })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

#[derive(Debug, Clone)]
pub struct SanctionEntry {
    pub nik: Nik,
    pub category: String,
    pub since: NaiveDate,
    pub lifted: Option<NaiveDate>,
    pub line: u32,
}

impl SanctionEntry {
    pub fn in_force(&self, on: NaiveDate) -> bool {
        self.since <= on && self.lifted.is_none_or(|l| l > on)
    }
}

impl Record for SanctionEntry {
    const SOURCE: Source = Source::Sanctions;
    type Key = (Nik, NaiveDate);
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        f.npsn(1)?;
        let since = f.date(3)?;
        let lifted = f.optional_date(4)?;
        if lifted.is_some_and(|l| l < since) {
            return Err(("lifted", "is before since".into()));
        }
        Ok(SanctionEntry { nik: f.nik(0)?, category: f.text(2)?, since, lifted, line })
    }
    fn key(&self) -> (Nik, NaiveDate) {
        (self.nik, self.since)
    }
}

/// A university student in the national higher-education database (PDDikti).
#[derive(Debug, Clone)]
pub struct Student {
    pub nik: Nik,
    pub state_university: bool,
    /// University and programme both accredited A or Unggul, in a priority field.
    pub unggul_priority: bool,
    pub level: Level,
    /// Admitted through a regular track (SNBP, SNBT or the university's own regular test).
    pub regular_admission: bool,
    pub semester: u8,
    /// In hundredths; none in the first semester.
    pub gpa: Option<u16>,
    pub status: StudentStatus,
    pub line: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudentStatus {
    Active,
    OnLeave,
    Graduated,
    Dropped,
}

fn gpa_field(f: &Fields, i: usize) -> FieldResult<Option<u16>> {
    let v = f.raw(i)?;
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || (f.header[i], format!("{v:?} is not a grade point average from 0.00 to 4.00"));
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.len() != 1 || frac.len() > 2 || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let g = whole.parse::<u16>().map_err(|_| bad())? * 100
        + format!("{frac:0<2}").parse::<u16>().map_err(|_| bad())?;
    if g > 400 {
        return Err(bad());
    }
    Ok(Some(g))
}

impl Record for Student {
    const SOURCE: Source = Source::Pddikti;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let unggul = [
            ("A", true),
            ("Unggul", true),
            ("B", false),
            ("Baik Sekali", false),
            ("C", false),
            ("Baik", false),
            ("none", false),
        ];
        f.text(1)?;
        f.text(4)?;
        let level = f.level(5)?;
        if !matches!(level, Level::D3 | Level::D4 | Level::S1) {
            return Err((
                "level",
                format!("{} is not a university programme (expected D3, D4 or S1)", level.code()),
            ));
        }
        let university_unggul = f.choice(3, &unggul)?;
        let programme_unggul = f.choice(6, &unggul)?;
        Ok(Student {
            nik: f.nik(0)?,
            state_university: f.choice(2, &[("negeri", true), ("swasta", false)])?,
            unggul_priority: university_unggul && programme_unggul && f.yes_no(7)?,
            level,
            regular_admission: f.choice(8, &[("regular", true), ("non_regular", false)])?,
            semester: f.number(9, 1..=20)? as u8,
            gpa: gpa_field(f, 10)?,
            status: f.choice(
                11,
                &[
                    ("active", StudentStatus::Active),
                    ("on_leave", StudentStatus::OnLeave),
                    ("graduated", StudentStatus::Graduated),
                    ("dropped", StudentStatus::Dropped),
                ],
            )?,
            line,
        })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

/// A graduate of a secondary school (SMA, SMK, MA) in Jakarta: Dapodik's alumni records.
#[derive(Debug, Clone)]
pub struct Graduate {
    pub nik: Nik,
    pub npsn: Npsn,
    pub year: u16,
    pub line: u32,
}

impl Record for Graduate {
    const SOURCE: Source = Source::Graduates;
    type Key = Nik;
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        Ok(Graduate { nik: f.nik(0)?, npsn: f.npsn(1)?, year: f.number(2, 1990..=2100)? as u16, line })
    }
    fn key(&self) -> Nik {
        self.nik
    }
}

/// A scholarship a student receives, and who funds it.
#[derive(Debug, Clone)]
pub struct Scholarship {
    pub nik: Nik,
    /// From the national or a provincial budget (APBN, APBD).
    pub public_budget: bool,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
    pub line: u32,
}

impl Scholarship {
    pub fn in_force(&self, on: NaiveDate) -> bool {
        self.from <= on && self.to.is_none_or(|t| t >= on)
    }
}

impl Record for Scholarship {
    const SOURCE: Source = Source::Scholarships;
    type Key = (Nik, NaiveDate);
    fn parse(f: &Fields, line: u32) -> FieldResult<Self> {
        let from = f.date(3)?;
        let to = f.optional_date(4)?;
        if to.is_some_and(|t| t < from) {
            return Err(("to", "is before from".into()));
        }
        f.text(2)?;
        Ok(Scholarship {
            nik: f.nik(0)?,
            public_budget: f.choice(1, &[("apbn", true), ("apbd", true), ("other", false)])?,
            from,
            to,
            line,
        })
    }
    fn key(&self) -> (Nik, NaiveDate) {
        (self.nik, self.from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_header_names_the_expected_one() {
        let e = parse::<Person>("dukcapil.csv", b"nik,kk,nama\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dukcapil.csv: the header is `nik,kk,nama`; expected `nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship`"
        );
        assert!(matches!(parse::<Person>("dukcapil.csv", b"").unwrap_err(), FileError::Empty { .. }));
    }

    #[test]
    fn bad_rows_are_collected_with_line_and_column_and_good_rows_kept() {
        let csv = "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship\n\
                   3171014403120001,3171010101100003,Siti,P,2012-03-04,31.71.01.1001,true,true,anak\n\
                   3171014403120002,3171010101100003,Budi,L,2012-02-30,31.71.01.1001,true,true,anak\n\
                   3171014403120003,3171010101100003,Ani,X,2012-03-04,,true,false,anak\n\
                   3171014403120004,3171010101100003,Tono,L,2012-03-04\n\
                   3171014403120001,3171010101100003,Siti,P,2012-03-04,31.71.01.1001,true,true,anak\n\
                   3171014403120005,3171010101100003,\"Dewi, S.Pd\",P,2012-03-04,,yes,false,anak\n";
        let p = parse::<Person>("dukcapil.csv", csv.as_bytes()).unwrap();
        assert_eq!(p.rows, 6);
        assert_eq!(p.records.len(), 1);
        let got: Vec<(u64, &str, &str)> =
            p.errors.iter().map(|e| (e.line, e.column, e.reason.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (3, "birth_date", "\"2012-02-30\" is not a date (expected YYYY-MM-DD)"),
                (4, "sex", "\"X\" is not one of L, P"),
                (5, "", "5 fields; expected 9 (nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship)"),
                (6, "", "duplicate of line 2 (same nik)"),
                (7, "ktp_dki", "\"yes\" is not true/false, 1/0 or Y/N"),
            ]
        );
    }

    #[test]
    fn an_unclosed_quote_is_reported_with_the_lines_it_swallowed() {
        let csv = "nik,care_home,since\n\
                   3171014403120001,\"Panti Asuhan,2020-01-01\n\
                   3171014403120002,Panti B,2020-01-01\n\
                   3171014403120003,Panti C,2020-01-01\n";
        let p = parse::<FosterChild>("foster.csv", csv.as_bytes()).unwrap();
        assert_eq!(p.rows, 3);
        assert!(p.records.is_empty());
        assert_eq!(p.errors[0].line, 2);
        assert_eq!(
            p.errors[0].reason,
            "a quote opened on line 2 is never closed: lines 2 to 4 were read as one field and left out"
        );
    }

    #[test]
    fn plates_compare_without_spaces_or_case() {
        assert_eq!(plate_key("B 1234 XYZ"), plate_key("b1234xyz"));
    }
}
