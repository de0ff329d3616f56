//! The status check as a parent uses it: a real headless Chromium, sized like a phone,
//! driven through chromedriver's W3C WebDriver endpoints against the server on port 0.
//!
//! Needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium, /usr/bin/chromedriver);
//! no tool here downloads a browser. Without chromedriver these tests fail and say how to
//! install it, unless KJP_SKIP_BROWSER=1 is set to skip them on purpose.
//!
//! The tests take turns (one browser at a time): the machines that run them are small.
//! The phone screenshot of an answer goes to the target directory; `KJP_UPDATE_SCREENSHOTS=1`
//! writes it to docs/img/status-phone.png instead.

mod common;
use common::*;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// A common small Android phone, in CSS pixels.
const PHONE: (u32, u32) = (360, 740);
/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser at a time, whichever test thread asks.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// False when the tests are skipped on purpose; panics with the fix when chromedriver is
/// missing.
fn browser_available() -> bool {
    if std::env::var("KJP_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("KJP_SKIP_BROWSER=1: browser tests skipped");
        return false;
    }
    for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(path).exists(),
            "{path} not found: the browser tests need Debian's {package}. Install with\n    \
             apt-get update && apt-get install -y chromium chromium-driver\n\
             or set KJP_SKIP_BROWSER=1 to skip these tests on purpose."
        );
    }
    true
}

/// A chromedriver process of our own, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Driver {
        let port = {
            // A free port, released just before chromedriver takes it.
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, which the browsers it starts join: dropping the
            // driver ends them all, even when a test failed before quitting its browser.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let driver = Driver { child, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = driver.http.get(format!("{}/status", driver.base)).send().await {
                let v: Value =
                    serde_json::from_str(&res.text().await.unwrap_or_default()).unwrap_or_default();
                if v["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let code = res.status();
        let text = res.text().await.expect("webdriver body");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"));
        assert!(code.is_success(), "{method} {path}: {code}: {text}");
        v["value"].clone()
    }

    /// A new headless Chromium emulating a phone screen (viewport, pixel ratio, touch).
    async fn session(&self) -> Browser<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--lang=id-ID"],
                "mobileEmulation": {"deviceMetrics": {"width": PHONE.0, "height": PHONE.1, "pixelRatio": 2.0, "touch": true}},
            },
        }}});
        let v = self.call(reqwest::Method::POST, "/session", Some(caps)).await;
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_owned();
        Browser { driver: self, path: format!("/session/{id}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Our own chromedriver's process group, by its id: the driver and its browsers.
        let group = format!("-{}", self.child.id());
        if !Command::new("kill").args(["-TERM", "--", &group]).status().is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Browser<'a> {
    driver: &'a Driver,
    path: String,
}

impl Browser<'_> {
    async fn get(&self, path: &str) -> Value {
        self.driver.call(reqwest::Method::GET, &format!("{}{path}", self.path), None).await
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        self.driver.call(reqwest::Method::POST, &format!("{}{path}", self.path), Some(body)).await
    }
    async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }
    async fn find(&self, css: &str) -> String {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {v}")).to_owned()
    }
    async fn exists(&self, css: &str) -> bool {
        let v = self.post("/elements", json!({"using": "css selector", "value": css})).await;
        v.as_array().is_some_and(|a| !a.is_empty())
    }
    /// Types into a field as a parent would: clears it first.
    async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/clear"), json!({})).await;
        self.post(&format!("/element/{el}/value"), json!({"text": text})).await;
    }
    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.post(&format!("/element/{el}/click"), json!({})).await;
    }
    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.get(&format!("/element/{el}/text")).await.as_str().unwrap_or_default().to_owned()
    }
    async fn value(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.get(&format!("/element/{el}/property/value")).await.as_str().unwrap_or_default().to_owned()
    }
    async fn script(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }
    /// The words a parent sees on the page.
    async fn page_text(&self) -> String {
        self.text("body").await
    }
    /// Fills the form and presses CEK; waits for the answer page.
    async fn check(&self, nik: &str, birth_date: &str, year: &str, stage: &str) {
        self.fill("#nik", nik).await;
        self.fill("#birth_date", birth_date).await;
        self.fill("#year", year).await;
        self.click(&format!("#stage option[value='{stage}']")).await;
        self.navigating(|| self.click("button[type=submit]")).await;
        assert_eq!(self.script("return location.pathname").await, "/cek");
    }
    /// Does `act` and waits until it has loaded a new page (a click need not wait for it).
    async fn navigating<F: std::future::Future<Output = ()>>(&self, act: impl FnOnce() -> F) {
        self.script("window.kjpOldPage = true; return null").await;
        act().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.script("return [window.kjpOldPage === true, document.readyState]").await;
            if v[0] == false && v[1] == "complete" {
                return;
            }
            assert!(Instant::now() < deadline, "no new page loaded: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    /// The page fits the phone's width: nothing to scroll sideways.
    async fn assert_no_horizontal_scroll(&self) {
        let v = self
            .script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]")
            .await;
        assert_eq!(v[2], PHONE.0, "the viewport is not phone-sized: {v}");
        let scroll = v[0].as_u64().unwrap_or(u64::MAX);
        assert!(scroll <= u64::from(PHONE.0), "the page scrolls sideways on a {} px phone: {v}", PHONE.0);
    }
    async fn screenshot(&self, out: &Path) {
        let b64 = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(out.parent().expect("dir")).expect("mkdir");
        std::fs::write(out, png).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    }
    async fn quit(self) {
        self.driver.call(reqwest::Method::DELETE, &self.path, None).await;
    }
}

/// Runs `scenario` with a phone-sized browser on a fresh decreed server, one at a time.
macro_rules! with_browser {
    (|$app:ident, $b:ident| $body:block) => {{
        if !browser_available() {
            return;
        }
        let _turn = TURN.lock().await;
        let $app = spawn(true, 1000).await;
        let driver = Driver::start().await;
        let $b = driver.session().await;
        $body
        $b.quit().await;
    }};
}

/// Where a screenshot goes: the target directory, or docs/img with KJP_UPDATE_SCREENSHOTS=1
/// (to refresh the committed one on purpose; a test run does not dirty the tree).
fn screenshot_path(name: &str) -> PathBuf {
    if std::env::var("KJP_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img").join(name)
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
    }
}

/// 2012-03-04 as parents write it on the page.
const RECIPIENT_BIRTH_DMY: &str = "04-03-2012";

#[tokio::test]
async fn a_parent_on_a_phone_sees_recipient_with_masked_name_level_amount_and_months() {
    with_browser!(|app, b| {
        b.goto(&app.url("/")).await;
        assert!(b.page_text().await.contains("Cek Status KJP Plus"));
        b.assert_no_horizontal_scroll().await;

        b.check(RECIPIENT, RECIPIENT_BIRTH_DMY, "2025", "1").await;
        let answer = b.text("section.answer").await;
        assert!(answer.contains("Terdaftar sebagai PENERIMA KJP Plus"), "{answer}");
        assert!(answer.contains("A*** S***"), "{answer}");
        assert!(!b.page_text().await.contains("Adi"), "the full name must not be shown");
        assert!(answer.contains("SMP"), "{answer}");
        assert!(answer.contains("Rp 470.000"), "{answer}");
        for month in ["Januari 2025", "Februari 2025", "Maret 2025", "April 2025", "Mei 2025", "Juni 2025"] {
            assert!(answer.contains(month), "{month}: {answer}");
        }
        // The form below keeps what was entered.
        assert_eq!(b.value("#nik").await, RECIPIENT);
        assert_eq!(b.value("#birth_date").await, RECIPIENT_BIRTH_DMY);
        b.assert_no_horizontal_scroll().await;
        b.screenshot(&screenshot_path("status-phone.png")).await;
    });
}

#[tokio::test]
async fn a_parent_whose_child_is_not_a_recipient_sees_the_reason_and_the_service_post_hours() {
    with_browser!(|app, b| {
        b.goto(&app.url("/")).await;
        b.check(CAR_OWNED, "06-06-2013", "2025", "1").await;
        let answer = b.text("section.answer").await;
        assert!(
            answer.starts_with("KJP Plus") && answer.contains("BUKAN penerima pada tahap ini"),
            "{answer}"
        );
        assert!(answer.contains("Keluarga tercatat memiliki kendaraan roda empat"), "{answer}");
        assert!(answer.contains("pos pelayanan KJP Plus di kantor kecamatan"), "{answer}");
        assert!(answer.contains("Senin sampai Jumat pukul 08.00 sampai 15.00 WIB"), "{answer}");
        assert!(!answer.contains("C***"), "no name for a child who is not a recipient: {answer}");
        b.assert_no_horizontal_scroll().await;
    });
}

#[tokio::test]
async fn an_unknown_nik_and_a_wrong_date_of_birth_read_exactly_the_same() {
    with_browser!(|app, b| {
        b.goto(&app.url("/")).await;
        b.check(UNKNOWN, "05-03-2012", "2025", "1").await;
        let unknown = b.page_text().await;
        b.check(RECIPIENT, "05-03-2012", "2025", "1").await;
        let wrong_date = b.page_text().await;
        assert!(unknown.contains("Data tidak ditemukan"), "{unknown}");
        assert!(unknown.contains("Senin sampai Jumat pukul 08.00 sampai 15.00 WIB"), "{unknown}");
        assert_eq!(unknown, wrong_date, "the page must not tell whether the NIK exists");
        assert_eq!(b.value("#nik").await, RECIPIENT);
    });
}

#[tokio::test]
async fn a_bad_field_gets_its_message_next_to_it_and_the_other_values_stay() {
    with_browser!(|app, b| {
        b.goto(&app.url("/")).await;
        let cases = [
            ("nik", "317101040312000", RECIPIENT_BIRTH_DMY, "NIK harus 16 angka; yang diisi 15 angka."),
            ("nik", "31710104031200AB", RECIPIENT_BIRTH_DMY, "NIK hanya boleh berisi angka."),
            ("birth_date", RECIPIENT, "2025-02-30", "Tanggal 2025-02-30 tidak ada di kalender."),
        ];
        for (field, nik, birth, message) in cases {
            b.check(nik, birth, "2025", "2").await;
            let page = b.page_text().await;
            assert!(page.contains("Periksa kembali isian yang ditandai."), "{field}: {page}");
            assert!(!b.exists("section.answer").await, "{field}: no answer with a bad field");
            assert_eq!(b.text(&format!("#{field}-error")).await, message, "{field}");
            assert!(!b.exists(&format!(".field-error:not(#{field}-error)")).await, "only {field} is marked");
            // Next to the field: right below its input, above the next field's label.
            let geometry = b
                .script(&format!(
                    "const e = document.getElementById('{field}-error').getBoundingClientRect();
                     const i = document.getElementById('{field}').getBoundingClientRect();
                     const n = document.querySelector('label[for=\"{next}\"]').getBoundingClientRect();
                     return [i.bottom <= e.top, e.bottom <= n.top, e.top - i.bottom];",
                    next = if field == "nik" { "birth_date" } else { "year" },
                ))
                .await;
            assert!(geometry[0] == true && geometry[1] == true, "{field}: {geometry}");
            assert!(
                geometry[2].as_f64().unwrap_or(f64::MAX) < 60.0,
                "{field}: too far from the field: {geometry}"
            );
            // Everything entered is still there, the bad value too, to be corrected.
            assert_eq!(b.value("#nik").await, nik, "{field}");
            assert_eq!(b.value("#birth_date").await, birth, "{field}");
            assert_eq!(b.value("#year").await, "2025", "{field}");
            assert_eq!(b.value("#stage").await, "2", "{field}");
            b.assert_no_horizontal_scroll().await;
        }
    });
}

#[tokio::test]
async fn the_english_switch_turns_the_page_and_the_answer_into_english() {
    with_browser!(|app, b| {
        b.goto(&app.url("/")).await;
        assert_eq!(b.script("return document.documentElement.lang").await, "id");
        b.navigating(|| b.click("header a.lang")).await;
        assert_eq!(b.script("return document.documentElement.lang").await, "en");
        let page = b.page_text().await;
        assert!(page.contains("KJP Plus and KJMU Status Check") && page.contains("Student's NIK"), "{page}");
        b.assert_no_horizontal_scroll().await;

        b.check(RECIPIENT, RECIPIENT_BIRTH_DMY, "2025", "1").await;
        let answer = b.text("section.answer").await;
        assert!(answer.contains("A RECIPIENT of KJP Plus"), "{answer}");
        assert!(answer.contains("January 2025") && answer.contains("June 2025"), "{answer}");
        assert!(answer.contains("Rp 470.000"), "{answer}");
        b.assert_no_horizontal_scroll().await;

        // And back.
        b.navigating(|| b.click("header a.lang")).await;
        assert_eq!(b.script("return document.documentElement.lang").await, "id");
        assert!(b.page_text().await.contains("Cek Status KJP Plus"));
    });
}
