//! The OpenAPI 3 document of the JSON routes, generated from the handlers' annotations
//! (utoipa) and served at `/api/openapi.json`, and its reference page at `/api`, rendered
//! on the server from the same document (no JavaScript).

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "KJP Plus status check API",
        description = "The public status check of KJP Plus and KJMU as JSON: a child's status in a stage by NIK and date of birth, and the server's health and readiness. Answers come from an in-memory index of the decrees; the NIK travels in the query string, which the server never logs.",
        license(name = "MIT")
    ),
    paths(
        crate::web::check_json,
        crate::web::healthz,
        crate::ops::readyz,
        crate::api::whoami,
        crate::api::files::upload,
        crate::api::files::list,
        crate::api::files::download,
        crate::api::files::report,
        crate::api::files::annex,
        crate::api::registry::search,
        crate::api::registry::search_async,
        crate::api::registry::subscribe,
        crate::api::registry::unsubscribe,
        crate::api::registry::txn_status,
        crate::api::registry::jwks,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "status", description = "The public status check"),
        (name = "files", description = "Agency files in (multipart, checked and reported row by row as `kjp import` does) and out (snapshots, reports, decree annexes), streamed"),
        (name = "registry", description = "Registry interoperability on the Digital Convergence Initiative's pattern (DCI, Integrated Beneficiary Registry): is a NIK a recipient of a stage and since when; subscribe to recipient changes, notified signed (docs/registry.md)"),
        (name = "clients", description = "Other agencies' systems, each with its own bearer token (`kjp client add`), scopes and audit trail"),
        (name = "operations", description = "Health and readiness for load balancers and orchestrators"),
    )
)]
struct ApiDoc;

/// The agencies' bearer tokens as a security scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An API client's token, `kjp_` and 64 hex digits, from `kjp client add`"))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn document() -> Response {
    match openapi().to_pretty_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!("openapi: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "api.html")]
struct Page {
    title: String,
    version: String,
    description: String,
    openapi: String,
    routes: Vec<Route>,
    schemas: Vec<Schema>,
}

#[derive(Debug)]
struct Route {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    params: Vec<Param>,
    responses: Vec<ResponseRow>,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: String,
    required: bool,
    description: String,
    example: String,
}

#[derive(Debug)]
struct ResponseRow {
    code: String,
    description: String,
    schema: String,
}

#[derive(Debug)]
struct Schema {
    name: String,
    json: String,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The page's view of the document, read from its JSON form (the form clients see).
fn page_of(doc: &Value) -> Page {
    let mut routes = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else { continue };
            for (method, op) in ops {
                let params = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| Param {
                        name: text(&p["name"]),
                        location: text(&p["in"]),
                        required: p["required"].as_bool().unwrap_or(false),
                        description: text(&p["description"]),
                        example: text(&p["example"]),
                    })
                    .collect();
                let responses = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(code, r)| ResponseRow {
                        code: code.clone(),
                        description: text(&r["description"]),
                        schema: text(&r["content"]["application/json"]["schema"]["$ref"])
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_owned(),
                    })
                    .collect();
                let anchor = format!("{method}{}", path.replace('/', "-"));
                routes.push(Route {
                    anchor,
                    method: method.to_uppercase(),
                    path: path.clone(),
                    summary: text(&op["summary"]),
                    description: text(&op["description"]),
                    params,
                    responses,
                });
            }
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, s)| Schema {
            name: name.clone(),
            json: serde_json::to_string_pretty(s).unwrap_or_default(),
        })
        .collect();
    Page {
        title: text(&doc["info"]["title"]),
        version: text(&doc["info"]["version"]),
        description: text(&doc["info"]["description"]),
        openapi: text(&doc["openapi"]),
        routes,
        schemas,
    }
}

pub(crate) async fn page() -> Response {
    let doc = serde_json::to_value(openapi()).unwrap_or(Value::Null);
    match page_of(&doc).render() {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("template error: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
        }
    }
}
