//! The decree annex: the recipients by school, with totals per level and per city that
//! add up to the rupiah, as CSV (recipients, totals) and as one XLSX workbook, for the
//! office to sign and publish. NIKs are masked; the totals are checked against the
//! decree before anything is written.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use kjp_domain::ids::{Level, REPORT_LEVELS};
use kjp_domain::{Nik, RegionCode, Stage};
use kjp_store::Store;

use crate::decree::DecreeError;
use crate::source::{parse, School};

#[derive(Debug, thiserror::Error)]
pub enum AnnexError {
    #[error(transparent)]
    Decree(#[from] DecreeError),
    #[error(transparent)]
    Store(#[from] kjp_store::StoreError),
    #[error("stage {0} has no decree yet: run `kjp stage decree` first")]
    NotDecreed(Stage),
    #[error("{path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the annex does not add up: {0}")]
    Mismatch(String),
}

/// The files written.
#[derive(Debug, Clone)]
pub struct Annex {
    pub recipients_csv: PathBuf,
    pub totals_csv: PathBuf,
    pub xlsx: PathBuf,
    pub recipients: usize,
    pub monthly_total: i64,
}

struct Line {
    city: String,
    kecamatan: String,
    npsn: String,
    school: String,
    level: String,
    nik: String,
    name: String,
    amounts: [i64; 4],
}

fn region_name(code: &str, len: usize) -> String {
    code.get(..len)
        .and_then(|c| RegionCode::parse(c).ok())
        .map(|r| r.name().to_string())
        .unwrap_or_else(|| "-".into())
}

fn write_err(path: &Path) -> impl Fn(String) -> AnnexError + '_ {
    move |reason| AnnexError::Write { path: path.display().to_string(), reason }
}

pub async fn annex(store: &Store, stage: Stage, dir: &Path) -> Result<Annex, AnnexError> {
    let decrees = store.decrees(stage).await?;
    let decree = decrees.first().ok_or(AnnexError::NotDecreed(stage))?;
    // The annex lists the recipients; the eligible-but-unfunded are counted in the decree.
    let entries: Vec<_> =
        store.decree_entries(stage, 0).await?.into_iter().filter(|e| e.status == "recipient").collect();
    let mut names: HashMap<String, String> = HashMap::new();
    store
        .each_decision(stage, |d| {
            if d.status == "eligible" {
                names.insert(d.nik, d.name);
            }
        })
        .await?;
    // School names from the schools snapshot the stage run used.
    let schools_sha =
        decree.snapshots.split(';').find_map(|p| p.strip_prefix("schools=")).unwrap_or_default();
    let mut school_names: HashMap<String, String> = HashMap::new();
    if let Some(snap) = store.snapshot(schools_sha).await? {
        if let Ok(bytes) = std::fs::read(&snap.path) {
            if let Ok(p) = parse::<School>(&snap.file_name, &bytes) {
                school_names = p.records.into_iter().map(|s| (s.npsn.to_string(), s.name)).collect();
            }
        }
    }
    let mut lines: Vec<Line> = entries
        .iter()
        .map(|e| Line {
            city: region_name(&e.kelurahan, 5),
            kecamatan: region_name(&e.kelurahan, 8),
            npsn: e.npsn.clone(),
            school: school_names.get(&e.npsn).cloned().unwrap_or_else(|| "-".into()),
            level: Level::parse(&e.level).map(|l| l.report().to_string()).unwrap_or_else(|_| e.level.clone()),
            nik: Nik::parse(&e.nik).map(|n| n.masked()).unwrap_or_else(|_| "-".into()),
            name: names.get(&e.nik).cloned().unwrap_or_default(),
            amounts: [e.routine, e.periodic, e.school_fee, e.monthly_total],
        })
        .collect();
    lines.sort_by(|a, b| {
        (&a.city, &a.kecamatan, &a.npsn, &a.name).cmp(&(&b.city, &b.kecamatan, &b.npsn, &b.name))
    });

    // Totals, checked to the rupiah against the decree.
    let mut by_level: BTreeMap<usize, (i64, i64)> = BTreeMap::new();
    let mut by_city: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for l in &lines {
        let i = REPORT_LEVELS.iter().position(|r| *r == l.level).unwrap_or(REPORT_LEVELS.len());
        let t = by_level.entry(i).or_default();
        t.0 += 1;
        t.1 += l.amounts[3];
        let c = by_city.entry(l.city.clone()).or_default();
        c.0 += 1;
        c.1 += l.amounts[3];
    }
    let total: i64 = lines.iter().map(|l| l.amounts[3]).sum();
    let level_sum: i64 = by_level.values().map(|t| t.1).sum();
    let city_sum: i64 = by_city.values().map(|t| t.1).sum();
    if total != decree.monthly_total
        || level_sum != total
        || city_sum != total
        || lines.len() as i64 != decree.recipients
    {
        return Err(AnnexError::Mismatch(format!(
            "decree {} recipients Rp {}; annex {} lines, Rp {total} (levels Rp {level_sum}, cities Rp {city_sum})",
            decree.recipients, decree.monthly_total, lines.len()
        )));
    }

    std::fs::create_dir_all(dir).map_err(|e| write_err(dir)(e.to_string()))?;
    let base = format!("annex-{}-{}", stage.year(), stage.half());
    let recipients_csv = dir.join(format!("{base}-recipients.csv"));
    let totals_csv = dir.join(format!("{base}-totals.csv"));
    let xlsx = dir.join(format!("{base}.xlsx"));

    let header = [
        "no",
        "city",
        "kecamatan",
        "npsn",
        "school",
        "level",
        "nik",
        "name",
        "routine",
        "periodic",
        "school_fee",
        "monthly_total",
    ];
    let mut w =
        csv::Writer::from_path(&recipients_csv).map_err(|e| write_err(&recipients_csv)(e.to_string()))?;
    let csv_err = |e: csv::Error| write_err(&recipients_csv)(e.to_string());
    w.write_record(header).map_err(csv_err)?;
    for (i, l) in lines.iter().enumerate() {
        let n = (i + 1).to_string();
        let [a, b, c, d] = l.amounts.map(|v| v.to_string());
        w.write_record([
            &n,
            &l.city,
            &l.kecamatan,
            &l.npsn,
            &l.school,
            &l.level,
            &l.nik,
            &l.name,
            &a,
            &b,
            &c,
            &d,
        ])
        .map_err(csv_err)?;
    }
    w.flush().map_err(|e| write_err(&recipients_csv)(e.to_string()))?;

    let mut t = csv::Writer::from_path(&totals_csv).map_err(|e| write_err(&totals_csv)(e.to_string()))?;
    let t_err = |e: csv::Error| write_err(&totals_csv)(e.to_string());
    t.write_record(["table", "key", "recipients", "monthly_total", "six_month_total"]).map_err(t_err)?;
    for (i, (n, m)) in &by_level {
        let key = REPORT_LEVELS.get(*i).copied().unwrap_or("other");
        t.write_record(["level", key, &n.to_string(), &m.to_string(), &(m * 6).to_string()])
            .map_err(t_err)?;
    }
    for (city, (n, m)) in &by_city {
        t.write_record(["city", city.as_str(), &n.to_string(), &m.to_string(), &(m * 6).to_string()])
            .map_err(t_err)?;
    }
    t.write_record(["total", "", &lines.len().to_string(), &total.to_string(), &(total * 6).to_string()])
        .map_err(t_err)?;
    t.flush().map_err(|e| write_err(&totals_csv)(e.to_string()))?;

    write_xlsx(&xlsx, stage, decree, &lines, &by_level, &by_city, total)
        .map_err(|e| write_err(&xlsx)(e.to_string()))?;
    Ok(Annex { recipients_csv, totals_csv, xlsx, recipients: lines.len(), monthly_total: total })
}

/// Whole rupiah as a spreadsheet number: exact, as amounts stay far below 2^53.
fn num(v: i64) -> f64 {
    v as f64
}

fn write_xlsx(
    path: &Path,
    stage: Stage,
    decree: &kjp_store::DecreeRecord,
    lines: &[Line],
    by_level: &BTreeMap<usize, (i64, i64)>,
    by_city: &BTreeMap<String, (i64, i64)>,
    total: i64,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0");
    let sheet = book.add_worksheet().set_name("Penerima")?;
    sheet.write_with_format(
        0,
        0,
        format!(
            "Lampiran Keputusan Gubernur {} tanggal {} - KJP Plus tahap {}",
            decree.number, decree.decree_date, stage
        ),
        &bold,
    )?;
    let header = [
        "No",
        "Kota",
        "Kecamatan",
        "NPSN",
        "Sekolah",
        "Jenjang",
        "NIK",
        "Nama",
        "Rutin",
        "Berkala",
        "SPP swasta",
        "Jumlah per bulan",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_with_format(2, c as u16, *h, &bold)?;
    }
    for (i, l) in lines.iter().enumerate() {
        let r = 3 + i as u32;
        sheet.write(r, 0, num(i as i64 + 1))?;
        for (c, v) in
            [&l.city, &l.kecamatan, &l.npsn, &l.school, &l.level, &l.nik, &l.name].into_iter().enumerate()
        {
            sheet.write(r, 1 + c as u16, v.as_str())?;
        }
        for (c, v) in l.amounts.iter().enumerate() {
            sheet.write_with_format(r, 8 + c as u16, num(*v), &money)?;
        }
    }
    let sheet = book.add_worksheet().set_name("Rekap")?;
    sheet.write_with_format(0, 0, "Rekapitulasi", &bold)?;
    for (c, h) in ["Tabel", "Kunci", "Penerima", "Per bulan", "Enam bulan"].iter().enumerate() {
        sheet.write_with_format(2, c as u16, *h, &bold)?;
    }
    let mut r = 3;
    let rows = by_level
        .iter()
        .map(|(i, t)| ("Jenjang", REPORT_LEVELS.get(*i).copied().unwrap_or("lain").to_string(), *t))
        .chain(by_city.iter().map(|(c, t)| ("Kota", c.clone(), *t)))
        .chain(std::iter::once(("Jumlah", String::new(), (lines.len() as i64, total))));
    for (table, key, (n, m)) in rows {
        sheet.write(r, 0, table)?;
        sheet.write(r, 1, key.as_str())?;
        sheet.write(r, 2, num(n))?;
        sheet.write_with_format(r, 3, num(m), &money)?;
        sheet.write_with_format(r, 4, num(m * 6), &money)?;
        r += 1;
    }
    sheet.write(r + 1, 0, format!("sha256 keputusan: {}", decree.sha256))?;
    book.save(path)
}
