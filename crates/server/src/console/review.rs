//! The review queue: a stage's `review` decisions with both sources side by side, settled
//! one by one with a reason (education office), and the count that blocks the decree.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use kjp_domain::{Nik, Policy, Stage, Status};
use kjp_store::StageState;
use serde::Deserialize;

use super::auth::Staff;
use super::child::{self, ChildView};
use super::{access, internal, pick_stage, render, Nav};
use crate::AppState;

#[derive(Template)]
#[template(path = "console/review.html")]
struct QueuePage {
    nav: Nav,
    stage: String,
    decreed: bool,
    blocking: usize,
    cases: Vec<ChildView>,
    can_resolve: bool,
    error: String,
    flash: String,
    /// What was sent with a refused decision, shown again with its case.
    typed: ResolveForm,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct QueueQuery {
    stage: Option<String>,
    done: Option<String>,
}

async fn queue_page(
    state: &AppState,
    staff: &Staff,
    stage: Option<Stage>,
    status: StatusCode,
    error: String,
    flash: String,
    typed: ResolveForm,
) -> Response {
    let store = &state.inner.store;
    let Some(stage) = stage else {
        let page = QueuePage {
            nav: staff.nav(),
            stage: String::new(),
            decreed: false,
            blocking: 0,
            cases: vec![],
            can_resolve: false,
            error: "Belum ada tahap. / No stage yet.".into(),
            flash,
            typed,
        };
        return render(StatusCode::OK, &page);
    };
    let decreed = match store.stage(stage).await {
        Ok(s) => s.is_some_and(|s| s.state == StageState::Decreed),
        Err(e) => return internal(e),
    };
    let all = match store.decisions_with_status(stage, "review").await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let blocking = all.len();
    let cases: Vec<ChildView> = all
        .iter()
        .filter(|d| staff.scope.covers_child(&d.kelurahan, &d.npsn))
        .map(|d| child::view(state, d))
        .collect();
    for c in &cases {
        if let Err(e) = store
            .audit(&staff.username, "view.child", &c.nik, &format!("review {stage}"), &staff.origin)
            .await
        {
            return internal(e);
        }
    }
    let page = QueuePage {
        nav: staff.nav(),
        stage: stage.to_string(),
        decreed,
        blocking,
        cases,
        can_resolve: !decreed && access::access(staff.role, "POST", "/staff/review/resolve").allowed(),
        error,
        flash,
        typed,
    };
    render(status, &page)
}

pub(crate) async fn queue(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(q): Query<QueueQuery>,
) -> Response {
    let stage = match pick_stage(&state, q.stage.as_deref()).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let flash = q.done.map(|_| "Tersimpan. / Saved.".to_string()).unwrap_or_default();
    queue_page(&state, &staff, stage, StatusCode::OK, String::new(), flash, ResolveForm::default()).await
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ResolveForm {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    nik: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Result<Form<ResolveForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let f = form.map(|Form(f)| f).unwrap_or_default();
    let stage = Stage::parse(f.stage.trim()).ok();
    let bad = |msg: &str| {
        let (state, staff, msg) = (state.clone(), staff.clone(), msg.to_string());
        let typed = ResolveForm {
            stage: f.stage.clone(),
            nik: f.nik.clone(),
            outcome: f.outcome.clone(),
            reason: f.reason.clone(),
        };
        async move { queue_page(&state, &staff, stage, StatusCode::BAD_REQUEST, msg, String::new(), typed).await }
    };
    let Some(stage) = stage else { return bad("Tahap tidak dikenal. / Unknown stage.").await };
    let Ok(nik) = Nik::parse(f.nik.trim()) else { return bad("NIK tidak valid. / Not a valid NIK.").await };
    let outcome = match f.outcome.as_str() {
        "eligible" => Status::Eligible,
        "ineligible" => Status::Ineligible,
        _ => return bad("Pilih keputusan: layak atau tidak layak. / Choose eligible or ineligible.").await,
    };
    let reason = f.reason.trim();
    if reason.is_empty() {
        return bad(&format!("NIK {}: tuliskan alasannya. / Give the reason.", nik.masked())).await;
    }
    if reason.chars().count() > 500 {
        return bad("Alasan paling banyak 500 karakter. / At most 500 characters.").await;
    }
    let policy: &Policy = &state.inner.policy;
    let store = &state.inner.store;
    match kjp_import::decree::resolve_one(store, stage, policy, &nik, outcome, reason, &staff.username).await
    {
        Ok(after) => {
            let detail = format!("{stage}: review -> {}; {reason}", after.status);
            if let Err(e) =
                store.audit(&staff.username, "review.resolve", &nik.to_string(), &detail, &staff.origin).await
            {
                return internal(e);
            }
            Redirect::to(&format!("/staff/review?stage={stage}&done=1")).into_response()
        }
        Err(
            e @ (kjp_import::decree::DecreeError::NotInReview { .. }
            | kjp_import::decree::DecreeError::NotCandidate(_)
            | kjp_import::decree::DecreeError::NoReason),
        ) => bad(&e.to_string()).await,
        Err(e) => bad(&format!("Tidak tersimpan / not saved: {e}")).await,
    }
}
