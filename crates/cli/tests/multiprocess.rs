//! Several `kjp serve` processes behind one PostgreSQL, as docs/deployment.md runs them:
//! a staff session made on one server is valid on the others, a lock-out earned across
//! servers holds on all, every server publishes a decree made while they run, the rate
//! limit counts a client once across servers, and every server's `/metrics` shows the
//! stage run's progress. Runs when `KJP_TEST_DATABASE_URL` is set (a fresh database per
//! run; `.ci/run` sets it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Row};

/// The database and data directory every process shares.
struct Place {
    url: String,
    data: PathBuf,
}

fn kjp(place: &Place, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kjp"))
        .args(args)
        .env("KJP_DATABASE_URL", &place.url)
        .env("KJP_DATA_DIR", &place.data)
        .output()
        .expect("run kjp");
    assert!(out.status.success(), "kjp {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `kjp serve` on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(place: &Place, rate_per_minute: u32, log: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kjp"))
            .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--reload-secs", "1"])
            .env("KJP_DATABASE_URL", &place.url)
            .env("KJP_DATA_DIR", &place.data)
            .env("KJP_RATE_PER_MINUTE", rate_per_minute.to_string())
            .env_remove("KJP_PORT")
            .env_remove("KJP_CONFIG")
            .stdout(Stdio::piped())
            // One log line per request: to a file, so a full pipe never stops the server.
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("kjp serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = loop {
            let line = lines.next().expect("kjp serve printed its address").expect("stdout");
            if let Some(rest) = line.strip_prefix("Status check at http://127.0.0.1:") {
                break rest.trim_end_matches('/').parse().expect("port");
            }
        };
        // Keep reading what it prints (index rebuilds), so its stdout never fills.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status code, headers (lower-case names) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next()?.strip_prefix(&format!("{name}=")).map(str::to_string))
            .find(|v| !v.is_empty())
    }
}

fn request(port: u16, method: &str, path: &str, cookie: &str, form: &str) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if !cookie.is_empty() {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    write!(s, "{head}\r\n{form}").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response { status, headers, body: body.to_string() }
}

fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, "", "")
}

/// Signs in through `port`'s form (its CSRF nonce first); the response of the POST.
fn sign_in(port: u16, username: &str, password: &str) -> Response {
    let form = get(port, "/staff/login");
    let nonce = form.cookie("kjp_login").expect("the sign-in form sets its nonce");
    let body = format!("username={username}&password={password}&csrf={nonce}");
    request(port, "POST", "/staff/login", &format!("kjp_login={nonce}"), &body)
}

fn password_of(created: &str) -> String {
    created
        .lines()
        .find_map(|l| l.split_once("password: ").map(|(_, p)| p.trim().to_string()))
        .expect("kjp user add prints the password")
}

fn status_path(nik: &str, birth: &str) -> String {
    format!("/api/v1/status?nik={nik}&birth_date={birth}&year=2025&stage=1")
}

fn status_of(port: u16, nik: &str, birth: &str) -> String {
    let r = get(port, &status_path(nik, birth));
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    v["status"].as_str().expect("status").to_string()
}

fn clock_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() / 60
}

#[test]
fn several_servers_share_sessions_lockouts_decrees_and_the_rate_limit() {
    let Some(admin) = std::env::var("KJP_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("KJP_TEST_DATABASE_URL is not set: several servers on PostgreSQL not tested");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or_else(|| admin.clone());
    let name = format!("kjp_multi_{}", std::process::id());
    let admin_sql = |q: String| {
        runtime.block_on(async {
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(&q).execute(&mut c).await.expect("admin statement");
            c.close().await.ok();
        })
    };
    admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin_sql(format!("CREATE DATABASE {name}"));
    let root = tempfile::tempdir().expect("tempdir");
    let place = Place { url: format!("{base}/{name}"), data: root.path().join("kjp-data") };

    // A verified, not yet decreed stage of a 1% Jakarta.
    let files = root.path().join("files");
    kjp(&place, &["generate", "--scale", "0.01", "--out", files.to_str().unwrap()]);
    kjp(&place, &["import", "--data", files.to_str().unwrap(), "--force"]);
    kjp(&place, &["stage", "open", "2025", "1"]);
    kjp(&place, &["stage", "verify", "2025/1"]);
    let (nik, birth, candidates): (String, String, i64) = runtime.block_on(async {
        let mut c = sqlx::PgConnection::connect(&place.url).await.expect("connect");
        let child = sqlx::query(
            "SELECT nik, birth_date FROM decisions WHERE stage = '2025/1' AND status = 'eligible' \
             ORDER BY nik LIMIT 1",
        )
        .fetch_one(&mut c)
        .await
        .expect("an eligible child");
        let n = sqlx::query("SELECT COUNT(*) FROM decisions WHERE stage = '2025/1'")
            .fetch_one(&mut c)
            .await
            .expect("count");
        (child.get(0), child.get(1), n.get(0))
    });
    let ana = password_of(&kjp(&place, &["user", "add", "--username", "ana", "--role", "admin"]));
    let budi = password_of(&kjp(&place, &["user", "add", "--username", "budi", "--role", "auditor"]));

    let logs = root.path();
    let servers: Vec<Server> =
        (0..3).map(|i| Server::start(&place, 0, &logs.join(format!("serve-{i}.log")))).collect();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();

    // The stage run's progress, written by `kjp stage verify`, on every server's metrics.
    for &p in &ports {
        let m = get(p, "/metrics").body;
        assert!(m.contains("kjp_stage_run_running{stage=\"2025/1\"} 0"), "{m}");
        let done =
            format!("kjp_stage_run_step_done{{stage=\"2025/1\",step=\"write decisions\"}} {candidates}");
        assert!(m.contains(&done), "{done} in\n{m}");
    }

    // A session made on the first server works on the others.
    let signed_in = sign_in(ports[0], "ana", &ana);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let session = format!("kjp_staff={}", signed_in.cookie("kjp_staff").expect("a session cookie"));
    for &p in &ports {
        let home = request(p, "GET", "/staff", &session, "");
        assert_eq!(home.status, 200, "server {p}: {}", home.body);
        assert!(home.body.contains("ana"), "{}", home.body);
    }
    let stranger = request(ports[2], "GET", "/staff", "kjp_staff=not-a-session", "");
    assert_eq!(stranger.status, 303, "no session, back to the sign-in form");

    // Five wrong passwords spread over the servers lock the account on all of them.
    for i in 0..5 {
        let r = sign_in(ports[i % 3], "budi", "wrong-password");
        assert!(r.status == 401 || r.status == 429, "attempt {i}: {} {}", r.status, r.body);
    }
    for &p in &ports {
        let r = sign_in(p, "budi", &budi);
        assert_eq!(r.status, 429, "the right password on a locked account, server {p}: {}", r.body);
        assert!(r.cookie("kjp_staff").is_none());
    }

    // Before the decree every server answers "in process"; after it, every server
    // publishes the decree within a few reloads, and they agree.
    for &p in &ports {
        assert_eq!(status_of(p, &nik, &birth), "in_process");
    }
    kjp(&place, &["bank", "prepare-bench", "--stage", "2025/1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for &p in &ports {
        loop {
            let s = status_of(p, &nik, &birth);
            if s == "recipient" {
                break;
            }
            assert!(Instant::now() < deadline, "server {p} still answers {s} a minute after the decree");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let answers: Vec<String> = ports.iter().map(|&p| get(p, &status_path(&nik, &birth)).body).collect();
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    drop(servers);

    // The rate limit across servers: 30 a minute, requests spread ten to each of three.
    // Each server alone saw ten; together the client has had its 30.
    let limited: Vec<Server> =
        (0..3).map(|i| Server::start(&place, 30, &logs.join(format!("limited-{i}.log")))).collect();
    let mut tries = 0;
    loop {
        tries += 1;
        // Counts start afresh each clock minute: keep the whole check within one.
        while SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() % 60 > 45 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let minute = clock_minute();
        let mut refused_early = 0;
        for i in 0..30 {
            let r = get(limited[i % 3].port, &status_path(&nik, &birth));
            refused_early += usize::from(r.status == 429);
        }
        // Each server shares its counts once a second.
        std::thread::sleep(Duration::from_millis(2500));
        let after: Vec<Response> = limited.iter().map(|s| get(s.port, &status_path(&nik, &birth))).collect();
        if clock_minute() != minute && tries < 3 {
            continue;
        }
        assert_eq!(refused_early, 0, "the first 30 of the minute are answered");
        for r in &after {
            assert_eq!(r.status, 429, "the 31st and later, on any server: {}", r.body);
            assert!(r.headers.iter().any(|(k, v)| k == "retry-after" && v == "60"));
        }
        break;
    }
    // Readiness and health endpoints are not limited.
    for s in &limited {
        assert_eq!(get(s.port, "/readyz").status, 200);
    }
    drop(limited);
    runtime.block_on(async {
        let mut c = sqlx::PgConnection::connect(&place.url).await.expect("connect");
        let rows =
            sqlx::query("SELECT client, hits FROM rate_hits").fetch_all(&mut c).await.expect("rate_hits");
        for r in &rows {
            let client: String = r.get(0);
            assert!(!client.contains('.') && client.len() == 32, "a digest, not the address: {client}");
        }
        c.close().await.ok();
    });
    admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
