//! Deciding one child: `assess(facts, policy, as_of) -> Decision`. Pure, no I/O.
//!
//! A policy is first resolved on the reference date into [`Rules`]: the rules in force,
//! their parameters turned into plain numbers and birth-date bounds, and each group's set
//! of rules as a bit mask. Deciding is then a handful of comparisons and mask operations,
//! so bulk work keeps the reasons as compact sets; [`Rules::explain`] expands them into
//! codes, articles and sentences on demand.
//!
//! Three-valued logic: each rule is met, unmet or unknown. A child is eligible when no
//! common rule or screen fails and some claimed group has all its rules met. An unknown
//! fact puts the decision in `review` only if it could change the outcome.

use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

use crate::facts::{Fact, FactKind, FactSet, Facts, GroupSet};
use crate::ids::{Level, Rupiah, SchoolType};
use crate::policy::{
    Monthly, Operand, OperandTerm, Policy, Ratio, Scope, Test, Unit, NOT_TARGET_GROUP, UNKNOWN_FACT,
};

/// The outcome of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Eligible,
    Ineligible,
    /// An unknown fact (or, in a stage run, two sources that disagree) could change it.
    Review,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Eligible => "eligible",
            Status::Ineligible => "ineligible",
            Status::Review => "review",
        }
    }
}

/// A set of reason codes, as indexes into the policy's reason table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ReasonSet(pub u64);

impl ReasonSet {
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |i| self.contains(*i))
    }
}

/// A compact decision: what bulk work stores and counts. Expand it with
/// [`Rules::explain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    pub status: Status,
    /// The first qualifying group, as an index into the policy's group catalogue.
    pub group: Option<u8>,
    /// Unmet rules' reasons (ineligible).
    pub unmet: ReasonSet,
    /// Facts whose absence holds the decision in review.
    pub unknown: FactSet,
    pub monthly: Option<Monthly>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessError {
    #[error("policy {policy} has no {what} in force on {date}")]
    NotInForce {
        policy: String,
        what: String,
        date: NaiveDate,
    },
}

/// A rule's test with its parameters resolved on the reference date.
#[derive(Debug, Clone, Copy)]
enum Check {
    Is {
        fact: Fact,
        bool_fact: crate::facts::BoolFact,
        value: bool,
    },
    In {
        fact: Fact,
        allowed: u8,
    },
    /// Age bounds as birth dates: born on or before `latest`, and after `earliest_excl`.
    Born {
        latest: Option<NaiveDate>,
        earliest_excl: Option<NaiveDate>,
    },
    /// `min <= value` and `value * max.den <= max.num`.
    Amount {
        fact: Fact,
        at_least: Option<Ratio>,
        at_most: Option<Ratio>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    True,
    False,
    Unknown,
}

impl Check {
    fn fact(&self) -> Fact {
        match *self {
            Check::Is { fact, .. } | Check::In { fact, .. } | Check::Amount { fact, .. } => fact,
            Check::Born { .. } => Fact::Age,
        }
    }

    #[inline]
    fn eval(&self, f: &Facts) -> Tri {
        let b = |v: bool| if v { Tri::True } else { Tri::False };
        match *self {
            Check::Is {
                bool_fact, value, ..
            } => match f.get(bool_fact) {
                Some(v) => b(v == value),
                None => Tri::Unknown,
            },
            Check::In { allowed, .. } => match f.education {
                Some(e) => b(allowed & e.bit() != 0),
                None => Tri::Unknown,
            },
            Check::Born {
                latest,
                earliest_excl,
            } => match f.birth_date {
                Some(d) => b(latest.is_none_or(|l| d <= l) && earliest_excl.is_none_or(|e| d > e)),
                None => Tri::Unknown,
            },
            Check::Amount {
                fact,
                at_least,
                at_most,
            } => {
                let v = match fact {
                    Fact::ParentWage => f.parent_wage,
                    _ => f.family_property_njop,
                };
                match v {
                    Some(v) => {
                        let v = i128::from(v.get());
                        b(at_least.is_none_or(|r| v * r.den >= r.num)
                            && at_most.is_none_or(|r| v * r.den <= r.num))
                    }
                    None => Tri::Unknown,
                }
            }
        }
    }
}

/// One rule in force, compiled.
#[derive(Debug, Clone)]
struct Compiled {
    /// Index into `Policy::rules`.
    rule: usize,
    reason: u8,
    test: Check,
    applies_when: Option<Check>,
    exempt_when: Vec<Check>,
    /// For texts: the resolved bounds of the test.
    at_most: Option<Ratio>,
}

impl Compiled {
    /// Met, unmet, or unknown with the facts that could change it.
    #[inline]
    fn eval(&self, f: &Facts) -> (Tri, u32) {
        let mut unknown = 0u32;
        if let Some(when) = &self.applies_when {
            match when.eval(f) {
                Tri::False => return (Tri::True, 0),
                Tri::Unknown => unknown |= when.fact().bit(),
                Tri::True => {}
            }
        }
        for ex in &self.exempt_when {
            match ex.eval(f) {
                Tri::True => return (Tri::True, 0),
                Tri::Unknown => unknown |= ex.fact().bit(),
                Tri::False => {}
            }
        }
        match self.test.eval(f) {
            Tri::True => (Tri::True, 0),
            Tri::Unknown => (Tri::Unknown, unknown | self.test.fact().bit()),
            Tri::False if unknown != 0 => (Tri::Unknown, unknown),
            Tri::False => (Tri::False, 0),
        }
    }
}

/// A parameter value used by the rules on the date, recorded with each decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamUsed {
    pub name: String,
    pub value: String,
    pub citation: String,
}

/// A policy resolved on one reference date. Build once, assess many.
#[derive(Debug, Clone)]
pub struct Rules<'p> {
    policy: &'p Policy,
    as_of: NaiveDate,
    compiled: Vec<Compiled>,
    common: u64,
    /// Catalogue index and rule mask of each group in force, in priority order.
    groups: Vec<(u8, u64)>,
    rates: Option<[crate::policy::Rate; 9]>,
    not_target_group: u8,
    params: Vec<ParamUsed>,
}

/// Decides one child. For many children on one date, resolve [`Rules`] once instead.
pub fn assess(facts: &Facts, policy: &Policy, as_of: NaiveDate) -> Result<Decision, AssessError> {
    Ok(Rules::new(policy, as_of)?.assess(facts))
}

impl<'p> Rules<'p> {
    pub fn new(policy: &'p Policy, as_of: NaiveDate) -> Result<Rules<'p>, AssessError> {
        let not_in_force = |what: String| AssessError::NotInForce {
            policy: policy.id.clone(),
            what,
            date: as_of,
        };
        let mut params_used: Vec<usize> = Vec::new();
        let mut resolve = |op: &Operand| -> Result<Ratio, AssessError> {
            let mut acc = Ratio { num: 1, den: 1 };
            for term in &op.terms {
                let r = match term {
                    OperandTerm::Constant(n) => Ratio {
                        num: i128::from(*n),
                        den: 1,
                    },
                    OperandTerm::Param(i) => {
                        if !params_used.contains(i) {
                            params_used.push(*i);
                        }
                        policy
                            .param_at(*i, as_of)
                            .ok_or_else(|| {
                                not_in_force(format!(
                                    "value of parameter {}",
                                    policy.params[*i].name
                                ))
                            })?
                            .value
                    }
                };
                acc = acc.mul(r);
            }
            Ok(acc)
        };
        let mut check = |t: &Test| -> Result<(Check, Option<Ratio>), AssessError> {
            Ok(match t {
                Test::Is { fact, value } => {
                    let FactKind::Bool(bool_fact) = fact.kind() else {
                        unreachable!("checked at load")
                    };
                    (
                        Check::Is {
                            fact: *fact,
                            bool_fact,
                            value: *value,
                        },
                        None,
                    )
                }
                Test::In { fact, allowed } => (
                    Check::In {
                        fact: *fact,
                        allowed: *allowed,
                    },
                    None,
                ),
                Test::Range {
                    fact: Fact::Age,
                    at_least,
                    at_most,
                } => {
                    let years = |r: Ratio, extra: i128| -> Result<Option<NaiveDate>, AssessError> {
                        let months = u32::try_from((r.num / r.den + extra) * 12)
                            .map_err(|_| not_in_force("a valid age bound".into()))?;
                        Ok(as_of.checked_sub_months(Months::new(months)))
                    };
                    let latest = at_least
                        .as_ref()
                        .map(&mut resolve)
                        .transpose()?
                        .map(|r| years(r, 0))
                        .transpose()?
                        .flatten();
                    let max = at_most.as_ref().map(&mut resolve).transpose()?;
                    let earliest_excl = max.map(|r| years(r, 1)).transpose()?.flatten();
                    (
                        Check::Born {
                            latest,
                            earliest_excl,
                        },
                        max,
                    )
                }
                Test::Range {
                    fact,
                    at_least,
                    at_most,
                } => {
                    let max = at_most.as_ref().map(&mut resolve).transpose()?;
                    (
                        Check::Amount {
                            fact: *fact,
                            at_least: at_least.as_ref().map(&mut resolve).transpose()?,
                            at_most: max,
                        },
                        max,
                    )
                }
            })
        };

        let mut compiled = Vec::new();
        let mut common = 0u64;
        let mut group_rules = 0u64;
        let mut membership: Vec<(usize, u64)> = Vec::new();
        for (i, rule) in policy.rules.iter().enumerate() {
            if !rule.effective.contains(as_of) || !rule.enabled {
                continue;
            }
            let (test, at_most) = check(&rule.test)?;
            let applies_when = rule
                .applies_when
                .as_ref()
                .map(|t| check(t).map(|c| c.0))
                .transpose()?;
            let exempt_when = rule
                .exempt_when
                .iter()
                .map(|e| check(&e.when).map(|c| c.0))
                .collect::<Result<_, _>>()?;
            let bit = 1u64 << compiled.len();
            match rule.scope {
                Scope::Common | Scope::Screen => common |= bit,
                Scope::Group => group_rules |= bit,
                Scope::Membership(g) => membership.push((g, bit)),
            }
            compiled.push(Compiled {
                rule: i,
                reason: rule.reason as u8,
                test,
                applies_when,
                exempt_when,
                at_most,
            });
        }
        let mut groups = Vec::new();
        for catalogue in 0..policy.group_ids.len() {
            let Some(g) = policy
                .groups
                .iter()
                .find(|g| g.catalogue == catalogue && g.effective.contains(as_of))
            else {
                continue;
            };
            let mut mask = group_rules;
            for ex in &g.exempt {
                for (bit, c) in compiled.iter().enumerate() {
                    if ex.requirements.contains(&policy.rules[c.rule].id) {
                        mask &= !(1 << bit);
                    }
                }
            }
            for (mg, bit) in &membership {
                if *mg == catalogue {
                    mask |= bit;
                }
            }
            groups.push((catalogue as u8, mask));
        }
        let rates = policy.amounts_at(as_of).map(|a| a.rates);
        let mut params: Vec<ParamUsed> = params_used
            .into_iter()
            .filter_map(|i| {
                let v = policy.param_at(i, as_of)?;
                Some(ParamUsed {
                    name: policy.params[i].name.clone(),
                    value: v.value.to_string(),
                    citation: v.citation.clone(),
                })
            })
            .collect();
        params.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Rules {
            policy,
            as_of,
            compiled,
            common,
            groups,
            rates,
            not_target_group: policy
                .reason_index(NOT_TARGET_GROUP)
                .expect("checked at load") as u8,
            params,
        })
    }

    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// The parameters the rules use on this date, with their citations.
    pub fn params(&self) -> &[ParamUsed] {
        &self.params
    }

    /// The monthly amount for a level and school type on this date.
    pub fn monthly(&self, level: Level, school: Option<SchoolType>) -> Option<Monthly> {
        let rate = self.rates.as_ref()?[level.index()];
        match school {
            Some(SchoolType::Swasta) => Some(rate.private),
            Some(SchoolType::Negeri) => Some(rate.public),
            None if !rate.depends_on_school => Some(rate.public),
            None => None,
        }
    }

    /// Decides one child.
    pub fn assess(&self, f: &Facts) -> Decision {
        let mut unmet = 0u64;
        let mut unknown_rules = 0u64;
        let mut unknown_facts = [0u32; 64];
        for (bit, c) in self.compiled.iter().enumerate() {
            match c.eval(f) {
                (Tri::True, _) => {}
                (Tri::False, _) => unmet |= 1 << bit,
                (Tri::Unknown, facts) => {
                    unknown_rules |= 1 << bit;
                    unknown_facts[bit] = facts;
                }
            }
        }
        let facts_of = |mask: u64| -> u32 {
            let mut out = 0;
            let mut m = mask;
            while m != 0 {
                out |= unknown_facts[m.trailing_zeros() as usize];
                m &= m - 1;
            }
            out
        };

        let claimed = |catalogue: u8| f.claims.contains(catalogue as usize);
        let mut first_true: Option<u8> = None;
        let mut any_open = false; // a claimed group that is not false
        let mut group_unmet = 0u64;
        let mut open_unknown = 0u64;
        for &(catalogue, mask) in self.groups.iter().filter(|(c, _)| claimed(*c)) {
            if unmet & mask != 0 {
                group_unmet |= unmet & mask;
            } else if unknown_rules & mask != 0 {
                any_open = true;
                open_unknown |= unknown_rules & mask;
            } else {
                any_open = true;
                first_true.get_or_insert(catalogue);
            }
        }
        let common_unmet = unmet & self.common;
        let common_unknown = unknown_rules & self.common;

        let (status, unmet_rules, unknown) = if common_unmet != 0 || !any_open {
            (Status::Ineligible, common_unmet | group_unmet, 0)
        } else if first_true.is_some() && common_unknown == 0 {
            (Status::Eligible, 0, 0)
        } else {
            let groups_unknown = if first_true.is_some() {
                0
            } else {
                facts_of(open_unknown)
            };
            (Status::Review, 0, facts_of(common_unknown) | groups_unknown)
        };

        let mut reasons = 0u64;
        let mut m = unmet_rules;
        while m != 0 {
            reasons |= 1 << self.compiled[m.trailing_zeros() as usize].reason;
            m &= m - 1;
        }
        if status == Status::Ineligible && f.claims.is_empty() {
            reasons |= 1 << self.not_target_group;
        }
        if status == Status::Ineligible && reasons == 0 {
            // Only groups not in force on the date were claimed.
            reasons |= 1 << self.not_target_group;
        }

        // The amount needs the level (and, where it matters, the school type).
        let mut unknown = unknown;
        let mut status = status;
        let mut monthly = None;
        if status != Status::Ineligible {
            match f.level {
                None => unknown |= Fact::Level.bit(),
                Some(level) => match self.monthly(level, f.school) {
                    Some(m) => monthly = (status == Status::Eligible).then_some(m),
                    None if self.rates.is_some() => unknown |= Fact::School.bit(),
                    None => {}
                },
            }
            if unknown != 0 {
                status = Status::Review;
                monthly = None;
            }
        }
        Decision {
            status,
            group: if status == Status::Ineligible {
                None
            } else {
                first_true
            },
            unmet: ReasonSet(reasons),
            unknown: FactSet(unknown),
            monthly,
        }
    }

    /// Whether the rules could pay this decision (an amount table is in force).
    pub fn has_amounts(&self) -> bool {
        self.rates.is_some()
    }

    /// Expands a decision into what a parent, an officer or an auditor reads.
    pub fn explain(&self, facts: &Facts, d: &Decision) -> Explanation {
        let policy = self.policy;
        let mut reasons = Vec::new();
        for index in d.unmet.iter() {
            let reason = policy.reason(index);
            let rule = self
                .compiled
                .iter()
                .find(|c| c.reason as usize == index && self.unmet_by(facts, c));
            let article = match rule {
                Some(c) => policy.rules[c.rule].citation.clone(),
                None => reason.citation.clone().unwrap_or_default(),
            };
            let limit = rule.and_then(|c| c.at_most);
            reasons.push(ReasonText {
                code: reason.code.clone(),
                fact: None,
                article,
                text_id: self.fill(&reason.texts.id, facts, limit, None, Lang::Id),
                text_en: self.fill(&reason.texts.en, facts, limit, None, Lang::En),
            });
        }
        let unknown_reason =
            policy.reason(policy.reason_index(UNKNOWN_FACT).expect("checked at load"));
        for fact in d.unknown.iter() {
            // The article of the first rule the fact feeds, or of the amounts.
            let article = self
                .compiled
                .iter()
                .find(|c| {
                    c.test.fact() == fact
                        || c.applies_when.is_some_and(|w| w.fact() == fact)
                        || c.exempt_when.iter().any(|e| e.fact() == fact)
                })
                .map(|c| policy.rules[c.rule].citation.clone())
                .or_else(|| {
                    matches!(fact, Fact::Level | Fact::School)
                        .then(|| policy.amounts_at(self.as_of).map(|a| a.citation.clone()))
                        .flatten()
                })
                .or_else(|| unknown_reason.citation.clone())
                .unwrap_or_default();
            reasons.push(ReasonText {
                code: UNKNOWN_FACT.to_string(),
                fact: Some(fact.input_field()),
                article,
                text_id: self.fill(&unknown_reason.texts.id, facts, None, Some(fact), Lang::Id),
                text_en: self.fill(&unknown_reason.texts.en, facts, None, Some(fact), Lang::En),
            });
        }
        Explanation {
            status: d.status,
            group: d.group.map(|g| policy.group_ids[g as usize].clone()),
            reasons,
            monthly: d.monthly,
            policy: PolicyRef {
                id: policy.id.clone(),
                version: policy.version.clone(),
                sha256: policy.sha256.clone(),
            },
            as_of: self.as_of,
            params: self.params.clone(),
        }
    }

    fn unmet_by(&self, facts: &Facts, c: &Compiled) -> bool {
        c.eval(facts).0 == Tri::False
    }

    fn fill(
        &self,
        template: &str,
        facts: &Facts,
        limit: Option<Ratio>,
        fact: Option<Fact>,
        lang: Lang,
    ) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 1..start + len];
            match self.placeholder(name, facts, limit, fact, lang) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..=start + len]),
            }
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }

    fn placeholder(
        &self,
        name: &str,
        facts: &Facts,
        limit: Option<Ratio>,
        fact: Option<Fact>,
        lang: Lang,
    ) -> Option<String> {
        let rp = |v: i64| Rupiah::new(v).to_string();
        match name {
            "fact" => fact.map(|f| {
                let label = self.policy.label(f);
                match lang {
                    Lang::Id => label.id.clone(),
                    Lang::En => label.en.clone(),
                }
            }),
            "age" => facts.birth_date.map(|b| age_on(b, self.as_of).to_string()),
            "parent_wage" => facts.parent_wage.map(|w| w.to_string()),
            "family_property_njop" => facts.family_property_njop.map(|w| w.to_string()),
            "limit" => limit.map(|l| rp(l.floor())),
            param => {
                let i = self.policy.param_index(param)?;
                let v = self.policy.param_at(i, self.as_of)?;
                Some(match v.unit {
                    Some(Unit::Rupiah) => rp(v.value.floor()),
                    Some(Unit::Factor) if lang == Lang::Id => v.value.to_string().replace('.', ","),
                    _ => v.value.to_string(),
                })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Id,
    En,
}

/// Whole years from `birth` to `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// Which policy a decision was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

/// One reason, as a parent and an auditor read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonText {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fact: Option<&'static str>,
    pub article: String,
    pub text_id: String,
    pub text_en: String,
}

/// A decision in full: status, the qualifying group, every reason with its article and
/// plain sentences, the amount, and what is needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub status: Status,
    pub group: Option<String>,
    pub reasons: Vec<ReasonText>,
    pub monthly: Option<Monthly>,
    pub policy: PolicyRef,
    pub as_of: NaiveDate,
    pub params: Vec<ParamUsed>,
}

/// A convenience for tests and callers that hold group names.
pub fn claims(policy: &Policy, names: &[&str]) -> Option<GroupSet> {
    let mut set = GroupSet::default();
    for n in names {
        set.insert(policy.group_index(n)?);
    }
    Some(set)
}
