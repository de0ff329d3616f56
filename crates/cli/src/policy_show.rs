//! `kjp policy show`: the groups, their requirements and exemptions as a tree, each with
//! its citation, and the parameters and amounts in force on a date.

use std::fmt::Write;

use chrono::NaiveDate;
use kjp_domain::ids::Level;
use kjp_domain::policy::{Rule, Scope, Test};
use kjp_domain::{Policy, Rupiah};

fn test_text(policy: &Policy, t: &Test) -> String {
    let operand = |o: &kjp_domain::policy::Operand| {
        o.terms
            .iter()
            .map(|t| match t {
                kjp_domain::policy::OperandTerm::Constant(n) => n.to_string(),
                kjp_domain::policy::OperandTerm::Param(i) => policy.params[*i].name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" x ")
    };
    match t {
        Test::Is { fact, value } => format!("{} = {value}", fact.name()),
        Test::In { fact, allowed } => {
            let names: Vec<_> = [
                kjp_domain::Education::Enrolled,
                kjp_domain::Education::OutOfSchool,
                kjp_domain::Education::None,
            ]
            .into_iter()
            .enumerate()
            .filter(|(i, _)| allowed & (1 << i) != 0)
            .map(|(_, e)| e.name())
            .collect();
            format!("{} in [{}]", fact.name(), names.join(", "))
        }
        Test::Level { allowed } => {
            let names: Vec<&str> = kjp_domain::Level::ALL
                .into_iter()
                .filter(|l| allowed & (1 << l.index()) != 0)
                .map(|l| l.code())
                .collect();
            format!("level in [{}]", names.join(", "))
        }
        Test::Range { fact, at_least, at_most } => match (at_least, at_most) {
            (Some(a), Some(b)) => format!("{} <= {} <= {}", operand(a), fact.name(), operand(b)),
            (Some(a), None) => format!("{} >= {}", fact.name(), operand(a)),
            (None, Some(b)) => format!("{} <= {}", fact.name(), operand(b)),
            (None, None) => fact.name().to_string(),
        },
    }
}

/// One rule: `head` starts its first line, `cont` indents the lines under it.
fn rule_line(out: &mut String, policy: &Policy, head: &str, cont: &str, r: &Rule) {
    let _ = writeln!(out, "{head}{}: {}  ({})", r.id, r.name.en, test_text(policy, &r.test));
    let _ = writeln!(out, "{cont}[{}]  reason {}", r.citation, policy.reason(r.reason).code);
    if let Some(when) = &r.applies_when {
        let _ = writeln!(out, "{cont}only when {}", test_text(policy, when));
    }
    for e in &r.exempt_when {
        let _ = writeln!(out, "{cont}except when {}  [{}]", test_text(policy, &e.when), e.citation);
    }
}

/// Renders the policy in force on `date` as a tree.
pub fn render(policy: &Policy, date: NaiveDate) -> String {
    let mut out = String::new();
    let in_force = |r: &&Rule| r.effective.contains(date);
    let _ = writeln!(out, "{} ({} {}), in force on {date}", policy.name, policy.id, policy.version);
    let _ = writeln!(out, "  file {}  sha256 {}", policy.source, policy.sha256);
    let _ = writeln!(out, "  [{}]", policy.citation);
    let _ = writeln!(out, "\nEvery child");
    for r in policy.rules.iter().filter(in_force).filter(|r| r.scope == Scope::Common) {
        rule_line(&mut out, policy, "├─ ", "│     ", r);
    }
    let _ = writeln!(out, "\nTarget groups (the first that qualifies is named)");
    for g in policy.groups.iter().filter(|g| g.effective.contains(date)) {
        let _ = writeln!(out, "├─ {}: {}", g.id, g.name.en);
        let _ = writeln!(out, "│     [{}]", g.citation);
        for r in policy.rules.iter().filter(in_force).filter(|r| r.scope == Scope::Membership(g.catalogue)) {
            rule_line(&mut out, policy, "│  ├─ member if ", "│  │     ", r);
        }
        for r in policy.rules.iter().filter(in_force).filter(|r| r.scope == Scope::Group) {
            match g.exempt.iter().find(|e| e.requirements.contains(&r.id)) {
                Some(e) => {
                    let _ = writeln!(out, "│  ├─ EXEMPT from {}  [{}]", r.id, e.citation);
                }
                None => rule_line(&mut out, policy, "│  ├─ requires ", "│  │     ", r),
            }
        }
    }
    let _ = writeln!(out, "\nExclusion screens (data cleansing)");
    for r in policy.rules.iter().filter(in_force).filter(|r| r.scope == Scope::Screen) {
        let state = if r.enabled { "ON " } else { "OFF" };
        rule_line(&mut out, policy, &format!("├─ [{state}] "), "│     ", r);
    }
    let _ = writeln!(out, "\nParameters");
    for (i, p) in policy.params.iter().enumerate() {
        match policy.param_at(i, date) {
            Some(v) => {
                let shown = match v.unit {
                    Some(kjp_domain::policy::Unit::Rupiah) => Rupiah::new(v.value.floor()).to_string(),
                    _ => v.value.to_string(),
                };
                let _ = writeln!(out, "├─ {} = {shown}  ({})  [{}]", p.name, v.effective, v.citation);
            }
            None => {
                let _ = writeln!(out, "├─ {} = (none in force)", p.name);
            }
        }
    }
    let _ = writeln!(out, "\nMonthly amounts per student");
    match policy.amounts_at(date) {
        None => {
            let _ = writeln!(out, "  (none in force)");
        }
        Some(a) => {
            let _ = writeln!(out, "  [{}]  ({})", a.citation, a.effective);
            let _ = writeln!(
                out,
                "  {:<6} {:>12} {:>12} {:>12} {:>12} {:>12}",
                "level", "routine", "periodic", "private fee", "public", "private"
            );
            for level in Level::ALL {
                // A level the programme does not pay is not listed.
                let Some(r) = a.rates[level.index()] else { continue };
                let _ = writeln!(
                    out,
                    "  {:<6} {:>12} {:>12} {:>12} {:>12} {:>12}",
                    level.code(),
                    r.public.routine.get(),
                    r.public.periodic.get(),
                    r.private.school_fee.get() - r.public.school_fee.get(),
                    r.public.total.get(),
                    r.private.total.get()
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_shows_exemptions_with_citations_and_parameters_on_the_date() {
        let text = render(&Policy::kjp_plus(), NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
        assert!(
            text.contains("EXEMPT from in_dtks  [Pergub DKI Jakarta 4/2018 jo. 15/2019, Pasal 5 ayat (5)]"),
            "{text}"
        );
        assert!(text.contains("│  │     except when foster_child = true  [Pergub DKI Jakarta 4/2018 jo. 15/2019, Pasal 5 ayat (4) (anak asuh)]"));
        assert!(text.contains("ump = Rp 5.396.761  (2025-01-01 to 2025-12-31)"));
        assert!(text.contains("member if worker.wage"));
        assert!(
            text.contains("  SMK          235000       215000       240000       450000       690000"),
            "{text}"
        );
        let old = render(&Policy::kjp_plus(), NaiveDate::from_ymd_opt(2018, 6, 1).unwrap());
        assert!(!old.contains("transjakarta_driver"), "the group came with Pergub 15/2019");
        assert!(old.contains("ump = (none in force)"));
    }
}
