//! Money, pure: which benefit months a payment covers, what a payment line is worth, the
//! bank's account and return statuses, and the card rules (the allowed uses and the
//! patterns flagged for review) read from the policy file's `[money]` section.
//!
//! Nothing here touches the database or a file: `kjp pay`, `kjp reconcile` and
//! `kjp transactions import` feed these functions and store what they return.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::ids::Stage;
use crate::policy::{Effective, PolicyError};

/// A set of a stage's six benefit months, as bits (bit 0 is the stage's first month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Months(u8);

impl Months {
    pub const NONE: Months = Months(0);
    pub const ALL: Months = Months(0b11_1111);

    pub fn from_bits(bits: u8) -> Option<Months> {
        (bits & !Months::ALL.0 == 0).then_some(Months(bits))
    }
    pub fn bits(self) -> u8 {
        self.0
    }
    pub fn count(self) -> i64 {
        i64::from(self.0.count_ones())
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, index: usize) -> bool {
        index < 6 && self.0 & (1 << index) != 0
    }
    pub fn with(self, index: usize) -> Months {
        Months(self.0 | (1 << index))
    }
    pub fn minus(self, other: Months) -> Months {
        Months(self.0 & !other.0)
    }
    pub fn and(self, other: Months) -> Months {
        Months(self.0 & other.0)
    }
    /// The indexes of the months in the set, in order.
    pub fn indexes(self) -> impl Iterator<Item = usize> {
        (0..6).filter(move |i| self.contains(*i))
    }
    /// `YYYY-MM` of each month in the set, joined by `;` (the batch file's form).
    pub fn label(self, stage: Stage) -> String {
        let months = stage.benefit_months();
        self.indexes().map(|i| month_code(months[i])).collect::<Vec<_>>().join(";")
    }
    /// Reads the batch file's form back (`2025-01;2025-02`).
    pub fn parse_label(stage: Stage, raw: &str) -> Option<Months> {
        let mut m = Months::NONE;
        for part in raw.split(';') {
            m = m.with(month_index(stage, part.trim())?);
        }
        (!m.is_empty()).then_some(m)
    }
}

/// `YYYY-MM`.
pub fn month_code(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The index (0 to 5) of a `YYYY-MM` month within a stage's benefit months.
pub fn month_index(stage: Stage, raw: &str) -> Option<usize> {
    stage.benefit_months().iter().position(|m| month_code(*m) == raw)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("months {raw:?}: {problem}")]
pub struct MonthsError {
    raw: String,
    problem: String,
}

/// Parses `2025-01..2025-03` (or one month, `2025-02`) against a stage: every month in the
/// range must be one of the stage's benefit months.
pub fn parse_month_range(stage: Stage, raw: &str) -> Result<Months, MonthsError> {
    let err = |problem: String| MonthsError { raw: raw.chars().take(30).collect(), problem };
    let (a, b) = raw.split_once("..").unwrap_or((raw, raw));
    let months = stage.benefit_months();
    let range = format!("{} to {}", month_code(months[0]), month_code(months[5]));
    let first = month_index(stage, a.trim())
        .ok_or_else(|| err(format!("{a} is not a benefit month of stage {stage} ({range})")))?;
    let last = month_index(stage, b.trim())
        .ok_or_else(|| err(format!("{b} is not a benefit month of stage {stage} ({range})")))?;
    if last < first {
        return Err(err("the range ends before it starts".into()));
    }
    Ok((first..=last).fold(Months::NONE, Months::with))
}

/// A bank account's state as the bank reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountStatus {
    Active,
    Dormant,
    Closed,
    /// Requested, not yet opened.
    NotOpened,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 4] =
        [AccountStatus::Active, AccountStatus::Dormant, AccountStatus::Closed, AccountStatus::NotOpened];
    pub fn parse(raw: &str) -> Option<AccountStatus> {
        AccountStatus::ALL.into_iter().find(|s| s.code() == raw.trim())
    }
    pub fn code(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Dormant => "dormant",
            AccountStatus::Closed => "closed",
            AccountStatus::NotOpened => "not_opened",
        }
    }
}

/// Why the bank could not credit a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailReason {
    AccountClosed,
    AccountDormant,
    NameMismatch,
    UnknownAccount,
}

impl FailReason {
    pub const ALL: [FailReason; 4] = [
        FailReason::AccountClosed,
        FailReason::AccountDormant,
        FailReason::NameMismatch,
        FailReason::UnknownAccount,
    ];
    pub fn parse(raw: &str) -> Option<FailReason> {
        FailReason::ALL.into_iter().find(|s| s.code() == raw.trim())
    }
    pub fn code(self) -> &'static str {
        match self {
            FailReason::AccountClosed => "account_closed",
            FailReason::AccountDormant => "account_dormant",
            FailReason::NameMismatch => "name_mismatch",
            FailReason::UnknownAccount => "unknown_account",
        }
    }
    /// What a family is told, and what fixes it.
    pub fn explain(self) -> &'static str {
        match self {
            FailReason::AccountClosed => "the account is closed: open a new one at Bank DKI",
            FailReason::AccountDormant => "the account is dormant: reactivate it at a Bank DKI branch",
            FailReason::NameMismatch => {
                "the account holder's name differs from the recipient's: correct it at Bank DKI"
            }
            FailReason::UnknownAccount => "the bank does not know the account number: check it with Bank DKI",
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A recipient's monthly amounts (from the decree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthlyParts {
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
}

/// What one payment line pays: each part times the number of months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineAmounts {
    pub routine: i64,
    pub periodic: i64,
    pub school_fee: i64,
    pub total: i64,
}

/// The amounts of a line paying `months` at `monthly`.
pub fn line_amounts(monthly: MonthlyParts, months: Months) -> LineAmounts {
    let n = months.count();
    let (routine, periodic, school_fee) = (monthly.routine * n, monthly.periodic * n, monthly.school_fee * n);
    LineAmounts { routine, periodic, school_fee, total: routine + periodic + school_fee }
}

/// Why a recipient gets no line in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Withheld {
    /// No account, or one not yet opened: listed for account opening.
    NoAccount,
    Dormant,
    Closed,
    /// A sanction stops payment from the next unpaid month.
    Sanctioned,
    /// The last payment into the account failed; it waits for the bank to report the
    /// account again.
    PaymentFailed,
}

impl Withheld {
    pub fn code(self) -> &'static str {
        match self {
            Withheld::NoAccount => "no_account",
            Withheld::Dormant => "account_dormant",
            Withheld::Closed => "account_closed",
            Withheld::Sanctioned => "sanctioned",
            Withheld::PaymentFailed => "payment_failed",
        }
    }
}

/// What a recipient gets in a batch: the months owed in the chosen range (not paid yet,
/// not stopped by a sanction), or why nothing is paid. `paid` is what the ledger holds
/// already (sent or credited), `stopped` the months a sanction stops, `held` whether the
/// last payment into the account failed and the bank has not reported it fixed.
pub fn owed(
    range: Months,
    paid: Months,
    stopped: Months,
    account: Option<AccountStatus>,
    held: bool,
) -> Result<Months, (Withheld, Months)> {
    let due = range.minus(paid);
    let stop = due.and(stopped);
    let due = due.minus(stopped);
    if !stop.is_empty() && due.is_empty() {
        return Err((Withheld::Sanctioned, stop));
    }
    match account {
        _ if due.is_empty() => Ok(Months::NONE),
        Some(AccountStatus::Active) if held => Err((Withheld::PaymentFailed, due)),
        Some(AccountStatus::Active) => Ok(due),
        Some(AccountStatus::Dormant) => Err((Withheld::Dormant, due)),
        Some(AccountStatus::Closed) => Err((Withheld::Closed, due)),
        Some(AccountStatus::NotOpened) | None => Err((Withheld::NoAccount, due)),
    }
}

// ------------------------------------------------------------------------ policy data

#[derive(Debug, Deserialize)]
struct RawDoc {
    #[serde(default)]
    money: Option<RawMoney>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMoney {
    #[serde(default)]
    card_rules: Vec<RawCardRules>,
    #[serde(default)]
    sanction: Vec<RawSanction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCardRules {
    from: Option<toml::value::Datetime>,
    to: Option<toml::value::Datetime>,
    citation: String,
    #[serde(default)]
    note: Option<String>,
    /// Allowed use -> the merchant category codes (ISO 18245) that count as it.
    allowed: BTreeMap<String, Vec<String>>,
    small_withdrawal_max: i64,
    small_withdrawals_per_terminal: i64,
    merchant_cards_per_day: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSanction {
    code: String,
    who: String,
    id: String,
    en: String,
    citation: String,
    from: Option<toml::value::Datetime>,
    to: Option<toml::value::Datetime>,
}

/// The card rules in force over a date range.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRules {
    pub effective: Effective,
    pub citation: String,
    pub note: Option<String>,
    /// Merchant category code -> the allowed use it counts as.
    pub allowed: BTreeMap<String, String>,
    /// A cash withdrawal of at most this much is "small".
    pub small_withdrawal_max: i64,
    /// This many small withdrawals by one card at one terminal in a month is flagged.
    pub small_withdrawals_per_terminal: i64,
    /// A merchant serving more distinct cards than this in one day is flagged.
    pub merchant_cards_per_day: i64,
}

/// One prohibited act of the sanction catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanctionCategory {
    pub code: String,
    /// `student`, `parent` or `any`.
    pub who: String,
    pub id: String,
    pub en: String,
    pub citation: String,
    pub effective: Effective,
}

/// The `[money]` section of a policy: card rules and the sanction catalogue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MoneyPolicy {
    pub card_rules: Vec<CardRules>,
    pub sanctions: Vec<SanctionCategory>,
}

fn date(d: Option<toml::value::Datetime>) -> Result<Option<NaiveDate>, String> {
    d.map(|d| {
        let dt = d.date.ok_or_else(|| format!("{d}: expected a date"))?;
        NaiveDate::from_ymd_opt(i32::from(dt.year), u32::from(dt.month), u32::from(dt.day))
            .ok_or_else(|| format!("{d}: not a date"))
    })
    .transpose()
}

fn effective(
    from: Option<toml::value::Datetime>,
    to: Option<toml::value::Datetime>,
) -> Result<Effective, String> {
    let from = date(from)?.unwrap_or(NaiveDate::MIN);
    let to = date(to)?;
    if to.is_some_and(|to| to < from) {
        return Err("the range ends before it starts".into());
    }
    Ok(Effective { from, to })
}

impl MoneyPolicy {
    /// Reads the `[money]` section of a policy file's text (absent: no card rules, an
    /// empty catalogue).
    pub fn parse(file: &str, text: &str) -> Result<MoneyPolicy, PolicyError> {
        let err = |message: String| PolicyError { file: file.into(), line: None, message };
        let doc: RawDoc = toml::from_str(text).map_err(|e| err(format!("[money]: {}", e.message())))?;
        let Some(raw) = doc.money else { return Ok(MoneyPolicy::default()) };
        let mut card_rules = Vec::new();
        for r in raw.card_rules {
            if r.citation.trim().is_empty() {
                return Err(err("[[money.card_rules]] has no citation".into()));
            }
            let effective = effective(r.from, r.to).map_err(|m| err(format!("[[money.card_rules]]: {m}")))?;
            let mut allowed = BTreeMap::new();
            for (use_, codes) in r.allowed {
                for code in codes {
                    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(err(format!(
                            "[[money.card_rules]] {use_}: {code:?} is not a 4-digit merchant category code"
                        )));
                    }
                    if let Some(other) = allowed.insert(code.clone(), use_.clone()) {
                        return Err(err(format!(
                            "[[money.card_rules]]: category {code} is listed under {other} and {use_}"
                        )));
                    }
                }
            }
            card_rules.push(CardRules {
                effective,
                citation: r.citation,
                note: r.note,
                allowed,
                small_withdrawal_max: r.small_withdrawal_max,
                small_withdrawals_per_terminal: r.small_withdrawals_per_terminal,
                merchant_cards_per_day: r.merchant_cards_per_day,
            });
        }
        card_rules.sort_by_key(|c| c.effective.from);
        for w in card_rules.windows(2) {
            if w[0].effective.to.is_none_or(|to| to >= w[1].effective.from) {
                return Err(err("[[money.card_rules]]: date ranges overlap".into()));
            }
        }
        let mut sanctions: Vec<SanctionCategory> = Vec::new();
        for s in raw.sanction {
            if s.citation.trim().is_empty() {
                return Err(err(format!("[[money.sanction]] {}: no citation", s.code)));
            }
            if !matches!(s.who.as_str(), "student" | "parent" | "any") {
                return Err(err(format!("[[money.sanction]] {}: who is student, parent or any", s.code)));
            }
            if sanctions.iter().any(|o| o.code == s.code) {
                return Err(err(format!("[[money.sanction]] {}: listed twice", s.code)));
            }
            let effective =
                effective(s.from, s.to).map_err(|m| err(format!("[[money.sanction]] {}: {m}", s.code)))?;
            sanctions.push(SanctionCategory {
                code: s.code,
                who: s.who,
                id: s.id,
                en: s.en,
                citation: s.citation,
                effective,
            });
        }
        Ok(MoneyPolicy { card_rules, sanctions })
    }

    /// The card rules in force on a date.
    pub fn card_rules_at(&self, date: NaiveDate) -> Option<&CardRules> {
        self.card_rules.iter().find(|c| c.effective.contains(date))
    }

    /// A sanction category in force on a date.
    pub fn sanction_at(&self, code: &str, date: NaiveDate) -> Option<&SanctionCategory> {
        self.sanctions.iter().find(|s| s.code == code && s.effective.contains(date))
    }
}

// ------------------------------------------------------------------------ card rules

/// A short identifier (a merchant or a terminal, at most 23 bytes) kept inline: a month
/// of card transactions has millions, and an allocation each would dominate screening.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    len: u8,
    bytes: [u8; 23],
}

impl Code {
    pub const MAX: usize = 23;
    pub fn new(s: &str) -> Option<Code> {
        if s.is_empty() || s.len() > Code::MAX {
            return None;
        }
        let mut bytes = [0u8; 23];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Some(Code { len: s.len() as u8, bytes })
    }
    pub fn as_str(&self) -> &str {
        // Built from a &str, cut at its own length: always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cash withdrawal or a purchase, from the bank's card feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardTxn {
    pub line: u64,
    pub nik: u64,
    pub date: NaiveDate,
    pub cash: bool,
    pub amount: i64,
    /// Merchant category code (purchases; `6011` for an ATM), 0 to 9999.
    pub mcc: u16,
    /// The merchant (purchases) or the terminal (ATM).
    pub merchant: Code,
}

/// A fast hasher for integer keys (FxHash's multiply-rotate); the maps here hold
/// millions of entries and need no protection against chosen keys.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// `year * 12 + month - 1`: a month as one number.
fn month_key(d: NaiveDate) -> u32 {
    (d.year() as u32) * 12 + d.month0()
}

fn month_label(key: u32) -> String {
    format!("{:04}-{:02}", key / 12, key % 12 + 1)
}

/// What each card spent: `(nik, cash, purchases)`, in NIK order.
pub fn spending(txns: &[CardTxn]) -> Vec<(u64, i64, i64)> {
    let mut by: FxMap<u64, (i64, i64)> = FxMap::default();
    for t in txns {
        let e = by.entry(t.nik).or_default();
        if t.cash {
            e.0 += t.amount;
        } else {
            e.1 += t.amount;
        }
    }
    let mut out: Vec<(u64, i64, i64)> = by.into_iter().map(|(n, (c, p))| (n, c, p)).collect();
    out.sort_unstable();
    out
}

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlagKind {
    /// More cash than the monthly limit.
    CashOverLimit,
    /// A purchase in a category outside the allowed uses.
    CategoryNotAllowed,
    /// Many small withdrawals by one card at one terminal in a month.
    SmallWithdrawals,
    /// One merchant serving implausibly many cards in a day.
    MerchantManyCards,
}

impl FlagKind {
    pub fn code(self) -> &'static str {
        match self {
            FlagKind::CashOverLimit => "cash_over_limit",
            FlagKind::CategoryNotAllowed => "category_not_allowed",
            FlagKind::SmallWithdrawals => "small_withdrawals",
            FlagKind::MerchantManyCards => "merchant_many_cards",
        }
    }
}

/// A pattern for review (never an automatic punishment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flag {
    pub kind: FlagKind,
    /// `YYYY-MM` (or `YYYY-MM-DD` for a merchant's day).
    pub period: String,
    /// The student's NIK (0 for a merchant flag).
    pub nik: u64,
    /// The merchant or terminal concerned, if any.
    pub merchant: String,
    /// The amount or count that crossed the line, and the line.
    pub value: i64,
    pub limit: i64,
    /// Feed lines that make the flag (the first few).
    pub lines: Vec<u64>,
}

/// Screens card transactions: per student and month, cash above `cash_limit` and
/// purchases outside the allowed categories; many small withdrawals at one terminal; a
/// merchant serving more cards a day than the rules allow. Deterministic order.
pub fn screen(txns: &[CardTxn], rules: &CardRules, cash_limit: i64) -> Vec<Flag> {
    const KEEP_LINES: usize = 10;
    let mut allowed = vec![false; 10_000];
    for code in rules.allowed.keys() {
        if let Ok(i) = code.parse::<usize>() {
            allowed[i % 10_000] = true;
        }
    }
    let mut flags = Vec::new();
    // Per card and month: cash; per card, month and terminal: small withdrawals.
    let mut cash: FxMap<(u64, u32), i64> = FxMap::default();
    let mut small: FxMap<(u64, u32, Code), i64> = FxMap::default();
    let mut visits: Vec<(Code, NaiveDate, u64)> = Vec::with_capacity(txns.len());
    for t in txns {
        let month = month_key(t.date);
        if t.cash {
            *cash.entry((t.nik, month)).or_default() += t.amount;
            if t.amount <= rules.small_withdrawal_max {
                *small.entry((t.nik, month, t.merchant)).or_default() += 1;
            }
        } else {
            if !allowed[usize::from(t.mcc) % 10_000] {
                flags.push(Flag {
                    kind: FlagKind::CategoryNotAllowed,
                    period: month_label(month),
                    nik: t.nik,
                    merchant: format!("{} (category {:04})", t.merchant, t.mcc),
                    value: t.amount,
                    limit: 0,
                    lines: vec![t.line],
                });
            }
            visits.push((t.merchant, t.date, t.nik));
        }
    }
    let over: FxMap<(u64, u32), i64> = cash.into_iter().filter(|(_, total)| *total > cash_limit).collect();
    let series: FxMap<(u64, u32, Code), i64> =
        small.into_iter().filter(|(_, n)| *n >= rules.small_withdrawals_per_terminal).collect();
    // The lines behind each flag (few flags: a second pass over the cash lines).
    let mut over_lines: FxMap<(u64, u32), Vec<u64>> = FxMap::default();
    let mut series_lines: FxMap<(u64, u32, Code), Vec<u64>> = FxMap::default();
    if !over.is_empty() || !series.is_empty() {
        for t in txns.iter().filter(|t| t.cash) {
            let month = month_key(t.date);
            if over.contains_key(&(t.nik, month)) {
                let v = over_lines.entry((t.nik, month)).or_default();
                if v.len() < KEEP_LINES {
                    v.push(t.line);
                }
            }
            if t.amount <= rules.small_withdrawal_max && series.contains_key(&(t.nik, month, t.merchant)) {
                let v = series_lines.entry((t.nik, month, t.merchant)).or_default();
                if v.len() < KEEP_LINES {
                    v.push(t.line);
                }
            }
        }
    }
    for ((nik, month), total) in over {
        flags.push(Flag {
            kind: FlagKind::CashOverLimit,
            period: month_label(month),
            nik,
            merchant: String::new(),
            value: total,
            limit: cash_limit,
            lines: over_lines.remove(&(nik, month)).unwrap_or_default(),
        });
    }
    for ((nik, month, terminal), count) in series {
        flags.push(Flag {
            kind: FlagKind::SmallWithdrawals,
            period: month_label(month),
            nik,
            merchant: terminal.to_string(),
            value: count,
            limit: rules.small_withdrawals_per_terminal,
            lines: series_lines.remove(&(nik, month, terminal)).unwrap_or_default(),
        });
    }
    // Distinct cards per merchant and day: sort the visits, count the runs.
    visits.sort_unstable();
    visits.dedup();
    let mut i = 0;
    while i < visits.len() {
        let (merchant, day, _) = visits[i];
        let mut j = i;
        while j < visits.len() && visits[j].0 == merchant && visits[j].1 == day {
            j += 1;
        }
        let cards = (j - i) as i64;
        if cards > rules.merchant_cards_per_day {
            flags.push(Flag {
                kind: FlagKind::MerchantManyCards,
                period: day.to_string(),
                nik: 0,
                merchant: merchant.to_string(),
                value: cards,
                limit: rules.merchant_cards_per_day,
                lines: Vec::new(),
            });
        }
        i = j;
    }
    flags.sort();
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> Stage {
        Stage::new(2025, 1).unwrap()
    }

    #[test]
    fn month_ranges() {
        let m = parse_month_range(stage(), "2025-01..2025-03").unwrap();
        assert_eq!(m.bits(), 0b111);
        assert_eq!(m.label(stage()), "2025-01;2025-02;2025-03");
        assert_eq!(Months::parse_label(stage(), "2025-01;2025-02;2025-03"), Some(m));
        assert_eq!(parse_month_range(stage(), "2025-06").unwrap().bits(), 0b10_0000);
        let e = parse_month_range(stage(), "2025-01..2025-07").unwrap_err().to_string();
        assert!(e.contains("2025-07 is not a benefit month of stage 2025/1 (2025-01 to 2025-06)"), "{e}");
        assert!(parse_month_range(stage(), "2025-03..2025-01").is_err());
    }

    #[test]
    fn a_line_is_each_part_times_the_months() {
        let parts = MonthlyParts { routine: 185_000, periodic: 115_000, school_fee: 170_000 };
        let a = line_amounts(parts, Months::from_bits(0b111).unwrap());
        assert_eq!(
            a,
            LineAmounts { routine: 555_000, periodic: 345_000, school_fee: 510_000, total: 1_410_000 }
        );
    }

    #[test]
    fn the_shipped_policy_has_the_card_rules_and_the_catalogue() {
        let p = crate::Policy::kjp_plus();
        let day = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let rules = p.money.card_rules_at(day).expect("card rules in force");
        assert_eq!(rules.allowed.get("5943").map(String::as_str), Some("school_supplies"));
        assert_eq!(rules.allowed.values().collect::<std::collections::BTreeSet<_>>().len(), 13);
        assert_eq!(p.money.sanctions.len(), 16);
        let s = p.money.sanction_at("SCHOOL_RULES", day).unwrap();
        assert!(s.citation.contains("110/2021") && s.en.contains("truancy"));
        let bad = crate::policy::KJP_PLUS.replace("who = \"parent\"", "who = \"uncle\"");
        assert!(crate::Policy::parse("x.toml", &bad).unwrap_err().to_string().contains("who is student"));
    }

    #[test]
    fn owed_months() {
        let range = Months::from_bits(0b111).unwrap();
        let paid = Months::from_bits(0b001).unwrap();
        assert_eq!(
            owed(range, paid, Months::NONE, Some(AccountStatus::Active), false),
            Ok(Months::from_bits(0b110).unwrap())
        );
        assert_eq!(owed(range, range, Months::NONE, None, false), Ok(Months::NONE));
        assert_eq!(
            owed(range, paid, Months::NONE, None, false),
            Err((Withheld::NoAccount, Months::from_bits(0b110).unwrap()))
        );
        assert_eq!(
            owed(range, paid, Months::NONE, Some(AccountStatus::Dormant), false).unwrap_err().0,
            Withheld::Dormant
        );
        assert_eq!(
            owed(range, paid, Months::NONE, Some(AccountStatus::Active), true).unwrap_err().0,
            Withheld::PaymentFailed
        );
        // A sanction stopping from the second month: only the first is still owed.
        let stopped = Months::from_bits(0b11_1110).unwrap();
        assert_eq!(
            owed(range, Months::NONE, stopped, Some(AccountStatus::Active), false),
            Ok(Months::from_bits(1).unwrap())
        );
        assert_eq!(
            owed(range, paid, stopped, Some(AccountStatus::Active), false).unwrap_err().0,
            Withheld::Sanctioned
        );
    }

    fn rules() -> CardRules {
        let p = crate::Policy::kjp_plus();
        p.money.card_rules_at(NaiveDate::from_ymd_opt(2025, 2, 1).unwrap()).unwrap().clone()
    }

    fn txn(line: u64, nik: u64, day: u32, cash: bool, amount: i64, mcc: &str, merchant: &str) -> CardTxn {
        CardTxn {
            line,
            nik,
            date: NaiveDate::from_ymd_opt(2025, 2, day).unwrap(),
            cash,
            amount,
            mcc: mcc.parse().unwrap(),
            merchant: Code::new(merchant).unwrap(),
        }
    }

    fn kinds(flags: &[Flag]) -> Vec<(FlagKind, u64, i64)> {
        flags.iter().map(|f| (f.kind, f.nik, f.value)).collect()
    }

    #[test]
    fn cash_up_to_the_limit_is_fine_one_rupiah_more_is_flagged() {
        let r = rules();
        let at = [txn(2, 1, 3, true, 60_000, "6011", "ATM1"), txn(3, 1, 20, true, 40_000, "6011", "ATM2")];
        assert!(screen(&at, &r, 100_000).is_empty());
        let over = [txn(2, 1, 3, true, 60_000, "6011", "ATM1"), txn(3, 1, 20, true, 40_001, "6011", "ATM2")];
        let f = screen(&over, &r, 100_000);
        assert_eq!(kinds(&f), vec![(FlagKind::CashOverLimit, 1, 100_001)]);
        assert_eq!((f[0].period.as_str(), f[0].lines.clone(), f[0].limit), ("2025-02", vec![2, 3], 100_000));
        // Per month: 60,000 in February and 60,000 in March are each within the limit.
        let mut march = txn(4, 1, 3, true, 60_000, "6011", "ATM1");
        march.date = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
        assert!(screen(&[txn(2, 1, 3, true, 60_000, "6011", "ATM1"), march], &r, 100_000).is_empty());
    }

    #[test]
    fn purchases_outside_the_allowed_uses_are_flagged() {
        let r = rules();
        let t = [
            txn(2, 1, 3, false, 50_000, "5943", "M1"),   // school supplies
            txn(3, 1, 3, false, 80_000, "5661", "M2"),   // shoes
            txn(4, 1, 4, false, 120_000, "5813", "BAR"), // a bar
            txn(5, 2, 4, false, 30_000, "7995", "BET"),  // gambling
        ];
        let f = screen(&t, &r, 100_000);
        assert_eq!(
            kinds(&f),
            vec![(FlagKind::CategoryNotAllowed, 1, 120_000), (FlagKind::CategoryNotAllowed, 2, 30_000)]
        );
        assert_eq!(f[0].merchant, "BAR (category 5813)");
        assert_eq!(f[0].lines, vec![4]);
    }

    #[test]
    fn many_small_withdrawals_at_one_atm_are_flagged() {
        let r = rules();
        let small = |line, atm: &str| txn(line, 7, 1 + line as u32, true, 10_000, "6011", atm);
        let three = [small(2, "ATM1"), small(3, "ATM1"), small(4, "ATM1"), small(5, "ATM2")];
        assert!(screen(&three, &r, 100_000).is_empty(), "three at one ATM and one at another");
        let four = [small(2, "ATM1"), small(3, "ATM1"), small(4, "ATM1"), small(5, "ATM1")];
        let f = screen(&four, &r, 100_000);
        assert_eq!(kinds(&f), vec![(FlagKind::SmallWithdrawals, 7, 4)]);
        assert_eq!(f[0].merchant, "ATM1");
        // A large withdrawal is not a small one.
        let big = [
            small(2, "ATM1"),
            small(3, "ATM1"),
            small(4, "ATM1"),
            txn(5, 7, 9, true, 50_000, "6011", "ATM1"),
        ];
        assert!(screen(&big, &r, 100_000).is_empty());
    }

    #[test]
    fn a_merchant_serving_implausibly_many_cards_in_a_day_is_flagged() {
        let r = rules();
        let n = r.merchant_cards_per_day as u64;
        let at_limit: Vec<CardTxn> =
            (0..n).map(|i| txn(i + 2, 100 + i, 15, false, 20_000, "5943", "M9")).collect();
        assert!(screen(&at_limit, &r, 100_000).is_empty());
        let mut over = at_limit.clone();
        over.push(txn(n + 2, 100 + n, 15, false, 20_000, "5943", "M9"));
        let f = screen(&over, &r, 100_000);
        assert_eq!(kinds(&f), vec![(FlagKind::MerchantManyCards, 0, n as i64 + 1)]);
        assert_eq!((f[0].merchant.as_str(), f[0].period.as_str()), ("M9", "2025-02-15"));
        // The same cards over two days are not.
        let mut spread = at_limit;
        spread.push(txn(n + 2, 100 + n, 16, false, 20_000, "5943", "M9"));
        assert!(screen(&spread, &r, 100_000).is_empty());
    }
}
