//! Dashboards for a role's scope: recipients by level, city and kecamatan, new versus
//! continuing, exclusions by reason, complaints open, overdue and resolved; each a table
//! with a server-rendered SVG bar chart, and all of it as CSV or XLSX.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use kjp_domain::Stage;
use kjp_store::{StageState, Store, StoreError, Tally, Within};
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

/// Every table of the dashboard for this staff member's scope. The decision tables come
/// from one count of the stage's decisions by status, level, kecamatan, new or continuing
/// and reasons (one pass over the table, not one per table), rolled up here.
async fn tables(state: &AppState, staff: &Staff, stage: kjp_domain::Stage) -> Result<Vec<Table>, Response> {
    let store = &state.inner.store;
    let counts = state.inner.dashboard_counts.get(store, stage, within(staff)).await.map_err(internal)?;
    let mut out = decision_tables(&counts);
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

/// The counts behind the decision tables, kept for decreed stages: a decreed stage's
/// decisions never change (a correction is an amendment, which [`amend`] applies on top),
/// so each scope's count is made once per process and its dashboard is then answered
/// without scanning the stage. They are made one at a time: officers opening the
/// dashboard together wait for one count (8.6 s at scale 1 on SQLite) instead of each
/// starting their own and holding the database's connections. An open or verified stage
/// is counted on every view.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    kept: Mutex<HashMap<CountsKey, Arc<Vec<Tally>>>>,
    making: tokio::sync::Mutex<()>,
}

/// A stage and a scope (`All`, `Kecamatan("31.71.01")`, `School("20100001")`).
type CountsKey = (Stage, String);

const COUNT_BY: &[&str] = &["status", "level", "kecamatan", "continuing", "reasons"];

impl Counts {
    fn kept(&self, key: &CountsKey) -> Option<Arc<Vec<Tally>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    async fn get(
        &self,
        store: &Store,
        stage: Stage,
        within: Within<'_>,
    ) -> Result<Arc<Vec<Tally>>, StoreError> {
        let key = (stage, format!("{within:?}"));
        if let Some(hit) = self.kept(&key) {
            return Ok(hit);
        }
        let decreed = store.stage(stage).await?.is_some_and(|s| s.state == StageState::Decreed);
        if !decreed {
            return Ok(Arc::new(store.tally_within(stage, COUNT_BY, within).await?));
        }
        let _turn = self.making.lock().await;
        if let Some(hit) = self.kept(&key) {
            return Ok(hit);
        }
        let counts = Arc::new(store.tally_within(stage, COUNT_BY, within).await?);
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).insert(key, counts.clone());
        Ok(counts)
    }
}

/// Rolls one count by (status, level, kecamatan, continuing, reasons) up into the tables
/// by status, and of recipients by level, city, kecamatan, new or continuing, and of the
/// ineligible by exclusion reason; rows in key order.
fn decision_tables(counts: &[Tally]) -> Vec<Table> {
    #[derive(Default)]
    struct Sum(BTreeMap<String, (i64, i64)>);
    impl Sum {
        fn add(&mut self, key: &str, count: i64, monthly: i64) {
            if key.is_empty() {
                return;
            }
            let e = self.0.entry(key.to_string()).or_default();
            e.0 += count;
            e.1 += monthly;
        }
        fn rows(self, label: impl Fn(&str) -> String) -> Vec<TableRow> {
            self.0
                .into_iter()
                .map(|(key, (count, monthly))| TableRow { label: label(&key), key, count, monthly })
                .collect()
        }
    }
    let (mut status, mut level, mut city, mut kecamatan, mut continuing, mut reasons) =
        <(Sum, Sum, Sum, Sum, Sum, Sum)>::default();
    for t in counts {
        let [st, lv, kec, cont, why] = &t.key[..] else { continue };
        status.add(st, t.count, t.monthly);
        if st == "eligible" {
            level.add(lv, t.count, t.monthly);
            city.add(kec.get(..5).unwrap_or(kec), t.count, t.monthly);
            kecamatan.add(kec, t.count, t.monthly);
            continuing.add(cont, t.count, t.monthly);
        } else if st == "ineligible" {
            for code in why.split(';') {
                reasons.add(code, t.count, 0);
            }
        }
    }
    vec![
        Table {
            id: "status",
            title: "Keputusan menurut status, dengan perubahan / decisions by status, as amended",
            rows: status.rows(str::to_string),
        },
        Table {
            id: "level",
            title: "Penerima menurut jenjang / recipients by level",
            rows: level.rows(str::to_string),
        },
        Table { id: "city", title: "Penerima menurut kota / recipients by city", rows: city.rows(city_name) },
        Table {
            id: "kecamatan",
            title: "Penerima menurut kecamatan / recipients by kecamatan",
            rows: kecamatan.rows(|k| access::kecamatan_name(k).unwrap_or("?").to_string()),
        },
        Table {
            id: "continuing",
            title: "Penerima baru dan lanjutan / new and continuing recipients",
            rows: continuing.rows(|k| {
                if k == "1" {
                    "lanjutan / continuing".into()
                } else {
                    "baru / new".into()
                }
            }),
        },
        Table {
            id: "exclusions",
            title: "Tidak layak menurut alasan / exclusions by reason",
            rows: reasons.rows(str::to_string),
        },
    ]
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

    #[test]
    fn one_count_rolls_up_into_every_decision_table() {
        let t = |key: [&str; 5], count, monthly| kjp_store::Tally {
            key: key.iter().map(|k| k.to_string()).collect(),
            count,
            monthly,
        };
        let counts = [
            t(["eligible", "SD", "31.71.01", "1", ""], 3, 900),
            t(["eligible", "SD", "31.71.02", "0", ""], 2, 600),
            t(["eligible", "SMP", "31.73.04", "0", ""], 1, 470),
            t(["ineligible", "SD", "31.71.01", "0", "EXCLUDED_CAR;NOT_IN_DTKS"], 4, 0),
            t(["ineligible", "", "", "0", "NOT_IN_DTKS"], 5, 0),
            t(["review", "SMA", "31.71.01", "0", ""], 7, 0),
        ];
        let tables = decision_tables(&counts);
        let rows = |id: &str| -> Vec<(String, String, i64, i64)> {
            let t = tables.iter().find(|t| t.id == id).expect(id);
            t.rows.iter().map(|r| (r.key.clone(), r.label.clone(), r.count, r.monthly)).collect()
        };
        let row = |k: &str, l: &str, c, m| (k.to_string(), l.to_string(), c, m);
        assert_eq!(
            rows("status"),
            [
                row("eligible", "eligible", 6, 1970),
                row("ineligible", "ineligible", 9, 0),
                row("review", "review", 7, 0)
            ]
        );
        assert_eq!(rows("level"), [row("SD", "SD", 5, 1500), row("SMP", "SMP", 1, 470)], "recipients only");
        assert_eq!(
            rows("city"),
            [row("31.71", &city_name("31.71"), 5, 1500), row("31.73", &city_name("31.73"), 1, 470)]
        );
        assert_eq!(
            rows("kecamatan").iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(),
            [("31.71.01", 3), ("31.71.02", 2), ("31.73.04", 1)]
        );
        assert_eq!(rows("kecamatan")[0].1, "Gambir");
        assert_eq!(
            rows("continuing"),
            [row("0", "baru / new", 3, 1070), row("1", "lanjutan / continuing", 3, 900)]
        );
        assert_eq!(
            rows("exclusions"),
            [row("EXCLUDED_CAR", "EXCLUDED_CAR", 4, 0), row("NOT_IN_DTKS", "NOT_IN_DTKS", 9, 0)]
        );
    }
}
