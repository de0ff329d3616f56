//! `kjp eval`: cases as JSON Lines in, one decision per line out, in the same order.
//!
//! This is a public contract (see README): an unknown field is an error for that line,
//! an absent or null fact is unknown, a line that cannot be read yields
//! `{"line":N,"error":"..."}` and the other lines are still decided.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufRead, Write};

use chrono::NaiveDate;
use kjp_domain::assess::{Explanation, Rules};
use kjp_domain::{BoolFact, Education, Facts, Level, Nik, Policy, Rupiah, SchoolType};
use serde::{Deserialize, Serialize};

/// One input line, as written. Converted into [`Facts`] by [`Case::facts`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(borrow)]
    as_of: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    birth_date: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    nik: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    education: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    level: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    school: Option<Cow<'a, str>>,
    #[serde(default)]
    lurah_recommendation: Option<bool>,
    #[serde(borrow, default)]
    groups: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    parent_wage: Option<i64>,
    #[serde(default)]
    parent_ktp_dki: Option<bool>,
    #[serde(default)]
    in_dtks: Option<bool>,
    #[serde(default)]
    has_sktm: Option<bool>,
    #[serde(default)]
    foster_child: Option<bool>,
    #[serde(default)]
    domiciled_dki: Option<bool>,
    #[serde(default)]
    on_dki_kk: Option<bool>,
    #[serde(default)]
    sanctioned: Option<bool>,
    #[serde(default)]
    family_car: Option<bool>,
    #[serde(default)]
    family_property_njop: Option<i64>,
    #[serde(default)]
    family_excluded_occupation: Option<bool>,
    // University students (KJMU).
    #[serde(default)]
    ktp_dki: Option<bool>,
    #[serde(default)]
    in_panti: Option<bool>,
    #[serde(default)]
    other_scholarship: Option<bool>,
    #[serde(default)]
    jakarta_graduate: Option<bool>,
    #[serde(default)]
    years_since_graduation: Option<u8>,
    #[serde(default)]
    state_regular_admission: Option<bool>,
    #[serde(default)]
    private_unggul_priority: Option<bool>,
    #[serde(default)]
    semester: Option<u8>,
    /// A number with at most two decimals, 0.00 to 4.00.
    #[serde(default)]
    gpa: Option<serde_json::Number>,
    #[serde(default)]
    graduated: Option<bool>,
    #[serde(default)]
    continuing: Option<bool>,
}

/// A grade point average as hundredths, read exactly from its decimal text.
fn gpa(raw: &serde_json::Number) -> Result<u16, String> {
    let text = raw.to_string();
    let bad =
        || format!("gpa: {text} is not a grade point average from 0.00 to 4.00 with at most two decimals");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u16 = whole.parse().map_err(|_| bad())?;
    let frac: u16 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    let v = whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)?;
    if v > 400 {
        return Err(bad());
    }
    Ok(v)
}

fn date(field: &str, raw: &str) -> Result<NaiveDate, String> {
    kjp_domain::ids::parse_date(raw)
        .ok_or_else(|| format!("{field}: {raw:?} is not a date (expected YYYY-MM-DD)"))
}

fn amount(field: &str, raw: Option<i64>) -> Result<Option<Rupiah>, String> {
    match raw {
        Some(v) if v < 0 => Err(format!("{field}: {v} is negative")),
        other => Ok(other.map(Rupiah::new)),
    }
}

impl Case<'_> {
    fn facts(&self, policy: &Policy) -> Result<(NaiveDate, Facts), String> {
        let as_of = date("as_of", self.as_of.as_deref().ok_or("as_of is required (YYYY-MM-DD)")?)?;
        let mut f = Facts {
            birth_date: self.birth_date.as_deref().map(|d| date("birth_date", d)).transpose()?,
            education: self
                .education
                .as_deref()
                .map(|e| {
                    Education::parse(e)
                        .ok_or_else(|| format!("education: {e:?} is not enrolled, out_of_school or none"))
                })
                .transpose()?,
            level: self.level.as_deref().map(Level::parse).transpose().map_err(|e| e.to_string())?,
            school: self.school.as_deref().map(SchoolType::parse).transpose().map_err(|e| e.to_string())?,
            parent_wage: amount("parent_wage", self.parent_wage)?,
            family_property_njop: amount("family_property_njop", self.family_property_njop)?,
            semester: self.semester,
            gpa: self.gpa.as_ref().map(gpa).transpose()?,
            years_since_graduation: self.years_since_graduation,
            ..Facts::default()
        };
        if let Some(nik) = self.nik.as_deref() {
            Nik::parse(nik).map_err(|e| e.to_string())?;
        }
        if let (Some(birth), true) = (f.birth_date, f.birth_date.is_some_and(|b| b > as_of)) {
            return Err(format!("birth_date {birth} is after as_of {as_of}"));
        }
        for g in self.groups.iter().flatten() {
            let index = policy.group_index(g).ok_or_else(|| {
                format!(
                    "groups: {g:?} is not a group of {} (expected one of {})",
                    policy.id,
                    policy.group_ids.join(", ")
                )
            })?;
            f.claims.insert(index);
        }
        for (fact, value) in [
            (BoolFact::LurahRecommendation, self.lurah_recommendation),
            (BoolFact::ParentKtpDki, self.parent_ktp_dki),
            (BoolFact::InDtks, self.in_dtks),
            (BoolFact::HasSktm, self.has_sktm),
            (BoolFact::FosterChild, self.foster_child),
            (BoolFact::DomiciledDki, self.domiciled_dki),
            (BoolFact::OnDkiKk, self.on_dki_kk),
            (BoolFact::Sanctioned, self.sanctioned),
            (BoolFact::FamilyCar, self.family_car),
            (BoolFact::FamilyExcludedOccupation, self.family_excluded_occupation),
            (BoolFact::KtpDki, self.ktp_dki),
            (BoolFact::InPanti, self.in_panti),
            (BoolFact::OtherScholarship, self.other_scholarship),
            (BoolFact::JakartaGraduate, self.jakarta_graduate),
            (BoolFact::StateRegularAdmission, self.state_regular_admission),
            (BoolFact::PrivateUnggulPriority, self.private_unggul_priority),
            (BoolFact::Graduated, self.graduated),
            (BoolFact::Continuing, self.continuing),
        ] {
            f.set(fact, value);
        }
        Ok((as_of, f))
    }
}

#[derive(Serialize)]
struct Output<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    #[serde(flatten)]
    decision: &'a Explanation<'a>,
}

#[derive(Serialize)]
struct LineError<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a serde_json::Value>,
    error: &'a str,
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EvalSummary {
    pub decided: usize,
    pub errors: usize,
}

/// Decides every line of `input`, writing one line to `out` for each non-blank line.
pub fn run(policy: &Policy, input: impl BufRead, mut out: impl Write) -> std::io::Result<EvalSummary> {
    let mut rules: HashMap<NaiveDate, Rules> = HashMap::new();
    let mut summary = EvalSummary::default();
    let mut input = input;
    let mut raw = Vec::new();
    let mut number = 0;
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        number += 1;
        let bytes = if number == 1 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&raw) } else { &raw };
        let line = match std::str::from_utf8(bytes) {
            Ok(l) => l.trim_end_matches(['\n', '\r']),
            Err(e) => {
                summary.errors += 1;
                let error = format!("the line is not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                write_line(&mut out, &LineError { line: number, id: None, error: &error })?;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        if line.trim_start().starts_with('[') {
            // serde would read an array field by field, in declaration order.
            summary.errors += 1;
            let error = "a case must be a JSON object with named fields, not an array (column 1)";
            write_line(&mut out, &LineError { line: number, id: None, error })?;
            continue;
        }
        let case: Case = match serde_json::from_str(line) {
            Ok(c) => c,
            Err(e) => {
                summary.errors += 1;
                write_line(&mut out, &LineError { line: number, id: None, error: &json_error(&e) })?;
                continue;
            }
        };
        let decided = case.facts(policy).and_then(|(as_of, facts)| {
            let rules = match rules.entry(as_of) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(Rules::new(policy, as_of).map_err(|e| e.to_string())?)
                }
            };
            let decision = rules.assess(&facts);
            Ok(rules.explain(&facts, &decision))
        });
        match decided {
            Ok(explanation) => {
                summary.decided += 1;
                write_line(&mut out, &Output { id: case.id.as_ref(), decision: &explanation })?;
            }
            Err(e) => {
                summary.errors += 1;
                write_line(&mut out, &LineError { line: number, id: case.id.as_ref(), error: &e })?;
            }
        }
    }
    out.flush()?;
    Ok(summary)
}

/// Reads and converts every line without deciding or writing: the floor that `run` is
/// measured against (`cargo bench -p kjp-cli --bench eval`). Returns the lines read.
pub fn parse_only(policy: &Policy, input: impl BufRead) -> std::io::Result<usize> {
    let mut read = 0;
    for line in input.lines() {
        let line = line?;
        if let Ok(case) = serde_json::from_str::<Case>(&line) {
            read += usize::from(case.facts(policy).is_ok());
        }
    }
    Ok(read)
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

/// serde_json's message without its "at line 1 column N" tail, plus the column.
fn json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    format!("{msg} (column {})", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(input: &str) -> (Vec<serde_json::Value>, EvalSummary) {
        let mut out = Vec::new();
        let s = run(&Policy::kjp_plus(), input.as_bytes(), &mut out).unwrap();
        let lines =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines, s)
    }

    #[test]
    fn contract_example_is_eligible_as_poor_family() {
        let (out, s) = eval(
            r#"{"id":"c1","as_of":"2025-01-01","birth_date":"2012-03-04","nik":"3171014403120001","education":"enrolled","level":"SMP","school":"swasta","lurah_recommendation":false,"groups":["poor_family","transjakarta_driver","worker"],"parent_wage":5500000,"parent_ktp_dki":true,"in_dtks":true,"has_sktm":true,"foster_child":false,"domiciled_dki":true,"on_dki_kk":true,"sanctioned":false,"family_car":false,"family_property_njop":0,"family_excluded_occupation":false}"#,
        );
        assert_eq!(s, EvalSummary { decided: 1, errors: 0 });
        assert_eq!(out[0]["id"], "c1");
        assert_eq!(out[0]["status"], "eligible");
        assert_eq!(out[0]["group"], "poor_family");
        assert_eq!(
            out[0]["monthly"],
            serde_json::json!({"routine":185000,"periodic":115000,"school_fee":170000,"total":470000})
        );
        assert_eq!(out[0]["reasons"], serde_json::json!([]));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_for_that_line_only() {
        let mut input = b"\xEF\xBB\xBF{\"id\":1,\"as_of\":\"2025-01-01\"}\n".to_vec();
        input.extend_from_slice(b"{\"id\":\"\xff\"}\n{\"id\":3,\"as_of\":\"2025-01-01\"}\r\n");
        let mut out = Vec::new();
        let s = run(&Policy::kjp_plus(), &input[..], &mut out).unwrap();
        assert_eq!(s, EvalSummary { decided: 2, errors: 1 });
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["id"], 1, "a byte-order mark is ignored");
        assert_eq!(lines[1]["error"], "the line is not valid UTF-8 (byte 8)");
        assert_eq!(lines[2]["id"], 3);
    }

    #[test]
    fn bad_lines_are_reported_and_the_rest_decided() {
        let input = "{\"id\":1,\"as_of\":\"2025-01-01\"}\nnot json\n\n{\"id\":2,\"as_of\":\"2025-01-01\",\"colour\":\"red\"}\n{\"id\":3,\"as_of\":\"2025-02-30\"}\n{\"id\":4,\"as_of\":\"2025-01-01\",\"nik\":\"317101440312000\"}\n";
        let (out, s) = eval(input);
        assert_eq!(s, EvalSummary { decided: 1, errors: 4 });
        assert_eq!(out[0]["status"], "ineligible");
        assert_eq!(out[1]["line"], 2);
        assert_eq!(out[2]["line"], 4);
        assert!(out[2]["error"].as_str().unwrap().contains("unknown field `colour`"), "{}", out[2]);
        assert_eq!(out[3]["error"], "as_of: \"2025-02-30\" is not a date (expected YYYY-MM-DD)");
        assert_eq!(out[4]["error"], "NIK 317101…: must be 16 digits, got 15 characters");
        assert_eq!(out[4]["id"], 4);
    }
}
