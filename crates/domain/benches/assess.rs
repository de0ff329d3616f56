//! `assess` in bulk over a million varied cases, and one case with its full explanation.
//! Run: `cargo bench -p kjp-domain --bench assess`.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kjp_domain::assess::Rules;
use kjp_domain::{BoolFact, Education, Facts, Level, Policy, Rupiah, SchoolType};

/// A small deterministic generator (no dependency needed for a benchmark).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn chance(&mut self, per_thousand: u64) -> bool {
        self.next() % 1000 < per_thousand
    }
    fn tri(&mut self, yes: u64, unknown: u64) -> Option<bool> {
        if self.chance(unknown) {
            None
        } else {
            Some(self.chance(yes))
        }
    }
}

pub fn cases(n: usize, policy: &Policy) -> Vec<Facts> {
    let mut r = Lcg(7);
    let base = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    (0..n)
        .map(|_| {
            let mut f = Facts {
                birth_date: Some(base + chrono::Days::new(r.next() % (26 * 365))),
                education: Some(match r.next() % 20 {
                    0 => Education::OutOfSchool,
                    1 => Education::None,
                    _ => Education::Enrolled,
                }),
                level: Some(Level::ALL[(r.next() % 9) as usize]),
                school: Some(if r.chance(400) { SchoolType::Swasta } else { SchoolType::Negeri }),
                parent_wage: (!r.chance(300)).then(|| Rupiah::new(3_000_000 + (r.next() % 5_000_000) as i64)),
                family_property_njop: Some(Rupiah::new((r.next() % 1_500_000_000) as i64)),
                ..Facts::default()
            };
            for (i, g) in policy.group_ids.iter().enumerate() {
                if r.chance(if g == "poor_family" { 800 } else { 150 }) {
                    f.claims.insert(i);
                }
            }
            f.set(BoolFact::LurahRecommendation, r.tri(600, 100));
            f.set(BoolFact::ParentKtpDki, r.tri(900, 20));
            f.set(BoolFact::InDtks, r.tri(800, 20));
            f.set(BoolFact::HasSktm, r.tri(850, 20));
            f.set(BoolFact::FosterChild, r.tri(10, 5));
            f.set(BoolFact::DomiciledDki, r.tri(970, 5));
            f.set(BoolFact::OnDkiKk, r.tri(970, 5));
            f.set(BoolFact::Sanctioned, r.tri(5, 5));
            f.set(BoolFact::FamilyCar, r.tri(80, 10));
            f.set(BoolFact::FamilyExcludedOccupation, r.tri(30, 5));
            f
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let policy = Policy::kjp_plus();
    let as_of = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let rules = Rules::new(&policy, as_of).unwrap();
    let facts = cases(1_000_000, &policy);

    let mut g = c.benchmark_group("assess");
    g.throughput(Throughput::Elements(facts.len() as u64));
    g.sample_size(20);
    g.bench_function("bulk_1m", |b| {
        b.iter(|| {
            let mut eligible = 0u32;
            for f in &facts {
                eligible += u32::from(rules.assess(black_box(f)).status == kjp_domain::Status::Eligible);
            }
            eligible
        })
    });
    g.finish();

    let mut g = c.benchmark_group("one_case");
    let ineligible = facts.iter().find(|f| rules.assess(f).unmet.iter().count() >= 2).unwrap();
    g.bench_function("resolve_assess_explain", |b| {
        b.iter(|| {
            let rules = Rules::new(&policy, as_of).unwrap();
            let d = rules.assess(black_box(ineligible));
            black_box(rules.explain(ineligible, &d)).reasons.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
