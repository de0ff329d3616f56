//! Other agencies' API clients in the console: the list (education office and auditors),
//! and for the education office making one (its token shown once) and revoking one. The
//! rules are the same functions `kjp client` calls ([`crate::api::clients`]).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

use super::access;
use super::auth::Staff;
use super::{internal, render, Nav};
use crate::api::clients::{add_client, revoke_client, ApiScope, ClientError};
use crate::AppState;

#[derive(Debug)]
struct ClientRow {
    name: String,
    agency: String,
    scopes: String,
    created: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage {
    nav: Nav,
    clients: Vec<ClientRow>,
    can_manage: bool,
    scope_codes: &'static str,
    form_name: String,
    form_agency: String,
    form_scopes: String,
    error: String,
    message: String,
    created: String,
    token: String,
}

async fn page(state: &AppState, staff: &Staff, status: StatusCode, mut page: ClientsPage) -> Response {
    let clients = match state.inner.store.api_clients().await {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    page.clients = clients
        .into_iter()
        .map(|c| ClientRow {
            created: super::wib(&c.created_at),
            revoked: if c.is_revoked() { super::wib(&c.revoked_at) } else { String::new() },
            scopes: c.scopes.join(" "),
            name: c.name,
            agency: c.agency,
        })
        .collect();
    page.can_manage = access::access(staff.role, "POST", "/staff/clients").allowed();
    render(status, &page)
}

fn blank(staff: &Staff) -> ClientsPage {
    ClientsPage {
        nav: staff.nav(),
        clients: Vec::new(),
        can_manage: false,
        scope_codes: ApiScope::CODES,
        form_name: String::new(),
        form_agency: String::new(),
        form_scopes: String::new(),
        error: String::new(),
        message: String::new(),
        created: String::new(),
        token: String::new(),
    }
}

pub(crate) async fn list(State(state): State<AppState>, Extension(staff): Extension<Staff>) -> Response {
    page(&state, &staff, StatusCode::OK, blank(&staff)).await
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct AddClient {
    #[serde(default)]
    name: String,
    #[serde(default)]
    agency: String,
    #[serde(default)]
    scopes: String,
}

pub(crate) async fn add(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Result<Form<AddClient>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let mut shown = ClientsPage {
        form_name: f.name.trim().to_string(),
        form_agency: f.agency.trim().to_string(),
        form_scopes: f.scopes.trim().to_string(),
        ..blank(&staff)
    };
    let store = &state.inner.store;
    match add_client(
        store,
        &shown.form_name,
        &shown.form_agency,
        &shown.form_scopes,
        &staff.username,
        &staff.origin,
    )
    .await
    {
        Ok(token) => {
            shown.created = std::mem::take(&mut shown.form_name);
            shown.token = token;
            shown.form_agency.clear();
            shown.form_scopes.clear();
            page(&state, &staff, StatusCode::OK, shown).await
        }
        Err(ClientError::Store(e)) => internal(e),
        Err(e) => {
            let status = if matches!(e, ClientError::Taken(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            shown.error = e.to_string();
            page(&state, &staff, status, shown).await
        }
    }
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(name): Path<String>,
) -> Response {
    let mut shown = blank(&staff);
    let status = match revoke_client(&state.inner.store, &name, &staff.username, &staff.origin).await {
        Ok(()) => {
            shown.message = format!("Klien {name} dicabut: tokennya ditolak mulai sekarang. / Revoked.");
            StatusCode::OK
        }
        Err(ClientError::Store(e)) => return internal(e),
        Err(e @ ClientError::NotFound(_)) => {
            shown.error = e.to_string();
            StatusCode::NOT_FOUND
        }
        Err(e) => {
            shown.error = e.to_string();
            StatusCode::CONFLICT
        }
    };
    page(&state, &staff, status, shown).await
}
