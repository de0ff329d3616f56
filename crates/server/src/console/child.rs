//! A child's decision as staff see it: status, reasons in words, unknown facts, the
//! evidence lines, and any two sources that disagree, side by side. Every view is audited.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use kjp_domain::conflict::Conflict;
use kjp_domain::{Nik, Stage};
use kjp_store::DecisionRow;
use serde::Deserialize;

use super::auth::{forbidden, Staff};
use super::{access, internal, pick_stage, render, rupiah, Nav};
use crate::AppState;

/// Two sources that disagree, as a page shows them.
#[derive(Debug, Clone)]
pub struct ConflictView {
    pub what: String,
    pub left: String,
    pub right: String,
}

#[derive(Debug, Clone)]
pub struct ChildView {
    pub nik: String,
    pub name: String,
    pub birth_date: String,
    pub status: String,
    pub level: String,
    pub school: String,
    pub npsn: String,
    pub kelurahan: String,
    pub kecamatan: String,
    pub kecamatan_code: String,
    pub monthly: String,
    pub reasons: Vec<(String, String)>,
    pub unknown: String,
    pub evidence: Vec<String>,
    pub conflicts: Vec<ConflictView>,
}

pub fn conflicts(raw: &str) -> Vec<ConflictView> {
    let parsed: Vec<Conflict> = serde_json::from_str(raw).unwrap_or_default();
    parsed
        .iter()
        .map(|c| match c {
            Conflict::Car { plate, bapenda_line, bapenda_as_of, samsat_line, samsat_status, samsat_date } => {
                ConflictView {
                    what: format!("Mobil keluarga / family car {plate}"),
                    left: format!("Bapenda (baris {bapenda_line}, per {bapenda_as_of}): tercatat memiliki mobil / lists the car"),
                    right: format!("Samsat (baris {samsat_line}): {samsat_status} pada {samsat_date}"),
                }
            }
            Conflict::DtksAddress { dtks_line, dukcapil_line } => ConflictView {
                what: "Domisili / residence".into(),
                left: format!("DTKS (baris {dtks_line}): alamat di luar Jakarta / address outside Jakarta"),
                right: format!("Dukcapil (baris {dukcapil_line}): tinggal di Jakarta / lives in Jakarta"),
            },
        })
        .collect()
}

pub fn view(state: &AppState, d: &DecisionRow) -> ChildView {
    let policy = &state.inner.policy;
    let reasons = d
        .reasons
        .split(';')
        .filter(|c| !c.is_empty())
        .map(|c| {
            let text = policy
                .reason_index(c)
                .map(|i| policy.reason(i).texts.id.clone())
                .unwrap_or_else(|| c.to_string());
            (c.to_string(), text)
        })
        .collect();
    let kec = d.kelurahan.get(..8).unwrap_or("");
    ChildView {
        nik: d.nik.clone(),
        name: d.name.clone(),
        birth_date: d.birth_date.clone(),
        status: d.status.clone(),
        level: d.level.clone(),
        school: d.school.clone(),
        npsn: d.npsn.clone(),
        kelurahan: d.kelurahan.clone(),
        kecamatan: format!("{} ({kec})", access::kecamatan_name(kec).unwrap_or("?")),
        kecamatan_code: kec.to_string(),
        monthly: rupiah(d.monthly_total),
        reasons,
        unknown: d.unknown.replace(';', ", "),
        evidence: d.evidence.split(';').filter(|e| !e.is_empty()).map(str::to_string).collect(),
        conflicts: conflicts(&d.conflicts),
    }
}

#[derive(Template)]
#[template(path = "console/child.html")]
struct ChildPage {
    nav: Nav,
    stage: String,
    nik: String,
    error: String,
    child: Option<ChildView>,
    can_complain: bool,
    nik_ok: bool,
    kecamatan: String,
    category_opts: Vec<super::Opt>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Lookup {
    nik: Option<String>,
    stage: Option<String>,
}

/// Looks a child up by NIK (in the POST body, never in a URL).
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Result<Form<Lookup>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let raw = f.nik.unwrap_or_default().trim().to_string();
    let stage = match pick_stage(&state, f.stage.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let can_complain = access::access(staff.role, "POST", "/staff/complaints").allowed();
    let mut page = ChildPage {
        nav: staff.nav(),
        stage: stage.map(|s| s.to_string()).unwrap_or_default(),
        nik: raw.clone(),
        error: String::new(),
        child: None,
        can_complain,
        nik_ok: false,
        kecamatan: match &staff.scope {
            super::Scope::Kecamatan(k) => k.clone(),
            _ => String::new(),
        },
        category_opts: super::opts(super::complaints::CATEGORIES.iter().copied(), ""),
    };
    let nik = match Nik::parse(&raw) {
        Ok(n) => n,
        Err(e) => {
            page.error = if raw.len() != 16 || !raw.bytes().all(|b| b.is_ascii_digit()) {
                format!(
                    "NIK harus 16 angka; yang diisi {} karakter. / A NIK has 16 digits.",
                    raw.chars().count()
                )
            } else {
                format!("NIK tidak valid / not a valid NIK: {}.", e.problem())
            };
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    page.nik_ok = true;
    let Some(stage) = stage else {
        page.error = "Belum ada tahap yang dibuka. / No stage is open yet.".into();
        return render(StatusCode::NOT_FOUND, &page);
    };
    match lookup(&state, &staff, stage, &nik).await {
        Ok(Some(child)) => {
            if page.kecamatan.is_empty() {
                page.kecamatan = child.kecamatan_code.clone();
            }
            page.child = Some(child);
            render(StatusCode::OK, &page)
        }
        Ok(None) => {
            page.error = format!(
                "Tidak ada keputusan untuk NIK ini pada tahap {stage}. Anak belum menjadi calon penerima (misalnya belum terdaftar di sekolah atau di Dukcapil). / No decision for this NIK in stage {stage}."
            );
            render(StatusCode::NOT_FOUND, &page)
        }
        Err(r) => r,
    }
}

/// A child's decision if the staff member's scope covers it (audited as a view); a
/// refusal page (audited as denied) if not.
pub(crate) async fn lookup(
    state: &AppState,
    staff: &Staff,
    stage: Stage,
    nik: &Nik,
) -> Result<Option<ChildView>, Response> {
    let store = &state.inner.store;
    let key = nik.to_string();
    let d = store.decision(stage, &key).await.map_err(internal)?;
    let Some(d) = d else {
        store
            .audit(&staff.username, "view.child.none", &key, &stage.to_string(), &staff.origin)
            .await
            .map_err(internal)?;
        return Ok(None);
    };
    if !staff.scope.covers_child(&d.kelurahan, &d.npsn) {
        store
            .audit(&staff.username, "denied.view.child", &key, &stage.to_string(), &staff.origin)
            .await
            .map_err(internal)?;
        return Err(forbidden(
            staff,
            "Anak ini di luar wilayah atau sekolah Anda. / This child is outside your kecamatan or school.",
        ));
    }
    store
        .audit(&staff.username, "view.child", &key, &stage.to_string(), &staff.origin)
        .await
        .map_err(internal)?;
    Ok(Some(view(state, &d)))
}
