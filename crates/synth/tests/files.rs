//! The files: documented headers, rows that parse per docs/formats.md except exactly the
//! planted ones, unique keys apart from planted duplicates, determinism.

mod common;

use std::collections::HashMap;
use std::path::Path;

use kjp_domain::{KkNumber, Nik};
use kjp_synth::{generate, Options, Report, SynthError};

fn run(scale: f64, seed: u64, dir: &Path) -> Report {
    generate(&Options { scale, seed, out: dir.into() }, &|_, _, _| {}).unwrap()
}

fn bytes(dir: &Path) -> HashMap<&'static str, Vec<u8>> {
    common::FILES.iter().map(|f| (*f, std::fs::read(dir.join(format!("{f}.csv"))).unwrap())).collect()
}

#[test]
fn same_seed_same_bytes_whatever_the_threads() {
    let (a, b, c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = run(0.003, 5, a.path());
    let rb =
        rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| run(0.003, 5, b.path()));
    let rc = run(0.003, 6, c.path());
    assert_eq!(ra.planted, rb.planted);
    assert_eq!(ra.expected, rb.expected);
    let (fa, fb, fc) = (bytes(a.path()), bytes(b.path()), bytes(c.path()));
    for f in common::FILES {
        assert!(fa[f] == fb[f], "{f}.csv differs between two runs with the same seed");
    }
    assert!(fa["dukcapil"] != fc["dukcapil"], "another seed, another Jakarta");
    assert!(fa["bapenda"] != fc["bapenda"]);
    // Same calibration whatever the seed.
    assert_eq!(ra.expected.eligible, rc.expected.eligible);
}

#[test]
fn every_row_parses_except_the_planted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(0.004, 3, dir.path());
    assert_eq!(report.files.len(), 15);
    let names: Vec<&str> = report.files.iter().map(|f| f.source).collect();
    assert_eq!(names, common::FILES);
    for f in &report.files {
        assert_eq!(f.path, dir.path().join(format!("{}.csv", f.source)));
        let t = common::read(dir.path(), f.source);
        assert_eq!(t.total, f.rows, "{}: rows", f.source);
        assert_eq!(t.bad, f.malformed, "{}: bad rows {:?}", f.source, t.examples);
        assert_eq!(t.duplicates, f.duplicates, "{}: duplicate keys", f.source);
        assert!(f.malformed >= 1, "{}: every file has a malformed row", f.source);
        assert!(
            f.rows == 0 || (f.malformed as f64) < (f.rows as f64 * 0.003).max(3.0),
            "{}: about 0.1%",
            f.source
        );
    }
    // No temporary file is left behind.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(name.ends_with(".csv") && !name.starts_with('.'), "{name}");
    }
    let p = report.planted;
    assert_eq!(p.malformed_rows, report.files.iter().map(|f| f.malformed).sum::<u64>());
    assert_eq!(p.duplicate_rows, report.files.iter().map(|f| f.duplicates).sum::<u64>());
    assert!(report.files[0].duplicates > 0, "dukcapil has duplicate NIKs");
    assert!(p.moved_out > 0 && p.dtks_address_conflicts > 0);
    assert_eq!(p.car_conflict_families, (18_000.0f64 * 0.004).round() as u64);
    assert_eq!(report.expected.eligible, report.expected.targets);
}

#[test]
fn people_and_identifiers_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(0.004, 9, dir.path());
    let people = common::read(dir.path(), "dukcapil");
    assert_eq!(people.rows.len() as u64, report.residents);
    let mut families: HashMap<u64, u32> = HashMap::new();
    let mut moved = 0;
    for r in &people.rows {
        // The NIK encodes the birth date and sex of the row.
        let nik = Nik::parse(&r[0]).unwrap();
        let birth = kjp_domain::ids::parse_date(&r[4]).unwrap();
        assert_eq!(nik.birth_date(birth), Some(birth), "{}", r[0]);
        assert_eq!(nik.sex() == kjp_domain::ids::Sex::Female, r[3] == "P");
        let kk = KkNumber::parse(&r[1]).unwrap();
        *families.entry(kk.as_u64()).or_default() += 1;
        moved += u64::from(r[7] == "false");
    }
    assert_eq!(families.len() as u64, report.families);
    assert_eq!(moved, report.planted.moved_out);
    let per_family = people.rows.len() as f64 / families.len() as f64;
    assert!((3.3..=3.8).contains(&per_family), "{per_family} persons per family card");
    let elsewhere =
        people.rows.iter().filter(|r| !r[0].starts_with("31")).count() as f64 / people.rows.len() as f64;
    assert!((0.05..0.13).contains(&elsewhere), "{elsewhere} of NIKs issued outside Jakarta");

    // Every enrolment names a school of its level; Bapenda plates are in Samsat.
    let schools: HashMap<String, String> =
        common::read(dir.path(), "schools").rows.into_iter().map(|r| (r[0].clone(), r[2].clone())).collect();
    for file in ["dapodik", "emis"] {
        for r in &common::read(dir.path(), file).rows {
            assert_eq!(schools.get(&r[2]), Some(&r[3]), "{file}: {r:?}");
        }
    }
    let samsat: HashMap<String, Vec<String>> =
        common::read(dir.path(), "samsat").rows.into_iter().map(|r| (common::plate_key(&r[0]), r)).collect();
    let bapenda = common::read(dir.path(), "bapenda");
    let (mut later, mut earlier) = (0, 0);
    for r in &bapenda.rows {
        let s = samsat.get(&common::plate_key(&r[1])).expect("every taxed plate is registered");
        assert_eq!(s[1], r[0], "same owner");
        if r[2] == "roda4" && s[2] != "active" {
            if s[3] > r[3] {
                later += 1;
            } else {
                earlier += 1;
            }
            assert!(s[3].as_str() < "2025-01-01");
        }
    }
    assert_eq!(later + earlier, report.planted.car_conflict_families);
    assert!(later > earlier * 4, "Samsat is the later record for about 90%: {later} vs {earlier}");
}

#[test]
fn bad_scale_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for scale in [0.0, -1.0, 2.5, f64::NAN] {
        let e = generate(&Options { scale, seed: 1, out: dir.path().into() }, &|_, _, _| {}).unwrap_err();
        assert!(matches!(e, SynthError::Scale(_)), "{e}");
        assert!(e.to_string().contains("scale"));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let e = generate(&Options { scale: 0.001, seed: 1, out: file.join("x") }, &|_, _, _| {}).unwrap_err();
    assert!(matches!(e, SynthError::Io { .. }), "{e}");
    assert!(e.to_string().contains("a-file"), "{e}");
}
