//! Calendar days as plain integers: the generator does date arithmetic millions of times
//! and writes `YYYY-MM-DD` directly into its buffers.

/// Days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Day(pub(crate) i32);

impl Day {
    /// Howard Hinnant's `days_from_civil`.
    pub(crate) const fn ymd(y: i32, m: u32, d: u32) -> Day {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = (y - era * 400) as u32;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe as i32 - 719_468)
    }

    /// Howard Hinnant's `civil_from_days`.
    pub(crate) const fn to_ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = (z - era * 146_097) as u32;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe as i32 + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    pub(crate) fn year(self) -> i32 {
        self.to_ymd().0
    }

    pub(crate) const fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// Whole years of age on `on`.
    pub(crate) fn age_on(self, on: Day) -> i32 {
        let (by, bm, bd) = self.to_ymd();
        let (y, m, d) = on.to_ymd();
        let mut age = y - by;
        if (m, d) < (bm, bd) {
            age -= 1;
        }
        age
    }

    /// Appends `YYYY-MM-DD`.
    pub(crate) fn write(self, out: &mut Vec<u8>) {
        let (y, m, d) = self.to_ymd();
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000 % 10) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
            b'-',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b'-',
            b'0' + (d / 10) as u8,
            b'0' + (d % 10) as u8,
        ]);
    }

    /// Appends `YYYY-MM`.
    pub(crate) fn write_month(self, out: &mut Vec<u8>) {
        self.write(out);
        out.truncate(out.len() - 3);
    }
}

/// The reference date of the stage the world is calibrated for: tahap I 2025.
pub(crate) const REF: Day = Day::ymd(2025, 1, 1);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    #[test]
    fn agrees_with_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for n in (-30_000..30_000).step_by(7) {
            let day = Day(n);
            let c = epoch + chrono::Duration::days(i64::from(n));
            assert_eq!(day.to_ymd(), (c.year(), c.month(), c.day()));
            assert_eq!(Day::ymd(c.year(), c.month(), c.day()), day);
            let mut s = Vec::new();
            day.write(&mut s);
            assert_eq!(String::from_utf8(s).unwrap(), c.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn ages() {
        let b = Day::ymd(2003, 1, 1);
        assert_eq!(b.age_on(REF), 22);
        assert_eq!(Day::ymd(2003, 1, 2).age_on(REF), 21);
        assert_eq!(Day::ymd(2019, 1, 1).age_on(REF), 6);
        assert_eq!(Day::ymd(2019, 1, 2).age_on(REF), 5);
        let mut s = Vec::new();
        REF.write_month(&mut s);
        assert_eq!(s, b"2025-01");
    }
}
