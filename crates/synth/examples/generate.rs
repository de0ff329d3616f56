//! `cargo run --release -p kjp-synth --example generate -- SCALE SEED DIR`: generates a
//! synthetic Jakarta and prints the report (the `kjp generate` command does the same with
//! progress bars).

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args.get(1).map_or(0.05, |s| s.parse().expect("SCALE is a number"));
    let seed: u64 = args.get(2).map_or(7, |s| s.parse().expect("SEED is a number"));
    let out = args.get(3).map_or("synth-data", String::as_str).into();
    let start = Instant::now();
    let opts = kjp_synth::Options { scale, seed, out };
    let report = kjp_synth::generate(&opts, &|_, _, _| {}).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1);
    });
    println!("generated in {:.1?}", start.elapsed());
    println!("{:<14}{:>12}{:>10}{:>10}", "file", "rows", "malformed", "dups");
    for f in &report.files {
        println!("{:<14}{:>12}{:>10}{:>10}", f.source, f.rows, f.malformed, f.duplicates);
    }
    println!("residents {} families {}", report.residents, report.families);
    println!("{:?}", report.planted);
    let e = &report.expected;
    println!("{:<6}{:>10}{:>10}", "level", "eligible", "target");
    for (i, level) in kjp_domain::ids::REPORT_LEVELS.iter().enumerate() {
        println!("{:<6}{:>10}{:>10}", level, e.eligible[i], e.targets[i]);
    }
    println!("six-month cost Rp {}", e.six_month_cost);
    println!("{e:?}");
}
