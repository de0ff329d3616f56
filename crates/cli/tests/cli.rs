//! The `kjp` binary as a user runs it: exit codes, help texts, error messages.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn kjp(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kjp starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("kjp finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn eval_decides_every_good_line_and_exits_1_on_a_bad_one() {
    let input = "{\"id\":\"a\",\"as_of\":\"2025-01-01\",\"groups\":[]}\n{oops\n{\"id\":\"b\",\"as_of\":\"2025-01-01\"}\n";
    let out = kjp(&["eval"], input);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["reasons"][0]["code"], "NOT_TARGET_GROUP");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[2]["id"], "b");
    assert!(text(&out.stderr).contains("1 line(s) could not be decided; 2 decided"));
}

#[test]
fn eval_exits_0_when_every_line_is_decided() {
    let out = kjp(&["eval"], "{\"as_of\":\"2025-01-01\"}\n\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1, "blank lines are skipped");
}

#[test]
fn help_explains_the_commands_and_the_contract() {
    let top = kjp(&["--help"], "");
    assert!(top.status.success());
    let top = text(&top.stdout);
    assert!(top.contains("eval") && top.contains("policy"), "{top}");
    let eval = text(&kjp(&["eval", "--help"], "").stdout);
    for needle in ["JSON Lines", "\"as_of\"", "{\"line\":N,\"error\":\"...\"}", "exit code is 1"] {
        assert!(eval.contains(needle), "eval --help lacks {needle}: {eval}");
    }
}

#[test]
fn policy_check_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("kjp-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    let text_ok = kjp_domain::policy::KJP_PLUS;
    std::fs::write(&path, text_ok.replacen("[programme]\n", "[programme]\nextra = 1\n", 1)).unwrap();
    let out = kjp(&["policy", "check", path.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let line = text_ok.lines().position(|l| l == "[programme]").unwrap() + 2;
    assert!(err.contains(&format!("broken.toml:{line}: unknown field `extra`")), "{err}");

    std::fs::write(&path, text_ok).unwrap();
    let out = kjp(&["policy", "check", path.to_str().unwrap()], "");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(": ok (kjp-plus"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn policy_show_prints_the_tree_for_a_date() {
    let out = kjp(&["policy", "show", "--date", "2019-06-01"], "");
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("ump = Rp 3.940.973"), "{s}");
    assert!(!s.contains("family_car"), "screens start in 2023");
    let bad = kjp(&["policy", "show", "--date", "2019-02-30"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--date"));
}

/// The demo's decreed stage, then what the office does after it: the effect of another
/// ceiling, a correction brought to a service post, the amendment, and the replay.
#[test]
fn demo_then_ceiling_what_if_correction_amendment_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf-8 path");
    let demo = kjp(&["demo", "--scale", "0.01", "--dir", root, "--no-serve"], "");
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let out = text(&demo.stdout);
    assert!(out.contains("Budget ceiling Rp ") && out.contains("unfunded"), "{out}");
    for needle in ["a recipient      NIK ", "unfunded         NIK ", "not a recipient  NIK "] {
        assert!(out.contains(needle), "the demo prints an example of each answer: {out}");
    }
    // One staff account per role, with its password, and `kjp audit verify` holds.
    assert!(out.contains("Staff console accounts"), "{out}");
    for role in ["admin", "school", "post", "social", "bank", "auditor"] {
        let line =
            out.lines().find(|l| l.split_whitespace().nth(1) == Some(role) && l.contains(" password "));
        assert!(line.is_some(), "an account for {role} with its password: {out}");
    }
    let url = format!("sqlite:{root}/kjp.db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_kjp"))
            .args(args)
            .env("KJP_DATABASE_URL", &url)
            .output()
            .expect("kjp runs");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    let (code, json, err) =
        run(&["stage", "impact", "2025/1", "--budget", "1.000.000.000", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["outcome"]["budget"], 1_000_000_000);
    assert!(v["outcome"]["funded_cost"].as_i64().unwrap() <= 1_000_000_000, "{v}");
    assert!(v["outcome"]["unfunded"].as_i64().unwrap() > 0, "{v}");
    let (code, _, err) = run(&["stage", "impact", "2025/1", "--budget", "lots"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("\"lots\" is not a whole number of rupiah"), "{err}");
    let (code, _, err) = run(&["stage", "budget", "2025/1", "--set", "1000"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is decreed"), "{err}");

    // A child excluded only by the car data brings the Samsat block.
    let export = dir.path().join("decisions.csv");
    let (code, _, err) = run(&["stage", "export", "2025/1", "--out", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let rows = std::fs::read_to_string(&export).expect("export");
    let nik = rows
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[2] == "ineligible" && f[5] == "EXCLUDED_CAR")
        .map(|f| f[0].to_string())
        .expect("a child excluded only by a car");
    let correct = ["stage", "correct", "2025/1", "--nik", &nik, "--fact", "family_car=no"];
    let (code, _, err) =
        run(&[&correct[..], &["--reason", "sold in 2024", "--evidence", "Samsat block 7/2025"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) =
        run(&["stage", "amend", "2025/1", "--number", "DEMO 2/2025", "--date", "2025-04-10"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("amendment 1") && out.contains("added") && out.contains("Samsat block 7/2025"),
        "{out}"
    );
    let (code, out, err) = run(&["stage", "replay", "2025/1"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("decree hash matches"), "{out}");

    // Operations: the migrations applied, and an online backup that works on its own.
    let (code, out, err) = run(&["migrate"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("at migration") && out.contains("funding_amendments"), "{out}");
    let backup = dir.path().join("backups").join("copy.db");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
    let (code, out, err) = run(&["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("new snapshot file(s)"), "{out}");
    assert!(dir.path().join("backups/copy-data/snapshots").read_dir().unwrap().count() >= 15);
    let (code, _, err) = run(&["backup", "--out", backup.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("already exists"), "{err}");
    let restored = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(["stage", "replay", "2025/1"])
        .env("KJP_DATABASE_URL", format!("sqlite:{}", backup.display()))
        .output()
        .expect("kjp runs");
    assert!(text(&restored.stdout).contains("decree hash matches"), "{}", text(&restored.stderr));
}
