//! The DCI registry API, black box: search (statuses, since when, pagination, rejections,
//! tokens and scopes, the audit log), subscribe, the signed notifications a change sends
//! to a receiver (retried after a failure, once per batch across deliverers), unsubscribe.

mod common;
use common::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kjp_server::api::clients::new_token;
use kjp_server::api::registry::notify::{run_once, NotifySettings};
use kjp_server::api::registry::sign::verify;
use serde_json::{json, Value};

/// A client with these scopes; its token.
async fn client(app: &TestApp, name: &str, scopes: &[&str]) -> String {
    let (token, digest) = new_token();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    assert!(app.store.add_api_client(name, "Dinas Sosial", &scopes, &digest, "test").await.unwrap());
    token
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut req =
        app.client.post(app.url(path)).header("content-type", "application/json").body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let code = res.status().as_u16();
    let text = res.text().await.expect("body");
    (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

fn header(message_id: &str, action: &str, count: usize) -> Value {
    json!({
        "version": "1.0.0",
        "message_id": message_id,
        "message_ts": "2025-04-20T09:00:00+07:00",
        "action": action,
        "sender_id": "dinsos.test",
        "total_count": count,
    })
}

fn by_nik(reference: &str, nik: &str, stage: Option<&str>) -> Value {
    let mut criteria = json!({"query_type": "idtype-value", "query": {"type": "NIK", "value": nik}});
    if let Some(s) = stage {
        criteria["stage"] = json!(s);
    }
    json!({"reference_id": reference, "timestamp": "2025-04-20T09:00:00+07:00", "search_criteria": criteria})
}

async fn search(app: &TestApp, token: &str, message_id: &str, items: Vec<Value>) -> Value {
    let body = json!({
        "signature": "",
        "header": header(message_id, "search", items.len()),
        "message": {"transaction_id": format!("txn-{message_id}"), "search_request": items},
    });
    let (code, v) = post(app, "/dci/registry/sync/search", Some(token), &body.to_string()).await;
    assert_eq!(code, 200, "{v}");
    v
}

/// The `x` of the key the server publishes.
async fn published_key(app: &TestApp) -> String {
    let res = app.client.get(app.url("/.well-known/jwks.json")).send().await.expect("jwks");
    assert_eq!(res.status().as_u16(), 200);
    let jwks: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(
        (jwks["keys"][0]["kty"].as_str(), jwks["keys"][0]["alg"].as_str()),
        (Some("OKP"), Some("EdDSA"))
    );
    jwks["keys"][0]["x"].as_str().expect("x").to_string()
}

fn signed_by(x: &str, envelope: &Value) -> bool {
    verify(x, envelope["signature"].as_str().unwrap_or_default(), &envelope["header"], &envelope["message"])
}

fn answer<'a>(v: &'a Value, reference: &str) -> &'a Value {
    v["message"]["search_response"]
        .as_array()
        .expect("search_response")
        .iter()
        .find(|r| r["reference_id"] == reference)
        .unwrap_or_else(|| panic!("no answer for {reference}: {v}"))
}

#[tokio::test]
async fn search_answers_the_standing_and_since_when_and_nothing_else() {
    let app = spawn(true, 0).await;
    let token = client(&app, "dinsos", &["registry.search"]).await;
    let items = vec![
        by_nik("r1", RECIPIENT, Some("2025/1")),
        by_nik("r2", UNFUNDED, Some("2025/1")),
        by_nik("r3", CAR_OWNED, Some("2025/1")),
        by_nik("r4", UNKNOWN, Some("2025/1")),
        by_nik("r5", "3171010403120", Some("2025/1")),
        by_nik("r6", "3171013203120001", Some("2025/1")),
        by_nik("r7", RECIPIENT, Some("2031/1")),
    ];
    let v = search(&app, &token, "m1", items).await;
    assert_eq!(v["header"]["status"], "succ", "{v}");
    assert_eq!(
        (v["header"]["action"].as_str(), v["header"]["receiver_id"].as_str()),
        (Some("on-search"), Some("dinsos.test"))
    );
    assert_eq!(v["message"]["transaction_id"], "txn-m1");
    assert!(signed_by(&published_key(&app).await, &v), "the answer verifies against the JWKS");

    let record = |r: &str| answer(&v, r)["data"]["reg_records"][0].clone();
    let adi = record("r1");
    assert_eq!(answer(&v, "r1")["status"], "succ");
    assert_eq!(adi["identifier"], json!({"identifier_type": "NIK", "identifier_value": RECIPIENT}));
    assert_eq!(
        (
            adi["enrolment_status"].as_str(),
            adi["is_recipient"].as_bool(),
            adi["since"].as_str(),
            adi["decree"].as_str()
        ),
        (Some("recipient"), Some(true), Some("2025-03-10"), Some("266/2025"))
    );
    assert_eq!(
        (adi["programme_identifier"].as_str(), adi["stage"].as_str()),
        (Some("kjp-plus"), Some("2025/1"))
    );
    assert_eq!(answer(&v, "r1")["pagination"], json!({"page_size": 10, "page_number": 1, "total_count": 1}));
    assert_eq!(record("r2")["enrolment_status"], "unfunded");
    assert_eq!(record("r2")["is_recipient"], false);
    assert_eq!(record("r3")["enrolment_status"], "not_recipient");
    // A NIK the stage never saw gets exactly the answer of a child it decided against.
    let mut unknown = record("r4");
    unknown["identifier"]["identifier_value"] = json!(CAR_OWNED);
    assert_eq!(unknown, record("r3"));
    for (r, code) in [
        ("r5", "rjct.search_criteria.invalid"),
        ("r6", "rjct.search_criteria.invalid"),
        ("r7", "rjct.search_criteria.invalid"),
    ] {
        let a = answer(&v, r);
        assert_eq!(
            (a["status"].as_str(), a["status_reason_code"].as_str()),
            (Some("rjct"), Some(code)),
            "{r}: {a}"
        );
        assert!(a.get("data").is_none(), "{a}");
    }
    assert!(answer(&v, "r6")["status_reason_message"].as_str().unwrap().contains("NIK"));
    assert!(answer(&v, "r7")["status_reason_message"].as_str().unwrap().contains("unknown stage"));
    // Nothing about the person but the standing: no name, birth date, amount or reason.
    let text = v.to_string();
    for leak in ["Adi", "Saputra", RECIPIENT_BIRTH, "470000", "EXCLUDED_CAR", "BUDGET_CEILING", "SMP"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }

    // Audited: each NIK searched, masked; no full NIK anywhere in the client's entries.
    let log = app.store.audit_entries(100, "client:dinsos").await.unwrap();
    let searches: Vec<_> = log.iter().filter(|e| e.action == "registry.search").collect();
    assert!(
        searches.iter().any(|e| e.subject == "3171**********01" && e.detail.contains("2025/1 recipient")),
        "{searches:?}"
    );
    assert_eq!(searches.len(), 7, "one entry per request: {searches:?}");
    for e in &log {
        for nik in [RECIPIENT, UNFUNDED, CAR_OWNED, UNKNOWN, "3171013203120001"] {
            assert!(
                !e.subject.contains(nik) && !e.detail.contains(nik),
                "a full NIK in the audit log: {e:?}"
            );
        }
    }
}

#[tokio::test]
async fn every_stage_is_a_record_paginated_and_bad_pages_or_headers_are_rejected() {
    let app = spawn(true, 0).await;
    kjp_import::stage::open(&app.store, kjp_domain::Stage::parse("2025/2").unwrap()).await.expect("open");
    app.state.reload().await.expect("reload");
    let token = client(&app, "dinsos", &["registry.search"]).await;
    let page = |n: i64, size: i64, sort: Option<&str>| {
        let mut item = by_nik("p", RECIPIENT, None);
        item["search_criteria"]["pagination"] = json!({"page_size": size, "page_number": n});
        if let Some(order) = sort {
            item["search_criteria"]["sort"] = json!([{"attribute_name": "stage", "sort_order": order}]);
        }
        item
    };
    let v = search(&app, &token, "p1", vec![page(1, 1, None)]).await;
    let a = answer(&v, "p");
    assert_eq!(a["pagination"], json!({"page_size": 1, "page_number": 1, "total_count": 2}));
    assert_eq!(a["data"]["reg_records"][0]["stage"], "2025/1");
    let v = search(&app, &token, "p2", vec![page(2, 1, None)]).await;
    let second = &answer(&v, "p")["data"]["reg_records"][0];
    assert_eq!(
        (second["stage"].as_str(), second["enrolment_status"].as_str()),
        (Some("2025/2"), Some("in_process"))
    );
    assert!(second.get("since").is_none(), "{second}");
    let v = search(&app, &token, "p3", vec![page(3, 1, None)]).await;
    assert_eq!(answer(&v, "p")["data"]["reg_records"], json!([]));
    let v = search(&app, &token, "p3b", vec![page(i64::MAX, 100, None)]).await;
    assert_eq!(answer(&v, "p")["data"]["reg_records"], json!([]), "a page far beyond the last");
    let v = search(&app, &token, "p4", vec![page(1, 1, Some("desc"))]).await;
    assert_eq!(answer(&v, "p")["data"]["reg_records"][0]["stage"], "2025/2");
    let v = search(&app, &token, "p5", vec![page(1, 101, None)]).await;
    assert_eq!(answer(&v, "p")["status_reason_code"], "rjct.pagination.invalid");
    let v = search(&app, &token, "p6", vec![page(0, 10, None)]).await;
    assert_eq!(answer(&v, "p")["status_reason_code"], "rjct.pagination.invalid");
    let v = search(&app, &token, "p7", vec![page(1, 10, Some("sideways"))]).await;
    assert_eq!(answer(&v, "p")["status_reason_code"], "rjct.sort.invalid");
    let v = search(&app, &token, "p8", vec![page(1, 10, None), page(1, 10, None)]).await;
    let second = &v["message"]["search_response"][1];
    assert_eq!(second["status_reason_code"], "rjct.reference_id.duplicate", "{v}");

    // The message as a whole.
    let v = search(&app, &token, "p1", vec![page(1, 1, None)]).await;
    assert_eq!(
        (v["header"]["status"].as_str(), v["header"]["status_reason_code"].as_str()),
        (Some("rjct"), Some("rjct.message_id.duplicate"))
    );
    let mut body = json!({"header": header("h1", "search", 3), "message": {"transaction_id": "t", "search_request": [page(1, 1, None)]}});
    let (code, v) = post(&app, "/dci/registry/sync/search", Some(&token), &body.to_string()).await;
    assert_eq!(
        (code, v["header"]["status_reason_code"].as_str()),
        (200, Some("rjct.total_count.invalid")),
        "{v}"
    );
    body["header"] = header("h2", "subscribe", 1);
    let (_, v) = post(&app, "/dci/registry/sync/search", Some(&token), &body.to_string()).await;
    assert_eq!(v["header"]["status_reason_code"], "rjct.action.invalid");
    body["header"] = header("h3", "search", 1);
    body["header"]["is_msg_encrypted"] = json!(true);
    let (code, v) = post(&app, "/dci/registry/sync/search", Some(&token), &body.to_string()).await;
    assert_eq!((code, v["field"].as_str()), (400, Some("header.is_msg_encrypted")), "{v}");
    let (code, v) = post(&app, "/dci/registry/sync/search", Some(&token), "{not json").await;
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].is_string());
    let (code, v) = post(&app, "/dci/registry/sync/search", Some(&token), r#"{"message": {}}"#).await;
    assert_eq!(code, 422, "{v}");
    assert!(v["error"].is_string());

    // The transaction's requests and how each was answered; another client's is unknown.
    let txn = json!({"header": header("s1", "txn-status", 1), "message": {"transaction_id": "q",
        "txnstatus_request": {"reference_id": "q1", "txn_type": "search", "attribute_type": "transaction_id", "attribute_value": "txn-p5"}}});
    let (code, v) = post(&app, "/dci/registry/txn/status", Some(&token), &txn.to_string()).await;
    assert_eq!(code, 200, "{v}");
    let requests = &v["message"]["txnstatus_response"]["txn_status"]["requests"];
    assert_eq!(requests[0]["status"], "succ", "{v}");
    assert_eq!(requests[0]["detail"]["search_response"][0]["status_reason_code"], "rjct.pagination.invalid");
    let other = client(&app, "bpjs", &["registry.search"]).await;
    let mut txn2 = txn.clone();
    txn2["header"]["message_id"] = json!("s2");
    let (_, v) = post(&app, "/dci/registry/txn/status", Some(&other), &txn2.to_string()).await;
    assert_eq!(
        (v["header"]["status"].as_str(), v["header"]["status_reason_code"].as_str()),
        (Some("rjct"), Some("rjct.reference_id.invalid"))
    );
}

#[tokio::test]
async fn a_token_and_the_scope_are_required_and_a_refusal_is_audited() {
    let app = spawn(true, 0).await;
    let body = json!({"header": header("a1", "search", 1), "message": {"transaction_id": "t", "search_request": [by_nik("r", RECIPIENT, None)]}}).to_string();
    for path in [
        "/dci/registry/sync/search",
        "/dci/registry/subscribe",
        "/dci/registry/unsubscribe",
        "/dci/registry/txn/status",
    ] {
        let (code, v) = post(&app, path, None, &body).await;
        assert_eq!(code, 401, "{path}: {v}");
        let (code, _) = post(&app, path, Some("kjp_0000"), &body).await;
        assert_eq!(code, 401, "{path}");
    }
    let exporter = client(&app, "bappeda", &["decree.export"]).await;
    for path in ["/dci/registry/sync/search", "/dci/registry/subscribe", "/dci/registry/txn/status"] {
        let (code, v) = post(&app, path, Some(&exporter), &body).await;
        assert_eq!(code, 403, "{path}: {v}");
    }
    let searcher = client(&app, "dinsos", &["registry.search"]).await;
    let (code, _) = post(&app, "/dci/registry/subscribe", Some(&searcher), &body).await;
    assert_eq!(code, 403, "search does not grant subscribe");
    let log = app.store.audit_entries(100, "api.denied").await.unwrap();
    assert!(
        log.iter().any(|e| e.actor == "client:bappeda" && e.detail.contains("registry.search")),
        "{log:?}"
    );
    assert!(log.iter().all(|e| !e.detail.contains(RECIPIENT)));
}

/// A receiver of notifications: records every body; answers 500 to the first `fail` ones.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn receiver(fail: usize) -> Receiver {
    use axum::routing::post;
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = axum::Router::new().route(
        "/registry/notify",
        post(move |body: String| {
            let seen = seen.clone();
            async move {
                let mut all = seen.lock().unwrap();
                all.push(serde_json::from_str::<Value>(&body).expect("a JSON notification"));
                if all.len() <= fail {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url: format!("http://{addr}/registry/notify"), bodies }
}

impl Receiver {
    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn subscribe(app: &TestApp, token: &str, message_id: &str, url: &str, filter: Value) -> Value {
    let mut h = header(message_id, "subscribe", 1);
    h["sender_uri"] = json!(url);
    let body = json!({"header": h, "message": {"transaction_id": "sub-txn", "subscribe_request": [{
        "reference_id": "s1", "timestamp": "2025-04-20T09:00:00+07:00",
        "subscribe_criteria": {"reg_event_type": "REGISTER", "filter": filter, "notify_record_type": "kjp:Recipient"}}]}});
    let (code, v) = post(app, "/dci/registry/subscribe", Some(token), &body.to_string()).await;
    assert_eq!(code, 200, "{v}");
    v
}

fn settings() -> NotifySettings {
    NotifySettings {
        retry_base: Duration::from_millis(300),
        retry_max: Duration::from_secs(1),
        ..Default::default()
    }
}

fn sanction(nik: &str, act: &str) -> kjp_store::money::Sanction {
    kjp_store::money::Sanction {
        nik: nik.parse().unwrap(),
        seq: 0,
        category: "TRUANCY".into(),
        evidence: "letter 12/2025".into(),
        act_date: act.into(),
        school: "20100001".into(),
        stop_from: 202505,
        withdraw: 0,
        recorded_at: "2025-04-21T09:00:00Z".into(),
        recorded_by: "officer".into(),
        lifted_at: String::new(),
        lifted_by: String::new(),
        lift_school: String::new(),
        lift_reason: String::new(),
    }
}

/// The events of every notification received, as (reference_id, change, nik).
fn events(bodies: &[Value]) -> Vec<(String, String, String)> {
    bodies
        .iter()
        .flat_map(|b| b["message"]["notify_event"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let r = &e["data"]["reg_records"];
            (
                e["reference_id"].as_str().unwrap().to_string(),
                r["change"].as_str().unwrap().to_string(),
                r["identifier"]["identifier_value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_change_is_notified_signed_retried_after_a_failure_and_stops_after_unsubscribe() {
    let app = spawn(true, 0).await;
    let token = client(&app, "dinsos", &["registry.subscribe", "registry.search"]).await;
    let rx = receiver(1).await;
    let v = subscribe(&app, &token, "sub1", &rx.url, json!({"stage": "2025/1"})).await;
    let subscribed = &v["message"]["subscribe_response"][0];
    assert_eq!(subscribed["status"], "succ", "{v}");
    let code = subscribed["subscriptions"][0]["code"].as_str().expect("a subscription code").to_string();
    assert!(code.starts_with("sub_"));
    let x = published_key(&app).await;
    assert!(signed_by(&x, &v));

    // The decree was there before the subscription: nothing to send.
    let s = settings();
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0);
    assert!(rx.bodies().is_empty());

    // An amendment removes a recipient.
    use kjp_import::amend::{self, Change, CorrectionRequest};
    let req = CorrectionRequest {
        nik: kjp_domain::Nik::parse(RECIPIENT).unwrap(),
        change: Change::Outcome(kjp_domain::Status::Ineligible),
        reason: "moved out of Jakarta".into(),
        evidence: "Dukcapil letter".into(),
        by: "officer".into(),
    };
    amend::correct(&app.store, stage(), &req).await.expect("correct");
    let decree = kjp_import::decree::DecreeRequest {
        number: "301/2025".into(),
        date: "2025-04-15".parse().unwrap(),
        note: String::new(),
    };
    amend::amend(&app.store, stage(), &decree).await.expect("amend");

    // The receiver fails the first POST: nothing is lost, it comes again after the wait.
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0);
    assert_eq!(rx.bodies().len(), 1);
    let sub = app.store.registry_subscription(&code).await.unwrap().unwrap();
    assert_eq!((sub.attempts, sub.last_error.as_str()), (1, "answered 500"));
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0, "not due yet");
    assert_eq!(rx.bodies().len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 1);
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(events(&bodies[..1]), events(&bodies[1..]), "the same events, with the same ids, again");
    let got = events(&bodies[1..]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].1.as_str(), got[0].2.as_str()), ("removed", RECIPIENT));
    let n = &bodies[1];
    assert_eq!(
        (n["header"]["action"].as_str(), n["header"]["receiver_id"].as_str()),
        (Some("notify"), Some("dinsos"))
    );
    assert_eq!(n["message"]["transaction_id"], code.as_str());
    let record = &n["message"]["notify_event"][0]["data"];
    assert_eq!(record["reg_event_type"], "DEREGISTER");
    assert_eq!(
        (
            record["reg_records"]["since"].as_str(),
            record["reg_records"]["decree"].as_str(),
            record["reg_records"]["stage"].as_str()
        ),
        (Some("2025-04-15"), Some("301/2025"), Some("2025/1"))
    );
    assert!(signed_by(&x, n), "the notification verifies against the JWKS");
    let mut tampered = n.clone();
    tampered["message"]["notify_event"][0]["data"]["reg_records"]["change"] = json!("added");
    assert!(!signed_by(&x, &tampered), "a tampered notification does not");
    let sub = app.store.registry_subscription(&code).await.unwrap().unwrap();
    assert_eq!((sub.attempts, sub.last_error.as_str()), (0, ""));
    let log = app.store.audit_entries(100, "registry.notify").await.unwrap();
    assert!(log.iter().any(|e| e.subject == code && e.detail.contains("client:dinsos")), "{log:?}");

    // Search now says since the amendment.
    app.state.reload().await.unwrap();
    let v = search(&app, &token, "after", vec![by_nik("r", RECIPIENT, Some("2025/1"))]).await;
    let r = &answer(&v, "r")["data"]["reg_records"][0];
    assert_eq!(
        (r["enrolment_status"].as_str(), r["since"].as_str(), r["decree"].as_str()),
        (Some("not_recipient"), Some("2025-04-15"), Some("301/2025"))
    );

    // A sanction revokes another recipient. Two deliverers at once post it once.
    app.store.add_sanction(&sanction(DTKS_OUTSIDE, "2025-04-20")).await.expect("sanction");
    let (a, b) = tokio::join!(run_once(&app.state, "p1", &s), run_once(&app.state, "p2", &s));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let got = events(&rx.bodies()[2..]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].1.as_str(), got[0].2.as_str()), ("revoked", DTKS_OUTSIDE));
    assert_eq!(rx.bodies()[2]["message"]["notify_event"][0]["data"]["reg_records"]["since"], "2025-04-20");

    // Unsubscribed: no more.
    let unsub = json!({"header": header("u1", "unsubscribe", 1), "message": {"transaction_id": "u", "timestamp": "2025-04-22T09:00:00+07:00", "subscription_codes": [code]}});
    let (c, v) = post(&app, "/dci/registry/unsubscribe", Some(&token), &unsub.to_string()).await;
    assert_eq!((c, v["message"]["status"].as_str()), (200, Some("succ")), "{v}");
    assert_eq!(v["message"]["subscription_status"][0]["status"], "unsubscribe");
    assert!(app
        .store
        .lift_sanction(DTKS_OUTSIDE.parse().unwrap(), "20100001", "apologised", "officer")
        .await
        .unwrap()
        .is_some());
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0);
    assert_eq!(rx.bodies().len(), 3);
    let mut again = unsub.clone();
    again["header"]["message_id"] = json!("u2");
    let (_, v) = post(&app, "/dci/registry/unsubscribe", Some(&token), &again.to_string()).await;
    assert_eq!(v["message"]["status_reason_code"], "rjct.event.already_unsubscribed");
}

#[tokio::test]
async fn a_subscription_needs_a_deliverable_url_and_a_known_stage_and_is_its_clients_own() {
    let app = spawn(true, 0).await;
    let token = client(&app, "dinsos", &["registry.subscribe"]).await;
    let cases = [
        ("https://dinsos.example/notify", json!({}), "rjct.notify_details.invalid"),
        ("", json!({}), "rjct.notify_details.invalid"),
        ("http://127.0.0.1:9/notify", json!({"stage": "2031/1"}), "rjct.notify_types.invalid"),
        ("http://127.0.0.1:9/notify", json!({"stage": 7}), "rjct.notify_types.invalid"),
    ];
    for (i, (url, filter, code)) in cases.into_iter().enumerate() {
        let v = subscribe(&app, &token, &format!("bad{i}"), url, filter).await;
        let a = &v["message"]["subscribe_response"][0];
        assert_eq!(
            (a["status"].as_str(), a["status_reason_code"].as_str()),
            (Some("rjct"), Some(code)),
            "{v}"
        );
    }
    let v = subscribe(&app, &token, "ok", "http://127.0.0.1:9/notify", json!({})).await;
    let code =
        v["message"]["subscribe_response"][0]["subscriptions"][0]["code"].as_str().unwrap().to_string();
    let other = client(&app, "bpjs", &["registry.subscribe"]).await;
    let unsub = json!({"header": header("u1", "unsubscribe", 1), "message": {"transaction_id": "u", "subscription_codes": [code]}});
    let (_, v) = post(&app, "/dci/registry/unsubscribe", Some(&other), &unsub.to_string()).await;
    assert_eq!(v["message"]["status_reason_code"], "rjct.subscription_code.invalid", "{v}");
    assert!(
        app.store.registry_subscription(&code).await.unwrap().unwrap().cancelled_at.is_empty(),
        "still active"
    );
    let log = app.store.audit_entries(100, "client:").await.unwrap();
    let refused = |actor: &str, action: &str, code: &str| {
        log.iter().any(|e| e.actor == actor && e.action == action && e.detail == format!("rejected: {code}"))
    };
    assert!(refused("client:bpjs", "registry.unsubscribe", "rjct.subscription_code.invalid"), "{log:?}");
    assert!(refused("client:dinsos", "registry.subscribe", "rjct.notify_details.invalid"), "{log:?}");
    assert!(log.iter().any(|e| e.action == "registry.subscribe" && e.subject == code), "{log:?}");
}

#[tokio::test]
async fn an_async_search_is_acknowledged_and_its_answer_posted_signed_until_accepted() {
    let app = spawn(true, 0).await;
    let token = client(&app, "dinsos", &["registry.search"]).await;
    let rx = receiver(1).await;
    let mut h = header("a1", "search", 1);
    h["sender_uri"] = json!(rx.url);
    let body = json!({"header": h, "message": {"transaction_id": "t-async", "search_request": [by_nik("r1", RECIPIENT, Some("2025/1"))]}});
    let (code, ack) = post(&app, "/dci/registry/search", Some(&token), &body.to_string()).await;
    assert_eq!((code, ack["message"]["ack_status"].as_str()), (200, Some("ACK")), "{ack}");
    let correlation = ack["message"]["correlation_id"].as_str().expect("correlation_id").to_string();

    let s = settings();
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0, "the receiver fails the first POST");
    let waiting = app.store.registry_callback(&correlation).await.unwrap().unwrap();
    assert_eq!((waiting.attempts, waiting.delivered_at.is_empty()), (1, true));
    assert!(waiting.body.contains(RECIPIENT), "kept until delivered");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 1);
    let bodies = rx.bodies();
    assert_eq!(bodies.len(), 2);
    let answer_env = &bodies[1];
    assert_eq!(answer_env["header"]["action"], "on-search");
    assert_eq!(answer_env["message"]["correlation_id"], correlation.as_str());
    assert_eq!(answer_env["message"]["transaction_id"], "t-async");
    let record = &answer(answer_env, "r1")["data"]["reg_records"][0];
    assert_eq!(
        (record["enrolment_status"].as_str(), record["since"].as_str()),
        (Some("recipient"), Some("2025-03-10"))
    );
    assert!(signed_by(&published_key(&app).await, answer_env));
    let done = app.store.registry_callback(&correlation).await.unwrap().unwrap();
    assert!(!done.delivered_at.is_empty() && done.body.is_empty(), "delivered and forgotten: {done:?}");
    assert_eq!(run_once(&app.state, "p1", &s).await.unwrap(), 0, "once");

    // Nowhere to post the answer: ERR, and nothing is searched.
    let mut h = header("a2", "search", 1);
    h["sender_uri"] = json!("https://dinsos.example/on-search");
    let body = json!({"header": h, "message": {"transaction_id": "t2", "search_request": [by_nik("r1", RECIPIENT, None)]}});
    let (code, ack) = post(&app, "/dci/registry/search", Some(&token), &body.to_string()).await;
    assert_eq!((code, ack["message"]["ack_status"].as_str()), (200, Some("ERR")), "{ack}");
    assert_eq!(ack["message"]["error"]["code"], "err.sender_uri.invalid");
}
