//! `kjp client add|list|revoke|rotate`: other agencies' API clients. The rules (names,
//! scopes, audit) are the server's, shared with the console's page.

use kjp_server::api::clients::{add_client, revoke_client, rotate_client};
use kjp_store::Store;

/// Creates a client and returns its token (shown once, never stored); audited.
pub async fn add(store: &Store, name: &str, agency: &str, scopes: &str) -> anyhow::Result<String> {
    Ok(add_client(store, name, agency, scopes, "cli", "local").await?)
}

/// Revokes a client at once, in every server process; audited.
pub async fn revoke(store: &Store, name: &str) -> anyhow::Result<()> {
    Ok(revoke_client(store, name, "cli", "local").await?)
}

/// Gives a live client a new token; the old one stops working at once. Audited.
pub async fn rotate(store: &Store, name: &str) -> anyhow::Result<String> {
    Ok(rotate_client(store, name, "cli", "local").await?)
}

/// Every client as a table.
pub async fn list(store: &Store) -> anyhow::Result<String> {
    let clients = store.api_clients().await?;
    if clients.is_empty() {
        return Ok("no API clients: add one with `kjp client add NAME --agency ... --scope ...`\n".into());
    }
    let mut out = format!("{:<20} {:<10} {:<28} {}\n", "name", "state", "agency", "scopes");
    for c in clients {
        let state = if c.is_revoked() { "revoked" } else { "live" };
        out.push_str(&format!("{:<20} {:<10} {:<28} {}\n", c.name, state, c.agency, c.scopes.join(" ")));
    }
    Ok(out)
}
