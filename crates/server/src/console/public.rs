//! The families' follow-up page: the ticket number and the child's NIK show a
//! complaint's state, due date and the public part of its history. A wrong ticket and a
//! wrong NIK get the same answer. Every look is audited.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::complaints::{category_label, owner_label};
use super::{internal, render, today_wib};
use crate::AppState;

#[derive(Debug)]
struct Step {
    date: String,
    text: String,
}

#[derive(Template)]
#[template(path = "console/follow.html")]
struct FollowPage {
    ticket: String,
    nik: String,
    error: String,
    found: bool,
    category: String,
    state: String,
    opened: String,
    due: String,
    overdue: bool,
    owner: String,
    steps: Vec<Step>,
}

fn blank() -> FollowPage {
    FollowPage {
        ticket: String::new(),
        nik: String::new(),
        error: String::new(),
        found: false,
        category: String::new(),
        state: String::new(),
        opened: String::new(),
        due: String::new(),
        overdue: false,
        owner: String::new(),
        steps: vec![],
    }
}

pub(crate) async fn form() -> Response {
    render(StatusCode::OK, &blank())
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct FollowForm {
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    nik: String,
}

pub(crate) async fn follow(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    form: Result<Form<FollowForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let mut page = blank();
    page.ticket = f.ticket.trim().to_uppercase();
    page.nik = f.nik.trim().to_string();
    let mut errors = Vec::new();
    if page.ticket.is_empty() {
        errors.push("Isi nomor tiket, misalnya KJP-2025-000123.");
    }
    if page.nik.len() != 16 || !page.nik.bytes().all(|b| b.is_ascii_digit()) {
        errors.push("NIK harus 16 angka.");
    }
    if !errors.is_empty() {
        page.error = errors.join(" ");
        return render(StatusCode::BAD_REQUEST, &page);
    }
    let store = &state.inner.store;
    let c = match store.complaint(&page.ticket).await {
        Ok(c) => c.filter(|c| c.nik == page.nik),
        Err(e) => return internal(e),
    };
    let Some(c) = c else {
        if let Err(e) = store.audit("public", "follow.miss", &page.ticket, "", &peer.ip().to_string()).await {
            return internal(e);
        }
        page.error = "Tidak ada pengaduan dengan nomor tiket dan NIK ini. Periksa kembali keduanya, atau tanyakan ke pos pelayanan KJP Plus di kantor kecamatan.".into();
        return render(StatusCode::NOT_FOUND, &page);
    };
    if let Err(e) = store.audit("public", "view.complaint", &c.ticket, "", &peer.ip().to_string()).await {
        return internal(e);
    }
    let events = match store.complaint_events(&c.ticket).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    page.found = true;
    page.category = category_label(&c.category).to_string();
    page.state = if c.state == "open" { "Sedang diproses".into() } else { "Selesai".into() };
    page.opened = super::wib(&c.opened_at).get(..10).unwrap_or("").to_string();
    page.overdue = c.state == "open" && c.due_date < today_wib().to_string();
    page.due = c.due_date;
    page.owner = owner_label(&c.owner);
    page.steps = events
        .into_iter()
        .filter(|e| !e.public_note.is_empty())
        .map(|e| Step { date: super::wib(&e.at).get(..10).unwrap_or("").to_string(), text: e.public_note })
        .collect();
    render(StatusCode::OK, &page)
}
