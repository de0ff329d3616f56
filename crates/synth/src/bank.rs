//! SYNTHETIC bank data for demos, tests and benchmarks: Bank DKI's accounts file for a
//! stage's recipients, a simulated return file for a payment batch, and a month of card
//! transactions. Nothing here is real bank data; every output is deterministic for a seed
//! and written in the formats of docs/formats.md (accounts, return file, card feed).
//!
//! The bank opens accounts for recipients (collectively, through the schools), so these
//! files are made from the decreed recipients rather than by `generate`, whose outputs
//! stay byte-identical.

use std::fmt::Write as _;

use crate::rng::Rng;

/// Stream numbers far from the kelurahan streams of `generate`.
const ACCOUNTS_STREAM: u64 = 0xB41C_0001;
const RETURN_STREAM: u64 = 0xB41C_0002;
const CARD_STREAM: u64 = 0xB41C_0003;

fn rng_for(seed: u64, stream: u64, nik: u64) -> Rng {
    Rng::new(seed ^ nik.wrapping_mul(0x9E37_79B9_7F4A_7C15), stream)
}

/// What [`accounts`] planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountsMix {
    pub active: u64,
    pub dormant: u64,
    pub closed: u64,
    pub not_opened: u64,
    /// Recipients with no row at all (new recipients the bank has not seen).
    pub absent: u64,
}

/// The bank's accounts file (`nik,account,holder,status`) for `(nik, name)` recipients:
/// about 96% active, 1% dormant, 0.5% closed, 1% requested but not opened, and 1.5% of
/// new recipients absent (every one active with `all_active`). Holder names are the
/// recipients' names in capitals.
pub fn accounts(recipients: &[(u64, &str)], seed: u64, all_active: bool) -> (String, AccountsMix) {
    let mut out = String::with_capacity(recipients.len() * 60 + 40);
    out.push_str("nik,account,holder,status\n");
    let mut mix = AccountsMix::default();
    for &(nik, name) in recipients {
        let mut rng = rng_for(seed, ACCOUNTS_STREAM, nik);
        let u = if all_active { 999 } else { rng.below(1000) };
        let status = match u {
            0..=14 => {
                mix.absent += 1;
                continue;
            }
            15..=24 => {
                mix.not_opened += 1;
                "not_opened"
            }
            25..=34 => {
                mix.dormant += 1;
                "dormant"
            }
            35..=39 => {
                mix.closed += 1;
                "closed"
            }
            _ => {
                mix.active += 1;
                "active"
            }
        };
        let account = if status == "not_opened" {
            String::new()
        } else {
            format!("{}", 1_000_000_000_000_000 + rng.below(9_000_000_000_000_000))
        };
        let holder = name.to_uppercase().replace([',', '"'], " ");
        let _ = writeln!(out, "{nik:016},{account},{holder},{status}");
    }
    (out, mix)
}

/// The bank's return file for a batch file's bytes: each line credited, or failed with
/// probability `fail_rate` (a reason drawn: dormant 40%, closed 20%, name mismatch 30%,
/// unknown account 10%). Lines whose NIK is in `fail` always fail (`account_dormant`).
/// Returns the file and how many lines failed.
pub fn simulate_return(
    batch_csv: &str,
    fail_rate: f64,
    seed: u64,
    fail: &[u64],
) -> Result<(String, u64), String> {
    let mut lines = batch_csv.lines();
    let header = lines.next().ok_or("the batch file is empty")?;
    if header != "batch,line,nik,name,account,months,routine,periodic,school_fee,amount" {
        return Err(format!("not a payment batch file (header {header:?})"));
    }
    let mut out = String::with_capacity(batch_csv.len());
    out.push_str("batch,line,nik,account,amount,status,reason\n");
    let mut failed = 0;
    for (i, l) in lines.enumerate() {
        if l.is_empty() {
            continue;
        }
        // The name (field 4) may be quoted; the others are plain. Split from both ends.
        let mut head = l.splitn(4, ',');
        let (batch, line, nik) = (head.next(), head.next(), head.next());
        let tail: Vec<&str> = l.rsplitn(6, ',').collect();
        let (Some(batch), Some(line), Some(nik), 6) = (batch, line, nik, tail.len()) else {
            return Err(format!("line {}: not a batch line", i + 2));
        };
        // tail[5] is "batch,line,nik,name,account": the account is its last field.
        let (amount, account) = (tail[0], tail[5].rsplit(',').next().unwrap_or(""));
        let n: u64 = nik.parse().map_err(|_| format!("line {}: bad NIK", i + 2))?;
        let mut rng = rng_for(seed, RETURN_STREAM, n);
        let reason = if fail.contains(&n) {
            Some("account_dormant")
        } else if rng.f64() < fail_rate {
            Some(match rng.below(10) {
                0..=3 => "account_dormant",
                4..=5 => "account_closed",
                6..=8 => "name_mismatch",
                _ => "unknown_account",
            })
        } else {
            None
        };
        match reason {
            Some(r) => {
                failed += 1;
                let _ = writeln!(out, "{batch},{line},{nik},{account},{amount},failed,{r}");
            }
            None => {
                let _ = writeln!(out, "{batch},{line},{nik},{account},{amount},credited,");
            }
        }
    }
    Ok((out, failed))
}

/// Allowed categories the simulated cards buy in (school supplies, books, uniforms,
/// shoes, bags, transport, subsidised food).
const ALLOWED: [&str; 7] = ["5943", "5942", "5137", "5661", "5948", "4111", "5422"];
/// Categories outside the allowed uses (bars, liquor, gambling, electronics games).
const NOT_ALLOWED: [&str; 3] = ["5813", "5921", "7995"];

/// What [`transactions`] planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CardMix {
    pub rows: u64,
    pub cash_over_limit: u64,
    pub category_not_allowed: u64,
    pub small_withdrawals: u64,
    /// Cards sent through the one merchant that serves implausibly many in a day.
    pub busy_merchant_cards: u64,
}

/// A month of card transactions (`txn,nik,time,kind,amount,mcc,merchant`) for `cards`
/// (NIKs), about `per_card` each: one or two cash withdrawals within the limit, the rest
/// purchases at allowed merchants. Planted: 0.5% withdraw above the limit, 0.3% buy in a
/// category outside the allowed uses, 0.1% make five small withdrawals at one ATM, and
/// one merchant serves `busy` cards on the 15th. Written through `out` in pieces.
pub fn transactions(
    cards: &[u64],
    year: i32,
    month: u32,
    per_card: u32,
    busy: u64,
    seed: u64,
    out: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> std::io::Result<CardMix> {
    let mut mix = CardMix::default();
    let mut buf = String::with_capacity(1 << 20);
    buf.push_str("txn,nik,time,kind,amount,mcc,merchant\n");
    let mut txn = 0u64;
    let mut row = |buf: &mut String,
                   nik: u64,
                   day: u64,
                   cash: bool,
                   amount: i64,
                   mcc: &str,
                   merchant: &str| {
        txn += 1;
        let kind = if cash { "cash" } else { "purchase" };
        let _ = writeln!(
            buf,
            "T{txn:010},{nik:016},{year:04}-{month:02}-{day:02}T{:02}:{:02}:00,{kind},{amount},{mcc},{merchant}",
            8 + txn % 12,
            txn % 60
        );
    };
    for (i, &nik) in cards.iter().enumerate() {
        let mut rng = rng_for(seed, CARD_STREAM, nik);
        let u = rng.below(1000);
        let atm = format!("ATM{:05}", rng.below(3000));
        let withdrawals = 1 + rng.below(2);
        let mut cash_left: i64 = 100_000;
        for _ in 0..withdrawals {
            let amount = (rng.range(2, 5) * 10_000).min(cash_left);
            if amount > 0 {
                row(&mut buf, nik, 1 + rng.below(28), true, amount, "6011", &atm);
                cash_left -= amount;
            }
        }
        if u < 5 {
            row(&mut buf, nik, 20 + rng.below(8), true, 150_000, "6011", &atm);
            mix.cash_over_limit += 1;
        } else if u < 8 {
            let mcc = NOT_ALLOWED[rng.below(NOT_ALLOWED.len() as u64) as usize];
            row(
                &mut buf,
                nik,
                1 + rng.below(28),
                false,
                rng.range(5, 30) * 5_000,
                mcc,
                &format!("M{mcc}{:04}", rng.below(200)),
            );
            mix.category_not_allowed += 1;
        } else if u < 9 {
            for _ in 0..5 {
                row(&mut buf, nik, 1 + rng.below(28), true, 10_000, "6011", &atm);
            }
            mix.small_withdrawals += 1;
        }
        let purchases = per_card.saturating_sub(withdrawals as u32);
        for _ in 0..purchases {
            let mcc = ALLOWED[rng.below(ALLOWED.len() as u64) as usize];
            let merchant = format!("M{mcc}{:04}", rng.below(5000));
            row(&mut buf, nik, 1 + rng.below(28), false, rng.range(2, 40) * 2_500, mcc, &merchant);
        }
        if (i as u64) < busy {
            row(&mut buf, nik, 15, false, 50_000, "5943", "M59439999");
            mix.busy_merchant_cards += 1;
        }
        if buf.len() > 1 << 20 {
            out(&buf)?;
            buf.clear();
        }
    }
    out(&buf)?;
    mix.rows = txn;
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_deterministic_and_mixed() {
        let people: Vec<(u64, String)> =
            (0..10_000u64).map(|i| (3171010101100000 + i, format!("Anak {i}"))).collect();
        let refs: Vec<(u64, &str)> = people.iter().map(|(n, s)| (*n, s.as_str())).collect();
        let (a, mix) = accounts(&refs, 7, false);
        assert_eq!(accounts(&refs, 7, false).0, a);
        assert!(
            mix.active > 9_400
                && mix.dormant > 50
                && mix.closed > 20
                && mix.not_opened > 50
                && mix.absent > 100,
            "{mix:?}"
        );
        assert_eq!(a.lines().count() as u64, 1 + 10_000 - mix.absent);
    }

    #[test]
    fn the_return_answers_every_line() {
        let batch = "batch,line,nik,name,account,months,routine,periodic,school_fee,amount\n\
                     B,1,3171010101100001,\"Adi, S\",1000000000000001,2025-01,185000,115000,0,300000\n\
                     B,2,3171010101100002,Bima,1000000000000002,2025-01,185000,115000,0,300000\n";
        let (r, failed) = simulate_return(batch, 0.0, 1, &[3171010101100002]).unwrap();
        assert_eq!(failed, 1);
        assert_eq!(
            r,
            "batch,line,nik,account,amount,status,reason\n\
             B,1,3171010101100001,1000000000000001,300000,credited,\n\
             B,2,3171010101100002,1000000000000002,300000,failed,account_dormant\n"
        );
    }
}
