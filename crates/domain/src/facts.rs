//! The facts about one child that the rules read.
//!
//! Missing is not false: every fact is known or unknown, and `assess` treats an unknown
//! fact as something that could go either way. The set of facts is fixed in code because
//! each one needs a data source to feed it; which facts matter, and how, is policy data.

use chrono::NaiveDate;
use serde::Serialize;

use crate::ids::{Level, Rupiah, SchoolType};

/// Every fact a policy may test. The names are the ones used in policy files and in the
/// `kjp eval` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Fact {
    /// Read through the birth date; tested as whole years on the reference date.
    Age,
    Education,
    LurahRecommendation,
    ParentWage,
    ParentKtpDki,
    InDtks,
    HasSktm,
    FosterChild,
    DomiciledDki,
    OnDkiKk,
    Sanctioned,
    FamilyCar,
    FamilyPropertyNjop,
    FamilyExcludedOccupation,
    Level,
    School,
    // University students (KJMU).
    KtpDki,
    InPanti,
    OtherScholarship,
    JakartaGraduate,
    YearsSinceGraduation,
    StateRegularAdmission,
    PrivateUnggulPriority,
    Semester,
    Gpa,
    Graduated,
    Continuing,
}

/// What kind of value a fact holds, so a policy test can be checked against it at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactKind {
    Bool(BoolFact),
    Number,
    Education,
    Amount,
    /// The school level or university programme: tested with `in = [...]`.
    Level,
}

impl Fact {
    pub const ALL: [Fact; 27] = [
        Fact::Age,
        Fact::Education,
        Fact::LurahRecommendation,
        Fact::ParentWage,
        Fact::ParentKtpDki,
        Fact::InDtks,
        Fact::HasSktm,
        Fact::FosterChild,
        Fact::DomiciledDki,
        Fact::OnDkiKk,
        Fact::Sanctioned,
        Fact::FamilyCar,
        Fact::FamilyPropertyNjop,
        Fact::FamilyExcludedOccupation,
        Fact::Level,
        Fact::School,
        Fact::KtpDki,
        Fact::InPanti,
        Fact::OtherScholarship,
        Fact::JakartaGraduate,
        Fact::YearsSinceGraduation,
        Fact::StateRegularAdmission,
        Fact::PrivateUnggulPriority,
        Fact::Semester,
        Fact::Gpa,
        Fact::Graduated,
        Fact::Continuing,
    ];

    /// The name in policy files.
    pub fn name(self) -> &'static str {
        match self {
            Fact::Age => "age",
            Fact::Education => "education",
            Fact::LurahRecommendation => "lurah_recommendation",
            Fact::ParentWage => "parent_wage",
            Fact::ParentKtpDki => "parent_ktp_dki",
            Fact::InDtks => "in_dtks",
            Fact::HasSktm => "has_sktm",
            Fact::FosterChild => "foster_child",
            Fact::DomiciledDki => "domiciled_dki",
            Fact::OnDkiKk => "on_dki_kk",
            Fact::Sanctioned => "sanctioned",
            Fact::FamilyCar => "family_car",
            Fact::FamilyPropertyNjop => "family_property_njop",
            Fact::FamilyExcludedOccupation => "family_excluded_occupation",
            Fact::Level => "level",
            Fact::School => "school",
            Fact::KtpDki => "ktp_dki",
            Fact::InPanti => "in_panti",
            Fact::OtherScholarship => "other_scholarship",
            Fact::JakartaGraduate => "jakarta_graduate",
            Fact::YearsSinceGraduation => "years_since_graduation",
            Fact::StateRegularAdmission => "state_regular_admission",
            Fact::PrivateUnggulPriority => "private_unggul_priority",
            Fact::Semester => "semester",
            Fact::Gpa => "gpa",
            Fact::Graduated => "graduated",
            Fact::Continuing => "continuing",
        }
    }

    /// The input field that carries the fact (age comes from the birth date).
    pub fn input_field(self) -> &'static str {
        match self {
            Fact::Age => "birth_date",
            other => other.name(),
        }
    }

    pub fn from_name(name: &str) -> Option<Fact> {
        Fact::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn kind(self) -> FactKind {
        match self {
            Fact::Age => FactKind::Number,
            Fact::Education => FactKind::Education,
            Fact::ParentWage | Fact::FamilyPropertyNjop => FactKind::Amount,
            Fact::YearsSinceGraduation | Fact::Semester | Fact::Gpa => FactKind::Number,
            Fact::KtpDki => FactKind::Bool(BoolFact::KtpDki),
            Fact::InPanti => FactKind::Bool(BoolFact::InPanti),
            Fact::OtherScholarship => FactKind::Bool(BoolFact::OtherScholarship),
            Fact::JakartaGraduate => FactKind::Bool(BoolFact::JakartaGraduate),
            Fact::StateRegularAdmission => FactKind::Bool(BoolFact::StateRegularAdmission),
            Fact::PrivateUnggulPriority => FactKind::Bool(BoolFact::PrivateUnggulPriority),
            Fact::Graduated => FactKind::Bool(BoolFact::Graduated),
            Fact::Continuing => FactKind::Bool(BoolFact::Continuing),
            Fact::LurahRecommendation => FactKind::Bool(BoolFact::LurahRecommendation),
            Fact::ParentKtpDki => FactKind::Bool(BoolFact::ParentKtpDki),
            Fact::InDtks => FactKind::Bool(BoolFact::InDtks),
            Fact::HasSktm => FactKind::Bool(BoolFact::HasSktm),
            Fact::FosterChild => FactKind::Bool(BoolFact::FosterChild),
            Fact::DomiciledDki => FactKind::Bool(BoolFact::DomiciledDki),
            Fact::OnDkiKk => FactKind::Bool(BoolFact::OnDkiKk),
            Fact::Sanctioned => FactKind::Bool(BoolFact::Sanctioned),
            Fact::FamilyCar => FactKind::Bool(BoolFact::FamilyCar),
            Fact::FamilyExcludedOccupation => FactKind::Bool(BoolFact::FamilyExcludedOccupation),
            // The level can be tested (KJMU's coverage differs by programme); the school
            // type only decides the amount.
            Fact::Level => FactKind::Level,
            Fact::School => FactKind::Education,
        }
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of facts, e.g. the unknown facts that hold a decision in review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FactSet(pub(crate) u32);

impl FactSet {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, fact: Fact) -> bool {
        self.0 & fact.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Fact> {
        Fact::ALL.into_iter().filter(move |f| self.contains(*f))
    }
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// The yes/no facts, stored as two bit masks in [`Facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoolFact {
    LurahRecommendation,
    ParentKtpDki,
    InDtks,
    HasSktm,
    FosterChild,
    DomiciledDki,
    OnDkiKk,
    Sanctioned,
    FamilyCar,
    FamilyExcludedOccupation,
    KtpDki,
    InPanti,
    OtherScholarship,
    JakartaGraduate,
    StateRegularAdmission,
    PrivateUnggulPriority,
    Graduated,
    /// A recipient of the previous stage (its decree, with amendments).
    Continuing,
}

impl BoolFact {
    /// How many there are: the bits used in [`Flags`].
    pub const COUNT: usize = BoolFact::Continuing as usize + 1;

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Whether and how the child takes part in education (Pasal 5 ayat 1 huruf a and ayat 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Education {
    /// Enrolled at a formal or non-formal education unit.
    Enrolled,
    /// Out of school (ATS), returning through a school or a course (LKP).
    OutOfSchool,
    None,
}

impl Education {
    pub fn parse(raw: &str) -> Option<Education> {
        match raw {
            "enrolled" => Some(Education::Enrolled),
            "out_of_school" => Some(Education::OutOfSchool),
            "none" => Some(Education::None),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Education::Enrolled => "enrolled",
            Education::OutOfSchool => "out_of_school",
            Education::None => "none",
        }
    }
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The groups a child claims to belong to, as indexes into the policy's group catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct GroupSet(pub(crate) u16);

impl GroupSet {
    pub fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }
    pub fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Everything known about one child. Plain data: built by `kjp eval` from JSON, by the
/// stage run from joined agency files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Facts {
    pub birth_date: Option<NaiveDate>,
    pub education: Option<Education>,
    pub level: Option<Level>,
    pub school: Option<SchoolType>,
    pub parent_wage: Option<Rupiah>,
    pub family_property_njop: Option<Rupiah>,
    pub claims: GroupSet,
    pub flags: Flags,
    /// The family's DTKS welfare decile (1 poorest to 10), if it is in DTKS. Not a test
    /// of eligibility: the funding order reads it when a budget falls short.
    pub dtks_decile: Option<u8>,
    /// A university student's current semester (KJMU).
    pub semester: Option<u8>,
    /// Grade point average in hundredths (3.25 is 325).
    pub gpa: Option<u16>,
    /// Whole years from secondary-school graduation to the reference date.
    pub years_since_graduation: Option<u8>,
}

/// The yes/no facts: each known true, known false, or unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    pub(crate) known: u32,
    pub(crate) value: u32,
}

impl Facts {
    pub fn set(&mut self, fact: BoolFact, value: Option<bool>) {
        let bit = fact.bit();
        let flags = &mut self.flags;
        match value {
            Some(v) => {
                flags.known |= bit;
                if v {
                    flags.value |= bit;
                } else {
                    flags.value &= !bit;
                }
            }
            None => {
                flags.known &= !bit;
                flags.value &= !bit;
            }
        }
    }
    pub fn with(mut self, fact: BoolFact, value: bool) -> Facts {
        self.set(fact, Some(value));
        self
    }
    /// The value of a number or amount fact, as a whole number.
    #[inline]
    pub fn number(&self, fact: Fact) -> Option<i64> {
        match fact {
            Fact::ParentWage => self.parent_wage.map(Rupiah::get),
            Fact::FamilyPropertyNjop => self.family_property_njop.map(Rupiah::get),
            Fact::Semester => self.semester.map(i64::from),
            Fact::Gpa => self.gpa.map(i64::from),
            Fact::YearsSinceGraduation => self.years_since_graduation.map(i64::from),
            _ => None,
        }
    }
    #[inline]
    pub fn get(&self, fact: BoolFact) -> Option<bool> {
        let bit = fact.bit();
        (self.flags.known & bit != 0).then_some(self.flags.value & bit != 0)
    }
}
