//! The compact text form of a candidate's facts, stored with each decision so that it
//! can be replayed (the decree) or re-assessed under another policy (the what-if)
//! without reading the agency files again.
//!
//! `b=2012-03-04;e=enrolled;l=SMP;s=swasta;w=5500000;p=0;g=poor_family+worker;f=1?0...;d=3`
//! where `f` holds one character per yes/no fact in `BoolFact` order: `1`, `0` or `?`
//! (trailing unknowns left out), `d` the DTKS decile (read by the funding order), and for
//! a university student `sem` the semester, `gpa` in hundredths and `ysg` the years since
//! secondary-school graduation.

use kjp_domain::ids::{parse_date, Level, SchoolType};
use kjp_domain::{BoolFact, Education, Facts, Policy, Rupiah};

const FLAGS: [BoolFact; BoolFact::COUNT] = [
    BoolFact::LurahRecommendation,
    BoolFact::ParentKtpDki,
    BoolFact::InDtks,
    BoolFact::HasSktm,
    BoolFact::FosterChild,
    BoolFact::DomiciledDki,
    BoolFact::OnDkiKk,
    BoolFact::Sanctioned,
    BoolFact::FamilyCar,
    BoolFact::FamilyExcludedOccupation,
    BoolFact::KtpDki,
    BoolFact::InPanti,
    BoolFact::OtherScholarship,
    BoolFact::JakartaGraduate,
    BoolFact::StateRegularAdmission,
    BoolFact::PrivateUnggulPriority,
    BoolFact::Graduated,
    BoolFact::Continuing,
];

/// Encodes facts; group claims by name, so another policy can read them.
pub fn facts(f: &Facts, policy: &Policy) -> String {
    let mut out = String::with_capacity(96);
    let mut push = |k: &str, v: &str| {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    };
    if let Some(b) = f.birth_date {
        push("b", &b.to_string());
    }
    if let Some(e) = f.education {
        push("e", e.name());
    }
    if let Some(l) = f.level {
        push("l", l.code());
    }
    if let Some(s) = f.school {
        push("s", s.code());
    }
    if let Some(w) = f.parent_wage {
        push("w", &w.get().to_string());
    }
    if let Some(n) = f.family_property_njop {
        push("p", &n.get().to_string());
    }
    let groups: Vec<&str> = policy
        .group_ids
        .iter()
        .enumerate()
        .filter(|(i, _)| f.claims.contains(*i))
        .map(|(_, g)| g.as_str())
        .collect();
    push("g", &groups.join("+"));
    let flags: String = FLAGS
        .iter()
        .map(|b| match f.get(*b) {
            Some(true) => '1',
            Some(false) => '0',
            None => '?',
        })
        .collect();
    // Trailing unknowns are left out: the facts of a school child stay short.
    push("f", flags.trim_end_matches('?'));
    if let Some(d) = f.dtks_decile {
        push("d", &d.to_string());
    }
    for (key, v) in
        [("sem", f.semester.map(u16::from)), ("gpa", f.gpa), ("ysg", f.years_since_graduation.map(u16::from))]
    {
        if let Some(v) = v {
            push(key, &v.to_string());
        }
    }
    out
}

/// Reads facts back. Groups the policy does not know are ignored (a what-if with a
/// policy that dropped a group).
pub fn decode(text: &str, policy: &Policy) -> Result<Facts, String> {
    let mut f = Facts::default();
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("facts: {part:?} has no '='"))?;
        let bad = || format!("facts: bad value {v:?} for {k}");
        match k {
            "b" => f.birth_date = Some(parse_date(v).ok_or_else(bad)?),
            "e" => f.education = Some(Education::parse(v).ok_or_else(bad)?),
            "l" => f.level = Some(Level::parse(v).map_err(|_| bad())?),
            "s" => f.school = Some(SchoolType::parse(v).map_err(|_| bad())?),
            "w" => f.parent_wage = Some(Rupiah::new(v.parse().map_err(|_| bad())?)),
            "p" => f.family_property_njop = Some(Rupiah::new(v.parse().map_err(|_| bad())?)),
            "d" => f.dtks_decile = Some(v.parse().ok().filter(|d| (1..=10).contains(d)).ok_or_else(bad)?),
            "sem" => f.semester = Some(v.parse().map_err(|_| bad())?),
            "gpa" => f.gpa = Some(v.parse().ok().filter(|g| *g <= 400).ok_or_else(bad)?),
            "ysg" => f.years_since_graduation = Some(v.parse().map_err(|_| bad())?),
            "g" => {
                for g in v.split('+').filter(|g| !g.is_empty()) {
                    if let Some(i) = policy.group_index(g) {
                        f.claims.insert(i);
                    }
                }
            }
            "f" => {
                // Facts added later are unknown in text written before them.
                if v.chars().count() > FLAGS.len() {
                    return Err(bad());
                }
                for (b, c) in FLAGS.iter().zip(v.chars()) {
                    f.set(
                        *b,
                        match c {
                            '1' => Some(true),
                            '0' => Some(false),
                            '?' => None,
                            _ => return Err(bad()),
                        },
                    );
                }
            }
            _ => return Err(format!("facts: unknown key {k:?}")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let policy = Policy::kjp_plus();
        let mut f = Facts {
            birth_date: parse_date("2012-03-04"),
            education: Some(Education::OutOfSchool),
            level: Some(Level::Smalb),
            school: Some(SchoolType::Swasta),
            parent_wage: Some(Rupiah::new(5_500_000)),
            family_property_njop: Some(Rupiah::new(0)),
            ..Facts::default()
        };
        f.claims.insert(0);
        f.claims.insert(2);
        f.set(BoolFact::InDtks, Some(true));
        f.set(BoolFact::FamilyCar, Some(false));
        f.dtks_decile = Some(3);
        let text = facts(&f, &policy);
        assert_eq!(text, "b=2012-03-04;e=out_of_school;l=SMALB;s=swasta;w=5500000;p=0;g=poor_family+worker;f=??1?????0;d=3");
        assert_eq!(decode(&text, &policy).unwrap(), f);
        f.set(BoolFact::Continuing, Some(true));
        f.semester = Some(5);
        f.gpa = Some(325);
        f.years_since_graduation = Some(2);
        let text = facts(&f, &policy);
        assert_eq!(
            text,
            "b=2012-03-04;e=out_of_school;l=SMALB;s=swasta;w=5500000;p=0;g=poor_family+worker;f=??1?????0????????1;d=3;sem=5;gpa=325;ysg=2"
        );
        assert_eq!(decode(&text, &policy).unwrap(), f);
        assert_eq!(decode("", &policy).unwrap(), Facts::default());
        assert!(decode("x=1", &policy).is_err());
        assert!(decode("d=11", &policy).is_err());
    }
}
