//! Agency API clients, black box: a token per client, refused when missing, unknown,
//! revoked or rotated away; every call in the audit log under the client's name.

mod common;
use common::*;

use kjp_server::api::clients::new_token;

async fn whoami(app: &TestApp, token: Option<&str>) -> (u16, serde_json::Value, Option<String>) {
    let mut req = app.client.get(app.url("/api/v1/client"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let code = res.status().as_u16();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.expect("body");
    (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")), challenge)
}

#[tokio::test]
async fn a_live_token_is_answered_and_audited_a_revoked_or_rotated_one_is_refused() {
    let app = spawn(true, 0).await;
    let (token, digest) = new_token();
    let scopes = vec!["registry.search".to_string()];
    assert!(app.store.add_api_client("dinsos", "Dinas Sosial", &scopes, &digest, "test").await.unwrap());

    let (code, body, _) = whoami(&app, Some(&token)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["name"], "dinsos");
    assert_eq!(body["scopes"], serde_json::json!(["registry.search"]));
    let log = app.store.audit_entries(10, "").await.unwrap();
    assert!(log.iter().any(|e| e.actor == "client:dinsos" && e.action == "api.client"), "{log:?}");

    for bad in [None, Some(""), Some("kjp_0000"), Some(&token[..60])] {
        let (code, body, challenge) = whoami(&app, bad).await;
        assert_eq!(code, 401, "{bad:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"kjp\""));
    }

    let (rotated, new_digest) = new_token();
    assert!(app.store.rotate_api_client("dinsos", &new_digest).await.unwrap());
    assert_eq!(whoami(&app, Some(&token)).await.0, 401, "the old token after rotation");
    assert_eq!(whoami(&app, Some(&rotated)).await.0, 200);

    assert!(app.store.revoke_api_client("dinsos").await.unwrap());
    assert_eq!(whoami(&app, Some(&rotated)).await.0, 401, "a revoked client");
    assert!(!app.store.rotate_api_client("dinsos", &digest).await.unwrap(), "a revoked client stays revoked");
}
