//! The DCI message envelope (`signature`, `header`, `message`) and the messages this
//! registry reads and writes, with the standard's field names (the Integrated Beneficiary
//! Registry API, `ibr_api_v1.0.0.yaml` of spdci/standards). Requests are read leniently
//! (unknown fields ignored, optional parts optional) and checked by the handlers, which
//! answer a business problem as `rjct` with a reason code rather than an HTTP error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The version of the DCI messaging protocol spoken.
pub const VERSION: &str = "1.0.0";

/// The header of a request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestHeader {
    /// `1.0.0` when given.
    #[serde(default)]
    #[schema(example = "1.0.0")]
    pub version: Option<String>,
    /// Unique per sender: a message id sent twice is rejected (`rjct.message_id.duplicate`).
    #[schema(example = "msg-0001")]
    pub message_id: String,
    /// ISO 8601 with time zone.
    #[schema(example = "2025-03-20T09:00:00+07:00")]
    pub message_ts: String,
    /// `search`, `subscribe`, `unsubscribe` or `txn-status`, matching the endpoint.
    #[schema(example = "search")]
    pub action: String,
    #[schema(example = "dinsos.jakarta.go.id")]
    pub sender_id: String,
    /// Subscribe: the URL notifications are POSTed to (http).
    #[serde(default)]
    #[schema(example = "http://dinsos.example/registry/notify")]
    pub sender_uri: Option<String>,
    #[serde(default)]
    pub receiver_id: Option<String>,
    /// How many requests the message holds.
    #[schema(example = 1)]
    pub total_count: i64,
    /// Encrypted messages are not supported: `true` is refused.
    #[serde(default)]
    pub is_msg_encrypted: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub meta: Option<Map<String, Value>>,
}

/// The header of an answer or a notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseHeader {
    #[schema(example = "1.0.0")]
    pub version: String,
    pub message_id: String,
    pub message_ts: String,
    /// `on-search`, `on-subscribe`, `on-unsubscribe`, `txn-on-status` or `notify`.
    pub action: String,
    /// `succ`, or `rjct` when the message as a whole was refused.
    #[schema(example = "succ")]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "rjct.total_count.invalid")]
    pub status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_message: Option<String>,
    pub total_count: i64,
    pub completed_count: i64,
    #[schema(example = "kjp")]
    pub sender_id: String,
    pub receiver_id: String,
    pub is_msg_encrypted: bool,
}

/// Pagination asked for: pages count from 1.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Pagination {
    #[schema(example = 10)]
    pub page_size: i64,
    #[serde(default)]
    #[schema(example = 1)]
    pub page_number: Option<i64>,
}

/// Pagination answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageInfo {
    pub page_size: i64,
    pub page_number: i64,
    /// Records in all pages.
    pub total_count: i64,
}

/// A sort key: only `stage`, `asc` or `desc`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Sort {
    #[schema(example = "stage")]
    pub attribute_name: String,
    #[serde(default)]
    #[schema(example = "desc")]
    pub sort_order: Option<String>,
}

/// What to search for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchCriteria {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub reg_type: Option<String>,
    #[serde(default)]
    pub reg_event_type: Option<String>,
    /// Only `idtype-value`.
    #[schema(example = "idtype-value")]
    pub query_type: String,
    /// `{"type": "NIK", "value": "3171..."}` (`UIN` is taken as NIK).
    #[schema(value_type = Object, example = json!({"type": "NIK", "value": "3171010403120001"}))]
    pub query: Map<String, Value>,
    /// Extension: the stage asked about (`2025/1`, `kjmu/2025/1`); absent, every stage.
    #[serde(default)]
    #[schema(example = "2025/1")]
    pub stage: Option<String>,
    #[serde(default)]
    pub sort: Option<Vec<Sort>>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub consent: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub authorize: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchItem {
    #[schema(example = "ref-1")]
    pub reference_id: String,
    #[schema(example = "2025-03-20T09:00:00+07:00")]
    pub timestamp: String,
    pub search_criteria: SearchCriteria,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchRequest {
    #[schema(example = "txn-0001")]
    pub transaction_id: String,
    pub search_request: Vec<SearchItem>,
}

/// A search: `POST /dci/registry/sync/search`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchEnvelope {
    /// Accepted and not checked: the client is authenticated by its bearer token.
    #[serde(default)]
    pub signature: Option<String>,
    pub header: RequestHeader,
    pub message: SearchRequest,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identifier {
    #[schema(example = "NIK")]
    pub identifier_type: String,
    #[schema(example = "3171010403120001")]
    pub identifier_value: String,
}

/// A person's standing in one stage of a programme: nothing else about the person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipientRecord {
    pub identifier: Identifier,
    #[schema(example = "kjp-plus")]
    pub programme_identifier: String,
    #[schema(example = "KJP Plus")]
    pub programme_name: String,
    #[schema(example = "2025/1")]
    pub stage: String,
    /// `recipient`, `unfunded` (eligible, beyond the budget ceiling), `not_recipient`
    /// (also for a NIK the stage never saw), `revoked` (a sanction) or `in_process` (no
    /// decree yet).
    #[schema(example = "recipient")]
    pub enrolment_status: String,
    pub is_recipient: bool,
    /// Since when the status holds (YYYY-MM-DD): the decree's or the amendment's date,
    /// or the sanction's; absent while in process.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2025-03-10")]
    pub since: Option<String>,
    /// The decree or amendment that fixed the status.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "266/2025")]
    pub decree: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchData {
    pub version: String,
    #[schema(example = "ns:kjp:RegistryType:IBR")]
    pub reg_type: String,
    #[schema(example = "kjp:Recipient")]
    pub reg_record_type: String,
    pub reg_records: Vec<RecipientRecord>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponseItem {
    pub reference_id: String,
    pub timestamp: String,
    /// `succ` or `rjct`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "rjct.search_criteria.invalid")]
    pub status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<SearchData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination: Option<PageInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    pub transaction_id: String,
    pub correlation_id: String,
    pub search_response: Vec<SearchResponseItem>,
}

/// The answer to a search, signed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponseEnvelope {
    /// Detached JWS (EdDSA) over `header` and `message`; key at `/.well-known/jwks.json`.
    pub signature: String,
    pub header: ResponseHeader,
    pub message: SearchResponse,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeCriteria {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub reg_type: Option<String>,
    #[serde(default)]
    pub reg_event_type: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub frequency: Option<Map<String, Value>>,
    #[serde(default)]
    pub filter_type: Option<String>,
    /// `{"stage": "2025/1"}` for one stage, `{}` for every stage.
    #[schema(value_type = Object, example = json!({"stage": "2025/1"}))]
    pub filter: Map<String, Value>,
    #[schema(example = "kjp:Recipient")]
    pub notify_record_type: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub authorize: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeItem {
    pub reference_id: String,
    pub timestamp: String,
    pub subscribe_criteria: SubscribeCriteria,
    #[serde(default)]
    pub locale: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeRequest {
    pub transaction_id: String,
    pub subscribe_request: Vec<SubscribeItem>,
}

/// A subscription: `POST /dci/registry/subscribe`. Notifications go to `header.sender_uri`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribeEnvelope {
    #[serde(default)]
    pub signature: Option<String>,
    pub header: RequestHeader,
    pub message: SubscribeRequest,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionInfo {
    pub version: String,
    /// The subscription code, for unsubscribing.
    #[schema(example = "sub_3f2a9c0e4b7d1a6f8e2c5b9d0a4f7e1c")]
    pub code: String,
    /// `subscribe` or `unsubscribe`.
    pub status: String,
    pub timestamp: String,
    pub reg_type: String,
    #[schema(value_type = Object)]
    pub filter: Value,
    pub notify_record_type: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscribeResponseItem {
    pub reference_id: String,
    pub timestamp: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "rjct.notify_details.invalid")]
    pub status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_message: Option<String>,
    pub subscriptions: Vec<SubscriptionInfo>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscribeResponse {
    pub transaction_id: String,
    pub correlation_id: String,
    pub subscribe_response: Vec<SubscribeResponseItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscribeResponseEnvelope {
    pub signature: String,
    pub header: ResponseHeader,
    pub message: SubscribeResponse,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UnsubscribeRequest {
    pub transaction_id: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    pub subscription_codes: Vec<String>,
}

/// `POST /dci/registry/unsubscribe`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnsubscribeEnvelope {
    #[serde(default)]
    pub signature: Option<String>,
    pub header: RequestHeader,
    pub message: UnsubscribeRequest,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionStatus {
    pub code: String,
    /// `unsubscribe` once cancelled.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnsubscribeResponse {
    pub transaction_id: String,
    pub correlation_id: String,
    pub timestamp: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "rjct.subscription_code.invalid")]
    pub status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_message: Option<String>,
    pub subscription_status: Vec<SubscriptionStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnsubscribeResponseEnvelope {
    pub signature: String,
    pub header: ResponseHeader,
    pub message: UnsubscribeResponse,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TxnStatusQuery {
    pub reference_id: String,
    /// `search` or `subscribe`; answered for any.
    #[serde(default)]
    pub txn_type: Option<String>,
    /// Only `transaction_id`.
    #[schema(example = "transaction_id")]
    pub attribute_type: String,
    /// The transaction id asked about.
    #[schema(example = "txn-0001")]
    pub attribute_value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TxnStatusRequest {
    pub transaction_id: String,
    pub txnstatus_request: TxnStatusQuery,
}

/// `POST /dci/registry/txn/status`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TxnStatusEnvelope {
    #[serde(default)]
    pub signature: Option<String>,
    pub header: RequestHeader,
    pub message: TxnStatusRequest,
}

/// One request received under the transaction id, as answered (statuses and codes; no
/// search results).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxnEntry {
    pub message_id: String,
    pub action: String,
    pub status: String,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxnStatus {
    pub transaction_id: String,
    pub requests: Vec<TxnEntry>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxnStatusBody {
    pub txn_type: String,
    pub txn_status: TxnStatus,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxnStatusResponse {
    pub transaction_id: String,
    pub correlation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txnstatus_response: Option<TxnStatusBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TxnStatusResponseEnvelope {
    pub signature: String,
    pub header: ResponseHeader,
    pub message: TxnStatusResponse,
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    #[schema(value_type = Vec<Object>, example = json!([{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "use": "sig", "alg": "EdDSA"}]))]
    pub keys: Vec<Value>,
}
