//! `kjp eval` end to end (parse, decide, explain, write JSON) against the floor of merely
//! parsing the same lines. Run: `cargo bench -p kjp-cli --bench eval`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kjp_domain::Policy;

fn lines(n: usize) -> String {
    let mut out = String::new();
    let groups = [
        "[\"poor_family\"]",
        "[\"worker\"]",
        "[\"transjakarta_driver\"]",
        "[]",
        "[\"poor_family\",\"worker\"]",
    ];
    let levels = ["SD", "SMP", "SMA", "SMK", "SDLB", "PKBM", "LKP", "MI", "MTs"];
    for i in 0..n {
        let year = 2004 + i % 17;
        let dtks = if i % 7 == 0 { "false" } else { "true" };
        let car = if i % 23 == 0 { "true" } else { "false" };
        let wage = 3_000_000 + (i * 7919) % 4_000_000;
        let dtks_field = if i % 31 == 0 { String::new() } else { format!(",\"in_dtks\":{dtks}") };
        out.push_str(&format!(
            "{{\"id\":\"c{i}\",\"as_of\":\"2025-01-01\",\"birth_date\":\"{year}-0{}-1{}\",\"nik\":\"31710144031{:05}\",\
             \"education\":\"enrolled\",\"level\":\"{}\",\"school\":\"{}\",\"lurah_recommendation\":false,\
             \"groups\":{},\"parent_wage\":{wage},\"parent_ktp_dki\":true{dtks_field},\"has_sktm\":true,\
             \"foster_child\":false,\"domiciled_dki\":true,\"on_dki_kk\":true,\"sanctioned\":false,\
             \"family_car\":{car},\"family_property_njop\":{},\"family_excluded_occupation\":false}}\n",
            1 + i % 9,
            i % 10,
            1 + i % 99_999,
            levels[i % levels.len()],
            if i % 3 == 0 { "swasta" } else { "negeri" },
            groups[i % groups.len()],
            (i * 104_729) % 1_400_000_000,
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let policy = Policy::kjp_plus();
    let input = lines(100_000);
    let mut g = c.benchmark_group("eval");
    g.throughput(Throughput::Elements(100_000));
    g.sample_size(10);
    g.bench_function("parse_only", |b| {
        b.iter(|| kjp_cli::eval::parse_only(&policy, input.as_bytes()).unwrap())
    });
    g.bench_function("end_to_end", |b| {
        b.iter(|| kjp_cli::eval::run(&policy, input.as_bytes(), std::io::sink()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
