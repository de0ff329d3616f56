//! Complaints at the kecamatan service posts: recorded with the child's NIK, a contact
//! and a category; numbered; due after the SLA; routed (DTKS matters to the kecamatan's
//! social office, data and asset disputes to the education office, payments and cards to
//! the bank); every step in the history. Resolving with a correction re-assesses the child
//! and, on a decreed stage, queues it for the next amendment.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use kjp_domain::{Nik, Stage};
use kjp_store::{Complaint, ComplaintEvent, StageState};
use serde::Deserialize;

use super::access::{self, Role, Scope};
use super::auth::{forbidden, Staff};
use super::child::{self, ChildView};
use super::{internal, opts, pick_stage, render, settings, today_wib, Nav, Opt};
use crate::AppState;

/// Every category: code, label, and the team it goes to by default.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("not_in_dtks", "Tidak terdaftar di DTKS / not in DTKS"),
    ("asset", "Dikeluarkan karena data aset / excluded by asset data"),
    ("domicile", "Dianggap tidak berdomisili DKI / not domiciled"),
    ("payment", "Dana belum diterima / payment not received"),
    ("card", "Masalah kartu / card problem"),
    ("sanction", "Keberatan atas sanksi / sanction dispute"),
    ("other", "Lainnya / other"),
];

pub fn category_label(code: &str) -> &str {
    CATEGORIES.iter().find(|(c, _)| *c == code).map(|(_, l)| *l).unwrap_or(code)
}

/// Where a complaint of a category goes from the post of `kecamatan`.
pub fn default_route(category: &str, kecamatan: &str) -> String {
    match category {
        "not_in_dtks" => format!("social:{kecamatan}"),
        "asset" | "domicile" | "sanction" => "education".into(),
        "payment" | "card" => "bank".into(),
        _ => format!("post:{kecamatan}"),
    }
}

/// A team in words.
pub fn owner_label(owner: &str) -> String {
    let kec = |k: &str| access::kecamatan_name(k).unwrap_or("?").to_string();
    match owner.split_once(':') {
        Some(("post", k)) => format!("Pos pelayanan Kecamatan {}", kec(k)),
        Some(("social", k)) => format!("Dinas Sosial Kecamatan {}", kec(k)),
        _ if owner == "education" => "Dinas Pendidikan".into(),
        _ if owner == "bank" => "Bank DKI".into(),
        _ => owner.into(),
    }
}

/// The team a staff member works in.
fn team(staff: &Staff) -> Option<String> {
    match (&staff.role, &staff.scope) {
        (Role::Admin, _) => Some("education".into()),
        (Role::Post, Scope::Kecamatan(k)) => Some(format!("post:{k}")),
        (Role::Social, Scope::Kecamatan(k)) => Some(format!("social:{k}")),
        (Role::Bank, _) => Some("bank".into()),
        _ => None,
    }
}

fn can_see(staff: &Staff, c: &Complaint) -> bool {
    match (&staff.role, &staff.scope) {
        (Role::Admin | Role::Auditor, _) => true,
        (Role::Post, Scope::Kecamatan(k)) => &c.kecamatan == k,
        (Role::Social, Scope::Kecamatan(k)) => c.owner == format!("social:{k}"),
        (Role::Bank, _) => c.owner == "bank",
        _ => false,
    }
}

fn can_route(staff: &Staff, c: &Complaint) -> bool {
    c.state == "open"
        && match (&staff.role, &staff.scope) {
            (Role::Admin, _) => true,
            (Role::Post, Scope::Kecamatan(k)) => &c.kecamatan == k,
            (Role::Social, _) => team(staff).as_deref() == Some(c.owner.as_str()),
            _ => false,
        }
}

fn can_resolve(staff: &Staff, c: &Complaint) -> bool {
    c.state == "open" && (staff.role == Role::Admin || team(staff).as_deref() == Some(c.owner.as_str()))
}

fn can_note(staff: &Staff, c: &Complaint) -> bool {
    c.state == "open"
        && access::access(staff.role, "POST", "/staff/complaints/{ticket}/note").allowed()
        && can_see(staff, c)
}

/// The destinations a complaint of a kecamatan may be routed to.
fn destinations(kecamatan: &str) -> Vec<(String, String)> {
    [format!("post:{kecamatan}"), format!("social:{kecamatan}"), "education".into(), "bank".into()]
        .into_iter()
        .map(|o| {
            let l = owner_label(&o);
            (o, l)
        })
        .collect()
}

#[derive(Debug)]
struct Row {
    ticket: String,
    category: String,
    nik: String,
    opened: String,
    due: String,
    owner: String,
    state: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "console/complaints.html")]
struct ListPage {
    nav: Nav,
    rows: Vec<Row>,
    show: String,
    can_open: bool,
    /// Rows before the limit.
    total: usize,
    q: String,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ListQuery {
    show: Option<String>,
    /// Part of a ticket number.
    q: Option<String>,
}

/// Rows on the list at most; overdue ones first, then the newest.
const LIST_LIMIT: usize = 500;

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<ListQuery>,
) -> Response {
    let store = &state.inner.store;
    let (kec, owner) = match (&staff.role, &staff.scope) {
        (Role::Post, Scope::Kecamatan(k)) => (Some(k.clone()), None),
        (Role::Social, Scope::Kecamatan(k)) => (Some(k.clone()), Some(format!("social:{k}"))),
        (Role::Bank, _) => (None, Some("bank".to_string())),
        _ => (None, None),
    };
    let all = match store.complaints(kec.as_deref(), owner.as_deref()).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let show = match q.show.as_deref() {
        Some("resolved") => "resolved",
        Some("all") => "all",
        _ => "open",
    };
    let today = today_wib().to_string();
    let q = q.q.unwrap_or_default().trim().to_uppercase();
    let mut rows: Vec<Row> = all
        .into_iter()
        .filter(|c| can_see(&staff, c))
        .filter(|c| show == "all" || c.state == show)
        .filter(|c| q.is_empty() || c.ticket.contains(&q))
        .map(|c| Row {
            overdue: c.state == "open" && c.due_date < today,
            nik: Nik::parse(&c.nik).map(|n| n.masked()).unwrap_or_else(|_| "-".into()),
            category: category_label(&c.category).to_string(),
            opened: super::wib(&c.opened_at).get(..10).unwrap_or("").to_string(),
            due: c.due_date,
            owner: owner_label(&c.owner),
            state: c.state,
            ticket: c.ticket,
        })
        .collect();
    // The store lists newest first; a stable sort keeps that within overdue and not.
    rows.sort_by_key(|r| !r.overdue);
    let total = rows.len();
    rows.truncate(LIST_LIMIT);
    let can_open = access::access(staff.role, "POST", "/staff/complaints").allowed();
    render(StatusCode::OK, &ListPage { nav: staff.nav(), rows, show: show.into(), can_open, total, q })
}

#[derive(Debug, Default)]
struct NewErrors {
    nik: String,
    contact: String,
    category: String,
    description: String,
    kecamatan: String,
    stage: String,
}

#[derive(Template)]
#[template(path = "console/complaint_new.html")]
struct NewPage {
    nav: Nav,
    form: NewForm,
    errors: NewErrors,
    has_errors: bool,
    category_opts: Vec<Opt>,
    kecamatan_opts: Vec<Opt>,
    fixed_kecamatan: bool,
    kecamatan_label: String,
}

#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct NewForm {
    #[serde(default)]
    nik: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    kecamatan: String,
    #[serde(default)]
    stage: String,
}

fn new_page(staff: &Staff, form: NewForm, errors: NewErrors, has_errors: bool) -> NewPage {
    let fixed_kecamatan = matches!(staff.scope, Scope::Kecamatan(_));
    NewPage {
        nav: staff.nav(),
        category_opts: opts(CATEGORIES.iter().copied(), &form.category),
        kecamatan_opts: opts(access::kecamatans(), &form.kecamatan),
        kecamatan_label: format!(
            "{} ({})",
            access::kecamatan_name(&form.kecamatan).unwrap_or("?"),
            form.kecamatan
        ),
        form,
        errors,
        has_errors,
        fixed_kecamatan,
    }
}

pub(crate) async fn new_form(State(state): State<AppState>, Extension(staff): Extension<Staff>) -> Response {
    let stage = match pick_stage(&state, None).await {
        Ok(s) => s.map(|s| s.to_string()).unwrap_or_default(),
        Err(r) => return r,
    };
    let kecamatan = match &staff.scope {
        Scope::Kecamatan(k) => k.clone(),
        _ => String::new(),
    };
    let form = NewForm { stage, kecamatan, ..NewForm::default() };
    render(StatusCode::OK, &new_page(&staff, form, NewErrors::default(), false))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Result<Form<NewForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let mut f = form.map(|Form(f)| f).unwrap_or_default();
    f.nik = f.nik.trim().to_string();
    f.contact = f.contact.trim().to_string();
    f.description = f.description.trim().to_string();
    if let Scope::Kecamatan(k) = &staff.scope {
        f.kecamatan = k.clone();
    }
    let mut e = NewErrors::default();
    let nik = match Nik::parse(&f.nik) {
        Ok(n) => Some(n),
        Err(err) => {
            e.nik = if f.nik.is_empty() {
                "NIK wajib diisi. / Enter the NIK.".into()
            } else if f.nik.len() != 16 || !f.nik.bytes().all(|b| b.is_ascii_digit()) {
                format!(
                    "NIK harus 16 angka; yang diisi {} karakter. / A NIK has 16 digits.",
                    f.nik.chars().count()
                )
            } else {
                format!("NIK tidak valid / not a valid NIK: {}.", err.problem())
            };
            None
        }
    };
    let digits = f.contact.chars().filter(char::is_ascii_digit).count();
    if f.contact.is_empty() {
        e.contact =
            "Isi nomor telepon atau cara menghubungi keluarga. / Enter a phone number or contact.".into();
    } else if f.contact.chars().count() > 100 {
        e.contact = "Kontak paling banyak 100 karakter. / At most 100 characters.".into();
    } else if f.contact.starts_with(['0', '+']) && !(8..=15).contains(&digits) {
        e.contact =
            "Nomor telepon 8 sampai 15 angka, misalnya 0812 3456 7890. / A phone number has 8 to 15 digits."
                .into();
    }
    if !CATEGORIES.iter().any(|(c, _)| *c == f.category) {
        e.category = "Pilih kategori pengaduan. / Choose a category.".into();
    }
    if f.description.is_empty() {
        e.description = "Tuliskan isi pengaduan. / Describe the complaint.".into();
    } else if f.description.chars().count() > 2000 {
        e.description = format!(
            "Paling banyak 2000 karakter; yang diisi {}. / At most 2000 characters.",
            f.description.chars().count()
        );
    }
    if access::kecamatan_name(&f.kecamatan).is_none() {
        e.kecamatan = "Pilih kecamatan pos pelayanan. / Choose the kecamatan.".into();
    }
    let stage = match Stage::parse(f.stage.trim()) {
        Ok(s) => Some(s),
        Err(_) => {
            e.stage =
                "Tahap ditulis TTTT/1 atau TTTT/2, misalnya 2025/1 (KJMU: kjmu/2025/1). / A stage is YYYY/1 or YYYY/2 (KJMU: kjmu/YYYY/1).".into();
            None
        }
    };
    let (Some(nik), Some(stage), true) = (nik, stage, e_is_empty(&e)) else {
        return render(StatusCode::BAD_REQUEST, &new_page(&staff, f, e, true));
    };
    let settings = settings(&state);
    let today = today_wib();
    let due = today + chrono::Duration::days(settings.sla_days);
    let c = Complaint {
        stage: stage.to_string(),
        nik: nik.to_string(),
        contact: f.contact.clone(),
        category: f.category.clone(),
        description: f.description.clone(),
        kecamatan: f.kecamatan.clone(),
        owner: format!("post:{}", f.kecamatan),
        opened_by: staff.username.clone(),
        opened_at: kjp_store::timestamp(),
        due_date: due.to_string(),
        ..Complaint::default()
    };
    let public = format!(
        "Pengaduan diterima di pos pelayanan Kecamatan {}. Target selesai: {due}.",
        access::kecamatan_name(&f.kecamatan).unwrap_or("?")
    );
    let store = &state.inner.store;
    let c = match store.open_complaint(&c, &public).await {
        Ok(c) => c,
        Err(err) => return internal(err),
    };
    if let Err(err) = store
        .audit(
            &staff.username,
            "complaint.open",
            &c.ticket,
            &format!("nik {}; {}", c.nik, c.category),
            &staff.origin,
        )
        .await
    {
        return internal(err);
    }
    Redirect::to(&format!("/staff/complaints/{}", c.ticket)).into_response()
}

fn e_is_empty(e: &NewErrors) -> bool {
    [&e.nik, &e.contact, &e.category, &e.description, &e.kecamatan, &e.stage].iter().all(|s| s.is_empty())
}

#[derive(Template)]
#[template(path = "console/complaint.html")]
struct ShowPage {
    nav: Nav,
    c: Complaint,
    category: String,
    owner: String,
    overdue: bool,
    opened: String,
    child: Option<ChildView>,
    child_note: String,
    events: Vec<ComplaintEvent>,
    can_route: bool,
    can_note: bool,
    can_resolve: bool,
    can_correct: bool,
    route_opts: Vec<Opt>,
    error: String,
    resolution: String,
    public_note: String,
    fact: String,
    evidence: String,
    note_text: String,
    note_public: String,
}

async fn load(state: &AppState, staff: &Staff, ticket: &str) -> Result<Complaint, Response> {
    let c = state.inner.store.complaint(ticket).await.map_err(internal)?;
    match c {
        Some(c) if can_see(staff, &c) => Ok(c),
        Some(_) => {
            let _ =
                state.inner.store.audit(&staff.username, "denied.complaint", ticket, "", &staff.origin).await;
            Err(forbidden(
                staff,
                "Pengaduan ini di luar wilayah Anda. / This complaint is outside your scope.",
            ))
        }
        None => {
            Err(forbidden(staff, "Tidak ada pengaduan dengan nomor ini. / No complaint has this number."))
        }
    }
}

async fn show_page(
    state: &AppState,
    staff: &Staff,
    c: Complaint,
    status: StatusCode,
    error: String,
    typed: ResolveForm,
) -> Response {
    let store = &state.inner.store;
    let mut events = match store.complaint_events(&c.ticket).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    for e in &mut events {
        e.at = super::wib(&e.at);
    }
    let (mut child, mut child_note) = (None, String::new());
    if let (Ok(stage), Ok(nik)) = (Stage::parse(&c.stage), Nik::parse(&c.nik)) {
        match store.decision(stage, &c.nik).await {
            Ok(Some(d)) if staff.scope.covers_child(&d.kelurahan, &d.npsn) => {
                if let Err(e) = store.audit(&staff.username, "view.child", &nik.to_string(), &format!("complaint {}", c.ticket), &staff.origin).await {
                    return internal(e);
                }
                child = Some(child::view(state, &d));
            }
            Ok(Some(_)) => {
                child_note = "Anak tinggal atau bersekolah di luar wilayah Anda: keputusannya tidak ditampilkan. / The child is outside your scope.".into()
            }
            Ok(None) => {
                child_note = format!("Tidak ada keputusan untuk NIK ini pada tahap {stage}: anak belum menjadi calon penerima. / No decision for this NIK in the stage.")
            }
            Err(e) => return internal(e),
        }
    }
    if let Err(e) = store.audit(&staff.username, "view.complaint", &c.ticket, "", &staff.origin).await {
        return internal(e);
    }
    let page = ShowPage {
        nav: staff.nav(),
        category: category_label(&c.category).to_string(),
        owner: owner_label(&c.owner),
        overdue: c.state == "open" && c.due_date < today_wib().to_string(),
        opened: super::wib(&c.opened_at),
        child,
        child_note,
        events,
        can_route: can_route(staff, &c)
            && access::access(staff.role, "POST", "/staff/complaints/{ticket}/route").allowed(),
        can_note: can_note(staff, &c),
        can_resolve: can_resolve(staff, &c)
            && access::access(staff.role, "POST", "/staff/complaints/{ticket}/resolve").allowed(),
        can_correct: staff.role == Role::Admin && c.state == "open",
        route_opts: opts(destinations(&c.kecamatan), &default_route(&c.category, &c.kecamatan)),
        error,
        resolution: typed.resolution,
        public_note: typed.public_note,
        fact: typed.fact,
        evidence: typed.evidence,
        note_text: typed.note,
        note_public: typed.note_public,
        c,
    };
    render(status, &page)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(ticket): Path<String>,
) -> Response {
    match load(&state, &staff, &ticket).await {
        Ok(c) => show_page(&state, &staff, c, StatusCode::OK, String::new(), ResolveForm::default()).await,
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RouteForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    note: String,
}

pub(crate) async fn route(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(ticket): Path<String>,
    form: Result<Form<RouteForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let c = match load(&state, &staff, &ticket).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !can_route(&staff, &c) {
        return forbidden(
            &staff,
            "Anda tidak dapat meneruskan pengaduan ini. / You cannot route this complaint.",
        );
    }
    if !destinations(&c.kecamatan).iter().any(|(o, _)| *o == f.to) {
        return show_page(
            &state,
            &staff,
            c,
            StatusCode::BAD_REQUEST,
            "Pilih tujuan penerusan. / Choose where to route it.".into(),
            ResolveForm::default(),
        )
        .await;
    }
    if f.to == c.owner {
        return show_page(
            &state,
            &staff,
            c,
            StatusCode::BAD_REQUEST,
            "Pengaduan sudah ada di tim itu. / It is already with that team.".into(),
            ResolveForm::default(),
        )
        .await;
    }
    let public = format!("Diteruskan ke {}.", owner_label(&f.to));
    let store = &state.inner.store;
    match store.route_complaint(&ticket, &f.to, &staff.username, f.note.trim(), &public).await {
        Ok(true) => {}
        Ok(false) => {
            return show_page(
                &state,
                &staff,
                c,
                StatusCode::CONFLICT,
                "Pengaduan sudah selesai. / The complaint is closed.".into(),
                ResolveForm::default(),
            )
            .await
        }
        Err(e) => return internal(e),
    }
    if let Err(e) = store.audit(&staff.username, "complaint.route", &ticket, &f.to, &staff.origin).await {
        return internal(e);
    }
    // Routed away from this officer's team: the list, since the complaint may be out of view now.
    let next = if can_see(&staff, &Complaint { owner: f.to, ..c }) {
        format!("/staff/complaints/{ticket}")
    } else {
        "/staff/complaints".into()
    };
    Redirect::to(&next).into_response()
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct NoteForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    public_note: String,
}

pub(crate) async fn note(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(ticket): Path<String>,
    form: Result<Form<NoteForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let c = match load(&state, &staff, &ticket).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !can_note(&staff, &c) {
        return forbidden(&staff, "Pengaduan ini sudah selesai. / The complaint is closed.");
    }
    let (note, public) = (f.note.trim(), f.public_note.trim());
    if note.is_empty() && public.is_empty() {
        return show_page(
            &state,
            &staff,
            c,
            StatusCode::BAD_REQUEST,
            "Catatan kosong. / The note is empty.".into(),
            ResolveForm::default(),
        )
        .await;
    }
    if note.chars().count() > 2000 || public.chars().count() > 500 {
        return show_page(
            &state,
            &staff,
            c,
            StatusCode::BAD_REQUEST,
            "Catatan terlalu panjang (2000 / 500 karakter). / The note is too long.".into(),
            ResolveForm {
                note: f.note.clone(),
                note_public: f.public_note.clone(),
                ..ResolveForm::default()
            },
        )
        .await;
    }
    let store = &state.inner.store;
    if let Err(e) = store.note_complaint(&ticket, &staff.username, note, public).await {
        return internal(e);
    }
    if let Err(e) = store.audit(&staff.username, "complaint.note", &ticket, "", &staff.origin).await {
        return internal(e);
    }
    Redirect::to(&format!("/staff/complaints/{ticket}")).into_response()
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ResolveForm {
    #[serde(default)]
    resolution: String,
    #[serde(default)]
    public_note: String,
    /// `fact=value` pairs, comma-separated: a correction (education office only).
    #[serde(default)]
    fact: String,
    #[serde(default)]
    evidence: String,
    /// A note refused as too long, shown again in the note form.
    #[serde(skip)]
    note: String,
    #[serde(skip)]
    note_public: String,
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(ticket): Path<String>,
    form: Result<Form<ResolveForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let mut f = form.map(|Form(f)| f).unwrap_or_default();
    for s in [&mut f.resolution, &mut f.public_note, &mut f.fact, &mut f.evidence] {
        *s = s.trim().to_string();
    }
    let c = match load(&state, &staff, &ticket).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !can_resolve(&staff, &c) {
        return forbidden(&staff, "Hanya tim pemilik pengaduan yang dapat menyelesaikannya. / Only the team that owns the complaint can resolve it.");
    }
    let bad = |msg: String, f: ResolveForm, c: Complaint| {
        let (state, staff) = (state.clone(), staff.clone());
        async move { show_page(&state, &staff, c, StatusCode::BAD_REQUEST, msg, f).await }
    };
    if f.resolution.is_empty() {
        return bad("Tuliskan penyelesaiannya. / Write how it was resolved.".into(), f, c).await;
    }
    if f.resolution.chars().count() > 2000 || f.public_note.chars().count() > 500 {
        return bad("Teks terlalu panjang (2000 / 500 karakter). / Too long.".into(), f, c).await;
    }
    let store = &state.inner.store;
    let mut history = String::new();
    if !f.fact.is_empty() {
        if staff.role != Role::Admin {
            return forbidden(
                &staff,
                "Koreksi data hanya oleh Dinas Pendidikan. / Only the education office corrects data.",
            );
        }
        if f.evidence.is_empty() {
            return bad("Koreksi memerlukan bukti (misalnya blokir Samsat No. ... tanggal ...). / A correction needs its evidence.".into(), f, c).await;
        }
        let mut pairs = Vec::new();
        for part in f.fact.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => pairs.push((k.trim().to_string(), v.trim().to_string())),
                _ => return bad(format!("Koreksi ditulis fakta=nilai, misalnya family_car=no; bukan {part:?}. / Write fact=value."), f, c).await,
            }
        }
        let (Ok(stage), Ok(nik)) = (Stage::parse(&c.stage), Nik::parse(&c.nik)) else {
            return internal(format!("complaint {} holds a bad stage or NIK", c.ticket));
        };
        let decreed = match store.stage(stage).await {
            Ok(Some(s)) => s.state == StageState::Decreed,
            Ok(None) => false,
            Err(e) => return internal(e),
        };
        if !decreed {
            return bad(format!("Tahap {stage} belum ditetapkan: selesaikan anak ini di antrean review. / Stage {stage} is not decreed: settle the child in the review queue."), f, c).await;
        }
        let req = kjp_import::amend::CorrectionRequest {
            nik,
            change: kjp_import::amend::Change::Facts(pairs),
            reason: format!("{} (pengaduan {})", f.resolution, c.ticket),
            evidence: f.evidence.clone(),
            by: staff.username.clone(),
        };
        let done = match kjp_import::amend::correct(store, stage, &req).await {
            Ok(done) => done,
            Err(
                e @ (kjp_import::amend::AmendError::BadFact(..)
                | kjp_import::amend::AmendError::StillInReview { .. }
                | kjp_import::amend::AmendError::NoChange { .. }),
            ) => return bad(format!("Koreksi ditolak / correction refused: {e}"), f, c).await,
            Err(e) => return internal(e),
        };
        history = format!(
            "Koreksi no. {}: sebelum {}, sesudah {} ({} per bulan); bukti: {}; masuk perubahan keputusan berikutnya.",
            done.seq,
            done.status_before,
            done.status_after,
            super::rupiah(done.monthly_total),
            done.evidence
        );
        if let Err(e) = store
            .note_complaint(
                &ticket,
                &staff.username,
                &history,
                "Data sudah dikoreksi; hasilnya diumumkan pada perubahan keputusan berikutnya.",
            )
            .await
        {
            return internal(e);
        }
        if let Err(e) = store.audit(&staff.username, "correction", &c.nik, &history, &staff.origin).await {
            return internal(e);
        }
    }
    let public =
        if f.public_note.is_empty() { "Pengaduan selesai.".to_string() } else { f.public_note.clone() };
    match store.resolve_complaint(&ticket, &staff.username, &f.resolution, &public).await {
        Ok(true) => {}
        Ok(false) => {
            return bad("Pengaduan sudah selesai. / The complaint is already closed.".into(), f, c).await
        }
        Err(e) => return internal(e),
    }
    if let Err(e) = store.audit(&staff.username, "complaint.resolve", &ticket, &history, &staff.origin).await
    {
        return internal(e);
    }
    Redirect::to(&format!("/staff/complaints/{ticket}")).into_response()
}
