//! A programme's law as data: groups, requirements, exemptions, screens, parameters and
//! amounts, each with an effective date range and a citation.
//!
//! Loading is strict. The TOML is read into plain `Raw*` structs (unknown keys rejected by
//! serde), then checked and converted into a [`Policy`]: every rule must cite its article,
//! entries of the same name must be sorted and must not overlap, every name a rule refers
//! to must exist. Each error names the file, the line and the reason.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::facts::{Education, Fact, FactKind};
use crate::funding::{Funding, RankKey, BUDGET_CEILING};
use crate::ids::{Level, Rupiah};

/// The KJP Plus policy shipped with the binary (`policy/kjp-plus.toml`).
pub const KJP_PLUS: &str = include_str!("../../../policy/kjp-plus.toml");
pub const KJMU: &str = include_str!("../../../policy/kjmu.toml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A date range, both ends inclusive; `to: None` is open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Effective {
    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.from && self.to.is_none_or(|to| date <= to)
    }
}

impl fmt::Display for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to {
            Some(to) => write!(f, "{} to {}", self.from, to),
            None => write!(f, "from {}", self.from),
        }
    }
}

/// Text in Indonesian and English.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub id: String,
    pub en: String,
}

/// An exact rational number, so that `wage x 10 <= UMP x 11` needs no float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub num: i128,
    pub den: i128,
}

impl Ratio {
    fn integer(n: i64) -> Ratio {
        Ratio { num: i128::from(n), den: 1 }
    }
    fn parse_decimal(raw: &str) -> Option<Ratio> {
        let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        if frac.len() > 9 {
            return None;
        }
        let den = 10i128.pow(frac.len() as u32);
        let num = format!("{int}{frac}").parse::<i128>().ok()?;
        Some(Ratio { num, den })
    }
    pub fn times(self, other: Ratio) -> Ratio {
        Ratio { num: self.num * other.num, den: self.den * other.den }
    }
    /// Rounded down to a whole number, saturating at the ends of `i64`.
    pub fn floor(self) -> i64 {
        self.num.div_euclid(self.den).clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }
    /// Rounded up to a whole number, saturating at the ends of `i64`.
    pub fn ceil(self) -> i64 {
        (-(-self.num).div_euclid(self.den)).clamp(i64::MIN.into(), i64::MAX.into()) as i64
    }
    pub fn is_integer(self) -> bool {
        self.num % self.den == 0
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_integer() {
            return write!(f, "{}", self.num / self.den);
        }
        let mut den = self.den;
        let mut digits = 0;
        while den > 1 && den % 10 == 0 {
            den /= 10;
            digits += 1;
        }
        if den != 1 {
            return write!(f, "{}/{}", self.num, self.den);
        }
        let int = self.num / self.den;
        let frac = (self.num % self.den).abs();
        let frac = format!("{frac:0digits$}");
        write!(f, "{int}.{}", frac.trim_end_matches('0'))
    }
}

// ---------------------------------------------------------------------------------------
// Raw: what the TOML says, nothing checked beyond its shape.

#[derive(Debug, Clone, Copy)]
struct Day(NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Day, D::Error> {
        use serde::de::Error;
        let dt = toml::value::Datetime::deserialize(d)?;
        match (dt.date, dt.time, dt.offset) {
            (Some(date), None, None) => {
                NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
                    .map(Day)
                    .ok_or_else(|| D::Error::custom(format!("{dt} is not a date")))
            }
            _ => Err(D::Error::custom(format!("expected a date like 2025-01-01, got {dt}"))),
        }
    }
}

/// A TOML table read in document order (reason codes are listed in the file's order).
#[derive(Debug)]
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    programme: RawProgramme,
    facts: BTreeMap<String, Texts>,
    reasons: Ordered<Spanned<RawReason>>,
    params: BTreeMap<String, Vec<Spanned<RawParam>>>,
    #[serde(default)]
    requirement: Vec<Spanned<RawRequirement>>,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    screen: Vec<Spanned<RawScreen>>,
    #[serde(default)]
    amounts: Vec<Spanned<RawAmounts>>,
    #[serde(default)]
    funding: Option<Spanned<RawFunding>>,
    /// Read by `crate::money::MoneyPolicy::parse`.
    #[serde(default, rename = "money")]
    _money: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunding {
    order: Vec<String>,
    citation: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgramme {
    id: String,
    name: String,
    version: String,
    citation: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReason {
    id: String,
    en: String,
    #[serde(default)]
    citation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(default)]
    from: Option<Day>,
    #[serde(default)]
    to: Option<Day>,
    value: RawNumber,
    #[serde(default)]
    unit: Option<Unit>,
    citation: String,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawNumber {
    Integer(i64),
    Decimal(String),
}

/// How a parameter's value is shown in texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Rupiah,
    Years,
    Factor,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawOperand {
    Integer(i64),
    Param(String),
    Product(Vec<RawOperandTerm>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawOperandTerm {
    Integer(i64),
    Param(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    fact: String,
    #[serde(default)]
    is: Option<bool>,
    #[serde(default, rename = "in")]
    in_: Option<Vec<String>>,
    #[serde(default)]
    at_least: Option<RawOperand>,
    #[serde(default)]
    at_most: Option<RawOperand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemption {
    when: RawTest,
    citation: String,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawScope {
    /// Applies to every child whatever the group (age, sanctions).
    Common,
    /// A requirement of Pasal 5: applies to every group unless the group is exempt.
    Group,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    id: String,
    name: Texts,
    scope: RawScope,
    test: RawTest,
    reason: String,
    citation: String,
    #[serde(default)]
    from: Option<Day>,
    #[serde(default)]
    to: Option<Day>,
    #[serde(default)]
    applies_when: Option<RawTest>,
    #[serde(default)]
    exempt_when: Vec<RawExemption>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMembership {
    id: String,
    name: Texts,
    test: RawTest,
    reason: String,
    citation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupExemption {
    requirements: Vec<String>,
    citation: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: String,
    name: Texts,
    citation: String,
    #[serde(default)]
    from: Option<Day>,
    #[serde(default)]
    to: Option<Day>,
    #[serde(default)]
    membership: Vec<RawMembership>,
    #[serde(default)]
    exempt: Vec<RawGroupExemption>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScreen {
    id: String,
    name: Texts,
    enabled: bool,
    test: RawTest,
    reason: String,
    citation: String,
    #[serde(default)]
    from: Option<Day>,
    #[serde(default)]
    to: Option<Day>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAmounts {
    #[serde(default)]
    from: Option<Day>,
    #[serde(default)]
    to: Option<Day>,
    citation: String,
    #[serde(default)]
    note: Option<String>,
    levels: BTreeMap<String, RawRate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    #[serde(default)]
    routine: Option<i64>,
    #[serde(default)]
    periodic: Option<i64>,
    #[serde(default)]
    private_fee: Option<i64>,
    #[serde(default)]
    per_semester: Option<i64>,
    #[serde(default)]
    institution_per_semester: Option<i64>,
    #[serde(default)]
    personal_per_semester: Option<i64>,
    #[serde(default)]
    same_as: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Checked: the policy the rules engine runs.

/// A number a test compares against: a product of constants and named parameters,
/// resolved on the reference date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operand {
    pub terms: Vec<OperandTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperandTerm {
    Constant(i64),
    Param(usize),
}

/// A test on one fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    Is {
        fact: Fact,
        value: bool,
    },
    In {
        fact: Fact,
        allowed: u8,
    },
    /// The level is one of `allowed` (bits by `Level::index`).
    Level {
        allowed: u16,
    },
    Range {
        fact: Fact,
        at_least: Option<Operand>,
        at_most: Option<Operand>,
    },
}

impl Test {
    pub fn fact(&self) -> Fact {
        match self {
            Test::Is { fact, .. } | Test::In { fact, .. } | Test::Range { fact, .. } => *fact,
            Test::Level { .. } => Fact::Level,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub when: Test,
    pub citation: String,
}

/// Where a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every child (age, sanctions).
    Common,
    /// Every group, unless the group is exempt (Pasal 5).
    Group,
    /// Membership of one group (index into the group catalogue).
    Membership(usize),
    /// A data-cleansing exclusion screen, applied to every child while enabled.
    Screen,
}

/// One rule: a requirement, a group's membership condition or an exclusion screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub name: Texts,
    pub scope: Scope,
    pub test: Test,
    pub applies_when: Option<Test>,
    pub exempt_when: Vec<Exemption>,
    pub reason: usize,
    pub citation: String,
    pub effective: Effective,
    pub enabled: bool,
    pub note: Option<String>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupExemption {
    pub requirements: Vec<String>,
    pub citation: String,
}

/// One version of a target group, in force over `effective`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: Texts,
    pub citation: String,
    pub effective: Effective,
    pub exempt: Vec<GroupExemption>,
    pub note: Option<String>,
    /// Index into [`Policy::group_ids`].
    pub catalogue: usize,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamValue {
    pub value: Ratio,
    pub unit: Option<Unit>,
    pub effective: Effective,
    pub citation: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub values: Vec<ParamValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: String,
    pub texts: Texts,
    pub citation: Option<String>,
}

/// The monthly amount for one child, in whole rupiah.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub struct Monthly {
    pub routine: Rupiah,
    pub periodic: Rupiah,
    pub school_fee: Rupiah,
    pub total: Rupiah,
}

impl Monthly {
    pub fn new(routine: i64, periodic: i64, school_fee: i64) -> Monthly {
        Monthly {
            routine: Rupiah::new(routine),
            periodic: Rupiah::new(periodic),
            school_fee: Rupiah::new(school_fee),
            total: Rupiah::new(routine + periodic + school_fee),
        }
    }
}

/// What one level is paid per month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Paid at a public school.
    pub public: Monthly,
    /// Paid at a private school (with the fee add-on where the level has one).
    pub private: Monthly,
    /// Whether the school type changes the amount (it does not for PKBM and LKP).
    pub depends_on_school: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountTable {
    pub effective: Effective,
    pub citation: String,
    pub note: Option<String>,
    /// Indexed by [`Level::index`].
    /// Indexed by [`Level::index`]; `None` for a level the programme does not pay.
    pub rates: [Option<Rate>; Level::ALL.len()],
}

/// A checked policy. Cheap to share; resolve it on a date with [`Policy::rules_at`].
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub version: String,
    pub citation: String,
    pub note: Option<String>,
    /// sha256 of the file's bytes: what a decision records to be replayed.
    pub sha256: String,
    pub source: String,
    /// The file's text, so that what was decided under it can be replayed later.
    pub text: String,
    pub fact_labels: HashMap<Fact, Texts>,
    pub reasons: Vec<Reason>,
    pub params: Vec<Param>,
    pub rules: Vec<Rule>,
    pub groups: Vec<Group>,
    /// Distinct group ids in file order: the order in which a qualifying group is named.
    pub group_ids: Vec<String>,
    pub amounts: Vec<AmountTable>,
    /// Who is funded first when a stage's budget falls short; `None`: a stage of this
    /// policy cannot have a budget ceiling.
    pub funding: Option<Funding>,
    /// The `[money]` section: card rules and the sanction catalogue.
    pub money: crate::money::MoneyPolicy,
}

/// Reason codes the engine itself produces; a policy must give them texts.
pub const NOT_TARGET_GROUP: &str = "NOT_TARGET_GROUP";
pub const UNKNOWN_FACT: &str = "UNKNOWN_FACT";

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
}

impl Loader<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].bytes().filter(|b| *b == b'\n').count() + 1
    }
    fn err(&self, line: usize, message: impl Into<String>) -> PolicyError {
        PolicyError { file: self.file.to_string(), line: Some(line), message: message.into() }
    }
}

fn effective(from: Option<Day>, to: Option<Day>) -> Result<Effective, String> {
    let from = from.map(|d| d.0).unwrap_or(NaiveDate::MIN);
    let to = to.map(|d| d.0);
    if let Some(to) = to {
        if to < from {
            return Err(format!("the range ends ({to}) before it starts ({from})"));
        }
    }
    Ok(Effective { from, to })
}

/// Entries of one name must be in date order and must not overlap.
fn check_sequence(items: &[(Effective, usize)], what: &str, loader: &Loader) -> Result<(), PolicyError> {
    for pair in items.windows(2) {
        let (a, _) = pair[0];
        let (b, line) = pair[1];
        if b.from < a.from {
            return Err(loader.err(line, format!("{what}: ranges are not sorted: {} comes after {}", b, a)));
        }
        match a.to {
            None => return Err(loader.err(line, format!("{what}: range {b} overlaps the open range {a}"))),
            Some(to) if b.from <= to => {
                return Err(loader.err(line, format!("{what}: range {b} overlaps {a}")));
            }
            _ => {}
        }
    }
    Ok(())
}

fn need_citation(citation: &str, what: &str, line: usize, loader: &Loader) -> Result<(), PolicyError> {
    if citation.trim().is_empty() {
        return Err(loader.err(line, format!("{what} has no citation")));
    }
    Ok(())
}

impl Policy {
    /// The KJP Plus policy shipped with the binary.
    pub fn kjp_plus() -> Policy {
        Policy::parse("policy/kjp-plus.toml", KJP_PLUS).expect("the shipped policy is valid (tested)")
    }

    /// The KJMU policy shipped with the binary.
    pub fn kjmu() -> Policy {
        Policy::parse("policy/kjmu.toml", KJMU).expect("the shipped policy is valid (tested)")
    }

    /// The policy shipped with the binary for a programme.
    pub fn shipped(programme: crate::ids::Programme) -> Policy {
        match programme {
            crate::ids::Programme::KjpPlus => Policy::kjp_plus(),
            crate::ids::Programme::Kjmu => Policy::kjmu(),
        }
    }

    /// Reads and checks a policy file's text. `file` is only used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let loader = Loader { file, text };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| loader.line(s.start));
            PolicyError { file: file.to_string(), line, message: e.message().to_string() }
        })?;
        let programme = raw.programme;
        need_citation(&programme.citation, "the programme", 1, &loader)?;

        let mut fact_labels = HashMap::new();
        for (name, texts) in raw.facts {
            let fact = Fact::from_name(&name).ok_or_else(|| PolicyError {
                file: file.into(),
                line: None,
                message: format!("[facts]: unknown fact {name:?}"),
            })?;
            fact_labels.insert(fact, texts);
        }

        let reasons: Vec<Reason> = raw
            .reasons
            .0
            .into_iter()
            .map(|(code, r)| {
                let r = r.into_inner();
                Reason { code, texts: Texts { id: r.id, en: r.en }, citation: r.citation }
            })
            .collect();
        for code in [NOT_TARGET_GROUP, UNKNOWN_FACT] {
            match reasons.iter().find(|r| r.code == code) {
                None => {
                    return Err(PolicyError {
                        file: file.into(),
                        line: None,
                        message: format!("[reasons]: {code} is missing"),
                    })
                }
                Some(r) if r.citation.as_deref().is_none_or(|c| c.trim().is_empty()) => {
                    return Err(PolicyError {
                        file: file.into(),
                        line: None,
                        message: format!("[reasons.{code}] has no citation"),
                    })
                }
                Some(_) => {}
            }
        }
        if reasons.len() > 64 {
            return Err(PolicyError {
                file: file.into(),
                line: None,
                message: "more than 64 reason codes".into(),
            });
        }
        let reason_index = |code: &str, line: usize| -> Result<usize, PolicyError> {
            reasons
                .iter()
                .position(|r| r.code == code)
                .ok_or_else(|| loader.err(line, format!("reason {code:?} is not defined in [reasons]")))
        };

        let mut params = Vec::new();
        for (name, entries) in raw.params {
            let mut values = Vec::new();
            let mut seq = Vec::new();
            for entry in entries {
                let line = loader.line(entry.span().start);
                let p = entry.into_inner();
                need_citation(&p.citation, &format!("param {name}"), line, &loader)?;
                let eff =
                    effective(p.from, p.to).map_err(|e| loader.err(line, format!("param {name}: {e}")))?;
                let value = match p.value {
                    RawNumber::Integer(n) => Ratio::integer(n),
                    RawNumber::Decimal(s) => Ratio::parse_decimal(&s).ok_or_else(|| {
                        loader.err(line, format!("param {name}: {s:?} is not a decimal number"))
                    })?,
                };
                seq.push((eff, line));
                values.push(ParamValue {
                    value,
                    unit: p.unit,
                    effective: eff,
                    citation: p.citation,
                    note: p.note,
                });
            }
            check_sequence(&seq, &format!("param {name}"), &loader)?;
            params.push(Param { name, values });
        }

        let mut group_ids: Vec<String> = Vec::new();
        for g in &raw.group {
            if !group_ids.contains(&g.get_ref().id) {
                group_ids.push(g.get_ref().id.clone());
            }
        }
        if group_ids.len() > 16 {
            return Err(PolicyError { file: file.into(), line: None, message: "more than 16 groups".into() });
        }

        let compile = Compiler { loader: &loader, params: &params };
        let mut rules = Vec::new();
        for entry in raw.requirement {
            let line = loader.line(entry.span().start);
            let r = entry.into_inner();
            let what = format!("requirement {:?}", r.id);
            need_citation(&r.citation, &what, line, &loader)?;
            let exempt_when = r
                .exempt_when
                .into_iter()
                .map(|e| {
                    need_citation(&e.citation, &format!("{what}: an exemption"), line, &loader)?;
                    Ok(Exemption { when: compile.test(&e.when, &what, line)?, citation: e.citation })
                })
                .collect::<Result<Vec<_>, PolicyError>>()?;
            rules.push(Rule {
                test: compile.test(&r.test, &what, line)?,
                applies_when: r.applies_when.as_ref().map(|t| compile.test(t, &what, line)).transpose()?,
                exempt_when,
                reason: reason_index(&r.reason, line)?,
                effective: effective(r.from, r.to).map_err(|e| loader.err(line, format!("{what}: {e}")))?,
                scope: match r.scope {
                    RawScope::Common => Scope::Common,
                    RawScope::Group => Scope::Group,
                },
                id: r.id,
                name: r.name,
                citation: r.citation,
                enabled: true,
                note: r.note,
                line,
            });
        }
        for entry in raw.screen {
            let line = loader.line(entry.span().start);
            let s = entry.into_inner();
            let what = format!("screen {:?}", s.id);
            need_citation(&s.citation, &what, line, &loader)?;
            rules.push(Rule {
                test: compile.test(&s.test, &what, line)?,
                applies_when: None,
                exempt_when: Vec::new(),
                reason: reason_index(&s.reason, line)?,
                effective: effective(s.from, s.to).map_err(|e| loader.err(line, format!("{what}: {e}")))?,
                scope: Scope::Screen,
                id: s.id,
                name: s.name,
                citation: s.citation,
                enabled: s.enabled,
                note: s.note,
                line,
            });
        }

        let mut groups = Vec::new();
        for entry in raw.group {
            let line = loader.line(entry.span().start);
            let g = entry.into_inner();
            let what = format!("group {:?}", g.id);
            need_citation(&g.citation, &what, line, &loader)?;
            let catalogue = group_ids.iter().position(|id| *id == g.id).expect("collected above");
            let eff = effective(g.from, g.to).map_err(|e| loader.err(line, format!("{what}: {e}")))?;
            for m in g.membership {
                let mwhat = format!("{what} membership {:?}", m.id);
                need_citation(&m.citation, &mwhat, line, &loader)?;
                rules.push(Rule {
                    test: compile.test(&m.test, &mwhat, line)?,
                    applies_when: None,
                    exempt_when: Vec::new(),
                    reason: reason_index(&m.reason, line)?,
                    effective: eff,
                    scope: Scope::Membership(catalogue),
                    id: format!("{}.{}", g.id, m.id),
                    name: m.name,
                    citation: m.citation,
                    enabled: true,
                    note: None,
                    line,
                });
            }
            for ex in &g.exempt {
                need_citation(&ex.citation, &format!("{what}: an exemption"), line, &loader)?;
                for req in &ex.requirements {
                    let known = rules.iter().any(|r| r.scope == Scope::Group && r.id == *req);
                    if !known {
                        return Err(loader
                            .err(line, format!("{what}: exempt from unknown group requirement {req:?}")));
                    }
                }
            }
            groups.push(Group {
                id: g.id,
                name: g.name,
                citation: g.citation,
                effective: eff,
                exempt: g
                    .exempt
                    .into_iter()
                    .map(|e| GroupExemption { requirements: e.requirements, citation: e.citation })
                    .collect(),
                note: g.note,
                catalogue,
                line,
            });
        }

        // Versions of one rule or group: sorted, no overlap.
        let mut by_id: BTreeMap<&str, Vec<(Effective, usize)>> = BTreeMap::new();
        for r in &rules {
            if matches!(r.scope, Scope::Membership(_)) {
                continue;
            }
            by_id.entry(&r.id).or_default().push((r.effective, r.line));
        }
        for (id, seq) in &by_id {
            check_sequence(seq, &format!("rule {id:?}"), &loader)?;
        }
        let mut group_seq: BTreeMap<&str, Vec<(Effective, usize)>> = BTreeMap::new();
        for g in &groups {
            group_seq.entry(&g.id).or_default().push((g.effective, g.line));
        }
        for (id, seq) in &group_seq {
            check_sequence(seq, &format!("group {id:?}"), &loader)?;
        }
        if rules.len() > 64 {
            return Err(PolicyError { file: file.into(), line: None, message: "more than 64 rules".into() });
        }

        let mut amounts = Vec::new();
        let mut seq = Vec::new();
        for entry in raw.amounts {
            let line = loader.line(entry.span().start);
            let a = entry.into_inner();
            need_citation(&a.citation, "amounts", line, &loader)?;
            let eff = effective(a.from, a.to).map_err(|e| loader.err(line, format!("amounts: {e}")))?;
            seq.push((eff, line));
            amounts.push(AmountTable {
                effective: eff,
                rates: rates(&a.levels).map_err(|e| loader.err(line, format!("amounts: {e}")))?,
                citation: a.citation,
                note: a.note,
            });
        }
        check_sequence(&seq, "amounts", &loader)?;

        for fact in rules.iter().flat_map(|r| {
            std::iter::once(r.test.fact())
                .chain(r.applies_when.iter().map(Test::fact))
                .chain(r.exempt_when.iter().map(|e| e.when.fact()))
        }) {
            if !fact_labels.contains_key(&fact) {
                return Err(PolicyError {
                    file: file.into(),
                    line: None,
                    message: format!("[facts]: no label for {}", fact.name()),
                });
            }
        }
        for fact in [Fact::Level, Fact::School] {
            if !fact_labels.contains_key(&fact) {
                return Err(PolicyError {
                    file: file.into(),
                    line: None,
                    message: format!("[facts]: no label for {}", fact.name()),
                });
            }
        }

        let funding = match raw.funding {
            None => None,
            Some(f) => {
                let line = loader.line(f.span().start);
                let f = f.into_inner();
                need_citation(&f.citation, "[funding]", line, &loader)?;
                let mut order = Vec::new();
                for key in &f.order {
                    let k = RankKey::parse(key).ok_or_else(|| {
                        let known: Vec<&str> = RankKey::ALL.iter().map(|k| k.name()).collect();
                        loader.err(
                            line,
                            format!("[funding]: unknown order key {key:?}; known: {}", known.join(", ")),
                        )
                    })?;
                    if order.contains(&k) {
                        return Err(loader.err(line, format!("[funding]: {key:?} is named twice")));
                    }
                    order.push(k);
                }
                reason_index(BUDGET_CEILING, line)?;
                Some(Funding { order, citation: f.citation, note: f.note })
            }
        };

        Ok(Policy {
            id: programme.id,
            name: programme.name,
            version: programme.version,
            citation: programme.citation,
            note: programme.note,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            source: file.to_string(),
            text: text.to_string(),
            fact_labels,
            reasons,
            params,
            rules,
            groups,
            group_ids,
            amounts,
            funding,
            money: crate::money::MoneyPolicy::parse(file, text)?,
        })
    }

    pub fn reason(&self, index: usize) -> &Reason {
        &self.reasons[index]
    }

    pub fn reason_index(&self, code: &str) -> Option<usize> {
        self.reasons.iter().position(|r| r.code == code)
    }

    pub fn group_index(&self, id: &str) -> Option<usize> {
        self.group_ids.iter().position(|g| g == id)
    }

    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The value of a parameter in force on `date`.
    pub fn param_at(&self, index: usize, date: NaiveDate) -> Option<&ParamValue> {
        self.params[index].values.iter().find(|v| v.effective.contains(date))
    }

    pub fn label(&self, fact: Fact) -> &Texts {
        &self.fact_labels[&fact]
    }

    /// The same policy with one exclusion screen switched on or off (for the what-if).
    pub fn with_screen(&self, id: &str, enabled: bool) -> Option<Policy> {
        let mut p = self.clone();
        let mut found = false;
        for r in p.rules.iter_mut().filter(|r| r.scope == Scope::Screen && r.id == id) {
            r.enabled = enabled;
            found = true;
        }
        found.then_some(p)
    }

    /// The amount table in force on `date`.
    pub fn amounts_at(&self, date: NaiveDate) -> Option<&AmountTable> {
        self.amounts.iter().find(|a| a.effective.contains(date))
    }
}

struct Compiler<'a> {
    loader: &'a Loader<'a>,
    params: &'a [Param],
}

impl Compiler<'_> {
    fn operand(&self, raw: &RawOperand, what: &str, line: usize) -> Result<Operand, PolicyError> {
        let term = |t: &RawOperandTerm| -> Result<OperandTerm, PolicyError> {
            match t {
                RawOperandTerm::Integer(n) => Ok(OperandTerm::Constant(*n)),
                RawOperandTerm::Param(name) => self
                    .params
                    .iter()
                    .position(|p| p.name == *name)
                    .map(OperandTerm::Param)
                    .ok_or_else(|| self.loader.err(line, format!("{what}: unknown parameter {name:?}"))),
            }
        };
        let terms = match raw {
            RawOperand::Integer(n) => vec![term(&RawOperandTerm::Integer(*n))?],
            RawOperand::Param(p) => vec![term(&RawOperandTerm::Param(p.clone()))?],
            RawOperand::Product(ts) => ts.iter().map(term).collect::<Result<_, _>>()?,
        };
        if terms.is_empty() {
            return Err(self.loader.err(line, format!("{what}: an empty product")));
        }
        Ok(Operand { terms })
    }

    fn test(&self, raw: &RawTest, what: &str, line: usize) -> Result<Test, PolicyError> {
        let err = |m: String| self.loader.err(line, format!("{what}: {m}"));
        let fact = Fact::from_name(&raw.fact).ok_or_else(|| err(format!("unknown fact {:?}", raw.fact)))?;
        if fact == Fact::School {
            return Err(err(format!("{} sets the amount and cannot be tested", fact.name())));
        }
        let ranged = raw.at_least.is_some() || raw.at_most.is_some();
        match (fact.kind(), raw.is, &raw.in_, ranged) {
            (FactKind::Bool(_), Some(value), None, false) => Ok(Test::Is { fact, value }),
            (FactKind::Education, None, Some(list), false) => {
                let mut allowed = 0u8;
                for name in list {
                    let e = Education::parse(name)
                        .ok_or_else(|| err(format!("{name:?} is not enrolled, out_of_school or none")))?;
                    allowed |= e.bit();
                }
                Ok(Test::In { fact, allowed })
            }
            (FactKind::Level, None, Some(list), false) => {
                let mut allowed = 0u16;
                for name in list {
                    let l = Level::parse(name).map_err(|e| err(e.to_string()))?;
                    allowed |= 1 << l.index();
                }
                Ok(Test::Level { allowed })
            }
            (FactKind::Number | FactKind::Amount, None, None, true) => Ok(Test::Range {
                fact,
                at_least: raw.at_least.as_ref().map(|o| self.operand(o, what, line)).transpose()?,
                at_most: raw.at_most.as_ref().map(|o| self.operand(o, what, line)).transpose()?,
            }),
            (FactKind::Bool(_), ..) => {
                Err(err(format!("{} is yes/no: test it with `is = true|false`", raw.fact)))
            }
            (FactKind::Education | FactKind::Level, ..) => {
                Err(err(format!("{} is a choice: test it with `in = [...]`", raw.fact)))
            }
            _ => Err(err(format!("{} is a number: test it with `at_least` and/or `at_most`", raw.fact))),
        }
    }
}

/// The rates of the levels a table names; a level it does not name is not paid.
fn rates(levels: &BTreeMap<String, RawRate>) -> Result<[Option<Rate>; Level::ALL.len()], String> {
    for name in levels.keys() {
        if !Level::ALL.iter().any(|l| l.code() == name) {
            let known: Vec<&str> = Level::ALL.iter().map(|l| l.code()).collect();
            return Err(format!("unknown level {name:?} (expected one of {})", known.join(", ")));
        }
    }
    let direct = |level: Level| -> Result<Option<Rate>, String> {
        let Some(raw) = levels.get(level.code()) else { return Ok(None) };
        let name = level.code();
        match raw {
            RawRate {
                routine: Some(r),
                periodic: Some(p),
                private_fee,
                per_semester: None,
                institution_per_semester: None,
                personal_per_semester: None,
                same_as: None,
            } => {
                let fee = private_fee.unwrap_or(0);
                if *r < 0 || *p < 0 || fee < 0 {
                    return Err(format!("{name}: amounts cannot be negative"));
                }
                Ok(Some(Rate {
                    public: Monthly::new(*r, *p, 0),
                    private: Monthly::new(*r, *p, fee),
                    depends_on_school: private_fee.is_some(),
                }))
            }
            RawRate {
                routine: None,
                periodic: None,
                private_fee: None,
                per_semester: None,
                institution_per_semester: Some(i),
                personal_per_semester: Some(p),
                same_as: None,
            } => {
                // Two parts: the education fee to the university, personal support to the
                // student; paid in six monthly parts like every other amount.
                if *i < 0 || *p < 0 || i % 6 != 0 || p % 6 != 0 {
                    return Err(format!(
                        "{name}: institution_per_semester {i} and personal_per_semester {p} must be positive multiples of 6"
                    ));
                }
                let m = Monthly::new(p / 6, 0, i / 6);
                Ok(Some(Rate { public: m, private: m, depends_on_school: false }))
            }
            RawRate {
                routine: None,
                periodic: None,
                private_fee: None,
                per_semester: Some(s),
                institution_per_semester: None,
                personal_per_semester: None,
                same_as: None,
            } => {
                if *s < 0 || s % 6 != 0 {
                    return Err(format!(
                        "{name}: per_semester {s} must be a positive multiple of 6 (six monthly parts)"
                    ));
                }
                let m = Monthly::new(0, 0, s / 6);
                Ok(Some(Rate { public: m, private: m, depends_on_school: false }))
            }
            RawRate {
                routine: None,
                periodic: None,
                private_fee: None,
                per_semester: None,
                institution_per_semester: None,
                personal_per_semester: None,
                same_as: Some(_),
            } => Ok(None),
            _ => Err(format!(
                "{name}: give routine and periodic (and private_fee), or per_semester, or institution_per_semester and personal_per_semester, or same_as"
            )),
        }
    };
    let mut out: [Option<Rate>; Level::ALL.len()] = [None; Level::ALL.len()];
    for level in Level::ALL {
        out[level.index()] = direct(level)?;
    }
    for level in Level::ALL {
        if let Some(RawRate { same_as: Some(other), .. }) = levels.get(level.code()) {
            let other_level = Level::parse(other).map_err(|e| format!("{}: same_as: {e}", level.code()))?;
            out[level.index()] = Some(out[other_level.index()].ok_or_else(|| {
                format!("{}: same_as {other} which is itself same_as another level", level.code())
            })?);
        }
    }
    if out.iter().all(Option::is_none) {
        return Err("no level has a rate".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_policy_loads_and_names_its_programme() {
        for p in crate::ids::Programme::ALL {
            assert_eq!(Policy::shipped(p).id, p.id());
        }
    }

    #[test]
    fn shipped_policy_loads() {
        let p = Policy::kjp_plus();
        assert_eq!(p.id, "kjp-plus");
        assert_eq!(p.group_ids, ["poor_family", "transjakarta_driver", "worker"]);
        assert_eq!(p.sha256.len(), 64);
    }

    #[test]
    fn ratio_decimal() {
        let r = Ratio::parse_decimal("1.1").unwrap();
        assert_eq!((r.num, r.den), (11, 10));
        assert_eq!(r.to_string(), "1.1");
        assert!(Ratio::parse_decimal("1,1").is_none());
        assert_eq!(Ratio::integer(5).times(r).to_string(), "5.5");
        let limit = Ratio::integer(5_396_761).times(r);
        assert_eq!((limit.floor(), limit.ceil()), (5_936_437, 5_936_438));
        assert_eq!((Ratio::integer(-3).floor(), Ratio::integer(-3).ceil()), (-3, -3));
    }

    fn broken(from: &str, to: &str) -> PolicyError {
        let text = KJP_PLUS.replacen(from, to, 1);
        assert_ne!(text, KJP_PLUS, "fixture edit {from:?} did not apply");
        Policy::parse("test.toml", &text).unwrap_err()
    }

    fn line_of(needle: &str) -> usize {
        KJP_PLUS.lines().position(|l| l.contains(needle)).expect("needle in policy") + 1
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let e = broken("[programme]\n", "[programme]\ncolour = \"red\"\n");
        assert_eq!(e.line, Some(line_of("[programme]") + 1), "{e}");
        assert!(e.message.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn missing_citation_is_rejected() {
        let e = broken(
            "citation = \"Pergub DKI Jakarta 4/2018 jo. 15/2019, Pasal 5 ayat (1) huruf b\"",
            "citation = \"\"",
        );
        assert!(e.message.contains("requirement \"in_dtks\" has no citation"), "{e}");
        assert_eq!(e.file, "test.toml");
        assert!(e.line.is_some());
    }

    #[test]
    fn overlapping_ranges_are_rejected() {
        let e = broken(
            "from = 2025-01-01\nto = 2025-12-31\nvalue = 5396761",
            "from = 2024-12-01\nto = 2025-12-31\nvalue = 5396761",
        );
        assert!(
            e.message.contains("param ump: range 2024-12-01 to 2025-12-31 overlaps 2024-01-01 to 2024-12-31"),
            "{e}"
        );
        assert_eq!(e.line, Some(line_of("value = 5396761") - 3));
    }

    #[test]
    fn unsorted_ranges_are_rejected() {
        let e = broken(
            "from = 2019-01-01\nto = 2019-12-31\nvalue = 3940973",
            "from = 2030-01-01\nto = 2030-12-31\nvalue = 3940973",
        );
        assert!(e.message.contains("not sorted"), "{e}");
    }

    #[test]
    fn unknown_reason_and_fact_are_rejected() {
        let e = broken("reason = \"NOT_IN_DTKS\"", "reason = \"NOT_IN_DTKZ\"");
        assert!(e.message.contains("reason \"NOT_IN_DTKZ\" is not defined"), "{e}");
        let e = broken("fact = \"in_dtks\"", "fact = \"in_dtkz\"");
        assert!(e.message.contains("unknown fact \"in_dtkz\""), "{e}");
        let e = broken("fact = \"in_dtks\", is = true", "fact = \"in_dtks\", at_most = 3");
        assert!(e.message.contains("yes/no"), "{e}");
    }

    #[test]
    fn funding_order_is_checked() {
        let order = "order = [\"dtks_decile\", \"continuing\"]";
        let e = broken(order, "order = [\"dtks_decile\", \"income\"]");
        assert!(e.message.contains("unknown order key \"income\"; known: dtks_decile, continuing"), "{e}");
        assert_eq!(e.line, Some(line_of(order) - 1));
        let e = broken(order, "order = [\"continuing\", \"continuing\"]");
        assert!(e.message.contains("\"continuing\" is named twice"), "{e}");
        let e = broken("[reasons.BUDGET_CEILING]", "[reasons.BUDGET_CEILINGS]");
        assert!(e.message.contains("reason \"BUDGET_CEILING\" is not defined"), "{e}");
        let p = Policy::kjp_plus();
        let f = p.funding.expect("the shipped policy has a funding order");
        assert_eq!(f.order, [crate::funding::RankKey::DtksDecile, crate::funding::RankKey::Continuing]);
    }

    #[test]
    fn exemption_must_name_a_requirement() {
        let e = broken("requirements = [\"in_dtks\", \"sktm\"]", "requirements = [\"in_dtks\", \"sktmm\"]");
        assert!(e.message.contains("unknown group requirement \"sktmm\""), "{e}");
    }

    #[test]
    fn screen_switch() {
        let p = Policy::kjp_plus();
        let off = p.with_screen("family_car", false).unwrap();
        assert!(!off.rules.iter().find(|r| r.id == "family_car").unwrap().enabled);
        assert!(p.with_screen("no_such_screen", false).is_none());
    }
}
