//! Registry interoperability on the pattern of the Digital Convergence Initiative's
//! Integrated Beneficiary Registry API (spdci/standards, `ibr_api_v1.0.0.yaml`), under
//! `/dci`: other agencies ask whether a NIK is a recipient of a stage and since when
//! (synchronous search), and subscribe to recipient changes, which are POSTed to them
//! signed ([`notify`]). docs/registry.md says what of the standard is implemented.
//!
//! Every answer is a signed envelope ([`sign`]). A malformed body is an HTTP error (400,
//! 415, 422 with a JSON error); a well-formed request the registry cannot serve is
//! answered `rjct` with the standard's reason code, in the header (the whole message) or
//! per request. Every call is audited as `client:NAME`, each NIK masked.

pub mod envelope;
pub mod notify;
pub mod sign;

use std::collections::HashSet;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kjp_domain::{Nik, Stage};
use kjp_store::{Cancelled, HistoryRow};
use serde::Serialize;
use serde_json::{json, Value};

use self::envelope::*;
use super::{ApiScope, Client};
use crate::index::{Answer, Outcome};
use crate::web::{api_internal, json_error, ApiError};
use crate::AppState;

/// Who this registry says it is in its envelopes' `sender_id`.
pub const SENDER_ID: &str = "kjp";
/// The registry type named in answers and notifications.
pub const REG_TYPE: &str = "ns:kjp:RegistryType:IBR";
/// The record type of answers and notifications.
pub const RECORD_TYPE: &str = "kjp:Recipient";
/// Most requests in one message.
pub const MAX_REQUESTS: usize = 100;
/// Largest page of search records.
pub const MAX_PAGE_SIZE: i64 = 100;
const DEFAULT_PAGE_SIZE: i64 = 10;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/dci/registry/sync/search", post(search))
        .route("/dci/registry/search", post(search_async))
        .route("/dci/registry/subscribe", post(subscribe))
        .route("/dci/registry/unsubscribe", post(unsubscribe))
        .route("/dci/registry/txn/status", post(txn_status))
        .route("/.well-known/jwks.json", get(jwks))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn correlation_id() -> String {
    format!("kjp-{}", crate::console::auth::random_hex(12))
}

fn valid_ts(raw: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(raw).is_ok()
}

/// A malformed body: the rejection's own status (400, 413, 415, 422) with a JSON error.
fn malformed(r: JsonRejection) -> Response {
    json_error(r.status(), None, &r.body_text())
}

fn response_header(h: &RequestHeader, action: &str, count: usize) -> ResponseHeader {
    ResponseHeader {
        version: VERSION.into(),
        message_id: format!("kjp-{}", crate::console::auth::random_hex(12)),
        message_ts: now(),
        action: action.into(),
        status: "succ".into(),
        status_reason_code: None,
        status_reason_message: None,
        total_count: count as i64,
        completed_count: count as i64,
        sender_id: SENDER_ID.into(),
        receiver_id: h.sender_id.clone(),
        is_msg_encrypted: false,
    }
}

impl ResponseHeader {
    fn reject(&mut self, code: &str, message: &str) {
        self.status = "rjct".into();
        self.status_reason_code = Some(code.into());
        self.status_reason_message = Some(message.into());
        self.completed_count = 0;
    }
}

/// What is wrong with a request's header as a whole, as a DCI reason code and message.
fn check_header(h: &RequestHeader, action: &str, count: usize) -> Option<(&'static str, String)> {
    if h.version.as_deref().is_some_and(|v| v != VERSION) {
        return Some(("rjct.version.invalid", format!("only version {VERSION} is spoken")));
    }
    if h.message_id.is_empty() || h.message_id.len() > 99 {
        return Some(("rjct.message_id.invalid", "message_id must be 1 to 99 characters".into()));
    }
    if !valid_ts(&h.message_ts) {
        return Some(("rjct.message_ts.invalid", "message_ts must be ISO 8601 with a time zone".into()));
    }
    if h.action != action {
        return Some(("rjct.action.invalid", format!("this endpoint takes action {action:?}")));
    }
    if count > MAX_REQUESTS {
        return Some((
            "rjct.total_count.limit_exceeded",
            format!("at most {MAX_REQUESTS} requests a message"),
        ));
    }
    if h.total_count != count as i64 {
        return Some((
            "rjct.total_count.invalid",
            format!("total_count says {} but the message holds {count}", h.total_count),
        ));
    }
    None
}

/// Encrypted messages are refused at the HTTP level: nothing inside can be read.
fn encrypted(h: &RequestHeader) -> Option<Response> {
    h.is_msg_encrypted.unwrap_or(false).then(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            Some("header.is_msg_encrypted"),
            "encrypted messages are not supported: send the message in clear over TLS",
        )
    })
}

/// The signed envelope.
fn signed<M: Serialize>(state: &AppState, header: &ResponseHeader, message: &M) -> Response {
    let signer = match state.registry_signer() {
        Ok(s) => s,
        Err(e) => return api_internal(e),
    };
    let (Ok(header), Ok(message)) = (serde_json::to_value(header), serde_json::to_value(message)) else {
        return api_internal("registry: an answer would not serialise");
    };
    let signature = signer.sign(&header, &message);
    Json(json!({"signature": signature, "header": header, "message": message})).into_response()
}

/// Starts the transaction record; `false` when the message id was seen before.
async fn begin(state: &AppState, client: &Client, h: &RequestHeader, txn: &str) -> Result<bool, Response> {
    state
        .inner
        .store
        .begin_registry_txn(&client.name, &h.message_id, txn, &h.action)
        .await
        .map_err(api_internal)
}

async fn finish(state: &AppState, client: &Client, h: &RequestHeader, status: &str, detail: Value) {
    let store = &state.inner.store;
    if let Err(e) = store.finish_registry_txn(&client.name, &h.message_id, status, &detail.to_string()).await
    {
        tracing::error!("registry: could not record a transaction's answer: {e}");
    }
}

/// Since when a child has the status it has in a stage, and by which decree record:
/// the record that last moved it in or out of the recipients (`decree` for a NIK the
/// stage's records never name).
pub(crate) fn since(history: &[HistoryRow], decree: (&str, &str)) -> (bool, String, String) {
    let (mut recipient, mut date, mut number) = (false, decree.0.to_string(), decree.1.to_string());
    for h in history {
        let now = match (h.amendment, h.change.as_str()) {
            (0, _) => h.status == "recipient",
            (_, "removed") => false,
            (_, "added" | "changed") => h.status == "recipient",
            _ => continue,
        };
        if now != recipient || h.amendment == 0 {
            (recipient, date, number) = (now, h.decree_date.clone(), h.number.clone());
        }
    }
    (recipient, date, number)
}

fn rejected(item_ref: &str, code: &str, message: String) -> SearchResponseItem {
    SearchResponseItem {
        reference_id: item_ref.into(),
        timestamp: now(),
        status: "rjct".into(),
        status_reason_code: Some(code.into()),
        status_reason_message: Some(message),
        data: None,
        pagination: None,
        locale: None,
    }
}

/// A checked search request.
struct Asked {
    nik: Nik,
    stages: Vec<Stage>,
    page_size: i64,
    page_number: i64,
}

/// Checks one search request against what this registry can answer.
fn check_search(item: &SearchItem, index: &crate::Index) -> Result<Asked, (&'static str, String)> {
    let c = &item.search_criteria;
    if !valid_ts(&item.timestamp) {
        return Err(("rjct.timestamp.invalid", "timestamp must be ISO 8601 with a time zone".into()));
    }
    if c.query_type != "idtype-value" {
        return Err(("rjct.search_criteria.invalid", "only query_type idtype-value is supported".into()));
    }
    let id_type = c.query.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(id_type.to_ascii_uppercase().as_str(), "NIK" | "UIN") {
        return Err(("rjct.search_criteria.invalid", "query.type must be NIK (or UIN)".into()));
    }
    let Some(raw) = c.query.get("value").and_then(Value::as_str) else {
        return Err(("rjct.search_criteria.invalid", "query.value must be the NIK as a string".into()));
    };
    let nik = Nik::parse(raw).map_err(|e| {
        ("rjct.search_criteria.invalid", format!("query.value is not a valid NIK: {}", e.problem()))
    })?;
    let mut descending = false;
    for s in c.sort.iter().flatten() {
        match (s.attribute_name.as_str(), s.sort_order.as_deref()) {
            ("stage", None | Some("asc")) => descending = false,
            ("stage", Some("desc")) => descending = true,
            _ => return Err(("rjct.sort.invalid", "records sort only by stage, asc or desc".into())),
        }
    }
    let (page_size, page_number) = match &c.pagination {
        None => (DEFAULT_PAGE_SIZE, 1),
        Some(p) => (p.page_size, p.page_number.unwrap_or(1)),
    };
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) || page_number < 1 {
        return Err((
            "rjct.pagination.invalid",
            format!("page_size must be 1 to {MAX_PAGE_SIZE} and page_number at least 1"),
        ));
    }
    let mut stages = match c.stage.as_deref() {
        Some(raw) => {
            let stage = Stage::parse(raw).map_err(|e| ("rjct.search_criteria.invalid", e.to_string()))?;
            if !index.holds(stage) {
                return Err(("rjct.search_criteria.invalid", format!("unknown stage {stage}")));
            }
            vec![stage]
        }
        None => index.stages(),
    };
    if descending {
        stages.reverse();
    }
    Ok(Asked { nik, stages, page_size, page_number })
}

/// A NIK's record in one stage: the index's answer, and since when from the store.
async fn record(
    state: &AppState,
    index: &crate::Index,
    nik: Nik,
    stage: Stage,
) -> kjp_store::Result<RecipientRecord> {
    let base = |status: &str, since: Option<String>, decree: Option<String>| RecipientRecord {
        identifier: Identifier { identifier_type: "NIK".into(), identifier_value: nik.to_string() },
        programme_identifier: stage.programme().id().into(),
        programme_name: stage.programme().name().into(),
        stage: stage.to_string(),
        enrolment_status: status.into(),
        is_recipient: status == "recipient",
        since,
        decree,
    };
    let answer = index.standing(stage, nik.as_u64());
    let outcome = match answer {
        None | Some(Answer::InProcess) => return Ok(base("in_process", None, None)),
        Some(Answer::Found(e)) => Some(&e.outcome),
        Some(Answer::NotFound) => None,
    };
    // The sanction's category is the family's business, not the asker's.
    if let Some(Outcome::Revoked { since, .. }) = outcome {
        return Ok(base("revoked", Some(since.to_string()), Some("sanction".into())));
    }
    let store = &state.inner.store;
    let decrees = store.decrees(stage).await?;
    let first = decrees.first().map(|d| (d.decree_date.as_str(), d.number.as_str())).unwrap_or_default();
    let history = store.registry_history(stage, &nik.to_string()).await?;
    let (_, date, number) = since(&history, first);
    let status = match outcome {
        Some(Outcome::Recipient { .. }) => "recipient",
        Some(Outcome::Unfunded { .. }) => "unfunded",
        // Known and not a recipient, or never seen: the same answer.
        _ => "not_recipient",
    };
    Ok(base(status, Some(date), Some(number)))
}

/// Whether a NIK is a recipient of a stage (or of each stage), and since when.
///
/// One record per stage asked (`search_criteria.stage`, or every stage the registry
/// knows), paginated. Nothing about the person but the standing: no name, birth date,
/// address, amount or reason. A NIK the stage never saw is `not_recipient`, like one it
/// decided against. Each NIK searched is recorded in the audit log, masked.
#[utoipa::path(
    post,
    path = "/dci/registry/sync/search",
    tag = "registry",
    security(("bearer" = [])),
    request_body = SearchEnvelope,
    responses(
        (status = 200, description = "Answered: `header.status` succ, or rjct with `status_reason_code` for the message; each `search_response` succ or rjct with its reason", body = SearchResponseEnvelope),
        (status = 400, description = "The body is not JSON, or the message is encrypted", body = ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = ApiError),
        (status = 403, description = "The client does not hold registry.search", body = ApiError),
        (status = 413, description = "The body is too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 422, description = "The JSON is not a search envelope (a required field missing or of the wrong type)", body = ApiError),
    )
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<SearchEnvelope>, JsonRejection>,
) -> Response {
    if let Err(r) = client.require(&state, &ApiScope::RegistrySearch).await {
        return r;
    }
    let env = match body {
        Ok(Json(e)) => e,
        Err(r) => return malformed(r),
    };
    match answer_search(&state, &client, &env, correlation_id()).await {
        Ok((header, message)) => signed(&state, &header, &message),
        Err(r) => r,
    }
}

/// The answer to a search envelope (sync or async): the header and message to sign.
async fn answer_search(
    state: &AppState,
    client: &Client,
    env: &SearchEnvelope,
    correlation: String,
) -> Result<(ResponseHeader, SearchResponse), Response> {
    let (h, m) = (&env.header, &env.message);
    if let Some(r) = encrypted(h) {
        return Err(r);
    }
    let mut header = response_header(h, "on-search", m.search_request.len());
    let mut message = SearchResponse {
        transaction_id: m.transaction_id.clone(),
        correlation_id: correlation,
        search_response: vec![],
    };
    if let Some((code, why)) = check_header(h, "search", m.search_request.len()) {
        header.reject(code, &why);
        client.audit(state, "registry.search", "", &format!("rejected: {code}")).await;
        return Ok((header, message));
    }
    match begin(state, client, h, &m.transaction_id).await {
        Ok(true) => {}
        Ok(false) => {
            header.reject("rjct.message_id.duplicate", "this message_id was sent before");
            client.audit(state, "registry.search", "", "rejected: rjct.message_id.duplicate").await;
            return Ok((header, message));
        }
        Err(r) => return Err(r),
    }
    let index = state.index();
    let mut seen = HashSet::new();
    for item in &m.search_request {
        let reference = item.reference_id.as_str();
        if reference.is_empty() || reference.len() > 99 {
            client.audit(state, "registry.search", "", "rejected: rjct.reference_id.invalid").await;
            message.search_response.push(rejected(
                reference,
                "rjct.reference_id.invalid",
                "reference_id must be 1 to 99 characters".into(),
            ));
            continue;
        }
        if !seen.insert(reference) {
            client.audit(state, "registry.search", "", "rejected: rjct.reference_id.duplicate").await;
            message.search_response.push(rejected(
                reference,
                "rjct.reference_id.duplicate",
                "reference_id repeated in the message".into(),
            ));
            continue;
        }
        let asked = match check_search(item, &index) {
            Ok(a) => a,
            Err((code, why)) => {
                client.audit(state, "registry.search", "", &format!("rejected: {code}")).await;
                message.search_response.push(rejected(reference, code, why));
                continue;
            }
        };
        let total = asked.stages.len() as i64;
        let skip = (asked.page_number - 1).saturating_mul(asked.page_size).min(total) as usize;
        let mut records = Vec::new();
        for &stage in asked.stages.iter().skip(skip).take(asked.page_size as usize) {
            match record(state, &index, asked.nik, stage).await {
                Ok(r) => records.push(r),
                Err(e) => return Err(api_internal(e)),
            }
        }
        let answered: Vec<String> =
            records.iter().map(|r| format!("{} {}", r.stage, r.enrolment_status)).collect();
        client.audit(state, "registry.search", &asked.nik.masked(), &answered.join(", ")).await;
        message.search_response.push(SearchResponseItem {
            reference_id: reference.into(),
            timestamp: now(),
            status: "succ".into(),
            status_reason_code: None,
            status_reason_message: None,
            data: Some(SearchData {
                version: VERSION.into(),
                reg_type: REG_TYPE.into(),
                reg_record_type: RECORD_TYPE.into(),
                reg_records: records,
            }),
            pagination: Some(PageInfo {
                page_size: asked.page_size,
                page_number: asked.page_number,
                total_count: total,
            }),
            locale: item.locale.clone(),
        });
    }
    let detail: Vec<Value> = message
        .search_response
        .iter()
        .map(|r| json!({"reference_id": r.reference_id, "status": r.status, "status_reason_code": r.status_reason_code}))
        .collect();
    finish(state, client, h, "succ", json!({"search_response": detail})).await;
    Ok((header, message))
}

/// The DCI asynchronous acknowledgement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ack {
    pub message: AckMessage,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckMessage {
    /// `ACK`: the answer will be POSTed to `header.sender_uri`; `ERR`: it will not.
    #[schema(example = "ACK")]
    pub ack_status: String,
    pub timestamp: String,
    /// The `correlation_id` the answer will carry.
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AckError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckError {
    #[schema(example = "err.sender_uri.invalid")]
    pub code: String,
    pub message: String,
}

/// The search, answered asynchronously: acknowledged at once, and the same answer as the
/// synchronous search (signed, action `on-search`) POSTed to `header.sender_uri` by the
/// notifier, retried like notifications until the requester accepts it.
#[utoipa::path(
    post,
    path = "/dci/registry/search",
    tag = "registry",
    security(("bearer" = [])),
    request_body = SearchEnvelope,
    responses(
        (status = 200, description = "Acknowledged: `ACK`, the answer will be POSTed to `header.sender_uri`; `ERR` with the reason when there is nowhere to post it", body = Ack),
        (status = 400, description = "The body is not JSON, or the message is encrypted", body = ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = ApiError),
        (status = 403, description = "The client does not hold registry.search", body = ApiError),
        (status = 413, description = "The body is too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 422, description = "The JSON is not a search envelope (a required field missing or of the wrong type)", body = ApiError),
    )
)]
pub(crate) async fn search_async(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<SearchEnvelope>, JsonRejection>,
) -> Response {
    if let Err(r) = client.require(&state, &ApiScope::RegistrySearch).await {
        return r;
    }
    let env = match body {
        Ok(Json(e)) => e,
        Err(r) => return malformed(r),
    };
    let correlation = correlation_id();
    let ack = |status: &str, error: Option<AckError>| {
        Json(Ack {
            message: AckMessage {
                ack_status: status.into(),
                timestamp: now(),
                correlation_id: correlation.clone(),
                error,
            },
        })
        .into_response()
    };
    let url = match check_notify_url(env.header.sender_uri.as_deref()) {
        Ok(u) => u,
        Err(why) => {
            client.audit(&state, "registry.search", "", "rejected: err.sender_uri.invalid").await;
            return ack("ERR", Some(AckError { code: "err.sender_uri.invalid".into(), message: why }));
        }
    };
    let (header, message) = match answer_search(&state, &client, &env, correlation.clone()).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = json!({"header": header, "message": message}).to_string();
    if let Err(e) =
        state.inner.store.add_registry_callback(&correlation, &client.name, "on-search", &url, &body).await
    {
        return api_internal(e);
    }
    ack("ACK", None)
}

/// A notify URL this server can deliver to: `http://host[:port]/path`.
fn check_notify_url(raw: Option<&str>) -> Result<String, String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Err("header.sender_uri must be the URL notifications are POSTed to".into());
    };
    notify::Target::parse(raw).map(|_| raw.to_string())
}

/// Subscribes to the recipient changes of a stage (`filter.stage`) or of every stage
/// (`filter` `{}`). Each change is POSTed, signed, to `header.sender_uri` as a DCI
/// `notify`: a decree's recipients, an amendment's added, removed and changed children,
/// a sanction's revocation and its lifting. Answered at once (the standard's
/// `on-subscribe` callback is not made): each request gets its subscription code.
#[utoipa::path(
    post,
    path = "/dci/registry/subscribe",
    tag = "registry",
    security(("bearer" = [])),
    request_body = SubscribeEnvelope,
    responses(
        (status = 200, description = "Answered: each `subscribe_response` succ with its subscription code, or rjct with its reason", body = SubscribeResponseEnvelope),
        (status = 400, description = "The body is not JSON, or the message is encrypted", body = ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = ApiError),
        (status = 403, description = "The client does not hold registry.subscribe", body = ApiError),
        (status = 413, description = "The body is too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 422, description = "The JSON is not a subscribe envelope", body = ApiError),
    )
)]
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<SubscribeEnvelope>, JsonRejection>,
) -> Response {
    if let Err(r) = client.require(&state, &ApiScope::RegistrySubscribe).await {
        return r;
    }
    let env = match body {
        Ok(Json(e)) => e,
        Err(r) => return malformed(r),
    };
    let (h, m) = (&env.header, &env.message);
    if let Some(r) = encrypted(h) {
        return r;
    }
    let mut header = response_header(h, "on-subscribe", m.subscribe_request.len());
    let mut message = SubscribeResponse {
        transaction_id: m.transaction_id.clone(),
        correlation_id: correlation_id(),
        subscribe_response: vec![],
    };
    if let Some((code, why)) = check_header(h, "subscribe", m.subscribe_request.len()) {
        header.reject(code, &why);
        client.audit(&state, "registry.subscribe", "", &format!("rejected: {code}")).await;
        return signed(&state, &header, &message);
    }
    match begin(&state, &client, h, &m.transaction_id).await {
        Ok(true) => {}
        Ok(false) => {
            header.reject("rjct.message_id.duplicate", "this message_id was sent before");
            client.audit(&state, "registry.subscribe", "", "rejected: rjct.message_id.duplicate").await;
            return signed(&state, &header, &message);
        }
        Err(r) => return r,
    }
    let index = state.index();
    let mut seen = HashSet::new();
    for item in &m.subscribe_request {
        let reference = item.reference_id.as_str();
        let reject = |code: &str, why: String| SubscribeResponseItem {
            reference_id: reference.into(),
            timestamp: now(),
            status: "rjct".into(),
            status_reason_code: Some(code.into()),
            status_reason_message: Some(why),
            subscriptions: vec![],
        };
        if reference.is_empty() || reference.len() > 99 {
            message
                .subscribe_response
                .push(reject("rjct.reference_id.invalid", "reference_id must be 1 to 99 characters".into()));
            continue;
        }
        if !seen.insert(reference) {
            message
                .subscribe_response
                .push(reject("rjct.reference_id.duplicate", "reference_id repeated in the message".into()));
            continue;
        }
        if !valid_ts(&item.timestamp) {
            message
                .subscribe_response
                .push(reject("rjct.timestamp.invalid", "timestamp must be ISO 8601 with a time zone".into()));
            continue;
        }
        let url = match check_notify_url(h.sender_uri.as_deref()) {
            Ok(u) => u,
            Err(why) => {
                message.subscribe_response.push(reject("rjct.notify_details.invalid", why));
                continue;
            }
        };
        let c = &item.subscribe_criteria;
        let stage = match c.filter.get("stage") {
            None if c.filter.is_empty() => String::new(),
            Some(Value::String(raw)) if c.filter.len() == 1 => match Stage::parse(raw) {
                Ok(s) if index.holds(s) => s.to_string(),
                Ok(s) => {
                    message
                        .subscribe_response
                        .push(reject("rjct.notify_types.invalid", format!("unknown stage {s}")));
                    continue;
                }
                Err(e) => {
                    message.subscribe_response.push(reject("rjct.notify_types.invalid", e.to_string()));
                    continue;
                }
            },
            _ => {
                message.subscribe_response.push(reject(
                    "rjct.notify_types.invalid",
                    "filter must be {\"stage\": \"2025/1\"} for one stage or {} for every stage".into(),
                ));
                continue;
            }
        };
        let code = format!("sub_{}", crate::console::auth::random_hex(16));
        let sub = match state
            .inner
            .store
            .add_registry_subscription(&code, &client.name, reference, &stage, &url)
            .await
        {
            Ok(s) => s,
            Err(e) => return api_internal(e),
        };
        let scope = if stage.is_empty() { "every stage" } else { &stage };
        client.audit(&state, "registry.subscribe", &code, &format!("{scope} to {url}")).await;
        message.subscribe_response.push(SubscribeResponseItem {
            reference_id: reference.into(),
            timestamp: now(),
            status: "succ".into(),
            status_reason_code: None,
            status_reason_message: None,
            subscriptions: vec![SubscriptionInfo {
                version: VERSION.into(),
                code: sub.code,
                status: "subscribe".into(),
                timestamp: sub.created_at,
                reg_type: REG_TYPE.into(),
                filter: Value::Object(c.filter.clone()),
                notify_record_type: RECORD_TYPE.into(),
            }],
        });
    }
    let detail: Vec<Value> = message
        .subscribe_response
        .iter()
        .map(|r| {
            json!({"reference_id": r.reference_id, "status": r.status, "status_reason_code": r.status_reason_code,
                   "codes": r.subscriptions.iter().map(|s| s.code.clone()).collect::<Vec<_>>()})
        })
        .collect();
    for r in message.subscribe_response.iter().filter(|r| r.status == "rjct") {
        let code = r.status_reason_code.as_deref().unwrap_or_default();
        client.audit(&state, "registry.subscribe", "", &format!("rejected: {code}")).await;
    }
    finish(&state, &client, h, "succ", json!({"subscribe_response": detail})).await;
    signed(&state, &header, &message)
}

/// Cancels subscriptions by code. Only the client's own: an unknown code (or another
/// client's) rejects the whole message and cancels nothing.
#[utoipa::path(
    post,
    path = "/dci/registry/unsubscribe",
    tag = "registry",
    security(("bearer" = [])),
    request_body = UnsubscribeEnvelope,
    responses(
        (status = 200, description = "Answered: `message.status` succ with each code's status, or rjct with its reason", body = UnsubscribeResponseEnvelope),
        (status = 400, description = "The body is not JSON, or the message is encrypted", body = ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = ApiError),
        (status = 403, description = "The client does not hold registry.subscribe", body = ApiError),
        (status = 413, description = "The body is too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 422, description = "The JSON is not an unsubscribe envelope", body = ApiError),
    )
)]
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<UnsubscribeEnvelope>, JsonRejection>,
) -> Response {
    if let Err(r) = client.require(&state, &ApiScope::RegistrySubscribe).await {
        return r;
    }
    let env = match body {
        Ok(Json(e)) => e,
        Err(r) => return malformed(r),
    };
    let (h, m) = (&env.header, &env.message);
    if let Some(r) = encrypted(h) {
        return r;
    }
    let count = m.subscription_codes.len();
    let mut header = response_header(h, "on-unsubscribe", count);
    let mut message = UnsubscribeResponse {
        transaction_id: m.transaction_id.clone(),
        correlation_id: correlation_id(),
        timestamp: now(),
        status: "succ".into(),
        status_reason_code: None,
        status_reason_message: None,
        subscription_status: vec![],
    };
    if let Some((code, why)) = check_header(h, "unsubscribe", count) {
        header.reject(code, &why);
        client.audit(&state, "registry.unsubscribe", "", &format!("rejected: {code}")).await;
        return signed(&state, &header, &message);
    }
    match begin(&state, &client, h, &m.transaction_id).await {
        Ok(true) => {}
        Ok(false) => {
            header.reject("rjct.message_id.duplicate", "this message_id was sent before");
            client.audit(&state, "registry.unsubscribe", "", "rejected: rjct.message_id.duplicate").await;
            return signed(&state, &header, &message);
        }
        Err(r) => return r,
    }
    let store = &state.inner.store;
    let mut reject = None;
    for code in &m.subscription_codes {
        match store.registry_subscription(code).await {
            Ok(Some(s)) if s.client == client.name => {}
            Ok(_) => {
                reject = Some((
                    "rjct.subscription_code.invalid",
                    "no subscription of this client has this code".to_string(),
                ))
            }
            Err(e) => return api_internal(e),
        }
    }
    if count == 0 {
        reject = Some(("rjct.subscription_code.invalid", "no subscription code given".into()));
    }
    if reject.is_none() {
        let mut already = 0;
        for code in &m.subscription_codes {
            match store.cancel_registry_subscription(&client.name, code).await {
                Ok(Cancelled::Now) => client.audit(&state, "registry.unsubscribe", code, "").await,
                Ok(Cancelled::Already) => already += 1,
                Ok(Cancelled::Unknown) => {}
                Err(e) => return api_internal(e),
            }
            message
                .subscription_status
                .push(SubscriptionStatus { code: code.clone(), status: "unsubscribe".into() });
        }
        if already == count {
            reject = Some((
                "rjct.event.already_unsubscribed",
                "every subscription given was already cancelled".into(),
            ));
        }
    }
    if let Some((code, why)) = reject {
        client.audit(&state, "registry.unsubscribe", "", &format!("rejected: {code}")).await;
        message.status = "rjct".into();
        message.status_reason_code = Some(code.into());
        message.status_reason_message = Some(why);
    }
    let detail = json!({"status": message.status, "status_reason_code": message.status_reason_code, "codes": m.subscription_codes});
    finish(&state, &client, h, &message.status, detail).await;
    signed(&state, &header, &message)
}

/// The requests a client sent under a transaction id and how each was answered
/// (statuses, reason codes and subscription codes; never search results again).
#[utoipa::path(
    post,
    path = "/dci/registry/txn/status",
    tag = "registry",
    security(("bearer" = [])),
    request_body = TxnStatusEnvelope,
    responses(
        (status = 200, description = "Answered: `txnstatus_response`, or `header.status` rjct for an unknown transaction", body = TxnStatusResponseEnvelope),
        (status = 400, description = "The body is not JSON, or the message is encrypted", body = ApiError),
        (status = 401, description = "No token, or an unknown or revoked one", body = ApiError),
        (status = 403, description = "The client holds neither registry.search nor registry.subscribe", body = ApiError),
        (status = 413, description = "The body is too large", body = ApiError),
        (status = 415, description = "Not application/json", body = ApiError),
        (status = 422, description = "The JSON is not a txn-status envelope", body = ApiError),
    )
)]
pub(crate) async fn txn_status(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<TxnStatusEnvelope>, JsonRejection>,
) -> Response {
    if !client.scopes.contains(&ApiScope::RegistrySearch) {
        if let Err(r) = client.require(&state, &ApiScope::RegistrySubscribe).await {
            return r;
        }
    }
    let env = match body {
        Ok(Json(e)) => e,
        Err(r) => return malformed(r),
    };
    let (h, m) = (&env.header, &env.message);
    if let Some(r) = encrypted(h) {
        return r;
    }
    let mut header = response_header(h, "txn-on-status", 1);
    let mut message = TxnStatusResponse {
        transaction_id: m.transaction_id.clone(),
        correlation_id: correlation_id(),
        txnstatus_response: None,
    };
    if let Some((code, why)) = check_header(h, "txn-status", 1) {
        header.reject(code, &why);
        client.audit(&state, "registry.txn_status", "", &format!("rejected: {code}")).await;
        return signed(&state, &header, &message);
    }
    let q = &m.txnstatus_request;
    let asked = match q.attribute_type.as_str() {
        "transaction_id" => q.attribute_value.as_str(),
        _ => {
            header.reject("rjct.search_criteria.invalid", "only attribute_type transaction_id is supported");
            client.audit(&state, "registry.txn_status", "", "rejected: rjct.search_criteria.invalid").await;
            return signed(&state, &header, &message);
        }
    };
    let txns = match state.inner.store.registry_txns(&client.name, asked).await {
        Ok(t) => t,
        Err(e) => return api_internal(e),
    };
    client.audit(&state, "registry.txn_status", "", &format!("{} request(s)", txns.len())).await;
    if txns.is_empty() {
        header.reject("rjct.reference_id.invalid", "no transaction of this client has this id");
        return signed(&state, &header, &message);
    }
    let requests = txns
        .into_iter()
        .map(|t| TxnEntry {
            message_id: t.message_id,
            action: t.action,
            status: t.status,
            timestamp: t.recorded_at,
            detail: serde_json::from_str(&t.detail).unwrap_or(Value::Null),
        })
        .collect::<Vec<_>>();
    let txn_type = q.txn_type.clone().unwrap_or_else(|| requests[0].action.clone());
    message.txnstatus_response = Some(TxnStatusBody {
        txn_type,
        txn_status: TxnStatus { transaction_id: asked.to_string(), requests },
    });
    signed(&state, &header, &message)
}

/// The public key the registry's envelopes are signed with (RFC 7517).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "registry",
    responses(
        (status = 200, description = "The signing key set", body = Jwks),
    )
)]
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    match state.registry_signer() {
        Ok(s) => Json(Jwks { keys: vec![s.jwk()] }).into_response(),
        Err(e) => api_internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(amendment: i64, date: &str, status: &str, change: &str) -> HistoryRow {
        HistoryRow {
            amendment,
            number: format!("n{amendment}"),
            decree_date: date.into(),
            status: status.into(),
            change: change.into(),
        }
    }

    #[test]
    fn since_is_the_record_that_last_moved_the_child_in_or_out() {
        let decree = ("2025-03-10", "n0");
        assert_eq!(since(&[], decree), (false, "2025-03-10".into(), "n0".into()), "never named");
        let r0 = row(0, "2025-03-10", "recipient", "");
        assert_eq!(since(std::slice::from_ref(&r0), decree).1, "2025-03-10");
        // A change of amounts keeps the date the child became a recipient.
        let changed = row(1, "2025-04-01", "recipient", "changed");
        assert_eq!(since(&[r0.clone(), changed.clone()], decree), (true, "2025-03-10".into(), "n0".into()));
        let removed = row(2, "2025-05-01", "not_recipient", "removed");
        assert_eq!(
            since(&[r0.clone(), changed, removed.clone()], decree),
            (false, "2025-05-01".into(), "n2".into())
        );
        let added = row(3, "2025-06-01", "recipient", "added");
        assert_eq!(since(&[r0, removed, added], decree), (true, "2025-06-01".into(), "n3".into()));
        let unfunded = row(0, "2025-03-10", "unfunded", "");
        assert_eq!(since(&[unfunded, row(1, "2025-04-02", "recipient", "added")], decree).1, "2025-04-02");
    }
}
