//! Two sources that disagree about a fact, and the documented rules that settle some of
//! them. A conflict makes the fact unknown: the decision is `review` when the fact could
//! change it, never a silent exclusion. Settling one is a decision with who, when and why.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::facts::{BoolFact, Facts};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conflict {
    /// The regional tax office (Bapenda) lists a car that vehicle registration (Samsat)
    /// shows blocked or transferred before the stage.
    Car {
        plate: String,
        bapenda_line: u32,
        bapenda_as_of: NaiveDate,
        samsat_line: u32,
        samsat_status: String,
        samsat_date: NaiveDate,
    },
    /// DTKS has the family at an address outside Jakarta; the civil registry says the
    /// child lives in Jakarta.
    DtksAddress { dtks_line: u32, dukcapil_line: u32 },
}

/// The documented rules that settle conflicts without an officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Of two records about the same thing, the later one is right: a Samsat block or
    /// transfer dated after the Bapenda record means the family no longer owns the car.
    /// A Bapenda record dated after the block is not settled by this rule.
    LaterSourceWins,
}

impl Rule {
    pub fn parse(name: &str) -> Option<Rule> {
        match name {
            "later-source-wins" => Some(Rule::LaterSourceWins),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Rule::LaterSourceWins => "later-source-wins",
        }
    }
}

impl Conflict {
    /// The fact the two sources disagree about.
    pub fn fact(&self) -> &'static str {
        match self {
            Conflict::Car { .. } => "family_car",
            Conflict::DtksAddress { .. } => "domiciled_dki",
        }
    }

    /// What `rule` says the fact is, if it settles this conflict.
    pub fn settle(&self, rule: Rule) -> Option<(BoolFact, bool)> {
        match (rule, self) {
            (Rule::LaterSourceWins, Conflict::Car { bapenda_as_of, samsat_date, .. }) => {
                (samsat_date > bapenda_as_of).then_some((BoolFact::FamilyCar, false))
            }
            (Rule::LaterSourceWins, Conflict::DtksAddress { .. }) => None,
        }
    }
}

/// Applies `rule` to a child's facts: `Some(facts)` when it settles every conflict, the
/// facts with the settled values set; `None` when any conflict is left for an officer.
/// Several conflicting cars settle only if every one of them does.
pub fn settle_all(facts: &Facts, conflicts: &[Conflict], rule: Rule) -> Option<Facts> {
    if conflicts.is_empty() {
        return None;
    }
    let mut out = *facts;
    for c in conflicts {
        let (fact, value) = c.settle(rule)?;
        out.set(fact, Some(value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn car(bapenda: &str, samsat: &str) -> Conflict {
        Conflict::Car {
            plate: "b1aa".into(),
            bapenda_line: 2,
            bapenda_as_of: crate::ids::parse_date(bapenda).unwrap(),
            samsat_line: 3,
            samsat_status: "blocked".into(),
            samsat_date: crate::ids::parse_date(samsat).unwrap(),
        }
    }

    #[test]
    fn later_source_wins_only_when_samsat_is_later() {
        let rule = Rule::LaterSourceWins;
        assert_eq!(car("2023-01-01", "2024-05-01").settle(rule), Some((BoolFact::FamilyCar, false)));
        assert_eq!(
            car("2024-06-01", "2024-05-01").settle(rule),
            None,
            "Bapenda is newer: an officer decides"
        );
        assert_eq!(car("2024-05-01", "2024-05-01").settle(rule), None, "same day: not later");
        assert_eq!(Conflict::DtksAddress { dtks_line: 1, dukcapil_line: 2 }.settle(rule), None);
    }

    #[test]
    fn every_conflict_must_settle() {
        let f = Facts::default();
        let rule = Rule::LaterSourceWins;
        let settled = settle_all(&f, &[car("2023-01-01", "2024-05-01")], rule).unwrap();
        assert_eq!(settled.get(BoolFact::FamilyCar), Some(false));
        assert!(settle_all(&f, &[car("2023-01-01", "2024-05-01"), car("2024-06-01", "2024-05-01")], rule)
            .is_none());
        assert!(settle_all(&f, &[], rule).is_none());
    }
}
