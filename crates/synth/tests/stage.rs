//! The calibration, end to end: a minimal stage run of tahap I 2025 over the generated
//! files finds exactly the eligible children the generator built, per level, and the
//! cost; the planted conflicts come out as review; every exclusion reason occurs.

mod common;

use kjp_synth::{generate, Options};

#[test]
fn stage_run_finds_the_calibrated_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let scale = 0.01;
    let report = generate(&Options { scale, seed: 11, out: dir.path().into() }, &|_, _, _| {}).unwrap();
    let e = report.expected;

    // By construction: exactly round(target x scale) per level.
    let real = [338_971u64, 189_437, 62_295, 111_315, 2_908, 2_696];
    for (i, r) in real.iter().enumerate() {
        assert_eq!(e.targets[i], (*r as f64 * scale).round() as u64);
        assert_eq!(e.eligible[i], e.targets[i], "level {i}");
    }
    assert!(e.eligible[6] >= 1 && e.eligible[6] <= 5, "LKP stays small: {}", e.eligible[6]);
    let cost = 1.61e12 * scale;
    assert!((e.six_month_cost as f64 - cost).abs() / cost < 0.03, "six-month cost {}", e.six_month_cost);

    // And what a stage run derives from the files agrees, child for child.
    let tables = common::read_all(dir.path());
    let out = common::stage(&tables);
    assert_eq!(out.eligible, e.eligible, "eligible per level");
    assert_eq!(out.six_month_cost, e.six_month_cost);
    assert_eq!(out.candidates, e.candidates);
    assert_eq!(out.car_conflicts, e.car_conflict_children);
    assert_eq!(out.dtks_conflicts, e.dtks_conflict_children);
    assert!(out.car_conflicts > 0 && out.dtks_conflicts > 0);
    assert_eq!(report.planted.car_conflict_families, (18_000.0 * scale) as u64);

    // Private shares among recipients: about 14% SD, 36% SMP, 57% SMA, 83% SMK.
    for (i, share) in [(0, 0.14), (1, 0.36), (2, 0.57), (3, 0.83)] {
        let got = out.private[i] as f64 / out.eligible[i] as f64;
        assert!((got - share).abs() < 0.02, "private share of level {i}: {got}");
    }
    // Every group qualifies someone, and every exclusion reason occurs.
    for g in ["poor_family", "transjakarta_driver", "worker"] {
        assert!(out.groups.get(g).copied().unwrap_or(0) > 0, "{g}: {:?}", out.groups);
    }
    for reason in [
        "AGE_OUT_OF_RANGE",
        "SANCTIONED",
        "NOT_IN_DTKS",
        "NO_SKTM",
        "NOT_DOMICILED_DKI",
        "NOT_ON_DKI_KK",
        "EXCLUDED_CAR",
        "EXCLUDED_PROPERTY",
        "EXCLUDED_OCCUPATION",
        "WAGE_ABOVE_LIMIT",
        "PARENT_KTP_NOT_DKI",
    ] {
        assert!(out.reasons.get(reason).copied().unwrap_or(0) > 0, "{reason}: {:?}", out.reasons);
    }
    // Most enrolled children are not eligible.
    let eligible: u64 = out.eligible.iter().sum();
    assert!(eligible * 2 < out.candidates, "{eligible} of {}", out.candidates);
}
