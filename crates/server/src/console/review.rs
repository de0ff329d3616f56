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
    /// Review cases the account's scope covers; this page shows `first..=last` of them.
    in_scope: usize,
    first: usize,
    last: usize,
    prev: Option<usize>,
    next: Option<usize>,
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
    from: Option<usize>,
}

/// Review cases on one page.
const PAGE: usize = 20;

/// How the queue is shown: after a refused decision (`error`, what was `typed`), after a
/// saved one (`flash`), from which case.
struct Shown {
    status: StatusCode,
    error: String,
    flash: String,
    typed: ResolveForm,
    from: usize,
}

async fn queue_page(state: &AppState, staff: &Staff, stage: Option<Stage>, shown: Shown) -> Response {
    let Shown { status, error, flash, typed, from } = shown;
    let store = &state.inner.store;
    let Some(stage) = stage else {
        let page = QueuePage {
            nav: staff.nav(),
            stage: String::new(),
            decreed: false,
            blocking: 0,
            in_scope: 0,
            first: 0,
            last: 0,
            prev: None,
            next: None,
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
    let mine: Vec<_> = all.iter().filter(|d| staff.scope.covers_child(&d.kelurahan, &d.npsn)).collect();
    // A page at a time: each case shown is a view of a child's record, and audited.
    let from = match mine.iter().position(|d| d.nik == typed.nik) {
        Some(i) => i / PAGE * PAGE,
        None => from.min(mine.len().saturating_sub(1) / PAGE * PAGE),
    };
    let cases: Vec<ChildView> = mine.iter().skip(from).take(PAGE).map(|d| child::view(state, d)).collect();
    let in_scope = mine.len();
    let prev = if from > 0 { Some(from.saturating_sub(PAGE)) } else { None };
    let next = if from + PAGE < in_scope { Some(from + PAGE) } else { None };
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
        in_scope,
        first: from + 1,
        last: from + cases.len(),
        prev,
        next,
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
    let from = q.from.unwrap_or(0);
    queue_page(
        &state,
        &staff,
        stage,
        Shown { status: StatusCode::OK, error: String::new(), flash, typed: ResolveForm::default(), from },
    )
    .await
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
        async move {
            queue_page(
                &state,
                &staff,
                stage,
                Shown { status: StatusCode::BAD_REQUEST, error: msg, flash: String::new(), typed, from: 0 },
            )
            .await
        }
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
