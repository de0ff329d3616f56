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
        Table { rows, by_code }
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
    fn every_parent_exists() {
        for r in all() {
            if let Some(p) = r.parent {
                assert!(find(p).is_some(), "{} has unknown parent {p}", r.code);
            }
        }
    }
}
