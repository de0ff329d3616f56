//! Delivering recipient changes to subscribers: a background task of `kjp serve`.
//!
//! Each round derives the events of any decree record or sanction not derived yet (from
//! the database, so a change made by the CLI, another server, or while no server ran is
//! found the same way), then, for each subscription with events waiting, takes its
//! delivery lease (compare-and-set in the database: one process at a time per
//! subscription, whatever the number of `kjp serve` processes), POSTs up to
//! [`NotifySettings::batch`] events as one signed DCI `notify` envelope, and on a 2xx
//! answer moves the subscription's cursor past them. Anything else (refused, timed out,
//! not 2xx) is retried with exponential backoff. Delivery is at least once: the event's
//! `reference_id` (`kjp-event-SEQ`) is stable, for the receiver to drop a repeat.
//!
//! Plain http only: https delivery needs a TLS-terminating egress proxy (docs/registry.md).

use std::time::Duration;

use axum::http::{header, Request, Uri};
use hyper_util::rt::TokioIo;
use kjp_store::{RegistryEvent, StoreError, Subscription};
use serde_json::{json, Value};

use super::{RECORD_TYPE, REG_TYPE, SENDER_ID, VERSION};
use crate::AppState;

/// How often and how patiently notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Time between rounds.
    pub every: Duration,
    /// Wait after the first failure; doubled after each further one.
    pub retry_base: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// How long a process holds a subscription while delivering to it.
    pub lease: Duration,
    /// Time allowed for one POST, connection included.
    pub timeout: Duration,
    /// Most events in one notification.
    pub batch: i64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            every: Duration::from_secs(5),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            batch: 100,
        }
    }
}

/// The wait before the next attempt after `failures` failures in a row (1 or more).
pub fn backoff(failures: i64, s: &NotifySettings) -> Duration {
    let doublings = failures.clamp(1, 20) as u32 - 1;
    s.retry_base.saturating_mul(2u32.saturating_pow(doublings)).min(s.retry_max)
}

/// Where a notification goes: an `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, String> {
        let uri: Uri = raw.parse().map_err(|_| format!("{raw:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err("https notify URLs are not delivered directly: give the http URL of a TLS-terminating egress proxy".into())
            }
            _ => return Err("the notify URL must start with http://".into()),
        }
        let authority = uri.authority().ok_or("the notify URL has no host")?;
        if authority.as_str().contains('@') {
            return Err("the notify URL may not carry credentials".into());
        }
        let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
        Ok(Target {
            host: authority.host().trim_start_matches('[').trim_end_matches(']').to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path,
        })
    }
}

/// POSTs `body` as JSON; the answer's status code.
async fn post(target: &Target, body: String) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = Request::post(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "kjp-registry")
        .body(axum::body::Body::from(body))
        .map_err(|e| e.to_string())?;
    let res = sender.send_request(req).await.map_err(|e| format!("send: {e}"));
    drop(sender);
    conn.abort();
    Ok(res?.status().as_u16())
}

/// The header and message of a notification of `events` to a subscription.
pub fn notification(sub: &Subscription, events: &[RegistryEvent], ts: &str) -> (Value, Value) {
    let (first, last) = (events.first().map_or(0, |e| e.seq), events.last().map_or(0, |e| e.seq));
    let header = json!({
        "version": VERSION,
        "message_id": format!("{}-{first}-{last}", sub.code),
        "message_ts": ts,
        "action": "notify",
        "status": "succ",
        "total_count": events.len(),
        "completed_count": events.len(),
        "sender_id": SENDER_ID,
        "receiver_id": sub.client,
        "is_msg_encrypted": false,
    });
    let notify_event: Vec<Value> = events
        .iter()
        .map(|e| {
            let stage = kjp_domain::Stage::parse(&e.stage).ok();
            let deregister = matches!(e.change.as_str(), "removed" | "revoked");
            json!({
                "reference_id": format!("kjp-event-{}", e.seq),
                "timestamp": e.recorded_at,
                "data": {
                    "version": VERSION,
                    "reg_type": REG_TYPE,
                    "reg_event_type": if deregister { "DEREGISTER" } else { "REGISTER" },
                    "reg_record_type": RECORD_TYPE,
                    "reg_records": {
                        "identifier": {"identifier_type": "NIK", "identifier_value": e.nik},
                        "programme_identifier": stage.map(|s| s.programme().id()),
                        "programme_name": stage.map(|s| s.programme().name()),
                        "stage": e.stage,
                        "change": e.change,
                        "enrolment_status": e.status,
                        "is_recipient": e.status == "recipient",
                        "since": e.since,
                        "decree": e.decree,
                    },
                },
            })
        })
        .collect();
    let message =
        json!({"transaction_id": sub.code, "subscription_code": sub.code, "notify_event": notify_event});
    (header, message)
}

fn stamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One round: derive new events, deliver one batch to each subscription that has some
/// waiting and is due, then the answers to asynchronous searches. Returns how many POSTs
/// were accepted.
pub async fn run_once(state: &AppState, owner: &str, s: &NotifySettings) -> Result<usize, StoreError> {
    let store = &state.inner.store;
    store.derive_registry_events().await?;
    let signer = match state.registry_signer() {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("registry notify: {e}");
            return Ok(0);
        }
    };
    let mut delivered = 0;
    loop {
        let now = chrono::Utc::now();
        let lease = chrono::Duration::from_std(s.lease).unwrap_or_else(|_| chrono::Duration::seconds(60));
        let Some(sub) = store.claim_registry_subscription(owner, &stamp(now), &stamp(now + lease)).await?
        else {
            break;
        };
        let retry_at = |failures: i64| {
            let wait = chrono::Duration::from_std(backoff(failures, s)).unwrap_or(chrono::Duration::hours(1));
            stamp(chrono::Utc::now() + wait)
        };
        if store.api_client(&sub.client).await?.is_none_or(|c| c.is_revoked()) {
            store.registry_delivery_failed(&sub.code, owner, "the client is revoked", &retry_at(20)).await?;
            continue;
        }
        let events = store.registry_events_after(sub.delivered_seq, &sub.stage, s.batch).await?;
        let Some(last) = events.last().map(|e| e.seq) else { continue };
        let (header, message) = notification(&sub, &events, &stamp(now));
        let signature = signer.sign(&header, &message);
        let body = json!({"signature": signature, "header": header, "message": message}).to_string();
        match send(&sub.notify_url, body, s).await {
            Ok(()) => {
                store.registry_delivered(&sub.code, owner, last).await?;
                let detail =
                    format!("events {}-{last} ({}) to client:{}", events[0].seq, events.len(), sub.client);
                if let Err(e) = store.audit("registry", "registry.notify", &sub.code, &detail, "").await {
                    tracing::error!("audit log: could not record a notification: {e}");
                }
                delivered += 1;
            }
            Err(why) => {
                // The reason names the receiver's answer, never the events' NIKs.
                tracing::warn!("registry notify: subscription {}: {why}; will retry", sub.code);
                store.registry_delivery_failed(&sub.code, owner, &why, &retry_at(sub.attempts + 1)).await?;
            }
        }
    }
    delivered += deliver_callbacks(state, owner, s, &signer).await?;
    Ok(delivered)
}

/// POSTs the answers to asynchronous requests waiting to be sent, each under its lease.
async fn deliver_callbacks(
    state: &AppState,
    owner: &str,
    s: &NotifySettings,
    signer: &super::sign::Signer,
) -> Result<usize, StoreError> {
    let store = &state.inner.store;
    let mut delivered = 0;
    loop {
        let now = chrono::Utc::now();
        let lease = chrono::Duration::from_std(s.lease).unwrap_or_else(|_| chrono::Duration::seconds(60));
        let Some(cb) = store.claim_registry_callback(owner, &stamp(now), &stamp(now + lease)).await? else {
            break;
        };
        let Ok(envelope) = serde_json::from_str::<Value>(&cb.body) else {
            store
                .registry_callback_failed(
                    &cb.id,
                    owner,
                    "unreadable answer",
                    &stamp(now + chrono::Duration::days(3650)),
                )
                .await?;
            continue;
        };
        let signature = signer.sign(&envelope["header"], &envelope["message"]);
        let body =
            json!({"signature": signature, "header": envelope["header"], "message": envelope["message"]})
                .to_string();
        match send(&cb.url, body, s).await {
            Ok(()) => {
                store.registry_callback_delivered(&cb.id, owner).await?;
                delivered += 1;
            }
            Err(why) => {
                tracing::warn!("registry {}: answer {}: {why}; will retry", cb.action, cb.id);
                let wait = chrono::Duration::from_std(backoff(cb.attempts + 1, s))
                    .unwrap_or(chrono::Duration::hours(1));
                store
                    .registry_callback_failed(&cb.id, owner, &why, &stamp(chrono::Utc::now() + wait))
                    .await?;
            }
        }
    }
    Ok(delivered)
}

/// POSTs `body` to `url`: `Ok` on a 2xx answer within the timeout.
async fn send(url: &str, body: String, s: &NotifySettings) -> Result<(), String> {
    let target = Target::parse(url)?;
    match tokio::time::timeout(s.timeout, post(&target, body)).await {
        Ok(Ok(code)) if (200..300).contains(&code) => Ok(()),
        Ok(Ok(code)) => Err(format!("answered {code}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timed out".to_string()),
    }
}

/// Runs [`run_once`] every [`NotifySettings::every`] until the task is aborted.
pub fn spawn(state: AppState, settings: NotifySettings) -> tokio::task::JoinHandle<()> {
    let owner = format!("{}-{}", std::process::id(), crate::console::auth::random_hex(6));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(settings.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_once(&state, &owner, &settings).await {
                tracing::warn!("registry notify: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_targets_are_taken() {
        let t = Target::parse("http://10.0.0.5:8081/registry/notify?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("10.0.0.5", 8081, "/registry/notify?x=1"));
        assert_eq!(Target::parse("http://example.org").unwrap().port, 80);
        assert!(Target::parse("https://example.org/n").unwrap_err().contains("proxy"));
        assert!(Target::parse("ftp://example.org/").is_err());
        assert!(Target::parse("http://user:pw@example.org/").is_err());
        assert!(Target::parse("not a url").is_err());
    }

    #[test]
    fn the_wait_doubles_up_to_the_ceiling() {
        let s = NotifySettings {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=5).map(|n| backoff(n, &s).as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 60, 60]);
    }
}
