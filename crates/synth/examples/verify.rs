//! `cargo run --release -p kjp-synth --example verify -- DIR`: reads a generated directory
//! strictly per docs/formats.md and runs a minimal stage run of tahap I 2025 over it
//! (the same code as the crate's tests), printing what it finds.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "synth-data".into()));
    let start = std::time::Instant::now();
    let tables = common::read_all(&dir);
    for f in common::FILES {
        let t = &tables[f];
        println!("{f:<14}{:>11} rows {:>6} bad {:>5} duplicate", t.total, t.bad, t.duplicates);
    }
    let out = common::stage(&tables);
    println!("read and decided in {:.1?}", start.elapsed());
    println!(
        "candidates {}  eligible {}  review {}  ineligible {}",
        out.candidates,
        out.eligible.iter().sum::<u64>(),
        out.review,
        out.ineligible
    );
    for (i, level) in kjp_domain::ids::REPORT_LEVELS.iter().enumerate() {
        let share =
            if out.eligible[i] > 0 { 100.0 * out.private[i] as f64 / out.eligible[i] as f64 } else { 0.0 };
        println!("{level:<6}{:>9}  private {share:.1}%", out.eligible[i]);
    }
    println!("six-month cost Rp {}", out.six_month_cost);
    println!(
        "review: car conflicts {}, DTKS address conflicts {}, not in civil registry {}",
        out.car_conflicts, out.dtks_conflicts, out.unknown_person
    );
    let mut reasons: Vec<_> = out.reasons.iter().collect();
    reasons.sort();
    println!("ineligible reasons {reasons:?}");
    println!("eligible by group {:?}", out.groups);
}
