//! The OpenAPI document: its structure, and the real answers against it.

mod common;
use common::*;

use std::collections::BTreeSet;

use serde_json::Value;

async fn document(app: &TestApp) -> Value {
    let res = app.client.get(app.url("/api/openapi.json")).send().await.expect("openapi.json");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    serde_json::from_str(&res.text().await.expect("body")).expect("JSON")
}

fn codes(doc: &Value, path: &str) -> BTreeSet<u16> {
    doc["paths"][path]["get"]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("no GET {path}"))
        .keys()
        .map(|k| k.parse().expect("a status code"))
        .collect()
}

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_every_json_route_as_implemented() {
    let app = spawn(true, 0).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().expect("openapi").starts_with("3."), "{}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths: BTreeSet<_> = doc["paths"].as_object().expect("paths").keys().cloned().collect();
    let public = ["/api/v1/status", "/healthz", "/readyz", "/.well-known/jwks.json"];
    let agency = [
        "/api/v1/client",
        "/api/v1/files",
        "/api/v1/files/{sha256}",
        "/api/v1/files/{sha256}/report.csv",
        "/api/v1/annex/{file}",
        "/dci/registry/sync/search",
        "/dci/registry/search",
        "/dci/registry/subscribe",
        "/dci/registry/unsubscribe",
        "/dci/registry/txn/status",
    ];
    assert_eq!(paths, public.iter().chain(&agency).map(|p| p.to_string()).collect());
    // The agencies' routes: a bearer token, 401 without one, 403 where a scope decides.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for path in agency {
        for (method, op) in doc["paths"][path].as_object().expect("operations") {
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path} documents 401");
            if path != "/api/v1/client" {
                assert!(op["responses"]["403"].is_object(), "{method} {path} documents 403");
            }
        }
    }
    let upload = &doc["paths"]["/api/v1/files"]["post"];
    assert!(upload["requestBody"]["content"]["multipart/form-data"]["schema"].is_object(), "{upload}");
    let mut upload_codes: Vec<&String> = upload["responses"].as_object().expect("responses").keys().collect();
    upload_codes.sort();
    assert_eq!(upload_codes, ["200", "201", "400", "401", "403", "409", "413", "422"]);
    let registry = &agency[5..];
    // The registry's envelopes: a JSON request body, bearer tokens, every answer JSON.
    for path in registry {
        let op = &doc["paths"][path]["post"];
        assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{path}");
        assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{path}");
        let codes: BTreeSet<&str> =
            op["responses"].as_object().expect("responses").keys().map(String::as_str).collect();
        assert_eq!(codes, ["200", "400", "401", "403", "413", "415", "422"].into(), "{path}");
        for (code, r) in op["responses"].as_object().unwrap() {
            assert!(r["content"]["application/json"]["schema"].is_object(), "{path} {code} has no schema");
        }
    }
    assert_eq!(codes(&doc, "/api/v1/status"), [200, 400, 404, 429].into());
    assert_eq!(codes(&doc, "/healthz"), [200].into());
    assert_eq!(codes(&doc, "/readyz"), [200, 503].into());

    let params: Vec<(String, bool)> = doc["paths"]["/api/v1/status"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            assert_eq!(p["in"], "query");
            (p["name"].as_str().expect("name").to_owned(), p["required"].as_bool().unwrap_or(false))
        })
        .collect();
    let expected =
        [("nik", true), ("birth_date", true), ("year", true), ("stage", true), ("programme", false)]
            .map(|(n, r)| (n.to_owned(), r));
    assert_eq!(params, expected);

    // Every answer documented as JSON with a schema, and every schema it names defined.
    for path in ["/api/v1/status", "/healthz", "/readyz"] {
        for (code, r) in doc["paths"][path]["get"]["responses"].as_object().expect("responses") {
            assert!(r["description"].is_string(), "{path} {code}");
            assert!(r["content"]["application/json"]["schema"].is_object(), "{path} {code} has no schema");
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"][name].is_object(), "{r} is not defined");
    }
    let status = &doc["components"]["schemas"]["StatusJson"];
    assert_eq!(status["required"], serde_json::json!(["status"]));
}

#[tokio::test]
async fn real_answers_have_documented_status_codes_and_shapes() {
    let app = spawn(true, 3).await;
    let doc = document(&app).await;
    let documented = codes(&doc, "/api/v1/status");
    let status = |n: &str, b: &str| {
        [("nik", n.to_owned()), ("birth_date", b.to_owned()), ("year", "2025".into()), ("stage", "1".into())]
    };
    let mut seen = BTreeSet::new();
    for (query, expect) in [
        (status(RECIPIENT, RECIPIENT_BIRTH).to_vec(), 200),
        (status(UNKNOWN, RECIPIENT_BIRTH).to_vec(), 404),
        (status("123", RECIPIENT_BIRTH).to_vec(), 400),
        (Vec::new(), 429),
    ] {
        let res = app.client.get(app.url("/api/v1/status")).query(&query).send().await.expect("api");
        let code = res.status().as_u16();
        assert_eq!(code, expect);
        assert!(documented.contains(&code), "{code} is not documented");
        let body: Value = serde_json::from_str(&res.text().await.expect("body")).expect("JSON");
        let schema = doc["paths"]["/api/v1/status"]["get"]["responses"][code.to_string()]["content"]
            ["application/json"]["schema"]["$ref"]
            .as_str()
            .expect("a named schema")
            .rsplit('/')
            .next()
            .expect("name")
            .to_owned();
        let def = &doc["components"]["schemas"][&schema];
        for field in def["required"].as_array().into_iter().flatten() {
            assert!(body.get(field.as_str().unwrap()).is_some(), "{code}: {field} missing in {body}");
        }
        for key in body.as_object().expect("object").keys() {
            assert!(def["properties"].get(key).is_some(), "{code}: {key} is not in {schema}");
        }
        seen.insert(code);
    }
    assert_eq!(seen, documented, "every documented status answered");

    let res = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    assert!(codes(&doc, "/healthz").contains(&res.status().as_u16()));
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status().as_u16(), 200);
    app.store.close().await;
    let res = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(res.status().as_u16(), 503);
    assert!(codes(&doc, "/readyz").contains(&503));
}

#[tokio::test]
async fn the_reference_page_is_rendered_on_the_server() {
    let app = spawn(true, 0).await;
    let res = app.client.get(app.url("/api")).send().await.expect("/api");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.expect("body");
    for needle in [
        "GET /api/v1/status",
        "GET /healthz",
        "GET /readyz",
        "<code>birth_date</code>",
        "StatusJson",
        "429",
        "503",
        "/api/openapi.json",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    assert!(!html.contains("<script"), "no JavaScript");
}
