//! Routes, form validation, the page templates and their two languages.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use chrono::{Datelike, NaiveDate};
use kjp_domain::{Nik, Programme, Rupiah, Stage};
use serde::{Deserialize, Serialize};

use crate::index::{Answer, Index, Outcome};
use crate::AppState;

const CSS: &str = include_str!("../templates/style.css");

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/cek", axum::routing::post(check_page))
        .route("/api/v1/status", get(check_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::ops::readyz))
        .route("/metrics", get(crate::ops::metrics))
        .route("/api", get(crate::api_doc::page))
        .route("/api/openapi.json", get(crate::api_doc::document))
        .route("/style.css", get(style))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(state.inner.config.body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), request_timeout))
        // The staff console limits its public forms itself; staff pages are not rate
        // limited (their connections still have the header timeout).
        .merge(crate::console::router(state.clone()))
        .merge(crate::api::router(state.inner.config.upload_limit))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), crate::ops::observe))
        .with_state(state)
}

/// A request whose body trickles in is cut off: the headers' own deadline is hyper's.
async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.inner.config.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            let mut res = (StatusCode::REQUEST_TIMEOUT, "Request timeout").into_response();
            res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        // Answers are personal: no shared cache may keep them.
        set(h, "cache-control", "no-store");
    }
    res
}

async fn rate_limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let exempt =
        matches!(path, "/healthz" | "/readyz" | "/metrics" | "/style.css" | "/api" | "/api/openapi.json");
    if exempt || state.inner.limiter.allow(peer.ip()) {
        return next.run(req).await;
    }
    let mut res = if path.starts_with("/api/") {
        let body = ApiError { error: "too many requests: try again in a minute".into(), field: None };
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
    } else {
        let lang = Lang::from_query(req.uri().query());
        let page = BusyPage { t: lang.texts(), lang: lang.code() };
        render(StatusCode::TOO_MANY_REQUESTS, &page)
    };
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    res
}

#[derive(Template)]
#[template(path = "missing.html")]
struct MissingPage {
    t: &'static Texts,
    lang: &'static str,
}

async fn not_found(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        let body = ApiError { error: "no such endpoint".into(), field: None };
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let lang = Lang::from_query(req.uri().query());
    render(StatusCode::NOT_FOUND, &MissingPage { t: lang.texts(), lang: lang.code() })
}

/// `/healthz`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// Always `ok`: the process answers.
    #[schema(example = "ok")]
    status: &'static str,
    /// Every stage the status index knows.
    stages: Vec<StageHealth>,
}

/// One stage in the status index.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StageHealth {
    /// The stage: `2025/1` (KJP Plus) or `kjmu/2025/1`.
    #[schema(example = "2025/1")]
    stage: String,
    /// Whether the stage is decreed (otherwise every NIK is "in process").
    decreed: bool,
    /// Children indexed, when decreed.
    children: Option<usize>,
}

/// The process is alive and the stages its index holds. Never touches the database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Health> {
    let stages = state
        .index()
        .sizes()
        .into_iter()
        .map(|(s, n)| StageHealth { stage: s.to_string(), decreed: n.is_some(), children: n })
        .collect();
    Json(Health { status: "ok", stages })
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        CSS,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Languages

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Id,
    En,
}

impl Lang {
    fn parse(raw: Option<&str>) -> Lang {
        match raw {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }
    fn from_query(query: Option<&str>) -> Lang {
        let en = query.is_some_and(|q| q.split('&').any(|p| p == "lang=en"));
        if en {
            Lang::En
        } else {
            Lang::Id
        }
    }
    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }
    fn texts(self) -> &'static Texts {
        match self {
            Lang::Id => &ID,
            Lang::En => &EN,
        }
    }
}

/// The fixed words of the page, in one language.
#[derive(Debug)]
struct Texts {
    title: &'static str,
    intro: &'static str,
    nik: &'static str,
    nik_hint: &'static str,
    birth_date: &'static str,
    date_hint: &'static str,
    year: &'static str,
    stage: &'static str,
    programme: &'static str,
    stage_1: &'static str,
    stage_2: &'static str,
    button: &'static str,
    switch_label: &'static str,
    switch_lang: &'static str,
    recipient: &'static str,
    name: &'static str,
    level: &'static str,
    routine: &'static str,
    periodic: &'static str,
    school_fee: &'static str,
    /// KJMU's two parts: personal support (in `routine`) and the education fee paid to
    /// the university (in `school_fee`).
    personal_support: &'static str,
    university_fee: &'static str,
    total: &'static str,
    months: &'static str,
    not_recipient: &'static str,
    unfunded: &'static str,
    unfunded_next: &'static str,
    revoked: &'static str,
    revoked_since: &'static str,
    revoked_next: &'static str,
    would_receive: &'static str,
    reason: &'static str,
    next_steps: &'static str,
    service_post: &'static str,
    dtks: &'static str,
    in_process: &'static str,
    in_process_body: &'static str,
    not_found: &'static str,
    not_found_body: &'static str,
    busy_title: &'static str,
    busy_body: &'static str,
    no_reason: &'static str,
    missing_title: &'static str,
    back: &'static str,
    errors: &'static str,
}

static ID: Texts = Texts {
    title: "Cek Status KJP Plus dan KJMU",
    intro: "Masukkan NIK dan tanggal lahir siswa, pilih tahun dan tahap, lalu tekan CEK.",
    nik: "NIK siswa",
    nik_hint: "16 angka, sesuai Kartu Keluarga",
    birth_date: "Tanggal lahir",
    date_hint: "HH-BB-TTTT, misalnya 04-03-2012",
    year: "Tahun",
    stage: "Tahap",
    programme: "Program",
    stage_1: "Tahap 1 (Januari-Juni)",
    stage_2: "Tahap 2 (Juli-Desember)",
    button: "CEK",
    switch_label: "English",
    switch_lang: "en",
    recipient: "Terdaftar sebagai PENERIMA",
    name: "Nama",
    level: "Jenjang",
    routine: "Dana rutin per bulan",
    periodic: "Dana berkala per bulan",
    school_fee: "Biaya SPP sekolah swasta per bulan",
    personal_support: "Biaya pendukung personal per bulan (ke rekening mahasiswa)",
    university_fee: "Biaya pendidikan per bulan (dibayarkan ke perguruan tinggi)",
    total: "Jumlah per bulan",
    months: "Bulan manfaat",
    not_recipient: "BUKAN penerima pada tahap ini",
    unfunded: "MEMENUHI SYARAT, tetapi BELUM MENDAPAT DANA pada tahap ini",
    revoked: "Bantuan DICABUT karena sanksi",
    revoked_since: "Berlaku sejak",
    revoked_next: "Dana berhenti mulai bulan berikutnya yang belum dibayarkan, dan saldo yang belum dipakai ditarik kembali. Sanksi diberikan atas rekomendasi sekolah dan dapat dicabut atas rekomendasi sekolah; setelah itu siswa dapat diusulkan kembali pada tahap berikutnya. Tanyakan ke sekolah atau ke pos pelayanan KJP Plus di kantor kecamatan, Senin sampai Jumat pukul 08.00 sampai 15.00 WIB.",
    unfunded_next: "Untuk tahap berikutnya: siswa akan dinilai kembali tanpa perlu mendaftar ulang. Jika tetap memenuhi syarat, siswa diurutkan lagi menurut ketentuan yang sama; bila anggaran mencukupi, siswa menerima dana. Pos pelayanan KJP Plus di kantor kecamatan dapat menjelaskan, Senin sampai Jumat pukul 08.00 sampai 15.00 WIB.",
    would_receive: "Besaran per bulan jika didanai",
    reason: "Alasan",
    next_steps: "Langkah selanjutnya",
    service_post: "Datang ke pos pelayanan KJP Plus di kantor kecamatan tempat tinggal Anda, Senin sampai Jumat pukul 08.00 sampai 15.00 WIB. Petugas menjelaskan keputusan dan menerima pengaduan.",
    dtks: "Jika keluarga belum terdaftar dalam DTKS, daftarkan melalui pemutakhiran DTKS di kelurahan (Dinas Sosial); pos pelayanan di kecamatan dapat membantu.",
    in_process: "Masih dalam proses",
    in_process_body: "Penerima tahap ini belum ditetapkan dengan Keputusan Gubernur. Silakan cek kembali setelah pengumuman.",
    not_found: "Data tidak ditemukan",
    not_found_body: "Tidak ada data untuk NIK dan tanggal lahir ini pada tahap tersebut. Periksa kembali NIK dan tanggal lahir. Jika sudah benar, datang ke pos pelayanan KJP Plus di kantor kecamatan, Senin sampai Jumat pukul 08.00 sampai 15.00 WIB.",
    busy_title: "Terlalu banyak permintaan",
    busy_body: "Anda mengirim terlalu banyak permintaan dalam satu menit. Silakan tunggu sebentar lalu coba lagi.",
    no_reason: "Alasan tidak tercatat. Tanyakan ke pos pelayanan KJP Plus di kantor kecamatan.",
    missing_title: "Halaman tidak ditemukan",
    back: "Kembali ke formulir",
    errors: "Periksa kembali isian yang ditandai.",
};

static EN: Texts = Texts {
    title: "KJP Plus and KJMU Status Check",
    intro: "Enter the student's NIK and date of birth, choose the year and the stage, then press CEK.",
    nik: "Student's NIK",
    nik_hint: "16 digits, as on the family card",
    birth_date: "Date of birth",
    date_hint: "DD-MM-YYYY, e.g. 04-03-2012",
    year: "Year",
    stage: "Stage",
    programme: "Programme",
    stage_1: "Stage 1 (January-June)",
    stage_2: "Stage 2 (July-December)",
    button: "CEK",
    switch_label: "Bahasa Indonesia",
    switch_lang: "id",
    recipient: "A RECIPIENT of",
    name: "Name",
    level: "School level",
    routine: "Routine funds per month",
    periodic: "Periodic funds per month",
    school_fee: "Private-school fee per month",
    personal_support: "Personal support per month (to the student's account)",
    university_fee: "Education fee per month (paid to the university)",
    total: "Total per month",
    months: "Benefit months",
    not_recipient: "NOT a recipient in this stage",
    unfunded: "ELIGIBLE but NOT FUNDED in this stage",
    revoked: "Support REVOKED by a sanction",
    revoked_since: "In force since",
    revoked_next: "Payments stop from the next unpaid month and the unspent balance is withdrawn. The sanction was given on the school's recommendation and can be lifted on the school's recommendation; the student can then be proposed again in a later stage. Ask the school or the KJP Plus service post at the kecamatan office, Monday to Friday 08:00 to 15:00 WIB.",
    unfunded_next: "For the next stage: the student will be assessed again without registering again. If still eligible, the student is ranked again by the same rules and receives the funds if the budget allows. The KJP Plus service post at the kecamatan office can explain, Monday to Friday 08:00 to 15:00 WIB.",
    would_receive: "Monthly amount if funded",
    reason: "Reason",
    next_steps: "What to do next",
    service_post: "Visit the KJP Plus service post at your kecamatan (sub-district) office, Monday to Friday 08:00 to 15:00 WIB. The officers explain the decision and take complaints.",
    dtks: "If the family is not in the social welfare data (DTKS), register through the DTKS update at the kelurahan (social office); the service post at the kecamatan can help.",
    in_process: "Still in process",
    in_process_body: "The recipients of this stage have not yet been fixed by the Governor's decree. Please check again after the announcement.",
    not_found: "No data found",
    not_found_body: "There is no data for this NIK and date of birth in that stage. Check the NIK and the date of birth. If they are right, visit the KJP Plus service post at the kecamatan office, Monday to Friday 08:00 to 15:00 WIB.",
    busy_title: "Too many requests",
    busy_body: "You sent too many requests in one minute. Please wait a moment and try again.",
    no_reason: "No reason is recorded. Ask at the KJP Plus service post at the kecamatan office.",
    missing_title: "Page not found",
    back: "Back to the form",
    errors: "Please check the marked fields.",
};

const MONTHS_ID: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

// ---------------------------------------------------------------------------------------
// Input: raw strings in, domain values or a message per field out.

/// The form or query as typed; every field optional so a missing one gets our message.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawInput {
    programme: Option<String>,
    nik: Option<String>,
    birth_date: Option<String>,
    year: Option<String>,
    stage: Option<String>,
    lang: Option<String>,
}

#[derive(Debug)]
struct Input {
    nik: Nik,
    birth_date: NaiveDate,
    stage: Stage,
}

/// A message per field, in the page's language.
#[derive(Debug, Default)]
struct FieldErrors {
    programme: Option<String>,
    nik: Option<String>,
    birth_date: Option<String>,
    year: Option<String>,
    stage: Option<String>,
}

impl FieldErrors {
    /// The first field in error and its message (for the JSON API).
    fn first(&self) -> Option<(&'static str, &str)> {
        [
            ("programme", &self.programme),
            ("nik", &self.nik),
            ("birth_date", &self.birth_date),
            ("year", &self.year),
            ("stage", &self.stage),
        ]
        .into_iter()
        .find_map(|(f, m)| m.as_deref().map(|m| (f, m)))
    }
}

/// `lenient`: the page also accepts DD-MM-YYYY dates; the API only YYYY-MM-DD.
fn validate(raw: &RawInput, lang: Lang, lenient: bool) -> Result<Input, FieldErrors> {
    let en = lang == Lang::En;
    let pick = |id: String, en_text: String| if en { en_text } else { id };
    let mut errs = FieldErrors::default();

    let nik_raw = raw.nik.as_deref().unwrap_or("").trim();
    let nik = if nik_raw.is_empty() {
        errs.nik = Some(pick("NIK wajib diisi.".into(), "Enter the NIK.".into()));
        None
    } else if !nik_raw.bytes().all(|b| b.is_ascii_digit()) {
        errs.nik =
            Some(pick("NIK hanya boleh berisi angka.".into(), "The NIK may only contain digits.".into()));
        None
    } else if nik_raw.len() != 16 {
        let n = nik_raw.len();
        errs.nik = Some(pick(
            format!("NIK harus 16 angka; yang diisi {n} angka."),
            format!("The NIK has 16 digits; {n} were entered."),
        ));
        None
    } else {
        match Nik::parse(nik_raw) {
            Ok(n) => Some(n),
            Err(e) => {
                errs.nik =
                    Some(pick(nik_problem_id(e.problem()), format!("Not a valid NIK: {}.", e.problem())));
                None
            }
        }
    };

    let date_raw = raw.birth_date.as_deref().unwrap_or("").trim();
    let birth_date = if date_raw.is_empty() {
        errs.birth_date = Some(pick("Tanggal lahir wajib diisi.".into(), "Enter the date of birth.".into()));
        None
    } else {
        match parse_date(date_raw, lenient) {
            DateCheck::Ok(d) => Some(d),
            DateCheck::Shape => {
                errs.birth_date = Some(pick(
                    "Tulis tanggal lahir sebagai HH-BB-TTTT, misalnya 04-03-2012.".into(),
                    if lenient {
                        "Write the date of birth as DD-MM-YYYY, e.g. 04-03-2012."
                    } else {
                        "Write the date of birth as YYYY-MM-DD, e.g. 2012-03-04."
                    }
                    .into(),
                ));
                None
            }
            DateCheck::NoSuchDay => {
                errs.birth_date = Some(pick(
                    format!("Tanggal {date_raw} tidak ada di kalender."),
                    format!("The date {date_raw} does not exist."),
                ));
                None
            }
        }
    };

    let year_raw = raw.year.as_deref().unwrap_or("").trim();
    let year = match year_raw.parse::<i32>() {
        Ok(y) if (2012..=2100).contains(&y) && year_raw.len() == 4 => Some(y),
        _ => {
            errs.year = Some(pick(
                "Tahun harus empat angka, mulai 2012.".into(),
                "The year has four digits, from 2012.".into(),
            ));
            None
        }
    };

    // KJP Plus unless another programme is asked for.
    let programme_raw = raw.programme.as_deref().unwrap_or("").trim();
    let programme = if programme_raw.is_empty() {
        Some(Programme::KjpPlus)
    } else {
        let p = Programme::parse(programme_raw);
        if p.is_none() {
            errs.programme = Some(pick(
                "Program harus KJP Plus (kjp-plus) atau KJMU (kjmu).".into(),
                "The programme is KJP Plus (kjp-plus) or KJMU (kjmu).".into(),
            ));
        }
        p
    };

    let stage_raw = raw.stage.as_deref().unwrap_or("").trim();
    let half = match stage_raw {
        "1" => Some(1u8),
        "2" => Some(2u8),
        _ => {
            errs.stage = Some(pick("Tahap harus 1 atau 2.".into(), "The stage is 1 or 2.".into()));
            None
        }
    };

    match (nik, birth_date, year, half, programme) {
        (Some(nik), Some(birth_date), Some(year), Some(half), Some(programme)) => {
            match Stage::of(programme, year, half) {
                Ok(stage) => Ok(Input { nik, birth_date, stage }),
                Err(_) => {
                    errs.year = Some(pick("Tahun tidak dikenal.".into(), "Unknown year.".into()));
                    Err(errs)
                }
            }
        }
        _ => Err(errs),
    }
}

/// Which part of a well-formed 16-digit NIK is wrong, in Indonesian (the domain's
/// messages are English).
fn nik_problem_id(problem: &str) -> String {
    let part = if problem.starts_with("province") {
        "kode provinsi (2 angka pertama) tidak ada"
    } else if problem.starts_with("day") || problem.starts_with("month") {
        "tanggal lahir di dalam NIK (angka ke-7 sampai ke-12) bukan tanggal yang ada"
    } else if problem.starts_with("serial") {
        "nomor urut (4 angka terakhir) tidak boleh 0000"
    } else {
        "kode wilayah (6 angka pertama) tidak ada"
    };
    format!("NIK tidak valid: {part}.")
}

enum DateCheck {
    Ok(NaiveDate),
    Shape,
    NoSuchDay,
}

/// YYYY-MM-DD; with `lenient` (the page) also DD-MM-YYYY and DD/MM/YYYY, as parents write it.
fn parse_date(raw: &str, lenient: bool) -> DateCheck {
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    let num = |p: &str| p.parse::<u32>().unwrap_or(0);
    let parts: Vec<&str> = raw.split(['-', '/']).collect();
    let (y, m, d) = match parts[..] {
        [y, m, d] if !raw.contains('/') && digits(y, 4) && digits(m, 2) && digits(d, 2) => (y, m, d),
        [d, m, y] if lenient && digits(d, 2) && digits(m, 2) && digits(y, 4) => (y, m, d),
        _ => return DateCheck::Shape,
    };
    match NaiveDate::from_ymd_opt(num(y) as i32, num(m), num(d)) {
        Some(d) => DateCheck::Ok(d),
        None => DateCheck::NoSuchDay,
    }
}

// ---------------------------------------------------------------------------------------
// The page

#[derive(Template)]
#[template(path = "page.html")]
struct Page {
    t: &'static Texts,
    lang: &'static str,
    form: Echo,
    errors: FieldErrors,
    has_errors: bool,
    answer: Option<AnswerView>,
}

#[derive(Template)]
#[template(path = "busy.html")]
struct BusyPage {
    t: &'static Texts,
    lang: &'static str,
}

/// What was typed, shown back in the form.
#[derive(Debug, Default)]
struct Echo {
    programme: String,
    nik: String,
    birth_date: String,
    year: String,
    stage: String,
}

#[derive(Debug)]
struct AnswerView {
    /// recipient, unfunded, not_recipient, in_process or not_found.
    kind: &'static str,
    /// KJP Plus or KJMU.
    programme: &'static str,
    /// Amounts in KJMU's two parts rather than KJP Plus's three.
    university: bool,
    masked_name: String,
    level: String,
    routine: String,
    periodic: String,
    school_fee: String,
    has_school_fee: bool,
    total: String,
    months: Vec<String>,
    reasons: Vec<String>,
    /// For a revoked recipient: when the sanction took effect.
    since: String,
}

fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("template error: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}

async fn home(Query(q): Query<LangQuery>) -> Response {
    let lang = Lang::parse(q.lang.as_deref());
    let this_year = chrono::Utc::now().year();
    let form = Echo {
        programme: Programme::KjpPlus.id().into(),
        year: this_year.to_string(),
        stage: "1".into(),
        ..Echo::default()
    };
    let page = Page {
        t: lang.texts(),
        lang: lang.code(),
        form,
        errors: FieldErrors::default(),
        has_errors: false,
        answer: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

async fn check_page(State(state): State<AppState>, form: Result<Form<RawInput>, FormRejection>) -> Response {
    let raw = match form {
        Ok(Form(f)) => f,
        // Far more than the form: not a parent's request.
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return e.into_response(),
        // Anything else unreadable is shown as the empty form with its messages.
        Err(_) => RawInput::default(),
    };
    let lang = Lang::parse(raw.lang.as_deref());
    let echo = Echo {
        programme: raw.programme.clone().unwrap_or_else(|| Programme::KjpPlus.id().into()),
        nik: raw.nik.clone().unwrap_or_default(),
        birth_date: raw.birth_date.clone().unwrap_or_default(),
        year: raw.year.clone().unwrap_or_default(),
        stage: raw.stage.clone().unwrap_or_default(),
    };
    let t = lang.texts();
    match validate(&raw, lang, true) {
        Err(errors) => {
            let page = Page { t, lang: lang.code(), form: echo, errors, has_errors: true, answer: None };
            render(StatusCode::BAD_REQUEST, &page)
        }
        Ok(input) => {
            let index = state.index();
            let answer = view(
                &state,
                &index,
                index.lookup(input.stage, input.nik.as_u64(), input.birth_date),
                input.stage,
                lang,
            );
            let page = Page {
                t,
                lang: lang.code(),
                form: echo,
                errors: FieldErrors::default(),
                has_errors: false,
                answer: Some(answer),
            };
            render(StatusCode::OK, &page)
        }
    }
}

/// A reason's plain words, in Indonesian and English, from the policy the stage was
/// decided under (kept in the index), else the policy loaded (borrowed: the JSON answer
/// writes them without copying).
fn reason_text<'a>(state: &'a AppState, index: &'a Index, stage: Stage, code: &'a str) -> (&'a str, &'a str) {
    if let Some((id, en)) = index.reason_text(stage, code) {
        return (id, en);
    }
    let policy = &state.inner.policy;
    match policy.reason_index(code) {
        Some(i) => {
            let r = policy.reason(i);
            (&r.texts.id, &r.texts.en)
        }
        // A code the policy does not name (should not happen): show the code rather than nothing.
        None => (code, code),
    }
}

fn view(state: &AppState, index: &Index, answer: Answer<'_>, stage: Stage, lang: Lang) -> AnswerView {
    let mut v = AnswerView {
        kind: "not_found",
        programme: stage.programme().name(),
        university: stage.programme() == Programme::Kjmu,
        masked_name: String::new(),
        level: String::new(),
        routine: String::new(),
        periodic: String::new(),
        school_fee: String::new(),
        has_school_fee: false,
        total: String::new(),
        months: Vec::new(),
        reasons: Vec::new(),
        since: String::new(),
    };
    match answer {
        Answer::InProcess => v.kind = "in_process",
        Answer::NotFound => {}
        Answer::Found(e) => match &e.outcome {
            Outcome::Recipient { level, routine, periodic, school_fee, total } => {
                v.kind = "recipient";
                v.masked_name = e.masked_name.clone();
                v.level = level.clone();
                v.routine = Rupiah::new(*routine).to_string();
                v.periodic = Rupiah::new(*periodic).to_string();
                v.school_fee = Rupiah::new(*school_fee).to_string();
                v.has_school_fee = *school_fee > 0;
                v.total = Rupiah::new(*total).to_string();
                let names = if lang == Lang::En { &MONTHS_EN } else { &MONTHS_ID };
                v.months = stage
                    .benefit_months()
                    .iter()
                    .map(|m| format!("{} {}", names[m.month0() as usize], m.year()))
                    .collect();
            }
            Outcome::Unfunded { level, total, reasons } => {
                v.kind = "unfunded";
                v.masked_name = e.masked_name.clone();
                v.level = level.clone();
                v.total = Rupiah::new(*total).to_string();
                v.reasons = reasons
                    .iter()
                    .map(|c| {
                        let (id, en) = reason_text(state, index, stage, c);
                        if lang == Lang::En { en } else { id }.to_owned()
                    })
                    .collect();
            }
            Outcome::Revoked { level, category, since } => {
                v.kind = "revoked";
                v.masked_name = e.masked_name.clone();
                v.level = level.clone();
                let key = format!("sanction:{category}");
                let (id, en) = reason_text(state, index, stage, &key);
                let text = if lang == Lang::En { en } else { id };
                v.reasons = vec![if text == key { category.clone() } else { text.to_owned() }];
                let names = if lang == Lang::En { &MONTHS_EN } else { &MONTHS_ID };
                v.since = format!("{} {} {}", since.day(), names[since.month0() as usize], since.year());
            }
            Outcome::NotRecipient { reasons } => {
                v.kind = "not_recipient";
                v.reasons = reasons
                    .iter()
                    .map(|c| {
                        let (id, en) = reason_text(state, index, stage, c);
                        if lang == Lang::En { en } else { id }.to_owned()
                    })
                    .collect();
            }
        },
    }
    v
}

// ---------------------------------------------------------------------------------------
// JSON

/// The answer for one child in one stage. `status` says which other fields are present:
/// `recipient` (level, monthly, benefit_months), `unfunded` (level, reasons),
/// `not_recipient` (reasons), `in_process` and `not_found` (none).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StatusJson<'a> {
    #[schema(value_type = String, pattern = "^(recipient|unfunded|not_recipient|revoked|in_process|not_found)$", example = "recipient")]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    monthly: Option<MonthlyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    benefit_months: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<ReasonJson<'a>>>,
    /// For `revoked`: the day the sanction took effect in this stage (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
}

/// Monthly amounts in whole rupiah.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MonthlyJson {
    routine: i64,
    periodic: i64,
    school_fee: i64,
    total: i64,
}

/// Why a child is not (or not yet) funded: a reason code and its text in Indonesian and English.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReasonJson<'a> {
    code: &'a str,
    text_id: &'a str,
    text_en: &'a str,
}

fn reasons_json<'a>(
    state: &'a AppState,
    index: &'a Index,
    stage: Stage,
    codes: &'a [String],
) -> Vec<ReasonJson<'a>> {
    codes
        .iter()
        .map(|c| {
            let (text_id, text_en) = reason_text(state, index, stage, c);
            ReasonJson { code: c, text_id, text_en }
        })
        .collect()
}

/// An error of the JSON API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiError {
    /// What is wrong, in English.
    error: String,
    /// The parameter or field in error, for 400.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

pub(crate) fn json_error(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let body = ApiError { error: message.to_owned(), field: field.map(str::to_owned) };
    (status, Json(body)).into_response()
}

/// 500 for the JSON API: the cause goes to the server's log (store errors carry no
/// personal data), not to the client.
/// The database being busy is 503 with `Retry-After` instead.
pub(crate) fn api_internal(e: impl std::fmt::Display + 'static) -> Response {
    if is_busy(&e) {
        tracing::warn!("api: {e}");
        let mut res = json_error(StatusCode::SERVICE_UNAVAILABLE, None, "the database is busy: try again");
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return res;
    }
    tracing::error!("api: {e}");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
}

/// Whether an error is the store's `Busy` (a lock wait that ran out): the request may
/// succeed if retried, so it is answered 503, not 500.
pub(crate) fn is_busy(e: &dyn std::any::Any) -> bool {
    e.downcast_ref::<kjp_store::StoreError>().is_some_and(kjp_store::StoreError::is_busy)
}

/// A child's status in one stage, by NIK and date of birth. An unknown NIK and a wrong
/// date of birth get the same answer (404, `not_found`).
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "status",
    params(
        ("nik" = String, Query, pattern = "^[0-9]{16}$", example = "3171010403120001",
            description = "The child's NIK: 16 digits. One that cannot exist (unknown region code, impossible date inside) is refused with 400"),
        ("birth_date" = String, Query, format = Date, example = "2012-03-04", description = "Date of birth, YYYY-MM-DD"),
        ("year" = String, Query, pattern = "^(201[2-9]|20[2-9][0-9]|2100)$", example = "2025",
            description = "Year of the stage: four digits, 2012 to 2100"),
        ("stage" = String, Query, pattern = "^[12]$", example = "1",
            description = "Stage of the year: 1 (January-June) or 2 (July-December)"),
        ("programme" = Option<String>, Query, pattern = "^(kjp-plus|kjmu)$", example = "kjp-plus",
            description = "`kjp-plus` (the default) or `kjmu`"),
    ),
    responses(
        (status = 200, description = "Known: recipient, unfunded, not a recipient, or the stage is not decreed yet (in_process)", body = StatusJson),
        (status = 400, description = "A parameter is missing or invalid; `field` names it", body = ApiError),
        (status = 404, description = "No child with this NIK and date of birth in the stage", body = StatusJson),
        (status = 429, description = "Too many requests from this address in a minute",
            headers(("retry-after" = u32, description = "Seconds to wait")), body = ApiError),
    )
)]
pub(crate) async fn check_json(
    State(state): State<AppState>,
    query: Result<Query<RawInput>, QueryRejection>,
) -> Response {
    let Ok(Query(raw)) = query else {
        return json_error(StatusCode::BAD_REQUEST, None, "the query string could not be read");
    };
    let input = match validate(&raw, Lang::En, false) {
        Ok(i) => i,
        Err(errs) => {
            let (field, message) = errs.first().unwrap_or(("nik", "invalid input"));
            return json_error(StatusCode::BAD_REQUEST, Some(field), message);
        }
    };
    let index = state.index();
    let none = StatusJson {
        status: "not_found",
        level: None,
        monthly: None,
        benefit_months: None,
        reasons: None,
        since: None,
    };
    let (code, body) = match index.lookup(input.stage, input.nik.as_u64(), input.birth_date) {
        Answer::InProcess => (StatusCode::OK, StatusJson { status: "in_process", ..none }),
        Answer::NotFound => (StatusCode::NOT_FOUND, none),
        Answer::Found(e) => match &e.outcome {
            Outcome::Recipient { level, routine, periodic, school_fee, total } => (
                StatusCode::OK,
                StatusJson {
                    status: "recipient",
                    level: Some(level),
                    monthly: Some(MonthlyJson {
                        routine: *routine,
                        periodic: *periodic,
                        school_fee: *school_fee,
                        total: *total,
                    }),
                    benefit_months: Some(
                        input.stage.benefit_months().iter().map(|m| m.format("%Y-%m").to_string()).collect(),
                    ),
                    ..none
                },
            ),
            Outcome::Revoked { level, category, since } => {
                let key = format!("sanction:{category}");
                let (text_id, text_en) = match index.reason_text(input.stage, &key) {
                    Some((id, en)) => (id.as_str(), en.as_str()),
                    None => (category.as_str(), category.as_str()),
                };
                (
                    StatusCode::OK,
                    StatusJson {
                        status: "revoked",
                        level: Some(level),
                        reasons: Some(vec![ReasonJson { code: category, text_id, text_en }]),
                        since: Some(since.to_string()),
                        ..none
                    },
                )
            }
            Outcome::Unfunded { level, reasons, .. } => (
                StatusCode::OK,
                StatusJson {
                    status: "unfunded",
                    level: Some(level),
                    reasons: Some(reasons_json(&state, &index, input.stage, reasons)),
                    ..none
                },
            ),
            Outcome::NotRecipient { reasons } => (
                StatusCode::OK,
                StatusJson {
                    status: "not_recipient",
                    reasons: Some(reasons_json(&state, &index, input.stage, reasons)),
                    ..none
                },
            ),
        },
    };
    (code, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(raw: &str, lenient: bool) -> Option<NaiveDate> {
        match parse_date(raw, lenient) {
            DateCheck::Ok(d) => Some(d),
            _ => None,
        }
    }

    #[test]
    fn dates_iso_everywhere_day_first_on_the_page_only() {
        let d = NaiveDate::from_ymd_opt(2012, 3, 4);
        assert_eq!(date("2012-03-04", false), d);
        assert_eq!(date("04-03-2012", true), d);
        assert_eq!(date("04/03/2012", true), d);
        assert_eq!(date("04-03-2012", false), None);
        assert_eq!(date("2012/03/04", true), None);
        assert!(matches!(parse_date("2012-02-30", false), DateCheck::NoSuchDay));
        assert!(matches!(parse_date("30-02-2012", true), DateCheck::NoSuchDay));
        assert!(matches!(parse_date("2012-3-4", true), DateCheck::Shape));
    }
}
