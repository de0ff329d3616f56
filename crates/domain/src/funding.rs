//! The budget ceiling. When a stage's budget does not cover every eligible child, the
//! policy's `[funding]` order decides who is funded; the others are eligible but
//! unfunded (`BUDGET_CEILING`) and are assessed again in the next stage.
//!
//! Funding is strict: children are funded in rank order while the budget lasts, and the
//! first child who does not fit ends it. Nobody lower in the order is funded ahead of a
//! higher-ranked child because their amount happens to be smaller.

use std::cmp::Ordering;

use serde::Serialize;

use crate::ids::Rupiah;

/// The reason code an unfunded decision carries; a policy with `[funding]` must give it a
/// text.
pub const BUDGET_CEILING: &str = "BUDGET_CEILING";

/// One key of the funding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RankKey {
    /// The family's DTKS welfare decile, lowest (poorest) first; a family outside DTKS
    /// comes after every decile.
    DtksDecile,
    /// A recipient of the previous stage before a new child.
    Continuing,
}

impl RankKey {
    pub const ALL: [RankKey; 2] = [RankKey::DtksDecile, RankKey::Continuing];

    pub fn name(self) -> &'static str {
        match self {
            RankKey::DtksDecile => "dtks_decile",
            RankKey::Continuing => "continuing",
        }
    }

    pub fn parse(raw: &str) -> Option<RankKey> {
        RankKey::ALL.into_iter().find(|k| k.name() == raw)
    }
}

/// The funding order of a policy: its keys in turn, then the NIK so that the order is
/// total and the same on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    pub order: Vec<RankKey>,
    pub citation: String,
    pub note: Option<String>,
}

/// An eligible child competing for the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Only the last resort of the order; any stable identifier works.
    pub nik: u64,
    pub decile: Option<u8>,
    pub continuing: bool,
    /// What funding the child costs over the whole stage.
    pub cost: Rupiah,
}

/// What a ceiling does to a set of claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub budget: Rupiah,
    pub funded: usize,
    pub unfunded: usize,
    pub funded_cost: Rupiah,
    pub unfunded_cost: Rupiah,
    /// The last funded child's rank position: its decile and whether it was continuing.
    pub last_funded: Option<RankPosition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RankPosition {
    pub decile: Option<u8>,
    pub continuing: bool,
}

impl Funding {
    /// Compares two claims in funding order: `Less` is funded first.
    pub fn compare(&self, a: &Claim, b: &Claim) -> Ordering {
        for key in &self.order {
            let o = match key {
                // `None` (outside DTKS) after every decile.
                RankKey::DtksDecile => {
                    a.decile.map_or(u16::MAX, u16::from).cmp(&b.decile.map_or(u16::MAX, u16::from))
                }
                RankKey::Continuing => b.continuing.cmp(&a.continuing),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.nik.cmp(&b.nik)
    }

    /// Decides who is funded under `budget`. Returns, for each claim in the order given,
    /// whether it is funded, and the outcome.
    pub fn fund(&self, claims: &[Claim], budget: Rupiah) -> (Vec<bool>, Outcome) {
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_unstable_by(|&i, &j| self.compare(&claims[i], &claims[j]));
        let mut funded = vec![false; claims.len()];
        let mut left = budget.get();
        let mut out = Outcome {
            budget,
            funded: 0,
            unfunded: 0,
            funded_cost: Rupiah::new(0),
            unfunded_cost: Rupiah::new(0),
            last_funded: None,
        };
        let mut open = true;
        for i in order {
            let c = &claims[i];
            if open && c.cost.get() <= left {
                left -= c.cost.get();
                funded[i] = true;
                out.funded += 1;
                out.funded_cost = Rupiah::new(out.funded_cost.get() + c.cost.get());
                out.last_funded = Some(RankPosition { decile: c.decile, continuing: c.continuing });
            } else {
                open = false;
                out.unfunded += 1;
                out.unfunded_cost = Rupiah::new(out.unfunded_cost.get() + c.cost.get());
            }
        }
        (funded, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(nik: u64, decile: Option<u8>, continuing: bool, cost: i64) -> Claim {
        Claim { nik, decile, continuing, cost: Rupiah::new(cost) }
    }

    fn order() -> Funding {
        Funding { order: vec![RankKey::DtksDecile, RankKey::Continuing], citation: "c".into(), note: None }
    }

    #[test]
    fn lowest_decile_first_then_continuing_then_nik() {
        let claims = [
            claim(5, Some(2), false, 100),
            claim(4, Some(1), false, 100),
            claim(3, None, true, 100),
            claim(2, Some(2), true, 100),
            claim(1, Some(2), false, 100),
        ];
        let (funded, out) = order().fund(&claims, Rupiah::new(300));
        // Decile 1 (nik 4), then decile 2 continuing (nik 2), then decile 2 new by NIK (nik 1).
        assert_eq!(funded, [false, true, false, true, true]);
        assert_eq!((out.funded, out.unfunded), (3, 2));
        assert_eq!((out.funded_cost.get(), out.unfunded_cost.get()), (300, 200));
        assert_eq!(out.last_funded, Some(RankPosition { decile: Some(2), continuing: false }));
    }

    #[test]
    fn the_first_child_who_does_not_fit_ends_funding() {
        // The second child costs more than what is left; the cheaper third must not jump ahead.
        let claims =
            [claim(1, Some(1), false, 100), claim(2, Some(2), false, 300), claim(3, Some(3), false, 50)];
        let (funded, out) = order().fund(&claims, Rupiah::new(350));
        assert_eq!(funded, [true, false, false]);
        assert_eq!(out.funded_cost.get(), 100);
    }

    #[test]
    fn a_budget_that_covers_everyone_funds_everyone() {
        let claims = [claim(1, Some(1), false, 100), claim(2, None, false, 100)];
        let (funded, out) = order().fund(&claims, Rupiah::new(200));
        assert_eq!(funded, [true, true]);
        assert_eq!(out.unfunded, 0);
        let (none, out) = order().fund(&claims, Rupiah::new(0));
        assert_eq!(none, [false, false]);
        assert_eq!(out.last_funded, None);
    }

    #[test]
    fn continuing_first_when_the_policy_says_so() {
        let f = Funding {
            order: vec![RankKey::Continuing, RankKey::DtksDecile],
            citation: "c".into(),
            note: None,
        };
        let claims = [claim(1, Some(1), false, 1), claim(2, Some(9), true, 1)];
        let (funded, _) = f.fund(&claims, Rupiah::new(1));
        assert_eq!(funded, [false, true]);
    }
}
