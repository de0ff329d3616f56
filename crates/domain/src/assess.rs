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

use crate::facts::{BoolFact, Education, Fact, FactKind, FactSet, Facts};
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
    NotInForce { policy: String, what: String, date: NaiveDate },
}

/// A rule's test with its parameters resolved on the reference date.
#[derive(Debug, Clone, Copy)]
enum Check {
    Is {
        fact: Fact,
        bit: u32,
        value: bool,
    },
    /// The level is one of `allowed` (bits by `Level::index`).
    Level {
        allowed: u16,
    },
    In {
        fact: Fact,
        allowed: u8,
    },
    /// Age bounds as birth dates: born on or before `latest`, and after `earliest_excl`.
    Born {
        latest: NaiveDate,
        earliest_excl: NaiveDate,
    },
    /// `min <= value <= max` in whole rupiah: the exact rational bounds rounded inwards
    /// (`v * den <= num` is `v <= floor(num / den)` for a whole `v`).
    Amount {
        fact: Fact,
        min: i64,
        max: i64,
    },
}

impl Check {
    fn fact(&self) -> Fact {
        match *self {
            Check::Is { fact, .. } | Check::In { fact, .. } | Check::Amount { fact, .. } => fact,
            Check::Born { .. } => Fact::Age,
            Check::Level { .. } => Fact::Level,
        }
    }

    /// `(true, false)` as 0 or 1 each; both 0 when the fact is unknown. Written to
    /// compile to few branches: bulk work runs this for every term of every child.
    #[inline(always)]
    fn eval(&self, f: &Facts) -> (u64, u64) {
        let tf = |known: bool, ok: bool| (u64::from(known & ok), u64::from(known & !ok));
        match *self {
            Check::Is { bit, value, .. } => {
                let known = f.flags.known & bit != 0;
                tf(known, (f.flags.value & bit != 0) == value)
            }
            Check::In { allowed, .. } => match f.education {
                Some(e) => tf(true, allowed & e.bit() != 0),
                None => (0, 0),
            },
            Check::Born { latest, earliest_excl } => match f.birth_date {
                Some(d) => tf(true, (d <= latest) & (d > earliest_excl)),
                None => (0, 0),
            },
            Check::Amount { fact, min, max } => match f.number(fact) {
                Some(v) => tf(true, (v >= min) & (v <= max)),
                None => (0, 0),
            },
            Check::Level { allowed } => match f.level {
                Some(l) => tf(true, allowed & (1 << l.index()) != 0),
                None => (0, 0),
            },
        }
    }
}

/// For every known/value combination of five flags: the rules met and not unmet.
type FlagTable = [(u64, u64); 1024];

/// One term of a rule. A rule is `not applies_when or exempt_when... or test`: it is met
/// when any term is true, unmet when every term is false, unknown otherwise.
#[derive(Debug, Clone, Copy)]
struct Term {
    rule: u8,
    negate: bool,
    check: Check,
    /// For an exemption, its index in the rule's `exempt_when` (whose citation it has).
    exemption: Option<u8>,
}

/// What explanations need to know about one rule in force.
#[derive(Debug, Clone)]
struct Compiled {
    /// Index into `Policy::rules`.
    rule: usize,
    reason: u8,
    /// The resolved upper bound of the test, for texts.
    at_most: Option<Ratio>,
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
    /// Every term, for explanations and the review path.
    terms: Vec<Term>,
    /// The yes/no terms, precomputed: for each chunk of five flags, a table indexed by
    /// their known and value bits gives the (met, not unmet) rule masks. Two look-ups
    /// replace a dozen comparisons per child.
    /// `(shift, table)`: for five flags from `shift`, the rules met and not unmet.
    flag_tables: Vec<(u32, Box<FlagTable>)>,
    /// The other terms, by kind, so each loop runs without dispatch.
    other_terms: [Vec<Term>; 2],
    /// The education terms, precomputed for each of the four education states.
    education_table: [(u64, u64); 4],
    /// Monthly amount by level and school type (unknown, negeri, swasta).
    amounts: [[Option<Monthly>; 3]; Level::ALL.len()],
    /// One bit per rule in force.
    all: u64,
    common: u64,
    /// Catalogue index and rule mask of each group in force, in priority order.
    groups: Vec<(u8, u64)>,
    not_target_group: u8,
    params: Vec<ParamUsed>,
}

/// Decides one child. For many children on one date, resolve [`Rules`] once instead.
pub fn assess(facts: &Facts, policy: &Policy, as_of: NaiveDate) -> Result<Decision, AssessError> {
    Ok(Rules::new(policy, as_of)?.assess(facts))
}

impl<'p> Rules<'p> {
    pub fn new(policy: &'p Policy, as_of: NaiveDate) -> Result<Rules<'p>, AssessError> {
        let not_in_force =
            |what: String| AssessError::NotInForce { policy: policy.id.clone(), what, date: as_of };
        let mut params_used: Vec<usize> = Vec::new();
        let mut resolve = |op: &Operand| -> Result<Ratio, AssessError> {
            let mut acc = Ratio { num: 1, den: 1 };
            for term in &op.terms {
                let r = match term {
                    OperandTerm::Constant(n) => Ratio { num: i128::from(*n), den: 1 },
                    OperandTerm::Param(i) => {
                        if !params_used.contains(i) {
                            params_used.push(*i);
                        }
                        policy
                            .param_at(*i, as_of)
                            .ok_or_else(|| {
                                not_in_force(format!("value of parameter {}", policy.params[*i].name))
                            })?
                            .value
                    }
                };
                acc = acc.times(r);
            }
            Ok(acc)
        };
        let mut check = |t: &Test| -> Result<(Check, Option<Ratio>), AssessError> {
            Ok(match t {
                Test::Is { fact, value } => {
                    let FactKind::Bool(bool_fact) = fact.kind() else { unreachable!("checked at load") };
                    (Check::Is { fact: *fact, bit: bool_fact.bit(), value: *value }, None)
                }
                Test::In { fact, allowed } => (Check::In { fact: *fact, allowed: *allowed }, None),
                Test::Level { allowed } => (Check::Level { allowed: *allowed }, None),
                Test::Range { fact: Fact::Age, at_least, at_most } => {
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
                    let check = Check::Born {
                        latest: latest.unwrap_or(NaiveDate::MAX),
                        earliest_excl: earliest_excl.unwrap_or(NaiveDate::MIN),
                    };
                    (check, max)
                }
                Test::Range { fact, at_least, at_most } => {
                    let max = at_most.as_ref().map(&mut resolve).transpose()?;
                    let min = at_least.as_ref().map(&mut resolve).transpose()?;
                    let check = Check::Amount {
                        fact: *fact,
                        min: min.map_or(i64::MIN, |r| r.ceil()),
                        max: max.map_or(i64::MAX, |r| r.floor()),
                    };
                    (check, max)
                }
            })
        };

        let mut compiled = Vec::new();
        let mut terms = Vec::new();
        let mut common = 0u64;
        let mut group_rules = 0u64;
        let mut membership: Vec<(usize, u64)> = Vec::new();
        for (i, rule) in policy.rules.iter().enumerate() {
            if !rule.effective.contains(as_of) || !rule.enabled {
                continue;
            }
            let index = compiled.len() as u8;
            let (test, at_most) = check(&rule.test)?;
            terms.push(Term { rule: index, negate: false, check: test, exemption: None });
            if let Some(when) = &rule.applies_when {
                terms.push(Term { rule: index, negate: true, check: check(when)?.0, exemption: None });
            }
            for (n, e) in rule.exempt_when.iter().enumerate() {
                terms.push(Term {
                    rule: index,
                    negate: false,
                    check: check(&e.when)?.0,
                    exemption: Some(n as u8),
                });
            }
            let bit = 1u64 << index;
            match rule.scope {
                Scope::Common | Scope::Screen => common |= bit,
                Scope::Group => group_rules |= bit,
                Scope::Membership(g) => membership.push((g, bit)),
            }
            compiled.push(Compiled { rule: i, reason: rule.reason as u8, at_most });
        }
        let mut groups = Vec::new();
        for catalogue in 0..policy.group_ids.len() {
            let Some(g) =
                policy.groups.iter().find(|g| g.catalogue == catalogue && g.effective.contains(as_of))
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
        if groups.is_empty() {
            return Err(not_in_force("target group".into()));
        }
        // Without amounts a child could be found eligible at Rp 0: refuse the date instead.
        let rates = policy.amounts_at(as_of).ok_or_else(|| not_in_force("amount table".into()))?.rates;
        let mut amounts = [[None; 3]; Level::ALL.len()];
        for (level, rate) in rates.iter().enumerate() {
            // A level the programme does not pay stays without an amount.
            let Some(rate) = rate else { continue };
            let unknown = (!rate.depends_on_school).then_some(rate.public);
            amounts[level] = [unknown, Some(rate.public), Some(rate.private)];
        }
        let flag_terms: Vec<Term> =
            terms.iter().filter(|t| matches!(t.check, Check::Is { .. })).copied().collect();
        let kind = |k: fn(&Check) -> bool| terms.iter().filter(|t| k(&t.check)).copied().collect::<Vec<_>>();
        let other_terms = [
            kind(|c| matches!(c, Check::Born { .. })),
            kind(|c| matches!(c, Check::Amount { .. } | Check::Level { .. })),
        ];
        let education_terms = kind(|c| matches!(c, Check::In { .. }));
        let education_table =
            [None, Some(Education::Enrolled), Some(Education::OutOfSchool), Some(Education::None)].map(
                |education| {
                    let f = Facts { education, ..Facts::default() };
                    education_terms.iter().fold((0, 0), |(met, not_unmet), t| {
                        let (yes, no) = t.check.eval(&f);
                        let (yes, no) = if t.negate { (no, yes) } else { (yes, no) };
                        (met | yes << t.rule, not_unmet | (no ^ 1) << t.rule)
                    })
                },
            );
        // One table per five flags that some rule tests; chunks no rule reads are skipped.
        let flag_tables = (0..BoolFact::COUNT.div_ceil(5))
            .filter(|chunk| {
                flag_terms
                    .iter()
                    .any(|t| matches!(t.check, Check::Is { bit, .. } if (bit >> (5 * chunk)) & 31 != 0))
            })
            .map(|chunk| {
                let mut table = Box::new([(0u64, 0u64); 1024]);
                for (index, slot) in table.iter_mut().enumerate() {
                    let shift = 5 * chunk;
                    let mut f = Facts::default();
                    f.flags.known = ((index & 31) << shift) as u32;
                    f.flags.value = (((index >> 5) & 31) << shift) as u32 & f.flags.known;
                    for t in &flag_terms {
                        let Check::Is { bit, .. } = t.check else { continue };
                        if (bit >> shift) & 31 == 0 {
                            continue;
                        }
                        let (yes, no) = t.check.eval(&f);
                        let (yes, no) = if t.negate { (no, yes) } else { (yes, no) };
                        slot.0 |= yes << t.rule;
                        slot.1 |= (no ^ 1) << t.rule;
                    }
                }
                (5 * chunk as u32, table)
            })
            .collect();
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
            all: if compiled.len() == 64 { u64::MAX } else { (1u64 << compiled.len()) - 1 },
            compiled,
            terms,
            flag_tables,
            other_terms,
            education_table,
            amounts,
            common,
            groups,
            not_target_group: policy.reason_index(NOT_TARGET_GROUP).expect("checked at load") as u8,
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
    #[inline]
    pub fn monthly(&self, level: Level, school: Option<SchoolType>) -> Option<Monthly> {
        let column = match school {
            None => 0,
            Some(SchoolType::Negeri) => 1,
            Some(SchoolType::Swasta) => 2,
        };
        self.amounts[level.index()][column]
    }

    /// Decides one child.
    pub fn assess(&self, f: &Facts) -> Decision {
        let (met, not_unmet) = self.masks_fast(f);
        let unmet = self.all & !not_unmet;
        let unknown_rules = not_unmet & !met;
        // Which facts hold unknown rules open: needed only on the (rare) review path.
        let facts_of = |mask: u64| -> u32 {
            let mut out = 0;
            for t in self.terms.iter().filter(|t| mask & (1 << t.rule) != 0) {
                if t.check.eval(f) == (0, 0) {
                    out |= t.check.fact().bit();
                }
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
            let groups_unknown = if first_true.is_some() { 0 } else { facts_of(open_unknown) };
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
                    None => unknown |= Fact::School.bit(),
                },
            }
            if unknown != 0 {
                status = Status::Review;
                monthly = None;
            }
        }
        Decision {
            status,
            group: if status == Status::Ineligible { None } else { first_true },
            unmet: ReasonSet(reasons),
            unknown: FactSet(unknown),
            monthly,
        }
    }

    /// Rules met, and rules not unmet, as bit masks (a rule in neither is unknown).
    #[inline]
    fn masks(&self, f: &Facts) -> (u64, u64) {
        let mut met = 0u64;
        let mut not_unmet = 0u64;
        for t in &self.terms {
            let (yes, no) = t.check.eval(f);
            let (yes, no) = if t.negate { (no, yes) } else { (yes, no) };
            met |= yes << t.rule;
            not_unmet |= (no ^ 1) << t.rule;
        }
        (met, not_unmet)
    }

    /// [`Rules::masks`], the fast way: table look-ups for the yes/no terms, then the rest.
    #[inline]
    fn masks_fast(&self, f: &Facts) -> (u64, u64) {
        let (known, value) = (f.flags.known, f.flags.value);
        let mut met = 0u64;
        let mut not_unmet = 0u64;
        for (shift, table) in &self.flag_tables {
            let shift = *shift;
            let index = ((known >> shift) & 31) | (((value >> shift) & 31) << 5);
            let (m, n) = table[index as usize];
            met |= m;
            not_unmet |= n;
        }
        let (m, n) = self.education_table[match f.education {
            None => 0,
            Some(Education::Enrolled) => 1,
            Some(Education::OutOfSchool) => 2,
            Some(Education::None) => 3,
        }];
        met |= m;
        not_unmet |= n;
        for terms in &self.other_terms {
            for t in terms {
                let (yes, no) = t.check.eval(f);
                let (yes, no) = if t.negate { (no, yes) } else { (yes, no) };
                met |= yes << t.rule;
                not_unmet |= (no ^ 1) << t.rule;
            }
        }
        (met, not_unmet)
    }

    /// Expands a decision into what a parent, an officer or an auditor reads.
    pub fn explain(&self, facts: &Facts, d: &Decision) -> Explanation<'_> {
        let policy = self.policy;
        let mut reasons = Vec::new();
        let (_, not_unmet) = self.masks(facts);
        let unmet_rules = self.all & !not_unmet;
        for index in d.unmet.iter() {
            let reason = policy.reason(index);
            let rule = (0..self.compiled.len())
                .find(|&bit| unmet_rules & (1 << bit) != 0 && self.compiled[bit].reason as usize == index)
                .map(|bit| &self.compiled[bit]);
            let article = match rule {
                Some(c) => policy.rules[c.rule].citation.as_str(),
                None => reason.citation.as_deref().unwrap_or_default(),
            };
            let limit = rule.and_then(|c| c.at_most);
            // The claimed groups this reason fails (none for rules common to every child).
            let groups = self
                .groups
                .iter()
                .filter(|(catalogue, mask)| {
                    facts.claims.contains(*catalogue as usize)
                        && (0..self.compiled.len()).any(|bit| {
                            mask & unmet_rules & (1 << bit) != 0
                                && self.compiled[bit].reason as usize == index
                        })
                })
                .map(|(catalogue, _)| policy.group_ids[*catalogue as usize].as_str())
                .collect();
            reasons.push(ReasonText {
                code: reason.code.as_str(),
                fact: None,
                groups,
                article,
                text_id: self.fill(&reason.texts.id, facts, limit, None, Lang::Id),
                text_en: self.fill(&reason.texts.en, facts, limit, None, Lang::En),
            });
        }
        let unknown_reason = policy.reason(policy.reason_index(UNKNOWN_FACT).expect("checked at load"));
        for fact in d.unknown.iter() {
            // The article of the first rule the fact feeds, or of the amounts.
            let article = self
                .terms
                .iter()
                .find(|t| t.check.fact() == fact)
                .map(|t| {
                    let rule = &policy.rules[self.compiled[t.rule as usize].rule];
                    match t.exemption {
                        Some(n) => rule.exempt_when[n as usize].citation.as_str(),
                        None => rule.citation.as_str(),
                    }
                })
                .or_else(|| {
                    matches!(fact, Fact::Level | Fact::School)
                        .then(|| policy.amounts_at(self.as_of).map(|a| a.citation.as_str()))
                        .flatten()
                })
                .or(unknown_reason.citation.as_deref())
                .unwrap_or_default();
            reasons.push(ReasonText {
                code: UNKNOWN_FACT,
                fact: Some(fact.input_field()),
                groups: Vec::new(),
                article,
                text_id: self.fill(&unknown_reason.texts.id, facts, None, Some(fact), Lang::Id),
                text_en: self.fill(&unknown_reason.texts.en, facts, None, Some(fact), Lang::En),
            });
        }
        let mut basis = Vec::new();
        if let Some(catalogue) = d.group {
            if let Some(g) = policy
                .groups
                .iter()
                .find(|g| g.catalogue == catalogue as usize && g.effective.contains(self.as_of))
            {
                basis.push(g.citation.as_str());
                basis.extend(g.exempt.iter().map(|e| e.citation.as_str()));
            }
            let mask = self.groups.iter().find(|(c, _)| *c == catalogue).map_or(0, |(_, m)| *m);
            for t in self.terms.iter().filter(|t| t.exemption.is_some() && mask & (1 << t.rule) != 0) {
                let test_met = self.terms.iter().any(|u| {
                    u.rule == t.rule && u.exemption.is_none() && !u.negate && u.check.eval(facts) == (1, 0)
                });
                if t.check.eval(facts) == (1, 0) && !test_met {
                    let rule = &policy.rules[self.compiled[t.rule as usize].rule];
                    basis.push(rule.exempt_when[t.exemption.unwrap_or_default() as usize].citation.as_str());
                }
            }
        }
        Explanation {
            status: d.status,
            group: d.group.map(|g| policy.group_ids[g as usize].as_str()),
            basis,
            reasons,
            monthly: d.monthly,
            policy: PolicyRef { id: &policy.id, version: &policy.version, sha256: &policy.sha256 },
            as_of: self.as_of,
            params: &self.params,
        }
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
            "as_of" => Some(self.as_of.format("%d-%m-%Y").to_string()),
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
pub struct PolicyRef<'a> {
    pub id: &'a str,
    pub version: &'a str,
    pub sha256: &'a str,
}

/// One reason, as a parent and an auditor read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonText<'a> {
    pub code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fact: Option<&'static str>,
    /// The claimed groups whose requirement this is; empty for rules every child meets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<&'a str>,
    pub article: &'a str,
    pub text_id: String,
    pub text_en: String,
}

/// A decision in full: status, the qualifying group, every reason with its article and
/// plain sentences, the amount, and what is needed to replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation<'a> {
    pub status: Status,
    pub group: Option<&'a str>,
    /// The articles that made the child eligible: the qualifying group's, and each
    /// exemption it relied on (e.g. Pasal 5 ayat 5 for a worker's family).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub basis: Vec<&'a str>,
    pub reasons: Vec<ReasonText<'a>>,
    pub monthly: Option<Monthly>,
    pub policy: PolicyRef<'a>,
    pub as_of: NaiveDate,
    pub params: &'a [ParamUsed],
}
