//! Text tables for the stage commands (the JSON forms are the library types, serialized).

use std::fmt::Write;

use kjp_domain::ids::REPORT_LEVELS;
use kjp_domain::Rupiah;
use kjp_import::funding::CeilingImpact;
use kjp_import::stage::{Impact, Summary};

fn rp(n: i64) -> String {
    Rupiah::new(n).to_string()
}

pub fn summary(s: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Stage {} ({}), reference date {}", s.stage, s.state, s.as_of);
    if let Some(run) = &s.run {
        let _ = writeln!(
            o,
            "Run {} finished {}, policy {} (sha256 {}…)",
            run.run,
            run.finished_at,
            run.policy,
            &run.policy_sha256[..12]
        );
    }
    let _ = writeln!(
        o,
        "\n{} candidates: {} eligible, {} ineligible, {} in review",
        s.candidates, s.eligible_total, s.ineligible, s.review
    );
    let _ = writeln!(o, "\n{:<8} {:>10}", "level", "eligible");
    // The school levels always (KJP Plus), the university programmes when present (KJMU).
    for l in REPORT_LEVELS.iter().filter(|l| s.eligible.get(l) > 0 || !["D3", "D4", "S1"].contains(l)) {
        let _ = writeln!(o, "{:<8} {:>10}", l, s.eligible.get(l));
    }
    let _ = writeln!(o, "{:<8} {:>10}", "total", s.eligible_total);
    let _ = writeln!(o, "\nMonthly cost {}; six months {}", rp(s.monthly_cost), rp(s.six_month_cost));
    if let Some(b) = s.budget {
        let _ = writeln!(
            o,
            "Budget ceiling {}: {} eligible children unfunded (BUDGET_CEILING)",
            rp(b),
            s.unfunded
        );
    }
    let _ = writeln!(
        o,
        "\n{:<44} {:>9} {:>9} {:>10} {:>8} {:>22}",
        "city", "eligible", "unfunded", "ineligible", "review", "monthly"
    );
    for c in &s.by_city {
        let _ = writeln!(
            o,
            "{:<44} {:>9} {:>9} {:>10} {:>8} {:>22}",
            c.name,
            c.eligible,
            c.unfunded,
            c.ineligible,
            c.review,
            rp(c.monthly_cost)
        );
    }
    if !s.ineligible_by_reason.is_empty() {
        let _ = writeln!(o, "\nIneligible, by reason (a child may have several)");
        for r in &s.ineligible_by_reason {
            let _ = writeln!(o, "  {:<28} {:>9}", r.code, r.count);
        }
    }
    if !s.review_by_fact.is_empty() {
        let _ = writeln!(o, "\nIn review, by the fact that is unknown or disputed");
        for r in &s.review_by_fact {
            let _ = writeln!(o, "  {:<28} {:>9}", r.code, r.count);
        }
    }
    match &s.comparison {
        Some(c) => {
            let _ = writeln!(
                o,
                "\nCompared with {}: {} continuing, {} new, {} dropped",
                c.previous, c.continuing, c.new, c.dropped
            );
            for r in &c.dropped_by_reason {
                let _ = writeln!(o, "  dropped: {:<28} {:>9}", r.code, r.count);
            }
        }
        None => {
            let _ = writeln!(o, "\n(no previous stage to compare with)");
        }
    }
    o
}

pub fn impact(i: &Impact) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "What-if for stage {} ({} candidates); nothing was changed", i.stage, i.candidates);
    let _ = writeln!(o, "  current:  {}", i.current);
    let _ = writeln!(o, "  proposed: {}", i.proposed);
    let _ = writeln!(o, "\nEligible: {} now, {} under the proposal", i.eligible_now, i.eligible_then);
    let _ = writeln!(
        o,
        "Added {}, removed {}; into review {}, out of review {}",
        i.added.total, i.removed.total, i.into_review, i.out_of_review
    );
    let _ = writeln!(o, "Monthly cost change {}", rp(i.monthly_cost_change));
    for (title, c) in [("Added", &i.added), ("Removed", &i.removed)] {
        if c.total == 0 {
            continue;
        }
        let _ = writeln!(o, "\n{title} ({}), by level:", c.total);
        for l in REPORT_LEVELS {
            if c.by_level.get(l) > 0 {
                let _ = writeln!(o, "  {:<8} {:>9}", l, c.by_level.get(l));
            }
        }
        let _ = writeln!(o, "{title}, by city:");
        for (city, n) in &c.by_city {
            let name = kjp_domain::RegionCode::parse(city)
                .map(|r| r.name().to_string())
                .unwrap_or_else(|_| city.clone());
            let _ = writeln!(o, "  {:<44} {:>9}", name, n);
        }
        let _ = writeln!(o, "{title}, by reason:");
        for (code, n) in &c.by_reason {
            let _ = writeln!(o, "  {:<36} {:>9}", code, n);
        }
    }
    o
}

pub fn ceiling(c: &CeilingImpact) -> String {
    let mut o = String::new();
    let out = &c.outcome;
    let _ = writeln!(
        o,
        "Budget ceiling {} for stage {}: {} eligible children would cost {}",
        rp(out.budget.get()),
        c.stage,
        c.eligible,
        rp(c.eligible_cost)
    );
    let _ = writeln!(
        o,
        "Funded {} ({}), unfunded {} ({})",
        out.funded,
        rp(out.funded_cost.get()),
        out.unfunded,
        rp(out.unfunded_cost.get())
    );
    if let Some(last) = out.last_funded {
        let decile = last.decile.map_or("outside DTKS".to_string(), |d| format!("DTKS decile {d}"));
        let kind = if last.continuing { "continuing" } else { "new" };
        let _ = writeln!(o, "The last child funded: {decile}, {kind}");
    }
    let _ = writeln!(
        o,
        "Unfunded now {}; this ceiling leaves {} more unfunded and funds {} now unfunded",
        c.unfunded_now, c.newly_unfunded, c.newly_funded
    );
    if out.unfunded > 0 {
        let _ = writeln!(o, "\nUnfunded, by level:");
        for l in REPORT_LEVELS {
            if c.unfunded_by_level.get(l) > 0 {
                let _ = writeln!(o, "  {:<8} {:>9}", l, c.unfunded_by_level.get(l));
            }
        }
        let _ = writeln!(o, "Unfunded, by city:");
        for city in c.unfunded_by_city.iter().filter(|c| c.count > 0) {
            let _ = writeln!(o, "  {:<44} {:>9}", city.name, city.count);
        }
    }
    o
}
