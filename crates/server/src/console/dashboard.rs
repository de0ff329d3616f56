//! Dashboards for a role's scope: recipients by level, city and kecamatan, new versus
//! continuing, exclusions by reason, complaints open, overdue and resolved; each a table
//! with a server-rendered SVG bar chart, and all of it as CSV or XLSX.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kjp_store::Within;
use serde::Deserialize;

use super::access::{self, Scope};
use super::auth::Staff;
use super::{internal, pick_stage, render, rupiah, today_wib, Nav};
use crate::AppState;

/// One table of the dashboard.
#[derive(Debug, Clone)]
pub struct Table {
    pub id: &'static str,
    pub title: &'static str,
    pub rows: Vec<TableRow>,
}

#[derive(Debug, Clone)]
pub struct TableRow {
    pub key: String,
    pub label: String,
    pub count: i64,
    /// Monthly rupiah, where it means something (recipients), else 0.
    pub monthly: i64,
}

/// A horizontal bar chart, laid out here so the template only places numbers.
#[derive(Debug, Clone)]
pub struct Chart {
    pub height: usize,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone)]
pub struct Bar {
    pub y: usize,
    pub text_y: usize,
    pub width: i64,
    pub label: String,
    pub value: i64,
}

const BAR: usize = 22;
const PLOT_WIDTH: i64 = 180;

fn chart(t: &Table) -> Chart {
    let max = t.rows.iter().map(|r| r.count).max().unwrap_or(0).max(1);
    let bars = t
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| Bar {
            y: i * BAR,
            text_y: i * BAR + 15,
            width: (r.count * PLOT_WIDTH / max).max(if r.count > 0 { 1 } else { 0 }),
            label: r.label.chars().take(24).collect(),
            value: r.count,
        })
        .collect();
    Chart { height: (t.rows.len() * BAR).max(BAR), bars }
}

fn within(staff: &Staff) -> Within<'_> {
    match &staff.scope {
        Scope::All => Within::All,
        Scope::Kecamatan(k) => Within::Kecamatan(k),
        Scope::School(n) => Within::School(n),
    }
}

fn city_name(code: &str) -> String {
    kjp_domain::regions::all()
        .iter()
        .find(|r| r.code == code)
        .map(|r| r.name.to_string())
        .unwrap_or_else(|| code.into())
}

/// Every table of the dashboard for this staff member's scope.
async fn tables(state: &AppState, staff: &Staff, stage: kjp_domain::Stage) -> Result<Vec<Table>, Response> {
    let store = &state.inner.store;
    let w = within(staff);
    let tally = |cols: &'static [&'static str]| store.tally_within(stage, cols, w);
    let mut out = Vec::new();

    let status = tally(&["status"]).await.map_err(internal)?;
    out.push(Table {
        id: "status",
        title: "Keputusan menurut status, dengan perubahan / decisions by status, as amended",
        rows: status
            .iter()
            .map(|t| TableRow {
                key: t.key[0].clone(),
                label: t.key[0].clone(),
                count: t.count,
                monthly: t.monthly,
            })
            .collect(),
    });
    let recipients = |key: usize, t: &kjp_store::Tally| t.key[0] == "eligible" && !t.key[key].is_empty();
    let by_level = tally(&["status", "level"]).await.map_err(internal)?;
    out.push(Table {
        id: "level",
        title: "Penerima menurut jenjang / recipients by level",
        rows: by_level
            .iter()
            .filter(|t| recipients(1, t))
            .map(|t| TableRow {
                key: t.key[1].clone(),
                label: t.key[1].clone(),
                count: t.count,
                monthly: t.monthly,
            })
            .collect(),
    });
    let by_city = tally(&["status", "city"]).await.map_err(internal)?;
    out.push(Table {
        id: "city",
        title: "Penerima menurut kota / recipients by city",
        rows: by_city
            .iter()
            .filter(|t| recipients(1, t))
            .map(|t| TableRow {
                key: t.key[1].clone(),
                label: city_name(&t.key[1]),
                count: t.count,
                monthly: t.monthly,
            })
            .collect(),
    });
    let by_kec = tally(&["status", "kecamatan"]).await.map_err(internal)?;
    out.push(Table {
        id: "kecamatan",
        title: "Penerima menurut kecamatan / recipients by kecamatan",
        rows: by_kec
            .iter()
            .filter(|t| recipients(1, t))
            .map(|t| TableRow {
                key: t.key[1].clone(),
                label: access::kecamatan_name(&t.key[1]).unwrap_or("?").to_string(),
                count: t.count,
                monthly: t.monthly,
            })
            .collect(),
    });
    let cont = tally(&["status", "continuing"]).await.map_err(internal)?;
    out.push(Table {
        id: "continuing",
        title: "Penerima baru dan lanjutan / new and continuing recipients",
        rows: cont
            .iter()
            .filter(|t| t.key[0] == "eligible")
            .map(|t| TableRow {
                key: t.key[1].clone(),
                label: if t.key[1] == "1" { "lanjutan / continuing".into() } else { "baru / new".into() },
                count: t.count,
                monthly: t.monthly,
            })
            .collect(),
    });
    let reasons = tally(&["status", "reasons"]).await.map_err(internal)?;
    let mut by_reason: BTreeMap<String, i64> = BTreeMap::new();
    for t in reasons.iter().filter(|t| t.key[0] == "ineligible") {
        for code in t.key[1].split(';').filter(|c| !c.is_empty()) {
            *by_reason.entry(code.to_string()).or_default() += t.count;
        }
    }
    out.push(Table {
        id: "exclusions",
        title: "Tidak layak menurut alasan / exclusions by reason",
        rows: by_reason
            .into_iter()
            .map(|(code, n)| TableRow { label: code.clone(), key: code, count: n, monthly: 0 })
            .collect(),
    });
    let kec = match &staff.scope {
        Scope::Kecamatan(k) => Some(k.as_str()),
        Scope::All => None,
        // A school's complaints are not kept by school.
        Scope::School(_) => Some("-"),
    };
    let counts = store.complaint_counts(kec, &today_wib().to_string()).await.map_err(internal)?;
    let (open, overdue, resolved) =
        counts.iter().fold((0, 0, 0), |(a, b, c), n| (a + n.open, b + n.overdue, c + n.resolved));
    out.push(Table {
        id: "complaints",
        title: "Pengaduan / complaints",
        rows: vec![
            TableRow { key: "open".into(), label: "terbuka / open".into(), count: open, monthly: 0 },
            TableRow {
                key: "overdue".into(),
                label: "lewat batas / overdue".into(),
                count: overdue,
                monthly: 0,
            },
            TableRow {
                key: "resolved".into(),
                label: "selesai / resolved".into(),
                count: resolved,
                monthly: 0,
            },
        ],
    });
    amend(state, staff, stage, &mut out).await?;
    Ok(out)
}

/// One child's standing in a count: its status and what the recipient tables group by.
struct Standing {
    status: String,
    level: String,
    kelurahan: String,
    continuing: bool,
    monthly: i64,
}

/// A decreed stage changes only by amendments: the decision tables count the children as
/// decided, so every child an amendment touched is moved from where its decision put it
/// to where its last published correction puts it (status, recipients by level, city,
/// kecamatan, new or continuing). Corrections still pending count once published.
async fn amend(
    state: &AppState,
    staff: &Staff,
    stage: kjp_domain::Stage,
    out: &mut [Table],
) -> Result<(), Response> {
    let store = &state.inner.store;
    let published: Vec<_> = store
        .corrections(stage, false)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|c| c.amendment.is_some())
        .collect();
    let mut last = BTreeMap::new();
    for c in published {
        last.insert(c.nik.clone(), c);
    }
    for (nik, c) in last {
        let Some(d) = store.decision(stage, &nik).await.map_err(internal)? else { continue };
        let continuing = |facts: &str| facts.split(';').any(|f| f == "c=1");
        let before = Standing {
            status: d.status.clone(),
            level: d.level.clone(),
            kelurahan: d.kelurahan.clone(),
            continuing: continuing(&d.facts),
            monthly: d.monthly_total,
        };
        let after = Standing {
            status: c.status_after.clone(),
            level: c.level.clone(),
            kelurahan: c.kelurahan.clone(),
            continuing: continuing(&c.facts_after),
            monthly: c.monthly_total,
        };
        for (s, sign) in [(&before, -1), (&after, 1)] {
            if !staff.scope.covers_child(&s.kelurahan, if sign < 0 { &d.npsn } else { &c.npsn }) {
                continue;
            }
            let recipient = s.status == "eligible";
            for t in out.iter_mut() {
                let key = match t.id {
                    "status" => s.status.clone(),
                    "level" if recipient => s.level.clone(),
                    "city" if recipient => s.kelurahan.get(..5).unwrap_or("").to_string(),
                    "kecamatan" if recipient => s.kelurahan.get(..8).unwrap_or("").to_string(),
                    "continuing" if recipient => if s.continuing { "1" } else { "0" }.to_string(),
                    _ => continue,
                };
                let label = match t.id {
                    "city" => city_name(&key),
                    "kecamatan" => access::kecamatan_name(&key).unwrap_or("?").to_string(),
                    "continuing" if key == "1" => "lanjutan / continuing".into(),
                    "continuing" => "baru / new".into(),
                    _ => key.clone(),
                };
                match t.rows.iter_mut().find(|r| r.key == key) {
                    Some(r) => {
                        r.count += sign;
                        r.monthly += sign * s.monthly;
                    }
                    None => {
                        t.rows.push(TableRow { key, label, count: sign, monthly: sign * s.monthly });
                        t.rows.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                }
            }
        }
    }
    for t in out.iter_mut() {
        t.rows.retain(|r| r.count != 0);
    }
    Ok(())
}

#[derive(Debug)]
struct Section {
    table: Table,
    chart: Chart,
    money: bool,
    monthly: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    stage: String,
    sections: Vec<Section>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct DashQuery {
    stage: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<DashQuery>,
) -> Response {
    let stage = match pick_stage(&state, q.stage.as_deref()).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return render(
                StatusCode::OK,
                &DashboardPage { nav: staff.nav(), stage: String::new(), sections: vec![] },
            )
        }
        Err(r) => return r,
    };
    let tables = match tables(&state, &staff, stage).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let sections = tables
        .into_iter()
        .map(|t| Section {
            chart: chart(&t),
            money: t.rows.iter().any(|r| r.monthly > 0),
            monthly: t.rows.iter().map(|r| rupiah(r.monthly)).collect(),
            table: t,
        })
        .collect();
    render(StatusCode::OK, &DashboardPage { nav: staff.nav(), stage: stage.to_string(), sections })
}

async fn export_tables(
    state: &AppState,
    staff: &Staff,
    q: &DashQuery,
    format: &str,
) -> Result<(kjp_domain::Stage, Vec<Table>), Response> {
    let Some(stage) = pick_stage(state, q.stage.as_deref()).await? else {
        return Err((StatusCode::NOT_FOUND, "no stage").into_response());
    };
    let t = tables(state, staff, stage).await?;
    state
        .inner
        .store
        .audit(&staff.username, "export.dashboard", &stage.to_string(), format, &staff.origin)
        .await
        .map_err(internal)?;
    Ok((stage, t))
}

pub(crate) async fn csv(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<DashQuery>,
) -> Response {
    let (stage, tables) = match export_tables(&state, &staff, &q, "csv").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut write = || -> Result<Vec<u8>, csv::Error> {
        w.write_record(["table", "key", "label", "count", "monthly_total"])?;
        for t in &tables {
            for r in &t.rows {
                w.write_record([t.id, &r.key, &r.label, &r.count.to_string(), &r.monthly.to_string()])?;
            }
        }
        w.flush()?;
        Ok(w.get_ref().clone())
    };
    match write() {
        Ok(bytes) => download(
            bytes,
            "text/csv; charset=utf-8",
            &format!("dashboard-{}.csv", stage.to_string().replace('/', "-")),
        ),
        Err(e) => internal(e),
    }
}

pub(crate) async fn xlsx(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<DashQuery>,
) -> Response {
    let (stage, tables) = match export_tables(&state, &staff, &q, "xlsx").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let build = || -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        use rust_xlsxwriter::{Format, Workbook};
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        for t in &tables {
            let sheet = book.add_worksheet();
            sheet.set_name(t.id)?;
            sheet.write_string_with_format(0, 0, t.title, &bold)?;
            for (c, h) in ["key", "label", "count", "monthly_total"].iter().enumerate() {
                sheet.write_string_with_format(2, c as u16, *h, &bold)?;
            }
            for (i, r) in t.rows.iter().enumerate() {
                let row = 3 + i as u32;
                sheet.write_string(row, 0, &r.key)?;
                sheet.write_string(row, 1, &r.label)?;
                sheet.write_number(row, 2, r.count as f64)?;
                sheet.write_number(row, 3, r.monthly as f64)?;
            }
        }
        book.save_to_buffer()
    };
    match build() {
        Ok(bytes) => download(
            bytes,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("dashboard-{}.xlsx", stage.to_string().replace('/', "-")),
        ),
        Err(e) => internal(e),
    }
}

fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    ([(header::CONTENT_TYPE, content_type.to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest() {
        let t = Table {
            id: "x",
            title: "x",
            rows: vec![
                TableRow { key: "a".into(), label: "a".into(), count: 10, monthly: 0 },
                TableRow { key: "b".into(), label: "b".into(), count: 5, monthly: 0 },
                TableRow { key: "c".into(), label: "c".into(), count: 0, monthly: 0 },
            ],
        };
        let c = chart(&t);
        assert_eq!(c.bars.iter().map(|b| b.width).collect::<Vec<_>>(), vec![PLOT_WIDTH, PLOT_WIDTH / 2, 0]);
        assert_eq!(c.height, 3 * BAR);
    }
}
