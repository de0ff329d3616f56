//! The official Jakarta region list (Kemendagri codes), vendored in `data/`.
//!
//! Source: github.com/cahyadsn/wilayah `db/wilayah.sql` at commit b7ad440a (2026-08-08),
//! from Kepmendagri No 300.2.2-2138/2025; MIT licence, Copyright (c) 2017-2025 Cahya DSN.
//! See `data/README.md`. Parsed once, on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

const CSV: &str = include_str!("../data/jakarta-regions.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionLevel {
    Provinsi,
    /// A city (kota administrasi) or the one regency, Kepulauan Seribu.
    Kota,
    Kecamatan,
    Kelurahan,
}

#[derive(Debug, Clone, Copy)]
pub struct Region {
    pub code: &'static str,
    pub level: RegionLevel,
    pub name: &'static str,
    pub parent: Option<&'static str>,
}

struct Table {
    rows: Vec<Region>,
    by_code: HashMap<&'static str, u16>,
    /// Which undotted 6-digit codes `31xxxx` are Jakarta kecamatan, and which 4-digit
    /// codes `31xx` are cities: NIK and KK prefixes are checked without allocating.
    kecamatan: Vec<bool>,
    kota: Vec<bool>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let rows: Vec<Region> = CSV
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut f = line.split(',');
                let mut next = || f.next().expect("vendored region list has 4 columns");
                let (code, level, name, parent) = (next(), next(), next(), next());
                let level = match level {
                    "provinsi" => RegionLevel::Provinsi,
                    "kota" => RegionLevel::Kota,
                    "kecamatan" => RegionLevel::Kecamatan,
                    "kelurahan" => RegionLevel::Kelurahan,
                    other => panic!("vendored region list: unknown level {other}"),
                };
                Region { code, level, name, parent: (!parent.is_empty()).then_some(parent) }
            })
            .collect();
        let by_code = rows.iter().enumerate().map(|(i, r)| (r.code, i as u16)).collect();
        let mut kecamatan = vec![false; 10_000];
        let mut kota = vec![false; 100];
        for r in &rows {
            let digits: String = r.code.chars().filter(char::is_ascii_digit).collect();
            let n: usize = digits.parse().expect("numeric region code");
            match r.level {
                RegionLevel::Kecamatan => kecamatan[n - 310_000] = true,
                RegionLevel::Kota => kota[n - 3100] = true,
                _ => {}
            }
        }
        Table { rows, by_code, kecamatan, kota }
    })
}

/// Every region, sorted by code.
pub fn all() -> &'static [Region] {
    &table().rows
}

/// The index of a dotted code such as `31.71.01` in [`all`].
pub fn find(code: &str) -> Option<u16> {
    table().by_code.get(code).copied()
}

/// Whether `31rr` (e.g. 3171) is a Jakarta city or regency.
pub fn is_kota(code: u32) -> bool {
    code.checked_sub(3100).is_some_and(|i| table().kota.get(i as usize).copied().unwrap_or(false))
}

/// Whether `31rrdd` (e.g. 317101) is a Jakarta kecamatan.
pub fn is_kecamatan(code: u32) -> bool {
    code.checked_sub(310_000).is_some_and(|i| table().kecamatan.get(i as usize).copied().unwrap_or(false))
}

/// Regions of one level, in code order.
pub fn at_level(level: RegionLevel) -> impl Iterator<Item = &'static Region> {
    all().iter().filter(move |r| r.level == level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_counts() {
        assert_eq!(at_level(RegionLevel::Provinsi).count(), 1);
        assert_eq!(at_level(RegionLevel::Kota).count(), 6);
        assert_eq!(at_level(RegionLevel::Kecamatan).count(), 44);
        assert_eq!(at_level(RegionLevel::Kelurahan).count(), 267);
    }

    #[test]
    fn numeric_lookups() {
        assert!(is_kota(3171) && is_kota(3101) && !is_kota(3179) && !is_kota(3201));
        assert!(is_kecamatan(317101) && !is_kecamatan(317199) && !is_kecamatan(99));
        assert_eq!((310_000..320_000).filter(|c| is_kecamatan(*c)).count(), 44);
    }

    #[test]
    fn every_parent_exists() {
        for r in all() {
            if let Some(p) = r.parent {
                assert!(find(p).is_some(), "{} has unknown parent {p}", r.code);
            }
        }
    }
}
