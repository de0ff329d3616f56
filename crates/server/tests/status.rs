//! The public status check, black box: a real server on port 0 over a fresh store per test.

mod common;
use common::*;

fn form<'a>(nik: &'a str, birth_date: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("nik", nik), ("birth_date", birth_date), ("year", "2025"), ("stage", "1")]
}

fn query<'a>(nik: &'a str, birth_date: &'a str) -> Vec<(&'a str, &'a str)> {
    form(nik, birth_date)
}

#[tokio::test]
async fn recipient_on_the_page_with_masked_name_amount_and_months() {
    let app = spawn(true, 1000).await;
    let (code, body) = app.check(&form(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("PENERIMA KJP Plus"), "{body}");
    assert!(body.contains("A*** S***"), "{body}");
    assert!(!body.contains("Adi Saputra"), "the full name must not be shown");
    assert!(body.contains("SMP"), "{body}");
    assert!(body.contains("Rp 470.000"), "{body}");
    assert!(body.contains("Januari 2025") && body.contains("Juni 2025"), "{body}");
    // The English switch is kept in the form.
    let mut en = form(RECIPIENT, RECIPIENT_BIRTH);
    en.push(("lang", "en"));
    let (_, body) = app.check(&en).await;
    assert!(body.contains("RECIPIENT") && body.contains("January 2025"), "{body}");
    assert!(body.contains(r#"name="lang" value="en""#), "{body}");
    // Parents write the date day first; the page understands it.
    let (code, body) = app.check(&form(RECIPIENT, "04-03-2012")).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("PENERIMA KJP Plus"), "{body}");
}

#[tokio::test]
async fn recipient_as_json() {
    let app = spawn(true, 1000).await;
    let (code, v) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "recipient");
    assert_eq!(v["level"], "SMP");
    assert_eq!(v["monthly"]["total"], 470_000);
    assert_eq!(
        v["monthly"]["routine"].as_i64().unwrap()
            + v["monthly"]["periodic"].as_i64().unwrap()
            + v["monthly"]["school_fee"].as_i64().unwrap(),
        470_000
    );
    assert_eq!(
        v["benefit_months"],
        serde_json::json!(["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"])
    );
    assert!(v.get("reasons").is_none(), "{v}");
    // Lookups never touch the database: with the store closed the answer is the same.
    app.store.close().await;
    let (code, again) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!((code, &again), (200, &v));
    // The API takes ISO dates only.
    let (code, v) = app.api(&query(RECIPIENT, "04-03-2012")).await;
    assert_eq!((code, v["field"].as_str()), (400, Some("birth_date")), "{v}");
}

#[tokio::test]
async fn not_recipient_gets_the_reason_in_plain_words_and_what_to_do() {
    let app = spawn(true, 1000).await;
    let (code, body) = app.check(&form(CAR_OWNED, CAR_OWNED_BIRTH)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("BUKAN penerima"), "{body}");
    assert!(body.contains("Keluarga tercatat memiliki kendaraan roda empat"), "{body}");
    assert!(body.contains("pos pelayanan KJP Plus di kantor kecamatan"), "{body}");
    assert!(body.contains("Senin sampai Jumat pukul 08.00 sampai 15.00 WIB"), "{body}");
    assert!(body.contains("DTKS"), "{body}");
    assert!(!body.contains("C***"), "no name for a child who is not a recipient");

    let (code, v) = app.api(&query(CAR_OWNED, CAR_OWNED_BIRTH)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "not_recipient");
    assert_eq!(v["reasons"][0]["code"], "EXCLUDED_CAR");
    assert!(v["reasons"][0]["text_id"].as_str().unwrap().contains("kendaraan roda empat"), "{v}");
    assert!(v["reasons"][0]["text_en"].as_str().unwrap().contains("four-wheeled vehicle"), "{v}");
}

#[tokio::test]
async fn eligible_but_unfunded_gets_the_ceiling_and_what_it_means_for_the_next_stage() {
    let app = spawn(true, 1000).await;
    let (code, body) = app.check(&form(UNFUNDED, UNFUNDED_BIRTH)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("MEMENUHI SYARAT, tetapi BELUM MENDAPAT DANA"), "{body}");
    assert!(body.contains("anggaran tahap ini tidak mencukupi"), "{body}");
    assert!(body.contains("dinilai kembali tanpa perlu mendaftar ulang"), "{body}");
    assert!(body.contains("Rp 420.000"), "what the child would receive: {body}");

    let (code, v) = app.api(&query(UNFUNDED, UNFUNDED_BIRTH)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!((v["status"].as_str(), v["level"].as_str()), (Some("unfunded"), Some("SMA")));
    assert_eq!(v["reasons"][0]["code"], "BUDGET_CEILING");
    assert!(v.get("monthly").is_none(), "nothing is paid: {v}");
}

#[tokio::test]
async fn an_amendment_is_published_on_reload() {
    use kjp_import::amend::{self, Change, CorrectionRequest};
    let app = spawn(true, 1000).await;
    assert_eq!(app.api(&query(CAR_OWNED, CAR_OWNED_BIRTH)).await.1["status"], "not_recipient");
    let s = stage();
    let correction = |nik: &str, change| CorrectionRequest {
        nik: kjp_domain::Nik::parse(nik).expect("nik"),
        change,
        reason: "checked at the service post".into(),
        evidence: "Samsat block 2025-04-02".into(),
        by: "officer".into(),
    };
    let no_car = Change::Facts(vec![("family_car".into(), "no".into())]);
    amend::correct(&app.store, s, &correction(CAR_OWNED, no_car)).await.expect("correct");
    let moved = Change::Outcome(kjp_domain::Status::Ineligible);
    amend::correct(&app.store, s, &correction(RECIPIENT, moved)).await.expect("correct");
    let req = kjp_import::decree::DecreeRequest {
        number: "301/2025".into(),
        date: "2025-04-10".parse().expect("date"),
        note: String::new(),
    };
    amend::amend(&app.store, s, &req).await.expect("amend");
    app.state.reload().await.expect("reload");
    let (_, added) = app.api(&query(CAR_OWNED, CAR_OWNED_BIRTH)).await;
    assert_eq!(
        (added["status"].as_str(), added["monthly"]["total"].as_i64()),
        (Some("recipient"), Some(250_000))
    );
    let (_, removed) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(removed["status"], "not_recipient", "{removed}");
    assert_eq!(removed["reasons"][0]["code"], "OFFICER_DECISION", "{removed}");
}

#[tokio::test]
async fn unknown_nik_and_wrong_birth_date_get_the_same_answer() {
    let app = spawn(true, 1000).await;
    // The same date for both, so the echoed input differs only in the NIK.
    let (c1, unknown) = app.check(&form(UNKNOWN, "2012-03-05")).await;
    let (c2, wrong) = app.check(&form(RECIPIENT, "2012-03-05")).await;
    assert_eq!((c1, c2), (200, 200));
    assert!(unknown.contains("Data tidak ditemukan"), "{unknown}");
    assert_eq!(unknown.replace(UNKNOWN, "NIK"), wrong.replace(RECIPIENT, "NIK"));
    // A child who is in the data but not a recipient, with a wrong date: the same again.
    let (c3, wrong_other) = app.check(&form(CAR_OWNED, "2012-03-05")).await;
    assert_eq!(c3, 200);
    assert_eq!(wrong_other.replace(CAR_OWNED, "NIK"), wrong.replace(RECIPIENT, "NIK"));

    let (c1, v1) = app.api(&query(UNKNOWN, RECIPIENT_BIRTH)).await;
    let (c2, v2) = app.api(&query(RECIPIENT, "2012-03-05")).await;
    assert_eq!((c1, &v1), (c2, &v2));
    assert_eq!(v1, serde_json::json!({"status": "not_found"}));
}

#[tokio::test]
async fn each_bad_field_gets_its_own_message_and_the_form_keeps_the_input() {
    let app = spawn(true, 1000).await;
    let cases = [
        ("nik", "317101040312000", RECIPIENT_BIRTH, "2025", "1", "NIK harus 16 angka; yang diisi 15 angka."),
        ("nik", "31710104031200AB", RECIPIENT_BIRTH, "2025", "1", "NIK hanya boleh berisi angka."),
        ("nik", "9971010403120001", RECIPIENT_BIRTH, "2025", "1", "NIK tidak valid: kode provinsi"),
        (
            "nik",
            "3171013403120001",
            RECIPIENT_BIRTH,
            "2025",
            "1",
            "NIK tidak valid: tanggal lahir di dalam NIK",
        ),
        ("birth_date", RECIPIENT, "2012/03/04", "2025", "1", "Tulis tanggal lahir sebagai HH-BB-TTTT"),
        ("birth_date", RECIPIENT, "2012-02-30", "2025", "1", "Tanggal 2012-02-30 tidak ada di kalender."),
        ("year", RECIPIENT, RECIPIENT_BIRTH, "20x5", "1", "Tahun harus empat angka"),
        ("stage", RECIPIENT, RECIPIENT_BIRTH, "2025", "3", "Tahap harus 1 atau 2."),
    ];
    for (field, nik, birth, year, stage, message) in cases {
        let (code, body) =
            app.check(&[("nik", nik), ("birth_date", birth), ("year", year), ("stage", stage)]).await;
        assert_eq!(code, 400, "{field}: {body}");
        let marker = format!(r#"<p class="field-error" id="{field}-error">{message}"#);
        assert!(body.contains(&marker), "{field}: expected {marker:?} in {body}");
        assert_eq!(body.matches("field-error\"").count(), 1, "only {field} is marked: {body}");
        assert!(body.contains(&format!(r#"value="{nik}""#)), "the NIK typed is kept: {body}");
        assert!(!body.contains("PENERIMA"), "{body}");

        let (code, v) =
            app.api(&[("nik", nik), ("birth_date", birth), ("year", year), ("stage", stage)]).await;
        assert_eq!(code, 400, "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    // A missing parameter names its field too.
    let (code, v) = app.api(&[("nik", RECIPIENT), ("year", "2025"), ("stage", "1")]).await;
    assert_eq!((code, v["field"].as_str()), (400, Some("birth_date")), "{v}");
    // Input is escaped, never interpreted.
    let (_, body) = app.check(&form("<script>", RECIPIENT_BIRTH)).await;
    assert!(!body.contains("<script>") && body.contains("&#60;script&#62;"), "{body}");
}

#[tokio::test]
async fn in_process_until_the_decree_then_published_on_reload() {
    let app = spawn(false, 1000).await;
    let (code, body) = app.check(&form(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(code, 200);
    assert!(body.contains("Masih dalam proses"), "{body}");
    // In process says nothing about the child: an unknown NIK gets the same.
    let (_, unknown) = app.check(&form(UNKNOWN, RECIPIENT_BIRTH)).await;
    assert_eq!(unknown.replace(UNKNOWN, "NIK"), body.replace(RECIPIENT, "NIK"));
    let (_, v) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(v, serde_json::json!({"status": "in_process"}));
    // A stage the store has never seen is in process too.
    let (_, v) = app
        .api(&[("nik", RECIPIENT), ("birth_date", RECIPIENT_BIRTH), ("year", "2026"), ("stage", "2")])
        .await;
    assert_eq!(v["status"], "in_process");

    decree_stage(&app.store).await;
    // The index is immutable: nothing changes until it is rebuilt ...
    assert_eq!(app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await.1["status"], "in_process");
    app.state.reload().await.expect("reload");
    // ... and then the decree is published.
    assert_eq!(app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await.1["status"], "recipient");
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = spawn(true, 1000).await;
    for req in [
        app.client.get(app.url("/")),
        app.client.get(app.url("/healthz")),
        app.client.get(app.url("/api/v1/status?nik=1")),
        app.client.post(app.url("/cek")).form(&form(RECIPIENT, RECIPIENT_BIRTH)),
        app.client.get(app.url("/no-such-page")),
    ] {
        let res = req.send().await.expect("request");
        let h = res.headers();
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{csp}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
    }
    let home = app.client.get(app.url("/")).send().await.expect("home").text().await.expect("body");
    assert!(home.contains(r#"<form method="post" action="/cek""#), "{home}");
    assert!(home.contains(r#"name="viewport""#) && !home.contains("<script"), "{home}");
    assert!(home.contains("Cek Status KJP Plus") && home.contains(r#"href="/?lang=en""#), "{home}");
    let en = app.client.get(app.url("/?lang=en")).send().await.expect("en").text().await.expect("body");
    assert!(
        en.contains("KJP Plus and KJMU Status Check") && en.contains(r#"name="lang" value="en""#),
        "{en}"
    );
    let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let missing = app.client.get(app.url("/no-such-page")).send().await.expect("404");
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.expect("body").contains("Halaman tidak ditemukan"));
}

#[tokio::test]
async fn too_many_requests_get_a_friendly_429() {
    let app = spawn(true, 3).await;
    for _ in 0..3 {
        assert_eq!(app.check(&form(RECIPIENT, RECIPIENT_BIRTH)).await.0, 200);
    }
    let (code, body) = app.check(&form(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(code, 429);
    assert!(body.contains("Terlalu banyak permintaan"), "{body}");
    let (code, v) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(code, 429);
    assert!(v["error"].as_str().unwrap().contains("too many requests"), "{v}");
    // Health checks are not limited.
    let health = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let config = kjp_server::Config {
        rate_per_minute: 2,
        trusted_proxies: vec!["127.0.0.0/8".parse().expect("net")],
        ..kjp_server::Config::default()
    };
    let app = spawn_with(true, config).await;
    let from = |client: &'static str| {
        let req = app.client.get(app.url("/api/v1/status")).query(&query(RECIPIENT, RECIPIENT_BIRTH));
        async move { req.header("x-forwarded-for", client).send().await.expect("request").status().as_u16() }
    };
    assert_eq!([from("203.0.113.7").await, from("203.0.113.7").await], [200, 200]);
    assert_eq!(from("203.0.113.7").await, 429, "the client's own limit");
    assert_eq!(from("198.51.100.9").await, 200, "another client behind the same proxy is not held back");
    // A client cannot escape its limit by writing the header itself: the proxy appends the
    // address it saw, and that is the one counted.
    assert_eq!(from("192.0.2.1, 203.0.113.7").await, 429);

    // Not trusted: the header is ignored and the proxy is one client.
    let app = spawn(true, 2).await;
    for (client, expected) in [("203.0.113.7", 200), ("198.51.100.9", 200), ("192.0.2.1", 429)] {
        let req = app.client.get(app.url("/api/v1/status")).query(&query(RECIPIENT, RECIPIENT_BIRTH));
        let status = req.header("x-forwarded-for", client).send().await.expect("request").status().as_u16();
        assert_eq!(status, expected, "{client}");
    }
}

#[tokio::test]
async fn kjmu_students_check_their_status_under_their_programme() {
    let app = spawn(true, 1000).await;
    let s = kjp_domain::Stage::of(kjp_domain::Programme::Kjmu, 2025, 1).expect("stage");
    let policy = kjp_domain::Policy::kjmu();
    kjp_import::stage::open(&app.store, s).await.expect("open");
    let no_progress = |_: &str, _: u64, _: u64| {};
    kjp_import::stage::verify(&app.store, s, &policy, &no_progress).await.expect("verify");
    let req = kjp_import::decree::DecreeRequest {
        number: "300/2025".into(),
        date: "2025-03-10".parse().expect("date"),
        note: String::new(),
    };
    kjp_import::decree::decree(&app.store, s, &policy, &req).await.expect("decree");
    app.state.reload().await.expect("reload");

    let kjmu = |nik: &'static str, birth: &'static str| {
        vec![("programme", "kjmu"), ("nik", nik), ("birth_date", birth), ("year", "2025"), ("stage", "1")]
    };
    let (code, v) = app.api(&kjmu("3171015505060009", "2006-05-15")).await;
    assert_eq!(
        (code, v["status"].as_str(), v["level"].as_str()),
        (200, Some("recipient"), Some("S1")),
        "{v}"
    );
    assert_eq!(
        (v["monthly"]["school_fee"].as_i64(), v["monthly"]["total"].as_i64()),
        (Some(500_000), Some(1_500_000))
    );
    // The reason in KJMU's own words, from the policy the stage was decided under.
    let (_, v) = app.api(&kjmu("3171011708050010", "2005-08-17")).await;
    assert_eq!(
        (v["status"].as_str(), v["reasons"][0]["code"].as_str()),
        (Some("not_recipient"), Some("NOT_IN_DTKS"))
    );
    assert!(
        v["reasons"][0]["text_id"].as_str().unwrap().starts_with("Keluarga tidak terdaftar dalam DTKS"),
        "{v}"
    );
    // The same student under KJP Plus is nobody the check knows.
    assert_eq!(app.api(&query("3171015505060009", "2006-05-15")).await.1["status"], "not_found");
    let mut bad = kjmu("3171015505060009", "2006-05-15");
    bad[0].1 = "kjmx";
    let (code, v) = app.api(&bad).await;
    assert_eq!((code, v["field"].as_str()), (400, Some("programme")), "{v}");

    let (code, page) = app.check(&kjmu("3171015505060009", "15-05-2006")).await;
    assert_eq!(code, 200);
    assert!(page.contains("PENERIMA KJMU") && page.contains("R*** S***"), "{page}");
    assert!(page.contains("dibayarkan ke perguruan tinggi") && page.contains("Rp 500.000"), "{page}");
    assert!(!page.contains("SPP sekolah swasta"), "{page}");
    assert!(page.contains(r#"<option value="kjmu" selected>"#), "the form keeps the programme: {page}");
}

#[tokio::test]
async fn a_sanctioned_recipient_is_revoked_with_the_reason_and_what_to_do() {
    let app = spawn(true, 1000).await;
    let req = kjp_import::money::SanctionRequest {
        nik: kjp_domain::Nik::parse(RECIPIENT).expect("nik"),
        category: "MISUSE_OF_FUNDS".into(),
        evidence: "school report 12/2025: the card paid for a game console".into(),
        date: "2025-03-15".parse().expect("date"),
        school: kjp_domain::Npsn::parse("20100001").expect("npsn"),
        by: "school operator".into(),
    };
    // The index is immutable: the answer changes on the next rebuild, not before.
    assert_eq!(app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await.1["status"], "recipient");
    kjp_import::money::add_sanction(&app.store, &kjp_domain::Policy::kjp_plus(), &req)
        .await
        .expect("sanction");
    app.state.reload().await.expect("reload");

    let (code, v) = app.api(&query(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert_eq!(
        (code, v["status"].as_str(), v["since"].as_str()),
        (200, Some("revoked"), Some("2025-03-15")),
        "{v}"
    );
    assert_eq!(v["reasons"][0]["code"], "MISUSE_OF_FUNDS");
    assert!(v["reasons"][0]["text_id"].as_str().unwrap().contains("di luar peruntukan"), "{v}");
    assert!(v.get("monthly").is_none(), "{v}");
    let (_, page) = app.check(&form(RECIPIENT, RECIPIENT_BIRTH)).await;
    assert!(page.contains("DICABUT karena sanksi") && page.contains("15 Maret 2025"), "{page}");
    assert!(page.contains("dapat dicabut atas rekomendasi sekolah"), "{page}");
    // Another child of the stage is not touched.
    assert_eq!(app.api(&query(CAR_OWNED, CAR_OWNED_BIRTH)).await.1["status"], "not_recipient");
}
