//! Sign-in, sessions, CSRF and lock-out, and the guard in front of every staff route.
//!
//! Passwords are argon2id hashes ([`super::password`]). A session is a random 256-bit
//! token in an HttpOnly, Secure, SameSite=Strict cookie; the database keeps only its
//! sha256, with the session's CSRF token, which every staff form carries and the guard
//! checks. The sign-in form uses a double-submit cookie.
//! Repeated failures lock an account for a while; the counters are in the database, so
//! every server process sees them.

use std::net::SocketAddr;

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::access::{self, Access, Role, Scope};
use super::password::{self, hash_password};
use super::{internal, render, settings, ErrorPage, Nav};
use crate::AppState;

pub(crate) const SESSION_COOKIE: &str = "kjp_staff";
const LOGIN_COOKIE: &str = "kjp_login";

/// Random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the operating system's random source");
    hex::encode(buf)
}

/// A new password: 16 characters from an alphabet without look-alikes (about 90 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buf = [0u8; 64];
    getrandom::getrandom(&mut buf).expect("the operating system's random source");
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % ALPHABET.len();
    buf.iter()
        .filter(|b| usize::from(**b) < limit)
        .take(16)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A hash to check unknown usernames against, so they take as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&generate_password()))
}

fn token_digest(token: &str) -> String {
    kjp_store::sha256_hex(token.as_bytes())
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/staff; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .expect("cookie characters are hex")
}

/// A POST from another site: its Origin names another host.
fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    // `null` tells nothing: browsers send it for every form POST from a page served with
    // `Referrer-Policy: no-referrer`, as ours are; the CSRF token decides then.
    origin != "null" && origin_host != host
}

/// The signed-in staff member a request runs as (set by [`guard`]).
#[derive(Debug, Clone)]
pub struct Staff {
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    pub csrf: String,
    /// The client address, for the audit log.
    pub origin: String,
    /// This role's access to the route being served.
    pub access: Access,
}

impl Staff {
    pub fn nav(&self) -> Nav {
        Nav::for_staff(self)
    }
}

#[derive(Debug, Deserialize, Default)]
struct CsrfOnly {
    csrf: Option<String>,
}

/// In front of every staff route: a session or the sign-in page; the matrix's verdict for
/// the role; the CSRF token on every POST; every auditor's read recorded.
pub(crate) async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let store = &state.inner.store;
    let Some(token) = cookie(req.headers(), SESSION_COOKIE) else {
        return Redirect::to("/staff/login").into_response();
    };
    let session = match store.session(&token_digest(&token), &kjp_store::timestamp()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/staff/login").into_response(),
        Err(e) => return internal(e),
    };
    let user = match store.staff(&session.username).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to("/staff/login").into_response(),
        Err(e) => return internal(e),
    };
    let Some(role) = Role::parse(&user.role) else {
        return internal(format!("account {} has an unknown role", user.username));
    };
    let path = matched.as_ref().map(|m| m.as_str()).unwrap_or("");
    let method = req.method().clone();
    let staff = Staff {
        username: user.username.clone(),
        role,
        scope: Scope::stored(role, &user.scope),
        csrf: session.csrf.clone(),
        origin: peer.ip().to_string(),
        access: access::access(role, method.as_str(), path),
    };
    if !staff.access.allowed() {
        let _ = store.audit(&staff.username, "denied", path, method.as_str(), &staff.origin).await;
        return forbidden(
            &staff,
            "Peran Anda tidak boleh membuka halaman ini. / Your role may not open this page.",
        );
    }
    let req = if method == Method::POST {
        if foreign_origin(req.headers()) {
            return forbidden(&staff, "Formulir dikirim dari situs lain. / The form came from another site.");
        }
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, 256 * 1024).await {
            Ok(b) => b,
            Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response(),
        };
        let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
        let sent = Form::<CsrfOnly>::from_request(probe, &()).await.map(|Form(f)| f).unwrap_or_default();
        if sent.csrf.as_deref() != Some(session.csrf.as_str()) {
            return forbidden(
                &staff,
                "Formulir kedaluwarsa: muat ulang halaman lalu kirim lagi. / The form has expired: reload the page and send it again.",
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    if role == Role::Auditor {
        let what = format!("{} {}", method, req.uri().path());
        if let Err(e) = store.audit(&staff.username, "read", &what, "", &staff.origin).await {
            // A read that cannot be recorded is not served.
            return internal(e);
        }
    }
    let mut req = req;
    req.extensions_mut().insert(staff);
    next.run(req).await
}

pub(crate) fn forbidden(staff: &Staff, message: &str) -> Response {
    let page =
        ErrorPage { nav: staff.nav(), title: "Akses ditolak / Access refused", message: message.to_string() };
    render(StatusCode::FORBIDDEN, &page)
}

// ---------------------------------------------------------------------------------------
// Sign-in

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: String,
}

fn login_page(status: StatusCode, username: &str, error: &str) -> Response {
    let nonce = random_hex(16);
    let mut res =
        render(status, &LoginPage { csrf: nonce.clone(), username: username.into(), error: error.into() });
    res.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &nonce, 3600));
    res
}

pub(crate) async fn login_form() -> Response {
    login_page(StatusCode::OK, "", "")
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let username = f.username.unwrap_or_default().trim().to_string();
    let password = f.password.unwrap_or_default();
    let sent = f.csrf.unwrap_or_default();
    if foreign_origin(&headers)
        || sent.is_empty()
        || cookie(&headers, LOGIN_COOKIE).as_deref() != Some(sent.as_str())
    {
        return login_page(
            StatusCode::FORBIDDEN,
            &username,
            "Formulir kedaluwarsa: coba masuk lagi. / The form has expired: sign in again.",
        );
    }
    if username.is_empty() || password.is_empty() || username.len() > 64 || password.len() > 256 {
        return login_page(
            StatusCode::BAD_REQUEST,
            &username,
            "Isi nama pengguna dan kata sandi. / Enter your username and password.",
        );
    }
    let store = &state.inner.store;
    let origin = peer.ip().to_string();
    let user = match store.staff(&username).await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let now = chrono::Utc::now();
    let stamp = kjp_store::timestamp();
    if let Some(u) = &user {
        if !u.locked_until.is_empty() && u.locked_until.as_str() > stamp.as_str() {
            let _ = store.audit(&username, "login.locked", &username, "", &origin).await;
            let until = u.locked_until.get(11..16).unwrap_or("");
            return login_page(
                StatusCode::TOO_MANY_REQUESTS,
                &username,
                &format!(
                    "Akun dikunci karena terlalu banyak percobaan yang salah, sampai {until} UTC, atau hubungi administrator. / The account is locked after too many failed attempts until {until} UTC, or ask an administrator."
                ),
            );
        }
    }
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| dummy_hash().to_string());
    let ok = password::verify(password, hash).await;
    let settings = settings(&state);
    if !ok || user.is_none() {
        let lock_until = (now + chrono::Duration::minutes(settings.lock_minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let attempt = match store.login_failed(&username, settings.max_failures, &lock_until).await {
            Ok(a) => a,
            Err(e) => return internal(e),
        };
        let _ = store.audit(&username, "login.failed", &username, "", &origin).await;
        let message = if attempt == kjp_store::LoginAttempt::Locked {
            format!(
                "Nama pengguna atau kata sandi salah. Akun dikunci {} menit. / Wrong username or password. The account is locked for {} minutes.",
                settings.lock_minutes, settings.lock_minutes
            )
        } else {
            "Nama pengguna atau kata sandi salah. / Wrong username or password.".to_string()
        };
        return login_page(StatusCode::UNAUTHORIZED, &username, &message);
    }
    if let Err(e) = store.login_succeeded(&username).await {
        return internal(e);
    }
    let token = random_hex(32);
    let expires = (now + chrono::Duration::hours(settings.session_hours))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Err(e) = store.create_session(&token_digest(&token), &username, &random_hex(32), &expires).await {
        return internal(e);
    }
    let _ = store.audit(&username, "login", &username, "", &origin).await;
    let mut res = Redirect::to("/staff").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, settings.session_hours * 3600));
    res.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    res
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(staff): axum::Extension<Staff>,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.inner.store.end_session(&token_digest(&token), &kjp_store::timestamp()).await {
            return internal(e);
        }
    }
    let _ = state.inner.store.audit(&staff.username, "logout", &staff.username, "", &staff.origin).await;
    let mut res = Redirect::to("/staff/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_16_characters_and_verify() {
        let pw = generate_password();
        assert_eq!(pw.len(), 16);
        assert!(super::password::verify_password(&pw, &hash_password(&pw)));
    }

    #[test]
    fn foreign_origins_are_caught() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(!foreign_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(foreign_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!foreign_origin(&h), "no-referrer pages post with Origin: null");
    }
}

// ---------------------------------------------------------------------------------------
// One's own password

#[derive(Template)]
#[template(path = "console/password.html")]
struct PasswordPage {
    nav: Nav,
    error: String,
    done: bool,
}

pub(crate) async fn password_form(axum::Extension(staff): axum::Extension<Staff>) -> Response {
    render(StatusCode::OK, &PasswordPage { nav: staff.nav(), error: String::new(), done: false })
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

/// The shortest new password accepted.
const MIN_PASSWORD: usize = 12;

pub(crate) async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(staff): axum::Extension<Staff>,
    form: Result<Form<PasswordForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let refuse = |error: &str| {
        render(StatusCode::BAD_REQUEST, &PasswordPage { nav: staff.nav(), error: error.into(), done: false })
    };
    if f.new.chars().count() < MIN_PASSWORD || f.new.len() > 256 {
        return refuse(
            "Kata sandi baru minimal 12 karakter. / The new password needs at least 12 characters.",
        );
    }
    if f.new != f.again {
        return refuse("Kedua kata sandi baru tidak sama. / The two new passwords differ.");
    }
    let store = &state.inner.store;
    let user = match store.staff(&staff.username).await {
        Ok(Some(u)) => u,
        Ok(None) => return Redirect::to("/staff/login").into_response(),
        Err(e) => return internal(e),
    };
    let (current, hash) = (f.current.clone(), user.password_hash.clone());
    if !password::verify(current, hash).await {
        let _ = store.audit(&staff.username, "password.refused", &staff.username, "", &staff.origin).await;
        return refuse("Kata sandi sekarang salah. / The current password is wrong.");
    }
    let new = f.new.clone();
    let Some(hash) = password::hash(new).await else {
        return internal("password hashing task failed");
    };
    if let Err(e) = store.set_staff_password(&staff.username, &hash).await {
        return internal(e);
    }
    // Anyone else signed in as this account is signed out.
    let keep = cookie(&headers, SESSION_COOKIE).map(|t| token_digest(&t)).unwrap_or_default();
    if let Err(e) = store.end_sessions_of(&staff.username, &keep).await {
        return internal(e);
    }
    if let Err(e) = store.audit(&staff.username, "password.change", &staff.username, "", &staff.origin).await
    {
        return internal(e);
    }
    render(StatusCode::OK, &PasswordPage { nav: staff.nav(), error: String::new(), done: true })
}
