//! `kjp client add|list|revoke|rotate`: other agencies' API clients.

use anyhow::Context;
use kjp_server::api::{clients::new_token, ApiScope};
use kjp_store::Store;

/// Creates a client and returns its token (shown once, never stored); audited.
pub async fn add(store: &Store, name: &str, agency: &str, scopes: &str) -> anyhow::Result<String> {
    kjp_server::console::check_username(name).map_err(|e| anyhow::anyhow!("client name: {e}"))?;
    if agency.trim().is_empty() {
        anyhow::bail!("--agency: name the agency the client belongs to");
    }
    let mut parsed = Vec::new();
    for raw in scopes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let scope =
            ApiScope::parse(raw).with_context(|| format!("--scope {raw:?}: one of {}", ApiScope::CODES))?;
        if !parsed.contains(&scope) {
            parsed.push(scope);
        }
    }
    if parsed.is_empty() {
        anyhow::bail!("--scope: give at least one of {}", ApiScope::CODES);
    }
    let codes: Vec<String> = parsed.iter().map(ApiScope::to_string).collect();
    let (token, digest) = new_token();
    if !store.add_api_client(name, agency.trim(), &codes, &digest, "cli").await? {
        anyhow::bail!("a client named {name:?} exists (revoked names stay taken)");
    }
    store
        .audit("cli", "client.add", name, &format!("{} [{}]", agency.trim(), codes.join(" ")), "local")
        .await?;
    Ok(token)
}

/// Revokes a client at once, in every server process; audited.
pub async fn revoke(store: &Store, name: &str) -> anyhow::Result<()> {
    if !store.revoke_api_client(name).await? {
        match store.api_client(name).await? {
            Some(_) => anyhow::bail!("client {name:?} is already revoked"),
            None => anyhow::bail!("no client named {name:?}"),
        }
    }
    store.audit("cli", "client.revoke", name, "", "local").await?;
    Ok(())
}

/// Gives a live client a new token; the old one stops working at once. Audited.
pub async fn rotate(store: &Store, name: &str) -> anyhow::Result<String> {
    let (token, digest) = new_token();
    if !store.rotate_api_client(name, &digest).await? {
        match store.api_client(name).await? {
            Some(_) => anyhow::bail!("client {name:?} is revoked: add a new one"),
            None => anyhow::bail!("no client named {name:?}"),
        }
    }
    store.audit("cli", "client.rotate", name, "", "local").await?;
    Ok(token)
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
