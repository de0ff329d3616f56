//! Golden tests for `kjp eval`: one fixture per case in `tests/golden/*.json`.
//!
//! Each fixture holds `about` (what the case shows and the article), `case` (the input
//! object, or a string for a raw input line such as one that is not JSON) and `expect` (the
//! whole output line). Every fixture goes through [`kjp_cli::eval::run`], the function the
//! binary calls, and the output must equal `expect` exactly.
//!
//! `UPDATE_GOLDEN=1 cargo test -p kjp-cli --test golden` rewrites `expect` from the
//! program's output instead of failing. The expectations were worked out by hand from the
//! law; read the diff before committing a rewrite. A fixture marked `known_bug` records
//! what the law says while the program disagrees: it is never rewritten and always
//! reported as a failure (also once the bug is fixed, so the marker gets removed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kjp_domain::Policy;
use serde_json::{Map, Value};

const KEYS: [&str; 4] = ["about", "case", "expect", "known_bug"];

/// What fixtures hold in place of the policy file's sha256.
const POLICY_SHA: &str = "<sha256 of policy/kjp-plus.toml>";

#[test]
fn policy_hash_is_recorded() {
    let policy = Policy::kjp_plus();
    let mut out = Vec::new();
    kjp_cli::eval::run(&policy, &b"{\"as_of\":\"2025-01-01\"}"[..], &mut out).unwrap();
    let line: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["policy"]["sha256"], policy.sha256.as_str());
    assert_eq!(line["policy"]["id"], "kjp-plus");
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn fixtures() -> Vec<PathBuf> {
    let dir = golden_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

/// What one fixture did.
enum Outcome {
    Pass,
    Updated,
    Fail(String),
}

#[test]
fn golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let policy = Policy::kjp_plus();
    let paths = fixtures();
    assert!(
        !paths.is_empty(),
        "no fixtures in {}: the golden tests would prove nothing",
        golden_dir().display()
    );
    let mut failures = Vec::new();
    let mut updated = Vec::new();
    for path in &paths {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match check(&policy, path, update) {
            Outcome::Pass => {}
            Outcome::Updated => updated.push(name),
            Outcome::Fail(report) => failures.push((name, report)),
        }
    }
    if !updated.is_empty() {
        eprintln!("UPDATE_GOLDEN: rewrote {} fixture(s): {}", updated.len(), updated.join(", "));
    }
    if !failures.is_empty() {
        let mut msg = String::new();
        for (name, report) in &failures {
            let _ = writeln!(msg, "\n==== {name} ====\n{report}");
        }
        let names: Vec<&str> = failures.iter().map(|(n, _)| n.as_str()).collect();
        panic!("{msg}\n{} of {} golden fixture(s) failed: {}", failures.len(), paths.len(), names.join(", "));
    }
}

/// Runs one fixture through `kjp eval` and compares (or, when updating, rewrites).
fn check(policy: &Policy, path: &Path, update: bool) -> Outcome {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Outcome::Fail(format!("cannot read {}: {e}", path.display())),
    };
    let mut fixture: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Outcome::Fail("the fixture is not a JSON object".into()),
        Err(e) => return Outcome::Fail(format!("the fixture is not valid JSON: {e}")),
    };
    if let Some(key) = fixture.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Outcome::Fail(format!("unknown key {key:?} (expected {})", KEYS.join(", ")));
    }
    if fixture.get("about").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
        return Outcome::Fail("`about` must be a sentence saying what the case shows".into());
    }
    let known_bug = fixture.get("known_bug").and_then(Value::as_str).map(str::to_owned);
    let input = match fixture.get("case") {
        Some(Value::String(raw)) => raw.clone(),
        Some(case @ Value::Object(_)) => serde_json::to_string(case).expect("a Value serializes"),
        _ => return Outcome::Fail("`case` must be an input object or a raw input line".into()),
    };
    if input.contains('\n') {
        return Outcome::Fail("`case` must be a single input line".into());
    }

    let mut out = Vec::new();
    let summary = match kjp_cli::eval::run(policy, input.as_bytes(), &mut out) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("kjp eval failed: {e}")),
    };
    let out = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = out.lines().collect();
    let [line] = lines.as_slice() else {
        return Outcome::Fail(format!("expected exactly one output line, got {}:\n{out}", lines.len()));
    };
    let mut actual: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Outcome::Fail(format!("the output line is not JSON ({e}): {line}")),
    };
    // The policy's hash changes with every edit of the file, comments included; it is
    // checked once in `policy_hash_is_recorded`, not in every fixture.
    if let Some(sha) = actual.pointer_mut("/policy/sha256") {
        *sha = Value::String(POLICY_SHA.into());
    }
    // The exit code follows the error count: an error line must be counted as one.
    let is_error = actual.get("error").is_some();
    if usize::from(is_error) != summary.errors || usize::from(!is_error) != summary.decided {
        return Outcome::Fail(format!("the summary {summary:?} does not match the output line {line}"));
    }

    let expect = fixture.get("expect").cloned().unwrap_or(Value::Null);
    if actual == expect {
        return match known_bug {
            Some(bug) => Outcome::Fail(format!(
                "marked known_bug but the program now agrees with the law: remove the \
                 marker.\nknown_bug: {bug}"
            )),
            None => Outcome::Pass,
        };
    }
    if update && known_bug.is_none() {
        fixture.insert("expect".into(), actual);
        let body = pretty(&Value::Object(fixture));
        return match std::fs::write(path, body) {
            Ok(()) => Outcome::Updated,
            Err(e) => Outcome::Fail(format!("cannot rewrite {}: {e}", path.display())),
        };
    }
    let mut report = String::new();
    if let Some(bug) = &known_bug {
        let _ = writeln!(report, "KNOWN BUG (expect holds what the law says): {bug}");
    }
    let about = fixture.get("about").and_then(Value::as_str).unwrap_or("");
    let _ = writeln!(report, "about: {about}");
    let _ = writeln!(report, "input: {input}");
    let (expect, actual) = (pretty(&expect), pretty(&actual));
    let _ = writeln!(report, "diff (- expected, + actual):");
    report.push_str(&diff(&expect, &actual));
    let _ = writeln!(report, "expected:\n{expect}actual:\n{actual}");
    if !update {
        let _ =
            writeln!(report, "(if the program is right, rerun with UPDATE_GOLDEN=1 and review the rewrite)");
    }
    Outcome::Fail(report)
}

/// Pretty JSON, two-space indent, object keys sorted at every level, with a final newline.
fn pretty(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut s = serde_json::to_string_pretty(&sorted(v)).expect("a Value serializes");
    s.push('\n');
    s
}

/// A line diff (longest common subsequence), enough to read two pretty JSONs side by side.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // The edit script, then only the changed lines with two lines of context.
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    const CONTEXT: usize = 2;
    let near_change = |k: usize| {
        let from = k.saturating_sub(CONTEXT);
        let to = (k + CONTEXT).min(ops.len() - 1);
        ops[from..=to].iter().any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, text)) in ops.iter().enumerate() {
        if near_change(k) {
            if skipped {
                out.push_str("  ...\n");
                skipped = false;
            }
            let _ = writeln!(out, "{op} {text}");
        } else {
            skipped = true;
        }
    }
    out
}
