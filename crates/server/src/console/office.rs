//! The home page, the audit log (with the chain checked) and staff accounts.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::access::{self, Role, Scope};
use super::auth::{generate_password, Staff};
use super::password;
use super::{internal, pick_stage, render, Nav};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    nav: Nav,
    stage: String,
    can_find: bool,
    can_open: bool,
}

pub(crate) async fn home(State(state): State<AppState>, Extension(staff): Extension<Staff>) -> Response {
    let stage = match pick_stage(&state, None).await {
        Ok(s) => s.map(|s| s.to_string()).unwrap_or_default(),
        Err(r) => return r,
    };
    let page = HomePage {
        nav: staff.nav(),
        stage,
        can_find: access::access(staff.role, "POST", "/staff/child").allowed(),
        can_open: access::access(staff.role, "POST", "/staff/complaints").allowed(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    verified: String,
    broken: Vec<String>,
    q: String,
    entries: Vec<kjp_store::AuditEntry>,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AuditQuery {
    q: Option<String>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let store = &state.inner.store;
    let (verified, broken) = match store.verify_audit().await {
        Ok(Ok(n)) => (format!("Rantai utuh / chain intact: {n} entri"), vec![]),
        Ok(Err(b)) => {
            (String::new(), b.into_iter().map(|b| format!("entri {}: {}", b.seq, b.problem)).collect())
        }
        Err(e) => return internal(e),
    };
    let filter = q.q.unwrap_or_default().trim().chars().take(64).collect::<String>();
    let entries = match store.audit_entries(200, &filter).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    render(StatusCode::OK, &AuditPage { nav: staff.nav(), verified, broken, q: filter, entries })
}

#[derive(Debug)]
struct UserRow {
    username: String,
    role: String,
    scope: String,
    locked: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    can_add: bool,
    role_opts: Vec<super::Opt>,
    form_username: String,
    form_role: String,
    form_scope: String,
    error: String,
    created: String,
    password: String,
}

async fn users_page(state: &AppState, staff: &Staff, status: StatusCode, mut page: UsersPage) -> Response {
    let users = match state.inner.store.staff_users().await {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let now = kjp_store::timestamp();
    page.users = users
        .into_iter()
        .map(|u| UserRow {
            locked: !u.locked_until.is_empty() && u.locked_until > now,
            username: u.username,
            role: u.role,
            scope: u.scope,
        })
        .collect();
    page.role_opts = super::opts(Role::ALL.iter().map(|r| (r.code(), r.label())), &page.form_role);
    page.can_add = access::access(staff.role, "POST", "/staff/users").allowed();
    render(status, &page)
}

fn empty(staff: &Staff) -> UsersPage {
    UsersPage {
        nav: staff.nav(),
        users: vec![],
        can_add: false,
        role_opts: super::opts(Role::ALL.iter().map(|r| (r.code(), r.label())), ""),
        form_username: String::new(),
        form_role: String::new(),
        form_scope: String::new(),
        error: String::new(),
        created: String::new(),
        password: String::new(),
    }
}

pub(crate) async fn users(State(state): State<AppState>, Extension(staff): Extension<Staff>) -> Response {
    let page = empty(&staff);
    users_page(&state, &staff, StatusCode::OK, page).await
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AddUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scope: String,
}

/// Checks a new username: 3 to 32 of a-z, 0-9, `.`, `_`, `-`.
pub fn check_username(raw: &str) -> Result<(), String> {
    let ok = (3..=32).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("username {raw:?}: 3 to 32 characters, a-z, 0-9, '.', '_' or '-'"))
    }
}

pub(crate) async fn add_user(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Result<Form<AddUser>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let mut page = empty(&staff);
    page.form_username = f.username.trim().to_string();
    page.form_role = f.role.clone();
    page.form_scope = f.scope.trim().to_string();
    let checked = check_username(&page.form_username).and_then(|()| {
        let role = Role::parse(&f.role).ok_or_else(|| "Pilih peran. / Choose a role.".to_string())?;
        let scope = Scope::for_role(role, Some(page.form_scope.as_str())).map_err(|e| e.to_string())?;
        Ok((role, scope))
    });
    let (role, scope) = match checked {
        Ok(v) => v,
        Err(e) => {
            page.error = e;
            return users_page(&state, &staff, StatusCode::BAD_REQUEST, page).await;
        }
    };
    let password = generate_password();
    let pw = password.clone();
    let Some(hash) = password::hash(pw).await else {
        return internal("password hashing task failed");
    };
    let store = &state.inner.store;
    match store.add_staff(&page.form_username, role.code(), scope.code(), &hash).await {
        Ok(true) => {}
        Ok(false) => {
            page.error =
                format!("Nama pengguna {} sudah dipakai. / The username is taken.", page.form_username);
            return users_page(&state, &staff, StatusCode::CONFLICT, page).await;
        }
        Err(e) => return internal(e),
    }
    if let Err(e) = store
        .audit(
            &staff.username,
            "user.add",
            &page.form_username,
            &format!("{} {}", role, scope.code()),
            &staff.origin,
        )
        .await
    {
        return internal(e);
    }
    page.created = std::mem::take(&mut page.form_username);
    page.password = password;
    page.form_role.clear();
    page.form_scope.clear();
    users_page(&state, &staff, StatusCode::OK, page).await
}
