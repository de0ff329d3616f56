//! Property tests for the identifier parsers in `kjp_domain::ids`: whatever is well formed
//! parses and prints back unchanged, and whatever is not is rejected with an error that
//! names the part that is wrong.

use chrono::{Datelike, NaiveDate};
use kjp_domain::ids::Sex;
use kjp_domain::regions::{self, RegionLevel};
use kjp_domain::{Nik, Npsn, Rupiah, Stage};
use proptest::prelude::*;

/// The 44 official Jakarta kecamatan as 6-digit NIK prefixes, e.g. `317101`.
fn kecamatan_prefixes() -> Vec<String> {
    let prefixes: Vec<String> =
        regions::at_level(RegionLevel::Kecamatan).map(|r| r.code.replace('.', "")).collect();
    assert_eq!(prefixes.len(), 44, "Jakarta has 44 kecamatan");
    prefixes
}

fn prefix() -> impl Strategy<Value = String> {
    proptest::sample::select(kecamatan_prefixes())
}

/// A real calendar date. The NIK keeps only two digits of the year.
fn birth_date() -> impl Strategy<Value = NaiveDate> {
    (1930i32..=2029, 1u32..=12, 1u32..=31)
        .prop_filter_map("a real date", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
}

/// The parts of a well-formed Jakarta NIK and the string they make.
#[derive(Debug, Clone)]
struct NikParts {
    prefix: String,
    date: NaiveDate,
    female: bool,
    serial: u32,
}

impl NikParts {
    fn day_field(&self) -> u32 {
        self.date.day() + if self.female { 40 } else { 0 }
    }
    fn yy(&self) -> u32 {
        (self.date.year() % 100) as u32
    }
    fn render(&self) -> String {
        format!(
            "{}{:02}{:02}{:02}{:04}",
            self.prefix,
            self.day_field(),
            self.date.month(),
            self.yy(),
            self.serial
        )
    }
}

fn nik_parts() -> impl Strategy<Value = NikParts> {
    (prefix(), birth_date(), any::<bool>(), 1u32..=9999).prop_map(|(prefix, date, female, serial)| NikParts {
        prefix,
        date,
        female,
        serial,
    })
}

/// Builds a NIK from its fields as given, valid or not.
fn raw_nik(prefix: &str, day: u32, month: u32, yy: u32, serial: u32) -> String {
    format!("{prefix}{day:02}{month:02}{yy:02}{serial:04}")
}

proptest! {
    #[test]
    fn valid_nik_parses_and_round_trips(p in nik_parts()) {
        let raw = p.render();
        let nik = Nik::parse(&raw).map_err(|e| TestCaseError::fail(format!("{raw}: {e}")))?;
        prop_assert_eq!(nik.to_string(), raw.clone());
        prop_assert_eq!(nik.sex(), if p.female { Sex::Female } else { Sex::Male });
        prop_assert_eq!(nik.birth_dmy(), (p.date.day(), p.date.month(), p.yy()));
        prop_assert_eq!(nik.region_prefix().to_string(), p.prefix.clone());
        prop_assert_eq!(nik.province(), 31);
        prop_assert_eq!(raw.parse::<Nik>().ok(), Some(nik));
        // Debug goes to logs: it never shows the whole number.
        let debug = format!("{nik:?}");
        prop_assert!(!debug.contains(&raw), "{}", debug);
    }

    #[test]
    fn nik_with_a_non_digit_fails_naming_the_character(
        p in nik_parts(),
        position in 0usize..16,
        bad in any::<char>().prop_filter("not an ASCII digit", |c| !c.is_ascii_digit()),
    ) {
        let mut chars: Vec<char> = p.render().chars().collect();
        chars[position] = bad;
        let raw: String = chars.into_iter().collect();
        let err = Nik::parse(&raw).expect_err("a non-digit must be rejected");
        prop_assert_eq!(
            err.problem(),
            format!("character {} ({bad:?}) is not a digit", position + 1)
        );
        prop_assert!(err.to_string().starts_with("NIK "), "{}", err);
    }

    #[test]
    fn nik_of_the_wrong_length_fails_naming_the_length(
        chars in proptest::collection::vec(
            prop_oneof![4 => proptest::char::range('0', '9'), 1 => any::<char>()],
            0..40,
        )
        .prop_filter("not 16 characters", |c| c.len() != 16),
    ) {
        let raw: String = chars.iter().collect();
        let err = Nik::parse(&raw).expect_err("a wrong length must be rejected");
        // Counted in characters, not bytes.
        prop_assert_eq!(
            err.problem(),
            format!("must be 16 digits, got {} characters", chars.len())
        );
        // The whole NIK is never echoed back.
        if chars.len() > 6 {
            prop_assert!(!err.to_string().contains(&raw), "{}", err);
        }
    }

    #[test]
    fn nik_with_an_impossible_day_fails_naming_the_day(
        prefix in prefix(),
        day in prop_oneof![Just(0u32), 32u32..=40, 72u32..=99],
        month in 1u32..=12,
        yy in 0u32..=99,
        serial in 1u32..=9999,
    ) {
        let raw = raw_nik(&prefix, day, month, yy, serial);
        let err = Nik::parse(&raw).expect_err("an impossible day must be rejected");
        prop_assert!(
            err.problem().starts_with(&format!("day {day:02} ")),
            "{raw}: {}", err
        );
    }

    #[test]
    fn nik_with_an_impossible_month_fails_naming_the_month(
        prefix in prefix(),
        day in prop_oneof![1u32..=28, 41u32..=68],
        month in prop_oneof![Just(0u32), 13u32..=99],
        yy in 0u32..=99,
        serial in 1u32..=9999,
    ) {
        let raw = raw_nik(&prefix, day, month, yy, serial);
        let err = Nik::parse(&raw).expect_err("an impossible month must be rejected");
        prop_assert_eq!(err.problem(), format!("month {month:02} is not a month"));
    }

    #[test]
    fn any_eight_digits_are_an_npsn(n in 0u32..=99_999_999) {
        let raw = format!("{n:08}");
        let npsn = Npsn::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(npsn.to_string(), raw);
        prop_assert_eq!(npsn.as_u32(), n);
    }

    #[test]
    fn npsn_of_another_length_fails(
        digits in proptest::collection::vec(0u8..=9, 0..20)
            .prop_filter("not 8 digits", |d| d.len() != 8),
    ) {
        let raw: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let err = Npsn::parse(&raw).expect_err("a wrong length must be rejected");
        prop_assert!(
            err.to_string()
                .contains(&format!("must be 8 digits, got {} characters", raw.len())),
            "{}", err
        );
    }

    #[test]
    fn stage_round_trips(year in 2012i32..=2100, half in 1u8..=2) {
        for sep in ['/', '-'] {
            let raw = format!("{year}{sep}{half}");
            let stage = Stage::parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(stage.year(), year);
            prop_assert_eq!(stage.half(), half);
            prop_assert_eq!(stage.to_string(), format!("{year}/{half}"));
            prop_assert_eq!(Stage::parse(&stage.to_string()).ok(), Some(stage));
        }
    }

    #[test]
    fn stage_out_of_range_fails(
        year in prop_oneof![1900i32..2012, 2101i32..=3000],
        half in 1u8..=2,
    ) {
        let raw = format!("{year}/{half}");
        let err = Stage::parse(&raw).expect_err("a year outside 2012-2100 must be rejected");
        prop_assert!(err.to_string().contains("year"), "{}", err);
    }

    #[test]
    fn rupiah_display_groups_by_three_and_reads_back(n in any::<i64>()) {
        let shown = Rupiah::new(n).to_string();
        let (sign, rest) = match shown.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", shown.as_str()),
        };
        prop_assert_eq!(sign == "-", n < 0, "{}", shown);
        let grouped = rest.strip_prefix("Rp ");
        prop_assert!(grouped.is_some(), "{}", shown);
        let grouped = grouped.unwrap_or_default();
        let groups: Vec<&str> = grouped.split('.').collect();
        let (first, others) = groups.split_first().expect("split yields one part");
        prop_assert!((1..=3).contains(&first.len()), "{}", shown);
        prop_assert!(first.len() == 1 || !first.starts_with('0'), "{}", shown);
        for g in others {
            prop_assert_eq!(g.len(), 3, "{}", shown);
        }
        prop_assert!(grouped.chars().all(|c| c.is_ascii_digit() || c == '.'), "{}", shown);
        let plain = format!("{sign}{}", grouped.replace('.', ""));
        prop_assert_eq!(plain.parse::<i64>().ok(), Some(n), "{}", shown);
    }
}
