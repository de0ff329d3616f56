//! The staff console, black box: a real server on port 0 over a fresh store per test,
//! staff signing in through the real form.

mod common;
use common::*;

use kjp_server::console::access::{Access, Role, MATRIX};
use kjp_server::console::hash_password;
use kjp_store::Complaint;
use reqwest::redirect::Policy;

/// A signed-in staff member: the session cookie and the CSRF token of their session.
struct Session {
    client: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().expect("client")
}

/// The value of `name=...` in a response's Set-Cookie headers.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The first hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

async fn add(app: &TestApp, username: &str, role: &str, scope: &str) -> String {
    let password = format!("pw-{username}-0123456789");
    assert!(app.store.add_staff(username, role, scope, &hash_password(&password)).await.expect("add"));
    password
}

async fn try_sign_in(app: &TestApp, username: &str, password: &str) -> (u16, String, Option<String>) {
    let c = client();
    let res = c.get(app.url("/staff/login")).send().await.expect("login page");
    let nonce = set_cookie(&res, "kjp_login").expect("login cookie");
    let html = res.text().await.expect("body");
    let csrf = csrf_of(&html);
    let res = c
        .post(app.url("/staff/login"))
        .header("cookie", format!("kjp_login={nonce}"))
        .form(&[("username", username), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .expect("login");
    let status = res.status().as_u16();
    let session = set_cookie(&res, "kjp_staff").filter(|v| !v.is_empty());
    (status, res.text().await.expect("body"), session)
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Session {
    let (status, body, cookie) = try_sign_in(app, username, password).await;
    assert_eq!(status, 303, "{body}");
    let cookie = cookie.expect("a session cookie");
    let c = client();
    let home = c
        .get(app.url("/staff"))
        .header("cookie", format!("kjp_staff={cookie}"))
        .send()
        .await
        .expect("home")
        .text()
        .await
        .expect("body");
    Session { csrf: csrf_of(&home), client: c, base: app.url(""), cookie }
}

impl Session {
    async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("kjp_staff={}", self.cookie))
            .send()
            .await
            .expect("get");
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("kjp_staff={}", self.cookie))
            .form(&form)
            .send()
            .await
            .expect("post");
        let location = res.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (res.status().as_u16(), location, res.text().await.unwrap_or_default())
    }
}

async fn complaint(app: &TestApp, nik: &str, category: &str, owner: Option<&str>) -> String {
    let c = Complaint {
        stage: "2025/1".into(),
        nik: nik.into(),
        contact: "0812 3456 7890".into(),
        category: category.into(),
        description: "test".into(),
        kecamatan: "31.71.01".into(),
        owner: "post:31.71.01".into(),
        opened_by: "tester".into(),
        opened_at: kjp_store::timestamp(),
        due_date: "2099-01-01".into(),
        ..Complaint::default()
    };
    let c = app.store.open_complaint(&c, "received").await.expect("open");
    if let Some(o) = owner {
        assert!(app.store.route_complaint(&c.ticket, o, "tester", "", "").await.expect("route"));
    }
    c.ticket
}

const REFUSED_BY_ROLE: &str = "Peran Anda tidak boleh membuka halaman ini";

/// Every route of the matrix with every role: the guard allows exactly what the table
/// says. Bodies are deliberately incomplete so nothing changes (a 400 is "allowed").
#[tokio::test]
async fn authorisation_matrix_every_route_every_role() {
    let app = spawn(true, 10_000).await;
    let post_ticket = complaint(&app, RECIPIENT, "other", None).await;
    let social_ticket = complaint(&app, RECIPIENT, "not_in_dtks", Some("social:31.71.01")).await;
    let bank_ticket = complaint(&app, RECIPIENT, "payment", Some("bank")).await;
    let accounts = [
        (Role::Admin, ""),
        (Role::School, "20100001"),
        (Role::Post, "31.71.01"),
        (Role::Social, "31.71.01"),
        (Role::Bank, ""),
        (Role::Auditor, ""),
    ];
    let (_, digest) = kjp_server::api::clients::new_token();
    let scopes = ["decree.export".to_string()];
    assert!(app.store.add_api_client("matrix", "Bank DKI", &scopes, &digest, "test").await.unwrap());
    // Logging out ends the session: last.
    let mut rules: Vec<_> = MATRIX.iter().collect();
    rules.sort_by_key(|r| r.path == "/staff/logout");
    for (col, (role, scope)) in accounts.iter().enumerate() {
        assert_eq!(Role::ALL[col], *role);
        let name = format!("m-{role}");
        let pw = add(&app, &name, role.code(), scope).await;
        let s = sign_in(&app, &name, &pw).await;
        let ticket = match role {
            Role::Social => &social_ticket,
            Role::Bank => &bank_ticket,
            _ => &post_ticket,
        };
        for r in &rules {
            let path = r.path.replace("{ticket}", ticket).replace("{name}", "matrix");
            let (status, body) = if r.method == "GET" {
                s.get(&path).await
            } else {
                let fields: &[(&str, &str)] = match r.path {
                    "/staff/child" => &[("nik", UNKNOWN)],
                    _ => &[],
                };
                let (status, _, body) = s.post(&path, fields).await;
                (status, body)
            };
            let expected = r.access[col];
            if expected == Access::No {
                assert_eq!(status, 403, "{role} {} {path} should be refused: {body}", r.method);
                assert!(body.contains(REFUSED_BY_ROLE), "{role} {} {path}: {body}", r.method);
            } else {
                assert!(
                    ![401, 403, 404, 500].contains(&status) || (status == 404 && r.path == "/staff/child"),
                    "{role} {} {path} should be allowed, got {status}: {body}",
                    r.method
                );
                assert!(!body.contains(REFUSED_BY_ROLE), "{role} {} {path}: {body}", r.method);
            }
        }
    }
    // Without a session every staff route sends the browser to the sign-in page.
    let c = client();
    for r in MATRIX {
        let url = app.url(&r.path.replace("{ticket}", &post_ticket).replace("{name}", "matrix"));
        let res = if r.method == "GET" { c.get(url).send().await } else { c.post(url).send().await }
            .expect("request");
        assert_eq!(res.status().as_u16(), 303, "{} {}", r.method, r.path);
        assert_eq!(res.headers()["location"], "/staff/login");
    }
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_and_the_right_one_waits() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    for i in 1..=5 {
        let (status, body, cookie) = try_sign_in(&app, "pos.gambir", "wrong password").await;
        assert_eq!(status, 401, "attempt {i}: {body}");
        assert!(cookie.is_none());
        assert!(body.contains("Nama pengguna atau kata sandi salah"), "{body}");
        if i == 5 {
            assert!(body.contains("dikunci"), "the fifth failure locks: {body}");
        }
    }
    let (status, body, cookie) = try_sign_in(&app, "pos.gambir", &pw).await;
    assert_eq!(status, 429, "{body}");
    assert!(cookie.is_none());
    assert!(body.contains("Akun dikunci"), "{body}");
    // An unknown account gets the same answer as a wrong password.
    let (status, body, _) = try_sign_in(&app, "nobody", "x").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Nama pengguna atau kata sandi salah"), "{body}");
    let audit = app.store.audit_entries(100, "login").await.expect("audit");
    assert!(audit.iter().any(|e| e.action == "login.locked"), "{audit:?}");
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "admin", "admin", "").await;
    // The sign-in form without its cookie.
    let res = client()
        .post(app.url("/staff/login"))
        .form(&[("username", "admin"), ("password", pw.as_str()), ("csrf", "abc")])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status().as_u16(), 403);
    let s = sign_in(&app, "admin", &pw).await;
    let res = s
        .client
        .post(app.url("/staff/users"))
        .header("cookie", format!("kjp_staff={}", s.cookie))
        .form(&[("username", "mallory"), ("role", "admin"), ("csrf", "forged")])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 403);
    assert!(app.store.staff("mallory").await.expect("staff").is_none());
    // From another site, even with the token.
    let res = s
        .client
        .post(app.url("/staff/users"))
        .header("cookie", format!("kjp_staff={}", s.cookie))
        .header("origin", "https://evil.example")
        .form(&[("username", "mallory"), ("role", "admin"), ("csrf", s.csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 403);
    assert!(app.store.staff("mallory").await.expect("staff").is_none());
    // Signed out, the session is gone.
    let (status, location, _) = s.post("/staff/logout", &[]).await;
    assert_eq!((status, location.as_str()), (303, "/staff/login"));
    let (status, _) = s.get("/staff").await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn a_post_officer_cannot_see_a_child_of_another_kecamatan() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.tanahabang", "post", "31.71.02").await;
    let s = sign_in(&app, "pos.tanahabang", &pw).await;
    let (status, _, body) = s.post("/staff/child", &[("nik", RECIPIENT)]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("di luar wilayah"), "{body}");
    assert!(!body.contains("Adi Saputra"), "{body}");
    let denied = app.store.audit_entries(10, "denied.view.child").await.expect("audit");
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].subject, RECIPIENT);
    assert_eq!(denied[0].actor, "pos.tanahabang");
    // Their own kecamatan's officer sees the child, evidence and all, and the view is recorded.
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let s = sign_in(&app, "pos.gambir", &pw).await;
    let (status, _, body) = s.post("/staff/child", &[("nik", CAR_OWNED)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Candra") && body.contains("EXCLUDED_CAR"), "{body}");
    assert!(body.contains("<code>bapenda:3</code>"), "evidence lines: {body}");
    let views = app.store.audit_entries(10, "pos.gambir").await.expect("audit");
    assert!(views.iter().any(|e| e.action == "view.child" && e.subject == CAR_OWNED), "{views:?}");
    // Bad input: a clear message, the input kept.
    let (status, _, body) = s.post("/staff/child", &[("nik", "31710104")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("NIK harus 16 angka") && body.contains(r#"value="31710104""#), "{body}");
}

#[tokio::test]
async fn a_complaint_is_recorded_routed_followed_and_resolved_with_a_correction() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let post = sign_in(&app, "pos.gambir", &pw).await;
    // Bad input on every field: every message, nothing lost.
    let bad =
        [("nik", "123"), ("stage", "2025"), ("contact", "08"), ("category", "nope"), ("description", "")];
    let (status, _, body) = post.post("/staff/complaints", &bad).await;
    assert_eq!(status, 400, "{body}");
    for msg in
        ["NIK harus 16 angka", "TTTT/1", "8 sampai 15 angka", "Pilih kategori", "Tuliskan isi pengaduan"]
    {
        assert!(body.contains(msg), "{msg}: {body}");
    }
    assert!(body.contains(r#"value="123""#) && body.contains(r#"value="08""#), "{body}");
    let good = [
        ("nik", CAR_OWNED),
        ("stage", "2025/1"),
        ("contact", "0812 3456 7890"),
        ("category", "asset"),
        ("description", "Mobil sudah dijual 2024, blokir Samsat ada"),
    ];
    let (status, location, body) = post.post("/staff/complaints", &good).await;
    assert_eq!(status, 303, "{body}");
    let ticket = location.trim_start_matches("/staff/complaints/").to_string();
    assert!(ticket.starts_with("KJP-") && ticket.len() == "KJP-2026-000001".len(), "{ticket}");
    let c = app.store.complaint(&ticket).await.expect("complaint").expect("saved");
    assert_eq!(
        (c.owner.as_str(), c.state.as_str(), c.kecamatan.as_str()),
        ("post:31.71.01", "open", "31.71.01")
    );
    let opened = chrono::NaiveDate::parse_from_str(&c.opened_at[..10], "%Y-%m-%d").expect("date");
    let due = chrono::NaiveDate::parse_from_str(&c.due_date, "%Y-%m-%d").expect("date");
    assert!((13..=15).contains(&(due - opened).num_days()), "SLA 14 days: {opened} -> {due}");
    let (status, page) = post.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("EXCLUDED_CAR") && page.contains("Dinas Pendidikan"),
        "decision and suggested route: {page}"
    );
    // Routed to the education office.
    let (status, _, body) =
        post.post(&format!("{location}/route"), &[("to", "education"), ("note", "catatan-internal")]).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(app.store.complaint(&ticket).await.unwrap().unwrap().owner, "education");
    // The post officer cannot resolve what the education office owns.
    let (status, _, _) = post.post(&format!("{location}/resolve"), &[("resolution", "done")]).await;
    assert_eq!(status, 403);
    // The family follows it with the ticket and the NIK; a wrong NIK learns nothing.
    let c = client();
    let res = c
        .post(app.url("/pengaduan"))
        .form(&[("ticket", ticket.as_str()), ("nik", CAR_OWNED)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("Sedang diproses") && body.contains("Diteruskan ke Dinas Pendidikan"), "{body}");
    assert!(!body.contains("catatan-internal"), "internal notes stay internal: {body}");
    let res = c
        .post(app.url("/pengaduan"))
        .form(&[("ticket", ticket.as_str()), ("nik", RECIPIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    let miss = res.text().await.unwrap();
    let res = c
        .post(app.url("/pengaduan"))
        .form(&[("ticket", "KJP-2025-999999"), ("nik", CAR_OWNED)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.text().await.unwrap().replace("KJP-2025-999999", &ticket),
        miss.replace(RECIPIENT, CAR_OWNED)
    );
    // The education office resolves it with the Samsat block: a correction for the next amendment.
    let admin_pw = add(&app, "disdik", "admin", "").await;
    let admin = sign_in(&app, "disdik", &admin_pw).await;
    let (status, _, body) = admin
        .post(
            &format!("{location}/resolve"),
            &[("resolution", "Mobil sudah diblokir"), ("fact", "family_car=no")],
        )
        .await;
    assert_eq!(status, 400, "a correction needs its evidence: {body}");
    assert!(body.contains("memerlukan bukti") && body.contains("family_car=no"), "{body}");
    let (status, _, body) = admin
        .post(
            &format!("{location}/resolve"),
            &[
                ("resolution", "Mobil sudah diblokir"),
                ("public_note", "Data mobil dikoreksi."),
                ("fact", "family_car=no"),
                ("evidence", "Samsat blokir No. 12/2025 2025-04-02"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let pending = app.store.corrections(stage(), true).await.expect("corrections");
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].nik.as_str(), pending[0].status_before.as_str()), (CAR_OWNED, "ineligible"));
    assert_eq!(pending[0].status_after, "eligible");
    assert!(pending[0].evidence.contains("Samsat blokir"));
    let c = app.store.complaint(&ticket).await.unwrap().unwrap();
    assert_eq!(c.state, "resolved");
    let history = app.store.complaint_events(&ticket).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["opened", "routed to education", "note", "resolved"]
    );
    assert!(history[2].note.contains("sebelum ineligible, sesudah eligible"), "{:?}", history[2]);
    assert_eq!(
        app.store.verify_audit().await.expect("verify"),
        Ok(app.store.audit_entries(1, "").await.unwrap()[0].seq)
    );
}

#[tokio::test]
async fn a_dtks_complaint_goes_to_the_social_office_of_that_kecamatan_only() {
    let app = spawn(true, 10_000).await;
    let ticket = complaint(&app, RECIPIENT, "not_in_dtks", None).await;
    let social_pw = add(&app, "dinsos.gambir", "social", "31.71.01").await;
    let other_pw = add(&app, "dinsos.tanahabang", "social", "31.71.02").await;
    let social = sign_in(&app, "dinsos.gambir", &social_pw).await;
    let (status, _) = social.get(&format!("/staff/complaints/{ticket}")).await;
    assert_eq!(status, 403, "not routed yet");
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let post = sign_in(&app, "pos.gambir", &pw).await;
    let (_, page) = post.get(&format!("/staff/complaints/{ticket}")).await;
    assert!(page.contains(r#"<option value="social:31.71.01" selected>"#), "suggested route: {page}");
    let (status, _, _) =
        post.post(&format!("/staff/complaints/{ticket}/route"), &[("to", "social:31.71.01")]).await;
    assert_eq!(status, 303);
    let (status, page) = social.get("/staff/complaints").await;
    assert_eq!(status, 200);
    assert!(page.contains(&ticket), "{page}");
    let other = sign_in(&app, "dinsos.tanahabang", &other_pw).await;
    let (_, page) = other.get("/staff/complaints").await;
    assert!(!page.contains(&ticket), "{page}");
    let (status, _) = other.get(&format!("/staff/complaints/{ticket}")).await;
    assert_eq!(status, 403);
    let (status, _, body) = social
        .post(
            &format!("/staff/complaints/{ticket}/resolve"),
            &[("resolution", "Didaftarkan ke DTKS lewat MPM")],
        )
        .await;
    assert_eq!(status, 303, "{body}");
}

#[tokio::test]
async fn the_review_queue_shows_both_sources_and_what_blocks_the_decree() {
    let app = spawn(false, 10_000).await;
    let pw = add(&app, "disdik", "admin", "").await;
    let admin = sign_in(&app, "disdik", &pw).await;
    let (status, page) = admin.get("/staff/review").await;
    assert_eq!(status, 200, "{page}");
    let blocking = app.store.decisions_with_status(stage(), "review").await.unwrap().len();
    assert!(blocking > 0);
    assert!(page.contains(&format!("<strong>{blocking}</strong> keputusan review")), "{page}");
    assert!(page.contains("Bapenda (baris") && page.contains("Samsat (baris"), "side by side: {page}");
    assert!(page.contains(&format!("Kasus 1-{blocking} dari {blocking}")), "one page: {page}");
    let (status, _, body) = admin
        .post("/staff/review/resolve", &[("stage", "2025/1"), ("nik", CAR_CONFLICT), ("outcome", "eligible")])
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("tuliskan alasannya"), "{body}");
    let (status, _, body) = admin
        .post(
            "/staff/review/resolve",
            &[
                ("stage", "2025/1"),
                ("nik", CAR_CONFLICT),
                ("outcome", "eligible"),
                ("reason", "Samsat blokir 2024"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(app.store.decisions_with_status(stage(), "review").await.unwrap().len(), blocking - 1);
    let d = app.store.decision(stage(), CAR_CONFLICT).await.unwrap().unwrap();
    assert_eq!(d.status, "eligible");
}

#[tokio::test]
async fn dashboards_chart_and_export_within_the_scope() {
    let app = spawn(true, 10_000).await;
    complaint(&app, RECIPIENT, "other", None).await;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let s = sign_in(&app, "pos.gambir", &pw).await;
    let (status, page) = s.get("/staff/dashboard").await;
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && page.contains("<rect"), "{page}");
    assert!(page.contains("Gambir") && page.contains("EXCLUDED_CAR"), "{page}");
    let (status, csv) = s.get("/staff/dashboard.csv?stage=2025/1").await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("table,key,label,count,monthly_total\n"), "{csv}");
    assert!(csv.contains("level,SMP,SMP,1,470000"), "{csv}");
    assert!(csv.contains("complaints,open,"), "{csv}");
    let res = s
        .client
        .get(app.url("/staff/dashboard.xlsx?stage=2025/1"))
        .header("cookie", format!("kjp_staff={}", s.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK", "an XLSX is a zip");
    // Another kecamatan's officer sees none of Gambir's children.
    let pw = add(&app, "pos.tanahabang", "post", "31.71.02").await;
    let other = sign_in(&app, "pos.tanahabang", &pw).await;
    let (_, csv) = other.get("/staff/dashboard.csv?stage=2025/1").await;
    assert!(!csv.contains("level,"), "{csv}");
}

#[tokio::test]
async fn every_auditor_read_is_recorded_and_the_chain_holds() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "bpk", "auditor", "").await;
    let s = sign_in(&app, "bpk", &pw).await;
    let (status, page) = s.get("/staff/audit").await;
    assert_eq!(status, 200);
    assert!(page.contains("Rantai utuh"), "{page}");
    s.get("/staff/dashboard").await;
    let reads = app.store.audit_entries(50, "bpk").await.unwrap();
    let paths: Vec<&str> = reads.iter().filter(|e| e.action == "read").map(|e| e.subject.as_str()).collect();
    assert!(paths.contains(&"GET /staff/audit") && paths.contains(&"GET /staff/dashboard"), "{paths:?}");
    let (status, _, _) = s.post("/staff/users", &[("username", "x"), ("role", "admin")]).await;
    assert_eq!(status, 403, "read-only");
    assert!(app.store.verify_audit().await.unwrap().is_ok());
}

#[tokio::test]
async fn bad_input_on_the_other_forms_gets_a_message_and_keeps_what_was_typed() {
    let app = spawn(false, 10_000).await;
    let pw = add(&app, "disdik", "admin", "").await;
    let admin = sign_in(&app, "disdik", &pw).await;
    // The sign-in form keeps the username.
    let (status, body, _) = try_sign_in(&app, "disdik", "").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Isi nama pengguna dan kata sandi") && body.contains(r#"value="disdik""#),
        "{body}"
    );
    // A new account.
    let (status, _, body) = admin
        .post("/staff/users", &[("username", "Pos Gambir"), ("role", "post"), ("scope", "31.71.99")])
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("3 to 32 characters") && body.contains(r#"value="Pos Gambir""#), "{body}");
    let (status, _, body) = admin
        .post("/staff/users", &[("username", "pos.gambir"), ("role", "post"), ("scope", "31.71.99")])
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("is not one of Jakarta") && body.contains(r#"value="31.71.99""#), "{body}");
    assert!(body.contains(r#"<option value="post" selected>"#), "{body}");
    let (status, _, body) = admin
        .post("/staff/users", &[("username", "pos.gambir"), ("role", "post"), ("scope", "31.71.01")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"id="password""#), "the new password is shown once: {body}");
    // A review decision without its reason keeps the outcome chosen.
    let (status, _, body) = admin
        .post(
            "/staff/review/resolve",
            &[("stage", "2025/1"), ("nik", CAR_CONFLICT), ("outcome", "ineligible")],
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains(r#"<option value="ineligible" selected>"#), "{body}");
    // A note too long comes back whole.
    let ticket = complaint(&app, RECIPIENT, "other", None).await;
    let long = "x".repeat(2001);
    let (status, _, body) = admin.post(&format!("/staff/complaints/{ticket}/note"), &[("note", &long)]).await;
    assert_eq!(status, 400);
    assert!(body.contains("terlalu panjang") && body.contains(&long), "{body}");
    // Routing nowhere.
    let (status, _, body) = admin.post(&format!("/staff/complaints/{ticket}/route"), &[("to", "mars")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("Pilih tujuan"), "{body}");
    // The family's follow-up form.
    let res = client()
        .post(app.url("/pengaduan"))
        .form(&[("ticket", "kjp-2025-1"), ("nik", "3171")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("NIK harus 16 angka")
            && body.contains(r#"value="KJP-2025-1""#)
            && body.contains(r#"value="3171""#),
        "{body}"
    );
}

#[tokio::test]
async fn changing_ones_password_signs_out_the_other_sessions() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let here = sign_in(&app, "pos.gambir", &pw).await;
    let elsewhere = sign_in(&app, "pos.gambir", &pw).await;
    let new = "a new long password";
    let (status, _, body) =
        here.post("/staff/password", &[("current", &pw), ("new", "short"), ("again", "short")]).await;
    assert_eq!(status, 400);
    assert!(body.contains("minimal 12 karakter"), "{body}");
    let (status, _, body) =
        here.post("/staff/password", &[("current", "wrong"), ("new", new), ("again", new)]).await;
    assert_eq!(status, 400);
    assert!(body.contains("sekarang salah"), "{body}");
    let (status, _, body) =
        here.post("/staff/password", &[("current", &pw), ("new", new), ("again", new)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"id="done""#), "{body}");
    assert_eq!(here.get("/staff").await.0, 200, "this session goes on");
    assert_eq!(elsewhere.get("/staff").await.0, 303, "the other one is signed out");
    assert_eq!(try_sign_in(&app, "pos.gambir", &pw).await.0, 401);
    sign_in(&app, "pos.gambir", new).await;
}

/// `table,key` -> count, from the dashboard's CSV.
fn counts(csv: &str) -> std::collections::BTreeMap<String, i64> {
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((format!("{},{}", f.first()?, f.get(1)?), f.get(3)?.parse().ok()?))
        })
        .collect()
}

/// The dashboard's counts of 2025/1, as the CSV export gives them.
async fn dashboard_counts(s: &Session) -> std::collections::BTreeMap<String, i64> {
    counts(&s.get("/staff/dashboard.csv?stage=2025/1").await.1)
}

/// One count, 0 when the table has no such row.
fn n(m: &std::collections::BTreeMap<String, i64>, key: &str) -> i64 {
    m.get(key).copied().unwrap_or(0)
}

#[tokio::test]
async fn dashboards_count_the_stage_as_amended() {
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "disdik", "admin", "").await;
    let s = sign_in(&app, "disdik", &pw).await;
    let before = dashboard_counts(&s).await;
    let req = kjp_import::amend::CorrectionRequest {
        nik: kjp_domain::Nik::parse(CAR_OWNED).unwrap(),
        change: kjp_import::amend::Change::Facts(vec![("family_car".into(), "no".into())]),
        reason: "car sold".into(),
        evidence: "Samsat block".into(),
        by: "tester".into(),
    };
    kjp_import::amend::correct(&app.store, stage(), &req).await.expect("correct");
    assert_eq!(dashboard_counts(&s).await, before, "a pending correction counts once published");
    let decree = kjp_import::decree::DecreeRequest {
        number: "301/2025".into(),
        date: "2025-04-10".parse().unwrap(),
        note: String::new(),
    };
    kjp_import::amend::amend(&app.store, stage(), &decree).await.expect("amend");
    let after = dashboard_counts(&s).await;
    assert_eq!(n(&after, "status,eligible"), n(&before, "status,eligible") + 1, "{after:?}");
    assert_eq!(n(&after, "status,ineligible"), n(&before, "status,ineligible") - 1, "{after:?}");
    assert_eq!(n(&after, "level,SD"), n(&before, "level,SD") + 1, "{after:?}");
    assert_eq!(n(&after, "kecamatan,31.71.01"), n(&before, "kecamatan,31.71.01") + 1, "{after:?}");
    let recipients = app.store.recipients(stage()).await.unwrap();
    assert_eq!(
        n(&after, "status,eligible"),
        recipients.len() as i64,
        "the dashboard agrees with the decree as amended"
    );
}

#[tokio::test]
async fn a_stage_not_yet_decreed_is_counted_afresh_on_every_view() {
    let app = spawn(false, 10_000).await;
    let pw = add(&app, "disdik", "admin", "").await;
    let s = sign_in(&app, "disdik", &pw).await;
    let before = dashboard_counts(&s).await;
    let nik = kjp_domain::Nik::parse(DTKS_OUTSIDE).unwrap();
    kjp_import::decree::resolve_one(
        &app.store,
        stage(),
        &kjp_domain::Policy::kjp_plus(),
        &nik,
        kjp_domain::Status::Eligible,
        "lives in Gambir",
        "tester",
    )
    .await
    .expect("resolve");
    let after = dashboard_counts(&s).await;
    assert_eq!(n(&after, "status,review"), n(&before, "status,review") - 1, "{before:?} {after:?}");
    assert_eq!(n(&after, "status,eligible"), n(&before, "status,eligible") + 1, "{before:?} {after:?}");
}

#[tokio::test]
async fn the_complaint_list_puts_overdue_first_and_finds_a_ticket() {
    let app = spawn(true, 10_000).await;
    let recent = complaint(&app, RECIPIENT, "other", None).await;
    let c = Complaint {
        stage: "2025/1".into(),
        nik: CAR_OWNED.into(),
        category: "asset".into(),
        kecamatan: "31.71.01".into(),
        owner: "post:31.71.01".into(),
        opened_by: "tester".into(),
        opened_at: "2025-01-02T03:00:00.000Z".into(),
        due_date: "2025-01-16".into(),
        ..Complaint::default()
    };
    let late = app.store.open_complaint(&c, "received").await.expect("open").ticket;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let s = sign_in(&app, "pos.gambir", &pw).await;
    let (_, page) = s.get("/staff/complaints").await;
    let (a, b) = (page.find(&late).expect("the late one"), page.find(&recent).expect("the recent one"));
    assert!(a < b, "overdue first: {page}");
    assert!(page.contains("(lewat)"), "{page}");
    let (_, page) = s.get(&format!("/staff/complaints?show=all&q={}", recent.to_lowercase())).await;
    assert!(page.contains(&recent) && !page.contains(&late), "{page}");
}

#[tokio::test]
async fn the_office_makes_an_api_client_whose_token_works_until_revoked() {
    let app = spawn(true, 0).await;
    let pw = add(&app, "dinas", "admin", "").await;
    let admin = sign_in(&app, "dinas", &pw).await;
    let whoami = |token: String| {
        let c = client();
        let url = app.url("/api/v1/client");
        async move { c.get(url).bearer_auth(token).send().await.expect("whoami").status().as_u16() }
    };

    let fields = [("name", "bankdki"), ("agency", "Bank DKI"), ("scopes", "decree.export, registry.search")];
    let (status, _, body) = admin.post("/staff/clients", &fields).await;
    assert_eq!(status, 200, "{body}");
    let token =
        body.split("<code id=\"token\">").nth(1).and_then(|t| t.split('<').next()).expect("the token shown");
    assert_eq!(whoami(token.to_string()).await, 200);
    assert!(body.contains("decree.export registry.search"), "listed with its scopes");

    for (fields, message) in [
        ([("name", "bankdki"), ("agency", "Bank DKI"), ("scopes", "decree.export")], "exists"),
        ([("name", "x"), ("agency", "Bank DKI"), ("scopes", "decree.export")], "3 to 32 characters"),
        ([("name", "other"), ("agency", "Bank DKI"), ("scopes", "root")], "one of registry.search"),
    ] {
        let (status, _, body) = admin.post("/staff/clients", &fields).await;
        assert!([400, 409].contains(&status), "{fields:?}: {status}");
        assert!(body.contains(message), "{fields:?}: {body}");
        assert!(body.contains("value=\"Bank DKI\""), "what was typed is kept");
    }

    let (status, _, body) = admin.post("/staff/clients/bankdki/revoke", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(whoami(token.to_string()).await, 401, "refused at once");
    assert_eq!(admin.post("/staff/clients/bankdki/revoke", &[]).await.0, 409, "already revoked");
    assert_eq!(admin.post("/staff/clients/nobody/revoke", &[]).await.0, 404);

    let log = app.store.audit_entries(50, "").await.unwrap();
    for action in ["client.add", "client.revoke"] {
        assert!(
            log.iter().any(|e| e.actor == "dinas" && e.action == action && e.subject == "bankdki"),
            "{action}"
        );
    }
}
