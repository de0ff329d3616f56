//! The staff console in headless Chromium, through WebDriver: a post officer's day (sign
//! in, find a child, open a complaint, route it; the family follows it) and a refused
//! cross-kecamatan look-up, on a phone-sized window.
//!
//! Needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium,
//! /usr/bin/chromedriver). Missing, the test fails with the install command, unless
//! `KJP_SKIP_BROWSER=1`.

mod common;
use common::*;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver, or says why not: `None` only when the browser tests are skipped.
async fn driver() -> Option<Driver> {
    if std::env::var_os("KJP_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("KJP_SKIP_BROWSER=1: browser tests skipped");
        return None;
    }
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser tests need Chromium and its WebDriver: apt-get install -y chromium chromium-driver \
         (or set KJP_SKIP_BROWSER=1 to skip them)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start listening on port {port}");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=390,844"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let c = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session");
    // A phone.
    c.set_window_size(390, 844).await.ok();
    c
}

/// The app's address as a browser should use it: `localhost` is a secure context, so the
/// Secure session cookie is kept over plain HTTP in a test.
fn url(app: &TestApp, path: &str) -> String {
    format!("http://localhost:{}{path}", app.addr.port())
}

async fn fill(c: &Client, id: &str, text: &str) {
    let e = c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
    e.clear().await.ok();
    e.send_keys(text).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
}

/// Clicks a submit button and waits until the browser has left the page.
async fn click(c: &Client, id: &str) {
    let old = c.find(Locator::Css("html")).await.expect("a page");
    c.find(Locator::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}")).click().await.expect("click");
    for _ in 0..200 {
        // The old page's root goes stale once the next page has replaced it.
        if old.tag_name().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking #{id} did not lead to another page");
}

async fn text(c: &Client, id: &str) -> String {
    let e = c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Id(id)).await;
    e.unwrap_or_else(|e| panic!("#{id}: {e}")).text().await.expect("text")
}

async fn sign_in(c: &Client, app: &TestApp, username: &str, password: &str) {
    c.goto(&url(app, "/staff/login")).await.expect("login page");
    fill(c, "username", username).await;
    fill(c, "password", password).await;
    click(c, "signin").await;
    let here = c.current_url().await.expect("url");
    assert_eq!(here.path(), "/staff", "signed in: {}", c.source().await.unwrap_or_default());
}

/// With `KJP_SCREENSHOTS=DIR`, saves what the browser shows as DIR/NAME.png (for a
/// person to look at; the test does not compare them).
async fn snap(c: &Client, name: &str) {
    if let Some(dir) = std::env::var_os("KJP_SCREENSHOTS") {
        let png = c.screenshot().await.expect("screenshot");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// Whether the page fits the phone's width (no sideways scrolling).
async fn fits(c: &Client) -> bool {
    let v = c
        .execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", vec![])
        .await
        .expect("measure");
    v.as_bool().unwrap_or(false)
}

async fn add(app: &TestApp, username: &str, role: &str, scope: &str) -> String {
    let password = format!("pw-{username}-0123456789");
    let hash = kjp_server::console::hash_password(&password);
    assert!(app.store.add_staff(username, role, scope, &hash).await.expect("add"));
    password
}

#[tokio::test]
async fn a_post_officers_day_in_the_browser() {
    let Some(driver) = driver().await else { return };
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.gambir", "post", "31.71.01").await;
    let c = browser(&driver).await;

    sign_in(&c, &app, "pos.gambir", &pw).await;
    assert!(text(&c, "find").await.contains("Cari"));
    // A family comes in: their child was cut for a car they sold.
    fill(&c, "nik", CAR_OWNED).await;
    click(&c, "find").await;
    assert_eq!(text(&c, "status").await, "ineligible");
    let page = c.source().await.expect("source");
    assert!(page.contains("EXCLUDED_CAR") && page.contains("bapenda:3"), "{page}");
    assert!(fits(&c).await, "the child page fits a phone");
    snap(&c, "1-child").await;
    // Bad input first: the message, and what was typed is still there.
    fill(&c, "contact", "08").await;
    c.find(Locator::Id("category")).await.unwrap().select_by_value("asset").await.unwrap();
    fill(&c, "description", "Mobil sudah dijual tahun 2024; ada bukti blokir Samsat.").await;
    click(&c, "save-complaint").await;
    assert!(text(&c, "error").await.contains("Periksa kembali"));
    let page = c.source().await.unwrap();
    assert!(page.contains("8 sampai 15 angka") && page.contains("Mobil sudah dijual tahun 2024"), "{page}");
    fill(&c, "contact", "0812 3456 7890").await;
    click(&c, "save-complaint").await;
    let ticket = text(&c, "ticket").await;
    assert!(ticket.starts_with("KJP-"), "{ticket}");
    assert!(text(&c, "owner").await.contains("Pos pelayanan Kecamatan"));
    assert!(fits(&c).await, "the complaint page fits a phone");
    snap(&c, "2-complaint").await;
    // Routed: an asset dispute goes to the education office (suggested already).
    let to = c.find(Locator::Id("to")).await.unwrap();
    assert_eq!(to.prop("value").await.unwrap().as_deref(), Some("education"));
    fill(&c, "route-note", "Bukti blokir Samsat dibawa keluarga").await;
    click(&c, "route").await;
    assert!(text(&c, "owner").await.contains("Dinas Pendidikan"));
    let history = text(&c, "history").await;
    assert!(history.contains("routed to education"), "{history}");
    // The list shows it with its due date.
    c.goto(&url(&app, "/staff/complaints")).await.unwrap();
    assert!(text(&c, "complaints").await.contains(&ticket));
    snap(&c, "3-list").await;
    c.goto(&url(&app, "/staff/dashboard")).await.unwrap();
    assert!(fits(&c).await, "the dashboard fits a phone");
    snap(&c, "5-dashboard").await;
    click(&c, "logout").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/staff/login");

    // At home, the family follows the complaint with the ticket and the NIK.
    c.goto(&url(&app, "/pengaduan")).await.unwrap();
    fill(&c, "ticket", &ticket).await;
    fill(&c, "nik", CAR_OWNED).await;
    click(&c, "follow").await;
    let answer = text(&c, "answer").await;
    assert!(
        answer.contains("Sedang diproses") && answer.contains("Diteruskan ke Dinas Pendidikan"),
        "{answer}"
    );
    assert!(!answer.contains("Bukti blokir Samsat dibawa"), "internal notes stay internal: {answer}");
    assert!(fits(&c).await, "the follow-up page fits a phone");
    snap(&c, "4-follow").await;
    c.close().await.ok();
}

#[tokio::test]
async fn a_cross_kecamatan_lookup_is_refused_in_the_browser() {
    let Some(driver) = driver().await else { return };
    let app = spawn(true, 10_000).await;
    let pw = add(&app, "pos.tanahabang", "post", "31.71.02").await;
    let c = browser(&driver).await;
    sign_in(&c, &app, "pos.tanahabang", &pw).await;
    fill(&c, "nik", RECIPIENT).await;
    click(&c, "find").await;
    let refused = text(&c, "refused").await;
    snap(&c, "6-refused").await;
    assert!(refused.contains("di luar wilayah"), "{refused}");
    let page = c.source().await.unwrap();
    assert!(!page.contains("Adi Saputra") && !page.contains("bapenda:"), "{page}");
    // And the complaint list of another kecamatan is not theirs either: a page the role
    // may not open at all is refused by the matrix.
    c.goto(&url(&app, "/staff/audit")).await.unwrap();
    assert!(text(&c, "refused").await.contains("Peran Anda tidak boleh"));
    let denied = app.store.audit_entries(10, "denied").await.expect("audit");
    assert!(denied.iter().any(|e| e.action == "denied.view.child" && e.subject == RECIPIENT), "{denied:?}");
    c.close().await.ok();
}
