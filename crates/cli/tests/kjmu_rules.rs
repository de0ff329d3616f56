//! Every KJMU rule and its boundaries, through `kjp eval --policy policy/kjmu.toml`: the
//! same engine and contract as KJP Plus, another policy file.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/kjmu.toml");

/// A new S1 applicant at a state university, in DTKS, who meets every rule.
fn base() -> Value {
    json!({
        "as_of": "2025-01-01", "education": "enrolled", "level": "S1", "school": "negeri",
        "groups": ["dtks"], "in_dtks": true, "ktp_dki": true, "on_dki_kk": true,
        "domiciled_dki": true, "graduated": false, "other_scholarship": false,
        "jakarta_graduate": true, "years_since_graduation": 1, "state_regular_admission": true,
        "private_unggul_priority": false, "semester": 3, "gpa": 3.10, "continuing": false
    })
}

fn with(changes: Value) -> Value {
    let mut v = base();
    for (k, x) in changes.as_object().expect("an object") {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    v
}

fn eval(cases: &[Value]) -> Vec<Value> {
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(["eval", "--policy", POLICY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kjp starts");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().expect("kjp finishes");
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn codes(d: &Value) -> Vec<String> {
    d["reasons"].as_array().into_iter().flatten().map(|r| r["code"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_rule_and_boundary() {
    // (what, changes to the base case, status, reason codes)
    let table: Vec<(&str, Value, &str, &[&str])> = vec![
        ("meets every rule", json!({}), "eligible", &[]),
        ("no Jakarta KTP", json!({"ktp_dki": false}), "ineligible", &["NOT_KTP_DKI"]),
        ("not on a Jakarta KK", json!({"on_dki_kk": false}), "ineligible", &["NOT_ON_DKI_KK"]),
        ("lives outside Jakarta", json!({"domiciled_dki": false}), "ineligible", &["NOT_DOMICILED_DKI"]),
        ("not an active student", json!({"education": "none"}), "ineligible", &["NOT_ACTIVE_STUDENT"]),
        ("graduated", json!({"graduated": true}), "ineligible", &["GRADUATED"]),
        ("another scholarship", json!({"other_scholarship": true}), "ineligible", &["OTHER_SCHOLARSHIP"]),
        (
            "new, not a Jakarta graduate",
            json!({"jakarta_graduate": false}),
            "ineligible",
            &["NOT_JAKARTA_GRADUATE"],
        ),
        (
            "continuing, not a Jakarta graduate",
            json!({"jakarta_graduate": false, "continuing": true}),
            "eligible",
            &[],
        ),
        ("graduated 3 years before", json!({"years_since_graduation": 3}), "eligible", &[]),
        (
            "graduated 4 years before",
            json!({"years_since_graduation": 4}),
            "ineligible",
            &["GRADUATED_TOO_LONG_AGO"],
        ),
        (
            "continuing, graduated 5 years before",
            json!({"years_since_graduation": 5, "continuing": true, "semester": 7}),
            "eligible",
            &[],
        ),
        (
            "private, not A/Unggul priority",
            json!({"state_regular_admission": false}),
            "ineligible",
            &["ADMISSION_NOT_COVERED"],
        ),
        (
            "private A/Unggul priority",
            json!({"state_regular_admission": false, "private_unggul_priority": true, "school": "swasta"}),
            "eligible",
            &[],
        ),
        ("new in semester 4", json!({"semester": 4}), "eligible", &[]),
        ("new in semester 5", json!({"semester": 5}), "ineligible", &["SEMESTER_TOO_LATE_TO_APPLY"]),
        ("continuing in semester 5", json!({"semester": 5, "continuing": true}), "eligible", &[]),
        ("D3 semester 8", json!({"level": "D3", "semester": 8, "continuing": true}), "eligible", &[]),
        (
            "D3 semester 9",
            json!({"level": "D3", "semester": 9, "continuing": true}),
            "ineligible",
            &["BEYOND_COVERAGE"],
        ),
        ("S1 semester 10", json!({"semester": 10, "continuing": true}), "eligible", &[]),
        ("S1 semester 11", json!({"semester": 11, "continuing": true}), "ineligible", &["BEYOND_COVERAGE"]),
        (
            "D4 semester 11",
            json!({"level": "D4", "semester": 11, "continuing": true}),
            "ineligible",
            &["BEYOND_COVERAGE"],
        ),
        ("GPA 3.00", json!({"gpa": 3.00}), "eligible", &[]),
        ("GPA 2.99", json!({"gpa": 2.99}), "ineligible", &["GPA_TOO_LOW"]),
        ("first semester, no GPA yet", json!({"semester": 1, "gpa": null}), "eligible", &[]),
        ("left DTKS", json!({"in_dtks": false}), "ineligible", &["NOT_IN_DTKS"]),
        (
            "in a panti, not in DTKS",
            json!({"groups": ["panti"], "in_panti": true, "in_dtks": false}),
            "eligible",
            &[],
        ),
        ("no target group", json!({"groups": []}), "ineligible", &["NOT_TARGET_GROUP"]),
        ("KTP unknown", json!({"ktp_dki": null}), "review", &["UNKNOWN_FACT"]),
        ("semester 2, GPA unknown", json!({"semester": 2, "gpa": null}), "review", &["UNKNOWN_FACT"]),
    ];
    let cases: Vec<Value> = table.iter().map(|(_, c, _, _)| with(c.clone())).collect();
    let out = eval(&cases);
    assert_eq!(out.len(), table.len());
    for ((what, _, status, reasons), d) in table.iter().zip(&out) {
        assert_eq!(d["status"], *status, "{what}: {d}");
        assert_eq!(codes(d), *reasons, "{what}: {d}");
    }
    // Rp 9,000,000 a semester in two parts: the university's fee and the student's support.
    let m = &out[0]["monthly"];
    assert_eq!(
        (m["school_fee"].as_i64(), m["routine"].as_i64(), m["total"].as_i64()),
        (Some(500_000), Some(1_000_000), Some(1_500_000))
    );
    assert_eq!(m["total"].as_i64().unwrap() * 6, 9_000_000);
    // The reason names the bound from the policy.
    let late = &out[15]["reasons"][0];
    assert!(late["text_id"].as_str().unwrap().contains("semester 4"), "{late}");
}

#[test]
fn a_gpa_is_read_exactly_or_refused() {
    let out = eval(&[with(json!({"gpa": 4.5})), with(json!({"gpa": 3.255})), with(json!({"gpa": 3.5}))]);
    assert!(
        out[0]["error"].as_str().unwrap().contains("gpa: 4.5 is not a grade point average"),
        "{}",
        out[0]
    );
    assert!(out[1]["error"].as_str().unwrap().contains("at most two decimals"), "{}", out[1]);
    assert_eq!(out[2]["status"], "eligible", "3.5 is 350 hundredths");
}
